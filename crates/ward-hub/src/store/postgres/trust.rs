//! The trust model's SQL on PostgreSQL (policy in [`crate::trust`]), a port of the SQLite
//! store's `store/sqlite/trust.rs` with the same behaviour: the contribution budget and holds,
//! which campaigns are published to the all-sensor feed, the never-block entries, and listing
//! and revoking one sensor's contributions. Everything runs inside the caller's transaction.
//!
//! Several writers: the budget decision is part of the ingest transaction, which holds the row
//! locks of its batches' sensors (taken in id order by [`lock_sensors`] after the actor-key
//! locks, see [`super::ingest`]), so two replicas given batches of one sensor at once charge
//! its budget one after the other. Revoke, release and allow-list changes rewrite sightings and
//! campaigns across many keys: they take the correlation lock exclusively
//! ([`lock_correlation`]), so no ingest correlates while they run.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use postgres::Row;

use super::ingest::{log, withdraw_indicators, CORRELATION_LOCK};
use super::{pg_text, Db, TxResult};
use crate::error::StoreError;
use crate::model::{Millis, Sensor};
use crate::store::{CorrelationPolicy, IngestBatch, IngestEffects};
use crate::trust::{
    self, Admission, AllowEntry, AllowList, AllowOutcome, BudgetState, ContributedCampaign, ContributedKey, NewAllowEntry, RevokeOutcome,
    SensorContributions, SensorStanding, TrustAnomaly, MAX_ENTRIES_PER_JURISDICTION, MAX_LISTED,
};

/// Takes the correlation lock exclusively: every ingest that correlates holds it shared.
pub(super) fn lock_correlation(db: &mut Db<'_>) -> TxResult<()> {
    db.execute("SELECT pg_advisory_xact_lock($1)", &[&CORRELATION_LOCK])?;
    Ok(())
}

