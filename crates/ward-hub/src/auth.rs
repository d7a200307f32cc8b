//! Credentials, sessions, CSRF and rate limits.
//!
//! * Random secrets (sensor credentials, enrollment tokens, session tokens) are 256-bit, shown
//!   once, and stored as SHA-256 hashes: a leaked database reveals no usable credential. A slow
//!   hash buys nothing for 256-bit random values.
//! * Passwords are stored as Argon2id PHC strings.
//! * Web sessions: cookie `ward_session`, `Secure; HttpOnly; SameSite=Strict`, 12 hours. The same
//!   token works as `Authorization: Bearer` for API clients. A mutating request authenticated by
//!   cookie must carry the session's CSRF token (`x-csrf-token` header, or a `csrf` form field).
//! * Rate limits: a token bucket per sensor and per user, in process memory (a limit per
//!   replica: these shed load, and a database round trip per request would cost more than they
//!   save; see docs/hub.md "Replicas").
//! * Failed logins ([`LoginThrottle`]) are throttled per source address and per (account,
//!   source) with exponential backoff, never by locking an account: a wrong password from one
//!   address does not stop the right one from another. A refused attempt answers 429 with
//!   `Retry-After`.
//! * Security budgets (failed logins, failed enrollments, name probes) are shared by every
//!   replica when the store can share them ([`Store::shares_limits`], PostgreSQL): the records
//!   live in the database and each update is serialised there, so N replicas behind a load
//!   balancer allow what one would. The embedded store serves one process; they stay in memory.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, Method};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::AppError;
use crate::model::{now_ms, Millis, Role, Sensor, User};
use crate::state::HubState;
use crate::store::{LimitRecord, Store};

pub const SESSION_COOKIE: &str = "ward_session";
pub const LOGIN_CSRF_COOKIE: &str = "ward_login_csrf";
/// A session lasts a working day; log in again after that.
pub const SESSION_TTL_MS: i64 = 12 * 3600 * 1000;
/// An enrollment token unused after this long is void.
pub const ENROLLMENT_TOKEN_TTL_MS: i64 = 7 * 24 * 3600 * 1000;
/// Failed sensor enrollments (a global budget, see `api::enroll`): burst, then one per five
/// seconds.
pub const LOGIN_BURST: f64 = 10.0;
pub const LOGIN_RATE_PER_SEC: f64 = 0.2;
/// Failed logins from one source on one account before backoff starts: a person who mistypes
/// a password a few times is never slowed.
pub const LOGIN_FREE_FAILURES_PER_ACCOUNT: u32 = 5;
/// Failed logins from one source across all names before backoff starts: higher, for an office
/// behind one NAT address; low enough that trying one password on many names (spraying) is
/// throttled after a few names.
pub const LOGIN_FREE_FAILURES_PER_SOURCE: u32 = 20;
/// After the free failures, each further failure doubles the wait before the next attempt
/// (1 s, 2 s, 4 s, …) up to this.
pub const LOGIN_MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// A failure record is forgotten this long after its last failure. Longer than the largest
/// backoff, so an attacker waiting out each backoff never starts over.
pub const LOGIN_FAILURES_FORGOTTEN_AFTER: Duration = Duration::from_secs(3600);
/// Failure records kept at most (bounds memory under a flood of sources and names); when full,
/// expired records go first, then the least recently failed.
pub const MAX_LOGIN_RECORDS: usize = 100_000;
/// Characters of a login name used in its record key (longer names cannot grow memory).
const MAX_LOGIN_NAME_KEY_CHARS: usize = 128;
/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 12;
/// Buckets kept before idle ones are dropped (bounds memory under a flood of names).
const MAX_BUCKETS: usize = 100_000;

