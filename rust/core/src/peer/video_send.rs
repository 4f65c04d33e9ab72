//! From a LocalStream to RTP, for video: the sending pipeline owns the encoder, the rate
//! control and the keyframe state on its own thread; async tasks around it only move
//! frames in, feedback in, and encoded units out to webrtc-rs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use duet_media::{EncodedVideo, VideoEncoder, VideoFrame};
use rtc::media::Sample;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::sync::{broadcast, mpsc, watch};
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::peer_connection::{PeerConnection, RTCStatsReportEntry, StatsSelector};
use webrtc::rtp_transceiver::RtpSender;

use super::keyframe::is_for_encoder;
use super::path::PathSignal;
use super::pipeline::{self, PipelineInput};
use super::rate::RateControl;
use super::track::{binding, duration_for_ticks};
use crate::streams::LocalStream;
use crate::task::TaskHandle;

/// What the video sending pipeline hears.
pub(crate) enum VideoSendInput {
    Frame(Arc<VideoFrame>),
    /// The receiver asked for a keyframe (PLI or FIR).
    KeyframeRequest,
    /// The receiver's bitrate estimate (REMB).
    Estimate(u32),
    /// The fraction of video packets the receiver lost, from its latest report.
    LossReport(f64),
    /// What transport-wide feedback says of the path: its queue and delivered rate.
    Path(PathSignal),
}

/// What the video sending pipeline has done, for stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct VideoSendStats {
    pub frames_sent: u64,
    pub keyframes_sent: u64,
    pub width: u32,
    pub height: u32,
    /// The bitrate the encoder aims at now.
    pub target_bps: u32,
}

/// Units the pipeline may have encoded ahead of the task that writes them to the track.
const ENCODED_QUEUE: usize = 8;

/// One call's video sending: its pipeline thread and the tasks that feed and drain it.
/// Dropping it stops them all.
pub(crate) struct VideoSend {
    pub stats: watch::Receiver<VideoSendStats>,
    _tasks: Vec<TaskHandle>,
}

/// Everything the video sender needs from the peer connection.
pub(crate) struct VideoSendParts<E> {
    pub track: Arc<TrackLocalStaticSample>,
    pub sender: Arc<dyn RtpSender>,
    pub pc: std::sync::Weak<dyn PeerConnection>,
    pub local: Arc<LocalStream>,
    /// Makes the encoder, on the pipeline's thread; it reports its own failure, and the
    /// pipeline ends if it gives none.
    pub encoder: E,
    /// Whether both sides agreed to the call: the first frame is encoded from then on.
    pub agreed: watch::Receiver<bool>,
    /// Connected and agreed: what is encoded is sent from then on.
    pub connected: watch::Receiver<bool>,
    pub path: watch::Receiver<Option<PathSignal>>,
    pub fps: u32,
    pub max_bitrate_bps: u32,
}

impl VideoSend {
    pub(crate) fn start<E>(p: VideoSendParts<E>) -> std::io::Result<VideoSend>
    where
        E: FnOnce() -> Option<Box<dyn VideoEncoder>> + Send + 'static,
    {
        let (stats_tx, stats) = watch::channel(VideoSendStats::default());
        let (encoded_tx, encoded) = mpsc::channel(ENCODED_QUEUE);
        let rate = RateControl::new(p.max_bitrate_bps);
        let make = p.encoder;
        let make = move || make().map(|encoder| Encoding::new(encoder, rate, stats_tx));
        let input = pipeline::spawn_made("duet-video-send", make, move |encoding, batch| {
            encoding.run(batch, &encoded_tx);
            None
        })?;
        // Subscribed now, so frames pushed while connecting wait for the connection.
        let frames = p.local.subscribe_video();
        let tasks = vec![
            TaskHandle::spawn(feed_frames(
                p.local,
                frames,
                p.agreed,
                p.connected.clone(),
                input.clone(),
            )),
            TaskHandle::spawn(write_units(p.track.clone(), p.sender, encoded, p.connected, p.fps)),
            TaskHandle::spawn(watch_rtcp(p.track, input.clone())),
            TaskHandle::spawn(watch_path(p.path, input.clone())),
            TaskHandle::spawn(report_loss(p.pc, input)),
        ];
        Ok(VideoSend { stats, _tasks: tasks })
    }
}

/// The pipeline's state: one owner, on its thread.
struct Encoding {
    encoder: Box<dyn VideoEncoder>,
    rate: RateControl,
    applied_bps: u32,
    keyframe_requested: bool,
    /// The receiver's latest estimate (REMB); 0 if it sends none.
    latest_remb_bps: u32,
    last_sent_us: Option<u64>,
    stats: VideoSendStats,
    publish: watch::Sender<VideoSendStats>,
}

