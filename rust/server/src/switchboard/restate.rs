//! Resuming: a device's `hello` restating the calls it holds, after a dropped connection
//! (the server still knows the call) or a server restart (it does not, and rebuilds it).

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use duet_protocol::{
    check_call_id, check_uid, CallRestatement, CallStatus, CloseReason, ErrorCode, RestatedState,
    Role, ServerMessage,
};

use super::call::{closed, response, Call, Grave, Phase};
use super::held::Held;
use super::{refresh_absence, DeviceKey, Refusal, Sends, Switchboard, Timer};

/// What a reconnecting device's queue already told it, so that restating does not repeat it.
#[derive(Debug, Default)]
pub(super) struct Seen {
    /// Calls the queue held a `response` or `closed` for.
    answered: HashSet<String>,
    /// Calls the queue held an `incoming` (or a `merged` into) for.
    rung: HashSet<String>,
}

impl Seen {
    pub(super) fn from_queue(queue: &[ServerMessage]) -> Self {
        let mut seen = Seen::default();
        for msg in queue {
            match msg {
                ServerMessage::Response { call_id, .. } | ServerMessage::Closed { call_id, .. } => {
                    seen.answered.insert(call_id.clone());
                }
                ServerMessage::Incoming { call_id, .. } => {
                    seen.rung.insert(call_id.clone());
                }
                ServerMessage::Merged { into, .. } => {
                    seen.rung.insert(into.call_id.clone());
                }
                _ => {}
            }
        }
        seen
    }
}

impl Switchboard {
    pub(super) fn restate(
        &mut self,
        now: Instant,
        device: &DeviceKey,
        r: CallRestatement,
        seen: &Seen,
        out: &mut Sends,
    ) -> Result<(), Refusal> {
        self.check_restatement(device, &r)?;
        if self.calls.contains_key(&r.call_id) {
            return self.rejoin(now, device, r, seen, out);
        }
        if let Some(tombstone) = self.tombstones.get(&r.call_id) {
            match tombstone.kind.message_for(device, &r.call_id, r.role, &r.peer, r.state) {
                Some(verdict) => {
                    if !seen.answered.contains(&r.call_id) {
                        self.dir.send(device, verdict, out);
                    }
                    return Ok(());
                }
                None if matches!(tombstone.kind, Grave::Ended(_)) => {
                    return Err(Refusal::not_in_call(&r.call_id))
                }
                // Someone else's hangup of an unknown call says nothing about this one.
                None => {}
            }
        }
        self.rebuild(now, device, r, out);
        Ok(())
    }

    fn check_restatement(&self, device: &DeviceKey, r: &CallRestatement) -> Result<(), Refusal> {
        let invalid =
            |message: String| Refusal::new(ErrorCode::InvalidRequest, message, &r.call_id);
        check_call_id(&r.call_id).map_err(|e| invalid(e.to_string()))?;
        check_uid(&r.peer).map_err(|e| invalid(format!("peer: {e}")))?;
        if r.peer == device.uid {
            return Err(invalid("a call with yourself".into()));
        }
        if r.role == Role::Caller && r.state == RestatedState::Accepting {
            return Err(invalid("only the callee can be accepting".into()));
        }
        self.check_data(&r.call_id, r.data.as_deref())
    }

    /// The server still knows the call: the device takes its place in it again.
    fn rejoin(
        &mut self,
        now: Instant,
        device: &DeviceKey,
        r: CallRestatement,
        seen: &Seen,
        out: &mut Sends,
    ) -> Result<(), Refusal> {
        let Some(call) = self.calls.get(&r.call_id) else { return Ok(()) };
        let (caller_uid, callee_uid) = match r.role {
            Role::Caller => (&device.uid, &r.peer),
            Role::Callee => (&r.peer, &device.uid),
        };
        if *caller_uid != call.caller_uid || *callee_uid != call.callee_uid {
            return Err(Refusal::not_in_call(&r.call_id));
        }
        let answered = seen.answered.contains(&r.call_id);
        match r.role {
            Role::Caller => self.rejoin_as_caller(now, device, &r, answered, out),
            Role::Callee => self.rejoin_as_callee(now, device, r, answered, out),
        }
    }

