//! The SQL of drill jurisdictions on SQLite (policy in [`crate::drill`]); the counterpart of
//! `store/postgres/drill.rs`. The purge is one list of deletes run in one transaction, children
//! before parents; it looks the drill jurisdictions up afresh in each statement, so what it
//! deletes is exactly what belongs to the jurisdictions flagged `drill` when it ran.

use rusqlite::{params, Transaction};

use super::{withdraw_indicators, SqliteStore, JURISDICTION_COLS};
use crate::drill::DrillPurge;
use crate::error::StoreError;
use crate::model::{Jurisdiction, Millis};
use crate::store::StoreResult;

const D: &str = "(SELECT id FROM jurisdictions WHERE drill = 1)";

/// Where each delete's count goes.
#[derive(Clone, Copy)]
enum Count {
    Notifications,
    Users,
    Contacts,
    Sensors,
    Events,
    Sightings,
    ContactRecords,
    RetroHits,
    ApiKeys,
    Other,
}

fn add(p: &mut DrillPurge, c: Count, n: usize) {
    let n = n as u64;
    let slot = match c {
        Count::Notifications => &mut p.notifications,
        Count::Users => &mut p.users,
        Count::Contacts => &mut p.contacts,
        Count::Sensors => &mut p.sensors,
        Count::Events => &mut p.events,
        Count::Sightings => &mut p.sightings,
        Count::ContactRecords => &mut p.contact_records,
        Count::RetroHits => &mut p.retro_hits,
        Count::ApiKeys => &mut p.api_keys,
        Count::Other => &mut p.other_rows,
    };
    *slot += n;
}

/// The deletes of rows that belong to drill jurisdictions, children before parents.
fn member_deletes() -> Vec<(Count, String)> {
    let s = format!("(SELECT id FROM sensors WHERE jurisdiction_id IN {D})");
    let ct = format!("(SELECT id FROM contacts WHERE jurisdiction_id IN {D})");
    let n = format!("(SELECT id FROM notifications WHERE jurisdiction_id IN {D} OR contact_id IN {ct})");
    let u = format!("(SELECT id FROM users WHERE jurisdiction_id IN {D})");
    let r = format!("(SELECT id FROM disinfo_reports WHERE jurisdiction_id IN {D})");
    let empty = "(SELECT c.id FROM disinfo_cases c WHERE NOT EXISTS (SELECT 1 FROM disinfo_reports dr WHERE dr.case_id = c.id))".to_string();
    vec![
        (Count::Other, format!("DELETE FROM delivery_attempts WHERE notification_id IN {n}")),
        (Count::Notifications, format!("DELETE FROM notifications WHERE id IN {n}")),
        (Count::Other, format!("DELETE FROM escalations WHERE jurisdiction_id IN {D} OR told_jurisdiction_id IN {D}")),
        // Disinformation reports drill jurisdictions filed (`ward drill`'s disinformation
        // injects), their links, and cases left without a report.
        (Count::Other, format!("DELETE FROM disinfo_report_screenshots WHERE report_id IN {r}")),
        (Count::Other, format!("DELETE FROM disinfo_report_urls WHERE report_id IN {r}")),
        (Count::Other, format!("DELETE FROM disinfo_report_jurisdictions WHERE report_id IN {r} OR jurisdiction_id IN {D}")),
        (Count::Other, format!("DELETE FROM disinfo_reports WHERE id IN {r}")),
        (Count::Other, format!("DELETE FROM disinfo_case_bands WHERE case_id IN {empty}")),
        (Count::Other, format!("DELETE FROM disinfo_case_log WHERE case_id IN {empty}")),
        (Count::Other, format!("DELETE FROM disinfo_report_urls WHERE case_id IN {empty}")),
        (Count::Other, format!("DELETE FROM disinfo_report_jurisdictions WHERE case_id IN {empty}")),
        (Count::Other, format!("DELETE FROM disinfo_cases WHERE id IN {empty}")),
        (Count::Other, "DELETE FROM disinfo_screenshots WHERE sha256 NOT IN (SELECT sha256 FROM disinfo_report_screenshots)".to_string()),
        (Count::Other, format!("DELETE FROM sessions WHERE user_id IN {u}")),
        (Count::Users, format!("DELETE FROM users WHERE id IN {u}")),
        (Count::Contacts, format!("DELETE FROM contacts WHERE jurisdiction_id IN {D}")),
        (Count::Other, format!("DELETE FROM batches WHERE sensor_id IN {s}")),
        (Count::Other, format!("DELETE FROM sensor_trust WHERE sensor_id IN {s}")),
        (Count::Other, format!("DELETE FROM trust_anomalies WHERE jurisdiction_id IN {D} OR sensor_id IN {s}")),
        (Count::Other, format!("DELETE FROM enrollment_tokens WHERE jurisdiction_id IN {D}")),
        (Count::Sensors, format!("DELETE FROM sensors WHERE jurisdiction_id IN {D}")),
        (Count::Events, format!("DELETE FROM events WHERE jurisdiction_id IN {D}")),
        (Count::Sightings, format!("DELETE FROM sightings WHERE jurisdiction_id IN {D}")),
        (Count::ContactRecords, format!("DELETE FROM contact_records WHERE jurisdiction_id IN {D}")),
        (Count::Other, format!("DELETE FROM retro_late WHERE jurisdiction_id IN {D}")),
        (Count::RetroHits, format!("DELETE FROM retro_hits WHERE jurisdiction_id IN {D}")),
        (Count::Other, format!("DELETE FROM scan_assets WHERE jurisdiction_id IN {D}")),
        (Count::Other, format!("DELETE FROM scan_blackouts WHERE jurisdiction_id IN {D}")),
        (Count::Other, format!("DELETE FROM scan_results WHERE jurisdiction_id IN {D}")),
        (Count::Other, format!("DELETE FROM scan_reports WHERE jurisdiction_id IN {D}")),
        (Count::Other, format!("DELETE FROM scan_leases WHERE jurisdiction_id IN {D}")),
        (Count::ApiKeys, format!("DELETE FROM api_keys WHERE jurisdiction_id IN {D}")),
        (Count::Other, format!("DELETE FROM taxii_objects WHERE jurisdiction_id IN {D}")),
        (Count::Other, format!("DELETE FROM campaign_log WHERE jurisdiction_id IN {D}")),
        (Count::Other, format!("DELETE FROM campaign_jurisdictions WHERE jurisdiction_id IN {D}")),
    ]
}

