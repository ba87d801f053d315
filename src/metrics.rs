//! Every metric of PRODUCT.md §8, in one place, with the cardinality guard.
//!
//! Other code calls domain methods ([`Metrics::record_outcome`], [`Metrics::record_lost`],
//! [`Metrics::set_connected`], …) and never touches a metric directly. The hot path
//! ([`Metrics::record_outcome`]) looks a flow's label values up in a map of pre-resolved counter
//! handles, keyed by one reusable string: no allocation and one uncontended lock per flow once a
//! series exists.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::CounterWithExemplar;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::api::flow::{LostEvent, LostEventSource};
use crate::api::observer::GetFlowsResponse;
use crate::api::observer::get_flows_response::ResponseTypes;
use crate::api::relay::{NodeState, NodeStatusEvent};
use crate::classify::{Classifier, Decision};
use crate::config::MetricsConfig;
use crate::enums::{Open, direction_label};
use crate::flow::{FlowCtx, system_time, unix_seconds};
use crate::output::{drop_reason_label, verdict_name};
use crate::pipeline::Outcome;
use crate::rules::{Class, Rule};

/// A label set: (name, value) pairs.
pub type Labels = Vec<(String, String)>;

/// The longest label value taken from a flow, in bytes; longer values are cut (at a character
/// boundary) so that one hostile flow cannot make a series, a scrape or Prometheus' index huge.
pub const MAX_LABEL_VALUE: usize = 128;

/// The most nodes remembered for `hubble_noise_relay_nodes`; status events about further nodes
/// are ignored.
pub const MAX_NODES: usize = 10_000;

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

/// The value every context label gets once `metrics.max_series` is reached.
pub const OVERFLOW: &str = "__overflow__";

/// The `kind` values of `hubble_noise_decode_errors_total`: a recording line that is not a
/// Hubble response (`json`) or too long (`line_too_long`), a read error (`io`), a relay message
/// that could not be decoded (`grpc`).
pub const DECODE_ERROR_KINDS: [&str; 4] = ["json", "line_too_long", "io", "grpc"];

/// A float gauge (timestamps).
type FGauge = Gauge<f64, AtomicU64>;

/// The handles of one rule's metrics.
#[derive(Clone)]
struct RuleHandles {
    matches: Counter,
    last_match: FGauge,
}

/// The series of `hubble_noise_flows_total` created so far, and a reusable lookup key.
#[derive(Default)]
struct FlowSeries {
    /// Each series' counter and the flow time of its last exemplar.
    by_key: HashMap<String, (CounterWithExemplar<Labels>, f64), foldhash::fast::RandomState>,
    key: String,
    /// Series with real context values (overflow series excluded).
    regular: usize,
}

/// Every metric the daemon exports.
pub struct Metrics {
    registry: Registry,
    context_labels: Vec<String>,
    max_series: usize,
    exemplars: bool,
    flows: Family<Labels, CounterWithExemplar<Labels>>,
    series: Mutex<FlowSeries>,
    rule_matches: Family<Labels, Counter>,
    rule_last_match: Family<Labels, FGauge>,
    rule_expiry: Family<Labels, FGauge>,
    rule_handles: RwLock<HashMap<String, RuleHandles>>,
    rule_expiries: RwLock<Vec<f64>>,
    rules: Family<Labels, Gauge>,
    relay_connected: Gauge,
    relay_reconnects: Family<Labels, Counter>,
    relay_nodes: Family<Labels, Gauge>,
    node_states: Mutex<HashMap<String, NodeState>>,
    /// Known nodes that are not connected: while 0, a flow costs no lock.
    nodes_down: AtomicUsize,
    lost_events: Family<Labels, Counter>,
    /// Lost-event sources the schema lacks that have a series of their own.
    lost_sources: Mutex<std::collections::HashSet<i32>>,
    last_flow: FGauge,
    duplicates: Counter,
    decode_errors: Family<Labels, Counter>,
    series_overflow: Counter,
    dns_cache_entries: Gauge,
    dns_ignored: Family<Labels, Counter>,
    names_ambiguous: Counter,
    reload_ok: Gauge,
    reload_ok_time: FGauge,
    http_stalled: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("context_labels", &self.context_labels)
            .field("max_series", &self.max_series)
            .finish_non_exhaustive()
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
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

/// The label value of a lost-event source: the enum name in lower case, or the number for a
/// source the schema lacks (a newer Cilium).
pub fn lost_source_name(source: i32) -> String {
    Open::<LostEventSource>::new(source)
        .label()
        .to_ascii_lowercase()
}

/// The most lost-event sources the schema lacks that get a series of their own (labelled
/// with their number); events from further ones count under `source="other"`.
pub const MAX_LOST_SOURCES: usize = 16;

/// The latest exemplar time written (9999-12-31T23:59:59Z): a later flow time, which only a
/// broken or hostile sender writes, gets an exemplar without a time.
pub const MAX_EXEMPLAR_TIME: f64 = 253_402_300_799.0;

/// Adds `n` to a counter's value, stopping at `u64::MAX` instead of wrapping round to a small
/// number (which Prometheus would read as a counter reset).
fn saturating_add(v: &AtomicU64, n: u64) {
    use std::sync::atomic::Ordering::Relaxed;
    let _ = v.fetch_update(Relaxed, Relaxed, |cur| Some(cur.saturating_add(n)));
}

fn node_state_name(s: NodeState) -> Option<&'static str> {
    match s {
        NodeState::NodeConnected => Some("connected"),
        NodeState::NodeUnavailable => Some("unavailable"),
        NodeState::NodeGone => Some("gone"),
        NodeState::NodeError => Some("error"),
        NodeState::UnknownNodeState => None,
    }
}

