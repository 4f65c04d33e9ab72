//! Starting and stopping a server: the listener, the hub task, and what connection tasks
//! share.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use duet_protocol::{ServerMessage, PROTOCOL_VERSION};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::ServerConfig;
use crate::embedded_turn::{self, EmbeddedTurn, TurnOffer};
use crate::http;
use crate::hub::{ConnId, Event, Hub};
use crate::switchboard::{DeviceKey, Switchboard, SwitchboardConfig};
use crate::token::DEV_SECRET;

/// Connection events waiting for the hub. Connections wait when it is full, which slows
/// clients down rather than growing memory.
const EVENT_CAPACITY: usize = 4096;

/// What every connection task needs.
pub(crate) struct Shared {
    pub config: ServerConfig,
    pub secret: String,
    pub dev_mode: bool,
    /// The TURN server `welcome` lists, if any.
    pub turn: Option<TurnOffer>,
    pub hub: mpsc::Sender<Event>,
    pub shutdown: watch::Receiver<bool>,
    next_conn: AtomicU64,
}

impl Shared {
    pub fn next_conn_id(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    pub fn welcome(&self, device: &DeviceKey) -> ServerMessage {
        let config = &self.config;
        ServerMessage::Welcome {
            v: PROTOCOL_VERSION,
            uid: device.uid.clone(),
            device_id: device.device_id.clone(),
            ice_servers: TurnOffer::ice_servers(
                self.turn.as_ref(),
                &device.uid,
                &config.ice_servers,
            ),
            ring_timeout_ms: millis(config.ring_timeout),
            grace_ms: millis(config.grace),
            keepalive_ms: millis(config.keepalive),
            limits: config.limits,
        }
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Starts a server and returns once it is listening, on TCP and (with the embedded TURN
/// server) on UDP.
pub async fn start(config: ServerConfig) -> io::Result<ServerHandle> {
    config.ice.validate()?;
    let listener = TcpListener::bind(config.listen).await?;
    let local_addr = listener.local_addr()?;
    let (turn_offer, turn) = embedded_turn::start(&config.ice).await?;
    let dev_mode = config.secret.is_none();
    let secret = config.secret.clone().unwrap_or_else(|| DEV_SECRET.to_owned());
    if dev_mode {
        tracing::warn!("development mode: tokens are signed with the public development secret");
    }

    let switchboard =
        Switchboard::new(SwitchboardConfig::new(config.ring_timeout, config.grace, &config.limits));
    let (events, events_rx) = mpsc::channel(EVENT_CAPACITY);
    let hub = tokio::spawn(Hub::new(switchboard).run(events_rx));
    let (shutdown, shutdown_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        config,
        secret: secret.clone(),
        dev_mode,
        turn: turn_offer.clone(),
        hub: events,
        shutdown: shutdown_rx,
        next_conn: AtomicU64::new(1),
    });
    let app = http::router(shared);
    let serve = tokio::spawn(async move {
        // Signaling is small messages where latency is everything: without TCP_NODELAY a
        // message to a device that has not spoken lately waits out the peer's 40 ms delayed
        // ACK (Nagle), which cost every call setup about 40 ms.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!("TCP_NODELAY: {e}");
            }
        });
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("server stopped: {e}");
        }
    });
    tracing::info!("listening on {local_addr}");
    Ok(ServerHandle {
        local_addr,
        secret,
        dev_mode,
        turn_addr: turn.as_ref().map(|t| t.addr),
        turn_secret: turn_offer.map(|o| o.secret),
        running: Running { shutdown, serve, hub, turn },
    })
}

/// A running server. Dropping it stops the server, as `shutdown` does.
#[must_use = "dropping the handle stops the server"]
pub struct ServerHandle {
    local_addr: SocketAddr,
    secret: String,
    dev_mode: bool,
    turn_addr: Option<SocketAddr>,
    turn_secret: Option<String>,
    running: Running,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local_addr", &self.local_addr)
            .field("dev_mode", &self.dev_mode)
            .field("turn_addr", &self.turn_addr)
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://HOST:PORT`, with a wildcard listen address replaced by loopback so that the
    /// URL can be connected to.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.reachable_addr())
    }

    /// `ws://HOST:PORT/ws`, the endpoint clients connect to.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.reachable_addr())
    }

    /// The token secret in force: the configured one, or `DEV_SECRET` in development mode.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    pub fn is_dev_mode(&self) -> bool {
        self.dev_mode
    }

    /// The UDP address the embedded TURN server is bound to (`None` without one). With a
    /// wildcard listen address clients are given `TurnConfig::public_ip` instead.
    pub fn turn_addr(&self) -> Option<SocketAddr> {
        self.turn_addr
    }

    /// The secret TURN credentials are minted with: the embedded server's (configured or
    /// random) or the external coturn's; `None` without TURN.
    pub fn turn_secret(&self) -> Option<&str> {
        self.turn_secret.as_deref()
    }

    /// Stops the server abruptly, as a crash would: no more connections are accepted, every
    /// connection is dropped without a close frame, all call state is forgotten, the
    /// embedded TURN server's allocations are closed, and the ports (TCP, and the TURN UDP
    /// port) are free again when this returns.
    pub async fn shutdown(mut self) {
        self.running.stop().await;
    }

    fn reachable_addr(&self) -> SocketAddr {
        let ip = match self.local_addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        SocketAddr::new(ip, self.local_addr.port())
    }
}

struct Running {
    shutdown: watch::Sender<bool>,
    serve: JoinHandle<()>,
    hub: JoinHandle<()>,
    turn: Option<EmbeddedTurn>,
}

impl Running {
    fn stop_now(&mut self) {
        // Connection tasks watch this; the hub's state (the switchboard) dies with its task.
        let _ = self.shutdown.send(true);
        self.serve.abort();
        self.hub.abort();
        if let Some(turn) = &mut self.turn {
            turn.stop_now();
        }
    }

    async fn stop(&mut self) {
        if let Some(turn) = &mut self.turn {
            turn.stop().await;
        }
        self.stop_now();
        // Aborted tasks drop their futures before these resolve: the listener is closed.
        let _ = (&mut self.serve).await;
        let _ = (&mut self.hub).await;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop_now();
    }
}
