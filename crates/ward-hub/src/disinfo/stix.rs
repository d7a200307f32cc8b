//! Disinformation cases as STIX 2.1 (docs/disinformation.md "STIX mapping"): what the TAXII
//! publisher ([`crate::share::publish`]) stores for each case, and what a receiving hub reads
//! back from a peer's objects ([`received_cases`], shown in `GET /api/v1/federation`).
//!
//! A case becomes:
//! * a `report` (`name` = the case's claim, `description` = the truth and its citation,
//!   `report_types: ["threat-report"]`, `published` = when the case opened, `labels` with
//!   [`CASE_LABEL`], the category, urgency and status), whose `object_refs` name
//! * an `observed-data` per post (one per normalised URL key, over every report of the case:
//!   first and last seen, `number_observed` = the reports that gave it) referring to
//! * a `url` SCO (the URL as reported, tracking parameters, credentials and fragment removed —
//!   share ids such as `igsh` or `s` can name who shared it; id per the STIX 2.1 rules for
//!   SCOs: UUIDv5 of `{"value": …}` under the STIX namespace, so every hub names a URL alike),
//! * an `attack-pattern` per DISARM technique given in any report, named from the framework,
//!   with `external_references: [{source_name: "DISARM", external_id}]` and the CC BY-SA
//!   attribution in its `description`.
//!
//! `created_by_ref` is the hub's own identity: never an office. No reporter, office,
//! jurisdiction, screenshot or note is written. Every object carries the hub's TLP
//! (`[taxii] tlp`, never RED). SDO ids are deterministic under the hub's [`IdSpace`]
//! (`report|disinfo-case|7`, `observed-data|disinfo-case|7|x.com/status/1`,
//! `attack-pattern|disarm|T0049`), so a new report or a status change is a new version of the
//! same report (its `modified` is the case's last change), never a new object.
//!
//! Which cases: every case with at least one report (every case) whose jurisdictions are not
//! all drill jurisdictions, from the moment it opens; closed cases stay published (status
//! `closed` in the labels).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;
use ward_model::tlp::Tlp;

use super::{disarm, CaseDetail};
use crate::model::Millis;
use crate::share::stix::{self, Common, IdSpace};
use crate::store::{Store, StoreResult};

/// The label every case's report carries (how a receiving hub finds cases among reports).
pub const CASE_LABEL: &str = "ward-disinfo-case";
/// Cases published at most per run (most recently changed first).
pub const MAX_CASES: usize = 10_000;
/// The STIX 2.1 namespace for SCO ids (STIX 2.1 section 2.9).
pub const SCO_NAMESPACE: Uuid = Uuid::from_u128(0x00ab_edb4_aa42_57c7_88fa_3d5d_1a5d_1ec7);

/// The URL as shared: the reported one without tracking parameters, user info or fragment;
/// `None` when it does not parse (the store only holds URLs that did).
pub fn shared_url(raw: &str) -> Option<String> {
    let mut u = url::Url::parse(raw.trim()).ok()?;
    if !matches!(u.scheme(), "http" | "https") {
        return None;
    }
    let kept: Vec<(String, String)> = u.query_pairs().filter(|(k, _)| !super::cases::is_tracking_param(k)).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    if kept.is_empty() {
        u.set_query(None);
    } else {
        u.query_pairs_mut().clear().extend_pairs(kept);
    }
    u.set_fragment(None);
    let _ = u.set_username("");
    let _ = u.set_password(None);
    Some(u.to_string())
}

/// The id of a `url` SCO (deterministic, as STIX 2.1 defines for SCOs).
pub fn url_id(value: &str) -> String {
    format!("url--{}", Uuid::new_v5(&SCO_NAMESPACE, json!({ "value": value }).to_string().as_bytes()))
}

fn with_marking(mut o: Map<String, Value>, tlp: Tlp) -> Value {
    o.insert("object_marking_refs".into(), json!([tlp.stix_id()]));
    Value::Object(o)
}

