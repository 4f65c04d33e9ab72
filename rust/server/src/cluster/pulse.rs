//! A node's heartbeat: it refreshes its liveness key (which the leader watches to notice
//! dead nodes), and measures Redis's round-trip time for `/metrics` and `/readyz`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use redis::aio::ConnectionManager;

use super::{node_key, NodeTag, COMMAND_TIMEOUT, LEASE, REFRESH};
use crate::health::ReadinessCheck;

/// What a node knows of its cluster, for `/readyz` and `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct ClusterHealth {
    /// Redis answered the last ping.
    up: AtomicBool,
    /// The last ping's round trip, in microseconds.
    rtt_micros: AtomicU64,
    pings: AtomicU64,
    failures: AtomicU64,
    /// This node holds the leader lease (runs the switchboard).
    leader: AtomicBool,
}

impl ClusterHealth {
    /// Redis has just answered (a node starts only once it has).
    pub(super) fn reachable() -> Self {
        ClusterHealth { up: AtomicBool::new(true), ..ClusterHealth::default() }
    }

    pub(super) fn set_leader(&self, leader: bool) {
        self.leader.store(leader, Ordering::Relaxed);
    }
}

impl ReadinessCheck for ClusterHealth {
    fn not_ready(&self) -> Option<String> {
        (!self.up.load(Ordering::Relaxed)).then(|| "Redis unreachable".to_owned())
    }

    fn metrics(&self) -> String {
        #[allow(clippy::cast_precision_loss)] // microseconds: exact far beyond any RTT
        let rtt = self.rtt_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let up = u8::from(self.up.load(Ordering::Relaxed));
        let leader = u8::from(self.leader.load(Ordering::Relaxed));
        let pings = self.pings.load(Ordering::Relaxed);
        let failures = self.failures.load(Ordering::Relaxed);
        format!(
            "# HELP duet_redis_up Whether Redis answered the node's last ping.\n\
             # TYPE duet_redis_up gauge\nduet_redis_up {up}\n\
             # HELP duet_redis_rtt_seconds Round-trip time of the node's last Redis ping.\n\
             # TYPE duet_redis_rtt_seconds gauge\nduet_redis_rtt_seconds {rtt}\n\
             # HELP duet_redis_pings_total Pings the node sent Redis (one a refresh).\n\
             # TYPE duet_redis_pings_total counter\nduet_redis_pings_total {pings}\n\
             # HELP duet_redis_ping_failures_total Pings Redis did not answer in time.\n\
             # TYPE duet_redis_ping_failures_total counter\n\
             duet_redis_ping_failures_total {failures}\n\
             # HELP duet_cluster_leader Whether this node holds the leader lease (runs the switchboard).\n\
             # TYPE duet_cluster_leader gauge\nduet_cluster_leader {leader}\n"
        )
    }
}

pub(super) async fn run(node: NodeTag, mut redis: ConnectionManager, health: Arc<ClusterHealth>) {
    let key = node_key(node);
    let lease_ms = u64::try_from(LEASE.as_millis()).unwrap_or(u64::MAX);
    let mut tick = tokio::time::interval(REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let ping = tokio::time::timeout(COMMAND_TIMEOUT, async {
            let started = Instant::now();
            redis::cmd("PING").query_async::<String>(&mut redis).await?;
            let rtt = started.elapsed();
            redis::cmd("SET")
                .arg(&key)
                .arg(1)
                .arg("PX")
                .arg(lease_ms)
                .query_async::<()>(&mut redis)
                .await?;
            Ok::<_, redis::RedisError>(rtt)
        })
        .await;
        health.pings.fetch_add(1, Ordering::Relaxed);
        let ok = if let Ok(Ok(rtt)) = ping {
            let rtt = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX);
            health.rtt_micros.store(rtt, Ordering::Relaxed);
            true
        } else {
            health.failures.fetch_add(1, Ordering::Relaxed);
            false
        };
        if health.up.swap(ok, Ordering::Relaxed) != ok {
            tracing::warn!(up = ok, "Redis reachability changed");
        }
    }
}
