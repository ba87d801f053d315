//! Policy import against realistic manifests, and steps 2 and 3 of classification on flows
//! that carry no `policy_log` (AUDIT and POLICY_DENY, as Cilium reports them).

use super::*;
use crate::api::flow::Flow;
use crate::api::observer::get_flows_response::ResponseTypes;
use crate::classify::{Attribution, Classifier};
use crate::flow::FlowCtx;
use crate::located::LocatedError;
use crate::rules::glob::Glob;
use crate::rules::{Class, RuleSet, RuleSource};
use std::path::PathBuf;

/// The seed's case done the way Cilium allows: it cannot deny by name, so the vendor's
/// telemetry is blocked by default deny (any egress allow rule) plus allow rules for what the
/// app needs. Blocked connections arrive as default-deny drops (133) with no deny rule behind
/// them.
pub(super) const SEED: &str = r#"
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: checkout-egress
  namespace: shop
spec:
  description: checkout may reach DNS and the payment API; everything else (the vendor SDK's telemetry) is blocked on purpose
  endpointSelector:
    matchLabels:
      app: checkout
  log:
    value: app-explicit-traffic-blocked
  egress:
    - toEndpoints:
        - matchLabels:
            io.kubernetes.pod.namespace: kube-system
            k8s-app: kube-dns
      toPorts:
        - ports:
            - port: "53"
              protocol: UDP
          rules:
            dns:
              - matchPattern: "*"
    - toFQDNs:
        - matchName: api.payments.example
      toPorts:
        - ports:
            - port: "443"
              protocol: TCP
"#;

/// Explicit denies with log values, as `kubectl get cnp,ccnp -A -o yaml` prints them.
const DENY: &str = r#"
apiVersion: v1
kind: List
items:
  - apiVersion: cilium.io/v2
    kind: CiliumNetworkPolicy
    metadata:
      name: deny-vendor-telemetry
      namespace: shop
      resourceVersion: "4711"
    spec:
      endpointSelector:
        matchExpressions:
          - {key: k8s:app, operator: In, values: [checkout, cart]}
          - {key: canary, operator: DoesNotExist}
      log:
        value: vendor-telemetry-blocked
      egressDeny:
        - toCIDRSet:
            - cidr: 203.0.113.0/24
              except: [203.0.113.128/25]
          toPorts:
            - ports:
                - {port: "443", endPort: 8443, protocol: TCP}
        - toServices:
            - k8sService: {serviceName: vendor, namespace: shop}
        - toEntities: [world]
          icmps:
            - fields: [{type: 8}]
  - apiVersion: cilium.io/v2
    kind: CiliumClusterwideNetworkPolicy
    metadata:
      name: no-ssh-from-outside
    specs:
      - description: scanners knock on every node's pods
        endpointSelector: {}
        log: {value: scanner-noise}
        ingressDeny:
          - fromEntities: [world]
            toPorts:
              - ports: [{port: 22}]
      - endpointSelector:
          matchLabels: {app: legacy}
        ingressDeny:
          - fromEndpoints:
              - matchLabels:
                  k8s:io.kubernetes.pod.namespace: lab
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: deny-metadata, namespace: shop}
spec:
  endpointSelector: {}
  log: {value: some-other-team-tag}
  egressDeny:
    - toCIDR: [169.254.169.254/32]
"#;

pub(super) fn tags() -> Vec<Glob> {
    [
        "app-explicit-*",
        "vendor-telemetry-blocked",
        "scanner-noise",
    ]
    .iter()
    .map(|t| Glob::new(t).expect("glob"))
    .collect()
}

pub(super) fn set(texts: &[(&str, &str)]) -> Result<PolicySet, Vec<LocatedError>> {
    let tags = tags();
    let sources: Vec<PolicySource> = texts
        .iter()
        .map(|(p, t)| PolicySource {
            path: PathBuf::from(p),
            text: (*t).to_owned(),
        })
        .collect();
    PolicySet::load(&sources, &|t| tags.iter().any(|g| g.matches(t)))
}

