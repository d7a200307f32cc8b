//! Webhooks: `POST` of the message JSON, signed.
//!
//! Headers: `X-Ward-Timestamp: <unix seconds>` and
//! `X-Ward-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`. A receiver
//! recomputes the HMAC over the exact body bytes and rejects timestamps more than
//! [`MAX_WEBHOOK_SKEW_SECS`] from its clock, which defeats replay of a captured request.
//! `X-Ward-Delivery: <notification id>` (also `id` in the body) is the same on every retry of
//! one notification, so a receiver can drop a duplicate.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Message;
use crate::model::Contact;

/// Receivers should refuse a signed request older or newer than this.
pub const MAX_WEBHOOK_SKEW_SECS: i64 = 300;

type HmacSha256 = Hmac<Sha256>;

pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("hmac accepts any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// What a receiver does: checks the signature (constant time) and the timestamp window.
pub fn verify(secret: &str, timestamp: &str, body: &[u8], signature: &str, now_secs: i64) -> bool {
    let Ok(ts) = timestamp.parse::<i64>() else { return false };
    if (now_secs - ts).abs() > MAX_WEBHOOK_SKEW_SECS {
        return false;
    }
    let Some(hex_sig) = signature.strip_prefix("sha256=") else { return false };
    let Ok(sig) = hex::decode(hex_sig) else { return false };
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("hmac accepts any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

pub async fn send(http: &reqwest::Client, contact: &Contact, msg: &Message) -> Result<String, String> {
    let body = serde_json::to_vec(&msg.json).map_err(|e| e.to_string())?;
    let ts = chrono::Utc::now().timestamp();
    let secret = contact.secret.as_deref().unwrap_or_default();
    let resp = http
        .post(&contact.target)
        .header("content-type", "application/json")
        .header("x-ward-timestamp", ts.to_string())
        .header("x-ward-signature", sign(secret, ts, &body))
        .header("x-ward-event", format!("campaign.{}", msg.event_kind))
        .header("x-ward-delivery", msg.json["id"].to_string())
        .body(body)
        .send()
        .await
        .map_err(|e| format!("webhook request failed: {e}"))?;
    let status = resp.status();
    if status.is_success() {
        Ok(format!("http {}", status.as_u16()))
    } else {
        Err(format!("webhook answered http {}", status.as_u16()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_verifies_and_rejects_replay_and_tamper() {
        let sig = sign("0123456789abcdef", 1_700_000_000, b"{}");
        assert!(verify("0123456789abcdef", "1700000000", b"{}", &sig, 1_700_000_010));
        assert!(!verify("0123456789abcdef", "1700000000", b"{}", &sig, 1_700_001_000), "replayed late");
        assert!(!verify("0123456789abcdef", "1700000000", b"{ }", &sig, 1_700_000_010), "tampered body");
        assert!(!verify("another-secret-xx", "1700000000", b"{}", &sig, 1_700_000_010), "wrong key");
        assert!(!verify("0123456789abcdef", "1700000001", b"{}", &sig, 1_700_000_010), "moved timestamp");
    }
}
