//! Reloads while the daemon follows a (fake) relay: watched policy files, a symlink swap as
//! Kubernetes does it, a rejected change, and a steady stream that loses or repeats no flow.

// Tests unwrap freely: a failure is the test failing (the lint is for the product).
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{http, scrape, sum, wait_for};
use hubble_noise::api::flow::{DropReason, Endpoint, Flow, Ip, TrafficDirection, Verdict};
use hubble_noise::api::observer::get_flows_response::ResponseTypes;
use hubble_noise::api::observer::{GetFlowsRequest, GetFlowsResponse};
use hubble_noise::daemon::{Input, run_daemon};
use hubble_noise_testkit::observer_server::{Observer, ObserverServer};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::transport::Server;
use tonic::{Request, Response, Status};

type Item = Result<GetFlowsResponse, Status>;

/// A relay with one stream, fed by the test.
#[derive(Clone)]
struct Relay(Arc<Mutex<Option<mpsc::Receiver<Item>>>>);

#[tonic::async_trait]
impl Observer for Relay {
    type GetFlowsStream = ReceiverStream<Item>;
    async fn get_flows(
        &self,
        _req: Request<GetFlowsRequest>,
    ) -> Result<Response<Self::GetFlowsStream>, Status> {
        let rx = self.0.lock().unwrap().take();
        match rx {
            Some(rx) => Ok(Response::new(ReceiverStream::new(rx))),
            None => Err(Status::unavailable("one stream only")),
        }
    }
}

struct Setup {
    addr: SocketAddr,
    dir: tempfile::TempDir,
    flows: mpsc::Sender<Item>,
    _stop: (oneshot::Sender<()>, oneshot::Sender<()>),
}

const POLICY: &str = r#"
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: deny-vendor, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: checkout}}
  log: {value: LOG}
  egressDeny:
    - toCIDRSet: [{cidr: 203.0.113.0/24}]
"#;

fn policy(log: &str) -> String {
    POLICY.replace("LOG", log)
}

/// Kubernetes' ConfigMap layout: `p.yaml -> ..data/p.yaml`, `..data -> ..<version>`; an update
/// writes a new version directory and swaps `..data`.
fn configmap_write(dir: &Path, version: u32, text: &str) {
    let v = dir.join(format!("..v{version}"));
    std::fs::create_dir_all(&v).unwrap();
    std::fs::write(v.join("p.yaml"), text).unwrap();
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(format!("..v{version}"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    if !dir.join("p.yaml").exists() {
        std::os::unix::fs::symlink("..data/p.yaml", dir.join("p.yaml")).unwrap();
    }
}

async fn setup(initial_log: &str) -> Setup {
    let (flows, rx) = mpsc::channel(64);
    let relay = Relay(Arc::new(Mutex::new(Some(rx))));
    let rl = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay_addr = rl.local_addr().unwrap();
    let (stop_relay, srx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = Server::builder()
            .add_service(ObserverServer::new(relay))
            .serve_with_incoming_shutdown(TcpListenerStream::new(rl), async {
                let _ = srx.await;
            })
            .await;
    });
    let dir = tempfile::tempdir().unwrap();
    let pdir = dir.path().join("policies");
    std::fs::create_dir(&pdir).unwrap();
    configmap_write(&pdir, 1, &policy(initial_log));
    let config = format!(
        "[relay]\naddress = \"http://{relay_addr}\"\n\
         [classify]\nexpected_log_tags = [\"vendor-telemetry-blocked\"]\n\
         policy_files = [\"policies/p.yaml\"]\n"
    );
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).unwrap();
    let loaded = hubble_noise::load::config(Some(&path)).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = oneshot::channel::<()>();
    tokio::spawn(run_daemon(loaded, Input::Relay, listener, async {
        let _ = rx.await;
    }));
    Setup {
        addr,
        dir,
        flows,
        _stop: (stop, stop_relay),
    }
}

