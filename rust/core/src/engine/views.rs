//! What the app-facing handles read of the engine's state: snapshots the engine publishes
//! (`watch`), so that reading never waits for the engine and never takes its locks.

use std::sync::Arc;
use std::time::Duration;

use duet_protocol::{IceServer, Limits};

use crate::lifecycle::{ConversationState, EndReason};
use crate::streams::RemoteStream;

/// One conversation, as the engine last published it.
#[derive(Debug, Clone)]
pub(crate) struct ConversationView {
    pub state: ConversationState,
    /// The call behind the conversation (it changes once, on glare); kept after it ends.
    pub call_id: Option<String>,
    pub close_reason: Option<EndReason>,
    /// The other party's media, once the call's peer session exists (until it ends).
    pub remote_stream: Option<Arc<RemoteStream>>,
}

impl ConversationView {
    pub(crate) fn new(state: ConversationState) -> Self {
        ConversationView { state, call_id: None, close_reason: None, remote_stream: None }
    }
}

/// The client, as the engine last published it.
#[derive(Debug, Clone)]
pub(crate) struct ClientView {
    pub uid: String,
    pub ice_servers: Vec<IceServer>,
    pub ring_timeout: Duration,
    pub limits: Limits,
    /// Whether the signaling link is up now.
    pub connected: bool,
}
