//! Compiled rules and the per-side indexes that make `first_match` cheap: every `fqdn` pattern
//! of every rule in one `RegexSet` per side, every `cidr` in one prefix index per side. A flow's
//! names and IPs are looked up once (lazily, only when a candidate rule needs them) into
//! bitsets over rules; the rules are then walked in order testing only scalar fields and bits.

use std::cell::RefCell;
use std::collections::HashMap;

use regex::{RegexSet, RegexSetBuilder};

use super::cidr::{Cidr, CidrIndex};
use super::fqdn::{self, FqdnPattern};
use super::glob::Glob;
use super::labels::{Entity, LabelSelector};
use super::port::PortSpec;
use crate::api::flow::{DropReason, TrafficDirection, Verdict};
use crate::flow::{FlowCtx, Side};

/// The constraints on one side of a flow. `None` = no constraint.
#[derive(Clone, Debug, Default)]
pub(crate) struct SideMatch {
    pub namespace: Option<Vec<Glob>>,
    pub pod: Option<Vec<Glob>>,
    pub workload: Option<Vec<Glob>>,
    /// All must hold (empty = no constraint).
    pub labels: Vec<LabelSelector>,
    pub entity: Option<Vec<Entity>>,
    pub cidr: Option<Vec<Cidr>>,
    pub fqdn: Option<Vec<FqdnPattern>>,
    pub port: Option<Vec<PortSpec>>,
}

/// The compiled `[rule.match]` of one rule.
#[derive(Clone, Debug, Default)]
pub(crate) struct CompiledMatch {
    pub verdict: Option<Vec<Verdict>>,
    pub direction: Option<Vec<TrafficDirection>>,
    pub drop_reason: Option<Vec<DropReason>>,
    pub policy_log: Option<Vec<String>>,
    pub node: Option<Vec<Glob>>,
    pub source: SideMatch,
    pub destination: SideMatch,
}

fn any_glob(globs: &Option<Vec<Glob>>, value: &str) -> bool {
    globs
        .as_ref()
        .is_none_or(|gs| gs.iter().any(|g| g.matches_value(value)))
}

fn all_catch_all<T>(v: &Option<Vec<T>>, f: impl Fn(&[T]) -> bool) -> Option<bool> {
    v.as_ref().map(|v| f(v))
}

impl SideMatch {
    /// Everything but `cidr` and `fqdn`, which go through the index.
    fn scalar_matches(&self, side: &Side<'_>, ctx: &FlowCtx<'_>) -> bool {
        any_glob(&self.namespace, side.namespace())
            && any_glob(&self.pod, side.pod())
            && self.workload.as_ref().is_none_or(|gs| {
                side.endpoint.is_some_and(|e| {
                    e.workloads
                        .iter()
                        .any(|w| gs.iter().any(|g| g.matches_value(&w.name)))
                })
            })
            && self.labels.iter().all(|s| s.matches(side.labels()))
            && self
                .entity
                .as_ref()
                .is_none_or(|es| es.iter().any(|e| e.matches(side)))
            && self
                .port
                .as_ref()
                .is_none_or(|ps| ps.iter().any(|p| p.matches(side.port, ctx.proto)))
    }

    /// `cidr` and `fqdn` tested directly, without the index.
    fn direct_matches(&self, side: &Side<'_>) -> bool {
        self.cidr
            .as_ref()
            .is_none_or(|cs| side.ip.is_some_and(|ip| cs.iter().any(|c| c.contains(ip))))
            && self
                .fqdn
                .as_ref()
                .is_none_or(|ps| side.names.iter().any(|n| ps.iter().any(|p| p.matches(n))))
    }

