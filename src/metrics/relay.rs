//! What comes from hubble-relay besides flows: whether the stream is open, reconnects by
//! [`ReconnectReason`], the last reported state of each node behind it (bounded; a flow from
//! a node is news that it is connected), events lost upstream by source, and the time of the
//! last flow.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::common::{FGauge, Labels, labels, saturating_add};
use crate::api::flow::{LostEvent, LostEventSource};
use crate::api::observer::GetFlowsResponse;
use crate::api::observer::get_flows_response::ResponseTypes;
use crate::api::relay::{NodeState, NodeStatusEvent};
use crate::enums::Open;
use crate::flow::unix_seconds;

/// The most nodes remembered for `hubble_noise_relay_nodes`; status events about further nodes
/// are ignored.
pub const MAX_NODES: usize = 10_000;

/// The most lost-event sources the schema lacks that get a series of their own (labelled
/// with their number); events from further ones count under `source="other"`.
pub const MAX_LOST_SOURCES: usize = 16;

/// Why a stream ended: a bounded label value of `hubble_noise_relay_reconnects_total`. The
/// relay source finds it from the error's type (`source::relay`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReconnectReason {
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

impl ReconnectReason {
    /// Every reason, so each series can exist at 0 from the start.
    pub const ALL: [ReconnectReason; 7] = [
        ReconnectReason::Unavailable,
        ReconnectReason::StreamEnded,
        ReconnectReason::IdleTimeout,
        ReconnectReason::ConnectError,
        ReconnectReason::Tls,
        ReconnectReason::Decode,
        ReconnectReason::Other,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ReconnectReason::Unavailable => "unavailable",
            ReconnectReason::StreamEnded => "stream_ended",
            ReconnectReason::IdleTimeout => "idle_timeout",
            ReconnectReason::ConnectError => "connect_error",
            ReconnectReason::Tls => "tls",
            ReconnectReason::Decode => "decode",
            ReconnectReason::Other => "other",
        }
    }
}

/// The label value of a lost-event source: the enum name in lower case, or the number for a
/// source the schema lacks (a newer Cilium).
pub fn lost_source_name(source: i32) -> String {
    Open::<LostEventSource>::new(source)
        .label()
        .to_ascii_lowercase()
}

fn node_state_name(s: NodeState) -> Option<&'static str> {
    match s {
        NodeState::NodeConnected => Some("connected"),
        NodeState::NodeUnavailable => Some("unavailable"),
        NodeState::NodeGone => Some("gone"),
        NodeState::NodeError => Some("error"),
        NodeState::UnknownNodeState => None,
    }
}

/// `hubble_noise_relay_*`, `hubble_noise_lost_events_total` and
/// `hubble_noise_last_flow_timestamp_seconds`, with the node states behind them.
pub(super) struct RelayMetrics {
    connected: Gauge,
    reconnects: Family<Labels, Counter>,
    nodes: Family<Labels, Gauge>,
    node_states: Mutex<HashMap<String, NodeState>>,
    /// Known nodes that are not connected: while 0, a flow costs no lock.
    nodes_down: AtomicUsize,
    lost_events: Family<Labels, Counter>,
    /// Lost-event sources the schema lacks that have a series of their own.
    lost_sources: Mutex<HashSet<i32>>,
    last_flow: FGauge,
}

impl RelayMetrics {
    /// Registers the relay's metrics, each bounded label value at 0 (so that rate() and alerts
    /// see the first increase).
    pub(super) fn register(r: &mut Registry) -> Self {
        let connected = Gauge::default();
        r.register(
            "relay_connected",
            "1 while the GetFlows stream to hubble-relay is open",
            connected.clone(),
        );
        let reconnects = Family::<Labels, Counter>::default();
        r.register(
            "relay_reconnects",
            "Reconnects to hubble-relay by reason",
            reconnects.clone(),
        );
        for reason in ReconnectReason::ALL {
            let _ = reconnects.get_or_create_owned(&labels(&[("reason", reason.as_str())]));
        }
        let nodes = Family::<Labels, Gauge>::default();
        r.register(
            "relay_nodes",
            "Nodes behind hubble-relay by last reported state",
            nodes.clone(),
        );
        for s in ["connected", "unavailable", "gone", "error"] {
            nodes.get_or_create(&labels(&[("state", s)])).set(0);
        }
        let lost_events = Family::<Labels, Counter>::default();
        r.register(
            "lost_events",
            "Events lost upstream, by source",
            lost_events.clone(),
        );
        for s in [
            LostEventSource::UnknownLostEventSource,
            LostEventSource::PerfEventRingBuffer,
            LostEventSource::ObserverEventsQueue,
            LostEventSource::HubbleRingBuffer,
        ] {
            let _ = lost_events
                .get_or_create_owned(&labels(&[("source", &lost_source_name(s as i32))]));
        }
        let last_flow = FGauge::default();
        r.register(
            "last_flow_timestamp_seconds",
            "Time of the last flow received",
            last_flow.clone(),
        );
        Self {
            connected,
            reconnects,
            nodes,
            node_states: Mutex::new(HashMap::new()),
            nodes_down: AtomicUsize::new(0),
            lost_events,
            lost_sources: Mutex::new(HashSet::new()),
            last_flow,
        }
    }

