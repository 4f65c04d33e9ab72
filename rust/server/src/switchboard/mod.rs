//! The call registry: every rule of `docs/protocol.md` about who gets what, as a sans-I/O
//! state machine.
//!
//! Inputs are a device connecting (with the calls it restates), a device's message, a device
//! disconnecting, and the clock; outputs are the messages to send, addressed by device.
//! Time is always an argument (`now`), never read, so every rule is tested with explicit
//! instants and no sockets; the driver asks `next_deadline` when to call `handle_timeout`.

mod call;
mod directory;
mod held;
mod restate;
#[cfg(test)]
mod tests;
mod woken;

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use duet_protocol::{
    check_call_id, check_uid, CallId, CallOptions, CallStatus, ClientMessage, CloseReason,
    ErrorCode, Limits, ServerMessage, Signal,
};

use call::{closed, response, Call, EndedCall, Grave, Part, Phase, Tombstone};
use directory::Directory;
use held::{Bounds, Held};

use crate::metrics::{CallCensus, CallEnd, Metrics};

/// A device, the unit every message is addressed to.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub(crate) struct DeviceKey {
    pub uid: String,
    pub device_id: String,
}

impl DeviceKey {
    pub(crate) fn new(uid: &str, device_id: &str) -> Self {
        DeviceKey { uid: uid.to_owned(), device_id: device_id.to_owned() }
    }
}

/// Messages to send, in order.
pub(crate) type Sends = Vec<(DeviceKey, ServerMessage)>;

/// Devices to wake with a push for a call that rings their user: registered for pushes,
/// and not connected when the call was placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PushOrder {
    pub call_id: CallId,
    pub caller_uid: String,
    pub callee_uid: String,
    pub devices: Vec<String>,
    pub data: Option<String>,
    /// When the call stops ringing.
    pub deadline: Instant,
}

/// The most messages held for one absent device (or party), per the protocol.
pub(crate) const MAX_QUEUED: usize = 256;
/// The most bytes held in one such queue: half the default outbox bound, so that a device
/// coming back gets what was held for it in one go, with room for `welcome` and the answers
/// to what it restated.
pub(crate) const MAX_QUEUED_BYTES: usize = 128 * 1024;
/// The most calls one `hello` may restate: a device holds one call, a few cover races.
pub(crate) const MAX_RESTATED_CALLS: usize = 8;
/// How long an ended call is remembered for a device that restates it.
pub(crate) const TOMBSTONE_TTL: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
pub(crate) struct SwitchboardConfig {
    pub ring_timeout: Duration,
    pub grace: Duration,
    pub max_data_bytes: usize,
    pub tombstone_ttl: Duration,
    pub max_queued: usize,
    /// The most bytes (as encoded) held in any one such queue.
    pub max_queued_bytes: usize,
    /// Where calls placed, set up and ended are counted.
    pub metrics: Arc<Metrics>,
}

impl SwitchboardConfig {
    fn held_bounds(&self) -> Bounds {
        Bounds { items: self.max_queued, bytes: self.max_queued_bytes }
    }

    pub(crate) fn new(ring_timeout: Duration, grace: Duration, limits: &Limits) -> Self {
        SwitchboardConfig {
            ring_timeout,
            grace,
            max_data_bytes: limits.max_data_bytes,
            tombstone_ttl: TOMBSTONE_TTL,
            max_queued: MAX_QUEUED,
            max_queued_bytes: MAX_QUEUED_BYTES,
            metrics: Arc::default(),
        }
    }
}

pub(crate) struct Switchboard {
    config: SwitchboardConfig,
    dir: Directory,
    calls: HashMap<CallId, Call>,
    tombstones: HashMap<CallId, Tombstone>,
    /// Deadlines, lazily invalidated: an entry counts only if the thing it times still has
    /// that very deadline when it comes up.
    timers: BinaryHeap<Reverse<(Instant, Timer)>>,
    /// Pushes decided, for the driver to send (`take_pushes`).
    pushes: Vec<PushOrder>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Ring(CallId),
    Absent(CallId),
    Grace(DeviceKey),
    Tombstone(CallId),
}

