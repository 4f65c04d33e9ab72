//! How a server is set up. Every timer is here so tests can shrink them to milliseconds.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use duet_protocol::{IceServer, Limits};
/// The type of `ConnectionLimits::trusted_proxies`.
pub use ipnet::IpNet;

pub const DEFAULT_PORT: u16 = 7480;
/// The standard STUN/TURN port, for deployments of the embedded TURN server. Not the
/// default of `TurnConfig::listen`, so that any number of servers (tests, `duet demo`) can
/// run side by side; `duet serve` should ask for it.
pub const DEFAULT_TURN_PORT: u16 = 3478;
/// How long minted TURN credentials are valid by default.
pub const DEFAULT_TURN_CREDENTIAL_TTL: Duration = Duration::from_secs(6 * 3600);

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
    /// Handed to clients in `welcome` for their peer connections, after the TURN entry that
    /// `ice` adds (if any).
    pub ice_servers: Vec<IceServer>,
    /// Where clients get TURN (and STUN) from. Credentials are minted per connection.
    pub ice: IceConfig,
    /// What one connection, one uid and one IP may cost the server.
    pub connections: ConnectionLimits,
    /// Push registrations (kept under `push.data_dir`) and the push services (off unless
    /// configured).
    pub push: crate::push::PushConfig,
    /// Serve `wss://` (and `https://`) from this certificate and key; `None` serves plain
    /// `ws://`, for a TLS proxy in front or a trusted network.
    pub tls: Option<TlsConfig>,
    /// Run as a node of a cluster on the Redis (or Valkey) at this URL
    /// (`redis://HOST:PORT`); `None` runs the single process (docs/deploy.md).
    pub redis: Option<String>,
}

/// A certificate chain and its private key, in PEM files (as certbot writes them:
/// `fullchain.pem` and `privkey.pem`). Read once, at start.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// The server's certificate first, then any intermediates.
    pub cert: PathBuf,
    /// The private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
    pub key: PathBuf,
}

/// The server's own bounds, beside the per-message `Limits` it announces in `welcome`.
/// docs/security.md lists each with its default; each refusal is logged at `warn` with a
/// `limit` field naming it.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Bytes of messages waiting to be written to one connection. A connection that falls
    /// further behind (it does not read) gets `error` `too_slow` and is closed. Default 256 KiB.
    pub outbound_queue_bytes: usize,
    /// Devices one uid may have connected (or within their grace period) at once; one more
    /// is refused `too_many_devices`. Default 10.
    pub max_devices_per_uid: usize,
    /// How long a connection may take to send its HTTP request headers (the WebSocket
    /// upgrade, or any other request; also the wait between requests on a kept-alive
    /// connection). Default 5 s.
    pub http_header_timeout: Duration,
    /// Connections that have not signed in (`welcome`) yet: over this many, new ones are
    /// closed as soon as they are accepted. Default 1024.
    pub max_pending: usize,
    /// Open connections from one IP address, signed in or not. Default 256.
    pub max_per_ip: usize,
    /// The TCP listen backlog, which must absorb a mass reconnect after a restart.
    /// Default 4096 (the kernel caps it at net.core.somaxconn).
    pub listen_backlog: u32,
    /// Proxies in front of the server (addresses or networks) whose `X-Forwarded-For` is
    /// believed: their WebSocket connections count toward `max_per_ip` under the client
    /// address they name, not their own. Default none: the header is never read.
    pub trusted_proxies: Vec<IpNet>,
}

/// A trusted proxy as an operator writes it: an address (`10.0.0.5`, `::1`) or a network
/// (`10.0.0.0/8`).
///
/// # Errors
///
/// Neither: the message says what was expected.
pub fn parse_trusted_proxy(text: &str) -> Result<IpNet, String> {
    text.parse::<IpNet>().or_else(|_| text.parse::<IpAddr>().map(IpNet::from)).map_err(|_| {
        format!("{text:?} is not an IP address or network (ADDRESS or ADDRESS/PREFIX)")
    })
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            outbound_queue_bytes: 256 * 1024,
            max_devices_per_uid: 10,
            http_header_timeout: Duration::from_secs(5),
            max_pending: 1024,
            max_per_ip: 256,
            listen_backlog: 4096,
            trusted_proxies: Vec::new(),
        }
    }
}

