//! Syslog over TCP with a CEF payload, for SIEMs.
//!
//! One RFC 5424 line per notification, newline-framed (RFC 6587 non-transparent framing, which
//! rsyslog, syslog-ng and the common SIEM collectors accept):
//! `<PRI>1 TIMESTAMP HOST ward-hub - - - CEF:0|ward|ward-hub|VERSION|campaign.KIND|NAME|SEV|ext`.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

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

pub async fn send(contact: &Contact, msg: &Message, timeout_secs: u64) -> Result<String, String> {
    let line = format_line(msg, chrono::Utc::now());
    let fut = async {
        let mut stream = tokio::net::TcpStream::connect(&contact.target).await.map_err(|e| format!("syslog connect failed: {e}"))?;
        stream.write_all(line.as_bytes()).await.map_err(|e| format!("syslog write failed: {e}"))?;
        stream.shutdown().await.map_err(|e| format!("syslog close failed: {e}"))?;
        Ok::<_, String>(format!("syslog {} bytes", line.len()))
    };
    tokio::time::timeout(Duration::from_secs(timeout_secs), fut).await.map_err(|_| "syslog timed out".to_string())?
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
