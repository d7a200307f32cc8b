//! Who hears of a disinformation report, and what they read. Notifications go through the
//! campaigns' outbox, channels and delivery log (`notifications`, `delivery_attempts`), enqueued
//! in the transaction that files the report, so a report is never filed without its messages.
//!
//! * **A report** ([`KIND_REPORT`]) is told to the contacts (priority 1) of the reporting
//!   jurisdiction (its receipt), of every jurisdiction the claim concerns, and of the states
//!   those belong to.
//! * **A spreading claim** ([`KIND_SPREADING`]): when the jurisdictions that *reported* a case
//!   first reach each of [`SPREAD_LEVELS`], the states of every jurisdiction in the case
//!   (reporting or concerned) hear "the same false claim is being reported in N jurisdictions",
//!   once per level.
//! * **An untouched case** ([`KIND_UNTOUCHED`], [`run_escalation`]): a case still `new` after
//!   `[notify] disinfo_untouched_urgent_mins` (urgent: voting logistics, eligibility,
//!   impersonation, threats; default 30) or `disinfo_untouched_mins` (default 240) goes, once, to
//!   the next contacts (priority 2) of every office it names and to their states.
//! * A disinformation notification's `campaign_id` is the case id negated (cases and campaigns
//!   are numbered apart; campaign views never match a negative id), its `event_kind`
//!   `disinfo.report:{report}` or `disinfo.spreading`, its `event_key` `disinfo:report:{report}`
//!   or `disinfo:spread:{case}:{level}`.
//! * Messages say what is claimed, what is true with its citation, where it spreads and what to
//!   do, and never who reported it from another office.

use std::time::Instant;

use crate::disinfo::{CaseDetail, Report};
use crate::model::{Jurisdiction, Millis, NotificationJob};
use crate::notify::Message;
use crate::state::HubState;
use crate::store::AttemptOutcome;

pub const KIND_REPORT: &str = "disinfo.report";
pub const KIND_SPREADING: &str = "disinfo.spreading";
/// A case nobody triaged in time ([`run_escalation`]): told to the next contacts (priority 2)
/// of every office it names and to their states.
pub const KIND_UNTOUCHED: &str = "disinfo.untouched";
/// The untouched-case job's lease name.
pub const JOB_UNTOUCHED: &str = "disinfo-untouched";
/// Cases escalated per pass at most (the next pass takes the rest at once).
pub const UNTOUCHED_PER_PASS: usize = 200;
/// Jurisdiction counts at which the states hear that a claim spreads.
pub const SPREAD_LEVELS: [usize; 3] = [2, 5, 20];

/// A report's notifications carry the report in their kind: `disinfo.report:{report id}`.
pub fn report_kind(report_id: i64) -> String {
    format!("{KIND_REPORT}:{report_id}")
}

pub fn is_disinfo_kind(kind: &str) -> bool {
    kind.starts_with("disinfo.")
}

/// The notification's `campaign_id` for a case.
pub fn campaign_key(case_id: i64) -> i64 {
    -case_id
}

pub fn report_key(report_id: i64) -> String {
    format!("disinfo:report:{report_id}")
}

pub fn untouched_key(case_id: i64) -> String {
    format!("disinfo:untouched:{case_id}")
}

pub fn spread_key(case_id: i64, level: usize) -> String {
    format!("disinfo:spread:{case_id}:{level}")
}

/// The levels a case crossed when its jurisdictions went from `before` to `after`.
pub fn levels_crossed(before: usize, after: usize) -> Vec<usize> {
    SPREAD_LEVELS.into_iter().filter(|l| before < *l && after >= *l).collect()
}

/// What to do, in plain words (the same for every office).
pub const WHAT_TO_DO: &str = "Do not repost or quote the claim. Publish the correct information with its citation on your official website and accounts. \
Report the posts to the platform. Tell your poll workers and call centre what is true. Call the state election office or the hub's analysts if it spreads or names your staff.";

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

