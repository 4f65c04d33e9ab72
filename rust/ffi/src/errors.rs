//! The public errors, one enum per surface, each mapped from duet-core's.
//!
//! Field names avoid `message`, which Kotlin's `Throwable` already has.

use duet_core as core;
use duet_protocol::ErrorCode;

use crate::records::EndReason;

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

/// Why `VideoCall.register_push` or `unregister_push` failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[uniffi::export(Display)]
pub enum PushError {
    /// The token is not one the server accepts (a bad character, too long).
    #[error("invalid push token: {reason}")]
    InvalidToken { reason: String },
    /// The server could not keep it (its store full or failing).
    #[error("the server did not keep the push registration: {reason}")]
    Refused { reason: String },
    /// The client shut down first.
    #[error("the client shut down")]
    ShutDown,
}

impl From<core::PushError> for PushError {
    fn from(e: core::PushError) -> Self {
        use core::PushError as E;
        match e {
            E::InvalidToken(reason) => PushError::InvalidToken { reason },
            E::Refused(reason) => PushError::Refused { reason },
            E::ShutDown => PushError::ShutDown,
        }
    }
}

/// Returned at once by an action the app asked for (`call`, `accept`, `reject`). Switch on
/// the case (and its `kind`); `reason` is for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[uniffi::export(Display)]
pub enum ActionError {
    #[error("invalid argument: {reason}")]
    InvalidArgument { kind: InvalidArgumentKind, reason: String },
    /// The action does not fit the conversation's state (accepting an outgoing call).
    #[error("not allowed now: {reason}")]
    InvalidState { kind: WrongStateKind, reason: String },
    /// The conversation is over (`end_reason` says why, when this side knows), or its
    /// client is gone.
    #[error("{reason}")]
    Closed { end_reason: Option<EndReason>, reason: String },
}

/// Which argument was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum InvalidArgumentKind {
    /// The uid is empty, too long, or holds a control character.
    Uid,
    CallingYourself,
    /// The custom data is over the server's limit.
    DataTooLong,
}

/// Which state the action did not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum WrongStateKind {
    AlreadyAccepted,
    /// Accepting or rejecting a call this side placed.
    NotTheCallee,
    /// Rejecting a call already accepted.
    NotRinging,
    NotAccepted,
}

impl From<core::ActionError> for ActionError {
    fn from(e: core::ActionError) -> Self {
        match e {
            core::ActionError::InvalidArgument(a) => {
                // The inner value's text: this enum's own message adds "invalid argument".
                let reason = a.to_string();
                let kind = match a {
                    core::InvalidArgument::Uid(_) => InvalidArgumentKind::Uid,
                    core::InvalidArgument::CallingYourself => InvalidArgumentKind::CallingYourself,
                    core::InvalidArgument::DataTooLong { .. } => InvalidArgumentKind::DataTooLong,
                };
                ActionError::InvalidArgument { kind, reason }
            }
            core::ActionError::InvalidState(w) => {
                let reason = w.to_string();
                let kind = match w {
                    core::WrongState::AlreadyAccepted => WrongStateKind::AlreadyAccepted,
                    core::WrongState::NotTheCallee => WrongStateKind::NotTheCallee,
                    core::WrongState::NotRinging => WrongStateKind::NotRinging,
                    core::WrongState::NotAccepted => WrongStateKind::NotAccepted,
                };
                ActionError::InvalidState { kind, reason }
            }
            closed @ core::ActionError::Closed(end) => {
                ActionError::Closed { end_reason: end.map(Into::into), reason: closed.to_string() }
            }
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
/// Switch on the case; `reason` is for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[uniffi::export(Display)]
pub enum CallError {
    #[error("{uid} has no device connected")]
    Unreachable { uid: String },
    #[error("the connection to the server was lost")]
    ConnectionLost,
    #[error("the server refused: {reason} ({code:?})")]
    Server { code: ServerErrorCode, reason: String },
    /// No network path to the other party was found, or the one in use stopped working.
    #[error("no network path to the other party (ICE failed)")]
    IceFailed,
    /// A path was found but the encrypted media session (DTLS-SRTP) could not be set up.
    #[error("the secure media session failed (DTLS)")]
    DtlsFailed,
    /// A codec this side needs could not start.
    #[error("no {kind:?} codec: {reason}")]
    NoCodec { kind: MediaKind, reason: String },
    /// The other party's offer or answer could not be used.
    #[error("the other party's session description is unusable: {reason}")]
    BadRemoteDescription { reason: String },
    /// The media connection went down mid-call and did not recover within 30 s; the call
    /// ends with `EndReason.NetworkLost`.
    #[error("the media connection was lost and did not recover")]
    NetworkLost,
    /// The peer connection could not be set up for another reason.
    #[error("media setup failed: {reason}")]
    MediaSetup { reason: String },
}

/// Audio or video, where an error concerns one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum MediaKind {
    Audio,
    Video,
}

impl From<core::CallError> for CallError {
    fn from(e: core::CallError) -> Self {
        use core::CallError as E;
        match e {
            E::Unreachable { uid } => CallError::Unreachable { uid },
            E::ConnectionLost => CallError::ConnectionLost,
            E::Server { code, message } => CallError::Server { code: code.into(), reason: message },
            E::IceFailed => CallError::IceFailed,
            E::DtlsFailed => CallError::DtlsFailed,
            E::NetworkLost => CallError::NetworkLost,
            E::NoCodec { kind, detail } => {
                let kind = match kind {
                    core::MediaKind::Audio => MediaKind::Audio,
                    core::MediaKind::Video => MediaKind::Video,
                };
                CallError::NoCodec { kind, reason: detail }
            }
            E::BadRemoteDescription { detail } => {
                CallError::BadRemoteDescription { reason: detail }
            }
            E::MediaSetup { detail } => CallError::MediaSetup { reason: detail },
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
    /// The uid already has as many devices as the server allows.
    TooManyDevices,
    /// The connection did not read what the server sent it fast enough.
    TooSlow,
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
            ErrorCode::TooManyDevices => ServerErrorCode::TooManyDevices,
            ErrorCode::TooSlow => ServerErrorCode::TooSlow,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_each_thing_once() {
        let yourself = core::ActionError::InvalidArgument(core::InvalidArgument::CallingYourself);
        assert_eq!(
            ActionError::from(yourself).to_string(),
            "invalid argument: cannot call yourself"
        );
        let late = core::ActionError::InvalidState(core::WrongState::NotRinging);
        assert_eq!(
            ActionError::from(late).to_string(),
            "not allowed now: only a ringing incoming call can be rejected"
        );
        let over = core::ActionError::Closed(Some(core::EndReason::AnsweredElsewhere));
        assert_eq!(
            ActionError::from(over).to_string(),
            "the conversation is closed: it was answered on another device"
        );
    }
}
