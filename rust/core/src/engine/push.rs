//! Push registration and wake-up, as the engine keeps them: the registration the app asked
//! for until the server acknowledges it (sent again after a reconnect), and the call whose
//! push woke the app until the server says what became of it.

use duet_protocol::{ClientMessage, ErrorCode, ServerMessage};
use tokio::sync::oneshot;

use crate::lifecycle::EndReason;

/// Why a push registration was not kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The token is not one the server accepts (a bad character, too long).
    #[error("invalid push token: {0}")]
    InvalidToken(String),
    /// The server could not keep it (its store full or failing).
    #[error("the server did not keep the push registration: {0}")]
    Refused(String),
    /// The client shut down first.
    #[error("the client shut down")]
    ShutDown,
}

/// What the server's answer to a woken connection means for the woken call.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum WokenNews {
    /// Not about it (or it rings: `incoming` goes to the machine as any call's would).
    Nothing,
    /// It is over for this device; `None` when the server does not know it.
    Ended { call_id: String, reason: Option<EndReason> },
}

#[derive(Default)]
pub(super) struct PushState {
    /// `register_push` or `unregister_push` not acknowledged yet.
    pending: Option<ClientMessage>,
    waiters: Vec<oneshot::Sender<Result<(), PushError>>>,
    woken_for: Option<String>,
}

impl PushState {
    pub(super) fn new(woken_for: Option<String>) -> Self {
        PushState { woken_for, ..PushState::default() }
    }

    /// The app asks to register (or unregister): returns the message to send.
    pub(super) fn ask(
        &mut self,
        msg: ClientMessage,
        reply: oneshot::Sender<Result<(), PushError>>,
    ) -> ClientMessage {
        self.pending = Some(msg.clone());
        self.waiters.push(reply);
        msg
    }

    /// What to send again after a reconnect: the registration may not have arrived.
    pub(super) fn unacknowledged(&self) -> Option<ClientMessage> {
        self.pending.clone()
    }

    /// Takes the server's answers to registrations; true if `msg` was one (and is consumed).
    pub(super) fn on_answer(&mut self, msg: &ServerMessage) -> bool {
        let outcome = match msg {
            ServerMessage::PushRegistered | ServerMessage::PushUnregistered => Ok(()),
            ServerMessage::Error {
                code: code @ (ErrorCode::InvalidRequest | ErrorCode::InvalidState),
                message,
                call_id: None,
            } if self.pending.is_some() => Err(if *code == ErrorCode::InvalidRequest {
                PushError::InvalidToken(message.clone())
            } else {
                PushError::Refused(message.clone())
            }),
            _ => return false,
        };
        self.pending = None;
        for waiter in self.waiters.drain(..) {
            let _ = waiter.send(outcome.clone());
        }
        true
    }

    /// Whether `msg` settles the woken call.
    pub(super) fn on_woken_news(&mut self, msg: &ServerMessage) -> WokenNews {
        let Some(woken) = self.woken_for.as_deref() else { return WokenNews::Nothing };
        let reason = match msg {
            ServerMessage::Incoming { call_id, .. } if call_id == woken => {
                self.woken_for = None;
                return WokenNews::Nothing;
            }
            ServerMessage::Closed { call_id, reason } if call_id == woken => {
                Some(EndReason::from(*reason))
            }
            ServerMessage::Error { code: ErrorCode::NotInCall, call_id: Some(id), .. }
                if id == woken =>
            {
                None
            }
            _ => return WokenNews::Nothing,
        };
        WokenNews::Ended { call_id: self.woken_for.take().unwrap_or_default(), reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use duet_protocol::{CloseReason, PushToken};

    #[test]
    fn an_answer_settles_every_waiter_and_a_refusal_says_why() {
        let mut state = PushState::new(None);
        let (tx, mut rx) = oneshot::channel();
        let msg = ClientMessage::RegisterPush { push: PushToken::Fcm { token: "t".into() } };
        state.ask(msg, tx);
        assert!(state.unacknowledged().is_some());
        assert!(state.on_answer(&ServerMessage::PushRegistered));
        assert_eq!(rx.try_recv(), Ok(Ok(())));
        assert!(state.unacknowledged().is_none());
        let (tx, mut rx) = oneshot::channel();
        state.ask(ClientMessage::UnregisterPush, tx);
        let refusal = ServerMessage::error(ErrorCode::InvalidState, "full", None);
        assert!(state.on_answer(&refusal));
        assert_eq!(rx.try_recv(), Ok(Err(PushError::Refused("full".into()))));
        // An error with nothing pending is not about pushes.
        assert!(!state.on_answer(&refusal));
    }

    #[test]
    fn the_woken_call_is_settled_by_its_end_or_by_ringing() {
        let mut state = PushState::new(Some("c1".into()));
        let other = ServerMessage::Closed { call_id: "c2".into(), reason: CloseReason::Hangup };
        assert_eq!(state.on_woken_news(&other), WokenNews::Nothing);
        let closed = ServerMessage::Closed { call_id: "c1".into(), reason: CloseReason::Cancelled };
        assert_eq!(
            state.on_woken_news(&closed),
            WokenNews::Ended { call_id: "c1".into(), reason: Some(EndReason::Cancelled) }
        );
        assert_eq!(state.on_woken_news(&closed), WokenNews::Nothing, "told once");
        let mut state = PushState::new(Some("c1".into()));
        let unknown = ServerMessage::error(ErrorCode::NotInCall, "no", Some("c1"));
        assert_eq!(
            state.on_woken_news(&unknown),
            WokenNews::Ended { call_id: "c1".into(), reason: None }
        );
    }
}
