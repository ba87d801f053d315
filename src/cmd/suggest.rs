//! `hubble-noise suggest`: a draft rule file for the unexpected flows of recordings
//! (PRODUCT.md §7).
//!
//! Flows are grouped by direction, source (namespace and workload, or pod; an entity; an IP),
//! destination (a name when one is known, from the flow or learned from DNS; else the same as the
//! source, with world IPs folded into their /24 or /64), port and protocol. Each group becomes
//! one rule, most hits first, commented with its hits, first and last time and an example uuid,
//! with `owner` and `comment` to fill in and `expires` ahead. The output passes `check` as is.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::ops::ControlFlow;
use std::process::ExitCode;

use anyhow::Context as _;
use serde::Serialize;

use crate::cli::SuggestArgs;
use crate::flow::{FlowCtx, Side};
use crate::load;
use crate::output::{direction_name, rfc3339};
use crate::pipeline::{Outcome, Pipeline};
use crate::rules::Class;
use crate::rules::fqdn::FqdnPattern;
use crate::source::file;

/// How one side of a flow is matched by a suggested rule.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SideKey {
    /// A pod: its namespace and workload, or its name when it has no workload.
    Pod {
        /// Namespace.
        namespace: String,
        /// `Some` workload name, else the pod is matched by name.
        workload: Option<String>,
        /// Pod name (used when there is no workload).
        pod: String,
    },
    /// A reserved entity (world, host, …), with a CIDR for world IPs.
    Entity {
        /// Entity name as rules write it.
        entity: &'static str,
        /// The folded network of a world IP.
        cidr: Option<String>,
    },
    /// A destination known by name: every name an `fqdn` key must cover for it (usually one).
    Name {
        /// The names (lower case, no trailing dot), sorted.
        names: Vec<String>,
        /// `world` when the side is the world entity.
        entity: Option<&'static str>,
    },
    /// A bare IP.
    Ip(String),
    /// Nothing to match on.
    Unknown,
}

/// Reserved identities by number, as rules name them.
const RESERVED_IDS: [(u32, &str); 10] = [
    (1, "host"),
    (2, "world"),
    (3, "unmanaged"),
    (4, "health"),
    (5, "init"),
    (6, "remote-node"),
    (7, "kube-apiserver"),
    (8, "ingress"),
    (9, "world"),
    (10, "world"),
];

fn entity_of(side: &Side<'_>) -> Option<&'static str> {
    if let Some((_, e)) = RESERVED_IDS.iter().find(|(id, _)| *id == side.identity()) {
        return Some(e);
    }
    side.labels().iter().find_map(|l| {
        let name = l.strip_prefix("reserved:")?;
        let name = name.split('=').next().unwrap_or(name);
        match name {
            "world" | "world-ipv4" | "world-ipv6" => Some("world"),
            other => RESERVED_IDS
                .iter()
                .find(|(_, e)| *e == other)
                .map(|(_, e)| *e),
        }
    })
}

/// The /24 (IPv4) or /64 (IPv6) network of an address.
pub fn fold(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{net}/64")
        }
    }
}

fn exact(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(_) => format!("{ip}/32"),
        IpAddr::V6(_) => format!("{ip}/128"),
    }
}

/// The key of one side. `names` are used for the destination only.
pub fn side_key(side: &Side<'_>, use_names: bool) -> SideKey {
    let entity = entity_of(side);
    if !side.pod().is_empty() {
        let w = side.workload();
        return SideKey::Pod {
            namespace: side.namespace().to_string(),
            workload: (!w.is_empty()).then(|| w.to_string()),
            pod: side.pod().to_string(),
        };
    }
    if use_names {
        // Every name the rule must cover (a shared IP has several); when one of them cannot
        // be written as a pattern, the IP is matched instead.
        let names: BTreeSet<String> = side
            .names
            .required()
            .map(crate::names::display_name)
            .collect();
        if !names.is_empty() && names.iter().all(|n| FqdnPattern::new(n).is_ok()) {
            return SideKey::Name {
                names: names.into_iter().collect(),
                entity: entity.filter(|e| *e == "world"),
            };
        }
    }
    match (entity, side.ip) {
        (Some("world"), Some(ip)) => SideKey::Entity {
            entity: "world",
            cidr: Some(fold(ip)),
        },
        (Some(e), _) => SideKey::Entity {
            entity: e,
            cidr: None,
        },
        (None, Some(ip)) => SideKey::Ip(exact(ip)),
        (None, None) => SideKey::Unknown,
    }
}

/// One group of unexpected flows.
#[derive(Debug)]
struct Group {
    hits: u64,
    first: Option<f64>,
    last: Option<f64>,
    uuid: String,
    verdicts: BTreeSet<&'static str>,
    order: usize,
}

