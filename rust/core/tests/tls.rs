//! wss://: duet-server serving TLS from a certificate and key, and the client trusting the
//! CA that signed it, with the built-in TLS or through a `TlsConnector` (the platform's TLS,
//! played here by tokio-rustls). The CA is made here, for this test alone.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use duet_core::*;
use duet_server::{ServerConfig, TlsConfig};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::Notify;

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

/// A `TlsConnector` as a platform's would be, made of tokio-rustls trusting the test CA: it
/// counts the connections it made and the engine closed, and can cut them all (a network
/// loss).
struct TestConnector {
    config: Arc<rustls::ClientConfig>,
    opened: AtomicUsize,
    closed: Arc<AtomicUsize>,
    cut: Arc<Notify>,
    refuse: Option<String>,
}

impl TestConnector {
    fn new(ca_der: &[u8], refuse: Option<&str>) -> Arc<TestConnector> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(rustls::pki_types::CertificateDer::from(ca_der.to_vec())).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(TestConnector {
            config: Arc::new(config),
            opened: AtomicUsize::new(0),
            closed: Arc::new(AtomicUsize::new(0)),
            cut: Arc::new(Notify::new()),
            refuse: refuse.map(str::to_owned),
        })
    }
}

#[async_trait::async_trait]
impl TlsConnector for TestConnector {
    async fn connect(&self, host: String, port: u16) -> Result<Arc<dyn TlsConnection>, String> {
        if let Some(why) = &self.refuse {
            return Err(why.clone());
        }
        let tcp = TcpStream::connect((host.as_str(), port)).await.map_err(|e| e.to_string())?;
        let name = rustls::pki_types::ServerName::try_from(host).map_err(|e| e.to_string())?;
        let tls = tokio_rustls::TlsConnector::from(Arc::clone(&self.config))
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        self.opened.fetch_add(1, Ordering::SeqCst);
        let (reader, writer) = tokio::io::split(tls);
        Ok(Arc::new(TestConnection {
            reader: tokio::sync::Mutex::new(reader),
            writer: tokio::sync::Mutex::new(writer),
            closed: Arc::clone(&self.closed),
            cut: Arc::clone(&self.cut),
        }))
    }
}

struct TestConnection {
    reader: tokio::sync::Mutex<ReadHalf<tokio_rustls::client::TlsStream<TcpStream>>>,
    writer: tokio::sync::Mutex<WriteHalf<tokio_rustls::client::TlsStream<TcpStream>>>,
    closed: Arc<AtomicUsize>,
    cut: Arc<Notify>,
}

#[async_trait::async_trait]
impl TlsConnection for TestConnection {
    async fn read(&self, max_len: u32) -> Result<Vec<u8>, String> {
        let mut buf = vec![0; max_len as usize];
        let mut reader = self.reader.lock().await;
        tokio::select! {
            n = reader.read(&mut buf) => {
                buf.truncate(n.map_err(|e| e.to_string())?);
                Ok(buf)
            }
            () = self.cut.notified() => Err("the network went away (test)".into()),
        }
    }

    async fn write(&self, data: Vec<u8>) -> Result<(), String> {
        let mut writer = self.writer.lock().await;
        writer.write_all(&data).await.map_err(|e| e.to_string())?;
        writer.flush().await.map_err(|e| e.to_string())
    }

    fn disconnect(&self) {
        self.closed.fetch_add(1, Ordering::SeqCst);
    }
}

async fn until(what: &str, done: impl Fn() -> bool) {
    let start = tokio::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting until {what}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_over_wss_through_the_platforms_tls() {
    let pki = TestPki::new();
    let srv = server(ServerConfig { tls: Some(pki.tls.clone()), ..quick_config() }).await;
    let connector = TestConnector::new(&pki.ca_der, None);
    let with_connector = |uid: &str| {
        let mut config = wss_config(&srv.http_url(), srv.secret(), uid, vec![]);
        config.tls_connector = Some(Arc::clone(&connector) as Arc<dyn TlsConnector>);
        config
    };
    let mut alice = Peer::try_connect(with_connector("alice"), "alice").await.unwrap();
    let mut bob = Peer::try_connect(with_connector("bob"), "bob").await.unwrap();
    assert_eq!(connector.opened.load(Ordering::SeqCst), 2);
    let (out, inc) = alice.connected_call(&mut bob).await;

    // A lost connection is replaced through the connector, and the call survives it.
    connector.cut.notify_waiters();
    until("both reconnected", || connector.opened.load(Ordering::SeqCst) == 4).await;
    until("the lost connections closed", || connector.closed.load(Ordering::SeqCst) == 2).await;
    until("alice is connected", || alice.video.is_connected()).await;
    out.close();
    bob.closed(&inc, EndReason::Hangup).await;

    alice.video.shutdown().await;
    bob.video.shutdown().await;
    until("every connection closed", || connector.closed.load(Ordering::SeqCst) == 4).await;
}

#[tokio::test]
async fn a_tls_connectors_failure_is_unreachable_with_its_reason() {
    let pki = TestPki::new();
    let srv = server(ServerConfig { tls: Some(pki.tls.clone()), ..quick_config() }).await;
    let mut config = wss_config(&srv.http_url(), srv.secret(), "alice", vec![]);
    config.tls_connector = Some(TestConnector::new(&pki.ca_der, Some("no route (test)")));
    match Peer::try_connect(config, "alice").await {
        Err(ConnectError::Unreachable(why)) => assert!(why.contains("no route (test)"), "{why}"),
        Err(other) => panic!("expected Unreachable, got {other:?}"),
        Ok(_) => panic!("connected through a connector that refuses"),
    }
}

#[tokio::test]
async fn tls_roots_beside_a_tls_connector_are_refused() {
    let pki = TestPki::new();
    let srv = server(ServerConfig { tls: Some(pki.tls.clone()), ..quick_config() }).await;
    let mut config = wss_config(&srv.http_url(), srv.secret(), "alice", vec![pki.ca_der.clone()]);
    config.tls_connector = Some(TestConnector::new(&pki.ca_der, None));
    match Peer::try_connect(config, "alice").await {
        Err(ConnectError::InvalidUrl { reason, .. }) => {
            assert!(reason.contains("tls_roots"), "{reason}")
        }
        Err(other) => panic!("expected InvalidUrl, got {other:?}"),
        Ok(_) => panic!("tls_roots were ignored"),
    }
}
