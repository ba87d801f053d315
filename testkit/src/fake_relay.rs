//! A scripted fake hubble-relay (a tonic `Observer` server on 127.0.0.1:0), a TCP front that
//! can black-hole, garble or forward connections to it, a daemon started on it, and captured
//! logs. Used by `tests/faults.rs`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::observer_server::{Observer, ObserverServer};
use hubble_noise::api::flow::{Endpoint, Flow, TrafficDirection, Verdict};
use hubble_noise::api::observer::get_flows_response::ResponseTypes;
use hubble_noise::api::observer::{GetFlowsRequest, GetFlowsResponse};
use hubble_noise::config::{Config, Loaded};
use hubble_noise::daemon::{Input, run_daemon};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::transport::{Server, ServerTlsConfig};
use tonic::{Request, Response, Status};

/// The sending half of a fake stream.
pub type StreamTx = mpsc::Sender<Result<GetFlowsResponse, Status>>;

/// What one `GetFlows` call does.
#[derive(Clone)]
pub enum Step {
    /// Send a response.
    Send(Box<GetFlowsResponse>),
    /// End the stream with an error.
    Fail(Status),
    /// End the stream cleanly.
    End,
}

/// Each call takes the next script; when none is left, the call sends nothing and stays open
/// (its sender is kept in `held`, so a test can send on it later).
#[derive(Clone, Default)]
pub struct FakeRelay {
    pub scripts: Arc<Mutex<VecDeque<Vec<Step>>>>,
    pub requests: Arc<Mutex<Vec<GetFlowsRequest>>>,
    pub held: Arc<Mutex<Vec<StreamTx>>>,
}

impl FakeRelay {
    pub fn new(scripts: Vec<Vec<Step>>) -> Self {
        Self {
            scripts: Arc::new(Mutex::new(scripts.into())),
            ..Default::default()
        }
    }

    pub fn requests(&self) -> Vec<GetFlowsRequest> {
        self.requests.lock().unwrap().clone()
    }

    /// Sends `r` on the newest held (silent, open) stream; false when there is none.
    pub async fn send_held(&self, r: GetFlowsResponse) -> bool {
        let tx = self.held.lock().unwrap().last().cloned();
        match tx {
            Some(tx) => tx.send(Ok(r)).await.is_ok(),
            None => false,
        }
    }
}

#[tonic::async_trait]
impl Observer for FakeRelay {
    type GetFlowsStream = ReceiverStream<Result<GetFlowsResponse, Status>>;