type GroupKey = (&'static str, SideKey, SideKey, Option<String>);

fn port_of(ctx: &FlowCtx<'_>) -> Option<String> {
    ctx.destination
        .port
        .map(|p| format!("{p}/{}", ctx.proto.as_str()))
}

/// Runs `suggest`: prints the rule file on stdout and a summary on stderr.
pub fn run(args: &SuggestArgs) -> anyhow::Result<ExitCode> {
    let loaded = load::config(args.config.config.as_deref())?;
    let classifier = load::classifier(&loaded).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut pipeline = Pipeline::new(&loaded.config);
    let mut groups: HashMap<GroupKey, Group> = HashMap::new();
    let mut unreadable = 0u64;
    for path in &args.files {
        let mut reader = file::open(path).with_context(|| format!("{}", path.display()))?;
        file::for_each_response(path, &mut reader, |_, item| {
            let resp = match item {
                Ok(file::Line::Response(r)) => r,
                Ok(file::Line::NotCounted) => return ControlFlow::Continue(()),
                Err(e) => {
                    unreadable += 1;
                    eprintln!("{e}");
                    return ControlFlow::Continue(());
                }
            };
            if let Outcome::Counted { ctx, decision } = pipeline.process(&resp, &classifier) {
                if decision.class == Class::Unexpected {
                    let key = (
                        direction_name(ctx.direction),
                        side_key(&ctx.source, false),
                        side_key(&ctx.destination, true),
                        port_of(&ctx),
                    );
                    let n = groups.len();
                    let g = groups.entry(key).or_insert_with(|| Group {
                        hits: 0,
                        first: None,
                        last: None,
                        uuid: ctx.flow.uuid.clone(),
                        verdicts: BTreeSet::new(),
                        order: n,
                    });
                    g.hits = g.hits.saturating_add(ctx.flows);
                    if let Some(t) = ctx.time {
                        g.first = Some(g.first.map_or(t, |f| f.min(t)));
                        g.last = Some(g.last.map_or(t, |l| l.max(t)));
                    }
                    g.verdicts.insert(ctx.verdict.as_str_name());
                    if g.uuid.is_empty() {
                        g.uuid.clone_from(&ctx.flow.uuid);
                    }
                }
            }
            ControlFlow::Continue(())
        })
        .with_context(|| format!("{}: read error", path.display()))?;
    }
    let now = crate::metrics::now_seconds();
    let expires = now + f64::from(args.expires_in_days) * 86_400.0;
    let text = render(groups, expires);
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
        _ => {}
    }
    if unreadable > 0 {
        eprintln!("suggest: {unreadable} line(s) could not be read");
    }
    Ok(ExitCode::SUCCESS)
}

/// A rule name from free text: `[a-z0-9._-]`, at most 100 characters.
fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let t = out.trim_matches('-');
    t.chars()
        .take(100)
        .collect::<String>()
        .trim_end_matches('-')
        .to_string()
}

fn side_label(k: &SideKey) -> String {
    match k {
        SideKey::Pod {
            namespace,
            workload,
            pod,
        } => format!("{namespace}-{}", workload.as_deref().unwrap_or(pod)),
        SideKey::Entity { entity, cidr } => cidr.clone().unwrap_or_else(|| (*entity).to_string()),
        SideKey::Name { names, .. } => names.join("+"),
        SideKey::Ip(ip) => ip.clone(),
        SideKey::Unknown => "any".into(),
    }
}

