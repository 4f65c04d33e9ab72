//! Turns the 10 ms frames platforms deliver into the 20 ms frames Opus is sent with.

use super::OPUS_FRAME_SAMPLES;
use crate::audio::AudioFrame;

/// Re-chunks 10 ms frames into 20 ms Opus frames.
#[derive(Debug, Default)]
pub struct AudioChunker {
    pending: Vec<i16>,
}

impl AudioChunker {
    pub fn new() -> Self {
        AudioChunker { pending: Vec::with_capacity(2 * OPUS_FRAME_SAMPLES) }
    }

    /// Adds a frame; returns a full 960-sample chunk when one is ready. Frames of any length are
    /// accepted; if one completes more than a chunk, `pop` returns the rest.
    pub fn push(&mut self, frame: &AudioFrame) -> Option<Vec<i16>> {
        self.pending.extend_from_slice(&frame.samples);
        self.pop()
    }

    /// The next complete chunk already buffered, if any.
    pub fn pop(&mut self) -> Option<Vec<i16>> {
        if self.pending.len() < OPUS_FRAME_SAMPLES {
            return None;
        }
        let rest = self.pending.split_off(OPUS_FRAME_SAMPLES);
        Some(std::mem::replace(&mut self.pending, rest))
    }

    /// Samples waiting for a chunk to fill.
    pub fn buffered(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::SAMPLES_PER_10MS;

    #[test]
    fn pairs_of_10ms_frames_become_20ms_chunks_without_loss() {
        let mut chunker = AudioChunker::new();
        let mut next = 0i16;
        let mut out = Vec::new();
        for i in 0..10 {
            let samples: Vec<i16> = (0..SAMPLES_PER_10MS)
                .map(|_| {
                    next = next.wrapping_add(1);
                    next
                })
                .collect();
            let chunk = chunker.push(&AudioFrame { samples, timestamp_us: i * 10_000 });
            assert_eq!(chunk.is_some(), i % 2 == 1, "frame {i}");
            if let Some(chunk) = chunk {
                assert_eq!(chunk.len(), OPUS_FRAME_SAMPLES);
                out.extend(chunk);
            }
        }
        assert_eq!(chunker.buffered(), 0);
        let want: Vec<i16> = (1..=i16::try_from(10 * SAMPLES_PER_10MS).unwrap()).collect();
        assert_eq!(out, want);
    }

    #[test]
    fn odd_frame_sizes_keep_order_and_remainder() {
        let mut chunker = AudioChunker::new();
        let big = AudioFrame { samples: (0..2500).collect(), timestamp_us: 0 };
        let first = chunker.push(&big).unwrap();
        let second = chunker.pop().unwrap();
        assert_eq!(chunker.pop(), None);
        assert_eq!(chunker.buffered(), 2500 - 2 * OPUS_FRAME_SAMPLES);
        assert_eq!(first[0], 0);
        assert_eq!(second[0], 960);
        assert_eq!(second[959], 1919);
        assert_eq!(chunker.push(&AudioFrame { samples: vec![], timestamp_us: 0 }), None);
    }
}
