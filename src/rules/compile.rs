//! `[rule.match]` of one rule, from its raw TOML to a [`CompiledMatch`]: every list checked
//! (not empty, values not too long, each parsed), every error with its place and key path.

use std::ops::Range;
use std::path::Path;

use toml::Spanned;

use super::cidr::Cidr;
use super::file::{OneOrMany, RawMatch, RawSide};
use super::fqdn::FqdnPattern;
use super::glob::Glob;
use super::labels::{Entity, LabelSelector};
use super::matcher::{CompiledMatch, SideMatch};
use super::port::PortSpec;
use super::rule::RuleError;
use crate::api::flow::{DropReason, TrafficDirection, Verdict};
use crate::located::LocatedError;

/// The longest pattern or list value, in bytes.
pub const MAX_PATTERN: usize = 255;

/// Where errors go while one document is validated.
pub(super) struct Cx<'a> {
    pub(super) file: &'a Path,
    pub(super) text: &'a str,
    pub(super) errors: &'a mut Vec<RuleError>,
}

impl Cx<'_> {
    pub(super) fn err(&mut self, span: Range<usize>, key: &str, message: impl Into<String>) {
        let e = LocatedError::at(self.file, self.text, Some(span), key, message);
        self.errors.push(e);
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

pub(super) fn compile_match(
    cx: &mut Cx<'_>,
    key: &str,
    m: Spanned<RawMatch>,
) -> Option<CompiledMatch> {
    let span = m.span();
    let m = m.into_inner();
    let before = cx.errors.len();
    let k = |s: &str| format!("{key}.{s}");
    let verdict = list(cx, &k("verdict"), m.verdict, |s| {
        Verdict::from_str_name(s)
            .ok_or_else(|| format!("unknown verdict {s:?}: expected one of {}", verdict_names()))
    });
    let direction = m.direction.map(|d| direction(cx, &k("direction"), d));
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
    constrains_something(cx, key, span, &compiled).then_some(compiled)
}

/// `direction`: one value or a list, each `ingress` or `egress`.
fn direction(cx: &mut Cx<'_>, key: &str, d: Spanned<OneOrMany>) -> Vec<TrafficDirection> {
    let span = d.span();
    let values = d.into_inner().0.into_iter();
    let values = values.map(|v| Spanned::new(span.clone(), v)).collect();
    list(
        cx,
        key,
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
}

/// A match must constrain something: not empty, and not only catch-all keys.
fn constrains_something(
    cx: &mut Cx<'_>,
    key: &str,
    span: Range<usize>,
    compiled: &CompiledMatch,
) -> bool {
    let catch_alls = compiled.catch_alls();
    if catch_alls.is_empty() {
        cx.err(
            span,
            key,
            "empty match would match every flow: a rule must constrain something",
        );
        return false;
    }
    if catch_alls.iter().all(|c| *c) {
        cx.err(
            span,
            key,
            "matches every flow: each of its keys is a catch-all",
        );
        return false;
    }
    true
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
