//! The embedded TURN server (the `turn` crate, over one UDP socket) and the per-connection
//! ICE server list handed out in `welcome`.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Weak};
use std::time::Duration;

use duet_protocol::IceServer;
use tokio::net::UdpSocket;
use turn::auth::{generate_auth_key, AuthHandler};
use turn::relay::relay_static::RelayAddressGeneratorStatic;
use turn::server::config::{ConnConfig, ServerConfig as TurnServerConfig};
use turn::server::Server;
use webrtc_util::vnet::net::Net;

use crate::config::{IceConfig, TurnConfig};
use crate::token::unix_now;
use crate::turn_credentials;
use crate::turn_replay::ReplayingSocket;

/// How long `stop` waits for the TURN tasks to let go of the UDP socket.
const RELEASE_WAIT: Duration = Duration::from_secs(2);

/// How long a count of the allocations may take before `/metrics` goes without it.
const CENSUS_WAIT: Duration = Duration::from_millis(500);

/// What `welcome` needs to list a TURN server: its URLs and the secret to mint with.
#[derive(Debug, Clone)]
pub(crate) struct TurnOffer {
    pub urls: Vec<String>,
    pub secret: String,
    pub ttl: Duration,
    /// Counts the embedded server's allocations; `None` for an external TURN server.
    pub census: Option<TurnCensus>,
}

/// Counts the embedded server's relay allocations without keeping the server alive.
#[derive(Clone)]
pub(crate) struct TurnCensus(Weak<Server>);

impl std::fmt::Debug for TurnCensus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TurnCensus")
    }
}

impl TurnCensus {
    /// How many allocations the server holds now; `None` once it is stopped or if it does
    /// not answer within `CENSUS_WAIT`.
    pub(crate) async fn allocations(&self) -> Option<usize> {
        let server = self.0.upgrade()?;
        let infos = tokio::time::timeout(CENSUS_WAIT, server.get_allocations_info(None)).await;
        infos.ok()?.ok().map(|all| all.len())
    }
}

impl TurnOffer {
    /// The `ice_servers` of a `welcome` for `uid`: the TURN entry with fresh credentials
    /// (when there is a TURN server), then the static list.
    pub(crate) fn ice_servers(
        offer: Option<&TurnOffer>,
        uid: &str,
        rest: &[IceServer],
    ) -> Vec<IceServer> {
        let mut servers = Vec::with_capacity(rest.len() + 1);
        if let Some(offer) = offer {
            let (username, credential) =
                turn_credentials::mint(&offer.secret, uid, offer.ttl, unix_now());
            servers.push(IceServer {
                urls: offer.urls.clone(),
                username: Some(username),
                credential: Some(credential),
            });
        }
        servers.extend_from_slice(rest);
        servers
    }
}

/// A running embedded TURN server.
pub(crate) struct EmbeddedTurn {
    pub addr: SocketAddr,
    pub offer: TurnOffer,
    /// The only strong reference: dropping it stops the server.
    server: Option<Arc<Server>>,
    socket: Weak<UdpSocket>,
}

/// Sets up what `ice` (already validated) asks for: starts the embedded server if it is one.
/// Returns the TURN offer for `welcome` and the running server.
pub(crate) async fn start(
    ice: &IceConfig,
) -> io::Result<(Option<TurnOffer>, Option<EmbeddedTurn>)> {
    match ice {
        IceConfig::None => Ok((None, None)),
        IceConfig::External { urls, secret, credential_ttl } => {
            let offer = TurnOffer {
                urls: urls.clone(),
                secret: secret.clone(),
                ttl: *credential_ttl,
                census: None,
            };
            Ok((Some(offer), None))
        }
        IceConfig::Embedded(config) => {
            let turn = EmbeddedTurn::start(config).await?;
            Ok((Some(turn.offer.clone()), Some(turn)))
        }
    }
}

impl EmbeddedTurn {
    async fn start(config: &TurnConfig) -> io::Result<EmbeddedTurn> {
        let public_ip = config.relay_ip()?;
        let secret = config.secret.clone().unwrap_or_else(random_secret);
        let socket = Arc::new(UdpSocket::bind(config.listen).await?);
        let addr = socket.local_addr()?;
        let weak = Arc::downgrade(&socket);
        let server = Server::new(TurnServerConfig {
            conn_configs: vec![ConnConfig {
                conn: Arc::new(ReplayingSocket::new(socket)),
                relay_addr_generator: Box::new(RelayAddressGeneratorStatic {
                    relay_address: public_ip,
                    address: host_literal(config.listen.ip()),
                    net: Arc::new(Net::new(None)),
                }),
            }],
            realm: config.realm.clone(),
            auth_handler: Arc::new(RestAuthHandler { secret: secret.clone() }),
            // The crate's default (10 minutes).
            channel_bind_timeout: Duration::ZERO,
            alloc_close_notify: None,
        })
        .await
        .map_err(|e| io::Error::other(format!("the TURN server does not start: {e}")))?;
        let server = Arc::new(server);
        let public = SocketAddr::new(public_ip, addr.port());
        tracing::info!("TURN server on udp {addr}, relays on {public_ip}");
        Ok(EmbeddedTurn {
            addr,
            offer: TurnOffer {
                urls: vec![format!("stun:{public}"), format!("turn:{public}?transport=udp")],
                secret,
                ttl: config.credential_ttl,
                census: Some(TurnCensus(Arc::downgrade(&server))),
            },
            server: Some(server),
            socket: weak,
        })
    }

    /// Stops the server without waiting: its tasks wind down on their own.
    pub(crate) fn stop_now(&mut self) {
        // Dropping the server closes its command channel, which ends its tasks.
        self.server = None;
    }

    /// Stops the server, returning once its UDP port is free (or after `RELEASE_WAIT`).
    pub(crate) async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            if let Err(e) = server.close().await {
                tracing::warn!("closing the TURN server: {e}");
            }
        }
        let deadline = tokio::time::Instant::now() + RELEASE_WAIT;
        while self.socket.strong_count() > 0 {
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!("the TURN server's socket is still in use after {RELEASE_WAIT:?}");
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// Accepts exactly the credentials `turn_credentials::mint` makes with `secret`, until they
/// expire. (The crate's `LongTermAuthHandler` wants the whole username to be the expiry, which
/// coturn's `expiry:uid` is not.)
struct RestAuthHandler {
    secret: String,
}

impl AuthHandler for RestAuthHandler {
    fn auth_handle(
        &self,
        username: &str,
        realm: &str,
        src_addr: SocketAddr,
    ) -> Result<Vec<u8>, turn::Error> {
        match turn_credentials::password_for(&self.secret, username, unix_now()) {
            Ok(password) => Ok(generate_auth_key(username, realm, &password)),
            Err(e) => {
                tracing::debug!(%src_addr, username, "TURN credentials refused: {e}");
                Err(turn::Error::Other(e.to_string()))
            }
        }
    }
}

/// 244 random bits (two v4 UUIDs), hex.
fn random_secret() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

/// An IP as the host part of `host:port` (bracketed if IPv6).
fn host_literal(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    }
}