/// The deletes of one campaign left with no jurisdiction (`?1`).
const CAMPAIGN_DELETES: &[(Count, &str)] = &[
    (Count::Other, "DELETE FROM delivery_attempts WHERE notification_id IN (SELECT id FROM notifications WHERE campaign_id = ?1)"),
    (Count::Notifications, "DELETE FROM notifications WHERE campaign_id = ?1"),
    (Count::RetroHits, "DELETE FROM retro_hits WHERE campaign_id = ?1"),
    (Count::Other, "DELETE FROM escalations WHERE campaign_id = ?1"),
    (Count::Other, "DELETE FROM campaign_keys WHERE campaign_id = ?1"),
    (Count::Other, "DELETE FROM campaign_log WHERE campaign_id = ?1"),
    (Count::Other, "DELETE FROM campaign_jurisdictions WHERE campaign_id = ?1"),
];

pub(super) fn set_drill(tx: &Transaction<'_>, id: i64, drill: bool) -> StoreResult<Jurisdiction> {
    if tx.execute("UPDATE jurisdictions SET drill = ?1 WHERE id = ?2", params![drill, id])? == 0 {
        return Err(StoreError::NotFound(format!("jurisdiction {id}")));
    }
    Ok(tx.query_row(&format!("SELECT {JURISDICTION_COLS} FROM jurisdictions WHERE id = ?1"), [id], super::row_jurisdiction)?)
}

fn purge(tx: &Transaction<'_>, now: Millis) -> StoreResult<DrillPurge> {
    let mut out = DrillPurge::default();
    // The campaigns drill jurisdictions are in, before their membership goes.
    let touched: Vec<i64> = {
        let mut st = tx.prepare(&format!("SELECT DISTINCT campaign_id FROM campaign_jurisdictions WHERE jurisdiction_id IN {D} ORDER BY campaign_id"))?;
        let rows = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        rows
    };
    let allow: usize = tx.query_row(&format!("SELECT count(*) FROM allow_entries WHERE jurisdiction_id IN {D}"), [], |r| r.get(0))?;
    if allow > 0 {
        tx.execute(&format!("DELETE FROM allow_entries WHERE jurisdiction_id IN {D}"), [])?;
        tx.execute("UPDATE trust_state SET allow_version = allow_version + 1 WHERE id = 1", [])?;
        out.other_rows += allow as u64;
    }
    for (count, sql) in member_deletes() {
        let n = tx.execute(&sql, [])?;
        add(&mut out, count, n);
    }
    // Campaigns left with no jurisdiction, and campaigns merged into them (which have none).
    let mut empty: Vec<i64> = Vec::new();
    for id in touched {
        let members: i64 = tx.query_row("SELECT count(*) FROM campaign_jurisdictions WHERE campaign_id = ?1", [id], |r| r.get(0))?;
        if members == 0 {
            empty.push(id);
        }
    }
    let mut i = 0;
    while i < empty.len() {
        let merged: Vec<i64> = {
            let mut st = tx.prepare_cached(
                "SELECT id FROM campaigns c WHERE merged_into = ?1 AND NOT EXISTS (SELECT 1 FROM campaign_jurisdictions WHERE campaign_id = c.id)",
            )?;
            let rows = st.query_map([empty[i]], |r| r.get(0))?.collect::<Result<_, _>>()?;
            rows
        };
        for m in merged {
            if !empty.contains(&m) {
                empty.push(m);
            }
        }
        i += 1;
    }
    for id in &empty {
        // What a confirmed drill campaign put on every sensor's list comes off it.
        out.indicators_withdrawn += withdraw_indicators(tx, *id, now)? as u64;
        for (count, sql) in CAMPAIGN_DELETES {
            let n = tx.prepare_cached(sql)?.execute([id])?;
            add(&mut out, *count, n);
        }
        out.campaigns += tx.prepare_cached("DELETE FROM campaigns WHERE id = ?1")?.execute([id])? as u64;
    }
    // A real county registered under a drill state (same code) no longer belongs to it.
    tx.execute(&format!("UPDATE jurisdictions SET parent_id = NULL WHERE drill = 0 AND parent_id IN {D}"), [])?;
    // Drill jurisdictions that name another as parent go in any order: unlink them first.
    tx.execute("UPDATE jurisdictions SET parent_id = NULL WHERE drill = 1", [])?;
    out.jurisdictions = tx.execute("DELETE FROM jurisdictions WHERE drill = 1", [])? as u64;
    Ok(out)
}

pub(super) fn purge_drill(store: &SqliteStore, now: Millis, apply: bool) -> StoreResult<DrillPurge> {
    let mut conn = store.writer.lock().map_err(|_| StoreError::Database("writer lock poisoned".into()))?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let out = purge(&tx, now)?;
    if apply {
        tx.commit()?;
    } else {
        tx.rollback()?;
    }
    Ok(out)
}
