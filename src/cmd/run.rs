//! `hubble-noise run`: the daemon (PRODUCT.md §2, §8, §9).
//!
//! One task per concern: the HTTP server, the source (relay stream or `--replay` recording),
//! the reloader (`POST /-/reload`, `SIGHUP`, changes of watched files), and ONE pipeline task
//! that owns the [`Pipeline`] and updates [`Metrics`]. Each is supervised
//! ([`crate::supervise`]): one that stops or panics ends the process with exit status 3.
//! The source hands responses over a bounded channel, so a slow pipeline slows the stream
//! down (the relay then reports lost events) instead of growing memory.

use std::future::Future;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::api::observer::GetFlowsResponse;
use crate::api::observer::get_flows_response::ResponseTypes;
use crate::classify::Classifier;
use crate::cli::RunArgs;
use crate::config::{Loaded, LogConfig, LogFormat};
use crate::health::{Heartbeat, PipelineHealth, beat_interval};
use crate::load;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::server::{AppState, ReloadRequest, serve};
use crate::source::{file, relay};
use crate::supervise::{EXIT_TASK_STOPPED, Supervisor, Task, TaskResult, TaskStopped};
use crate::watcher::{self, Targets};

/// Responses in flight between the source and the pipeline.
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

/// Sets up logging: text or JSON lines; `RUST_LOG` wins over `log.level`. A second call (tests)
/// is a no-op.
pub fn init_logging(cfg: &LogConfig) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match cfg.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => {
            // A pod's log is a file: colour escapes there make `kubectl logs` unreadable.
            use std::io::IsTerminal as _;
            let ansi = log_colour(
                std::io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR").as_deref(),
            );
            builder.with_ansi(ansi).try_init()
        }
    };
}

