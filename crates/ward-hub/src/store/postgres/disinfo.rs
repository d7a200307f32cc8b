//! The SQL of disinformation reports and cases on PostgreSQL (rules in [`crate::disinfo`]); the
//! counterpart of `store/sqlite/disinfo.rs`. Filing a report takes [`DISINFO_LOCK`] for its
//! transaction, so two replicas filing reports of one claim at once never open two cases (the
//! second sees the first's case); intake is a few reports a second at most, so the lock costs
//! nothing that matters.

use super::{collect, pg_text, Db, TxResult};
use crate::disinfo::cases::{parse_signature, same_claim};
use crate::disinfo::{transition_allowed, Case, CaseDetail, CaseEvent, CasePolicy, CaseStatus, NewReport, Report, ReportOutcome, ScreenshotMeta, StatusChange, StoredScreenshot};
use crate::error::StoreError;
use crate::model::Millis;

/// The advisory lock of disinformation intake ("ward" and a number, as the other locks).
pub(super) const DISINFO_LOCK: i64 = 0x7761_7264_0000_0700;
/// Candidate cases compared with one new claim, at most (the most recently updated first).
const MAX_CANDIDATES: i64 = 5_000;

pub(super) fn file_report(db: &mut Db<'_>, new: &NewReport, policy: &CasePolicy, now: Millis) -> TxResult<ReportOutcome> {
    db.execute("SELECT pg_advisory_xact_lock($1)", &[&DISINFO_LOCK])?;
    let mut found: Option<(i64, &str)> = None;
    for (_, key) in &new.urls {
        let hit = db.query_opt(
            "SELECT u.case_id FROM disinfo_report_urls u JOIN disinfo_cases c ON c.id = u.case_id \
             WHERE u.url_key = $1 AND c.status <> 'closed' ORDER BY u.case_id LIMIT 1",
            &[&pg_text(key)],
        )?;
        if let Some(r) = hit {
            found = Some((r.try_get(0)?, "url"));
            break;
        }
    }
    if found.is_none() {
        let rows = db.query(
            "SELECT c.id, c.signature, c.anchors FROM disinfo_cases c \
             WHERE c.status <> 'closed' AND c.id IN (SELECT b.case_id FROM disinfo_case_bands b WHERE b.band = ANY($1)) \
             ORDER BY c.updated_ms DESC LIMIT $2",
            &[&new.fingerprint.bands, &MAX_CANDIDATES],
        )?;
        let candidates: Vec<(i64, String, String)> = collect(rows, |r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))?;
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
    let username = pg_text(&new.reporter_username);
    let (case_id, joined_by, before) = match found {
        Some((id, how)) => {
            let before = case_jurisdictions(db, id)?;
            db.execute(
                "UPDATE disinfo_cases SET updated_ms = $1, urgency = CASE WHEN $2 = 'high' THEN 'high' ELSE urgency END WHERE id = $3",
                &[&now, &new.urgency.as_str(), &id],
            )?;
            (id, how, before)
        }
        None => {
            let id: i64 = db
                .query_one(
                    "INSERT INTO disinfo_cases (claim, category, urgency, status, signature, anchors, created_ms, updated_ms) \
                     VALUES ($1, $2, $3, 'new', $4, $5, $6, $6) RETURNING id",
                    &[&pg_text(&new.claim), &new.category.as_str(), &new.urgency.as_str(), &new.fingerprint.signature_hex(), &pg_text(&new.fingerprint.anchors), &now],
                )?
                .try_get(0)?;
            db.execute("INSERT INTO disinfo_case_bands (band, case_id) SELECT DISTINCT b, $2::bigint FROM unnest($1::bigint[]) AS b ON CONFLICT DO NOTHING", &[&new.fingerprint.bands, &id])?;
            db.execute("INSERT INTO disinfo_case_log (case_id, kind, status, by_user, created_ms) VALUES ($1, 'opened', 'new', $2, $3)", &[&id, &username, &now])?;
            (id, "new", Vec::new())
        }
    };
    let reporters_before = db.query("SELECT DISTINCT jurisdiction_id FROM disinfo_reports WHERE case_id = $1", &[&case_id])?.len();
    let disarm = serde_json::to_string(&new.disarm).unwrap_or_else(|_| "[]".into());
    let report_id: i64 = db
        .query_one(
            "INSERT INTO disinfo_reports (case_id, jurisdiction_id, reporter_user_id, reporter_username, on_behalf, platform, category, urgency, \
               claim, truth, citation, seen_ms, views, shares, disarm, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING id",
            &[
                &case_id,
                &new.jurisdiction_id,
                &new.reporter_user_id,
                &username,
                &i64::from(new.on_behalf),
                &pg_text(&new.platform),
                &new.category.as_str(),
                &new.urgency.as_str(),
                &pg_text(&new.claim),
                &pg_text(&new.truth),
                &pg_text(&new.citation),
                &new.seen_ms,
                &new.views,
                &new.shares,
                &disarm,
                &now,
            ],
        )?
        .try_get(0)?;
    for (i, (raw, key)) in new.urls.iter().enumerate() {
        db.execute(
            "INSERT INTO disinfo_report_urls (report_id, case_id, position, url, url_key) VALUES ($1, $2, $3, $4, $5)",
            &[&report_id, &case_id, &(i as i64), &pg_text(raw), &pg_text(key)],
        )?;
    }
    for j in &new.concerns {
        db.execute(
            "INSERT INTO disinfo_report_jurisdictions (report_id, case_id, jurisdiction_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&report_id, &case_id, j],
        )?;
    }
    for s in &new.screenshots {
        db.execute(
            "INSERT INTO disinfo_screenshots (sha256, media_type, width, height, bytes, created_ms) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            &[&s.sha256, &s.media_type, &i64::from(s.width), &i64::from(s.height), &s.bytes, &now],
        )?;
        db.execute("INSERT INTO disinfo_report_screenshots (report_id, sha256) VALUES ($1, $2) ON CONFLICT DO NOTHING", &[&report_id, &s.sha256])?;
    }
    db.execute(
        "INSERT INTO disinfo_case_log (case_id, kind, report_id, jurisdiction_id, by_user, created_ms) VALUES ($1, 'reported', $2, $3, $4, $5)",
        &[&case_id, &report_id, &new.jurisdiction_id, &username, &now],
    )?;
    let report = report(db, report_id)?.ok_or_else(|| StoreError::Database("the report just filed is missing".into()))?;
    let case = case(db, case_id)?.ok_or_else(|| StoreError::Database("the case just filed into is missing".into()))?;
    let notifications = enqueue(db, new, &report, &case, reporters_before, now)?;
    Ok(ReportOutcome { report, case, new_case: joined_by == "new", joined_by: joined_by.to_string(), jurisdictions_before: before, notifications })
}

