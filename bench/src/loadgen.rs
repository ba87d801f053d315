//! The end-to-end load generator (`hubble-noise bench-relay`, BENCHMARKS.md): a stand-in
//! hubble-relay on loopback that streams pre-encoded `GetFlowsResponse` messages as fast as
//! the daemon takes them (or at a set rate), then measures, through the daemon's `/metrics`,
//! how fast they were counted and how long a flow takes from being sent to being visible.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

use crate::synth;
use hubble_noise::api::observer::get_flows_response::ResponseTypes;
use hubble_noise::api::observer::{GetFlowsRequest, GetFlowsResponse};

/// The generated server of the same route as `observer.Observer/GetFlows`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod server {
    include!(concat!(env!("OUT_DIR"), "/observer.Observer.rs"));
}

/// A `GetFlowsResponse` already encoded: written to the wire as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Encoded(pub Bytes);

impl prost::Message for Encoded {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: prost::encoding::WireType,
        buf: &mut impl bytes::Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0 = Bytes::new();
    }
}

/// How to generate load.
#[derive(Clone, Debug)]
pub struct Load {
    /// Flows to send on the stream.
    pub flows: u64,
    /// Flows per second; 0 = as fast as the stream takes them.
    pub rate: u64,
    /// Distinct source namespaces (label sets of `hubble_noise_flows_total`).
    pub namespaces: u64,
    /// Latency probes, spread over the run.
    pub probes: u64,
    /// DNS answers sent first, each teaching the daemon one name (not counted as flows). Half
    /// the flows of the first `dns_names` templates then go to a learned name's IP.
    pub dns_names: u64,
    /// How often `/metrics` is polled for the count (probes are polled every 2 ms regardless).
    pub poll: Duration,
    /// The daemon's process id: its CPU time is read over the stream (`/proc/PID/stat`).
    pub daemon_pid: Option<u32>,
}

/// A template message and where its uuid's 12 last hex digits sit in the encoding.
struct Template {
    bytes: Vec<u8>,
    uuid_tail: usize,
}

/// Encodes a response with the request's field mask applied to its flow, as a node does.
fn masked(mut resp: GetFlowsResponse, mask: &[String]) -> Vec<u8> {
    if let Some(ResponseTypes::Flow(f)) = resp.response_types.as_mut() {
        *f = crate::mask::apply(f, mask);
    }
    resp.encode_to_vec()
}

fn templates(n: u64, load: &Load, mask: &[String]) -> Vec<Template> {
    (0..n)
        .map(|i| {
            let mut resp = synth::flow(i, load.namespaces);
            if i < load.dns_names && i % 2 == 0 {
                synth::to_learned_ip(&mut resp, i);
            }
            let bytes = masked(resp.clone(), mask);
            let uuid = match resp.response_types.as_ref() {
                Some(ResponseTypes::Flow(f)) => f.uuid.clone(),
                _ => String::new(),
            };
            let pos = bytes
                .windows(uuid.len().max(1))
                .position(|w| w == uuid.as_bytes())
                .unwrap_or(0);
            Template {
                bytes,
                uuid_tail: pos + uuid.len().saturating_sub(12),
            }
        })
        .collect()
}

/// The `seq`th message: a template with a unique uuid written into it.
fn stamp(t: &Template, seq: u64, out: &mut BytesMut) -> Encoded {
    out.clear();
    out.extend_from_slice(&t.bytes);
    let hex = format!("{seq:012x}");
    if let Some(tail) = out.get_mut(t.uuid_tail..t.uuid_tail + 12) {
        tail.copy_from_slice(&hex.as_bytes()[hex.len() - 12..]);
    }
    Encoded(out.split().freeze())
}

/// A probe: a flow from a namespace of its own (`probe-N`), so its series appears in
/// `/metrics` when it has been counted.
fn probe(n: u64, seq: u64, mask: &[String]) -> Encoded {
    let mut resp = synth::flow(seq, 1);
    if let Some(ResponseTypes::Flow(f)) = resp.response_types.as_mut() {
        if let Some(src) = f.source.as_mut() {
            src.namespace = format!("probe-{n}");
        }
        f.uuid = format!("ffffffff-0000-4000-8000-{seq:012x}");
    }
    Encoded(Bytes::from(masked(resp, mask)))
}

