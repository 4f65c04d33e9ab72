//! The leader lease: the node holding it runs the cluster's one switchboard (a `Hub`, as
//! a single process runs it) for as long as it keeps the lease, fed from the inbox
//! channel. Each devices's connection on another node is stood for here by an `Outbox`
//! whose contents are published to that node.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError};

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, PubSubStream};
use redis::AsyncCommands;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{AbortHandle, JoinHandle, JoinSet};

use super::wire::{self, ToLeader, ToNode};
use super::{
    node_key, node_of, uid_channel, ClusterHealth, HubFactory, LeaderHub, NodeTag, COMMAND_TIMEOUT,
    INBOX, LEADER_KEY, LEASE, REFRESH, TERMS,
};
use crate::hub::{ConnId, Event};
use crate::outbox::{Outbound, Outbox};
use crate::switchboard::DeviceKey;

/// Extends the lease only if this node still holds it (the value names the holder).
const RENEW: &str = r"if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0";

/// Gives the lease up only if this node still holds it, so a drained leader's successor
/// need not wait out the lease.
const RELEASE: &str = r"if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0";

/// Asks a node to stop leading and campaigning (a drain); answered once the lease is given
/// up (or could not be).
pub(crate) type Resign = mpsc::Sender<oneshot::Sender<()>>;

pub(super) struct Campaign {
    pub node: NodeTag,
    pub client: redis::Client,
    pub redis: ConnectionManager,
    pub make_hub: HubFactory,
    pub slot: LeaderHub,
    pub health: Arc<ClusterHealth>,
    pub outbox_limit: usize,
    pub capacity: usize,
    pub resign: mpsc::Receiver<oneshot::Sender<()>>,
}

/// One term of this node's leadership; dropping it ends the term's tasks.
struct Term {
    hub: JoinHandle<()>,
    inbox: JoinHandle<()>,
}

impl Drop for Term {
    fn drop(&mut self) {
        self.hub.abort();
        self.inbox.abort();
    }
}

impl Campaign {
    pub(super) async fn run(mut self) {
        let lease_ms = u64::try_from(LEASE.as_millis()).unwrap_or(u64::MAX);
        let renew = redis::Script::new(RENEW);
        let mut term: Option<Term> = None;
        let mut number: u64 = 0;
        let mut tick = tokio::time::interval(REFRESH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                asked = self.resign.recv() => {
                    let holder = format!("{}:{number}", self.node);
                    self.step_down(term.take(), &holder).await;
                    if let Some(done) = asked {
                        let _ = done.send(());
                    }
                    return;
                }
            }
            let holder = format!("{}:{number}", self.node);
            let held = if term.is_some() {
                let mut invocation = renew.key(LEADER_KEY);
                invocation.arg(&holder).arg(lease_ms);
                let renewed = invocation.invoke_async::<i64>(&mut self.redis);
                matches!(tokio::time::timeout(COMMAND_TIMEOUT, renewed).await, Ok(Ok(1)))
            } else {
                number += 1;
                let holder = format!("{}:{number}", self.node);
                let mut set = redis::cmd("SET");
                set.arg(LEADER_KEY).arg(&holder).arg("NX").arg("PX").arg(lease_ms);
                let claim = set.query_async::<Option<String>>(&mut self.redis);
                matches!(tokio::time::timeout(COMMAND_TIMEOUT, claim).await, Ok(Ok(Some(_))))
            };
            match (held, term.is_some()) {
                (true, false) => match self.begin().await {
                    Ok(t) => term = Some(t),
                    Err(e) => tracing::warn!("cannot begin a term as leader: {e}"),
                },
                (false, true) => {
                    tracing::warn!(node = self.node, "lost the leader lease");
                    term = None;
                    self.set_hub(None);
                }
                _ => {}
            }
        }
    }

    /// Takes the lead: a fresh switchboard, the inbox, and word to every node that its
    /// clients must restate their calls (what the last leader held is gone).
    async fn begin(&mut self) -> redis::RedisResult<Term> {
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(INBOX).await?;
        let (hub_tx, hub_rx) = mpsc::channel(self.capacity);
        let hub = tokio::spawn((self.make_hub)().run(hub_rx));
        let (sink, stream) = pubsub.split();
        let inbox = Inbox {
            redis: self.redis.clone(),
            hub: hub_tx.clone(),
            proxies: HashMap::new(),
            forwarders: JoinSet::new(),
            outbox_limit: self.outbox_limit,
        };
        let inbox = tokio::spawn(inbox.run(stream, sink));
        let term = Term { hub, inbox };
        self.redis.publish::<_, _, i64>(TERMS, self.node).await?;
        tracing::info!(node = self.node, "leading the cluster");
        self.set_hub(Some(hub_tx));
        Ok(term)
    }

    /// Ends this node's campaign: gives up the lease if it leads (a node draining must
    /// neither keep nor take the switchboard).
    async fn step_down(&mut self, term: Option<Term>, holder: &str) {
        let Some(term) = term else { return };
        self.set_hub(None);
        drop(term);
        let release = redis::Script::new(RELEASE);
        let mut invocation = release.key(LEADER_KEY);
        invocation.arg(holder);
        let released = invocation.invoke_async::<i64>(&mut self.redis);
        match tokio::time::timeout(COMMAND_TIMEOUT, released).await {
            Ok(Ok(1)) => tracing::info!(node = self.node, "gave up the leader lease"),
            _ => tracing::warn!(node = self.node, "could not give up the lease: it will expire"),
        }
    }

    fn set_hub(&self, hub: Option<mpsc::Sender<Event>>) {
        self.health.set_leader(hub.is_some());
        *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = hub;
    }
}

