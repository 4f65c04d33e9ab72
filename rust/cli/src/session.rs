//! The calls the CLI places and answers: `duet call`, `duet answer` and `duet demo`. Each
//! carries the synthetic camera and microphone, and checks the frames it receives: against
//! the pattern when the peer is Duet's, or that they decode and keep coming when it is not
//! (a browser, an app with a real camera).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use duet_core::{
    CallOptions, CallStats, CallStatus, CandidateType, ClientConfig, ConnectionState, Conversation,
    EndReason, IceTransportPolicy, LocalStream, MediaConfig, MediaState, StreamConstraints,
    VideoCall, VideoConstraints,
};
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::bridge::{Bridge, Happened, Screen};
use crate::codec_clock;
use crate::report::Reporter;
use crate::ClientArgs;

/// Exit status for a call that did not go as asked (rejected, busy, unanswered, failed, or
/// its video failed its check).
const NOT_AS_ASKED: u8 = 1;
/// Exit status for a client that could not connect at all, or was used wrongly.
const CANNOT_CONNECT: u8 = 2;

pub(crate) enum AnswerMode {
    /// Accept once the call has rung for `after`.
    Accept {
        after: Duration,
    },
    Reject,
    Ignore,
}

/// What `duet demo` does.
pub(crate) struct Demo {
    /// How long the call lasts once media flows.
    pub stay: Duration,
    /// What both sides capture.
    pub camera: VideoConstraints,
    /// How long bob lets it ring.
    pub answer_after: Duration,
    /// Whether bob pre-connects while it rings.
    pub pre_connect: bool,
}

struct Client {
    video: VideoCall,
    bridge: Arc<Bridge>,
    screen: Arc<Screen>,
    events: UnboundedReceiver<Happened>,
    report: Reporter,
    interrupted: Interrupt,
    /// What this client's synthetic camera captures.
    camera: VideoConstraints,
}

/// Ctrl-C, heard once for the whole process. A `ctrl_c()` future made afresh in each turn of
/// a loop hears only signals that come while it is being polled: one that lands while the
/// loop is busy elsewhere (awaiting stats) would be lost, and the call would go on.
#[derive(Clone)]
struct Interrupt(tokio::sync::watch::Receiver<bool>);

impl Interrupt {
    fn listen() -> Interrupt {
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = tx.send(true);
            }
        });
        Interrupt(rx)
    }

    async fn heard(&mut self) {
        if self.0.wait_for(|&heard| heard).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The synthetic camera of every CLI call but `demo --size/--fps`: 320x240 at 30 fps.
pub(crate) const CAMERA: VideoConstraints =
    VideoConstraints { width: 320, height: 240, fps: 30, max_bitrate_bps: 600_000 };

/// A bitrate for a synthetic camera of another size: CAMERA's bits per pixel per second,
/// which gives 1.5 Mbps at 1280x720 (what codec_cost measures 720p at) and scales below it.
pub(crate) fn camera_of(width: u32, height: u32, fps: u32) -> VideoConstraints {
    let pixels_per_second = u64::from(width) * u64::from(height) * u64::from(fps.max(1));
    let reference = u64::from(CAMERA.width * CAMERA.height * CAMERA.fps);
    let bps = u64::from(CAMERA.max_bitrate_bps) * pixels_per_second / reference;
    // 720p at 30 fps would be 7.2 Mbps at CAMERA's rate; a real 720p call asks for far less.
    let bps = bps.clamp(50_000, 1_500_000);
    VideoConstraints {
        width,
        height,
        fps,
        max_bitrate_bps: u32::try_from(bps).unwrap_or(1_500_000),
    }
}

/// The synthetic camera and microphone a CLI call carries.
fn camera(video: VideoConstraints) -> Arc<LocalStream> {
    LocalStream::synthetic(StreamConstraints { audio: true, video: Some(video) })
}

/// Media stays on loopback when the server does: both peers are then on this machine.
fn media_config(server_url: &str) -> MediaConfig {
    let host = server_url.split("://").nth(1).unwrap_or_default();
    if host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]") {
        MediaConfig::loopback()
    } else {
        MediaConfig::default()
    }
}

