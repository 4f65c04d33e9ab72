//! duet-core: the Duet call engine, with no FFI of its own.
//!
//! The API is the "conversation" API of Duet's seeds: `VideoCall::call` returns a
//! `Conversation`; the callee's `VideoCallDelegate` hears
//! `did_receive_call_with_conversation`; `accept`, `reject` and `close` act on a
//! conversation, and its `ConversationDelegate` hears `did_receive_response`,
//! `did_receive_stream`, `did_fail_with_error` and `did_close`.
//!
//! Inside (docs/architecture.md has the map): `lifecycle` is a sans-I/O state machine;
//! `engine` is the one task per `VideoCall` that owns it, every call's record and the
//! signaling link; `VideoCall` and `Conversation` are handles that send the engine
//! commands and read its snapshots; `peer` runs each call's peer connection, with codec
//! work on pipeline threads of its own.

mod backoff;
mod conversation;
mod delegate_queue;
mod dev_token;
mod engine;
mod errors;
mod lifecycle;
mod network;
mod peer;
pub mod runtime;
mod signaling;
mod streams;
mod sync;
mod task;
#[cfg(feature = "built-in-tls")]
mod tls;
mod transport;
mod video_call;

pub use conversation::{Conversation, ConversationDelegate, MediaState};
pub use dev_token::fetch_development_token;
pub use duet_media::{CodecError, EncodedVideo, VideoDecoder, VideoEncoder, VideoEncoderConfig};
pub use duet_protocol::{ApnsEnvironment, CallStatus, ErrorCode, IceTransportPolicy, PushToken};
pub use engine::{PushError, ReconnectPolicy};
pub use errors::{ActionError, CallError, InvalidArgument, MediaKind, WrongState};
pub use lifecycle::{ConversationState, EndReason};
pub use network::local_addresses;
pub use peer::{CallStats, CandidateType, MediaConfig, SoftwareVideoCodecs, VideoCodecs};
pub use signaling::{websocket_url, ConnectError, ConnectionState};
pub use streams::{
    AudioFrame, AudioSink, CaptureError, LocalStream, RemoteStream, Rotation, StreamConstraints,
    VideoConstraints, VideoFrame, VideoSink,
};
pub use transport::{TlsConnection, TlsConnector};
pub use video_call::{CallOptions, ClientConfig, VideoCall, VideoCallDelegate};