/// The leader's end of the inbox: nodes' events become hub events.
struct Inbox {
    redis: ConnectionManager,
    hub: mpsc::Sender<Event>,
    /// Every connection the hub knows, by id: the outbox that stands for it here.
    proxies: HashMap<ConnId, Proxy>,
    forwarders: JoinSet<()>,
    outbox_limit: usize,
}

struct Proxy {
    device: DeviceKey,
    outbox: Arc<Outbox>,
    forwarder: AbortHandle,
}

impl Inbox {
    /// `sink` is held so that the subscription lasts as long as the term.
    async fn run(mut self, mut stream: PubSubStream, sink: redis::aio::PubSubSink) {
        let _subscribed = sink;
        let mut tick = tokio::time::interval(REFRESH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = stream.next() => match msg {
                    Some(msg) => self.on_published(&msg).await,
                    // The campaign notices the lost connection when it renews the lease.
                    None => std::future::pending::<()>().await,
                },
                _ = tick.tick() => self.bury_dead_nodes().await,
                Some(_) = self.forwarders.join_next(), if !self.forwarders.is_empty() => {}
            }
        }
    }

    async fn on_published(&mut self, msg: &redis::Msg) {
        let Ok(text) = msg.get_payload::<String>() else { return };
        let event = match serde_json::from_str::<ToLeader>(&text) {
            Ok(ToLeader::Connect { device, conn, calls, woken_for, welcome }) => {
                let outbox = Arc::new(Outbox::new(self.outbox_limit));
                let forward = forward(self.redis.clone(), device.uid.clone(), conn, outbox.clone());
                let forwarder = self.forwarders.spawn(forward);
                let proxy = Proxy { device: device.clone(), outbox: outbox.clone(), forwarder };
                if let Some(old) = self.proxies.insert(conn, proxy) {
                    old.forwarder.abort();
                }
                Event::Connect { device, conn, calls, woken_for, welcome, outbox }
            }
            Ok(ToLeader::Message { device, conn, msg }) => Event::Message { device, conn, msg },
            Ok(ToLeader::Disconnect { device, conn, unsent }) => self.gone(device, conn, unsent),
            Err(e) => {
                tracing::warn!("unreadable message on the inbox: {e}");
                return;
            }
        };
        let _ = self.hub.send(event).await;
    }

    fn gone(&mut self, device: DeviceKey, conn: ConnId, unsent: Vec<String>) -> Event {
        let outbox = match self.proxies.remove(&conn) {
            Some(proxy) => {
                proxy.forwarder.abort();
                proxy.outbox
            }
            None => Arc::new(Outbox::new(0)),
        };
        Event::Disconnect { device, conn, outbox, unsent }
    }

    /// A node whose liveness key expired is dead: its connections are gone, and their
    /// devices get the grace period any dropped device gets.
    async fn bury_dead_nodes(&mut self) {
        let mut nodes: Vec<NodeTag> = self.proxies.keys().map(|c| node_of(*c)).collect();
        nodes.sort_unstable();
        nodes.dedup();
        for node in nodes {
            let alive = self.redis.exists::<_, bool>(node_key(node));
            // Unknown (Redis slow or away) is not dead.
            if !matches!(tokio::time::timeout(COMMAND_TIMEOUT, alive).await, Ok(Ok(false))) {
                continue;
            }
            tracing::warn!(node, "a node is gone: its devices are disconnected");
            let conns: Vec<ConnId> =
                self.proxies.keys().copied().filter(|c| node_of(*c) == node).collect();
            for conn in conns {
                let Some(device) = self.proxies.get(&conn).map(|p| p.device.clone()) else {
                    continue;
                };
                let event = self.gone(device, conn, Vec::new());
                let _ = self.hub.send(event).await;
            }
        }
    }
}

/// Publishes what the hub hands a remote connection to the node holding it, in order.
async fn forward(mut redis: ConnectionManager, uid: String, conn: ConnId, outbox: Arc<Outbox>) {
    let channel = uid_channel(&uid);
    loop {
        let (msg, last) = match outbox.pop().await {
            Outbound::Text(text) => (ToNode::Deliver { conn, text }, false),
            Outbound::Close { last_word, code } => (ToNode::Close { conn, last_word, code }, true),
            Outbound::Reconnect => return,
        };
        let sent = redis.publish::<_, _, i64>(&channel, wire::encode(&msg));
        if let Err(e) = tokio::time::timeout(COMMAND_TIMEOUT, sent).await.unwrap_or_else(|_| {
            Err(redis::RedisError::from((redis::ErrorKind::IoError, "timed out")))
        }) {
            tracing::warn!(conn, "cannot publish to the node: {e}");
        }
        if last {
            return;
        }
    }
}
