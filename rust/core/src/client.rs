//! The state one VideoCall shares between the app's threads and its driver task.
//!
//! The app's actions lock the lifecycle machine briefly, act, and wake the driver; the
//! driver drains the machine's outputs and does the I/O. Neither holds a lock across an
//! await or while a delegate runs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use duet_protocol::{CallOptions as WireOptions, ClientMessage, IceTransportPolicy, Signal};
use tokio::sync::{mpsc, Notify};

use crate::conversation::{ConvEvent, Conversation};
use crate::events::EventQueue;
use crate::lifecycle::{ActionError, ConvId, ConversationState, Event, Lifecycle, Output};
use crate::media::LocalStream;
use crate::peer::{CallMedia, CallStats, MediaConfig, MediaError, MediaEvent, MediaParams};
use crate::signaling::{ConnectionState, ServerInfo};
use crate::sync::lock;

/// Remote signals kept for a call whose media does not exist yet (a ringing callee hears the
/// caller's candidates before it has a peer connection); more than this is a misbehaving peer.
const MAX_EARLY_SIGNALS: usize = 64;

/// Who a client is and where it connects, as its first handshake settled it.
pub(crate) struct Identity {
    pub token: String,
    pub device_id: String,
    /// The WebSocket URL.
    pub url: String,
}

/// Which description a new call's media produced.
enum Description {
    Offer,
    Answer,
}

/// Hears about incoming calls. Called on the VideoCall's event thread.
pub trait VideoCallDelegate: Send + Sync {
    /// Someone calls. Keep `conversation` (and set its delegate) to answer it: a conversation
    /// nobody holds is declined.
    fn did_receive_call_with_conversation(
        &self,
        conversation: Arc<Conversation>,
        data: Option<String>,
    );

    /// The signaling connection went down, came back, or was refused. Ongoing calls'
    /// media does not depend on it, but nothing can be signaled while it is down. The
    /// state after `VideoCall::connect` returns is `Connected`, unannounced.
    fn did_change_connection_state(&self, state: ConnectionState) {
        let _ = state;
    }
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
    media: Mutex<HashMap<ConvId, Arc<CallMedia>>>,
    early_signals: Mutex<HashMap<ConvId, Vec<Signal>>>,
    media_events: mpsc::UnboundedSender<MediaEvent>,
    media_config: MediaConfig,
    pub(crate) wake: Notify,
    stopping: AtomicBool,
    pub(crate) events: EventQueue,
    delegate: Arc<dyn VideoCallDelegate>,
    pub(crate) token: Mutex<String>,
    pub(crate) device_id: String,
    pub(crate) url: String,
    pub(crate) info: Mutex<ServerInfo>,
    connection_state: Mutex<ConnectionState>,
    me: Weak<Client>,
}

/// A call's peer connection, and the offer or answer it made.
async fn build_media(
    params: MediaParams,
    kind: &Description,
    remote_sdp: Option<String>,
) -> Result<(CallMedia, String), MediaError> {
    let started = std::time::Instant::now();
    let media = CallMedia::new(params).await?;
    let built = started.elapsed();
    let sdp = match kind {
        Description::Offer => media.offer().await,
        Description::Answer => match remote_sdp {
            Some(offer) => media.answer(offer).await,
            None => Err(MediaError::new("the caller sent no offer")),
        },
    };
    tracing::debug!(
        "media ready in {:?}: peer connection {built:?}, description {:?}",
        started.elapsed(),
        started.elapsed() - built
    );
    match sdp {
        Ok(sdp) => Ok((media, sdp)),
        Err(e) => {
            media.close().await;
            Err(e)
        }
    }
}

fn close_media(media: Arc<CallMedia>) {
    tokio::spawn(async move { media.close().await });
}

