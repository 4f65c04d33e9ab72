//! Records and plain enums, each the FFI twin of a duet-core type, with the conversions.
//!
//! Own types rather than `#[uniffi::remote]` ones, so that duet-core stays free of FFI
//! concerns and this surface changes only on purpose.

use duet_core as core;

use crate::errors::ServerErrorCode;

/// How to reach the server and who this client is.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ClientConfig {
    /// `http://host:port` or `ws://host:port` (the `/ws` path is implied), or a full
    /// WebSocket URL.
    pub server_url: String,
    /// A token minted for this user by the app's backend (or a development server).
    pub token: String,
    /// Identifies this device across reconnects; a random one if not given.
    #[uniffi(default = None)]
    pub device_id: Option<String>,
    /// Local addresses calls bind their media sockets to, e.g. `"0.0.0.0:0"`. Empty means
    /// the engine's default (every interface but loopback); tests on one machine use
    /// `"127.0.0.1:0"`.
    #[uniffi(default = [])]
    pub bind_addresses: Vec<String>,
    /// The call id a push carried, when the push started or woke the app: the server
    /// answers at once with that call (`did_receive_call_with_conversation`, if it still
    /// rings) or its end (`VideoCallDelegate.did_end_woken_call`).
    #[uniffi(default = None)]
    pub woken_for: Option<String>,
    /// Whether a call ringing on this device (its user's only device) pre-connects: ICE and
    /// DTLS are done while it rings, so media flows the moment the app accepts. Nothing is
    /// sent or decoded, and no camera is needed, before the accept; but the caller learns
    /// this device's candidates (with the relay policy, only its TURN relay's) before the
    /// user answered. Turn it off to reveal nothing until the user accepts.
    #[uniffi(default = true)]
    pub pre_connect: bool,
}

impl From<ClientConfig> for core::ClientConfig {
    fn from(c: ClientConfig) -> Self {
        let mut config = core::ClientConfig::new(c.server_url, c.token);
        config.device_id = c.device_id;
        config.woken_for = c.woken_for;
        config.pre_connect = c.pre_connect;
        if !c.bind_addresses.is_empty() {
            config.media.bind_addresses = c.bind_addresses;
        }
        config
    }
}

/// A device's push token, as its platform's push service issued it
/// (`VideoCall.register_push`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum PushToken {
    /// An iOS PushKit VoIP token, in hex, for the app `bundle_id`; the push goes to the
    /// topic `<bundle_id>.voip` in the APNs `environment` the app was built for.
    Apns { token: String, bundle_id: String, environment: ApnsEnvironment },
    /// A Firebase Cloud Messaging registration token.
    Fcm { token: String },
}

impl From<PushToken> for core::PushToken {
    fn from(t: PushToken) -> Self {
        match t {
            PushToken::Apns { token, bundle_id, environment } => {
                core::PushToken::Apns { token, bundle_id, environment: environment.into() }
            }
            PushToken::Fcm { token } => core::PushToken::Fcm { token },
        }
    }
}

/// Which APNs a PushKit token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ApnsEnvironment {
    /// Development builds (the `aps-environment` entitlement `development`).
    Sandbox,
    /// App Store, TestFlight and ad-hoc builds.
    Production,
}

impl From<ApnsEnvironment> for core::ApnsEnvironment {
    fn from(e: ApnsEnvironment) -> Self {
        match e {
            ApnsEnvironment::Sandbox => core::ApnsEnvironment::Sandbox,
            ApnsEnvironment::Production => core::ApnsEnvironment::Production,
        }
    }
}

/// What `VideoCall.call` takes besides the callee and the stream.
#[derive(Debug, Clone, uniffi::Record)]
pub struct CallOptions {
    /// Custom text for the callee, handed to `did_receive_call_with_conversation`.
    #[uniffi(default = None)]
    pub data: Option<String>,
    /// `All` normally; `Relay` uses TURN relay candidates only, hiding both parties'
    /// addresses. (No default here: UniFFI's macros cannot give an enum field one.)
    pub ice_transport_policy: IceTransportPolicy,
}

