//! The video bitrate target: loss-based control from the receiver's reports (the part of
//! Google's congestion control that needs no delay model), capped by the receiver's own
//! estimate (REMB) when it sends one. webrtc-rs 0.21 has no send-side bandwidth estimator
//! of its own, so this is where the encoder's target comes from.

/// Below this loss the link has room: grow. Above `BACK_OFF` it is congested: shrink.
const GROW_BELOW: f64 = 0.02;
const BACK_OFF_ABOVE: f64 = 0.10;

#[derive(Debug, Clone)]
pub(crate) struct RateControl {
    target: u32,
    min: u32,
    max: u32,
}

impl RateControl {
    /// Starts at half the maximum: enough for a good first picture, with room to grow.
    pub(crate) fn new(max_bps: u32) -> Self {
        let min = 50_000.min(max_bps);
        RateControl { target: (max_bps / 2).max(min), min, max: max_bps }
    }

    pub(crate) fn target(&self) -> u32 {
        self.target
    }

    /// One receiver report's fraction lost (0..1) and the latest REMB, if any. Returns the
    /// new target.
    pub(crate) fn on_report(&mut self, fraction_lost: f64, remb_bps: Option<u32>) -> u32 {
        let t = f64::from(self.target);
        let next = if fraction_lost > BACK_OFF_ABOVE {
            t * (1.0 - 0.5 * fraction_lost)
        } else if fraction_lost < GROW_BELOW {
            t * 1.08 + 1_000.0
        } else {
            t
        };
        let mut next = next as u32;
        if let Some(remb) = remb_bps.filter(|r| *r > 0) {
            next = next.min(remb);
        }
        self.target = next.clamp(self.min, self.max);
        self.target
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
    fn the_receivers_estimate_caps_it() {
        let mut r = RateControl::new(1_000_000);
        assert_eq!(r.on_report(0.0, Some(200_000)), 200_000);
        assert_eq!(r.on_report(0.0, Some(10)), 50_000, "but not below the floor");
    }
}
