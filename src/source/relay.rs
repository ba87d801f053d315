//! The hubble-relay `GetFlows` stream (PRODUCT.md §2, §9): connect, follow, detect a dead
//! stream, reconnect forever with backoff, resume with `since`.
//!
//! Duplicates that a `since` back-fill (or the relay re-subscribing a node with the original
//! request) brings back are dropped later by the pipeline's `(node, uuid)` window.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Status};

use crate::api::flow::{EventTypeFilter, FlowFilter, Verdict};
use crate::api::observer::get_flows_response::ResponseTypes;
use crate::api::observer::observer_client::ObserverClient;
use crate::api::observer::{GetFlowsRequest, GetFlowsResponse};
use crate::backoff::Backoff;
use crate::config::RelayConfig;
use crate::metrics::Metrics;

/// `event_type.type` of an L7 record (DNS flows for name learning).
pub const EVENT_L7: i32 = 129;

/// The largest CA, certificate or key file read.
pub const MAX_TLS_FILE: usize = 1 << 20;

/// Why a stream ended: a bounded label value of `hubble_noise_relay_reconnects_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The relay answered `UNAVAILABLE` (restart, node loss) or the connection reset.
    Unavailable,
    /// The stream ended cleanly although `follow` was set.
    StreamEnded,
    /// Nothing arrived for `relay.idle_timeout`.
    IdleTimeout,
    /// The connection could not be made (refused, timeout, DNS).
    ConnectError,
    /// The TLS setup or handshake failed (bad CA, name, certificate files).
    Tls,
    /// A message could not be decoded.
    Decode,
    /// Anything else.
    Other,
}

impl Reason {
    /// Every reason, so each series can exist at 0 from the start.
    pub const ALL: [Reason; 7] = [
        Reason::Unavailable,
        Reason::StreamEnded,
        Reason::IdleTimeout,
        Reason::ConnectError,
        Reason::Tls,
        Reason::Decode,
        Reason::Other,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Unavailable => "unavailable",
            Reason::StreamEnded => "stream_ended",
            Reason::IdleTimeout => "idle_timeout",
            Reason::ConnectError => "connect_error",
            Reason::Tls => "tls",
            Reason::Decode => "decode",
            Reason::Other => "other",
        }
    }
}

/// A failed attempt: why, and the message to log.
#[derive(Debug)]
struct Failure {
    reason: Reason,
    message: String,
}

/// The full chain of an error as one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// What an error's cause chain says, found by type (never by message text, so a
/// dependency's rewording cannot move a series of `hubble_noise_relay_reconnects_total`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Cause {
    /// A `rustls::Error` is in the chain: certificate, name or handshake trouble, or an alert
    /// from the peer (a client certificate it refused).
    tls: bool,
    /// The connection or stream broke: an I/O error of a connection kind, an HTTP/2 error
    /// (reset, GOAWAY, protocol), a hyper connection error.
    transport: bool,
}

/// How deep a cause chain is followed (a cycle must not hang the follower).
const MAX_CHAIN: usize = 32;

/// I/O error kinds that mean the connection itself failed.
fn is_connection_kind(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        kind,
        K::ConnectionRefused
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::NotConnected
            | K::BrokenPipe
            | K::UnexpectedEof
            | K::TimedOut
            | K::AddrNotAvailable
    )
}

/// Walks `e` and its causes. An `io::Error` that wraps another error is followed into that
/// error (its `source()` would skip it: rustls errors reach us wrapped that way).
fn cause(e: &(dyn std::error::Error + 'static)) -> Cause {
    let mut c = Cause::default();
    let mut cur = Some(e);
    for _ in 0..MAX_CHAIN {
        let Some(err) = cur else { break };
        let mut next = err.source();
        if err.is::<rustls::Error>() {
            c.tls = true;
        } else if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if is_connection_kind(io.kind()) {
                c.transport = true;
            }
            if let Some(inner) = io.get_ref() {
                next = Some(inner);
            }
        } else if err.is::<h2::Error>() {
            c.transport = true;
        } else if let Some(h) = err.downcast_ref::<hyper::Error>() {
            // A user error is a misuse on our side, not the network's.
            if !h.is_user() {
                c.transport = true;
            }
        }
        cur = next;
    }
    c
}