fn classifier(rules: &str) -> Classifier {
    let policies = set(&[("seed.yaml", SEED), ("deny.yaml", DENY)]).expect("policies load");
    let rules = RuleSet::load(&[RuleSource {
        path: "rules.toml".into(),
        text: rules.into(),
        inline: false,
    }])
    .expect("rules load");
    Classifier {
        expected_log_tags: tags(),
        rules,
        policies,
    }
}

/// A flow from Hubble's JSON: `verdict`, `reason` (drop_reason_desc), direction, source and
/// destination endpoint JSON, IPs and destination port.
pub(super) fn flow(extra: &str, src: &str, dst: &str, sip: &str, dip: &str, dport: u16) -> Flow {
    let line = format!(
        r#"{{"flow":{{"time":"2026-05-01T10:00:00Z",{extra},"IP":{{"source":"{sip}","destination":"{dip}"}},"l4":{{"TCP":{{"source_port":40000,"destination_port":{dport}}}}},"source":{src},"destination":{dst}}},"node_name":"prod/n1"}}"#
    );
    match crate::source::file::decode_line(line.as_bytes()) {
        Ok(Some(r)) => match r.response_types {
            Some(ResponseTypes::Flow(f)) => f,
            other => panic!("not a flow: {other:?}"),
        },
        other => panic!("cannot decode {line}: {other:?}"),
    }
}

pub(super) const CHECKOUT: &str = r#"{"identity":48211,"namespace":"shop","pod_name":"checkout-1","labels":["k8s:app=checkout","k8s:io.kubernetes.pod.namespace=shop"]}"#;
const CHECKOUT_OTHER_NS: &str = r#"{"identity":48299,"namespace":"lab","pod_name":"checkout-1","labels":["k8s:app=checkout","k8s:io.kubernetes.pod.namespace=lab"]}"#;
const CANARY: &str = r#"{"identity":48212,"namespace":"shop","pod_name":"checkout-c","labels":["k8s:app=checkout","k8s:canary=true","k8s:io.kubernetes.pod.namespace=shop"]}"#;
pub(super) const WORLD: &str = r#"{"identity":2,"labels":["reserved:world"]}"#;
const LEGACY: &str = r#"{"identity":50001,"namespace":"billing","pod_name":"legacy-1","labels":["k8s:app=legacy","k8s:io.kubernetes.pod.namespace=billing"]}"#;
const LAB_POD: &str = r#"{"identity":50002,"namespace":"lab","pod_name":"scan-1","labels":["k8s:app=scan","k8s:io.kubernetes.pod.namespace=lab"]}"#;

pub(super) const EGRESS_DENY: &str =
    r#""verdict":"DROPPED","drop_reason_desc":"POLICY_DENY","traffic_direction":"EGRESS""#;
const EGRESS_AUDIT: &str =
    r#""verdict":"AUDIT","drop_reason_desc":"POLICY_DENIED","traffic_direction":"EGRESS""#;
pub(super) const INGRESS_DENY: &str =
    r#""verdict":"DROPPED","drop_reason_desc":"POLICY_DENY","traffic_direction":"INGRESS""#;

pub(super) fn decide(c: &Classifier, f: &Flow) -> (Class, String, Attribution) {
    let ctx = FlowCtx::new(f, "", None);
    let d = c.classify(&ctx);
    (d.class, d.reason.to_owned(), d.attribution)
}

fn expected(tag: &str, a: Attribution) -> (Class, String, Attribution) {
    (Class::Expected, tag.to_owned(), a)
}

pub(super) fn unmatched() -> (Class, String, Attribution) {
    (Class::Unexpected, "unmatched".to_owned(), Attribution::None)
}