/// Starts a series key with the four fixed label values.
fn push_key(key: &mut String, base: [&str; 4]) {
    key.clear();
    for v in base {
        push_key_value(key, v);
    }
}

/// Appends one label value to a series key, prefixed with its length: values come from the
/// wire and may hold any character, so no separator alone could keep two label sets apart
/// (`"\u{1f}"` then `""` and `""` then `"\u{1f}"` once made one key, and one series counted
/// the flows of both).
fn push_key_value(key: &mut String, v: &str) {
    // The length in decimal, without the formatting machinery (this runs per flow and label).
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = v.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    key.extend(digits[i..].iter().map(|d| char::from(*d)));
    key.push('\u{1f}');
    key.push_str(v);
}

/// The value of one context label for a counted flow, at most [`MAX_LABEL_VALUE`] bytes.
fn context_value<'a>(
    label: &str,
    ctx: &FlowCtx<'a>,
    d: &Decision<'_>,
) -> std::borrow::Cow<'a, str> {
    use std::borrow::Cow;
    match full_context_value(label, ctx, d) {
        Cow::Borrowed(v) => Cow::Borrowed(truncate_label(v, MAX_LABEL_VALUE)),
        Cow::Owned(v) if v.len() > MAX_LABEL_VALUE => {
            Cow::Owned(truncate_label(&v, MAX_LABEL_VALUE).to_owned())
        }
        owned => owned,
    }
}

fn full_context_value<'a>(
    label: &str,
    ctx: &FlowCtx<'a>,
    d: &Decision<'_>,
) -> std::borrow::Cow<'a, str> {
    use std::borrow::Cow;
    match label {
        "source_namespace" => Cow::Borrowed(ctx.source.namespace()),
        "source_workload" => Cow::Borrowed(ctx.source.workload()),
        "source_pod" => Cow::Borrowed(ctx.source.pod()),
        "destination_namespace" => Cow::Borrowed(ctx.destination.namespace()),
        "destination_workload" => Cow::Borrowed(ctx.destination.workload()),
        "destination_pod" => Cow::Borrowed(ctx.destination.pod()),
        "destination_port" => ctx
            .destination
            .port
            .map_or(Cow::Borrowed(""), |p| Cow::Owned(p.to_string())),
        "destination_name" => ctx
            .destination
            .names
            .first()
            .map_or(Cow::Borrowed(""), |n| {
                Cow::Owned(crate::names::display_name(n))
            }),
        "drop_reason" => drop_reason_label(ctx.drop_reason),
        "node" => Cow::Borrowed(ctx.node),
        "attribution" => Cow::Borrowed(d.attribution.as_str()),
        _ => Cow::Borrowed(""),
    }
}

