//! `LocalStream`: where the platform's camera and microphone push their frames.

use std::sync::{Arc, Mutex};

use duet_media::{AudioFrame, FrameError, Rotation, VideoFrame, SAMPLES_PER_10MS};
use tokio::sync::{broadcast, watch};

use crate::sync::lock;

use super::synthetic;

/// Why a pushed frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaptureError {
    #[error("bad video frame: {0}")]
    Frame(#[from] FrameError),
    #[error("an audio frame is {SAMPLES_PER_10MS} samples (10 ms of mono 48 kHz), not {0}")]
    AudioLength(usize),
}

/// The video a local stream captures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoConstraints {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// The most the encoder may send; congestion control works below it.
    pub max_bitrate_bps: u32,
}

impl Default for VideoConstraints {
    fn default() -> Self {
        VideoConstraints { width: 640, height: 480, fps: 30, max_bitrate_bps: 1_000_000 }
    }
}

/// What a local stream captures: video (or none) and audio (or not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConstraints {
    pub audio: bool,
    pub video: Option<VideoConstraints>,
}

impl Default for StreamConstraints {
    fn default() -> Self {
        StreamConstraints { audio: true, video: Some(VideoConstraints::default()) }
    }
}

/// Which kinds of media a stream sends now: what it captures, less what is muted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sending {
    pub video: bool,
    pub audio: bool,
}

impl Sending {
    /// What a receiver assumes of a peer that has not said otherwise.
    pub(crate) const BOTH: Sending = Sending { video: true, audio: true };
}

/// This side's camera and microphone, given to `call` and `accept`. The platform pushes
/// frames in (`push_*`); every call that carries the stream takes them from there.
pub struct LocalStream {
    constraints: StreamConstraints,
    /// What is muted, as one value: the push methods read it, and calls watch it to tell
    /// their peers.
    sending: watch::Sender<Sending>,
    // Broadcast, because the stream outlives calls and may feed a new one while an old one
    // winds down. A video receiver that lags skips to the newest frame, which is what a
    // real-time encoder wants; audio has room for half a second.
    video: broadcast::Sender<Arc<VideoFrame>>,
    audio: broadcast::Sender<Arc<AudioFrame>>,
    /// The newest frame, so a call that connects starts from it instead of waiting up to a
    /// frame interval for the camera's next one.
    latest_video: Mutex<Option<Arc<VideoFrame>>>,
    synthetic: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for LocalStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalStream").field("constraints", &self.constraints).finish()
    }
}

impl LocalStream {
    pub fn new(constraints: StreamConstraints) -> Arc<LocalStream> {
        Arc::new(LocalStream {
            sending: watch::channel(Sending {
                video: constraints.video.is_some(),
                audio: constraints.audio,
            })
            .0,
            constraints,
            video: broadcast::channel(2).0,
            audio: broadcast::channel(50).0,
            latest_video: Mutex::new(None),
            synthetic: Mutex::new(None),
        })
    }

    /// A stream fed by a built-in synthetic camera and microphone: a moving test pattern that
    /// carries a frame counter (see `duet_media::read_counter`), and a 440 Hz tone. For
    /// demos, tests and benchmarks. Must be called within a tokio runtime.
    pub fn synthetic(constraints: StreamConstraints) -> Arc<LocalStream> {
        let stream = LocalStream::new(constraints);
        let task = synthetic::spawn(Arc::downgrade(&stream), stream.constraints.clone());
        *stream.synthetic.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        stream
    }

    pub fn constraints(&self) -> &StreamConstraints {
        &self.constraints
    }

    /// Pushes a camera frame. Frames pushed while video is disabled are dropped.
    pub fn push_video_frame(&self, frame: VideoFrame) {
        self.push_shared_frame(Arc::new(frame));
    }

    pub(super) fn push_shared_frame(&self, frame: Arc<VideoFrame>) {
        if self.video_enabled() {
            *lock(&self.latest_video) = Some(Arc::clone(&frame));
            // No receiver (no call under way) is not an error: the frame just goes nowhere.
            let _ = self.video.send(frame);
        }
    }

    /// `mine`, a frame the caller pushed and kept, back as its own to draw the next frame
    /// over, if it is still the newest frame and the encoder is done with it. Holding it is
    /// what makes it certain that nobody wrote to it since (unlike `spare_buffer`, whose
    /// buffer may have been anyone's).
    pub(super) fn take_back(&self, mine: Arc<VideoFrame>) -> Option<VideoFrame> {
        let mut latest = lock(&self.latest_video);
        if !latest.as_ref().is_some_and(|newest| Arc::ptr_eq(newest, &mine)) {
            return None;
        }
        drop(latest.take());
        match Arc::try_unwrap(mine) {
            Ok(frame) => Some(frame),
            Err(shared) => {
                *latest = Some(shared);
                None
            }
        }
    }

