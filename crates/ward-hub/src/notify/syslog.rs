//! Syslog over TCP with a CEF payload, for SIEMs.
//!
//! One RFC 5424 line per notification, newline-framed (RFC 6587 non-transparent framing, which
//! rsyslog, syslog-ng and the common SIEM collectors accept):
//! `<PRI>1 TIMESTAMP HOST ward-hub - - - CEF:0|ward|ward-hub|VERSION|campaign.KIND|NAME|SEV|ext`.
//!
//! The target is resolved and checked by the egress policy ([`super::egress`]) and only the
//! checked addresses are connected to; a failure records a short class, never peer text.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::egress::{split_host_port, EgressPolicy};
use super::Message;
use crate::model::Contact;

/// Facility local4 (20), severity warning (4).
const PRI: u8 = 20 * 8 + 4;

/// Escapes a CEF header field (`\` and `|`).
pub fn cef_header(s: &str) -> String {
    s.replace('\\', "\\\\").replace('|', "\\|").replace(['\r', '\n'], " ")
}

/// Escapes a CEF extension value (`\`, `=`, newlines).
pub fn cef_value(s: &str) -> String {
    s.replace('\\', "\\\\").replace('=', "\\=").replace('\r', "").replace('\n', "\\n")
}

pub fn format_line(msg: &Message, now: chrono::DateTime<chrono::Utc>) -> String {
    let mut ext = format!(
        "rt={} cs1Label=campaign cs1={} cnt={} cs2Label=tlp cs2={}",
        now.timestamp_millis(),
        msg.campaign_id,
        msg.other_jurisdictions,
        cef_value(msg.json["tlp"].as_str().unwrap_or_default()),
    );
    if let Some(r) = &msg.remote {
        ext.push_str(&format!(" src={}", cef_value(r)));
    }
    if let Some(l) = &msg.local {
        ext.push_str(&format!(" dst={}", cef_value(l)));
    }
    ext.push_str(&format!(" msg={}", cef_value(&msg.subject)));
    format!(
        "<{PRI}>1 {} ward-hub ward-hub - - - CEF:0|ward|ward-hub|{}|campaign.{}|{}|{}|{}\n",
        now.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
        env!("CARGO_PKG_VERSION"),
        cef_header(&msg.event_kind),
        cef_header(&msg.subject),
        msg.severity,
        ext
    )
}

pub async fn send(egress: &EgressPolicy, contact: &Contact, msg: &Message, timeout_secs: u64) -> Result<String, String> {
    let line = format_line(msg, chrono::Utc::now());
    let (host, port) = split_host_port(&contact.target).ok_or("syslog target must be HOST:PORT")?;
    let fut = async {
        let addrs = egress.resolve(host, port).await.map_err(|e| e.to_string())?;
        let mut stream = None;
        let mut last_kind = std::io::ErrorKind::NotConnected;
        for addr in addrs {
            match tokio::net::TcpStream::connect(addr).await {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last_kind = e.kind(),
            }
        }
        let mut stream = stream.ok_or_else(|| format!("syslog connect failed: {}", super::io_failure_class(last_kind)))?;
        stream.write_all(line.as_bytes()).await.map_err(|e| format!("syslog write failed: {}", super::io_failure_class(e.kind())))?;
        stream.shutdown().await.map_err(|e| format!("syslog close failed: {}", super::io_failure_class(e.kind())))?;
        Ok::<_, String>(format!("syslog {} bytes", line.len()))
    };
    tokio::time::timeout(Duration::from_secs(timeout_secs), fut).await.map_err(|_| "syslog timeout".to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(cef_header("a|b\\c"), "a\\|b\\\\c");
        assert_eq!(cef_value("k=v\nx"), "k\\=v\\nx");
    }
}
