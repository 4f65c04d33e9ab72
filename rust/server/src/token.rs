//! Tokens: JWTs signed with HMAC-SHA256, the only proof of identity a client brings.
//!
//! Deliberately tiny and strict rather than a general JWT library: exactly one algorithm is
//! accepted, so a token can never pick a weaker one (`"alg":"none"`) for itself.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;

/// The secret a server uses when started without one (development mode). Anybody can mint
/// tokens with it, which is the point: `GET /dev/token` hands them out.
pub const DEV_SECRET: &str = "duet-development-secret";

const ALGORITHM: &str = "HS256";

/// What a verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The uid the bearer acts as.
    pub sub: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Issue time, seconds since the Unix epoch; 0 when the token does not state it.
    pub iat: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token is not signed with HS256")]
    UnsupportedAlgorithm,
    #[error("the token has expired")]
    Expired,
    #[error("the token has no subject")]
    MissingSubject,
    #[error("the token has no expiry")]
    MissingExpiry,
    #[error("the token's subject is not a valid uid: {0}")]
    InvalidSubject(duet_protocol::IdError),
}

/// Mints a token for `uid` valid from now for `ttl`.
pub fn mint(secret: &str, uid: &str, ttl: Duration) -> String {
    let now = unix_now();
    mint_at(secret, uid, now, now.saturating_add(ttl.as_secs()))
}

/// Mints a token with explicit times, so tests can make one that has already expired.
pub fn mint_at(secret: &str, uid: &str, iat_unix: u64, exp_unix: u64) -> String {
    let header = json!({ "alg": ALGORITHM, "typ": "JWT" });
    let claims = json!({ "sub": uid, "iat": iat_unix, "exp": exp_unix });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = URL_SAFE_NO_PAD.encode(mac(secret, &signing_input).finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

/// Checks a token's algorithm, signature and claims as of `now_unix`.
///
/// # Errors
///
/// The `TokenError` naming the first check that failed.
pub fn verify(secret: &str, token: &str, now_unix: u64) -> Result<Claims, TokenError> {
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };

    // The header is read before the signature is checked only to refuse other algorithms:
    // nothing else in it is trusted.
    let header = decode_object(header_b64)?;
    if header.get("alg").and_then(Value::as_str) != Some(ALGORITHM) {
        return Err(TokenError::UnsupportedAlgorithm);
    }

    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| TokenError::Malformed)?;
    let signing_input = &token[..header_b64.len() + 1 + payload.len()];
    mac(secret, signing_input).verify_slice(&signature).map_err(|_| TokenError::BadSignature)?;

    let claims = decode_object(payload)?;
    let sub = match claims.get("sub") {
        Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            return Err(TokenError::MissingSubject)
        }
        Some(_) => return Err(TokenError::Malformed),
    };
    duet_protocol::check_uid(&sub).map_err(TokenError::InvalidSubject)?;
    let exp = match claims.get("exp") {
        None | Some(Value::Null) => return Err(TokenError::MissingExpiry),
        Some(v) => numeric_date(v)?,
    };
    let iat = match claims.get("iat") {
        None | Some(Value::Null) => 0,
        Some(v) => numeric_date(v)?,
    };
    if now_unix >= exp {
        return Err(TokenError::Expired);
    }
    Ok(Claims { sub, exp, iat })
}

/// Seconds since the Unix epoch, the clock tokens are written in.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn mac(secret: &str, signing_input: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts a key of any length");
    mac.update(signing_input.as_bytes());
    mac
}

fn decode_object(part: &str) -> Result<Map<String, Value>, TokenError> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| TokenError::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(TokenError::Malformed),
    }
}

