//! The JWTs the push services want: ES256 for APNs' provider tokens, RS256 for Google's
//! OAuth2 JWT-bearer grant. Signed with ring, which the server already links.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivatePkcs8KeyDer;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the key is not a PEM PKCS#8 private key (BEGIN PRIVATE KEY): {0}")]
    Pem(String),
    #[error("the key is not a {0} key: {1}")]
    Rejected(&'static str, String),
    #[error("signing failed")]
    Signing,
}

/// A private key and the JWT algorithm it signs for.
pub(crate) enum SigningKey {
    /// APNs: a P-256 key (the team's `.p8` file).
    Es256(EcdsaKeyPair),
    /// Google: an RSA key (a service account's `private_key`).
    Rs256(RsaKeyPair),
}

impl SigningKey {
    pub(crate) fn es256_from_pem(pem: &str) -> Result<Self, KeyError> {
        let der = pkcs8(pem)?;
        let rng = SystemRandom::new();
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.secret_pkcs8_der(), &rng)
            .map(SigningKey::Es256)
            .map_err(|e| KeyError::Rejected("P-256 (ES256)", e.to_string()))
    }

    pub(crate) fn rs256_from_pem(pem: &str) -> Result<Self, KeyError> {
        let der = pkcs8(pem)?;
        RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
            .map(SigningKey::Rs256)
            .map_err(|e| KeyError::Rejected("RSA (RS256)", e.to_string()))
    }

    fn alg(&self) -> &'static str {
        match self {
            SigningKey::Es256(_) => "ES256",
            SigningKey::Rs256(_) => "RS256",
        }
    }

    /// `header.claims.signature`, with `alg` (and `typ`) added to `header`.
    pub(crate) fn sign(&self, mut header: Value, claims: &Value) -> Result<String, KeyError> {
        header["alg"] = Value::from(self.alg());
        header["typ"] = Value::from("JWT");
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let rng = SystemRandom::new();
        let signature = match self {
            SigningKey::Es256(key) => {
                key.sign(&rng, input.as_bytes()).map_err(|_| KeyError::Signing)?.as_ref().to_vec()
            }
            SigningKey::Rs256(key) => {
                let mut sig = vec![0; key.public().modulus_len()];
                key.sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig)
                    .map_err(|_| KeyError::Signing)?;
                sig
            }
        };
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

fn pkcs8(pem: &str) -> Result<PrivatePkcs8KeyDer<'static>, KeyError> {
    PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| KeyError::Pem(e.to_string()))
}

/// A bearer credential reused until it is `max_age` old: APNs refuses provider tokens
/// minted more often than every 20 minutes and older than an hour, and Google's access
/// tokens have their own expiry. Never minted per request.
pub(crate) struct Cached {
    value: Option<(String, Instant, Duration)>,
}

impl Cached {
    pub(crate) fn new() -> Self {
        Cached { value: None }
    }

    /// The cached value if still fresh at `now`.
    pub(crate) fn fresh(&self, now: Instant) -> Option<&str> {
        match &self.value {
            Some((value, minted, max_age)) if now.saturating_duration_since(*minted) < *max_age => {
                Some(value)
            }
            _ => None,
        }
    }

    pub(crate) fn store(&mut self, value: String, minted: Instant, max_age: Duration) {
        self.value = Some((value, minted, max_age));
    }

    /// Forgets the value (the service refused it), so the next use mints anew.
    pub(crate) fn clear(&mut self) {
        self.value = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};

    #[test]
    fn an_es256_token_verifies_with_the_public_half() {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let der = PrivatePkcs8KeyDer::from(doc.as_ref().to_vec());
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            der.secret_pkcs8_der(),
            &rng,
        )
        .unwrap();
        let public = key.public_key().as_ref().to_vec();
        let jwt = SigningKey::Es256(key)
            .sign(serde_json::json!({"kid":"K"}), &serde_json::json!({"iss":"T"}))
            .unwrap();
        let (input, sig) = jwt.rsplit_once('.').unwrap();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public)
            .verify(input.as_bytes(), &sig)
            .unwrap();
        assert!(SigningKey::es256_from_pem("not a key").is_err());
    }

    #[test]
    fn a_cached_value_lives_its_age_and_no_longer() {
        let t0 = Instant::now();
        let mut cache = Cached::new();
        assert!(cache.fresh(t0).is_none());
        cache.store("v".into(), t0, Duration::from_secs(60));
        assert_eq!(cache.fresh(t0 + Duration::from_secs(59)), Some("v"));
        assert!(cache.fresh(t0 + Duration::from_secs(60)).is_none());
        cache.clear();
        assert!(cache.fresh(t0).is_none());
    }
}
