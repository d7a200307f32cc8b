//! High 1: one sensor's forged alerts must not probe or poison correlation, the indicator feed or other offices.
//!
//! The reported attack: one jurisdiction's sensor posts 65,536 forged alerts (one per /24 of a
//! /8) in one batch; before the fix the campaign list showed it which /24 another jurisdiction
//! had seen, the other office got a real warning and the forged addresses went into every
//! sensor's indicator feed. The trust model (docs/hub.md, "Trust") bounds what one sensor
//! contributes, holds a sensor that sprays, publishes to the feed only what several
//! jurisdictions (or an analyst) stand behind, never blocks an allow-listed address, and lets an
//! analyst see and revoke everything one sensor contributed. Everything here goes through the
//! real router with the default configuration.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use ward_hub::model::{Channel, NewContact, Role};
use ward_hub::store::NotificationFilter;

use crate::common::*;

/// Names of the test jurisdictions (counties of one state).
const NAMES: [&str; 4] = ["Adams", "Brown", "Clark", "Darke"];

struct World {
    h: Hub,
    analyst: String,
    js: Vec<i64>,
    admins: Vec<String>,
    sensors: Vec<(i64, String)>,
    seq: std::sync::atomic::AtomicI64,
}

async fn world(n: usize) -> World {
    let h = hub();
    let mut js = Vec::new();
    for name in NAMES.iter().take(n) {
        let j = h.jurisdiction(&format!("{name} County"), "OH");
        let c = NewContact { channel: Channel::Email, target: format!("it@{}.example.gov", name.to_lowercase()), secret: None };
        h.db(|s| s.create_contact(j, &c, ward_hub::model::now_ms())).unwrap();
        h.user(&format!("{}-admin", name.to_lowercase()), Role::Admin, Some(j));
        js.push(j);
    }
    h.user("ana", Role::Analyst, None);
    let analyst = h.login("ana").await;
    let mut admins = Vec::new();
    let mut sensors = Vec::new();
    for (i, &j) in js.iter().enumerate() {
        admins.push(h.login(&format!("{}-admin", NAMES[i].to_lowercase())).await);
        sensors.push(h.sensor(j).await);
    }
    World { h, analyst, js, admins, sensors, seq: std::sync::atomic::AtomicI64::new(1) }
}

