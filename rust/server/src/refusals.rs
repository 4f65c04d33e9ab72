//! The metric-friendly log line of every limit the server enforces: `limit` names it,
//! `max` is its setting, `total` counts refusals of that kind since the process started.
//! A flood is logged at the 1st, 2nd, 4th, 8th… refusal, so it cannot fill the disk.

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Clone, Copy)]
pub(crate) enum Limit {
    /// A connection did not read what it was sent (`ConnectionLimits::outbound_queue_bytes`).
    OutboundQueue,
    /// `ConnectionLimits::max_devices_per_uid`.
    DevicesPerUid,
    /// `ConnectionLimits::max_per_ip`.
    PerIp,
    /// `ConnectionLimits::max_pending`.
    Pending,
    /// `ConnectionLimits::http_header_timeout`.
    HttpHeaderTimeout,
    /// `ServerConfig::hello_timeout`.
    HelloTimeout,
}

const LIMITS: [Limit; 6] = [
    Limit::OutboundQueue,
    Limit::DevicesPerUid,
    Limit::PerIp,
    Limit::Pending,
    Limit::HttpHeaderTimeout,
    Limit::HelloTimeout,
];

static TOTALS: [AtomicU64; LIMITS.len()] = [const { AtomicU64::new(0) }; LIMITS.len()];

impl Limit {
    fn name(self) -> &'static str {
        match self {
            Limit::OutboundQueue => "outbound_queue",
            Limit::DevicesPerUid => "devices_per_uid",
            Limit::PerIp => "connections_per_ip",
            Limit::Pending => "pending_connections",
            Limit::HttpHeaderTimeout => "http_header_timeout",
            Limit::HelloTimeout => "hello_timeout",
        }
    }
}

/// Counts one refusal under `limit` (whose setting is `max`) and logs it if due; `who` is
/// the device or address refused.
pub(crate) fn record(limit: Limit, max: impl Debug, who: &dyn Debug) {
    let total = TOTALS[limit as usize].fetch_add(1, Ordering::Relaxed) + 1;
    if total.is_power_of_two() {
        tracing::warn!(limit = limit.name(), ?max, total, ?who, "limit reached");
    }
}

/// Every limit's name and refusals so far, for `/metrics`.
pub(crate) fn totals() -> impl Iterator<Item = (&'static str, u64)> {
    LIMITS.iter().map(|l| (l.name(), TOTALS[*l as usize].load(Ordering::Relaxed)))
}
