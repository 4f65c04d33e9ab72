//! `VideoCall`: a device's connection to duet-server, from which calls are made and at
//! which calls arrive.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::client::{CallOptions, Client, Identity, VideoCallDelegate};
use crate::conversation::Conversation;
use crate::driver::{self, ReconnectPolicy};
use crate::lifecycle::{ActionError, Lifecycle, LifecycleConfig};
use crate::media::LocalStream;
use crate::peer::MediaConfig;
use crate::signaling::{handshake, websocket_url, ConnectError};
use crate::sync::lock;

#[derive(Debug, Clone)]
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
}

impl ClientConfig {
    pub fn new(server_url: impl Into<String>, token: impl Into<String>) -> Self {
        ClientConfig {
            server_url: server_url.into(),
            token: token.into(),
            device_id: None,
            reconnect: ReconnectPolicy::default(),
            media: MediaConfig::default(),
        }
    }
}

/// A connected client. Dropping it hangs up its calls and closes its connection.
pub struct VideoCall {
    client: Arc<Client>,
    driver: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl VideoCall {
    /// Connects and authenticates. Returns once the server has welcomed this device, so a
    /// wrong URL or a refused token is an error here rather than a silent retry loop. After
    /// that, a dropped connection is retried in the background and calls resume.
    ///
    /// Must be called within a tokio runtime; the connection's task runs on it.
    pub async fn connect(
        config: ClientConfig,
        delegate: Arc<dyn VideoCallDelegate>,
    ) -> Result<VideoCall, ConnectError> {
        let url = websocket_url(&config.server_url)?;
        let device_id =
            config.device_id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        duet_protocol::check_device_id(&device_id)
            .map_err(|reason| ConnectError::InvalidUrl { url: device_id.clone(), reason })?;
        let hello = duet_protocol::ClientMessage::Hello {
            v: duet_protocol::PROTOCOL_VERSION,
            token: config.token.clone(),
            device_id: device_id.clone(),
            calls: vec![],
        };
        let (ws, info) = handshake(&url, &hello, config.reconnect.attempt_timeout).await?;
        let now = Instant::now();
        let mut machine = Lifecycle::new(LifecycleConfig::default(), now);
        machine.on_connected(now, &driver::welcome_of(&info));
        let (media_tx, media_rx) = tokio::sync::mpsc::unbounded_channel();
        let identity = Identity { token: config.token, device_id, url };
        let client = Client::new(machine, delegate, identity, info.clone(), config.media, media_tx);
        let task =
            tokio::spawn(driver::run(Arc::clone(&client), ws, info, config.reconnect, media_rx));
        Ok(VideoCall { client, driver: std::sync::Mutex::new(Some(task)) })
    }

    /// Calls `remote_uid`. Any call under way on this client is hung up first. The returned
    /// conversation hears the answer through its delegate.
    pub fn call(
        &self,
        remote_uid: &str,
        local_stream: Arc<LocalStream>,
        options: CallOptions,
    ) -> Result<Arc<Conversation>, ActionError> {
        self.client.call(remote_uid, local_stream, options)
    }

    /// The uid the server knows this client as (the token's subject).
    pub fn uid(&self) -> String {
        lock(&self.client.info).uid.clone()
    }

    pub fn device_id(&self) -> &str {
        &self.client.device_id
    }

    /// The ICE servers the server handed out in its latest welcome.
    pub fn ice_servers(&self) -> Vec<duet_protocol::IceServer> {
        lock(&self.client.info).ice_servers.clone()
    }

    pub fn ring_timeout(&self) -> Duration {
        lock(&self.client.info).ring_timeout
    }

    /// Whether the signaling connection is up now (false while reconnecting, and after
    /// `shutdown`).
    pub fn is_connected(&self) -> bool {
        !self.client.is_stopping() && lock(&self.client.machine).is_connected()
    }

    /// A fresh token for the next reconnect (the one in use is checked only when
    /// connecting).
    pub fn update_token(&self, token: impl Into<String>) {
        *lock(&self.client.token) = token.into();
    }

    /// Hangs up every call, closes the connection, and waits for the connection's task to
    /// end. Conversations still held report `Closed` from then on.
    pub async fn shutdown(&self) {
        self.client.stop();
        let task = self.driver.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

impl Drop for VideoCall {
    fn drop(&mut self) {
        // The driver sends the hang-ups and closes the socket on its own; nobody awaits it.
        self.client.stop();
    }
}
