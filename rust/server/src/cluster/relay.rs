//! A node's half of every connection it holds: it publishes what the device says to the
//! leader, and writes to the device what the leader publishes for it.
//!
//! On the leader itself a connection that signs in during the term goes to the hub
//! directly, with its own outbox, as in the single process: no Redis round trip each way
//! for the leader's own devices. Its events keep that path for the connection's life; a
//! new term (`TERMS`) closes every connection anyway, and one whose hub has gone (the
//! term ended) is closed to reconnect.

use std::collections::HashMap;
use std::sync::Arc;

use duet_protocol::{encode, ErrorCode, ServerMessage};
use futures_util::StreamExt;
use redis::aio::{PubSub, PubSubSink, PubSubStream};
use tokio::sync::mpsc;

use super::inbox::InboxWriter;
use super::wire::{self, ToLeader, ToNode};
use super::{leader_hub, uid_channel, LeaderHub, COMMAND_TIMEOUT, REFRESH, TERMS};
use crate::hub::{ConnId, Event, CLOSE_POLICY};
use crate::outbox::Outbox;
use crate::refusals::{self, Limit};
use crate::switchboard::DeviceKey;

pub(super) struct Relay {
    client: redis::Client,
    inbox: InboxWriter,
    slot: LeaderHub,
    links: HashMap<ConnId, Link>,
    /// Connections held per uid: its channel is subscribed to while there is one.
    uids: HashMap<String, usize>,
    outbox_limit: usize,
}

struct Link {
    device: DeviceKey,
    outbox: Arc<Outbox>,
    /// What this node took out of the outbox unwritten (it closed it `too_slow`).
    unsent: Vec<String>,
    /// The hub of this node's term, for a connection that signed in to it directly.
    direct: Option<mpsc::Sender<Event>>,
}

impl Relay {
    pub(super) fn new(
        client: redis::Client,
        inbox: InboxWriter,
        slot: LeaderHub,
        outbox_limit: usize,
    ) -> Self {
        Relay { client, inbox, slot, links: HashMap::new(), uids: HashMap::new(), outbox_limit }
    }

