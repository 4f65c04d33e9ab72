//! Pushes end to end: a real server pushing to local fake APNs and FCM endpoints over
//! HTTP/2 with TLS (tests/fake_push), and raw WebSocket clients registering, being woken,
//! and learning what became of their call.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

mod common;
mod fake_push;

use std::time::{Duration, Instant};

use common::{call_id, http_get, token_for, Client, WAIT};
use duet_server::{start, ServerConfig, ServerHandle};
use fake_push::{Answer, FakePush, BUNDLE};
use serde_json::{json, Value};

const APNS_TOKEN: &str = "5f3c9a0b7d1e2f4a6b8c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a";
const FCM_TOKEN: &str = "dGVzdA:APA91b-fcm-test-token";

async fn server_pushing_to(fake: &FakePush, tweak: impl FnOnce(&mut ServerConfig)) -> ServerHandle {
    let mut config = common::config();
    config.push = fake.config();
    tweak(&mut config);
    start(config).await.expect("server starts")
}

fn apns(token: &str) -> Value {
    json!({"service":"apns","token":token,"bundle_id":BUNDLE,"environment":"sandbox"})
}

fn fcm(token: &str) -> Value {
    json!({"service":"fcm","token":token})
}

/// Connects `uid/device`, registers `push`, and goes away (the app is in the background).
async fn register_and_leave(server: &ServerHandle, uid: &str, device: &str, push: Value) {
    let mut client = Client::connect(server, uid, device).await;
    client.send(json!({"type":"register_push","push":push})).await;
    client.expect("push_registered").await;
    client.vanish().await;
}

/// Connects as a device woken by the push for `call_id`.
async fn woken(server: &ServerHandle, uid: &str, device: &str, call_id: &str) -> Client {
    let mut client = Client::open(server, &format!("{uid}/{device} (woken)")).await;
    let token = token_for(server, uid);
    client
        .send(json!({"type":"hello","v":1,"token":token,"device_id":device,"woken_for":call_id}))
        .await;
    client.expect("welcome").await;
    client
}

/// bob/b9 registers `push` and goes away; alice/a1 invites bob, hears `ringing`, and the
/// push arrives. Returns alice, the call id and the push.
async fn pushed_call(
    server: &ServerHandle,
    fake: &mut FakePush,
    push: Value,
) -> (Client, String, fake_push::Push) {
    register_and_leave(server, "bob", "b9", push).await;
    let mut alice = Client::connect(server, "alice", "a1").await;
    let id = call_id();
    alice.invite(&id, "bob").await;
    alice.expect("ringing").await;
    let push = fake.next().await;
    (alice, id, push)
}

fn summary(label: &str, mut ms: Vec<f64>) {
    ms.sort_by(f64::total_cmp);
    println!(
        "{label}: min {:.1} ms, median {:.1} ms, max {:.1} ms over {} pushes",
        ms[0],
        ms[ms.len() / 2],
        ms[ms.len() - 1],
        ms.len()
    );
}

