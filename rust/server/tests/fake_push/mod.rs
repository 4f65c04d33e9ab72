//! Local stand-ins for APNs and FCM: real HTTP/2 over TLS, with certificates from a test CA,
//! checking what Apple and Google check (the JWTs' signatures with the test keys' public
//! halves, every header, the message's shape), and recording each push they accept.
// Shared by duet-server's and duet-core's push tests, each using its own subset.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use bytes::Bytes;
use duet_server::{ApnsConfig, FcmConfig, PushConfig};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair, RsaKeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_2048_8192_SHA256,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio_rustls::TlsAcceptor;

pub const KEY_ID: &str = "KEYID12345";
pub const TEAM_ID: &str = "TEAMID6789";
pub const BUNDLE: &str = "com.example.duet";
pub const PROJECT: &str = "duet-test";
pub const CLIENT_EMAIL: &str = "pusher@duet-test.iam.gserviceaccount.com";
/// The service account's RSA key: a test key, made for these tests only.
pub const FCM_KEY_PEM: &str = include_str!("../fixtures/fcm-test-key.pem");

/// One push a fake accepted (or refused as told to), as it arrived.
#[derive(Debug, Clone)]
pub struct Push {
    pub at: Instant,
    pub service: &'static str,
    /// The device token the push was addressed to.
    pub token: String,
    /// APNs: the provider token. FCM: the access token.
    pub bearer: String,
    /// APNs: the payload. FCM: the message's `data`.
    pub payload: Value,
    /// `apns-expiration` (APNs) or the `ttl` (FCM), as sent.
    pub expiry: String,
}

/// A test CA and a certificate for 127.0.0.1 signed by it.
pub struct TestPki {
    pub ca_der: Vec<u8>,
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

impl TestPki {
    pub fn new() -> TestPki {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "Duet test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        TestPki {
            ca_der: ca.der().to_vec(),
            cert: cert.der().clone(),
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }

    fn acceptor(&self) -> TlsAcceptor {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![self.cert.clone()], self.key.clone_key())
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec()];
        TlsAcceptor::from(Arc::new(config))
    }
}

/// What a fake answers for a device token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Accept,
    /// APNs 410 Unregistered / FCM 404 UNREGISTERED.
    Dead,
    /// APNs 400 BadDeviceToken (a sandbox token sent to production, say).
    BadToken,
    /// A 500: the service failed.
    Fail,
    /// APNs 403 ExpiredProviderToken, once; then `Accept`.
    ExpiredOnce,
}

struct State {
    answers: Mutex<HashMap<String, Answer>>,
    pushes: UnboundedSender<Push>,
    problems: Mutex<Vec<String>>,
    connections: AtomicUsize,
    grants: AtomicUsize,
    access_tokens: Mutex<Vec<String>>,
    apns_public: Vec<u8>,
    fcm_public: Vec<u8>,
    addr: Mutex<Option<SocketAddr>>,
}

/// One TLS HTTP/2 server playing both APNs (`/3/device/…`) and FCM (`/token`,
/// `/v1/projects/…/messages:send`).
pub struct FakePush {
    pub addr: SocketAddr,
    pub pki: Arc<TestPki>,
    /// The APNs `.p8` key the server is configured with (its public half checks the JWTs).
    pub apns_key_pem: String,
    state: Arc<State>,
    pub pushes: UnboundedReceiver<Push>,
}

