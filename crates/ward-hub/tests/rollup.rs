//! The state roll-up (crates/ward-hub/src/rollup.rs; docs/hub.md "States and their counties"):
//! a state's contacts hear once per campaign event when its counties are targeted, and a state's
//! users read their counties' campaigns, alerts and notifications — while a county still sees no
//! other county and a state no other state's counties. Both stores.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::webhooks::{start_receiver, Receiver, SECRET};
use common::*;
use serde_json::{json, Value};
use ward_hub::model::{now_ms, Channel, JurisdictionKind, NewContact, NewJurisdiction, Role};
use ward_hub::store::NotificationFilter;

const ACTOR: &str = "185.220.101.7";

async fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..200 {
        if let Some(v) = f() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

fn new_jurisdiction(name: &str, kind: JurisdictionKind, state: &str) -> NewJurisdiction {
    NewJurisdiction { name: name.into(), kind, state: Some(state.into()), home_net: None }
}

on_each_backend! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_state_hears_once_per_campaign_event_and_counties_hear_of_no_other_county() {
        let dir = tempfile::tempdir().unwrap();
        let receiver = Receiver::default();
        let hook_addr = start_receiver(receiver.clone()).await;
        let mut config = common::config(dir.path());
        config.notify.allow_targets = vec!["127.0.0.1/32".parse().unwrap()];
        config.correlation.digest_interval_secs = 1;
        config.correlation.escalate_at = vec![5];
        let hub = ward_hub::start(config).await.unwrap();
        let store = hub.state.store.clone();
        let now = now_ms();
        // Counties registered before their state belong to it once it is registered.
        let names = [
            ("Franklin County", JurisdictionKind::County, "OH"),
            ("Licking County", JurisdictionKind::County, "OH"),
            ("Ohio", JurisdictionKind::State, "OH"),
            ("Adams County", JurisdictionKind::County, "OH"),
            ("Pennsylvania", JurisdictionKind::State, "PA"),
            ("Allegheny County", JurisdictionKind::County, "PA"),
            ("Bucks County", JurisdictionKind::County, "PA"),
        ];
        let ids: Vec<i64> = common::db(store.as_ref(), |s| {
            names
                .iter()
                .map(|(name, kind, st)| {
                    let j = s.create_jurisdiction(&new_jurisdiction(name, *kind, st), now).unwrap().id;
                    s.create_contact(j, &NewContact { channel: Channel::Webhook, target: format!("http://{hook_addr}/hook/{}", name.replace(' ', "-")), secret: Some(SECRET.into()) }, now).unwrap();
                    j
                })
                .collect()
        });
        let [franklin, licking, ohio, adams, pennsylvania, allegheny, bucks] = ids[..] else { unreachable!() };
        let http = reqwest::Client::new();
        let base = hub.url();
        let mut sensors = std::collections::HashMap::new();
        for &j in &[franklin, licking, adams, allegheny, bucks] {
            let token = ward_hub::auth::random_token("wet");
            common::db(store.as_ref(), |s| s.create_enrollment_token(j, &ward_hub::auth::hash_token(&token), now, now + 60_000)).unwrap();
            let v: Value = http.post(format!("{base}/api/v1/sensors/enroll")).json(&json!({"token": token})).send().await.unwrap().json().await.unwrap();
            sensors.insert(j, (v["sensor"]["id"].as_i64().unwrap(), v["credential"].as_str().unwrap().to_string()));
        }
        let post = |j: i64, local: &str| {
            let (http, base, s, line) = (http.clone(), base.clone(), sensors[&j].clone(), common::alert_line(ACTOR, local, 2403300, "ET CINS Poor Reputation IP"));
            async move {
                let r = http.post(format!("{base}/api/v1/events")).bearer_auth(&s.1).header("idempotency-key", format!("{}:{}", s.0, now_ms())).body(line).send().await.unwrap();
                assert_eq!(r.status(), 200);
            }
        };
        let got = |name: &str| -> Vec<Value> { receiver.got.lock().unwrap().iter().filter(|(n, _)| n == name).map(|(_, v)| v.clone()).collect() };
        let of_type = |name: &str, t: &str| -> Vec<Value> { got(name).into_iter().filter(|v| v["type"] == t).collect() };

        // Two Ohio counties open the campaign together: Ohio hears once, naming both.
        post(franklin, "10.1.0.25").await;
        post(licking, "10.2.0.9").await;
        let rollup = until("Ohio's roll-up", || of_type("Ohio", "ward.campaign.state_targeted").first().cloned()).await;
        let counties: Vec<&str> = rollup["counties"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(counties, ["Franklin County", "Licking County"], "{rollup}");
        assert_eq!(rollup["other_jurisdictions"], 0);
        assert_eq!(rollup["remote_addresses"][0], ACTOR);
        assert!(rollup["text"].as_str().unwrap().contains("2 of your counties"), "{rollup}");
        until("both counties' warnings", || (got("Franklin-County").len() == 1 && got("Licking-County").len() == 1).then_some(())).await;
        assert!(!got("Franklin-County")[0].to_string().contains("Licking"), "a county's message names another county");

        // A Pennsylvania county joins: Pennsylvania hears, with Ohio's counties as a count only.
        post(allegheny, "10.8.0.1").await;
        let pa = until("Pennsylvania's roll-up", || of_type("Pennsylvania", "ward.campaign.state_targeted").first().cloned()).await;
        assert_eq!(pa["counties"][0]["name"], "Allegheny County");
        assert_eq!(pa["other_jurisdictions"], 2);
        for secret in ["Franklin", "Licking", "Ohio", "10.1.0.25", "10.2.0.9"] {
            assert!(!pa.to_string().contains(secret), "Pennsylvania's roll-up leaks {secret}: {pa}");
        }

        // A third Ohio county joins after Ohio was told (the delivery recorded): one digest, not a
        // second first warning.
        let delivered = || {
            let notes = common::db(store.as_ref(), |s| s.notifications(&NotificationFilter { jurisdiction_id: Some(ohio), limit: 100, ..Default::default() })).unwrap();
            notes.iter().all(|n| n.status == "delivered").then_some(())
        };
        until("Ohio's roll-up recorded as delivered", delivered).await;
        post(adams, "10.3.0.7").await;
        let digest = until("Ohio's digest", || of_type("Ohio", "ward.campaign.state_grew").first().cloned()).await;
        assert_eq!(digest["counties_total"], 3, "{digest}");
        assert_eq!(of_type("Ohio", "ward.campaign.state_targeted").len(), 1);

        // The fifth jurisdiction escalates the campaign: each state hears it once, however many
        // of its counties are in it.
        post(bucks, "10.9.0.3").await;
        until("both states' escalations", || {
            (of_type("Ohio", "ward.campaign.state_escalated").len() == 1 && of_type("Pennsylvania", "ward.campaign.state_escalated").len() == 1).then_some(())
        })
        .await;
        // Nothing further is pending, and the log holds exactly the expected roll-ups.
        let notes = common::db(store.as_ref(), |s| s.notifications(&NotificationFilter { limit: 10_000, ..Default::default() })).unwrap();
        let count = |j: i64, kind: &str| notes.iter().filter(|n| n.jurisdiction_id == j && n.event_kind == kind).count();
        assert_eq!((count(ohio, "state_targeted"), count(ohio, "state_grew"), count(ohio, "state_escalated")), (1, 1, 1));
        assert_eq!((count(pennsylvania, "state_targeted"), count(pennsylvania, "state_escalated")), (1, 1));
        assert!(count(pennsylvania, "state_grew") <= 1, "Bucks joining makes at most one digest");
        assert_eq!(count(ohio, "targeted"), 0, "the state itself was not targeted");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let ohio_msgs = got("Ohio");
        assert_eq!(ohio_msgs.len(), 3, "one roll-up per campaign event: {ohio_msgs:?}");
        hub.shutdown().await;
    }
}

/// Ohio with three counties, Pennsylvania with one; one actor across Franklin, Licking and
/// Allegheny.
struct World {
    h: Hub,
    ohio: i64,
    franklin: i64,
    licking: i64,
    adams: i64,
    allegheny: i64,
    campaign: i64,
    oh_state: String,
    franklin_user: String,
    pa_state: String,
}

async fn world() -> World {
    let h = hub();
    let ohio = h.jurisdiction("Ohio", "OH");
    let franklin = h.jurisdiction("Franklin County", "OH");
    let licking = h.jurisdiction("Licking County", "OH");
    let adams = h.jurisdiction("Adams County", "OH");
    let pa = h.jurisdiction("Pennsylvania", "PA");
    let allegheny = h.jurisdiction("Allegheny County", "PA");
    h.user("oh-state", Role::Viewer, Some(ohio));
    h.user("franklin", Role::Admin, Some(franklin));
    h.user("pa-state", Role::Admin, Some(pa));
    let now = now_ms();
    for (j, to) in [(franklin, "it@franklin.example.gov"), (licking, "it@licking.example.gov"), (ohio, "soc@ohio.example.gov"), (allegheny, "it@allegheny.example.gov")] {
        h.db(|s| s.create_contact(j, &NewContact { channel: Channel::Email, target: to.into(), secret: None }, now)).unwrap();
    }
    for (j, local, sig) in [(franklin, "10.1.0.25", "FRANKLIN-SIG"), (licking, "10.2.0.9", "LICKING-SIG"), (allegheny, "10.8.0.1", "ALLEGHENY-SIG")] {
        let sensor = h.sensor(j).await;
        let r = h.post_events((sensor.0, &sensor.1), 1, alert_line(ACTOR, local, 7, sig), false).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let campaigns = h.db(|s| s.campaigns(false)).unwrap();
    assert_eq!(campaigns.len(), 1);
    World {
        oh_state: h.login("oh-state").await,
        franklin_user: h.login("franklin").await,
        pa_state: h.login("pa-state").await,
        campaign: campaigns[0].id,
        h,
        ohio,
        franklin,
        licking,
        adams,
        allegheny,
    }
}

on_each_backend! {
    #[tokio::test]
    async fn a_state_user_reads_its_counties_in_the_api_and_the_dashboard() {
        let w = world().await;
        let (h, t) = (&w.h, w.oh_state.as_str());
        // Its jurisdictions: itself and its counties.
        let list = h.get("/api/v1/jurisdictions", Some(t)).await.json();
        let mut names: Vec<&str> = list.as_array().unwrap().iter().map(|j| j["name"].as_str().unwrap()).collect();
        names.sort();
        assert_eq!(names, ["Adams County", "Franklin County", "Licking County", "Ohio"]);
        // The campaign, with the counties it hit by name and the rest as a count.
        let list = h.get("/api/v1/campaigns", Some(t)).await.json();
        assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
        let c = h.get(&format!("/api/v1/campaigns/{}", w.campaign), Some(t)).await.json();
        let counties: Vec<&str> = c["counties"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(counties.len(), 2);
        assert!(counties.contains(&"Franklin County") && counties.contains(&"Licking County"), "{c}");
        assert_eq!(c["other_jurisdictions"], 1);
        assert!(!c.to_string().contains("Allegheny") && !c.to_string().contains("10.8.0.1"), "{c}");
        // Its counties' alerts and notifications, all together or one county at a time.
        let events = h.get("/api/v1/events", Some(t)).await.json();
        let sigs: Vec<String> = events.as_array().unwrap().iter().filter_map(|e| e["signature"].as_str().map(String::from)).collect();
        assert!(sigs.contains(&"FRANKLIN-SIG".to_string()) && sigs.contains(&"LICKING-SIG".to_string()), "{sigs:?}");
        assert!(!sigs.contains(&"ALLEGHENY-SIG".to_string()));
        let one = h.get(&format!("/api/v1/events?jurisdiction_id={}", w.licking), Some(t)).await;
        assert_eq!(one.status, StatusCode::OK);
        assert!(one.text().contains("LICKING-SIG") && !one.text().contains("FRANKLIN-SIG"));
        let notes = h.get("/api/v1/notifications", Some(t)).await.json();
        let kinds: Vec<(&str, i64)> = notes.as_array().unwrap().iter().map(|n| (n["event_kind"].as_str().unwrap(), n["jurisdiction_id"].as_i64().unwrap())).collect();
        assert!(kinds.contains(&("state_targeted", w.ohio)) && kinds.contains(&("targeted", w.franklin)), "{kinds:?}");
        assert_eq!(h.get(&format!("/api/v1/jurisdictions/{}/sensors", w.franklin), Some(t)).await.status, StatusCode::OK);
        // Where a county's warnings go stays the county's.
        assert_eq!(h.get(&format!("/api/v1/jurisdictions/{}/contacts", w.franklin), Some(t)).await.status, StatusCode::FORBIDDEN);
        assert_eq!(h.get(&format!("/api/v1/retrohunts?jurisdiction={}", w.franklin), Some(t)).await.status, StatusCode::OK);
        // Another state's county: as if it did not exist.
        for path in [
            format!("/api/v1/jurisdictions/{}", w.allegheny),
            format!("/api/v1/events?jurisdiction_id={}", w.allegheny),
            format!("/api/v1/notifications?jurisdiction_id={}", w.allegheny),
            format!("/api/v1/retrohunts?jurisdiction={}", w.allegheny),
            format!("/jurisdictions/{}", w.allegheny),
        ] {
            assert_eq!(h.get(&path, Some(t)).await.status, StatusCode::NOT_FOUND, "{path}");
        }
        // The dashboard: the state's page lists its counties and the campaign that hit them.
        let page = h.get(&format!("/jurisdictions/{}", w.ohio), Some(t)).await;
        assert_eq!(page.status, StatusCode::OK);
        let body = page.text();
        assert!(body.contains("Campaigns that hit your counties") && body.contains("Franklin County") && body.contains("Adams County"), "{body}");
        let page = h.get(&format!("/campaigns/{}", w.campaign), Some(t)).await.text();
        assert!(page.contains("Licking County") && page.contains("10.2.0.9") && !page.contains("Allegheny"), "{page}");
        assert_eq!(h.get(&format!("/jurisdictions/{}", w.adams), Some(t)).await.status, StatusCode::OK);
        let notes_page = h.get("/notifications", Some(t)).await.text();
        assert!(notes_page.contains("state_targeted"), "{notes_page}");
    }

    #[tokio::test]
    async fn a_county_sees_no_other_county_and_a_state_no_other_states_counties() {
        let w = world().await;
        let h = &w.h;
        // Franklin: its own data only, its state and sibling counties as if they did not exist.
        let t = w.franklin_user.as_str();
        for path in [
            format!("/api/v1/jurisdictions/{}", w.licking),
            format!("/api/v1/jurisdictions/{}", w.ohio),
            format!("/api/v1/jurisdictions/{}/sensors", w.licking),
            format!("/api/v1/events?jurisdiction_id={}", w.licking),
            format!("/api/v1/notifications?jurisdiction_id={}", w.ohio),
            format!("/api/v1/retrohunts?jurisdiction={}", w.licking),
            format!("/jurisdictions/{}", w.licking),
            format!("/jurisdictions/{}", w.ohio),
        ] {
            assert_eq!(h.get(&path, Some(t)).await.status, StatusCode::NOT_FOUND, "{path}");
        }
        for path in ["/api/v1/jurisdictions", "/api/v1/campaigns", "/api/v1/events", "/api/v1/notifications"] {
            let body = h.get(path, Some(t)).await.text();
            for secret in ["Licking", "LICKING-SIG", "10.2.0.9", "Allegheny", "state_targeted", "soc@ohio"] {
                assert!(!body.contains(secret), "{path} leaks {secret} to Franklin: {body}");
            }
        }
        let c = h.get(&format!("/api/v1/campaigns/{}", w.campaign), Some(t)).await.json();
        assert_eq!(c["other_jurisdictions"], 2, "a count, never names: {c}");
        // Pennsylvania's state user: Allegheny, and nothing of Ohio.
        let t = w.pa_state.as_str();
        for path in ["/api/v1/jurisdictions", "/api/v1/campaigns", "/api/v1/events", "/api/v1/notifications", "/notifications"] {
            let body = h.get(path, Some(t)).await.text();
            for secret in ["Franklin", "Licking", "FRANKLIN-SIG", "10.1.0.25", "Ohio", "soc@ohio"] {
                assert!(!body.contains(secret), "{path} leaks {secret} to Pennsylvania: {body}");
            }
        }
        let c = h.get(&format!("/api/v1/campaigns/{}", w.campaign), Some(t)).await.json();
        assert_eq!(c["counties"][0]["name"], "Allegheny County");
        assert_eq!(c["other_jurisdictions"], 2);
        for path in [format!("/api/v1/jurisdictions/{}", w.franklin), format!("/jurisdictions/{}", w.ohio), format!("/api/v1/events?jurisdiction_id={}", w.franklin)] {
            assert_eq!(h.get(&path, Some(t)).await.status, StatusCode::NOT_FOUND, "{path}");
        }
    }
}