/// The states (parents) of `ids`.
fn states_of(db: &mut Db<'_>, ids: &[i64]) -> TxResult<Vec<i64>> {
    let rows = db.query("SELECT DISTINCT parent_id FROM jurisdictions WHERE id = ANY($1) AND parent_id IS NOT NULL AND parent_id <> id", &[&ids.to_vec()])?;
    Ok(collect(rows, |r| r.try_get(0))?)
}

const ENQUEUE: &str = "INSERT INTO notifications (campaign_id, jurisdiction_id, contact_id, event_kind, event_key, status, next_attempt_ms, created_ms) \
     SELECT $1, jurisdiction_id, id, $2, $3, 'pending', $4, $4 FROM contacts WHERE jurisdiction_id = ANY($5) AND priority = 1 ORDER BY id \
     ON CONFLICT (contact_id, campaign_id, event_key) DO NOTHING";

/// Enqueues the report's notifications and the spreading ones (see [`crate::disinfo::routing`]).
fn enqueue(db: &mut Db<'_>, new: &NewReport, report: &Report, case: &Case, reporters_before: usize, now: Millis) -> TxResult<usize> {
    use crate::disinfo::routing::{campaign_key, levels_crossed, report_key, report_kind, spread_key, KIND_SPREADING};
    let mut told: Vec<i64> = vec![new.jurisdiction_id];
    told.extend(&new.concerns);
    let states = states_of(db, &told)?;
    told.extend(states);
    told.sort_unstable();
    told.dedup();
    let mut n = db.execute(ENQUEUE, &[&campaign_key(case.id), &report_kind(report.id), &report_key(report.id), &now, &told])? as usize;
    let reporters = db.query("SELECT DISTINCT jurisdiction_id FROM disinfo_reports WHERE case_id = $1", &[&case.id])?.len();
    let levels = levels_crossed(reporters_before, reporters);
    if !levels.is_empty() {
        let states = states_of(db, &case.jurisdictions)?;
        for level in levels {
            n += db.execute(ENQUEUE, &[&campaign_key(case.id), &KIND_SPREADING, &spread_key(case.id, level), &now, &states])? as usize;
        }
    }
    if n > 0 {
        db.notify_outbox()?;
    }
    Ok(n)
}

