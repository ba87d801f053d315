//! The path every flow takes in the daemon and in `replay`, for the harnesses: pipeline
//! (de-duplication, DNS learning, twin skip) → classification → metrics with exemplars →
//! `/metrics` in both formats, plus what `replay --format jsonl --explain` writes. Each harness
//! input gets a fresh path, so that a finding replays from its input alone; the inputs of one
//! run share nothing but the compiled classifier.
//!
//! Besides "no panic", the path checks what must hold whatever the input (each a plain
//! `assert!`, so that a fuzzer reports it like a panic):
//!
//! - the compiled rule index agrees with the reference matcher, and `--explain` agrees with
//!   both;
//! - every counted flow is in the `hubble_noise_flows_total` series of its own labels (or the
//!   overflow series past `metrics.max_series`), and no series holds anything else;
//! - every counted flow is in `hubble_noise_flows_total`, every duplicate in
//!   `duplicate_flows_total`, every lost event in `lost_events_total`, every flow decided by a
//!   rule in `rule_matches_total` (exactly, unless a counter saturated at 2^64 − 1);
//! - both exposition formats are well formed ([`super::exposition`]);
//! - a replay record serialises to JSON.

use hubble_noise::api::observer::GetFlowsResponse;
use hubble_noise::classify::{Attribution, Classifier};
use hubble_noise::config::{CONTEXT_LABELS, Config, MetricsConfig};
use hubble_noise::flow::FlowCtx;
use hubble_noise::record::Record;
use std::collections::{HashMap, HashSet};

use hubble_noise::metrics::{Labels, Metrics, OVERFLOW};
use hubble_noise::pipeline::{Outcome, Pipeline};
use hubble_noise::rules::RuleSet;

use super::exposition::{self, Format};

/// The configuration of a fuzzed path: every context label, and windows, caches and series
/// caps small enough that a few messages reach them.
pub fn fuzz_config() -> Config {
    let mut cfg = Config {
        metrics: MetricsConfig {
            labels: CONTEXT_LABELS.iter().map(|l| (*l).to_owned()).collect(),
            max_series: 12,
            exemplars: true,
            ..MetricsConfig::default()
        },
        ..Config::default()
    };
    cfg.classify.dedup_window = 8;
    cfg.dns.max_entries = 8;
    cfg
}

/// What the metrics must show after the inputs went through.
#[derive(Debug, Default)]
struct Expected {
    flows: u128,
    rule_flows: u128,
    duplicates: u128,
    lost: u128,
    /// The model of `hubble_noise_flows_total`: each label set and its count.
    series: HashMap<Labels, u128>,
    /// Label sets with real context values, in the order they appeared (at most
    /// `max_series`; later ones are counted under `__overflow__`).
    regular: HashSet<Labels>,
}

impl Expected {
    /// A counted flow with these labels (from [`Metrics::flow_labels`]) in the model: its own
    /// series while there is room (SECURITY.md, "Series"), else the overflow series, whose
    /// context values are all `__overflow__`, and so is a direction the schema lacks.
    fn count(&mut self, mut labels: Labels, flows: u64, max_series: usize) {
        if !self.regular.contains(&labels) {
            if self.regular.len() < max_series {
                self.regular.insert(labels.clone());
            } else {
                for (i, (_, v)) in labels.iter_mut().enumerate() {
                    let direction =
                        i == 3 && !matches!(v.as_str(), "ingress" | "egress" | "unknown");
                    if i > 3 || direction {
                        *v = OVERFLOW.to_owned();
                    }
                }
            }
        }
        *self.series.entry(labels).or_default() += u128::from(flows);
    }
}

/// One fresh pipeline and metrics, with a classifier.
pub struct FlowPath<'c> {
    pipeline: Pipeline,
    metrics: Metrics,
    max_series: usize,
    classifier: &'c Classifier,
    expected: Expected,
}

impl<'c> FlowPath<'c> {
    /// A path configured by `cfg`, classifying with `classifier`.
    pub fn new(cfg: &Config, classifier: &'c Classifier) -> Self {
        let metrics = Metrics::new(&cfg.metrics, "fuzz");
        metrics.set_rules(classifier.rules.rules());
        Self {
            pipeline: Pipeline::new(cfg),
            metrics,
            max_series: cfg.metrics.max_series,
            classifier,
            expected: Expected::default(),
        }
    }

