//! Configuration (PRODUCT.md §6): defaults < `config.toml` < `HUBBLE_NOISE_<SECTION>__<KEY>`.
//!
//! The file is parsed with spans so that every error names file, line, column and key. The
//! environment is merged with figment, restricted to the known sections so that the variables
//! Kubernetes injects for a Service named `hubble-noise` (`HUBBLE_NOISE_PORT=tcp://…`,
//! `HUBBLE_NOISE_SERVICE_HOST`) cannot break start-up.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::Serialized;
use serde::{Deserialize, Serialize};

use crate::located::{LocatedError, from_toml, span_of};
use crate::rules::endpoint::{EndpointSpec, default_dns_servers};

/// The sections an environment variable may address.
pub const SECTIONS: [&str; 5] = ["relay", "metrics", "classify", "dns", "log"];

/// Context labels `metrics.labels` may add to `hubble_noise_flows_total`.
pub const CONTEXT_LABELS: [&str; 11] = [
    "source_namespace",
    "source_workload",
    "source_pod",
    "destination_namespace",
    "destination_workload",
    "destination_pod",
    "destination_port",
    "destination_name",
    "drop_reason",
    "node",
    "attribution",
];

/// The whole configuration.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the flows come from.
    pub relay: RelayConfig,
    /// The Prometheus endpoint.
    pub metrics: MetricsConfig,
    /// How flows are classified.
    pub classify: ClassifyConfig,
    /// Names learned from DNS answers.
    pub dns: DnsConfig,
    /// Logging.
    pub log: LogConfig,
    /// Inline rules (read by the rule loader, evaluated before rule files).
    #[serde(skip_serializing)]
    pub rule: Option<Vec<toml::Value>>,
}

/// `[relay]`: the hubble-relay connection.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RelayConfig {
    /// `http://host:port` (plaintext) or `https://host:port` (TLS, mTLS with cert and key).
    pub address: String,
    /// TLS server name to verify, e.g. `ui.hubble-relay.cilium.io`; default: the host.
    pub server_name: Option<String>,
    /// CA bundle that signed the relay's certificate (PEM).
    pub ca_file: Option<PathBuf>,
    /// Client certificate for mTLS (PEM).
    pub cert_file: Option<PathBuf>,
    /// Client key for mTLS (PEM).
    pub key_file: Option<PathBuf>,
    /// Node-name patterns (`cluster/*`) sent as the server-side node filter.
    pub nodes: Vec<String>,
    /// How long to wait for a connection.
    #[serde(with = "duration_str")]
    pub connect_timeout: Duration,
    /// First reconnect delay.
    #[serde(with = "duration_str")]
    pub backoff_initial: Duration,
    /// Longest reconnect delay.
    #[serde(with = "duration_str")]
    pub backoff_max: Duration,
    /// HTTP/2 keepalive ping interval: a dead connection is noticed after this plus the timeout.
    #[serde(with = "duration_str")]
    pub keepalive_interval: Duration,
    /// How long a keepalive ping may go unanswered.
    #[serde(with = "duration_str")]
    pub keepalive_timeout: Duration,
    /// On reconnect, ask for flows from this long before the last flow seen.
    #[serde(with = "duration_str")]
    pub resume_overlap: Duration,
    /// A stream that delivers nothing (no flow, no node status) for this long is taken for dead
    /// and reopened (with `since`, so nothing is lost). Catches half-dead streams that HTTP/2
    /// keepalive does not.
    #[serde(with = "duration_str")]
    pub idle_timeout: Duration,
    /// Ask the relay for only the Flow fields hubble-noise reads (the request's `field_mask`):
    /// less to send and decode on every hop. Turn off for Cilium before 1.18, whose nodes
    /// refuse a mask naming `policy_log`.
    pub field_mask: bool,
    /// The largest relay message accepted, in bytes (default 16 MiB). A larger one is a
    /// decode error (`hubble_noise_decode_errors_total{kind="grpc"}`) and the stream is
    /// reopened; it is never buffered in full.
    pub max_message_size: usize,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            address: "http://localhost:4245".into(),
            server_name: None,
            ca_file: None,
            cert_file: None,
            key_file: None,
            nodes: Vec::new(),
            connect_timeout: Duration::from_secs(5),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            keepalive_interval: Duration::from_secs(20),
            keepalive_timeout: Duration::from_secs(10),
            resume_overlap: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(300),
            field_mask: true,
            max_message_size: 16 << 20,
        }
    }
}

