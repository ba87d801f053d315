//! A recording as the daemon's source (`run --replay`, `observe --replay`): its responses sent
//! into the pipeline in order, once or forever with fresh uuids and times, at a rate or as
//! fast as the pipeline takes them.

use std::ops::ControlFlow;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch};

use super::file;
use crate::api::observer::GetFlowsResponse;
use crate::api::observer::get_flows_response::ResponseTypes;
use crate::metrics::Metrics;
use crate::supervise::TaskResult;

fn now_timestamp() -> pbjson_types::Timestamp {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    pbjson_types::Timestamp {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

/// Keeps a steady rate of flows per second (none: as fast as the pipeline takes them).
struct Pacer {
    start: Instant,
    sent: u64,
    rate: Option<f64>,
}

impl Pacer {
    /// Sleeps until the next flow is due.
    fn wait(&mut self) {
        let Some(r) = self.rate else { return };
        self.sent += 1;
        let Ok(offset) = Duration::try_from_secs_f64(self.sent as f64 / r) else {
            return;
        };
        let due = self.start + offset;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
    }
}

/// How one pass over the recording ended.
enum PassEnd {
    /// Read to its end: this many lines, this many flows.
    Done { lines: u64, flows: u64 },
    /// Shutdown was asked for.
    Stopped,
    /// The pipeline's end of the channel is closed.
    PipelineGone,
}

/// One pass: every response sent in order; pass `pass` > 0 of a loop gets fresh uuids, and
/// a loop gives every flow the current time.
fn one_pass(
    path: &Path,
    pass: u64,
    looped: bool,
    pacer: &mut Pacer,
    metrics: &Metrics,
    tx: &mpsc::Sender<GetFlowsResponse>,
    stop: &watch::Receiver<bool>,
) -> Result<PassEnd, String> {
    let mut reader = file::open(path)
        .map_err(|e| format!("cannot open the recording {}: {e}", path.display()))?;
    let mut flows = 0u64;
    let mut end = None;
    let read = file::for_each_response(path, &mut *reader, |line, item| {
        if *stop.borrow() {
            end = Some(PassEnd::Stopped);
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
            flows += 1;
            if looped {
                if pass > 0 && !f.uuid.is_empty() {
                    f.uuid = format!("{}-{pass}", f.uuid);
                }
                let now = now_timestamp();
                f.time = Some(now);
                resp.time = Some(now);
            }
            pacer.wait();
        }
        if tx.blocking_send(resp).is_err() {
            end = Some(PassEnd::PipelineGone);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    let lines = read.unwrap_or_else(|e| {
        tracing::error!(file = %path.display(), error = %e, "read failed");
        metrics.record_decode_error("io");
        0
    });
    Ok(end.unwrap_or(PassEnd::Done { lines, flows }))
}

/// Feeds a recording into the pipeline (blocking; run on a blocking thread). In `looped`
/// mode every pass after the first gets fresh uuids, and every flow the current time.
/// `Ok` when the recording is done (or on shutdown); `Err` when it cannot be opened or the
/// pipeline is gone.
pub fn replay(
    path: &Path,
    looped: bool,
    rate: Option<f64>,
    metrics: &Metrics,
    tx: &mpsc::Sender<GetFlowsResponse>,
    stop: &watch::Receiver<bool>,
) -> TaskResult {
    let mut pacer = Pacer {
        start: Instant::now(),
        sent: 0,
        rate: rate.filter(|r| r.is_finite() && *r > 0.0),
    };
    for pass in 0u64.. {
        match one_pass(path, pass, looped, &mut pacer, metrics, tx, stop)? {
            PassEnd::PipelineGone => return Err("the pipeline is gone".into()),
            PassEnd::Stopped => return Ok(()),
            PassEnd::Done { lines, .. } if !looped => {
                tracing::info!(file = %path.display(), lines, "recording replayed");
                return Ok(());
            }
            PassEnd::Done { flows: 0, .. } => {
                tracing::warn!(file = %path.display(), "no flows in the recording; not looping");
                return Ok(());
            }
            PassEnd::Done { .. } => {}
        }
    }
    Ok(())
}
