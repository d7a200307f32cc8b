//! The HTTP API through the real router: enrollment, ingest contract and idempotency,
//! correlation into campaigns, indicators (and long-poll), campaign management, OpenAPI,
//! metrics and security headers.

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::json;
use ward_hub::model::Role;

on_each_backend! {
    #[tokio::test]
    async fn enrollment_token_is_one_time() {
        let h = hub();
        let j = h.jurisdiction("Ohio", "OH");
        let token = ward_hub::auth::random_token("wet");
        let now = ward_hub::model::now_ms();
        h.db(|s| s.create_enrollment_token(j, &ward_hub::auth::hash_token(&token), now, now + 60_000)).unwrap();
        let r = h.post_json("/api/v1/sensors/enroll", None, json!({"token": token})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let cred = r.json()["credential"].as_str().unwrap().to_string();
        assert_eq!(r.json()["sensor"]["jurisdiction_id"], j);
        let again = h.post_json("/api/v1/sensors/enroll", None, json!({"token": token})).await;
        assert_eq!(again.status, StatusCode::FORBIDDEN);
        assert!(again.text().contains("ask the hub for a new one"));
        // The credential is not stored in clear anywhere in the database (files, or a dump).
        let stored = if h.on_postgres() {
            vec![backends::postgres_dump()]
        } else {
            let db = std::fs::read(h.dir.path().join("ward-hub.sqlite3")).unwrap();
            let wal = std::fs::read(h.dir.path().join("ward-hub.sqlite3-wal")).unwrap_or_default();
            vec![db, wal]
        };
        assert!(stored.iter().any(|bytes| bytes.windows(4).any(|w| w == b"Ohio")), "the bytes searched hold the store");
        for bytes in &stored {
            assert!(!bytes.windows(cred.len()).any(|w| w == cred.as_bytes()), "credential stored in clear");
            assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()), "token stored in clear");
        }
    }

    #[tokio::test]
    async fn ingest_is_idempotent_and_reports_bad_lines() {
        let h = hub();
        let j = h.jurisdiction("Ohio", "OH");
        let (sid, cred) = h.sensor(j).await;
        let body = format!(
            "{}\nnot json at all\n{{\"event_type\":\"dns\",\"dns\":{{}}}}\n\n{{\"no_type\":1}}\n{{\"event_type\":\"custom\",\"custom\":{{\"count\":3}}}}\n",
            alert_line("8.8.4.4", "10.0.0.5", 2001, "ET SCAN probe")
        );
        let r = h.post_events((sid, &cred), 1, body.clone(), false).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let v = r.json();
        assert_eq!(v["accepted"], 3);
        assert_eq!(v["rejected_total"], 2);
        assert_eq!(v["rejected"][0]["line"], 2);
        assert_eq!(v["rejected"][1]["line"], 5);
        assert!(v["rejected"][1]["reason"].as_str().unwrap().contains("event_type"));
        assert_eq!(v["duplicate"], false);
        assert_eq!(r.headers["ward-rejected-lines"], "2");
        // The same key again: acknowledged, the same reply, nothing stored twice.
        let r2 = h.post_events((sid, &cred), 1, body.clone(), false).await;
        assert_eq!(r2.status, StatusCode::OK);
        assert_eq!(r2.json()["duplicate"], true);
        assert_eq!(r2.json()["accepted"], 3);
        assert_eq!(h.db(|s| s.events(Some(j), None, 100)).unwrap().len(), 3);
        // Unknown event types are stored as received.
        // (ward's own `contact` records are validated and kept apart: see tests/retrohunt.rs.)
        let custom = h.db(|s| s.events(Some(j), Some("custom"), 10)).unwrap();
        assert_eq!(custom[0].body["custom"]["count"], 3);
        // gzip, next sequence number.
        let r3 = h.post_events((sid, &cred), 2, gzip(body.as_bytes()), true).await;
        assert_eq!(r3.status, StatusCode::OK, "{}", r3.text());
        assert_eq!(r3.json()["accepted"], 3);
        assert_eq!(h.db(|s| s.events(Some(j), None, 100)).unwrap().len(), 6);
        // Bad gzip: 400 and nothing stored.
        let r4 = h.post_events((sid, &cred), 3, b"not gzip".to_vec(), true).await;
        assert_eq!(r4.status, StatusCode::BAD_REQUEST);
        assert_eq!(h.db(|s| s.events(Some(j), None, 100)).unwrap().len(), 6);
    }

    #[tokio::test]
    async fn ingest_needs_credentials_and_a_matching_key() {
        let h = hub();
        let j = h.jurisdiction("Ohio", "OH");
        let (sid, cred) = h.sensor(j).await;
        let r = h.post_events((sid, "wsc_forged"), 1, "{}", false).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let r = h.post_events((sid + 1, &cred), 1, "{}", false).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let req = axum::http::Request::post("/api/v1/events")
            .header("authorization", format!("Bearer {cred}"))
            .body(axum::body::Body::from("{}"))
            .unwrap();
        let r = h.send(req).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.text().contains("Idempotency-Key"));
    }

    #[tokio::test]
    async fn real_suricata_eve_is_accepted() {
        let h = hub();
        let j = h.jurisdiction("Ohio", "OH");
        let (sid, cred) = h.sensor(j).await;
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/oracle/zeek/http/get.trace.eve.json");
        let body = std::fs::read(path).or_else(|_| {
            // Any oracle file with alerts will do if that one moves.
            let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/oracle/zeek");
            let first = std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()).map(|e| e.path()).find(|p| p.to_string_lossy().ends_with(".eve.json")).unwrap();
            std::fs::read(first)
        }).unwrap();
        let lines = body.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
        let r = h.post_events((sid, &cred), 1, body, false).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.json()["accepted"], lines);
        assert_eq!(r.json()["rejected_total"], 0);
    }

    #[tokio::test]
    async fn two_jurisdictions_open_a_campaign_and_publish_indicators() {
        let h = hub();
        let oh = h.jurisdiction("Ohio", "OH");
        let pa = h.jurisdiction("Pennsylvania", "PA");
        let wi = h.jurisdiction("Wisconsin", "WI");
        h.user("ana", Role::Analyst, None);
        let ana = h.login("ana").await;
        let s_oh = h.sensor(oh).await;
        let s_pa = h.sensor(pa).await;
        let s_wi = h.sensor(wi).await;

        // One jurisdiction alone: no campaign.
        let r = h.post_events((s_oh.0, &s_oh.1), 1, alert_line("45.33.32.156", "10.1.1.10", 2010935, "ET SCAN Suspicious inbound to MSSQL"), false).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(h.get("/api/v1/campaigns", Some(&ana)).await.json().as_array().unwrap().len(), 0);
        let r = h.get("/api/v1/indicators?since=0", Some(&s_wi.1)).await;
        assert_eq!(r.json()["indicators"].as_array().unwrap().len(), 0);

        // A second jurisdiction, another address in the same /24: the prefix opens a campaign.
        let r = h.post_events((s_pa.0, &s_pa.1), 1, alert_line("10.9.9.9", "45.33.32.157", 2010935, "ET SCAN Suspicious inbound to MSSQL"), false).await;
        assert_eq!(r.status, StatusCode::OK);
        let campaigns = h.get("/api/v1/campaigns", Some(&ana)).await.json();
        assert_eq!(campaigns.as_array().unwrap().len(), 1, "{campaigns}");
        let c = &campaigns[0];
        assert_eq!(c["jurisdictions"], 2);
        assert!(c["keys"].as_array().unwrap().contains(&json!("net:45.33.32.0/24")), "{c}");

        // Two jurisdictions are warned, but the feed of every sensor waits for the publication bar
        // (three jurisdictions in good standing, docs/hub.md "Trust").
        let r = h.get("/api/v1/indicators?since=0", Some(&s_wi.1)).await;
        let v = r.json();
        assert_eq!(v["indicators"].as_array().unwrap().len(), 0, "{v}");
        let cursor = v["cursor"].as_i64().unwrap();

        // Long-poll: a later sighting by the third jurisdiction publishes the campaign's keys, its
        // own address among them, and wakes the poll.
        let h2 = h.state.clone();
        let wi_cred = s_wi.1.clone();
        let poll = tokio::spawn(async move {
            let started = std::time::Instant::now();
            let r = ward_hub::app(h2)
                .oneshot_get(&format!("/api/v1/indicators?since={cursor}&wait=20"), &wi_cred)
                .await;
            (r, started.elapsed())
        });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let r = h.post_events((s_wi.0, &s_wi.1), 1, alert_line("45.33.32.200", "192.168.1.4", 2010936, "ET SCAN other"), false).await;
        assert_eq!(r.status, StatusCode::OK);
        let (v, elapsed) = poll.await.unwrap();
        assert!(elapsed < std::time::Duration::from_secs(10), "long-poll did not wake: {elapsed:?}");
        let values: Vec<String> = v["indicators"].as_array().unwrap().iter().map(|i| i["value"].as_str().unwrap().to_string()).collect();
        assert_eq!(values, vec!["45.33.32.157".to_string(), "45.33.32.0/24".to_string(), "45.33.32.200".to_string()]);
        let cursor = v["cursor"].as_i64().unwrap();
        assert_eq!(h.get(&format!("/api/v1/indicators?since={cursor}"), Some(&s_wi.1)).await.json()["indicators"].as_array().unwrap().len(), 0);
        let c = &h.get("/api/v1/campaigns", Some(&ana)).await.json()[0];
        assert_eq!(c["jurisdictions"], 3);
        assert!(c["published_ms"].is_i64(), "{c}");

        // Internal traffic (both private) is never a sighting.
        let r = h.post_events((s_oh.0, &s_oh.1), 2, alert_line("10.0.0.1", "192.168.0.1", 1, "internal"), false).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(h.get("/api/v1/campaigns", Some(&ana)).await.json().as_array().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn analysts_rename_annotate_merge_and_close() {
        let h = hub();
        let a = h.jurisdiction("Ohio", "OH");
        let b = h.jurisdiction("Iowa", "IA");
        h.user("ana", Role::Analyst, None);
        let ana = h.login("ana").await;
        let sa = h.sensor(a).await;
        let sb = h.sensor(b).await;
        let body = format!("{}\n{}\n", alert_line("45.33.1.1", "10.0.0.1", 1, "x"), alert_line("46.1.1.1", "10.0.0.1", 1, "y"));
        h.post_events((sa.0, &sa.1), 1, body.clone(), false).await;
        h.post_events((sb.0, &sb.1), 1, body, false).await;
        let list = h.get("/api/v1/campaigns", Some(&ana)).await.json();
        assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
        let (c1, c2) = (list[0]["id"].as_i64().unwrap(), list[1]["id"].as_i64().unwrap());
        let r = h.post_json(&format!("/api/v1/campaigns/{c1}"), Some(&ana), json!({"name": "Operation Ballot", "annotation": "same tooling", "merge_from": c2, "confirm": true})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let v = r.json();
        assert_eq!(v["campaign"]["name"], "Operation Ballot");
        assert_eq!(v["campaign"]["annotation"], "same tooling");
        let keys = v["campaign"]["keys"].as_array().unwrap();
        assert!(keys.contains(&json!("ip:45.33.1.1")) && keys.contains(&json!("ip:46.1.1.1")), "{keys:?}");
        let merged = h.get(&format!("/api/v1/campaigns/{c2}"), Some(&ana)).await.json();
        assert_eq!(merged["campaign"]["status"], "merged");
        let r = h.post_json(&format!("/api/v1/campaigns/{c1}"), Some(&ana), json!({"close": true})).await;
        assert_eq!(r.json()["campaign"]["status"], "closed");
        // Confirmed, two jurisdictions are enough for the feed; closing withdraws the indicators.
        let ind = h.get("/api/v1/indicators?since=0", Some(&sa.1)).await.json();
        assert!(ind["indicators"].as_array().unwrap().iter().any(|i| i["action"] == "add" && i["value"] == "46.1.1.1"), "{ind}");
        assert!(ind["indicators"].as_array().unwrap().iter().any(|i| i["action"] == "remove"));
        // Nothing for non-analysts, or twice.
        let r = h.post_json(&format!("/api/v1/campaigns/{c1}"), Some(&ana), json!({"close": true})).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn openapi_metrics_and_headers() {
        let h = hub();
        let r = h.get("/api/v1/openapi.json", None).await;
        assert_eq!(r.status, StatusCode::OK);
        let doc = r.json();
        for path in ["/api/v1/events", "/api/v1/sensors/enroll", "/api/v1/indicators", "/api/v1/campaigns/{id}", "/api/v1/jurisdictions/{id}/contacts", "/metrics"] {
            assert!(doc["paths"].get(path).is_some(), "openapi misses {path}");
        }
        let csp = r.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"));
        assert_eq!(r.headers["x-content-type-options"], "nosniff");
        let j = h.jurisdiction("Ohio", "OH");
        let s = h.sensor(j).await;
        h.post_events((s.0, &s.1), 1, "{\"event_type\":\"dns\"}\n", false).await;
        // Metrics are for analysts (and a configured scraper token: tests/hardening/metrics_auth.rs).
        h.user("ana", Role::Analyst, None);
        let ana = h.login("ana").await;
        let m = h.get("/metrics", Some(&ana)).await.text();
        assert!(m.contains("ward_hub_events_ingested_total 1"), "{m}");
        assert!(m.contains("ward_hub_ingest_ack_seconds_count 1"), "{m}");
    }

    #[tokio::test]
    async fn rate_limits_per_sensor() {
        let h = hub_with(|c| c.limits.sensor_batches_per_sec = 1.0);
        let j = h.jurisdiction("Ohio", "OH");
        let s = h.sensor(j).await;
        let mut limited = false;
        for seq in 0..5 {
            let r = h.post_events((s.0, &s.1), seq, "{\"event_type\":\"dns\"}\n", false).await;
            if r.status == StatusCode::TOO_MANY_REQUESTS {
                assert_eq!(r.headers["retry-after"], "1");
                limited = true;
            }
        }
        assert!(limited);
    }

    #[tokio::test]
    async fn encodings_gzip_without_header_and_unsupported_ones() {
        let h = hub();
        let j = h.jurisdiction("Ohio", "OH");
        let (sid, cred) = h.sensor(j).await;
        let body = "{\"event_type\":\"dns\"}\n{\"event_type\":\"flow\"}\n";
        // `curl --data-binary @eve.json.gz` sends gzip without Content-Encoding.
        let r = h.post_events((sid, &cred), 1, gzip(body.as_bytes()), false).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.json()["accepted"], 2);
        let req = axum::http::Request::post("/api/v1/events")
            .header("authorization", format!("Bearer {cred}"))
            .header("idempotency-key", format!("{sid}:2"))
            .header("content-encoding", "br")
            .body(axum::body::Body::from(body))
            .unwrap();
        let r = h.send(req).await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", r.text());
        assert!(r.json()["error"].as_str().unwrap().contains("gzip"));
        assert_eq!(h.db(|s| s.events(Some(j), None, 100)).unwrap().len(), 2, "nothing stored for the refused batch");
        // The refused key was not consumed: the same key with a good body is stored.
        let r = h.post_events((sid, &cred), 2, body, false).await;
        assert_eq!(r.json()["duplicate"], false);
        assert_eq!(h.db(|s| s.events(Some(j), None, 100)).unwrap().len(), 4);
    }

    #[tokio::test]
    async fn many_enrollments_pass_and_failed_guesses_are_slowed() {
        let h = hub();
        let j = h.jurisdiction("Ohio", "OH");
        for _ in 0..30 {
            h.sensor(j).await;
        }
        let mut limited = false;
        for _ in 0..20 {
            let r = h.post_json("/api/v1/sensors/enroll", None, json!({"token": "wet_guess"})).await;
            match r.status {
                StatusCode::FORBIDDEN => {}
                StatusCode::TOO_MANY_REQUESTS => limited = true,
                other => panic!("unexpected {other}: {}", r.text()),
            }
        }
        assert!(limited, "guessing enrollment tokens is rate limited");
    }

    #[tokio::test]
    async fn a_webhook_contact_without_secret_gets_one_shown_once() {
        let h = hub();
        let j = h.jurisdiction("Ohio", "OH");
        h.user("ana", Role::Analyst, None);
        let ana = h.login("ana").await;
        let r = h.post_json(&format!("/api/v1/jurisdictions/{j}/contacts"), Some(&ana), json!({"channel": "webhook", "target": "https://soc.example/hook"})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let secret = r.json()["secret"].as_str().unwrap().to_string();
        assert!(secret.starts_with("whsec_") && secret.len() > 32);
        let list = h.get(&format!("/api/v1/jurisdictions/{j}/contacts"), Some(&ana)).await;
        assert!(!list.text().contains(&secret), "the secret is never listed");
        let r = h.post_json(&format!("/api/v1/jurisdictions/{j}/contacts"), Some(&ana), json!({"channel": "webhook", "target": "https://soc.example/hook", "secret": "short"})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
    }

    /// Hostile or broken input to every route answers 4xx, never a 500 or a dropped connection.
    #[tokio::test]
    async fn garbage_to_every_route_is_a_client_error() {
        let h = hub();
        let j = h.jurisdiction("Ohio", "OH");
        h.user("ana", Role::Analyst, None);
        let ana = h.login("ana").await;
        let (sid, cred) = h.sensor(j).await;
        let doc = h.get("/api/v1/openapi.json", None).await.json();
        let bodies: [&[u8]; 6] = [b"", b"{", b"\xff\xfe\x00", b"[1,2,3]", b"{\"name\": 12, \"kind\": \"galaxy\"}", b"\x1f\x8b\x08\x00garbage"];
        let mut sent = 0;
        for (template, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                for id in ["1", "-1", "99999999999999999999", "x%00y"] {
                    let path = template.replace("{id}", id);
                    for (bi, body) in bodies.iter().enumerate() {
                        for (bearer, key) in [(ana.as_str(), None), (cred.as_str(), Some(format!("{sid}:{}", 1000 + bi))), (cred.as_str(), Some("x:y".to_string()))] {
                            let mut b = axum::http::Request::builder().method(method.to_uppercase().as_str()).uri(format!("{path}?since=abc&limit=-5&wait=999999999999")).header("authorization", format!("Bearer {bearer}")).header("content-type", "application/json");
                            if let Some(k) = &key {
                                b = b.header("idempotency-key", k);
                            }
                            let r = h.send(b.body(axum::body::Body::from(body.to_vec())).unwrap()).await;
                            sent += 1;
                            assert!(r.status.as_u16() < 500 || r.status.as_u16() == 501, "{method} {path} body #{bi}: {} {}", r.status, r.text());
                        }
                    }
                }
            }
        }
        assert!(sent > 300, "{sent}");
    }
}

/// A tiny extension so a spawned task can run a GET on its own router.
trait OneshotGet {
    async fn oneshot_get(self, path: &str, bearer: &str) -> serde_json::Value;
}

impl OneshotGet for axum::Router {
    async fn oneshot_get(self, path: &str, bearer: &str) -> serde_json::Value {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let req = axum::http::Request::get(path).header("authorization", format!("Bearer {bearer}")).body(axum::body::Body::empty()).unwrap();
        let resp = self.oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap()
    }
}
