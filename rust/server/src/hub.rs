//! The one task that owns the switchboard: it feeds it connection events and the clock, and
//! routes what comes out to the connection tasks. Owning it in a single task, rather than
//! sharing it behind a lock, keeps every decision in one order and makes shutdown a matter
//! of aborting one task.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use duet_protocol::{
    decode_server, encode, CallRestatement, ClientMessage, ErrorCode, ServerMessage,
};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::{CallCensus, Metrics};
use crate::outbox::Outbox;
use crate::push::{CallPush, Job, Push};
use crate::refusals::{self, Limit};
use crate::switchboard::{DeviceKey, PushOrder, Sends, Switchboard};

/// Distinguishes successive connections of one device, so that a replaced connection's
/// late messages and disconnect are recognised as stale.
pub(crate) type ConnId = u64;

/// WebSocket close codes (RFC 6455) the hub closes connections with.
pub(crate) const CLOSE_NORMAL: u16 = 1000;
pub(crate) const CLOSE_POLICY: u16 = 1008;

pub(crate) enum Event {
    /// The device said a valid `hello`. If the hub takes it, `welcome` is the first thing
    /// its outbox gets.
    Connect {
        device: DeviceKey,
        conn: ConnId,
        calls: Vec<CallRestatement>,
        /// The call whose push woke the device, if one did.
        woken_for: Option<String>,
        welcome: Box<ServerMessage>,
        outbox: Arc<Outbox>,
    },
    Message {
        device: DeviceKey,
        conn: ConnId,
        msg: ClientMessage,
    },
    /// The connection ended. It hands back its outbox so that what it never wrote can be
    /// kept for the device's return.
    Disconnect {
        device: DeviceKey,
        conn: ConnId,
        outbox: Arc<Outbox>,
        /// What was handed on but never written, older than what `outbox` still holds:
        /// in a cluster, what the connection's own node had when it dropped.
        unsent: Vec<String>,
    },
    /// `/metrics` asks how many calls there are, by state.
    Census(oneshot::Sender<CallCensus>),
}

pub(crate) struct Hub {
    switchboard: Switchboard,
    links: HashMap<DeviceKey, Link>,
    max_devices_per_uid: usize,
    push: Arc<Push>,
    metrics: Arc<Metrics>,
}

struct Link {
    conn: ConnId,
    outbox: Arc<Outbox>,
}

impl Hub {
    pub(crate) fn new(
        switchboard: Switchboard,
        max_devices_per_uid: usize,
        push: Arc<Push>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Hub { switchboard, links: HashMap::new(), max_devices_per_uid, push, metrics }
    }

    pub(crate) async fn run(mut self, mut events: mpsc::Receiver<Event>) {
        loop {
            let wake = self.switchboard.next_deadline().map(tokio::time::Instant::from_std);
            tokio::select! {
                event = events.recv() => match event {
                    Some(event) => self.on_event(event),
                    None => return,
                },
                () = sleep_until(wake) => {
                    let sends = self.switchboard.handle_timeout(now());
                    self.deliver(sends);
                }
            }
        }
    }

    fn on_event(&mut self, event: Event) {
        let now = now();
        match event {
            Event::Connect { device, conn, calls, woken_for, welcome, outbox } => {
                if self.connect(device.clone(), conn, calls, &welcome, outbox) {
                    if let Some(call_id) = woken_for {
                        let sends = self.switchboard.woken(&device, &call_id);
                        self.deliver_on_arrival(sends, &device);
                    }
                }
            }
            Event::Message { device, conn, msg } => {
                if self.is_current(&device, conn) {
                    self.message(now, &device, msg);
                }
            }
            Event::Disconnect { device, conn, outbox, mut unsent } => {
                if self.is_current(&device, conn) {
                    self.links.remove(&device);
                    unsent.extend(outbox.drain());
                    let sends = self.switchboard.disconnect(now, &device, decoded(unsent));
                    self.deliver(sends);
                }
            }
            Event::Census(reply) => {
                let _ = reply.send(self.switchboard.census());
            }
        }
    }

    /// A message from a connected device. For an invite, the callee's devices that a push
    /// can reach are looked up first, and the pushes the switchboard orders are queued.
    fn message(&mut self, now: Instant, device: &DeviceKey, msg: ClientMessage) {
        let reachable = match &msg {
            ClientMessage::Invite { to, .. } => self.push.reachable(to),
            _ => Vec::new(),
        };
        let ids: Vec<String> = reachable.iter().map(|(id, _)| id.clone()).collect();
        let sends = self.switchboard.handle_with(now, device, msg, &ids);
        for order in self.switchboard.take_pushes() {
            self.order_pushes(now, order, &reachable);
        }
        self.deliver(sends);
    }

