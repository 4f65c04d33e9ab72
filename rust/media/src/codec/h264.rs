//! H.264 through Cisco's OpenH264 (built in or loaded, see `openh264_library`): the software
//! codec every platform can fall back to.

use openh264::decoder::{Decoder, DecoderConfig};
use openh264::encoder::{
    BitRate, Encoder, EncoderConfig, FrameRate, FrameType, Profile, RateControlMode, UsageType,
};
use openh264::formats::YUVSource;
use openh264_sys2::{
    SBitrateInfo, ENCODER_OPTION, ENCODER_OPTION_BITRATE, ENCODER_OPTION_MAX_BITRATE,
    ENCODER_OPTION_TRACE_LEVEL, SPATIAL_LAYER_0, SPATIAL_LAYER_ALL, WELS_LOG_QUIET,
};
use std::os::raw::c_int;

use super::openh264_library;
use super::{
    CodecError, EncodedVideo, VideoDecoder, VideoEncoder, VideoEncoderConfig, MIN_VIDEO_BITRATE_BPS,
};
use crate::frame::{Rotation, VideoFrame};

/// Smaller pictures are rejected by OpenH264's parameter checks.
const MIN_SIDE: u32 = 16;

/// A borrowed view of the even-sized top-left part of a frame. 4:2:0 H.264 cannot code an odd
/// side, so an odd last row or column is dropped (the receiver sees a picture one pixel smaller),
/// which beats refusing the frame of a camera with an odd crop.
struct EvenView<'a> {
    frame: &'a VideoFrame,
    width: u32,
    height: u32,
}

impl YUVSource for EvenView<'_> {
    fn dimensions(&self) -> (usize, usize) {
        (self.width as usize, self.height as usize)
    }

    fn strides(&self) -> (usize, usize, usize) {
        let c = self.frame.chroma_width() as usize;
        (self.frame.width as usize, c, c)
    }

    fn y(&self) -> &[u8] {
        self.frame.y()
    }

    fn u(&self) -> &[u8] {
        self.frame.u()
    }

    fn v(&self) -> &[u8] {
        self.frame.v()
    }
}

/// One OpenH264 encoder instance, valid for one picture size.
struct Session {
    encoder: Encoder,
    width: u32,
    height: u32,
    /// OpenH264 initialises on the first frame; options can only be set after that.
    started: bool,
    max_lifted: bool,
    applied_bps: u32,
}

/// Constrained baseline (what every WebRTC endpoint decodes), one thread, no frame skipping
/// (skipping dropped most frames of busy 720p content; a call would rather lose quality),
/// real-time camera tuning.
pub struct OpenH264Encoder {
    config: VideoEncoderConfig,
    target_bps: u32,
    session: Option<Session>,
}

fn encode_error(e: openh264::Error) -> CodecError {
    CodecError::Encode(e.to_string())
}

impl OpenH264Encoder {
    /// Starts at `max_bitrate_bps`; the congestion controller lowers it through
    /// `set_target_bitrate`.
    ///
    /// # Errors
    ///
    /// `InvalidConfig` for a configuration `VideoEncoderConfig::validate` refuses,
    /// `Unavailable` without an OpenH264 to use, `Encode` if it cannot create an encoder.
    pub fn new(config: VideoEncoderConfig) -> Result<Self, CodecError> {
        config.validate()?;
        let mut encoder =
            OpenH264Encoder { target_bps: config.max_bitrate_bps, config, session: None };
        // Created now for the configured size so a broken library fails here, not mid-call.
        encoder.session = Some(encoder.new_session(encoder.config.width, encoder.config.height)?);
        Ok(encoder)
    }

    fn new_session(&self, width: u32, height: u32) -> Result<Session, CodecError> {
        let config = EncoderConfig::new()
            .bitrate(BitRate::from_bps(self.target_bps))
            .max_frame_rate(FrameRate::from_hz(self.config.fps))
            .rate_control_mode(RateControlMode::Bitrate)
            .usage_type(UsageType::CameraVideoRealTime)
            .profile(Profile::Baseline)
            .skip_frames(false)
            .num_threads(1);
        let mut encoder =
            Encoder::with_api_config(openh264_library::api()?, config).map_err(encode_error)?;
        // OpenH264 logs warnings to stderr by default, and its parameter check warns on every
        // new encoder that rate control needs frame skipping: frames are never skipped here on
        // purpose (see above). The crate sets the quiet level only after that check has run,
        // so set it now, before the first frame initialises the encoder.
        let mut quiet = WELS_LOG_QUIET;
        set_option(&mut encoder, ENCODER_OPTION_TRACE_LEVEL, &mut quiet).map_err(|rc| {
            CodecError::Encode(format!("quieting the encoder's log failed (code {rc})"))
        })?;
        Ok(Session {
            encoder,
            width,
            height,
            started: false,
            max_lifted: false,
            applied_bps: self.target_bps,
        })
    }
}

/// The value types OpenH264 reads for the options set here; `set_option` takes no other.
trait EncoderOptionValue {}
/// ENCODER_OPTION_BITRATE and ENCODER_OPTION_MAX_BITRATE.
impl EncoderOptionValue for SBitrateInfo {}
/// ENCODER_OPTION_TRACE_LEVEL: a level such as WELS_LOG_QUIET.
impl EncoderOptionValue for c_int {}

