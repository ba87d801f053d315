//! From the raw TOML of one document to validated rules, collecting every error with its
//! place (file:line:column) and key path (`rule[0].match.destination.cidr`).

use std::collections::HashMap;
use std::ops::Range;

use toml::Spanned;

use super::compile::{Cx, compile_match};
use super::file::{RawFile, RawInline, RawRule};
use super::matcher::CompiledMatch;
use super::rule::{Class, Rule, RuleError, RuleSource};
use crate::located::{LocatedError, line_col};

/// The largest rule document, in bytes.
pub const MAX_FILE_BYTES: usize = 4 << 20;
/// The most rules in one document.
pub const MAX_RULES: usize = 10_000;
/// The longest rule name or reason.
pub const MAX_NAME: usize = 128;

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
    let line = unique_name(cx, &k("name"), &r.name, &header, seen);
    let class = class_of(cx, &k("class"), r.class.as_ref());
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

/// Checks a rule's name (form, not seen before) and notes where it is; returns the rule's line.
fn unique_name(
    cx: &mut Cx<'_>,
    key: &str,
    name: &Spanned<String>,
    header: &Range<usize>,
    seen: &mut HashMap<String, String>,
) -> usize {
    if let Err(m) = check_name(name.get_ref()) {
        cx.err(name.span(), key, m);
    }
    let (line, _) = line_col(cx.text, header.start);
    match seen.get(name.get_ref()) {
        Some(first) => cx.err(
            name.span(),
            key,
            format!(
                "duplicate rule name {:?} (first defined at {first})",
                name.get_ref()
            ),
        ),
        None => {
            let here = format!("{}:{line}", cx.file.display());
            seen.insert(name.get_ref().clone(), here);
        }
    }
    line
}

/// `class`: expected (the default) or unexpected.
fn class_of(cx: &mut Cx<'_>, key: &str, class: Option<&Spanned<String>>) -> Class {
    let Some(c) = class else {
        return Class::Expected;
    };
    match c.get_ref().as_str() {
        "expected" => Class::Expected,
        "unexpected" => Class::Unexpected,
        other => {
            cx.err(
                c.span(),
                key,
                format!("unknown class {other:?}: expected \"expected\" or \"unexpected\""),
            );
            Class::Unexpected
        }
    }
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
