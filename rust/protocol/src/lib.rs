//! duet-protocol: the signaling messages exchanged between a Duet client and duet-server.
//!
//! Every message is one JSON object in one WebSocket text frame, with a `type` field naming
//! it. `docs/protocol.md` is the normative description, with an example of each message; the
//! types here are its machine-readable twin and the tests below keep the two in step.

use serde::{Deserialize, Serialize};

mod limits;
pub use limits::*;

/// The protocol version a client states in `hello` and the server echoes in `welcome`.
pub const PROTOCOL_VERSION: u32 = 1;

/// The WebSocket close code of a server that is draining (a restart, a deploy): 1012,
/// "Service Restart" in IANA's registry. Not a failure: the client reconnects at once,
/// to the same URL (a load balancer sends it to another server), and restates its calls.
pub const CLOSE_DRAINING: u16 = 1012;

/// A call's identifier: chosen by the caller's client (a random UUID), unguessable, and the
/// only handle on a call either side uses.
pub type CallId = String;

/// Messages a client sends to the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// The first message on every connection: who this is, and which calls it still holds.
    Hello {
        v: u32,
        token: String,
        device_id: String,
        /// Calls this device believes are under way (after a reconnect or a server restart).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        calls: Vec<CallRestatement>,
        /// The call whose push woke this device: the server answers with its `incoming`
        /// if it still rings, or its end at once, so the system's call screen closes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        woken_for: Option<CallId>,
    },
    /// Keeps this device's push token, so that calls reach it while it is not connected.
    /// Replaces the device's earlier registration; answered `push_registered`.
    RegisterPush {
        push: PushToken,
    },
    /// Forgets this device's push token (sign-out); answered `push_unregistered`.
    UnregisterPush,
    Invite {
        call_id: CallId,
        to: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<String>,
        #[serde(default)]
        options: CallOptions,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp: Option<String>,
    },
    Accept {
        call_id: CallId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp: Option<String>,
    },
    /// Declines a ringing call. `busy: true` when the device declines because it is in
    /// another call (the caller then sees BUSY rather than REJECTED).
    Reject {
        call_id: CallId,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        busy: bool,
    },
    /// Ends a call: a cancel while it rings, a hang-up once it is accepted.
    Hangup {
        call_id: CallId,
    },
    /// Relayed untouched to the other party's device: ICE candidates, renegotiation.
    Signal {
        call_id: CallId,
        signal: Signal,
    },
    Ping {
        nonce: u64,
    },
}

/// Messages the server sends to a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ServerMessage {
    Welcome {
        v: u32,
        uid: String,
        device_id: String,
        ice_servers: Vec<IceServer>,
        ring_timeout_ms: u64,
        grace_ms: u64,
        keepalive_ms: u64,
        limits: Limits,
    },
    /// A call for this device's user: the device should ring.
    Incoming {
        call_id: CallId,
        from: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<String>,
        #[serde(default)]
        options: CallOptions,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp: Option<String>,
        /// This device may pre-connect while it rings: answer the offer early, in a
        /// `description` signal, and trickle its candidates (docs/protocol.md, Pre-connect).
        #[serde(default, skip_serializing_if = "is_false")]
        preconnect: bool,
    },
    /// To the caller: at least one of the callee's devices is ringing.
    Ringing {
        call_id: CallId,
    },
    /// The answer to an invite. To the caller for every status; to the accepting device
    /// too, as `accepted`, when its accept won.
    Response {
        call_id: CallId,
        status: CallStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp: Option<String>,
    },
    /// Glare: this device's outgoing call `call_id` crossed the peer's call `into`, which
    /// reached the server first. The device should accept `into` in place of its own call.
    Merged {
        call_id: CallId,
        into: IncomingCall,
    },
    /// The call is over for this device.
    Closed {
        call_id: CallId,
        reason: CloseReason,
    },
    Signal {
        call_id: CallId,
        signal: Signal,
    },
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call_id: Option<CallId>,
    },
    Pong {
        nonce: u64,
    },
    /// The device's push token is kept.
    PushRegistered,
    /// The device's push token is forgotten (or there was none).
    PushUnregistered,
}

