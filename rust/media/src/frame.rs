//! Raw video frames in the one layout the rest of the engine handles: tightly packed I420.
//!
//! Platforms hand us planes with row padding (strides) or NV12; converting once at the edge keeps
//! every consumer (encoder, pattern reader, renderer callbacks) free of stride logic.

use std::fmt;

/// Largest accepted side. H.264 level 5.2 stops at 4096; the margin only exists so that absurd
/// sizes from a confused platform shim fail cleanly instead of attempting a huge allocation.
pub const MAX_DIMENSION: u32 = 8192;

/// Rotation the receiver must apply to display the frame upright (camera sensor orientation).
/// It travels beside the picture (RTP video-orientation extension), never inside the bitstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Rotation {
    #[default]
    Deg0,
    Deg90,
    Deg180,
    Deg270,
}

/// Names a plane in error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plane {
    Y,
    U,
    V,
    /// The interleaved chroma plane of NV12.
    Uv,
}

impl fmt::Display for Plane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Plane::Y => "Y",
            Plane::U => "U",
            Plane::V => "V",
            Plane::Uv => "UV",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame size {width}x{height} has a zero side")]
    ZeroSize { width: u32, height: u32 },
    #[error("frame size {width}x{height} exceeds the {MAX_DIMENSION} pixel limit")]
    TooLarge { width: u32, height: u32 },
    #[error("{plane} stride {stride} is smaller than the row width {min}")]
    StrideTooSmall { plane: Plane, stride: u32, min: u32 },
    #[error("{plane} plane has {len} bytes, needs at least {needed}")]
    PlaneTooShort { plane: Plane, len: usize, needed: usize },
    #[error("frame data has {len} bytes, {width}x{height} I420 needs exactly {needed}")]
    DataLength { width: u32, height: u32, len: usize, needed: usize },
}

/// I420, tightly packed: Y (width*height), then U, then V (each chroma_width*chroma_height;
/// chroma dims = (w+1)/2, (h+1)/2).
#[derive(Clone, Debug, PartialEq)]
pub struct VideoFrame {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
    pub timestamp_us: u64,
    pub rotation: Rotation,
}

fn chroma(side: u32) -> u32 {
    side.div_ceil(2)
}

/// Byte count of a tight I420 picture; None only where it would not fit in memory anyway.
fn i420_len(width: u32, height: u32) -> Option<usize> {
    let (w, h) = (u64::from(width), u64::from(height));
    let (cw, ch) = (u64::from(chroma(width)), u64::from(chroma(height)));
    usize::try_from(w * h + 2 * cw * ch).ok()
}

fn check_size(width: u32, height: u32) -> Result<(), FrameError> {
    if width == 0 || height == 0 {
        return Err(FrameError::ZeroSize { width, height });
    }
    if width > MAX_DIMENSION || height > MAX_DIMENSION {
        return Err(FrameError::TooLarge { width, height });
    }
    Ok(())
}

/// Checks one strided source plane. The last row only needs `row_bytes`, not a whole stride:
/// Android's camera planes, for one, end right after the last pixel.
fn check_plane(
    plane: Plane,
    data: &[u8],
    stride: u32,
    row_bytes: u32,
    rows: u32,
) -> Result<(), FrameError> {
    if stride < row_bytes {
        return Err(FrameError::StrideTooSmall { plane, stride, min: row_bytes });
    }
    let needed = u64::from(stride) * u64::from(rows - 1) + u64::from(row_bytes);
    let needed = usize::try_from(needed).unwrap_or(usize::MAX);
    if data.len() < needed {
        return Err(FrameError::PlaneTooShort { plane, len: data.len(), needed });
    }
    Ok(())
}

/// Writes a strided plane into `out` at `at` as tight rows of `row_bytes`: over the bytes
/// there when `out` already holds them (a reused buffer), else appended (`out` is then
/// `at` bytes long and reserved by the caller, so it never grows). A tight source is one
/// memcpy, a padded one a memcpy per row.
fn copy_plane(
    out: &mut Vec<u8>,
    at: usize,
    src: &[u8],
    stride: usize,
    row_bytes: usize,
    rows: usize,
) {
    let len = row_bytes * rows;
    let tight = if stride == row_bytes { src.get(..len) } else { None };
    if let Some(dst) = out.get_mut(at..at + len) {
        match tight {
            Some(src) => dst.copy_from_slice(src),
            None => {
                for (dst, src) in dst.chunks_exact_mut(row_bytes).zip(src.chunks(stride)) {
                    dst.copy_from_slice(&src[..row_bytes]);
                }
            }
        }
        return;
    }
    debug_assert_eq!(out.len(), at, "planes are appended in order");
    match tight {
        Some(src) => out.extend_from_slice(src),
        None => {
            for row in src.chunks(stride).take(rows) {
                out.extend_from_slice(&row[..row_bytes]);
            }
        }
    }
}

