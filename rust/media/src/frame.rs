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

fn copy_plane(out: &mut Vec<u8>, src: &[u8], stride: u32, row_bytes: u32, rows: u32) {
    let (stride, row_bytes) = (stride as usize, row_bytes as usize);
    for row in src.chunks(stride).take(rows as usize) {
        out.extend_from_slice(&row[..row_bytes]);
    }
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
        check_size(width, height)?;
        let (cw, ch) = (chroma(width), chroma(height));
        check_plane(Plane::Y, y, y_stride, width, height)?;
        check_plane(Plane::U, u, u_stride, cw, ch)?;
        check_plane(Plane::V, v, v_stride, cw, ch)?;
        let len = i420_len(width, height).ok_or(FrameError::TooLarge { width, height })?;
        let mut data = Vec::with_capacity(len);
        copy_plane(&mut data, y, y_stride, width, height);
        copy_plane(&mut data, u, u_stride, cw, ch);
        copy_plane(&mut data, v, v_stride, cw, ch);
        Ok(VideoFrame { width, height, data, timestamp_us, rotation })
    }

    /// NV12 (Y plane, then one plane of interleaved U,V pairs): the usual output of iOS and
    /// Android camera pipelines.
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
        check_size(width, height)?;
        let (cw, ch) = (chroma(width), chroma(height));
        check_plane(Plane::Y, y, y_stride, width, height)?;
        check_plane(Plane::Uv, uv, uv_stride, 2 * cw, ch)?;
        let len = i420_len(width, height).ok_or(FrameError::TooLarge { width, height })?;
        let mut data = Vec::with_capacity(len);
        copy_plane(&mut data, y, y_stride, width, height);
        let chroma_len = cw as usize * ch as usize;
        data.resize(data.len() + 2 * chroma_len, 0);
        let (u, v) = data[width as usize * height as usize..].split_at_mut(chroma_len);
        let rows = uv.chunks(uv_stride as usize).take(ch as usize);
        for ((row, u_row), v_row) in
            rows.zip(u.chunks_mut(cw as usize)).zip(v.chunks_mut(cw as usize))
        {
            for ((pair, u), v) in row.chunks_exact(2).zip(u_row.iter_mut()).zip(v_row.iter_mut()) {
                *u = pair[0];
                *v = pair[1];
            }
        }
        Ok(VideoFrame { width, height, data, timestamp_us, rotation })
    }

    /// The fields are public, so a frame can be built inconsistent; consumers that index into
    /// the planes call this first.
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