/// A device's push token, as its platform's push service issued it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "service", rename_all = "snake_case", deny_unknown_fields)]
pub enum PushToken {
    /// An iOS PushKit VoIP token, in hex, for the app `bundle_id`; the push goes to the
    /// topic `<bundle_id>.voip` in the APNs `environment` the app was built for.
    Apns { token: String, bundle_id: String, environment: ApnsEnvironment },
    /// A Firebase Cloud Messaging registration token.
    Fcm { token: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApnsEnvironment {
    /// Development builds: api.sandbox.push.apple.com.
    Sandbox,
    /// App Store, TestFlight and ad-hoc builds: api.push.apple.com.
    Production,
}

impl PushToken {
    /// The token as the push service knows it.
    pub fn token(&self) -> &str {
        match self {
            PushToken::Apns { token, .. } | PushToken::Fcm { token } => token,
        }
    }
}

/// What an `incoming` message carries, reused where a call is handed over whole (`merged`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncomingCall {
    pub call_id: CallId,
    pub from: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default)]
    pub options: CallOptions,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub preconnect: bool,
}

impl From<IncomingCall> for ServerMessage {
    fn from(c: IncomingCall) -> Self {
        ServerMessage::Incoming {
            call_id: c.call_id,
            from: c.from,
            data: c.data,
            options: c.options,
            sdp: c.sdp,
            preconnect: c.preconnect,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    Accepted,
    Rejected,
    Busy,
    Timeout,
}

/// Why a call ended, as told to a device that did not end it itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// The other party hung up an accepted call.
    Hangup,
    /// The caller gave up while the call rang.
    Cancelled,
    /// Nobody answered within the ring timeout.
    Timeout,
    /// Another device of the callee accepted.
    AnsweredElsewhere,
    /// Another device of the callee rejected.
    DeclinedElsewhere,
    /// The other party's connection was lost for longer than the grace period.
    PeerDisconnected,
    /// The callee has no device connected.
    Unreachable,
    /// This device started another call, which replaced this one.
    Replaced,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IceTransportPolicy {
    #[default]
    All,
    Relay,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallOptions {
    #[serde(default)]
    pub ice_transport_policy: IceTransportPolicy,
    /// The caller takes the callee's answer before the accept, so a callee's only device may
    /// pre-connect while it rings (docs/protocol.md, Pre-connect).
    #[serde(default, skip_serializing_if = "is_false")]
    pub early_answer: bool,
}

// serde's `skip_serializing_if` takes a function of a reference.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Signal {
    Candidate {
        candidate: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp_mid: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp_mline_index: Option<u16>,
    },
    EndOfCandidates,
    Description {
        sdp_type: SdpType,
        sdp: String,
    },
    /// What the sender is sending now: sent when it stops or starts sending a kind of
    /// media during the call (camera off, mute), and at the start of a call that does not
    /// send both. A receiver that has heard none assumes both.
    Media {
        video: bool,
        audio: bool,
    },
    /// The sender's media connection to the other party is down (its network changed, or
    /// its path stopped working) and it is restarting ICE. The caller answers it with an
    /// ICE-restart offer (a `description` offer); see protocol.md, ICE restart.
    Reconnecting,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SdpType {
    Offer,
    Answer,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Caller,
    Callee,
}

/// How far a restated call had got, as the restating device saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestatedState {
    /// Caller: invited, no answer yet. Callee: ringing, not answered.
    Ringing,
    /// Callee only: sent `accept`, saw no `response` yet.
    Accepting,
    /// Accepted and under way.
    Active,
}

/// A call a device holds, stated in `hello` so that a server that lost it (a restart) or
/// lost this device (a dropped connection) can pick it up again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallRestatement {
    pub call_id: CallId,
    pub role: Role,
    /// The other party's uid.
    pub peer: String,
    pub state: RestatedState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default)]
    pub options: CallOptions,
    /// This device's own session description: the offer (caller) or the answer (callee).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp: Option<String>,
    /// How long the call has rung, so a new server keeps the original ring deadline.
    #[serde(default)]
    pub ring_elapsed_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// `hello.v` is not a version this server speaks. The connection is closed.
    UnsupportedVersion,
    /// The token is missing, malformed, or its signature does not verify. Closed.
    Unauthorized,
    /// The token's `exp` has passed. Closed.
    TokenExpired,
    /// The first message was not `hello`, or none came in time. Closed.
    HelloRequired,
    /// Not JSON, not an object, an unknown `type`, or a missing or extra field.
    Malformed,
    /// A field's value is out of range: an empty uid, calling yourself, a bad call id.
    InvalidRequest,
    /// The frame is longer than `limits.max_message_bytes`.
    MessageTooLarge,
    /// Too many messages; this one was dropped.
    RateLimited,
    /// No call with this id that this device is a party to.
    NotInCall,
    /// The call exists, but this message does not fit its state (accepting a call twice).
    InvalidState,
    /// An invite reused the id of a call that exists.
    DuplicateCallId,
    /// Another connection with the same device id replaced this one. Closed.
    Replaced,
    /// The uid already has the most devices a server allows (`hello` refused). Closed.
    TooManyDevices,
    /// The connection fell further behind than the server queues for it: it did not read
    /// what it was sent. Closed; the device's calls wait out the grace period for it.
    TooSlow,
}

