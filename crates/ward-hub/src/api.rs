//! The JSON API under `/api/v1` (documented in docs/api.md and served as OpenAPI).
//!
//! Access rule, checked in every handler: an analyst sees everything; an admin or viewer sees
//! only objects of their own jurisdiction, and another jurisdiction's object answers 404 (not
//! 403), so ids cannot be probed. Campaigns reach a jurisdiction user only as
//! [`JurisdictionCampaignView`](crate::model::JurisdictionCampaignView).

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use crate::auth::{self, SensorAuth, UserAuth};
use crate::error::{AppError, AppResult};
use crate::ingest::{self, HomeNet};
use crate::model::*;
use crate::state::HubState;
use crate::store::{IngestBatch, NotificationFilter};

/// Longest indicator long-poll; clients re-poll after it.
pub const MAX_LONG_POLL_SECS: u64 = 60;
/// Indicators returned per poll at most; the cursor lets the client continue.
pub const MAX_INDICATORS_PER_POLL: usize = 10_000;
/// Events listed per request at most.
pub const MAX_EVENTS_LISTED: usize = 1_000;

#[derive(Deserialize)]
pub struct EnrollRequest {
    pub token: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// The rate-limit bucket of failed enrollments.
const ENROLL_FAILURES: &str = "enroll-failures";

/// `POST /api/v1/sensors/enroll`: a one-time token becomes a long-lived credential.
pub async fn enroll(State(state): State<HubState>, Json(req): Json<EnrollRequest>) -> AppResult<impl IntoResponse> {
    // Only failed attempts spend the budget: a burst of good enrollments (a state deploying
    // many sensors at once) is never refused, while guessing is slowed down.
    if !state.login_limiter.peek(ENROLL_FAILURES) {
        state.metrics.rate_limited.inc();
        return Err(AppError::RateLimited);
    }
    let name = req.name.unwrap_or_else(|| "sensor".into());
    if name.is_empty() || name.len() > 100 {
        return Err(AppError::BadRequest("sensor name must be 1 to 100 characters".into()));
    }
    let credential = auth::random_token("wsc");
    let (token_hash, cred_hash) = (auth::hash_token(req.token.trim()), auth::hash_token(&credential));
    let sensor = state
        .store_call(move |s| s.enroll_sensor(&token_hash, &name, &cred_hash, now_ms()))
        .await
        .map_err(|e| match e {
            AppError::NotFound => {
                state.login_limiter.allow(ENROLL_FAILURES);
                AppError::Forbidden("enrollment token unknown, used or expired: ask the hub for a new one".into())
            }
            other => other,
        })?;
    Ok((StatusCode::CREATED, Json(json!({ "sensor": sensor, "credential": credential }))))
}

/// `POST /api/v1/events`: one NDJSON batch; see docs/api.md for the contract.
pub async fn ingest_events(
    State(state): State<HubState>,
    SensorAuth(sensor): SensorAuth,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Response> {
    let started = Instant::now();
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| AppError::BadRequest("missing Idempotency-Key header: send SENSOR_ID:SEQUENCE".into()))?;
    let (sid, seq) = key
        .split_once(':')
        .and_then(|(a, b)| Some((a.trim().parse::<i64>().ok()?, b.trim().parse::<i64>().ok()?)))
        .ok_or_else(|| AppError::BadRequest("Idempotency-Key must be SENSOR_ID:SEQUENCE (two integers)".into()))?;
    if sid != sensor.id {
        return Err(AppError::Forbidden(format!("idempotency key names sensor {sid} but the credential is sensor {}", sensor.id)));
    }
    let content_encoding = match headers.get(header::CONTENT_ENCODING) {
        Some(v) => Some(v.to_str().map_err(|_| AppError::Unsupported("Content-Encoding is not ASCII".into()))?),
        None => None,
    };
    let gz = ingest::body_encoding(content_encoding, &body).map_err(AppError::Unsupported)? == ingest::BodyEncoding::Gzip;
    let jurisdiction_id = sensor.jurisdiction_id;
    let home = state.store_call(move |s| s.jurisdiction(jurisdiction_id)).await?.ok_or(AppError::Unauthorized)?;
    let state2 = state.clone();
    let batch = tokio::task::spawn_blocking(move || -> AppResult<IngestBatch> {
        let decoded;
        let bytes: &[u8] = if gz {
            decoded = ingest::gunzip(&body).map_err(|e| match e {
                ingest::BatchError::TooLarge => AppError::TooLarge(e.to_string()),
                other => AppError::BadRequest(other.to_string()),
            })?;
            &decoded
        } else {
            &body
        };
        let (mut events, rejected, rejected_total) = ingest::parse_batch(bytes, now_ms()).map_err(|e| match e {
            ingest::BatchError::TooManyLines => AppError::TooLarge(e.to_string()),
            other => AppError::BadRequest(other.to_string()),
        })?;
        let home_net = HomeNet::parse(&home.home_net).unwrap_or_default();
        for ev in &mut events {
            ingest::classify(ev, &home_net);
            if let Some(remote) = ev.remote {
                ev.remote_asn = state2.asn_of(remote);
            }
        }
        Ok(IngestBatch { sensor_id: sensor.id, jurisdiction_id, seq, events, rejected, rejected_total })
    })
    .await??;
    let receipt = state.ingest(batch).await?;
    state.metrics.ingest_ack_seconds.observe(started.elapsed().as_secs_f64());
    let mut resp = Json(&receipt).into_response();
    if let Ok(v) = receipt.rejected_total.to_string().parse() {
        resp.headers_mut().insert("ward-rejected-lines", v);
    }
    Ok(resp)
}

#[derive(Deserialize)]
pub struct IndicatorQuery {
    #[serde(default)]
    pub since: i64,
    #[serde(default)]
    pub wait: u64,
}

/// Either a sensor or a logged-in user may read indicators (they name no jurisdiction).
pub enum AnyPrincipal {
    Sensor,
    User,
}

impl axum::extract::FromRequestParts<HubState> for AnyPrincipal {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &HubState) -> Result<Self, AppError> {
        if let Ok(SensorAuth(_)) = SensorAuth::from_request_parts(parts, state).await {
            return Ok(AnyPrincipal::Sensor);
        }
        UserAuth::from_request_parts(parts, state).await.map(|_| AnyPrincipal::User)
    }
}

