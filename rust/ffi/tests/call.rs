//! End to end through the FFI layer's own types (not the generated Swift or Kotlin): two
//! `VideoCall`s on a real duet-server on loopback, a call accepted from inside the callee's
//! delegate, decoded `VideoFrame` objects read through `data_address()`/`data_len()` as a
//! foreign renderer would, and a hang-up heard on the other side.

// A test that fails says so loudly (unwrap); frame sizes fit this 64-bit host (casts).
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use duet_ffi::*;
use duet_media::PatternVerifier;
use duet_server::{ServerConfig, ServerHandle};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

const PATIENCE: Duration = Duration::from_secs(10);

#[derive(Debug)]
enum Ev {
    Called(Arc<Conversation>, Option<String>),
    Response(CallStatus),
    Stream(Arc<RemoteStream>),
    Failed(CallError),
    Closed,
    WokenEnded(String, Option<EndReason>),
}

/// Records what a side's delegates hear. As the callee, it answers from inside
/// `did_receive_call_with_conversation`, as an app would.
struct Recorder {
    events: UnboundedSender<Ev>,
    answer: bool,
}

impl VideoCallDelegate for Recorder {
    fn did_receive_call_with_conversation(
        &self,
        conversation: Arc<Conversation>,
        data: Option<String>,
    ) {
        if self.answer {
            conversation
                .set_delegate(Arc::new(Recorder { events: self.events.clone(), answer: false }));
            // On the event thread, outside any runtime: the FFI starts the synthetic camera
            // on the library's runtime.
            conversation.accept(small_stream()).expect("accept");
        }
        let _ = self.events.send(Ev::Called(conversation, data));
    }

    fn did_change_connection_state(&self, _: ConnectionState) {}

    fn did_end_woken_call(&self, call_id: String, reason: Option<EndReason>) {
        let _ = self.events.send(Ev::WokenEnded(call_id, reason));
    }
}

impl ConversationDelegate for Recorder {
    fn did_receive_response(&self, status: CallStatus) {
        let _ = self.events.send(Ev::Response(status));
    }
    fn did_receive_stream(&self, stream: Arc<RemoteStream>) {
        let _ = self.events.send(Ev::Stream(stream));
    }
    fn did_fail_with_error(&self, error: CallError) {
        let _ = self.events.send(Ev::Failed(error));
    }
    fn did_close(&self) {
        let _ = self.events.send(Ev::Closed);
    }

    fn did_change_remote_media(&self, _: bool, _: bool) {}
    fn did_change_media_state(&self, _: MediaState) {}
    fn did_change_network_quality(&self, _: u8, _: u8) {}
}

/// A renderer as the foreign side writes one: reads each frame's bytes at its address,
/// copies them once, and checks the copy against the synthetic camera's pattern.
#[derive(Default)]
struct Renderer {
    verifier: PatternVerifier,
    layout_errors: Mutex<Vec<String>>,
    /// The latest frame object, kept past its callback as an app may keep one.
    kept: Mutex<Option<Arc<VideoFrame>>>,
}

/// Copies a frame's bytes out through its address, as a foreign renderer does. The
/// address and length fit this 64-bit host's usize.
#[allow(clippy::cast_possible_truncation)]
fn copy_out(frame: &VideoFrame) -> duet_media::VideoFrame {
    let len = frame.data_len() as usize;
    // SAFETY: `data_address()` is the start of the frame's `data_len()` bytes, owned by the
    // VideoFrame object that `frame` borrows (so alive for this whole function), initialised,
    // and never written after the frame was made, so nothing mutates them while the slice
    // lives. `u8` needs no alignment. The slice does not outlive `frame`: it is copied here,
    // as the lifetime rule asks of foreign code.
    let bytes =
        unsafe { std::slice::from_raw_parts(frame.data_address() as usize as *const u8, len) };
    duet_media::VideoFrame {
        width: frame.width(),
        height: frame.height(),
        data: bytes.to_vec(),
        timestamp_us: frame.timestamp_us(),
        rotation: duet_media::Rotation::Deg0,
    }
}

