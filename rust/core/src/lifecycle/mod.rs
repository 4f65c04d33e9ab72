//! The call lifecycle of one client, as a sans-I/O state machine.
//!
//! Inputs are the app's actions (`call`, `accept`, `reject`, `close`), what the server says,
//! the connection coming and going, and the passing of time; each takes `now` explicitly.
//! Outputs (messages to send, events for the app, work for the media layer) are drained with
//! `poll_output`. Nothing here touches a socket or a clock, so every transition is tested
//! directly (see `tests.rs`), and the async driver around it stays thin.
//!
//! Rules the machine keeps:
//! - One call at a time: `call` hangs up the previous call, whatever its state.
//! - An incoming call while in another call is declined as busy, without bothering the app,
//!   except glare: an incoming call from the very uid we are calling (our invite sent or still
//!   being made) is held until the server says which call survives (`merged`), and then
//!   answered automatically; declined as busy if our call is answered or ends first.
//! - Messages about calls the machine no longer holds are ignored: they are late or
//!   duplicated, and the call they were about is already settled.
//! - A call never outlives its usefulness: a ring that the server never ends, or a connection
//!   that stays lost past the grace period, ends locally.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use duet_protocol::{
    CallId, CallOptions, CallRestatement, CallStatus, ClientMessage, CloseReason, ErrorCode,
    IncomingCall, RestatedState, Role, SdpType, ServerMessage, Signal,
};

mod types;
pub use types::*;

use crate::errors::{ActionError, CallError, InvalidArgument, WrongState};

#[cfg(test)]
mod tests;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Caller: the media layer is preparing the offer; the server has heard nothing yet.
    Preparing,
    /// Caller: invite sent, no answer yet.
    Calling,
    /// Callee: ringing, waiting for the app.
    Ringing,
    /// Callee: accepted by the app (or by a glare merge); the media layer is preparing the
    /// answer that the accept will carry.
    Answering,
    /// Callee: accept sent, the server has not confirmed it won.
    Accepting,
    Active,
}

#[derive(Debug)]
struct Call {
    id: CallId,
    conv: ConvId,
    role: Role,
    peer: String,
    phase: Phase,
    data: Option<String>,
    options: CallOptions,
    /// This side's session description: the offer (caller) or the answer (callee).
    local_sdp: Option<String>,
    /// The other side's offer (callee), for the media layer to answer.
    remote_sdp: Option<String>,
    /// ICE candidates gathered before the server may relay them (the invite or accept
    /// carrying our description has not gone out yet).
    held_signals: Vec<Signal>,
    /// The caller's invite reached the server (it said `ringing` or answered).
    acknowledged: bool,
    /// The app made this call, even if glare turned it into answering the peer's call.
    outgoing_for_app: bool,
    rang_since: Instant,
    /// Where the answer made before the accept stands (pre-connect).
    early: Early,
}

/// Pre-connect (docs/protocol.md): a ringing callee answers the offer before its app
/// accepts, so ICE and DTLS are done by the time it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Early {
    /// No early answer: the answer goes with the accept.
    Off,
    /// Callee: the media layer is making the early answer.
    Answering,
    /// Callee: the early answer went out in a signal. Caller: it came in and was applied.
    Answered,
}

/// A call from the peer we are calling, held while the server resolves the glare.
#[derive(Debug)]
struct HeldIncoming {
    call: IncomingCall,
}

#[derive(Debug)]
pub(crate) struct Lifecycle {
    config: LifecycleConfig,
    uid: Option<String>,
    calls: BTreeMap<CallId, Call>,
    held: Option<HeldIncoming>,
    ids: ConvIds,
    connected: bool,
    disconnected_since: Option<Instant>,
    /// What must reach the server but was said while the connection was down.
    unsent: VecDeque<ClientMessage>,
    outputs: VecDeque<Output>,
}

impl Lifecycle {
    /// A machine for a client that is connecting: it counts as disconnected since `now`
    /// until `on_connected`.
    #[cfg(test)]
    pub(crate) fn new(config: LifecycleConfig, now: Instant) -> Self {
        Self::with_ids(config, now, ConvIds::default())
    }

