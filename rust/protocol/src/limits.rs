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

/// Why an identifier (a uid, a call id, a device id) was refused. Its text is phrased for
/// an error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdError {
    /// Empty, or longer than `max` bytes.
    Length { what: &'static str, max: usize },
    /// A uid holding a control character.
    ControlCharacter { what: &'static str },
    /// A call or device id holding something other than `A-Za-z0-9-_` (or a push token or
    /// bundle id holding a character its kind does not use).
    Character { what: &'static str },
}

impl std::fmt::Display for IdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdError::Length { what, max } => write!(f, "{what} must be 1 to {max} bytes"),
            IdError::ControlCharacter { what } => write!(f, "{what} contains a control character"),
            IdError::Character { what: what @ ("push token" | "bundle_id") } => {
                write!(f, "{what} holds a character its kind never uses")
            }
            IdError::Character { what } => {
                write!(f, "{what} may hold only letters, digits, '-' and '_'")
            }
        }
    }
}

impl std::error::Error for IdError {}

impl From<IdError> for String {
    fn from(e: IdError) -> Self {
        e.to_string()
    }
}

/// A uid: 1 to `MAX_UID_BYTES` bytes of UTF-8 without control characters.
///
/// # Errors
///
/// `IdError` saying which rule the uid breaks.
pub fn check_uid(uid: &str) -> Result<(), IdError> {
    if uid.is_empty() || uid.len() > MAX_UID_BYTES {
        return Err(IdError::Length { what: "uid", max: MAX_UID_BYTES });
    }
    if uid.chars().any(char::is_control) {
        return Err(IdError::ControlCharacter { what: "uid" });
    }
    Ok(())
}

/// Call and device ids are printable tokens: 1 to `max` of letters, digits, `-` and `_`.
///
/// # Errors
///
/// `IdError` saying which rule the id breaks; `what` names it in the message.
pub fn check_token_id(what: &'static str, id: &str, max: usize) -> Result<(), IdError> {
    if id.is_empty() || id.len() > max {
        return Err(IdError::Length { what, max });
    }
    if !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(IdError::Character { what });
    }
    Ok(())
}

/// # Errors
///
/// `IdError` if the call id is not 1 to `MAX_CALL_ID_BYTES` of `A-Za-z0-9-_`.
pub fn check_call_id(id: &str) -> Result<(), IdError> {
    check_token_id("call_id", id, MAX_CALL_ID_BYTES)
}

/// # Errors
///
/// `IdError` if the device id is not 1 to `MAX_DEVICE_ID_BYTES` of `A-Za-z0-9-_`.
pub fn check_device_id(id: &str) -> Result<(), IdError> {
    check_token_id("device_id", id, MAX_DEVICE_ID_BYTES)
}

/// The longest push token kept: APNs tokens are 32 bytes (64 hex digits) today and FCM
/// tokens about 160 characters; this leaves room for both to grow.
pub const MAX_PUSH_TOKEN_BYTES: usize = 1024;
/// The longest iOS bundle id (Apple allows 155 characters).
pub const MAX_BUNDLE_ID_BYTES: usize = 155;

/// A push token the server can put in a request line or JSON without escaping: APNs tokens
/// are hex, FCM tokens base64url with `:`; a bundle id is letters, digits, `.` and `-`.
///
/// # Errors
///
/// `IdError` saying which part of the token breaks which rule.
pub fn check_push_token(push: &crate::PushToken) -> Result<(), IdError> {
    match push {
        crate::PushToken::Apns { token, bundle_id, .. } => {
            check_chars("push token", token, MAX_PUSH_TOKEN_BYTES, |b| b.is_ascii_hexdigit())?;
            check_chars("bundle_id", bundle_id, MAX_BUNDLE_ID_BYTES, |b| {
                b.is_ascii_alphanumeric() || b == b'.' || b == b'-'
            })
        }
        crate::PushToken::Fcm { token } => {
            check_chars("push token", token, MAX_PUSH_TOKEN_BYTES, |b| {
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':')
            })
        }
    }
}

fn check_chars(
    what: &'static str,
    value: &str,
    max: usize,
    allowed: impl Fn(u8) -> bool,
) -> Result<(), IdError> {
    if value.is_empty() || value.len() > max {
        return Err(IdError::Length { what, max });
    }
    if !value.bytes().all(allowed) {
        return Err(IdError::Character { what });
    }
    Ok(())
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
