//! The engine: one task per VideoCall that owns everything about its calls. It holds the
//! lifecycle machine, one record per conversation (snapshot, local stream, peer session,
//! early signals) and the signaling link; the app's handles (`VideoCall`,
//! `Conversation`) send it `Command`s and read the snapshots it publishes. Nothing here is
//! shared behind a lock, and nothing the app calls waits for this task.
//!
//! Its loop: act on one wake-up (a command, a frame from the server, a timer, a peer
//! session's event), then drain the machine's outputs: messages to send, events for the
//! delegates, peer sessions to build or release.

mod commands;
mod link;
mod peer_work;
mod push;
mod reconnect;
mod records;
mod restart;
mod views;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use duet_protocol::{ClientMessage, ServerMessage, Signal};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::{self, Message};

pub(crate) use commands::{Command, NewCall};
pub use push::PushError;
pub use reconnect::ReconnectPolicy;
pub(crate) use views::{ClientView, ConversationView};

use crate::conversation::{Conversation, DelegateEvent};
use crate::delegate_queue::DelegateQueue;
use crate::lifecycle::{
    CallEvent, ConvId, ConversationState, EndReason, Lifecycle, Output, Welcome,
};
use crate::peer::{MediaConfig, PeerEvent};
use crate::signaling::{ConnectionState, Endpoint, ServerInfo, Socket};
use crate::video_call::VideoCallDelegate;
use link::{Keepalive, Link};
use peer_work::Note;
use reconnect::Reconnect;
use records::{CallRecord, Closing, PeerSlot};

/// Who a client is and where it connects, as its first handshake settled it.
pub(crate) struct Identity {
    pub token: String,
    pub device_id: String,
    /// Where the link connects (URL and TLS).
    pub endpoint: Endpoint,
}

/// What the engine starts with: a welcomed connection and the app's side of things.
pub(crate) struct Start {
    pub machine: Lifecycle,
    pub identity: Identity,
    pub ws: Socket,
    pub info: ServerInfo,
    pub media: MediaConfig,
    pub reconnect: ReconnectPolicy,
    pub delegate: Arc<dyn VideoCallDelegate>,
    pub queue: DelegateQueue,
    pub commands: mpsc::UnboundedReceiver<Command>,
    pub commands_tx: mpsc::WeakUnboundedSender<Command>,
    pub client_view: watch::Sender<ClientView>,
    /// The call whose push woke the app, named in the first `hello`.
    pub woken_for: Option<String>,
}

pub(crate) struct Engine {
    machine: Lifecycle,
    calls: HashMap<ConvId, CallRecord>,
    link: Option<Link>,
    keepalive: Keepalive,
    reconnect: Reconnect,
    identity: Identity,
    info: ServerInfo,
    media: MediaConfig,
    delegate: Arc<dyn VideoCallDelegate>,
    queue: DelegateQueue,
    client_view: watch::Sender<ClientView>,
    connection_state: ConnectionState,
    commands: mpsc::UnboundedReceiver<Command>,
    /// Weak, so the engine does not keep its own command channel open: it also ends when
    /// every handle is gone.
    commands_tx: mpsc::WeakUnboundedSender<Command>,
    peer_events_tx: mpsc::UnboundedSender<PeerEvent>,
    peer_events: mpsc::UnboundedReceiver<PeerEvent>,
    notes_tx: mpsc::UnboundedSender<Note>,
    notes: mpsc::UnboundedReceiver<Note>,
    next_build: u64,
    /// Peer sessions of ended calls, closing.
    closing: Closing,
    stopping: bool,
    push: push::PushState,
    /// Pre-connected calls the app accepted: their sessions get the local stream once the
    /// accept has gone out.
    attach_after_flush: Vec<ConvId>,
}

/// What woke the engine.
// One value lives for one turn of the loop; boxing the socket would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Wake {
    Command(Option<Command>),
    Deadline,
    /// A call's media stayed down too long (see `restart`).
    MediaDeadline,
    Frame(Option<Result<Message, tungstenite::Error>>),
    Keepalive,
    RetryDue,
    Attempted(Result<(Socket, ServerInfo), crate::signaling::ConnectError>),
    Peer(PeerEvent),
    Note(Note),
}