/// A random secret: `prefix_` + 64 hex characters.
pub fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{prefix}_{}", hex::encode(bytes))
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn hash_password(password: &str) -> Result<String, AppError> {
    if password.len() < MIN_PASSWORD_LEN {
        return Err(AppError::BadRequest(format!("password must be at least {MIN_PASSWORD_LEN} characters")));
    }
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::Internal(format!("password hashing failed: {e}")))
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => argon2::Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// Constant-time comparison for CSRF tokens.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A token bucket per key. [`RateLimiter::peek`] and [`RateLimiter::allow`] work in process
/// memory; [`RateLimiter::check`] and [`RateLimiter::spend`] use the store's shared records when
/// the limiter was made [`RateLimiter::shared`] (and memory otherwise).
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
    shared: Option<Arc<dyn Store>>,
}

/// The longest a shared bucket record is kept: past its refill time it equals a full bucket.
const MAX_BUCKET_RECORD_MS: Millis = 24 * 3600 * 1000;

impl RateLimiter {
    pub fn new(rate_per_sec: f64, burst: f64) -> Self {
        RateLimiter { rate: rate_per_sec, burst, buckets: Mutex::new(HashMap::new()), shared: None }
    }

    /// A limiter whose buckets live in `store` when it shares limits (PostgreSQL: every replica
    /// spends from the same bucket), in memory otherwise.
    pub fn shared(rate_per_sec: f64, burst: f64, store: Arc<dyn Store>) -> Self {
        let shared = store.shares_limits().then_some(store);
        RateLimiter { shared, ..Self::new(rate_per_sec, burst) }
    }

    /// Whether `key` has a token left, without taking it (shared across replicas when shared).
    pub async fn check(&self, key: &str) -> Result<bool, AppError> {
        self.shared_bucket(key, false).await
    }

    /// Takes one token for `key`; false when the bucket is empty (shared when shared).
    pub async fn spend(&self, key: &str) -> Result<bool, AppError> {
        self.shared_bucket(key, true).await
    }

    async fn shared_bucket(&self, key: &str, take: bool) -> Result<bool, AppError> {
        let Some(store) = self.shared.clone() else {
            return Ok(if take { self.allow(key) } else { self.peek(key) });
        };
        let (rate, burst) = (self.rate, self.burst);
        let keys = vec![format!("bucket {key}")];
        tokio::task::spawn_blocking(move || {
            let now = now_ms();
            let mut allowed = true;
            store.update_limits(&keys, now, &mut |records: &mut [Option<LimitRecord>]| {
                let tokens = match records[0] {
                    None => burst,
                    Some(r) => (r.value + (now - r.at_ms).max(0) as f64 / 1000.0 * rate).min(burst),
                };
                allowed = tokens >= 1.0;
                if !take || !allowed {
                    return false;
                }
                let left = tokens - 1.0;
                // Past this the bucket is full again, which no record means too.
                let refill_ms = if rate > 0.0 { ((burst - left) / rate * 1000.0).ceil() as Millis } else { MAX_BUCKET_RECORD_MS };
                records[0] = Some(LimitRecord { value: left, at_ms: now, expires_ms: now.saturating_add(refill_ms.clamp(1, MAX_BUCKET_RECORD_MS)) });
                true
            })?;
            Ok::<_, AppError>(allowed)
        })
        .await?
    }

    /// Whether `key` has a token left, without taking it.
    pub fn peek(&self, key: &str) -> bool {
        let Ok(buckets) = self.buckets.lock() else { return true };
        match buckets.get(key) {
            None => true,
            Some((tokens, at)) => (tokens + at.elapsed().as_secs_f64() * self.rate).min(self.burst) >= 1.0,
        }
    }

    /// Takes one token for `key`; false when the bucket is empty.
    pub fn allow(&self, key: &str) -> bool {
        let now = Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else { return true };
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            let burst = self.burst;
            let rate = self.rate;
            buckets.retain(|_, (tokens, at)| *tokens + now.duration_since(*at).as_secs_f64() * rate < burst);
        }
        let entry = buckets.entry(key.to_string()).or_insert((self.burst, now));
        let refill = now.duration_since(entry.1).as_secs_f64() * self.rate;
        entry.0 = (entry.0 + refill).min(self.burst);
        entry.1 = now;
        if entry.0 >= 1.0 {
            entry.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Where a login comes from: the TCP peer's address, or behind a trusted load balancer
/// (`[limits] trusted_proxies`) the client address it forwarded ([`forwarded_client`]). An IPv6
/// address counts as its /64, which one host usually holds whole. `None` when the server was not
/// given peer addresses (tests through the router alone): all such attempts share one source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub Option<IpAddr>);

impl FromRequestParts<HubState> for ClientAddr {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, state: &HubState) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<axum::extract::ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let trusted = &state.config.limits.trusted_proxies;
        Ok(ClientAddr(peer.map(|p| forwarded_client(p, &parts.headers, trusted))))
    }
}

