//! Retro-hunt end to end: contact records through the real ingest path, analyst indicators
//! through the real API, the hunt, hits per jurisdiction, notifications in the outbox, and one
//! delivery to a real signed-webhook receiver on loopback. Real SQLite in a temporary directory.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{json, Value};

use common::*;
use ward_hub::model::{fmt_ms, now_ms, Channel, Millis, NewContact, Role};
use ward_hub::retro;
use ward_hub::store::NotificationFilter;

/// An EVE timestamp, as a sensor writes it.
fn eve_time(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap().format("%Y-%m-%dT%H:%M:%S%.6f+0000").to_string()
}

/// A contact record as ward-sensor's hubsink writes it (inbound: the remote side initiated).
fn contact_line(remote: &str, local: &str, port: u16, inbound: bool, first: Millis, last: Millis) -> String {
    let (src, dst) = if inbound { (remote, local) } else { (local, remote) };
    json!({
        "event_type": "contact",
        "timestamp": eve_time(first),
        "src_ip": src, "dest_ip": dst, "dest_port": port, "proto": "TCP",
        "contact": {
            "remote_ip": remote, "local_ip": local, "port": port, "proto": "TCP",
            "direction": if inbound { "inbound" } else { "outbound" },
            "first_seen": eve_time(first), "last_seen": eve_time(last),
            "flows": 2, "pkts": 10, "bytes": 1000
        }
    })
    .to_string()
}

/// The outcomes of the main pass (one per indicator), without the late passes.
fn main_pass(o: Vec<retro::HuntOutcome>) -> Vec<retro::HuntOutcome> {
    o.into_iter().filter(|o| o.indicator_seq > 0).collect()
}

struct World {
    h: Hub,
    ohio: i64,
    franklin: i64,
    delaware: i64,
    analyst: String,
    franklin_viewer: String,
    sensors: Vec<(i64, String)>,
}

async fn world() -> World {
    let h = hub();
    let ohio = h.jurisdiction("Ohio", "OH");
    let franklin = h.jurisdiction("Franklin County", "OH");
    let delaware = h.jurisdiction("Delaware County", "OH");
    for (j, name) in [(ohio, "soc"), (franklin, "it"), (delaware, "clerk")] {
        let c = NewContact { channel: Channel::Email, target: format!("{name}@{j}.example.gov"), secret: None };
        h.db(|s| s.create_contact(j, &c, now_ms())).unwrap();
    }
    h.user("ana", Role::Analyst, None);
    h.user("frank", Role::Viewer, Some(franklin));
    let analyst = h.login("ana").await;
    let franklin_viewer = h.login("frank").await;
    let mut sensors = Vec::new();
    for j in [ohio, franklin, delaware] {
        sensors.push(h.sensor(j).await);
    }
    World { h, ohio, franklin, delaware, analyst, franklin_viewer, sensors }
}

impl World {
    async fn send(&self, idx: usize, seq: i64, lines: &[String]) -> Value {
        let (sid, cred) = &self.sensors[idx];
        let r = self.h.post_events((*sid, cred), seq, lines.join("\n"), false).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.json()
    }

