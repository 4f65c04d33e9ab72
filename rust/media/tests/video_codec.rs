//! OpenH264 encoder and decoder behind the codec traits, checked with the test pattern.

use duet_media::{
    matches_pattern, nal_unit_types, read_counter, CodecError, OpenH264Decoder, OpenH264Encoder,
    TestPattern, VideoDecoder, VideoEncoder, VideoEncoderConfig, VideoFrame, MIN_VIDEO_BITRATE_BPS,
};

fn config(width: u32, height: u32, max_bitrate_bps: u32) -> VideoEncoderConfig {
    VideoEncoderConfig { width, height, fps: 30.0, max_bitrate_bps }
}

fn encoder(width: u32, height: u32, max_bitrate_bps: u32) -> OpenH264Encoder {
    OpenH264Encoder::new(config(width, height, max_bitrate_bps)).expect("encoder")
}

fn ts(n: u32) -> u64 {
    u64::from(n) * 33_333
}

fn has_parameter_sets_and_idr(au: &[u8]) -> bool {
    let types = nal_unit_types(au);
    [7, 8, 5].iter().all(|t| types.contains(t))
}

/// Encodes and decodes `frames` pattern frames starting at `first`, checking every picture.
fn round_trip(
    enc: &mut dyn VideoEncoder,
    dec: &mut dyn VideoDecoder,
    (width, height): (u32, u32),
    first: u32,
    frames: u32,
) {
    let pattern = TestPattern::new(width, height);
    for n in first..first + frames {
        let encoded =
            enc.encode(&pattern.frame(n, ts(n)), false).expect("encode").expect("frame skipped");
        assert_eq!(encoded.timestamp_us, ts(n));
        let decoded = dec.decode(&encoded.data, ts(n)).expect("decode").expect("no picture");
        assert_eq!((decoded.width, decoded.height), (width, height));
        assert_eq!(decoded.timestamp_us, ts(n));
        assert_eq!(read_counter(&decoded), Some(n), "{width}x{height} frame {n}");
        assert!(matches_pattern(&decoded, n), "{width}x{height} frame {n}");
    }
}

#[test]
fn pattern_survives_h264_at_320x240_and_640x480() {
    for size in [(320, 240), (640, 480)] {
        let mut enc = encoder(size.0, size.1, 300_000);
        let mut dec = OpenH264Decoder::new().unwrap();
        // Counters that use both rows of the band, not just the low bits.
        round_trip(&mut enc, &mut dec, size, 0x0001_FFE0, 60);
    }
}

#[test]
fn pattern_survives_camera_like_noise_at_low_bitrate() {
    // Noise makes the encoder spend the whole budget and raise the quantiser: the band and the
    // bars must still read on every frame.
    let (w, h) = (640, 480);
    let pattern = TestPattern::new(w, h);
    let mut enc = encoder(w, h, 300_000);
    let mut dec = OpenH264Decoder::new().unwrap();
    for n in 500..560 {
        let encoded = enc.encode(&noisy_frame(&pattern, n), false).unwrap().unwrap();
        let decoded = dec.decode(&encoded.data, ts(n)).unwrap().unwrap();
        assert_eq!(read_counter(&decoded), Some(n), "frame {n}");
        assert!(matches_pattern(&decoded, n), "frame {n}");
    }
}

#[test]
fn first_frame_is_a_keyframe_with_sps_pps_idr() {
    let mut enc = encoder(320, 240, 500_000);
    let pattern = TestPattern::new(320, 240);
    let first = enc.encode(&pattern.frame(0, 0), false).unwrap().unwrap();
    assert!(first.keyframe);
    assert!(has_parameter_sets_and_idr(&first.data), "{:?}", nal_unit_types(&first.data));
    assert!(first.data.starts_with(&[0, 0, 0, 1]) || first.data.starts_with(&[0, 0, 1]));
    let second = enc.encode(&pattern.frame(1, ts(1)), false).unwrap().unwrap();
    assert!(!second.keyframe);
    assert!(!nal_unit_types(&second.data).contains(&5));
}

