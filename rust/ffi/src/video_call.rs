//! `VideoCall`: a device's connection to duet-server.

use std::sync::Arc;

use duet_core as core;

use crate::codecs::{VideoCodecs, VideoCodecsAdapter};
use crate::conversation::Conversation;
use crate::delegates::{VideoCallDelegate, VideoCallDelegateAdapter};
use crate::errors::{ActionError, ConnectError, PushError};
use crate::records::{CallOptions, ClientConfig, PushToken};
use crate::runtime;
use crate::streams::LocalStream;
use crate::tls::{TlsConnector, TlsConnectorAdapter};

/// Asks a development server (`duet serve` without a secret) for a token for `uid`, so
/// that a sample app needs no backend. A production server refuses (`Refused`): there,
/// tokens come from the app's own backend.
///
/// # Errors
///
/// As `VideoCall.connect` for an unusable URL or an unreachable server; `Refused` from a
/// production server.
#[uniffi::export]
pub async fn fetch_development_token(
    server_url: String,
    uid: String,
) -> Result<String, ConnectError> {
    runtime::run(async move { core::fetch_development_token(&server_url, &uid).await })
        .await
        .map_err(Into::into)
}

/// A connected client: calls are made from it and arrive at it. Dropping it hangs up its
/// call and closes its connection.
#[derive(uniffi::Object)]
pub struct VideoCall {
    inner: Arc<core::VideoCall>,
}

#[uniffi::export]
impl VideoCall {
    /// Connects and authenticates. Returns once the server has welcomed this device, so a
    /// wrong URL or a refused token is an error here; after that, a dropped connection is
    /// retried in the background and calls resume. `delegate` hears incoming calls.
    /// `video_codecs` makes every call's video encoder and decoder (e.g. the platform's
    /// hardware codecs); `None` is OpenH264 (`software_video_codecs()`). `tls_connector`
    /// makes the TLS connections of a `wss://` server URL (the platform's TLS); `None` is the
    /// library's own TLS, which the mobile libraries do not carry.
    ///
    /// Swift and Kotlin see this as `VideoCall.connectWithCodecs` (uniffi.toml): their
    /// `VideoCall.connect` is the shims', which passes the device's hardware codecs and TLS
    /// when the app names none.
    ///
    /// # Errors
    ///
    /// A bad URL or device id, an unreachable or silent server, or a refused token.
    #[uniffi::constructor]
    pub async fn connect(
        config: ClientConfig,
        delegate: Arc<dyn VideoCallDelegate>,
        video_codecs: Option<Arc<dyn VideoCodecs>>,
        tls_connector: Option<Arc<dyn TlsConnector>>,
    ) -> Result<Arc<Self>, ConnectError> {
        let mut config = core::ClientConfig::from(config);
        if let Some(codecs) = video_codecs {
            config.media.video_codecs = Arc::new(VideoCodecsAdapter(codecs));
        }
        config.tls_connector = tls_connector.map(|connector| {
            Arc::new(TlsConnectorAdapter(connector)) as Arc<dyn core::TlsConnector>
        });
        let delegate = Arc::new(VideoCallDelegateAdapter(delegate));
        let inner =
            runtime::run(async move { core::VideoCall::connect(config, delegate).await }).await?;
        Ok(Arc::new(VideoCall { inner: Arc::new(inner) }))
    }

    /// Calls `remote_uid`. Any call under way on this client is hung up first (one call at
    /// a time). The returned conversation hears the answer through its delegate.
    ///
    /// # Errors
    ///
    /// `InvalidArgument` for a malformed uid, calling yourself or data over the limit;
    /// `Closed` after `shutdown`.
    pub fn call(
        &self,
        remote_uid: String,
        local_stream: Arc<LocalStream>,
        options: CallOptions,
    ) -> Result<Arc<Conversation>, ActionError> {
        let conversation = self.inner.call(&remote_uid, local_stream.core(), options.into())?;
        Ok(Conversation::new(conversation))
    }

    /// The uid the server knows this client as (the token's subject).
    pub fn uid(&self) -> String {
        self.inner.uid()
    }

    pub fn device_id(&self) -> String {
        self.inner.device_id().to_owned()
    }

    /// Whether the connection to the server is up now (it is retried in the background).
    pub fn is_connected(&self) -> bool {
        self.inner.is_connected()
    }

    /// The device's network changed (the platform's network monitor said so): every call
    /// under way restarts ICE at once. The Swift and Kotlin shims call it for the app.
    pub fn network_changed(&self) {
        self.inner.network_changed();
    }

    /// A fresh token for the next reconnect (the one in use is checked only when
    /// connecting).
    pub fn update_token(&self, token: String) {
        self.inner.update_token(token);
    }

    /// Registers this device's push token, so that calls reach it while it is not
    /// connected (docs/protocol.md, Pushes). It replaces the device's earlier token and
    /// survives server restarts. Returns once the server has kept it; if the connection
    /// drops first, it is sent again when it is back. Call it after every new token.
    ///
    /// # Errors
    ///
    /// The token is malformed, the server could not keep it, or the client shut down.
    pub async fn register_push(&self, push: PushToken) -> Result<(), PushError> {
        let inner = Arc::clone(&self.inner);
        runtime::run(async move { inner.register_push(push.into()).await }).await?;
        Ok(())
    }

    /// Forgets this device's push token (at sign-out): calls no longer wake it.
    ///
    /// # Errors
    ///
    /// The server could not forget it, or the client shut down.
    pub async fn unregister_push(&self) -> Result<(), PushError> {
        let inner = Arc::clone(&self.inner);
        runtime::run(async move { inner.unregister_push().await }).await?;
        Ok(())
    }

    /// Hangs up every call, closes the connection, and returns once it is closed.
    /// Conversations still held report `Closed` from then on.
    pub async fn shutdown(&self) {
        let inner = Arc::clone(&self.inner);
        runtime::run(async move { inner.shutdown().await }).await;
    }
}
