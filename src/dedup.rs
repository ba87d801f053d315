//! De-duplication by `(node_name, uuid)` over the last N flows seen (PRODUCT.md §3).
//!
//! A count, not a span of time: recordings and `since` back-fills are not in time order.

use std::collections::{HashSet, VecDeque};

/// The window of recently seen flow keys.
#[derive(Debug)]
pub struct Dedup {
    capacity: usize,
    seen: HashSet<(Box<str>, Box<str>)>,
    order: VecDeque<(Box<str>, Box<str>)>,
}

impl Dedup {
    /// A window of `capacity` flows (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            seen: HashSet::with_capacity(capacity.min(1 << 16)),
            order: VecDeque::with_capacity(capacity.min(1 << 16)),
        }
    }

    /// Records the flow and tells whether it was seen before. A flow without a uuid (older
    /// Hubble) is never a duplicate and is not recorded.
    pub fn is_duplicate(&mut self, node: &str, uuid: &str) -> bool {
        if uuid.is_empty() {
            return false;
        }
        let key = (Box::<str>::from(node), Box::<str>::from(uuid));
        if self.seen.contains(&key) {
            return true;
        }
        if self.order.len() >= self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        self.seen.insert(key.clone());
        self.order.push_back(key);
        false
    }

    /// How many keys the window holds.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether the window is empty.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_node_and_uuid_is_a_duplicate() {
        let mut d = Dedup::new(10);
        assert!(!d.is_duplicate("n1", "u1"));
        assert!(d.is_duplicate("n1", "u1"));
        assert!(!d.is_duplicate("n2", "u1"), "another node is another flow");
    }

    #[test]
    fn flows_without_uuid_are_never_duplicates() {
        let mut d = Dedup::new(10);
        assert!(!d.is_duplicate("n1", ""));
        assert!(!d.is_duplicate("n1", ""));
        assert!(d.is_empty());
    }

    #[test]
    fn window_is_bounded_and_forgets_the_oldest() {
        let mut d = Dedup::new(3);
        for u in ["a", "b", "c", "d"] {
            assert!(!d.is_duplicate("n", u));
        }
        assert_eq!(d.len(), 3);
        assert!(!d.is_duplicate("n", "a"), "a fell out of the window");
        assert!(d.is_duplicate("n", "d"));
    }
}
