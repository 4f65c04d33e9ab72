//! A harness for end-to-end tests: a real duet-server on loopback, real clients, and
//! delegates that record what they hear.

#![allow(dead_code)]

pub mod proxy;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use duet_core::*;
use duet_server::{ServerConfig, ServerHandle};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// How long a test waits for an event that should come.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// A server with timeouts short enough that waiting them out is cheap.
pub fn quick_config() -> ServerConfig {
    ServerConfig {
        listen: ([127, 0, 0, 1], 0).into(),
        ring_timeout: Duration::from_millis(600),
        grace: Duration::from_millis(800),
        keepalive: Duration::from_millis(500),
        ..Default::default()
    }
}

pub async fn server(config: ServerConfig) -> ServerHandle {
    duet_server::start(config).await.expect("server starts")
}

#[derive(Debug)]
pub enum Ev {
    Called(Arc<Conversation>, Option<String>),
    Response(CallStatus),
    Stream,
    Failed(CallError),
    Closed,
}

/// Connection states and the peer's media changes go to lists of their own: most tests
/// wait for call events and would trip over them.
pub struct Recorder {
    events: UnboundedSender<Ev>,
    pub connection_states: Mutex<Vec<ConnectionState>>,
    /// (video, audio) as `did_change_remote_media` heard them.
    pub remote_media: Mutex<Vec<(bool, bool)>>,
}

impl Recorder {
    pub fn new(events: UnboundedSender<Ev>) -> Recorder {
        Recorder {
            events,
            connection_states: Mutex::new(Vec::new()),
            remote_media: Mutex::new(Vec::new()),
        }
    }

    pub fn connection_states(&self) -> Vec<ConnectionState> {
        self.connection_states.lock().unwrap().clone()
    }

    pub fn remote_media(&self) -> Vec<(bool, bool)> {
        self.remote_media.lock().unwrap().clone()
    }
}

impl VideoCallDelegate for Recorder {
    fn did_receive_call_with_conversation(&self, c: Arc<Conversation>, data: Option<String>) {
        let _ = self.events.send(Ev::Called(c, data));
    }
    fn did_change_connection_state(&self, state: ConnectionState) {
        self.connection_states.lock().unwrap().push(state);
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
}

/// One client and everything its delegates heard.
pub struct Peer {
    pub name: String,
    pub video: VideoCall,
    pub recorder: Arc<Recorder>,
    events: UnboundedReceiver<Ev>,
}

impl Peer {
    pub async fn connect(url: &str, secret: &str, uid: &str) -> Peer {
        Self::connect_with(url, secret, uid, None).await
    }

    pub async fn connect_with(url: &str, secret: &str, uid: &str, device_id: Option<&str>) -> Peer {
        Self::connect_configured(url, secret, uid, device_id, MediaConfig::loopback()).await
    }

    pub async fn connect_configured(
        url: &str,
        secret: &str,
        uid: &str,
        device_id: Option<&str>,
        media: MediaConfig,
    ) -> Peer {
        let (tx, events) = unbounded_channel();
        let recorder = Arc::new(Recorder::new(tx));
        let mut config =
            ClientConfig::new(url, duet_server::token::mint(secret, uid, Duration::from_secs(600)));
        config.device_id = device_id.map(str::to_owned);
        config.reconnect.initial_delay = Duration::from_millis(20);
        config.reconnect.max_delay = Duration::from_millis(200);
        config.reconnect.attempt_timeout = Duration::from_secs(2);
        config.media = media;
        let video = VideoCall::connect(config, recorder.clone()).await.expect("client connects");
        Peer { name: uid.to_owned(), video, recorder, events }
    }

    pub fn call(&self, to: &str, data: Option<&str>) -> Arc<Conversation> {
        let options = CallOptions { data: data.map(str::to_owned), ..Default::default() };
        self.call_with(to, small_stream(), options)
    }

    /// A call with this stream and these options, its events recorded like `call`'s.
    pub fn call_with(
        &self,
        to: &str,
        stream: Arc<LocalStream>,
        options: CallOptions,
    ) -> Arc<Conversation> {
        let c = self.video.call(to, stream, options).expect("call starts");
        c.set_delegate(self.recorder.clone());
        c
    }

    pub async fn next(&mut self) -> Ev {
        match tokio::time::timeout(PATIENCE, self.events.recv()).await {
            Ok(Some(ev)) => ev,
            Ok(None) => panic!("{}: event channel closed", self.name),
            Err(_) => panic!("{}: no event within {PATIENCE:?}", self.name),
        }
    }

    /// Waits for an incoming call and takes it (sets this peer as its delegate).
    pub async fn called(&mut self) -> (Arc<Conversation>, Option<String>) {
        match self.next().await {
            Ev::Called(c, data) => {
                c.set_delegate(self.recorder.clone());
                (c, data)
            }
            other => panic!("{}: expected a call, got {other:?}", self.name),
        }
    }

    pub async fn response(&mut self, want: CallStatus) {
        match self.next().await {
            Ev::Response(s) if s == want => {}
            other => panic!("{}: expected response {want:?}, got {other:?}", self.name),
        }
    }

    pub async fn stream(&mut self) {
        match self.next().await {
            Ev::Stream => {}
            other => panic!("{}: expected a stream, got {other:?}", self.name),
        }
    }

    /// Waits for `did_close` and checks the conversation's reason.
    pub async fn closed(&mut self, conv: &Conversation, want: EndReason) {
        match self.next().await {
            Ev::Closed => {
                assert_eq!(conv.close_reason(), Some(want), "{}: close reason", self.name)
            }
            other => panic!("{}: expected did_close ({want:?}), got {other:?}", self.name),
        }
        assert_eq!(conv.state(), ConversationState::Closed);
    }

    pub async fn failed(&mut self) -> CallError {
        match self.next().await {
            Ev::Failed(e) => e,
            other => panic!("{}: expected did_fail_with_error, got {other:?}", self.name),
        }
    }

    /// Asserts that nothing happens for `d`.
    pub async fn quiet(&mut self, d: Duration) {
        if let Ok(Some(ev)) = tokio::time::timeout(d, self.events.recv()).await {
            panic!("{}: expected silence, got {ev:?}", self.name);
        }
    }

    /// A call placed by `self` to `callee` and accepted there; both sides see the stream.
    pub async fn connected_call(
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
pub fn small_stream() -> Arc<LocalStream> {
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
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < PATIENCE, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
