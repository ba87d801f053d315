//! The performance targets of BENCHMARKS.md, one criterion group per row.
//!
//! `cargo bench --bench throughput` (all), or `cargo bench --bench throughput -- classify`.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use hubble_noise::api::observer::GetFlowsResponse;
use hubble_noise::classify::Classifier;
use hubble_noise::config::{Config, MetricsConfig};
use hubble_noise::flow::FlowCtx;
use hubble_noise::metrics::Metrics;
use hubble_noise::pipeline::Pipeline;
use hubble_noise::rules::{RuleSet, RuleSource};
use hubble_noise::source::file::decode_line;
use hubble_noise_bench::synth;
use prost::Message;

fn classifier(n: usize) -> Classifier {
    let rules = RuleSet::load(&[RuleSource {
        path: PathBuf::from("synthetic.toml"),
        text: synth::rules(n),
        inline: false,
    }])
    .expect("synthetic rules load");
    Classifier {
        rules,
        ..Classifier::default()
    }
}

fn flow_of(r: &GetFlowsResponse) -> &hubble_noise::api::flow::Flow {
    match r.response_types.as_ref() {
        Some(hubble_noise::api::observer::get_flows_response::ResponseTypes::Flow(f)) => f,
        _ => unreachable!("synthetic responses hold flows"),
    }
}

fn classify(c: &mut Criterion) {
    let cls = classifier(1000);
    let resp = synth::flow(7, 100);
    let f = flow_of(&resp);
    let mut g = c.benchmark_group("classify");
    g.throughput(Throughput::Elements(1));
    g.bench_function("1000_rules_last_matches", |b| {
        let ctx = FlowCtx::new(f, &resp.node_name, None);
        b.iter(|| black_box(cls.classify(black_box(&ctx))));
    });
    g.bench_function("view_and_classify_1000_rules", |b| {
        b.iter(|| {
            let ctx = FlowCtx::new(black_box(f), &resp.node_name, None);
            black_box(cls.classify(&ctx).class)
        });
    });
    g.finish();
}

fn encoded(n: u64) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| synth::flow(i, 100).encode_to_vec())
        .collect()
}

fn decode(c: &mut Criterion) {
    let msgs = encoded(10_000);
    let cls = classifier(1000);
    let cfg = Config::default();
    let metrics = Metrics::new(&MetricsConfig::default(), "bench");
    let mut g = c.benchmark_group("protobuf");
    g.throughput(Throughput::Elements(msgs.len() as u64));
    g.bench_function("prost_decode_only", |b| {
        b.iter(|| {
            for m in &msgs {
                black_box(GetFlowsResponse::decode(m.as_slice()).expect("decodes"));
            }
        });
    });
    g.bench_function("decode_classify_count", |b| {
        b.iter_batched(
            || Pipeline::new(&cfg),
            |mut p| {
                for m in &msgs {
                    let resp = GetFlowsResponse::decode(m.as_slice()).expect("decodes");
                    metrics.observe_response(&resp);
                    let out = p.process(&resp, &cls);
                    metrics.record_outcome(&out);
                }
                p
            },
            BatchSize::LargeInput,
        );
    });
    g.finish();
}

fn json(c: &mut Criterion) {
    let lines: Vec<String> = (0..10_000u64)
        .map(|i| serde_json::to_string(&synth::flow(i, 100)).expect("serialises"))
        .collect();
    let cls = classifier(100);
    let cfg = Config::default();
    let mut g = c.benchmark_group("json");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("decode_classify_lines", |b| {
        b.iter_batched(
            || Pipeline::new(&cfg),
            |mut p| {
                for l in &lines {
                    let resp = decode_line(l.as_bytes()).expect("decodes").expect("line");
                    black_box(matches!(
                        p.process(&resp, &cls),
                        hubble_noise::pipeline::Outcome::Counted { .. }
                    ));
                }
                p
            },
            BatchSize::LargeInput,
        );
    });
    g.finish();
}

fn render(c: &mut Criterion) {
    let cfg = MetricsConfig {
        labels: vec!["source_namespace".into(), "destination_namespace".into()],
        max_series: 10_000,
        ..MetricsConfig::default()
    };
    let metrics = Metrics::new(&cfg, "bench");
    let cls = classifier(10);
    let mut p = Pipeline::new(&Config::default());
    for i in 0..10_000u64 {
        let r = synth::flow(i, 10_000);
        let out = p.process(&r, &cls);
        metrics.record_outcome(&out);
    }
    assert!(
        metrics.flow_series() >= 9_990,
        "10k series: {}",
        metrics.flow_series()
    );
    let mut g = c.benchmark_group("metrics_render_10k_series");
    g.bench_function("classic_text", |b| {
        b.iter(|| black_box(metrics.encode_text().expect("ok").len()))
    });
    g.bench_function("openmetrics", |b| {
        b.iter(|| black_box(metrics.encode_openmetrics().expect("ok").len()))
    });
    g.finish();
}

criterion_group!(benches, classify, decode, json, render);
criterion_main!(benches);
