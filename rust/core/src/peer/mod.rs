//! One call's peer connection: webrtc-rs (ICE, DTLS-SRTP), the pipelines from the
//! LocalStream to RTP and from RTP to the RemoteStream, and its stats.
//!
//! The engine decides when a session starts and ends; `PeerSession` only does it, and
//! reports back through `PeerEvent`s. Codec work runs on each pipeline's own thread
//! (`pipeline`), never on the async runtime. Nothing here holds the peer connection from
//! inside its own event handler, so a closed connection is freed (webrtc-rs issue #906).

mod assembler;
mod audio_receive;
mod audio_send;
mod codecs;
mod error;
mod handler;
mod jitter;
mod keyframe;
mod nack;
mod path;
mod pipeline;
mod quality;
mod rate;
mod restart;
mod setup;
mod stats;
mod track;
mod video_receive;
mod video_send;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use duet_media::{CodecError, OpusEncoder, VideoEncoderConfig};
use duet_protocol::{IceServer, IceTransportPolicy, Signal};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::sync::{mpsc, oneshot, watch};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, RTCIceCandidateInit, RTCSessionDescription,
    StatsSelector,
};
use webrtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};

pub use codecs::{SoftwareVideoCodecs, VideoCodecs};
pub(crate) use error::PeerError;
pub use stats::{CallStats, CandidateType};

use crate::errors::MediaKind;
use crate::lifecycle::ConvId;
use crate::streams::{LocalStream, RemoteStream, Sending};
use crate::sync::lock;
use crate::task::TaskHandle;
use audio_send::AudioSend;
use handler::Handler;
use stats::Snapshot;
use video_send::{VideoSend, VideoSendParts};

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

/// What a call's peer session tells the engine.
#[derive(Debug)]
pub(crate) enum PeerEvent {
    /// A signal for the peer: a local ICE candidate, or what this side sends.
    LocalSignal(ConvId, Signal),
    /// The peer changed what it sends (camera off, mute).
    RemoteSending(ConvId, Sending),
    /// The first remote track started.
    Stream(ConvId, Arc<RemoteStream>),
    /// The session failed (ICE, DTLS, codecs).
    Failed(ConvId, PeerError),
    /// After the connection first came up: its ICE path went down (`false`: disconnected or
    /// failed) or is up again (`true`).
    Path(ConvId, bool),
    /// The network quality levels changed (see `quality`).
    Quality(ConvId, quality::Levels),
}

/// The encoder `attach` started making on its pipeline's thread. A session being built waits
/// for it (`made`, after its description, which is made meanwhile), so that a call whose
/// encoder cannot be made fails before its invite rings anyone; dropped, the engine hears of
/// a failure as a `PeerEvent::Failed` instead.
#[must_use = "dropped, a failure reaches the engine as an event"]
pub(crate) struct EncoderMade(Option<oneshot::Receiver<Result<(), CodecError>>>);

impl EncoderMade {
    pub(crate) async fn made(self) -> Result<(), PeerError> {
        let Some(made) = self.0 else { return Ok(()) };
        match made.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(PeerError::NoCodec { kind: MediaKind::Video, source }),
            // The pipeline's thread ended while making it (a panicking codec; it logged why).
            Err(_) => Err(PeerError::NoCodec {
                kind: MediaKind::Video,
                source: CodecError::Unavailable("the encoder panicked while starting".into()),
            }),
        }
    }
}

/// A video codec for a pipeline to make on its own thread (`make`, from `VideoCodecs`): one
/// that cannot be made fails the call with `NoCodec`, and the pipeline gets none. `made`, if
/// someone still waits on it, hears the outcome instead of the engine (a session being built
/// fails its build, so that a call whose encoder cannot be made never rings the peer).
fn video_codec_or_fail<T>(
    make: impl FnOnce() -> Result<T, CodecError>,
    made: Option<oneshot::Sender<Result<(), CodecError>>>,
    conv: ConvId,
    events: mpsc::UnboundedSender<PeerEvent>,
) -> impl FnOnce() -> Option<T> {
    move || {
        let (codec, outcome) = match make() {
            Ok(codec) => (Some(codec), Ok(())),
            Err(source) => (None, Err(source)),
        };
        let unheard = match made {
            Some(made) => made.send(outcome).err(),
            None => Some(outcome),
        };
        if let Some(Err(source)) = unheard {
            let error = PeerError::NoCodec { kind: MediaKind::Video, source };
            let _ = events.send(PeerEvent::Failed(conv, error));
        }
        codec
    }
}

