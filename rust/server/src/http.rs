//! The HTTP surface: the WebSocket endpoint, a health check, and in development mode a
//! token vending endpoint, and the web client: a page at `/` and its module at `/duet.js`
//! (both from `web/`, embedded in the binary).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State, WebSocketUpgrade};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::connection;
use crate::server::Shared;
use crate::token;

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
        .route("/healthz", get(|| async { "ok" }))
        .route("/", get(index_html))
        .route("/duet.js", get(duet_js));
    if shared.dev_mode {
        router = router.route("/dev/token", get(dev_token));
    }
    router.with_state(shared)
}

async fn upgrade(ws: WebSocketUpgrade, State(shared): State<Arc<Shared>>) -> Response {
    let limit = shared.config.hard_frame_limit();
    ws.max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| connection::run(socket, shared))
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
        return bad_request(e);
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