/// When a stream started, and the daemon's CPU time then.
type Started = (Instant, Option<Duration>);

struct Relay {
    load: Load,
    probes: mpsc::UnboundedSender<(u64, Instant)>,
    started: mpsc::UnboundedSender<Started>,
}

#[tonic::async_trait]
impl server::observer_server::Observer for Relay {
    type GetFlowsStream = tokio_stream::wrappers::ReceiverStream<Result<Encoded, Status>>;

    async fn get_flows(
        &self,
        req: Request<GetFlowsRequest>,
    ) -> Result<Response<Self::GetFlowsStream>, Status> {
        let (tx, rx) = mpsc::channel(4096);
        let load = self.load.clone();
        let probes = self.probes.clone();
        let mask = req
            .into_inner()
            .field_mask
            .map(|m| m.paths)
            .unwrap_or_default();
        let cpu = load.daemon_pid.and_then(|p| crate::cpu::cpu_time(p).ok());
        let _ = self.started.send((Instant::now(), cpu));
        tokio::spawn(async move {
            // One template per namespace (at least 4,096), so every namespace gets its series.
            let pool = templates(load.namespaces.clamp(4096, 100_000), &load, &mask);
            let every = (load.flows / load.probes.max(1)).max(1);
            let mut buf = BytesMut::with_capacity(64 * 1024);
            let mut probe_n = 0;
            for i in 0..load.dns_names {
                let msg = Encoded(Bytes::from(masked(
                    synth::dns_answer(i, load.namespaces),
                    &mask,
                )));
                if tx.send(Ok(msg)).await.is_err() {
                    return;
                }
            }
            let start = Instant::now();
            for seq in 0..load.flows {
                if load.rate > 0 {
                    let due = start + Duration::from_secs_f64(seq as f64 / load.rate as f64);
                    if due > Instant::now() {
                        tokio::time::sleep_until(due.into()).await;
                    }
                }
                let msg = if probe_n < load.probes && seq % every == every / 2 {
                    let _ = probes.send((probe_n, Instant::now()));
                    probe_n += 1;
                    probe(probe_n - 1, seq, &mask)
                } else {
                    let t = &pool[(seq % pool.len() as u64) as usize];
                    stamp(t, seq, &mut buf)
                };
                if tx.send(Ok(msg)).await.is_err() {
                    return;
                }
            }
            // Keep the stream open like a following relay; the client ends it.
            std::future::pending::<()>().await;
        });
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(
            rx,
        )))
    }
}

/// One `GET /metrics`, body only.
pub async fn scrape(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    Ok(out
        .split_once("\r\n\r\n")
        .map_or(out.clone(), |(_, b)| b.to_string()))
}

