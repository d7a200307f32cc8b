//! Medium 7: webhook and syslog deliveries never reach metadata, private or loopback services unless allowed.
//!
//! A real hub (its own delivery worker) on loopback, real receivers on loopback addresses. The
//! "internal admin" service counts every connection it accepts: it must see none unless its
//! address is listed in `[notify] allow_targets`. Nothing here sends to a non-loopback address:
//! metadata and private addresses are only refused at contact creation (no delivery runs).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use ward_hub::model::{now_ms, Channel, DeliveryAttempt, NewContact, NotificationRecord, Role};
use ward_hub::store::NotificationFilter;

use crate::common::{self, Hub};

pub const WEBHOOK_SECRET: &str = "a-webhook-secret-of-some-length";

/// A loopback service that must not be reached: counts accepted connections, answers HTTP 200.
pub async fn internal_admin(ip: &str) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = tokio::time::timeout(Duration::from_millis(500), sock.read(&mut buf)).await;
                let _ = sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\nconnection: close\r\n\r\ndeleted").await;
            });
        }
    });
    (addr, hits)
}

/// A hub with its delivery worker, on a fresh store, with `allow_targets` set.
pub async fn running_hub(allow: &[&str]) -> (ward_hub::RunningHub, Hub) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.notify.allow_targets = allow.iter().map(|a| a.parse().unwrap()).collect();
    config.notify.timeout_secs = 5;
    let store = common::open_store(&config);
    let running = ward_hub::start_with_store(store.clone(), config).await.unwrap();
    let hub = Hub { dir, state: running.state.clone(), store };
    (running, hub)
}