/// Pairs handled per step of [`deinterleave_row`]: a fixed count lets the compiler turn the
/// step into a few vector instructions (mask, shift, pack) instead of a byte loop.
const PAIRS_PER_STEP: usize = 16;

/// Splits one row of interleaved U,V pairs into its U and V rows (all three of the same
/// pair count).
fn deinterleave_row(uv: &[u8], u: &mut [u8], v: &mut [u8]) {
    let steps = uv
        .chunks_exact(2 * PAIRS_PER_STEP)
        .zip(u.chunks_exact_mut(PAIRS_PER_STEP))
        .zip(v.chunks_exact_mut(PAIRS_PER_STEP));
    for ((uv, u), v) in steps {
        // Through a local array of 16-bit lanes (U low, V high): the compiler cannot prove the
        // output rows never overlap the input once this is inlined, and on plain lanes the
        // halves come apart with a mask, a shift and a pack, 16 pairs at a time.
        let mut lanes = [0u16; PAIRS_PER_STEP];
        for (lane, pair) in lanes.iter_mut().zip(uv.chunks_exact(2)) {
            *lane = u16::from_le_bytes([pair[0], pair[1]]);
        }
        let us = lanes.map(|lane| (lane & 0xff) as u8);
        let vs = lanes.map(|lane| (lane >> 8) as u8);
        u.copy_from_slice(&us);
        v.copy_from_slice(&vs);
    }
    let done = u.len() - u.len() % PAIRS_PER_STEP;
    let rest = uv[2 * done..].chunks_exact(2).zip(&mut u[done..]).zip(&mut v[done..]);
    for ((pair, u), v) in rest {
        *u = pair[0];
        *v = pair[1];
    }
}

/// Splits an NV12 chroma plane (rows `stride` apart) into tight U and V planes of `width`
/// columns each.
fn deinterleave_plane(u: &mut [u8], v: &mut [u8], uv: &[u8], stride: usize, width: usize) {
    let rows = u.chunks_exact_mut(width).zip(v.chunks_exact_mut(width)).zip(uv.chunks(stride));
    for ((u_row, v_row), uv_row) in rows {
        deinterleave_row(&uv_row[..2 * width], u_row, v_row);
    }
}

/// The buffer a conversion writes the tight I420 picture into: `spare` as it is when it is
/// exactly the picture's size (a frame of the same size that nobody reads any more; it is
/// overwritten in place, with no allocation and nothing zeroed), else an empty buffer with
/// room for the whole picture, so filling it never reallocates (and nothing is zeroed only
/// to be overwritten). Only an exact size is reused: a larger spare would keep memory the
/// picture does not need for as long as the camera pushes.
fn i420_buffer(
    width: u32,
    height: u32,
    spare: impl FnOnce() -> Vec<u8>,
) -> Result<Vec<u8>, FrameError> {
    let len = i420_len(width, height).ok_or(FrameError::TooLarge { width, height })?;
    let spare = spare();
    if spare.len() == len {
        return Ok(spare);
    }
    Ok(Vec::with_capacity(len))
}

impl VideoFrame {
    /// Video-range black (Y 16, neutral chroma), what a camera delivers with the lens covered.
    /// A zero or oversized side yields a frame with no data, which `validate` rejects.
    pub fn black(width: u32, height: u32, timestamp_us: u64) -> VideoFrame {
        let data = match check_size(width, height).ok().and_then(|()| i420_len(width, height)) {
            Some(len) => {
                let luma = width as usize * height as usize;
                let mut data = vec![128u8; len];
                data[..luma].fill(16);
                data
            }
            None => Vec::new(),
        };
        VideoFrame { width, height, data, timestamp_us, rotation: Rotation::Deg0 }
    }

