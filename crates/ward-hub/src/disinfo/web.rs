//! The dashboard's disinformation pages and the public "rumor vs reality" page (issue #13;
//! docs/disinformation.md). Server-rendered (maud) like [`crate::web`], usable without
//! JavaScript; every field is escaped, reported URLs are shown as text (never links, never
//! fetched). Access is the API's ([`super::api`]): a county sees its own reports and the cases
//! it is part of, a state also through its counties, analysts everything; others' cases answer
//! a 404 page.
//!
//! * `GET /disinfo`: the cases the viewer may see, newest change first.
//! * `GET|POST /disinfo/report`: the report form (multipart, screenshots as file inputs); it
//!   files through [`super::api::file`], the API's intake.
//! * `GET /disinfo/cases/{id}`: a case (claim, truth, timeline, reports as the API shows them);
//!   analysts also get the status form (`POST .../status`, [`super::api::change_status`]) and
//!   publish / unpublish (`POST .../publish`, `POST .../unpublish`).
//! * `GET /rumors/{STATE}` and `GET /rumors/{STATE}.json` (no login): the published cases
//!   concerning a state's jurisdictions: the false claim, the facts, the citation and the date,
//!   never who reported it, the office, the posts' URLs or screenshots.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::json;

use super::api::{self, ReportRequest, StatusRequest, MAX_LIST, MAX_REPORT_BODY_BYTES};
use super::images::MAX_SCREENSHOTS;
use super::{Case, CaseDetail, CaseStatus, Category, OUTCOMES, PLATFORMS};
use crate::auth::{MaybeUser, UserAuth};
use crate::error::{AppError, AppResult};
use crate::model::{fmt_ms, now_ms, Jurisdiction, Millis};
use crate::state::HubState;
use crate::web::page;

/// Parts of the report form: its fields, a checkbox per jurisdiction named, the screenshots.
const MAX_FORM_PARTS: usize = 16 + api::MAX_CONCERNS + MAX_SCREENSHOTS;
/// Cases on the public page of one state, at most.
pub const MAX_PUBLIC_CASES: usize = 200;
/// Characters of a claim shown in the case list.
const CLAIM_SHOWN_CHARS: usize = 160;

pub fn routes() -> Router<HubState> {
    Router::new()
        .route("/disinfo", get(cases_page))
        .route("/disinfo/report", get(report_page).post(report_submit).layer(DefaultBodyLimit::max(MAX_REPORT_BODY_BYTES)))
        .route("/disinfo/cases/{id}", get(case_page))
        .route("/disinfo/cases/{id}/status", post(status_submit).layer(DefaultBodyLimit::max(crate::server::MAX_FORM_BODY_BYTES)))
        .route("/disinfo/cases/{id}/publish", post(publish_submit).layer(DefaultBodyLimit::max(crate::server::MAX_FORM_BODY_BYTES)))
        .route("/disinfo/cases/{id}/unpublish", post(unpublish_submit).layer(DefaultBodyLimit::max(crate::server::MAX_FORM_BODY_BYTES)))
        .route("/rumors/{state}", get(rumors))
}

fn to_login() -> Response {
    Redirect::to("/login").into_response()
}

/// An error as a page (the dashboard never answers a person with JSON).
fn error_page(who: Option<&UserAuth>, e: AppError) -> Response {
    let status = e.status();
    let (title, text) = match e {
        AppError::NotFound => ("Not found".to_string(), "There is no such page, or it is not yours to see.".to_string()),
        other => (status.canonical_reason().unwrap_or("Error").to_string(), other.to_string()),
    };
    (status, page(&title, who, false, html! { p.err { (text) } p { a href="/disinfo" { "disinformation cases" } } })).into_response()
}

