//! wss://: the TLS the signaling link speaks. rustls with the ring provider (the one the
//! media stack's DTLS already builds) and Mozilla's root certificates compiled in, so a
//! client trusts the same servers on every platform with no OS trust store to find; an app
//! (or a test) may trust its own CA besides (`ClientConfig::tls_roots`).

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use tokio_tungstenite::Connector;

use crate::signaling::ConnectError;

/// The connector for `url` (a `wss://` one; `ws://` needs none), trusting the built-in
/// roots and `extra_roots` (DER certificates).
///
/// # Errors
///
/// `InvalidUrl` when one of `extra_roots` is not a usable certificate.
pub(crate) fn connector(url: &str, extra_roots: &[Vec<u8>]) -> Result<Connector, ConnectError> {
    let invalid = |reason: String| ConnectError::InvalidUrl { url: url.to_owned(), reason };
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    for (i, der) in extra_roots.iter().enumerate() {
        roots
            .add(CertificateDer::from(der.clone()))
            .map_err(|e| invalid(format!("TLS root certificate {i} is unusable: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Connector::Rustls(Arc::new(config)))
}
