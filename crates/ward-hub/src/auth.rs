//! Credentials, sessions, CSRF and rate limits.
//!
//! * Random secrets (sensor credentials, enrollment tokens, session tokens) are 256-bit, shown
//!   once, and stored as SHA-256 hashes: a leaked database reveals no usable credential. A slow
//!   hash buys nothing for 256-bit random values.
//! * Passwords are stored as Argon2id PHC strings.
//! * Web sessions: cookie `ward_session`, `Secure; HttpOnly; SameSite=Strict`, 12 hours. The same
//!   token works as `Authorization: Bearer` for API clients. A mutating request authenticated by
//!   cookie must carry the session's CSRF token (`x-csrf-token` header, or a `csrf` form field).
//! * Rate limits: a token bucket per sensor and per user (and per login name), in process memory
//!   (a limit per replica).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, Method};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::AppError;
use crate::model::{now_ms, Role, Sensor, User};
use crate::state::HubState;

pub const SESSION_COOKIE: &str = "ward_session";
pub const LOGIN_CSRF_COOKIE: &str = "ward_login_csrf";
/// A session lasts a working day; log in again after that.
pub const SESSION_TTL_MS: i64 = 12 * 3600 * 1000;
/// An enrollment token unused after this long is void.
pub const ENROLLMENT_TOKEN_TTL_MS: i64 = 7 * 24 * 3600 * 1000;
/// Login attempts per user name: burst, then one per this many seconds.
pub const LOGIN_BURST: f64 = 10.0;
pub const LOGIN_RATE_PER_SEC: f64 = 0.2;
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

pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(rate_per_sec: f64, burst: f64) -> Self {
        RateLimiter { rate: rate_per_sec, burst, buckets: Mutex::new(HashMap::new()) }
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
}

impl UserAuth {
    pub fn is_analyst(&self) -> bool {
        self.user.role == Role::Analyst
    }

    /// Whether this user may read data of `jurisdiction_id`.
    pub fn can_read(&self, jurisdiction_id: i64) -> bool {
        self.is_analyst() || self.user.jurisdiction_id == Some(jurisdiction_id)
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
    let found = state.store_call(move |s| s.session(&h2, now_ms())).await?;
    let Some((user, csrf)) = found else { return Ok(None) };
    if !state.user_limiter.allow(&format!("user:{}", user.id)) {
        state.metrics.rate_limited.inc();
        return Err(AppError::RateLimited);
    }
    Ok(Some(UserAuth { user, csrf, via_cookie, session_hash: hash }))
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
    fn rate_limiter_bucket() {
        let rl = RateLimiter::new(0.001, 3.0);
        assert!(rl.allow("k") && rl.allow("k") && rl.allow("k"));
        assert!(!rl.allow("k"));
        assert!(!rl.peek("k"));
        assert!(rl.peek("other") && rl.peek("other"), "peeking takes nothing");
        assert!(rl.allow("other"));
    }
}
