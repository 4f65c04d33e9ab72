//! Local tracks: how one is made, and what webrtc-rs needs to write samples to it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::Track;
use webrtc::rtp_transceiver::RtpSender;

/// A track added to a peer connection, and its sender.
pub(crate) struct Added {
    pub track: Arc<TrackLocalStaticSample>,
    pub sender: Arc<dyn RtpSender>,
}

/// Makes a track of `kind` and adds it to `pc`.
pub(crate) async fn add(
    pc: &Arc<dyn webrtc::peer_connection::PeerConnection>,
    kind: RtpCodecKind,
    codec: RTCRtpCodec,
    stream_id: &str,
) -> Result<Added, webrtc::error::Error> {
    let track = new_track(kind, codec, stream_id)?;
    let sender = pc
        .add_track(Arc::clone(&track) as Arc<dyn webrtc::media_stream::track_local::TrackLocal>)
        .await?;
    Ok(Added { track, sender })
}

/// A track to send. Its id is random, not derived from the call: webrtc-rs routes inbound
/// RTCP by track id, the remote track first, so a local track named like the peer's would
/// never hear its own keyframe requests.
pub(crate) fn new_track(
    kind: RtpCodecKind,
    codec: RTCRtpCodec,
    stream_id: &str,
) -> Result<Arc<TrackLocalStaticSample>, webrtc::error::Error> {
    let id = uuid::Uuid::new_v4();
    // Any 32 bits of a random id make a random SSRC.
    #[allow(clippy::cast_possible_truncation)]
    let ssrc = id.as_u128() as u32;
    let track = MediaStreamTrack::new(
        stream_id.to_owned(),
        format!("{kind}-{}", id.simple()),
        format!("duet-{kind}"),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec,
            active: true,
            ..Default::default()
        }],
    );
    Ok(Arc::new(TrackLocalStaticSample::new(Instant::now(), track)?))
}

/// The SSRC and payload type a bound track writes with; known only once negotiated.
pub(crate) async fn binding(
    track: &TrackLocalStaticSample,
    sender: &Arc<dyn RtpSender>,
) -> Option<(u32, u8)> {
    let params = sender.get_parameters().await.ok()?;
    let pt = params.rtp_parameters.codecs.first()?.payload_type;
    let ssrc = *track.ssrcs().await.first()?;
    Some((ssrc, pt))
}

/// The RTP duration that advances a `clock` Hz clock by exactly `ticks`: webrtc-rs
/// truncates `duration × clock rate`, so round the duration up, or 33.33 ms becomes 2999.
pub(crate) fn duration_for_ticks(ticks: u64, clock: u64) -> Duration {
    Duration::from_nanos((ticks * 1_000_000_000).div_ceil(clock))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    fn rtp_durations_advance_the_clock_exactly() {
        for ticks in [1, 2999, 3000, 3003, 90_000] {
            let d = duration_for_ticks(ticks, 90_000);
            assert_eq!((d.as_secs_f64() * 90_000.0) as u64, ticks);
        }
        assert_eq!((duration_for_ticks(960, 48_000).as_secs_f64() * 48_000.0) as u64, 960);
    }
}
