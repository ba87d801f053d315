//! Every metric of PRODUCT.md §8: [`Metrics`], composed of one group per file, each
//! registering its own metrics (in the order the exposition lists them):
//!
//! - `flows`: `hubble_noise_flows_total`, the series cap and exemplars;
//! - `rules`: each rule's matches, last match and expiry, rules by state;
//! - `relay`: the relay connection, reconnects, node states, lost events, last flow time;
//! - `pipeline`: duplicates, decode errors, series overflow, DNS names, ambiguous names;
//! - `daemon`: configuration reloads, stalled HTTP clients, build info;
//! - `export`: the flow log's lines written and dropped ([`ExportCounters`]);
//! - `common`: label sets, saturating counters, the clock.
//!
//! Other code calls domain methods ([`Metrics::record_outcome`], [`Metrics::record_lost`],
//! [`Metrics::set_connected`], …) and never touches a metric directly.

mod common;
mod daemon;
mod export;
mod flows;
mod pipeline;
mod relay;
mod rules;

use prometheus_client::registry::Registry;

use crate::api::flow::LostEvent;
use crate::api::observer::GetFlowsResponse;
use crate::api::relay::NodeStatusEvent;
use crate::classify::Decision;
use crate::config::MetricsConfig;
use crate::dns::IgnoreReason;
use crate::flow::FlowCtx;
use crate::pipeline::Outcome;
use crate::rules::Rule;

pub use common::{Labels, MAX_LABEL_VALUE, now_seconds, truncate_label};
use daemon::DaemonMetrics;
pub use export::ExportCounters;
use flows::FlowSeries;
pub use flows::{MAX_EXEMPLAR_TIME, OVERFLOW};
pub use pipeline::DECODE_ERROR_KINDS;
use pipeline::PipelineMetrics;
use relay::RelayMetrics;
pub use relay::{MAX_LOST_SOURCES, MAX_NODES, ReconnectReason, lost_source_name};
use rules::RuleMetrics;

/// Every metric the daemon exports.
pub struct Metrics {
    registry: Registry,
    flows: FlowSeries,
    rules: RuleMetrics,
    relay: RelayMetrics,
    pipeline: PipelineMetrics,
    daemon: DaemonMetrics,
    export: ExportCounters,
    /// The size of the last rendering, to size the next one's buffer (growing a buffer of
    /// 10,000 series by doubling held the old and the new one at once).
    last_render: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("context_labels", &self.flows.context_labels)
            .field("max_series", &self.flows.max_series)
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// Creates and registers every metric. `version` goes into `hubble_noise_build_info`.
    pub fn new(cfg: &MetricsConfig, version: &str) -> Self {
        let mut r = Registry::with_prefix("hubble_noise");
        let flows = FlowSeries::register(&mut r, cfg);
        let rules = RuleMetrics::register(&mut r);
        let relay = RelayMetrics::register(&mut r);
        let pipeline = PipelineMetrics::register(&mut r);
        let daemon = DaemonMetrics::register(&mut r, version);
        let export = ExportCounters::register(&mut r);
        Self {
            registry: r,
            flows,
            rules,
            relay,
            pipeline,
            daemon,
            export,
            last_render: Default::default(),
        }
    }

    /// The flow log's counters, for its writer.
    pub fn export_counters(&self) -> ExportCounters {
        self.export.clone()
    }

    /// The registry, for encoding. Call [`Metrics::refresh`] first.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Updates values that depend on the wall clock (rules that expired since the last load).
    pub fn refresh(&self) {
        self.rules.refresh();
    }

    /// Makes every rule's metrics exist (at 0 for new rules). Re-callable on reload: counters
    /// of rules that remain keep their values; removed rules' series are dropped.
    pub fn set_rules(&self, rules: &[Rule]) {
        self.rules.set(rules);
    }

    /// Notes a response before it goes through the pipeline: the last flow time, and that the
    /// flow's node is connected.
    pub fn observe_response(&self, resp: &GetFlowsResponse) {
        self.relay.observe_response(resp);
    }

    /// Counts what the pipeline made of one response.
    pub fn record_outcome(&self, outcome: &Outcome<'_>) {
        match outcome {
            Outcome::Counted { ctx, decision } => self.record_flow(ctx, decision),
            Outcome::Duplicate => self.pipeline.record_duplicate(),
            Outcome::Lost(l) => self.record_lost(l),
            Outcome::NodeStatus(n) => self.record_node_status(n),
            Outcome::Twin | Outcome::NotCounted | Outcome::Empty => {}
        }
    }

