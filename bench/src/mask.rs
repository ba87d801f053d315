//! The request's `field_mask`, applied as a Cilium node applies it before sending: only the
//! named Flow fields are copied into the flow that goes on the wire.
//!
//! Paths name top-level fields by their proto names (`IP`, `Type`, `source`, ...). A nested
//! path (`source.namespace`) keeps its whole top-level field: more than a node sends, never
//! less, which only makes the load generator's messages larger.

use hubble_noise::api::flow::Flow;

/// The flow with only the fields `paths` names; an empty mask keeps everything (as upstream).
pub fn apply(flow: &Flow, paths: &[String]) -> Flow {
    if paths.is_empty() {
        return flow.clone();
    }
    let mut out = Flow::default();
    for path in paths {
        let top = path.split('.').next().unwrap_or(path);
        copy_field(flow, &mut out, top);
    }
    out
}

fn copy_field(from: &Flow, to: &mut Flow, name: &str) {
    match name {
        "time" => to.time = from.time,
        "verdict" => to.verdict = from.verdict,
        "drop_reason" => to.drop_reason = from.drop_reason,
        "IP" => to.ip = from.ip.clone(),
        "l4" => to.l4 = from.l4,
        "source" => to.source = from.source.clone(),
        "destination" => to.destination = from.destination.clone(),
        "Type" => to.r#type = from.r#type,
        "node_name" => to.node_name = from.node_name.clone(),
        "source_names" => to.source_names = from.source_names.clone(),
        "destination_names" => to.destination_names = from.destination_names.clone(),
        "l7" => to.l7 = from.l7.clone(),
        "event_type" => to.event_type = from.event_type,
        "traffic_direction" => to.traffic_direction = from.traffic_direction,
        "policy_match_type" => to.policy_match_type = from.policy_match_type,
        "drop_reason_desc" => to.drop_reason_desc = from.drop_reason_desc,
        "is_reply" => to.is_reply = from.is_reply,
        "uuid" => to.uuid = from.uuid.clone(),
        "egress_allowed_by" => to.egress_allowed_by = from.egress_allowed_by.clone(),
        "ingress_allowed_by" => to.ingress_allowed_by = from.ingress_allowed_by.clone(),
        "egress_denied_by" => to.egress_denied_by = from.egress_denied_by.clone(),
        "ingress_denied_by" => to.ingress_denied_by = from.ingress_denied_by.clone(),
        "policy_log" => to.policy_log = from.policy_log.clone(),
        "aggregate" => to.aggregate = from.aggregate,
        "Summary" => to.summary = from.summary.clone(),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth;
    use hubble_noise::api::observer::get_flows_response::ResponseTypes;
    use hubble_noise::source::relay::FIELD_MASK;

    fn flow() -> Flow {
        match synth::flow(7, 10).response_types {
            Some(ResponseTypes::Flow(f)) => f,
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_daemons_mask_drops_the_summary_and_keeps_what_it_reads() {
        let f = flow();
        assert!(!f.summary.is_empty());
        let paths: Vec<String> = FIELD_MASK.iter().map(|p| (*p).to_string()).collect();
        let masked = apply(&f, &paths);
        assert!(masked.summary.is_empty());
        let mut expected = f.clone();
        expected.summary.clear();
        assert_eq!(masked, expected);
    }

    #[test]
    fn an_empty_mask_keeps_everything_and_nested_paths_keep_their_top_field() {
        let f = flow();
        assert_eq!(apply(&f, &[]), f);
        let m = apply(&f, &["source.namespace".to_string(), "uuid".to_string()]);
        assert_eq!(m.source, f.source);
        assert_eq!(m.uuid, f.uuid);
        assert_eq!(m.destination, None);
        assert_eq!(m.time, None);
    }
}
