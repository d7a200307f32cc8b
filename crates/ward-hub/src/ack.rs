//! Acknowledgements and escalation (issue #14; docs/hub.md "Acknowledgements and escalation").
//! This module owns the policy, the signed links, the escalation job and the pages and API
//! routes of both; the SQL lives in the store (`store/sqlite/ack.rs`, `store/postgres/ack.rs`).
//!
//! * **Acknowledging.** A notification is acknowledged once: the first acknowledgement's time
//!   and author stay; a later one may add or change the action taken (`blocked`,
//!   `investigating`, `not-relevant`) and the note. Who may: a user who may read the
//!   notification's jurisdiction (its own users, its state's, the hub's analysts), through
//!   `POST /api/v1/notifications/{id}/ack` or the dashboard's button; anyone else gets the 404
//!   of a missing id. Or the contact it was sent to, without a login, through the signed link
//!   every message carries.
//! * **Signed links.** `/ack/{id}?c=CONTACT&e=EXPIRY&s=SIG`, where SIG is the hex
//!   HMAC-SHA256, under the hub's own key [`LINK_KEY_NAME`] (made on first use and kept in the
//!   store, sealed like webhook secrets), of `ward-ack-v1`, the notification id, the contact id
//!   and the expiry (Unix seconds), checked in constant time. Links last `[notify]
//!   ack_link_days` (default 30). A `GET` only shows a page with a button (mail scanners fetch
//!   links); the button's `POST` acknowledges. Emails carry the link when the hub knows its
//!   `public_url`; webhook bodies always carry it as `ack_url` (a path without `public_url`).
//! * **Escalation.** A *warning* is a campaign's first message to a targeted jurisdiction
//!   (`event_key` `targeted`); any acknowledged notification of that campaign to that
//!   jurisdiction acknowledges it. One not acknowledged within `[notify] escalate_after_mins`
//!   (default 15; fractions allowed; 0 turns escalation off) goes to the jurisdiction's
//!   contacts of the next priority (contacts have a priority: 1 is warned at once, 2 to 9 only
//!   by escalation, in order), one priority per period, and after them to its state's
//!   contacts (a county's or city's state, see [`crate::rollup`]); then it stops. It stops
//!   as soon as the warning is acknowledged or its campaign is closed or merged, and looks back
//!   [`ESCALATION_HORIZON_MS`] at most. Each step is a row whose key is (campaign,
//!   jurisdiction, step) and is written in the transaction that enqueues its notifications, so
//!   a step happens once, across restarts and replicas; the job runs on one replica at a time
//!   under the [`JOB_ESCALATION`] lease.
//! * **Time to acknowledge** per jurisdiction (median, 90th percentile, unacknowledged
//!   count) over the first warnings of the last N days: `GET /api/v1/notifications/ack-stats`
//!   and the dashboard. Analysts see every jurisdiction, a state itself and its counties, a
//!   county itself.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use maud::{html, Markup};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Sha256;

use crate::auth::{MaybeUser, UserAuth};
use crate::error::{AppError, AppResult};
use crate::model::{fmt_ms, now_ms, redacted_target, Millis, NotificationJob, NotificationRecord};
use crate::notify::Message;
use crate::state::HubState;

/// The message kind an escalation step sends to the jurisdiction's next contacts.
pub const KIND_UNACKED: &str = "unacked";
/// The message kind an escalation step sends to the state's contacts (a roll-up kind).
pub const KIND_STATE_UNACKED: &str = "state_unacked";
/// The escalation job's lease name ([`HubState::hold_job`]).
pub const JOB_ESCALATION: &str = "escalation";
/// The name of the links' HMAC key in the store.
pub const LINK_KEY_NAME: &str = "ack-link";
/// What the links' HMAC covers first (a version, so a later format cannot be confused with it).
const LINK_DOMAIN: &str = "ward-ack-v1";
/// The highest contact priority (1 is warned at once).
pub const MAX_PRIORITY: i64 = 9;
/// A note with an acknowledgement, in characters at most.
pub const MAX_NOTE_CHARS: usize = 1000;
/// Warnings older than this never escalate (the job's look-back; bounds each pass's query).
pub const ESCALATION_HORIZON_MS: Millis = 7 * 24 * 3600 * 1000;
/// Escalation steps taken per pass at most (the next pass takes the rest at once).
pub const ESCALATIONS_PER_PASS: usize = 500;
/// Links last at most this long, whatever the configuration says.
pub const MAX_LINK_DAYS: u32 = 365;
/// The time-to-acknowledge figures look back this many days by default, and at most
/// [`MAX_STATS_DAYS`].
pub const DEFAULT_STATS_DAYS: i64 = 30;
pub const MAX_STATS_DAYS: i64 = 366;
/// Warnings read for the figures at most (the newest).
pub const MAX_STATS_WARNINGS: usize = 200_000;

