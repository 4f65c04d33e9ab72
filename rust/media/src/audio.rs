//! The raw audio unit exchanged with platform microphone and playout shims.

/// Everything inside the engine runs at Opus's native rate, so no resampling happens here;
/// platforms capture or convert to 48 kHz mono.
pub const SAMPLE_RATE: u32 = 48_000;

/// 10 ms of mono audio: the period of iOS's and Android's voice-processing I/O callbacks.
pub const SAMPLES_PER_10MS: usize = 480;

/// 10 ms of mono 48 kHz PCM, the unit platforms push and pull.
#[derive(Clone, Debug, PartialEq)]
pub struct AudioFrame {
    pub samples: Vec<i16>,
    pub timestamp_us: u64,
}

impl AudioFrame {
    pub fn silence(timestamp_us: u64) -> AudioFrame {
        AudioFrame { samples: vec![0; SAMPLES_PER_10MS], timestamp_us }
    }
}
