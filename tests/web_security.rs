//! `metrics.web_config_file`: TLS, mTLS and basic auth on every HTTP endpoint (PRODUCT.md §8).
//! A daemon started from files on disk, spoken to over real TLS on 127.0.0.1.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use hubble_noise::daemon::{Input, run_daemon};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type Issuer = rcgen::CertifiedIssuer<'static, rcgen::KeyPair>;

fn ca(name: &str) -> Issuer {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap()
}

/// A certificate for `san` signed by `issuer`: (cert PEM, key PEM).
fn leaf(issuer: &Issuer, san: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec![san.to_owned()]).unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// bcrypt at the lowest cost, so that tests stay fast.
fn hash(password: &str) -> String {
    bcrypt::hash(password, 4).unwrap()
}

/// A daemon whose config names `web.yml` beside it; the CA and client certificates to talk to it.
struct Setup {
    dir: tempfile::TempDir,
    ca: Issuer,
    addr: SocketAddr,
    running: common::Running,
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const TLS_ONLY: &str = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";

/// `web` is the web config's text; the server certificate (`server.crt`, `server.key`, for
/// `localhost`) and the CA (`ca.crt`) are written beside it.
async fn start(web: &str) -> Setup {
    start_with(web, "").await
}

/// [`start`] with more `[metrics]` keys.
async fn start_with(web: &str, metrics: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("web-ca");
    let (cert, key) = leaf(&ca, "localhost");
    write(dir.path(), "server.crt", &cert);
    write(dir.path(), "server.key", &key);
    write(dir.path(), "ca.crt", &ca.pem());
    write(dir.path(), "web.yml", web);
    let config = format!(
        "{}[metrics]\nweb_config_file = \"web.yml\"\n{metrics}",
        common::GOOD_CONFIG
    );
    let path = write(dir.path(), "config.toml", &config);
    let loaded = hubble_noise::load::config(Some(&path)).unwrap();
    let running = common::Running::spawn(loaded, Input::Relay).await;
    Setup {
        dir,
        ca,
        addr: running.addr,
        running,
    }
}

/// A TLS client trusting `ca`, with a client certificate when `identity` is given.
fn client_of(ca: &Issuer, identity: Option<(String, String)>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.pem().as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    Arc::new(match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
    })
}

impl Setup {
    /// A TLS client trusting the CA, with a client certificate when `identity` is given.
    fn client(&self, identity: Option<(String, String)>) -> Arc<rustls::ClientConfig> {
        client_of(&self.ca, identity)
    }

    async fn stop(self) {
        self.running.stop().await;
    }
}

/// One HTTPS request: (status, head, body), or the I/O error (handshake refused, reset).
async fn https(
    addr: SocketAddr,
    tls: &Arc<rustls::ClientConfig>,
    method: &str,
    path: &str,
    auth: Option<(&str, &str)>,
) -> std::io::Result<(u16, String, String)> {
    let tcp = TcpStream::connect(addr).await?;
    let connector = tokio_rustls::TlsConnector::from(tls.clone());
    let name = ServerName::try_from("localhost").unwrap();
    let mut s = connector.connect(name, tcp).await?;
    let auth = auth
        .map(|(u, p)| {
            let enc = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            format!("Authorization: Basic {enc}\r\n")
        })
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return Err(std::io::Error::other(format!("no HTTP response: {text:?}")));
    };
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Ok((status, head.to_owned(), body.to_owned()))
}

fn auth_config(users: &[(&str, &str)], tls: &str) -> String {
    let mut t = format!("{tls}basic_auth_users:\n");
    for (u, p) in users {
        t.push_str(&format!("  {u}: {}\n", hash(p)));
    }
    t
}