#[test]
fn imports_lists_specs_and_multi_documents() {
    let s = set(&[("seed.yaml", SEED), ("deny.yaml", DENY)]).expect("load");
    let names: Vec<String> = s
        .policies()
        .iter()
        .map(|p| format!("{} {}", p.kind, p.display_name()))
        .collect();
    assert_eq!(
        names,
        [
            "CiliumNetworkPolicy shop/checkout-egress",
            "CiliumNetworkPolicy shop/deny-vendor-telemetry",
            "CiliumClusterwideNetworkPolicy no-ssh-from-outside",
            "CiliumNetworkPolicy shop/deny-metadata",
        ]
    );
    // The CIDR-set rule and the clusterwide ingress rule; the second CCNP spec has no log
    // value and deny-metadata's tag is not expected: no matchers from them.
    assert_eq!(s.matcher_count(), 2);
    let warnings: Vec<String> = s.warnings().iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "deny.yaml:2:0: document[0].items[0].spec.egressDeny[1]: toServices is not supported: rule skipped",
            "deny.yaml:2:0: document[0].items[0].spec.egressDeny[2]: icmps is not supported: rule skipped",
        ]
    );
    assert!(s.carries_tag(|t| t == "scanner-noise"));
    assert!(!s.carries_tag(|t| t == "vendor-telemetry-blockd"));
}

#[test]
fn explicit_deny_to_cidr_set_classifies_policy_deny_and_audit_without_policy_log() {
    let c = classifier("");
    let f = flow(
        EGRESS_DENY,
        CHECKOUT,
        WORLD,
        "10.0.1.23",
        "203.0.113.10",
        443,
    );
    assert!(f.policy_log.is_empty() && f.egress_denied_by.is_empty());
    assert_eq!(
        decide(&c, &f),
        expected("vendor-telemetry-blocked", Attribution::Policy)
    );
    let f = flow(
        EGRESS_AUDIT,
        CHECKOUT,
        WORLD,
        "10.0.1.23",
        "203.0.113.127",
        8443,
    );
    assert_eq!(
        decide(&c, &f),
        expected("vendor-telemetry-blocked", Attribution::Policy)
    );
}

#[test]
fn except_range_ports_namespace_and_selector_bound_the_match() {
    let c = classifier("");
    // In the `except` range.
    let f = flow(
        EGRESS_DENY,
        CHECKOUT,
        WORLD,
        "10.0.1.23",
        "203.0.113.200",
        443,
    );
    assert_eq!(decide(&c, &f), unmatched());
    // Past endPort.
    let f = flow(
        EGRESS_DENY,
        CHECKOUT,
        WORLD,
        "10.0.1.23",
        "203.0.113.10",
        8444,
    );
    assert_eq!(decide(&c, &f), unmatched());
    // Same labels in another namespace: a CiliumNetworkPolicy selects its own namespace only.
    let f = flow(
        EGRESS_DENY,
        CHECKOUT_OTHER_NS,
        WORLD,
        "10.0.9.1",
        "203.0.113.10",
        443,
    );
    assert_eq!(decide(&c, &f), unmatched());
    // matchExpressions DoesNotExist.
    let f = flow(EGRESS_DENY, CANARY, WORLD, "10.0.1.24", "203.0.113.10", 443);
    assert_eq!(decide(&c, &f), unmatched());
    // Ingress direction does not match an egress rule.
    let f = flow(
        INGRESS_DENY,
        WORLD,
        CHECKOUT,
        "203.0.113.10",
        "10.0.1.23",
        443,
    );
    assert_eq!(decide(&c, &f), unmatched());
    // A drop for another reason is not the policy's doing.
    let f = flow(
        r#""verdict":"DROPPED","drop_reason_desc":"CT_MAP_INSERTION_FAILED","traffic_direction":"EGRESS""#,
        CHECKOUT,
        WORLD,
        "10.0.1.23",
        "203.0.113.10",
        443,
    );
    assert_eq!(decide(&c, &f), unmatched());
    // A forwarded flow is never matched.
    let f = flow(
        r#""verdict":"FORWARDED","traffic_direction":"EGRESS""#,
        CHECKOUT,
        WORLD,
        "10.0.1.23",
        "203.0.113.10",
        443,
    );
    assert!(
        c.policies
            .first_match(&FlowCtx::new(&f, "", None))
            .is_none()
    );
}

