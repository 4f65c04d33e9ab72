//! Where the engine's `tracing` output goes: the unified log on iOS (subsystem `dev.duet`),
//! logcat on Android (tag `Duet`), stderr elsewhere.

/// Starts logging at `level` (`"error"`, `"warn"`, `"info"`, `"debug"` or `"trace"`; on
/// desktop also a `RUST_LOG`-style filter such as `"duet_core=debug,info"`). Call it once,
/// early; later calls change nothing.
#[uniffi::export]
pub fn init_logging(level: String) {
    imp::init(&level);
}

#[cfg(target_os = "ios")]
mod imp {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    pub fn init(level: &str) {
        let level = level.parse().unwrap_or(tracing::Level::INFO);
        let _ = tracing_subscriber::registry()
            .with(tracing_subscriber::filter::LevelFilter::from_level(level))
            .with(tracing_oslog::OsLogger::new("dev.duet", "default"))
            .try_init();
    }
}

#[cfg(target_os = "android")]
mod imp {
    pub fn init(level: &str) {
        // No tracing subscriber is installed: tracing's `log` feature turns its events into
        // `log` records, which android_logger writes to logcat.
        let level = level.parse().unwrap_or(log::LevelFilter::Info);
        android_logger::init_once(
            android_logger::Config::default().with_tag("Duet").with_max_level(level),
        );
    }
}

#[cfg(not(any(target_os = "ios", target_os = "android")))]
mod imp {
    pub fn init(level: &str) {
        let filter = tracing_subscriber::EnvFilter::try_new(level)
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
    }
}
