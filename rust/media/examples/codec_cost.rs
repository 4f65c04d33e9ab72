//! Encode and decode cost per frame of OpenH264 at three sizes, one thread, as the call uses it;
//! target and achieved rates in kbit/s, times in ms.
//!
//!     cargo run --release -p duet-media --example codec_cost [frames]
//!
//! Two kinds of content: the clean test pattern (cheap, mostly translation) and the pattern
//! with per-frame noise, which behaves more like a real camera's sensor noise.

use std::time::{Duration, Instant};

use duet_media::{
    OpenH264Decoder, OpenH264Encoder, TestPattern, VideoDecoder, VideoEncoder, VideoEncoderConfig,
    VideoFrame,
};

fn noisy(mut frame: VideoFrame, seed: u32) -> VideoFrame {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    let luma = (frame.width * frame.height) as usize;
    for px in &mut frame.data[..luma] {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *px = px.saturating_add((x >> 29) as u8);
    }
    frame
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let frames: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(150);
    if cfg!(debug_assertions) {
        eprintln!("note: debug build; use --release for meaningful figures");
    }
    println!("{frames} frames at 30 fps, medians; the first (IDR) frame reported separately");
    println!(
        "{:>9} {:>6} {:>9} | {:>9} {:>9} {:>9} {:>9}",
        "size", "noise", "target", "enc ms", "dec ms", "IDR enc", "kbit/s"
    );
    for (w, h, bps) in [(320, 240, 300_000), (640, 480, 800_000), (1280, 720, 1_500_000)] {
        for with_noise in [false, true] {
            let pattern = TestPattern::new(w, h);
            let config =
                VideoEncoderConfig { width: w, height: h, fps: 30.0, max_bitrate_bps: bps };
            let mut enc = OpenH264Encoder::new(config)?;
            let mut dec = OpenH264Decoder::new()?;
            let (mut enc_t, mut dec_t, mut bytes) = (Vec::new(), Vec::new(), 0usize);
            let mut first = Duration::ZERO;
            for n in 0..frames {
                let frame = pattern.frame(n, u64::from(n) * 33_333);
                let frame = if with_noise { noisy(frame, n + 1) } else { frame };
                let t = Instant::now();
                let Some(au) = enc.encode(&frame, false)? else { continue };
                let e = t.elapsed();
                let t = Instant::now();
                dec.decode(&au.data, au.timestamp_us)?;
                let d = t.elapsed();
                if n == 0 {
                    first = e;
                } else {
                    enc_t.push(e);
                    dec_t.push(d);
                    bytes += au.data.len();
                }
            }
            let kbps = bytes as f64 * 8.0 * 30.0 / f64::from(frames.max(2) - 1) / 1000.0;
            println!(
                "{:>9} {:>6} {:>9} | {:>9.2} {:>9.2} {:>9.2} {:>9.0}",
                format!("{w}x{h}"),
                with_noise,
                bps / 1000,
                ms(median(enc_t)),
                ms(median(dec_t)),
                ms(first),
                kbps
            );
        }
    }
    Ok(())
}
