//! The rule file (PRODUCT.md §5): parsing with spans, validation, and compiled matchers.
//!
//! INTERFACE CONTRACT (the rest of the crate codes against exactly this):
//!
//! - `RuleSource { path, text, inline }`: one TOML document. `inline = true` for `config.toml`
//!   itself, whose `[[rule]]` tables are read and whose other top-level keys are ignored (the
//!   config loader validates them); `inline = false` for a rule file, where any top-level key
//!   other than `rule` is an error.
//! - `RuleSet::load(&[RuleSource]) -> Result<RuleSet, RuleErrors>`: all sources, in order, into
//!   one ordered list; nothing is partially loaded.
//! - `RuleSet::first_match(&FlowCtx) -> Option<usize>`: index of the first rule that matches;
//!   a rule whose `expires` is before `ctx.time` (or any rule with `expires` when `ctx.time` is
//!   `None`) does not match.
//! - `RuleSet::rules() -> &[Rule]`: metadata of each rule, in order.
//! - `glob::Glob`: `*` globs (also used for `classify.expected_log_tags`).

pub mod cidr;
pub mod endpoint;
mod expires;
pub mod explain;
mod file;
pub mod fqdn;
pub mod glob;
pub mod labels;
mod load;
pub use load::{MAX_FILE_BYTES, MAX_NAME, MAX_PATTERN, MAX_RULES};
mod matcher;
pub mod port;

use std::collections::HashMap;
use std::path::PathBuf;

use crate::api::flow::Verdict;
use crate::flow::FlowCtx;
pub use explain::Check;

/// The class a rule assigns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// Blocked on purpose.
    Expected,
    /// Needs a look.
    Unexpected,
}

impl Class {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Expected => "expected",
            Class::Unexpected => "unexpected",
        }
    }
}

/// One TOML document that holds rules.
#[derive(Clone, Debug)]
pub struct RuleSource {
    /// Path as given (used in error messages).
    pub path: PathBuf,
    /// The document text.
    pub text: String,
    /// True for `config.toml` (only `[[rule]]` is read), false for a rule file.
    pub inline: bool,
}

/// A rule's metadata.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Unique name, `[a-z0-9._-]+`.
    pub name: String,
    /// The class it assigns.
    pub class: Class,
    /// The `reason` label value (defaults to the name).
    pub reason: String,
    /// Owner (required for expected rules).
    pub owner: Option<String>,
    /// Comment (required for expected rules).
    pub comment: Option<String>,
    /// Expiry in Unix seconds.
    pub expires: Option<f64>,
    /// The file it came from and its line.
    pub file: PathBuf,
    /// 1-based line of its `[[rule]]` header.
    pub line: usize,
}

/// One error in a rule document: file, line, column, key and message.
pub type RuleError = crate::located::LocatedError;

/// Every error found while loading.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct RuleErrors(pub Vec<RuleError>);

/// The compiled rules.
#[derive(Debug, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    matcher: matcher::Matcher,
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
        let matcher = matcher::Matcher::new(matchers, expires).map_err(|m| {
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

    /// Rule `index`'s keys (and expiry) tested one by one against the flow, for `--explain`.
    /// The rule matches exactly when every check is ok.
    pub fn explain(&self, index: usize, ctx: &FlowCtx<'_>) -> Vec<Check> {
        self.matcher.explain(index, ctx)
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

/// Parses a verdict name as used in rule files.
pub fn parse_verdict(s: &str) -> Option<Verdict> {
    Verdict::from_str_name(s)
}

#[cfg(test)]
mod tests;
