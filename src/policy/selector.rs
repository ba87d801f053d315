//! Endpoint selectors of policies, compiled onto the rule engine's [`LabelSelector`].
//!
//! A key without a source (`app`) matches any source, as Cilium reads it (`any:app`); `k8s:app`
//! only the `k8s` source. Flow labels look like `k8s:app=web`.

use super::yaml::{Expression, Selector};
use crate::flow::Side;
use crate::rules::labels::LabelSelector;

/// The label Cilium gives every pod for its namespace.
pub const NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";

/// One requirement of a selector.
#[derive(Clone, Debug)]
enum Requirement {
    /// One of the selectors holds (matchLabels, `In`).
    In(Vec<LabelSelector>),
    /// None of the selectors holds (`NotIn`: also true when the key is absent).
    NotIn(Vec<LabelSelector>),
    /// The key is present.
    Exists(LabelSelector),
    /// The key is absent.
    DoesNotExist(LabelSelector),
}

/// A compiled endpoint selector: every requirement holds, and, when set, the endpoint is in the
/// namespace.
#[derive(Clone, Debug)]
pub struct EndpointSelector {
    requirements: Vec<Requirement>,
    /// Only endpoints of this namespace (a CiliumNetworkPolicy's own, unless the selector names
    /// the namespace label itself).
    namespace: Option<String>,
}

/// Splits a selector key into source and key: `k8s:app` → (Some("k8s"), "app"); `any:app` and
/// `app` → (None, "app").
fn split_key(key: &str) -> Result<(Option<String>, String), String> {
    let (source, key) = match key.split_once(':') {
        Some(("any", k)) => (None, k),
        Some((s, k)) => (Some(s.to_owned()), k),
        None => (None, key),
    };
    if key.is_empty() || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("invalid label key {key:?}"));
    }
    Ok((source, key.to_owned()))
}

fn label(key: &str, value: Option<&str>) -> Result<LabelSelector, String> {
    let (source, key) = split_key(key)?;
    Ok(LabelSelector {
        source,
        key,
        value: value.map(str::to_owned),
    })
}

fn expression(e: &Expression) -> Result<Requirement, String> {
    let values = || -> Result<Vec<LabelSelector>, String> {
        if e.values.is_empty() {
            return Err(format!(
                "matchExpressions {:?} {} needs values",
                e.key, e.operator
            ));
        }
        e.values.iter().map(|v| label(&e.key, Some(v))).collect()
    };
    match e.operator.as_str() {
        "In" => Ok(Requirement::In(values()?)),
        "NotIn" => Ok(Requirement::NotIn(values()?)),
        "Exists" => Ok(Requirement::Exists(label(&e.key, None)?)),
        "DoesNotExist" => Ok(Requirement::DoesNotExist(label(&e.key, None)?)),
        op => Err(format!(
            "matchExpressions operator {op:?} is not In, NotIn, Exists or DoesNotExist"
        )),
    }
}

/// Whether the selector names the namespace label (then it picks namespaces itself).
fn names_namespace(sel: &Selector) -> bool {
    let is_ns = |k: &str| split_key(k).is_ok_and(|(_, k)| k == NAMESPACE_LABEL);
    sel.match_labels.keys().any(|k| is_ns(k)) || sel.match_expressions.iter().any(|e| is_ns(&e.key))
}

impl EndpointSelector {
    /// Compiles a selector. `namespace` is the policy's namespace (None for clusterwide
    /// policies); with `peer` set, a selector that names the namespace label is not confined.
    pub fn compile(sel: &Selector, namespace: Option<&str>, peer: bool) -> Result<Self, String> {
        let mut requirements = Vec::new();
        for (k, v) in &sel.match_labels {
            requirements.push(Requirement::In(vec![label(k, Some(v))?]));
        }
        for e in &sel.match_expressions {
            requirements.push(expression(e)?);
        }
        let namespace = match namespace {
            Some(ns) if !(peer && names_namespace(sel)) => Some(ns.to_owned()),
            _ => None,
        };
        Ok(Self {
            requirements,
            namespace,
        })
    }

    /// Whether the side is an endpoint (a pod: it has a namespace) that this selector selects.
    pub fn matches(&self, side: &Side<'_>) -> bool {
        let ns = side.namespace();
        if ns.is_empty() {
            return false;
        }
        if self.namespace.as_deref().is_some_and(|want| want != ns) {
            return false;
        }
        self.matches_labels(side.labels())
    }

    /// Whether the requirements hold on a node's (host endpoint's) labels; no namespace check.
    pub fn matches_labels(&self, labels: &[String]) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::In(s) => s.iter().any(|s| s.matches(labels)),
            Requirement::NotIn(s) => !s.iter().any(|s| s.matches(labels)),
            Requirement::Exists(s) => s.matches(labels),
            Requirement::DoesNotExist(s) => !s.matches(labels),
        })
    }
}
