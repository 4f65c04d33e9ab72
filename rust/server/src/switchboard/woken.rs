//! A device woken by a push names the call it was woken for: it must learn at once whether
//! that call still rings, so that the system's call screen the push opened closes in time.

use duet_protocol::CloseReason;

use super::call::{closed, Grave, Phase};
use super::{DeviceKey, Refusal, Sends, Switchboard};

impl Switchboard {
    /// After `connect`: the fate of `call_id`, for the device a push for it woke. A call
    /// that still rings has already been rung (`incoming`) by `connect`; one answered by
    /// another device, or ended, is `closed` with its reason; one the server does not know
    /// (long over, or lost in a restart) is `not_in_call`.
    pub(crate) fn woken(&mut self, device: &DeviceKey, call_id: &str) -> Sends {
        let mut out = Sends::new();
        if let Err(e) = duet_protocol::check_call_id(call_id) {
            let refusal = Refusal::new(duet_protocol::ErrorCode::InvalidRequest, e, call_id);
            self.dir.send(device, refusal.into_message(), &mut out);
            return out;
        }
        match self.fate_for_woken(device, call_id) {
            Fate::Rings => {}
            Fate::Ended(reason) => self.dir.send(device, closed(call_id, reason), &mut out),
            Fate::Unknown => {
                self.dir.send(device, Refusal::not_in_call(call_id).into_message(), &mut out);
            }
        }
        out
    }

    fn fate_for_woken(&self, device: &DeviceKey, call_id: &str) -> Fate {
        if let Some(call) = self.calls.get(call_id) {
            if call.callee_uid != device.uid {
                return Fate::Unknown;
            }
            return match &call.phase {
                Phase::Ringing { .. } => Fate::Rings,
                Phase::Active { device: Some(d) } if *d == device.device_id => Fate::Rings,
                Phase::Active { .. } => Fate::Ended(CloseReason::AnsweredElsewhere),
            };
        }
        let Some(Grave::Ended(ended)) = self.tombstones.get(call_id).map(|t| &t.kind) else {
            return Fate::Unknown;
        };
        if ended.callee_uid != device.uid {
            return Fate::Unknown;
        }
        match (&ended.answered_by, &ended.to_callee) {
            (Some(d), _) if *d != device.device_id => Fate::Ended(CloseReason::AnsweredElsewhere),
            (_, Some(duet_protocol::ServerMessage::Closed { reason, .. })) => Fate::Ended(*reason),
            (Some(_), _) => Fate::Ended(CloseReason::Hangup),
            (None, _) => Fate::Unknown,
        }
    }
}

enum Fate {
    /// Ringing (the device got `incoming` on connecting), or this device's own call.
    Rings,
    Ended(CloseReason),
    Unknown,
}
