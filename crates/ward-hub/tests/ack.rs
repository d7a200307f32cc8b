//! Acknowledgements and escalation (crates/ward-hub/src/ack.rs; docs/hub.md "Acknowledgements
//! and escalation"), on both stores: a hub on a real loopback port, a real SMTP server
//! (aiosmtpd) and a real webhook receiver. The link in the received email acknowledges; the
//! webhook's `ack_url` acknowledges; tampered, foreign and expired links are refused; a foreign
//! jurisdiction can neither acknowledge nor probe; an unacknowledged warning escalates to the
//! next contact and then the state, once per step; an acknowledgement stops escalation.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::smtp::{free_port, mail_text, read_maildir, start_smtp};
use common::webhooks::{start_receiver, Receiver, SECRET};
use common::*;
use serde_json::{json, Value};
use ward_hub::model::{now_ms, Channel, NewContact, Role};
use ward_hub::store::{NotificationFilter, Store};

const ACTOR: &str = "185.220.101.7";

async fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..300 {
        if let Some(v) = f() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A hub serving a real loopback port whose public URL is that port (so emails carry links).
async fn running_hub(dir: &std::path::Path, smtp_port: u16, escalate_after_mins: f64) -> ward_hub::server::RunningHub {
    let port = free_port();
    let mut config = common::config(dir);
    config.listen = format!("127.0.0.1:{port}").parse().unwrap();
    config.public_url = format!("http://127.0.0.1:{port}");
    config.notify.allow_targets = vec!["127.0.0.1/32".parse().unwrap()];
    config.notify.smtp_port = smtp_port;
    config.notify.escalate_after_mins = escalate_after_mins;
    ward_hub::start(config).await.unwrap()
}

fn webhook(addr: std::net::SocketAddr, name: &str) -> NewContact {
    NewContact { channel: Channel::Webhook, target: format!("http://{addr}/hook/{name}"), secret: Some(SECRET.into()) }
}

/// Enrolls a sensor of `j` through the API and posts one alert from the actor.
async fn attack(http: &reqwest::Client, base: &str, store: &dyn Store, j: i64, local: &str) {
    let token = ward_hub::auth::random_token("wet");
    let now = now_ms();
    common::db(store, |s| s.create_enrollment_token(j, &ward_hub::auth::hash_token(&token), now, now + 60_000)).unwrap();
    let v: Value = http.post(format!("{base}/api/v1/sensors/enroll")).json(&json!({"token": token})).send().await.unwrap().json().await.unwrap();
    let (id, cred) = (v["sensor"]["id"].as_i64().unwrap(), v["credential"].as_str().unwrap().to_string());
    let r = http
        .post(format!("{base}/api/v1/events"))
        .bearer_auth(&cred)
        .header("idempotency-key", format!("{id}:1"))
        .body(alert_line(ACTOR, local, 2403300, "ET CINS Poor Reputation IP"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn api_login(http: &reqwest::Client, base: &str, name: &str) -> (String, String) {
    let v: Value = http.post(format!("{base}/api/v1/login")).json(&json!({"username": name, "password": PASSWORD})).send().await.unwrap().json().await.unwrap();
    (v["token"].as_str().unwrap().to_string(), v["csrf"].as_str().unwrap().to_string())
}

fn notifications_of(store: &dyn Store, j: i64) -> Vec<ward_hub::model::NotificationRecord> {
    common::db(store, |s| s.notifications(&NotificationFilter { jurisdiction_id: Some(j), limit: 100, ..Default::default() })).unwrap()
}

fn ack_of(store: &dyn Store, id: i64) -> Option<ward_hub::ack::Ack> {
    common::db(store, |s| s.notification_ack(id)).unwrap()
}

/// The first http URL in `text` that contains `needle`.
fn url_in(text: &str, needle: &str) -> Option<String> {
    text.split_whitespace().find(|w| w.starts_with("http") && w.contains(needle)).map(|w| w.trim_end_matches(['.', ',', ')']).to_string())
}

/// `url` with the character at `at` (from the end) of its signature changed.
fn tampered(url: &str) -> String {
    let at = url.len() - 3;
    let c = if &url[at..at + 1] == "0" { "1" } else { "0" };
    format!("{}{c}{}", &url[..at], &url[at + 1..])
}

on_each_backend! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_email_link_and_the_webhook_ack_url_acknowledge_and_bad_links_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let smtp = start_smtp().await;
        let receiver = Receiver::default();
        let hook_addr = start_receiver(receiver.clone()).await;
        let hub = running_hub(dir.path(), smtp.port, 0.0).await;
        let (store, base, http) = (hub.state.store.clone(), hub.url(), reqwest::Client::new());
        let now = now_ms();
        let (ohio, franklin, licking) = common::db(store.as_ref(), |s| {
            let mk = |name: &str, kind| s.create_jurisdiction(&ward_hub::model::NewJurisdiction { name: name.into(), kind, state: Some("OH".into()), home_net: None }, now).unwrap().id;
            use ward_hub::model::JurisdictionKind as K;
            (mk("Ohio", K::State), mk("Franklin County", K::County), mk("Licking County", K::County))
        });
        common::db(store.as_ref(), |s| {
            s.create_contact(franklin, &NewContact { channel: Channel::Email, target: "it@franklin.example.gov".into(), secret: None }, now).unwrap();
            s.create_contact(licking, &webhook(hook_addr, "Licking"), now).unwrap();
            let phc = ward_hub::auth::hash_password(PASSWORD).unwrap();
            s.create_user("licking", &phc, Role::Viewer, Some(licking), now).unwrap();
            s.create_user("ana", &phc, Role::Analyst, None, now).unwrap();
        });
        attack(&http, &base, store.as_ref(), franklin, "10.1.0.25").await;
        attack(&http, &base, store.as_ref(), licking, "10.2.0.9").await;

        // The email's link: a GET shows the button and changes nothing; the button acknowledges.
        let mail = until("the email to Franklin", || read_maildir(smtp.maildir.path()).into_iter().next()).await;
        let text = mail_text(&mail);
        let link = url_in(&text, "/ack/").unwrap_or_else(|| panic!("no acknowledgement link in the email: {text}"));
        assert!(link.starts_with(&format!("{base}/ack/")), "{link}");
        let franklin_warning = notifications_of(store.as_ref(), franklin).into_iter().find(|n| n.event_kind == "targeted").unwrap();
        let (franklin_note, contact) = (franklin_warning.id, franklin_warning.contact_id);
        assert!(link.contains(&format!("/ack/{franklin_note}?")), "{link}");
        let page = http.get(&link).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(html.contains("method=\"post\"") && html.contains("Acknowledge"), "{html}");
        assert_eq!(ack_of(store.as_ref(), franklin_note), None, "a GET (a mail scanner's prefetch) must not acknowledge");
        // A tampered link and an expired one are refused, and acknowledge nothing.
        assert_eq!(http.get(tampered(&link)).send().await.unwrap().status(), 404);
        assert_eq!(http.post(tampered(&link)).send().await.unwrap().status(), 404);
        let key = common::db(store.as_ref(), |s| s.hub_key(ward_hub::ack::LINK_KEY_NAME, now_ms())).unwrap();
        let expired = format!("{base}{}", ward_hub::ack::link_path(&key, franklin_note, contact, now_ms() / 1000 - 60));
        assert_eq!(http.get(&expired).send().await.unwrap().status(), 410);
        assert_eq!(http.post(&expired).send().await.unwrap().status(), 410);
        // A link signed for another contact than the notification's is no link to it.
        let other = format!("{base}{}", ward_hub::ack::link_path(&key, franklin_note, contact + 1000, now_ms() / 1000 + 600));
        assert_eq!(http.post(&other).send().await.unwrap().status(), 404);
        assert_eq!(http.get(format!("{base}/ack/{franklin_note}")).send().await.unwrap().status(), 404, "no signature");
        assert_eq!(ack_of(store.as_ref(), franklin_note), None);
        let done = http.post(&link).header("content-type", "application/x-www-form-urlencoded").body("action=blocked&note=firewall+rule+42").send().await.unwrap();
        assert_eq!(done.status(), 200);
        let ack = ack_of(store.as_ref(), franklin_note).expect("acknowledged through the email's link");
        assert!(ack.acked_by.starts_with(&format!("contact #{contact} (")) && ack.acked_by.ends_with("via link"), "{ack:?}");
        assert!(ack.acked_by.contains("it@franklin.example.gov"), "the contact is named as contacts are shown (redacted_target): {ack:?}");
        assert_eq!((ack.action.as_deref(), ack.note.as_deref()), (Some("blocked"), Some("firewall rule 42")));

        // The webhook's ack_url, posted by a tool with an empty body.
        let body = until("Licking's warning", || receiver.of_type("Licking", "ward.campaign.targeted").first().cloned()).await;
        let ack_url = body["ack_url"].as_str().unwrap_or_else(|| panic!("no ack_url: {body}")).to_string();
        assert!(body["text"].as_str().unwrap().contains(&ack_url), "the text carries the link too");
        let licking_note = body["id"].as_i64().unwrap();
        assert_eq!(http.post(tampered(&ack_url)).send().await.unwrap().status(), 404);
        assert_eq!(ack_of(store.as_ref(), licking_note), None);
        assert_eq!(http.post(&ack_url).send().await.unwrap().status(), 200);
        let first = ack_of(store.as_ref(), licking_note).expect("acknowledged through ack_url");
        assert!(first.acked_by.ends_with("via link") && first.action.is_none(), "{first:?}");
        // A second acknowledgement (a user, through the API) keeps the first time and author and adds the action.
        let (token, _) = api_login(&http, &base, "licking").await;
        let r = http.post(format!("{base}/api/v1/notifications/{licking_note}/ack")).bearer_auth(&token).json(&json!({"action": "investigating"})).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let again = ack_of(store.as_ref(), licking_note).unwrap();
        assert_eq!((again.acked_ms, &again.acked_by, again.action.as_deref()), (first.acked_ms, &first.acked_by, Some("investigating")));

        // Time to acknowledge: both warnings acknowledged, Ohio (not targeted) absent.
        let (ana, _) = api_login(&http, &base, "ana").await;
        let stats: Value = http.get(format!("{base}/api/v1/notifications/ack-stats")).bearer_auth(&ana).send().await.unwrap().json().await.unwrap();
        let rows = stats["jurisdictions"].as_array().unwrap();
        assert_eq!(rows.len(), 2, "{stats}");
        for row in rows {
            assert_eq!((row["warnings"].as_i64(), row["acknowledged"].as_i64(), row["unacked"].as_i64()), (Some(1), Some(1), Some(0)), "{row}");
            assert!(row["median_secs"].as_f64().unwrap() >= 0.0);
        }
        assert!(!rows.iter().any(|r| r["jurisdiction_id"] == ohio));
        hub.shutdown().await;
    }
}

on_each_backend! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unacknowledged_warning_escalates_to_the_next_contact_then_the_state_once_and_an_ack_stops_it() {
        let dir = tempfile::tempdir().unwrap();
        let receiver = Receiver::default();
        let hook_addr = start_receiver(receiver.clone()).await;
        // 0.03 minutes: a step every 1.8 s.
        let hub = running_hub(dir.path(), free_port(), 0.03).await;
        let (store, base, http) = (hub.state.store.clone(), hub.url(), reqwest::Client::new());
        let now = now_ms();
        let (ohio, franklin, licking) = common::db(store.as_ref(), |s| {
            let mk = |name: &str, kind| s.create_jurisdiction(&ward_hub::model::NewJurisdiction { name: name.into(), kind, state: Some("OH".into()), home_net: None }, now).unwrap().id;
            use ward_hub::model::JurisdictionKind as K;
            (mk("Ohio", K::State), mk("Franklin County", K::County), mk("Licking County", K::County))
        });
        common::db(store.as_ref(), |s| {
            s.create_contact(ohio, &webhook(hook_addr, "Ohio"), now).unwrap();
            for (j, name) in [(franklin, "Franklin"), (licking, "Licking")] {
                s.create_contact(j, &webhook(hook_addr, &format!("{name}-1")), now).unwrap();
                let second = s.create_contact(j, &webhook(hook_addr, &format!("{name}-2")), now).unwrap();
                assert_eq!(s.set_contact_priority(second.id, 2).unwrap().priority, 2);
            }
            let phc = ward_hub::auth::hash_password(PASSWORD).unwrap();
            s.create_user("franklin", &phc, Role::Viewer, Some(franklin), now).unwrap();
        });
        attack(&http, &base, store.as_ref(), franklin, "10.1.0.25").await;
        attack(&http, &base, store.as_ref(), licking, "10.2.0.9").await;
        // Licking acknowledges at once through its webhook's ack_url.
        let licking_warning = until("Licking's warning", || receiver.of_type("Licking-1", "ward.campaign.targeted").first().cloned()).await;
        assert_eq!(http.post(licking_warning["ack_url"].as_str().unwrap()).send().await.unwrap().status(), 200);
        assert!(receiver.of("Franklin-2").is_empty() && receiver.of("Licking-2").is_empty(), "priority-2 contacts are not warned at once");

        // Franklin does not: its next contact hears, then its state, each once.
        let next = until("Franklin's next contact", || receiver.of_type("Franklin-2", "ward.campaign.unacked").first().cloned()).await;
        assert_eq!(next["jurisdiction"]["name"], "Franklin County");
        assert!(next["text"].as_str().unwrap().contains("has not been acknowledged"), "{next}");
        assert!(next["ack_url"].as_str().is_some_and(|u| u.contains("/ack/")), "{next}");
        let state = until("Ohio's escalation", || receiver.of_type("Ohio", "ward.campaign.state_unacked").first().cloned()).await;
        assert_eq!(state["unacknowledged"]["name"], "Franklin County", "{state}");
        assert_eq!(state["unacknowledged"]["step"], 2);
        assert!(state["text"].as_str().unwrap().contains("Not acknowledged: Franklin County"), "{state}");
        // Three more periods: nothing is sent twice, and Licking's acknowledgement held.
        tokio::time::sleep(Duration::from_millis(5_500)).await;
        assert_eq!(receiver.of_type("Franklin-2", "ward.campaign.unacked").len(), 1);
        assert_eq!(receiver.of_type("Ohio", "ward.campaign.state_unacked").len(), 1);
        assert!(receiver.of("Licking-2").is_empty(), "an acknowledged warning does not escalate");
        assert_eq!(receiver.of("Franklin-1").len(), 1, "the first contact hears once");
        let franklin_warning = notifications_of(store.as_ref(), franklin).into_iter().find(|n| n.event_kind == "targeted").unwrap().id;
        let campaign = notifications_of(store.as_ref(), franklin)[0].campaign_id;
        let steps = common::db(store.as_ref(), |s| s.escalations(campaign, franklin)).unwrap();
        let kinds: Vec<(i64, &str, Option<i64>)> = steps.iter().map(|s| (s.step, s.kind.as_str(), s.told_jurisdiction_id)).collect();
        assert_eq!(kinds, [(1, "contact", Some(franklin)), (2, "state", Some(ohio)), (3, "end", None)]);
        assert!(common::db(store.as_ref(), |s| s.escalations(campaign, licking)).unwrap().is_empty());
        // Drill-safe: later passes (a restart, another replica, a day later) take no step again.
        let policy = ward_hub::ack::EscalationPolicy { after_ms: 1, horizon_ms: ward_hub::ack::ESCALATION_HORIZON_MS, limit: 100 };
        for _ in 0..2 {
            assert!(common::db(store.as_ref(), |s| s.escalate_due(&policy, now_ms() + 86_400_000)).unwrap().is_empty());
        }

        // The API and the dashboard show the steps; the dashboard's button acknowledges.
        let (token, csrf) = api_login(&http, &base, "franklin").await;
        let v: Value = http.get(format!("{base}/api/v1/notifications/{franklin_warning}/ack")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        assert!(v["ack"].is_null(), "{v}");
        assert_eq!(v["escalations"].as_array().unwrap().len(), 3, "{v}");
        let page = http.get(format!("{base}/notifications/{franklin_warning}")).bearer_auth(&token).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("Not acknowledged yet") && page.contains("its state: Ohio") && page.contains("next contacts (priority 2)"), "{page}");
        let r = http
            .post(format!("{base}/notifications/{franklin_warning}/ack"))
            .bearer_auth(&token)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("csrf={csrf}&action=not-relevant&note="))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success() || r.status().is_redirection(), "{}", r.status());
        let ack = ack_of(store.as_ref(), franklin_warning).unwrap();
        assert_eq!((ack.acked_by.as_str(), ack.action.as_deref()), ("user franklin", Some("not-relevant")));
        let page = http.get(format!("{base}/notifications/{franklin_warning}")).bearer_auth(&token).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("by user franklin") && page.contains("not-relevant"), "{page}");
        // The figures: Franklin acknowledged late, Licking early.
        let stats: Value = http.get(format!("{base}/api/v1/notifications/ack-stats")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        let rows = stats["jurisdictions"].as_array().unwrap();
        assert_eq!(rows.len(), 1, "a county sees itself only: {stats}");
        assert!(rows[0]["median_secs"].as_f64().unwrap() >= 3.0, "{stats}");
        hub.shutdown().await;
    }
}

