//! The tokio runtime a client's engine is built for.
//!
//! One worker thread: a client's async work (signaling, one call's webrtc-rs driver, the
//! tasks that move frames and packets) is light, and its codec work runs on the media
//! pipelines' own threads, so a second worker adds nothing but hand-offs between the two.
//! Waking the other worker for each packet or frame that arrived cost a 720p call 3% more
//! CPU on a 2-core machine (docs/benchmarks.md), and a phone's runtime would have a worker
//! per core. Nothing that can take long runs on it: codecs (platform encoders take tens of
//! milliseconds to make) are made on the pipelines' threads.

use tokio::runtime::Builder;

/// Worker threads of a client's runtime.
pub const CLIENT_WORKERS: usize = 1;

/// A runtime builder for `VideoCall`s, with its threads named `name`: the library's own
/// runtime (duet-ffi) and the command line's client commands use it.
pub fn client_runtime(name: &str) -> Builder {
    let mut builder = Builder::new_multi_thread();
    builder.worker_threads(CLIENT_WORKERS).thread_name(name).enable_all();
    builder
}
