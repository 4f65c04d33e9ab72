//! `duet`: run a server, mint tokens, and place or answer calls from a shell.

mod bridge;
mod report;
mod session;
mod video_check;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};

use report::Reporter;

#[derive(Parser)]
#[command(
    name = "duet",
    version,
    about = "Duet: one-to-one video calls. Server, tokens, and calls from the command line."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run duet-server. Without --secret it is a development server: it mints tokens at
    /// GET /dev/token?uid=UID for anyone who can reach it.
    Serve {
        #[arg(long, default_value = "127.0.0.1:7480")]
        listen: SocketAddr,
        /// Seconds an unanswered call rings.
        #[arg(long, default_value_t = 30)]
        ring_timeout: u64,
        /// Seconds a dropped device keeps its calls.
        #[arg(long, default_value_t = 20)]
        grace: u64,
        /// The token secret shared with your backend (or set DUET_SECRET).
        #[arg(long, env = "DUET_SECRET", hide_env_values = true)]
        secret: Option<String>,
        #[command(flatten)]
        turn: TurnArgs,
    },
    /// Mint a token for UID, as an app's backend would.
    Token {
        #[arg(long)]
        uid: String,
        /// Defaults to the development secret of `duet serve` without --secret.
        #[arg(long, env = "DUET_SECRET", hide_env_values = true)]
        secret: Option<String>,
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
    /// Call a user, stay in the call, hang up.
    Call {
        #[command(flatten)]
        client: ClientArgs,
        /// The uid to call.
        #[arg(long)]
        to: String,
        /// Custom data for the callee.
        #[arg(long)]
        data: Option<String>,
        /// Use TURN relay candidates only.
        #[arg(long)]
        relay: bool,
        /// Seconds to stay in the call once it connects.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    /// Wait for one call, then accept it (the default), reject it, or let it ring.
    Answer {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long, conflicts_with = "ignore")]
        reject: bool,
        #[arg(long)]
        ignore: bool,
        /// Seconds to stay in the call once accepted, unless the caller hangs up first.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// A real call between two clients on an embedded server: alice calls bob, bob
    /// accepts, they talk, alice hangs up.
    Demo {
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        #[arg(long)]
        json: bool,
    },
}

/// Where peers find a relay. By default the server runs its own TURN server.
#[derive(Args, Clone)]
struct TurnArgs {
    /// UDP address of the embedded TURN server.
    #[arg(long, env = "DUET_TURN_LISTEN", default_value = "127.0.0.1:3478")]
    turn_listen: SocketAddr,
    /// The address peers are told to relay through; needed with a wildcard --turn-listen.
    #[arg(long, env = "DUET_TURN_PUBLIC_IP")]
    turn_public_ip: Option<std::net::IpAddr>,
    /// The TURN credential secret (random if not given); with --turn-url, coturn's
    /// static-auth-secret.
    #[arg(long, env = "DUET_TURN_SECRET", hide_env_values = true)]
    turn_secret: Option<String>,
    /// How long TURN credentials stay valid, in seconds.
    #[arg(long, default_value_t = 21_600)]
    turn_ttl: u64,
    /// Use an external coturn (use-auth-secret) at this URL instead of the embedded one;
    /// repeat for several URLs.
    #[arg(long, env = "DUET_TURN_URL", value_delimiter = ',')]
    turn_url: Vec<String>,
    /// Hand out no TURN server at all.
    #[arg(long, conflicts_with_all = ["turn_url", "turn_secret", "turn_public_ip"])]
    no_turn: bool,
}

impl TurnArgs {
    fn ice_config(self) -> Result<duet_server::IceConfig, String> {
        let ttl = Duration::from_secs(self.turn_ttl);
        if self.no_turn {
            return Ok(duet_server::IceConfig::None);
        }
        if !self.turn_url.is_empty() {
            let secret = self
                .turn_secret
                .ok_or("--turn-url needs --turn-secret (coturn's static-auth-secret)")?;
            return Ok(duet_server::IceConfig::External {
                urls: self.turn_url,
                secret,
                credential_ttl: ttl,
            });
        }
        Ok(duet_server::IceConfig::Embedded(duet_server::TurnConfig {
            listen: self.turn_listen,
            public_ip: self.turn_public_ip,
            secret: self.turn_secret,
            credential_ttl: ttl,
            ..Default::default()
        }))
    }
}