/// Locks the rows of the sensors of a group, in id order, so budget decisions about one sensor
/// made by two replicas happen one after the other.
pub(super) fn lock_sensors(db: &mut Db<'_>, batches: &[IngestBatch]) -> TxResult<()> {
    let mut ids: Vec<i64> = batches.iter().map(|b| b.sensor_id).collect();
    ids.sort_unstable();
    ids.dedup();
    db.execute("SELECT count(*) FROM (SELECT id FROM sensors WHERE id = ANY($1) ORDER BY id FOR UPDATE) AS locked", &[&ids])?;
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Budget and holds
// ------------------------------------------------------------------------------------------

/// The budget states of one group's sensors, read once after their rows are locked
/// ([`lock_sensors`]) and kept in memory while the group's batches are judged one after the
/// other; changed windows are written back by [`Budgets::flush`] (one statement).
#[derive(Default)]
pub(super) struct Budgets {
    states: HashMap<i64, BudgetState>,
    dirty: BTreeSet<i64>,
}

/// What [`Budgets::decide`] made of a batch.
pub(super) enum Decision {
    Correlate,
    Held,
    /// A breach: the caller writes it with [`breach`] (the new addresses, when counted).
    Breach(trust::AnomalyKind, Option<i64>),
}

impl Budgets {
    pub(super) fn load(db: &mut Db<'_>, sensor_ids: &[i64]) -> TxResult<Self> {
        let mut out = Budgets::default();
        if sensor_ids.is_empty() {
            return Ok(out);
        }
        let rows = db.query("SELECT sensor_id, window_start_ms, window_new_keys, hold_until_ms FROM sensor_trust WHERE sensor_id = ANY($1)", &[&sensor_ids])?;
        for r in rows {
            out.states.insert(r.try_get(0)?, BudgetState { window_start_ms: r.try_get(1)?, window_new_keys: r.try_get(2)?, hold_until_ms: r.try_get(3)? });
        }
        Ok(out)
    }

    /// Reads one sensor's state again (after [`breach`] wrote its hold).
    pub(super) fn reload(&mut self, db: &mut Db<'_>, sensor_id: i64) -> TxResult<()> {
        self.dirty.remove(&sensor_id);
        let row = db.query_opt("SELECT window_start_ms, window_new_keys, hold_until_ms FROM sensor_trust WHERE sensor_id = $1", &[&sensor_id])?;
        match row {
            Some(r) => {
                self.states.insert(sensor_id, BudgetState { window_start_ms: r.try_get(0)?, window_new_keys: r.try_get(1)?, hold_until_ms: r.try_get(2)? });
            }
            None => {
                self.states.remove(&sensor_id);
            }
        }
        Ok(())
    }

    /// Decides whether a batch with `remotes` distinct, not allow-listed remote addresses may
    /// correlate (see [`crate::trust`]); `count_new` counts those new to the jurisdiction (no
    /// sighting within the correlation window), asked only when the budget needs it.
    pub(super) fn decide(&mut self, b: &IngestBatch, remotes: usize, count_new: impl FnOnce() -> i64, policy: &CorrelationPolicy, now: Millis, fx: &mut IngestEffects) -> Decision {
        let state = self.states.get(&b.sensor_id).copied().unwrap_or_default();
        let t = &policy.trust;
        let (admission, new_remotes) = match trust::precheck(&state, remotes, t, now) {
            Some(a) => (a, None),
            None => {
                // A re-sighting inside the window changes nothing in correlation, so it costs nothing.
                let new = count_new();
                (trust::judge_new(&state, new, t, now), Some(new))
            }
        };
        match admission {
            Admission::Correlate { window_start_ms, window_new_keys } => {
                if (window_start_ms, window_new_keys) != (state.window_start_ms, state.window_new_keys) {
                    self.states.insert(b.sensor_id, BudgetState { window_start_ms, window_new_keys, hold_until_ms: state.hold_until_ms });
                    self.dirty.insert(b.sensor_id);
                }
                Decision::Correlate
            }
            Admission::Held => {
                fx.batches_held += 1;
                Decision::Held
            }
            Admission::Breach(kind) => Decision::Breach(kind, new_remotes),
        }
    }

    /// Writes the changed budget windows (one statement; holds are written by [`breach`]).
    pub(super) fn flush(&mut self, db: &mut Db<'_>) -> TxResult<()> {
        if self.dirty.is_empty() {
            return Ok(());
        }
        let mut ids = Vec::with_capacity(self.dirty.len());
        let (mut starts, mut used) = (Vec::with_capacity(self.dirty.len()), Vec::with_capacity(self.dirty.len()));
        for id in std::mem::take(&mut self.dirty) {
            let s = self.states.get(&id).copied().unwrap_or_default();
            ids.push(id);
            starts.push(s.window_start_ms);
            used.push(s.window_new_keys);
        }
        db.execute(
            "INSERT INTO sensor_trust (sensor_id, window_start_ms, window_new_keys) SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) \
             ON CONFLICT (sensor_id) DO UPDATE SET window_start_ms = excluded.window_start_ms, window_new_keys = excluded.window_new_keys",
            &[&ids, &starts, &used],
        )?;
        Ok(())
    }
}

/// A batch breached its sensor's budget: the sensor is put on hold, one anomaly is written, and
/// campaigns its jurisdiction is in are checked against the publication bar. The caller has
/// written every sighting and budget window of the group so far (the checks read them).
#[allow(clippy::too_many_arguments)]
pub(super) fn breach(
    db: &mut Db<'_>,
    b: &IngestBatch,
    kind: trust::AnomalyKind,
    remotes: usize,
    new_remotes: Option<i64>,
    policy: &CorrelationPolicy,
    now: Millis,
    fx: &mut IngestEffects,
) -> TxResult<()> {
    let t = &policy.trust;
    let limit = match kind {
        trust::AnomalyKind::BatchSpray => t.max_remotes_per_batch as i64,
        trust::AnomalyKind::WindowBudget => t.max_new_keys_per_sensor,
    };
    let until = now.saturating_add(t.hold_ms);
    hold(db, b.sensor_id, kind.as_str(), until, now)?;
    db.execute(
        "INSERT INTO trust_anomalies (sensor_id, jurisdiction_id, ts_ms, kind, batch_seq, events, remotes, new_remotes, limit_value) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[&b.sensor_id, &b.jurisdiction_id, &now, &kind.as_str(), &b.seq, &(b.events.len() as i64), &(remotes as i64), &new_remotes, &limit],
    )?;
    fx.batches_held += 1;
    fx.trust_anomalies += 1;
    tracing::warn!(
        sensor_id = b.sensor_id,
        jurisdiction_id = b.jurisdiction_id,
        kind = kind.as_str(),
        remotes,
        new_remotes = ?new_remotes,
        limit,
        hold_until = %crate::model::fmt_ms(until),
        "sensor put on hold: its batch is stored but not correlated"
    );
    // Its jurisdiction may no longer count as in good standing.
    for campaign_id in member_campaigns(db, b.jurisdiction_id, true)? {
        refresh_publication(db, campaign_id, policy, now, true, fx)?;
    }
    Ok(())
}

fn hold(db: &mut Db<'_>, sensor_id: i64, reason: &str, until: Millis, now: Millis) -> TxResult<()> {
    db.execute(
        "INSERT INTO sensor_trust (sensor_id, window_start_ms, window_new_keys, hold_until_ms, hold_since_ms, hold_reason) VALUES ($1, $2, 0, $3, $2, $4) \
         ON CONFLICT (sensor_id) DO UPDATE SET hold_until_ms = excluded.hold_until_ms, hold_since_ms = excluded.hold_since_ms, hold_reason = excluded.hold_reason",
        &[&sensor_id, &now, &until, &reason],
    )?;
    Ok(())
}

fn ids(rows: Vec<Row>) -> TxResult<Vec<i64>> {
    Ok(rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?)
}

/// Open campaigns a jurisdiction is in: published ones (`published`), or unpublished ones.
fn member_campaigns(db: &mut Db<'_>, jurisdiction_id: i64, published: bool) -> TxResult<Vec<i64>> {
    ids(db.query(
        "SELECT c.id FROM campaign_jurisdictions cj JOIN campaigns c ON c.id = cj.campaign_id \
         WHERE cj.jurisdiction_id = $1 AND c.status = 'open' AND (c.published_ms IS NOT NULL) = $2 ORDER BY c.id",
        &[&jurisdiction_id, &published],
    )?)
}

// ------------------------------------------------------------------------------------------
// Publication
// ------------------------------------------------------------------------------------------

/// Members of a campaign that sighted one of its keys with a sensor not on hold (sightings from
/// before provenance, sensor 0, count as in good standing). Drill jurisdictions never count
/// (docs/hub.md "Drill jurisdictions"): a drill alone never reaches the all-sensor feed.
fn good_standing(db: &mut Db<'_>, campaign_id: i64, now: Millis) -> TxResult<i64> {
    Ok(db
        .query_one(
            "SELECT count(*) FROM campaign_jurisdictions cj JOIN jurisdictions j ON j.id = cj.jurisdiction_id AND NOT j.drill \
             WHERE cj.campaign_id = $1 AND EXISTS ( \
               SELECT 1 FROM campaign_keys k JOIN sightings s ON s.actor_key = k.actor_key AND s.jurisdiction_id = cj.jurisdiction_id \
               LEFT JOIN sensor_trust t ON t.sensor_id = s.sensor_id \
               WHERE k.campaign_id = $1 AND (t.hold_until_ms IS NULL OR t.hold_until_ms <= $2))",
            &[&campaign_id, &now],
        )?
        .try_get(0)?)
}

/// Puts every key of a campaign into the all-sensor feed; returns the indicators added.
pub(super) fn publish(db: &mut Db<'_>, campaign_id: i64, now: Millis, why: &str) -> TxResult<usize> {
    db.lock_indicator_log()?;
    let n = db.execute(
        "INSERT INTO indicators (action, kind, value, campaign_id, ts_ms) \
         SELECT 'add', split_part(actor_key, ':', 1), substr(actor_key, strpos(actor_key, ':') + 1), campaign_id, $1 \
         FROM campaign_keys WHERE campaign_id = $2 ORDER BY added_ms, actor_key",
        &[&now, &campaign_id],
    )?;
    db.execute("UPDATE campaigns SET published_ms = $1 WHERE id = $2", &[&now, &campaign_id])?;
    log(db, campaign_id, now, "published", None, why)?;
    Ok(n as usize)
}

pub(super) fn published(db: &mut Db<'_>, campaign_id: i64) -> TxResult<bool> {
    let row = db.query_opt("SELECT published_ms FROM campaigns WHERE id = $1", &[&campaign_id])?;
    Ok(match row {
        Some(r) => r.try_get::<_, Option<Millis>>(0)?.is_some(),
        None => false,
    })
}

/// Publishes an open campaign that meets the bar (or was confirmed); with `may_withdraw`, also
/// withdraws a published one that no longer does. Returns `Some(true)` when it was published
/// now, `Some(false)` when it was withdrawn now.
pub(super) fn refresh_publication(db: &mut Db<'_>, campaign_id: i64, policy: &CorrelationPolicy, now: Millis, may_withdraw: bool, fx: &mut IngestEffects) -> TxResult<Option<bool>> {
    let Some(row) = db.query_opt("SELECT status, published_ms, confirmed_ms FROM campaigns WHERE id = $1", &[&campaign_id])? else { return Ok(None) };
    let (status, published, confirmed): (String, Option<Millis>, Option<Millis>) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    if status != "open" || (published.is_some() && (!may_withdraw || confirmed.is_some())) {
        return Ok(None);
    }
    let bar = policy.trust.publish_bar();
    let good = good_standing(db, campaign_id, now)?;
    let should = confirmed.is_some() || good >= bar;
    match (should, published.is_some()) {
        (true, false) => {
            fx.indicators_added += publish(db, campaign_id, now, &format!("{good} jurisdictions in good standing (bar {bar})"))?;
            Ok(Some(true))
        }
        (false, true) => {
            fx.indicators_added += withdraw_indicators(db, campaign_id, now)?;
            log(db, campaign_id, now, "unpublished", None, &format!("{good} jurisdictions in good standing, below the bar of {bar}"))?;
            Ok(Some(false))
        }
        _ => Ok(None),
    }
}

/// An analyst stands behind the campaign: it is published whatever its size.
pub(super) fn confirm(db: &mut Db<'_>, campaign_id: i64, now: Millis) -> TxResult<usize> {
    let updated = db.execute(
        "UPDATE campaigns SET confirmed_ms = coalesce(confirmed_ms, $1) WHERE id = $2 AND status = 'open'",
        &[&now, &campaign_id],
    )?;
    if updated == 0 {
        return Err(StoreError::NotFound(format!("open campaign {campaign_id}")).into());
    }
    log(db, campaign_id, now, "confirmed", None, "an analyst confirmed the campaign")?;
    if published(db, campaign_id)? {
        return Ok(0);
    }
    publish(db, campaign_id, now, "confirmed by an analyst")
}

/// Takes one key out of a campaign (a `remove` delta when it was published).
fn remove_key(db: &mut Db<'_>, campaign_id: i64, key: &str, now: Millis, why: &str) -> TxResult<usize> {
    let removed = db.execute("DELETE FROM campaign_keys WHERE campaign_id = $1 AND actor_key = $2", &[&campaign_id, &key])?;
    if removed == 0 {
        return Ok(0);
    }
    log(db, campaign_id, now, "key_removed", None, &format!("{key}: {why}"))?;
    if !published(db, campaign_id)? {
        return Ok(0);
    }
    let (kind, value) = key.split_once(':').unwrap_or(("ip", key));
    Ok(super::feeds::log_remove(db, kind, value, campaign_id, super::feeds::Holder::Campaign(campaign_id), now)? as usize)
}

/// (members, keys) of a campaign.
fn campaign_size(db: &mut Db<'_>, campaign_id: i64) -> TxResult<(i64, i64)> {
    let r = db.query_one(
        "SELECT (SELECT count(*) FROM campaign_jurisdictions WHERE campaign_id = $1), (SELECT count(*) FROM campaign_keys WHERE campaign_id = $1)",
        &[&campaign_id],
    )?;
    Ok((r.try_get(0)?, r.try_get(1)?))
}

/// Closes an open campaign (withdrawing what it published); returns the `remove` deltas.
fn close_for(db: &mut Db<'_>, campaign_id: i64, now: Millis, why: &str) -> TxResult<usize> {
    if db.execute("UPDATE campaigns SET status = 'closed', closed_ms = $1 WHERE id = $2 AND status = 'open'", &[&now, &campaign_id])? == 0 {
        return Ok(0);
    }
    let n = withdraw_indicators(db, campaign_id, now)?;
    log(db, campaign_id, now, "closed", None, why)?;
    tracing::info!(campaign_id, reason = why, "campaign closed");
    Ok(n)
}

// ------------------------------------------------------------------------------------------
// Revoke and release
// ------------------------------------------------------------------------------------------

fn sensor_jurisdiction(db: &mut Db<'_>, sensor_id: i64) -> TxResult<i64> {
    match db.query_opt("SELECT jurisdiction_id FROM sensors WHERE id = $1", &[&sensor_id])? {
        Some(r) => Ok(r.try_get(0)?),
        None => Err(StoreError::NotFound(format!("sensor {sensor_id}")).into()),
    }
}

pub(super) fn revoke(db: &mut Db<'_>, sensor_id: i64, policy: &CorrelationPolicy, now: Millis) -> TxResult<RevokeOutcome> {
    lock_correlation(db)?;
    let jurisdiction_id = sensor_jurisdiction(db, sensor_id)?;
    let until = now.saturating_add(policy.trust.hold_ms);
    hold(db, sensor_id, "revoked", until, now)?;
    let campaigns = ids(db.query(
        "SELECT DISTINCT k.campaign_id FROM sightings s JOIN campaign_keys k ON k.actor_key = s.actor_key \
         JOIN campaigns c ON c.id = k.campaign_id WHERE s.sensor_id = $1 AND c.status = 'open' ORDER BY k.campaign_id",
        &[&sensor_id],
    )?)?;
    let mut out = RevokeOutcome { sensor_id, hold_until_ms: until, ..Default::default() };
    out.sightings_deleted = db.execute("DELETE FROM sightings WHERE sensor_id = $1", &[&sensor_id])? as usize;
    let why = format!("contributions of sensor {sensor_id} revoked");
    let mut fx = IngestEffects::default();
    for campaign_id in campaigns {
        // Its jurisdiction stays only when another of its sensors sighted a key of the campaign.
        let still: bool = db
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM campaign_keys k JOIN sightings s ON s.actor_key = k.actor_key AND s.jurisdiction_id = $2 WHERE k.campaign_id = $1)",
                &[&campaign_id, &jurisdiction_id],
            )?
            .try_get(0)?;
        if !still {
            let left = db.execute("DELETE FROM campaign_jurisdictions WHERE campaign_id = $1 AND jurisdiction_id = $2", &[&campaign_id, &jurisdiction_id])?;
            if left > 0 {
                log(db, campaign_id, now, "jurisdiction_removed", Some(jurisdiction_id), &why)?;
                db.execute(
                    "UPDATE notifications SET status = 'failed', last_error = $3 WHERE campaign_id = $1 AND jurisdiction_id = $2 AND status = 'pending'",
                    &[&campaign_id, &jurisdiction_id, &format!("cancelled: {why}")],
                )?;
                out.campaigns_left.push(campaign_id);
            }
        }
        // Keys no remaining member sighted (an address only this sensor reported) go.
        let keys: Vec<String> = db
            .query(
                "SELECT k.actor_key FROM campaign_keys k WHERE k.campaign_id = $1 AND NOT EXISTS ( \
                   SELECT 1 FROM sightings s JOIN campaign_jurisdictions cj ON cj.jurisdiction_id = s.jurisdiction_id AND cj.campaign_id = $1 \
                   WHERE s.actor_key = k.actor_key) ORDER BY k.actor_key",
                &[&campaign_id],
            )?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        for key in &keys {
            out.indicators_withdrawn += remove_key(db, campaign_id, key, now, &why)?;
            out.keys_removed += 1;
        }
        let (members, left_keys) = campaign_size(db, campaign_id)?;
        if members < policy.min_jurisdictions.max(1) || left_keys == 0 {
            out.indicators_withdrawn += close_for(db, campaign_id, now, &why)?;
            out.campaigns_closed.push(campaign_id);
        } else if refresh_publication(db, campaign_id, policy, now, true, &mut fx)? == Some(false) {
            out.campaigns_unpublished.push(campaign_id);
        }
    }
    out.indicators_withdrawn += fx.indicators_added;
    tracing::warn!(
        sensor_id,
        jurisdiction_id,
        sightings = out.sightings_deleted,
        campaigns_closed = out.campaigns_closed.len(),
        campaigns_unpublished = out.campaigns_unpublished.len(),
        "sensor contributions revoked, sensor on hold"
    );
    Ok(out)
}

