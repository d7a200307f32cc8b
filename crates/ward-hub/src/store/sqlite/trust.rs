//! The trust model's SQL (policy in [`crate::trust`]): the contribution budget and holds, which
//! campaigns are published to the all-sensor feed, the never-block entries, and listing and
//! revoking one sensor's contributions. Everything runs inside the caller's transaction; the
//! budget decision is part of the ingest transaction, so replicas on one database agree.

use std::net::IpAddr;

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::{log, row_sensor, withdraw_indicators, SENSOR_COLS};
use crate::error::StoreError;
use crate::model::Millis;
use crate::store::{CorrelationPolicy, IngestBatch, IngestEffects, StoreResult};
use crate::trust::{
    self, Admission, AllowEntry, AllowList, AllowOutcome, BudgetState, ContributedCampaign, ContributedKey, NewAllowEntry, RevokeOutcome,
    SensorContributions, SensorStanding, TrustAnomaly, MAX_ENTRIES_PER_JURISDICTION, MAX_LISTED,
};

// ------------------------------------------------------------------------------------------
// Budget and holds
// ------------------------------------------------------------------------------------------

fn budget_state(c: &Connection, sensor_id: i64) -> StoreResult<BudgetState> {
    Ok(c.prepare_cached("SELECT window_start_ms, window_new_keys, hold_until_ms FROM sensor_trust WHERE sensor_id = ?1")?
        .query_row([sensor_id], |r| Ok(BudgetState { window_start_ms: r.get(0)?, window_new_keys: r.get(1)?, hold_until_ms: r.get(2)? }))
        .optional()?
        .unwrap_or_default())
}

