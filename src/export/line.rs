//! One line of the flow log: the fields of `replay --format jsonl` ([`Record`]) and the
//! namespace, workload and port fields a log store filters by. The names are public
//! interface (docs/LOKI.md lists them).

use serde::Serialize;

use crate::classify::{Classifier, Decision};
use crate::flow::FlowCtx;
use crate::record::Record;

/// One classified flow as the flow log writes it.
#[derive(Debug, Serialize)]
pub struct Line<'a> {
    /// `time`, `uuid`, `node`, `verdict`, `drop_reason`, `direction`, `class`, `reason`,
    /// `rule`, `attribution`, `source`, `destination`, `names` (and `flows` on an aggregated
    /// flow), exactly as `replay --format jsonl` prints them; never `explain`.
    #[serde(flatten)]
    pub record: Record<'a>,
    /// The source pod's namespace; empty for an IP or an entity.
    pub source_namespace: &'a str,
    /// The source pod's workload (its first `workloads[].name`); empty when unknown.
    pub source_workload: &'a str,
    /// The destination pod's namespace; empty for an IP or an entity.
    pub destination_namespace: &'a str,
    /// The destination pod's workload; empty when unknown.
    pub destination_workload: &'a str,
    /// The destination port (TCP, UDP, SCTP), or null.
    pub destination_port: Option<u16>,
}

impl<'a> Line<'a> {
    /// The line of one counted flow.
    pub fn new(ctx: &FlowCtx<'a>, d: &Decision<'a>, classifier: &'a Classifier) -> Self {
        Line {
            record: Record::new(ctx, d, classifier, false),
            source_namespace: ctx.source.namespace(),
            source_workload: ctx.source.workload(),
            destination_namespace: ctx.destination.namespace(),
            destination_workload: ctx.destination.workload(),
            destination_port: ctx.destination.port,
        }
    }

    /// The line as JSON followed by a newline.
    pub fn to_bytes(&self) -> serde_json::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(512);
        serde_json::to_writer(&mut out, self)?;
        out.push(b'\n');
        Ok(out)
    }
}
