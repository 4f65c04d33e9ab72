//! Codec interfaces and the software implementations behind them.
//!
//! The traits are what a platform hardware codec (VideoToolbox, MediaCodec) implements later
//! through UniFFI callbacks, so they stay object-safe and deal only in plain data.

mod annexb;
mod chunker;
mod h264;
mod openh264_library;
mod opus;

pub use annexb::nal_unit_types;
pub use chunker::AudioChunker;
pub use h264::{OpenH264Decoder, OpenH264Encoder};
pub use openh264_library::use_openh264_library;
pub use opus::{OpusDecoder, OpusEncoder};

use crate::frame::{FrameError, VideoFrame};

/// The congestion controller may ask for less, but below this a call's video is not worth
/// sending at any size; the transport should rather stop video.
pub const MIN_VIDEO_BITRATE_BPS: u32 = 50_000;

/// 20 ms mono at 48 kHz.
pub const OPUS_FRAME_SAMPLES: usize = 960;

#[derive(Clone, Debug, PartialEq)]
pub struct EncodedVideo {
    /// One Annex-B access unit; on keyframes SPS and PPS precede the IDR slice, which is what
    /// the RTP packetizer needs to send them in one STAP-A.
    pub data: Vec<u8>,
    pub keyframe: bool,
    pub timestamp_us: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct VideoEncoderConfig {
    pub width: u32,
    pub height: u32,
    pub fps: f32,
    pub max_bitrate_bps: u32,
}

impl VideoEncoderConfig {
    /// # Errors
    ///
    /// `InvalidConfig` for a zero side, a frame rate outside (0, 240], or a maximum bitrate
    /// outside [`MIN_VIDEO_BITRATE_BPS`, `i32::MAX`].
    pub fn validate(&self) -> Result<(), CodecError> {
        let bad = |why: String| Err(CodecError::InvalidConfig(why));
        if self.width == 0 || self.height == 0 {
            return bad(format!("size {}x{} has a zero side", self.width, self.height));
        }
        if !(self.fps.is_finite() && self.fps > 0.0 && self.fps <= 240.0) {
            return bad(format!("frame rate {} is not in (0, 240]", self.fps));
        }
        // openh264 stores bitrates as i32.
        if !(MIN_VIDEO_BITRATE_BPS..=i32::MAX as u32).contains(&self.max_bitrate_bps) {
            return bad(format!(
                "max bitrate {} bps is not in [{MIN_VIDEO_BITRATE_BPS}, {}]",
                self.max_bitrate_bps,
                i32::MAX
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("invalid codec configuration: {0}")]
    InvalidConfig(String),
    /// No codec can be made here (OpenH264 neither built in nor loadable).
    #[error("codec unavailable: {0}")]
    Unavailable(String),
    #[error("invalid video frame: {0}")]
    InvalidFrame(#[from] FrameError),
    #[error("video frame {width}x{height} is too small to encode")]
    FrameTooSmall { width: u32, height: u32 },
    #[error("audio frame has {got} samples, expected {expected}")]
    AudioFrameSize { expected: usize, got: usize },
    #[error("empty packet")]
    EmptyPacket,
    #[error("encoder failed: {0}")]
    Encode(String),
    #[error("decoder failed: {0}")]
    Decode(String),
}

pub trait VideoEncoder: Send {
    /// Encodes one frame; `keyframe` forces an IDR (a PLI/FIR arrived). May return None if the
    /// encoder skipped the frame. A frame whose size differs from the configured one
    /// reconfigures the encoder (the next output is a keyframe).
    ///
    /// # Errors
    ///
    /// `InvalidFrame` for a frame that fails `VideoFrame::validate`, `FrameTooSmall` for one
    /// the codec cannot code, `Encode` when the codec fails.
    fn encode(
        &mut self,
        frame: &VideoFrame,
        keyframe: bool,
    ) -> Result<Option<EncodedVideo>, CodecError>;
    /// The congestion controller's or the receiver's estimate; clamp to
    /// [MIN_VIDEO_BITRATE_BPS, max_bitrate_bps].
    fn set_target_bitrate(&mut self, bps: u32);
    fn target_bitrate(&self) -> u32;
}

pub trait VideoDecoder: Send {
    /// Decodes one Annex-B access unit; None if it produced no picture yet.
    ///
    /// # Errors
    ///
    /// `EmptyPacket` for an empty access unit, `Decode` for one the codec cannot decode (the
    /// next keyframe recovers).
    fn decode(
        &mut self,
        access_unit: &[u8],
        timestamp_us: u64,
    ) -> Result<Option<VideoFrame>, CodecError>;
}

pub trait AudioEncoder: Send {
    /// 20 ms of mono 48 kHz PCM in, one packet out.
    ///
    /// # Errors
    ///
    /// `AudioFrameSize` unless `pcm` is `OPUS_FRAME_SAMPLES` long, `Encode` when the codec
    /// fails.
    fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, CodecError>;
}

pub trait AudioDecoder: Send {
    /// One packet in, its mono 48 kHz PCM out.
    ///
    /// # Errors
    ///
    /// `EmptyPacket` for an empty packet, `Decode` for one the codec cannot decode.
    fn decode(&mut self, packet: &[u8]) -> Result<Vec<i16>, CodecError>;
    /// Concealment for a lost packet.
    ///
    /// # Errors
    ///
    /// `Decode` when the codec fails.
    fn conceal(&mut self) -> Result<Vec<i16>, CodecError>;
    /// The lost packet just before `next_packet`, from what `next_packet` carries of it
    /// (Opus in-band FEC); concealment for a codec that carries nothing.
    ///
    /// # Errors
    ///
    /// `Decode` when the codec fails.
    fn recover(&mut self, next_packet: &[u8]) -> Result<Vec<i16>, CodecError> {
        let _ = next_packet;
        self.conceal()
    }
}