impl Encoding {
    fn new(
        encoder: Box<dyn VideoEncoder>,
        rate: RateControl,
        publish: watch::Sender<VideoSendStats>,
    ) -> Self {
        let stats = VideoSendStats { target_bps: rate.target(), ..Default::default() };
        publish.send_replace(stats);
        Encoding {
            encoder,
            rate,
            applied_bps: 0,
            keyframe_requested: false,
            latest_remb_bps: 0,
            last_sent_us: None,
            stats,
            publish,
        }
    }

    /// One turn: feedback first, then only the newest frame (older ones are stale by now).
    fn run(&mut self, batch: Vec<VideoSendInput>, out: &mpsc::Sender<(EncodedVideo, u64)>) {
        let mut newest = None;
        for input in batch {
            match input {
                VideoSendInput::Frame(f) => newest = Some(f),
                VideoSendInput::KeyframeRequest => self.keyframe_requested = true,
                VideoSendInput::Estimate(bps) => self.latest_remb_bps = bps,
                VideoSendInput::LossReport(lost) => {
                    let remb = Some(self.latest_remb_bps);
                    self.stats.target_bps = self.rate.on_report(lost, remb);
                }
                VideoSendInput::Path(signal) => self.stats.target_bps = self.rate.on_path(signal),
            }
        }
        if let Some(frame) = newest {
            self.encode(&frame, out);
        }
        self.publish.send_replace(self.stats);
    }

    fn encode(&mut self, frame: &VideoFrame, out: &mpsc::Sender<(EncodedVideo, u64)>) {
        // A frame that was buffered before a newer one was sent is older: skip it.
        if self.last_sent_us.is_some_and(|t| frame.timestamp_us <= t) {
            return;
        }
        // A target too low for the camera's rate: fewer frames, each worth looking at. (A
        // little under the interval, so a 30 fps camera's jitter does not halve the rate.)
        let too_soon = |min: Duration| {
            let min_us = u64::try_from(min.as_micros() * 9 / 10).unwrap_or(u64::MAX);
            self.last_sent_us.is_some_and(|t| frame.timestamp_us - t < min_us)
        };
        if !self.keyframe_requested && self.rate.min_frame_interval().is_some_and(too_soon) {
            return;
        }
        self.last_sent_us = Some(frame.timestamp_us);
        let target = self.stats.target_bps;
        if target != 0 && target != self.applied_bps {
            self.encoder.set_target_bitrate(target);
            self.applied_bps = target;
        }
        let keyframe = std::mem::take(&mut self.keyframe_requested);
        // Turned upright here, so every receiver, browsers included, needs no CVO extension.
        let upright;
        let frame = if frame.rotation == duet_media::Rotation::Deg0 {
            frame
        } else {
            upright = frame.upright();
            &upright
        };
        // Timed for the first frame's log line only: nothing extra per frame after it.
        let first = (self.stats.frames_sent == 0).then(Instant::now);
        let encoded = match self.encoder.encode(frame, keyframe) {
            Ok(Some(e)) => e,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!("video encode failed: {e}");
                return;
            }
        };
        if let Some(started) = first {
            tracing::debug!(
                bytes = encoded.data.len(),
                took = ?started.elapsed(),
                "first video frame encoded"
            );
        }
        self.stats.frames_sent += 1;
        self.stats.keyframes_sent += u64::from(encoded.keyframe);
        self.stats.width = frame.width;
        self.stats.height = frame.height;
        // The writer is gone only when the call is ending.
        let _ = out.blocking_send((encoded, frame.timestamp_us));
    }
}

