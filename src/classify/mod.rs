//! The classifier (PRODUCT.md §4): a pure function of (flow, rule set, name cache).
//!
//! No I/O, no awaits, no allocation on the decision itself: the reason borrows from the flow or
//! the rule set.

pub mod explain;

use crate::flow::FlowCtx;
use crate::policy::PolicySet;
use crate::rules::glob::Glob;
use crate::rules::{Class, Rule, RuleSet};

/// Which step of §4 decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Attribution {
    /// The flow's own `policy_log` carried an expected tag.
    PolicyLog,
    /// The denying policy, named on the flow, carries an expected tag.
    DeniedBy,
    /// A matcher derived from an imported deny policy matched.
    Policy,
    /// A rule of the rule files matched.
    Rule,
    /// Nothing matched: unexpected.
    None,
}

impl Attribution {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Attribution::PolicyLog => "policy_log",
            Attribution::DeniedBy => "denied_by",
            Attribution::Policy => "policy",
            Attribution::Rule => "rule",
            Attribution::None => "none",
        }
    }
}

/// The outcome for one flow.
#[derive(Clone, Copy, Debug)]
pub struct Decision<'a> {
    /// Expected or unexpected.
    pub class: Class,
    /// The `reason` label value.
    pub reason: &'a str,
    /// The rule that decided, when a rule did.
    pub rule: Option<&'a Rule>,
    /// Which step decided.
    pub attribution: Attribution,
    /// A rule's `fqdn` key matched one of the flow's names but not all it had to cover (a
    /// shared IP, several names on the flow, a CNAME target alone), and that changed the
    /// outcome: counted in `hubble_noise_names_ambiguous_total`.
    pub ambiguous: bool,
}

/// Two decisions are equal when they say the same, by the same rule (the same rule of the same
/// set, not an equal one of another).
impl PartialEq for Decision<'_> {
    fn eq(&self, other: &Self) -> bool {
        let same_rule = match (self.rule, other.rule) {
            (Some(a), Some(b)) => std::ptr::eq(a, b),
            (None, None) => true,
            _ => false,
        };
        same_rule
            && self.class == other.class
            && self.reason == other.reason
            && self.attribution == other.attribution
            && self.ambiguous == other.ambiguous
    }
}

impl Eq for Decision<'_> {}

/// The reason given when nothing matched.
pub const UNMATCHED: &str = "unmatched";

/// Everything classification needs, built once per configuration (and swapped on reload).
#[derive(Debug, Default)]
pub struct Classifier {
    /// `classify.expected_log_tags`.
    pub expected_log_tags: Vec<Glob>,
    /// The rules (inline rules first, then rule files in order).
    pub rules: RuleSet,
    /// The imported policies of `classify.policy_files` (steps 2 and 3).
    pub policies: PolicySet,
}

impl Classifier {
    /// Whether a policy log value is listed in `expected_log_tags`.
    pub fn is_expected_tag(&self, tag: &str) -> bool {
        !tag.is_empty() && self.expected_log_tags.iter().any(|g| g.matches(tag))
    }

    /// Classifies one DROPPED or AUDIT flow. The first step that decides wins.
    pub fn classify<'a>(&'a self, ctx: &FlowCtx<'a>) -> Decision<'a> {
        // 1. policy_log: empty strings are "no value".
        if let Some(tag) = ctx.flow.policy_log.iter().find(|t| self.is_expected_tag(t)) {
            return Decision {
                class: Class::Expected,
                reason: tag,
                rule: None,
                attribution: Attribution::PolicyLog,
                ambiguous: false,
            };
        }
        // 2. denied_by: the policies the flow names, when all carry an expected tag.
        if let Some((_, tag)) = self.policies.denied_by(ctx) {
            return Decision {
                class: Class::Expected,
                reason: tag,
                rule: None,
                attribution: Attribution::DeniedBy,
                ambiguous: false,
            };
        }
        // 3. policy: matchers derived from deny rules of policies with an expected tag.
        if let Some((_, tag)) = self.policies.first_match(ctx) {
            return Decision {
                class: Class::Expected,
                reason: tag,
                rule: None,
                attribution: Attribution::Policy,
                ambiguous: false,
            };
        }
        // 4. rules, in order.
        let (hit, ambiguous) = self.rules.first_match_noting(ctx);
        if let Some(rule) = hit.and_then(|i| self.rules.rules().get(i)) {
            return Decision {
                class: rule.class,
                reason: &rule.reason,
                rule: Some(rule),
                attribution: Attribution::Rule,
                ambiguous,
            };
        }
        Decision {
            class: Class::Unexpected,
            reason: UNMATCHED,
            rule: None,
            attribution: Attribution::None,
            ambiguous,
        }
    }
}