/// Which TURN server clients are sent to, with credentials minted for them in coturn's
/// REST format (`turn_credentials`).
#[derive(Debug, Clone)]
pub enum IceConfig {
    /// No TURN: `welcome` lists only `ServerConfig::ice_servers`.
    None,
    /// The embedded TURN server (the default).
    Embedded(TurnConfig),
    /// An external coturn run with `use-auth-secret` and `static-auth-secret=SECRET`.
    External {
        /// Handed out as they are, e.g. `"turn:turn.example.com:3478?transport=udp"`,
        /// `"turns:turn.example.com:5349?transport=tcp"`.
        urls: Vec<String>,
        /// coturn's `static-auth-secret`.
        secret: String,
        /// How long minted credentials are valid.
        credential_ttl: Duration,
    },
}

impl Default for IceConfig {
    fn default() -> Self {
        IceConfig::Embedded(TurnConfig::default())
    }
}

/// The embedded TURN server: one UDP socket for STUN and TURN, relays on ephemeral ports.
#[derive(Debug, Clone)]
pub struct TurnConfig {
    /// The UDP address to listen on; port 0 picks a free one (see `ServerHandle::turn_addr`).
    /// Relay sockets are bound on the same IP, on ephemeral ports.
    /// Default `127.0.0.1:0`; deployments want `0.0.0.0:3478` (`DEFAULT_TURN_PORT`).
    pub listen: SocketAddr,
    /// The address peers reach this host at: given out in the `turn:`/`stun:` URLs and as
    /// the relayed address of every allocation. Default: `listen`'s IP, which then must not
    /// be a wildcard (`0.0.0.0`/`::`); `start` fails otherwise.
    pub public_ip: Option<IpAddr>,
    /// The TURN realm. Default `"duet"`.
    pub realm: String,
    /// The credential secret. `None` picks a random one at every start (credentials do not
    /// survive a restart then, which only matters to allocations older than the restart,
    /// and those die with the server anyway).
    pub secret: Option<String>,
    /// How long minted credentials are valid. Default 6 hours.
    pub credential_ttl: Duration,
}

impl Default for TurnConfig {
    fn default() -> Self {
        TurnConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            public_ip: None,
            realm: "duet".to_owned(),
            secret: None,
            credential_ttl: DEFAULT_TURN_CREDENTIAL_TTL,
        }
    }
}

impl TurnConfig {
    /// The IP given to peers: `public_ip`, else `listen`'s IP; an error if that is a wildcard
    /// or a different address family from `listen`'s.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when no usable public IP follows from the settings.
    pub fn relay_ip(&self) -> io::Result<IpAddr> {
        let ip = self.public_ip.unwrap_or(self.listen.ip());
        if ip.is_unspecified() {
            return Err(invalid(format!(
                "the TURN server listens on {}: its public IP must be given",
                self.listen
            )));
        }
        if ip.is_ipv4() != self.listen.is_ipv4() {
            return Err(invalid(format!(
                "the TURN public IP {ip} is not of the same family as its listen address {}",
                self.listen
            )));
        }
        Ok(ip)
    }
}

impl IceConfig {
    /// Refuses settings that could only produce unusable credentials.
    ///
    /// # Errors
    ///
    /// `InvalidInput` naming the setting at fault.
    pub fn validate(&self) -> io::Result<()> {
        match self {
            IceConfig::None => Ok(()),
            IceConfig::Embedded(turn) => {
                turn.relay_ip()?;
                if turn.secret.as_deref() == Some("") {
                    return Err(invalid("the TURN secret is empty".into()));
                }
                check_ttl(turn.credential_ttl)
            }
            IceConfig::External { urls, secret, credential_ttl } => {
                if urls.is_empty() {
                    return Err(invalid("the external TURN server has no urls".into()));
                }
                if secret.is_empty() {
                    return Err(invalid("the external TURN secret is empty".into()));
                }
                check_ttl(*credential_ttl)
            }
        }
    }
}

fn check_ttl(ttl: Duration) -> io::Result<()> {
    if ttl < Duration::from_secs(1) {
        return Err(invalid("TURN credentials must live at least a second".into()));
    }
    Ok(())
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
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
            ice: IceConfig::default(),
            connections: ConnectionLimits::default(),
            push: crate::push::PushConfig::default(),
            tls: None,
            redis: None,
        }
    }
}

impl ServerConfig {
    /// The largest message (and frame) the WebSocket layer reads at all: twice
    /// `max_message_bytes`. Messages between the two get a polite `message_too_large`, larger
    /// ones close the socket (1009) once the frame header shows the size, before they are
    /// buffered; so one connection never makes the server hold more than this.
    pub fn hard_frame_limit(&self) -> usize {
        self.limits.max_message_bytes.saturating_mul(2)
    }
}
