//! TURN credentials in coturn's "TURN REST API" format (`use-auth-secret`), so that an
//! external coturn given the same secret (`static-auth-secret`) accepts what this server
//! hands out, and the embedded TURN server accepts exactly the same thing.
//!
//! * username: `"{expiry}:{uid}"`, `expiry` in seconds since the Unix epoch;
//! * password: `base64(HMAC-SHA1(secret, username))` (standard alphabet, padded).
//!
//! Nothing is stored: whoever knows the secret can recompute the password from the username,
//! and the expiry inside the username cannot be changed without invalidating the password.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Why a TURN username or password is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("the TURN username is not of the form EXPIRY:UID")]
    Malformed,
    #[error("the TURN credentials have expired")]
    Expired,
    #[error("the TURN password is wrong")]
    BadPassword,
}

/// Mints credentials for `uid` valid from `now_unix` for `ttl` (whole seconds): returns
/// `(username, password)`.
pub fn mint(secret: &str, uid: &str, ttl: Duration, now_unix: u64) -> (String, String) {
    let username = format!("{}:{uid}", now_unix.saturating_add(ttl.as_secs()));
    let password = password(secret, &username);
    (username, password)
}

/// The password that goes with `username`, if the username is well formed and has not
/// expired as of `now_unix` (it expires at the second it names). This is what a TURN server
/// needs: it never sees the password itself, only proof that the client knows it.
///
/// # Errors
///
/// `Malformed` for a username not of the form `EXPIRY:UID`, `Expired` past its expiry.
pub fn password_for(
    secret: &str,
    username: &str,
    now_unix: u64,
) -> Result<String, CredentialError> {
    let (expiry, _uid) = parse_username(username)?;
    if now_unix >= expiry {
        return Err(CredentialError::Expired);
    }
    Ok(password(secret, username))
}

/// Checks a username and password pair as of `now_unix`.
///
/// # Errors
///
/// As `password_for`, and `BadPassword` when the password is not the username's.
pub fn verify(
    secret: &str,
    username: &str,
    password: &str,
    now_unix: u64,
) -> Result<(), CredentialError> {
    password_for(secret, username, now_unix)?;
    let given = STANDARD.decode(password).map_err(|_| CredentialError::BadPassword)?;
    mac(secret, username).verify_slice(&given).map_err(|_| CredentialError::BadPassword)
}

/// Splits a username into its expiry (seconds since the Unix epoch) and uid. The expiry is
/// the part before the first `:` and must be decimal digits; the uid is everything after it
/// (so it may itself hold colons) and must not be empty.
///
/// # Errors
///
/// `Malformed` when it is not of that form.
pub fn parse_username(username: &str) -> Result<(u64, &str), CredentialError> {
    let (expiry, uid) = username.split_once(':').ok_or(CredentialError::Malformed)?;
    if expiry.is_empty() || !expiry.bytes().all(|b| b.is_ascii_digit()) || uid.is_empty() {
        return Err(CredentialError::Malformed);
    }
    let expiry = expiry.parse().map_err(|_| CredentialError::Malformed)?;
    Ok((expiry, uid))
}

fn password(secret: &str, username: &str) -> String {
    STANDARD.encode(mac(secret, username).finalize().into_bytes())
}

fn mac(secret: &str, username: &str) -> Hmac<Sha1> {
    let mut mac =
        Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC accepts a key of any length");
    mac.update(username.as_bytes());
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "turn-s3cret";
    const NOW: u64 = 1_764_000_000;
    const TTL: Duration = Duration::from_secs(6 * 3600);

    #[test]
    fn minted_credentials_verify() {
        let (username, password) = mint(SECRET, "alice", TTL, NOW);
        assert_eq!(username, format!("{}:alice", NOW + 6 * 3600));
        assert_eq!(parse_username(&username), Ok((NOW + 6 * 3600, "alice")));
        assert_eq!(password_for(SECRET, &username, NOW + 1), Ok(password.clone()));
        assert_eq!(verify(SECRET, &username, &password, NOW + 1), Ok(()));
    }

    /// The same computation as coturn's `use-auth-secret` and as `turn`'s own
    /// `LongTermAuthHandler`: base64(HMAC-SHA1(secret, username)), checked against a value
    /// computed independently (`printf %s 1700000000:alice | openssl sha1 -hmac turn-s3cret
    /// -binary | base64`).
    #[test]
    fn the_password_is_coturns() {
        let (username, password) = mint(SECRET, "alice", Duration::from_secs(0), 1_700_000_000);
        assert_eq!(username, "1700000000:alice");
        assert_eq!(password, "MJBkMR19bnz1JCVyxl3Nr1LGZ5I=");
    }

    #[test]
    fn credentials_expire_at_the_second_they_name() {
        let (username, password) = mint(SECRET, "alice", Duration::from_secs(60), NOW);
        assert_eq!(verify(SECRET, &username, &password, NOW + 59), Ok(()));
        assert_eq!(verify(SECRET, &username, &password, NOW + 60), Err(CredentialError::Expired));
        assert_eq!(password_for(SECRET, &username, NOW + 61), Err(CredentialError::Expired));
        // Minted in the past: already expired.
        let (old, old_password) = mint(SECRET, "alice", TTL, NOW - 7 * 3600);
        assert_eq!(verify(SECRET, &old, &old_password, NOW), Err(CredentialError::Expired));
    }

    #[test]
    fn malformed_usernames_are_refused() {
        for username in [
            "",
            "alice",
            "1764000000",
            ":alice",
            "1764000000:",
            "-5:alice",
            "+1764000001:alice",
            " 1764000001:alice",
            "17640000x1:alice",
            "99999999999999999999999:alice",
            "alice:1764003600",
        ] {
            assert_eq!(
                password_for(SECRET, username, NOW),
                Err(CredentialError::Malformed),
                "{username:?}"
            );
        }
    }

    #[test]
    fn uids_may_hold_colons() {
        let (username, password) = mint(SECRET, "tenant:alice", TTL, NOW);
        assert_eq!(parse_username(&username), Ok((NOW + 6 * 3600, "tenant:alice")));
        assert_eq!(verify(SECRET, &username, &password, NOW), Ok(()));
    }

    #[test]
    fn another_secret_or_a_tampered_username_does_not_verify() {
        let (username, password) = mint(SECRET, "alice", TTL, NOW);
        assert_eq!(
            verify("other-secret", &username, &password, NOW),
            Err(CredentialError::BadPassword)
        );
        assert_ne!(password_for("other-secret", &username, NOW), Ok(password.clone()));
        // Pushing the expiry out, or taking over another uid, breaks the password.
        let later = format!("{}:alice", NOW + 100 * 3600);
        assert_eq!(verify(SECRET, &later, &password, NOW), Err(CredentialError::BadPassword));
        let bob = username.replace("alice", "bob");
        assert_eq!(verify(SECRET, &bob, &password, NOW), Err(CredentialError::BadPassword));
        assert_eq!(
            verify(SECRET, &username, "not base64!", NOW),
            Err(CredentialError::BadPassword)
        );
    }
}