/// Most `X-Forwarded-For` entries read (a longer chain is cut at the trusted end).
const MAX_FORWARDED_HOPS: usize = 16;

/// The client a request stands for: the TCP peer, unless the peer is a trusted proxy; then the
/// `X-Forwarded-For` chain is walked from its right end (the entry the nearest proxy added)
/// past every trusted proxy, and the first other address is the client. An entry that is not
/// an address ends the walk at the last trusted hop, so garbage never chooses a new source.
pub fn forwarded_client(peer: IpAddr, headers: &axum::http::HeaderMap, trusted: &[crate::config::TrustedProxy]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|t| t.0.contains(&ip));
    if !is_trusted(peer) {
        return peer;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("?").split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for entry in entries.iter().rev().take(MAX_FORWARDED_HOPS) {
        let Ok(ip) = entry.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() else { return client };
        let ip = ip.to_canonical();
        if !is_trusted(ip) {
            return ip;
        }
        client = ip;
    }
    client
}

impl ClientAddr {
    fn key(self) -> String {
        match self.0.map(|ip| ip.to_canonical()) {
            None => "unknown".into(),
            Some(IpAddr::V4(v4)) => v4.to_string(),
            Some(IpAddr::V6(v6)) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct FailureRecord {
    /// Failed (or still undecided) attempts since the record was last forgotten.
    failures: u32,
    last: Instant,
}

/// The wait after `failures` failures when the first `free` cost nothing.
fn backoff(failures: u32, free: u32) -> Duration {
    if failures < free {
        return Duration::ZERO;
    }
    let doublings = (failures - free).min(20);
    Duration::from_secs(1u64 << doublings).min(LOGIN_MAX_BACKOFF)
}

/// Failed-login throttle, per source and per (account, source): in process memory, or in the
/// store when it shares limits ([`LoginThrottle::shared`]), so every replica counts the same
/// failures. An attempt counts as a failure from the moment it is admitted until the password
/// proves right ([`LoginThrottle::succeeded`] takes it back), so parallel guesses cannot all
/// pass the check before any of them has failed — on one replica or spread over several.
pub struct LoginThrottle {
    records: Mutex<HashMap<String, FailureRecord>>,
    shared: Option<Arc<dyn Store>>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        LoginThrottle { records: Mutex::new(HashMap::new()), shared: None }
    }
}

/// The (failures, last failure) of a shared record, forgotten ones as none.
fn shared_failures(record: Option<LimitRecord>, now: Millis) -> (u32, Millis) {
    match record {
        // `as` saturates: a stored value out of range cannot wrap.
        Some(r) if now.saturating_sub(r.at_ms) < LOGIN_FAILURES_FORGOTTEN_AFTER.as_millis() as Millis => (r.value.max(0.0) as u32, r.at_ms),
        _ => (0, now),
    }
}

impl LoginThrottle {
    fn keys(source: ClientAddr, username: &str) -> (String, String) {
        let source = source.key();
        let name: String = username.chars().take(MAX_LOGIN_NAME_KEY_CHARS).collect();
        (format!("source {source}"), format!("account {source} {name}"))
    }

    /// Failure records in `store` when it shares limits, in memory otherwise.
    pub fn shared(store: Arc<dyn Store>) -> Self {
        LoginThrottle { shared: store.shares_limits().then_some(store), ..Self::default() }
    }

    /// Admits an attempt (counting it as a failure until it succeeds), or says how long to wait.
    /// Fails only when the shared records cannot be read (the login fails then too).
    pub async fn admit(&self, source: ClientAddr, username: &str) -> Result<Result<(), Duration>, AppError> {
        let Some(store) = self.shared.clone() else {
            return Ok(self.admit_at(source, username, Instant::now()));
        };
        let (source_key, account_key) = Self::keys(source, username);
        tokio::task::spawn_blocking(move || {
            let now = now_ms();
            let forget_ms = LOGIN_FAILURES_FORGOTTEN_AFTER.as_millis() as Millis;
            let mut verdict = Ok(());
            store.update_limits(&[source_key, account_key], now, &mut |records: &mut [Option<LimitRecord>]| {
                let by_source = shared_failures(records[0], now);
                let by_account = shared_failures(records[1], now);
                let ready_at = |(failures, last): (u32, Millis), free: u32| last.saturating_add(backoff(failures, free).as_millis() as Millis);
                let ready = ready_at(by_source, LOGIN_FREE_FAILURES_PER_SOURCE).max(ready_at(by_account, LOGIN_FREE_FAILURES_PER_ACCOUNT));
                if ready > now {
                    verdict = Err(Duration::from_millis((ready - now) as u64));
                    return false;
                }
                verdict = Ok(());
                for (record, (failures, _)) in records.iter_mut().zip([by_source, by_account]) {
                    let failures = failures.saturating_add(1);
                    *record = Some(LimitRecord { value: f64::from(failures), at_ms: now, expires_ms: now.saturating_add(forget_ms) });
                }
                true
            })?;
            Ok::<_, AppError>(verdict)
        })
        .await?
    }

    fn admit_at(&self, source: ClientAddr, username: &str, now: Instant) -> Result<(), Duration> {
        let (source_key, account_key) = Self::keys(source, username);
        let Ok(mut records) = self.records.lock() else { return Ok(()) };
        let current = |records: &HashMap<String, FailureRecord>, key: &str| match records.get(key) {
            Some(r) if now.duration_since(r.last) < LOGIN_FAILURES_FORGOTTEN_AFTER => *r,
            _ => FailureRecord { failures: 0, last: now },
        };
        let by_source = current(&records, &source_key);
        let by_account = current(&records, &account_key);
        let ready_at = |r: FailureRecord, free: u32| r.last + backoff(r.failures, free);
        let ready = ready_at(by_source, LOGIN_FREE_FAILURES_PER_SOURCE).max(ready_at(by_account, LOGIN_FREE_FAILURES_PER_ACCOUNT));
        if ready > now {
            return Err(ready - now);
        }
        for (key, record) in [(source_key, by_source), (account_key, by_account)] {
            if records.len() >= MAX_LOGIN_RECORDS && !records.contains_key(&key) {
                make_room(&mut records, now);
            }
            records.insert(key, FailureRecord { failures: record.failures.saturating_add(1), last: now });
        }
        Ok(())
    }

    /// The admitted attempt had the right password: the (account, source) record is cleared and
    /// the source's count loses this attempt.
    pub async fn succeeded(&self, source: ClientAddr, username: &str) {
        let Some(store) = self.shared.clone() else {
            return self.succeeded_here(source, username);
        };
        let (source_key, account_key) = Self::keys(source, username);
        let cleared = tokio::task::spawn_blocking(move || {
            store.update_limits(&[source_key, account_key], now_ms(), &mut |records: &mut [Option<LimitRecord>]| {
                records[1] = None;
                if let Some(r) = records[0].as_mut() {
                    r.value = (r.value - 1.0).max(0.0);
                }
                true
            })
        })
        .await;
        match cleared {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot clear the failed-login record after a good login"),
            Err(e) => tracing::warn!(error = %e, "cannot clear the failed-login record after a good login"),
        }
    }

    fn succeeded_here(&self, source: ClientAddr, username: &str) {
        let (source_key, account_key) = Self::keys(source, username);
        let Ok(mut records) = self.records.lock() else { return };
        records.remove(&account_key);
        if let Some(r) = records.get_mut(&source_key) {
            r.failures = r.failures.saturating_sub(1);
        }
    }
}

fn make_room(records: &mut HashMap<String, FailureRecord>, now: Instant) {
    records.retain(|_, r| now.duration_since(r.last) < LOGIN_FAILURES_FORGOTTEN_AFTER);
    if records.len() >= MAX_LOGIN_RECORDS {
        if let Some(oldest) = records.iter().min_by_key(|(_, r)| r.last).map(|(k, _)| k.clone()) {
            records.remove(&oldest);
        }
    }
}

/// Why a login did not open a session.
#[derive(Debug)]
pub enum LoginError {
    /// Too many failures from this source (on this account, or on any): wait this long.
    Throttled(Duration),
    /// Unknown name or wrong password (the same answer for both).
    Wrong,
    Other(AppError),
}

impl From<AppError> for LoginError {
    fn from(e: AppError) -> Self {
        LoginError::Other(e)
    }
}

impl LoginError {
    /// Whole seconds to wait, at least one.
    pub fn retry_after_secs(wait: Duration) -> u64 {
        wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
    }
}

impl axum::response::IntoResponse for LoginError {
    fn into_response(self) -> axum::response::Response {
        match self {
            LoginError::Throttled(wait) => {
                let secs = Self::retry_after_secs(wait).max(1);
                let body = serde_json::json!({ "error": format!("too many failed logins from your address: retry after {secs} seconds") });
                let mut resp = (axum::http::StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
                resp.headers_mut().insert(header::RETRY_AFTER, secs.into());
                resp
            }
            LoginError::Wrong => AppError::Forbidden("wrong user name or password".into()).into_response(),
            LoginError::Other(e) => e.into_response(),
        }
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer "))?;
    Some(token.trim())
}

pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    for value in parts.headers.get_all(header::COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for pair in value.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=') {
                if k == name {
                    return Some(v);
                }
            }
        }
    }
    None
}

/// An authenticated sensor (bearer credential from enrollment).
pub struct SensorAuth(pub Sensor);

impl FromRequestParts<HubState> for SensorAuth {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &HubState) -> Result<Self, AppError> {
        let token = bearer(parts).ok_or(AppError::Unauthorized)?.to_string();
        let hash = hash_token(&token);
        let sensor = state.store_call(move |s| s.sensor_by_credential(&hash)).await?.ok_or(AppError::Unauthorized)?;
        if !state.sensor_limiter.allow(&sensor.id.to_string()) {
            state.metrics.rate_limited.inc();
            return Err(AppError::RateLimited);
        }
        Ok(SensorAuth(sensor))
    }
}

