//! Request bodies under a deadline, so a client that sends slowly holds only its own connection
//! and never a slot or a buffer that others wait for.
//!
//! Rule (the model of Apache's `mod_reqtimeout`): a body must arrive within
//! `limits.body_timeout_secs` (default 20 s) from the end of the headers, plus one second for
//! every `limits.body_min_bytes_per_sec` bytes received (default 8 KiB/s), and never in more
//! than [`MAX_BODY_READ_SECS`]. A sensor on a slow link that keeps sending is never cut; a client
//! dribbling one byte a second is cut at about 20 s. Headers have their own timeout
//! ([`HEADER_READ_TIMEOUT`], set on hyper in [`crate::server`]).
//!
//! [`enforce_body_deadline`] wraps every request body of the hub in a [`DeadlineBody`]; a
//! handler or extractor that reads past the deadline gets an error, and the middleware answers
//! `408 Request Timeout` with `Connection: close` whatever the handler made of the error.
//! [`read_to_limit`] is the read loop for handlers that read the body themselves (ingest), with
//! a byte limit.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::time::{Instant, Sleep};

use crate::state::HubState;

/// Time to send the request line and headers; the same as the body's base timeout, and long
/// enough for any real client on a slow link (headers are a few hundred bytes).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(20);
/// No body may take longer than this, however fast it keeps coming: ten minutes is a full
/// 32 MiB ingest batch at 56 KB/s, and sensors send batches of a few MB.
pub const MAX_BODY_READ_SECS: u64 = 600;

/// How long a body may take (see the module note).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BodyDeadline {
    /// Time allowed for a body before any byte is counted.
    pub base: Duration,
    /// Each this many bytes received adds one second (0: no extension).
    pub min_bytes_per_sec: u64,
}

impl BodyDeadline {
    pub fn from_config(limits: &crate::config::LimitsConfig) -> Self {
        BodyDeadline { base: Duration::from_secs(limits.body_timeout_secs.max(1)), min_bytes_per_sec: limits.body_min_bytes_per_sec }
    }

    /// The deadline of a body that started at `started` and has brought `received` bytes.
    pub fn deadline(&self, started: Instant, received: u64) -> Instant {
        let earned = if self.min_bytes_per_sec == 0 { 0.0 } else { received as f64 / self.min_bytes_per_sec as f64 };
        let allowed = (self.base.as_secs_f64() + earned).min(MAX_BODY_READ_SECS as f64);
        started + Duration::from_secs_f64(allowed)
    }
}

/// The error a [`DeadlineBody`] yields once its deadline has passed.
#[derive(Debug, thiserror::Error)]
#[error("request body too slow: {received} bytes in {elapsed_secs} s; send the whole body within {base_secs} s plus one second per {min_rate} bytes")]
pub struct BodyTimeout {
    pub received: u64,
    pub elapsed_secs: u64,
    pub base_secs: u64,
    pub min_rate: u64,
}

/// A request body that fails with [`BodyTimeout`] when it is read past its deadline.
pub struct DeadlineBody {
    inner: Body,
    rule: BodyDeadline,
    started: Instant,
    received: u64,
    sleep: Pin<Box<Sleep>>,
    timed_out: Arc<AtomicBool>,
}

