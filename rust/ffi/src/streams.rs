//! `LocalStream` (the app's camera and microphone push into it) and `RemoteStream` (the
//! other party's decoded media).

use std::sync::Arc;

use duet_core as core;

use crate::delegates::{AudioSink, AudioSinkAdapter, VideoSink, VideoSinkAdapter};
use crate::errors::CaptureError;
use crate::records::{StreamConstraints, VideoSize};
use crate::runtime::runtime;

/// This side's camera and microphone, given to `call` and `accept`. The app pushes frames
/// in; every call that carries the stream takes them from there. One stream may serve one
/// call after another.
#[derive(Debug, uniffi::Object)]
pub struct LocalStream {
    inner: Arc<core::LocalStream>,
}

impl LocalStream {
    pub(crate) fn core(&self) -> Arc<core::LocalStream> {
        Arc::clone(&self.inner)
    }

    /// The engine's stream, for a push (no reference count touched on the hot path).
    pub(crate) fn core_ref(&self) -> &core::LocalStream {
        &self.inner
    }
}

#[uniffi::export]
impl LocalStream {
    /// A stream the app feeds from its camera and microphone (`push_*`).
    #[uniffi::constructor]
    pub fn new(constraints: StreamConstraints) -> Arc<Self> {
        Arc::new(LocalStream { inner: core::LocalStream::new(constraints.into()) })
    }

    /// A stream fed by a built-in synthetic camera and microphone (a moving test pattern
    /// and a 440 Hz tone), for demos and tests.
    #[uniffi::constructor]
    pub fn synthetic(constraints: StreamConstraints) -> Arc<Self> {
        // The synthetic camera is a task: it must start on the library's runtime.
        let _context = runtime().enter();
        Arc::new(LocalStream { inner: core::LocalStream::synthetic(constraints.into()) })
    }

    /// Pushes 10 ms of mono 48 kHz PCM: exactly 480 samples. Dropped while audio is
    /// disabled.
    ///
    /// # Errors
    ///
    /// `AudioLength` for any other number of samples.
    pub fn push_audio(&self, samples: Vec<i16>, timestamp_us: u64) -> Result<(), CaptureError> {
        Ok(self.inner.push_audio(&samples, timestamp_us)?)
    }

    /// Mutes or unmutes video without renegotiation: frames stop and restart.
    pub fn set_video_enabled(&self, enabled: bool) {
        self.inner.set_video_enabled(enabled);
    }

    pub fn set_audio_enabled(&self, enabled: bool) {
        self.inner.set_audio_enabled(enabled);
    }

    pub fn video_enabled(&self) -> bool {
        self.inner.video_enabled()
    }

    pub fn audio_enabled(&self) -> bool {
        self.inner.audio_enabled()
    }

    pub fn constraints(&self) -> StreamConstraints {
        self.inner.constraints().clone().into()
    }
}

/// The other party's media, handed to `did_receive_stream`.
#[derive(Debug, uniffi::Object)]
pub struct RemoteStream {
    inner: Arc<core::RemoteStream>,
}

impl RemoteStream {
    pub(crate) fn new(inner: Arc<core::RemoteStream>) -> Arc<Self> {
        Arc::new(RemoteStream { inner })
    }
}

#[uniffi::export]
impl RemoteStream {
    /// The call this stream belongs to.
    pub fn call_id(&self) -> String {
        self.inner.call_id().to_owned()
    }

    /// Where decoded video goes; `None` stops it. A sink set after the first frames were
    /// decoded gets the newest of them at once, on the calling thread, so the picture does
    /// not wait for the next frame.
    pub fn set_video_sink(&self, sink: Option<Arc<dyn VideoSink>>) {
        self.inner.set_video_sink(
            sink.map(|s| Arc::new(VideoSinkAdapter(s)) as Arc<dyn core::VideoSink>),
        );
    }

    /// Where decoded audio goes, 10 ms at a time, for push-style outputs; `None` stops it.
    pub fn set_audio_sink(&self, sink: Option<Arc<dyn AudioSink>>) {
        self.inner.set_audio_sink(
            sink.map(|s| Arc::new(AudioSinkAdapter(s)) as Arc<dyn core::AudioSink>),
        );
    }

    /// Takes `samples` of decoded mono 48 kHz audio for playout (pull-style outputs),
    /// padded with silence when the network has not delivered enough.
    pub fn pull_audio(&self, samples: u32) -> Vec<i16> {
        self.inner.pull_audio(samples as usize)
    }

    /// Whether the other party sends video now: false while its camera is off or when it
    /// has none; show a placeholder rather than the last frame then.
    pub fn video_enabled(&self) -> bool {
        self.inner.video_enabled()
    }

    /// Whether the other party sends audio now: false while it is muted.
    pub fn audio_enabled(&self) -> bool {
        self.inner.audio_enabled()
    }

    /// Video frames decoded so far.
    pub fn frames_decoded(&self) -> u64 {
        self.inner.frames_decoded()
    }

    /// 10 ms audio frames decoded so far.
    pub fn audio_frames_decoded(&self) -> u64 {
        self.inner.audio_frames_decoded()
    }

    /// The size of the latest decoded frame.
    pub fn video_size(&self) -> Option<VideoSize> {
        self.inner.video_size().map(|(width, height)| VideoSize { width, height })
    }
}
