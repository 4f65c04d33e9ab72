//! `duet`: run a server, mint tokens, and place or answer calls from a shell.

mod bridge;
mod codec_clock;
mod config_file;
mod operate;
mod push_args;
mod report;
mod session;
mod video_check;

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use operate::{LogFormat, OpsArgs};
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
// Parsed once and matched at once: the size of `Serve`'s flags costs nothing.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Run duet-server. Without --secret it is a development server: it mints tokens at
    /// GET /dev/token?uid=UID for anyone who can reach it.
    Serve {
        #[arg(long, env = "DUET_LISTEN", default_value = "127.0.0.1:7480")]
        listen: SocketAddr,
        /// Seconds an unanswered call rings.
        #[arg(long, env = "DUET_RING_TIMEOUT", default_value_t = 30)]
        ring_timeout: u64,
        /// Seconds a dropped device keeps its calls.
        #[arg(long, env = "DUET_GRACE", default_value_t = 20)]
        grace: u64,
        /// The token secret shared with your backend (or set DUET_SECRET).
        #[arg(long, env = "DUET_SECRET", hide_env_values = true)]
        secret: Option<String>,
        #[command(flatten)]
        turn: TurnArgs,
        #[command(flatten)]
        bounds: BoundArgs,
        #[command(flatten)]
        push: push_args::PushArgs,
        #[command(flatten)]
        ops: OpsArgs,
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
        /// Milliseconds to let the call ring before accepting it (a pre-connecting call
        /// does ICE and DTLS meanwhile).
        #[arg(long, default_value_t = 0)]
        answer_after_ms: u64,
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
        /// The synthetic camera's picture size, WIDTHxHEIGHT (both sides send it).
        #[arg(long, default_value = "320x240", value_parser = parse_size)]
        size: (u32, u32),
        /// The synthetic camera's frame rate.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=60))]
        fps: u32,
        /// Milliseconds bob lets the call ring before accepting it; the summary then gives
        /// the time from his accept to the first frame on each side.
        #[arg(long, default_value_t = 0)]
        answer_after_ms: u64,
        /// Bob does not pre-connect while the call rings.
        #[arg(long)]
        no_pre_connect: bool,
    },
}

/// Where peers find a relay. By default the server runs its own TURN server.
/// What one connection, uid or address may cost the server (docs/security.md).
#[derive(Args, Clone)]
struct BoundArgs {
    /// Bytes waiting to be written to one connection before it is closed `too_slow`.
    #[arg(long, env = "DUET_OUTBOUND_QUEUE_BYTES", default_value_t = 256 * 1024)]
    outbound_queue_bytes: usize,
    /// Devices one uid may have connected at once.
    #[arg(long, env = "DUET_MAX_DEVICES_PER_UID", default_value_t = 10)]
    max_devices_per_uid: usize,
    /// Milliseconds a connection has to send its HTTP request headers.
    #[arg(long, env = "DUET_HTTP_HEADER_TIMEOUT_MS", default_value_t = 5000)]
    http_header_timeout_ms: u64,
    /// Connections that have not signed in yet, at most.
    #[arg(long, env = "DUET_MAX_PENDING", default_value_t = 1024)]
    max_pending: usize,
    /// Open connections from one IP address (one /64 for IPv6), at most.
    #[arg(long, env = "DUET_MAX_PER_IP", default_value_t = 256)]
    max_per_ip: usize,
    /// The TCP listen backlog (capped by the kernel's net.core.somaxconn).
    #[arg(long, env = "DUET_LISTEN_BACKLOG", default_value_t = 4096)]
    listen_backlog: u32,
    /// A proxy in front (an address, or a network such as 10.0.0.0/8) whose X-Forwarded-For
    /// names the client for --max-per-ip; repeat, or separate with commas.
    #[arg(long, env = "DUET_TRUSTED_PROXY", value_delimiter = ',',
          value_parser = duet_server::config::parse_trusted_proxy)]
    trusted_proxy: Vec<duet_server::config::IpNet>,
}

