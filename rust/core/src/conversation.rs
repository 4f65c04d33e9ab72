//! `Conversation`: one call, as the app holds it, and the delegate that hears about it.
//!
//! A handle: it answers the app at once from the snapshot the engine publishes, and sends
//! the engine what the app asks (`Command`). The engine does the rest, in order.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use duet_protocol::CallStatus;
use tokio::sync::{mpsc, oneshot, watch};

use crate::delegate_queue::DelegateQueue;
use crate::engine::{Command, ConversationView};
use crate::errors::{ActionError, CallError, WrongState};
use crate::lifecycle::{ConvId, ConversationState, EndReason};
use crate::peer::CallStats;
use crate::streams::{LocalStream, RemoteStream, Sending};
use crate::sync::lock;

/// What happens to a conversation, in the seeds' terms. Called on the VideoCall's event
/// thread, in order, never with an engine lock held. A delegate that falls behind (or is
/// set late) is not handed stale states: of `did_change_remote_media` and
/// `did_change_network_quality`, only the newest of each waits for it; every other event
/// does.
pub trait ConversationDelegate: Send + Sync {
    /// The callee answered: ACCEPTED, REJECTED, BUSY or TIMEOUT. Only the side that placed
    /// the call hears this. Rejected, busy and timeout are followed by `did_close`.
    fn did_receive_response(&self, status: CallStatus);
    /// The other party's media is here.
    fn did_receive_stream(&self, stream: Arc<RemoteStream>);
    /// Something went wrong; `did_close` follows when it ended the call.
    fn did_fail_with_error(&self, error: CallError);
    /// The call ended other than by this side's own `close` or `reject`;
    /// `Conversation::close_reason` says why.
    fn did_close(&self);
    /// The other party turned its camera or microphone off or on; also heard at the start
    /// of a call whose other party sends only one of them. Until then, assume both. May
    /// come before `did_receive_stream`; `RemoteStream::video_enabled` says the same.
    fn did_change_remote_media(&self, video_enabled: bool, audio_enabled: bool) {
        let _ = (video_enabled, audio_enabled);
    }
    /// The media connection during the call: `Reconnecting` when this side's path went down
    /// or the app said the network changed (an ICE restart is under way), `PeerReconnecting`
    /// when the other party said its own path did, `Connected` once media flows again. A
    /// call that does not recover within `ReconnectPolicy::media_timeout` (30 s) ends with
    /// `EndReason::NetworkLost`.
    fn did_change_media_state(&self, state: MediaState) {
        let _ = state;
    }
    /// The network quality of each side changed: what this side receives (`local`) and
    /// what the other side receives (`remote`), 0 (nothing gets through) to 5 (excellent).
    /// `CallStats` carries the same levels.
    fn did_change_network_quality(&self, local: u8, remote: u8) {
        let _ = (local, remote);
    }
}

/// Where a call's media connection stands, as the app can show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaState {
    /// Media flows (again).
    Connected,
    /// This side's path is down or changed; ICE is restarting.
    Reconnecting,
    /// The other party's path is down or changed; ICE is restarting.
    PeerReconnecting,
}

#[derive(Debug, Clone)]
pub(crate) enum DelegateEvent {
    Response(CallStatus),
    Stream(Arc<RemoteStream>),
    Failed(CallError),
    Closed,
    RemoteSending(Sending),
    Media(MediaState),
    Quality { local: u8, remote: u8 },
}

impl DelegateEvent {
    /// Events that say how things stand now and come as often as the network or the other
    /// party likes (what the other party sends, the network quality), by kind: a newer one
    /// makes an older one of the same kind that the app has not been given yet stale, so
    /// only the newest waits. That bounds what waits for a delegate that is slow, stuck, or
    /// not set yet: the rest are a call's few lifecycle events and its media states, which
    /// the engine's own restarts pace (and whose every step an app may want to show).
    fn standing(&self) -> Option<usize> {
        match self {
            DelegateEvent::RemoteSending(_) => Some(0),
            DelegateEvent::Quality { .. } => Some(1),
            _ => None,
        }
    }
}

/// The newest standing event of each kind not yet handed to the event thread.
type Standing = [Option<DelegateEvent>; 2];

#[derive(Default)]
struct DelegateSlot {
    delegate: Option<Arc<dyn ConversationDelegate>>,
    /// Events that came before the app set a delegate, delivered in order once it does
    /// (of the standing ones, only the newest of each kind).
    pending: Vec<DelegateEvent>,
}

