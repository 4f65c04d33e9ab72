//! The video bitrate target: loss-based control from the receiver's reports, cut when a
//! queue stands on the path (`path`: transport-wide feedback, several times a second), and
//! capped by the receiver's own estimate (REMB) when it sends one; and the frame rate that
//! target can carry.
//!
//! A queue means the path carries less than is sent, and while it stands the bottleneck is
//! busy, so what the feedback says arrived is the path's rate. The cut takes video below
//! that, less audio (`DRAIN`), so the queue drains instead of overflowing into loss; it is cut
//! again only if what was sent after the cut still outruns the path (a full queue takes a
//! second or two to drain, and a second cut for a queue already draining left the target
//! at its floor). Near the rate where the queue showed it grows gently,
//! well past it without a queue the path has changed (a cap lifted) and it grows fast
//! again.
//!
//! Why not GCC's estimate (used here before): a video call is application-limited, GCC backs
//! off from the rate it sees delivered on each delay-gradient false alarm, and a lossy but
//! uncongested path lowered the target for good (300 to 100 kbit/s in 10 s). Why not the
//! round trip (before that): ICE's consent checks measure it every 2 s, and a 150 kbit/s
//! link's queue had overflowed long before (the call froze for seconds at its start).

use std::time::{Duration, Instant};

use super::path::PathSignal;

/// Below this loss the link has room: grow. Above `BACK_OFF` it is congested: shrink.
const GROW_BELOW: f64 = 0.02;
const BACK_OFF_ABOVE: f64 = 0.10;
/// A cut leaves video this share of what the path delivers, less audio (32 kbit/s of Opus
/// with its RTP headers, as the feedback counts it): under the path's rate, so the queue
/// drains, with room for retransmissions.
const DRAIN: f64 = 0.85;
const AUDIO_BPS: f64 = 40_000.0;
/// What was sent after a cut, while the queue stands, is cut again if the path delivered
/// under this share of it (the queue still grows).
const RECUT_BELOW: f64 = 0.95;
/// Below these targets a frame at full rate gets too few bits to look like anything:
/// fewer, better frames instead.
const FPS_STEPS: [(u32, u32); 2] = [(60_000, 10), (100_000, 15)];
/// A one-way delay this far over the least seen means a queue on the path; under
/// `CLEARED` again, it has (nearly) drained.
const QUEUEING: Duration = Duration::from_millis(80);
const CLEARED: Duration = Duration::from_millis(30);
/// Growth a report (about a second) while the link shows room (loss under `GROW_BELOW`, no
/// queue), and between `NEAR_QUEUE` times the rate that last made a queue. A cut leaves
/// the target well under that rate (the path's rate less a margin and audio), and the
/// way back to it is fast; near it, gentle, since the queue shows a second late.
const GROWTH: f64 = 1.25;
const GROWTH_NEAR_QUEUE: f64 = 1.1;
const NEAR_QUEUE: (f64, f64) = (0.85, 1.25);

#[derive(Debug, Clone)]
pub(crate) struct RateControl {
    target: u32,
    /// Whether the path's latest signal shows a queue, and when the target was last cut
    /// for it.
    queueing: bool,
    cut_at: Option<Instant>,
    /// The target that last made a queue (before its cut).
    queued_at: Option<u32>,
    min: u32,
    max: u32,
}

impl RateControl {
    /// Starts at half the maximum: enough for a good first picture, with room to grow.
    pub(crate) fn new(max_bps: u32) -> Self {
        let min = 50_000.min(max_bps);
        RateControl {
            target: (max_bps / 2).max(min),
            queueing: false,
            cut_at: None,
            queued_at: None,
            min,
            max: max_bps,
        }
    }

    /// What the encoder should aim at now.
    pub(crate) fn target(&self) -> u32 {
        self.target
    }

