//! The errors an app sees, and the one place internal errors become them.
//!
//! Each public enum is matched on by kind: apps switch on the variant, never parse a
//! message. Internal errors (the peer connection's `PeerError`) stay inside the crate and
//! are mapped here, once.

use duet_protocol::ErrorCode;

use crate::lifecycle::EndReason;
use crate::peer::PeerError;

/// Something went wrong with a call under way; delivered to `did_fail_with_error`.
/// `did_close` follows when it ended the call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The callee has no device connected, nor any that a push could wake.
    #[error("{uid} has no device connected")]
    Unreachable { uid: String },
    /// The connection to the server stayed lost past the grace period.
    #[error("the connection to the server was lost")]
    ConnectionLost,
    /// The server refused something this call needed.
    #[error("the server refused: {message} ({code:?})")]
    Server { code: ErrorCode, message: String },
    /// No network path to the peer was found, or the one in use stopped working.
    #[error("no network path to the other party (ICE failed)")]
    IceFailed,
    /// A path was found but the encrypted session (DTLS-SRTP) could not be set up.
    #[error("the secure media session failed (DTLS)")]
    DtlsFailed,
    /// A codec this side needs could not start.
    #[error("no {kind} codec: {detail}")]
    NoCodec { kind: MediaKind, detail: String },
    /// The other party's offer or answer could not be used.
    #[error("the other party's session description is unusable: {detail}")]
    BadRemoteDescription { detail: String },
    /// The media connection went down mid-call and did not come back within the bound
    /// (ICE restarts included); the call ends with `EndReason::NetworkLost`.
    #[error("the media connection was lost and did not recover")]
    NetworkLost,
    /// The peer connection could not be set up for another reason.
    #[error("media setup failed: {detail}")]
    MediaSetup { detail: String },
}

/// Audio or video, where an error concerns one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Audio,
    Video,
}

impl std::fmt::Display for MediaKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
        })
    }
}

/// The one mapping from the peer connection's errors to what the app sees.
impl From<PeerError> for CallError {
    fn from(e: PeerError) -> Self {
        match e {
            PeerError::IceFailed => CallError::IceFailed,
            PeerError::DtlsFailed => CallError::DtlsFailed,
            PeerError::NoCodec { kind, source } => {
                CallError::NoCodec { kind, detail: source.to_string() }
            }
            PeerError::RemoteDescription(e) => {
                CallError::BadRemoteDescription { detail: e.to_string() }
            }
            PeerError::NoOffer => {
                CallError::BadRemoteDescription { detail: "the caller sent no offer".into() }
            }
            PeerError::Setup(e) => CallError::MediaSetup { detail: e.to_string() },
        }
    }
}

/// Returned at once by an action the app asked for (`call`, `accept`, `reject`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("invalid argument: {0}")]
    InvalidArgument(InvalidArgument),
    #[error("not allowed now: {0}")]
    InvalidState(WrongState),
    /// The conversation is over (with why, when this side knows), or its client is gone.
    #[error("{}", closed_message(.0))]
    Closed(Option<EndReason>),
}

fn closed_message(reason: &Option<EndReason>) -> String {
    match reason {
        Some(EndReason::AnsweredElsewhere) => {
            "the conversation is closed: it was answered on another device".into()
        }
        Some(r) => format!("the conversation is closed ({})", r.as_str()),
        None => "the conversation is closed".into(),
    }
}

/// What was wrong with an argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidArgument {
    /// The uid breaks the protocol's rules (empty, too long, control characters).
    #[error("{0}")]
    Uid(duet_protocol::IdError),
    #[error("cannot call yourself")]
    CallingYourself,
    #[error("data is longer than {max_bytes} bytes")]
    DataTooLong { max_bytes: usize },
}

/// Which state an action did not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WrongState {
    #[error("the call is already accepted")]
    AlreadyAccepted,
    /// Accepting or rejecting a call this side placed.
    #[error("only the callee can accept or reject")]
    NotTheCallee,
    /// Rejecting a call that is no longer ringing (it was accepted).
    #[error("only a ringing incoming call can be rejected")]
    NotRinging,
    /// Relaying a signal for a call that has not been accepted here.
    #[error("a callee signals only once it has accepted")]
    NotAccepted,
}