/// An invite to a callee whose only device is registered (APNs, then FCM) rings: the
/// caller hears `ringing`, and the push reaches the service at once, carrying the call.
/// The provider token and the access token are minted once and reused for every push.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_pushes_devices_that_are_not_connected() {
    let mut fake = FakePush::start().await;
    let server = server_pushing_to(&fake, |_| {}).await;
    let mut alice = Client::connect(&server, "alice", "a1").await;
    for (device, push, service) in
        [("b-ios", apns(APNS_TOKEN), "apns"), ("b-android", fcm(FCM_TOKEN), "fcm")]
    {
        let uid = format!("bob-{service}");
        register_and_leave(&server, &uid, device, push).await;
        let mut latencies = Vec::new();
        let mut bearers = std::collections::BTreeSet::new();
        for _ in 0..7 {
            let id = call_id();
            let sent = Instant::now();
            alice.invite(&id, &uid).await;
            let pushed = fake.next().await;
            alice.expect("ringing").await;
            latencies.push(pushed.at.duration_since(sent).as_secs_f64() * 1000.0);
            assert_eq!(pushed.service, service);
            bearers.insert(pushed.bearer.clone());
            let payload = &pushed.payload;
            let (call, from, data, deadline) = if service == "apns" {
                let duet = &payload["duet"];
                (&duet["call_id"], &duet["from"], &duet["data"], duet["deadline_ms"].as_u64())
            } else {
                (
                    &payload["duet_call_id"],
                    &payload["duet_from"],
                    &payload["duet_data"],
                    payload["duet_deadline_ms"].as_str().and_then(|s| s.parse().ok()),
                )
            };
            assert_eq!(
                (call.as_str(), from.as_str(), data.as_str()),
                (Some(&*id), Some("alice"), Some("hi"))
            );
            let ring_left = i128::from(deadline.unwrap()) - i128::from(unix_ms());
            assert!((8_000..=10_500).contains(&ring_left), "deadline {ring_left} ms away");
            // The push lives only as long as the call rings.
            if service == "apns" {
                let deadline_s = (deadline.unwrap() / 1000).to_string();
                assert_eq!(pushed.expiry, deadline_s, "apns-expiration is the ring deadline");
            } else {
                let ttl: u64 = pushed.expiry.trim_end_matches('s').parse().unwrap();
                assert!((8..=10).contains(&ttl), "FCM ttl {ttl} s: the ring time left");
            }
            alice.hangup(&id).await;
            // A round trip before the next invite, so that Nagle's algorithm on this test
            // client's socket does not hold the invite back behind the unacknowledged
            // hangup (a 40 ms delayed ACK that would be measured as push latency).
            alice.ping(1).await;
        }
        assert_eq!(bearers.len(), 1, "{service}: one token for every push, not one each");
        summary(&format!("{service}: invite to push at the fake"), latencies);
    }
    assert_eq!(fake.grants(), 1, "one OAuth2 grant for all FCM pushes");
    assert_eq!(fake.connections(), 1, "one long-lived HTTP/2 connection");
    assert_eq!(fake.problems(), Vec::<String>::new());
}

/// The woken device connects naming the call, gets `incoming`, and accepts.
#[tokio::test]
async fn a_woken_device_is_rung_and_takes_the_call() {
    let mut fake = FakePush::start().await;
    let server = server_pushing_to(&fake, |_| {}).await;
    let (mut alice, id, push) = pushed_call(&server, &mut fake, apns(APNS_TOKEN)).await;
    assert_eq!(push.payload["duet"]["call_id"], id.as_str());

    let mut bob = woken(&server, "bob", "b9", &id).await;
    let incoming = bob.expect("incoming").await;
    assert_eq!(
        (incoming["call_id"].as_str(), incoming["sdp"].as_str()),
        (Some(&*id), Some("offer-sdp"))
    );
    bob.accept(&id).await;
    alice.expect_response(&id, "accepted").await;
    bob.expect_response(&id, "accepted").await;
    bob.expect_silence(Duration::from_millis(100)).await;
    assert_eq!(fake.problems(), Vec::<String>::new());
}

/// Cancelled before the device woke, or answered by another device: the woken device hears
/// the call's end right after `welcome`.
#[tokio::test]
async fn a_woken_device_hears_at_once_that_its_call_is_over() {
    let mut fake = FakePush::start().await;
    let server = server_pushing_to(&fake, |_| {}).await;
    let (mut alice, id, _) = pushed_call(&server, &mut fake, fcm(FCM_TOKEN)).await;
    alice.hangup(&id).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t0 = Instant::now();
    let mut bob = woken(&server, "bob", "b9", &id).await;
    bob.expect_closed(&id, "cancelled").await;
    println!("cancelled: heard {:?} after the woken device connected", t0.elapsed());
    bob.vanish().await;

    let mut phone = Client::connect(&server, "bob", "b1").await;
    let id = call_id();
    alice.invite(&id, "bob").await;
    phone.expect("incoming").await;
    alice.expect("ringing").await;
    fake.next().await;
    phone.accept(&id).await;
    alice.expect_response(&id, "accepted").await;
    phone.expect_response(&id, "accepted").await;
    let mut bob = woken(&server, "bob", "b9", &id).await;
    bob.expect_closed(&id, "answered_elsewhere").await;

    // A call the server does not know is refused, so the screen closes all the same.
    let mut other = woken(&server, "bob", "b8", "no-such-call").await;
    let error = other.expect_error("not_in_call").await;
    assert_eq!(error["call_id"], "no-such-call");
    assert_eq!(fake.problems(), Vec::<String>::new());
}