/// Whether the text log may use colour: only on a terminal, and never with `NO_COLOR` set to a
/// non-empty value (no-color.org).
pub fn log_colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// `hubble-noise run`: load the config (errors exit 2), bind, run until SIGTERM/SIGINT. A core
/// task that stops exits [`EXIT_TASK_STOPPED`] (3) after logging which and why.
pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let loaded = load::config(args.config.config.as_deref())?;
    init_logging(&loaded.config.log);
    let input = match &args.replay {
        Some(path) => Input::Replay {
            path: path.clone(),
            looped: args.r#loop,
            rate: args.rate,
        },
        None => Input::Relay,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let result = rt.block_on(async move {
        let addr = loaded.config.metrics.listen.clone();
        let listener = TcpListener::bind(&addr)
            .await
            .with_context(|| format!("metrics.listen {addr}"))?;
        // The bound address: with port 0 (tests) the configured one says nothing.
        match listener.local_addr() {
            Ok(bound) => tracing::info!(listen = %bound, "serving /metrics"),
            Err(_) => tracing::info!(listen = %addr, "serving /metrics"),
        }
        run_daemon(loaded, input, listener, shutdown_signal()).await
    });
    // A blocking thread (the replay reader) must not hold the exit.
    rt.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => match e.downcast_ref::<TaskStopped>() {
            // Already logged by run_daemon, with the task's name.
            Some(_) => Ok(ExitCode::from(EXIT_TASK_STOPPED)),
            None => Err(e),
        },
    }
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
/// pipeline, each supervised ([`Supervisor`]). Returns an error when the rules cannot be
/// loaded at start, and a [`TaskStopped`] when a task ended or panicked before `shutdown` (the
/// others are stopped first). A `--replay` without `--loop` ends its source when the file
/// ends; the daemon then keeps serving what it counted until `shutdown`.
pub async fn run_daemon(
    loaded: Loaded,
    input: Input,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let cfg = loaded.config.clone();
    let classifier = load::classifier(&loaded).map_err(|e| anyhow::anyhow!("{e}"))?;
    log_warnings(&classifier);
    let metrics = Arc::new(Metrics::new(&cfg.metrics, env!("CARGO_PKG_VERSION")));
    metrics.set_rules(classifier.rules.rules());
    metrics.record_reload(true);
    let (cls_tx, cls_rx) = watch::channel(Arc::new(classifier));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (reload_tx, reload_rx) = mpsc::channel::<ReloadRequest>(4);
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let heartbeat = Arc::new(Heartbeat::new());

    let mut state = AppState::new(metrics.clone(), Some(reload_tx));
    state.write_stall_timeout = cfg.metrics.client_stall_timeout;
    state.max_connections = cfg.metrics.max_connections;
    state.pipeline = Some(PipelineHealth {
        heartbeat: heartbeat.clone(),
        queue: tx.downgrade(),
        stall_timeout: cfg.metrics.pipeline_stall_timeout,
    });
    let state = Arc::new(state);
    state.ready.store(true, Ordering::Relaxed);

    let mut tasks = Supervisor::new();
    tasks.spawn(
        Task::Reloader,
        reloader(
            loaded.path.clone(),
            Targets::of(loaded.path.as_deref(), &cfg),
            metrics.clone(),
            cls_tx,
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
    tasks.spawn(
        Task::Pipeline,
        pipeline_task(
            Pipeline::new(&cfg),
            cls_rx,
            metrics.clone(),
            rx,
            heartbeat,
            beat_interval(cfg.metrics.pipeline_stall_timeout),
        ),
    );
    // Held until shutdown, so the pipeline's input closes only then: a source that ends (a
    // replay without --loop) leaves the pipeline idle, and a pipeline that ends before
    // shutdown is always a failure.
    let source_tx = tx.clone();
    match input {
        Input::Relay => {
            let m = metrics.clone();
            let stop = stopped(stop_rx.clone());
            let relay_cfg = cfg.relay.clone();
            let learn = cfg.dns.learn;
            tasks.spawn(Task::Relay, async move {
                relay::follow(relay_cfg, learn, m, source_tx, stop).await;
                Ok(())
            });
        }
        Input::Replay { path, looped, rate } => {
            let m = metrics.clone();
            let stop = stop_rx.clone();
            tasks.spawn_blocking(Task::Replay, move || {
                replay(&path, looped, rate, &m, &source_tx, &stop)
            });
        }
    }

    tokio::pin!(shutdown);
    let failure = loop {
        tokio::select! {
            () = &mut shutdown => break None,
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
                break Some(TaskStopped { task, reason });
            }
        }
    };
    let _ = stop_tx.send(true);
    drop(tx);
    let mut failure = failure;
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
    match failure {
        Some(f) => Err(f.into()),
        None => Ok(()),
    }
}

/// The one task that owns the pipeline. Beats `heartbeat` around every batch and every
/// `beat_every` while idle; ends only when its input closes (at shutdown).
async fn pipeline_task(
    mut pipeline: Pipeline,
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
            metrics.record_outcome(&outcome, &classifier);
        }
        metrics.set_dns_cache_entries(pipeline.names.len());
        for (reason, n) in pipeline.names.take_ignored() {
            metrics.record_dns_ignored(reason, n);
        }
    }
}

/// Re-reads the config and rules; on success swaps the classifier, else keeps the old one.
pub fn reload(
    path: Option<&Path>,
    metrics: &Metrics,
    cls_tx: &watch::Sender<Arc<Classifier>>,
) -> Result<(), String> {
    let result = load::config(path)
        .map_err(|e| e.to_string())
        .and_then(|l| load::classifier(&l).map_err(|e| e.to_string()));
    match result {
        Ok(c) => {
            log_warnings(&c);
            metrics.set_rules(c.rules.rules());
            cls_tx.send_replace(Arc::new(c));
            metrics.record_reload(true);
            tracing::info!("configuration reloaded");
            Ok(())
        }
        Err(e) => {
            metrics.record_reload(false);
            tracing::error!(error = %e, "reload failed, previous rules kept");
            Err(e)
        }
    }
}

fn log_warnings(c: &Classifier) {
    for w in c.policies.warnings() {
        tracing::warn!(warning = %w, "policy import");
    }
}

/// Starts watching `targets`; a watcher that cannot start is logged (reload still works by
/// SIGHUP and `POST /-/reload`).
fn start_watch(targets: Targets, tx: &mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
    match watcher::watch(targets, tx.clone()) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the config's files");
            None
        }
    }
}

/// Waits until no change has come for [`watcher::DEBOUNCE`].
async fn quiet(changes: &mut mpsc::Receiver<()>) {
    while let Ok(Some(())) = tokio::time::timeout(watcher::DEBOUNCE, changes.recv()).await {}
}

