//! The pipeline step and the two ways it is driven.
//!
//! [`Step`] owns the [`Pipeline`] and takes one response at a time: count what it became,
//! offer it to the flow log and the triage store. With the relay, the follower task runs the
//! step on each response as soon as it is decoded ([`follow_relay`]): no hand-off, and the
//! message is freed on the thread, and in the order, it was allocated in. With a recording,
//! the reader thread hands responses over a bounded channel ([`pipeline_task`]). Both beat
//! the heartbeat behind `/healthz`.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::api::observer::GetFlowsResponse;
use crate::classify::Classifier;
use crate::config::RelayConfig;
use crate::export::Exporter;
use crate::health::Heartbeat;
use crate::metrics::Metrics;
use crate::pipeline::{Outcome, Pipeline};
use crate::source::relay;
use crate::supervise::TaskResult;
use crate::triage::Triage;

/// Responses taken between two settlements (gauges, classifier swap, heartbeat) while input
/// never pauses.
const SETTLE_EVERY: u32 = 256;

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

/// The pipeline with everything a response touches on its way through.
pub(super) struct Step {
    pipeline: Pipeline,
    sinks: Sinks,
    cls_rx: watch::Receiver<Arc<Classifier>>,
    classifier: Arc<Classifier>,
    metrics: Arc<Metrics>,
    heartbeat: Arc<Heartbeat>,
    /// Responses processed since the last [`Step::settle`].
    unsettled: u32,
    trimmed: tokio::time::Instant,
    #[cfg(debug_assertions)]
    hook: Option<crate::supervise::hooks::Hook>,
}

impl Step {
    /// A step over `pipeline`, classifying with what `cls_rx` holds (swapped on reload).
    pub(super) fn new(
        pipeline: Pipeline,
        sinks: Sinks,
        mut cls_rx: watch::Receiver<Arc<Classifier>>,
        metrics: Arc<Metrics>,
        heartbeat: Arc<Heartbeat>,
    ) -> Self {
        let classifier = cls_rx.borrow_and_update().clone();
        Self {
            pipeline,
            sinks,
            cls_rx,
            classifier,
            metrics,
            heartbeat,
            unsettled: 0,
            trimmed: tokio::time::Instant::now(),
            #[cfg(debug_assertions)]
            hook: crate::supervise::hooks::from_env(),
        }
    }

    /// Takes one response through the pipeline and counts what it became.
    fn process(&mut self, resp: &GetFlowsResponse) {
        self.metrics.observe_response(resp);
        let outcome = self.pipeline.process(resp, &self.classifier);
        self.metrics.record_outcome(&outcome);
        self.sinks.offer(&outcome, &self.classifier);
        self.unsettled += 1;
    }

    /// At the start of a batch: the reloaded classifier, if there is one, so that every flow
    /// that arrives after a reload reports success is decided by the new rules.
    fn begin(&mut self) {
        if self.cls_rx.has_changed().unwrap_or(false) {
            self.classifier = self.cls_rx.borrow_and_update().clone();
        }
    }

    /// After a batch, or when input pauses: gauges, the name cache's ignored answers, memory
    /// back to the system now and then; beats the heartbeat.
    fn settle(&mut self) {
        self.unsettled = 0;
        self.heartbeat.beat();
        self.sinks.after_batch(&self.metrics);
        self.metrics
            .set_dns_cache_entries(self.pipeline.names.len());
        for (reason, n) in self.pipeline.names.take_ignored() {
            self.metrics.record_dns_ignored(reason, n);
        }
        if self.trimmed.elapsed() >= crate::memory::TRIM_EVERY {
            crate::memory::trim();
            self.trimmed = tokio::time::Instant::now();
        }
    }

    /// The test hooks of a debug build, at the start of a batch.
    async fn before_batch(&self) {
        #[cfg(debug_assertions)]
        crate::supervise::hooks::before_batch(self.hook.as_ref()).await;
    }
}

impl relay::Consumer for Step {
    async fn take(&mut self, resp: Box<GetFlowsResponse>) -> ControlFlow<()> {
        // Never waits: the relay's task beats the heartbeat only while this is not running.
        if self.unsettled == 0 {
            #[cfg(debug_assertions)]
            crate::supervise::hooks::before_batch_blocking(self.hook.as_ref());
            self.begin();
        }
        self.process(&resp);
        drop(resp);
        if self.unsettled >= SETTLE_EVERY {
            self.settle();
        }
        ControlFlow::Continue(())
    }

    fn paused(&mut self) {
        if self.unsettled > 0 {
            self.settle();
        }
    }
}

/// The pipeline fed by the relay: follows it (reconnecting forever) and runs the step on each
/// response in the same task, until `shutdown`. Beats `heartbeat` every `beat_every` while the
/// task is polled (the step itself never waits: a step that is stuck stops the beats).
pub(super) async fn follow_relay(
    mut step: Step,
    cfg: RelayConfig,
    dns_learn: bool,
    beat_every: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) -> TaskResult {
    let heartbeat = step.heartbeat.clone();
    let metrics = step.metrics.clone();
    let follow = relay::follow(cfg, dns_learn, metrics, &mut step, shutdown);
    tokio::pin!(follow);
    let mut beat = tokio::time::interval(beat_every);
    loop {
        tokio::select! {
            () = &mut follow => return Ok(()),
            _ = beat.tick() => heartbeat.beat(),
        }
    }
}

/// The pipeline fed by a channel (a recording's reader): takes responses in batches and beats
/// `heartbeat` around every batch and every `beat_every` while idle; ends only when its input
/// closes (at shutdown).
pub(super) async fn pipeline_task(
    mut step: Step,
    mut rx: mpsc::Receiver<GetFlowsResponse>,
    beat_every: Duration,
) -> TaskResult {
    let mut batch = Vec::with_capacity(SETTLE_EVERY as usize);
    loop {
        step.heartbeat.beat();
        // `recv_many` is cancel safe: a timeout loses nothing.
        match tokio::time::timeout(beat_every, rx.recv_many(&mut batch, SETTLE_EVERY as usize))
            .await
        {
            Err(_) => {
                step.settle();
                continue;
            }
            Ok(0) => return Ok(()),
            Ok(_) => {}
        }
        step.before_batch().await;
        step.begin();
        for resp in batch.drain(..) {
            step.process(&resp);
        }
        step.settle();
    }
}
