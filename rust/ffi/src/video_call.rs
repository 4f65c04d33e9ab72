//! `VideoCall`: a device's connection to duet-server.

use std::sync::Arc;

use duet_core as core;

use crate::conversation::Conversation;
use crate::delegates::{VideoCallDelegate, VideoCallDelegateAdapter};
use crate::errors::{ActionError, ConnectError};
use crate::records::{CallOptions, ClientConfig};
use crate::runtime;
use crate::streams::LocalStream;

/// Asks a development server (`duet serve` without a secret) for a token for `uid`, so
/// that a sample app needs no backend. A production server refuses (`Refused`): there,
/// tokens come from the app's own backend.
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
    #[uniffi::constructor]
    pub async fn connect(
        config: ClientConfig,
        delegate: Arc<dyn VideoCallDelegate>,
    ) -> Result<Arc<Self>, ConnectError> {
        let config = core::ClientConfig::from(config);
        let delegate = Arc::new(VideoCallDelegateAdapter(delegate));
        let inner =
            runtime::run(async move { core::VideoCall::connect(config, delegate).await }).await?;
        Ok(Arc::new(VideoCall { inner: Arc::new(inner) }))
    }

    /// Calls `remote_uid`. Any call under way on this client is hung up first (one call at
    /// a time). The returned conversation hears the answer through its delegate.
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

    /// A fresh token for the next reconnect (the one in use is checked only when
    /// connecting).
    pub fn update_token(&self, token: String) {
        self.inner.update_token(token);
    }

    /// Hangs up every call, closes the connection, and returns once it is closed.
    /// Conversations still held report `Closed` from then on.
    pub async fn shutdown(&self) {
        let inner = Arc::clone(&self.inner);
        runtime::run(async move { inner.shutdown().await }).await;
    }
}
