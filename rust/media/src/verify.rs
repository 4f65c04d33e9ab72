//! Checking decoded frames against the synthetic camera, as the far side of a call sees them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::pattern::matches_beyond_counter;
use crate::{read_counter, VideoFrame};

/// Counts decoded frames and how many of them are the test pattern with a counter that only
/// goes up. A counter may skip (a busy encoder drops a frame) but never repeats or goes back.
#[derive(Debug, Default)]
pub struct PatternVerifier {
    frames: AtomicU64,
    verified: AtomicU64,
    wrong: AtomicU64,
    last: Mutex<Option<u32>>,
}

/// What one frame showed (`PatternVerifier::read`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// The counter it carries, if one reads back.
    pub counter: Option<u32>,
    /// It carries a counter and the rest of the pattern matches it (an undamaged picture).
    pub matches: bool,
    /// It matches and its counter is above the last verified one.
    pub verified: bool,
}

impl PatternVerifier {
    /// Checks one frame; true if it verified.
    pub fn check(&self, frame: &VideoFrame) -> bool {
        self.read(frame).verified
    }

    /// Checks one frame and says what it showed; the frame is read once (a 720p call's
    /// checks cost a few per cent of its CPU when each caller read it again).
    pub fn read(&self, frame: &VideoFrame) -> Reading {
        self.frames.fetch_add(1, Ordering::Relaxed);
        let counter = read_counter(frame);
        let matches = counter.is_some_and(|n| matches_beyond_counter(frame, n));
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let verified = match counter {
            Some(n) if matches && last.is_none_or(|l| n > l) => {
                *last = Some(n);
                true
            }
            _ => false,
        };
        let tally = if verified { &self.verified } else { &self.wrong };
        tally.fetch_add(1, Ordering::Relaxed);
        Reading { counter, matches, verified }
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
