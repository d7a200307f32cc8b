//! TLS probing: the certificate chain and negotiated parameters (through rustls with a verifier
//! that records instead of rejecting), the old protocol versions and weak ciphers a server still
//! accepts (through hand-built ClientHellos whose ServerHello is parsed with `tls-parser`, since
//! rustls cannot speak SSLv3, TLS 1.0 or 1.1), and the certificate facts the checks need
//! (x509-parser).
//!
//! Invariants: no probe ever completes a handshake with old parameters — it reads the server's
//! first flight and closes. Trust is judged by webpki against the Mozilla roots (webpki-roots)
//! plus any CA given with `--ca-file`, at a moment inside the leaf's validity so that an expired
//! certificate is reported as expired and not also as untrusted.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Largest first flight read from a raw handshake (ServerHello + Certificate + key exchange):
/// a chain of a few 4096-bit certificates fits many times over.
const MAX_FIRST_FLIGHT: usize = 64 * 1024;

/// Facts of one TLS session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSession {
    /// `TLS 1.3`, `TLS 1.2`, `TLS 1.0`...
    pub version: String,
    pub cipher: String,
    /// Certificate chain as sent, leaf first (DER).
    pub chain: Vec<Vec<u8>>,
}

#[derive(Debug)]
struct RecordingVerifier {
    chain: Mutex<Vec<Vec<u8>>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut chain = vec![end_entity.to_vec()];
        chain.extend(intermediates.iter().map(|c| c.to_vec()));
        if let Ok(mut slot) = self.chain.lock() {
            *slot = chain;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(&self, _: &[u8], _: &CertificateDer<'_>, _: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(&self, _: &[u8], _: &CertificateDer<'_>, _: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// The verdict of webpki on a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    Trusted,
    /// Chains to no trusted root (self-signed, private CA, missing intermediate).
    UnknownIssuer,
    /// Any other chain error (bad signature, bad encoding, unsupported algorithm...).
    Invalid(String),
}

/// TLS client with the scanner's trust anchors.
pub struct TlsClient {
    provider: Arc<CryptoProvider>,
    roots: Arc<RootCertStore>,
}

impl TlsClient {
    /// Mozilla's roots plus `extra_roots` (DER).
    pub fn new(extra_roots: &[Vec<u8>]) -> TlsClient {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        for der in extra_roots {
            let _ = roots.add(CertificateDer::from(der.clone()));
        }
        TlsClient { provider, roots: Arc::new(roots) }
    }

    /// Read PEM certificates (a CA bundle) into DER.
    pub fn read_pem_bundle(text: &[u8]) -> Vec<Vec<u8>> {
        x509_parser::pem::Pem::iter_from_buffer(text)
            .filter_map(Result::ok)
            .filter(|pem| pem.label == "CERTIFICATE")
            .map(|pem| pem.contents)
            .collect()
    }

    /// TLS 1.2/1.3 handshake that records the chain whatever it is.
    pub async fn handshake(&self, stream: TcpStream, hostname: Option<&str>, ip: IpAddr, timeout: Duration) -> Option<(TlsStream<TcpStream>, TlsSession)> {
        let verifier = Arc::new(RecordingVerifier { chain: Mutex::new(Vec::new()), provider: self.provider.clone() });
        let config = rustls::ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .ok()?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth();
        let name = server_name(hostname, ip);
        let connector = TlsConnector::from(Arc::new(config));
        let tls = tokio::time::timeout(timeout, connector.connect(name, stream)).await.ok()?.ok()?;
        let (_, conn) = tls.get_ref();
        let version = match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3".to_string(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2".to_string(),
            Some(other) => format!("{other:?}"),
            None => "unknown".to_string(),
        };
        let cipher = conn.negotiated_cipher_suite().map(|c| format!("{:?}", c.suite())).unwrap_or_default();
        let chain = verifier.chain.lock().map(|c| c.clone()).unwrap_or_default();
        Some((tls, TlsSession { version, cipher, chain }))
    }

    /// Judge the chain's trust at a moment inside the leaf's validity (expiry is its own check).
    pub fn trust(&self, chain: &[Vec<u8>], hostname: Option<&str>, ip: IpAddr) -> Trust {
        let Some(leaf) = chain.first() else { return Trust::Invalid("no certificate".into()) };
        let Some(facts) = CertFacts::parse(leaf) else { return Trust::Invalid("certificate does not parse".into()) };
        let verifier = match WebPkiServerVerifier::builder_with_provider(self.roots.clone(), self.provider.clone()).build() {
            Ok(v) => v,
            Err(e) => return Trust::Invalid(e.to_string()),
        };
        let middle = facts.not_before + (facts.not_after - facts.not_before) / 2;
        let now = UnixTime::since_unix_epoch(Duration::from_secs(middle.timestamp().max(0) as u64));
        let end_entity = CertificateDer::from(leaf.clone());
        let intermediates: Vec<CertificateDer<'_>> = chain[1..].iter().map(|c| CertificateDer::from(c.clone())).collect();
        match verifier.verify_server_cert(&end_entity, &intermediates, &server_name(hostname, ip), &[], now) {
            Ok(_) => Trust::Trusted,
            Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. })) => Trust::Trusted,
            Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => Trust::UnknownIssuer,
            Err(e) => Trust::Invalid(e.to_string()),
        }
    }
}

