//! LocalStream's capture entry points through the FFI types: planes by address in, errors out.

// A test that fails says so loudly (unwrap); frame sizes fit this 64-bit host (casts).
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use duet_ffi::*;

fn constraints() -> StreamConstraints {
    StreamConstraints {
        audio: true,
        video: Some(VideoConstraints { width: 4, height: 2, fps: 30, max_bitrate_bps: 100_000 }),
    }
}

fn at(bytes: &[u8]) -> (u64, u64) {
    (bytes.as_ptr() as usize as u64, bytes.len() as u64)
}

#[test]
fn pushes_check_their_input() {
    let s = LocalStream::new(constraints());
    // 4x2 I420 with padded rows (stride 8 for Y, 4 for chroma).
    let y = [16u8; 8 * 2];
    let uv = [128u8; 4];
    let ((ya, yl), (ca, cl)) = (at(&y), at(&uv));
    s.push_i420_at(4, 2, ya, yl, 8, ca, cl, 4, ca, cl, 4, 0, 90).expect("valid I420");
    s.push_nv12_at(4, 2, ya, yl, 8, ca, cl, 4, 0, 0).expect("valid NV12");
    match s.push_i420_at(4, 2, ya, 5, 8, ca, cl, 4, ca, cl, 4, 0, 0) {
        Err(CaptureError::InvalidFrame { reason }) => {
            assert!(reason.contains("Y plane"), "{reason}")
        }
        other => panic!("a short Y plane: {other:?}"),
    }
    match s.push_nv12_at(4, 2, ya, yl, 8, 0, cl, 4, 0, 0) {
        Err(CaptureError::InvalidFrame { reason }) => assert!(reason.contains("null"), "{reason}"),
        other => panic!("a null UV plane: {other:?}"),
    }
    match s.push_nv12_at(4, 2, ya, yl, 8, ca, cl, 4, 0, 45) {
        Err(CaptureError::InvalidFrame { reason }) => assert!(reason.contains("45"), "{reason}"),
        other => panic!("a 45° rotation: {other:?}"),
    }
    s.push_audio(vec![0; 480], 0).expect("10 ms of audio");
    assert_eq!(s.push_audio(vec![0; 100], 0), Err(CaptureError::AudioLength { samples: 100 }));
}

#[test]
fn enabling_and_constraints_round_trip() {
    let s = LocalStream::new(StreamConstraints { audio: true, video: None });
    assert!(s.audio_enabled());
    assert!(!s.video_enabled(), "no video constraints, no video");
    s.set_video_enabled(true);
    assert!(!s.video_enabled());
    s.set_audio_enabled(false);
    assert!(!s.audio_enabled());
    let c = LocalStream::new(constraints()).constraints();
    assert_eq!(c.video.map(|v| (v.width, v.height)), Some((4, 2)));
}

#[test]
fn synthetic_starts_outside_any_runtime() {
    // A plain thread, as a foreign caller's would be: no tokio context of its own.
    let s = std::thread::spawn(|| LocalStream::synthetic(constraints())).join().unwrap();
    assert!(s.video_enabled() && s.audio_enabled());
}
