//! Starting and stopping a server: the listener, the hub task, and what connection tasks
//! share.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::config::ServerConfig;
use crate::drain::{DrainReport, RunState};
use crate::embedded_turn::{self, EmbeddedTurn};
use crate::health::ReadinessCheck;
use crate::hub::{Event, Hub};
use crate::metrics::{CallCensus, Metrics};
use crate::push::Push;
use crate::shared::{Parts, Shared};
use crate::switchboard::{Switchboard, SwitchboardConfig};
use crate::token::DEV_SECRET;
use crate::{cluster, http, listener, tls};

/// Connection events waiting for the hub. Connections wait when it is full, which slows
/// clients down rather than growing memory.
const EVENT_CAPACITY: usize = 4096;

/// Starts a server and returns once it is listening, on TCP and (with the embedded TURN
/// server) on UDP.
///
/// # Errors
///
/// The configuration is unusable (`InvalidInput`), the push store cannot be opened or a
/// push key is unusable (`Other`), or a port cannot be bound.
pub async fn start(config: ServerConfig) -> io::Result<ServerHandle> {
    config.ice.validate()?;
    // First, so that unusable push keys fail the start before any port is taken; without
    // a server its task ends, as its queue's sender goes with it.
    let metrics = Arc::new(Metrics::default());
    let (push, pusher) = Push::start(&config.push, Arc::clone(&metrics), config.redis.as_deref())
        .map_err(io::Error::other)?;
    let tls = config.tls.as_ref().map(tls::acceptor).transpose()?;
    let listener = listener::bind(config.listen, config.connections.listen_backlog)?;
    let local_addr = listener.local_addr()?;
    let (turn_offer, turn) = embedded_turn::start(&config.ice).await?;
    let dev_mode = config.secret.is_none();
    let secret = config.secret.clone().unwrap_or_else(|| DEV_SECRET.to_owned());
    if dev_mode {
        tracing::warn!("development mode: tokens are signed with the public development secret");
    }

    let mut switchboard_config =
        SwitchboardConfig::new(config.ring_timeout, config.grace, &config.limits);
    switchboard_config.max_queued_bytes = config.connections.outbound_queue_bytes / 2;
    switchboard_config.metrics = Arc::clone(&metrics);
    let max_devices = config.connections.max_devices_per_uid;
    let (hub_push, hub_metrics) = (push.clone(), Arc::clone(&metrics));
    // The one way a hub is made, for the single process and for each term a node leads.
    let make_hub = move || {
        let switchboard = Switchboard::new(switchboard_config.clone());
        Hub::new(switchboard, max_devices, hub_push.clone(), Arc::clone(&hub_metrics))
    };
    let (events, hub, conn_base, checks, resign) = match &config.redis {
        None => {
            let (events, events_rx) = mpsc::channel(EVENT_CAPACITY);
            (events, tokio::spawn(make_hub().run(events_rx)), 0, Vec::new(), None)
        }
        Some(url) => {
            let outbox_limit = config.connections.outbound_queue_bytes;
            let node =
                cluster::start(url, Box::new(make_hub), outbox_limit, EVENT_CAPACITY).await?;
            let check: Arc<dyn ReadinessCheck> = node.health;
            (node.events, node.task, node.conn_base, vec![check], Some(node.resign))
        }
    };
    let (state, state_rx) = watch::channel(RunState::Running);
    let parts = Parts {
        secret: secret.clone(),
        turn: turn_offer.clone(),
        hub: events,
        state: state_rx,
        metrics,
        push,
        conn_base,
        checks,
    };
    let shared = Arc::new(Shared::new(config, parts));
    let app = http::router(Arc::clone(&shared));
    let tls_on = tls.is_some();
    let serve = tokio::spawn(listener::serve(listener, app, Arc::clone(&shared), tls));
    tracing::info!(tls = tls_on, "listening on {local_addr}");
    Ok(ServerHandle {
        local_addr,
        secret,
        dev_mode,
        tls: tls_on,
        turn_addr: turn.as_ref().map(|t| t.addr),
        turn_secret: turn_offer.map(|o| o.secret),
        running: Running { state, serve: Some(serve), hub, pusher, turn, shared, resign },
    })
}

