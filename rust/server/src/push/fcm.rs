//! Firebase Cloud Messaging, HTTP v1: a service account signs an OAuth2 JWT-bearer grant
//! for an access token, which authorises data-only messages at high priority.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::h2::H2Client;
use super::jwt::{Cached, KeyError, SigningKey};
use super::payload::{self, CallPush};
use super::Outcome;

const FCM_URL: &str = "https://fcm.googleapis.com";
const TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// An access token is given up this long before Google says it expires, so that none is
/// used as it lapses.
const EXPIRY_MARGIN: Duration = Duration::from_secs(300);

/// How the server signs in to FCM.
#[derive(Debug, Clone)]
pub struct FcmConfig {
    /// The service account's JSON key file, as downloaded from the Firebase console.
    pub service_account_json: String,
    /// Sends messages here instead of `https://fcm.googleapis.com` (tests).
    pub url: Option<String>,
    /// Asks for access tokens here instead of the service account's `token_uri` (tests).
    pub token_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum FcmSetupError {
    #[error("the FCM service account is not a service account JSON key: {0}")]
    Account(#[from] serde_json::Error),
    #[error("the FCM service account's private key: {0}")]
    Key(#[from] KeyError),
}

#[derive(Deserialize)]
struct ServiceAccount {
    project_id: String,
    private_key: String,
    #[serde(default)]
    private_key_id: Option<String>,
    client_email: String,
    #[serde(default)]
    token_uri: Option<String>,
}

pub(crate) struct Fcm {
    key: SigningKey,
    key_id: Option<String>,
    client_email: String,
    send_url: String,
    token_url: String,
    /// Held across the token request, so that pushes racing a refresh wait for one grant
    /// rather than each asking for its own.
    access_token: tokio::sync::Mutex<Cached>,
    http: Arc<H2Client>,
}

impl Fcm {
    pub(crate) fn new(config: &FcmConfig, http: Arc<H2Client>) -> Result<Self, FcmSetupError> {
        let account: ServiceAccount = serde_json::from_str(&config.service_account_json)?;
        let base = config.url.as_deref().unwrap_or(FCM_URL).trim_end_matches('/');
        Ok(Fcm {
            key: SigningKey::rs256_from_pem(&account.private_key)?,
            key_id: account.private_key_id,
            send_url: format!("{base}/v1/projects/{}/messages:send", account.project_id),
            token_url: config
                .token_url
                .clone()
                .or(account.token_uri)
                .unwrap_or_else(|| TOKEN_URL.to_owned()),
            client_email: account.client_email,
            access_token: tokio::sync::Mutex::new(Cached::new()),
            http,
        })
    }

    /// Pushes `call` to one device. A refused access token is fetched anew and the push
    /// tried once more.
    pub(crate) async fn push(&self, token: &str, call: &CallPush) -> Outcome {
        let ttl_secs = call.deadline_ms.saturating_sub(super::unix_ms()) / 1000;
        let message = json!({"message": {
            "token": token,
            "data": payload::fcm_data(call),
            "android": {"priority": "HIGH", "ttl": format!("{ttl_secs}s")},
        }});
        let body = Bytes::from(message.to_string());
        for retry in [true, false] {
            let access = match self.access_token().await {
                Ok(access) => access,
                Err(e) => return Outcome::Failed(format!("FCM access token: {e}")),
            };
            let request = Request::builder()
                .method(Method::POST)
                .uri(&self.send_url)
                .header("authorization", format!("Bearer {access}"))
                .header("content-type", "application/json")
                .body(Full::new(body.clone()));
            let (status, body) = match request {
                Ok(request) => match self.http.send(request).await {
                    Ok(response) => response,
                    Err(e) => return Outcome::Failed(format!("FCM: {e}")),
                },
                Err(e) => return Outcome::Failed(format!("FCM request: {e}")),
            };
            match status {
                StatusCode::OK => return Outcome::Delivered,
                StatusCode::NOT_FOUND => return Outcome::DeadToken,
                _ if error_code(&body) == "UNREGISTERED" => return Outcome::DeadToken,
                StatusCode::UNAUTHORIZED if retry => self.access_token.lock().await.clear(),
                _ => {
                    let text = String::from_utf8_lossy(&body);
                    return Outcome::Failed(format!("FCM answered {status}: {text}"));
                }
            }
        }
        Outcome::Failed("FCM refused a fresh access token".into())
    }

    /// The access token, asked for only when the last one is near its expiry.
    async fn access_token(&self) -> Result<String, String> {
        let mut cache = self.access_token.lock().await;
        let now = Instant::now();
        if let Some(token) = cache.fresh(now) {
            return Ok(token.to_owned());
        }
        let (token, lifetime) = self.grant().await?;
        cache.store(token.clone(), now, lifetime.saturating_sub(EXPIRY_MARGIN));
        Ok(token)
    }

    /// The OAuth2 JWT-bearer grant (RFC 7523): a JWT signed with the account's key, traded
    /// for an access token and its lifetime.
    async fn grant(&self) -> Result<(String, Duration), String> {
        let iat = super::unix_secs();
        let mut header = json!({});
        if let Some(kid) = &self.key_id {
            header["kid"] = Value::from(kid.as_str());
        }
        let claims = json!({
            "iss": self.client_email, "scope": SCOPE, "aud": self.token_url,
            "iat": iat, "exp": iat + 3600,
        });
        let assertion = self.key.sign(header, &claims).map_err(|e| e.to_string())?;
        let form = format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"
        );
        let request = Request::builder()
            .method(Method::POST)
            .uri(&self.token_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(form)))
            .map_err(|e| e.to_string())?;
        let (status, body) = self.http.send(request).await.map_err(|e| e.to_string())?;
        if status != StatusCode::OK {
            return Err(format!("the token endpoint answered {status}"));
        }
        #[derive(Deserialize)]
        struct Grant {
            access_token: String,
            expires_in: u64,
        }
        let grant: Grant = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        tracing::debug!("got an FCM access token");
        Ok((grant.access_token, Duration::from_secs(grant.expires_in)))
    }
}

/// FCM names the error in `error.details[].errorCode`.
fn error_code(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    v["error"]["details"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|d| d["errorCode"].as_str())
        .unwrap_or_default()
        .to_owned()
}
