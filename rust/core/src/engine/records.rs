//! What the engine keeps for each conversation beside the lifecycle machine's view of its
//! call: the app's handle, the snapshot it reads, the local stream, the peer session and
//! the peer's signals that came before the session did.

use std::sync::{Arc, Weak};
use std::time::Duration;

use duet_protocol::Signal;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::restart::Recovery;
use super::views::ConversationView;
use crate::conversation::Conversation;
use crate::peer::PeerSession;
use crate::streams::LocalStream;

/// Remote signals kept for a call whose peer session does not exist yet (a ringing callee
/// hears the caller's candidates before it has one); more than this is a misbehaving peer.
pub(super) const MAX_EARLY_SIGNALS: usize = 64;

pub(super) struct CallRecord {
    pub conversation: Weak<Conversation>,
    pub view: watch::Sender<ConversationView>,
    pub local: Option<Arc<LocalStream>>,
    pub peer: PeerSlot,
    pub early_signals: Vec<Signal>,
    /// Where the media path stands for ICE restarts.
    pub recovery: Recovery,
}

/// Where a conversation's peer session stands.
pub(super) enum PeerSlot {
    None,
    /// Being built; the number tells this build from an earlier one that glare made moot.
    Building(u64),
    Ready(Arc<PeerSession>),
}

impl CallRecord {
    pub(super) fn new(
        conversation: Weak<Conversation>,
        view: watch::Sender<ConversationView>,
        local: Option<Arc<LocalStream>>,
    ) -> Self {
        CallRecord {
            conversation,
            view,
            local,
            peer: PeerSlot::None,
            early_signals: Vec::new(),
            recovery: Recovery::default(),
        }
    }

    /// Hands a signal to the peer session, or keeps it until there is one.
    pub(super) fn remote_signal(&mut self, signal: Signal) {
        match &self.peer {
            PeerSlot::Ready(session) => session.remote_signal(signal),
            _ if self.early_signals.len() < MAX_EARLY_SIGNALS => self.early_signals.push(signal),
            _ => {}
        }
    }

    /// Takes the peer session out, ending any build under way; the caller closes it.
    pub(super) fn take_peer(&mut self) -> Option<Arc<PeerSession>> {
        match std::mem::replace(&mut self.peer, PeerSlot::None) {
            PeerSlot::Ready(session) => Some(session),
            _ => None,
        }
    }
}

/// Peer sessions being closed off the engine's task (closing waits on webrtc-rs). The
/// engine waits for them before it ends: a close cut short by the process exiting right
/// after a hang-up never sends the TURN allocation releases, and the allocations then
/// linger on the server until they expire, 10 minutes (issue 11).
#[derive(Default)]
pub(super) struct Closing(JoinSet<()>);

impl Closing {
    pub(super) fn close(&mut self, session: Arc<PeerSession>) {
        // Forget the closes that are done, so the set holds only those under way.
        while self.0.try_join_next().is_some() {}
        self.0.spawn(async move { session.close().await });
    }

    /// Waits for the closes under way, at most `bound`; those that take longer go on
    /// unwaited, as before the engine waited at all.
    pub(super) async fn wait(&mut self, bound: Duration) {
        let all = async { while self.0.join_next().await.is_some() {} };
        if tokio::time::timeout(bound, all).await.is_err() {
            self.0.detach_all();
        }
    }
}