/// Why a message was refused: becomes the `error` sent back to its sender.
#[derive(Debug)]
struct Refusal {
    code: ErrorCode,
    message: String,
    call_id: Option<CallId>,
}

impl Refusal {
    fn new(code: ErrorCode, message: impl Into<String>, call_id: &str) -> Self {
        Refusal { code, message: message.into(), call_id: Some(call_id.to_owned()) }
    }

    fn not_in_call(call_id: &str) -> Self {
        Refusal::new(
            ErrorCode::NotInCall,
            format!("no call {call_id} that this device is part of"),
            call_id,
        )
    }

    fn into_message(self) -> ServerMessage {
        ServerMessage::Error { code: self.code, message: self.message, call_id: self.call_id }
    }
}

impl Switchboard {
    pub(crate) fn new(config: SwitchboardConfig) -> Self {
        Switchboard {
            dir: Directory::new(config.held_bounds()),
            config,
            calls: HashMap::new(),
            tombstones: HashMap::new(),
            timers: BinaryHeap::new(),
            pushes: Vec::new(),
        }
    }

    /// The pushes decided since the last call: the driver sends them, off its own path.
    pub(crate) fn take_pushes(&mut self) -> Vec<PushOrder> {
        std::mem::take(&mut self.pushes)
    }

    /// A device said `hello` (first time, after a drop, or replacing its own connection).
    /// Returns what it must get after `welcome`: its queued messages, the outcome of each
    /// restated call, and `incoming` for calls ringing its user.
    pub(crate) fn connect(
        &mut self,
        now: Instant,
        device: &DeviceKey,
        restated: Vec<duet_protocol::CallRestatement>,
    ) -> Sends {
        let mut out = Sends::new();
        let queued = self.dir.attach(device);
        let seen = restate::Seen::from_queue(&queued);
        out.extend(queued.into_iter().map(|msg| (device.clone(), msg)));

        let mut restated_ids = BTreeSet::new();
        for (i, r) in restated.into_iter().enumerate() {
            restated_ids.insert(r.call_id.clone());
            let result = if i < MAX_RESTATED_CALLS {
                self.restate(now, device, r, &seen, &mut out)
            } else {
                Err(Refusal::new(
                    ErrorCode::InvalidRequest,
                    format!("at most {MAX_RESTATED_CALLS} calls may be restated"),
                    &r.call_id,
                ))
            };
            if let Err(refusal) = result {
                out.push((device.clone(), refusal.into_message()));
            }
        }
        self.ring_arrival(now, device, &restated_ids, &seen, &mut out);
        out
    }

    /// Whether `device` may connect with its uid holding at most `max_devices` devices: a
    /// device the server knows (connected, or within its grace period) always may.
    pub(crate) fn admits(&self, device: &DeviceKey, max_devices: usize) -> bool {
        self.dir.device(device).is_some() || self.dir.device_count(&device.uid) < max_devices
    }

    /// A device's connection is gone. Its calls wait `grace` for it; `unsent` is what the
    /// connection was handed but never wrote, kept for its return.
    pub(crate) fn disconnect(
        &mut self,
        now: Instant,
        device: &DeviceKey,
        unsent: Vec<ServerMessage>,
    ) -> Sends {
        let in_a_call = self
            .dir
            .calls_of(&device.uid)
            .iter()
            .any(|id| self.calls.get(id).is_some_and(|c| c.part(device) != Part::None));
        if in_a_call {
            let deadline = now + self.config.grace;
            self.dir.detach(device, deadline, unsent);
            self.timers.push(Reverse((deadline, Timer::Grace(device.clone()))));
        } else {
            self.dir.remove_device(device);
        }
        Sends::new()
    }

    /// A message from a connected device. `hello` and `ping` are the connection's business
    /// and are ignored here.
    #[cfg(test)]
    pub(crate) fn handle(&mut self, now: Instant, from: &DeviceKey, msg: ClientMessage) -> Sends {
        self.handle_with(now, from, msg, &[])
    }

