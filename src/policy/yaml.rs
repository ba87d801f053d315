//! The YAML shape of CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy, as far as we read it,
//! and the reader of multi-document files and `kind: List`.
//!
//! Unknown fields are accepted everywhere (policies carry far more than we use); the deny rules
//! keep theirs in `other` so that the compiler can warn about what it ignores.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::located::LocatedError;

/// One manifest: a policy, or a `List` of them.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// `CiliumNetworkPolicy`, `CiliumClusterwideNetworkPolicy`, `List`, ...
    #[serde(default)]
    pub kind: String,
    /// Name and namespace.
    #[serde(default)]
    pub metadata: Metadata,
    /// The single spec.
    pub spec: Option<Spec>,
    /// Further specs.
    #[serde(default)]
    pub specs: Vec<Spec>,
    /// The items of a `kind: List`.
    #[serde(default)]
    pub items: Vec<Manifest>,
}

/// `metadata`.
#[derive(Debug, Default, Deserialize)]
pub struct Metadata {
    /// `metadata.name`.
    #[serde(default)]
    pub name: String,
    /// `metadata.namespace` (empty for clusterwide policies).
    #[serde(default)]
    pub namespace: String,
}

/// One rule spec (`spec` or an entry of `specs`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    /// Selects the endpoints the spec applies to.
    pub endpoint_selector: Option<Selector>,
    /// Selects the nodes (host endpoints) the spec applies to (clusterwide only).
    pub node_selector: Option<Selector>,
    /// Explicit egress deny rules.
    #[serde(default)]
    pub egress_deny: Vec<DenyRule>,
    /// Explicit ingress deny rules.
    #[serde(default)]
    pub ingress_deny: Vec<DenyRule>,
    /// `log.value`.
    pub log: Option<Log>,
}

/// `log`.
#[derive(Debug, Default, Deserialize)]
pub struct Log {
    /// The value that shows up as `policy_log` on flows.
    #[serde(default)]
    pub value: String,
}

/// A Kubernetes label selector.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Selector {
    /// Exact labels, all required.
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    /// Set-based requirements, all required.
    #[serde(default)]
    pub match_expressions: Vec<Expression>,
}

/// One `matchExpressions` entry.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Expression {
    /// Label key.
    #[serde(default)]
    pub key: String,
    /// `In`, `NotIn`, `Exists`, `DoesNotExist`.
    #[serde(default)]
    pub operator: String,
    /// Values for `In` / `NotIn`.
    #[serde(default)]
    pub values: Vec<String>,
}

/// One `egressDeny` / `ingressDeny` entry: both directions' peer keys are read, the compiler
/// uses the ones of its direction and warns about the others.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DenyRule {
    /// `toCIDR`.
    #[serde(rename = "toCIDR")]
    pub to_cidr: Option<Vec<String>>,
    /// `toCIDRSet`.
    #[serde(rename = "toCIDRSet")]
    pub to_cidr_set: Option<Vec<CidrRule>>,
    /// `toEntities`.
    pub to_entities: Option<Vec<String>>,
    /// `toEndpoints`.
    pub to_endpoints: Option<Vec<Selector>>,
    /// `fromCIDR`.
    #[serde(rename = "fromCIDR")]
    pub from_cidr: Option<Vec<String>>,
    /// `fromCIDRSet`.
    #[serde(rename = "fromCIDRSet")]
    pub from_cidr_set: Option<Vec<CidrRule>>,
    /// `fromEntities`.
    pub from_entities: Option<Vec<String>>,
    /// `fromEndpoints`.
    pub from_endpoints: Option<Vec<Selector>>,
    /// `toPorts` (ports of the destination, in both directions).
    pub to_ports: Option<Vec<PortRule>>,
    /// Every other key (toServices, icmps, toRequires, ...): not understood, so the rule is
    /// skipped.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_norway::Value>,
}

/// One `toCIDRSet` / `fromCIDRSet` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CidrRule {
    /// The prefix.
    pub cidr: Option<String>,
    /// Prefixes carved out of it.
    #[serde(default)]
    pub except: Vec<String>,
    /// `cidrGroupRef`, `cidrGroupSelector`, ...: not understood.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_norway::Value>,
}

/// One `toPorts` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortRule {
    /// The ports.
    #[serde(default)]
    pub ports: Vec<PortProtocol>,
    /// `rules`, `serverNames`, ...: not understood.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_norway::Value>,
}

/// One `ports` entry: `port` is a number or a string (possibly a named port).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortProtocol {
    /// Port number (or name); absent or 0 = every port.
    pub port: Option<serde_norway::Value>,
    /// End of a port range.
    pub end_port: Option<u32>,
    /// TCP, UDP, SCTP, ANY, ICMP, ...
    pub protocol: Option<String>,
}

/// A policy document with where it starts.
#[derive(Debug)]
pub struct Document {
    /// 1-based line where the document's text starts.
    pub line: usize,
    /// 0-based index of the document in its file.
    pub index: usize,
    /// The parsed manifest.
    pub manifest: Manifest,
}

/// Splits a YAML stream at `---` lines: `(first line, text)` of every non-empty document.
fn split_documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut cur = String::new();
    let mut start = 1;
    for (i, line) in text.lines().enumerate() {
        let is_sep = line == "---" || line.starts_with("--- ") || line == "...";
        if is_sep {
            docs.push((start, std::mem::take(&mut cur)));
            start = i + 2;
        } else {
            cur.push_str(line);
            cur.push('\n');
        }
    }
    docs.push((start, cur));
    docs.into_iter()
        .filter(|(_, t)| t.lines().any(is_content))
        .collect()
}

fn is_content(line: &str) -> bool {
    !line.trim().is_empty() && !line.trim_start().starts_with('#')
}

/// Parses every document of a policy file. A syntax or type error is an error naming the line
/// (from the YAML parser, counted from the file's start) and the key path.
pub fn parse_file(path: &Path, text: &str) -> Result<Vec<Document>, LocatedError> {
    let mut out = Vec::new();
    for (index, (line, doc)) in split_documents(text).into_iter().enumerate() {
        let de = serde_norway::Deserializer::from_str(&doc);
        let manifest: Manifest = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let key = if key == "." { String::new() } else { key };
            let inner = e.into_inner();
            let (l, c) = inner
                .location()
                .map_or((line, 0), |loc| (line + loc.line() - 1, loc.column()));
            // Without the parser's location (relative to the document) and key path: ours.
            let message = crate::located::yaml_message(&inner, &key);
            LocatedError {
                file: path.to_path_buf(),
                line: l,
                column: c,
                key: format!(
                    "document[{index}]{}{key}",
                    if key.is_empty() { "" } else { "." }
                ),
                message,
            }
        })?;
        // Point at the document's first line of content, not at blank lines or comments.
        let first = doc.lines().position(is_content).unwrap_or(0);
        out.push(Document {
            line: line + first,
            index,
            manifest,
        });
    }
    Ok(out)
}