fn server_name(hostname: Option<&str>, ip: IpAddr) -> ServerName<'static> {
    hostname
        .and_then(|h| ServerName::try_from(h.to_string()).ok())
        .unwrap_or_else(|| ServerName::IpAddress(ip.into()))
}

/// A protocol version offered in a raw ClientHello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OldVersion {
    Ssl3,
    Tls10,
    Tls11,
}

impl OldVersion {
    pub const ALL: [OldVersion; 3] = [OldVersion::Ssl3, OldVersion::Tls10, OldVersion::Tls11];

    pub fn wire(self) -> u16 {
        match self {
            OldVersion::Ssl3 => 0x0300,
            OldVersion::Tls10 => 0x0301,
            OldVersion::Tls11 => 0x0302,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            OldVersion::Ssl3 => "SSLv3",
            OldVersion::Tls10 => "TLS 1.0",
            OldVersion::Tls11 => "TLS 1.1",
        }
    }
}

/// Cipher suites a TLS 1.0-era server accepts (ECDHE/DHE/RSA with AES-CBC or 3DES).
const CLASSIC_CIPHERS: [u16; 12] = [0xc013, 0xc014, 0xc009, 0xc00a, 0x0033, 0x0039, 0x002f, 0x0035, 0xc012, 0x0016, 0x000a, 0x00ff];
/// RC4, 3DES, single DES and export suites: accepting any of them is a finding.
pub const WEAK_CIPHERS: [u16; 16] = [
    0x0004, 0x0005, 0xc011, 0xc007, 0x000a, 0xc012, 0x0016, 0x0013, 0xc008, 0x0003, 0x0006, 0x0008, 0x0009, 0x0014, 0x0062, 0x0064,
];

