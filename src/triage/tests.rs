//! The store's bounds: count, bytes, the expected flows kept per rule, the groups tracked.

use super::query::{self, Filter};
use super::store::{Store, StoredFlow};
use crate::config::TriageConfig;
use crate::suggest::group::{GroupKey, SideKey};

fn flow(uuid: &str, class: &'static str, rule: Option<&str>, ns: &str, t: f64) -> StoredFlow {
    StoredFlow {
        uuid: uuid.into(),
        time: None,
        unix: Some(t),
        node: "n1".into(),
        verdict: "DROPPED",
        drop_reason: Some("POLICY_DENIED".into()),
        direction: "egress".into(),
        class,
        reason: "unmatched".into(),
        rule: rule.map(str::to_string),
        attribution: "none",
        source: format!("{ns}/pod-1"),
        source_namespace: ns.into(),
        source_workload: "app".into(),
        destination: "203.0.113.7:443/TCP".into(),
        destination_namespace: String::new(),
        destination_workload: String::new(),
        destination_port: Some(443),
        names: vec!["api.example.com".into()],
        flows: 1,
        group: None,
        explain: vec!["step none: nothing decided".into()],
    }
}

fn key(ns: &str, port: u16) -> GroupKey {
    (
        "egress",
        SideKey::Pod {
            namespace: ns.into(),
            workload: Some("app".into()),
            pod: "pod-1".into(),
        },
        SideKey::Ip("203.0.113.7/32".into()),
        Some(format!("{port}/TCP")),
    )
}

fn cfg() -> TriageConfig {
    TriageConfig {
        max_flows: 4,
        per_rule: 2,
        max_groups: 2,
        ..TriageConfig::default()
    }
}

#[test]
fn keeps_the_newest_flows_up_to_max_flows() {
    let mut s = Store::new(&cfg());
    for i in 0..6 {
        s.add_unexpected(
            key("a", 1),
            flow(&format!("u{i}"), "unexpected", None, "a", f64::from(i)),
            1,
        );
    }
    let uuids: Vec<&str> = s.newest_first().map(|f| f.uuid.as_str()).collect();
    assert_eq!(uuids, ["u5", "u4", "u3", "u2"]);
    assert_eq!(s.counts(), (0, 4));
    let (_, g) = s.groups().next().expect("one group");
    assert_eq!(g.group.hits, 6, "a group counts evicted flows too");
    assert_eq!(g.group.first, Some(0.0));
    assert_eq!(g.group.last, Some(5.0));
}

#[test]
fn max_bytes_evicts_the_oldest_and_the_count_follows() {
    let one = flow("x", "unexpected", None, "a", 0.0).bytes();
    let mut s = Store::new(&TriageConfig {
        max_bytes: one * 2 + one / 2,
        ..cfg()
    });
    for i in 0..4 {
        s.add_unexpected(
            key("a", 1),
            flow(&format!("u{i}"), "unexpected", None, "a", 0.0),
            1,
        );
    }
    assert_eq!(s.counts(), (0, 2));
    assert!(s.bytes() <= one * 2 + one / 2, "{} bytes", s.bytes());
    assert!(s.flow("u0").is_none() && s.flow("u3").is_some());
}

#[test]
fn a_rule_keeps_its_last_few_expected_flows_and_then_one_a_second() {
    let mut s = Store::new(&cfg());
    assert!(s.wants_expected("r", 0.0));
    s.add_expected("r", flow("e1", "expected", Some("r"), "a", 0.0), 0.0);
    assert!(s.wants_expected("r", 0.1), "fewer than per_rule");
    s.add_expected("r", flow("e2", "expected", Some("r"), "a", 0.0), 0.1);
    assert!(
        !s.wants_expected("r", 0.5),
        "full, and one was kept less than 1 s ago"
    );
    assert!(s.wants_expected("r", 1.2));
    s.add_expected("r", flow("e3", "expected", Some("r"), "a", 0.0), 1.2);
    let kept: Vec<&str> = s.newest_first().map(|f| f.uuid.as_str()).collect();
    assert_eq!(kept, ["e3", "e2"], "the rule's oldest made room");
    assert_eq!(s.counts(), (2, 0));
    assert!(
        !Store::new(&TriageConfig {
            per_rule: 0,
            ..cfg()
        })
        .wants_expected("r", 9.0)
    );
}

