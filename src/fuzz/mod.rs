//! Fuzz harnesses: one function per kind of outside input, each taking arbitrary bytes.
//!
//! Every harness must return without panicking whatever it is given, and must respect the
//! input limits of PRODUCT.md §9. They are driven by property tests (`tests/fuzz.rs`, a short
//! pass in `cargo test`, more with `HUBBLE_NOISE_FUZZ_CASES`) and by the time-boxed mutation
//! runner `examples/fuzz.rs` (see SECURITY.md).
//!
//! A harness returns a small summary of what the input became, so that a runner can tell
//! accepted inputs from refused ones (and keep the accepted ones as seeds).

use std::cell::RefCell;
use std::path::PathBuf;

use prost::Message as _;

use crate::api::observer::GetFlowsResponse;
use crate::classify::Classifier;
use crate::config::{Config, MetricsConfig};
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::policy::{PolicySet, PolicySource};
use crate::rules::{RuleSet, RuleSource};
use crate::source::file;

/// What a harness made of its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The input was accepted (decoded, loaded).
    Accepted,
    /// The input was refused with an error (the expected outcome of most random input).
    Refused,
}

/// The path shared by flows from either source: a pipeline, a classifier and metrics that live
/// for the whole run on this thread, so that state (de-duplication, name cache, series cap)
/// builds up across inputs the way it does in the daemon.
struct Path {
    pipeline: Pipeline,
    classifier: Classifier,
    metrics: Metrics,
    seen: u64,
}

thread_local! {
    static PATH: RefCell<Option<Path>> = const { RefCell::new(None) };
}

fn through_pipeline(resp: &GetFlowsResponse) {
    PATH.with(|p| {
        let mut p = p.borrow_mut();
        let p = p.get_or_insert_with(|| {
            let cfg = Config::default();
            Path {
                pipeline: Pipeline::new(&cfg),
                classifier: Classifier::default(),
                metrics: Metrics::new(
                    &MetricsConfig {
                        max_series: 100,
                        exemplars: true,
                        ..MetricsConfig::default()
                    },
                    "fuzz",
                ),
                seen: 0,
            }
        });
        p.metrics.observe_response(resp);
        let outcome = p.pipeline.process(resp, &p.classifier);
        p.metrics.record_outcome(&outcome, &p.classifier);
        p.seen += 1;
        // Encoding walks every series and exemplar: do it now and then.
        if p.seen % 64 == 0 {
            let _ = p.metrics.encode_openmetrics();
            let _ = p.metrics.encode_text();
        }
    });
}

/// One line of a JSON-lines recording, as `replay` and `run --replay` read it: the prefilter,
/// then the full decode, then the pipeline and metrics.
pub fn json_line(data: &[u8]) -> Verdict {
    if data.len() > file::MAX_LINE {
        return Verdict::Refused;
    }
    let decoded = if file::needs_decode(data) {
        file::decode_line(data)
    } else {
        serde_json::from_slice::<serde::de::IgnoredAny>(data)
            .map(|_| None)
            .map_err(|e| e.to_string())
    };
    match decoded {
        Ok(Some(resp)) => {
            through_pipeline(&resp);
            Verdict::Accepted
        }
        Ok(None) => Verdict::Accepted,
        Err(_) => Verdict::Refused,
    }
}

/// One protobuf `GetFlowsResponse` as the relay stream delivers it (after gRPC framing); an
/// accepted message also goes through the pipeline and must survive an encode/decode round
/// trip.
pub fn grpc_response(data: &[u8]) -> Verdict {
    match GetFlowsResponse::decode(data) {
        Ok(resp) => {
            let again = GetFlowsResponse::decode(resp.encode_to_vec().as_slice());
            assert_eq!(again.as_ref().ok(), Some(&resp), "protobuf round trip");
            through_pipeline(&resp);
            Verdict::Accepted
        }
        Err(_) => Verdict::Refused,
    }
}

/// A rule file (`classify.rule_files`): parse, validate, compile, then match one flow.
pub fn rule_file(data: &[u8]) -> Verdict {
    let Ok(text) = std::str::from_utf8(data) else {
        return Verdict::Refused;
    };
    let src = RuleSource {
        path: PathBuf::from("fuzz.toml"),
        text: text.to_owned(),
        inline: false,
    };
    match RuleSet::load(&[src]) {
        Ok(rules) => {
            let flow = crate::api::flow::Flow {
                verdict: crate::api::flow::Verdict::Dropped as i32,
                ..Default::default()
            };
            let ctx = crate::flow::FlowCtx::new(&flow, "fuzz", None);
            let _ = rules.first_match(&ctx);
            Verdict::Accepted
        }
        Err(_) => Verdict::Refused,
    }
}

/// A Cilium policy YAML document (`classify.policy_files`): parse and compile.
pub fn policy_yaml(data: &[u8]) -> Verdict {
    let Ok(text) = std::str::from_utf8(data) else {
        return Verdict::Refused;
    };
    if text.len() > crate::load::MAX_POLICY_FILE {
        return Verdict::Refused;
    }
    let src = PolicySource {
        path: PathBuf::from("fuzz.yaml"),
        text: text.to_owned(),
    };
    match PolicySet::load(&[src], &|t: &str| t.starts_with("expected")) {
        Ok(_) => Verdict::Accepted,
        Err(_) => Verdict::Refused,
    }
}

/// A harness.
pub type Harness = fn(&[u8]) -> Verdict;

/// The harnesses by name, for runners.
pub const TARGETS: [(&str, Harness); 4] = [
    ("json", json_line),
    ("grpc", grpc_response),
    ("rules", rule_file),
    ("policy", policy_yaml),
];