/// Why a connection attempt failed.
fn connect_reason(e: &(dyn std::error::Error + 'static)) -> Reason {
    if cause(e).tls {
        Reason::Tls
    } else {
        Reason::ConnectError
    }
}

/// Why a call or stream failed: the cause chain first (TLS, then a broken connection), then
/// the status code. tonic raises `INTERNAL` (undecodable message), `OUT_OF_RANGE` (message above
/// `relay.max_message_size`) and `RESOURCE_EXHAUSTED` (decompression limit) itself, without a
/// transport cause: those are `decode`.
fn status_reason(s: &Status) -> Reason {
    let c = cause(s);
    if c.tls {
        return Reason::Tls;
    }
    if c.transport {
        return Reason::Unavailable;
    }
    match s.code() {
        Code::Unavailable | Code::Cancelled | Code::Aborted => Reason::Unavailable,
        Code::Internal | Code::OutOfRange | Code::ResourceExhausted => Reason::Decode,
        Code::DeadlineExceeded => Reason::ConnectError,
        _ => Reason::Other,
    }
}

fn classify_status(s: &Status) -> Failure {
    let mut message = format!("{}: {}", s.code(), s.message());
    if let Some(src) = std::error::Error::source(s) {
        message.push_str(": ");
        message.push_str(&chain(src));
    }
    Failure {
        reason: status_reason(s),
        message,
    }
}

/// The request: DROPPED and AUDIT flows, plus L7 DNS flows when names are learned, limited to
/// `relay.nodes`; `since` when resuming.
pub fn request(
    cfg: &RelayConfig,
    dns_learn: bool,
    since: Option<pbjson_types::Timestamp>,
) -> GetFlowsRequest {
    let mut whitelist = vec![FlowFilter {
        verdict: vec![Verdict::Dropped as i32, Verdict::Audit as i32],
        node_name: cfg.nodes.clone(),
        ..Default::default()
    }];
    if dns_learn {
        whitelist.push(FlowFilter {
            protocol: vec!["dns".into()],
            event_type: vec![EventTypeFilter {
                r#type: EVENT_L7,
                ..Default::default()
            }],
            node_name: cfg.nodes.clone(),
            ..Default::default()
        });
    }
    GetFlowsRequest {
        follow: true,
        whitelist,
        since,
        field_mask: cfg.field_mask.then(|| pbjson_types::FieldMask {
            paths: FIELD_MASK.iter().map(|p| (*p).to_string()).collect(),
        }),
        ..Default::default()
    }
}

/// The Flow fields hubble-noise reads (classification, de-duplication, names, output), sent as
/// the request's `field_mask` (`relay.field_mask`, default on): nodes filter, then copy only
/// these into the flows they send, so every hop carries and decodes less. `time`, `node_name`
/// and `uuid` are kept for the relay too: it builds each response's time and node from the
/// masked flow and sorts on them. Every path exists in Cilium 1.18's Flow (`policy_log` is the
/// newest); a node whose schema lacks one refuses the whole request (`relay.field_mask =
/// false` then).
pub const FIELD_MASK: [&str; 20] = [
    "time",
    "verdict",
    "drop_reason",
    "IP",
    "l4",
    "source",
    "destination",
    "Type",
    "node_name",
    "source_names",
    "destination_names",
    "l7",
    "event_type",
    "traffic_direction",
    "drop_reason_desc",
    "is_reply",
    "uuid",
    "egress_denied_by",
    "ingress_denied_by",
    "policy_log",
];

/// Builds the endpoint: address, timeouts, keepalive, TLS (files read now, so a renewed
/// certificate is used on the next connect).
pub fn endpoint(cfg: &RelayConfig) -> Result<Endpoint, EndpointError> {
    let ep = Endpoint::from_shared(cfg.address.clone())
        .map_err(|e| EndpointError::other(format!("relay.address {:?}: {e}", cfg.address)))?
        .connect_timeout(cfg.connect_timeout)
        .http2_keep_alive_interval(cfg.keepalive_interval)
        .keep_alive_timeout(cfg.keepalive_timeout)
        .keep_alive_while_idle(true)
        .tcp_keepalive(Some(cfg.keepalive_interval));
    if !cfg.address.starts_with("https://") {
        return Ok(ep);
    }
    let read = |p: &std::path::Path| {
        crate::load::read_bounded(p, MAX_TLS_FILE, "TLS file")
            .map(String::into_bytes)
            .map_err(|e| EndpointError::tls(format!("{}: {e}", p.display())))
    };
    let mut tls = ClientTlsConfig::new();
    if let Some(ca) = &cfg.ca_file {
        tls = tls.ca_certificate(Certificate::from_pem(read(ca)?));
    }
    if let Some(name) = &cfg.server_name {
        tls = tls.domain_name(name.clone());
    }
    if let (Some(cert), Some(key)) = (&cfg.cert_file, &cfg.key_file) {
        tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
    }
    ep.tls_config(tls)
        .map_err(|e| EndpointError::tls(format!("TLS configuration: {}", chain(&e))))
}

/// An error building the endpoint.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct EndpointError {
    /// `tls` or `other`.
    pub reason: Reason,
    /// What went wrong.
    pub message: String,
}

