//! A connection's outbound queue: what the hub has handed a connection to write, encoded,
//! and bounded in bytes. The hub pushes without ever waiting; the connection task pops and
//! writes. A client that stops reading therefore costs at most the bound (plus the one
//! message being written), never the whole stream meant for it.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

/// What a connection task is handed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outbound {
    /// An encoded message to write.
    Text(String),
    /// Write this encoded message (an `error`), then close with `code`.
    Close { last_word: String, code: u16 },
    /// Close with 1012, as a drain does: the client reconnects at once and restates its
    /// calls (a cluster node that may have missed messages for it asks this).
    Reconnect,
}

#[derive(Debug)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    ready: Notify,
    limit: usize,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Outbound>,
    /// Bytes of `Text` in `queue`.
    bytes: usize,
    /// No more pushes: a `Close` is (or was) at the end of the queue.
    closed: bool,
}

impl Outbox {
    pub(crate) fn new(limit: usize) -> Outbox {
        Outbox { state: Mutex::default(), ready: Notify::new(), limit }
    }

    /// Queues `text`, or hands it back if the queue is closed or the text would take it
    /// past its bound.
    pub(crate) fn push(&self, text: String) -> Result<(), String> {
        self.push_within(text, self.limit)
    }

    /// Queues `text` past the bound: for what a connection is handed the moment it signs in
    /// (`welcome`, what was held for the device, the answers to its restatements), which it
    /// has had no chance to read yet. The switchboard bounds that burst itself (to half the
    /// outbox's bound, plus the answers); what comes after must fit as usual.
    pub(crate) fn push_arrival(&self, text: String) -> Result<(), String> {
        self.push_within(text, usize::MAX)
    }

    fn push_within(&self, text: String, limit: usize) -> Result<(), String> {
        let mut state = self.lock();
        if state.closed || state.bytes.saturating_add(text.len()) > limit {
            return Err(text);
        }
        state.bytes += text.len();
        state.queue.push_back(Outbound::Text(text));
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    /// Closes the queue with a last word. With `keep_queued` what is queued is written
    /// first; without, it is taken out and returned (to be kept for the device's return).
    pub(crate) fn close(&self, last_word: String, code: u16, keep_queued: bool) -> Vec<String> {
        let mut state = self.lock();
        if state.closed {
            return Vec::new();
        }
        let unsent = if keep_queued { Vec::new() } else { take_texts(&mut state) };
        state.closed = true;
        // The last word is not counted against the bound: it is what says the bound was hit.
        state.queue.push_back(Outbound::Close { last_word, code });
        drop(state);
        self.ready.notify_one();
        unsent
    }

    /// Has the connection write what is queued, then close as a drain does (1012), so
    /// that the client reconnects and restates its calls.
    pub(crate) fn close_for_reconnect(&self) {
        let mut state = self.lock();
        if state.closed {
            return;
        }
        state.closed = true;
        state.queue.push_back(Outbound::Reconnect);
        drop(state);
        self.ready.notify_one();
    }

    /// The most bytes the queue holds.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// What was queued and never written, once the connection is gone.
    pub(crate) fn drain(&self) -> Vec<String> {
        let mut state = self.lock();
        state.closed = true;
        take_texts(&mut state)
    }

    /// The next thing to write; waits for one.
    pub(crate) async fn pop(&self) -> Outbound {
        loop {
            if let Some(next) = self.try_pop() {
                return next;
            }
            // A push between the unlock and here leaves a permit: no wake-up is lost.
            self.ready.notified().await;
        }
    }

    /// The next thing to write, if there is one now.
    pub(crate) fn try_pop(&self) -> Option<Outbound> {
        let mut state = self.lock();
        let next = state.queue.pop_front()?;
        if let Outbound::Text(text) = &next {
            state.bytes -= text.len();
        }
        Some(next)
    }

    #[cfg(test)]
    fn queued_bytes(&self) -> usize {
        self.lock().bytes
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding it; if something did, the queue is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn take_texts(state: &mut State) -> Vec<String> {
    state.bytes = 0;
    state
        .queue
        .drain(..)
        .filter_map(|o| match o {
            Outbound::Text(text) => Some(text),
            Outbound::Close { .. } | Outbound::Reconnect => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_queue_never_holds_more_than_its_bound() {
        let outbox = Outbox::new(100);
        assert_eq!(outbox.push("a".repeat(60)), Ok(()));
        assert_eq!(outbox.push("b".repeat(40)), Ok(()));
        assert_eq!(outbox.push("c".to_owned()), Err("c".to_owned()));
        assert_eq!(outbox.queued_bytes(), 100);
        assert_eq!(outbox.pop().await, Outbound::Text("a".repeat(60)));
        assert_eq!(outbox.push("d".repeat(60)), Ok(()));
        assert_eq!(outbox.queued_bytes(), 100);
    }

    #[tokio::test]
    async fn what_a_connection_gets_on_arrival_counts_but_is_not_refused() {
        let outbox = Outbox::new(10);
        assert_eq!(outbox.push_arrival("x".repeat(30)), Ok(()));
        assert_eq!(outbox.push("y".to_owned()), Err("y".to_owned()));
        assert_eq!(outbox.pop().await, Outbound::Text("x".repeat(30)));
        assert_eq!(outbox.push("y".to_owned()), Ok(()));
    }

    #[tokio::test]
    async fn closing_on_overflow_hands_back_the_queue_and_says_the_last_word() {
        let outbox = Outbox::new(100);
        outbox.push("one".into()).unwrap();
        outbox.push("two".into()).unwrap();
        assert_eq!(outbox.close("bye".into(), 1008, false), vec!["one", "two"]);
        assert_eq!(outbox.push("three".into()), Err("three".into()));
        assert_eq!(outbox.pop().await, Outbound::Close { last_word: "bye".into(), code: 1008 });
        assert_eq!(outbox.queued_bytes(), 0);
    }

    #[tokio::test]
    async fn a_replaced_connection_writes_what_it_has_before_its_last_word() {
        let outbox = Outbox::new(100);
        outbox.push("one".into()).unwrap();
        assert!(outbox.close("replaced".into(), 1000, true).is_empty());
        assert_eq!(outbox.pop().await, Outbound::Text("one".into()));
        assert!(matches!(outbox.pop().await, Outbound::Close { .. }));
        assert!(outbox.drain().is_empty());
    }
}