    /// A frame copied from three planes, each row `stride` bytes apart.
    ///
    /// # Errors
    ///
    /// `ZeroSize` or `TooLarge` for a size out of range, `StrideTooSmall` or `PlaneTooShort`
    /// for a plane that cannot hold its rows.
    #[allow(clippy::too_many_arguments)]
    pub fn from_i420(
        width: u32,
        height: u32,
        y: &[u8],
        y_stride: u32,
        u: &[u8],
        u_stride: u32,
        v: &[u8],
        v_stride: u32,
        timestamp_us: u64,
        rotation: Rotation,
    ) -> Result<VideoFrame, FrameError> {
        VideoFrame::from_i420_reusing(
            Vec::new,
            width,
            height,
            y,
            y_stride,
            u,
            u_stride,
            v,
            v_stride,
            timestamp_us,
            rotation,
        )
    }

    /// [`VideoFrame::from_i420`], written over the buffer `spare` returns when that is exactly
    /// the picture's size (the data of an older frame of the same size that nobody reads any
    /// more): a camera pushing 30 frames a second then copies into the same memory each time
    /// instead of a fresh allocation. Any other buffer is dropped and a new one allocated.
    /// `spare` is called only once the planes have passed every check, so a refused frame
    /// takes nothing from the caller.
    ///
    /// # Errors
    ///
    /// As [`VideoFrame::from_i420`].
    #[allow(clippy::too_many_arguments)]
    pub fn from_i420_reusing(
        spare: impl FnOnce() -> Vec<u8>,
        width: u32,
        height: u32,
        y: &[u8],
        y_stride: u32,
        u: &[u8],
        u_stride: u32,
        v: &[u8],
        v_stride: u32,
        timestamp_us: u64,
        rotation: Rotation,
    ) -> Result<VideoFrame, FrameError> {
        check_size(width, height)?;
        let (cw, ch) = (chroma(width), chroma(height));
        check_plane(Plane::Y, y, y_stride, width, height)?;
        check_plane(Plane::U, u, u_stride, cw, ch)?;
        check_plane(Plane::V, v, v_stride, cw, ch)?;
        let mut data = i420_buffer(width, height, spare)?;
        let (w, h, cw, ch) = (width as usize, height as usize, cw as usize, ch as usize);
        copy_plane(&mut data, 0, y, y_stride as usize, w, h);
        copy_plane(&mut data, w * h, u, u_stride as usize, cw, ch);
        copy_plane(&mut data, w * h + cw * ch, v, v_stride as usize, cw, ch);
        Ok(VideoFrame { width, height, data, timestamp_us, rotation })
    }

    /// NV12 (Y plane, then one plane of interleaved U,V pairs): the usual output of iOS and
    /// Android camera pipelines.
    ///
    /// # Errors
    ///
    /// As [`VideoFrame::from_i420`].
    #[allow(clippy::too_many_arguments)]
    pub fn from_nv12(
        width: u32,
        height: u32,
        y: &[u8],
        y_stride: u32,
        uv: &[u8],
        uv_stride: u32,
        timestamp_us: u64,
        rotation: Rotation,
    ) -> Result<VideoFrame, FrameError> {
        VideoFrame::from_nv12_reusing(
            Vec::new,
            width,
            height,
            y,
            y_stride,
            uv,
            uv_stride,
            timestamp_us,
            rotation,
        )
    }

    /// [`VideoFrame::from_nv12`] over a spare buffer, as [`VideoFrame::from_i420_reusing`].
    ///
    /// # Errors
    ///
    /// As [`VideoFrame::from_i420`].
    #[allow(clippy::too_many_arguments)]
    pub fn from_nv12_reusing(
        spare: impl FnOnce() -> Vec<u8>,
        width: u32,
        height: u32,
        y: &[u8],
        y_stride: u32,
        uv: &[u8],
        uv_stride: u32,
        timestamp_us: u64,
        rotation: Rotation,
    ) -> Result<VideoFrame, FrameError> {
        check_size(width, height)?;
        let (cw, ch) = (chroma(width), chroma(height));
        check_plane(Plane::Y, y, y_stride, width, height)?;
        check_plane(Plane::Uv, uv, uv_stride, 2 * cw, ch)?;
        let mut data = i420_buffer(width, height, spare)?;
        let (w, h, cw, ch) = (width as usize, height as usize, cw as usize, ch as usize);
        copy_plane(&mut data, 0, y, y_stride as usize, w, h);
        // The U and V planes are filled side by side from each UV row, so they need to exist
        // first: in a new buffer they are zeroed (a small cost beside the de-interleave), a
        // reused one already has them.
        data.resize(w * h + 2 * cw * ch, 0);
        let (u_out, v_out) = data[w * h..].split_at_mut(cw * ch);
        deinterleave_plane(u_out, v_out, uv, uv_stride as usize, cw);
        Ok(VideoFrame { width, height, data, timestamp_us, rotation })
    }