    pub(super) async fn run(mut self, pubsub: PubSub, mut events: mpsc::Receiver<Event>) {
        let (mut sink, mut stream) = pubsub.split();
        if let Err(e) = sink.subscribe(TERMS).await {
            tracing::warn!("cannot subscribe to {TERMS}: {e}");
        }
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(event) => self.on_event(&mut sink, event).await,
                    None => return,
                },
                msg = stream.next() => match msg {
                    Some(msg) => self.on_published(&msg),
                    None => (sink, stream) = self.resubscribe(&mut events).await,
                },
            }
        }
    }

    /// Hands the event to this node's hub if its connection is the hub's own (or signs in
    /// while this node leads); otherwise gives it back, for the inbox.
    async fn hand_to_own_hub(&mut self, event: Event) -> Option<Event> {
        let (hub, conn) = match &event {
            Event::Connect { conn, .. } => (leader_hub(&self.slot), *conn),
            Event::Message { conn, .. } | Event::Disconnect { conn, .. } => {
                (self.links.get(conn).and_then(|link| link.direct.clone()), *conn)
            }
            Event::Census(_) => return Some(event),
        };
        let Some(hub) = hub else { return Some(event) };
        match &event {
            Event::Connect { device, outbox, .. } => {
                let link = Link {
                    device: device.clone(),
                    outbox: Arc::clone(outbox),
                    unsent: Vec::new(),
                    direct: Some(hub.clone()),
                };
                self.links.insert(conn, link);
            }
            Event::Disconnect { .. } => {
                self.links.remove(&conn);
            }
            Event::Message { .. } | Event::Census(_) => {}
        }
        if hub.send(event).await.is_err() {
            // The term ended: the device reconnects and restates to whoever leads now.
            if let Some(link) = self.links.get(&conn) {
                link.outbox.close_for_reconnect();
            }
        }
        None
    }

    async fn on_event(&mut self, sink: &mut PubSubSink, event: Event) {
        let Some(event) = self.hand_to_own_hub(event).await else { return };
        match event {
            Event::Connect { device, conn, calls, woken_for, welcome, outbox } => {
                let held = self.uids.entry(device.uid.clone()).or_default();
                *held += 1;
                // Subscribed before the leader can answer, so that no answer is missed.
                if *held == 1 {
                    if let Err(e) = sink.subscribe(uid_channel(&device.uid)).await {
                        tracing::warn!(?device, "cannot subscribe: {e}");
                    }
                }
                let link =
                    Link { device: device.clone(), outbox, unsent: Vec::new(), direct: None };
                self.links.insert(conn, link);
                self.publish(&ToLeader::Connect { device, conn, calls, woken_for, welcome }).await;
            }
            Event::Message { device, conn, msg } => {
                if self.links.contains_key(&conn) {
                    self.publish(&ToLeader::Message { device, conn, msg }).await;
                }
            }
            Event::Disconnect { device, conn, .. } => {
                let Some(link) = self.links.remove(&conn) else { return };
                let mut unsent = link.unsent;
                unsent.extend(link.outbox.drain());
                self.release(sink, &device.uid).await;
                self.publish(&ToLeader::Disconnect { device, conn, unsent }).await;
            }
            Event::Census(reply) => match leader_hub(&self.slot) {
                Some(hub) => {
                    let _ = hub.try_send(Event::Census(reply));
                }
                // Calls are counted where they are held: on the leader.
                None => {
                    let _ = reply.send(crate::metrics::CallCensus::default());
                }
            },
        }
    }

    async fn release(&mut self, sink: &mut PubSubSink, uid: &str) {
        let Some(held) = self.uids.get_mut(uid) else { return };
        *held -= 1;
        if *held == 0 {
            self.uids.remove(uid);
            if let Err(e) = sink.unsubscribe(uid_channel(uid)).await {
                tracing::warn!(uid, "cannot unsubscribe: {e}");
            }
        }
    }

    async fn publish(&mut self, msg: &ToLeader) {
        // Only a node shutting down drops the writer's task.
        let _ = self.inbox.send(wire::encode(msg)).await;
    }

    fn on_published(&mut self, msg: &redis::Msg) {
        if msg.get_channel_name() == TERMS {
            tracing::info!("a new leader: every client restates its calls");
            self.everyone_restates();
            return;
        }
        let Ok(text) = msg.get_payload::<String>() else { return };
        match serde_json::from_str::<ToNode>(&text) {
            Ok(ToNode::Deliver { conn, text }) => self.deliver(conn, text),
            Ok(ToNode::Close { conn, last_word, code }) => {
                if let Some(link) = self.links.get(&conn) {
                    link.outbox.close(last_word, code, true);
                }
            }
            Err(e) => tracing::warn!("unreadable message from the leader: {e}"),
        }
    }

    /// Hands a message to the connection (other nodes' devices of the uid are not ours);
    /// one that does not read is closed `too_slow`, as a single server does.
    fn deliver(&mut self, conn: ConnId, text: String) {
        let Some(link) = self.links.get_mut(&conn) else { return };
        // The hub writes to its own connections itself.
        if link.direct.is_some() {
            return;
        }
        let Err(text) = link.outbox.push(text) else { return };
        let bound = self.outbox_limit;
        refusals::record(Limit::OutboundQueue, bound, &link.device);
        let error = ServerMessage::error(
            ErrorCode::TooSlow,
            format!("more than {bound} bytes waiting to be written: the connection is not read"),
            None,
        );
        let mut unsent = link.outbox.close(encode(&error), CLOSE_POLICY, false);
        unsent.push(text);
        link.unsent = unsent;
    }

    /// Messages may have been lost: every client reconnects (1012) and restates its calls.
    fn everyone_restates(&self) {
        for link in self.links.values() {
            link.outbox.close_for_reconnect();
        }
    }

    /// The subscription connection is gone: it is made again (retrying while Redis is
    /// away), and since what was published meanwhile is lost, every client restates.
    async fn resubscribe(
        &mut self,
        events: &mut mpsc::Receiver<Event>,
    ) -> (PubSubSink, PubSubStream) {
        tracing::warn!("lost the Redis subscription; reconnecting");
        loop {
            // Connections keep coming and going meanwhile; the leader hears of them later.
            let attempt = tokio::time::timeout(COMMAND_TIMEOUT, self.subscribe_all());
            if let Ok(Ok(pair)) = attempt.await {
                tracing::info!("Redis subscription back");
                self.everyone_restates();
                return pair;
            }
            let retry = tokio::time::sleep(REFRESH);
            tokio::pin!(retry);
            loop {
                tokio::select! {
                    () = &mut retry => break,
                    event = events.recv() => match event {
                        Some(event) => {
                            // The hub's own connections do not need Redis.
                            if let Some(event) = self.hand_to_own_hub(event).await {
                                self.on_event_offline(event);
                            }
                        }
                        None => std::future::pending::<()>().await,
                    },
                }
            }
        }
    }

    async fn subscribe_all(&self) -> redis::RedisResult<(PubSubSink, PubSubStream)> {
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(TERMS).await?;
        for uid in self.uids.keys() {
            pubsub.subscribe(uid_channel(uid)).await?;
        }
        Ok(pubsub.split())
    }

    /// An event while Redis is away: the connection is kept (or let go) locally, and told
    /// to restate once Redis is back.
    fn on_event_offline(&mut self, event: Event) {
        match event {
            Event::Connect { device, conn, outbox, .. } => {
                *self.uids.entry(device.uid.clone()).or_default() += 1;
                self.links.insert(conn, Link { device, outbox, unsent: Vec::new(), direct: None });
            }
            Event::Disconnect { device, conn, .. } => {
                if self.links.remove(&conn).is_some() {
                    if let Some(held) = self.uids.get_mut(&device.uid) {
                        *held -= 1;
                        if *held == 0 {
                            self.uids.remove(&device.uid);
                        }
                    }
                }
            }
            Event::Message { .. } => {}
            Event::Census(reply) => {
                let _ = reply.send(crate::metrics::CallCensus::default());
            }
        }
    }
}
