//! The rules docs/protocol.md states that no other test file pins down: the error for each
//! action that does not fit its call, retries, identifiers, optional fields, what counts
//! toward the rate limit, and how tokens are signed.

mod common;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::*;
use duet_protocol::Limits;
use duet_server::token;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn each_action_that_does_not_fit_its_call_gets_the_documented_error() {
    let server = server().await;
    let mut phone = Client::connect(&server, "bob", "b2").await;
    let (mut alice, mut bob, id) = ringing(&server).await;
    phone.expect("incoming").await;
    // While it rings.
    alice.accept(&id).await;
    alice.expect_error("invalid_state").await;
    alice.send(json!({"type":"reject","call_id":id})).await;
    alice.expect_error("invalid_state").await;
    bob.signal(&id, 1).await;
    bob.expect_error("invalid_state").await;
    // Once b1 accepted.
    bob.accept(&id).await;
    alice.expect_response(&id, "accepted").await;
    bob.expect_response(&id, "accepted").await;
    phone.expect_closed(&id, "answered_elsewhere").await;
    bob.accept(&id).await;
    bob.expect_error("invalid_state").await;
    bob.send(json!({"type":"reject","call_id":id})).await;
    bob.expect_error("invalid_state").await;
    for msg in [
        json!({"type":"accept","call_id":id}),
        json!({"type":"reject","call_id":id}),
        json!({"type":"hangup","call_id":id}),
        json!({"type":"signal","call_id":id,"signal":candidate(1)}),
    ] {
        phone.send(msg).await;
        phone.expect_error("not_in_call").await;
    }
    // None of it changed the call.
    alice.signal(&id, 2).await;
    bob.expect_signal(&id, 2).await;
    // Once it is over.
    alice.hangup(&id).await;
    bob.expect_closed(&id, "hangup").await;
    alice.hangup(&id).await;
    alice.expect_error("not_in_call").await;
    bob.signal(&id, 3).await;
    bob.expect_error("not_in_call").await;
}

#[tokio::test]
async fn a_repeated_invite_or_accept_is_refused_and_changes_nothing() {
    let server = server().await;
    let (mut alice, mut bob, id) = ringing(&server).await;
    alice.invite(&id, "bob").await;
    alice.expect_error("duplicate_call_id").await;
    bob.expect_silence(Duration::from_millis(100)).await;
    bob.accept(&id).await;
    alice.expect_response(&id, "accepted").await;
    bob.expect_response(&id, "accepted").await;
    bob.accept(&id).await;
    bob.expect_error("invalid_state").await;
    alice.expect_silence(Duration::from_millis(100)).await;
    bob.signal(&id, 1).await;
    alice.expect_signal(&id, 1).await;
}

#[tokio::test]
async fn identifiers_out_of_range_are_invalid_request() {
    let server = server().await;
    let mut alice = Client::connect(&server, "alice", "a1").await;
    let long_uid = "u".repeat(129);
    for (call_id, to) in [
        (call_id(), long_uid.as_str()),
        (call_id(), "bo\u{7}b"),
        (call_id(), ""),
        ("c".repeat(65), "bob"),
        ("a.b".to_owned(), "bob"),
        (String::new(), "bob"),
    ] {
        alice.send(json!({"type":"invite","call_id":call_id,"to":to})).await;
        alice.expect_error("invalid_request").await;
    }
    // At the limits they are fine (nobody is there: unreachable).
    let id = "c".repeat(64);
    alice.send(json!({"type":"invite","call_id":id,"to":"é".repeat(64)})).await;
    alice.expect_closed(&id, "unreachable").await;

    let mut bad = Client::open(&server, "bad device").await;
    let token = token_for(&server, "carol");
    bad.send(json!({"type":"hello","v":1,"token":token,"device_id":"d/1"})).await;
    bad.expect_error("invalid_request").await;
    bad.expect_end().await;
}

