//! One call's media: a webrtc-rs peer connection (ICE, DTLS-SRTP), the pipelines from the
//! LocalStream to RTP and from RTP to the RemoteStream, and its stats.
//!
//! The lifecycle machine decides when media starts and ends; `CallMedia` only does it. It
//! reports back through `MediaEvent`s. Nothing here holds the peer connection from inside
//! its own event handler, so a closed connection is freed (webrtc-rs issue #906).

mod codecs;
mod keyframe;
mod rate;
mod receive;
mod send;
mod setup;
mod stats;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use duet_media::{OpusDecoder, OpusEncoder, VideoEncoderConfig};
use duet_protocol::{IceServer, IceTransportPolicy, Signal};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceCandidateInit,
    RTCPeerConnectionIceEvent, RTCPeerConnectionState, RTCSessionDescription, RTCStatsReportEntry,
    StatsSelector,
};
use webrtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};

pub use codecs::{SoftwareVideoCodecs, VideoCodecs};
pub use stats::{CallStats, CandidateType};

use crate::lifecycle::ConvId;
use crate::media::{LocalStream, RemoteStream, Sending};
use crate::sync::lock;
use crate::task::TaskHandle;
use rate::RateControl;
use send::{AudioSendState, VideoSendState};
use stats::Snapshot;

/// Where a call's media binds its UDP sockets, and which video codecs it uses.
#[derive(Clone)]
pub struct MediaConfig {
    /// Local addresses for ICE host candidates. `0.0.0.0:0` is every interface but loopback
    /// (webrtc-rs skips loopback for a wildcard); tests on one machine use `127.0.0.1:0`.
    pub bind_addresses: Vec<String>,
    pub video_codecs: Arc<dyn VideoCodecs>,
}

impl std::fmt::Debug for MediaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaConfig").field("bind_addresses", &self.bind_addresses).finish()
    }
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            bind_addresses: vec!["0.0.0.0:0".into()],
            video_codecs: Arc::new(SoftwareVideoCodecs),
        }
    }
}

impl MediaConfig {
    /// Loopback only: for tests and demos where both peers run on this machine.
    pub fn loopback() -> Self {
        MediaConfig { bind_addresses: vec!["127.0.0.1:0".into()], ..Default::default() }
    }
}

/// What a call's media tells the engine.
#[derive(Debug)]
pub(crate) enum MediaEvent {
    /// A signal for the peer: a local ICE candidate, or what this side sends.
    LocalSignal(ConvId, Signal),
    /// The peer changed what it sends (camera off, mute).
    RemoteSending(ConvId, Sending),
    /// The first remote track started.
    Stream(ConvId, Arc<RemoteStream>),
    /// The connection failed (ICE or DTLS).
    Failed(ConvId, String),
}

pub(crate) struct CallMedia {
    conv: ConvId,
    events: mpsc::UnboundedSender<MediaEvent>,
    pc: Arc<dyn PeerConnection>,
    remote: Arc<RemoteStream>,
    video: Option<Arc<VideoSendState>>,
    audio: Option<Arc<AudioSendState>>,
    remote_described: watch::Sender<bool>,
    candidates: mpsc::UnboundedSender<RTCIceCandidateInit>,
    tasks: Arc<Mutex<Vec<TaskHandle>>>,
    last_snapshot: Mutex<Option<Snapshot>>,
    /// Sender tasks end when this is dropped (they wait on it for the connection).
    _connected: watch::Receiver<bool>,
}

