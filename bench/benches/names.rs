//! The name cache at `dns.max_entries` (100,000 learned names): heap bytes per learned name,
//! time to learn an answer, and the pipeline step for a drop to a learned IP (look up the
//! pod's asked names, classify against 1,000 rules with the name, count nothing). Printed, never
//! asserted (BENCHMARKS.md).
//!
//! ```text
//! cargo bench --bench names
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use hubble_noise::api::observer::GetFlowsResponse;
use hubble_noise::api::observer::get_flows_response::ResponseTypes;
use hubble_noise::classify::Classifier;
use hubble_noise::config::Config;
use hubble_noise::pipeline::{Outcome, Pipeline};
use hubble_noise::rules::{RuleSet, RuleSource};
use hubble_noise_bench::synth;

/// Counts live heap bytes.
struct Live;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Live {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n as isize - l.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Live = Live;

const NAMES: u64 = 100_000;

/// The drop of `synth::flow(i)`, sent to the IP that `synth::dns_answer(i)` named.
fn drop_to_learned(i: u64) -> GetFlowsResponse {
    let mut r = synth::flow(i, 100);
    let answer = synth::dns_answer(i, 100);
    let ip = match answer.response_types.as_ref() {
        Some(ResponseTypes::Flow(a)) => {
            a.l7.as_ref()
                .and_then(|l| match l.record.as_ref() {
                    Some(hubble_noise::api::flow::layer7::Record::Dns(d)) => d.ips.first().cloned(),
                    _ => None,
                })
                .unwrap_or_default()
        }
        _ => String::new(),
    };
    if let Some(ResponseTypes::Flow(f)) = r.response_types.as_mut() {
        if let Some(x) = f.ip.as_mut() {
            x.destination = ip;
        }
        f.uuid = format!("drop-{i}");
    }
    r
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let classifier = Classifier {
        rules: RuleSet::load(&[RuleSource {
            path: PathBuf::from("synthetic.toml"),
            text: synth::rules(1000),
            inline: false,
        }])
        .expect("rules load"),
        ..Classifier::default()
    };
    let mut cfg = Config::default();
    cfg.classify.dedup_window = 1;
    let answers: Vec<_> = (0..NAMES).map(|i| synth::dns_answer(i, 100)).collect();
    let drops: Vec<_> = (0..NAMES).map(drop_to_learned).collect();

    // Heap per learned name: live bytes of a pipeline before and after learning NAMES answers.
    let mut pipeline = Pipeline::new(&cfg);
    let before = LIVE.load(Ordering::Relaxed);
    let start = Instant::now();
    for a in &answers {
        let _ = pipeline.process(a, &classifier);
    }
    let learn_ns = start.elapsed().as_nanos() as f64 / NAMES as f64;
    let heap = LIVE.load(Ordering::Relaxed) - before;
    println!(
        "names: {} learned, heap {:.1} MiB = {:.0} bytes a name; learning {learn_ns:.0} ns an answer",
        pipeline.names.len(),
        heap as f64 / (1 << 20) as f64,
        heap as f64 / pipeline.names.len().max(1) as f64
    );

    // A pipeline step for a drop to a learned IP (the name is looked up and goes through the
    // fqdn index), and for a drop to an IP with no name, over 5 rounds.
    for (what, set) in [("a learned IP", &drops), ("an unnamed IP", &Vec::new())] {
        let flows: Vec<GetFlowsResponse> = if set.is_empty() {
            (0..NAMES)
                .map(|i| synth::flow(i + 10 * NAMES, 100))
                .collect()
        } else {
            set.clone()
        };
        let mut rounds = Vec::new();
        let mut expected = 0u64;
        for _ in 0..5 {
            let start = Instant::now();
            for f in &flows {
                if let Outcome::Counted { decision, .. } = pipeline.process(f, &classifier) {
                    expected += u64::from(decision.rule.is_some());
                }
            }
            rounds.push(start.elapsed().as_nanos() as f64 / flows.len() as f64);
        }
        println!(
            "step: a drop to {what}: {:.0} ns median of 5 rounds of {} ({expected} decided by a rule)",
            median(rounds),
            flows.len()
        );
    }
}
