//! What the CLI checks in the video it receives. A Duet peer sends the synthetic pattern,
//! and its frames are checked against it. Any other peer (a browser's camera, an app's)
//! sends a picture nobody can predict; then the check is that frames decode, keep arriving
//! while the call lasts, and are not blank.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use duet_core::VideoFrame;
use duet_media::{PatternVerifier, Reading};
use serde_json::{json, Value};

/// A foreign peer's video must show at least this many frames...
const MIN_FRAMES: u64 = 5;
/// ...with no pause longer than this between them, or between the last one and the end.
const MAX_GAP: Duration = Duration::from_millis(1500);
/// A picture whose luma varies less than this (standard deviation, 0-255) is one flat
/// colour: black, grey, a frozen fill.
const BLANK_STDDEV: f64 = 2.0;
/// A pause between verified frames longer than this is a freeze: a viewer sees it stop.
const FREEZE: Duration = Duration::from_millis(500);
/// Freezes kept with their times (the count goes on past it): a bound, not a limit a
/// 20 s call meets.
const MAX_FREEZES_KEPT: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Every frame against Duet's test pattern and its counter.
    Pattern,
    /// Frames decode, keep arriving and are not blank.
    Decoded,
}

impl Check {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Check::Pattern => "pattern",
            Check::Decoded => "decoded",
        }
    }
}

#[derive(Default, Clone)]
struct Arrivals {
    first: Option<Instant>,
    last: Option<Instant>,
    longest_gap: Duration,
    /// Verified frames only: what a viewer of Duet's pattern saw move.
    first_verified: Option<Instant>,
    last_verified: Option<(Instant, SystemTime)>,
    longest_verified_gap: Duration,
    freezes: Vec<Freeze>,
    freeze_count: u64,
}

/// A pause of more than [`FREEZE`] between verified frames (or from the last one to the
/// end of the call). Wall-clock times, so that a script can match them to the moments it
/// impaired the network from another process.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Freeze {
    pub(crate) from_unix_ms: u64,
    pub(crate) ms: u64,
    /// True if no verified frame came after it: the video never resumed.
    pub(crate) until_end: bool,
}

impl Arrivals {
    fn on_verified(&mut self, now: Instant, wall: SystemTime) {
        if let Some((last, last_wall)) = self.last_verified {
            self.note_gap(now - last, last_wall, false);
        }
        self.first_verified.get_or_insert(now);
        self.last_verified = Some((now, wall));
    }

    fn note_gap(&mut self, gap: Duration, from: SystemTime, until_end: bool) {
        self.longest_verified_gap = self.longest_verified_gap.max(gap);
        if gap <= FREEZE {
            return;
        }
        self.freeze_count += 1;
        if self.freezes.len() < MAX_FREEZES_KEPT {
            let ms = u64::try_from(gap.as_millis()).unwrap_or(u64::MAX);
            self.freezes.push(Freeze { from_unix_ms: unix_ms(from), ms, until_end });
        }
    }
}

/// What the verified video looked like over a whole call.
#[derive(Debug, Clone, Default)]
pub(crate) struct Smoothness {
    /// From the first verified frame to the end of the call.
    pub(crate) span: Option<Duration>,
    pub(crate) longest_gap: Option<Duration>,
    pub(crate) freeze_count: u64,
    pub(crate) freezes: Vec<Freeze>,
}

impl Smoothness {
    /// The summary's `video` object (docs/network-bed.md names its fields).
    pub(crate) fn to_json(&self) -> Value {
        let ms = |d: Duration| (d.as_secs_f64() * 10_000.0).round() / 10.0;
        let freezes: Vec<Value> = self
            .freezes
            .iter()
            .map(|f| json!({"from_unix_ms": f.from_unix_ms, "ms": f.ms, "until_end": f.until_end}))
            .collect();
        json!({
            "span_ms": self.span.map(ms),
            "longest_verified_gap_ms": self.longest_gap.map(ms),
            "freezes_over_500ms": self.freeze_count,
            "freezes": freezes,
        })
    }
}

pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[derive(Default)]
pub(crate) struct VideoCheck {
    pattern: PatternVerifier,
    /// Frames that carry Duet's counter, whether or not they verified: a Duet peer's.
    duet_frames: AtomicU64,
    /// Frames that failed the pattern: a damaged picture shown (an old frame shown again
    /// is not counted: its picture is right, only late).
    corrupted: AtomicU64,
    not_blank: AtomicU64,
    arrivals: Mutex<Arrivals>,
}

