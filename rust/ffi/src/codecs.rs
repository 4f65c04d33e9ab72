//! Video codecs the app provides (VideoToolbox, MediaCodec, or anything else that speaks
//! H.264 constrained baseline), as foreign traits, and the adapters that let duet-core use
//! them as its `VideoCodecs`. `software_video_codecs()` is the built-in OpenH264, for apps
//! that fall back to it and for codecs that wrap it.
//!
//! # Frames and access units cross by address
//!
//! Nothing here carries bytes as `Vec<u8>` (about 120 times a memcpy through UniFFI; see
//! shared/FINDINGS.md). A frame to encode is a `VideoFrame` object (its bytes at
//! `data_address()`), an access unit to decode an `AccessUnit` object (likewise); an encoder
//! appends its output to an `AccessUnitOutput` by address, and a decoder returns a
//! `VideoFrame` (`VideoFrame.from_i420_at` makes one from the codec's planes, one copy).
//! Copies per frame: the engine copies the frame to encode once into the object it hands
//! over (its own frame stays with the sender), and each access unit once into or out of
//! its object; a codec that wraps the built-in one passes these objects through untouched.

use std::sync::{Arc, Mutex, MutexGuard};

use duet_core as core;

use crate::frame::VideoFrame;
use crate::frame_push::plane;

/// A video codec's failure, from the app's codec or the built-in one. A call whose encoder
/// or decoder cannot be made fails with `NoCodec`; a frame that fails to encode is skipped,
/// and an access unit that fails to decode waits for the next keyframe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[uniffi::export(Display)]
pub enum VideoCodecError {
    /// The codec cannot be made for this configuration or on this device.
    #[error("video codec unavailable: {reason}")]
    Unavailable { reason: String },
    /// The sizes, strides or lengths handed over do not describe a frame or a buffer.
    #[error("bad video frame or buffer: {reason}")]
    InvalidInput { reason: String },
    /// The codec failed on one frame or access unit.
    #[error("video codec failed: {reason}")]
    Failed { reason: String },
}

/// A foreign codec that throws something other than `VideoCodecError` (or whose callback
/// fails) gives this, not a panic.
impl From<uniffi::UnexpectedUniFFICallbackError> for VideoCodecError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        VideoCodecError::Failed { reason: e.reason }
    }
}

impl From<core::CodecError> for VideoCodecError {
    fn from(e: core::CodecError) -> Self {
        match e {
            core::CodecError::InvalidConfig(reason) | core::CodecError::Unavailable(reason) => {
                VideoCodecError::Unavailable { reason }
            }
            core::CodecError::InvalidFrame(_)
            | core::CodecError::FrameTooSmall { .. }
            | core::CodecError::EmptyPacket => {
                VideoCodecError::InvalidInput { reason: e.to_string() }
            }
            other => VideoCodecError::Failed { reason: other.to_string() },
        }
    }
}

/// What an encoder is made for. Frames of another size may come later (the camera turned):
/// the encoder then starts again at that size, with a keyframe.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct VideoEncoderConfig {
    pub width: u32,
    pub height: u32,
    pub fps: f32,
    /// The most the encoder may spend; `set_target_bitrate` asks for less, never more.
    pub max_bitrate_bps: u32,
}

impl From<VideoEncoderConfig> for core::VideoEncoderConfig {
    fn from(c: VideoEncoderConfig) -> Self {
        core::VideoEncoderConfig {
            width: c.width,
            height: c.height,
            fps: c.fps,
            max_bitrate_bps: c.max_bitrate_bps,
        }
    }
}

impl From<core::VideoEncoderConfig> for VideoEncoderConfig {
    fn from(c: core::VideoEncoderConfig) -> Self {
        VideoEncoderConfig {
            width: c.width,
            height: c.height,
            fps: c.fps,
            max_bitrate_bps: c.max_bitrate_bps,
        }
    }
}

/// One H.264 access unit in Annex B (start codes before each NAL unit), to decode. Its
/// bytes are at `data_address()` while this object is alive, as `VideoFrame`'s are. Copy
/// what you keep.
#[derive(uniffi::Object)]
pub struct AccessUnit {
    data: Vec<u8>,
    timestamp_us: u64,
}

#[uniffi::export]
impl AccessUnit {
    /// Where the access unit's bytes start; valid while this object is alive.
    pub fn data_address(&self) -> u64 {
        self.data.as_ptr() as usize as u64
    }

    pub fn data_len(&self) -> u64 {
        self.data.len() as u64
    }

    /// The sender's capture time, in microseconds: stamp the decoded frame with it.
    pub fn timestamp_us(&self) -> u64 {
        self.timestamp_us
    }
}

