//! The flow log (`[export]`, PRODUCT.md §12): classified flows of one class as JSON lines
//! ([`line::Line`]) to standard output or a file rotated by size ([`sink`]), for Vector,
//! Fluent Bit or Alloy to ship to Loki (docs/LOKI.md).
//!
//! It never slows counting: the pipeline serializes a line and `try_send`s it into a bounded
//! queue ([`Exporter::offer`]); a full queue (the reader stalled, the disk is slow) drops the
//! line and counts it in `hubble_noise_export_dropped_total`. A writer thread of its own
//! ([`writer::Writer`]) takes the queue and counts `hubble_noise_export_lines_total`; a write
//! that fails drops its lines (counted, logged at most every 10 s) and is never fatal. The
//! writer runs as a supervised core task: it ends only when the pipeline does, so if it ever
//! ends before shutdown (a panic: a bug) the daemon exits 3, loudly, like for any core task.

pub mod line;
pub mod sink;
pub mod writer;

use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};

use crate::classify::{Classifier, Decision};
use crate::config::{ExportClass, ExportConfig};
use crate::flow::FlowCtx;
use crate::metrics::ExportCounters;
use crate::pipeline::Outcome;
use crate::rules::Class;
use line::Line;
use sink::Sink;
use writer::{RateLimited, Writer};

/// The pipeline's end of the flow log: a no-op when `[export]` is off.
#[derive(Debug, Default)]
pub struct Exporter {
    on: Option<On>,
}

#[derive(Debug)]
struct On {
    tx: SyncSender<Vec<u8>>,
    class: ExportClass,
    counters: ExportCounters,
    full: RateLimited,
}

/// Why the flow log could not start.
#[derive(Debug, thiserror::Error)]
#[error("export.path {path}: the folder {folder} does not exist")]
pub struct StartError {
    /// The configured file.
    pub path: String,
    /// Its folder.
    pub folder: String,
}

impl Exporter {
    /// The flow log of `cfg`: `(exporter, Some(writer))` when it is enabled, the writer to be
    /// run on a thread of its own; a no-op exporter and `None` when not. The file's folder
    /// must exist (the file itself is created, or appended to, by the writer).
    pub fn start(
        cfg: &ExportConfig,
        counters: ExportCounters,
    ) -> Result<(Self, Option<Writer>), StartError> {
        if !cfg.enabled {
            return Ok((Self::default(), None));
        }
        let sink = if cfg.to_stdout() {
            Sink::stdout()
        } else {
            let folder = match cfg.path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => std::path::PathBuf::from("."),
            };
            if !folder.is_dir() {
                return Err(StartError {
                    path: cfg.path.display().to_string(),
                    folder: folder.display().to_string(),
                });
            }
            Sink::file(&cfg.path, cfg.max_size, cfg.max_files)
        };
        let (tx, rx) = sync_channel(cfg.queue);
        let on = On {
            tx,
            class: cfg.class,
            counters: counters.clone(),
            full: RateLimited::default(),
        };
        let writer = Writer { rx, sink, counters };
        Ok((Self { on: Some(on) }, Some(writer)))
    }

    /// Offers what the pipeline made of a response: a counted flow of the chosen class
    /// becomes a line in the queue, or, when the queue is full, a dropped line. Never blocks.
    pub fn offer(&mut self, outcome: &Outcome<'_>, classifier: &Classifier) {
        if let (Some(on), Outcome::Counted { ctx, decision }) = (self.on.as_mut(), outcome) {
            on.offer(ctx, decision, classifier);
        }
    }
}

impl On {
    fn offer(&mut self, ctx: &FlowCtx<'_>, d: &Decision<'_>, classifier: &Classifier) {
        let wanted = match self.class {
            ExportClass::All => true,
            ExportClass::Unexpected => d.class == Class::Unexpected,
            ExportClass::Expected => d.class == Class::Expected,
        };
        if !wanted {
            return;
        }
        let Ok(bytes) = Line::new(ctx, d, classifier).to_bytes() else {
            self.counters.record_dropped(1);
            return;
        };
        match self.tx.try_send(bytes) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.counters.record_dropped(1);
                if let Some(skipped) = self.full.due() {
                    tracing::warn!(
                        lines_dropped_not_logged = skipped,
                        "flow log queue full (the reader is slow or stalled); dropping lines"
                    );
                }
            }
            // The writer is gone: the supervisor is ending the daemon.
            Err(TrySendError::Disconnected(_)) => self.counters.record_dropped(1),
        }
    }
}
