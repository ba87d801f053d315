//! `hubble-noise run`: load the config, bind the metrics address, run the daemon
//! ([`crate::daemon`]) until SIGTERM or SIGINT.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::cli::RunArgs;
use crate::daemon::{Input, run_daemon, shutdown_signal};
use crate::load;
use crate::logging::init_logging;
use crate::supervise::{EXIT_TASK_STOPPED, TaskStopped};

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
    crate::memory::one_arena();
    let rt = runtime_builder()
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

/// The daemon's runtime: one worker thread unless `TOKIO_WORKER_THREADS` says otherwise.
///
/// The relay stream's messages are allocated where they are decoded and freed where the
/// pipeline is done with them; on two workers those are two threads, and glibc's allocator then
/// contends on its arena locks for every message (futex wake-ups were a quarter of the daemon's
/// CPU). On one worker the daemon spent less than half the CPU per flow and kept up with more
/// flows per second (BENCHMARKS.md, "Sidecar cost"). Recordings are still decoded on threads
/// of their own.
pub fn runtime_builder() -> tokio::runtime::Builder {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        b.worker_threads(1);
    }
    b
}
