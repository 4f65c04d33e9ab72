//! The signaling connection: where to connect, and the hello/welcome handshake.

use std::sync::Arc;
use std::time::Duration;

use duet_protocol::{ClientMessage, ErrorCode, IceServer, Limits, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::transport::{PlatformTls, TlsConnector, Transport};

pub(crate) type Socket = WebSocketStream<Transport>;

/// Where the signaling link connects: the WebSocket URL, and for `wss://` whose TLS, made
/// once for every reconnect.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub url: String,
    security: Security,
}

#[derive(Clone)]
enum Security {
    /// `ws://`.
    Plain,
    #[cfg(feature = "built-in-tls")]
    BuiltIn(Arc<rustls::ClientConfig>),
    Platform(Arc<dyn TlsConnector>),
}

/// Why a build without the built-in TLS cannot reach a `wss://` URL on its own.
#[cfg(not(feature = "built-in-tls"))]
const NO_TLS: &str = "this build has no TLS of its own: wss:// needs a TLS connector (the \
                      Swift and Kotlin VideoCall.connect pass the platform's)";

impl Security {
    fn for_wss(
        url: &str,
        tls_roots: &[Vec<u8>],
        tls_connector: Option<Arc<dyn TlsConnector>>,
    ) -> Result<Security, ConnectError> {
        let invalid = |reason: &str| ConnectError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        match tls_connector {
            Some(_) if !tls_roots.is_empty() => Err(invalid(
                "tls_roots are for the built-in TLS; with a TLS connector the platform's trust \
                 store decides",
            )),
            Some(connector) => Ok(Security::Platform(connector)),
            #[cfg(feature = "built-in-tls")]
            None => Ok(Security::BuiltIn(crate::tls::client_config(url, tls_roots)?)),
            #[cfg(not(feature = "built-in-tls"))]
            None => Err(invalid(NO_TLS)),
        }
    }
}

impl Endpoint {
    /// The endpoint of a server URL as `websocket_url` reads it. `wss://` runs over
    /// `tls_connector`'s connections when there is one, else over the built-in TLS trusting
    /// `tls_roots` (DER) beside Mozilla's roots.
    ///
    /// # Errors
    ///
    /// `InvalidUrl` for a URL `websocket_url` refuses, an unusable root, roots given with a
    /// connector (the platform decides what it trusts), or `wss://` with neither a connector
    /// nor the built-in TLS in this build.
    pub(crate) fn new(
        server_url: &str,
        tls_roots: &[Vec<u8>],
        tls_connector: Option<Arc<dyn TlsConnector>>,
    ) -> Result<Endpoint, ConnectError> {
        let url = websocket_url(server_url)?;
        let security = if url.starts_with("ws://") {
            Security::Plain
        } else {
            Security::for_wss(&url, tls_roots, tls_connector)?
        };
        Ok(Endpoint { url, security })
    }

    /// The byte stream to the server, TLS done: the WebSocket handshake comes next.
    async fn open(&self) -> Result<Transport, ConnectError> {
        let unreachable = |e: std::io::Error| ConnectError::Unreachable(e.to_string());
        let uri = self
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| ConnectError::Unreachable(e.to_string()))?
            .uri()
            .clone();
        let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(if matches!(self.security, Security::Plain) {
            80
        } else {
            443
        });
        if let Security::Platform(connector) = &self.security {
            let connection = connector
                .connect(host.to_owned(), port)
                .await
                .map_err(|e| ConnectError::Unreachable(format!("TLS: {e}")))?;
            return Ok(Transport::PlatformTls(PlatformTls::new(connection)));
        }
        let tcp = TcpStream::connect((host, port)).await.map_err(unreachable)?;
        // A small message must not wait for the server's delayed ACK (Nagle).
        tcp.set_nodelay(true).map_err(unreachable)?;
        match &self.security {
            #[cfg(feature = "built-in-tls")]
            Security::BuiltIn(config) => {
                Ok(Transport::BuiltInTls(Box::new(crate::tls::connect(config, host, tcp).await?)))
            }
            _ => Ok(Transport::Tcp(tcp)),
        }
    }
}

/// Why connecting to the server failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid server URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("cannot reach the server: {0}")]
    Unreachable(String),
    #[error("the server refused the connection: {message} ({code:?})")]
    Refused { code: ErrorCode, message: String },
    #[error("the server did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the server broke the protocol: {0}")]
    Protocol(String),
}

impl ConnectError {
    /// Refusals that a retry with the same token cannot cure.
    pub fn is_permanent(&self) -> bool {
        matches!(self, ConnectError::InvalidUrl { .. } | ConnectError::Refused { .. })
    }
}

/// Whether the client's signaling connection is up, as `VideoCallDelegate` hears it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    Connected,
    /// The connection was lost and the client is retrying, with backoff. Calls survive a
    /// loss shorter than the server's grace period (20 s by default).
    Reconnecting,
    /// The server refused a reconnect, e.g. because the token expired. Retries go on,
    /// slowly, but only a new token (`VideoCall::update_token`) can make one succeed.
    Refused {
        code: ErrorCode,
        message: String,
    },
}

