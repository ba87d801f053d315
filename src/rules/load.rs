//! From the raw TOML of one document to validated rules, collecting every error with its
//! place (file:line:column) and key path (`rule[0].match.destination.cidr`).

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use toml::Spanned;

use super::cidr::Cidr;
use super::file::{RawFile, RawInline, RawMatch, RawRule, RawSide};
use super::fqdn::FqdnPattern;
use super::glob::Glob;
use super::labels::{Entity, LabelSelector};
use super::matcher::{CompiledMatch, SideMatch};
use super::port::PortSpec;
use super::{Class, Rule, RuleError, RuleSource};
use crate::api::flow::{DropReason, TrafficDirection, Verdict};
use crate::located::{LocatedError, line_col};

/// The largest rule document, in bytes.
pub const MAX_FILE_BYTES: usize = 4 << 20;
/// The most rules in one document.
pub const MAX_RULES: usize = 10_000;
/// The longest pattern or list value, in bytes.
pub const MAX_PATTERN: usize = 255;
/// The longest rule name or reason.
pub const MAX_NAME: usize = 128;

/// Where errors go while one document is validated.
struct Cx<'a> {
    file: &'a Path,
    text: &'a str,
    errors: &'a mut Vec<RuleError>,
}

impl Cx<'_> {
    fn err(&mut self, span: Range<usize>, key: &str, message: impl Into<String>) {
        let e = LocatedError::at(self.file, self.text, Some(span), key, message);
        self.errors.push(e);
    }
}

/// One validated rule with what `RuleSet::load` still needs (duplicate check, matcher).
pub(crate) struct Loaded {
    pub rule: Rule,
    pub matcher: CompiledMatch,
}

/// Parses and validates one document; every error goes to `errors`. `seen` holds the names
/// of earlier rules (of every source) with their place, for the duplicate check.
pub(crate) fn load_source(
    src: &RuleSource,
    seen: &mut HashMap<String, String>,
    errors: &mut Vec<RuleError>,
) -> Vec<Loaded> {
    let (file, text) = (src.path.as_path(), src.text.as_str());
    if text.len() > MAX_FILE_BYTES {
        errors.push(LocatedError::at(
            file,
            text,
            Some(0..0),
            "",
            format!("rule file is larger than {} MiB", MAX_FILE_BYTES >> 20),
        ));
        return Vec::new();
    }
    let raw = if src.inline {
        crate::located::from_toml::<RawInline>(file, text).map(|d| d.rule)
    } else {
        crate::located::from_toml::<RawFile>(file, text).map(|d| d.rule)
    };
    let raw = match raw {
        Ok(r) => r,
        Err(e) => {
            errors.push(e);
            return Vec::new();
        }
    };
    let mut cx = Cx { file, text, errors };
    if let Some(r) = raw.get(MAX_RULES) {
        cx.err(
            r.span(),
            &format!("rule[{MAX_RULES}]"),
            format!("more than {MAX_RULES} rules in one file"),
        );
        return Vec::new();
    }
    let mut out = Vec::with_capacity(raw.len());
    for (i, r) in raw.into_iter().enumerate() {
        let span = r.span();
        if let Some(l) = rule(&mut cx, i, span, r.into_inner(), seen) {
            out.push(l);
        }
    }
    out
}