    /// Per present key: whether it is a catch-all. Empty when nothing is constrained.
    fn catch_alls(&self) -> Vec<bool> {
        let glob_all = |gs: &[Glob]| gs.iter().any(Glob::is_match_all);
        [
            all_catch_all(&self.namespace, glob_all),
            all_catch_all(&self.pod, glob_all),
            all_catch_all(&self.workload, glob_all),
            (!self.labels.is_empty()).then_some(false),
            all_catch_all(&self.entity, |_| false),
            all_catch_all(&self.cidr, |cs| {
                let v4 = cs.iter().any(|c| c.is_default_route() && !c.is_v6());
                let v6 = cs.iter().any(|c| c.is_default_route() && c.is_v6());
                v4 && v6
            }),
            all_catch_all(&self.fqdn, |ps| ps.iter().any(FqdnPattern::is_match_all)),
            all_catch_all(&self.port, |ps| ps.iter().any(PortSpec::is_match_all)),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

impl CompiledMatch {
    fn scalar_matches(&self, ctx: &FlowCtx<'_>) -> bool {
        self.verdict
            .as_ref()
            .is_none_or(|v| v.contains(&ctx.verdict))
            && self
                .direction
                .as_ref()
                .is_none_or(|v| v.contains(&ctx.direction))
            && self
                .drop_reason
                .as_ref()
                .is_none_or(|v| v.iter().any(|d| *d == ctx.drop_reason))
            && self.policy_log.as_ref().is_none_or(|v| {
                ctx.flow
                    .policy_log
                    .iter()
                    .any(|t| !t.is_empty() && v.contains(t))
            })
            && any_glob(&self.node, ctx.node)
            && self.source.scalar_matches(&ctx.source, ctx)
            && self.destination.scalar_matches(&ctx.destination, ctx)
    }

    /// Whether the flow matches, testing every constraint directly (no index).
    pub fn matches_direct(&self, ctx: &FlowCtx<'_>) -> bool {
        self.scalar_matches(ctx)
            && self.source.direct_matches(&ctx.source)
            && self.destination.direct_matches(&ctx.destination)
    }

    /// Per present key: whether it is a catch-all. Empty when nothing is constrained.
    pub fn catch_alls(&self) -> Vec<bool> {
        let mut v: Vec<bool> = [
            all_catch_all(&self.verdict, |v| {
                v.contains(&Verdict::Dropped) && v.contains(&Verdict::Audit)
            }),
            all_catch_all(&self.direction, |v| {
                v.contains(&TrafficDirection::Ingress) && v.contains(&TrafficDirection::Egress)
            }),
            all_catch_all(&self.drop_reason, |_| false),
            all_catch_all(&self.policy_log, |_| false),
            all_catch_all(&self.node, |gs| gs.iter().any(Glob::is_match_all)),
        ]
        .into_iter()
        .flatten()
        .collect();
        v.extend(self.source.catch_alls());
        v.extend(self.destination.catch_alls());
        v
    }
}

/// The fqdn and cidr index of one side over all rules.
#[derive(Debug, Default)]
struct SideIndex {
    fqdn: Option<RegexSet>,
    /// Pattern index in `fqdn` → rule index.
    fqdn_rule: Vec<u32>,
    cidr: CidrIndex,
}

/// The most memory the compiled fqdn patterns of all rules (one side) may take.
pub const MAX_COMPILED_BYTES: usize = 32 << 20;
/// The most memory one lazy-DFA cache of the fqdn patterns may take (a cache: when full it is
/// cleared, matching stays correct). There is one per matching thread and direction.
pub const MAX_DFA_CACHE_BYTES: usize = 4 << 20;
/// The largest total size of the fqdn patterns of all rules (one side), as regular
/// expressions: about 1,000 patterns of 255 characters full of wildcards, or about 8,000 of
/// the usual `*.example.com` kind.
pub const MAX_FQDN_REGEX_BYTES: usize = 256 << 10;

/// Which lookup a bitset slot holds.
const SRC_CIDR: usize = 0;
const SRC_FQDN: usize = 1;
const DST_CIDR: usize = 2;
const DST_FQDN: usize = 3;

impl SideIndex {
    fn build(sides: &[&SideMatch]) -> Result<Self, String> {
        let mut idx = SideIndex::default();
        let mut patterns = Vec::new();
        for (r, side) in sides.iter().enumerate() {
            let r = u32::try_from(r).map_err(|_| "too many rules".to_string())?;
            for c in side.cidr.iter().flatten() {
                idx.cidr.insert(*c, r);
            }
            for p in side.fqdn.iter().flatten() {
                patterns.push(p.to_regex());
                idx.fqdn_rule.push(r);
            }
        }
        let source: usize = patterns.iter().map(String::len).sum();
        if source > MAX_FQDN_REGEX_BYTES {
            // Checked before compiling: building the set takes memory in proportion to the
            // patterns' size (and their wildcards) well before the compiled-size limit is hit.
            return Err(format!(
                "the {} fqdn patterns of all rules are too large together ({} KiB as regular \
                 expressions, the limit is {} KiB): use fewer patterns or fewer wildcards",
                patterns.len(),
                source >> 10,
                MAX_FQDN_REGEX_BYTES >> 10
            ));
        }
        if !patterns.is_empty() {
            let set = RegexSetBuilder::new(&patterns)
                .size_limit(MAX_COMPILED_BYTES)
                .dfa_size_limit(MAX_DFA_CACHE_BYTES)
                .build()
                .map_err(|e| match e {
                    regex::Error::CompiledTooBig(_) => format!(
                        "the {} fqdn patterns compiled together exceed {} MiB: use fewer or \
                         simpler patterns",
                        patterns.len(),
                        MAX_COMPILED_BYTES >> 20
                    ),
                    e => format!("fqdn patterns do not compile together: {e}"),
                })?;
            idx.fqdn = Some(set);
        }
        Ok(idx)
    }

    fn fill_cidr(&self, side: &Side<'_>, bits: &mut [u64]) {
        if let Some(ip) = side.ip {
            self.cidr.lookup(ip, |r| set_bit(bits, r));
        }
    }

    fn fill_fqdn(&self, side: &Side<'_>, bits: &mut [u64], s: &mut Names) {
        // Most denied flows carry no name at all: nothing to look up.
        let Some(set) = self.fqdn.as_ref().filter(|_| !side.names.is_empty()) else {
            return;
        };
        s.hits.clear();
        s.hits.resize(set.len(), false);
        let mut any = false;
        for name in &side.names {
            if fqdn::normalize_into(name, &mut s.buf) {
                any |= set.matches_read_at(&mut s.hits, &s.buf, 0);
            }
        }
        if !any {
            return;
        }
        for (p, hit) in s.hits.iter().enumerate() {
            if *hit {
                set_bit(bits, self.fqdn_rule[p]);
            }
        }
    }
}

fn set_bit(bits: &mut [u64], r: u32) {
    let r = r as usize;
    if let Some(w) = bits.get_mut(r / 64) {
        *w |= 1 << (r % 64);
    }
}

/// Scratch space for name normalization and regex-set hits.
#[derive(Default)]
struct Names {
    buf: String,
    hits: Vec<bool>,
}

/// Per-thread scratch reused across flows, so matching a flow does not allocate.
#[derive(Default)]
struct Scratch {
    bits: [Vec<u64>; 4],
    cand: Vec<u64>,
    names: Names,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// For one exactly-indexable key: which rules constrain it, and for each value the rules it
/// satisfies. A rule is a candidate for a flow only if, for every such key it constrains, the
/// flow's value is among its values.
#[derive(Debug, Default)]
struct ExactIndex<K: std::hash::Hash + Eq> {
    constrained: Vec<u64>,
    by_value: HashMap<K, Vec<u64>, foldhash::fast::RandomState>,
}

impl<K: std::hash::Hash + Eq> ExactIndex<K> {
    fn new(words: usize) -> Self {
        Self {
            constrained: vec![0; words],
            by_value: HashMap::default(),
        }
    }

    /// Rule `r` matches only these values.
    fn insert(&mut self, r: u32, values: impl IntoIterator<Item = K>, words: usize) {
        set_bit(&mut self.constrained, r);
        for v in values {
            set_bit(self.by_value.entry(v).or_insert_with(|| vec![0; words]), r);
        }
    }

    /// Removes from `cand` the rules that constrain this key to other values.
    fn filter<Q>(&self, value: &Q, cand: &mut [u64])
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        if self.by_value.is_empty() {
            return;
        }
        let hits = self.by_value.get(value);
        for (w, c) in cand.iter_mut().enumerate() {
            let h = hits.map_or(0, |h| h[w]);
            *c &= !self.constrained[w] | h;
        }
    }
}

/// Indexes over the keys that take exact values, so that a flow is tested only against the
/// rules that can match it.
#[derive(Debug, Default)]
struct Prefilter {
    all: Vec<u64>,
    verdict: ExactIndex<i32>,
    direction: ExactIndex<i32>,
    source_namespace: ExactIndex<Box<str>>,
    destination_namespace: ExactIndex<Box<str>>,
    destination_port: ExactIndex<u16>,
    /// Per slot (`SRC_CIDR`…): the rules that constrain it.
    indexed: [Vec<u64>; 4],
}

/// The exact values of a glob list, if none of its globs has a `*`.
fn literal_globs(g: &Option<Vec<Glob>>) -> Option<Vec<Box<str>>> {
    let g = g.as_ref()?;
    g.iter()
        .all(|g| !g.as_str().contains('*'))
        .then(|| g.iter().map(|g| g.as_str().into()).collect())
}

impl Prefilter {
    fn build(rules: &[CompiledMatch]) -> Self {
        let words = rules.len().div_ceil(64);
        let mut p = Prefilter {
            all: vec![0; words],
            verdict: ExactIndex::new(words),
            direction: ExactIndex::new(words),
            source_namespace: ExactIndex::new(words),
            destination_namespace: ExactIndex::new(words),
            destination_port: ExactIndex::new(words),
            indexed: std::array::from_fn(|_| vec![0; words]),
        };
        for (i, r) in rules.iter().enumerate() {
            let Ok(i) = u32::try_from(i) else { break };
            set_bit(&mut p.all, i);
            if let Some(v) = &r.verdict {
                p.verdict.insert(i, v.iter().map(|v| *v as i32), words);
            }
            if let Some(v) = &r.direction {
                p.direction.insert(i, v.iter().map(|v| *v as i32), words);
            }
            if let Some(v) = literal_globs(&r.source.namespace) {
                p.source_namespace.insert(i, v, words);
            }
            if let Some(v) = literal_globs(&r.destination.namespace) {
                p.destination_namespace.insert(i, v, words);
            }
            if let Some(ps) = &r.destination.port {
                if ps.iter().all(|p| p.lo == p.hi) {
                    p.destination_port.insert(i, ps.iter().map(|p| p.lo), words);
                }
            }
            let slots = [
                r.source.cidr.is_some(),
                r.source.fqdn.is_some(),
                r.destination.cidr.is_some(),
                r.destination.fqdn.is_some(),
            ];
            for (slot, on) in slots.into_iter().enumerate() {
                if on {
                    set_bit(&mut p.indexed[slot], i);
                }
            }
        }
        p
    }
}

/// The compiled matchers of all rules plus their indexes.
#[derive(Debug, Default)]
pub(crate) struct Matcher {
    rules: Vec<CompiledMatch>,
    /// Expiry per rule, Unix seconds.
    expires: Vec<Option<f64>>,
    source: SideIndex,
    destination: SideIndex,
    prefilter: Prefilter,
}

/// Whether a rule with this expiry is in force at the flow's time.
pub(crate) fn in_force(expires: Option<f64>, time: Option<f64>) -> bool {
    match (expires, time) {
        (None, _) => true,
        (Some(e), Some(t)) => t <= e,
        (Some(_), None) => false,
    }
}

impl Matcher {
    /// Builds the indexes.
    pub fn new(rules: Vec<CompiledMatch>, expires: Vec<Option<f64>>) -> Result<Self, String> {
        let src: Vec<&SideMatch> = rules.iter().map(|r| &r.source).collect();
        let dst: Vec<&SideMatch> = rules.iter().map(|r| &r.destination).collect();
        Ok(Self {
            source: SideIndex::build(&src)?,
            destination: SideIndex::build(&dst)?,
            prefilter: Prefilter::build(&rules),
            rules,
            expires,
        })
    }

    /// Whether rule `i` matches, tested directly without the indexes.
    pub fn matches_direct(&self, i: usize, ctx: &FlowCtx<'_>) -> bool {
        match (self.rules.get(i), self.expires.get(i)) {
            (Some(r), Some(e)) => in_force(*e, ctx.time) && r.matches_direct(ctx),
            _ => false,
        }
    }

    /// Rule `i`'s keys tested one by one against the flow (empty for an unknown index).
    pub fn explain(&self, i: usize, ctx: &FlowCtx<'_>) -> Vec<super::explain::Check> {
        match (self.rules.get(i), self.expires.get(i)) {
            (Some(r), Some(e)) => super::explain::explain(r, *e, ctx),
            _ => Vec::new(),
        }
    }

    /// The first rule that matches, using the indexes.
    pub fn first_match(&self, ctx: &FlowCtx<'_>) -> Option<usize> {
        if self.rules.is_empty() {
            return None;
        }
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut s) => self.first_match_with(ctx, &mut s),
            Err(_) => self.first_match_with(ctx, &mut Scratch::default()),
        })
    }

