//! From parsed manifests to the parts of a policy set: flattening `kind: List`, naming,
//! compiling deny rules into step-3 matchers.

use std::collections::HashMap;
use std::path::Path;

use super::compile::{DenyMatcher, Local, compile_rule};
use super::model::{CCNP, CNP, Policy, PolicySource, SpecInfo};
use super::yaml::{self, DenyRule, Manifest, Spec};
use crate::api::flow::TrafficDirection;
use crate::located::LocatedError;

/// Collects errors and warnings for one document.
struct Ctx<'a> {
    file: &'a Path,
    line: usize,
    errors: &'a mut Vec<LocatedError>,
    warnings: &'a mut Vec<LocatedError>,
}

impl Ctx<'_> {
    fn at(&self, key: &str, message: String) -> LocatedError {
        LocatedError {
            file: self.file.to_path_buf(),
            line: self.line,
            column: 0,
            key: key.to_owned(),
            message,
        }
    }
    fn warn(&mut self, key: &str, message: String) {
        let w = self.at(key, message);
        self.warnings.push(w);
    }
    fn error(&mut self, key: &str, message: String) {
        let e = self.at(key, message);
        self.errors.push(e);
    }
}

/// A step-3 matcher and what it decides.
#[derive(Debug)]
pub(super) struct Derived {
    /// The policy's index.
    pub(super) policy: usize,
    /// Its expected log value.
    pub(super) tag: String,
    pub(super) matcher: DenyMatcher,
}

/// What the sources hold: the policies, their index by (namespace, name), the step-3
/// matchers, and what was skipped.
#[derive(Default)]
pub(super) struct Built {
    pub(super) policies: Vec<Policy>,
    pub(super) by_name: HashMap<(String, String), Vec<usize>>,
    pub(super) derived: Vec<Derived>,
    pub(super) warnings: Vec<LocatedError>,
}

/// Loads every source; see `PolicySet::load`.
pub(super) fn load(
    sources: &[PolicySource],
    expected: &dyn Fn(&str) -> bool,
) -> Result<Built, Vec<LocatedError>> {
    let mut set = Built::default();
    let mut errors = Vec::new();
    let mut seen: HashMap<(&'static str, String, String), (std::path::PathBuf, usize)> =
        HashMap::new();
    for src in sources {
        let docs = match yaml::parse_file(&src.path, &src.text) {
            Ok(d) => d,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        for doc in docs {
            let mut cx = Ctx {
                file: &src.path,
                line: doc.line,
                errors: &mut errors,
                warnings: &mut set.warnings,
            };
            let key = format!("document[{}]", doc.index);
            let mut flat = Vec::new();
            flatten(&doc.manifest, key, &mut flat, &mut cx);
            for (key, m) in flat {
                let Some((policy, derived)) = import(m, &key, expected, &mut cx) else {
                    continue;
                };
                let id = (policy.kind, policy.namespace.clone(), policy.name.clone());
                if let Some((f, l)) = seen.get(&id) {
                    cx.error(
                        &key,
                        format!(
                            "duplicate policy {} {} (first at {}:{l})",
                            policy.kind,
                            policy.display_name(),
                            f.display()
                        ),
                    );
                    continue;
                }
                seen.insert(id, (src.path.clone(), doc.line));
                let index = set.policies.len();
                set.by_name
                    .entry((policy.namespace.clone(), policy.name.clone()))
                    .or_default()
                    .push(index);
                set.derived
                    .extend(derived.into_iter().map(|(tag, matcher)| Derived {
                        policy: index,
                        tag,
                        matcher,
                    }));
                set.policies.push(policy);
            }
        }
    }
    if errors.is_empty() {
        Ok(set)
    } else {
        Err(errors)
    }
}

/// The policies of a manifest: itself, or the items of a `List` (nested lists too).
fn flatten<'m>(
    m: &'m Manifest,
    key: String,
    out: &mut Vec<(String, &'m Manifest)>,
    cx: &mut Ctx<'_>,
) {
    match m.kind.as_str() {
        "List" => {
            for (i, item) in m.items.iter().enumerate() {
                flatten(item, format!("{key}.items[{i}]"), out, cx);
            }
        }
        CNP | CCNP => out.push((key, m)),
        other => cx.warn(
            &format!("{key}.kind"),
            format!("kind {other:?} is not a Cilium network policy: ignored"),
        ),
    }
}

type Matchers = Vec<(String, DenyMatcher)>;

/// One policy manifest into its metadata and step-3 matchers.
fn import(
    m: &Manifest,
    key: &str,
    expected: &dyn Fn(&str) -> bool,
    cx: &mut Ctx<'_>,
) -> Option<(Policy, Matchers)> {
    let kind = if m.kind == CNP { CNP } else { CCNP };
    if m.metadata.name.is_empty() {
        cx.error(
            &format!("{key}.metadata.name"),
            "a policy needs a name".into(),
        );
        return None;
    }
    let namespace = if kind == CNP {
        if m.metadata.namespace.is_empty() {
            cx.warn(
                &format!("{key}.metadata.namespace"),
                format!(
                    "{kind} {:?} has no namespace (as applied with `kubectl -n`?): ignored",
                    m.metadata.name
                ),
            );
            return None;
        }
        Some(m.metadata.namespace.as_str())
    } else {
        None
    };
    let specs: Vec<(String, &Spec)> = m
        .spec
        .iter()
        .map(|s| (format!("{key}.spec"), s))
        .chain(
            m.specs
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("{key}.specs[{i}]"), s)),
        )
        .collect();
    if specs.is_empty() {
        cx.warn(key, "neither spec nor specs: nothing to import".into());
    }
    let mut infos = Vec::new();
    let mut matchers = Vec::new();
    for (skey, spec) in specs {
        infos.push(import_spec(
            spec,
            &skey,
            namespace,
            expected,
            &mut matchers,
            cx,
        ));
    }
    let policy = Policy {
        kind,
        namespace: namespace.unwrap_or("").to_owned(),
        name: m.metadata.name.clone(),
        file: cx.file.to_path_buf(),
        line: cx.line,
        specs: infos,
    };
    Some((policy, matchers))
}

