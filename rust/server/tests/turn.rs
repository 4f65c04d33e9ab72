//! TURN: the credentials `welcome` hands out, and the embedded TURN server that accepts them
//! (driven with the `turn` crate's own client, over real loopback sockets).

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use duet_server::turn_credentials::{self, CredentialError};
use duet_server::{start, token, IceConfig, ServerConfig, ServerHandle, TurnConfig};
use serde_json::{json, Value};
use tokio::net::UdpSocket;
use tokio::time::timeout;
use turn::client::{Client as TurnClient, ClientConfig as TurnClientConfig};
use webrtc_util::Conn;

const HOUR: u64 = 3600;

fn embedded(tweak: impl FnOnce(&mut TurnConfig)) -> impl FnOnce(&mut ServerConfig) {
    move |c| {
        let mut turn = TurnConfig::default();
        tweak(&mut turn);
        c.ice = IceConfig::Embedded(turn);
    }
}

/// Says hello as `uid` and returns the `welcome`.
async fn welcome(server: &ServerHandle, uid: &str) -> Value {
    let mut client = Client::open(server, uid).await;
    let token = token_for(server, uid);
    client.send(json!({"type":"hello","v":1,"token":token,"device_id":"d1"})).await;
    client.expect("welcome").await
}

/// The first `ice_servers` entry of a welcome: (urls, username, credential).
fn turn_entry(welcome: &Value) -> (Vec<String>, String, String) {
    let entry = &welcome["ice_servers"][0];
    let urls = entry["urls"]
        .as_array()
        .expect("urls")
        .iter()
        .map(|u| u.as_str().expect("url").to_owned())
        .collect();
    let text = |k: &str| entry[k].as_str().unwrap_or_else(|| panic!("{k} in {entry}")).to_owned();
    (urls, text("username"), text("credential"))
}

/// A TURN client of `server_addr` speaking from a fresh loopback socket.
async fn turn_client(server_addr: SocketAddr, username: &str, password: &str) -> TurnClient {
    let conn = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("client socket"));
    turn_client_over(conn, server_addr, username, password).await
}

/// A TURN client of `server_addr` speaking over `conn`.
async fn turn_client_over(
    conn: Arc<dyn Conn + Send + Sync>,
    server_addr: SocketAddr,
    username: &str,
    password: &str,
) -> TurnClient {
    let client = TurnClient::new(TurnClientConfig {
        stun_serv_addr: server_addr.to_string(),
        turn_serv_addr: server_addr.to_string(),
        username: username.to_owned(),
        password: password.to_owned(),
        realm: String::new(), // taken from the server's challenge
        software: String::new(),
        rto_in_ms: 0,
        conn,
        vnet: None,
    })
    .await
    .expect("turn client");
    client.listen().await.expect("turn client listens");
    client
}

/// Allocates a relay: its relayed address, or the error as text.
async fn allocate(
    server_addr: SocketAddr,
    username: &str,
    password: &str,
) -> (TurnClient, Result<impl Conn, String>) {
    let client = turn_client(server_addr, username, password).await;
    let relay = timeout(WAIT, client.allocate())
        .await
        .expect("the TURN server answers")
        .map_err(|e| e.to_string());
    (client, relay)
}

fn assert_fresh_username(username: &str, uid: &str, ttl_secs: u64) {
    let (expiry, named) = turn_credentials::parse_username(username).expect("expiry:uid");
    assert_eq!(named, uid);
    let expected = token::unix_now() + ttl_secs;
    assert!(expiry.abs_diff(expected) <= 5, "expiry {expiry}, expected about {expected}");
}

