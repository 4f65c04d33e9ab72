//! How Duet's peer connections are built: codecs, interceptors, ICE timing.

use std::time::Duration;

use duet_protocol::{IceServer, IceTransportPolicy};
use rtc::ice::candidate::candidate_pair::retry_after;
use rtc::interceptor::{CongestionControlBuilder, Gcc, NackGeneratorBuilder, Registry, Slot};
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_rtcp_reports, configure_simulcast_extension_headers, configure_twcc,
};
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_H264, MIME_TYPE_OPUS};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind, TYPE_RTCP_FB_NACK,
};
use tokio::sync::watch;
use webrtc::peer_connection::{
    MediaEngine, RTCConfiguration, RTCConfigurationBuilder, RTCIceServer, RTCIceTransportPolicy,
    SettingEngine, SettingEngineBuilder,
};

use super::keyframe::KeyframeRequestForwarder;
use super::nack::BoundedNackResponder;
use super::path::{Estimator, PathSignal};

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

/// The congestion controller's range (bits per second, audio and video together). It
/// starts where webrtc-rs's GCC does; the encoder's own maximum caps what it takes of it.
const ESTIMATE_START_BPS: f64 = 300_000.0;
const ESTIMATE_MIN_BPS: f64 = 40_000.0;
const ESTIMATE_MAX_BPS: f64 = 5_000_000.0;
/// How often missing packets are asked for again, and how many times: together about the
/// longest the receiver's jitter buffer waits (`jitter::MAX_WAIT`).
const NACK_INTERVAL: Duration = Duration::from_millis(40);
const NACKS_PER_PACKET: u16 = 12;

/// H.264 and Opus only, with NACK, PLI, TWCC and sender/receiver reports, plus the
/// interceptor that lets keyframe requests and bitrate estimates reach the encoder.
///
/// webrtc-rs's default set (`register_default_interceptors`), changed where it fails on a
/// real network (issue 11): its NACK responder answers without limit (a retransmission
/// storm on a capped link) and its generator asks for every missing packet forever, so
/// both are bounded here; and it has no congestion controller, so GCC (delay and loss,
/// from transport-wide feedback, which browsers send) estimates the capacity that the
/// retransmission budget (`nack`) follows, with a monitor beside it (`path`) whose queue
/// and delivered rate the encoder's rate control (`rate`) follows. No pacer: it paces at
/// exactly the estimate, and a keyframe would wait behind it.
pub(crate) fn media_engine(
) -> Result<(MediaEngine, Registry, watch::Receiver<Option<PathSignal>>), webrtc::error::Error> {
    let mut me = MediaEngine::default();
    me.register_codec(
        RTCRtpCodecParameters { rtp_codec: h264(), payload_type: PT_H264 },
        RtpCodecKind::Video,
    )?;
    me.register_codec(
        RTCRtpCodecParameters { rtp_codec: opus(), payload_type: PT_OPUS },
        RtpCodecKind::Audio,
    )?;
    for parameter in ["", "pli"] {
        let feedback =
            RTCPFeedback { typ: TYPE_RTCP_FB_NACK.to_owned(), parameter: parameter.to_owned() };
        me.register_feedback(feedback, RtpCodecKind::Video);
    }
    configure_simulcast_extension_headers(&mut me)?;
    let registry = configure_twcc(Registry::new(), &mut me)?;
    let registry = configure_rtcp_reports(registry);
    let generator = NackGeneratorBuilder::new()
        .with_interval(NACK_INTERVAL)
        .with_max_nacks_per_packet(NACKS_PER_PACKET)
        .build();
    let gcc = Gcc::new(ESTIMATE_START_BPS, ESTIMATE_MIN_BPS, ESTIMATE_MAX_BPS);
    let (estimator, path) = Estimator::new(gcc);
    let registry = registry
        .with(Slot::NackGenerator, generator)
        .with(Slot::NackResponder, BoundedNackResponder::default())
        .with(Slot::CongestionControl, CongestionControlBuilder::new(estimator).build());
    // Last in the chain, nearest the application: everything before it has seen the RTCP.
    let registry = registry.with(Slot::from(14_000), KeyframeRequestForwarder::default());
    Ok((me, registry, path))
}

/// How often the ICE agent runs while connecting: a new pair is checked this soon, and a
/// pair that works is nominated, and DTLS started, within a tick of each step (1 ms rather
/// than 5 took 4-5 ms off a loopback call's first frame and 15 off a relayed one's,
/// docs/benchmarks.md). Only while connecting: once connected the agent runs at its
/// keepalive interval, and an unanswered pair's checks are paced whatever the tick
/// (vendor/rtc-ice/DUET.md), so a faster tick sends no more of them; and only for the first
/// 2 s of checking, after which the vendored agent runs at most every 20 ms.
const CHECK_INTERVAL: Duration = Duration::from_millis(1);
/// How long one candidate pair is checked before it is given up (see `setting_engine`).
const PAIR_CHECK_BUDGET: Duration = Duration::from_secs(10);

/// The binding requests one pair sends in `PAIR_CHECK_BUDGET`, as the vendored agent paces
/// an unanswered pair's checks so that they never fill a slow link (vendor/rtc-ice/DUET.md).
fn max_binding_requests() -> u16 {
    let (mut sent, mut at) = (0u16, Duration::ZERO);
    while at < PAIR_CHECK_BUDGET && sent < u16::MAX {
        sent += 1;
        at += retry_after(sent);
    }
    sent
}

/// ICE timing tuned for call setup. webrtc-rs's defaults are for robustness on lossy links
/// and cost a call hundreds of milliseconds (docs/benchmarks.md has the figures):
/// - checks every 200 ms: a pair that could connect in 3 ms waits for the next tick, and
///   DTLS starts only on the tick after ICE connects (so connecting takes up to two
///   intervals: `CHECK_INTERVAL`);
/// - 500 ms / 1 s / 2 s before a server-reflexive / peer-reflexive / relay pair may be
///   nominated, though with trickle ICE the first working pair is routinely peer-reflexive,
///   and under a relay-only policy nothing better can ever come.
///
/// webrtc-rs gives each candidate pair a fixed number of binding requests and never resets
/// the count: its default of 7 at one per 5 ms would give a pair up after about 40 ms, often
/// before the first answer could come back over a 100 ms round trip or before a relay's
/// permission was in place, and a pair given up is never tried again (issue 11: 1 setup in
/// 50 direct and 6 in 50 relay-only failed at 5% loss + 50 ms). So a pair keeps being
/// checked for `PAIR_CHECK_BUDGET`, paced by the vendored agent. The checks stop as soon as
/// a pair is nominated, so on a working network this costs nothing; only pairs that never
/// answer are checked that long.
pub(crate) fn setting_engine() -> SettingEngine {
    let zero = Some(Duration::ZERO);
    SettingEngineBuilder::new()
        .with_ice_connection_attempts(Some(CHECK_INTERVAL), Some(max_binding_requests()))
        .with_host_acceptance_min_wait(zero)
        .with_srflx_acceptance_min_wait(zero)
        .with_prflx_acceptance_min_wait(zero)
        .with_relay_acceptance_min_wait(zero)
        // An ICE restart binds new sockets (following a changed address) and releases the
        // TURN allocations of the old ones, rather than checking again over sockets bound
        // to an address that may be gone (issue 11).
        .with_discard_local_candidates_during_ice_restart(true)
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