    async fn indicator(&self, body: Value) -> ward_hub::retro::AnalystIndicator {
        let r = self.h.post_json("/api/v1/indicators", Some(&self.analyst), body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let v = r.json();
        ward_hub::retro::AnalystIndicator {
            id: v["id"].as_i64().unwrap(),
            seq: v["seq"].as_i64().unwrap(),
            kind: v["kind"].as_str().unwrap().into(),
            value: v["value"].as_str().unwrap().into(),
            description: v["description"].as_str().unwrap().into(),
            severity: v["severity"].as_str().unwrap().into(),
            expires: v["expires"].as_str().map(Into::into),
            created_by: v["created_by"].as_i64().unwrap(),
            created: v["created"].as_str().unwrap().into(),
        }
    }

    async fn hits(&self, token: &str, query: &str) -> Vec<Value> {
        let r = self.h.get(&format!("/api/v1/retrohunts{query}"), Some(token)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.json().as_array().unwrap().clone()
    }

    fn retro_notifications(&self, j: i64) -> usize {
        self.h
            .db(|s| s.notifications(&NotificationFilter { jurisdiction_id: Some(j), limit: 10_000, ..Default::default() }))
            .unwrap()
            .iter()
            .filter(|n| n.event_kind == retro::EVENT_KIND)
            .count()
    }
}

on_each_backend! {
    #[tokio::test]
    async fn contact_before_an_indicator_is_found_once_with_its_hosts_and_time() {
        let w = world().await;
        let now = now_ms();
        let (t1, t2) = (now - 3 * 3_600_000, now - 2 * 3_600_000);
        // Franklin: two hosts talked to 198.51.100.7 hours ago; Delaware: a neighbour in the same /24;
        // Ohio: only unrelated traffic.
        let v = w
            .send(1, 1, &[
                contact_line("198.51.100.7", "10.1.0.5", 443, true, t1, t1 + 60_000),
                contact_line("198.51.100.7", "10.1.0.6", 22, true, t2, t2 + 5_000),
                contact_line("192.0.2.99", "10.1.0.5", 443, false, t1, t1 + 1_000),
            ])
            .await;
        assert_eq!(v["accepted"], 3);
        w.send(2, 1, &[contact_line("198.51.100.200", "10.2.0.9", 443, false, t2, t2 + 1_000)]).await;
        w.send(0, 1, &[contact_line("203.0.113.5", "10.0.0.1", 80, true, t1, t1 + 1_000)]).await;
        // Contact records are not generic events.
        assert!(w.h.db(|s| s.events(None, Some("contact"), 10)).unwrap().is_empty());

        let ind = w.indicator(json!({"value": "198.51.100.7", "description": "credential-stuffing relay", "severity": "critical"})).await;
        assert_eq!((ind.kind.as_str(), ind.value.as_str()), ("ip", "198.51.100.7"));
        // The feed carries it like a campaign indicator.
        let feed = w.h.get("/api/v1/indicators?since=0", Some(&w.analyst)).await.json();
        assert!(feed["indicators"].as_array().unwrap().iter().any(|i| i["value"] == "198.51.100.7" && i["action"] == "add" && i["seq"] == ind.seq));

        let outcomes = main_pass(retro::hunt_now(&w.h.state).await.unwrap());
        assert_eq!(outcomes.len(), 1);
        assert_eq!(outcomes[0].hits, 1, "{outcomes:?}");
        let hits = w.hits(&w.analyst, "").await;
        assert_eq!(hits.len(), 1, "{hits:?}");
        let hit = &hits[0];
        assert_eq!(hit["jurisdiction_id"], w.franklin);
        assert_eq!(hit["local_hosts"], json!(["10.1.0.5", "10.1.0.6"]));
        assert_eq!(hit["local_hosts_total"], 2);
        assert_eq!(hit["remote_addresses"], json!(["198.51.100.7"]));
        assert_eq!(hit["first_ms"].as_i64().unwrap(), t1);
        assert_eq!(hit["last_ms"].as_i64().unwrap(), t2 + 5_000);
        assert_eq!(hit["first_seen"], fmt_ms(t1));
        assert_eq!(hit["records"], 2);
        assert_eq!(hit["indicator"]["description"], "credential-stuffing relay");
        assert_eq!(hit["indicator"]["severity"], "critical");
        assert!(hit["services"].as_array().unwrap().contains(&json!("tcp/22 inbound")));
        assert_eq!(w.retro_notifications(w.franklin), 1, "one per contact of the jurisdiction");
        assert_eq!(w.retro_notifications(w.delaware), 0);
        assert_eq!(w.retro_notifications(w.ohio), 0);

        // A /24 finds Delaware's neighbour too, and Franklin again under the new value.
        w.indicator(json!({"value": "198.51.100.0/24", "description": "the relay's hosting network", "severity": "high"})).await;
        retro::hunt_now(&w.h.state).await.unwrap();
        let hits = w.hits(&w.analyst, "").await;
        assert_eq!(hits.len(), 3);
        assert_eq!(w.retro_notifications(w.delaware), 1);
        let del = hits.iter().find(|h| h["jurisdiction_id"] == w.delaware).unwrap();
        assert_eq!(del["local_hosts"], json!(["10.2.0.9"]));
        assert!(del["services"].as_array().unwrap().contains(&json!("tcp/443 outbound")));

        // Idempotent: hunting again, or replaying the whole log after a crash, adds nothing.
        assert!(retro::hunt_now(&w.h.state).await.unwrap().is_empty());
        if w.h.on_postgres() {
            backends::postgres_execute("UPDATE retro_cursor SET seq = 0");
        } else {
            let conn = rusqlite::Connection::open(w.h.dir.path().join("ward-hub.sqlite3")).unwrap();
            conn.execute("UPDATE retro_cursor SET seq = 0", []).unwrap();
        }
        let replay = main_pass(retro::hunt_now(&w.h.state).await.unwrap());
        assert_eq!(replay.len(), 2);
        assert!(replay.iter().all(|o| o.hits == 0 && o.notifications == 0), "{replay:?}");
        assert_eq!(w.hits(&w.analyst, "").await.len(), 3);
        assert_eq!(w.retro_notifications(w.franklin), 2, "one per indicator value");
        // The same value again while it is active: refused.
        let r = w.h.post_json("/api/v1/indicators", Some(&w.analyst), json!({"value": "198.51.100.7", "description": "again"})).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    }

    #[tokio::test]
    async fn contact_after_the_indicator_is_not_a_retro_hunt_hit() {
        let w = world().await;
        let ind = w.indicator(json!({"value": "bad-relay.example", "description": "phishing"})).await;
        let ind2 = w.indicator(json!({"value": "198.51.100.0/24", "description": "scanner"})).await;
        let appeared = now_ms();
        assert!(ind2.seq > ind.seq);
        // Franklin's contact began after the indicator appeared (its sensor had it and alerts live);
        // Delaware's began before and is still going.
        w.send(1, 1, &[contact_line("198.51.100.7", "10.1.0.5", 443, true, appeared + 1_000, appeared + 2_000)]).await;
        w.send(2, 1, &[contact_line("198.51.100.8", "10.2.0.5", 443, true, appeared - 600_000, appeared + 2_000)]).await;
        // A DNS lookup of the bad domain after it appeared: not a hit either.
        let dns = json!({"timestamp": eve_time(appeared + 1_000), "event_type": "dns", "src_ip": "10.1.0.7", "dest_ip": "10.1.0.53",
                         "dns": {"type": "query", "rrname": "www.bad-relay.example", "rrtype": "A"}})
        .to_string();
        w.send(1, 2, &[dns]).await;
        // Jurisdictions register their contact records with some delay; the hunt runs now.
        let outcomes = main_pass(retro::hunt_now(&w.h.state).await.unwrap());
        assert_eq!(outcomes.len(), 2);
        let hits = w.hits(&w.analyst, "").await;
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert_eq!(hits[0]["jurisdiction_id"], w.delaware);
        assert_eq!(w.retro_notifications(w.franklin), 0);
    }

    /// A sensor relays an hour's contact records when the hour is over (and everything late after
    /// an outage): records that reach the hub after the indicator was hunted are hunted too.
    #[tokio::test]
    async fn contact_records_arriving_after_the_hunt_are_hunted_late() {
        let w = world().await;
        let ind = w.indicator(json!({"value": "198.51.100.0/24", "description": "scanner"})).await;
        let appeared = now_ms();
        assert_eq!(main_pass(retro::hunt_now(&w.h.state).await.unwrap()).len(), 1);
        assert!(w.hits(&w.analyst, "").await.is_empty(), "nothing stored yet");
        // Franklin's sensor was offline: its records from before the indicator arrive now, with one
        // from after it; Delaware relays only a record from after it.
        w.send(1, 1, &[
            contact_line("198.51.100.7", "10.1.0.5", 3389, true, appeared - 2 * 3_600_000, appeared - 2 * 3_600_000 + 10),
            contact_line("198.51.100.7", "10.1.0.9", 3389, true, appeared + 1_000, appeared + 1_010),
        ])
        .await;
        w.send(2, 1, &[contact_line("198.51.100.8", "10.2.0.5", 443, true, appeared + 1_000, appeared + 1_010)]).await;
        let outcomes = retro::hunt_now(&w.h.state).await.unwrap();
        assert!(main_pass(outcomes.clone()).is_empty(), "no new indicator: {outcomes:?}");
        let hits = w.hits(&w.analyst, "").await;
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert_eq!(hits[0]["jurisdiction_id"], w.franklin);
        assert_eq!(hits[0]["indicator"]["seq"], ind.seq);
        assert_eq!(hits[0]["local_hosts"], json!(["10.1.0.5"]), "only the contact from before the indicator");
        assert_eq!(w.retro_notifications(w.franklin), 1);
        // The late marks are consumed; more late records for the same indicator add no second warning.
        assert!(retro::hunt_now(&w.h.state).await.unwrap().is_empty());
        w.send(1, 2, &[contact_line("198.51.100.9", "10.1.0.6", 22, true, appeared - 3_600_000, appeared - 3_600_000 + 10)]).await;
        retro::hunt_now(&w.h.state).await.unwrap();
        assert_eq!(w.hits(&w.analyst, "").await.len(), 1);
        assert_eq!(w.retro_notifications(w.franklin), 1);
    }

    #[tokio::test]
    async fn domain_indicators_match_stored_dns_lookups() {
        let w = world().await;
        let before = now_ms() - 3_600_000;
        let dns = |client: &str, name: &str, typ: &str| {
            let (src, dst) = if typ == "query" { (client, "10.9.9.53") } else { ("10.9.9.53", client) };
            json!({"timestamp": eve_time(before), "event_type": "dns", "src_ip": src, "dest_ip": dst,
                   "dns": {"type": typ, "rrname": name, "rrtype": "A"}})
            .to_string()
        };
        w.send(0, 1, &[dns("10.0.0.20", "Login.Bad-Relay.example.", "query"), dns("10.0.0.21", "bad-relay.example", "answer")]).await;
        w.send(1, 1, &[dns("10.1.0.20", "notbad-relay.example", "query")]).await;
        w.indicator(json!({"value": "bad-relay.example", "description": "phishing kit host", "severity": "medium"})).await;
        retro::hunt_now(&w.h.state).await.unwrap();
        let hits = w.hits(&w.analyst, "").await;
        assert_eq!(hits.len(), 1, "a look-alike name is not a subdomain: {hits:?}");
        assert_eq!(hits[0]["jurisdiction_id"], w.ohio);
        assert_eq!(hits[0]["local_hosts"], json!(["10.0.0.20", "10.0.0.21"]));
        assert_eq!(hits[0]["names"], json!(["bad-relay.example", "login.bad-relay.example"]));
    }

    #[tokio::test]
    async fn campaign_indicators_hunt_everyone_else_and_warn_once_per_campaign() {
        let w = world().await;
        let earlier = now_ms() - 24 * 3_600_000;
        // Delaware talked to the actor yesterday; nothing alerted there.
        w.send(2, 1, &[contact_line("45.1.2.3", "10.2.0.40", 443, false, earlier, earlier + 1_000)]).await;
        // Today the actor attacks Ohio and Franklin: a campaign opens, its keys become indicators.
        w.send(0, 1, &[alert_line("45.1.2.3", "10.0.0.5", 2001, "ET SCAN probe")]).await;
        w.send(1, 1, &[alert_line("45.1.2.3", "10.1.0.5", 2001, "ET SCAN probe")]).await;
        assert_eq!(w.h.db(|s| s.campaigns(true)).unwrap().len(), 1);
        // Two jurisdictions are below the publication bar: nothing to hunt until an analyst confirms.
        assert!(main_pass(retro::hunt_now(&w.h.state).await.unwrap()).is_empty());
        let id = w.h.db(|s| s.campaigns(true)).unwrap()[0].id;
        let r = w.h.post_json(&format!("/api/v1/campaigns/{id}"), Some(&w.analyst), json!({"confirm": true})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let outcomes = main_pass(retro::hunt_now(&w.h.state).await.unwrap());
        assert!(outcomes.len() >= 2, "the address and its /24: {outcomes:?}");
        let hits = w.hits(&w.analyst, "").await;
        assert!(!hits.is_empty());
        assert!(hits.iter().all(|h| h["jurisdiction_id"] == w.delaware), "campaign members were warned already: {hits:?}");
        assert!(hits.iter().all(|h| h["indicator"]["campaign_id"].as_i64().unwrap() > 0));
        assert_eq!(w.retro_notifications(w.delaware), 1, "one warning per campaign, not one per key");
        assert_eq!(w.retro_notifications(w.ohio), 0);
    }

    #[tokio::test]
    async fn a_jurisdiction_sees_only_its_own_hits() {
        let w = world().await;
        let t = now_ms() - 3_600_000;
        w.send(1, 1, &[contact_line("198.51.100.7", "10.1.0.5", 443, true, t, t + 1)]).await;
        w.send(2, 1, &[contact_line("198.51.100.7", "10.2.0.5", 443, true, t, t + 1)]).await;
        w.indicator(json!({"value": "198.51.100.7", "description": "relay"})).await;
        retro::hunt_now(&w.h.state).await.unwrap();
        assert_eq!(w.hits(&w.analyst, "").await.len(), 2);
        assert_eq!(w.hits(&w.analyst, &format!("?jurisdiction={}", w.delaware)).await.len(), 1);
        let own = w.hits(&w.franklin_viewer, "").await;
        assert_eq!(own.len(), 1);
        assert_eq!(own[0]["jurisdiction_id"], w.franklin);
        assert!(!own[0].to_string().contains("10.2.0.5"), "nothing of Delaware's");
        assert_eq!(w.hits(&w.franklin_viewer, &format!("?jurisdiction={}", w.franklin)).await.len(), 1);
        let r = w.h.get(&format!("/api/v1/retrohunts?jurisdiction={}", w.delaware), Some(&w.franklin_viewer)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = w.h.get("/api/v1/retrohunts", None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        // And a jurisdiction's notification list holds only its own warning.
        let r = w.h.get("/api/v1/notifications", Some(&w.franklin_viewer)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let list = r.json();
        assert!(list.as_array().unwrap().iter().all(|n| n["jurisdiction_id"] == w.franklin), "{list}");
    }

    #[tokio::test]
    async fn bad_input_is_rejected() {
        let w = world().await;
        // Indicators: only analysts; bounded, validated values.
        let r = w.h.post_json("/api/v1/indicators", Some(&w.franklin_viewer), json!({"value": "198.51.100.7", "description": "x"})).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = w.h.post_json("/api/v1/indicators", None, json!({"value": "198.51.100.7", "description": "x"})).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        for body in [
            json!({"value": "10.0.0.0/8", "description": "too wide"}),
            json!({"value": "198.51.100.0/40", "description": "bad length"}),
            json!({"value": "not a domain", "description": "x"}),
            json!({"value": "bad.example", "description": ""}),
            json!({"value": "bad.example", "description": "x", "severity": "apocalyptic"}),
            json!({"value": "bad.example", "description": "x", "expires": "2001-01-01T00:00:00Z"}),
            json!({"value": "bad.example", "description": "x", "kind": "asn"}),
            json!({"value": "bad.example", "description": "x", "colour": "red"}),
            json!({"value": "x".repeat(300), "description": "x"}),
            json!({"description": "no value"}),
        ] {
            let r = w.h.post_json("/api/v1/indicators", Some(&w.analyst), body.clone()).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text());
        }
        let r = w.h.post_json("/api/v1/indicators", Some(&w.analyst), json!({"value": "bad.example", "description": "x".repeat(100_000)})).await;
        assert!(r.status == StatusCode::PAYLOAD_TOO_LARGE || r.status == StatusCode::BAD_REQUEST, "{}", r.status);
        assert_eq!(w.h.get("/api/v1/indicators?since=0", Some(&w.analyst)).await.json()["indicators"], json!([]));

        // Contact records: each bad line is rejected with its number and reason, the rest stored.
        let t = now_ms() - 3_600_000;
        let good = contact_line("198.51.100.7", "10.1.0.5", 443, true, t, t + 1);
        let lines = vec![
            good.clone(),
            good.replace("\"inbound\"", "\"sideways\""),
            good.replace("\"port\":443", "\"port\":99999"),
            good.replace("10.1.0.5", "not-an-ip"),
            r#"{"event_type":"contact","contact":{"remote_ip":"198.51.100.7"}}"#.to_string(),
            contact_line("198.51.100.7", "10.1.0.6", 443, true, now_ms() + 3_600_000, now_ms() + 3_600_001),
            contact_line("198.51.100.7", "10.1.0.7", 443, true, t + 10, t),
        ];
        let v = w.send(1, 1, &lines).await;
        assert_eq!(v["accepted"], 1, "{v}");
        assert_eq!(v["rejected_total"], 6);
        let rejected: Vec<i64> = v["rejected"].as_array().unwrap().iter().map(|r| r["line"].as_i64().unwrap()).collect();
        assert_eq!(rejected, vec![2, 3, 4, 5, 6, 7]);
        assert!(v["rejected"][0]["reason"].as_str().unwrap().contains("direction"), "{v}");
        assert!(v["rejected"][4]["reason"].as_str().unwrap().contains("future"), "{v}");
        w.indicator(json!({"value": "198.51.100.7", "description": "relay"})).await;
        retro::hunt_now(&w.h.state).await.unwrap();
        let hits = w.hits(&w.analyst, "").await;
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0]["local_hosts"], json!(["10.1.0.5"]), "only the good record was stored");
        // Query bounds.
        let r = w.h.get("/api/v1/retrohunts?limit=-1", Some(&w.analyst)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn a_second_record_for_the_same_hour_is_summed_not_duplicated() {
        let w = world().await;
        let t = (now_ms() / 3_600_000 - 2) * 3_600_000 + 60_000;
        w.send(1, 1, &[contact_line("198.51.100.7", "10.1.0.5", 443, true, t, t + 1_000)]).await;
        w.send(1, 2, &[contact_line("198.51.100.7", "10.1.0.5", 443, true, t + 600_000, t + 601_000)]).await;
        w.indicator(json!({"value": "198.51.100.7", "description": "relay"})).await;
        retro::hunt_now(&w.h.state).await.unwrap();
        let hits = w.hits(&w.analyst, "").await;
        assert_eq!(hits[0]["records"], 1);
        assert_eq!(hits[0]["pkts"], 20);
        assert_eq!(hits[0]["bytes"], 2000);
        assert_eq!(hits[0]["first_ms"].as_i64().unwrap(), t);
        assert_eq!(hits[0]["last_ms"].as_i64().unwrap(), t + 601_000);
    }

    /// The whole path with the hub's own background tasks: an analyst's indicator wakes the hunt,
    /// the hunt enqueues, the outbox delivers one signed webhook to a receiver on loopback.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_warning_reaches_a_real_webhook_once() {
        use axum::routing::post;
        type Received = Arc<Mutex<Vec<(axum::http::HeaderMap, Vec<u8>)>>>;
        let received: Received = Arc::default();
        let sink = received.clone();
        let receiver = axum::Router::new().route(
            "/hook",
            post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let sink = sink.clone();
                async move {
                    sink.lock().unwrap().push((headers, body.to_vec()));
                    StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hook_addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, receiver).await });

        let dir = tempfile::tempdir().unwrap();
        let mut hub_config = config(dir.path());
        // The receiver is on loopback, which the egress policy refuses unless listed.
        hub_config.notify.allow_targets = vec!["127.0.0.1/32".parse().unwrap()];
        let store = open_store(&hub_config);
        let running = ward_hub::start_with_store(store.clone(), hub_config).await.unwrap();
        let h = Hub { dir, state: running.state.clone(), store: store.clone() };
        let county = h.jurisdiction("Franklin County", "OH");
        let secret = "whsec_0123456789abcdef0123";
        let c = NewContact { channel: Channel::Webhook, target: format!("http://{hook_addr}/hook"), secret: Some(secret.into()) };
        h.db(|s| s.create_contact(county, &c, now_ms())).unwrap();
        h.user("ana", Role::Analyst, None);
        let analyst = h.login("ana").await;
        let sensor = h.sensor(county).await;
        let t = now_ms() - 2 * 3_600_000;
        let body = [contact_line("198.51.100.7", "10.1.0.5", 443, true, t, t + 1_000), contact_line("198.51.100.9", "10.1.0.6", 3389, true, t, t + 1_000)].join("\n");
        let r = h.post_events((sensor.0, &sensor.1), 1, body, false).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let r = h.post_json("/api/v1/indicators", Some(&analyst), json!({"value": "198.51.100.0/24", "description": "RDP brute-force network"})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());

        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while received.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Give a duplicate the chance to show up.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let got = received.lock().unwrap().clone();
        assert_eq!(got.len(), 1, "exactly one delivery");
        let (headers, body) = &got[0];
        let ts = headers["x-ward-timestamp"].to_str().unwrap();
        let sig = headers["x-ward-signature"].to_str().unwrap();
        assert!(ward_hub::notify::webhook::verify(secret, ts, body, sig, chrono::Utc::now().timestamp()), "signed");
        let msg: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(msg["type"], "ward.retrohunt");
        assert_eq!(msg["indicator"]["value"], "198.51.100.0/24");
        assert_eq!(msg["jurisdiction"]["id"], county);
        assert_eq!(msg["seen"]["local_hosts"], json!(["10.1.0.5", "10.1.0.6"]));
        assert_eq!(msg["seen"]["first"], fmt_ms(t));
        assert!(msg["text"].as_str().unwrap().contains("RDP brute-force network"));
        let delivered = h.db(|s| s.notifications(&NotificationFilter { limit: 100, ..Default::default() })).unwrap();
        assert_eq!(delivered.len(), 1);
        assert_eq!(delivered[0].status, "delivered");
        running.shutdown().await;
    }

    #[tokio::test]
    async fn retention_prunes_old_contact_records_and_expired_indicators_leave_the_feed() {
        let w = world().await;
        let now = now_ms();
        let day = 24 * 3_600_000;
        w.send(1, 1, &[
            contact_line("198.51.100.7", "10.1.0.5", 443, true, now - 40 * day, now - 40 * day + 10),
            contact_line("198.51.100.7", "10.1.0.6", 443, true, now - 3_600_000, now - 3_600_000 + 10),
        ])
        .await;
        assert_eq!(w.h.db(|s| s.prune_contacts(now - 30 * day)).unwrap(), 1);
        assert_eq!(w.h.db(|s| s.prune_contacts(now - 30 * day)).unwrap(), 0);
        w.indicator(json!({"value": "198.51.100.7", "description": "relay"})).await;
        retro::hunt_now(&w.h.state).await.unwrap();
        let hits = w.hits(&w.analyst, "").await;
        assert_eq!(hits[0]["local_hosts"], json!(["10.1.0.6"]), "the pruned record is gone");

        // Expiry: a `remove` in the feed, and the value may be entered again.
        let new = retro::NewIndicator { kind: "domain".into(), value: "gone.example".into(), description: "short-lived".into(), severity: "low".into(), expires_ms: Some(now + 1) };
        w.h.db(|s| s.add_analyst_indicator(&new, 1, now)).unwrap();
        assert_eq!(w.h.db(|s| s.expire_analyst_indicators(now + 10)).unwrap(), 1);
        assert_eq!(w.h.db(|s| s.expire_analyst_indicators(now + 20)).unwrap(), 0);
        let feed = w.h.get("/api/v1/indicators?since=0", Some(&w.analyst)).await.json();
        let actions: Vec<(String, String)> = feed["indicators"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["value"] == "gone.example")
            .map(|i| (i["action"].as_str().unwrap().to_string(), i["kind"].as_str().unwrap().to_string()))
            .collect();
        assert_eq!(actions, vec![("add".to_string(), "domain".to_string()), ("remove".to_string(), "domain".to_string())]);
        w.indicator(json!({"value": "gone.example", "description": "back again"})).await;
    }
}
