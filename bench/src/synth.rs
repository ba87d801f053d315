//! Synthetic rules and flows of a realistic shape, for benchmarks and the load generator
//! (`hubble-noise bench-relay`). Deterministic: the same arguments give the same data.

use std::fmt::Write as _;

use hubble_noise::api::flow::{
    CiliumEventType, DropReason, Endpoint, Flow, Ip, Layer4, Tcp, TrafficDirection, Verdict,
    Workload, layer4,
};
use hubble_noise::api::observer::GetFlowsResponse;
use hubble_noise::api::observer::get_flows_response::ResponseTypes;

/// A rule file of `n` rules: half fqdn patterns, 30 % CIDRs, the rest namespace, label and
/// port rules (the "1,000 rules: 500 fqdn, 300 CIDRs, the rest namespace/label/port").
/// None of them matches the flows of [`flow`] except the last one, so a classification walks
/// the whole list.
pub fn rules(n: usize) -> String {
    let mut s = String::new();
    let fqdn = n / 2;
    let cidr = n * 3 / 10;
    for i in 0..n {
        let _ = write!(
            s,
            "[[rule]]\nname = \"r{i}\"\nowner = \"bench\"\ncomment = \"synthetic\"\n[rule.match]\ndirection = \"egress\"\n"
        );
        if i + 1 == n {
            s.push_str("[rule.match.destination]\nentity = [\"world\"]\nport = [\"443/TCP\"]\n\n");
        } else if i < fqdn {
            let _ = write!(
                s,
                "[rule.match.destination]\nfqdn = [\"*.svc{i}.vendor{}.example.com\", \"api{i}.example.org\"]\n\n",
                i % 17
            );
        } else if i < fqdn + cidr {
            let _ = write!(
                s,
                "[rule.match.destination]\ncidr = [\"{}.{}.{}.0/24\"]\n\n",
                100 + i % 100,
                i % 250,
                i % 200
            );
        } else {
            let _ = write!(
                s,
                "[rule.match.source]\nnamespace = [\"team-{i}\"]\nlabels = [\"app=svc-{i}\"]\n[rule.match.destination]\nport = [\"{}/TCP\"]\n\n",
                1000 + i
            );
        }
    }
    s
}

/// The `i`th synthetic denied flow: egress from one of `namespaces` namespaces to a world IP
/// on 443, a policy verdict (type 5) with POLICY_DENIED, a unique uuid.
pub fn flow(i: u64, namespaces: u64) -> GetFlowsResponse {
    let ns = format!("ns-{}", i % namespaces.max(1));
    let node = format!("prod/node-{}", i % 8);
    let f = Flow {
        time: Some(pbjson_types::Timestamp {
            seconds: 1_790_000_000 + i64::try_from(i / 1000).unwrap_or(0),
            nanos: i32::try_from(i % 1000).unwrap_or(0) * 1_000_000,
        }),
        verdict: Verdict::Dropped as i32,
        drop_reason: DropReason::PolicyDenied as u32,
        drop_reason_desc: DropReason::PolicyDenied as i32,
        ip: Some(Ip {
            source: format!("10.0.{}.{}", i % 200, i % 250),
            destination: format!("203.0.{}.{}", i % 100, i % 250),
            ..Ip::default()
        }),
        l4: Some(Layer4 {
            protocol: Some(layer4::Protocol::Tcp(Tcp {
                source_port: 40_000 + u32::try_from(i % 20_000).unwrap_or(0),
                destination_port: 443,
            })),
        }),
        source: Some(Endpoint {
            id: 1000,
            identity: 50_000,
            namespace: ns.clone(),
            labels: vec![
                "k8s:app=checkout".into(),
                format!("k8s:io.kubernetes.pod.namespace={ns}"),
                "k8s:io.cilium.k8s.policy.serviceaccount=default".into(),
            ],
            pod_name: format!("checkout-6d5f8b7c9-{:05}", i % 1000),
            workloads: vec![Workload {
                name: "checkout".into(),
                kind: "Deployment".into(),
            }],
            cluster_name: "prod".into(),
        }),
        destination: Some(Endpoint {
            identity: 2,
            labels: vec!["reserved:world".into()],
            ..Endpoint::default()
        }),
        r#type: 1,
        node_name: node.clone(),
        event_type: Some(CiliumEventType {
            r#type: 5,
            sub_type: 0,
        }),
        traffic_direction: TrafficDirection::Egress as i32,
        uuid: format!(
            "{:08x}-0000-4000-8000-{:012x}",
            i >> 32,
            i & 0xffff_ffff_ffff
        ),
        summary: "TCP Flags: SYN".into(),
        ..Flow::default()
    };
    GetFlowsResponse {
        node_name: node,
        time: f.time,
        response_types: Some(ResponseTypes::Flow(f)),
    }
}

/// The `i`th synthetic DNS answer (an L7 DNS response, FORWARDED): the pod of [`flow`]`(i)`
/// resolved `host<i>.example.com` to a world IP of its own, with a one-hour TTL. Each teaches
/// the name cache one distinct entry.
pub fn dns_answer(i: u64, namespaces: u64) -> GetFlowsResponse {
    use hubble_noise::api::flow::{Dns, L7FlowType, Layer7, Udp, layer7};
    let mut resp = flow(i, namespaces);
    if let Some(ResponseTypes::Flow(f)) = resp.response_types.as_mut() {
        let pod = f.source.take();
        f.destination = pod;
        f.source = Some(Endpoint {
            namespace: "kube-system".into(),
            pod_name: "coredns-0".into(),
            // A trusted server (the default `dns.servers`).
            labels: vec!["k8s:k8s-app=kube-dns".into()],
            ..Endpoint::default()
        });
        f.verdict = Verdict::Forwarded as i32;
        f.drop_reason = 0;
        f.drop_reason_desc = 0;
        f.r#type = 2;
        f.l4 = Some(Layer4 {
            protocol: Some(layer4::Protocol::Udp(Udp {
                source_port: 53,
                destination_port: 40_000,
            })),
        });
        f.l7 = Some(Layer7 {
            r#type: L7FlowType::Response as i32,
            latency_ns: 0,
            record: Some(layer7::Record::Dns(Dns {
                query: format!("host{i}.example.com."),
                ips: vec![learned_ip(i)],
                ttl: 3600,
                ..Dns::default()
            })),
        });
        f.event_type = Some(CiliumEventType {
            r#type: 129,
            sub_type: 0,
        });
        f.is_reply = Some(pbjson_types::BoolValue { value: true });
        f.uuid = format!("dddddddd-0000-4000-8000-{i:012x}");
    }
    resp
}

/// The address the `i`th DNS answer ([`dns_answer`]) teaches.
pub fn learned_ip(i: u64) -> String {
    format!("198.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)
}

/// Points a flow of [`flow`]`(i)` at the address [`dns_answer`]`(i)` taught its pod, so that
/// its destination has a learned name (`host<i>.example.com`).
pub fn to_learned_ip(resp: &mut GetFlowsResponse, i: u64) {
    if let Some(ResponseTypes::Flow(f)) = resp.response_types.as_mut()
        && let Some(ip) = f.ip.as_mut()
    {
        ip.destination = learned_ip(i);
    }
}
