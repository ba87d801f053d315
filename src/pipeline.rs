//! The path every response takes, from `run` and `replay` alike (PRODUCT.md §2–§3):
//! de-duplicate → learn names → skip the drop-notification twin → classify.

use crate::api::flow::{DropReason, Flow, LostEvent, Verdict};
use crate::api::observer::GetFlowsResponse;
use crate::api::observer::get_flows_response::ResponseTypes;
use crate::api::relay::NodeStatusEvent;
use crate::classify::{Classifier, Decision};
use crate::config::Config;
use crate::dedup::Dedup;
use crate::dns::NameCache;
use crate::flow::{FlowCtx, drop_reason_of};

/// `event_type.type` of a drop notification.
pub const EVENT_DROP_NOTIFY: i32 = 1;
/// `event_type.type` of a policy-verdict event.
pub const EVENT_POLICY_VERDICT: i32 = 5;

/// Drop reasons whose drop notification has a policy-verdict twin.
pub const POLICY_DROP_REASONS: [DropReason; 3] = [
    DropReason::PolicyDenied,
    DropReason::PolicyDeny,
    DropReason::AuthRequired,
];

/// What became of one response.
///
/// Lives on the stack for one step; boxing the large variant would allocate once per flow.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Outcome<'a> {
    /// A DROPPED or AUDIT flow, classified: count it.
    Counted {
        /// The matcher's view of the flow.
        ctx: FlowCtx<'a>,
        /// The decision.
        decision: Decision<'a>,
    },
    /// The drop notification of a policy denial already counted by its policy verdict.
    Twin,
    /// Seen before (same node and uuid).
    Duplicate,
    /// Another verdict: not counted (DNS answers among them feed the name cache).
    NotCounted,
    /// Events lost upstream.
    Lost(&'a LostEvent),
    /// A relay node changed state.
    NodeStatus(&'a NodeStatusEvent),
    /// A response with nothing in it.
    Empty,
}

/// The stateful part of the path: the de-duplication window and the name cache.
#[derive(Debug)]
pub struct Pipeline {
    dedup: Dedup,
    count_policy_drop_notifications: bool,
    /// Names learned from DNS answers.
    pub names: NameCache,
}

impl Pipeline {
    /// A pipeline configured by `cfg`.
    pub fn new(cfg: &Config) -> Self {
        Self {
            dedup: Dedup::new(cfg.classify.dedup_window),
            count_policy_drop_notifications: cfg.classify.count_policy_drop_notifications,
            names: NameCache::new(&cfg.dns),
        }
    }

    /// Takes one response through the path.
    pub fn process<'a>(
        &'a mut self,
        resp: &'a GetFlowsResponse,
        classifier: &'a Classifier,
    ) -> Outcome<'a> {
        let flow = match resp.response_types.as_ref() {
            Some(ResponseTypes::Flow(f)) => f,
            Some(ResponseTypes::LostEvents(l)) => return Outcome::Lost(l),
            Some(ResponseTypes::NodeStatus(n)) => return Outcome::NodeStatus(n),
            None => return Outcome::Empty,
        };
        let node = if flow.node_name.is_empty() {
            resp.node_name.as_str()
        } else {
            flow.node_name.as_str()
        };
        if self.dedup.is_duplicate(node, &flow.uuid) {
            return Outcome::Duplicate;
        }
        self.names.learn(flow, resp.time.as_ref());
        if !is_counted_verdict(flow) {
            return Outcome::NotCounted;
        }
        if !self.count_policy_drop_notifications && is_policy_drop_twin(flow) {
            return Outcome::Twin;
        }
        let this: &'a Self = self;
        let mut ctx = FlowCtx::new(flow, &resp.node_name, resp.time.as_ref());
        this.names.annotate(&mut ctx.source, &mut ctx.destination);
        let decision = classifier.classify(&ctx);
        Outcome::Counted { ctx, decision }
    }
}

/// DROPPED and AUDIT are counted; every other verdict is not.
pub fn is_counted_verdict(flow: &Flow) -> bool {
    flow.verdict == Verdict::Dropped as i32 || flow.verdict == Verdict::Audit as i32
}

