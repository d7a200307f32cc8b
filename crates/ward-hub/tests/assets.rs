//! The hub's scanner API (crate::assets) through the real router on both stores:
//! asset validation, access per jurisdiction, blackouts, uploads checked against the registry,
//! and scan-job leases that two workers never share. The scanner side of the same API is
//! tested end to end in crates/ward-scan/tests/hub.rs (a real scan through a real hub).

mod common;

use axum::http::StatusCode;
use serde_json::json;
use ward_hub::model::{now_ms, Role};

/// A scan finished two days ago.
fn finished() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(now_ms() - 2 * 86_400_000).unwrap()
}

fn scan_result(jurisdiction: &str, ip: &str, severity: &str) -> serde_json::Value {
    json!({
        "format": 1, "jurisdiction": jurisdiction, "started": finished(), "finished": finished(),
        "targets": [ip], "domains": [], "ports_per_host": 1000,
        "hosts": [{"ip": ip, "open_ports": [3389], "services": []}],
        "findings": [{"check": "exposed.rdp", "asset": ip, "port": 3389, "protocol": "tcp", "severity": severity, "confidence": "confirmed",
                      "name": "RDP", "description": "d", "evidence": "e", "solution": "s", "references": [], "known_exploited": false}]
    })
}

on_each_backend! {
    #[tokio::test]
    async fn registry_blackouts_uploads_and_leases() {
        let hub = common::hub();
        let county = hub.jurisdiction("Fairfax County", "VA");
        let city = hub.jurisdiction("Richmond City", "VA");
        hub.user("analyst", Role::Analyst, None);
        hub.user("county-admin", Role::Admin, Some(county));
        hub.user("county-viewer", Role::Viewer, Some(county));
        let analyst = hub.login("analyst").await;
        let admin = hub.login("county-admin").await;
        let viewer = hub.login("county-viewer").await;
        let assets = format!("/api/v1/jurisdictions/{county}/scan-assets");

        // validation: the error says what is accepted
        let r = hub.post_json(&assets, Some(&admin), json!({"value": "10.0.0.0/8"})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.text().contains("65,536"), "{}", r.text());
        let r = hub.post_json(&assets, Some(&admin), json!({"value": "not a host"})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        // the admin registers; the viewer may read but not register; another jurisdiction sees nothing
        for (value, kind) in [("198.51.100.0/28", "network"), ("vote.fairfax.example", "hostname")] {
            let r = hub.post_json(&assets, Some(&admin), json!({"value": value})).await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
            assert_eq!(r.json()["kind"], kind);
        }
        let r = hub.post_json(&assets, Some(&admin), json!({"value": "fairfax.example", "kind": "domain"})).await;
        assert_eq!(r.status, StatusCode::CREATED);
        let r = hub.post_json(&assets, Some(&admin), json!({"value": "198.51.100.0/28"})).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "registered twice");
        let r = hub.post_json(&assets, Some(&viewer), json!({"value": "198.51.100.99"})).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(hub.get(&assets, Some(&viewer)).await.json().as_array().unwrap().len(), 3);
        let r = hub.post_json(&format!("/api/v1/jurisdictions/{city}/scan-assets"), Some(&admin), json!({"value": "192.0.2.1"})).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);

        // targets: all registered, or only registered ones
        let r = hub.post_json("/api/v1/scan/targets", Some(&admin), json!({"jurisdiction": "Fairfax County"})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.json()["targets"], json!(["198.51.100.0/28", "vote.fairfax.example"]));
        assert_eq!(r.json()["domains"], json!(["fairfax.example"]));
        let r = hub.post_json("/api/v1/scan/targets", Some(&admin), json!({"jurisdiction": "Fairfax County", "targets": ["198.51.100.5", "198.51.100.16"]})).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert!(r.text().contains("198.51.100.16") && !r.text().contains("198.51.100.5,"), "{}", r.text());
        let r = hub.post_json("/api/v1/scan/targets", Some(&viewer), json!({"jurisdiction": "Fairfax County"})).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "a viewer does not scan");

        // uploads: inside the registry accepted, outside refused, garbage refused
        let r = hub.post_json("/api/v1/scan/results?jurisdiction=Fairfax%20County", Some(&admin), scan_result("Fairfax County", "198.51.100.7", "high")).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let due = r.json()["next_due_ms"].as_i64().unwrap();
        assert!((due - (finished().timestamp_millis() + 24 * 3600 * 1000)).abs() < 60_000, "high: rescan in 24 h");
        let r = hub.post_json("/api/v1/scan/results?jurisdiction=Fairfax%20County", Some(&admin), scan_result("Fairfax County", "203.0.113.7", "high")).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = hub.post_json("/api/v1/scan/results?jurisdiction=Fairfax%20County", Some(&admin), json!({"hello": 1})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(hub.get("/api/v1/scan/results?jurisdiction=Fairfax%20County", Some(&viewer)).await.json().as_array().unwrap().len(), 1);

        // leases: the county's last scan (two days ago, high) is past due; one worker gets it
        hub.post_json(&format!("/api/v1/jurisdictions/{city}/scan-assets"), Some(&analyst), json!({"value": "192.0.2.0/24"})).await;
        let first = hub.post_json("/api/v1/scan/jobs/claim", Some(&analyst), json!({"worker": "w1"})).await;
        let second = hub.post_json("/api/v1/scan/jobs/claim", Some(&analyst), json!({"worker": "w2"})).await;
        let third = hub.post_json("/api/v1/scan/jobs/claim", Some(&analyst), json!({"worker": "w3"})).await;
        assert_eq!((first.status, second.status, third.status), (StatusCode::OK, StatusCode::OK, StatusCode::NO_CONTENT));
        let mut got = vec![first.json()["jurisdiction"].as_str().unwrap().to_string(), second.json()["jurisdiction"].as_str().unwrap().to_string()];
        got.sort();
        assert_eq!(got, ["Fairfax County", "Richmond City"], "each jurisdiction leased once");
        // a jurisdiction admin only ever claims their own
        let r = hub.post_json("/api/v1/scan/jobs/claim", Some(&admin), json!({"worker": "w4"})).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);

        // blackouts
        let blackouts = format!("/api/v1/jurisdictions/{county}/scan-blackouts");
        let now = now_ms();
        let r = hub.post_json(&blackouts, Some(&admin), json!({"starts_ms": now, "ends_ms": now - 1, "reason": "x"})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let r = hub.post_json(&blackouts, Some(&admin), json!({"starts_ms": now - 1000, "ends_ms": now + 86_400_000, "reason": "election day"})).await;
        assert_eq!(r.status, StatusCode::CREATED);
        let r = hub.post_json("/api/v1/scan/targets", Some(&admin), json!({"jurisdiction": "Fairfax County"})).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert!(r.text().contains("election day"), "{}", r.text());
        // the dashboard report: none uploaded yet
        assert_eq!(hub.get(&format!("/scan/{county}/report.pdf"), Some(&viewer)).await.status, StatusCode::NOT_FOUND);
    }
}
