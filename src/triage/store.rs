//! The store itself: recent flows in arrival order, bounded by count and bytes, with the groups
//! of the unexpected ones.
//!
//! Flows live in one ordered map keyed by arrival number, so the oldest goes first whatever its
//! class, and the expected flows a rule hides (the last [`TriageConfig::per_rule`]) are removed
//! from the middle in `O(log n)` when newer ones replace them. Groups count every unexpected
//! flow seen since start, also those whose flows were evicted; at most
//! [`TriageConfig::max_groups`] are tracked, the one seen least recently goes first.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::Serialize;

use super::group::{GroupEntry, group_id};
use crate::config::TriageConfig;
use crate::rules::Class;
use crate::suggest::group::{Group, GroupKey};

/// One kept flow: what `replay --format jsonl` prints, with the workloads to filter by, its
/// group and its decision path. Field names are the API's (docs/API.md).
#[derive(Clone, Debug, Serialize)]
pub struct StoredFlow {
    /// Flow uuid.
    pub uuid: String,
    /// Flow time (RFC 3339).
    pub time: Option<String>,
    /// Flow time (Unix seconds), for filters and order.
    #[serde(skip)]
    pub unix: Option<f64>,
    /// Node name.
    pub node: String,
    /// Verdict name.
    pub verdict: &'static str,
    /// Drop reason name, or null.
    pub drop_reason: Option<String>,
    /// Traffic direction.
    pub direction: String,
    /// `expected` or `unexpected`.
    pub class: &'static str,
    /// The reason label.
    pub reason: String,
    /// The rule that decided, or null.
    pub rule: Option<String>,
    /// Which step decided.
    pub attribution: &'static str,
    /// `namespace/pod` or IP.
    pub source: String,
    /// Source namespace ("" when not a pod).
    pub source_namespace: String,
    /// Source workload ("" when none).
    pub source_workload: String,
    /// `namespace/pod` or IP, with `:port/PROTO`.
    pub destination: String,
    /// Destination namespace.
    pub destination_namespace: String,
    /// Destination workload.
    pub destination_workload: String,
    /// Destination port (TCP, UDP, SCTP), or null: as the flow log writes it.
    pub destination_port: Option<u16>,
    /// Names known for the destination.
    pub names: Vec<String>,
    /// Flows this record stands for (an aggregated flow stands for several).
    pub flows: u64,
    /// The group of an unexpected flow (`/api/v1/groups`), else null.
    pub group: Option<String>,
    /// Why it was classified so, one line per fact (`--explain`).
    pub explain: Vec<String>,
}

impl StoredFlow {
    /// Its heap size and its own, estimated: what `max_bytes` bounds.
    pub fn bytes(&self) -> usize {
        let strings = [
            &self.uuid,
            &self.node,
            &self.direction,
            &self.reason,
            &self.source,
            &self.source_namespace,
            &self.source_workload,
            &self.destination,
            &self.destination_namespace,
            &self.destination_workload,
        ];
        let opts = [&self.time, &self.drop_reason, &self.rule, &self.group];
        std::mem::size_of::<Self>()
            + SLOT_BYTES
            + strings.iter().map(|s| s.capacity()).sum::<usize>()
            + opts
                .iter()
                .flat_map(|o| o.as_ref())
                .map(|s| s.capacity())
                .sum::<usize>()
            + vec_bytes(&self.names)
            + vec_bytes(&self.explain)
    }
}

fn vec_bytes(v: &[String]) -> usize {
    std::mem::size_of_val(v) + v.iter().map(String::capacity).sum::<usize>()
}

/// The expected flows kept for one rule.
#[derive(Debug, Default)]
struct RuleSlot {
    /// Their arrival numbers, oldest first.
    kept: VecDeque<u64>,
    /// When the last one was kept (the caller's clock, seconds).
    last: f64,
}

/// The kept flows and the groups.
#[derive(Debug)]
pub struct Store {
    cfg: TriageConfig,
    flows: BTreeMap<u64, Box<StoredFlow>>,
    next: u64,
    bytes: usize,
    unexpected: usize,
    /// Per rule, its kept expected flows.
    by_rule: HashMap<String, RuleSlot>,
    /// Groups by key.
    groups: HashMap<GroupKey, GroupEntry>,
    /// Arrival number of the last group update, for the least recently seen.
    group_clock: u64,
    /// Decision paths that may still be written this second ([`Store::explain_token`]).
    tokens: f64,
    /// When `tokens` was last refilled.
    tokens_at: f64,
}

/// Decision paths written per second at most (and in a burst). Explaining an unexpected flow
/// walks every rule for the nearest one, which a flood of unexpected flows must not turn into
/// a pipeline that falls behind; past this rate flows are kept without their path.
pub const EXPLAIN_PER_SECOND: f64 = 200.0;

/// What the ordered map spends per kept flow beyond the boxed flow: its key and pointer, with
/// the slack of half-full nodes (`bench/tests/triage_memory.rs` checks the estimate).
pub const SLOT_BYTES: usize = 32;

impl Store {
    /// An empty store bounded by `cfg`.
    pub fn new(cfg: &TriageConfig) -> Self {
        Self {
            cfg: cfg.clone(),
            flows: BTreeMap::new(),
            next: 0,
            bytes: 0,
            unexpected: 0,
            by_rule: HashMap::new(),
            groups: HashMap::new(),
            group_clock: 0,
            tokens: EXPLAIN_PER_SECOND,
            tokens_at: 0.0,
        }
    }