    /// `handle`, with the devices of an invite's callee that a push can reach
    /// (`reachable`): those not connected are pushed (`take_pushes`), and make the call
    /// ring rather than end `unreachable`.
    pub(crate) fn handle_with(
        &mut self,
        now: Instant,
        from: &DeviceKey,
        msg: ClientMessage,
        reachable: &[String],
    ) -> Sends {
        let mut out = Sends::new();
        let result = match msg {
            ClientMessage::Invite { call_id, to, data, options, sdp } => {
                let invite = Invite { call_id, to, data, options, sdp };
                self.invite(now, from, invite, reachable, &mut out)
            }
            ClientMessage::Accept { call_id, sdp } => {
                self.accept(now, from, &call_id, sdp, &mut out)
            }
            ClientMessage::Reject { call_id, busy } => {
                self.reject(now, from, &call_id, busy, &mut out)
            }
            ClientMessage::Hangup { call_id } => self.hangup(now, from, &call_id, &mut out),
            ClientMessage::Signal { call_id, signal } => {
                self.signal(from, &call_id, signal, &mut out)
            }
            ClientMessage::Hello { .. }
            | ClientMessage::Ping { .. }
            | ClientMessage::RegisterPush { .. }
            | ClientMessage::UnregisterPush => Ok(()),
        };
        if let Err(refusal) = result {
            out.push((from.clone(), refusal.into_message()));
        }
        out
    }