impl From<CallOptions> for core::CallOptions {
    fn from(o: CallOptions) -> Self {
        core::CallOptions { data: o.data, ice_transport_policy: o.ice_transport_policy.into() }
    }
}

/// Which ICE candidates a call may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, uniffi::Enum)]
pub enum IceTransportPolicy {
    /// Direct, server-reflexive and relayed paths.
    #[default]
    All,
    /// TURN relay only: neither party learns the other's address.
    Relay,
}

impl From<IceTransportPolicy> for core::IceTransportPolicy {
    fn from(p: IceTransportPolicy) -> Self {
        match p {
            IceTransportPolicy::All => core::IceTransportPolicy::All,
            IceTransportPolicy::Relay => core::IceTransportPolicy::Relay,
        }
    }
}

/// The callee's answer, heard by the caller's `did_receive_response`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum CallStatus {
    Accepted,
    /// Followed by `did_close`.
    Rejected,
    /// The callee is in another call. Followed by `did_close`.
    Busy,
    /// Nobody answered within the server's ring timeout. Followed by `did_close`.
    Timeout,
}

impl From<core::CallStatus> for CallStatus {
    fn from(s: core::CallStatus) -> Self {
        match s {
            core::CallStatus::Accepted => CallStatus::Accepted,
            core::CallStatus::Rejected => CallStatus::Rejected,
            core::CallStatus::Busy => CallStatus::Busy,
            core::CallStatus::Timeout => CallStatus::Timeout,
        }
    }
}

/// Whether the client's signaling connection is up, as `VideoCallDelegate` hears it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ConnectionState {
    Connected,
    /// Lost; retrying with backoff.
    Reconnecting,
    /// The server refused a reconnect (e.g. `TokenExpired`). Retries go on slowly, but only
    /// `VideoCall.update_token` can make one succeed.
    Refused {
        code: ServerErrorCode,
        reason: String,
    },
}

impl From<core::ConnectionState> for ConnectionState {
    fn from(s: core::ConnectionState) -> Self {
        match s {
            core::ConnectionState::Connected => ConnectionState::Connected,
            core::ConnectionState::Reconnecting => ConnectionState::Reconnecting,
            core::ConnectionState::Refused { code, message } => {
                ConnectionState::Refused { code: code.into(), reason: message }
            }
        }
    }
}

/// Where a conversation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ConversationState {
    /// Outgoing, waiting for the callee.
    Calling,
    /// Incoming, waiting for this side to answer.
    Ringing,
    /// Incoming, accepted here, waiting for the server to confirm.
    Accepting,
    Connected,
    Closed,
}

impl From<core::ConversationState> for ConversationState {
    fn from(s: core::ConversationState) -> Self {
        match s {
            core::ConversationState::Calling => ConversationState::Calling,
            core::ConversationState::Ringing => ConversationState::Ringing,
            core::ConversationState::Accepting => ConversationState::Accepting,
            core::ConversationState::Connected => ConversationState::Connected,
            core::ConversationState::Closed => ConversationState::Closed,
        }
    }
}

/// Where a call's media connection stands (`ConversationDelegate.did_change_media_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum MediaState {
    /// Media flows (again).
    Connected,
    /// This side's path is down or its network changed; ICE is restarting.
    Reconnecting,
    /// The other party's path is down or changed; ICE is restarting.
    PeerReconnecting,
}

impl From<core::MediaState> for MediaState {
    fn from(s: core::MediaState) -> Self {
        match s {
            core::MediaState::Connected => MediaState::Connected,
            core::MediaState::Reconnecting => MediaState::Reconnecting,
            core::MediaState::PeerReconnecting => MediaState::PeerReconnecting,
        }
    }
}

