//! An app's video sink that is slow (50 ms a frame, as a heavy renderer might be) holds up
//! only the frames it shows: not signaling, not the other direction of its call, and not
//! another call's setup. Each is measured before the slow sink is attached and while it
//! runs, in the same process, so the comparison does not depend on the machine's speed.
//! The test runs on a current-thread runtime, where any work done on the runtime itself
//! would stall everything else.

// A test that fails says so loudly; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use duet_core::*;
use support::*;

#[derive(Default)]
struct Sink {
    delay: Duration,
    frames: AtomicU64,
}

impl VideoSink for Sink {
    fn on_video_frame(&self, _: Arc<VideoFrame>) {
        std::thread::sleep(self.delay);
        self.frames.fetch_add(1, Ordering::Relaxed);
    }
}

impl Sink {
    fn count(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }
}

/// Median time for the other party's delegate to hear `camera` go off or on, over five
/// changes.
async fn camera_change_latency(camera: &LocalStream, hears: &Peer) -> Duration {
    let mut took = Vec::new();
    for _ in 0..5 {
        let heard_before = hears.recorder.remote_media().len();
        let since = Instant::now();
        camera.set_video_enabled(!camera.video_enabled());
        eventually("the change is heard", || hears.recorder.remote_media().len() > heard_before)
            .await;
        took.push(since.elapsed());
    }
    took.sort();
    took[2]
}

/// The quickest of three setups (`setup_time`): a sink that held the runtime up would slow
/// every one, a busy machine only some.
async fn quickest_setup(caller: &mut Peer, callee: &mut Peer) -> Duration {
    let mut quickest = setup_time(caller, callee).await;
    for _ in 0..2 {
        quickest = quickest.min(setup_time(caller, callee).await);
    }
    quickest
}

/// How long `caller` takes to call `callee` and see media both ways. The call is closed
/// and the callee hears it end, so the next measurement starts from two idle clients.
async fn setup_time(caller: &mut Peer, callee: &mut Peer) -> Duration {
    let since = Instant::now();
    let (out, inc) = caller.connected_call(callee).await;
    let took = since.elapsed();
    out.close();
    callee.closed(&inc, EndReason::Hangup).await;
    took
}

#[tokio::test]
async fn a_slow_video_sink_delays_neither_signaling_nor_the_other_direction_nor_another_call() {
    let srv = server(quick_config()).await;
    let url = srv.http_url();
    let connect = |uid: &'static str| Peer::connect(&url, srv.secret(), uid);
    let (mut alice, mut bob) = (connect("alice").await, connect("bob").await);
    let (mut carol, mut dave) = (connect("carol").await, connect("dave").await);
    // 30 fps towards the 50 ms sink: more frames than it can show.
    let alice_camera = LocalStream::synthetic(StreamConstraints {
        audio: true,
        video: Some(VideoConstraints {
            width: 160,
            height: 120,
            fps: 30,
            max_bitrate_bps: 300_000,
        }),
    });
    let bob_camera = small_stream();
    let out = alice.call_with("bob", Arc::clone(&alice_camera), CallOptions::default());
    let (inc, _) = bob.called().await;
    inc.accept(Arc::clone(&bob_camera)).unwrap();
    alice.response(CallStatus::Accepted).await;
    alice.stream().await;
    bob.stream().await;
    let fast = Arc::new(Sink::default());
    out.remote_stream().unwrap().set_video_sink(Some(fast.clone()));

    let signal_before = camera_change_latency(&bob_camera, &alice).await;
    let setup_before = quickest_setup(&mut carol, &mut dave).await;
    bob_camera.set_video_enabled(true);

    // Bob renders alice's video slowly.
    let slow = Arc::new(Sink { delay: Duration::from_millis(50), ..Default::default() });
    inc.remote_stream().unwrap().set_video_sink(Some(slow.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The other direction: bob's 15 fps keep reaching alice.
    let (shown_before, slow_before) = (fast.count(), slow.count());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let at_alice = fast.count() - shown_before;
    let at_bob = slow.count() - slow_before;
    assert!(at_alice >= 20, "alice showed {at_alice} of bob's frames in 2 s (15 fps sent)");
    assert!((5..=41).contains(&at_bob), "the slow sink is called, at its own pace: {at_bob}");

    let signal_during = camera_change_latency(&bob_camera, &alice).await;
    let setup_during = quickest_setup(&mut carol, &mut dave).await;
    eprintln!(
        "camera change heard in {signal_before:?} before the slow sink, {signal_during:?} with it"
    );
    eprintln!("another call set up in {setup_before:?} before, {setup_during:?} with it");
    let slack = Duration::from_millis(40);
    assert!(signal_during < signal_before * 2 + slack, "signaling waited for the sink");
    assert!(setup_during < setup_before * 2 + slack, "another call's setup waited for the sink");
    drop(out);
}
