//! The YAML shape of `metrics.web_config_file`: the Prometheus exporter toolkit's
//! `web-config.yml` (`tls_server_config`, `http_server_config`, `basic_auth_users`), read with
//! every error located at its file, line, column and key.
//!
//! Unknown keys are errors (a misspelt `client_ca_file` must not silently turn mTLS off). Values
//! that have a fixed vocabulary (client auth types, TLS versions, bcrypt hashes) are checked
//! while they are read, so that the YAML parser points at them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::located::LocatedError;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebFile {
    /// TLS for the listener; absent = plain HTTP.
    #[serde(default)]
    pub tls_server_config: Option<TlsFile>,
    /// HTTP options (response headers).
    #[serde(default)]
    pub http_server_config: Option<HttpFile>,
    /// Users and their bcrypt hashes; empty = no authentication.
    #[serde(default)]
    pub basic_auth_users: BTreeMap<String, BcryptHash>,
}

/// `tls_server_config`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    /// The server's certificate chain (PEM), relative to the web config's folder.
    pub cert_file: Option<PathBuf>,
    /// The server's private key (PEM).
    pub key_file: Option<PathBuf>,
    /// The CAs that sign client certificates (PEM), for the verifying client auth types.
    pub client_ca_file: Option<PathBuf>,
    /// What is asked of clients; default `NoClientCert`, or `RequireAndVerifyClientCert` when
    /// `client_ca_file` is set.
    pub client_auth_type: Option<ClientAuth>,
    /// The oldest TLS version accepted (default `TLS12`).
    pub min_version: Option<TlsVersion>,
    /// The newest TLS version accepted (default `TLS13`).
    pub max_version: Option<TlsVersion>,
}

/// `tls_server_config.client_auth_type`: the exporter toolkit's values (Go's `tls.ClientAuthType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    NoClientCert,
    /// A certificate is asked for, not required, not verified.
    RequestClientCert,
    /// A certificate is required, not verified.
    RequireAnyClientCert,
    /// A certificate is optional; one that is sent must verify against `client_ca_file`.
    VerifyClientCertIfGiven,
    /// A certificate is required and must verify against `client_ca_file` (mTLS).
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    /// Whether the client's certificate is verified against `client_ca_file`.
    pub fn verifies(self) -> bool {
        matches!(
            self,
            ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert
        )
    }
}

/// `min_version` / `max_version`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub enum TlsVersion {
    /// TLS 1.0: refused (not offered by rustls).
    TLS10,
    /// TLS 1.1: refused (not offered by rustls).
    TLS11,
    /// TLS 1.2.
    TLS12,
    /// TLS 1.3.
    TLS13,
}

/// `http_server_config`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpFile {
    /// Accepted for compatibility with the toolkit's files; the server speaks HTTP/1.1.
    #[serde(default)]
    pub http2: Option<bool>,
    /// Headers added to every response; the names the toolkit allows.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// Response headers `http_server_config.headers` may set (the exporter toolkit's list).
pub const ALLOWED_HEADERS: [&str; 5] = [
    "Content-Security-Policy",
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "X-XSS-Protection",
];

/// A bcrypt hash, checked for its form when read (`$2a$`, `$2b$`, `$2y$`, cost, salt and hash).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct BcryptHash(pub String);

impl TryFrom<String> for BcryptHash {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        match s.parse::<bcrypt::HashParts>() {
            Ok(_) => Ok(BcryptHash(s)),
            Err(_) => Err(
                "not a bcrypt hash (`$2y$10$` + 53 characters; make one with `htpasswd -nBC 10 USER`)"
                    .into(),
            ),
        }
    }
}

/// Whether a line carries YAML content (not blank, not a comment, not a document marker).
fn is_content(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && !t.starts_with('#') && t != "---" && t != "..."
}

/// Parses the file's text; an error names the line, column and key path.
pub fn parse(path: &Path, text: &str) -> Result<WebFile, LocatedError> {
    // An empty file (or comments only) turns nothing on, as with the toolkit.
    if !text.lines().any(is_content) {
        return Ok(WebFile::default());
    }
    let de = serde_norway::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let key = if key == "." { String::new() } else { key };
        // The parser's location is that of its last event, which for a value refused after
        // it was read (a bcrypt hash) can be the line before: the key's own line wins.
        let segments: Option<Vec<&str>> = e
            .path()
            .iter()
            .map(|s| match s {
                serde_path_to_error::Segment::Map { key } => Some(key.as_str()),
                _ => None,
            })
            .collect();
        let at_key = segments
            .filter(|s| !s.is_empty())
            .map(|s| key_position(text, &s))
            .filter(|(line, _)| *line > 0);
        let inner = e.into_inner();
        let (line, column) =
            at_key.unwrap_or_else(|| inner.location().map_or((0, 0), |l| (l.line(), l.column())));
        let message = crate::located::yaml_message(&inner, &key);
        LocatedError {
            file: path.to_path_buf(),
            line,
            column,
            key,
            message,
        }
    })
}

/// The 1-based line and column of the key at `keys` (`["tls_server_config", "key_file"]`) in
/// block-style YAML, found by indentation; the deepest key found when the full path is not
/// there (a missing `key_file` points at `tls_server_config`).
pub fn key_position(text: &str, keys: &[&str]) -> (usize, usize) {
    let mut found = (0, 0);
    // The indentation of the block searched: its parent's, and its own (its first line's).
    let mut parent: Option<usize> = None;
    let mut lines = text.lines().enumerate();
    'keys: for k in keys {
        let mut level = None;
        for (i, line) in lines.by_ref() {
            if !is_content(line) {
                continue;
            }
            let indent = line.len() - line.trim_start().len();
            if parent.is_some_and(|p| indent <= p) {
                // Left the parent's block without finding the key.
                break 'keys;
            }
            if *level.get_or_insert(indent) != indent {
                continue;
            }
            let rest = line.trim_start();
            let Some((name, _)) = rest.split_once(':') else {
                continue;
            };
            if name.trim().trim_matches(|c| c == '"' || c == '\'') == *k {
                found = (i + 1, indent + 1);
                parent = Some(indent);
                continue 'keys;
            }
        }
        break;
    }
    found
}

/// An error at the key path `keys` of the file.
pub fn error_at(
    path: &Path,
    text: &str,
    keys: &[&str],
    message: impl Into<String>,
) -> LocatedError {
    let (line, column) = key_position(text, keys);
    LocatedError {
        file: path.to_path_buf(),
        line,
        column,
        key: keys.join("."),
        message: message.into(),
    }
}
