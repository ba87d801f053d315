//! The record of one counted flow, as `replay --format jsonl` and `observe -o jsonl` print it
//! (PRODUCT.md §7) and as the triage store keeps it.

use serde::Serialize;

use crate::classify::{Classifier, Decision};
use crate::flow::FlowCtx;
use crate::output;

/// One counted flow in `--format jsonl`.
#[derive(Debug, Serialize)]
pub struct Record<'a> {
    /// Flow time (RFC 3339).
    pub time: Option<String>,
    /// Flow uuid.
    pub uuid: &'a str,
    /// Node name.
    pub node: &'a str,
    /// Verdict name.
    pub verdict: &'static str,
    /// Drop reason name (the number, as a string, for one no Cilium release has), or null.
    pub drop_reason: Option<std::borrow::Cow<'static, str>>,
    /// `ingress`, `egress`, `unknown` (or a newer direction's name or number).
    pub direction: std::borrow::Cow<'static, str>,
    /// `expected` or `unexpected`.
    pub class: &'static str,
    /// The reason label.
    pub reason: &'a str,
    /// The rule that decided, or null.
    pub rule: Option<&'a str>,
    /// Which step decided.
    pub attribution: &'static str,
    /// `namespace/pod` or IP.
    pub source: String,
    /// `namespace/pod` or IP, with `:port/PROTO`.
    pub destination: String,
    /// Names known for the destination.
    pub names: Vec<String>,
    /// How many flows an aggregated flow (`aggregate`) stands for; absent on ordinary flows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flows: Option<u64>,
    /// With `--explain`: why, one line per fact.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<Vec<String>>,
}

impl<'a> Record<'a> {
    /// The record of one counted flow.
    pub fn new(
        ctx: &FlowCtx<'a>,
        d: &Decision<'a>,
        classifier: &'a Classifier,
        explain: bool,
    ) -> Self {
        let rule = d.rule.map(|r| r.name.as_str());
        Record {
            time: ctx.flow.time.as_ref().map(output::rfc3339),
            uuid: &ctx.flow.uuid,
            node: ctx.node,
            verdict: output::verdict_name(ctx.verdict),
            drop_reason: output::drop_reason_name(ctx.drop_reason),
            direction: crate::enums::direction_label(ctx.direction_value),
            class: d.class.as_str(),
            reason: d.reason,
            rule,
            attribution: d.attribution.as_str(),
            source: output::endpoint(&ctx.source),
            destination: output::destination(ctx),
            names: output::names(&ctx.destination),
            flows: ctx.flow.aggregate.is_some().then_some(ctx.flows),
            explain: explain.then(|| crate::classify::explain::explain(classifier, ctx, d)),
        }
    }
}