/// Everything a new call's media needs to know.
pub(crate) struct MediaParams {
    pub conv: ConvId,
    pub call_id: String,
    pub local: Arc<LocalStream>,
    pub ice_servers: Vec<IceServer>,
    pub policy: IceTransportPolicy,
    pub config: MediaConfig,
    pub events: mpsc::UnboundedSender<MediaEvent>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct MediaError(String);

impl MediaError {
    pub(crate) fn new(why: &str) -> Self {
        MediaError(why.to_owned())
    }
}

impl From<webrtc::error::Error> for MediaError {
    fn from(e: webrtc::error::Error) -> Self {
        MediaError(e.to_string())
    }
}

impl From<duet_media::CodecError> for MediaError {
    fn from(e: duet_media::CodecError) -> Self {
        MediaError(format!("codec: {e}"))
    }
}

impl CallMedia {
    pub(crate) async fn new(p: MediaParams) -> Result<CallMedia, MediaError> {
        let (media_engine, registry) = setup::media_engine()?;
        let (connected_tx, connected) = watch::channel(false);
        let remote = RemoteStream::new(p.call_id.clone());
        let tasks = Arc::new(Mutex::new(Vec::new()));
        let handler = Arc::new(Handler {
            conv: p.conv,
            events: p.events.clone(),
            connected: connected_tx,
            remote: Arc::clone(&remote),
            tasks: Arc::clone(&tasks),
            announced: AtomicBool::new(false),
            video_codecs: Arc::clone(&p.config.video_codecs),
        });
        let pc: Arc<dyn PeerConnection> = Arc::new(
            PeerConnectionBuilder::new()
                .with_configuration(setup::configuration(&p.ice_servers, p.policy))
                .with_media_engine(media_engine)
                .with_setting_engine(setup::setting_engine())
                .with_interceptor_registry(registry)
                .with_handler(handler)
                .with_udp_addrs(p.config.bind_addresses.clone())
                .build()
                .await?,
        );

        let mut spawned = Vec::new();
        let constraints = p.local.constraints().clone();
        // Our own stream id: the peer's tracks belong to the same call but are not ours.
        let stream_id = format!("duet-{}", uuid::Uuid::new_v4().simple());
        let video = match &constraints.video {
            Some(v) => {
                let track = send::new_track(RtpCodecKind::Video, setup::h264(), &stream_id)?;
                let sender = pc.add_track(Arc::clone(&track) as Arc<dyn TrackLocal>).await?;
                let encoder = p.config.video_codecs.encoder(VideoEncoderConfig {
                    width: v.width,
                    height: v.height,
                    fps: v.fps as f32,
                    max_bitrate_bps: v.max_bitrate_bps,
                })?;
                let state = Arc::new(VideoSendState::default());
                spawned.push(TaskHandle::spawn(send::send_video(
                    track,
                    sender,
                    Arc::clone(&p.local),
                    encoder,
                    connected.clone(),
                    Arc::clone(&state),
                    v.fps,
                )));
                spawned.push(TaskHandle::spawn(control_rate(
                    Arc::downgrade(&pc),
                    Arc::clone(&state),
                    RateControl::new(v.max_bitrate_bps),
                )));
                Some(state)
            }
            None => None,
        };
        let audio = if constraints.audio {
            let track = send::new_track(RtpCodecKind::Audio, setup::opus(), &stream_id)?;
            let sender = pc.add_track(Arc::clone(&track) as Arc<dyn TrackLocal>).await?;
            let state = Arc::new(AudioSendState::default());
            spawned.push(TaskHandle::spawn(send::send_audio(
                track,
                sender,
                p.local.subscribe_audio(),
                Box::new(OpusEncoder::new(32_000)?),
                connected.clone(),
                Arc::clone(&state),
            )));
            Some(state)
        } else {
            None
        };

        // Remote candidates can arrive before the remote description (a callee hears the
        // caller's while it rings); webrtc-rs refuses them until then, so they wait here.
        let (remote_described, mut described) = watch::channel(false);
        let (candidates, mut incoming) = mpsc::unbounded_channel::<RTCIceCandidateInit>();
        let weak = Arc::downgrade(&pc);
        spawned.push(TaskHandle::spawn(async move {
            if described.wait_for(|d| *d).await.is_err() {
                return;
            }
            while let Some(c) = incoming.recv().await {
                let Some(pc) = weak.upgrade() else { return };
                if let Err(e) = pc.add_ice_candidate(c).await {
                    tracing::debug!("remote candidate refused: {e}");
                }
            }
        }));
        spawned.push(TaskHandle::spawn(tell_what_is_sent(
            p.conv,
            p.local.watch_sending(),
            connected.clone(),
            p.events.clone(),
        )));
        lock(&tasks).extend(spawned);
        Ok(CallMedia {
            conv: p.conv,
            events: p.events.clone(),
            pc,
            remote,
            video,
            audio,
            remote_described,
            candidates,
            tasks,
            // The first `stats()` reports rates since the call's media began.
            last_snapshot: Mutex::new(Some(Snapshot {
                at: Instant::now(),
                bytes_sent: 0,
                bytes_received: 0,
                frames_sent: 0,
                frames_decoded: 0,
            })),
            _connected: connected,
        })
    }

