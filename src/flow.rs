//! A read-only view of one decoded flow with the values the matchers need, computed once.
//!
//! Every accessor is total: a missing field gives `None` or an empty value, never a panic, and
//! the matchers treat a missing value as "does not match" (when in doubt, unexpected).

use std::net::IpAddr;

use crate::api::flow::{DropReason, Endpoint, Flow, TrafficDirection, Verdict, layer4};
use crate::enums::Open;
use crate::names::SideNames;

/// The transport protocol of a flow, as far as ports are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
    /// ICMPv4 (no ports).
    Icmpv4,
    /// ICMPv6 (no ports).
    Icmpv6,
    /// VRRP (no ports; Cilium 1.19+).
    Vrrp,
    /// IGMP (no ports; Cilium 1.19+).
    Igmp,
    /// No L4 information.
    Unknown,
}

impl Proto {
    /// The upper-case name used in rule files (`443/TCP`) and in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
            Proto::Sctp => "SCTP",
            Proto::Icmpv4 => "ICMPv4",
            Proto::Icmpv6 => "ICMPv6",
            Proto::Vrrp => "VRRP",
            Proto::Igmp => "IGMP",
            Proto::Unknown => "",
        }
    }
}

/// One side (source or destination) of a flow.
#[derive(Debug, Default)]
pub struct Side<'a> {
    /// The endpoint as Hubble describes it, when present.
    pub endpoint: Option<&'a Endpoint>,
    /// The IP address of this side, when present and parseable.
    pub ip: Option<IpAddr>,
    /// The L4 port of this side (TCP, UDP, SCTP), when present and non-zero.
    pub port: Option<u16>,
    /// The names of this side: on the flow, the DNS query, and what the pod on the other side
    /// asked for that resolved to this IP (see [`crate::names`]).
    pub names: SideNames<'a>,
}

impl<'a> Side<'a> {
    /// The namespace, or "" when unknown.
    pub fn namespace(&self) -> &'a str {
        self.endpoint.map_or("", |e| e.namespace.as_str())
    }

    /// The pod name, or "" when unknown.
    pub fn pod(&self) -> &'a str {
        self.endpoint.map_or("", |e| e.pod_name.as_str())
    }

    /// The first workload's name, or "" when there is none.
    pub fn workload(&self) -> &'a str {
        self.endpoint
            .and_then(|e| e.workloads.first())
            .map_or("", |w| w.name.as_str())
    }

    /// The endpoint's labels (`source:key=value`), empty when unknown.
    pub fn labels(&self) -> &'a [String] {
        self.endpoint.map_or(&[], |e| e.labels.as_slice())
    }

    /// The security identity, 0 when unknown.
    pub fn identity(&self) -> u32 {
        self.endpoint.map_or(0, |e| e.identity)
    }
}

/// The matcher's view of a flow.
#[derive(Debug)]
pub struct FlowCtx<'a> {
    /// The decoded flow.
    pub flow: &'a Flow,
    /// The node that reported it (`cluster/node`), from the response or else the flow.
    pub node: &'a str,
    /// Verdict (unknown numbers map to `VerdictUnknown`).
    pub verdict: Verdict,
    /// Traffic direction (a number the schema lacks is `Unknown` here: it matches neither
    /// ingress nor egress; [`FlowCtx::direction_value`] keeps it for labels).
    pub direction: TrafficDirection,
    /// Traffic direction as the flow carries it, possibly a value the schema lacks.
    pub direction_value: Open<TrafficDirection>,
    /// Drop reason: `drop_reason_desc`, or the deprecated numeric `drop_reason` (see
    /// [`crate::enums::drop_reason`]); possibly a value the schema lacks.
    pub drop_reason: Open<DropReason>,
    /// How many flows this record stands for: 1, or the counts of an aggregated flow
    /// (`aggregate`, PRODUCT.md §3).
    pub flows: u64,
    /// Transport protocol.
    pub proto: Proto,
    /// The flow's time in Unix seconds (with fraction), from the flow or else the response.
    pub time: Option<f64>,
    /// Source side.
    pub source: Side<'a>,
    /// Destination side.
    pub destination: Side<'a>,
}

/// The seconds since the Unix epoch of a protobuf timestamp. Total: any `seconds` (±2^63) and
/// any `nanos` (even out of range or negative) give a finite number, never a panic.
pub fn unix_seconds(ts: &pbjson_types::Timestamp) -> f64 {
    // i64 to f64 rounds but cannot fail; the sum of two finite values this small is finite.
    ts.seconds as f64 + f64::from(ts.nanos) / 1e9
}

/// The wall-clock time of Unix seconds, when the platform can represent it: `None` for
/// negative, non-finite or too large values (a flow's time comes from the wire: never panic).
pub fn system_time(unix_seconds: f64) -> Option<std::time::SystemTime> {
    if unix_seconds.is_nan() || unix_seconds < 0.0 {
        return None;
    }
    let d = std::time::Duration::try_from_secs_f64(unix_seconds).ok()?;
    std::time::UNIX_EPOCH.checked_add(d)
}

