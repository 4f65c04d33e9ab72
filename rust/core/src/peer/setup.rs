//! How Duet's peer connections are built: codecs, interceptors, ICE timing.

use std::time::Duration;

use duet_protocol::{IceServer, IceTransportPolicy};
use rtc::interceptor::{Registry, Slot};
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_H264, MIME_TYPE_OPUS};
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind};
use webrtc::peer_connection::{
    register_default_interceptors, MediaEngine, RTCConfiguration, RTCConfigurationBuilder,
    RTCIceServer, RTCIceTransportPolicy, SettingEngine, SettingEngineBuilder,
};

use super::keyframe::KeyframeRequestForwarder;

const PT_H264: u8 = 102;
const PT_OPUS: u8 = 111;
/// Constrained baseline, packetization mode 1: what every browser and phone decodes.
const H264_FMTP: &str = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";

pub(crate) fn h264() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_H264.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: H264_FMTP.to_owned(),
        rtcp_feedback: vec![],
    }
}

pub(crate) fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        // SDP requires opus/48000/2; we send mono, which every decoder accepts.
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

/// H.264 and Opus only, with NACK, PLI, TWCC and sender/receiver reports, plus the
/// interceptor that lets keyframe requests and bitrate estimates reach the encoder.
pub(crate) fn media_engine() -> Result<(MediaEngine, Registry), webrtc::error::Error> {
    let mut me = MediaEngine::default();
    me.register_codec(
        RTCRtpCodecParameters { rtp_codec: h264(), payload_type: PT_H264 },
        RtpCodecKind::Video,
    )?;
    me.register_codec(
        RTCRtpCodecParameters { rtp_codec: opus(), payload_type: PT_OPUS },
        RtpCodecKind::Audio,
    )?;
    let registry = register_default_interceptors(Registry::new(), &mut me)?;
    // Last in the chain, nearest the application: everything before it has seen the RTCP.
    let registry = registry.with(Slot::from(14_000), KeyframeRequestForwarder::default());
    Ok((me, registry))
}

/// ICE timing tuned for call setup. webrtc-rs's defaults are for robustness on lossy links
/// and cost a call hundreds of milliseconds (docs/benchmarks.md has the figures):
/// - checks every 200 ms: a pair that could connect in 3 ms waits for the next tick, and
///   DTLS starts only on the tick after ICE connects (so connecting takes up to two
///   intervals; at 5 ms that is noise, and the extra checks last only while connecting);
/// - 500 ms / 1 s / 2 s before a server-reflexive / peer-reflexive / relay pair may be
///   nominated, though with trickle ICE the first working pair is routinely peer-reflexive,
///   and under a relay-only policy nothing better can ever come.
pub(crate) fn setting_engine() -> SettingEngine {
    let zero = Some(Duration::ZERO);
    SettingEngineBuilder::new()
        .with_ice_connection_attempts(Some(Duration::from_millis(5)), None)
        .with_host_acceptance_min_wait(zero)
        .with_srflx_acceptance_min_wait(zero)
        .with_prflx_acceptance_min_wait(zero)
        .with_relay_acceptance_min_wait(zero)
        .build()
}

pub(crate) fn configuration(
    ice_servers: &[IceServer],
    policy: IceTransportPolicy,
) -> RTCConfiguration {
    let servers = ice_servers
        .iter()
        .map(|s| RTCIceServer {
            urls: s.urls.clone(),
            username: s.username.clone().unwrap_or_default(),
            credential: s.credential.clone().unwrap_or_default(),
        })
        .collect();
    let policy = match policy {
        IceTransportPolicy::All => RTCIceTransportPolicy::All,
        IceTransportPolicy::Relay => RTCIceTransportPolicy::Relay,
    };
    RTCConfigurationBuilder::new()
        .with_ice_servers(servers)
        .with_ice_transport_policy(policy)
        .build()
}
