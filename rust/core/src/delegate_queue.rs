//! One ordered queue of delegate calls per VideoCall, drained on a thread of its own.
//!
//! Delegates are app code (Swift, Kotlin): they may block, re-enter the API, or take their
//! time. Running them on a dedicated thread keeps them off the caller's thread and off the
//! runtime, in the order the engine produced the events, with no engine lock held.

use std::sync::mpsc;
use std::thread;

type Job = Box<dyn FnOnce() + Send>;

#[derive(Clone)]
pub(crate) struct DelegateQueue {
    tx: mpsc::Sender<Job>,
}

impl DelegateQueue {
    /// Starts the delivery thread; it ends when the last handle on the queue is dropped.
    pub(crate) fn start(name: &str) -> DelegateQueue {
        let (tx, rx) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                for job in rx {
                    // A panicking delegate must not take every later event down with it.
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                        tracing::error!("a delegate panicked; later events are still delivered");
                    }
                }
            })
            .expect("spawning the event thread");
        DelegateQueue { tx }
    }

    pub(crate) fn push(&self, job: impl FnOnce() + Send + 'static) {
        // Fails only once the thread is gone, i.e. during shutdown, when nobody listens.
        let _ = self.tx.send(Box::new(job));
    }
}
