//! Opus behind the codec traits, fed by the tone generator through the chunker.

use duet_media::{
    tone_strength, AudioChunker, AudioDecoder, AudioEncoder, AudioFrame, CodecError, OpusDecoder,
    OpusEncoder, Tone, OPUS_FRAME_SAMPLES, SAMPLES_PER_10MS,
};

/// Sends `frames` 10 ms frames through chunker, encoder and decoder; returns decoded chunks.
fn through_opus(mut next: impl FnMut(u64) -> AudioFrame, frames: u64) -> Vec<Vec<i16>> {
    let mut chunker = AudioChunker::new();
    let mut enc = OpusEncoder::new(32_000).expect("encoder");
    let mut dec = OpusDecoder::new().expect("decoder");
    let mut out = Vec::new();
    for i in 0..frames {
        if let Some(chunk) = chunker.push(&next(i * 10_000)) {
            let packet = enc.encode(&chunk).expect("encode");
            assert!(!packet.is_empty() && packet.len() < 1500);
            let pcm = dec.decode(&packet).expect("decode");
            assert_eq!(pcm.len(), OPUS_FRAME_SAMPLES);
            out.push(pcm);
        }
    }
    out
}

#[test]
fn tone_survives_opus() {
    let mut tone = Tone::new(440.0);
    let chunks = through_opus(|t| tone.next_frame(t), 100);
    assert_eq!(chunks.len(), 50);
    // Skip the codec's start-up (look-ahead delay and pre-skip ramp).
    for (i, chunk) in chunks.iter().enumerate().skip(3) {
        let s = tone_strength(chunk, 440.0);
        assert!(s > 0.5, "chunk {i}: strength {s}");
        assert!(tone_strength(chunk, 1000.0) < 0.1, "chunk {i}");
    }
}

#[test]
fn silence_stays_silent_through_opus() {
    let chunks = through_opus(AudioFrame::silence, 40);
    for chunk in chunks.iter().skip(3) {
        assert!(tone_strength(chunk, 440.0) < 0.1);
        assert!(chunk.iter().all(|s| s.unsigned_abs() < 100));
    }
}

#[test]
fn conceal_returns_a_frame() {
    let mut dec = OpusDecoder::new().unwrap();
    assert_eq!(dec.conceal().unwrap().len(), OPUS_FRAME_SAMPLES);
    let mut enc = OpusEncoder::new(32_000).unwrap();
    let mut tone = Tone::new(440.0);
    for i in 0..10 {
        let pcm = [tone.next_frame(i).samples, tone.next_frame(i).samples].concat();
        dec.decode(&enc.encode(&pcm).unwrap()).unwrap();
    }
    let concealed = dec.conceal().unwrap();
    assert_eq!(concealed.len(), OPUS_FRAME_SAMPLES);
    // Right after a tone, concealment continues it rather than going silent.
    assert!(concealed.iter().any(|s| s.unsigned_abs() > 1000));
}

/// A 440 Hz tone that turns to 1000 Hz at packet 10, whose packet 10 is lost: concealment
/// can only carry the old tone on; in-band FEC in packet 11 brings back the new one.
#[test]
fn in_band_fec_recovers_a_lost_packet_that_concealment_cannot() {
    let mut enc = OpusEncoder::new(32_000).unwrap();
    let (mut low, mut high) = (Tone::new(440.0), Tone::new(1000.0));
    let packets: Vec<Vec<u8>> = (0..12u64)
        .map(|i| {
            let tone = if i < 10 { &mut low } else { &mut high };
            let pcm = [tone.next_frame(i * 20_000).samples, tone.next_frame(0).samples].concat();
            enc.encode(&pcm).unwrap()
        })
        .collect();
    let decoded_until_the_loss = || {
        let mut dec = OpusDecoder::new().unwrap();
        for p in &packets[..10] {
            dec.decode(p).unwrap();
        }
        dec
    };
    let concealed = decoded_until_the_loss().conceal().unwrap();
    let recovered = decoded_until_the_loss().recover(&packets[11]).unwrap();
    assert_eq!(recovered.len(), OPUS_FRAME_SAMPLES);
    assert!(tone_strength(&concealed, 440.0) > tone_strength(&concealed, 1000.0));
    let (old, new) = (tone_strength(&recovered, 440.0), tone_strength(&recovered, 1000.0));
    assert!(new > old, "recovered: 440 Hz {old}, 1000 Hz {new}");
}

#[test]
fn bad_input_is_an_error() {
    let mut enc = OpusEncoder::new(32_000).unwrap();
    assert_eq!(
        enc.encode(&[0; SAMPLES_PER_10MS]),
        Err(CodecError::AudioFrameSize { expected: 960, got: 480 })
    );
    assert!(matches!(OpusEncoder::new(0), Err(CodecError::InvalidConfig(_))));
    assert!(matches!(OpusEncoder::new(1_000_000), Err(CodecError::InvalidConfig(_))));
    let mut dec = OpusDecoder::new().unwrap();
    assert_eq!(dec.decode(&[]), Err(CodecError::EmptyPacket));
    // Garbage: whatever libopus makes of it, an error or some samples, never a panic.
    for len in 1..300usize {
        let packet: Vec<u8> = (0..len).map(|i| (i * 151 + len * 7).to_le_bytes()[0]).collect();
        if let Ok(pcm) = dec.decode(&packet) {
            assert!(pcm.len() <= 5760);
        }
    }
    let boxed: Vec<Box<dyn AudioDecoder>> = vec![Box::new(dec)];
    assert_eq!(boxed.len(), 1);
}
