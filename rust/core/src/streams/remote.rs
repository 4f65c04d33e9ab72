//! `RemoteStream`: the other party's media, decoded, for the app to render and play.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use duet_media::{AudioFrame, VideoFrame, SAMPLE_RATE};

use crate::sync::{lock, try_lock};

use super::local::Sending;

/// Receives decoded remote video. Called on the call's video receiving thread (never on
/// the async runtime), one frame at a time, in order. A sink slower than the frame rate does
/// not delay decoding: the frames it misses are skipped, and it gets the newest. The frame
/// is shared, not copied: a sink may keep it as long as it likes. A sink set after frames
/// have been decoded gets the newest of them at once, on the thread that set it.
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

/// Where decoded video goes: the app's sink, or, until there is one, the newest frame is
/// kept for it. The first frames of a call can be decoded before `did_receive_stream` has
/// reached the app and it has set its sink: without the kept frame, the picture would wait
/// for the next one (up to a frame interval, 33 ms at 30 fps).
#[derive(Default)]
struct VideoOut {
    sink: Option<Arc<dyn VideoSink>>,
    unshown: Option<Arc<VideoFrame>>,
}

/// The other party's media, handed to `did_receive_stream`.
pub struct RemoteStream {
    call_id: String,
    video: Mutex<VideoOut>,
    /// Held while a frame is handed to a sink, so that frames reach it in order; guards
    /// nothing else.
    delivering: Mutex<()>,
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
            video: Mutex::default(),
            delivering: Mutex::new(()),
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
        // The kept frame goes to the new sink unless a frame is being handed over right now
        // (a newer one, or this is a sink setting a sink from inside `on_video_frame`): then
        // it is stale, and waiting for `delivering` could deadlock.
        let delivering = try_lock(&self.delivering);
        let unshown = {
            let mut video = lock(&self.video);
            video.sink.clone_from(&sink);
            if sink.is_some() {
                video.unshown.take()
            } else {
                None
            }
        };
        if let (Some(_order), Some(sink), Some(frame)) = (delivering, sink, unshown) {
            sink.on_video_frame(frame);
        }
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
        let frame = Arc::new(frame);
        let _order = lock(&self.delivering);
        let sink = {
            let mut video = lock(&self.video);
            let Some(sink) = video.sink.clone() else {
                video.unshown = Some(frame);
                return;
            };
            sink
        };
        sink.on_video_frame(frame);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream, and the sink to set on it.
    type Swap = (Arc<RemoteStream>, Arc<dyn VideoSink>);

    /// Records the timestamps of the frames it gets; optionally sets another sink on the
    /// stream from inside `on_video_frame`, as an app swapping views might.
    #[derive(Default)]
    struct Seen {
        timestamps: Mutex<Vec<u64>>,
        swap_to: Mutex<Option<Swap>>,
    }

    impl VideoSink for Seen {
        fn on_video_frame(&self, frame: Arc<VideoFrame>) {
            lock(&self.timestamps).push(frame.timestamp_us);
            if let Some((stream, next)) = lock(&self.swap_to).take() {
                stream.set_video_sink(Some(next));
            }
        }
    }

    fn frame(timestamp_us: u64) -> VideoFrame {
        VideoFrame::black(16, 16, timestamp_us)
    }

    #[test]
    fn a_sink_set_after_frames_were_decoded_gets_the_newest_at_once() {
        let stream = RemoteStream::new("c".into());
        stream.show(frame(1));
        stream.show(frame(2));
        let sink = Arc::new(Seen::default());
        stream.set_video_sink(Some(sink.clone()));
        assert_eq!(*lock(&sink.timestamps), [2], "the newest kept frame, once");
        stream.show(frame(3));
        assert_eq!(*lock(&sink.timestamps), [2, 3]);
    }

    #[test]
    fn a_frame_already_shown_is_not_shown_again_to_the_next_sink() {
        let stream = RemoteStream::new("c".into());
        let first = Arc::new(Seen::default());
        stream.set_video_sink(Some(first.clone()));
        stream.show(frame(1));
        let second = Arc::new(Seen::default());
        stream.set_video_sink(Some(second.clone()));
        assert!(lock(&second.timestamps).is_empty());
        stream.set_video_sink(None);
        stream.show(frame(2));
        stream.set_video_sink(Some(second.clone()));
        assert_eq!(*lock(&second.timestamps), [2], "what arrived while no sink was set");
        assert_eq!(*lock(&first.timestamps), [1]);
    }

    #[test]
    fn a_sink_may_set_a_sink_from_inside_its_frame_callback() {
        let stream = RemoteStream::new("c".into());
        let first = Arc::new(Seen::default());
        let second = Arc::new(Seen::default());
        *lock(&first.swap_to) = Some((stream.clone(), second.clone()));
        stream.set_video_sink(Some(first.clone()));
        stream.show(frame(1)); // would deadlock if the swap waited for `delivering`
        stream.show(frame(2));
        assert_eq!(*lock(&first.timestamps), [1]);
        assert_eq!(*lock(&second.timestamps), [2]);
    }
}
