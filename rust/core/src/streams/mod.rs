//! The media a conversation carries, as the app sees it: the local stream it captures into,
//! and the remote stream it renders and plays from. The peer connection that moves the
//! media between them is in `peer`.

mod local;
mod remote;
mod synthetic;

pub use duet_media::{AudioFrame, Rotation, VideoFrame};
pub(crate) use local::Sending;
pub use local::{CaptureError, LocalStream, StreamConstraints, VideoConstraints};
pub use remote::{AudioSink, RemoteStream, VideoSink};
