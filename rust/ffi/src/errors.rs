//! The public errors, one enum per surface, each mapped from duet-core's.
//!
//! Field names avoid `message`, which Kotlin's `Throwable` already has.

use duet_core as core;
use duet_protocol::ErrorCode;

/// Why `VideoCall.connect` failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[uniffi::export(Display)]
pub enum ConnectError {
    /// The server URL (or the device id) is not usable.
    #[error("invalid server URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("cannot reach the server: {reason}")]
    Unreachable { reason: String },
    /// The server said no, e.g. `Unauthorized` or `TokenExpired` for a bad token. Retrying
    /// with the same token will not help.
    #[error("the server refused the connection: {reason} ({code:?})")]
    Refused { code: ServerErrorCode, reason: String },
    #[error("the server did not answer within {timeout_ms} ms")]
    Timeout { timeout_ms: u64 },
    #[error("the server broke the protocol: {reason}")]
    Protocol { reason: String },
}

impl From<core::ConnectError> for ConnectError {
    fn from(e: core::ConnectError) -> Self {
        use core::ConnectError as E;
        match e {
            E::InvalidUrl { url, reason } => ConnectError::InvalidUrl { url, reason },
            E::Unreachable(reason) => ConnectError::Unreachable { reason },
            E::Refused { code, message } => {
                ConnectError::Refused { code: code.into(), reason: message }
            }
            E::Timeout(d) => ConnectError::Timeout {
                timeout_ms: u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
            },
            E::Protocol(reason) => ConnectError::Protocol { reason },
        }
    }
}

/// Returned at once by an action the app asked for (`call`, `accept`, `reject`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[uniffi::export(Display)]
pub enum ActionError {
    #[error("invalid argument: {reason}")]
    InvalidArgument { reason: String },
    /// The action does not fit the conversation's state (accepting an outgoing call).
    #[error("not allowed now: {reason}")]
    InvalidState { reason: String },
    /// The conversation or its client is gone.
    #[error("the conversation is closed")]
    Closed,
}

impl From<core::ActionError> for ActionError {
    fn from(e: core::ActionError) -> Self {
        match e {
            core::ActionError::InvalidArgument(reason) => ActionError::InvalidArgument { reason },
            core::ActionError::InvalidState(reason) => {
                ActionError::InvalidState { reason: reason.to_owned() }
            }
            core::ActionError::Closed => ActionError::Closed,
        }
    }
}

/// Why `LocalStream` refused a pushed frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[uniffi::export(Display)]
pub enum CaptureError {
    /// The sizes, strides or plane lengths do not describe a valid picture.
    #[error("bad video frame: {reason}")]
    InvalidFrame { reason: String },
    /// Audio comes in 10 ms of mono 48 kHz: 480 samples.
    #[error("an audio frame is 480 samples (10 ms of mono 48 kHz), not {samples}")]
    AudioLength { samples: u64 },
}

impl From<core::CaptureError> for CaptureError {
    fn from(e: core::CaptureError) -> Self {
        match e {
            core::CaptureError::Frame(f) => CaptureError::InvalidFrame { reason: f.to_string() },
            core::CaptureError::AudioLength(n) => CaptureError::AudioLength { samples: n as u64 },
        }
    }
}

/// Something went wrong with a call under way; delivered to
/// `ConversationDelegate.did_fail_with_error`. `did_close` follows when it ended the call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[uniffi::export(Display)]
pub enum CallError {
    #[error("{uid} has no device connected")]
    Unreachable { uid: String },
    #[error("the connection to the server was lost")]
    ConnectionLost,
    #[error("the server refused: {reason} ({code:?})")]
    Server { code: ServerErrorCode, reason: String },
    /// The peer connection could not be set up or failed (ICE, DTLS, codecs).
    #[error("media failed: {reason}")]
    Media { reason: String },
}

impl From<core::CallError> for CallError {
    fn from(e: core::CallError) -> Self {
        match e {
            core::CallError::Unreachable { uid } => CallError::Unreachable { uid },
            core::CallError::ConnectionLost => CallError::ConnectionLost,
            core::CallError::Server { code, message } => {
                CallError::Server { code: code.into(), reason: message }
            }
            core::CallError::Media(reason) => CallError::Media { reason },
        }
    }
}

/// The server's error codes (docs/protocol.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ServerErrorCode {
    /// This library speaks a protocol version the server does not.
    UnsupportedVersion,
    /// The token is missing, malformed, or its signature does not verify.
    Unauthorized,
    /// The token's expiry has passed.
    TokenExpired,
    HelloRequired,
    Malformed,
    /// A value is out of range: an empty uid, calling yourself.
    InvalidRequest,
    MessageTooLarge,
    RateLimited,
    NotInCall,
    InvalidState,
    DuplicateCallId,
    /// Another connection with the same device id replaced this one.
    Replaced,
}

impl From<ErrorCode> for ServerErrorCode {
    fn from(c: ErrorCode) -> Self {
        match c {
            ErrorCode::UnsupportedVersion => ServerErrorCode::UnsupportedVersion,
            ErrorCode::Unauthorized => ServerErrorCode::Unauthorized,
            ErrorCode::TokenExpired => ServerErrorCode::TokenExpired,
            ErrorCode::HelloRequired => ServerErrorCode::HelloRequired,
            ErrorCode::Malformed => ServerErrorCode::Malformed,
            ErrorCode::InvalidRequest => ServerErrorCode::InvalidRequest,
            ErrorCode::MessageTooLarge => ServerErrorCode::MessageTooLarge,
            ErrorCode::RateLimited => ServerErrorCode::RateLimited,
            ErrorCode::NotInCall => ServerErrorCode::NotInCall,
            ErrorCode::InvalidState => ServerErrorCode::InvalidState,
            ErrorCode::DuplicateCallId => ServerErrorCode::DuplicateCallId,
            ErrorCode::Replaced => ServerErrorCode::Replaced,
        }
    }
}