    /// A machine that names conversations from `ids`, shared with whoever names outgoing
    /// conversations before the machine hears of them (`call_as`).
    pub(crate) fn with_ids(config: LifecycleConfig, now: Instant, ids: ConvIds) -> Self {
        Lifecycle {
            config,
            uid: None,
            calls: BTreeMap::new(),
            held: None,
            ids,
            connected: false,
            disconnected_since: Some(now),
            unsent: VecDeque::new(),
            outputs: VecDeque::new(),
        }
    }

    // ---- the app's actions ----

    /// Starts a call to `to`, hanging up any call under way first. Returns the handle of the
    /// new conversation and its call id. The invite goes out once the media layer has an
    /// offer (`Output::OfferNeeded`, then `offer_ready`).
    #[cfg(test)]
    pub(crate) fn call(
        &mut self,
        now: Instant,
        to: &str,
        data: Option<String>,
        options: CallOptions,
    ) -> Result<(ConvId, CallId), ActionError> {
        let conv = self.ids.next();
        let id = self.call_as(now, conv, to, data, options)?;
        Ok((conv, id))
    }

    /// `call`, for a conversation the caller has already named (from the shared `ConvIds`).
    pub(crate) fn call_as(
        &mut self,
        now: Instant,
        conv: ConvId,
        to: &str,
        data: Option<String>,
        options: CallOptions,
    ) -> Result<CallId, ActionError> {
        check_call(self.uid.as_deref(), to, data.as_deref(), &self.config.limits)?;
        self.end_all(now, EndReason::Replaced);
        let id = uuid::Uuid::new_v4().to_string();
        self.calls.insert(
            id.clone(),
            Call {
                id: id.clone(),
                conv,
                role: Role::Caller,
                peer: to.to_owned(),
                phase: Phase::Preparing,
                data,
                options: options.clone(),
                local_sdp: None,
                remote_sdp: None,
                held_signals: Vec::new(),
                acknowledged: false,
                outgoing_for_app: true,
                rang_since: now,
                early: Early::Off,
            },
        );
        self.outputs.push_back(Output::OfferNeeded { conv, call_id: id.clone(), options });
        Ok(id)
    }

    /// The media layer's offer for a call being prepared: the invite goes out with it.
    pub(crate) fn offer_ready(
        &mut self,
        now: Instant,
        conv: ConvId,
        sdp: String,
    ) -> Result<(), DescriptionRefused> {
        let _ = now;
        self.description_ready(conv, Phase::Preparing, Phase::Calling, sdp)
    }

    /// The app answers a ringing call: the media layer prepares an answer
    /// (`Output::AnswerNeeded`, then `answer_ready`).
    pub(crate) fn begin_accept(&mut self, now: Instant, conv: ConvId) -> Result<(), ActionError> {
        let _ = now;
        let call = self.call_of_mut(conv)?;
        match call.phase {
            Phase::Ringing => {}
            Phase::Answering | Phase::Accepting | Phase::Active => {
                return Err(ActionError::InvalidState(WrongState::AlreadyAccepted))
            }
            Phase::Preparing | Phase::Calling => {
                return Err(ActionError::InvalidState(WrongState::NotTheCallee))
            }
        }
        match call.early {
            // Pre-connected: the answer is out already, so the accept goes at once.
            Early::Answered => {
                call.phase = Phase::Accepting;
                let msg = description_message(call).expect("an accepting call has one");
                self.send_description(msg);
                return Ok(());
            }
            // `answer_ready` sends the accept once the early answer is made.
            Early::Answering => {
                call.phase = Phase::Answering;
                return Ok(());
            }
            Early::Off => {}
        }
        call.phase = Phase::Answering;
        let out = Output::AnswerNeeded {
            conv,
            call_id: call.id.clone(),
            remote_sdp: call.remote_sdp.clone(),
            options: call.options.clone(),
        };
        self.outputs.push_back(out);
        Ok(())
    }