    /// The path's latest signal. Returns the new target.
    pub(crate) fn on_path(&mut self, signal: PathSignal) -> u32 {
        let queue = signal.queue_delay;
        if queue > QUEUEING {
            self.queueing = true;
            // Cut once the share is known (feedback over a few hundred ms), and again if what
            // was sent after that cut still outran what the path delivers: the first share
            // was read while the queue was still filling from before.
            let sent_after_cut = |at| signal.sent_since.is_some_and(|s| s >= at);
            let due = match self.cut_at {
                None => true,
                Some(at) => {
                    sent_after_cut(at) && signal.delivered_share().is_some_and(|s| s < RECUT_BELOW)
                }
            };
            if let Some(delivered) = signal.delivered_bps.filter(|_| due) {
                if self.cut_at.is_none() {
                    self.queued_at = Some(self.target);
                }
                let video = f64::from(delivered) * DRAIN - AUDIO_BPS;
                self.set(video.min(f64::from(self.target)));
                self.cut_at = Some(signal.at);
            }
        } else if queue < CLEARED {
            self.queueing = false;
            self.cut_at = None;
        }
        self.target
    }

    /// The shortest time between frames the current target can carry, if any.
    pub(crate) fn min_frame_interval(&self) -> Option<Duration> {
        FPS_STEPS
            .iter()
            .find(|(below, _)| self.target < *below)
            .map(|(_, fps)| Duration::from_secs(1) / *fps)
    }

    /// One receiver report's fraction lost (0..1) and the latest REMB, if any. Returns the
    /// new target.
    pub(crate) fn on_report(&mut self, fraction_lost: f64, remb_bps: Option<u32>) -> u32 {
        let t = f64::from(self.target);
        if fraction_lost > BACK_OFF_ABOVE {
            self.set(t * (1.0 - 0.5 * fraction_lost));
        } else if fraction_lost < GROW_BELOW && !self.queueing {
            let (below, above) = NEAR_QUEUE;
            let near_queue =
                self.queued_at.map(f64::from).is_some_and(|q| t > q * below && t < q * above);
            self.set(t * if near_queue { GROWTH_NEAR_QUEUE } else { GROWTH } + 1_000.0);
        }
        if let Some(remb) = remb_bps.filter(|r| *r > 0) {
            self.target = self.target.min(remb).max(self.min);
        }
        self.target
    }

