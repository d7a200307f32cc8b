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
use crate::store::{EventFilter, IngestBatch, NotificationFilter};

/// Longest indicator long-poll; clients re-poll after it.
pub const MAX_LONG_POLL_SECS: u64 = 60;
/// Indicators returned per poll at most; the cursor lets the client continue.
pub const MAX_INDICATORS_PER_POLL: usize = 10_000;
/// Events listed per request at most.
pub const MAX_EVENTS_LISTED: usize = 1_000;
/// Bytes of one events listing at most: with stored events bounded by
/// [`MAX_STORED_EVENT_BYTES`](crate::ingest::MAX_STORED_EVENT_BYTES), a page costs the hub about
/// this much memory while it is built and sent, whatever `limit` asks for; the rest is on the
/// next page.
pub const MAX_EVENT_PAGE_BYTES: usize = 8 * 1024 * 1024;

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
    if !state.login_limiter.check(ENROLL_FAILURES).await? {
        state.metrics.rate_limited.inc();
        return Err(AppError::RateLimited);
    }
    let name = req.name.unwrap_or_else(|| "sensor".into());
    if name.is_empty() || name.len() > 100 {
        return Err(AppError::BadRequest("sensor name must be 1 to 100 characters".into()));
    }
    let credential = auth::random_token("wsc");
    let (token_hash, cred_hash) = (auth::hash_token(req.token.trim()), auth::hash_token(&credential));
    let sensor = match state.store_call(move |s| s.enroll_sensor(&token_hash, &name, &cred_hash, now_ms())).await {
        Err(AppError::NotFound) => {
            state.login_limiter.spend(ENROLL_FAILURES).await?;
            return Err(AppError::Forbidden("enrollment token unknown, used or expired: ask the hub for a new one".into()));
        }
        other => other?,
    };
    Ok((StatusCode::CREATED, Json(json!({ "sensor": sensor, "credential": credential }))))
}

/// `POST /api/v1/events`: one NDJSON batch; see docs/api.md for the contract.
///
/// Order matters for fairness (see [`crate::state`]): the credential and key are checked from
/// the headers; the sensor takes one of its [`MAX_INGEST_PER_SENSOR`](crate::state::MAX_INGEST_PER_SENSOR)
/// places (429 when it has none left); the body is read under the deadline of [`crate::body`]
/// holding nothing shared; only then does the batch wait for a global ingest slot.
pub async fn ingest_events(
    State(state): State<HubState>,
    SensorAuth(sensor): SensorAuth,
    headers: HeaderMap,
    body: axum::body::Body,
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
        Some(v) => Some(v.to_str().map_err(|_| AppError::Unsupported("Content-Encoding is not ASCII".into()))?.to_string()),
        None => None,
    };
    let Some(_place) = state.sensor_ingest.try_take(sensor.id) else {
        state.metrics.ingest_busy.inc();
        tracing::info!(sensor = sensor.id, in_flight = crate::state::MAX_INGEST_PER_SENSOR, "ingest refused: sensor has too many requests in flight");
        return Ok(busy_response(sensor.id));
    };
    let body = crate::body::read_to_limit(body, ingest::MAX_BATCH_BODY_BYTES).await.map_err(|e| match e {
        crate::body::BodyReadError::TooLarge(_) => AppError::TooLarge(format!("batch body larger than {} bytes: send smaller batches", ingest::MAX_BATCH_BODY_BYTES)),
        // The deadline middleware turns this into 408.
        other => AppError::BadRequest(other.to_string()),
    })?;
    let _slot = state
        .ingest_permits
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| AppError::Internal("ingest admission closed".into()))?;
    let gz = ingest::body_encoding(content_encoding.as_deref(), &body).map_err(AppError::Unsupported)? == ingest::BodyEncoding::Gzip;
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