/// Why a conversation ended (`Conversation.close_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum EndReason {
    /// This side called `close` or `reject`.
    Local,
    /// The other party hung up.
    Hangup,
    /// The caller cancelled while the call rang.
    Cancelled,
    Rejected,
    Busy,
    Timeout,
    /// Another device of this user answered.
    AnsweredElsewhere,
    /// Another device of this user declined.
    DeclinedElsewhere,
    /// The other party's connection stayed lost past the grace period.
    PeerDisconnected,
    /// The callee has no device connected.
    Unreachable,
    /// A new call on this client hung this one up.
    Replaced,
    /// This client's connection to the server stayed lost past the grace period.
    ConnectionLost,
    /// The media connection went down and ICE restarts did not bring it back within 30 s
    /// (a network that went away for good): not a hang-up.
    NetworkLost,
    /// An error ended the call; `did_fail_with_error` said which.
    Failed,
}

impl From<core::EndReason> for EndReason {
    fn from(r: core::EndReason) -> Self {
        use core::EndReason as R;
        match r {
            R::Local => EndReason::Local,
            R::Hangup => EndReason::Hangup,
            R::Cancelled => EndReason::Cancelled,
            R::Rejected => EndReason::Rejected,
            R::Busy => EndReason::Busy,
            R::Timeout => EndReason::Timeout,
            R::AnsweredElsewhere => EndReason::AnsweredElsewhere,
            R::DeclinedElsewhere => EndReason::DeclinedElsewhere,
            R::PeerDisconnected => EndReason::PeerDisconnected,
            R::Unreachable => EndReason::Unreachable,
            R::Replaced => EndReason::Replaced,
            R::ConnectionLost => EndReason::ConnectionLost,
            R::NetworkLost => EndReason::NetworkLost,
            R::Failed => EndReason::Failed,
        }
    }
}

/// How the selected ICE candidate pair reaches the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum CandidateType {
    Host,
    ServerReflexive,
    PeerReflexive,
    Relay,
}

impl From<core::CandidateType> for CandidateType {
    fn from(c: core::CandidateType) -> Self {
        match c {
            core::CandidateType::Host => CandidateType::Host,
            core::CandidateType::ServerReflexive => CandidateType::ServerReflexive,
            core::CandidateType::PeerReflexive => CandidateType::PeerReflexive,
            core::CandidateType::Relay => CandidateType::Relay,
        }
    }
}

/// The clockwise rotation to apply to a frame to show it upright (camera sensor
/// orientation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, uniffi::Enum)]
pub enum Rotation {
    #[default]
    Deg0,
    Deg90,
    Deg180,
    Deg270,
}

impl From<Rotation> for core::Rotation {
    fn from(r: Rotation) -> Self {
        match r {
            Rotation::Deg0 => core::Rotation::Deg0,
            Rotation::Deg90 => core::Rotation::Deg90,
            Rotation::Deg180 => core::Rotation::Deg180,
            Rotation::Deg270 => core::Rotation::Deg270,
        }
    }
}

impl From<core::Rotation> for Rotation {
    fn from(r: core::Rotation) -> Self {
        match r {
            core::Rotation::Deg0 => Rotation::Deg0,
            core::Rotation::Deg90 => Rotation::Deg90,
            core::Rotation::Deg180 => Rotation::Deg180,
            core::Rotation::Deg270 => Rotation::Deg270,
        }
    }
}

/// The video a local stream captures and sends.
#[derive(Debug, Clone, uniffi::Record)]
pub struct VideoConstraints {
    #[uniffi(default = 640)]
    pub width: u32,
    #[uniffi(default = 480)]
    pub height: u32,
    #[uniffi(default = 30)]
    pub fps: u32,
    /// The most the encoder may send; congestion control works below it.
    #[uniffi(default = 1000000)]
    pub max_bitrate_bps: u32,
}

/// What a local stream captures: video (or none) and audio (or not).
#[derive(Debug, Clone, uniffi::Record)]
pub struct StreamConstraints {
    #[uniffi(default = true)]
    pub audio: bool,
    pub video: Option<VideoConstraints>,
}

