//! De-duplication by `(node_name, uuid)` over the last N flows seen (PRODUCT.md §3).
//!
//! A count, not a span of time: recordings and `since` back-fills are not in time order.
//! Keys are fixed-size and need no allocation: a canonical uuid is its 128 bits, anything else
//! a 128-bit hash of its text; the node is a 64-bit hash of its name (seeded per process),
//! spread over 128 bits and XORed into the uuid's. Two different flows would have to agree on
//! the uuid and collide on the node's hash, or differ in their uuids by exactly the XOR of
//! their nodes' spread hashes, to be mistaken for each other.
//!
//! The window is one ring of 16-byte keys and a [`PosTable`] of 4-byte positions into it, at
//! most half full, both allocated once for the whole window (up to a million flows): about 27
//! bytes a flow.

use std::hash::{BuildHasher, Hash, Hasher};

use crate::postable::PosTable;

/// The key of one flow: its uuid's 128 bits XOR its node's spread hash.
type Key = u128;

/// The window of recently seen flow keys.
#[derive(Debug)]
pub struct Dedup {
    capacity: usize,
    /// The positions in `order` of the keys held, by their seeded hash.
    seen: PosTable,
    hasher: foldhash::fast::RandomState,
    nodes: foldhash::fast::RandomState,
    /// The keys in arrival order, as a ring once full: `next` is the oldest.
    order: Vec<Key>,
    next: usize,
}

/// A node name's 64-bit hash spread over 128 bits (the high half is the hash itself, so two
/// nodes spread alike only when their hashes collide).
fn spread(h: u64) -> u128 {
    u128::from(h) << 64 | u128::from(h.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29))
}

fn hash_str(s: &str, salt: u8) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    salt.hash(&mut h);
    s.hash(&mut h);
    h.finish()
}

/// The 128 bits of a canonical `8-4-4-4-12` hex uuid, else a 128-bit hash of the text.
pub fn uuid_bits(uuid: &str) -> u128 {
    let b = uuid.as_bytes();
    if b.len() == 36 && [8, 13, 18, 23].iter().all(|&i| b[i] == b'-') {
        // Without a branch per digit: any byte that is not a hex digit sets a high bit.
        let mut v: u128 = 0;
        let mut bad = 0u8;
        for (i, &c) in b.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                continue;
            }
            let d = HEX[usize::from(c)];
            bad |= d;
            v = v << 4 | u128::from(d & 0xf);
        }
        if bad & 0xf0 == 0 {
            return v;
        }
    }
    u128::from(hash_str(uuid, 1)) << 64 | u128::from(hash_str(uuid, 2))
}

/// The value of each hex digit; 0xff for every other byte.
static HEX: [u8; 256] = {
    let mut t = [0xff_u8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// The seeded hash of the key at a position of the ring.
fn hash_at(hasher: &foldhash::fast::RandomState, order: &[Key], p: u32) -> u64 {
    order.get(p as usize).map_or(0, |k| hasher.hash_one(k))
}

/// Windows up to this many flows are allocated whole when made.
const PRESIZE: usize = 1 << 20;

impl Dedup {
    /// A window of `capacity` flows (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            // Sized once up to a million flows: growing would hold the old and the new table
            // at the same time (a larger window grows as it fills).
            seen: PosTable::with_room(capacity.min(PRESIZE)),
            hasher: Default::default(),
            nodes: Default::default(),
            order: Vec::with_capacity(capacity.min(PRESIZE)),
            next: 0,
        }
    }

    /// Records the flow and tells whether it was seen before. A flow without a uuid (older
    /// Hubble) is never a duplicate and is not recorded.
    pub fn is_duplicate(&mut self, node: &str, uuid: &str) -> bool {
        if uuid.is_empty() {
            return false;
        }
        let key = uuid_bits(uuid) ^ spread(self.nodes.hash_one(node));
        let hash = self.hasher.hash_one(key);
        let order = &self.order;
        if self
            .seen
            .probe(hash)
            .any(|p| order.get(p as usize) == Some(&key))
        {
            return true;
        }
        let hasher = &self.hasher;
        if self.order.len() < self.capacity {
            let pos = self.order.len() as u32;
            self.order.push(key);
            let order = &self.order;
            self.seen.insert(hash, pos, |p| hash_at(hasher, order, p));
        } else if let Some(&old) = self.order.get(self.next) {
            let pos = self.next as u32;
            let order = &self.order;
            self.seen
                .remove(hasher.hash_one(old), pos, |p| hash_at(hasher, order, p));
            self.order[self.next] = key;
            let order = &self.order;
            self.seen.insert(hash, pos, |p| hash_at(hasher, order, p));
            self.next = (self.next + 1) % self.capacity;
        }
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

    #[test]
    fn canonical_uuids_are_their_bits_and_case_does_not_matter() {
        let u = "e08fb6b0-bf41-480d-99b3-ec3c46cdeeda";
        assert_eq!(uuid_bits(u), 0xe08fb6b0_bf41_480d_99b3_ec3c46cdeeda);
        assert_eq!(uuid_bits(u), uuid_bits(&u.to_uppercase()));
        assert_ne!(
            uuid_bits("e08fb6b0-bf41-480d-99b3-ec3c46cdeedx"),
            uuid_bits(u)
        );
        assert_ne!(uuid_bits("not-a-uuid"), uuid_bits("not-a-uuid2"));
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_a_window_of_the_last_n_distinct_keys(
            cap in 1usize..12,
            seq in proptest::collection::vec((0u8..3, 0u8..24), 1..300),
        ) {
            let mut d = Dedup::new(cap);
            let mut model: std::collections::VecDeque<(u8, u8)> = Default::default();
            for (node, uuid) in seq {
                let dup = d.is_duplicate(&format!("n{node}"), &format!("u{uuid}"));
                proptest::prop_assert_eq!(dup, model.contains(&(node, uuid)));
                if !dup {
                    model.push_back((node, uuid));
                    if model.len() > cap {
                        model.pop_front();
                    }
                }
                proptest::prop_assert_eq!(d.len(), model.len());
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn distinct_uuids_are_never_duplicates(uuids in proptest::collection::hash_set("[0-9a-f-]{1,40}", 1..200)) {
            let mut d = Dedup::new(1000);
            for u in &uuids {
                proptest::prop_assert!(!d.is_duplicate("node", u));
            }
            for u in &uuids {
                proptest::prop_assert!(d.is_duplicate("node", u));
            }
        }
    }
}