#[tokio::test]
async fn optional_fields_may_be_left_out() {
    let server = server().await;
    let mut alice = Client::connect(&server, "alice", "a1").await;
    let mut bob = Client::connect(&server, "bob", "b1").await;
    let id = call_id();
    alice.send(json!({"type":"invite","call_id":id,"to":"bob"})).await;
    let incoming = bob.expect("incoming").await;
    assert_eq!(
        incoming,
        json!({"type":"incoming","call_id":id,"from":"alice","options":{"ice_transport_policy":"all"}})
    );
    alice.expect("ringing").await;
    bob.send(json!({"type":"accept","call_id":id})).await;
    let response = alice.expect_response(&id, "accepted").await;
    assert!(response.get("sdp").is_none(), "{response}");
    bob.expect_response(&id, "accepted").await;
    let bare = json!({"kind":"candidate","candidate":"candidate:1 1 udp 1 127.0.0.1 5 typ host"});
    bob.send(json!({"type":"signal","call_id":id,"signal":bare})).await;
    assert_eq!(alice.expect("signal").await["signal"], bare);
}

#[tokio::test]
async fn a_restatement_needs_its_required_fields_and_at_most_eight_are_taken() {
    let server = server().await;
    let mut client = Client::open(&server, "alice").await;
    let token = token_for(&server, "alice");
    let missing_state = json!([{"call_id":call_id(),"role":"caller","peer":"bob"}]);
    let hello = |calls| json!({"type":"hello","v":1,"token":token,"device_id":"a1","calls":calls});
    client.send(hello(missing_state)).await;
    client.expect_error("malformed").await;
    // Still waiting for a valid hello: nine calls, the ninth refused.
    let calls: Vec<_> = (0..9)
        .map(|i| json!({"call_id":format!("c{i}"),"role":"callee","peer":format!("p{i}"),"state":"active"}))
        .collect();
    client.send(hello(json!(calls))).await;
    client.expect("welcome").await;
    let refused = client.expect_error("invalid_request").await;
    assert_eq!(refused["call_id"], "c8");
}

#[tokio::test]
async fn every_message_read_counts_toward_the_rate_limit() {
    let limits = Limits {
        max_message_bytes: 1024,
        messages_per_second: 0,
        message_burst: 4,
        ..Limits::default()
    };
    let server = server_with(|c| c.limits = limits).await;
    // hello spends the first token.
    let mut client = Client::connect(&server, "alice", "a1").await;
    client.send_message(Message::binary(vec![1, 2, 3])).await;
    client.expect_error("malformed").await;
    client.send_text("not json".into()).await;
    client.expect_error("malformed").await;
    client.send_text(format!("\"{}\"", "x".repeat(1500))).await;
    client.expect_error("message_too_large").await;
    client.hangup("c1").await;
    client.expect_error("rate_limited").await;
    // WebSocket pings do not count, and a ping message gets through an empty bucket.
    client.send_message(Message::Ping(vec![1].into())).await;
    client.ping(1).await;
}

/// A token made by hand from the document's rules, not by `token::mint`.
fn hand_made_token(secret: &str, uid: &str) -> String {
    let exp = token::unix_now() + 60;
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#);
    let claims = URL_SAFE_NO_PAD.encode(format!(r#"{{"sub":"{uid}","exp":{exp}.75}}"#));
    let input = format!("{header}.{claims}");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

#[tokio::test]
async fn tokens_are_signed_with_the_secret_bytes_and_the_dev_secret_is_public() {
    let server = server().await;
    let mut client = Client::open(&server, "alice").await;
    client
        .send(
            json!({"type":"hello","v":1,"token":hand_made_token(SECRET, "alice"),"device_id":"a1"}),
        )
        .await;
    client.expect("welcome").await;

    let dev = server_with(|c| c.secret = None).await;
    assert_eq!(token::DEV_SECRET, "duet-development-secret");
    let mut client = Client::open(&dev, "bob").await;
    let token = hand_made_token("duet-development-secret", "bob");
    client.send(json!({"type":"hello","v":1,"token":token,"device_id":"b1"})).await;
    client.expect("welcome").await;
}
