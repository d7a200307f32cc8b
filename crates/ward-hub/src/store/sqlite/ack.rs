//! The SQL of acknowledgements and escalation on SQLite (rules in [`crate::ack`]); the
//! counterpart of `store/postgres/ack.rs`.

use base64::Engine;
use rand::RngCore;
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::HUB_KEY_COLUMN;
use crate::ack::{Ack, EscalationPolicy, EscalationStep, NewAck, NextStep, WarningAck, KIND_STATE_UNACKED, KIND_UNACKED, MAX_PRIORITY};
use crate::error::StoreError;
use crate::model::Millis;
use crate::store::secrets::SecretKeys;
use crate::store::StoreResult;

pub(super) fn set_priority(tx: &Transaction<'_>, contact_id: i64, priority: i64) -> StoreResult<()> {
    if !(1..=MAX_PRIORITY).contains(&priority) {
        return Err(StoreError::Invalid(format!("a contact's priority is 1 (warned at once) to {MAX_PRIORITY}")));
    }
    if tx.execute("UPDATE contacts SET priority = ?1 WHERE id = ?2", params![priority, contact_id])? == 0 {
        return Err(StoreError::NotFound(format!("contact {contact_id}")));
    }
    Ok(())
}

pub(super) fn ack(tx: &Transaction<'_>, id: i64, new: &NewAck, now: Millis) -> StoreResult<Option<Ack>> {
    tx.prepare_cached(
        "UPDATE notifications SET acked_ms = coalesce(acked_ms, ?1), acked_by = coalesce(acked_by, ?2), \
         ack_action = coalesce(?3, ack_action), ack_note = coalesce(?4, ack_note) WHERE id = ?5",
    )?
    .execute(params![now, new.by, new.action.map(|a| a.as_str()), new.note, id])?;
    notification_ack(tx, id)
}

pub(super) fn notification_ack(c: &Connection, id: i64) -> StoreResult<Option<Ack>> {
    let row = c
        .prepare_cached("SELECT acked_ms, acked_by, ack_action, ack_note FROM notifications WHERE id = ?1 AND acked_ms IS NOT NULL")?
        .query_row([id], |r| Ok(Ack { notification_id: id, acked_ms: r.get(0)?, acked_by: r.get::<_, Option<String>>(1)?.unwrap_or_default(), action: r.get(2)?, note: r.get(3)? }))
        .optional()?;
    Ok(row)
}

const STEP_COLS: &str = "campaign_id, jurisdiction_id, step, kind, priority, told_jurisdiction_id, notifications, created_ms";

fn row_step(r: &rusqlite::Row<'_>) -> rusqlite::Result<EscalationStep> {
    Ok(EscalationStep {
        campaign_id: r.get(0)?,
        jurisdiction_id: r.get(1)?,
        step: r.get(2)?,
        kind: r.get(3)?,
        priority: r.get(4)?,
        told_jurisdiction_id: r.get(5)?,
        notifications: r.get(6)?,
        created_ms: r.get(7)?,
    })
}

pub(super) fn escalations(c: &Connection, campaign_id: i64, jurisdiction_id: i64) -> StoreResult<Vec<EscalationStep>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {STEP_COLS} FROM escalations WHERE campaign_id = ?1 AND (jurisdiction_id = ?2 OR told_jurisdiction_id = ?2) ORDER BY jurisdiction_id, step"
    ))?;
    let rows = st.query_map(params![campaign_id, jurisdiction_id], row_step)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