    /// The media layer's answer: the accept goes out with it, or, for a call that still
    /// rings (pre-connect), a `description` signal does.
    pub(crate) fn answer_ready(
        &mut self,
        now: Instant,
        conv: ConvId,
        sdp: String,
    ) -> Result<(), DescriptionRefused> {
        let _ = now;
        let call =
            self.calls.values_mut().find(|c| c.conv == conv).ok_or(DescriptionRefused::Closed)?;
        let pre_connecting = call.early == Early::Answering;
        if pre_connecting {
            call.early = Early::Answered;
        }
        if !(pre_connecting && call.phase == Phase::Ringing) {
            return self.description_ready(conv, Phase::Answering, Phase::Accepting, sdp);
        }
        call.local_sdp = Some(sdp.clone());
        let id = call.id.clone();
        let held = std::mem::take(&mut call.held_signals);
        let answer = Signal::Description { sdp_type: SdpType::Answer, sdp };
        for signal in std::iter::once(answer).chain(held) {
            self.send(ClientMessage::Signal { call_id: id.clone(), signal });
        }
        Ok(())
    }

    /// Sends the invite or accept that carries a new local description, then the candidates
    /// gathered while it was made. Refused (`DescriptionRefused`) when the call moved on
    /// while the description was being made.
    fn description_ready(
        &mut self,
        conv: ConvId,
        expected: Phase,
        next: Phase,
        sdp: String,
    ) -> Result<(), DescriptionRefused> {
        let call =
            self.calls.values_mut().find(|c| c.conv == conv).ok_or(DescriptionRefused::Closed)?;
        if call.phase != expected {
            return Err(DescriptionRefused::WrongPhase);
        }
        call.phase = next;
        call.local_sdp = Some(sdp);
        let msg = description_message(call).expect("calling and accepting calls have one");
        let held = std::mem::take(&mut call.held_signals);
        let id = call.id.clone();
        self.send_description(msg);
        for signal in held {
            self.send(ClientMessage::Signal { call_id: id.clone(), signal });
        }
        Ok(())
    }

    /// Sends an invite or accept. While disconnected it waits for `on_connected`, which
    /// re-sends every unacknowledged invite and unconfirmed accept; queuing it as well would
    /// send it twice.
    fn send_description(&mut self, msg: ClientMessage) {
        if self.connected {
            self.outputs.push_back(Output::Send(msg));
        }
    }

    /// The media layer could not set the call up (or lost it): the call ends with an error.
    pub(crate) fn media_failed(&mut self, now: Instant, conv: ConvId, error: CallError) {
        let _ = now;
        let Some(id) = self.id_of(conv) else { return };
        let call = self.remove(&id).expect("found above");
        if let Some(msg) = end_message(&call) {
            self.send(msg);
        }
        let reason = match error {
            CallError::NetworkLost => EndReason::NetworkLost,
            _ => EndReason::Failed,
        };
        self.outputs.push_back(Output::Event { conv, event: CallEvent::Failed(error) });
        self.outputs.push_back(Output::Event { conv, event: CallEvent::Closed(reason) });
    }

    /// Declines a ringing call.
    pub(crate) fn reject(&mut self, now: Instant, conv: ConvId) -> Result<(), ActionError> {
        let call = self.call_of_mut(conv)?;
        if call.phase != Phase::Ringing {
            let wrong = match call.role {
                Role::Caller => WrongState::NotTheCallee,
                Role::Callee => WrongState::NotRinging,
            };
            return Err(ActionError::InvalidState(wrong));
        }
        let id = call.id.clone();
        self.remove(&id);
        self.send(ClientMessage::Reject { call_id: id, busy: false });
        let _ = now;
        Ok(())
    }

    /// Ends the conversation, whatever its state: a cancel while it rings, a hang-up after.
    /// Closing a conversation that is already over does nothing.
    pub(crate) fn close(&mut self, now: Instant, conv: ConvId) {
        let _ = now;
        if let Some(id) = self.id_of(conv) {
            let call = self.remove(&id).expect("found above");
            if let Some(msg) = end_message(&call) {
                self.send(msg);
            }
        }
    }

