//! Many nodes on Redis (`ServerConfig::redis`): what a node adds to the single process.
//!
//! The rules stay in one place, the switchboard, and run in one place at a time: the node
//! holding the leader lease in Redis (`leader`) runs the very `Hub` a single process runs,
//! fed through Redis instead of in-process channels. Every node relays its WebSocket
//! connections (`relay`): what a device says is published on the inbox channel, which only
//! the leader reads; what the hub sends a device is published on its uid's channel, which
//! every node holding a device of that uid subscribes to. Every transition is therefore
//! applied once, in one order, by one state machine: two nodes never both win a race.
//!
//! Pub/sub keeps nothing: what is published while a node (or Redis) is away is lost. The
//! durable record of a call is what its clients hold and restate in `hello`, as after a
//! single server's restart (docs/protocol.md, Resuming). So whenever messages may have
//! been lost — a new leader's term, a node's Redis connection coming back — the nodes close
//! their clients with 1012 (as a drain does), and the clients reconnect and restate; a
//! node that dies is noticed by its liveness key expiring, and its devices get the grace
//! period any dropped device gets (`pulse`).

mod inbox;
mod leader;
mod pulse;
mod relay;
mod wire;

use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

use crate::hub::{ConnId, Event, Hub};

pub(crate) use leader::Resign;
pub(crate) use pulse::ClusterHealth;

/// Has the node give up the leader lease, if it holds it, and stop campaigning; waits for
/// Redis's answer at most a command's timeout.
pub(crate) async fn resign(resign: &Resign) {
    let (done, answered) = tokio::sync::oneshot::channel();
    if resign.send(done).await.is_ok() {
        let _ = tokio::time::timeout(COMMAND_TIMEOUT * 2, answered).await;
    }
}

/// How long a leader's lease, and a node's liveness key, outlive their last refresh: the
/// longest a dead leader's or node's clients wait before the cluster acts for them.
const LEASE: Duration = Duration::from_secs(3);
/// How often leases and liveness keys are refreshed (and a free lease is tried for).
const REFRESH: Duration = Duration::from_millis(500);
/// The longest any one Redis command may take before it counts as failed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);

/// Redis names. Every node of a cluster must use the same.
const LEADER_KEY: &str = "duet:leader";
const INBOX: &str = "duet:inbox";
/// A new leader announces its term here: every node has its clients restate.
const TERMS: &str = "duet:terms";

fn node_key(node: NodeTag) -> String {
    format!("duet:node:{node}")
}

fn uid_channel(uid: &str) -> String {
    format!("duet:uid:{uid}")
}

/// A node's name in the cluster: random per process, and the top 16 bits of every
/// connection id it hands out, so that connection ids are unique across the cluster and
/// name the node holding them.
pub(crate) type NodeTag = u16;

pub(crate) fn node_of(conn: ConnId) -> NodeTag {
    // The shift leaves 16 bits: the cast cannot truncate.
    #[allow(clippy::cast_possible_truncation)]
    let tag = (conn >> 48) as NodeTag;
    tag
}

fn conn_base(node: NodeTag) -> ConnId {
    ConnId::from(node) << 48
}

/// Builds a hub with a fresh switchboard, for each term this node leads.
pub(crate) type HubFactory = Box<dyn Fn() -> Hub + Send + Sync>;

/// The hub of this node's current term, if it leads: where `/metrics` asks for the census.
type LeaderHub = Arc<Mutex<Option<mpsc::Sender<Event>>>>;

fn leader_hub(slot: &LeaderHub) -> Option<mpsc::Sender<Event>> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).clone()
}

/// A node, started: where its connections send their events, the task that owns every
/// task of the node (aborting it stops them all), and what `/readyz` and `/metrics` read.
pub(crate) struct Node {
    pub events: mpsc::Sender<Event>,
    pub task: JoinHandle<()>,
    pub health: Arc<ClusterHealth>,
    pub conn_base: ConnId,
    /// A drain asks the node to give up leading through this.
    pub resign: leader::Resign,
}

/// Joins the cluster at `url`: fails if Redis cannot be reached now.
pub(crate) async fn start(
    url: &str,
    make_hub: HubFactory,
    outbox_limit: usize,
    capacity: usize,
) -> io::Result<Node> {
    let client = redis::Client::open(url)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("--redis {url}: {e}")))?;
    // Reconnects after a Redis restart within half a second of it answering again (the
    // default backoff grows to seconds, which a lease of 3 s cannot wait for).
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(COMMAND_TIMEOUT)
        .set_response_timeout(COMMAND_TIMEOUT)
        .set_factor(50)
        .set_max_delay(500)
        .set_number_of_retries(20);
    let redis = tokio::time::timeout(
        COMMAND_TIMEOUT * 3,
        client.get_connection_manager_with_config(config),
    )
    .await
    .map_err(|_| io::Error::other(format!("Redis at {url} does not answer")))?
    .map_err(|e| io::Error::other(format!("Redis at {url}: {e}")))?;
    let pubsub = client
        .get_async_pubsub()
        .await
        .map_err(|e| io::Error::other(format!("Redis at {url}: {e}")))?;

    let node: NodeTag = loop {
        let tag = (uuid::Uuid::new_v4().as_u128() & 0xffff) as NodeTag;
        if tag != 0 {
            break tag;
        }
    };
    let health = Arc::new(ClusterHealth::reachable());
    let slot = LeaderHub::default();
    let (events, events_rx) = mpsc::channel(capacity);
    let mut tasks = JoinSet::new();
    let (inbox, publish_inbox) = inbox::writer(redis.clone());
    tasks.spawn(publish_inbox);
    let relay = relay::Relay::new(client.clone(), inbox, Arc::clone(&slot), outbox_limit);
    tasks.spawn(relay.run(pubsub, events_rx));
    tasks.spawn(pulse::run(node, redis.clone(), Arc::clone(&health)));
    let (resign, resign_rx) = mpsc::channel(1);
    let campaign = leader::Campaign {
        node,
        client,
        redis,
        make_hub,
        slot,
        health: Arc::clone(&health),
        outbox_limit,
        capacity,
        resign: resign_rx,
    };
    tasks.spawn(campaign.run());
    tracing::info!(node, "cluster node on Redis at {url}");
    let task = tokio::spawn(async move {
        // Holding the set keeps the tasks; aborting this task drops it, which aborts them.
        while tasks.join_next().await.is_some() {}
    });
    Ok(Node { events, task, health, conn_base: conn_base(node), resign })
}
