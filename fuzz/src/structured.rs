//! A structure-aware description of a relay stream, for the `grpc_structured` harness: the
//! fuzzer's bytes become a [`Stream`] (through `arbitrary`), which becomes `GetFlowsResponse`s
//! that are encoded as on the wire. Every field the daemon reads is there, with the values that
//! matter drawn more often than chance would: enum numbers known and unknown, timestamps at the
//! ends of the protobuf range and of what an exemplar or `SystemTime` can carry, nanos out of
//! range, ports past 65535, `u64::MAX` and `u32::MAX` counts, names, IPs and uuids from small
//! pools (so that DNS answers, duplicates and rules meet the flows that use them), and hostile
//! strings.

use arbitrary::{Arbitrary, Unstructured};

use hubble_noise::api::flow::{
    Aggregate, CiliumEventType, Dns, Endpoint, Flow, IcmPv4, IcmPv6, Igmp, Layer4, Layer7,
    LostEvent, Policy, Sctp, Tcp, Udp, Vrrp, Workload, layer4, layer7,
};
use hubble_noise::api::observer::GetFlowsResponse;
use hubble_noise::api::observer::get_flows_response::ResponseTypes;
use hubble_noise::api::relay::NodeStatusEvent;

/// A stream of relay messages.
#[derive(Arbitrary, Debug)]
pub struct Stream(pub Vec<Message>);

impl Stream {
    /// The stream that `data` describes (any bytes describe one).
    pub fn from_bytes(data: &[u8]) -> Self {
        Stream::arbitrary_take_rest(Unstructured::new(data)).unwrap_or(Stream(Vec::new()))
    }

    /// The messages.
    pub fn responses(&self) -> Vec<GetFlowsResponse> {
        self.0.iter().map(Message::response).collect()
    }
}

/// One `GetFlowsResponse`.
#[derive(Arbitrary, Debug)]
pub struct Message {
    kind: Kind,
    node: Name,
    time: Option<Time>,
}

#[derive(Arbitrary, Debug)]
enum Kind {
    Flow(Box<FlowDesc>),
    Lost {
        source: Num32,
        lost: Num64,
        cpu: Option<i32>,
        first: Option<Time>,
        last: Option<Time>,
    },
    NodeStatus {
        state: Num32,
        names: Vec<Name>,
        message: Text,
    },
    Empty,
}

#[derive(Arbitrary, Debug)]
struct FlowDesc {
    uuid: Uuid,
    node: Option<Name>,
    time: Option<Time>,
    verdict: VerdictNum,
    drop_reason_desc: Num32,
    drop_reason: NumU32,
    direction: Num32,
    flow_type: Num32,
    event: Option<(Num32, Num32)>,
    ip: Option<(Ip, Ip)>,
    l4: Option<L4>,
    source: Option<EndpointDesc>,
    destination: Option<EndpointDesc>,
    source_names: Vec<Name>,
    destination_names: Vec<Name>,
    dns: Option<DnsDesc>,
    is_reply: Option<bool>,
    policy_log: Vec<Text>,
    egress_denied_by: Vec<PolicyRef>,
    ingress_denied_by: Vec<PolicyRef>,
    aggregate: Option<(NumU32, NumU32, NumU32)>,
}

#[derive(Arbitrary, Debug)]
struct EndpointDesc {
    namespace: Name,
    pod: Name,
    labels: Vec<Name>,
    workloads: Vec<(Name, Name)>,
    identity: NumU32,
    cluster: Name,
}

#[derive(Arbitrary, Debug)]
struct DnsDesc {
    l7_type: Num32,
    query: Name,
    ips: Vec<Ip>,
    ttl: NumU32,
    cnames: Vec<Name>,
    rcode: NumU32,
    qtypes: Vec<Name>,
    latency: Num64,
}

#[derive(Arbitrary, Debug)]
struct PolicyRef {
    name: Name,
    namespace: Name,
    kind: Name,
    labels: Vec<Name>,
    revision: Num64,
}

#[derive(Arbitrary, Debug)]
enum L4 {
    Tcp(NumU32, NumU32),
    Udp(NumU32, NumU32),
    Sctp(NumU32, NumU32),
    Icmpv4(u32, u32),
    Icmpv6(u32, u32),
    Vrrp,
    Igmp,
}