    /// Relays a signal (an ICE candidate, a renegotiation) from the media layer. Held while
    /// the description it belongs with has not gone out.
    pub(crate) fn signal(&mut self, conv: ConvId, signal: Signal) -> Result<(), ActionError> {
        let call = self.call_of_mut(conv)?;
        match call.phase {
            Phase::Preparing | Phase::Answering => {
                call.held_signals.push(signal);
                return Ok(());
            }
            // Pre-connecting: candidates follow the early answer.
            Phase::Ringing if call.early == Early::Answering => {
                call.held_signals.push(signal);
                return Ok(());
            }
            Phase::Ringing if call.role == Role::Callee && call.early == Early::Off => {
                return Err(ActionError::InvalidState(WrongState::NotAccepted))
            }
            _ => {}
        }
        let id = call.id.clone();
        self.send(ClientMessage::Signal { call_id: id, signal });
        Ok(())
    }

    /// Ends every call, as when the client shuts down. The app hears nothing more.
    pub(crate) fn shutdown(&mut self, now: Instant) {
        let _ = now;
        let ids: Vec<CallId> = self.calls.keys().cloned().collect();
        for id in ids {
            let call = self.remove(&id).expect("listed above");
            if let Some(msg) = end_message(&call) {
                self.send(msg);
            }
        }
    }

    pub(crate) fn state(&self, conv: ConvId) -> ConversationState {
        match self.calls.values().find(|c| c.conv == conv) {
            None => ConversationState::Closed,
            Some(c) => match c.phase {
                Phase::Preparing | Phase::Calling => ConversationState::Calling,
                Phase::Ringing => ConversationState::Ringing,
                Phase::Answering | Phase::Accepting if c.outgoing_for_app => {
                    ConversationState::Calling
                }
                Phase::Answering | Phase::Accepting => ConversationState::Accepting,
                Phase::Active => ConversationState::Connected,
            },
        }
    }

    /// For a call under way (accepted and confirmed): whether this side is the one that makes
    /// ICE-restart offers, the caller (the side that made the first offer), so that the two
    /// sides never offer at once. `None` for a call not under way.
    pub(crate) fn restart_offerer(&self, conv: ConvId) -> Option<bool> {
        let c = self.calls.values().find(|c| c.conv == conv)?;
        (c.phase == Phase::Active).then_some(c.role == Role::Caller)
    }

    /// The id of the call a conversation currently stands for (it changes once, on glare).
    pub(crate) fn call_id(&self, conv: ConvId) -> Option<CallId> {
        self.id_of(conv)
    }

    // ---- the connection ----

    /// The calls to restate in `hello` after a reconnect.
    pub(crate) fn restatements(&self, now: Instant) -> Vec<CallRestatement> {
        self.calls
            .values()
            .filter_map(|c| {
                let state = match (c.role, c.phase) {
                    // An invite the server never acknowledged is re-sent instead: restating
                    // it would make a server that never saw it wait for a callee who was
                    // never rung.
                    (Role::Caller, Phase::Preparing) => return None,
                    (Role::Caller, Phase::Calling) if !c.acknowledged => return None,
                    (Role::Caller, Phase::Calling) => RestatedState::Ringing,
                    (_, Phase::Ringing | Phase::Answering) => RestatedState::Ringing,
                    (_, Phase::Accepting) => RestatedState::Accepting,
                    (_, Phase::Active) => RestatedState::Active,
                    (Role::Callee, Phase::Preparing | Phase::Calling) => return None,
                };
                let ringing = state != RestatedState::Active;
                Some(CallRestatement {
                    call_id: c.id.clone(),
                    role: c.role,
                    peer: c.peer.clone(),
                    state,
                    data: if ringing { c.data.clone() } else { None },
                    options: c.options.clone(),
                    // The caller's offer, or the callee's answer once it accepted; not the
                    // early answer of a callee that pre-connects (docs/protocol.md, Resuming).
                    sdp: match (c.role, state) {
                        (Role::Caller, RestatedState::Ringing) | (_, RestatedState::Accepting) => {
                            c.local_sdp.clone()
                        }
                        _ => None,
                    },
                    ring_elapsed_ms: if ringing {
                        millis(now.saturating_duration_since(c.rang_since))
                    } else {
                        0
                    },
                })
            })
            .collect()
    }

