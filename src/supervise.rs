//! Supervision of the daemon's long-lived tasks (PRODUCT.md §9: "never blind in silence").
//!
//! Every task `run` starts is spawned here under a [`Task`] name. A task that ends before
//! shutdown, with or without an error, or panics, is reported by [`Supervisor::next`] with its
//! name and why; `run_daemon` then logs it, stops the rest and the process exits with
//! [`EXIT_TASK_STOPPED`], so Kubernetes restarts it. A process that is up but no longer
//! counts is the one failure a noise filter must not have.
//!
//! Panics unwind (the release profile keeps `panic = "unwind"`), so a panic is caught by
//! tokio at the task boundary and reported here with the task's name; `panic = "abort"` would
//! also end the process, but without saying which task.

use std::collections::HashMap;
use std::future::Future;

use tokio::task::{Id, JoinError, JoinSet};

/// The exit status of `run` when a core task stopped (2 stays for configuration errors).
pub const EXIT_TASK_STOPPED: u8 = 3;

/// The daemon's long-lived tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Task {
    /// The HTTP server (`/metrics`, `/healthz`, `/readyz`, `/-/reload`).
    Server,
    /// The `--replay` recording reader. Without `--loop` it ends when the file does; that is
    /// the one task allowed to end before shutdown.
    Replay,
    /// The pipeline: de-duplicate, learn names, classify, count. With the relay it also
    /// follows the stream (reconnecting forever), taking each response as it is decoded.
    Pipeline,
    /// The reloader: `POST /-/reload`, `SIGHUP`, watched files.
    Reloader,
    /// The flow log's writer thread (`[export]`): it ends only after the pipeline.
    Export,
}

impl Task {
    /// The name in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Server => "http_server",
            Task::Replay => "replay",
            Task::Pipeline => "pipeline",
            Task::Reloader => "reloader",
            Task::Export => "flow_log_writer",
        }
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a task ended: `Ok` when it returned normally, `Err` with why otherwise.
pub type TaskResult = Result<(), String>;

/// A core task stopped: the daemon exits with [`EXIT_TASK_STOPPED`].
#[derive(Debug, thiserror::Error)]
#[error("task {task} stopped: {reason}")]
pub struct TaskStopped {
    /// Which task.
    pub task: Task,
    /// Why: its error, `"ended"`, or `"panicked: <message>"`.
    pub reason: String,
}

/// The message of a panic, or why a task was cancelled.
pub fn join_error_message(e: JoinError) -> String {
    if !e.is_panic() {
        return "cancelled".into();
    }
    let payload = e.into_panic();
    let msg = if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_owned()
    };
    format!("panicked: {msg}")
}

/// A set of named tasks.
#[derive(Debug, Default)]
pub struct Supervisor {
    tasks: JoinSet<TaskResult>,
    names: HashMap<Id, Task>,
}

impl Supervisor {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Spawns `fut` as `task`.
    pub fn spawn<F>(&mut self, task: Task, fut: F)
    where
        F: Future<Output = TaskResult> + Send + 'static,
    {
        let h = self.tasks.spawn(fut);
        self.names.insert(h.id(), task);
    }

    /// Runs `f` on a blocking thread as `task`.
    pub fn spawn_blocking<F>(&mut self, task: Task, f: F)
    where
        F: FnOnce() -> TaskResult + Send + 'static,
    {
        let h = self.tasks.spawn_blocking(f);
        self.names.insert(h.id(), task);
    }

    /// The next task to end and how; `None` when none is left. Cancel safe.
    pub async fn next(&mut self) -> Option<(Task, TaskResult)> {
        let joined = self.tasks.join_next_with_id().await?;
        let (id, result) = match joined {
            Ok((id, r)) => (id, r),
            Err(e) => (e.id(), Err(join_error_message(e))),
        };
        // Every id was recorded at spawn; the fallback only keeps a report from being lost.
        let task = self.names.remove(&id).unwrap_or(Task::Pipeline);
        Some((task, result))
    }

    /// Whether no task is left.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Cancels every task left.
    pub fn abort_all(&mut self) {
        self.tasks.abort_all();
    }
}

