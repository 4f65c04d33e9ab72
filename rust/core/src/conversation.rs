//! `Conversation`: one call, as the app holds it, and the delegate that hears about it.

use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use duet_protocol::CallStatus;

use crate::client::Client;
use crate::events::EventQueue;
use crate::lifecycle::{ActionError, CallError, ConvId, ConversationState, EndReason};
use crate::media::{LocalStream, RemoteStream, Sending};
use crate::sync::lock;

/// What happens to a conversation, in the seeds' terms. Called on the VideoCall's event
/// thread, in order, never with an engine lock held.
pub trait ConversationDelegate: Send + Sync {
    /// The callee answered: ACCEPTED, REJECTED, BUSY or TIMEOUT. Only the side that placed
    /// the call hears this. Rejected, busy and timeout are followed by `did_close`.
    fn did_receive_response(&self, status: CallStatus);
    /// The other party's media is here.
    fn did_receive_stream(&self, stream: Arc<RemoteStream>);
    /// Something went wrong; `did_close` follows when it ended the call.
    fn did_fail_with_error(&self, error: CallError);
    /// The call ended other than by this side's own `close` or `reject`;
    /// `Conversation::close_reason` says why.
    fn did_close(&self);
    /// The other party turned its camera or microphone off or on; also heard at the start
    /// of a call whose other party sends only one of them. Until then, assume both. May
    /// come before `did_receive_stream`; `RemoteStream::video_enabled` says the same.
    fn did_change_remote_media(&self, video_enabled: bool, audio_enabled: bool) {
        let _ = (video_enabled, audio_enabled);
    }
}

#[derive(Debug, Clone)]
pub(crate) enum ConvEvent {
    Response(CallStatus),
    Stream(Arc<RemoteStream>),
    Failed(CallError),
    Closed,
    RemoteSending(Sending),
}

#[derive(Default)]
struct DelegateSlot {
    delegate: Option<Arc<dyn ConversationDelegate>>,
    /// Events that came before the app set a delegate, delivered in order once it does.
    pending: Vec<ConvEvent>,
}

pub struct Conversation {
    pub(crate) conv: ConvId,
    remote_uid: String,
    client: Weak<Client>,
    events: EventQueue,
    slot: Mutex<DelegateSlot>,
    close_reason: Mutex<Option<EndReason>>,
}

impl std::fmt::Debug for Conversation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conversation")
            .field("conv", &self.conv)
            .field("remote_uid", &self.remote_uid)
            .finish()
    }
}

impl Conversation {
    pub(crate) fn new(
        conv: ConvId,
        remote_uid: String,
        client: Weak<Client>,
        events: EventQueue,
    ) -> Arc<Self> {
        Arc::new(Conversation {
            conv,
            remote_uid,
            client,
            events,
            slot: Mutex::new(DelegateSlot::default()),
            close_reason: Mutex::new(None),
        })
    }

    /// Sets the delegate. Events that arrived before it are delivered to it, in order.
    pub fn set_delegate(self: &Arc<Self>, delegate: Arc<dyn ConversationDelegate>) {
        lock(&self.slot).delegate = Some(delegate);
        let me = Arc::clone(self);
        self.events.push(move || me.flush_pending());
    }

    /// Answers an incoming call with this side's media.
    pub fn accept(&self, local_stream: Arc<LocalStream>) -> Result<(), ActionError> {
        let client = self.client()?;
        client.accept(self.conv, local_stream)
    }

    /// Declines an incoming call. The caller hears REJECTED.
    pub fn reject(&self) -> Result<(), ActionError> {
        let client = self.client()?;
        client.reject(self.conv)?;
        self.set_close_reason(EndReason::Local);
        Ok(())
    }

    /// Cancels the call while it rings, or hangs up once it is under way. Does nothing if it
    /// is already over.
    pub fn close(&self) {
        if let Some(client) = self.client.upgrade() {
            if client.close(self.conv) {
                self.set_close_reason(EndReason::Local);
            }
        }
    }