async fn connect(
    server_url: &str,
    token: String,
    tls_roots: Vec<Vec<u8>>,
    pre_connect: bool,
    report: Reporter,
) -> Result<Client, ExitCode> {
    let (bridge, screen, events) = Bridge::new();
    let mut config = ClientConfig::new(server_url, token);
    config.media = media_config(server_url);
    config.media.video_codecs = codec_clock::timed_software_codecs();
    config.tls_roots = tls_roots;
    config.pre_connect = pre_connect;
    match VideoCall::connect(config, bridge.clone()).await {
        Ok(video) => {
            report.event(
                "connected",
                &[("as", json!(video.uid())), ("device", json!(video.device_id()))],
            );
            Ok(Client {
                video,
                bridge,
                screen,
                events,
                report,
                interrupted: Interrupt::listen(),
                camera: CAMERA,
            })
        }
        Err(e) => {
            report.error(&e.to_string());
            Err(ExitCode::from(CANNOT_CONNECT))
        }
    }
}

async fn connect_with_args(args: &ClientArgs, report: &Reporter) -> Result<Client, ExitCode> {
    let credentials = match args.tls_roots() {
        Ok(roots) => args.token().await.map(|token| (token, roots)),
        Err(e) => Err(e),
    };
    let (token, roots) = match credentials {
        Ok(c) => c,
        Err(e) => {
            report.error(&e);
            return Err(ExitCode::from(CANNOT_CONNECT));
        }
    };
    connect(&args.server, token, roots, !args.no_pre_connect, report.clone()).await
}

/// How a followed conversation went.
#[derive(Default)]
struct Outcome {
    status: Option<CallStatus>,
    streamed: bool,
    setup: Option<Duration>,
    /// From `since` (the call, or the accept) to the first decoded frame.
    first_frame: Option<Duration>,
    since: Option<Instant>,
    last_stats: Option<CallStats>,
}

impl Outcome {
    fn side(&self, screen: &Screen) -> Value {
        json!({
            "frames_sent": self.last_stats.as_ref().map_or(0, |s| s.frames_sent),
            "frames_received": screen.video.frames(),
            "frames_verified": screen.video.verified(),
        })
    }
}

