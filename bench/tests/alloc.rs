//! The hot path allocates nothing per flow once warm: classification against 1,000 rules, and
//! the whole pipeline step (de-duplicate, classify, count) for a flow whose series exists.
//! Counted with a global allocator that counts per thread (other test threads do not disturb).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::PathBuf;

use hubble_noise::classify::Classifier;
use hubble_noise::config::{Config, MetricsConfig};
use hubble_noise::flow::FlowCtx;
use hubble_noise::metrics::Metrics;
use hubble_noise::pipeline::Pipeline;
use hubble_noise::rules::{RuleSet, RuleSource};
use hubble_noise_bench::synth;

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|a| a.set(a.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|a| a.set(a.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations(f: impl FnOnce()) -> u64 {
    let before = ALLOCS.with(Cell::get);
    f();
    ALLOCS.with(Cell::get) - before
}

fn classifier() -> Classifier {
    Classifier {
        rules: RuleSet::load(&[RuleSource {
            path: PathBuf::from("synthetic.toml"),
            text: synth::rules(1000),
            inline: false,
        }])
        .expect("rules load"),
        ..Classifier::default()
    }
}

#[test]
fn classifying_a_flow_against_1000_rules_allocates_nothing() {
    let cls = classifier();
    let resp = synth::flow(3, 10);
    let Some(hubble_noise::api::observer::get_flows_response::ResponseTypes::Flow(f)) =
        resp.response_types.as_ref()
    else {
        unreachable!()
    };
    let warm = FlowCtx::new(f, &resp.node_name, None);
    let d = cls.classify(&warm);
    assert_eq!(
        d.rule.map(|r| r.name.as_str()),
        cls.rules.rules().last().map(|r| r.name.as_str()),
        "the last rule decides: every rule is considered"
    );
    assert_eq!(cls.rules.rules().len(), 1000);
    let n = allocations(|| {
        for _ in 0..1000 {
            let ctx = FlowCtx::new(f, &resp.node_name, None);
            std::hint::black_box(cls.classify(&ctx));
        }
    });
    assert_eq!(n, 0, "allocations in 1,000 classifications");
}

#[test]
fn the_pipeline_step_allocates_nothing_once_the_series_exists() {
    let cls = classifier();
    let metrics = Metrics::new(&MetricsConfig::default(), "test");
    let mut p = Pipeline::new(&Config::default());
    // 100 namespaces: after the first 100 flows every series exists.
    let flows: Vec<_> = (0..1100u64).map(|i| synth::flow(i, 100)).collect();
    // A name cache that is not empty: every flow looks its destination up (and misses).
    for i in 0..1000u64 {
        let _ = p.process(&synth::dns_answer(i, 100), &cls);
    }
    assert_eq!(p.names.len(), 1000);
    for r in &flows[..100] {
        let out = p.process(r, &cls);
        metrics.record_outcome(&out);
    }
    let n = allocations(|| {
        for r in &flows[100..] {
            metrics.observe_response(r);
            let out = p.process(r, &cls);
            metrics.record_outcome(&out);
        }
    });
    assert_eq!(n, 0, "allocations in 1,000 pipeline steps");
}