    fn order_pushes(
        &self,
        now: Instant,
        order: PushOrder,
        reachable: &[(String, duet_protocol::PushToken)],
    ) {
        let remaining = order.deadline.saturating_duration_since(now);
        let deadline_ms = crate::push::unix_ms_at(std::time::SystemTime::now() + remaining);
        let call = CallPush {
            call_id: order.call_id,
            caller_uid: order.caller_uid,
            data: order.data,
            deadline_ms,
        };
        for (device_id, push) in reachable {
            if order.devices.contains(device_id) {
                self.push.enqueue(Job {
                    uid: order.callee_uid.clone(),
                    device_id: device_id.clone(),
                    push: push.clone(),
                    call: call.clone(),
                });
            }
        }
    }

    /// Signs the device in; false if it was refused.
    fn connect(
        &mut self,
        device: DeviceKey,
        conn: ConnId,
        calls: Vec<CallRestatement>,
        welcome: &ServerMessage,
        outbox: Arc<Outbox>,
    ) -> bool {
        if !self.switchboard.admits(&device, self.max_devices_per_uid) {
            refusals::record(Limit::DevicesPerUid, self.max_devices_per_uid, &device);
            let refusal = ServerMessage::error(
                ErrorCode::TooManyDevices,
                format!("at most {} devices per uid", self.max_devices_per_uid),
                None,
            );
            self.metrics.sent(&refusal);
            outbox.close(encode(&refusal), CLOSE_POLICY, false);
            return false;
        }
        self.metrics.sent(welcome);
        let _ = outbox.push_arrival(encode(welcome));
        if let Some(old) = self.links.insert(device.clone(), Link { conn, outbox }) {
            let replaced = ServerMessage::error(
                ErrorCode::Replaced,
                "another connection took this device id",
                None,
            );
            self.metrics.sent(&replaced);
            old.outbox.close(encode(&replaced), CLOSE_NORMAL, true);
        }
        let sends = self.switchboard.connect(now(), &device, calls);
        self.deliver_on_arrival(sends, &device);
        true
    }

    fn is_current(&self, device: &DeviceKey, conn: ConnId) -> bool {
        self.links.get(device).is_some_and(|link| link.conn == conn)
    }

    fn deliver(&mut self, sends: Sends) {
        self.deliver_to(sends, None);
    }

    /// Delivers what a device's sign-in brought, past its outbox's bound for the device
    /// itself (see `Outbox::push_arrival`).
    fn deliver_on_arrival(&mut self, sends: Sends, arriving: &DeviceKey) {
        self.deliver_to(sends, Some(arriving));
    }

    fn deliver_to(&mut self, sends: Sends, arriving: Option<&DeviceKey>) {
        let mut sends = VecDeque::from(sends);
        while let Some((device, msg)) = sends.pop_front() {
            let Some(link) = self.links.get(&device) else {
                tracing::warn!(?device, "message for a device with no connection dropped");
                continue;
            };
            self.metrics.sent(&msg);
            let text = encode(&msg);
            let pushed = if arriving == Some(&device) {
                link.outbox.push_arrival(text)
            } else {
                link.outbox.push(text)
            };
            if let Err(text) = pushed {
                sends.extend(self.too_slow(&device, text));
            }
        }
    }

    /// The device's connection has more unwritten than its bound: it is told `too_slow` and
    /// closed, and the device is treated as dropped (its calls wait out the grace period,
    /// with what it never got kept for its return).
    fn too_slow(&mut self, device: &DeviceKey, overflow: String) -> Sends {
        let Some(link) = self.links.remove(device) else { return Sends::new() };
        let bound = link.outbox.limit();
        refusals::record(Limit::OutboundQueue, bound, device);
        let error = ServerMessage::error(
            ErrorCode::TooSlow,
            format!("more than {bound} bytes waiting to be written: the connection is not read"),
            None,
        );
        self.metrics.sent(&error);
        let mut unsent = link.outbox.close(encode(&error), CLOSE_POLICY, false);
        unsent.push(overflow);
        self.switchboard.disconnect(now(), device, decoded(unsent))
    }
}

/// Encoded messages back as messages, for the switchboard's queue of a dropped device.
fn decoded(texts: Vec<String>) -> Vec<ServerMessage> {
    texts.iter().filter_map(|t| decode_server(t).ok()).collect()
}

/// Tokio's clock rather than the system's, so that the deadlines slept on and the instants
/// they are checked against agree even when a test pauses time.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
