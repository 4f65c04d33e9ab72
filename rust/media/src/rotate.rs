//! Turning a captured frame upright before it is encoded.
//!
//! Cameras deliver the sensor's picture plus the rotation that displays it upright. Sending the
//! pixels already turned means every receiver (a browser included) shows the picture the right
//! way up without having to honour the RTP video-orientation extension.

use crate::frame::{Rotation, VideoFrame};

/// Appends `src`, a tight plane `width` samples wide, to `dst` turned clockwise by `rotation`.
fn rotate_plane(dst: &mut Vec<u8>, src: &[u8], width: usize, rotation: Rotation) {
    match rotation {
        Rotation::Deg0 => dst.extend_from_slice(src),
        Rotation::Deg90 => quarter_turn::<true>(dst, src, width),
        // Row-major order reversed: last row first, each row right to left.
        Rotation::Deg180 => dst.extend(src.iter().rev()),
        Rotation::Deg270 => quarter_turn::<false>(dst, src, width),
    }
}

/// Source column x becomes an output row: row x read bottom to top when turning clockwise,
/// row width - 1 - x read top to bottom when turning counter-clockwise.
///
/// Source rows are taken eight at a time, so each output row receives eight contiguous bytes
/// per step and the rows being read stay in cache: about 3x faster than walking one source column
/// per output row, which misses the cache on every read at camera sizes.
fn quarter_turn<const CLOCKWISE: bool>(dst: &mut Vec<u8>, src: &[u8], width: usize) {
    let height = src.len() / width;
    let base = dst.len();
    dst.resize(base + src.len(), 0);
    let dst = &mut dst[base..];
    let out_row = |x: usize| if CLOCKWISE { x } else { width - 1 - x };
    let out_col = |y: usize| if CLOCKWISE { height - 1 - y } else { y };
    let mut strips = src.chunks_exact(8 * width);
    for (s, strip) in (&mut strips).enumerate() {
        let rows: [&[u8]; 8] = std::array::from_fn(|i| &strip[i * width..(i + 1) * width]);
        let first = if CLOCKWISE { out_col(8 * s + 7) } else { out_col(8 * s) };
        #[allow(clippy::needless_range_loop)] // x picks a sample from each of the eight rows
        for x in 0..width {
            // Clockwise, the bottom row of the strip comes first.
            let column: [u8; 8] =
                std::array::from_fn(|i| if CLOCKWISE { rows[7 - i][x] } else { rows[i][x] });
            let start = out_row(x) * height + first;
            dst[start..start + 8].copy_from_slice(&column);
        }
    }
    let done = height - strips.remainder().len() / width;
    for (i, row) in strips.remainder().chunks_exact(width).enumerate() {
        let col = out_col(done + i);
        for (x, &p) in row.iter().enumerate() {
            dst[out_row(x) * height + col] = p;
        }
    }
}

impl VideoFrame {
    /// The picture turned clockwise by `self.rotation`, so that it displays upright with
    /// `rotation: Deg0`; width and height swap for 90 and 270. Same timestamp.
    ///
    /// Each plane is rotated on its own, as libyuv's I420Rotate does: with an odd side the chroma
    /// samples of the edge row or column shift by half a luma pixel, which nobody can see.
    /// A frame that fails `validate` comes back as an unchanged copy, so that the encoder reports
    /// what is wrong with it.
    pub fn upright(&self) -> VideoFrame {
        if self.rotation == Rotation::Deg0 || self.validate().is_err() {
            return self.clone();
        }
        let (width, height) = match self.rotation {
            Rotation::Deg90 | Rotation::Deg270 => (self.height, self.width),
            Rotation::Deg0 | Rotation::Deg180 => (self.width, self.height),
        };
        let mut data = Vec::with_capacity(self.data.len());
        rotate_plane(&mut data, self.y(), self.width as usize, self.rotation);
        rotate_plane(&mut data, self.u(), self.chroma_width() as usize, self.rotation);
        rotate_plane(&mut data, self.v(), self.chroma_width() as usize, self.rotation);
        VideoFrame {
            width,
            height,
            data,
            timestamp_us: self.timestamp_us,
            rotation: Rotation::Deg0,
        }
    }

