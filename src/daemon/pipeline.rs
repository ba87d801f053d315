//! The one task that owns the [`Pipeline`]: takes the source's responses in batches, counts
//! what each became, and beats the heartbeat behind `/healthz`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::api::observer::GetFlowsResponse;
use crate::classify::Classifier;
use crate::export::Exporter;
use crate::health::Heartbeat;
use crate::metrics::Metrics;
use crate::pipeline::{Outcome, Pipeline};
use crate::supervise::TaskResult;
use crate::triage::Triage;

/// The one task that owns the pipeline. Beats `heartbeat` around every batch and every
/// `beat_every` while idle; ends only when its input closes (at shutdown). Counted flows are
/// offered to the flow log (`export`).
pub(super) async fn pipeline_task(
    mut pipeline: Pipeline,
    mut sinks: Sinks,
    mut cls_rx: watch::Receiver<Arc<Classifier>>,
    metrics: Arc<Metrics>,
    mut rx: mpsc::Receiver<GetFlowsResponse>,
    heartbeat: Arc<Heartbeat>,
    beat_every: Duration,
) -> TaskResult {
    #[cfg(debug_assertions)]
    let hook = crate::supervise::hooks::from_env();
    let mut classifier = cls_rx.borrow_and_update().clone();
    let mut batch = Vec::with_capacity(256);
    let mut trimmed = tokio::time::Instant::now();
    loop {
        heartbeat.beat();
        if trimmed.elapsed() >= crate::memory::TRIM_EVERY {
            crate::memory::trim();
            trimmed = tokio::time::Instant::now();
        }
        // `recv_many` is cancel safe: a timeout loses nothing.
        match tokio::time::timeout(beat_every, rx.recv_many(&mut batch, 256)).await {
            Err(_) => continue,
            Ok(0) => return Ok(()),
            Ok(_) => {}
        }
        #[cfg(debug_assertions)]
        crate::supervise::hooks::before_batch(hook.as_ref()).await;
        if cls_rx.has_changed().unwrap_or(false) {
            classifier = cls_rx.borrow_and_update().clone();
        }
        for resp in batch.drain(..) {
            metrics.observe_response(&resp);
            let outcome = pipeline.process(&resp, &classifier);
            metrics.record_outcome(&outcome);
            sinks.offer(&outcome, &classifier);
        }
        sinks.after_batch(&metrics);
        metrics.set_dns_cache_entries(pipeline.names.len());
        for (reason, n) in pipeline.names.take_ignored() {
            metrics.record_dns_ignored(reason, n);
        }
    }
}

/// Where counted flows go besides the counters: the flow log and the triage store.
pub(super) struct Sinks {
    /// The flow log (`[export]`).
    pub(super) export: Exporter,
    /// The triage store, unless `triage.enabled = false`.
    pub(super) triage: Option<Arc<Triage>>,
}

impl Sinks {
    /// Offers what one response became.
    fn offer(&mut self, outcome: &Outcome<'_>, classifier: &Classifier) {
        self.export.offer(outcome, classifier);
        if let (Some(t), Outcome::Counted { ctx, decision }) = (&self.triage, outcome) {
            t.offer(ctx, decision, classifier);
        }
    }

    /// After a batch: the triage store's size into its gauge.
    fn after_batch(&self, metrics: &Metrics) {
        if let Some(t) = &self.triage {
            let (expected, unexpected) = t.lock().counts();
            metrics.set_triage_flows(expected, unexpected);
        }
    }
}
