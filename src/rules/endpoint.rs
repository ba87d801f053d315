//! Endpoint selectors outside rules: which DNS servers are trusted (`dns.servers`, PRODUCT.md
//! §6). The keys are those of `[rule.match.source]` that describe an endpoint (namespace, pod,
//! workload, labels, entity, cidr), with the same meaning; keys are ANDed, values ORed.

use serde::{Deserialize, Serialize};

use super::cidr::Cidr;
use super::glob::Glob;
use super::labels::{Entity, LabelSelector};
use crate::flow::Side;

/// One selector as written in the config: every list empty means "not constrained".
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct EndpointSpec {
    /// Namespace globs.
    pub namespace: Vec<String>,
    /// Pod-name globs.
    pub pod: Vec<String>,
    /// Workload-name globs.
    pub workload: Vec<String>,
    /// Label selectors, all of which must hold (`k8s-app=kube-dns`, `k8s:app=x`, `key`).
    pub labels: Vec<String>,
    /// Reserved entities (`host`, `world`, ...).
    pub entity: Vec<String>,
    /// Prefixes the endpoint's IP must fall in (an external resolver).
    pub cidr: Vec<String>,
}

/// A compiled [`EndpointSpec`].
#[derive(Clone, Debug)]
pub struct EndpointSelector {
    namespace: Vec<Glob>,
    pod: Vec<Glob>,
    workload: Vec<Glob>,
    labels: Vec<LabelSelector>,
    entity: Vec<Entity>,
    cidr: Vec<Cidr>,
}

/// What is wrong with a selector: the key and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    /// The key, e.g. `labels`; empty for the selector as a whole.
    pub key: &'static str,
    /// Why.
    pub message: String,
}

fn each<T>(
    key: &'static str,
    values: &[String],
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, SpecError> {
    values
        .iter()
        .map(|v| {
            if v.len() > super::MAX_PATTERN {
                return Err(format!(
                    "value longer than {} characters",
                    super::MAX_PATTERN
                ));
            }
            parse(v)
        })
        .collect::<Result<_, _>>()
        .map_err(|message| SpecError { key, message })
}

fn glob(s: &str) -> Result<Glob, String> {
    Glob::new(s).map_err(|e| e.to_string())
}

impl EndpointSpec {
    /// Validates and compiles. A selector that constrains nothing would select every endpoint:
    /// it is refused.
    pub fn compile(&self) -> Result<EndpointSelector, SpecError> {
        let s = EndpointSelector {
            namespace: each("namespace", &self.namespace, glob)?,
            pod: each("pod", &self.pod, glob)?,
            workload: each("workload", &self.workload, glob)?,
            labels: each("labels", &self.labels, LabelSelector::parse)?,
            entity: each("entity", &self.entity, Entity::parse)?,
            cidr: each("cidr", &self.cidr, Cidr::parse)?,
        };
        let constrains = !(s.namespace.is_empty()
            && s.pod.is_empty()
            && s.workload.is_empty()
            && s.labels.is_empty()
            && s.entity.is_empty()
            && s.cidr.is_empty());
        if !constrains {
            return Err(SpecError {
                key: "",
                message: "a selector must constrain something (namespace, pod, workload, \
                          labels, entity or cidr): an empty one would select every endpoint"
                    .into(),
            });
        }
        Ok(s)
    }
}

impl std::fmt::Display for EndpointSpec {
    /// `namespace=[kube-system] labels=[k8s-app=kube-dns]`: the keys that are set.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys = [
            ("namespace", &self.namespace),
            ("pod", &self.pod),
            ("workload", &self.workload),
            ("labels", &self.labels),
            ("entity", &self.entity),
            ("cidr", &self.cidr),
        ];
        let mut first = true;
        for (k, v) in keys.into_iter().filter(|(_, v)| !v.is_empty()) {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            write!(f, "{k}=[{}]", v.join(", "))?;
        }
        Ok(())
    }
}

