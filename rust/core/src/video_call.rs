//! `VideoCall`: a device's connection to duet-server, from which calls are made and at
//! which calls arrive.
//!
//! A handle on the engine task (`engine`), which owns every call: the handle checks what it
//! can at once against the engine's published snapshot, then sends it commands.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use duet_protocol::{CallOptions as WireOptions, IceTransportPolicy, PushToken};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::conversation::Conversation;
use crate::delegate_queue::DelegateQueue;
use crate::engine::{
    self, ClientView, Command, ConversationView, Engine, NewCall, PushError, ReconnectPolicy,
};
use crate::errors::ActionError;
use crate::lifecycle::{
    check_call, ConvIds, ConversationState, EndReason, Lifecycle, LifecycleConfig,
};
use crate::peer::MediaConfig;
use crate::signaling::{handshake, ConnectError, ConnectionState, Endpoint};
use crate::streams::LocalStream;
use crate::sync::lock;
use crate::transport::TlsConnector;

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

    /// The call whose push woke the app (`ClientConfig::woken_for`) is over for this
    /// device: cancelled, answered or declined on another device, timed out. `reason` is
    /// `None` when the server does not know the call (long over, or lost in a restart).
    /// The app ends the system call screen it showed for the push. A woken call that still
    /// rings comes to `did_receive_call_with_conversation` instead.
    fn did_end_woken_call(&self, call_id: String, reason: Option<EndReason>) {
        let _ = (call_id, reason);
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

#[derive(Clone)]
pub struct ClientConfig {
    /// `http://host:port` or `ws://host:port` (the `/ws` path is implied), or a full
    /// WebSocket URL.
    pub server_url: String,
    /// A token minted for this user by the app's backend (or a development server).
    pub token: String,
    /// Identifies this device across reconnects; a random one if not given.
    pub device_id: Option<String>,
    pub reconnect: ReconnectPolicy,
    /// Where calls bind their media sockets.
    pub media: MediaConfig,
    /// The call id a push carried, when the push started or woke the app: the server
    /// answers at once with that call (if it still rings) or its end
    /// (`VideoCallDelegate::did_end_woken_call`).
    pub woken_for: Option<String>,
    /// Certificates (DER) trusted for `wss://` beside the built-in TLS's roots (Mozilla's):
    /// a private CA's, or a test's. Empty for a server with a publicly trusted certificate,
    /// and with a `tls_connector`.
    pub tls_roots: Vec<Vec<u8>>,
    /// Makes the TLS connections `wss://` runs over, with the platform's TLS and trust
    /// store; `None` is the built-in TLS, which builds without the `built-in-tls` feature
    /// (the mobile libraries) do not have.
    pub tls_connector: Option<Arc<dyn TlsConnector>>,
    /// Whether a call ringing on this device (its user's only device) pre-connects: answers
    /// the offer and completes ICE and DTLS while it rings, so that media flows the moment
    /// the app accepts. Nothing is sent or decoded, and no camera is needed, before the
    /// accept; but the caller learns this device's candidates (its addresses, or only its
    /// TURN relay's with the relay policy) before the user answered. On by default.
    pub pre_connect: bool,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("server_url", &self.server_url)
            .field("device_id", &self.device_id)
            .field("reconnect", &self.reconnect)
            .field("media", &self.media)
            .field("woken_for", &self.woken_for)
            .field("tls_roots", &self.tls_roots.len())
            .field("tls_connector", &self.tls_connector.is_some())
            .field("pre_connect", &self.pre_connect)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    pub fn new(server_url: impl Into<String>, token: impl Into<String>) -> Self {
        ClientConfig {
            server_url: server_url.into(),
            token: token.into(),
            device_id: None,
            reconnect: ReconnectPolicy::default(),
            media: MediaConfig::default(),
            woken_for: None,
            tls_roots: Vec::new(),
            tls_connector: None,
            pre_connect: true,
        }
    }
}

/// A connected client. Dropping it hangs up its calls and closes its connection.
pub struct VideoCall {
    commands: mpsc::UnboundedSender<Command>,
    view: watch::Receiver<ClientView>,
    device_id: String,
    ids: ConvIds,
    events: DelegateQueue,
    stopping: AtomicBool,
    engine: Mutex<Option<JoinHandle<()>>>,
}

impl VideoCall {
    /// Connects and authenticates. Returns once the server has welcomed this device, so a
    /// wrong URL or a refused token is an error here rather than a silent retry loop. After
    /// that, a dropped connection is retried in the background and calls resume.
    ///
    /// Must be called within a tokio runtime; the engine's task runs on it.
    ///
    /// # Errors
    ///
    /// A bad URL or device id, an unreachable or silent server, or a refused token.
    pub async fn connect(
        config: ClientConfig,
        delegate: Arc<dyn VideoCallDelegate>,
    ) -> Result<VideoCall, ConnectError> {
        let endpoint =
            Endpoint::new(&config.server_url, &config.tls_roots, config.tls_connector.clone())?;
        let device_id =
            config.device_id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        duet_protocol::check_device_id(&device_id).map_err(|reason| ConnectError::InvalidUrl {
            url: device_id.clone(),
            reason: reason.to_string(),
        })?;
        let hello = duet_protocol::ClientMessage::Hello {
            v: duet_protocol::PROTOCOL_VERSION,
            token: config.token.clone(),
            device_id: device_id.clone(),
            calls: vec![],
            woken_for: config.woken_for.clone(),
        };
        let (ws, info) = handshake(&endpoint, &hello, config.reconnect.attempt_timeout).await?;
        let now = Instant::now();
        let ids = ConvIds::default();
        let mut machine = Lifecycle::with_ids(
            LifecycleConfig { preconnect: config.pre_connect, ..LifecycleConfig::default() },
            now,
            ids.clone(),
        );
        machine.on_connected(now, &engine::welcome_of(&info));
        let (view_tx, view) = watch::channel(ClientView {
            uid: info.uid.clone(),
            ice_servers: info.ice_servers.clone(),
            ring_timeout: info.ring_timeout,
            limits: info.limits,
            connected: true,
        });
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let events = DelegateQueue::start(&format!("duet-events-{device_id}"));
        let engine = Engine::new(engine::Start {
            machine,
            identity: engine::Identity {
                token: config.token,
                device_id: device_id.clone(),
                endpoint,
            },
            ws,
            info,
            media: config.media,
            reconnect: config.reconnect,
            delegate,
            queue: events.clone(),
            commands: commands_rx,
            commands_tx: commands.downgrade(),
            client_view: view_tx,
            woken_for: config.woken_for,
        });
        let task = tokio::spawn(engine.run());
        Ok(VideoCall {
            commands,
            view,
            device_id,
            ids,
            events,
            stopping: AtomicBool::new(false),
            engine: Mutex::new(Some(task)),
        })
    }

    /// Calls `remote_uid`. Any call under way on this client is hung up first. The returned
    /// conversation hears the answer through its delegate.
    ///
    /// # Errors
    ///
    /// `InvalidArgument` for a malformed uid, calling yourself or data over the server's
    /// limit; `Closed` once the client has shut down.
    pub fn call(
        &self,
        remote_uid: &str,
        local_stream: Arc<LocalStream>,
        options: CallOptions,
    ) -> Result<Arc<Conversation>, ActionError> {
        if self.stopping.load(Ordering::Acquire) {
            return Err(ActionError::Closed(None));
        }
        {
            let view = self.view.borrow();
            check_call(Some(&view.uid), remote_uid, options.data.as_deref(), &view.limits)?;
        }
        let conv = self.ids.next();
        let (view_tx, view) = watch::channel(ConversationView::new(ConversationState::Calling));
        let conversation = Conversation::new(
            conv,
            remote_uid.to_owned(),
            true,
            self.commands.clone(),
            view,
            self.events.clone(),
        );
        let new = NewCall {
            conv,
            to: remote_uid.to_owned(),
            data: options.data,
            // Duet's engine applies a pre-connecting callee's early answer.
            options: WireOptions {
                ice_transport_policy: options.ice_transport_policy,
                early_answer: true,
            },
            local: local_stream,
            conversation: Arc::downgrade(&conversation),
            view: view_tx,
        };
        self.commands.send(Command::Call(Box::new(new))).map_err(|_| ActionError::Closed(None))?;
        Ok(conversation)
    }

    /// The uid the server knows this client as (the token's subject).
    pub fn uid(&self) -> String {
        self.view.borrow().uid.clone()
    }

    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// The ICE servers the server handed out in its latest welcome.
    pub fn ice_servers(&self) -> Vec<duet_protocol::IceServer> {
        self.view.borrow().ice_servers.clone()
    }

    pub fn ring_timeout(&self) -> Duration {
        self.view.borrow().ring_timeout
    }

    /// Whether the signaling connection is up now (false while reconnecting, and after
    /// `shutdown`).
    pub fn is_connected(&self) -> bool {
        !self.stopping.load(Ordering::Acquire) && self.view.borrow().connected
    }

    /// A fresh token for the next reconnect (the one in use is checked only when
    /// connecting).
    pub fn update_token(&self, token: impl Into<String>) {
        let _ = self.commands.send(Command::UpdateToken(token.into()));
    }

    /// Tells the engine the device's network changed (an interface came or went, Wi-Fi to
    /// cellular, a new address): every call under way restarts ICE at once over the
    /// networks there are now, rather than waiting seconds for ICE to find its old path
    /// dead. The Swift and Kotlin shims call it from the platform's network monitor. Calling
    /// it when nothing changed costs a brief restart, nothing more.
    pub fn network_changed(&self) {
        let _ = self.commands.send(Command::NetworkChanged);
    }

    /// Registers this device's push token, so that calls reach it while it is not
    /// connected (docs/protocol.md, Pushes). It replaces the device's earlier token, and
    /// survives server restarts. Returns once the server has kept it; if the connection
    /// drops first, it is sent again when it is back.
    ///
    /// # Errors
    ///
    /// The token is malformed, the server could not keep it, or the client shut down.
    pub async fn register_push(&self, push: PushToken) -> Result<(), PushError> {
        duet_protocol::check_push_token(&push)
            .map_err(|e| PushError::InvalidToken(e.to_string()))?;
        self.push_command(duet_protocol::ClientMessage::RegisterPush { push }).await
    }

    /// Forgets this device's push token (at sign-out): calls no longer wake it.
    ///
    /// # Errors
    ///
    /// The server could not forget it, or the client shut down.
    pub async fn unregister_push(&self) -> Result<(), PushError> {
        self.push_command(duet_protocol::ClientMessage::UnregisterPush).await
    }

    async fn push_command(&self, msg: duet_protocol::ClientMessage) -> Result<(), PushError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.commands.send(Command::Push { msg, reply }).map_err(|_| PushError::ShutDown)?;
        answer.await.unwrap_or(Err(PushError::ShutDown))
    }

    /// Hangs up every call, closes the connection, and waits for the engine to end.
    /// Conversations still held report `Closed` from then on.
    pub async fn shutdown(&self) {
        self.stop();
        let task = lock(&self.engine).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    fn stop(&self) {
        if !self.stopping.swap(true, Ordering::AcqRel) {
            // Behind every command the app gave before: a reject just made still goes out.
            let _ = self.commands.send(Command::Shutdown);
        }
    }
}

impl Drop for VideoCall {
    fn drop(&mut self) {
        // The engine sends the hang-ups and closes the link on its own; nobody awaits it.
        self.stop();
    }
}