impl Metrics {
    /// Creates and registers every metric. `version` goes into `hubble_noise_build_info`.
    pub fn new(cfg: &MetricsConfig, version: &str) -> Self {
        let mut r = Registry::with_prefix("hubble_noise");
        let flows = Family::<Labels, CounterWithExemplar<Labels>>::default();
        r.register(
            "flows",
            "DROPPED and AUDIT flows by class, verdict, reason, direction and context",
            flows.clone(),
        );
        let rule_matches = Family::<Labels, Counter>::default();
        r.register(
            "rule_matches",
            "Flows decided by each rule",
            rule_matches.clone(),
        );
        let rule_last_match = Family::<Labels, FGauge>::default();
        r.register(
            "rule_last_match_timestamp_seconds",
            "Time of the last flow decided by each rule",
            rule_last_match.clone(),
        );
        let rule_expiry = Family::<Labels, FGauge>::default();
        r.register(
            "rule_expiry_timestamp_seconds",
            "Expiry time of each rule that has one",
            rule_expiry.clone(),
        );
        let rules = Family::<Labels, Gauge>::default();
        r.register("rules", "Loaded rules by state", rules.clone());
        let relay_connected = Gauge::default();
        r.register(
            "relay_connected",
            "1 while the GetFlows stream to hubble-relay is open",
            relay_connected.clone(),
        );
        let relay_reconnects = Family::<Labels, Counter>::default();
        r.register(
            "relay_reconnects",
            "Reconnects to hubble-relay by reason",
            relay_reconnects.clone(),
        );
        let relay_nodes = Family::<Labels, Gauge>::default();
        r.register(
            "relay_nodes",
            "Nodes behind hubble-relay by last reported state",
            relay_nodes.clone(),
        );
        let lost_events = Family::<Labels, Counter>::default();
        r.register(
            "lost_events",
            "Events lost upstream, by source",
            lost_events.clone(),
        );
        let last_flow = FGauge::default();
        r.register(
            "last_flow_timestamp_seconds",
            "Time of the last flow received",
            last_flow.clone(),
        );
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
        for reason in crate::dns::IgnoreReason::ALL {
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
        for s in ["active", "expired"] {
            rules.get_or_create(&labels(&[("state", s)])).set(0);
        }
        for s in ["connected", "unavailable", "gone", "error"] {
            relay_nodes.get_or_create(&labels(&[("state", s)])).set(0);
        }
        // Bounded label values exist at 0 from the start, so rate() and alerts see the first
        // increase.
        for r in crate::source::relay::Reason::ALL {
            let _ = relay_reconnects.get_or_create_owned(&labels(&[("reason", r.as_str())]));
        }
        for s in [
            LostEventSource::UnknownLostEventSource,
            LostEventSource::PerfEventRingBuffer,
            LostEventSource::ObserverEventsQueue,
            LostEventSource::HubbleRingBuffer,
        ] {
            let _ = lost_events
                .get_or_create_owned(&labels(&[("source", &lost_source_name(s as i32))]));
        }
        for k in DECODE_ERROR_KINDS {
            let _ = decode_errors.get_or_create_owned(&labels(&[("kind", k)]));
        }
        Self {
            registry: r,
            context_labels: cfg.labels.clone(),
            max_series: cfg.max_series,
            exemplars: cfg.exemplars,
            flows,
            series: Mutex::new(FlowSeries::default()),
            rule_matches,
            rule_last_match,
            rule_expiry,
            rule_handles: RwLock::new(HashMap::new()),
            rule_expiries: RwLock::new(Vec::new()),
            rules,
            relay_connected,
            relay_reconnects,
            relay_nodes,
            node_states: Mutex::new(HashMap::new()),
            nodes_down: AtomicUsize::new(0),
            lost_events,
            lost_sources: Mutex::new(std::collections::HashSet::new()),
            last_flow,
            duplicates,
            decode_errors,
            series_overflow,
            dns_cache_entries,
            dns_ignored,
            names_ambiguous,
            reload_ok,
            reload_ok_time,
            http_stalled,
        }
    }

    /// The registry, for encoding. Call [`Metrics::refresh`] first.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Updates values that depend on the wall clock (rules that expired since the last load).
    pub fn refresh(&self) {
        let now = now_seconds();
        let expiries = self.rule_expiries.read().unwrap_or_else(|e| e.into_inner());
        let expired = expiries.iter().filter(|e| **e <= now).count();
        let total = self.rule_handles.read().map_or(0, |h| h.len());
        drop(expiries);
        self.set_rule_states(total, expired);
    }

    fn set_rule_states(&self, total: usize, expired: usize) {
        let active = i64::try_from(total.saturating_sub(expired)).unwrap_or(i64::MAX);
        let expired = i64::try_from(expired).unwrap_or(i64::MAX);
        self.rules
            .get_or_create(&labels(&[("state", "active")]))
            .set(active);
        self.rules
            .get_or_create(&labels(&[("state", "expired")]))
            .set(expired);
    }

    /// Makes every rule's metrics exist (at 0 for new rules). Re-callable on reload: counters
    /// of rules that remain keep their values; removed rules' series are dropped.
    pub fn set_rules(&self, rules: &[Rule]) {
        let mut handles = HashMap::with_capacity(rules.len());
        let mut expiries = Vec::new();
        self.rule_expiry.clear();
        for r in rules {
            let l = labels(&[("rule", &r.name)]);
            handles.insert(
                r.name.clone(),
                RuleHandles {
                    matches: self.rule_matches.get_or_create_owned(&l),
                    last_match: self.rule_last_match.get_or_create_owned(&l),
                },
            );
            if let Some(e) = r.expires {
                self.rule_expiry.get_or_create(&l).set(e);
                expiries.push(e);
            }
        }
        let old: Vec<String> = {
            let cur = self.rule_handles.read().unwrap_or_else(|e| e.into_inner());
            cur.keys()
                .filter(|k| !handles.contains_key(*k))
                .cloned()
                .collect()
        };
        for name in old {
            let l = labels(&[("rule", &name)]);
            self.rule_matches.remove(&l);
            self.rule_last_match.remove(&l);
        }
        *self.rule_handles.write().unwrap_or_else(|e| e.into_inner()) = handles;
        *self
            .rule_expiries
            .write()
            .unwrap_or_else(|e| e.into_inner()) = expiries;
        self.refresh();
    }

    /// Notes a response before it goes through the pipeline: the last flow time, and that the
    /// flow's node is connected.
    pub fn observe_response(&self, resp: &GetFlowsResponse) {
        if let Some(ResponseTypes::Flow(f)) = resp.response_types.as_ref() {
            if let Some(t) = f.time.as_ref().or(resp.time.as_ref()) {
                self.last_flow.set(unix_seconds(t));
            }
            if self.nodes_down.load(Ordering::Relaxed) > 0 {
                let node = if f.node_name.is_empty() {
                    &resp.node_name
                } else {
                    &f.node_name
                };
                self.flow_from_node(node);
            }
        }
    }

    /// A flow from a node is proof that it is connected: hubble-relay re-subscribes a node that
    /// comes back without any node_status event, so its NODE_ERROR would otherwise stay forever.
    fn flow_from_node(&self, node: &str) {
        let mut nodes = self.node_states.lock().unwrap_or_else(|e| e.into_inner());
        match nodes.get_mut(node) {
            Some(s) if *s != NodeState::NodeConnected => *s = NodeState::NodeConnected,
            _ => return,
        }
        self.publish_node_states(&nodes);
    }

    /// Counts what the pipeline made of one response.
    pub fn record_outcome(&self, outcome: &Outcome<'_>, classifier: &Classifier) {
        match outcome {
            Outcome::Counted { ctx, decision } => self.record_flow(ctx, decision, classifier),
            Outcome::Duplicate => {
                self.duplicates.inc();
            }
            Outcome::Lost(l) => self.record_lost(l),
            Outcome::NodeStatus(n) => self.record_node_status(n),
            Outcome::Twin | Outcome::NotCounted | Outcome::Empty => {}
        }
    }

    /// Counts one classified flow in `hubble_noise_flows_total` and its rule's metrics: as many
    /// flows as it stands for ([`FlowCtx::flows`]: an aggregated flow counts its counts).
    pub fn record_flow(&self, ctx: &FlowCtx<'_>, d: &Decision<'_>, classifier: &Classifier) {
        let class = d.class.as_str();
        let verdict = verdict_name(ctx.verdict);
        let direction = direction_label(ctx.direction_value);
        let direction = &*direction;
        let mut base = [class, verdict, d.reason, direction];
        let time = ctx.time.unwrap_or_else(now_seconds);
        let wants_exemplar = self.exemplars && d.class == Class::Unexpected;
        if d.ambiguous {
            self.names_ambiguous.inc_by(ctx.flows);
        }
        let (counter, refresh_exemplar) = {
            let mut s = self.series.lock().unwrap_or_else(|e| e.into_inner());
            let s = &mut *s;
            push_key(&mut s.key, base);
            for l in &self.context_labels {
                push_key_value(&mut s.key, &context_value(l, ctx, d));
            }
            let overflow = !s.by_key.contains_key(s.key.as_str()) && s.regular >= self.max_series;
            if overflow {
                self.series_overflow.inc();
                // A direction the schema lacks is a number a sender chose: past the cap it
                // would make new series without end, so it overflows too.
                if !matches!(direction, "ingress" | "egress" | "unknown") {
                    base[3] = OVERFLOW;
                }
                push_key(&mut s.key, base);
                // No label set of context values has this form: one value, without a length.
                s.key.push_str(OVERFLOW);
            }
            if let Some((c, last)) = s.by_key.get_mut(s.key.as_str()) {
                // The exemplar names the latest unexpected flow. Building its labels
                // allocates, so a busy series refreshes it at most once per second of flow
                // time; in between only the count moves.
                let since = time - *last;
                let refresh = wants_exemplar && (since >= 1.0 || since.is_nan());
                if refresh {
                    *last = time;
                }
                (c.clone(), refresh)
            } else {
                let l = if overflow {
                    let mut l = labels(&[
                        ("class", class),
                        ("verdict", verdict),
                        ("reason", d.reason),
                        ("direction", base[3]),
                    ]);
                    for name in &self.context_labels {
                        l.push((name.clone(), OVERFLOW.to_owned()));
                    }
                    l
                } else {
                    self.flow_labels(ctx, d)
                };
                let c = self.flows.get_or_create_owned(&l);
                if !overflow {
                    s.regular += 1;
                }
                s.by_key.insert(s.key.clone(), (c.clone(), time));
                (c, wants_exemplar)
            }
        };
        if refresh_exemplar {
            // OpenMetrics allows 128 characters for an exemplar's whole label set.
            let exemplar = labels(&[
                ("uuid", truncate_label(&ctx.flow.uuid, 64)),
                ("node", truncate_label(ctx.node, 48)),
            ]);
            // The flow's time comes from the wire: any i64 seconds. Only a time the platform
            // and OpenMetrics can carry becomes the exemplar's timestamp (checked conversion:
            // an overflow here once panicked a worker).
            let ts = ctx
                .time
                .filter(|t| *t <= MAX_EXEMPLAR_TIME)
                .and_then(system_time);
            let room = u64::MAX - counter.inner().load(std::sync::atomic::Ordering::Relaxed);
            if ctx.flows <= room {
                counter.inc_by(ctx.flows, Some(exemplar), ts);
            } else {
                saturating_add(&counter.inner(), ctx.flows);
            }
        } else {
            // Through the inner atomic, which leaves the last exemplar in place.
            saturating_add(&counter.inner(), ctx.flows);
        }
        if let Some(rule) = d.rule.and_then(|i| classifier.rules.rules().get(i)) {
            self.record_rule_matches(&rule.name, ctx.time, ctx.flows);
        }
    }

    /// The labels of the `hubble_noise_flows_total` series a flow is counted in while
    /// `metrics.max_series` is not reached: class, verdict, reason, direction and the
    /// configured context labels, each value at most [`MAX_LABEL_VALUE`] bytes.
    pub fn flow_labels(&self, ctx: &FlowCtx<'_>, d: &Decision<'_>) -> Labels {
        let direction = direction_label(ctx.direction_value);
        let mut l = labels(&[
            ("class", d.class.as_str()),
            ("verdict", verdict_name(ctx.verdict)),
            ("reason", d.reason),
            ("direction", &direction),
        ]);
        for name in &self.context_labels {
            l.push((name.clone(), context_value(name, ctx, d).into_owned()));
        }
        l
    }

    /// Counts a flow decided by the rule `name` at `time` (the flow's time, else now).
    pub fn record_rule_match(&self, name: &str, time: Option<f64>) {
        self.record_rule_matches(name, time, 1);
    }

    /// Counts `flows` flows (an aggregated flow's count) decided by the rule `name` at `time`.
    pub fn record_rule_matches(&self, name: &str, time: Option<f64>, flows: u64) {
        let handles = self.rule_handles.read().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = handles.get(name) {
            saturating_add(h.matches.inner(), flows);
            h.last_match.set(time.unwrap_or_else(now_seconds));
        }
    }

    /// The number of label sets of `hubble_noise_flows_total` (overflow sets included).
    pub fn flow_series(&self) -> usize {
        self.series
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .by_key
            .len()
    }

    /// Counts events lost upstream.
    pub fn record_lost(&self, l: &LostEvent) {
        let known = LostEventSource::try_from(l.source).is_ok();
        let source = {
            let mut other = self.lost_sources.lock().unwrap_or_else(|e| e.into_inner());
            if known || other.contains(&l.source) || other.len() < MAX_LOST_SOURCES {
                if !known {
                    other.insert(l.source);
                }
                lost_source_name(l.source)
            } else {
                "other".to_owned()
            }
        };
        let counter = self
            .lost_events
            .get_or_create_owned(&labels(&[("source", &source)]));
        saturating_add(counter.inner(), l.num_events_lost);
    }

    /// Applies a relay node-status event to `hubble_noise_relay_nodes`.
    pub fn record_node_status(&self, n: &NodeStatusEvent) {
        let state = NodeState::try_from(n.state_change).unwrap_or(NodeState::UnknownNodeState);
        if node_state_name(state).is_none() {
            return;
        }
        let mut nodes = self.node_states.lock().unwrap_or_else(|e| e.into_inner());
        for name in &n.node_names {
            if nodes.len() < MAX_NODES || nodes.contains_key(name) {
                nodes.insert(name.clone(), state);
            }
        }
        self.publish_node_states(&nodes);
    }

    /// Sets `hubble_noise_relay_nodes` from the node states.
    fn publish_node_states(&self, nodes: &HashMap<String, NodeState>) {
        let down = nodes
            .values()
            .filter(|v| **v != NodeState::NodeConnected)
            .count();
        self.nodes_down.store(down, Ordering::Relaxed);
        for s in [
            NodeState::NodeConnected,
            NodeState::NodeUnavailable,
            NodeState::NodeGone,
            NodeState::NodeError,
        ] {
            let count = nodes.values().filter(|v| **v == s).count();
            if let Some(name) = node_state_name(s) {
                self.relay_nodes
                    .get_or_create(&labels(&[("state", name)]))
                    .set(i64::try_from(count).unwrap_or(i64::MAX));
            }
        }
    }

    /// Sets `hubble_noise_relay_connected`.
    pub fn set_connected(&self, connected: bool) {
        self.relay_connected.set(i64::from(connected));
    }

    /// Counts a reconnect; `reason` is one of a bounded set (`unavailable`, `stream_ended`,
    /// `idle_timeout`, `connect_error`, `tls`, `other`).
    pub fn record_reconnect(&self, reason: &str) {
        self.relay_reconnects
            .get_or_create(&labels(&[("reason", reason)]))
            .inc();
    }

    /// Counts a message or line that could not be decoded; `kind` is bounded.
    pub fn record_decode_error(&self, kind: &str) {
        self.decode_errors
            .get_or_create(&labels(&[("kind", kind)]))
            .inc();
    }

    /// Counts DNS answers that were not learned (`hubble_noise_dns_answers_ignored_total`).
    pub fn record_dns_ignored(&self, reason: crate::dns::IgnoreReason, n: u64) {
        self.dns_ignored
            .get_or_create(&labels(&[("reason", reason.as_str())]))
            .inc_by(n);
    }

    /// Sets `hubble_noise_dns_cache_entries`.
    pub fn set_dns_cache_entries(&self, n: usize) {
        self.dns_cache_entries
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Counts an HTTP connection closed because its client stopped reading.
    pub fn record_http_client_stalled(&self) {
        self.http_stalled.inc();
    }

    /// Records the result of a configuration (re)load.
    pub fn record_reload(&self, ok: bool) {
        self.reload_ok.set(i64::from(ok));
        if ok {
            self.reload_ok_time.set(now_seconds());
        }
    }

    /// Encodes every metric as OpenMetrics text (with exemplars).
    pub fn encode_openmetrics(&self) -> Result<String, std::fmt::Error> {
        self.refresh();
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    /// Encodes every metric in the classic Prometheus text format (0.0.4).
    pub fn encode_text(&self) -> Result<String, std::fmt::Error> {
        self.refresh();
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
