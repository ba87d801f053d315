//! The configuration's schema: one struct per section (`[relay]`, `[metrics]`, `[classify]`,
//! `[dns]`, `[log]`, `[triage]`, `[export]`), each with its defaults, as serde reads them from
//! TOML and the environment.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration_str;
use crate::rules::endpoint::{EndpointSpec, default_dns_servers};

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
    /// The triage store, page and API (PRODUCT.md §12).
    pub triage: TriageConfig,
    /// The flow log: classified flows as JSON lines.
    pub export: ExportConfig,
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
    /// TLS, mTLS and basic auth for every HTTP endpoint: a YAML file in the format of the
    /// Prometheus exporter toolkit's `web-config.yml` (`tls_server_config`,
    /// `basic_auth_users`, `http_server_config.headers`), reloaded like the rules. `/healthz`
    /// and `/readyz` stay open. Relative to the config's folder; default: plain HTTP, open.
    pub web_config_file: Option<PathBuf>,
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
            web_config_file: None,
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

/// `[triage]`: the recent flows `run` keeps for its page and API (PRODUCT.md §12).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TriageConfig {
    /// `false` removes the store, the page and the API.
    pub enabled: bool,
    /// Flows kept at most (unexpected, and the expected ones kept per rule), oldest evicted.
    pub max_flows: usize,
    /// Bytes the kept flows may take at most (an estimate of their heap size).
    pub max_bytes: usize,
    /// Expected flows kept per rule (the last few, for audits of what a rule hides).
    pub per_rule: usize,
    /// Groups of unexpected flows tracked at most; the one seen least recently goes first.
    pub max_groups: usize,
}

impl Default for TriageConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_flows: 10_000,
            max_bytes: 8 << 20,
            per_rule: 5,
            max_groups: 2_000,
        }
    }
}
/// `[export]`: the flow log (PRODUCT.md §12), one JSON object per classified flow of `class`,
/// to standard output or a file rotated by size. Read at start only (a reload leaves it).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ExportConfig {
    /// Write the flow log.
    pub enabled: bool,
    /// Which flows: `unexpected` (default), `expected` or `all`.
    pub class: ExportClass,
    /// `-` for standard output, else a file (relative to the config file's folder).
    pub path: PathBuf,
    /// The file is rotated before a line would take it past this many bytes.
    pub max_size: u64,
    /// Rotated files kept (`path.1` newest … `path.N` oldest); 0 keeps none.
    pub max_files: usize,
    /// Lines waiting for the writer; when it is full, new lines are dropped and counted.
    pub queue: usize,
}

impl Default for ExportConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            class: ExportClass::Unexpected,
            path: PathBuf::from("-"),
            max_size: 100 << 20,
            max_files: 3,
            queue: 10_000,
        }
    }
}

impl ExportConfig {
    /// True when the flow log goes to standard output (`path = "-"`).
    pub fn to_stdout(&self) -> bool {
        self.path.as_os_str() == "-"
    }
}

/// The flows the flow log carries.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ExportClass {
    /// Only the unexpected ones.
    #[default]
    Unexpected,
    /// Only the expected ones.
    Expected,
    /// Both.
    All,
}
