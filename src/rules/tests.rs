//! Loading and matching of whole rule sets: order, expiry, every key, the index against the
//! direct matcher, and the invalid-file fixtures with their exact messages.

use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::*;
use crate::api::flow::{
    DropReason, Endpoint, Flow, Ip, Layer4, Layer7, TrafficDirection, Verdict, Workload, layer4,
    layer7,
};
use crate::flow::FlowCtx;

fn src(text: &str) -> RuleSource {
    RuleSource {
        path: "rules.toml".into(),
        text: text.into(),
        inline: false,
    }
}

fn load(text: &str) -> RuleSet {
    match RuleSet::load(&[src(text)]) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

fn load_err(text: &str) -> String {
    RuleSet::load(&[src(text)]).unwrap_err().to_string()
}

fn ep(ns: &str, pod: &str, labels: &[&str]) -> Endpoint {
    Endpoint {
        namespace: ns.into(),
        pod_name: pod.into(),
        labels: labels.iter().map(|s| s.to_string()).collect(),
        workloads: vec![Workload {
            name: pod.split('-').next().unwrap_or("").into(),
            kind: "Deployment".into(),
        }],
        identity: 12345,
        ..Default::default()
    }
}

/// A DROPPED egress TCP flow from shop/web-1 (10.0.0.5) to 203.0.113.7:443 at t = 1000 s.
fn flow() -> Flow {
    Flow {
        time: Some(pbjson_types::Timestamp {
            seconds: 1000,
            nanos: 0,
        }),
        verdict: Verdict::Dropped as i32,
        drop_reason_desc: DropReason::PolicyDenied as i32,
        traffic_direction: TrafficDirection::Egress as i32,
        node_name: "prod/node-1".into(),
        ip: Some(Ip {
            source: "10.0.0.5".into(),
            destination: "203.0.113.7".into(),
            ..Default::default()
        }),
        l4: Some(Layer4 {
            protocol: Some(layer4::Protocol::Tcp(crate::api::flow::Tcp {
                source_port: 40000,
                destination_port: 443,
            })),
        }),
        source: Some(ep("shop", "web-1", &["k8s:app=web", "k8s:tier=front"])),
        destination: Some(Endpoint {
            identity: 2,
            labels: vec!["reserved:world".into()],
            ..Default::default()
        }),
        destination_names: vec!["API.Vendor.io.".into()],
        ..Default::default()
    }
}

fn first(set: &RuleSet, f: &Flow) -> Option<String> {
    let ctx = FlowCtx::new(f, "", None);
    set.first_match(&ctx).map(|i| set.rules()[i].name.clone())
}

const U: &str = "class = \"unexpected\"\n";

fn rule(name: &str, body: &str) -> String {
    format!("[[rule]]\nname = \"{name}\"\n{U}{body}\n")
}

#[test]
fn first_match_wins_in_order() {
    let set = load(
        &(rule("a", "match = { direction = \"ingress\" }")
            + &rule("b", "match.destination = { port = [\"443/TCP\"] }")
            + &rule("c", "match = { direction = \"egress\" }")),
    );
    assert_eq!(first(&set, &flow()).as_deref(), Some("b"));
    assert_eq!(set.rules()[1].line, 5);
    assert_eq!(set.rules()[1].reason, "b");
    let mut f = flow();
    f.l4 = None;
    assert_eq!(first(&set, &f).as_deref(), Some("c"));
}

#[test]
fn expiry_is_judged_against_the_flow_time() {
    let set = load(
        &(rule(
            "old",
            "expires = 1970-01-01T00:16:39Z\nmatch = { direction = \"egress\" }",
        ) + &rule(
            "now",
            "expires = 1970-01-01T00:16:40Z\nmatch = { direction = \"egress\" }",
        )),
    );
    assert_eq!(set.rules()[0].expires, Some(999.0));
    assert_eq!(first(&set, &flow()).as_deref(), Some("now"));
    let mut late = flow();
    late.time = Some(pbjson_types::Timestamp {
        seconds: 1000,
        nanos: 1,
    });
    assert_eq!(first(&set, &late), None);
    let mut no_time = flow();
    no_time.time = None;
    assert_eq!(first(&set, &no_time), None);
    assert!(set.is_expired(0, Some(1000.0)));
    assert!(!set.is_expired(1, Some(1000.0)));
    assert!(set.is_expired(1, None));
}

#[test]
fn expires_accepts_dates_local_and_offset_datetimes() {
    let set = load(
        &(rule(
            "d",
            "expires = 2027-06-01\nmatch = { direction = \"egress\" }",
        ) + &rule(
            "l",
            "expires = 2027-06-01T00:00:00\nmatch = { direction = \"egress\" }",
        ) + &rule(
            "o",
            "expires = 2027-06-01T02:00:00+02:00\nmatch = { direction = \"egress\" }",
        ) + &rule(
            "f",
            "expires = 2027-06-01T00:00:00.5Z\nmatch = { direction = \"egress\" }",
        )),
    );
    let want = 1_811_808_000.0;
    let got: Vec<f64> = set.rules().iter().filter_map(|r| r.expires).collect();
    assert_eq!(got, vec![want, want, want, want + 0.5]);
}

#[test]
fn scalar_keys() {
    let f = flow();
    let hit = |m: &str| first(&load(&rule("r", &format!("[rule.match]\n{m}"))), &f).is_some();
    assert!(hit("verdict = [\"DROPPED\"]"));
    assert!(!hit("verdict = [\"AUDIT\"]"));
    assert!(hit(
        "direction = [\"ingress\", \"egress\"]\ndrop_reason = [\"POLICY_DENIED\"]"
    ));
    assert!(!hit("drop_reason = [\"POLICY_DENY\"]"));
    assert!(hit("node = [\"prod/*\"]"));
    assert!(!hit("node = [\"staging/*\"]"));
    assert!(!hit("policy_log = [\"tag\"]"));
    let mut tagged = flow();
    tagged.policy_log = vec!["".into(), "tag".into()];
    let set = load(&rule("r", "match = { policy_log = [\"tag\"] }"));
    assert!(first(&set, &tagged).is_some());
    tagged.policy_log = vec!["".into()];
    assert!(first(&set, &tagged).is_none());
}

#[test]
fn side_keys() {
    let f = flow();
    let hit = |side: &str, m: &str| {
        first(&load(&rule("r", &format!("[rule.match.{side}]\n{m}"))), &f).is_some()
    };
    assert!(hit(
        "source",
        "namespace = [\"sh*\"]\npod = [\"web-*\"]\nworkload = [\"web\"]"
    ));
    assert!(!hit("source", "pod = [\"api-*\"]"));
    assert!(hit(
        "source",
        "labels = [\"app=web\", \"k8s:tier=front\", \"tier\"]"
    ));
    assert!(!hit("source", "labels = [\"app=web\", \"tier=back\"]"));
    assert!(hit("source", "cidr = [\"10.0.0.0/8\"]"));
    assert!(!hit("source", "cidr = [\"::/0\"]"));
    assert!(hit(
        "destination",
        "entity = [\"world\"]\ncidr = [\"203.0.113.0/24\"]\nport = [\"443/TCP\"]"
    ));
    assert!(hit("destination", "entity = [\"host\", \"world\"]"));
    assert!(!hit("destination", "entity = [\"world-ipv6\"]"));
    assert!(hit("destination", "fqdn = [\"*.vendor.io\"]"));
    assert!(hit("destination", "fqdn = [\"**.io\"]"));
    assert!(!hit("destination", "fqdn = [\"vendor.io\"]"));
    assert!(!hit("source", "fqdn = [\"*.vendor.io\"]"));
    assert!(!hit("destination", "port = [\"443/UDP\"]"));
    assert!(hit("destination", "port = [\"400-500\"]"));
    // Missing values never match: the world side has no namespace, pod or workload.
    assert!(!hit("destination", "namespace = [\"*\"]\nport = [\"443\"]"));
    assert!(!hit("destination", "workload = [\"*\"]\nport = [\"443\"]"));
    assert!(hit("destination", "namespace = [\"\"]\nport = [\"443\"]"));
}

#[test]
fn dns_query_is_a_destination_name() {
    let mut f = flow();
    f.destination_names.clear();
    f.l7 = Some(Layer7 {
        record: Some(layer7::Record::Dns(crate::api::flow::Dns {
            query: "telemetry.example.com.".into(),
            ..Default::default()
        })),
        ..Default::default()
    });
    let set = load(&rule(
        "r",
        "match.destination = { fqdn = [\"*.example.com\"] }",
    ));
    assert!(first(&set, &f).is_some());
}

#[test]
fn inline_source_ignores_other_keys_and_names_are_unique_across_sources() {
    let inline = RuleSource {
        path: "config.toml".into(),
        text: format!(
            "[relay]\naddress = \"x\"\n{}",
            rule("a", "match = { direction = \"egress\" }")
        ),
        inline: true,
    };
    let set = RuleSet::load(&[
        inline.clone(),
        src(&rule("b", "match = { direction = \"egress\" }")),
    ])
    .unwrap();
    assert_eq!(set.rules().len(), 2);
    assert_eq!(set.rules()[0].file, PathBuf::from("config.toml"));
    assert_eq!(first(&set, &flow()).as_deref(), Some("a"));
    let err = RuleSet::load(&[
        inline,
        src(&rule("a", "match = { direction = \"egress\" }")),
    ])
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "rules.toml:2:8: rule[0].name: duplicate rule name \"a\" (first defined at config.toml:3)"
    );
}