#[test]
fn keyframe_is_forced_on_request() {
    let mut enc = encoder(320, 240, 500_000);
    let pattern = TestPattern::new(320, 240);
    for n in 0..10 {
        enc.encode(&pattern.frame(n, ts(n)), false).unwrap().unwrap();
    }
    let forced = enc.encode(&pattern.frame(10, ts(10)), true).unwrap().unwrap();
    assert!(forced.keyframe);
    assert!(has_parameter_sets_and_idr(&forced.data), "{:?}", nal_unit_types(&forced.data));
    let after = enc.encode(&pattern.frame(11, ts(11)), false).unwrap().unwrap();
    assert!(!after.keyframe);

    // A decoder that joins at the forced keyframe can start there.
    let mut late = OpenH264Decoder::new().unwrap();
    let pic = late.decode(&forced.data, 0).unwrap().unwrap();
    assert_eq!(read_counter(&pic), Some(10));
}

#[test]
fn resolution_change_reconfigures_and_still_decodes() {
    let mut enc = encoder(320, 240, 600_000);
    let mut dec = OpenH264Decoder::new().unwrap();
    round_trip(&mut enc, &mut dec, (320, 240), 0, 5);
    let big = TestPattern::new(640, 480).frame(5, ts(5));
    let first_big = enc.encode(&big, false).unwrap().unwrap();
    assert!(first_big.keyframe);
    assert!(has_parameter_sets_and_idr(&first_big.data));
    let pic = dec.decode(&first_big.data, ts(5)).unwrap().unwrap();
    assert_eq!((pic.width, pic.height, read_counter(&pic)), (640, 480, Some(5)));
    round_trip(&mut enc, &mut dec, (640, 480), 6, 5);
    round_trip(&mut enc, &mut dec, (320, 240), 11, 5);
}

#[test]
fn odd_sizes_drop_the_last_row_and_column() {
    let mut enc = encoder(321, 241, 500_000);
    let mut dec = OpenH264Decoder::new().unwrap();
    let frame = TestPattern::new(321, 241).frame(77, 0);
    let encoded = enc.encode(&frame, false).unwrap().unwrap();
    let pic = dec.decode(&encoded.data, 0).unwrap().unwrap();
    assert_eq!((pic.width, pic.height), (320, 240));
    // The same layout scaled to 320x240 still reads.
    assert_eq!(read_counter(&pic), Some(77));
}

#[test]
fn bad_frames_are_errors() {
    let mut enc = encoder(320, 240, 500_000);
    let tiny = VideoFrame::black(14, 14, 0);
    assert_eq!(enc.encode(&tiny, false), Err(CodecError::FrameTooSmall { width: 14, height: 14 }));
    let mut broken = VideoFrame::black(320, 240, 0);
    broken.data.truncate(100);
    assert!(matches!(enc.encode(&broken, false), Err(CodecError::InvalidFrame(_))));
    broken.width = 0;
    assert!(matches!(enc.encode(&broken, false), Err(CodecError::InvalidFrame(_))));
    // Still usable afterwards.
    let ok = enc.encode(&TestPattern::new(320, 240).frame(1, 0), false).unwrap().unwrap();
    assert!(ok.keyframe);
}

#[test]
fn bad_configs_are_errors() {
    let bad = [
        config(0, 240, 500_000),
        config(320, 240, MIN_VIDEO_BITRATE_BPS - 1),
        VideoEncoderConfig { fps: 0.0, ..config(320, 240, 500_000) },
        VideoEncoderConfig { fps: f32::NAN, ..config(320, 240, 500_000) },
    ];
    for c in bad {
        assert!(
            matches!(OpenH264Encoder::new(c.clone()), Err(CodecError::InvalidConfig(_))),
            "{c:?}"
        );
    }
}

/// Deterministic pseudo-random bytes (xorshift).
fn noise(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed.max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect()
}

