//! The feeds' SQL (rules in [`crate::share::feeds`]): feeds, the indicators each holds, and the
//! one rule every source of the indicator log follows — a value already live is not logged
//! again, and a `remove` is logged only when no other source still holds the value
//! ([`held_elsewhere`], used by campaign withdrawal, analyst expiry and feeds alike).

use std::collections::{HashMap, HashSet};

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::FEED_CREDENTIAL_COLUMN;
use crate::error::StoreError;
use crate::model::Millis;
use crate::share::feeds::{Feed, FeedApplied, FeedIndicator, FeedKind, FeedState, FeedUpdate, NewFeed, PollRecord, MAX_FEEDS, MAX_SENSOR_TLP};
use crate::store::secrets::SecretKeys;
use crate::store::StoreResult;
use crate::trust::{AllowList, AllowView};

/// Expired feed indicators withdrawn per call at most (the caller calls again).
pub const MAX_EXPIRED_PER_PASS: i64 = 1000;

/// Who is letting go of a value (it does not count as still holding it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holder {
    Campaign(i64),
    Analyst(i64),
    FeedRow(i64),
}

/// Whether a source other than `except` still holds `kind:value` for the sensors: a key of an
/// open, published campaign; an analyst indicator not removed or expired; a feed's sensor-bound
/// indicator not removed or expired.
pub(crate) fn held_elsewhere(c: &Connection, kind: &str, value: &str, except: Holder, now: Millis) -> StoreResult<bool> {
    let (campaign, analyst, row) = match except {
        Holder::Campaign(id) => (id, -1, -1),
        Holder::Analyst(id) => (-1, id, -1),
        Holder::FeedRow(id) => (-1, -1, id),
    };
    Ok(c.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM campaign_keys k JOIN campaigns c ON c.id = k.campaign_id \
                        WHERE k.actor_key = ?1 AND k.campaign_id <> ?2 AND c.status = 'open' AND c.published_ms IS NOT NULL) \
             OR EXISTS (SELECT 1 FROM analyst_indicators WHERE kind = ?3 AND value = ?4 AND id <> ?5 AND removed_ms IS NULL \
                        AND (expires_ms IS NULL OR expires_ms > ?6)) \
             OR EXISTS (SELECT 1 FROM feed_indicators WHERE kind = ?3 AND value = ?4 AND id <> ?7 AND removed_ms IS NULL \
                        AND on_sensors = 1 AND (valid_until_ms IS NULL OR valid_until_ms > ?6))",
    )?
    .query_row(params![format!("{kind}:{value}"), campaign, kind, value, analyst, now, row], |r| r.get(0))?)
}