/// Where an encoder puts the access unit it made of one frame: Annex B, SPS and PPS before
/// the IDR slice on keyframes. Nothing appended means the encoder skipped the frame.
#[derive(Default, uniffi::Object)]
pub struct AccessUnitOutput {
    data: Mutex<Vec<u8>>,
}

impl AccessUnitOutput {
    fn bytes(&self) -> MutexGuard<'_, Vec<u8>> {
        // A poisoned lock only means an earlier append panicked; the bytes are still bytes.
        self.data.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.bytes())
    }
}

#[uniffi::export]
impl AccessUnitOutput {
    /// An empty output, for a codec that wraps another and works on its output (the engine
    /// makes the one `VideoEncoder.encode` fills).
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// What was appended, as an `AccessUnit` to read by address; this output is empty
    /// afterwards.
    pub fn finish(&self) -> Arc<AccessUnit> {
        Arc::new(AccessUnit { data: self.take(), timestamp_us: 0 })
    }

    /// Appends `len` bytes read at `address` during this call (they are copied). Prefer the
    /// Swift `append(_: Data)` and Kotlin `append(ByteBuffer)` conveniences.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a null address with a non-zero length, or a length that does not
    /// fit in memory.
    pub fn append_at(&self, address: u64, len: u64) -> Result<(), VideoCodecError> {
        let bytes = plane("access unit", address, len)
            .map_err(|e| VideoCodecError::InvalidInput { reason: e.to_string() })?;
        self.bytes().extend_from_slice(bytes);
        Ok(())
    }

    /// How many bytes have been appended so far.
    pub fn len(&self) -> u64 {
        self.bytes().len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.bytes().is_empty()
    }
}

/// An H.264 encoder the app provides. Called on one media thread at a time, once per frame.
#[uniffi::export(with_foreign)]
pub trait VideoEncoder: Send + Sync {
    /// Encodes `frame` (I420, read at `frame.data_address()`, valid while `frame` is alive)
    /// and appends the access unit to `output`; appends nothing to skip the frame.
    /// `keyframe`: make this one an IDR (the receiver lost the picture).
    ///
    /// # Errors
    ///
    /// Any `VideoCodecError`; the frame is then dropped and the call goes on.
    fn encode(
        &self,
        frame: Arc<VideoFrame>,
        keyframe: bool,
        output: Arc<AccessUnitOutput>,
    ) -> Result<(), VideoCodecError>;

    /// The congestion controller's estimate, already within [50 kbit/s,
    /// `max_bitrate_bps`]: aim at it from the next frame on.
    ///
    /// # Errors
    ///
    /// Any `VideoCodecError`: it is logged, and the encoder keeps its bitrate.
    fn set_target_bitrate(&self, bps: u32) -> Result<(), VideoCodecError>;
}

/// An H.264 decoder the app provides. Called on one media thread at a time.
#[uniffi::export(with_foreign)]
pub trait VideoDecoder: Send + Sync {
    /// Decodes one Annex-B access unit; `None` while it has no picture yet.
    ///
    /// # Errors
    ///
    /// Any `VideoCodecError`; the engine asks the sender for a keyframe.
    fn decode(
        &self,
        access_unit: Arc<AccessUnit>,
    ) -> Result<Option<Arc<VideoFrame>>, VideoCodecError>;
}

/// Makes each call's video encoder and decoder: hand one to `VideoCall.connect`. Both
/// speak H.264 constrained baseline in Annex B, one access unit per call.
#[uniffi::export(with_foreign)]
pub trait VideoCodecs: Send + Sync {
    /// # Errors
    ///
    /// When no encoder can be made (the call fails with `NoCodec`): fall back to
    /// `software_video_codecs()` instead where that is better.
    fn encoder(&self, config: VideoEncoderConfig)
        -> Result<Arc<dyn VideoEncoder>, VideoCodecError>;

    /// # Errors
    ///
    /// When no decoder can be made (the call fails with `NoCodec`).
    fn decoder(&self) -> Result<Arc<dyn VideoDecoder>, VideoCodecError>;
}

/// The OpenH264 codecs, which every call uses unless `VideoCall.connect` is given others.
/// Platform codecs fall back to them, and test codecs wrap them. The mobile builds have no
/// OpenH264 inside (scripts/build-xcframework, scripts/build-android): there these codecs use
/// the library `use_openh264_library` loaded, else the platform's `libopenh264` if the
/// loader finds one, else they are `Unavailable` (a call without other codecs then fails
/// with `NoCodec`).
#[uniffi::export]
pub fn software_video_codecs() -> Arc<dyn VideoCodecs> {
    Arc::new(SoftwareVideoCodecs)
}