/// Test-only faults, compiled into debug builds only (release builds, which are what ships,
/// have no such switch), set with the environment variable [`hooks::ENV`]:
///
/// - `panic-pipeline`: the pipeline task panics on its first batch;
/// - `stall-pipeline-while=PATH`: every batch waits while `PATH` exists (a stuck pipeline
///   with its input queued; with the relay the step blocks its thread, as a step stuck on
///   the CPU would; remove the file and it goes on);
/// - `panic-flow-log-writer`: the flow log's writer thread (`[export]`) panics on its first
///   line.
#[cfg(debug_assertions)]
pub mod hooks {
    use std::path::PathBuf;
    use std::time::Duration;

    /// The variable that selects a hook.
    pub const ENV: &str = "HUBBLE_NOISE_TEST_HOOK";

    /// A fault to inject.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Hook {
        /// Panic in the pipeline task.
        PanicPipeline,
        /// Block the pipeline while the file exists.
        StallPipelineWhile(PathBuf),
        /// Panic in the flow log's writer.
        PanicFlowLogWriter,
    }

    /// The hook the environment asks for; an unknown value is ignored with a warning.
    pub fn from_env() -> Option<Hook> {
        let v = std::env::var(ENV).ok()?;
        let hook = if v == "panic-pipeline" {
            Hook::PanicPipeline
        } else if v == "panic-flow-log-writer" {
            Hook::PanicFlowLogWriter
        } else if let Some(p) = v.strip_prefix("stall-pipeline-while=") {
            Hook::StallPipelineWhile(PathBuf::from(p))
        } else {
            tracing::warn!(value = %v, "unknown {ENV}, ignored");
            return None;
        };
        tracing::warn!(hook = ?hook, "TEST HOOK ACTIVE (debug build)");
        Some(hook)
    }

    /// Runs the hook at the start of a batch of a recording's pipeline task: the stall waits
    /// without holding the thread, so `/healthz` can say how much is queued.
    pub async fn before_batch(hook: Option<&Hook>) {
        match hook {
            Some(Hook::StallPipelineWhile(p)) => {
                while p.exists() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            other => before_batch_blocking(other),
        }
    }

    /// Runs the hook at the start of a batch the relay follower's own task takes: the stall
    /// blocks the thread, since that task also beats the heartbeat while it waits.
    pub fn before_batch_blocking(hook: Option<&Hook>) {
        match hook {
            None | Some(Hook::PanicFlowLogWriter) => {}
            Some(Hook::PanicPipeline) => panic!("test hook: pipeline panic"),
            Some(Hook::StallPipelineWhile(p)) => {
                if p.exists() {
                    tracing::warn!(path = %p.display(), "test hook: pipeline stuck on its thread");
                }
                while p.exists() {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    /// Runs the hook before the flow log's writer writes a line.
    pub fn before_line(hook: Option<&Hook>) {
        if hook == Some(&Hook::PanicFlowLogWriter) {
            panic!("test hook: flow log writer panic");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_task_is_reported_with_its_name_and_message() {
        let mut s = Supervisor::new();
        s.spawn(Task::Reloader, std::future::pending());
        s.spawn(Task::Pipeline, async {
            let v: Vec<u8> = Vec::new();
            // Indexing past the end, as a bug would.
            let i = v.len() + 3;
            let x = v[i];
            Err(format!("unreachable: {x}"))
        });
        let (task, result) = s.next().await.expect("one ends");
        assert_eq!(task, Task::Pipeline);
        let why = result.expect_err("a panic is an error");
        assert!(why.starts_with("panicked: "), "{why}");
        assert!(why.contains("index out of bounds"), "{why}");
        s.abort_all();
        let (task, result) = s.next().await.expect("the aborted one");
        assert_eq!((task, result), (Task::Reloader, Err("cancelled".into())));
        assert!(s.is_empty());
    }

    #[tokio::test]
    async fn tasks_that_return_are_reported_by_name_with_their_error() {
        let mut s = Supervisor::new();
        s.spawn_blocking(Task::Replay, || Err("cannot open the recording".into()));
        let (task, result) = s.next().await.expect("ends");
        assert_eq!(task, Task::Replay);
        assert_eq!(result, Err("cannot open the recording".into()));
        s.spawn(Task::Server, async { Ok(()) });
        assert_eq!(s.next().await, Some((Task::Server, Ok(()))));
        assert_eq!(s.next().await, None);
    }

    #[test]
    fn the_error_names_the_task() {
        let e = TaskStopped {
            task: Task::Pipeline,
            reason: "panicked: boom".into(),
        };
        assert_eq!(e.to_string(), "task pipeline stopped: panicked: boom");
    }
}
