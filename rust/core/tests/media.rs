//! Real media end to end: two clients through a real server, real peer connections on
//! loopback (ICE, DTLS-SRTP), H.264 and Opus encoded and decoded, the synthetic camera's
//! frame counter read back on the far side.

// A test that fails says so loudly; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use duet_core::*;
use duet_media::{tone_strength, PatternVerifier};
use duet_server::ServerHandle;
use support::*;

/// Counting the process's sockets, tasks and threads needs the process to itself: the
/// other tests hold this shared, the counting test alone.
static PROCESS: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Checks every decoded frame against the synthetic camera's pattern.
#[derive(Default)]
struct Verifier(PatternVerifier);

impl VideoSink for Verifier {
    fn on_video_frame(&self, frame: Arc<VideoFrame>) {
        self.0.check(&frame);
    }
}

impl Verifier {
    fn verified(&self) -> u64 {
        self.0.verified()
    }
    fn frames(&self) -> u64 {
        self.0.frames()
    }
    fn wrong(&self) -> u64 {
        self.0.wrong()
    }
}

#[derive(Default)]
struct Listener(Mutex<Vec<i16>>);

impl AudioSink for Listener {
    fn on_audio_frame(&self, frame: &AudioFrame) {
        self.0.lock().unwrap().extend_from_slice(&frame.samples);
    }
}

/// Waits for `did_receive_stream` and attaches a verifier and a listener to it.
async fn watch_stream(peer: &mut Peer, conv: &Conversation) -> (Arc<Verifier>, Arc<Listener>) {
    peer.stream().await;
    let remote = conv.remote_stream().expect("a remote stream once it started");
    let v = Arc::new(Verifier::default());
    let l = Arc::new(Listener::default());
    remote.set_video_sink(Some(v.clone()));
    remote.set_audio_sink(Some(l.clone()));
    (v, l)
}