/// Everything a new call's peer session needs to know.
pub(crate) struct PeerParams {
    pub conv: ConvId,
    pub call_id: String,
    /// `None` for a session that pre-connects while its call rings: it gets its tracks now
    /// and the app's stream at the accept (`attach`).
    pub local: Option<Arc<LocalStream>>,
    pub ice_servers: Vec<IceServer>,
    pub policy: IceTransportPolicy,
    pub config: MediaConfig,
    pub events: mpsc::UnboundedSender<PeerEvent>,
}

/// Which description a new session makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The caller's offer.
    Offer,
    /// The callee's answer to the caller's offer.
    Answer,
}

pub(crate) struct PeerSession {
    conv: ConvId,
    events: mpsc::UnboundedSender<PeerEvent>,
    pc: Arc<dyn PeerConnection>,
    /// Kept for ICE restarts, which set the latest `welcome`'s servers under the same policy.
    policy: IceTransportPolicy,
    remote: Arc<RemoteStream>,
    senders: Mutex<Senders>,
    /// Whether the session has a video and an audio track (it asks for the peer's either way).
    tracks: (bool, bool),
    video_codecs: Arc<dyn VideoCodecs>,
    /// Set once both sides agreed to the call (`start_media`): until then nothing is sent or
    /// decoded, even over a connection that is up (a pre-connected call still ringing).
    agreed: watch::Sender<bool>,
    /// How the peer's tracks are received (shared with the connection's handler).
    receiving: handler::Receiving,
    /// Connected and agreed: what the senders wait for.
    flowing: watch::Receiver<bool>,
    remote_described: watch::Sender<bool>,
    candidates: mpsc::UnboundedSender<RTCIceCandidateInit>,
    /// Tasks and pipelines that end with the session (the handler adds the receiving ones).
    tasks: Arc<Mutex<Vec<TaskHandle>>>,
    /// The latest network quality levels (`quality::monitor`).
    quality: watch::Receiver<quality::Levels>,
    last_snapshot: Mutex<Snapshot>,
    /// Sender tasks end when this is dropped (they wait on it for the connection).
    _connected: watch::Receiver<bool>,
    /// Whether ICE is gathering: a close waits for it (see `close`).
    gathering: Arc<watch::Sender<bool>>,
}

/// What the app's local stream feeds. A pre-connecting session has its tracks before it has
/// a stream; they wait for `attach`.
#[derive(Default)]
struct Senders {
    video: Option<VideoSend>,
    audio: Option<AudioSend>,
    waiting: Option<Waiting>,
}

struct Waiting {
    video: Option<track::Added>,
    audio: Option<track::Added>,
    path: watch::Receiver<Option<path::PathSignal>>,
}

impl PeerSession {
    /// Builds a session and its description (the offer, or the answer to `remote_sdp`).
    pub(crate) async fn start(
        p: PeerParams,
        role: Role,
        remote_sdp: Option<String>,
    ) -> Result<(PeerSession, String), PeerError> {
        let started = Instant::now();
        let (session, encoder_made) = Box::pin(PeerSession::new(p)).await?;
        let built = started.elapsed();
        let sdp = match (role, remote_sdp) {
            (Role::Offer, _) => session.offer().await,
            (Role::Answer, Some(offer)) => session.answer(offer).await,
            (Role::Answer, None) => Err(PeerError::NoOffer),
        };
        // The encoder was being made meanwhile; no description goes out without it.
        let sdp = match sdp {
            Ok(sdp) => encoder_made.made().await.map(|()| sdp),
            Err(e) => Err(e),
        };
        tracing::debug!(
            "peer session ready in {:?}: connection {built:?}, description {:?}",
            started.elapsed(),
            started.elapsed() - built
        );
        match sdp {
            Ok(sdp) => Ok((session, sdp)),
            Err(e) => {
                session.close().await;
                Err(e)
            }
        }
    }