/// The STIX objects of one case (without the hub's identity and the marking definitions,
/// which the publisher adds).
pub fn case_objects(ids: &IdSpace, detail: &CaseDetail, tlp: Tlp) -> Vec<Value> {
    let case = &detail.case;
    let hub_id = ids.id("identity", "hub");
    let c = |created: Millis, modified: Millis| Common { created_ms: created, modified_ms: modified, tlp, created_by_ref: Some(hub_id.clone()), revoked: false, confidence: None };
    let key = format!("disinfo-case|{}", case.id);
    let mut out = Vec::new();
    let mut refs = Vec::new();
    // Posts: normalised key → (shared URL, first, last, reports).
    let mut posts: BTreeMap<String, (String, Millis, Millis, i64)> = BTreeMap::new();
    let mut techniques = BTreeSet::new();
    let mut reports: Vec<_> = detail.reports.iter().collect();
    reports.sort_by_key(|r| (r.created_ms, r.id));
    for r in &reports {
        let seen = r.seen_ms.map_or(r.created_ms, |s| s.min(r.created_ms));
        for raw in &r.urls {
            let (Ok(k), Some(shared)) = (super::cases::normalize_url(raw), shared_url(raw)) else { continue };
            let p = posts.entry(k).or_insert((shared, seen, r.created_ms, 0));
            p.1 = p.1.min(seen);
            p.2 = p.2.max(r.created_ms);
            p.3 += 1;
        }
        techniques.extend(r.disarm.iter().cloned());
    }
    for (k, (value, first, last, n)) in &posts {
        let sco = url_id(value);
        let mut u = Map::new();
        u.insert("type".into(), json!("url"));
        u.insert("spec_version".into(), json!(stix::SPEC_VERSION));
        u.insert("id".into(), json!(sco));
        u.insert("value".into(), json!(value));
        out.push(with_marking(u, tlp));
        let od_id = ids.id("observed-data", &format!("{key}|{k}"));
        let mut od = stix::base("observed-data", &od_id, &c(*first, *last));
        od.insert("first_observed".into(), json!(stix::timestamp(*first)));
        od.insert("last_observed".into(), json!(stix::timestamp((*last).max(*first))));
        od.insert("number_observed".into(), json!((*n).clamp(1, 999_999_999)));
        od.insert("object_refs".into(), json!([sco]));
        out.push(Value::Object(od));
        refs.push(od_id);
        refs.push(sco);
    }
    for t in &techniques {
        let Ok(name) = disarm::check(t) else { continue };
        let ap_id = ids.id("attack-pattern", &format!("disarm|{t}"));
        let mut ap = stix::base("attack-pattern", &ap_id, &c(0, 0));
        ap.insert("name".into(), json!(name));
        ap.insert("description".into(), json!(format!("DISARM technique {t}: {name}. {} (https://github.com/DISARMFoundation/DISARMframeworks).", disarm::ATTRIBUTION)));
        ap.insert("external_references".into(), json!([{ "source_name": "DISARM", "external_id": t }]));
        out.push(Value::Object(ap));
        refs.push(ap_id);
    }
    let first = reports.first();
    let truth = first.map_or("", |r| r.truth.as_str());
    let citation = first.map_or("", |r| r.citation.as_str());
    let mut description = format!("False claim. What is true: {truth}");
    if !citation.is_empty() {
        description.push_str(&format!(" (source: {citation})"));
    }
    let offices: BTreeSet<i64> = detail.reports.iter().map(|r| r.jurisdiction_id).collect();
    description.push_str(&format!("\nReported by {} election office(s); {} jurisdiction(s) concerned; status {}.", offices.len(), case.jurisdictions.len(), case.status));
    let report_id = ids.id("report", &key);
    let mut report = stix::base("report", &report_id, &c(case.created_ms, case.updated_ms));
    report.insert("name".into(), json!(case.claim));
    report.insert("description".into(), json!(description));
    report.insert("report_types".into(), json!(["threat-report"]));
    report.insert("published".into(), json!(stix::timestamp(case.created_ms)));
    report.insert("labels".into(), json!([CASE_LABEL, "disinformation", case.category, format!("urgency-{}", case.urgency), format!("status-{}", case.status)]));
    if refs.is_empty() {
        // A report must name something: the hub that wrote it.
        refs.push(hub_id.clone());
    }
    report.insert("object_refs".into(), json!(refs));
    out.push(Value::Object(report));
    out
}

