//! ICE restart of a session under way: new ICE credentials and candidates (on newly bound
//! sockets, with the latest `welcome`'s TURN servers), the same DTLS session and tracks.
//! The caller offers and the callee answers (docs/protocol.md, ICE restart).

use duet_protocol::IceServer;
use webrtc::peer_connection::RTCSessionDescription;

use super::{setup, PeerError, PeerSession};

impl PeerSession {
    /// Makes and applies an ICE-restart offer; returns its SDP for the peer.
    pub(crate) async fn restart_offer(
        &self,
        ice_servers: &[IceServer],
    ) -> Result<String, PeerError> {
        self.use_servers(ice_servers).await?;
        self.pc.restart_ice().await?;
        let offer = self.pc.create_offer(None).await?;
        self.pc.set_local_description(offer.clone()).await?;
        Ok(offer.sdp)
    }

    /// Applies the peer's ICE-restart offer and answers it; returns the answer's SDP.
    pub(crate) async fn restart_answer(
        &self,
        ice_servers: &[IceServer],
        offer: String,
    ) -> Result<String, PeerError> {
        self.use_servers(ice_servers).await?;
        let offer = RTCSessionDescription::offer(offer).map_err(PeerError::RemoteDescription)?;
        self.pc.set_remote_description(offer).await.map_err(PeerError::RemoteDescription)?;
        let answer = self.pc.create_answer(None).await?;
        self.pc.set_local_description(answer.clone()).await?;
        Ok(answer.sdp)
    }

    /// The servers (and credentials) the next gathering uses: those of the latest `welcome`,
    /// since the ones the session started with may have expired.
    async fn use_servers(&self, ice_servers: &[IceServer]) -> Result<(), PeerError> {
        let config = setup::configuration(ice_servers, self.policy);
        self.pc.set_configuration(config).await?;
        Ok(())
    }
}
