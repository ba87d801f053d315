//! The metrics of each rule (matches, time of the last match, expiry) and how many rules are
//! active or expired. [`RuleMetrics::set`] follows a reload: the series of rules that remain
//! keep their values, removed rules' series are dropped.

use std::collections::HashMap;
use std::sync::RwLock;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::common::{FGauge, Labels, labels, now_seconds, saturating_add};
use crate::rules::Rule;

/// The handles of one rule's metrics.
#[derive(Clone)]
struct RuleHandles {
    matches: Counter,
    last_match: FGauge,
}

/// `hubble_noise_rule_*` and `hubble_noise_rules`.
pub(super) struct RuleMetrics {
    matches: Family<Labels, Counter>,
    last_match: Family<Labels, FGauge>,
    expiry: Family<Labels, FGauge>,
    /// Loaded rules by state (`active`, `expired`).
    states: Family<Labels, Gauge>,
    handles: RwLock<HashMap<String, RuleHandles>>,
    expiries: RwLock<Vec<f64>>,
}

impl RuleMetrics {
    /// Registers the rule metrics; no rule is loaded yet.
    pub(super) fn register(r: &mut Registry) -> Self {
        let matches = Family::<Labels, Counter>::default();
        r.register(
            "rule_matches",
            "Flows decided by each rule",
            matches.clone(),
        );
        let last_match = Family::<Labels, FGauge>::default();
        r.register(
            "rule_last_match_timestamp_seconds",
            "Time of the last flow decided by each rule",
            last_match.clone(),
        );
        let expiry = Family::<Labels, FGauge>::default();
        r.register(
            "rule_expiry_timestamp_seconds",
            "Expiry time of each rule that has one",
            expiry.clone(),
        );
        let states = Family::<Labels, Gauge>::default();
        r.register("rules", "Loaded rules by state", states.clone());
        for s in ["active", "expired"] {
            states.get_or_create(&labels(&[("state", s)])).set(0);
        }
        Self {
            matches,
            last_match,
            expiry,
            states,
            handles: RwLock::new(HashMap::new()),
            expiries: RwLock::new(Vec::new()),
        }
    }

    /// Updates the counts of active and expired rules from the wall clock.
    pub(super) fn refresh(&self) {
        let now = now_seconds();
        let expiries = self.expiries.read().unwrap_or_else(|e| e.into_inner());
        let expired = expiries.iter().filter(|e| **e <= now).count();
        let total = self.handles.read().map_or(0, |h| h.len());
        drop(expiries);
        self.set_states(total, expired);
    }

    fn set_states(&self, total: usize, expired: usize) {
        let active = i64::try_from(total.saturating_sub(expired)).unwrap_or(i64::MAX);
        let expired = i64::try_from(expired).unwrap_or(i64::MAX);
        self.states
            .get_or_create(&labels(&[("state", "active")]))
            .set(active);
        self.states
            .get_or_create(&labels(&[("state", "expired")]))
            .set(expired);
    }

    /// Makes every rule's metrics exist (at 0 for new rules) and drops those of rules that
    /// are gone.
    pub(super) fn set(&self, rules: &[Rule]) {
        let mut handles = HashMap::with_capacity(rules.len());
        let mut expiries = Vec::new();
        self.expiry.clear();
        for r in rules {
            let l = labels(&[("rule", &r.name)]);
            handles.insert(
                r.name.clone(),
                RuleHandles {
                    matches: self.matches.get_or_create_owned(&l),
                    last_match: self.last_match.get_or_create_owned(&l),
                },
            );
            if let Some(e) = r.expires {
                self.expiry.get_or_create(&l).set(e);
                expiries.push(e);
            }
        }
        let old: Vec<String> = {
            let cur = self.handles.read().unwrap_or_else(|e| e.into_inner());
            cur.keys()
                .filter(|k| !handles.contains_key(*k))
                .cloned()
                .collect()
        };
        for name in old {
            let l = labels(&[("rule", &name)]);
            self.matches.remove(&l);
            self.last_match.remove(&l);
        }
        *self.handles.write().unwrap_or_else(|e| e.into_inner()) = handles;
        *self.expiries.write().unwrap_or_else(|e| e.into_inner()) = expiries;
        self.refresh();
    }

    /// Counts `flows` flows decided by the rule `name` at `time` (else now); a rule that is
    /// not loaded is ignored.
    pub(super) fn record_matches(&self, name: &str, time: Option<f64>, flows: u64) {
        let handles = self.handles.read().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = handles.get(name) {
            saturating_add(h.matches.inner(), flows);
            h.last_match.set(time.unwrap_or_else(now_seconds));
        }
    }
}
