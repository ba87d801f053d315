//! Why a flow was classified so (PRODUCT.md §7 `--explain`): the step that decided, the rule,
//! the values that matched, and for the default the nearest rule and why it did not match.

use super::{Attribution, Classifier, Decision};
use crate::flow::FlowCtx;

/// ` kind namespace/name (file:line)` of a policy, or "" when none.
fn policy(p: Option<(&crate::policy::Policy, &str)>) -> String {
    p.map_or_else(String::new, |(p, _)| {
        format!(
            " {} {} ({}:{})",
            p.kind,
            p.display_name(),
            p.file.display(),
            p.line
        )
    })
}

/// The explanation of one decision, one line per fact. Indented lines belong to the line above.
pub fn explain(c: &Classifier, ctx: &FlowCtx<'_>, d: &Decision<'_>) -> Vec<String> {
    let mut out = Vec::new();
    let tags: Vec<&str> = ctx
        .flow
        .policy_log
        .iter()
        .map(String::as_str)
        .filter(|t| !t.is_empty())
        .collect();
    match d.attribution {
        Attribution::PolicyLog => {
            let glob = c
                .expected_log_tags
                .iter()
                .find(|g| g.matches(d.reason))
                .map_or("", |g| g.as_str());
            out.push(format!(
                "step policy_log: policy_log {:?} is listed in expected_log_tags ({glob:?}) -> {}, reason {:?}",
                d.reason,
                d.class.as_str(),
                d.reason
            ));
        }
        Attribution::DeniedBy => out.push(format!(
            "step denied_by: the flow names its denying policy{}, whose log value {:?} is an expected tag -> {}",
            policy(c.policies.denied_by(ctx)),
            d.reason,
            d.class.as_str()
        )),
        Attribution::Policy => out.push(format!(
            "step policy: a deny rule of policy{} with log value {:?} (an expected tag) matches -> {}",
            policy(c.policies.first_match(ctx)),
            d.reason,
            d.class.as_str()
        )),
        Attribution::Rule => {
            if let Some(r) = d.rule {
                out.push(format!(
                    "step rule: rule {:?} ({}:{}) matched -> {}, reason {:?}",
                    r.name,
                    r.file.display(),
                    r.line,
                    d.class.as_str(),
                    d.reason
                ));
                if let Some(i) = c.rules.index_of(r) {
                    out.extend(c.rules.explain(i, ctx).iter().map(|k| format!("  {k}")));
                }
            }
        }
        Attribution::None => none(c, ctx, &tags, &mut out),
    }
    out
}

/// Why nothing decided: the flow's policy_log values, the denying policies it names, the
/// deny matchers, and the nearest rule with the keys that did not hold.
fn none(c: &Classifier, ctx: &FlowCtx<'_>, tags: &[&str], out: &mut Vec<String>) {
    out.push("step none: nothing decided -> unexpected, reason \"unmatched\"".into());
    out.push(if tags.is_empty() {
        "  policy_log: no value on the flow".into()
    } else {
        format!("  policy_log: {tags:?}, none listed in expected_log_tags")
    });
    let denied: Vec<String> = ctx
        .flow
        .egress_denied_by
        .iter()
        .chain(&ctx.flow.ingress_denied_by)
        .map(|p| format!("{}/{}", p.namespace, p.name))
        .collect();
    if !denied.is_empty() {
        out.push(format!(
            "  denied_by: {denied:?}, not imported or without an expected log value"
        ));
    }
    if c.policies.matcher_count() > 0 {
        out.push(format!(
            "  policy: none of {} deny rule(s) of expected-tagged policies matches",
            c.policies.matcher_count()
        ));
    }
    match c.rules.nearest(ctx) {
        Some((i, checks)) => {
            let r = &c.rules.rules()[i];
            let failed = checks.iter().filter(|k| !k.ok).count();
            out.push(format!(
                "  nearest rule {:?} ({}:{}): {failed} of {} keys do not hold",
                r.name,
                r.file.display(),
                r.line,
                checks.len()
            ));
            out.extend(checks.iter().map(|k| format!("    {k}")));
        }
        None => out.push("  no rules loaded".into()),
    }
}
