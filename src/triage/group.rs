//! Groups of unexpected flows as the store tracks them, and as the API and page show them:
//! `suggest`'s grouping ([`crate::suggest::group`]) and its draft rule
//! ([`crate::suggest::draft::one`]), with an id that links to them.

use serde::Serialize;

use crate::output::rfc3339;
use crate::suggest::draft::{self, Fill};
use crate::suggest::group::{Group, GroupKey, SideKey};

/// One tracked group.
#[derive(Debug)]
pub struct GroupEntry {
    /// Stable id (hex), derived from the key.
    pub id: String,
    /// When it was last updated (the store's clock).
    pub seen: u64,
    /// Hits, first and last time, a sample uuid, verdicts.
    pub group: Group,
    /// Source namespace of its flows ("" when not a pod).
    pub source_namespace: String,
    /// Source workload.
    pub source_workload: String,
    /// Destination namespace.
    pub destination_namespace: String,
    /// Destination workload.
    pub destination_workload: String,
    /// The destination of its last flow, as flows print it.
    pub destination: String,
}

/// A group's id: FNV-1a of its key, so the same group keeps its id across restarts.
pub fn group_id(key: &GroupKey) -> String {
    let text = format!("{key:?}");
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// How a side of a group reads.
pub fn side_text(k: &SideKey) -> String {
    match k {
        SideKey::Pod {
            namespace,
            workload,
            pod,
        } => format!("{namespace}/{}", workload.as_deref().unwrap_or(pod)),
        SideKey::Entity { entity, cidr } => match cidr {
            Some(c) => format!("{entity} {c}"),
            None => (*entity).to_string(),
        },
        SideKey::Name { names, .. } => names.join(", "),
        SideKey::Ip(ip) => ip.clone(),
        SideKey::Unknown => "any".into(),
    }
}

/// A group as `/api/v1/groups` shows it (docs/API.md).
#[derive(Debug, Serialize)]
pub struct GroupView {
    /// Stable id.
    pub id: String,
    /// `ingress`, `egress` or `unknown`.
    pub direction: &'static str,
    /// The source as the draft rule matches it.
    pub source: String,
    /// The destination as the draft rule matches it.
    pub destination: String,
    /// `443/TCP`, or null.
    pub port: Option<String>,
    /// Source namespace.
    pub source_namespace: String,
    /// Source workload.
    pub source_workload: String,
    /// Destination namespace.
    pub destination_namespace: String,
    /// Destination workload.
    pub destination_workload: String,
    /// Unexpected flows in the group since the daemon started.
    pub flows: u64,
    /// Of them, how many the store still holds.
    pub kept: usize,
    /// First flow's time (RFC 3339).
    pub first_seen: Option<String>,
    /// Last flow's time (RFC 3339).
    pub last_seen: Option<String>,
    /// Last flow's time (Unix seconds), for sorting.
    #[serde(skip)]
    pub last_unix: f64,
    /// Verdicts seen.
    pub verdicts: Vec<&'static str>,
    /// The uuid of its last flow.
    pub sample_uuid: String,
    /// The rule `suggest` would write for it.
    pub draft_rule: String,
}

fn time(t: Option<f64>) -> Option<String> {
    let t = t?;
    if !t.is_finite() {
        return None;
    }
    Some(rfc3339(&pbjson_types::Timestamp {
        seconds: t.floor() as i64,
        nanos: ((t - t.floor()) * 1e9) as i32,
    }))
}

impl GroupView {
    /// The view of `e`, with `kept` flows in the store and a draft rule expiring at `expires`
    /// (Unix seconds) filled with `fill`.
    pub fn new(key: &GroupKey, e: &GroupEntry, kept: usize, expires: f64, fill: Fill<'_>) -> Self {
        let (direction, src, dst, port) = key;
        Self {
            id: e.id.clone(),
            direction,
            source: side_text(src),
            destination: side_text(dst),
            port: port.clone(),
            source_namespace: e.source_namespace.clone(),
            source_workload: e.source_workload.clone(),
            destination_namespace: e.destination_namespace.clone(),
            destination_workload: e.destination_workload.clone(),
            flows: e.group.hits,
            kept,
            first_seen: time(e.group.first),
            last_seen: time(e.group.last),
            last_unix: e.group.last.unwrap_or(f64::NEG_INFINITY),
            verdicts: e.group.verdicts.iter().copied().collect(),
            sample_uuid: e.group.uuid.clone(),
            draft_rule: draft::one(key, &e.group, expires, fill),
        }
    }
}