impl ClientMessage {
    /// The call a message is about, if any.
    pub fn call_id(&self) -> Option<&str> {
        match self {
            ClientMessage::Invite { call_id, .. }
            | ClientMessage::Accept { call_id, .. }
            | ClientMessage::Reject { call_id, .. }
            | ClientMessage::Hangup { call_id }
            | ClientMessage::Signal { call_id, .. } => Some(call_id),
            ClientMessage::Hello { .. }
            | ClientMessage::Ping { .. }
            | ClientMessage::RegisterPush { .. }
            | ClientMessage::UnregisterPush => None,
        }
    }
}

impl ServerMessage {
    pub fn call_id(&self) -> Option<&str> {
        match self {
            ServerMessage::Incoming { call_id, .. }
            | ServerMessage::Ringing { call_id }
            | ServerMessage::Response { call_id, .. }
            | ServerMessage::Merged { call_id, .. }
            | ServerMessage::Closed { call_id, .. }
            | ServerMessage::Signal { call_id, .. } => Some(call_id),
            ServerMessage::Error { call_id, .. } => call_id.as_deref(),
            ServerMessage::Welcome { .. }
            | ServerMessage::Pong { .. }
            | ServerMessage::PushRegistered
            | ServerMessage::PushUnregistered => None,
        }
    }

    pub fn error(code: ErrorCode, message: impl Into<String>, call_id: Option<&str>) -> Self {
        ServerMessage::Error { code, message: message.into(), call_id: call_id.map(str::to_owned) }
    }
}

/// Encodes a message as the JSON text of one WebSocket frame.
///
/// # Panics
///
/// Never for the protocol's types: they hold only strings, numbers and enums, which always
/// serialize.
pub fn encode<T: Serialize>(msg: &T) -> String {
    serde_json::to_string(msg).expect("protocol messages always serialize")
}

/// # Errors
///
/// The text is not JSON, or not a client message (unknown type or field, missing field).
pub fn decode_client(text: &str) -> Result<ClientMessage, serde_json::Error> {
    serde_json::from_str(text)
}

/// # Errors
///
/// The text is not JSON, or not a server message.
pub fn decode_server(text: &str) -> Result<ServerMessage, serde_json::Error> {
    serde_json::from_str(text)
}

#[cfg(test)]
mod tests;
