//! The synthetic camera: a picture that moves every frame and carries its frame counter in a
//! form that survives lossy H.264, so tests can prove that the frame which came out is the one
//! that went in.
//!
//! Layout, top to bottom, scaled to the frame size:
//! - a band of two rows of 20 black/white cells. Per row: white, black (the reference levels
//!   the reader thresholds against), 16 data bits (most significant first), an even-parity bit,
//!   and a row marker (black in row 0, white in row 1). Row 0 holds the counter's high 16 bits,
//!   row 1 the low 16. Cells are at least 16x15 pixels at 320x240, larger than a macroblock
//!   edge's ringing, and the reader only looks at each cell's central quarter;
//! - a moving area: a grey ramp scrolling 4 pixels per frame with a white bar sweeping across,
//!   so the encoder has real motion to code;
//! - fixed 75% colour bars on the bottom three eighths, which `matches_pattern` compares.

use crate::frame::VideoFrame;

const CELLS: u32 = 20;
const DATA_BITS: usize = 16;
const WHITE: u8 = 235;
const BLACK: u8 = 16;
/// Below this white-black difference the band is not ours (or is too damaged to trust).
const MIN_CONTRAST: f32 = 64.0;
/// The ramp stays below this and the sweeping bar well above it.
const SWEEP_THRESHOLD: f32 = 200.0;
/// Allowed error of a colour bar's mean Y, U or V after a lossy codec.
const BAR_TOLERANCE: f32 = 20.0;

/// Where each element sits in a picture of a given size; shared by the writer and the readers
/// so they cannot disagree.
#[derive(Clone, Copy, Debug)]
struct Layout {
    width: u32,
    height: u32,
    cell_w: u32,
    row_h: u32,
    mid_top: u32,
    bars_top: u32,
    bar_w: u32,
    sweep_w: u32,
}

impl Layout {
    fn new(width: u32, height: u32) -> Layout {
        let row_h = height / 16;
        Layout {
            width,
            height,
            cell_w: width / CELLS,
            row_h,
            mid_top: 2 * row_h,
            bars_top: height / 8 * 5,
            bar_w: width / 8,
            sweep_w: width / 16,
        }
    }

    /// Each cell's sampled centre must have pixels in it: 80x64 is the smallest readable frame.
    fn readable(&self) -> bool {
        self.cell_w >= 4 && self.row_h >= 4 && self.sweep_w >= 4 && self.bar_w >= 4
    }

    fn sweep_x(&self, counter: u32) -> u32 {
        let span = u64::from(self.width - self.sweep_w) + 1;
        let step = u64::from((self.sweep_w / 4).max(1));
        #[allow(clippy::cast_possible_truncation, reason = "below span, which is at most width")]
        let x = (u64::from(counter) * step % span) as u32;
        x
    }
}

/// A row of cells as light (true) or dark, in the order described in the module comment.
fn row_cells(row: u32, word: u16) -> [bool; CELLS as usize] {
    let mut cells = [false; CELLS as usize];
    cells[0] = true;
    for bit in 0..DATA_BITS {
        cells[2 + bit] = (word >> (15 - bit)) & 1 == 1;
    }
    cells[18] = word.count_ones() % 2 == 1;
    cells[19] = row == 1;
    cells
}

/// Row 0 carries the counter's high half, row 1 its low half.
fn row_word(counter: u32, row: u32) -> u16 {
    let [b3, b2, b1, b0] = counter.to_be_bytes();
    if row == 0 {
        u16::from_be_bytes([b3, b2])
    } else {
        u16::from_be_bytes([b1, b0])
    }
}