/// Every published case's objects (see the module note), for the publisher.
pub fn published_objects(store: &dyn Store, ids: &IdSpace, tlp: Tlp) -> StoreResult<Vec<Value>> {
    let drill: BTreeSet<i64> = store.jurisdictions()?.into_iter().filter(|j| j.drill).map(|j| j.id).collect();
    let mut out = Vec::new();
    for case in store.disinfo_cases(None, MAX_CASES)? {
        if !case.jurisdictions.is_empty() && case.jurisdictions.iter().all(|j| drill.contains(j)) {
            continue;
        }
        let Some(detail) = store.disinfo_case(case.id)? else { continue };
        if detail.reports.is_empty() {
            continue;
        }
        out.extend(case_objects(ids, &detail, tlp));
    }
    Ok(out)
}

/// A case received from a peer hub, as `GET /api/v1/federation` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReceivedCase {
    /// The STIX id of its report.
    pub id: String,
    pub claim: String,
    pub description: String,
    pub labels: Vec<String>,
    pub published: String,
    pub modified: String,
    /// The posts (url values).
    pub urls: Vec<String>,
    /// DISARM technique ids.
    pub disarm: Vec<String>,
    /// The hub that wrote it (its identity's name), when its identity came too.
    pub from: Option<String>,
    pub tlp: Option<String>,
}