/// The sum of `hubble_noise_flows_total` in a scrape.
pub fn flows_total(text: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with("hubble_noise_flows_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// What a run measured.
#[derive(Debug)]
pub struct Report {
    /// Flows sent.
    pub sent: u64,
    /// Flows counted by the daemon.
    pub counted: f64,
    /// From the daemon's connection to the last flow counted.
    pub elapsed: Duration,
    /// Send → visible in `/metrics`, per probe, sorted.
    pub latencies: Vec<Duration>,
    /// Messages on the stream (DNS answers and flows).
    pub messages: u64,
    /// The daemon's CPU time over the stream, when its pid was given.
    pub daemon_cpu: Option<Duration>,
}

impl Report {
    /// Counted flows per second.
    pub fn rate(&self) -> f64 {
        self.counted / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `q` quantile of the probe latencies.
    pub fn latency(&self, q: f64) -> Option<Duration> {
        if self.latencies.is_empty() {
            return None;
        }
        let i = ((self.latencies.len() - 1) as f64 * q).round() as usize;
        self.latencies.get(i).copied()
    }
}

fn deadline_of(timeout: Duration) -> Instant {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *START.get_or_init(Instant::now) + timeout
}

/// Serves the stand-in relay on `listen`, waits for the daemon (whose `/metrics` is at
/// `metrics`) to connect, streams `load`, and measures. Gives up after `timeout`. Then, with
/// `floor`, serves the same stream to the bare-decode floor client and measures it too.
pub async fn run(
    listen: SocketAddr,
    metrics: SocketAddr,
    load: Load,
    timeout: Duration,
    floor: Option<crate::floor::Spawn>,
) -> anyhow::Result<(Report, Option<crate::floor::Floor>)> {
    let (ptx, mut prx) = mpsc::unbounded_channel();
    let (stx, mut srx) = mpsc::unbounded_channel();
    let relay = Relay {
        load: load.clone(),
        probes: ptx,
        started: stx,
    };
    let listener = tokio::net::TcpListener::bind(listen).await?;
    // What the daemon counted before: nothing is served yet, so nothing of this run. The
    // daemon may still be starting: wait for its /metrics.
    let base = loop {
        match scrape(metrics).await {
            Ok(t) => break flows_total(&t),
            Err(e) if Instant::now() < deadline_of(timeout) => {
                tracing::debug!(error = %e, "waiting for the daemon's /metrics");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(anyhow::anyhow!("{metrics}: {e}")),
        }
    };
    let serve = tonic::transport::Server::builder()
        .add_service(server::observer_server::ObserverServer::new(relay))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    let server = tokio::spawn(serve);
    let deadline = Instant::now() + timeout;
    let (started, cpu0) = tokio::time::timeout(timeout, srx.recv())
        .await
        .map_err(|_| anyhow::anyhow!("the daemon did not connect within {timeout:?}"))?
        .ok_or_else(|| anyhow::anyhow!("relay stopped"))?;
    let mut latencies = Vec::new();
    let mut waiting: Vec<(u64, Instant)> = Vec::new();
    let mut counted = 0.0;
    let mut last_change = Instant::now();
    let mut daemon_cpu = None;
    loop {
        while let Ok(p) = prx.try_recv() {
            waiting.push(p);
        }
        let text = scrape(metrics).await?;
        let now = Instant::now();
        waiting.retain(|(n, sent)| {
            let seen = text.contains(&format!("source_namespace=\"probe-{n}\""));
            if seen {
                latencies.push(now.duration_since(*sent));
            }
            !seen
        });
        let c = flows_total(&text) - base;
        if c > counted {
            counted = c;
            last_change = now;
        }
        if counted >= load.flows as f64 && daemon_cpu.is_none() {
            let cpu = load.daemon_pid.and_then(|p| crate::cpu::cpu_time(p).ok());
            daemon_cpu = cpu.zip(cpu0).map(|(c1, c0)| c1.saturating_sub(c0));
        }
        if counted >= load.flows as f64 && waiting.is_empty() {
            break;
        }
        if now > deadline || now.duration_since(last_change) > Duration::from_secs(10) {
            break;
        }
        tokio::time::sleep(if waiting.is_empty() {
            load.poll
        } else {
            Duration::from_millis(2)
        })
        .await;
    }
    latencies.sort();
    let report = Report {
        sent: load.flows,
        counted,
        elapsed: last_change.duration_since(started),
        latencies,
        messages: load.flows + load.dns_names,
        daemon_cpu,
    };
    if let Some(floor) = floor {
        let result = floor.run(listen, report.messages).await;
        server.abort();
        return Ok((report, Some(result?)));
    }
    server.abort();
    Ok((report, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamped_messages_decode_with_unique_uuids() {
        let load = Load {
            flows: 10,
            rate: 0,
            namespaces: 10,
            probes: 0,
            dns_names: 0,
            poll: Duration::from_millis(20),
            daemon_pid: None,
        };
        let pool = templates(3, &load, &[]);
        let mut buf = BytesMut::new();
        let mut seen = std::collections::HashSet::new();
        for seq in 0..10u64 {
            let e = stamp(&pool[(seq % 3) as usize], seq, &mut buf);
            let r = GetFlowsResponse::decode(e.0.clone()).expect("valid protobuf");
            let Some(ResponseTypes::Flow(f)) = r.response_types else {
                panic!("a flow")
            };
            assert!(f.uuid.ends_with(&format!("{seq:012x}")), "{}", f.uuid);
            assert!(seen.insert(f.uuid));
        }
    }
}
