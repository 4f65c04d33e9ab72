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
//! sends); it prints the thread's CPU seconds spent inside encode and decode (by the thread's
//! CPU clock, so neither the pattern nor a busy machine's waiting counts). Under
//! `valgrind --tool=callgrind --toggle-collect='*OpenH264*code*'` it counts the codec's
//! instructions alone.
//!
//!     codec_cost pair WIDTHxHEIGHT FPS FRAMES BPS
//!
//! is the codec work of a whole two-sided call as `duet demo` runs it, with nothing else: two
//! sides at once, each encoding FRAMES frames paced at FPS on one thread while another decodes
//! the other side's, and each side's tone through Opus every 20 ms on two more threads; it
//! prints the CPU seconds of all eight threads inside encode and decode. Paced as a camera
//! gives frames, and with both sides sharing the machine, the same work costs more CPU time
//! than back to back on one thread (caches go cold between frames, the cores slow each other),
//! as it does in the call. bench/call-cpu compares a call with both.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use duet_media::cpu_clock::cpu_time_of;
use duet_media::{
    AudioChunker, AudioDecoder, AudioEncoder, CodecError, OpenH264Decoder, OpenH264Encoder,
    OpusDecoder, OpusEncoder, TestPattern, Tone, VideoDecoder, VideoEncoder, VideoEncoderConfig,
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

/// The arguments of `work` and `pair`, WIDTHxHEIGHT FPS FRAMES BPS: the encoder's config, FPS
/// (at least 1) and FRAMES.
fn workload(
    mode: &str,
    args: &[String],
) -> Result<(VideoEncoderConfig, u32, u32), Box<dyn std::error::Error>> {
    let usage = format!("usage: codec_cost {mode} WIDTHxHEIGHT FPS FRAMES BPS");
    let [size, fps, frames, bps] = args else { return Err(usage.into()) };
    let (width, height) = size.split_once('x').ok_or(usage)?;
    let (fps, frames, bps): (u32, u32, u32) = (fps.parse()?, frames.parse()?, bps.parse()?);
    let fps = fps.max(1);
    let config = VideoEncoderConfig {
        width: width.parse()?,
        height: height.parse()?,
        fps: fps as f32,
        max_bitrate_bps: bps,
    };
    Ok((config, fps, frames))
}

/// `work WIDTHxHEIGHT FPS FRAMES BPS`: see the module docs.
fn work(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let (config, fps, frames) = workload("work", args)?;
    let pattern = TestPattern::new(config.width, config.height);
    let mut enc = OpenH264Encoder::new(config)?;
    let mut dec = OpenH264Decoder::new()?;
    let (mut cpu, mut bytes) = (Duration::ZERO, 0usize);
    for n in 0..frames {
        let frame = pattern.frame(n, u64::from(n) * 1_000_000 / u64::from(fps));
        let (sent, spent) = cpu_time_of(|| -> Result<usize, CodecError> {
            let Some(au) = enc.encode(&frame, false)? else { return Ok(0) };
            dec.decode(&au.data, au.timestamp_us)?;
            Ok(au.data.len())
        });
        cpu += spent;
        bytes += sent?;
    }
    let seconds = f64::from(frames) / f64::from(fps);
    let audio = audio_work(u64::from(frames) * 100 / u64::from(fps))?;
    print_work(frames, cpu, audio, bytes as f64 * 8.0 / seconds / 1000.0);
    Ok(())
}

/// The line bench/call-cpu reads: FRAMES encoded (all sides), the CPU seconds inside the
/// video and audio codecs, and the kbit/s one side sent.
fn print_work(frames: u32, video: Duration, audio: Duration, kbps: f64) {
    println!(
        "{{\"frames\": {frames}, \"codec_cpu_s\": {:.4}, \"video_cpu_s\": {:.4}, \"audio_cpu_s\": {:.4}, \"kbps\": {kbps:.0}}}",
        (video + audio).as_secs_f64(),
        video.as_secs_f64(),
        audio.as_secs_f64(),
    );
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
        let (decoded, spent) = cpu_time_of(|| dec.decode(&enc.encode(&chunk)?));
        cpu += spent;
        decoded?;
    }
    Ok(cpu)
}