/// 429 for a sensor that already has its share of ingest requests in flight.
fn busy_response(sensor_id: i64) -> Response {
    let message = format!(
        "sensor {sensor_id} already has {} batches in flight: wait for their replies, then retry this one with the same key",
        crate::state::MAX_INGEST_PER_SENSOR
    );
    let mut resp = (StatusCode::TOO_MANY_REQUESTS, Json(json!({ "error": message }))).into_response();
    resp.headers_mut().insert(header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
    resp
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
        // Wake on a change (a local commit, or another replica's through the store's change
        // notices), or re-check each second in case a notice was lost.
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

/// Checks a user name and password through the login throttle (a refused attempt is counted
/// and answered the same for unknown names and wrong passwords). Used by the login and by HTTP
/// Basic on the TAXII server.
pub async fn check_password(state: &HubState, source: auth::ClientAddr, username: &str, password: &str) -> Result<User, auth::LoginError> {
    if let Err(wait) = state.login_throttle.admit(source, username).await? {
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
    state.login_throttle.succeeded(source, username).await;
    Ok(user)
}

/// Checks a password and opens a session; shared by the API and the login form. Throttled per
/// source and per (account, source) by [`auth::LoginThrottle`] before any password is checked.
pub async fn open_session(state: &HubState, source: auth::ClientAddr, username: &str, password: &str) -> Result<(String, String, User), auth::LoginError> {
    let user = check_password(state, source, username, password).await?;
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

/// `POST /api/v1/jurisdictions`'s body: a jurisdiction, optionally `"drill": true` (a drill
/// jurisdiction, see [`crate::drill`]).
#[derive(Deserialize)]
pub struct NewJurisdictionRequest {
    #[serde(flatten)]
    pub jurisdiction: NewJurisdiction,
    #[serde(default)]
    pub drill: bool,
}

pub async fn create_jurisdiction(State(state): State<HubState>, who: UserAuth, Json(req): Json<NewJurisdictionRequest>) -> AppResult<impl IntoResponse> {
    who.require_analyst()?;
    let (new, drill) = (req.jurisdiction, req.drill);
    // Two transactions: a hub stopping between them leaves a jurisdiction not marked as a drill
    // one; `ward drill` makes its participants again under new names on the next run.
    let j = state
        .store_call(move |s| {
            let j = s.create_jurisdiction(&new, now_ms())?;
            if !drill {
                return Ok(j);
            }
            s.set_jurisdiction_drill(j.id, true)
        })
        .await?;
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
    // A state reads its counties' campaigns and alerts, not where their warnings go.
    if !who.is_analyst() && who.user.jurisdiction_id != Some(id) {
        return Err(AppError::Forbidden("a county's contacts are for the county and the hub's analysts".into()));
    }
    Ok(Json(state.store_call(move |s| s.contacts(Some(id))).await?))
}

/// `POST /api/v1/jurisdictions/{id}/contacts`: a contact, with an optional `priority` (1, the
/// default, is warned at once; 2 to 9 are told in order when a warning stays unacknowledged,
/// see [`crate::ack`]).
#[derive(Deserialize)]
pub struct NewContactRequest {
    #[serde(flatten)]
    pub contact: NewContact,
    #[serde(default)]
    pub priority: Option<i64>,
}

/// A webhook contact without a secret gets a generated one, returned once in `secret`. A target
/// on an internal or metadata address not in `[notify] allow_targets` is refused (400).
pub async fn create_contact(State(state): State<HubState>, who: UserAuth, Path(id): Path<i64>, Json(req): Json<NewContactRequest>) -> AppResult<impl IntoResponse> {
    let (mut new, priority) = (req.contact, req.priority.unwrap_or(1));
    if !(1..=crate::ack::MAX_PRIORITY).contains(&priority) {
        return Err(AppError::BadRequest(format!("priority must be 1 (warned at once) to {} (told in order when a warning stays unacknowledged)", crate::ack::MAX_PRIORITY)));
    }
    if !who.can_manage(id) {
        return Err(if who.can_read(id) { AppError::Forbidden("only the jurisdiction's admin or an analyst may add contacts".into()) } else { AppError::NotFound });
    }
    crate::notify::check_contact_target(&state.config.notify, &new).map_err(AppError::BadRequest)?;
    let generated = crate::notify::fill_webhook_secret(&mut new);
    // Two transactions: a hub stopping between them leaves a contact warned at once (priority 1).
    let c = state
        .store_call(move |s| {
            let c = s.create_contact(id, &new, now_ms())?;
            if priority == 1 {
                return Ok(c);
            }
            s.set_contact_priority(c.id, priority)
        })
        .await?;
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

/// The answer to a user name that is taken, wherever the other user lives.
pub const USERNAME_TAKEN: &str = "this username is not available: choose another";

/// Analysts create anyone; a jurisdiction admin creates admins and viewers of their own.
///
/// User names are one namespace (a login is a name and a password), so a taken name cannot
/// be given out again, and a failed creation tells the creator the name exists somewhere. The
/// answer says no more than that: the same 409 and message whether the other user is in the
/// creator's jurisdiction, another one, or an analyst, after the same work (the password is
/// hashed first either way). Failures are counted per creator (a burst of
/// [`NAME_PROBE_BURST`](crate::state::NAME_PROBE_BURST), then one a minute; 429 beyond) and
/// logged, so names cannot be enumerated this way.
pub async fn create_user(State(state): State<HubState>, who: UserAuth, Json(req): Json<NewUserRequest>) -> AppResult<impl IntoResponse> {
    match (req.role, req.jurisdiction_id) {
        (Role::Analyst, _) => who.require_analyst()?,
        (_, Some(j)) if who.can_manage(j) => {}
        (_, Some(j)) if who.can_read(j) => return Err(AppError::Forbidden("only an admin may add users".into())),
        (_, Some(_)) => return Err(AppError::NotFound),
        (_, None) => return Err(AppError::BadRequest("an admin or viewer needs jurisdiction_id".into())),
    }
    let probe_key = format!("user-create-failures:{}", who.user.id);
    if !state.name_probe_limiter.check(&probe_key).await? {
        state.metrics.rate_limited.inc();
        return Err(AppError::RateLimited);
    }
    let password = req.password.clone();
    let phc = tokio::task::spawn_blocking(move || auth::hash_password(&password)).await??;
    let created = state.store_call(move |s| s.create_user(&req.username, &phc, req.role, req.jurisdiction_id, now_ms())).await;
    match created {
        Ok(u) => Ok((StatusCode::CREATED, Json(u))),
        Err(AppError::Conflict(_)) => {
            state.name_probe_limiter.spend(&probe_key).await?;
            tracing::warn!(creator = who.user.id, "user creation refused: username taken");
            Err(AppError::Conflict(USERNAME_TAKEN.into()))
        }
        Err(other) => Err(other),
    }
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
    if who.reads_children() {
        // A state: its own campaigns and its counties', each with the counties it hit.
        let list = state.store_call(move |s| crate::rollup::state_campaigns(s, j, &s.jurisdiction_children(j)?)).await?;
        return Ok(Json(list).into_response());
    }
    Ok(Json(state.store_call(move |s| s.jurisdiction_campaigns(j)).await?).into_response())
}

pub async fn get_campaign(State(state): State<HubState>, who: UserAuth, Path(id): Path<i64>) -> AppResult<Response> {
    if who.is_analyst() {
        let c = state.store_call(move |s| s.campaign(id)).await?.ok_or(AppError::NotFound)?;
        return Ok(Json(c).into_response());
    }
    let j = who.user.jurisdiction_id.ok_or(AppError::NotFound)?;
    if who.reads_children() {
        let v = state.store_call(move |s| crate::rollup::state_campaign(s, id, j, &s.jurisdiction_children(j)?)).await?.ok_or(AppError::NotFound)?;
        return Ok(Json(v).into_response());
    }
    let v = state.store_call(move |s| s.jurisdiction_campaign(id, j)).await?.ok_or(AppError::NotFound)?;
    Ok(Json(v).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
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
    /// Publish the campaign's keys to every sensor whatever its size (docs/hub.md "Trust").
    #[serde(default)]
    pub confirm: bool,
}

impl CampaignUpdate {
    /// Reads an API body: a JSON object with at least one change, nothing else.
    pub fn from_json(body: &[u8]) -> Result<Self, String> {
        let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| format!("campaign update is not JSON: {e}"))?;
        if !value.is_object() {
            return Err("campaign update must be a JSON object such as {\"name\": \"…\"}".into());
        }
        let update: CampaignUpdate = serde_json::from_value(value).map_err(|e| format!("bad campaign update: {e}"))?;
        update.check()?;
        Ok(update)
    }

    /// Refuses an update that asks for nothing: answering 200 to it would say something changed.
    pub fn check(&self) -> Result<(), String> {
        if self.name.is_none() && self.annotation.is_none() && self.merge_from.is_none() && !self.close && !self.confirm {
            return Err("nothing to change: send name, annotation, merge_from, \"confirm\": true or \"close\": true".into());
        }
        Ok(())
    }
}

/// `POST /api/v1/campaigns/{id}`: rename, annotate, close, merge, confirm (analysts only).
pub async fn update_campaign(State(state): State<HubState>, who: UserAuth, Path(id): Path<i64>, body: Bytes) -> AppResult<Response> {
    who.require_analyst()?;
    let u = CampaignUpdate::from_json(&body).map_err(AppError::BadRequest)?;
    apply_campaign_update(&state, id, u).await?;
    let c = state.store_call(move |s| s.campaign(id)).await?.ok_or(AppError::NotFound)?;
    Ok(Json(c).into_response())
}

pub async fn apply_campaign_update(state: &HubState, id: i64, u: CampaignUpdate) -> AppResult<()> {
    u.check().map_err(AppError::BadRequest)?;
    let changed_indicators = u.close || u.merge_from.is_some() || u.confirm;
    let change = crate::store::CampaignChange { name: u.name, annotation: u.annotation, merge_from: u.merge_from, close: u.close, confirm: u.confirm };
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
    /// Events listing: only events older than this id (the `next` cursor of the page before).
    #[serde(default)]
    pub before: Option<i64>,
}

/// Which jurisdictions a listing covers: one (`include_children` false), or one and its
/// counties (a state user who asked for no particular jurisdiction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    pub jurisdiction_id: Option<i64>,
    pub include_children: bool,
}

/// A jurisdiction user is always scoped to what they may read, whatever they ask for: their
/// own jurisdiction, or for a state user one of its counties or (by default) all of them.
pub fn scope(who: &UserAuth, asked: Option<i64>) -> AppResult<Scope> {
    if who.is_analyst() {
        return Ok(Scope { jurisdiction_id: asked, include_children: false });
    }
    let own = who.user.jurisdiction_id.ok_or(AppError::NotFound)?;
    match asked {
        Some(j) if j == own => Ok(Scope { jurisdiction_id: Some(own), include_children: false }),
        Some(j) if who.can_read(j) => Ok(Scope { jurisdiction_id: Some(j), include_children: false }),
        Some(_) => Err(AppError::NotFound),
        None => Ok(Scope { jurisdiction_id: Some(own), include_children: who.reads_children() }),
    }
}

/// One page of events as a JSON array, built one event at a time.
pub struct EventPage {
    pub json: Vec<u8>,
    pub count: usize,
    /// The id to pass as `before` for the next page, when there is one.
    pub next_before: Option<i64>,
}

/// Fills a page with at most `limit` events and at most `max_bytes` bytes of JSON (one event
/// always fits, so a page is never empty while events remain); only one event is held in
/// memory besides the page.
pub fn event_page(store: &dyn crate::store::Store, filter: &EventFilter, limit: usize, max_bytes: usize) -> crate::store::StoreResult<EventPage> {
    let mut json = b"[".to_vec();
    let (mut count, mut last_id, mut more) = (0usize, None, false);
    let mut failed = None;
    let filter = EventFilter { limit: limit.saturating_add(1), ..filter.clone() };
    store.scan_events(&filter, &mut |event| {
        if count == limit {
            more = true;
            return false;
        }
        let bytes = match serde_json::to_vec(&event) {
            Ok(b) => b,
            Err(e) => {
                failed = Some(e.to_string());
                return false;
            }
        };
        if count > 0 && json.len() + 1 + bytes.len() + 1 > max_bytes {
            more = true;
            return false;
        }
        if count > 0 {
            json.push(b',');
        }
        json.extend_from_slice(&bytes);
        count += 1;
        last_id = Some(event.id);
        true
    })?;
    if let Some(e) = failed {
        return Err(crate::error::StoreError::Database(format!("cannot serialise an event: {e}")));
    }
    json.push(b']');
    Ok(EventPage { json, count, next_before: if more { last_id } else { None } })
}

/// Percent-encodes a query value (everything but RFC 3986 unreserved characters).
fn query_value(v: &str) -> String {
    v.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// `GET /api/v1/events?jurisdiction_id=&event_type=&limit=&before=`: newest first, at most
/// `limit` (≤ [`MAX_EVENTS_LISTED`]) events and [`MAX_EVENT_PAGE_BYTES`] bytes; when more
/// remain, `Link: <…&before=ID>; rel="next"` and `Ward-Next-Before: ID` name the next page.
pub async fn list_events(State(state): State<HubState>, who: UserAuth, Query(q): Query<ListQuery>) -> AppResult<Response> {
    let j = scope(&who, q.jurisdiction_id)?;
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_EVENTS_LISTED);
    let filter = EventFilter { jurisdiction_id: j.jurisdiction_id, include_children: j.include_children, event_type: q.event_type.clone(), before: q.before, limit };
    let page = state.store_call(move |s| event_page(s, &filter, limit, MAX_EVENT_PAGE_BYTES)).await?;
    let mut resp = ([(header::CONTENT_TYPE, "application/json")], page.json).into_response();
    if let Some(next) = page.next_before {
        let mut link = format!("/api/v1/events?limit={limit}&before={next}");
        if let Some(j) = q.jurisdiction_id {
            link.push_str(&format!("&jurisdiction_id={j}"));
        }
        if let Some(t) = &q.event_type {
            link.push_str(&format!("&event_type={}", query_value(t)));
        }
        if let Ok(v) = format!("<{link}>; rel=\"next\"").parse() {
            resp.headers_mut().insert(header::LINK, v);
        }
        resp.headers_mut().insert("ward-next-before", next.into());
    }
    Ok(resp)
}

pub async fn list_notifications(State(state): State<HubState>, who: UserAuth, Query(q): Query<ListQuery>) -> AppResult<Json<Vec<NotificationRecord>>> {
    let j = scope(&who, q.jurisdiction_id)?;
    let filter = NotificationFilter { jurisdiction_id: j.jurisdiction_id, include_children: j.include_children, campaign_id: q.campaign_id, limit: q.limit.unwrap_or(200).min(1000) };
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

/// `GET /metrics`: for an analyst's session, or for the scraper token whose SHA-256 is
/// `[metrics] token_sha256`. Metrics describe every jurisdiction's traffic, so they are not
/// public; 401 without credentials, 403 for other users.
pub async fn metrics(State(state): State<HubState>, parts: axum::http::request::Parts) -> AppResult<Response> {
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let scraper = match (bearer, &state.metrics_token_hash) {
        (Some(token), Some(want)) => auth::same_secret(&auth::hash_token(token), want),
        _ => false,
    };
    if !scraper {
        let mut parts = parts;
        let who = <UserAuth as axum::extract::FromRequestParts<HubState>>::from_request_parts(&mut parts, &state).await?;
        if !who.is_analyst() {
            return Err(AppError::Forbidden("metrics are for hub analysts and the configured scraper token".into()));
        }
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()).into_response())
}

pub async fn health() -> &'static str {
    "ok\n"
}

// ---- trust (crate::trust; docs/hub.md "Trust"): one sensor's contributions, holds, the allow-list ----

/// A sensor as an analyst may act on it: another jurisdiction's sensor answers 404, a
/// jurisdiction user's own sensor 403 (contributions show correlation across jurisdictions).
async fn analyst_sensor(state: &HubState, who: &UserAuth, id: i64) -> AppResult<Sensor> {
    let sensor = state.store_call(move |s| s.sensor(id)).await?.ok_or(AppError::NotFound)?;
    if !who.can_read(sensor.jurisdiction_id) {
        return Err(AppError::NotFound);
    }
    who.require_analyst()?;
    Ok(sensor)
}

/// `GET /api/v1/sensors/{id}/contributions` (analysts): keys it sighted, campaigns it opened or
/// joined its jurisdiction to, indicators published because of it, anomalies, hold state.
pub async fn sensor_contributions(State(state): State<HubState>, who: UserAuth, Path(id): Path<i64>) -> AppResult<Json<crate::trust::SensorContributions>> {
    analyst_sensor(&state, &who, id).await?;
    let c = state.store_call(move |s| s.sensor_contributions(id, now_ms())).await?.ok_or(AppError::NotFound)?;
    Ok(Json(c))
}

/// `POST /api/v1/sensors/{id}/revoke` (analysts): deletes its sightings and withdraws what they
/// caused; the sensor is put on hold.
pub async fn revoke_sensor(State(state): State<HubState>, who: UserAuth, Path(id): Path<i64>) -> AppResult<Json<crate::trust::RevokeOutcome>> {
    let outcome = revoke(&state, &who, id).await?;
    Ok(Json(outcome))
}

pub async fn revoke(state: &HubState, who: &UserAuth, id: i64) -> AppResult<crate::trust::RevokeOutcome> {
    analyst_sensor(state, who, id).await?;
    let policy = state.policy.clone();
    let outcome = state.store_call(move |s| s.revoke_sensor(id, &policy, now_ms())).await?;
    tracing::warn!(sensor_id = id, by = %who.user.username, "sensor contributions revoked by an analyst");
    state.indicators_tx.send_modify(|v| *v += 1);
    Ok(outcome)
}

/// `POST /api/v1/sensors/{id}/release` (analysts): ends a hold.
pub async fn release_sensor(State(state): State<HubState>, who: UserAuth, Path(id): Path<i64>) -> AppResult<Json<serde_json::Value>> {
    release(&state, &who, id).await?;
    Ok(Json(json!({ "sensor_id": id, "on_hold": false })))
}

pub async fn release(state: &HubState, who: &UserAuth, id: i64) -> AppResult<()> {
    analyst_sensor(state, who, id).await?;
    let policy = state.policy.clone();
    state.store_call(move |s| s.release_sensor(id, &policy, now_ms())).await?;
    tracing::info!(sensor_id = id, by = %who.user.username, "sensor released by an analyst");
    state.indicators_tx.send_modify(|v| *v += 1);
    Ok(())
}

/// Trust anomalies listed per request at most.
pub const MAX_ANOMALIES_LISTED: usize = 1000;

/// `GET /api/v1/trust-anomalies` (analysts): budget breaches, newest first.
pub async fn list_trust_anomalies(State(state): State<HubState>, who: UserAuth, Query(q): Query<ListQuery>) -> AppResult<Json<Vec<crate::trust::TrustAnomaly>>> {
    who.require_analyst()?;
    let limit = q.limit.unwrap_or(200).min(MAX_ANOMALIES_LISTED);
    Ok(Json(state.store_call(move |s| s.trust_anomalies(None, limit)).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowRequest {
    /// `None`: hub-wide (analysts only).
    #[serde(default)]
    pub jurisdiction_id: Option<i64>,
    /// An address or a CIDR network.
    pub network: String,
    /// What it is (a resolver, a vendor).
    pub note: String,
}

/// `GET /api/v1/allowlist`: analysts see every registered entry, others their jurisdiction's.
pub async fn list_allow_entries(State(state): State<HubState>, who: UserAuth) -> AppResult<Json<Vec<crate::trust::AllowEntry>>> {
    let all = state.store_call(|s| s.allow_entries(None)).await?;
    if who.is_analyst() {
        return Ok(Json(all));
    }
    let own = who.user.jurisdiction_id;
    Ok(Json(all.into_iter().filter(|e| e.jurisdiction_id.is_some() && e.jurisdiction_id == own).collect()))
}

/// `POST /api/v1/allowlist`: an analyst adds a hub-wide entry or one for any jurisdiction; a
/// jurisdiction admin adds narrow entries for their own jurisdiction.
pub async fn add_allow_entry(State(state): State<HubState>, who: UserAuth, body: Bytes) -> AppResult<impl IntoResponse> {
    let req: AllowRequest = serde_json::from_slice(&body).map_err(|e| AppError::BadRequest(format!("bad allow-list entry JSON: {e}")))?;
    let author = match req.jurisdiction_id {
        _ if who.is_analyst() => crate::trust::EntryAuthor::Analyst,
        Some(j) if who.can_manage(j) => crate::trust::EntryAuthor::JurisdictionAdmin,
        Some(j) if who.can_read(j) => return Err(AppError::Forbidden("only the jurisdiction's admin or an analyst may add allow-list entries".into())),
        Some(_) => return Err(AppError::NotFound),
        None => return Err(AppError::Forbidden("only an analyst adds hub-wide entries: give your jurisdiction_id".into())),
    };
    let mut new = crate::trust::validate_entry(&req.network, &req.note, req.jurisdiction_id, author, &who.user.username).map_err(AppError::BadRequest)?;
    if let Ok((ip, _)) = crate::trust::parse_network(&new.network) {
        new.asn = state.asn_of(ip);
    }
    let outcome = state.store_call(move |s| s.add_allow_entry(&new, now_ms())).await?;
    if outcome.indicators_withdrawn > 0 {
        state.indicators_tx.send_modify(|v| *v += 1);
    }
    Ok((StatusCode::CREATED, Json(outcome)))
}

/// `POST /api/v1/allowlist/{id}/remove`: by an analyst, or the admin of the entry's jurisdiction.
pub async fn remove_allow_entry(State(state): State<HubState>, who: UserAuth, Path(id): Path<i64>) -> AppResult<Json<crate::trust::AllowEntry>> {
    let entry = state.store_call(move |s| s.allow_entries(None)).await?.into_iter().find(|e| e.id == id).ok_or(AppError::NotFound)?;
    match entry.jurisdiction_id {
        _ if who.is_analyst() => {}
        Some(j) if who.can_manage(j) => {}
        Some(j) if who.can_read(j) => return Err(AppError::Forbidden("only the jurisdiction's admin or an analyst may remove allow-list entries".into())),
        _ => return Err(AppError::NotFound),
    }
    Ok(Json(state.store_call(move |s| s.remove_allow_entry(id, now_ms())).await?))
}

// ---- api keys (crate::share::accounts; docs/sharing.md "Collections and permissions") ----

/// `POST /api/v1/api-keys` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyRequest {
    pub name: String,
    pub scopes: Vec<String>,
    #[serde(default)]
    pub max_tlp: Option<ward_model::tlp::Tlp>,
    #[serde(default)]
    pub jurisdiction_id: Option<i64>,
    #[serde(default)]
    pub name_jurisdictions: bool,
    /// A client certificate (PEM) to bind the key to: a connection presenting it
    /// authenticates as the key (docs/sharing.md "Mutual TLS").
    #[serde(default)]
    pub client_cert: Option<String>,
}

impl ApiKeyRequest {
    /// The fingerprint of `client_cert`, checked; `None` when there is none.
    pub fn client_cert_sha256(&self) -> Result<Option<String>, AppError> {
        self.client_cert.as_deref().map(|pem| crate::tls::cert_fingerprint(pem.as_bytes()).map_err(|e| AppError::BadRequest(format!("client_cert: {e}")))).transpose()
    }

    /// The key to store and the secret to show once.
    pub fn into_new(self, created_by: &str) -> (crate::share::objects::NewApiKey, String) {
        let (key_id, secret, secret_hash) = crate::share::accounts::new_key();
        let new = crate::share::objects::NewApiKey {
            key_id,
            name: self.name,
            secret_hash,
            scopes: self.scopes,
            max_tlp: self.max_tlp.unwrap_or(ward_model::tlp::Tlp::Amber),
            jurisdiction_id: self.jurisdiction_id,
            name_jurisdictions: self.name_jurisdictions,
            created_by: created_by.to_string(),
        };
        (new, secret)
    }
}

/// `GET /api/v1/api-keys` (analysts): every key, never a secret.
pub async fn list_api_keys(State(state): State<HubState>, who: UserAuth) -> AppResult<Json<Vec<crate::share::objects::ApiKey>>> {
    who.require_analyst()?;
    Ok(Json(state.store_call(|s| s.api_keys()).await?))
}

/// `GET /api/v1/federation` (analysts): each peer hub's push state, and the indicators peers
/// sent with who sent them and their sightings (docs/sharing.md "Federation").
pub async fn federation(State(state): State<HubState>, who: UserAuth) -> AppResult<Json<crate::share::federation::FederationView>> {
    who.require_analyst()?;
    let fed = state.federation.clone();
    Ok(Json(state.store_call(move |s| crate::share::federation::view(s, &fed)).await?))
}

/// `POST /api/v1/api-keys` (analysts): the key is in the reply once and never again.
pub async fn create_api_key(State(state): State<HubState>, who: UserAuth, body: Bytes) -> AppResult<impl IntoResponse> {
    who.require_analyst()?;
    let req: ApiKeyRequest = serde_json::from_slice(&body).map_err(|e| AppError::BadRequest(format!("bad api key JSON: {e}")))?;
    let cert = req.client_cert_sha256()?;
    let (new, secret) = req.into_new(&format!("user:{}", who.user.username));
    let key = state.store_call(move |s| create_api_key_with_cert(s, &new, cert.as_deref(), now_ms())).await?;
    Ok((StatusCode::CREATED, Json(json!({ "api_key": key, "key": secret }))))
}

/// Creates a key and binds it to a client certificate's fingerprint (checked free first, so a
/// certificate another key holds refuses the whole request).
pub fn create_api_key_with_cert(s: &dyn crate::store::Store, new: &crate::share::objects::NewApiKey, cert_sha256: Option<&str>, now: crate::model::Millis) -> Result<crate::share::objects::ApiKey, crate::error::StoreError> {
    if let Some(fp) = cert_sha256 {
        if let Some(other) = s.api_key_by_cert(fp)? {
            return Err(crate::error::StoreError::Conflict(format!("this certificate is bound to api key {} already: revoke that key or unbind it first", other.key_id)));
        }
    }
    let key = s.create_api_key(new, now)?;
    match cert_sha256 {
        Some(fp) => s.bind_api_key_cert(key.id, Some(fp)),
        None => Ok(key),
    }
}

/// `POST /api/v1/api-keys/{id}/client-cert` body: the certificate (PEM) to bind the key to, or
/// `null` to unbind it (a renewed certificate replaces the old one).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientCertRequest {
    pub client_cert: Option<String>,
}

/// `POST /api/v1/api-keys/{id}/client-cert` (analysts).
pub async fn bind_api_key_cert(State(state): State<HubState>, who: UserAuth, Path(id): Path<i64>, body: Bytes) -> AppResult<Json<crate::share::objects::ApiKey>> {
    who.require_analyst()?;
    let req: ClientCertRequest = serde_json::from_slice(&body).map_err(|e| AppError::BadRequest(format!("bad client certificate JSON: {e}")))?;
    let cert = req.client_cert.as_deref().map(|pem| crate::tls::cert_fingerprint(pem.as_bytes()).map_err(|e| AppError::BadRequest(format!("client_cert: {e}")))).transpose()?;
    Ok(Json(state.store_call(move |s| s.bind_api_key_cert(id, cert.as_deref())).await?))
}

/// `POST /api/v1/api-keys/{id}/revoke` (analysts): the key stops working at once.
pub async fn revoke_api_key(State(state): State<HubState>, who: UserAuth, Path(id): Path<i64>) -> AppResult<Json<crate::share::objects::ApiKey>> {
    who.require_analyst()?;
    Ok(Json(state.store_call(move |s| s.revoke_api_key(id, now_ms())).await?))
}
// ---- end api keys ----
