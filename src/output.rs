//! Text forms shared by `replay`, `suggest` and the logs: times, endpoints, enum names.

use std::fmt::Write;

use std::borrow::Cow;

use crate::api::flow::{DropReason, TrafficDirection, Verdict};
use crate::calendar::civil_from_days;
use crate::enums::Open;
use crate::flow::{FlowCtx, Side};

/// RFC 3339 with nanoseconds and `Z`, as Hubble prints times.
pub fn rfc3339(ts: &pbjson_types::Timestamp) -> String {
    let secs = ts.seconds;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    if ts.nanos > 0 {
        let _ = write!(s, ".{:09}", ts.nanos);
    }
    s.push('Z');
    s
}

/// `Nov 20 10:00:02.123`, as `hubble observe -o compact` prints times (UTC here).
pub fn compact_time(ts: &pbjson_types::Timestamp) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = ts.seconds;
    let rem = secs.rem_euclid(86_400);
    let (_, m, d) = civil_from_days(secs.div_euclid(86_400));
    let month = MONTHS
        .get(m.saturating_sub(1) as usize)
        .copied()
        .unwrap_or("???");
    let millis = ts.nanos.clamp(0, 999_999_999) / 1_000_000;
    format!(
        "{month} {d:>2} {:02}:{:02}:{:02}.{millis:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `DROPPED`, `AUDIT`, …
pub fn verdict_name(v: Verdict) -> &'static str {
    v.as_str_name()
}

/// `ingress`, `egress` or `unknown`.
pub fn direction_name(d: TrafficDirection) -> &'static str {
    match d {
        TrafficDirection::Ingress => "ingress",
        TrafficDirection::Egress => "egress",
        TrafficDirection::Unknown => "unknown",
    }
}

/// The drop reason label: the upstream name, a newer name `hubble` printed, or the number
/// (`"250"`); `None` when there is none (AUDIT verdicts).
pub fn drop_reason_name(r: Open<DropReason>) -> Option<Cow<'static, str>> {
    (!r.is(DropReason::Unknown)).then(|| r.label())
}

/// [`drop_reason_name`], or "" when there is none.
pub fn drop_reason_label(r: Open<DropReason>) -> Cow<'static, str> {
    drop_reason_name(r).unwrap_or(Cow::Borrowed(""))
}

/// `namespace/pod`, else the IP, else `unknown`.
pub fn endpoint(side: &Side<'_>) -> String {
    let (ns, pod) = (side.namespace(), side.pod());
    if !pod.is_empty() {
        format!("{ns}/{pod}")
    } else if let Some(ip) = side.ip {
        ip.to_string()
    } else if !ns.is_empty() {
        format!("{ns}/")
    } else {
        "unknown".into()
    }
}

/// The destination with `:port/PROTO` when there is a port.
pub fn destination(ctx: &FlowCtx<'_>) -> String {
    let mut s = endpoint(&ctx.destination);
    if let Some(p) = ctx.destination.port {
        let _ = write!(s, ":{p}/{}", ctx.proto.as_str());
    }
    s
}

/// `namespace/workload`, else `namespace/pod`, else the IP: how a source is grouped.
pub fn workload(side: &Side<'_>) -> String {
    let w = side.workload();
    if !w.is_empty() {
        format!("{}/{w}", side.namespace())
    } else {
        endpoint(side)
    }
}

/// The names of a side as shown (lower-case, no trailing dot), de-duplicated: those on the
/// flow, the DNS query, and the live names the pod asked for that resolved to the IP.
pub fn names(side: &Side<'_>) -> Vec<String> {
    let n = &side.names;
    let all = n
        .flow
        .iter()
        .map(String::as_str)
        .chain(n.query)
        .chain(n.asked().map(|a| a.name))
        .filter(|n| !n.is_empty());
    let mut out: Vec<String> = Vec::new();
    for name in all {
        let name = crate::names::display_name(name);
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times_like_hubble() {
        let ts = pbjson_types::Timestamp {
            seconds: 1_789_518_432,
            nanos: 737_667_052,
        };
        assert_eq!(rfc3339(&ts), "2026-09-16T00:27:12.737667052Z");
        let epoch = pbjson_types::Timestamp {
            seconds: 0,
            nanos: 0,
        };
        assert_eq!(rfc3339(&epoch), "1970-01-01T00:00:00Z");
        let leap = pbjson_types::Timestamp {
            seconds: 951_782_400,
            nanos: 0,
        };
        assert_eq!(rfc3339(&leap), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn times_at_the_ends_of_the_protobuf_range_format_without_panic() {
        for (seconds, nanos) in [
            (i64::MAX, i32::MAX),
            (i64::MIN, i32::MIN),
            (i64::MIN, -1),
            (-1, 999_999_999),
        ] {
            let s = rfc3339(&pbjson_types::Timestamp { seconds, nanos });
            assert!(s.ends_with('Z'), "{s}");
        }
    }
}