/// An `int32` (enum numbers, event types): small numbers (every known enum value is below
/// 256) most of the time, else the ends of the type.
#[derive(Arbitrary, Debug)]
enum Num32 {
    Small(u8),
    Any(i32),
    Min,
    Max,
    MinusOne,
}

impl Num32 {
    fn get(&self) -> i32 {
        match self {
            Num32::Small(n) => i32::from(*n),
            Num32::Any(n) => *n,
            Num32::Min => i32::MIN,
            Num32::Max => i32::MAX,
            Num32::MinusOne => -1,
        }
    }
}

/// A verdict: the two that count most of the time, else any number.
#[derive(Arbitrary, Debug)]
enum VerdictNum {
    Dropped,
    Audit,
    Other(Num32),
}

impl VerdictNum {
    fn get(&self) -> i32 {
        match self {
            VerdictNum::Dropped => hubble_noise::api::flow::Verdict::Dropped as i32,
            VerdictNum::Audit => hubble_noise::api::flow::Verdict::Audit as i32,
            VerdictNum::Other(n) => n.get(),
        }
    }
}

/// A `uint32` (ports, counts, TTLs, identities).
#[derive(Arbitrary, Debug)]
enum NumU32 {
    Pool(u8),
    Any(u32),
    Max,
}

impl NumU32 {
    fn get(&self) -> u32 {
        const POOL: [u32; 12] = [0, 1, 2, 53, 80, 443, 8080, 65_535, 65_536, 300, 130, 181];
        match self {
            NumU32::Pool(n) => POOL[usize::from(*n) % POOL.len()],
            NumU32::Any(n) => *n,
            NumU32::Max => u32::MAX,
        }
    }
}

/// A `uint64` count.
#[derive(Arbitrary, Debug)]
enum Num64 {
    Small(u8),
    Any(u64),
    Max,
    BelowMax(u8),
}

impl Num64 {
    fn get(&self) -> u64 {
        match self {
            Num64::Small(n) => u64::from(*n),
            Num64::Any(n) => *n,
            Num64::Max => u64::MAX,
            Num64::BelowMax(n) => u64::MAX - u64::from(*n),
        }
    }
}

/// A protobuf `Timestamp`: any `seconds` (±2^63) and any `nanos`.
#[derive(Arbitrary, Debug)]
struct Time {
    seconds: Seconds,
    nanos: Nanos,
}

#[derive(Arbitrary, Debug)]
enum Seconds {
    /// Around the recordings' times (November 2026).
    Recent(i16),
    Zero,
    Min,
    Max,
    /// Around the latest exemplar time (9999-12-31T23:59:59Z).
    EndOfExemplars(i8),
    /// Around the end of `f64`'s exact integers.
    Exact(i8),
    Any(i64),
}

#[derive(Arbitrary, Debug)]
enum Nanos {
    Zero,
    Valid(u32),
    Billion,
    Max,
    Min,
    MinusOne,
}

impl Time {
    fn get(&self) -> pbjson_types::Timestamp {
        let seconds = match &self.seconds {
            Seconds::Recent(d) => 1_795_687_201 + i64::from(*d),
            Seconds::Zero => 0,
            Seconds::Min => i64::MIN,
            Seconds::Max => i64::MAX,
            Seconds::EndOfExemplars(d) => 253_402_300_799 + i64::from(*d),
            Seconds::Exact(d) => (1i64 << 53) + i64::from(*d),
            Seconds::Any(s) => *s,
        };
        let nanos = match &self.nanos {
            Nanos::Zero => 0,
            Nanos::Valid(n) => i32::try_from(n % 1_000_000_000).unwrap_or(0),
            Nanos::Billion => 1_000_000_000,
            Nanos::Max => i32::MAX,
            Nanos::Min => i32::MIN,
            Nanos::MinusOne => -1,
        };
        pbjson_types::Timestamp { seconds, nanos }
    }
}

/// Strings a sender may put in a label, a log line or an error: quotes, backslashes, newlines,
/// the series-key separator, NUL, the overflow marker, long multi-byte runs.
const HOSTILE: [&str; 14] = [
    "\"",
    "\\",
    "a\nb",
    "a\u{1f}b",
    "\u{1f}",
    "a\0b",
    "__overflow__",
    "\u{202e}",
    "é",
    "💥",
    "# EOF",
    "} 1\nx 2",
    "%s%n",
    "\r",
];

