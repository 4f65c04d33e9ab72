//! One call as the server holds it, and what is left of it once it has ended.

use std::collections::BTreeSet;
use std::time::Instant;

use duet_protocol::{
    CallId, CallOptions, CallStatus, CloseReason, IncomingCall, RestatedState, Role, ServerMessage,
    Signal,
};

use super::held::Held;
use super::DeviceKey;

#[derive(Debug)]
pub(super) struct Call {
    pub id: CallId,
    pub caller_uid: String,
    /// `None` while a call rebuilt from the callee's restatement waits for the caller's.
    pub caller_device: Option<String>,
    pub callee_uid: String,
    pub data: Option<String>,
    pub options: CallOptions,
    pub offer: Option<String>,
    pub answer: Option<String>,
    pub phase: Phase,
    /// Devices of the callee that were pushed for the call, not connected when it was
    /// placed: while it rings, the callee counts as present through them (the caller hears
    /// `ringing`, other callers `busy`) until they connect or the ring times out.
    pub pushed: bool,
    /// While one party has not (re)stated the call after a restart: when the other is told
    /// `peer_disconnected`.
    pub absent_deadline: Option<Instant>,
    /// The caller's signals while ringing, replayed to devices that start ringing late so
    /// they see the same candidates as the ones that rang from the start.
    pub ring_signals: Held<Signal>,
    /// Signals for the party that has not restated the call yet (its device is unknown).
    pub pending: Held<ServerMessage>,
    /// The callee's device that may pre-connect while the call rings: set when the caller
    /// takes early answers and the call can ring on this one device only. Such a call rings
    /// on no other device, so the caller never meets a second answer.
    pub preconnect: Option<String>,
}

#[derive(Debug)]
pub(super) enum Phase {
    Ringing {
        devices: BTreeSet<String>,
        deadline: Instant,
    },
    /// `device` is the callee's device that accepted; `None` while it has not restated.
    Active {
        device: Option<String>,
    },
}

/// How a device takes part in a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    Caller,
    /// One of the callee's devices the call is ringing.
    Ringing,
    /// The callee's device that accepted.
    Accepted,
    None,
}

impl Call {
    pub(super) fn part(&self, key: &DeviceKey) -> Part {
        if key.uid == self.caller_uid {
            return match &self.caller_device {
                Some(d) if *d == key.device_id => Part::Caller,
                _ => Part::None,
            };
        }
        if key.uid != self.callee_uid {
            return Part::None;
        }
        match &self.phase {
            Phase::Ringing { devices, .. } if devices.contains(&key.device_id) => Part::Ringing,
            Phase::Active { device: Some(d) } if *d == key.device_id => Part::Accepted,
            _ => Part::None,
        }
    }

    /// Whether `key` may act for a party whose device the server does not know yet: after a
    /// restart, a device that ended the call locally does not restate it but sends `hangup`.
    pub(super) fn stands_in(&self, key: &DeviceKey) -> bool {
        (key.uid == self.caller_uid && self.caller_device.is_none())
            || (key.uid == self.callee_uid && matches!(self.phase, Phase::Active { device: None }))
    }

    pub(super) fn is_ringing(&self) -> bool {
        matches!(self.phase, Phase::Ringing { .. })
    }

