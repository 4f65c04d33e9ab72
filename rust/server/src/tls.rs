//! wss:// served by the server itself, from a certificate chain and key in PEM files, for
//! deployments with no TLS proxy in front. rustls with the ring provider, which the tree
//! already builds for webrtc's DTLS; the handshake happens in the connection's own task,
//! under the same timeout as the request headers, so a client that stalls it costs one
//! gate ticket for a bounded time like any other.

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;

/// Loads the certificate and key, and checks that they belong together.
///
/// # Errors
///
/// `InvalidInput` naming the file at fault: unreadable, not PEM, no certificate or key in
/// it, or a key that does not match the certificate.
pub(crate) fn acceptor(config: &TlsConfig) -> io::Result<TlsAcceptor> {
    let chain = certificates(&config.cert)?;
    let key = PrivateKeyDer::from_pem_file(&config.key)
        .map_err(|e| invalid(&config.key, &format!("no private key read: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(&config.cert, &e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| invalid(&config.key, &format!("unusable with the certificate: {e}")))?;
    // The WebSocket upgrade is an HTTP/1.1 request: say so to clients that negotiate.
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server)))
}

fn certificates(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| invalid(path, &e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(path, &e.to_string()))?;
    if chain.is_empty() {
        return Err(invalid(path, "no certificate in it"));
    }
    Ok(chain)
}

fn invalid(path: &Path, why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("TLS: {}: {why}", path.display()))
}