    /// The fields are public, so a frame can be built inconsistent; consumers that index into
    /// the planes call this first.
    ///
    /// # Errors
    ///
    /// `ZeroSize` or `TooLarge` for a size out of range, `DataLength` when `data` is not exactly
    /// the I420 size.
    pub fn validate(&self) -> Result<(), FrameError> {
        check_size(self.width, self.height)?;
        let needed = i420_len(self.width, self.height)
            .ok_or(FrameError::TooLarge { width: self.width, height: self.height })?;
        if self.data.len() != needed {
            return Err(FrameError::DataLength {
                width: self.width,
                height: self.height,
                len: self.data.len(),
                needed,
            });
        }
        Ok(())
    }

    pub fn chroma_width(&self) -> u32 {
        chroma(self.width)
    }

    pub fn chroma_height(&self) -> u32 {
        chroma(self.height)
    }

    fn luma_len(&self) -> usize {
        self.width as usize * self.height as usize
    }

    fn chroma_len(&self) -> usize {
        self.chroma_width() as usize * self.chroma_height() as usize
    }

    /// Clamped so a malformed frame gives short planes rather than a panic.
    fn plane(&self, start: usize, len: usize) -> &[u8] {
        let start = start.min(self.data.len());
        let end = start.saturating_add(len).min(self.data.len());
        &self.data[start..end]
    }

    pub fn y(&self) -> &[u8] {
        self.plane(0, self.luma_len())
    }

    pub fn u(&self) -> &[u8] {
        self.plane(self.luma_len(), self.chroma_len())
    }

