//! wss:// with the built-in TLS (the `built-in-tls` feature: desktop builds, the CLI, the
//! tests): rustls with the ring provider (the one the media stack's DTLS already builds) and
//! Mozilla's root certificates compiled in, plus any roots the app adds
//! (`ClientConfig::tls_roots`). The mobile libraries leave it out and use the platform's TLS
//! (`transport::TlsConnector`).

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

use crate::signaling::ConnectError;

/// The TLS configuration for `url` (a `wss://` one), trusting the built-in roots and
/// `extra_roots` (DER certificates).
///
/// # Errors
///
/// `InvalidUrl` when one of `extra_roots` is not a usable certificate.
pub(crate) fn client_config(
    url: &str,
    extra_roots: &[Vec<u8>],
) -> Result<Arc<rustls::ClientConfig>, ConnectError> {
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
    Ok(Arc::new(config))
}

/// The TLS handshake with `host` over `tcp`.
pub(crate) async fn connect(
    config: &Arc<rustls::ClientConfig>,
    host: &str,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ConnectError> {
    let name = ServerName::try_from(host.to_owned()).map_err(|e| {
        ConnectError::Unreachable(format!("TLS: {host:?} is not a server name: {e}"))
    })?;
    tokio_rustls::TlsConnector::from(Arc::clone(config))
        .connect(name, tcp)
        .await
        .map_err(|e| ConnectError::Unreachable(format!("TLS: {e}")))
}
