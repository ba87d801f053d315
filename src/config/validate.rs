//! The checks types alone do not make, section by section: address forms, keys that go
//! together, the known context labels, and bounds on every duration and count (values at the
//! ends of their types would overflow the arithmetic done with them). The first failed check
//! is the error, naming file, line, column and key.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::duration_str;
use super::schema::{
    CONTEXT_LABELS, ClassifyConfig, Config, DnsConfig, ExportConfig, MetricsConfig, RelayConfig,
};
use crate::located::{LocatedError, span_of};

/// The longest reconnect backoff bound accepted (`relay.backoff_initial`, `backoff_max`).
pub const MAX_BACKOFF: Duration = Duration::from_secs(86_400);

/// The longest timeout, interval or TTL floor accepted (365 days).
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 86_400);

/// The largest count accepted for `metrics.max_series`, `classify.dedup_window` and
/// `dns.max_entries` (memory grows with each).
pub const MAX_COUNT: usize = 100_000_000;

/// The smallest `export.max_size` accepted, in bytes (a flow line is a few hundred).
pub const MIN_EXPORT_SIZE: u64 = 1024;

/// The most lines `export.queue` may hold (each is a few hundred bytes of memory).
pub const MAX_EXPORT_QUEUE: usize = 1_000_000;

/// The most rotated files `export.max_files` may keep.
pub const MAX_EXPORT_FILES: usize = 1000;

/// Where a failed check points: the file and its text (empty for the environment).
struct At<'a> {
    file: &'a Path,
    text: &'a str,
}

impl At<'_> {
    /// The error `msg` at the key `keys` (`["relay", "address"]`).
    fn err(&self, keys: &[&str], msg: String) -> LocatedError {
        LocatedError::at(
            self.file,
            self.text,
            span_of(self.text, keys),
            keys.join("."),
            msg,
        )
    }
}

impl Config {
    /// Checks values that types alone do not constrain; `text` is the file's text, for the
    /// error's line and column.
    pub(super) fn validate(&self, file: &Path, text: &str) -> Result<(), LocatedError> {
        let at = At { file, text };
        relay(&self.relay, &at)?;
        metrics(&self.metrics, &at)?;
        dedup_window(&self.classify, &at)?;
        durations(self, &at)?;
        sizes(self, &at)?;
        dns_servers(&self.dns, &at)?;
        export(&self.export, &at)?;
        log_tags(&self.classify, &at)
    }
}

/// `[relay]`: the address scheme, mTLS files in pairs, backoff, message size, idle timeout.
fn relay(relay: &RelayConfig, at: &At<'_>) -> Result<(), LocatedError> {
    let a = &relay.address;
    if !(a.starts_with("http://") || a.starts_with("https://")) {
        return Err(at.err(
            &["relay", "address"],
            format!("{a:?} must start with http:// (plaintext) or https:// (TLS)"),
        ));
    }
    if relay.cert_file.is_some() != relay.key_file.is_some() {
        return Err(at.err(
            &["relay", "cert_file"],
            "cert_file and key_file go together (mTLS)".into(),
        ));
    }
    if relay.backoff_initial.is_zero() || relay.backoff_max < relay.backoff_initial {
        return Err(at.err(
            &["relay", "backoff_max"],
            "backoff_initial must be above 0 and at most backoff_max".into(),
        ));
    }
    if relay.max_message_size < 1024 {
        return Err(at.err(
            &["relay", "max_message_size"],
            "must be at least 1024 bytes".into(),
        ));
    }
    if relay.idle_timeout.is_zero() {
        return Err(at.err(&["relay", "idle_timeout"], "must be above 0".into()));
    }
    Ok(())
}

/// `[metrics]`: the listen address, known labels each once, timeouts and counts above 0.
fn metrics(m: &MetricsConfig, at: &At<'_>) -> Result<(), LocatedError> {
    if m.listen.parse::<SocketAddr>().is_err() {
        return Err(at.err(
            &["metrics", "listen"],
            format!("{:?} is not an address like 0.0.0.0:9967", m.listen),
        ));
    }
    for (i, l) in m.labels.iter().enumerate() {
        if !CONTEXT_LABELS.contains(&l.as_str()) {
            return Err(at.err(
                &["metrics", "labels"],
                format!("unknown label {l:?}; known: {}", CONTEXT_LABELS.join(", ")),
            ));
        }
        // A label twice in one series makes the whole exposition invalid.
        if m.labels[..i].contains(l) {
            return Err(at.err(
                &["metrics", "labels"],
                format!("label {l:?} is listed twice"),
            ));
        }
    }
    if m.client_stall_timeout.is_zero() {
        return Err(at.err(
            &["metrics", "client_stall_timeout"],
            "must be above 0".into(),
        ));
    }
    if m.pipeline_stall_timeout.is_zero() {
        return Err(at.err(
            &["metrics", "pipeline_stall_timeout"],
            "must be above 0".into(),
        ));
    }
    if m.max_connections == 0 {
        return Err(at.err(&["metrics", "max_connections"], "must be at least 1".into()));
    }
    if m.max_series == 0 {
        return Err(at.err(&["metrics", "max_series"], "must be at least 1".into()));
    }
    Ok(())
}

