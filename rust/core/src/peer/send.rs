//! From a LocalStream to RTP: encode what the platform pushed and hand it to webrtc-rs.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use duet_media::{AudioChunker, AudioEncoder, AudioFrame, VideoEncoder, VideoFrame};
use rtc::media::Sample;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::{broadcast, watch};
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::Track;
use webrtc::rtp_transceiver::RtpSender;

use super::keyframe::is_for_encoder;
use crate::media::LocalStream;
use crate::task::TaskHandle;

/// What the receiving side and the congestion controller ask of the video encoder, and
/// what it has done.
#[derive(Default)]
pub(crate) struct VideoSendState {
    pub keyframe_requested: AtomicBool,
    /// The bitrate the encoder should aim at; 0 until the rate control has an opinion.
    pub target_bps: AtomicU32,
    /// The receiver's latest estimate (REMB); 0 if it sends none.
    pub remb_bps: AtomicU32,
    pub frames_sent: AtomicU64,
    pub keyframes_sent: AtomicU64,
    pub width: AtomicU32,
    pub height: AtomicU32,
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

/// The payload type and SSRC a bound track writes with; known only once negotiated.
async fn binding(track: &TrackLocalStaticSample, sender: &Arc<dyn RtpSender>) -> Option<(u32, u8)> {
    let params = sender.get_parameters().await.ok()?;
    let pt = params.rtp_parameters.codecs.first()?.payload_type;
    let ssrc = *track.ssrcs().await.first()?;
    Some((ssrc, pt))
}

/// The RTP duration that advances the 90 kHz clock by exactly `ticks`: webrtc-rs
/// truncates `duration × clock rate`, so round the duration up, or 33.33 ms becomes 2999.
fn duration_for_ticks(ticks: u64, clock: u64) -> Duration {
    Duration::from_nanos((ticks * 1_000_000_000).div_ceil(clock))
}

pub(crate) async fn send_video(
    track: Arc<TrackLocalStaticSample>,
    sender: Arc<dyn RtpSender>,
    local: Arc<LocalStream>,
    mut encoder: Box<dyn VideoEncoder>,
    mut connected: watch::Receiver<bool>,
    state: Arc<VideoSendState>,
    fps: u32,
) {
    // Subscribed before the connection is up, so frames pushed meanwhile wait here.
    let mut frames = local.subscribe_video();
    if connected.wait_for(|c| *c).await.is_err() {
        return;
    }
    let Some((ssrc, pt)) = binding(&track, &sender).await else {
        tracing::warn!("video track never bound; sending nothing");
        return;
    };
    let _rtcp = TaskHandle::spawn(watch_rtcp(Arc::clone(&track), Arc::clone(&state)));
    let default_ticks = 90_000 / u64::from(fps.max(1));
    let mut last_ticks: Option<u64> = None;
    let mut applied_bps = 0;
    // The camera's newest frame goes first, rather than waiting for its next one.
    let mut first = local.latest_video();
    let mut last_sent_us: Option<u64> = None;
    loop {
        let frame = match first.take() {
            Some(f) => f,
            None => match frames.recv().await {
                Ok(f) => f,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => break,
            },
        };
        // A frame buffered before the first one was taken is older: skip it.
        if last_sent_us.is_some_and(|t| frame.timestamp_us <= t) {
            continue;
        }
        last_sent_us = Some(frame.timestamp_us);
        let target = state.target_bps.load(Ordering::Relaxed);
        if target != 0 && target != applied_bps {
            encoder.set_target_bitrate(target);
            applied_bps = target;
        }
        let keyframe = state.keyframe_requested.swap(false, Ordering::Relaxed);
        // Turn the pixels upright so every receiver, browsers included, needs no CVO extension.
        let upright;
        let frame: &VideoFrame = if frame.rotation == duet_media::Rotation::Deg0 {
            &frame
        } else {
            upright = frame.upright();
            &upright
        };
        let encoded = match encoder.encode(frame, keyframe) {
            Ok(Some(e)) => e,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!("video encode failed: {e}");
                continue;
            }
        };
        let ticks = frame.timestamp_us * 9 / 100;
        let delta = match last_ticks {
            Some(last) if ticks > last => ticks - last,
            _ => default_ticks,
        };
        last_ticks = Some(ticks);
        let sample = Sample {
            data: Bytes::from(encoded.data),
            duration: duration_for_ticks(delta, 90_000),
            ..Sample::new(Instant::now())
        };
        if let Err(e) = track.sample_writer(ssrc, pt).write_sample(&sample).await {
            tracing::debug!("video write stopped: {e}");
            break;
        }
        state.frames_sent.fetch_add(1, Ordering::Relaxed);
        if encoded.keyframe {
            state.keyframes_sent.fetch_add(1, Ordering::Relaxed);
        }
        state.width.store(frame.width, Ordering::Relaxed);
        state.height.store(frame.height, Ordering::Relaxed);
    }
}

/// Turns the receiver's keyframe requests and bitrate estimates into encoder settings.
async fn watch_rtcp(track: Arc<TrackLocalStaticSample>, state: Arc<VideoSendState>) {
    loop {
        match track.poll().await {
            Some(TrackLocalEvent::OnRtcpPacket(pkts)) => {
                for p in pkts.iter().filter(|p| is_for_encoder(p.as_ref())) {
                    match p.as_any().downcast_ref::<ReceiverEstimatedMaximumBitrate>() {
                        Some(remb) => state.remb_bps.store(remb.bitrate as u32, Ordering::Relaxed),
                        None => state.keyframe_requested.store(true, Ordering::Relaxed),
                    }
                }
            }
            Some(_) => {}
            // Not bound (yet, or any more): poll answers at once, so wait a little.
            None => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

#[derive(Default)]
pub(crate) struct AudioSendState {
    pub packets_sent: AtomicU64,
}

pub(crate) async fn send_audio(
    track: Arc<TrackLocalStaticSample>,
    sender: Arc<dyn RtpSender>,
    mut frames: broadcast::Receiver<Arc<AudioFrame>>,
    mut encoder: Box<dyn AudioEncoder>,
    mut connected: watch::Receiver<bool>,
    state: Arc<AudioSendState>,
) {
    if connected.wait_for(|c| *c).await.is_err() {
        return;
    }
    let Some((ssrc, pt)) = binding(&track, &sender).await else {
        tracing::warn!("audio track never bound; sending nothing");
        return;
    };
    let mut chunker = AudioChunker::new();
    let packet_time = duration_for_ticks(960, 48_000);
    loop {
        let frame = match frames.recv().await {
            Ok(f) => f,
            // Lost audio is lost; the receiver conceals it.
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => break,
        };
        let Some(chunk) = chunker.push(&frame) else { continue };
        let packet = match encoder.encode(&chunk) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("audio encode failed: {e}");
                continue;
            }
        };
        let sample = Sample {
            data: Bytes::from(packet),
            duration: packet_time,
            ..Sample::new(Instant::now())
        };
        if track.sample_writer(ssrc, pt).write_sample(&sample).await.is_err() {
            break;
        }
        state.packets_sent.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_durations_advance_the_clock_exactly() {
        for ticks in [1, 2999, 3000, 3003, 90_000] {
            let d = duration_for_ticks(ticks, 90_000);
            assert_eq!((d.as_secs_f64() * 90_000.0) as u64, ticks);
        }
        assert_eq!((duration_for_ticks(960, 48_000).as_secs_f64() * 48_000.0) as u64, 960);
    }
}
