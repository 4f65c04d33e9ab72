//! Camera frames pushed by address: `LocalStream::push_i420_at` and `push_nv12_at`.
//!
//! Why addresses, not `&[u8]`: every argument UniFFI lowers through a structure (a borrowed
//! byte slice is a `ForeignBytes`, an enum a `RustBuffer` that costs an allocation call of
//! its own) is a JNA `Structure` allocated, written and read back on each call in Kotlin. For
//! a 720p push that was a fixed 20–50 µs before any pixel moved (docs/benchmarks.md,
//! "Cost of a push across the FFI"). Here every argument is a plain integer, so the only
//! structure per call is UniFFI's call status.
//!
//! Apps do not call these directly: the Swift `LocalStream.pushI420(…y: Data…)` and the
//! Kotlin `LocalStream.pushI420(…y: ByteBuffer…)` conveniences (swift/Sources/Duet/Frames.swift,
//! kotlin/…/dev/duet/Frames.kt) take the planes as `Data` / direct `ByteBuffer`s, keep them
//! alive and pinned for the call, and pass their addresses. Kotlin's reach these methods
//! through plain C entry points (frame_push_c.rs), without UniFFI's call status or its clone
//! of the object's handle.
//!
//! # The contract
//!
//! Each `(address, len)` pair must name `len` readable bytes that stay valid and unchanged
//! until the call returns; `len` 0 may come with any address (it reads as no bytes). The
//! bytes are only read, and only during the call: the engine copies them once into its own
//! packed I420 frame before returning. Sizes, strides and lengths are checked as for any
//! push (`InvalidFrame`), but an address that does not point at `len` bytes cannot be checked
//! here: that is the shims' job.

use duet_core as core;

use crate::errors::CaptureError;
use crate::streams::LocalStream;

fn invalid(reason: String) -> CaptureError {
    CaptureError::InvalidFrame { reason }
}

/// The bytes at `address`, borrowed for the call. `name` names the plane in errors.
pub(crate) fn plane<'a>(name: &str, address: u64, len: u64) -> Result<&'a [u8], CaptureError> {
    if len == 0 {
        return Ok(&[]);
    }
    let start = usize::try_from(address)
        .map_err(|_| invalid(format!("{name} plane address {address:#x} is out of range")))?;
    let len = usize::try_from(len)
        .ok()
        .filter(|&len| isize::try_from(len).is_ok() && start.checked_add(len).is_some())
        .ok_or_else(|| invalid(format!("{name} plane of {len} bytes does not fit in memory")))?;
    if start == 0 {
        return Err(invalid(format!("{name} plane has a null address and {len} bytes")));
    }
    // SAFETY: the caller's contract (module docs, and the method docs UniFFI copies into the
    // bindings): `len` readable bytes at `address`, valid and unchanged until the call
    // returns. The slice never outlives the call: every use below copies out of it.
    Ok(unsafe { std::slice::from_raw_parts(start as *const u8, len) })
}

/// The rotation as the app's camera reports it, in degrees clockwise.
fn rotation(degrees: u32) -> Result<core::Rotation, CaptureError> {
    match degrees {
        0 => Ok(core::Rotation::Deg0),
        90 => Ok(core::Rotation::Deg90),
        180 => Ok(core::Rotation::Deg180),
        270 => Ok(core::Rotation::Deg270),
        other => Err(invalid(format!("rotation {other}° is not 0, 90, 180 or 270"))),
    }
}

#[uniffi::export]
impl LocalStream {
    /// Pushes an I420 camera frame whose planes lie at the given addresses: `y_len` bytes at
    /// `y_address`, and so on. Prefer the Swift and Kotlin `pushI420` conveniences, which take
    /// `Data` / direct `ByteBuffer` planes and call this.
    ///
    /// Each plane's bytes must stay valid and unchanged until this returns; they are copied
    /// once into a packed frame and never read afterwards. Strides may include row padding.
    /// `rotation_degrees` is 0, 90, 180 or 270. Frames pushed while video is disabled are
    /// dropped.
    ///
    /// # Errors
    ///
    /// `InvalidFrame` when the sizes, strides, plane lengths or rotation do not describe a
    /// picture.
    #[allow(clippy::too_many_arguments)]
    pub fn push_i420_at(
        &self,
        width: u32,
        height: u32,
        y_address: u64,
        y_len: u64,
        y_stride: u32,
        u_address: u64,
        u_len: u64,
        u_stride: u32,
        v_address: u64,
        v_len: u64,
        v_stride: u32,
        timestamp_us: u64,
        rotation_degrees: u32,
    ) -> Result<(), CaptureError> {
        let rotation = rotation(rotation_degrees)?;
        let y = plane("Y", y_address, y_len)?;
        let u = plane("U", u_address, u_len)?;
        let v = plane("V", v_address, v_len)?;
        Ok(self.core_ref().push_i420(
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
        )?)
    }

    /// Pushes an NV12 camera frame (Y plane, then interleaved U,V) whose planes lie at the
    /// given addresses, the usual layout of iOS and Android cameras. Prefer the Swift and
    /// Kotlin `pushNv12` conveniences. The contract is `push_i420_at`'s.
    ///
    /// # Errors
    ///
    /// `InvalidFrame` when the sizes, strides, plane lengths or rotation do not describe a
    /// picture.
    #[allow(clippy::too_many_arguments)]
    pub fn push_nv12_at(
        &self,
        width: u32,
        height: u32,
        y_address: u64,
        y_len: u64,
        y_stride: u32,
        uv_address: u64,
        uv_len: u64,
        uv_stride: u32,
        timestamp_us: u64,
        rotation_degrees: u32,
    ) -> Result<(), CaptureError> {
        let rotation = rotation(rotation_degrees)?;
        let y = plane("Y", y_address, y_len)?;
        let uv = plane("UV", uv_address, uv_len)?;
        Ok(self.core_ref().push_nv12(
            width,
            height,
            y,
            y_stride,
            uv,
            uv_stride,
            timestamp_us,
            rotation,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planes_borrow_what_the_address_names() {
        let bytes = [1u8, 2, 3];
        let address = bytes.as_ptr() as usize as u64;
        assert_eq!(plane("Y", address, 3).unwrap(), &bytes);
        assert_eq!(plane("Y", 0, 0).unwrap(), &[] as &[u8]);
        assert_eq!(plane("Y", 12345, 0).unwrap(), &[] as &[u8]);
    }

    #[test]
    fn impossible_planes_are_errors_not_reads() {
        let err = plane("U", 0, 10).unwrap_err().to_string();
        assert!(err.contains("U plane has a null address"), "{err}");
        let err = plane("V", u64::MAX - 4, 10).unwrap_err().to_string();
        assert!(err.contains("does not fit"), "{err}");
        let err = plane("Y", 16, u64::MAX).unwrap_err().to_string();
        assert!(err.contains("does not fit"), "{err}");
        let err = rotation(45).unwrap_err().to_string();
        assert!(err.contains("rotation 45°"), "{err}");
        assert_eq!(rotation(270).unwrap(), core::Rotation::Deg270);
    }
}