/// What the app asked of this conversation that the engine may not have done yet: the
/// app's own view must reflect it at once (a rejected call reads as closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Asked {
    Accept,
    End,
}

pub struct Conversation {
    conv: ConvId,
    remote_uid: String,
    /// This side placed the call: it can never accept or reject it.
    outgoing: bool,
    commands: mpsc::UnboundedSender<Command>,
    view: watch::Receiver<ConversationView>,
    events: DelegateQueue,
    standing: Mutex<Standing>,
    slot: Mutex<DelegateSlot>,
    asked: Mutex<Option<Asked>>,
}

impl std::fmt::Debug for Conversation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conversation")
            .field("conv", &self.conv)
            .field("remote_uid", &self.remote_uid)
            .finish_non_exhaustive()
    }
}

impl Conversation {
    pub(crate) fn new(
        conv: ConvId,
        remote_uid: String,
        outgoing: bool,
        commands: mpsc::UnboundedSender<Command>,
        view: watch::Receiver<ConversationView>,
        events: DelegateQueue,
    ) -> Arc<Self> {
        Arc::new(Conversation {
            conv,
            remote_uid,
            outgoing,
            commands,
            view,
            events,
            standing: Mutex::default(),
            slot: Mutex::new(DelegateSlot::default()),
            asked: Mutex::new(None),
        })
    }

    /// Sets the delegate. Events that arrived before it are delivered to it, in order.
    pub fn set_delegate(self: &Arc<Self>, delegate: Arc<dyn ConversationDelegate>) {
        lock(&self.slot).delegate = Some(delegate);
        let me = Arc::clone(self);
        self.events.push(move || me.flush_pending());
    }

    /// Answers an incoming call with this side's media.
    ///
    /// # Errors
    ///
    /// `Closed` (with why, e.g. answered on another device) when the call is over;
    /// `InvalidState` when this side placed the call or has already accepted it.
    pub fn accept(&self, local_stream: Arc<LocalStream>) -> Result<(), ActionError> {
        let mut asked = lock(&self.asked);
        self.check_ringing(*asked, WrongState::AlreadyAccepted)?;
        self.command(Command::Accept { conv: self.conv, local: local_stream })?;
        *asked = Some(Asked::Accept);
        Ok(())
    }

    /// Declines an incoming call. The caller hears REJECTED.
    ///
    /// # Errors
    ///
    /// `Closed` when the call is over; `InvalidState` when this side placed the call or
    /// has accepted it.
    pub fn reject(&self) -> Result<(), ActionError> {
        let mut asked = lock(&self.asked);
        self.check_ringing(*asked, WrongState::NotRinging)?;
        self.command(Command::Reject { conv: self.conv })?;
        *asked = Some(Asked::End);
        Ok(())
    }

    /// Cancels the call while it rings, or hangs up once it is under way. Does nothing if it
    /// is already over.
    pub fn close(&self) {
        let mut asked = lock(&self.asked);
        if *asked != Some(Asked::End)
            && self.view.borrow().state != ConversationState::Closed
            && self.command(Command::Close { conv: self.conv }).is_ok()
        {
            *asked = Some(Asked::End);
        }
    }

    /// Whether an incoming call can still be answered; `accepted` is the error once it has
    /// been.
    fn check_ringing(&self, asked: Option<Asked>, accepted: WrongState) -> Result<(), ActionError> {
        let view = self.view.borrow();
        match (asked, view.state) {
            (Some(Asked::End), _) => Err(ActionError::Closed(Some(EndReason::Local))),
            (_, ConversationState::Closed) => Err(ActionError::Closed(view.close_reason)),
            _ if self.outgoing => Err(ActionError::InvalidState(WrongState::NotTheCallee)),
            (_, ConversationState::Calling) => {
                Err(ActionError::InvalidState(WrongState::NotTheCallee))
            }
            (Some(Asked::Accept), _)
            | (_, ConversationState::Accepting | ConversationState::Connected) => {
                Err(ActionError::InvalidState(accepted))
            }
            (None, ConversationState::Ringing) => Ok(()),
        }
    }

    fn command(&self, command: Command) -> Result<(), ActionError> {
        // The engine is gone only once its VideoCall has shut down.
        self.commands.send(command).map_err(|_| ActionError::Closed(None))
    }

    /// The uid of the other party.
    pub fn remote_uid(&self) -> &str {
        &self.remote_uid
    }