type HmacSha256 = Hmac<Sha256>;

/// What the acknowledging person did about the warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AckAction {
    Blocked,
    Investigating,
    NotRelevant,
}

impl AckAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AckAction::Blocked => "blocked",
            AckAction::Investigating => "investigating",
            AckAction::NotRelevant => "not-relevant",
        }
    }

    /// `None` for anything else (an empty form field is no action).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "blocked" => Some(AckAction::Blocked),
            "investigating" => Some(AckAction::Investigating),
            "not-relevant" => Some(AckAction::NotRelevant),
            _ => None,
        }
    }
}

/// One acknowledgement to record.
#[derive(Debug, Clone)]
pub struct NewAck {
    /// `user NAME` or `contact #ID (redacted target) via link`.
    pub by: String,
    pub action: Option<AckAction>,
    pub note: Option<String>,
}

/// A notification's acknowledgement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ack {
    pub notification_id: i64,
    pub acked_ms: Millis,
    pub acked_by: String,
    pub action: Option<String>,
    pub note: Option<String>,
}

/// One step taken for an unacknowledged warning.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EscalationStep {
    pub campaign_id: i64,
    /// The warned jurisdiction.
    pub jurisdiction_id: i64,
    pub step: i64,
    /// `contact` (the jurisdiction's contacts of `priority`), `state` (its state's contacts) or
    /// `end` (nobody left to tell).
    pub kind: String,
    pub priority: Option<i64>,
    pub told_jurisdiction_id: Option<i64>,
    /// Notifications the step enqueued.
    pub notifications: i64,
    pub created_ms: Millis,
}

/// When the escalation job acts.
#[derive(Debug, Clone, PartialEq)]
pub struct EscalationPolicy {
    /// A step is due this long after the warning or the previous step.
    pub after_ms: Millis,
    /// Warnings older than this are left alone.
    pub horizon_ms: Millis,
    /// Steps per pass at most.
    pub limit: usize,
}

/// What the next step of a warning is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Tell the jurisdiction's contacts of this priority.
    Contacts(i64),
    /// Tell this state's contacts (priority 1).
    State(i64),
    /// Nobody is left.
    End,
}

/// The step after `done` steps, for a jurisdiction whose escalation contacts have the
/// priorities `levels` (above 1, ascending, distinct) and whose state is `state`.
pub fn next_step(levels: &[i64], state: Option<i64>, done: i64) -> NextStep {
    let done = usize::try_from(done).unwrap_or(0);
    if let Some(&p) = levels.get(done) {
        return NextStep::Contacts(p);
    }
    match state {
        Some(s) if done == levels.len() => NextStep::State(s),
        _ => NextStep::End,
    }
}

/// The `event_key` of the notifications of one escalation step.
pub fn escalation_key(jurisdiction_id: i64, step: i64) -> String {
    format!("escalation:{jurisdiction_id}:{step}")
}

/// The (jurisdiction, step) of an escalation step's `event_key`.
pub fn parse_escalation_key(key: &str) -> Option<(i64, i64)> {
    let rest = key.strip_prefix("escalation:")?;
    let (j, step) = rest.split_once(':')?;
    Some((j.parse().ok()?, step.parse().ok()?))
}

/// One first warning and its first acknowledgement (the figures' input).
#[derive(Debug, Clone, PartialEq)]
pub struct WarningAck {
    pub campaign_id: i64,
    pub jurisdiction_id: i64,
    pub warned_ms: Millis,
    pub acked_ms: Option<Millis>,
}

/// Time to acknowledge for one jurisdiction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AckStats {
    pub jurisdiction_id: i64,
    pub name: String,
    pub warnings: usize,
    pub acknowledged: usize,
    pub unacked: usize,
    pub median_secs: Option<f64>,
    pub p90_secs: Option<f64>,
}

/// The nearest-rank percentile `p` (0–100) of sorted values.
fn percentile(sorted: &[Millis], p: usize) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).clamp(1, sorted.len());
    Some(sorted[rank - 1] as f64 / 1000.0)
}

