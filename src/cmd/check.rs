//! `hubble-noise check`: validate config, rules and policies and print a summary.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use crate::classify::Classifier;
use crate::cli::ConfigArg;
use crate::config::{Config, ConfigError, DnsScope};
use crate::load;
use crate::output::rfc3339;
use crate::rules::Class;
use crate::web::WebConfig;

/// Runs `check`. Invalid configuration or rules: the errors on stderr and exit 1.
pub fn run(args: &ConfigArg) -> anyhow::Result<ExitCode> {
    let loaded = match load::config(args.config.as_deref()) {
        Ok(l) => l,
        Err(e @ ConfigError::Read { .. }) => return Err(e.into()),
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(1));
        }
    };
    let cfg = &loaded.config;
    let web = WebConfig::load(cfg.metrics.web_config_file.as_deref());
    let (classifier, web) = match (load::classifier(&loaded), web) {
        (Ok(c), Ok(w)) => (c, w),
        (c, w) => {
            let mut errors = c.err().map(|e| e.0).unwrap_or_default();
            errors.extend(w.err());
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!("check: {} error(s), nothing loaded", errors.len());
            return Ok(ExitCode::from(1));
        }
    };
    // Written at once and without panicking on a closed pipe (`check | head`).
    let mut out = String::new();
    let source = loaded
        .path
        .as_ref()
        .map_or("built-in defaults".to_string(), |p| p.display().to_string());
    let _ = writeln!(out, "config: {source}");
    let _ = writeln!(out, "relay: {}", cfg.relay.address);
    let _ = writeln!(
        out,
        "metrics: {} (labels: {})",
        cfg.metrics.listen,
        cfg.metrics.labels.join(", ")
    );
    let _ = writeln!(out, "web: {}", web.describe());
    let tags = &cfg.classify.expected_log_tags;
    let tags = if tags.is_empty() {
        "(none)".to_string()
    } else {
        tags.join(", ")
    };
    let _ = writeln!(out, "expected log tags: {tags}");
    flow_log(&mut out, cfg);
    dns_servers(&mut out, cfg);
    rules(&mut out, &classifier, cfg);
    policies(&mut out, &classifier, cfg);
    for w in policy_warnings(&classifier, &cfg.classify.expected_log_tags) {
        let _ = writeln!(out, "warning: {w}");
    }
    let _ = writeln!(out, "ok");
    let _ = std::io::stdout().write_all(out.as_bytes());
    Ok(ExitCode::SUCCESS)
}

/// `[export]`, when on: which flows go where.
fn flow_log(out: &mut String, cfg: &Config) {
    let e = &cfg.export;
    if !e.enabled {
        return;
    }
    let class = match e.class {
        crate::config::ExportClass::Unexpected => "unexpected",
        crate::config::ExportClass::Expected => "expected",
        crate::config::ExportClass::All => "all",
    };
    let to = if e.to_stdout() {
        "standard output".to_string()
    } else {
        format!(
            "{} (rotated at {} bytes, {} kept)",
            e.path.display(),
            e.max_size,
            e.max_files
        )
    };
    let _ = writeln!(out, "flow log: {class} flows to {to}, queue {}", e.queue);
}

/// Whose DNS answers are learned.
fn dns_servers(out: &mut String, cfg: &Config) {
    if !cfg.dns.learn {
        let _ = writeln!(out, "dns: learning off (dns.learn = false)");
        return;
    }
    if cfg.dns.servers.is_empty() {
        let _ = writeln!(
            out,
            "dns: trusts no DNS server (dns.servers is empty): no name is learned"
        );
        return;
    }
    let scope = match cfg.dns.scope {
        DnsScope::Endpoint => "endpoint",
        DnsScope::Cluster => "cluster",
    };
    let _ = writeln!(
        out,
        "dns: names learned from answers of {} trusted server selector(s), scope {scope}:",
        cfg.dns.servers.len()
    );
    for s in &cfg.dns.servers {
        let _ = writeln!(out, "  {s}");
    }
}

/// The rules, in order, with their class, reason, expiry and place.
fn rules(out: &mut String, classifier: &Classifier, cfg: &Config) {
    let rules = classifier.rules.rules();
    let expected = rules.iter().filter(|r| r.class == Class::Expected).count();
    let inline = if cfg.rule.is_some() {
        " and config.toml"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "rules: {} ({} expected, {} unexpected) from {} file(s){inline}",
        rules.len(),
        expected,
        rules.len() - expected,
        cfg.classify.rule_files.len(),
    );
    let now = crate::metrics::now_seconds();
    for r in rules {
        let exp = match r.expires {
            Some(t) if t < now => format!(", EXPIRED {}", day(t)),
            Some(t) => format!(", expires {}", day(t)),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "  {} ({}, reason {}{}) {}:{}",
            r.name,
            r.class.as_str(),
            r.reason,
            exp,
            r.file.display(),
            r.line
        );
    }
}

/// The imported policies with their log values and deny rules.
fn policies(out: &mut String, classifier: &Classifier, cfg: &Config) {
    let policies = classifier.policies.policies();
    let _ = writeln!(
        out,
        "policies: {} from {} path(s), {} deny matcher(s)",
        policies.len(),
        cfg.classify.policy_files.len(),
        classifier.policies.matcher_count()
    );
    for p in policies {
        let logs: Vec<String> = p
            .specs
            .iter()
            .map(|s| match (s.log.as_str(), s.expected) {
                ("", _) => "no log value".to_string(),
                (l, true) => format!("log {l} (expected)"),
                (l, false) => format!("log {l} (not expected)"),
            })
            .collect();
        let rules: usize = p.specs.iter().map(|s| s.deny_rules).sum();
        let matchers: usize = p.specs.iter().map(|s| s.matchers).sum();
        let _ = writeln!(
            out,
            "  {} {} ({}; {} deny rule(s), {} matcher(s)) {}:{}",
            p.kind,
            p.display_name(),
            logs.join(", "),
            rules,
            matchers,
            p.file.display(),
            p.line
        );
    }
}

fn day(t: f64) -> String {
    let ts = pbjson_types::Timestamp {
        seconds: t.floor() as i64,
        nanos: 0,
    };
    rfc3339(&ts)
}

/// What `check` warns about: skipped or ignored policy fields, and expected tags that no
/// imported policy carries (a typo, or a policy missing from `policy_files`).
pub fn policy_warnings(classifier: &crate::classify::Classifier, tags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = classifier
        .policies
        .warnings()
        .iter()
        .map(ToString::to_string)
        .collect();
    for (tag, glob) in tags.iter().zip(&classifier.expected_log_tags) {
        if !classifier.policies.carries_tag(|v| glob.matches(v)) {
            out.push(format!(
                "classify.expected_log_tags: {tag:?} is carried by no imported policy (a typo?)"
            ));
        }
    }
    out
}