impl FakePush {
    pub async fn start() -> FakePush {
        let pki = Arc::new(TestPki::new());
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let ec =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref(), &rng).unwrap();
        let rsa_der = PrivatePkcs8KeyDer::from_pem_slice(FCM_KEY_PEM.as_bytes()).unwrap();
        let rsa = RsaKeyPair::from_pkcs8(rsa_der.secret_pkcs8_der()).unwrap();
        let (tx, pushes) = unbounded_channel();
        let state = Arc::new(State {
            answers: Mutex::new(HashMap::new()),
            pushes: tx,
            problems: Mutex::new(Vec::new()),
            connections: AtomicUsize::new(0),
            grants: AtomicUsize::new(0),
            access_tokens: Mutex::new(Vec::new()),
            apns_public: ec.public_key().as_ref().to_vec(),
            fcm_public: rsa.public().as_ref().to_vec(),
            addr: Mutex::new(None),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        *state.addr.lock().unwrap() = Some(addr);
        tokio::spawn(serve(listener, pki.acceptor(), state.clone()));
        FakePush { addr, pki, apns_key_pem: pem("PRIVATE KEY", doc.as_ref()), state, pushes }
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Push settings for a server pushing here, through both services.
    pub fn config(&self) -> PushConfig {
        PushConfig {
            apns: Some(ApnsConfig {
                key_pem: self.apns_key_pem.clone(),
                key_id: KEY_ID.into(),
                team_id: TEAM_ID.into(),
                url: Some(self.url()),
            }),
            fcm: Some(FcmConfig {
                service_account_json: service_account(),
                url: Some(self.url()),
                token_url: Some(format!("{}/token", self.url())),
            }),
            extra_roots: vec![self.pki.ca_der.clone()],
            ..PushConfig::default()
        }
    }

    pub fn answer(&self, token: &str, answer: Answer) {
        self.state.answers.lock().unwrap().insert(token.to_owned(), answer);
    }

    /// Whatever a fake found wrong in a request; a test ends asserting there was nothing.
    pub fn problems(&self) -> Vec<String> {
        self.state.problems.lock().unwrap().clone()
    }

    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    pub fn grants(&self) -> usize {
        self.state.grants.load(Ordering::SeqCst)
    }

    pub async fn next(&mut self) -> Push {
        tokio::time::timeout(std::time::Duration::from_secs(5), self.pushes.recv())
            .await
            .expect("a push within 5 s")
            .expect("the fake runs")
    }
}

pub fn service_account() -> String {
    json!({
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "test-key-1",
        "private_key": FCM_KEY_PEM,
        "client_email": CLIENT_EMAIL,
        "token_uri": "https://oauth2.googleapis.com/token",
    })
    .to_string()
}

pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> =
        b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

async fn serve(listener: TcpListener, acceptor: TlsAcceptor, state: Arc<State>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else { return };
        let (acceptor, state) = (acceptor.clone(), state.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else { return };
            if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
                state.problems.lock().unwrap().push("the client did not offer h2".into());
            }
            state.connections.fetch_add(1, Ordering::SeqCst);
            let service = service_fn(move |req| handle(req, state.clone()));
            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<State>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let at = Instant::now();
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let header = |name: &str| {
        parts.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
    };
    let result = if let Some(token) = path.strip_prefix("/3/device/") {
        apns(&state, at, token, &header, &body)
    } else if path == "/token" {
        grant(&state, &body)
    } else if path == format!("/v1/projects/{PROJECT}/messages:send") {
        fcm(&state, at, &header, &body)
    } else {
        Err(format!("unknown path {path}"))
    };
    let (status, body) = result.unwrap_or_else(|problem| {
        state.problems.lock().unwrap().push(problem.clone());
        (StatusCode::FORBIDDEN, json!({"reason": problem}))
    });
    Ok(Response::builder().status(status).body(Full::new(Bytes::from(body.to_string()))).unwrap())
}

type Reply = Result<(StatusCode, Value), String>;

fn apns(
    state: &State,
    at: Instant,
    token: &str,
    header: &dyn Fn(&str) -> String,
    body: &[u8],
) -> Reply {
    expect(&header("apns-push-type"), "voip", "apns-push-type")?;
    expect(&header("apns-topic"), &format!("{BUNDLE}.voip"), "apns-topic")?;
    expect(&header("apns-priority"), "10", "apns-priority")?;
    let expiration: u64 = header("apns-expiration").parse().map_err(|_| "apns-expiration")?;
    if expiration + 1 < unix_secs() {
        return Err(format!("apns-expiration {expiration} has passed"));
    }
    let auth = header("authorization");
    let jwt = auth.strip_prefix("bearer ").ok_or("authorization is not a bearer token")?;
    let (head, claims) = verify(jwt, &ECDSA_P256_SHA256_FIXED, &state.apns_public)?;
    expect(head["alg"].as_str().unwrap_or_default(), "ES256", "alg")?;
    expect(head["kid"].as_str().unwrap_or_default(), KEY_ID, "kid")?;
    expect(claims["iss"].as_str().unwrap_or_default(), TEAM_ID, "iss")?;
    let iat = claims["iat"].as_u64().ok_or("no iat")?;
    if iat.abs_diff(unix_secs()) > 3600 {
        return Err("iat is not recent".into());
    }
    if !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("the device token {token} is not hex"));
    }
    let payload: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if body.len() > 5120 || payload["aps"] != json!({}) || !payload["duet"]["call_id"].is_string() {
        return Err(format!("bad VoIP payload {payload}"));
    }
    let answer = {
        let mut answers = state.answers.lock().unwrap();
        let answer = answers.get(token).copied().unwrap_or(Answer::Accept);
        if answer == Answer::ExpiredOnce {
            answers.insert(token.to_owned(), Answer::Accept);
        }
        answer
    };
    let _ = state.pushes.send(Push {
        at,
        service: "apns",
        token: token.to_owned(),
        bearer: jwt.to_owned(),
        payload,
        expiry: expiration.to_string(),
    });
    Ok(match answer {
        Answer::Accept => (StatusCode::OK, json!({})),
        Answer::Dead => (StatusCode::GONE, json!({"reason": "Unregistered"})),
        Answer::BadToken => (StatusCode::BAD_REQUEST, json!({"reason": "BadDeviceToken"})),
        Answer::ExpiredOnce => (StatusCode::FORBIDDEN, json!({"reason": "ExpiredProviderToken"})),
        Answer::Fail => {
            (StatusCode::INTERNAL_SERVER_ERROR, json!({"reason": "InternalServerError"}))
        }
    })
}