#[test]
fn the_group_seen_least_recently_goes_first() {
    let mut s = Store::new(&cfg());
    s.add_unexpected(key("a", 1), flow("1", "unexpected", None, "a", 1.0), 1);
    s.add_unexpected(key("b", 1), flow("2", "unexpected", None, "b", 2.0), 1);
    s.add_unexpected(key("a", 1), flow("3", "unexpected", None, "a", 3.0), 1);
    s.add_unexpected(key("c", 1), flow("4", "unexpected", None, "c", 4.0), 1);
    let mut nss: Vec<&str> = s
        .groups()
        .map(|(_, g)| g.source_namespace.as_str())
        .collect();
    nss.sort_unstable();
    assert_eq!(nss, ["a", "c"]);
}

#[test]
fn filters_select_flows_and_groups() {
    let mut s = Store::new(&TriageConfig::default());
    s.add_unexpected(key("a", 1), flow("1", "unexpected", None, "a", 10.0), 1);
    s.add_unexpected(key("b", 2), flow("2", "unexpected", None, "b", 20.0), 3);
    s.add_expected("r", flow("3", "expected", Some("r"), "a", 30.0), 0.0);
    let pick = |q: &str| -> Vec<String> {
        let f = Filter::parse(q).expect("filter");
        query::flows(&s, &f)
            .iter()
            .map(|f| f.uuid.clone())
            .collect()
    };
    assert_eq!(pick(""), ["3", "2", "1"]);
    assert_eq!(pick("namespace=a"), ["3", "1"]);
    assert_eq!(pick("class=unexpected&namespace=a"), ["1"]);
    assert_eq!(pick("rule=r"), ["3"]);
    assert_eq!(pick("destination=API.example"), ["3", "2", "1"]);
    assert_eq!(pick("destination=nowhere"), Vec::<String>::new());
    assert_eq!(pick("since=15"), ["3", "2"]);
    assert_eq!(pick("since=1970-01-01T00:00:15Z"), ["3", "2"]);
    assert_eq!(pick("limit=1"), ["3"]);
    assert_eq!(pick("workload=app&limit=2"), ["3", "2"]);
    let groups = |q: &str| -> Vec<(String, u64)> {
        let f = Filter::parse(q).expect("filter");
        query::groups(&s, &f)
            .into_iter()
            .map(|g| (g.source_namespace, g.flows))
            .collect()
    };
    assert_eq!(groups(""), [("b".to_string(), 3), ("a".to_string(), 1)]);
    assert_eq!(groups("namespace=a"), [("a".to_string(), 1)]);
    assert!(
        groups("rule=r").is_empty(),
        "groups are unexpected flows only"
    );
    for bad in [
        "limit=0",
        "limit=x",
        "class=maybe",
        "since=yesterday",
        "expires_in_days=0",
    ] {
        let e = Filter::parse(bad).expect_err(bad);
        let param = bad.split('=').next().unwrap_or_default();
        assert!(e.starts_with(param), "{bad}: {e}");
    }
}

#[test]
fn query_strings_are_decoded() {
    let f = Filter::parse("namespace=a%20b&destination=x+y&owner=%3Cme%3E&bad=%zz").expect("ok");
    assert_eq!(f.namespace.as_deref(), Some("a b"));
    assert_eq!(f.destination.as_deref(), Some("x y"));
    assert_eq!(f.owner.as_deref(), Some("<me>"));
    assert_eq!(query::decode("%"), "%");
    assert_eq!(query::decode("%4"), "%4");
}

#[test]
fn decision_paths_are_written_at_a_bounded_rate() {
    let mut s = Store::new(&TriageConfig::default());
    let burst = super::store::EXPLAIN_PER_SECOND as usize;
    let granted = (0..burst * 2).filter(|_| s.explain_token(0.0)).count();
    assert_eq!(granted, burst, "a burst, then none");
    assert!(!s.explain_token(0.001));
    assert!(s.explain_token(0.01), "refilled at the rate");
    assert!(s.explain_token(100.0));
}