/// The figures per jurisdiction, named by `name_of`, by jurisdiction name.
pub fn summarize(rows: &[WarningAck], name_of: &dyn Fn(i64) -> String) -> Vec<AckStats> {
    let mut per: BTreeMap<i64, (usize, Vec<Millis>)> = BTreeMap::new();
    for r in rows {
        let e = per.entry(r.jurisdiction_id).or_default();
        e.0 += 1;
        if let Some(a) = r.acked_ms {
            e.1.push((a - r.warned_ms).max(0));
        }
    }
    let mut out: Vec<AckStats> = per
        .into_iter()
        .map(|(j, (warnings, mut times))| {
            times.sort_unstable();
            AckStats {
                jurisdiction_id: j,
                name: name_of(j),
                warnings,
                acknowledged: times.len(),
                unacked: warnings - times.len(),
                median_secs: percentile(&times, 50),
                p90_secs: percentile(&times, 90),
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name).then(a.jurisdiction_id.cmp(&b.jurisdiction_id)));
    out
}

// ---- signed links ----

fn link_mac(key: &[u8], notification_id: i64, contact_id: i64, expires_secs: i64) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("hmac accepts any key length");
    mac.update(format!("{LINK_DOMAIN}\n{notification_id}\n{contact_id}\n{expires_secs}").as_bytes());
    mac
}

/// The hex signature of one link.
pub fn link_signature(key: &[u8], notification_id: i64, contact_id: i64, expires_secs: i64) -> String {
    hex::encode(link_mac(key, notification_id, contact_id, expires_secs).finalize().into_bytes())
}

/// The link's path and query: `/ack/{id}?c=…&e=…&s=…`.
pub fn link_path(key: &[u8], notification_id: i64, contact_id: i64, expires_secs: i64) -> String {
    format!("/ack/{notification_id}?c={contact_id}&e={expires_secs}&s={}", link_signature(key, notification_id, contact_id, expires_secs))
}

/// What a presented link is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkCheck {
    Valid,
    /// Signed by this hub, but past its expiry.
    Expired,
    /// Not signed by this hub for these values (tampered, truncated, made up).
    Invalid,
}

/// Checks a link's signature (constant time), then its expiry.
pub fn check_link(key: &[u8], notification_id: i64, contact_id: i64, expires_secs: i64, signature_hex: &str, now_secs: i64) -> LinkCheck {
    let Ok(sig) = hex::decode(signature_hex) else { return LinkCheck::Invalid };
    if link_mac(key, notification_id, contact_id, expires_secs).verify_slice(&sig).is_err() {
        return LinkCheck::Invalid;
    }
    if now_secs > expires_secs {
        LinkCheck::Expired
    } else {
        LinkCheck::Valid
    }
}

/// The links' key, read from the store once per process (made there on first use).
pub async fn link_key(state: &HubState) -> Result<Arc<Vec<u8>>, AppError> {
    state
        .ack_key
        .get_or_try_init(|| async { Ok::<_, AppError>(Arc::new(state.store_call(|s| s.hub_key(LINK_KEY_NAME, now_ms())).await?)) })
        .await
        .cloned()
}

/// Adds the acknowledgement link to a message about to be sent to `job`'s contact: a line in
/// the text (when the hub knows its public URL) and `ack_url` in the JSON. A hub that cannot
/// read its key sends the message without (and logs why): a warning is never held back.
pub async fn with_ack_link(state: &HubState, job: &NotificationJob, mut msg: Message) -> Message {
    let key = match link_key(state).await {
        Ok(k) => k,
        Err(e) => {
            tracing::error!(notification = job.id, error = %e, "cannot read the acknowledgement link key; message sent without a link");
            return msg;
        }
    };
    let days = state.config.notify.ack_link_days.clamp(1, MAX_LINK_DAYS) as i64;
    let expires = now_ms() / 1000 + days * 86_400;
    let base = state.config.public_url.trim_end_matches('/');
    let url = format!("{base}{}", link_path(&key, job.id, job.contact.id, expires));
    if !base.is_empty() {
        msg.text.push_str(&format!("\nAcknowledge this message (one click, no login; the link lasts {days} days):\n{url}\n"));
    }
    if let Some(obj) = msg.json.as_object_mut() {
        obj.insert("ack_url".into(), json!(url));
        if obj.contains_key("text") {
            obj.insert("text".into(), json!(msg.text));
        }
    }
    msg
}

/// Names, in a state's "not acknowledged" roll-up, the county whose warning went unanswered.
pub async fn name_unacked_county(state: &HubState, notification_id: i64, msg: &mut Message) {
    let found = state
        .store_call(move |s| {
            let Some(step) = s.escalation_of_notification(notification_id)? else { return Ok(None) };
            let county = s.jurisdiction(step.jurisdiction_id)?;
            Ok(county.map(|c| (step, c)))
        })
        .await;
    let Ok(Some((step, county))) = found else { return };
    let mins = state.config.notify.escalate_after_mins;
    let line = format!(
        "Not acknowledged: {} was warned of this campaign and nobody there has acknowledged it (escalation step {}, after {mins} minutes per step).\n\n",
        county.name, step.step
    );
    msg.text = match msg.text.split_once("\n\n") {
        Some((tlp, rest)) => format!("{tlp}\n\n{line}{rest}"),
        None => format!("{line}{}", msg.text),
    };
    if let Some(obj) = msg.json.as_object_mut() {
        obj.insert("unacknowledged".into(), json!({ "id": county.id, "name": county.name, "step": step.step }));
        obj.insert("text".into(), json!(msg.text));
    }
}