    async fn new(p: PeerParams) -> Result<(PeerSession, EncoderMade), PeerError> {
        let (media_engine, registry, path) = setup::media_engine()?;
        let (connected_tx, connected) = watch::channel(false);
        let (agreed, agreed_rx) = watch::channel(false);
        let gathering = Arc::new(watch::channel(false).0);
        let remote = RemoteStream::new(p.call_id.clone());
        let tasks = Arc::new(Mutex::new(Vec::new()));
        let receiving = handler::Receiving::new(
            p.conv,
            p.events.clone(),
            Arc::clone(&remote),
            Arc::clone(&tasks),
            Arc::clone(&p.config.video_codecs),
            agreed_rx.clone(),
        );
        let handler = Handler::new(
            handler::States { connected: connected_tx, gathering: Arc::clone(&gathering) },
            receiving.clone(),
        );
        // Boxed: webrtc-rs's builder future is some 20 KB, too much to keep inline.
        let pc: Arc<dyn PeerConnection> = Arc::new(
            Box::pin(
                PeerConnectionBuilder::new()
                    .with_configuration(setup::configuration(&p.ice_servers, p.policy))
                    .with_media_engine(media_engine)
                    .with_setting_engine(setup::setting_engine())
                    .with_interceptor_registry(registry)
                    .with_handler(Arc::new(handler))
                    .with_udp_addrs(p.config.bind_addresses.clone())
                    .build(),
            )
            .await?,
        );
        // Our own stream id: the peer's tracks belong to the same call but are not ours.
        let stream_id = format!("duet-{}", uuid::Uuid::new_v4().simple());
        let (video, audio) = add_tracks(&pc, p.local.as_ref(), &stream_id).await?;
        let (flowing_tx, flowing) = watch::channel(false);
        lock(&tasks).push(TaskHandle::spawn(both(connected.clone(), agreed_rx, flowing_tx)));
        let (remote_described, candidates) = queue_remote_candidates(&pc, &tasks);
        let (quality_tx, quality) = watch::channel(quality::Levels::default());
        lock(&tasks).push(TaskHandle::spawn(quality::monitor(
            p.conv,
            Arc::downgrade(&pc),
            connected.clone(),
            quality_tx,
            p.events.clone(),
        )));
        let session = PeerSession {
            conv: p.conv,
            events: p.events,
            pc,
            policy: p.policy,
            remote,
            tracks: (video.is_some(), audio.is_some()),
            senders: Mutex::new(Senders {
                waiting: Some(Waiting { video, audio, path }),
                ..Senders::default()
            }),
            video_codecs: Arc::clone(&p.config.video_codecs),
            agreed,
            receiving,
            flowing,
            remote_described,
            candidates,
            tasks,
            quality,
            // The first `stats()` reports rates since the session began.
            last_snapshot: Mutex::new(Snapshot::zero(Instant::now())),
            _connected: connected,
            gathering,
        };
        let encoder_made = match &p.local {
            Some(local) => session.attach(local)?,
            None => EncoderMade(None),
        };
        Ok((session, encoder_made))
    }

    /// Feeds the session's tracks from the app's local stream: at once for a session built
    /// with one, at the accept for one that pre-connected. Later calls do nothing.
    pub(crate) fn attach(&self, local: &Arc<LocalStream>) -> Result<EncoderMade, PeerError> {
        let mut senders = lock(&self.senders);
        let mut encoder_made = EncoderMade(None);
        let Some(waiting) = senders.waiting.take() else { return Ok(encoder_made) };
        if let (Some(added), Some(v)) = (waiting.video, local.constraints().video.clone()) {
            let config = VideoEncoderConfig {
                width: v.width,
                height: v.height,
                fps: v.fps as f32,
                max_bitrate_bps: v.max_bitrate_bps,
            };
            // Made on the pipeline's thread: a platform encoder takes tens of milliseconds.
            let codecs = Arc::clone(&self.video_codecs);
            let (made_tx, made_rx) = oneshot::channel();
            let encoder = video_codec_or_fail(
                move || codecs.encoder(config),
                Some(made_tx),
                self.conv,
                self.events.clone(),
            );
            encoder_made = EncoderMade(Some(made_rx));
            senders.video = Some(VideoSend::start(VideoSendParts {
                track: added.track,
                sender: added.sender,
                pc: Arc::downgrade(&self.pc),
                local: Arc::clone(local),
                encoder,
                agreed: self.agreed.subscribe(),
                connected: self.flowing.clone(),
                path: waiting.path,
                fps: v.fps,
                max_bitrate_bps: v.max_bitrate_bps,
            })?);
        }
        if let Some(added) = waiting.audio.filter(|_| local.constraints().audio) {
            let encoder = OpusEncoder::new(32_000)
                .map_err(|source| PeerError::NoCodec { kind: MediaKind::Audio, source })?;
            senders.audio = Some(AudioSend::start(
                added.track,
                added.sender,
                local.subscribe_audio(),
                Box::new(encoder),
                self.flowing.clone(),
            )?);
        }
        lock(&self.tasks).push(TaskHandle::spawn(tell_what_is_sent(
            self.conv,
            local.watch_sending(),
            self.flowing.clone(),
            self.events.clone(),
        )));
        Ok(encoder_made)
    }

    /// Both sides agreed to the call: media may flow (once connected, if it is not yet).
    pub(crate) fn start_media(&self) {
        tracing::debug!(conv = self.conv.0, "media may flow");
        self.agreed.send_replace(true);
    }

