//! wss://: duet-server serving TLS from a certificate and key, and the client trusting the
//! CA that signed it. The CA is made here, for this test alone.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;

use duet_core::*;
use duet_server::{ServerConfig, TlsConfig};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use support::*;

/// A test CA, and a certificate for `localhost` and 127.0.0.1 it signed.
struct TestPki {
    ca_der: Vec<u8>,
    tls: TlsConfig,
    dir: PathBuf,
}

impl TestPki {
    fn new() -> TestPki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();

        let dir = std::env::temp_dir().join(format!("duet-tls-{}", uuid_like()));
        std::fs::create_dir_all(&dir).unwrap();
        let tls = TlsConfig { cert: dir.join("fullchain.pem"), key: dir.join("privkey.pem") };
        std::fs::write(&tls.cert, cert.pem()).unwrap();
        std::fs::write(&tls.key, key.serialize_pem()).unwrap();
        TestPki { ca_der: ca.der().to_vec(), tls, dir }
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn uuid_like() -> String {
    format!("{}-{:?}", std::process::id(), std::time::Instant::now()).replace([' ', '.', ':'], "")
}

fn wss_config(server_url: &str, secret: &str, uid: &str, roots: Vec<Vec<u8>>) -> ClientConfig {
    let token = duet_server::token::mint(secret, uid, std::time::Duration::from_secs(600));
    let mut config = ClientConfig::new(server_url, token);
    config.media = MediaConfig::loopback();
    config.tls_roots = roots;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_over_wss_with_a_private_ca() {
    let pki = TestPki::new();
    let srv = server(ServerConfig { tls: Some(pki.tls.clone()), ..quick_config() }).await;
    assert!(srv.ws_url().starts_with("wss://127.0.0.1:"), "{}", srv.ws_url());
    let url = srv.http_url();
    assert!(url.starts_with("https://"), "{url}");

    let alice = wss_config(&url, srv.secret(), "alice", vec![pki.ca_der.clone()]);
    let bob = wss_config(&url, srv.secret(), "bob", vec![pki.ca_der.clone()]);
    let mut alice = Peer::try_connect(alice, "alice").await.unwrap();
    let mut bob = Peer::try_connect(bob, "bob").await.unwrap();
    let (out, inc) = alice.connected_call(&mut bob).await;
    out.close();
    bob.closed(&inc, EndReason::Hangup).await;
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_refused() {
    let pki = TestPki::new();
    let srv = server(ServerConfig { tls: Some(pki.tls.clone()), ..quick_config() }).await;
    let config = wss_config(&srv.http_url(), srv.secret(), "alice", vec![]);
    match Peer::try_connect(config, "alice").await {
        Err(ConnectError::Unreachable(why)) => assert!(why.contains("certificate"), "{why}"),
        Err(other) => panic!("expected an untrusted certificate, got {other:?}"),
        Ok(_) => panic!("a certificate no root vouches for was accepted"),
    }
}

#[tokio::test]
async fn a_plain_client_gets_nothing_from_a_tls_server() {
    let pki = TestPki::new();
    let srv = server(ServerConfig { tls: Some(pki.tls.clone()), ..quick_config() }).await;
    let plain = format!("ws://{}", srv.local_addr());
    let config = wss_config(&plain, srv.secret(), "alice", vec![]);
    assert!(Peer::try_connect(config, "alice").await.is_err());
}

#[tokio::test]
async fn a_key_that_is_not_the_certificates_stops_the_start() {
    let (a, b) = (TestPki::new(), TestPki::new());
    let mixed = TlsConfig { cert: a.tls.cert.clone(), key: b.tls.key.clone() };
    let err =
        duet_server::start(ServerConfig { tls: Some(mixed), ..quick_config() }).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
    let missing = TlsConfig { cert: a.dir.join("absent.pem"), key: a.tls.key.clone() };
    let err = duet_server::start(ServerConfig { tls: Some(missing), ..quick_config() })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("absent.pem"), "{err}");
}
