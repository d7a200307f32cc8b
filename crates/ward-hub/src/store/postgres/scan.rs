//! The scanner's registry on PostgreSQL (the counterpart of `crate::assets::sql`): assets,
//! blackouts, results, reports and scan-job leases.
//!
//! A lease is taken with a conditional upsert (`ON CONFLICT … DO UPDATE … WHERE` the old lease
//! has run out): two workers claiming on two replicas at once cannot both win one jurisdiction;
//! the loser moves on to the next due one.

use super::{jurisdiction_exists, pg_text, Db, TxError, TxResult};
use crate::assets::{AssetKind, NewScanBlackout, ScanAsset, ScanBlackout, MAX_ASSETS};
use crate::error::StoreError;
use crate::model::Millis;

/// The stored kind of an asset (the inverse of `AssetKind::as_str`).
fn asset_kind(s: &str) -> AssetKind {
    match s {
        "address" => AssetKind::Address,
        "network" => AssetKind::Network,
        "domain" => AssetKind::Domain,
        _ => AssetKind::Hostname,
    }
}

pub(super) fn add_asset(db: &mut Db<'_>, jurisdiction_id: i64, kind: AssetKind, value: &str, now: Millis) -> TxResult<ScanAsset> {
    jurisdiction_exists(db, jurisdiction_id)?;
    let count: i64 = db.query_one("SELECT count(*) FROM scan_assets WHERE jurisdiction_id = $1", &[&jurisdiction_id])?.try_get(0)?;
    if count as usize >= MAX_ASSETS {
        return Err(StoreError::Invalid(format!("a jurisdiction may register at most {MAX_ASSETS} assets")).into());
    }
    let inserted = db.query_one(
        "INSERT INTO scan_assets (jurisdiction_id, kind, value, created_ms) VALUES ($1, $2, $3, $4) RETURNING id",
        &[&jurisdiction_id, &kind.as_str(), &pg_text(value), &now],
    );
    let id: i64 = match inserted {
        Ok(r) => r.try_get(0)?,
        Err(e) => {
            let e = TxError::from(e);
            return Err(match e.code() {
                Some(c) if *c == postgres::error::SqlState::UNIQUE_VIOLATION => StoreError::Conflict(format!("{value} is already registered")).into(),
                _ => e,
            });
        }
    };
    Ok(ScanAsset { id, jurisdiction_id, kind, value: value.to_string(), created_ms: now })
}

pub(super) fn assets(db: &mut Db<'_>, jurisdiction_id: i64) -> TxResult<Vec<ScanAsset>> {
    let rows = db.query("SELECT id, jurisdiction_id, kind, value, created_ms FROM scan_assets WHERE jurisdiction_id = $1 ORDER BY id", &[&jurisdiction_id])?;
    Ok(super::collect(rows, |r| {
        let kind: String = r.try_get(2)?;
        Ok(ScanAsset {
            id: r.try_get(0)?,
            jurisdiction_id: r.try_get(1)?,
            kind: asset_kind(&kind),
            value: r.try_get(3)?,
            created_ms: r.try_get(4)?,
        })
    })?)
}

pub(super) fn add_blackout(db: &mut Db<'_>, jurisdiction_id: i64, new: &NewScanBlackout, now: Millis) -> TxResult<ScanBlackout> {
    jurisdiction_exists(db, jurisdiction_id)?;
    let id: i64 = db
        .query_one(
            "INSERT INTO scan_blackouts (jurisdiction_id, starts_ms, ends_ms, reason, created_ms) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[&jurisdiction_id, &new.starts_ms, &new.ends_ms, &pg_text(&new.reason), &now],
        )?
        .try_get(0)?;
    Ok(ScanBlackout { id, jurisdiction_id, starts_ms: new.starts_ms, ends_ms: new.ends_ms, reason: new.reason.clone(), created_ms: now })
}

pub(super) fn blackouts(db: &mut Db<'_>, jurisdiction_id: i64) -> TxResult<Vec<ScanBlackout>> {
    let rows = db.query(
        "SELECT id, jurisdiction_id, starts_ms, ends_ms, reason, created_ms FROM scan_blackouts WHERE jurisdiction_id = $1 ORDER BY starts_ms, id",
        &[&jurisdiction_id],
    )?;
    Ok(super::collect(rows, |r| {
        Ok(ScanBlackout {
            id: r.try_get(0)?,
            jurisdiction_id: r.try_get(1)?,
            starts_ms: r.try_get(2)?,
            ends_ms: r.try_get(3)?,
            reason: r.try_get(4)?,
            created_ms: r.try_get(5)?,
        })
    })?)
}