pub(super) fn escalation_of_notification(c: &Connection, notification_id: i64) -> StoreResult<Option<EscalationStep>> {
    let found: Option<(i64, String)> =
        c.prepare_cached("SELECT campaign_id, event_key FROM notifications WHERE id = ?1")?.query_row([notification_id], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
    let Some((campaign_id, (jurisdiction_id, step))) = found.and_then(|(c, key)| crate::ack::parse_escalation_key(&key).map(|k| (c, k))) else { return Ok(None) };
    Ok(c.prepare_cached(&format!("SELECT {STEP_COLS} FROM escalations WHERE campaign_id = ?1 AND jurisdiction_id = ?2 AND step = ?3"))?
        .query_row(params![campaign_id, jurisdiction_id, step], row_step)
        .optional()?)
}

/// Unacknowledged first warnings of open campaigns whose next step is due: (campaign,
/// jurisdiction, steps taken so far).
const DUE_WARNINGS: &str = "SELECT n.campaign_id, n.jurisdiction_id, \
       coalesce((SELECT max(e.step) FROM escalations e WHERE e.campaign_id = n.campaign_id AND e.jurisdiction_id = n.jurisdiction_id), 0) \
     FROM notifications n JOIN campaigns c ON c.id = n.campaign_id \
     WHERE n.event_key = 'targeted' AND n.created_ms >= ?1 AND c.status = 'open' \
       AND NOT EXISTS (SELECT 1 FROM notifications a WHERE a.campaign_id = n.campaign_id AND a.jurisdiction_id = n.jurisdiction_id AND a.acked_ms IS NOT NULL) \
       AND NOT EXISTS (SELECT 1 FROM escalations e WHERE e.campaign_id = n.campaign_id AND e.jurisdiction_id = n.jurisdiction_id AND e.kind = 'end') \
     GROUP BY n.campaign_id, n.jurisdiction_id \
     HAVING coalesce((SELECT max(e.created_ms) FROM escalations e WHERE e.campaign_id = n.campaign_id AND e.jurisdiction_id = n.jurisdiction_id), min(n.created_ms)) <= ?2 \
     ORDER BY min(n.created_ms) LIMIT ?3";

pub(super) fn escalate_due(tx: &Transaction<'_>, policy: &EscalationPolicy, now: Millis) -> StoreResult<Vec<EscalationStep>> {
    let due: Vec<(i64, i64, i64)> = tx
        .prepare_cached(DUE_WARNINGS)?
        .query_map(params![now - policy.horizon_ms, now - policy.after_ms, policy.limit as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for (campaign_id, jurisdiction_id, done) in due {
        let levels: Vec<i64> = tx
            .prepare_cached("SELECT DISTINCT priority FROM contacts WHERE jurisdiction_id = ?1 AND priority > 1 ORDER BY priority")?
            .query_map([jurisdiction_id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let parent: Option<i64> = tx
            .prepare_cached("SELECT parent_id FROM jurisdictions WHERE id = ?1")?
            .query_row([jurisdiction_id], |r| r.get::<_, Option<i64>>(0))
            .optional()?
            .flatten()
            .filter(|&p| p != jurisdiction_id);
        let (kind, priority, told, message_kind) = match crate::ack::next_step(&levels, parent, done) {
            NextStep::Contacts(p) => ("contact", Some(p), Some(jurisdiction_id), KIND_UNACKED),
            NextStep::State(s) => ("state", Some(1), Some(s), KIND_STATE_UNACKED),
            NextStep::End => ("end", None, None, ""),
        };
        let step = done + 1;
        let inserted: Option<i64> = tx
            .prepare_cached(
                "INSERT INTO escalations (campaign_id, jurisdiction_id, step, kind, priority, told_jurisdiction_id, created_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (campaign_id, jurisdiction_id, step) DO NOTHING RETURNING id",
            )?
            .query_row(params![campaign_id, jurisdiction_id, step, kind, priority, told, now], |r| r.get(0))
            .optional()?;
        let Some(row_id) = inserted else { continue };
        let mut notifications = 0i64;
        if let (Some(told), Some(p)) = (told, priority) {
            notifications = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO notifications (campaign_id, jurisdiction_id, contact_id, event_kind, event_key, status, next_attempt_ms, created_ms) \
                     SELECT ?1, ?2, id, ?3, ?4, 'pending', ?5, ?5 FROM contacts WHERE jurisdiction_id = ?2 AND priority = ?6 ORDER BY id",
                )?
                .execute(params![campaign_id, told, message_kind, crate::ack::escalation_key(jurisdiction_id, step), now, p])? as i64;
            tx.prepare_cached("UPDATE escalations SET notifications = ?1 WHERE id = ?2")?.execute(params![notifications, row_id])?;
        }
        out.push(EscalationStep {
            campaign_id,
            jurisdiction_id,
            step,
            kind: kind.to_string(),
            priority: if kind == "contact" { priority } else { None },
            told_jurisdiction_id: told,
            notifications,
            created_ms: now,
        });
    }
    Ok(out)
}

pub(super) fn warning_acks(c: &Connection, jurisdictions: Option<&[i64]>, since: Millis, limit: usize) -> StoreResult<Vec<WarningAck>> {
    // The list travels as one JSON array parameter (never formatted into the SQL).
    let ids = jurisdictions.map(|j| serde_json::to_string(j).unwrap_or_else(|_| "[]".into()));
    let mut st = c.prepare_cached(
        "SELECT n.campaign_id, n.jurisdiction_id, min(n.created_ms), \
           (SELECT min(a.acked_ms) FROM notifications a WHERE a.campaign_id = n.campaign_id AND a.jurisdiction_id = n.jurisdiction_id) \
         FROM notifications n \
         WHERE n.event_key = 'targeted' AND n.created_ms >= ?2 \
           AND (?1 IS NULL OR n.jurisdiction_id IN (SELECT value FROM json_each(?1))) \
         GROUP BY n.campaign_id, n.jurisdiction_id ORDER BY min(n.created_ms) DESC LIMIT ?3",
    )?;
    let rows = st
        .query_map(params![ids, since, limit as i64], |r| Ok(WarningAck { campaign_id: r.get(0)?, jurisdiction_id: r.get(1)?, warned_ms: r.get(2)?, acked_ms: r.get(3)? }))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The key, sealed in `hub_keys` with the store's secret keys; made when missing.
pub(super) fn hub_key(tx: &Transaction<'_>, keys: &SecretKeys, name: &str, now: Millis) -> StoreResult<Vec<u8>> {
    let existing: Option<String> = tx.prepare_cached("SELECT value FROM hub_keys WHERE name = ?1")?.query_row([name], |r| r.get(0)).optional()?;
    let stored = match existing {
        Some(v) => v,
        None => {
            let mut key = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut key);
            let sealed = keys.seal(HUB_KEY_COLUMN, &base64::engine::general_purpose::STANDARD.encode(key));
            tx.prepare_cached("INSERT INTO hub_keys (name, value, created_ms) VALUES (?1, ?2, ?3)")?.execute(params![name, sealed, now])?;
            sealed
        }
    };
    let plain = keys.open(HUB_KEY_COLUMN, &stored).map_err(|e| StoreError::Invalid(format!("the hub's key {name} cannot be opened: {e}")))?;
    base64::engine::general_purpose::STANDARD.decode(plain.trim()).map_err(|_| StoreError::Invalid(format!("the hub's key {name} is damaged")))
}
