//! The library's own tokio runtime.
//!
//! The foreign side polls our futures on its own executor (Swift's cooperative pool,
//! Kotlin's coroutine dispatchers), which gives them no tokio context; UniFFI's
//! `async_runtime = "tokio"` gives only a current-thread one. duet-core spawns long-lived
//! tasks (the signaling driver, peer connections, encoders), so every entry that may spawn
//! runs on this runtime (a client's, `duet_core::runtime`: a worker thread of its own),
//! created on first use and kept for the process's life.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::Runtime;

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

pub(crate) fn runtime() -> &'static Runtime {
    RUNTIME.get_or_init(|| {
        duet_core::runtime::client_runtime("duet-rt")
            .build()
            .expect("building Duet's tokio runtime")
    })
}

/// Runs `future` on the library's runtime and waits for it from whatever executor polls
/// the returned future.
pub(crate) async fn run<F>(future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match runtime().spawn(future).await {
        Ok(out) => out,
        // A panic in our task is a bug; pass it on, and UniFFI reports it as an internal
        // error. The runtime is never shut down, so the task cannot have been cancelled.
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
