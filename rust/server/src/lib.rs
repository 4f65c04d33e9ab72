//! duet-server: the Duet signaling server.
//!
//! It authenticates devices with tokens (`token`), keeps every call's state
//! (`switchboard`, a sans-I/O state machine), and relays signaling between the two parties'
//! devices over one WebSocket per device (`connection`). `docs/protocol.md` is the contract.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let server = duet_server::start(duet_server::ServerConfig::default()).await?;
//! println!("clients connect to {}", server.ws_url());
//! # Ok(()) }
//! ```

pub mod config;
mod connection;
mod embedded_turn;
mod http;
mod hub;
pub mod rate_limit;
mod server;
pub mod switchboard;
pub mod token;
pub mod turn_credentials;

pub use config::{IceConfig, ServerConfig, TurnConfig};
pub use http::{DEV_TOKEN_MAX_TTL_SECS, DEV_TOKEN_TTL_SECS};
pub use server::{start, ServerHandle};
