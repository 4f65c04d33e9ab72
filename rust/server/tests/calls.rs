//! Calls end to end: real server, real WebSockets, raw JSON.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

#[tokio::test]
async fn an_accepted_call_relays_offer_and_answer() {
    let server = server().await;
    let mut alice = Client::connect(&server, "alice", "a1").await;
    let mut bob = Client::connect(&server, "bob", "b1").await;
    let id = call_id();
    alice
        .send(json!({"type":"invite","call_id":id,"to":"bob","data":"custom-data","options":{"ice_transport_policy":"relay"},"sdp":"v=0 offer"}))
        .await;
    let incoming = bob.expect("incoming").await;
    assert_eq!(
        incoming,
        json!({"type":"incoming","call_id":id,"from":"alice","data":"custom-data","options":{"ice_transport_policy":"relay"},"sdp":"v=0 offer"})
    );
    alice.expect("ringing").await;

    bob.send(json!({"type":"accept","call_id":id,"sdp":"v=0 answer"})).await;
    let response = alice.expect_response(&id, "accepted").await;
    assert_eq!(response["sdp"], "v=0 answer");
    let confirmation = bob.expect_response(&id, "accepted").await;
    assert!(confirmation.get("sdp").is_none(), "{confirmation}");
}

#[tokio::test]
async fn a_rejected_call_tells_the_caller() {
    let server = server().await;
    let (mut alice, mut bob, id) = ringing(&server).await;
    bob.send(json!({"type":"reject","call_id":id})).await;
    alice.expect_response(&id, "rejected").await;
    // The call is over: accepting it now is not possible.
    bob.accept(&id).await;
    bob.expect_error("not_in_call").await;
}

#[tokio::test]
async fn calling_a_user_in_a_call_is_busy() {
    let server = server().await;
    let (_alice, _bob, _) = active(&server).await;
    let mut carol = Client::connect(&server, "carol", "c1").await;
    let id = call_id();
    carol.invite(&id, "bob").await;
    carol.expect_response(&id, "busy").await;
}

#[tokio::test]
async fn a_busy_reject_is_busy_for_the_caller() {
    let server = server().await;
    let (mut alice, mut bob, id) = ringing(&server).await;
    bob.send(json!({"type":"reject","call_id":id,"busy":true})).await;
    alice.expect_response(&id, "busy").await;
}

#[tokio::test]
async fn an_unanswered_call_times_out() {
    let ring = Duration::from_millis(300);
    let server = server_with(|c| c.ring_timeout = ring).await;
    let started = Instant::now();
    let (mut alice, mut bob, id) = ringing(&server).await;
    alice.expect_response(&id, "timeout").await;
    bob.expect_closed(&id, "timeout").await;
    assert!(started.elapsed() >= ring, "timed out after {:?}", started.elapsed());
}

#[tokio::test]
async fn the_caller_cancels_while_it_rings() {
    let server = server().await;
    let (mut alice, mut bob, id) = ringing(&server).await;
    alice.hangup(&id).await;
    bob.expect_closed(&id, "cancelled").await;
    // The one who hung up hears nothing back.
    alice.ping(1).await;
}

#[tokio::test]
async fn the_callee_hangs_up_an_accepted_call() {
    let server = server().await;
    let (mut alice, mut bob, id) = active(&server).await;
    bob.hangup(&id).await;
    alice.expect_closed(&id, "hangup").await;
    bob.ping(1).await;
}

#[tokio::test]
async fn another_device_answering_closes_the_rest() {
    let server = server().await;
    let mut alice = Client::connect(&server, "alice", "a1").await;
    let mut phone = Client::connect(&server, "bob", "phone").await;
    let mut tablet = Client::connect(&server, "bob", "tablet").await;
    let id = call_id();
    alice.invite(&id, "bob").await;
    phone.expect("incoming").await;
    tablet.expect("incoming").await;
    alice.expect("ringing").await;

    tablet.accept(&id).await;
    alice.expect_response(&id, "accepted").await;
    tablet.expect_response(&id, "accepted").await;
    phone.expect_closed(&id, "answered_elsewhere").await;
    // A late accept from the phone lost the race.
    phone.accept(&id).await;
    phone.expect_error("not_in_call").await;
}

#[tokio::test]
async fn another_device_declining_closes_the_rest() {
    let server = server().await;
    let mut alice = Client::connect(&server, "alice", "a1").await;
    let mut phone = Client::connect(&server, "bob", "phone").await;
    let mut tablet = Client::connect(&server, "bob", "tablet").await;
    let id = call_id();
    alice.invite(&id, "bob").await;
    phone.expect("incoming").await;
    tablet.expect("incoming").await;
    alice.expect("ringing").await;

    phone.send(json!({"type":"reject","call_id":id})).await;
    alice.expect_response(&id, "rejected").await;
    tablet.expect_closed(&id, "declined_elsewhere").await;
}

