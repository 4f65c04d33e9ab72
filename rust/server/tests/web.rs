//! The web client is served by duet-server: the page at `/`, its module at `/duet.js`.

mod common;

use common::server;
use duet_server::ServerHandle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A GET over plain HTTP/1.1: the status, the `Content-Type`, and the body.
async fn get(server: &ServerHandle, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(server.local_addr()).await.expect("tcp connects");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("request written");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.expect("response read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a head and a body");
    let status = head.get(9..12).and_then(|s| s.parse().ok()).expect("status line");
    let content_type = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        .map(|(_, value)| value.trim().to_owned())
        .unwrap_or_default();
    (status, content_type, body.to_owned())
}

#[tokio::test]
async fn the_page_is_served_at_the_root() {
    let server = server().await;
    let (status, content_type, body) = get(&server, "/").await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(body.contains("<!doctype html>"), "{body}");
    assert!(body.contains("from './duet.js'"), "the page imports the module: {body}");
}

#[tokio::test]
async fn the_module_is_served_as_javascript() {
    let server = server().await;
    let (status, content_type, body) = get(&server, "/duet.js").await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/javascript"), "{content_type}");
    assert!(body.contains("export async function connect("), "exports connect");
    assert!(body.contains("type: 'hello'"), "speaks the protocol");
}

#[tokio::test]
async fn other_paths_are_not_found() {
    let server = server().await;
    assert_eq!(get(&server, "/index.html.bak").await.0, 404);
    assert_eq!(get(&server, "/web/duet.js").await.0, 404);
}