/// Loads OpenH264 (2.6 or 2.7) from the shared library at `path` (Cisco's binary, downloaded or
/// shipped with the app) for every software codec made from now on; returns its version.
///
/// # Errors
///
/// `Unavailable` when the file cannot be loaded, is not OpenH264, or is another release;
/// the codecs keep what they used before.
#[uniffi::export]
pub fn use_openh264_library(path: String) -> Result<String, VideoCodecError> {
    Ok(duet_media::use_openh264_library(path)?)
}

struct SoftwareVideoCodecs;

impl VideoCodecs for SoftwareVideoCodecs {
    fn encoder(
        &self,
        config: VideoEncoderConfig,
    ) -> Result<Arc<dyn VideoEncoder>, VideoCodecError> {
        let encoder = core::VideoCodecs::encoder(&core::SoftwareVideoCodecs, config.into())?;
        Ok(Arc::new(SoftwareEncoder(Mutex::new(encoder))))
    }

    fn decoder(&self) -> Result<Arc<dyn VideoDecoder>, VideoCodecError> {
        let decoder = core::VideoCodecs::decoder(&core::SoftwareVideoCodecs)?;
        Ok(Arc::new(SoftwareDecoder(Mutex::new(decoder))))
    }
}

fn locked<T: ?Sized>(m: &Mutex<Box<T>>) -> MutexGuard<'_, Box<T>> {
    // A codec that panicked mid-call is still the codec; the next keyframe resets it.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct SoftwareEncoder(Mutex<Box<dyn core::VideoEncoder>>);

impl VideoEncoder for SoftwareEncoder {
    fn encode(
        &self,
        frame: Arc<VideoFrame>,
        keyframe: bool,
        output: Arc<AccessUnitOutput>,
    ) -> Result<(), VideoCodecError> {
        if let Some(encoded) = locked(&self.0).encode(frame.core_ref(), keyframe)? {
            output.bytes().extend_from_slice(&encoded.data);
        }
        Ok(())
    }

    fn set_target_bitrate(&self, bps: u32) -> Result<(), VideoCodecError> {
        locked(&self.0).set_target_bitrate(bps);
        Ok(())
    }
}

struct SoftwareDecoder(Mutex<Box<dyn core::VideoDecoder>>);

impl VideoDecoder for SoftwareDecoder {
    fn decode(
        &self,
        access_unit: Arc<AccessUnit>,
    ) -> Result<Option<Arc<VideoFrame>>, VideoCodecError> {
        let frame = locked(&self.0).decode(&access_unit.data, access_unit.timestamp_us)?;
        Ok(frame.map(|f| VideoFrame::new(Arc::new(f))))
    }
}

/// The app's codecs as duet-core's.
pub(crate) struct VideoCodecsAdapter(pub Arc<dyn VideoCodecs>);

impl core::VideoCodecs for VideoCodecsAdapter {
    fn encoder(
        &self,
        config: core::VideoEncoderConfig,
    ) -> Result<Box<dyn core::VideoEncoder>, core::CodecError> {
        config.validate()?;
        let max_bps = config.max_bitrate_bps;
        let encoder = self
            .0
            .encoder(config.into())
            .map_err(|e| core::CodecError::Unavailable(e.to_string()))?;
        Ok(Box::new(EncoderAdapter { encoder, max_bps, target_bps: max_bps }))
    }

    fn decoder(&self) -> Result<Box<dyn core::VideoDecoder>, core::CodecError> {
        let decoder = self.0.decoder().map_err(|e| core::CodecError::Unavailable(e.to_string()))?;
        Ok(Box::new(DecoderAdapter(decoder)))
    }
}

struct EncoderAdapter {
    encoder: Arc<dyn VideoEncoder>,
    max_bps: u32,
    target_bps: u32,
}

/// NAL unit type 5: a slice of an IDR picture.
const IDR_SLICE: u8 = 5;

impl core::VideoEncoder for EncoderAdapter {
    fn encode(
        &mut self,
        frame: &core::VideoFrame,
        keyframe: bool,
    ) -> Result<Option<core::EncodedVideo>, core::CodecError> {
        frame.validate()?;
        // The one copy of the frame: the object the app's encoder may keep beyond this call
        // must own its bytes.
        let handed = VideoFrame::new(Arc::new(frame.clone()));
        let output = Arc::new(AccessUnitOutput::default());
        self.encoder
            .encode(handed, keyframe, Arc::clone(&output))
            .map_err(|e| core::CodecError::Encode(e.to_string()))?;
        let data = output.take();
        if data.is_empty() {
            return Ok(None);
        }
        // From the bytes, not from the app: what the packetizer and the keyframe logic act
        // on is whether an IDR slice is there.
        let keyframe = duet_media::nal_unit_types(&data).contains(&IDR_SLICE);
        Ok(Some(core::EncodedVideo { data, keyframe, timestamp_us: frame.timestamp_us }))
    }

