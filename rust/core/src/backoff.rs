//! Reconnect delays: exponential, capped, with jitter so that a server restart is not met
//! by every client at the same instant.

use std::time::Duration;

#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    attempt: u32,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Backoff { initial, max, attempt: 0 }
    }

    /// The delay before the next attempt: initial × 2^attempt, capped, less up to a quarter
    /// at random.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let base = self.initial.saturating_mul(1u32 << self.attempt.min(16)).min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let jitter = base.mul_f64(random_fraction() / 4.0);
        base - jitter
    }

    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// A random number in [0, 1].
pub(crate) fn random_fraction() -> f64 {
    f64::from(uuid::Uuid::new_v4().as_bytes()[0]) / 255.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let d: Vec<Duration> = (0..10).map(|_| b.next_delay()).collect();
        assert!(d[0] <= Duration::from_millis(100) && d[0] >= Duration::from_millis(75));
        assert!(d[3] <= Duration::from_millis(800) && d[3] >= Duration::from_millis(600));
        assert!(d[9] <= Duration::from_secs(5) && d[9] >= Duration::from_millis(3750));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
