//! The dashboard: server-rendered pages (maud), usable without JavaScript. A small same-origin
//! script (`/static/live.js`) reloads live views every 15 s; the CSP allows nothing inline.
//!
//! Pages: `/login`, `/` (analyst overview, or a jurisdiction user's own page), `/campaigns/{id}`,
//! `/jurisdictions/{id}` (its alerts [`ALERTS_PER_PAGE`] at a time, older ones at `?before=ID`),
//! `/sensors/{id}` (analysts: one sensor's contributions, anomalies and hold, with revoke and
//! release forms), `/notifications` (the log) and `/notifications/{id}` (every delivery
//! attempt of one notification). A jurisdiction user sees only their own jurisdiction
//! and the redacted view of campaigns that touched it; anything else answers 404.
//! Forms post with a `csrf` field; the login form uses a double-submit cookie.

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{html, Markup, DOCTYPE};
use serde::Deserialize;

use crate::api::{self, CampaignUpdate};
use crate::auth::{self, MaybeUser, UserAuth};
use crate::error::{AppError, AppResult};
use crate::model::*;
use crate::state::HubState;
use crate::store::{EventFilter, NotificationFilter};

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#222}header{background:#1d3557;color:#fff;padding:.6em 1em;display:flex;gap:1.5em;align-items:center}header a{color:#fff}main{padding:1em}table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;font-size:.92em}th{background:#f1f1f1}.tlp{font-weight:bold;color:#b36b00}.err{color:#a00}form.inline{display:inline}progress{width:12em}.drill{background:#a00;color:#fff;font-weight:bold;padding:0 .4em;border-radius:.2em;font-size:.85em}";
const LIVE_JS: &str = "(function(){if(document.body.dataset.live==='1'){setTimeout(function(){location.reload()},15000)}})();";

pub fn routes() -> Router<HubState> {
    Router::new()
        .route("/", get(overview))
        .route("/login", get(login_page).post(login_submit))
        .route("/logout", post(logout_submit))
        .route("/campaigns/{id}", get(campaign_page).post(campaign_submit))
        .route("/jurisdictions/{id}", get(jurisdiction_page))
        .route("/sensors/{id}", get(sensor_page))
        .route("/sensors/{id}/revoke", post(sensor_revoke_submit))
        .route("/sensors/{id}/release", post(sensor_release_submit))
        .route("/notifications", get(notifications_page))
        .route("/notifications/{id}", get(notification_page))
        .route("/static/style.css", get(|| async { ([(header::CONTENT_TYPE, "text/css"), (header::CACHE_CONTROL, "max-age=3600")], STYLE) }))
        .route("/static/live.js", get(|| async { ([(header::CONTENT_TYPE, "text/javascript"), (header::CACHE_CONTROL, "max-age=3600")], LIVE_JS) }))
}