impl VideoCheck {
    pub(crate) fn on_frame(&self, frame: &VideoFrame) {
        let now = Instant::now();
        let Reading { counter, matches, verified } = self.pattern.read(frame);
        if counter.is_some() {
            self.duet_frames.fetch_add(1, Ordering::Relaxed);
        }
        // A frame of a Duet peer whose counter cannot be read is damaged too.
        let damaged = match counter {
            Some(_) => !matches,
            None => self.duet_frames.load(Ordering::Relaxed) > 0,
        };
        if !verified && damaged {
            self.corrupted.fetch_add(1, Ordering::Relaxed);
        }
        // A counter reads back only from a band of black and white cells: not one flat colour.
        if counter.is_some() || !is_blank(frame) {
            self.not_blank.fetch_add(1, Ordering::Relaxed);
        }
        let mut a = self.arrivals.lock().unwrap_or_else(|p| p.into_inner());
        if verified {
            a.on_verified(now, SystemTime::now());
        }
        if let Some(last) = a.last {
            a.longest_gap = a.longest_gap.max(now - last);
        }
        a.first.get_or_insert(now);
        a.last = Some(now);
    }

    pub(crate) fn frames(&self) -> u64 {
        self.pattern.frames()
    }

    pub(crate) fn verified(&self) -> u64 {
        self.pattern.verified()
    }

    pub(crate) fn corrupted(&self) -> u64 {
        self.corrupted.load(Ordering::Relaxed)
    }

    /// Freezes and gaps of the verified video of a call that ended at `end`.
    pub(crate) fn smoothness(&self, end: Instant) -> Smoothness {
        let mut a = self.arrivals.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let Some((last, last_wall)) = a.last_verified else {
            return Smoothness::default();
        };
        a.note_gap(end.saturating_duration_since(last), last_wall, true);
        Smoothness {
            span: a.first_verified.map(|f| end.saturating_duration_since(f)),
            longest_gap: Some(a.longest_verified_gap),
            freeze_count: a.freeze_count,
            freezes: a.freezes,
        }
    }

    pub(crate) fn not_blank(&self) -> u64 {
        self.not_blank.load(Ordering::Relaxed)
    }

    /// Which check applies: the pattern's as soon as one frame carries Duet's counter, so a
    /// Duet peer whose frames are damaged fails rather than passing as foreign.
    pub(crate) fn check(&self) -> Check {
        if self.duet_frames.load(Ordering::Relaxed) > 0 {
            Check::Pattern
        } else {
            Check::Decoded
        }
    }

    /// The longest pause in the video, counting the one from the last frame to `end`.
    pub(crate) fn longest_gap(&self, end: Instant) -> Option<Duration> {
        let a = self.arrivals.lock().unwrap_or_else(|p| p.into_inner());
        let last = a.last?;
        Some(a.longest_gap.max(end.saturating_duration_since(last)))
    }

    /// Whether the video of a call that ended at `end` passes its check.
    pub(crate) fn passed(&self, end: Instant) -> bool {
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
            *v = ((i % w + i / w) * 3 + n as usize).to_le_bytes()[0];
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
    fn pauses_between_verified_frames_over_half_a_second_are_freezes() {
        let mut a = Arrivals::default();
        let (t0, wall) = (Instant::now(), SystemTime::now());
        for ms in [0, 33, 66, 900, 933] {
            a.on_verified(t0 + Duration::from_millis(ms), wall + Duration::from_millis(ms));
        }
        assert_eq!(a.freeze_count, 1);
        assert_eq!(a.freezes[0].ms, 834);
        assert_eq!(a.freezes[0].from_unix_ms, unix_ms(wall + Duration::from_millis(66)));
        assert!(!a.freezes[0].until_end);
        assert_eq!(a.longest_verified_gap, Duration::from_millis(834));
    }

    #[test]
    fn video_that_stops_before_the_end_ends_in_a_freeze() {
        let c = VideoCheck::default();
        let p = TestPattern::new(320, 240);
        c.on_frame(&p.frame(1, 0));
        let s = c.smoothness(Instant::now() + Duration::from_secs(2));
        assert_eq!(s.freeze_count, 1);
        assert!(s.freezes[0].until_end);
        assert!(s.longest_gap.is_some_and(|g| g >= Duration::from_secs(2)));
        assert_eq!(VideoCheck::default().smoothness(Instant::now()).freeze_count, 0);
    }

    #[test]
    fn a_damaged_duet_frame_counts_as_corrupted_a_repeated_one_does_not() {
        let c = VideoCheck::default();
        let p = TestPattern::new(320, 240);
        c.on_frame(&p.frame(1, 0));
        c.on_frame(&p.frame(2, 0));
        c.on_frame(&p.frame(2, 0)); // shown again: right picture, only late
        let mut damaged = p.frame(3, 0);
        let w = damaged.width as usize;
        for v in &mut damaged.data[w * 120..w * 200] {
            *v = v.wrapping_add(128);
        }
        c.on_frame(&damaged);
        assert_eq!((c.frames(), c.verified(), c.corrupted()), (4, 2, 1));
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