/// What the server told us in `welcome`.
#[derive(Debug, Clone)]
pub(crate) struct ServerInfo {
    pub uid: String,
    pub ice_servers: Vec<IceServer>,
    pub ring_timeout: Duration,
    pub grace: Duration,
    pub keepalive: Duration,
    pub limits: Limits,
}

/// The WebSocket URL for a server URL as a person writes it: `http://host:port` and
/// `ws://host:port` both mean `ws://host:port/ws`; an explicit path is kept.
///
/// # Errors
///
/// `InvalidUrl` for a URL without a scheme or host, or with a scheme other than ws, wss,
/// http or https.
pub fn websocket_url(server_url: &str) -> Result<String, ConnectError> {
    let invalid = |reason: &str| ConnectError::InvalidUrl {
        url: server_url.to_owned(),
        reason: reason.to_owned(),
    };
    let (scheme, rest) =
        server_url.split_once("://").ok_or_else(|| invalid("missing scheme (ws:// or http://)"))?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "ws" | "http" => "ws",
        "wss" | "https" => "wss",
        _ => return Err(invalid("scheme must be ws, wss, http or https")),
    };
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if host.is_empty() {
        return Err(invalid("missing host"));
    }
    let path = if path.is_empty() || path == "/" { "/ws" } else { path };
    Ok(format!("{scheme}://{host}{path}"))
}

/// Opens the socket, says `hello`, and waits for `welcome`.
pub(crate) async fn handshake(
    endpoint: &Endpoint,
    hello: &ClientMessage,
    timeout: Duration,
) -> Result<(Socket, ServerInfo), ConnectError> {
    // Boxed: a TLS connect is a large future, which would otherwise sit inline in the
    // engine's own (its reconnect and last-words paths) whether TLS is used or not.
    tokio::time::timeout(timeout, Box::pin(handshake_inner(endpoint, hello)))
        .await
        .map_err(|_| ConnectError::Timeout(timeout))?
}

async fn handshake_inner(
    endpoint: &Endpoint,
    hello: &ClientMessage,
) -> Result<(Socket, ServerInfo), ConnectError> {
    let transport = endpoint.open().await?;
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(endpoint.url.as_str(), transport, None)
            .await
            .map_err(|e| ConnectError::Unreachable(e.to_string()))?;
    ws.send(Message::Text(duet_protocol::encode(hello).into()))
        .await
        .map_err(|e| ConnectError::Unreachable(e.to_string()))?;
    loop {
        let frame = ws
            .next()
            .await
            .ok_or_else(|| ConnectError::Unreachable("closed before welcome".into()))?;
        let text = match frame.map_err(|e| ConnectError::Unreachable(e.to_string()))? {
            Message::Text(t) => t,
            Message::Close(_) => {
                return Err(ConnectError::Unreachable("closed before welcome".into()))
            }
            _ => continue,
        };
        let msg = duet_protocol::decode_server(&text)
            .map_err(|e| ConnectError::Protocol(e.to_string()))?;
        return match msg {
            ServerMessage::Welcome {
                uid,
                ice_servers,
                ring_timeout_ms,
                grace_ms,
                keepalive_ms,
                limits,
                ..
            } => Ok((
                ws,
                ServerInfo {
                    uid,
                    ice_servers,
                    ring_timeout: Duration::from_millis(ring_timeout_ms),
                    grace: Duration::from_millis(grace_ms),
                    keepalive: Duration::from_millis(keepalive_ms.max(100)),
                    limits,
                },
            )),
            ServerMessage::Error { code, message, .. } => {
                Err(ConnectError::Refused { code, message })
            }
            other => Err(ConnectError::Protocol(format!("expected welcome, got {other:?}"))),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_map_to_the_websocket_endpoint() {
        assert_eq!(websocket_url("http://127.0.0.1:7480").unwrap(), "ws://127.0.0.1:7480/ws");
        assert_eq!(websocket_url("ws://127.0.0.1:7480/").unwrap(), "ws://127.0.0.1:7480/ws");
        assert_eq!(websocket_url("ws://h:1/custom/ws").unwrap(), "ws://h:1/custom/ws");
        assert!(websocket_url("127.0.0.1:7480").is_err());
        assert!(websocket_url("ftp://x").is_err());
        assert!(websocket_url("ws://").is_err());
    }

    /// The mobile libraries' build (no `built-in-tls`: scripts/test's cargo stage runs this
    /// module so too) says what `wss://` needs instead of failing to connect.
    #[test]
    fn wss_needs_the_built_in_tls_or_a_connector() {
        let endpoint = Endpoint::new("https://example.com", &[], None);
        #[cfg(feature = "built-in-tls")]
        assert!(endpoint.is_ok());
        #[cfg(not(feature = "built-in-tls"))]
        match endpoint {
            Err(ConnectError::InvalidUrl { reason, .. }) => {
                assert!(reason.contains("needs a TLS connector"), "{reason}");
            }
            _ => panic!("wss:// without any TLS was accepted"),
        }
        assert!(Endpoint::new("http://example.com", &[], None).is_ok(), "ws:// needs no TLS");
    }
}
