//! A harness for end-to-end tests: a real duet-server on loopback, real clients, and
//! delegates that record what they hear.

#![allow(dead_code)]

pub(crate) mod proxy;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use duet_core::*;
use duet_server::{ServerConfig, ServerHandle};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// How long a test waits for an event that should come.
pub(crate) const PATIENCE: Duration = Duration::from_secs(5);

/// A server with timeouts short enough that waiting them out is cheap.
pub(crate) fn quick_config() -> ServerConfig {
    ServerConfig {
        listen: ([127, 0, 0, 1], 0).into(),
        ring_timeout: Duration::from_millis(600),
        grace: Duration::from_millis(800),
        keepalive: Duration::from_millis(500),
        ..Default::default()
    }
}

pub(crate) async fn server(config: ServerConfig) -> ServerHandle {
    duet_server::start(config).await.expect("server starts")
}

/// Waits until the server holds no call, ringing or active, as its `/metrics` says: what a
/// client did locally (a close) has then reached the server too.
pub(crate) async fn until_the_server_holds_no_call(srv: &ServerHandle) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let start = tokio::time::Instant::now();
    loop {
        let mut conn = tokio::net::TcpStream::connect(srv.local_addr()).await.expect("connect");
        conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: duet\r\nConnection: close\r\n\r\n")
            .await
            .expect("request");
        let mut reply = String::new();
        conn.read_to_string(&mut reply).await.expect("reply");
        let counts: Vec<u64> = reply
            .lines()
            .filter(|line| line.starts_with("duet_calls{"))
            .filter_map(|line| line.rsplit(' ').next()?.parse().ok())
            .collect();
        assert_eq!(counts.len(), 2, "duet_calls by state in\n{reply}");
        let held: u64 = counts.iter().sum();
        if held == 0 {
            return;
        }
        assert!(start.elapsed() < PATIENCE, "the server still holds {held} calls");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[derive(Debug)]
pub(crate) enum Ev {
    Called(Arc<Conversation>, Option<String>),
    Response(CallStatus),
    Stream,
    Failed(CallError),
    Closed,
    /// `did_end_woken_call`: the call a push woke the client for is over.
    WokenCallEnded(String, Option<EndReason>),
}

/// Connection states and the peer's media changes go to lists of their own: most tests
/// wait for call events and would trip over them.
pub(crate) struct Recorder {
    events: UnboundedSender<Ev>,
    pub connection_states: Mutex<Vec<ConnectionState>>,
    /// (video, audio) as `did_change_remote_media` heard them.
    pub remote_media: Mutex<Vec<(bool, bool)>>,
    /// What `did_change_media_state` heard, in order.
    pub media_states: Mutex<Vec<MediaState>>,
    /// (local, remote) as `did_change_network_quality` heard them.
    pub qualities: Mutex<Vec<(u8, u8)>>,
}

impl Recorder {
    pub(crate) fn new(events: UnboundedSender<Ev>) -> Recorder {
        Recorder {
            events,
            connection_states: Mutex::new(Vec::new()),
            remote_media: Mutex::new(Vec::new()),
            media_states: Mutex::new(Vec::new()),
            qualities: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn connection_states(&self) -> Vec<ConnectionState> {
        self.connection_states.lock().unwrap().clone()
    }

    pub(crate) fn remote_media(&self) -> Vec<(bool, bool)> {
        self.remote_media.lock().unwrap().clone()
    }

    pub(crate) fn media_states(&self) -> Vec<MediaState> {
        self.media_states.lock().unwrap().clone()
    }

    pub(crate) fn qualities(&self) -> Vec<(u8, u8)> {
        self.qualities.lock().unwrap().clone()
    }
}

impl VideoCallDelegate for Recorder {
    fn did_receive_call_with_conversation(&self, c: Arc<Conversation>, data: Option<String>) {
        let _ = self.events.send(Ev::Called(c, data));
    }
    fn did_change_connection_state(&self, state: ConnectionState) {
        self.connection_states.lock().unwrap().push(state);
    }
    fn did_end_woken_call(&self, call_id: String, reason: Option<EndReason>) {
        let _ = self.events.send(Ev::WokenCallEnded(call_id, reason));
    }
}

impl ConversationDelegate for Recorder {
    fn did_receive_response(&self, s: CallStatus) {
        let _ = self.events.send(Ev::Response(s));
    }
    fn did_receive_stream(&self, _: Arc<RemoteStream>) {
        let _ = self.events.send(Ev::Stream);
    }
    fn did_fail_with_error(&self, e: CallError) {
        let _ = self.events.send(Ev::Failed(e));
    }
    fn did_close(&self) {
        let _ = self.events.send(Ev::Closed);
    }
    fn did_change_remote_media(&self, video: bool, audio: bool) {
        self.remote_media.lock().unwrap().push((video, audio));
    }
    fn did_change_media_state(&self, state: MediaState) {
        self.media_states.lock().unwrap().push(state);
    }
    fn did_change_network_quality(&self, local: u8, remote: u8) {
        self.qualities.lock().unwrap().push((local, remote));
    }
}

/// One client and everything its delegates heard.
pub(crate) struct Peer {
    pub name: String,
    pub video: VideoCall,
    pub recorder: Arc<Recorder>,
    events: UnboundedReceiver<Ev>,
}

impl Peer {
    pub(crate) async fn connect(url: &str, secret: &str, uid: &str) -> Peer {
        Self::connect_with(url, secret, uid, None).await
    }

    pub(crate) async fn connect_with(
        url: &str,
        secret: &str,
        uid: &str,
        device_id: Option<&str>,
    ) -> Peer {
        Self::connect_configured(url, secret, uid, device_id, MediaConfig::loopback()).await
    }

    pub(crate) async fn connect_configured(
        url: &str,
        secret: &str,
        uid: &str,
        device_id: Option<&str>,
        media: MediaConfig,
    ) -> Peer {
        Self::connect_tweaked(url, secret, uid, device_id, |c| c.media = media).await
    }

    /// Connects with `tweak` applied to the test client's config (say, a push's
    /// `woken_for`).
    pub(crate) async fn connect_tweaked(
        url: &str,
        secret: &str,
        uid: &str,
        device_id: Option<&str>,
        tweak: impl FnOnce(&mut ClientConfig),
    ) -> Peer {
        let mut config =
            ClientConfig::new(url, duet_server::token::mint(secret, uid, Duration::from_secs(600)));
        config.device_id = device_id.map(str::to_owned);
        config.media = MediaConfig::loopback();
        tweak(&mut config);
        Self::try_connect(config, uid).await.expect("client connects")
    }

    /// A client of `config` (with quick reconnects), or why it could not connect.
    pub(crate) async fn try_connect(
        mut config: ClientConfig,
        uid: &str,
    ) -> Result<Peer, ConnectError> {
        let (tx, events) = unbounded_channel();
        let recorder = Arc::new(Recorder::new(tx));
        config.reconnect.initial_delay = Duration::from_millis(20);
        config.reconnect.max_delay = Duration::from_millis(200);
        config.reconnect.attempt_timeout = Duration::from_secs(2);
        let video = VideoCall::connect(config, recorder.clone()).await?;
        Ok(Peer { name: uid.to_owned(), video, recorder, events })
    }

    pub(crate) fn call(&self, to: &str, data: Option<&str>) -> Arc<Conversation> {
        let options = CallOptions { data: data.map(str::to_owned), ..Default::default() };
        self.call_with(to, small_stream(), options)
    }

    /// A call with this stream and these options, its events recorded like `call`'s.
    pub(crate) fn call_with(
        &self,
        to: &str,
        stream: Arc<LocalStream>,
        options: CallOptions,
    ) -> Arc<Conversation> {
        let c = self.video.call(to, stream, options).expect("call starts");
        c.set_delegate(self.recorder.clone());
        c
    }

    pub(crate) async fn next(&mut self) -> Ev {
        match tokio::time::timeout(PATIENCE, self.events.recv()).await {
            Ok(Some(ev)) => ev,
            Ok(None) => panic!("{}: event channel closed", self.name),
            Err(_) => panic!("{}: no event within {PATIENCE:?}", self.name),
        }
    }

    /// Waits for an incoming call and takes it (sets this peer as its delegate).
    pub(crate) async fn called(&mut self) -> (Arc<Conversation>, Option<String>) {
        match self.next().await {
            Ev::Called(c, data) => {
                c.set_delegate(self.recorder.clone());
                (c, data)
            }
            other => panic!("{}: expected a call, got {other:?}", self.name),
        }
    }

    pub(crate) async fn response(&mut self, want: CallStatus) {
        match self.next().await {
            Ev::Response(s) if s == want => {}
            other => panic!("{}: expected response {want:?}, got {other:?}", self.name),
        }
    }

    pub(crate) async fn stream(&mut self) {
        match self.next().await {
            Ev::Stream => {}
            other => panic!("{}: expected a stream, got {other:?}", self.name),
        }
    }

    /// Waits for `did_close` and checks the conversation's reason.
    pub(crate) async fn closed(&mut self, conv: &Conversation, want: EndReason) {
        match self.next().await {
            Ev::Closed => {
                assert_eq!(conv.close_reason(), Some(want), "{}: close reason", self.name)
            }
            other => panic!("{}: expected did_close ({want:?}), got {other:?}", self.name),
        }
        assert_eq!(conv.state(), ConversationState::Closed);
    }

    pub(crate) async fn failed(&mut self) -> CallError {
        match self.next().await {
            Ev::Failed(e) => e,
            other => panic!("{}: expected did_fail_with_error, got {other:?}", self.name),
        }
    }

    /// Asserts that nothing happens for `d`.
    pub(crate) async fn quiet(&mut self, d: Duration) {
        if let Ok(Some(ev)) = tokio::time::timeout(d, self.events.recv()).await {
            panic!("{}: expected silence, got {ev:?}", self.name);
        }
    }

    /// A call placed by `self` to `callee` and accepted there; both sides see the stream.
    pub(crate) async fn connected_call(
        &mut self,
        callee: &mut Peer,
    ) -> (Arc<Conversation>, Arc<Conversation>) {
        let out = self.call(&callee.name, None);
        let (inc, _) = callee.called().await;
        inc.accept(small_stream()).expect("accept");
        self.response(CallStatus::Accepted).await;
        self.stream().await;
        callee.stream().await;
        assert_eq!(out.state(), ConversationState::Connected);
        assert_eq!(inc.state(), ConversationState::Connected);
        (out, inc)
    }
}

/// A synthetic camera and microphone, small enough that many calls at once stay cheap.
pub(crate) fn small_stream() -> Arc<LocalStream> {
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

/// Polls `cond` until it holds or PATIENCE runs out.
pub(crate) async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < PATIENCE, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