impl Engine {
    pub(crate) fn new(s: Start) -> Engine {
        let (peer_events_tx, peer_events) = mpsc::unbounded_channel();
        let (notes_tx, notes) = mpsc::unbounded_channel();
        Engine {
            machine: s.machine,
            calls: HashMap::new(),
            link: Some(Link::new(s.ws, &s.info.limits)),
            keepalive: Keepalive::new(s.info.keepalive),
            reconnect: Reconnect::new(s.reconnect),
            identity: s.identity,
            info: s.info,
            media: s.media,
            delegate: s.delegate,
            queue: s.queue,
            client_view: s.client_view,
            connection_state: ConnectionState::Connected,
            commands: s.commands,
            commands_tx: s.commands_tx,
            peer_events_tx,
            peer_events,
            notes_tx,
            notes,
            next_build: 0,
            closing: Closing::default(),
            stopping: false,
            push: push::PushState::new(s.woken_for),
            attach_after_flush: Vec::new(),
        }
    }

    pub(crate) async fn run(mut self) {
        loop {
            self.flush().await;
            for conv in std::mem::take(&mut self.attach_after_flush) {
                self.attach_local(Instant::now(), conv);
            }
            if self.stopping {
                return self.finish().await;
            }
            if self.link.is_none() && !self.reconnect.under_way() {
                self.lost_link();
            }
            let wake = self.next_wake().await;
            self.handle(wake).await;
        }
    }

    async fn next_wake(&mut self) -> Wake {
        let deadline = self.machine.poll_timeout().map(tokio::time::Instant::from_std);
        let media_deadline = self.media_deadline().map(tokio::time::Instant::from_std);
        let connected = self.link.is_some();
        self.keepalive.set_in_call(!self.calls.is_empty());
        tokio::select! {
            command = self.commands.recv() => Wake::Command(command),
            () = sleep_until(deadline) => Wake::Deadline,
            () = sleep_until(media_deadline) => Wake::MediaDeadline,
            frame = next_frame(self.link.as_mut()) => Wake::Frame(frame),
            () = self.keepalive.tick(), if connected => Wake::Keepalive,
            step = self.reconnect.next() => match step {
                reconnect::Step::RetryDue => Wake::RetryDue,
                reconnect::Step::Attempted(result) => Wake::Attempted(*result),
            },
            Some(event) = self.peer_events.recv() => Wake::Peer(event),
            Some(note) = self.notes.recv() => Wake::Note(note),
        }
    }

    async fn handle(&mut self, wake: Wake) {
        let now = Instant::now();
        match wake {
            Wake::Command(Some(Command::Push { msg, reply })) => {
                let msg = self.push.ask(msg, reply);
                self.send(msg).await;
            }
            Wake::Command(Some(command)) => self.command(now, command),
            // Every handle is gone: nobody can hear or end a call any more.
            Wake::Command(None) => self.shut_down(now),
            Wake::Deadline => self.machine.handle_timeout(now),
            Wake::MediaDeadline => self.media_deadline_passed(now),
            Wake::Frame(Some(Ok(Message::Text(text)))) => self.on_server_message(now, &text),
            Wake::Frame(Some(Ok(Message::Close(Some(frame)))))
                if u16::from(frame.code) == duet_protocol::CLOSE_DRAINING =>
            {
                // Not a failure: the server is going away on purpose and another takes over.
                tracing::info!("the server is draining; reconnecting at once");
                self.link = None;
                self.lost_link();
                self.reconnect.at_once();
            }
            Wake::Frame(Some(Ok(Message::Close(_)) | Err(_)) | None) => {
                tracing::info!("signaling connection lost; reconnecting");
                self.link = None;
            }
            Wake::Frame(Some(Ok(_))) => {}
            Wake::Keepalive => {
                let alive = match self.link.as_mut() {
                    Some(link) => link.keepalive(self.keepalive.silence_limit()).await.is_ok(),
                    None => false,
                };
                if !alive {
                    self.link = None;
                }
            }
            Wake::RetryDue => {
                let hello = self.hello(now);
                self.reconnect.attempt(self.identity.endpoint.clone(), hello);
            }
            Wake::Attempted(result) => self.attempted(now, result),
            Wake::Peer(event) => self.peer_event(now, event),
            Wake::Note(note) => self.note(now, note),
        }
    }