    pub(super) fn ring_deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Ringing { deadline, .. } => Some(deadline),
            Phase::Active { .. } => None,
        }
    }

    pub(super) fn caller_key(&self) -> Option<DeviceKey> {
        self.caller_device.as_ref().map(|d| DeviceKey::new(&self.caller_uid, d))
    }

    /// The callee's devices in the call: every ringing one, or the one that accepted.
    pub(super) fn callee_keys(&self) -> Vec<DeviceKey> {
        let devices: Vec<&String> = match &self.phase {
            Phase::Ringing { devices, .. } => devices.iter().collect(),
            Phase::Active { device } => device.iter().collect(),
        };
        devices.into_iter().map(|d| DeviceKey::new(&self.callee_uid, d)).collect()
    }

    /// Both parties have a device in the call (not the case while a rebuilt call waits).
    pub(super) fn is_complete(&self) -> bool {
        self.caller_device.is_some() && self.callee_present()
    }

    /// Whether a device of `uid` takes part in the call: it placed it, rings for it, or
    /// accepted it. A call rebuilt from the other party's restatement alone does not count
    /// for `uid` until a device of its own restates it (or rings for it).
    pub(super) fn involves(&self, uid: &str) -> bool {
        (uid == self.caller_uid && self.caller_device.is_some())
            || (uid == self.callee_uid && self.callee_present())
    }

    fn callee_present(&self) -> bool {
        match &self.phase {
            Phase::Ringing { devices, .. } => !devices.is_empty() || self.pushed,
            Phase::Active { device } => device.is_some(),
        }
    }

    /// The `incoming` for one of the callee's devices.
    pub(super) fn incoming(&self, device: &str) -> IncomingCall {
        IncomingCall {
            call_id: self.id.clone(),
            from: self.caller_uid.clone(),
            data: self.data.clone(),
            options: self.options.clone(),
            sdp: self.offer.clone(),
            preconnect: self.preconnect.as_deref() == Some(device),
        }
    }

    /// Whether `device` of the callee is the one that pre-connects: its signals reach the
    /// caller while the call rings.
    pub(super) fn preconnects(&self, device: &str) -> bool {
        self.is_ringing() && self.preconnect.as_deref() == Some(device)
    }

    /// Whether the call may ring on `device` of the callee: not when it is bound to another
    /// device that pre-connects.
    pub(super) fn may_ring_on(&self, device: &str) -> bool {
        self.preconnect.as_deref().is_none_or(|d| d == device)
    }
}

/// What the server remembers of an ended call, for a device that restates it later.
#[derive(Debug)]
pub(super) struct Tombstone {
    pub expires: Instant,
    pub kind: Grave,
}

#[derive(Debug)]
pub(super) enum Grave {
    /// A call the server held.
    Ended(Box<EndedCall>),
    /// A `hangup` for a call the server did not know (it restarted): the peer's later
    /// restatement learns at once that the call is over instead of waiting out the grace.
    HungUp { by_uid: String },
}

/// The parties of an ended call, and the message that ended it for each.
#[derive(Debug)]
pub(super) struct EndedCall {
    pub caller_uid: String,
    pub caller_device: Option<String>,
    pub callee_uid: String,
    /// The callee's device that accepted, if the call was answered (`Some("")` when the
    /// server rebuilt an answered call whose accepting device it never learnt).
    pub answered_by: Option<String>,
    pub to_caller: Option<ServerMessage>,
    pub to_callee: Option<ServerMessage>,
}

impl Grave {
    /// The message for a device restating the ended call, or `None` if it is not a party.
    pub(super) fn message_for(
        &self,
        key: &DeviceKey,
        call_id: &str,
        role: Role,
        peer: &str,
        state: RestatedState,
    ) -> Option<ServerMessage> {
        match self {
            Grave::Ended(ended) => {
                let EndedCall {
                    caller_uid, caller_device, callee_uid, to_caller, to_callee, ..
                } = &**ended;
                let (uid, other, message) = match role {
                    Role::Caller => {
                        if caller_device.as_ref().is_some_and(|d| *d != key.device_id) {
                            return None;
                        }
                        (caller_uid, callee_uid, to_caller)
                    }
                    Role::Callee => (callee_uid, caller_uid, to_callee),
                };
                if *uid != key.uid || other != peer {
                    return None;
                }
                Some(message.clone().unwrap_or_else(|| closed(call_id, CloseReason::Hangup)))
            }
            Grave::HungUp { by_uid } => {
                if by_uid != peer || *by_uid == key.uid {
                    return None;
                }
                // What the device would have been told had the server seen the hangup live.
                Some(match (role, state) {
                    (Role::Caller, RestatedState::Ringing) => {
                        response(call_id, CallStatus::Rejected, None)
                    }
                    (Role::Callee, RestatedState::Ringing) => {
                        closed(call_id, CloseReason::Cancelled)
                    }
                    _ => closed(call_id, CloseReason::Hangup),
                })
            }
        }
    }
}

pub(super) fn closed(call_id: &str, reason: CloseReason) -> ServerMessage {
    ServerMessage::Closed { call_id: call_id.to_owned(), reason }
}

pub(super) fn response(call_id: &str, status: CallStatus, sdp: Option<String>) -> ServerMessage {
    ServerMessage::Response { call_id: call_id.to_owned(), status, sdp }
}