/// How many flows a flow record stands for: the sum of an aggregated flow's counts (at least
/// 1), else 1. Saturating: the three `uint32` counts cannot overflow a `u64`, but the sum is
/// checked all the same.
pub fn flow_count(flow: &Flow) -> u64 {
    flow.aggregate.as_ref().map_or(1, |a| {
        u64::from(a.ingress_flow_count)
            .saturating_add(u64::from(a.egress_flow_count))
            .saturating_add(u64::from(a.unknown_direction_flow_count))
            .max(1)
    })
}

impl<'a> FlowCtx<'a> {
    /// Builds the view. `node` and `time` come from the enclosing `GetFlowsResponse` and are
    /// used when the flow itself lacks them.
    pub fn new(
        flow: &'a Flow,
        node: &'a str,
        response_time: Option<&'a pbjson_types::Timestamp>,
    ) -> Self {
        let node = if flow.node_name.is_empty() {
            node
        } else {
            flow.node_name.as_str()
        };
        let verdict = Verdict::try_from(flow.verdict).unwrap_or(Verdict::Unknown);
        let direction_value = Open::<TrafficDirection>::new(flow.traffic_direction);
        let direction = direction_value.known().unwrap_or(TrafficDirection::Unknown);
        let drop_reason = drop_reason_of(flow);
        let (proto, sport, dport) = l4(flow);
        let time = flow.time.as_ref().or(response_time).map(unix_seconds);
        let (sip, dip) = match flow.ip.as_ref() {
            Some(ip) => (ip.source.parse().ok(), ip.destination.parse().ok()),
            None => (None, None),
        };
        let source = Side {
            endpoint: flow.source.as_ref(),
            ip: sip,
            port: port(sport),
            names: SideNames {
                flow: &flow.source_names,
                time,
                ..SideNames::default()
            },
        };
        let destination = Side {
            endpoint: flow.destination.as_ref(),
            ip: dip,
            port: port(dport),
            names: SideNames {
                flow: &flow.destination_names,
                // The query of an L7 DNS flow is what the pod asked to reach: a destination
                // name, whichever way the record itself travels.
                query: dns_query(flow),
                time,
                ..SideNames::default()
            },
        };
        FlowCtx {
            flow,
            node,
            verdict,
            direction,
            direction_value,
            drop_reason,
            flows: flow_count(flow),
            proto,
            time,
            source,
            destination,
        }
    }

    /// The side on which the policy was enforced: the destination for ingress, the source for
    /// egress. `None` when the direction is unknown.
    pub fn local(&self) -> Option<&Side<'a>> {
        match self.direction {
            TrafficDirection::Ingress => Some(&self.destination),
            TrafficDirection::Egress => Some(&self.source),
            TrafficDirection::Unknown => None,
        }
    }
}

/// Protocol and (source, destination) ports; 0 where there is no port.
pub fn l4(flow: &Flow) -> (Proto, u32, u32) {
    match flow.l4.as_ref().and_then(|l4| l4.protocol.as_ref()) {
        Some(layer4::Protocol::Tcp(t)) => (Proto::Tcp, t.source_port, t.destination_port),
        Some(layer4::Protocol::Udp(u)) => (Proto::Udp, u.source_port, u.destination_port),
        Some(layer4::Protocol::Sctp(s)) => (Proto::Sctp, s.source_port, s.destination_port),
        Some(layer4::Protocol::IcmPv4(_)) => (Proto::Icmpv4, 0, 0),
        Some(layer4::Protocol::IcmPv6(_)) => (Proto::Icmpv6, 0, 0),
        Some(layer4::Protocol::Vrrp(_)) => (Proto::Vrrp, 0, 0),
        Some(layer4::Protocol::Igmp(_)) => (Proto::Igmp, 0, 0),
        None => (Proto::Unknown, 0, 0),
    }
}

/// The (source, destination) L4 ports; 0 where there is none.
pub fn l4_ports(flow: &Flow) -> (u32, u32) {
    let (_, s, d) = l4(flow);
    (s, d)
}

fn port(p: u32) -> Option<u16> {
    u16::try_from(p).ok().filter(|p| *p != 0)
}

/// The drop reason of a flow: `drop_reason_desc`, else the deprecated numeric `drop_reason`
/// (see [`crate::enums::drop_reason`]).
pub fn drop_reason_of(flow: &Flow) -> Open<DropReason> {
    crate::enums::drop_reason(flow.drop_reason_desc, flow.drop_reason)
}

/// Whether Hubble marked the flow as a reply (`is_reply`); false when unknown.
pub fn is_reply(flow: &Flow) -> bool {
    flow.is_reply.as_ref().is_some_and(|b| b.value)
}

/// The query name of an L7 DNS flow, if any.
pub fn dns_query(flow: &Flow) -> Option<&str> {
    match flow.l7.as_ref()?.record.as_ref()? {
        crate::api::flow::layer7::Record::Dns(d) if !d.query.is_empty() => Some(d.query.as_str()),
        _ => None,
    }
}
