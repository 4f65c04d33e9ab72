//! Spawned tasks that end with their owner.

use std::future::Future;

use tokio::task::JoinHandle;

/// A spawned task that is aborted when this handle is dropped, so a task can never outlive
/// the call (or the task) that started it.
pub(crate) struct TaskHandle(JoinHandle<()>);

impl TaskHandle {
    pub(crate) fn spawn(future: impl Future<Output = ()> + Send + 'static) -> TaskHandle {
        TaskHandle(tokio::spawn(future))
    }
}

impl Drop for TaskHandle {
    fn drop(&mut self) {
        self.0.abort();
    }
}
