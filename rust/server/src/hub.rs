//! The one task that owns the switchboard: it feeds it connection events and the clock, and
//! routes what comes out to the connection tasks. Owning it in a single task, rather than
//! sharing it behind a lock, keeps every decision in one order and makes shutdown a matter
//! of aborting one task.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use duet_protocol::{CallRestatement, ClientMessage, ErrorCode, ServerMessage};
use tokio::sync::mpsc::{self, error::TrySendError};

use crate::switchboard::{DeviceKey, Sends, Switchboard};

/// Distinguishes successive connections of one device, so that a replaced connection's
/// late messages and disconnect are recognised as stale.
pub(crate) type ConnId = u64;

/// How many messages a connection may have waiting to be written before it is considered
/// unable to keep up. Above the largest burst the switchboard sends one device at once (a
/// full queue flushed on reconnect, plus a few).
pub(crate) const OUTBOX_CAPACITY: usize = 1024;

pub(crate) enum Event {
    /// The device said a valid `hello` (and has been sent `welcome`).
    Connect {
        device: DeviceKey,
        conn: ConnId,
        calls: Vec<CallRestatement>,
        outbox: mpsc::Sender<Outbound>,
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
        outbox: mpsc::Receiver<Outbound>,
    },
}

#[derive(Debug)]
pub(crate) enum Outbound {
    Message(ServerMessage),
    /// Send this error and close: another connection took the device.
    Close(ServerMessage),
}

pub(crate) struct Hub {
    switchboard: Switchboard,
    links: HashMap<DeviceKey, Link>,
}

struct Link {
    conn: ConnId,
    outbox: mpsc::Sender<Outbound>,
}

impl Hub {
    pub fn new(switchboard: Switchboard) -> Self {
        Hub { switchboard, links: HashMap::new() }
    }

    pub async fn run(mut self, mut events: mpsc::Receiver<Event>) {
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
            Event::Connect { device, conn, calls, outbox } => {
                if let Some(old) = self.links.insert(device.clone(), Link { conn, outbox }) {
                    let replaced = ServerMessage::error(
                        ErrorCode::Replaced,
                        "another connection took this device id",
                        None,
                    );
                    // If its outbox is full it is closed all the same, by dropping the sender.
                    let _ = old.outbox.try_send(Outbound::Close(replaced));
                }
                let sends = self.switchboard.connect(now, &device, calls);
                self.deliver(sends);
            }
            Event::Message { device, conn, msg } => {
                if self.is_current(&device, conn) {
                    let sends = self.switchboard.handle(now, &device, msg);
                    self.deliver(sends);
                }
            }
            Event::Disconnect { device, conn, mut outbox } => {
                if self.is_current(&device, conn) {
                    self.links.remove(&device);
                    let mut unsent = Vec::new();
                    while let Ok(Outbound::Message(msg)) = outbox.try_recv() {
                        unsent.push(msg);
                    }
                    let sends = self.switchboard.disconnect(now, &device, unsent);
                    self.deliver(sends);
                }
            }
        }
    }

    fn is_current(&self, device: &DeviceKey, conn: ConnId) -> bool {
        self.links.get(device).is_some_and(|link| link.conn == conn)
    }

    fn deliver(&mut self, sends: Sends) {
        let mut sends = VecDeque::from(sends);
        while let Some((device, msg)) = sends.pop_front() {
            let Some(link) = self.links.get(&device) else {
                tracing::warn!(?device, "message for a device with no connection dropped");
                continue;
            };
            match link.outbox.try_send(Outbound::Message(msg)) {
                Ok(()) => {}
                Err(TrySendError::Full(outbound) | TrySendError::Closed(outbound)) => {
                    // A connection that cannot keep up is treated as dropped: dropping its
                    // sender makes the task close, and the device gets its grace period.
                    tracing::info!(?device, "connection not keeping up, dropped");
                    self.links.remove(&device);
                    let unsent = match outbound {
                        Outbound::Message(msg) => vec![msg],
                        Outbound::Close(_) => Vec::new(),
                    };
                    sends.extend(self.switchboard.disconnect(now(), &device, unsent));
                }
            }
        }
    }
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