    fn command(&mut self, now: Instant, command: Command) {
        match command {
            Command::Call(new) => self.place(now, *new),
            Command::Accept { conv, local } => {
                let Some(record) = self.calls.get_mut(&conv) else { return };
                record.local = Some(local);
                let pre_connected = matches!(record.peer, PeerSlot::Ready(_));
                // A call that ended meanwhile: its close is on its way to the delegate.
                if self.machine.begin_accept(now, conv).is_ok() && pre_connected {
                    // Once the accept is out: making the encoder takes milliseconds.
                    self.attach_after_flush.push(conv);
                }
            }
            Command::Reject { conv } => {
                if self.machine.reject(now, conv).is_ok() {
                    self.ended_here(conv);
                }
            }
            Command::Close { conv } => {
                if self.machine.state(conv) != ConversationState::Closed {
                    self.ended_here(conv);
                    self.machine.close(now, conv);
                }
            }
            Command::Release { conv } => {
                self.machine.close(now, conv);
                if let Some(session) = self.calls.remove(&conv).and_then(|mut r| r.take_peer()) {
                    self.closing.close(session);
                }
            }
            Command::Stats { conv, reply } => self.stats(conv, reply),
            Command::UpdateToken(token) => self.identity.token = token,
            Command::NetworkChanged => self.network_changed(now),
            // Taken by `handle`, which can wait for the link.
            Command::Push { msg, .. } => self.machine.requeue(msg),
            Command::Shutdown => self.shut_down(now),
        }
    }

    fn place(&mut self, now: Instant, new: NewCall) {
        let NewCall { conv, to, data, options, local, conversation, view } = new;
        self.calls.insert(conv, CallRecord::new(conversation, view, Some(local)));
        if let Err(e) = self.machine.call_as(now, conv, &to, data, options) {
            // The handle checked the same rules against its snapshot; only news from the
            // server since (a new uid, new limits) can get here.
            tracing::warn!(conv = conv.0, "call refused: {e}");
            self.post(conv, DelegateEvent::Closed, Some(EndReason::Failed));
        }
    }

    /// The app ended this conversation itself: its reason is `Local`, and no `did_close`.
    fn ended_here(&mut self, conv: ConvId) {
        if let Some(record) = self.calls.get(&conv) {
            record.view.send_modify(|v| {
                v.close_reason.get_or_insert(EndReason::Local);
            });
        }
    }

    fn shut_down(&mut self, now: Instant) {
        self.stopping = true;
        self.machine.shutdown(now);
    }

