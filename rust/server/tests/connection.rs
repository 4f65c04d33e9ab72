//! The connection itself: hello and tokens, size and rate limits, keepalive, and the HTTP
//! endpoints.

mod common;

use std::time::{Duration, Instant};

use common::*;
use duet_protocol::Limits;
use duet_server::{start, token, ServerConfig};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

fn hello(token: &str, device: &str) -> Value {
    json!({"type":"hello","v":1,"token":token,"device_id":device})
}

#[tokio::test]
async fn welcome_states_the_terms() {
    let ice = duet_protocol::IceServer {
        urls: vec!["stun:127.0.0.1:3478".into()],
        username: None,
        credential: None,
    };
    let server = server_with(|c| {
        c.ice_servers = vec![ice];
        c.ice = duet_server::IceConfig::None;
    })
    .await;
    let mut client = Client::open(&server, "alice").await;
    client.send(hello(&token_for(&server, "alice"), "a1")).await;
    let welcome = client.expect("welcome").await;
    assert_eq!(
        welcome,
        json!({"type":"welcome","v":1,"uid":"alice","device_id":"a1","ice_servers":[{"urls":["stun:127.0.0.1:3478"]}],
               "ring_timeout_ms":10000,"grace_ms":300,"keepalive_ms":15000,
               "limits":{"max_message_bytes":65536,"max_data_bytes":8192,"messages_per_second":20,"message_burst":60}})
    );
    client.ping(7).await;
}

#[tokio::test]
async fn a_forged_token_is_unauthorized() {
    let server = server().await;
    let mut client = Client::open(&server, "mallory").await;
    let forged = token::mint("not-the-secret", "alice", Duration::from_secs(60));
    client.send(hello(&forged, "m1")).await;
    client.expect_error("unauthorized").await;
    assert_eq!(client.expect_end().await, Some(CloseCode::Policy));
}

#[tokio::test]
async fn garbage_instead_of_a_token_is_unauthorized() {
    let server = server().await;
    let mut client = Client::open(&server, "mallory").await;
    client.send(hello("garbage", "m1")).await;
    client.expect_error("unauthorized").await;
    client.expect_end().await;
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let server = server().await;
    let mut client = Client::open(&server, "alice").await;
    let now = token::unix_now();
    let expired = token::mint_at(server.secret(), "alice", now - 120, now - 60);
    client.send(hello(&expired, "a1")).await;
    client.expect_error("token_expired").await;
    client.expect_end().await;
}

#[tokio::test]
async fn another_protocol_version_is_refused() {
    let server = server().await;
    let mut client = Client::open(&server, "alice").await;
    client
        .send(json!({"type":"hello","v":2,"token":token_for(&server, "alice"),"device_id":"a1"}))
        .await;
    client.expect_error("unsupported_version").await;
    client.expect_end().await;
}

#[tokio::test]
async fn a_bad_device_id_is_refused() {
    let server = server().await;
    let mut client = Client::open(&server, "alice").await;
    client.send(hello(&token_for(&server, "alice"), "no spaces")).await;
    client.expect_error("invalid_request").await;
    client.expect_end().await;
}

#[tokio::test]
async fn anything_before_hello_is_refused() {
    let server = server().await;
    let mut client = Client::open(&server, "alice").await;
    client.send(json!({"type":"ping","nonce":1})).await;
    client.expect_error("hello_required").await;
    client.expect_end().await;
}