    /// `answered`: the device's queue already told it how the call went.
    fn rejoin_as_caller(
        &mut self,
        now: Instant,
        device: &DeviceKey,
        r: &CallRestatement,
        answered: bool,
        out: &mut Sends,
    ) -> Result<(), Refusal> {
        let grace = self.config.grace;
        let id = r.call_id.clone();
        let Some(call) = self.calls.get_mut(&id) else { return Ok(()) };
        match &call.caller_device {
            Some(d) if *d != device.device_id => return Err(Refusal::not_in_call(&id)),
            Some(_) => {}
            None => {
                call.caller_device = Some(device.device_id.clone());
                flush_pending(call, device, &mut self.dir, out);
            }
        }
        match (&call.phase, r.state) {
            // The caller missed its `response`.
            (Phase::Active { .. }, RestatedState::Ringing) if !answered => {
                self.dir.send(
                    device,
                    response(&id, CallStatus::Accepted, call.answer.clone()),
                    out,
                );
            }
            // The caller saw an accept the restarted server never learnt of: the
            // accepting device will restate it; the others ring no more.
            (Phase::Ringing { .. }, RestatedState::Active) => {
                for key in call.callee_keys() {
                    self.dir.send(&key, closed(&id, CloseReason::AnsweredElsewhere), out);
                }
                call.phase = Phase::Active { device: None };
                call.ring_signals.clear();
            }
            _ => {}
        }
        refresh_absence(call, now, grace, &mut self.timers);
        Ok(())
    }

    fn rejoin_as_callee(
        &mut self,
        now: Instant,
        device: &DeviceKey,
        r: CallRestatement,
        answered: bool,
        out: &mut Sends,
    ) -> Result<(), Refusal> {
        let grace = self.config.grace;
        let id = r.call_id.clone();
        let Some(call) = self.calls.get_mut(&id) else { return Ok(()) };
        match &mut call.phase {
            Phase::Ringing { devices, .. } => {
                if r.state == RestatedState::Ringing {
                    // A device still in the ringing set has the signals in its queue;
                    // one that joins (after a restart) gets those sent since.
                    let joins = devices.insert(device.device_id.clone());
                    refresh_absence(call, now, grace, &mut self.timers);
                    if joins {
                        self.replay_ring_signals(&id, device, out);
                    }
                } else {
                    // Accepting (or active, after a server restart lost the accept):
                    // the accept is applied now.
                    let confirm = r.state == RestatedState::Accepting;
                    self.apply_accept(now, &id, &device.device_id, r.sdp, confirm, out);
                }
            }
            Phase::Active { device: Some(accepted) } => {
                if *accepted == device.device_id {
                    if r.state == RestatedState::Accepting && !answered {
                        self.dir.send(device, response(&id, CallStatus::Accepted, None), out);
                    }
                } else if r.state == RestatedState::Active {
                    return Err(Refusal::not_in_call(&id));
                } else if !answered {
                    self.dir.send(device, closed(&id, CloseReason::AnsweredElsewhere), out);
                }
            }
            Phase::Active { device: None } => {
                if r.state == RestatedState::Ringing {
                    if !answered {
                        self.dir.send(device, closed(&id, CloseReason::AnsweredElsewhere), out);
                    }
                } else {
                    call.phase = Phase::Active { device: Some(device.device_id.clone()) };
                    if r.sdp.is_some() {
                        call.answer = r.sdp;
                    }
                    if r.state == RestatedState::Accepting {
                        self.dir.send(device, response(&id, CallStatus::Accepted, None), out);
                    }
                    flush_pending(call, device, &mut self.dir, out);
                    refresh_absence(call, now, grace, &mut self.timers);
                }
            }
        }
        Ok(())
    }

