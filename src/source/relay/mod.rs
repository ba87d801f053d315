//! The hubble-relay `GetFlows` stream (PRODUCT.md §2, §9): connect, follow, detect a dead
//! stream, reconnect forever with backoff, resume with `since`.
//!
//! Duplicates that a `since` back-fill (or the relay re-subscribing a node with the original
//! request) brings back are dropped later by the pipeline's `(node, uuid)` window.

mod codec;
mod endpoint;
mod reason;
mod request;

use std::future::Future;
use std::ops::ControlFlow;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::sync::mpsc;
use tonic::transport::Channel;

use crate::api::observer::GetFlowsResponse;
use crate::api::observer::get_flows_response::ResponseTypes;
use crate::backoff::Backoff;
use crate::config::RelayConfig;
use crate::metrics::Metrics;
use reason::{Failure, chain, classify_status, connect_reason};

pub use endpoint::{EndpointError, MAX_TLS_FILE, endpoint};
pub use reason::Reason;
pub use request::{EVENT_L7, FIELD_MASK, request};

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

/// What the follower hands each response to.
pub trait Consumer {
    /// Takes one response, as soon as it is decoded. `Break` when the consumer is gone
    /// (shutting down): the follower then ends.
    fn take(&mut self, resp: Box<GetFlowsResponse>)
    -> impl Future<Output = ControlFlow<()>> + Send;

    /// The stream has nothing ready: the end of a burst.
    fn paused(&mut self) {}
}

/// A channel as a consumer: each response is sent, waiting while the channel is full.
impl Consumer for mpsc::Sender<GetFlowsResponse> {
    async fn take(&mut self, resp: Box<GetFlowsResponse>) -> ControlFlow<()> {
        match self.send(*resp).await {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(()),
        }
    }
}

/// Follows the relay until `shutdown` completes or `consumer` is gone, handing it every
/// response. Never returns on errors: it reconnects with backoff.
pub async fn follow<C: Consumer + Send>(
    cfg: RelayConfig,
    dns_learn: bool,
    metrics: Arc<Metrics>,
    consumer: &mut C,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    tokio::select! {
        () = &mut shutdown => {}
        () = follow_forever(&cfg, dns_learn, &metrics, consumer) => {}
    }
    metrics.set_connected(false);
}

async fn follow_forever<C: Consumer + Send>(
    cfg: &RelayConfig,
    dns_learn: bool,
    metrics: &Metrics,
    consumer: &mut C,
) {
    let mut backoff = Backoff::new(cfg.backoff_initial, cfg.backoff_max);
    let mut last: Option<pbjson_types::Timestamp> = None;
    let mut last_reason: Option<Reason> = None;
    loop {
        let attempt = attempt(cfg, dns_learn, metrics, consumer, &mut last, &mut backoff);
        let failure = match attempt.await {
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
async fn attempt<C: Consumer + Send>(
    cfg: &RelayConfig,
    dns_learn: bool,
    metrics: &Metrics,
    consumer: &mut C,
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
    let open = codec::get_flows(channel, cfg.max_message_size, req);
    let opened = tokio::time::timeout(cfg.idle_timeout, open).await;
    let mut stream = match opened {
        Err(_) => {
            return Err(Failure {
                reason: Reason::IdleTimeout,
                message: "no response headers".into(),
            });
        }
        Ok(Err(s)) => return Err(classify_status(&s)),
        Ok(Ok(stream)) => stream,
    };
    metrics.set_connected(true);
    tracing::info!(address = %cfg.address, since = ?since, "relay stream open");
    let mut healthy = false;
    loop {
        let next = match ready(&mut stream) {
            Some(next) => Ok(next),
            None => {
                consumer.paused();
                tokio::time::timeout(cfg.idle_timeout, stream.message()).await
            }
        };
        let msg = match next {
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
        if consumer.take(msg).await.is_break() {
            return Ok(());
        }
    }
}

/// The stream's next message if it is ready now, without waiting (`Streaming::message` is
/// cancel safe: a message not ready stays in the stream).
fn ready(
    stream: &mut tonic::Streaming<Box<GetFlowsResponse>>,
) -> Option<Result<Option<Box<GetFlowsResponse>>, tonic::Status>> {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    match pin!(stream.message()).poll(&mut cx) {
        Poll::Ready(r) => Some(r),
        Poll::Pending => None,
    }
}

#[cfg(test)]
mod tests;