pub(crate) fn page(title: &str, who: Option<&UserAuth>, live: bool, body: Markup) -> Html<String> {
    Html(html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — ward hub" }
                link rel="stylesheet" href="/static/style.css";
                script src="/static/live.js" defer {}
            }
            body data-live=(if live { "1" } else { "0" }) {
                header {
                    strong { "ward hub" }
                    @if let Some(w) = who {
                        a href="/" { "overview" }
                        a href="/notifications" { "notifications" }
                        a href="/disinfo" { "disinformation" }
                        span { (w.user.username) " (" (w.user.role.as_str()) ")" }
                        form.inline method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(w.csrf);
                            button type="submit" { "log out" }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
    .into_string())
}

fn to_login() -> Response {
    Redirect::to("/login").into_response()
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    csrf: String,
}

async fn login_page() -> Response {
    login_form(None, StatusCode::OK)
}

fn login_form(error: Option<&str>, status: StatusCode) -> Response {
    let token = auth::random_token("lc");
    let body = html! {
        @if let Some(e) = error { p.err { (e) } }
        form method="post" action="/login" {
            input type="hidden" name="csrf" value=(token);
            p { label { "user " input name="username" autocomplete="username" required; } }
            p { label { "password " input type="password" name="password" autocomplete="current-password" required; } }
            button type="submit" { "log in" }
        }
    };
    let mut resp = (status, page("Log in", None, false, body)).into_response();
    if let Ok(v) = format!("{}={token}; Path=/login; Secure; HttpOnly; SameSite=Strict; Max-Age=3600", auth::LOGIN_CSRF_COOKIE).parse() {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

async fn login_submit(State(state): State<HubState>, source: auth::ClientAddr, headers: axum::http::HeaderMap, Form(f): Form<LoginForm>) -> Response {
    let cookie_token = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| *k == auth::LOGIN_CSRF_COOKIE)
        .map(|(_, v)| v.to_string());
    if !cookie_token.as_deref().is_some_and(|c| auth::same_secret(c, &f.csrf)) {
        return login_form(Some("the form expired: try again"), StatusCode::FORBIDDEN);
    }
    match api::open_session(&state, source, &f.username, &f.password).await {
        Ok((token, _, _)) => {
            let mut resp = Redirect::to("/").into_response();
            if let Ok(v) = auth::session_cookie(&token).parse() {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            resp
        }
        Err(auth::LoginError::Throttled(wait)) => {
            let secs = auth::LoginError::retry_after_secs(wait).max(1);
            let mut resp = login_form(Some(&format!("too many failed logins from your address: wait {secs} seconds")), StatusCode::TOO_MANY_REQUESTS);
            resp.headers_mut().insert(header::RETRY_AFTER, secs.into());
            resp
        }
        Err(auth::LoginError::Wrong) => login_form(Some("wrong user name or password"), StatusCode::FORBIDDEN),
        Err(auth::LoginError::Other(e)) => e.into_response(),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

async fn logout_submit(State(state): State<HubState>, MaybeUser(who): MaybeUser, Form(f): Form<CsrfForm>) -> AppResult<Response> {
    let Some(who) = who else { return Ok(to_login()) };
    who.check_csrf(Some(&f.csrf))?;
    let hash = who.session_hash.clone();
    state.store_call(move |s| s.delete_session(&hash)).await?;
    let mut resp = Redirect::to("/login").into_response();
    if let Ok(v) = auth::clear_session_cookie().parse() {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

async fn overview(State(state): State<HubState>, MaybeUser(who): MaybeUser) -> AppResult<Response> {
    let Some(who) = who else { return Ok(to_login()) };
    if !who.is_analyst() {
        let j = who.user.jurisdiction_id.ok_or(AppError::NotFound)?;
        return Ok(Redirect::to(&format!("/jurisdictions/{j}")).into_response());
    }
    let since = now_ms() - 24 * 3600 * 1000;
    let (campaigns, jurisdictions, sensors, counts, anomalies) = state
        .store_call(move |s| Ok((s.campaigns(true)?, s.jurisdictions()?, s.sensors(None)?, s.alert_counts(since)?, s.trust_anomalies(None, 50)?)))
        .await?;
    let name_of = |id: i64| jurisdictions.iter().find(|j| j.id == id).map(|j| j.name.clone()).unwrap_or_else(|| id.to_string());
    let mut per_j: std::collections::BTreeMap<i64, i64> = Default::default();
    for (j, _, n) in &counts {
        *per_j.entry(*j).or_default() += n;
    }
    let max = per_j.values().copied().max().unwrap_or(1).max(1);
    let now = now_ms();
    let ack_stats = crate::ack::stats_section(&state, &who, None).await?;
    let body = html! {
        h2 { "Open campaigns (" (campaigns.len()) ")" }
        table {
            tr { th { "campaign" } th { "jurisdictions" } th { "sightings" } th { "opened" } th { "last" } }
            @for c in &campaigns {
                tr {
                    td { a href={ "/campaigns/" (c.id) } { (c.name) } }
                    td { (c.jurisdictions) } td { (c.sightings) } td { (fmt_ms(c.opened_ms)) } td { (fmt_ms(c.last_ms)) }
                }
            }
        }
        h2 { "Alerts in the last 24 hours by jurisdiction" }
        table {
            tr { th { "jurisdiction" } th { "alerts" } th { "" } }
            @for (j, n) in &per_j {
                tr { td { a href={ "/jurisdictions/" (j) } { (name_of(*j)) } } td { (n) } td { progress value=(n) max=(max) {} } }
            }
        }
        h2 { "Alerts per hour" }
        table {
            tr { th { "hour (UTC)" } th { "jurisdiction" } th { "alerts" } }
            @for (j, hour, n) in counts.iter().rev().take(200) {
                tr { td { (fmt_ms(*hour)) } td { (name_of(*j)) } td { (n) } }
            }
        }
        (ack_stats)
        h2 { "Sensors" }
        (sensor_table(&sensors, &name_of, now, true))
        h2 { "Trust anomalies (" (anomalies.len()) ")" }
        (anomaly_table(&anomalies))
        h2 { "Jurisdictions" }
        ul { @for j in &jurisdictions { li { a href={ "/jurisdictions/" (j.id) } { (j.name) } " (" (j.kind.as_str()) ")" } } }
    };
    Ok(page("Overview", Some(&who), true, body).into_response())
}

fn sensor_table(sensors: &[Sensor], name_of: &dyn Fn(i64) -> String, now: Millis, link: bool) -> Markup {
    html! {
        table {
            tr { th { "sensor" } th { "jurisdiction" } th { "last seen" } th { "lag (s)" } th { "events" } th { "health" } }
            @for s in sensors {
                tr {
                    td { @if link { a href={ "/sensors/" (s.id) } { (s.name) " #" (s.id) } } @else { (s.name) " #" (s.id) } }
                    td { (name_of(s.jurisdiction_id)) }
                    td { (s.last_seen_ms.map(fmt_ms).unwrap_or_else(|| "never".into())) }
                    td { (s.last_event_ms.map(|e| ((now - e) / 1000).to_string()).unwrap_or_else(|| "-".into())) }
                    td { (s.events_total) }
                    td { (s.health.as_deref().unwrap_or("ok")) }
                }
            }
        }
    }
}

/// The ids of drill jurisdictions (their notifications and pages carry a "DRILL" badge).
async fn drill_ids(state: &HubState) -> AppResult<Vec<i64>> {
    Ok(state.store_call(|s| s.jurisdictions()).await?.into_iter().filter(|j| j.drill).map(|j| j.id).collect())
}

/// The badge of a drill jurisdiction's rows and pages ([`crate::drill`]).
fn drill_badge() -> Markup {
    html! { span.drill title="a drill jurisdiction: exercise only, not a real attack" { "DRILL" } }
}

fn notification_table(list: &[NotificationRecord], show_jurisdiction: bool, drills: &[i64]) -> Markup {
    html! {
        table {
            tr {
                th { "id" } th { "campaign" } @if show_jurisdiction { th { "jurisdiction" } }
                th { "channel" } th { "to" } th { "event" } th { "status" } th { "attempts" } th { "created" } th { "delivered" } th { "last error" }
            }
            @for n in list {
                tr {
                    td { a href={ "/notifications/" (n.id) } { (n.id) } @if drills.contains(&n.jurisdiction_id) { " " (drill_badge()) } }
                    td { @if n.campaign_id > 0 { a href={ "/campaigns/" (n.campaign_id) } { (n.campaign_id) } } @else if n.campaign_id < 0 { "disinformation case " (-n.campaign_id) } @else { "retro-hunt" } }
                    @if show_jurisdiction { td { a href={ "/jurisdictions/" (n.jurisdiction_id) } { (n.jurisdiction_id) } } }
                    td { (n.channel.as_str()) } td { (redacted_target(&n.target)) } td { (n.event_kind) } td { (n.status) } td { (n.attempts) }
                    td { (fmt_ms(n.created_ms)) } td { (n.delivered_ms.map(fmt_ms).unwrap_or_default()) }
                    td { (n.last_error.as_deref().map(redacted_text).unwrap_or_default()) }
                }
            }
        }
    }
}

async fn campaign_page(State(state): State<HubState>, MaybeUser(who): MaybeUser, Path(id): Path<i64>) -> AppResult<Response> {
    let Some(who) = who else { return Ok(to_login()) };
    let tlp = state.config.notify.tlp.clone();
    if who.reads_children() {
        let j = who.user.jurisdiction_id.ok_or(AppError::NotFound)?;
        let v = state.store_call(move |s| crate::rollup::state_campaign(s, id, j, &s.jurisdiction_children(j)?)).await?.ok_or(AppError::NotFound)?;
        return Ok(page(&v.name, Some(&who), true, state_campaign_body(&tlp, &v)).into_response());
    }
    if !who.is_analyst() {
        let j = who.user.jurisdiction_id.ok_or(AppError::NotFound)?;
        let v = state.store_call(move |s| s.jurisdiction_campaign(id, j)).await?.ok_or(AppError::NotFound)?;
        let body = html! {
            p.tlp { (tlp) }
            p { "Status: " (v.status.as_str()) ". Seen at your jurisdiction from " (fmt_ms(v.first_ms)) " to " (fmt_ms(v.last_ms)) "." }
            p { "The same actor was seen at " strong { (v.other_jurisdictions) } " other jurisdictions." }
            h2 { "What hit you" }
            (sighting_table(&v.sightings))
            h2 { "Block" }
            ul { @for b in &v.block { li { code { (b) } } } }
        };
        return Ok(page(&v.name, Some(&who), true, body).into_response());
    }
    let d = state.store_call(move |s| s.campaign(id)).await?.ok_or(AppError::NotFound)?;
    let drills = drill_ids(&state).await?;
    let c = &d.campaign;
    let bar = state.policy.trust.publish_bar();
    let body = html! {
        p.tlp { (tlp) }
        p { "Status: " (c.status.as_str()) ". Opened " (fmt_ms(c.opened_ms)) ", last activity " (fmt_ms(c.last_ms)) "." }
        p {
            @match (c.published_ms, c.confirmed_ms) {
                (Some(p), Some(_)) => { "Confirmed by an analyst; its indicators are in every sensor's feed since " (fmt_ms(p)) "." }
                (Some(p), None) => { "Its indicators are in every sensor's feed since " (fmt_ms(p)) "." }
                (None, _) => { "Not in the all-sensor feed: it needs " (bar) " jurisdictions with a sensor in good standing, or an analyst's confirmation. Its members are warned either way." }
            }
        }
        @if !c.annotation.is_empty() { p { "Note: " (c.annotation) } }
        @if c.status == CampaignStatus::Open {
            form method="post" {
                input type="hidden" name="csrf" value=(who.csrf);
                label { "name " input name="name" value=(c.name); }
                label { " note " input name="annotation" value=(c.annotation); }
                label { " merge campaign id into this " input name="merge_from" inputmode="numeric"; }
                @if c.confirmed_ms.is_none() { label { " confirm (publish to every sensor) " input type="checkbox" name="confirm" value="1"; } }
                label { " close " input type="checkbox" name="close" value="1"; }
                button type="submit" { "save" }
            }
        }
        h2 { "Affected jurisdictions (" (d.affected.len()) ")" }
        table {
            tr { th { "jurisdiction" } th { "first" } th { "last" } th { "sightings" } }
            @for a in &d.affected {
                tr { td { a href={ "/jurisdictions/" (a.jurisdiction_id) } { (a.name) } @if drills.contains(&a.jurisdiction_id) { " " (drill_badge()) } } td { (fmt_ms(a.first_ms)) } td { (fmt_ms(a.last_ms)) } td { (a.sightings) } }
            }
        }
        h2 { "Indicators" }
        ul { @for k in &c.keys { li { code { (k) } } } }
        h2 { "Timeline" }
        table {
            tr { th { "time" } th { "event" } th { "jurisdiction" } th { "detail" } }
            @for t in &d.timeline {
                tr { td { (fmt_ms(t.ts_ms)) } td { (t.kind) } td { (t.jurisdiction_id.map(|j| j.to_string()).unwrap_or_default()) } td { (t.detail) } }
            }
        }
        h2 { "Notifications sent" }
        (notification_table(&d.notifications, true, &drills))
    };
    Ok(page(&c.name, Some(&who), true, body).into_response())
}

/// A state user's page of one campaign: every county of the state it hit, what hit each, and
/// a count of jurisdictions outside the state.
fn state_campaign_body(tlp: &str, v: &crate::rollup::StateCampaignView) -> Markup {
    html! {
        p.tlp { (tlp) }
        p {
            "Status: " (v.status.as_str()) ". Seen in your state from " (fmt_ms(v.first_ms)) " to " (fmt_ms(v.last_ms)) ": "
            strong { (v.counties.len()) } " of your counties and cities"
            @if v.own.is_some() { ", and your state's own networks" } "."
        }
        p { "The same actor was seen at " strong { (v.other_jurisdictions) } " jurisdictions outside your state." }
        h2 { "Block" }
        ul { @for b in &v.block { li { code { (b) } } } }
        @if let Some(own) = &v.own {
            h2 { "What hit your state's own networks" }
            (sighting_table(&own.sightings))
        }
        @for c in &v.counties {
            h2 { a href={ "/jurisdictions/" (c.jurisdiction_id) } { (c.name) } }
            p { (c.events) " events from " (fmt_ms(c.first_ms)) " to " (fmt_ms(c.last_ms)) "." }
            (sighting_table(&c.sightings))
        }
    }
}

fn sighting_table(list: &[LocalSighting]) -> Markup {
    html! {
        table {
            tr { th { "from" } th { "your host" } th { "signature" } th { "first" } th { "last" } th { "events" } }
            @for s in list {
                tr {
                    td { (s.remote_ip) } td { (s.local_ip.clone().unwrap_or_default()) } td { (s.signature.clone().unwrap_or_default()) }
                    td { (fmt_ms(s.first_ms)) } td { (fmt_ms(s.last_ms)) } td { (s.count) }
                }
            }
        }
    }
}

#[derive(Deserialize)]
pub struct CampaignForm {
    csrf: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    annotation: Option<String>,
    #[serde(default)]
    merge_from: Option<String>,
    #[serde(default)]
    close: Option<String>,
    #[serde(default)]
    confirm: Option<String>,
}

async fn campaign_submit(State(state): State<HubState>, MaybeUser(who): MaybeUser, Path(id): Path<i64>, Form(f): Form<CampaignForm>) -> AppResult<Response> {
    let Some(who) = who else { return Ok(to_login()) };
    who.check_csrf(Some(&f.csrf))?;
    who.require_analyst()?;
    let merge_from = match f.merge_from.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => Some(s.parse::<i64>().map_err(|_| AppError::BadRequest("merge campaign id must be a number".into()))?),
        None => None,
    };
    let update = CampaignUpdate {
        name: f.name.filter(|n| !n.trim().is_empty()),
        annotation: f.annotation,
        close: f.close.is_some(),
        merge_from,
        confirm: f.confirm.is_some(),
    };
    api::apply_campaign_update(&state, id, update).await?;
    Ok(Redirect::to(&format!("/campaigns/{id}")).into_response())
}

/// Alerts on one page of a jurisdiction; older ones are on the next page (`?before=ID`).
pub const ALERTS_PER_PAGE: usize = 50;
/// Characters of a signature shown in a table cell; the full text is in the API.
const SIGNATURE_SHOWN_CHARS: usize = 200;

#[derive(Deserialize)]
pub struct PageQuery {
    /// Only alerts with a smaller id (the "older alerts" link).
    #[serde(default)]
    before: Option<i64>,
}

/// A signature as shown in a table: at most [`SIGNATURE_SHOWN_CHARS`] characters.
fn short_signature(s: Option<&str>) -> String {
    let s = s.unwrap_or_default();
    match s.char_indices().nth(SIGNATURE_SHOWN_CHARS) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_string(),
    }
}

async fn jurisdiction_page(State(state): State<HubState>, MaybeUser(who): MaybeUser, Path(id): Path<i64>, Query(q): Query<PageQuery>) -> AppResult<Response> {
    let Some(who) = who else { return Ok(to_login()) };
    if !who.can_read(id) {
        return Err(AppError::NotFound);
    }
    let filter = EventFilter { jurisdiction_id: Some(id), event_type: Some("alert".into()), before: q.before, limit: ALERTS_PER_PAGE + 1, include_children: false };
    let (j, sensors, contacts, campaigns, alerts, older, children, state_view) = state
        .store_call(move |s| {
            let mut alerts = Vec::new();
            let mut older = None;
            s.scan_events(&filter, &mut |e| {
                if alerts.len() == ALERTS_PER_PAGE {
                    older = alerts.last().map(|a: &AlertRow| a.id);
                    return false;
                }
                alerts.push(AlertRow { id: e.id, ts_ms: e.ts_ms, signature: short_signature(e.signature.as_deref()), remote_ip: e.remote_ip.unwrap_or_default() });
                true
            })?;
            // A state's page lists its counties and the campaigns that hit any of them.
            let children = s.jurisdiction_children(id)?;
            let state_view = if children.is_empty() { Vec::new() } else { crate::rollup::state_campaigns(s, id, &children)? };
            Ok((s.jurisdiction(id)?, s.sensors(Some(id))?, s.contacts(Some(id))?, s.jurisdiction_campaigns(id)?, alerts, older, children, state_view))
        })
        .await?;
    let j = j.ok_or(AppError::NotFound)?;
    let ack_stats = crate::ack::stats_section(&state, &who, Some(std::iter::once(id).chain(children.iter().map(|c| c.id)).collect())).await?;
    let own_name = j.name.clone();
    let name_of = move |_: i64| own_name.clone();
    let body = html! {
        p { (j.kind.as_str()) @if let Some(s) = &j.state { ", " (s) } @if j.drill { " " (drill_badge()) " a drill jurisdiction: exercise only (docs/hub.md \"Drill jurisdictions\")" } }
        @if !children.is_empty() {
            h2 { "Campaigns that hit your counties and cities" }
            table {
                tr { th { "campaign" } th { "status" } th { "hit" } th { "first" } th { "last" } th { "outside your state" } }
                @for c in &state_view {
                    tr {
                        td { a href={ "/campaigns/" (c.campaign_id) } { (c.name) } }
                        td { (c.status.as_str()) }
                        td {
                            @for (i, county) in c.counties.iter().enumerate() {
                                @if i > 0 { ", " }
                                a href={ "/jurisdictions/" (county.jurisdiction_id) } { (county.name) }
                            }
                            @if c.own.is_some() { @if !c.counties.is_empty() { ", " } "the state's own networks" }
                        }
                        td { (fmt_ms(c.first_ms)) } td { (fmt_ms(c.last_ms)) } td { (c.other_jurisdictions) }
                    }
                }
            }
            h2 { "Counties and cities (" (children.len()) ")" }
            ul { @for c in &children { li { a href={ "/jurisdictions/" (c.id) } { (c.name) } " (" (c.kind.as_str()) ")" } } }
        }
        h2 { "Campaigns that touched you" }
        table {
            tr { th { "campaign" } th { "status" } th { "first" } th { "last" } th { "other jurisdictions" } }
            @for c in &campaigns {
                tr { td { a href={ "/campaigns/" (c.campaign_id) } { (c.name) } } td { (c.status.as_str()) } td { (fmt_ms(c.first_ms)) } td { (fmt_ms(c.last_ms)) } td { (c.other_jurisdictions) } }
            }
        }
        h2 { @if q.before.is_some() { "Older alerts" } @else { "Recent alerts" } }
        table {
            tr { th { "time" } th { "signature" } th { "remote" } }
            @for e in &alerts {
                tr { td { (fmt_ms(e.ts_ms)) } td { (e.signature) } td { (e.remote_ip) } }
            }
        }
        p {
            @if q.before.is_some() { a href={ "/jurisdictions/" (id) } { "newest alerts" } " " }
            @if let Some(next) = older { a href={ "/jurisdictions/" (id) "?before=" (next) } { "older alerts" } }
        }
        (ack_stats)
        h2 { "Sensors" }
        (sensor_table(&sensors, &name_of, now_ms(), who.is_analyst()))
        h2 { "Contacts" }
        ul { @for c in &contacts { li { (c.channel.as_str()) ": " (redacted_target(&c.target)) @if c.priority > 1 { " (told if a warning stays unacknowledged, priority " (c.priority) ")" } } } }
    };
    // Only the newest page reloads itself; an older page stays where the reader put it.
    Ok(page(&j.name, Some(&who), q.before.is_none(), body).into_response())
}

/// What the jurisdiction page shows of one alert (the event body stays in the store).
struct AlertRow {
    id: i64,
    ts_ms: Millis,
    signature: String,
    remote_ip: String,
}

async fn notifications_page(State(state): State<HubState>, MaybeUser(who): MaybeUser) -> AppResult<Response> {
    let Some(who) = who else { return Ok(to_login()) };
    let scope = api::scope(&who, None)?;
    let filter = NotificationFilter { jurisdiction_id: scope.jurisdiction_id, include_children: scope.include_children, campaign_id: None, limit: 500 };
    let list = state.store_call(move |s| s.notifications(&filter)).await?;
    let drills = drill_ids(&state).await?;
    let body = notification_table(&list, who.is_analyst() || who.reads_children(), &drills);
    Ok(page("Notification log", Some(&who), true, body).into_response())
}

async fn notification_page(State(state): State<HubState>, MaybeUser(who): MaybeUser, Path(id): Path<i64>) -> AppResult<Response> {
    let Some(who) = who else { return Ok(to_login()) };
    let (n, attempts) = api::visible_notification(&state, &who, id).await?;
    let ack_part = crate::ack::notification_section(&state, &who, &n).await?;
    let drills = drill_ids(&state).await?;
    let body = html! {
        (notification_table(std::slice::from_ref(&n), who.is_analyst(), &drills))
        h2 { "Delivery attempts (" (attempts.len()) ")" }
        table {
            tr { th { "time" } th { "result" } th { "duration (ms)" } th { "detail" } }
            @for a in &attempts {
                tr { td { (fmt_ms(a.ts_ms)) } td { (if a.ok { "delivered" } else { "failed" }) } td { (a.duration_ms) } td { (redacted_text(&a.detail)) } }
            }
        }
        @if n.status == "pending" { p { "Next attempt is scheduled; failures are retried with backoff up to 8 attempts." } }
        (ack_part)
    };
    Ok(page(&format!("Notification {id}"), Some(&who), true, body).into_response())
}

fn anomaly_table(list: &[crate::trust::TrustAnomaly]) -> Markup {
    html! {
        table {
            tr { th { "time" } th { "sensor" } th { "jurisdiction" } th { "kind" } th { "batch" } th { "events" } th { "remote addresses" } th { "new" } th { "limit" } }
            @for a in list {
                tr {
                    td { (fmt_ms(a.ts_ms)) } td { a href={ "/sensors/" (a.sensor_id) } { "#" (a.sensor_id) } }
                    td { a href={ "/jurisdictions/" (a.jurisdiction_id) } { (a.jurisdiction_id) } }
                    td { (a.kind) } td { (a.batch_seq) } td { (a.events) } td { (a.remotes) }
                    td { (a.new_remotes.map(|n| n.to_string()).unwrap_or_else(|| "-".into())) } td { (a.limit) }
                }
            }
        }
    }
}

/// One sensor's contributions (analysts only; another jurisdiction's sensor is 404, one's own 403).
async fn sensor_page(State(state): State<HubState>, MaybeUser(who): MaybeUser, Path(id): Path<i64>) -> AppResult<Response> {
    let Some(who) = who else { return Ok(to_login()) };
    let sensor = state.store_call(move |s| s.sensor(id)).await?.ok_or(AppError::NotFound)?;
    if !who.can_read(sensor.jurisdiction_id) {
        return Err(AppError::NotFound);
    }
    who.require_analyst()?;
    let c = state.store_call(move |s| s.sensor_contributions(id, now_ms())).await?.ok_or(AppError::NotFound)?;
    let t = &c.trust;
    let body = html! {
        p { "Jurisdiction " a href={ "/jurisdictions/" (c.sensor.jurisdiction_id) } { (c.sensor.jurisdiction_id) } ". "
            (c.sensor.events_total) " events, last seen " (c.sensor.last_seen_ms.map(fmt_ms).unwrap_or_else(|| "never".into())) "." }
        @if t.on_hold {
            p.err { "On hold until " (t.hold_until_ms.map(fmt_ms).unwrap_or_default()) " (" (t.hold_reason.clone().unwrap_or_default()) "): its events are stored but not correlated." }
            form method="post" action={ "/sensors/" (id) "/release" } {
                input type="hidden" name="csrf" value=(who.csrf);
                button type="submit" { "release the hold" }
            }
        } @else {
            p { "In good standing: " (t.window_new_keys) " new addresses in the current budget window." }
        }
        form method="post" action={ "/sensors/" (id) "/revoke" } {
            input type="hidden" name="csrf" value=(who.csrf);
            label { "revoke everything this sensor contributed and put it on hold " input type="checkbox" name="really" value="1" required; }
            button type="submit" { "revoke" }
        }
        h2 { "Trust anomalies (" (c.anomalies.len()) ")" }
        (anomaly_table(&c.anomalies))
        h2 { "Campaigns it contributed to (" (c.campaigns.len()) ")" }
        table {
            tr { th { "campaign" } th { "status" } th { "opened by it" } th { "its jurisdiction a member" } th { "published" } th { "keys it sighted" } }
            @for k in &c.campaigns {
                tr {
                    td { a href={ "/campaigns/" (k.campaign_id) } { (k.name) } } td { (k.status) }
                    td { (if k.opened_by_this_sensor { "yes" } else { "" }) } td { (if k.jurisdiction_member { "yes" } else { "" }) }
                    td { (if k.published { "yes" } else { "" }) } td { (k.keys.join(" ")) }
                }
            }
        }
        h2 { "Indicators published because of it (" (c.published_indicators.len()) ")" }
        ul { @for v in &c.published_indicators { li { code { (v) } } } }
        h2 { "Keys it sighted (" (c.keys_total) ")" }
        table {
            tr { th { "key" } th { "first" } th { "last" } th { "events" } }
            @for k in &c.keys {
                tr { td { code { (k.actor_key) } } td { (fmt_ms(k.first_ms)) } td { (fmt_ms(k.last_ms)) } td { (k.count) } }
            }
        }
    };
    Ok(page(&format!("Sensor {} #{}", c.sensor.name, id), Some(&who), true, body).into_response())
}

async fn sensor_revoke_submit(State(state): State<HubState>, MaybeUser(who): MaybeUser, Path(id): Path<i64>, Form(f): Form<CsrfForm>) -> AppResult<Response> {
    let Some(who) = who else { return Ok(to_login()) };
    who.check_csrf(Some(&f.csrf))?;
    api::revoke(&state, &who, id).await?;
    Ok(Redirect::to(&format!("/sensors/{id}")).into_response())
}

async fn sensor_release_submit(State(state): State<HubState>, MaybeUser(who): MaybeUser, Path(id): Path<i64>, Form(f): Form<CsrfForm>) -> AppResult<Response> {
    let Some(who) = who else { return Ok(to_login()) };
    who.check_csrf(Some(&f.csrf))?;
    api::release(&state, &who, id).await?;
    Ok(Redirect::to(&format!("/sensors/{id}")).into_response())
}