/// The `seq` of the `add` that makes `kind:value` live on the sensors' lists (the value's last
/// log entry is an `add`), or `None`.
pub(crate) fn live_add(c: &Connection, kind: &str, value: &str) -> StoreResult<Option<i64>> {
    let last: Option<(i64, String)> = c
        .prepare_cached("SELECT seq, action FROM indicators WHERE kind = ?1 AND value = ?2 ORDER BY seq DESC LIMIT 1")?
        .query_row(params![kind, value], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(last.filter(|(_, a)| a == "add").map(|(seq, _)| seq))
}

/// Logs a `remove` of `kind:value` (as `campaign_id`'s) unless it is not live or another source
/// still holds it; returns whether it was logged.
pub(crate) fn log_remove(tx: &Transaction<'_>, kind: &str, value: &str, campaign_id: i64, except: Holder, now: Millis) -> StoreResult<bool> {
    if live_add(tx, kind, value)?.is_none() || held_elsewhere(tx, kind, value, except, now)? {
        return Ok(false);
    }
    tx.prepare_cached("INSERT INTO indicators (action, kind, value, campaign_id, ts_ms) VALUES ('remove', ?1, ?2, ?3, ?4)")?
        .execute(params![kind, value, campaign_id, now])?;
    Ok(true)
}

/// Logs an `add` of `kind:value` (as a feed's: campaign 0) unless it is live already; returns
/// the `seq` it rides on and whether it was logged now.
fn log_add(tx: &Transaction<'_>, kind: &str, value: &str, now: Millis) -> StoreResult<(i64, bool)> {
    if let Some(seq) = live_add(tx, kind, value)? {
        return Ok((seq, false));
    }
    tx.prepare_cached("INSERT INTO indicators (action, kind, value, campaign_id, ts_ms) VALUES ('add', ?1, ?2, 0, ?3)")?
        .execute(params![kind, value, now])?;
    Ok((tx.last_insert_rowid(), true))
}

const FEED_COLS: &str = "f.id, f.name, f.kind, f.url, f.collection, f.csv_column, f.auth_kind, f.username, f.credential IS NOT NULL, f.types, \
     f.min_confidence, f.default_confidence, f.max_active, f.default_tlp, f.default_ttl_secs, f.interval_secs, f.enabled, f.created_by, \
     f.created_ms, f.state, f.next_poll_ms, f.last_poll_ms, f.last_ok_ms, f.last_error, f.failures, f.capped, f.added_total, \
     f.removed_total, f.skipped_total, \
     (SELECT count(*) FROM feed_indicators i WHERE i.feed_id = f.id AND i.removed_ms IS NULL AND i.on_sensors = 1), \
     (SELECT count(*) FROM feed_indicators i WHERE i.feed_id = f.id AND i.removed_ms IS NULL AND i.on_sensors = 0)";

fn row_feed(r: &rusqlite::Row<'_>) -> rusqlite::Result<Feed> {
    let kind: String = r.get(2)?;
    let types: String = r.get(9)?;
    let tlp: String = r.get(13)?;
    let state: String = r.get(19)?;
    Ok(Feed {
        id: r.get(0)?,
        name: r.get(1)?,
        kind: FeedKind::parse(&kind).unwrap_or(FeedKind::Csv),
        url: r.get(3)?,
        collection: r.get(4)?,
        csv_column: r.get(5)?,
        auth: r.get(6)?,
        username: r.get(7)?,
        has_credential: r.get(8)?,
        types: types.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect(),
        min_confidence: r.get(10)?,
        default_confidence: r.get(11)?,
        max_indicators: r.get(12)?,
        default_tlp: tlp.parse().unwrap_or(ward_model::tlp::Tlp::Amber),
        default_ttl_secs: r.get(14)?,
        interval_secs: r.get(15)?,
        enabled: r.get(16)?,
        created_by: r.get(17)?,
        created_ms: r.get(18)?,
        state: serde_json::from_str::<FeedState>(&state).unwrap_or_default(),
        next_poll_ms: r.get(20)?,
        last_poll_ms: r.get(21)?,
        last_ok_ms: r.get(22)?,
        last_error: r.get(23)?,
        failures: r.get(24)?,
        capped: r.get(25)?,
        added_total: r.get(26)?,
        removed_total: r.get(27)?,
        skipped_total: r.get(28)?,
        on_sensors: r.get(29)?,
        held_on_hub: r.get(30)?,
    })
}

pub(super) fn feeds(c: &Connection) -> StoreResult<Vec<Feed>> {
    let mut st = c.prepare_cached(&format!("SELECT {FEED_COLS} FROM feeds f ORDER BY f.id"))?;
    let rows = st.query_map([], row_feed)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

pub(super) fn feed(c: &Connection, id: i64) -> StoreResult<Option<Feed>> {
    Ok(c.prepare_cached(&format!("SELECT {FEED_COLS} FROM feeds f WHERE f.id = ?1"))?.query_row([id], row_feed).optional()?)
}

pub(super) fn add_feed(tx: &Transaction<'_>, keys: &SecretKeys, new: &NewFeed, now: Millis) -> StoreResult<Feed> {
    let count: i64 = tx.query_row("SELECT count(*) FROM feeds", [], |r| r.get(0))?;
    if count as usize >= MAX_FEEDS {
        return Err(StoreError::Invalid(format!("the hub already has {MAX_FEEDS} feeds: remove one first")));
    }
    let credential = new.secret.as_deref().map(|s| keys.seal(FEED_CREDENTIAL_COLUMN, s));
    tx.prepare_cached(
        "INSERT INTO feeds (name, kind, url, collection, csv_column, auth_kind, username, credential, types, min_confidence, \
         default_confidence, max_active, default_tlp, default_ttl_secs, interval_secs, enabled, created_by, created_ms, next_poll_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?18)",
    )?
    .execute(params![
        new.name,
        new.kind.as_str(),
        new.url,
        new.collection,
        new.csv_column,
        new.auth.as_str(),
        new.username,
        credential,
        new.types.join(","),
        new.min_confidence,
        new.default_confidence,
        new.max_active,
        new.default_tlp.label(),
        new.default_ttl_secs,
        new.interval_secs,
        new.enabled,
        new.created_by,
        now,
    ])
    .map_err(|e| match StoreError::from(e) {
        StoreError::Conflict(_) => StoreError::Conflict(format!("a feed named {:?} exists already", new.name)),
        other => other,
    })?;
    let id = tx.last_insert_rowid();
    feed(tx, id)?.ok_or_else(|| StoreError::Database("feed vanished after insert".into()))
}

pub(super) fn credential(c: &Connection, keys: &SecretKeys, id: i64) -> StoreResult<Option<String>> {
    let stored: Option<Option<String>> = c.prepare_cached("SELECT credential FROM feeds WHERE id = ?1")?.query_row([id], |r| r.get(0)).optional()?;
    let Some(stored) = stored else { return Err(StoreError::NotFound(format!("feed {id}"))) };
    match stored {
        None => Ok(None),
        Some(sealed) => keys
            .open(FEED_CREDENTIAL_COLUMN, &sealed)
            .map(Some)
            .map_err(|e| StoreError::Invalid(format!("cannot open the credential of feed {id}: {e} (key file {})", keys.path().display()))),
    }
}

/// One active row as the apply step sees it.
struct Row {
    id: i64,
    source_ref: String,
    kind: String,
    value: String,
    confidence: i64,
    tlp: String,
    valid_until_ms: Option<Millis>,
    on_sensors: bool,
}

/// Marks a row removed and logs a `remove` when nothing else holds its value.
#[allow(clippy::too_many_arguments)]
fn remove_row(tx: &Transaction<'_>, id: i64, kind: &str, value: &str, on_sensors: bool, why: &str, now: Millis, out: &mut FeedApplied) -> StoreResult<()> {
    tx.prepare_cached("UPDATE feed_indicators SET removed_ms = ?1, removed_why = ?2 WHERE id = ?3")?.execute(params![now, why, id])?;
    out.removed += 1;
    if on_sensors && log_remove(tx, kind, value, 0, Holder::FeedRow(id), now)? {
        out.log_removes += 1;
    }
    Ok(())
}

pub(super) fn apply(tx: &Transaction<'_>, feed_id: i64, update: &FeedUpdate, allow: AllowView<'_>, now: Millis) -> StoreResult<FeedApplied> {
    let max_active: Option<i64> = tx.prepare_cached("SELECT max_active FROM feeds WHERE id = ?1")?.query_row([feed_id], |r| r.get(0)).optional()?;
    let Some(max_active) = max_active else { return Err(StoreError::NotFound(format!("feed {feed_id}"))) };
    let mut active: i64 =
        tx.prepare_cached("SELECT count(*) FROM feed_indicators WHERE feed_id = ?1 AND removed_ms IS NULL")?.query_row([feed_id], |r| r.get(0))?;
    let mut out = FeedApplied::default();
    for group in &update.groups {
        let existing: Vec<Row> = {
            let mut st = tx.prepare_cached(
                "SELECT id, source_ref, kind, value, confidence, tlp, valid_until_ms, on_sensors FROM feed_indicators \
                 WHERE feed_id = ?1 AND source_group = ?2 AND removed_ms IS NULL",
            )?;
            let rows = st
                .query_map(params![feed_id, group.group], |r| {
                    Ok(Row {
                        id: r.get(0)?,
                        source_ref: r.get(1)?,
                        kind: r.get(2)?,
                        value: r.get(3)?,
                        confidence: r.get(4)?,
                        tlp: r.get(5)?,
                        valid_until_ms: r.get(6)?,
                        on_sensors: r.get(7)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows
        };
        let wanted: HashMap<(&str, &str, &str), &crate::share::feeds::FeedItem> =
            group.items.iter().rev().map(|i| ((i.source_ref.as_str(), i.kind, i.value.as_str()), i)).collect();
        let mut kept: HashSet<(&str, &str, &str)> = HashSet::new();
        let mut gone: Vec<&Row> = Vec::new();
        for row in &existing {
            let key = (row.source_ref.as_str(), row.kind.as_str(), row.value.as_str());
            let Some(item) = wanted.get(&key) else {
                gone.push(row);
                continue;
            };
            if allow.covers_key(&format!("{}:{}", row.kind, row.value)) {
                gone.push(row);
                continue;
            }
            kept.insert((item.source_ref.as_str(), item.kind, item.value.as_str()));
            let on_sensors = item.tlp <= MAX_SENSOR_TLP;
            if (item.confidence, item.tlp.label(), item.valid_until_ms) != (row.confidence, row.tlp.as_str(), row.valid_until_ms) || on_sensors != row.on_sensors {
                tx.prepare_cached("UPDATE feed_indicators SET confidence = ?1, tlp = ?2, valid_until_ms = ?3, on_sensors = ?4 WHERE id = ?5")?
                    .execute(params![item.confidence, item.tlp.label(), item.valid_until_ms, on_sensors, row.id])?;
            }
            // A new version may move it between the sensors and the hub (its TLP changed).
            if on_sensors && !row.on_sensors {
                let (seq, logged) = log_add(tx, &row.kind, &row.value, now)?;
                tx.prepare_cached("UPDATE feed_indicators SET add_seq = ?1 WHERE id = ?2")?.execute(params![seq, row.id])?;
                out.log_adds += logged as usize;
            } else if !on_sensors && row.on_sensors && log_remove(tx, &row.kind, &row.value, 0, Holder::FeedRow(row.id), now)? {
                out.log_removes += 1;
            }
        }
        // New values first, removals after: a value that moves within the group stays live.
        active -= gone.len() as i64;
        let mut seen: HashSet<(&str, &str, &str)> = HashSet::new();
        for item in &group.items {
            let key = (item.source_ref.as_str(), item.kind, item.value.as_str());
            if kept.contains(&key) || !seen.insert(key) {
                continue;
            }
            if existing.iter().any(|r| (r.source_ref.as_str(), r.kind.as_str(), r.value.as_str()) == key) {
                continue; // allow-listed now: removed below
            }
            if allow.covers_key(&format!("{}:{}", item.kind, item.value)) {
                out.skipped_allow += 1;
                continue;
            }
            if active >= max_active {
                out.skipped_cap += 1;
                out.capped = true;
                continue;
            }
            let on_sensors = item.tlp <= MAX_SENSOR_TLP;
            let add_seq = if on_sensors {
                let (seq, logged) = log_add(tx, item.kind, &item.value, now)?;
                out.log_adds += logged as usize;
                Some(seq)
            } else {
                out.held_on_hub += 1;
                None
            };
            tx.prepare_cached(
                "INSERT INTO feed_indicators (feed_id, source_group, source_ref, kind, value, confidence, tlp, valid_until_ms, on_sensors, added_ms, add_seq) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![feed_id, group.group, item.source_ref, item.kind, item.value, item.confidence, item.tlp.label(), item.valid_until_ms, on_sensors, now, add_seq])?;
            out.added += 1;
            active += 1;
        }
        for row in gone {
            remove_row(tx, row.id, &row.kind, &row.value, row.on_sensors, "withdrawn by the feed", now, &mut out)?;
        }
    }
    if let Some(state) = &update.state {
        let text = serde_json::to_string(state).map_err(|e| StoreError::Invalid(format!("feed state: {e}")))?;
        tx.prepare_cached("UPDATE feeds SET state = ?1 WHERE id = ?2")?.execute(params![text, feed_id])?;
    }
    tx.prepare_cached("UPDATE feeds SET added_total = added_total + ?1, removed_total = removed_total + ?2, skipped_total = skipped_total + ?3 WHERE id = ?4")?
        .execute(params![out.added as i64, out.removed as i64, (out.skipped_allow + out.skipped_cap) as i64, feed_id])?;
    Ok(out)
}

pub(super) fn record_poll(tx: &Transaction<'_>, feed_id: i64, rec: &PollRecord, now: Millis) -> StoreResult<()> {
    let n = tx
        .prepare_cached(
            "UPDATE feeds SET last_poll_ms = ?1, last_ok_ms = CASE WHEN ?2 IS NULL THEN ?1 ELSE last_ok_ms END, last_error = ?2, \
             failures = CASE WHEN ?2 IS NULL THEN 0 ELSE failures + 1 END, capped = ?3, next_poll_ms = ?4 WHERE id = ?5",
        )?
        .execute(params![now, rec.error, rec.capped, rec.next_poll_ms, feed_id])?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("feed {feed_id}")));
    }
    Ok(())
}

pub(super) fn remove_feed(tx: &Transaction<'_>, feed_id: i64, now: Millis) -> StoreResult<FeedApplied> {
    if feed(tx, feed_id)?.is_none() {
        return Err(StoreError::NotFound(format!("feed {feed_id}")));
    }
    let rows: Vec<(i64, String, String, bool)> = {
        let mut st = tx.prepare("SELECT id, kind, value, on_sensors FROM feed_indicators WHERE feed_id = ?1 AND removed_ms IS NULL")?;
        let rows = st.query_map([feed_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?.collect::<Result<_, _>>()?;
        rows
    };
    let mut out = FeedApplied::default();
    for (id, kind, value, on_sensors) in rows {
        remove_row(tx, id, &kind, &value, on_sensors, "feed removed", now, &mut out)?;
    }
    tx.execute("DELETE FROM feed_indicators WHERE feed_id = ?1", [feed_id])?;
    tx.execute("DELETE FROM feeds WHERE id = ?1", [feed_id])?;
    Ok(out)
}

pub(super) fn expire(tx: &Transaction<'_>, now: Millis) -> StoreResult<FeedApplied> {
    let due: Vec<(i64, i64, String, String, bool)> = {
        let mut st = tx.prepare_cached(
            "SELECT id, feed_id, kind, value, on_sensors FROM feed_indicators \
             WHERE removed_ms IS NULL AND valid_until_ms IS NOT NULL AND valid_until_ms <= ?1 ORDER BY valid_until_ms LIMIT ?2",
        )?;
        let rows = st.query_map(params![now, MAX_EXPIRED_PER_PASS], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?.collect::<Result<_, _>>()?;
        rows
    };
    let mut out = FeedApplied::default();
    for (id, feed_id, kind, value, on_sensors) in due {
        remove_row(tx, id, &kind, &value, on_sensors, "expired", now, &mut out)?;
        tx.prepare_cached("UPDATE feeds SET removed_total = removed_total + 1 WHERE id = ?1")?.execute([feed_id])?;
    }
    Ok(out)
}

/// Withdraws the feed indicators a new allow-list entry covers (in its transaction); returns
/// the `remove` entries logged.
pub(super) fn withdraw_allowed(tx: &Transaction<'_>, entry: &AllowList, why: &str, now: Millis) -> StoreResult<usize> {
    let rows: Vec<(i64, i64, String, String, bool)> = {
        let mut st = tx.prepare("SELECT id, feed_id, kind, value, on_sensors FROM feed_indicators WHERE removed_ms IS NULL AND kind IN ('ip', 'net')")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let row: (i64, i64, String, String, bool) = row?;
            if entry.covers_key(&format!("{}:{}", row.2, row.3)) {
                out.push(row);
            }
        }
        out
    };
    let mut out = FeedApplied::default();
    for (id, feed_id, kind, value, on_sensors) in rows {
        remove_row(tx, id, &kind, &value, on_sensors, why, now, &mut out)?;
        tx.prepare_cached("UPDATE feeds SET removed_total = removed_total + 1 WHERE id = ?1")?.execute([feed_id])?;
    }
    Ok(out.log_removes)
}

pub(super) fn indicators(c: &Connection, feed_id: i64, limit: usize) -> StoreResult<Vec<FeedIndicator>> {
    let mut st = c.prepare_cached(
        "SELECT id, kind, value, source_group, source_ref, confidence, tlp, valid_until_ms, on_sensors, added_ms, add_seq FROM feed_indicators \
         WHERE feed_id = ?1 AND removed_ms IS NULL ORDER BY id LIMIT ?2",
    )?;
    let rows = st
        .query_map(params![feed_id, limit as i64], |r| {
            let tlp: String = r.get(6)?;
            Ok(FeedIndicator {
                id: r.get(0)?,
                kind: r.get(1)?,
                value: r.get(2)?,
                source_group: r.get(3)?,
                source_ref: r.get(4)?,
                confidence: r.get(5)?,
                tlp: tlp.parse().unwrap_or(ward_model::tlp::Tlp::Amber),
                valid_until_ms: r.get(7)?,
                on_sensors: r.get(8)?,
                added_ms: r.get(9)?,
                add_seq: r.get(10)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}