fn rule(
    cx: &mut Cx<'_>,
    i: usize,
    header: Range<usize>,
    r: RawRule,
    seen: &mut HashMap<String, String>,
) -> Option<Loaded> {
    let key = format!("rule[{i}]");
    let k = |s: &str| format!("{key}.{s}");
    let before = cx.errors.len();
    let name = r.name.get_ref().clone();
    let name_span = r.name.span();
    if let Err(m) = check_name(&name) {
        cx.err(name_span.clone(), &k("name"), m);
    }
    let (line, _) = line_col(cx.text, header.start);
    let here = format!("{}:{line}", cx.file.display());
    match seen.get(&name) {
        Some(first) => cx.err(
            name_span,
            &k("name"),
            format!("duplicate rule name {name:?} (first defined at {first})"),
        ),
        None => {
            seen.insert(name.clone(), here);
        }
    }
    let class = match &r.class {
        None => Class::Expected,
        Some(c) => match c.get_ref().as_str() {
            "expected" => Class::Expected,
            "unexpected" => Class::Unexpected,
            other => {
                cx.err(
                    c.span(),
                    &k("class"),
                    format!("unknown class {other:?}: expected \"expected\" or \"unexpected\""),
                );
                Class::Unexpected
            }
        },
    };
    let reason = match &r.reason {
        None => name.clone(),
        Some(s) => {
            if let Err(m) = check_reason(s.get_ref()) {
                cx.err(s.span(), &k("reason"), m);
            }
            s.get_ref().clone()
        }
    };
    let owner = required_text(cx, &k("owner"), "owner", &header, r.owner, class);
    let comment = required_text(cx, &k("comment"), "comment", &header, r.comment, class);
    let expires = r
        .expires
        .and_then(|e| match super::expires::unix_seconds(e.get_ref()) {
            Ok(t) => Some(t),
            Err(m) => {
                cx.err(e.span(), &k("expires"), m);
                None
            }
        });
    let matcher = match r.matches {
        None => {
            cx.err(
                header,
                &key,
                "missing [rule.match]: a rule without a match would match every flow",
            );
            None
        }
        Some(m) => compile_match(cx, &k("match"), m),
    };
    if cx.errors.len() > before {
        return None;
    }
    Some(Loaded {
        rule: Rule {
            name,
            class,
            reason,
            owner,
            comment,
            expires,
            file: cx.file.to_path_buf(),
            line,
        },
        matcher: matcher?,
    })
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty name".into());
    }
    if name.len() > MAX_NAME {
        return Err(format!("name longer than {MAX_NAME} characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(format!(
            "invalid name {name:?}: use only lower-case letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

fn check_reason(reason: &str) -> Result<(), String> {
    if reason.is_empty() {
        return Err("empty reason".into());
    }
    if reason.len() > MAX_NAME {
        return Err(format!("reason longer than {MAX_NAME} characters"));
    }
    if !reason
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':' | b'/'))
    {
        return Err(format!(
            "invalid reason {reason:?}: use only letters, digits, '.', '_', '-', ':' and '/'"
        ));
    }
    Ok(())
}

fn required_text(
    cx: &mut Cx<'_>,
    key: &str,
    what: &str,
    header: &Range<usize>,
    value: Option<Spanned<String>>,
    class: Class,
) -> Option<String> {
    match value {
        Some(v) if v.get_ref().trim().is_empty() => {
            cx.err(v.span(), key, format!("empty {what}"));
            None
        }
        Some(v) => Some(v.into_inner()),
        None if class == Class::Expected => {
            cx.err(
                header.clone(),
                key,
                format!("missing {what}: required when class = \"expected\""),
            );
            None
        }
        None => None,
    }
}

type RawList = Option<Spanned<Vec<Spanned<String>>>>;

/// Validates a list: not empty, each value at most [`MAX_PATTERN`] bytes, each parsed.
fn list<T>(
    cx: &mut Cx<'_>,
    key: &str,
    raw: RawList,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Option<Vec<T>> {
    let raw = raw?;
    if raw.get_ref().is_empty() {
        cx.err(raw.span(), key, "empty list matches nothing");
        return Some(Vec::new());
    }
    let mut out = Vec::with_capacity(raw.get_ref().len());
    for v in raw.into_inner() {
        let s = v.get_ref();
        if s.len() > MAX_PATTERN {
            cx.err(
                v.span(),
                key,
                format!("value longer than {MAX_PATTERN} characters"),
            );
            continue;
        }
        match parse(s) {
            Ok(t) => out.push(t),
            Err(m) => cx.err(v.span(), key, m),
        }
    }
    Some(out)
}

fn glob(s: &str) -> Result<Glob, String> {
    Glob::new(s).map_err(|e| e.to_string())
}

fn compile_match(cx: &mut Cx<'_>, key: &str, m: Spanned<RawMatch>) -> Option<CompiledMatch> {
    let span = m.span();
    let m = m.into_inner();
    let before = cx.errors.len();
    let k = |s: &str| format!("{key}.{s}");
    let verdict = list(cx, &k("verdict"), m.verdict, |s| {
        Verdict::from_str_name(s)
            .ok_or_else(|| format!("unknown verdict {s:?}: expected one of {}", verdict_names()))
    });
    let direction = m.direction.map(|d| {
        let span = d.span();
        let values = d.into_inner().0.into_iter();
        let values = values.map(|v| Spanned::new(span.clone(), v)).collect();
        list(
            cx,
            &k("direction"),
            Some(Spanned::new(span.clone(), values)),
            |s| match s {
                "ingress" => Ok(TrafficDirection::Ingress),
                "egress" => Ok(TrafficDirection::Egress),
                _ => Err(format!(
                    "unknown direction {s:?}: expected \"ingress\" or \"egress\""
                )),
            },
        )
        .unwrap_or_default()
    });
    let drop_reason = list(cx, &k("drop_reason"), m.drop_reason, |s| {
        DropReason::from_str_name(s).ok_or_else(|| {
            format!("unknown drop reason {s:?}: expected a DropReason name such as POLICY_DENIED")
        })
    });
    let policy_log = list(cx, &k("policy_log"), m.policy_log, |s| {
        if s.is_empty() {
            Err("an empty policy_log value never matches".into())
        } else {
            Ok(s.to_owned())
        }
    });
    let node = list(cx, &k("node"), m.node, glob);
    let source = m
        .source
        .map(|s| side(cx, &k("source"), s.into_inner()))
        .unwrap_or_default();
    let destination = m
        .destination
        .map(|s| side(cx, &k("destination"), s.into_inner()))
        .unwrap_or_default();
    let compiled = CompiledMatch {
        verdict,
        direction,
        drop_reason,
        policy_log,
        node,
        source,
        destination,
    };
    if cx.errors.len() > before {
        // A key with errors looks unconstrained; do not also call the match empty.
        return None;
    }
    let catch_alls = compiled.catch_alls();
    if catch_alls.is_empty() {
        cx.err(
            span,
            key,
            "empty match would match every flow: a rule must constrain something",
        );
        return None;
    }
    if catch_alls.iter().all(|c| *c) {
        cx.err(
            span,
            key,
            "matches every flow: each of its keys is a catch-all",
        );
        return None;
    }
    Some(compiled)
}

fn side(cx: &mut Cx<'_>, key: &str, s: RawSide) -> SideMatch {
    let k = |s: &str| format!("{key}.{s}");
    SideMatch {
        namespace: list(cx, &k("namespace"), s.namespace, glob),
        pod: list(cx, &k("pod"), s.pod, glob),
        workload: list(cx, &k("workload"), s.workload, glob),
        labels: list(cx, &k("labels"), s.labels, LabelSelector::parse).unwrap_or_default(),
        entity: list(cx, &k("entity"), s.entity, Entity::parse),
        cidr: list(cx, &k("cidr"), s.cidr, Cidr::parse),
        fqdn: list(cx, &k("fqdn"), s.fqdn, FqdnPattern::new),
        port: list(cx, &k("port"), s.port, PortSpec::parse),
    }
}

fn verdict_names() -> String {
    (0..=7)
        .filter_map(|n| Verdict::try_from(n).ok())
        .map(|v| v.as_str_name())
        .collect::<Vec<_>>()
        .join(", ")
}