on_each_backend! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_escalation_passes_racing_take_each_step_once() {
        let h = hub();
        let oh = h.jurisdiction("Ohio", "OH");
        let franklin = h.jurisdiction("Franklin County", "OH");
        let pa = h.jurisdiction("Allegheny County", "PA");
        let now = now_ms();
        for (j, to) in [(oh, "soc@ohio.example.gov"), (franklin, "it@franklin.example.gov"), (pa, "it@allegheny.example.gov")] {
            h.db(|s| s.create_contact(j, &NewContact { channel: Channel::Email, target: to.into(), secret: None }, now)).unwrap();
        }
        for (j, local) in [(franklin, "10.1.0.1"), (pa, "10.8.0.1")] {
            let sensor = h.sensor(j).await;
            assert_eq!(h.post_events((sensor.0, &sensor.1), 1, alert_line(ACTOR, local, 7, "SIG"), false).await.status, StatusCode::OK);
        }
        let policy = ward_hub::ack::EscalationPolicy { after_ms: 1, horizon_ms: ward_hub::ack::ESCALATION_HORIZON_MS, limit: 100 };
        let later = now_ms() + 1_000;
        let store = h.store.clone();
        let taken: Vec<Vec<ward_hub::ack::EscalationStep>> = std::thread::scope(|scope| {
            let runs: Vec<_> = (0..4).map(|_| scope.spawn(|| store.escalate_due(&policy, later).unwrap())).collect();
            runs.into_iter().map(|r| r.join().unwrap()).collect()
        });
        let mut all: Vec<(i64, i64)> = taken.iter().flatten().map(|s| (s.jurisdiction_id, s.step)).collect();
        all.sort_unstable();
        // Franklin's first step is its state; Allegheny (no state registered) ends at once.
        assert_eq!(all, [(franklin, 1), (pa, 1)], "{taken:?}");
        let state_told = h.db(|s| s.notifications(&NotificationFilter { jurisdiction_id: Some(oh), limit: 100, ..Default::default() })).unwrap();
        assert_eq!(state_told.iter().filter(|n| n.event_kind == ward_hub::ack::KIND_STATE_UNACKED).count(), 1, "{state_told:?}");
    }
}

