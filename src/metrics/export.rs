//! The flow log's counters (`[export]`, PRODUCT.md §8 and §12): lines written and lines
//! dropped. Handed to the flow log's writer thread as [`ExportCounters`], so that it counts
//! without holding the whole [`super::Metrics`].

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;

use super::common::saturating_add;

/// `hubble_noise_export_lines_total` and `hubble_noise_export_dropped_total`. Clones share the
/// same counters.
#[derive(Clone, Debug, Default)]
pub struct ExportCounters {
    lines: Counter,
    dropped: Counter,
}

impl ExportCounters {
    /// Registers both counters (at 0, whether the flow log is on or not).
    pub(super) fn register(r: &mut Registry) -> Self {
        let c = Self::default();
        r.register(
            "export_lines",
            "Flow log lines written (handed to the file or standard output)",
            c.lines.clone(),
        );
        r.register(
            "export_dropped",
            "Flow log lines dropped: the writer's queue was full (a slow or stalled reader) or the write failed",
            c.dropped.clone(),
        );
        c
    }

    /// Counts `n` lines written.
    pub fn record_written(&self, n: u64) {
        saturating_add(self.lines.inner(), n);
    }

    /// Counts `n` lines dropped.
    pub fn record_dropped(&self, n: u64) {
        saturating_add(self.dropped.inner(), n);
    }

    /// Lines written so far.
    pub fn written(&self) -> u64 {
        self.lines.get()
    }

    /// Lines dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.get()
    }
}
