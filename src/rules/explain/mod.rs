//! Why a rule did or did not match a flow, key by key (`replay --explain`, `test --explain`).
//!
//! This tests one rule directly, like `RuleSet::rule_matches`, and is only used off the hot
//! path, so it may allocate.

mod fqdn;
mod text;

use text::{list, quoted};

use super::glob::Glob;
use super::labels::{Entity, LabelSelector};
use super::matcher::{CompiledMatch, SideMatch, in_force};
use super::port::PortSpec;
use crate::flow::{FlowCtx, Side};
use crate::output::{direction_name, drop_reason_label};

/// One key of a rule tested against a flow.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    /// The key, e.g. `destination.fqdn`.
    pub key: String,
    /// Whether it held.
    pub ok: bool,
    /// What was compared: `*.example.com ~ a.example.com (learned from DNS, ttl 212s left)`.
    pub detail: String,
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {}",
            if self.ok { "ok  " } else { "FAIL" },
            self.key,
            self.detail
        )
    }
}

impl std::fmt::Display for PortSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)?;
        } else {
            write!(f, "{}-{}", self.lo, self.hi)?;
        }
        match self.proto {
            Some(p) => write!(f, "/{}", p.as_str()),
            None => Ok(()),
        }
    }
}

impl std::fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(s) = &self.source {
            write!(f, "{s}:")?;
        }
        f.write_str(&self.key)?;
        match &self.value {
            Some(v) => write!(f, "={v}"),
            None => Ok(()),
        }
    }
}

struct Checks<'c> {
    out: &'c mut Vec<Check>,
}

impl Checks<'_> {
    fn push(&mut self, key: String, ok: bool, detail: String) {
        self.out.push(Check { key, ok, detail });
    }

    /// A list key: `want` written as a list, compared with the flow's value.
    fn one<T: std::fmt::Display>(
        &mut self,
        key: &str,
        want: &Option<Vec<T>>,
        got: &str,
        ok: impl Fn(&[T]) -> bool,
    ) {
        if let Some(w) = want {
            let ok = ok(w);
            let op = if ok { "~" } else { "!~" };
            self.push(key.into(), ok, format!("{} {op} {}", list(w), quoted(got)));
        }
    }
}

fn side_checks(c: &mut Checks<'_>, name: &str, m: &SideMatch, side: &Side<'_>, ctx: &FlowCtx<'_>) {
    let key = |k: &str| format!("{name}.{k}");
    c.one(
        &key("namespace"),
        &glob_strs(&m.namespace),
        side.namespace(),
        |_| {
            m.namespace
                .iter()
                .flatten()
                .any(|g| g.matches_value(side.namespace()))
        },
    );
    c.one(&key("pod"), &glob_strs(&m.pod), side.pod(), |_| {
        m.pod.iter().flatten().any(|g| g.matches_value(side.pod()))
    });
    if let Some(gs) = &m.workload {
        let (ok, detail) = workload(gs, side);
        c.push(key("workload"), ok, detail);
    }
    for sel in &m.labels {
        let ok = sel.matches(side.labels());
        let verb = if ok { "in" } else { "not in" };
        let who = crate::output::endpoint(side);
        c.push(key("labels"), ok, format!("{sel} {verb} labels of {who}"));
    }
    if let Some(es) = &m.entity {
        let (ok, detail) = entity(es, side);
        c.push(key("entity"), ok, detail);
    }
    if let Some(cs) = &m.cidr {
        let hit = side.ip.and_then(|ip| cs.iter().find(|c| c.contains(ip)));
        let ip = side.ip.map_or("(no IP)".to_string(), |ip| ip.to_string());
        match hit {
            Some(cidr) => c.push(key("cidr"), true, format!("{cidr} ~ {ip}")),
            None => c.push(key("cidr"), false, format!("{} !~ {ip}", list(cs))),
        }
    }
    if let Some(ps) = &m.fqdn {
        let (ok, detail) = fqdn::explain_fqdn(ps, side, ctx.time);
        c.push(key("fqdn"), ok, detail);
    }
    if let Some(ps) = &m.port {
        let ok = ps.iter().any(|p| p.matches(side.port, ctx.proto));
        let got = match side.port {
            Some(p) => format!("{p}/{}", ctx.proto.as_str()),
            None => "(no port)".into(),
        };
        let op = if ok { "~" } else { "!~" };
        c.push(key("port"), ok, format!("{} {op} {got}", list(ps)));
    }
}

