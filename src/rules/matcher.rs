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
use crate::names::SideNames;

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
                .is_none_or(|ps| fqdn_covers(ps, &side.names))
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

/// Whether an `fqdn` key covers a side: there is a name, and every name the key must cover
/// (see [`SideNames::required`]) is matched by one of its patterns.
pub(crate) fn fqdn_covers(ps: &[FqdnPattern], names: &SideNames<'_>) -> bool {
    let mut buf = String::new();
    names.all_covered(|n| {
        fqdn::normalize_into(n, &mut buf) && ps.iter().any(|p| p.matches_normalized(&buf))
    })
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

    /// The rules whose `fqdn` key (this side) covers the side's names, into `strict`; and into
    /// `any` the rules whose key matches at least one of its names, aliases included (what a
    /// key would match if one name were enough). Both stay empty when the side has no name.
    fn fill_fqdn(&self, names: &SideNames<'_>, strict: &mut [u64], any: &mut [u64], s: &mut Names) {
        let Some(set) = self.fqdn.as_ref() else {
            return;
        };
        let mut first = true;
        for n in names.required() {
            if !self.name_bits(set, n, s) {
                s.tmp.fill(0);
            }
            for ((st, an), t) in strict.iter_mut().zip(any.iter_mut()).zip(&s.tmp) {
                *st = if first { *t } else { *st & t };
                *an |= t;
            }
            first = false;
        }
        // CNAME targets never cover by themselves; for `any` they count like names.
        for alias in names.asked().flat_map(|a| a.aliases.iter()) {
            if self.name_bits(set, alias, s) {
                for (an, t) in any.iter_mut().zip(&s.tmp) {
                    *an |= t;
                }
            }
        }
    }

    /// The rules with a pattern (this side) matching `name`, into `s.tmp`. False, with
    /// `s.tmp` unspecified, when none does.
    fn name_bits(&self, set: &RegexSet, name: &str, s: &mut Names) -> bool {
        if !fqdn::normalize_into(name, &mut s.buf) {
            return false;
        }
        s.hits.clear();
        s.hits.resize(set.len(), false);
        if !set.matches_read_at(&mut s.hits, &s.buf, 0) {
            return false;
        }
        s.tmp.fill(0);
        for (p, hit) in s.hits.iter().enumerate() {
            if *hit {
                set_bit(&mut s.tmp, self.fqdn_rule[p]);
            }
        }
        true
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
    /// The rules one name's patterns belong to.
    tmp: Vec<u64>,
}

/// Per-thread scratch reused across flows, so matching a flow does not allocate.
#[derive(Default)]
struct Scratch {
    /// Per slot (`SRC_CIDR`…): the rules whose key holds.
    bits: [Vec<u64>; 4],
    /// For the fqdn slots: the rules whose key matches any one name (see `fill_fqdn`).
    any: [Vec<u64>; 2],
    /// The candidates after the exact-value prefilter.
    base: Vec<u64>,
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
        self.first_match_noting(ctx).0
    }

    /// [`Self::first_match`], and whether the outcome would have been another had a rule's
    /// `fqdn` key needed to match only one of a side's names (aliases included) instead of
    /// covering all of them: a shared IP, several names on the flow, or a CNAME target alone.
    pub fn first_match_noting(&self, ctx: &FlowCtx<'_>) -> (Option<usize>, bool) {
        if self.rules.is_empty() {
            return (None, false);
        }
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut s) => self.first_match_with(ctx, &mut s),
            Err(_) => self.first_match_with(ctx, &mut Scratch::default()),
        })
    }

    fn first_match_with(&self, ctx: &FlowCtx<'_>, s: &mut Scratch) -> (Option<usize>, bool) {
        let p = &self.prefilter;
        let Scratch {
            bits,
            any,
            base,
            cand,
            names,
        } = s;
        base.clear();
        base.extend_from_slice(&p.all);
        p.verdict.filter(&(ctx.verdict as i32), base);
        p.direction.filter(&(ctx.direction as i32), base);
        p.source_namespace.filter(ctx.source.namespace(), base);
        p.destination_namespace
            .filter(ctx.destination.namespace(), base);
        match ctx.destination.port {
            Some(port) => p.destination_port.filter(&port, base),
            None => p.destination_port.filter(&0, base),
        }
        let words = base.len();
        names.tmp.clear();
        names.tmp.resize(words, 0);
        let mut looked = [false; 4];
        for (slot, constrained) in p.indexed.iter().enumerate() {
            // Only look up what some remaining candidate needs.
            if !constrained.iter().zip(base.iter()).any(|(c, k)| c & k != 0) {
                continue;
            }
            looked[slot] = true;
            let b = &mut bits[slot];
            b.clear();
            b.resize(words, 0);
            match slot {
                SRC_CIDR => self.source.fill_cidr(&ctx.source, b),
                DST_CIDR => self.destination.fill_cidr(&ctx.destination, b),
                SRC_FQDN | DST_FQDN => {
                    let (index, side, a) = if slot == SRC_FQDN {
                        (&self.source, &ctx.source, &mut any[0])
                    } else {
                        (&self.destination, &ctx.destination, &mut any[1])
                    };
                    a.clear();
                    a.resize(words, 0);
                    index.fill_fqdn(&side.names, b, a, names);
                }
                _ => {}
            }
        }
        let found = self.walk(ctx, base, cand, |slot| &bits[slot], &looked);
        // Would one name have been enough somewhere? Only then walk again to see whether
        // that changes the outcome.
        let differs = [(SRC_FQDN, 0), (DST_FQDN, 1)].iter().any(|&(slot, a)| {
            looked[slot]
                && bits[slot]
                    .iter()
                    .zip(&any[a])
                    .zip(&p.indexed[slot])
                    .zip(base.iter())
                    .any(|(((st, an), k), c)| (st ^ an) & k & c != 0)
        });
        if !differs {
            return (found, false);
        }
        let loose = self.walk(
            ctx,
            base,
            cand,
            |slot| match slot {
                SRC_FQDN => &any[0],
                DST_FQDN => &any[1],
                _ => &bits[slot],
            },
            &looked,
        );
        (found, loose != found)
    }

    /// The first candidate, in rule order, whose indexed keys hold by `bits` and whose other
    /// keys hold when tested.
    fn walk<'b>(
        &self,
        ctx: &FlowCtx<'_>,
        base: &[u64],
        cand: &mut Vec<u64>,
        bits: impl Fn(usize) -> &'b Vec<u64>,
        looked: &[bool; 4],
    ) -> Option<usize> {
        let p = &self.prefilter;
        cand.clear();
        cand.extend_from_slice(base);
        for (slot, constrained) in p.indexed.iter().enumerate() {
            if !looked[slot] {
                continue;
            }
            for ((c, k), h) in cand.iter_mut().zip(constrained).zip(bits(slot).iter()) {
                *c &= !k | h;
            }
        }
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