async fn reloader(
    path: Option<PathBuf>,
    targets: Targets,
    metrics: Arc<Metrics>,
    cls_tx: watch::Sender<Arc<Classifier>>,
    mut requests: mpsc::Receiver<ReloadRequest>,
    stop: impl Future<Output = ()>,
) -> TaskResult {
    tokio::pin!(stop);
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let (change_tx, mut changes) = mpsc::channel::<()>(1);
    let mut targets = targets;
    let mut _watcher = start_watch(targets.clone(), &change_tx);
    loop {
        #[cfg(unix)]
        let sighup = async {
            match hup.as_mut() {
                Some(h) => {
                    h.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let sighup = std::future::pending::<()>();
        tokio::select! {
            // Stop first: at shutdown the server drops its end of `requests` too, and that
            // must not read as a failure.
            biased;
            () = &mut stop => return Ok(()),
            req = requests.recv() => {
                let Some(answer) = req else {
                    return Err("its request channel closed".into());
                };
                let _ = answer.send(reload(path.as_deref(), &metrics, &cls_tx));
            }
            () = sighup => {
                tracing::info!("SIGHUP: reloading");
                let _ = reload(path.as_deref(), &metrics, &cls_tx);
            }
            Some(()) = changes.recv() => {
                quiet(&mut changes).await;
                tracing::info!("watched file changed: reloading");
                let _ = reload(path.as_deref(), &metrics, &cls_tx);
            }
        }
        // The config may now name other files.
        if let Ok(l) = load::config(path.as_deref()) {
            let new = Targets::of(l.path.as_deref(), &l.config);
            if new != targets {
                targets = new;
                _watcher = start_watch(targets.clone(), &change_tx);
            }
        }
    }
}

fn now_timestamp() -> pbjson_types::Timestamp {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    pbjson_types::Timestamp {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

/// Feeds a recording into the pipeline (blocking; run on a blocking thread). In `looped`
/// mode every pass after the first gets fresh uuids, and every flow the current time.
/// `Ok` when the recording is done (or on shutdown); `Err` when it cannot be opened or the
/// pipeline is gone.
pub(crate) fn replay(
    path: &Path,
    looped: bool,
    rate: Option<f64>,
    metrics: &Metrics,
    tx: &mpsc::Sender<GetFlowsResponse>,
    stop: &watch::Receiver<bool>,
) -> TaskResult {
    let start = Instant::now();
    let mut sent = 0u64;
    let rate = rate.filter(|r| r.is_finite() && *r > 0.0);
    for pass in 0u64.. {
        let mut reader = match file::open(path) {
            Ok(r) => r,
            Err(e) => return Err(format!("cannot open the recording {}: {e}", path.display())),
        };
        let mut flows_in_pass = 0u64;
        let mut stopped = false;
        let mut pipeline_gone = false;
        let read = file::for_each_response(path, &mut *reader, |line, item| {
            if *stop.borrow() {
                stopped = true;
                return ControlFlow::Break(());
            }
            let mut resp = match item {
                Ok(file::Line::Response(r)) => *r,
                Ok(file::Line::NotCounted) => return ControlFlow::Continue(()),
                Err(e) => {
                    metrics.record_decode_error(e.kind.as_str());
                    if pass == 0 {
                        tracing::warn!(file = %path.display(), line, error = %e.message, "line skipped");
                    }
                    return ControlFlow::Continue(());
                }
            };
            if let Some(ResponseTypes::Flow(f)) = resp.response_types.as_mut() {
                flows_in_pass += 1;
                if looped {
                    if pass > 0 && !f.uuid.is_empty() {
                        f.uuid = format!("{}-{pass}", f.uuid);
                    }
                    let now = now_timestamp();
                    f.time = Some(now);
                    resp.time = Some(now);
                }
                if let Some(r) = rate {
                    sent += 1;
                    let due = start + Duration::from_secs_f64(sent as f64 / r);
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                }
            }
            if tx.blocking_send(resp).is_err() {
                pipeline_gone = true;
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        });
        let lines = match read {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "read failed");
                metrics.record_decode_error("io");
                0
            }
        };
        if pipeline_gone {
            return Err("the pipeline is gone".into());
        }
        if stopped {
            return Ok(());
        }
        if !looped {
            tracing::info!(file = %path.display(), lines, "recording replayed");
            return Ok(());
        }
        if flows_in_pass == 0 {
            tracing::warn!(file = %path.display(), "no flows in the recording; not looping");
            return Ok(());
        }
    }
    Ok(())
}