    fn first_match_with(&self, ctx: &FlowCtx<'_>, s: &mut Scratch) -> Option<usize> {
        let p = &self.prefilter;
        let Scratch { bits, cand, names } = s;
        cand.clear();
        cand.extend_from_slice(&p.all);
        p.verdict.filter(&(ctx.verdict as i32), cand);
        p.direction.filter(&(ctx.direction as i32), cand);
        p.source_namespace.filter(ctx.source.namespace(), cand);
        p.destination_namespace
            .filter(ctx.destination.namespace(), cand);
        match ctx.destination.port {
            Some(port) => p.destination_port.filter(&port, cand),
            None => p.destination_port.filter(&0, cand),
        }
        for (slot, (constrained, b)) in p.indexed.iter().zip(bits.iter_mut()).enumerate() {
            // Only look up what some remaining candidate needs.
            if !constrained.iter().zip(cand.iter()).any(|(c, k)| c & k != 0) {
                continue;
            }
            b.clear();
            b.resize(cand.len(), 0);
            match slot {
                SRC_CIDR => self.source.fill_cidr(&ctx.source, b),
                SRC_FQDN => self.source.fill_fqdn(&ctx.source, b, names),
                DST_CIDR => self.destination.fill_cidr(&ctx.destination, b),
                DST_FQDN => self.destination.fill_fqdn(&ctx.destination, b, names),
                _ => {}
            }
            for ((c, k), h) in cand.iter_mut().zip(constrained).zip(b.iter()) {
                *c &= !k | h;
            }
        }
        // The candidates, in rule order; everything not indexed is tested here.
        for (w, word) in cand.iter().enumerate() {
            let mut word = *word;
            while word != 0 {
                let i = w * 64 + word.trailing_zeros() as usize;
                word &= word - 1;
                if in_force(self.expires[i], ctx.time) && self.rules[i].scalar_matches(ctx) {
                    return Some(i);
                }
            }
        }
        None
    }
}