/// Asks the hub how many calls it holds, by state; `None` if it does not answer at once
/// (a scrape must not queue behind a flood of events for long).
pub(crate) async fn census(shared: &Shared) -> Option<CallCensus> {
    const PATIENCE: Duration = Duration::from_secs(1);
    let (reply, answer) = oneshot::channel();
    tokio::time::timeout(PATIENCE, async {
        shared.hub.send(Event::Census(reply)).await.ok()?;
        answer.await.ok()
    })
    .await
    .ok()
    .flatten()
}

/// A running server. Dropping it stops the server, as `shutdown` does.
#[must_use = "dropping the handle stops the server"]
pub struct ServerHandle {
    local_addr: SocketAddr,
    secret: String,
    dev_mode: bool,
    tls: bool,
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
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://HOST:PORT` (`https://` with TLS), with a wildcard listen address replaced
    /// by loopback so that the URL can be connected to.
    pub fn http_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.reachable_addr())
    }

    /// `ws://HOST:PORT/ws` (`wss://` with TLS), the endpoint clients connect to.
    pub fn ws_url(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}/ws", self.reachable_addr())
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

    /// How many relay allocations the embedded TURN server holds now; `None` without one.
    /// A client releases its allocations when its call ends (a Refresh with lifetime 0);
    /// one it does not release stays until it expires (10 minutes).
    pub async fn turn_allocations(&self) -> Option<usize> {
        self.running.turn.as_ref()?.offer.census.as_ref()?.allocations().await
    }

    /// Stops the server abruptly, as a crash would: no more connections are accepted, every
    /// connection is dropped without a close frame, all call state is forgotten, the
    /// embedded TURN server's allocations are closed, and the ports (TCP, and the TURN UDP
    /// port) are free again when this returns.
    pub async fn shutdown(mut self) {
        self.running.stop().await;
    }

    /// Drains the server, for a restart that drops no call: it stops accepting at once
    /// (the port is free for a successor when this starts waiting), `/readyz` answers 503,
    /// every connected client is closed with 1012 "draining" and reconnects (elsewhere, or
    /// to the successor) restating its calls; once none is left, or `bound` has passed,
    /// the server stops as `shutdown` does.
    pub async fn drain(mut self, bound: Duration) -> DrainReport {
        let started = Instant::now();
        let shared = Arc::clone(&self.running.shared);
        shared.health.start_draining();
        self.running.stop_accepting().await;
        // A leader hands the switchboard on now, not when its lease runs out: the clients
        // it tells to reconnect, and every other node's, restate to the next leader.
        if let Some(resign) = &self.running.resign {
            cluster::resign(resign).await;
        }
        let open = shared.open.count();
        tracing::info!(open, ?bound, "draining: clients are told to reconnect elsewhere");
        let _ = self.running.state.send(RunState::Draining);
        let left_behind = shared.open.wait_until_none(bound).await;
        self.running.stop().await;
        let report = DrainReport { left_behind, elapsed: started.elapsed() };
        tracing::info!(left_behind, elapsed = ?report.elapsed, "drained");
        report
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
    state: watch::Sender<RunState>,
    /// The accept loop; `None` once it is stopped.
    serve: Option<JoinHandle<()>>,
    hub: JoinHandle<()>,
    /// The push task; pushes in flight on tasks of their own finish on their own.
    pusher: JoinHandle<()>,
    turn: Option<EmbeddedTurn>,
    shared: Arc<Shared>,
    /// A cluster node's way to give up leading (a drain); `None` for the single process.
    resign: Option<cluster::Resign>,
}

impl Running {
    fn stop_now(&mut self) {
        // Connection tasks watch this; the hub's state (the switchboard) dies with its task.
        let _ = self.state.send(RunState::Stopped);
        if let Some(serve) = &self.serve {
            serve.abort();
        }
        self.hub.abort();
        self.pusher.abort();
        if let Some(turn) = &mut self.turn {
            turn.stop_now();
        }
    }

    async fn stop(&mut self) {
        if let Some(turn) = &mut self.turn {
            turn.stop().await;
        }
        self.stop_now();
        self.stop_accepting().await;
        let _ = (&mut self.hub).await;
        let _ = (&mut self.pusher).await;
    }

    /// Ends the accept loop; the listener is closed when this returns (an aborted task
    /// drops its future before its handle resolves).
    async fn stop_accepting(&mut self) {
        if let Some(serve) = self.serve.take() {
            serve.abort();
            let _ = serve.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop_now();
    }
}
