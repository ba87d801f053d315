//! The `GetFlows` request: what the daemon asks the relay for.

use crate::api::flow::{EventTypeFilter, FlowFilter, Verdict};
use crate::api::observer::GetFlowsRequest;
use crate::config::RelayConfig;

/// `event_type.type` of an L7 record (DNS flows for name learning).
pub const EVENT_L7: i32 = 129;

/// The request: DROPPED and AUDIT flows, plus L7 DNS flows when names are learned, limited to
/// `relay.nodes`; `since` when resuming.
pub fn request(
    cfg: &RelayConfig,
    dns_learn: bool,
    since: Option<pbjson_types::Timestamp>,
) -> GetFlowsRequest {
    let mut whitelist = vec![FlowFilter {
        verdict: vec![Verdict::Dropped as i32, Verdict::Audit as i32],
        node_name: cfg.nodes.clone(),
        ..Default::default()
    }];
    if dns_learn {
        whitelist.push(FlowFilter {
            protocol: vec!["dns".into()],
            event_type: vec![EventTypeFilter {
                r#type: EVENT_L7,
                ..Default::default()
            }],
            node_name: cfg.nodes.clone(),
            ..Default::default()
        });
    }
    GetFlowsRequest {
        follow: true,
        whitelist,
        since,
        field_mask: cfg.field_mask.then(|| pbjson_types::FieldMask {
            paths: FIELD_MASK.iter().map(|p| (*p).to_string()).collect(),
        }),
        ..Default::default()
    }
}

/// The Flow fields hubble-noise reads (classification, de-duplication, names, output), sent as
/// the request's `field_mask` (`relay.field_mask`, default on): nodes filter, then copy only
/// these into the flows they send, so every hop carries and decodes less. `time`, `node_name`
/// and `uuid` are kept for the relay too: it builds each response's time and node from the
/// masked flow and sorts on them. Every path exists in Cilium 1.18's Flow (`policy_log` is the
/// newest); a node whose schema lacks one refuses the whole request (`relay.field_mask =
/// false` then).
pub const FIELD_MASK: [&str; 20] = [
    "time",
    "verdict",
    "drop_reason",
    "IP",
    "l4",
    "source",
    "destination",
    "Type",
    "node_name",
    "source_names",
    "destination_names",
    "l7",
    "event_type",
    "traffic_direction",
    "drop_reason_desc",
    "is_reply",
    "uuid",
    "egress_denied_by",
    "ingress_denied_by",
    "policy_log",
];