/// The message for `recipient` about `case` (and `report` for a report's notification).
pub fn render(config: &crate::config::HubConfig, recipient: &Jurisdiction, case: &CaseDetail, report: Option<&Report>, kind: &str, notification_id: i64) -> Message {
    let c = &case.case;
    let first = report.or(case.reports.first());
    let (truth, citation) = first.map(|r| (r.truth.clone(), r.citation.clone())).unwrap_or_default();
    let urls: Vec<String> = case.reports.iter().flat_map(|r| r.urls.iter().cloned()).take(crate::notify::message::MAX_LISTED).collect();
    let platforms: Vec<String> = {
        let mut p: Vec<String> = case.reports.iter().map(|r| r.platform.clone()).collect();
        p.sort();
        p.dedup();
        p
    };
    let n = c.jurisdictions.len();
    let reporting = {
        let mut r: Vec<i64> = case.reports.iter().map(|r| r.jurisdiction_id).collect();
        r.sort_unstable();
        r.dedup();
        r.len()
    };
    let receipt = report.is_some_and(|r| r.jurisdiction_id == recipient.id);
    let (headline, type_) = match (kind, receipt) {
        (KIND_SPREADING, _) => (format!("The same false claim is being reported in {reporting} jurisdictions"), "ward.disinfo.spreading"),
        (KIND_UNTOUCHED, _) => ("A false claim reported by election offices has not been handled yet".to_string(), "ward.disinfo.untouched"),
        (_, true) => (format!("Your disinformation report was received (case {})", c.id), "ward.disinfo.receipt"),
        _ => ("A false claim concerning your jurisdiction was reported".to_string(), "ward.disinfo.report"),
    };
    let subject = format!("[ward] {headline}: {}", clip(&c.claim, 80));
    let link = if config.public_url.is_empty() { String::new() } else { format!("\nCase: {}/api/v1/disinfo/cases/{}\n", config.public_url.trim_end_matches('/'), c.id) };
    let text = format!(
        "{headline}.\n\nTo: {}\n\nWhat is claimed: {}\nWhat is true: {truth}\nSource: {citation}\nWhere: {} ({} post(s)){}\nJurisdictions reporting or concerned: {n}\nUrgency: {}    Status: {}\n\nWhat to do: {WHAT_TO_DO}\n{link}",
        recipient.name,
        c.claim,
        platforms.join(", "),
        urls.len(),
        if urls.is_empty() { String::new() } else { format!("\n  {}", urls.join("\n  ")) },
        c.urgency,
        c.status,
    );
    let json = serde_json::json!({
        "type": type_,
        "id": notification_id,
        "case_id": c.id,
        "report_id": report.map(|r| r.id),
        "jurisdiction": recipient.name,
        "claim": c.claim,
        "truth": truth,
        "citation": citation,
        "platforms": platforms,
        "urls": urls,
        "jurisdictions": n,
        "reporting": reporting,
        "urgency": c.urgency,
        "status": c.status,
        "what_to_do": WHAT_TO_DO,
        "text": text,
    });
    Message {
        subject,
        text,
        json,
        severity: if c.urgency == "high" { 7 } else { 5 },
        event_kind: kind.to_string(),
        campaign_id: campaign_key(c.id),
        remote: None,
        local: None,
        other_jurisdictions: n.saturating_sub(1) as i64,
    }
}

/// The untouched-case periods in milliseconds (urgent, other); `None` for one that is off (0),
/// an error for a negative or non-finite value.
pub fn untouched_periods(config: &crate::config::NotifyConfig) -> Result<(Option<Millis>, Option<Millis>), String> {
    let one = |name: &str, mins: f64| -> Result<Option<Millis>, String> {
        if !mins.is_finite() || mins < 0.0 {
            return Err(format!("{name} must be 0 (off) or a positive number of minutes, not {mins}"));
        }
        Ok((mins > 0.0).then(|| (mins * 60_000.0).clamp(100.0, 365.0 * 24.0 * 3_600_000.0) as Millis))
    };
    Ok((one("disinfo_untouched_urgent_mins", config.disinfo_untouched_urgent_mins)?, one("disinfo_untouched_mins", config.disinfo_untouched_mins)?))
}