impl Client {
    /// Reports a conversation's events until it ends; once media flows, stays `stay`, then
    /// hangs up. Prints stats every second while the call is up.
    async fn follow(&mut self, conv: &Conversation, stay: Duration, since: Instant) -> Outcome {
        let mut outcome = Outcome { since: Some(since), ..Outcome::default() };
        let mut hang_up_at: Option<tokio::time::Instant> = None;
        let mut stats_tick = tokio::time::interval(Duration::from_secs(1));
        stats_tick.tick().await;
        let mut network = NetworkWatch::new();
        loop {
            let hang_up = async {
                match hang_up_at {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                happened = self.events.recv() => match happened {
                    Some(Happened::Response(status)) => {
                        let mut fields = vec![("status", json!(status_name(status)))];
                        if status == CallStatus::Accepted {
                            outcome.setup = Some(since.elapsed());
                            fields.push(("setup_ms", json!(ms(since.elapsed()))));
                        }
                        self.report.event("response", &fields);
                        outcome.status = Some(status);
                    }
                    Some(Happened::Stream(remote)) => {
                        remote.set_video_sink(Some(self.screen.clone()));
                        self.report.event("stream", &[]);
                        outcome.streamed = true;
                        hang_up_at = Some(tokio::time::Instant::now() + stay);
                    }
                    Some(Happened::FirstFrame) => {
                        outcome.first_frame = Some(since.elapsed());
                        self.report.event("first_frame", &[("ms", json!(ms(since.elapsed())))]);
                    }
                    Some(Happened::RemoteMedia { video, audio }) => {
                        self.report.event(
                            "remote_media",
                            &[("video", json!(video)), ("audio", json!(audio))],
                        );
                    }
                    Some(Happened::Signaling(state)) => {
                        self.report.event("signaling", &[("state", json!(signaling_name(&state)))]);
                    }
                    Some(Happened::Media(state)) => {
                        self.report.event("media_state", &[("state", json!(media_state_name(state)))]);
                    }
                    Some(Happened::Quality(local, remote)) => {
                        self.report.event("quality", &[("local", json!(local)), ("remote", json!(remote))]);
                    }
                    Some(Happened::Failed(e)) => self.report.error(&e.to_string()),
                    Some(Happened::Closed) | None => {
                        let reason = conv.close_reason().unwrap_or(EndReason::Failed);
                        self.report.event("closed", &[("reason", json!(reason.as_str()))]);
                        return outcome;
                    }
                    // The engine declines calls that arrive during one; nothing reaches here.
                    Some(Happened::Called(..)) => {}
                },
                _ = stats_tick.tick(), if outcome.streamed => {
                    if let Some(s) = conv.stats().await {
                        self.report.event("stats", &stats_fields(&s, &self.screen));
                        outcome.last_stats = Some(s);
                    }
                }
                () = network.changed() => {
                    self.report.event("network_changed", &[]);
                    self.video.network_changed();
                }
                _ = hang_up => return self.hang_up(conv, outcome).await,
                _ = self.interrupted.heard() => return self.hang_up(conv, outcome).await,
            }
        }
    }

    async fn hang_up(&self, conv: &Conversation, mut outcome: Outcome) -> Outcome {
        if let Some(s) = conv.stats().await {
            outcome.last_stats = Some(s);
        }
        conv.close();
        self.report.event("closed", &[("reason", json!(EndReason::Local.as_str()))]);
        outcome
    }

    async fn wait_for_call(&mut self) -> Option<(Arc<Conversation>, Option<String>)> {
        loop {
            tokio::select! {
                happened = self.events.recv() => match happened? {
                    Happened::Called(conv, data) => return Some((conv, data)),
                    _ => continue,
                },
                _ = self.interrupted.heard() => return None,
            }
        }
    }

    /// True if this side received and verified Duet's pattern.
    fn saw_video(&self) -> bool {
        self.screen.video.verified() > 0
    }

    /// The last line of `call` and `answer`: whether the call went as asked, which video
    /// check applied, and what flowed.
    fn summary(&self, ok: bool, outcome: Option<&Outcome>, end: Instant) {
        let video = &self.screen.video;
        let stats = outcome.and_then(|o| o.last_stats.as_ref());
        let stat = |f: fn(&CallStats) -> u64| json!(stats.map(f));
        self.report.event(
            "summary",
            &[
                ("ok", json!(ok)),
                ("check", json!((video.frames() > 0).then(|| video.check().as_str()))),
                ("setup_ms", json!(outcome.and_then(|o| o.setup).map(ms))),
                ("first_frame_ms", json!(outcome.and_then(|o| o.first_frame).map(ms))),
                ("frames_sent", stat(|s| s.frames_sent)),
                ("frames_received", json!(video.frames())),
                ("frames_verified", json!(video.verified())),
                ("frames_not_blank", json!(video.not_blank())),
                ("longest_gap_ms", json!(video.longest_gap(end).map(ms))),
                ("frames_decoded", stat(|s| s.frames_decoded)),
                ("frames_corrupted", json!(video.corrupted())),
                ("bytes_sent", stat(|s| s.bytes_sent)),
                ("video", video.smoothness(end).to_json()),
                ("audio_packets_sent", stat(|s| s.audio_packets_sent)),
                ("audio_frames_decoded", stat(|s| s.audio_frames_decoded)),
                (
                    "candidate",
                    json!(stats.and_then(|s| s.local_candidate_type).map(CandidateType::as_str)),
                ),
            ],
        );
    }
}

fn stats_fields(s: &CallStats, screen: &Screen) -> Vec<(&'static str, Value)> {
    vec![
        ("sent", json!(format!("{}x{}", s.sent_width, s.sent_height))),
        ("received", json!(format!("{}x{}", s.received_width, s.received_height))),
        ("fps_received", json!(round1(s.received_fps))),
        ("kbps_sent", json!(round1(s.bitrate_sent_bps / 1000.0))),
        ("video_target_kbps", json!(round1(f64::from(s.target_bitrate_bps) / 1000.0))),
        ("bytes_sent", json!(s.bytes_sent)),
        ("packets_sent", json!(s.packets_sent)),
        ("kbps_received", json!(round1(s.bitrate_received_bps / 1000.0))),
        ("rtt_ms", json!(s.rtt_ms.map(round1))),
        ("lost", json!(s.packets_lost)),
        ("jitter_ms", json!(round1(s.jitter_ms))),
        ("candidate", json!(s.local_candidate_type.map(CandidateType::as_str))),
        ("frames_received", json!(screen.video.frames())),
        ("frames_verified", json!(screen.video.verified())),
        ("audio_packets_sent", json!(s.audio_packets_sent)),
        ("audio_frames_decoded", json!(s.audio_frames_decoded)),
    ]
}

pub(crate) async fn call(
    args: &ClientArgs,
    report: &Reporter,
    to: &str,
    data: Option<String>,
    relay: bool,
    stay: Duration,
) -> ExitCode {
    let mut client = match connect_with_args(args, report).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let policy = if relay { IceTransportPolicy::Relay } else { IceTransportPolicy::All };
    let outcome = place_call(&mut client, to, data, policy, stay).await;
    let end = Instant::now();
    client.video.shutdown().await;
    let accepted = outcome.as_ref().is_some_and(|o| o.status == Some(CallStatus::Accepted));
    let ok = accepted && client.screen.video.passed(end);
    client.summary(ok, outcome.as_ref(), end);
    exit_status(ok)
}

fn exit_status(as_asked: bool) -> ExitCode {
    if as_asked {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(NOT_AS_ASKED)
    }
}

async fn place_call(
    client: &mut Client,
    to: &str,
    data: Option<String>,
    policy: IceTransportPolicy,
    stay: Duration,
) -> Option<Outcome> {
    let since = Instant::now();
    let options = CallOptions { data, ice_transport_policy: policy };
    let conv = match client.video.call(to, camera(client.camera.clone()), options) {
        Ok(c) => c,
        Err(e) => {
            client.report.error(&e.to_string());
            return None;
        }
    };
    conv.set_delegate(client.bridge.clone());
    Some(client.follow(&conv, stay, since).await)
}

pub(crate) async fn answer(
    args: &ClientArgs,
    report: &Reporter,
    mode: AnswerMode,
    stay: Duration,
) -> ExitCode {
    let mut client = match connect_with_args(args, report).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (ok, outcome) = answer_one(&mut client, mode, stay).await;
    let end = Instant::now();
    client.video.shutdown().await;
    client.summary(ok, outcome.as_ref(), end);
    exit_status(ok)
}

/// Waits for one call and treats it as asked: whether that went as asked, and how the call
/// went if there was one.
async fn answer_one(
    client: &mut Client,
    mode: AnswerMode,
    stay: Duration,
) -> (bool, Option<Outcome>) {
    let Some((conv, data)) = client.wait_for_call().await else {
        return (false, None);
    };
    client.report.event("called", &[("from", json!(conv.remote_uid())), ("data", json!(data))]);
    conv.set_delegate(client.bridge.clone());
    match mode {
        AnswerMode::Accept { after } => {
            // A zero sleep still waits for the timer's next tick (up to a millisecond).
            if !after.is_zero() {
                tokio::time::sleep(after).await;
            }
            let since = Instant::now();
            if let Err(e) = conv.accept(camera(client.camera.clone())) {
                client.report.error(&e.to_string());
                return (false, None);
            }
            let outcome = client.follow(&conv, stay, since).await;
            (client.screen.video.passed(Instant::now()), Some(outcome))
        }
        AnswerMode::Reject => match conv.reject() {
            Ok(()) => {
                client.report.event("closed", &[("reason", json!(EndReason::Local.as_str()))]);
                (true, None)
            }
            Err(e) => {
                client.report.error(&e.to_string());
                (false, None)
            }
        },
        AnswerMode::Ignore => (true, Some(client.follow(&conv, stay, Instant::now()).await)),
    }
}

/// `camera` is what both sides capture (`demo --size --fps`).
pub(crate) async fn demo(report: &Reporter, demo: Demo) -> ExitCode {
    let Demo { stay, camera, answer_after, pre_connect } = demo;
    let config =
        duet_server::ServerConfig { listen: ([127, 0, 0, 1], 0).into(), ..Default::default() };
    let server = match duet_server::start(config).await {
        Ok(s) => s,
        Err(e) => {
            report.error(&format!("cannot start the embedded server: {e}"));
            return ExitCode::from(CANNOT_CONNECT);
        }
    };
    report.event("server", &[("url", json!(server.http_url()))]);
    let token =
        |uid: &str| duet_server::token::mint(server.secret(), uid, Duration::from_secs(600));
    let url = server.http_url();
    let (alice, bob) = tokio::join!(
        connect(&url, token("alice"), Vec::new(), true, report.for_client("alice")),
        connect(&url, token("bob"), Vec::new(), pre_connect, report.for_client("bob")),
    );
    let (Ok(mut alice), Ok(mut bob)) = (alice, bob) else {
        server.shutdown().await;
        return ExitCode::from(CANNOT_CONNECT);
    };
    alice.camera = camera.clone();
    bob.camera = camera;

    // Bob answers whatever comes for as long as it lasts; alice decides when it ends.
    let bob_side = async {
        let mode = AnswerMode::Accept { after: answer_after };
        let (_, outcome) = answer_one(&mut bob, mode, stay * 10).await;
        (outcome, bob)
    };
    let alice_side = async {
        let data = Some("hello from alice".into());
        let outcome = place_call(&mut alice, "bob", data, IceTransportPolicy::All, stay).await;
        (outcome, alice)
    };
    let ((bob_outcome, bob), (alice_outcome, alice)) = tokio::join!(bob_side, alice_side);
    let ok = alice.saw_video()
        && bob.saw_video()
        && alice_outcome.as_ref().is_some_and(|o| o.status == Some(CallStatus::Accepted));
    let empty = Outcome::default();
    let (a, b) = (alice_outcome.as_ref().unwrap_or(&empty), bob_outcome.as_ref().unwrap_or(&empty));
    report.event(
        "summary",
        &[
            ("ok", json!(ok)),
            ("setup_ms", json!(a.setup.map(ms))),
            ("first_frame_ms", json!(a.first_frame.map(ms))),
            // From bob's accept to the first frame bob decoded, and alice.
            ("accept_first_frame_ms", json!(b.first_frame.map(ms))),
            ("accept_caller_first_frame_ms", json!(since_accept(a, b).map(ms))),
            // Both sides' video encode and decode, by their threads' CPU clocks.
            ("video_codec_cpu_s", json!(codec_clock::video_codec_cpu().as_secs_f64())),
            ("alice", a.side(&alice.screen)),
            ("bob", b.side(&bob.screen)),
        ],
    );
    alice.video.shutdown().await;
    bob.video.shutdown().await;
    server.shutdown().await;
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(NOT_AS_ASKED)
    }
}

