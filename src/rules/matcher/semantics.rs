//! What each key of a compiled rule means for a flow, tested directly: the reference the
//! indexes are held to, and what `--explain` and the policy matchers use.

use super::super::cidr::Cidr;
use super::super::fqdn::{self, FqdnPattern};
use super::super::glob::Glob;
use super::super::labels::{Entity, LabelSelector};
use super::super::port::PortSpec;
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
    pub(super) fn scalar_matches(&self, ctx: &FlowCtx<'_>) -> bool {
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
    pub(crate) fn matches_direct(&self, ctx: &FlowCtx<'_>) -> bool {
        self.scalar_matches(ctx)
            && self.source.direct_matches(&ctx.source)
            && self.destination.direct_matches(&ctx.destination)
    }

    /// Per present key: whether it is a catch-all. Empty when nothing is constrained.
    pub(crate) fn catch_alls(&self) -> Vec<bool> {
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

/// Whether a rule with this expiry is in force at the flow's time.
pub(crate) fn in_force(expires: Option<f64>, time: Option<f64>) -> bool {
    match (expires, time) {
        (None, _) => true,
        (Some(e), Some(t)) => t <= e,
        (Some(_), None) => false,
    }
}
