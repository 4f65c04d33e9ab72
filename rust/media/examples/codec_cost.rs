//! Encode and decode cost per frame of OpenH264 at three sizes, one thread, as the call uses it;
//! target and achieved rates in kbit/s, times in ms.
//!
//!     cargo run --release -p duet-media --example codec_cost [frames]
//!
//! Two kinds of content: the clean test pattern (cheap, mostly translation) and the pattern
//! with per-frame noise, which behaves more like a real camera's sensor noise.
//!
//!     codec_cost work WIDTHxHEIGHT FPS FRAMES BPS
//!
//! is one side's codec work in a call of the clean pattern (what `duet demo` sends): FRAMES
//! frames encoded at BPS and decoded, on this thread, and as many seconds of the 440 Hz tone
//! encoded and decoded with Opus as the frames last (20 ms packets at 32 kbit/s, as a call
//! sends); it prints the thread's CPU seconds spent inside encode and decode (from /proc/thread-self/schedstat, so neither the pattern
//! nor a busy machine's waiting counts). bench/call-cpu compares a call with it; under
//! `valgrind --tool=callgrind --toggle-collect='*OpenH264*code*'` it counts the codec's
//! instructions alone.

use std::time::{Duration, Instant};

use duet_media::{
    AudioChunker, AudioDecoder, AudioEncoder, OpenH264Decoder, OpenH264Encoder, OpusDecoder,
    OpusEncoder, TestPattern, Tone, VideoDecoder, VideoEncoder, VideoEncoderConfig, VideoFrame,
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

/// CPU time this thread has run, from the scheduler's own account (Linux).
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|ns| ns.parse().ok()))
        .map(Duration::from_nanos)
        .unwrap_or_default()
}

/// `work WIDTHxHEIGHT FPS FRAMES BPS`: see the module docs.
fn work(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: codec_cost work WIDTHxHEIGHT FPS FRAMES BPS";
    let [size, fps, frames, bps] = args else { return Err(usage.into()) };
    let (w, h) = size.split_once('x').ok_or(usage)?;
    let (w, h): (u32, u32) = (w.parse()?, h.parse()?);
    let (fps, frames, bps): (u32, u32, u32) = (fps.parse()?, frames.parse()?, bps.parse()?);
    let pattern = TestPattern::new(w, h);
    let config = VideoEncoderConfig { width: w, height: h, fps: fps as f32, max_bitrate_bps: bps };
    let mut enc = OpenH264Encoder::new(config)?;
    let mut dec = OpenH264Decoder::new()?;
    let (mut cpu, mut bytes) = (Duration::ZERO, 0usize);
    for n in 0..frames {
        let frame = pattern.frame(n, u64::from(n) * 1_000_000 / u64::from(fps.max(1)));
        let start = thread_cpu();
        if let Some(au) = enc.encode(&frame, false)? {
            dec.decode(&au.data, au.timestamp_us)?;
            bytes += au.data.len();
        }
        cpu += thread_cpu() - start;
    }
    let seconds = f64::from(frames) / f64::from(fps.max(1));
    let audio = audio_work(u64::from(frames) * 100 / u64::from(fps.max(1)))?;
    println!(
        "{{\"frames\": {frames}, \"codec_cpu_s\": {:.4}, \"video_cpu_s\": {:.4}, \"audio_cpu_s\": {:.4}, \"kbps\": {:.0}}}",
        (cpu + audio).as_secs_f64(),
        cpu.as_secs_f64(),
        audio.as_secs_f64(),
        bytes as f64 * 8.0 / seconds / 1000.0
    );
    Ok(())
}

/// The thread's CPU time inside Opus, encoding and decoding `frames` 10 ms frames of the tone
/// as a call's audio pipeline does (chunked to 20 ms packets).
fn audio_work(frames: u64) -> Result<Duration, Box<dyn std::error::Error>> {
    let (mut enc, mut dec) = (OpusEncoder::new(32_000)?, OpusDecoder::new()?);
    let (mut tone, mut chunker) = (Tone::new(440.0), AudioChunker::new());
    let mut cpu = Duration::ZERO;
    for n in 0..frames {
        let frame = tone.next_frame(n * 10_000);
        let Some(chunk) = chunker.push(&frame) else { continue };
        let start = thread_cpu();
        let packet = enc.encode(&chunk)?;
        dec.decode(&packet)?;
        cpu += thread_cpu() - start;
    }
    Ok(cpu)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("work") {
        return work(&args[1..]);
    }
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