// ---- the escalation job ----

/// Takes due escalation steps every few seconds (a quarter of the period, at most 5 s) on the
/// replica that holds the [`JOB_ESCALATION`] lease, until `shutdown`.
pub async fn run_worker(state: HubState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let after_ms = match state.config.notify.escalate_after_ms() {
        Ok(Some(ms)) => ms,
        Ok(None) => return,
        Err(e) => {
            tracing::error!(error = %e, "escalation disabled");
            return;
        }
    };
    let every = Duration::from_millis((after_ms / 4).clamp(200, 5_000) as u64);
    let lease_ms = (every.as_millis() as Millis * crate::server::JOB_LEASE_INTERVALS as Millis).max(15_000);
    let policy = EscalationPolicy { after_ms, horizon_ms: ESCALATION_HORIZON_MS, limit: ESCALATIONS_PER_PASS };
    loop {
        if *shutdown.borrow() {
            return;
        }
        let mut more = false;
        if state.hold_job(JOB_ESCALATION, lease_ms).await {
            let p = policy.clone();
            match state.store_call(move |s| s.escalate_due(&p, now_ms())).await {
                Ok(steps) => {
                    for s in &steps {
                        tracing::info!(campaign = s.campaign_id, jurisdiction = s.jurisdiction_id, step = s.step, kind = %s.kind, told = ?s.told_jurisdiction_id, notifications = s.notifications, "warning not acknowledged: escalated");
                    }
                    if steps.iter().any(|s| s.notifications > 0) {
                        state.outbox_wake.notify_one();
                    }
                    more = steps.len() >= policy.limit;
                }
                Err(e) => tracing::error!(error = %e, "escalation pass failed"),
            }
        }
        if more {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => {
                state.release_job(JOB_ESCALATION).await;
                return;
            }
        }
    }
}

// ---- HTTP ----

pub fn routes() -> Router<HubState> {
    Router::new()
        .route("/api/v1/notifications/ack-stats", get(api_stats))
        .route("/api/v1/notifications/{id}/ack", get(api_get_ack).post(api_ack))
        .route("/ack/{id}", get(link_page).post(link_submit))
        .route("/notifications/{id}/ack", post(dashboard_ack))
        .layer(DefaultBodyLimit::max(crate::server::MAX_FORM_BODY_BYTES))
}

/// The body of `POST /api/v1/notifications/{id}/ack` (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    #[serde(default)]
    pub action: Option<AckAction>,
    #[serde(default)]
    pub note: Option<String>,
}

/// An empty body is no action and no note; anything else must be the JSON object.
pub fn parse_ack_request(body: &[u8]) -> Result<AckRequest, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(AckRequest::default());
    }
    let req: AckRequest = serde_json::from_slice(body)
        .map_err(|e| format!("the body must be empty or JSON like {{\"action\": \"blocked\", \"note\": \"…\"}} (action: blocked, investigating or not-relevant): {e}"))?;
    Ok(AckRequest { note: check_note(req.note)?, ..req })
}

/// A note as stored: trimmed, `None` when empty; too long or with invisible characters refused.
fn check_note(note: Option<String>) -> Result<Option<String>, String> {
    let Some(note) = note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()) else { return Ok(None) };
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err(format!("the note is longer than {MAX_NOTE_CHARS} characters"));
    }
    crate::model::check_text("note", &note, true)?;
    Ok(Some(note))
}

/// The notification if `who` may read (and so acknowledge) it; anyone else gets the 404 of a
/// missing id.
async fn readable_notification(state: &HubState, who: &UserAuth, id: i64) -> AppResult<NotificationRecord> {
    match state.store_call(move |s| s.notification(id)).await? {
        Some(n) if who.can_read(n.jurisdiction_id) => Ok(n),
        _ => Err(AppError::NotFound),
    }
}

/// Acknowledges as `who`.
pub async fn ack_as_user(state: &HubState, who: &UserAuth, id: i64, req: AckRequest) -> AppResult<Ack> {
    readable_notification(state, who, id).await?;
    let new = NewAck { by: format!("user {}", who.user.username), action: req.action, note: req.note };
    state.store_call(move |s| s.ack_notification(id, &new, now_ms())).await?.ok_or(AppError::NotFound)
}

