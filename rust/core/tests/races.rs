//! Races at the edges of a call, each run many times: what the app sees must not depend on
//! which thread won.

// A test that fails says so loudly; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use duet_core::*;
use duet_server::ServerConfig;
use support::proxy::Proxy;
use support::*;

/// Two devices of one uid accept the same call at the same instant. One wins; the other's
/// `accept` either fails saying the call was answered elsewhere, or succeeds and is then
/// closed as answered elsewhere. An app whose accept failed lets go of the conversation at
/// once; its delegate still hears `did_close`, with that reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_accepting_at_once_one_wins_and_the_other_hears_it() {
    let srv = server(quick_config()).await;
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut phone = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let mut tablet = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    for round in 0..10 {
        let out = alice.call("bob", None);
        let (on_phone, _) = phone.called().await;
        let (on_tablet, _) = tablet.called().await;
        let (phone_kept, tablet_kept) = accept_together(on_phone, on_tablet);
        alice.response(CallStatus::Accepted).await;
        alice.stream().await;
        let (phone_heard, tablet_heard) = (phone.next().await, tablet.next().await);
        let (winner, winner_conv, loser_conv) = match (phone_heard, tablet_heard) {
            (Ev::Stream, Ev::Closed) => (&mut phone, phone_kept, tablet_kept),
            (Ev::Closed, Ev::Stream) => (&mut tablet, tablet_kept, phone_kept),
            other => panic!("round {round}: one streams, the other closes; got {other:?}"),
        };
        if let Some(loser) = loser_conv {
            assert_eq!(loser.close_reason(), Some(EndReason::AnsweredElsewhere), "round {round}");
            assert_eq!(loser.state(), ConversationState::Closed);
        }
        out.close();
        let winner_conv = winner_conv.expect("the winner's accept succeeded");
        winner.closed(&winner_conv, EndReason::Hangup).await;
    }
    phone.quiet(Duration::from_millis(50)).await;
    tablet.quiet(Duration::from_millis(10)).await;
}

/// Accepts both conversations from two threads released at the same instant. A thread
/// whose accept fails checks the error and drops the conversation, as an app that gives
/// up on it would; one whose accept succeeds hands it back.
fn accept_together(
    a: Arc<Conversation>,
    b: Arc<Conversation>,
) -> (Option<Arc<Conversation>>, Option<Arc<Conversation>>) {
    let barrier = Arc::new(Barrier::new(2));
    let accept = |c: Arc<Conversation>| {
        // The synthetic camera needs the runtime: made here, not on the thread.
        let (barrier, stream) = (Arc::clone(&barrier), small_stream());
        std::thread::spawn(move || {
            barrier.wait();
            match c.accept(stream) {
                Ok(()) => Some(c),
                Err(e) => {
                    assert_eq!(e, ActionError::Closed(Some(EndReason::AnsweredElsewhere)));
                    None
                }
            }
        })
    };
    let (a, b) = (accept(a), accept(b));
    (a.join().expect("accepting thread"), b.join().expect("accepting thread"))
}

/// A device whose app sees the call answered elsewhere and lets go of the conversation the
/// same instant still tells its delegate why the call ended: the event is queued before
/// the state that shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_that_lets_go_of_a_call_answered_elsewhere_still_hears_why() {
    let srv = server(quick_config()).await;
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut phone = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let mut tablet = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    for round in 0..20 {
        let out = alice.call("bob", None);
        let (on_phone, _) = phone.called().await;
        let (on_tablet, _) = tablet.called().await;
        on_phone.accept(small_stream()).unwrap();
        let deadline = std::time::Instant::now() + PATIENCE;
        while on_tablet.state() != ConversationState::Closed {
            assert!(std::time::Instant::now() < deadline, "round {round}: never closed");
            tokio::task::yield_now().await;
        }
        assert_eq!(
            on_tablet.accept(small_stream()),
            Err(ActionError::Closed(Some(EndReason::AnsweredElsewhere))),
            "round {round}"
        );
        drop(on_tablet);
        match tablet.next().await {
            Ev::Closed => {}
            other => panic!("round {round}: expected did_close, got {other:?}"),
        }
        alice.response(CallStatus::Accepted).await;
        alice.stream().await;
        phone.stream().await;
        out.close();
        phone.closed(&on_phone, EndReason::Hangup).await;
    }
}

/// A reject said while the link is down, by an app that shuts down right after, still
/// reaches the caller as REJECTED: the engine reconnects once to say it, rather than leave
/// the caller to hear nothing until the grace period ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reject_said_while_the_link_is_down_still_reaches_the_caller_at_shutdown() {
    let srv = server(ServerConfig { grace: Duration::from_secs(10), ..quick_config() }).await;
    let proxy = Proxy::start(srv.local_addr()).await;
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    for round in 0..5 {
        let mut bob = Peer::connect(&proxy.url(), srv.secret(), "bob").await;
        let out = alice.call("bob", None);
        let (inc, _) = bob.called().await;
        proxy.block();
        eventually("bob notices the cut", || !bob.video.is_connected()).await;
        inc.reject().unwrap();
        drop(inc);
        // The network is back, and the app shuts down before the engine's next retry.
        proxy.heal();
        bob.video.shutdown().await;
        match alice.next().await {
            Ev::Response(CallStatus::Rejected) => {}
            other => panic!("round {round}: expected REJECTED, got {other:?}"),
        }
        alice.closed(&out, EndReason::Rejected).await;
    }
}

/// A callee that rejects and shuts down at once: the reject reaches the caller as
/// REJECTED, never as silence until a timeout or the grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callee_that_rejects_and_shuts_down_at_once_is_heard_as_rejected() {
    let srv = server(quick_config()).await;
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    for round in 0..20 {
        let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
        let out = alice.call("bob", None);
        let (inc, _) = bob.called().await;
        inc.reject().unwrap();
        drop(inc);
        bob.video.shutdown().await;
        match alice.next().await {
            Ev::Response(CallStatus::Rejected) => {}
            other => panic!("round {round}: expected REJECTED, got {other:?}"),
        }
        alice.closed(&out, EndReason::Rejected).await;
    }
}