    pub(crate) fn on_connected(&mut self, now: Instant, welcome: &Welcome) {
        let _ = now;
        self.uid = Some(welcome.uid.clone());
        self.config.ring_timeout = welcome.ring_timeout;
        self.config.grace = welcome.grace;
        self.config.limits = welcome.limits;
        self.connected = true;
        self.disconnected_since = None;
        // Whatever may have been lost with the old connection goes again; the server
        // answers retries as it answered the first (docs/protocol.md, Resuming).
        let retries: Vec<ClientMessage> = self
            .calls
            .values()
            .filter(|c| {
                (c.phase == Phase::Calling && !c.acknowledged) || c.phase == Phase::Accepting
            })
            .filter_map(description_message)
            .collect();
        self.outputs.extend(retries.into_iter().map(Output::Send));
        let unsent: Vec<_> = self.unsent.drain(..).collect();
        self.outputs.extend(unsent.into_iter().map(Output::Send));
    }

    /// Whether something said while disconnected still waits for a connection.
    pub(crate) fn has_unsent(&self) -> bool {
        !self.unsent.is_empty()
    }

    /// A message the driver could not send: the connection died under it. Invites and
    /// accepts are left out, as `on_connected` re-derives them from the calls' states.
    pub(crate) fn requeue(&mut self, msg: ClientMessage) {
        if !matches!(
            msg,
            ClientMessage::Invite { .. }
                | ClientMessage::Accept { .. }
                | ClientMessage::Ping { .. }
        ) {
            self.unsent.push_back(msg);
        }
    }

    pub(crate) fn on_disconnected(&mut self, now: Instant) {
        if self.connected {
            self.connected = false;
            self.disconnected_since = Some(now);
        }
    }

    // ---- the server ----

    pub(crate) fn on_message(&mut self, now: Instant, msg: ServerMessage) {
        match msg {
            ServerMessage::Incoming { call_id, from, data, options, sdp, preconnect } => self
                .on_incoming(now, IncomingCall { call_id, from, data, options, sdp, preconnect }),
            ServerMessage::Ringing { call_id } => {
                if let Some(c) = self.calls.get_mut(&call_id) {
                    c.acknowledged = true;
                }
            }
            ServerMessage::Response { call_id, status, sdp } => {
                self.on_response(now, call_id, status, sdp)
            }
            ServerMessage::Merged { call_id, into } => self.on_merged(now, call_id, into),
            ServerMessage::Closed { call_id, reason } => self.on_closed(now, call_id, reason),
            ServerMessage::Signal { call_id, signal } => self.on_signal(call_id, signal),
            ServerMessage::Error { code, message, call_id } => {
                self.on_error(now, code, message, call_id)
            }
            // The driver handles these: they are about the connection, not a call.
            ServerMessage::Welcome { .. }
            | ServerMessage::Pong { .. }
            | ServerMessage::PushRegistered
            | ServerMessage::PushUnregistered => {}
        }
    }

    fn on_incoming(&mut self, now: Instant, incoming: IncomingCall) {
        if self.calls.contains_key(&incoming.call_id)
            || self.held.as_ref().is_some_and(|h| h.call.call_id == incoming.call_id)
        {
            return; // a repeat, after a reconnect
        }
        if self.is_calling(&incoming.from) && self.held.is_none() {
            // Glare: the server will merge one call into the other; wait for its word. Our
            // invite may still be in preparation (its offer not made yet): it will reach
            // the server after this call did, so it is ours that gets merged.
            self.held = Some(HeldIncoming { call: incoming });
            return;
        }
        if !self.calls.is_empty() || self.held.is_some() {
            self.send(ClientMessage::Reject { call_id: incoming.call_id, busy: true });
            return;
        }
        let conv = self.ids.next();
        let early = if incoming.preconnect && self.config.preconnect && incoming.sdp.is_some() {
            Early::Answering
        } else {
            Early::Off
        };
        self.calls.insert(
            incoming.call_id.clone(),
            Call {
                id: incoming.call_id.clone(),
                conv,
                role: Role::Callee,
                peer: incoming.from.clone(),
                phase: Phase::Ringing,
                data: incoming.data.clone(),
                options: incoming.options.clone(),
                local_sdp: None,
                remote_sdp: incoming.sdp.clone(),
                held_signals: Vec::new(),
                acknowledged: true,
                outgoing_for_app: false,
                rang_since: now,
                early,
            },
        );
        self.outputs.push_back(Output::Incoming {
            conv,
            call_id: incoming.call_id.clone(),
            from: incoming.from,
            data: incoming.data,
            options: incoming.options.clone(),
            remote_sdp: incoming.sdp.clone(),
        });
        if early == Early::Answering {
            self.outputs.push_back(Output::PreconnectNeeded {
                conv,
                call_id: incoming.call_id,
                remote_sdp: incoming.sdp.unwrap_or_default(),
                options: incoming.options,
            });
        }
    }

