//! Who is there: each user's devices (connected or within their grace period), the calls
//! each user is party to, and the mail held for devices whose connection dropped.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Instant;

use duet_protocol::{CallId, ServerMessage};

use super::{DeviceKey, Sends};

#[derive(Debug, Default)]
pub(super) struct Directory {
    users: HashMap<String, User>,
    max_queued: usize,
}

#[derive(Debug, Default)]
struct User {
    // Ordered maps so that fan-out order, and with it every test, is deterministic.
    devices: BTreeMap<String, Device>,
    calls: BTreeSet<CallId>,
}

#[derive(Debug, Default)]
pub(super) struct Device {
    pub connected: bool,
    /// While disconnected: when the device's calls are given up.
    pub grace_deadline: Option<Instant>,
    /// Messages for the device while it is disconnected, delivered after its next `welcome`.
    queue: VecDeque<ServerMessage>,
}

impl Directory {
    pub fn new(max_queued: usize) -> Self {
        Directory { users: HashMap::new(), max_queued }
    }

    pub fn device(&self, key: &DeviceKey) -> Option<&Device> {
        self.users.get(&key.uid)?.devices.get(&key.device_id)
    }

    /// Marks the device connected (creating it if new) and hands back what was queued for it.
    pub fn attach(&mut self, key: &DeviceKey) -> Vec<ServerMessage> {
        let device = self
            .users
            .entry(key.uid.clone())
            .or_default()
            .devices
            .entry(key.device_id.clone())
            .or_default();
        device.connected = true;
        device.grace_deadline = None;
        device.queue.drain(..).collect()
    }

    /// Starts the device's grace period, keeping `unsent` (what its connection never wrote)
    /// at the head of its queue.
    pub fn detach(&mut self, key: &DeviceKey, deadline: Instant, unsent: Vec<ServerMessage>) {
        let max = self.max_queued;
        if let Some(device) = self.device_mut(key) {
            device.connected = false;
            device.grace_deadline = Some(deadline);
            for msg in unsent.into_iter().rev() {
                device.queue.push_front(msg);
            }
            device.queue.truncate(max);
        }
    }

    pub fn remove_device(&mut self, key: &DeviceKey) {
        if let Some(user) = self.users.get_mut(&key.uid) {
            user.devices.remove(&key.device_id);
        }
        self.prune(&key.uid);
    }

    pub fn connected_devices(&self, uid: &str) -> Vec<String> {
        self.users.get(uid).map_or_else(Vec::new, |user| {
            user.devices.iter().filter(|(_, d)| d.connected).map(|(id, _)| id.clone()).collect()
        })
    }

    pub fn calls_of(&self, uid: &str) -> Vec<CallId> {
        self.users.get(uid).map_or_else(Vec::new, |user| user.calls.iter().cloned().collect())
    }

    pub fn has_calls(&self, uid: &str) -> bool {
        self.users.get(uid).is_some_and(|user| !user.calls.is_empty())
    }

    pub fn link(&mut self, uid: &str, call_id: &str) {
        self.users.entry(uid.to_owned()).or_default().calls.insert(call_id.to_owned());
    }

    pub fn unlink(&mut self, uid: &str, call_id: &str) {
        if let Some(user) = self.users.get_mut(uid) {
            user.calls.remove(call_id);
        }
        self.prune(uid);
    }

    /// Delivers to a connected device, queues for one within its grace period, and drops the
    /// message for a device the server no longer knows (it has nothing to come back to).
    pub fn send(&mut self, to: &DeviceKey, msg: ServerMessage, out: &mut Sends) {
        let max = self.max_queued;
        match self.device_mut(to) {
            Some(device) if device.connected => out.push((to.clone(), msg)),
            Some(device) if device.queue.len() < max => device.queue.push_back(msg),
            Some(_) => tracing::debug!(?to, "queue full, message dropped"),
            None => {}
        }
    }

    fn device_mut(&mut self, key: &DeviceKey) -> Option<&mut Device> {
        self.users.get_mut(&key.uid)?.devices.get_mut(&key.device_id)
    }

    fn prune(&mut self, uid: &str) {
        if self.users.get(uid).is_some_and(|u| u.devices.is_empty() && u.calls.is_empty()) {
            self.users.remove(uid);
        }
    }

    #[cfg(test)]
    pub fn user_count(&self) -> usize {
        self.users.len()
    }
}