/// The cases among received objects (newest version of each object): reports labelled
/// [`CASE_LABEL`], with their posts and techniques resolved through the other objects.
pub fn received_cases(objects: &[Value]) -> Vec<ReceivedCase> {
    let by_id: BTreeMap<&str, &Value> = objects.iter().filter_map(|o| o["id"].as_str().map(|id| (id, o))).collect();
    let strings = |v: &Value| -> Vec<String> { v.as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect() };
    let mut out = Vec::new();
    for r in objects.iter().filter(|o| o["type"] == "report") {
        let labels = strings(&r["labels"]);
        if !labels.iter().any(|l| l == CASE_LABEL) {
            continue;
        }
        let mut urls = BTreeSet::new();
        let mut techniques = BTreeSet::new();
        for target in strings(&r["object_refs"]) {
            let Some(o) = by_id.get(target.as_str()) else { continue };
            match o["type"].as_str() {
                Some("url") => {
                    urls.extend(o["value"].as_str().map(str::to_string));
                }
                Some("observed-data") => {
                    for sco in strings(&o["object_refs"]) {
                        urls.extend(by_id.get(sco.as_str()).and_then(|u| u["value"].as_str()).map(str::to_string));
                    }
                }
                Some("attack-pattern") => {
                    for e in o["external_references"].as_array().into_iter().flatten().filter(|e| e["source_name"] == "DISARM") {
                        techniques.extend(e["external_id"].as_str().map(str::to_string));
                    }
                }
                _ => {}
            }
        }
        let from = r["created_by_ref"].as_str().and_then(|i| by_id.get(i)).and_then(|i| i["name"].as_str()).map(str::to_string);
        let tlp = Tlp::from_marking_refs(strings(&r["object_marking_refs"]).iter().map(String::as_str)).map(|t| t.to_string());
        let text = |k: &str| r[k].as_str().unwrap_or_default().to_string();
        out.push(ReceivedCase {
            id: text("id"),
            claim: text("name"),
            description: text("description"),
            labels,
            published: text("published"),
            modified: text("modified"),
            urls: urls.into_iter().collect(),
            disarm: techniques.into_iter().collect(),
            from,
            tlp,
        });
    }
    out.sort_by(|a, b| b.modified.cmp(&a.modified).then(a.id.cmp(&b.id)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disinfo::{Case, Report};

    fn report(id: i64, jurisdiction: i64, urls: &[&str], disarm: &[&str], at: Millis) -> Report {
        Report {
            id,
            case_id: 7,
            jurisdiction_id: jurisdiction,
            reporter_username: "clerk-adams".into(),
            on_behalf: false,
            platform: "x".into(),
            category: "voting-logistics".into(),
            urgency: "high".into(),
            claim: "Polls close at 5pm".into(),
            truth: "Polls are open until 7pm".into(),
            citation: "A.R.S. § 16-565".into(),
            seen_ms: Some(at - 60_000),
            views: None,
            shares: None,
            disarm: disarm.iter().map(|s| s.to_string()).collect(),
            urls: urls.iter().map(|s| s.to_string()).collect(),
            concerns: vec![jurisdiction],
            screenshots: vec![],
            created_ms: at,
        }
    }

    fn detail() -> CaseDetail {
        let t0 = 1_793_710_800_000;
        CaseDetail {
            case: Case { id: 7, claim: "Polls close at 5pm".into(), category: "voting-logistics".into(), urgency: "high".into(), status: "new".into(), reports: 2, jurisdictions: vec![3, 4], created_ms: t0, updated_ms: t0 + 5_000 },
            reports: vec![
                report(1, 3, &["https://mobile.twitter.com/a/status/1789?s=20&igsh=abc#frag"], &["T0049"], t0),
                report(2, 4, &["https://x.com/b/status/1789", "https://user:pw@example.org/post?id=5&utm_source=z"], &["T0049", "T9999"], t0 + 5_000),
            ],
            timeline: vec![],
        }
    }

    #[test]
    fn a_case_maps_to_a_report_posts_and_techniques_without_the_reporter() {
        let ids = IdSpace::for_hub("ohio");
        let objects = case_objects(&ids, &detail(), Tlp::Green);
        let text = serde_json::to_string(&objects).unwrap();
        for secret in ["clerk-adams", "igsh", "s=20", "frag", "pw@", "utm_source"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        let of = |t: &str| objects.iter().filter(|o| o["type"] == t).collect::<Vec<_>>();
        assert_eq!(of("observed-data").len(), 2, "one post under two URL forms is one observed-data");
        assert_eq!(of("url").len(), 2);
        assert_eq!(of("observed-data").iter().map(|o| o["number_observed"].as_i64().unwrap()).max(), Some(2));
        let ap = of("attack-pattern");
        assert_eq!(ap.len(), 1, "unknown technique ids are left out");
        assert_eq!(ap[0]["external_references"][0], json!({"source_name": "DISARM", "external_id": "T0049"}));
        assert!(ap[0]["description"].as_str().unwrap().contains("CC BY-SA 4.0"));
        let r = of("report")[0];
        assert_eq!(r["name"], "Polls close at 5pm");
        assert!(r["description"].as_str().unwrap().contains("A.R.S. § 16-565"));
        assert_eq!(r["created_by_ref"], json!(ids.id("identity", "hub")));
        assert_eq!(r["object_refs"].as_array().unwrap().len(), 5);
        for o in &objects {
            assert_eq!(o["object_marking_refs"], json!([Tlp::Green.stix_id()]), "{o}");
            assert!(stix::StixObject::from_value(o.clone()).is_ok(), "{o}");
        }
        // Deterministic: the same case gives the same ids.
        assert_eq!(objects, case_objects(&ids, &detail(), Tlp::Green));
        let mut with_hub = objects.clone();
        with_hub.push(stix::identity(&ids.id("identity", "hub"), "ohio", "organization", None, &Common { created_ms: 0, modified_ms: 0, tlp: Tlp::Green, created_by_ref: None, revoked: false, confidence: None }));
        let got = received_cases(&with_hub);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].from.as_deref(), Some("ohio"));
        assert_eq!(got[0].disarm, vec!["T0049"]);
        assert_eq!(got[0].urls.len(), 2);
    }

    #[test]
    fn shared_urls_drop_what_names_the_sharer() {
        assert_eq!(shared_url("https://www.instagram.com/p/Cx1/?igsh=MzRl&utm_medium=copy").as_deref(), Some("https://www.instagram.com/p/Cx1/"));
        assert_eq!(shared_url("https://example.org/a?id=5&fbclid=x#c").as_deref(), Some("https://example.org/a?id=5"));
        assert_eq!(shared_url("javascript:alert(1)"), None);
        assert_eq!(url_id("https://example.org/"), url_id("https://example.org/"));
        assert!(stix::valid_id(&url_id("https://example.org/")));
    }
}
