//! The feeds' HTTP client: every request under the hub's egress rules
//! ([`crate::notify::egress`], with the `[feeds] allow_targets` allow list, since an on-premises
//! TAXII server lives on a private address), a total timeout per request, responses streamed
//! into a bounded buffer ([`FeedHttp::max_bytes`], 64 MiB by default: the `Content-Length` is
//! checked first and the body is cut off the moment it passes the bound), at most
//! [`MAX_REDIRECTS`] redirects, each checked against the egress rules and never from https to
//! http, and no proxy from the environment. Credentials go as HTTP Basic or a bearer token;
//! reqwest drops them when a redirect leaves the host.
//!
//! Errors say what happened in terms an analyst can act on (the status, "timed out", "larger
//! than N bytes", "refused by egress policy"); the server's own error text is not kept (it may
//! echo a credential or be an HTML page).

use std::sync::Arc;
use std::time::Duration;

use crate::notify::egress::{EgressError, EgressPolicy, EgressResolver};

/// Redirects followed at most.
pub const MAX_REDIRECTS: usize = 5;
/// The default bound on one response.
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;
/// The default total time of one request (connect, headers, body).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// How a request authenticates.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    None,
    Basic { username: String, password: String },
    Bearer(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credentials::None => "None",
            Credentials::Basic { .. } => "Basic(…)",
            Credentials::Bearer(_) => "Bearer(…)",
        })
    }
}

/// A response that arrived whole.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// 200-299, or 304 (not modified: no body).
    pub status: u16,
    pub content_type: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// TAXII's `X-TAXII-Date-Added-Last`.
    pub date_added_last: Option<String>,
    pub body: Vec<u8>,
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    #[error("{0}")]
    Egress(String),
    #[error("the server refused the credentials (http {0}): check the feed's username and password or token")]
    Unauthorized(u16),
    #[error("the server answered http {0}")]
    Status(u16),
    #[error("timed out after {0} s")]
    Timeout(u64),
    #[error("response larger than {0} bytes: refused")]
    TooLarge(usize),
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("bad url: {0}")]
    BadUrl(String),
}

/// The client (one per hub; cheap to clone).
#[derive(Clone)]
pub struct FeedHttp {
    http: reqwest::Client,
    egress: Arc<EgressPolicy>,
    pub max_bytes: usize,
    timeout: Duration,
}

impl FeedHttp {
    pub fn new(egress: Arc<EgressPolicy>, timeout: Duration, max_bytes: usize) -> Result<FeedHttp, String> {
        crate::server::install_crypto_provider();
        let policy = egress.clone();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
            }
            if attempt.previous().last().is_some_and(|p| p.scheme() == "https") && attempt.url().scheme() != "https" {
                return attempt.error("redirect from https to http refused");
            }
            if let Err(e) = policy.check_url(attempt.url()) {
                return attempt.error(e);
            }
            attempt.follow()
        });
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(15)))
            .user_agent(concat!("ward-hub/", env!("CARGO_PKG_VERSION"), " (feeds)"))
            .redirect(redirects)
            .no_proxy()
            .dns_resolver(Arc::new(EgressResolver(egress.clone())))
            .build()
            .map_err(|e| format!("cannot build the feeds http client: {e}"))?;
        Ok(FeedHttp { http, egress, max_bytes, timeout })
    }

    /// GET `url`; `accept` is the `Accept` header; `conditional` sends `If-None-Match` /
    /// `If-Modified-Since`.
    pub async fn get(&self, url: &reqwest::Url, credentials: &Credentials, accept: &str, conditional: (Option<&str>, Option<&str>)) -> Result<Fetched, FetchError> {
        self.egress.check_url(url).map_err(|e| FetchError::Egress(e.to_string()))?;
        let mut req = self.http.get(url.clone()).header("accept", accept);
        req = match credentials {
            Credentials::None => req,
            Credentials::Basic { username, password } => req.basic_auth(username, Some(password)),
            Credentials::Bearer(token) => req.bearer_auth(token),
        };
        if let Some(etag) = conditional.0 {
            req = req.header("if-none-match", etag);
        }
        if let Some(lm) = conditional.1 {
            req = req.header("if-modified-since", lm);
        }
        let resp = req.send().await.map_err(|e| self.failure(&e))?;
        self.read(resp).await
    }

    /// POST `body` to `url` (a TAXII envelope to a peer's collection): the same egress rules,
    /// bounds and errors as [`FeedHttp::get`].
    pub async fn post(&self, url: &reqwest::Url, credentials: &Credentials, content_type: &str, accept: &str, body: Vec<u8>) -> Result<Fetched, FetchError> {
        self.egress.check_url(url).map_err(|e| FetchError::Egress(e.to_string()))?;
        let mut req = self.http.post(url.clone()).header("accept", accept).header("content-type", content_type).body(body);
        req = match credentials {
            Credentials::None => req,
            Credentials::Basic { username, password } => req.basic_auth(username, Some(password)),
            Credentials::Bearer(token) => req.bearer_auth(token),
        };
        let resp = req.send().await.map_err(|e| self.failure(&e))?;
        self.read(resp).await
    }

    /// A response read whole within the bounds, or why not.
    async fn read(&self, mut resp: reqwest::Response) -> Result<Fetched, FetchError> {
        let status = resp.status().as_u16();
        let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(|s| s.chars().take(512).collect::<String>());
        let (content_type, etag, last_modified, date_added_last) = (header("content-type"), header("etag"), header("last-modified"), header("x-taxii-date-added-last"));
        if status == 304 {
            return Ok(Fetched { status, content_type, etag, last_modified, date_added_last, body: Vec::new() });
        }
        if status == 401 || status == 403 {
            return Err(FetchError::Unauthorized(status));
        }
        if !(200..300).contains(&status) {
            return Err(FetchError::Status(status));
        }
        if resp.content_length().is_some_and(|n| n > self.max_bytes as u64) {
            return Err(FetchError::TooLarge(self.max_bytes));
        }
        let mut body = Vec::with_capacity(resp.content_length().map_or(64 * 1024, |n| n as usize).min(self.max_bytes));
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.failure(&e))? {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(FetchError::TooLarge(self.max_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched { status, content_type, etag, last_modified, date_added_last, body })
    }

    fn failure(&self, e: &reqwest::Error) -> FetchError {
        let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
        while let Some(s) = source {
            if let Some(refused) = s.downcast_ref::<EgressError>() {
                return FetchError::Egress(format!("{refused} (list the server in [feeds] allow_targets if it is yours)"));
            }
            source = s.source();
        }
        if e.is_timeout() {
            return FetchError::Timeout(self.timeout.as_secs());
        }
        if e.is_redirect() {
            return FetchError::Connect(format!("redirect refused: {}", root_message(e)));
        }
        if e.is_builder() {
            return FetchError::BadUrl(root_message(e));
        }
        FetchError::Connect(root_message(e))
    }
}

/// The innermost error's message (short, no URL: reqwest's own message carries it).
fn root_message(e: &reqwest::Error) -> String {
    let mut last: &(dyn std::error::Error + 'static) = e;
    while let Some(s) = last.source() {
        last = s;
    }
    let msg = last.to_string();
    if msg.contains("://") {
        "request failed".to_string()
    } else {
        msg.chars().take(200).collect()
    }
}

/// Whether a `Content-Type` is one of `accepted` (parameters ignored, case-insensitive).
pub fn content_type_is(content_type: Option<&str>, accepted: &[&str]) -> bool {
    let Some(ct) = content_type else { return false };
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    accepted.iter().any(|a| *a == essence)
}
