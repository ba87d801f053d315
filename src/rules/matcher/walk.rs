//! The first rule that matches a flow: the prefilter's candidates, narrowed by the side
//! indexes, walked in rule order testing the remaining keys; and, when a key matched only some
//! of a side's names, whether one name would have changed the outcome.

use std::cell::RefCell;

use super::bits::{DST_CIDR, DST_FQDN, SRC_CIDR, SRC_FQDN};
use super::prefilter::Prefilter;
use super::semantics::{CompiledMatch, SideMatch, in_force};
use super::side_index::{Names, SideIndex};
use crate::flow::FlowCtx;

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

impl Matcher {
    /// Builds the indexes.
    pub(crate) fn new(
        rules: Vec<CompiledMatch>,
        expires: Vec<Option<f64>>,
    ) -> Result<Self, String> {
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
    pub(crate) fn matches_direct(&self, i: usize, ctx: &FlowCtx<'_>) -> bool {
        match (self.rules.get(i), self.expires.get(i)) {
            (Some(r), Some(e)) => in_force(*e, ctx.time) && r.matches_direct(ctx),
            _ => false,
        }
    }

    /// Rule `i`'s compiled match and expiry (for `--explain`), if there is such a rule.
    pub(crate) fn rule(&self, i: usize) -> Option<(&CompiledMatch, Option<f64>)> {
        Some((self.rules.get(i)?, *self.expires.get(i)?))
    }

    /// The first rule that matches, using the indexes.
    pub(crate) fn first_match(&self, ctx: &FlowCtx<'_>) -> Option<usize> {
        self.first_match_noting(ctx).0
    }

    /// [`Self::first_match`], and whether the outcome would have been another had a rule's
    /// `fqdn` key needed to match only one of a side's names (aliases included) instead of
    /// covering all of them: a shared IP, several names on the flow, or a CNAME target alone.
    pub(crate) fn first_match_noting(&self, ctx: &FlowCtx<'_>) -> (Option<usize>, bool) {
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
        p.candidates(ctx, base);
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
