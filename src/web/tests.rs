//! The web config's errors: each names the file, line and key.

use std::path::Path;

use super::WebConfig;
use super::file::{key_position, parse};

const HASH: &str = "$2y$10$XbEEqcm/SPuY8dfAN55mZ.Mbg8FQX5RfIV/8aXJQ1cM4kSeZ3.f8y";

fn load_err(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web-config.yml");
    std::fs::write(&path, text).unwrap();
    let e = WebConfig::load(Some(&path)).unwrap_err();
    let shown = e.to_string();
    shown
        .strip_prefix(&path.display().to_string())
        .unwrap()
        .to_owned()
}

#[test]
fn unknown_keys_are_errors_at_their_line() {
    let e = parse(
        Path::new("w.yml"),
        "basic_auth_users: {}\ntls_config:\n  cert_file: x\n",
    )
    .unwrap_err();
    assert_eq!((e.line, e.key.as_str()), (2, "tls_config"));
    assert!(e.message.contains("unknown field `tls_config`"), "{e}");

    let text = "tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [x]\n";
    let e = parse(Path::new("w.yml"), text).unwrap_err();
    assert_eq!(
        (e.line, e.key.as_str()),
        (4, "tls_server_config.cipher_suites")
    );
    assert!(e.message.contains("unknown field `cipher_suites`"), "{e}");
}

#[test]
fn bad_values_name_their_key() {
    let text = "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireClientCert\n";
    let e = parse(Path::new("w.yml"), text).unwrap_err();
    assert_eq!(
        (e.line, e.key.as_str()),
        (4, "tls_server_config.client_auth_type")
    );
    assert!(e.message.contains("RequireAndVerifyClientCert"), "{e}");

    let text = format!("basic_auth_users:\n  alice: {HASH}\n  bob: secret\n");
    let e = parse(Path::new("w.yml"), &text).unwrap_err();
    assert_eq!((e.line, e.key.as_str()), (3, "basic_auth_users.bob"));
    assert!(e.message.contains("not a bcrypt hash"), "{e}");

    let text = "tls_server_config:\n  min_version: TLS14\n";
    let e = parse(Path::new("w.yml"), text).unwrap_err();
    assert_eq!(
        (e.line, e.key.as_str()),
        (2, "tls_server_config.min_version")
    );
}

#[test]
fn tls_settings_are_checked_at_load_with_their_line() {
    assert_eq!(
        load_err("# TLS\ntls_server_config:\n  cert_file: server.crt\n"),
        ":2:1: tls_server_config.key_file: cert_file and key_file are both required for TLS"
    );
    let e = load_err("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n");
    assert!(
        e.starts_with(":2:3: tls_server_config.cert_file: cannot read "),
        "{e}"
    );
    assert!(e.contains("server.crt"), "{e}");
    let e = load_err(
        "tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS13\n  max_version: TLS12\n",
    );
    assert_eq!(
        e,
        ":4:3: tls_server_config.min_version: must not be above max_version"
    );
    let e = load_err("tls_server_config:\n  cert_file: a\n  key_file: b\n  max_version: TLS11\n");
    assert!(
        e.starts_with(":4:3: tls_server_config.max_version: "),
        "{e}"
    );
}

#[test]
fn headers_are_limited_to_the_toolkits_list() {
    let e = load_err("http_server_config:\n  headers:\n    X-Powered-By: me\n");
    assert!(
        e.starts_with(":3:5: http_server_config.headers.X-Powered-By: not a header"),
        "{e}"
    );
    let e = load_err("http_server_config:\n  headers:\n    X-Frame-Options: allow\n");
    assert_eq!(
        e,
        ":3:5: http_server_config.headers.X-Frame-Options: must be deny or sameorigin"
    );
}

#[test]
fn empty_and_auth_only_files_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.yml");
    std::fs::write(&path, "# nothing yet\n").unwrap();
    let w = WebConfig::load(Some(&path)).unwrap();
    assert!(w.tls().is_none());
    assert_eq!(w.describe(), "plain HTTP, no basic auth");
    let text = format!(
        "basic_auth_users:\n  alice: {HASH}\nhttp_server_config:\n  http2: false\n  headers:\n    X-Content-Type-Options: nosniff\n"
    );
    std::fs::write(&path, text).unwrap();
    let w = WebConfig::load(Some(&path)).unwrap();
    assert_eq!(w.describe(), "plain HTTP, basic auth for 1 user(s)");
    let mut h = hyper::HeaderMap::new();
    w.add_headers(&mut h);
    assert_eq!(h.get("x-content-type-options").unwrap(), "nosniff");
}

#[test]
fn an_unreadable_file_names_the_config_key() {
    let e = WebConfig::load(Some(Path::new("/nonexistent/web.yml"))).unwrap_err();
    assert_eq!(e.key, "metrics.web_config_file");
    assert!(e.message.starts_with("cannot read"), "{e}");
}

#[test]
fn key_position_follows_indentation() {
    let t = "a:\n  b: 1\nc:\n  # note\n  b: 2\n  d:\n    e: x\n";
    assert_eq!(key_position(t, &["c", "b"]), (5, 3));
    assert_eq!(key_position(t, &["c", "d", "e"]), (7, 5));
    // Missing: the deepest key found.
    assert_eq!(key_position(t, &["a", "zz"]), (1, 1));
    assert_eq!(key_position(t, &["zz"]), (0, 0));
}
