//! How `suggest` groups unexpected flows: by direction, source (namespace and workload, or
//! pod; an entity; an IP), destination (the names an `fqdn` key would have to cover, else the
//! same as the source, with world IPs folded into their /24 or /64), port and protocol.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use crate::flow::{FlowCtx, Side};
use crate::output::direction_name;
use crate::rules::fqdn::FqdnPattern;

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
pub struct Group {
    /// Flows in the group.
    pub hits: u64,
    /// Time of the first and last flow.
    pub first: Option<f64>,
    /// Time of the last flow.
    pub last: Option<f64>,
    /// An example uuid.
    pub uuid: String,
    /// The verdicts seen.
    pub verdicts: BTreeSet<&'static str>,
    /// When the group first appeared (for a stable order).
    pub order: usize,
}

/// What unexpected flows are grouped by: direction, source, destination and port.
pub type GroupKey = (&'static str, SideKey, SideKey, Option<String>);

/// The destination port as a rule writes it (`443/TCP`), when the flow has one.
pub fn port_of(ctx: &FlowCtx<'_>) -> Option<String> {
    ctx.destination
        .port
        .map(|p| format!("{p}/{}", ctx.proto.as_str()))
}

/// The group a flow belongs to.
pub fn key_of(ctx: &FlowCtx<'_>) -> GroupKey {
    (
        direction_name(ctx.direction),
        side_key(&ctx.source, false),
        side_key(&ctx.destination, true),
        port_of(ctx),
    )
}

/// The groups of the unexpected flows seen so far, in the order they first appeared.
#[derive(Debug, Default)]
pub struct Groups {
    /// Every group by its key.
    pub by_key: HashMap<GroupKey, Group>,
}

impl Groups {
    /// Adds one unexpected flow to its group.
    pub fn add(&mut self, ctx: &FlowCtx<'_>) {
        let key = key_of(ctx);
        let n = self.by_key.len();
        let g = self.by_key.entry(key).or_insert_with(|| Group {
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
