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
#[derive(Debug)]
pub enum Outcome<'a> {
    /// A DROPPED or AUDIT flow, classified: count it.
    Counted {
        /// The matcher's view of the flow.
        ctx: Box<FlowCtx<'a>>,
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
        this.add_learned_names(&mut ctx);
        let decision = classifier.classify(&ctx);
        Outcome::Counted {
            ctx: Box::new(ctx),
            decision,
        }
    }

    /// Adds the names each side's IP has for the pod on the other side.
    fn add_learned_names<'a>(&'a self, ctx: &mut FlowCtx<'a>) {
        if self.names.is_empty() {
            return;
        }
        if let (Some(ip), Some(src)) = (ctx.destination.ip, ctx.source.endpoint) {
            self.names.lookup(
                &src.namespace,
                &src.pod_name,
                ip,
                ctx.time,
                &mut ctx.destination.names,
            );
        }
        if let (Some(ip), Some(dst)) = (ctx.source.ip, ctx.destination.endpoint) {
            self.names.lookup(
                &dst.namespace,
                &dst.pod_name,
                ip,
                ctx.time,
                &mut ctx.source.names,
            );
        }
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
    let reason = match drop_reason_of(flow) {
        DropReason::Unknown => DropReason::try_from(et.sub_type).unwrap_or(DropReason::Unknown),
        r => r,
    };
    POLICY_DROP_REASONS.contains(&reason)
}