/// A token the service calls dead (APNs 410 or 400 BadDeviceToken, FCM 404 UNREGISTERED)
/// is forgotten: the next
/// call to that user, with nothing else to ring, is `unreachable`.
#[tokio::test]
async fn a_dead_token_is_removed() {
    let mut fake = FakePush::start().await;
    let server = server_pushing_to(&fake, |_| {}).await;
    let mut alice = Client::connect(&server, "alice", "a1").await;
    let bad_token = "00ff";
    let dead = [
        ("bob", apns(APNS_TOKEN), APNS_TOKEN, Answer::Dead),
        ("dave", apns(bad_token), bad_token, Answer::BadToken),
        ("carol", fcm(FCM_TOKEN), FCM_TOKEN, Answer::Dead),
    ];
    for (uid, push, token, answer) in dead {
        fake.answer(token, answer);
        register_and_leave(&server, uid, "d1", push).await;
        let id = call_id();
        alice.invite(&id, uid).await;
        alice.expect("ringing").await;
        assert_eq!(fake.next().await.token, token);
        alice.hangup(&id).await;
        // The removal is the push task's, just after the answer.
        let deadline = Instant::now() + WAIT;
        loop {
            let id = call_id();
            alice.invite(&id, uid).await;
            let verdict = alice.next().await;
            if verdict["type"] == "closed" {
                assert_eq!(verdict["reason"], "unreachable");
                break;
            }
            alice.hangup(&id).await;
            fake.next().await;
            assert!(Instant::now() < deadline, "{uid}'s dead token still registered");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let (_, metrics) = http_get(&server, "/metrics").await;
    let dead_counted = metrics
        .lines()
        .find_map(|l| l.strip_prefix("duet_pushes_total{outcome=\"dead_token\"} "))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(dead_counted >= Some(3), "dead tokens counted in /metrics:\n{metrics}");
    assert_eq!(fake.problems(), Vec::<String>::new());
}

/// A push that fails, or a push service that cannot be reached at all, changes nothing for
/// the devices that are connected: they ring, and the call goes on.
#[tokio::test]
async fn a_failing_push_leaves_connected_devices_ringing() {
    let mut fake = FakePush::start().await;
    let server = server_pushing_to(&fake, |_| {}).await;
    fake.answer(APNS_TOKEN, Answer::Fail);
    register_and_leave(&server, "bob", "b9", apns(APNS_TOKEN)).await;
    let mut phone = Client::connect(&server, "bob", "b1").await;
    let mut alice = Client::connect(&server, "alice", "a1").await;
    let id = call_id();
    alice.invite(&id, "bob").await;
    phone.expect("incoming").await;
    alice.expect("ringing").await;
    fake.next().await;
    phone.accept(&id).await;
    alice.expect_response(&id, "accepted").await;
    phone.expect_response(&id, "accepted").await;

    // No push service listening at all.
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let server = server_pushing_to(&fake, |c| {
        if let Some(apns) = &mut c.push.apns {
            apns.url = Some(format!("https://{dead_port}"));
        }
    })
    .await;
    register_and_leave(&server, "bob", "b9", apns(APNS_TOKEN)).await;
    let mut phone = Client::connect(&server, "bob", "b1").await;
    let mut alice = Client::connect(&server, "alice", "a1").await;
    let id = call_id();
    alice.invite(&id, "bob").await;
    phone.expect("incoming").await;
    alice.expect("ringing").await;
    phone.accept(&id).await;
    alice.expect_response(&id, "accepted").await;
}

/// A provider token APNs calls expired is minted anew, and the push sent again with it.
#[tokio::test]
async fn an_expired_provider_token_is_minted_anew() {
    let mut fake = FakePush::start().await;
    let server = server_pushing_to(&fake, |_| {}).await;
    fake.answer(APNS_TOKEN, Answer::ExpiredOnce);
    let (_alice, id, refused) = pushed_call(&server, &mut fake, apns(APNS_TOKEN)).await;
    let accepted = fake.next().await;
    assert_eq!(accepted.payload["duet"]["call_id"], id.as_str());
    assert_ne!(refused.bearer, accepted.bearer, "a fresh provider token");
    assert_eq!(fake.problems(), Vec::<String>::new());
}

/// Custom data too large for a push is cut to fit (APNs 5 KiB, FCM 4 KiB) and marked so;
/// the woken device's `incoming` carries it whole.
#[tokio::test]
async fn large_data_is_cut_to_fit_the_push() {
    let mut fake = FakePush::start().await;
    let server = server_pushing_to(&fake, |_| {}).await;
    register_and_leave(&server, "bob", "b9", apns(APNS_TOKEN)).await;
    register_and_leave(&server, "bob", "b8", fcm(FCM_TOKEN)).await;
    let mut alice = Client::connect(&server, "alice", "a1").await;
    let id = call_id();
    let data = "\u{e9}\"".repeat(2000);
    alice.send(json!({"type":"invite","call_id":id,"to":"bob","data":data})).await;
    alice.expect("ringing").await;
    for _ in 0..2 {
        let push = fake.next().await;
        let (kept, truncated) = if push.service == "apns" {
            (push.payload["duet"]["data"].clone(), push.payload["duet"]["data_truncated"].clone())
        } else {
            (push.payload["duet_data"].clone(), push.payload["duet_data_truncated"].clone())
        };
        let kept = kept.as_str().unwrap();
        assert!(
            data.starts_with(kept) && kept.len() > 1000,
            "{}: {} bytes",
            push.service,
            kept.len()
        );
        assert!(truncated == json!(true) || truncated == json!("true"), "{}", push.service);
    }
    let mut bob = woken(&server, "bob", "b9", &id).await;
    assert_eq!(bob.expect("incoming").await["data"], data.as_str());
    assert_eq!(fake.problems(), Vec::<String>::new());
}

/// Registrations are kept under the data directory: a restarted server still pushes.
/// Unregistering forgets them.
#[tokio::test]
async fn registrations_survive_a_restart() {
    let mut fake = FakePush::start().await;
    let dir = std::env::temp_dir().join(format!("duet-push-test-{}", call_id()));
    let with_dir = |c: &mut ServerConfig| c.push.data_dir = Some(dir.clone());
    let server = server_pushing_to(&fake, with_dir).await;
    register_and_leave(&server, "bob", "b9", apns(APNS_TOKEN)).await;
    register_and_leave(&server, "carol", "k1", fcm(FCM_TOKEN)).await;
    server.shutdown().await;

    let server = server_pushing_to(&fake, with_dir).await;
    let mut alice = Client::connect(&server, "alice", "a1").await;
    for (uid, token) in [("bob", APNS_TOKEN), ("carol", FCM_TOKEN)] {
        let id = call_id();
        alice.invite(&id, uid).await;
        alice.expect("ringing").await;
        assert_eq!(fake.next().await.token, token);
        alice.hangup(&id).await;
    }

    let mut bob = Client::connect(&server, "bob", "b9").await;
    bob.send(json!({"type":"unregister_push"})).await;
    bob.expect("push_unregistered").await;
    bob.vanish().await;
    let id = call_id();
    alice.invite(&id, "bob").await;
    alice.expect_closed(&id, "unreachable").await;
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A token that is not one is refused; without push services, registrations are kept but
/// nobody is pushed, so a callee with no device connected is still unreachable.
#[tokio::test]
async fn bad_tokens_are_refused_and_no_service_means_no_push() {
    let server = common::server().await;
    let mut bob = Client::connect(&server, "bob", "b9").await;
    bob.send(json!({"type":"register_push","push":apns("not-hex")})).await;
    bob.expect_error("invalid_request").await;
    bob.send(json!({"type":"register_push","push":{"service":"fcm","token":"a b"}})).await;
    bob.expect_error("invalid_request").await;
    bob.send(json!({"type":"register_push","push":fcm(FCM_TOKEN)})).await;
    bob.expect("push_registered").await;
    bob.vanish().await;
    let mut alice = Client::connect(&server, "alice", "a1").await;
    let id = call_id();
    alice.invite(&id, "bob").await;
    alice.expect_closed(&id, "unreachable").await;
}

fn unix_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis(),
    )
    .unwrap()
}
