//! The HTTP endpoint (PRODUCT.md §8): `GET /metrics`, `GET /healthz`, `GET /readyz`,
//! `POST /-/reload`, and the triage page and API ([`crate::triage`]).
//!
//! With `metrics.web_config_file` ([`crate::web`]) the listener speaks TLS only and every
//! request but the probes needs basic auth, checked once before routing: every route is
//! protected, present and future.
//!
//! [`serve`] takes a bound listener and a shutdown future, so tests bind `127.0.0.1:0` and
//! stop it cleanly. It serves at most [`AppState::max_connections`] connections at once (a
//! semaphore, taken before `accept`: a further client waits in the listen backlog), and on
//! shutdown lets the requests in flight finish, for at most [`AppState::drain_timeout`].

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

use crate::health::PipelineHealth;
use crate::metrics::Metrics;
use crate::supervise::join_error_message;
use crate::triage::Triage;
use crate::web::{CHALLENGE, WebHandle};

/// `Content-Type` of OpenMetrics text.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// `Content-Type` of the classic Prometheus text format.
pub const CLASSIC: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How long a client may take to send its request headers.
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A reload request: the answer says whether the new configuration is in force.
pub type ReloadRequest = oneshot::Sender<Result<(), String>>;

/// What the endpoints need.
#[derive(Debug)]
pub struct AppState {
    /// Every metric.
    pub metrics: Arc<Metrics>,
    /// Set once the configuration is loaded (`/readyz`).
    pub ready: AtomicBool,
    /// Where `POST /-/reload` sends its request; `None` when reloading is not possible.
    pub reload: Option<mpsc::Sender<ReloadRequest>>,
    /// How long a response write may stay blocked on a client that does not read.
    pub write_stall_timeout: std::time::Duration,
    /// Connections served at once (`metrics.max_connections`).
    pub max_connections: usize,
    /// How long in-flight requests get to finish after shutdown.
    pub drain_timeout: std::time::Duration,
    /// The pipeline's heartbeat for `/healthz`; `None` (always healthy) when there is no
    /// pipeline.
    pub pipeline: Option<PipelineHealth>,
    /// The triage store behind the page and the API; `None` (`triage.enabled = false`)
    /// removes them.
    pub triage: Option<Arc<Triage>>,
    /// TLS and basic auth in force (`metrics.web_config_file`), swapped by reloads.
    pub web: Arc<WebHandle>,
}

/// Connections served at once unless configured (`metrics.max_connections`).
pub const MAX_CONNECTIONS: usize = 64;

/// How long requests in flight get to finish after shutdown before their connections are
/// cut (within `run`'s 5 s shutdown grace).
pub const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// How long a response write may stay blocked on a client that does not read before the
/// connection is closed (a scrape of 10,000 series is a few hundred kilobytes).
pub const WRITE_STALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl AppState {
    /// A state that is not ready yet.
    pub fn new(metrics: Arc<Metrics>, reload: Option<mpsc::Sender<ReloadRequest>>) -> Self {
        Self {
            metrics,
            ready: AtomicBool::new(false),
            reload,
            write_stall_timeout: WRITE_STALL_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
            drain_timeout: DRAIN_TIMEOUT,
            pipeline: None,
            triage: None,
            web: Arc::new(WebHandle::default()),
        }
    }
}

type Resp = Response<Full<Bytes>>;

fn text(status: StatusCode, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Whether the client asked for OpenMetrics.
fn wants_openmetrics(req: &Request<Incoming>) -> bool {
    req.headers()
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"))
}

/// The web security gate, then the route: a request without valid credentials (when basic
/// auth is on) never reaches routing.
async fn handle(state: Arc<AppState>, req: Request<Incoming>) -> Result<Resp, Infallible> {
    let web = state.web.current();
    let mut resp = if web.admits(&req).await {
        route(state, req).await
    } else {
        let mut r = text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
        r.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            HeaderValue::from_static(CHALLENGE),
        );
        r
    };
    web.add_headers(resp.headers_mut());
    Ok(resp)
}

/// The endpoints, for a request the gate let through.
async fn route(state: Arc<AppState>, req: Request<Incoming>) -> Resp {
    let path = req.uri().path();
    match (req.method(), path) {
        (&Method::GET | &Method::HEAD, "/metrics") => {
            let om = wants_openmetrics(&req);
            let encoded = if om {
                state.metrics.encode_openmetrics()
            } else {
                state.metrics.encode_text()
            };
            match encoded {
                Ok(body) => {
                    let mut r = text(StatusCode::OK, body);
                    r.headers_mut().insert(
                        CONTENT_TYPE,
                        HeaderValue::from_static(if om { OPENMETRICS } else { CLASSIC }),
                    );
                    r
                }
                Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "encoding failed\n"),
            }
        }
        (&Method::GET | &Method::HEAD, "/healthz") => {
            match state
                .pipeline
                .as_ref()
                .map_or(Ok(()), PipelineHealth::check)
            {
                Ok(()) => text(StatusCode::OK, "ok\n"),
                Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
            }
        }
        (&Method::GET | &Method::HEAD, "/readyz") => {
            if state.ready.load(Ordering::Relaxed) {
                text(StatusCode::OK, "ready\n")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "config not loaded\n")
            }
        }
        (&Method::POST | &Method::PUT, "/-/reload") => reload(&state).await,
        (_, "/metrics" | "/healthz" | "/readyz" | "/-/reload") => {
            text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
        }
        (&Method::GET | &Method::HEAD, _) => triage(&state, path, req.uri().query())
            .unwrap_or_else(|| text(StatusCode::NOT_FOUND, "not found\n")),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// The triage page and API (PRODUCT.md §12), when the store is on.
