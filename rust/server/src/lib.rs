//! duet-server: the Duet signaling server.
//!
//! It authenticates devices with tokens (`token`), keeps every call's state
//! (`switchboard`, a sans-I/O state machine), and relays signaling between the two parties'
//! devices over one WebSocket per device (`connection`), through one task that owns the
//! switchboard (`hub`). What any one address, connection or uid may cost is bounded
//! (`listener`, `gate`, `outbox`; docs/security.md lists every bound). An operator watches
//! it through `/metrics` (`metrics`), `/healthz` and `/readyz` (`health`), restarts it
//! without dropping calls (`drain`), and may have it serve `wss://` itself (`tls`).
//! `docs/protocol.md` is the contract.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let server = duet_server::start(duet_server::ServerConfig::default()).await?;
//! println!("clients connect to {}", server.ws_url());
//! # Ok(()) }
//! ```

mod client_addr;
mod cluster;
pub mod config;
mod connection;
mod drain;
mod embedded_turn;
mod gate;
mod health;
mod http;
mod hub;
mod listener;
mod metrics;
mod outbox;
pub mod push;
mod rate_limit;
mod refusals;
mod server;
mod shared;
mod switchboard;
mod tls;
pub mod token;
pub mod turn_credentials;
mod turn_replay;

pub use config::{ConnectionLimits, IceConfig, ServerConfig, TlsConfig, TurnConfig};
pub use drain::DrainReport;
pub use http::{DEV_TOKEN_MAX_TTL_SECS, DEV_TOKEN_TTL_SECS};
pub use push::{ApnsConfig, FcmConfig, PushConfig};
pub use server::{start, ServerHandle};