#[test]
fn clusterwide_ingress_deny_from_entities_on_any_namespace() {
    let c = classifier("");
    let f = flow(INGRESS_DENY, WORLD, LEGACY, "198.51.100.9", "10.0.3.3", 22);
    assert_eq!(
        decide(&c, &f),
        expected("scanner-noise", Attribution::Policy)
    );
    let f = flow(INGRESS_DENY, WORLD, LEGACY, "198.51.100.9", "10.0.3.3", 23);
    assert_eq!(decide(&c, &f), unmatched());
    // The second spec (fromEndpoints in lab) has no log value: no matcher.
    let f = flow(INGRESS_DENY, LAB_POD, LEGACY, "10.0.4.4", "10.0.3.3", 80);
    assert_eq!(decide(&c, &f), unmatched());
}

#[test]
fn denied_by_names_the_imported_policy() {
    let c = classifier("");
    // Port 80 is outside the CIDR-set rule's ports: only the name can decide.
    let named = |name: &str, ns: &str, kind: &str| {
        let extra = format!(
            r#"{EGRESS_DENY},"egress_denied_by":[{{"name":"{name}","namespace":"{ns}","kind":"{kind}","revision":"56"}}],"policy_log":[""]"#
        );
        flow(&extra, CHECKOUT, WORLD, "10.0.1.23", "198.51.100.1", 80)
    };
    let f = named("deny-vendor-telemetry", "shop", "CiliumNetworkPolicy");
    assert_eq!(
        decide(&c, &f),
        expected("vendor-telemetry-blocked", Attribution::DeniedBy)
    );
    let f = named("deny-vendor-telemetry", "shop", "");
    assert_eq!(decide(&c, &f).2, Attribution::DeniedBy);
    // Wrong kind, wrong namespace, unknown name, a policy whose tag is not expected: nothing.
    for (n, ns, k) in [
        (
            "deny-vendor-telemetry",
            "shop",
            "CiliumClusterwideNetworkPolicy",
        ),
        ("deny-vendor-telemetry", "lab", "CiliumNetworkPolicy"),
        ("nope", "shop", "CiliumNetworkPolicy"),
        ("deny-metadata", "shop", "CiliumNetworkPolicy"),
    ] {
        assert_eq!(decide(&c, &named(n, ns, k)), unmatched(), "{n} {ns} {k}");
    }
}

#[test]
fn seed_default_deny_plus_allow_is_decided_by_names_not_by_the_policy() {
    // No deny rule in the seed policy: its default-deny drops are not attributable to it, so
    // the policy adds no matcher and the vendor name rule (fed by learned DNS names) decides.
    let rules = r#"
[[rule]]
name = "vendor-telemetry"
reason = "app-explicit-traffic-blocked"
owner = "team-shop"
comment = "vendor SDK phones home; blocked by checkout-egress"
[rule.match.source]
namespace = ["shop"]
[rule.match.destination]
fqdn = ["*.telemetry.vendor.example"]
"#;
    let c = classifier(rules);
    let audit = flow(
        EGRESS_AUDIT,
        CHECKOUT,
        WORLD,
        "10.0.1.23",
        "192.0.2.50",
        443,
    );
    assert_eq!(decide(&c, &audit), unmatched(), "no name known: unexpected");
    let mut named = audit.clone();
    named.destination_names = vec!["eu.telemetry.vendor.example".into()];
    let d = decide(&c, &named);
    assert_eq!((d.0, d.2), (Class::Expected, Attribution::Rule));
    let drop133 = flow(
        r#""verdict":"DROPPED","drop_reason_desc":"POLICY_DENIED","traffic_direction":"EGRESS""#,
        CHECKOUT,
        WORLD,
        "10.0.1.23",
        "192.0.2.50",
        443,
    );
    assert_eq!(decide(&c, &drop133), unmatched());
}
