//! The HTTP routes of disinformation reports (docs/disinformation.md, docs/api.md):
//!
//! * `POST /api/v1/disinfo/reports`: a report as JSON (screenshots as base64 strings) or as
//!   `multipart/form-data` (a `report` part with the same JSON, and `screenshot` file parts).
//!   The reporter is the logged-in user and its jurisdiction; a hub analyst names the
//!   jurisdiction it files for (`jurisdiction_id`), recorded as filed on its behalf.
//! * `GET /api/v1/disinfo/reports[/{id}]`: the reports a user's jurisdiction filed (a state's
//!   also its counties'; analysts every report).
//! * `GET /api/v1/disinfo/cases[/{id}]`: the cases the user's jurisdiction is part of, with the
//!   timeline; other offices' reports without who filed them, where from, or their screenshots.
//! * `POST /api/v1/disinfo/cases/{id}/status` (analysts): new → triaged → referred → outcome →
//!   closed, forward only.
//! * `GET /api/v1/disinfo/screenshots/{sha256}`: to those who may read a report carrying it.
//!
//! Another jurisdiction's ids answer 404, as missing ones do. Every text field is bounded, and
//! HTML in it is data: the JSON API returns it as given, pages escape it.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use super::cases::{fingerprint, normalize_url};
use super::images::{self, MAX_SCREENSHOTS};
use super::{disarm, CasePolicy, CaseDetail, CaseStatus, Category, NewReport, Report, StatusChange, Urgency, OUTCOMES, PLATFORMS};
use crate::auth::UserAuth;
use crate::error::{AppError, AppResult};
use crate::model::now_ms;
use crate::state::HubState;

/// URLs per report.
pub const MAX_URLS: usize = 50;
/// Characters of the claim, the truth, the citation, a note.
pub const MAX_CLAIM_CHARS: usize = 2_000;
pub const MAX_TRUTH_CHARS: usize = 4_000;
pub const MAX_CITATION_CHARS: usize = 1_000;
pub const MAX_NOTE_CHARS: usize = 2_000;
/// Jurisdictions one report may say the claim concerns.
pub const MAX_CONCERNS: usize = 200;
/// A report's body: the screenshots (base64 in JSON is a third larger) and the rest.
pub const MAX_REPORT_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Rows in one listing.
pub const MAX_LIST: usize = 500;

pub fn routes() -> Router<HubState> {
    Router::new()
        .route("/api/v1/disinfo/reports", post(file_report).layer(DefaultBodyLimit::max(MAX_REPORT_BODY_BYTES)).get(list_reports))
        .route("/api/v1/disinfo/reports/{id}", get(get_report))
        .route("/api/v1/disinfo/cases", get(list_cases))
        .route("/api/v1/disinfo/cases/{id}", get(get_case))
        .route("/api/v1/disinfo/cases/{id}/status", post(set_status).layer(DefaultBodyLimit::max(crate::server::MAX_FORM_BODY_BYTES)))
        .route("/api/v1/disinfo/screenshots/{sha256}", get(get_screenshot))
}

/// The JSON of a report (and the `report` part of a multipart one).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportRequest {
    /// Analysts: the jurisdiction filed for. Others: their own (or absent).
    #[serde(default)]
    pub jurisdiction_id: Option<i64>,
    pub urls: Vec<String>,
    pub platform: String,
    pub category: String,
    #[serde(default)]
    pub urgency: Option<String>,
    pub claim: String,
    pub truth: String,
    pub citation: String,
    /// The jurisdictions the claim concerns (default: the reporter's).
    #[serde(default)]
    pub concerns: Option<Vec<i64>>,
    /// When it was seen (RFC 3339).
    #[serde(default)]
    pub seen_at: Option<String>,
    #[serde(default)]
    pub views: Option<i64>,
    #[serde(default)]
    pub shares: Option<i64>,
    #[serde(default)]
    pub disarm: Vec<String>,
    /// Base64 PNG, JPEG or WebP files (JSON intake only).
    #[serde(default)]
    pub screenshots: Vec<String>,
}

