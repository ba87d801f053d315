//! `hubble_noise_flows_total`: a series per label set of the counted flows, the cardinality
//! guard (past `metrics.max_series`, new label sets go to [`OVERFLOW`]) and the exemplar of
//! the latest unexpected flow.
//!
//! The hot path looks a flow's label values up in a map of pre-resolved counter handles, keyed
//! by one reusable string: no allocation and one uncontended lock per flow once a series
//! exists.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::{EncodeLabel, EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::CounterWithExemplar;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::common::{Labels, MAX_LABEL_VALUE, labels, now_seconds, saturating_add, truncate_label};
use crate::classify::Decision;
use crate::config::MetricsConfig;
use crate::enums::direction_label;
use crate::flow::{FlowCtx, system_time};
use crate::output::{drop_reason_label, verdict_name};
use crate::rules::Class;

/// The value every context label gets once `metrics.max_series` is reached.
pub const OVERFLOW: &str = "__overflow__";

/// The latest exemplar time written (9999-12-31T23:59:59Z): a later flow time, which only a
/// broken or hostile sender writes, gets an exemplar without a time.
pub const MAX_EXEMPLAR_TIME: f64 = 253_402_300_799.0;

/// One series' counter.
type Series = CounterWithExemplar<Labels>;

/// The label set of one series: the label names, shared by every series, and the values,
/// each held once however many series carry it (ten thousand series over a few hundred
/// namespaces hold a few hundred namespace strings).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct SeriesLabels {
    names: Arc<[String]>,
    values: Box<[Arc<str>]>,
}

impl EncodeLabelSet for SeriesLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        for (name, value) in self.names.iter().zip(self.values.iter()) {
            (name.as_str(), &**value).encode(encoder.encode_label())?;
        }
        Ok(())
    }
}

/// The series created so far, a reusable lookup key, and the label values in use.
#[derive(Default)]
struct SeriesMap {
    /// Each series' counter and the flow time of its last exemplar, by the 128-bit digest of
    /// its key ([`SeriesMap::digest`]).
    by_key: HashMap<u128, (Series, f64), foldhash::fast::RandomState>,
    /// The key of the flow at hand: every label value, each prefixed with its length.
    key: String,
    /// Two independently seeded hashes make a key's digest: seeded per process, so no sender
    /// can aim two label sets at one series, and by chance a collision among 2^128 is out of
    /// reach. Holding a digest instead of the key saves a read of the key's text per flow
    /// and about 100 bytes per series.
    seeds: [foldhash::quality::RandomState; 2],
    /// Series with real context values (overflow series excluded).
    regular: usize,
    /// Every label value of a series, once.
    values: HashSet<Arc<str>, foldhash::fast::RandomState>,
}

impl SeriesMap {
    /// The digest of `key`.
    fn digest(&self) -> u128 {
        use std::hash::BuildHasher;
        let [hi, lo] = &self.seeds;
        let key = self.key.as_str();
        u128::from(hi.hash_one(key)) << 64 | u128::from(lo.hash_one(key))
    }

    /// `labels` as a series' label set, its values shared with the series made before.
    fn series_labels(&mut self, names: &Arc<[String]>, labels: &Labels) -> SeriesLabels {
        let values = labels
            .iter()
            .map(|(_, v)| match self.values.get(v.as_str()) {
                Some(held) => held.clone(),
                None => {
                    let v: Arc<str> = v.as_str().into();
                    self.values.insert(v.clone());
                    v
                }
            })
            .collect();
        SeriesLabels {
            names: names.clone(),
            values,
        }
    }
}

/// `hubble_noise_flows_total` and its series.
pub(super) struct FlowSeries {
    family: Family<SeriesLabels, Series>,
    /// The label names of every series: the four fixed ones, then the context labels.
    names: Arc<[String]>,
    series: Mutex<SeriesMap>,
    /// The configured context labels (`metrics.labels`).
    pub(super) context_labels: Vec<String>,
    /// `metrics.max_series`.
    pub(super) max_series: usize,
    exemplars: bool,
}

impl FlowSeries {
    /// Registers `hubble_noise_flows_total`, configured by `cfg`.
    pub(super) fn register(r: &mut Registry, cfg: &MetricsConfig) -> Self {
        let family = Family::<SeriesLabels, Series>::default();
        r.register(
            "flows",
            "DROPPED and AUDIT flows by class, verdict, reason, direction and context",
            family.clone(),
        );
        let names = ["class", "verdict", "reason", "direction"]
            .into_iter()
            .map(String::from)
            .chain(cfg.labels.iter().cloned())
            .collect();
        Self {
            family,
            names,
            series: Mutex::new(SeriesMap::default()),
            context_labels: cfg.labels.clone(),
            max_series: cfg.max_series,
            exemplars: cfg.exemplars,
        }
    }