#[test]
fn errors_from_every_source_are_collected() {
    let err = RuleSet::load(&[
        src("x = 1"),
        src(&rule("A", "match = { direction = \"up\" }")),
    ])
    .unwrap_err();
    assert_eq!(err.0.len(), 3, "{err}");
}

#[test]
fn limits() {
    let big = "#".repeat(4 * 1024 * 1024 + 1);
    assert_eq!(
        load_err(&big),
        "rules.toml:1:1: : rule file is larger than 4 MiB"
    );
    let many: String = (0..10_001)
        .map(|i| rule(&format!("r{i}"), "match = { direction = \"egress\" }"))
        .collect();
    assert_eq!(
        load_err(&many),
        "rules.toml:40001:1: rule[10000]: more than 10000 rules in one file"
    );
    let long = format!(
        "match.destination = {{ fqdn = [\"{}.com\"] }}",
        "a".repeat(252)
    );
    assert_eq!(
        load_err(&rule("r", &long)),
        "rules.toml:4:31: rule[0].match.destination.fqdn: value longer than 255 characters"
    );
}

/// Every `tests/fixtures/rules/invalid-*.toml` against its `.err` file (the exact output).
/// `BLESS=1` rewrites the `.err` files.
#[test]
fn invalid_fixtures_give_their_exact_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rules");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 12);
    for path in files {
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let got = match RuleSet::load(&[RuleSource {
            path: name.clone().into(),
            text,
            inline: false,
        }]) {
            Ok(_) => panic!("{name} loaded"),
            Err(e) => format!("{e}\n"),
        };
        let want_path = path.with_extension("err");
        if std::env::var_os("BLESS").is_some() {
            std::fs::write(&want_path, &got).unwrap();
        }
        let want = std::fs::read_to_string(&want_path).unwrap_or_default();
        assert_eq!(got, want, "{name}");
    }
}

