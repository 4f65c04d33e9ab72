//! An HTTPS client that speaks only HTTP/2 and keeps one long-lived connection per origin,
//! as APNs asks (a connection per push would be throttled as a denial of service). A
//! connection that fails is replaced on the next request.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_rustls::TlsConnector;

/// Connecting (TCP and TLS) and each request must finish within this, so that a push
/// service that hangs never holds a push task for long.
const TIMEOUT: Duration = Duration::from_secs(10);
/// A response body read whole is bounded: the push services answer a few hundred bytes.
const MAX_BODY: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("bad url {0}")]
    Url(String),
    #[error("connecting to {0}: {1}")]
    Connect(String, String),
    #[error("request: {0}")]
    Request(String),
    #[error("timed out")]
    Timeout,
    #[error("the response body is over {MAX_BODY} bytes")]
    TooLarge,
}

pub(crate) struct H2Client {
    tls: TlsConnector,
    /// One slot per origin, locked while its connection is (re)opened: requests to that
    /// origin wait for it, those to another origin do not.
    connections: std::sync::Mutex<HashMap<String, Arc<Slot>>>,
}

type Slot = Mutex<Option<SendRequest<Full<Bytes>>>>;

impl H2Client {
    /// A client trusting the web PKI's roots, and `extra_roots` (DER) besides.
    pub(crate) fn new(extra_roots: &[Vec<u8>]) -> Result<Self, HttpError> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for der in extra_roots {
            roots
                .add(CertificateDer::from(der.clone()))
                .map_err(|e| HttpError::Connect("(trust roots)".into(), e.to_string()))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| HttpError::Connect("(tls)".into(), e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(H2Client {
            tls: TlsConnector::from(Arc::new(config)),
            connections: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// Sends `request` (its URI absolute) and reads the response whole.
    pub(crate) async fn send(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Bytes), HttpError> {
        let origin = origin(request.uri())?;
        let mut sender = self.connection(&origin).await?;
        let response = tokio::time::timeout(TIMEOUT, async {
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| HttpError::Request(e.to_string()))?;
            let status = response.status();
            let body = http_body_util::Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|_| HttpError::TooLarge)?
                .to_bytes();
            Ok((status, body))
        })
        .await
        .map_err(|_| HttpError::Timeout)?;
        if response.is_err() {
            // Whatever went wrong, the next request starts on a fresh connection.
            *self.slot(&origin).lock().await = None;
        }
        response
    }

    /// The origin's connection, opened if there is none or the last one closed.
    async fn connection(&self, origin: &str) -> Result<SendRequest<Full<Bytes>>, HttpError> {
        let slot = self.slot(origin);
        let mut slot = slot.lock().await;
        if let Some(sender) = slot.as_ref().filter(|s| !s.is_closed()) {
            return Ok(sender.clone());
        }
        let sender = tokio::time::timeout(TIMEOUT, self.connect(origin))
            .await
            .map_err(|_| HttpError::Timeout)??;
        *slot = Some(sender.clone());
        Ok(sender)
    }

    fn slot(&self, origin: &str) -> Arc<Slot> {
        // The push services are a handful of origins: the map never grows past them.
        let mut connections = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        connections.entry(origin.to_owned()).or_default().clone()
    }

    async fn connect(&self, origin: &str) -> Result<SendRequest<Full<Bytes>>, HttpError> {
        let fail = |e: String| HttpError::Connect(origin.to_owned(), e);
        let (host, _) = origin.rsplit_once(':').ok_or_else(|| HttpError::Url(origin.into()))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let name = ServerName::try_from(host).map_err(|e| fail(e.to_string()))?;
        let tcp = TcpStream::connect(origin).await.map_err(|e| fail(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let tls = self.tls.connect(name, tcp).await.map_err(|e| fail(e.to_string()))?;
        let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .keep_alive_interval(Duration::from_secs(60))
            .handshake(TokioIo::new(tls))
            .await
            .map_err(|e| fail(e.to_string()))?;
        let origin = origin.to_owned();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%origin, "push connection ended: {e}");
            }
        });
        Ok(sender)
    }
}

/// `host:port` of an https URI (port 443 unless given).
fn origin(uri: &Uri) -> Result<String, HttpError> {
    if uri.scheme_str() != Some("https") {
        return Err(HttpError::Url(format!("{uri}: only https is spoken")));
    }
    let host = uri.host().ok_or_else(|| HttpError::Url(uri.to_string()))?;
    Ok(format!("{host}:{}", uri.port_u16().unwrap_or(443)))
}
