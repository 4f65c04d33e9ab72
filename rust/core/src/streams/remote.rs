//! `RemoteStream`: the other party's media, decoded, for the app to render and play.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use duet_media::{AudioFrame, VideoFrame, SAMPLE_RATE};

use crate::sync::lock;

use super::local::Sending;

/// Receives decoded remote video. Called on the call's video receiving thread (never on
/// the async runtime), one frame at a time. A sink slower than the frame rate does not
/// delay decoding: the frames it misses are skipped, and it gets the newest. The frame is
/// shared, not copied: a sink may keep it as long as it likes.
pub trait VideoSink: Send + Sync {
    fn on_video_frame(&self, frame: Arc<VideoFrame>);
}

/// Receives decoded remote audio, 10 ms at a time, on the call's audio receiving thread,
/// for apps that push to their audio output. Apps whose output pulls use
/// `RemoteStream::pull_audio` instead.
pub trait AudioSink: Send + Sync {
    fn on_audio_frame(&self, frame: &AudioFrame);
}

/// How much decoded audio waits for `pull_audio` before the oldest is dropped: enough to
/// ride out scheduling jitter, little enough that a stalled player does not fall behind.
const PLAYOUT_LIMIT: usize = SAMPLE_RATE as usize / 5;

/// The other party's media, handed to `did_receive_stream`.
pub struct RemoteStream {
    call_id: String,
    video_sink: Mutex<Option<Arc<dyn VideoSink>>>,
    audio_sink: Mutex<Option<Arc<dyn AudioSink>>>,
    playout: Mutex<VecDeque<i16>>,
    frames_decoded: AtomicU64,
    audio_frames_decoded: AtomicU64,
    last_size: Mutex<Option<(u32, u32)>>,
    /// What the peer says it sends (`Sending::BOTH` until it says otherwise).
    sending: Mutex<Sending>,
}

impl std::fmt::Debug for RemoteStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteStream").field("call_id", &self.call_id).finish()
    }
}

impl RemoteStream {
    pub(crate) fn new(call_id: String) -> Arc<RemoteStream> {
        Arc::new(RemoteStream {
            call_id,
            video_sink: Mutex::new(None),
            audio_sink: Mutex::new(None),
            playout: Mutex::new(VecDeque::new()),
            frames_decoded: AtomicU64::new(0),
            audio_frames_decoded: AtomicU64::new(0),
            last_size: Mutex::new(None),
            sending: Mutex::new(Sending::BOTH),
        })
    }

    /// Whether the peer sends video now: false while its camera is off, or when it has
    /// none. Show a placeholder rather than the last frame then.
    pub fn video_enabled(&self) -> bool {
        lock(&self.sending).video
    }

    /// Whether the peer sends audio now: false while it is muted, or has no microphone.
    pub fn audio_enabled(&self) -> bool {
        lock(&self.sending).audio
    }

    /// Records what the peer says it sends; true if that is news.
    pub(crate) fn set_sending(&self, now: Sending) -> bool {
        std::mem::replace(&mut *lock(&self.sending), now) != now
    }

    /// The call this stream belongs to.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    pub fn set_video_sink(&self, sink: Option<Arc<dyn VideoSink>>) {
        *lock(&self.video_sink) = sink;
    }

    pub fn set_audio_sink(&self, sink: Option<Arc<dyn AudioSink>>) {
        *lock(&self.audio_sink) = sink;
    }

    /// Takes `samples` of decoded mono 48 kHz audio for playout, padded with silence when
    /// the network has not delivered enough.
    pub fn pull_audio(&self, samples: usize) -> Vec<i16> {
        let mut q = lock(&self.playout);
        let n = samples.min(q.len());
        let mut out: Vec<i16> = q.drain(..n).collect();
        out.resize(samples, 0);
        out
    }

    /// Video frames decoded so far.
    pub fn frames_decoded(&self) -> u64 {
        self.frames_decoded.load(Ordering::Relaxed)
    }

    /// 10 ms audio frames decoded so far.
    pub fn audio_frames_decoded(&self) -> u64 {
        self.audio_frames_decoded.load(Ordering::Relaxed)
    }

    /// The size of the latest decoded frame.
    pub fn video_size(&self) -> Option<(u32, u32)> {
        *lock(&self.last_size)
    }

    /// Counts a decoded frame (shown or not).
    pub(crate) fn count_decoded(&self, frame: &VideoFrame) {
        self.frames_decoded.fetch_add(1, Ordering::Relaxed);
        *lock(&self.last_size) = Some((frame.width, frame.height));
    }

    /// Hands a decoded frame to the sink, on the video receiving pipeline's thread.
    pub(crate) fn show(&self, frame: VideoFrame) {
        let sink = lock(&self.video_sink).clone();
        if let Some(sink) = sink {
            sink.on_video_frame(Arc::new(frame));
        }
    }

    /// Takes decoded audio (any multiple of 10 ms) and hands it on in 10 ms frames.
    pub(crate) fn deliver_audio(&self, pcm: &[i16], timestamp_us: u64) {
        let sink = lock(&self.audio_sink).clone();
        for (i, chunk) in pcm.chunks(duet_media::SAMPLES_PER_10MS).enumerate() {
            self.audio_frames_decoded.fetch_add(1, Ordering::Relaxed);
            if let Some(sink) = &sink {
                let frame = AudioFrame {
                    samples: chunk.to_vec(),
                    timestamp_us: timestamp_us + i as u64 * 10_000,
                };
                sink.on_audio_frame(&frame);
            }
        }
        let mut q = lock(&self.playout);
        q.extend(pcm.iter().copied());
        let excess = q.len().saturating_sub(PLAYOUT_LIMIT);
        q.drain(..excess);
    }
}
