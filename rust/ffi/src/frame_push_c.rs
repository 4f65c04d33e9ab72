//! Plain C entry points for Kotlin's camera pushes (kotlin/…/dev/duet/Frames.kt binds them
//! with a JNA direct mapping): `LocalStream::push_i420_at` and `push_nv12_at` as they are,
//! reached without UniFFI's per-call work in Kotlin.
//!
//! Why: a UniFFI method called from Kotlin is two FFI calls (one clones the object's handle,
//! the other consumes the clone), each with a `UniffiRustCallStatus` JNA Structure allocated
//! and synced by reflection; that kept a push's fixed cost at 7–8 µs at best, 20–28 µs at the
//! median (docs/benchmarks.md, "Cost of a push across the FFI"). Here every argument and the
//! result are plain integers and nothing is allocated unless the push fails: 0.7–0.9 µs.
//!
//! # Errors
//!
//! A push returns a status (`PUSH_*`). The error itself is what UniFFI would have put in the
//! call status (the lowered `CaptureError`, or a panic's message as a string, both through
//! `uniffi::rust_call`); it waits in a thread-local slot until `duet_push_error_take` hands it
//! over, so Frames.kt lifts it with the generated converters and throws exactly what the
//! UniFFI method throws.
//!
//! # The stream
//!
//! Frames.kt cannot borrow the Kotlin object's own handle: the generated class keeps it to
//! itself, and `close()` on another thread may free it mid-push, which only the class's private
//! call counter guards against.
//! So at a stream's first push Frames.kt trades a cloned UniFFI handle (taken inside the
//! generated `callWithHandle`) for a push handle: a `Weak` reference to the stream. Each
//! push upgrades it for the length of the call, so the stream cannot go away under the push;
//! once `close()` or the collector has released the last strong reference, the upgrade fails
//! and the push says `PUSH_CLOSED`. A push handle never keeps a closed stream (and its
//! synthetic camera, say) alive: it only keeps the reference count's allocation until Frames.kt
//! frees it, when the Kotlin holder of the push handle is collected.
//!
//! Swift keeps calling the UniFFI methods: it calls C directly with its call status on the
//! stack, so the same two calls cost it 0.2–0.3 µs a push.

use std::cell::Cell;
use std::mem::ManuallyDrop;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Weak};

use uniffi::{Handle, HandleAlloc, LowerReturn, RustBuffer, RustCallStatus, RustCallStatusCode};

use crate::errors::CaptureError;
use crate::streams::LocalStream;
use crate::UniFfiTag;

// What a push returns. Frames.kt has the same numbers.
/// Pushed, or dropped because video is disabled.
const PUSH_OK: i32 = 0;
/// A `CaptureError`: `duet_push_error_take` gives it lowered, as UniFFI's call status would.
const PUSH_CAPTURE_ERROR: i32 = 1;
/// A panic, caught here: `duet_push_error_take` gives its message as a lowered string.
const PUSH_PANIC: i32 = 2;
/// The stream's last strong reference is gone (closed in Kotlin, or collected).
const PUSH_CLOSED: i32 = 3;

thread_local! {
    /// The error of this thread's last failed push, until taken.
    static PUSH_ERROR: Cell<Option<RustBuffer>> = const { Cell::new(None) };
}

/// Runs a push on the stream behind `push_handle` the way UniFFI's scaffolding runs a method
/// (`uniffi::rust_call`: the error lowered, a panic caught) and turns the outcome into a status.
///
/// # Safety
///
/// `push_handle` comes from `duet_local_stream_push_handle` and has not been freed.
unsafe fn run_push(
    push_handle: u64,
    push: impl FnOnce(&LocalStream) -> Result<(), CaptureError>,
) -> i32 {
    // SAFETY: the caller's contract: a live `Weak::into_raw`. ManuallyDrop: the reference is
    // borrowed; only `duet_local_stream_push_handle_free` gives it up.
    let weak = ManuallyDrop::new(unsafe { Weak::from_raw(push_handle as *const LocalStream) });
    let Some(stream) = weak.upgrade() else {
        return PUSH_CLOSED;
    };
    let mut status = RustCallStatus::default();
    // AssertUnwindSafe: as for UniFFI's own methods, a panic leaves the stream as it is (one
    // frame fewer) and is reported; nothing here is half-updated by it.
    uniffi::rust_call(
        &mut status,
        AssertUnwindSafe(|| {
            <Result<(), CaptureError> as LowerReturn<UniFfiTag>>::lower_return(push(&stream))
        }),
    );
    let code = match status.code {
        RustCallStatusCode::Success => return PUSH_OK,
        RustCallStatusCode::Error => PUSH_CAPTURE_ERROR,
        // UnexpectedError; Cancelled is for futures, which a push is not.
        _ => PUSH_PANIC,
    };
    if let Some(untaken) = PUSH_ERROR.replace(Some(ManuallyDrop::into_inner(status.error_buf))) {
        untaken.destroy();
    }
    code
}