    /// Creates and applies the offer; returns its SDP for the invite.
    pub(crate) async fn offer(&self) -> Result<String, MediaError> {
        // An offer has m-lines only for what it sends: a caller without a camera or a
        // microphone must still ask for the callee's, or it never gets them.
        let unsent = [
            (self.video.is_none(), RtpCodecKind::Video),
            (self.audio.is_none(), RtpCodecKind::Audio),
        ];
        for (_, kind) in unsent.into_iter().filter(|(missing, _)| *missing) {
            let receive_only = RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                streams: Vec::new(),
                send_encodings: Vec::new(),
            };
            self.pc.add_transceiver_from_kind(kind, Some(receive_only)).await?;
        }
        let offer = self.pc.create_offer(None).await?;
        self.pc.set_local_description(offer.clone()).await?;
        Ok(offer.sdp)
    }

    /// Applies the caller's offer and answers it; returns the answer's SDP for the accept.
    pub(crate) async fn answer(&self, offer: String) -> Result<String, MediaError> {
        self.pc.set_remote_description(RTCSessionDescription::offer(offer)?).await?;
        let _ = self.remote_described.send(true);
        let answer = self.pc.create_answer(None).await?;
        self.pc.set_local_description(answer.clone()).await?;
        Ok(answer.sdp)
    }

    /// Applies the callee's answer.
    pub(crate) async fn accept_answer(&self, answer: String) -> Result<(), MediaError> {
        self.pc.set_remote_description(RTCSessionDescription::answer(answer)?).await?;
        let _ = self.remote_described.send(true);
        Ok(())
    }

    /// A signal from the peer: candidates go to ICE (once it can take them).
    pub(crate) fn remote_signal(&self, signal: Signal) {
        match signal {
            Signal::Candidate { candidate, sdp_mid, sdp_mline_index } => {
                let init = RTCIceCandidateInit {
                    candidate,
                    sdp_mid,
                    sdp_mline_index,
                    ..Default::default()
                };
                let _ = self.candidates.send(init);
            }
            Signal::EndOfCandidates => {}
            Signal::Description { .. } => {
                tracing::debug!("renegotiation is not supported; ignored")
            }
            Signal::Media { video, audio } => {
                let sending = Sending { video, audio };
                if self.remote.set_sending(sending) {
                    let _ = self.events.send(MediaEvent::RemoteSending(self.conv, sending));
                }
            }
        }
    }

    pub(crate) fn remote_stream(&self) -> Arc<RemoteStream> {
        Arc::clone(&self.remote)
    }

    pub(crate) async fn stats(&self) -> CallStats {
        let report = self.pc.get_stats(Instant::now(), StatsSelector::None).await;
        let mut s = CallStats::default();
        stats::read_report(&report, &mut s);
        if let Some(v) = &self.video {
            s.sent_width = v.width.load(Ordering::Relaxed);
            s.sent_height = v.height.load(Ordering::Relaxed);
            s.frames_sent = v.frames_sent.load(Ordering::Relaxed);
            s.target_bitrate_bps = v.target_bps.load(Ordering::Relaxed);
        }
        if let Some((w, h)) = self.remote.video_size() {
            s.received_width = w;
            s.received_height = h;
        }
        s.frames_decoded = self.remote.frames_decoded();
        s.audio_frames_decoded = self.remote.audio_frames_decoded();
        s.audio_packets_sent =
            self.audio.as_ref().map_or(0, |a| a.packets_sent.load(Ordering::Relaxed));
        let now = Snapshot {
            at: Instant::now(),
            bytes_sent: s.bytes_sent,
            bytes_received: s.bytes_received,
            frames_sent: s.frames_sent,
            frames_decoded: s.frames_decoded,
        };
        let mut last = lock(&self.last_snapshot);
        if let Some(before) = last.as_ref() {
            stats::rates(&mut s, before, &now);
        }
        *last = Some(now);
        s
    }

