//! Indexes over the keys that take exact values (verdict, direction, literal namespaces, single
//! destination ports): the rules a flow can match at all, before anything is tested.

use std::collections::HashMap;

use super::super::glob::Glob;
use super::bits::set_bit;
use super::semantics::CompiledMatch;
use crate::flow::FlowCtx;

/// For one exactly-indexable key: which rules constrain it, and for each value the rules it
/// satisfies. A rule is a candidate for a flow only if, for every such key it constrains, the
/// flow's value is among its values.
#[derive(Debug, Default)]
pub(super) struct ExactIndex<K: std::hash::Hash + Eq> {
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
pub(super) struct Prefilter {
    all: Vec<u64>,
    verdict: ExactIndex<i32>,
    direction: ExactIndex<i32>,
    source_namespace: ExactIndex<Box<str>>,
    destination_namespace: ExactIndex<Box<str>>,
    destination_port: ExactIndex<u16>,
    /// Per slot (`SRC_CIDR`…): the rules that constrain it.
    pub(super) indexed: [Vec<u64>; 4],
}

/// The exact values of a glob list, if none of its globs has a `*`.
fn literal_globs(g: &Option<Vec<Glob>>) -> Option<Vec<Box<str>>> {
    let g = g.as_ref()?;
    g.iter()
        .all(|g| !g.as_str().contains('*'))
        .then(|| g.iter().map(|g| g.as_str().into()).collect())
}

impl Prefilter {
    /// The rules whose exactly-valued keys hold for the flow, into `base`.
    pub(super) fn candidates(&self, ctx: &FlowCtx<'_>, base: &mut Vec<u64>) {
        base.clear();
        base.extend_from_slice(&self.all);
        self.verdict.filter(&(ctx.verdict as i32), base);
        self.direction.filter(&(ctx.direction as i32), base);
        self.source_namespace.filter(ctx.source.namespace(), base);
        self.destination_namespace
            .filter(ctx.destination.namespace(), base);
        self.destination_port
            .filter(&ctx.destination.port.unwrap_or(0), base);
    }

    pub(super) fn build(rules: &[CompiledMatch]) -> Self {
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
