//! Drill jurisdictions (crates/ward-hub/src/drill.rs; docs/hub.md "Drill jurisdictions";
//! issue #14): made through the API with `"drill": true`, every warning to them says it is a
//! drill, a campaign only drill jurisdictions saw never reaches the all-sensor feed, and the
//! purge deletes their rows and leaves real jurisdictions' rows alone. Both stores, over real
//! HTTP with a real loopback webhook receiver.

mod common;

use std::time::Duration;

use common::webhooks::{start_receiver, Receiver, SECRET};
use common::*;
use serde_json::{json, Value};
use ward_hub::model::{now_ms, Role};
use ward_hub::store::{NotificationFilter, Store};

/// The drill's attacker: 198.18.0.0/15, the range `ward drill` uses.
const DRILL_ACTOR: &str = "198.18.3.7";
/// A real attacker, seen by real offices.
const REAL_ACTOR: &str = "185.220.101.7";

async fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..300 {
        if let Some(v) = f() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Row counts of what one jurisdiction owns, through the store interface.
fn owned(s: &dyn Store, j: i64) -> (usize, usize, usize, usize, usize) {
    (
        s.events(Some(j), None, 10_000).unwrap().len(),
        s.notifications(&NotificationFilter { jurisdiction_id: Some(j), limit: 10_000, ..Default::default() }).unwrap().len(),
        s.contacts(Some(j)).unwrap().len(),
        s.sensors(Some(j)).unwrap().len(),
        s.users(Some(j)).unwrap().len(),
    )
}

on_each_backend! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn drill_warnings_are_marked_unpublished_and_purged_leaving_real_offices_alone() {
        let dir = tempfile::tempdir().unwrap();
        let receiver = Receiver::default();
        let hook_addr = start_receiver(receiver.clone()).await;
        let mut config = common::config(dir.path());
        config.notify.allow_targets = vec!["127.0.0.1/32".parse().unwrap()];
        config.trust.publish_min_jurisdictions = 3;
        let hub = ward_hub::start(config).await.unwrap();
        let store = hub.state.store.clone();
        let phc = ward_hub::auth::hash_password(PASSWORD).unwrap();
        common::db(store.as_ref(), |s| s.create_user("ana", &phc, Role::Analyst, None, now_ms())).unwrap();
        let http = reqwest::Client::new();
        let base = hub.url();
        let login = |user: &'static str| {
            let (http, base) = (http.clone(), base.clone());
            async move {
                let r = http.post(format!("{base}/api/v1/login")).json(&json!({"username": user, "password": PASSWORD})).send().await.unwrap();
                assert_eq!(r.status(), 200, "login {user}");
                r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string()
            }
        };
        let ana = login("ana").await;

        // Three drill counties and three real ones, all through the API.
        let mut drill = Vec::new();
        let mut real = Vec::new();
        for (name, is_drill) in [("Drill Franklin County", true), ("Drill Licking County", true), ("Drill Adams County", true),
                                 ("Franklin County", false), ("Licking County", false), ("Adams County", false)] {
            let mut body = json!({"name": name, "kind": "county", "state": "OH"});
            if is_drill {
                body["drill"] = json!(true);
            }
            let r = http.post(format!("{base}/api/v1/jurisdictions")).bearer_auth(&ana).json(&body).send().await.unwrap();
            assert_eq!(r.status(), 201);
            let j: Value = r.json().await.unwrap();
            assert_eq!(j["drill"], is_drill, "{j}");
            let id = j["id"].as_i64().unwrap();
            let r = http
                .post(format!("{base}/api/v1/jurisdictions/{id}/contacts"))
                .bearer_auth(&ana)
                .json(&json!({"channel": "webhook", "target": format!("http://{hook_addr}/hook/{id}"), "secret": SECRET}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            if is_drill { drill.push(id) } else { real.push(id) }
        }
        let listed: Value = http.get(format!("{base}/api/v1/jurisdictions/{}", drill[0])).bearer_auth(&ana).send().await.unwrap().json().await.unwrap();
        assert_eq!(listed["drill"], true, "{listed}");
        // A user of a drill county and one of a real county.
        common::db(store.as_ref(), |s| {
            s.create_user("drillclerk", &phc, Role::Admin, Some(drill[0]), now_ms()).unwrap();
            s.create_user("clerk", &phc, Role::Admin, Some(real[0]), now_ms()).unwrap();
        });
        let clerk = login("clerk").await;
        let drillclerk = login("drillclerk").await;

        let mut sensors = std::collections::HashMap::new();
        for &j in drill.iter().chain(&real) {
            let r = http.post(format!("{base}/api/v1/jurisdictions/{j}/sensor-tokens")).bearer_auth(&ana).send().await.unwrap();
            assert_eq!(r.status(), 201);
            let token = r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string();
            let v: Value = http.post(format!("{base}/api/v1/sensors/enroll")).json(&json!({"token": token})).send().await.unwrap().json().await.unwrap();
            sensors.insert(j, (v["sensor"]["id"].as_i64().unwrap(), v["credential"].as_str().unwrap().to_string()));
        }
        let post = |j: i64, actor: &str, local: &str| {
            let (http, base, s, line) = (http.clone(), base.clone(), sensors[&j].clone(), common::alert_line(actor, local, 2403300, "ET CINS Poor Reputation IP"));
            async move {
                let r = http.post(format!("{base}/api/v1/events")).bearer_auth(&s.1).header("idempotency-key", format!("{}:{}", s.0, now_ms())).body(line).send().await.unwrap();
                assert_eq!(r.status(), 200);
            }
        };

        // The drill: three drill counties see the drill's actor. A campaign opens and every
        // warning says it is a drill.
        for (i, &j) in drill.iter().enumerate() {
            post(j, DRILL_ACTOR, &format!("10.{i}.0.5")).await;
        }
        for &j in &drill {
            let w = until("the drill warning", || receiver.of_type(&j.to_string(), "ward.campaign.targeted").first().cloned()).await;
            assert_eq!(w["drill"], true, "{w}");
            let text = w["text"].as_str().unwrap();
            assert!(text.starts_with(ward_hub::drill::BANNER), "{text}");
        }
        // (The subject, which email and syslog carry, starts "[DRILL] ": notify::message's unit test.)
        let campaigns: Value = http.get(format!("{base}/api/v1/campaigns")).bearer_auth(&ana).send().await.unwrap().json().await.unwrap();
        let drill_campaign = campaigns.as_array().unwrap().iter().find(|c| c["keys"].to_string().contains(DRILL_ACTOR)).cloned().expect("the drill campaign");
        assert_eq!(drill_campaign["jurisdictions"], 3, "{drill_campaign}");
        // Three jurisdictions meet the publication bar of 3, but drill ones never count.
        assert!(drill_campaign["published_ms"].is_null(), "a drill-only campaign was published: {drill_campaign}");
        let feed = common::db(store.as_ref(), |s| s.indicators_since(0, 10_000)).unwrap();
        assert!(!feed.iter().any(|i| i.value == DRILL_ACTOR), "the drill's actor reached the all-sensor feed: {feed:?}");

        // The control: three real counties see a real actor; it is published and their
        // warnings are not marked.
        for (i, &j) in real.iter().enumerate() {
            post(j, REAL_ACTOR, &format!("10.{}.0.9", i + 10)).await;
        }
        for &j in &real {
            let w = until("the real warning", || receiver.of_type(&j.to_string(), "ward.campaign.targeted").first().cloned()).await;
            assert!(w.get("drill").is_none(), "a real warning marked as a drill: {w}");
            assert!(!w["text"].as_str().unwrap().contains("DRILL"), "{w}");
        }
        let feed = common::db(store.as_ref(), |s| s.indicators_since(0, 10_000)).unwrap();
        assert!(feed.iter().any(|i| i.value == REAL_ACTOR && i.action == "add"), "the real campaign was not published: {feed:?}");
        // Every notification recorded as delivered before the purge (no delivery in flight).
        until("every delivery recorded", || {
            let notes = common::db(store.as_ref(), |s| s.notifications(&NotificationFilter { limit: 10_000, ..Default::default() })).unwrap();
            (notes.len() >= 6 && notes.iter().all(|n| n.status == "delivered")).then_some(())
        })
        .await;

        // The dashboard shows the badge on drill jurisdictions' pages and notifications only.
        let page = |path: String| {
            let (http, base, ana) = (http.clone(), base.clone(), ana.clone());
            async move { http.get(format!("{base}{path}")).bearer_auth(&ana).send().await.unwrap().text().await.unwrap() }
        };
        assert!(page(format!("/jurisdictions/{}", drill[0])).await.contains("class=\"drill\""));
        assert!(!page(format!("/jurisdictions/{}", real[0])).await.contains("class=\"drill\""));
        assert!(page(format!("/campaigns/{}", drill_campaign["id"])).await.contains("class=\"drill\""));
        // One badge per drill notification (deliveries may still add notifications: compare a
        // page with the API's list read just before it, until both agree).
        let mut agreed = false;
        for _ in 0..20 {
            let listed: Vec<serde_json::Value> = http.get(format!("{base}/api/v1/notifications?limit=1000")).bearer_auth(&ana).send().await.unwrap().json().await.unwrap();
            let want = listed.iter().filter(|n| drill.contains(&n["jurisdiction_id"].as_i64().unwrap_or_default())).count();
            let notes_page = page("/notifications".into()).await;
            if want >= 3 && notes_page.matches("class=\"drill\"").count() == want {
                agreed = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(agreed, "one badge per drill notification");

        // Only analysts purge: a real county's admin is refused, a drill county's too, and
        // nobody without a login gets in; nothing was deleted.
        for token in [&clerk, &drillclerk] {
            let r = http.post(format!("{base}/api/v1/drill/purge")).bearer_auth(token).send().await.unwrap();
            assert!(r.status() == 403 || r.status() == 404, "{}", r.status());
        }
        let r = http.post(format!("{base}/api/v1/drill/purge")).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let real_before: Vec<_> = real.iter().map(|&j| common::db(store.as_ref(), |s| owned(s, j))).collect();
        for &j in &drill {
            let (events, notes, contacts, sensors, _) = common::db(store.as_ref(), |s| owned(s, j));
            assert!(events > 0 && notes > 0 && contacts == 1 && sensors == 1);
        }

        // The preview counts and deletes nothing.
        let preview = common::db(store.as_ref(), |s| s.purge_drill(now_ms(), false)).unwrap();
        assert_eq!((preview.jurisdictions, preview.campaigns, preview.sensors, preview.contacts, preview.users), (3, 1, 3, 3, 1), "{preview:?}");
        assert_eq!(common::db(store.as_ref(), |s| s.jurisdictions()).unwrap().len(), 6);

        let r = http.post(format!("{base}/api/v1/drill/purge")).bearer_auth(&ana).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let done: ward_hub::drill::DrillPurge = r.json().await.unwrap();
        assert_eq!(done, preview, "the purge deleted what the preview counted");
        assert!(done.events >= 3 && done.notifications >= 3 && done.sightings >= 3, "{done:?}");

        // The drill rows are gone.
        let listed: Value = http.get(format!("{base}/api/v1/jurisdictions")).bearer_auth(&ana).send().await.unwrap().json().await.unwrap();
        let ids: Vec<i64> = listed.as_array().unwrap().iter().map(|j| j["id"].as_i64().unwrap()).collect();
        assert_eq!(ids.len(), 3);
        assert!(real.iter().all(|j| ids.contains(j)), "{listed}");
        for &j in &drill {
            assert_eq!(common::db(store.as_ref(), |s| owned(s, j)), (0, 0, 0, 0, 0));
            let r = http.get(format!("{base}/api/v1/jurisdictions/{j}")).bearer_auth(&ana).send().await.unwrap();
            assert_eq!(r.status(), 404);
        }
        let campaigns: Value = http.get(format!("{base}/api/v1/campaigns")).bearer_auth(&ana).send().await.unwrap().json().await.unwrap();
        assert!(!campaigns.to_string().contains(DRILL_ACTOR), "{campaigns}");
        let r = http.get(format!("{base}/api/v1/campaigns/{}", drill_campaign["id"])).bearer_auth(&ana).send().await.unwrap();
        assert_eq!(r.status(), 404);
        let r = http.get(format!("{base}/api/v1/me")).bearer_auth(&drillclerk).send().await.unwrap();
        assert_eq!(r.status(), 401, "a drill county's session outlives the purge");

        // Real jurisdictions' rows are untouched: events, notifications, contacts, sensors,
        // users, and their campaign with its three members, still published.
        let real_after: Vec<_> = real.iter().map(|&j| common::db(store.as_ref(), |s| owned(s, j))).collect();
        assert_eq!(real_before, real_after);
        let real_campaign = campaigns.as_array().unwrap().iter().find(|c| c["keys"].to_string().contains(REAL_ACTOR)).cloned().expect("the real campaign");
        assert_eq!(real_campaign["jurisdictions"], 3);
        assert!(real_campaign["published_ms"].is_i64(), "{real_campaign}");
        let r = http.get(format!("{base}/api/v1/me")).bearer_auth(&clerk).send().await.unwrap();
        assert_eq!(r.status(), 200);

        // A second purge has nothing left to do.
        let again = common::db(store.as_ref(), |s| s.purge_drill(now_ms(), true)).unwrap();
        assert!(again.is_empty(), "{again:?}");
        hub.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_campaign_drill_and_real_offices_share_keeps_its_real_members_through_the_purge() {
        let h = hub();
        h.user("ana", Role::Analyst, None);
        let ana = h.login("ana").await;
        let mut ids = Vec::new();
        for (name, d) in [("Drill Knox County", true), ("Drill Lake County", true), ("Knox County", false), ("Lake County", false)] {
            let r = h.post_json("/api/v1/jurisdictions", Some(&ana), json!({"name": name, "kind": "county", "state": "OH", "drill": d})).await;
            assert_eq!(r.status, axum::http::StatusCode::CREATED, "{}", r.text());
            ids.push(r.json()["id"].as_i64().unwrap());
        }
        // Bad input is refused with a clear error.
        let r = h.post_json("/api/v1/jurisdictions", Some(&ana), json!({"name": "X County", "kind": "county", "state": "OH", "drill": "yes"})).await;
        assert!(r.status.is_client_error(), "{}", r.text());
        assert!(h.db(|s| s.set_jurisdiction_drill(999_999, true)).is_err());
        let mut sensors = Vec::new();
        for &j in &ids {
            sensors.push(h.sensor(j).await);
        }
        // All four see one actor: one campaign with two drill and two real members. Two real
        // members are below the bar of 3, so it is not published although it has four members.
        for (i, (id, cred)) in sensors.iter().enumerate() {
            let r = h.post_events((*id, cred), 1, common::alert_line(REAL_ACTOR, &format!("10.{i}.0.1"), 1, "scan"), false).await;
            assert_eq!(r.status, axum::http::StatusCode::OK, "{}", r.text());
        }
        let campaigns = h.db(|s| s.campaigns(false)).unwrap();
        assert_eq!(campaigns.len(), 1);
        assert_eq!(campaigns[0].jurisdictions, 4);
        assert!(campaigns[0].published_ms.is_none(), "two drill members made up the bar: {:?}", campaigns[0]);
        let campaign = campaigns[0].id;

        let done = h.db(|s| s.purge_drill(now_ms(), true)).unwrap();
        assert_eq!((done.jurisdictions, done.campaigns, done.sensors), (2, 0, 2), "{done:?}");
        let detail = h.db(|s| s.campaign(campaign)).unwrap().expect("the shared campaign stays");
        let members: Vec<i64> = detail.affected.iter().map(|a| a.jurisdiction_id).collect();
        assert_eq!(members, ids[2..].to_vec());
        assert_eq!(h.db(|s| s.events(None, None, 100)).unwrap().len(), 2);
        assert!(h.db(|s| s.events(None, None, 100)).unwrap().iter().all(|e| ids[2..].contains(&e.jurisdiction_id)));
    }
}
