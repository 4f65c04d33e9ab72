//! Accepting TCP connections: a deep listen backlog, the gate (per-IP and pending bounds),
//! and HTTP/1 served with hyper directly, so that a client has `http_header_timeout` to send
//! its request headers (axum::serve sets no such timeout: half-open requests held forever).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket};
use tokio_rustls::TlsAcceptor;

use crate::gate::Ticket;
use crate::refusals::{self, Limit};
use crate::shared::Shared;

/// The most a request's line and headers may take (hyper's default is about 400 KiB, per
/// connection not yet signed in); an upgrade request with cookies is a few KiB.
const MAX_REQUEST_HEAD_BYTES: usize = 32 * 1024;

/// How long to wait before accepting again after `accept` failed (out of file descriptors,
/// say): a retry at once would spin.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// Binds `addr` with a listen backlog of `backlog`. tokio's `bind` asks for 128, as std
/// does, and a mass reconnect after a restart overflows that: each dropped SYN costs its
/// client a 1 s retransmission.
///
/// # Errors
///
/// The socket's error: the address is in use, or not this host's.
pub(crate) fn bind(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Accepts connections until the task is aborted (which closes the listener: how a drain
/// stops accepting). With `tls`, each connection's TLS handshake comes first.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    shared: Arc<Shared>,
    tls: Option<TlsAcceptor>,
) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(shared.config.connections.http_header_timeout)
        .max_buf_size(MAX_REQUEST_HEAD_BYTES);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        // Refused connections are closed at once: the cheapest answer there is.
        let Some(ticket) = shared.gate.admit(peer.ip()) else { continue };
        // Signaling is small messages where latency is everything: without TCP_NODELAY a
        // message to a device that has not spoken lately waits out the peer's 40 ms delayed
        // ACK (Nagle), which cost every call setup about 40 ms.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY: {e}");
        }
        let accepted = Accepted { peer, ticket: Arc::new(ticket), app: app.clone() };
        let http = http.clone();
        match &tls {
            None => drop(tokio::spawn(accepted.serve(http, tcp))),
            Some(tls) => {
                let (tls, handshake_timeout) =
                    (tls.clone(), shared.config.connections.http_header_timeout);
                tokio::spawn(async move {
                    // The handshake's time counts against the header timeout's bound.
                    match tokio::time::timeout(handshake_timeout, tls.accept(tcp)).await {
                        Ok(Ok(stream)) => accepted.serve(http, stream).await,
                        Ok(Err(e)) => tracing::debug!("TLS handshake with {peer}: {e}"),
                        Err(_) => {
                            refusals::record(Limit::HttpHeaderTimeout, "tls_handshake", &peer.ip())
                        }
                    }
                });
            }
        }
    }
}

/// An admitted connection, about to be served HTTP.
struct Accepted {
    peer: SocketAddr,
    ticket: Arc<Ticket>,
    app: Router,
}

impl Accepted {
    async fn serve<S>(self, http: http1::Builder, io: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Accepted { peer, ticket, app } = self;
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            // The WebSocket handler takes the ticket along, so the places it holds last as
            // long as the connection, upgraded or not.
            request.extensions_mut().insert(Arc::clone(&ticket));
            tower_service::Service::call(&mut app.clone(), request)
        });
        let connection = http.serve_connection(TokioIo::new(io), service).with_upgrades();
        if let Err(e) = connection.await {
            if e.is_timeout() {
                refusals::record(Limit::HttpHeaderTimeout, "http_header_timeout", &peer.ip());
            } else {
                tracing::debug!("HTTP connection from {peer}: {e}");
            }
        }
    }
}
