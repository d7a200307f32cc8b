//! `/api/v1/feeds` (analysts only; anyone else gets 403): list, add, show (with the indicators
//! the feed holds), poll now, remove. Credentials go in and never come back: a feed shows
//! `auth`, `username` and `has_credential`; its URL is shown with query values hidden.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{validate, Feed, FeedRequest};
use crate::auth::UserAuth;
use crate::error::{AppError, AppResult};
use crate::model::{fmt_ms, now_ms, redacted_target};
use crate::state::HubState;

/// Indicators listed with one feed at most.
pub const MAX_LISTED: usize = 1000;

pub fn routes() -> Router<HubState> {
    Router::new()
        .route("/api/v1/feeds", get(list).post(add))
        .route("/api/v1/feeds/{id}", get(show))
        .route("/api/v1/feeds/{id}/poll", post(poll_now))
        .route("/api/v1/feeds/{id}/remove", post(remove))
}

/// A feed as the API and the CLI show it.
pub fn view(f: &Feed) -> Value {
    let mut v = serde_json::to_value(f).unwrap_or(Value::Null);
    v["url"] = json!(redacted_target(&f.url));
    v["status"] = json!(status(f));
    v["next_poll"] = json!(fmt_ms(f.next_poll_ms));
    v["last_poll"] = json!(f.last_poll_ms.map(fmt_ms));
    v
}

/// `disabled`, `never polled`, `capped`, `failing` or `ok`.
pub fn status(f: &Feed) -> &'static str {
    if !f.enabled {
        "disabled"
    } else if f.last_poll_ms.is_none() {
        "never polled"
    } else if f.capped {
        "capped"
    } else if f.last_error.is_some() {
        "failing"
    } else {
        "ok"
    }
}

async fn list(State(state): State<HubState>, who: UserAuth) -> AppResult<Json<Vec<Value>>> {
    who.require_analyst()?;
    let feeds = state.store_call(|s| s.feeds()).await?;
    Ok(Json(feeds.iter().map(view).collect()))
}

async fn add(State(state): State<HubState>, who: UserAuth, body: Bytes) -> AppResult<impl IntoResponse> {
    who.require_analyst()?;
    let req: FeedRequest = serde_json::from_slice(&body).map_err(|e| AppError::BadRequest(format!("bad feed JSON: {e}")))?;
    let new = validate(&req, &who.user.username).map_err(AppError::BadRequest)?;
    let feed = state.store_call(move |s| s.add_feed(&new, now_ms())).await?;
    tracing::info!(feed = feed.id, name = %feed.name, kind = feed.kind.as_str(), by = %who.user.username, "feed added");
    Ok((StatusCode::CREATED, Json(view(&feed))))
}

async fn show(State(state): State<HubState>, who: UserAuth, Path(id): Path<i64>) -> AppResult<Json<Value>> {
    who.require_analyst()?;
    let feed = state.store_call(move |s| s.feed(id)).await?.ok_or(AppError::NotFound)?;
    let indicators = state.store_call(move |s| s.feed_indicators(id, MAX_LISTED)).await?;
    let mut v = view(&feed);
    v["indicators"] = json!(indicators);
    Ok(Json(v))
}

async fn poll_now(State(state): State<HubState>, who: UserAuth, Path(id): Path<i64>) -> AppResult<Json<super::PollReport>> {
    who.require_analyst()?;
    let http = state.config.feeds.client().map_err(AppError::Internal)?;
    let poller = super::poll::Poller { store: state.store.clone(), http, allow: state.policy.trust.allow.clone() };
    let report = super::poll_feed(&poller, id, &|_| {}).await?;
    if report.applied.changed_log() {
        state.indicators_tx.send_modify(|v| *v += 1);
    }
    Ok(Json(report))
}

async fn remove(State(state): State<HubState>, who: UserAuth, Path(id): Path<i64>) -> AppResult<Json<super::FeedApplied>> {
    who.require_analyst()?;
    let out = state.store_call(move |s| s.remove_feed(id, now_ms())).await?;
    if out.changed_log() {
        state.indicators_tx.send_modify(|v| *v += 1);
    }
    tracing::info!(feed = id, by = %who.user.username, removed = out.removed, "feed removed");
    Ok(Json(out))
}
