//! The daemon (`run`, PRODUCT.md §2, §8, §9): one task per concern, each supervised.
//!
//! The HTTP server, the reloader ([`reload`]: `POST /-/reload`, `SIGHUP`, changes of watched
//! files), ONE pipeline task (`pipeline`) that owns the [`crate::pipeline::Pipeline`] and
//! updates the metrics, and, with `[export]` on, the flow log's writer thread
//! ([`crate::export`]). A task that stops or panics ends the process with exit status 3
//! ([`crate::supervise`]). With the relay the pipeline task follows the stream itself and
//! takes each response as it is decoded, so a slow pipeline reads the stream more slowly (the
//! relay then reports lost events) instead of growing memory; a `--replay` recording is read
//! by its own task (`replay`) and handed over a bounded channel.

mod pipeline;
mod reload;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::api::observer::GetFlowsResponse;
use crate::config::Loaded;
use crate::health::{Heartbeat, PipelineHealth, beat_interval};
use crate::load;
use crate::metrics::Metrics;
use crate::server::{AppState, ReloadRequest, serve};
use crate::source::recording;
use crate::supervise::{Supervisor, Task, TaskStopped};
use crate::watcher::Targets;

pub use reload::reload;

/// Responses in flight between a recording's reader and the pipeline.
pub const CHANNEL_CAPACITY: usize = 1024;
/// How long tasks get to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Where the daemon's responses come from.
#[derive(Clone, Debug)]
pub enum Input {
    /// The hubble-relay stream of `relay.address`.
    Relay,
    /// A recording (JSON lines), read once, or forever with fresh uuids and times.
    Replay {
        /// The file (`-` = stdin, `.gz` ok).
        path: PathBuf,
        /// Read it again and again.
        looped: bool,
        /// Flows per second; `None` = as fast as the pipeline takes them.
        rate: Option<f64>,
    },
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutting down");
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Runs the daemon on `listener` until `shutdown` completes: server, source, reloader and the
/// pipeline, each supervised ([`Supervisor`]). Returns an error when the rules or the web
/// config cannot be loaded at start, and a [`TaskStopped`] when a task ended or panicked
/// before `shutdown` (the others are stopped first). A `--replay` without `--loop` ends its
/// source when the file ends; the daemon then keeps serving what it counted until `shutdown`.
pub async fn run_daemon(
    loaded: Loaded,
    input: Input,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let cfg = loaded.config.clone();
    let classifier = load::classifier(&loaded).map_err(|e| anyhow::anyhow!("{e}"))?;
    reload::log_warnings(&classifier);
    let web = crate::web::WebConfig::load(cfg.metrics.web_config_file.as_deref())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let metrics = Arc::new(Metrics::new(&cfg.metrics, env!("CARGO_PKG_VERSION")));
    metrics.set_rules(classifier.rules.rules());
    metrics.record_reload(true);
    let (sinks, export_writer) = sinks(&cfg, &metrics)?;
    let (cls_tx, cls_rx) = watch::channel(Arc::new(classifier));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (reload_tx, reload_rx) = mpsc::channel::<ReloadRequest>(4);
    let heartbeat = Arc::new(Heartbeat::new());
    let triage = sinks.triage.clone();
    let step = pipeline::Step::new(
        crate::pipeline::Pipeline::new(&cfg),
        sinks,
        cls_rx,
        metrics.clone(),
        heartbeat.clone(),
    );
    // A recording's reader hands responses over a channel; the relay is followed by the
    // pipeline's own task.
    let queue = matches!(input, Input::Replay { .. }).then(|| mpsc::channel(CHANNEL_CAPACITY));
    let health = PipelineHealth {
        heartbeat,
        queue: queue.as_ref().map(|(tx, _)| tx.downgrade()),
        stall_timeout: cfg.metrics.pipeline_stall_timeout,
    };
    let state = Arc::new(app_state(&cfg, &metrics, reload_tx, web, health, triage));

    let mut tasks = Supervisor::new();
    tasks.spawn(
        Task::Reloader,
        reload::reloader(
            loaded.path.clone(),
            Targets::of(loaded.path.as_deref(), &cfg),
            metrics.clone(),
            cls_tx,
            state.web.clone(),
            reload_rx,
            stopped(stop_rx.clone()),
        ),
    );
    let server_stop = stopped(stop_rx.clone());
    tasks.spawn(Task::Server, async move {
        serve(listener, state, server_stop)
            .await
            .map_err(|e| e.to_string())
    });
    if let Some(w) = export_writer {
        tasks.spawn_blocking(Task::Export, move || w.run());
    }
    // The sender is held until shutdown, so the pipeline's input closes only then: a source
    // that ends (a replay without --loop) leaves the pipeline idle, and a pipeline that ends
    // before shutdown is always a failure.
    let tx = spawn_pipeline(&mut tasks, input, queue, step, &cfg, &metrics, &stop_rx);
    let failure = until_stopped(&mut tasks, shutdown).await;
    let _ = stop_tx.send(true);
    drop(tx);
    match stop_all(tasks, failure).await {
        Some(f) => Err(f.into()),
        None => Ok(()),
    }
}

/// A recording's responses, from its reader to the pipeline.
type Queue = (
    mpsc::Sender<GetFlowsResponse>,
    mpsc::Receiver<GetFlowsResponse>,
);

/// Spawns the pipeline on its input: with a recording, the reader and the pipeline on both
/// ends of `queue` (its sender is returned, to be held until shutdown); with the relay, the
/// pipeline's task follows the stream itself.
fn spawn_pipeline(
    tasks: &mut Supervisor,
    input: Input,
    queue: Option<Queue>,
    step: pipeline::Step,
    cfg: &crate::config::Config,
    metrics: &Arc<Metrics>,
    stop_rx: &watch::Receiver<bool>,
) -> Option<mpsc::Sender<GetFlowsResponse>> {
    let beat_every = beat_interval(cfg.metrics.pipeline_stall_timeout);
    match (input, queue) {
        (Input::Replay { path, looped, rate }, Some((tx, rx))) => {
            tasks.spawn(
                Task::Pipeline,
                pipeline::pipeline_task(step, rx, beat_every),
            );
            let (m, stop, sender) = (metrics.clone(), stop_rx.clone(), tx.clone());
            tasks.spawn_blocking(Task::Replay, move || {
                recording::replay(&path, looped, rate, &m, &sender, &stop)
            });
            Some(tx)
        }
        _ => {
            let stop = stopped(stop_rx.clone());
            let follow =
                pipeline::follow_relay(step, cfg.relay.clone(), cfg.dns.learn, beat_every, stop);
            tasks.spawn(Task::Pipeline, follow);
            None
        }
    }
}

/// The flow log (and its writer, when on) and the triage store (unless off).
fn sinks(
    cfg: &crate::config::Config,
    metrics: &Metrics,
) -> anyhow::Result<(pipeline::Sinks, Option<crate::export::writer::Writer>)> {
    let (export, writer) = crate::export::Exporter::start(&cfg.export, metrics.export_counters())?;
    let triage = cfg
        .triage
        .enabled
        .then(|| Arc::new(crate::triage::Triage::new(&cfg.triage)));
    Ok((pipeline::Sinks { export, triage }, writer))
}

/// What the HTTP server serves: the metrics, the reload channel, the web security in force,
/// the pipeline's health and the triage store; ready, since the configuration is loaded.
fn app_state(
    cfg: &crate::config::Config,
    metrics: &Arc<Metrics>,
    reload_tx: mpsc::Sender<ReloadRequest>,
    web: crate::web::WebConfig,
    health: PipelineHealth,
    triage: Option<Arc<crate::triage::Triage>>,
) -> AppState {
    let mut state = AppState::new(metrics.clone(), Some(reload_tx));
    state.write_stall_timeout = cfg.metrics.client_stall_timeout;
    state.max_connections = cfg.metrics.max_connections;
    state.web = Arc::new(crate::web::WebHandle::new(web));
    state.pipeline = Some(health);
    state.triage = triage;
    // Ready: the configuration is loaded.
    state.ready.store(true, Ordering::Relaxed);
    state
}

/// Runs until `shutdown`, or until a core task stops (a recording that is done is not a
/// failure): then that task and why.
async fn until_stopped(
    tasks: &mut Supervisor,
    shutdown: impl Future<Output = ()>,
) -> Option<TaskStopped> {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return None,
            Some((task, result)) = tasks.next() => {
                if task == Task::Replay && result.is_ok() {
                    tracing::info!("recording done; serving its counts until stopped");
                    continue;
                }
                let reason = result.err().unwrap_or_else(|| "ended".into());
                tracing::error!(
                    task = task.as_str(),
                    reason = %reason,
                    "core task stopped; exiting so that the daemon is restarted"
                );
                return Some(TaskStopped { task, reason });
            }
        }
    }
}

/// Waits up to [`SHUTDOWN_GRACE`] for the tasks to stop (then aborts them); the first failure,
/// before or while stopping.
async fn stop_all(mut tasks: Supervisor, mut failure: Option<TaskStopped>) -> Option<TaskStopped> {
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while let Some((task, result)) = tasks.next().await {
            if let Err(reason) = result {
                tracing::error!(task = task.as_str(), reason = %reason, "task failed while stopping");
                failure.get_or_insert(TaskStopped { task, reason });
            }
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!("tasks did not stop in time");
        tasks.abort_all();
    }
    failure
}