    async fn get_flows(
        &self,
        req: Request<GetFlowsRequest>,
    ) -> Result<Response<Self::GetFlowsStream>, Status> {
        self.requests.lock().unwrap().push(req.into_inner());
        let script = self.scripts.lock().unwrap().pop_front().unwrap_or_default();
        let (tx, rx) = mpsc::channel(1024);
        let held = self.held.clone();
        tokio::spawn(async move {
            for step in script {
                match step {
                    Step::Send(r) => {
                        if tx.send(Ok(*r)).await.is_err() {
                            return;
                        }
                    }
                    Step::Fail(s) => {
                        let _ = tx.send(Err(s)).await;
                        return;
                    }
                    Step::End => return,
                }
            }
            held.lock().unwrap().push(tx);
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// A server that stops when dropped.
pub struct Running {
    pub addr: SocketAddr,
    pub stop: Option<oneshot::Sender<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

pub async fn start_relay_tls(relay: FakeRelay, tls: Option<ServerTlsConfig>) -> Running {
    start_relay_on(TcpListener::bind("127.0.0.1:0").await.unwrap(), relay, tls).await
}

/// Serves `relay` on a listener the test bound (e.g. at an address a daemon already uses).
pub async fn start_relay_on(
    listener: TcpListener,
    relay: FakeRelay,
    tls: Option<ServerTlsConfig>,
) -> Running {
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = oneshot::channel::<()>();
    let mut builder = Server::builder();
    if let Some(t) = tls {
        builder = builder.tls_config(t).unwrap();
    }
    let router = builder.add_service(ObserverServer::new(relay));
    tokio::spawn(async move {
        let _ = router
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = rx.await;
            })
            .await;
    });
    Running {
        addr,
        stop: Some(stop),
    }
}

pub async fn start_relay(relay: FakeRelay) -> Running {
    start_relay_tls(relay, None).await
}

// ---------------------------------------------------------------- the front

/// What the front does with a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Accept and never send anything (reads and discards what comes).
    Blackhole,
    /// Answer with junk bytes instead of HTTP/2, then close.
    Garbage,
    /// Forward to a backend.
    Forward(SocketAddr),
}

/// A TCP front whose behaviour can change; changing it cuts every open connection.
pub struct Front {
    pub addr: SocketAddr,
    mode: watch::Sender<Mode>,
    _stop: oneshot::Sender<()>,
}

impl Front {
    pub async fn start(mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (mode_tx, mode_rx) = watch::channel(mode);
        let (stop, mut stop_rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            loop {
                let (conn, _) = tokio::select! {
                    _ = &mut stop_rx => return,
                    a = listener.accept() => match a { Ok(c) => c, Err(_) => continue },
                };
                let mut rx = mode_rx.clone();
                let mode = *rx.borrow_and_update();
                tokio::spawn(async move {
                    tokio::select! {
                        () = serve(conn, mode) => {}
                        _ = rx.changed() => {} // dropping the connection cuts it
                    }
                });
            }
        });
        Self {
            addr,
            mode: mode_tx,
            _stop: stop,
        }
    }

    /// Changes the mode of new connections and cuts the open ones.
    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

async fn serve(mut conn: TcpStream, mode: Mode) {
    match mode {
        Mode::Blackhole => {
            let mut buf = [0u8; 4096];
            while let Ok(n) = conn.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
            std::future::pending::<()>().await;
        }
        Mode::Garbage => {
            let mut junk = Vec::with_capacity(64 * 1024);
            let mut x: u32 = 0x9e37_79b9;
            for _ in 0..64 * 1024 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                junk.push(x as u8);
            }
            let _ = conn.write_all(&junk).await;
            let _ = conn.shutdown().await;
        }
        Mode::Forward(to) => {
            let Ok(mut up) = TcpStream::connect(to).await else {
                return;
            };
            let _ = tokio::io::copy_bidirectional(&mut conn, &mut up).await;
        }
    }
}

// ---------------------------------------------------------------- the daemon

pub fn test_config(relay_addr: &str) -> Config {
    let mut c = Config::default();
    c.relay.address = relay_addr.to_owned();
    c.relay.backoff_initial = Duration::from_millis(50);
    c.relay.backoff_max = Duration::from_millis(200);
    c.relay.connect_timeout = Duration::from_secs(2);
    c
}

/// Starts the daemon from `cfg` (or from the file `path` when given, so that reload reads it).
pub async fn start_daemon(cfg: Config, path: Option<std::path::PathBuf>) -> Running {
    init_logs();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = oneshot::channel::<()>();
    let loaded = match path {
        Some(p) => hubble_noise::load::config(Some(&p)).unwrap(),
        None => Loaded {
            config: cfg,
            path: None,
            text: String::new(),
        },
    };
    tokio::spawn(async move {
        run_daemon(loaded, Input::Relay, listener, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Running {
        addr,
        stop: Some(stop),
    }
}

pub fn ts(seconds: i64) -> pbjson_types::Timestamp {
    pbjson_types::Timestamp { seconds, nanos: 0 }
}

pub const T0: i64 = 1_790_000_000;

pub fn flow(uuid: &str, node: &str, ns: &str, secs: i64) -> GetFlowsResponse {
    GetFlowsResponse {
        response_types: Some(ResponseTypes::Flow(Flow {
            uuid: uuid.into(),
            node_name: node.into(),
            verdict: Verdict::Dropped as i32,
            time: Some(ts(secs)),
            traffic_direction: TrafficDirection::Egress as i32,
            drop_reason_desc: hubble_noise::api::flow::DropReason::PolicyDenied as i32,
            source: Some(Endpoint {
                namespace: ns.into(),
                pod_name: format!("{ns}-pod"),
                ..Default::default()
            }),
            ..Default::default()
        })),
        node_name: node.into(),
        time: Some(ts(secs)),
    }
}

// ---------------------------------------------------------------- logs

fn log_buffer() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| Mutex::new(Vec::new()))
}

struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        log_buffer().lock().unwrap().extend_from_slice(buf);
        std::io::stderr().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures the daemon's logs (once per test binary; every test shares them).
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_ansi(false)
        .with_writer(|| LogWriter)
        .try_init();
}

/// Whether one captured log line contains every one of `parts`.
pub fn logged(parts: &[&str]) -> bool {
    let logs = log_buffer().lock().unwrap();
    String::from_utf8_lossy(&logs)
        .lines()
        .any(|l| parts.iter().all(|p| l.contains(p)))
}

// ---------------------------------------------------------------- a relay that sends raw bytes

/// Messages of one `GetFlows` call, as raw bytes (put in gRPC frames, not checked).
type RawScript = Vec<Vec<u8>>;

/// A relay whose messages are raw bytes in valid gRPC frames: garbage where a
/// `GetFlowsResponse` should be. Each call takes the next script, then stays open.
#[derive(Clone, Default)]
pub struct RawRelay {
    pub scripts: Arc<Mutex<VecDeque<RawScript>>>,
}

struct RawCodec;
struct RawEncoder;
struct RawDecoder;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl tonic::codec::Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let n = bytes::Buf::remaining(src);
        Ok(Some(bytes::Buf::copy_to_bytes(src, n).to_vec()))
    }
}

