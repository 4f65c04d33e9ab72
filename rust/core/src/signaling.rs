//! The signaling connection: where to connect, and the hello/welcome handshake.

use std::time::Duration;

use duet_protocol::{ClientMessage, ErrorCode, IceServer, Limits, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Where the signaling link connects: the WebSocket URL, and for `wss://` the TLS
/// connector (its trusted roots), built once for every reconnect.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub url: String,
    tls: Option<Connector>,
}

impl Endpoint {
    /// The endpoint of a server URL as `websocket_url` reads it, trusting `tls_roots`
    /// (DER) beside the built-in roots for `wss://`.
    pub(crate) fn new(server_url: &str, tls_roots: &[Vec<u8>]) -> Result<Endpoint, ConnectError> {
        let url = websocket_url(server_url)?;
        let tls = if url.starts_with("wss://") {
            Some(crate::tls::connector(&url, tls_roots)?)
        } else {
            None
        };
        Ok(Endpoint { url, tls })
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
    // TCP_NODELAY: a small message must not wait for the server's delayed ACK (Nagle).
    let url = endpoint.url.as_str();
    let tls = endpoint.tls.clone();
    let (mut ws, _) = tokio_tungstenite::connect_async_tls_with_config(url, None, true, tls)
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
}
