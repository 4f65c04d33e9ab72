//! The vocabulary of the lifecycle machine: its configuration, inputs and outputs.

use std::time::Duration;

use duet_protocol::{CallId, CallOptions, CallStatus, ClientMessage, CloseReason, Limits, Signal};

use crate::errors::CallError;

/// A conversation as the app holds it. Stable for the conversation's life, even when glare
/// swaps the call behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ConvId(pub u64);

/// Hands out conversation ids. Shared by the app-facing handle (which names an outgoing
/// conversation before the engine sees it) and the machine (which names incoming ones), so
/// the two never collide.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConvIds(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl ConvIds {
    pub(crate) fn next(&self) -> ConvId {
        ConvId(self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct LifecycleConfig {
    /// The server's ring timeout; the server's `welcome` overrides it.
    pub ring_timeout: Duration,
    /// How long a lost connection may stay lost before its calls end; `welcome` overrides it.
    pub grace: Duration,
    /// Slack past the server's own deadlines before the client gives up on its own, so that
    /// normally the server's word, with its precise reason, arrives first.
    pub margin: Duration,
    pub limits: Limits,
    /// Whether a ringing call pre-connects when the server allows it (the app's switch).
    pub preconnect: bool,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        LifecycleConfig {
            ring_timeout: Duration::from_secs(30),
            grace: Duration::from_secs(20),
            margin: Duration::from_secs(3),
            limits: Limits::default(),
            preconnect: true,
        }
    }
}

/// What the machine needs from the server's `welcome`.
#[derive(Debug, Clone)]
pub(crate) struct Welcome {
    pub uid: String,
    pub ring_timeout: Duration,
    pub grace: Duration,
    pub limits: Limits,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Output {
    /// A message for the server.
    Send(ClientMessage),
    /// A call for the app: hand it to `did_receive_call_with_conversation`.
    Incoming {
        conv: ConvId,
        call_id: CallId,
        from: String,
        data: Option<String>,
        options: CallOptions,
        remote_sdp: Option<String>,
    },
    /// An event for the conversation's delegate.
    Event { conv: ConvId, event: CallEvent },
    /// Both sides agreed: start media. The caller gets the callee's answer here.
    Established { conv: ConvId, remote_sdp: Option<String> },
    /// A new outgoing call: create its media and offer, and pass the offer to
    /// `Lifecycle::offer_ready`.
    OfferNeeded { conv: ConvId, call_id: CallId, options: CallOptions },
    /// The conversation answers `remote_sdp` (the app accepted, or glare turned an outgoing
    /// call into answering the peer's): drop any media made for an earlier offer, answer, and
    /// pass the answer to `Lifecycle::answer_ready`.
    /// The caller's options apply to both sides: a relay-only call relays at both ends.
    AnswerNeeded { conv: ConvId, call_id: CallId, remote_sdp: Option<String>, options: CallOptions },
    /// Pre-connect: a ringing call answers `remote_sdp` before the app accepts. Build a
    /// session that sends and decodes nothing, and pass its answer to
    /// `Lifecycle::answer_ready`; the app's local stream joins it at the accept.
    PreconnectNeeded { conv: ConvId, call_id: CallId, remote_sdp: String, options: CallOptions },
    /// The caller: the callee's answer, sent while the call rings (it pre-connects). Apply
    /// it; media waits for `Established`.
    EarlyAnswer { conv: ConvId, sdp: String },
    /// A signal from the peer for the media layer.
    RemoteSignal { conv: ConvId, signal: Signal },
    /// The call is over: release its media.
    Released { conv: ConvId },
}

/// Events for a `ConversationDelegate`, in the seeds' terms.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CallEvent {
    Response(CallStatus),
    Failed(CallError),
    Closed(EndReason),
}

/// Why a conversation ended, as `Conversation::close_reason` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// This side called `close` or `reject`.
    Local,
    /// The other party hung up.
    Hangup,
    /// The caller cancelled while the call rang.
    Cancelled,
    Rejected,
    Busy,
    Timeout,
    AnsweredElsewhere,
    DeclinedElsewhere,
    PeerDisconnected,
    Unreachable,
    /// A new call on this client hung this one up.
    Replaced,
    /// The connection to the server stayed lost past the grace period.
    ConnectionLost,
    /// The media connection to the other party went down and ICE restarts did not bring it
    /// back within the bound (30 s by default, `ReconnectPolicy::media_timeout`).
    NetworkLost,
    /// An error ended the call; `did_fail_with_error` said which.
    Failed,
}

impl EndReason {
    /// The snake_case name used in logs and the CLI's JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Local => "local",
            EndReason::Hangup => "hangup",
            EndReason::Cancelled => "cancelled",
            EndReason::Rejected => "rejected",
            EndReason::Busy => "busy",
            EndReason::Timeout => "timeout",
            EndReason::AnsweredElsewhere => "answered_elsewhere",
            EndReason::DeclinedElsewhere => "declined_elsewhere",
            EndReason::PeerDisconnected => "peer_disconnected",
            EndReason::Unreachable => "unreachable",
            EndReason::Replaced => "replaced",
            EndReason::ConnectionLost => "connection_lost",
            EndReason::NetworkLost => "network_lost",
            EndReason::Failed => "failed",
        }
    }
}

impl From<CloseReason> for EndReason {
    fn from(r: CloseReason) -> Self {
        match r {
            CloseReason::Hangup => EndReason::Hangup,
            CloseReason::Cancelled => EndReason::Cancelled,
            CloseReason::Timeout => EndReason::Timeout,
            CloseReason::AnsweredElsewhere => EndReason::AnsweredElsewhere,
            CloseReason::DeclinedElsewhere => EndReason::DeclinedElsewhere,
            CloseReason::PeerDisconnected => EndReason::PeerDisconnected,
            CloseReason::Unreachable => EndReason::Unreachable,
            CloseReason::Replaced => EndReason::Replaced,
        }
    }
}

/// Where a conversation stands, for the app to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConversationState {
    /// Outgoing, waiting for the callee.
    Calling,
    /// Incoming, waiting for this side to answer.
    Ringing,
    /// Incoming, accepted here, waiting for the server to confirm.
    Accepting,
    Connected,
    Closed,
}