    fn set(&mut self, bps: f64) {
        // Clamped to the u32 range first; what is left of the fraction does not matter.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let bps = bps.clamp(0.0, f64::from(u32::MAX)) as u32;
        self.target = bps.clamp(self.min, self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_on_a_clean_link_up_to_the_maximum() {
        let mut r = RateControl::new(1_000_000);
        assert_eq!(r.target(), 500_000);
        for _ in 0..30 {
            r.on_report(0.0, None);
        }
        assert_eq!(r.target(), 1_000_000);
    }

    #[test]
    fn backs_off_under_loss_and_holds_in_between() {
        let mut r = RateControl::new(1_000_000);
        let before = r.target();
        assert!(r.on_report(0.3, None) < before);
        let held = r.target();
        assert_eq!(r.on_report(0.05, None), held);
        for _ in 0..50 {
            r.on_report(0.5, None);
        }
        assert_eq!(r.target(), 50_000, "never below the floor");
    }

    /// Signals of feedback arriving on a clock of milliseconds from its start.
    struct Path(Instant);

    impl Path {
        /// At `at_ms`, `queue_ms` of queue, and the path delivering `delivered` kbit/s of
        /// the `sent` kbit/s sent from `sent_ms` on.
        fn signal(
            &self,
            at_ms: u64,
            queue_ms: u64,
            delivered: u32,
            sent: u32,
            sent_ms: u64,
        ) -> PathSignal {
            let ms = |t| self.0 + Duration::from_millis(t);
            PathSignal {
                at: ms(at_ms),
                queue_delay: Duration::from_millis(queue_ms),
                delivered_bps: Some(delivered * 1_000),
                sent_bps: Some(sent * 1_000),
                sent_since: Some(ms(sent_ms)),
            }
        }
    }

    #[test]
    fn a_queue_cuts_video_below_what_the_path_delivers_less_audio() {
        let p = Path(Instant::now());
        let mut r = RateControl::new(1_000_000);
        assert_eq!(r.on_path(p.signal(1_000, 20, 150, 150, 500)), 500_000, "no queue");
        assert_eq!(r.on_path(p.signal(1_100, 120, 150, 500, 600)), 87_500, "85% less 40k");
        assert_eq!(r.min_frame_interval(), Some(Duration::from_secs(1) / 15));
        assert_eq!(
            r.on_path(p.signal(1_600, 300, 100, 500, 1_000)),
            87_500,
            "what was sent before the cut says nothing of it"
        );
        for _ in 0..2 {
            r.on_report(0.0, None);
        }
        assert_eq!(r.target(), 87_500, "no growth while the queue stands");
        assert_eq!(r.on_path(p.signal(2_000, 50, 150, 130, 1_500)), 87_500, "not drained yet");
        assert_eq!(
            r.on_path(p.signal(2_100, 10, 130, 130, 1_600)),
            87_500,
            "drained, and no jump back"
        );
    }

    #[test]
    fn a_queue_waits_for_its_rate_and_one_that_drains_is_not_cut_again() {
        let p = Path(Instant::now());
        let mut r = RateControl::new(1_000_000);
        let unknown = PathSignal { delivered_bps: None, ..p.signal(100, 100, 0, 0, 0) };
        assert_eq!(r.on_path(unknown), 500_000, "no cut before the rate is known");
        assert_eq!(r.on_path(p.signal(300, 200, 300, 600, 0)), 215_000);
        assert_eq!(
            r.on_path(p.signal(1_200, 250, 300, 250, 400)),
            215_000,
            "sent after the cut, and draining: no second cut"
        );
        assert_eq!(
            r.on_path(p.signal(1_300, 300, 200, 250, 500)),
            130_000,
            "still filling: the path is slower than it was"
        );
    }

    #[test]
    fn a_cut_never_raises_it_nor_takes_it_below_the_floor() {
        let p = Path(Instant::now());
        let mut r = RateControl::new(200_000);
        assert_eq!(r.on_path(p.signal(100, 120, 1_000, 1_000, 0)), 100_000, "not raised");
        r.on_path(p.signal(200, 0, 100, 100, 0));
        assert_eq!(r.on_path(p.signal(300, 500, 10, 100, 0)), 50_000, "a new queue; the floor");
        assert_eq!(r.min_frame_interval(), Some(Duration::from_secs(1) / 10));
    }

    #[test]
    fn after_a_queue_it_grows_fast_back_gently_near_that_rate_then_fast_past_it() {
        let p = Path(Instant::now());
        let mut r = RateControl::new(300_000);
        r.on_path(p.signal(100, 100, 140, 300, 0));
        r.on_path(p.signal(200, 0, 100, 100, 0));
        assert_eq!(r.target(), 79_000, "cut from 150 kbit/s");
        assert_eq!(r.min_frame_interval(), Some(Duration::from_secs(1) / 15));
        let mut steps = vec![];
        for _ in 0..6 {
            steps.push(r.on_report(0.0, None));
        }
        // 25% a report up to 0.85 times 150 kbit/s, 10% up to 1.25 times, then 25%.
        assert_eq!(steps, [99_750, 125_687, 158_108, 174_918, 193_409, 242_761]);
        assert_eq!(r.min_frame_interval(), None, "back at full rate");
    }

    #[test]
    fn the_receivers_estimate_caps_it() {
        let mut r = RateControl::new(1_000_000);
        assert_eq!(r.on_report(0.0, Some(200_000)), 200_000);
        assert_eq!(r.on_report(0.0, Some(10)), 50_000, "but not below the floor");
    }
}
