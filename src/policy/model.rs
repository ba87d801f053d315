//! What an imported policy is, as `check` and `--explain` show it: its kind, name, place and
//! the log value and deny rules of each spec.

use std::path::PathBuf;

/// The two kinds of policy we import.
pub const CNP: &str = "CiliumNetworkPolicy";
/// The clusterwide kind.
pub const CCNP: &str = "CiliumClusterwideNetworkPolicy";

/// One policy file's text.
#[derive(Clone, Debug)]
pub struct PolicySource {
    /// The path (for messages).
    pub path: PathBuf,
    /// Its YAML text.
    pub text: String,
}

/// What one spec (`spec` or `specs[i]`) of an imported policy carries.
#[derive(Clone, Debug)]
pub struct SpecInfo {
    /// `log.value` ("" when absent).
    pub log: String,
    /// Whether `log` is listed in `expected_log_tags`.
    pub expected: bool,
    /// Number of `egressDeny` + `ingressDeny` rules.
    pub deny_rules: usize,
    /// Number of those rules that became step-3 matchers.
    pub matchers: usize,
}

/// An imported policy.
#[derive(Clone, Debug)]
pub struct Policy {
    /// [`CNP`] or [`CCNP`].
    pub kind: &'static str,
    /// Namespace ("" for clusterwide).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The file it came from.
    pub file: PathBuf,
    /// 1-based line where its document starts.
    pub line: usize,
    /// Its specs, in order.
    pub specs: Vec<SpecInfo>,
}

impl Policy {
    /// `namespace/name`, or `name` for clusterwide policies.
    pub fn display_name(&self) -> String {
        if self.namespace.is_empty() {
            self.name.clone()
        } else {
            format!("{}/{}", self.namespace, self.name)
        }
    }

    /// The tag for step 2: every spec that has deny rules (or, without any, every spec) must
    /// carry an expected log value; then the first one. Otherwise `None`.
    pub fn denied_by_tag(&self) -> Option<&str> {
        let deny: Vec<&SpecInfo> = self.specs.iter().filter(|s| s.deny_rules > 0).collect();
        let specs = if deny.is_empty() {
            self.specs.iter().collect()
        } else {
            deny
        };
        let all = !specs.is_empty() && specs.iter().all(|s| s.expected);
        all.then(|| specs.first().map(|s| s.log.as_str())).flatten()
    }
}
