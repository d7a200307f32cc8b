//! From what a run saw ([`Observed`]) to what the report says ([`DrillOutcome`]): every path
//! of every inject, the objectives rated, the states' figures, the timeline, and the strengths
//! and areas for improvement derived from the figures.
//!
//! Definitions (docs/drill.md "What is measured"):
//! * a targeted office is **warned** when a message of the actor's campaign reaches one of its
//!   priority-1 contacts; one its priority-1 contacts never got is a **miss**, even when the
//!   escalation later reached its next contact (that is shown as the escalation);
//! * an office warned about a drill actor without being targeted by it is a **false warning**;
//! * attacks the hub does not correlate (lateral movement inside an office) count for
//!   detection only;
//! * times are measured on the real clock and reported in scenario seconds (real × speed), so
//!   at `--speed 60` a hub that takes 0.5 s shows as 30 s: fixed delays weigh `speed` times
//!   more than in a real-time exercise, which errs on the strict side.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::outcome::*;
use super::run::Observed;
use super::scenario::{Metric, Plan, STATES};

/// Percentile (nearest rank) of sorted values.
fn pct(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

/// Human duration of scenario seconds.
pub fn human_secs(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.1} s")
    } else if s < 3600.0 {
        format!("{} min {} s", (s / 60.0).floor(), (s % 60.0).round())
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

fn ms(v: &Value) -> Option<i64> {
    v.as_i64()
}

struct Note<'a> {
    jid: i64,
    campaign: i64,
    contact: i64,
    kind: &'a str,
    created: i64,
    delivered: Option<i64>,
    error: Option<String>,
    target: String,
}