impl Client {
    pub(crate) fn new(
        machine: Lifecycle,
        delegate: Arc<dyn VideoCallDelegate>,
        Identity { token, device_id, url }: Identity,
        info: ServerInfo,
        media_config: MediaConfig,
        media_events: mpsc::UnboundedSender<MediaEvent>,
    ) -> Arc<Client> {
        Arc::new_cyclic(|me| Client {
            machine: Mutex::new(machine),
            convs: Mutex::new(HashMap::new()),
            local_streams: Mutex::new(HashMap::new()),
            media: Mutex::new(HashMap::new()),
            early_signals: Mutex::new(HashMap::new()),
            media_events,
            media_config,
            wake: Notify::new(),
            stopping: AtomicBool::new(false),
            events: EventQueue::start(&format!("duet-events-{device_id}")),
            delegate,
            token: Mutex::new(token),
            device_id,
            url,
            info: Mutex::new(info),
            connection_state: Mutex::new(ConnectionState::Connected),
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
            let (conv, _) = m.call(Instant::now(), remote_uid, options.data, wire)?;
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
        let mut m = lock(&self.machine);
        m.begin_accept(Instant::now(), conv)?;
        // Stored before the machine is unlocked: the driver needs it for `AnswerNeeded`.
        lock(&self.local_streams).insert(conv, local_stream);
        drop(m);
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

    pub(crate) async fn stats(&self, conv: ConvId) -> Option<CallStats> {
        let media = lock(&self.media).get(&conv).cloned()?;
        Some(media.stats().await)
    }

    pub(crate) fn remote_stream(&self, conv: ConvId) -> Option<Arc<crate::media::RemoteStream>> {
        lock(&self.media).get(&conv).map(|m| m.remote_stream())
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
        // The flag and the hang-ups change together, under the machine's lock: a driver that
        // sees the flag then drains the machine and finds the hang-ups there.
        let mut m = lock(&self.machine);
        if !self.stopping.swap(true, Ordering::AcqRel) {
            m.shutdown(Instant::now());
            drop(m);
            self.wake.notify_one();
        }
    }

    /// Tells the delegate about a new connection state; repeats are not news.
    pub(crate) fn set_connection_state(&self, state: ConnectionState) {
        let mut current = lock(&self.connection_state);
        if *current == state {
            return;
        }
        *current = state.clone();
        drop(current);
        let delegate = Arc::clone(&self.delegate);
        self.events.push(move || delegate.did_change_connection_state(state));
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
            Output::OfferNeeded { conv, call_id, options } => self.start_media(
                conv,
                call_id,
                options.ice_transport_policy,
                Description::Offer,
                None,
            ),
            Output::AnswerNeeded { conv, call_id, remote_sdp, options } => {
                // Glare: the offer made for this conversation's own call is moot now.
                if let Some(old) = lock(&self.media).remove(&conv) {
                    close_media(old);
                }
                let policy = options.ice_transport_policy;
                self.start_media(conv, call_id, policy, Description::Answer, remote_sdp)
            }
            Output::Established { conv, remote_sdp: Some(answer) } => {
                let Some(media) = lock(&self.media).get(&conv).cloned() else { return };
                let client = self.me.clone();
                tokio::spawn(async move {
                    if let Err(e) = media.accept_answer(answer).await {
                        if let Some(client) = client.upgrade() {
                            client.fail_media(conv, format!("the callee's answer: {e}"));
                        }
                    }
                });
            }
            Output::Established { remote_sdp: None, .. } => {}
            Output::RemoteSignal { conv, signal } => {
                if let Some(media) = lock(&self.media).get(&conv) {
                    return media.remote_signal(signal);
                }
                let mut early = lock(&self.early_signals);
                let kept = early.entry(conv).or_default();
                if kept.len() < MAX_EARLY_SIGNALS {
                    kept.push(signal);
                }
            }
            Output::Released { conv } => {
                lock(&self.local_streams).remove(&conv);
                lock(&self.early_signals).remove(&conv);
                if let Some(media) = lock(&self.media).remove(&conv) {
                    close_media(media);
                }
            }
        }
    }

    /// Builds a call's media and its description off the driver's task, then hands the
    /// description to the machine.
    fn start_media(
        &self,
        conv: ConvId,
        call_id: String,
        policy: IceTransportPolicy,
        kind: Description,
        remote_sdp: Option<String>,
    ) {
        let Some(local) = lock(&self.local_streams).get(&conv).cloned() else {
            return self.fail_media(conv, "no local stream".into());
        };
        let params = MediaParams {
            conv,
            call_id,
            local,
            ice_servers: lock(&self.info).ice_servers.clone(),
            policy,
            config: self.media_config.clone(),
            events: self.media_events.clone(),
        };
        let client = self.me.clone();
        tokio::spawn(async move {
            let built = build_media(params, &kind, remote_sdp).await;
            match client.upgrade() {
                Some(client) => client.media_ready(conv, kind, built),
                None => {
                    if let Ok((media, _)) = built {
                        media.close().await;
                    }
                }
            }
        });
    }

    fn media_ready(
        &self,
        conv: ConvId,
        kind: Description,
        built: Result<(CallMedia, String), MediaError>,
    ) {
        let (media, sdp) = match built {
            Ok(b) => b,
            Err(e) => return self.fail_media(conv, e.to_string()),
        };
        let mut m = lock(&self.machine);
        let now = Instant::now();
        let applied = match kind {
            Description::Offer => m.offer_ready(now, conv, sdp),
            Description::Answer => m.answer_ready(now, conv, sdp),
        };
        if applied.is_err() {
            // The conversation ended while its media was being built.
            drop(m);
            return close_media(Arc::new(media));
        }
        // Registered under the machine's lock, so the `Released` that ends this call can only
        // come after, and finds it.
        let media = Arc::new(media);
        lock(&self.media).insert(conv, Arc::clone(&media));
        drop(m);
        for signal in lock(&self.early_signals).remove(&conv).unwrap_or_default() {
            media.remote_signal(signal);
        }
        self.wake.notify_one();
    }

    fn fail_media(&self, conv: ConvId, why: String) {
        tracing::warn!(conv = conv.0, "media failed: {why}");
        lock(&self.machine).media_failed(Instant::now(), conv, why);
        self.wake.notify_one();
    }

    /// What a call's media reports, in the driver's task.
    pub(crate) fn handle_media_event(&self, event: MediaEvent) {
        match event {
            MediaEvent::LocalSignal(conv, signal) => {
                // A signal for a call that ended is of no use to anyone.
                let _ = lock(&self.machine).signal(conv, signal);
            }
            MediaEvent::RemoteSending(conv, sending) => {
                if let Some(c) = self.conversation(conv) {
                    c.post(ConvEvent::RemoteSending(sending), None);
                }
            }
            MediaEvent::Stream(conv, remote) => {
                if let Some(c) = self.conversation(conv) {
                    c.post(ConvEvent::Stream(remote), None);
                }
            }
            MediaEvent::Failed(conv, why) => self.fail_media(conv, why),
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
