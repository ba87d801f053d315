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
use crate::pipeline::Pipeline;
use crate::supervise::TaskResult;

/// The one task that owns the pipeline. Beats `heartbeat` around every batch and every
/// `beat_every` while idle; ends only when its input closes (at shutdown). Counted flows are
/// offered to the flow log (`export`).
pub(super) async fn pipeline_task(
    mut pipeline: Pipeline,
    mut export: Exporter,
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
    loop {
        heartbeat.beat();
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
            export.offer(&outcome, &classifier);
        }
        metrics.set_dns_cache_entries(pipeline.names.len());
        for (reason, n) in pipeline.names.take_ignored() {
            metrics.record_dns_ignored(reason, n);
        }
    }
}
