//! What replicas share besides the data (docs/hub.md "Replicas"): job leases and the security
//! budgets (failed logins, failed enrollments, name probes).
//!
//! * A job lease is one row per job name. Taking it is one `INSERT … ON CONFLICT DO UPDATE …
//!   WHERE` that succeeds only when the row is absent, held by the same holder (a renewal) or
//!   expired; the row lock of the upsert makes two replicas racing for it agree on one winner.
//! * A limit record is one row per key. An update takes a transaction-scoped advisory lock per
//!   key (sorted, so two updates never wait on each other in a circle; absent rows cannot be
//!   row-locked), reads the rows, lets the caller's policy ([`crate::auth`]) decide and writes
//!   back: so parallel guesses sent to different replicas are counted one after the other.

use sha2::Digest;

use super::{Db, TxResult};
use crate::model::Millis;
use crate::store::LimitRecord;

/// Records one update reads at most (the callers use one or two keys).
pub const MAX_LIMIT_KEYS: usize = 8;
/// Rows deleted per pruning statement.
const PRUNE_LIMITS_CHUNK: i64 = 10_000;

pub(super) fn claim_job(db: &mut Db<'_>, name: &str, holder: &str, now: Millis, lease_ms: Millis) -> TxResult<bool> {
    let expires = now.saturating_add(lease_ms.max(0));
    let row = db.query_opt(
        "INSERT INTO job_leases (name, holder, acquired_ms, expires_ms) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name) DO UPDATE SET \
             acquired_ms = CASE WHEN job_leases.holder = EXCLUDED.holder THEN job_leases.acquired_ms ELSE EXCLUDED.acquired_ms END, \
             holder = EXCLUDED.holder, expires_ms = EXCLUDED.expires_ms \
         WHERE job_leases.holder = EXCLUDED.holder OR job_leases.expires_ms <= $3 \
         RETURNING 1",
        &[&name, &holder, &now, &expires],
    )?;
    Ok(row.is_some())
}

pub(super) fn release_job(db: &mut Db<'_>, name: &str, holder: &str) -> TxResult<()> {
    db.execute("DELETE FROM job_leases WHERE name = $1 AND holder = $2", &[&name, &holder])?;
    Ok(())
}

/// The advisory lock id of a limit key (the same key space as actor keys: a collision only
/// makes two transactions wait for each other).
fn limit_lock_id(key: &str) -> i64 {
    let digest = sha2::Sha256::digest(format!("ward limit record {key}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

pub(super) fn update_limits(
    db: &mut Db<'_>,
    keys: &[String],
    now: Millis,
    update: &mut dyn FnMut(&mut [Option<LimitRecord>]) -> bool,
) -> TxResult<()> {
    if keys.len() > MAX_LIMIT_KEYS {
        return Err(crate::error::StoreError::Invalid(format!("at most {MAX_LIMIT_KEYS} limit records per update")).into());
    }
    let mut locks: Vec<i64> = keys.iter().map(|k| limit_lock_id(k)).collect();
    locks.sort_unstable();
    locks.dedup();
    for id in locks {
        db.execute("SELECT pg_advisory_xact_lock($1)", &[&id])?;
    }
    let keys_param: Vec<&str> = keys.iter().map(String::as_str).collect();
    let rows = db.query("SELECT key, value, at_ms, expires_ms FROM limit_records WHERE key = ANY($1)", &[&keys_param])?;
    let mut records: Vec<Option<LimitRecord>> = vec![None; keys.len()];
    let mut stored = vec![false; keys.len()];
    for row in rows {
        let key: String = row.try_get(0)?;
        let record = LimitRecord { value: row.try_get(1)?, at_ms: row.try_get(2)?, expires_ms: row.try_get(3)? };
        for (i, k) in keys.iter().enumerate() {
            if *k == key {
                stored[i] = true;
                if record.expires_ms > now {
                    records[i] = Some(record);
                }
            }
        }
    }
    if !update(&mut records) {
        return Ok(());
    }
    for (i, key) in keys.iter().enumerate() {
        match records[i] {
            Some(r) => {
                db.execute(
                    "INSERT INTO limit_records (key, value, at_ms, expires_ms) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, at_ms = EXCLUDED.at_ms, expires_ms = EXCLUDED.expires_ms",
                    &[&key.as_str(), &r.value, &r.at_ms, &r.expires_ms],
                )?;
            }
            None if stored[i] => {
                db.execute("DELETE FROM limit_records WHERE key = $1", &[&key.as_str()])?;
            }
            None => {}
        }
    }
    Ok(())
}

/// Deletes one chunk of expired limit records; returns how many.
pub(super) fn prune_limits_chunk(db: &mut Db<'_>, now: Millis) -> TxResult<usize> {
    Ok(db.execute(
        "DELETE FROM limit_records WHERE key IN (SELECT key FROM limit_records WHERE expires_ms <= $1 LIMIT $2)",
        &[&now, &PRUNE_LIMITS_CHUNK],
    )? as usize)
}

pub(super) const PRUNE_LIMITS_CHUNK_ROWS: usize = PRUNE_LIMITS_CHUNK as usize;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_lock_ids_are_stable_and_distinct() {
        assert_eq!(limit_lock_id("source 192.0.2.1"), limit_lock_id("source 192.0.2.1"));
        assert_ne!(limit_lock_id("source 192.0.2.1"), limit_lock_id("account 192.0.2.1 analyst"));
    }
}