/// An authenticated person, by session cookie or bearer session token.
#[derive(Debug, Clone)]
pub struct UserAuth {
    pub user: User,
    pub csrf: String,
    pub via_cookie: bool,
    pub session_hash: String,
    /// The jurisdictions this user reads besides its own: a state user's counties and cities
    /// ([`crate::rollup`]); empty for everyone else.
    pub children: Vec<i64>,
}

impl UserAuth {
    pub fn is_analyst(&self) -> bool {
        self.user.role == Role::Analyst
    }

    /// Whether this user may read data of `jurisdiction_id`.
    pub fn can_read(&self, jurisdiction_id: i64) -> bool {
        self.is_analyst() || self.user.jurisdiction_id == Some(jurisdiction_id) || self.children.contains(&jurisdiction_id)
    }

    /// Whether this user reads a state's counties too (a state user with counties).
    pub fn reads_children(&self) -> bool {
        !self.is_analyst() && !self.children.is_empty()
    }

    /// Whether this user may change `jurisdiction_id` (contacts, tokens, users).
    pub fn can_manage(&self, jurisdiction_id: i64) -> bool {
        self.is_analyst() || (self.user.role == Role::Admin && self.user.jurisdiction_id == Some(jurisdiction_id))
    }

    pub fn require_analyst(&self) -> Result<(), AppError> {
        if self.is_analyst() {
            Ok(())
        } else {
            Err(AppError::Forbidden("only hub analysts may do this".into()))
        }
    }