/// Trades a UniFFI handle of a `LocalStream` for a push handle (module docs), which the other
/// `duet_local_stream_push_*` functions take.
///
/// # Safety
///
/// `stream` is a handle UniFFI cloned for the caller to give away (what the generated
/// `callWithHandle` passes its block): this consumes it, as a UniFFI method would.
#[no_mangle]
unsafe extern "C" fn duet_local_stream_push_handle(stream: u64) -> u64 {
    // SAFETY: the caller's contract; the same conversion as UniFFI's scaffolding for `self`.
    let stream = unsafe {
        <LocalStream as HandleAlloc<UniFfiTag>>::consume_handle(Handle::from_raw_unchecked(stream))
    };
    Weak::into_raw(Arc::downgrade(&stream)) as u64
}

/// Frees a push handle.
///
/// # Safety
///
/// `push_handle` comes from `duet_local_stream_push_handle`, is freed once, and no push that
/// uses it is under way or follows.
#[no_mangle]
unsafe extern "C" fn duet_local_stream_push_handle_free(push_handle: u64) {
    // SAFETY: the caller's contract: the `Weak::into_raw` this gives up.
    drop(unsafe { Weak::from_raw(push_handle as *const LocalStream) });
}

/// `LocalStream::push_i420_at` on the stream behind `push_handle`; returns a `PUSH_*` status.
///
/// # Safety
///
/// `push_handle` comes from `duet_local_stream_push_handle` and is not freed before this
/// returns; the planes follow `push_i420_at`'s contract (frame_push.rs).
#[no_mangle]
#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn duet_local_stream_push_i420(
    push_handle: u64,
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
) -> i32 {
    // SAFETY: the caller's contract.
    unsafe {
        run_push(push_handle, |stream| {
            stream.push_i420_at(
                width,
                height,
                y_address,
                y_len,
                y_stride,
                u_address,
                u_len,
                u_stride,
                v_address,
                v_len,
                v_stride,
                timestamp_us,
                rotation_degrees,
            )
        })
    }
}

/// `LocalStream::push_nv12_at` on the stream behind `push_handle`; returns a `PUSH_*` status.
///
/// # Safety
///
/// As for `duet_local_stream_push_i420`.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn duet_local_stream_push_nv12(
    push_handle: u64,
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
) -> i32 {
    // SAFETY: the caller's contract.
    unsafe {
        run_push(push_handle, |stream| {
            stream.push_nv12_at(
                width,
                height,
                y_address,
                y_len,
                y_stride,
                uv_address,
                uv_len,
                uv_stride,
                timestamp_us,
                rotation_degrees,
            )
        })
    }
}

