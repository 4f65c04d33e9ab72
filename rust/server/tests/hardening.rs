//! The server under a hostile client: what one connection, uid or address can cost, and
//! what a restatement can do to someone else (docs/security.md). Each test is a row of
//! issue 12's table, shown fixed on a real server over loopback.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use duet_protocol::Limits;
use duet_server::{ConnectionLimits, ServerHandle};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

fn limits(
    tweak: impl FnOnce(&mut ConnectionLimits),
) -> impl FnOnce(&mut duet_server::ServerConfig) {
    move |c| tweak(&mut c.connections)
}

/// A TCP connection from `source` (any 127.0.0.0/8 address) to the server.
async fn tcp_from(source: &str, server: &ServerHandle) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(format!("{source}:0").parse::<SocketAddr>().expect("address")).expect("bind");
    socket.connect(server.local_addr()).await.expect("tcp connects")
}

/// Whether the server closes `tcp` within `within` (EOF or reset on read).
async fn closed_within(tcp: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let read = async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(within, read).await.is_ok()
}

/// The start of a WebSocket upgrade request, never finished.
const HALF_A_REQUEST: &[u8] = b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n";

#[tokio::test]
async fn a_client_that_never_reads_is_closed_too_slow_and_costs_at_most_its_bound() {
    let server = server_with(|c| {
        c.limits = Limits { messages_per_second: 10_000, message_burst: 10_000, ..c.limits };
        c.grace = Duration::from_secs(5);
    })
    .await;
    let (mut alice, mut bob, id) = active(&server).await;
    // Bob stops reading. Alice sends far more than his socket buffers and his bound (256 KiB)
    // hold: 4000 signals of about 3 KB, 12 MB.
    let big = "x".repeat(3000);
    let sent = 4000;
    for n in 0..sent {
        let signal = json!({"kind":"candidate","candidate":format!("candidate:{n} {big}")});
        alice.send(json!({"type":"signal","call_id":id,"signal":signal})).await;
    }
    // Alice is not held up by him.
    alice.ping(1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    // When Bob reads at last: what fitted, then the documented error and close.
    let (messages, close) = bob.messages_until_end().await;
    let (last, signals) = messages.split_last().expect("messages");
    assert_eq!(last["type"], "error", "{last}");
    assert_eq!(last["code"], "too_slow");
    assert_eq!(close, Some(CloseCode::Policy));
    assert!(signals.iter().all(|m| m["type"] == "signal"));
    assert!(signals.len() < sent, "the server queued all {sent} for a client that never read");
    alice.ping(2).await;

    // As for any dropped connection, what Bob never got waits for his return (at most 256
    // messages and 128 KiB), in order, after what he did get.
    let restated = json!([{"call_id":id,"role":"callee","peer":"alice","state":"active"}]);
    let mut bob = Client::resume(&server, "bob", "b1", restated).await;
    let mut numbers: Vec<u64> = signals.iter().map(candidate_number).collect();
    while let Some(msg) = bob.try_next(Duration::from_millis(300)).await {
        assert_eq!(msg["type"], "signal", "{msg}");
        numbers.push(candidate_number(&msg));
    }
    assert!(numbers.len() > signals.len(), "nothing was kept for Bob's return");
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "out of order or repeated: {numbers:?}");
}

/// N in a relayed `candidate:N ...`.
fn candidate_number(msg: &serde_json::Value) -> u64 {
    let candidate = msg["signal"]["candidate"].as_str().expect("a candidate");
    let n = candidate.trim_start_matches("candidate:").split(' ').next().expect("a number");
    n.parse().expect("a number")
}

#[tokio::test]
async fn half_open_requests_are_closed_after_the_header_timeout_and_honest_users_sign_in() {
    let timeout = Duration::from_millis(300);
    let server = server_with(limits(|l| l.http_header_timeout = timeout)).await;
    let mut loris = Vec::new();
    for _ in 0..50 {
        let mut tcp = TcpStream::connect(server.local_addr()).await.expect("tcp connects");
        tcp.write_all(HALF_A_REQUEST).await.expect("written");
        loris.push(tcp);
    }
    // An honest user signs in while they hang.
    let mut alice = Client::connect(&server, "alice", "a1").await;
    alice.ping(1).await;
    for tcp in &mut loris {
        assert!(closed_within(tcp, timeout + WAIT).await, "a half-open request was kept");
    }
    // A connection that says nothing at all is closed the same way.
    let mut mute = TcpStream::connect(server.local_addr()).await.expect("tcp connects");
    assert!(closed_within(&mut mute, timeout + WAIT).await);
    alice.ping(2).await;
}

#[tokio::test]
async fn connections_not_yet_signed_in_are_bounded() {
    let server = server_with(limits(|l| l.max_pending = 5)).await;
    let mut waiting = Vec::new();
    for _ in 0..5 {
        waiting.push(Client::open(&server, "idle").await);
    }
    // The sixth is closed at once, before any HTTP.
    let mut sixth = TcpStream::connect(server.local_addr()).await.expect("tcp connects");
    assert!(closed_within(&mut sixth, WAIT).await);
    // A pending connection that signs in makes room.
    let first = waiting.pop().expect("a client");
    first.vanish().await;
    let mut alice = Client::connect(&server, "alice", "a1").await;
    // Signed-in connections do not count: one more may wait for its hello.
    let _another = Client::open(&server, "idle").await;
    alice.ping(1).await;
}