/// "3 minutes ago" (or "in the future" for a skewed clock).
fn ago(now: Millis, ms: Millis) -> String {
    let s = (now - ms) / 1000;
    if s < 0 {
        return "just now".into();
    }
    let (n, unit) = match s {
        0..=59 => return "just now".into(),
        60..=3599 => (s / 60, "minute"),
        3600..=86_399 => (s / 3600, "hour"),
        _ => (s / 86_400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

fn when(now: Millis, ms: Millis) -> Markup {
    html! { (ago(now, ms)) " (" (fmt_ms(ms)) ")" }
}

fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_string(),
    }
}

// ---- the case list ----

async fn cases_page(State(state): State<HubState>, MaybeUser(who): MaybeUser) -> Response {
    let Some(who) = who else { return to_login() };
    match cases_body(&state, &who).await {
        Ok(body) => page("Disinformation cases", Some(&who), true, body).into_response(),
        Err(e) => error_page(Some(&who), e),
    }
}

async fn cases_body(state: &HubState, who: &UserAuth) -> AppResult<Markup> {
    let ids = api::readable(who);
    let mut cases = state.store_call(move |s| s.disinfo_cases(ids.as_deref(), MAX_LIST)).await?;
    cases.sort_by(|a, b| b.updated_ms.cmp(&a.updated_ms).then(b.id.cmp(&a.id)));
    let now = now_ms();
    Ok(html! {
        p { a href="/disinfo/report" { "Report a false claim" } }
        @if cases.is_empty() {
            p { "No cases yet." }
        } @else {
            table {
                tr { th { "case" } th { "claim" } th { "status" } th { "category" } th { "urgency" } th { "reports" } th { "jurisdictions" } th { "last change" } }
                @for c in &cases {
                    tr {
                        td { a href={ "/disinfo/cases/" (c.id) } { "#" (c.id) } }
                        td { (shorten(&c.claim, CLAIM_SHOWN_CHARS)) }
                        td { (c.status) } td { (c.category) } td { (c.urgency) } td { (c.reports) }
                        td { (c.jurisdictions.len()) }
                        td { (when(now, c.updated_ms)) }
                    }
                }
            }
        }
    })
}

// ---- the report form ----

/// What the form holds (shown again, as typed, with an error).
#[derive(Debug, Default, Clone)]
struct ReportForm {
    jurisdiction_id: Option<i64>,
    urls: String,
    platform: String,
    category: String,
    claim: String,
    truth: String,
    citation: String,
    concerns: Vec<i64>,
    seen_at: String,
    views: String,
    shares: String,
}

/// The jurisdictions `who` may name in a report: an analyst any; others those of their own
/// state (the state and its counties and cities).
async fn nameable(state: &HubState, who: &UserAuth) -> AppResult<Vec<Jurisdiction>> {
    let all = state.store_call(|s| s.jurisdictions()).await?;
    if who.is_analyst() {
        return Ok(all);
    }
    let own = who.user.jurisdiction_id.ok_or_else(|| AppError::Forbidden("your account has no jurisdiction".into()))?;
    let own_state = all.iter().find(|j| j.id == own).and_then(|j| j.state.clone());
    Ok(all.into_iter().filter(|j| j.id == own || (own_state.is_some() && j.state == own_state) || who.can_read(j.id)).collect())
}

async fn report_page(State(state): State<HubState>, MaybeUser(who): MaybeUser) -> Response {
    let Some(who) = who else { return to_login() };
    let form = ReportForm { concerns: who.user.jurisdiction_id.into_iter().collect(), platform: "x".into(), ..Default::default() };
    match nameable(&state, &who).await {
        Ok(list) => page("Report a false claim", Some(&who), false, report_body(&who, &list, &form, None)).into_response(),
        Err(e) => error_page(Some(&who), e),
    }
}

fn report_body(who: &UserAuth, list: &[Jurisdiction], f: &ReportForm, error: Option<&str>) -> Markup {
    html! {
        @if let Some(e) = error { p.err { (e) } }
        p { "The hub never opens the links you give; a screenshot is the way to show what the post said." }
        form method="post" action="/disinfo/report" enctype="multipart/form-data" {
            input type="hidden" name="csrf" value=(who.csrf);
            @if who.is_analyst() {
                p { label { "filing for " select name="jurisdiction_id" required {
                    option value="" { "(choose)" }
                    @for j in list { option value=(j.id) selected[f.jurisdiction_id == Some(j.id)] { (j.name) } }
                } } }
            }
            p { label { "the posts' URLs, one per line (at most " (api::MAX_URLS) ")" br; textarea name="urls" rows="4" cols="80" { (f.urls) } } }
            p { label { "platform " select name="platform" { @for p in PLATFORMS { option value=(p) selected[f.platform == *p] { (p) } } } } }
            p { label { "category " select name="category" required {
                @for c in Category::ALL { option value=(c.as_str()) selected[f.category == c.as_str()] { (c.as_str()) } }
            } } }
            p { label { "the claim, in your words" br; textarea name="claim" rows="3" cols="80" required { (f.claim) } } }
            p { label { "the truth" br; textarea name="truth" rows="3" cols="80" required { (f.truth) } } }
            p { label { "citation (the law, the official notice) " input name="citation" size="60" required value=(f.citation); } }
            fieldset {
                legend { "the jurisdictions the claim concerns" }
                @for j in list {
                    label { input type="checkbox" name="concerns" value=(j.id) checked[f.concerns.contains(&j.id)]; " " (j.name) } " "
                }
            }
            p { label { "seen at (UTC, or RFC 3339 with an offset) " input name="seen_at" placeholder="2026-11-03T07:30" value=(f.seen_at); } }
            p {
                label { "views " input name="views" inputmode="numeric" size="10" value=(f.views); } " "
                label { "shares " input name="shares" inputmode="numeric" size="10" value=(f.shares); }
            }
            p { label { "screenshots (PNG, JPEG or WebP; at most " (MAX_SCREENSHOTS) ") " input type="file" name="screenshot" accept="image/png,image/jpeg,image/webp" multiple; } }
            button type="submit" { "file the report" }
        }
    }
}

fn text_part(name: &str, bytes: Vec<u8>) -> AppResult<String> {
    String::from_utf8(bytes).map_err(|_| AppError::BadRequest(format!("{name} is not UTF-8 text")))
}

/// Reads the form: the csrf token, what was typed, and the screenshot files.
fn read_form(headers: &HeaderMap, body: &[u8]) -> AppResult<(Option<String>, ReportForm, Vec<Vec<u8>>)> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.trim().to_ascii_lowercase().starts_with("multipart/form-data") {
        return Err(AppError::Unsupported("the report form is sent as multipart/form-data".into()));
    }
    let parts = api::multipart_parts_bounded(content_type, body, MAX_FORM_PARTS).map_err(AppError::BadRequest)?;
    let mut f = ReportForm::default();
    let mut csrf = None;
    let mut shots = Vec::new();
    let number = |name: &str, v: &str| -> AppResult<i64> { v.trim().parse().map_err(|_| AppError::BadRequest(format!("{name} is not a number"))) };
    for (name, bytes) in parts {
        match name.as_str() {
            "screenshot" => {
                // A file input left empty still sends an empty part.
                if !bytes.is_empty() {
                    shots.push(bytes);
                }
            }
            "csrf" => csrf = Some(text_part("csrf", bytes)?),
            "jurisdiction_id" => {
                let v = text_part("jurisdiction", bytes)?;
                if !v.trim().is_empty() {
                    f.jurisdiction_id = Some(number("jurisdiction", &v)?);
                }
            }
            "concerns" => {
                let v = text_part("concerns", bytes)?;
                f.concerns.push(number("a concerned jurisdiction", &v)?);
            }
            "urls" => f.urls = text_part("urls", bytes)?,
            "platform" => f.platform = text_part("platform", bytes)?,
            "category" => f.category = text_part("category", bytes)?,
            "claim" => f.claim = text_part("claim", bytes)?,
            "truth" => f.truth = text_part("truth", bytes)?,
            "citation" => f.citation = text_part("citation", bytes)?,
            "seen_at" => f.seen_at = text_part("seen_at", bytes)?,
            "views" => f.views = text_part("views", bytes)?,
            "shares" => f.shares = text_part("shares", bytes)?,
            other => return Err(AppError::BadRequest(format!("unexpected form field {:?}", other.chars().take(40).collect::<String>()))),
        }
    }
    Ok((csrf, f, shots))
}