fn triage(state: &AppState, path: &str, query: Option<&str>) -> Option<Resp> {
    let t = state.triage.as_deref()?;
    let query = query.unwrap_or("");
    crate::triage::api::route(t, path, query).or_else(|| crate::triage::page::route(t, path, query))
}

async fn reload(state: &AppState) -> Resp {
    let Some(tx) = state.reload.as_ref() else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "reload not available\n");
    };
    let (answer, rx) = oneshot::channel();
    if tx.send(answer).await.is_err() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "reloader stopped\n");
    }
    match rx.await {
        Ok(Ok(())) => text(StatusCode::OK, "reloaded\n"),
        Ok(Err(e)) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reload failed, previous configuration kept:\n{e}\n"),
        ),
        Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "reloader stopped\n"),
    }
}

/// The semaphore that caps the connections served at once (at least one).
pub fn connection_limit(max_connections: usize) -> Semaphore {
    Semaphore::new(max_connections.max(1))
}

/// Serves the endpoints on `listener` until `shutdown` completes, then drains: idle
/// connections close, requests in flight finish (for at most `drain_timeout`). Accept errors
/// are logged and the loop goes on; a connection handler that panics is an error (a bug
/// reachable by any client must not leave a half-working server).
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    let limit = Arc::new(connection_limit(state.max_connections));
    let (drain_tx, drain_rx) = watch::channel(false);
    let mut conns = tokio::task::JoinSet::new();
    let result = loop {
        tokio::select! {
            () = &mut shutdown => break Ok(()),
            Some(joined) = conns.join_next(), if !conns.is_empty() => {
                if let Err(e) = joined {
                    if e.is_panic() {
                        break Err(std::io::Error::other(format!(
                            "an HTTP connection handler {}",
                            join_error_message(e)
                        )));
                    }
                }
            }
            // As mini-redis does: a permit first, then accept, so that at the cap a client
            // waits in the kernel's backlog instead of costing a task and buffers.
            (permit, accepted) = async {
                let permit = limit.clone().acquire_owned().await;
                (permit, listener.accept().await)
            } => {
                let Ok(permit) = permit else { break Ok(()) };
                let (stream, peer) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        drop(permit);
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                };
                conns.spawn(connection(state.clone(), stream, peer, drain_rx.clone(), permit));
            }
        }
    };
    let _ = drain_tx.send(true);
    let drained = tokio::time::timeout(state.drain_timeout, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            left = conns.len(),
            "HTTP connections still busy after the drain timeout; cut"
        );
    }
    conns.abort_all();
    result
}

/// One connection: served until it ends, or until `drain` asks to stop (then the request in
/// flight, if any, finishes first). Holds its `permit` until it ends. With TLS on (the web
/// config in force when it was accepted) the handshake comes first, within
/// [`HEADER_READ_TIMEOUT`]: a client that says nothing, or speaks plain HTTP, does not keep its
/// connection slot.
async fn connection(
    state: Arc<AppState>,
    stream: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    drain: watch::Receiver<bool>,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let _permit = permit;
    // A client that stops reading its response (a stuck or hostile scraper) is dropped after
    // `write_stall_timeout` without progress.
    let stall = state.write_stall_timeout;
    let guard = move |s| crate::stall::StallGuard::new(s, stall);
    let web = state.web.current();
    let Some(acceptor) = web.tls() else {
        return serve_io(state, TokioIo::new(guard(stream)), peer, drain).await;
    };
    let handshake = crate::web::accept(&acceptor, stream, guard);
    match tokio::time::timeout(HEADER_READ_TIMEOUT, handshake).await {
        Ok(Ok(tls)) => serve_io(state, TokioIo::new(tls), peer, drain).await,
        Ok(Err(e)) => tracing::debug!(peer = %peer, error = %e, "TLS handshake failed"),
        Err(_) => tracing::debug!(peer = %peer, "TLS handshake timed out"),
    }
}

/// HTTP/1.1 on an established connection (plain or TLS).
async fn serve_io<I>(
    state: Arc<AppState>,
    io: TokioIo<I>,
    peer: std::net::SocketAddr,
    mut drain: watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let metrics = state.metrics.clone();
    let svc = service_fn(move |req| handle(state.clone(), req));
    // A client that never finishes its request headers is dropped, so idle or hostile
    // connections do not pile up (or hold the connection cap).
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(io, svc);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = async { drain.wait_for(|d| *d).await.is_ok() } => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        if crate::stall::is_stall(&e) {
            metrics.record_http_client_stalled();
            tracing::warn!(
                peer = %peer,
                error = %e,
                "HTTP client stopped reading its response; connection closed"
            );
        } else {
            tracing::debug!(error = %e, "http connection ended");
        }
    }
}
