//! How a server is set up. Every timer is here so tests can shrink them to milliseconds.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use duet_protocol::{IceServer, Limits};

pub const DEFAULT_PORT: u16 = 7480;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen; port 0 picks a free one (see `ServerHandle::local_addr`).
    pub listen: SocketAddr,
    /// The token secret shared with the app's backend. `None` runs in development mode: the
    /// well-known `token::DEV_SECRET`, and `GET /dev/token` mints tokens for anyone.
    pub secret: Option<String>,
    /// How long an unanswered call rings before the server ends it.
    pub ring_timeout: Duration,
    /// How long a dropped device's calls are kept for it to come back.
    pub grace: Duration,
    /// How often clients should ping; a connection silent for three times this is closed.
    pub keepalive: Duration,
    /// How long a new connection has to say `hello`.
    pub hello_timeout: Duration,
    pub limits: Limits,
    /// Handed to clients in `welcome` for their peer connections.
    pub ice_servers: Vec<IceServer>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PORT)),
            secret: None,
            ring_timeout: Duration::from_secs(30),
            grace: Duration::from_secs(20),
            keepalive: Duration::from_secs(15),
            hello_timeout: Duration::from_secs(5),
            limits: Limits::default(),
            ice_servers: Vec::new(),
        }
    }
}

impl ServerConfig {
    /// The largest frame the WebSocket layer reads at all: frames between
    /// `max_message_bytes` and this get a polite `message_too_large`, larger ones close the
    /// socket (1009) before they are buffered.
    pub fn hard_frame_limit(&self) -> usize {
        self.limits.max_message_bytes.saturating_mul(16)
    }
}