    /// `upright` for an owned frame: a frame that is already upright is returned as is, uncopied.
    pub fn into_upright(self) -> VideoFrame {
        if self.rotation == Rotation::Deg0 {
            self
        } else {
            self.upright()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::{read_counter, TestPattern};

    /// `frame` marked with `rotation`, then turned upright.
    fn turn(frame: &VideoFrame, rotation: Rotation) -> VideoFrame {
        let out = VideoFrame { rotation, ..frame.clone() }.upright();
        assert_eq!(out.rotation, Rotation::Deg0);
        out.validate().unwrap();
        out
    }

    /// Every sample distinct: Y counts from 0, U from 100, V from 200 (for small frames).
    #[allow(clippy::cast_possible_truncation, reason = "larger frames wrap, harmlessly")]
    fn numbered(width: u32, height: u32) -> VideoFrame {
        let mut f = VideoFrame::black(width, height, 42);
        let luma = (width * height) as usize;
        let chroma = f.u().len();
        for (i, p) in f.data.iter_mut().enumerate() {
            *p = if i < luma {
                i as u8
            } else if i < luma + chroma {
                (100 + i - luma) as u8
            } else {
                (200 + i - luma - chroma) as u8
            };
        }
        f
    }

    #[test]
    fn six_by_four_turns_exactly() {
        // Y:  0  1  2  3  4  5     U: 100 101 102    V: 200 201 202
        //     6  7  8  9 10 11        103 104 105       203 204 205
        //    12 13 14 15 16 17
        //    18 19 20 21 22 23
        let f = numbered(6, 4);

        let r = turn(&f, Rotation::Deg90);
        assert_eq!((r.width, r.height, r.timestamp_us), (4, 6, 42));
        #[rustfmt::skip]
        assert_eq!(r.y(), [
            18, 12, 6, 0,
            19, 13, 7, 1,
            20, 14, 8, 2,
            21, 15, 9, 3,
            22, 16, 10, 4,
            23, 17, 11, 5,
        ]);
        assert_eq!(r.u(), [103, 100, 104, 101, 105, 102]);
        assert_eq!(r.v(), [203, 200, 204, 201, 205, 202]);

        let r = turn(&f, Rotation::Deg180);
        assert_eq!((r.width, r.height), (6, 4));
        assert_eq!(r.y(), (0..24).rev().collect::<Vec<u8>>());
        assert_eq!(r.u(), [105, 104, 103, 102, 101, 100]);
        assert_eq!(r.v(), [205, 204, 203, 202, 201, 200]);

        let r = turn(&f, Rotation::Deg270);
        assert_eq!((r.width, r.height), (4, 6));
        #[rustfmt::skip]
        assert_eq!(r.y(), [
            5, 11, 17, 23,
            4, 10, 16, 22,
            3, 9, 15, 21,
            2, 8, 14, 20,
            1, 7, 13, 19,
            0, 6, 12, 18,
        ]);
        assert_eq!(r.u(), [102, 105, 101, 104, 100, 103]);
        assert_eq!(r.v(), [202, 205, 201, 204, 200, 203]);
    }

    #[test]
    fn odd_sizes_turn_exactly() {
        // Y: 0 1 2 3 4 / 5 6 7 8 9 / 10 11 12 13 14; chroma 3x2 as for 6x4.
        let f = numbered(5, 3);
        let r = turn(&f, Rotation::Deg90);
        assert_eq!((r.width, r.height, r.chroma_width(), r.chroma_height()), (3, 5, 2, 3));
        assert_eq!(r.data.len(), f.data.len());
        assert_eq!(r.y(), [10, 5, 0, 11, 6, 1, 12, 7, 2, 13, 8, 3, 14, 9, 4]);
        assert_eq!(r.u(), [103, 100, 104, 101, 105, 102]);
        assert_eq!(r.v(), [203, 200, 204, 201, 205, 202]);

        let r = turn(&f, Rotation::Deg270);
        assert_eq!((r.width, r.height), (3, 5));
        assert_eq!(r.y(), [4, 9, 14, 3, 8, 13, 2, 7, 12, 1, 6, 11, 0, 5, 10]);
        assert_eq!(r.u(), [102, 105, 101, 104, 100, 103]);

        let r = turn(&f, Rotation::Deg180);
        assert_eq!(r.y(), (0..15).rev().collect::<Vec<u8>>());
        assert_eq!(r.v(), [205, 204, 203, 202, 201, 200]);
    }

    /// The definition, one sample at a time: output (x, y) of a clockwise quarter turn is source
    /// (y, h - 1 - x); of a half turn (w - 1 - x, h - 1 - y); of three quarters (w - 1 - y, x).
    fn reference(src: &[u8], w: usize, h: usize, rotation: Rotation) -> Vec<u8> {
        let (ow, oh) = if rotation == Rotation::Deg180 { (w, h) } else { (h, w) };
        let mut out = Vec::new();
        for y in 0..oh {
            for x in 0..ow {
                let (sx, sy) = match rotation {
                    Rotation::Deg0 => (x, y),
                    Rotation::Deg90 => (y, h - 1 - x),
                    Rotation::Deg180 => (w - 1 - x, h - 1 - y),
                    Rotation::Deg270 => (w - 1 - y, x),
                };
                out.push(src[sy * w + sx]);
            }
        }
        out
    }

    #[test]
    fn larger_planes_match_the_definition() {
        // Heights below, at and around multiples of the eight-row strips, both ways round.
        for (w, h) in [(1, 8), (8, 1), (3, 9), (16, 8), (13, 19), (33, 17), (40, 64), (17, 33)] {
            let mut f = VideoFrame::black(w, h, 0);
            let mut x = 0x9E37_79B9u32;
            for p in &mut f.data {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *p = x.to_le_bytes()[0];
            }
            let (w, h) = (w as usize, h as usize);
            let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
            for rotation in [Rotation::Deg90, Rotation::Deg180, Rotation::Deg270] {
                let r = turn(&f, rotation);
                assert_eq!(r.y(), reference(f.y(), w, h, rotation), "Y {w}x{h} {rotation:?}");
                assert_eq!(r.u(), reference(f.u(), cw, ch, rotation), "U {w}x{h} {rotation:?}");
                assert_eq!(r.v(), reference(f.v(), cw, ch, rotation), "V {w}x{h} {rotation:?}");
            }
        }
    }

    #[test]
    fn turns_compose_to_the_identity() {
        for (w, h) in [(1, 1), (1, 7), (7, 1), (2, 3), (5, 3), (6, 4), (33, 17), (64, 48)] {
            let f = numbered(w, h);
            let quarter = |f: &VideoFrame| turn(f, Rotation::Deg90);
            assert_eq!(quarter(&quarter(&quarter(&quarter(&f)))), f, "4 x 90 at {w}x{h}");
            assert_eq!(turn(&quarter(&f), Rotation::Deg270), f, "90 + 270 at {w}x{h}");
            assert_eq!(turn(&turn(&f, Rotation::Deg270), Rotation::Deg90), f, "270 + 90");
            assert_eq!(turn(&turn(&f, Rotation::Deg180), Rotation::Deg180), f, "2 x 180");
            assert_eq!(quarter(&quarter(&f)), turn(&f, Rotation::Deg180), "2 x 90 at {w}x{h}");
        }
    }

    #[test]
    fn upright_frames_and_malformed_frames_are_left_alone() {
        let f = numbered(6, 4);
        assert_eq!(f.upright(), f);
        let ptr = f.data.as_ptr();
        let owned = f.clone();
        let owned_ptr = owned.data.as_ptr();
        let same = owned.into_upright();
        assert_eq!(same.data.as_ptr(), owned_ptr, "Deg0 into_upright must not copy");
        assert_ne!(ptr, owned_ptr);

        let turned = VideoFrame { rotation: Rotation::Deg90, ..f.clone() }.into_upright();
        assert_eq!(turned, turn(&f, Rotation::Deg90));

        // A short buffer is not indexed into: it comes back unchanged for the encoder to reject.
        let mut bad = VideoFrame { rotation: Rotation::Deg90, ..f };
        bad.data.truncate(10);
        assert_eq!(bad.upright(), bad);
    }

    #[test]
    fn test_pattern_survives_turning() {
        let frame = TestPattern::new(320, 240).frame(0x00C0_FFEE, 1_000);
        assert_eq!(read_counter(&frame), Some(0x00C0_FFEE));
        let half = turn(&frame, Rotation::Deg180);
        assert_ne!(half, frame);
        assert_eq!(read_counter(&turn(&half, Rotation::Deg180)), Some(0x00C0_FFEE));
        let sideways = turn(&frame, Rotation::Deg90);
        assert_eq!((sideways.width, sideways.height), (240, 320));
        assert_eq!(read_counter(&turn(&sideways, Rotation::Deg270)), Some(0x00C0_FFEE));
    }

    /// Cost per call at 640x480, fastest and median of 300 (the machine may be busy):
    /// `cargo test --release -p duet-media --lib upright_cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing, not a check"]
    fn upright_cost() {
        let frame = TestPattern::new(640, 480).frame(7, 0);
        for rotation in [Rotation::Deg90, Rotation::Deg180, Rotation::Deg270] {
            let f = VideoFrame { rotation, ..frame.clone() };
            let mut times: Vec<_> = (0..300)
                .map(|_| {
                    let start = std::time::Instant::now();
                    std::hint::black_box(std::hint::black_box(&f).upright());
                    start.elapsed()
                })
                .collect();
            times.sort();
            println!("640x480 {rotation:?}: min {:?}, median {:?}", times[0], times[150]);
        }
    }
}