/// The API's request from the form (the API validates it).
fn to_request(f: &ReportForm) -> AppResult<ReportRequest> {
    let count = |name: &str, v: &str| -> AppResult<Option<i64>> {
        let v = v.trim().replace([',', '_'], "");
        if v.is_empty() {
            return Ok(None);
        }
        v.parse().map(Some).map_err(|_| AppError::BadRequest(format!("{name} is a count such as 12000")))
    };
    let seen_at = match f.seen_at.trim() {
        "" => None,
        t if chrono::DateTime::parse_from_rfc3339(t).is_ok() => Some(t.to_string()),
        t => {
            let naive = chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M")
                .or_else(|_| chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M"))
                .map_err(|_| AppError::BadRequest("seen at is a time such as 2026-11-03T07:30 (UTC) or 2026-11-03T07:30:00-07:00".into()))?;
            Some(naive.and_utc().to_rfc3339())
        }
    };
    Ok(ReportRequest {
        jurisdiction_id: f.jurisdiction_id,
        urls: f.urls.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect(),
        platform: f.platform.clone(),
        category: f.category.clone(),
        urgency: None,
        claim: f.claim.clone(),
        truth: f.truth.clone(),
        citation: f.citation.clone(),
        concerns: if f.concerns.is_empty() { None } else { Some(f.concerns.clone()) },
        seen_at,
        views: count("views", &f.views)?,
        shares: count("shares", &f.shares)?,
        disarm: Vec::new(),
        screenshots: Vec::new(),
    })
}

async fn report_submit(State(state): State<HubState>, MaybeUser(who): MaybeUser, headers: HeaderMap, body: Bytes) -> Response {
    let Some(who) = who else { return to_login() };
    let (csrf, form, shots) = match read_form(&headers, &body) {
        Ok(v) => v,
        Err(e) => return error_page(Some(&who), e),
    };
    if let Err(e) = who.check_csrf(csrf.as_deref()) {
        return error_page(Some(&who), e);
    }
    let filed = match to_request(&form) {
        Ok(req) => api::file(&state, &who, req, shots).await,
        Err(e) => Err(e),
    };
    match filed {
        Ok(outcome) => Redirect::to(&format!("/disinfo/cases/{}?filed={}", outcome.case.id, outcome.joined_by)).into_response(),
        Err(AppError::Internal(detail)) => error_page(Some(&who), AppError::Internal(detail)),
        Err(e) => {
            let status = e.status();
            let list = match nameable(&state, &who).await {
                Ok(l) => l,
                Err(e) => return error_page(Some(&who), e),
            };
            (status, page("Report a false claim", Some(&who), false, report_body(&who, &list, &form, Some(&e.to_string())))).into_response()
        }
    }
}

// ---- the case page ----

#[derive(Debug, Default, Deserialize)]
pub struct CaseQuery {
    /// Set by the report form's redirect: how the report joined the case.
    #[serde(default)]
    filed: Option<String>,
}

async fn case_page(State(state): State<HubState>, MaybeUser(who): MaybeUser, Path(id): Path<i64>, Query(q): Query<CaseQuery>) -> Response {
    let Some(who) = who else { return to_login() };
    let flash = match q.filed.as_deref() {
        Some("new") => Some("Your report was filed: it opened this case."),
        Some("url") => Some("Your report was filed: it joined this case (the same post was already reported)."),
        Some("claim") => Some("Your report was filed: it joined this case (the same claim was already reported)."),
        _ => None,
    };
    render_case(&state, &who, id, flash, None, StatusCode::OK).await
}

async fn render_case(state: &HubState, who: &UserAuth, id: i64, flash: Option<&str>, error: Option<&str>, status: StatusCode) -> Response {
    let loaded = state.store_call(move |s| Ok((s.disinfo_case(id)?, s.disinfo_published_ms(id)?, s.jurisdictions()?))).await;
    let (detail, published, jurisdictions) = match loaded {
        Ok((Some(d), p, j)) => (d, p, j),
        Ok((None, _, _)) => return error_page(Some(who), AppError::NotFound),
        Err(e) => return error_page(Some(who), e.into()),
    };
    if !api::in_case(who, &detail.case.jurisdictions) {
        return error_page(Some(who), AppError::NotFound);
    }
    let name_of = |id: i64| jurisdictions.iter().find(|j| j.id == id).map(|j| j.name.clone()).unwrap_or_else(|| format!("jurisdiction {id}"));
    let body = case_body(who, &detail, published, &name_of, flash, error);
    (status, page(&format!("Disinformation case #{id}"), Some(who), error.is_none(), body)).into_response()
}

fn case_body(who: &UserAuth, d: &CaseDetail, published: Option<Millis>, name_of: &dyn Fn(i64) -> String, flash: Option<&str>, error: Option<&str>) -> Markup {
    let c: &Case = &d.case;
    let now = now_ms();
    let sees = |j: i64| who.is_analyst() || who.can_read(j);
    let visible: Vec<i64> = c.jurisdictions.iter().copied().filter(|j| sees(*j)).collect();
    let others = c.jurisdictions.len() - visible.len();
    let first = d.reports.first();
    let first_visible = first.is_some_and(|r| sees(r.jurisdiction_id));
    html! {
        @if let Some(f) = flash { p { strong { (f) } } }
        @if let Some(e) = error { p.err { (e) } }
        h2 { "The claim" }
        p { (c.claim) }
        @if let Some(r) = first {
            h2 { "The truth" }
            p { (r.truth) }
            p { "Citation: " (r.citation) }
        }
        p {
            "Status: " strong { (c.status) } ". Category " (c.category) ", urgency " (c.urgency) ", " (c.reports) " report(s). "
            "Opened " (when(now, c.created_ms)) ", last change " (when(now, c.updated_ms)) "."
        }
        p {
            "Jurisdictions: "
            @for (i, j) in visible.iter().enumerate() { @if i > 0 { ", " } (name_of(*j)) }
            @if others > 0 { @if !visible.is_empty() { ", " } "and " (others) " other office(s)" }
        }
        @match published {
            Some(p) => { p { "Published on the public rumor vs reality page since " (fmt_ms(p)) "." } }
            None => { @if who.is_analyst() { p { "Not published." } } }
        }
        h2 { "Timeline" }
        table {
            tr { th { "time" } th { "event" } th { "by" } th { "detail" } }
            @for e in &d.timeline {
                @let own = match e.kind.as_str() {
                    "opened" => first_visible,
                    "reported" => e.jurisdiction_id.is_some_and(sees),
                    _ => true,
                };
                tr {
                    td { (fmt_ms(e.created_ms)) }
                    td { (e.kind) @if let Some(s) = &e.status { " → " (s) } }
                    td { @if own { (e.by_user) @if let Some(j) = e.jurisdiction_id { " (" (name_of(j)) ")" } } @else { "another office" } }
                    td {
                        @if let Some(t) = &e.referred_to { "referred to " (t) " " }
                        @if let Some(o) = &e.outcome { "outcome: " (o) " " }
                        @if let Some(n) = &e.note { (n) }
                    }
                }
            }
        }
        h2 { "Reports (" (d.reports.len()) ")" }
        @for r in &d.reports {
            @let own = sees(r.jurisdiction_id);
            section {
                h3 {
                    "Report #" (r.id) " — "
                    @if own { (name_of(r.jurisdiction_id)) ", by " (r.reporter_username) @if r.on_behalf { " (filed on its behalf)" } }
                    @else { "from another office" }
                }
                p { "Platform " (r.platform) ", " (r.category) ", urgency " (r.urgency) ". Filed " (fmt_ms(r.created_ms)) "."
                    @if let Some(s) = r.seen_ms { " Seen " (fmt_ms(s)) "." }
                    @if own { @if let Some(v) = r.views { " Views " (v) "." } @if let Some(s) = r.shares { " Shares " (s) "." } } }
                p { "Claim: " (r.claim) }
                p { "Truth: " (r.truth) " (" (r.citation) ")" }
                @if !r.urls.is_empty() {
                    p { "Posts (not opened by the hub; copy them to look):" }
                    ul { @for u in &r.urls { li { code { (u) } } } }
                }
                @if own && !r.screenshots.is_empty() {
                    p { @for s in &r.screenshots {
                        img src={ "/api/v1/disinfo/screenshots/" (s.sha256) } alt={ "screenshot of report " (r.id) } width=(s.width.clamp(1, 480));
                        " "
                    } }
                }
            }
        }
        @if who.is_analyst() {
            h2 { "Move the case forward" }
            form method="post" action={ "/disinfo/cases/" (c.id) "/status" } {
                input type="hidden" name="csrf" value=(who.csrf);
                label { "status " select name="status" {
                    @for s in CaseStatus::ALL { @if CaseStatus::parse(&c.status).is_none_or(|cur| super::transition_allowed(cur, s)) { option value=(s.as_str()) { (s.as_str()) } } }
                } } " "
                label { "referred to " input name="referred_to" size="30"; } " "
                label { "outcome " select name="outcome" { option value="" { "" } @for o in OUTCOMES { option value=(o) { (o) } } } } " "
                label { "note " input name="note" size="40"; } " "
                button type="submit" { "save" }
            }
            h2 { "Rumor vs reality" }
            @if published.is_some() {
                form method="post" action={ "/disinfo/cases/" (c.id) "/unpublish" } {
                    input type="hidden" name="csrf" value=(who.csrf);
                    button type="submit" { "withdraw from the public page" }
                }
            } @else {
                form method="post" action={ "/disinfo/cases/" (c.id) "/publish" } {
                    input type="hidden" name="csrf" value=(who.csrf);
                    p { "Publishing shows the claim, the truth and the citation of the first report on /rumors/STATE for every state it concerns; never who reported it, the office, the posts or the screenshots." }
                    button type="submit" { "publish" }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct StatusForm {
    csrf: String,
    status: String,
    #[serde(default)]
    referred_to: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    note: String,
}

fn non_empty(s: String) -> Option<String> {
    if s.trim().is_empty() {
        None
    } else {
        Some(s)
    }
}

async fn status_submit(State(state): State<HubState>, MaybeUser(who): MaybeUser, Path(id): Path<i64>, Form(f): Form<StatusForm>) -> Response {
    let Some(who) = who else { return to_login() };
    if let Err(e) = who.check_csrf(Some(&f.csrf)) {
        return error_page(Some(&who), e);
    }
    let req = StatusRequest { status: f.status, referred_to: non_empty(f.referred_to), outcome: non_empty(f.outcome), note: non_empty(f.note) };
    match api::change_status(&state, &who, id, Ok(req)).await {
        Ok(_) => Redirect::to(&format!("/disinfo/cases/{id}")).into_response(),
        Err(e @ (AppError::BadRequest(_) | AppError::Conflict(_))) => render_case(&state, &who, id, None, Some(&e.to_string()), e.status()).await,
        Err(e) => error_page(Some(&who), e),
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

async fn publish_submit(state: State<HubState>, who: MaybeUser, id: Path<i64>, f: Form<CsrfForm>) -> Response {
    set_published(state, who, id, f, true).await
}

async fn unpublish_submit(state: State<HubState>, who: MaybeUser, id: Path<i64>, f: Form<CsrfForm>) -> Response {
    set_published(state, who, id, f, false).await
}

async fn set_published(State(state): State<HubState>, MaybeUser(who): MaybeUser, Path(id): Path<i64>, Form(f): Form<CsrfForm>, publish: bool) -> Response {
    let Some(who) = who else { return to_login() };
    if let Err(e) = who.check_csrf(Some(&f.csrf)) {
        return error_page(Some(&who), e);
    }
    if !who.is_analyst() {
        // Part of the case: told it may not; otherwise the case does not exist for it.
        let part = match state.store_call(move |s| s.disinfo_case(id)).await {
            Ok(d) => d.is_some_and(|d| api::in_case(&who, &d.case.jurisdictions)),
            Err(e) => return error_page(Some(&who), e.into()),
        };
        let e = if part { AppError::Forbidden("only hub analysts publish cases".into()) } else { AppError::NotFound };
        return error_page(Some(&who), e);
    }
    let at = publish.then(now_ms);
    match state.store_call(move |s| s.disinfo_set_published(id, at)).await {
        Ok(true) => {
            tracing::info!(case = id, published = publish, by = %who.user.username, "disinformation case publication changed");
            Redirect::to(&format!("/disinfo/cases/{id}")).into_response()
        }
        Ok(false) => error_page(Some(&who), AppError::NotFound),
        Err(e) => error_page(Some(&who), e.into()),
    }
}

// ---- the public page ----

/// One published case as the public sees it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rumor {
    pub claim: String,
    pub facts: String,
    pub citation: String,
    pub category: String,
    pub published_ms: Millis,
    pub published: String,
}

/// The published cases concerning a state's (non-drill) jurisdictions, newest first.
async fn rumors_of(state: &HubState, code: String) -> AppResult<Option<Vec<Rumor>>> {
    state
        .store_call(move |s| {
            let ids: Vec<i64> = s.jurisdictions()?.into_iter().filter(|j| !j.drill && j.state.as_deref().is_some_and(|st| st.eq_ignore_ascii_case(&code))).map(|j| j.id).collect();
            if ids.is_empty() {
                return Ok(None);
            }
            let mut out = Vec::new();
            for (case_id, published_ms) in s.disinfo_published(MAX_PUBLIC_CASES * 10)? {
                if out.len() == MAX_PUBLIC_CASES {
                    break;
                }
                let Some(d) = s.disinfo_case(case_id)? else { continue };
                if !d.case.jurisdictions.iter().any(|j| ids.contains(j)) {
                    continue;
                }
                let Some(first) = d.reports.first() else { continue };
                out.push(Rumor {
                    claim: d.case.claim.clone(),
                    facts: first.truth.clone(),
                    citation: first.citation.clone(),
                    category: d.case.category.clone(),
                    published_ms,
                    published: fmt_ms(published_ms),
                });
            }
            Ok(Some(out))
        })
        .await
        .map_err(Into::into)
}

async fn rumors(State(state): State<HubState>, Path(raw): Path<String>) -> Response {
    let (code, as_json) = match raw.strip_suffix(".json") {
        Some(c) => (c.to_string(), true),
        None => (raw.clone(), false),
    };
    let not_found = |as_json: bool| -> Response {
        if as_json {
            AppError::NotFound.into_response()
        } else {
            (StatusCode::NOT_FOUND, page("Not found", None, false, html! { p { "No such state: use its two-letter code, such as /rumors/AZ." } })).into_response()
        }
    };
    if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
        return not_found(as_json);
    }
    let code = code.to_ascii_uppercase();
    let list = match rumors_of(&state, code.clone()).await {
        Ok(Some(l)) => l,
        Ok(None) => return not_found(as_json),
        Err(e) => return if as_json { e.into_response() } else { error_page(None, e) },
    };
    let cache = [(header::CACHE_CONTROL, "public, max-age=60")];
    if as_json {
        return (cache, Json(json!({ "state": code, "rumors": list }))).into_response();
    }
    let body = html! {
        p { "False claims about elections in " (code) " that election officials have answered, and the facts." }
        @if list.is_empty() { p { "Nothing published." } }
        @for r in &list {
            section {
                h2 { "Rumor: " (r.claim) }
                p { strong { "Reality: " } (r.facts) }
                p { "Source: " (r.citation) }
                p { "Published " (r.published) " (" (r.category) ")." }
            }
        }
        p { "Also as JSON: " code { "/rumors/" (code) ".json" } }
    };
    (cache, page(&format!("Rumor vs reality: {code}"), None, false, body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ago_reads_naturally() {
        let now = 10_000_000_000;
        assert_eq!(ago(now, now - 5_000), "just now");
        assert_eq!(ago(now, now - 60_000), "1 minute ago");
        assert_eq!(ago(now, now - 7_200_000), "2 hours ago");
        assert_eq!(ago(now, now - 3 * 86_400_000), "3 days ago");
        assert_eq!(ago(now, now + 60_000), "just now");
    }

    #[test]
    fn form_times_and_counts_become_the_api_request() {
        let f = ReportForm { seen_at: "2026-11-03T07:30".into(), views: "12,000".into(), urls: "https://x.com/a/status/1\n\n  https://x.com/b/status/2 \n".into(), ..Default::default() };
        let r = to_request(&f).unwrap();
        assert_eq!(r.seen_at.as_deref(), Some("2026-11-03T07:30:00+00:00"));
        assert_eq!(r.views, Some(12_000));
        assert_eq!(r.urls, vec!["https://x.com/a/status/1", "https://x.com/b/status/2"]);
        assert!(to_request(&ReportForm { seen_at: "tuesday".into(), ..Default::default() }).is_err());
        assert!(to_request(&ReportForm { shares: "many".into(), ..Default::default() }).is_err());
    }
}
