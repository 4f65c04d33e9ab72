//! Bounds on what a message may carry, shared by the server (which enforces them) and
//! clients (which check before sending, so a mistake surfaces at the call site).

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