pub(super) fn release(db: &mut Db<'_>, sensor_id: i64, policy: &CorrelationPolicy, now: Millis) -> TxResult<usize> {
    lock_correlation(db)?;
    let jurisdiction_id = sensor_jurisdiction(db, sensor_id)?;
    db.execute(
        "UPDATE sensor_trust SET hold_until_ms = NULL, released_ms = $2, window_start_ms = $2, window_new_keys = 0 WHERE sensor_id = $1",
        &[&sensor_id, &now],
    )?;
    let mut fx = IngestEffects::default();
    for campaign_id in member_campaigns(db, jurisdiction_id, false)? {
        refresh_publication(db, campaign_id, policy, now, false, &mut fx)?;
    }
    tracing::info!(sensor_id, jurisdiction_id, "sensor released from hold");
    Ok(fx.indicators_added)
}

// ------------------------------------------------------------------------------------------
// What one sensor contributed
// ------------------------------------------------------------------------------------------

fn row_anomaly(r: &Row) -> Result<TrustAnomaly, ::postgres::Error> {
    Ok(TrustAnomaly {
        id: r.try_get(0)?,
        sensor_id: r.try_get(1)?,
        jurisdiction_id: r.try_get(2)?,
        ts_ms: r.try_get(3)?,
        kind: r.try_get(4)?,
        batch_seq: r.try_get(5)?,
        events: r.try_get(6)?,
        remotes: r.try_get(7)?,
        new_remotes: r.try_get(8)?,
        limit: r.try_get(9)?,
    })
}