    /// A signal from the peer goes to the media layer; a caller's early answer (the callee
    /// pre-connects while it rings) is applied once.
    fn on_signal(&mut self, id: CallId, signal: Signal) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        let conv = call.conv;
        match signal {
            Signal::Description { sdp_type: SdpType::Answer, sdp }
                if call.role == Role::Caller && call.phase == Phase::Calling =>
            {
                if call.early == Early::Off {
                    call.early = Early::Answered;
                    self.outputs.push_back(Output::EarlyAnswer { conv, sdp });
                }
            }
            signal => self.outputs.push_back(Output::RemoteSignal { conv, signal }),
        }
    }

    fn on_response(&mut self, now: Instant, id: CallId, status: CallStatus, sdp: Option<String>) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        let conv = call.conv;
        match (call.role, call.phase, status) {
            (Role::Caller, Phase::Calling, CallStatus::Accepted) => {
                call.phase = Phase::Active;
                self.outputs.push_back(Output::Event {
                    conv,
                    event: CallEvent::Response(CallStatus::Accepted),
                });
                // An early answer is applied already; the accept's copy of it is not news.
                let remote_sdp = sdp.filter(|_| call.early == Early::Off);
                self.outputs.push_back(Output::Established { conv, remote_sdp });
                self.release_held();
            }
            (Role::Caller, Phase::Calling, terminal) => {
                let reason = match terminal {
                    CallStatus::Rejected => EndReason::Rejected,
                    CallStatus::Busy => EndReason::Busy,
                    _ => EndReason::Timeout,
                };
                self.remove(&id);
                self.outputs
                    .push_back(Output::Event { conv, event: CallEvent::Response(terminal) });
                self.outputs.push_back(Output::Event { conv, event: CallEvent::Closed(reason) });
            }
            (Role::Callee, Phase::Accepting, CallStatus::Accepted) => {
                call.phase = Phase::Active;
                let merged = call.outgoing_for_app;
                if merged {
                    self.outputs.push_back(Output::Event {
                        conv,
                        event: CallEvent::Response(CallStatus::Accepted),
                    });
                }
                self.outputs.push_back(Output::Established { conv, remote_sdp: None });
            }
            // Repeats and answers that no longer fit: the call has moved on.
            _ => {}
        }
        let _ = now;
    }

    fn on_merged(&mut self, now: Instant, ours: CallId, into: IncomingCall) {
        let Some(call) = self.calls.get(&ours) else { return };
        if call.role != Role::Caller || call.phase != Phase::Calling || call.peer != into.from {
            return;
        }
        let conv = call.conv;
        self.calls.remove(&ours);
        self.held = None;
        self.calls.insert(
            into.call_id.clone(),
            Call {
                id: into.call_id.clone(),
                conv,
                role: Role::Callee,
                peer: into.from.clone(),
                phase: Phase::Answering,
                data: into.data.clone(),
                options: into.options.clone(),
                local_sdp: None,
                remote_sdp: into.sdp.clone(),
                held_signals: Vec::new(),
                acknowledged: true,
                outgoing_for_app: true,
                rang_since: now,
                early: Early::Off,
            },
        );
        self.outputs.push_back(Output::AnswerNeeded {
            conv,
            call_id: into.call_id,
            remote_sdp: into.sdp,
            options: into.options,
        });
    }

    fn on_closed(&mut self, now: Instant, id: CallId, reason: CloseReason) {
        let _ = now;
        let Some(call) = self.remove(&id) else {
            if self.held.as_ref().is_some_and(|h| h.call.call_id == id) {
                self.held = None;
            }
            return;
        };
        let conv = call.conv;
        if reason == CloseReason::Unreachable {
            self.outputs.push_back(Output::Event {
                conv,
                event: CallEvent::Failed(CallError::Unreachable { uid: call.peer.clone() }),
            });
        }
        self.outputs
            .push_back(Output::Event { conv, event: CallEvent::Closed(EndReason::from(reason)) });
    }

    fn on_error(&mut self, now: Instant, code: ErrorCode, message: String, id: Option<CallId>) {
        let _ = now;
        let Some(id) = id else { return };
        let Some(call) = self.calls.get(&id) else { return };
        let fatal = match code {
            // Retries after a reconnect meet these; the call itself is fine.
            ErrorCode::InvalidState | ErrorCode::DuplicateCallId | ErrorCode::RateLimited => false,
            ErrorCode::NotInCall => true,
            ErrorCode::InvalidRequest | ErrorCode::MessageTooLarge | ErrorCode::Malformed => {
                // Only an invite that never got anywhere dies of it; a bad signal on a live
                // call is the media layer's problem, not the call's.
                call.phase == Phase::Calling && !call.acknowledged
            }
            _ => false,
        };
        if !fatal {
            return;
        }
        let conv = call.conv;
        self.remove(&id);
        self.outputs.push_back(Output::Event {
            conv,
            event: CallEvent::Failed(CallError::Server { code, message }),
        });
        self.outputs.push_back(Output::Event { conv, event: CallEvent::Closed(EndReason::Failed) });
    }

    // ---- time ----

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let lost = self
            .disconnected_since
            .filter(|_| !self.calls.is_empty())
            .map(|t| t + self.config.grace + self.config.margin);
        let ring = self
            .calls
            .values()
            .filter(|c| c.phase != Phase::Active)
            .map(|c| c.rang_since + self.config.ring_timeout + self.config.margin)
            .min();
        [lost, ring].into_iter().flatten().min()
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if let Some(since) = self.disconnected_since {
            if now >= since + self.config.grace + self.config.margin {
                self.fail_all(CallError::ConnectionLost, EndReason::ConnectionLost);
            }
        }
        let deadline = self.config.ring_timeout + self.config.margin;
        let expired: Vec<CallId> = self
            .calls
            .values()
            .filter(|c| c.phase != Phase::Active && now >= c.rang_since + deadline)
            .map(|c| c.id.clone())
            .collect();
        for id in expired {
            // The server should have ended this ring long ago; it is gone or lost the call.
            let call = self.remove(&id).expect("listed above");
            if let Some(msg) = end_message(&call) {
                self.send(msg);
            }
            if call.role == Role::Caller {
                self.outputs.push_back(Output::Event {
                    conv: call.conv,
                    event: CallEvent::Response(CallStatus::Timeout),
                });
            }
            self.outputs.push_back(Output::Event {
                conv: call.conv,
                event: CallEvent::Closed(EndReason::Timeout),
            });
        }
    }

    pub(crate) fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    // ---- helpers ----

    fn id_of(&self, conv: ConvId) -> Option<CallId> {
        self.calls.values().find(|c| c.conv == conv).map(|c| c.id.clone())
    }

    fn call_of_mut(&mut self, conv: ConvId) -> Result<&mut Call, ActionError> {
        self.calls.values_mut().find(|c| c.conv == conv).ok_or(ActionError::Closed(None))
    }

    /// Removes a call, telling the media layer to drop whatever it holds for it.
    fn remove(&mut self, id: &str) -> Option<Call> {
        let call = self.calls.remove(id)?;
        self.outputs.push_back(Output::Released { conv: call.conv });
        if self.held.as_ref().is_some_and(|h| !self.is_calling(&h.call.from)) {
            self.release_held();
        }
        Some(call)
    }

    /// Whether we are placing a call to `uid` that it has not answered: what makes a call
    /// from `uid` crossing it glare.
    fn is_calling(&self, uid: &str) -> bool {
        self.calls.values().any(|c| {
            c.role == Role::Caller
                && matches!(c.phase, Phase::Preparing | Phase::Calling)
                && c.peer == uid
        })
    }

    fn send(&mut self, msg: ClientMessage) {
        if self.connected {
            self.outputs.push_back(Output::Send(msg));
        } else {
            self.unsent.push_back(msg);
        }
    }

    /// Ends every call because a new one starts; each conversation hears `Closed`.
    fn end_all(&mut self, now: Instant, reason: EndReason) {
        let _ = now;
        let ids: Vec<CallId> = self.calls.keys().cloned().collect();
        for id in ids {
            let call = self.remove(&id).expect("listed above");
            if let Some(msg) = end_message(&call) {
                self.send(msg);
            }
            self.outputs
                .push_back(Output::Event { conv: call.conv, event: CallEvent::Closed(reason) });
        }
    }

    fn fail_all(&mut self, error: CallError, reason: EndReason) {
        // Cut off from the server: nothing to decline it to; the server ends that ring.
        self.held = None;
        let ids: Vec<CallId> = self.calls.keys().cloned().collect();
        for id in ids {
            let call = self.remove(&id).expect("listed above");
            if let Some(msg) = end_message(&call) {
                self.send(msg);
            }
            self.outputs.push_back(Output::Event {
                conv: call.conv,
                event: CallEvent::Failed(error.clone()),
            });
            self.outputs
                .push_back(Output::Event { conv: call.conv, event: CallEvent::Closed(reason) });
        }
    }

    /// A held glare call that the server did not merge is declined: we are busy, or the
    /// call we made has ended and the crossing one went nowhere.
    fn release_held(&mut self) {
        if let Some(held) = self.held.take() {
            self.send(ClientMessage::Reject { call_id: held.call.call_id, busy: true });
        }
    }
}