    /// Stops every pipeline and closes the peer connection, releasing its sockets.
    pub(crate) async fn close(&self) {
        lock(&self.tasks).clear();
        if let Err(e) = self.pc.close().await {
            tracing::debug!("closing the peer connection: {e}");
        }
    }
}

/// Every second, feeds the receiver's loss report and estimate to the rate control.
async fn control_rate(
    pc: std::sync::Weak<dyn PeerConnection>,
    state: Arc<VideoSendState>,
    mut rate: RateControl,
) {
    state.target_bps.store(rate.target(), Ordering::Relaxed);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let Some(pc) = pc.upgrade() else { return };
        let report = pc.get_stats(Instant::now(), StatsSelector::None).await;
        drop(pc);
        let lost = report.iter().find_map(|e| match e {
            RTCStatsReportEntry::RemoteInboundRtp(r)
                if r.received_rtp_stream_stats.rtp_stream_stats.kind == RtpCodecKind::Video =>
            {
                Some(r.fraction_lost)
            }
            _ => None,
        });
        let Some(lost) = lost else { continue };
        let remb = Some(state.remb_bps.load(Ordering::Relaxed));
        state.target_bps.store(rate.on_report(lost, remb), Ordering::Relaxed);
    }
}

/// Tells the peer what this side sends whenever that changes, starting once media flows
/// (the call is established then, so the signal has somewhere to go). Nothing is said while
/// it is what a receiver assumes, both kinds.
async fn tell_what_is_sent(
    conv: ConvId,
    mut sending: watch::Receiver<Sending>,
    mut connected: watch::Receiver<bool>,
    events: mpsc::UnboundedSender<MediaEvent>,
) {
    if connected.wait_for(|c| *c).await.is_err() {
        return;
    }
    let mut told = Sending::BOTH;
    loop {
        let now = *sending.borrow_and_update();
        if now != told {
            let signal = Signal::Media { video: now.video, audio: now.audio };
            if events.send(MediaEvent::LocalSignal(conv, signal)).is_err() {
                return;
            }
            told = now;
        }
        if sending.changed().await.is_err() {
            return;
        }
    }
}

struct Handler {
    conv: ConvId,
    events: mpsc::UnboundedSender<MediaEvent>,
    connected: watch::Sender<bool>,
    remote: Arc<RemoteStream>,
    tasks: Arc<Mutex<Vec<TaskHandle>>>,
    announced: AtomicBool,
    video_codecs: Arc<dyn VideoCodecs>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, ev: RTCPeerConnectionIceEvent) {
        if let Ok(init) = ev.candidate.to_json() {
            let signal = Signal::Candidate {
                candidate: init.candidate,
                sdp_mid: init.sdp_mid,
                sdp_mline_index: init.sdp_mline_index,
            };
            let _ = self.events.send(MediaEvent::LocalSignal(self.conv, signal));
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        tracing::debug!(conv = self.conv.0, %state, "peer connection");
        match state {
            RTCPeerConnectionState::Connected => {
                let _ = self.connected.send(true);
            }
            RTCPeerConnectionState::Failed => {
                let _ = self
                    .events
                    .send(MediaEvent::Failed(self.conv, "the media connection failed".into()));
            }
            _ => {}
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let remote = Arc::clone(&self.remote);
        let task = match track.kind().await {
            RtpCodecKind::Video => match self.video_codecs.decoder() {
                Ok(d) => TaskHandle::spawn(receive::receive_video(track, remote, d)),
                Err(e) => return self.fail(format!("no video decoder: {e}")),
            },
            _ => match OpusDecoder::new() {
                Ok(d) => TaskHandle::spawn(receive::receive_audio(track, remote, Box::new(d))),
                Err(e) => return self.fail(format!("no audio decoder: {e}")),
            },
        };
        lock(&self.tasks).push(task);
        if !self.announced.swap(true, Ordering::Relaxed) {
            let _ = self.events.send(MediaEvent::Stream(self.conv, Arc::clone(&self.remote)));
        }
    }
}

impl Handler {
    fn fail(&self, why: String) {
        let _ = self.events.send(MediaEvent::Failed(self.conv, why));
    }
}