    /// The id of the call behind this conversation, as the server knows it.
    pub fn call_id(&self) -> Option<String> {
        self.view.borrow().call_id.clone()
    }

    pub fn state(&self) -> ConversationState {
        let state = self.view.borrow().state;
        match (*lock(&self.asked), state) {
            (Some(Asked::End), _) => ConversationState::Closed,
            (Some(Asked::Accept), ConversationState::Ringing) => ConversationState::Accepting,
            _ => state,
        }
    }

    /// What the call's media is doing now; None before its media exists or after it ends.
    pub async fn stats(&self) -> Option<CallStats> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Stats { conv: self.conv, reply }).ok()?;
        answer.await.ok().flatten()
    }

    /// The other party's media, once the call's media exists (also handed to
    /// `did_receive_stream`).
    pub fn remote_stream(&self) -> Option<Arc<RemoteStream>> {
        self.view.borrow().remote_stream.clone()
    }

    /// Why the conversation ended, once it has: the engine's word, or `Local` while this
    /// side's own close is on its way to it.
    pub fn close_reason(&self) -> Option<EndReason> {
        let reason = self.view.borrow().close_reason;
        match *lock(&self.asked) {
            Some(Asked::End) => reason.or(Some(EndReason::Local)),
            _ => reason,
        }
    }

    /// Queues an event for the delegate (called by the engine, which has already published
    /// the snapshot the event leaves behind).
    pub(crate) fn post(self: &Arc<Self>, event: DelegateEvent) {
        let me = Arc::clone(self);
        let Some(kind) = event.standing() else {
            self.events.push(move || me.deliver(event));
            return;
        };
        // One delivery queued per run of standing events of a kind: it hands over the
        // newest, which replaced the others while it waited.
        if lock(&self.standing)[kind].replace(event).is_none() {
            self.events.push(move || {
                let newest = lock(&me.standing)[kind].take();
                if let Some(event) = newest {
                    me.deliver(event);
                }
            });
        }
    }

    /// Runs on the event thread. After `did_close` the delegate is let go: nothing more
    /// will come, and an app delegate that holds its conversation (the seeds' pattern) would
    /// otherwise keep both alive.
    fn deliver(&self, event: DelegateEvent) {
        let last = matches!(event, DelegateEvent::Closed);
        self.deliver_one(event);
        if last {
            let mut slot = lock(&self.slot);
            if slot.pending.is_empty() {
                slot.delegate = None;
            }
        }
    }

    fn deliver_one(&self, event: DelegateEvent) {
        let delegate = {
            let mut slot = lock(&self.slot);
            match &slot.delegate {
                // Anything still pending goes first: `flush_pending` is queued behind us.
                Some(d) if slot.pending.is_empty() => Arc::clone(d),
                _ => {
                    if let Some(kind) = event.standing() {
                        slot.pending.retain(|e| e.standing() != Some(kind));
                    }
                    slot.pending.push(event);
                    return;
                }
            }
        };
        dispatch(&*delegate, event);
    }

    fn flush_pending(&self) {
        let pending = std::mem::take(&mut lock(&self.slot).pending);
        for event in pending {
            self.deliver(event);
        }
    }
}

impl Drop for Conversation {
    /// A conversation nobody holds can never be answered or hung up, so it is hung up now:
    /// no phone rings, and no call runs, without an app object behind it.
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Release { conv: self.conv });
    }
}

