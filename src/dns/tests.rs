use super::*;
use crate::api::flow::{Dns, Endpoint, Layer4, Layer7, Udp, layer4};
use crate::config::DnsConfig;
use proptest::prelude::*;

fn coredns() -> Endpoint {
    Endpoint {
        namespace: "kube-system".into(),
        pod_name: "coredns-1".into(),
        labels: vec!["k8s:k8s-app=kube-dns".into()],
        ..Endpoint::default()
    }
}

fn answer_from(
    server: Endpoint,
    pod: &str,
    query: &str,
    cnames: &[&str],
    ips: &[&str],
    ttl: u32,
    at: i64,
) -> Flow {
    Flow {
        time: Some(pbjson_types::Timestamp {
            seconds: at,
            nanos: 0,
        }),
        verdict: Verdict::Forwarded as i32,
        l4: Some(Layer4 {
            protocol: Some(layer4::Protocol::Udp(Udp {
                source_port: 53,
                destination_port: 40000,
            })),
        }),
        source: Some(server),
        destination: Some(Endpoint {
            namespace: "shop".into(),
            pod_name: pod.into(),
            ..Endpoint::default()
        }),
        l7: Some(Layer7 {
            r#type: L7FlowType::Response as i32,
            latency_ns: 0,
            record: Some(layer7::Record::Dns(Dns {
                query: query.into(),
                ips: ips.iter().map(|s| s.to_string()).collect(),
                ttl,
                cnames: cnames.iter().map(|s| s.to_string()).collect(),
                ..Dns::default()
            })),
        }),
        is_reply: Some(pbjson_types::BoolValue { value: true }),
        ..Flow::default()
    }
}

fn answer(pod: &str, query: &str, ips: &[&str], ttl: u32, at: i64) -> Flow {
    answer_from(coredns(), pod, query, &["Edge.Example.COM."], ips, ttl, at)
}

/// The live asked names of (shop/pod, ip) at `at`, sorted.
fn asked(c: &NameCache, pod: &str, ip: &str, at: f64) -> Vec<String> {
    let Some(l) = c.learned("shop", pod, ip.parse().expect("ip")) else {
        return Vec::new();
    };
    let mut v: Vec<String> = l.live(at).map(|a| a.name.to_string()).collect();
    v.sort();
    v
}

#[test]
fn learns_the_asked_name_per_pod_until_the_ttl_with_the_cname_as_an_alias() {
    let mut c = NameCache::default();
    let f = answer(
        "app-1",
        "collector.example.com.",
        &["203.0.113.10"],
        300,
        1000,
    );
    assert_eq!(c.learn(&f, None), Learn::Learned(1));
    assert_eq!(
        asked(&c, "app-1", "203.0.113.10", 1200.0),
        ["collector.example.com."]
    );
    let l = c
        .learned("shop", "app-1", "203.0.113.10".parse().expect("ip"))
        .expect("learned");
    assert!(
        l.iter().any(|a| a.has_alias("edge.example.com")),
        "the CNAME is an alias"
    );
    assert!(
        asked(&c, "app-2", "203.0.113.10", 1200.0).is_empty(),
        "another pod"
    );
    assert!(
        asked(&c, "app-1", "203.0.113.11", 1200.0).is_empty(),
        "another IP"
    );
    assert!(
        asked(&c, "app-1", "203.0.113.10", 1301.0).is_empty(),
        "after the TTL"
    );
}

#[test]
fn asking_the_same_name_again_in_any_case_is_one_name() {
    let mut c = NameCache::default();
    for (q, at) in [
        ("API.vendor.io.", 0),
        ("api.vendor.io", 10),
        ("api.VENDOR.io.", 20),
    ] {
        c.learn(&answer("p", q, &["192.0.2.1"], 30, at), None);
    }
    assert_eq!(c.len(), 1);
    assert_eq!(asked(&c, "p", "192.0.2.1", 45.0), ["api.vendor.io."]);
    let l = c
        .learned("shop", "p", "192.0.2.1".parse().expect("ip"))
        .expect("learned");
    let times: Vec<f64> = l.iter().map(|a| a.asked_at).collect();
    assert_eq!(times, [20.0], "the latest answer");
    c.learn(
        &answer("p", "other.vendor.io", &["192.0.2.1"], 30, 21),
        None,
    );
    assert_eq!(
        asked(&c, "p", "192.0.2.1", 45.0),
        ["api.vendor.io.", "other.vendor.io."],
        "a second asked name for the same IP"
    );
}