#[tokio::test]
async fn no_hello_in_time_is_refused() {
    let server = server_with(|c| c.hello_timeout = Duration::from_millis(150)).await;
    let started = Instant::now();
    let mut client = Client::open(&server, "alice").await;
    // Not JSON: answered, but the wait for hello goes on.
    client.send_text("{".into()).await;
    client.expect_error("malformed").await;
    client.expect_error("hello_required").await;
    client.expect_end().await;
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn malformed_messages_are_refused_and_the_connection_stays() {
    let server = server().await;
    let mut client = Client::connect(&server, "alice", "a1").await;
    for bad in [
        "not json".to_owned(),
        "[1,2]".to_owned(),
        json!({"type":"teleport"}).to_string(),
        json!({"type":"ping","nonce":1,"extra":true}).to_string(),
        json!({"type":"invite","to":"bob"}).to_string(),
    ] {
        client.send_text(bad.clone()).await;
        let error = client.expect_error("malformed").await;
        assert!(!error["message"].as_str().unwrap_or_default().is_empty(), "{bad}");
    }
    client.ping(2).await;
}

#[tokio::test]
async fn a_second_hello_is_refused() {
    let server = server().await;
    let mut client = Client::connect(&server, "alice", "a1").await;
    client.send(hello(&token_for(&server, "bob"), "b1")).await;
    client.expect_error("invalid_state").await;
    client.ping(1).await;
}

#[tokio::test]
async fn oversized_messages_are_refused_and_huge_ones_close_the_socket() {
    let limits = Limits { max_message_bytes: 1024, ..Limits::default() };
    let server = server_with(|c| c.limits = limits).await;
    let mut client = Client::connect(&server, "alice", "a1").await;
    let padded = |len: usize| json!({"type":"ping","nonce":1,"pad":"x".repeat(len)}).to_string();

    client.send_text(padded(1500)).await;
    client.expect_error("message_too_large").await;
    client.ping(1).await;

    client.send_text(padded(2 * 1024 + 1)).await;
    assert_eq!(client.expect_end().await, Some(CloseCode::Size));
}

#[tokio::test]
async fn a_flood_is_rate_limited_without_hurting_anyone_else() {
    let limits = Limits { messages_per_second: 5, message_burst: 10, ..Limits::default() };
    let server = server_with(|c| c.limits = limits).await;
    let mut flooder = Client::connect(&server, "mallory", "m1").await;
    let mut bystander = Client::connect(&server, "alice", "a1").await;

    for _ in 0..30 {
        flooder.hangup("nope").await;
    }
    let mut codes = Vec::new();
    for _ in 0..30 {
        codes.push(flooder.expect("error").await["code"].as_str().unwrap_or_default().to_owned());
    }
    // The hello spent one token of the burst.
    let admitted = codes.iter().filter(|c| *c == "not_in_call").count();
    let dropped = codes.iter().filter(|c| *c == "rate_limited").count();
    assert_eq!(admitted + dropped, 30, "{codes:?}");
    assert!((9..=11).contains(&admitted), "{codes:?}");
    bystander.ping(1).await;

    // A flood that goes on is cut off after 200 drops in a row.
    for _ in 0..250 {
        flooder.hangup("nope").await;
    }
    let (messages, close) = flooder.messages_until_end().await;
    let limited = dropped + messages.iter().filter(|m| m["code"] == "rate_limited").count();
    assert!(limited >= 200, "{limited} rate_limited");
    assert!(messages.len() < 250, "the rest was never answered: {}", messages.len());
    assert_eq!(close, Some(CloseCode::Policy));
    bystander.ping(2).await;
}

#[tokio::test]
async fn a_silent_connection_is_closed() {
    let server = server_with(|c| c.keepalive = Duration::from_millis(100)).await;
    let mut quiet = Client::connect(&server, "alice", "a1").await;
    let mut chatty = Client::connect(&server, "bob", "b1").await;
    for n in 0..5 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        chatty.ping(n).await;
    }
    // 500 ms: past three keepalives for the quiet one, never for the chatty one.
    assert_eq!(quiet.expect_end().await, Some(CloseCode::Away));
    chatty.ping(9).await;
}

#[tokio::test]
async fn a_dev_server_hands_out_tokens() {
    let server = start(ServerConfig { secret: None, ..config() }).await.expect("starts");
    assert!(server.is_dev_mode());
    assert_eq!(server.secret(), token::DEV_SECRET);

    let (status, body) = http_get(&server, "/dev/token?uid=alice&ttl=60").await;
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(body["uid"], "alice");
    let minted = body["token"].as_str().expect("token");
    let claims = token::verify(token::DEV_SECRET, minted, token::unix_now()).expect("verifies");
    assert_eq!(claims.sub, "alice");
    assert_eq!(body["expires_at"], claims.exp);
    assert_eq!(claims.exp - claims.iat, 60);

    let mut client = Client::open(&server, "alice").await;
    client.send(hello(minted, "a1")).await;
    client.expect("welcome").await;

    for bad in ["/dev/token", "/dev/token?uid=", "/dev/token?uid=bob&ttl=forever"] {
        let (status, body) = http_get(&server, bad).await;
        assert_eq!(status, 400, "{bad}");
        let body: Value = serde_json::from_str(&body).expect("JSON error");
        assert!(body["error"].is_string(), "{bad}: {body}");
    }
}

#[tokio::test]
async fn a_production_server_hands_out_no_tokens() {
    let server = server().await;
    assert!(!server.is_dev_mode());
    assert_eq!(server.secret(), SECRET);
    assert_eq!(http_get(&server, "/dev/token?uid=alice").await.0, 404);
    assert_eq!(http_get(&server, "/healthz").await, (200, "ok".to_owned()));
    assert!(server.http_url().starts_with("http://127.0.0.1:"));
    assert_eq!(server.ws_url(), format!("ws://127.0.0.1:{}/ws", server.local_addr().port()));
}