#[tokio::test]
async fn without_valid_credentials_every_route_is_refused_before_routing() {
    let s = start(&auth_config(&[("alice", "s3cret")], TLS_ONLY)).await;
    let c = s.client(None);
    for path in [
        "/metrics",
        "/",
        "/api/v1/flows",
        "/api/v1/groups",
        "/static/app.js",
        "/-/reload",
    ] {
        for auth in [None, Some(("alice", "wrong")), Some(("mallory", "s3cret"))] {
            let method = if path == "/-/reload" { "POST" } else { "GET" };
            let (status, head, _) = https(s.addr, &c, method, path, auth).await.unwrap();
            assert_eq!(status, 401, "{method} {path} with {auth:?}");
            assert!(
                head.contains("www-authenticate: Basic realm=\"hubble-noise\""),
                "{head}"
            );
        }
    }
    // The right password gets through: the metrics, the triage page and its API.
    let ok = Some(("alice", "s3cret"));
    let (status, _, body) = https(s.addr, &c, "GET", "/metrics", ok).await.unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("hubble_noise_build_info"));
    for (path, has) in [
        ("/", "<h1>Unexpected flows</h1>"),
        ("/api/v1/flows", "\"flows\""),
        ("/api/v1/groups", "\"groups\""),
    ] {
        let (status, _, body) = https(s.addr, &c, "GET", path, ok).await.unwrap();
        assert_eq!(status, 200, "{path}");
        assert!(body.contains(has), "{path}: {body}");
    }
    // The kubelet's probes stay open.
    for path in ["/healthz", "/readyz"] {
        let (status, _, _) = https(s.addr, &c, "GET", path, None).await.unwrap();
        assert_eq!(status, 200, "{path}");
    }
    s.stop().await;
}

#[tokio::test]
async fn plain_http_on_the_tls_port_is_refused_and_frees_its_slot() {
    // One connection at a time: each refused client must give its slot back at once.
    let s = start_with(TLS_ONLY, "max_connections = 1\n").await;
    let mut tcp = TcpStream::connect(s.addr).await.unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tcp.read_to_end(&mut buf).await;
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.0 400 Bad Request"), "{text}");
    assert!(text.contains("HTTP request to an HTTPS server"), "{text}");
    assert!(!text.contains("hubble_noise_"), "{text}");
    // Garbage that is not HTTP either: the handshake fails and the connection closes.
    let mut tcp = TcpStream::connect(s.addr).await.unwrap();
    tcp.write_all(b"\x16\x03\x01\x00\x05hello").await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "the connection stays open on a broken handshake"
    );
    // TLS itself works (the only slot is free again), with no password needed when none is
    // configured.
    let (status, _, _) = tokio::time::timeout(
        Duration::from_secs(5),
        https(s.addr, &s.client(None), "GET", "/metrics", None),
    )
    .await
    .expect("the refused clients still hold the connection slot")
    .unwrap();
    assert_eq!(status, 200);
    s.stop().await;
}

#[tokio::test]
async fn mtls_refuses_a_client_without_a_certificate_from_the_ca() {
    let web = format!(
        "{TLS_ONLY}  client_ca_file: ca.crt\n  client_auth_type: RequireAndVerifyClientCert\n"
    );
    let s = start(&web).await;
    let refused = |r: std::io::Result<(u16, String, String)>| match r {
        Err(_) => true,
        Ok((status, _, body)) => panic!("served {status}: {body}"),
    };
    let none = https(s.addr, &s.client(None), "GET", "/metrics", None).await;
    assert!(refused(none));
    let other = ca("another-ca");
    let stranger = s.client(Some(leaf(&other, "client")));
    assert!(refused(
        https(s.addr, &stranger, "GET", "/metrics", None).await
    ));
    let good = s.client(Some(leaf(&s.ca, "client")));
    let (status, _, _) = https(s.addr, &good, "GET", "/metrics", None).await.unwrap();
    assert_eq!(status, 200);
    s.stop().await;
}