/// `classify.dedup_window` is at least 1.
fn dedup_window(c: &ClassifyConfig, at: &At<'_>) -> Result<(), LocatedError> {
    if c.dedup_window == 0 {
        return Err(at.err(&["classify", "dedup_window"], "must be at least 1".into()));
    }
    Ok(())
}

/// Every duration at most its bound (backoff growth and deadlines must not overflow).
fn durations(cfg: &Config, at: &At<'_>) -> Result<(), LocatedError> {
    let (r, m) = (&cfg.relay, &cfg.metrics);
    let durations = [
        (["relay", "backoff_initial"], r.backoff_initial, MAX_BACKOFF),
        (["relay", "backoff_max"], r.backoff_max, MAX_BACKOFF),
        (
            ["relay", "connect_timeout"],
            r.connect_timeout,
            MAX_DURATION,
        ),
        (
            ["relay", "keepalive_interval"],
            r.keepalive_interval,
            MAX_DURATION,
        ),
        (
            ["relay", "keepalive_timeout"],
            r.keepalive_timeout,
            MAX_DURATION,
        ),
        (["relay", "resume_overlap"], r.resume_overlap, MAX_DURATION),
        (["relay", "idle_timeout"], r.idle_timeout, MAX_DURATION),
        (
            ["metrics", "client_stall_timeout"],
            m.client_stall_timeout,
            MAX_DURATION,
        ),
        (
            ["metrics", "pipeline_stall_timeout"],
            m.pipeline_stall_timeout,
            MAX_DURATION,
        ),
        (["dns", "min_ttl"], cfg.dns.min_ttl, MAX_DURATION),
    ];
    for (keys, d, max) in durations {
        if d > max {
            return Err(at.err(
                &keys,
                format!("must be at most {}", duration_str::format(max)),
            ));
        }
    }
    Ok(())
}

/// Every count at most [`MAX_COUNT`] (`2 * max_entries` and the like must not overflow).
fn sizes(cfg: &Config, at: &At<'_>) -> Result<(), LocatedError> {
    let sizes = [
        (["metrics", "max_series"], cfg.metrics.max_series),
        // Also the permits of a semaphore, which panics past 2^61 - 1.
        (["metrics", "max_connections"], cfg.metrics.max_connections),
        (["classify", "dedup_window"], cfg.classify.dedup_window),
        (["dns", "max_entries"], cfg.dns.max_entries),
        (["triage", "max_flows"], cfg.triage.max_flows),
        (["triage", "max_bytes"], cfg.triage.max_bytes),
        (["triage", "per_rule"], cfg.triage.per_rule),
        (["triage", "max_groups"], cfg.triage.max_groups),
    ];
    for (keys, n) in sizes {
        if n > MAX_COUNT {
            return Err(at.err(&keys, format!("must be at most {MAX_COUNT}")));
        }
    }
    Ok(())
}

/// `dns.servers`: each selector compiles; the error names the server's index and key.
fn dns_servers(dns: &DnsConfig, at: &At<'_>) -> Result<(), LocatedError> {
    let text = at.text;
    for (i, server) in dns.servers.iter().enumerate() {
        if let Err(e) = server.compile() {
            let n = i.to_string();
            let (key, span) = if e.key.is_empty() {
                (
                    format!("dns.servers[{i}]"),
                    span_of(text, &["dns", "servers", &n]),
                )
            } else {
                let place = span_of(text, &["dns", "servers", &n, e.key])
                    .or_else(|| span_of(text, &["dns", "servers", &n]));
                (format!("dns.servers[{i}].{}", e.key), place)
            };
            return Err(LocatedError::at(at.file, text, span, key, e.message));
        }
    }
    Ok(())
}

/// `classify.expected_log_tags`: each tag 1 to 255 characters.
fn log_tags(c: &ClassifyConfig, at: &At<'_>) -> Result<(), LocatedError> {
    for t in &c.expected_log_tags {
        if t.is_empty() || t.len() > 255 {
            return Err(at.err(
                &["classify", "expected_log_tags"],
                format!("{t:?}: a tag is 1 to 255 characters"),
            ));
        }
    }
    Ok(())
}

/// `[export]`: a path, a size that holds a line, a queue of at least one line, bounds.
fn export(e: &ExportConfig, at: &At<'_>) -> Result<(), LocatedError> {
    if e.path.as_os_str().is_empty() {
        return Err(at.err(
            &["export", "path"],
            "must be \"-\" (standard output) or a file".into(),
        ));
    }
    if !e.to_stdout() && e.path.file_name().is_none() {
        return Err(at.err(
            &["export", "path"],
            format!("{:?} does not name a file", e.path),
        ));
    }
    if e.max_size < MIN_EXPORT_SIZE {
        return Err(at.err(
            &["export", "max_size"],
            format!("must be at least {MIN_EXPORT_SIZE} bytes"),
        ));
    }
    if e.max_files > MAX_EXPORT_FILES {
        return Err(at.err(
            &["export", "max_files"],
            format!("must be at most {MAX_EXPORT_FILES}"),
        ));
    }
    if e.queue == 0 || e.queue > MAX_EXPORT_QUEUE {
        return Err(at.err(
            &["export", "queue"],
            format!("must be 1 to {MAX_EXPORT_QUEUE} lines"),
        ));
    }
    Ok(())
}
