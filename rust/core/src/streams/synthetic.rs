//! The built-in synthetic camera and microphone.

use std::sync::{Arc, Weak};
use std::time::Duration;

use duet_media::{TestPattern, Tone, VideoFrame, SAMPLES_PER_10MS};

use super::local::{LocalStream, StreamConstraints};

/// 10 ms audio frames pushed at each wake-up.
const AUDIO_FRAMES_PER_WAKE: u32 = 2;

/// Feeds `stream` until it is dropped: test-pattern frames at the constrained rate, and
/// tone in 20 ms buffers (two 10 ms frames), as platforms' audio capture delivers it in
/// buffers of 10 to 23 ms: a wake-up every 10 ms would cost the call more than a microphone
/// does.
pub(super) fn spawn(
    stream: Weak<LocalStream>,
    c: StreamConstraints,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let video = c.video.map(|v| {
            let period = Duration::from_secs(1) / v.fps.max(1);
            (TestPattern::new(v.width, v.height), period)
        });
        let mut tone = c.audio.then(|| Tone::new(440.0));
        let started = tokio::time::Instant::now();
        let mut next_frame = started;
        let mut next_audio = started;
        let mut counter: u32 = 0;
        let mut first = true;
        // The last frame pushed, kept so that the next is drawn over it: only the moving part
        // is drawn, where a recycled buffer of unknown content needs the still part copied
        // too (0.8 MB per 720p frame, bandwidth a real camera does not cost the SDK).
        let mut drawn: Option<Arc<VideoFrame>> = None;
        loop {
            let wake = match (&video, &tone) {
                (Some(_), Some(_)) => next_frame.min(next_audio),
                (Some(_), None) => next_frame,
                (None, Some(_)) => next_audio,
                (None, None) => return,
            };
            // The first frame at once: a sleep, even until now, waits for the timer's next tick.
            if !std::mem::take(&mut first) {
                tokio::time::sleep_until(wake).await;
            }
            let Some(stream) = stream.upgrade() else { return };
            let now = tokio::time::Instant::now();
            if let Some((pattern, period)) = &video {
                if now >= next_frame {
                    let ts = micros(next_frame - started);
                    let frame = match drawn.take().and_then(|mine| stream.take_back(mine)) {
                        Some(previous) => pattern.frame_over(previous, counter, ts),
                        None => pattern.frame_in(stream.spare_buffer(), counter, ts),
                    };
                    let frame = Arc::new(frame);
                    stream.push_shared_frame(Arc::clone(&frame));
                    drawn = Some(frame);
                    counter = counter.wrapping_add(1);
                    next_frame += *period;
                }
            }
            if let Some(tone) = tone.as_mut() {
                while now >= next_audio {
                    for _ in 0..AUDIO_FRAMES_PER_WAKE {
                        let ts = micros(next_audio - started);
                        let frame = tone.next_frame(ts);
                        debug_assert_eq!(frame.samples.len(), SAMPLES_PER_10MS);
                        let _ = stream.push_audio(&frame.samples, ts);
                        next_audio += Duration::from_millis(10);
                    }
                }
            }
        }
    })
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