/// Ohio with Franklin and Licking, Pennsylvania's Allegheny; one actor across the three
/// counties; users of each and an analyst.
struct World {
    h: Hub,
    franklin: i64,
    allegheny: i64,
    franklin_note: i64,
    licking_note: i64,
    allegheny_note: i64,
    ana: String,
    franklin_viewer: String,
    licking_admin: String,
    oh_state: String,
    pa_admin: String,
}

async fn world() -> World {
    let h = hub();
    let ohio = h.jurisdiction("Ohio", "OH");
    let franklin = h.jurisdiction("Franklin County", "OH");
    let licking = h.jurisdiction("Licking County", "OH");
    let pa = h.jurisdiction("Pennsylvania", "PA");
    let allegheny = h.jurisdiction("Allegheny County", "PA");
    h.user("ana", Role::Analyst, None);
    h.user("franklin", Role::Viewer, Some(franklin));
    h.user("licking", Role::Admin, Some(licking));
    h.user("oh-state", Role::Viewer, Some(ohio));
    h.user("pa-admin", Role::Admin, Some(pa));
    let now = now_ms();
    let mut notes = Vec::new();
    for (j, to, local) in [(franklin, "it@franklin.example.gov", "10.1.0.1"), (licking, "it@licking.example.gov", "10.2.0.1"), (allegheny, "it@allegheny.example.gov", "10.8.0.1")] {
        h.db(|s| s.create_contact(j, &NewContact { channel: Channel::Email, target: to.into(), secret: None }, now)).unwrap();
        let sensor = h.sensor(j).await;
        assert_eq!(h.post_events((sensor.0, &sensor.1), 1, alert_line(ACTOR, local, 7, "SIG"), false).await.status, StatusCode::OK);
    }
    for j in [franklin, licking, allegheny] {
        let list = h.db(|s| s.notifications(&NotificationFilter { jurisdiction_id: Some(j), limit: 10, ..Default::default() })).unwrap();
        notes.push(list.iter().find(|n| n.event_kind == "targeted").unwrap().id);
    }
    World {
        ana: h.login("ana").await,
        franklin_viewer: h.login("franklin").await,
        licking_admin: h.login("licking").await,
        oh_state: h.login("oh-state").await,
        pa_admin: h.login("pa-admin").await,
        franklin_note: notes[0],
        licking_note: notes[1],
        allegheny_note: notes[2],
        h,
        franklin,
        allegheny,
    }
}