/// A ClientHello record offering `version` and `ciphers`, with SNI when a name is known.
pub fn client_hello(version: u16, ciphers: &[u16], sni: Option<&str>) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&version.to_be_bytes());
    body.extend_from_slice(&[0x5a; 32]); // client random: content does not matter to a probe
    body.push(0); // no session id
    body.extend_from_slice(&((ciphers.len() * 2) as u16).to_be_bytes());
    for c in ciphers {
        body.extend_from_slice(&c.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // compression: null
    if version >= 0x0301 {
        let mut ext = Vec::new();
        if let Some(name) = sni.filter(|n| n.len() < 256) {
            let name = name.as_bytes();
            ext.extend_from_slice(&[0x00, 0x00]);
            ext.extend_from_slice(&((name.len() + 5) as u16).to_be_bytes());
            ext.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
            ext.push(0);
            ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
            ext.extend_from_slice(name);
        }
        // supported groups: x25519, secp256r1, secp384r1
        ext.extend_from_slice(&[0x00, 0x0a, 0x00, 0x08, 0x00, 0x06, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18]);
        // ec point formats: uncompressed
        ext.extend_from_slice(&[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]);
        // signature algorithms: rsa_pkcs1_sha256, ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha1, ecdsa_sha1
        ext.extend_from_slice(&[0x00, 0x0d, 0x00, 0x0c, 0x00, 0x0a, 0x04, 0x01, 0x04, 0x03, 0x08, 0x04, 0x02, 0x01, 0x02, 0x03]);
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
    }
    let mut handshake = vec![0x01];
    handshake.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend_from_slice(&body);
    let record_version: u16 = if version == 0x0300 { 0x0300 } else { 0x0301 };
    let mut record = vec![0x16];
    record.extend_from_slice(&record_version.to_be_bytes());
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

/// What a server's first flight says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirstFlight {
    /// (version, cipher) of the ServerHello.
    pub server_hello: Option<(u16, u16)>,
    pub chain: Vec<Vec<u8>>,
    pub alert: bool,
}

/// Parse records until ServerHelloDone, an alert or the end of the bytes; handshake messages are
/// reassembled across records.
pub fn parse_first_flight(bytes: &[u8]) -> FirstFlight {
    use tls_parser::{TlsMessage, TlsMessageHandshake, TlsRecordType};
    let mut flight = FirstFlight::default();
    let mut handshake = Vec::new();
    let mut rest = bytes;
    while let Ok((next, record)) = tls_parser::parse_tls_raw_record(rest) {
        if record.hdr.record_type == TlsRecordType::Alert {
            flight.alert = true;
            break;
        }
        if record.hdr.record_type == TlsRecordType::Handshake {
            handshake.extend_from_slice(record.data);
        }
        rest = next;
    }
    let mut messages = handshake.as_slice();
    while let Ok((next, message)) = tls_parser::parse_tls_message_handshake(messages) {
        match message {
            TlsMessage::Handshake(TlsMessageHandshake::ServerHello(hello)) => {
                flight.server_hello = Some((hello.version.0, hello.cipher.0));
            }
            TlsMessage::Handshake(TlsMessageHandshake::Certificate(certs)) => {
                flight.chain = certs.cert_chain.iter().map(|c| c.data.to_vec()).collect();
            }
            TlsMessage::Handshake(TlsMessageHandshake::ServerDone(_)) => break,
            _ => {}
        }
        messages = next;
    }
    flight
}

fn flight_complete(bytes: &[u8]) -> bool {
    let flight = parse_first_flight(bytes);
    flight.alert || (flight.server_hello.is_some() && bytes.windows(4).any(|w| w == [0x0e, 0, 0, 0]))
}

/// Send one raw ClientHello and parse what comes back.
pub async fn raw_hello(addr: SocketAddr, hello: &[u8], timeout: Duration) -> FirstFlight {
    let Ok(Ok(mut stream)) = tokio::time::timeout(timeout, TcpStream::connect(addr)).await else { return FirstFlight::default() };
    if stream.write_all(hello).await.is_err() {
        return FirstFlight::default();
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + timeout;
    while buf.len() < MAX_FIRST_FLIGHT {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => {
                buf.extend_from_slice(&chunk[..n]);
                if flight_complete(&buf) {
                    break;
                }
            }
            _ => break,
        }
    }
    parse_first_flight(&buf)
}

/// Session facts from a TLS 1.0 hello, for servers rustls cannot talk to.
pub async fn raw_session(addr: SocketAddr, hostname: Option<&str>, timeout: Duration) -> Option<TlsSession> {
    for version in [0x0303u16, 0x0302, 0x0301] {
        let flight = raw_hello(addr, &client_hello(version, &CLASSIC_CIPHERS, hostname), timeout).await;
        if let Some((v, cipher)) = flight.server_hello {
            return Some(TlsSession { version: version_label(v), cipher: cipher_name(cipher), chain: flight.chain });
        }
    }
    None
}

/// Old protocol versions and weak ciphers a server accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProtocolScan {
    pub old_versions: Vec<OldVersion>,
    /// (version label, cipher name) of each weak cipher the server chose when offered only weak ones.
    pub weak_ciphers: Vec<(String, String)>,
}

/// Offer each old version, then only weak ciphers at TLS 1.2 and 1.0.
pub async fn scan_protocols(addr: SocketAddr, hostname: Option<&str>, timeout: Duration) -> ProtocolScan {
    let mut scan = ProtocolScan::default();
    for version in OldVersion::ALL {
        let flight = raw_hello(addr, &client_hello(version.wire(), &CLASSIC_CIPHERS, hostname), timeout).await;
        if matches!(flight.server_hello, Some((v, _)) if v == version.wire()) {
            scan.old_versions.push(version);
        }
    }
    for version in [0x0303u16, 0x0301] {
        let flight = raw_hello(addr, &client_hello(version, &WEAK_CIPHERS, hostname), timeout).await;
        if let Some((v, cipher)) = flight.server_hello {
            if WEAK_CIPHERS.contains(&cipher) {
                let entry = (version_label(v), cipher_name(cipher));
                if !scan.weak_ciphers.iter().any(|(_, c)| *c == entry.1) {
                    scan.weak_ciphers.push(entry);
                }
            }
        }
    }
    scan
}

pub fn version_label(v: u16) -> String {
    match v {
        0x0300 => "SSLv3".into(),
        0x0301 => "TLS 1.0".into(),
        0x0302 => "TLS 1.1".into(),
        0x0303 => "TLS 1.2".into(),
        0x0304 => "TLS 1.3".into(),
        other => format!("0x{other:04x}"),
    }
}

pub fn cipher_name(id: u16) -> String {
    tls_parser::TlsCipherSuite::from_id(id).map(|c| c.name.to_string()).unwrap_or_else(|| format!("0x{id:04x}"))
}

