//! The SQL of acknowledgements and escalation on PostgreSQL (rules in [`crate::ack`]); the
//! counterpart of `store/sqlite/ack.rs`. An escalation step's row is inserted with
//! `ON CONFLICT DO NOTHING` in the transaction that enqueues its notifications, so two replicas
//! (or a replica and the CLI) taking the same step at once take it once; the job's lease makes
//! that rare. The links' key is kept as this store keeps webhook secrets (not sealed: the
//! store has no key file yet).

use base64::Engine;
use rand::RngCore;

use super::{collect, pg_text, Db, TxResult};
use crate::ack::{Ack, EscalationPolicy, EscalationStep, NewAck, NextStep, WarningAck, KIND_STATE_UNACKED, KIND_UNACKED, MAX_PRIORITY};
use crate::error::StoreError;
use crate::model::Millis;

pub(super) fn set_priority(db: &mut Db<'_>, contact_id: i64, priority: i64) -> TxResult<()> {
    if !(1..=MAX_PRIORITY).contains(&priority) {
        return Err(StoreError::Invalid(format!("a contact's priority is 1 (warned at once) to {MAX_PRIORITY}")).into());
    }
    if db.execute("UPDATE contacts SET priority = $1 WHERE id = $2", &[&priority, &contact_id])? == 0 {
        return Err(StoreError::NotFound(format!("contact {contact_id}")).into());
    }
    Ok(())
}

pub(super) fn ack(db: &mut Db<'_>, id: i64, new: &NewAck, now: Millis) -> TxResult<Option<Ack>> {
    let action = new.action.map(|a| a.as_str());
    let note = new.note.as_deref().map(pg_text);
    db.execute(
        "UPDATE notifications SET acked_ms = coalesce(acked_ms, $1), acked_by = coalesce(acked_by, $2), \
         ack_action = coalesce($3, ack_action), ack_note = coalesce($4, ack_note) WHERE id = $5",
        &[&now, &pg_text(&new.by), &action, &note, &id],
    )?;
    notification_ack(db, id)
}

pub(super) fn notification_ack(db: &mut Db<'_>, id: i64) -> TxResult<Option<Ack>> {
    let row = db.query_opt("SELECT acked_ms, acked_by, ack_action, ack_note FROM notifications WHERE id = $1 AND acked_ms IS NOT NULL", &[&id])?;
    Ok(match row {
        Some(r) => Some(Ack {
            notification_id: id,
            acked_ms: r.try_get(0)?,
            acked_by: r.try_get::<_, Option<String>>(1)?.unwrap_or_default(),
            action: r.try_get(2)?,
            note: r.try_get(3)?,
        }),
        None => None,
    })
}

const STEP_COLS: &str = "campaign_id, jurisdiction_id, step, kind, priority, told_jurisdiction_id, notifications, created_ms";

fn row_step(r: &::postgres::Row) -> Result<EscalationStep, ::postgres::Error> {
    Ok(EscalationStep {
        campaign_id: r.try_get(0)?,
        jurisdiction_id: r.try_get(1)?,
        step: r.try_get(2)?,
        kind: r.try_get(3)?,
        priority: r.try_get(4)?,
        told_jurisdiction_id: r.try_get(5)?,
        notifications: r.try_get(6)?,
        created_ms: r.try_get(7)?,
    })
}

pub(super) fn escalations(db: &mut Db<'_>, campaign_id: i64, jurisdiction_id: i64) -> TxResult<Vec<EscalationStep>> {
    let rows = db.query(
        &format!("SELECT {STEP_COLS} FROM escalations WHERE campaign_id = $1 AND (jurisdiction_id = $2 OR told_jurisdiction_id = $2) ORDER BY jurisdiction_id, step"),
        &[&campaign_id, &jurisdiction_id],
    )?;
    Ok(collect(rows, row_step)?)
}

pub(super) fn escalation_of_notification(db: &mut Db<'_>, notification_id: i64) -> TxResult<Option<EscalationStep>> {
    let Some(r) = db.query_opt("SELECT campaign_id, event_key FROM notifications WHERE id = $1", &[&notification_id])? else { return Ok(None) };
    let (campaign_id, key): (i64, String) = (r.try_get(0)?, r.try_get(1)?);
    let Some((jurisdiction_id, step)) = crate::ack::parse_escalation_key(&key) else { return Ok(None) };
    let row = db.query_opt(&format!("SELECT {STEP_COLS} FROM escalations WHERE campaign_id = $1 AND jurisdiction_id = $2 AND step = $3"), &[&campaign_id, &jurisdiction_id, &step])?;
    Ok(match row {
        Some(r) => Some(row_step(&r)?),
        None => None,
    })
}

