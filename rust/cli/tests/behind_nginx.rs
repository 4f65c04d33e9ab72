//! `duet serve` behind Debian's nginx, configured as docs/deploy.md says: calls go through
//! the proxy, and a node drained behind it hands its calls to the next one.

// A test that fails says so loudly; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::nginx::{Nginx, Tls};
use support::*;

fn event<'a>(events: &'a [Value], name: &str) -> &'a Value {
    events.iter().find(|e| e["event"] == name).unwrap_or_else(|| panic!("no {name} in {events:?}"))
}

fn answer(url: &str, seconds: &str) -> Running {
    answer_with(url, seconds, &[])
}

fn answer_with(url: &str, seconds: &str, extra: &[&str]) -> Running {
    let bob = Running::start(
        duet()
            .args(["answer", "--server", url, "--uid", "bob", "--seconds", seconds, "--json"])
            .args(extra),
    );
    bob.line_containing("\"connected\"");
    bob
}

fn call(url: &str, seconds: &str) -> Running {
    call_with(url, seconds, &[])
}

fn call_with(url: &str, seconds: &str, extra: &[&str]) -> Running {
    Running::start(
        duet()
            .args(["call", "--server", url, "--uid", "alice", "--to", "bob"])
            .args(["--seconds", seconds, "--json"])
            .args(extra),
    )
}

/// A test CA and a certificate it signed for 127.0.0.1, in PEM files in `dir`.
fn test_pki(dir: &std::path::Path) -> (std::path::PathBuf, Tls) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let tls = Tls { cert: dir.join("fullchain.pem"), key: dir.join("privkey.pem") };
    std::fs::write(&tls.cert, cert.pem()).unwrap();
    std::fs::write(&tls.key, key.serialize_pem()).unwrap();
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, ca.pem()).unwrap();
    (ca_path, tls)
}

#[test]
fn a_call_through_nginx() {
    let (_server, direct) = serve(&[]);
    let port = port_of(&direct);
    let nginx = Nginx::start(&[port]);
    let bob = answer(&nginx.url(), "30");
    let (code, alice) = call(&nginx.url(), "1").rest();
    assert_eq!(code, 0, "{alice:?}\n{}", nginx.error_log());
    let (code, bob) = bob.rest();
    assert_eq!(code, 0, "{bob:?}");
    assert_eq!(event(&bob, "closed")["reason"], "hangup");
    for summary in [event(&alice, "summary"), event(&bob, "summary")] {
        assert_eq!(summary["ok"], true, "{summary}");
        assert!(summary["frames_verified"].as_u64().unwrap() > 0, "{summary}");
    }
}

/// nginx terminating TLS as docs/deploy.md's server block does; the clients trust the
/// test's CA (`--tls-root`) and speak wss:// to nginx, which speaks ws:// to the node.
#[test]
fn a_call_through_nginx_with_tls() {
    let (_server, direct) = serve(&["--secret", "nginx-tls-secret"]);
    let port = port_of(&direct);
    let dir = std::env::temp_dir().join(format!("duet-nginx-pki-{}-{port}", std::process::id()));
    let (ca, tls) = test_pki(&dir);
    let nginx = Nginx::start_with(&[port], Some(&tls));
    let url = nginx.url();
    assert!(url.starts_with("https://"), "{url}");
    let ca = ca.to_str().unwrap();
    let trust = ["--tls-root", ca, "--secret", "nginx-tls-secret"];
    let bob = answer_with(&url, "30", &trust);
    let (code, alice) = call_with(&url, "1", &trust).rest();
    assert_eq!(code, 0, "{alice:?}\n{}", nginx.error_log());
    let (code, bob) = bob.rest();
    assert_eq!(code, 0, "{bob:?}");
    assert_eq!(event(&bob, "closed")["reason"], "hangup");
    assert_eq!(event(&alice, "summary")["ok"], true, "{alice:?}");

    // Without the CA, the certificate is refused: exit 2 with a message.
    let out = duet()
        .args(["call", "--server", &url, "--uid", "carol", "--to", "bob"])
        .args(["--secret", "nginx-tls-secret"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("certificate"), "{said}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// SIGTERM on the node behind nginx: it drains (exit 0), the clients reconnect through
/// nginx to the backup node, restate their call, and it goes on to a normal hang-up.
#[test]
fn a_node_drained_behind_nginx_hands_its_call_to_the_next() {
    let (mut first, first_url) = serve(&["--drain-timeout", "5"]);
    let (_second, second_url) = serve(&[]);
    let nginx = Nginx::start(&[port_of(&first_url), port_of(&second_url)]);
    let bob = answer(&nginx.url(), "30");
    let alice = call(&nginx.url(), "4");
    alice.line_containing("\"stream\"");

    let pid = first.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = first.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the drained node did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    first.line_containing("drained in");

    let (code, alice) = alice.rest();
    assert_eq!(code, 0, "{alice:?}\n{}", nginx.error_log());
    let (code, bob) = bob.rest();
    assert_eq!(code, 0, "{bob:?}");
    // alice's hang-up reached bob through the second node, which knew the call only from
    // their restatements.
    assert_eq!(event(&bob, "closed")["reason"], "hangup", "{bob:?}");
    assert_eq!(event(&alice, "summary")["ok"], true, "{alice:?}");
}

/// Behind nginx named as a trusted proxy, the per-address limit counts each client under the
/// address nginx forwards for it, not nginx's own; what a client writes in X-Forwarded-For
/// itself, or sends to the node directly, is not believed.
#[test]
fn the_per_address_limit_sees_each_client_behind_a_trusted_proxy() {
    let (_server, direct) = serve(&["--max-per-ip", "1", "--trusted-proxy", "127.0.0.1"]);
    let node = port_of(&direct);
    let nginx = Nginx::start(&[node]);
    let front = nginx.port;

    let (status, _first) = upgrade_from("127.0.0.2", front, None);
    assert!(status.contains(" 101 "), "{status}\n{}", nginx.error_log());
    let (status, _) = upgrade_from("127.0.0.2", front, None);
    assert!(status.contains(" 429 "), "the same client's second connection: {status}");
    let (status, _) = upgrade_from("127.0.0.2", front, Some("127.0.0.9"));
    assert!(status.contains(" 429 "), "a client naming another address: {status}");
    let (status, _second) = upgrade_from("127.0.0.3", front, None);
    assert!(status.contains(" 101 "), "another client through the same proxy: {status}");

    let (status, _third) = upgrade_from("127.0.0.4", node, Some("127.0.0.5"));
    assert!(status.contains(" 101 "), "{status}");
    let (status, _) = upgrade_from("127.0.0.4", node, Some("127.0.0.6"));
    assert!(!status.contains(" 101 "), "an untrusted peer's header is ignored: {status}");
}

/// A WebSocket upgrade request to `port` from the loopback address `from`: the answer's
/// status line ("" if the connection was closed unanswered), and the connection, open for
/// as long as the caller keeps it.
fn upgrade_from(from: &str, port: u16, forwarded_for: Option<&str>) -> (String, TcpStream) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build().unwrap();
    let stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
        socket.connect(([127, 0, 0, 1], port).into()).await.unwrap().into_std().unwrap()
    });
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let forwarded = forwarded_for.map(|f| format!("X-Forwarded-For: {f}\r\n")).unwrap_or_default();
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n{forwarded}\r\n"
    );
    let mut status = String::new();
    if (&stream).write_all(request.as_bytes()).is_ok() {
        let _ = BufReader::new(&stream).read_line(&mut status);
    }
    (status, stream)
}
