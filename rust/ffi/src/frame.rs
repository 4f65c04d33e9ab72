//! `VideoFrame`: a decoded remote frame handed to the app's `VideoSink`, without moving its
//! bytes through UniFFI's buffers (a 720p frame as `Vec<u8>` costs about 4.5 ms that way;
//! see shared/FINDINGS.md, "Cost of a video frame").
//!
//! # Reading the bytes: the lifetime rule
//!
//! `data_address()` is the address of the frame's tightly packed I420 bytes, `data_len()`
//! bytes long. **The address is valid for as long as the `VideoFrame` object is alive** —
//! in Swift while a reference to it is held, in Kotlin until `close()`/`destroy()` is called
//! on it (use `frame.use { ... }`) or it is collected. The bytes never change while they
//! are valid, so any thread may read them. Copy what you keep (into a `CVPixelBuffer`, a
//! texture, a `ByteBuffer`) before you let the object go; never hold on to the address
//! itself.
//!
//! Swift: `UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: UInt(frame.dataAddress())), count: Int(frame.dataLen()))`
//! inside a scope that keeps `frame` alive (`withExtendedLifetime(frame) { ... }`).
//! Kotlin (JNA): `Pointer(frame.dataAddress().toLong()).getByteBuffer(0, frame.dataLen().toLong())`
//! inside `frame.use { ... }`.
//!
//! # Copies per frame
//!
//! - Capture (app → engine): the app's camera planes are read in place during
//!   `LocalStream.push_i420_at`/`push_nv12_at` (addresses of the app's memory, wrapped by the
//!   Swift and Kotlin `pushI420`/`pushNv12`; see frame_push.rs) and copied once into a packed
//!   I420 frame in Rust (which also drops row padding or de-interleaves NV12). One copy in
//!   all; the encoder reads that frame.
//! - Render (engine → app): the decoder writes its picture once into the frame's own buffer
//!   (its internal buffers are reused by the next decode, so that copy is the one that cannot
//!   go); the `VideoFrame` object shares that buffer (an `Arc`, no copy in Rust). A renderer
//!   that reads the bytes in place while it holds the object, as the Kotlin `VideoRenderer`
//!   does (it keeps the newest frame until drawn, then closes it), makes that the only copy.
//!   An app that copies out of `data_address()` adds a second.

use std::sync::Arc;

use crate::records::Rotation;

/// A decoded video frame in tightly packed I420: the Y plane (`width` x `height`), then U,
/// then V (each `chroma_width` x `chroma_height`, i.e. half the size rounded up).
///
/// Read its bytes at `data_address()`: the address is valid while this object is alive.
/// Copy what you keep.
#[derive(uniffi::Object)]
pub struct VideoFrame {
    frame: Arc<duet_core::VideoFrame>,
}

impl VideoFrame {
    pub(crate) fn new(frame: Arc<duet_core::VideoFrame>) -> Arc<Self> {
        Arc::new(VideoFrame { frame })
    }

    pub(crate) fn core_ref(&self) -> &duet_core::VideoFrame {
        &self.frame
    }

    /// The engine's frame, copied only when someone else (the app) still holds it.
    pub(crate) fn into_core(self: Arc<Self>) -> duet_core::VideoFrame {
        match Arc::try_unwrap(self) {
            Ok(owned) => Arc::unwrap_or_clone(owned.frame),
            Err(shared) => (*shared.frame).clone(),
        }
    }

    fn luma_len(&self) -> u64 {
        u64::from(self.frame.width) * u64::from(self.frame.height)
    }

    fn chroma_len(&self) -> u64 {
        u64::from(self.frame.chroma_width()) * u64::from(self.frame.chroma_height())
    }
}

#[uniffi::export]
impl VideoFrame {
    pub fn width(&self) -> u32 {
        self.frame.width
    }

    pub fn height(&self) -> u32 {
        self.frame.height
    }

    /// The capture time the sender stamped, in microseconds.
    pub fn timestamp_us(&self) -> u64 {
        self.frame.timestamp_us
    }

    /// The rotation to apply to show the frame upright.
    pub fn rotation(&self) -> Rotation {
        self.frame.rotation.into()
    }

    /// Where the frame's bytes start. Valid while this object is alive; see `data_len`.
    pub fn data_address(&self) -> u64 {
        self.frame.data.as_ptr() as usize as u64
    }

    /// How many bytes start at `data_address`: `y_len + 2 * chroma_len`.
    pub fn data_len(&self) -> u64 {
        self.frame.data.len() as u64
    }

    /// Width of the U and V planes: `(width + 1) / 2`.
    pub fn chroma_width(&self) -> u32 {
        self.frame.chroma_width()
    }

    /// Height of the U and V planes: `(height + 1) / 2`.
    pub fn chroma_height(&self) -> u32 {
        self.frame.chroma_height()
    }

    /// Offset of the Y plane from `data_address` (always 0).
    pub fn y_offset(&self) -> u64 {
        0
    }

    /// Bytes per Y row: `width` (the planes are packed, with no padding).
    pub fn y_stride(&self) -> u32 {
        self.frame.width
    }

    /// Offset of the U plane from `data_address`.
    pub fn u_offset(&self) -> u64 {
        self.luma_len()
    }

    /// Bytes per U row: `chroma_width`.
    pub fn u_stride(&self) -> u32 {
        self.frame.chroma_width()
    }

    /// Offset of the V plane from `data_address`.
    pub fn v_offset(&self) -> u64 {
        self.luma_len() + self.chroma_len()
    }

    /// Bytes per V row: `chroma_width`.
    pub fn v_stride(&self) -> u32 {
        self.frame.chroma_width()
    }
}