#[test]
fn an_untrusted_server_teaches_nothing_is_counted_and_remembered() {
    let mut c = NameCache::default();
    let tenant = Endpoint {
        namespace: "tenant".into(),
        pod_name: "dnsmasq-0".into(),
        labels: vec!["k8s:k8s-app=kube-dns".into()],
        ..Endpoint::default()
    };
    let f = answer_from(
        tenant,
        "p",
        "telemetry.example.com",
        &[],
        &["192.0.2.9"],
        60,
        5,
    );
    assert_eq!(
        c.learn(&f, None),
        Learn::Ignored(IgnoreReason::UntrustedServer)
    );
    assert_eq!(c.len(), 0);
    assert!(asked(&c, "p", "192.0.2.9", 6.0).is_empty());
    let why = c
        .ignored("shop", "p", "192.0.2.9".parse().expect("ip"))
        .expect("remembered");
    assert_eq!(&*why.server, "tenant/dnsmasq-0");
    assert_eq!(&*why.name, "telemetry.example.com.");
    let taken: Vec<_> = c.take_ignored().collect();
    assert_eq!(taken, [(IgnoreReason::UntrustedServer, 1)]);
    assert_eq!(c.take_ignored().count(), 0, "taken once");
}

#[test]
fn a_dropped_answer_never_reached_the_pod_and_teaches_nothing() {
    let mut c = NameCache::default();
    let mut f = answer("p", "a.example.com", &["192.0.2.1"], 60, 0);
    f.verdict = Verdict::Dropped as i32;
    assert_eq!(c.learn(&f, None), Learn::NotAnAnswer);
    assert!(c.is_empty());
}

#[test]
fn servers_can_be_chosen_by_cidr_and_an_empty_list_trusts_none() {
    let cfg = DnsConfig {
        servers: vec![crate::rules::endpoint::EndpointSpec {
            cidr: vec!["10.96.0.10/32".into()],
            ..Default::default()
        }],
        ..DnsConfig::default()
    };
    let mut c = NameCache::new(&cfg);
    let mut f = answer("p", "a.example.com", &["192.0.2.1"], 60, 0);
    assert_eq!(
        c.learn(&f, None),
        Learn::Ignored(IgnoreReason::UntrustedServer),
        "kube-dns is not 10.96.0.10 here"
    );
    f.ip = Some(crate::api::flow::Ip {
        source: "10.96.0.10".into(),
        destination: "10.0.1.5".into(),
        ..Default::default()
    });
    assert_eq!(c.learn(&f, None), Learn::Learned(1));
    let none = DnsConfig {
        servers: Vec::new(),
        ..DnsConfig::default()
    };
    let mut c = NameCache::new(&none);
    assert!(matches!(c.learn(&f, None), Learn::Ignored(_)));
}

#[test]
fn cluster_scope_shares_names_and_min_ttl_floors() {
    let cfg = DnsConfig {
        scope: DnsScope::Cluster,
        min_ttl: std::time::Duration::from_secs(600),
        ..DnsConfig::default()
    };
    let mut c = NameCache::new(&cfg);
    c.learn(
        &answer("app-1", "a.example.com.", &["192.0.2.1"], 5, 0),
        None,
    );
    assert_eq!(asked(&c, "other", "192.0.2.1", 500.0), ["a.example.com."]);
}

#[test]
fn learning_can_be_turned_off() {
    let cfg = DnsConfig {
        learn: false,
        ..DnsConfig::default()
    };
    let mut c = NameCache::new(&cfg);
    assert_eq!(
        c.learn(&answer("p", "a.example.com.", &["192.0.2.1"], 5, 0), None),
        Learn::NotAnAnswer
    );
    assert!(c.is_empty());
}

#[test]
fn untrusted_answers_kept_for_explain_are_bounded() {
    let mut c = NameCache::default();
    let tenant = Endpoint {
        namespace: "tenant".into(),
        pod_name: "dns".into(),
        ..Endpoint::default()
    };
    for i in 0..(MAX_IGNORED + 100) {
        let ip = format!("10.{}.{}.{}", i >> 16 & 255, i >> 8 & 255, i & 255);
        let f = answer_from(tenant.clone(), "p", "x.example.com", &[], &[&ip], 60, 0);
        c.learn(&f, None);
    }
    assert_eq!(c.ignored.len(), MAX_IGNORED);
    assert!(c.ignored_order.len() <= MAX_IGNORED);
}

