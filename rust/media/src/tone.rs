//! The synthetic microphone (a sine tone) and the check that a tone came through a codec.

use std::f64::consts::TAU;

use crate::audio::{AudioFrame, SAMPLES_PER_10MS, SAMPLE_RATE};

/// Loud enough to dominate codec noise, quiet enough that Opus never clips it.
const AMPLITUDE: f64 = 0.3 * i16::MAX as f64;

/// A sine, made by turning a unit vector by the same angle every sample: a multiply-add per
/// sample instead of a `sin` (the tone runs all through every call of the CLI's demos).
pub struct Tone {
    /// (cos, sin) of the current phase.
    at: (f64, f64),
    /// (cos, sin) of the angle per sample.
    step: (f64, f64),
}

impl Tone {
    pub fn new(freq_hz: f32) -> Tone {
        let freq = if freq_hz.is_finite() { f64::from(freq_hz) } else { 0.0 };
        let step = TAU * freq / f64::from(SAMPLE_RATE);
        Tone { at: (1.0, 0.0), step: (step.cos(), step.sin()) }
    }

    /// The next 10 ms, at amplitude ~0.3 full scale.
    pub fn next_frame(&mut self, timestamp_us: u64) -> AudioFrame {
        let ((mut c, mut s), (dc, ds)) = (self.at, self.step);
        let samples = (0..SAMPLES_PER_10MS)
            .map(|_| {
                #[allow(clippy::cast_possible_truncation, reason = "|s| <= AMPLITUDE < i16::MAX")]
                let sample = (s * AMPLITUDE).round() as i16;
                (c, s) = (c * dc - s * ds, c * ds + s * dc);
                sample
            })
            .collect();
        // Back to unit length, so rounding errors do not grow over a long call.
        let length = (c * c + s * s).sqrt();
        self.at = (c / length, s / length);
        AudioFrame { samples, timestamp_us }
    }
}

/// Relative power of `freq_hz` in `samples` (Goertzel), 0..1: a decoded tone scores high,
/// silence or noise low.
///
/// It is the tone's share of the signal's energy: a pure sine at `freq_hz` scores about 1, white
/// noise about 2/len, silence 0.
pub fn tone_strength(samples: &[i16], freq_hz: f32) -> f32 {
    let n = samples.len() as f64;
    if samples.is_empty() || !freq_hz.is_finite() || freq_hz <= 0.0 {
        return 0.0;
    }
    let w = TAU * f64::from(freq_hz) / f64::from(SAMPLE_RATE);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2, mut energy) = (0.0f64, 0.0f64, 0.0f64);
    for &x in samples {
        let x = f64::from(x);
        energy += x * x;
        let s = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    if energy == 0.0 {
        return 0.0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    // A sine of amplitude A gives power (A·n/2)² and energy A²·n/2: the ratio below is 1.
    #[allow(clippy::cast_possible_truncation, reason = "a score in 0..=1: f32 is precise enough")]
    let score = (2.0 * power / (n * energy)).clamp(0.0, 1.0) as f32;
    score
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone_samples(freq: f32, frames: usize) -> Vec<i16> {
        let mut tone = Tone::new(freq);
        (0..frames).flat_map(|i| tone.next_frame(i as u64 * 10_000).samples).collect()
    }

    #[test]
    fn the_tone_is_the_sine_it_names_for_a_long_call() {
        let mut tone = Tone::new(440.0);
        let step = TAU * 440.0 / f64::from(SAMPLE_RATE);
        // An hour of 10 ms frames, the last one checked against `sin` sample by sample.
        for i in 0..360_000u64 {
            let frame = tone.next_frame(i * 10_000);
            if i % 36_000 != 35_999 {
                continue;
            }
            for (k, &got) in frame.samples.iter().enumerate() {
                let n = (i * SAMPLES_PER_10MS as u64 + k as u64) as f64;
                let want = ((n * step).sin() * AMPLITUDE).round();
                assert!((f64::from(got) - want).abs() <= 1.0, "sample {n}: {got} != {want}");
            }
        }
    }

    #[test]
    fn tone_has_expected_level_and_length() {
        let mut tone = Tone::new(440.0);
        let f = tone.next_frame(123);
        assert_eq!((f.samples.len(), f.timestamp_us), (SAMPLES_PER_10MS, 123));
        let peak = tone_samples(440.0, 10).iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!((9000..=9900).contains(&peak), "peak {peak}");
    }

    #[test]
    fn strength_separates_tone_from_other_signals() {
        let s = tone_samples(440.0, 4);
        assert!(tone_strength(&s, 440.0) > 0.95, "{}", tone_strength(&s, 440.0));
        assert!(tone_strength(&s, 1000.0) < 0.05, "{}", tone_strength(&s, 1000.0));
        assert_eq!(tone_strength(&[0; 960], 440.0), 0.0);
        assert_eq!(tone_strength(&[], 440.0), 0.0);
        assert_eq!(tone_strength(&s, f32::NAN), 0.0);
        // Deterministic pseudo-noise.
        let mut x = 0x1234_5678u32;
        let noise: Vec<i16> = (0..960)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 16) as i16
            })
            .collect();
        assert!(tone_strength(&noise, 440.0) < 0.05);
    }

    #[test]
    fn phase_is_continuous_across_frames() {
        // 440 Hz is 4.4 cycles per frame: restarting the phase per frame would break this.
        let s = tone_samples(440.0, 3);
        for (i, &got) in s.iter().enumerate() {
            let want = (TAU * 440.0 * i as f64 / 48_000.0).sin() * AMPLITUDE;
            assert!((f64::from(got) - want).abs() <= 2.0, "sample {i}: {got} vs {want}");
        }
    }
}
