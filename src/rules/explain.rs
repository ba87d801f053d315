//! Why a rule did or did not match a flow, key by key (`replay --explain`, `test --explain`).
//!
//! This tests one rule directly, like `RuleSet::rule_matches`, and is only used off the hot
//! path, so it may allocate.

use std::fmt::Write as _;

use super::labels::LabelSelector;
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

fn list<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let v: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
    format!("[{}]", v.join(", "))
}

fn quoted(s: &str) -> String {
    if s.is_empty() {
        "(none)".into()
    } else {
        format!("{s:?}")
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
        let names: Vec<&str> = side
            .endpoint
            .map(|e| e.workloads.iter().map(|w| w.name.as_str()).collect())
            .unwrap_or_default();
        let ok = names.iter().any(|w| gs.iter().any(|g| g.matches_value(w)));
        let op = if ok { "~" } else { "!~" };
        c.push(
            key("workload"),
            ok,
            format!(
                "{} {op} {}",
                list(gs.iter().map(|g| g.as_str())),
                list(names)
            ),
        );
    }
    for sel in &m.labels {
        let ok = sel.matches(side.labels());
        c.push(
            key("labels"),
            ok,
            format!(
                "{sel} {} labels of {}",
                if ok { "in" } else { "not in" },
                crate::output::endpoint(side)
            ),
        );
    }
    if let Some(es) = &m.entity {
        let ok = es.iter().any(|e| e.matches(side));
        let labels: Vec<&str> = side
            .labels()
            .iter()
            .map(String::as_str)
            .filter(|l| l.starts_with("reserved:"))
            .collect();
        c.push(
            key("entity"),
            ok,
            format!(
                "{} {} identity {} {}",
                list(es.iter().map(|e| e.name())),
                if ok { "~" } else { "!~" },
                side.identity(),
                list(labels)
            ),
        );
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
        let mut hit = None;
        for (i, n) in side.names.iter().enumerate() {
            if let Some(p) = ps.iter().find(|p| p.matches(n)) {
                hit = Some((p, i, *n));
                break;
            }
        }
        match hit {
            Some((p, i, n)) => {
                let mut d = format!(
                    "{} ~ {}",
                    p.as_str().trim_end_matches('.'),
                    crate::dns::normalize(n)
                );
                match (side.learned(i), ctx.time) {
                    (Some(exp), Some(t)) => {
                        let _ = write!(
                            d,
                            " (learned from DNS, ttl {:.0}s left)",
                            (exp - t).max(0.0)
                        );
                    }
                    _ => d.push_str(" (name on the flow)"),
                }
                c.push(key("fqdn"), true, d);
            }
            None => {
                let known = if side.names.is_empty() {
                    let ip = side.ip.map_or("it".to_string(), |ip| ip.to_string());
                    format!("no name known for {ip}")
                } else {
                    list(side.names.iter().map(|n| crate::dns::normalize(n)))
                };
                c.push(
                    key("fqdn"),
                    false,
                    format!(
                        "{} !~ {known}",
                        list(ps.iter().map(|p| p.as_str().trim_end_matches('.')))
                    ),
                );
            }
        }
    }
    if let Some(ps) = &m.port {
        let ok = ps.iter().any(|p| p.matches(side.port, ctx.proto));
        let got = match side.port {
            Some(p) => format!("{p}/{}", ctx.proto.as_str()),
            None => "(no port)".into(),
        };
        c.push(
            key("port"),
            ok,
            format!("{} {} {got}", list(ps), if ok { "~" } else { "!~" }),
        );
    }
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