/// BT.601 video-range YUV of 75% colour bars: white, yellow, cyan, green, magenta, red, blue,
/// black.
fn bar_colours() -> [[u8; 3]; 8] {
    const RGB: [[f32; 3]; 8] = [
        [1.0, 1.0, 1.0],
        [1.0, 1.0, 0.0],
        [0.0, 1.0, 1.0],
        [0.0, 1.0, 0.0],
        [1.0, 0.0, 1.0],
        [1.0, 0.0, 0.0],
        [0.0, 0.0, 1.0],
        [0.0, 0.0, 0.0],
    ];
    RGB.map(|[r, g, b]| {
        let (r, g, b) = (r * 0.75, g * 0.75, b * 0.75);
        let y = 16.0 + 65.481 * r + 128.553 * g + 24.966 * b;
        let u = 128.0 - 37.797 * r - 74.203 * g + 112.0 * b;
        let v = 128.0 + 112.0 * r - 93.786 * g - 18.214 * b;
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "video-range values, all within 16..=240"
        )]
        let yuv = [y.round() as u8, u.round() as u8, v.round() as u8];
        yuv
    })
}

pub struct TestPattern {
    layout: Layout,
    /// The still parts (colour bars, neutral chroma), copied into every frame.
    template: Vec<u8>,
}

impl TestPattern {
    pub fn new(width: u32, height: u32) -> TestPattern {
        let layout = Layout::new(width, height);
        let mut template = VideoFrame::black(width, height, 0).data;
        if !template.is_empty() {
            draw_bars(&mut template, &layout);
        }
        TestPattern { layout, template }
    }

    /// A moving picture that carries `counter` (see the module comment), plus fixed colour bars.
    /// Frames too small for the layout (under 80x64) carry what fits and are not readable.
    pub fn frame(&self, counter: u32, timestamp_us: u64) -> VideoFrame {
        self.frame_in(Vec::new(), counter, timestamp_us)
    }

    /// The frame for `counter` drawn over `previous`, a frame this pattern made and nothing
    /// has written to since (a synthetic camera's own last frame): only what moves is drawn,
    /// the still part is already there. A `previous` of another size is drawn over whole.
    pub fn frame_over(&self, previous: VideoFrame, counter: u32, timestamp_us: u64) -> VideoFrame {
        let l = &self.layout;
        let same_picture = previous.width == l.width
            && previous.height == l.height
            && previous.data.len() == self.template.len();
        if !same_picture || self.template.is_empty() {
            return self.frame_in(previous.data, counter, timestamp_us);
        }
        self.draw_moving(
            VideoFrame { timestamp_us, rotation: crate::Rotation::Deg0, ..previous },
            counter,
        )
    }

    /// `frame`, drawn in `buffer` (a frame's data no longer needed), as an app's push writes
    /// over the newest frame (`LocalStream::push_i420`): a fresh 720p buffer for every frame
    /// cost more in page faults than the drawing.
    pub fn frame_in(&self, mut buffer: Vec<u8>, counter: u32, timestamp_us: u64) -> VideoFrame {
        let l = &self.layout;
        if self.template.is_empty() {
            return VideoFrame::black(l.width, l.height, timestamp_us);
        }
        // Only the template's still part (the colour bars' rows and the chroma): every luma
        // row above the bars is drawn below. A 720p camera at 30 fps copying the whole
        // template cost more than the codec's decoding (bench/call-cpu), and a real camera
        // costs the SDK nothing.
        let still = l.bars_top as usize * l.width as usize;
        buffer.resize(self.template.len(), 0);
        buffer[still..].copy_from_slice(&self.template[still..]);
        let frame = VideoFrame {
            width: l.width,
            height: l.height,
            data: buffer,
            timestamp_us,
            rotation: crate::Rotation::Deg0,
        };
        self.draw_moving(frame, counter)
    }

    /// Draws every luma row above the colour bars (the band and the moving area) into
    /// `frame`, a picture of this pattern's size whose still part is in place.
    fn draw_moving(&self, mut frame: VideoFrame, counter: u32) -> VideoFrame {
        let l = &self.layout;
        let luma = &mut frame.data[..l.width as usize * l.height as usize];
        draw_band(luma, l, counter);
        draw_motion(luma, l, counter);
        frame
    }
}

