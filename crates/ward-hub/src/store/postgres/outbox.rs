//! The notification outbox on PostgreSQL.
//!
//! A claim is a lease: due rows are selected `FOR UPDATE SKIP LOCKED` and their
//! `next_attempt_ms` moved to the end of the lease in the same statement, so two replicas (or
//! two workers of one) never claim the same notification, and one that dies leaves its claims
//! to the others once the lease has passed.

use postgres::Row;

use super::{collect, pg_text, row_contact, Db, TxResult};
use crate::model::*;
use crate::store::{AttemptOutcome, NotificationFilter};

/// Notifications listed when the filter gives no limit (as in SQLite).
const DEFAULT_LIST_LIMIT: usize = 500;

pub(super) fn claim(db: &mut Db<'_>, now: Millis, lease_ms: Millis, limit: usize) -> TxResult<Vec<NotificationJob>> {
    let rows = db.query(
        "WITH due AS ( \
           SELECT id, next_attempt_ms AS due_ms FROM notifications \
           WHERE status = 'pending' AND next_attempt_ms <= $1 ORDER BY next_attempt_ms LIMIT $2 FOR UPDATE SKIP LOCKED), \
         claimed AS ( \
           UPDATE notifications n SET next_attempt_ms = $3 FROM due WHERE n.id = due.id \
           RETURNING n.id, n.campaign_id, n.jurisdiction_id, n.event_kind, n.attempts, n.contact_id, due.due_ms) \
         SELECT claimed.id, claimed.campaign_id, claimed.jurisdiction_id, claimed.event_kind, claimed.attempts, \
                c.id, c.jurisdiction_id, c.channel, c.target, c.secret, c.created_ms, c.priority \
         FROM claimed JOIN contacts c ON c.id = claimed.contact_id ORDER BY claimed.due_ms, claimed.id",
        &[&now, &(limit as i64), &now.saturating_add(lease_ms)],
    )?;
    Ok(collect(rows, |r| {
        Ok(NotificationJob {
            id: r.try_get(0)?,
            campaign_id: r.try_get(1)?,
            jurisdiction_id: r.try_get(2)?,
            event_kind: r.try_get(3)?,
            attempts: r.try_get(4)?,
            contact: row_contact(r, 5)?,
        })
    })?)
}

pub(super) fn record_attempts(db: &mut Db<'_>, attempts: &[(i64, AttemptOutcome, Millis)]) -> TxResult<()> {
    for (notification_id, outcome, now) in attempts {
        db.execute(
            "INSERT INTO delivery_attempts (notification_id, ts_ms, ok, duration_ms, detail) VALUES ($1, $2, $3, $4, $5)",
            &[notification_id, now, &outcome.ok, &outcome.duration_ms, &pg_text(&outcome.detail)],
        )?;
        if outcome.ok {
            db.execute(
                "UPDATE notifications SET status = 'delivered', attempts = attempts + 1, delivered_ms = $1, payload = $2, last_error = NULL WHERE id = $3",
                &[now, &outcome.payload.as_deref().map(pg_text), notification_id],
            )?;
        } else {
            let (status, next) = match outcome.retry_at {
                Some(t) => ("pending", t),
                None => ("failed", *now),
            };
            db.execute(
                "UPDATE notifications SET status = $1, attempts = attempts + 1, next_attempt_ms = $2, last_error = $3 WHERE id = $4",
                &[&status, &next, &pg_text(&outcome.detail), notification_id],
            )?;
        }
    }
    Ok(())
}

const NOTIFICATION_COLS: &str = "n.id, n.campaign_id, n.jurisdiction_id, n.contact_id, c.target, c.channel, n.event_kind, n.status, n.attempts, n.created_ms, n.delivered_ms, n.last_error";

fn row_notification(r: &Row) -> Result<NotificationRecord, postgres::Error> {
    let ch: String = r.try_get(5)?;
    Ok(NotificationRecord {
        id: r.try_get(0)?,
        campaign_id: r.try_get(1)?,
        jurisdiction_id: r.try_get(2)?,
        contact_id: r.try_get(3)?,
        target: r.try_get(4)?,
        channel: Channel::parse(&ch).unwrap_or(Channel::Webhook),
        event_kind: r.try_get(6)?,
        status: r.try_get(7)?,
        attempts: r.try_get(8)?,
        created_ms: r.try_get(9)?,
        delivered_ms: r.try_get(10)?,
        last_error: r.try_get(11)?,
    })
}

pub(super) fn notifications(db: &mut Db<'_>, f: &NotificationFilter) -> TxResult<Vec<NotificationRecord>> {
    let limit = if f.limit == 0 { DEFAULT_LIST_LIMIT } else { f.limit } as i64;
    let rows = db.query(
        &format!(
            "SELECT {NOTIFICATION_COLS} FROM notifications n JOIN contacts c ON c.id = n.contact_id \
             WHERE ($1::bigint IS NULL OR n.jurisdiction_id = $1 OR ($4 AND n.jurisdiction_id IN (SELECT id FROM jurisdictions WHERE parent_id = $1))) \
             AND ($2::bigint IS NULL OR n.campaign_id = $2) ORDER BY n.id DESC LIMIT $3"
        ),
        &[&f.jurisdiction_id, &f.campaign_id, &limit, &f.include_children],
    )?;
    Ok(collect(rows, row_notification)?)
}

pub(super) fn notification(db: &mut Db<'_>, id: i64) -> TxResult<Option<NotificationRecord>> {
    let row = db.query_opt(&format!("SELECT {NOTIFICATION_COLS} FROM notifications n JOIN contacts c ON c.id = n.contact_id WHERE n.id = $1"), &[&id])?;
    Ok(row.as_ref().map(row_notification).transpose()?)
}

pub(super) fn delivery_attempts(db: &mut Db<'_>, notification_id: i64) -> TxResult<Vec<DeliveryAttempt>> {
    let rows = db.query(
        "SELECT notification_id, ts_ms, ok, duration_ms, detail FROM delivery_attempts WHERE notification_id = $1 ORDER BY id",
        &[&notification_id],
    )?;
    Ok(collect(rows, |r| {
        Ok(DeliveryAttempt { notification_id: r.try_get(0)?, ts_ms: r.try_get(1)?, ok: r.try_get(2)?, duration_ms: r.try_get(3)?, detail: r.try_get(4)? })
    })?)
}