/// Escalates cases nobody triaged in time (`[notify] disinfo_untouched_urgent_mins`, default 30,
/// for voting logistics, eligibility, impersonation and threats; `disinfo_untouched_mins`,
/// default 240, for the rest): each goes, once, to the next contacts (priority 2) of every office
/// it names and to their states. Runs on the replica holding the [`JOB_UNTOUCHED`] lease, every
/// quarter of the shorter period (at most 30 s), until `shutdown`.
pub async fn run_escalation(state: HubState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let (urgent, other) = match untouched_periods(&state.config.notify) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "untouched disinformation cases will not escalate");
            return;
        }
    };
    let Some(shortest) = [urgent, other].into_iter().flatten().min() else { return };
    let every = std::time::Duration::from_millis((shortest / 4).clamp(100, 30_000) as u64);
    let lease_ms = (every.as_millis() as Millis * crate::server::JOB_LEASE_INTERVALS as Millis).max(15_000);
    loop {
        if *shutdown.borrow() {
            return;
        }
        let mut more = false;
        if state.hold_job(JOB_UNTOUCHED, lease_ms).await {
            let now = crate::model::now_ms();
            // A period that is off never comes due.
            let (u, o) = (urgent.map_or(Millis::MIN, |p| now - p), other.map_or(Millis::MIN, |p| now - p));
            match state.store_call(move |s| s.disinfo_escalate_untouched(u, o, now, UNTOUCHED_PER_PASS)).await {
                Ok(cases) => {
                    for c in &cases {
                        tracing::info!(case = c, "disinformation case not triaged in time: escalated");
                    }
                    if !cases.is_empty() {
                        state.outbox_wake.notify_one();
                    }
                    more = cases.len() >= UNTOUCHED_PER_PASS;
                }
                Err(e) => tracing::error!(error = %e, "untouched-case escalation failed"),
            }
        }
        if more {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => {
                state.release_job(JOB_UNTOUCHED).await;
                return;
            }
        }
    }
}

/// Delivers one disinformation notification (called by the outbox worker).
pub async fn deliver(state: &HubState, channels: &crate::notify::Channels, job: NotificationJob) -> (i64, AttemptOutcome, Millis) {
    let started = Instant::now();
    let (case_id, jurisdiction_id) = (-job.campaign_id, job.jurisdiction_id);
    let context = state.store_call(move |s| Ok((s.disinfo_case(case_id)?, s.jurisdiction(jurisdiction_id)?))).await;
    let result = match context {
        Ok((Some(case), Some(recipient))) => {
            let report_id = job.event_kind.strip_prefix(KIND_REPORT).and_then(|r| r.strip_prefix(':')).and_then(|r| r.parse::<i64>().ok());
            let report = report_id.and_then(|id| case.reports.iter().find(|r| r.id == id));
            let kind = if report_id.is_some() {
                KIND_REPORT
            } else if job.event_kind == KIND_UNTOUCHED {
                KIND_UNTOUCHED
            } else {
                KIND_SPREADING
            };
            let msg = render(&state.config, &recipient, &case, report, kind, job.id);
            // A drill jurisdiction's message says so (docs/hub.md "Drill jurisdictions").
            let msg = msg.mark_drill_if(recipient.drill);
            channels.send(&job.contact, &msg).await.map(|detail| (detail, msg.json.to_string()))
        }
        Ok(_) => Err("case or jurisdiction no longer exists".to_string()),
        Err(e) => Err(format!("cannot load case: {e}")),
    };
    crate::notify::finish_attempt(state, &job, result, started, "disinformation delivery failed")
}

#[cfg(test)]
mod tests {
    #[test]
    fn levels_are_crossed_once() {
        assert_eq!(super::levels_crossed(1, 2), vec![2]);
        assert_eq!(super::levels_crossed(0, 1), Vec::<usize>::new());
        assert_eq!(super::levels_crossed(1, 6), vec![2, 5]);
        assert_eq!(super::levels_crossed(2, 4), Vec::<usize>::new());
    }
}
