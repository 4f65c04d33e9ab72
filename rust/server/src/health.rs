//! What a load balancer or an orchestrator asks: `/healthz`, is the process alive (it
//! answers at all), and `/readyz`, should it be sent traffic. A draining server is alive
//! but not ready; so is a node whose dependencies are down, once it has any: a cluster
//! node adds a `ReadinessCheck` for Redis, fed by its own pinger task, so that neither
//! endpoint ever waits on the network.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::shared::Shared;

/// Something the server needs before it can take traffic.
pub(crate) trait ReadinessCheck: Send + Sync {
    /// `None` while ready, else why not (one line, for `/readyz`'s body).
    fn not_ready(&self) -> Option<String>;

    /// Families this check adds to `/metrics` (a dependency's round-trip time), in the
    /// exposition format; the names are fixed by the check, never taken from input.
    fn metrics(&self) -> String {
        String::new()
    }
}

#[derive(Default)]
pub(crate) struct Health {
    draining: AtomicBool,
    checks: Vec<Arc<dyn ReadinessCheck>>,
}

impl Health {
    pub(crate) fn with_checks(checks: Vec<Arc<dyn ReadinessCheck>>) -> Self {
        Health { draining: AtomicBool::new(false), checks }
    }

    pub(crate) fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Why the server should not be sent traffic now, if it should not.
    fn not_ready(&self) -> Option<String> {
        if self.is_draining() {
            return Some("draining".to_owned());
        }
        self.checks.iter().find_map(|c| c.not_ready())
    }

    pub(crate) fn check_metrics(&self) -> Vec<String> {
        self.checks.iter().map(|c| c.metrics()).filter(|m| !m.is_empty()).collect()
    }
}

/// `GET /healthz`: answering is the whole check.
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: 200 `ready`, or 503 with the reason (`draining`).
pub(crate) async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    let text = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    match shared.health.not_ready() {
        None => (StatusCode::OK, text, "ready\n".to_owned()).into_response(),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, text, format!("{why}\n")).into_response(),
    }
}