    /// Fires every deadline at or before `now`.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Sends {
        let mut out = Sends::new();
        while self.timers.peek().is_some_and(|Reverse((at, _))| *at <= now) {
            let Some(Reverse((at, timer))) = self.timers.pop() else { break };
            if self.is_current(at, &timer) {
                self.fire(now, timer, &mut out);
            }
        }
        out
    }

    /// When `handle_timeout` next has something to do.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        // Stale entries are dropped here so that the driver does not wake up for nothing.
        while let Some(Reverse((at, timer))) = self.timers.peek() {
            if self.is_current(*at, timer) {
                return Some(*at);
            }
            self.timers.pop();
        }
        None
    }

    /// Calls held now, by state; a walk over them all, for `/metrics` only.
    pub(crate) fn census(&self) -> CallCensus {
        let ringing = self.calls.values().filter(|c| c.is_ringing()).count();
        let total = self.calls.len();
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        CallCensus { ringing: count(ringing), active: count(total - ringing) }
    }

    /// Calls ringing or under way.
    #[cfg(test)]
    pub(crate) fn live_calls(&self) -> usize {
        self.calls.len()
    }

    fn is_current(&self, at: Instant, timer: &Timer) -> bool {
        match timer {
            Timer::Ring(id) => self.calls.get(id).and_then(Call::ring_deadline) == Some(at),
            Timer::Absent(id) => self.calls.get(id).and_then(|c| c.absent_deadline) == Some(at),
            Timer::Grace(key) => {
                self.dir.device(key).is_some_and(|d| !d.connected && d.grace_deadline == Some(at))
            }
            Timer::Tombstone(id) => self.tombstones.get(id).is_some_and(|t| t.expires == at),
        }
    }

    fn fire(&mut self, now: Instant, timer: Timer, out: &mut Sends) {
        match timer {
            Timer::Ring(id) => self.end(
                now,
                &id,
                Some(response(&id, CallStatus::Timeout, None)),
                Some(closed(&id, CloseReason::Timeout)),
                None,
                out,
            ),
            Timer::Absent(id) => self.end(
                now,
                &id,
                Some(closed(&id, CloseReason::PeerDisconnected)),
                Some(closed(&id, CloseReason::PeerDisconnected)),
                None,
                out,
            ),
            Timer::Grace(key) => self.device_gone(now, &key, out),
            Timer::Tombstone(id) => {
                self.tombstones.remove(&id);
            }
        }
    }

    fn invite(
        &mut self,
        now: Instant,
        from: &DeviceKey,
        invite: Invite,
        reachable: &[String],
        out: &mut Sends,
    ) -> Result<(), Refusal> {
        let Invite { call_id, to, .. } = &invite;
        let (call_id, to) = (call_id.clone(), to.clone());
        let invalid = |message: String| Refusal::new(ErrorCode::InvalidRequest, message, &call_id);
        check_call_id(&call_id).map_err(|e| invalid(e.to_string()))?;
        check_uid(&to).map_err(|e| invalid(format!("to: {e}")))?;
        if to == from.uid {
            return Err(invalid("calling yourself".into()));
        }
        self.check_data(&call_id, invite.data.as_deref())?;
        if self.calls.contains_key(&call_id) {
            if self.reinvite(now, from, &call_id, &to, out) {
                return Ok(());
            }
            return Err(Refusal::new(
                ErrorCode::DuplicateCallId,
                "a call with this id exists",
                &call_id,
            ));
        }

        // A device has one call at a time: a new call hangs up the previous one.
        if let Some(previous) = self.current_call(from) {
            self.replace(now, from, &previous, out);
        }

        if self.is_busy(&to) {
            let glare = self.dir.calls_of(&to).into_iter().find(|id| {
                self.calls.get(id).is_some_and(|c| {
                    c.caller_uid == to && c.callee_uid == from.uid && c.is_ringing()
                })
            });
            let verdict = match glare {
                Some(first) => self.merge(now, from, &call_id, &first, out),
                None => {
                    let busy = response(&call_id, CallStatus::Busy, None);
                    self.dir.send(from, busy.clone(), out);
                    busy
                }
            };
            self.bury_unborn(now, &call_id, from, &to, verdict);
            return Ok(());
        }

        let devices = self.dir.connected_devices(&to);
        let pushed: Vec<String> =
            reachable.iter().filter(|d| !devices.contains(d)).cloned().collect();
        if devices.is_empty() && pushed.is_empty() {
            let verdict = closed(&call_id, CloseReason::Unreachable);
            self.dir.send(from, verdict.clone(), out);
            self.bury_unborn(now, &call_id, from, &to, verdict);
            return Ok(());
        }
        self.ring(now, from, invite, devices, pushed, out);
        Ok(())
    }

    /// Rings a new call on the callee's connected `devices`, and orders pushes to its
    /// `pushed` ones.
    fn ring(
        &mut self,
        now: Instant,
        from: &DeviceKey,
        invite: Invite,
        devices: Vec<String>,
        pushed: Vec<String>,
        out: &mut Sends,
    ) {
        let Invite { call_id, to, data, options, sdp } = invite;
        let deadline = now + self.config.ring_timeout;
        if !pushed.is_empty() {
            self.pushes.push(PushOrder {
                call_id: call_id.clone(),
                caller_uid: from.uid.clone(),
                callee_uid: to.clone(),
                devices: pushed.clone(),
                data: data.clone(),
                deadline,
            });
        }
        // One device, whether it is connected or about to be woken by a push: it may
        // pre-connect, if the caller takes early answers.
        let only_device = match (devices.as_slice(), pushed.as_slice()) {
            ([one], []) | ([], [one]) => Some(one.clone()),
            _ => None,
        };
        let call = Call {
            preconnect: only_device.filter(|_| options.early_answer),
            id: call_id.clone(),
            caller_uid: from.uid.clone(),
            caller_device: Some(from.device_id.clone()),
            callee_uid: to.clone(),
            data,
            options,
            offer: sdp,
            answer: None,
            phase: Phase::Ringing { devices: devices.iter().cloned().collect(), deadline },
            pushed: !pushed.is_empty(),
            absent_deadline: None,
            ring_signals: Held::default(),
            pending: Held::default(),
        };
        for device in &devices {
            let incoming = ServerMessage::from(call.incoming(device));
            self.dir.send(&DeviceKey::new(&to, device), incoming, out);
        }
        self.dir.send(from, ServerMessage::Ringing { call_id: call_id.clone() }, out);
        self.timers.push(Reverse((deadline, Timer::Ring(call_id.clone()))));
        self.tombstones.remove(&call_id);
        self.insert(call);
        self.config.metrics.call_placed();
    }

    /// Glare: `from` is to answer the call `into` in place of its own `discarded` one, which
    /// is never created. Returns the verdict sent for `discarded`.
    fn merge(
        &mut self,
        now: Instant,
        from: &DeviceKey,
        discarded: &str,
        into: &str,
        out: &mut Sends,
    ) -> ServerMessage {
        let Some(call) = self.calls.get_mut(into) else {
            let busy = response(discarded, CallStatus::Busy, None);
            self.dir.send(from, busy.clone(), out);
            return busy;
        };
        // Normally the device is already ringing for the call; if not, it joins now.
        let joins = match &mut call.phase {
            Phase::Ringing { devices, .. } => devices.insert(from.device_id.clone()),
            Phase::Active { .. } => false,
        };
        refresh_absence(call, now, self.config.grace, &mut self.timers);
        let merged = ServerMessage::Merged {
            call_id: discarded.to_owned(),
            into: call.incoming(&from.device_id),
        };
        self.dir.send(from, merged.clone(), out);
        if joins {
            self.replay_ring_signals(into, from, out);
        }
        merged
    }

    fn accept(
        &mut self,
        now: Instant,
        from: &DeviceKey,
        call_id: &str,
        sdp: Option<String>,
        out: &mut Sends,
    ) -> Result<(), Refusal> {
        match self.part_in(call_id, from)? {
            Part::Ringing => {}
            Part::Caller => {
                return Err(Refusal::new(
                    ErrorCode::InvalidState,
                    "the caller cannot accept its own call",
                    call_id,
                ))
            }
            Part::Accepted => {
                return Err(Refusal::new(
                    ErrorCode::InvalidState,
                    "the call is already accepted",
                    call_id,
                ))
            }
            Part::None => return Err(Refusal::not_in_call(call_id)),
        }
        if let Some(previous) = self.current_call(from) {
            self.replace(now, from, &previous, out);
        }
        self.apply_accept(now, call_id, &from.device_id, sdp, true, out);
        self.config.metrics.call_set_up();
        Ok(())
    }

    /// The callee's `device` takes the call: the caller gets the answer, the device (when
    /// `confirm`) its confirmation, and the callee's other ringing devices are let go.
    fn apply_accept(
        &mut self,
        now: Instant,
        call_id: &str,
        device: &str,
        answer: Option<String>,
        confirm: bool,
        out: &mut Sends,
    ) {
        let Some(call) = self.calls.get_mut(call_id) else { return };
        let others: Vec<DeviceKey> =
            call.callee_keys().into_iter().filter(|k| k.device_id != device).collect();
        call.phase = Phase::Active { device: Some(device.to_owned()) };
        if answer.is_some() {
            call.answer = answer;
        }
        call.ring_signals.clear();
        if let Some(caller) = call.caller_key() {
            self.dir.send(
                &caller,
                response(call_id, CallStatus::Accepted, call.answer.clone()),
                out,
            );
        }
        if confirm {
            self.dir.send(
                &DeviceKey::new(&call.callee_uid, device),
                response(call_id, CallStatus::Accepted, None),
                out,
            );
        }
        for other in others {
            self.dir.send(&other, closed(call_id, CloseReason::AnsweredElsewhere), out);
        }
        refresh_absence(call, now, self.config.grace, &mut self.timers);
    }

    fn reject(
        &mut self,
        now: Instant,
        from: &DeviceKey,
        call_id: &str,
        busy: bool,
        out: &mut Sends,
    ) -> Result<(), Refusal> {
        match self.part_in(call_id, from)? {
            Part::Ringing => {
                self.decline(now, from, call_id, busy, out);
                Ok(())
            }
            Part::Caller => Err(Refusal::new(
                ErrorCode::InvalidState,
                "the caller cannot reject its own call; hang up instead",
                call_id,
            )),
            Part::Accepted => Err(Refusal::new(
                ErrorCode::InvalidState,
                "the call is already accepted; hang up instead",
                call_id,
            )),
            Part::None => Err(Refusal::not_in_call(call_id)),
        }
    }

    fn decline(
        &mut self,
        now: Instant,
        from: &DeviceKey,
        call_id: &str,
        busy: bool,
        out: &mut Sends,
    ) {
        let status = if busy { CallStatus::Busy } else { CallStatus::Rejected };
        self.end(
            now,
            call_id,
            Some(response(call_id, status, None)),
            Some(closed(call_id, CloseReason::DeclinedElsewhere)),
            Some(&from.device_id),
            out,
        );
    }

    fn hangup(
        &mut self,
        now: Instant,
        from: &DeviceKey,
        call_id: &str,
        out: &mut Sends,
    ) -> Result<(), Refusal> {
        check_call_id(call_id).map_err(|e| Refusal::new(ErrorCode::InvalidRequest, e, call_id))?;
        let Some(call) = self.calls.get(call_id) else {
            if !self.tombstones.contains_key(call_id) {
                self.leave_tombstone(now, call_id, Grave::HungUp { by_uid: from.uid.clone() });
            }
            return Err(Refusal::not_in_call(call_id));
        };
        let part = call.part(from);
        let as_caller = part == Part::Caller
            || (part == Part::None && call.stands_in(from) && from.uid == call.caller_uid);
        let as_callee = part == Part::Accepted
            || (part == Part::None && call.stands_in(from) && from.uid == call.callee_uid);
        match (call.is_ringing(), part) {
            // The callee hanging up a ringing call declines it.
            (true, Part::Ringing) => self.decline(now, from, call_id, false, out),
            (true, _) if as_caller => self.end(
                now,
                call_id,
                None,
                Some(closed(call_id, CloseReason::Cancelled)),
                None,
                out,
            ),
            (false, _) if as_caller => {
                self.end(now, call_id, None, Some(closed(call_id, CloseReason::Hangup)), None, out)
            }
            (false, _) if as_callee => {
                self.end(now, call_id, Some(closed(call_id, CloseReason::Hangup)), None, None, out)
            }
            _ => return Err(Refusal::not_in_call(call_id)),
        }
        Ok(())
    }

    fn signal(
        &mut self,
        from: &DeviceKey,
        call_id: &str,
        signal: Signal,
        out: &mut Sends,
    ) -> Result<(), Refusal> {
        check_call_id(call_id).map_err(|e| Refusal::new(ErrorCode::InvalidRequest, e, call_id))?;
        let bounds = self.config.held_bounds();
        let call = self.calls.get_mut(call_id).ok_or_else(|| Refusal::not_in_call(call_id))?;
        let relayed = ServerMessage::Signal { call_id: call_id.to_owned(), signal: signal.clone() };
        let to = match (call.part(from), &call.phase) {
            (Part::Caller, Phase::Ringing { .. }) => {
                call.ring_signals.push(signal, bounds);
                call.callee_keys()
            }
            (Part::Caller, Phase::Active { device: Some(device) }) => {
                vec![DeviceKey::new(&call.callee_uid, device)]
            }
            (Part::Accepted, _) if call.caller_device.is_some() => {
                call.caller_key().into_iter().collect()
            }
            // The other party has not restated the call yet: hold the signal for it.
            (Part::Caller | Part::Accepted, _) => {
                call.pending.push(relayed, bounds);
                return Ok(());
            }
            (Part::Ringing, _) if call.preconnects(&from.device_id) => {
                call.caller_key().into_iter().collect()
            }
            (Part::Ringing, _) => {
                return Err(Refusal::new(
                    ErrorCode::InvalidState,
                    "a callee device may signal only once it has accepted, unless its \
                     incoming said preconnect",
                    call_id,
                ))
            }
            (Part::None, _) => return Err(Refusal::not_in_call(call_id)),
        };
        for key in &to {
            self.dir.send(key, relayed.clone(), out);
        }
        Ok(())
    }

    /// The device stayed away past its grace period: it leaves every call it was in.
    fn device_gone(&mut self, now: Instant, key: &DeviceKey, out: &mut Sends) {
        use CloseReason::{Cancelled, PeerDisconnected};
        for id in self.dir.calls_of(&key.uid) {
            let Some(call) = self.calls.get_mut(&id) else { continue };
            let pushed = call.pushed;
            let ending = match (call.part(key), &mut call.phase) {
                // A ringing call whose caller is gone is cancelled for the callee.
                (Part::Caller, Phase::Ringing { .. }) => Some((PeerDisconnected, Cancelled)),
                // It rings on at the callee's other devices, while it has any left.
                (Part::Ringing, Phase::Ringing { devices, .. }) => {
                    devices.remove(&key.device_id);
                    // Pushed devices may still come; the ring timeout bounds the wait.
                    (devices.is_empty() && !pushed).then_some((PeerDisconnected, PeerDisconnected))
                }
                (Part::Caller | Part::Accepted, _) => Some((PeerDisconnected, PeerDisconnected)),
                _ => None,
            };
            if let Some((to_caller, to_callee)) = ending {
                self.end(
                    now,
                    &id,
                    Some(closed(&id, to_caller)),
                    Some(closed(&id, to_callee)),
                    None,
                    out,
                );
            }
        }
        self.dir.remove_device(key);
    }

    /// Ends the call `previous` because `device` started or took another one.
    fn replace(&mut self, now: Instant, device: &DeviceKey, previous: &str, out: &mut Sends) {
        let Some(call) = self.calls.get(previous) else { return };
        let replaced = Some(closed(previous, CloseReason::Replaced));
        match call.part(device) {
            Part::Caller => {
                // The callee hears what a hang-up by the caller would have told it.
                let reason =
                    if call.is_ringing() { CloseReason::Cancelled } else { CloseReason::Hangup };
                self.end(now, previous, replaced, Some(closed(previous, reason)), None, out)
            }
            Part::Accepted => self.end(
                now,
                previous,
                Some(closed(previous, CloseReason::Hangup)),
                replaced,
                None,
                out,
            ),
            _ => {}
        }
    }

    /// Ends a call: the caller's device gets `to_caller`, every callee device still in it
    /// (but `spare`, which ended it) gets `to_callee`, and a tombstone remembers both.
    fn end(
        &mut self,
        now: Instant,
        call_id: &str,
        to_caller: Option<ServerMessage>,
        to_callee: Option<ServerMessage>,
        spare: Option<&str>,
        out: &mut Sends,
    ) {
        let Some(call) = self.calls.remove(call_id) else { return };
        self.dir.unlink(&call.caller_uid, call_id);
        self.dir.unlink(&call.callee_uid, call_id);
        if let (Some(caller), Some(msg)) = (call.caller_key(), &to_caller) {
            self.dir.send(&caller, msg.clone(), out);
        }
        if let Some(msg) = &to_callee {
            for key in call.callee_keys() {
                if Some(key.device_id.as_str()) != spare {
                    self.dir.send(&key, msg.clone(), out);
                }
            }
        }
        self.config.metrics.call_ended(CallEnd::of(to_caller.as_ref(), to_callee.as_ref()));
        self.bury(now, &call, to_caller, to_callee);
    }

    fn bury(
        &mut self,
        now: Instant,
        call: &Call,
        to_caller: Option<ServerMessage>,
        to_callee: Option<ServerMessage>,
    ) {
        let grave = Grave::Ended(Box::new(EndedCall {
            caller_uid: call.caller_uid.clone(),
            caller_device: call.caller_device.clone(),
            callee_uid: call.callee_uid.clone(),
            answered_by: match &call.phase {
                Phase::Active { device } => Some(device.clone().unwrap_or_default()),
                Phase::Ringing { .. } => None,
            },
            to_caller,
            to_callee,
        }));
        self.leave_tombstone(now, &call.id, grave);
    }

    /// Remembers an invite that never became a call (busy, merged, unreachable), so that a
    /// caller restating it after a restart is told again rather than ringing the callee.
    fn bury_unborn(
        &mut self,
        now: Instant,
        call_id: &str,
        caller: &DeviceKey,
        callee_uid: &str,
        verdict: ServerMessage,
    ) {
        self.config.metrics.call_ended(CallEnd::of(Some(&verdict), None));
        let ended = EndedCall {
            caller_uid: caller.uid.clone(),
            caller_device: Some(caller.device_id.clone()),
            callee_uid: callee_uid.to_owned(),
            answered_by: None,
            to_caller: Some(verdict),
            to_callee: None,
        };
        self.leave_tombstone(now, call_id, Grave::Ended(Box::new(ended)));
    }

    fn leave_tombstone(&mut self, now: Instant, call_id: &str, kind: Grave) {
        let expires = now + self.config.tombstone_ttl;
        self.tombstones.insert(call_id.to_owned(), Tombstone { expires, kind });
        self.timers.push(Reverse((expires, Timer::Tombstone(call_id.to_owned()))));
    }

    fn insert(&mut self, call: Call) {
        self.dir.link(&call.caller_uid, &call.id);
        self.dir.link(&call.callee_uid, &call.id);
        self.calls.insert(call.id.clone(), call);
    }

    /// Whether `uid` is in a call that a device of its own takes part in. Only such calls
    /// make its callers hear `busy`: a restatement by someone else cannot (docs/protocol.md,
    /// Resuming).
    fn is_busy(&self, uid: &str) -> bool {
        self.dir.calls_of(uid).iter().any(|id| self.calls.get(id).is_some_and(|c| c.involves(uid)))
    }

    /// The call the device has (as caller, or as the callee's accepting device); ringing
    /// does not count, so that a device being rung can still place the glare invite.
    fn current_call(&self, device: &DeviceKey) -> Option<CallId> {
        self.dir.calls_of(&device.uid).into_iter().find(|id| {
            self.calls
                .get(id)
                .is_some_and(|c| matches!(c.part(device), Part::Caller | Part::Accepted))
        })
    }

    fn part_in(&self, call_id: &str, device: &DeviceKey) -> Result<Part, Refusal> {
        check_call_id(call_id).map_err(|e| Refusal::new(ErrorCode::InvalidRequest, e, call_id))?;
        let call = self.calls.get(call_id).ok_or_else(|| Refusal::not_in_call(call_id))?;
        Ok(call.part(device))
    }

    fn check_data(&self, call_id: &str, data: Option<&str>) -> Result<(), Refusal> {
        match data {
            Some(data) if data.len() > self.config.max_data_bytes => Err(Refusal::new(
                ErrorCode::InvalidRequest,
                format!("data is longer than {} bytes", self.config.max_data_bytes),
                call_id,
            )),
            _ => Ok(()),
        }
    }

    /// Sends `incoming` for a call a device starts ringing for late.
    fn ring_late(&mut self, call_id: &str, key: &DeviceKey, out: &mut Sends) {
        let Some(call) = self.calls.get(call_id) else { return };
        self.dir.send(key, call.incoming(&key.device_id).into(), out);
        self.replay_ring_signals(call_id, key, out);
    }

    /// The caller's signals so far, for a device that starts ringing late, so that it sees
    /// the same candidates as the devices that rang from the start.
    fn replay_ring_signals(&mut self, call_id: &str, key: &DeviceKey, out: &mut Sends) {
        let Some(call) = self.calls.get(call_id) else { return };
        for signal in call.ring_signals.iter() {
            self.dir.send(
                key,
                ServerMessage::Signal { call_id: call_id.to_owned(), signal: signal.clone() },
                out,
            );
        }
    }
}

struct Invite {
    call_id: CallId,
    to: String,
    data: Option<String>,
    options: CallOptions,
    sdp: Option<String>,
}

/// Starts (or stops) the wait for a party that has not stated a call the server rebuilt.
fn refresh_absence(
    call: &mut Call,
    now: Instant,
    grace: Duration,
    timers: &mut BinaryHeap<Reverse<(Instant, Timer)>>,
) {
    if call.is_complete() {
        call.absent_deadline = None;
    } else if call.absent_deadline.is_none() {
        let deadline = now + grace;
        call.absent_deadline = Some(deadline);
        timers.push(Reverse((deadline, Timer::Absent(call.id.clone()))));
    }
}
