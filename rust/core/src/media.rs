//! The media a conversation carries. The lifecycle only hands streams around; the media
//! pipeline (capture, codecs, peer connection) fills them in.

use std::sync::atomic::{AtomicBool, Ordering};

/// What a local stream captures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConstraints {
    pub audio: bool,
    pub video: bool,
}

impl Default for StreamConstraints {
    fn default() -> Self {
        StreamConstraints { audio: true, video: true }
    }
}

/// This side's camera and microphone, given to `call` and `accept`.
#[derive(Debug)]
pub struct LocalStream {
    constraints: StreamConstraints,
    audio_enabled: AtomicBool,
    video_enabled: AtomicBool,
}

impl LocalStream {
    pub fn new(constraints: StreamConstraints) -> Self {
        LocalStream {
            audio_enabled: AtomicBool::new(constraints.audio),
            video_enabled: AtomicBool::new(constraints.video),
            constraints,
        }
    }

    pub fn constraints(&self) -> &StreamConstraints {
        &self.constraints
    }

    pub fn set_audio_enabled(&self, on: bool) {
        self.audio_enabled.store(on && self.constraints.audio, Ordering::Relaxed);
    }

    pub fn set_video_enabled(&self, on: bool) {
        self.video_enabled.store(on && self.constraints.video, Ordering::Relaxed);
    }

    pub fn audio_enabled(&self) -> bool {
        self.audio_enabled.load(Ordering::Relaxed)
    }

    pub fn video_enabled(&self) -> bool {
        self.video_enabled.load(Ordering::Relaxed)
    }
}

impl Default for LocalStream {
    fn default() -> Self {
        LocalStream::new(StreamConstraints::default())
    }
}

/// The other party's media, handed to `did_receive_stream`.
#[derive(Debug)]
pub struct RemoteStream {
    call_id: String,
}

impl RemoteStream {
    pub(crate) fn new(call_id: String) -> Self {
        RemoteStream { call_id }
    }

    /// The call this stream belongs to.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }
}