impl VideoSink for Renderer {
    fn on_video_frame(&self, frame: Arc<VideoFrame>) {
        let (w, h) = (frame.width(), frame.height());
        let (cw, ch) = (frame.chroma_width(), frame.chroma_height());
        let len = frame.data_len() as usize;
        let expected = (w * h + 2 * cw * ch) as usize;
        let layout_ok = len == expected
            && frame.y_offset() == 0
            && frame.y_stride() == w
            && frame.u_offset() == u64::from(w * h)
            && frame.u_stride() == cw
            && frame.v_offset() == u64::from(w * h + cw * ch)
            && frame.v_stride() == cw;
        if !layout_ok {
            self.layout_errors.lock().unwrap().push(format!("{w}x{h}: {len} bytes"));
            return;
        }
        let copy = copy_out(&frame);
        self.verifier.check(&copy);
        *self.kept.lock().unwrap() = Some(frame);
    }
}

fn small_stream() -> Arc<LocalStream> {
    LocalStream::synthetic(StreamConstraints {
        audio: true,
        video: Some(VideoConstraints {
            width: 160,
            height: 120,
            fps: 15,
            max_bitrate_bps: 150_000,
        }),
    })
}

async fn server() -> ServerHandle {
    let config = ServerConfig { listen: ([127, 0, 0, 1], 0).into(), ..Default::default() };
    duet_server::start(config).await.expect("server starts")
}

fn config(srv: &ServerHandle, token: String) -> ClientConfig {
    ClientConfig {
        server_url: srv.http_url(),
        token,
        device_id: None,
        bind_addresses: vec!["127.0.0.1:0".into()],
        woken_for: None,
        pre_connect: true,
    }
}

struct Side {
    video: Arc<VideoCall>,
    events: UnboundedReceiver<Ev>,
    recorder: Arc<Recorder>,
}

async fn connect(srv: &ServerHandle, uid: &str, answer: bool) -> Side {
    connect_with(srv, uid, answer, None).await
}

async fn connect_with(
    srv: &ServerHandle,
    uid: &str,
    answer: bool,
    codecs: Option<Arc<dyn VideoCodecs>>,
) -> Side {
    let (tx, events) = unbounded_channel();
    let recorder = Arc::new(Recorder { events: tx, answer });
    let token = duet_server::token::mint(srv.secret(), uid, Duration::from_secs(600));
    let video = VideoCall::connect(config(srv, token), recorder.clone(), codecs, None)
        .await
        .unwrap_or_else(|e| panic!("{uid} connects: {e}"));
    Side { video, events, recorder }
}

impl Side {
    async fn next(&mut self) -> Ev {
        match tokio::time::timeout(PATIENCE, self.events.recv()).await {
            Ok(Some(ev)) => ev,
            Ok(None) => panic!("event channel closed"),
            Err(_) => panic!("no event within {PATIENCE:?}"),
        }
    }
}

