//! Turns a loaded configuration into a [`Classifier`]: expected tags, inline rules, rule files.

use std::path::Path;

use crate::classify::Classifier;
use crate::config::{Config, ConfigError, Loaded};
use crate::located::LocatedError;
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
        match std::fs::read_to_string(f) {
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
    let rules = match RuleSet::load(&sources) {
        Ok(r) => Some(r),
        Err(RuleErrors(mut e)) => {
            errors.append(&mut e);
            None
        }
    };
    match rules {
        Some(rules) if errors.is_empty() => Ok(Classifier {
            expected_log_tags: tags,
            rules,
        }),
        _ => Err(RuleErrors(errors)),
    }
}
