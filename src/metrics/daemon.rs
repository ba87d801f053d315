//! The daemon's own state: the result of the last configuration (re)load, HTTP clients dropped
//! for not reading their response, and the build.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::common::{FGauge, Labels, labels, now_seconds};

/// Reloads, stalled HTTP clients and `hubble_noise_build_info`.
pub(super) struct DaemonMetrics {
    reload_ok: Gauge,
    reload_ok_time: FGauge,
    http_stalled: Counter,
}

impl DaemonMetrics {
    /// Registers the daemon's metrics; `version` labels `hubble_noise_build_info`.
    pub(super) fn register(r: &mut Registry, version: &str) -> Self {
        let reload_ok = Gauge::default();
        r.register(
            "config_last_reload_successful",
            "1 when the last configuration (re)load succeeded",
            reload_ok.clone(),
        );
        let reload_ok_time = FGauge::default();
        r.register(
            "config_last_reload_success_timestamp_seconds",
            "Time of the last successful configuration (re)load",
            reload_ok_time.clone(),
        );
        let http_stalled = Counter::default();
        r.register(
            "http_clients_stalled",
            "HTTP connections closed because the client stopped reading its response",
            http_stalled.clone(),
        );
        let build_info = Family::<Labels, Gauge>::default();
        r.register(
            "build_info",
            "Always 1, labelled with the version",
            build_info.clone(),
        );
        build_info
            .get_or_create(&labels(&[("version", version)]))
            .set(1);
        Self {
            reload_ok,
            reload_ok_time,
            http_stalled,
        }
    }

    /// Counts an HTTP connection closed because its client stopped reading.
    pub(super) fn record_http_client_stalled(&self) {
        self.http_stalled.inc();
    }

    /// Records the result of a configuration (re)load.
    pub(super) fn record_reload(&self, ok: bool) {
        self.reload_ok.set(i64::from(ok));
        if ok {
            self.reload_ok_time.set(now_seconds());
        }
    }
}
