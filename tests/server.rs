//! The HTTP server's connection cap and its drain on shutdown (PRODUCT.md §8, §9).

// Tests unwrap freely: a failure is the test failing (the lint is for the product).
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::http;
use hubble_noise::config::MetricsConfig;
use hubble_noise::metrics::Metrics;
use hubble_noise::server::{AppState, ReloadRequest, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

struct Server {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
    reloads: mpsc::Receiver<ReloadRequest>,
}

async fn start(tune: impl FnOnce(&mut AppState)) -> Server {
    let metrics = Arc::new(Metrics::new(&MetricsConfig::default(), "test"));
    let (reload_tx, reloads) = mpsc::channel(4);
    let mut state = AppState::new(metrics, Some(reload_tx));
    tune(&mut state);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, Arc::new(state), async {
        let _ = rx.await;
    }));
    Server {
        addr,
        stop,
        task,
        reloads,
    }
}

/// Sends a request and returns the stream, the response still to be read.
async fn send(addr: SocketAddr, method: &str, path: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    s
}

async fn read_all(mut s: TcpStream) -> String {
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf).await;
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn at_the_connection_cap_a_further_client_waits_until_one_closes() {
    let srv = start(|s| s.max_connections = 2).await;
    // Two clients that connect and send nothing hold the two permits.
    let idle1 = TcpStream::connect(srv.addr).await.unwrap();
    let idle2 = TcpStream::connect(srv.addr).await.unwrap();
    let probe = tokio::spawn(http(srv.addr, "GET", "/metrics", None));
    let waited = tokio::time::timeout(Duration::from_millis(500), async {
        // The third connects (the kernel's backlog) but is not served.
        while !probe.is_finished() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        waited.is_err(),
        "a third connection was served above the cap"
    );
    // One idle client leaves: the waiting one is served.
    drop(idle1);
    let (status, _, body) = tokio::time::timeout(Duration::from_secs(20), probe)
        .await
        .expect("served once a permit is free")
        .unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("hubble_noise_build_info"), "{body}");
    // And the server goes on serving.
    assert_eq!(http(srv.addr, "GET", "/metrics", None).await.0, 200);
    drop(idle2);
    srv.stop.send(()).unwrap();
    srv.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn shutdown_lets_the_request_in_flight_finish_and_closes_idle_connections() {
    let mut srv = start(|_| {}).await;
    let idle = TcpStream::connect(srv.addr).await.unwrap();
    let busy = send(srv.addr, "POST", "/-/reload").await;
    // The reload request is in flight: the handler waits for its answer.
    let answer = tokio::time::timeout(Duration::from_secs(20), srv.reloads.recv())
        .await
        .unwrap()
        .expect("a reload request");
    srv.stop.send(()).unwrap();
    // The idle connection is closed by the drain.
    let closed = tokio::time::timeout(Duration::from_secs(20), read_all(idle))
        .await
        .expect("idle connection closed on shutdown");
    assert_eq!(closed, "", "no response on a connection that asked nothing");
    // The busy one still gets its full answer.
    answer.send(Ok(())).unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(20), read_all(busy))
        .await
        .unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.ends_with("reloaded\n"), "{resp}");
    tokio::time::timeout(Duration::from_secs(20), srv.task)
        .await
        .expect("the server stops once drained")
        .unwrap()
        .unwrap();
    // It no longer listens.
    assert!(TcpStream::connect(srv.addr).await.is_err());
}

#[tokio::test]
async fn a_request_that_never_finishes_does_not_hold_shutdown_past_the_drain_timeout() {
    let mut srv = start(|s| s.drain_timeout = Duration::from_millis(200)).await;
    let busy = send(srv.addr, "POST", "/-/reload").await;
    let _never_answered = tokio::time::timeout(Duration::from_secs(20), srv.reloads.recv())
        .await
        .unwrap()
        .expect("a reload request");
    srv.stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(20), srv.task)
        .await
        .expect("the drain is bounded")
        .unwrap()
        .unwrap();
    // The connection was cut without an answer.
    let resp = tokio::time::timeout(Duration::from_secs(20), read_all(busy))
        .await
        .unwrap();
    assert_eq!(resp, "");
}
