//! The hub's TLS: the rustls server configuration (a certificate from files, or a self-signed
//! one for the demo), and **mutual TLS for TAXII partners** (`[tls] client_ca`, as CISA AIS
//! requires).
//!
//! * With `client_ca` set the hub asks every client for a certificate
//!   (`WebPkiClientVerifier` over the CA bundle, unauthenticated clients allowed): a client that
//!   sends none connects as before (sensors, browsers, the API), a client that sends one the CA
//!   did not sign — self-signed, another CA, expired — fails the handshake. Requiring the
//!   certificate is a TAXII rule (`client_auth = "required"`, see [`crate::share::accounts`]),
//!   not a handshake rule, so the rest of the hub keeps working for clients without one.
//! * [`PeerCertAcceptor`] wraps axum-server's rustls acceptor: after the handshake it reads the
//!   verified end-entity certificate and puts its SHA-256 ([`ClientCertificate`]) into every
//!   request of the connection as an extension. Handlers never see the certificate itself.
//! * An API key is bound to a certificate by that fingerprint ([`cert_fingerprint`] of the
//!   PEM given to `ward hub api-key create --client-cert`).

use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use axum::middleware::AddExtension;
use axum_server::accept::Accept;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;
use tower_layer::Layer;

use crate::config::{ClientAuth, TlsConfig};

/// Longest PEM file read for a client certificate or a CA bundle.
pub const MAX_PEM_BYTES: usize = 1024 * 1024;

/// The SHA-256 (lowercase hex) of the verified end-entity certificate a client presented on
/// this connection. Absent when it presented none (or the hub asks for none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    pub sha256: String,
}

/// The SHA-256 (lowercase hex) of a DER certificate: what an API key is bound to.
pub fn der_fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// The fingerprint of the first certificate in a PEM text (the end-entity certificate when the
/// file holds a chain). Errors say what is wrong with the file.
pub fn cert_fingerprint(pem: &[u8]) -> Result<String, String> {
    if pem.len() > MAX_PEM_BYTES {
        return Err(format!("a client certificate file is at most {MAX_PEM_BYTES} bytes"));
    }
    let first = CertificateDer::pem_slice_iter(pem).next().ok_or("no PEM certificate (-----BEGIN CERTIFICATE-----) found")?;
    let der = first.map_err(|e| format!("bad PEM certificate: {e}"))?;
    webpki::EndEntityCert::try_from(&der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    Ok(der_fingerprint(&der))
}

/// Reads `[tls]` into the server's rustls configuration, or `None` for plain HTTP.
pub async fn server_config(tls: &TlsConfig) -> anyhow::Result<Option<RustlsConfig>> {
    if tls.client_auth == ClientAuth::Required && tls.client_ca.is_none() {
        anyhow::bail!("[tls] client_auth = \"required\" needs client_ca: the CA bundle that signs the client certificates");
    }
    let (cert_pem, key_pem) = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let read = |p: &Path| std::fs::read(p).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()));
            (read(cert)?, read(key)?)
        }
        (None, None) if tls.self_signed => {
            let (cert, key) = crate::server::self_signed_pem()?;
            (cert.into_bytes(), key.into_bytes())
        }
        (None, None) if tls.client_ca.is_some() => anyhow::bail!("[tls] client_ca needs TLS: set cert and key (or self_signed)"),
        (None, None) => return Ok(None),
        _ => anyhow::bail!("[tls] needs both cert and key"),
    };
    let place = |what: &str| match &tls.cert {
        Some(p) => format!("{what} {}", p.display()),
        None => format!("the self-signed {what}"),
    };
    let Some(ca) = &tls.client_ca else {
        let config = RustlsConfig::from_pem(cert_pem, key_pem).await.map_err(|e| anyhow::anyhow!("cannot load TLS {} and its key: {e}", place("certificate")))?;
        return Ok(Some(config));
    };
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&cert_pem).collect::<Result<_, _>>().map_err(|e| anyhow::anyhow!("cannot read {}: {e}", place("certificate")))?;
    if chain.is_empty() {
        anyhow::bail!("no certificate in {}", place("certificate"));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| anyhow::anyhow!("cannot read the TLS key: {e}"))?;
    let ca_pem = std::fs::read(ca).map_err(|e| anyhow::anyhow!("cannot read [tls] client_ca {}: {e}", ca.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&ca_pem) {
        let cert = cert.map_err(|e| anyhow::anyhow!("[tls] client_ca {}: {e}", ca.display()))?;
        roots.add(cert).map_err(|e| anyhow::anyhow!("[tls] client_ca {}: not a CA certificate: {e}", ca.display()))?;
    }
    if roots.is_empty() {
        anyhow::bail!("[tls] client_ca {} holds no certificate", ca.display());
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
        .allow_unauthenticated()
        .build()
        .map_err(|e| anyhow::anyhow!("[tls] client_ca {}: {e}", ca.display()))?;
    let mut config = rustls::ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| anyhow::anyhow!("the TLS certificate and key do not go together: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(RustlsConfig::from_config(Arc::new(config))))
}

/// axum-server's rustls acceptor, plus the client certificate as a request extension (see
/// the module note).
#[derive(Clone)]
pub struct PeerCertAcceptor {
    inner: RustlsAcceptor,
}

impl PeerCertAcceptor {
    pub fn new(config: RustlsConfig) -> Self {
        PeerCertAcceptor { inner: RustlsAcceptor::new(config) }
    }
}

impl<I, S> Accept<I, S> for PeerCertAcceptor
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Send + 'static,
{
    type Stream = TlsStream<I>;
    type Service = AddExtension<S, Option<ClientCertificate>>;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move {
            let (stream, service) = inner.accept(stream, service).await?;
            // rustls has verified the chain against client_ca before the handshake completed.
            let cert = stream.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|der| ClientCertificate { sha256: der_fingerprint(der) });
            Ok((stream, axum::Extension(cert).layer(service)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_read_the_first_certificate_and_refuse_garbage() {
        let (cert, _) = crate::server::self_signed_pem().unwrap();
        let fp = cert_fingerprint(cert.as_bytes()).unwrap();
        assert_eq!(fp.len(), 64);
        let der = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
        assert_eq!(fp, hex::encode(Sha256::digest(der.as_ref())));
        let (other, _) = crate::server::self_signed_pem().unwrap();
        assert_eq!(cert_fingerprint(format!("{cert}{other}").as_bytes()).unwrap(), fp, "a chain: its first certificate");
        for bad in ["", "hello", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n"] {
            assert!(cert_fingerprint(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }
}