/// Stores a result and releases the jurisdiction's lease.
pub(super) fn store_result(db: &mut Db<'_>, jurisdiction_id: i64, finished_ms: Millis, next_due_ms: Millis, body: &str, now: Millis) -> TxResult<i64> {
    jurisdiction_exists(db, jurisdiction_id)?;
    let id: i64 = db
        .query_one(
            "INSERT INTO scan_results (jurisdiction_id, finished_ms, received_ms, next_due_ms, body) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[&jurisdiction_id, &finished_ms, &now, &next_due_ms, &pg_text(body)],
        )?
        .try_get(0)?;
    db.execute("DELETE FROM scan_leases WHERE jurisdiction_id = $1", &[&jurisdiction_id])?;
    Ok(id)
}

pub(super) fn results(db: &mut Db<'_>, jurisdiction_id: i64) -> TxResult<Vec<String>> {
    let rows = db.query("SELECT body FROM scan_results WHERE jurisdiction_id = $1 ORDER BY finished_ms, id", &[&jurisdiction_id])?;
    Ok(rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?)
}

pub(super) fn put_report(db: &mut Db<'_>, jurisdiction_id: i64, html: &str, pdf: &[u8], now: Millis) -> TxResult<()> {
    jurisdiction_exists(db, jurisdiction_id)?;
    db.execute(
        "INSERT INTO scan_reports (jurisdiction_id, generated_ms, html, pdf) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (jurisdiction_id) DO UPDATE SET generated_ms = excluded.generated_ms, html = excluded.html, pdf = excluded.pdf",
        &[&jurisdiction_id, &now, &pg_text(html), &pdf],
    )?;
    Ok(())
}

pub(super) fn report(db: &mut Db<'_>, jurisdiction_id: i64) -> TxResult<Option<(Millis, String, Vec<u8>)>> {
    let row = db.query_opt("SELECT generated_ms, html, pdf FROM scan_reports WHERE jurisdiction_id = $1", &[&jurisdiction_id])?;
    Ok(row.map(|r| Ok::<_, postgres::Error>((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))).transpose()?)
}

/// Leases the first of `candidates` that is due, has assets, is not in blackout and is not
/// leased by another worker (see the module note for concurrent claims).
pub(super) fn claim(db: &mut Db<'_>, candidates: &[i64], worker: &str, now: Millis, lease_ms: Millis) -> TxResult<Option<i64>> {
    let rows = db.query(
        "SELECT j.id, coalesce((SELECT r.next_due_ms FROM scan_results r WHERE r.jurisdiction_id = j.id ORDER BY r.finished_ms DESC, r.id DESC LIMIT 1), 0) AS due \
         FROM unnest($1::bigint[]) AS j(id) \
         WHERE EXISTS (SELECT 1 FROM scan_assets a WHERE a.jurisdiction_id = j.id) \
           AND NOT EXISTS (SELECT 1 FROM scan_blackouts b WHERE b.jurisdiction_id = j.id AND b.starts_ms <= $2 AND b.ends_ms > $2) \
           AND NOT EXISTS (SELECT 1 FROM scan_leases l WHERE l.jurisdiction_id = j.id AND l.until_ms > $2)",
        &[&candidates, &now],
    )?;
    let mut due: Vec<(Millis, i64)> = Vec::new();
    for r in rows {
        let (id, next): (i64, Millis) = (r.try_get(0)?, r.try_get(1)?);
        if next <= now {
            due.push((next, id));
        }
    }
    due.sort_unstable();
    due.dedup();
    let until = now.saturating_add(lease_ms);
    for (_, id) in due {
        let won = db.query_opt(
            "INSERT INTO scan_leases (jurisdiction_id, worker, until_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (jurisdiction_id) DO UPDATE SET worker = excluded.worker, until_ms = excluded.until_ms WHERE scan_leases.until_ms <= $4 \
             RETURNING jurisdiction_id",
            &[&id, &pg_text(worker), &until, &now],
        )?;
        if won.is_some() {
            return Ok(Some(id));
        }
    }
    Ok(None)
}