/// `POST /api/v1/notifications/{id}/ack`: `{"ack": …}`.
async fn api_ack(State(state): State<HubState>, who: UserAuth, Path(id): Path<i64>, body: Bytes) -> AppResult<Json<serde_json::Value>> {
    let req = parse_ack_request(&body).map_err(AppError::BadRequest)?;
    let ack = ack_as_user(&state, &who, id, req).await?;
    Ok(Json(json!({ "ack": ack })))
}

/// The escalation steps `who` may see for a notification: its warning's, and those that told
/// its jurisdiction (a state) about its counties' warnings in the same campaign.
async fn visible_steps(state: &HubState, who: &UserAuth, n: &NotificationRecord) -> AppResult<Vec<EscalationStep>> {
    if n.campaign_id <= 0 {
        return Ok(Vec::new());
    }
    let (campaign, j) = (n.campaign_id, n.jurisdiction_id);
    let steps = state.store_call(move |s| s.escalations(campaign, j)).await?;
    Ok(steps.into_iter().filter(|s| who.can_read(s.jurisdiction_id)).collect())
}

/// `GET /api/v1/notifications/{id}/ack`: `{"ack": … or null, "escalations": […]}`.
async fn api_get_ack(State(state): State<HubState>, who: UserAuth, Path(id): Path<i64>) -> AppResult<Json<serde_json::Value>> {
    let n = readable_notification(&state, &who, id).await?;
    let ack = state.store_call(move |s| s.notification_ack(id)).await?;
    let steps = visible_steps(&state, &who, &n).await?;
    Ok(Json(json!({ "notification_id": id, "ack": ack, "escalations": steps })))
}

#[derive(Debug, Default, Deserialize)]
pub struct StatsQuery {
    #[serde(default)]
    pub days: Option<i64>,
    #[serde(default)]
    pub jurisdiction_id: Option<i64>,
}

/// The time-to-acknowledge figures `who` may see: every jurisdiction for analysts (or the one
/// asked for), a state and its counties, a county itself.
pub async fn stats_for(state: &HubState, who: &UserAuth, q: &StatsQuery) -> AppResult<(i64, Vec<AckStats>)> {
    let days = q.days.unwrap_or(DEFAULT_STATS_DAYS);
    if !(1..=MAX_STATS_DAYS).contains(&days) {
        return Err(AppError::BadRequest(format!("days must be 1 to {MAX_STATS_DAYS}")));
    }
    let scope = crate::api::scope(who, q.jurisdiction_id)?;
    let ids: Option<Vec<i64>> = match scope.jurisdiction_id {
        None => None,
        Some(j) if scope.include_children => Some(std::iter::once(j).chain(who.children.iter().copied()).collect()),
        Some(j) => Some(vec![j]),
    };
    Ok((days, stats_of(state, who, ids, days).await?))
}

/// The figures of `ids` (`None`: every jurisdiction) over `days`, those `who` may read.
async fn stats_of(state: &HubState, who: &UserAuth, ids: Option<Vec<i64>>, days: i64) -> AppResult<Vec<AckStats>> {
    let since = now_ms() - days * 86_400_000;
    let (rows, jurisdictions) = state.store_call(move |s| Ok((s.warning_acks(ids.as_deref(), since, MAX_STATS_WARNINGS)?, s.jurisdictions()?))).await?;
    let names: BTreeMap<i64, String> = jurisdictions.into_iter().map(|j| (j.id, j.name)).collect();
    let stats = summarize(&rows, &|id| names.get(&id).cloned().unwrap_or_else(|| id.to_string()));
    Ok(stats.into_iter().filter(|s| who.can_read(s.jurisdiction_id)).collect())
}

/// `GET /api/v1/notifications/ack-stats?days=30&jurisdiction_id=`.
async fn api_stats(State(state): State<HubState>, who: UserAuth, Query(q): Query<StatsQuery>) -> AppResult<Json<serde_json::Value>> {
    let (days, stats) = stats_for(&state, &who, &q).await?;
    Ok(Json(json!({ "days": days, "jurisdictions": stats })))
}

/// The query of a signed link; kept as text so a mangled link gets the link's own answer.
#[derive(Debug, Default, Deserialize)]
pub struct LinkQuery {
    #[serde(default)]
    c: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    s: Option<String>,
}

/// Why a link is refused.
enum LinkRefusal {
    Invalid,
    Expired,
}

