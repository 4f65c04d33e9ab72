//! What webrtc-rs tells a peer session: local candidates, connection states, remote tracks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use duet_media::OpusDecoder;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnectionEventHandler, RTCIceConnectionState, RTCIceGatheringState,
    RTCPeerConnectionIceEvent, RTCPeerConnectionState,
};

use super::{audio_receive, video_codec_or_fail, video_receive, PeerError, PeerEvent, VideoCodecs};
use crate::errors::MediaKind;
use crate::lifecycle::ConvId;
use crate::streams::RemoteStream;
use crate::sync::lock;
use crate::task::TaskHandle;

/// How long the encrypted session may take once ICE has a working pair before the call fails
/// with `DtlsFailed`. webrtc-rs reports no DTLS failure of its own: a handshake that gives up
/// (rtc-dtls repeats a flight 7 times, a second apart) or that meets a certificate other than
/// the signaled one leaves the connection "connecting" for good. And a DTLS client in false
/// start reads as connected before its server has completed (vendor/rtc-dtls/DUET.md), so
/// a server that never completes is ended by this deadline, and the callee with it. Longer
/// than rtc-dtls's own retries, so it never cuts a handshake that could still complete.
const DTLS_DEADLINE: Duration = Duration::from_secs(10);

pub(super) struct Handler {
    connected: watch::Sender<bool>,
    /// Whether ICE is gathering candidates now (a TURN allocation may be under way); the
    /// session sets it as it applies its description, before the first event could.
    gathering: Arc<watch::Sender<bool>>,
    receiving: Receiving,
    announced: AtomicBool,
    /// Whether ICE has a working pair now: a failure while it has one is DTLS's, a failure
    /// without one ICE's.
    ice_connected: AtomicBool,
    /// Whether the connection has ever been up: only then is losing the path news for the
    /// engine rather than a failed setup.
    ever_connected: AtomicBool,
    /// Whether the DTLS deadline runs (from ICE's first working pair).
    dtls_deadline: AtomicBool,
}

/// What starting to receive a remote track takes; cloned into the task that waits for the
/// call to be agreed, and kept by the session, which prepares the video pipeline.
#[derive(Clone)]
pub(super) struct Receiving {
    conv: ConvId,
    events: mpsc::UnboundedSender<PeerEvent>,
    remote: Arc<RemoteStream>,
    tasks: Arc<Mutex<Vec<TaskHandle>>>,
    video_codecs: Arc<dyn VideoCodecs>,
    /// Nothing is decoded before both sides agreed to the call (`PeerSession::start_media`).
    agreed: watch::Receiver<bool>,
    /// The video pipeline made ahead of the peer's video track.
    video_ready: Arc<Mutex<VideoReady>>,
}

/// Where the pipeline made ahead of the peer's video track is.
#[derive(Default)]
enum VideoReady {
    #[default]
    NotMade,
    Waiting(video_receive::Prepared),
    /// A track took it, or the session ended: nothing is made ahead again.
    Gone,
}

/// The session's states the handler keeps up to date.
pub(super) struct States {
    pub connected: watch::Sender<bool>,
    pub gathering: Arc<watch::Sender<bool>>,
}

impl Handler {
    pub(super) fn new(states: States, receiving: Receiving) -> Self {
        let States { connected, gathering } = states;
        Handler {
            connected,
            gathering,
            receiving,
            announced: AtomicBool::new(false),
            ice_connected: AtomicBool::new(false),
            ever_connected: AtomicBool::new(false),
            dtls_deadline: AtomicBool::new(false),
        }
    }

    fn fail(&self, error: PeerError) {
        self.receiving.fail(error);
    }

    /// Fails the call with `DtlsFailed` unless the connection is up `DTLS_DEADLINE` from now.
    fn start_dtls_deadline(&self) {
        let mut connected = self.connected.subscribe();
        let receiving = self.receiving.clone();
        lock(&self.receiving.tasks).push(TaskHandle::spawn(async move {
            if tokio::time::timeout(DTLS_DEADLINE, connected.wait_for(|c| *c)).await.is_err() {
                tracing::warn!(
                    conv = receiving.conv.0,
                    "DTLS not done {DTLS_DEADLINE:?} after ICE"
                );
                receiving.fail(PeerError::DtlsFailed);
            }
        }));
    }
}

impl Receiving {
    pub(super) fn new(
        conv: ConvId,
        events: mpsc::UnboundedSender<PeerEvent>,
        remote: Arc<RemoteStream>,
        tasks: Arc<Mutex<Vec<TaskHandle>>>,
        video_codecs: Arc<dyn VideoCodecs>,
        agreed: watch::Receiver<bool>,
    ) -> Self {
        let video_ready = Arc::default();
        Receiving { conv, events, remote, tasks, video_codecs, agreed, video_ready }
    }

    fn fail(&self, error: PeerError) {
        let _ = self.events.send(PeerEvent::Failed(self.conv, error));
    }

