//! The flow log's writer: a thread of its own that takes lines from the bounded queue and
//! writes them to the [`Sink`], in batches (written as soon as the queue is empty, so a
//! reader tailing the log sees each flow at once). Lines written and lines lost count in the
//! export counters; a failed write is logged (at most every [`LOG_EVERY`]) and never ends the
//! writer.

use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use super::sink::{Sink, WriteFailed};
use crate::metrics::ExportCounters;
use crate::supervise::TaskResult;

/// The shortest time between two log lines about the same trouble.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// The writer: its queue's receiving end, the sink, the counters.
#[derive(Debug)]
pub struct Writer {
    pub(super) rx: Receiver<Vec<u8>>,
    pub(super) sink: Sink,
    pub(super) counters: ExportCounters,
}

impl Writer {
    /// Writes lines until every sender is gone (the pipeline stopped), then the rest of the
    /// queue. Blocks: run it on a thread of its own.
    pub fn run(mut self) -> TaskResult {
        #[cfg(debug_assertions)]
        let hook = crate::supervise::hooks::from_env();
        let mut errors = RateLimited::default();
        loop {
            let line = match self.rx.try_recv() {
                Ok(l) => l,
                Err(TryRecvError::Empty) => {
                    let r = self.sink.flush();
                    self.count(r, &mut errors);
                    match self.rx.recv() {
                        Ok(l) => l,
                        Err(_) => break,
                    }
                }
                Err(TryRecvError::Disconnected) => break,
            };
            #[cfg(debug_assertions)]
            crate::supervise::hooks::before_line(hook.as_ref());
            let r = self.sink.push(&line);
            self.count(r, &mut errors);
        }
        let r = self.sink.flush();
        self.count(r, &mut errors);
        Ok(())
    }

    fn count(&self, r: Result<u64, WriteFailed>, errors: &mut RateLimited) {
        match r {
            Ok(n) => self.counters.record_written(n),
            Err(e) => {
                self.counters.record_written(e.written);
                self.counters.record_dropped(e.lost);
                if let Some(suppressed) = errors.due() {
                    tracing::warn!(
                        doing = e.doing,
                        error = %e.error,
                        lines_lost = e.lost,
                        errors_not_logged = suppressed,
                        "flow log write failed; lines dropped (hubble_noise_export_dropped_total)"
                    );
                }
            }
        }
    }
}

/// A log line at most every [`LOG_EVERY`]; counts the occasions skipped in between.
#[derive(Debug, Default)]
pub(super) struct RateLimited {
    last: Option<Instant>,
    skipped: u64,
}

impl RateLimited {
    /// `Some(occasions skipped since the last line)` when a line is due, else `None`.
    pub(super) fn due(&mut self) -> Option<u64> {
        let now = Instant::now();
        match self.last {
            Some(t) if now.duration_since(t) < LOG_EVERY => {
                self.skipped = self.skipped.saturating_add(1);
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.skipped))
            }
        }
    }
}
