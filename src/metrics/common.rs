//! What every metric group shares: label sets, float gauges, counters that stop at `u64::MAX`
//! instead of wrapping, label values cut to size, the wall clock.

use std::sync::atomic::AtomicU64;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::gauge::Gauge;

/// A label set: (name, value) pairs.
pub type Labels = Vec<(String, String)>;

/// The longest label value taken from a flow, in bytes; longer values are cut (at a character
/// boundary) so that one hostile flow cannot make a series, a scrape or Prometheus' index huge.
pub const MAX_LABEL_VALUE: usize = 128;

/// A float gauge (timestamps).
pub(super) type FGauge = Gauge<f64, AtomicU64>;

/// Cuts `v` to at most `max` bytes at a character boundary.
pub fn truncate_label(v: &str, max: usize) -> &str {
    if v.len() <= max {
        return v;
    }
    let mut end = max;
    while !v.is_char_boundary(end) {
        end -= 1;
    }
    &v[..end]
}

/// A label set of borrowed pairs, owned.
pub(super) fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Wall-clock Unix seconds.
pub fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Adds `n` to a counter's value, stopping at `u64::MAX` instead of wrapping round to a small
/// number (which Prometheus would read as a counter reset).
pub(super) fn saturating_add(v: &AtomicU64, n: u64) {
    use std::sync::atomic::Ordering::Relaxed;
    let _ = v.fetch_update(Relaxed, Relaxed, |cur| Some(cur.saturating_add(n)));
}
