//! The relay's endpoint: address, timeouts, keepalive, TLS.

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use super::reason::{Reason, chain};
use crate::config::RelayConfig;

/// The largest CA, certificate or key file read.
pub const MAX_TLS_FILE: usize = 1 << 20;

/// Builds the endpoint: address, timeouts, keepalive, TLS (files read now, so a renewed
/// certificate is used on the next connect).
pub fn endpoint(cfg: &RelayConfig) -> Result<Endpoint, EndpointError> {
    let ep = Endpoint::from_shared(cfg.address.clone())
        .map_err(|e| EndpointError::other(format!("relay.address {:?}: {e}", cfg.address)))?
        .connect_timeout(cfg.connect_timeout)
        .http2_keep_alive_interval(cfg.keepalive_interval)
        .keep_alive_timeout(cfg.keepalive_timeout)
        .keep_alive_while_idle(true)
        .tcp_keepalive(Some(cfg.keepalive_interval));
    if !cfg.address.starts_with("https://") {
        return Ok(ep);
    }
    let read = |p: &std::path::Path| {
        crate::read::read_bounded(p, MAX_TLS_FILE, "TLS file")
            .map(String::into_bytes)
            .map_err(|e| EndpointError::tls(format!("{}: {e}", p.display())))
    };
    let mut tls = ClientTlsConfig::new();
    if let Some(ca) = &cfg.ca_file {
        tls = tls.ca_certificate(Certificate::from_pem(read(ca)?));
    }
    if let Some(name) = &cfg.server_name {
        tls = tls.domain_name(name.clone());
    }
    if let (Some(cert), Some(key)) = (&cfg.cert_file, &cfg.key_file) {
        tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
    }
    ep.tls_config(tls)
        .map_err(|e| EndpointError::tls(format!("TLS configuration: {}", chain(&e))))
}

/// An error building the endpoint.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct EndpointError {
    /// `tls` or `other`.
    pub reason: Reason,
    /// What went wrong.
    pub message: String,
}

impl EndpointError {
    fn tls(message: String) -> Self {
        Self {
            reason: Reason::Tls,
            message,
        }
    }
    fn other(message: String) -> Self {
        Self {
            reason: Reason::Other,
            message,
        }
    }
}