async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < PATIENCE, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_accepted_in_delegate_renders_frames_and_hangup_closes_the_other_side() {
    let srv = server().await;
    let mut alice = connect(&srv, "alice", false).await;
    let mut bob = connect(&srv, "bob", true).await;
    assert_eq!(alice.video.uid(), "alice");
    assert!(alice.video.is_connected());
    assert!(!alice.video.device_id().is_empty());

    let options = CallOptions {
        data: Some("custom-data".into()),
        ice_transport_policy: IceTransportPolicy::All,
    };
    let out = alice.video.call("bob".into(), small_stream(), options).expect("call starts");
    out.set_delegate(alice.recorder.clone());
    assert_eq!(out.remote_uid(), "bob");

    // Bob's delegate accepted; he keeps the conversation.
    let inc = match bob.next().await {
        Ev::Called(c, data) => {
            assert_eq!(data.as_deref(), Some("custom-data"));
            c
        }
        other => panic!("bob: expected a call, got {other:?}"),
    };
    assert_eq!(inc.remote_uid(), "alice");
    match alice.next().await {
        Ev::Response(CallStatus::Accepted) => {}
        other => panic!("alice: expected Accepted, got {other:?}"),
    }
    let remote = match alice.next().await {
        Ev::Stream(s) => s,
        other => panic!("alice: expected a stream, got {other:?}"),
    };
    assert_eq!(Some(remote.call_id()), out.call_id());
    assert_eq!(out.state(), ConversationState::Connected);

    let renderer = Arc::new(Renderer::default());
    remote.set_video_sink(Some(renderer.clone()));
    eventually("10 frames read through data_address and verified", || {
        renderer.verifier.verified() >= 10
    })
    .await;
    assert!(renderer.layout_errors.lock().unwrap().is_empty(), "plane layout");
    assert_eq!(renderer.verifier.wrong(), 0, "frames that did not match the pattern");
    assert_eq!(remote.video_size(), Some(VideoSize { width: 160, height: 120 }));
    assert!(remote.frames_decoded() >= 10);

    let stats = out.stats().await.expect("stats while the call runs");
    assert!(stats.frames_decoded > 0 && stats.bytes_received > 0, "{stats:?}");
    assert_eq!(stats.local_candidate_type, Some(CandidateType::Host));
    remote.set_video_sink(None);
    // A frame kept after its callback returned is still readable, and still the pattern.
    let kept = renderer.kept.lock().unwrap().take().expect("a kept frame");
    let copy = copy_out(&kept);
    let counter = duet_media::read_counter(&copy).expect("a kept frame still carries its counter");
    assert!(duet_media::matches_pattern(&copy, counter), "a frame read after its callback");
    drop(kept);

    out.close();
    assert_eq!(out.close_reason(), Some(EndReason::Local));
    loop {
        match bob.next().await {
            Ev::Closed => break,
            // Bob's own stream arrives while Alice's does; it is not what this waits for.
            Ev::Stream(_) => continue,
            other => panic!("bob: expected did_close, got {other:?}"),
        }
    }
    assert_eq!(inc.close_reason(), Some(EndReason::Hangup));
    assert_eq!(inc.state(), ConversationState::Closed);

    alice.video.shutdown().await;
    bob.video.shutdown().await;
    // (duet-core's `is_connected` still says true after shutdown, so it is not checked.)
    match alice.video.call(
        "bob".into(),
        small_stream(),
        CallOptions { data: None, ice_transport_policy: IceTransportPolicy::Relay },
    ) {
        Err(ActionError::Closed { .. }) => {}
        other => panic!("a call after shutdown: {:?}", other.map(|c| c.remote_uid())),
    }
}

/// Codecs as an app writes them through the foreign traits: the built-in ones wrapped,
/// counting what passes through; the decoder can fail one access unit on purpose.
#[derive(Default)]
struct Counts {
    encoded: AtomicU64,
    decoded: AtomicU64,
    /// The decoder fails the access unit with this number (counting from 1); 0: none.
    fail_unit: u64,
    failed_at: Mutex<Option<std::time::Instant>>,
    keyframes_asked: Mutex<Vec<std::time::Instant>>,
    bitrates: Mutex<Vec<u32>>,
}

struct CountingCodecs(Arc<Counts>);
struct CountingEncoder(Arc<dyn VideoEncoder>, Arc<Counts>);
struct CountingDecoder(Arc<dyn VideoDecoder>, Arc<Counts>);

impl VideoCodecs for CountingCodecs {
    fn encoder(
        &self,
        config: VideoEncoderConfig,
    ) -> Result<Arc<dyn VideoEncoder>, VideoCodecError> {
        Ok(Arc::new(CountingEncoder(software_video_codecs().encoder(config)?, self.0.clone())))
    }
    fn decoder(&self) -> Result<Arc<dyn VideoDecoder>, VideoCodecError> {
        Ok(Arc::new(CountingDecoder(software_video_codecs().decoder()?, self.0.clone())))
    }
}

impl VideoEncoder for CountingEncoder {
    fn encode(
        &self,
        frame: Arc<VideoFrame>,
        keyframe: bool,
        output: Arc<AccessUnitOutput>,
    ) -> Result<(), VideoCodecError> {
        self.1.encoded.fetch_add(1, Ordering::Relaxed);
        if keyframe {
            self.1.keyframes_asked.lock().unwrap().push(std::time::Instant::now());
        }
        self.0.encode(frame, keyframe, output)
    }
    fn set_target_bitrate(&self, bps: u32) -> Result<(), VideoCodecError> {
        self.1.bitrates.lock().unwrap().push(bps);
        self.0.set_target_bitrate(bps)
    }
}

