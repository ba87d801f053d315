//! Where learned names are kept: one record per (owner, IP, asked name) in a slab of
//! fixed-size records, a list through them in the order they were (last) answered (the
//! oldest is evicted first), and a [`PosTable`] of their positions by (owner, IP).
//!
//! About 80 bytes a name plus the name itself (shared by every IP of one answer), against
//! about 200 for a hash map of (owner, IP) to a list of names beside an eviction queue.

use std::net::IpAddr;
use std::sync::Arc;

use crate::postable::{PosTable, Probe};

/// The key of one (owner, IP): the owner's 128-bit hash XOR a bijection of the IP's 128 bits
/// (IPv4 as its IPv4-mapped IPv6 form), as two `u64` (no 16-byte alignment). One owner's IPs
/// never share a key; two owners' keys meet only when their hashes differ by exactly the
/// difference of the mixed IPs.
pub type Key = [u64; 2];

/// An odd multiplier: multiplying by it is a bijection on 128 bits.
const MIX: u128 = 0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835;

/// The key of `owner` (a 128-bit hash, 0 for cluster scope) and `ip`.
pub fn key(owner: u128, ip: IpAddr) -> Key {
    let ip = match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped().to_bits(),
        IpAddr::V6(a) => a.to_bits(),
    };
    let k = owner ^ ip.wrapping_mul(MIX);
    [(k >> 64) as u64, k as u64]
}

/// One name a pod asked for, with what the trusted answer said about it.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    /// The asked name, normalized (lower-case, trailing dot).
    pub name: &'a str,
    /// The CNAME chain of the answer, normalized: aliases of `name`, not names of their own.
    pub aliases: &'a [Arc<str>],
    /// When it was (last) answered, Unix seconds.
    pub asked_at: f64,
    /// Until when the answer holds (answer time + TTL, floored at `dns.min_ttl`).
    pub expires: f64,
}

impl Asked<'_> {
    /// Whether the answer still holds at `time`.
    pub fn live_at(&self, time: f64) -> bool {
        time <= self.expires
    }
}

/// The end of the list.
const NIL: u32 = u32::MAX;

/// One learned name.
#[derive(Debug)]
struct Record {
    key: Key,
    name: Arc<str>,
    aliases: Option<Arc<[Arc<str>]>>,
    asked_at: f64,
    expires: f64,
    /// The record answered just before this one (towards the oldest), and just after.
    prev: u32,
    next: u32,
}

impl Record {
    fn asked(&self) -> Asked<'_> {
        Asked {
            name: &self.name,
            aliases: self.aliases.as_deref().unwrap_or(&[]),
            asked_at: self.asked_at,
            expires: self.expires,
        }
    }
}

/// What [`Store::answer`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answered {
    /// A new (owner, IP, name) record.
    Added,
    /// The name was held for this (owner, IP): its record was refreshed.
    Refreshed,
}

/// The records.
#[derive(Debug)]
pub struct Store {
    slots: Vec<Option<Record>>,
    free: Vec<u32>,
    index: PosTable,
    hasher: foldhash::fast::RandomState,
    /// The oldest and the newest record.
    head: u32,
    tail: u32,
    len: usize,
}

impl Store {
    /// An empty store with room for `n` records before anything grows (allocated now; one
    /// more, since a record is added before the oldest is evicted).
    pub fn with_room(n: usize) -> Self {
        Self {
            slots: Vec::with_capacity(n + 1),
            free: Vec::new(),
            index: PosTable::with_room(n + 1),
            hasher: Default::default(),
            head: NIL,
            tail: NIL,
            len: 0,
        }
    }