impl DeadlineBody {
    pub fn new(inner: Body, rule: BodyDeadline, timed_out: Arc<AtomicBool>) -> Self {
        let started = Instant::now();
        let sleep = Box::pin(tokio::time::sleep_until(rule.deadline(started, 0)));
        DeadlineBody { inner, rule, started, received: 0, sleep, timed_out }
    }
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    let deadline = this.rule.deadline(this.started, this.received);
                    this.sleep.as_mut().reset(deadline);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(other) => Poll::Ready(other),
            Poll::Pending => {
                if this.sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.timed_out.store(true, Ordering::Release);
                Poll::Ready(Some(Err(axum::Error::new(BodyTimeout {
                    received: this.received,
                    elapsed_secs: this.started.elapsed().as_secs(),
                    base_secs: this.rule.base.as_secs(),
                    min_rate: this.rule.min_bytes_per_sec,
                }))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Middleware for every route: the body gets a deadline, and a request whose body missed it is
/// answered 408 (and the connection closed), whatever the handler answered.
pub async fn enforce_body_deadline(
    axum::extract::State(state): axum::extract::State<HubState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let timed_out = Arc::new(AtomicBool::new(false));
    let rule = BodyDeadline::from_config(&state.config.limits);
    let req = req.map(|body| Body::new(DeadlineBody::new(body, rule, timed_out.clone())));
    let resp = next.run(req).await;
    if !timed_out.load(Ordering::Acquire) {
        return resp;
    }
    state.metrics.bodies_timed_out.inc();
    tracing::info!(base_secs = rule.base.as_secs(), min_rate = rule.min_bytes_per_sec, "request body too slow: answered 408");
    let message = format!(
        "request body too slow: send the whole body within {} s plus one second per {} bytes",
        rule.base.as_secs(),
        rule.min_bytes_per_sec
    );
    let mut resp = (StatusCode::REQUEST_TIMEOUT, axum::Json(serde_json::json!({ "error": message }))).into_response();
    resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// Why [`read_to_limit`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum BodyReadError {
    #[error("request body larger than {0} bytes")]
    TooLarge(usize),
    #[error("{0}")]
    TimedOut(String),
    #[error("cannot read the request body: {0}")]
    Broken(String),
}

/// Reads a whole body into memory, refusing it as soon as it passes `limit` bytes (a declared
/// `Content-Length` over the limit is refused before anything is read).
pub async fn read_to_limit(mut body: Body, limit: usize) -> Result<Bytes, BodyReadError> {
    if body.size_hint().lower() > limit as u64 {
        return Err(BodyReadError::TooLarge(limit));
    }
    let mut out = bytes_buffer(body.size_hint().exact(), limit);
    loop {
        let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await else { break };
        let frame = frame.map_err(|e| match timeout_in(&e) {
            Some(t) => BodyReadError::TimedOut(t.to_string()),
            None => BodyReadError::Broken(e.to_string()),
        })?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(BodyReadError::TooLarge(limit));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(out))
}

/// The [`BodyTimeout`] behind a body error, through any wrapping.
fn timeout_in<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a BodyTimeout> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<BodyTimeout>() {
            return Some(t);
        }
        cur = err.source();
    }
    None
}

/// A buffer for a body of a declared length, capped so a header cannot reserve much memory.
fn bytes_buffer(declared: Option<u64>, limit: usize) -> Vec<u8> {
    /// Reserved up front at most; larger bodies grow the buffer as they arrive.
    const MAX_PREALLOCATED: usize = 1 << 20;
    Vec::with_capacity(declared.map_or(0, |n| (n as usize).min(limit).min(MAX_PREALLOCATED)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_grows_with_bytes_and_is_capped() {
        let rule = BodyDeadline { base: Duration::from_secs(20), min_bytes_per_sec: 1000 };
        let t0 = Instant::now();
        assert_eq!(rule.deadline(t0, 0), t0 + Duration::from_secs(20));
        assert_eq!(rule.deadline(t0, 5000), t0 + Duration::from_secs(25));
        assert_eq!(rule.deadline(t0, u64::MAX), t0 + Duration::from_secs(MAX_BODY_READ_SECS));
        let flat = BodyDeadline { base: Duration::from_secs(3), min_bytes_per_sec: 0 };
        assert_eq!(flat.deadline(t0, 1 << 30), t0 + Duration::from_secs(3));
    }

    #[tokio::test]
    async fn reads_whole_bodies_and_refuses_large_ones() {
        assert_eq!(read_to_limit(Body::from("hello"), 5).await.unwrap(), Bytes::from_static(b"hello"));
        assert!(matches!(read_to_limit(Body::from("hello!"), 5).await, Err(BodyReadError::TooLarge(5))));
    }
}