    /// The uid of the other party.
    pub fn remote_uid(&self) -> &str {
        &self.remote_uid
    }

    /// The id of the call behind this conversation, as the server knows it.
    pub fn call_id(&self) -> Option<String> {
        self.client.upgrade().and_then(|c| c.call_id(self.conv))
    }

    pub fn state(&self) -> ConversationState {
        match self.client.upgrade() {
            Some(c) => c.state(self.conv),
            None => ConversationState::Closed,
        }
    }

    /// What the call's media is doing now; None before its media exists or after it ends.
    pub async fn stats(&self) -> Option<crate::peer::CallStats> {
        self.client.upgrade()?.stats(self.conv).await
    }

    /// The other party's media, once the call's media exists (also handed to
    /// `did_receive_stream`).
    pub fn remote_stream(&self) -> Option<Arc<RemoteStream>> {
        self.client.upgrade()?.remote_stream(self.conv)
    }

    /// Why the conversation ended, once it has.
    pub fn close_reason(&self) -> Option<EndReason> {
        *lock(&self.close_reason)
    }

    fn client(&self) -> Result<Arc<Client>, ActionError> {
        self.client.upgrade().ok_or(ActionError::Closed)
    }

    fn set_close_reason(&self, reason: EndReason) {
        lock(&self.close_reason).get_or_insert(reason);
    }

    /// Queues an event for the delegate (called by the engine's driver).
    pub(crate) fn post(self: &Arc<Self>, event: ConvEvent, reason: Option<EndReason>) {
        if let Some(r) = reason {
            self.set_close_reason(r);
        }
        let me = Arc::clone(self);
        self.events.push(move || me.deliver(event));
    }

    /// Runs on the event thread. After `did_close` the delegate is let go: nothing more
    /// will come, and an app delegate that holds its conversation (the seeds' pattern) would
    /// otherwise keep both alive.
    fn deliver(&self, event: ConvEvent) {
        let last = matches!(event, ConvEvent::Closed);
        self.deliver_one(event);
        if last {
            let mut slot = lock(&self.slot);
            if slot.pending.is_empty() {
                slot.delegate = None;
            }
        }
    }

    fn deliver_one(&self, event: ConvEvent) {
        let delegate = {
            let mut slot = lock(&self.slot);
            match &slot.delegate {
                // Anything still pending goes first: `flush_pending` is queued behind us.
                Some(d) if slot.pending.is_empty() => Arc::clone(d),
                _ => {
                    slot.pending.push(event);
                    return;
                }
            }
        };
        dispatch(&*delegate, event);
    }

    fn flush_pending(&self) {
        let pending = std::mem::take(&mut lock(&self.slot).pending);
        for event in pending {
            self.deliver(event);
        }
    }
}

impl Drop for Conversation {
    /// A conversation nobody holds can never be answered or hung up, so it is hung up now:
    /// no phone rings, and no call runs, without an app object behind it.
    fn drop(&mut self) {
        if let Some(client) = self.client.upgrade() {
            client.close(self.conv);
            client.forget(self.conv);
        }
    }
}

fn dispatch(delegate: &dyn ConversationDelegate, event: ConvEvent) {
    let started = Instant::now();
    match event {
        ConvEvent::Response(s) => delegate.did_receive_response(s),
        ConvEvent::Stream(s) => delegate.did_receive_stream(s),
        ConvEvent::Failed(e) => delegate.did_fail_with_error(e),
        ConvEvent::Closed => delegate.did_close(),
        ConvEvent::RemoteSending(s) => delegate.did_change_remote_media(s.video, s.audio),
    }
    if started.elapsed().as_millis() > 100 {
        tracing::warn!(
            "a conversation delegate took {:?}; later events waited for it",
            started.elapsed()
        );
    }
}
