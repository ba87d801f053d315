//! Every imported policy, the name index for step 2 and the matchers for step 3.

use std::collections::HashMap;

use super::build::{self, Derived};
use super::model::{Policy, PolicySource};
use crate::flow::FlowCtx;
use crate::located::LocatedError;

/// Every imported policy, the name index for step 2 and the matchers for step 3.
#[derive(Debug, Default)]
pub struct PolicySet {
    policies: Vec<Policy>,
    by_name: HashMap<(String, String), Vec<usize>>,
    derived: Vec<Derived>,
    warnings: Vec<LocatedError>,
}

impl PolicySet {
    /// Parses and compiles every source in order. `expected` says whether a log value is an
    /// expected tag. Syntax and type errors, nameless and duplicate policies are errors (nothing
    /// is loaded); rules that cannot be used are skipped with a warning.
    pub fn load(
        sources: &[PolicySource],
        expected: &dyn Fn(&str) -> bool,
    ) -> Result<PolicySet, Vec<LocatedError>> {
        let b = build::load(sources, expected)?;
        Ok(PolicySet {
            policies: b.policies,
            by_name: b.by_name,
            derived: b.derived,
            warnings: b.warnings,
        })
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