/// `[metrics]`: the Prometheus endpoint.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Listen address of `/metrics`, `/healthz`, `/readyz`, `/-/reload`.
    pub listen: String,
    /// Context labels added to `hubble_noise_flows_total`.
    pub labels: Vec<String>,
    /// Label sets of `hubble_noise_flows_total` before new ones go to `__overflow__`.
    pub max_series: usize,
    /// Exemplars (flow uuid, node) on the unexpected series.
    pub exemplars: bool,
    /// A client whose response write stays blocked this long (it stopped reading) is
    /// disconnected and counted in `hubble_noise_http_clients_stalled_total`.
    #[serde(with = "duration_str")]
    pub client_stall_timeout: Duration,
    /// HTTP connections served at once; a further client waits in the listen backlog until
    /// one closes (idle clients are dropped after 10 s without a request).
    pub max_connections: usize,
    /// `/healthz` fails once the pipeline has taken no work for this long (it is stuck or
    /// gone; an idle pipeline still reports in).
    #[serde(with = "duration_str")]
    pub pipeline_stall_timeout: Duration,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:9967".into(),
            labels: vec!["source_namespace".into(), "destination_namespace".into()],
            max_series: 10_000,
            exemplars: true,
            client_stall_timeout: Duration::from_secs(10),
            max_connections: 64,
            pipeline_stall_timeout: Duration::from_secs(30),
        }
    }
}

/// `[classify]`: how flows are classified.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ClassifyConfig {
    /// Policy log values (exact, or globs with `*`) that mark a denial as expected.
    pub expected_log_tags: Vec<String>,
    /// Rule files, evaluated in order after inline rules. Relative to the config's folder.
    pub rule_files: Vec<PathBuf>,
    /// CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy files or folders (YAML,
    /// multi-document or `kind: List`), for steps 2 and 3 of classification (docs/POLICIES.md).
    pub policy_files: Vec<PathBuf>,
    /// Count the drop notification (type 1) of a policy denial as well as its policy verdict.
    pub count_policy_drop_notifications: bool,
    /// How many recent `(node, uuid)` keys are remembered to skip duplicates.
    pub dedup_window: usize,
}

impl Default for ClassifyConfig {
    fn default() -> Self {
        Self {
            expected_log_tags: Vec::new(),
            rule_files: Vec::new(),
            policy_files: Vec::new(),
            count_policy_drop_notifications: false,
            dedup_window: 100_000,
        }
    }
}

/// `[dns]`: names learned from DNS answers.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DnsConfig {
    /// Learn names from L7 DNS responses.
    pub learn: bool,
    /// `endpoint`: a name is used only for the pod that resolved it; `cluster`: for any pod.
    pub scope: DnsScope,
    /// Most (endpoint, IP, name) entries kept; the oldest go first.
    pub max_entries: usize,
    /// A floor on the answer's TTL.
    #[serde(with = "duration_str")]
    pub min_ttl: Duration,
    /// The DNS servers whose answers are learned, as endpoint selectors (namespace, pod,
    /// workload, labels, entity, cidr); any other server's answers are ignored and counted.
    /// Default: the `kube-system` pods labelled `k8s-app=kube-dns` or `k8s-app=node-local-dns`,
    /// and `host`.
    pub servers: Vec<EndpointSpec>,
}

impl Default for DnsConfig {
    fn default() -> Self {
        Self {
            learn: true,
            scope: DnsScope::Endpoint,
            max_entries: 100_000,
            min_ttl: Duration::ZERO,
            servers: default_dns_servers(),
        }
    }
}

/// Who may use a learned name.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DnsScope {
    /// Only the pod that resolved it.
    #[default]
    Endpoint,
    /// Any pod.
    Cluster,
}

