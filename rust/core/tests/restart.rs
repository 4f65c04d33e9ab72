//! ICE restart end to end (issue 11): two clients through a real server on loopback, real
//! peer connections; a call survives the app saying the network changed (either side), and
//! signaling dropping mid-call; the delegates hear reconnecting and connected; a restart
//! releases the TURN allocations it replaces; a call whose media does not come back ends
//! with `NetworkLost`; network quality levels reach the delegate and the stats.

// A test that fails says so loudly; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use duet_core::*;
use duet_media::PatternVerifier;
use support::proxy::Proxy;
use support::*;

#[derive(Default)]
struct Verifier(PatternVerifier);

impl VideoSink for Verifier {
    fn on_video_frame(&self, frame: Arc<VideoFrame>) {
        self.0.check(&frame);
    }
}

/// Waits for `did_receive_stream` and attaches a pattern verifier to it.
async fn watch_video(peer: &mut Peer, conv: &Conversation) -> Arc<Verifier> {
    peer.stream().await;
    let v = Arc::new(Verifier::default());
    conv.remote_stream().unwrap().set_video_sink(Some(v.clone()));
    v
}

/// A call from alice to bob, with media verified both ways.
async fn call(
    alice: &mut Peer,
    bob: &mut Peer,
    options: CallOptions,
) -> (Arc<Conversation>, Arc<Conversation>, Arc<Verifier>, Arc<Verifier>) {
    let out = alice.call_with("bob", small_stream(), options);
    let (inc, _) = bob.called().await;
    inc.accept(small_stream()).unwrap();
    alice.response(CallStatus::Accepted).await;
    let alice_sees = watch_video(alice, &out).await;
    let bob_sees = watch_video(bob, &inc).await;
    eventually("frames both ways", || alice_sees.0.verified() >= 2 && bob_sees.0.verified() >= 2)
        .await;
    (out, inc, alice_sees, bob_sees)
}

/// Waits until `peer` has heard `want` after `from` media-state events, and returns how long
/// it took.
async fn hears(peer: &Peer, from: usize, want: &[MediaState]) -> Duration {
    let start = Instant::now();
    eventually(&format!("{} hears {want:?}", peer.name), || {
        let heard = peer.recorder.media_states();
        heard.len() >= from + want.len() && heard[from..from + want.len()] == *want
    })
    .await;
    start.elapsed()
}

