//! Calls surviving dropped connections and server restarts.

mod common;

use std::time::Duration;

use common::*;
use duet_server::{start, ServerConfig, ServerHandle};
use serde_json::{json, Value};

fn restated(id: &str, role: &str, peer: &str, state: &str) -> Value {
    json!([{"call_id":id,"role":role,"peer":peer,"state":state,"data":"hi","sdp":"offer-sdp"}])
}

/// A grace period long enough to reconnect in on a loaded machine.
async fn patient_server() -> ServerHandle {
    server_with(|c| c.grace = Duration::from_secs(2)).await
}

#[tokio::test]
async fn a_ringing_callee_that_drops_and_returns_in_time_can_still_answer() {
    let server = patient_server().await;
    let (mut alice, bob, id) = ringing(&server).await;
    bob.vanish().await;
    alice.signal(&id, 1).await;
    let mut bob =
        Client::resume(&server, "bob", "b1", restated(&id, "callee", "alice", "ringing")).await;
    bob.expect_signal(&id, 1).await;
    bob.accept(&id).await;
    alice.expect_response(&id, "accepted").await;
    bob.expect_response(&id, "accepted").await;
}

#[tokio::test]
async fn a_ringing_callee_that_does_not_return_is_peer_disconnected() {
    let server = server().await;
    let (mut alice, bob, id) = ringing(&server).await;
    bob.vanish().await;
    alice.expect_closed(&id, "peer_disconnected").await;
}

#[tokio::test]
async fn a_ringing_caller_that_does_not_return_cancels_the_call() {
    let server = server().await;
    let (alice, mut bob, id) = ringing(&server).await;
    alice.vanish().await;
    bob.expect_closed(&id, "cancelled").await;
}

#[tokio::test]
async fn an_active_party_that_drops_and_returns_in_time_gets_what_it_missed() {
    let server = patient_server().await;
    let (mut alice, bob, id) = active(&server).await;
    bob.vanish().await;
    alice.signal(&id, 1).await;
    alice.signal(&id, 2).await;
    let mut bob =
        Client::resume(&server, "bob", "b1", restated(&id, "callee", "alice", "active")).await;
    bob.expect_signal(&id, 1).await;
    bob.expect_signal(&id, 2).await;
    bob.signal(&id, 3).await;
    alice.expect_signal(&id, 3).await;
    bob.hangup(&id).await;
    alice.expect_closed(&id, "hangup").await;
}

#[tokio::test]
async fn an_active_party_that_does_not_return_is_peer_disconnected() {
    let server = server().await;
    let (mut alice, bob, id) = active(&server).await;
    bob.vanish().await;
    alice.expect_closed(&id, "peer_disconnected").await;
    // Coming back too late, bob learns the call is over.
    let mut bob =
        Client::resume(&server, "bob", "b1", restated(&id, "callee", "alice", "active")).await;
    bob.expect_closed(&id, "peer_disconnected").await;
}

#[tokio::test]
async fn a_second_connection_replaces_the_first() {
    let server = server().await;
    let (mut alice, mut old, id) = active(&server).await;
    let mut new =
        Client::resume(&server, "bob", "b1", restated(&id, "callee", "alice", "active")).await;
    old.expect_error("replaced").await;
    old.expect_end().await;
    alice.signal(&id, 1).await;
    new.expect_signal(&id, 1).await;
}

/// Shuts the server down like a crash and starts a new one on the same port.
async fn restart(server: ServerHandle) -> ServerHandle {
    let listen = server.local_addr();
    server.shutdown().await;
    start(ServerConfig { listen, ..config() }).await.expect("a new server binds the same port")
}

#[tokio::test]
async fn a_restart_while_ringing_is_survived_by_restating() {
    let server = server().await;
    let (mut alice, mut bob, id) = ringing(&server).await;
    let server = restart(server).await;
    alice.expect_end().await;
    bob.expect_end().await;

    let mut alice = Client::resume(
        &server,
        "alice",
        "a1",
        json!([{"call_id":id,"role":"caller","peer":"bob","state":"ringing","data":"hi","sdp":"offer-sdp","ring_elapsed_ms":100}]),
    )
    .await;
    let mut bob = Client::resume(
        &server,
        "bob",
        "b1",
        json!([{"call_id":id,"role":"callee","peer":"alice","state":"ringing","data":"hi","sdp":"offer-sdp","ring_elapsed_ms":100}]),
    )
    .await;
    alice.signal(&id, 1).await;
    bob.expect_signal(&id, 1).await;
    bob.accept(&id).await;
    let response = alice.expect_response(&id, "accepted").await;
    assert_eq!(response["sdp"], "answer-sdp");
    bob.expect_response(&id, "accepted").await;
}

#[tokio::test]
async fn a_restart_while_active_is_survived_by_restating() {
    let server = server().await;
    let (alice, bob, id) = active(&server).await;
    let server = restart(server).await;
    drop((alice, bob));

    let mut alice =
        Client::resume(&server, "alice", "a1", restated(&id, "caller", "bob", "active")).await;
    // Sent before bob is back: held for him.
    alice.signal(&id, 1).await;
    let mut bob =
        Client::resume(&server, "bob", "b1", restated(&id, "callee", "alice", "active")).await;
    bob.expect_signal(&id, 1).await;
    bob.signal(&id, 2).await;
    alice.expect_signal(&id, 2).await;
    // Past the grace period the rebuilt call is still up.
    tokio::time::sleep(config().grace + Duration::from_millis(100)).await;
    alice.hangup(&id).await;
    bob.expect_closed(&id, "hangup").await;
}

#[tokio::test]
async fn a_restart_with_a_party_that_never_returns_ends_the_call() {
    let server = server().await;
    let (_alice, _bob, id) = active(&server).await;
    let server = restart(server).await;
    let mut alice =
        Client::resume(&server, "alice", "a1", restated(&id, "caller", "bob", "active")).await;
    alice.expect_closed(&id, "peer_disconnected").await;
}

#[tokio::test]
async fn an_accept_lost_in_a_restart_is_applied_on_restating() {
    let server = server().await;
    let (_alice, _bob, id) = ringing(&server).await;
    let server = restart(server).await;
    // Bob had sent accept but saw no response; alice saw no response either.
    let mut bob = Client::resume(
        &server,
        "bob",
        "b1",
        json!([{"call_id":id,"role":"callee","peer":"alice","state":"accepting","sdp":"answer-sdp"}]),
    )
    .await;
    bob.expect_response(&id, "accepted").await;
    let mut alice =
        Client::resume(&server, "alice", "a1", restated(&id, "caller", "bob", "ringing")).await;
    let response = alice.expect_response(&id, "accepted").await;
    assert_eq!(response["sdp"], "answer-sdp");
}

#[tokio::test]
async fn a_hangup_during_a_restart_reaches_the_peer_at_once() {
    // A grace period far longer than the test: only the tombstone can end the call in time.
    let slow = |c: &mut ServerConfig| c.grace = Duration::from_secs(60);
    let server = server_with(slow).await;
    let (_alice, _bob, id) = active(&server).await;
    let listen = server.local_addr();
    server.shutdown().await;
    let mut c = config();
    c.listen = listen;
    slow(&mut c);
    let server = start(c).await.expect("restarts");

    // Bob ended the call while the server was down: he does not restate it, he hangs up.
    let mut bob = Client::connect(&server, "bob", "b1").await;
    bob.hangup(&id).await;
    bob.expect_error("not_in_call").await;
    let mut alice =
        Client::resume(&server, "alice", "a1", restated(&id, "caller", "bob", "active")).await;
    alice.expect_closed(&id, "hangup").await;
}