/// The error of this thread's last failed push (a status other than `PUSH_OK` and
/// `PUSH_CLOSED`), lowered as UniFFI lowers it; the caller frees it (the generated lifts do).
/// An empty buffer when there is none.
#[no_mangle]
extern "C" fn duet_push_error_take() -> RustBuffer {
    PUSH_ERROR.take().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{StreamConstraints, VideoConstraints};
    use uniffi::Lift;

    fn stream() -> Arc<LocalStream> {
        LocalStream::new(StreamConstraints {
            audio: false,
            video: Some(VideoConstraints {
                width: 4,
                height: 2,
                fps: 30,
                max_bitrate_bps: 100_000,
            }),
        })
    }

    /// A push handle as Frames.kt makes one: from a clone of the stream's UniFFI handle.
    fn push_handle(stream: &Arc<LocalStream>) -> u64 {
        let clone = <LocalStream as HandleAlloc<UniFfiTag>>::new_handle(Arc::clone(stream));
        // SAFETY: a handle made for the call to consume.
        unsafe { duet_local_stream_push_handle(clone.as_raw()) }
    }

    fn at(bytes: &[u8]) -> (u64, u64) {
        (bytes.as_ptr() as usize as u64, bytes.len() as u64)
    }

    fn taken_error() -> CaptureError {
        <CaptureError as Lift<UniFfiTag>>::try_lift(duet_push_error_take()).unwrap()
    }

    #[test]
    fn pushes_report_errors_as_uniffi_would() {
        let s = stream();
        let handle = push_handle(&s);
        // The push handle holds no strong reference: only `s` does.
        assert_eq!(Arc::strong_count(&s), 1);
        let y = [16u8; 8 * 2];
        let uv = [128u8; 4];
        let ((ya, yl), (ca, cl)) = (at(&y), at(&uv));
        // SAFETY (the pushes below): `handle` is live; the planes name the arrays above.
        let i420 = |y_len, u_address, rotation| unsafe {
            duet_local_stream_push_i420(
                handle, 4, 2, ya, y_len, 8, u_address, cl, 4, ca, cl, 4, 7, rotation,
            )
        };
        assert_eq!(i420(yl, ca, 90), PUSH_OK);
        // SAFETY: as above.
        assert_eq!(
            unsafe { duet_local_stream_push_nv12(handle, 4, 2, ya, yl, 8, ca, cl, 4, 7, 0) },
            PUSH_OK
        );
        assert_eq!(Arc::strong_count(&s), 1);

        assert_eq!(i420(5, ca, 0), PUSH_CAPTURE_ERROR);
        match taken_error() {
            CaptureError::InvalidFrame { reason } => {
                assert!(reason.contains("Y plane"), "{reason}")
            }
            other => panic!("a short Y plane: {other:?}"),
        }
        // Bytes needed at a null address: refused, never read.
        assert_eq!(i420(yl, 0, 0), PUSH_CAPTURE_ERROR);
        match taken_error() {
            CaptureError::InvalidFrame { reason } => {
                assert!(reason.contains("U plane has a null address"), "{reason}")
            }
            other => panic!("a null U plane: {other:?}"),
        }
        assert_eq!(i420(yl, ca, 45), PUSH_CAPTURE_ERROR);
        // An error not taken gives way to the next one.
        // SAFETY: as above.
        assert_eq!(
            unsafe { duet_local_stream_push_nv12(handle, 4, 2, ya, yl, 2, ca, cl, 4, 7, 0) },
            PUSH_CAPTURE_ERROR
        );
        match taken_error() {
            CaptureError::InvalidFrame { reason } => assert!(!reason.contains("45"), "{reason}"),
            other => panic!("a narrow stride: {other:?}"),
        }
        let none = duet_push_error_take();
        assert_eq!(none.len(), 0);
        none.destroy();

        // The stream released (Kotlin's close()): the push handle no longer reaches it.
        drop(s);
        assert_eq!(i420(yl, ca, 0), PUSH_CLOSED);
        // SAFETY: made above, freed once, no push follows.
        unsafe { duet_local_stream_push_handle_free(handle) };
    }

    #[test]
    fn a_panic_is_caught_and_its_message_kept() {
        let s = stream();
        let handle = push_handle(&s);
        // SAFETY: `handle` is live.
        let status = unsafe { run_push(handle, |_| panic!("the push panicked")) };
        assert_eq!(status, PUSH_PANIC);
        let message = <String as Lift<UniFfiTag>>::try_lift(duet_push_error_take()).unwrap();
        assert_eq!(message, "the push panicked");
        // The stream is untouched and still pushes.
        // SAFETY: as above.
        assert_eq!(unsafe { run_push(handle, |_| Ok(())) }, PUSH_OK);
        // SAFETY: made above, freed once, no push follows.
        unsafe { duet_local_stream_push_handle_free(handle) };
    }
}