/// Any string: arbitrary, hostile, or long.
#[derive(Arbitrary, Debug)]
enum Text {
    Any(String),
    Hostile(u8),
    /// A run of one character, up to a few thousand bytes (past every label limit).
    Run(char, u16),
}

impl Text {
    fn get(&self) -> String {
        match self {
            Text::Any(s) => s.clone(),
            Text::Hostile(n) => HOSTILE[usize::from(*n) % HOSTILE.len()].to_owned(),
            Text::Run(c, n) => std::iter::repeat_n(*c, usize::from(*n % 4096)).collect(),
        }
    }
}

/// Names of namespaces, pods, nodes, labels, DNS names, policies: from the recordings most of
/// the time, so that flows, answers and rules meet.
const NAMES: [&str; 24] = [
    "",
    "shop",
    "kube-system",
    "checkout",
    "checkout-6d5f8b7c9-x2k4q",
    "coredns-7c5d9b8f6-abcde",
    "collector.telemetry.example.com.",
    "EDGE.Telemetry.Example.COM",
    "api.vendor.io",
    "k8s:app=checkout",
    "k8s:k8s-app=kube-dns",
    "k8s:io.kubernetes.pod.namespace=shop",
    "reserved:world",
    "reserved:host",
    "prod/worker-1",
    "prod/worker-2",
    "Deployment",
    "CiliumNetworkPolicy",
    "deny-telemetry",
    ".",
    "*",
    "a..b",
    "xn--bcher-kva.example",
    "ünï.example",
];

#[derive(Arbitrary, Debug)]
enum Name {
    Pool(u8),
    Text(Text),
}

impl Name {
    fn get(&self) -> String {
        match self {
            Name::Pool(n) => NAMES[usize::from(*n) % NAMES.len()].to_owned(),
            Name::Text(t) => t.get(),
        }
    }
}

/// A flow's uuid: from a pool of eight (duplicates), none, or any text.
#[derive(Arbitrary, Debug)]
enum Uuid {
    Pool(u8),
    None,
    Text(Text),
}

impl Uuid {
    fn get(&self) -> String {
        match self {
            Uuid::Pool(n) => format!("5eed0000-0000-0000-0000-00000000000{}", n % 8),
            Uuid::None => String::new(),
            Uuid::Text(t) => t.get(),
        }
    }
}

const IPS: [&str; 8] = [
    "10.0.1.23",
    "10.0.0.10",
    "203.0.113.10",
    "203.0.113.11",
    "2001:db8::1",
    "::ffff:203.0.113.10",
    "fe80::1%eth0",
    "0.0.0.0",
];

#[derive(Arbitrary, Debug)]
enum Ip {
    Pool(u8),
    V4([u8; 4]),
    V6([u16; 8]),
    Text(Text),
}

impl Ip {
    fn get(&self) -> String {
        match self {
            Ip::Pool(n) => IPS[usize::from(*n) % IPS.len()].to_owned(),
            Ip::V4(o) => std::net::Ipv4Addr::from(*o).to_string(),
            Ip::V6(s) => std::net::Ipv6Addr::from(*s).to_string(),
            Ip::Text(t) => t.get(),
        }
    }
}

fn names(v: &[Name]) -> Vec<String> {
    v.iter().map(Name::get).collect()
}

impl EndpointDesc {
    fn get(&self) -> Endpoint {
        Endpoint {
            identity: self.identity.get(),
            namespace: self.namespace.get(),
            labels: names(&self.labels),
            pod_name: self.pod.get(),
            workloads: self
                .workloads
                .iter()
                .map(|(name, kind)| Workload {
                    name: name.get(),
                    kind: kind.get(),
                })
                .collect(),
            cluster_name: self.cluster.get(),
            ..Endpoint::default()
        }
    }
}

impl PolicyRef {
    fn get(&self) -> Policy {
        Policy {
            name: self.name.get(),
            namespace: self.namespace.get(),
            labels: names(&self.labels),
            revision: self.revision.get(),
            kind: self.kind.get(),
        }
    }
}

