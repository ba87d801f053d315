//! The draft rule file of `suggest`: one rule per group, most hits first, commented with its
//! hits, first and last time and an example uuid, with `owner` and `comment` to fill in and
//! `expires` ahead. Written by the TOML serializer: every value from a flow is a TOML string it
//! escapes, and nothing from a flow goes into a comment unchecked.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use serde::Serialize;

use super::group::{Group, GroupKey, SideKey};
use crate::output::rfc3339;

/// A rule name from free text: `[a-z0-9._-]`, at most 100 characters.
pub(crate) fn slug(s: &str) -> String {
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
struct DraftRule<'f> {
    name: String,
    class: &'static str,
    owner: &'f str,
    comment: &'f str,
    expires: toml::value::Datetime,
    #[serde(rename = "match")]
    matches: DraftMatch,
}

/// A file of one rule: what the TOML writer renders (every value from a flow is a TOML string
/// it escapes; nothing from a flow is written outside a string).
#[derive(Serialize)]
struct DraftFile<'a, 'f> {
    rule: [&'a DraftRule<'f>; 1],
}

/// What the operator fills in on a draft rule.
#[derive(Clone, Copy, Debug)]
pub struct Fill<'f> {
    /// `owner`.
    pub owner: &'f str,
    /// `comment`.
    pub comment: &'f str,
}

/// The placeholders `suggest` writes.
pub const TO_FILL: Fill<'static> = Fill {
    owner: "CHANGE-ME",
    comment: "CHANGE-ME: why this traffic is blocked on purpose (ticket, vendor, ...)",
};

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

/// A name for a group's rule, unique among `names`: direction, source, destination and port.
fn rule_name(key: &GroupKey, names: &mut HashSet<String>) -> String {
    let (direction, src, dst, port) = key;
    let port = port
        .as_deref()
        .map(|p| format!("-{}", p.replace('/', "-")))
        .unwrap_or_default();
    let base = slug(&format!(
        "{direction}-{}-to-{}{port}",
        side_label(src),
        side_label(dst)
    ));
    let mut name = base.clone();
    let mut n = 2;
    while !names.insert(name.clone()) {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

/// The draft rule of one group, or why there is none.
fn draft<'f>(
    key: &GroupKey,
    g: &Group,
    name: String,
    expires: toml::value::Datetime,
    fill: Fill<'f>,
) -> Result<DraftRule<'f>, &'static str> {
    let (direction, src, dst, port) = key;
    if !writable(src) || !writable(dst) {
        return Err(
            "whose endpoint names a rule cannot hold as they are (a '*' or a control character)",
        );
    }
    let has_direction = *direction != "unknown";
    let source = side_table(src, None);
    let destination = side_table(dst, port.as_deref());
    if source.is_none() && destination.is_none() && !has_direction {
        return Err("carry no endpoint, address, port or direction");
    }
    Ok(DraftRule {
        name,
        class: "expected",
        owner: fill.owner,
        comment: fill.comment,
        expires,
        matches: DraftMatch {
            verdict: g.verdicts.iter().copied().collect(),
            direction: has_direction.then_some(*direction),
            source,
            destination,
        },
    })
}

/// The day `expires` (Unix seconds) falls in, rounded up to the next midnight, as TOML.
fn expiry_day(expires: f64) -> (String, Option<toml::value::Datetime>) {
    let d = day((expires / 86_400.0).ceil() * 86_400.0);
    let at = d.parse::<toml::value::Datetime>().ok();
    (d, at)
}

/// One group's rule as `suggest` writes it: a comment with its hits, first and last time and
/// an example uuid, then the `[[rule]]` table; or a comment saying why there is none.
fn block(
    i: usize,
    key: &GroupKey,
    g: &Group,
    name: String,
    expires_at: toml::value::Datetime,
    fill: Fill<'_>,
) -> String {
    let rule = match draft(key, g, name, expires_at, fill) {
        Ok(r) => r,
        Err(why) => {
            return format!(
                "\n# {} flow(s) {why}: no rule suggested (group {i})\n",
                g.hits
            );
        }
    };
    let mut out = format!(
        "\n# {} hit(s), first {}, last {}, e.g. uuid {}\n",
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
    out
}

/// The draft rule of one group (the triage page and API): what `suggest` would write for it,
/// with `fill` in place of the placeholders, expiring at `expires` (Unix seconds) rounded up
/// to the next day.
pub fn one(key: &GroupKey, g: &Group, expires: f64, fill: Fill<'_>) -> String {
    let (expires_day, at) = expiry_day(expires);
    let Some(at) = at else {
        return format!("# the expiry date {expires_day} is out of range: no rule suggested\n");
    };
    let name = rule_name(key, &mut HashSet::new());
    block(0, key, g, name, at, fill)
        .trim_start_matches('\n')
        .to_string()
}

/// The rule file for `groups`: one rule per group, most hits first; each rule expires at
/// `expires` (Unix seconds), rounded up to the next day.
pub fn render(groups: HashMap<GroupKey, Group>, expires: f64) -> String {
    let mut groups: Vec<(GroupKey, Group)> = groups.into_iter().collect();
    groups.sort_by(|a, b| b.1.hits.cmp(&a.1.hits).then(a.1.order.cmp(&b.1.order)));
    let total: u64 = groups.iter().map(|(_, g)| g.hits).sum();
    let (expires_day, expires_at) = expiry_day(expires);
    let mut out = format!(
        "# Rules suggested by `hubble-noise suggest` for {total} unexpected flow(s) in {} group(s).\n\
         # Review each one: keep only traffic that is blocked ON PURPOSE, fill in owner and comment,\n\
         # and narrow the match where you can. Each rule expires on {expires_day}.\n",
        groups.len()
    );
    let Some(expires_at) = expires_at else {
        out.push_str("\n# the expiry date is out of range: no rule suggested\n");
        return out;
    };
    let mut names = HashSet::new();
    for (i, (key, g)) in groups.iter().enumerate() {
        let name = rule_name(key, &mut names);
        out.push_str(&block(i, key, g, name, expires_at, TO_FILL));
    }
    out
}
