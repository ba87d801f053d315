//! Import details: selectors, node selectors, errors with their places, rules skipped with
//! warnings, and the real policies of the fixtures.

use super::tests::{
    CHECKOUT, EGRESS_DENY, INGRESS_DENY, SEED, WORLD, decide, flow, set, tags, unmatched,
};
use super::*;
use crate::classify::{Attribution, Classifier};
use std::path::PathBuf;

#[test]
fn node_selector_applies_to_the_host() {
    let text = r#"
kind: CiliumClusterwideNetworkPolicy
metadata: {name: kubelet-from-world}
spec:
  nodeSelector: {}
  log: {value: scanner-noise}
  ingressDeny:
    - fromEntities: [world]
      toPorts: [{ports: [{port: "10250", protocol: TCP}]}]
"#;
    let c = Classifier {
        expected_log_tags: tags(),
        policies: set(&[("n.yaml", text)]).expect("load"),
        ..Classifier::default()
    };
    let host = r#"{"identity":1,"labels":["reserved:host"]}"#;
    let f = flow(
        INGRESS_DENY,
        WORLD,
        host,
        "198.51.100.9",
        "192.168.1.10",
        10250,
    );
    assert_eq!(decide(&c, &f).2, Attribution::Policy);
    let f = flow(
        INGRESS_DENY,
        WORLD,
        CHECKOUT,
        "198.51.100.9",
        "10.0.1.23",
        10250,
    );
    assert_eq!(decide(&c, &f), unmatched());
}

#[test]
fn selectors_accept_keys_with_and_without_source_and_every_operator() {
    let text = r#"
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: p, namespace: shop}
spec:
  endpointSelector:
    matchLabels: {any:app: checkout}
    matchExpressions:
      - {key: tier, operator: NotIn, values: [db]}
      - {key: k8s:io.kubernetes.pod.namespace, operator: Exists}
  log: {value: vendor-telemetry-blocked}
  egressDeny:
    - toEndpoints:
        - matchLabels: {k8s:app: analytics}
        - matchLabels: {app: tracker, io.kubernetes.pod.namespace: ads}
"#;
    let s = set(&[("p.yaml", text)]).expect("load");
    assert!(s.warnings().is_empty(), "{:?}", s.warnings());
    let c = Classifier {
        expected_log_tags: tags(),
        policies: s,
        ..Classifier::default()
    };
    let analytics =
        r#"{"identity":7,"namespace":"shop","pod_name":"a","labels":["k8s:app=analytics"]}"#;
    let analytics_lab =
        r#"{"identity":8,"namespace":"lab","pod_name":"a","labels":["k8s:app=analytics"]}"#;
    let tracker = r#"{"identity":9,"namespace":"ads","pod_name":"t","labels":["k8s:app=tracker","k8s:io.kubernetes.pod.namespace=ads"]}"#;
    let db = r#"{"identity":10,"namespace":"shop","pod_name":"c","labels":["k8s:app=checkout","k8s:tier=db","k8s:io.kubernetes.pod.namespace=shop"]}"#;
    let f = |src: &str, dst: &str| flow(EGRESS_DENY, src, dst, "10.0.0.1", "10.0.0.2", 80);
    assert_eq!(decide(&c, &f(CHECKOUT, analytics)).2, Attribution::Policy);
    assert_eq!(decide(&c, &f(CHECKOUT, analytics_lab)), unmatched());
    assert_eq!(decide(&c, &f(CHECKOUT, tracker)).2, Attribution::Policy);
    assert_eq!(decide(&c, &f(db, analytics)), unmatched());
}

#[test]
fn errors_name_file_line_and_key() {
    let bad_type = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: a, namespace: b}\nspec:\n  egressDeny: nope\n";
    let e = set(&[("ok.yaml", SEED), ("bad.yaml", bad_type)]).unwrap_err();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].file, PathBuf::from("bad.yaml"));
    assert_eq!(e[0].line, 5);
    assert_eq!(e[0].key, "document[0].spec.egressDeny");

    let syntax = "---\nkind: CiliumNetworkPolicy\n---\nkind: [\n";
    let e = set(&[("syntax.yaml", syntax)]).unwrap_err();
    assert_eq!((e[0].line, e[0].key.as_str()), (4, "document[1].kind"));

    let nameless = "kind: CiliumClusterwideNetworkPolicy\nspec: {}\n";
    let e = set(&[("n.yaml", nameless)]).unwrap_err();
    assert_eq!(e[0].message, "a policy needs a name");

    let e = set(&[("a.yaml", SEED), ("b.yaml", SEED)]).unwrap_err();
    assert_eq!(
        e[0].message,
        "duplicate policy CiliumNetworkPolicy shop/checkout-egress (first at a.yaml:2)"
    );
}

#[test]
fn unusable_rules_are_skipped_with_warnings_never_expected() {
    let text = r#"
kind: CiliumNetworkPolicy
metadata: {name: p, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: checkout}}
  log: {value: vendor-telemetry-blocked}
  egressDeny:
    - toCIDR: [10.0.0.1/8]
    - toEntities: [cluster]
    - toPorts: [{ports: [{port: http}]}]
    - toPorts: [{ports: [{port: "53", protocol: ICMP}]}]
    - {}
    - fromCIDR: [10.0.0.0/8]
    - toEndpoints: [{matchExpressions: [{key: a, operator: Gt, values: ["1"]}]}]
"#;
    let s = set(&[("p.yaml", text)]).expect("load");
    assert_eq!(s.matcher_count(), 0);
    assert_eq!(s.warnings().len(), 7, "{:?}", s.warnings());
    let no_ns = "kind: CiliumNetworkPolicy\nmetadata: {name: p}\nspec: {}\n";
    let s = set(&[("p.yaml", no_ns)]).expect("load");
    assert!(s.policies().is_empty());
    assert_eq!(s.warnings().len(), 1);
}

#[test]
fn real_policies_import_without_errors() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/real/cilium-poc-1.20");
    assert!(root.is_dir(), "{}: part of the repository", root.display());
    let files = crate::load::policy_paths(&[root]).expect("walk");
    assert!(files.len() >= 10, "{files:?}");
    // One file at a time: captures/ and demos/ hold the same policies.
    let mut total = 0;
    for p in &files {
        let src = PolicySource {
            path: p.clone(),
            text: std::fs::read_to_string(p).expect("read"),
        };
        let s = PolicySet::load(&[src], &|_| true).expect("real policies load");
        assert!(s.warnings().is_empty(), "{:?}", s.warnings());
        total += s.policies().len();
    }
    assert!(total >= 20, "{total}");
}