on_each_backend! {
    #[tokio::test]
    async fn only_the_jurisdiction_its_state_and_analysts_acknowledge_and_others_cannot_probe() {
        let w = world().await;
        let h = &w.h;
        let ack = |id: i64| format!("/api/v1/notifications/{id}/ack");
        // Without a login: 401, for the API and the figures.
        assert_eq!(h.post_json(&ack(w.franklin_note), None, json!({})).await.status, StatusCode::UNAUTHORIZED);
        assert_eq!(h.get("/api/v1/notifications/ack-stats", None).await.status, StatusCode::UNAUTHORIZED);
        // Another county, another state: the 404 of a missing id, for both reading and acknowledging.
        let missing = h.post_json(&ack(99_999_999), Some(&w.licking_admin), json!({})).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        for t in [&w.licking_admin, &w.pa_admin] {
            let r = h.post_json(&ack(w.franklin_note), Some(t), json!({"action": "blocked"})).await;
            assert_eq!((r.status, r.body.clone()), (StatusCode::NOT_FOUND, missing.body.clone()));
            assert_eq!(h.get(&ack(w.franklin_note), Some(t)).await.status, StatusCode::NOT_FOUND);
        }
        // The dashboard's button, with the user's own CSRF token: 404 too.
        let login = h.post_json("/api/v1/login", None, json!({"username": "pa-admin", "password": PASSWORD})).await.json();
        let form = Request::post(format!("/notifications/{}/ack", w.franklin_note))
            .header("authorization", format!("Bearer {}", login["token"].as_str().unwrap()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(format!("csrf={}&action=blocked", login["csrf"].as_str().unwrap())))
            .unwrap();
        assert_eq!(h.send(form).await.status, StatusCode::NOT_FOUND);
        assert!(h.db(|s| s.notification_ack(w.franklin_note)).unwrap().is_none(), "nobody outside acknowledged it");
        // Bad bodies: a clear 400.
        let r = h.post_json(&ack(w.franklin_note), Some(&w.franklin_viewer), json!({"action": "ignored"})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.text().contains("blocked, investigating or not-relevant"), "{}", r.text());
        let r = h.post_json(&ack(w.franklin_note), Some(&w.franklin_viewer), json!({"note": "x".repeat(ward_hub::ack::MAX_NOTE_CHARS + 1)})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        // The county itself (a viewer), its state, an analyst.
        let r = h.post_json(&ack(w.franklin_note), Some(&w.franklin_viewer), json!({"action": "blocked", "note": "done"})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.json()["ack"]["acked_by"], "user franklin");
        let r = h.post_json(&ack(w.licking_note), Some(&w.oh_state), json!({})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.json()["ack"]["acked_by"], "user oh-state");
        assert_eq!(h.post_json(&ack(w.allegheny_note), Some(&w.ana), json!({})).await.status, StatusCode::OK);
        // The figures, scoped.
        let ids = |t: &str| {
            let t = t.to_string();
            async move {
                let r = h.get("/api/v1/notifications/ack-stats", Some(&t)).await;
                assert_eq!(r.status, StatusCode::OK, "{}", r.text());
                let mut v: Vec<String> = r.json()["jurisdictions"].as_array().unwrap().iter().map(|j| j["name"].as_str().unwrap().to_string()).collect();
                v.sort();
                v
            }
        };
        assert_eq!(ids(&w.ana).await, ["Allegheny County", "Franklin County", "Licking County"]);
        assert_eq!(ids(&w.oh_state).await, ["Franklin County", "Licking County"]);
        assert_eq!(ids(&w.franklin_viewer).await, ["Franklin County"]);
        assert_eq!(ids(&w.pa_admin).await, ["Allegheny County"]);
        assert_eq!(h.get(&format!("/api/v1/notifications/ack-stats?jurisdiction_id={}", w.franklin), Some(&w.pa_admin)).await.status, StatusCode::NOT_FOUND);
        assert_eq!(h.get("/api/v1/notifications/ack-stats?days=0", Some(&w.ana)).await.status, StatusCode::BAD_REQUEST);
        let v = h.get(&format!("/api/v1/notifications/ack-stats?jurisdiction_id={}", w.allegheny), Some(&w.ana)).await.json();
        assert_eq!(v["jurisdictions"][0]["acknowledged"], 1, "{v}");
        // A link without a valid signature, for any id: 404.
        for path in [format!("/ack/{}", w.franklin_note), format!("/ack/{}?c=1&e=99999999999&s=00", w.licking_note), "/ack/1?c=x&e=y&s=z".into()] {
            assert_eq!(h.get(&path, None).await.status, StatusCode::NOT_FOUND, "{path}");
        }
        // Contacts with a priority: admins of the jurisdiction set one; out of range is refused.
        let r = h.post_json(&format!("/api/v1/jurisdictions/{}/contacts", w.franklin), Some(&w.licking_admin), json!({"channel": "email", "target": "x@franklin.example.gov", "priority": 2})).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let licking = h.db(|s| s.jurisdiction_by_name("Licking County")).unwrap().unwrap().id;
        let path = format!("/api/v1/jurisdictions/{licking}/contacts");
        let r = h.post_json(&path, Some(&w.licking_admin), json!({"channel": "email", "target": "deputy@licking.example.gov", "priority": 2})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        assert_eq!(r.json()["priority"], 2);
        let r = h.post_json(&path, Some(&w.licking_admin), json!({"channel": "email", "target": "x@licking.example.gov", "priority": 10})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(h.get(&path, Some(&w.licking_admin)).await.json().as_array().unwrap().iter().map(|c| c["priority"].as_i64().unwrap()).collect::<Vec<_>>(), [1, 2]);
    }
}
