//! Where a call's video codecs come from. OpenH264 by default; a platform can hand in its
//! hardware codecs (VideoToolbox, MediaCodec) by implementing `VideoCodecs`.

use duet_media::{
    CodecError, OpenH264Decoder, OpenH264Encoder, VideoDecoder, VideoEncoder, VideoEncoderConfig,
};

/// Makes the video encoder and decoder of each call. Both must speak H.264 constrained
/// baseline in Annex B, one access unit per call, as duet-media's traits describe.
pub trait VideoCodecs: Send + Sync {
    /// An encoder for one call's video.
    ///
    /// # Errors
    ///
    /// When no encoder can be made for `config`: the call then fails with `NoCodec`.
    fn encoder(&self, config: VideoEncoderConfig) -> Result<Box<dyn VideoEncoder>, CodecError>;

    /// A decoder for one call's remote video.
    ///
    /// # Errors
    ///
    /// When no decoder can be made: the call then fails with `NoCodec`.
    fn decoder(&self) -> Result<Box<dyn VideoDecoder>, CodecError>;
}

/// OpenH264, in software: runs everywhere, costs CPU (docs/benchmarks.md).
#[derive(Debug, Default)]
pub struct SoftwareVideoCodecs;

impl VideoCodecs for SoftwareVideoCodecs {
    fn encoder(&self, config: VideoEncoderConfig) -> Result<Box<dyn VideoEncoder>, CodecError> {
        Ok(Box::new(OpenH264Encoder::new(config)?))
    }

    fn decoder(&self) -> Result<Box<dyn VideoDecoder>, CodecError> {
        Ok(Box::new(OpenH264Decoder::new()?))
    }
}