    /// Pushes an I420 camera frame with arbitrary strides (copied once, into a packed frame).
    ///
    /// # Errors
    ///
    /// `Frame` when the sizes, strides or plane lengths do not describe a picture.
    #[allow(clippy::too_many_arguments)]
    pub fn push_i420(
        &self,
        width: u32,
        height: u32,
        y: &[u8],
        y_stride: u32,
        u: &[u8],
        u_stride: u32,
        v: &[u8],
        v_stride: u32,
        timestamp_us: u64,
        rotation: Rotation,
    ) -> Result<(), CaptureError> {
        if !self.video_enabled() {
            return Ok(());
        }
        let frame = VideoFrame::from_i420_reusing(
            || self.spare_buffer(),
            width,
            height,
            y,
            y_stride,
            u,
            u_stride,
            v,
            v_stride,
            timestamp_us,
            rotation,
        )?;
        self.push_video_frame(frame);
        Ok(())
    }

    /// Pushes an NV12 camera frame (the usual layout of iOS and Android cameras).
    ///
    /// # Errors
    ///
    /// `Frame` when the sizes, strides or plane lengths do not describe a picture.
    #[allow(clippy::too_many_arguments)]
    pub fn push_nv12(
        &self,
        width: u32,
        height: u32,
        y: &[u8],
        y_stride: u32,
        uv: &[u8],
        uv_stride: u32,
        timestamp_us: u64,
        rotation: Rotation,
    ) -> Result<(), CaptureError> {
        if !self.video_enabled() {
            return Ok(());
        }
        let frame = VideoFrame::from_nv12_reusing(
            || self.spare_buffer(),
            width,
            height,
            y,
            y_stride,
            uv,
            uv_stride,
            timestamp_us,
            rotation,
        )?;
        self.push_video_frame(frame);
        Ok(())
    }

    /// The newest frame's data for a push to write over, when nothing but `latest_video` holds
    /// that frame any more (no call, or its encoder and the broadcast are done with it, as
    /// they are by the camera's next frame unless the encoder lags): the frame is taken out
    /// and unwrapped, so the buffer has one owner again and no reader can see it change. A
    /// frame something still holds stays where it is, and the push allocates.
    ///
    /// Why: with a new 1.38 MB frame per 720p push while the newest was still kept, two
    /// frames' memory took turns and each copy landed in memory written two pushes before,
    /// most likely out of the cache by then: 1.3–2.0× a memcpy from Kotlin or Swift instead of 1.0–1.2×
    /// (docs/benchmarks.md, "A push writes over the newest frame"). The stream keeps no
    /// buffer beyond the newest frame it kept already.
    pub(super) fn spare_buffer(&self) -> Vec<u8> {
        let mut latest = lock(&self.latest_video);
        match latest.take().map(Arc::try_unwrap) {
            Some(Ok(frame)) => frame.data,
            Some(Err(shared)) => {
                *latest = Some(shared);
                Vec::new()
            }
            None => Vec::new(),
        }
    }

    /// Pushes 10 ms of mono 48 kHz PCM (480 samples). Dropped while audio is disabled.
    ///
    /// # Errors
    ///
    /// `AudioLength` when `samples` is not 480 samples long.
    pub fn push_audio(&self, samples: &[i16], timestamp_us: u64) -> Result<(), CaptureError> {
        if samples.len() != SAMPLES_PER_10MS {
            return Err(CaptureError::AudioLength(samples.len()));
        }
        if self.audio_enabled() {
            let _ =
                self.audio.send(Arc::new(AudioFrame { samples: samples.to_vec(), timestamp_us }));
        }
        Ok(())
    }

    /// Mutes or unmutes video without renegotiation: frames stop and restart.
    pub fn set_video_enabled(&self, on: bool) {
        let on = on && self.constraints.video.is_some();
        self.sending.send_if_modified(|s| std::mem::replace(&mut s.video, on) != on);
        if !on {
            // What the camera saw before the mute is not to be sent after it.
            *lock(&self.latest_video) = None;
        }
    }

    /// Mutes or unmutes audio without renegotiation.
    pub fn set_audio_enabled(&self, on: bool) {
        let on = on && self.constraints.audio;
        self.sending.send_if_modified(|s| std::mem::replace(&mut s.audio, on) != on);
    }

    pub(crate) fn watch_sending(&self) -> watch::Receiver<Sending> {
        self.sending.subscribe()
    }