#[test]
fn garbage_into_the_decoder_is_an_error_or_nothing() {
    let mut dec = OpenH264Decoder::new().unwrap();
    assert_eq!(dec.decode(&[], 0), Err(CodecError::EmptyPacket));
    for seed in 1..200u32 {
        let mut data = noise(seed, 1 + (seed as usize * 37) % 3000);
        if seed % 2 == 0 {
            // With a start code the bytes reach OpenH264's NAL parsers, not just its scanner.
            data.splice(0..0, [0, 0, 0, 1]);
        }
        match dec.decode(&data, 0) {
            Err(CodecError::Decode(_)) | Ok(None) => {}
            other => panic!("seed {seed}: {other:?}"),
        }
    }
    // The decoder recovers at the next keyframe.
    let mut enc = encoder(320, 240, 500_000);
    let au = enc.encode(&TestPattern::new(320, 240).frame(3, 0), false).unwrap().unwrap();
    let pic = dec.decode(&au.data, 0).unwrap().unwrap();
    assert_eq!(read_counter(&pic), Some(3));
}

#[test]
fn target_bitrate_is_clamped() {
    let mut enc = encoder(320, 240, 1_000_000);
    assert_eq!(enc.target_bitrate(), 1_000_000);
    enc.set_target_bitrate(10);
    assert_eq!(enc.target_bitrate(), MIN_VIDEO_BITRATE_BPS);
    enc.set_target_bitrate(5_000_000);
    assert_eq!(enc.target_bitrate(), 1_000_000);
    enc.set_target_bitrate(400_000);
    assert_eq!(enc.target_bitrate(), 400_000);
    let boxed: Box<dyn VideoEncoder> = Box::new(enc);
    assert_eq!(boxed.target_bitrate(), 400_000);
}

/// The pattern plus per-frame noise: like a real camera, it uses whatever bitrate it is given,
/// so the output rate follows the target (the clean pattern codes below 200 kbit/s at any
/// target).
fn noisy_frame(pattern: &TestPattern, n: u32) -> VideoFrame {
    let mut frame = pattern.frame(n, ts(n));
    let luma = (frame.width * frame.height) as usize;
    for (px, r) in frame.data[..luma].iter_mut().zip(noise(n + 1, luma)) {
        *px = px.saturating_add(r >> 5);
    }
    frame
}

/// Bytes per second of frames `range` (30 frames = one second at 30 fps).
fn rate(enc: &mut OpenH264Encoder, pattern: &TestPattern, range: std::ops::Range<u32>) -> usize {
    let frames = range.len();
    let bytes: usize = range
        .map(|n| {
            enc.encode(&noisy_frame(pattern, n), false)
                .expect("encode")
                .expect("frame skipped")
                .data
                .len()
        })
        .sum();
    bytes * 30 / frames
}

#[test]
fn target_bitrate_changes_the_output_rate() {
    let mut enc = encoder(640, 480, 2_000_000);
    let vga = TestPattern::new(640, 480);
    rate(&mut enc, &vga, 0..2);
    enc.set_target_bitrate(100_000);
    rate(&mut enc, &vga, 2..30);
    let low = rate(&mut enc, &vga, 30..60);
    enc.set_target_bitrate(2_000_000);
    rate(&mut enc, &vga, 60..90);
    let high = rate(&mut enc, &vga, 90..120);
    assert!(high > 4 * low, "640x480: low {low} B/s, high {high} B/s");
    assert!(high * 8 < 2_600_000, "640x480: high {high} B/s overshoots 2 Mbit/s");

    // After a resize the new encoder starts at the lowered target; raising it must still work.
    enc.set_target_bitrate(100_000);
    let qvga = TestPattern::new(320, 240);
    rate(&mut enc, &qvga, 120..150);
    let low = rate(&mut enc, &qvga, 150..180);
    enc.set_target_bitrate(1_000_000);
    rate(&mut enc, &qvga, 180..210);
    let high = rate(&mut enc, &qvga, 210..240);
    assert!(high > 3 * low, "320x240: low {low} B/s, high {high} B/s");
}
