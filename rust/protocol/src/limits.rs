//! Bounds on what a message may carry, shared by the server (which enforces them) and
//! clients (which check before sending, so a mistake surfaces at the call site).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The limits a server enforces, announced in `welcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// The longest text frame the server reads; longer ones are answered `message_too_large`.
    pub max_message_bytes: usize,
    /// The longest custom `data` an invite may carry.
    pub max_data_bytes: usize,
    /// Sustained messages per second per connection, and the burst allowed above it.
    pub messages_per_second: u32,
    pub message_burst: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 64 * 1024,
            max_data_bytes: 8 * 1024,
            messages_per_second: 20,
            message_burst: 60,
        }
    }
}

pub const MAX_UID_BYTES: usize = 128;
pub const MAX_CALL_ID_BYTES: usize = 64;
pub const MAX_DEVICE_ID_BYTES: usize = 64;

/// Why an identifier was refused, phrased for an error message.
pub fn check_uid(uid: &str) -> Result<(), String> {
    if uid.is_empty() {
        return Err("uid is empty".into());
    }
    if uid.len() > MAX_UID_BYTES {
        return Err(format!("uid is longer than {MAX_UID_BYTES} bytes"));
    }
    if uid.chars().any(char::is_control) {
        return Err("uid contains a control character".into());
    }
    Ok(())
}

/// Call and device ids are printable tokens: letters, digits, `-` and `_`.
pub fn check_token_id(what: &str, id: &str, max: usize) -> Result<(), String> {
    if id.is_empty() || id.len() > max {
        return Err(format!("{what} must be 1 to {max} bytes"));
    }
    if !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(format!("{what} may hold only letters, digits, '-' and '_'"));
    }
    Ok(())
}

pub fn check_call_id(id: &str) -> Result<(), String> {
    check_token_id("call_id", id, MAX_CALL_ID_BYTES)
}

pub fn check_device_id(id: &str) -> Result<(), String> {
    check_token_id("device_id", id, MAX_DEVICE_ID_BYTES)
}

/// Tokens are counted in billionths so that refills are exact: integer nanoseconds times
/// the rate, no floating-point drift at a boundary.
const UNIT: u128 = 1_000_000_000;

/// A token bucket for the message rate in `Limits`: the server admits messages with it, and
/// a client paces itself with the same one, so that nothing it sends is dropped.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: u128,
    per_second: u128,
    tokens: u128,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket: a new connection may burst at once (its `hello` and restated calls).
    pub fn new(per_second: u32, burst: u32, now: Instant) -> Self {
        let capacity = u128::from(burst.max(1)) * UNIT;
        TokenBucket { capacity, per_second: u128::from(per_second), tokens: capacity, updated: now }
    }

    /// The bucket a client paces its sends with under the server's `limits`: the server
    /// counts messages as they arrive, and messages sent at the allowed rate can arrive
    /// bunched (scheduling, TCP), so half a second of refill is kept out of the burst.
    pub fn for_sender(limits: &Limits, now: Instant) -> Self {
        let reserve = (limits.messages_per_second / 2).min(limits.message_burst.saturating_sub(1));
        TokenBucket::new(limits.messages_per_second, limits.message_burst - reserve, now)
    }

    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= UNIT {
            self.tokens -= UNIT;
            true
        } else {
            false
        }
    }

    /// How long until `try_take` would succeed: zero if it would now. A client paces its
    /// sends with this, so the server never has to drop one.
    pub fn time_until_token(&mut self, now: Instant) -> Duration {
        self.refill(now);
        if self.tokens >= UNIT || self.per_second == 0 {
            return Duration::ZERO;
        }
        let missing = UNIT - self.tokens;
        Duration::from_nanos(u64::try_from(missing.div_ceil(self.per_second)).unwrap_or(u64::MAX))
    }

    fn refill(&mut self, now: Instant) {
        // A clock that went backwards (tests, or a caller mixing instants) refills nothing.
        let elapsed = now.saturating_duration_since(self.updated).as_nanos();
        self.tokens =
            self.tokens.saturating_add(elapsed.saturating_mul(self.per_second)).min(self.capacity);
        self.updated = self.updated.max(now);
    }
}

#[cfg(test)]
mod bucket_tests {
    use super::*;

    #[test]
    fn a_sender_keeps_half_a_second_of_refill_out_of_the_burst() {
        let t0 = Instant::now();
        let limits = Limits { messages_per_second: 20, message_burst: 60, ..Limits::default() };
        let mut b = TokenBucket::for_sender(&limits, t0);
        assert_eq!((0..100).filter(|_| b.try_take(t0)).count(), 50);
        let tiny = Limits { messages_per_second: 20, message_burst: 1, ..Limits::default() };
        let mut b = TokenBucket::for_sender(&tiny, t0);
        assert!(b.try_take(t0), "a burst of one is kept whole");
    }

    #[test]
    fn the_wait_for_a_token_is_what_the_rate_implies() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(20, 2, t0);
        assert_eq!(b.time_until_token(t0), Duration::ZERO);
        assert!(b.try_take(t0) && b.try_take(t0));
        assert_eq!(b.time_until_token(t0), Duration::from_millis(50));
        assert_eq!(b.time_until_token(t0 + Duration::from_millis(30)), Duration::from_millis(20));
        assert!(b.try_take(t0 + Duration::from_millis(50)));
    }
}