    /// Creates and applies the offer; returns its SDP for the invite.
    async fn offer(&self) -> Result<String, PeerError> {
        // An offer has m-lines only for what it sends: a caller without a camera or a
        // microphone must still ask for the callee's, or it never gets them.
        let unsent = [(!self.tracks.0, RtpCodecKind::Video), (!self.tracks.1, RtpCodecKind::Audio)];
        for (_, kind) in unsent.into_iter().filter(|(missing, _)| *missing) {
            let receive_only = RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                streams: Vec::new(),
                send_encodings: Vec::new(),
            };
            self.pc.add_transceiver_from_kind(kind, Some(receive_only)).await?;
        }
        let offer = self.pc.create_offer(None).await?;
        self.gathering.send_replace(true);
        self.pc.set_local_description(offer.clone()).await?;
        Ok(offer.sdp)
    }

    /// Applies the caller's offer and answers it; returns the answer's SDP for the accept.
    async fn answer(&self, offer: String) -> Result<String, PeerError> {
        let offer = RTCSessionDescription::offer(offer).map_err(PeerError::RemoteDescription)?;
        self.described(&offer);
        self.pc.set_remote_description(offer).await.map_err(PeerError::RemoteDescription)?;
        let _ = self.remote_described.send(true);
        let answer = self.pc.create_answer(None).await?;
        self.gathering.send_replace(true);
        self.pc.set_local_description(answer.clone()).await?;
        Ok(answer.sdp)
    }

    /// Applies the callee's answer.
    pub(crate) async fn accept_answer(&self, answer: String) -> Result<(), PeerError> {
        let answer = RTCSessionDescription::answer(answer).map_err(PeerError::RemoteDescription)?;
        self.described(&answer);
        self.pc.set_remote_description(answer).await.map_err(PeerError::RemoteDescription)?;
        let _ = self.remote_described.send(true);
        Ok(())
    }

    /// The peer's description is known: if it sends video, its decoder is made now, so its
    /// first frame does not wait for it (OpenH264 takes milliseconds to make one). Made, not
    /// used: a pre-connected call still ringing decodes nothing (see `start_media`).
    fn described(&self, remote: &RTCSessionDescription) {
        if sends_video(remote) {
            self.receiving.prepare_video();
        }
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
            // The engine handles these (ICE restart, `engine::restart`); none reaches here.
            Signal::Description { .. } | Signal::Reconnecting => {
                tracing::debug!("a restart signal reached the session; ignored");
            }
            Signal::Media { video, audio } => {
                let sending = Sending { video, audio };
                if self.remote.set_sending(sending) {
                    let _ = self.events.send(PeerEvent::RemoteSending(self.conv, sending));
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
        let senders = lock(&self.senders);
        if let Some(v) = &senders.video {
            let sent = *v.stats.borrow();
            s.sent_width = sent.width;
            s.sent_height = sent.height;
            s.frames_sent = sent.frames_sent;
            s.target_bitrate_bps = sent.target_bps;
        }
        if let Some((w, h)) = self.remote.video_size() {
            s.received_width = w;
            s.received_height = h;
        }
        s.frames_decoded = self.remote.frames_decoded();
        s.audio_frames_decoded = self.remote.audio_frames_decoded();
        s.audio_packets_sent = senders.audio.as_ref().map_or(0, |a| *a.packets_sent.borrow());
        drop(senders);
        let levels = *self.quality.borrow();
        (s.quality_local, s.quality_remote) = (levels.local, levels.remote);
        let now = Snapshot::of(&s, Instant::now());
        let mut last = lock(&self.last_snapshot);
        stats::rates(&mut s, &last, &now);
        *last = now;
        s
    }

    /// Stops every pipeline and closes the peer connection, releasing its sockets and its
    /// TURN allocations. A TURN allocation still being made is released only once it is made:
    /// closed before, the server would keep it until it expires (10 minutes), as a call
    /// rejected the moment it rings (pre-connect) once did. So the close waits for
    /// gathering, at most `GATHERING_WAIT`.
    pub(crate) async fn close(&self) {
        lock(&self.tasks).clear();
        self.receiving.drop_prepared();
        let mut gathering = self.gathering.subscribe();
        let gathered = gathering.wait_for(|busy| !*busy);
        if tokio::time::timeout(GATHERING_WAIT, gathered).await.is_err() {
            tracing::debug!(conv = self.conv.0, "closing while ICE still gathers");
        }
        if let Err(e) = self.pc.close().await {
            tracing::debug!("closing the peer connection: {e}");
        }
    }
}

/// The session's tracks to send: what the app's stream sends, or both kinds for a session
/// that pre-connects (its stream comes at the accept).
async fn add_tracks(
    pc: &Arc<dyn PeerConnection>,
    local: Option<&Arc<LocalStream>>,
    stream_id: &str,
) -> Result<(Option<track::Added>, Option<track::Added>), PeerError> {
    let video = match local.is_none_or(|l| l.constraints().video.is_some()) {
        true => Some(track::add(pc, RtpCodecKind::Video, setup::h264(), stream_id).await?),
        false => None,
    };
    let audio = match local.is_none_or(|l| l.constraints().audio) {
        true => Some(track::add(pc, RtpCodecKind::Audio, setup::opus(), stream_id).await?),
        false => None,
    };
    Ok((video, audio))
}

/// Whether a description says its side sends video: a video section that is neither
/// refused (port 0) nor receive-only nor inactive.
fn sends_video(description: &RTCSessionDescription) -> bool {
    description.unmarshal().is_ok_and(|sdp| {
        sdp.media_descriptions.iter().any(|m| {
            m.media_name.media == "video"
                && m.media_name.port.value != 0
                && !m.has_attribute("recvonly")
                && !m.has_attribute("inactive")
        })
    })
}

/// How long a closing session waits for ICE gathering (a TURN allocation's answer) to end.
const GATHERING_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Remote candidates can arrive before the remote description (a callee hears the caller's
/// while it rings); webrtc-rs refuses them until then, so they wait in a queue that a task
/// drains once the description is applied.
fn queue_remote_candidates(
    pc: &Arc<dyn PeerConnection>,
    tasks: &Mutex<Vec<TaskHandle>>,
) -> (watch::Sender<bool>, mpsc::UnboundedSender<RTCIceCandidateInit>) {
    let (remote_described, mut described) = watch::channel(false);
    let (candidates, mut incoming) = mpsc::unbounded_channel::<RTCIceCandidateInit>();
    let weak = Arc::downgrade(pc);
    lock(tasks).push(TaskHandle::spawn(async move {
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
    (remote_described, candidates)
}

/// Keeps `out` at `a && b`; ends when either input's sender is gone.
async fn both(
    mut a: watch::Receiver<bool>,
    mut b: watch::Receiver<bool>,
    out: watch::Sender<bool>,
) {
    loop {
        out.send_if_modified(|v| {
            std::mem::replace(v, *a.borrow_and_update() && *b.borrow_and_update()) != *v
        });
        tokio::select! {
            r = a.changed() => if r.is_err() { return },
            r = b.changed() => if r.is_err() { return },
        }
    }
}

/// Tells the peer what this side sends whenever that changes, starting once media flows
/// (the call is established then, so the signal has somewhere to go). Nothing is said while
/// it is what a receiver assumes, both kinds.
async fn tell_what_is_sent(
    conv: ConvId,
    mut sending: watch::Receiver<Sending>,
    mut connected: watch::Receiver<bool>,
    events: mpsc::UnboundedSender<PeerEvent>,
) {
    if connected.wait_for(|c| *c).await.is_err() {
        return;
    }
    let mut told = Sending::BOTH;
    loop {
        let now = *sending.borrow_and_update();
        if now != told {
            let signal = Signal::Media { video: now.video, audio: now.audio };
            if events.send(PeerEvent::LocalSignal(conv, signal)).is_err() {
                return;
            }
            told = now;
        }
        if sending.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer_with(video: &str) -> RTCSessionDescription {
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
             m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n\
             a=rtpmap:111 opus/48000/2\r\na=sendrecv\r\n{video}"
        );
        RTCSessionDescription::offer(sdp).unwrap()
    }

    #[test]
    fn a_description_sends_video_unless_its_video_is_refused_receive_only_or_inactive() {
        let video = |port: u16, direction: &str| {
            format!(
                "m=video {port} UDP/TLS/RTP/SAVPF 102\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n\
                 a=rtpmap:102 H264/90000\r\n{direction}"
            )
        };
        assert!(sends_video(&offer_with(&video(9, "a=sendrecv\r\n"))));
        assert!(sends_video(&offer_with(&video(9, "a=sendonly\r\n"))));
        assert!(sends_video(&offer_with(&video(9, "")))); // sendrecv by default
        assert!(!sends_video(&offer_with(&video(9, "a=recvonly\r\n"))));
        assert!(!sends_video(&offer_with(&video(9, "a=inactive\r\n"))));
        assert!(!sends_video(&offer_with(&video(0, "a=sendrecv\r\n"))));
        assert!(!sends_video(&offer_with("")));
    }
}
