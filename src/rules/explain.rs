//! Why a rule did or did not match a flow, key by key (`replay --explain`, `test --explain`).
//!
//! This tests one rule directly, like `RuleSet::rule_matches`, and is only used off the hot
//! path, so it may allocate.

use std::fmt::Write as _;

use super::fqdn::FqdnPattern;
use super::labels::LabelSelector;
use super::matcher::{CompiledMatch, SideMatch, in_force};
use super::port::PortSpec;
use crate::flow::{FlowCtx, Side};
use crate::names::{display_name, same_name};
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
        let (ok, detail) = explain_fqdn(ps, side, ctx.time);
        c.push(key("fqdn"), ok, detail);
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

/// A Unix time as RFC 3339 (whole seconds), for `--explain`.
fn when(t: f64) -> String {
    crate::output::rfc3339(&pbjson_types::Timestamp {
        // `as` saturates: a time from the wire at the ends of the range prints, never panics.
        seconds: t.floor() as i64,
        nanos: 0,
    })
}

/// Why an `fqdn` key did or did not cover a side (PRODUCT.md §5): each name it had to cover
/// and where it came from; what kept a name from counting (another name behind a shared IP, a
/// CNAME target standing alone, an untrusted server, an expired TTL).
fn explain_fqdn(ps: &[FqdnPattern], side: &Side<'_>, time: Option<f64>) -> (bool, String) {
    let n = &side.names;
    let cover = |name: &str| ps.iter().find(|p| p.matches(name)).map(|p| p.display());
    let pats = list(ps.iter().map(|p| p.display()));
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    let asked: Vec<_> = n.asked().collect();
    for a in &asked {
        let name = display_name(&a.name);
        let left = time.map_or(0.0, |t| (a.expires - t).max(0.0));
        let how = if asked.len() > 1 {
            format!("asked {}, ttl {left:.0}s left", when(a.asked_at))
        } else {
            format!("ttl {left:.0}s left")
        };
        match cover(&a.name) {
            Some(p) => ok.push(format!("{p} ~ {name} (learned from DNS, {how})")),
            None => {
                let mut why = format!("{name} (learned from DNS, {how}) is not covered");
                if let Some((alias, p)) = a.aliases.iter().find_map(|x| cover(x).map(|p| (x, p))) {
                    let _ = write!(
                        why,
                        "; its CNAME target {} ~ {p} is an alias, which never covers by itself",
                        display_name(alias)
                    );
                }
                bad.push(why);
            }
        }
    }
    if asked.len() > 1 && !bad.is_empty() {
        bad.insert(
            0,
            format!(
                "the pod asked for {} names that resolved to {}: every one must be covered",
                asked.len(),
                side.ip.map_or("this IP".to_string(), |ip| ip.to_string())
            ),
        );
    }
    if let Some(q) = n.query {
        match cover(q) {
            Some(p) => ok.push(format!("{p} ~ {} (the DNS query)", display_name(q))),
            None => bad.push(format!(
                "{} (the DNS query) is not covered",
                display_name(q)
            )),
        }
    }
    for f in n.flow.iter().filter(|f| !f.is_empty()) {
        if asked.iter().any(|a| same_name(&a.name, f)) {
            continue; // said above
        }
        if let Some(a) = asked.iter().find(|a| a.has_alias(f)) {
            ok.push(format!(
                "{} (on the flow) is a CNAME target of {}",
                display_name(f),
                display_name(&a.name)
            ));
            continue;
        }
        match cover(f) {
            Some(p) => ok.push(format!("{p} ~ {} (name on the flow)", display_name(f))),
            None => bad.push(format!(
                "{} (name on the flow) is not covered",
                display_name(f)
            )),
        }
    }
    let any = !asked.is_empty() || n.query.is_some() || n.flow.iter().any(|f| !f.is_empty());
    if any && bad.is_empty() {
        return (true, ok.join(", "));
    }
    if !any {
        let ip = side.ip.map_or("it".to_string(), |ip| ip.to_string());
        bad.push(format!("no name known for {ip}"));
        if time.is_none() {
            bad.push("the flow has no time to judge learned names by".into());
        }
        if let (Some(l), Some(t)) = (n.learned, time) {
            for a in l.iter().filter(|a| !a.live_at(t)) {
                bad.push(format!(
                    "{} was learned from DNS but its answer expired {:.0}s before the flow \
                     (asked {}, ttl {:.0}s)",
                    display_name(&a.name),
                    t - a.expires,
                    when(a.asked_at),
                    a.expires - a.asked_at
                ));
            }
        }
    }
    if let Some(i) = n.ignored {
        bad.push(format!(
            "the answer for {} from {} (at {}) was not learned: not a trusted DNS server \
             (dns.servers)",
            display_name(&i.name),
            i.server,
            when(i.at)
        ));
    }
    let mut detail = format!("{pats} !~ {}", bad.join("; "));
    if !ok.is_empty() {
        let _ = write!(detail, "; covered: {}", ok.join(", "));
    }
    (false, detail)
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
