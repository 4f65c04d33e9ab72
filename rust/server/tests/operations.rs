//! What an operator relies on: `/metrics`, `/healthz` and `/readyz`, and the graceful drain
//! of a restart.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One sample of the exposition: `name` with its labels, e.g. `duet_calls{state="active"}`.
fn sample(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {name} in\n{metrics}"))
}

async fn metrics(server: &duet_server::ServerHandle) -> String {
    let (status, body) = http_get(server, "/metrics").await;
    assert_eq!(status, 200);
    body
}

#[tokio::test]
async fn metrics_count_connections_calls_messages_and_errors() {
    let server = server().await;
    let (mut alice, mut bob, id) = active(&server).await;
    alice.send_text("not json".into()).await;
    alice.expect_error("malformed").await;

    let during = metrics(&server).await;
    assert_eq!(sample(&during, "duet_connections_open"), 2);
    assert_eq!(sample(&during, "duet_calls{state=\"active\"}"), 1);
    assert_eq!(sample(&during, "duet_calls{state=\"ringing\"}"), 0);
    assert_eq!(sample(&during, "duet_calls_placed_total"), 1);
    assert_eq!(sample(&during, "duet_call_setups_total"), 1);
    assert_eq!(sample(&during, "duet_messages_received_total{type=\"hello\"}"), 2);
    assert_eq!(sample(&during, "duet_messages_received_total{type=\"invite\"}"), 1);
    assert_eq!(sample(&during, "duet_messages_sent_total{type=\"welcome\"}"), 2);
    assert_eq!(sample(&during, "duet_errors_total{code=\"malformed\"}"), 1);

    bob.hangup(&id).await;
    alice.expect_closed(&id, "hangup").await;
    let after = metrics(&server).await;
    assert_eq!(sample(&after, "duet_calls{state=\"active\"}"), 0);
    assert_eq!(sample(&after, "duet_calls_ended_total{reason=\"hangup\"}"), 1);
    assert_eq!(sample(&after, "duet_calls_ended_total{reason=\"timeout\"}"), 0);
    drop((alice, bob));
}

#[tokio::test]
async fn an_unanswered_call_is_counted_by_how_it_ended() {
    let server = server_with(|c| c.ring_timeout = Duration::from_millis(200)).await;
    let (mut alice, _bob, id) = ringing(&server).await;
    assert_eq!(sample(&metrics(&server).await, "duet_calls{state=\"ringing\"}"), 1);
    alice.expect_response(&id, "timeout").await;
    let mut carol = Client::connect(&server, "carol", "c1").await;
    carol.invite(&call_id(), "nobody").await;
    carol.expect("closed").await;
    let text = metrics(&server).await;
    assert_eq!(sample(&text, "duet_calls_ended_total{reason=\"timeout\"}"), 1);
    assert_eq!(sample(&text, "duet_calls_ended_total{reason=\"unreachable\"}"), 1);
}

#[tokio::test]
async fn a_running_server_is_alive_and_ready() {
    let server = server().await;
    assert_eq!(http_get(&server, "/healthz").await, (200, "ok".into()));
    assert_eq!(http_get(&server, "/readyz").await, (200, "ready\n".into()));
    assert_eq!(sample(&metrics(&server).await, "duet_draining"), 0);
}

/// A GET on a kept-alive connection (as a load balancer's prober holds one): the status.
async fn get_on(stream: &mut TcpStream, path: &str) -> u16 {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("request written");
    let mut head = vec![0u8; 1024];
    let n = stream.read(&mut head).await.expect("response read");
    let head = String::from_utf8_lossy(&head[..n]).into_owned();
    head.get(9..12).and_then(|s| s.parse().ok()).expect("status line")
}

#[tokio::test]
async fn a_drain_closes_every_client_with_1012_and_stops_accepting() {
    let server = server().await;
    let addr = server.local_addr();
    let (mut alice, mut bob, _id) = active(&server).await;
    let mut silent = Client::open(&server, "silent").await;
    let mut prober = TcpStream::connect(addr).await.unwrap();
    assert_eq!(get_on(&mut prober, "/readyz").await, 200);

    let drain = tokio::spawn(server.drain(Duration::from_secs(10)));
    for client in [&mut alice, &mut bob, &mut silent] {
        assert_eq!(client.expect_close_frame().await, (1012, "draining".to_owned()));
    }
    assert!(TcpStream::connect(addr).await.is_err(), "a draining server accepts nothing new");
    let report = drain.await.unwrap();
    assert_eq!(report.left_behind, 0);
    assert!(report.elapsed < Duration::from_secs(5), "{report:?}");
    drop(prober);
}

#[tokio::test]
async fn a_draining_server_is_alive_but_not_ready() {
    let server = server().await;
    let addr = server.local_addr();
    // A client that never reads, so the drain is still waiting when the prober asks.
    let _alice = Client::connect(&server, "alice", "a1").await;
    let mut prober = TcpStream::connect(addr).await.unwrap();
    assert_eq!(get_on(&mut prober, "/readyz").await, 200);
    let drain = tokio::spawn(server.drain(Duration::from_millis(500)));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(get_on(&mut prober, "/readyz").await, 503);
    assert_eq!(get_on(&mut prober, "/healthz").await, 200);
    let report = drain.await.unwrap();
    assert!(report.elapsed < Duration::from_secs(3), "the drain is bounded: {report:?}");
}

#[tokio::test]
async fn a_successor_on_the_same_port_takes_the_restated_call() {
    let server = server().await;
    let addr = server.local_addr();
    let (mut alice, mut bob, id) = active(&server).await;
    let drain = tokio::spawn(server.drain(Duration::from_secs(10)));
    alice.expect_close_frame().await;
    bob.expect_close_frame().await;
    // The drained server let go of its port as it began: a successor binds it at once.
    let successor = server_with(|c| c.listen = addr).await;
    let restated = |role: &str| json!([{"call_id": id, "role": role, "state": "active", "peer": if role == "caller" { "bob" } else { "alice" }}]);
    let mut alice = Client::resume(&successor, "alice", "a1", restated("caller")).await;
    let mut bob = Client::resume(&successor, "bob", "b1", restated("callee")).await;
    alice.signal(&id, 1).await;
    bob.expect_signal(&id, 1).await;
    bob.hangup(&id).await;
    alice.expect_closed(&id, "hangup").await;
    assert_eq!(drain.await.unwrap().left_behind, 0);
}