/// Moves the camera's frames into the pipeline: one as soon as the call is agreed (the
/// newest, rather than waiting up to a frame interval for the camera's next one), so that
/// its encode, a keyframe's and the slowest, runs while ICE and DTLS finish rather than
/// after; the frames after it once the connection is up. The writer holds what is encoded
/// until then.
async fn feed_frames(
    local: Arc<LocalStream>,
    mut frames: broadcast::Receiver<Arc<VideoFrame>>,
    mut agreed: watch::Receiver<bool>,
    mut connected: watch::Receiver<bool>,
    input: PipelineInput<VideoSendInput>,
) {
    if agreed.wait_for(|a| *a).await.is_err() {
        return;
    }
    let mut fed_one = false;
    if let Some(latest) = local.latest_video() {
        pipeline::offer(&input, VideoSendInput::Frame(latest));
        fed_one = true;
        // What queued until now is that frame or older: sending it after would go back.
        while let Err(broadcast::error::TryRecvError::Lagged(_)) | Ok(_) = frames.try_recv() {}
    }
    loop {
        // `connected` never goes back (it is connected and agreed, not the path's state).
        if fed_one && connected.wait_for(|c| *c).await.is_err() {
            return;
        }
        let frame = match frames.recv().await {
            Ok(f) => f,
            // A lagging receiver skips to the newest frame, which is what a live encoder wants.
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if !pipeline::offer(&input, VideoSendInput::Frame(frame)) {
            return;
        }
        fed_one = true;
    }
}

/// Writes what the pipeline encoded to the track, once negotiation has bound it.
async fn write_units(
    track: Arc<TrackLocalStaticSample>,
    sender: Arc<dyn RtpSender>,
    mut encoded: mpsc::Receiver<(EncodedVideo, u64)>,
    mut connected: watch::Receiver<bool>,
    fps: u32,
) {
    if connected.wait_for(|c| *c).await.is_err() {
        return;
    }
    let Some((ssrc, pt)) = binding(&track, &sender).await else {
        tracing::warn!("video track never bound; sending nothing");
        return;
    };
    let default_ticks = 90_000 / u64::from(fps.max(1));
    let mut last_ticks: Option<u64> = None;
    while let Some((unit, timestamp_us)) = encoded.recv().await {
        let ticks = timestamp_us * 9 / 100;
        let delta = match last_ticks {
            Some(last) if ticks > last => ticks - last,
            _ => default_ticks,
        };
        last_ticks = Some(ticks);
        let sample = Sample {
            data: Bytes::from(unit.data),
            duration: duration_for_ticks(delta, 90_000),
            ..Sample::new(Instant::now())
        };
        if let Err(e) = track.sample_writer(ssrc, pt).write_sample(&sample).await {
            tracing::debug!("video write stopped: {e}");
            return;
        }
    }
}

/// Passes the receiver's keyframe requests and bitrate estimates to the pipeline.
async fn watch_rtcp(track: Arc<TrackLocalStaticSample>, input: PipelineInput<VideoSendInput>) {
    loop {
        match track.poll().await {
            Some(TrackLocalEvent::OnRtcpPacket(pkts)) => {
                for p in pkts.iter().filter(|p| is_for_encoder(p.as_ref())) {
                    let msg = match p.as_any().downcast_ref::<ReceiverEstimatedMaximumBitrate>() {
                        Some(remb) => VideoSendInput::Estimate(bps_of(f64::from(remb.bitrate))),
                        None => VideoSendInput::KeyframeRequest,
                    };
                    if !pipeline::offer(&input, msg) {
                        return;
                    }
                }
            }
            Some(_) => {}
            // Not bound (yet, or any more): poll answers at once, so wait a little.
            None => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Passes each new signal of the path (several a second, as feedback arrives) to the
/// pipeline.
async fn watch_path(
    mut path: watch::Receiver<Option<PathSignal>>,
    input: PipelineInput<VideoSendInput>,
) {
    while path.changed().await.is_ok() {
        let Some(signal) = *path.borrow_and_update() else { continue };
        if !pipeline::offer(&input, VideoSendInput::Path(signal)) {
            return;
        }
    }
}

/// How often the receiver's latest video loss report is read (it sends one every second
/// or so).
const LOSS_EVERY: Duration = Duration::from_secs(1);

/// Passes the receiver's latest video loss report to the pipeline.
async fn report_loss(
    pc: std::sync::Weak<dyn PeerConnection>,
    input: PipelineInput<VideoSendInput>,
) {
    let mut tick = tokio::time::interval(LOSS_EVERY);
    loop {
        tick.tick().await;
        let Some(pc) = pc.upgrade() else { return };
        let report = pc.get_stats(Instant::now(), StatsSelector::None).await;
        drop(pc);
        let lost = report.iter().find_map(|entry| match entry {
            RTCStatsReportEntry::RemoteInboundRtp(r)
                if r.received_rtp_stream_stats.rtp_stream_stats.kind == RtpCodecKind::Video =>
            {
                Some(r.fraction_lost)
            }
            _ => None,
        });
        if lost.is_some_and(|l| !pipeline::offer(&input, VideoSendInput::LossReport(l))) {
            return;
        }
    }
}

/// REMB and the stats carry estimates as floats. A float-to-int `as` saturates (and makes
/// NaN 0), which is the conversion wanted here: past u32 is no limit at all.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn bps_of(estimate: f64) -> u32 {
    estimate as u32
}