    fn on_server_message(&mut self, now: Instant, text: &str) {
        let msg = match duet_protocol::decode_server(text) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("ignoring a server message we cannot read: {e}");
                return;
            }
        };
        if self.push.on_answer(&msg) {
            return;
        }
        if let push::WokenNews::Ended { call_id, reason } = self.push.on_woken_news(&msg) {
            let delegate = Arc::clone(&self.delegate);
            self.queue.push(move || delegate.did_end_woken_call(call_id, reason));
            return;
        }
        match &msg {
            ServerMessage::Pong { .. } => return,
            ServerMessage::Error { code, message, call_id } => {
                tracing::warn!(?code, ?call_id, "server error: {message}");
            }
            _ => tracing::debug!(?msg, "from server"),
        }
        self.machine.on_message(now, msg);
    }

    fn hello(&self, now: Instant) -> ClientMessage {
        ClientMessage::Hello {
            v: duet_protocol::PROTOCOL_VERSION,
            token: self.identity.token.clone(),
            device_id: self.identity.device_id.clone(),
            calls: self.machine.restatements(now),
            woken_for: None,
        }
    }

    /// Sends what the machine wants sent, and does everything else it asks, until it has
    /// nothing more to say. The snapshots go first, so a delegate that hears an event and
    /// looks at its conversation sees the state the event left it in.
    async fn flush(&mut self) {
        loop {
            let outputs: Vec<Output> = std::iter::from_fn(|| self.machine.poll_output()).collect();
            if outputs.is_empty() {
                return;
            }
            self.publish(&outputs);
            // Everything but the sends first, without a pause: once the app can see a
            // conversation closed in its snapshot, the close event is already queued, even
            // if the app lets go of the conversation the instant it sees it.
            let mut sends = Vec::new();
            for out in outputs {
                self.apply(out, &mut sends);
            }
            for msg in sends {
                self.send(msg).await;
            }
            // Kept until the batch is done: a call's close event comes after its release.
            let machine = &self.machine;
            self.calls.retain(|conv, _| machine.state(*conv) != ConversationState::Closed);
        }
    }

    /// Publishes every conversation's snapshot, with the close reasons `outputs` bring.
    fn publish(&self, outputs: &[Output]) {
        for (conv, record) in &self.calls {
            let reason = outputs.iter().find_map(|o| match o {
                Output::Event { conv: c, event: CallEvent::Closed(r) } if c == conv => Some(*r),
                _ => None,
            });
            let state = self.machine.state(*conv);
            let call_id = self.machine.call_id(*conv);
            record.view.send_if_modified(|v| {
                let before = (v.state, v.call_id.clone(), v.close_reason);
                v.state = state;
                if call_id.is_some() {
                    v.call_id = call_id;
                }
                if v.close_reason.is_none() {
                    v.close_reason = reason;
                }
                if state == ConversationState::Closed {
                    v.remote_stream = None;
                }
                before != (v.state, v.call_id.clone(), v.close_reason)
            });
        }
    }

    /// Acts on one output; messages for the server are collected in `sends`.
    fn apply(&mut self, out: Output, sends: &mut Vec<ClientMessage>) {
        match out {
            Output::Send(msg) => sends.push(msg),
            Output::Incoming { conv, from, data, call_id, .. } => {
                tracing::info!(%call_id, %from, "incoming call");
                self.ring(conv, from, data);
            }
            Output::Event { conv, event } => {
                let (event, reason) = match event {
                    CallEvent::Response(s) => (DelegateEvent::Response(s), None),
                    CallEvent::Failed(e) => (DelegateEvent::Failed(e), None),
                    CallEvent::Closed(r) => (DelegateEvent::Closed, Some(r)),
                };
                self.post(conv, event, reason);
            }
            Output::OfferNeeded { conv, call_id, options } => {
                self.build_peer(conv, call_id, options.ice_transport_policy, None, false);
            }
            Output::PreconnectNeeded { conv, call_id, remote_sdp, options } => {
                let policy = options.ice_transport_policy;
                self.build_peer(conv, call_id, policy, Some(Some(remote_sdp)), true);
            }
            Output::EarlyAnswer { conv, sdp } => self.apply_answer(conv, sdp),
            Output::AnswerNeeded { conv, call_id, remote_sdp, options } => {
                // Glare: a session made for this conversation's own offer is moot now.
                if let Some(session) = self.calls.get_mut(&conv).and_then(CallRecord::take_peer) {
                    self.closing.close(session);
                }
                let policy = options.ice_transport_policy;
                self.build_peer(conv, call_id, policy, Some(remote_sdp), false);
            }
            Output::Established { conv, remote_sdp } => {
                if let Some(answer) = remote_sdp {
                    self.apply_answer(conv, answer);
                }
                self.start_media(conv);
            }
            Output::RemoteSignal { conv, signal } => match signal {
                // During a call, a description or `reconnecting` is an ICE restart.
                Signal::Description { .. } | Signal::Reconnecting => {
                    self.restart_signal(conv, signal);
                }
                signal => {
                    if let Some(record) = self.calls.get_mut(&conv) {
                        record.remote_signal(signal);
                    }
                }
            },
            Output::Released { conv } => self.release(conv),
        }
    }

    async fn send(&mut self, msg: ClientMessage) {
        tracing::debug!(?msg, "to server");
        let sent = match self.link.as_mut() {
            Some(link) => link.send(&msg).await.is_ok(),
            None => false,
        };
        if !sent {
            self.link = None;
            self.machine.requeue(msg);
        }
    }

    /// A new incoming call: its conversation goes to the app's delegate.
    fn ring(&mut self, conv: ConvId, from: String, data: Option<String>) {
        let Some(commands) = self.commands_tx.upgrade() else { return };
        let (view_tx, view) = watch::channel(ConversationView::new(ConversationState::Ringing));
        let call_id = self.machine.call_id(conv);
        view_tx.send_modify(|v| v.call_id = call_id);
        let conversation = Conversation::new(conv, from, false, commands, view, self.queue.clone());
        let record = CallRecord::new(Arc::downgrade(&conversation), view_tx, None);
        self.calls.insert(conv, record);
        let delegate = Arc::clone(&self.delegate);
        self.queue.push(move || delegate.did_receive_call_with_conversation(conversation, data));
    }

    /// Queues an event for a conversation's delegate, if anyone still holds it.
    fn post(&self, conv: ConvId, event: DelegateEvent, reason: Option<EndReason>) {
        let Some(record) = self.calls.get(&conv) else { return };
        if let Some(reason) = reason {
            record.view.send_modify(|v| {
                v.close_reason.get_or_insert(reason);
            });
        }
        if let Some(conversation) = record.conversation.upgrade() {
            conversation.post(event);
        }
    }

    /// The call is over: its peer session and local stream go (the record goes once the
    /// batch of outputs that ended it is done).
    fn release(&mut self, conv: ConvId) {
        if let Some(record) = self.calls.get_mut(&conv) {
            if let Some(session) = record.take_peer() {
                self.closing.close(session);
            }
            record.local = None;
            record.early_signals.clear();
        }
    }

    /// Tells the delegate about a new connection state; repeats are not news.
    fn set_connection_state(&mut self, state: ConnectionState) {
        if self.connection_state == state {
            return;
        }
        self.connection_state = state.clone();
        let delegate = Arc::clone(&self.delegate);
        self.queue.push(move || delegate.did_change_connection_state(state));
    }

    /// Hangs up (the machine already queued the hang-ups, sent by the last flush), closes
    /// every peer session and the link.
    async fn finish(mut self) {
        if self.link.is_none() && self.machine.has_unsent() {
            self.last_words().await;
        }
        for (_, mut record) in self.calls.drain() {
            if let Some(session) = record.take_peer() {
                session.close().await;
            }
        }
        self.closing.wait(CLOSING_WAIT).await;
        if let Some(link) = self.link.take() {
            link.close().await;
        }
        self.client_view.send_modify(|v| v.connected = false);
    }
}

