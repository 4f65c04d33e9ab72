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
        let connection = Arc::new(TlsConnectionAdapter(self.0.connection(host, port)));
        // Given up half-way (the engine's connect timed out, or it shut down), or failed:
        // the platform's socket is closed now rather than whenever the connection is freed.
        let mut unfinished = DisconnectOnDrop(Some(Arc::clone(&connection)));
        connection.0.connect().await.map_err(|e| e.to_string())?;
        unfinished.0 = None;
        Ok(connection)
    }
}

struct TlsConnectionAdapter(Arc<dyn TlsConnection>);

struct DisconnectOnDrop(Option<Arc<TlsConnectionAdapter>>);

impl Drop for DisconnectOnDrop {
    fn drop(&mut self) {
        if let Some(connection) = self.0.take() {
            connection.0.disconnect();
        }
    }
}

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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use duet_core::TlsConnector as _;

    /// A platform connection whose `connect` fails, hangs or succeeds, counting disconnects.
    struct Connection {
        outcome: Option<Result<(), TlsError>>,
        disconnects: Arc<AtomicUsize>,
    }

    #[async_trait::async_trait]
    impl TlsConnection for Connection {
        async fn connect(&self) -> Result<(), TlsError> {
            match &self.outcome {
                Some(outcome) => outcome.clone(),
                None => std::future::pending().await,
            }
        }
        async fn read(&self, _max_len: u32) -> Result<Vec<u8>, TlsError> {
            Ok(Vec::new())
        }
        async fn write(&self, _data: Vec<u8>) -> Result<(), TlsError> {
            Ok(())
        }
        fn disconnect(&self) {
            self.disconnects.fetch_add(1, Ordering::SeqCst);
        }
    }

    struct Connector(Option<Result<(), TlsError>>, Arc<AtomicUsize>);

    impl TlsConnector for Connector {
        fn connection(&self, _host: String, _port: u16) -> Arc<dyn TlsConnection> {
            Arc::new(Connection { outcome: self.0.clone(), disconnects: Arc::clone(&self.1) })
        }
    }

    fn adapter(outcome: Option<Result<(), TlsError>>) -> (TlsConnectorAdapter, Arc<AtomicUsize>) {
        let disconnects = Arc::new(AtomicUsize::new(0));
        (TlsConnectorAdapter(Arc::new(Connector(outcome, Arc::clone(&disconnects)))), disconnects)
    }

    #[tokio::test]
    async fn a_connection_that_fails_or_is_given_up_is_disconnected() {
        let refused = TlsError::Failed { reason: "refused (test)".into() };
        let (failing, disconnects) = adapter(Some(Err(refused)));
        let err = failing.connect("h".into(), 443).await.err();
        assert_eq!(err.as_deref(), Some("refused (test)"));
        assert_eq!(disconnects.load(Ordering::SeqCst), 1);

        let (hanging, disconnects) = adapter(None);
        let timed_out = tokio::time::timeout(
            std::time::Duration::from_millis(20),
            hanging.connect("h".into(), 443),
        )
        .await;
        assert!(timed_out.is_err());
        assert_eq!(disconnects.load(Ordering::SeqCst), 1, "the half-made connection is closed");

        let (working, disconnects) = adapter(Some(Ok(())));
        let connection = working.connect("h".into(), 443).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(disconnects.load(Ordering::SeqCst), 0, "a made connection stays open");
        connection.disconnect();
        assert_eq!(disconnects.load(Ordering::SeqCst), 1);
    }
}