/// `pair WIDTHxHEIGHT FPS FRAMES BPS`: see the module docs.
fn pair(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let (config, fps, frames) = workload("pair", args)?;
    let audio_frames = u64::from(frames) * 100 / u64::from(fps);
    let start = Instant::now();
    let (video, audio, bytes) = std::thread::scope(|scope| {
        let mut video = Vec::new();
        let mut audio = Vec::new();
        for _side in 0..2 {
            let (au_tx, au_rx) = mpsc::sync_channel::<(Vec<u8>, u64)>(30);
            let config = config.clone();
            video.push(scope.spawn(move || paced_video_send(config, fps, frames, start, au_tx)));
            video.push(scope.spawn(move || video_receive(au_rx)));
            let (packet_tx, packet_rx) = mpsc::sync_channel::<Vec<u8>>(50);
            audio.push(scope.spawn(move || paced_audio_send(audio_frames, start, packet_tx)));
            audio.push(scope.spawn(move || audio_receive(packet_rx)));
        }
        let sum = |threads: Vec<std::thread::ScopedJoinHandle<'_, _>>| {
            let (mut cpu, mut bytes) = (Duration::ZERO, 0usize);
            for thread in threads {
                let result: Result<(Duration, usize), String> =
                    thread.join().unwrap_or_else(|_| Err("a codec thread panicked".into()));
                let (c, b) = result?;
                cpu += c;
                bytes += b;
            }
            Ok::<_, String>((cpu, bytes))
        };
        let (video, bytes) = sum(video)?;
        let (audio, _) = sum(audio)?;
        Ok::<_, String>((video, audio, bytes))
    })?;
    let seconds = f64::from(frames) / f64::from(fps);
    print_work(2 * frames, video, audio, bytes as f64 * 8.0 / seconds / 1000.0 / 2.0);
    Ok(())
}

/// One side's camera and encoder: a frame every 1/FPS s by the clock, as a camera gives them;
/// returns the CPU time inside encode and the bytes sent.
fn paced_video_send(
    config: VideoEncoderConfig,
    fps: u32,
    frames: u32,
    start: Instant,
    out: mpsc::SyncSender<(Vec<u8>, u64)>,
) -> Result<(Duration, usize), String> {
    let pattern = TestPattern::new(config.width, config.height);
    let mut enc = OpenH264Encoder::new(config).map_err(|e| e.to_string())?;
    let (mut cpu, mut bytes) = (Duration::ZERO, 0usize);
    for n in 0..frames {
        let at_us = u64::from(n) * 1_000_000 / u64::from(fps);
        sleep_until(start + Duration::from_micros(at_us));
        let frame = pattern.frame(n, at_us);
        let (au, spent) = cpu_time_of(|| enc.encode(&frame, false));
        cpu += spent;
        if let Some(au) = au.map_err(|e| e.to_string())? {
            bytes += au.data.len();
            // The receiving side gone means it failed: its error is the one to report.
            if out.send((au.data, au.timestamp_us)).is_err() {
                break;
            }
        }
    }
    Ok((cpu, bytes))
}

/// The other side's decoder: every access unit as it arrives; returns the CPU time inside
/// decode (and no bytes sent).
fn video_receive(aus: mpsc::Receiver<(Vec<u8>, u64)>) -> Result<(Duration, usize), String> {
    let mut dec = OpenH264Decoder::new().map_err(|e| e.to_string())?;
    let mut cpu = Duration::ZERO;
    for (data, timestamp_us) in aus {
        let (decoded, spent) = cpu_time_of(|| dec.decode(&data, timestamp_us));
        cpu += spent;
        decoded.map_err(|e| e.to_string())?;
    }
    Ok((cpu, 0))
}

/// One side's microphone and Opus encoder: the tone in 10 ms frames by the clock, a packet
/// every 20 ms; returns the CPU time inside encode (its bytes are not counted).
fn paced_audio_send(
    frames: u64,
    start: Instant,
    out: mpsc::SyncSender<Vec<u8>>,
) -> Result<(Duration, usize), String> {
    let mut enc = OpusEncoder::new(32_000).map_err(|e| e.to_string())?;
    let (mut tone, mut chunker) = (Tone::new(440.0), AudioChunker::new());
    let mut cpu = Duration::ZERO;
    for n in 0..frames {
        sleep_until(start + Duration::from_millis(n * 10));
        let Some(chunk) = chunker.push(&tone.next_frame(n * 10_000)) else { continue };
        let (packet, spent) = cpu_time_of(|| enc.encode(&chunk));
        cpu += spent;
        if out.send(packet.map_err(|e| e.to_string())?).is_err() {
            break;
        }
    }
    Ok((cpu, 0))
}

/// The other side's Opus decoder; returns the CPU time inside decode (and no bytes sent).
fn audio_receive(packets: mpsc::Receiver<Vec<u8>>) -> Result<(Duration, usize), String> {
    let mut dec = OpusDecoder::new().map_err(|e| e.to_string())?;
    let mut cpu = Duration::ZERO;
    for packet in packets {
        let (decoded, spent) = cpu_time_of(|| dec.decode(&packet));
        cpu += spent;
        decoded.map_err(|e| e.to_string())?;
    }
    Ok((cpu, 0))
}

fn sleep_until(at: Instant) {
    if let Some(wait) = at.checked_duration_since(Instant::now()) {
        std::thread::sleep(wait);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("work") => return work(&args[1..]),
        Some("pair") => return pair(&args[1..]),
        _ => {}
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
