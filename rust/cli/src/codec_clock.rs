//! The CPU time the CLI's calls spend inside their video codecs, by the codec threads' own
//! clocks: `duet demo` reports it so that bench/call-cpu can tell the codec's cost inside a
//! call (two encoders and two decoders sharing the machine with everything else) from the
//! rest of the call's CPU, beside the codec measured alone.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use duet_core::{
    CodecError, EncodedVideo, SoftwareVideoCodecs, VideoCodecs, VideoDecoder, VideoEncoder,
    VideoEncoderConfig,
};
use duet_media::cpu_clock::cpu_time_of;
use duet_media::VideoFrame;

/// Nanoseconds, summed over every call of this process (both sides of `duet demo`).
static SPENT_NS: AtomicU64 = AtomicU64::new(0);

/// What the video codecs of this process's calls have used so far.
pub(crate) fn video_codec_cpu() -> Duration {
    Duration::from_nanos(SPENT_NS.load(Ordering::Relaxed))
}

/// Runs `work`, counting this thread's CPU time in it.
fn timed<T>(work: impl FnOnce() -> T) -> T {
    let (out, spent) = cpu_time_of(work);
    SPENT_NS.fetch_add(u64::try_from(spent.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    out
}

/// The built-in codecs, timed.
pub(crate) fn timed_software_codecs() -> Arc<dyn VideoCodecs> {
    Arc::new(Timed(SoftwareVideoCodecs))
}

struct Timed<C>(C);

impl VideoCodecs for Timed<SoftwareVideoCodecs> {
    fn encoder(&self, config: VideoEncoderConfig) -> Result<Box<dyn VideoEncoder>, CodecError> {
        Ok(Box::new(Timed(self.0.encoder(config)?)))
    }

    fn decoder(&self) -> Result<Box<dyn VideoDecoder>, CodecError> {
        Ok(Box::new(Timed(self.0.decoder()?)))
    }
}

impl VideoEncoder for Timed<Box<dyn VideoEncoder>> {
    fn encode(
        &mut self,
        frame: &VideoFrame,
        keyframe: bool,
    ) -> Result<Option<EncodedVideo>, CodecError> {
        timed(|| self.0.encode(frame, keyframe))
    }

    fn set_target_bitrate(&mut self, bps: u32) {
        self.0.set_target_bitrate(bps);
    }

    fn target_bitrate(&self) -> u32 {
        self.0.target_bitrate()
    }
}

impl VideoDecoder for Timed<Box<dyn VideoDecoder>> {
    fn decode(
        &mut self,
        access_unit: &[u8],
        timestamp_us: u64,
    ) -> Result<Option<VideoFrame>, CodecError> {
        timed(|| self.0.decode(access_unit, timestamp_us))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use duet_media::TestPattern;

    #[test]
    fn encoding_and_decoding_are_counted() {
        let codecs = timed_software_codecs();
        let config =
            VideoEncoderConfig { width: 320, height: 240, fps: 30.0, max_bitrate_bps: 300_000 };
        let mut encoder = codecs.encoder(config).unwrap();
        let mut decoder = codecs.decoder().unwrap();
        let before = video_codec_cpu();
        let pattern = TestPattern::new(320, 240);
        for n in 0..10 {
            let unit = encoder.encode(&pattern.frame(n, u64::from(n)), false).unwrap().unwrap();
            assert!(decoder.decode(&unit.data, u64::from(n)).unwrap().is_some());
        }
        // Ten 320x240 frames through OpenH264 take far more than a microsecond.
        assert!(video_codec_cpu() - before > Duration::from_micros(1));
    }
}