impl BoundArgs {
    fn limits(self) -> duet_server::ConnectionLimits {
        duet_server::ConnectionLimits {
            outbound_queue_bytes: self.outbound_queue_bytes,
            max_devices_per_uid: self.max_devices_per_uid,
            http_header_timeout: Duration::from_millis(self.http_header_timeout_ms),
            max_pending: self.max_pending,
            max_per_ip: self.max_per_ip,
            listen_backlog: self.listen_backlog,
            trusted_proxies: self.trusted_proxy,
        }
    }
}

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
    #[arg(long, env = "DUET_TURN_TTL", default_value_t = 21_600)]
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
    /// Trust the CA certificates in this PEM file for https:// and wss://, beside the
    /// built-in roots (a private CA, a test's).
    #[arg(long, env = "DUET_TLS_ROOT")]
    tls_root: Option<PathBuf>,
    /// Do not pre-connect while a call for this client rings (ICE and DTLS wait for the
    /// accept, and the caller learns nothing of this device until then).
    #[arg(long)]
    no_pre_connect: bool,
}

fn main() -> ExitCode {
    let cli = parse();
    let log_format = match &cli.command {
        Command::Serve { ops, .. } => ops.log_format,
        _ => LogFormat::Text,
    };
    operate::init_logging(log_format);
    // The server takes a worker per core; the client commands run as an app's client does
    // (so that `duet demo` measures what the library costs).
    let built = match &cli.command {
        Command::Serve { .. } => tokio::runtime::Builder::new_multi_thread().enable_all().build(),
        _ => duet_core::runtime::client_runtime("duet-client").build(),
    };
    let runtime = match built {
        Ok(r) => r,
        Err(e) => {
            eprintln!("duet: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(run(cli.command))
}

/// The command line, with `duet serve --config FILE`'s settings added where neither a flag
/// nor an environment variable gives them. Exits on `--help` and on errors, as clap does.
fn parse() -> Cli {
    let args: Vec<OsString> = std::env::args_os().collect();
    let matches = Cli::command().get_matches_from(args.clone());
    let config = match matches.subcommand() {
        Some(("serve", serve)) => serve.get_one::<PathBuf>("config").map(|p| (p.clone(), serve)),
        _ => None,
    };
    let Some((path, given)) = config else {
        return Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    };
    let command = Cli::command();
    let Some(serve) = command.find_subcommand("serve") else {
        return Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    };
    match config_file::apply(&path, serve, given, args) {
        Ok(args) => Cli::try_parse_from(args).unwrap_or_else(|e| {
            eprintln!("duet serve: with the settings of {}:", path.display());
            e.exit()
        }),
        Err(e) => {
            eprintln!("duet serve: {e}");
            std::process::exit(2)
        }
    }
}

async fn run(command: Command) -> ExitCode {
    let started = Instant::now();
    match command {
        Command::Serve { listen, ring_timeout, grace, secret, turn, bounds, push, ops } => {
            let settings = turn.ice_config().and_then(|ice| Ok((ice, push.config()?)));
            let (ice, push) = match settings {
                Ok(settings) => settings,
                Err(e) => {
                    eprintln!("duet serve: {e}");
                    return ExitCode::from(2);
                }
            };
            let config = duet_server::ServerConfig {
                listen,
                secret,
                ring_timeout: Duration::from_secs(ring_timeout),
                grace: Duration::from_secs(grace),
                ice,
                connections: bounds.limits(),
                push,
                tls: ops.tls(),
                redis: ops.redis.clone(),
                ..Default::default()
            };
            serve(config, Duration::from_secs(ops.drain_timeout)).await
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
        Command::Answer { client, reject, ignore, answer_after_ms, seconds } => {
            let report = Reporter::new(client.json, started);
            let mode = if reject {
                session::AnswerMode::Reject
            } else if ignore {
                session::AnswerMode::Ignore
            } else {
                session::AnswerMode::Accept { after: Duration::from_millis(answer_after_ms) }
            };
            session::answer(&client, &report, mode, Duration::from_secs(seconds)).await
        }
        Command::Demo {
            seconds,
            json,
            size: (width, height),
            fps,
            answer_after_ms,
            no_pre_connect,
        } => {
            let demo = session::Demo {
                stay: Duration::from_secs(seconds),
                camera: session::camera_of(width, height, fps),
                answer_after: Duration::from_millis(answer_after_ms),
                pre_connect: !no_pre_connect,
            };
            session::demo(&Reporter::new(json, started), demo).await
        }
    }
}

/// `WIDTHxHEIGHT`, each side even (4:2:0 chroma) and from 16 to 1920: what OpenH264 and the
/// synthetic camera handle.
fn parse_size(text: &str) -> Result<(u32, u32), String> {
    let bad = || format!("{text:?} is not WIDTHxHEIGHT (e.g. 1280x720)");
    let (w, h) = text.split_once(['x', 'X']).ok_or_else(bad)?;
    let (w, h): (u32, u32) = (w.parse().map_err(|_| bad())?, h.parse().map_err(|_| bad())?);
    for side in [w, h] {
        if !(16..=1920).contains(&side) || side % 2 != 0 {
            return Err(format!("{side} is not an even size from 16 to 1920"));
        }
    }
    Ok((w, h))
}

async fn serve(config: duet_server::ServerConfig, drain_timeout: Duration) -> ExitCode {
    let listen = config.listen;
    let pushes = match (&config.push.apns, &config.push.fcm) {
        (Some(_), Some(_)) => "APNs and FCM",
        (Some(_), None) => "APNs",
        (None, Some(_)) => "FCM",
        (None, None) => "off",
    };
    let pushes = match &config.push.data_dir {
        Some(dir) => format!("pushes: {pushes}; push registrations kept in {}", dir.display()),
        None => format!("pushes: {pushes}"),
    };
    let settings = format!(
        "settings: ring timeout {} s, grace {} s, drain timeout {} s, max devices per uid {}, tls {}",
        config.ring_timeout.as_secs(),
        config.grace.as_secs(),
        drain_timeout.as_secs(),
        config.connections.max_devices_per_uid,
        if config.tls.is_some() { "on" } else { "off" },
    );
    let server = match duet_server::start(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("duet serve: cannot start on {listen}: {e}");
            return ExitCode::from(2);
        }
    };
    println!("duet-server listening on {}", server.http_url());
    println!("{settings}");
    if let Some(turn) = server.turn_addr() {
        println!("TURN relay on udp {turn}");
    }
    println!("{pushes}");
    if server.is_dev_mode() {
        println!(
            "development mode: tokens at {}/dev/token?uid=UID (pass --secret for production)",
            server.http_url()
        );
        if !listen.ip().is_loopback() {
            eprintln!("warning: a development server on a non-loopback address lets anyone on the network act as any user");
        }
    }
    operate::serve_until_signalled(server, drain_timeout).await
}

/// The certificates in the PEM file `path` (given as `flag`), as DER; at least one.
pub(crate) fn pem_certificates(path: &std::path::Path, flag: &str) -> Result<Vec<Vec<u8>>, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let unreadable = |e: rustls_pki_types::pem::Error| format!("{flag} {}: {e}", path.display());
    let roots = CertificateDer::pem_file_iter(path)
        .map_err(unreadable)?
        .map(|c| c.map(|c| c.to_vec()).map_err(unreadable))
        .collect::<Result<Vec<_>, _>>()?;
    if roots.is_empty() {
        return Err(format!("{flag} {}: no certificate in it", path.display()));
    }
    Ok(roots)
}

impl ClientArgs {
    /// The certificates of `--tls-root`, as DER; none without it.
    fn tls_roots(&self) -> Result<Vec<Vec<u8>>, String> {
        match &self.tls_root {
            Some(path) => pem_certificates(path, "--tls-root"),
            None => Ok(Vec::new()),
        }
    }

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