pub(super) fn anomalies(db: &mut Db<'_>, sensor_id: Option<i64>, limit: usize) -> TxResult<Vec<TrustAnomaly>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = db.query(
        "SELECT id, sensor_id, jurisdiction_id, ts_ms, kind, batch_seq, events, remotes, new_remotes, limit_value FROM trust_anomalies \
         WHERE ($1::bigint IS NULL OR sensor_id = $1) ORDER BY id DESC LIMIT $2",
        &[&sensor_id, &limit],
    )?;
    Ok(rows.iter().map(row_anomaly).collect::<Result<_, _>>()?)
}

pub(super) fn contributions(db: &mut Db<'_>, sensor: Sensor, now: Millis) -> TxResult<SensorContributions> {
    let sensor_id = sensor.id;
    let standing = match db.query_opt(
        "SELECT hold_until_ms, hold_since_ms, hold_reason, released_ms, window_start_ms, window_new_keys FROM sensor_trust WHERE sensor_id = $1",
        &[&sensor_id],
    )? {
        Some(r) => {
            let until: Option<Millis> = r.try_get(0)?;
            SensorStanding {
                on_hold: until.is_some_and(|t| t > now),
                hold_until_ms: until,
                hold_since_ms: r.try_get(1)?,
                hold_reason: r.try_get(2)?,
                released_ms: r.try_get(3)?,
                window_start_ms: r.try_get(4)?,
                window_new_keys: r.try_get(5)?,
            }
        }
        None => SensorStanding {
            on_hold: false,
            hold_until_ms: None,
            hold_since_ms: None,
            hold_reason: None,
            released_ms: None,
            window_start_ms: None,
            window_new_keys: 0,
        },
    };
    let listed = MAX_LISTED as i64;
    let keys_total: i64 = db.query_one("SELECT count(*) FROM sightings WHERE sensor_id = $1", &[&sensor_id])?.try_get(0)?;
    let keys: Vec<ContributedKey> = db
        .query("SELECT actor_key, first_ms, last_ms, count FROM sightings WHERE sensor_id = $1 ORDER BY last_ms DESC, actor_key LIMIT $2", &[&sensor_id, &listed])?
        .iter()
        .map(|r| Ok(ContributedKey { actor_key: r.try_get(0)?, first_ms: r.try_get(1)?, last_ms: r.try_get(2)?, count: r.try_get(3)? }))
        .collect::<Result<_, ::postgres::Error>>()?;
    // Campaigns holding a key it sighted, and campaigns its sighting opened.
    let mut per_campaign: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    let rows = db.query(
        "SELECT k.campaign_id, k.actor_key FROM sightings s JOIN campaign_keys k ON k.actor_key = s.actor_key \
         WHERE s.sensor_id = $1 ORDER BY k.campaign_id DESC, k.actor_key LIMIT $2",
        &[&sensor_id, &(listed * 10)],
    )?;
    for r in rows {
        let (id, key): (i64, String) = (r.try_get(0)?, r.try_get(1)?);
        let keys = per_campaign.entry(id).or_default();
        if keys.len() < MAX_LISTED {
            keys.push(key);
        }
    }
    for id in ids(db.query("SELECT id FROM campaigns WHERE opened_by_sensor = $1 ORDER BY id DESC LIMIT $2", &[&sensor_id, &listed])?)? {
        per_campaign.entry(id).or_default();
    }
    let mut campaigns = Vec::new();
    let mut published_indicators = Vec::new();
    for (campaign_id, keys) in per_campaign.into_iter().rev().take(MAX_LISTED) {
        let r = db.query_one(
            "SELECT name, status, published_ms, opened_by_sensor, \
             EXISTS (SELECT 1 FROM campaign_jurisdictions WHERE campaign_id = $1 AND jurisdiction_id = $2) FROM campaigns WHERE id = $1",
            &[&campaign_id, &sensor.jurisdiction_id],
        )?;
        let (name, status, published_ms, opened_by, member): (String, String, Option<Millis>, Option<i64>, bool) =
            (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?);
        let is_published = published_ms.is_some() && status == "open";
        if is_published {
            for k in &keys {
                let value = k.split_once(':').map_or(k.as_str(), |(_, v)| v);
                if published_indicators.len() < MAX_LISTED {
                    published_indicators.push(value.to_string());
                }
            }
        }
        campaigns.push(ContributedCampaign {
            campaign_id,
            name,
            status,
            opened_by_this_sensor: opened_by == Some(sensor_id),
            jurisdiction_member: member,
            published: is_published,
            keys,
        });
    }
    let anomalies = anomalies(db, Some(sensor_id), MAX_LISTED)?;
    Ok(SensorContributions { sensor, trust: standing, keys_total, keys, campaigns, published_indicators, anomalies })
}

