//! Asks a development server for a token (`GET /dev/token?uid=…`), so that trying Duet
//! against a local `duet serve` needs no backend. A plain HTTP/1.1 request on the
//! signaling host: the engine's only HTTP call, and too small to justify an HTTP client.
//!
//! A production server (started with a secret) answers 404: tokens then come from the
//! app's own backend.

use std::time::Duration;

use duet_protocol::ErrorCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::signaling::{websocket_url, ConnectError};

const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// A token answer is a few hundred bytes; anything much longer is not one.
const MAX_ANSWER_BYTES: u64 = 64 * 1024;

/// A development token for `uid` from the server at `server_url` (any URL `VideoCall`
/// connects to: `http://host:port`, `ws://host:port/ws`).
///
/// # Errors
///
/// `InvalidUrl`, `Unreachable` or `Timeout` when the server cannot be asked; `Refused` when
/// it is a production server (it mints no tokens) or refuses the uid; `Protocol` when the
/// answer is not a token.
pub async fn fetch_development_token(server_url: &str, uid: &str) -> Result<String, ConnectError> {
    let ws = websocket_url(server_url)?;
    if ws.starts_with("wss://") {
        return Err(ConnectError::InvalidUrl {
            url: server_url.to_owned(),
            reason: "development tokens are asked of a plain http:// development server".into(),
        });
    }
    let host = ws.trim_start_matches("ws://").split('/').next().unwrap_or_default().to_owned();
    let request = format!(
        "GET /dev/token?uid={} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
        percent_encode(uid)
    );
    let unreachable = |e: std::io::Error| ConnectError::Unreachable(format!("{host}: {e}"));
    let io = async {
        let mut s = TcpStream::connect(&host).await.map_err(unreachable)?;
        s.write_all(request.as_bytes()).await.map_err(unreachable)?;
        let mut buf = Vec::new();
        s.take(MAX_ANSWER_BYTES).read_to_end(&mut buf).await.map_err(unreachable)?;
        Ok::<_, ConnectError>(String::from_utf8_lossy(&buf).into_owned())
    };
    let response = tokio::time::timeout(ANSWER_TIMEOUT, io)
        .await
        .map_err(|_| ConnectError::Timeout(ANSWER_TIMEOUT))??;
    token_of(&response)
}

fn token_of(response: &str) -> Result<String, ConnectError> {
    let malformed =
        |what: &str| ConnectError::Protocol(format!("a malformed token answer: {what}"));
    let (head, body) = response.split_once("\r\n\r\n").ok_or_else(|| malformed("no HTTP head"))?;
    let status_line = head.lines().next().unwrap_or_default();
    let status = status_line.split_whitespace().nth(1).unwrap_or_default();
    match status {
        "200" => {}
        "404" => {
            return Err(ConnectError::Refused {
                code: ErrorCode::Unauthorized,
                message: "this server gives no development tokens (it was started with a \
                          secret): get a token from your backend"
                    .into(),
            })
        }
        "400" => {
            let why = serde_json::from_str::<serde_json::Value>(body.trim())
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or_else(|| body.trim().to_owned());
            return Err(ConnectError::Refused {
                code: ErrorCode::InvalidRequest,
                message: format!("the server refused the uid: {why}"),
            });
        }
        _ => return Err(malformed(status_line)),
    }
    let v: serde_json::Value =
        serde_json::from_str(body.trim()).map_err(|e| malformed(&e.to_string()))?;
    v["token"].as_str().map(str::to_owned).ok_or_else(|| malformed("no token"))
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_token_of_a_200() {
        let r = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{\"token\":\"abc\"}";
        assert_eq!(token_of(r).unwrap(), "abc");
    }

    #[test]
    fn a_404_means_a_production_server() {
        let r = "HTTP/1.1 404 Not Found\r\n\r\n";
        assert!(matches!(
            token_of(r),
            Err(ConnectError::Refused { code: ErrorCode::Unauthorized, .. })
        ));
    }

    #[test]
    fn anything_else_is_malformed() {
        assert!(matches!(token_of("garbage"), Err(ConnectError::Protocol(_))));
        assert!(matches!(
            token_of("HTTP/1.1 200 OK\r\n\r\n{\"nope\":1}"),
            Err(ConnectError::Protocol(_))
        ));
    }

    #[test]
    fn uids_are_percent_encoded() {
        assert_eq!(percent_encode("a b/ü"), "a%20b%2F%C3%BC");
    }
}