impl EndpointSelector {
    /// Whether the endpoint on `side` is selected. Unknown values never match a constrained
    /// key (when in doubt, not trusted).
    pub fn matches(&self, side: &Side<'_>) -> bool {
        let any = |gs: &[Glob], v: &str| gs.is_empty() || gs.iter().any(|g| g.matches_value(v));
        any(&self.namespace, side.namespace())
            && any(&self.pod, side.pod())
            && (self.workload.is_empty()
                || side.endpoint.is_some_and(|e| {
                    e.workloads
                        .iter()
                        .any(|w| self.workload.iter().any(|g| g.matches_value(&w.name)))
                }))
            && self.labels.iter().all(|l| l.matches(side.labels()))
            && (self.entity.is_empty() || self.entity.iter().any(|e| e.matches(side)))
            && (self.cidr.is_empty()
                || side
                    .ip
                    .is_some_and(|ip| self.cidr.iter().any(|c| c.contains(ip))))
    }
}

/// The DNS servers trusted by default: the cluster's DNS pods (`k8s-app=kube-dns`, which
/// CoreDNS carries too, and NodeLocal DNSCache's `k8s-app=node-local-dns`) in `kube-system`,
/// and the node itself (`host`, where a node-local cache in the host network answers).
pub fn default_dns_servers() -> Vec<EndpointSpec> {
    let kube_system = |app: &str| EndpointSpec {
        namespace: vec!["kube-system".into()],
        labels: vec![format!("k8s-app={app}")],
        ..EndpointSpec::default()
    };
    vec![
        kube_system("kube-dns"),
        kube_system("node-local-dns"),
        EndpointSpec {
            entity: vec!["host".into()],
            ..EndpointSpec::default()
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::flow::Endpoint;

    fn side<'a>(e: Option<&'a Endpoint>, ip: Option<&str>) -> Side<'a> {
        Side {
            endpoint: e,
            ip: ip.and_then(|i| i.parse().ok()),
            ..Side::default()
        }
    }

    fn pod(ns: &str, labels: &[&str], identity: u32) -> Endpoint {
        Endpoint {
            namespace: ns.into(),
            pod_name: "p".into(),
            labels: labels.iter().map(|s| s.to_string()).collect(),
            identity,
            ..Endpoint::default()
        }
    }

    #[test]
    fn the_default_trusts_cluster_dns_pods_and_the_host_only() {
        let sels: Vec<EndpointSelector> = default_dns_servers()
            .iter()
            .map(|s| s.compile().expect("default compiles"))
            .collect();
        let trusted = |e: &Endpoint| sels.iter().any(|s| s.matches(&side(Some(e), None)));
        assert!(trusted(&pod(
            "kube-system",
            &["k8s:k8s-app=kube-dns"],
            80806
        )));
        assert!(trusted(&pod(
            "kube-system",
            &["k8s:k8s-app=node-local-dns"],
            1234
        )));
        assert!(trusted(&pod("", &["reserved:host"], 1)));
        assert!(!trusted(&pod("tenant", &["k8s:k8s-app=kube-dns"], 5555)));
        assert!(!trusted(&pod(
            "kube-system",
            &["k8s:k8s-app=metrics"],
            5556
        )));
        assert!(
            !sels
                .iter()
                .any(|s| s.matches(&side(None, Some("10.0.0.10"))))
        );
    }

    #[test]
    fn an_empty_selector_and_bad_values_are_refused_naming_the_key() {
        let e = EndpointSpec::default().compile().expect_err("empty");
        assert!(e.message.contains("must constrain something"), "{e:?}");
        let bad = EndpointSpec {
            cidr: vec!["10.0.0.1/8".into()],
            ..EndpointSpec::default()
        };
        assert_eq!(bad.compile().expect_err("cidr").key, "cidr");
        let bad = EndpointSpec {
            entity: vec!["cluster-dns".into()],
            ..EndpointSpec::default()
        };
        assert_eq!(bad.compile().expect_err("entity").key, "entity");
    }

    #[test]
    fn an_external_resolver_by_cidr() {
        let s = EndpointSpec {
            cidr: vec!["192.0.2.53/32".into()],
            ..EndpointSpec::default()
        }
        .compile()
        .expect("compiles");
        assert!(s.matches(&side(None, Some("192.0.2.53"))));
        assert!(!s.matches(&side(None, Some("192.0.2.54"))));
        assert!(!s.matches(&side(None, None)));
        assert_eq!(
            default_dns_servers()[0].to_string(),
            "namespace=[kube-system] labels=[k8s-app=kube-dns]"
        );
    }
}
