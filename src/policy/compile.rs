//! Deny rules compiled into step-3 matchers (PRODUCT.md §4 step 3).
//!
//! The matcher is the spec's selector on the local side (the source for egress, the destination
//! for ingress) and the rule's peers and ports on the other side. Anything not understood skips
//! the rule with a warning: an ambiguity never becomes "expected".

use super::selector::EndpointSelector;
use super::yaml::{CidrRule, DenyRule, PortRule, Selector};
use crate::api::flow::{DropReason, TrafficDirection, Verdict};
use crate::flow::{FlowCtx, Proto, Side};
use crate::rules::cidr::Cidr;
use crate::rules::labels::Entity;
use crate::rules::port::PortSpec;

/// Who the policy applies to on the local side.
#[derive(Clone, Debug)]
pub enum Local {
    /// Pods selected by `endpointSelector` (confined to the namespace of a namespaced policy).
    Endpoints(EndpointSelector),
    /// Host endpoints (the entity `host`) selected by `nodeSelector`.
    Nodes(EndpointSelector, Entity),
}

impl Local {
    /// Compiles the spec's selector.
    pub fn compile(
        endpoint: Option<&Selector>,
        node: Option<&Selector>,
        namespace: Option<&str>,
    ) -> Result<Self, String> {
        match (endpoint, node) {
            (Some(e), None) => EndpointSelector::compile(e, namespace, false).map(Local::Endpoints),
            (None, Some(n)) => Ok(Local::Nodes(
                EndpointSelector::compile(n, None, false)?,
                Entity::parse("host")?,
            )),
            (Some(_), Some(_)) => Err("both endpointSelector and nodeSelector are set".into()),
            (None, None) => Err("neither endpointSelector nor nodeSelector is set".into()),
        }
    }

    fn matches(&self, side: &Side<'_>) -> bool {
        match self {
            Local::Endpoints(s) => s.matches(side),
            Local::Nodes(s, host) => host.matches(side) && s.matches_labels(side.labels()),
        }
    }
}

/// One peer of a deny rule.
#[derive(Clone, Debug)]
enum Peer {
    /// An address in the prefix and in none of its exceptions, outside the cluster's pods.
    Cidr(Cidr, Vec<Cidr>),
    /// A reserved identity.
    Entity(Entity),
    /// `toEntities: [all]`.
    All,
    /// Pods selected by the selector.
    Endpoints(EndpointSelector),
}

impl Peer {
    fn matches(&self, side: &Side<'_>) -> bool {
        match self {
            Peer::Cidr(c, except) => {
                // CIDR rules select addresses outside the cluster; a pod in the range is not
                // selected by them.
                side.namespace().is_empty()
                    && side
                        .ip
                        .is_some_and(|ip| c.contains(ip) && !except.iter().any(|e| e.contains(ip)))
            }
            Peer::Entity(e) => e.matches(side),
            Peer::All => true,
            Peer::Endpoints(s) => s.matches(side),
        }
    }
}

/// A compiled deny rule.
#[derive(Clone, Debug)]
pub struct DenyMatcher {
    /// Egress or ingress.
    pub direction: TrafficDirection,
    /// The spec's selector.
    pub local: Local,
    /// Any of them (empty = every peer, for a rule that only has `toPorts`).
    peers: Vec<Peer>,
    /// Any of them on the destination port (`None` = every port).
    ports: Option<Vec<PortSpec>>,
}

impl DenyMatcher {
    /// Whether this matcher matches an AUDIT flow, or a DROPPED one with a policy drop reason
    /// (POLICY_DENIED, POLICY_DENY).
    pub fn matches(&self, ctx: &FlowCtx<'_>) -> bool {
        // A drop for another reason (CT map full, stale IP, ...) to a denied peer is still
        // something to look at: only policy drops and audits are the policy's doing.
        let policy_verdict = match ctx.verdict {
            Verdict::Audit => true,
            Verdict::Dropped => matches!(
                ctx.drop_reason.known(),
                Some(DropReason::PolicyDenied | DropReason::PolicyDeny)
            ),
            _ => false,
        };
        if !policy_verdict || ctx.direction != self.direction {
            return false;
        }
        let (local, peer) = match self.direction {
            TrafficDirection::Egress => (&ctx.source, &ctx.destination),
            _ => (&ctx.destination, &ctx.source),
        };
        self.local.matches(local)
            && (self.peers.is_empty() || self.peers.iter().any(|p| p.matches(peer)))
            && self.ports.as_ref().is_none_or(|ps| {
                ps.iter()
                    .any(|p| p.matches(ctx.destination.port, ctx.proto))
            })
    }
}

fn cidrs(list: &[String]) -> Result<Vec<Peer>, String> {
    list.iter()
        .map(|c| Cidr::parse(c).map(|c| Peer::Cidr(c, Vec::new())))
        .collect()
}

fn cidr_sets(list: &[CidrRule]) -> Result<Vec<Peer>, String> {
    list.iter()
        .map(|r| {
            if let Some(k) = r.other.keys().next() {
                return Err(format!("{k} is not supported"));
            }
            let c = Cidr::parse(r.cidr.as_deref().ok_or("cidr is missing")?)?;
            let except = r
                .except
                .iter()
                .map(|e| Cidr::parse(e))
                .collect::<Result<_, _>>()?;
            Ok(Peer::Cidr(c, except))
        })
        .collect()
}