fn case_jurisdictions(db: &mut Db<'_>, case_id: i64) -> TxResult<Vec<i64>> {
    let rows = db.query(
        "SELECT jurisdiction_id FROM disinfo_reports WHERE case_id = $1 UNION SELECT jurisdiction_id FROM disinfo_report_jurisdictions WHERE case_id = $1 ORDER BY 1",
        &[&case_id],
    )?;
    Ok(collect(rows, |r| r.try_get(0))?)
}

const REPORT_COLS: &str = "id, case_id, jurisdiction_id, reporter_username, on_behalf, platform, category, urgency, claim, truth, citation, seen_ms, views, shares, disarm, created_ms";

fn row_report(r: &::postgres::Row) -> Result<Report, ::postgres::Error> {
    let disarm: String = r.try_get(14)?;
    Ok(Report {
        id: r.try_get(0)?,
        case_id: r.try_get(1)?,
        jurisdiction_id: r.try_get(2)?,
        reporter_username: r.try_get(3)?,
        on_behalf: r.try_get::<_, i64>(4)? != 0,
        platform: r.try_get(5)?,
        category: r.try_get(6)?,
        urgency: r.try_get(7)?,
        claim: r.try_get(8)?,
        truth: r.try_get(9)?,
        citation: r.try_get(10)?,
        seen_ms: r.try_get(11)?,
        views: r.try_get(12)?,
        shares: r.try_get(13)?,
        disarm: serde_json::from_str(&disarm).unwrap_or_default(),
        urls: Vec::new(),
        concerns: Vec::new(),
        screenshots: Vec::new(),
        created_ms: r.try_get(15)?,
    })
}

fn fill_report(db: &mut Db<'_>, mut rep: Report) -> TxResult<Report> {
    rep.urls = collect(db.query("SELECT url FROM disinfo_report_urls WHERE report_id = $1 ORDER BY position", &[&rep.id])?, |r| r.try_get(0))?;
    rep.concerns = collect(db.query("SELECT jurisdiction_id FROM disinfo_report_jurisdictions WHERE report_id = $1 ORDER BY jurisdiction_id", &[&rep.id])?, |r| r.try_get(0))?;
    let rows = db.query(
        "SELECT s.sha256, s.media_type, s.width, s.height, length(s.bytes)::bigint FROM disinfo_report_screenshots l \
         JOIN disinfo_screenshots s ON s.sha256 = l.sha256 WHERE l.report_id = $1 ORDER BY s.sha256",
        &[&rep.id],
    )?;
    rep.screenshots = collect(rows, |r| Ok(ScreenshotMeta { sha256: r.try_get(0)?, media_type: r.try_get(1)?, width: r.try_get(2)?, height: r.try_get(3)?, size: r.try_get(4)? }))?;
    Ok(rep)
}

pub(super) fn report(db: &mut Db<'_>, id: i64) -> TxResult<Option<Report>> {
    match db.query_opt(&format!("SELECT {REPORT_COLS} FROM disinfo_reports WHERE id = $1"), &[&id])? {
        Some(r) => {
            let rep = row_report(&r)?;
            Ok(Some(fill_report(db, rep)?))
        }
        None => Ok(None),
    }
}

pub(super) fn reports(db: &mut Db<'_>, jurisdictions: Option<&[i64]>, limit: usize) -> TxResult<Vec<Report>> {
    let ids: Option<Vec<i64>> = jurisdictions.map(<[i64]>::to_vec);
    let rows = db.query(
        &format!("SELECT {REPORT_COLS} FROM disinfo_reports WHERE ($1::bigint[] IS NULL OR jurisdiction_id = ANY($1)) ORDER BY id DESC LIMIT $2"),
        &[&ids, &(limit as i64)],
    )?;
    let reps = collect(rows, row_report)?;
    reps.into_iter().map(|r| fill_report(db, r)).collect()
}

const CASE_COLS: &str = "id, claim, category, urgency, status, created_ms, updated_ms";