#[derive(Args, Clone)]
pub struct ClientArgs {
    /// The server, e.g. http://127.0.0.1:7480
    #[arg(long, default_value = "http://127.0.0.1:7480")]
    server: String,
    /// Who this client is.
    #[arg(long)]
    uid: String,
    /// A token for UID. Without it: minted from --secret, or else asked of a development
    /// server.
    #[arg(long)]
    token: Option<String>,
    #[arg(long, env = "DUET_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// Print one JSON object per event.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            // webrtc-rs warns about routine ICE and DTLS events; DUET_LOG=debug shows them.
            tracing_subscriber::EnvFilter::try_from_env("DUET_LOG").unwrap_or_else(|_| {
                "warn,rtc_ice=error,rtc_dtls=error,rtc=error,webrtc=error".into()
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("duet: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(run(cli.command))
}

async fn run(command: Command) -> ExitCode {
    let started = Instant::now();
    match command {
        Command::Serve { listen, ring_timeout, grace, secret, turn } => {
            let ice = match turn.ice_config() {
                Ok(ice) => ice,
                Err(e) => {
                    eprintln!("duet serve: {e}");
                    return ExitCode::from(2);
                }
            };
            serve(listen, ring_timeout, grace, secret, ice).await
        }
        Command::Token { uid, secret, ttl } => {
            if let Err(e) = duet_protocol::check_uid(&uid) {
                eprintln!("duet token: {e}");
                return ExitCode::from(2);
            }
            let secret = secret.unwrap_or_else(|| duet_server::token::DEV_SECRET.to_owned());
            println!("{}", duet_server::token::mint(&secret, &uid, Duration::from_secs(ttl)));
            ExitCode::SUCCESS
        }
        Command::Call { client, to, data, relay, seconds } => {
            let report = Reporter::new(client.json, started);
            session::call(&client, &report, &to, data, relay, Duration::from_secs(seconds)).await
        }
        Command::Answer { client, reject, ignore, seconds } => {
            let report = Reporter::new(client.json, started);
            let mode = if reject {
                session::AnswerMode::Reject
            } else if ignore {
                session::AnswerMode::Ignore
            } else {
                session::AnswerMode::Accept
            };
            session::answer(&client, &report, mode, Duration::from_secs(seconds)).await
        }
        Command::Demo { seconds, json } => {
            session::demo(&Reporter::new(json, started), Duration::from_secs(seconds)).await
        }
    }
}

async fn serve(
    listen: SocketAddr,
    ring_timeout: u64,
    grace: u64,
    secret: Option<String>,
    ice: duet_server::IceConfig,
) -> ExitCode {
    let config = duet_server::ServerConfig {
        listen,
        secret,
        ring_timeout: Duration::from_secs(ring_timeout),
        grace: Duration::from_secs(grace),
        ice,
        ..Default::default()
    };
    let server = match duet_server::start(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("duet serve: cannot listen on {listen}: {e}");
            return ExitCode::from(2);
        }
    };
    println!("duet-server listening on {}", server.http_url());
    if let Some(turn) = server.turn_addr() {
        println!("TURN relay on udp {turn}");
    }
    if server.is_dev_mode() {
        println!(
            "development mode: tokens at {}/dev/token?uid=UID (pass --secret for production)",
            server.http_url()
        );
        if !listen.ip().is_loopback() {
            eprintln!("warning: a development server on a non-loopback address lets anyone on the network act as any user");
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    server.shutdown().await;
    ExitCode::SUCCESS
}

impl ClientArgs {
    /// The token to connect with: given, minted, or asked of a development server.
    async fn token(&self) -> Result<String, String> {
        if let Some(t) = &self.token {
            return Ok(t.clone());
        }
        if let Some(secret) = &self.secret {
            return Ok(duet_server::token::mint(secret, &self.uid, Duration::from_secs(3600)));
        }
        duet_core::fetch_development_token(&self.server, &self.uid).await.map_err(|e| match e {
            duet_core::ConnectError::Refused { message, .. } => {
                format!("{message}; pass --token, or --secret for a server started with one")
            }
            e => e.to_string(),
        })
    }
}
