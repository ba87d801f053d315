//! An index of positions: a hash table that stores only `u32` positions into the caller's own
//! storage (a ring, a slab), so that an indexed entry costs 4 bytes of table instead of a
//! copy of its key and value.
//!
//! Linear probing over a power-of-two table kept at most half full, with backward-shift
//! deletion: no tombstones, so a table that sees as many removals as insertions never needs a
//! rebuild, and every position with a given hash sits in the run of occupied slots from its
//! home slot to the next empty one. The caller supplies hashes (seeded: the keys come from the
//! wire) and tells, through a closure, the hash of the entry at a position.
//!
//! Each slot also keeps a 5-bit tag of its entry's hash beside the position, so that a probe
//! skips, without reading the caller's storage (a cache miss each), 31 in 32 of the entries
//! that share its run but not its hash.

/// A free slot.
const EMPTY: u32 = u32::MAX;
/// The bits of a slot that hold the position; the rest hold the tag.
const POS_BITS: u32 = 27;
const POS_MASK: u32 = (1 << POS_BITS) - 1;
/// Positions must stay below this (2^27 − 1, above every count the configuration accepts):
/// the all-ones slot is [`EMPTY`].
pub const MAX_POS: u32 = POS_MASK;

/// The tag of a hash: bits the home slot is not taken from.
fn tag(hash: u64) -> u32 {
    (hash as u32 & 0x1f) << POS_BITS
}

/// The table.
#[derive(Debug, Clone)]
pub struct PosTable {
    slots: Box<[u32]>,
    len: usize,
}

impl PosTable {
    /// A table with room for `n` positions before it first grows (allocated now, whole).
    pub fn with_room(n: usize) -> Self {
        let size = (n.max(4) * 2).next_power_of_two();
        Self {
            slots: vec![EMPTY; size].into_boxed_slice(),
            len: 0,
        }
    }

    /// How many positions the table holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    fn home(&self, hash: u64) -> usize {
        // The high bits: the low bits of some hashes vary less.
        (hash.rotate_left(32) as usize) & self.mask()
    }

    /// The positions that may have this hash: the run of occupied slots from its home slot.
    /// The caller checks each against its key.
    pub fn probe(&self, hash: u64) -> Probe<'_> {
        Probe {
            slots: &self.slots,
            at: self.home(hash),
            left: self.slots.len(),
            tag: tag(hash),
        }
    }

    /// Adds `pos` (below [`MAX_POS`]) under `hash`. `hash_of` gives the hash of the entry at
    /// any held position (the table rehashes them when it grows).
    pub fn insert(&mut self, hash: u64, pos: u32, hash_of: impl Fn(u32) -> u64) {
        debug_assert!(pos < MAX_POS, "position {pos} out of range");
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow(&hash_of);
        }
        self.place(hash, pos);
        self.len += 1;
    }

    fn place(&mut self, hash: u64, pos: u32) {
        let mask = self.mask();
        let mut i = self.home(hash);
        while self.slots[i] != EMPTY {
            i = (i + 1) & mask;
        }
        self.slots[i] = tag(hash) | (pos & POS_MASK);
    }

    fn grow(&mut self, hash_of: &impl Fn(u32) -> u64) {
        let bigger = vec![EMPTY; self.slots.len() * 2].into_boxed_slice();
        let old = std::mem::replace(&mut self.slots, bigger);
        for p in old.iter().map(|s| s & POS_MASK).filter(|p| *p != POS_MASK) {
            self.place(hash_of(p), p);
        }
    }

    /// Removes `pos`, held under `hash`; `hash_of` as for [`PosTable::insert`]. Returns
    /// whether it was held.
    pub fn remove(&mut self, hash: u64, pos: u32, hash_of: impl Fn(u32) -> u64) -> bool {
        let mask = self.mask();
        let mut i = self.home(hash);
        let slot = tag(hash) | (pos & POS_MASK);
        loop {
            match self.slots[i] {
                EMPTY => return false,
                s if s == slot => break,
                _ => i = (i + 1) & mask,
            }
        }
        // Backward shift: pull later members of the run into the hole when their home slot
        // does not lie (cyclically) after the hole.
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let p = self.slots[j];
            if p == EMPTY {
                break;
            }
            let home = self.home(hash_of(p & POS_MASK));
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.slots[hole] = p;
                hole = j;
            }
        }
        self.slots[hole] = EMPTY;
        self.len -= 1;
        true
    }
}

/// The positions of one probe run ([`PosTable::probe`]). A copy resumes where it was taken.
#[derive(Debug, Clone, Copy)]
pub struct Probe<'a> {
    slots: &'a [u32],
    at: usize,
    left: usize,
    tag: u32,
}

impl Iterator for Probe<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        while self.left > 0 {
            let s = *self.slots.get(self.at)?;
            if s == EMPTY {
                self.left = 0;
                return None;
            }
            self.left -= 1;
            self.at = (self.at + 1) & (self.slots.len() - 1);
            if s & !POS_MASK == self.tag {
                return Some(s & POS_MASK);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys whose hashes collide a lot (few distinct homes), to exercise runs and wrap-around;
    /// all with one tag.
    fn hash(k: u64) -> u64 {
        (k % 7).rotate_right(32)
    }

    /// The same few homes, with tags that differ within a run (and sometimes agree).
    fn tagged(k: u64) -> u64 {
        (k % 7).rotate_right(32) | (k % 40)
    }

    proptest::proptest! {
        #[test]
        fn holds_exactly_what_was_inserted_and_not_removed(
            ops in proptest::collection::vec((0u64..64, proptest::bool::ANY), 1..400),
            with_tags in proptest::bool::ANY,
        ) {
            let hash = if with_tags { tagged } else { hash };
            // Position = key, for simplicity; the model is a set.
            let mut t = PosTable::with_room(4);
            let mut model = std::collections::BTreeSet::new();
            for (k, add) in ops {
                let held = model.contains(&k);
                if add && !held {
                    t.insert(hash(k), k as u32, |p| hash(u64::from(p)));
                    model.insert(k);
                } else if !add {
                    let removed = t.remove(hash(k), k as u32, |p| hash(u64::from(p)));
                    proptest::prop_assert_eq!(removed, held);
                    model.remove(&k);
                }
                proptest::prop_assert_eq!(t.len(), model.len());
                for k in 0..64u64 {
                    let found = t.probe(hash(k)).any(|p| u64::from(p) == k);
                    proptest::prop_assert_eq!(found, model.contains(&k), "key {}", k);
                    // A probe yields only positions whose hash has the same tag.
                    let tag = hash(k) & 0x1f;
                    proptest::prop_assert!(t.probe(hash(k)).all(|p| hash(u64::from(p)) & 0x1f == tag));
                }
            }
        }
    }

    #[test]
    fn grows_and_keeps_every_position() {
        let h = |p: u32| u64::from(p).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut t = PosTable::with_room(2);
        for p in 0..10_000u32 {
            t.insert(h(p), p, h);
        }
        assert_eq!(t.len(), 10_000);
        assert!((0..10_000u32).all(|p| t.probe(h(p)).any(|q| q == p)));
        for p in (0..10_000u32).step_by(2) {
            assert!(t.remove(h(p), p, h));
        }
        assert!(!t.remove(h(0), 0, h), "already gone");
        assert!((0..10_000u32).all(|p| t.probe(h(p)).any(|q| q == p) == (p % 2 == 1)));
    }
}
