//! What every connection task shares: the settings, the secret, the way to the hub.
//! Its own module so that the server, the HTTP routes and the connections all depend on it
//! and none on another.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use duet_protocol::{ServerMessage, PROTOCOL_VERSION};
use tokio::sync::{mpsc, watch};

use crate::config::ServerConfig;
use crate::drain::{OpenConnections, RunState};
use crate::embedded_turn::TurnOffer;
use crate::gate::Gate;
use crate::health::{Health, ReadinessCheck};
use crate::hub::{ConnId, Event};
use crate::metrics::Metrics;
use crate::push::Push;
use crate::switchboard::DeviceKey;

pub(crate) struct Shared {
    pub(crate) config: ServerConfig,
    pub(crate) secret: String,
    pub(crate) dev_mode: bool,
    /// The TURN server `welcome` lists, if any.
    pub(crate) turn: Option<TurnOffer>,
    pub(crate) hub: mpsc::Sender<Event>,
    pub(crate) state: watch::Receiver<RunState>,
    pub(crate) gate: Arc<Gate>,
    /// Push registrations, kept by the connections that receive them.
    pub(crate) push: Arc<Push>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) health: Health,
    /// The WebSocket connections open, which a drain waits for.
    pub(crate) open: Arc<OpenConnections>,
    next_conn: AtomicU64,
}

/// What `Shared::new` takes besides the configuration.
pub(crate) struct Parts {
    pub secret: String,
    pub turn: Option<TurnOffer>,
    pub hub: mpsc::Sender<Event>,
    pub state: watch::Receiver<RunState>,
    pub metrics: Arc<Metrics>,
    pub push: Arc<Push>,
    /// Connection ids start here: in a cluster, each node's own range (`cluster::NodeTag`).
    pub conn_base: u64,
    /// What `/readyz` waits for besides a drain (Redis, for a cluster node).
    pub checks: Vec<Arc<dyn ReadinessCheck>>,
}

impl Shared {
    pub(crate) fn new(config: ServerConfig, parts: Parts) -> Shared {
        let Parts { secret, turn, hub, state, metrics, push, conn_base, checks } = parts;
        Shared {
            gate: Gate::new(&config.connections),
            dev_mode: config.secret.is_none(),
            config,
            secret,
            turn,
            hub,
            state,
            push,
            metrics,
            health: Health::with_checks(checks),
            open: Arc::default(),
            next_conn: AtomicU64::new(conn_base + 1),
        }
    }

    pub(crate) fn next_conn_id(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn welcome(&self, device: &DeviceKey) -> ServerMessage {
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