    /// Starts the video pipeline, and the making of its decoder, before the peer's first
    /// packets: once, as soon as the peer's description says it sends video.
    pub(super) fn prepare_video(&self) {
        let mut ready = lock(&self.video_ready);
        if matches!(*ready, VideoReady::NotMade) {
            if let Some(prepared) = self.video_pipeline() {
                *ready = VideoReady::Waiting(prepared);
            }
        }
    }

    /// Ends a pipeline that no track took (the session is closing).
    pub(super) fn drop_prepared(&self) {
        *lock(&self.video_ready) = VideoReady::Gone;
    }

    /// A video pipeline, or none (the failure reported) if it cannot start; a decoder that
    /// cannot be made is reported from the pipeline's thread.
    fn video_pipeline(&self) -> Option<video_receive::Prepared> {
        let codecs = Arc::clone(&self.video_codecs);
        let decoder =
            video_codec_or_fail(move || codecs.decoder(), None, self.conv, self.events.clone());
        video_receive::prepare(Arc::clone(&self.remote), decoder)
            .map_err(|e| self.fail(e.into()))
            .ok()
    }

    fn start(&self, kind: RtpCodecKind, track: Arc<dyn TrackRemote>) {
        let task = match kind {
            RtpCodecKind::Video => {
                let ready = std::mem::replace(&mut *lock(&self.video_ready), VideoReady::Gone);
                let ready = match ready {
                    VideoReady::Waiting(prepared) => Some(prepared),
                    VideoReady::NotMade | VideoReady::Gone => None,
                };
                let Some(prepared) = ready.or_else(|| self.video_pipeline()) else { return };
                video_receive::start(track, prepared)
            }
            _ => {
                let started = OpusDecoder::new()
                    .map_err(|source| PeerError::NoCodec { kind: MediaKind::Audio, source })
                    .and_then(|d| {
                        let remote = Arc::clone(&self.remote);
                        Ok(audio_receive::start(track, remote, Box::new(d))?)
                    });
                match started {
                    Ok(task) => task,
                    Err(e) => return self.fail(e),
                }
            }
        };
        lock(&self.tasks).push(task);
    }

    fn begin(&self, kind: RtpCodecKind, track: Arc<dyn TrackRemote>, announce: bool) {
        self.start(kind, track);
        if announce {
            let _ = self.events.send(PeerEvent::Stream(self.conv, Arc::clone(&self.remote)));
        }
    }
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, ev: RTCPeerConnectionIceEvent) {
        if let Ok(init) = ev.candidate.to_json() {
            let signal = duet_protocol::Signal::Candidate {
                candidate: init.candidate,
                sdp_mid: init.sdp_mid,
                sdp_mline_index: init.sdp_mline_index,
            };
            let _ = self.receiving.events.send(PeerEvent::LocalSignal(self.receiving.conv, signal));
        }
    }

    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        tracing::debug!(conv = self.receiving.conv.0, %state, "ICE connection");
        let working =
            matches!(state, RTCIceConnectionState::Connected | RTCIceConnectionState::Completed);
        self.ice_connected.store(working, Ordering::Relaxed);
        if working && !self.dtls_deadline.swap(true, Ordering::Relaxed) {
            self.start_dtls_deadline();
        }
        // Once media has flowed, the path going and coming back is the engine's to handle
        // (ICE restart), not a failure of the call.
        let down =
            matches!(state, RTCIceConnectionState::Disconnected | RTCIceConnectionState::Failed);
        if self.ever_connected.load(Ordering::Relaxed) && (working || down) {
            let _ = self.receiving.events.send(PeerEvent::Path(self.receiving.conv, working));
        }
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        self.gathering.send_replace(state == RTCIceGatheringState::Gathering);
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        tracing::debug!(conv = self.receiving.conv.0, %state, "peer connection");
        match state {
            RTCPeerConnectionState::Connected => {
                self.ever_connected.store(true, Ordering::Relaxed);
                let _ = self.connected.send(true);
            }
            // A call whose path fails after it connected is restarted, not ended (see
            // `on_ice_connection_state_change`).
            RTCPeerConnectionState::Failed if self.ever_connected.load(Ordering::Relaxed) => {}
            RTCPeerConnectionState::Failed => {
                let error = if self.ice_connected.load(Ordering::Relaxed) {
                    PeerError::DtlsFailed
                } else {
                    PeerError::IceFailed
                };
                self.fail(error);
            }
            _ => {}
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let kind = track.kind().await;
        let announce = !self.announced.swap(true, Ordering::Relaxed);
        let receiving = self.receiving.clone();
        if *receiving.agreed.borrow() {
            return receiving.begin(kind, track, announce);
        }
        // A pre-connected call still ringing: the track waits, undecoded, for the accept.
        let tasks = Arc::clone(&receiving.tasks);
        lock(&tasks).push(TaskHandle::spawn(async move {
            let mut agreed = receiving.agreed.clone();
            if agreed.wait_for(|a| *a).await.is_ok() {
                receiving.begin(kind, track, announce);
            }
        }));
    }
}