    /// Counts one classified flow in `hubble_noise_flows_total` and its rule's metrics: as many
    /// flows as it stands for ([`FlowCtx::flows`]: an aggregated flow counts its counts).
    pub fn record_flow(&self, ctx: &FlowCtx<'_>, d: &Decision<'_>) {
        if d.ambiguous {
            self.pipeline.names_ambiguous.inc_by(ctx.flows);
        }
        self.flows.count(ctx, d, &self.pipeline.series_overflow);
        if let Some(rule) = d.rule {
            self.rules.record_matches(&rule.name, ctx.time, ctx.flows);
        }
    }

    /// The labels of the `hubble_noise_flows_total` series a flow is counted in while
    /// `metrics.max_series` is not reached: class, verdict, reason, direction and the
    /// configured context labels, each value at most [`MAX_LABEL_VALUE`] bytes.
    pub fn flow_labels(&self, ctx: &FlowCtx<'_>, d: &Decision<'_>) -> Labels {
        self.flows.labels(ctx, d)
    }

    /// Counts a flow decided by the rule `name` at `time` (the flow's time, else now).
    pub fn record_rule_match(&self, name: &str, time: Option<f64>) {
        self.record_rule_matches(name, time, 1);
    }

    /// Counts `flows` flows (an aggregated flow's count) decided by the rule `name` at `time`.
    pub fn record_rule_matches(&self, name: &str, time: Option<f64>, flows: u64) {
        self.rules.record_matches(name, time, flows);
    }

    /// The number of label sets of `hubble_noise_flows_total` (overflow sets included).
    pub fn flow_series(&self) -> usize {
        self.flows.len()
    }

    /// Counts events lost upstream.
    pub fn record_lost(&self, l: &LostEvent) {
        self.relay.record_lost(l);
    }

    /// Applies a relay node-status event to `hubble_noise_relay_nodes`.
    pub fn record_node_status(&self, n: &NodeStatusEvent) {
        self.relay.record_node_status(n);
    }

    /// Sets `hubble_noise_relay_connected`.
    pub fn set_connected(&self, connected: bool) {
        self.relay.set_connected(connected);
    }

    /// Counts a reconnect; `reason` is one of a bounded set ([`ReconnectReason::as_str`]:
    /// `unavailable`, `stream_ended`, `idle_timeout`, `connect_error`, `tls`, `other`).
    pub fn record_reconnect(&self, reason: &str) {
        self.relay.record_reconnect(reason);
    }

    /// Counts a message or line that could not be decoded; `kind` is bounded.
    pub fn record_decode_error(&self, kind: &str) {
        self.pipeline.record_decode_error(kind);
    }

    /// Counts DNS answers that were not learned (`hubble_noise_dns_answers_ignored_total`).
    pub fn record_dns_ignored(&self, reason: IgnoreReason, n: u64) {
        self.pipeline.record_dns_ignored(reason, n);
    }

    /// Sets `hubble_noise_dns_cache_entries`.
    pub fn set_dns_cache_entries(&self, n: usize) {
        self.pipeline.set_dns_cache_entries(n);
    }

    /// Sets `hubble_noise_triage_flows`: the flows the triage store holds, by class.
    pub fn set_triage_flows(&self, expected: usize, unexpected: usize) {
        self.pipeline.set_triage_flows(expected, unexpected);
    }

    /// Counts an HTTP connection closed because its client stopped reading.
    pub fn record_http_client_stalled(&self) {
        self.daemon.record_http_client_stalled();
    }

    /// Records the result of a configuration (re)load.
    pub fn record_reload(&self, ok: bool) {
        self.daemon.record_reload(ok);
    }

    /// Encodes every metric as OpenMetrics text (with exemplars).
    pub fn encode_openmetrics(&self) -> Result<String, std::fmt::Error> {
        self.refresh();
        let mut out = self.render_buffer();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        self.rendered(&out);
        Ok(out)
    }