/// One spec: its log value and deny rules; when the value is expected, its deny rules compiled
/// into `matchers` (a rule that cannot be used is skipped with a warning).
fn import_spec(
    spec: &Spec,
    skey: &str,
    namespace: Option<&str>,
    expected: &dyn Fn(&str) -> bool,
    matchers: &mut Matchers,
    cx: &mut Ctx<'_>,
) -> SpecInfo {
    let log = spec
        .log
        .as_ref()
        .map_or("", |l| l.value.as_str())
        .to_owned();
    let is_expected = !log.is_empty() && expected(&log);
    let egress = spec.egress_deny.iter().enumerate().map(|(i, r)| {
        let key = format!("{skey}.egressDeny[{i}]");
        (TrafficDirection::Egress, key, r)
    });
    let ingress = spec.ingress_deny.iter().enumerate().map(|(i, r)| {
        let key = format!("{skey}.ingressDeny[{i}]");
        (TrafficDirection::Ingress, key, r)
    });
    let rules: Vec<(TrafficDirection, String, &DenyRule)> = egress.chain(ingress).collect();
    let mut info = SpecInfo {
        log: log.clone(),
        expected: is_expected,
        deny_rules: rules.len(),
        matchers: 0,
    };
    if !is_expected || rules.is_empty() {
        return info;
    }
    let local = Local::compile(
        spec.endpoint_selector.as_ref(),
        spec.node_selector.as_ref(),
        namespace,
    );
    let local = match local {
        Ok(l) => l,
        Err(e) => {
            cx.warn(skey, format!("{e}: deny rules skipped"));
            return info;
        }
    };
    for (dir, rkey, rule) in rules {
        match compile_rule(rule, dir, &local, namespace) {
            Ok(dm) => {
                info.matchers += 1;
                matchers.push((log.clone(), dm));
            }
            Err(e) => cx.warn(&rkey, format!("{e}: rule skipped")),
        }
    }
    info
}