#[tokio::test]
async fn one_address_cannot_take_every_connection() {
    let server = server_with(limits(|l| l.max_per_ip = 3)).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut tcp = tcp_from("127.0.0.2", &server).await;
        tcp.write_all(HALF_A_REQUEST).await.expect("written");
        held.push(tcp);
    }
    let mut fourth = tcp_from("127.0.0.2", &server).await;
    assert!(closed_within(&mut fourth, WAIT).await, "a fourth connection from one address");
    // Everyone else is unaffected.
    let mut alice = Client::connect(&server, "alice", "a1").await;
    alice.ping(1).await;
}

#[tokio::test]
async fn a_uid_has_at_most_max_devices_per_uid() {
    let server = server_with(limits(|l| l.max_devices_per_uid = 3)).await;
    let mut devices = Vec::new();
    for d in ["d1", "d2", "d3"] {
        devices.push(Client::connect(&server, "alice", d).await);
    }
    let mut fourth = Client::open(&server, "alice/d4").await;
    let token = token_for(&server, "alice");
    fourth.send(json!({"type":"hello","v":1,"token":token,"device_id":"d4"})).await;
    fourth.expect_error("too_many_devices").await;
    assert_eq!(fourth.expect_end().await, Some(CloseCode::Policy));

    // A known device may always come back (replacing its connection).
    let mut d1 = Client::connect(&server, "alice", "d1").await;
    d1.ping(1).await;
    // One that leaves (with no call to come back to) makes room.
    devices.pop().expect("d3").vanish().await;
    let mut d4 = Client::connect(&server, "alice", "d4").await;
    d4.ping(2).await;
    // Other users are unaffected.
    let mut bob = Client::connect(&server, "bob", "b1").await;
    bob.ping(3).await;
}

#[tokio::test]
async fn a_restated_call_does_not_make_someone_else_busy() {
    let server = server().await;
    let mut bob = Client::connect(&server, "bob", "b1").await;
    let mut carol = Client::connect(&server, "carol", "c1").await;
    // Mallory claims calls with Bob, in every role and state, after no restart at all.
    let claims: Vec<_> = [("caller", "active"), ("caller", "ringing"), ("callee", "active")]
        .iter()
        .chain(&[("callee", "ringing"), ("callee", "accepting")])
        .map(|(role, state)| {
            json!({"call_id":call_id(),"role":role,"peer":"bob","state":state,"sdp":"x"})
        })
        .collect();
    let _mallory = Client::resume(&server, "mallory", "m1", json!(claims)).await;
    // Bob may be rung by the claimed ringing call, as by an invite: he says no.
    while let Some(id) = next_incoming(&mut bob).await {
        bob.send(json!({"type":"reject","call_id":id})).await;
    }

    // Carol's call reaches Bob: he is not busy because of calls he never took part in.
    let id = call_id();
    carol.invite(&id, "bob").await;
    let incoming = bob.expect("incoming").await;
    assert_eq!(incoming["from"], "carol");
    carol.expect("ringing").await;
    // And Bob can call out.
    let mut dave = Client::connect(&server, "dave", "d1").await;
    bob.send(json!({"type":"reject","call_id":id})).await;
    carol.expect_response(&id, "rejected").await;
    let id = call_id();
    bob.invite(&id, "dave").await;
    dave.expect("incoming").await;
    bob.expect("ringing").await;
}

/// The id of an `incoming` that arrives within a short wait, if one does.
async fn next_incoming(client: &mut Client) -> Option<String> {
    let msg = client.try_next(Duration::from_millis(200)).await?;
    assert_eq!(msg["type"], "incoming", "{msg}");
    Some(msg["call_id"].as_str()?.to_owned())
}

#[tokio::test]
async fn a_call_restated_by_both_parties_makes_them_busy() {
    let server = server().await;
    let id = call_id();
    let claim = |role: &str, peer: &str| json!([{"call_id":id,"role":role,"peer":peer,"state":"active","sdp":"x"}]);
    let _alice = Client::resume(&server, "alice", "a1", claim("caller", "bob")).await;
    let _bob = Client::resume(&server, "bob", "b1", claim("callee", "alice")).await;
    let mut carol = Client::connect(&server, "carol", "c1").await;
    let other = call_id();
    carol.invite(&other, "bob").await;
    carol.expect_response(&other, "busy").await;
}

#[tokio::test]
async fn a_text_frame_that_is_not_utf8_closes_with_1007_and_binary_is_malformed() {
    let server = server().await;
    let mut client = Client::connect(&server, "alice", "a1").await;
    client.send_message(Message::binary(b"{\"type\":\"ping\",\"nonce\":1}".to_vec())).await;
    client.expect_error("malformed").await;
    client.ping(1).await;
    let frame = Frame::message(vec![0xff, 0xfe, b'{'], OpCode::Data(Data::Text), true);
    client.send_message(Message::Frame(frame)).await;
    assert_eq!(client.expect_end().await, Some(CloseCode::Invalid));
}

#[tokio::test]
async fn a_request_head_over_32_kib_is_refused() {
    let server = server().await;
    let mut tcp = TcpStream::connect(server.local_addr()).await.expect("tcp connects");
    tcp.write_all(HALF_A_REQUEST).await.expect("written");
    let cookie = format!("Cookie: {}\r\n", "c".repeat(40 * 1024));
    // The server may close before all of it is written.
    let _ = tcp.write_all(cookie.as_bytes()).await;
    assert!(closed_within(&mut tcp, WAIT).await, "a 40 KiB header was buffered");
    let mut alice = Client::connect(&server, "alice", "a1").await;
    alice.ping(1).await;
}