/// Decides whether a batch may correlate (see [`crate::trust`]): `remotes` are its distinct,
/// not allow-listed remote addresses. On a breach the sensor is put on hold, one anomaly is
/// written, and campaigns its jurisdiction is in are checked against the publication bar.
pub(super) fn admit(tx: &Transaction<'_>, b: &IngestBatch, remotes: &[IpAddr], policy: &CorrelationPolicy, now: Millis, fx: &mut IngestEffects) -> StoreResult<bool> {
    let state = budget_state(tx, b.sensor_id)?;
    let t = &policy.trust;
    let (admission, new_remotes) = match trust::precheck(&state, remotes.len(), t, now) {
        Some(a) => (a, None),
        None => {
            // New: the jurisdiction has no sighting of the address within the correlation
            // window. A re-sighting inside it changes nothing in correlation, so it costs nothing.
            let since = now.saturating_sub(policy.window_ms);
            let mut seen = tx.prepare_cached("SELECT 1 FROM sightings WHERE actor_key = ?1 AND jurisdiction_id = ?2 AND last_ms >= ?3 LIMIT 1")?;
            let mut new = 0i64;
            for ip in remotes {
                if !seen.exists(params![format!("ip:{ip}"), b.jurisdiction_id, since])? {
                    new += 1;
                }
            }
            (trust::judge_new(&state, new, t, now), Some(new))
        }
    };
    match admission {
        Admission::Correlate { window_start_ms, window_new_keys } => {
            if (window_start_ms, window_new_keys) != (state.window_start_ms, state.window_new_keys) {
                tx.prepare_cached(
                    "INSERT INTO sensor_trust (sensor_id, window_start_ms, window_new_keys) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (sensor_id) DO UPDATE SET window_start_ms = excluded.window_start_ms, window_new_keys = excluded.window_new_keys",
                )?
                .execute(params![b.sensor_id, window_start_ms, window_new_keys])?;
            }
            Ok(true)
        }
        Admission::Held => {
            fx.batches_held += 1;
            Ok(false)
        }
        Admission::Breach(kind) => {
            let limit = match kind {
                trust::AnomalyKind::BatchSpray => t.max_remotes_per_batch as i64,
                trust::AnomalyKind::WindowBudget => t.max_new_keys_per_sensor,
            };
            let until = now.saturating_add(t.hold_ms);
            hold(tx, b.sensor_id, kind.as_str(), until, now)?;
            tx.prepare_cached(
                "INSERT INTO trust_anomalies (sensor_id, jurisdiction_id, ts_ms, kind, batch_seq, events, remotes, new_remotes, limit_value) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![b.sensor_id, b.jurisdiction_id, now, kind.as_str(), b.seq, b.events.len() as i64, remotes.len() as i64, new_remotes, limit])?;
            fx.batches_held += 1;
            fx.trust_anomalies += 1;
            tracing::warn!(
                sensor_id = b.sensor_id,
                jurisdiction_id = b.jurisdiction_id,
                kind = kind.as_str(),
                remotes = remotes.len(),
                new_remotes = ?new_remotes,
                limit,
                hold_until = %crate::model::fmt_ms(until),
                "sensor put on hold: its batch is stored but not correlated"
            );
            // Its jurisdiction may no longer count as in good standing.
            for campaign_id in member_campaigns(tx, b.jurisdiction_id, true)? {
                refresh_publication(tx, campaign_id, policy, now, true, fx)?;
            }
            Ok(false)
        }
    }
}

fn hold(tx: &Transaction<'_>, sensor_id: i64, reason: &str, until: Millis, now: Millis) -> StoreResult<()> {
    tx.prepare_cached(
        "INSERT INTO sensor_trust (sensor_id, window_start_ms, window_new_keys, hold_until_ms, hold_since_ms, hold_reason) VALUES (?1, ?2, 0, ?3, ?2, ?4) \
         ON CONFLICT (sensor_id) DO UPDATE SET hold_until_ms = excluded.hold_until_ms, hold_since_ms = excluded.hold_since_ms, hold_reason = excluded.hold_reason",
    )?
    .execute(params![sensor_id, now, until, reason])?;
    Ok(())
}

/// Open campaigns a jurisdiction is in: published ones (`published`), or unpublished ones.
fn member_campaigns(c: &Connection, jurisdiction_id: i64, published: bool) -> StoreResult<Vec<i64>> {
    let mut st = c.prepare_cached(
        "SELECT c.id FROM campaign_jurisdictions cj JOIN campaigns c ON c.id = cj.campaign_id \
         WHERE cj.jurisdiction_id = ?1 AND c.status = 'open' AND (c.published_ms IS NOT NULL) = ?2 ORDER BY c.id",
    )?;
    let rows = st.query_map(params![jurisdiction_id, published], |r| r.get(0))?.collect::<Result<_, _>>()?;
    Ok(rows)
}

// ------------------------------------------------------------------------------------------
// Publication
// ------------------------------------------------------------------------------------------

/// Members of a campaign that sighted one of its keys with a sensor not on hold (sightings from
/// before provenance, sensor 0, count as in good standing). Drill jurisdictions never count
/// (docs/hub.md "Drill jurisdictions"): a drill alone never reaches the all-sensor feed.
fn good_standing(c: &Connection, campaign_id: i64, now: Millis) -> StoreResult<i64> {
    Ok(c.prepare_cached(
        "SELECT count(*) FROM campaign_jurisdictions cj JOIN jurisdictions j ON j.id = cj.jurisdiction_id AND j.drill = 0 \
         WHERE cj.campaign_id = ?1 AND EXISTS ( \
           SELECT 1 FROM campaign_keys k JOIN sightings s ON s.actor_key = k.actor_key AND s.jurisdiction_id = cj.jurisdiction_id \
           LEFT JOIN sensor_trust t ON t.sensor_id = s.sensor_id \
           WHERE k.campaign_id = ?1 AND (t.hold_until_ms IS NULL OR t.hold_until_ms <= ?2))",
    )?
    .query_row(params![campaign_id, now], |r| r.get(0))?)
}

/// Puts every key of a campaign into the all-sensor feed; returns the indicators added.
pub(super) fn publish(tx: &Transaction<'_>, campaign_id: i64, now: Millis, why: &str) -> StoreResult<usize> {
    let n = tx
        .prepare_cached(
            "INSERT INTO indicators (action, kind, value, campaign_id, ts_ms) \
             SELECT 'add', substr(actor_key, 1, instr(actor_key, ':') - 1), substr(actor_key, instr(actor_key, ':') + 1), campaign_id, ?1 \
             FROM campaign_keys WHERE campaign_id = ?2 ORDER BY added_ms, actor_key",
        )?
        .execute(params![now, campaign_id])?;
    tx.prepare_cached("UPDATE campaigns SET published_ms = ?1 WHERE id = ?2")?.execute(params![now, campaign_id])?;
    log(tx, campaign_id, now, "published", None, why)?;
    Ok(n)
}

pub(super) fn published(c: &Connection, campaign_id: i64) -> StoreResult<bool> {
    let p: Option<Option<Millis>> =
        c.prepare_cached("SELECT published_ms FROM campaigns WHERE id = ?1")?.query_row([campaign_id], |r| r.get(0)).optional()?;
    Ok(p.flatten().is_some())
}

/// Publishes an open campaign that meets the bar (or was confirmed); with `may_withdraw`, also
/// withdraws a published one that no longer does. Returns `Some(true)` when it was published
/// now, `Some(false)` when it was withdrawn now.
pub(super) fn refresh_publication(tx: &Transaction<'_>, campaign_id: i64, policy: &CorrelationPolicy, now: Millis, may_withdraw: bool, fx: &mut IngestEffects) -> StoreResult<Option<bool>> {
    let row: Option<(String, Option<Millis>, Option<Millis>)> = tx
        .prepare_cached("SELECT status, published_ms, confirmed_ms FROM campaigns WHERE id = ?1")?
        .query_row([campaign_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((status, published, confirmed)) = row else { return Ok(None) };
    if status != "open" || (published.is_some() && (!may_withdraw || confirmed.is_some())) {
        return Ok(None);
    }
    let bar = policy.trust.publish_bar();
    let good = good_standing(tx, campaign_id, now)?;
    let should = confirmed.is_some() || good >= bar;
    match (should, published.is_some()) {
        (true, false) => {
            fx.indicators_added += publish(tx, campaign_id, now, &format!("{good} jurisdictions in good standing (bar {bar})"))?;
            Ok(Some(true))
        }
        (false, true) => {
            fx.indicators_added += withdraw_indicators(tx, campaign_id, now)?;
            log(tx, campaign_id, now, "unpublished", None, &format!("{good} jurisdictions in good standing, below the bar of {bar}"))?;
            Ok(Some(false))
        }
        _ => Ok(None),
    }
}

/// An analyst stands behind the campaign: it is published whatever its size.
pub(super) fn confirm(tx: &Transaction<'_>, campaign_id: i64, now: Millis) -> StoreResult<usize> {
    let updated = tx.execute(
        "UPDATE campaigns SET confirmed_ms = coalesce(confirmed_ms, ?1) WHERE id = ?2 AND status = 'open'",
        params![now, campaign_id],
    )?;
    if updated == 0 {
        return Err(StoreError::NotFound(format!("open campaign {campaign_id}")));
    }
    log(tx, campaign_id, now, "confirmed", None, "an analyst confirmed the campaign")?;
    if published(tx, campaign_id)? {
        return Ok(0);
    }
    publish(tx, campaign_id, now, "confirmed by an analyst")
}

/// Takes one key out of a campaign (a `remove` delta when it was published).
fn remove_key(tx: &Transaction<'_>, campaign_id: i64, key: &str, now: Millis, why: &str) -> StoreResult<usize> {
    let removed = tx
        .prepare_cached("DELETE FROM campaign_keys WHERE campaign_id = ?1 AND actor_key = ?2")?
        .execute(params![campaign_id, key])?;
    if removed == 0 {
        return Ok(0);
    }
    log(tx, campaign_id, now, "key_removed", None, &format!("{key}: {why}"))?;
    if !published(tx, campaign_id)? {
        return Ok(0);
    }
    let (kind, value) = key.split_once(':').unwrap_or(("ip", key));
    Ok(super::feeds::log_remove(tx, kind, value, campaign_id, super::feeds::Holder::Campaign(campaign_id), now)? as usize)
}

/// Closes an open campaign (withdrawing what it published); returns the `remove` deltas.
fn close_for(tx: &Transaction<'_>, campaign_id: i64, now: Millis, why: &str) -> StoreResult<usize> {
    if tx.execute("UPDATE campaigns SET status = 'closed', closed_ms = ?1 WHERE id = ?2 AND status = 'open'", params![now, campaign_id])? == 0 {
        return Ok(0);
    }
    let n = withdraw_indicators(tx, campaign_id, now)?;
    log(tx, campaign_id, now, "closed", None, why)?;
    tracing::info!(campaign_id, reason = why, "campaign closed");
    Ok(n)
}

fn campaign_size(c: &Connection, campaign_id: i64) -> StoreResult<(i64, i64)> {
    Ok(c.prepare_cached(
        "SELECT (SELECT count(*) FROM campaign_jurisdictions WHERE campaign_id = ?1), (SELECT count(*) FROM campaign_keys WHERE campaign_id = ?1)",
    )?
    .query_row([campaign_id], |r| Ok((r.get(0)?, r.get(1)?)))?)
}

// ------------------------------------------------------------------------------------------
// Revoke and release
// ------------------------------------------------------------------------------------------

fn sensor_jurisdiction(c: &Connection, sensor_id: i64) -> StoreResult<i64> {
    c.prepare_cached("SELECT jurisdiction_id FROM sensors WHERE id = ?1")?
        .query_row([sensor_id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("sensor {sensor_id}")))
}

pub(super) fn revoke(tx: &Transaction<'_>, sensor_id: i64, policy: &CorrelationPolicy, now: Millis) -> StoreResult<RevokeOutcome> {
    let jurisdiction_id = sensor_jurisdiction(tx, sensor_id)?;
    let until = now.saturating_add(policy.trust.hold_ms);
    hold(tx, sensor_id, "revoked", until, now)?;
    let campaigns: Vec<i64> = {
        let mut st = tx.prepare_cached(
            "SELECT DISTINCT k.campaign_id FROM sightings s JOIN campaign_keys k ON k.actor_key = s.actor_key \
             JOIN campaigns c ON c.id = k.campaign_id WHERE s.sensor_id = ?1 AND c.status = 'open' ORDER BY k.campaign_id",
        )?;
        let rows = st.query_map([sensor_id], |r| r.get(0))?.collect::<Result<_, _>>()?;
        rows
    };
    let mut out = RevokeOutcome { sensor_id, hold_until_ms: until, ..Default::default() };
    out.sightings_deleted = tx.prepare_cached("DELETE FROM sightings WHERE sensor_id = ?1")?.execute([sensor_id])?;
    let why = format!("contributions of sensor {sensor_id} revoked");
    let mut fx = IngestEffects::default();
    for campaign_id in campaigns {
        // Its jurisdiction stays only when another of its sensors sighted a key of the campaign.
        let still: bool = tx
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM campaign_keys k JOIN sightings s ON s.actor_key = k.actor_key AND s.jurisdiction_id = ?2 WHERE k.campaign_id = ?1)",
            )?
            .query_row(params![campaign_id, jurisdiction_id], |r| r.get(0))?;
        if !still {
            let left = tx
                .prepare_cached("DELETE FROM campaign_jurisdictions WHERE campaign_id = ?1 AND jurisdiction_id = ?2")?
                .execute(params![campaign_id, jurisdiction_id])?;
            if left > 0 {
                log(tx, campaign_id, now, "jurisdiction_removed", Some(jurisdiction_id), &why)?;
                tx.prepare_cached(
                    "UPDATE notifications SET status = 'failed', last_error = ?3 WHERE campaign_id = ?1 AND jurisdiction_id = ?2 AND status = 'pending'",
                )?
                .execute(params![campaign_id, jurisdiction_id, format!("cancelled: {why}")])?;
                out.campaigns_left.push(campaign_id);
            }
        }
        // Keys no remaining member sighted (an address only this sensor reported) go.
        let keys: Vec<String> = {
            let mut st = tx.prepare_cached(
                "SELECT k.actor_key FROM campaign_keys k WHERE k.campaign_id = ?1 AND NOT EXISTS ( \
                   SELECT 1 FROM sightings s JOIN campaign_jurisdictions cj ON cj.jurisdiction_id = s.jurisdiction_id AND cj.campaign_id = ?1 \
                   WHERE s.actor_key = k.actor_key)",
            )?;
            let rows = st.query_map([campaign_id], |r| r.get(0))?.collect::<Result<_, _>>()?;
            rows
        };
        for key in &keys {
            out.indicators_withdrawn += remove_key(tx, campaign_id, key, now, &why)?;
            out.keys_removed += 1;
        }
        let (members, left_keys) = campaign_size(tx, campaign_id)?;
        if members < policy.min_jurisdictions.max(1) || left_keys == 0 {
            out.indicators_withdrawn += close_for(tx, campaign_id, now, &why)?;
            out.campaigns_closed.push(campaign_id);
        } else if refresh_publication(tx, campaign_id, policy, now, true, &mut fx)? == Some(false) {
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

pub(super) fn release(tx: &Transaction<'_>, sensor_id: i64, policy: &CorrelationPolicy, now: Millis) -> StoreResult<usize> {
    let jurisdiction_id = sensor_jurisdiction(tx, sensor_id)?;
    tx.prepare_cached(
        "UPDATE sensor_trust SET hold_until_ms = NULL, released_ms = ?2, window_start_ms = ?2, window_new_keys = 0 WHERE sensor_id = ?1",
    )?
    .execute(params![sensor_id, now])?;
    let mut fx = IngestEffects::default();
    for campaign_id in member_campaigns(tx, jurisdiction_id, false)? {
        refresh_publication(tx, campaign_id, policy, now, false, &mut fx)?;
    }
    tracing::info!(sensor_id, jurisdiction_id, "sensor released from hold");
    Ok(fx.indicators_added)
}

// ------------------------------------------------------------------------------------------
// What one sensor contributed
// ------------------------------------------------------------------------------------------

fn row_anomaly(r: &rusqlite::Row<'_>) -> rusqlite::Result<TrustAnomaly> {
    Ok(TrustAnomaly {
        id: r.get(0)?,
        sensor_id: r.get(1)?,
        jurisdiction_id: r.get(2)?,
        ts_ms: r.get(3)?,
        kind: r.get(4)?,
        batch_seq: r.get(5)?,
        events: r.get(6)?,
        remotes: r.get(7)?,
        new_remotes: r.get(8)?,
        limit: r.get(9)?,
    })
}

pub(super) fn anomalies(c: &Connection, sensor_id: Option<i64>, limit: usize) -> StoreResult<Vec<TrustAnomaly>> {
    let mut st = c.prepare_cached(
        "SELECT id, sensor_id, jurisdiction_id, ts_ms, kind, batch_seq, events, remotes, new_remotes, limit_value FROM trust_anomalies \
         WHERE (?1 IS NULL OR sensor_id = ?1) ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = st.query_map(params![sensor_id, limit as i64], row_anomaly)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

pub(super) fn contributions(c: &Connection, sensor_id: i64, now: Millis) -> StoreResult<Option<SensorContributions>> {
    let sensor = c.query_row(&format!("SELECT {SENSOR_COLS} FROM sensors WHERE id = ?1"), [sensor_id], row_sensor).optional()?;
    let Some(sensor) = sensor else { return Ok(None) };
    let standing = c
        .prepare_cached(
            "SELECT hold_until_ms, hold_since_ms, hold_reason, released_ms, window_start_ms, window_new_keys FROM sensor_trust WHERE sensor_id = ?1",
        )?
        .query_row([sensor_id], |r| {
            let until: Option<Millis> = r.get(0)?;
            Ok(SensorStanding {
                on_hold: until.is_some_and(|t| t > now),
                hold_until_ms: until,
                hold_since_ms: r.get(1)?,
                hold_reason: r.get(2)?,
                released_ms: r.get(3)?,
                window_start_ms: r.get(4)?,
                window_new_keys: r.get(5)?,
            })
        })
        .optional()?
        .unwrap_or(SensorStanding {
            on_hold: false,
            hold_until_ms: None,
            hold_since_ms: None,
            hold_reason: None,
            released_ms: None,
            window_start_ms: None,
            window_new_keys: 0,
        });
    let keys_total: i64 = c.prepare_cached("SELECT count(*) FROM sightings WHERE sensor_id = ?1")?.query_row([sensor_id], |r| r.get(0))?;
    let keys: Vec<ContributedKey> = {
        let mut st = c.prepare_cached(
            "SELECT actor_key, first_ms, last_ms, count FROM sightings WHERE sensor_id = ?1 ORDER BY last_ms DESC, actor_key LIMIT ?2",
        )?;
        let rows = st
            .query_map(params![sensor_id, MAX_LISTED as i64], |r| {
                Ok(ContributedKey { actor_key: r.get(0)?, first_ms: r.get(1)?, last_ms: r.get(2)?, count: r.get(3)? })
            })?
            .collect::<Result<_, _>>()?;
        rows
    };
    // Campaigns holding a key it sighted, and campaigns its sighting opened.
    let mut per_campaign: std::collections::BTreeMap<i64, Vec<String>> = Default::default();
    {
        let mut st = c.prepare_cached(
            "SELECT k.campaign_id, k.actor_key FROM sightings s JOIN campaign_keys k ON k.actor_key = s.actor_key \
             WHERE s.sensor_id = ?1 ORDER BY k.campaign_id DESC, k.actor_key LIMIT ?2",
        )?;
        let rows = st.query_map(params![sensor_id, (MAX_LISTED * 10) as i64], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (id, key) = row?;
            let keys = per_campaign.entry(id).or_default();
            if keys.len() < MAX_LISTED {
                keys.push(key);
            }
        }
        let mut st = c.prepare_cached("SELECT id FROM campaigns WHERE opened_by_sensor = ?1 ORDER BY id DESC LIMIT ?2")?;
        let rows = st.query_map(params![sensor_id, MAX_LISTED as i64], |r| r.get::<_, i64>(0))?;
        for id in rows {
            per_campaign.entry(id?).or_default();
        }
    }
    let mut campaigns = Vec::new();
    let mut published_indicators = Vec::new();
    for (campaign_id, keys) in per_campaign.into_iter().rev().take(MAX_LISTED) {
        let (name, status, published_ms, opened_by, member): (String, String, Option<Millis>, Option<i64>, bool) = c
            .prepare_cached(
                "SELECT name, status, published_ms, opened_by_sensor, \
                 EXISTS (SELECT 1 FROM campaign_jurisdictions WHERE campaign_id = ?1 AND jurisdiction_id = ?2) FROM campaigns WHERE id = ?1",
            )?
            .query_row(params![campaign_id, sensor.jurisdiction_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?;
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
    let anomalies = anomalies(c, Some(sensor_id), MAX_LISTED)?;
    Ok(Some(SensorContributions { sensor, trust: standing, keys_total, keys, campaigns, published_indicators, anomalies }))
}

// ------------------------------------------------------------------------------------------
// Never-block entries
// ------------------------------------------------------------------------------------------

pub(super) fn allow_version(c: &Connection) -> StoreResult<i64> {
    Ok(c.prepare_cached("SELECT allow_version FROM trust_state WHERE id = 1")?.query_row([], |r| r.get(0))?)
}

fn bump_version(tx: &Transaction<'_>) -> StoreResult<()> {
    tx.prepare_cached("UPDATE trust_state SET allow_version = allow_version + 1 WHERE id = 1")?.execute([])?;
    Ok(())
}

fn row_entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<AllowEntry> {
    Ok(AllowEntry {
        id: r.get(0)?,
        jurisdiction_id: r.get(1)?,
        network: r.get(2)?,
        asn: r.get(3)?,
        note: r.get(4)?,
        created_by: r.get(5)?,
        created_ms: r.get(6)?,
    })
}
const ENTRY_COLS: &str = "id, jurisdiction_id, network, asn, note, created_by, created_ms";

pub(super) fn entries(c: &Connection, jurisdiction_id: Option<i64>) -> StoreResult<Vec<AllowEntry>> {
    let mut st = c.prepare_cached(&format!("SELECT {ENTRY_COLS} FROM allow_entries WHERE (?1 IS NULL OR jurisdiction_id = ?1) ORDER BY id"))?;
    let rows = st.query_map([jurisdiction_id], row_entry)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The registered entries as one allow-list (an unparsable row, which validation never writes,
/// is skipped with a warning rather than failing ingest).
pub(super) fn load_allow(c: &Connection) -> StoreResult<AllowList> {
    let mut nets = Vec::new();
    let mut asns = Vec::new();
    for e in entries(c, None)? {
        match trust::parse_network(&e.network) {
            Ok(net) => nets.push(net),
            Err(err) => tracing::warn!(entry = e.id, error = %err, "skipping an unreadable allow-list entry"),
        }
        asns.extend(e.asn);
    }
    Ok(AllowList::from_networks(nets, asns))
}

pub(super) fn add_entry(tx: &Transaction<'_>, new: &NewAllowEntry, now: Millis) -> StoreResult<AllowOutcome> {
    let (ip, len) = trust::parse_network(&new.network).map_err(StoreError::Invalid)?;
    if let Some(j) = new.jurisdiction_id {
        let exists: Option<i64> = tx.query_row("SELECT id FROM jurisdictions WHERE id = ?1", [j], |r| r.get(0)).optional()?;
        if exists.is_none() {
            return Err(StoreError::NotFound(format!("jurisdiction {j}")));
        }
        let held: i64 = tx.query_row("SELECT count(*) FROM allow_entries WHERE jurisdiction_id = ?1", [j], |r| r.get(0))?;
        if held as usize >= MAX_ENTRIES_PER_JURISDICTION {
            return Err(StoreError::Invalid(format!(
                "jurisdiction {j} already has {MAX_ENTRIES_PER_JURISDICTION} allow-list entries: remove one or ask an analyst for a hub-wide entry"
            )));
        }
    }
    tx.prepare_cached("INSERT INTO allow_entries (jurisdiction_id, network, asn, note, created_by, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?
        .execute(params![new.jurisdiction_id, new.network, new.asn, new.note, new.created_by, now])
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => StoreError::Conflict(format!("{} is already on this allow-list", new.network)),
            other => other,
        })?;
    let id = tx.last_insert_rowid();
    bump_version(tx)?;
    let entry = tx.query_row(&format!("SELECT {ENTRY_COLS} FROM allow_entries WHERE id = ?1"), [id], row_entry)?;
    // Take the keys it covers out of open campaigns.
    let this = AllowList::from_networks([(ip, len)], new.asn);
    let covered: Vec<(i64, String)> = {
        let mut st = tx.prepare("SELECT k.campaign_id, k.actor_key FROM campaign_keys k JOIN campaigns c ON c.id = k.campaign_id WHERE c.status = 'open'")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (c, key) = row?;
            if this.covers_key(&key) {
                out.push((c, key));
            }
        }
        out
    };
    let why = format!("allow-listed: {}", new.network);
    let mut outcome = AllowOutcome { entry, keys_removed: 0, indicators_withdrawn: 0, campaigns_closed: 0 };
    let mut touched = std::collections::BTreeSet::new();
    for (campaign_id, key) in &covered {
        outcome.indicators_withdrawn += remove_key(tx, *campaign_id, key, now, &why)?;
        outcome.keys_removed += 1;
        touched.insert(*campaign_id);
    }
    for campaign_id in touched {
        if campaign_size(tx, campaign_id)?.1 == 0 {
            outcome.indicators_withdrawn += close_for(tx, campaign_id, now, &format!("every key is allow-listed ({})", new.network))?;
            outcome.campaigns_closed += 1;
        }
    }
    // Feed indicators it covers leave the feeds too (docs/sharing.md "Feeds").
    outcome.indicators_withdrawn += super::feeds::withdraw_allowed(tx, &this, &why, now)?;
    tracing::info!(network = %new.network, jurisdiction_id = ?new.jurisdiction_id, by = %new.created_by, keys_removed = outcome.keys_removed, "allow-list entry added");
    Ok(outcome)
}

pub(super) fn remove_entry(tx: &Transaction<'_>, id: i64) -> StoreResult<AllowEntry> {
    let entry = tx
        .query_row(&format!("SELECT {ENTRY_COLS} FROM allow_entries WHERE id = ?1"), [id], row_entry)
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("allow-list entry {id}")))?;
    tx.execute("DELETE FROM allow_entries WHERE id = ?1", [id])?;
    bump_version(tx)?;
    tracing::info!(network = %entry.network, jurisdiction_id = ?entry.jurisdiction_id, "allow-list entry removed");
    Ok(entry)
}