/// Checks a presented link against the store: the notification it names, when valid.
async fn verified_link(state: &HubState, id: i64, q: &LinkQuery) -> Result<(NotificationRecord, i64, i64), LinkRefusal> {
    let (Some(c), Some(e), Some(s)) = (q.c.as_deref(), q.e.as_deref(), q.s.as_deref()) else { return Err(LinkRefusal::Invalid) };
    let (Ok(contact), Ok(expires)) = (c.parse::<i64>(), e.parse::<i64>()) else { return Err(LinkRefusal::Invalid) };
    let key = link_key(state).await.map_err(|_| LinkRefusal::Invalid)?;
    match check_link(&key, id, contact, expires, s, now_ms() / 1000) {
        LinkCheck::Invalid => return Err(LinkRefusal::Invalid),
        LinkCheck::Expired => return Err(LinkRefusal::Expired),
        LinkCheck::Valid => {}
    }
    match state.store_call(move |st| st.notification(id)).await {
        Ok(Some(n)) if n.contact_id == contact => Ok((n, contact, expires)),
        _ => Err(LinkRefusal::Invalid),
    }
}

fn refusal_page(r: LinkRefusal) -> Response {
    let (status, text) = match r {
        LinkRefusal::Invalid => (StatusCode::NOT_FOUND, "This acknowledgement link is not valid (it may have been cut or changed): open the link from the message again, or log in to the dashboard."),
        LinkRefusal::Expired => (StatusCode::GONE, "This acknowledgement link has expired: log in to the dashboard to acknowledge the warning, or call your information-sharing center."),
    };
    (status, crate::web::page("Acknowledgement", None, false, html! { p.err { (text) } })).into_response()
}

fn action_select() -> Markup {
    html! {
        p { label { "what you did (optional) "
            select name="action" {
                option value="" { "—" }
                option value="blocked" { "blocked the addresses" }
                option value="investigating" { "investigating" }
                option value="not-relevant" { "not relevant to us" }
            }
        } }
        p { label { "note (optional) " input name="note" maxlength=(MAX_NOTE_CHARS); } }
    }
}

fn ack_summary(a: &Ack) -> Markup {
    html! {
        p { "Acknowledged " (fmt_ms(a.acked_ms)) " UTC by " (a.acked_by)
            @if let Some(action) = &a.action { "; action: " strong { (action) } }
            "." }
        @if let Some(note) = &a.note { p { "Note: " (note) } }
    }
}

/// `GET /ack/{id}?c=&e=&s=`: the page with the button; changes nothing.
async fn link_page(State(state): State<HubState>, Path(id): Path<i64>, Query(q): Query<LinkQuery>) -> Response {
    let (n, contact, expires) = match verified_link(&state, id, &q).await {
        Ok(v) => v,
        Err(r) => return refusal_page(r),
    };
    let ack = state.store_call(move |s| s.notification_ack(id)).await.ok().flatten();
    let action = format!("/ack/{id}?c={contact}&e={expires}&s={}", q.s.as_deref().unwrap_or_default());
    let body = html! {
        p { "Message #" (n.id) " (" (n.event_kind) ") sent " (fmt_ms(n.created_ms)) " UTC to " (redacted_target(&n.target)) "." }
        @if let Some(a) = &ack { (ack_summary(a)) p { "You may add what you did:" } }
        form method="post" action=(action) {
            (action_select())
            button type="submit" { "Acknowledge" }
        }
    };
    crate::web::page("Acknowledge a warning", None, false, body).into_response()
}

/// The optional `action` and `note` of a form body (the link page's button).
pub fn form_request(body: &[u8]) -> Result<AckRequest, String> {
    let mut req = AckRequest::default();
    for (k, v) in form_urlencoded::parse(body) {
        match k.as_ref() {
            "action" if v.is_empty() => {}
            "action" => req.action = Some(AckAction::parse(&v).ok_or("action must be blocked, investigating or not-relevant")?),
            "note" => req.note = Some(v.into_owned()),
            _ => {}
        }
    }
    req.note = check_note(req.note)?;
    Ok(req)
}

/// `POST /ack/{id}?c=&e=&s=` (the page's button, or a tool posting a webhook's `ack_url`):
/// acknowledges as the contact, with the optional form fields `action` and `note`.
async fn link_submit(State(state): State<HubState>, Path(id): Path<i64>, Query(q): Query<LinkQuery>, body: Bytes) -> Response {
    let (n, contact, _) = match verified_link(&state, id, &q).await {
        Ok(v) => v,
        Err(r) => return refusal_page(r),
    };
    let req = match form_request(&body) {
        Ok(r) => r,
        Err(e) => return AppError::BadRequest(e).into_response(),
    };
    let new = NewAck { by: format!("contact #{contact} ({}) via link", redacted_target(&n.target)), action: req.action, note: req.note };
    match state.store_call(move |s| s.ack_notification(id, &new, now_ms())).await {
        Ok(Some(a)) => (StatusCode::OK, crate::web::page("Acknowledged", None, false, html! { (ack_summary(&a)) p { "Thank you. The hub stops escalating this warning." } })).into_response(),
        Ok(None) => refusal_page(LinkRefusal::Invalid),
        Err(e) => e.into_response(),
    }
}