    pub fn video_enabled(&self) -> bool {
        self.sending.borrow().video
    }

    pub fn audio_enabled(&self) -> bool {
        self.sending.borrow().audio
    }

    pub(crate) fn subscribe_video(&self) -> broadcast::Receiver<Arc<VideoFrame>> {
        self.video.subscribe()
    }

    pub(crate) fn latest_video(&self) -> Option<Arc<VideoFrame>> {
        lock(&self.latest_video).clone()
    }

    pub(crate) fn subscribe_audio(&self) -> broadcast::Receiver<Arc<AudioFrame>> {
        self.audio.subscribe()
    }
}

impl Drop for LocalStream {
    fn drop(&mut self) {
        if let Some(task) = self.synthetic.get_mut().unwrap_or_else(|p| p.into_inner()).take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> Arc<LocalStream> {
        LocalStream::new(StreamConstraints { audio: false, ..StreamConstraints::default() })
    }

    /// A tight 4x2 I420 picture whose bytes all equal `value`.
    fn push(stream: &LocalStream, value: u8) -> Result<(), CaptureError> {
        let (y, c) = ([value; 8], [value; 2]);
        stream.push_i420(4, 2, &y, 4, &c, 2, &c, 2, u64::from(value), Rotation::Deg0)
    }

    fn latest_data(stream: &LocalStream) -> (*const u8, Vec<u8>) {
        let frame = stream.latest_video().expect("a newest frame");
        (frame.data.as_ptr(), frame.data.clone())
    }

    #[test]
    fn a_pushed_frame_comes_back_only_while_it_is_the_newest_and_nobody_holds_it() {
        let stream = stream();
        let frame = |value: u8| Arc::new(VideoFrame::black(4, 2, u64::from(value)));
        let mine = frame(1);
        stream.push_shared_frame(Arc::clone(&mine));
        assert_eq!(stream.take_back(mine).map(|f| f.timestamp_us), Some(1));
        assert!(stream.latest_video().is_none(), "taken back, it is not the newest any more");

        // The encoder still holds it: it stays the newest, and is not handed back.
        let mine = frame(2);
        stream.push_shared_frame(Arc::clone(&mine));
        let encoder = stream.latest_video().expect("the newest frame");
        assert!(stream.take_back(Arc::clone(&mine)).is_none());
        assert_eq!(stream.latest_video().map(|f| f.timestamp_us), Some(2));
        drop(encoder);

        // Another push came after it: the newest is not the caller's.
        push(&stream, 3).unwrap();
        assert!(stream.take_back(mine).is_none());
        assert_eq!(stream.latest_video().map(|f| f.timestamp_us), Some(3));
    }

    #[test]
    fn a_push_writes_over_the_newest_frame_when_nothing_else_holds_it() {
        let stream = stream();
        push(&stream, 1).unwrap();
        let (first, _) = latest_data(&stream);
        push(&stream, 2).unwrap();
        let (second, data) = latest_data(&stream);
        assert_eq!(first, second, "the same buffer, written over");
        assert_eq!(data, [2; 12]);
        let nv12 = stream.push_nv12(4, 2, &[3; 8], 4, &[3; 4], 4, 3, Rotation::Deg0);
        nv12.unwrap();
        assert_eq!(latest_data(&stream), (first, vec![3; 12]));
    }

    #[test]
    fn a_frame_something_still_holds_is_never_written_over() {
        let stream = stream();
        let mut receiver = stream.subscribe_video();
        push(&stream, 1).unwrap();
        // Held by the receiver's queue, then by the receiver (as an encoder holds it).
        push(&stream, 2).unwrap();
        let first = receiver.try_recv().unwrap();
        let kept = stream.latest_video().unwrap();
        push(&stream, 3).unwrap();
        assert_eq!(first.data, [1; 12]);
        assert_eq!(kept.data, [2; 12]);
        assert_eq!(latest_data(&stream).1, [3; 12]);
        assert_ne!(latest_data(&stream).0, kept.data.as_ptr());
    }

    #[test]
    fn a_refused_frame_leaves_the_newest_frame_alone() {
        let stream = stream();
        push(&stream, 1).unwrap();
        let err = stream.push_i420(4, 2, &[0; 7], 4, &[0; 2], 2, &[0; 2], 2, 0, Rotation::Deg0);
        assert!(matches!(err, Err(CaptureError::Frame(FrameError::PlaneTooShort { .. }))));
        assert_eq!(latest_data(&stream).1, [1; 12]);
        stream.set_video_enabled(false);
        push(&stream, 2).unwrap();
        assert!(stream.latest_video().is_none());
    }
}
