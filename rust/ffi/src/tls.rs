//! The platform's TLS for `wss://`: the Swift shims' Network.framework connector and the
//! Kotlin shims' `SSLSocket` one implement these traits, and the engine runs its WebSocket
//! over their connections (duet-core's `transport`).

use std::sync::Arc;

use duet_core as core;

/// A TLS connection failed: the reason, for the app's logs (`ConnectError.Unreachable`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[uniffi::export(Display)]
pub enum TlsError {
    #[error("{reason}")]
    Failed { reason: String },
}

/// A foreign connector that throws something other than `TlsError` (or whose callback
/// fails) gives this, not a panic.
impl From<uniffi::UnexpectedUniFFICallbackError> for TlsError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        TlsError::Failed { reason: e.reason }
    }
}

/// Makes the TLS connections `wss://` runs over: hand one to `VideoCall.connect`.
#[uniffi::export(with_foreign)]
pub trait TlsConnector: Send + Sync {
    /// A connection to `host`:`port`, not yet made: the engine calls its `connect` next.
    fn connection(&self, host: String, port: u16) -> Arc<dyn TlsConnection>;
}

/// One TLS connection a `TlsConnector` made. After `connect`, a read and a write may be
/// under way at once.
#[uniffi::export(with_foreign)]
#[async_trait::async_trait]
pub trait TlsConnection: Send + Sync {
    /// Connects and completes the TLS handshake, the server's certificate verified for the
    /// host by the platform's trust store.
    ///
    /// # Errors
    ///
    /// Any `TlsError`: `VideoCall.connect` fails with `Unreachable` and its reason (a
    /// reconnect is tried again later).
    async fn connect(&self) -> Result<(), TlsError>;

    /// At least one and at most `max_len` bytes; none when the server closed the connection.
    ///
    /// # Errors
    ///
    /// Any `TlsError`: the engine drops the connection and reconnects.
    async fn read(&self, max_len: u32) -> Result<Vec<u8>, TlsError>;

    /// Writes all of `data`.
    ///
    /// # Errors
    ///
    /// Any `TlsError`: the engine drops the connection and reconnects.
    async fn write(&self, data: Vec<u8>) -> Result<(), TlsError>;

    /// Closes the connection; a read or write under way ends with an error. Called when the
    /// engine is done with it, however that came about; it may come more than once.
    /// (Not `close`: Kotlin's generated class is an `AutoCloseable`.)
    fn disconnect(&self);
}

pub(crate) struct TlsConnectorAdapter(pub Arc<dyn TlsConnector>);

#[async_trait::async_trait]
impl core::TlsConnector for TlsConnectorAdapter {
    async fn connect(
        &self,
        host: String,
        port: u16,
    ) -> Result<Arc<dyn core::TlsConnection>, String> {
        let connection = self.0.connection(host, port);
        connection.connect().await.map_err(|e| e.to_string())?;
        Ok(Arc::new(TlsConnectionAdapter(connection)))
    }
}

struct TlsConnectionAdapter(Arc<dyn TlsConnection>);

#[async_trait::async_trait]
impl core::TlsConnection for TlsConnectionAdapter {
    async fn read(&self, max_len: u32) -> Result<Vec<u8>, String> {
        self.0.read(max_len).await.map_err(|e| e.to_string())
    }

    async fn write(&self, data: Vec<u8>) -> Result<(), String> {
        self.0.write(data).await.map_err(|e| e.to_string())
    }

    fn disconnect(&self) {
        self.0.disconnect();
    }
}
