//! The engine's side of peer sessions: building them off its task, hearing back from them,
//! and answering the app's questions about them.

use std::sync::Arc;
use std::time::Instant;

use duet_protocol::{IceTransportPolicy, SdpType};
use tokio::sync::oneshot;

use super::records::PeerSlot;
use super::Engine;
use crate::conversation::DelegateEvent;
use crate::lifecycle::ConvId;
use crate::peer::{CallStats, PeerError, PeerEvent, PeerParams, PeerSession, Role};

/// What the engine's own spawned work reports back.
pub(crate) enum Note {
    /// A peer session was built (or failed to be), with its description.
    Built {
        conv: ConvId,
        build: u64,
        role: Role,
        result: Result<(Box<PeerSession>, String), PeerError>,
    },
    /// The callee's answer could not be applied.
    AnswerRefused { conv: ConvId, error: PeerError },
    /// An ICE-restart offer was made (the caller's side).
    RestartOffer { conv: ConvId, result: Result<String, PeerError> },
    /// The peer's ICE-restart offer was answered (the callee's side).
    RestartAnswer { conv: ConvId, result: Result<String, PeerError> },
    /// The peer's answer to a restart offer was applied, or refused.
    RestartAnswered { conv: ConvId, result: Result<(), PeerError> },
}

impl Engine {
    /// Builds a conversation's peer session and its description (an offer, or the answer
    /// to `remote_sdp`) off the engine's task; `Note::Built` brings it back. A session that
    /// pre-connects is built without the app's stream, which it gets at the accept.
    pub(super) fn build_peer(
        &mut self,
        conv: ConvId,
        call_id: String,
        policy: IceTransportPolicy,
        remote_sdp: Option<Option<String>>,
        pre_connect: bool,
    ) {
        let Some(record) = self.calls.get_mut(&conv) else { return };
        let local = record.local.clone();
        if local.is_none() && !pre_connect {
            let error = PeerError::Setup(webrtc::error::Error::Other("no local stream".into()));
            return self.machine.media_failed(Instant::now(), conv, error.into());
        }
        self.next_build += 1;
        let build = self.next_build;
        record.peer = PeerSlot::Building(build);
        let params = PeerParams {
            conv,
            call_id,
            local,
            ice_servers: self.info.ice_servers.clone(),
            policy,
            config: self.media.clone(),
            events: self.peer_events_tx.clone(),
        };
        let (role, remote_sdp) = match remote_sdp {
            None => (Role::Offer, None),
            Some(sdp) => (Role::Answer, sdp),
        };
        let notes = self.notes_tx.clone();
        tokio::spawn(async move {
            let result = Box::pin(PeerSession::start(params, role, remote_sdp))
                .await
                .map(|(session, sdp)| (Box::new(session), sdp));
            if let Err(unsent) = notes.send(Note::Built { conv, build, role, result }) {
                // The engine is gone: nobody will ever use this session.
                if let Note::Built { result: Ok((session, _)), .. } = unsent.0 {
                    session.close().await;
                }
            }
        });
    }

    /// Applies the callee's answer to the caller's session.
    pub(super) fn apply_answer(&mut self, conv: ConvId, answer: String) {
        let Some(PeerSlot::Ready(session)) = self.calls.get(&conv).map(|r| &r.peer) else { return };
        let session = Arc::clone(session);
        let notes = self.notes_tx.clone();
        tokio::spawn(async move {
            if let Err(error) = session.accept_answer(answer).await {
                let _ = notes.send(Note::AnswerRefused { conv, error });
            }
        });
    }

    pub(super) fn note(&mut self, now: Instant, note: Note) {
        match note {
            Note::Built { conv, build, role, result } => self.built(now, conv, build, role, result),
            Note::AnswerRefused { conv, error } => {
                tracing::warn!(conv = conv.0, "the callee's answer: {error}");
                self.machine.media_failed(now, conv, error.into());
            }
            Note::RestartOffer { conv, result } => self.restart_done(conv, SdpType::Offer, result),
            Note::RestartAnswer { conv, result } => {
                self.restart_done(conv, SdpType::Answer, result);
            }
            Note::RestartAnswered { conv, result } => {
                if let Err(e) = &result {
                    tracing::warn!(conv = conv.0, "the peer's ICE-restart answer: {e}");
                }
                self.restart_answered(conv, result.is_ok());
            }
        }
    }

