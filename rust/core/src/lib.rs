//! duet-core: the Duet call engine, with no FFI of its own.
//!
//! The API is the "conversation" API of Duet's seeds: `VideoCall::call` returns a
//! `Conversation`; the callee's `VideoCallDelegate` hears
//! `did_receive_call_with_conversation`; `accept`, `reject` and `close` act on a
//! conversation, and its `ConversationDelegate` hears `did_receive_response`,
//! `did_receive_stream`, `did_fail_with_error` and `did_close`.
//!
//! Inside, `lifecycle` is a sans-I/O state machine and `driver` the one task that does its
//! I/O.

mod backoff;
mod client;
mod conversation;
mod dev_token;
mod driver;
mod events;
pub mod lifecycle;
mod media;
mod peer;
mod signaling;
mod sync;
mod task;
mod video_call;

pub use client::{CallOptions, VideoCallDelegate};
pub use conversation::{Conversation, ConversationDelegate};
pub use dev_token::fetch_development_token;
pub use driver::ReconnectPolicy;
pub use duet_media::{CodecError, EncodedVideo, VideoDecoder, VideoEncoder, VideoEncoderConfig};
pub use duet_protocol::{CallStatus, ErrorCode, IceTransportPolicy};
pub use lifecycle::{ActionError, CallError, ConversationState, EndReason};
pub use media::{
    AudioFrame, AudioSink, CaptureError, LocalStream, RemoteStream, Rotation, StreamConstraints,
    VideoConstraints, VideoFrame, VideoSink,
};
pub use peer::{CallStats, CandidateType, MediaConfig, SoftwareVideoCodecs, VideoCodecs};
pub use signaling::{websocket_url, ConnectError, ConnectionState};
pub use video_call::{ClientConfig, VideoCall};
