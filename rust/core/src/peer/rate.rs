//! The video bitrate target: loss-based control from the receiver's reports, capped by the
//! congestion controller's estimate of the path (GCC in the interceptor chain: delay and
//! loss from transport-wide feedback; `setup::media_engine`) while the round trip shows a
//! queue building, and by the receiver's own estimate (REMB) when it sends one; and the
//! frame rate that target can carry.
//!
//! Why GCC only while the round trip grows: a video call is application-limited (the
//! encoder sends what it is told), and GCC backs off from the rate it sees delivered, so
//! each delay-variation false alarm on a lossy but uncongested path (5% loss, a jittery
//! router) lowered the target for good (measured: 300 to 100 kbit/s in 10 s). A queue
//! really building shows in the round trip too (150 kbit/s cap: 100 ms to 500-1000 ms).
//!
//! The round trip shows a queue a second or two late, so a target that grew freely until
//! then had long overfilled the link. When a queue shows, the loss-based target comes down
//! to the path's estimate too (without that it snapped back to 600 kbit/s the moment the
//! queue drained, and a 150 kbit/s link froze for 2-3 s every 8 s), and near the rate where
//! the queue last showed it grows gently; well past that rate without a queue, the path
//! has changed (a cap lifted) and it grows fast again.

use std::time::Duration;

/// Below this loss the link has room: grow. Above `BACK_OFF` it is congested: shrink.
const GROW_BELOW: f64 = 0.02;
const BACK_OFF_ABOVE: f64 = 0.10;
/// What video leaves of the path's estimate: audio (32 kbit/s of Opus, about 48 with its
/// headers) and a margin for retransmissions and the estimate's own error.
const AUDIO_ALLOWANCE_BPS: f64 = 48_000.0;
const VIDEO_SHARE: f64 = 0.85;
/// Below these targets a frame at full rate gets too few bits to look like anything:
/// fewer, better frames instead.
const FPS_STEPS: [(u32, u32); 2] = [(70_000, 10), (120_000, 15)];
/// A round trip this far over the least seen means a queue on the path; under `CLEARED`
/// again, it has drained.
/// A round trip over `QUEUED_ANYWAY` counts as a queue even when no shorter one has been
/// seen: a call that starts on a congested link never sees its path's real round trip.
const QUEUEING: Duration = Duration::from_millis(100);
const CLEARED: Duration = Duration::from_millis(50);
const QUEUED_ANYWAY: Duration = Duration::from_millis(400);
/// Growth a second while the link shows room (loss under `GROW_BELOW`, no queue), and
/// below `NEAR_QUEUE` times the rate where a queue last showed.
const GROWTH: f64 = 1.2;
const GROWTH_NEAR_QUEUE: f64 = 1.1;
const NEAR_QUEUE: f64 = 1.25;