#[tokio::test]
async fn verify_if_given_lets_a_client_without_certificate_in() {
    let web = format!(
        "{TLS_ONLY}  client_ca_file: ca.crt\n  client_auth_type: VerifyClientCertIfGiven\n  min_version: TLS13\n"
    );
    let s = start(&web).await;
    let (status, _, _) = https(s.addr, &s.client(None), "GET", "/metrics", None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    let stranger = s.client(Some(leaf(&ca("another-ca"), "client")));
    assert!(
        https(s.addr, &stranger, "GET", "/metrics", None)
            .await
            .is_err()
    );
    s.stop().await;
}

#[tokio::test]
async fn a_reload_changes_the_password_and_a_bad_one_keeps_the_old() {
    let s = start(&auth_config(&[("alice", "old")], TLS_ONLY)).await;
    let c = s.client(None);
    // The daemon reads its files in its own task: up with the old password first.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while https(s.addr, &c, "GET", "/metrics", Some(("alice", "old")))
        .await
        .map_or(true, |r| r.0 != 200)
    {
        assert!(tokio::time::Instant::now() < deadline, "daemon not up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let web = s.dir.path().join("web.yml");
    std::fs::write(&web, auth_config(&[("alice", "new")], TLS_ONLY)).unwrap();
    let (status, _, body) = https(s.addr, &c, "POST", "/-/reload", Some(("alice", "old")))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let old = https(s.addr, &c, "GET", "/metrics", Some(("alice", "old"))).await;
    assert_eq!(old.unwrap().0, 401);
    let (status, _, _) = https(s.addr, &c, "GET", "/metrics", Some(("alice", "new")))
        .await
        .unwrap();
    assert_eq!(status, 200);

    // A bad file: the reload fails with the located error, the previous config stays.
    std::fs::write(&web, "basic_auth_users:\n  alice: plaintext\n").unwrap();
    let new = Some(("alice", "new"));
    let (status, _, body) = https(s.addr, &c, "POST", "/-/reload", new).await.unwrap();
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("web.yml:2:"), "{body}");
    assert!(body.contains("basic_auth_users.alice"), "{body}");
    let (status, _, metrics) = https(s.addr, &c, "GET", "/metrics", new).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        common::sum(&metrics, "hubble_noise_config_last_reload_successful", &[]),
        0.0
    );
    s.stop().await;
}

#[tokio::test]
async fn a_bad_web_config_stops_the_start_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "web.yml",
        "tls_server_config:\n  cert_file: x.crt\n",
    );
    let config = format!(
        "{}[metrics]\nweb_config_file = \"web.yml\"\n",
        common::GOOD_CONFIG
    );
    let path = write(dir.path(), "config.toml", &config);
    let loaded = hubble_noise::load::config(Some(&path)).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let e = run_daemon(loaded, Input::Relay, listener, std::future::pending())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.ends_with("web.yml:1:1: tls_server_config.key_file: cert_file and key_file are both required for TLS"),
        "{e}"
    );
    // `check` reports it too, and fails.
    let out = common::cli::run(&["check", "-c", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("web.yml:1:1: tls_server_config.key_file"),
        "{err}"
    );
}

#[tokio::test]
async fn a_renewed_certificate_is_picked_up_from_the_watched_files() {
    let s = start(TLS_ONLY).await;
    let old = s.client(None);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while https(s.addr, &old, "GET", "/metrics", None).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "daemon not up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A certificate from another CA, written over the old files (as a Secret update does).
    let renewed = ca("renewed-ca");
    let (cert, key) = leaf(&renewed, "localhost");
    let key_path = s.dir.path().join("server.key");
    let cert_path = s.dir.path().join("server.crt");
    let (tmp_key, tmp_cert) = (
        s.dir.path().join("new-server.key"),
        s.dir.path().join("new-server.crt"),
    );
    std::fs::write(&tmp_key, key).unwrap();
    std::fs::write(&tmp_cert, cert).unwrap();
    std::fs::rename(&tmp_key, &key_path).unwrap();
    std::fs::rename(&tmp_cert, &cert_path).unwrap();
    let new = client_of(&renewed, None);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok((200, _, _)) = https(s.addr, &new, "GET", "/metrics", None).await {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the renewed certificate was not served within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The old CA no longer verifies the server.
    assert!(https(s.addr, &old, "GET", "/metrics", None).await.is_err());
    s.stop().await;
}