    /// Notes the last flow time of a response, and that the flow's node is connected.
    pub(super) fn observe_response(&self, resp: &GetFlowsResponse) {
        if let Some(ResponseTypes::Flow(f)) = resp.response_types.as_ref() {
            if let Some(t) = f.time.as_ref().or(resp.time.as_ref()) {
                self.last_flow.set(unix_seconds(t));
            }
            if self.nodes_down.load(Ordering::Relaxed) > 0 {
                let node = if f.node_name.is_empty() {
                    &resp.node_name
                } else {
                    &f.node_name
                };
                self.flow_from_node(node);
            }
        }
    }

    /// A flow from a node is proof that it is connected: hubble-relay re-subscribes a node that
    /// comes back without any node_status event, so its NODE_ERROR would otherwise stay forever.
    fn flow_from_node(&self, node: &str) {
        let mut nodes = self.node_states.lock().unwrap_or_else(|e| e.into_inner());
        match nodes.get_mut(node) {
            Some(s) if *s != NodeState::NodeConnected => *s = NodeState::NodeConnected,
            _ => return,
        }
        self.publish_node_states(&nodes);
    }

    /// Counts events lost upstream.
    pub(super) fn record_lost(&self, l: &LostEvent) {
        let known = LostEventSource::try_from(l.source).is_ok();
        let source = {
            let mut other = self.lost_sources.lock().unwrap_or_else(|e| e.into_inner());
            if known || other.contains(&l.source) || other.len() < MAX_LOST_SOURCES {
                if !known {
                    other.insert(l.source);
                }
                lost_source_name(l.source)
            } else {
                "other".to_owned()
            }
        };
        let counter = self
            .lost_events
            .get_or_create_owned(&labels(&[("source", &source)]));
        saturating_add(counter.inner(), l.num_events_lost);
    }

    /// Applies a node-status event to the node states.
    pub(super) fn record_node_status(&self, n: &NodeStatusEvent) {
        let state = NodeState::try_from(n.state_change).unwrap_or(NodeState::UnknownNodeState);
        if node_state_name(state).is_none() {
            return;
        }
        let mut nodes = self.node_states.lock().unwrap_or_else(|e| e.into_inner());
        for name in &n.node_names {
            if nodes.len() < MAX_NODES || nodes.contains_key(name) {
                nodes.insert(name.clone(), state);
            }
        }
        self.publish_node_states(&nodes);
    }

    /// Sets `hubble_noise_relay_nodes` from the node states.
    fn publish_node_states(&self, nodes: &HashMap<String, NodeState>) {
        let down = nodes
            .values()
            .filter(|v| **v != NodeState::NodeConnected)
            .count();
        self.nodes_down.store(down, Ordering::Relaxed);
        for s in [
            NodeState::NodeConnected,
            NodeState::NodeUnavailable,
            NodeState::NodeGone,
            NodeState::NodeError,
        ] {
            let count = nodes.values().filter(|v| **v == s).count();
            if let Some(name) = node_state_name(s) {
                self.nodes
                    .get_or_create(&labels(&[("state", name)]))
                    .set(i64::try_from(count).unwrap_or(i64::MAX));
            }
        }
    }

    /// Sets whether the stream is open.
    pub(super) fn set_connected(&self, connected: bool) {
        self.connected.set(i64::from(connected));
    }

    /// Counts a reconnect.
    pub(super) fn record_reconnect(&self, reason: &str) {
        self.reconnects
            .get_or_create(&labels(&[("reason", reason)]))
            .inc();
    }
}