fn entities(list: &[String]) -> Result<Vec<Peer>, String> {
    list.iter()
        .map(|e| match e.as_str() {
            "all" => Ok(Peer::All),
            "cluster" => Err("entity \"cluster\" is not supported".into()),
            name => Entity::parse(name).map(Peer::Entity),
        })
        .collect()
}

fn ports(list: &[PortRule]) -> Result<Vec<PortSpec>, String> {
    let mut out = Vec::new();
    for r in list {
        if let Some(k) = r.other.keys().next() {
            return Err(format!("toPorts.{k} is not supported"));
        }
        for p in &r.ports {
            let proto = match p
                .protocol
                .as_deref()
                .map(str::to_ascii_uppercase)
                .as_deref()
            {
                None | Some("ANY") => None,
                Some("TCP") => Some(Proto::Tcp),
                Some("UDP") => Some(Proto::Udp),
                Some("SCTP") => Some(Proto::Sctp),
                Some(other) => return Err(format!("protocol {other:?} is not supported")),
            };
            let lo = match &p.port {
                None => 0,
                Some(serde_norway::Value::Number(n)) => n.as_u64().unwrap_or(u64::MAX),
                Some(serde_norway::Value::String(s)) => s
                    .parse::<u64>()
                    .map_err(|_| format!("named port {s:?} is not supported"))?,
                Some(v) => return Err(format!("port {v:?} is not a number")),
            };
            let (lo, hi) = match (lo, p.end_port) {
                (0, _) => (1, u64::from(u16::MAX)),
                (lo, None) => (lo, lo),
                (lo, Some(hi)) => (lo, u64::from(hi)),
            };
            let (Ok(lo), Ok(hi)) = (u16::try_from(lo), u16::try_from(hi)) else {
                return Err(format!("port range {lo}-{hi} is out of range"));
            };
            if lo > hi {
                return Err(format!("endPort {hi} is below port {lo}"));
            }
            out.push(PortSpec { lo, hi, proto });
        }
    }
    Ok(out)
}

/// The peer keys of a deny rule for one direction (`to…` for egress, `from…` for ingress).
struct PeerKeys<'r> {
    cidr: &'r Option<Vec<String>>,
    cidr_set: &'r Option<Vec<CidrRule>>,
    entities: &'r Option<Vec<String>>,
    endpoints: &'r Option<Vec<Selector>>,
}

/// The keys of `direction`, or the name of a key of the other direction that is set.
fn peer_keys(rule: &DenyRule, direction: TrafficDirection) -> Result<PeerKeys<'_>, String> {
    let (keys, wrong) = if direction == TrafficDirection::Egress {
        let keys = PeerKeys {
            cidr: &rule.to_cidr,
            cidr_set: &rule.to_cidr_set,
            entities: &rule.to_entities,
            endpoints: &rule.to_endpoints,
        };
        let wrong = [
            ("fromCIDR", rule.from_cidr.is_some()),
            ("fromCIDRSet", rule.from_cidr_set.is_some()),
            ("fromEntities", rule.from_entities.is_some()),
            ("fromEndpoints", rule.from_endpoints.is_some()),
        ];
        (keys, wrong)
    } else {
        let keys = PeerKeys {
            cidr: &rule.from_cidr,
            cidr_set: &rule.from_cidr_set,
            entities: &rule.from_entities,
            endpoints: &rule.from_endpoints,
        };
        let wrong = [
            ("toCIDR", rule.to_cidr.is_some()),
            ("toCIDRSet", rule.to_cidr_set.is_some()),
            ("toEntities", rule.to_entities.is_some()),
            ("toEndpoints", rule.to_endpoints.is_some()),
        ];
        (keys, wrong)
    };
    match wrong.iter().find(|(_, set)| *set) {
        Some((k, _)) => Err(format!("{k} does not belong in this direction")),
        None => Ok(keys),
    }
}

/// The peers the keys select; an error when a key is present but selects nothing.
fn peers(k: &PeerKeys<'_>, namespace: Option<&str>) -> Result<Vec<Peer>, String> {
    let mut peers = Vec::new();
    if let Some(l) = k.cidr {
        peers.extend(cidrs(l)?);
    }
    if let Some(l) = k.cidr_set {
        peers.extend(cidr_sets(l)?);
    }
    if let Some(l) = k.entities {
        peers.extend(entities(l)?);
    }
    for s in k.endpoints.iter().flatten() {
        peers.push(Peer::Endpoints(EndpointSelector::compile(
            s, namespace, true,
        )?));
    }
    let any_key =
        k.cidr.is_some() || k.cidr_set.is_some() || k.entities.is_some() || k.endpoints.is_some();
    if any_key && peers.is_empty() {
        return Err("an empty peer list selects nothing".into());
    }
    Ok(peers)
}

/// Compiles one deny rule. `namespace` is the policy's namespace (None for clusterwide).
pub fn compile_rule(
    rule: &DenyRule,
    direction: TrafficDirection,
    local: &Local,
    namespace: Option<&str>,
) -> Result<DenyMatcher, String> {
    if let Some(k) = rule.other.keys().next() {
        return Err(format!("{k} is not supported"));
    }
    let peers = peers(&peer_keys(rule, direction)?, namespace)?;
    let ports = match &rule.to_ports {
        Some(p) => {
            let p = ports(p)?;
            (!p.is_empty()).then_some(p)
        }
        None => None,
    };
    if peers.is_empty() && ports.is_none() {
        return Err("a rule with neither peers nor ports is ambiguous".into());
    }
    Ok(DenyMatcher {
        direction,
        local: local.clone(),
        peers,
        ports,
    })
}