    fn set_target_bitrate(&mut self, bps: u32) {
        let bps = bps.clamp(duet_media::MIN_VIDEO_BITRATE_BPS.min(self.max_bps), self.max_bps);
        if let Err(e) = self.encoder.set_target_bitrate(bps) {
            tracing::warn!("the app's video encoder refused {bps} bps: {e}");
            return;
        }
        self.target_bps = bps;
    }

    fn target_bitrate(&self) -> u32 {
        self.target_bps
    }
}

struct DecoderAdapter(Arc<dyn VideoDecoder>);

impl core::VideoDecoder for DecoderAdapter {
    fn decode(
        &mut self,
        access_unit: &[u8],
        timestamp_us: u64,
    ) -> Result<Option<core::VideoFrame>, core::CodecError> {
        if access_unit.is_empty() {
            return Err(core::CodecError::EmptyPacket);
        }
        let unit = Arc::new(AccessUnit { data: access_unit.to_vec(), timestamp_us });
        let frame = self.0.decode(unit).map_err(|e| core::CodecError::Decode(e.to_string()))?;
        let Some(frame) = frame else { return Ok(None) };
        let frame = frame.into_core();
        frame.validate()?;
        Ok(Some(frame))
    }
}

#[uniffi::export]
impl VideoFrame {
    /// A frame from a decoder's I420 planes, read at the given addresses during this call
    /// and copied once into a packed frame (the contract is `LocalStream.push_i420_at`'s).
    /// Prefer the Swift and Kotlin `VideoFrame.i420(...)` conveniences.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when the sizes, strides or plane lengths do not describe a picture.
    #[uniffi::constructor]
    #[allow(clippy::too_many_arguments)]
    pub fn from_i420_at(
        width: u32,
        height: u32,
        y_address: u64,
        y_len: u64,
        y_stride: u32,
        u_address: u64,
        u_len: u64,
        u_stride: u32,
        v_address: u64,
        v_len: u64,
        v_stride: u32,
        timestamp_us: u64,
    ) -> Result<Arc<Self>, VideoCodecError> {
        let invalid = |reason: String| VideoCodecError::InvalidInput { reason };
        let y = plane("Y", y_address, y_len).map_err(|e| invalid(e.to_string()))?;
        let u = plane("U", u_address, u_len).map_err(|e| invalid(e.to_string()))?;
        let v = plane("V", v_address, v_len).map_err(|e| invalid(e.to_string()))?;
        let frame = core::VideoFrame::from_i420(
            width,
            height,
            y,
            y_stride,
            u,
            u_stride,
            v,
            v_stride,
            timestamp_us,
            core::Rotation::Deg0,
        )
        .map_err(|e| invalid(e.to_string()))?;
        Ok(VideoFrame::new(Arc::new(frame)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_failures_are_typed_errors() {
        let e = VideoCodecError::from(uniffi::UnexpectedUniFFICallbackError::new("boom"));
        assert_eq!(e, VideoCodecError::Failed { reason: "boom".into() });
        let e = VideoCodecError::from(core::CodecError::InvalidConfig("0x0".into()));
        assert!(matches!(e, VideoCodecError::Unavailable { .. }), "{e}");
    }

    #[test]
    fn the_software_codecs_round_trip_through_the_adapters() {
        let codecs = VideoCodecsAdapter(software_video_codecs());
        let config =
            core::VideoEncoderConfig { width: 64, height: 48, fps: 30.0, max_bitrate_bps: 300_000 };
        let mut encoder = core::VideoCodecs::encoder(&codecs, config).unwrap();
        let mut decoder = core::VideoCodecs::decoder(&codecs).unwrap();
        let frame = core::VideoFrame::black(64, 48, 1234);
        let unit = encoder.encode(&frame, true).unwrap().expect("a keyframe");
        assert!(unit.keyframe, "an IDR is recognised from the bytes");
        assert_eq!(unit.timestamp_us, 1234);
        let decoded = decoder.decode(&unit.data, 1234).unwrap().expect("a picture");
        assert_eq!((decoded.width, decoded.height, decoded.timestamp_us), (64, 48, 1234));
        encoder.set_target_bitrate(10);
        assert_eq!(encoder.target_bitrate(), duet_media::MIN_VIDEO_BITRATE_BPS);
        assert!(matches!(decoder.decode(&[], 0), Err(core::CodecError::EmptyPacket)));
    }

    #[test]
    fn outputs_append_by_address() {
        let output = AccessUnitOutput::default();
        let bytes = [0u8, 0, 1, 0x65, 7];
        output.append_at(bytes.as_ptr() as usize as u64, 5).unwrap();
        output.append_at(0, 0).unwrap();
        assert_eq!(output.len(), 5);
        assert!(output.append_at(0, 3).is_err());
        assert_eq!(output.take(), bytes);
    }
}
