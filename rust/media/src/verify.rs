//! Checking decoded frames against the synthetic camera, as the far side of a call sees them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::{matches_pattern, read_counter, VideoFrame};

/// Counts decoded frames and how many of them are the test pattern with a counter that only
/// goes up. A counter may skip (a busy encoder drops a frame) but never repeats or goes back.
#[derive(Debug, Default)]
pub struct PatternVerifier {
    frames: AtomicU64,
    verified: AtomicU64,
    wrong: AtomicU64,
    last: Mutex<Option<u32>>,
}

impl PatternVerifier {
    /// Checks one frame; true if it verified.
    pub fn check(&self, frame: &VideoFrame) -> bool {
        self.frames.fetch_add(1, Ordering::Relaxed);
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let ok = match read_counter(frame) {
            Some(n) if matches_pattern(frame, n) && last.is_none_or(|l| n > l) => {
                *last = Some(n);
                true
            }
            _ => false,
        };
        let counter = if ok { &self.verified } else { &self.wrong };
        counter.fetch_add(1, Ordering::Relaxed);
        ok
    }

    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    pub fn verified(&self) -> u64 {
        self.verified.load(Ordering::Relaxed)
    }

    pub fn wrong(&self) -> u64 {
        self.wrong.load(Ordering::Relaxed)
    }

    /// The latest verified counter.
    pub fn last_counter(&self) -> Option<u32> {
        *self.last.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TestPattern;

    #[test]
    fn counts_increasing_pattern_frames_and_refuses_the_rest() {
        let p = TestPattern::new(160, 120);
        let v = PatternVerifier::default();
        assert!(v.check(&p.frame(1, 0)));
        assert!(v.check(&p.frame(3, 0)), "a skipped frame is fine");
        assert!(!v.check(&p.frame(3, 0)), "a repeat is not");
        assert!(!v.check(&p.frame(2, 0)), "nor going back");
        assert!(!v.check(&VideoFrame::black(160, 120, 0)));
        assert_eq!((v.frames(), v.verified(), v.wrong()), (5, 2, 3));
        assert_eq!(v.last_counter(), Some(3));
    }
}
