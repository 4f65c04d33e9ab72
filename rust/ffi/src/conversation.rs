//! `Conversation`: one call, as the app holds it.

use std::sync::Arc;

use duet_core as core;

use crate::delegates::{ConversationDelegate, ConversationDelegateAdapter};
use crate::errors::ActionError;
use crate::records::{CallStats, ConversationState, EndReason};
use crate::runtime;
use crate::streams::{LocalStream, RemoteStream};

/// One call: returned by `VideoCall.call`, handed to
/// `VideoCallDelegate.did_receive_call_with_conversation`. A conversation nobody holds any
/// more is hung up.
#[derive(Debug, uniffi::Object)]
pub struct Conversation {
    inner: Arc<core::Conversation>,
}

impl Conversation {
    pub(crate) fn new(inner: Arc<core::Conversation>) -> Arc<Self> {
        Arc::new(Conversation { inner })
    }
}

#[uniffi::export]
impl Conversation {
    /// Sets the delegate. Events that arrived before it are delivered to it, in order.
    pub fn set_delegate(&self, delegate: Arc<dyn ConversationDelegate>) {
        self.inner.set_delegate(Arc::new(ConversationDelegateAdapter(delegate)));
    }

    /// Answers an incoming call with this side's media.
    ///
    /// # Errors
    ///
    /// `Closed` (with why) once the call is over; `InvalidState` for a call this side placed
    /// or has already accepted.
    pub fn accept(&self, local_stream: Arc<LocalStream>) -> Result<(), ActionError> {
        Ok(self.inner.accept(local_stream.core())?)
    }

    /// Declines an incoming call. The caller hears `Rejected`.
    ///
    /// # Errors
    ///
    /// `Closed` once the call is over; `InvalidState` for a call this side placed or has
    /// accepted.
    pub fn reject(&self) -> Result<(), ActionError> {
        Ok(self.inner.reject()?)
    }

    /// Cancels the call while it rings, or hangs up once it is under way. Does nothing if
    /// it is already over. The other side hears `did_close`; this side does not.
    pub fn close(&self) {
        self.inner.close();
    }

    /// The uid of the other party.
    pub fn remote_uid(&self) -> String {
        self.inner.remote_uid().to_owned()
    }

    /// The id of the call behind this conversation, as the server knows it.
    pub fn call_id(&self) -> Option<String> {
        self.inner.call_id()
    }

    pub fn state(&self) -> ConversationState {
        self.inner.state().into()
    }

    /// Why the conversation ended, once it has.
    pub fn close_reason(&self) -> Option<EndReason> {
        self.inner.close_reason().map(Into::into)
    }

    /// What the call's media is doing now; `None` before its media exists or after it ends.
    pub async fn stats(&self) -> Option<CallStats> {
        let inner = Arc::clone(&self.inner);
        runtime::run(async move { inner.stats().await }).await.map(Into::into)
    }

    /// The other party's media, once the call's media exists (also handed to
    /// `did_receive_stream`).
    pub fn remote_stream(&self) -> Option<Arc<RemoteStream>> {
        self.inner.remote_stream().map(RemoteStream::new)
    }
}
