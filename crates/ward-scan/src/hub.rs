//! The scanner's hub client (`ward scan --hub URL --jurisdiction NAME`, `ward scan worker
//! --hub URL`, `ward report weekly --hub URL`).
//!
//! The hub decides what may be scanned: it hands out only the assets a jurisdiction registered,
//! refuses during the jurisdiction's blackouts, and checks every upload against the registry
//! (crates/ward-hub/src/assets.rs). The hub keeps every result, so the findings history is the
//! hub's and shared by all workers: the weekly report is rebuilt from the hub's results with
//! [`history_from`], rendered here (the hub has no PDF renderer) and uploaded for the dashboard.
//!
//! Security: the bearer token (a hub session token from `POST /api/v1/login`) is only ever sent
//! over HTTPS, or plain HTTP to a loopback hub.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::finding::ScanResult;
use crate::history::History;

/// Time allowed for one hub request (uploads of large results included).
pub const HUB_TIMEOUT: Duration = Duration::from_secs(60);

/// What the hub allows this scan to cover.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HubTargets {
    pub jurisdiction: String,
    pub jurisdiction_id: i64,
    pub targets: Vec<String>,
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub lease_until_ms: Option<i64>,
}

pub struct HubClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_matches(|c| c == '[' || c == ']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl HubClient {
    /// `url` like `https://hub.example.org:8443`; `ca` is a PEM file of the hub's CA when its
    /// certificate is not from a public authority.
    pub fn new(url: &str, token: Option<String>, ca: Option<&Path>) -> anyhow::Result<HubClient> {
        let parsed = reqwest::Url::parse(url).with_context(|| format!("--hub {url:?} is not a URL such as https://hub.example.org"))?;
        match (parsed.scheme(), parsed.host_str()) {
            ("https", Some(_)) => {}
            ("http", Some(host)) if is_loopback_host(host) => {}
            ("http", Some(_)) => bail!("--hub {url}: plain http is allowed only to a hub on loopback; use https://"),
            _ => bail!("--hub {url:?} is not an http(s) URL with a host"),
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder().timeout(HUB_TIMEOUT).user_agent(concat!("ward-scan/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = ca {
            let pem = std::fs::read(ca).with_context(|| format!("cannot read --hub-ca {}", ca.display()))?;
            let cert = reqwest::Certificate::from_pem(&pem).with_context(|| format!("--hub-ca {} is not a PEM certificate", ca.display()))?;
            builder = builder.tls_certs_only([cert]);
        }
        let http = builder.build().context("cannot build the hub client")?;
        Ok(HubClient { base: url.trim_end_matches('/').to_string(), token, http })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `path?jurisdiction=NAME`, the name percent-encoded.
    fn url_for(&self, path: &str, jurisdiction: &str) -> anyhow::Result<reqwest::Url> {
        let mut url = reqwest::Url::parse(&self.url(path)).with_context(|| format!("bad hub URL {}", self.base))?;
        url.query_pairs_mut().append_pair("jurisdiction", jurisdiction);
        Ok(url)
    }

    async fn send(&self, req: reqwest::RequestBuilder, what: &str) -> anyhow::Result<reqwest::Response> {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let resp = req.send().await.with_context(|| format!("cannot reach the hub at {} to {what}", self.base))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_else(|| body.chars().take(300).collect());
        let hint = match status.as_u16() {
            401 => " (log in with POST /api/v1/login and pass the token with --hub-token or WARD_HUB_TOKEN)",
            404 => " (no such jurisdiction, or not one this account may see)",
            _ => "",
        };
        bail!("the hub refused to {what}: {status}: {message}{hint}")
    }

    /// The registered targets of a jurisdiction (all, or the `requested` ones if each is registered).
    pub async fn targets(&self, jurisdiction: &str, requested: &[String]) -> anyhow::Result<HubTargets> {
        let body = serde_json::json!({ "jurisdiction": jurisdiction, "targets": requested });
        let resp = self.send(self.http.post(self.url("/api/v1/scan/targets")).json(&body), &format!("hand out targets of {jurisdiction}")).await?;
        resp.json().await.context("the hub's target list is not valid JSON")
    }

    /// Take the next due jurisdiction (a scan job); `None` when nothing is due.
    pub async fn claim(&self, worker: &str) -> anyhow::Result<Option<HubTargets>> {
        let resp = self.send(self.http.post(self.url("/api/v1/scan/jobs/claim")).json(&serde_json::json!({ "worker": worker })), "hand out a scan job").await?;
        if resp.status() == reqwest::StatusCode::NO_CONTENT {
            return Ok(None);
        }
        Ok(Some(resp.json().await.context("the hub's scan job is not valid JSON")?))
    }

    /// Upload one scan result; returns the hub's receipt (`id`, `next_due_ms`).
    pub async fn upload(&self, jurisdiction: &str, result: &ScanResult) -> anyhow::Result<serde_json::Value> {
        let body = serde_json::to_vec(result)?;
        let req = self.http.post(self.url_for("/api/v1/scan/results", jurisdiction)?).header("content-type", "application/json").body(body);
        let resp = self.send(req, &format!("take the findings of {jurisdiction}")).await?;
        resp.json().await.context("the hub's receipt is not valid JSON")
    }

    /// Every result the hub holds for a jurisdiction, oldest first.
    pub async fn results(&self, jurisdiction: &str) -> anyhow::Result<Vec<ScanResult>> {
        let req = self.http.get(self.url_for("/api/v1/scan/results", jurisdiction)?);
        let resp = self.send(req, &format!("list the scan results of {jurisdiction}")).await?;
        resp.json().await.context("the hub's scan results are not ward scan results")
    }

    /// Upload the rendered weekly report for the dashboard.
    pub async fn put_report(&self, jurisdiction: &str, html: &str, pdf: &[u8]) -> anyhow::Result<()> {
        let body = serde_json::json!({ "html": html, "pdf_base64": base64::engine::general_purpose::STANDARD.encode(pdf) });
        let req = self.http.put(self.url_for("/api/v1/scan/report", jurisdiction)?).json(&body);
        self.send(req, &format!("take the weekly report of {jurisdiction}")).await?;
        Ok(())
    }
}

/// The findings history rebuilt from the hub's results (oldest first).
pub fn history_from(results: &[ScanResult]) -> History {
    let mut sorted: Vec<&ScanResult> = results.iter().collect();
    sorted.sort_by_key(|r| r.finished);
    let mut history = History::default();
    for (i, result) in sorted.into_iter().enumerate() {
        history.apply(result, &format!("hub:{i}"));
    }
    history
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_never_travel_in_clear_text_off_loopback() {
        assert!(HubClient::new("http://127.0.0.1:8080", None, None).is_ok());
        assert!(HubClient::new("http://[::1]:8080/", None, None).is_ok());
        assert!(HubClient::new("http://localhost:8080", None, None).is_ok());
        assert!(HubClient::new("https://hub.example.org", None, None).is_ok());
        let err = HubClient::new("http://hub.example.org", None, None).err().unwrap().to_string();
        assert!(err.contains("https"), "{err}");
        assert!(HubClient::new("hub.example.org", None, None).is_err());
        assert!(HubClient::new("ftp://127.0.0.1", None, None).is_err());
    }
}