/// The dashboard button's form.
struct DashboardAckForm {
    csrf: String,
    action: String,
    note: String,
}

/// The dashboard's button on `/notifications/{id}`.
async fn dashboard_ack(State(state): State<HubState>, MaybeUser(who): MaybeUser, Path(id): Path<i64>, body: Bytes) -> AppResult<Response> {
    let Some(who) = who else { return Ok(Redirect::to("/login").into_response()) };
    let form: DashboardAckForm = dashboard_form(&body)?;
    who.check_csrf(Some(&form.csrf))?;
    let action = match form.action.as_str() {
        "" => None,
        a => Some(AckAction::parse(a).ok_or_else(|| AppError::BadRequest("action must be blocked, investigating or not-relevant".into()))?),
    };
    let note = check_note(Some(form.note)).map_err(AppError::BadRequest)?;
    ack_as_user(&state, &who, id, AckRequest { action, note }).await?;
    Ok(Redirect::to(&format!("/notifications/{id}")).into_response())
}

fn dashboard_form(body: &[u8]) -> AppResult<DashboardAckForm> {
    let mut csrf = None;
    let (mut action, mut note) = (String::new(), String::new());
    for (k, v) in form_urlencoded::parse(body) {
        match k.as_ref() {
            "csrf" => csrf = Some(v.into_owned()),
            "action" => action = v.into_owned(),
            "note" => note = v.into_owned(),
            _ => {}
        }
    }
    let csrf = csrf.ok_or_else(|| AppError::Forbidden("missing or wrong CSRF token: reload the page and try again".into()))?;
    Ok(DashboardAckForm { csrf, action, note })
}

/// The acknowledgement and escalation part of the dashboard's notification page.
pub async fn notification_section(state: &HubState, who: &UserAuth, n: &NotificationRecord) -> AppResult<Markup> {
    let id = n.id;
    let ack = state.store_call(move |s| s.notification_ack(id)).await?;
    let steps = visible_steps(state, who, n).await?;
    let jurisdictions = if steps.is_empty() { Vec::new() } else { state.store_call(|s| s.jurisdictions()).await? };
    let name_of = |j: i64| jurisdictions.iter().find(|x| x.id == j).map(|x| x.name.clone()).unwrap_or_else(|| format!("#{j}"));
    Ok(html! {
        h2 { "Acknowledgement" }
        @match &ack {
            Some(a) => { (ack_summary(a)) }
            None => { p.err { "Not acknowledged yet." } }
        }
        form method="post" action={ "/notifications/" (id) "/ack" } {
            input type="hidden" name="csrf" value=(who.csrf);
            (action_select())
            button type="submit" { @if ack.is_some() { "Update the action" } @else { "Acknowledge" } }
        }
        h2 { "Escalation (" (steps.len()) " steps)" }
        @if steps.is_empty() {
            p { "None: the warning was acknowledged in time, is not a first warning, or its period has not passed." }
        } @else {
            table {
                tr { th { "time" } th { "warned jurisdiction" } th { "step" } th { "told" } th { "notifications" } }
                @for s in &steps {
                    tr {
                        td { (fmt_ms(s.created_ms)) }
                        td { a href={ "/jurisdictions/" (s.jurisdiction_id) } { (name_of(s.jurisdiction_id)) } }
                        td { (s.step) }
                        td {
                            @match (s.kind.as_str(), s.told_jurisdiction_id) {
                                ("contact", _) => { "next contacts (priority " (s.priority.unwrap_or_default()) ")" }
                                ("state", Some(t)) => { "its state: " (name_of(t)) }
                                _ => { "nobody left to tell" }
                            }
                        }
                        td { (s.notifications) }
                    }
                }
            }
        }
    })
}