impl L4 {
    fn get(&self) -> Layer4 {
        use layer4::Protocol as P;
        let protocol = match self {
            L4::Tcp(s, d) => P::Tcp(Tcp {
                source_port: s.get(),
                destination_port: d.get(),
            }),
            L4::Udp(s, d) => P::Udp(Udp {
                source_port: s.get(),
                destination_port: d.get(),
            }),
            L4::Sctp(s, d) => P::Sctp(Sctp {
                source_port: s.get(),
                destination_port: d.get(),
            }),
            L4::Icmpv4(t, c) => P::IcmPv4(IcmPv4 {
                r#type: *t,
                code: *c,
            }),
            L4::Icmpv6(t, c) => P::IcmPv6(IcmPv6 {
                r#type: *t,
                code: *c,
            }),
            L4::Vrrp => P::Vrrp(Vrrp::default()),
            L4::Igmp => P::Igmp(Igmp::default()),
        };
        Layer4 {
            protocol: Some(protocol),
        }
    }
}

impl DnsDesc {
    fn get(&self) -> Layer7 {
        Layer7 {
            r#type: self.l7_type.get(),
            latency_ns: self.latency.get(),
            record: Some(layer7::Record::Dns(Dns {
                query: self.query.get(),
                ips: self.ips.iter().map(Ip::get).collect(),
                ttl: self.ttl.get(),
                cnames: names(&self.cnames),
                rcode: self.rcode.get(),
                qtypes: names(&self.qtypes),
                ..Dns::default()
            })),
        }
    }
}

impl FlowDesc {
    fn get(&self) -> Flow {
        Flow {
            time: self.time.as_ref().map(Time::get),
            verdict: self.verdict.get(),
            drop_reason: self.drop_reason.get(),
            ip: self.ip.as_ref().map(|(s, d)| hubble_noise::api::flow::Ip {
                source: s.get(),
                destination: d.get(),
                ..Default::default()
            }),
            l4: self.l4.as_ref().map(L4::get),
            source: self.source.as_ref().map(EndpointDesc::get),
            destination: self.destination.as_ref().map(EndpointDesc::get),
            r#type: self.flow_type.get(),
            node_name: self.node.as_ref().map(Name::get).unwrap_or_default(),
            source_names: names(&self.source_names),
            destination_names: names(&self.destination_names),
            l7: self.dns.as_ref().map(DnsDesc::get),
            event_type: self.event.as_ref().map(|(t, s)| CiliumEventType {
                r#type: t.get(),
                sub_type: s.get(),
            }),
            traffic_direction: self.direction.get(),
            drop_reason_desc: self.drop_reason_desc.get(),
            is_reply: self.is_reply.map(|value| pbjson_types::BoolValue { value }),
            uuid: self.uuid.get(),
            egress_denied_by: self.egress_denied_by.iter().map(PolicyRef::get).collect(),
            ingress_denied_by: self.ingress_denied_by.iter().map(PolicyRef::get).collect(),
            policy_log: self.policy_log.iter().map(Text::get).collect(),
            aggregate: self.aggregate.as_ref().map(|(i, e, u)| Aggregate {
                ingress_flow_count: i.get(),
                egress_flow_count: e.get(),
                unknown_direction_flow_count: u.get(),
            }),
            ..Flow::default()
        }
    }
}

impl Message {
    fn response(&self) -> GetFlowsResponse {
        let response_types = match &self.kind {
            Kind::Flow(f) => Some(ResponseTypes::Flow(f.get())),
            Kind::Lost {
                source,
                lost,
                cpu,
                first,
                last,
            } => Some(ResponseTypes::LostEvents(LostEvent {
                source: source.get(),
                num_events_lost: lost.get(),
                cpu: cpu.map(|value| pbjson_types::Int32Value { value }),
                first: first.as_ref().map(Time::get),
                last: last.as_ref().map(Time::get),
            })),
            Kind::NodeStatus {
                state,
                names: n,
                message,
            } => Some(ResponseTypes::NodeStatus(NodeStatusEvent {
                state_change: state.get(),
                node_names: names(n),
                message: message.get(),
            })),
            Kind::Empty => None,
        };
        GetFlowsResponse {
            response_types,
            node_name: self.node.get(),
            time: self.time.as_ref().map(Time::get),
        }
    }
}