/// `GET /api/v1/indicators?since=CURSOR&wait=SECONDS`: deltas after the cursor; with `wait`,
/// the request is held until there is one or the wait ends.
pub async fn indicators(State(state): State<HubState>, _who: AnyPrincipal, Query(q): Query<IndicatorQuery>) -> AppResult<impl IntoResponse> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(q.wait.min(MAX_LONG_POLL_SECS));
    let mut changes = state.indicators_tx.subscribe();
    loop {
        let since = q.since;
        let list = state.store_call(move |s| s.indicators_since(since, MAX_INDICATORS_PER_POLL)).await?;
        if !list.is_empty() || tokio::time::Instant::now() >= deadline {
            let cursor = list.last().map_or(q.since, |i| i.seq);
            return Ok(Json(json!({ "cursor": cursor, "indicators": list, "tlp": state.config.notify.tlp })));
        }
        // Wake on a local change, or re-check each second for other replicas' changes.
        let tick = tokio::time::Instant::now() + Duration::from_secs(1);
        tokio::select! {
            _ = changes.changed() => {}
            _ = tokio::time::sleep_until(tick.min(deadline)) => {}
        }
    }
}

#[derive(Deserialize)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// Checks a password and opens a session; shared by the API and the login form. Throttled per
/// source and per (account, source) by [`auth::LoginThrottle`] before any password is checked.
pub async fn open_session(state: &HubState, source: auth::ClientAddr, username: &str, password: &str) -> Result<(String, String, User), auth::LoginError> {
    if let Err(wait) = state.login_throttle.admit(source, username) {
        state.metrics.rate_limited.inc();
        tracing::info!(source = ?source.0, retry_after_secs = auth::LoginError::retry_after_secs(wait), "login throttled");
        return Err(auth::LoginError::Throttled(wait));
    }
    let name = username.to_string();
    let found = state.store_call(move |s| s.user_credentials(&name)).await?;
    let password = password.to_string();
    let (user, ok) = tokio::task::spawn_blocking(move || match found {
        Some((user, phc)) => {
            let ok = auth::verify_password(&password, &phc);
            (Some(user), ok)
        }
        None => {
            // Same work for an unknown name, so timing does not reveal which names exist.
            let _ = auth::verify_password(&password, "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2Yq9x1Hk2nN0m1R2Kx2m3C8s3s0mRk4m8Yw2c9Xh0aE");
            (None, false)
        }
    })
    .await
    .map_err(AppError::from)?;
    let user = match (user, ok) {
        (Some(u), true) => u,
        _ => return Err(auth::LoginError::Wrong),
    };
    state.login_throttle.succeeded(source, username);
    let token = auth::random_token("wss");
    let csrf = auth::random_token("csrf");
    let (hash, c2, uid) = (auth::hash_token(&token), csrf.clone(), user.id);
    state
        .store_call(move |s| {
            let now = now_ms();
            s.create_session(&hash, uid, &c2, now, now + auth::SESSION_TTL_MS)
        })
        .await?;
    Ok((token, csrf, user))
}