/// The OAuth2 JWT-bearer grant, as Google's token endpoint checks it.
fn grant(state: &State, body: &[u8]) -> Reply {
    let form = std::str::from_utf8(body).map_err(|e| e.to_string())?;
    let fields: HashMap<&str, &str> = form.split('&').filter_map(|kv| kv.split_once('=')).collect();
    expect(
        fields.get("grant_type").copied().unwrap_or_default(),
        "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer",
        "grant_type",
    )?;
    let jwt = fields.get("assertion").ok_or("no assertion")?;
    let (head, claims) = verify(jwt, &RSA_PKCS1_2048_8192_SHA256, &state.fcm_public)?;
    expect(head["alg"].as_str().unwrap_or_default(), "RS256", "alg")?;
    expect(claims["iss"].as_str().unwrap_or_default(), CLIENT_EMAIL, "iss")?;
    expect(
        claims["scope"].as_str().unwrap_or_default(),
        "https://www.googleapis.com/auth/firebase.messaging",
        "scope",
    )?;
    let addr = state.addr.lock().unwrap().ok_or("no address")?;
    expect(claims["aud"].as_str().unwrap_or_default(), &format!("https://{addr}/token"), "aud")?;
    let n = state.grants.fetch_add(1, Ordering::SeqCst);
    let access = format!("fake-access-{n}");
    state.access_tokens.lock().unwrap().push(access.clone());
    Ok((
        StatusCode::OK,
        json!({"access_token": access, "expires_in": 3599, "token_type": "Bearer"}),
    ))
}

fn fcm(state: &State, at: Instant, header: &dyn Fn(&str) -> String, body: &[u8]) -> Reply {
    let auth = header("authorization");
    let access = auth.strip_prefix("Bearer ").ok_or("authorization is not a bearer token")?;
    if !state.access_tokens.lock().unwrap().iter().any(|t| t == access) {
        return Ok((StatusCode::UNAUTHORIZED, json!({"error": {"status": "UNAUTHENTICATED"}})));
    }
    let body: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let message = &body["message"];
    let token = message["token"].as_str().ok_or("no token")?.to_owned();
    expect(message["android"]["priority"].as_str().unwrap_or_default(), "HIGH", "priority")?;
    let ttl = message["android"]["ttl"].as_str().unwrap_or_default().to_owned();
    if !ttl.ends_with('s') || ttl.trim_end_matches('s').parse::<u64>().is_err() {
        return Err(format!("bad ttl {ttl}"));
    }
    if message.get("notification").is_some() || !message["data"]["duet_call_id"].is_string() {
        return Err(format!("not a data-only call message: {message}"));
    }
    if message["data"].as_object().is_some_and(|m| m.values().any(|v| !v.is_string())) {
        return Err("FCM data values must be strings".into());
    }
    let answer = state.answers.lock().unwrap().get(&token).copied().unwrap_or(Answer::Accept);
    let _ = state.pushes.send(Push {
        at,
        service: "fcm",
        token,
        bearer: access.to_owned(),
        payload: message["data"].clone(),
        expiry: ttl,
    });
    Ok(match answer {
        Answer::Accept => (StatusCode::OK, json!({"name": "projects/duet-test/messages/1"})),
        Answer::Dead => (
            StatusCode::NOT_FOUND,
            json!({"error": {"code": 404, "status": "NOT_FOUND", "details": [
                {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                 "errorCode": "UNREGISTERED"}]}}),
        ),
        Answer::Fail | Answer::BadToken | Answer::ExpiredOnce => {
            (StatusCode::INTERNAL_SERVER_ERROR, json!({"error": {"code": 500}}))
        }
    })
}

/// Checks a JWT's signature with `public`, and returns its header and claims.
fn verify(
    jwt: &str,
    alg: &'static dyn ring::signature::VerificationAlgorithm,
    public: &[u8],
) -> Result<(Value, Value), String> {
    let (input, sig) = jwt.rsplit_once('.').ok_or("not a JWT")?;
    let (head, claims) = input.split_once('.').ok_or("not a JWT")?;
    let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|e| e.to_string())?;
    UnparsedPublicKey::new(alg, public)
        .verify(input.as_bytes(), &sig)
        .map_err(|_| "the JWT's signature does not verify".to_owned())?;
    let part = |p: &str| -> Result<Value, String> {
        let bytes = URL_SAFE_NO_PAD.decode(p).map_err(|e| e.to_string())?;
        serde_json::from_slice(&bytes).map_err(|e| e.to_string())
    };
    Ok((part(head)?, part(claims)?))
}

fn expect(got: &str, want: &str, what: &str) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: expected {want:?}, got {got:?}"))
    }
}

fn unix_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}
