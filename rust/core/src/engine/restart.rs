//! ICE restart: how a call survives a changed network or a path that stopped working.
//!
//! A call's media path is "down" from the moment ICE reports it disconnected or failed, the
//! app says the network changed (`VideoCall::network_changed`, which also reconnects
//! signaling at once), or signaling reconnects during the call; it is up again when ICE
//! connects. While it is down:
//! - the conversation's delegate hears `MediaState::Reconnecting`, and the other party a
//!   `reconnecting` signal (its delegate hears `PeerReconnecting`);
//! - the caller makes an ICE-restart offer (with the latest `welcome`'s TURN servers), the
//!   callee answers it; a callee whose path is down asks for one with its `reconnecting`.
//!   Only the caller offers, so the two sides never offer at once (docs/protocol.md);
//! - after `ReconnectPolicy::media_timeout` without recovery the call ends with
//!   `EndReason::NetworkLost`.
//!
//! The restart binds new sockets and releases the TURN allocations of the old ones
//! (`setup::setting_engine`), so a restart leaves no allocation behind.

use std::sync::Arc;
use std::time::Instant;

use duet_protocol::{SdpType, Signal};

use super::peer_work::Note;
use super::records::PeerSlot;
use super::Engine;
use crate::conversation::{DelegateEvent, MediaState};
use crate::errors::CallError;
use crate::lifecycle::ConvId;
use crate::peer::PeerSession;

/// A call's media path, as the engine follows it for restarts.
#[derive(Debug, Default)]
pub(super) struct Recovery {
    /// When this side's path went down; `None` while it is up.
    down_since: Option<Instant>,
    /// The other party said its path is down, and ours has not come up since.
    peer_down: bool,
    /// A restart offer is out and not answered (the caller's side).
    offering: bool,
    /// Another restart was asked for while an offer was out: made once it is answered.
    again: bool,
}

impl Engine {
    /// The app says the device's network changed: every call under way is reconnecting, and
    /// signaling reconnects at once. Its connection is bound to the old network and likely
    /// dead, and waiting for the keepalive to notice cost about 5 s (issue 11: video came
    /// back 5.1 s after an address change); a new one takes milliseconds, and its `welcome`
    /// restarts ICE on every call (`link_back`) with fresh TURN credentials. A restart offer
    /// made before then would go out over the dead connection and be lost.
    pub(super) fn network_changed(&mut self, now: Instant) {
        let convs: Vec<ConvId> = self.calls.keys().copied().collect();
        for conv in convs {
            self.mark_down(now, conv);
        }
        if self.link.take().is_some() {
            tracing::info!("the network changed: reconnecting signaling, then restarting ICE");
            self.lost_link();
            self.reconnect.at_once();
        }
    }

    /// Signaling came back: a call under way restarts ICE, since what took signaling down
    /// (a changed address, a dead link) has likely taken the media path with it, and an
    /// offer sent over the old link may be lost.
    pub(super) fn link_back(&mut self, now: Instant) {
        let convs: Vec<ConvId> = self.calls.keys().copied().collect();
        for conv in convs {
            if let Some(r) = self.calls.get_mut(&conv) {
                r.recovery.offering = false;
            }
            self.path_lost(now, conv, true);
        }
    }

    /// ICE says the path went down (`false`) or came up (`true`).
    pub(super) fn path_changed(&mut self, now: Instant, conv: ConvId, up: bool) {
        if !up {
            return self.path_lost(now, conv, false);
        }
        let Some(record) = self.calls.get_mut(&conv) else { return };
        let r = &mut record.recovery;
        let was_down = r.down_since.take().is_some() || std::mem::take(&mut r.peer_down);
        if was_down {
            tracing::info!(conv = conv.0, "media connection back");
            self.post(conv, DelegateEvent::Media(MediaState::Connected), None);
        }
    }

    /// This side's path is down (or about to be, `force`: the network changed): tells the
    /// app and the peer the first time, and restarts ICE.
    fn path_lost(&mut self, now: Instant, conv: ConvId, force: bool) {
        let Some(offerer) = self.machine.restart_offerer(conv) else { return };
        let offering = self.calls.get(&conv).is_some_and(|r| r.recovery.offering);
        let newly = self.mark_down(now, conv);
        if !newly && !force && offering {
            return;
        }
        if newly || !offerer {
            // The callee's asks the caller for an offer; the caller's tells the callee why
            // one comes.
            let _ = self.machine.signal(conv, Signal::Reconnecting);
        }
        if offerer {
            self.restart_offer(conv);
        }
    }

    /// Marks a call under way reconnecting (the app hears it the first time); true if it
    /// was not already.
    fn mark_down(&mut self, now: Instant, conv: ConvId) -> bool {
        if self.machine.restart_offerer(conv).is_none() {
            return false;
        }
        let Some(record) = self.calls.get_mut(&conv) else { return false };
        let newly = record.recovery.down_since.is_none();
        record.recovery.down_since.get_or_insert(now);
        if newly {
            tracing::info!(conv = conv.0, "media connection down; restarting ICE");
            self.post(conv, DelegateEvent::Media(MediaState::Reconnecting), None);
        }
        newly
    }

