//! The byte stream under the signaling WebSocket: TCP for `ws://`; for `wss://`, TLS from the
//! platform (a `TlsConnector`: Network.framework on Apple, `SSLSocket` on Android) or, where
//! the library was built with it, the built-in rustls (`tls.rs`).
//!
//! The platform's TLS is what the mobile libraries use: it trusts what the device trusts (a
//! company's CA, the user's, the OS's updates to its root store), and the library carries no
//! TLS stack of its own (about 0.4 MB of a 5 MB budget, issue 15).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use futures_util::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Makes the TLS connections `wss://` runs over, with the platform's TLS and trust store.
#[async_trait::async_trait]
pub trait TlsConnector: Send + Sync {
    /// A TLS connection to `host`:`port`, its certificate verified for `host`. The error is
    /// a reason for the app's logs (`ConnectError::Unreachable`).
    async fn connect(&self, host: String, port: u16) -> Result<Arc<dyn TlsConnection>, String>;
}

/// One TLS connection a `TlsConnector` made. The engine reads and writes it from one task;
/// a read and a write may be under way at once.
#[async_trait::async_trait]
pub trait TlsConnection: Send + Sync {
    /// At least one and at most `max_len` bytes; none when the server closed the connection.
    async fn read(&self, max_len: u32) -> Result<Vec<u8>, String>;
    /// Writes all of `data`.
    async fn write(&self, data: Vec<u8>) -> Result<(), String>;
    /// Closes the connection; a read or write under way ends with an error. May come more
    /// than once.
    fn disconnect(&self);
}

/// The most a read asks the platform for: the WebSocket reads in chunks of this order, and
/// signaling messages are small.
const READ_CHUNK: u32 = 16 * 1024;

pub(crate) enum Transport {
    Tcp(TcpStream),
    #[cfg(feature = "built-in-tls")]
    BuiltInTls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    PlatformTls(PlatformTls),
}

/// A `TlsConnection` as tokio's byte stream. Closed when dropped, so a lost or replaced link
/// leaves no socket open on the platform's side.
pub(crate) struct PlatformTls {
    connection: Arc<dyn TlsConnection>,
    reading: Option<BoxFuture<'static, Result<Vec<u8>, String>>>,
    /// What the platform returned beyond what the last read could take.
    unread: Vec<u8>,
    writing: Option<BoxFuture<'static, Result<(), String>>>,
}

impl PlatformTls {
    pub(crate) fn new(connection: Arc<dyn TlsConnection>) -> Self {
        PlatformTls { connection, reading: None, unread: Vec::new(), writing: None }
    }

    fn take_unread(&mut self, buf: &mut ReadBuf<'_>) {
        let n = self.unread.len().min(buf.remaining());
        buf.put_slice(&self.unread[..n]);
        self.unread.drain(..n);
    }

    /// Finishes the write under way, if any.
    fn poll_written(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(writing) = self.writing.as_mut() {
            let result = ready!(writing.as_mut().poll(cx));
            self.writing = None;
            result.map_err(io::Error::other)?;
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for PlatformTls {
    fn drop(&mut self) {
        self.connection.disconnect();
    }
}

impl AsyncRead for PlatformTls {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.unread.is_empty() || buf.remaining() == 0 {
            this.take_unread(buf);
            return Poll::Ready(Ok(()));
        }
        let reading = this.reading.get_or_insert_with(|| {
            let connection = Arc::clone(&this.connection);
            let max_len = u32::try_from(buf.remaining()).unwrap_or(READ_CHUNK).min(READ_CHUNK);
            Box::pin(async move { connection.read(max_len).await })
        });
        let result = ready!(reading.as_mut().poll(cx));
        this.reading = None;
        // An empty read is the end of the stream: nothing put in `buf`.
        this.unread = result.map_err(io::Error::other)?;
        this.take_unread(buf);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for PlatformTls {
    /// Hands `buf` to the platform and reports it written; its outcome is the next write's,
    /// flush's or shutdown's.
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_written(cx))?;
        let connection = Arc::clone(&this.connection);
        let data = buf.to_vec();
        this.writing = Some(Box::pin(async move { connection.write(data).await }));
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_written(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_written(cx))?;
        this.connection.disconnect();
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(feature = "built-in-tls")]
            Transport::BuiltInTls(s) => Pin::new(s).poll_read(cx, buf),
            Transport::PlatformTls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(feature = "built-in-tls")]
            Transport::BuiltInTls(s) => Pin::new(s).poll_write(cx, buf),
            Transport::PlatformTls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "built-in-tls")]
            Transport::BuiltInTls(s) => Pin::new(s).poll_flush(cx),
            Transport::PlatformTls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(feature = "built-in-tls")]
            Transport::BuiltInTls(s) => Pin::new(s).poll_shutdown(cx),
            Transport::PlatformTls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