/// Whether a call to `to` may be placed, by a client signed in as `uid` (once known) under
/// the server's `limits`. The app-facing handle checks with it too, so a bad argument fails
/// at the call site.
///
/// # Errors
///
/// `InvalidArgument` for a malformed uid, calling yourself, or data over the limit.
pub(crate) fn check_call(
    uid: Option<&str>,
    to: &str,
    data: Option<&str>,
    limits: &duet_protocol::Limits,
) -> Result<(), ActionError> {
    let invalid = ActionError::InvalidArgument;
    duet_protocol::check_uid(to).map_err(|e| invalid(InvalidArgument::Uid(e)))?;
    if uid == Some(to) {
        return Err(invalid(InvalidArgument::CallingYourself));
    }
    let max_bytes = limits.max_data_bytes;
    if data.is_some_and(|d| d.len() > max_bytes) {
        return Err(invalid(InvalidArgument::DataTooLong { max_bytes }));
    }
    Ok(())
}

/// Why a description that the media layer made no longer fits its call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DescriptionRefused {
    /// The call ended while it was being made.
    Closed,
    /// The call is no longer waiting for this kind of description (glare turned it around).
    WrongPhase,
}

/// The message that carries this side's description of a call: the invite of a caller, the
/// accept of a callee.
fn description_message(call: &Call) -> Option<ClientMessage> {
    match call.phase {
        Phase::Calling => Some(ClientMessage::Invite {
            call_id: call.id.clone(),
            to: call.peer.clone(),
            data: call.data.clone(),
            options: call.options.clone(),
            sdp: call.local_sdp.clone(),
        }),
        Phase::Accepting => {
            Some(ClientMessage::Accept { call_id: call.id.clone(), sdp: call.local_sdp.clone() })
        }
        _ => None,
    }
}

/// What tells the server a call is over from this side; nothing for a call it never heard of.
fn end_message(call: &Call) -> Option<ClientMessage> {
    (call.phase != Phase::Preparing).then(|| ClientMessage::Hangup { call_id: call.id.clone() })
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