/// `POST /api/v1/login`: returns a bearer token (also set as the session cookie) and the CSRF
/// token; 429 with `Retry-After` while this source is throttled.
pub async fn login(State(state): State<HubState>, source: auth::ClientAddr, Json(req): Json<LoginRequest>) -> Result<Response, auth::LoginError> {
    let (token, csrf, user) = open_session(&state, source, &req.username, &req.password).await?;
    let mut resp = Json(json!({ "token": token, "csrf": csrf, "user": user })).into_response();
    if let Ok(v) = auth::session_cookie(&token).parse() {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

pub async fn logout(State(state): State<HubState>, who: UserAuth) -> AppResult<Response> {
    let hash = who.session_hash.clone();
    state.store_call(move |s| s.delete_session(&hash)).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = auth::clear_session_cookie().parse() {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

pub async fn me(who: UserAuth) -> Json<serde_json::Value> {
    Json(json!({ "user": who.user, "csrf": who.csrf }))
}

pub async fn list_jurisdictions(State(state): State<HubState>, who: UserAuth) -> AppResult<Json<Vec<Jurisdiction>>> {
    let all = state.store_call(|s| s.jurisdictions()).await?;
    Ok(Json(all.into_iter().filter(|j| who.can_read(j.id)).collect()))
}

pub async fn create_jurisdiction(State(state): State<HubState>, who: UserAuth, Json(new): Json<NewJurisdiction>) -> AppResult<impl IntoResponse> {
    who.require_analyst()?;
    let j = state.store_call(move |s| s.create_jurisdiction(&new, now_ms())).await?;
    Ok((StatusCode::CREATED, Json(j)))
}

async fn readable_jurisdiction(state: &HubState, who: &UserAuth, id: i64) -> AppResult<Jurisdiction> {
    if !who.can_read(id) {
        return Err(AppError::NotFound);
    }
    state.store_call(move |s| s.jurisdiction(id)).await?.ok_or(AppError::NotFound)
}

pub async fn get_jurisdiction(State(state): State<HubState>, who: UserAuth, Path(id): Path<i64>) -> AppResult<Json<Jurisdiction>> {
    Ok(Json(readable_jurisdiction(&state, &who, id).await?))
}

/// `POST /api/v1/jurisdictions/{id}/sensor-tokens`: a one-time enrollment token, shown once.
pub async fn create_sensor_token(State(state): State<HubState>, who: UserAuth, Path(id): Path<i64>) -> AppResult<impl IntoResponse> {
    if !who.can_manage(id) {
        return Err(if who.can_read(id) { AppError::Forbidden("only the jurisdiction's admin or an analyst may enroll sensors".into()) } else { AppError::NotFound });
    }
    let (token, expires) = issue_enrollment_token(&state, id).await?;
    Ok((StatusCode::CREATED, Json(json!({ "token": token, "jurisdiction_id": id, "expires": fmt_ms(expires) }))))
}

pub async fn issue_enrollment_token(state: &HubState, jurisdiction_id: i64) -> AppResult<(String, Millis)> {
    let token = auth::random_token("wet");
    let hash = auth::hash_token(&token);
    let now = now_ms();
    let expires = now + auth::ENROLLMENT_TOKEN_TTL_MS;
    state.store_call(move |s| s.create_enrollment_token(jurisdiction_id, &hash, now, expires)).await?;
    Ok((token, expires))
}

pub async fn list_sensors(State(state): State<HubState>, who: UserAuth, Path(id): Path<i64>) -> AppResult<Json<Vec<Sensor>>> {
    readable_jurisdiction(&state, &who, id).await?;
    Ok(Json(state.store_call(move |s| s.sensors(Some(id))).await?))
}

pub async fn list_contacts(State(state): State<HubState>, who: UserAuth, Path(id): Path<i64>) -> AppResult<Json<Vec<Contact>>> {
    readable_jurisdiction(&state, &who, id).await?;
    Ok(Json(state.store_call(move |s| s.contacts(Some(id))).await?))
}

/// A webhook contact without a secret gets a generated one, returned once in `secret`. A target
/// on an internal or metadata address not in `[notify] allow_targets` is refused (400).
pub async fn create_contact(State(state): State<HubState>, who: UserAuth, Path(id): Path<i64>, Json(mut new): Json<NewContact>) -> AppResult<impl IntoResponse> {
    if !who.can_manage(id) {
        return Err(if who.can_read(id) { AppError::Forbidden("only the jurisdiction's admin or an analyst may add contacts".into()) } else { AppError::NotFound });
    }
    crate::notify::check_contact_target(&state.config.notify, &new).map_err(AppError::BadRequest)?;
    let generated = crate::notify::fill_webhook_secret(&mut new);
    let c = state.store_call(move |s| s.create_contact(id, &new, now_ms())).await?;
    let mut body = serde_json::to_value(&c).map_err(|e| AppError::Internal(e.to_string()))?;
    if let (Some(secret), Some(obj)) = (generated, body.as_object_mut()) {
        obj.insert("secret".into(), json!(secret));
    }
    Ok((StatusCode::CREATED, Json(body)))
}

#[derive(Deserialize)]
pub struct NewUserRequest {
    pub username: String,
    pub password: String,
    pub role: Role,
    #[serde(default)]
    pub jurisdiction_id: Option<i64>,
}

/// Analysts create anyone; a jurisdiction admin creates admins and viewers of their own.
pub async fn create_user(State(state): State<HubState>, who: UserAuth, Json(req): Json<NewUserRequest>) -> AppResult<impl IntoResponse> {
    match (req.role, req.jurisdiction_id) {
        (Role::Analyst, _) => who.require_analyst()?,
        (_, Some(j)) if who.can_manage(j) => {}
        (_, Some(j)) if who.can_read(j) => return Err(AppError::Forbidden("only an admin may add users".into())),
        (_, Some(_)) => return Err(AppError::NotFound),
        (_, None) => return Err(AppError::BadRequest("an admin or viewer needs jurisdiction_id".into())),
    }
    let password = req.password.clone();
    let phc = tokio::task::spawn_blocking(move || auth::hash_password(&password)).await??;
    let u = state.store_call(move |s| s.create_user(&req.username, &phc, req.role, req.jurisdiction_id, now_ms())).await?;
    Ok((StatusCode::CREATED, Json(u)))
}

pub async fn list_users(State(state): State<HubState>, who: UserAuth) -> AppResult<Json<Vec<User>>> {
    let scope = if who.is_analyst() { None } else { who.user.jurisdiction_id };
    Ok(Json(state.store_call(move |s| s.users(scope)).await?))
}

/// Analysts get full campaigns; a jurisdiction user gets only the ones that touched them, redacted.
pub async fn list_campaigns(State(state): State<HubState>, who: UserAuth) -> AppResult<Response> {
    if who.is_analyst() {
        return Ok(Json(state.store_call(|s| s.campaigns(false)).await?).into_response());
    }
    let j = who.user.jurisdiction_id.ok_or(AppError::NotFound)?;
    Ok(Json(state.store_call(move |s| s.jurisdiction_campaigns(j)).await?).into_response())
}

pub async fn get_campaign(State(state): State<HubState>, who: UserAuth, Path(id): Path<i64>) -> AppResult<Response> {
    if who.is_analyst() {
        let c = state.store_call(move |s| s.campaign(id)).await?.ok_or(AppError::NotFound)?;
        return Ok(Json(c).into_response());
    }
    let j = who.user.jurisdiction_id.ok_or(AppError::NotFound)?;
    let v = state.store_call(move |s| s.jurisdiction_campaign(id, j)).await?.ok_or(AppError::NotFound)?;
    Ok(Json(v).into_response())
}

#[derive(Deserialize)]
pub struct CampaignUpdate {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub annotation: Option<String>,
    #[serde(default)]
    pub close: bool,
    /// Merge the campaign with this id into this one.
    #[serde(default)]
    pub merge_from: Option<i64>,
}

/// `POST /api/v1/campaigns/{id}`: rename, annotate, close, merge (analysts only).
pub async fn update_campaign(State(state): State<HubState>, who: UserAuth, Path(id): Path<i64>, Json(u): Json<CampaignUpdate>) -> AppResult<Response> {
    who.require_analyst()?;
    apply_campaign_update(&state, id, u).await?;
    let c = state.store_call(move |s| s.campaign(id)).await?.ok_or(AppError::NotFound)?;
    Ok(Json(c).into_response())
}

pub async fn apply_campaign_update(state: &HubState, id: i64, u: CampaignUpdate) -> AppResult<()> {
    let changed_indicators = u.close || u.merge_from.is_some();
    let change = crate::store::CampaignChange { name: u.name, annotation: u.annotation, merge_from: u.merge_from, close: u.close };
    state.store_call(move |s| s.update_campaign(id, &change, now_ms())).await?;
    if changed_indicators {
        state.indicators_tx.send_modify(|v| *v += 1);
    }
    Ok(())
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    pub jurisdiction_id: Option<i64>,
    #[serde(default)]
    pub event_type: Option<String>,
    #[serde(default)]
    pub campaign_id: Option<i64>,
    #[serde(default)]
    pub limit: Option<usize>,
}

/// A jurisdiction user is always scoped to their own jurisdiction, whatever they ask for.
fn scope(who: &UserAuth, asked: Option<i64>) -> AppResult<Option<i64>> {
    if who.is_analyst() {
        return Ok(asked);
    }
    let own = who.user.jurisdiction_id.ok_or(AppError::NotFound)?;
    match asked {
        Some(j) if j != own => Err(AppError::NotFound),
        _ => Ok(Some(own)),
    }
}

pub async fn list_events(State(state): State<HubState>, who: UserAuth, Query(q): Query<ListQuery>) -> AppResult<Json<Vec<StoredEvent>>> {
    let j = scope(&who, q.jurisdiction_id)?;
    let limit = q.limit.unwrap_or(100).min(MAX_EVENTS_LISTED);
    Ok(Json(state.store_call(move |s| s.events(j, q.event_type.as_deref(), limit)).await?))
}

pub async fn list_notifications(State(state): State<HubState>, who: UserAuth, Query(q): Query<ListQuery>) -> AppResult<Json<Vec<NotificationRecord>>> {
    let j = scope(&who, q.jurisdiction_id)?;
    let filter = NotificationFilter { jurisdiction_id: j, campaign_id: q.campaign_id, limit: q.limit.unwrap_or(200).min(1000) };
    Ok(Json(state.store_call(move |s| s.notifications(&filter)).await?))
}

pub async fn notification_attempts(State(state): State<HubState>, who: UserAuth, Path(id): Path<i64>) -> AppResult<Json<Vec<DeliveryAttempt>>> {
    let (_, attempts) = visible_notification(&state, &who, id).await?;
    Ok(Json(attempts))
}

/// One notification and its attempts, if `who` may see it (another jurisdiction's: 404).
pub async fn visible_notification(state: &HubState, who: &UserAuth, id: i64) -> AppResult<(NotificationRecord, Vec<DeliveryAttempt>)> {
    let found = state
        .store_call(move |s| match s.notification(id)? {
            Some(n) => Ok(Some((n, s.delivery_attempts(id)?))),
            None => Ok(None),
        })
        .await?;
    match found {
        Some((n, attempts)) if who.can_read(n.jurisdiction_id) => Ok((n, attempts)),
        _ => Err(AppError::NotFound),
    }
}

pub async fn openapi() -> impl IntoResponse {
    Json(crate::openapi::document())
}

pub async fn metrics(State(state): State<HubState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

pub async fn health() -> &'static str {
    "ok\n"
}