/// `workload`: the globs against the names of the endpoint's workloads.
fn workload(gs: &[Glob], side: &Side<'_>) -> (bool, String) {
    let names: Vec<&str> = side
        .endpoint
        .map(|e| e.workloads.iter().map(|w| w.name.as_str()).collect())
        .unwrap_or_default();
    let ok = names.iter().any(|w| gs.iter().any(|g| g.matches_value(w)));
    let op = if ok { "~" } else { "!~" };
    let want = list(gs.iter().map(|g| g.as_str()));
    (ok, format!("{want} {op} {}", list(names)))
}

/// `entity`: the entities against the side's identity and `reserved:` labels.
fn entity(es: &[Entity], side: &Side<'_>) -> (bool, String) {
    let ok = es.iter().any(|e| e.matches(side));
    let labels: Vec<&str> = side
        .labels()
        .iter()
        .map(String::as_str)
        .filter(|l| l.starts_with("reserved:"))
        .collect();
    let op = if ok { "~" } else { "!~" };
    let want = list(es.iter().map(|e| e.name()));
    (
        ok,
        format!("{want} {op} identity {} {}", side.identity(), list(labels)),
    )
}

fn glob_strs(g: &Option<Vec<super::glob::Glob>>) -> Option<Vec<String>> {
    g.as_ref()
        .map(|v| v.iter().map(|g| g.as_str().to_string()).collect())
}

/// Every present key of rule `m`, in file order of the keys, tested against the flow; expiry
/// first when the rule has one.
pub(crate) fn explain(m: &CompiledMatch, expires: Option<f64>, ctx: &FlowCtx<'_>) -> Vec<Check> {
    let mut out = Vec::new();
    let mut c = Checks { out: &mut out };
    if let Some(e) = expires {
        let ok = in_force(Some(e), ctx.time);
        let day = crate::output::rfc3339(&pbjson_types::Timestamp {
            seconds: e.floor() as i64,
            nanos: 0,
        });
        let detail = match ctx.time {
            Some(_) if ok => format!("{day} is not before the flow's time"),
            Some(_) => format!("{day} is before the flow's time: the rule has expired"),
            None => format!("{day}, and the flow has no time"),
        };
        c.push("expires".into(), ok, detail);
    }
    let verdict = ctx.verdict.as_str_name();
    c.one(
        "verdict",
        &m.verdict
            .as_ref()
            .map(|v| v.iter().map(|x| x.as_str_name()).collect::<Vec<_>>()),
        verdict,
        |_| m.verdict.iter().flatten().any(|v| *v == ctx.verdict),
    );
    c.one(
        "direction",
        &m.direction
            .as_ref()
            .map(|v| v.iter().map(|d| direction_name(*d)).collect::<Vec<_>>()),
        direction_name(ctx.direction),
        |_| m.direction.iter().flatten().any(|d| *d == ctx.direction),
    );
    c.one(
        "drop_reason",
        &m.drop_reason
            .as_ref()
            .map(|v| v.iter().map(|d| d.as_str_name()).collect::<Vec<_>>()),
        &drop_reason_label(ctx.drop_reason),
        |_| {
            m.drop_reason
                .iter()
                .flatten()
                .any(|d| *d == ctx.drop_reason)
        },
    );
    if let Some(tags) = &m.policy_log {
        let ok = ctx
            .flow
            .policy_log
            .iter()
            .any(|t| !t.is_empty() && tags.contains(t));
        c.push(
            "policy_log".into(),
            ok,
            format!(
                "{} {} {}",
                list(tags),
                if ok { "~" } else { "!~" },
                list(ctx.flow.policy_log.iter().filter(|t| !t.is_empty()))
            ),
        );
    }
    c.one("node", &glob_strs(&m.node), ctx.node, |_| {
        m.node.iter().flatten().any(|g| g.matches_value(ctx.node))
    });
    side_checks(&mut c, "source", &m.source, &ctx.source, ctx);
    side_checks(&mut c, "destination", &m.destination, &ctx.destination, ctx);
    out
}