fn row_case(r: &::postgres::Row) -> Result<Case, ::postgres::Error> {
    Ok(Case {
        id: r.try_get(0)?,
        claim: r.try_get(1)?,
        category: r.try_get(2)?,
        urgency: r.try_get(3)?,
        status: r.try_get(4)?,
        reports: 0,
        jurisdictions: Vec::new(),
        created_ms: r.try_get(5)?,
        updated_ms: r.try_get(6)?,
    })
}

fn fill_case(db: &mut Db<'_>, mut case: Case) -> TxResult<Case> {
    case.reports = db.query_one("SELECT count(*) FROM disinfo_reports WHERE case_id = $1", &[&case.id])?.try_get(0)?;
    case.jurisdictions = case_jurisdictions(db, case.id)?;
    Ok(case)
}

fn case(db: &mut Db<'_>, id: i64) -> TxResult<Option<Case>> {
    match db.query_opt(&format!("SELECT {CASE_COLS} FROM disinfo_cases WHERE id = $1"), &[&id])? {
        Some(r) => {
            let k = row_case(&r)?;
            Ok(Some(fill_case(db, k)?))
        }
        None => Ok(None),
    }
}

pub(super) fn case_detail(db: &mut Db<'_>, id: i64) -> TxResult<Option<CaseDetail>> {
    let Some(case) = case(db, id)? else { return Ok(None) };
    let rows = db.query(&format!("SELECT {REPORT_COLS} FROM disinfo_reports WHERE case_id = $1 ORDER BY id"), &[&id])?;
    let reps = collect(rows, row_report)?;
    let reports = reps.into_iter().map(|r| fill_report(db, r)).collect::<TxResult<Vec<_>>>()?;
    let rows = db.query(
        "SELECT id, kind, status, report_id, jurisdiction_id, referred_to, outcome, note, by_user, created_ms FROM disinfo_case_log WHERE case_id = $1 ORDER BY id",
        &[&id],
    )?;
    let timeline = collect(rows, |r| {
        Ok(CaseEvent {
            id: r.try_get(0)?,
            kind: r.try_get(1)?,
            status: r.try_get(2)?,
            report_id: r.try_get(3)?,
            jurisdiction_id: r.try_get(4)?,
            referred_to: r.try_get(5)?,
            outcome: r.try_get(6)?,
            note: r.try_get(7)?,
            by_user: r.try_get(8)?,
            created_ms: r.try_get(9)?,
        })
    })?;
    Ok(Some(CaseDetail { case, reports, timeline }))
}

pub(super) fn cases(db: &mut Db<'_>, jurisdictions: Option<&[i64]>, limit: usize) -> TxResult<Vec<Case>> {
    let ids: Option<Vec<i64>> = jurisdictions.map(<[i64]>::to_vec);
    let rows = db.query(
        &format!(
            "SELECT {CASE_COLS} FROM disinfo_cases WHERE $1::bigint[] IS NULL \
               OR id IN (SELECT case_id FROM disinfo_reports WHERE jurisdiction_id = ANY($1)) \
               OR id IN (SELECT case_id FROM disinfo_report_jurisdictions WHERE jurisdiction_id = ANY($1)) \
             ORDER BY updated_ms DESC, id DESC LIMIT $2"
        ),
        &[&ids, &(limit as i64)],
    )?;
    let ks = collect(rows, row_case)?;
    ks.into_iter().map(|k| fill_case(db, k)).collect()
}

pub(super) fn set_status(db: &mut Db<'_>, id: i64, change: &StatusChange, now: Millis) -> TxResult<Case> {
    let Some(row) = db.query_opt("SELECT status FROM disinfo_cases WHERE id = $1 FOR UPDATE", &[&id])? else {
        return Err(StoreError::NotFound(format!("case {id}")).into());
    };
    let current: String = row.try_get(0)?;
    let from = CaseStatus::parse(&current).ok_or_else(|| StoreError::Database(format!("case {id} has an unknown status")))?;
    if !transition_allowed(from, change.status) {
        return Err(StoreError::Conflict(format!(
            "case {id} is {} and cannot become {}: statuses only move forward, and a closed case stays closed",
            from.as_str(),
            change.status.as_str()
        ))
        .into());
    }
    db.execute("UPDATE disinfo_cases SET status = $1, updated_ms = $2 WHERE id = $3", &[&change.status.as_str(), &now, &id])?;
    let referred = change.referred_to.as_deref().map(pg_text);
    let note = change.note.as_deref().map(pg_text);
    db.execute(
        "INSERT INTO disinfo_case_log (case_id, kind, status, referred_to, outcome, note, by_user, created_ms) VALUES ($1, 'status', $2, $3, $4, $5, $6, $7)",
        &[&id, &change.status.as_str(), &referred, &change.outcome, &note, &pg_text(&change.by_user), &now],
    )?;
    case(db, id)?.ok_or_else(|| StoreError::NotFound(format!("case {id}")).into())
}