/// A JWT NumericDate: seconds since the epoch, possibly fractional, never negative here.
fn numeric_date(v: &Value) -> Result<u64, TokenError> {
    if let Some(n) = v.as_u64() {
        return Ok(n);
    }
    match v.as_f64() {
        // Finite and not negative: `as` truncates the fraction, as the doc says, and
        // saturates above u64::MAX, which is no date anyone will reach.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Some(f) if f.is_finite() && f >= 0.0 => Ok(f as u64),
        _ => Err(TokenError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cret";
    const NOW: u64 = 1_764_000_000;

    fn b64(v: Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    fn signed(header: Value, claims: Value, secret: &str) -> String {
        let input = format!("{}.{}", b64(header), b64(claims));
        let sig = URL_SAFE_NO_PAD.encode(mac(secret, &input).finalize().into_bytes());
        format!("{input}.{sig}")
    }

    #[test]
    fn minted_tokens_verify_with_their_claims() {
        let token = mint_at(SECRET, "alice", NOW, NOW + 3600);
        assert_eq!(
            verify(SECRET, &token, NOW + 10),
            Ok(Claims { sub: "alice".into(), exp: NOW + 3600, iat: NOW })
        );
    }

    #[test]
    fn mint_uses_the_wall_clock_and_ttl() {
        let token = mint(SECRET, "bob", Duration::from_secs(60));
        let claims = verify(SECRET, &token, unix_now()).expect("fresh token verifies");
        assert_eq!(claims.sub, "bob");
        assert_eq!(claims.exp - claims.iat, 60);
    }

    #[test]
    fn another_secret_is_a_bad_signature() {
        let token = mint_at("other", "alice", NOW, NOW + 3600);
        assert_eq!(verify(SECRET, &token, NOW), Err(TokenError::BadSignature));
    }

    #[test]
    fn a_tampered_payload_is_a_bad_signature() {
        let token = mint_at(SECRET, "alice", NOW, NOW + 3600);
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = b64(json!({"sub":"mallory","iat":NOW,"exp":NOW + 3600}));
        parts[1] = &forged;
        assert_eq!(verify(SECRET, &parts.join("."), NOW), Err(TokenError::BadSignature));
    }

    #[test]
    fn expiry_is_exclusive() {
        let token = mint_at(SECRET, "alice", NOW - 100, NOW);
        assert_eq!(verify(SECRET, &token, NOW), Err(TokenError::Expired));
        assert!(verify(SECRET, &token, NOW - 1).is_ok());
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        let claims = json!({"sub":"alice","exp":NOW + 3600});
        let none = format!("{}.{}.", b64(json!({"alg":"none"})), b64(claims.clone()));
        assert_eq!(verify(SECRET, &none, NOW), Err(TokenError::UnsupportedAlgorithm));
        let hs512 = signed(json!({"alg":"HS512"}), claims.clone(), SECRET);
        assert_eq!(verify(SECRET, &hs512, NOW), Err(TokenError::UnsupportedAlgorithm));
        let no_alg = signed(json!({"typ":"JWT"}), claims, SECRET);
        assert_eq!(verify(SECRET, &no_alg, NOW), Err(TokenError::UnsupportedAlgorithm));
    }

    #[test]
    fn missing_or_unusable_claims_are_refused() {
        let h = json!({"alg":"HS256"});
        let cases = [
            (json!({"exp": NOW + 1}), TokenError::MissingSubject),
            (json!({"sub": "", "exp": NOW + 1}), TokenError::MissingSubject),
            (json!({"sub": 7, "exp": NOW + 1}), TokenError::Malformed),
            (json!({"sub": "alice"}), TokenError::MissingExpiry),
            (json!({"sub": "alice", "exp": "soon"}), TokenError::Malformed),
            (json!({"sub": "alice", "exp": -5}), TokenError::Malformed),
        ];
        for (claims, expected) in cases {
            let token = signed(h.clone(), claims.clone(), SECRET);
            assert_eq!(verify(SECRET, &token, NOW), Err(expected), "{claims}");
        }
        let long = "x".repeat(duet_protocol::MAX_UID_BYTES + 1);
        let token = signed(h, json!({"sub": long, "exp": NOW + 1}), SECRET);
        assert!(matches!(verify(SECRET, &token, NOW), Err(TokenError::InvalidSubject(_))));
    }

    #[test]
    fn fractional_dates_are_accepted() {
        let token =
            signed(json!({"alg":"HS256"}), json!({"sub":"a","exp":(NOW + 5) as f64 + 0.5}), SECRET);
        assert_eq!(verify(SECRET, &token, NOW).map(|c| c.exp), Ok(NOW + 5));
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for garbage in ["", ".", "..", "a.b.c", "a.b.c.d", "é.é.é", "eyJ.eyJ.", "x.y", "...."] {
            assert_eq!(verify(SECRET, garbage, NOW), Err(TokenError::Malformed), "{garbage:?}");
        }
        let not_object = format!("{}.{}.", b64(json!([1])), b64(json!({})));
        assert_eq!(verify(SECRET, &not_object, NOW), Err(TokenError::Malformed));
        let bad_sig = format!("{}.{}.!!", b64(json!({"alg":"HS256"})), b64(json!({})));
        assert_eq!(verify(SECRET, &bad_sig, NOW), Err(TokenError::Malformed));
    }
}