/// A drop notification (type 1) for a policy drop reason: its policy-verdict event (type 5)
/// reports the same packet.
pub fn is_policy_drop_twin(flow: &Flow) -> bool {
    let Some(et) = flow.event_type.as_ref() else {
        return false;
    };
    if et.r#type != EVENT_DROP_NOTIFY {
        return false;
    }
    // The reason is in drop_reason_desc / drop_reason, and in the event's sub_type.
    let reason = drop_reason_of(flow);
    let reason = if reason.is_zero() {
        crate::enums::Open::new(et.sub_type)
    } else {
        reason
    };
    POLICY_DROP_REASONS.iter().any(|r| *r == reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::flow::CiliumEventType;
    use crate::rules::Class;
    use crate::rules::glob::Glob;

    fn resp(uuid: &str, verdict: Verdict, event: i32, reason: DropReason) -> GetFlowsResponse {
        GetFlowsResponse {
            node_name: "c/n1".into(),
            time: None,
            response_types: Some(ResponseTypes::Flow(Flow {
                uuid: uuid.into(),
                verdict: verdict as i32,
                drop_reason_desc: reason as i32,
                event_type: Some(CiliumEventType {
                    r#type: event,
                    sub_type: if event == EVENT_DROP_NOTIFY {
                        reason as i32
                    } else {
                        0
                    },
                }),
                ..Flow::default()
            })),
        }
    }

    fn kind(o: &Outcome<'_>) -> &'static str {
        match o {
            Outcome::Counted { .. } => "counted",
            Outcome::Twin => "twin",
            Outcome::Duplicate => "duplicate",
            Outcome::NotCounted => "not-counted",
            Outcome::Lost(_) => "lost",
            Outcome::NodeStatus(_) => "node-status",
            Outcome::Empty => "empty",
        }
    }

    #[test]
    fn the_drop_notification_twin_of_a_policy_denial_is_skipped() {
        let c = Classifier::default();
        let mut p = Pipeline::new(&Config::default());
        let verdict = resp(
            "a",
            Verdict::Dropped,
            EVENT_POLICY_VERDICT,
            DropReason::PolicyDenied,
        );
        let notify = resp(
            "b",
            Verdict::Dropped,
            EVENT_DROP_NOTIFY,
            DropReason::PolicyDenied,
        );
        let deny = resp(
            "c",
            Verdict::Dropped,
            EVENT_DROP_NOTIFY,
            DropReason::PolicyDeny,
        );
        let auth = resp(
            "d",
            Verdict::Dropped,
            EVENT_DROP_NOTIFY,
            DropReason::AuthRequired,
        );
        let other = resp(
            "e",
            Verdict::Dropped,
            EVENT_DROP_NOTIFY,
            DropReason::CtMapInsertionFailed,
        );
        assert_eq!(kind(&p.process(&verdict, &c)), "counted");
        assert_eq!(kind(&p.process(&notify, &c)), "twin");
        assert_eq!(kind(&p.process(&deny, &c)), "twin");
        assert_eq!(kind(&p.process(&auth, &c)), "twin");
        assert_eq!(
            kind(&p.process(&other, &c)),
            "counted",
            "no policy-verdict twin"
        );
    }

    #[test]
    fn count_policy_drop_notifications_counts_both() {
        let c = Classifier::default();
        let mut cfg = Config::default();
        cfg.classify.count_policy_drop_notifications = true;
        let mut p = Pipeline::new(&cfg);
        let notify = resp(
            "b",
            Verdict::Dropped,
            EVENT_DROP_NOTIFY,
            DropReason::PolicyDenied,
        );
        assert_eq!(kind(&p.process(&notify, &c)), "counted");
    }

    #[test]
    fn a_flow_seen_twice_counts_once_and_other_verdicts_are_not_counted() {
        let c = Classifier::default();
        let mut p = Pipeline::new(&Config::default());
        let a = resp(
            "a",
            Verdict::Audit,
            EVENT_POLICY_VERDICT,
            DropReason::Unknown,
        );
        assert_eq!(kind(&p.process(&a, &c)), "counted");
        assert_eq!(kind(&p.process(&a, &c)), "duplicate");
        let fwd = resp("f", Verdict::Forwarded, 4, DropReason::Unknown);
        assert_eq!(kind(&p.process(&fwd, &c)), "not-counted");
        let no_uuid = resp(
            "",
            Verdict::Audit,
            EVENT_POLICY_VERDICT,
            DropReason::Unknown,
        );
        assert_eq!(kind(&p.process(&no_uuid, &c)), "counted");
        assert_eq!(
            kind(&p.process(&no_uuid, &c)),
            "counted",
            "no uuid: never a duplicate"
        );
    }

    #[test]
    fn policy_log_empty_strings_are_no_value() {
        let c = Classifier {
            expected_log_tags: vec![Glob::new("vendor-*").expect("glob")],
            ..Classifier::default()
        };
        let mut p = Pipeline::new(&Config::default());
        let mut r = resp(
            "a",
            Verdict::Dropped,
            EVENT_POLICY_VERDICT,
            DropReason::PolicyDeny,
        );
        let Some(ResponseTypes::Flow(f)) = r.response_types.as_mut() else {
            unreachable!()
        };
        f.policy_log = vec![String::new()];
        match p.process(&r, &c) {
            Outcome::Counted { decision, .. } => {
                assert_eq!(decision.class, Class::Unexpected);
                assert_eq!(decision.reason, "unmatched");
            }
            o => panic!("{}", kind(&o)),
        }
        let mut r2 = resp(
            "b",
            Verdict::Dropped,
            EVENT_POLICY_VERDICT,
            DropReason::PolicyDeny,
        );
        let Some(ResponseTypes::Flow(f)) = r2.response_types.as_mut() else {
            unreachable!()
        };
        f.policy_log = vec![String::new(), "other".into(), "vendor-telemetry".into()];
        match p.process(&r2, &c) {
            Outcome::Counted { decision, .. } => {
                assert_eq!(decision.class, Class::Expected);
                assert_eq!(
                    decision.reason, "vendor-telemetry",
                    "the flow's value, not the glob"
                );
                assert_eq!(decision.attribution.as_str(), "policy_log");
            }
            o => panic!("{}", kind(&o)),
        }
    }
}