/// `[rule.match.<side>]` as written: only the keys that are set.
#[derive(Debug, Default, Serialize)]
struct DraftSide {
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<[String; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    workload: Option<[String; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pod: Option<[String; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entity: Option<[&'static str; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cidr: Option<[String; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fqdn: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<[String; 1]>,
}

/// `[rule.match]`.
#[derive(Debug, Serialize)]
struct DraftMatch {
    verdict: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    direction: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<DraftSide>,
    #[serde(skip_serializing_if = "Option::is_none")]
    destination: Option<DraftSide>,
}

/// One suggested `[[rule]]`.
#[derive(Debug, Serialize)]
struct DraftRule {
    name: String,
    class: &'static str,
    owner: &'static str,
    comment: &'static str,
    expires: toml::value::Datetime,
    #[serde(rename = "match")]
    matches: DraftMatch,
}

/// A file of one rule: what the TOML writer renders (every value from a flow is a TOML string
/// it escapes; nothing from a flow is written outside a string).
#[derive(Serialize)]
struct DraftFile<'a> {
    rule: [&'a DraftRule; 1],
}

/// The `[rule.match.<side>]` table, or `None` when the side constrains nothing.
fn side_table(k: &SideKey, port: Option<&str>) -> Option<DraftSide> {
    let one = |s: &str| Some([s.to_string()]);
    let mut t = DraftSide {
        port: port.and_then(one),
        ..DraftSide::default()
    };
    match k {
        SideKey::Pod {
            namespace,
            workload,
            pod,
        } => {
            t.namespace = one(namespace);
            match workload {
                Some(w) => t.workload = one(w),
                None => t.pod = one(pod),
            }
        }
        SideKey::Entity { entity, cidr } => {
            t.entity = Some([entity]);
            t.cidr = cidr.as_deref().and_then(one);
        }
        SideKey::Name { names, entity } => {
            t.entity = entity.map(|e| [e]);
            t.fqdn = Some(names.clone());
        }
        SideKey::Ip(ip) => t.cidr = one(ip),
        SideKey::Unknown if port.is_none() => return None,
        SideKey::Unknown => {}
    }
    Some(t)
}

fn day(t: f64) -> String {
    rfc3339(&pbjson_types::Timestamp {
        seconds: t.floor() as i64,
        nanos: 0,
    })
}

/// Whether a suggested rule can hold the side's values literally: names that a glob reads
/// as they are (no `*`, no control character, not too long). Kubernetes names always can; a
/// crafted recording may not.
fn writable(k: &SideKey) -> bool {
    let literal = |v: &str| {
        !v.contains('*')
            && v.len() <= crate::rules::MAX_PATTERN
            && crate::rules::glob::Glob::new(v).is_ok()
    };
    match k {
        SideKey::Pod {
            namespace,
            workload,
            pod,
        } => literal(namespace) && workload.as_deref().map_or_else(|| literal(pod), literal),
        _ => true,
    }
}

/// A uuid fit for a comment: Hubble's uuids are hex and dashes; anything else from a crafted
/// recording is not repeated.
fn safe_uuid(u: &str) -> &str {
    let ok =
        !u.is_empty() && u.len() <= 64 && u.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok { u } else { "-" }
}

fn render(groups: HashMap<GroupKey, Group>, expires: f64) -> String {
    let mut groups: Vec<(GroupKey, Group)> = groups.into_iter().collect();
    groups.sort_by(|a, b| b.1.hits.cmp(&a.1.hits).then(a.1.order.cmp(&b.1.order)));
    let total: u64 = groups.iter().map(|(_, g)| g.hits).sum();
    let expires_day = day((expires / 86_400.0).ceil() * 86_400.0);
    let mut out = format!(
        "# Rules suggested by `hubble-noise suggest` for {total} unexpected flow(s) in {} group(s).\n\
         # Review each one: keep only traffic that is blocked ON PURPOSE, fill in owner and comment,\n\
         # and narrow the match where you can. Each rule expires on {expires_day}.\n",
        groups.len()
    );
    let Ok(expires_at) = expires_day.parse::<toml::value::Datetime>() else {
        out.push_str("\n# the expiry date is out of range: no rule suggested\n");
        return out;
    };
    let mut names = HashSet::new();
    for (i, ((direction, src, dst, port), g)) in groups.iter().enumerate() {
        let base = slug(&format!(
            "{}-{}-to-{}{}",
            direction,
            side_label(src),
            side_label(dst),
            port.as_deref()
                .map(|p| format!("-{}", p.replace('/', "-")))
                .unwrap_or_default()
        ));
        let mut name = base.clone();
        let mut n = 2;
        while !names.insert(name.clone()) {
            name = format!("{base}-{n}");
            n += 1;
        }
        if !writable(src) || !writable(dst) {
            let _ = writeln!(
                out,
                "\n# {} flow(s) whose endpoint names a rule cannot hold as they are (a '*' or a control character): no rule suggested (group {i})",
                g.hits
            );
            continue;
        }
        let has_direction = *direction != "unknown";
        let source = side_table(src, None);
        let destination = side_table(dst, port.as_deref());
        if source.is_none() && destination.is_none() && !has_direction {
            let _ = writeln!(
                out,
                "\n# {} flow(s) carry no endpoint, address, port or direction: no rule suggested (group {i})",
                g.hits
            );
            continue;
        }
        let rule = DraftRule {
            name,
            class: "expected",
            owner: "CHANGE-ME",
            comment: "CHANGE-ME: why this traffic is blocked on purpose (ticket, vendor, ...)",
            expires: expires_at,
            matches: DraftMatch {
                verdict: g.verdicts.iter().copied().collect(),
                direction: has_direction.then_some(*direction),
                source,
                destination,
            },
        };
        let _ = writeln!(
            out,
            "\n# {} hit(s), first {}, last {}, e.g. uuid {}",
            g.hits,
            g.first.map_or("-".into(), day),
            g.last.map_or("-".into(), day),
            safe_uuid(&g.uuid)
        );
        match toml::to_string(&DraftFile { rule: [&rule] }) {
            Ok(t) => out.push_str(&t),
            Err(e) => {
                let _ = writeln!(out, "# group {i} could not be written: {e}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_world_addresses() {
        assert_eq!(fold("203.0.113.77".parse().expect("ip")), "203.0.113.0/24");
        assert_eq!(
            fold("2001:db8:1:2:3::9".parse().expect("ip")),
            "2001:db8:1:2::/64"
        );
    }

    #[test]
    fn slugs_are_label_safe() {
        assert_eq!(
            slug("egress-Shop/Check out-to-1.2.3.0/24-443-TCP"),
            "egress-shop-check-out-to-1.2.3.0-24-443-tcp"
        );
        assert!(slug(&"x".repeat(300)).len() <= 100);
    }
}
