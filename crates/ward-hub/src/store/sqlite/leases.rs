//! Job leases in the embedded store (docs/hub.md "Replicas"). One process uses a SQLite store,
//! so a lease only ever meets its own holder; it is kept so both stores run the background jobs
//! the same way (and so a second `ward hub serve` started on the same directory by mistake does
//! not prune or hunt alongside the first). Shared limits stay in process memory here.

use rusqlite::{params, OptionalExtension, Transaction};

use crate::model::Millis;
use crate::store::StoreResult;

/// Takes or renews the lease (see [`crate::store::Store::claim_job`]).
pub(super) fn claim_job(tx: &Transaction<'_>, name: &str, holder: &str, now: Millis, lease_ms: Millis) -> StoreResult<bool> {
    let expires = now.saturating_add(lease_ms.max(0));
    let taken: Option<i64> = tx
        .prepare_cached(
            "INSERT INTO job_leases (name, holder, acquired_ms, expires_ms) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (name) DO UPDATE SET \
                 acquired_ms = CASE WHEN job_leases.holder = excluded.holder THEN job_leases.acquired_ms ELSE excluded.acquired_ms END, \
                 holder = excluded.holder, expires_ms = excluded.expires_ms \
             WHERE job_leases.holder = excluded.holder OR job_leases.expires_ms <= ?3 \
             RETURNING 1",
        )?
        .query_row(params![name, holder, now, expires], |r| r.get(0))
        .optional()?;
    Ok(taken.is_some())
}

pub(super) fn release_job(tx: &Transaction<'_>, name: &str, holder: &str) -> StoreResult<()> {
    tx.prepare_cached("DELETE FROM job_leases WHERE name = ?1 AND holder = ?2")?.execute(params![name, holder])?;
    Ok(())
}
