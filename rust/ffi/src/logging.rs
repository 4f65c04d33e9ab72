//! Where the engine's `tracing` output goes: the unified log on iOS (subsystem `dev.duet`),
//! logcat on Android (tag `Duet`), stderr elsewhere.

/// Starts logging at `level` (`"error"`, `"warn"`, `"info"`, `"debug"` or `"trace"`; on
/// desktop also a `RUST_LOG`-style filter such as `"duet_core=debug,info"`). Call it once,
/// early; later calls change nothing. The mobile libraries are built without debug and trace
/// events (`release-max-level-info`; `DUET_DEBUG_LOGS=1` when building keeps them), so there
/// `"debug"` and `"trace"` log what `"info"` does.
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
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    pub(super) fn init(level: &str) {
        let _ = tracing_subscriber::registry()
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .with(filter(level))
            .try_init();
    }

    // `Targets` parses `target=level` lists by hand: the same strings as env-filter's simple
    // form, without the regex engine env-filter would link into the library.
    fn filter(level: &str) -> Targets {
        level.parse().unwrap_or_else(|_| Targets::new().with_default(LevelFilter::INFO))
    }

    #[cfg(test)]
    mod tests {
        use super::filter;
        use tracing::Level;

        #[test]
        fn levels_and_target_lists_parse_without_env_filter() {
            let list = filter("duet_core=debug,info");
            assert!(list.would_enable("duet_core::engine", &Level::DEBUG));
            assert!(!list.would_enable("webrtc::ice", &Level::DEBUG));
            assert!(list.would_enable("webrtc::ice", &Level::INFO));
            assert!(!filter("warn").would_enable("duet_core", &Level::INFO));
            // Not a level: the documented default, info.
            let fallback = filter("duet_core=loud");
            assert!(fallback.would_enable("duet_core", &Level::INFO));
            assert!(!fallback.would_enable("duet_core", &Level::DEBUG));
        }
    }
}