async fn connected_with_media(
    alice: &mut Peer,
    bob: &mut Peer,
) -> (Arc<Conversation>, Arc<Conversation>, [(Arc<Verifier>, Arc<Listener>); 2]) {
    let out = alice.call("bob", None);
    let (inc, _) = bob.called().await;
    inc.accept(small_stream()).unwrap();
    alice.response(CallStatus::Accepted).await;
    let at_alice = watch_stream(alice, &out).await;
    let at_bob = watch_stream(bob, &inc).await;
    (out, inc, [at_alice, at_bob])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_and_audio_flow_both_ways_and_verify() {
    let _shared = PROCESS.read().await;
    let srv = server(quick_config()).await;
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let (out, inc, [(alice_sees, alice_hears), (bob_sees, bob_hears)]) =
        connected_with_media(&mut alice, &mut bob).await;

    eventually("20 verified frames each way", || {
        alice_sees.verified() >= 20 && bob_sees.verified() >= 20
    })
    .await;
    assert_eq!(alice_sees.wrong(), 0, "every frame alice decoded is bob's pattern");
    assert_eq!(bob_sees.wrong(), 0);
    for heard in [&alice_hears, &bob_hears] {
        let pcm = heard.0.lock().unwrap().clone();
        assert!(
            pcm.len() >= 48_000 / 2,
            "half a second of audio decoded, got {} samples",
            pcm.len()
        );
        let tail = &pcm[pcm.len() - 4800..];
        assert!(tone_strength(tail, 440.0) > 0.5, "the decoded audio is the 440 Hz tone");
    }

    let stats = out.stats().await.expect("stats while the call runs");
    assert_eq!((stats.sent_width, stats.sent_height), (160, 120));
    assert_eq!((stats.received_width, stats.received_height), (160, 120));
    assert!(stats.bytes_sent > 0 && stats.bytes_received > 0);
    assert!(stats.audio_packets_sent > 0 && stats.audio_frames_decoded > 0);
    assert_eq!(stats.local_candidate_type, Some(CandidateType::Host));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stats = out.stats().await.unwrap();
    assert!(stats.received_fps > 5.0, "fps over the last interval: {}", stats.received_fps);
    assert!(stats.bitrate_received_bps > 10_000.0, "{stats:?}");

    out.close();
    bob.closed(&inc, EndReason::Hangup).await;
}

/// Counts the frames it is handed.
#[derive(Default)]
struct Counter(std::sync::atomic::AtomicU64);

impl VideoSink for Counter {
    fn on_video_frame(&self, _: Arc<VideoFrame>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The first frames of a call may be decoded before the app has set its sink: the newest
/// is kept and handed to the sink as it is set, not lost until the camera's next frame.
/// Bob's camera sends until alice has decoded a frame, then stops, so only the kept frame
/// can reach alice's sink.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_set_late_shows_the_frame_decoded_before_it() {
    let _shared = PROCESS.read().await;
    let srv = server(quick_config()).await;
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let out = alice.call("bob", None);
    let (inc, _) = bob.called().await;
    let camera = LocalStream::new(StreamConstraints {
        audio: false,
        video: Some(VideoConstraints {
            width: 160,
            height: 120,
            fps: 15,
            max_bitrate_bps: 150_000,
        }),
    });
    inc.accept(camera.clone()).unwrap();
    alice.response(CallStatus::Accepted).await;
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let pushing = tokio::spawn(async move {
        for n in 0..150u64 {
            if stopped.try_recv().is_ok() {
                return;
            }
            camera.push_video_frame(VideoFrame::black(160, 120, n * 66_666));
            tokio::time::sleep(Duration::from_millis(66)).await;
        }
    });
    alice.stream().await;
    let remote = out.remote_stream().expect("a remote stream once it started");
    eventually("alice decodes a frame of bob's", || remote.frames_decoded() > 0).await;
    let _ = stop.send(());
    pushing.await.unwrap();
    // Whatever was in flight lands before the sink is set.
    let mut decoded = remote.frames_decoded();
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = remote.frames_decoded();
        if now == decoded {
            break;
        }
        decoded = now;
    }
    let sink = Arc::new(Counter::default());
    remote.set_video_sink(Some(sink.clone()));
    assert_eq!(sink.0.load(std::sync::atomic::Ordering::Relaxed), 1, "the newest frame, at once");
    bob.stream().await;
    out.close();
    bob.closed(&inc, EndReason::Hangup).await;
}

/// A caller that sends only one kind of media still receives both from a full callee.
async fn a_one_sided_caller_receives_both(sends: StreamConstraints) {
    let srv = server(quick_config()).await;
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let out = alice.call_with("bob", LocalStream::synthetic(sends.clone()), CallOptions::default());
    let (inc, _) = bob.called().await;
    inc.accept(small_stream()).unwrap();
    alice.response(CallStatus::Accepted).await;
    let (alice_sees, alice_hears) = watch_stream(&mut alice, &out).await;
    eventually("alice sees and hears bob", || {
        alice_sees.verified() >= 5 && alice_hears.0.lock().unwrap().len() >= 4800
    })
    .await;
    bob.stream().await;
    let sent = (sends.video.is_some(), sends.audio);
    eventually("bob hears what alice sends", || bob.recorder.remote_media() == [sent]).await;
    assert_eq!(inc.remote_stream().unwrap().video_enabled(), sent.0);
    out.close();
    bob.closed(&inc, EndReason::Hangup).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_without_a_camera_still_sees_the_callee() {
    let _shared = PROCESS.read().await;
    a_one_sided_caller_receives_both(StreamConstraints { audio: true, video: None }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_without_a_microphone_still_hears_the_callee() {
    let _shared = PROCESS.read().await;
    let video = small_stream().constraints().video.clone();
    a_one_sided_caller_receives_both(StreamConstraints { audio: false, video }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mute_stops_the_frames_and_unmute_restarts_them() {
    let _shared = PROCESS.read().await;
    let srv = server(quick_config()).await;
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let camera = small_stream();
    let out = alice.call_with("bob", camera.clone(), CallOptions::default());
    let (inc, _) = bob.called().await;
    inc.accept(small_stream()).unwrap();
    alice.response(CallStatus::Accepted).await;
    let (bob_sees, bob_hears) = watch_stream(&mut bob, &inc).await;
    eventually("frames flow", || bob_sees.verified() >= 5).await;
    let at_bob = inc.remote_stream().unwrap();
    assert!(at_bob.video_enabled() && at_bob.audio_enabled());
    assert_eq!(bob.recorder.remote_media(), [], "nothing to say while both are sent");

    camera.set_video_enabled(false);
    eventually("bob hears the camera went off", || bob.recorder.remote_media() == [(false, true)])
        .await;
    assert!(!at_bob.video_enabled() && at_bob.audio_enabled());
    camera.set_audio_enabled(false);
    tokio::time::sleep(Duration::from_millis(300)).await; // what was in flight lands
    let (frames, samples) = (bob_sees.frames(), bob_hears.0.lock().unwrap().len());
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(bob_sees.frames(), frames, "no video while muted");
    assert_eq!(bob_hears.0.lock().unwrap().len(), samples, "no audio while muted");

    camera.set_video_enabled(true);
    camera.set_audio_enabled(true);
    eventually("bob hears both are back", || {
        bob.recorder.remote_media().last() == Some(&(true, true))
    })
    .await;
    assert!(at_bob.video_enabled() && at_bob.audio_enabled());
    eventually("video comes back", || bob_sees.frames() >= frames + 5).await;
    eventually("audio comes back", || bob_hears.0.lock().unwrap().len() > samples).await;
    assert_eq!(bob_sees.wrong(), 0);
    drop(out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_call_releases_its_sockets_tasks_and_threads() {
    let _alone = PROCESS.write().await;
    let srv = server(quick_config()).await;
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let (sockets, tasks, threads) = warmed_up(&mut alice, &mut bob).await;

    let (out, inc, [(seen, _), _]) = connected_with_media(&mut alice, &mut bob).await;
    eventually("frames flow", || seen.verified() >= 3).await;
    assert!(udp_sockets() > sockets, "a call holds UDP sockets");
    out.close();
    bob.closed(&inc, EndReason::Hangup).await;
    drop((out, inc));
    eventually("sockets released", || udp_sockets() <= sockets).await;
    eventually("tasks released", || alive_tasks() <= tasks).await;
    eventually("threads released", || os_threads() <= threads).await;
}

/// One call made and ended, so that lazily started runtime threads and pools exist already;
/// then the process's UDP sockets, tasks and threads, for a later call to return to.
async fn warmed_up(alice: &mut Peer, bob: &mut Peer) -> (usize, usize, usize) {
    let (out, inc, _) = connected_with_media(alice, bob).await;
    out.close();
    bob.closed(&inc, EndReason::Hangup).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    (udp_sockets(), alive_tasks(), os_threads())
}

fn os_threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Threads:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_only_call_goes_through_the_embedded_turn_server() {
    let _shared = PROCESS.read().await;
    let srv = server(quick_config()).await;
    assert!(srv.turn_addr().is_some(), "the server embeds TURN by default");
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let (out, inc, alice_sees, bob_sees) = relayed_call(&mut alice, &mut bob).await;
    eventually("frames both ways through the relay", || {
        alice_sees.verified() >= 5 && bob_sees.verified() >= 5
    })
    .await;
    for conv in [&out, &inc] {
        let stats = conv.stats().await.unwrap();
        assert_eq!(stats.local_candidate_type, Some(CandidateType::Relay), "{stats:?}");
        assert_eq!(stats.remote_candidate_type, Some(CandidateType::Relay), "{stats:?}");
    }
}

/// A platform codec stand-in: OpenH264 underneath, counting what passes through it.
#[derive(Default)]
struct CountingCodecs {
    frames_encoded: Arc<std::sync::atomic::AtomicU64>,
    units_decoded: Arc<std::sync::atomic::AtomicU64>,
    decoders_made: std::sync::atomic::AtomicU64,
}

struct Counted<T>(T, Arc<std::sync::atomic::AtomicU64>);

impl VideoEncoder for Counted<Box<dyn VideoEncoder>> {
    fn encode(
        &mut self,
        frame: &VideoFrame,
        keyframe: bool,
    ) -> Result<Option<EncodedVideo>, CodecError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.0.encode(frame, keyframe)
    }
    fn set_target_bitrate(&mut self, bps: u32) {
        self.0.set_target_bitrate(bps)
    }
    fn target_bitrate(&self) -> u32 {
        self.0.target_bitrate()
    }
}

impl VideoDecoder for Counted<Box<dyn VideoDecoder>> {
    fn decode(&mut self, unit: &[u8], timestamp_us: u64) -> Result<Option<VideoFrame>, CodecError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.0.decode(unit, timestamp_us)
    }
}

impl VideoCodecs for CountingCodecs {
    fn encoder(&self, config: VideoEncoderConfig) -> Result<Box<dyn VideoEncoder>, CodecError> {
        Ok(Box::new(Counted(SoftwareVideoCodecs.encoder(config)?, self.frames_encoded.clone())))
    }
    fn decoder(&self) -> Result<Box<dyn VideoDecoder>, CodecError> {
        self.decoders_made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Box::new(Counted(SoftwareVideoCodecs.decoder()?, self.units_decoded.clone())))
    }
}

fn counted(c: &std::sync::atomic::AtomicU64) -> u64 {
    c.load(std::sync::atomic::Ordering::Relaxed)
}

/// A client whose video goes through a `CountingCodecs`, and the codecs to read.
async fn peer_with_counting_codecs(srv: &ServerHandle, uid: &str) -> (Peer, Arc<CountingCodecs>) {
    let codecs = Arc::new(CountingCodecs::default());
    let media = MediaConfig { video_codecs: codecs.clone(), ..MediaConfig::loopback() };
    (Peer::connect_configured(&srv.http_url(), srv.secret(), uid, None, media).await, codecs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_codec_replaces_openh264() {
    let _shared = PROCESS.read().await;
    let srv = server(quick_config()).await;
    let (mut alice, codecs) = peer_with_counting_codecs(&srv, "alice").await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let (_out, _inc, [(alice_sees, _), (bob_sees, _)]) =
        connected_with_media(&mut alice, &mut bob).await;
    eventually("frames both ways", || alice_sees.verified() >= 5 && bob_sees.verified() >= 5).await;
    assert!(counted(&codecs.frames_encoded) >= 5, "alice's frames went through her codec");
    assert!(counted(&codecs.units_decoded) >= 5, "and bob's through her decoder");
}

/// Codecs with no encoder at all (a device whose hardware encoder is busy, with no fallback).
struct NoEncoder;

impl VideoCodecs for NoEncoder {
    fn encoder(&self, _: VideoEncoderConfig) -> Result<Box<dyn VideoEncoder>, CodecError> {
        Err(CodecError::Unavailable("no H.264 encoder here".into()))
    }
    fn decoder(&self) -> Result<Box<dyn VideoDecoder>, CodecError> {
        SoftwareVideoCodecs.decoder()
    }
}

/// The encoder is made on its pipeline's thread, off the runtime, but a caller without one
/// still fails before its invite: the callee's phone never rings for a call that cannot work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_without_an_encoder_fails_before_the_callee_rings() {
    let _shared = PROCESS.read().await;
    let srv = server(quick_config()).await;
    let media = MediaConfig { video_codecs: Arc::new(NoEncoder), ..MediaConfig::loopback() };
    let mut alice =
        Peer::connect_configured(&srv.http_url(), srv.secret(), "alice", None, media).await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let _out = alice.call("bob", None);
    match alice.failed().await {
        CallError::NoCodec { kind: MediaKind::Video, detail } => {
            assert!(detail.contains("no H.264 encoder here"), "{detail}");
        }
        other => panic!("expected NoCodec for video, got {other:?}"),
    }
    bob.quiet(Duration::from_millis(500)).await;
}

fn udp_sockets() -> usize {
    let inodes: std::collections::HashSet<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| l.to_str()?.strip_prefix("socket:[")?.strip_suffix(']').map(str::to_owned))
        .collect();
    ["/proc/self/net/udp", "/proc/self/net/udp6"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|t| {
            t.lines()
                .skip(1)
                .filter_map(|l| l.split_whitespace().nth(9).map(str::to_owned))
                .collect::<Vec<_>>()
        })
        .filter(|inode| inodes.contains(inode))
        .count()
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current().metrics().num_alive_tasks()
}

/// Every relay allocation a call made (the relay-only caller's and the callee's relay
/// candidate) is released when the call ends, not left to expire 10 minutes later, also
/// when the clients shut down right after the hang-up and their runtime ends, as a process
/// that exits after its call does (the CLI): in about 1 call in 2 to 12 an allocation was
/// left behind that way (issue 11).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_up_releases_every_turn_allocation() {
    let _shared = PROCESS.read().await;
    let srv = server(quick_config()).await;
    for round in 0..6 {
        let (url, secret) = (srv.http_url(), srv.secret().to_owned());
        // Alternate who hangs up: each side's close must release its own.
        let caller_hangs_up = round % 2 == 0;
        tokio::task::spawn_blocking(move || {
            let clients = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            clients.block_on(relayed_call_then_exit(&url, &secret, caller_hangs_up));
            // The runtime ends here: whatever the clients left running is cut off.
        })
        .await
        .unwrap();
        until_no_turn_allocation(&srv, &format!("round {round}"), "the clients exited").await;
    }
}

/// `alice` calls `bob` relay-only and bob accepts; each side's received video is watched.
async fn relayed_call(
    alice: &mut Peer,
    bob: &mut Peer,
) -> (Arc<Conversation>, Arc<Conversation>, Arc<Verifier>, Arc<Verifier>) {
    let relay =
        CallOptions { ice_transport_policy: IceTransportPolicy::Relay, ..Default::default() };
    let out = alice.call_with("bob", small_stream(), relay);
    let (inc, _) = bob.called().await;
    inc.accept(small_stream()).unwrap();
    alice.response(CallStatus::Accepted).await;
    let (alice_sees, _) = watch_stream(alice, &out).await;
    let (bob_sees, _) = watch_stream(bob, &inc).await;
    (out, inc, alice_sees, bob_sees)
}

/// A relay-only call with media both ways, a hang-up, and both clients shut down at once.
async fn relayed_call_then_exit(url: &str, secret: &str, caller_hangs_up: bool) {
    let mut alice = Peer::connect(url, secret, "alice").await;
    let mut bob = Peer::connect(url, secret, "bob").await;
    let (out, inc, alice_sees, bob_sees) = relayed_call(&mut alice, &mut bob).await;
    eventually("frames through the relay", || {
        alice_sees.verified() >= 2 && bob_sees.verified() >= 2
    })
    .await;
    let stats = out.stats().await.unwrap();
    assert_eq!(stats.local_candidate_type, Some(CandidateType::Relay), "{stats:?}");
    if caller_hangs_up {
        out.close();
        bob.closed(&inc, EndReason::Hangup).await;
    } else {
        inc.close();
        alice.closed(&out, EndReason::Hangup).await;
    }
    alice.video.shutdown().await;
    bob.video.shutdown().await;
}

/// A quick server whose calls ring long enough to pre-connect and look around on a loaded
/// machine.
fn ringing_config() -> duet_server::ServerConfig {
    duet_server::ServerConfig { ring_timeout: Duration::from_secs(20), ..quick_config() }
}

/// Waits until the conversation's session has a selected ICE pair (it pre-connected).
async fn until_ice_is_up(conv: &Conversation) -> CallStats {
    let start = tokio::time::Instant::now();
    loop {
        if let Some(s) = conv.stats().await.filter(|s| s.local_candidate_type.is_some()) {
            return s;
        }
        assert!(start.elapsed() < PATIENCE, "ICE never came up while the call rang");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Pre-connect: the callee's only device answers the offer while it rings, so ICE and DTLS
/// are done by the accept; nothing is sent or decoded on either side before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ringing_callee_pre_connects_and_media_waits_for_the_accept() {
    let _shared = PROCESS.read().await;
    let srv = server(ringing_config()).await;
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let out = alice.call("bob", None);
    let (inc, _) = bob.called().await;
    until_ice_is_up(&inc).await;
    until_ice_is_up(&out).await;
    // Long enough for a sender that ignored the ring to have sent frames and audio.
    tokio::time::sleep(Duration::from_millis(400)).await;
    for (who, conv) in [("caller", &out), ("callee", &inc)] {
        let s = conv.stats().await.unwrap();
        assert_eq!(
            (s.frames_sent, s.audio_packets_sent, s.packets_sent, s.packets_received),
            (0, 0, 0, 0),
            "the {who} sends and receives no media while the call rings: {s:?}"
        );
        assert_eq!(s.frames_decoded, 0);
    }
    assert_eq!(inc.state(), ConversationState::Ringing);
    assert!(inc.remote_stream().is_none_or(|r| r.frames_decoded() == 0));

    inc.accept(small_stream()).unwrap();
    alice.response(CallStatus::Accepted).await;
    let (alice_sees, _) = watch_stream(&mut alice, &out).await;
    let (bob_sees, _) = watch_stream(&mut bob, &inc).await;
    eventually("frames both ways after the accept", || {
        alice_sees.verified() >= 5 && bob_sees.verified() >= 5
    })
    .await;
    assert_eq!(alice_sees.wrong() + bob_sees.wrong(), 0);
    out.close();
    bob.closed(&inc, EndReason::Hangup).await;
}

/// The callee's video decoder is made as the call rings, from the caller's offer, so that the
/// first frame after the accept does not wait for it; it decodes nothing until then, and the
/// call's frames go through that one decoder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ringing_callee_makes_its_decoder_ahead_and_uses_it_after_the_accept() {
    let _shared = PROCESS.read().await;
    let srv = server(ringing_config()).await;
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let (mut bob, codecs) = peer_with_counting_codecs(&srv, "bob").await;
    let out = alice.call("bob", None);
    let (inc, _) = bob.called().await;
    eventually("bob's decoder made while the call rings", || counted(&codecs.decoders_made) == 1)
        .await;
    until_ice_is_up(&inc).await;
    assert_eq!(inc.state(), ConversationState::Ringing);
    assert_eq!(counted(&codecs.units_decoded), 0, "nothing decoded before the accept");

    inc.accept(small_stream()).unwrap();
    alice.response(CallStatus::Accepted).await;
    let (bob_sees, _) = watch_stream(&mut bob, &inc).await;
    eventually("frames after the accept", || bob_sees.verified() >= 5).await;
    assert!(counted(&codecs.units_decoded) >= 5, "through the decoder made ahead");
    assert_eq!(counted(&codecs.decoders_made), 1, "and no other");
    out.close();
    bob.closed(&inc, EndReason::Hangup).await;
}

/// A pre-connected call that ends while it rings (rejected, cancelled) lets go of its
/// sockets and tasks on both sides, and of its TURN allocations (the embedded server's relay
/// sockets count here too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pre_connected_call_that_ends_while_ringing_releases_its_sockets() {
    let _alone = PROCESS.write().await;
    let srv = server(ringing_config()).await;
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let (sockets, tasks, _) = warmed_up(&mut alice, &mut bob).await;

    for reject in [true, false] {
        let out = alice.call("bob", None);
        let (inc, _) = bob.called().await;
        until_ice_is_up(&inc).await;
        assert!(udp_sockets() > sockets, "a pre-connecting call holds UDP sockets");
        if reject {
            inc.reject().unwrap();
            alice.response(CallStatus::Rejected).await;
            alice.closed(&out, EndReason::Rejected).await;
        } else {
            out.close();
            bob.closed(&inc, EndReason::Cancelled).await;
        }
        drop((out, inc));
        eventually("sockets released", || udp_sockets() <= sockets).await;
        eventually("tasks released", || alive_tasks() <= tasks).await;
    }
}

/// With pre-connect off, a ringing call has no media session at all until the accept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callee_with_pre_connect_off_builds_nothing_until_it_accepts() {
    let _shared = PROCESS.read().await;
    let srv = server(ringing_config()).await;
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect_tweaked(&srv.http_url(), srv.secret(), "bob", None, |c| {
        c.pre_connect = false;
    })
    .await;
    let out = alice.call("bob", None);
    let (inc, _) = bob.called().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(inc.stats().await.is_none(), "no session while it rings");
    assert!(out.stats().await.unwrap().local_candidate_type.is_none(), "no ICE pair yet");
    inc.accept(small_stream()).unwrap();
    alice.response(CallStatus::Accepted).await;
    let (alice_sees, _) = watch_stream(&mut alice, &out).await;
    eventually("frames after the accept", || alice_sees.verified() >= 3).await;
}

/// A call that ends the moment it rings, while the callee's pre-connect may still be
/// allocating its TURN relay candidate, leaves no allocation on the server: the closing
/// session waits for the allocation's answer and releases it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_rejected_as_it_rings_leaves_no_turn_allocation() {
    let _shared = PROCESS.read().await;
    let srv = server(ringing_config()).await;
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    for round in 0..5 {
        let out = alice.call("bob", None);
        let (inc, _) = bob.called().await;
        inc.reject().unwrap();
        alice.response(CallStatus::Rejected).await;
        alice.closed(&out, EndReason::Rejected).await;
        until_no_turn_allocation(&srv, &format!("round {round}"), "the reject").await;
    }
}

/// Waits until the server's embedded TURN holds no allocation; fails if one is still held
/// 3 s after `after`.
async fn until_no_turn_allocation(srv: &duet_server::ServerHandle, what: &str, after: &str) {
    let start = tokio::time::Instant::now();
    loop {
        let left = srv.turn_allocations().await.unwrap();
        if left == 0 {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{what}: {left} allocations still held 3 s after {after}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