impl VideoDecoder for CountingDecoder {
    fn decode(
        &self,
        access_unit: Arc<AccessUnit>,
    ) -> Result<Option<Arc<VideoFrame>>, VideoCodecError> {
        let n = self.1.decoded.fetch_add(1, Ordering::Relaxed) + 1;
        if n == self.1.fail_unit {
            *self.1.failed_at.lock().unwrap() = Some(std::time::Instant::now());
            return Err(VideoCodecError::Failed { reason: "on purpose".into() });
        }
        self.0.decode(access_unit)
    }
}

/// Both sides' video through codecs of their own; Alice's decoder fails once, which must
/// reach Bob's encoder as a keyframe request; bitrate targets reach the encoders.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_runs_through_the_apps_codecs() {
    let srv = server().await;
    let at_alice = Arc::new(Counts { fail_unit: 20, ..Counts::default() });
    let at_bob = Arc::new(Counts::default());
    let mut alice =
        connect_with(&srv, "alice", false, Some(Arc::new(CountingCodecs(at_alice.clone())))).await;
    let mut bob =
        connect_with(&srv, "bob", true, Some(Arc::new(CountingCodecs(at_bob.clone())))).await;
    let options = CallOptions { data: None, ice_transport_policy: IceTransportPolicy::All };
    let out = alice.video.call("bob".into(), small_stream(), options).expect("call starts");
    out.set_delegate(alice.recorder.clone());
    let _inc = match bob.next().await {
        Ev::Called(c, _) => c,
        other => panic!("bob: expected a call, got {other:?}"),
    };
    let remote = loop {
        match alice.next().await {
            Ev::Stream(s) => break s,
            Ev::Response(CallStatus::Accepted) => continue,
            other => panic!("alice: expected a stream, got {other:?}"),
        }
    };
    let renderer = Arc::new(Renderer::default());
    remote.set_video_sink(Some(renderer.clone()));
    eventually("30 frames decoded by alice's decoder and verified", || {
        renderer.verifier.verified() >= 30
    })
    .await;
    assert_eq!(renderer.verifier.wrong(), 0, "frames that did not match the pattern");
    assert!(at_alice.decoded.load(Ordering::Relaxed) >= 30, "bob's video went through her decoder");
    let failed_at = at_alice.failed_at.lock().unwrap().expect("her decoder failed once");
    eventually("bob's encoder asked for a keyframe after her decoder failed", || {
        at_bob.keyframes_asked.lock().unwrap().iter().any(|&t| t > failed_at)
    })
    .await;
    // Bob checks what alice's encoder sent him.
    let bobs_view = match bob.next().await {
        Ev::Stream(s) => s,
        other => panic!("bob: expected a stream, got {other:?}"),
    };
    let bobs_renderer = Arc::new(Renderer::default());
    bobs_view.set_video_sink(Some(bobs_renderer.clone()));
    eventually("10 frames from alice's encoder verified", || {
        bobs_renderer.verifier.verified() >= 10
    })
    .await;
    assert_eq!(bobs_renderer.verifier.wrong(), 0);
    assert!(
        at_alice.encoded.load(Ordering::Relaxed) >= 10,
        "alice's video went through her encoder"
    );
    eventually("a bitrate target reached alice's encoder", || {
        !at_alice.bitrates.lock().unwrap().is_empty()
    })
    .await;
    for &bps in at_alice.bitrates.lock().unwrap().iter() {
        assert!((50_000..=150_000).contains(&bps), "{bps} bps is outside the stream's range");
    }
    out.close();
    alice.video.shutdown().await;
    bob.video.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_reach_the_caller_and_the_delegate() {
    let srv = server().await;
    let mut alice = connect(&srv, "alice", false).await;
    let options = || CallOptions { data: None, ice_transport_policy: IceTransportPolicy::All };
    match alice.video.call("alice".into(), small_stream(), options()) {
        Err(ActionError::InvalidArgument { .. }) => {}
        other => panic!("calling yourself: {:?}", other.map(|c| c.remote_uid())),
    }
    let out = alice.video.call("nobody".into(), small_stream(), options()).unwrap();
    out.set_delegate(alice.recorder.clone());
    match alice.next().await {
        Ev::Failed(CallError::Unreachable { uid }) => assert_eq!(uid, "nobody"),
        other => panic!("expected did_fail_with_error(Unreachable), got {other:?}"),
    }
    match alice.next().await {
        Ev::Closed => assert_eq!(out.close_reason(), Some(EndReason::Unreachable)),
        other => panic!("expected did_close, got {other:?}"),
    }
    assert!(out.reject().is_err(), "rejecting an outgoing call that is over");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_token_is_a_connect_error() {
    let srv = server().await;
    let (tx, _events) = unbounded_channel();
    let delegate = Arc::new(Recorder { events: tx, answer: false });
    let err =
        match VideoCall::connect(config(&srv, "not-a-token".into()), delegate, None, None).await {
            Ok(_) => panic!("a forged token connected"),
            Err(e) => e,
        };
    match err {
        ConnectError::Refused { code: ServerErrorCode::Unauthorized, .. } => {}
        other => panic!("expected Refused(Unauthorized), got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_server_and_bad_url_are_connect_errors() {
    let (tx, _events) = unbounded_channel();
    let delegate = Arc::new(Recorder { events: tx, answer: false });
    let bad = ClientConfig {
        server_url: "ftp://example".into(),
        token: "t".into(),
        device_id: None,
        bind_addresses: vec![],
        woken_for: None,
        pre_connect: true,
    };
    match VideoCall::connect(bad, delegate.clone(), None, None).await {
        Err(ConnectError::InvalidUrl { .. }) => {}
        other => panic!("expected InvalidUrl, got {:?}", other.err()),
    }
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let closed = ClientConfig {
        server_url: format!("http://127.0.0.1:{port}"),
        token: "t".into(),
        device_id: None,
        bind_addresses: vec![],
        woken_for: None,
        pre_connect: true,
    };
    match VideoCall::connect(closed, delegate, None, None).await {
        Err(ConnectError::Unreachable { .. }) => {}
        other => panic!("expected Unreachable, got {:?}", other.err()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_registration_and_a_woken_call_that_ended_cross_the_ffi() {
    let srv = server().await;
    let alice = connect(&srv, "alice", false).await;
    let mut tablet = connect(&srv, "bob", false).await;

    let apns = PushToken::Apns {
        token: "5f3c9a0b7d1e2f4a".into(),
        bundle_id: "dev.duet.example".into(),
        environment: ApnsEnvironment::Sandbox,
    };
    tablet.video.register_push(apns).await.expect("an APNs token is kept");
    match tablet.video.register_push(PushToken::Fcm { token: "not a token".into() }).await {
        Err(PushError::InvalidToken { .. }) => {}
        other => panic!("expected InvalidToken, got {other:?}"),
    }
    tablet.video.unregister_push().await.expect("unregistered");

    // The tablet keeps the call ringing; the caller gives up before the phone wakes.
    let out = alice.video.call(
        "bob".into(),
        small_stream(),
        CallOptions { data: None, ice_transport_policy: IceTransportPolicy::All },
    );
    let out = out.expect("call");
    let Ev::Called(incoming, _) = tablet.next().await else { panic!("tablet rings") };
    let call_id = out.call_id().expect("the call has its id once it rings");
    out.close();
    // The phone wakes after the server has ended the call: the tablet hearing the cancel
    // says it has. Connecting earlier would race the close and find the call still ringing.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while incoming.close_reason().is_none() {
        assert!(tokio::time::Instant::now() < deadline, "the tablet never heard the cancel");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (tx, mut woken_events) = unbounded_channel();
    let token = duet_server::token::mint(srv.secret(), "bob", Duration::from_secs(600));
    let mut woken = config(&srv, token);
    woken.woken_for = Some(call_id.clone());
    let _phone =
        VideoCall::connect(woken, Arc::new(Recorder { events: tx, answer: false }), None, None)
            .await
            .expect("the woken phone connects");
    match tokio::time::timeout(PATIENCE, woken_events.recv()).await {
        Ok(Some(Ev::WokenEnded(id, reason))) => {
            assert_eq!((id, reason), (call_id, Some(EndReason::Cancelled)));
        }
        other => panic!("expected the woken call's end, got {other:?}"),
    }
}
