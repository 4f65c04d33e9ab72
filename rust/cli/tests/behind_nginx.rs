//! `duet serve` behind Debian's nginx, configured as docs/deploy.md says: calls go through
//! the proxy, and a node drained behind it hands its calls to the next one.

// A test that fails says so loudly; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

mod support;

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
    let port: u16 = direct.rsplit(':').next().unwrap().parse().unwrap();
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
    let port: u16 = direct.rsplit(':').next().unwrap().parse().unwrap();
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
    let port = |url: &str| -> u16 { url.rsplit(':').next().unwrap().parse().unwrap() };
    let nginx = Nginx::start(&[port(&first_url), port(&second_url)]);
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