/// Unacknowledged first warnings of open campaigns whose next step is due (see the SQLite
/// counterpart).
const DUE_WARNINGS: &str = "SELECT n.campaign_id, n.jurisdiction_id, \
       coalesce((SELECT max(e.step) FROM escalations e WHERE e.campaign_id = n.campaign_id AND e.jurisdiction_id = n.jurisdiction_id), 0) \
     FROM notifications n JOIN campaigns c ON c.id = n.campaign_id \
     WHERE n.event_key = 'targeted' AND n.created_ms >= $1 AND c.status = 'open' \
       AND NOT EXISTS (SELECT 1 FROM notifications a WHERE a.campaign_id = n.campaign_id AND a.jurisdiction_id = n.jurisdiction_id AND a.acked_ms IS NOT NULL) \
       AND NOT EXISTS (SELECT 1 FROM escalations e WHERE e.campaign_id = n.campaign_id AND e.jurisdiction_id = n.jurisdiction_id AND e.kind = 'end') \
     GROUP BY n.campaign_id, n.jurisdiction_id \
     HAVING coalesce((SELECT max(e.created_ms) FROM escalations e WHERE e.campaign_id = n.campaign_id AND e.jurisdiction_id = n.jurisdiction_id), min(n.created_ms)) <= $2 \
     ORDER BY min(n.created_ms) LIMIT $3";

pub(super) fn escalate_due(db: &mut Db<'_>, policy: &EscalationPolicy, now: Millis) -> TxResult<Vec<EscalationStep>> {
    let rows = db.query(DUE_WARNINGS, &[&(now - policy.horizon_ms), &(now - policy.after_ms), &(policy.limit as i64)])?;
    let due: Vec<(i64, i64, i64)> = collect(rows, |r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))?;
    let mut out = Vec::new();
    for (campaign_id, jurisdiction_id, done) in due {
        let levels: Vec<i64> =
            collect(db.query("SELECT DISTINCT priority FROM contacts WHERE jurisdiction_id = $1 AND priority > 1 ORDER BY priority", &[&jurisdiction_id])?, |r| r.try_get(0))?;
        let parent: Option<i64> = match db.query_opt("SELECT parent_id FROM jurisdictions WHERE id = $1", &[&jurisdiction_id])? {
            Some(r) => r.try_get::<_, Option<i64>>(0)?.filter(|&p| p != jurisdiction_id),
            None => None,
        };
        let (kind, priority, told, message_kind) = match crate::ack::next_step(&levels, parent, done) {
            NextStep::Contacts(p) => ("contact", Some(p), Some(jurisdiction_id), KIND_UNACKED),
            NextStep::State(s) => ("state", Some(1i64), Some(s), KIND_STATE_UNACKED),
            NextStep::End => ("end", None, None, ""),
        };
        let step = done + 1;
        let inserted = db.query_opt(
            "INSERT INTO escalations (campaign_id, jurisdiction_id, step, kind, priority, told_jurisdiction_id, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (campaign_id, jurisdiction_id, step) DO NOTHING RETURNING id",
            &[&campaign_id, &jurisdiction_id, &step, &kind, &priority, &told, &now],
        )?;
        let Some(inserted) = inserted else { continue };
        let row_id: i64 = inserted.try_get(0)?;
        let mut notifications = 0i64;
        if let (Some(told), Some(p)) = (told, priority) {
            notifications = db.execute(
                "INSERT INTO notifications (campaign_id, jurisdiction_id, contact_id, event_kind, event_key, status, next_attempt_ms, created_ms) \
                 SELECT $1, $2, id, $3, $4, 'pending', $5, $5 FROM contacts WHERE jurisdiction_id = $2 AND priority = $6 ORDER BY id \
                 ON CONFLICT (contact_id, campaign_id, event_key) DO NOTHING",
                &[&campaign_id, &told, &message_kind, &crate::ack::escalation_key(jurisdiction_id, step), &now, &p],
            )? as i64;
            db.execute("UPDATE escalations SET notifications = $1 WHERE id = $2", &[&notifications, &row_id])?;
            if notifications > 0 {
                db.notify_outbox()?;
            }
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

pub(super) fn warning_acks(db: &mut Db<'_>, jurisdictions: Option<&[i64]>, since: Millis, limit: usize) -> TxResult<Vec<WarningAck>> {
    let ids: Option<Vec<i64>> = jurisdictions.map(<[i64]>::to_vec);
    let rows = db.query(
        "SELECT n.campaign_id, n.jurisdiction_id, min(n.created_ms), \
           (SELECT min(a.acked_ms) FROM notifications a WHERE a.campaign_id = n.campaign_id AND a.jurisdiction_id = n.jurisdiction_id) \
         FROM notifications n \
         WHERE n.event_key = 'targeted' AND n.created_ms >= $2 AND ($1::bigint[] IS NULL OR n.jurisdiction_id = ANY($1)) \
         GROUP BY n.campaign_id, n.jurisdiction_id ORDER BY min(n.created_ms) DESC LIMIT $3",
        &[&ids, &since, &(limit as i64)],
    )?;
    Ok(collect(rows, |r| Ok(WarningAck { campaign_id: r.try_get(0)?, jurisdiction_id: r.try_get(1)?, warned_ms: r.try_get(2)?, acked_ms: r.try_get(3)? }))?)
}

pub(super) fn hub_key(db: &mut Db<'_>, name: &str, now: Millis) -> TxResult<Vec<u8>> {
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    let fresh = base64::engine::general_purpose::STANDARD.encode(key);
    db.execute("INSERT INTO hub_keys (name, value, created_ms) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING", &[&name, &fresh, &now])?;
    let stored: String = db.query_one("SELECT value FROM hub_keys WHERE name = $1", &[&name])?.try_get(0)?;
    Ok(base64::engine::general_purpose::STANDARD
        .decode(stored.trim())
        .map_err(|_| StoreError::Invalid(format!("the hub's key {name} is damaged")))?)
}