    /// Whether an expected flow decided by `rule` would be kept: while the rule has fewer
    /// than `per_rule`, and then at most one a second (so a busy rule costs nothing per flow).
    pub fn wants_expected(&self, rule: &str, now: f64) -> bool {
        if self.cfg.per_rule == 0 {
            return false;
        }
        self.by_rule.get(rule).is_none_or(|r| {
            r.kept.len() < self.cfg.per_rule || (now - r.last >= 1.0) || now.is_nan()
        })
    }

    /// Whether a flow offered at `now` (seconds) may have its decision path written: at most
    /// [`EXPLAIN_PER_SECOND`], refilled continuously.
    pub fn explain_token(&mut self, now: f64) -> bool {
        let elapsed = now - self.tokens_at;
        if elapsed > 0.0 {
            self.tokens = (self.tokens + elapsed * EXPLAIN_PER_SECOND).min(EXPLAIN_PER_SECOND);
            self.tokens_at = now;
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Adds an unexpected flow to its group (counted even when the flow is not kept) and keeps
    /// the flow.
    pub fn add_unexpected(&mut self, key: GroupKey, mut flow: StoredFlow, flows: u64) {
        self.group_clock += 1;
        let id = self.touch_group(key, &flow, flows);
        flow.group = Some(id);
        self.unexpected += 1;
        self.push(flow);
    }

    /// Keeps an expected flow of `rule` (at `now`, the clock of [`Self::wants_expected`]),
    /// replacing the rule's oldest past `per_rule`.
    pub fn add_expected(&mut self, rule: &str, flow: StoredFlow, now: f64) {
        let seq = self.next;
        self.push(flow);
        if !self.flows.contains_key(&seq) {
            return; // larger than max_bytes on its own
        }
        let slot = self.by_rule.entry(rule.to_string()).or_default();
        slot.last = now;
        slot.kept.push_back(seq);
        if slot.kept.len() > self.cfg.per_rule {
            if let Some(old) = slot.kept.pop_front() {
                self.remove(old);
            }
        }
    }

    fn touch_group(&mut self, key: GroupKey, flow: &StoredFlow, flows: u64) -> String {
        if !self.groups.contains_key(&key) && self.groups.len() >= self.cfg.max_groups {
            let oldest = self
                .groups
                .iter()
                .min_by_key(|(_, g)| g.seen)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.groups.remove(&k);
            }
        }
        let clock = self.group_clock;
        let e = self.groups.entry(key).or_insert_with_key(|k| GroupEntry {
            id: group_id(k),
            seen: clock,
            group: Group {
                hits: 0,
                first: None,
                last: None,
                uuid: flow.uuid.clone(),
                verdicts: std::collections::BTreeSet::new(),
                order: 0,
            },
            source_namespace: flow.source_namespace.clone(),
            source_workload: flow.source_workload.clone(),
            destination_namespace: flow.destination_namespace.clone(),
            destination_workload: flow.destination_workload.clone(),
            destination: flow.destination.clone(),
        });
        e.seen = clock;
        let g = &mut e.group;
        g.hits = g.hits.saturating_add(flows);
        if let Some(t) = flow.unix {
            g.first = Some(g.first.map_or(t, |f| f.min(t)));
            g.last = Some(g.last.map_or(t, |l| l.max(t)));
        }
        g.verdicts.insert(flow.verdict);
        g.uuid.clone_from(&flow.uuid);
        e.id.clone()
    }

    fn push(&mut self, flow: StoredFlow) {
        self.bytes += flow.bytes();
        self.flows.insert(self.next, Box::new(flow));
        self.next += 1;
        while self.flows.len() > self.cfg.max_flows || self.bytes > self.cfg.max_bytes {
            let Some((&seq, _)) = self.flows.first_key_value() else {
                break;
            };
            self.remove(seq);
        }
    }

    fn remove(&mut self, seq: u64) {
        let Some(f) = self.flows.remove(&seq) else {
            return;
        };
        self.bytes = self.bytes.saturating_sub(f.bytes());
        if f.class == Class::Unexpected.as_str() {
            self.unexpected -= 1;
        } else if let Some(rule) = &f.rule {
            if let Some(slot) = self.by_rule.get_mut(rule) {
                slot.kept.retain(|s| *s != seq);
                if slot.kept.is_empty() {
                    self.by_rule.remove(rule);
                }
            }
        }
    }

    /// Kept flows, newest first.
    pub fn newest_first(&self) -> impl Iterator<Item = &StoredFlow> {
        self.flows.values().rev().map(|f| &**f)
    }

    /// The kept flow of this uuid (the newest, should a uuid repeat).
    pub fn flow(&self, uuid: &str) -> Option<&StoredFlow> {
        self.newest_first().find(|f| f.uuid == uuid)
    }

    /// The groups, in no order.
    pub fn groups(&self) -> impl Iterator<Item = (&GroupKey, &GroupEntry)> {
        self.groups.iter()
    }

    /// Kept flows by class: (expected, unexpected).
    pub fn counts(&self) -> (usize, usize) {
        (self.flows.len() - self.unexpected, self.unexpected)
    }

    /// Estimated bytes of the kept flows.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}
