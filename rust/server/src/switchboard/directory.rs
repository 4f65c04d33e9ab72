//! Who is there: each user's devices (connected or within their grace period), the calls
//! each user is party to, and the mail held for devices whose connection dropped.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use duet_protocol::{CallId, ServerMessage};

use super::held::{Bounds, Held};
use super::{DeviceKey, Sends};

#[derive(Debug)]
pub(super) struct Directory {
    users: HashMap<String, User>,
    bounds: Bounds,
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
    queue: Held<ServerMessage>,
}

impl Directory {
    pub(super) fn new(bounds: Bounds) -> Self {
        Directory { users: HashMap::new(), bounds }
    }

    pub(super) fn device(&self, key: &DeviceKey) -> Option<&Device> {
        self.users.get(&key.uid)?.devices.get(&key.device_id)
    }

    /// Marks the device connected (creating it if new) and hands back what was queued for it.
    pub(super) fn attach(&mut self, key: &DeviceKey) -> Vec<ServerMessage> {
        let device = self
            .users
            .entry(key.uid.clone())
            .or_default()
            .devices
            .entry(key.device_id.clone())
            .or_default();
        device.connected = true;
        device.grace_deadline = None;
        device.queue.take()
    }

    /// Starts the device's grace period, keeping `unsent` (what its connection never wrote)
    /// at the head of its queue.
    pub(super) fn detach(
        &mut self,
        key: &DeviceKey,
        deadline: Instant,
        unsent: Vec<ServerMessage>,
    ) {
        let bounds = self.bounds;
        if let Some(device) = self.device_mut(key) {
            device.connected = false;
            device.grace_deadline = Some(deadline);
            device.queue.prepend(unsent, bounds);
        }
    }

    pub(super) fn remove_device(&mut self, key: &DeviceKey) {
        if let Some(user) = self.users.get_mut(&key.uid) {
            user.devices.remove(&key.device_id);
        }
        self.prune(&key.uid);
    }

    /// Devices of `uid` connected or within their grace period.
    pub(super) fn device_count(&self, uid: &str) -> usize {
        self.users.get(uid).map_or(0, |user| user.devices.len())
    }

    pub(super) fn connected_devices(&self, uid: &str) -> Vec<String> {
        self.users.get(uid).map_or_else(Vec::new, |user| {
            user.devices.iter().filter(|(_, d)| d.connected).map(|(id, _)| id.clone()).collect()
        })
    }

    pub(super) fn calls_of(&self, uid: &str) -> Vec<CallId> {
        self.users.get(uid).map_or_else(Vec::new, |user| user.calls.iter().cloned().collect())
    }

    pub(super) fn link(&mut self, uid: &str, call_id: &str) {
        self.users.entry(uid.to_owned()).or_default().calls.insert(call_id.to_owned());
    }

    pub(super) fn unlink(&mut self, uid: &str, call_id: &str) {
        if let Some(user) = self.users.get_mut(uid) {
            user.calls.remove(call_id);
        }
        self.prune(uid);
    }

    /// Delivers to a connected device, queues for one within its grace period, and drops the
    /// message for a device the server no longer knows (it has nothing to come back to).
    pub(super) fn send(&mut self, to: &DeviceKey, msg: ServerMessage, out: &mut Sends) {
        let bounds = self.bounds;
        let Some(device) = self.device_mut(to) else { return };
        if device.connected {
            out.push((to.clone(), msg));
        } else if !device.queue.push(msg, bounds) {
            tracing::debug!(?to, "queue full, message dropped");
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
    pub(super) fn user_count(&self) -> usize {
        self.users.len()
    }
}