fn bad(msg: impl Into<String>) -> AppError {
    AppError::BadRequest(msg.into())
}

fn bounded_text(field: &str, value: &str, max: usize, required: bool) -> AppResult<String> {
    let v = value.trim();
    if required && v.is_empty() {
        return Err(bad(format!("{field} is required")));
    }
    if v.chars().count() > max {
        return Err(bad(format!("{field} is longer than {max} characters")));
    }
    if v.chars().any(|c| c == '\0') {
        return Err(bad(format!("{field} contains a NUL character")));
    }
    Ok(v.to_string())
}

/// Splits a `multipart/form-data` body into (name, bytes) parts; bounded by the body's size and
/// at most [`MAX_SCREENSHOTS`] + 1 parts.
pub fn multipart_parts(content_type: &str, body: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    multipart_parts_bounded(content_type, body, MAX_SCREENSHOTS + 1).map_err(|_| format!("more than {MAX_SCREENSHOTS} screenshots"))
}

/// [`multipart_parts`] with at most `max_parts` parts (the dashboard's form has a part per field).
pub fn multipart_parts_bounded(content_type: &str, body: &[u8], max_parts: usize) -> Result<Vec<(String, Vec<u8>)>, String> {
    let boundary = content_type
        .split(';')
        .filter_map(|p| p.trim().strip_prefix("boundary="))
        .next()
        .map(|b| b.trim_matches('"'))
        .filter(|b| !b.is_empty() && b.len() <= 70)
        .ok_or("a multipart body without a boundary")?;
    let delimiter = format!("--{boundary}");
    let d = delimiter.as_bytes();
    let find = |hay: &[u8], from: usize| hay[from..].windows(d.len()).position(|w| w == d).map(|p| p + from);
    let mut at = find(body, 0).ok_or("the multipart body has no part")? + d.len();
    let mut parts = Vec::new();
    loop {
        if body[at..].starts_with(b"--") {
            break;
        }
        if !body[at..].starts_with(b"\r\n") {
            return Err("a malformed multipart delimiter".into());
        }
        at += 2;
        let next = find(body, at).ok_or("a multipart part without its closing delimiter")?;
        let part = &body[at..next.saturating_sub(2).max(at)];
        let split = part.windows(4).position(|w| w == b"\r\n\r\n").ok_or("a multipart part without headers")?;
        let headers = std::str::from_utf8(&part[..split]).map_err(|_| "multipart headers are not UTF-8")?;
        let name = headers
            .lines()
            .filter(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
            .flat_map(|l| l.split(';'))
            .filter_map(|p| p.trim().strip_prefix("name="))
            .map(|n| n.trim_matches('"').to_string())
            .next()
            .ok_or("a multipart part without a name")?;
        parts.push((name, part[split + 4..].to_vec()));
        if parts.len() > max_parts {
            return Err(format!("more than {max_parts} parts"));
        }
        at = next + d.len();
    }
    Ok(parts)
}

/// Reads the request (JSON or multipart): the report and its raw screenshots.
fn read_request(headers: &HeaderMap, body: &[u8]) -> AppResult<(ReportRequest, Vec<Vec<u8>>)> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match media.as_str() {
        "application/json" => {
            let mut req: ReportRequest = serde_json::from_slice(body).map_err(|e| bad(format!("bad report JSON: {e}")))?;
            if req.screenshots.len() > MAX_SCREENSHOTS {
                return Err(bad(format!("at most {MAX_SCREENSHOTS} screenshots per report")));
            }
            let shots = std::mem::take(&mut req.screenshots)
                .iter()
                .enumerate()
                .map(|(i, s)| base64::engine::general_purpose::STANDARD.decode(s.trim()).map_err(|_| bad(format!("screenshot {} is not base64", i + 1))))
                .collect::<AppResult<Vec<_>>>()?;
            Ok((req, shots))
        }
        "multipart/form-data" => {
            let parts = multipart_parts(content_type, body).map_err(bad)?;
            let mut report = None;
            let mut shots = Vec::new();
            for (name, bytes) in parts {
                match name.as_str() {
                    "report" => {
                        let req: ReportRequest = serde_json::from_slice(&bytes).map_err(|e| bad(format!("bad report JSON in the report part: {e}")))?;
                        if !req.screenshots.is_empty() {
                            return Err(bad("send screenshots as screenshot parts in a multipart report"));
                        }
                        report = Some(req);
                    }
                    "screenshot" => shots.push(bytes),
                    other => return Err(bad(format!("unexpected multipart part {:?}: send report and screenshot parts", other.chars().take(40).collect::<String>()))),
                }
            }
            Ok((report.ok_or_else(|| bad("a multipart report needs a report part (JSON)"))?, shots))
        }
        _ => Err(AppError::Unsupported("send the report as application/json or multipart/form-data".into())),
    }
}