    /// How many records are held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The seeded hash of a key (keys come from the wire).
    pub fn hash(&self, key: Key) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(key)
    }

    fn get(&self, pos: u32) -> Option<&Record> {
        self.slots.get(pos as usize)?.as_ref()
    }

    fn get_mut(&mut self, pos: u32) -> Option<&mut Record> {
        self.slots.get_mut(pos as usize)?.as_mut()
    }

    /// The names held for `key` (whose hash is `hash`), live or not.
    pub fn names(&self, key: Key, hash: u64) -> impl Iterator<Item = Asked<'_>> + '_ {
        self.names_from(key, self.index.probe(hash))
    }

    /// Where the names of `key` start in its probe run, or `None` when none is held: a
    /// look-up that finds something and the walk over what it found then scan the run once.
    pub fn first(&self, key: Key, hash: u64) -> Option<Probe<'_>> {
        let mut probe = self.index.probe(hash);
        loop {
            let at = probe;
            let p = probe.next()?;
            if self.get(p).is_some_and(|r| r.key == key) {
                return Some(at);
            }
        }
    }

    /// The names of `key` in the rest of a probe run ([`Store::first`]).
    pub fn names_from<'a>(
        &'a self,
        key: Key,
        from: Probe<'a>,
    ) -> impl Iterator<Item = Asked<'a>> + 'a {
        from.filter_map(|p| self.get(p))
            .filter(move |r| r.key == key)
            .map(Record::asked)
    }

    fn positions(&self, key: Key, hash: u64) -> impl Iterator<Item = u32> + '_ {
        self.index
            .probe(hash)
            .filter(move |p| self.get(*p).is_some_and(|r| r.key == key))
    }

    /// Records that `key`'s pod asked for `name` and got an answer with `aliases`, at `time`,
    /// holding until `expires`. Asked again: the latest answer's chain, the later time and
    /// expiry, and the record becomes the newest.
    pub fn answer(
        &mut self,
        key: Key,
        name: &Arc<str>,
        aliases: &Option<Arc<[Arc<str>]>>,
        (time, expires): (f64, f64),
    ) -> Answered {
        let hash = self.hash(key);
        let held = self
            .positions(key, hash)
            .find(|p| self.get(*p).is_some_and(|r| r.name == *name));
        if let Some(pos) = held {
            if let Some(r) = self.get_mut(pos) {
                r.expires = r.expires.max(expires);
                r.asked_at = r.asked_at.max(time);
                r.aliases.clone_from(aliases);
            }
            self.unlink(pos);
            self.push_newest(pos);
            return Answered::Refreshed;
        }
        let record = Record {
            key,
            name: name.clone(),
            aliases: aliases.clone(),
            asked_at: time,
            expires,
            prev: NIL,
            next: NIL,
        };
        let pos = match self.free.pop() {
            Some(p) => {
                self.slots[p as usize] = Some(record);
                p
            }
            None => {
                self.slots.push(Some(record));
                (self.slots.len() - 1) as u32
            }
        };
        let slots = &self.slots;
        let hasher = &self.hasher;
        self.index.insert(hash, pos, |p| hash_at(slots, hasher, p));
        self.push_newest(pos);
        self.len += 1;
        Answered::Added
    }

    /// Removes the oldest record. Returns false when there is none.
    pub fn evict_oldest(&mut self) -> bool {
        let pos = self.head;
        let Some(key) = self.get(pos).map(|r| r.key) else {
            return false;
        };
        self.unlink(pos);
        let hash = self.hash(key);
        let slots = &self.slots;
        let hasher = &self.hasher;
        self.index.remove(hash, pos, |p| hash_at(slots, hasher, p));
        self.slots[pos as usize] = None;
        self.free.push(pos);
        self.len -= 1;
        true
    }

    fn unlink(&mut self, pos: u32) {
        let Some((prev, next)) = self.get(pos).map(|r| (r.prev, r.next)) else {
            return;
        };
        match self.get_mut(prev) {
            Some(p) => p.next = next,
            None => self.head = next,
        }
        match self.get_mut(next) {
            Some(n) => n.prev = prev,
            None => self.tail = prev,
        }
    }

    fn push_newest(&mut self, pos: u32) {
        let tail = self.tail;
        if let Some(r) = self.get_mut(pos) {
            r.prev = tail;
            r.next = NIL;
        }
        match self.get_mut(tail) {
            Some(t) => t.next = pos,
            None => self.head = pos,
        }
        self.tail = pos;
    }
}

/// The hash of the record at `pos` (for the index when it moves positions).
fn hash_at(slots: &[Option<Record>], hasher: &foldhash::fast::RandomState, pos: u32) -> u64 {
    use std::hash::BuildHasher;
    slots
        .get(pos as usize)
        .and_then(Option::as_ref)
        .map_or(0, |r| hasher.hash_one(r.key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &Store, key: Key) -> Vec<String> {
        let mut v: Vec<String> = s.names(key, s.hash(key)).map(|a| a.name.into()).collect();
        v.sort();
        v
    }

    #[test]
    fn keys_of_one_owner_differ_and_cluster_scope_is_the_ip() {
        let a = key(7, "192.0.2.1".parse().expect("ip"));
        let b = key(7, "192.0.2.2".parse().expect("ip"));
        assert_ne!(a, b);
        assert_ne!(
            key(0, "::1".parse().expect("ip")),
            key(1, "::1".parse().expect("ip"))
        );
    }

    proptest::proptest! {
        /// Against a model: a list of (key, name) in answer order, the oldest evicted first.
        #[test]
        fn agrees_with_an_ordered_list(
            ops in proptest::collection::vec((0u8..6, 0u8..4, proptest::bool::weighted(0.2)), 1..300)
        ) {
            let mut s = Store::with_room(2);
            let mut model: Vec<(u8, u8)> = Vec::new();
            for (n, (k, name, evict)) in ops.into_iter().enumerate() {
                if evict {
                    proptest::prop_assert_eq!(s.evict_oldest(), !model.is_empty());
                    if !model.is_empty() {
                        model.remove(0);
                    }
                } else {
                    let arc: Arc<str> = format!("n{name}.").into();
                    let got = s.answer([0, u64::from(k)], &arc, &None, (n as f64, n as f64 + 5.0));
                    let held = model.iter().position(|m| *m == (k, name));
                    if let Some(i) = held {
                        model.remove(i);
                    }
                    proptest::prop_assert_eq!(got == Answered::Refreshed, held.is_some());
                    model.push((k, name));
                }
                proptest::prop_assert_eq!(s.len(), model.len());
                for k in 0..6u8 {
                    let mut want: Vec<String> = model.iter().filter(|m| m.0 == k)
                        .map(|m| format!("n{}.", m.1)).collect();
                    want.sort();
                    proptest::prop_assert_eq!(names(&s, [0, u64::from(k)]), want);
                }
            }
        }
    }
}