impl EndpointError {
    fn tls(message: String) -> Self {
        Self {
            reason: Reason::Tls,
            message,
        }
    }
    fn other(message: String) -> Self {
        Self {
            reason: Reason::Other,
            message,
        }
    }
}

/// The time of a response, for `since` on resume.
fn response_time(r: &GetFlowsResponse) -> Option<pbjson_types::Timestamp> {
    match r.response_types.as_ref() {
        Some(ResponseTypes::Flow(f)) => f.time.or(r.time),
        _ => None,
    }
}

/// `t - overlap`, as a timestamp.
fn minus(t: pbjson_types::Timestamp, overlap: Duration) -> pbjson_types::Timestamp {
    let total = i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos)
        - i128::try_from(overlap.as_nanos()).unwrap_or(0);
    let total = total.max(0);
    pbjson_types::Timestamp {
        seconds: i64::try_from(total / 1_000_000_000).unwrap_or(0),
        nanos: i32::try_from(total % 1_000_000_000).unwrap_or(0),
    }
}

/// A node that refuses the request's field mask (a Cilium whose Flow lacks a field of
/// [`FIELD_MASK`]) is reported by the relay as a `NODE_ERROR` whose message says so: that node
/// then sends nothing, so say what to do. (Only a log line: the node gauges and
/// `HubbleNoiseNodesUnavailable` already show the node as down.)
fn warn_if_mask_refused(msg: &GetFlowsResponse) {
    if let Some(ResponseTypes::NodeStatus(n)) = msg.response_types.as_ref() {
        let refused = n.state_change == crate::api::relay::NodeState::NodeError as i32
            && n.message.to_ascii_lowercase().contains("fieldmask");
        if refused {
            tracing::error!(
                nodes = ?n.node_names,
                message = %n.message,
                "nodes refused the field mask (a Cilium before 1.18?); set relay.field_mask = false"
            );
        }
    }
}

/// Follows the relay until `shutdown` completes or `tx` is closed, sending every response to
/// `tx`. Never returns on errors: it reconnects with backoff.
pub async fn follow(
    cfg: RelayConfig,
    dns_learn: bool,
    metrics: Arc<Metrics>,
    tx: mpsc::Sender<GetFlowsResponse>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    tokio::select! {
        () = &mut shutdown => {}
        () = follow_forever(&cfg, dns_learn, &metrics, &tx) => {}
    }
    metrics.set_connected(false);
}

async fn follow_forever(
    cfg: &RelayConfig,
    dns_learn: bool,
    metrics: &Metrics,
    tx: &mpsc::Sender<GetFlowsResponse>,
) {
    let mut backoff = Backoff::new(cfg.backoff_initial, cfg.backoff_max);
    let mut last: Option<pbjson_types::Timestamp> = None;
    let mut last_reason: Option<Reason> = None;
    loop {
        let failure = match attempt(cfg, dns_learn, metrics, tx, &mut last, &mut backoff).await {
            Ok(()) => return, // the receiver is gone: shutting down
            Err(f) => f,
        };
        metrics.set_connected(false);
        metrics.record_reconnect(failure.reason.as_str());
        if failure.reason == Reason::Decode {
            metrics.record_decode_error("grpc");
        }
        let delay = backoff.next_delay();
        if last_reason != Some(failure.reason) {
            tracing::warn!(
                address = %cfg.address,
                reason = failure.reason.as_str(),
                error = %failure.message,
                retry_in = ?delay,
                "relay stream down, reconnecting"
            );
        } else {
            tracing::debug!(
                reason = failure.reason.as_str(),
                error = %failure.message,
                retry_in = ?delay,
                "relay still down"
            );
        }
        last_reason = Some(failure.reason);
        tokio::time::sleep(delay).await;
    }
}