/// The time-to-acknowledge table for the dashboard over the default period: `ids` (`None`:
/// every jurisdiction), those `who` may read.
pub async fn stats_section(state: &HubState, who: &UserAuth, ids: Option<Vec<i64>>) -> AppResult<Markup> {
    let days = DEFAULT_STATS_DAYS;
    let stats = stats_of(state, who, ids, days).await?;
    let secs = |v: Option<f64>| v.map(|s| format!("{s:.0}")).unwrap_or_else(|| "-".into());
    Ok(html! {
        h2 { "Time to acknowledge, last " (days) " days" }
        @if stats.is_empty() {
            p { "No warnings in this period." }
        } @else {
            table {
                tr { th { "jurisdiction" } th { "warnings" } th { "acknowledged" } th { "unacknowledged" } th { "median (s)" } th { "90th percentile (s)" } }
                @for s in &stats {
                    tr {
                        td { a href={ "/jurisdictions/" (s.jurisdiction_id) } { (s.name) } }
                        td { (s.warnings) } td { (s.acknowledged) }
                        td { @if s.unacked > 0 { span.err { (s.unacked) } } @else { "0" } }
                        td { (secs(s.median_secs)) } td { (secs(s.p90_secs)) }
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_verify_and_refuse_tampering_and_expiry() {
        let key = [7u8; 32];
        let sig = link_signature(&key, 42, 5, 2_000_000_000);
        assert_eq!(check_link(&key, 42, 5, 2_000_000_000, &sig, 1_900_000_000), LinkCheck::Valid);
        assert_eq!(check_link(&key, 42, 5, 2_000_000_000, &sig, 2_000_000_001), LinkCheck::Expired);
        assert_eq!(check_link(&key, 43, 5, 2_000_000_000, &sig, 1_900_000_000), LinkCheck::Invalid, "another notification");
        assert_eq!(check_link(&key, 42, 6, 2_000_000_000, &sig, 1_900_000_000), LinkCheck::Invalid, "another contact");
        assert_eq!(check_link(&key, 42, 5, 2_100_000_000, &sig, 1_900_000_000), LinkCheck::Invalid, "a longer life");
        assert_eq!(check_link(&[8u8; 32], 42, 5, 2_000_000_000, &sig, 1_900_000_000), LinkCheck::Invalid, "another hub");
        assert_eq!(check_link(&key, 42, 5, 2_000_000_000, &sig[..62], 1_900_000_000), LinkCheck::Invalid, "truncated");
        assert_eq!(check_link(&key, 42, 5, 2_000_000_000, "zz", 1_900_000_000), LinkCheck::Invalid);
        assert!(link_path(&key, 42, 5, 9).starts_with("/ack/42?c=5&e=9&s="));
    }

    #[test]
    fn steps_go_through_the_priorities_then_the_state_then_end() {
        assert_eq!(next_step(&[2, 3], Some(1), 0), NextStep::Contacts(2));
        assert_eq!(next_step(&[2, 3], Some(1), 1), NextStep::Contacts(3));
        assert_eq!(next_step(&[2, 3], Some(1), 2), NextStep::State(1));
        assert_eq!(next_step(&[2, 3], Some(1), 3), NextStep::End);
        assert_eq!(next_step(&[], None, 0), NextStep::End, "a state with no escalation contacts");
        assert_eq!(next_step(&[], Some(9), 0), NextStep::State(9));
        assert_eq!(parse_escalation_key(&escalation_key(12, 3)), Some((12, 3)));
        assert_eq!(parse_escalation_key("targeted"), None);
        assert_eq!(parse_escalation_key("escalation:x:1"), None);
    }

    #[test]
    fn figures_are_nearest_rank_per_jurisdiction() {
        let w = |j: i64, acked: Option<Millis>| WarningAck { campaign_id: 1, jurisdiction_id: j, warned_ms: 1_000, acked_ms: acked.map(|a| 1_000 + a) };
        let mut rows: Vec<WarningAck> = (1..=10).map(|i| w(1, Some(i * 1000))).collect();
        rows.push(w(1, None));
        rows.push(w(2, None));
        let stats = summarize(&rows, &|j| format!("J{j}"));
        assert_eq!(stats.len(), 2);
        assert_eq!((stats[0].warnings, stats[0].acknowledged, stats[0].unacked), (11, 10, 1));
        assert_eq!(stats[0].median_secs, Some(5.0));
        assert_eq!(stats[0].p90_secs, Some(9.0));
        assert_eq!((stats[1].unacked, stats[1].median_secs), (1, None));
    }

    #[test]
    fn ack_bodies_are_checked() {
        assert_eq!(parse_ack_request(b"").unwrap().action, None);
        let r = parse_ack_request(br#"{"action":"not-relevant","note":" a test "}"#).unwrap();
        assert_eq!((r.action, r.note.as_deref()), (Some(AckAction::NotRelevant), Some("a test")));
        assert!(parse_ack_request(br#"{"action":"ignored"}"#).is_err());
        assert!(parse_ack_request(br#"{"actoin":"blocked"}"#).is_err());
        assert!(parse_ack_request(b"[1").is_err());
        let long = format!(r#"{{"note":"{}"}}"#, "x".repeat(MAX_NOTE_CHARS + 1));
        assert!(parse_ack_request(long.as_bytes()).unwrap_err().contains("longer"));
        assert!(parse_ack_request("{\"note\":\"a\u{202e}b\"}".as_bytes()).is_err());
        assert_eq!(form_request(b"action=blocked&note=done").unwrap().action, Some(AckAction::Blocked));
        assert!(form_request(b"action=").unwrap().action.is_none());
        assert!(form_request(b"action=x").is_err());
    }
}
