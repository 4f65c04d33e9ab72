//! duet-ffi: the UniFFI facade of duet-core. The Swift package `Duet` and the Kotlin package
//! `dev.duet` are generated from this crate (`scripts/generate-bindings`).
//!
//! It is thin on purpose: every type here converts to or from one of duet-core's and every
//! method forwards to duet-core. Behaviour lives in duet-core.
//!
//! - `VideoCall::connect` gives a connected client; `VideoCall::call` gives a `Conversation`.
//! - Delegates and sinks are foreign traits: `VideoCallDelegate`, `ConversationDelegate`,
//!   `VideoSink`, `AudioSink`.
//! - Frames go in by address (`LocalStream::push_i420_at`, `push_nv12_at`, wrapped by the
//!   Swift and Kotlin `pushI420`/`pushNv12` that take `Data` / direct `ByteBuffer`s; Kotlin's
//!   call them through the plain C entry points of `frame_push_c.rs`) and come out as
//!   `VideoFrame` objects whose bytes the app reads at `data_address()` (see `frame.rs` for
//!   the lifetime rule and the copies a frame costs).
//! - Video codecs the app provides (VideoToolbox, MediaCodec) are foreign traits too:
//!   `VideoCodecs` makes a `VideoEncoder` and a `VideoDecoder` per call, given to
//!   `VideoCall::connect`; `software_video_codecs()` is OpenH264 (built in, or in the mobile
//!   builds loaded at run time by `use_openh264_library`), which they can fall back to or
//!   wrap (`codecs.rs`).
//! - Everything async runs on the library's own multi-threaded tokio runtime
//!   (`runtime.rs`), whichever executor the foreign side polls it from.

mod codecs;
mod conversation;
mod delegates;
mod errors;
mod frame;
mod frame_push;
mod frame_push_c;
mod logging;
mod records;
mod runtime;
mod streams;
mod tls;
mod video_call;

pub use codecs::{
    software_video_codecs, use_openh264_library, AccessUnit, AccessUnitOutput, VideoCodecError,
    VideoCodecs, VideoDecoder, VideoEncoder, VideoEncoderConfig,
};
pub use conversation::Conversation;
pub use delegates::{AudioSink, ConversationDelegate, VideoCallDelegate, VideoSink};
pub use errors::{
    ActionError, CallError, CaptureError, ConnectError, InvalidArgumentKind, MediaKind, PushError,
    ServerErrorCode, WrongStateKind,
};
pub use frame::VideoFrame;
pub use logging::init_logging;
pub use records::{
    ApnsEnvironment, AudioFrame, CallOptions, CallStats, CallStatus, CandidateType, ClientConfig,
    ConnectionState, ConversationState, EndReason, IceTransportPolicy, MediaState, PushToken,
    Rotation, StreamConstraints, VideoConstraints, VideoSize,
};
pub use streams::{LocalStream, RemoteStream};
pub use tls::{TlsConnection, TlsConnector, TlsError};
pub use video_call::{fetch_development_token, VideoCall};

// The namespace names the generated files (`duet.kt`) and the C symbols (`uniffi_duet_*`).
uniffi::setup_scaffolding!("duet");
