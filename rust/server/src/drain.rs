//! Graceful drain, for a rolling restart: the server stops accepting, tells every client
//! to reconnect elsewhere, and waits (up to a bound) for them to go. Calls survive it as
//! they survive any reconnect: media never passes through the server, and the clients
//! restate their calls to whichever server they reach next (docs/protocol.md, Draining).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

/// The close a draining server sends every WebSocket (1012, "Service Restart", which
/// proxies and browsers pass through as it is). Duet's clients reconnect at once on it,
/// without backoff, rather than treating it as a failure.
pub(crate) use duet_protocol::CLOSE_DRAINING;
/// The close frame's reason text; clients go by the code, this is for people reading logs.
pub(crate) const DRAINING_REASON: &str = "draining";

/// Where a server is in its life, as every connection task watches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunState {
    Running,
    /// Connections close with `CLOSE_DRAINING`; new ones are not accepted.
    Draining,
    /// Connections are dropped as in a crash, without a close frame.
    Stopped,
}

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainReport {
    /// Connections still open when the bound ran out (0: every client left in time).
    pub left_behind: usize,
    /// How long the drain took.
    pub elapsed: Duration,
}

/// The WebSocket connections open now, and a way to wait until there are none.
#[derive(Debug, Default)]
pub(crate) struct OpenConnections {
    count: AtomicUsize,
    none_left: Notify,
}

/// One open connection: dropping it (when its task ends) counts it out.
#[derive(Debug)]
pub(crate) struct Open(Arc<OpenConnections>);

impl OpenConnections {
    pub(crate) fn open(self: &Arc<Self>) -> Open {
        self.count.fetch_add(1, Ordering::Relaxed);
        Open(Arc::clone(self))
    }

    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Waits until no connection is open, or `bound` has passed; returns how many are.
    pub(crate) async fn wait_until_none(&self, bound: Duration) -> usize {
        let wait = async {
            loop {
                // Registered before the count is read, so a drop in between is not missed.
                let notified = self.none_left.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.count() == 0 {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(bound, wait).await;
        self.count()
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.0.none_left.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_wait_ends_when_the_last_connection_goes() {
        let open = Arc::new(OpenConnections::default());
        let (a, b) = (open.open(), open.open());
        let waiter = tokio::spawn({
            let open = Arc::clone(&open);
            async move { open.wait_until_none(Duration::from_secs(10)).await }
        });
        drop(a);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "one connection is still open");
        drop(b);
        assert_eq!(waiter.await.unwrap(), 0);
    }

    #[tokio::test]
    async fn the_wait_is_bounded() {
        let open = Arc::new(OpenConnections::default());
        let _stuck = open.open();
        assert_eq!(open.wait_until_none(Duration::from_millis(30)).await, 1);
    }
}