/// From the callee's accept (`callee.since`) to the caller's first frame.
fn since_accept(caller: &Outcome, callee: &Outcome) -> Option<Duration> {
    let frame = caller.since? + caller.first_frame?;
    Some(frame.saturating_duration_since(callee.since?))
}

fn ms(d: Duration) -> f64 {
    round1(d.as_secs_f64() * 1000.0)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn status_name(s: CallStatus) -> &'static str {
    match s {
        CallStatus::Accepted => "accepted",
        CallStatus::Rejected => "rejected",
        CallStatus::Busy => "busy",
        CallStatus::Timeout => "timeout",
    }
}

/// The signaling connection's state as the `signaling` event names it.
fn signaling_name(state: &ConnectionState) -> &'static str {
    match state {
        ConnectionState::Connected => "connected",
        ConnectionState::Reconnecting => "reconnecting",
        ConnectionState::Refused { .. } => "refused",
    }
}

fn media_state_name(state: MediaState) -> &'static str {
    match state {
        MediaState::Connected => "connected",
        MediaState::Reconnecting => "reconnecting",
        MediaState::PeerReconnecting => "peer_reconnecting",
    }
}

/// The CLI's network monitor, as an app has the platform's (NWPathMonitor,
/// ConnectivityManager): it looks at this machine's addresses a few times a second and
/// says when they changed, so that a call restarts ICE at once (`network_changed`).
struct NetworkWatch {
    ticks: tokio::time::Interval,
    last: Vec<std::net::IpAddr>,
}

impl NetworkWatch {
    const PERIOD: Duration = Duration::from_millis(200);

    fn new() -> Self {
        let mut ticks = tokio::time::interval(Self::PERIOD);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        NetworkWatch { ticks, last: duet_core::local_addresses() }
    }

    /// Resolves when the addresses differ from the last look.
    async fn changed(&mut self) {
        loop {
            self.ticks.tick().await;
            let now = duet_core::local_addresses();
            if now != self.last {
                tracing::info!("local addresses changed: {:?} -> {now:?}", self.last);
                self.last = now;
                return;
            }
        }
    }
}
