//! What the switchboard holds for someone who is not there yet: messages for an absent
//! device, a ringing call's signals for late devices, signals for a party that has not
//! restated its call. Each is bounded in count and in bytes (as encoded), so that nobody
//! can make the server hold more than `max_bytes` per queue, whatever the messages' sizes.

use std::collections::VecDeque;

use serde::Serialize;

/// The bounds of one queue.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bounds {
    pub(super) items: usize,
    pub(super) bytes: usize,
}

#[derive(Debug)]
pub(super) struct Held<T> {
    items: VecDeque<(T, usize)>,
    bytes: usize,
}

impl<T> Default for Held<T> {
    fn default() -> Self {
        Held { items: VecDeque::new(), bytes: 0 }
    }
}

impl<T: Serialize> Held<T> {
    /// Appends `item` if it fits; a full queue keeps what it has (the oldest).
    pub(super) fn push(&mut self, item: T, bounds: Bounds) -> bool {
        let size = encoded_len(&item);
        if self.items.len() >= bounds.items || self.bytes.saturating_add(size) > bounds.bytes {
            return false;
        }
        self.bytes += size;
        self.items.push_back((item, size));
        true
    }

    /// Puts `items` (older than everything held) in front, then drops the newest until the
    /// queue is within its bounds.
    pub(super) fn prepend(&mut self, items: Vec<T>, bounds: Bounds) {
        for item in items.into_iter().rev() {
            let size = encoded_len(&item);
            self.bytes += size;
            self.items.push_front((item, size));
        }
        while self.items.len() > bounds.items || self.bytes > bounds.bytes {
            let Some((_, size)) = self.items.pop_back() else { break };
            self.bytes -= size;
        }
    }

    pub(super) fn take(&mut self) -> Vec<T> {
        self.bytes = 0;
        self.items.drain(..).map(|(item, _)| item).collect()
    }

    pub(super) fn clear(&mut self) {
        self.items.clear();
        self.bytes = 0;
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &T> {
        self.items.iter().map(|(item, _)| item)
    }
}

fn encoded_len<T: Serialize>(item: &T) -> usize {
    serde_json::to_string(item).map_or(0, |s| s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: Bounds = Bounds { items: 3, bytes: 20 };

    #[test]
    fn a_queue_stops_at_its_count_or_its_bytes_and_keeps_the_oldest() {
        let mut held = Held::default();
        assert!(held.push("aaaa".to_owned(), BOUNDS)); // 6 bytes encoded
        assert!(held.push("bbbb".to_owned(), BOUNDS));
        assert!(!held.push("c".repeat(10), BOUNDS), "over 20 bytes");
        assert!(held.push("d".to_owned(), BOUNDS));
        assert!(!held.push("e".to_owned(), BOUNDS), "over 3 items");
        assert_eq!(held.take(), ["aaaa", "bbbb", "d"]);
    }

    #[test]
    fn prepended_items_go_first_and_the_newest_give_way() {
        let mut held = Held::default();
        held.push("new".to_owned(), BOUNDS);
        held.prepend(vec!["old1".to_owned(), "old2".to_owned(), "old3".to_owned()], BOUNDS);
        assert_eq!(held.take(), ["old1", "old2", "old3"]);
    }
}
