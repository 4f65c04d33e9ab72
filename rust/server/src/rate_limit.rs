//! Per-connection rate limiting: a token bucket, with time passed in so tests need no clock.

use std::time::{Duration, Instant};

use duet_protocol::{Limits, TokenBucket};

/// A flood this long (messages dropped in a row) is not a client in trouble but a client
/// misbehaving, and the connection is closed.
pub(crate) const CLOSE_AFTER_DROPPED: u32 = 200;

/// How often a ping is let through an empty bucket. Pings still spend a token when there is
/// one, but a client that bursts signals must not lose its keepalive and reconnect.
pub(crate) const PING_ALLOWANCE: Duration = Duration::from_secs(1);

/// What to do with one incoming message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    Admit,
    /// Drop it and answer `rate_limited`.
    Drop,
    /// Drop it, answer `rate_limited` and close: the flood went on too long.
    Close,
}

#[derive(Debug, Clone)]
pub(crate) struct RateLimiter {
    bucket: TokenBucket,
    dropped_in_a_row: u32,
    last_allowed_ping: Option<Instant>,
}

impl RateLimiter {
    pub(crate) fn new(limits: &Limits, now: Instant) -> Self {
        RateLimiter {
            bucket: TokenBucket::new(limits.messages_per_second, limits.message_burst, now),
            dropped_in_a_row: 0,
            last_allowed_ping: None,
        }
    }

    pub(crate) fn admit(&mut self, now: Instant, is_ping: bool) -> Admission {
        if self.bucket.try_take(now) {
            self.dropped_in_a_row = 0;
            return Admission::Admit;
        }
        if is_ping
            && self
                .last_allowed_ping
                .is_none_or(|last| now.saturating_duration_since(last) >= PING_ALLOWANCE)
        {
            // Does not reset the run of drops: interleaving pings must not hide a flood.
            self.last_allowed_ping = Some(now);
            return Admission::Admit;
        }
        self.dropped_in_a_row = self.dropped_in_a_row.saturating_add(1);
        if self.dropped_in_a_row >= CLOSE_AFTER_DROPPED {
            Admission::Close
        } else {
            Admission::Drop
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_second: u32, burst: u32) -> Limits {
        Limits { messages_per_second: per_second, message_burst: burst, ..Limits::default() }
    }

    #[test]
    fn the_burst_passes_then_the_rate_holds() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(10, 3, t0);
        assert!((0..3).all(|_| bucket.try_take(t0)));
        assert!(!bucket.try_take(t0));
        // 10 per second: one token every 100 ms.
        assert!(!bucket.try_take(t0 + Duration::from_millis(90)));
        assert!(bucket.try_take(t0 + Duration::from_millis(100)));
        assert!(!bucket.try_take(t0 + Duration::from_millis(100)));
    }

    #[test]
    fn refill_stops_at_the_burst() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(10, 3, t0);
        let later = t0 + Duration::from_secs(60);
        assert_eq!((0..10).filter(|_| bucket.try_take(later)).count(), 3);
    }

    #[test]
    fn a_clock_going_backwards_refills_nothing() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut bucket = TokenBucket::new(10, 1, t0);
        assert!(bucket.try_take(t0));
        assert!(!bucket.try_take(t0 - Duration::from_secs(5)));
        assert!(!bucket.try_take(t0 + Duration::from_millis(50)));
    }

    #[test]
    fn a_flood_is_dropped_then_closed() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(&limits(20, 60), t0);
        let verdicts: Vec<_> =
            (0..60 + CLOSE_AFTER_DROPPED).map(|_| limiter.admit(t0, false)).collect();
        assert!(verdicts[..60].iter().all(|v| *v == Admission::Admit));
        assert!(verdicts[60..60 + CLOSE_AFTER_DROPPED as usize - 1]
            .iter()
            .all(|v| *v == Admission::Drop));
        assert_eq!(verdicts.last(), Some(&Admission::Close));
    }

    #[test]
    fn an_admitted_message_resets_the_run_of_drops() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(&limits(10, 1), t0);
        assert_eq!(limiter.admit(t0, false), Admission::Admit);
        for _ in 0..CLOSE_AFTER_DROPPED - 1 {
            assert_eq!(limiter.admit(t0, false), Admission::Drop);
        }
        assert_eq!(limiter.admit(t0 + Duration::from_millis(100), false), Admission::Admit);
        for _ in 0..CLOSE_AFTER_DROPPED - 1 {
            assert_eq!(limiter.admit(t0 + Duration::from_millis(100), false), Admission::Drop);
        }
    }

    #[test]
    fn pings_get_through_an_empty_bucket_once_a_second() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(&limits(0, 1), t0);
        assert_eq!(limiter.admit(t0, false), Admission::Admit);
        assert_eq!(limiter.admit(t0, false), Admission::Drop);
        assert_eq!(limiter.admit(t0, true), Admission::Admit);
        assert_eq!(limiter.admit(t0 + Duration::from_millis(500), true), Admission::Drop);
        assert_eq!(limiter.admit(t0 + PING_ALLOWANCE, true), Admission::Admit);
    }

    #[test]
    fn pings_spend_tokens_when_there_are_some() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(&limits(0, 2), t0);
        assert_eq!(limiter.admit(t0, true), Admission::Admit);
        assert_eq!(limiter.admit(t0, true), Admission::Admit);
        assert_eq!(limiter.admit(t0, false), Admission::Drop);
    }
}