    fn built(
        &mut self,
        now: Instant,
        conv: ConvId,
        build: u64,
        role: Role,
        result: Result<(Box<PeerSession>, String), PeerError>,
    ) {
        let current = self
            .calls
            .get(&conv)
            .is_some_and(|r| matches!(r.peer, PeerSlot::Building(b) if b == build));
        let (session, sdp) = match result {
            // A build that glare or an ended call made moot.
            Ok((session, _)) if !current => return self.closing.close(Arc::from(session)),
            Err(_) if !current => return,
            Ok(built) => built,
            Err(error) => {
                tracing::warn!(conv = conv.0, "peer session failed: {error}");
                return self.machine.media_failed(now, conv, error.into());
            }
        };
        let applied = match role {
            Role::Offer => self.machine.offer_ready(now, conv, sdp),
            Role::Answer => self.machine.answer_ready(now, conv, sdp),
        };
        let Some(record) = self.calls.get_mut(&conv) else { return };
        let session: Arc<PeerSession> = Arc::from(session);
        if applied.is_err() {
            record.peer = PeerSlot::None;
            return self.closing.close(session);
        }
        for signal in std::mem::take(&mut record.early_signals) {
            session.remote_signal(signal);
        }
        let remote = session.remote_stream();
        record.view.send_modify(|v| v.remote_stream = Some(remote));
        record.peer = PeerSlot::Ready(Arc::clone(&session));
        // Accepted while a pre-connecting session was being built.
        self.attach_local(now, conv);
        if self.machine.state(conv) == crate::lifecycle::ConversationState::Connected {
            session.start_media();
        }
    }

    /// Feeds a conversation's session from the app's stream, once it has both (a
    /// pre-connected session gets the stream at the accept).
    pub(super) fn attach_local(&mut self, now: Instant, conv: ConvId) {
        let Some(record) = self.calls.get(&conv) else { return };
        let (PeerSlot::Ready(session), Some(local)) = (&record.peer, &record.local) else { return };
        // An encoder that cannot be made is heard of as the session's event: the call is
        // agreed already, and the engine does not wait for a codec.
        match session.attach(local) {
            Ok(encoder_made) => drop(encoder_made),
            Err(error) => {
                tracing::warn!(conv = conv.0, "the local stream: {error}");
                self.machine.media_failed(now, conv, error.into());
            }
        }
    }

    /// Both sides agreed to the call: its media may flow.
    pub(super) fn start_media(&self, conv: ConvId) {
        if let Some(PeerSlot::Ready(session)) = self.calls.get(&conv).map(|r| &r.peer) {
            session.start_media();
        }
    }

    pub(super) fn peer_event(&mut self, now: Instant, event: PeerEvent) {
        match event {
            PeerEvent::LocalSignal(conv, signal) => {
                // A signal for a call that ended is of no use to anyone.
                let _ = self.machine.signal(conv, signal);
            }
            PeerEvent::RemoteSending(conv, sending) => {
                self.post(conv, DelegateEvent::RemoteSending(sending), None);
            }
            PeerEvent::Stream(conv, remote) => self.post(conv, DelegateEvent::Stream(remote), None),
            PeerEvent::Failed(conv, error) => {
                tracing::warn!(conv = conv.0, "peer session failed: {error}");
                self.machine.media_failed(now, conv, error.into());
            }
            PeerEvent::Path(conv, up) => self.path_changed(now, conv, up),
            PeerEvent::Quality(conv, levels) => {
                let event = DelegateEvent::Quality { local: levels.local, remote: levels.remote };
                self.post(conv, event, None);
            }
        }
    }

    /// Answers from the conversation's session, without holding up the engine's loop.
    pub(super) fn stats(&self, conv: ConvId, reply: oneshot::Sender<Option<CallStats>>) {
        match self.calls.get(&conv).map(|r| &r.peer) {
            Some(PeerSlot::Ready(session)) => {
                let session = Arc::clone(session);
                tokio::spawn(async move {
                    let _ = reply.send(Some(session.stats().await));
                });
            }
            _ => {
                let _ = reply.send(None);
            }
        }
    }
}
