//! Imported CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy manifests (PRODUCT.md §4 steps
//! 2 and 3, §6 `classify.policy_files`). See docs/POLICIES.md.
//!
//! - [`yaml`]: the manifest shape and the multi-document / `kind: List` reader.
//! - [`selector`]: endpoint selectors onto the rule engine's label selectors.
//! - [`compile`]: deny rules into step-3 matchers.
//!
//! Loading is pure (text in, [`PolicySet`] out); reading files is the caller's job.

pub mod compile;
pub mod selector;
pub mod yaml;

use std::collections::HashMap;
use std::path::PathBuf;

use crate::flow::FlowCtx;
use crate::located::LocatedError;
use compile::{DenyMatcher, Local, compile_rule};

/// The two kinds of policy we import.
pub const CNP: &str = "CiliumNetworkPolicy";
/// The clusterwide kind.
pub const CCNP: &str = "CiliumClusterwideNetworkPolicy";

/// One policy file's text.
#[derive(Clone, Debug)]
pub struct PolicySource {
    /// The path (for messages).
    pub path: PathBuf,
    /// Its YAML text.
    pub text: String,
}

/// What one spec (`spec` or `specs[i]`) of an imported policy carries.
#[derive(Clone, Debug)]
pub struct SpecInfo {
    /// `log.value` ("" when absent).
    pub log: String,
    /// Whether `log` is listed in `expected_log_tags`.
    pub expected: bool,
    /// Number of `egressDeny` + `ingressDeny` rules.
    pub deny_rules: usize,
    /// Number of those rules that became step-3 matchers.
    pub matchers: usize,
}

/// An imported policy.
#[derive(Clone, Debug)]
pub struct Policy {
    /// [`CNP`] or [`CCNP`].
    pub kind: &'static str,
    /// Namespace ("" for clusterwide).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The file it came from.
    pub file: PathBuf,
    /// 1-based line where its document starts.
    pub line: usize,
    /// Its specs, in order.
    pub specs: Vec<SpecInfo>,
}

impl Policy {
    /// `namespace/name`, or `name` for clusterwide policies.
    pub fn display_name(&self) -> String {
        if self.namespace.is_empty() {
            self.name.clone()
        } else {
            format!("{}/{}", self.namespace, self.name)
        }
    }

    /// The tag for step 2: every spec that has deny rules (or, without any, every spec) must
    /// carry an expected log value; then the first one. Otherwise `None`.
    pub fn denied_by_tag(&self) -> Option<&str> {
        let deny: Vec<&SpecInfo> = self.specs.iter().filter(|s| s.deny_rules > 0).collect();
        let specs = if deny.is_empty() {
            self.specs.iter().collect()
        } else {
            deny
        };
        let all = !specs.is_empty() && specs.iter().all(|s| s.expected);
        all.then(|| specs.first().map(|s| s.log.as_str())).flatten()
    }
}

/// A step-3 matcher and what it decides.
#[derive(Debug)]
struct Derived {
    policy: usize,
    tag: String,
    matcher: DenyMatcher,
}

/// Every imported policy, the name index for step 2 and the matchers for step 3.
#[derive(Debug, Default)]
pub struct PolicySet {
    policies: Vec<Policy>,
    by_name: HashMap<(String, String), Vec<usize>>,
    derived: Vec<Derived>,
    warnings: Vec<LocatedError>,
}

mod build;

impl PolicySet {
    /// Parses and compiles every source in order. `expected` says whether a log value is an
    /// expected tag. Syntax and type errors, nameless and duplicate policies are errors (nothing
    /// is loaded); rules that cannot be used are skipped with a warning.
    pub fn load(
        sources: &[PolicySource],
        expected: &dyn Fn(&str) -> bool,
    ) -> Result<PolicySet, Vec<LocatedError>> {
        build::load(sources, expected)
    }

    /// The imported policies, in file order.
    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    /// What was skipped or ignored while importing.
    pub fn warnings(&self) -> &[LocatedError] {
        &self.warnings
    }

    /// Number of step-3 matchers.
    pub fn matcher_count(&self) -> usize {
        self.derived.len()
    }

    /// Whether any imported policy carries this log value.
    pub fn carries_tag(&self, matches: impl Fn(&str) -> bool) -> bool {
        self.policies
            .iter()
            .flat_map(|p| &p.specs)
            .any(|s| !s.log.is_empty() && matches(&s.log))
    }

    fn find(&self, kind: &str, namespace: &str, name: &str) -> Option<&Policy> {
        self.by_name
            .get(&(namespace.to_owned(), name.to_owned()))?
            .iter()
            .map(|i| &self.policies[*i])
            .find(|p| kind.is_empty() || p.kind.eq_ignore_ascii_case(kind))
    }

    /// Step 2: when the flow names its denying policies, every one is imported and carries an
    /// expected tag → `(policy index, tag)` of the first. Otherwise `None`.
    pub fn denied_by<'a>(&'a self, ctx: &FlowCtx<'_>) -> Option<(&'a Policy, &'a str)> {
        let f = ctx.flow;
        let named: Vec<_> = f
            .egress_denied_by
            .iter()
            .chain(&f.ingress_denied_by)
            .collect();
        let mut first = None;
        for p in named {
            let policy = self.find(&p.kind, &p.namespace, &p.name)?;
            let tag = policy.denied_by_tag()?;
            first.get_or_insert((policy, tag));
        }
        first
    }

    /// Step 3: the first matcher (in import order) that matches → `(policy, tag)`.
    pub fn first_match<'a>(&'a self, ctx: &FlowCtx<'_>) -> Option<(&'a Policy, &'a str)> {
        self.derived
            .iter()
            .find(|d| d.matcher.matches(ctx))
            .map(|d| (&self.policies[d.policy], d.tag.as_str()))
    }
}

#[cfg(test)]
mod import_tests;
#[cfg(test)]
mod tests;