    pub fn v(&self) -> &[u8] {
        self.plane(self.luma_len() + self.chroma_len(), self.chroma_len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 5x3 picture (odd both ways) with distinct values everywhere, in tight I420.
    fn tight_odd() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let y: Vec<u8> = (0..15).collect();
        let u: Vec<u8> = (100..106).collect(); // 3x2 chroma
        let v: Vec<u8> = (200..206).collect();
        (y, u, v)
    }

    fn pad(plane: &[u8], row_bytes: usize, stride: usize, trim_last: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for row in plane.chunks(row_bytes) {
            out.extend_from_slice(row);
            out.extend(std::iter::repeat_n(0xEE, stride - row_bytes));
        }
        if trim_last {
            out.truncate(out.len() - (stride - row_bytes));
        }
        out
    }

    #[test]
    fn padded_i420_equals_tight_copy() {
        let (y, u, v) = tight_odd();
        let tight = VideoFrame::from_i420(5, 3, &y, 5, &u, 3, &v, 3, 7, Rotation::Deg90).unwrap();
        assert_eq!(tight.data, [y.clone(), u.clone(), v.clone()].concat());
        assert_eq!((tight.chroma_width(), tight.chroma_height()), (3, 2));
        assert_eq!((tight.timestamp_us, tight.rotation), (7, Rotation::Deg90));

        for trim_last in [false, true] {
            let (py, pu, pv) =
                (pad(&y, 5, 8, trim_last), pad(&u, 3, 4, trim_last), pad(&v, 3, 6, trim_last));
            let padded =
                VideoFrame::from_i420(5, 3, &py, 8, &pu, 4, &pv, 6, 7, Rotation::Deg90).unwrap();
            assert_eq!(padded, tight, "trim_last={trim_last}");
            assert_eq!(padded.y(), &y[..]);
            assert_eq!(padded.u(), &u[..]);
            assert_eq!(padded.v(), &v[..]);
        }
    }

    #[test]
    fn nv12_deinterleaves() {
        // 4x2 luma, 2x1 chroma: UV row = U0 V0 U1 V1, plus 3 bytes of stride padding.
        let y = [1, 2, 3, 4, 5, 6, 7, 8];
        let uv = [10, 20, 11, 21, 0xEE, 0xEE, 0xEE];
        let f = VideoFrame::from_nv12(4, 2, &y, 4, &uv, 7, 0, Rotation::Deg0).unwrap();
        assert_eq!(f.y(), &y);
        assert_eq!(f.u(), &[10, 11]);
        assert_eq!(f.v(), &[20, 21]);

        // Odd width: 3 pixels wide still has 2 chroma columns, so 4 bytes per UV row.
        let y = [1, 2, 3, 4, 5, 6, 7, 8, 9];
        let uv = [10, 20, 11, 21, 12, 22, 13, 23];
        let f = VideoFrame::from_nv12(3, 3, &y, 3, &uv, 4, 0, Rotation::Deg0).unwrap();
        assert_eq!(f.u(), &[10, 11, 12, 13]);
        assert_eq!(f.v(), &[20, 21, 22, 23]);
        f.validate().unwrap();
    }

    /// Random-ish bytes (xorshift), so a misplaced byte cannot match by accident.
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

    /// A source plane of `rows` rows `stride` apart; `tail` bytes follow the last row's pixels
    /// (0 is the tightest a platform may hand over).
    fn plane(stride: usize, row_bytes: usize, rows: usize, tail: usize, seed: u32) -> Vec<u8> {
        noise(stride * (rows - 1) + row_bytes + tail, seed)
    }

    /// The plainest possible conversions, one pixel at a time, to check the fast ones against.
    fn reference_i420(w: usize, h: usize, planes: [(&[u8], usize); 3]) -> Vec<u8> {
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let mut out = Vec::new();
        for (i, (src, stride)) in planes.into_iter().enumerate() {
            let (cols, rows) = if i == 0 { (w, h) } else { (cw, ch) };
            for r in 0..rows {
                for c in 0..cols {
                    out.push(src[r * stride + c]);
                }
            }
        }
        out
    }

    fn reference_nv12(w: usize, h: usize, y: &[u8], ys: usize, uv: &[u8], uvs: usize) -> Vec<u8> {
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let mut out = Vec::new();
        for r in 0..h {
            for c in 0..w {
                out.push(y[r * ys + c]);
            }
        }
        for half in 0..2 {
            for r in 0..ch {
                for c in 0..cw {
                    out.push(uv[r * uvs + 2 * c + half]);
                }
            }
        }
        out
    }

    /// Sizes around the 16-pair step of the de-interleave (chroma widths 1, 8, 15, 16, 17, 33,
    /// 640), odd and even both ways, each with a tight stride, padding, and padding cut after
    /// the last row's pixels, and a tight source with bytes beyond the plane.
    fn cases() -> Vec<(usize, usize, usize, usize)> {
        let mut cases = Vec::new();
        for (w, h) in [(1, 1), (2, 1), (1, 3), (15, 2), (29, 7), (32, 4), (33, 5), (66, 9)] {
            for (pad, tail) in [(0, 0), (0, 5), (1, 0), (7, 0), (64, 64)] {
                cases.push((w, h, pad, tail));
            }
        }
        cases.push((1280, 720, 0, 0));
        cases.push((1280, 720, 64, 0));
        cases
    }

    #[test]
    #[allow(clippy::cast_possible_truncation)] // test sizes are small
    fn i420_matches_reference_byte_for_byte() {
        for (n, (w, h, pad, tail)) in cases().into_iter().enumerate() {
            let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
            let (ys, cs) = (w + pad, cw + pad.div_ceil(2));
            let seed = n as u32 * 3;
            let y = plane(ys, w, h, tail, seed + 1);
            let u = plane(cs, cw, ch, tail, seed + 2);
            let v = plane(cs + 1, cw, ch, tail, seed + 3);
            let (wu, hu) = (w as u32, h as u32);
            let f = VideoFrame::from_i420(
                wu,
                hu,
                &y,
                ys as u32,
                &u,
                cs as u32,
                &v,
                cs as u32 + 1,
                0,
                Rotation::Deg0,
            )
            .unwrap();
            let want = reference_i420(w, h, [(&y, ys), (&u, cs), (&v, cs + 1)]);
            assert_eq!(f.data, want, "{w}x{h} pad {pad} tail {tail}");
            assert_eq!(f.data.capacity(), f.data.len(), "{w}x{h}: allocated once, exactly");
            f.validate().unwrap();
        }
    }

    #[test]
    #[allow(clippy::cast_possible_truncation)] // test sizes are small
    fn nv12_matches_reference_byte_for_byte() {
        for (n, (w, h, pad, tail)) in cases().into_iter().enumerate() {
            let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
            let (ys, uvs) = (w + pad, 2 * cw + pad);
            let seed = n as u32 * 2;
            let y = plane(ys, w, h, tail, seed + 1);
            let uv = plane(uvs, 2 * cw, ch, tail, seed + 2);
            let f = VideoFrame::from_nv12(
                w as u32,
                h as u32,
                &y,
                ys as u32,
                &uv,
                uvs as u32,
                0,
                Rotation::Deg0,
            )
            .unwrap();
            assert_eq!(
                f.data,
                reference_nv12(w, h, &y, ys, &uv, uvs),
                "{w}x{h} pad {pad} tail {tail}"
            );
            assert_eq!(f.data.capacity(), f.data.len(), "{w}x{h}: allocated once, exactly");
            f.validate().unwrap();
        }
    }

    /// A reused buffer gets exactly what a new one would, whatever it held: every byte is
    /// written, none left from the older frame.
    #[test]
    #[allow(clippy::cast_possible_truncation)] // test sizes are small
    fn reused_buffers_are_written_over_entirely() {
        for (n, (w, h, pad, tail)) in cases().into_iter().enumerate() {
            let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
            let (ys, cs, uvs) = (w + pad, cw + pad.div_ceil(2), 2 * cw + pad);
            let seed = n as u32 * 5;
            let y = plane(ys, w, h, tail, seed + 1);
            let u = plane(cs, cw, ch, tail, seed + 2);
            let v = plane(cs, cw, ch, tail, seed + 3);
            let uv = plane(uvs, 2 * cw, ch, tail, seed + 4);
            let (wu, hu, ysu, csu, uvsu) = (w as u32, h as u32, ys as u32, cs as u32, uvs as u32);
            let len = w * h + 2 * cw * ch;
            let i420 = |spare: Vec<u8>| {
                let frame = VideoFrame::from_i420_reusing(
                    move || spare,
                    wu,
                    hu,
                    &y,
                    ysu,
                    &u,
                    csu,
                    &v,
                    csu,
                    3,
                    Rotation::Deg180,
                );
                frame.unwrap()
            };
            let nv12 = |spare: Vec<u8>| {
                let frame = VideoFrame::from_nv12_reusing(
                    move || spare,
                    wu,
                    hu,
                    &y,
                    ysu,
                    &uv,
                    uvsu,
                    3,
                    Rotation::Deg180,
                );
                frame.unwrap()
            };
            let want_i420 = reference_i420(w, h, [(&y, ys), (&u, cs), (&v, cs)]);
            let want_nv12 = reference_nv12(w, h, &y, ys, &uv, uvs);
            for (convert, want) in [
                (&i420 as &dyn Fn(Vec<u8>) -> VideoFrame, &want_i420),
                (&nv12 as &dyn Fn(Vec<u8>) -> VideoFrame, &want_nv12),
            ] {
                let spare = vec![0xA5; len];
                let at = spare.as_ptr();
                let f = convert(spare);
                assert_eq!(&f.data, want, "{w}x{h} pad {pad} tail {tail}");
                assert_eq!(f.data.as_ptr(), at, "{w}x{h}: the spare was written over");
                assert_eq!((f.timestamp_us, f.rotation), (3, Rotation::Deg180));
                // Any other size is not used: a larger one would keep memory the frame does
                // not need, a smaller one would grow.
                for other in [len - 1, len + 1] {
                    let f = convert(vec![0xA5; other]);
                    assert_eq!(&f.data, want, "{w}x{h}, spare of {other}");
                    assert_eq!(f.data.capacity(), len, "{w}x{h}, spare of {other}");
                }
                assert_eq!(&convert(Vec::new()).data, want);
            }
        }
    }

    #[test]
    fn refused_frames_take_no_spare() {
        let buf = vec![0u8; 64];
        let untouched = || -> Vec<u8> { panic!("a refused frame asked for a buffer") };
        let err = VideoFrame::from_i420_reusing(
            untouched,
            4,
            4,
            &buf[..15],
            4,
            &buf,
            2,
            &buf,
            2,
            0,
            Rotation::Deg0,
        );
        assert_eq!(err, Err(FrameError::PlaneTooShort { plane: Plane::Y, len: 15, needed: 16 }));
        let err =
            VideoFrame::from_nv12_reusing(untouched, 4, 4, &buf, 4, &buf, 3, 0, Rotation::Deg0);
        assert_eq!(err, Err(FrameError::StrideTooSmall { plane: Plane::Uv, stride: 3, min: 4 }));
    }

    #[test]
    fn bad_sizes_and_strides_are_errors() {
        let buf = vec![0u8; 64];
        let i420 = |w, h, ys, us, vs, y: &[u8], u: &[u8], v: &[u8]| {
            VideoFrame::from_i420(w, h, y, ys, u, us, v, vs, 0, Rotation::Deg0)
        };
        assert_eq!(
            i420(0, 4, 4, 2, 2, &buf, &buf, &buf),
            Err(FrameError::ZeroSize { width: 0, height: 4 })
        );
        assert_eq!(
            i420(4, 0, 4, 2, 2, &buf, &buf, &buf),
            Err(FrameError::ZeroSize { width: 4, height: 0 })
        );
        assert_eq!(
            i420(9000, 2, 9000, 4500, 4500, &buf, &buf, &buf),
            Err(FrameError::TooLarge { width: 9000, height: 2 })
        );
        assert_eq!(
            i420(4, 4, 3, 2, 2, &buf, &buf, &buf),
            Err(FrameError::StrideTooSmall { plane: Plane::Y, stride: 3, min: 4 })
        );
        // Odd width 5 needs chroma rows of 3, so a chroma stride of 2 (5/2 rounded down) is wrong.
        assert_eq!(
            i420(5, 4, 5, 2, 3, &buf, &buf, &buf),
            Err(FrameError::StrideTooSmall { plane: Plane::U, stride: 2, min: 3 })
        );
        assert_eq!(
            i420(4, 4, 4, 2, 2, &buf[..15], &buf, &buf),
            Err(FrameError::PlaneTooShort { plane: Plane::Y, len: 15, needed: 16 })
        );
        // Odd height 3 has 2 chroma rows: stride 2 + 2 bytes.
        assert_eq!(
            i420(4, 3, 4, 2, 2, &buf, &buf, &buf[..3]),
            Err(FrameError::PlaneTooShort { plane: Plane::V, len: 3, needed: 4 })
        );
        assert_eq!(
            VideoFrame::from_nv12(4, 4, &buf, 4, &buf, 3, 0, Rotation::Deg0),
            Err(FrameError::StrideTooSmall { plane: Plane::Uv, stride: 3, min: 4 })
        );
        assert_eq!(
            VideoFrame::from_nv12(5, 5, &buf, 5, &buf[..11], 6, 0, Rotation::Deg0),
            Err(FrameError::PlaneTooShort { plane: Plane::Uv, len: 11, needed: 18 })
        );
        // Messages name the problem.
        let msg = i420(4, 4, 4, 2, 2, &buf[..15], &buf, &buf).unwrap_err().to_string();
        assert!(msg.contains("Y plane has 15 bytes") && msg.contains("16"), "{msg}");
    }

    #[test]
    fn inconsistent_frames_fail_validation_without_panicking() {
        let mut f = VideoFrame::black(4, 4, 0);
        f.validate().unwrap();
        f.data.truncate(10);
        assert!(matches!(f.validate(), Err(FrameError::DataLength { len: 10, needed: 24, .. })));
        assert_eq!(f.y().len(), 10);
        assert!(f.u().is_empty() && f.v().is_empty());
        assert!(VideoFrame::black(0, 4, 0).validate().is_err());
    }

    #[test]
    fn black_is_video_range_black() {
        let f = VideoFrame::black(3, 3, 5);
        assert_eq!(f.data.len(), 9 + 2 * 4);
        assert!(f.y().iter().all(|&p| p == 16));
        assert!(f.u().iter().chain(f.v()).all(|&p| p == 128));
    }
}