/// Measures a run.
pub fn measure(plan: &Plan, seen: &Observed, speed: f64) -> DrillOutcome {
    let scen = |real_ms: i64| real_ms.max(0) as f64 / 1000.0 * speed;
    let notes: Vec<Note> = seen
        .notifications
        .iter()
        .map(|n| Note {
            jid: n["jurisdiction_id"].as_i64().unwrap_or_default(),
            campaign: n["campaign_id"].as_i64().unwrap_or_default(),
            contact: n["contact_id"].as_i64().unwrap_or_default(),
            kind: n["event_kind"].as_str().unwrap_or(""),
            created: n["created_ms"].as_i64().unwrap_or_default(),
            delivered: ms(&n["delivered_ms"]),
            error: n["last_error"].as_str().map(String::from),
            target: n["target"].as_str().unwrap_or("").to_string(),
        })
        .collect();
    // Campaigns per inject: those whose keys name its actor.
    let campaign_of = |inject: usize| -> Vec<(i64, i64)> {
        if plan.injects[inject].kind.is_disinfo() {
            // A disinformation inject's cases; their notifications carry the case id negated.
            let mut cases: Vec<(i64, i64)> = Vec::new();
            for r in seen.injected.iter().filter(|r| r.inject == inject) {
                if let (Some(c), Some(at)) = (r.case_id, r.received_ms) {
                    match cases.iter_mut().find(|x| x.0 == -c) {
                        Some(x) => x.1 = x.1.min(at),
                        None => cases.push((-c, at)),
                    }
                }
            }
            return cases;
        }
        let a = plan.injects[inject].actor;
        let o = a.octets();
        let keys = [format!("ip:{a}"), format!("net:{}.{}.{}.0/24", o[0], o[1], o[2])];
        seen.campaigns
            .iter()
            .filter(|c| c["keys"].as_array().is_some_and(|k| k.iter().any(|k| keys.iter().any(|x| k.as_str() == Some(x)))))
            .map(|c| (c["id"].as_i64().unwrap_or_default(), c["opened_ms"].as_i64().unwrap_or_default()))
            .collect()
    };
    let priority = |office: usize, contact: i64| seen.offices[office].contacts.get(&contact).copied().unwrap_or(1);
    let office_of_jid: BTreeMap<i64, usize> = seen.offices.iter().enumerate().map(|(i, o)| (o.jid, i)).collect();
    let is_warning = |kind: &str| !kind.starts_with("state_") && kind != crate::drill::KIND_UNACKED;

    let mut paths = Vec::new();
    let mut injected = seen.injected.clone();
    injected.sort_by_key(|i| (i.injected_ms, i.office));
    for rec in &injected {
        let inj = &plan.injects[rec.inject];
        let part = &plan.participants[rec.office];
        let office = &seen.offices[rec.office];
        let campaigns = campaign_of(rec.inject);
        let ids: BTreeSet<i64> = campaigns.iter().map(|c| c.0).collect();
        let mine: Vec<&Note> = notes.iter().filter(|n| n.jid == office.jid && ids.contains(&n.campaign)).collect();
        let primary: Vec<&Note> = mine.iter().copied().filter(|n| priority(rec.office, n.contact) == 1 && is_warning(n.kind)).collect();
        // Already warned about this campaign before this inject: warned at once.
        let delivered: Vec<i64> = primary.iter().filter_map(|n| n.delivered).collect();
        let warned_ms = if delivered.iter().any(|&d| d < rec.injected_ms) {
            Some(rec.injected_ms)
        } else {
            delivered.iter().copied().min()
        };
        let escalated_ms = mine.iter().filter(|n| n.kind == crate::drill::KIND_UNACKED).map(|n| n.created).min();
        let acked = seen.acks.iter().filter(|a| a.office == rec.office && ids.contains(&a.campaign_id)).min_by_key(|a| a.at_ms);
        let campaign = campaigns.iter().min_by_key(|c| c.1);
        let outcome = if !inj.kind.sighting() {
            if rec.detected_ms.is_some() { PathOutcome::Warned } else { PathOutcome::Missed }
        } else if warned_ms.is_some() {
            PathOutcome::Warned
        } else {
            PathOutcome::Missed
        };
        paths.push(PathRecord {
            inject: inj.id.clone(),
            jurisdiction: office.name.clone(),
            state: part.state.clone(),
            real_sensor: office.real_sensor,
            targeted: true,
            injected_ms: Some(rec.injected_ms),
            detected_ms: rec.detected_ms,
            received_ms: rec.received_ms,
            campaign_id: campaign.map(|c| c.0),
            campaign_ms: campaign.map(|c| c.1),
            deliveries: mine
                .iter()
                .map(|n| Delivery {
                    channel: "webhook".into(),
                    contact: format!("{} (priority {})", n.target, priority(rec.office, n.contact)),
                    kind: n.kind.to_string(),
                    delivered_ms: n.delivered,
                    error: if n.delivered.is_none() { n.error.clone().or_else(|| Some("not delivered".into())) } else { None },
                })
                .collect(),
            warned_ms,
            acked_ms: acked.map(|a| a.at_ms),
            ack_action: acked.map(|a| a.action.clone()),
            escalated_ms,
            outcome,
        });
    }
    // False warnings: warned about a drill actor's campaign without being its target.
    let mut targeted_by_campaign: BTreeMap<i64, BTreeSet<usize>> = BTreeMap::new();
    let mut first_inject_of_campaign: BTreeMap<i64, usize> = BTreeMap::new();
    for rec in &injected {
        for (c, _) in campaign_of(rec.inject) {
            targeted_by_campaign.entry(c).or_default().insert(rec.office);
            first_inject_of_campaign.entry(c).or_insert(rec.inject);
        }
    }
    let mut false_seen = BTreeSet::new();
    for n in notes.iter().filter(|n| n.kind == "targeted" && n.delivered.is_some()) {
        let Some(&office) = office_of_jid.get(&n.jid) else { continue };
        if plan.participants[office].is_state || targeted_by_campaign.get(&n.campaign).is_some_and(|t| t.contains(&office)) {
            continue;
        }
        if !false_seen.insert((office, n.campaign)) {
            continue;
        }
        let inject = first_inject_of_campaign.get(&n.campaign).copied().unwrap_or(0);
        paths.push(PathRecord {
            inject: plan.injects[inject].id.clone(),
            jurisdiction: seen.offices[office].name.clone(),
            state: plan.participants[office].state.clone(),
            real_sensor: seen.offices[office].real_sensor,
            targeted: false,
            injected_ms: None,
            detected_ms: None,
            received_ms: None,
            campaign_id: Some(n.campaign),
            campaign_ms: None,
            deliveries: vec![Delivery { channel: "webhook".into(), contact: n.target.clone(), kind: n.kind.into(), delivered_ms: n.delivered, error: None }],
            warned_ms: n.delivered,
            acked_ms: None,
            ack_action: None,
            escalated_ms: None,
            outcome: PathOutcome::FalseWarning,
        });
    }

    // States: told (roll-up) after their first county was hit.
    let mut state_rows = Vec::new();
    let mut state_secs: Vec<(String, Option<f64>)> = Vec::new();
    let codes: BTreeSet<&str> = plan.participants.iter().map(|p| p.state.as_str()).collect();
    for code in codes {
        let name = STATES.iter().find(|(c, _)| *c == code).map_or(code, |s| s.1);
        let members: Vec<usize> = (0..plan.participants.len()).filter(|&i| plan.participants[i].state == code).collect();
        let state_office = members.iter().copied().find(|&i| plan.participants[i].is_state);
        let hit: Vec<&PathRecord> = paths.iter().filter(|p| p.targeted && p.state == code && plan.injects.iter().any(|i| i.id == p.inject && i.kind.sighting())).collect();
        let targeted: BTreeSet<&str> = hit.iter().map(|p| p.jurisdiction.as_str()).collect();
        let warned: BTreeSet<&str> = hit.iter().filter(|p| p.outcome == PathOutcome::Warned).map(|p| p.jurisdiction.as_str()).collect();
        let first_hit = hit.iter().filter_map(|p| p.injected_ms).min();
        let told = state_office.and_then(|s| {
            let jid = seen.offices[s].jid;
            // A roll-up of its counties' campaign, or a disinformation case naming its counties.
            notes
                .iter()
                .filter(|n| n.jid == jid && (n.kind.starts_with("state_") || n.kind.starts_with("disinfo.")))
                .filter_map(|n| n.delivered)
                .filter(|&d| first_hit.is_none_or(|f| d >= f))
                .min()
        });
        let mut warn_secs: Vec<f64> = hit.iter().filter_map(|p| Some(scen(p.warned_ms? - p.injected_ms?))).collect();
        warn_secs.sort_by(f64::total_cmp);
        if first_hit.is_some() && state_office.is_some() {
            state_secs.push((name.to_string(), told.zip(first_hit).map(|(t, f)| scen(t - f))));
        }
        state_rows.push(StateRow {
            state: code.to_string(),
            name: name.to_string(),
            jurisdictions: members.len(),
            targeted: targeted.len(),
            warned: warned.len(),
            state_told_ms: told,
            median_warn_secs: pct(&warn_secs, 50.0),
        });
    }

    // Objectives.
    let sighting = |p: &PathRecord| plan.injects.iter().any(|i| i.id == p.inject && i.kind.sighting());
    let detects = |p: &PathRecord| plan.injects.iter().any(|i| i.id == p.inject && i.kind.detection() != ward_sim::attack::Detection::Nothing);
    let targeted: Vec<&PathRecord> = paths.iter().filter(|p| p.targeted).collect();
    let mut objectives = Vec::new();
    for o in &plan.objectives {
        let cases: Vec<Option<f64>> = match o.metric {
            Metric::Detect => targeted.iter().filter(|p| detects(p)).map(|p| Some(scen(p.detected_ms? - p.injected_ms?))).collect(),
            Metric::Hub => targeted.iter().filter(|p| detects(p)).map(|p| Some(scen(p.received_ms? - p.injected_ms?))).collect(),
            Metric::Warn => targeted.iter().filter(|p| sighting(p)).map(|p| Some(scen(p.warned_ms? - p.injected_ms?))).collect(),
            Metric::State => state_secs.iter().map(|s| s.1).collect(),
            Metric::Ack => {
                // One case per (office, campaign) that was warned or escalated to.
                let mut by: BTreeMap<(String, i64), (Option<i64>, Option<i64>)> = BTreeMap::new();
                // Disinformation messages carry no acknowledgement link: warnings only.
                let disinfo = |p: &PathRecord| plan.injects.iter().any(|i| i.id == p.inject && i.kind.is_disinfo());
                for p in targeted.iter().filter(|p| sighting(p) && !disinfo(p)) {
                    let first = [p.warned_ms, p.deliveries.iter().filter_map(|d| d.delivered_ms).min()].into_iter().flatten().min();
                    if let (Some(c), Some(f)) = (p.campaign_id, first) {
                        let e = by.entry((p.jurisdiction.clone(), c)).or_insert((Some(f), p.acked_ms));
                        e.0 = e.0.min(Some(f));
                    }
                }
                by.values().map(|(f, a)| Some(scen(a.as_ref()? - f.as_ref()?))).collect()
            }
        };
        let total = cases.len();
        let met = cases.iter().filter(|c| c.is_some_and(|s| s <= o.threshold_secs)).count();
        let mut values: Vec<f64> = cases.iter().flatten().copied().collect();
        values.sort_by(f64::total_cmp);
        let missing = cases.iter().filter(|c| c.is_none()).count();
        let rating = Rating::from_share(met, total);
        let detail = if total == 0 {
            "nothing to measure: no case of this kind happened in the run".to_string()
        } else {
            format!(
                "{met} of {total} within {}{}{}",
                human_secs(o.threshold_secs),
                pct(&values, 50.0).map(|v| format!("; median {}", human_secs(v))).unwrap_or_default(),
                if missing > 0 { format!("; {missing} never happened") } else { String::new() }
            )
        };
        objectives.push(ObjectiveResult {
            id: o.id.clone(),
            text: o.text.clone(),
            threshold_secs: o.threshold_secs,
            total,
            met,
            p50_secs: pct(&values, 50.0),
            p90_secs: pct(&values, 90.0),
            p99_secs: pct(&values, 99.0),
            max_secs: values.last().copied(),
            rating,
            detail,
        });
    }

    // Injects.
    let injects = plan
        .injects
        .iter()
        .map(|inj| {
            let mine: Vec<&PathRecord> = targeted.iter().copied().filter(|p| p.inject == inj.id).collect();
            InjectResult {
                id: inj.id.clone(),
                at_secs: inj.at_secs,
                attack: inj.kind.name().to_string(),
                description: inj.description.clone(),
                actor: if inj.domain.is_empty() { inj.actor.to_string() } else { format!("{} ({})", inj.actor, inj.domain) },
                injected_ms: mine.iter().filter_map(|p| p.injected_ms).min().unwrap_or(seen.started_ms),
                targeted: mine.len(),
                detected: mine.iter().filter(|p| p.detected_ms.is_some()).count(),
                warned: mine.iter().filter(|p| p.warned_ms.is_some()).count(),
                acknowledged: mine.iter().filter(|p| p.acked_ms.is_some()).count(),
            }
        })
        .collect::<Vec<_>>();

    // Timeline.
    let mut timeline: Vec<TimelineEntry> = Vec::new();
    for i in &injects {
        timeline.push(TimelineEntry { at_ms: i.injected_ms, what: format!("inject {}: {} ({} targets)", i.id, i.description, i.targeted) });
    }
    let mut cases: Vec<i64> = seen.injected.iter().filter_map(|r| r.case_id).collect();
    cases.sort_unstable();
    cases.dedup();
    for c in cases {
        if let Some(at) = seen.injected.iter().filter(|r| r.case_id == Some(c)).filter_map(|r| r.received_ms).min() {
            timeline.push(TimelineEntry { at_ms: at, what: format!("the hub opened disinformation case #{c}") });
        }
    }
    for c in &seen.campaigns {
        if let Some(at) = c["opened_ms"].as_i64() {
            timeline.push(TimelineEntry { at_ms: at, what: format!("the hub opened campaign #{} \"{}\"", c["id"], c["name"].as_str().unwrap_or("")) });
        }
    }
    let mut by_first: Vec<&PathRecord> = paths.iter().filter(|p| p.warned_ms.is_some() && p.targeted).collect();
    by_first.sort_by_key(|p| p.warned_ms);
    if let Some(p) = by_first.first() {
        timeline.push(TimelineEntry { at_ms: p.warned_ms.unwrap_or_default(), what: format!("first office warned: {}", p.jurisdiction) });
    }
    if let Some(p) = by_first.last() {
        timeline.push(TimelineEntry { at_ms: p.warned_ms.unwrap_or_default(), what: format!("last office warned: {} ({} in all)", p.jurisdiction, by_first.len()) });
    }
    for s in &state_rows {
        if let Some(t) = s.state_told_ms {
            timeline.push(TimelineEntry { at_ms: t, what: format!("{} told that {} of its jurisdictions were hit", s.name, s.targeted) });
        }
    }
    for p in paths.iter().filter(|p| p.escalated_ms.is_some()) {
        timeline.push(TimelineEntry { at_ms: p.escalated_ms.unwrap_or_default(), what: format!("escalation: {}'s warning was not acknowledged; sent to its next contact", p.jurisdiction) });
    }
    if let Some(a) = seen.acks.iter().min_by_key(|a| a.at_ms) {
        timeline.push(TimelineEntry { at_ms: a.at_ms, what: format!("first acknowledgement: {} ({})", seen.offices[a.office].name, a.action) });
    }
    timeline.sort_by_key(|t| t.at_ms);
    timeline.dedup_by(|a, b| a.what == b.what);
    timeline.truncate(300);

    // Strengths and improvements.
    let due = chrono::DateTime::from_timestamp_millis(seen.finished_ms + 30 * 86_400_000).unwrap_or_default().format("%Y-%m-%d").to_string();
    let mut strengths = Vec::new();
    let mut improvements = Vec::new();
    for (o, spec) in objectives.iter().zip(&plan.objectives) {
        if o.rating == Rating::P {
            strengths.push(format!("{}: all {} cases met the threshold{}.", o.text, o.total, o.p50_secs.map(|v| format!(" (median {})", human_secs(v))).unwrap_or_default()));
        } else {
            let (action, owner) = match spec.metric {
                Metric::Detect => ("Check the sensors that missed or were slow: rules loaded (`ward rules check`), the hub's indicators synced, the mirror port sees the servers' traffic.", "state security team"),
                Metric::Hub => ("Check each sensor's relay to the hub (spool backlog, credential, network path) and the hub's ingest capacity (bench-hub).", "hub operator"),
                Metric::Warn => ("Fix the contacts whose deliveries failed (each notification's page shows why), give every office a second contact, and review [correlation] min_jurisdictions for election systems.", "hub operator with each office"),
                Metric::State => ("Give every state office a working contact and check the roll-up (docs/hub.md \"State roll-up\").", "state election director"),
                Metric::Ack => ("Agree with each office who acknowledges warnings and how fast; keep escalation contacts current.", "each office's IT lead"),
            };
            improvements.push(Improvement { issue: format!("{} — rated {} ({}): {}.", o.text, o.rating.letter(), o.rating.meaning(), o.detail), corrective_action: action.into(), owner: owner.into(), due: due.clone() });
        }
    }
    let missed: Vec<&PathRecord> = paths.iter().filter(|p| p.outcome == PathOutcome::Missed).collect();
    for p in missed.iter().take(20) {
        let why = p.deliveries.iter().find_map(|d| d.error.clone()).unwrap_or_else(|| if p.detected_ms.is_none() { "the attack was not detected".into() } else { "no warning was sent".into() });
        improvements.push(Improvement {
            issue: format!("{} was not warned about inject {} ({why}){}.", p.jurisdiction, p.inject, if p.escalated_ms.is_some() { "; the warning escalated to its next contact" } else { "" }),
            corrective_action: "Correct the office's primary contact in the hub and test it (send a test warning); confirm the escalation contact.".into(),
            owner: p.jurisdiction.clone(),
            due: due.clone(),
        });
    }
    if missed.len() > 20 {
        improvements.push(Improvement { issue: format!("{} more missed paths (see paths.csv).", missed.len() - 20), corrective_action: "As above, office by office.".into(), owner: "hub operator".into(), due: due.clone() });
    }
    let false_warnings = paths.iter().filter(|p| p.outcome == PathOutcome::FalseWarning).count();
    if false_warnings > 0 {
        improvements.push(Improvement {
            issue: format!("{false_warnings} offices were warned about an actor that did not target them."),
            corrective_action: "Review which campaign keys (address, /24, ASN) joined them, and the trust settings; confirm with the offices whether they saw the actor.".into(),
            owner: "hub analysts".into(),
            due: due.clone(),
        });
    } else if !paths.is_empty() {
        strengths.push("No office was warned about an actor that did not target it.".into());
    }
    if paths.iter().any(|p| p.escalated_ms.is_some()) {
        strengths.push("Unacknowledged warnings escalated to the offices' next contacts.".into());
    }

    let states = plan.states().len();
    DrillOutcome {
        scenario: plan.name.clone(),
        title: plan.title.clone(),
        description: plan.description.trim().to_string(),
        started_ms: seen.started_ms,
        finished_ms: seen.finished_ms,
        speed,
        hub: seen.hub_label.clone(),
        jurisdictions: plan.participants.len(),
        states,
        real_sensors: seen.offices.iter().filter(|o| o.real_sensor).count(),
        simulated_relays: seen.offices.iter().filter(|o| !o.real_sensor).count(),
        objectives,
        injects,
        paths,
        state_rows,
        timeline,
        strengths,
        improvements,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_durations() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(pct(&v, 50.0), Some(5.0));
        assert_eq!(pct(&v, 90.0), Some(9.0));
        assert_eq!(pct(&v, 99.0), Some(10.0));
        assert_eq!(pct(&[], 50.0), None);
        assert_eq!(human_secs(4.24), "4.2 s");
        assert_eq!(human_secs(190.0), "3 min 10 s");
    }
}