// ------------------------------------------------------------------------------------------
// Never-block entries
// ------------------------------------------------------------------------------------------

pub(super) fn allow_version(db: &mut Db<'_>) -> TxResult<i64> {
    Ok(db.query_one("SELECT allow_version FROM trust_state WHERE id = 1", &[])?.try_get(0)?)
}

fn bump_version(db: &mut Db<'_>) -> TxResult<()> {
    db.execute("UPDATE trust_state SET allow_version = allow_version + 1 WHERE id = 1", &[])?;
    Ok(())
}

fn row_entry(r: &Row) -> Result<AllowEntry, ::postgres::Error> {
    let asn: Option<i64> = r.try_get(3)?;
    Ok(AllowEntry {
        id: r.try_get(0)?,
        jurisdiction_id: r.try_get(1)?,
        network: r.try_get(2)?,
        // Written from a u32 only; anything else is no ASN.
        asn: asn.and_then(|a| u32::try_from(a).ok()),
        note: r.try_get(4)?,
        created_by: r.try_get(5)?,
        created_ms: r.try_get(6)?,
    })
}

pub(super) fn entries(db: &mut Db<'_>, jurisdiction_id: Option<i64>) -> TxResult<Vec<AllowEntry>> {
    let rows = db.query(
        "SELECT id, jurisdiction_id, network, asn, note, created_by, created_ms FROM allow_entries WHERE ($1::bigint IS NULL OR jurisdiction_id = $1) ORDER BY id",
        &[&jurisdiction_id],
    )?;
    Ok(rows.iter().map(row_entry).collect::<Result<_, _>>()?)
}

