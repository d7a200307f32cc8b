//! The SQL of disinformation reports and cases on SQLite (rules in [`crate::disinfo`]); the
//! counterpart of `store/postgres/disinfo.rs`. Filing a report and joining it to a case is one
//! write transaction (SQLite has one writer), so two reports of one claim never open two cases.

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::disinfo::cases::{parse_signature, same_claim};
use crate::disinfo::{transition_allowed, Case, CaseDetail, CaseEvent, CasePolicy, CaseStatus, NewReport, Report, ReportOutcome, ScreenshotMeta, StatusChange, StoredScreenshot};
use crate::error::StoreError;
use crate::model::Millis;
use crate::store::StoreResult;

/// Candidate cases compared with one new claim, at most (the most recently updated first).
const MAX_CANDIDATES: i64 = 5_000;

fn ids_json(ids: &[i64]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".into())
}

pub(super) fn file_report(tx: &Transaction<'_>, new: &NewReport, policy: &CasePolicy, now: Millis) -> StoreResult<ReportOutcome> {
    // The same post, in an open case?
    let mut found: Option<(i64, &str)> = None;
    for (_, key) in &new.urls {
        let hit: Option<i64> = tx
            .prepare_cached(
                "SELECT u.case_id FROM disinfo_report_urls u JOIN disinfo_cases c ON c.id = u.case_id \
                 WHERE u.url_key = ?1 AND c.status <> 'closed' ORDER BY u.case_id LIMIT 1",
            )?
            .query_row([key], |r| r.get(0))
            .optional()?;
        if let Some(id) = hit {
            found = Some((id, "url"));
            break;
        }
    }
    // The same claim in other words?
    if found.is_none() {
        let bands: Vec<i64> = new.fingerprint.bands.clone();
        let mut st = tx.prepare_cached(
            "SELECT c.id, c.signature, c.anchors FROM disinfo_cases c \
             WHERE c.status <> 'closed' AND c.id IN (SELECT b.case_id FROM disinfo_case_bands b WHERE b.band IN (SELECT value FROM json_each(?1))) \
             ORDER BY c.updated_ms DESC LIMIT ?2",
        )?;
        let candidates: Vec<(i64, String, String)> = st.query_map(params![ids_json(&bands), MAX_CANDIDATES], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<_, _>>()?;
        let mut best: Option<(f64, i64)> = None;
        for (id, sig, anchors) in candidates {
            let Some(sig) = parse_signature(&sig) else { continue };
            if let Some(s) = same_claim(&new.fingerprint, &sig, &anchors, policy.min_similarity) {
                if best.is_none_or(|(b, _)| s > b) {
                    best = Some((s, id));
                }
            }
        }
        found = best.map(|(_, id)| (id, "claim"));
    }
    let (case_id, joined_by, before) = match found {
        Some((id, how)) => {
            let before = case_jurisdictions(tx, id)?;
            tx.prepare_cached("UPDATE disinfo_cases SET updated_ms = ?1, urgency = CASE WHEN ?2 = 'high' THEN 'high' ELSE urgency END WHERE id = ?3")?
                .execute(params![now, new.urgency.as_str(), id])?;
            (id, how, before)
        }
        None => {
            let id: i64 = tx
                .prepare_cached(
                    "INSERT INTO disinfo_cases (claim, category, urgency, status, signature, anchors, created_ms, updated_ms) \
                     VALUES (?1, ?2, ?3, 'new', ?4, ?5, ?6, ?6) RETURNING id",
                )?
                .query_row(params![new.claim, new.category.as_str(), new.urgency.as_str(), new.fingerprint.signature_hex(), new.fingerprint.anchors, now], |r| r.get(0))?;
            let mut band = tx.prepare_cached("INSERT OR IGNORE INTO disinfo_case_bands (band, case_id) VALUES (?1, ?2)")?;
            for b in &new.fingerprint.bands {
                band.execute(params![b, id])?;
            }
            tx.prepare_cached("INSERT INTO disinfo_case_log (case_id, kind, status, by_user, created_ms) VALUES (?1, 'opened', 'new', ?2, ?3)")?
                .execute(params![id, new.reporter_username, now])?;
            (id, "new", Vec::new())
        }
    };
    let reporters: Vec<i64> =
        tx.prepare_cached("SELECT DISTINCT jurisdiction_id FROM disinfo_reports WHERE case_id = ?1")?.query_map([case_id], |r| r.get(0))?.collect::<Result<_, _>>()?;
    let report_id: i64 = tx
        .prepare_cached(
            "INSERT INTO disinfo_reports (case_id, jurisdiction_id, reporter_user_id, reporter_username, on_behalf, platform, category, urgency, \
               claim, truth, citation, seen_ms, views, shares, disarm, created_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) RETURNING id",
        )?
        .query_row(
            params![
                case_id,
                new.jurisdiction_id,
                new.reporter_user_id,
                new.reporter_username,
                i64::from(new.on_behalf),
                new.platform,
                new.category.as_str(),
                new.urgency.as_str(),
                new.claim,
                new.truth,
                new.citation,
                new.seen_ms,
                new.views,
                new.shares,
                serde_json::to_string(&new.disarm).unwrap_or_else(|_| "[]".into()),
                now
            ],
            |r| r.get(0),
        )?;
    let mut url = tx.prepare_cached("INSERT INTO disinfo_report_urls (report_id, case_id, position, url, url_key) VALUES (?1, ?2, ?3, ?4, ?5)")?;
    for (i, (raw, key)) in new.urls.iter().enumerate() {
        url.execute(params![report_id, case_id, i as i64, raw, key])?;
    }
    let mut concern = tx.prepare_cached("INSERT OR IGNORE INTO disinfo_report_jurisdictions (report_id, case_id, jurisdiction_id) VALUES (?1, ?2, ?3)")?;
    for j in &new.concerns {
        concern.execute(params![report_id, case_id, j])?;
    }
    let mut shot = tx.prepare_cached("INSERT OR IGNORE INTO disinfo_screenshots (sha256, media_type, width, height, bytes, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
    let mut link = tx.prepare_cached("INSERT OR IGNORE INTO disinfo_report_screenshots (report_id, sha256) VALUES (?1, ?2)")?;
    for s in &new.screenshots {
        shot.execute(params![s.sha256, s.media_type, s.width, s.height, s.bytes, now])?;
        link.execute(params![report_id, s.sha256])?;
    }
    tx.prepare_cached("INSERT INTO disinfo_case_log (case_id, kind, report_id, jurisdiction_id, by_user, created_ms) VALUES (?1, 'reported', ?2, ?3, ?4, ?5)")?
        .execute(params![case_id, report_id, new.jurisdiction_id, new.reporter_username, now])?;
    let report = report(tx, report_id)?.ok_or_else(|| StoreError::Database("the report just filed is missing".into()))?;
    let case = case(tx, case_id)?.ok_or_else(|| StoreError::Database("the case just filed into is missing".into()))?;
    let reporters_before = reporters.len();
    let notifications = enqueue(tx, new, &report, &case, reporters_before, now)?;
    Ok(ReportOutcome { report, case, new_case: joined_by == "new", joined_by: joined_by.to_string(), jurisdictions_before: before, notifications })
}

/// The states (parents) of `ids`.
fn states_of(c: &Connection, ids: &[i64]) -> StoreResult<Vec<i64>> {
    let rows = c
        .prepare_cached("SELECT DISTINCT parent_id FROM jurisdictions WHERE id IN (SELECT value FROM json_each(?1)) AND parent_id IS NOT NULL AND parent_id <> id")?
        .query_map([ids_json(ids)], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Enqueues the report's notifications and the spreading ones (see [`crate::disinfo::routing`]).
fn enqueue(tx: &Transaction<'_>, new: &NewReport, report: &Report, case: &Case, reporters_before: usize, now: Millis) -> StoreResult<usize> {
    use crate::disinfo::routing::{campaign_key, levels_crossed, report_key, report_kind, spread_key, KIND_SPREADING};
    let mut told: Vec<i64> = vec![new.jurisdiction_id];
    told.extend(&new.concerns);
    told.extend(states_of(tx, &told)?);
    told.sort_unstable();
    told.dedup();
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO notifications (campaign_id, jurisdiction_id, contact_id, event_kind, event_key, status, next_attempt_ms, created_ms) \
         SELECT ?1, jurisdiction_id, id, ?2, ?3, 'pending', ?4, ?4 FROM contacts WHERE jurisdiction_id IN (SELECT value FROM json_each(?5)) AND priority = 1 ORDER BY id",
    )?;
    let mut n = insert.execute(params![campaign_key(case.id), report_kind(report.id), report_key(report.id), now, ids_json(&told)])?;
    let mut reporters: Vec<i64> = tx.prepare_cached("SELECT DISTINCT jurisdiction_id FROM disinfo_reports WHERE case_id = ?1")?.query_map([case.id], |r| r.get(0))?.collect::<Result<_, _>>()?;
    reporters.sort_unstable();
    let levels = levels_crossed(reporters_before, reporters.len());
    if !levels.is_empty() {
        let states = states_of(tx, &case.jurisdictions)?;
        for level in levels {
            n += insert.execute(params![campaign_key(case.id), KIND_SPREADING, spread_key(case.id, level), now, ids_json(&states)])?;
        }
    }
    Ok(n)
}

fn case_jurisdictions(c: &Connection, case_id: i64) -> StoreResult<Vec<i64>> {
    let mut st = c.prepare_cached(
        "SELECT jurisdiction_id FROM disinfo_reports WHERE case_id = ?1 UNION SELECT jurisdiction_id FROM disinfo_report_jurisdictions WHERE case_id = ?1 ORDER BY 1",
    )?;
    let ids = st.query_map([case_id], |r| r.get(0))?.collect::<Result<_, _>>()?;
    Ok(ids)
}

const REPORT_COLS: &str = "id, case_id, jurisdiction_id, reporter_username, on_behalf, platform, category, urgency, claim, truth, citation, seen_ms, views, shares, disarm, created_ms";

fn row_report(r: &rusqlite::Row<'_>) -> rusqlite::Result<Report> {
    let disarm: String = r.get(14)?;
    Ok(Report {
        id: r.get(0)?,
        case_id: r.get(1)?,
        jurisdiction_id: r.get(2)?,
        reporter_username: r.get(3)?,
        on_behalf: r.get::<_, i64>(4)? != 0,
        platform: r.get(5)?,
        category: r.get(6)?,
        urgency: r.get(7)?,
        claim: r.get(8)?,
        truth: r.get(9)?,
        citation: r.get(10)?,
        seen_ms: r.get(11)?,
        views: r.get(12)?,
        shares: r.get(13)?,
        disarm: serde_json::from_str(&disarm).unwrap_or_default(),
        urls: Vec::new(),
        concerns: Vec::new(),
        screenshots: Vec::new(),
        created_ms: r.get(15)?,
    })
}

/// Fills a report's URLs, concerned jurisdictions and screenshots.
fn fill_report(c: &Connection, mut rep: Report) -> StoreResult<Report> {
    rep.urls = c.prepare_cached("SELECT url FROM disinfo_report_urls WHERE report_id = ?1 ORDER BY position")?.query_map([rep.id], |r| r.get(0))?.collect::<Result<_, _>>()?;
    rep.concerns = c
        .prepare_cached("SELECT jurisdiction_id FROM disinfo_report_jurisdictions WHERE report_id = ?1 ORDER BY jurisdiction_id")?
        .query_map([rep.id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    rep.screenshots = c
        .prepare_cached(
            "SELECT s.sha256, s.media_type, s.width, s.height, length(s.bytes) FROM disinfo_report_screenshots l \
             JOIN disinfo_screenshots s ON s.sha256 = l.sha256 WHERE l.report_id = ?1 ORDER BY s.sha256",
        )?
        .query_map([rep.id], |r| Ok(ScreenshotMeta { sha256: r.get(0)?, media_type: r.get(1)?, width: r.get(2)?, height: r.get(3)?, size: r.get(4)? }))?
        .collect::<Result<_, _>>()?;
    Ok(rep)
}

pub(super) fn report(c: &Connection, id: i64) -> StoreResult<Option<Report>> {
    let row = c.prepare_cached(&format!("SELECT {REPORT_COLS} FROM disinfo_reports WHERE id = ?1"))?.query_row([id], row_report).optional()?;
    match row {
        Some(r) => Ok(Some(fill_report(c, r)?)),
        None => Ok(None),
    }
}

pub(super) fn reports(c: &Connection, jurisdictions: Option<&[i64]>, limit: usize) -> StoreResult<Vec<Report>> {
    let ids = jurisdictions.map(ids_json);
    let rows: Vec<Report> = c
        .prepare_cached(&format!(
            "SELECT {REPORT_COLS} FROM disinfo_reports WHERE (?1 IS NULL OR jurisdiction_id IN (SELECT value FROM json_each(?1))) ORDER BY id DESC LIMIT ?2"
        ))?
        .query_map(params![ids, limit as i64], row_report)?
        .collect::<Result<_, _>>()?;
    rows.into_iter().map(|r| fill_report(c, r)).collect()
}

const CASE_COLS: &str = "id, claim, category, urgency, status, created_ms, updated_ms";

fn row_case(r: &rusqlite::Row<'_>) -> rusqlite::Result<Case> {
    Ok(Case {
        id: r.get(0)?,
        claim: r.get(1)?,
        category: r.get(2)?,
        urgency: r.get(3)?,
        status: r.get(4)?,
        reports: 0,
        jurisdictions: Vec::new(),
        created_ms: r.get(5)?,
        updated_ms: r.get(6)?,
    })
}

fn fill_case(c: &Connection, mut case: Case) -> StoreResult<Case> {
    case.reports = c.prepare_cached("SELECT count(*) FROM disinfo_reports WHERE case_id = ?1")?.query_row([case.id], |r| r.get(0))?;
    case.jurisdictions = case_jurisdictions(c, case.id)?;
    Ok(case)
}

fn case(c: &Connection, id: i64) -> StoreResult<Option<Case>> {
    let row = c.prepare_cached(&format!("SELECT {CASE_COLS} FROM disinfo_cases WHERE id = ?1"))?.query_row([id], row_case).optional()?;
    match row {
        Some(k) => Ok(Some(fill_case(c, k)?)),
        None => Ok(None),
    }
}

pub(super) fn case_detail(c: &Connection, id: i64) -> StoreResult<Option<CaseDetail>> {
    let Some(case) = case(c, id)? else { return Ok(None) };
    let reports: Vec<Report> =
        c.prepare_cached(&format!("SELECT {REPORT_COLS} FROM disinfo_reports WHERE case_id = ?1 ORDER BY id"))?.query_map([id], row_report)?.collect::<Result<_, _>>()?;
    let reports = reports.into_iter().map(|r| fill_report(c, r)).collect::<StoreResult<Vec<_>>>()?;
    let timeline = c
        .prepare_cached(
            "SELECT id, kind, status, report_id, jurisdiction_id, referred_to, outcome, note, by_user, created_ms FROM disinfo_case_log WHERE case_id = ?1 ORDER BY id",
        )?
        .query_map([id], |r| {
            Ok(CaseEvent {
                id: r.get(0)?,
                kind: r.get(1)?,
                status: r.get(2)?,
                report_id: r.get(3)?,
                jurisdiction_id: r.get(4)?,
                referred_to: r.get(5)?,
                outcome: r.get(6)?,
                note: r.get(7)?,
                by_user: r.get(8)?,
                created_ms: r.get(9)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(Some(CaseDetail { case, reports, timeline }))
}

pub(super) fn cases(c: &Connection, jurisdictions: Option<&[i64]>, limit: usize) -> StoreResult<Vec<Case>> {
    let ids = jurisdictions.map(ids_json);
    let rows: Vec<Case> = c
        .prepare_cached(&format!(
            "SELECT {CASE_COLS} FROM disinfo_cases WHERE ?1 IS NULL \
               OR id IN (SELECT case_id FROM disinfo_reports WHERE jurisdiction_id IN (SELECT value FROM json_each(?1))) \
               OR id IN (SELECT case_id FROM disinfo_report_jurisdictions WHERE jurisdiction_id IN (SELECT value FROM json_each(?1))) \
             ORDER BY updated_ms DESC, id DESC LIMIT ?2"
        ))?
        .query_map(params![ids, limit as i64], row_case)?
        .collect::<Result<_, _>>()?;
    rows.into_iter().map(|k| fill_case(c, k)).collect()
}

pub(super) fn set_status(tx: &Transaction<'_>, id: i64, change: &StatusChange, now: Millis) -> StoreResult<Case> {
    let current: Option<String> = tx.prepare_cached("SELECT status FROM disinfo_cases WHERE id = ?1")?.query_row([id], |r| r.get(0)).optional()?;
    let Some(current) = current else { return Err(StoreError::NotFound(format!("case {id}"))) };
    let from = CaseStatus::parse(&current).ok_or_else(|| StoreError::Database(format!("case {id} has an unknown status")))?;
    if !transition_allowed(from, change.status) {
        return Err(StoreError::Conflict(format!("case {id} is {} and cannot become {}: statuses only move forward, and a closed case stays closed", from.as_str(), change.status.as_str())));
    }
    tx.prepare_cached("UPDATE disinfo_cases SET status = ?1, updated_ms = ?2 WHERE id = ?3")?.execute(params![change.status.as_str(), now, id])?;
    tx.prepare_cached("INSERT INTO disinfo_case_log (case_id, kind, status, referred_to, outcome, note, by_user, created_ms) VALUES (?1, 'status', ?2, ?3, ?4, ?5, ?6, ?7)")?
        .execute(params![id, change.status.as_str(), change.referred_to, change.outcome, change.note, change.by_user, now])?;
    case(tx, id)?.ok_or_else(|| StoreError::NotFound(format!("case {id}")))
}

pub(super) fn screenshot(c: &Connection, sha256: &str) -> StoreResult<Option<StoredScreenshot>> {
    let row: Option<(String, Vec<u8>)> =
        c.prepare_cached("SELECT media_type, bytes FROM disinfo_screenshots WHERE sha256 = ?1")?.query_row([sha256], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
    let Some((media_type, bytes)) = row else { return Ok(None) };
    let jurisdictions = c
        .prepare_cached(
            "SELECT DISTINCT r.jurisdiction_id FROM disinfo_report_screenshots l JOIN disinfo_reports r ON r.id = l.report_id WHERE l.sha256 = ?1 ORDER BY 1",
        )?
        .query_map([sha256], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(Some(StoredScreenshot { media_type, bytes, jurisdictions }))
}

/// See `Store::disinfo_escalate_untouched`.
pub(super) fn escalate_untouched(tx: &Transaction<'_>, urgent_before: Millis, other_before: Millis, now: Millis, limit: usize) -> StoreResult<Vec<i64>> {
    use crate::disinfo::routing::{campaign_key, untouched_key, KIND_UNTOUCHED};
    let ids: Vec<i64> = tx
        .prepare_cached(
            "SELECT id FROM disinfo_cases WHERE status = 'new' AND escalated_ms IS NULL \
             AND ((urgency = 'high' AND created_ms <= ?1) OR (urgency <> 'high' AND created_ms <= ?2)) ORDER BY created_ms, id LIMIT ?3",
        )?
        .query_map(params![urgent_before, other_before, limit as i64], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO notifications (campaign_id, jurisdiction_id, contact_id, event_kind, event_key, status, next_attempt_ms, created_ms) \
         SELECT ?1, jurisdiction_id, id, ?2, ?3, 'pending', ?4, ?4 FROM contacts WHERE jurisdiction_id IN (SELECT value FROM json_each(?5)) AND priority = ?6 ORDER BY id",
    )?;
    for &id in &ids {
        tx.prepare_cached("UPDATE disinfo_cases SET escalated_ms = ?1 WHERE id = ?2")?.execute(params![now, id])?;
        let named = case_jurisdictions(tx, id)?;
        let states = states_of(tx, &named)?;
        insert.execute(params![campaign_key(id), KIND_UNTOUCHED, untouched_key(id), now, ids_json(&named), 2])?;
        insert.execute(params![campaign_key(id), KIND_UNTOUCHED, untouched_key(id), now, ids_json(&states), 1])?;
    }
    Ok(ids)
}

pub(super) fn set_published(tx: &Transaction<'_>, id: i64, published_ms: Option<Millis>) -> StoreResult<bool> {
    Ok(tx.prepare_cached("UPDATE disinfo_cases SET published_ms = ?1 WHERE id = ?2")?.execute(params![published_ms, id])? > 0)
}

pub(super) fn published_ms(c: &Connection, id: i64) -> StoreResult<Option<Millis>> {
    Ok(c.prepare_cached("SELECT published_ms FROM disinfo_cases WHERE id = ?1")?.query_row([id], |r| r.get::<_, Option<Millis>>(0)).optional()?.flatten())
}

pub(super) fn published(c: &Connection, limit: usize) -> StoreResult<Vec<(i64, Millis)>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    Ok(c.prepare_cached("SELECT id, published_ms FROM disinfo_cases WHERE published_ms IS NOT NULL ORDER BY published_ms DESC, id DESC LIMIT ?1")?
        .query_map([limit], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?)
}