fn dispatch(delegate: &dyn ConversationDelegate, event: DelegateEvent) {
    let started = Instant::now();
    match event {
        DelegateEvent::Response(s) => delegate.did_receive_response(s),
        DelegateEvent::Stream(s) => delegate.did_receive_stream(s),
        DelegateEvent::Failed(e) => delegate.did_fail_with_error(e),
        DelegateEvent::Closed => delegate.did_close(),
        DelegateEvent::RemoteSending(s) => delegate.did_change_remote_media(s.video, s.audio),
        DelegateEvent::Media(state) => delegate.did_change_media_state(state),
        DelegateEvent::Quality { local, remote } => {
            delegate.did_change_network_quality(local, remote);
        }
    }
    if started.elapsed().as_millis() > 100 {
        tracing::warn!(
            "a conversation delegate took {:?}; later events waited for it",
            started.elapsed()
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc as std_mpsc;
    use std::time::Duration;

    use super::*;

    /// Records what it hears, as text; its first call waits for `go`, as a stuck app would.
    struct Slow {
        heard: Mutex<Vec<String>>,
        go: Mutex<Option<std_mpsc::Receiver<()>>>,
        done: std_mpsc::Sender<()>,
    }

    impl Slow {
        fn hear(&self, what: String) {
            if let Some(go) = lock(&self.go).take() {
                let _ = go.recv_timeout(Duration::from_secs(10));
            }
            let closed = what == "closed";
            lock(&self.heard).push(what);
            if closed {
                let _ = self.done.send(());
            }
        }
    }

    impl ConversationDelegate for Slow {
        fn did_receive_response(&self, status: CallStatus) {
            self.hear(format!("{status:?}"));
        }
        fn did_receive_stream(&self, _: Arc<RemoteStream>) {
            self.hear("stream".into());
        }
        fn did_fail_with_error(&self, error: CallError) {
            self.hear(format!("{error:?}"));
        }
        fn did_close(&self) {
            self.hear("closed".into());
        }
        fn did_change_media_state(&self, state: MediaState) {
            self.hear(format!("{state:?}"));
        }
        fn did_change_remote_media(&self, video: bool, audio: bool) {
            self.hear(format!("sends {video} {audio}"));
        }
        fn did_change_network_quality(&self, local: u8, remote: u8) {
            self.hear(format!("quality {local} {remote}"));
        }
    }

    fn conversation() -> Arc<Conversation> {
        let (commands, _) = mpsc::unbounded_channel();
        let (_, view) = watch::channel(ConversationView::new(ConversationState::Connected));
        Conversation::new(ConvId(1), "bob".into(), true, commands, view, DelegateQueue::start("t"))
    }

    fn quality(n: u64) -> DelegateEvent {
        DelegateEvent::Quality { local: (n % 6) as u8, remote: (n / 6 % 6) as u8 }
    }

    /// What a stuck delegate has waiting for it stays bounded: standing events collapse to
    /// the newest of each kind, and no lifecycle event is lost or reordered.
    #[test]
    fn a_stuck_delegate_has_only_the_newest_standing_events_waiting() {
        let conv = conversation();
        let (go, wait) = std_mpsc::channel();
        let (done, finished) = std_mpsc::channel();
        let slow = Arc::new(Slow { heard: Mutex::default(), go: Mutex::new(Some(wait)), done });
        conv.set_delegate(slow.clone());
        conv.post(DelegateEvent::Response(CallStatus::Accepted));
        for n in 0..10_000 {
            conv.post(quality(n));
            conv.post(DelegateEvent::RemoteSending(Sending { video: n % 2 == 1, audio: true }));
        }
        conv.post(DelegateEvent::Closed);
        go.send(()).unwrap();
        finished.recv_timeout(Duration::from_secs(10)).unwrap();
        let heard = lock(&slow.heard).clone();
        assert_eq!(heard.first().map(String::as_str), Some("Accepted"));
        assert_eq!(heard.last().map(String::as_str), Some("closed"));
        assert!(heard.len() <= 2 + 2 * 2, "at most one queued and one newest of each: {heard:?}");
        let last_sends = heard.iter().rfind(|h| h.starts_with("sends"));
        assert_eq!(last_sends.map(String::as_str), Some("sends true true"), "{heard:?}");
        let last_quality = heard.iter().rfind(|h| h.starts_with("quality"));
        assert_eq!(last_quality.map(String::as_str), Some("quality 3 4"), "{heard:?}");
    }

    #[test]
    fn events_before_a_delegate_keep_the_newest_standing_ones_in_order() {
        let conv = conversation();
        conv.post(DelegateEvent::Response(CallStatus::Accepted));
        for n in 0..1000 {
            conv.post(quality(n));
        }
        conv.post(DelegateEvent::Media(MediaState::Reconnecting));
        conv.post(DelegateEvent::Closed);
        let (done, finished) = std_mpsc::channel();
        let slow = Arc::new(Slow { heard: Mutex::default(), go: Mutex::new(None), done });
        // Everything posted has reached the pending list once the event thread runs this.
        let (flushed, reached) = std_mpsc::channel();
        conv.events.push(move || flushed.send(()).unwrap());
        reached.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(lock(&conv.slot).pending.len() <= 4, "{}", lock(&conv.slot).pending.len());
        conv.set_delegate(slow.clone());
        finished.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(
            *lock(&slow.heard),
            ["Accepted", "quality 3 4", "Reconnecting", "closed"].map(String::from)
        );
    }
}