#[tokio::test]
async fn a_device_connecting_while_a_call_rings_rings_too() {
    let server = server().await;
    let (mut alice, _phone, id) = ringing(&server).await;
    alice.signal(&id, 1).await;
    let mut tablet = Client::connect(&server, "bob", "tablet").await;
    let incoming = tablet.expect("incoming").await;
    assert_eq!(incoming["call_id"], id.as_str());
    tablet.expect_signal(&id, 1).await;
    tablet.accept(&id).await;
    alice.expect_response(&id, "accepted").await;
}

#[tokio::test]
async fn crossing_invites_merge_into_the_first_call() {
    let server = server().await;
    let mut alice = Client::connect(&server, "alice", "a1").await;
    let mut bob = Client::connect(&server, "bob", "b1").await;
    let first = call_id();
    let second = call_id();
    alice.invite(&first, "bob").await;
    alice.expect("ringing").await;
    // Bob calls alice before looking at his incoming call.
    bob.invite(&second, "alice").await;
    bob.expect("incoming").await;
    let merged = bob.expect("merged").await;
    assert_eq!(merged["call_id"], second.as_str());
    assert_eq!(merged["into"]["call_id"], first.as_str());
    assert_eq!(merged["into"]["from"], "alice");
    assert_eq!(merged["into"]["sdp"], "offer-sdp");

    bob.accept(&first).await;
    alice.expect_response(&first, "accepted").await;
    bob.expect_response(&first, "accepted").await;
}

#[tokio::test]
async fn calling_a_user_with_no_device_is_unreachable() {
    let server = server().await;
    let mut alice = Client::connect(&server, "alice", "a1").await;
    let id = call_id();
    alice.invite(&id, "nobody").await;
    alice.expect_closed(&id, "unreachable").await;
}

#[tokio::test]
async fn signals_are_relayed_between_the_parties() {
    let server = server().await;
    let (mut alice, mut bob, id) = ringing(&server).await;
    // While it rings, the caller's candidates reach the callee, not the other way round.
    alice.signal(&id, 1).await;
    bob.expect_signal(&id, 1).await;
    bob.signal(&id, 2).await;
    bob.expect_error("invalid_state").await;

    bob.accept(&id).await;
    alice.expect_response(&id, "accepted").await;
    bob.expect_response(&id, "accepted").await;
    bob.signal(&id, 3).await;
    alice.expect_signal(&id, 3).await;
    let description = json!({"kind":"description","sdp_type":"offer","sdp":"v=0 renegotiate"});
    alice.send(json!({"type":"signal","call_id":id,"signal":description})).await;
    assert_eq!(bob.expect("signal").await["signal"], description);
}

#[tokio::test]
async fn nobody_else_can_touch_a_call() {
    let server = server().await;
    let (mut alice, mut bob, id) = active(&server).await;
    let mut mallory = Client::connect(&server, "mallory", "m1").await;
    let mut other_alice = Client::connect(&server, "alice", "a2").await;
    for intruder in [&mut mallory, &mut other_alice] {
        intruder.signal(&id, 9).await;
        let error = intruder.expect_error("not_in_call").await;
        assert_eq!(error["call_id"], id.as_str());
        intruder.hangup(&id).await;
        intruder.expect_error("not_in_call").await;
    }
    // The call is untouched.
    alice.signal(&id, 1).await;
    bob.expect_signal(&id, 1).await;
}

#[tokio::test]
async fn a_new_call_hangs_up_the_previous_one() {
    let server = server().await;
    let (mut alice, mut bob, first) = active(&server).await;
    let mut carol = Client::connect(&server, "carol", "c1").await;
    let second = call_id();
    alice.invite(&second, "carol").await;
    alice.expect_closed(&first, "replaced").await;
    bob.expect_closed(&first, "hangup").await;
    carol.expect("incoming").await;
    alice.expect("ringing").await;
}

#[tokio::test]
async fn bad_requests_are_refused_and_the_connection_stays() {
    let server = server().await;
    let mut alice = Client::connect(&server, "alice", "a1").await;
    let id = call_id();
    for bad in [
        json!({"type":"invite","call_id":id,"to":"alice"}),
        json!({"type":"invite","call_id":id,"to":""}),
        json!({"type":"invite","call_id":"no spaces allowed","to":"bob"}),
        json!({"type":"invite","call_id":id,"to":"bob","data":"x".repeat(8 * 1024 + 1)}),
    ] {
        alice.send(bad).await;
        alice.expect_error("invalid_request").await;
    }
    let _bob = Client::connect(&server, "bob", "b1").await;
    alice.invite(&id, "bob").await;
    alice.expect("ringing").await;
    let mut carol = Client::connect(&server, "carol", "c1").await;
    carol.invite(&id, "dave").await;
    carol.expect_error("duplicate_call_id").await;
}