pub(super) fn screenshot(db: &mut Db<'_>, sha256: &str) -> TxResult<Option<StoredScreenshot>> {
    let Some(r) = db.query_opt("SELECT media_type, bytes FROM disinfo_screenshots WHERE sha256 = $1", &[&pg_text(sha256)])? else { return Ok(None) };
    let (media_type, bytes): (String, Vec<u8>) = (r.try_get(0)?, r.try_get(1)?);
    let rows = db.query(
        "SELECT DISTINCT r.jurisdiction_id FROM disinfo_report_screenshots l JOIN disinfo_reports r ON r.id = l.report_id WHERE l.sha256 = $1 ORDER BY 1",
        &[&pg_text(sha256)],
    )?;
    let jurisdictions = collect(rows, |r| r.try_get(0))?;
    Ok(Some(StoredScreenshot { media_type, bytes, jurisdictions }))
}

/// See `Store::disinfo_escalate_untouched`.
pub(super) fn escalate_untouched(db: &mut Db<'_>, urgent_before: Millis, other_before: Millis, now: Millis, limit: usize) -> TxResult<Vec<i64>> {
    use crate::disinfo::routing::{campaign_key, untouched_key, KIND_UNTOUCHED};
    let rows = db.query(
        "SELECT id FROM disinfo_cases WHERE status = 'new' AND escalated_ms IS NULL \
         AND ((urgency = 'high' AND created_ms <= $1) OR (urgency <> 'high' AND created_ms <= $2)) ORDER BY created_ms, id LIMIT $3 FOR UPDATE SKIP LOCKED",
        &[&urgent_before, &other_before, &(limit as i64)],
    )?;
    let ids: Vec<i64> = collect(rows, |r| r.try_get(0))?;
    const INSERT: &str = "INSERT INTO notifications (campaign_id, jurisdiction_id, contact_id, event_kind, event_key, status, next_attempt_ms, created_ms) \
         SELECT $1, jurisdiction_id, id, $2, $3, 'pending', $4, $4 FROM contacts WHERE jurisdiction_id = ANY($5) AND priority = $6 ORDER BY id \
         ON CONFLICT (contact_id, campaign_id, event_key) DO NOTHING";
    let mut n = 0;
    for &id in &ids {
        db.execute("UPDATE disinfo_cases SET escalated_ms = $1 WHERE id = $2", &[&now, &id])?;
        let named = case_jurisdictions(db, id)?;
        let states = states_of(db, &named)?;
        n += db.execute(INSERT, &[&campaign_key(id), &KIND_UNTOUCHED, &untouched_key(id), &now, &named, &2i64])?;
        n += db.execute(INSERT, &[&campaign_key(id), &KIND_UNTOUCHED, &untouched_key(id), &now, &states, &1i64])?;
    }
    if n > 0 {
        db.notify_outbox()?;
    }
    Ok(ids)
}

pub(super) fn set_published(db: &mut Db<'_>, id: i64, published_ms: Option<Millis>) -> TxResult<bool> {
    Ok(db.execute("UPDATE disinfo_cases SET published_ms = $1 WHERE id = $2", &[&published_ms, &id])? > 0)
}

pub(super) fn published_ms(db: &mut Db<'_>, id: i64) -> TxResult<Option<Millis>> {
    match db.query_opt("SELECT published_ms FROM disinfo_cases WHERE id = $1", &[&id])? {
        Some(r) => Ok(r.try_get::<_, Option<Millis>>(0)?),
        None => Ok(None),
    }
}

pub(super) fn published(db: &mut Db<'_>, limit: usize) -> TxResult<Vec<(i64, Millis)>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = db.query("SELECT id, published_ms FROM disinfo_cases WHERE published_ms IS NOT NULL ORDER BY published_ms DESC, id DESC LIMIT $1", &[&limit])?;
    Ok(collect(rows, |r| Ok((r.try_get(0)?, r.try_get(1)?)))?)
}
