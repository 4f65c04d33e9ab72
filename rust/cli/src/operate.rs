//! Running `duet serve` as a service: its operator flags, its logs, and how it stops.
//! A SIGTERM (what systemd, Docker and Kubernetes send) or Ctrl-C drains the server: it
//! stops accepting, tells every client to reconnect elsewhere, and exits 0 once they have
//! gone or `--drain-timeout` has passed. A second signal stops it at once.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};

/// `duet serve`'s operator flags: configuration file, drain, logs, TLS, cluster.
#[derive(Args, Clone, Debug)]
pub(crate) struct OpsArgs {
    /// Read settings from this TOML file: each key is a flag's name without the dashes
    /// (ring_timeout = 30). Flags and environment variables win over the file.
    #[arg(long, env = "DUET_CONFIG")]
    pub config: Option<PathBuf>,
    /// Seconds a drain (on SIGTERM or Ctrl-C) waits for clients to reconnect elsewhere
    /// before the server exits.
    #[arg(long, env = "DUET_DRAIN_TIMEOUT", default_value_t = 10)]
    pub drain_timeout: u64,
    /// Log as text, or as JSON objects one a line (for a log collector).
    #[arg(long, env = "DUET_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Serve wss:// with this certificate chain (PEM, the server's certificate first).
    #[arg(long, env = "DUET_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "DUET_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Run as one node of a cluster on this Redis (or Valkey), e.g. redis://10.0.0.5:6379:
    /// nodes behind one load balancer share their calls (docs/deploy.md).
    #[arg(long, env = "DUET_REDIS")]
    pub redis: Option<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

impl OpsArgs {
    pub(crate) fn tls(&self) -> Option<duet_server::TlsConfig> {
        let (cert, key) = (self.tls_cert.clone()?, self.tls_key.clone()?);
        Some(duet_server::TlsConfig { cert, key })
    }
}

/// Logs go to stderr, filtered by `DUET_LOG` (default: warnings, and `duet serve`'s own
/// info lines about draining).
pub(crate) fn init_logging(format: LogFormat) {
    // webrtc-rs warns about routine ICE and DTLS events; DUET_LOG=debug shows them.
    let filter = tracing_subscriber::EnvFilter::try_from_env("DUET_LOG").unwrap_or_else(|_| {
        "warn,duet_server::server=info,rtc_ice=error,rtc_dtls=error,rtc=error,webrtc=error".into()
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        // Colour codes only for a terminal: in a log file or a CI page they are noise.
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

/// Serves until a signal, then drains within `drain_timeout`.
pub(crate) async fn serve_until_signalled(
    server: duet_server::ServerHandle,
    drain_timeout: Duration,
) -> ExitCode {
    let mut signals = Signals::new();
    let which = signals.next().await;
    println!(
        "{which}: draining (up to {} s; a second signal stops at once)",
        drain_timeout.as_secs()
    );
    tokio::select! {
        report = server.drain(drain_timeout) => {
            if report.left_behind == 0 {
                println!("drained in {} ms", report.elapsed.as_millis());
            } else {
                println!("drain timed out: {} connections dropped", report.left_behind);
            }
        }
        which = signals.next() => println!("{which} again: stopped without waiting"),
    }
    ExitCode::SUCCESS
}

/// SIGTERM and SIGINT (Ctrl-C); only Ctrl-C where there is no SIGTERM.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let term = signal(SignalKind::terminate())
                .map_err(|e| tracing::warn!("SIGTERM cannot be caught ({e}): only Ctrl-C drains"))
                .ok();
            Signals { term }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// The next signal's name.
    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        if let Some(term) = self.term.as_mut() {
            return tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            };
        }
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}