fn arb_flow() -> impl Strategy<Value = Flow> {
    let ip = prop_oneof![
        Just("10.0.0.5".to_string()),
        Just("10.1.2.3".to_string()),
        Just("203.0.113.7".to_string()),
        Just("2001:db8::1".to_string()),
        Just("::ffff:10.0.0.5".to_string()),
        Just(String::new()),
    ];
    let name = prop_oneof![
        Just("api.vendor.io".to_string()),
        Just("a.telemetry.example.com.".to_string()),
        Just("example.com".to_string()),
        Just("x.example.com.evil.io".to_string()),
    ];
    (
        ip.clone(),
        ip,
        prop::collection::vec(name, 0..3),
        0u32..3,
        prop::option::of(990i64..1010),
        0u32..1000,
    )
        .prop_map(|(sip, dip, names, dir, t, port)| {
            let mut f = flow();
            f.ip = Some(Ip {
                source: sip,
                destination: dip,
                ..Default::default()
            });
            f.destination_names = names.clone();
            f.source_names = names;
            f.traffic_direction = dir as i32;
            f.time = t.map(|seconds| pbjson_types::Timestamp { seconds, nanos: 0 });
            if let Some(layer4::Protocol::Tcp(tcp)) =
                f.l4.as_mut().and_then(|l| l.protocol.as_mut())
            {
                tcp.destination_port = port;
            }
            f
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// The indexed `first_match` agrees with testing each rule directly, in order, and
    /// `--explain` agrees with the direct test of each rule.
    #[test]
    fn index_agrees_with_direct_matching(f in arb_flow()) {
        let set = load(&(
            rule("a", "expires = 1970-01-01T00:16:40Z\nmatch.destination = { fqdn = [\"**.example.com\"] }")
            + &rule("b", "match.source = { cidr = [\"10.1.0.0/16\", \"2001:db8::/32\"] }")
            + &rule("c", "match = { direction = \"ingress\", destination = { fqdn = [\"api.vendor.io\"], cidr = [\"203.0.113.0/24\"] } }")
            + &rule("d", "match.destination = { port = [\"1-500\"], fqdn = [\"*.io\"] }")
            + &rule("e", "match.source = { fqdn = [\"example.com\"] }")
            + &rule("f", "match.destination = { cidr = [\"10.0.0.0/8\"] }")
            + &rule("g", "match = { verdict = [\"AUDIT\"], source = { namespace = [\"sh*\"], workload = [\"checkout\"], labels = [\"app=checkout\"] } }")
            + &rule("h", "match = { node = [\"prod/*\"], destination = { entity = [\"world\"], port = [\"443/TCP\"] } }")
        ));
        let ctx = FlowCtx::new(&f, "", None);
        let direct = (0..set.rules().len()).find(|i| set.rule_matches(*i, &ctx));
        prop_assert_eq!(set.first_match(&ctx), direct);
        // `--explain` re-tests every key on its own: it must agree with the matcher, rule by
        // rule (a rule matches exactly when every check holds).
        for i in 0..set.rules().len() {
            let checks = set.explain(i, &ctx);
            prop_assert!(!checks.is_empty());
            prop_assert_eq!(
                checks.iter().all(|c| c.ok),
                set.rule_matches(i, &ctx),
                "rule {} explained {:?}",
                i,
                checks
            );
        }
    }
}

#[test]
fn index_of_finds_a_rule_of_the_set_and_nothing_else() {
    let text = rule("a", "match = { direction = \"ingress\" }")
        + &rule("b", "match = { direction = \"egress\" }")
        + &rule("c", "match.destination = { port = [\"443/TCP\"] }");
    let set = load(&text);
    for (i, r) in set.rules().iter().enumerate() {
        assert_eq!(set.index_of(r), Some(i));
    }
    // An equal rule of another set is not one of this set's rules.
    let other = load(&text);
    assert_eq!(set.index_of(&other.rules()[0]), None);
}
