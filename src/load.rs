//! Turns a loaded configuration into a [`Classifier`]: expected tags, inline rules, rule files,
//! policy files.

use std::path::{Path, PathBuf};

use crate::classify::Classifier;
use crate::config::{Config, ConfigError, Loaded};
use crate::located::LocatedError;
use crate::policy::{PolicySet, PolicySource};
use crate::read::read_bounded;
use crate::rules::glob::Glob;
use crate::rules::{RuleErrors, RuleSet, RuleSource};

/// Reads the configuration: `path`, else `config.toml` when it exists, else defaults.
/// A file named by the user must exist.
pub fn config(path: Option<&Path>) -> Result<Loaded, ConfigError> {
    match path {
        Some(p) => Config::load(Some(p)),
        None if Path::new("config.toml").exists() => Config::load(Some(Path::new("config.toml"))),
        None => Config::load(None),
    }
}

/// Builds the classifier of a loaded configuration. Every error is returned, nothing is
/// partially loaded.
pub fn classifier(loaded: &Loaded) -> Result<Classifier, RuleErrors> {
    let cfg = &loaded.config;
    let mut errors = Vec::new();
    let mut tags = Vec::new();
    for t in &cfg.classify.expected_log_tags {
        match Glob::new(t) {
            Ok(g) => tags.push(g),
            Err(e) => errors.push(LocatedError {
                file: loaded.path.clone().unwrap_or_default(),
                line: 0,
                column: 0,
                key: "classify.expected_log_tags".into(),
                message: e.to_string(),
            }),
        }
    }
    let mut sources = Vec::new();
    if let Some(p) = &loaded.path {
        if cfg.rule.is_some() {
            sources.push(RuleSource {
                path: p.clone(),
                text: loaded.text.clone(),
                inline: true,
            });
        }
    }
    for f in &cfg.classify.rule_files {
        match read_bounded(f, crate::rules::MAX_FILE_BYTES, "rule file") {
            Ok(text) => sources.push(RuleSource {
                path: f.clone(),
                text,
                inline: false,
            }),
            Err(e) => errors.push(LocatedError {
                file: f.clone(),
                line: 0,
                column: 0,
                key: "classify.rule_files".into(),
                message: format!("cannot read: {e}"),
            }),
        }
    }
    let policy_sources = policy_sources(&cfg.classify.policy_files, &mut errors);
    let is_expected = |t: &str| tags.iter().any(|g: &Glob| g.matches(t));
    let policies = match PolicySet::load(&policy_sources, &is_expected) {
        Ok(p) => Some(p),
        Err(mut e) => {
            errors.append(&mut e);
            None
        }
    };
    let rules = match RuleSet::load(&sources) {
        Ok(r) => Some(r),
        Err(RuleErrors(mut e)) => {
            errors.append(&mut e);
            None
        }
    };
    match (rules, policies) {
        (Some(rules), Some(policies)) if errors.is_empty() => Ok(Classifier {
            expected_log_tags: tags,
            rules,
            policies,
        }),
        _ => Err(RuleErrors(errors)),
    }
}

/// The largest policy file read (policies are small; this bounds memory on a wrong path).
pub const MAX_POLICY_FILE: usize = 16 << 20;

/// Every policy file: the files named, and the `*.yaml` / `*.yml` / `*.json` files under the
/// directories named (recursively, in name order, skipping hidden entries such as Kubernetes'
/// `..data`, whose contents also appear under the visible names).
pub fn policy_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, LocatedError> {
    let mut out = Vec::new();
    for p in paths {
        walk(p, true, &mut out).map_err(|e| LocatedError {
            file: p.clone(),
            line: 0,
            column: 0,
            key: "classify.policy_files".into(),
            message: format!("cannot read: {e}"),
        })?;
    }
    Ok(out)
}

fn walk(p: &Path, named: bool, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let meta = std::fs::metadata(p)?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(p)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|e| {
                e.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.starts_with('.'))
            })
            .collect();
        entries.sort();
        for e in entries {
            walk(&e, false, out)?;
        }
    } else if named
        || p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
    {
        out.push(p.to_path_buf());
    }
    Ok(())
}

fn policy_sources(paths: &[PathBuf], errors: &mut Vec<LocatedError>) -> Vec<PolicySource> {
    let files = match policy_paths(paths) {
        Ok(f) => f,
        Err(e) => {
            errors.push(e);
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for f in files {
        match read_bounded(&f, MAX_POLICY_FILE, "policy file") {
            Ok(text) => out.push(PolicySource { path: f, text }),
            Err(e) => errors.push(LocatedError {
                file: f,
                line: 0,
                column: 0,
                key: "classify.policy_files".into(),
                message: format!("cannot read: {e}"),
            }),
        }
    }
    out
}
