//! TLS for the HTTP listener: the rustls server configuration built from `tls_server_config`
//! (ring provider, TLS 1.2 and 1.3, the toolkit's client auth types), and the accept step that
//! refuses plain HTTP.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::file::{ClientAuth, TlsFile, TlsVersion};

/// The largest certificate or key file read.
pub const MAX_PEM_BYTES: usize = 1 << 20;

/// A failed TLS setting: the key (under `tls_server_config`) and why.
#[derive(Debug)]
pub struct TlsError {
    /// The key, e.g. `cert_file`.
    pub key: &'static str,
    /// What is wrong.
    pub message: String,
}

fn err(key: &'static str, message: impl Into<String>) -> TlsError {
    TlsError {
        key,
        message: message.into(),
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_pem(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    crate::read::read_bounded(path, MAX_PEM_BYTES, key)
        .map(String::into_bytes)
        .map_err(|e| err(key, format!("cannot read {}: {e}", path.display())))
}

fn certificates(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_pem(key, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            err(
                key,
                format!("{}: not a PEM certificate: {e}", path.display()),
            )
        })?;
    if certs.is_empty() {
        return Err(err(
            key,
            format!("{}: no certificate in it", path.display()),
        ));
    }
    Ok(certs)
}

/// The protocol versions from `min_version` to `max_version` (TLS 1.2 and 1.3 only).
fn versions(t: &TlsFile) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, TlsError> {
    let min = t.min_version.unwrap_or(TlsVersion::TLS12);
    let max = t.max_version.unwrap_or(TlsVersion::TLS13);
    if max < TlsVersion::TLS12 {
        return Err(err(
            "max_version",
            "TLS12 or TLS13 (older versions are not offered)",
        ));
    }
    if min > max {
        return Err(err("min_version", "must not be above max_version"));
    }
    let mut out = Vec::new();
    if min <= TlsVersion::TLS12 {
        out.push(&rustls::version::TLS12);
    }
    if max >= TlsVersion::TLS13 {
        out.push(&rustls::version::TLS13);
    }
    Ok(out)
}

/// The client auth type in force: the configured one, else mTLS when a client CA is given.
pub fn client_auth(t: &TlsFile) -> ClientAuth {
    t.client_auth_type.unwrap_or(if t.client_ca_file.is_some() {
        ClientAuth::RequireAndVerifyClientCert
    } else {
        ClientAuth::NoClientCert
    })
}

fn client_verifier(
    t: &TlsFile,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let auth = client_auth(t);
    if auth == ClientAuth::NoClientCert && t.client_ca_file.is_some() {
        return Err(err(
            "client_auth_type",
            "client_ca_file is set but NoClientCert asks for no client certificate",
        ));
    }
    if !auth.verifies() {
        return Ok(match auth {
            ClientAuth::NoClientCert => WebPkiClientVerifier::no_client_auth(),
            _ => Arc::new(AnyClientCert {
                mandatory: auth == ClientAuth::RequireAnyClientCert,
                algorithms: provider.signature_verification_algorithms,
            }),
        });
    }
    let Some(ca) = &t.client_ca_file else {
        return Err(err(
            "client_ca_file",
            "required by VerifyClientCertIfGiven and RequireAndVerifyClientCert",
        ));
    };
    let mut roots = RootCertStore::empty();
    for c in certificates("client_ca_file", ca)? {
        roots
            .add(c)
            .map_err(|e| err("client_ca_file", format!("{}: {e}", ca.display())))?;
    }
    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    let builder = if auth == ClientAuth::VerifyClientCertIfGiven {
        builder.allow_unauthenticated()
    } else {
        builder
    };
    builder
        .build()
        .map_err(|e| err("client_ca_file", e.to_string()))
}

/// The server configuration of `tls_server_config` (paths already resolved).
pub fn server_config(t: &TlsFile) -> Result<Arc<ServerConfig>, TlsError> {
    let (Some(cert_file), Some(key_file)) = (&t.cert_file, &t.key_file) else {
        let missing = if t.cert_file.is_none() {
            "cert_file"
        } else {
            "key_file"
        };
        return Err(err(
            missing,
            "cert_file and key_file are both required for TLS",
        ));
    };
    let versions = versions(t)?;
    let provider = provider();
    let certs = certificates("cert_file", cert_file)?;
    let key = PrivateKeyDer::from_pem_slice(&read_pem("key_file", key_file)?).map_err(|e| {
        err(
            "key_file",
            format!("{}: not a PEM private key: {e}", key_file.display()),
        )
    })?;
    let verifier = client_verifier(t, &provider)?;
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| err("min_version", e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| err("key_file", format!("does not fit cert_file: {e}")))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// `RequestClientCert` / `RequireAnyClientCert`: a certificate is asked for (required when
/// `mandatory`) and its handshake signature checked, but its issuer is not.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// What Go's HTTPS server answers to a plain HTTP request, so that a scraper configured with
/// `http://` learns why in its error.
const PLAIN_HTTP_ANSWER: &[u8] =
    b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// The TLS handshake on an accepted connection. A client that speaks plain HTTP (its first
/// byte is a letter; a TLS record starts with 0x16) gets a 400 saying so and the connection
/// is closed. The caller bounds the whole step with a timeout.
pub async fn accept<F>(
    acceptor: &tokio_rustls::TlsAcceptor,
    mut stream: TcpStream,
    wrap: F,
) -> std::io::Result<tokio_rustls::server::TlsStream<crate::stall::StallGuard<TcpStream>>>
where
    F: FnOnce(TcpStream) -> crate::stall::StallGuard<TcpStream>,
{
    let mut first = [0u8; 1];
    let n = stream.peek(&mut first).await?;
    if n == 1 && first[0].is_ascii_uppercase() {
        let _ = stream.write_all(PLAIN_HTTP_ANSWER).await;
        let _ = stream.shutdown().await;
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "plain HTTP on the TLS port",
        ));
    }
    acceptor.accept(wrap(stream)).await
}