impl World {
    /// Posts alert lines as jurisdiction `i`'s sensor; every batch must be acknowledged whole.
    async fn send(&self, i: usize, lines: &[String]) {
        let seq = self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (sid, cred) = &self.sensors[i];
        let r = self.h.post_events((*sid, cred), seq, lines.join("\n"), false).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.json()["accepted"], lines.len(), "every line is stored: {}", r.text());
    }

    /// One alert from `remote` against a host of jurisdiction `i`.
    async fn sight(&self, i: usize, remote: &str) {
        self.send(i, &[alert_line(remote, &format!("10.{i}.0.5"), 2010935, "ET SCAN Suspicious inbound to MSSQL")]).await;
    }

    async fn campaigns(&self, bearer: &str) -> Vec<Value> {
        let r = self.h.get("/api/v1/campaigns", Some(bearer)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.json().as_array().unwrap().clone()
    }

    /// The all-sensor indicator feed from the start, as the last jurisdiction's sensor reads it.
    async fn feed(&self) -> Vec<(String, String)> {
        let cred = &self.sensors.last().unwrap().1;
        let r = self.h.get("/api/v1/indicators?since=0", Some(cred)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.json()["indicators"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (i["action"].as_str().unwrap().to_string(), i["value"].as_str().unwrap().to_string()))
            .collect()
    }

    /// Values currently in the feed (adds not followed by a remove).
    async fn published(&self) -> Vec<String> {
        let mut live: Vec<String> = Vec::new();
        for (action, value) in self.feed().await {
            if action == "add" {
                live.push(value);
            } else {
                live.retain(|v| *v != value);
            }
        }
        live
    }

    fn notifications(&self, i: usize) -> Vec<ward_hub::model::NotificationRecord> {
        self.h.db(|s| s.notifications(&NotificationFilter { jurisdiction_id: Some(self.js[i]), campaign_id: None, limit: 10_000, include_children: false })).unwrap()
    }

    async fn contributions(&self, i: usize) -> Value {
        let r = self.h.get(&format!("/api/v1/sensors/{}/contributions", self.sensors[i].0), Some(&self.analyst)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.json()
    }

    fn events_stored(&self, i: usize) -> i64 {
        self.h.db(|s| s.sensors(Some(self.js[i]))).unwrap()[0].events_total
    }

    /// A dashboard request with a session cookie (and a form body when given).
    async fn page(&self, method: &str, path: &str, session: &str, form: Option<String>) -> Resp {
        let b = Request::builder().method(method).uri(path).header("cookie", format!("ward_session={session}"));
        let req = match form {
            Some(f) => b.header("content-type", "application/x-www-form-urlencoded").body(Body::from(f)),
            None => b.body(Body::empty()),
        };
        self.h.send(req.unwrap()).await
    }
}

/// Alerts from `count` consecutive /24s of `first./8`, one address (`.1`) each, starting at /24 number `from`.
fn spray(first: u8, from: usize, count: usize) -> Vec<String> {
    (from..from + count).map(|n| alert_line(&format!("{first}.{}.{}.1", n / 256 % 256, n % 256), "10.0.0.5", 2010935, "ET SCAN forged")).collect()
}

crate::on_each_backend! {
    #[tokio::test]
    async fn one_batch_spraying_a_slash_8_learns_nothing_warns_no_one_and_publishes_nothing() {
        let w = world(2).await;
        // Brown County really saw one address of 45.0.0.0/8.
        w.sight(1, "45.33.32.156").await;
        assert!(w.campaigns(&w.analyst).await.is_empty());
        // Adams County's sensor posts one forged alert per /24 of 45.0.0.0/8: 65,536 lines.
        let lines = spray(45, 0, 65_536);
        w.send(0, &lines).await;
        assert_eq!(w.events_stored(0), 65_536, "every event of the batch is stored");

        // Nothing is learnt, nobody is warned, nothing is published.
        assert!(w.campaigns(&w.admins[0]).await.is_empty(), "Adams sees no campaign naming Brown's /24");
        assert!(w.campaigns(&w.analyst).await.is_empty(), "a spray opens no campaign");
        assert!(w.notifications(1).is_empty(), "Brown County is not warned by forged alerts");
        assert!(w.feed().await.is_empty(), "nothing reaches the indicator feed");

        // The analyst sees why: one anomaly, the sensor on hold.
        let c = w.contributions(0).await;
        let anomalies = c["anomalies"].as_array().unwrap();
        assert_eq!(anomalies.len(), 1, "{c}");
        assert_eq!(anomalies[0]["kind"], "batch_spray", "{c}");
        assert_eq!(anomalies[0]["remotes"], 65_536, "{c}");
        assert_eq!(c["trust"]["on_hold"], true, "{c}");
        assert!(c["keys"].as_array().unwrap().is_empty(), "a held batch makes no sightings: {c}");
        let metrics = w.h.get("/metrics", Some(&w.analyst)).await.text();
        assert!(metrics.contains("ward_hub_trust_anomalies_total 1"), "{metrics}");

        // On hold, the sensor learns nothing new even from a single alert about Brown's address.
        w.sight(0, "45.33.32.156").await;
        assert!(w.campaigns(&w.admins[0]).await.is_empty(), "a held sensor joins no campaign");
        assert!(w.notifications(1).is_empty());
        assert_eq!(w.events_stored(0), 65_537, "held events are still stored");
    }

    #[tokio::test]
    async fn a_slow_spray_under_the_batch_cap_is_held_when_the_window_budget_runs_out() {
        let w = world(2).await;
        // Brown saw an address Adams will probe in its first batch, and one it would probe in its sixth.
        w.sight(1, "46.0.7.1").await;
        w.sight(1, "46.4.76.1").await;
        // Five batches of 200 new addresses (under the 256 per batch): 1,000 of the 1,024 per hour.
        for b in 0..5 {
            w.send(0, &spray(46, b * 200, 200)).await;
        }
        // Within budget a probe still works, and it raises the alarm at the office it names: the
        // documented price of warning within a second.
        assert_eq!(w.campaigns(&w.analyst).await.len(), 1);
        assert_eq!(w.notifications(1).len(), 1, "Brown is warned about the address it saw");
        // The sixth batch crosses the budget: stored, not correlated, the sensor is held.
        w.send(0, &spray(46, 1000, 200)).await;
        assert_eq!(w.events_stored(0), 1200);
        let campaigns = w.campaigns(&w.analyst).await;
        assert_eq!(campaigns.len(), 1, "the batch that crossed the budget opened nothing: {campaigns:?}");
        assert!(!campaigns[0]["keys"].to_string().contains("46.4.76."), "{campaigns:?}");
        let c = w.contributions(0).await;
        assert_eq!(c["trust"]["on_hold"], true, "{c}");
        let anomalies = c["anomalies"].as_array().unwrap();
        assert_eq!(anomalies.len(), 1, "{c}");
        assert_eq!(anomalies[0]["kind"], "window_budget", "{c}");
        assert_eq!(anomalies[0]["new_remotes"], 200, "{c}");
        // Held: even one more alert about an address Brown saw opens nothing.
        w.sight(0, "46.4.76.1").await;
        assert_eq!(w.campaigns(&w.analyst).await.len(), 1);
        assert_eq!(w.notifications(1).len(), 1);
        // Only an analyst lifts the hold early; then the sensor correlates again.
        let r = w.h.post_json(&format!("/api/v1/sensors/{}/release", w.sensors[0].0), Some(&w.admins[0]), json!({})).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "a jurisdiction admin cannot release its own sensor: {}", r.text());
        let r = w.h.post_json(&format!("/api/v1/sensors/{}/release", w.sensors[0].0), Some(&w.analyst), json!({})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(w.contributions(0).await["trust"]["on_hold"], false);
        w.sight(0, "46.4.76.1").await;
        assert_eq!(w.campaigns(&w.analyst).await.len(), 2);
    }

    #[tokio::test]
    async fn public_resolvers_and_allow_listed_vendors_never_reach_the_feed() {
        let w = world(3).await;
        // Three jurisdictions "see" Google's resolver: never a sighting.
        for i in 0..3 {
            w.sight(i, "8.8.8.8").await;
            w.sight(i, "2001:4860:4860::8888").await;
        }
        assert!(w.campaigns(&w.analyst).await.is_empty());
        assert!(w.feed().await.is_empty());
        // Its neighbour is an ordinary address, but the /24 that holds the resolver is never a key.
        for i in 0..3 {
            w.sight(i, "8.8.8.9").await;
        }
        let published = w.published().await;
        assert!(published.contains(&"8.8.8.9".to_string()), "{published:?}");
        assert!(!published.iter().any(|v| v.starts_with("8.8.8.0")), "{published:?}");
        assert!(!w.campaigns(&w.analyst).await[0]["keys"].to_string().contains("net:8.8.8.0/24"));

        // A county registers its results vendor; three jurisdictions then report it.
        let r = w.h.post_json("/api/v1/allowlist", Some(&w.admins[0]), json!({"jurisdiction_id": w.js[0], "network": "93.184.216.34", "note": "election-results vendor"})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        for i in 0..3 {
            w.sight(i, "93.184.216.34").await;
        }
        assert!(!w.feed().await.iter().any(|(_, v)| v.starts_with("93.184.216.")), "the vendor never reaches the feed");
        assert_eq!(w.campaigns(&w.analyst).await.len(), 1, "and opens no campaign");
        // An entry added later withdraws what was published and takes the keys out of the campaign.
        for i in 0..3 {
            w.sight(i, "151.101.1.69").await;
        }
        assert!(w.published().await.contains(&"151.101.1.69".to_string()));
        let r = w.h.post_json("/api/v1/allowlist", Some(&w.analyst), json!({"network": "151.101.1.0/24", "note": "CDN of the state's portal"})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let published = w.published().await;
        assert!(!published.iter().any(|v| v.starts_with("151.101.1.")), "{published:?}");
        assert!(w.feed().await.contains(&("remove".to_string(), "151.101.1.69".to_string())));
        assert!(!w.campaigns(&w.analyst).await.iter().any(|c| c["status"] == "open" && c["keys"].to_string().contains("151.101.1.")));
        // An analyst indicator on an allow-listed address is refused with a clear error.
        let r = w.h.post_json("/api/v1/indicators", Some(&w.analyst), json!({"value": "1.1.1.1", "description": "x"})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
        assert!(r.text().contains("allow"), "{}", r.text());
        let r = w.h.post_json("/api/v1/indicators", Some(&w.analyst), json!({"value": "93.184.216.0/24", "description": "x"})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
        // Bounds: a county cannot allow-list for another county, nor a wide network.
        let r = w.h.post_json("/api/v1/allowlist", Some(&w.admins[1]), json!({"jurisdiction_id": w.js[0], "network": "192.0.2.1", "note": "x"})).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
        let r = w.h.post_json("/api/v1/allowlist", Some(&w.admins[1]), json!({"jurisdiction_id": w.js[1], "network": "45.0.0.0/8", "note": "x"})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
        let r = w.h.post_json("/api/v1/allowlist", Some(&w.admins[1]), json!({"network": "45.1.2.3", "note": "x"})).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "only analysts add hub-wide entries: {}", r.text());
        // A county lists and removes its own entries only.
        let own = w.h.get("/api/v1/allowlist", Some(&w.admins[1])).await.json();
        assert_eq!(own.as_array().unwrap().len(), 0, "{own}");
        let own = w.h.get("/api/v1/allowlist", Some(&w.admins[0])).await.json();
        assert_eq!(own.as_array().unwrap().len(), 1, "{own}");
        let vendor = own[0]["id"].as_i64().unwrap();
        let r = w.h.post_json(&format!("/api/v1/allowlist/{vendor}/remove"), Some(&w.admins[1]), json!({})).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
        let r = w.h.post_json(&format!("/api/v1/allowlist/{vendor}/remove"), Some(&w.admins[0]), json!({})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(w.h.get("/api/v1/allowlist", Some(&w.analyst)).await.json().as_array().unwrap().len(), 1, "the hub-wide entry stays");
    }

    #[tokio::test]
    async fn publication_needs_three_jurisdictions_or_an_analyst_confirmation() {
        let w = world(3).await;
        // Two jurisdictions: a campaign and warnings within a second, but nothing for every sensor.
        w.sight(0, "45.33.32.156").await;
        w.sight(1, "45.33.32.156").await;
        let campaigns = w.campaigns(&w.analyst).await;
        assert_eq!(campaigns.len(), 1);
        assert_eq!(w.notifications(0).len(), 1);
        assert_eq!(w.notifications(1).len(), 1);
        assert!(w.feed().await.is_empty(), "two jurisdictions do not reach every sensor");
        // The third: published.
        w.sight(2, "45.33.32.156").await;
        let published = w.published().await;
        assert!(published.contains(&"45.33.32.156".to_string()) && published.contains(&"45.33.32.0/24".to_string()), "{published:?}");

        // Another actor at two jurisdictions: an analyst's confirmation publishes it.
        w.sight(0, "103.21.244.9").await;
        w.sight(1, "103.21.244.9").await;
        assert!(!w.published().await.contains(&"103.21.244.9".to_string()));
        let id = w.campaigns(&w.analyst).await.iter().find(|c| c["keys"].to_string().contains("103.21.244.9")).unwrap()["id"].as_i64().unwrap();
        let r = w.h.post_json(&format!("/api/v1/campaigns/{id}"), Some(&w.admins[0]), json!({"confirm": true})).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
        let r = w.h.post_json(&format!("/api/v1/campaigns/{id}"), Some(&w.analyst), json!({"confirm": true})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert!(r.json()["campaign"]["confirmed_ms"].is_i64(), "{}", r.text());
        assert!(w.published().await.contains(&"103.21.244.9".to_string()));
    }

    #[tokio::test]
    async fn revoking_a_sensor_withdraws_what_it_caused() {
        let w = world(4).await;
        // Adams, Brown and Clark see actor X: published. Adams and Clark alone see actor Y.
        for i in 0..3 {
            w.sight(i, "45.33.32.156").await;
        }
        w.sight(0, "185.220.101.4").await;
        w.sight(2, "185.220.101.4").await;
        // Clark also "sees" an address next to X that nobody else saw: it becomes a key of X.
        w.sight(2, "45.33.32.99").await;
        assert!(w.published().await.contains(&"45.33.32.99".to_string()));
        let clark = w.sensors[2].0;

        // What Clark's sensor contributed, for the analyst only.
        let c = w.contributions(2).await;
        assert_eq!(c["campaigns"].as_array().unwrap().len(), 2, "{c}");
        assert!(c["keys"].to_string().contains("ip:45.33.32.99"), "{c}");
        assert!(c["published_indicators"].to_string().contains("45.33.32.99"), "{c}");
        let r = w.h.get(&format!("/api/v1/sensors/{clark}/contributions"), Some(&w.admins[1])).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "another jurisdiction's sensor does not exist for Brown");
        let r = w.h.post_json(&format!("/api/v1/sensors/{clark}/revoke"), Some(&w.admins[1]), json!({})).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = w.h.get(&format!("/api/v1/sensors/{clark}/contributions"), Some(&w.admins[2])).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "its own admin cannot see correlation across jurisdictions");

        let r = w.h.post_json(&format!("/api/v1/sensors/{clark}/revoke"), Some(&w.analyst), json!({})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        // X keeps Adams and Brown (still a campaign) but falls below the publication bar.
        let live = w.published().await;
        assert!(live.is_empty(), "everything Clark's sightings published is withdrawn: {live:?}");
        let campaigns = w.campaigns(&w.analyst).await;
        let x = campaigns.iter().find(|c| c["keys"].to_string().contains("ip:45.33.32.156")).unwrap();
        assert_eq!((x["status"].as_str(), x["jurisdictions"].as_i64()), (Some("open"), Some(2)), "{x}");
        assert!(!x["keys"].to_string().contains("45.33.32.99"), "the key only Clark saw is gone: {x}");
        // Y had only Adams besides Clark: closed, and the timeline says why.
        let y = campaigns.iter().find(|c| c["keys"].to_string().contains("185.220.101.4")).unwrap();
        assert_eq!(y["status"], "closed", "{y}");
        let detail = w.h.get(&format!("/api/v1/campaigns/{}", y["id"]), Some(&w.analyst)).await.json();
        assert!(detail["timeline"].to_string().contains(&format!("contributions of sensor {clark} revoked")), "{detail}");
        // Clark is on hold: its next alert changes nothing.
        assert_eq!(w.contributions(2).await["trust"]["on_hold"], true);
        w.sight(2, "45.33.32.156").await;
        assert!(w.published().await.is_empty());
        // Released, its next real sighting counts again: X is back above the bar.
        let r = w.h.post_json(&format!("/api/v1/sensors/{clark}/release"), Some(&w.analyst), json!({})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        w.sight(2, "45.33.32.156").await;
        assert!(w.published().await.contains(&"45.33.32.156".to_string()));
    }

    #[tokio::test]
    async fn the_dashboard_shows_one_sensors_contributions_to_analysts_only_and_acts_with_csrf() {
        let w = world(3).await;
        // Adams sprays 300 addresses in one batch: held, one anomaly.
        w.send(0, &spray(47, 0, 300)).await;
        let (adams, brown) = (w.sensors[0].0, w.sensors[1].0);
        let csrf = w.h.get("/api/v1/me", Some(&w.analyst)).await.json()["csrf"].as_str().unwrap().to_string();
        let overview = w.page("GET", "/", &w.analyst, None).await;
        assert!(overview.text().contains("Trust anomalies (1)") && overview.text().contains(&format!("href=\"/sensors/{adams}\"")), "{}", overview.text());
        let r = w.page("GET", &format!("/sensors/{adams}"), &w.analyst, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert!(r.text().contains("On hold") && r.text().contains("batch_spray"), "{}", r.text());
        // Another county's admin: the sensor does not exist; its own admin: not for them.
        assert_eq!(w.page("GET", &format!("/sensors/{adams}"), &w.admins[1], None).await.status, StatusCode::NOT_FOUND);
        assert_eq!(w.page("GET", &format!("/sensors/{adams}"), &w.admins[0], None).await.status, StatusCode::FORBIDDEN);
        // The forms need the session's CSRF token.
        let r = w.page("POST", &format!("/sensors/{adams}/release"), &w.analyst, Some("csrf=forged".into())).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
        assert_eq!(w.contributions(0).await["trust"]["on_hold"], true);
        let r = w.page("POST", &format!("/sensors/{adams}/release"), &w.analyst, Some(format!("csrf={csrf}"))).await;
        assert!(r.status.is_redirection(), "{}: {}", r.status, r.text());
        assert_eq!(w.contributions(0).await["trust"]["on_hold"], false);
        // Brown and Clark see an actor; the campaign's confirm box publishes it.
        w.sight(1, "45.33.32.156").await;
        w.sight(2, "45.33.32.156").await;
        let id = w.campaigns(&w.analyst).await[0]["id"].as_i64().unwrap();
        let r = w.page("GET", &format!("/campaigns/{id}"), &w.analyst, None).await;
        assert!(r.text().contains("Not in the all-sensor feed") && r.text().contains("name=\"confirm\""), "{}", r.text());
        let r = w.page("POST", &format!("/campaigns/{id}"), &w.analyst, Some(format!("csrf={csrf}&confirm=1"))).await;
        assert!(r.status.is_redirection(), "{}: {}", r.status, r.text());
        assert!(w.published().await.contains(&"45.33.32.156".to_string()));
        // Revoking Brown from its page withdraws what it caused: the campaign falls below K.
        let r = w.page("POST", &format!("/sensors/{brown}/revoke"), &w.analyst, Some(format!("csrf={csrf}&really=1"))).await;
        assert!(r.status.is_redirection(), "{}: {}", r.status, r.text());
        assert_eq!(w.contributions(1).await["trust"]["hold_reason"], "revoked");
        assert!(w.published().await.is_empty());
        assert_eq!(w.campaigns(&w.analyst).await[0]["status"], "closed");
    }
}
