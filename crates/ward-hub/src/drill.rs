//! Drill jurisdictions (docs/hub.md "Drill jurisdictions"; issue #14): jurisdictions that
//! `ward drill` creates for an exercise on a hub that also serves real offices. This module owns
//! the policy and the `POST /api/v1/drill/purge` route; the SQL is in the stores
//! (`store/sqlite/drill.rs`, `store/postgres/drill.rs`).
//!
//! * **Marked**: every message to a drill jurisdiction (campaign warnings, state roll-ups,
//!   retro-hunt hits, escalations) says so ([`crate::notify::Message::mark_drill`]).
//! * **Kept apart**: a drill jurisdiction never counts towards a campaign's publication bar, so a
//!   campaign only drill jurisdictions saw never reaches real offices' sensors, TAXII or peers.
//! * **Purged**: [`crate::store::Store::purge_drill`] deletes, in one transaction, every row
//!   that belongs to a drill jurisdiction and the campaigns left with no member, then the drill
//!   jurisdictions themselves.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::auth::UserAuth;
use crate::error::AppResult;
use crate::model::now_ms;
use crate::state::HubState;

/// The first line of every message to a drill jurisdiction.
pub const BANNER: &str = "DRILL — EXERCISE ONLY: this message is part of a ward drill, not a real attack.";
/// The subject prefix of every message to a drill jurisdiction.
pub const SUBJECT_PREFIX: &str = "[DRILL] ";

/// What a drill purge deleted (or, as a preview, would delete).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillPurge {
    pub jurisdictions: u64,
    pub sensors: u64,
    pub users: u64,
    pub contacts: u64,
    /// Campaigns left with no jurisdiction (their keys, log, notifications and escalations go too).
    pub campaigns: u64,
    /// Notifications to drill jurisdictions and about purged campaigns (with their attempts).
    pub notifications: u64,
    pub events: u64,
    pub sightings: u64,
    pub contact_records: u64,
    pub retro_hits: u64,
    pub api_keys: u64,
    /// `remove` entries logged for indicators a purged campaign had published (an analyst had
    /// confirmed it): sensors drop them.
    pub indicators_withdrawn: u64,
    /// Every other row deleted: delivery attempts, escalations, sessions, enrollment tokens,
    /// idempotency keys, trust rows, scan rows, allow-list entries, TAXII objects, campaign
    /// members and log entries.
    pub other_rows: u64,
}

impl DrillPurge {
    /// One line per non-zero count, for the CLI.
    pub fn lines(&self) -> Vec<String> {
        let v = serde_json::to_value(self).unwrap_or_default();
        let mut out = Vec::new();
        if let Some(map) = v.as_object() {
            for (k, n) in map {
                if n.as_u64().unwrap_or(0) > 0 {
                    out.push(format!("{:>10}  {}", n, k.replace('_', " ")));
                }
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        *self == DrillPurge::default()
    }
}

/// The drill routes.
pub fn routes() -> Router<HubState> {
    Router::new().route("/api/v1/drill/purge", post(purge))
}

/// `POST /api/v1/drill/purge` (analysts only): deletes every drill jurisdiction and what it
/// owns; returns the counts.
pub async fn purge(State(state): State<HubState>, who: UserAuth) -> AppResult<Json<DrillPurge>> {
    who.require_analyst()?;
    let done = state.store_call(|s| s.purge_drill(now_ms(), true)).await?;
    tracing::info!(user = %who.user.username, jurisdictions = done.jurisdictions, campaigns = done.campaigns, "drill data purged");
    if done.indicators_withdrawn > 0 {
        state.indicators_tx.send_modify(|v| *v += 1);
    }
    Ok(Json(done))
}