/// One connection and stream. `Ok(())` only when the consumer went away.
async fn attempt(
    cfg: &RelayConfig,
    dns_learn: bool,
    metrics: &Metrics,
    tx: &mpsc::Sender<GetFlowsResponse>,
    last: &mut Option<pbjson_types::Timestamp>,
    backoff: &mut Backoff,
) -> Result<(), Failure> {
    let ep = endpoint(cfg).map_err(|e| Failure {
        reason: e.reason,
        message: e.message,
    })?;
    let channel: Channel = ep.connect().await.map_err(|e| Failure {
        reason: connect_reason(&e),
        message: chain(&e),
    })?;
    let since = last.map(|t| minus(t, cfg.resume_overlap));
    let req = request(cfg, dns_learn, since);
    let mut client = ObserverClient::new(channel).max_decoding_message_size(cfg.max_message_size);
    let opened = tokio::time::timeout(cfg.idle_timeout, client.get_flows(req)).await;
    let mut stream = match opened {
        Err(_) => {
            return Err(Failure {
                reason: Reason::IdleTimeout,
                message: "no response headers".into(),
            });
        }
        Ok(Err(s)) => return Err(classify_status(&s)),
        Ok(Ok(r)) => r.into_inner(),
    };
    metrics.set_connected(true);
    tracing::info!(address = %cfg.address, since = ?since, "relay stream open");
    let mut healthy = false;
    loop {
        let msg = match tokio::time::timeout(cfg.idle_timeout, stream.message()).await {
            Err(_) => {
                return Err(Failure {
                    reason: Reason::IdleTimeout,
                    message: format!("nothing received for {:?}", cfg.idle_timeout),
                });
            }
            Ok(Err(s)) => return Err(classify_status(&s)),
            Ok(Ok(None)) => {
                return Err(Failure {
                    reason: Reason::StreamEnded,
                    message: "the relay ended the stream".into(),
                });
            }
            Ok(Ok(Some(m))) => m,
        };
        if !healthy {
            healthy = true;
            backoff.reset();
        }
        if let Some(t) = response_time(&msg) {
            if last.is_none_or(|l| (t.seconds, t.nanos) > (l.seconds, l.nanos)) {
                *last = Some(t);
            }
        }
        tracing::trace!(node = %msg.node_name, "response");
        if cfg.field_mask {
            warn_if_mask_refused(&msg);
        }
        if tx.send(msg).await.is_err() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    fn status_from(e: impl std::error::Error + Send + Sync + 'static) -> Status {
        Status::from_error(Box::new(e))
    }

    fn rustls_in_io(e: rustls::Error) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }

    #[test]
    fn status_codes_alone_decide_when_there_is_no_cause() {
        let cases = [
            (Status::unavailable("x"), Reason::Unavailable),
            (Status::cancelled("x"), Reason::Unavailable),
            (Status::aborted("x"), Reason::Unavailable),
            (Status::internal("x"), Reason::Decode),
            (Status::out_of_range("x"), Reason::Decode),
            (Status::resource_exhausted("x"), Reason::Decode),
            (Status::deadline_exceeded("x"), Reason::ConnectError),
            (Status::permission_denied("x"), Reason::Other),
            (Status::unknown("x"), Reason::Other),
            (Status::invalid_argument("x"), Reason::Other),
        ];
        for (s, want) in cases {
            assert_eq!(status_reason(&s), want, "{s:?}");
        }
    }

    #[test]
    fn a_message_that_mentions_tls_or_resets_does_not_decide() {
        // Rewordings of an error message cannot move a series: only types and codes count.
        let s = Status::unavailable("tls handshake certificate alert");
        assert_eq!(status_reason(&s), Reason::Unavailable);
        let s = Status::unknown("connection reset by peer; h2 protocol error");
        assert_eq!(status_reason(&s), Reason::Other);
        let s = Status::internal("error reading a body from connection");
        assert_eq!(status_reason(&s), Reason::Decode);
    }

    #[test]
    fn io_errors_of_a_connection_kind_are_unavailable() {
        for kind in [
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::ConnectionAborted,
            io::ErrorKind::BrokenPipe,
            io::ErrorKind::UnexpectedEof,
            io::ErrorKind::NotConnected,
        ] {
            let s = status_from(io::Error::from(kind));
            assert_eq!(s.code(), Code::Unknown, "tonic cannot map a bare io error");
            assert_eq!(status_reason(&s), Reason::Unavailable, "{kind:?}");
        }
        let s = status_from(io::Error::from(io::ErrorKind::PermissionDenied));
        assert_eq!(status_reason(&s), Reason::Other);
    }

    #[test]
    fn a_tls_connection_cut_without_close_notify_is_a_reset_not_tls() {
        // rustls reports that as an UnexpectedEof io error carrying a plain message.
        let e = io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "peer closed connection without sending TLS close_notify",
        );
        assert_eq!(status_reason(&status_from(e)), Reason::Unavailable);
    }

    #[test]
    fn h2_errors_are_unavailable_whatever_code_tonic_gives_them() {
        for r in [
            h2::Reason::PROTOCOL_ERROR,
            h2::Reason::INTERNAL_ERROR,
            h2::Reason::CANCEL,
            h2::Reason::REFUSED_STREAM,
            h2::Reason::NO_ERROR,
            h2::Reason::ENHANCE_YOUR_CALM,
        ] {
            let s = status_from(h2::Error::from(r));
            // INTERNAL, RESOURCE_EXHAUSTED... by code alone these would read as `decode`.
            assert_eq!(status_reason(&s), Reason::Unavailable, "{r:?}: {s:?}");
        }
    }

    #[test]
    fn rustls_errors_are_tls_at_connect_and_mid_stream() {
        let bad_ca = || {
            rustls_in_io(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            ))
        };
        assert_eq!(connect_reason(&bad_ca()), Reason::Tls);
        // Behind a wrapper that only has it as its source.
        #[derive(Debug, thiserror::Error)]
        #[error("transport error")]
        struct Wrapper(#[source] io::Error);
        assert_eq!(connect_reason(&Wrapper(bad_ca())), Reason::Tls);
        // The relay refusing our client certificate: an alert, read on the stream.
        let alert = rustls_in_io(rustls::Error::AlertReceived(
            rustls::AlertDescription::CertificateRequired,
        ));
        let s = status_from(Wrapper(alert));
        assert_eq!(status_reason(&s), Reason::Tls);
        // TLS wins over the code (the channel reconnecting under an UNAVAILABLE call).
        let mut s = Status::unavailable("x");
        assert_eq!(status_reason(&s), Reason::Unavailable);
        s = status_from(Wrapper(rustls_in_io(
            rustls::Error::NoCertificatesPresented,
        )));
        assert_eq!(status_reason(&s), Reason::Tls);
    }

    #[test]
    fn other_connect_failures_are_connect_errors() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(connect_reason(&refused), Reason::ConnectError);
        let dns = io::Error::other("failed to lookup address information");
        assert_eq!(connect_reason(&dns), Reason::ConnectError);
    }

    #[test]
    fn since_is_before_the_last_flow() {
        let t = pbjson_types::Timestamp {
            seconds: 100,
            nanos: 200,
        };
        let s = minus(t, Duration::from_millis(5500));
        assert_eq!((s.seconds, s.nanos), (94, 500_000_200));
    }

    #[test]
    fn request_asks_for_drops_and_dns() {
        let cfg = RelayConfig {
            nodes: vec!["prod/*".into()],
            ..Default::default()
        };
        let r = request(&cfg, true, None);
        assert!(r.follow);
        assert_eq!(r.whitelist.len(), 2);
        assert_eq!(r.whitelist[1].protocol, vec!["dns".to_string()]);
        assert_eq!(r.whitelist[0].node_name, vec!["prod/*".to_string()]);
        assert_eq!(request(&cfg, false, None).whitelist.len(), 1);
    }

    #[test]
    fn request_masks_the_flow_to_the_fields_read_unless_turned_off() {
        let on = request(&RelayConfig::default(), true, None);
        let paths = on.field_mask.expect("a mask by default").paths;
        for kept in ["time", "node_name", "uuid", "policy_log", "source", "l7"] {
            assert!(paths.iter().any(|p| p == kept), "{kept} in {paths:?}");
        }
        assert!(!paths.iter().any(|p| p == "Summary" || p == "aggregate"));
        let off = RelayConfig {
            field_mask: false,
            ..Default::default()
        };
        assert!(request(&off, true, None).field_mask.is_none());
    }
}
