//! Web security for every HTTP endpoint (PRODUCT.md §8, `metrics.web_config_file`): TLS (and
//! mTLS) on the listener, basic auth on every request but the kubelet's probes, and extra
//! response headers, from a file in the format of the Prometheus exporter toolkit's
//! `web-config.yml`.
//!
//! - `file`: the YAML shape, read with located errors;
//! - `tls`: the rustls server configuration and the accept step;
//! - `auth`: basic auth with bcrypt, cached.
//!
//! [`WebConfig::load`] builds it; the server reads the one in force from a [`WebHandle`] when it
//! accepts a connection (TLS) and for each request (auth), so that a reload takes effect
//! without a restart.

mod auth;
pub mod file;
pub mod tls;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request};

pub use auth::{CHALLENGE, Users, credentials};
pub use tls::accept;

use crate::located::LocatedError;
use file::{ALLOWED_HEADERS, ClientAuth, WebFile, error_at};

/// The largest web config file read.
pub const MAX_FILE_BYTES: usize = 1 << 20;

/// The web security in force.
#[derive(Debug, Default)]
pub struct WebConfig {
    /// TLS for new connections; `None` = plain HTTP.
    tls: Option<Arc<rustls::ServerConfig>>,
    /// The client auth type, when TLS is on.
    client_auth: Option<ClientAuth>,
    /// Basic auth users; `None` = no authentication.
    users: Option<Arc<Users>>,
    /// Headers added to every response.
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl WebConfig {
    /// Plain HTTP, no authentication: the default without `metrics.web_config_file`.
    pub fn plain() -> Self {
        Self::default()
    }

    /// Reads and builds the web config at `path` (`None`: [`WebConfig::plain`]). Every error
    /// names the file, line and key; relative paths in it are relative to its folder.
    pub fn load(path: Option<&Path>) -> Result<Self, LocatedError> {
        let Some(path) = path else {
            return Ok(Self::plain());
        };
        let text =
            crate::read::read_bounded(path, MAX_FILE_BYTES, "web config file").map_err(|e| {
                LocatedError {
                    file: path.to_path_buf(),
                    line: 0,
                    column: 0,
                    key: "metrics.web_config_file".into(),
                    message: format!("cannot read: {e}"),
                }
            })?;
        let mut web = file::parse(path, &text)?;
        if let Some(dir) = path.parent() {
            resolve_paths(&mut web, dir);
        }
        let mut out = Self::plain();
        if let Some(t) = &web.tls_server_config {
            let cfg = tls::server_config(t)
                .map_err(|e| error_at(path, &text, &["tls_server_config", e.key], e.message))?;
            out.tls = Some(cfg);
            out.client_auth = Some(tls::client_auth(t));
        }
        if let Some(h) = &web.http_server_config {
            out.headers = headers(&h.headers).map_err(|(name, message)| {
                error_at(
                    path,
                    &text,
                    &["http_server_config", "headers", &name],
                    message,
                )
            })?;
        }
        if !web.basic_auth_users.is_empty() {
            let users = web
                .basic_auth_users
                .into_iter()
                .map(|(u, h)| (u, h.0))
                .collect();
            out.users = Some(Arc::new(Users::new(users)));
        }
        Ok(out)
    }

    /// The TLS acceptor for new connections, when TLS is on.
    pub fn tls(&self) -> Option<tokio_rustls::TlsAcceptor> {
        self.tls.clone().map(tokio_rustls::TlsAcceptor::from)
    }

    /// Whether a request may go on to routing: always without users; else `GET`/`HEAD` of
    /// `/healthz` and `/readyz` (the kubelet's probes), or valid credentials.
    pub async fn admits<B>(&self, req: &Request<B>) -> bool {
        let Some(users) = &self.users else {
            return true;
        };
        let probe = matches!(req.uri().path(), "/healthz" | "/readyz");
        if probe && matches!(*req.method(), Method::GET | Method::HEAD) {
            return true;
        }
        users
            .check(req.headers().get(hyper::header::AUTHORIZATION))
            .await
    }

    /// Adds the configured headers to a response's.
    pub fn add_headers(&self, to: &mut HeaderMap) {
        for (k, v) in &self.headers {
            to.insert(k.clone(), v.clone());
        }
    }

    /// One line for `check`: what is on.
    pub fn describe(&self) -> String {
        let tls = match self.client_auth {
            None => "plain HTTP".to_string(),
            Some(a) => format!("TLS, client certificates: {a:?}"),
        };
        let auth = match &self.users {
            None => "no basic auth".to_string(),
            Some(u) => format!("basic auth for {} user(s)", u.len()),
        };
        format!("{tls}, {auth}")
    }
}

fn resolve_paths(web: &mut WebFile, dir: &Path) {
    if let Some(t) = &mut web.tls_server_config {
        for p in [&mut t.cert_file, &mut t.key_file, &mut t.client_ca_file]
            .into_iter()
            .flatten()
        {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        }
    }
}

/// The configured headers, checked as the toolkit checks them.
fn headers(
    h: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<(HeaderName, HeaderValue)>, (String, String)> {
    let mut out = Vec::new();
    for (name, value) in h {
        let fail = |m: String| (name.clone(), m);
        if !ALLOWED_HEADERS.contains(&name.as_str()) {
            return Err(fail(format!(
                "not a header that may be set; allowed: {}",
                ALLOWED_HEADERS.join(", ")
            )));
        }
        let lower = value.to_ascii_lowercase();
        if name == "X-Content-Type-Options" && lower != "nosniff" {
            return Err(fail("must be nosniff".into()));
        }
        if name == "X-Frame-Options" && lower != "deny" && lower != "sameorigin" {
            return Err(fail("must be deny or sameorigin".into()));
        }
        let v = HeaderValue::from_str(value).map_err(|e| fail(e.to_string()))?;
        let k = HeaderName::from_bytes(name.as_bytes()).map_err(|e| fail(e.to_string()))?;
        out.push((k, v));
    }
    Ok(out)
}

/// The files a web config names (itself, and its TLS files), for the watcher. Best effort:
/// a file that does not parse names only itself.
pub fn watched_files(path: &Path) -> Vec<PathBuf> {
    let mut out = vec![path.to_path_buf()];
    let Ok(text) = crate::read::read_bounded(path, MAX_FILE_BYTES, "web config file") else {
        return out;
    };
    let Ok(mut web) = file::parse(path, &text) else {
        return out;
    };
    if let Some(dir) = path.parent() {
        resolve_paths(&mut web, dir);
    }
    if let Some(t) = web.tls_server_config {
        out.extend(
            [t.cert_file, t.key_file, t.client_ca_file]
                .into_iter()
                .flatten(),
        );
    }
    out
}

/// The web config in force, swapped by reloads.
#[derive(Debug, Default)]
pub struct WebHandle(RwLock<Arc<WebConfig>>);

impl WebHandle {
    /// A handle holding `web`.
    pub fn new(web: WebConfig) -> Self {
        Self(RwLock::new(Arc::new(web)))
    }

    /// The web config in force.
    pub fn current(&self) -> Arc<WebConfig> {
        match self.0.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts `web` in force for new connections and requests.
    pub fn set(&self, web: WebConfig) {
        let web = Arc::new(web);
        match self.0.write() {
            Ok(mut g) => *g = web,
            Err(poisoned) => *poisoned.into_inner() = web,
        }
    }
}

#[cfg(test)]
mod tests;