    /// Counts one classified flow: as many flows as it stands for ([`FlowCtx::flows`]).
    /// `overflow` counts the flows that went to an [`OVERFLOW`] series for want of room.
    pub(super) fn count(&self, ctx: &FlowCtx<'_>, d: &Decision<'_>, overflow: &Counter) {
        let time = ctx.time.unwrap_or_else(now_seconds);
        let wants_exemplar = self.exemplars && d.class == Class::Unexpected;
        let (counter, refresh_exemplar) = self.series(ctx, d, time, wants_exemplar, overflow);
        if refresh_exemplar {
            add_with_exemplar(&counter, ctx);
        } else {
            // Through the inner atomic, which leaves the last exemplar in place.
            saturating_add(&counter.inner(), ctx.flows);
        }
    }

    /// The series a flow counts in (made when new, an overflow series when there is no room
    /// for it), and whether its exemplar is to be refreshed.
    fn series(
        &self,
        ctx: &FlowCtx<'_>,
        d: &Decision<'_>,
        time: f64,
        wants_exemplar: bool,
        overflow_counter: &Counter,
    ) -> (Series, bool) {
        let direction = direction_label(ctx.direction_value);
        let direction = &*direction;
        let mut base = [
            d.class.as_str(),
            verdict_name(ctx.verdict),
            d.reason,
            direction,
        ];
        let mut s = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let s = &mut *s;
        push_key(&mut s.key, base);
        for l in &self.context_labels {
            push_key_value(&mut s.key, &context_value(l, ctx, d));
        }
        // The common case, an existing series, takes one look-up.
        if let Some(hit) = Self::existing(s, time, wants_exemplar) {
            return hit;
        }
        let overflow = s.regular >= self.max_series;
        if overflow {
            overflow_counter.inc();
            // A direction the schema lacks is a number a sender chose: past the cap it
            // would make new series without end, so it overflows too.
            if !matches!(direction, "ingress" | "egress" | "unknown") {
                base[3] = OVERFLOW;
            }
            push_key(&mut s.key, base);
            // No label set of context values has this form: one value, without a length.
            s.key.push_str(OVERFLOW);
            if let Some(hit) = Self::existing(s, time, wants_exemplar) {
                return hit;
            }
        }
        let l = if overflow {
            self.overflow_labels(base)
        } else {
            self.labels(ctx, d)
        };
        let l = s.series_labels(&self.names, &l);
        let c = self.family.get_or_create_owned(&l);
        if !overflow {
            s.regular += 1;
        }
        let digest = s.digest();
        s.by_key.insert(digest, (c.clone(), time));
        (c, wants_exemplar)
    }

    /// The series of `s.key`, if it exists, and whether its exemplar is to be refreshed.
    fn existing(s: &mut SeriesMap, time: f64, wants_exemplar: bool) -> Option<(Series, bool)> {
        let digest = s.digest();
        let (c, last) = s.by_key.get_mut(&digest)?;
        // The exemplar names the latest unexpected flow. Building its labels allocates, so a
        // busy series refreshes it at most once per second of flow time; in between only the
        // count moves.
        let since = time - *last;
        let refresh = wants_exemplar && (since >= 1.0 || since.is_nan());
        if refresh {
            *last = time;
        }
        Some((c.clone(), refresh))
    }

    /// The labels of an overflow series: the four fixed values, every context label at
    /// [`OVERFLOW`].
    fn overflow_labels(&self, [class, verdict, reason, direction]: [&str; 4]) -> Labels {
        let mut l = labels(&[
            ("class", class),
            ("verdict", verdict),
            ("reason", reason),
            ("direction", direction),
        ]);
        for name in &self.context_labels {
            l.push((name.clone(), OVERFLOW.to_owned()));
        }
        l
    }

    /// The labels of the series a flow is counted in while `metrics.max_series` is not
    /// reached: class, verdict, reason, direction and the configured context labels, each
    /// value at most [`MAX_LABEL_VALUE`] bytes.
    pub(super) fn labels(&self, ctx: &FlowCtx<'_>, d: &Decision<'_>) -> Labels {
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

    /// The number of series (overflow series included).
    pub(super) fn len(&self) -> usize {
        self.series
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .by_key
            .len()
    }
}

/// Adds a flow's count and makes it the series' exemplar (uuid and node).
fn add_with_exemplar(counter: &Series, ctx: &FlowCtx<'_>) {
    // OpenMetrics allows 128 characters for an exemplar's whole label set.
    let exemplar = labels(&[
        ("uuid", truncate_label(&ctx.flow.uuid, 64)),
        ("node", truncate_label(ctx.node, 48)),
    ]);
    // The flow's time comes from the wire: any i64 seconds. Only a time the platform and
    // OpenMetrics can carry becomes the exemplar's timestamp (checked conversion: an overflow
    // here once panicked a worker).
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
fn context_value<'a>(label: &str, ctx: &FlowCtx<'a>, d: &Decision<'_>) -> Cow<'a, str> {
    match full_context_value(label, ctx, d) {
        Cow::Borrowed(v) => Cow::Borrowed(truncate_label(v, MAX_LABEL_VALUE)),
        Cow::Owned(v) if v.len() > MAX_LABEL_VALUE => {
            Cow::Owned(truncate_label(&v, MAX_LABEL_VALUE).to_owned())
        }
        owned => owned,
    }
}

fn full_context_value<'a>(label: &str, ctx: &FlowCtx<'a>, d: &Decision<'_>) -> Cow<'a, str> {
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
