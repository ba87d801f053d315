//! Triage: open the flow (PRODUCT.md §12).
//!
//! `run` keeps the recent unexpected flows, and per rule the last few expected ones, each with
//! its decision path, grouped as `suggest` groups them ([`store`], [`group`]); the HTTP server
//! shows them as JSON ([`api`], docs/API.md) and as a page ([`page`]), both read through the
//! filters of [`query`].
//!
//! The pipeline offers every counted flow ([`Triage::offer`]); building a record costs a few
//! allocations, so only unexpected flows are always kept, and a rule's expected flows only
//! while it has fewer than `per_rule` or once a second.

pub mod api;
pub mod group;
mod html;
pub mod page;
pub mod query;
pub mod store;

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use crate::classify::{Classifier, Decision};
use crate::config::TriageConfig;
use crate::flow::FlowCtx;
use crate::record::Record;
use crate::rules::Class;
use crate::suggest::group::key_of;
use store::{Store, StoredFlow};

/// The store behind a lock: the pipeline writes, the HTTP server reads.
#[derive(Debug)]
pub struct Triage {
    store: Mutex<Store>,
    started: Instant,
}

impl Triage {
    /// An empty store bounded by `cfg`.
    pub fn new(cfg: &TriageConfig) -> Self {
        Self {
            store: Mutex::new(Store::new(cfg)),
            started: Instant::now(),
        }
    }

    /// The store, for reading (a panic while it was held loses nothing it holds).
    pub fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Offers one counted flow: kept when unexpected, or when expected by a rule that wants
    /// another ([`Store::wants_expected`]).
    pub fn offer(&self, ctx: &FlowCtx<'_>, d: &Decision<'_>, classifier: &Classifier) {
        self.offer_at(ctx, d, classifier, self.started.elapsed().as_secs_f64());
    }

    /// [`Triage::offer`] at `now`, seconds on the store's clock (for tests).
    pub fn offer_at(&self, ctx: &FlowCtx<'_>, d: &Decision<'_>, classifier: &Classifier, now: f64) {
        match d.class {
            Class::Unexpected => {
                let explain = self.lock().explain_token(now);
                let flow = stored(ctx, d, classifier, explain);
                self.lock().add_unexpected(key_of(ctx), flow, ctx.flows);
            }
            Class::Expected => {
                let Some(rule) = d.rule else { return };
                let explain = {
                    let mut store = self.lock();
                    if !store.wants_expected(&rule.name, now) {
                        return;
                    }
                    store.explain_token(now)
                };
                let flow = stored(ctx, d, classifier, explain);
                self.lock().add_expected(&rule.name, flow, now);
            }
        }
    }
}

/// What a kept flow says when its decision path was not written (more than
/// [`store::EXPLAIN_PER_SECOND`] flows a second were kept).
pub const NOT_EXPLAINED: &str = "decision path not recorded: more flows a second were kept than \
paths are written (a flood); the other flows of its group, or `replay --explain` on a recording, \
show it";

/// The kept form of a counted flow, with its decision path when `explain`.
pub fn stored(
    ctx: &FlowCtx<'_>,
    d: &Decision<'_>,
    classifier: &Classifier,
    explain: bool,
) -> StoredFlow {
    let r = Record::new(ctx, d, classifier, explain);
    StoredFlow {
        uuid: r.uuid.to_string(),
        time: r.time,
        unix: ctx.time,
        node: r.node.to_string(),
        verdict: r.verdict,
        drop_reason: r.drop_reason.map(|c| c.into_owned()),
        direction: r.direction.into_owned(),
        class: r.class,
        reason: r.reason.to_string(),
        rule: r.rule.map(str::to_string),
        attribution: r.attribution,
        source: r.source,
        source_namespace: ctx.source.namespace().to_string(),
        source_workload: ctx.source.workload().to_string(),
        destination: r.destination,
        destination_namespace: ctx.destination.namespace().to_string(),
        destination_workload: ctx.destination.workload().to_string(),
        destination_port: ctx.destination.port,
        names: r.names,
        flows: ctx.flows,
        group: None,
        explain: r.explain.unwrap_or_else(|| vec![NOT_EXPLAINED.to_string()]),
    }
}

#[cfg(test)]
mod tests;