/// Gives Franklin County these contacts, then two counties report the same actor: a campaign
/// opens and every contact is warned. Returns Franklin County's id.
pub async fn warn_contacts(h: &Hub, contacts: &[(Channel, String)]) -> i64 {
    let franklin = h.jurisdiction("Franklin County", "OH");
    let delaware = h.jurisdiction("Delaware County", "OH");
    for (channel, target) in contacts {
        let secret = (*channel == Channel::Webhook).then(|| WEBHOOK_SECRET.to_string());
        h.db(|s| s.create_contact(franklin, &NewContact { channel: *channel, target: target.clone(), secret }, now_ms())).unwrap();
    }
    for (j, local) in [(franklin, "10.1.0.5"), (delaware, "10.2.0.5")] {
        let sensor = h.sensor(j).await;
        let line = common::alert_line("185.220.101.7", local, 2403300, "ET CINS Poor Reputation IP");
        let r = h.post_events((sensor.0, &sensor.1), 1, line, false).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    franklin
}

/// Waits until each of the jurisdiction's `n` notifications has at least one recorded attempt.
pub async fn first_attempts(h: &Hub, jurisdiction: i64, n: usize) -> Vec<(NotificationRecord, Vec<DeliveryAttempt>)> {
    for _ in 0..300 {
        let list = h.db(|s| s.notifications(&NotificationFilter { jurisdiction_id: Some(jurisdiction), campaign_id: None, limit: 100, include_children: false })).unwrap();
        if list.len() == n && list.iter().all(|n| n.attempts >= 1) {
            return list
                .into_iter()
                .map(|n| {
                    let a = h.db(|s| s.delivery_attempts(n.id)).unwrap();
                    (n, a)
                })
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{n} notifications of jurisdiction {jurisdiction} were not all attempted in 30 s");
}

crate::on_each_backend! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn loopback_in_any_spelling_is_never_contacted() {
        let (admin, hits) = internal_admin("127.0.0.1").await;
        let p = admin.port();
        let (running, h) = running_hub(&[]).await;
        let contacts: Vec<(Channel, String)> = vec![
            (Channel::Webhook, format!("http://127.0.0.1:{p}/internal-admin?action=delete")),
            (Channel::Webhook, format!("http://2130706433:{p}/internal-admin?action=delete")),
            (Channel::Webhook, format!("http://127.1:{p}/internal-admin?action=delete")),
            (Channel::Webhook, format!("http://0:{p}/internal-admin?action=delete")),
            (Channel::Webhook, format!("http://[::ffff:127.0.0.1]:{p}/internal-admin?action=delete")),
            (Channel::Webhook, format!("http://localhost:{p}/internal-admin?action=delete")),
            (Channel::Syslog, format!("127.0.0.1:{p}")),
            (Channel::Syslog, format!("localhost:{p}")),
            (Channel::Syslog, format!("2130706433:{p}")),
        ];
        let franklin = warn_contacts(&h, &contacts).await;
        let attempts = first_attempts(&h, franklin, contacts.len()).await;
        // A refused attempt is settled without a connection; give a stray one time to land anyway.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(hits.load(Ordering::SeqCst), 0, "the internal service was reached: {attempts:#?}");
        for (n, list) in &attempts {
            for a in list {
                assert!(!a.ok, "{n:?}");
                let class_named = a.detail.contains("loopback") || a.detail.contains("unspecified");
                assert!(a.detail.starts_with("address refused by egress policy") && class_named, "{}: {}", n.target, a.detail);
            }
        }
        running.shutdown().await;
    }

    /// Redirect targets: an allowed receiver (127.0.0.2) answers 302 towards the internal service
    /// (127.0.0.1): not followed. A 500 with a body: recorded as the status only.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_allowed_receiver_is_reached_but_not_its_redirects_or_its_words() {
        let (admin, admin_hits) = internal_admin("127.0.0.1").await;
        let receiver_hits = Arc::new(AtomicUsize::new(0));
        let counter = receiver_hits.clone();
        let redirect_to = format!("http://127.0.0.1:{}/internal-admin?action=delete", admin.port());
        let app = axum::Router::new()
            .route(
                "/redirect",
                axum::routing::post(move || {
                    let to = redirect_to.clone();
                    async move { (StatusCode::FOUND, [("location", to)]) }
                }),
            )
            .route("/fails", axum::routing::post(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "stack trace: SECRET-INTERNAL-DETAIL at db.internal:5432") }))
            .route("/ok", axum::routing::post(|| async { StatusCode::NO_CONTENT }))
            .layer(axum::middleware::from_fn(move |req: axum::extract::Request, next: axum::middleware::Next| {
                counter.fetch_add(1, Ordering::SeqCst);
                next.run(req)
            }));
        let listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
        let receiver = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let syslog = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
        let syslog_addr = syslog.local_addr().unwrap();
        let lines = Arc::new(std::sync::Mutex::new(String::new()));
        let sink = lines.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = syslog.accept().await {
                let mut text = String::new();
                let _ = sock.read_to_string(&mut text).await;
                sink.lock().unwrap().push_str(&text);
            }
        });

        let (running, h) = running_hub(&["127.0.0.2/32"]).await;
        let contacts = vec![
            (Channel::Webhook, format!("http://127.0.0.2:{}/redirect", receiver.port())),
            (Channel::Webhook, format!("http://127.0.0.2:{}/fails", receiver.port())),
            (Channel::Webhook, format!("http://127.0.0.2:{}/ok", receiver.port())),
            (Channel::Webhook, format!("http://127.0.0.1:{}/internal-admin?action=delete", admin.port())),
            (Channel::Syslog, syslog_addr.to_string()),
        ];
        let franklin = warn_contacts(&h, &contacts).await;
        let attempts = first_attempts(&h, franklin, contacts.len()).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(admin_hits.load(Ordering::SeqCst), 0, "a redirect was followed or an unlisted address reached: {attempts:#?}");
        assert!(receiver_hits.load(Ordering::SeqCst) >= 3, "the allowed receiver was reached");
        let detail = |suffix: &str| attempts.iter().find(|(n, _)| n.target.ends_with(suffix)).map(|(_, a)| a[0].clone()).unwrap();
        let ok = detail("/ok");
        assert!(ok.ok && ok.detail == "http 204", "{ok:?}");
        assert_eq!(detail("/redirect").detail, "webhook answered http 302 (redirects are not followed)");
        assert_eq!(detail("/fails").detail, "webhook answered http 500");
        assert!(detail("action=delete").detail.starts_with("address refused by egress policy: loopback"));
        let sys = attempts.iter().find(|(n, _)| n.channel == Channel::Syslog).map(|(_, a)| a[0].clone()).unwrap();
        assert!(sys.ok, "{sys:?}");
        assert!(lines.lock().unwrap().contains("CEF:0|ward|ward-hub|"));
        // The receiver's words appear nowhere: not in attempts, not in the API, not on the pages.
        h.user("ana", Role::Analyst, None);
        let ana = h.login("ana").await;
        let mut shown = String::new();
        for (n, _) in &attempts {
            shown.push_str(&h.get(&format!("/api/v1/notifications/{}/attempts", n.id), Some(&ana)).await.text());
            shown.push_str(&h.get(&format!("/notifications/{}", n.id), Some(&ana)).await.text());
        }
        shown.push_str(&h.get("/api/v1/notifications", Some(&ana)).await.text());
        assert!(shown.contains("http 500"), "{shown}");
        assert!(!shown.contains("SECRET-INTERNAL-DETAIL") && !shown.contains("db.internal"), "{shown}");
        running.shutdown().await;
    }

    #[tokio::test]
    async fn internal_targets_are_refused_at_creation_with_a_hint() {
        let h = common::hub();
        let j = h.jurisdiction("Franklin County", "OH");
        h.user("ana", Role::Analyst, None);
        let ana = h.login("ana").await;
        let path = format!("/api/v1/jurisdictions/{j}/contacts");
        for (channel, target) in [
            ("webhook", "http://169.254.169.254/latest/meta-data/iam/security-credentials/"),
            ("webhook", "http://metadata.google.internal/computeMetadata/v1/"),
            ("webhook", "http://127.0.0.1:8080/internal-admin?action=delete"),
            ("webhook", "http://2130706433/"),
            ("webhook", "http://[::ffff:10.0.0.1]/"),
            ("syslog", "10.0.0.1:514"),
            ("syslog", "[::1]:514"),
        ] {
            let r = h.post_json(&path, Some(&ana), json!({"channel": channel, "target": target})).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{target}: {}", r.text());
            let msg = r.json()["error"].as_str().unwrap().to_string();
            assert!(msg.starts_with("address refused by egress policy") && msg.contains("allow_targets"), "{msg}");
        }
        let r = h.post_json(&path, Some(&ana), json!({"channel": "webhook", "target": "not a url"})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(h.db(|s| s.contacts(Some(j))).unwrap().is_empty(), "nothing stored");
        // An on-premises SIEM whose address the operator listed is accepted.
        let h = common::hub_with(|c| c.notify.allow_targets = vec!["10.0.0.0/24".parse().unwrap()]);
        let j = h.jurisdiction("Franklin County", "OH");
        h.user("ana", Role::Analyst, None);
        let ana = h.login("ana").await;
        let r = h.post_json(&format!("/api/v1/jurisdictions/{j}/contacts"), Some(&ana), json!({"channel": "syslog", "target": "10.0.0.1:514"})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    }
}