impl From<VideoConstraints> for core::VideoConstraints {
    fn from(v: VideoConstraints) -> Self {
        core::VideoConstraints {
            width: v.width,
            height: v.height,
            fps: v.fps,
            max_bitrate_bps: v.max_bitrate_bps,
        }
    }
}

impl From<core::VideoConstraints> for VideoConstraints {
    fn from(v: core::VideoConstraints) -> Self {
        VideoConstraints {
            width: v.width,
            height: v.height,
            fps: v.fps,
            max_bitrate_bps: v.max_bitrate_bps,
        }
    }
}

impl From<StreamConstraints> for core::StreamConstraints {
    fn from(s: StreamConstraints) -> Self {
        core::StreamConstraints { audio: s.audio, video: s.video.map(Into::into) }
    }
}

impl From<core::StreamConstraints> for StreamConstraints {
    fn from(s: core::StreamConstraints) -> Self {
        StreamConstraints { audio: s.audio, video: s.video.map(Into::into) }
    }
}

/// A picture size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct VideoSize {
    pub width: u32,
    pub height: u32,
}

/// 10 ms of mono 48 kHz PCM (480 samples), as `AudioSink.on_audio_frame` hears it.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct AudioFrame {
    pub samples: Vec<i16>,
    pub timestamp_us: u64,
}

impl From<&core::AudioFrame> for AudioFrame {
    fn from(f: &core::AudioFrame) -> Self {
        AudioFrame { samples: f.samples.clone(), timestamp_us: f.timestamp_us }
    }
}

/// One look at a call's media. Rates are over the time since the previous `stats()` call
/// on the same conversation (or since the call started).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct CallStats {
    pub sent_width: u32,
    pub sent_height: u32,
    pub sent_fps: f64,
    pub received_width: u32,
    pub received_height: u32,
    pub received_fps: f64,
    pub bitrate_sent_bps: f64,
    pub bitrate_received_bps: f64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub packets_sent: u64,
    pub packets_received: u64,
    pub packets_lost: u64,
    /// Inbound video jitter (audio's when there is no video).
    pub jitter_ms: f64,
    /// Round-trip time of the selected candidate pair.
    pub rtt_ms: Option<f64>,
    pub local_candidate_type: Option<CandidateType>,
    pub remote_candidate_type: Option<CandidateType>,
    /// The bitrate the video encoder aims at now.
    pub target_bitrate_bps: u32,
    pub frames_sent: u64,
    pub frames_decoded: u64,
    pub audio_packets_sent: u64,
    /// 10 ms audio frames decoded.
    pub audio_frames_decoded: u64,
    /// Network quality of what this side receives, 0 (nothing) to 5 (excellent).
    pub quality_local: u8,
    /// Network quality of what the other side receives, from its receiver reports.
    pub quality_remote: u8,
}

impl From<core::CallStats> for CallStats {
    fn from(s: core::CallStats) -> Self {
        CallStats {
            sent_width: s.sent_width,
            sent_height: s.sent_height,
            sent_fps: s.sent_fps,
            received_width: s.received_width,
            received_height: s.received_height,
            received_fps: s.received_fps,
            bitrate_sent_bps: s.bitrate_sent_bps,
            bitrate_received_bps: s.bitrate_received_bps,
            bytes_sent: s.bytes_sent,
            bytes_received: s.bytes_received,
            packets_sent: s.packets_sent,
            packets_received: s.packets_received,
            packets_lost: s.packets_lost,
            jitter_ms: s.jitter_ms,
            rtt_ms: s.rtt_ms,
            local_candidate_type: s.local_candidate_type.map(Into::into),
            remote_candidate_type: s.remote_candidate_type.map(Into::into),
            target_bitrate_bps: s.target_bitrate_bps,
            frames_sent: s.frames_sent,
            frames_decoded: s.frames_decoded,
            audio_packets_sent: s.audio_packets_sent,
            audio_frames_decoded: s.audio_frames_decoded,
            quality_local: s.quality_local,
            quality_remote: s.quality_remote,
        }
    }
}
