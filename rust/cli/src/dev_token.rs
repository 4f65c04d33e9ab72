//! Asks a development server for a token (`GET /dev/token?uid=…`), so that trying a local
//! server needs no secret. A plain HTTP/1.1 request: this is the CLI's only HTTP call.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub async fn fetch(server_url: &str, uid: &str) -> Result<String, String> {
    let ws = duet_core::websocket_url(server_url).map_err(|e| e.to_string())?;
    let host = ws.trim_start_matches("ws://").split('/').next().unwrap_or_default().to_owned();
    let query: String = uid
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let request =
        format!("GET /dev/token?uid={query} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let io = async {
        let mut s =
            TcpStream::connect(&host).await.map_err(|e| format!("cannot reach {host}: {e}"))?;
        s.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(String::from_utf8_lossy(&buf).into_owned())
    };
    let response = tokio::time::timeout(Duration::from_secs(10), io)
        .await
        .map_err(|_| format!("{host} did not answer"))??;
    let (head, body) = response.split_once("\r\n\r\n").ok_or("a malformed HTTP answer")?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!(
            "the server gave no development token ({}); pass --token, or --secret for a server started with one",
            head.lines().next().unwrap_or_default()
        ));
    }
    let v: serde_json::Value =
        serde_json::from_str(body.trim()).map_err(|e| format!("a malformed token answer: {e}"))?;
    v["token"].as_str().map(str::to_owned).ok_or_else(|| "a token answer without a token".into())
}
