//! The triage store's memory (PRODUCT.md §12): what a kept flow really costs on the heap, against
//! the estimate `triage.max_bytes` bounds; and that offering expected flows of a rule whose
//! slots are full allocates nothing (the pipeline step stays allocation-free).
//! Heap bytes counted with a global allocator that counts per thread.

#![allow(clippy::unwrap_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::PathBuf;

use hubble_noise::api::observer::get_flows_response::ResponseTypes;
use hubble_noise::classify::Classifier;
use hubble_noise::config::TriageConfig;
use hubble_noise::flow::FlowCtx;
use hubble_noise::rules::{RuleSet, RuleSource};
use hubble_noise::triage::Triage;
use hubble_noise_bench::synth;

struct Counting;

thread_local! {
    static NET: Cell<i64> = const { Cell::new(0) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn add(n: i64) {
    let _ = NET.try_with(|b| b.set(b.get() + n));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as i64);
        let _ = ALLOCS.try_with(|a| a.set(a.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as i64));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size as i64 - layout.size() as i64);
        let _ = ALLOCS.try_with(|a| a.set(a.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// `n` synthetic rules; `matching = false` leaves out the last, the one that matches every
/// synthetic flow.
fn classifier(n: usize, matching: bool) -> Classifier {
    let mut text = synth::rules(n);
    if !matching {
        let last = text.rfind("[[rule]]").unwrap();
        text.truncate(last);
    }
    Classifier {
        rules: RuleSet::load(&[RuleSource {
            path: PathBuf::from("synthetic.toml"),
            text,
            inline: false,
        }])
        .unwrap(),
        ..Classifier::default()
    }
}

/// Offers flows `range` of 100 namespaces; returns how many were of `class`.
fn offer(t: &Triage, cls: &Classifier, range: std::ops::Range<u64>, now: f64) -> usize {
    let mut n = 0;
    for i in range {
        let resp = synth::flow(i, 100);
        let Some(ResponseTypes::Flow(f)) = resp.response_types.as_ref() else {
            unreachable!()
        };
        let ctx = FlowCtx::new(f, &resp.node_name, None);
        let d = cls.classify(&ctx);
        t.offer_at(&ctx, &d, cls, now);
        n += usize::from(d.class == hubble_noise::rules::Class::Unexpected);
    }
    n
}

#[test]
fn a_kept_flow_costs_what_max_bytes_counts() {
    // 9 rules, none matches: each flow is unexpected, with the nearest rule explained (as long
    // a path as with 1,000 rules, in a fraction of the time).
    let cls = classifier(10, false);
    let flows = 10_000;
    let t = Triage::new(&TriageConfig {
        max_flows: flows,
        max_bytes: 1 << 30,
        ..TriageConfig::default()
    });
    // The synthetic flows themselves are built and dropped inside; only what the store keeps
    // stays on the heap.
    let before = NET.with(Cell::get);
    // 100 flows a second: every one gets its decision path.
    let unexpected = (0..flows as u64)
        .map(|i| offer(&t, &cls, i..i + 1, i as f64 / 100.0))
        .sum::<usize>();
    let real = NET.with(Cell::get) - before;
    assert_eq!(unexpected, flows);
    let store = t.lock();
    assert_eq!(store.counts(), (0, flows));
    let estimate = store.bytes() as i64;
    let per_flow = real / flows as i64;
    println!(
        "triage store: {flows} flows, {real} B on the heap ({per_flow} B per flow, estimate {} B), {} group(s)",
        estimate / flows as i64,
        store.groups().count()
    );
    assert!(
        store.newest_first().all(|f| f.explain.len() > 3),
        "every flow has its path"
    );
    // The estimate covers the flows and their slots, not the groups (bounded apart).
    assert!(
        real.abs_diff(estimate) <= estimate.unsigned_abs() / 4,
        "the heap ({real} B) is more than 25 % off the estimate ({estimate} B)"
    );
}

#[test]
fn offering_expected_flows_of_a_full_rule_allocates_nothing() {
    // 1,000 rules: the last decides every flow, expected.
    let cls = classifier(1000, true);
    let t = Triage::new(&TriageConfig::default());
    assert_eq!(offer(&t, &cls, 0..10, 0.0), 0);
    assert_eq!(t.lock().counts(), (5, 0), "per_rule of them kept");
    let resp: Vec<_> = (10..1010u64).map(|i| synth::flow(i, 100)).collect();
    let ctxs: Vec<_> = resp
        .iter()
        .map(|r| {
            let Some(ResponseTypes::Flow(f)) = r.response_types.as_ref() else {
                unreachable!()
            };
            FlowCtx::new(f, &r.node_name, None)
        })
        .collect();
    let before = ALLOCS.with(Cell::get);
    for ctx in &ctxs {
        let d = cls.classify(ctx);
        t.offer_at(ctx, &d, &cls, 0.5);
    }
    assert_eq!(
        ALLOCS.with(Cell::get) - before,
        0,
        "allocations in 1,000 offers"
    );
    assert_eq!(t.lock().counts(), (5, 0));
    // A second later the rule takes one more, in place of its oldest.
    offer(&t, &cls, 2000..2001, 1.5);
    assert_eq!(t.lock().counts(), (5, 0));
}
