//! The HTTP surface: the WebSocket endpoint, the operator's endpoints (`/healthz`,
//! `/readyz`, `/metrics`), and in development mode a
//! token vending endpoint, and the web client: a page at `/` and its module at `/duet.js`
//! (both from `web/`, embedded in the binary).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Extension, Query, State, WebSocketUpgrade};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::gate::Ticket;
use crate::metrics::Live;
use crate::shared::Shared;
use crate::{connection, health, server, token};

/// The web client's page, which imports `./duet.js`.
const INDEX_HTML: &str = include_str!("../../../web/index.html");
/// The web client: a dependency-free ES module speaking the Duet protocol.
const DUET_JS: &str = include_str!("../../../web/duet.js");

/// How long a development token lives unless `ttl` says otherwise.
pub const DEV_TOKEN_TTL_SECS: u64 = 24 * 3600;
/// The longest `ttl` a development token may ask for (a week).
pub const DEV_TOKEN_MAX_TTL_SECS: u64 = 7 * 24 * 3600;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let mut router = Router::new()
        .route("/ws", get(upgrade))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics))
        .route("/", get(index_html))
        .route("/duet.js", get(duet_js));
    if shared.dev_mode {
        router = router.route("/dev/token", get(dev_token));
    }
    router.with_state(shared)
}

/// Signaling messages are small: tungstenite's defaults (128 KiB read and write buffers,
/// the read buffer zero-filled before every read) cost 140 KiB per idle connection and a
/// tenth of the server's CPU. A larger message grows the buffer for as long as it needs.
const READ_BUFFER_BYTES: usize = 4 * 1024;

async fn upgrade(
    ws: WebSocketUpgrade,
    State(shared): State<Arc<Shared>>,
    Extension(ticket): Extension<Arc<Ticket>>,
    headers: HeaderMap,
) -> Response {
    let forwarded_for = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
    if ticket.attribute(forwarded_for).is_err() {
        // Only a proxy's connection gets here (a direct one is closed when accepted): the
        // proxy passes the status on, where a closed upstream would be a 502.
        return (StatusCode::TOO_MANY_REQUESTS, "too many connections from your address")
            .into_response();
    }
    let limit = shared.config.hard_frame_limit();
    ws.read_buffer_size(READ_BUFFER_BYTES)
        // Each message is written as it comes (and awaited): the outbox is the queue.
        .write_buffer_size(0)
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| connection::run(socket, shared, ticket))
}

/// `GET /metrics`: Prometheus's text format.
async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let live = Live {
        connections: u64::try_from(shared.open.count()).unwrap_or(u64::MAX),
        draining: u64::from(shared.health.is_draining()),
        calls: server::census(&shared).await,
        turn_allocations: match shared.turn.as_ref().and_then(|t| t.census.as_ref()) {
            Some(census) => census.allocations().await.and_then(|n| u64::try_from(n).ok()),
            None => None,
        },
        extra: shared.health.check_metrics(),
    };
    let text = shared.metrics.render(&live);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

async fn index_html() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX_HTML).into_response()
}

async fn duet_js() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], DUET_JS).into_response()
}

/// `GET /dev/token?uid=alice[&ttl=SECS]`: what an app's backend does in production.
async fn dev_token(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let Some(uid) = params.get("uid") else {
        return bad_request("uid is required".into());
    };
    if let Err(e) = duet_protocol::check_uid(uid) {
        return bad_request(e.to_string());
    }
    let ttl = match params.get("ttl").map(|t| t.parse::<u64>()) {
        None => DEV_TOKEN_TTL_SECS,
        Some(Ok(ttl)) if (1..=DEV_TOKEN_MAX_TTL_SECS).contains(&ttl) => ttl,
        Some(_) => {
            return bad_request(format!("ttl must be 1 to {DEV_TOKEN_MAX_TTL_SECS} seconds"))
        }
    };
    let now = token::unix_now();
    let expires_at = now + ttl;
    let token = token::mint_at(&shared.secret, uid, now, expires_at);
    Json(json!({ "token": token, "uid": uid, "expires_at": expires_at })).into_response()
}

fn bad_request(error: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": error }))).into_response()
}
