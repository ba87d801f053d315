//! The loaded rules in evaluation order with their compiled matcher: load every source at once,
//! find the first rule a flow matches, explain one rule against a flow.

use std::collections::HashMap;

use super::explain::{self, Check};
use super::load;
use super::matcher::{self, Matcher};
use super::rule::{Rule, RuleError, RuleErrors, RuleSource};
use crate::flow::FlowCtx;

/// The compiled rules.
#[derive(Debug, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    matcher: Matcher,
}

impl RuleSet {
    /// No rules.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Parses, validates and compiles every source, in order. Every error of every source is
    /// returned; nothing is partially loaded.
    pub fn load(sources: &[RuleSource]) -> Result<RuleSet, RuleErrors> {
        let mut errors = Vec::new();
        let mut seen = HashMap::new();
        let mut loaded = Vec::new();
        for src in sources {
            loaded.extend(load::load_source(src, &mut seen, &mut errors));
        }
        if !errors.is_empty() {
            return Err(RuleErrors(errors));
        }
        let (rules, (matchers, expires)): (Vec<Rule>, (Vec<_>, Vec<_>)) = loaded
            .into_iter()
            .map(|l| {
                let e = l.rule.expires;
                (l.rule, (l.matcher, e))
            })
            .unzip();
        let matcher = Matcher::new(matchers, expires).map_err(|m| {
            // The patterns of every source are compiled together: name them all.
            let file = sources.first().map(|s| s.path.clone()).unwrap_or_default();
            let all: Vec<String> = sources
                .iter()
                .map(|s| s.path.display().to_string())
                .collect();
            RuleErrors(vec![RuleError {
                file,
                line: 0,
                column: 0,
                key: "rule".into(),
                message: format!("{m} (rules of {})", all.join(", ")),
            }])
        })?;
        Ok(RuleSet { rules, matcher })
    }

    /// The rules in evaluation order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The index of the first rule that matches the flow (using the compiled indexes).
    pub fn first_match(&self, ctx: &FlowCtx<'_>) -> Option<usize> {
        self.matcher.first_match(ctx)
    }

    /// [`Self::first_match`], and whether the outcome would have been another had an `fqdn`
    /// key needed only one of a side's names (aliases included) instead of covering them all.
    pub fn first_match_noting(&self, ctx: &FlowCtx<'_>) -> (Option<usize>, bool) {
        self.matcher.first_match_noting(ctx)
    }

    /// Whether rule `index` matches the flow, tested directly against that rule alone (no
    /// index, no earlier rules): for `--explain` and as the reference for `first_match`.
    /// Out-of-range indexes never match.
    pub fn rule_matches(&self, index: usize, ctx: &FlowCtx<'_>) -> bool {
        self.matcher.matches_direct(index, ctx)
    }

    /// The position of `rule` in [`RuleSet::rules`], when it is one of this set's rules (the
    /// same rule, not an equal one).
    /// Constant time: the rules are one slice, so the position follows from the address.
    pub fn index_of(&self, rule: &Rule) -> Option<usize> {
        let rules = self.rules();
        let size = std::mem::size_of::<Rule>().max(1);
        let offset = (rule as *const Rule as usize).checked_sub(rules.as_ptr() as usize)?;
        let i = offset / size;
        rules
            .get(i)
            .is_some_and(|r| std::ptr::eq(r, rule))
            .then_some(i)
    }

    /// Rule `index`'s keys (and expiry) tested one by one against the flow, for `--explain`.
    /// The rule matches exactly when every check is ok.
    pub fn explain(&self, index: usize, ctx: &FlowCtx<'_>) -> Vec<Check> {
        match self.matcher.rule(index) {
            Some((m, expires)) => explain::explain(m, expires, ctx),
            None => Vec::new(),
        }
    }

    /// The rule that comes closest to matching: the most keys that hold (then the earliest),
    /// with its checks. `None` when there are no rules.
    pub fn nearest(&self, ctx: &FlowCtx<'_>) -> Option<(usize, Vec<Check>)> {
        let mut best: Option<(usize, Vec<Check>, f64)> = None;
        for i in 0..self.rules.len() {
            let checks = self.explain(i, ctx);
            let ok = checks.iter().filter(|c| c.ok).count() as f64;
            let score = ok / checks.len().max(1) as f64;
            if best.as_ref().is_none_or(|(_, _, s)| score > *s) {
                best = Some((i, checks, score));
            }
        }
        best.map(|(i, c, _)| (i, c))
    }

    /// Whether rule `index` has expired at `time` (Unix seconds); `None` time counts as expired
    /// for a rule with `expires`. False for rules without `expires` and out-of-range indexes.
    pub fn is_expired(&self, index: usize, time: Option<f64>) -> bool {
        self.rules
            .get(index)
            .is_some_and(|r| r.expires.is_some() && !matcher::in_force(r.expires, time))
    }
}