    pub fn check_csrf(&self, token: Option<&str>) -> Result<(), AppError> {
        match token {
            Some(t) if same_secret(t, &self.csrf) => Ok(()),
            _ => Err(AppError::Forbidden("missing or wrong CSRF token: reload the page and try again".into())),
        }
    }
}

async fn resolve_user(parts: &Parts, state: &HubState) -> Result<Option<UserAuth>, AppError> {
    let (token, via_cookie) = match bearer(parts) {
        Some(t) => (t.to_string(), false),
        None => match cookie(parts, SESSION_COOKIE) {
            Some(t) => (t.to_string(), true),
            None => return Ok(None),
        },
    };
    let hash = hash_token(&token);
    let h2 = hash.clone();
    // A state user reads its counties: found with the session, in the same store call.
    let found = state
        .store_call(move |s| match s.session(&h2, now_ms())? {
            Some((user, csrf)) => {
                let children = match (user.role, user.jurisdiction_id) {
                    (Role::Analyst, _) | (_, None) => Vec::new(),
                    (_, Some(j)) => s.jurisdiction_children(j)?.into_iter().map(|c| c.id).collect(),
                };
                Ok(Some((user, csrf, children)))
            }
            None => Ok(None),
        })
        .await?;
    let Some((user, csrf, children)) = found else { return Ok(None) };
    if !state.user_limiter.allow(&format!("user:{}", user.id)) {
        state.metrics.rate_limited.inc();
        return Err(AppError::RateLimited);
    }
    Ok(Some(UserAuth { user, csrf, via_cookie, session_hash: hash, children }))
}