#[derive(Debug, Clone)]
pub(crate) struct RateControl {
    /// The loss-based target.
    target: u32,
    /// The video share of the path's estimate, once there is one.
    ceiling: Option<u32>,
    /// The least round trip seen, and whether the latest shows a queue.
    base_rtt: Option<Duration>,
    queueing: bool,
    /// The target when a queue last showed, as the path's estimate brought it down.
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
            ceiling: None,
            base_rtt: None,
            queueing: false,
            queued_at: None,
            min,
            max: max_bps,
        }
    }

    /// What the encoder should aim at now.
    pub(crate) fn target(&self) -> u32 {
        let ceiling = self.ceiling.filter(|_| self.queueing);
        ceiling.map_or(self.target, |c| self.target.min(c)).clamp(self.min, self.max)
    }

    /// The latest round trip (from the receiver's reports). Returns the new target.
    pub(crate) fn on_rtt(&mut self, rtt: Duration) -> u32 {
        let base = *self.base_rtt.insert(self.base_rtt.map_or(rtt, |b| b.min(rtt)));
        let queue = (base + QUEUEING).min(QUEUED_ANYWAY);
        if rtt > queue {
            if !self.queueing {
                self.queueing = true;
                self.target = self.target();
                self.queued_at = Some(self.target);
            }
        } else if rtt < queue - (QUEUEING - CLEARED) {
            self.queueing = false;
        }
        self.target()
    }

    /// The congestion controller's estimate of the path, audio and video together.
    pub(crate) fn on_estimate(&mut self, path_bps: u32) -> u32 {
        let video = f64::from(path_bps) * VIDEO_SHARE - AUDIO_ALLOWANCE_BPS;
        // Clamped to the u32 range first; what is left of the fraction does not matter.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let video = video.clamp(0.0, f64::from(u32::MAX)) as u32;
        self.ceiling = Some(video);
        self.target()
    }

    /// The shortest time between frames the current target can carry, if any.
    pub(crate) fn min_frame_interval(&self) -> Option<Duration> {
        let target = self.target();
        FPS_STEPS
            .iter()
            .find(|(below, _)| target < *below)
            .map(|(_, fps)| Duration::from_secs(1) / *fps)
    }

    /// One receiver report's fraction lost (0..1) and the latest REMB, if any. Returns the
    /// new target.
    pub(crate) fn on_report(&mut self, fraction_lost: f64, remb_bps: Option<u32>) -> u32 {
        let t = f64::from(self.target);
        let next = if fraction_lost > BACK_OFF_ABOVE {
            t * (1.0 - 0.5 * fraction_lost)
        } else if fraction_lost < GROW_BELOW && !self.queueing {
            let near_queue = self.queued_at.is_some_and(|q| t < f64::from(q) * NEAR_QUEUE);
            t * if near_queue { GROWTH_NEAR_QUEUE } else { GROWTH } + 1_000.0
        } else {
            t
        };
        // Clamped to the u32 range first; what is left of the fraction does not matter.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let mut next = next.clamp(0.0, f64::from(u32::MAX)) as u32;
        if let Some(remb) = remb_bps.filter(|r| *r > 0) {
            next = next.min(remb);
        }
        self.target = next.clamp(self.min, self.max);
        self.target()
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

    #[test]
    fn the_paths_estimate_caps_it_while_a_queue_builds() {
        let mut r = RateControl::new(1_000_000);
        r.on_rtt(Duration::from_millis(100));
        assert_eq!(r.on_estimate(150_000), 500_000, "no queue: the estimate is not trusted");
        assert_eq!(r.on_rtt(Duration::from_millis(400)), 79_500, "85% of the path less audio");
        assert_eq!(r.min_frame_interval(), Some(Duration::from_secs(1) / 15));
        for _ in 0..10 {
            r.on_report(0.0, None);
        }
        assert_eq!(r.target(), 79_500);
        assert_eq!(r.on_rtt(Duration::from_millis(170)), 79_500, "not drained yet");
        assert_eq!(
            r.on_rtt(Duration::from_millis(110)),
            79_500,
            "drained: the loss target, which the queue brought down"
        );
        r.on_rtt(Duration::from_millis(900));
        assert_eq!(r.on_estimate(10_000), 50_000, "never below the floor");
    }

    #[test]
    fn a_call_that_starts_congested_still_sees_the_queue() {
        let mut r = RateControl::new(1_000_000);
        r.on_estimate(150_000);
        assert_eq!(r.on_rtt(Duration::from_millis(600)), 79_500);
        assert_eq!(r.on_rtt(Duration::from_millis(120)), 79_500, "drained, and no jump back");
    }

    #[test]
    fn after_a_queue_it_grows_gently_near_that_rate_then_fast_past_it() {
        let mut r = RateControl::new(1_000_000);
        r.on_rtt(Duration::from_millis(100));
        r.on_estimate(150_000);
        r.on_rtt(Duration::from_millis(400));
        r.on_rtt(Duration::from_millis(100));
        assert_eq!(r.target(), 79_500);
        let mut steps = vec![];
        for _ in 0..5 {
            steps.push(r.on_report(0.0, None));
        }
        // 10% a report up to 1.25 times 79.5 kbit/s, then 20%.
        assert_eq!(steps, [88_450, 98_295, 109_124, 131_948, 159_337]);
        assert_eq!(r.min_frame_interval(), None, "back at full rate");
    }

    #[test]
    fn the_receivers_estimate_caps_it() {
        let mut r = RateControl::new(1_000_000);
        assert_eq!(r.on_report(0.0, Some(200_000)), 200_000);
        assert_eq!(r.on_report(0.0, Some(10)), 50_000, "but not below the floor");
    }
}
