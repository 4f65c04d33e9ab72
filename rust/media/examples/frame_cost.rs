//! Cost of turning a 1280x720 camera picture into a tight I420 [`VideoFrame`] (what every push
//! through the FFI pays), as a ratio to a plain memcpy of the same number of bytes.
//!
//!     cargo run --release -p duet-media --example frame_cost [repeats]
//!
//! Each repeat times one conversion and, right beside it, a memcpy of the frame's byte count
//! (width*height*3/2) into a buffer that already exists. Each ratio divides the conversion's
//! min (median, max) time by the memcpy's min (median, max): on this shared machine the max
//! column mostly measures the neighbours.
//!
//! Each conversion runs three ways, by what becomes of the frame it made (`Keep`): dropped at
//! once (the allocator hands the same memory back), kept until the next one is made (as a
//! stream keeps its newest frame, so two frames' memory alternates), and kept then written
//! over by the next (`from_*_reusing`, what a stream does with a newest frame nothing else
//! holds).
//!
//!     frame_cost once nv12|i420 [padded]
//!
//! runs one conversion and nothing else timed, for counting its instructions with
//! `valgrind --tool=callgrind --toggle-collect='*from_nv12*'` (or `*from_i420*`).

use std::hint::black_box;
use std::time::{Duration, Instant};

use duet_media::{Rotation, VideoFrame};

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 720;
/// Padding a platform might add to each row (Android pads to its own alignment).
const PAD: u32 = 64;

/// Random-ish bytes, so no conversion can shortcut on repeated values.
fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// Camera planes for one picture: luma, and either U and V or the interleaved UV.
struct Planes {
    y: Vec<u8>,
    y_stride: u32,
    u: Vec<u8>,
    v: Vec<u8>,
    uv: Vec<u8>,
    c_stride: u32,
    uv_stride: u32,
}

impl Planes {
    fn new(pad: u32) -> Planes {
        let (cw, ch) = (WIDTH.div_ceil(2), HEIGHT.div_ceil(2));
        let (y_stride, c_stride, uv_stride) = (WIDTH + pad, cw + pad / 2, 2 * cw + pad);
        Planes {
            y: noise((y_stride * HEIGHT) as usize, 1),
            y_stride,
            u: noise((c_stride * ch) as usize, 2),
            v: noise((c_stride * ch) as usize, 3),
            uv: noise((uv_stride * ch) as usize, 4),
            c_stride,
            uv_stride,
        }
    }

    /// The planes as a frame, written over `spare` when it is a frame's worth of bytes.
    fn i420(&self, spare: Vec<u8>) -> VideoFrame {
        let p = black_box(self);
        VideoFrame::from_i420_reusing(
            move || spare,
            WIDTH,
            HEIGHT,
            &p.y,
            p.y_stride,
            &p.u,
            p.c_stride,
            &p.v,
            p.c_stride,
            0,
            Rotation::Deg0,
        )
        .expect("valid planes")
    }

    fn nv12(&self, spare: Vec<u8>) -> VideoFrame {
        let p = black_box(self);
        VideoFrame::from_nv12_reusing(
            move || spare,
            WIDTH,
            HEIGHT,
            &p.y,
            p.y_stride,
            &p.uv,
            p.uv_stride,
            0,
            Rotation::Deg0,
        )
        .expect("valid planes")
    }
}

fn timed(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

/// min / median / max of a list of times, in seconds.
fn spread(mut v: Vec<Duration>) -> [f64; 3] {
    v.sort();
    [v[0], v[v.len() / 2], v[v.len() - 1]].map(|d| d.as_secs_f64())
}

/// The element-wise ratio of two spreads.
fn ratio(push: [f64; 3], base: [f64; 3]) -> [f64; 3] {
    [push[0] / base[0], push[1] / base[1], push[2] / base[2]]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("once") {
        let planes = Planes::new(if args.iter().any(|a| a == "padded") { PAD } else { 0 });
        let frame = if args.iter().any(|a| a == "i420") {
            planes.i420(Vec::new())
        } else {
            planes.nv12(Vec::new())
        };
        black_box(frame);
        return;
    }
    let repeats: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(200).max(1);
    if cfg!(debug_assertions) {
        eprintln!("note: debug build; use --release for meaningful figures");
    }
    let bytes = (WIDTH * HEIGHT + 2 * WIDTH.div_ceil(2) * HEIGHT.div_ceil(2)) as usize;
    let src = noise(bytes, 5);
    let mut dst = vec![0u8; bytes];
    println!(
        "{WIDTH}x{HEIGHT}, {repeats} repeats; cost / memcpy of {bytes} bytes, min / median / max"
    );
    println!(
        "{:<14} {:<7} {:>20} {:>9} {:>9}",
        "push", "frame", "÷ memcpy", "push µs", "memcpy µs"
    );
    for (name, pad) in [("tight", 0), ("padded", PAD)] {
        let planes = Planes::new(pad);
        for (format, convert) in
            [("I420", Planes::i420 as fn(&Planes, Vec<u8>) -> VideoFrame), ("NV12", Planes::nv12)]
        {
            for keep in [Keep::Drop, Keep::Kept, Keep::Reused] {
                let (mut copies, mut pushes) = (Vec::new(), Vec::new());
                // A few untimed rounds first: the first allocations of this size fault their
                // pages in.
                let mut held = convert(&planes, Vec::new());
                for _ in 0..5 {
                    held = keep.push(&planes, convert, held);
                }
                for _ in 0..repeats {
                    copies.push(timed(|| black_box(&mut dst).copy_from_slice(black_box(&src))));
                    let start = Instant::now();
                    held = keep.push(&planes, convert, held);
                    pushes.push(start.elapsed());
                }
                let (push, copy) = (spread(pushes), spread(copies));
                let c = ratio(push, copy);
                println!(
                    "{:<14} {:<7} {:>6.2} {:>6.2} {:>6.2} {:>9.0} {:>9.0}",
                    format!("{format} {name}"),
                    keep.name(),
                    c[0],
                    c[1],
                    c[2],
                    push[1] * 1e6,
                    copy[1] * 1e6,
                );
            }
        }
    }
}

/// What happens to the frame a push made, before the next push.
#[derive(Clone, Copy)]
enum Keep {
    /// Dropped at once: the next push's allocation gets the same memory back.
    Drop,
    /// Kept until the next frame is made, as a stream keeps its newest frame: two frames'
    /// memory alternates.
    Kept,
    /// Kept, and its buffer written over by the next push (`from_*_reusing`), as a stream
    /// does with a newest frame that nothing else holds.
    Reused,
}

impl Keep {
    fn name(self) -> &'static str {
        match self {
            Keep::Drop => "dropped",
            Keep::Kept => "kept",
            Keep::Reused => "reused",
        }
    }

    /// One timed push; `held` is the previous push's frame.
    fn push(
        self,
        planes: &Planes,
        convert: fn(&Planes, Vec<u8>) -> VideoFrame,
        held: VideoFrame,
    ) -> VideoFrame {
        match self {
            Keep::Drop => {
                drop(held);
                black_box(convert(planes, Vec::new()))
            }
            Keep::Kept => {
                let frame = black_box(convert(planes, Vec::new()));
                drop(held);
                frame
            }
            Keep::Reused => black_box(convert(planes, held.data)),
        }
    }
}