type RawStream = tokio_stream::adapters::Chain<
    tokio_stream::Iter<std::vec::IntoIter<Result<Vec<u8>, Status>>>,
    tokio_stream::Pending<Result<Vec<u8>, Status>>,
>;

struct RawCall(RawScript);

impl tonic::server::ServerStreamingService<Vec<u8>> for RawCall {
    type Response = Vec<u8>;
    type ResponseStream = RawStream;
    type Future = tonic::codegen::BoxFuture<tonic::Response<RawStream>, Status>;
    fn call(&mut self, _req: tonic::Request<Vec<u8>>) -> Self::Future {
        use tokio_stream::StreamExt as _;
        let msgs: Vec<Result<Vec<u8>, Status>> = self.0.drain(..).map(Ok).collect();
        let stream = tokio_stream::iter(msgs).chain(tokio_stream::pending());
        Box::pin(async move { Ok(tonic::Response::new(stream)) })
    }
}

impl<B> tonic::codegen::Service<tonic::codegen::http::Request<B>> for RawRelay
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = tonic::codegen::http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = tonic::codegen::BoxFuture<Self::Response, Self::Error>;
    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: tonic::codegen::http::Request<B>) -> Self::Future {
        let script = self.scripts.lock().unwrap().pop_front().unwrap_or_default();
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(RawCodec);
            Ok(grpc.server_streaming(RawCall(script), req).await)
        })
    }
}

impl tonic::server::NamedService for RawRelay {
    const NAME: &'static str = "observer.Observer";
}

/// Starts a [`RawRelay`] with these scripts.
pub async fn start_raw_relay(scripts: Vec<RawScript>) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = oneshot::channel::<()>();
    let relay = RawRelay {
        scripts: Arc::new(Mutex::new(scripts.into())),
    };
    let router = Server::builder().add_service(relay);
    tokio::spawn(async move {
        let _ = router
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = rx.await;
            })
            .await;
    });
    Running {
        addr,
        stop: Some(stop),
    }
}