    /// A message or line that could not be decoded (`kind` as in `decode_errors_total`).
    pub fn decode_error(&self, kind: &str) {
        self.metrics.record_decode_error(kind);
    }

    /// One response, as the daemon's pipeline task takes it, and as `replay` reports it.
    pub fn feed(&mut self, resp: &GetFlowsResponse) {
        let c = self.classifier;
        self.metrics.observe_response(resp);
        let outcome = self.pipeline.process(resp, c);
        match &outcome {
            Outcome::Counted { ctx, decision } => {
                self.expected.flows += u128::from(ctx.flows);
                let labels = self.metrics.flow_labels(ctx, decision);
                self.expected.count(labels, ctx.flows, self.max_series);
                if decision.attribution == Attribution::Rule {
                    self.expected.rule_flows += u128::from(ctx.flows);
                }
                check_rules(&c.rules, ctx);
                let record = Record::new(ctx, decision, c, true);
                if let Err(e) = serde_json::to_vec(&record) {
                    panic!("replay record does not serialise: {e}");
                }
            }
            Outcome::Duplicate => self.expected.duplicates += 1,
            Outcome::Lost(l) => self.expected.lost += u128::from(l.num_events_lost),
            Outcome::Twin | Outcome::NotCounted | Outcome::NodeStatus(_) | Outcome::Empty => {}
        }
        self.metrics.record_outcome(&outcome);
        for (reason, n) in self.pipeline.names.take_ignored() {
            self.metrics.record_dns_ignored(reason, n);
        }
        self.metrics
            .set_dns_cache_entries(self.pipeline.names.len());
    }

    /// Renders `/metrics` in both formats and checks them against what went in.
    pub fn finish(self) {
        for format in [Format::OpenMetrics, Format::Text] {
            let text = match format {
                Format::OpenMetrics => self.metrics.encode_openmetrics(),
                Format::Text => self.metrics.encode_text(),
            };
            let text = text.unwrap_or_else(|e| panic!("{format:?} encoding failed: {e}"));
            let samples = exposition::parse(&text, format)
                .unwrap_or_else(|e| panic!("{format:?} exposition: {e}\n{text}"));
            let e = &self.expected;
            for (name, want) in [
                ("hubble_noise_flows_total", e.flows),
                ("hubble_noise_rule_matches_total", e.rule_flows),
                ("hubble_noise_duplicate_flows_total", e.duplicates),
                ("hubble_noise_lost_events_total", e.lost),
            ] {
                let (got, saturated) = exposition::sum(&samples, name)
                    .unwrap_or_else(|e| panic!("{format:?}: {e}\n{text}"));
                if saturated {
                    assert!(got <= want, "{format:?} {name}: {got} > {want}\n{text}");
                } else {
                    assert_eq!(got, want, "{format:?} {name}\n{text}");
                }
            }
            // Every flow in the series of its own labels, and no other series.
            let mut rendered: HashMap<Labels, u64> = HashMap::new();
            for s in samples
                .iter()
                .filter(|s| s.name == "hubble_noise_flows_total")
            {
                rendered.insert(s.labels(), s.count().unwrap_or(0));
            }
            let model: HashMap<Labels, u64> = e
                .series
                .iter()
                .map(|(l, n)| (l.clone(), u64::try_from(*n).unwrap_or(u64::MAX)))
                .collect();
            assert_eq!(
                rendered, model,
                "{format:?}: hubble_noise_flows_total is not what was counted\n{text}"
            );
        }
    }
}

/// The rule index against the reference matcher and `--explain`, for one flow.
fn check_rules(rules: &RuleSet, ctx: &FlowCtx<'_>) {
    let fast = rules.first_match(ctx);
    let reference = (0..rules.rules().len()).find(|i| rules.rule_matches(*i, ctx));
    assert_eq!(
        fast, reference,
        "the rule index and the reference matcher disagree on {:?}",
        ctx.flow
    );
    for i in 0..rules.rules().len() {
        let checks = rules.explain(i, ctx);
        assert_eq!(
            checks.iter().all(|c| c.ok),
            rules.rule_matches(i, ctx),
            "--explain disagrees with the matcher on rule {i}: {checks:?}"
        );
    }
}
