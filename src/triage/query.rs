//! The filters of the API and the page (PRODUCT.md §12): `class`, `namespace`, `workload`,
//! `destination`, `rule`, `group`, `since`, `limit`, read from a URL query string.

use std::time::{SystemTime, UNIX_EPOCH};

use super::group::{GroupEntry, GroupView, side_text};
use super::store::{Store, StoredFlow};
use crate::rules::Class;
use crate::suggest::draft::{Fill, TO_FILL};
use crate::suggest::group::GroupKey;

/// Results per request unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 100;
/// The most `limit` may ask for.
pub const MAX_LIMIT: usize = 10_000;
/// Days ahead a draft rule expires unless the page asks otherwise.
pub const DRAFT_DAYS: u32 = 30;

/// What a request asks for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    /// Only this class.
    pub class: Option<Class>,
    /// Source or destination namespace, exactly.
    pub namespace: Option<String>,
    /// Source or destination workload (or pod name, for pods without one), exactly.
    pub workload: Option<String>,
    /// Part of the destination (address, pod or a name), any case.
    pub destination: Option<String>,
    /// The rule that decided, exactly.
    pub rule: Option<String>,
    /// The group's id.
    pub group: Option<String>,
    /// Flows (or groups last seen) at or after this time, Unix seconds.
    pub since: Option<f64>,
    /// Results at most.
    pub limit: usize,
    /// A draft rule's `owner`, `comment` and expiry in days (the page's form).
    pub owner: Option<String>,
    /// A draft rule's `comment`.
    pub comment: Option<String>,
    /// A draft rule's days until expiry.
    pub days: u32,
}

/// A query string's `key=value` pairs, decoded (`+` is a space, `%XX` a byte).
pub fn pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
}

/// A URL-encoded string, decoded (`+` is a space, `%XX` a byte; invalid UTF-8 replaced).
pub fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Seconds since the Unix epoch, now.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `since`: Unix seconds, an RFC 3339 time, or a duration back from now (`15m`, `2h`).
fn since(v: &str) -> Result<f64, String> {
    if let Ok(n) = v.parse::<f64>() {
        if n.is_finite() {
            return Ok(n);
        }
    }
    if let Ok(d) = crate::config::duration_str::parse(v) {
        return Ok(now() - d.as_secs_f64());
    }
    let dt: toml::value::Datetime = v
        .parse()
        .map_err(|_| format!("since={v:?}: not Unix seconds, an RFC 3339 time or a duration"))?;
    crate::rules::expires::unix_seconds(&dt).map_err(|e| format!("since={v:?}: {e}"))
}

fn some(v: String) -> Option<String> {
    (!v.is_empty()).then_some(v)
}

impl Filter {
    /// The filter of a query string; an error names the parameter.
    pub fn parse(query: &str) -> Result<Self, String> {
        let mut f = Filter {
            limit: DEFAULT_LIMIT,
            days: DRAFT_DAYS,
            ..Filter::default()
        };
        for (k, v) in pairs(query) {
            match k.as_str() {
                "class" => {
                    f.class = match v.as_str() {
                        "expected" => Some(Class::Expected),
                        "unexpected" => Some(Class::Unexpected),
                        "" | "all" => None,
                        _ => return Err(format!("class={v:?}: expected, unexpected or all")),
                    }
                }
                "namespace" => f.namespace = some(v),
                "workload" => f.workload = some(v),
                "destination" => f.destination = some(v.to_lowercase()),
                "rule" => f.rule = some(v),
                "group" => f.group = some(v),
                "since" if v.is_empty() => {}
                "since" => f.since = Some(since(&v)?),
                "limit" => {
                    f.limit = v
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| format!("limit={v:?}: a number from 1 to {MAX_LIMIT}"))?;
                }
                "owner" => f.owner = some(v),
                "comment" => f.comment = some(v),
                "expires_in_days" if v.is_empty() => {}
                "expires_in_days" => {
                    f.days = v
                        .parse::<u32>()
                        .ok()
                        .filter(|n| (1..=3650).contains(n))
                        .ok_or_else(|| format!("expires_in_days={v:?}: a number from 1 to 3650"))?;
                }
                _ => {}
            }
        }
        Ok(f)
    }

    /// Whether `f` passes.
    pub fn flow(&self, f: &StoredFlow) -> bool {
        let eq = |want: &Option<String>, a: &str, b: &str| {
            want.as_deref().is_none_or(|w| w == a || w == b)
        };
        self.class.is_none_or(|c| c.as_str() == f.class)
            && eq(
                &self.namespace,
                &f.source_namespace,
                &f.destination_namespace,
            )
            && eq(&self.workload, &f.source_workload, &f.destination_workload)
            && self.destination.as_deref().is_none_or(|d| {
                f.destination.to_lowercase().contains(d)
                    || f.names.iter().any(|n| n.to_lowercase().contains(d))
            })
            && self
                .rule
                .as_deref()
                .is_none_or(|r| f.rule.as_deref() == Some(r))
            && self
                .group
                .as_deref()
                .is_none_or(|g| f.group.as_deref() == Some(g))
            && self.since.is_none_or(|s| f.unix.is_some_and(|t| t >= s))
    }

    /// Whether the group passes (`class` and `rule` do not apply: groups are unexpected).
    pub fn group(&self, key: &GroupKey, g: &GroupEntry) -> bool {
        let eq = |want: &Option<String>, a: &str, b: &str| {
            want.as_deref().is_none_or(|w| w == a || w == b)
        };
        eq(
            &self.namespace,
            &g.source_namespace,
            &g.destination_namespace,
        ) && eq(&self.workload, &g.source_workload, &g.destination_workload)
            && self.destination.as_deref().is_none_or(|d| {
                side_text(&key.2).to_lowercase().contains(d)
                    || g.destination.to_lowercase().contains(d)
            })
            && self.group.as_deref().is_none_or(|id| g.id == id)
            && self
                .since
                .is_none_or(|s| g.group.last.is_some_and(|t| t >= s))
            && self.class != Some(Class::Expected)
            && self.rule.is_none()
    }

    /// What the draft rule's placeholders are filled with.
    pub fn fill(&self) -> Fill<'_> {
        Fill {
            owner: self.owner.as_deref().unwrap_or(TO_FILL.owner),
            comment: self.comment.as_deref().unwrap_or(TO_FILL.comment),
        }
    }
}

/// The flows that pass, newest first, at most `limit`.
pub fn flows<'s>(store: &'s Store, f: &Filter) -> Vec<&'s StoredFlow> {
    store
        .newest_first()
        .filter(|x| f.flow(x))
        .take(f.limit)
        .collect()
}

/// The groups that pass, last seen first, at most `limit`, each with its draft rule.
pub fn groups(store: &Store, f: &Filter) -> Vec<GroupView> {
    let mut kept: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for x in store.newest_first() {
        if let Some(g) = &x.group {
            *kept.entry(g.as_str()).or_default() += 1;
        }
    }
    let expires = now() + f64::from(f.days) * 86_400.0;
    let mut out: Vec<GroupView> = store
        .groups()
        .filter(|(k, g)| f.group(k, g))
        .map(|(k, g)| {
            let n = kept.get(g.id.as_str()).copied().unwrap_or(0);
            GroupView::new(k, g, n, expires, f.fill())
        })
        .collect();
    out.sort_by(|a, b| {
        b.last_unix
            .total_cmp(&a.last_unix)
            .then_with(|| b.flows.cmp(&a.flows))
            .then_with(|| a.id.cmp(&b.id))
    });
    out.truncate(f.limit);
    out
}
