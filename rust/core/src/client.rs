//! The state one VideoCall shares between the app's threads and its driver task.
//!
//! The app's actions lock the lifecycle machine briefly, act, and wake the driver; the
//! driver drains the machine's outputs and does the I/O. Neither holds a lock across an
//! await or while a delegate runs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use duet_protocol::{CallOptions as WireOptions, ClientMessage, IceTransportPolicy};
use tokio::sync::Notify;

use crate::conversation::{lock, ConvEvent, Conversation};
use crate::events::EventQueue;
use crate::lifecycle::{ActionError, ConvId, ConversationState, Event, Lifecycle, Output};
use crate::media::{LocalStream, RemoteStream};
use crate::signaling::ServerInfo;

/// Hears about incoming calls. Called on the VideoCall's event thread.
pub trait VideoCallDelegate: Send + Sync {
    /// Someone calls. Keep `conversation` (and set its delegate) to answer it: a conversation
    /// nobody holds is declined.
    fn did_receive_call_with_conversation(
        &self,
        conversation: Arc<Conversation>,
        data: Option<String>,
    );
}

/// What `call` takes besides the callee and the stream, as in the Web seed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallOptions {
    /// Custom text for the callee, handed to `did_receive_call_with_conversation`.
    pub data: Option<String>,
    /// `Relay` uses TURN relay candidates only, hiding both parties' addresses.
    pub ice_transport_policy: IceTransportPolicy,
}

pub(crate) struct Client {
    pub(crate) machine: Mutex<Lifecycle>,
    convs: Mutex<HashMap<ConvId, Weak<Conversation>>>,
    local_streams: Mutex<HashMap<ConvId, Arc<LocalStream>>>,
    pub(crate) wake: Notify,
    stopping: AtomicBool,
    pub(crate) events: EventQueue,
    delegate: Arc<dyn VideoCallDelegate>,
    pub(crate) token: Mutex<String>,
    pub(crate) device_id: String,
    pub(crate) url: String,
    pub(crate) info: Mutex<ServerInfo>,
    me: Weak<Client>,
}

impl Client {
    pub(crate) fn new(
        machine: Lifecycle,
        delegate: Arc<dyn VideoCallDelegate>,
        token: String,
        device_id: String,
        url: String,
        info: ServerInfo,
    ) -> Arc<Client> {
        Arc::new_cyclic(|me| Client {
            machine: Mutex::new(machine),
            convs: Mutex::new(HashMap::new()),
            local_streams: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            stopping: AtomicBool::new(false),
            events: EventQueue::start(&format!("duet-events-{device_id}")),
            delegate,
            token: Mutex::new(token),
            device_id,
            url,
            info: Mutex::new(info),
            me: me.clone(),
        })
    }

    pub(crate) fn call(
        &self,
        remote_uid: &str,
        local_stream: Arc<LocalStream>,
        options: CallOptions,
    ) -> Result<Arc<Conversation>, ActionError> {
        if self.is_stopping() {
            return Err(ActionError::Closed);
        }
        let wire = WireOptions { ice_transport_policy: options.ice_transport_policy };
        let conversation = {
            let mut m = lock(&self.machine);
            let (conv, _) = m.call(Instant::now(), remote_uid, options.data, wire, None)?;
            // Registered before the machine is unlocked, so the driver finds it for the very
            // first event.
            let c = Conversation::new(
                conv,
                remote_uid.to_owned(),
                self.me.clone(),
                self.events.clone(),
            );
            lock(&self.convs).insert(conv, Arc::downgrade(&c));
            lock(&self.local_streams).insert(conv, local_stream);
            c
        };
        self.wake.notify_one();
        Ok(conversation)
    }

    pub(crate) fn accept(
        &self,
        conv: ConvId,
        local_stream: Arc<LocalStream>,
    ) -> Result<(), ActionError> {
        lock(&self.machine).accept(Instant::now(), conv, None)?;
        lock(&self.local_streams).insert(conv, local_stream);
        self.wake.notify_one();
        Ok(())
    }

    pub(crate) fn reject(&self, conv: ConvId) -> Result<(), ActionError> {
        lock(&self.machine).reject(Instant::now(), conv)?;
        self.wake.notify_one();
        Ok(())
    }

    /// Returns whether there was a call to close.
    pub(crate) fn close(&self, conv: ConvId) -> bool {
        let was_live = {
            let mut m = lock(&self.machine);
            let live = m.state(conv) != ConversationState::Closed;
            m.close(Instant::now(), conv);
            live
        };
        self.wake.notify_one();
        was_live
    }

    pub(crate) fn forget(&self, conv: ConvId) {
        lock(&self.convs).remove(&conv);
        lock(&self.local_streams).remove(&conv);
    }

    pub(crate) fn state(&self, conv: ConvId) -> ConversationState {
        lock(&self.machine).state(conv)
    }

    pub(crate) fn call_id(&self, conv: ConvId) -> Option<String> {
        lock(&self.machine).call_id(conv)
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Hangs up every call and tells the driver to close the connection and end.
    pub(crate) fn stop(&self) {
        if !self.stopping.swap(true, Ordering::AcqRel) {
            lock(&self.machine).shutdown(Instant::now());
            self.wake.notify_one();
        }
    }

    fn conversation(&self, conv: ConvId) -> Option<Arc<Conversation>> {
        lock(&self.convs).get(&conv).and_then(Weak::upgrade)
    }

    /// Acts on one output of the machine that is not a message to send.
    pub(crate) fn handle_output(&self, out: Output) {
        match out {
            Output::Send(_) => unreachable!("the driver sends messages itself"),
            Output::Incoming { conv, call_id, from, data, .. } => {
                tracing::info!(%call_id, %from, "incoming call");
                let c = Conversation::new(conv, from, self.me.clone(), self.events.clone());
                lock(&self.convs).insert(conv, Arc::downgrade(&c));
                let delegate = Arc::clone(&self.delegate);
                self.events.push(move || delegate.did_receive_call_with_conversation(c, data));
            }
            Output::Event { conv, event } => {
                let Some(c) = self.conversation(conv) else { return };
                let (event, reason) = match event {
                    Event::Response(s) => (ConvEvent::Response(s), None),
                    Event::Failed(e) => (ConvEvent::Failed(e), None),
                    Event::Closed(r) => (ConvEvent::Closed, Some(r)),
                };
                c.post(event, reason);
            }
            Output::Established { conv, .. } => {
                let Some(c) = self.conversation(conv) else { return };
                let call_id = lock(&self.machine).call_id(conv).unwrap_or_default();
                c.post(ConvEvent::Stream(Arc::new(RemoteStream::new(call_id))), None);
            }
            Output::AnswerNeeded { conv, .. } => {
                // Glare: the conversation now answers the peer's call with the stream it was
                // calling with.
                if let Err(e) = lock(&self.machine).accept(Instant::now(), conv, None) {
                    tracing::warn!("completing a glare merge failed: {e}");
                }
            }
            Output::RemoteSignal { .. } => {}
            Output::Released { conv } => {
                lock(&self.local_streams).remove(&conv);
            }
        }
    }

    pub(crate) fn hello(&self, now: Instant) -> ClientMessage {
        ClientMessage::Hello {
            v: duet_protocol::PROTOCOL_VERSION,
            token: lock(&self.token).clone(),
            device_id: self.device_id.clone(),
            calls: lock(&self.machine).restatements(now),
        }
    }
}