proptest! {
    #[test]
    fn never_holds_more_than_max_entries(
        max in 1usize..50,
        answers in proptest::collection::vec((0u8..8, 0u8..20, 0u8..6, 0u32..100), 0..300),
    ) {
        let cfg = DnsConfig { max_entries: max, ..DnsConfig::default() };
        let mut c = NameCache::new(&cfg);
        for (pod, ip, name, ttl) in answers {
            let f = answer(
                &format!("p{pod}"),
                &format!("n{name}.example.com."),
                &[&format!("10.0.0.{ip}")],
                ttl,
                0,
            );
            c.learn(&f, None);
            prop_assert!(c.len() <= max, "{} > {}", c.len(), max);
            let held: usize = (0u8..8)
                .flat_map(|pod| (0u8..20).map(move |ip| (pod, ip)))
                .filter_map(|(pod, ip)| {
                    let ip = format!("10.0.0.{ip}").parse().ok()?;
                    Some(c.learned("shop", &format!("p{pod}"), ip)?.iter().count())
                })
                .sum();
            prop_assert_eq!(held, c.len());
        }
    }
}

/// One step of the property test below.
#[derive(Debug, Clone)]
enum Step {
    /// A DNS answer for `pod`: the asked name, its CNAME chain, the IPs, the TTL, whether a
    /// trusted server gave it, and the seconds since the step before.
    Answer {
        pod: usize,
        name: usize,
        cnames: Vec<usize>,
        ips: Vec<usize>,
        ttl: u32,
        trusted: bool,
        dt: i64,
    },
    /// A drop from `pod` to an IP, with names listed on the flow.
    Drop {
        pod: usize,
        ip: usize,
        names: Vec<usize>,
        dt: i64,
    },
}

/// Names as they come over the wire, in several spellings of the same few names: covered by
/// `*.tel.example` or not.
const POOL: [&str; 8] = [
    "a.tel.example.",
    "A.Tel.Example",
    "b.tel.example",
    "x.other.example.",
    "X.OTHER.example",
    "cdn.edge.example.",
    "tel.example",
    "deep.a.tel.example.",
];
const IPS: [&str; 3] = ["198.51.100.1", "198.51.100.2", "2001:db8::3"];

fn step_strategy() -> impl Strategy<Value = Step> {
    let pool = 0..POOL.len();
    prop_oneof![
        (
            0usize..2,
            pool.clone(),
            proptest::collection::vec(pool.clone(), 0..3),
            proptest::collection::vec(0..IPS.len(), 1..3),
            0u32..30,
            proptest::bool::weighted(0.8),
            0i64..10,
        )
            .prop_map(|(pod, name, cnames, ips, ttl, trusted, dt)| Step::Answer {
                pod,
                name,
                cnames,
                ips,
                ttl,
                trusted,
                dt,
            }),
        (
            0usize..2,
            0..IPS.len(),
            proptest::collection::vec(pool, 0..3),
            0i64..10
        )
            .prop_map(|(pod, ip, names, dt)| Step::Drop { pod, ip, names, dt }),
    ]
}

/// PRODUCT.md §5, written plainly: the key `*.tel.example` covers a drop when there is at least
/// one name, every name the pod asked for whose live trusted answer holds the IP is covered,
/// and every name on the flow is covered unless it is a CNAME target (in the latest answer) of
/// such an asked name. Names compare without case and without one trailing dot.
fn oracle(history: &[(i64, &Step)], pod: usize, ip: usize, names: &[usize], t: i64) -> bool {
    let norm = |s: &str| s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase();
    let covered = |s: &str| {
        let n = norm(s);
        n.strip_suffix(".tel.example")
            .is_some_and(|head| !head.is_empty() && !head.contains('.'))
    };
    // Per asked name: (latest expiry, CNAMEs of the latest answer).
    let mut asked: Vec<(String, i64, Vec<String>)> = Vec::new();
    for (at, s) in history {
        let Step::Answer {
            pod: p,
            name,
            cnames,
            ips,
            ttl,
            trusted,
            ..
        } = s
        else {
            continue;
        };
        if *p != pod || !*trusted || !ips.contains(&ip) {
            continue;
        }
        let n = norm(POOL[*name]);
        let chain: Vec<String> = cnames
            .iter()
            .map(|c| norm(POOL[*c]))
            .filter(|c| *c != n)
            .collect();
        let expires = at + i64::from(*ttl);
        match asked.iter_mut().find(|(a, _, _)| *a == n) {
            Some(e) => {
                e.1 = e.1.max(expires);
                e.2 = chain;
            }
            None => asked.push((n, expires, chain)),
        }
    }
    let live: Vec<_> = asked.iter().filter(|(_, e, _)| t <= *e).collect();
    let mut required: Vec<String> = live.iter().map(|(n, _, _)| n.clone()).collect();
    for f in names {
        let f = norm(POOL[*f]);
        if !live.iter().any(|(_, _, chain)| chain.contains(&f)) {
            required.push(f);
        }
    }
    !required.is_empty() && required.iter().all(|n| covered(n))
}

