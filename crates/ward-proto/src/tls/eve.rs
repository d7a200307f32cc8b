//! Renders [`TlsInfo`] as Suricata's EVE `tls` object: certificate fields of the first
//! certificate, `sni`, `version` by Suricata's names ("TLSv1", "TLS 1.2", "TLS 1.3 draft-19",
//! unknown versions as their decimal number), `ja3` and `ja3s`.
//!
//! `ward_model::eve::Tls` has no field yet for `ja4`, `client_alpns`, `server_alpns` and
//! `from_proto`; [`to_eve_json`] renders the full object, those included, as JSON.

use ward_model::eve::{Ja3, Tls};

use crate::tls::parser::version_name;
use crate::tls::state::TlsInfo;

/// The EVE `tls` object of a flow's handshake.
pub fn to_eve(info: &TlsInfo) -> Tls {
    let mut tls = Tls {
        sni: info.sni.as_deref().map(crate::bytes_to_string),
        version: Some(version_name(info.version())),
        ja3: info.ja3.as_ref().map(|f| Ja3 {
            hash: f.hash.clone(),
            string: f.string.clone(),
        }),
        ja3s: info.ja3s.as_ref().map(|f| Ja3 {
            hash: f.hash.clone(),
            string: f.string.clone(),
        }),
        ..Tls::default()
    };
    if let Some(cert) = &info.cert {
        tls.subject = Some(cert.subject.clone());
        tls.issuerdn = Some(cert.issuer.clone());
        tls.subjectaltname = cert.sans.clone();
        tls.serial = Some(cert.serial.clone());
        tls.fingerprint = Some(cert.fingerprint.clone());
        tls.notbefore = Some(cert.not_before.clone());
        tls.notafter = Some(cert.not_after.clone());
    }
    tls
}

/// The full Suricata `tls` object as JSON: [`to_eve`] plus `ja4`, `client_alpns`,
/// `server_alpns` and (for a flow that switched protocols) `from_proto`.
pub fn to_eve_json(info: &TlsInfo, from_proto: Option<crate::AppProto>) -> serde_json::Value {
    let mut value = serde_json::to_value(to_eve(info)).unwrap_or(serde_json::Value::Null);
    let Some(obj) = value.as_object_mut() else {
        return value;
    };
    if let Some(ch) = &info.client_hello {
        obj.insert("ja4".into(), crate::tls::parser::ja4(ch).into());
        if !ch.alpns.is_empty() {
            let alpns: Vec<String> = ch.alpns.iter().map(|a| crate::bytes_to_string(a)).collect();
            obj.insert("client_alpns".into(), alpns.into());
        }
    }
    if let Some(alpn) = info.server_hello.as_ref().and_then(|s| s.alpn.as_ref()) {
        obj.insert(
            "server_alpns".into(),
            vec![crate::bytes_to_string(alpn)].into(),
        );
    }
    if let Some(p) = from_proto {
        obj.insert("from_proto".into(), p.name().into());
    }
    value
}
