//! What the CLI checks in the video it receives. A Duet peer sends the synthetic pattern,
//! and its frames are checked against it. Any other peer (a browser's camera, an app's)
//! sends a picture nobody can predict; then the check is that frames decode, keep arriving
//! while the call lasts, and are not blank.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use duet_core::VideoFrame;
use duet_media::{read_counter, PatternVerifier};

/// A foreign peer's video must show at least this many frames...
const MIN_FRAMES: u64 = 5;
/// ...with no pause longer than this between them, or between the last one and the end.
const MAX_GAP: Duration = Duration::from_millis(1500);
/// A picture whose luma varies less than this (standard deviation, 0-255) is one flat
/// colour: black, grey, a frozen fill.
const BLANK_STDDEV: f64 = 2.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Every frame against Duet's test pattern and its counter.
    Pattern,
    /// Frames decode, keep arriving and are not blank.
    Decoded,
}

impl Check {
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Pattern => "pattern",
            Check::Decoded => "decoded",
        }
    }
}

#[derive(Default)]
struct Arrivals {
    first: Option<Instant>,
    last: Option<Instant>,
    longest_gap: Duration,
}

#[derive(Default)]
pub struct VideoCheck {
    pattern: PatternVerifier,
    /// Frames that carry Duet's counter, whether or not they verified: a Duet peer's.
    duet_frames: AtomicU64,
    not_blank: AtomicU64,
    arrivals: Mutex<Arrivals>,
}

impl VideoCheck {
    pub fn on_frame(&self, frame: &VideoFrame) {
        let now = Instant::now();
        if self.pattern.check(frame) || read_counter(frame).is_some() {
            self.duet_frames.fetch_add(1, Ordering::Relaxed);
        }
        if !is_blank(frame) {
            self.not_blank.fetch_add(1, Ordering::Relaxed);
        }
        let mut a = self.arrivals.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(last) = a.last {
            a.longest_gap = a.longest_gap.max(now - last);
        }
        a.first.get_or_insert(now);
        a.last = Some(now);
    }

    pub fn frames(&self) -> u64 {
        self.pattern.frames()
    }

    pub fn verified(&self) -> u64 {
        self.pattern.verified()
    }

    pub fn not_blank(&self) -> u64 {
        self.not_blank.load(Ordering::Relaxed)
    }

    /// Which check applies: the pattern's as soon as one frame carries Duet's counter, so a
    /// Duet peer whose frames are damaged fails rather than passing as foreign.
    pub fn check(&self) -> Check {
        if self.duet_frames.load(Ordering::Relaxed) > 0 {
            Check::Pattern
        } else {
            Check::Decoded
        }
    }

    /// The longest pause in the video, counting the one from the last frame to `end`.
    pub fn longest_gap(&self, end: Instant) -> Option<Duration> {
        let a = self.arrivals.lock().unwrap_or_else(|p| p.into_inner());
        let last = a.last?;
        Some(a.longest_gap.max(end.saturating_duration_since(last)))
    }

    /// Whether the video of a call that ended at `end` passes its check.
    pub fn passed(&self, end: Instant) -> bool {
        match self.check() {
            Check::Pattern => self.verified() > 0,
            Check::Decoded => {
                let frames = self.frames();
                frames >= MIN_FRAMES
                    && self.not_blank() * 2 >= frames
                    && self.longest_gap(end).is_some_and(|g| g <= MAX_GAP)
            }
        }
    }
}

/// True if the picture is one flat colour, judged from its luma on a sparse grid.
fn is_blank(frame: &VideoFrame) -> bool {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let y = frame.y();
    if w == 0 || h == 0 || y.len() < w * h {
        return true;
    }
    let (mut n, mut sum, mut sum_sq) = (0f64, 0f64, 0f64);
    for row in (0..h).step_by(4) {
        for &v in y[row * w..(row + 1) * w].iter().step_by(4) {
            let v = f64::from(v);
            n += 1.0;
            sum += v;
            sum_sq += v * v;
        }
    }
    let mean = sum / n;
    (sum_sq / n - mean * mean).max(0.0).sqrt() < BLANK_STDDEV
}

#[cfg(test)]
mod tests {
    use super::*;
    use duet_media::TestPattern;

    /// A picture that is not Duet's: a diagonal gradient, moving with `n`.
    fn foreign(n: u32) -> VideoFrame {
        let mut f = VideoFrame::black(64, 48, 0);
        let w = f.width as usize;
        for (i, v) in f.data[..64 * 48].iter_mut().enumerate() {
            *v = ((i % w + i / w) as u32 * 3 + n) as u8;
        }
        f
    }

    #[test]
    fn duet_frames_are_checked_against_the_pattern() {
        let c = VideoCheck::default();
        let p = TestPattern::new(320, 240);
        c.on_frame(&p.frame(1, 0));
        c.on_frame(&p.frame(2, 0));
        assert_eq!(c.check(), Check::Pattern);
        assert_eq!(c.verified(), 2);
        assert!(c.passed(Instant::now()));
    }

    #[test]
    fn a_foreign_picture_passes_when_frames_keep_coming_and_show_something() {
        let c = VideoCheck::default();
        for n in 0..10 {
            c.on_frame(&foreign(n));
        }
        assert_eq!(c.check(), Check::Decoded);
        assert_eq!((c.frames(), c.verified(), c.not_blank()), (10, 0, 10));
        assert!(c.passed(Instant::now()));
        assert!(!c.passed(Instant::now() + MAX_GAP * 2), "video that stopped long before the end");
    }

    #[test]
    fn black_frames_or_too_few_fail() {
        let black = VideoCheck::default();
        for _ in 0..10 {
            black.on_frame(&VideoFrame::black(64, 48, 0));
        }
        assert_eq!(black.check(), Check::Decoded);
        assert!(!black.passed(Instant::now()));

        let few = VideoCheck::default();
        few.on_frame(&foreign(0));
        assert!(!few.passed(Instant::now()));
        assert!(!VideoCheck::default().passed(Instant::now()), "no video at all");
    }
}