fn drop_flow(pod: usize, ip: &str, names: &[usize], at: i64, uuid: usize) -> GetFlowsResponse {
    let ipv = if ip.contains(':') { "IPv6" } else { "IPv4" };
    let line = serde_json::json!({
        "flow": {
            "uuid": format!("drop-{uuid}"),
            "verdict": "DROPPED",
            "drop_reason_desc": "POLICY_DENIED",
            "IP": {"source": "10.0.0.5", "destination": ip, "ipVersion": ipv},
            "l4": {"TCP": {"source_port": 40000, "destination_port": 443}},
            "source": {"namespace": "shop", "pod_name": format!("p{pod}")},
            "destination": {"identity": 2, "labels": ["reserved:world"]},
            "destination_names": names.iter().map(|n| POOL[*n]).collect::<Vec<_>>(),
            "event_type": {"type": 5},
            "traffic_direction": "EGRESS",
            "time": crate::output::rfc3339(&pbjson_types::Timestamp { seconds: at, nanos: 0 }),
        }
    });
    crate::source::file::decode_line(line.to_string().as_bytes())
        .expect("decodes")
        .expect("a response")
}

use crate::api::observer::GetFlowsResponse;
use crate::api::observer::get_flows_response::ResponseTypes;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    /// A drop is expected by an `fqdn` key exactly when the plain oracle says so, whatever
    /// the answers before it (shared IPs, re-asked names, CNAMEs, untrusted servers, TTLs).
    #[test]
    fn fqdn_keys_agree_with_a_plain_oracle(steps in proptest::collection::vec(step_strategy(), 1..40)) {
        let rules = crate::rules::RuleSet::load(&[crate::rules::RuleSource {
            path: "prop.toml".into(),
            text: "[[rule]]\nname = \"tel\"\nowner = \"o\"\ncomment = \"c\"\n\
                   [rule.match.destination]\nfqdn = [\"*.tel.example\"]\n".into(),
            inline: false,
        }]).expect("rule loads");
        let classifier = crate::classify::Classifier { rules, ..Default::default() };
        let mut pipeline = crate::pipeline::Pipeline::new(&crate::config::Config::default());
        let tenant = Endpoint { namespace: "tenant".into(), pod_name: "dns".into(), ..Endpoint::default() };
        let mut t = 1_000_000i64;
        let mut history: Vec<(i64, &Step)> = Vec::new();
        for (i, s) in steps.iter().enumerate() {
            match s {
                Step::Answer { pod, name, cnames, ips, ttl, trusted, dt } => {
                    t += dt;
                    let server = if *trusted { coredns() } else { tenant.clone() };
                    let cn: Vec<&str> = cnames.iter().map(|c| POOL[*c]).collect();
                    let ip: Vec<&str> = ips.iter().map(|i| IPS[*i]).collect();
                    let mut f = answer_from(server, &format!("p{pod}"), POOL[*name], &cn, &ip, *ttl, t);
                    f.uuid = format!("answer-{i}");
                    let resp = GetFlowsResponse {
                        response_types: Some(ResponseTypes::Flow(f)),
                        ..Default::default()
                    };
                    let _ = pipeline.process(&resp, &classifier);
                    history.push((t, s));
                }
                Step::Drop { pod, ip, names, dt } => {
                    t += dt;
                    let resp = drop_flow(*pod, IPS[*ip], names, t, i);
                    let want = oracle(&history, *pod, *ip, names, t);
                    match pipeline.process(&resp, &classifier) {
                        crate::pipeline::Outcome::Counted { decision, .. } => {
                            let got = decision.class == crate::rules::Class::Expected;
                            prop_assert_eq!(got, want, "step {}: {:?}", i, s);
                        }
                        o => prop_assert!(false, "not counted: {:?}", o),
                    }
                }
            }
        }
    }
}