    /// A restart signal from the peer: its `reconnecting`, or an offer or answer.
    pub(super) fn restart_signal(&mut self, conv: ConvId, signal: Signal) {
        let Some(session) = self.ready_session(conv) else { return };
        match signal {
            Signal::Reconnecting => {
                self.peer_down(conv);
                if self.machine.restart_offerer(conv) == Some(true) {
                    self.restart_offer(conv);
                }
            }
            Signal::Description { sdp_type: SdpType::Offer, sdp } => {
                self.peer_down(conv);
                let servers = self.info.ice_servers.clone();
                self.spawn_note(async move {
                    Note::RestartAnswer {
                        conv,
                        result: session.restart_answer(&servers, sdp).await,
                    }
                });
            }
            Signal::Description { sdp_type: SdpType::Answer, sdp } => {
                self.spawn_note(async move {
                    Note::RestartAnswered { conv, result: session.accept_answer(sdp).await }
                });
            }
            other => tracing::debug!(conv = conv.0, ?other, "not a restart signal"),
        }
    }

    /// The peer says its path is down: the app hears it, unless ours is down too.
    fn peer_down(&mut self, conv: ConvId) {
        let Some(record) = self.calls.get_mut(&conv) else { return };
        let r = &mut record.recovery;
        if r.down_since.is_none() && !r.peer_down {
            r.peer_down = true;
            self.post(conv, DelegateEvent::Media(MediaState::PeerReconnecting), None);
        }
    }

    /// Makes a restart offer, or asks for one more once the one out is answered.
    fn restart_offer(&mut self, conv: ConvId) {
        let Some(session) = self.ready_session(conv) else { return };
        let Some(record) = self.calls.get_mut(&conv) else { return };
        if record.recovery.offering {
            record.recovery.again = true;
            return;
        }
        record.recovery.offering = true;
        let servers = self.info.ice_servers.clone();
        self.spawn_note(async move {
            Note::RestartOffer { conv, result: session.restart_offer(&servers).await }
        });
    }

    /// What came of a restart's offer, answer or the applying of an answer.
    pub(super) fn restart_done(
        &mut self,
        conv: ConvId,
        sdp_type: SdpType,
        result: Result<String, crate::peer::PeerError>,
    ) {
        match result {
            Ok(sdp) => {
                let _ = self.machine.signal(conv, Signal::Description { sdp_type, sdp });
            }
            // The call goes on down; the next trigger or the media timeout decides.
            Err(e) => {
                tracing::warn!(conv = conv.0, "ICE restart ({sdp_type:?}): {e}");
                if let Some(r) = self.calls.get_mut(&conv) {
                    r.recovery.offering &= sdp_type != SdpType::Offer;
                }
            }
        }
    }

    /// The caller's restart offer was answered (or the answer refused).
    pub(super) fn restart_answered(&mut self, conv: ConvId, ok: bool) {
        let Some(record) = self.calls.get_mut(&conv) else { return };
        let again = std::mem::take(&mut record.recovery.again);
        record.recovery.offering = false;
        if !ok || again {
            self.restart_offer(conv);
        }
    }

    /// When the first call whose media stays down must end.
    pub(super) fn media_deadline(&self) -> Option<Instant> {
        let bound = self.reconnect.media_timeout();
        self.calls.values().filter_map(|r| r.recovery.down_since).min().map(|since| since + bound)
    }

    /// Ends the calls whose media stayed down past the bound.
    pub(super) fn media_deadline_passed(&mut self, now: Instant) {
        let bound = self.reconnect.media_timeout();
        let lost: Vec<ConvId> = self
            .calls
            .iter()
            .filter(|(_, r)| r.recovery.down_since.is_some_and(|s| now >= s + bound))
            .map(|(c, _)| *c)
            .collect();
        for conv in lost {
            tracing::warn!(conv = conv.0, "media did not recover in {bound:?}; ending the call");
            if let Some(r) = self.calls.get_mut(&conv) {
                r.recovery.down_since = None;
            }
            self.machine.media_failed(now, conv, CallError::NetworkLost);
        }
    }

    fn ready_session(&self, conv: ConvId) -> Option<Arc<PeerSession>> {
        match self.calls.get(&conv).map(|r| &r.peer) {
            Some(PeerSlot::Ready(session)) => Some(Arc::clone(session)),
            _ => None,
        }
    }

    fn spawn_note(&self, work: impl std::future::Future<Output = Note> + Send + 'static) {
        let notes = self.notes_tx.clone();
        tokio::spawn(async move {
            let _ = notes.send(work.await);
        });
    }
}
