//! What the pipeline made of its input besides the counted flows: duplicates skipped, input
//! that could not be decoded (by kind), flows put under `__overflow__`, names learned from DNS
//! answers and answers ignored, flows an `fqdn` key missed on an ambiguous name.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::common::{Labels, labels};
use crate::dns::IgnoreReason;

/// The `kind` values of `hubble_noise_decode_errors_total`: a recording line that is not a
/// Hubble response (`json`) or too long (`line_too_long`), a read error (`io`), a relay message
/// that could not be decoded (`grpc`).
pub const DECODE_ERROR_KINDS: [&str; 4] = ["json", "line_too_long", "io", "grpc"];

/// The pipeline's own counters and gauges.
pub(super) struct PipelineMetrics {
    duplicates: Counter,
    decode_errors: Family<Labels, Counter>,
    /// `hubble_noise_series_overflow_total`, counted by the flow series' guard.
    pub(super) series_overflow: Counter,
    dns_cache_entries: Gauge,
    dns_ignored: Family<Labels, Counter>,
    /// `hubble_noise_names_ambiguous_total`.
    pub(super) names_ambiguous: Counter,
    triage_flows: Family<Labels, Gauge>,
}

impl PipelineMetrics {
    /// Registers the pipeline's metrics, each bounded label value at 0.
    pub(super) fn register(r: &mut Registry) -> Self {
        let duplicates = Counter::default();
        r.register(
            "duplicate_flows",
            "Flows received again (same node and uuid) and not counted",
            duplicates.clone(),
        );
        let decode_errors = Family::<Labels, Counter>::default();
        r.register(
            "decode_errors",
            "Messages or lines that could not be decoded, by kind",
            decode_errors.clone(),
        );
        for k in DECODE_ERROR_KINDS {
            let _ = decode_errors.get_or_create_owned(&labels(&[("kind", k)]));
        }
        let series_overflow = Counter::default();
        r.register(
            "series_overflow",
            "Flows counted under __overflow__ context labels because metrics.max_series was reached",
            series_overflow.clone(),
        );
        let dns_cache_entries = Gauge::default();
        r.register(
            "dns_cache_entries",
            "Names learned from DNS answers currently cached",
            dns_cache_entries.clone(),
        );
        let dns_ignored = Family::<Labels, Counter>::default();
        r.register(
            "dns_answers_ignored",
            "DNS answers not learned, by reason (untrusted_server: not among dns.servers)",
            dns_ignored.clone(),
        );
        for reason in IgnoreReason::ALL {
            let _ = dns_ignored.get_or_create_owned(&labels(&[("reason", reason.as_str())]));
        }
        let names_ambiguous = Counter::default();
        r.register(
            "names_ambiguous",
            "Flows an fqdn key would have matched on one of their names but did not, because it \
             did not cover every name behind the IP or on the flow (a shared IP, a CNAME target \
             alone)",
            names_ambiguous.clone(),
        );
        let triage_flows = Family::<Labels, Gauge>::default();
        r.register(
            "triage_flows",
            "Flows held by the triage store (page and API), by class",
            triage_flows.clone(),
        );
        Self {
            triage_flows,
            duplicates,
            decode_errors,
            series_overflow,
            dns_cache_entries,
            dns_ignored,
            names_ambiguous,
        }
    }

    /// Counts a flow received again.
    pub(super) fn record_duplicate(&self) {
        self.duplicates.inc();
    }

    /// Counts a message or line that could not be decoded.
    pub(super) fn record_decode_error(&self, kind: &str) {
        self.decode_errors
            .get_or_create(&labels(&[("kind", kind)]))
            .inc();
    }

    /// Counts DNS answers that were not learned.
    pub(super) fn record_dns_ignored(&self, reason: IgnoreReason, n: u64) {
        self.dns_ignored
            .get_or_create(&labels(&[("reason", reason.as_str())]))
            .inc_by(n);
    }

    /// Sets the number of names cached.
    pub(super) fn set_dns_cache_entries(&self, n: usize) {
        self.dns_cache_entries
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Sets the flows the triage store holds, by class. Registered with a value only when a
    /// store exists (`triage.enabled`).
    pub(super) fn set_triage_flows(&self, expected: usize, unexpected: usize) {
        for (class, n) in [("expected", expected), ("unexpected", unexpected)] {
            self.triage_flows
                .get_or_create(&labels(&[("class", class)]))
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
}