/// A POLICY_DENY egress drop from shop/checkout to 203.0.113.10:443, without policy_log.
fn drop_flow(n: u64) -> Item {
    let t = pbjson_types::Timestamp {
        seconds: 1_790_000_000 + i64::try_from(n).unwrap(),
        nanos: 0,
    };
    Ok(GetFlowsResponse {
        response_types: Some(ResponseTypes::Flow(Flow {
            uuid: format!("reload-{n}"),
            node_name: "prod/n1".into(),
            verdict: Verdict::Dropped as i32,
            drop_reason_desc: DropReason::PolicyDeny as i32,
            traffic_direction: TrafficDirection::Egress as i32,
            time: Some(t),
            ip: Some(Ip {
                source: "10.0.1.23".into(),
                destination: "203.0.113.10".into(),
                ..Default::default()
            }),
            source: Some(Endpoint {
                identity: 48211,
                namespace: "shop".into(),
                pod_name: "checkout-1".into(),
                labels: vec!["k8s:app=checkout".into()],
                ..Default::default()
            }),
            destination: Some(Endpoint {
                identity: 2,
                labels: vec!["reserved:world".into()],
                ..Default::default()
            }),
            ..Default::default()
        })),
        node_name: "prod/n1".into(),
        time: Some(t),
    })
}

fn class(text: &str, c: &str) -> f64 {
    sum(
        text,
        "hubble_noise_flows_total",
        &[&format!("class=\"{c}\"")],
    )
}

fn reload_ts(text: &str) -> f64 {
    sum(
        text,
        "hubble_noise_config_last_reload_success_timestamp_seconds",
        &[],
    )
}

fn pdir(s: &Setup) -> PathBuf {
    s.dir.path().join("policies")
}

#[tokio::test]
async fn watched_policy_change_applies_and_a_bad_one_is_rejected() {
    let s = setup("not-ours").await;
    s.flows.send(drop_flow(1)).await.unwrap();
    let t = wait_for(s.addr, "first flow", |t| class(t, "unexpected") == 1.0).await;
    let before = reload_ts(&t);
    // Make sure the next success timestamp differs (it has second resolution at least).
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // A good change through a ConfigMap-style symlink swap: picked up without SIGHUP or POST.
    configmap_write(&pdir(&s), 2, &policy("vendor-telemetry-blocked"));
    wait_for(s.addr, "reload after the swap", |t| reload_ts(t) > before).await;
    s.flows.send(drop_flow(2)).await.unwrap();
    let t = wait_for(s.addr, "expected by policy", |t| {
        class(t, "expected") == 1.0
    })
    .await;
    assert_eq!(
        sum(
            &t,
            "hubble_noise_flows_total",
            &["reason=\"vendor-telemetry-blocked\""]
        ),
        1.0
    );

    // A bad change: rejected, the gauge reads 0, the old rules still decide.
    configmap_write(&pdir(&s), 3, "kind: CiliumNetworkPolicy\nspec: [\n");
    wait_for(s.addr, "failed reload", |t| {
        sum(t, "hubble_noise_config_last_reload_successful", &[]) == 0.0
    })
    .await;
    s.flows.send(drop_flow(3)).await.unwrap();
    let t = wait_for(s.addr, "old rules decide", |t| class(t, "expected") == 2.0).await;
    assert_eq!(class(&t, "unexpected"), 1.0, "counters keep their values");
    // POST /-/reload says why, with the file and line.
    let (status, _, body) = http(s.addr, "POST", "/-/reload", None).await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("p.yaml:2:7: document[0].spec: invalid type"),
        "{body}"
    );
}

#[tokio::test]
async fn steady_stream_loses_and_repeats_nothing_across_reloads() {
    const N: u64 = 20_000;
    let s = setup("vendor-telemetry-blocked").await;
    let tx = s.flows.clone();
    let feeder = tokio::spawn(async move {
        for n in 0..N {
            tx.send(drop_flow(n)).await.unwrap();
            if n % 500 == 0 {
                tokio::task::yield_now().await;
            }
        }
    });
    let mut version = 10;
    for i in 0..20 {
        if i % 4 == 0 {
            version += 1;
            configmap_write(&pdir(&s), version, &policy("vendor-telemetry-blocked"));
        }
        assert_eq!(http(s.addr, "POST", "/-/reload", None).await.0, 200);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    feeder.await.unwrap();
    let t = wait_for(s.addr, "every flow", |t| {
        sum(t, "hubble_noise_flows_total", &[]) >= N as f64
    })
    .await;
    assert_eq!(sum(&t, "hubble_noise_flows_total", &[]), N as f64);
    assert_eq!(
        class(&t, "expected"),
        N as f64,
        "the same rules before and after"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sum(&scrape(s.addr).await, "hubble_noise_flows_total", &[]),
        N as f64
    );
}