/// The registered entries as one allow-list (an unparsable row, which validation never writes,
/// is skipped with a warning rather than failing ingest).
pub(super) fn load_allow(db: &mut Db<'_>) -> TxResult<AllowList> {
    let mut nets = Vec::new();
    let mut asns = Vec::new();
    for e in entries(db, None)? {
        match trust::parse_network(&e.network) {
            Ok(net) => nets.push(net),
            Err(err) => tracing::warn!(entry = e.id, error = %err, "skipping an unreadable allow-list entry"),
        }
        asns.extend(e.asn);
    }
    Ok(AllowList::from_networks(nets, asns))
}

pub(super) fn add_entry(db: &mut Db<'_>, new: &NewAllowEntry, now: Millis) -> TxResult<AllowOutcome> {
    let (ip, len) = trust::parse_network(&new.network).map_err(StoreError::Invalid)?;
    lock_correlation(db)?;
    if let Some(j) = new.jurisdiction_id {
        if db.query_opt("SELECT id FROM jurisdictions WHERE id = $1", &[&j])?.is_none() {
            return Err(StoreError::NotFound(format!("jurisdiction {j}")).into());
        }
        let held: i64 = db.query_one("SELECT count(*) FROM allow_entries WHERE jurisdiction_id = $1", &[&j])?.try_get(0)?;
        if held as usize >= MAX_ENTRIES_PER_JURISDICTION {
            return Err(StoreError::Invalid(format!(
                "jurisdiction {j} already has {MAX_ENTRIES_PER_JURISDICTION} allow-list entries: remove one or ask an analyst for a hub-wide entry"
            ))
            .into());
        }
    }
    let inserted = db.query_opt(
        "INSERT INTO allow_entries (jurisdiction_id, network, asn, note, created_by, created_ms) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT DO NOTHING RETURNING id, jurisdiction_id, network, asn, note, created_by, created_ms",
        &[&new.jurisdiction_id, &pg_text(&new.network), &new.asn.map(i64::from), &pg_text(&new.note), &pg_text(&new.created_by), &now],
    )?;
    let Some(row) = inserted else {
        return Err(StoreError::Conflict(format!("{} is already on this allow-list", new.network)).into());
    };
    let entry = row_entry(&row)?;
    bump_version(db)?;
    // Take the keys it covers out of open campaigns.
    let this = AllowList::from_networks([(ip, len)], new.asn);
    let mut covered: Vec<(i64, String)> = Vec::new();
    for r in db.query(
        "SELECT k.campaign_id, k.actor_key FROM campaign_keys k JOIN campaigns c ON c.id = k.campaign_id WHERE c.status = 'open' ORDER BY k.campaign_id, k.actor_key",
        &[],
    )? {
        let (c, key): (i64, String) = (r.try_get(0)?, r.try_get(1)?);
        if this.covers_key(&key) {
            covered.push((c, key));
        }
    }
    let why = format!("allow-listed: {}", new.network);
    let mut outcome = AllowOutcome { entry, keys_removed: 0, indicators_withdrawn: 0, campaigns_closed: 0 };
    let mut touched = BTreeSet::new();
    for (campaign_id, key) in &covered {
        outcome.indicators_withdrawn += remove_key(db, *campaign_id, key, now, &why)?;
        outcome.keys_removed += 1;
        touched.insert(*campaign_id);
    }
    for campaign_id in touched {
        if campaign_size(db, campaign_id)?.1 == 0 {
            outcome.indicators_withdrawn += close_for(db, campaign_id, now, &format!("every key is allow-listed ({})", new.network))?;
            outcome.campaigns_closed += 1;
        }
    }
    // Feed indicators it covers leave the feeds too (docs/sharing.md "Feeds").
    outcome.indicators_withdrawn += super::feeds::withdraw_allowed(db, &this, &why, now)?;
    tracing::info!(network = %new.network, jurisdiction_id = ?new.jurisdiction_id, by = %new.created_by, keys_removed = outcome.keys_removed, "allow-list entry added");
    Ok(outcome)
}

pub(super) fn remove_entry(db: &mut Db<'_>, id: i64) -> TxResult<AllowEntry> {
    let Some(row) = db.query_opt("DELETE FROM allow_entries WHERE id = $1 RETURNING id, jurisdiction_id, network, asn, note, created_by, created_ms", &[&id])? else {
        return Err(StoreError::NotFound(format!("allow-list entry {id}")).into());
    };
    let entry = row_entry(&row)?;
    bump_version(db)?;
    tracing::info!(network = %entry.network, jurisdiction_id = ?entry.jurisdiction_id, "allow-list entry removed");
    Ok(entry)
}
