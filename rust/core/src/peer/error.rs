//! What can go wrong with a call's peer connection, inside the engine. `crate::errors`
//! maps it, in one place, to the `CallError` apps see.

use duet_media::CodecError;

use crate::errors::MediaKind;

#[derive(Debug, thiserror::Error)]
pub(crate) enum PeerError {
    /// ICE found no working pair, or lost the one it had.
    #[error("ICE failed")]
    IceFailed,
    /// ICE connected but the DTLS handshake failed or the session broke.
    #[error("DTLS failed")]
    DtlsFailed,
    #[error("no {kind} codec: {source}")]
    NoCodec { kind: MediaKind, source: CodecError },
    /// The peer's offer or answer was refused.
    #[error("the remote description was refused: {0}")]
    RemoteDescription(webrtc::error::Error),
    /// The callee was asked to answer an invite that carried no offer.
    #[error("the caller sent no offer")]
    NoOffer,
    /// Building the peer connection, its tracks, or its own description failed.
    #[error("peer connection setup: {0}")]
    Setup(webrtc::error::Error),
}

impl From<webrtc::error::Error> for PeerError {
    fn from(e: webrtc::error::Error) -> Self {
        PeerError::Setup(e)
    }
}

impl From<std::io::Error> for PeerError {
    /// A media thread could not be started.
    fn from(e: std::io::Error) -> Self {
        PeerError::Setup(webrtc::error::Error::Other(format!("starting a media thread: {e}")))
    }
}