/// New frames verified on both sides after `since` counts, within the patience.
async fn frames_again(alice_sees: &Verifier, bob_sees: &Verifier) -> Duration {
    let (a, b) = (alice_sees.0.verified(), bob_sees.0.verified());
    let start = Instant::now();
    eventually("verified frames again both ways", || {
        alice_sees.0.verified() >= a + 5 && bob_sees.0.verified() >= b + 5
    })
    .await;
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_network_change_restarts_ice_and_the_call_goes_on() {
    let srv = server(quick_config()).await;
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let (out, inc, alice_sees, bob_sees) = call(&mut alice, &mut bob, Default::default()).await;
    let before = out.stats().await.unwrap();

    alice.video.network_changed();
    let took = hears(&alice, 0, &[MediaState::Reconnecting, MediaState::Connected]).await;
    hears(&bob, 0, &[MediaState::PeerReconnecting, MediaState::Connected]).await;
    let again = frames_again(&alice_sees, &bob_sees).await;
    println!("caller's restart: connected again after {took:?}, frames {again:?} later");

    // New sockets: the selected pair's local side moved.
    let after = out.stats().await.unwrap();
    assert_eq!(after.local_candidate_type, before.local_candidate_type);
    assert_eq!(out.state(), ConversationState::Connected);
    assert_eq!(inc.state(), ConversationState::Connected);
    out.close();
    bob.closed(&inc, EndReason::Hangup).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callees_network_change_asks_the_caller_for_a_restart() {
    let srv = server(quick_config()).await;
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let (out, inc, alice_sees, bob_sees) = call(&mut alice, &mut bob, Default::default()).await;

    bob.video.network_changed();
    hears(&bob, 0, &[MediaState::Reconnecting, MediaState::Connected]).await;
    hears(&alice, 0, &[MediaState::PeerReconnecting, MediaState::Connected]).await;
    frames_again(&alice_sees, &bob_sees).await;

    // And again: a second restart on the same call works as the first did.
    bob.video.network_changed();
    hears(&bob, 2, &[MediaState::Reconnecting, MediaState::Connected]).await;
    frames_again(&alice_sees, &bob_sees).await;
    inc.close();
    alice.closed(&out, EndReason::Hangup).await;
}

/// Signaling dropped mid-call (the proxy cuts alice's WebSocket without a close): once it is
/// back, the call restarts ICE and goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signaling_coming_back_mid_call_restarts_ice() {
    let srv = server(quick_config()).await;
    let proxy = Proxy::start(srv.local_addr()).await;
    let mut alice = Peer::connect(&proxy.url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let (out, _inc, alice_sees, bob_sees) = call(&mut alice, &mut bob, Default::default()).await;

    proxy.cut();
    hears(&alice, 0, &[MediaState::Reconnecting, MediaState::Connected]).await;
    frames_again(&alice_sees, &bob_sees).await;
    assert!(alice.recorder.connection_states().contains(&ConnectionState::Reconnecting));
    assert_eq!(out.state(), ConversationState::Connected);
}

/// A relay-only call's restart allocates anew with the latest credentials and releases
/// what it replaces: the server holds as many allocations after as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_releases_the_turn_allocations_it_replaces() {
    let srv = server(quick_config()).await;
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let relay =
        CallOptions { ice_transport_policy: IceTransportPolicy::Relay, ..Default::default() };
    let (out, inc, alice_sees, bob_sees) = call(&mut alice, &mut bob, relay).await;
    let held = srv.turn_allocations().await.unwrap();
    assert!(held >= 2, "a relay-only call holds allocations on both sides ({held})");

    for round in 0..2 {
        alice.video.network_changed();
        let from = round * 2;
        hears(&alice, from, &[MediaState::Reconnecting, MediaState::Connected]).await;
        frames_again(&alice_sees, &bob_sees).await;
        let stats = out.stats().await.unwrap();
        assert_eq!(stats.local_candidate_type, Some(CandidateType::Relay), "{stats:?}");
        let start = Instant::now();
        loop {
            let now = srv.turn_allocations().await.unwrap();
            if now == held {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(3),
                "round {round}: {now} allocations held after the restart, {held} before"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    out.close();
    bob.closed(&inc, EndReason::Hangup).await;
}

/// Media that does not come back within the bound ends the call with `NetworkLost`, which
/// the app tells from a hang-up. Alice's signaling is blocked (the server's grace is long,
/// so the call stays up there) and her network "changes": she reconnects signaling to
/// restart ICE, cannot, and the restart never completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_down_past_the_bound_ends_the_call_as_network_lost() {
    let config = duet_server::ServerConfig { grace: Duration::from_secs(30), ..quick_config() };
    let srv = server(config).await;
    let proxy = Proxy::start(srv.local_addr()).await;
    let bound = Duration::from_millis(1500);
    let mut alice = Peer::connect_tweaked(&proxy.url(), srv.secret(), "alice", None, |c| {
        c.reconnect.media_timeout = bound;
    })
    .await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let (out, _inc, _, _) = call(&mut alice, &mut bob, Default::default()).await;

    proxy.block();
    let start = Instant::now();
    alice.video.network_changed();
    assert_eq!(alice.failed().await, CallError::NetworkLost);
    alice.closed(&out, EndReason::NetworkLost).await;
    let took = start.elapsed();
    assert!(took >= bound, "ended after {took:?}, before the bound {bound:?}");
    assert_eq!(alice.recorder.media_states(), vec![MediaState::Reconnecting]);
}

/// A clean loopback call is excellent on both sides, in the delegate and in the stats.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_quality_reaches_the_delegate_and_the_stats() {
    let srv = server(quick_config()).await;
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let (out, inc, _, _) = call(&mut alice, &mut bob, Default::default()).await;
    eventually("alice hears the quality levels", || alice.recorder.qualities().contains(&(5, 5)))
        .await;
    eventually("bob hears the quality levels", || !bob.recorder.qualities().is_empty()).await;
    let stats = out.stats().await.unwrap();
    assert_eq!((stats.quality_local, stats.quality_remote), (5, 5), "{stats:?}");
    inc.close();
    alice.closed(&out, EndReason::Hangup).await;
}
