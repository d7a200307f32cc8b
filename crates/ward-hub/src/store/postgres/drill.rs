//! The SQL of drill jurisdictions on PostgreSQL (policy in [`crate::drill`]); the counterpart
//! of `store/sqlite/drill.rs`. The purge takes the correlation lock, so no ingest correlates
//! into a drill campaign while it goes; it looks the drill jurisdictions up afresh in each
//! statement, so what it deletes is exactly what belongs to the jurisdictions flagged `drill`.

use super::ingest::withdraw_indicators;
use super::registry::{row_jurisdiction, JURISDICTION_BY_ID};
use super::{Db, PgStore, TxResult};
use crate::drill::DrillPurge;
use crate::error::StoreError;
use crate::model::{Jurisdiction, Millis};
use crate::store::StoreResult;

const D: &str = "(SELECT id FROM jurisdictions WHERE drill)";

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

/// The deletes of one campaign left with no jurisdiction (`$1`).
const CAMPAIGN_DELETES: &[(Count, &str)] = &[
    (Count::Other, "DELETE FROM delivery_attempts WHERE notification_id IN (SELECT id FROM notifications WHERE campaign_id = $1)"),
    (Count::Notifications, "DELETE FROM notifications WHERE campaign_id = $1"),
    (Count::RetroHits, "DELETE FROM retro_hits WHERE campaign_id = $1"),
    (Count::Other, "DELETE FROM escalations WHERE campaign_id = $1"),
    (Count::Other, "DELETE FROM campaign_keys WHERE campaign_id = $1"),
    (Count::Other, "DELETE FROM campaign_log WHERE campaign_id = $1"),
    (Count::Other, "DELETE FROM campaign_jurisdictions WHERE campaign_id = $1"),
];

pub(super) fn set_drill(db: &mut Db<'_>, id: i64, drill: bool) -> TxResult<Jurisdiction> {
    if db.execute("UPDATE jurisdictions SET drill = $1 WHERE id = $2", &[&drill, &id])? == 0 {
        return Err(StoreError::NotFound(format!("jurisdiction {id}")).into());
    }
    Ok(row_jurisdiction(&db.query_one(JURISDICTION_BY_ID, &[&id])?)?)
}

fn ids(rows: Vec<::postgres::Row>) -> TxResult<Vec<i64>> {
    Ok(rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?)
}

fn purge(db: &mut Db<'_>, now: Millis) -> TxResult<DrillPurge> {
    super::trust::lock_correlation(db)?;
    let mut out = DrillPurge::default();
    // The campaigns drill jurisdictions are in, before their membership goes.
    let touched = ids(db.query(&format!("SELECT DISTINCT campaign_id FROM campaign_jurisdictions WHERE jurisdiction_id IN {D} ORDER BY campaign_id"), &[])?)?;
    let allow = db.execute(&format!("DELETE FROM allow_entries WHERE jurisdiction_id IN {D}"), &[])?;
    if allow > 0 {
        db.execute("UPDATE trust_state SET allow_version = allow_version + 1 WHERE id = 1", &[])?;
        out.other_rows += allow;
    }
    for (count, sql) in member_deletes() {
        let n = db.execute(&sql, &[])?;
        add(&mut out, count, n as usize);
    }
    // Campaigns left with no jurisdiction, and campaigns merged into them (which have none).
    let mut empty: Vec<i64> = Vec::new();
    for id in touched {
        let members: i64 = db.query_one("SELECT count(*) FROM campaign_jurisdictions WHERE campaign_id = $1", &[&id])?.try_get(0)?;
        if members == 0 {
            empty.push(id);
        }
    }
    let mut i = 0;
    while i < empty.len() {
        let merged = ids(db.query(
            "SELECT id FROM campaigns c WHERE merged_into = $1 AND NOT EXISTS (SELECT 1 FROM campaign_jurisdictions WHERE campaign_id = c.id)",
            &[&empty[i]],
        )?)?;
        for m in merged {
            if !empty.contains(&m) {
                empty.push(m);
            }
        }
        i += 1;
    }
    for id in &empty {
        // What a confirmed drill campaign put on every sensor's list comes off it.
        out.indicators_withdrawn += withdraw_indicators(db, *id, now)? as u64;
        for (count, sql) in CAMPAIGN_DELETES {
            let n = db.execute(sql, &[id])?;
            add(&mut out, *count, n as usize);
        }
        out.campaigns += db.execute("DELETE FROM campaigns WHERE id = $1", &[id])?;
    }
    // A real county registered under a drill state (same code) no longer belongs to it.
    db.execute(&format!("UPDATE jurisdictions SET parent_id = NULL WHERE NOT drill AND parent_id IN {D}"), &[])?;
    // Drill jurisdictions that name another as parent go in any order: unlink them first.
    db.execute("UPDATE jurisdictions SET parent_id = NULL WHERE drill", &[])?;
    out.jurisdictions = db.execute("DELETE FROM jurisdictions WHERE drill", &[])?;
    Ok(out)
}

pub(super) fn purge_drill(store: &PgStore, now: Millis, apply: bool) -> StoreResult<DrillPurge> {
    if apply {
        return store.write(|db| purge(db, now));
    }
    // A preview: the same statements, rolled back.
    let mut conn = store.conn()?;
    let conn = &mut *conn;
    let result: TxResult<DrillPurge> = (|| {
        let tx = conn.client.transaction()?;
        let mut db = Db { tx, statements: &mut conn.statements, indicator_log_locked: false, outbox_notified: false, replica: &store.replica };
        let out = purge(&mut db, now)?;
        db.tx.rollback()?;
        Ok(out)
    })();
    result.map_err(StoreError::from)
}