impl FromRequestParts<HubState> for UserAuth {
    type Rejection = AppError;
    /// API use: a cookie-authenticated request that changes state must send `x-csrf-token`.
    async fn from_request_parts(parts: &mut Parts, state: &HubState) -> Result<Self, AppError> {
        let auth = resolve_user(parts, state).await?.ok_or(AppError::Unauthorized)?;
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if auth.via_cookie && !safe {
            let header = parts.headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
            auth.check_csrf(header)?;
        }
        Ok(auth)
    }
}

/// Dashboard use: `None` sends the browser to the login page; form handlers check CSRF.
pub struct MaybeUser(pub Option<UserAuth>);

impl FromRequestParts<HubState> for MaybeUser {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &HubState) -> Result<Self, AppError> {
        Ok(MaybeUser(resolve_user(parts, state).await?))
    }
}

pub fn session_cookie(token: &str) -> String {
    format!("{SESSION_COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}", SESSION_TTL_MS / 1000)
}

pub fn clear_session_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<crate::config::TrustedProxy> = vec!["127.0.0.1".parse().unwrap(), "10.9.0.0/16".parse().unwrap()];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let xff = |values: &[&str]| {
            let mut h = axum::http::HeaderMap::new();
            for v in values {
                h.append("x-forwarded-for", v.parse().unwrap());
            }
            h
        };
        // An untrusted peer is the client whatever it claims.
        assert_eq!(forwarded_client(ip("198.51.100.66"), &xff(&["192.0.2.10"]), &trusted), ip("198.51.100.66"));
        // Behind the balancer: the nearest untrusted entry, past trusted hops, across header lines.
        assert_eq!(forwarded_client(ip("127.0.0.1"), &xff(&["192.0.2.10"]), &trusted), ip("192.0.2.10"));
        assert_eq!(forwarded_client(ip("127.0.0.1"), &xff(&["203.0.113.5, 192.0.2.10", "10.9.1.1"]), &trusted), ip("192.0.2.10"), "the client's own claim (203.0.113.5) is not believed");
        assert_eq!(forwarded_client(ip("127.0.0.1"), &xff(&["::ffff:192.0.2.10"]), &trusted), ip("192.0.2.10"));
        assert_eq!(forwarded_client(ip("127.0.0.1"), &xff(&["[2001:db8::1]"]), &trusted), ip("2001:db8::1"));
        // Garbage or no header: the last trusted hop, never an address of the client's choosing.
        assert_eq!(forwarded_client(ip("127.0.0.1"), &xff(&["192.0.2.10, nonsense", "10.9.1.1"]), &trusted), ip("10.9.1.1"));
        assert_eq!(forwarded_client(ip("127.0.0.1"), &xff(&[]), &trusted), ip("127.0.0.1"));
        // With no trusted proxies the header is ignored.
        assert_eq!(forwarded_client(ip("127.0.0.1"), &xff(&["192.0.2.10"]), &[]), ip("127.0.0.1"));
    }

    #[test]
    fn passwords_round_trip() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("wrong horse battery", &h));
        assert!(!verify_password("x", "not a phc string"));
        assert!(hash_password("short").is_err());
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = random_token("ws");
        let b = random_token("ws");
        assert_ne!(a, b);
        assert_eq!(a.len(), 3 + 64);
        assert_eq!(hash_token(&a).len(), 64);
        assert_ne!(hash_token(&a), a);
    }

    #[test]
    fn login_backoff_starts_after_the_free_failures_doubles_and_caps() {
        assert_eq!(backoff(4, 5), Duration::ZERO);
        assert_eq!(backoff(5, 5), Duration::from_secs(1));
        assert_eq!(backoff(8, 5), Duration::from_secs(8));
        assert_eq!(backoff(40, 5), LOGIN_MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX, 5), LOGIN_MAX_BACKOFF);
    }

    #[test]
    fn login_throttle_is_per_source_and_forgets() {
        let t = LoginThrottle::default();
        let attacker = ClientAddr(Some("198.51.100.66".parse().unwrap()));
        let user = ClientAddr(Some("192.0.2.10".parse().unwrap()));
        let t0 = Instant::now();
        for _ in 0..LOGIN_FREE_FAILURES_PER_ACCOUNT {
            assert!(t.admit_at(attacker, "analyst", t0).is_ok());
        }
        assert_eq!(t.admit_at(attacker, "analyst", t0), Err(Duration::from_secs(1)));
        assert!(t.admit_at(attacker, "analyst", t0 + Duration::from_secs(1)).is_ok(), "after the backoff");
        assert_eq!(t.admit_at(attacker, "analyst", t0 + Duration::from_secs(2)), Err(Duration::from_secs(1)), "doubled from the last failure");
        // Someone else, same account: not affected; a success clears only their own record.
        assert!(t.admit_at(user, "analyst", t0).is_ok());
        t.succeeded_here(user, "analyst");
        assert!(t.admit_at(attacker, "analyst", t0 + Duration::from_secs(2)).is_err());
        // An hour without failures forgets.
        assert!(t.admit_at(attacker, "analyst", t0 + LOGIN_FAILURES_FORGOTTEN_AFTER + Duration::from_secs(2)).is_ok());
        // IPv6 sources count per /64.
        assert_eq!(ClientAddr(Some("2001:db8:1:2:aa::1".parse().unwrap())).key(), ClientAddr(Some("2001:db8:1:2:bb::9".parse().unwrap())).key());
        assert_eq!(ClientAddr(Some("::ffff:192.0.2.1".parse().unwrap())).key(), "192.0.2.1");
    }

    #[test]
    fn login_records_are_bounded() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        {
            let mut r = t.records.lock().unwrap();
            for i in 0..MAX_LOGIN_RECORDS {
                r.insert(format!("account x {i}"), FailureRecord { failures: 1, last: now });
            }
        }
        assert!(t.admit_at(ClientAddr(None), "someone", now).is_ok());
        assert!(t.records.lock().unwrap().len() <= MAX_LOGIN_RECORDS);
    }

    #[test]
    fn rate_limiter_bucket() {
        let rl = RateLimiter::new(0.001, 3.0);
        assert!(rl.allow("k") && rl.allow("k") && rl.allow("k"));
        assert!(!rl.allow("k"));
        assert!(!rl.peek("k"));
        assert!(rl.peek("other") && rl.peek("other"), "peeking takes nothing");
        assert!(rl.allow("other"));
    }
}