    /// The server does not know the call (it restarted): the first party to restate it
    /// creates it, and the other has `grace` to restate it too.
    fn rebuild(&mut self, now: Instant, device: &DeviceKey, r: CallRestatement, out: &mut Sends) {
        let ring_deadline =
            now + self.config.ring_timeout.saturating_sub(Duration::from_millis(r.ring_elapsed_ms));
        let me = device.device_id.clone();
        let (caller_uid, caller_device, callee_uid) = match r.role {
            Role::Caller => (device.uid.clone(), Some(me.clone()), r.peer.clone()),
            Role::Callee => (r.peer.clone(), None, device.uid.clone()),
        };
        let (phase, offer, answer) = match (r.role, r.state) {
            (Role::Caller, RestatedState::Ringing) => {
                (Phase::Ringing { devices: BTreeSet::new(), deadline: ring_deadline }, r.sdp, None)
            }
            (Role::Callee, RestatedState::Ringing) => (
                Phase::Ringing { devices: BTreeSet::from([me.clone()]), deadline: ring_deadline },
                r.sdp,
                None,
            ),
            (Role::Caller, _) => (Phase::Active { device: None }, r.sdp, None),
            (Role::Callee, _) => (Phase::Active { device: Some(me.clone()) }, None, r.sdp),
        };
        let mut call = Call {
            id: r.call_id.clone(),
            caller_uid,
            caller_device,
            callee_uid: callee_uid.clone(),
            data: r.data,
            options: r.options,
            offer,
            answer,
            phase,
            pushed: false,
            absent_deadline: None,
            ring_signals: Held::default(),
            pending: Held::default(),
            preconnect: None,
        };
        let id = call.id.clone();
        if let Some(deadline) = call.ring_deadline() {
            self.timers.push(Reverse((deadline, Timer::Ring(id.clone()))));
        }
        // The other party (if it comes back) may hold it as ringing or active; the accept
        // it is waiting for is confirmed now, the caller gets it when it restates.
        if r.role == Role::Callee && r.state == RestatedState::Accepting {
            self.dir.send(device, response(&id, CallStatus::Accepted, None), out);
        }

        // A rebuilt ringing call rings the callee's connected devices that did not restate
        // it, as an invite would: not if the callee is in another call.
        let late: Vec<DeviceKey> = if call.is_ringing() && !self.is_busy(&callee_uid) {
            self.dir
                .connected_devices(&callee_uid)
                .into_iter()
                .map(|d| DeviceKey::new(&callee_uid, &d))
                .filter(|k| k != device && self.current_call(k).is_none())
                .collect()
        } else {
            Vec::new()
        };
        if let Phase::Ringing { devices, .. } = &mut call.phase {
            devices.extend(late.iter().map(|k| k.device_id.clone()));
        }
        refresh_absence(&mut call, now, self.config.grace, &mut self.timers);
        self.tombstones.remove(&id);
        self.insert(call);
        for key in &late {
            self.ring_late(&id, key, out);
        }
    }

    /// A caller re-sends an invite the server never acknowledged (its connection dropped
    /// before `ringing` reached it: the clients re-send such invites rather than restate
    /// them), for a call rebuilt meanwhile from the callee's restatement. The caller takes
    /// its place in the call, as a restatement would have put it, and hears what the call
    /// is now: `ringing`, or its answer. False if the invite is not that.
    pub(super) fn reinvite(
        &mut self,
        now: Instant,
        from: &DeviceKey,
        call_id: &str,
        to: &str,
        out: &mut Sends,
    ) -> bool {
        let grace = self.config.grace;
        let Some(call) = self.calls.get_mut(call_id) else { return false };
        if call.caller_device.is_some() || call.caller_uid != from.uid || call.callee_uid != to {
            return false;
        }
        call.caller_device = Some(from.device_id.clone());
        let told = match &call.phase {
            Phase::Ringing { .. } => ServerMessage::Ringing { call_id: call_id.to_owned() },
            Phase::Active { .. } => response(call_id, CallStatus::Accepted, call.answer.clone()),
        };
        self.dir.send(from, told, out);
        flush_pending(call, from, &mut self.dir, out);
        refresh_absence(call, now, grace, &mut self.timers);
        true
    }

    /// A device of the callee that connects while a call rings gets `incoming` too, unless it
    /// restated the call or already has a call of its own.
    pub(super) fn ring_arrival(
        &mut self,
        now: Instant,
        device: &DeviceKey,
        restated: &BTreeSet<String>,
        seen: &Seen,
        out: &mut Sends,
    ) {
        if self.current_call(device).is_some() {
            return;
        }
        for id in self.dir.calls_of(&device.uid) {
            if restated.contains(&id) || seen.rung.contains(&id) {
                continue;
            }
            let Some(call) = self.calls.get_mut(&id) else { continue };
            if call.callee_uid != device.uid {
                continue;
            }
            if !call.may_ring_on(&device.device_id) {
                continue;
            }
            let Phase::Ringing { devices, .. } = &mut call.phase else { continue };
            devices.insert(device.device_id.clone());
            refresh_absence(call, now, self.config.grace, &mut self.timers);
            self.ring_late(&id, device, out);
        }
    }
}

/// Hands the party that just restated a call the signals held for it.
fn flush_pending(
    call: &mut Call,
    device: &DeviceKey,
    dir: &mut super::directory::Directory,
    out: &mut Sends,
) {
    for msg in call.pending.take() {
        dir.send(device, msg, out);
    }
}