/// Sets one option through OpenH264's C API, for what the safe wrapper does not expose.
/// Fails with OpenH264's return code.
fn set_option<T: EncoderOptionValue>(
    encoder: &mut Encoder,
    option: ENCODER_OPTION,
    value: &mut T,
) -> Result<(), c_int> {
    // SAFETY: `value` is the type OpenH264 reads for `option` (EncoderOptionValue above), and
    // it reads it only during the call. The bitrate options are set once a frame has gone
    // through (the encoder is initialised); the trace level is one of the options OpenH264
    // accepts before that.
    let rc = unsafe { encoder.raw_api().set_option(option, std::ptr::from_mut(value).cast()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(rc)
    }
}

fn set_bitrate_option(
    session: &mut Session,
    option: ENCODER_OPTION,
    layer: i32,
    bps: u32,
) -> Result<(), CodecError> {
    // OpenH264 stores bitrates as i32; the configured maximum fits (VideoEncoderConfig::validate).
    let bitrate = i32::try_from(bps).unwrap_or(i32::MAX);
    let mut info = SBitrateInfo { iLayer: layer, iBitrate: bitrate };
    set_option(&mut session.encoder, option, &mut info)
        .map_err(|rc| CodecError::Encode(format!("setting bitrate {bps} failed (code {rc})")))
}

impl VideoEncoder for OpenH264Encoder {
    fn encode(
        &mut self,
        frame: &VideoFrame,
        keyframe: bool,
    ) -> Result<Option<EncodedVideo>, CodecError> {
        frame.validate()?;
        let (width, height) = (frame.width & !1, frame.height & !1);
        if width < MIN_SIDE || height < MIN_SIDE {
            return Err(CodecError::FrameTooSmall { width: frame.width, height: frame.height });
        }
        // A fresh encoder rather than OpenH264's in-place reconfiguration: it certainly starts
        // with SPS, PPS and an IDR, and it carries the current target bitrate.
        let resized = self.session.as_ref().is_none_or(|s| (s.width, s.height) != (width, height));
        if resized {
            self.session = None;
            self.session = Some(self.new_session(width, height)?);
        }
        let target = self.target_bps;
        let Some(session) = self.session.as_mut() else {
            return Err(CodecError::Encode("no encoder session".into()));
        };
        if session.started {
            if keyframe {
                session.encoder.force_intra_frame();
            }
            // Each option is marked done before it is tried, so a failure surfaces as one
            // error and the next frame encodes at the old rate instead of failing forever.
            if !session.max_lifted {
                session.max_lifted = true;
                // OpenH264 caps the layer at the bitrate it started with and refuses targets
                // above that cap; lift it to the configured maximum.
                let max = self.config.max_bitrate_bps;
                set_bitrate_option(session, ENCODER_OPTION_MAX_BITRATE, SPATIAL_LAYER_0, max)?;
            }
            if session.applied_bps != target {
                session.applied_bps = target;
                set_bitrate_option(session, ENCODER_OPTION_BITRATE, SPATIAL_LAYER_ALL, target)?;
            }
        }
        let view = EvenView { frame, width, height };
        let (data, frame_type) = {
            let stream = session.encoder.encode(&view).map_err(encode_error)?;
            (stream.to_vec(), stream.frame_type())
        };
        session.started = true;
        if frame_type == FrameType::Skip || data.is_empty() {
            return Ok(None);
        }
        Ok(Some(EncodedVideo {
            data,
            keyframe: frame_type == FrameType::IDR,
            timestamp_us: frame.timestamp_us,
        }))
    }

    fn set_target_bitrate(&mut self, bps: u32) {
        self.target_bps = bps.clamp(MIN_VIDEO_BITRATE_BPS, self.config.max_bitrate_bps);
    }

    fn target_bitrate(&self) -> u32 {
        self.target_bps
    }
}

pub struct OpenH264Decoder {
    decoder: Decoder,
}

impl OpenH264Decoder {
    /// # Errors
    ///
    /// `Unavailable` without an OpenH264 to use, `Decode` if it cannot create a decoder.
    pub fn new() -> Result<Self, CodecError> {
        let decoder = Decoder::with_api_config(openh264_library::api()?, DecoderConfig::new())
            .map_err(|e| CodecError::Decode(e.to_string()))?;
        Ok(OpenH264Decoder { decoder })
    }
}

impl VideoDecoder for OpenH264Decoder {
    fn decode(
        &mut self,
        access_unit: &[u8],
        timestamp_us: u64,
    ) -> Result<Option<VideoFrame>, CodecError> {
        if access_unit.is_empty() {
            return Err(CodecError::EmptyPacket);
        }
        let picture = match self.decoder.decode(access_unit) {
            Ok(Some(picture)) => picture,
            Ok(None) => return Ok(None),
            Err(e) => return Err(CodecError::Decode(e.to_string())),
        };
        // The picture borrows the decoder's buffers, which the next decode call reuses: copy.
        let (w, h) = picture.dimensions();
        let (y_stride, u_stride, v_stride) = picture.strides();
        let as_u32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        VideoFrame::from_i420(
            as_u32(w),
            as_u32(h),
            picture.y(),
            as_u32(y_stride),
            picture.u(),
            as_u32(u_stride),
            picture.v(),
            as_u32(v_stride),
            timestamp_us,
            Rotation::Deg0,
        )
        .map(Some)
        .map_err(|e| CodecError::Decode(format!("decoder returned a malformed picture: {e}")))
    }
}