/// The certificate fields the checks use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFacts {
    pub subject: String,
    pub issuer: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub self_signed: bool,
    /// RSA modulus bits, or the EC curve size.
    pub key_bits: Option<u32>,
    pub key_type: String,
    pub sha1_signature: bool,
    /// DNS names and IP addresses the certificate is valid for (SAN, or CN without SAN).
    pub names: Vec<String>,
}

impl CertFacts {
    pub fn parse(der: &[u8]) -> Option<CertFacts> {
        use x509_parser::prelude::*;
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let ts = |t: ASN1Time| DateTime::<Utc>::from_timestamp(t.timestamp(), 0);
        let (key_type, key_bits) = match cert.public_key().parsed() {
            Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => ("RSA".to_string(), Some(rsa.key_size() as u32)),
            Ok(x509_parser::public_key::PublicKey::EC(ec)) => ("EC".to_string(), Some(ec.key_size() as u32)),
            Ok(x509_parser::public_key::PublicKey::DSA(_)) => ("DSA".to_string(), None),
            _ => ("other".to_string(), None),
        };
        let oid = cert.signature_algorithm.algorithm.to_id_string();
        // sha1WithRSAEncryption, dsa-with-sha1, ecdsa-with-SHA1
        let sha1_signature = matches!(oid.as_str(), "1.2.840.113549.1.1.5" | "1.2.840.10040.4.3" | "1.2.840.10045.4.1");
        let mut names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(d) => names.push(d.to_ascii_lowercase()),
                    GeneralName::IPAddress(b) if b.len() == 4 => names.push(IpAddr::from(<[u8; 4]>::try_from(*b).ok()?).to_string()),
                    GeneralName::IPAddress(b) if b.len() == 16 => names.push(IpAddr::from(<[u8; 16]>::try_from(*b).ok()?).to_string()),
                    _ => {}
                }
            }
        }
        if names.is_empty() {
            names.extend(cert.subject().iter_common_name().filter_map(|cn| cn.as_str().ok()).map(|s| s.to_ascii_lowercase()));
        }
        Some(CertFacts {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            not_before: ts(cert.validity().not_before)?,
            not_after: ts(cert.validity().not_after)?,
            self_signed: cert.subject().as_raw() == cert.issuer().as_raw(),
            key_bits,
            key_type,
            sha1_signature,
            names,
        })
    }

    /// Whether the certificate covers `host` (exact name, or one-label wildcard).
    pub fn covers(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.names.iter().any(|name| match name.strip_prefix("*.") {
            Some(suffix) => host.split_once('.').is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
            None => *name == host,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_hello_parses_back() {
        let hello = client_hello(0x0301, &CLASSIC_CIPHERS, Some("vote.example.gov"));
        let (_, record) = tls_parser::parse_tls_plaintext(&hello).unwrap();
        let tls_parser::TlsMessage::Handshake(tls_parser::TlsMessageHandshake::ClientHello(ch)) = &record.msg[0] else { panic!("not a hello") };
        assert_eq!(ch.version.0, 0x0301);
        assert_eq!(ch.ciphers.len(), CLASSIC_CIPHERS.len());
        let ssl3 = client_hello(0x0300, &WEAK_CIPHERS, None);
        assert_eq!(&ssl3[1..3], &[3, 0]);
        assert!(tls_parser::parse_tls_plaintext(&ssl3).is_ok());
    }

    #[test]
    fn first_flight_parser_takes_garbage() {
        assert_eq!(parse_first_flight(b""), FirstFlight::default());
        assert_eq!(parse_first_flight(b"HTTP/1.1 400 Bad Request\r\n"), FirstFlight::default());
        // an alert record: handshake_failure
        assert!(parse_first_flight(&[0x15, 3, 1, 0, 2, 2, 40]).alert);
        assert_eq!(cipher_name(0x000a), "TLS_RSA_WITH_3DES_EDE_CBC_SHA");
    }

    #[test]
    fn wildcard_matching() {
        let facts = CertFacts {
            subject: String::new(),
            issuer: String::new(),
            not_before: Utc::now(),
            not_after: Utc::now(),
            self_signed: false,
            key_bits: None,
            key_type: String::new(),
            sha1_signature: false,
            names: vec!["*.example.gov".into(), "example.gov".into()],
        };
        assert!(facts.covers("vote.example.gov") && facts.covers("EXAMPLE.gov"));
        assert!(!facts.covers("a.b.example.gov") && !facts.covers("example.org") && !facts.covers(".example.gov"));
    }
}