#[tokio::test]
async fn welcome_lists_the_embedded_turn_server_then_the_static_list() {
    let stun = duet_protocol::IceServer {
        urls: vec!["stun:stun.example.com:3478".into()],
        username: None,
        credential: None,
    };
    let server = server_with(|c| {
        c.ice_servers = vec![stun];
        embedded(|_| {})(c);
    })
    .await;
    let turn_addr = server.turn_addr().expect("the embedded TURN server runs");
    assert_eq!(turn_addr.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_ne!(turn_addr.port(), 0);

    let welcome = welcome(&server, "alice").await;
    let (urls, username, credential) = turn_entry(&welcome);
    assert_eq!(urls, [format!("stun:{turn_addr}"), format!("turn:{turn_addr}?transport=udp")]);
    assert_fresh_username(&username, "alice", 6 * HOUR);
    let secret = server.turn_secret().expect("a TURN secret");
    assert_eq!(turn_credentials::verify(secret, &username, &credential, token::unix_now()), Ok(()));
    assert_eq!(welcome["ice_servers"][1], json!({"urls":["stun:stun.example.com:3478"]}));
    assert_eq!(welcome["ice_servers"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn the_welcome_credentials_allocate_a_relay_that_carries_datagrams() {
    let server = server_with(embedded(|_| {})).await;
    let turn_addr = server.turn_addr().expect("TURN");
    let (_, username, credential) = turn_entry(&welcome(&server, "alice").await);

    let (client, relay) = allocate(turn_addr, &username, &credential).await;
    let relay = relay.expect("allocation succeeds");
    let relayed = relay.local_addr().expect("relayed address");
    assert_eq!(relayed.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_ne!(relayed.port(), turn_addr.port());

    // Relay → peer: the client's send creates the permission, the peer sees the relayed
    // address as the source.
    let peer = UdpSocket::bind("127.0.0.1:0").await.expect("peer socket");
    let peer_addr = peer.local_addr().expect("peer address");
    timeout(WAIT, relay.send_to(b"hello through the relay", peer_addr))
        .await
        .expect("sent in time")
        .expect("sent");
    let mut buf = [0u8; 1500];
    let (n, from) = timeout(WAIT, peer.recv_from(&mut buf)).await.expect("relayed").expect("recv");
    assert_eq!(&buf[..n], b"hello through the relay");
    assert_eq!(from, relayed);

    // Peer → relay → client, allowed by that permission.
    peer.send_to(b"and back", relayed).await.expect("peer sends");
    let (n, from) =
        timeout(WAIT, relay.recv_from(&mut buf)).await.expect("relayed back").expect("recv");
    assert_eq!(&buf[..n], b"and back");
    assert_eq!(from, peer_addr);

    // The same socket answers plain STUN binding requests.
    let mapped = timeout(WAIT, client.send_binding_request()).await.expect("in time");
    assert_eq!(mapped.expect("binding").ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    relay.close().await.expect("relay closes");
    client.close().await.expect("client closes");
}

/// A client socket that loses the first Allocate success response it is sent, as a lossy
/// link would.
struct LosesFirstAllocateSuccess {
    socket: UdpSocket,
    lost: AtomicBool,
}

#[async_trait::async_trait]
impl Conn for LosesFirstAllocateSuccess {
    async fn connect(&self, addr: SocketAddr) -> webrtc_util::Result<()> {
        Ok(self.socket.connect(addr).await?)
    }
    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        Ok(self.socket.recv(buf).await?)
    }
    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        loop {
            let (n, from) = self.socket.recv_from(buf).await?;
            let allocate_success = n >= 2 && buf[..2] == [0x01, 0x03];
            let lose = allocate_success && !self.lost.swap(true, Ordering::SeqCst);
            if !lose {
                return Ok((n, from));
            }
        }
    }
    async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
        Ok(self.socket.send(buf).await?)
    }
    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        Ok(self.socket.send_to(buf, target).await?)
    }
    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }
    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }
    async fn close(&self) -> webrtc_util::Result<()> {
        Ok(())
    }
    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

#[tokio::test]
async fn an_allocate_whose_success_was_lost_succeeds_when_repeated() {
    let server = server_with(embedded(|_| {})).await;
    let turn_addr = server.turn_addr().expect("TURN");
    let (_, username, credential) = turn_entry(&welcome(&server, "alice").await);
    let lossy = Arc::new(LosesFirstAllocateSuccess {
        socket: UdpSocket::bind("127.0.0.1:0").await.expect("client socket"),
        lost: AtomicBool::new(false),
    });
    let client = turn_client_over(lossy.clone(), turn_addr, &username, &credential).await;

    // The client repeats the request (same transaction); without the server remembering
    // its answer, the repeat got 437 (Allocation Mismatch) and the client had no relay.
    let relay = timeout(WAIT, client.allocate()).await.expect("the TURN server answers");
    assert!(lossy.lost.load(Ordering::SeqCst), "the first success was lost");
    let relay = relay.expect("the repeated Allocate gets the success");
    assert_eq!(relay.local_addr().expect("relayed address").ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(server.turn_allocations().await, Some(1), "one allocation, not two");
    relay.close().await.expect("relay closes");
    client.close().await.expect("client closes");
}

#[tokio::test]
async fn a_forged_password_is_refused() {
    let server = server_with(embedded(|_| {})).await;
    let turn_addr = server.turn_addr().expect("TURN");
    let (_, username, _) = turn_entry(&welcome(&server, "alice").await);
    // Right username, password made with another secret.
    let forged = turn_credentials::password_for("not-the-secret", &username, token::unix_now())
        .expect("well-formed username");

    let (_client, relay) = allocate(turn_addr, &username, &forged).await;
    assert!(relay.is_err(), "a forged password allocated a relay");
}

#[tokio::test]
async fn expired_or_malformed_usernames_are_refused() {
    let server = server_with(embedded(|_| {})).await;
    let turn_addr = server.turn_addr().expect("TURN");
    let secret = server.turn_secret().expect("secret").to_owned();
    let now = token::unix_now();

    // Correctly signed, but expired an hour ago.
    let (username, password) =
        turn_credentials::mint(&secret, "alice", Duration::from_secs(6 * HOUR), now - 7 * HOUR);
    let (_client, relay) = allocate(turn_addr, &username, &password).await;
    assert!(relay.is_err(), "expired credentials allocated a relay");

    // The `turn` crate's own scheme (the whole username is the expiry) is not accepted.
    let bare = (now + HOUR).to_string();
    let (_, password) = turn_credentials::mint(&secret, "x", Duration::ZERO, 0);
    let (_client, relay) = allocate(turn_addr, &bare, &password).await;
    assert!(relay.is_err(), "a username without a uid allocated a relay");

    // Fresh ones minted with the same secret work, whoever mints them.
    let (username, password) =
        turn_credentials::mint(&secret, "alice", Duration::from_secs(60), now);
    let (_client, relay) = allocate(turn_addr, &username, &password).await;
    relay.expect("fresh credentials allocate");
}

#[tokio::test]
async fn a_configured_secret_and_ttl_are_used() {
    let server = server_with(embedded(|t| {
        t.secret = Some("configured-turn-secret".into());
        t.credential_ttl = Duration::from_secs(600);
    }))
    .await;
    assert_eq!(server.turn_secret(), Some("configured-turn-secret"));
    let (_, username, credential) = turn_entry(&welcome(&server, "bob").await);
    assert_fresh_username(&username, "bob", 600);
    let verified = turn_credentials::verify(
        "configured-turn-secret",
        &username,
        &credential,
        token::unix_now(),
    );
    assert_eq!(verified, Ok(()));
}

#[tokio::test]
async fn random_secrets_differ_between_servers() {
    let a = server_with(embedded(|_| {})).await;
    let b = server_with(embedded(|_| {})).await;
    let (sa, sb) = (a.turn_secret().expect("a"), b.turn_secret().expect("b"));
    assert!(sa.len() >= 32);
    assert_ne!(sa, sb);
}

#[tokio::test]
async fn a_reconnect_gets_fresh_credentials() {
    let server = server_with(embedded(|_| {})).await;
    let (_, first, _) = turn_entry(&welcome(&server, "alice").await);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, second, _) = turn_entry(&welcome(&server, "alice").await);
    let expiry = |u: &str| turn_credentials::parse_username(u).expect("username").0;
    assert!(expiry(&second) > expiry(&first), "{first} then {second}");
}

#[tokio::test]
async fn the_public_ip_is_what_peers_are_given() {
    // Listening on 127.0.0.1, announcing 127.0.0.2 (as behind a 1:1 NAT).
    let public = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let server = server_with(embedded(|t| t.public_ip = Some(public))).await;
    let turn_addr = server.turn_addr().expect("TURN");
    assert_eq!(turn_addr.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    let announced = SocketAddr::new(public, turn_addr.port());

    let (urls, username, credential) = turn_entry(&welcome(&server, "alice").await);
    assert_eq!(urls, [format!("stun:{announced}"), format!("turn:{announced}?transport=udp")]);
    let (_client, relay) = allocate(turn_addr, &username, &credential).await;
    let relayed = relay.expect("allocation succeeds").local_addr().expect("relayed address");
    assert_eq!(relayed.ip(), public);
}

#[tokio::test]
async fn a_wildcard_listen_address_needs_a_public_ip() {
    let wildcard: SocketAddr = "0.0.0.0:0".parse().expect("address");
    let mut config = config();
    config.ice = IceConfig::Embedded(TurnConfig { listen: wildcard, ..TurnConfig::default() });
    let err = start(config).await.expect_err("no public IP");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");

    let server = server_with(embedded(|t| {
        t.listen = wildcard;
        t.public_ip = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }))
    .await;
    let turn_addr = server.turn_addr().expect("TURN");
    assert!(turn_addr.ip().is_unspecified());
    let reachable = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), turn_addr.port());
    let (urls, username, credential) = turn_entry(&welcome(&server, "alice").await);
    assert_eq!(urls[1], format!("turn:{reachable}?transport=udp"));
    let (_client, relay) = allocate(reachable, &username, &credential).await;
    let relayed = relay.expect("allocation succeeds").local_addr().expect("relayed address");
    assert_eq!(relayed.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
}

#[tokio::test]
async fn shutdown_frees_the_turn_port() {
    let server = server_with(embedded(|_| {})).await;
    let turn_addr = server.turn_addr().expect("TURN");
    let (_, username, credential) = turn_entry(&welcome(&server, "alice").await);
    let (_client, relay) = allocate(turn_addr, &username, &credential).await;
    let relay = relay.expect("allocation succeeds");
    assert!(UdpSocket::bind(turn_addr).await.is_err(), "the TURN port is in use");

    server.shutdown().await;
    UdpSocket::bind(turn_addr).await.expect("the TURN port is free after shutdown");
    drop(relay);
}

#[tokio::test]
async fn dropping_the_handle_frees_the_turn_port_soon() {
    let server = server_with(embedded(|_| {})).await;
    let turn_addr = server.turn_addr().expect("TURN");
    drop(server);
    let freed = timeout(WAIT, async {
        while UdpSocket::bind(turn_addr).await.is_err() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(freed.is_ok(), "the TURN port is still taken after the handle was dropped");
}

#[tokio::test]
async fn an_external_coturn_gets_credentials_minted_with_its_secret() {
    let urls = vec![
        "turn:turn.example.com:3478?transport=udp".to_owned(),
        "turns:turn.example.com:5349?transport=tcp".to_owned(),
    ];
    let server = server_with(|c| {
        c.ice = IceConfig::External {
            urls: urls.clone(),
            secret: "coturn-static-auth-secret".into(),
            credential_ttl: Duration::from_secs(2 * HOUR),
        };
    })
    .await;
    assert_eq!(server.turn_addr(), None);
    assert_eq!(server.turn_secret(), Some("coturn-static-auth-secret"));

    let welcome = welcome(&server, "carol").await;
    let (given, username, credential) = turn_entry(&welcome);
    assert_eq!(given, urls);
    assert_fresh_username(&username, "carol", 2 * HOUR);
    let now = token::unix_now();
    assert_eq!(
        turn_credentials::verify("coturn-static-auth-secret", &username, &credential, now),
        Ok(())
    );
    assert_eq!(
        turn_credentials::verify("another-secret", &username, &credential, now),
        Err(CredentialError::BadPassword)
    );
    assert_eq!(welcome["ice_servers"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn without_turn_only_the_static_list_is_given() {
    let stun = duet_protocol::IceServer {
        urls: vec!["stun:stun.example.com:3478".into()],
        username: None,
        credential: None,
    };
    let server = server_with(|c| {
        c.ice = IceConfig::None;
        c.ice_servers = vec![stun];
    })
    .await;
    assert_eq!(server.turn_addr(), None);
    assert_eq!(server.turn_secret(), None);
    let welcome = welcome(&server, "alice").await;
    assert_eq!(welcome["ice_servers"], json!([{"urls":["stun:stun.example.com:3478"]}]));
}

#[tokio::test]
async fn unusable_ice_settings_are_refused_at_start() {
    let bad = [
        IceConfig::External {
            urls: vec![],
            secret: "s".into(),
            credential_ttl: Duration::from_secs(60),
        },
        IceConfig::External {
            urls: vec!["turn:turn.example.com".into()],
            secret: String::new(),
            credential_ttl: Duration::from_secs(60),
        },
        IceConfig::Embedded(TurnConfig { credential_ttl: Duration::ZERO, ..TurnConfig::default() }),
        IceConfig::Embedded(TurnConfig { secret: Some(String::new()), ..TurnConfig::default() }),
        IceConfig::Embedded(TurnConfig {
            public_ip: Some("::1".parse().expect("ip")),
            ..TurnConfig::default()
        }),
    ];
    for ice in bad {
        let mut config = config();
        config.ice = ice.clone();
        let err = start(config).await.expect_err("refused");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{ice:?}: {err}");
    }
}
