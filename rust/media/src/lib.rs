//! duet-media: raw media types, the synthetic camera and microphone, and the codecs of a Duet
//! call. No networking here: the engine's peer connection moves what this crate produces.

pub mod audio;
pub mod codec;
pub mod cpu_clock;
pub mod frame;
pub mod pattern;
mod rotate;
pub mod tone;
pub mod verify;

pub use audio::{AudioFrame, SAMPLES_PER_10MS, SAMPLE_RATE};
pub use codec::{
    nal_unit_types, use_openh264_library, AudioChunker, AudioDecoder, AudioEncoder, CodecError,
    EncodedVideo, OpenH264Decoder, OpenH264Encoder, OpusDecoder, OpusEncoder, VideoDecoder,
    VideoEncoder, VideoEncoderConfig, MIN_VIDEO_BITRATE_BPS, OPUS_FRAME_SAMPLES,
};
pub use frame::{FrameError, Plane, Rotation, VideoFrame, MAX_DIMENSION};
pub use pattern::{matches_pattern, read_counter, TestPattern};
pub use tone::{tone_strength, Tone};
pub use verify::{PatternVerifier, Reading};