/// `[log]`: logging.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `hubble_noise=debug`. `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// A loaded configuration and where it came from.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The merged, validated configuration, with paths made relative to the config's folder.
    pub config: Config,
    /// The config file, when one was read.
    pub path: Option<PathBuf>,
    /// Its text (for inline rules).
    pub text: String,
}

/// An error while loading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read the config file", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A value in the file is wrong.
    #[error(transparent)]
    File(#[from] LocatedError),
    /// An environment variable is wrong.
    #[error("environment: {0}")]
    Env(String),
}

impl Config {
    /// Loads `path` (or only defaults and the environment when `path` is `None`), then the
    /// environment, then validates.
    pub fn load(path: Option<&Path>) -> Result<Loaded, ConfigError> {
        Self::load_with_env(path, std::env::vars())
    }

    /// [`Config::load`] with an explicit environment (for tests).
    pub fn load_with_env(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Loaded, ConfigError> {
        match path {
            Some(p) => {
                let text =
                    crate::read::read_bounded(p, crate::rules::MAX_FILE_BYTES, "config file")
                        .map_err(|source| ConfigError::Read {
                            path: p.to_path_buf(),
                            source,
                        })?;
                Self::from_text(p, text, env)
            }
            None => Self::merge_env(Config::default(), None, String::new(), env),
        }
    }

    /// The configuration in `text`, read from the file `path` (named in errors; relative paths
    /// in it are made relative to its folder), then the environment, then validated: what
    /// [`Config::load_with_env`] does once the file is read.
    pub fn from_text(
        path: &Path,
        text: String,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Loaded, ConfigError> {
        let cfg: Config = from_toml(path, &text)?;
        cfg.validate(path, &text)?;
        Self::merge_env(cfg, Some(path), text, env)
    }

    fn merge_env(
        file_cfg: Config,
        path: Option<&Path>,
        text: String,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Loaded, ConfigError> {
        let rule = file_cfg.rule.clone();
        let env: Vec<(String, String)> = env
            .into_iter()
            .filter_map(|(k, v)| {
                let rest = k.strip_prefix("HUBBLE_NOISE_")?;
                let (section, key) = rest.split_once("__")?;
                let section = section.to_ascii_lowercase();
                SECTIONS
                    .contains(&section.as_str())
                    .then(|| (format!("{section}__{}", key.to_ascii_lowercase()), v))
            })
            .collect();
        let mut config = file_cfg;
        if !env.is_empty() {
            let fig = env
                .iter()
                .fold(Figment::from(Serialized::defaults(&config)), |f, (k, v)| {
                    f.merge(Serialized::default(&k.replace("__", "."), env_value(v)))
                });
            config = fig
                .extract::<Config>()
                .map_err(|e| ConfigError::Env(e.to_string()))?;
            config.rule = rule;
            let p = path.unwrap_or(Path::new("environment"));
            config
                .validate(p, "")
                .map_err(|e| ConfigError::Env(format!("{}: {}", e.key, e.message)))?;
        }
        if let Some(dir) = path.and_then(Path::parent) {
            config.resolve_paths(dir);
        }
        Ok(Loaded {
            config,
            path: path.map(Path::to_path_buf),
            text,
        })
    }

    /// Makes relative paths relative to the config file's folder.
    fn resolve_paths(&mut self, dir: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        self.classify.rule_files.iter_mut().for_each(fix);
        self.classify.policy_files.iter_mut().for_each(fix);
        for p in [
            &mut self.relay.ca_file,
            &mut self.relay.cert_file,
            &mut self.relay.key_file,
        ]
        .into_iter()
        .flatten()
        {
            fix(p);
        }
    }

    /// Checks values that types alone do not constrain.
    fn validate(&self, file: &Path, text: &str) -> Result<(), LocatedError> {
        let err = |keys: &[&str], msg: String| {
            LocatedError::at(file, text, span_of(text, keys), keys.join("."), msg)
        };
        let a = &self.relay.address;
        if !(a.starts_with("http://") || a.starts_with("https://")) {
            return Err(err(
                &["relay", "address"],
                format!("{a:?} must start with http:// (plaintext) or https:// (TLS)"),
            ));
        }
        if self.relay.cert_file.is_some() != self.relay.key_file.is_some() {
            return Err(err(
                &["relay", "cert_file"],
                "cert_file and key_file go together (mTLS)".into(),
            ));
        }
        if self.relay.backoff_initial.is_zero()
            || self.relay.backoff_max < self.relay.backoff_initial
        {
            return Err(err(
                &["relay", "backoff_max"],
                "backoff_initial must be above 0 and at most backoff_max".into(),
            ));
        }
        if self.relay.max_message_size < 1024 {
            return Err(err(
                &["relay", "max_message_size"],
                "must be at least 1024 bytes".into(),
            ));
        }
        if self.relay.idle_timeout.is_zero() {
            return Err(err(&["relay", "idle_timeout"], "must be above 0".into()));
        }
        if self.metrics.listen.parse::<SocketAddr>().is_err() {
            return Err(err(
                &["metrics", "listen"],
                format!(
                    "{:?} is not an address like 0.0.0.0:9967",
                    self.metrics.listen
                ),
            ));
        }
        for (i, l) in self.metrics.labels.iter().enumerate() {
            if !CONTEXT_LABELS.contains(&l.as_str()) {
                return Err(err(
                    &["metrics", "labels"],
                    format!("unknown label {l:?}; known: {}", CONTEXT_LABELS.join(", ")),
                ));
            }
            // A label twice in one series makes the whole exposition invalid.
            if self.metrics.labels[..i].contains(l) {
                return Err(err(
                    &["metrics", "labels"],
                    format!("label {l:?} is listed twice"),
                ));
            }
        }
        if self.metrics.client_stall_timeout.is_zero() {
            return Err(err(
                &["metrics", "client_stall_timeout"],
                "must be above 0".into(),
            ));
        }
        if self.metrics.pipeline_stall_timeout.is_zero() {
            return Err(err(
                &["metrics", "pipeline_stall_timeout"],
                "must be above 0".into(),
            ));
        }
        if self.metrics.max_connections == 0 {
            return Err(err(
                &["metrics", "max_connections"],
                "must be at least 1".into(),
            ));
        }
        if self.metrics.max_series == 0 {
            return Err(err(&["metrics", "max_series"], "must be at least 1".into()));
        }
        if self.classify.dedup_window == 0 {
            return Err(err(
                &["classify", "dedup_window"],
                "must be at least 1".into(),
            ));
        }
        // Values at the ends of their types would overflow the arithmetic done with them
        // (backoff growth, deadlines, `2 * max_entries`): refuse them with the key's name.
        let durations = [
            (
                ["relay", "backoff_initial"],
                self.relay.backoff_initial,
                MAX_BACKOFF,
            ),
            (
                ["relay", "backoff_max"],
                self.relay.backoff_max,
                MAX_BACKOFF,
            ),
            (
                ["relay", "connect_timeout"],
                self.relay.connect_timeout,
                MAX_DURATION,
            ),
            (
                ["relay", "keepalive_interval"],
                self.relay.keepalive_interval,
                MAX_DURATION,
            ),
            (
                ["relay", "keepalive_timeout"],
                self.relay.keepalive_timeout,
                MAX_DURATION,
            ),
            (
                ["relay", "resume_overlap"],
                self.relay.resume_overlap,
                MAX_DURATION,
            ),
            (
                ["relay", "idle_timeout"],
                self.relay.idle_timeout,
                MAX_DURATION,
            ),
            (
                ["metrics", "client_stall_timeout"],
                self.metrics.client_stall_timeout,
                MAX_DURATION,
            ),
            (
                ["metrics", "pipeline_stall_timeout"],
                self.metrics.pipeline_stall_timeout,
                MAX_DURATION,
            ),
            (["dns", "min_ttl"], self.dns.min_ttl, MAX_DURATION),
        ];
        for (keys, d, max) in durations {
            if d > max {
                return Err(err(
                    &keys,
                    format!("must be at most {}", duration_str::format(max)),
                ));
            }
        }
        let sizes = [
            (["metrics", "max_series"], self.metrics.max_series),
            // Also the permits of a semaphore, which panics past 2^61 - 1.
            (["metrics", "max_connections"], self.metrics.max_connections),
            (["classify", "dedup_window"], self.classify.dedup_window),
            (["dns", "max_entries"], self.dns.max_entries),
        ];
        for (keys, n) in sizes {
            if n > MAX_COUNT {
                return Err(err(&keys, format!("must be at most {MAX_COUNT}")));
            }
        }
        for (i, server) in self.dns.servers.iter().enumerate() {
            if let Err(e) = server.compile() {
                let n = i.to_string();
                let (key, span) = if e.key.is_empty() {
                    (
                        format!("dns.servers[{i}]"),
                        span_of(text, &["dns", "servers", &n]),
                    )
                } else {
                    let at = span_of(text, &["dns", "servers", &n, e.key])
                        .or_else(|| span_of(text, &["dns", "servers", &n]));
                    (format!("dns.servers[{i}].{}", e.key), at)
                };
                return Err(LocatedError::at(file, text, span, key, e.message));
            }
        }
        for t in &self.classify.expected_log_tags {
            if t.is_empty() || t.len() > 255 {
                return Err(err(
                    &["classify", "expected_log_tags"],
                    format!("{t:?}: a tag is 1 to 255 characters"),
                ));
            }
        }
        Ok(())
    }
}

/// Environment values are strings; lists are written `a,b` or as TOML (`["a","b"]`).
fn env_value(v: &str) -> figment::value::Value {
    let t = v.trim();
    if let Ok(val) = toml::from_str::<toml::Table>(&format!("v = {t}")) {
        if let Some(x) = val.get("v") {
            if let Ok(fv) = figment::value::Value::serialize(x) {
                return fv;
            }
        }
    }
    figment::value::Value::from(v.to_owned())
}

/// The longest reconnect backoff bound accepted (`relay.backoff_initial`, `backoff_max`).
pub const MAX_BACKOFF: Duration = Duration::from_secs(86_400);

/// The longest timeout, interval or TTL floor accepted (365 days).
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 86_400);

/// The largest count accepted for `metrics.max_series`, `classify.dedup_window` and
/// `dns.max_entries` (memory grows with each).
pub const MAX_COUNT: usize = 100_000_000;

/// Durations as strings: `500ms`, `5s`, `2m`, `1h`, `1h30m`.
pub mod duration_str {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Parses `500ms`, `5s`, `2m`, `1h`, `1h30m`, `0s`, `0`.
    pub fn parse(s: &str) -> Result<Duration, String> {
        let s = s.trim();
        if s == "0" {
            return Ok(Duration::ZERO);
        }
        let mut total = Duration::ZERO;
        let mut rest = s;
        if rest.is_empty() {
            return Err("empty duration".into());
        }
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(format!("{s:?} is not a duration like 5s, 500ms, 2m, 1h"));
            }
            let n: u64 = rest[..digits]
                .parse()
                .map_err(|_| format!("{s:?}: number too large"))?;
            rest = &rest[digits..];
            let unit = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let d = match &rest[..unit] {
                "ms" => Duration::from_millis(n),
                "s" => Duration::from_secs(n),
                "m" => Duration::from_secs(n.saturating_mul(60)),
                "h" => Duration::from_secs(n.saturating_mul(3600)),
                "d" => Duration::from_secs(n.saturating_mul(86_400)),
                _ => return Err(format!("{s:?} is not a duration like 5s, 500ms, 2m, 1h")),
            };
            total = total.saturating_add(d);
            rest = &rest[unit..];
        }
        Ok(total)
    }

    /// Formats as the shortest exact form (`1500ms`, `5s`).
    pub fn format(d: Duration) -> String {
        if d.subsec_millis() != 0 || d.as_secs() == 0 && !d.is_zero() {
            format!("{}ms", d.as_millis())
        } else {
            format!("{}s", d.as_secs())
        }
    }

    /// serde: serialize.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*d))
    }

    /// serde: deserialize.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(serde::de::Error::custom)
    }
}