/// `POST /api/v1/disinfo/reports`.
pub async fn file_report(State(state): State<HubState>, who: UserAuth, headers: HeaderMap, body: Bytes) -> AppResult<Response> {
    let (req, raw_shots) = read_request(&headers, &body)?;
    let outcome = file(&state, &who, req, raw_shots).await?;
    let body = json!({
        "report": outcome.report,
        "case": { "id": outcome.case.id, "status": outcome.case.status, "new": outcome.new_case, "joined_by": outcome.joined_by, "reports": outcome.case.reports },
        "notifications": outcome.notifications,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Validates and files a report for `who` (the API's and the dashboard's form's intake): the
/// request and its raw screenshot files.
pub async fn file(state: &HubState, who: &UserAuth, req: ReportRequest, raw_shots: Vec<Vec<u8>>) -> AppResult<super::ReportOutcome> {
    let (jurisdiction_id, on_behalf) = match (who.is_analyst(), req.jurisdiction_id, who.user.jurisdiction_id) {
        (true, Some(j), _) => (j, true),
        (true, None, _) => return Err(bad("an analyst files on behalf of a jurisdiction: give jurisdiction_id")),
        (false, None, Some(own)) => (own, false),
        (false, Some(j), Some(own)) if j == own => (own, false),
        (false, Some(_), _) => return Err(AppError::Forbidden("you can file reports only for your own jurisdiction".into())),
        (false, None, None) => return Err(AppError::Forbidden("your account has no jurisdiction".into())),
    };
    if req.urls.len() > MAX_URLS {
        return Err(bad(format!("a report has {} URLs; at most {MAX_URLS} are accepted: file the most-shared posts", req.urls.len())));
    }
    let mut urls: Vec<(String, String)> = Vec::new();
    for (i, raw) in req.urls.iter().enumerate() {
        let key = normalize_url(raw).map_err(|e| bad(format!("URL {}: {e}", i + 1)))?;
        if !urls.iter().any(|(_, k)| *k == key) {
            urls.push((raw.trim().to_string(), key));
        }
    }
    let platform = req.platform.trim().to_ascii_lowercase();
    if !PLATFORMS.contains(&platform.as_str()) {
        return Err(bad(format!("unknown platform: use one of {}", PLATFORMS.join(", "))));
    }
    let category = Category::parse(req.category.trim()).ok_or_else(|| bad(format!("unknown category: use one of {}", Category::ALL.map(|c| c.as_str()).join(", "))))?;
    let asked = match req.urgency.as_deref() {
        None => Urgency::Normal,
        Some(u) => Urgency::parse(u).ok_or_else(|| bad("urgency is high or normal"))?,
    };
    let urgency = asked.max(category.urgency());
    let claim = bounded_text("claim", &req.claim, MAX_CLAIM_CHARS, true)?;
    let truth = bounded_text("truth", &req.truth, MAX_TRUTH_CHARS, true)?;
    let citation = bounded_text("citation", &req.citation, MAX_CITATION_CHARS, true)?;
    let seen_ms = match req.seen_at.as_deref() {
        None => None,
        Some(t) => Some(chrono::DateTime::parse_from_rfc3339(t).map_err(|_| bad("seen_at is an RFC 3339 time such as 2026-11-03T07:30:00-07:00"))?.timestamp_millis()),
    };
    for (name, v) in [("views", req.views), ("shares", req.shares)] {
        if v.is_some_and(|n| !(0..=1_000_000_000_000).contains(&n)) {
            return Err(bad(format!("{name} is a count from 0")));
        }
    }
    if req.disarm.len() > disarm::MAX_TECHNIQUES {
        return Err(bad(format!("at most {} DISARM techniques per report", disarm::MAX_TECHNIQUES)));
    }
    let mut techniques: Vec<String> = Vec::new();
    for t in &req.disarm {
        disarm::check(t.trim()).map_err(bad)?;
        if !techniques.contains(&t.trim().to_string()) {
            techniques.push(t.trim().to_string());
        }
    }
    let mut concerns = req.concerns.clone().unwrap_or_else(|| vec![jurisdiction_id]);
    concerns.sort_unstable();
    concerns.dedup();
    if concerns.is_empty() {
        concerns.push(jurisdiction_id);
    }
    if concerns.len() > MAX_CONCERNS {
        return Err(bad(format!("at most {MAX_CONCERNS} jurisdictions per report")));
    }
    if raw_shots.len() > MAX_SCREENSHOTS {
        return Err(bad(format!("at most {MAX_SCREENSHOTS} screenshots per report")));
    }
    let mut screenshots = Vec::new();
    for (i, raw) in raw_shots.iter().enumerate() {
        let shot = images::accept(raw).map_err(|e| bad(format!("screenshot {}: {e}", i + 1)))?;
        if !screenshots.iter().any(|s: &super::Screenshot| s.sha256 == shot.sha256) {
            screenshots.push(shot);
        }
    }
    let fingerprint = fingerprint(&claim);
    let new = NewReport {
        jurisdiction_id,
        reporter_user_id: who.user.id,
        reporter_username: who.user.username.clone(),
        on_behalf,
        platform,
        category,
        urgency,
        claim,
        truth,
        citation,
        seen_ms,
        views: req.views,
        shares: req.shares,
        disarm: techniques,
        urls,
        concerns,
        screenshots,
        fingerprint,
    };
    let outcome = state
        .store_call(move |s| {
            let known: Vec<i64> = s.jurisdictions()?.into_iter().map(|j| j.id).collect();
            if let Some(missing) = new.concerns.iter().chain([&new.jurisdiction_id]).find(|j| !known.contains(*j)) {
                return Err(crate::error::StoreError::Invalid(format!("no jurisdiction {missing}")));
            }
            s.disinfo_file_report(&new, &CasePolicy::default(), now_ms())
        })
        .await?;
    if outcome.notifications > 0 {
        state.outbox_wake.notify_one();
    }
    tracing::info!(report = outcome.report.id, case = outcome.case.id, joined_by = %outcome.joined_by, jurisdiction = jurisdiction_id, notifications = outcome.notifications, "disinformation report filed");
    Ok(outcome)
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    pub limit: Option<usize>,
}

/// The jurisdictions whose reports `who` reads in full (`None`: every one).
pub(crate) fn readable(who: &UserAuth) -> Option<Vec<i64>> {
    if who.is_analyst() {
        return None;
    }
    let mut ids: Vec<i64> = who.user.jurisdiction_id.into_iter().collect();
    ids.extend(&who.children);
    Some(ids)
}

/// `GET /api/v1/disinfo/reports`.
pub async fn list_reports(State(state): State<HubState>, who: UserAuth, Query(q): Query<ListQuery>) -> AppResult<Json<Value>> {
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_LIST);
    let ids = readable(&who);
    let reports = state.store_call(move |s| s.disinfo_reports(ids.as_deref(), limit)).await?;
    Ok(Json(json!({ "reports": reports })))
}

/// `GET /api/v1/disinfo/reports/{id}`.
pub async fn get_report(State(state): State<HubState>, who: UserAuth, Path(id): Path<i64>) -> AppResult<Json<Report>> {
    let report = state.store_call(move |s| s.disinfo_report(id)).await?.ok_or(AppError::NotFound)?;
    if !who.can_read(report.jurisdiction_id) {
        return Err(AppError::NotFound);
    }
    Ok(Json(report))
}

/// Whether `who` is part of a case with these jurisdictions.
pub(crate) fn in_case(who: &UserAuth, jurisdictions: &[i64]) -> bool {
    who.is_analyst() || jurisdictions.iter().any(|j| who.can_read(*j))
}

/// What `who` may see of a case (see the module note); `None` when it is not part of it.
pub fn case_view(who: &UserAuth, detail: &CaseDetail) -> Option<Value> {
    if !in_case(who, &detail.case.jurisdictions) {
        return None;
    }
    if who.is_analyst() {
        return serde_json::to_value(detail).ok();
    }
    let visible: Vec<i64> = detail.case.jurisdictions.iter().copied().filter(|j| who.can_read(*j)).collect();
    let reports: Vec<Value> = detail
        .reports
        .iter()
        .map(|r| {
            if who.can_read(r.jurisdiction_id) {
                serde_json::to_value(r).unwrap_or(Value::Null)
            } else {
                json!({
                    "id": r.id, "platform": r.platform, "category": r.category, "urgency": r.urgency, "claim": r.claim, "truth": r.truth,
                    "citation": r.citation, "urls": r.urls, "seen_ms": r.seen_ms, "disarm": r.disarm, "created_ms": r.created_ms,
                    "concerns": r.concerns.iter().filter(|j| who.can_read(**j)).collect::<Vec<_>>(),
                    "from_another_office": true,
                })
            }
        })
        .collect();
    let first_visible = detail.reports.first().is_some_and(|r| who.can_read(r.jurisdiction_id));
    let timeline: Vec<Value> = detail
        .timeline
        .iter()
        .map(|e| {
            let own = match e.kind.as_str() {
                "opened" => first_visible,
                "reported" => e.jurisdiction_id.is_some_and(|j| who.can_read(j)),
                _ => true,
            };
            let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
            if !own {
                v["by_user"] = json!("another office");
                v["jurisdiction_id"] = Value::Null;
            }
            v
        })
        .collect();
    let c = &detail.case;
    Some(json!({
        "case": {
            "id": c.id, "claim": c.claim, "category": c.category, "urgency": c.urgency, "status": c.status, "reports": c.reports,
            "jurisdictions": visible, "other_jurisdictions": c.jurisdictions.len() - visible.len(),
            "created_ms": c.created_ms, "updated_ms": c.updated_ms,
        },
        "reports": reports,
        "timeline": timeline,
    }))
}

/// `GET /api/v1/disinfo/cases`.
pub async fn list_cases(State(state): State<HubState>, who: UserAuth, Query(q): Query<ListQuery>) -> AppResult<Json<Value>> {
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_LIST);
    let ids = readable(&who);
    let cases = state.store_call(move |s| s.disinfo_cases(ids.as_deref(), limit)).await?;
    let out: Vec<Value> = cases
        .into_iter()
        .map(|c| {
            if who.is_analyst() {
                return serde_json::to_value(&c).unwrap_or(Value::Null);
            }
            let visible: Vec<i64> = c.jurisdictions.iter().copied().filter(|j| who.can_read(*j)).collect();
            json!({
                "id": c.id, "claim": c.claim, "category": c.category, "urgency": c.urgency, "status": c.status, "reports": c.reports,
                "jurisdictions": visible, "other_jurisdictions": c.jurisdictions.len() - visible.len(),
                "created_ms": c.created_ms, "updated_ms": c.updated_ms,
            })
        })
        .collect();
    Ok(Json(json!({ "cases": out })))
}

/// `GET /api/v1/disinfo/cases/{id}`.
pub async fn get_case(State(state): State<HubState>, who: UserAuth, Path(id): Path<i64>) -> AppResult<Json<Value>> {
    let detail = state.store_call(move |s| s.disinfo_case(id)).await?.ok_or(AppError::NotFound)?;
    case_view(&who, &detail).map(Json).ok_or(AppError::NotFound)
}

/// The body of `POST /api/v1/disinfo/cases/{id}/status`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusRequest {
    pub status: String,
    /// With `referred`: to whom (a platform's trust-and-safety team, a partner).
    #[serde(default)]
    pub referred_to: Option<String>,
    /// With `outcome`: removed, labelled, no-action or no-answer.
    #[serde(default)]
    pub outcome: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
}

/// `POST /api/v1/disinfo/cases/{id}/status` (analysts).
pub async fn set_status(State(state): State<HubState>, who: UserAuth, Path(id): Path<i64>, body: Bytes) -> AppResult<Json<Value>> {
    let req: Option<StatusRequest> = serde_json::from_slice(&body).ok();
    let case = change_status(&state, &who, id, req.ok_or_else(|| serde_json::from_slice::<StatusRequest>(&body).err()).map_err(|e| bad(format!("bad status JSON: {}", e.map(|e| e.to_string()).unwrap_or_default())))).await?;
    Ok(Json(json!({ "case": case })))
}

/// Checks and applies a status change by `who` (the API's and the dashboard's form's); a bad
/// request body (`Err`) is reported after access is checked, as the API always did.
pub async fn change_status(state: &HubState, who: &UserAuth, id: i64, req: AppResult<StatusRequest>) -> AppResult<super::Case> {
    if !who.is_analyst() {
        // Part of the case: told it may not; otherwise the case does not exist for it.
        let detail = state.store_call(move |s| s.disinfo_case(id)).await?.ok_or(AppError::NotFound)?;
        if !in_case(&who, &detail.case.jurisdictions) {
            return Err(AppError::NotFound);
        }
        who.require_analyst()?;
    }
    let req = req?;
    let status = CaseStatus::parse(&req.status).ok_or_else(|| bad("status is one of new, triaged, referred, outcome, closed"))?;
    let referred_to = req.referred_to.as_deref().map(|t| bounded_text("referred_to", t, 200, false)).transpose()?.filter(|t| !t.is_empty());
    if status == CaseStatus::Referred && referred_to.is_none() {
        return Err(bad("a referral says to whom: give referred_to"));
    }
    let outcome = req.outcome.map(|o| o.trim().to_string());
    match (&outcome, status) {
        (Some(o), _) if !OUTCOMES.contains(&o.as_str()) => return Err(bad(format!("outcome is one of {}", OUTCOMES.join(", ")))),
        (None, CaseStatus::Outcome) => return Err(bad(format!("an outcome says what the platform did: give outcome ({})", OUTCOMES.join(", ")))),
        _ => {}
    }
    let note = req.note.as_deref().map(|n| bounded_text("note", n, MAX_NOTE_CHARS, false)).transpose()?.filter(|n| !n.is_empty());
    let change = StatusChange { status, referred_to, outcome, note, by_user: who.user.username.clone() };
    state.store_call(move |s| s.disinfo_set_status(id, &change, now_ms())).await.map_err(Into::into)
}

/// `GET /api/v1/disinfo/screenshots/{sha256}`.
pub async fn get_screenshot(State(state): State<HubState>, who: UserAuth, Path(sha256): Path<String>) -> AppResult<Response> {
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
        return Err(AppError::NotFound);
    }
    let shot = state.store_call(move |s| s.disinfo_screenshot(&sha256)).await?.ok_or(AppError::NotFound)?;
    if !who.is_analyst() && !shot.jurisdictions.iter().any(|j| who.can_read(*j)) {
        return Err(AppError::NotFound);
    }
    let mut resp = shot.bytes.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_str(&shot.media_type).unwrap_or(HeaderValue::from_static("application/octet-stream")));
    h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("inline"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    Ok(resp)
}
