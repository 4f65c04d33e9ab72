//! Apple Push Notification service: VoIP pushes over HTTP/2 with token-based auth.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use duet_protocol::ApnsEnvironment;
use http_body_util::Full;
use hyper::{Method, Request, StatusCode};
use serde_json::json;

use super::h2::H2Client;
use super::jwt::{Cached, KeyError, SigningKey};
use super::payload::{self, CallPush};
use super::Outcome;

const PRODUCTION_URL: &str = "https://api.push.apple.com";
const SANDBOX_URL: &str = "https://api.sandbox.push.apple.com";
/// Apple refuses provider tokens refreshed more often than every 20 minutes and older than
/// an hour: 40 minutes sits between, with room for clock skew either way.
const PROVIDER_TOKEN_AGE: Duration = Duration::from_secs(40 * 60);

/// How the server signs in to APNs.
#[derive(Debug, Clone)]
pub struct ApnsConfig {
    /// The team's `.p8` key, in PEM (`-----BEGIN PRIVATE KEY-----`).
    pub key_pem: String,
    /// The key's id (10 characters, shown beside it in the developer account).
    pub key_id: String,
    pub team_id: String,
    /// Sends every push here instead of Apple's production or sandbox host (tests).
    pub url: Option<String>,
}

pub(crate) struct Apns {
    key: SigningKey,
    key_id: String,
    team_id: String,
    url: Option<String>,
    provider_token: Mutex<Cached>,
    http: Arc<H2Client>,
}

impl Apns {
    pub(crate) fn new(config: &ApnsConfig, http: Arc<H2Client>) -> Result<Self, KeyError> {
        Ok(Apns {
            key: SigningKey::es256_from_pem(&config.key_pem)?,
            key_id: config.key_id.clone(),
            team_id: config.team_id.clone(),
            url: config.url.clone(),
            provider_token: Mutex::new(Cached::new()),
            http,
        })
    }

    /// Pushes `call` to one device. A refused provider token is minted anew and the push
    /// tried once more.
    pub(crate) async fn push(
        &self,
        token: &str,
        bundle_id: &str,
        environment: ApnsEnvironment,
        call: &CallPush,
    ) -> Outcome {
        let base = self.url.as_deref().unwrap_or(match environment {
            ApnsEnvironment::Production => PRODUCTION_URL,
            ApnsEnvironment::Sandbox => SANDBOX_URL,
        });
        let body = Bytes::from(payload::apns(call));
        for retry in [true, false] {
            let jwt = match self.provider_token() {
                Ok(jwt) => jwt,
                Err(e) => return Outcome::Failed(format!("APNs provider token: {e}")),
            };
            let request = Request::builder()
                .method(Method::POST)
                .uri(format!("{}/3/device/{token}", base.trim_end_matches('/')))
                .header("authorization", format!("bearer {jwt}"))
                .header("apns-push-type", "voip")
                .header("apns-topic", format!("{bundle_id}.voip"))
                .header("apns-priority", "10")
                .header("apns-expiration", (call.deadline_ms / 1000).to_string())
                .header("content-type", "application/json")
                .body(Full::new(body.clone()));
            let request = match request {
                Ok(request) => request,
                Err(e) => return Outcome::Failed(format!("APNs request: {e}")),
            };
            let (status, body) = match self.http.send(request).await {
                Ok(response) => response,
                Err(e) => return Outcome::Failed(format!("APNs: {e}")),
            };
            let reason = reason(&body);
            match (status, reason.as_str()) {
                (StatusCode::OK, _) => return Outcome::Delivered,
                (StatusCode::GONE, _) | (StatusCode::BAD_REQUEST, "BadDeviceToken") => {
                    return Outcome::DeadToken
                }
                (StatusCode::FORBIDDEN, "ExpiredProviderToken" | "InvalidProviderToken")
                    if retry =>
                {
                    self.clear_provider_token();
                }
                _ => return Outcome::Failed(format!("APNs answered {status} {reason}")),
            }
        }
        Outcome::Failed("APNs refused a fresh provider token".into())
    }

    /// The provider token, minted at most once per `PROVIDER_TOKEN_AGE`.
    fn provider_token(&self) -> Result<String, KeyError> {
        let now = Instant::now();
        let mut cache = self.provider_token.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(jwt) = cache.fresh(now) {
            return Ok(jwt.to_owned());
        }
        let jwt = self.key.sign(
            json!({"kid": self.key_id}),
            &json!({"iss": self.team_id, "iat": super::unix_secs()}),
        )?;
        tracing::debug!("minted an APNs provider token");
        cache.store(jwt.clone(), now, PROVIDER_TOKEN_AGE);
        Ok(jwt)
    }

    fn clear_provider_token(&self) {
        self.provider_token.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// APNs says why it refused in `{"reason":"..."}`.
fn reason(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("reason").and_then(|r| r.as_str()).map(str::to_owned))
        .unwrap_or_default()
}