    /// Encodes every metric in the classic Prometheus text format (0.0.4).
    pub fn encode_text(&self) -> Result<String, std::fmt::Error> {
        self.refresh();
        let mut out = self.render_buffer();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)?;
        self.rendered(&out);
        Ok(out)
    }

    /// A buffer for a rendering: the last one's size and a sixteenth more.
    fn render_buffer(&self) -> String {
        let last = self.last_render.load(std::sync::atomic::Ordering::Relaxed);
        String::with_capacity((last + last / 16).max(16 * 1024))
    }

    fn rendered(&self, out: &str) {
        self.last_render
            .store(out.len(), std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::observer::get_flows_response::ResponseTypes;
    use crate::api::relay::NodeState;

    #[test]
    fn every_metric_is_present_from_the_start() {
        let m = Metrics::new(&MetricsConfig::default(), "0.0.0-test");
        let text = m.encode_openmetrics().expect("encodes");
        for name in [
            "hubble_noise_relay_connected",
            "hubble_noise_build_info",
            "hubble_noise_rules",
            "hubble_noise_relay_nodes",
            "hubble_noise_duplicate_flows_total",
            "hubble_noise_series_overflow_total",
            "hubble_noise_export_lines_total",
            "hubble_noise_export_dropped_total",
        ] {
            assert!(text.contains(name), "{name} missing in\n{text}");
        }
        assert!(!text.contains("_total_total"));
    }

    #[test]
    fn node_states_are_bounded() {
        let m = Metrics::new(&MetricsConfig::default(), "0.0.0-test");
        let n = NodeStatusEvent {
            state_change: NodeState::NodeConnected as i32,
            node_names: (0..MAX_NODES + 500).map(|i| format!("node-{i}")).collect(),
            ..Default::default()
        };
        m.record_node_status(&n);
        let text = m.encode_text().expect("encodes");
        let line = format!("hubble_noise_relay_nodes{{state=\"connected\"}} {MAX_NODES}");
        assert!(text.contains(&line), "{text}");
    }

    /// Regression: after a node restart `hubble_noise_relay_nodes{state="error"}` stayed 1
    /// forever, since hubble-relay never says that a node is back.
    #[test]
    fn a_flow_from_a_node_in_error_makes_it_connected_again() {
        let m = Metrics::new(&MetricsConfig::default(), "0.0.0-test");
        let status = |state: NodeState, names: &[&str]| NodeStatusEvent {
            state_change: state as i32,
            node_names: names.iter().map(|n| n.to_string()).collect(),
            ..Default::default()
        };
        m.record_node_status(&status(NodeState::NodeConnected, &["c/a", "c/b", "c/c"]));
        m.record_node_status(&status(NodeState::NodeError, &["c/a"]));
        m.record_node_status(&status(NodeState::NodeUnavailable, &["c/b"]));
        let gauge = |m: &Metrics, state: &str| {
            let text = m.encode_text().expect("encodes");
            let prefix = format!("hubble_noise_relay_nodes{{state=\"{state}\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
                .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
        };
        assert_eq!(gauge(&m, "error"), "1");
        assert_eq!(gauge(&m, "unavailable"), "1");
        let flow_from = |flow_node: &str, resp_node: &str| GetFlowsResponse {
            node_name: resp_node.into(),
            response_types: Some(ResponseTypes::Flow(crate::api::flow::Flow {
                node_name: flow_node.into(),
                ..Default::default()
            })),
            ..Default::default()
        };
        // A flow from a node nobody reported is no news about the known ones.
        m.observe_response(&flow_from("c/zzz", ""));
        assert_eq!(gauge(&m, "connected"), "1");
        m.observe_response(&flow_from("c/a", "c/a"));
        assert_eq!(gauge(&m, "error"), "0");
        assert_eq!(gauge(&m, "connected"), "2");
        // A masked flow may carry the node only on the response.
        m.observe_response(&flow_from("", "c/b"));
        assert_eq!(gauge(&m, "unavailable"), "0");
        assert_eq!(gauge(&m, "connected"), "3");
        // The next failure is reported again.
        m.record_node_status(&status(NodeState::NodeError, &["c/c"]));
        assert_eq!(gauge(&m, "error"), "1");
    }

    #[test]
    fn label_values_are_cut_at_a_character_boundary() {
        assert_eq!(truncate_label("abc", 2), "ab");
        assert_eq!(truncate_label("aé", 2), "a");
        assert_eq!(truncate_label("é", 128), "é");
    }
}
