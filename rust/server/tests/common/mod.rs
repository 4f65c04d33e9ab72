//! A raw-JSON test client and server set-up shared by the integration tests.
// Each test binary uses its own subset, and `pub` is what shares them between binaries.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use duet_server::{start, token, ServerConfig, ServerHandle};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

pub const SECRET: &str = "integration-secret";

/// The longest a test waits for a message that should come.
pub const WAIT: Duration = Duration::from_secs(3);

/// Timers short enough for a fast suite, long enough for a loaded machine.
pub fn config() -> ServerConfig {
    ServerConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        secret: Some(SECRET.into()),
        ring_timeout: Duration::from_secs(10),
        grace: Duration::from_millis(300),
        ..ServerConfig::default()
    }
}

pub async fn server() -> ServerHandle {
    start(config()).await.expect("server starts")
}

pub async fn server_with(tweak: impl FnOnce(&mut ServerConfig)) -> ServerHandle {
    let mut config = config();
    tweak(&mut config);
    start(config).await.expect("server starts")
}

pub fn token_for(server: &ServerHandle, uid: &str) -> String {
    token::mint(server.secret(), uid, Duration::from_secs(3600))
}

pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub name: String,
}

impl Client {
    /// A WebSocket that has said nothing yet.
    pub async fn open(server: &ServerHandle, name: &str) -> Client {
        // Boxed: with TLS compiled in (duet-core's wss://, unified into the workspace's
        // build) the connect future is large, and every test's would hold it inline.
        let (ws, _) = Box::pin(connect_async(server.ws_url())).await.expect("websocket connects");
        Client { ws, name: name.to_owned() }
    }

    /// Connects as `uid`/`device` and reads the `welcome`.
    pub async fn connect(server: &ServerHandle, uid: &str, device: &str) -> Client {
        Client::resume(server, uid, device, json!([])).await
    }

    /// Connects restating `calls`, and reads the `welcome`.
    pub async fn resume(server: &ServerHandle, uid: &str, device: &str, calls: Value) -> Client {
        let mut client = Client::open(server, &format!("{uid}/{device}")).await;
        let token = token_for(server, uid);
        client
            .send(json!({"type":"hello","v":1,"token":token,"device_id":device,"calls":calls}))
            .await;
        let welcome = client.expect("welcome").await;
        assert_eq!(welcome["uid"], uid);
        assert_eq!(welcome["device_id"], device);
        client
    }

    pub async fn send(&mut self, msg: Value) {
        self.send_text(msg.to_string()).await;
    }

    pub async fn send_text(&mut self, text: String) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    /// Any WebSocket message, including raw frames a well-behaved client never sends.
    pub async fn send_message(&mut self, msg: Message) {
        self.ws.send(msg).await.expect("send");
    }

    /// The next message, which must come within `WAIT`.
    pub async fn next(&mut self) -> Value {
        match self.try_next(WAIT).await {
            Some(msg) => msg,
            None => panic!("{}: no message within {WAIT:?}", self.name),
        }
    }

