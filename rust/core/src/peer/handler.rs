//! What webrtc-rs tells a peer session: local candidates, connection states, remote tracks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use duet_media::OpusDecoder;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnectionEventHandler, RTCIceConnectionState, RTCIceGatheringState,
    RTCPeerConnectionIceEvent, RTCPeerConnectionState,
};

use super::{audio_receive, video_receive, PeerError, PeerEvent, VideoCodecs};
use crate::errors::MediaKind;
use crate::lifecycle::ConvId;
use crate::streams::RemoteStream;
use crate::sync::lock;
use crate::task::TaskHandle;

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
}

/// What starting to receive a remote track takes; cloned into the task that waits for the
/// call to be agreed.
#[derive(Clone)]
struct Receiving {
    conv: ConvId,
    events: mpsc::UnboundedSender<PeerEvent>,
    remote: Arc<RemoteStream>,
    tasks: Arc<Mutex<Vec<TaskHandle>>>,
    video_codecs: Arc<dyn VideoCodecs>,
    /// Nothing is decoded before both sides agreed to the call (`PeerSession::start_media`).
    agreed: watch::Receiver<bool>,
}

/// The session's states the handler keeps up to date, or reads.
pub(super) struct States {
    pub connected: watch::Sender<bool>,
    pub gathering: Arc<watch::Sender<bool>>,
    pub agreed: watch::Receiver<bool>,
}

impl Handler {
    pub(super) fn new(
        conv: ConvId,
        events: mpsc::UnboundedSender<PeerEvent>,
        states: States,
        remote: Arc<RemoteStream>,
        tasks: Arc<Mutex<Vec<TaskHandle>>>,
        video_codecs: Arc<dyn VideoCodecs>,
    ) -> Self {
        let States { connected, gathering, agreed } = states;
        Handler {
            connected,
            gathering,
            receiving: Receiving { conv, events, remote, tasks, video_codecs, agreed },
            announced: AtomicBool::new(false),
            ice_connected: AtomicBool::new(false),
            ever_connected: AtomicBool::new(false),
        }
    }

    fn fail(&self, error: PeerError) {
        self.receiving.fail(error);
    }
}

impl Receiving {
    fn fail(&self, error: PeerError) {
        let _ = self.events.send(PeerEvent::Failed(self.conv, error));
    }

    fn start(&self, kind: RtpCodecKind, track: Arc<dyn TrackRemote>) {
        let remote = Arc::clone(&self.remote);
        let started = match kind {
            RtpCodecKind::Video => match self.video_codecs.decoder() {
                Ok(d) => video_receive::start(track, remote, d),
                Err(source) => {
                    return self.fail(PeerError::NoCodec { kind: MediaKind::Video, source })
                }
            },
            _ => match OpusDecoder::new() {
                Ok(d) => audio_receive::start(track, remote, Box::new(d)),
                Err(source) => {
                    return self.fail(PeerError::NoCodec { kind: MediaKind::Audio, source })
                }
            },
        };
        match started {
            Ok(task) => lock(&self.tasks).push(task),
            Err(e) => self.fail(e.into()),
        }
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
