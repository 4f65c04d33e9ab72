//! A phone in a pocket, end to end: the SDK registers a push token, goes away, and is woken
//! by a push from a real server to a local fake APNs (HTTP/2 over TLS, tests/fake_push in
//! duet-server); connecting with the call's id, it rings, accepts, and the call carries
//! verified media both ways. A call that ended before the wake is reported at once.

#![allow(clippy::unwrap_used)]

#[path = "../../server/tests/fake_push/mod.rs"]
mod fake_push;
mod support;

use std::sync::Arc;

use duet_core::*;
use duet_media::PatternVerifier;
use support::*;

const TOKEN: &str = "5f3c9a0b7d1e2f4a6b8c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a";

#[derive(Default)]
struct Verifier(PatternVerifier);

impl VideoSink for Verifier {
    fn on_video_frame(&self, frame: Arc<VideoFrame>) {
        self.0.check(&frame);
    }
}

fn apns_token() -> PushToken {
    PushToken::Apns {
        token: TOKEN.into(),
        bundle_id: fake_push::BUNDLE.into(),
        environment: ApnsEnvironment::Sandbox,
    }
}

/// Bob's phone registers and is put away (the app killed); returns nothing of it.
async fn register_and_sleep(url: &str, secret: &str) {
    let bob = Peer::connect_with(url, secret, "bob", Some("phone")).await;
    bob.video.register_push(apns_token()).await.expect("registered");
    assert!(matches!(
        bob.video.register_push(PushToken::Fcm { token: "a b".into() }).await,
        Err(PushError::InvalidToken(_))
    ));
    bob.video.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_device_wakes_rings_and_carries_the_call() {
    let mut fake = fake_push::FakePush::start().await;
    let mut config = quick_config();
    config.ring_timeout = std::time::Duration::from_secs(10);
    config.push = fake.config();
    let srv = server(config).await;
    let url = srv.http_url();
    register_and_sleep(&url, srv.secret()).await;

    let mut alice = Peer::connect(&url, srv.secret(), "alice").await;
    let out = alice.call("bob", Some("hello bob"));
    let push = fake.next().await;
    let call_id = push.payload["duet"]["call_id"].as_str().unwrap().to_owned();
    assert_eq!(out.call_id().as_deref(), Some(call_id.as_str()));
    assert_eq!(push.payload["duet"]["from"], "alice");
    assert_eq!(push.payload["duet"]["data"], "hello bob");

    let woken_for = call_id.clone();
    let mut bob = Peer::connect_tweaked(&url, srv.secret(), "bob", Some("phone"), |c| {
        c.woken_for = Some(woken_for);
    })
    .await;
    let (inc, data) = bob.called().await;
    assert_eq!((inc.call_id(), data.as_deref()), (Some(call_id), Some("hello bob")));
    inc.accept(small_stream()).unwrap();
    alice.response(CallStatus::Accepted).await;
    alice.stream().await;
    bob.stream().await;
    let (alice_sees, bob_sees) = (Arc::new(Verifier::default()), Arc::new(Verifier::default()));
    out.remote_stream().unwrap().set_video_sink(Some(alice_sees.clone()));
    inc.remote_stream().unwrap().set_video_sink(Some(bob_sees.clone()));
    eventually("10 verified frames each way", || {
        alice_sees.0.verified() >= 10 && bob_sees.0.verified() >= 10
    })
    .await;
    assert_eq!(alice_sees.0.wrong() + bob_sees.0.wrong(), 0);
    assert_eq!(fake.problems(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cancelled_before_the_wake_is_reported_at_once() {
    let mut fake = fake_push::FakePush::start().await;
    let mut config = quick_config();
    config.push = fake.config();
    let srv = server(config).await;
    let url = srv.http_url();
    register_and_sleep(&url, srv.secret()).await;

    let alice = Peer::connect(&url, srv.secret(), "alice").await;
    let out = alice.call("bob", None);
    let call_id = fake.next().await.payload["duet"]["call_id"].as_str().unwrap().to_owned();
    out.close();
    // The phone wakes after the close has reached the server; sooner would find it ringing.
    until_the_server_holds_no_call(&srv).await;
    let woken_for = call_id.clone();
    let t0 = std::time::Instant::now();
    let mut bob = Peer::connect_tweaked(&url, srv.secret(), "bob", Some("phone"), |c| {
        c.woken_for = Some(woken_for);
    })
    .await;
    match bob.next().await {
        Ev::WokenCallEnded(id, reason) => {
            assert_eq!((id, reason), (call_id, Some(EndReason::Cancelled)));
        }
        other => panic!("expected the woken call's end, got {other:?}"),
    }
    println!("the woken call's end heard {:?} after connecting began", t0.elapsed());
    bob.quiet(std::time::Duration::from_millis(200)).await;
}