    pub async fn try_next(&mut self, within: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next()).await.ok()?;
            match frame {
                Some(Ok(Message::Text(text))) => {
                    return Some(serde_json::from_str(&text).expect("server sends JSON"));
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("{}: expected a message, got {other:?}", self.name),
            }
        }
    }

    /// The next message, which must be of type `ty`.
    pub async fn expect(&mut self, ty: &str) -> Value {
        let msg = self.next().await;
        assert_eq!(msg["type"], ty, "{}: expected {ty}, got {msg}", self.name);
        msg
    }

    pub async fn expect_error(&mut self, code: &str) -> Value {
        let msg = self.expect("error").await;
        assert_eq!(msg["code"], code, "{}: {msg}", self.name);
        msg
    }

    pub async fn expect_closed(&mut self, call_id: &str, reason: &str) {
        let msg = self.expect("closed").await;
        assert_eq!(
            (msg["call_id"].as_str(), msg["reason"].as_str()),
            (Some(call_id), Some(reason)),
            "{}: {msg}",
            self.name
        );
    }

    pub async fn expect_response(&mut self, call_id: &str, status: &str) -> Value {
        let msg = self.expect("response").await;
        assert_eq!(
            (msg["call_id"].as_str(), msg["status"].as_str()),
            (Some(call_id), Some(status)),
            "{}: {msg}",
            self.name
        );
        msg
    }

    /// Nothing arrives for `quiet`.
    pub async fn expect_silence(&mut self, quiet: Duration) {
        if let Some(msg) = self.try_next(quiet).await {
            panic!("{}: expected silence, got {msg}", self.name);
        }
    }

    /// The connection ends (skipping nothing: any message first is a failure). Returns the
    /// close code, if the server sent a close frame.
    pub async fn expect_end(&mut self) -> Option<CloseCode> {
        let frame = tokio::time::timeout(WAIT, self.ws.next())
            .await
            .unwrap_or_else(|_| panic!("{}: still open", self.name));
        match frame {
            Some(Ok(Message::Close(frame))) => frame.map(|f| f.code),
            None | Some(Err(_)) => None,
            Some(Ok(other)) => panic!("{}: expected the end, got {other:?}", self.name),
        }
    }

    /// The connection ends with a close frame (any message first is a failure): its code
    /// and reason.
    pub async fn expect_close_frame(&mut self) -> (u16, String) {
        let frame = tokio::time::timeout(WAIT, self.ws.next())
            .await
            .unwrap_or_else(|_| panic!("{}: still open", self.name));
        match frame {
            Some(Ok(Message::Close(Some(frame)))) => (frame.code.into(), frame.reason.to_string()),
            other => panic!("{}: expected a close frame, got {other:?}", self.name),
        }
    }

    /// Every message until the connection ends, and the close code.
    pub async fn messages_until_end(&mut self) -> (Vec<Value>, Option<CloseCode>) {
        let mut messages = Vec::new();
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("{}: still open", self.name));
            match frame {
                Some(Ok(Message::Text(text))) => {
                    messages.push(serde_json::from_str(&text).expect("JSON"))
                }
                Some(Ok(Message::Close(frame))) => return (messages, frame.map(|f| f.code)),
                None | Some(Err(_)) => return (messages, None),
                Some(Ok(_)) => {}
            }
        }
    }

    pub async fn ping(&mut self, nonce: u64) {
        self.send(json!({"type":"ping","nonce":nonce})).await;
        let pong = self.expect("pong").await;
        assert_eq!(pong["nonce"], nonce);
    }

    pub async fn invite(&mut self, call_id: &str, to: &str) {
        self.send(json!({"type":"invite","call_id":call_id,"to":to,"data":"hi","sdp":"offer-sdp"}))
            .await;
    }

    pub async fn accept(&mut self, call_id: &str) {
        self.send(json!({"type":"accept","call_id":call_id,"sdp":"answer-sdp"})).await;
    }

    pub async fn hangup(&mut self, call_id: &str) {
        self.send(json!({"type":"hangup","call_id":call_id})).await;
    }

    pub async fn signal(&mut self, call_id: &str, n: u32) {
        self.send(json!({"type":"signal","call_id":call_id,"signal":candidate(n)})).await;
    }

    pub async fn expect_signal(&mut self, call_id: &str, n: u32) {
        let msg = self.expect("signal").await;
        assert_eq!(
            msg,
            json!({"type":"signal","call_id":call_id,"signal":candidate(n)}),
            "{}",
            self.name
        );
    }

    /// Drops the connection without a goodbye, as a lost network would.
    pub async fn vanish(self) {
        drop(self.ws);
        // Let the server notice before the test goes on to rely on it.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn candidate(n: u32) -> Value {
    json!({"kind":"candidate","candidate":format!("candidate:{n} 1 udp 2130706431 127.0.0.1 5000{n} typ host"),"sdp_mid":"0","sdp_mline_index":0})
}

/// A fresh call id, as clients pick them.
pub fn call_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// alice/a1 calls bob/b1: both have seen `ringing` / `incoming`.
pub async fn ringing(server: &ServerHandle) -> (Client, Client, String) {
    let mut alice = Client::connect(server, "alice", "a1").await;
    let mut bob = Client::connect(server, "bob", "b1").await;
    let id = call_id();
    alice.invite(&id, "bob").await;
    bob.expect("incoming").await;
    alice.expect("ringing").await;
    (alice, bob, id)
}

/// The same call, accepted.
pub async fn active(server: &ServerHandle) -> (Client, Client, String) {
    let (mut alice, mut bob, id) = ringing(server).await;
    bob.accept(&id).await;
    alice.expect_response(&id, "accepted").await;
    bob.expect_response(&id, "accepted").await;
    (alice, bob, id)
}

/// A plain HTTP GET: (status, body).
pub async fn http_get(server: &ServerHandle, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(server.local_addr()).await.expect("tcp connects");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("request written");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.expect("response read");
    let status = raw.get(9..12).and_then(|s| s.parse().ok()).expect("status line");
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}