fn draw_bars(data: &mut [u8], l: &Layout) {
    let colours = bar_colours();
    let bar_w = l.bar_w.max(1) as usize;
    let bar_of = |x: usize| (x / bar_w).min(7);
    let (w, h) = (l.width as usize, l.height as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let (luma, chroma) = data.split_at_mut(w * h);
    let (u, v) = chroma.split_at_mut(cw * ch);
    for y in l.bars_top as usize..h {
        for (x, p) in luma[y * w..(y + 1) * w].iter_mut().enumerate() {
            *p = colours[bar_of(x)][0];
        }
    }
    for cy in (l.bars_top as usize).div_ceil(2)..ch {
        for cx in 0..cw {
            let c = colours[bar_of(2 * cx)];
            u[cy * cw + cx] = c[1];
            v[cy * cw + cx] = c[2];
        }
    }
}

fn draw_band(luma: &mut [u8], l: &Layout, counter: u32) {
    let stride = l.width as usize;
    for row in 0..2 {
        let cells = row_cells(row, row_word(counter, row));
        let line: Vec<u8> = (0..stride)
            .map(|x| match cells.get(x / l.cell_w.max(1) as usize) {
                Some(true) => WHITE,
                Some(false) => BLACK,
                None => 128, // the columns right of the last cell
            })
            .collect();
        fill_rows(luma, stride, row * l.row_h..(row + 1) * l.row_h, &line);
    }
}

fn draw_motion(luma: &mut [u8], l: &Layout, counter: u32) {
    let stride = l.width as usize;
    let shift = u64::from(counter) * 4;
    let sweep = l.sweep_x(counter) as usize..(l.sweep_x(counter) + l.sweep_w) as usize;
    let line: Vec<u8> = (0..stride)
        .map(|x| if sweep.contains(&x) { WHITE } else { 40 + ((x as u64 + shift) % 128) as u8 })
        .collect();
    fill_rows(luma, stride, l.mid_top..l.bars_top, &line);
}

/// Every row of `rows` is the same `line`: made once, copied to each.
fn fill_rows(luma: &mut [u8], stride: usize, rows: std::ops::Range<u32>, line: &[u8]) {
    for y in rows {
        luma[y as usize * stride..(y as usize + 1) * stride].copy_from_slice(line);
    }
}

/// Mean of a plane's samples in [x0, x1) x [y0, y1); None for an empty or out-of-range area.
fn mean(plane: &[u8], stride: u32, x0: u32, x1: u32, y0: u32, y1: u32) -> Option<f32> {
    if x0 >= x1 || y0 >= y1 {
        return None;
    }
    let mut sum = 0u64;
    for y in y0..y1 {
        let start = y as usize * stride as usize;
        let row = plane.get(start + x0 as usize..start + x1 as usize)?;
        sum += row.iter().map(|&p| u64::from(p)).sum::<u64>();
    }
    Some(sum as f32 / ((x1 - x0) * (y1 - y0)) as f32)
}

/// The central half (each way) of a span, away from edges the codec blurs.
fn centre(start: u32, len: u32) -> (u32, u32) {
    (start + len / 4, start + len - len / 4)
}

/// Reads the counter back from a decoded frame; None if the frame does not carry a readable
/// pattern (e.g. black, or a different picture).
pub fn read_counter(frame: &VideoFrame) -> Option<u32> {
    frame.validate().ok()?;
    let l = Layout::new(frame.width, frame.height);
    if !l.readable() {
        return None;
    }
    let mut counter = 0u32;
    for row in 0..2 {
        let (y0, y1) = centre(row * l.row_h, l.row_h);
        let mut levels = [0f32; CELLS as usize];
        for (cell, level) in (0..CELLS).zip(levels.iter_mut()) {
            let (x0, x1) = centre(cell * l.cell_w, l.cell_w);
            *level = mean(frame.y(), l.width, x0, x1, y0, y1)?;
        }
        let (white, black) = (levels[0], levels[1]);
        if white - black < MIN_CONTRAST {
            return None;
        }
        let threshold = (white + black) / 2.0;
        // A cell near the threshold means damage or a foreign picture: refuse, never guess.
        let margin = (white - black) / 4.0;
        let mut cells = [false; CELLS as usize];
        for (cell, &level) in cells.iter_mut().zip(&levels) {
            if (level - threshold).abs() < margin {
                return None;
            }
            *cell = level > threshold;
        }
        let word = cells[2..2 + DATA_BITS].iter().fold(0u16, |w, &b| (w << 1) | u16::from(b));
        if cells != row_cells(row, word) {
            return None;
        }
        counter = (counter << 16) | u32::from(word);
    }
    Some(counter)
}

/// True if the frame looks like TestPattern's picture for `counter`: the counter reads back,
/// the sweeping bar is where that counter puts it, and the colour bars have their colours
/// (within a tolerance for codec noise).
pub fn matches_pattern(frame: &VideoFrame, counter: u32) -> bool {
    read_counter(frame) == Some(counter) && matches_beyond_counter(frame, counter)
}

/// The rest of `matches_pattern`, for a frame whose counter has already read back as `counter`.
pub(crate) fn matches_beyond_counter(frame: &VideoFrame, counter: u32) -> bool {
    sweep_matches(frame, counter) && bars_match(frame)
}

fn sweep_matches(frame: &VideoFrame, counter: u32) -> bool {
    let l = Layout::new(frame.width, frame.height);
    let (x0, x1) = centre(l.sweep_x(counter), l.sweep_w);
    let (y0, y1) = centre(l.mid_top, l.bars_top - l.mid_top);
    mean(frame.y(), l.width, x0, x1, y0, y1).is_some_and(|m| m > SWEEP_THRESHOLD)
}

fn bars_match(frame: &VideoFrame) -> bool {
    let l = Layout::new(frame.width, frame.height);
    let (y0, y1) = centre(l.bars_top, l.height - l.bars_top);
    let cw = frame.chroma_width();
    bar_colours().iter().zip(0u32..).all(|(want, i)| {
        let (x0, x1) = centre(i * l.bar_w, l.bar_w);
        let got = [
            mean(frame.y(), l.width, x0, x1, y0, y1),
            mean(frame.u(), cw, x0 / 2, x1 / 2, y0 / 2, y1 / 2),
            mean(frame.v(), cw, x0 / 2, x1 / 2, y0 / 2, y1 / 2),
        ];
        got.iter()
            .zip(want)
            .all(|(got, &want)| got.is_some_and(|g| (g - f32::from(want)).abs() <= BAR_TOLERANCE))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random u32s (xorshift), so failures reproduce.
    pub(crate) fn xorshift(seed: u32) -> impl Iterator<Item = u32> {
        let mut x = seed;
        std::iter::repeat_with(move || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        })
    }

    fn bigger_again() -> VideoFrame {
        TestPattern::new(640, 480).frame(3, 0)
    }

    #[test]
    fn a_frame_drawn_over_an_old_one_is_the_same_frame() {
        let p = TestPattern::new(320, 240);
        let old = p.frame(7, 0);
        let reused = p.frame_in(old.data, 8, 33_333);
        assert_eq!(reused.data, p.frame(8, 33_333).data);
        assert_eq!(read_counter(&reused), Some(8));
        // A buffer of another size (the camera's size changed) is not a problem either.
        let bigger = TestPattern::new(640, 480).frame(1, 0);
        assert!(matches_pattern(&p.frame_in(bigger.data, 9, 0), 9));
        // Drawn over the pattern's own last frame, only what moves is drawn: the same frame.
        let over = p.frame_over(p.frame(8, 33_333), 9, 66_666);
        assert_eq!(over.data, p.frame(9, 66_666).data);
        assert_eq!(over.timestamp_us, 66_666);
        // A frame of another size is drawn over whole.
        assert_eq!(p.frame_over(bigger_again(), 10, 0).data, p.frame(10, 0).data);
        // Nor one whose bytes are anything at all, at any size: every byte is drawn or copied.
        for (w, h) in [(320, 240), (321, 243), (1280, 720), (80, 64)] {
            let p = TestPattern::new(w, h);
            let fresh = p.frame(11, 0).data;
            for junk in [vec![0x55; fresh.len()], vec![0xAA; fresh.len() + 100], vec![1; 10]] {
                assert_eq!(p.frame_in(junk, 11, 0).data, fresh, "{w}x{h}");
            }
        }
    }

    #[test]
    fn counter_round_trips_uncompressed() {
        for (w, h) in [(320, 240), (640, 480), (1280, 720), (80, 64), (321, 243)] {
            let p = TestPattern::new(w, h);
            let specials = [0, 1, 2, 0xFFFF, 0x1_0000, 65535, u32::MAX, 0x8000_0001];
            for n in specials.into_iter().chain(xorshift(7).take(200)) {
                let f = p.frame(n, 42);
                assert_eq!((f.width, f.height, f.timestamp_us), (w, h, 42));
                f.validate().unwrap();
                assert_eq!(read_counter(&f), Some(n), "{w}x{h} counter {n}");
                assert!(matches_pattern(&f, n), "{w}x{h} counter {n}");
            }
        }
    }

    #[test]
    fn other_pictures_do_not_match() {
        let p = TestPattern::new(320, 240);
        let f = p.frame(1000, 0);
        assert!(!matches_pattern(&f, 1001));
        assert!(!matches_pattern(&f, 1000 + 65536));
        assert!(!matches_pattern(&p.frame(1001, 0), 1000));

        let black = VideoFrame::black(320, 240, 0);
        assert_eq!(read_counter(&black), None);
        assert!(!matches_pattern(&black, 0));

        // Mid grey everywhere: no contrast in the band.
        let mut grey = black.clone();
        grey.data.fill(128);
        assert_eq!(read_counter(&grey), None);

        // The right band but the colour bars painted over: read_counter is fine, the match not.
        let mut no_bars = f.clone();
        let bars_start = 320 * (240 / 8 * 5);
        no_bars.data[bars_start..320 * 240].fill(16);
        assert_eq!(read_counter(&no_bars), Some(1000));
        assert!(!matches_pattern(&no_bars, 1000));

        // The sweeping bar of another frame: same band and bars, bar in the wrong place.
        let mut moved = f.clone();
        let other = p.frame(1003, 0);
        let (mid0, mid1) = (320 * 30, 320 * 150);
        moved.data[mid0..mid1].copy_from_slice(&other.data[mid0..mid1]);
        assert!(!matches_pattern(&moved, 1000));

        // One flipped data cell breaks the parity and is refused rather than misread.
        let mut flipped = f.clone();
        let l = Layout::new(320, 240);
        for y in l.row_h..2 * l.row_h {
            for x in 5 * l.cell_w..6 * l.cell_w {
                let p = &mut flipped.data[(y * 320 + x) as usize];
                *p = if *p > 128 { BLACK } else { WHITE };
            }
        }
        assert_eq!(read_counter(&flipped), None);
    }

    #[test]
    fn tiny_or_malformed_frames_are_not_readable() {
        let f = TestPattern::new(40, 30).frame(5, 0);
        f.validate().unwrap();
        assert_eq!(read_counter(&f), None);
        let empty = TestPattern::new(0, 0).frame(5, 0);
        assert_eq!(read_counter(&empty), None);
        let mut short = TestPattern::new(320, 240).frame(5, 0);
        short.data.truncate(1000);
        assert_eq!(read_counter(&short), None);
        assert!(!matches_pattern(&short, 5));
    }

    #[test]
    fn consecutive_frames_differ_in_the_moving_area() {
        let p = TestPattern::new(320, 240);
        let (a, b) = (p.frame(10, 0), p.frame(11, 0));
        let l = Layout::new(320, 240);
        let range = (l.mid_top * 320) as usize..(l.bars_top * 320) as usize;
        let changed = a.data[range.clone()].iter().zip(&b.data[range]).filter(|(x, y)| x != y);
        assert!(changed.count() > 320 * 50);
        assert_ne!(l.sweep_x(10), l.sweep_x(11));
    }
}