/// How long an ending engine waits for the peer sessions of ended calls to close (each
/// close normally takes milliseconds; it sends the TURN allocation releases).
const CLOSING_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// How long a client that shuts down while its link is down tries to get back to the
/// server, to deliver what it said meanwhile (a reject, a hang-up).
const LAST_WORDS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

impl Engine {
    /// One short attempt to reconnect and send what waits (a reject or hang-up said while the
    /// link was down): otherwise the peer would hear nothing until the server's grace period
    /// ran out.
    async fn last_words(&mut self) {
        let now = Instant::now();
        let hello = self.hello(now);
        let timeout = self.reconnect.attempt_timeout().min(LAST_WORDS_TIMEOUT);
        match crate::signaling::handshake(&self.identity.endpoint, &hello, timeout).await {
            Ok((ws, info)) => {
                self.link = Some(Link::new(ws, &info.limits));
                self.machine.on_connected(now, &welcome_of(&info));
                self.flush().await;
            }
            Err(e) => tracing::info!("shutting down with messages unsent: {e}"),
        }
    }
}

pub(crate) fn welcome_of(info: &ServerInfo) -> Welcome {
    Welcome {
        uid: info.uid.clone(),
        ring_timeout: info.ring_timeout,
        grace: info.grace,
        limits: info.limits,
    }
}

async fn next_frame(link: Option<&mut Link>) -> Option<Result<Message, tungstenite::Error>> {
    match link {
        Some(link) => link.next_frame().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
