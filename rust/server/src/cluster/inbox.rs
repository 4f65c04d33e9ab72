//! The node's one writer to the leader's inbox: what its devices say, published in the order
//! they said it, as many messages per Redis round trip as are waiting. Awaiting each
//! `PUBLISH` before the next bounded a node's messages per second by the round trip.

use redis::aio::ConnectionManager;
use tokio::sync::mpsc;

use super::{COMMAND_TIMEOUT, INBOX};

/// Messages waiting for Redis beyond this hold up the relay (and so the node's devices)
/// instead of growing the queue.
const QUEUE: usize = 1024;
/// The most messages one round trip carries.
const BATCH: usize = 64;

/// Where the relay hands messages for the leader.
pub(super) type InboxWriter = mpsc::Sender<String>;

/// The writer, and the task that publishes what it is given until every writer is dropped.
pub(super) fn writer(
    redis: ConnectionManager,
) -> (InboxWriter, impl std::future::Future<Output = ()>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    (tx, publish_all(redis, rx))
}

async fn publish_all(mut redis: ConnectionManager, mut queue: mpsc::Receiver<String>) {
    let mut batch = Vec::with_capacity(BATCH);
    while queue.recv_many(&mut batch, BATCH).await > 0 {
        let mut pipe = redis::pipe();
        for text in batch.drain(..) {
            pipe.publish(INBOX, text);
        }
        let sent = tokio::time::timeout(COMMAND_TIMEOUT, pipe.query_async::<Vec<i64>>(&mut redis));
        match sent.await {
            Ok(Ok(heard)) if heard.contains(&0) => {
                tracing::debug!("no leader heard a message: its clients will restate");
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!("cannot publish to the leader: {e}"),
            Err(_) => tracing::warn!("publishing to the leader timed out"),
        }
    }
}
