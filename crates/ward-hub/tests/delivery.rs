//! End to end on real sockets: a hub bound to a loopback port, sensors posting over HTTP, and
//! real receivers — a webhook server that checks the HMAC signature, an SMTP server (Python's
//! aiosmtpd, `pip install aiosmtpd`) and a syslog TCP listener. Also HTTPS with a certificate
//! from files.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;
use common::smtp::{read_maildir, start_smtp};
use ward_hub::model::{now_ms, Channel, NewContact, Role};

const SECRET: &str = "a-webhook-secret-of-some-length";

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(String, Value)>>>,
    /// Answer 500 to this many requests for this receiver name first (to exercise retries).
    fail_first: Arc<Mutex<(String, usize)>>,
}

async fn hook(State(r): State<Receiver>, Path(name): Path<String>, headers: HeaderMap, body: axum::body::Bytes) -> StatusCode {
    let ts = headers["x-ward-timestamp"].to_str().unwrap();
    let sig = headers["x-ward-signature"].to_str().unwrap();
    if !ward_hub::notify::webhook::verify(SECRET, ts, &body, sig, chrono::Utc::now().timestamp()) {
        return StatusCode::UNAUTHORIZED;
    }
    {
        let mut f = r.fail_first.lock().unwrap();
        if f.0 == name && f.1 > 0 {
            f.1 -= 1;
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
    }
    r.got.lock().unwrap().push((name, serde_json::from_slice(&body).unwrap()));
    StatusCode::NO_CONTENT
}

async fn start_receiver(r: Receiver) -> std::net::SocketAddr {
    let app = axum::Router::new().route("/hook/{name}", axum::routing::post(hook)).with_state(r);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..150 {
        if let Some(v) = f() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

on_each_backend! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_campaign_warns_every_contact_on_every_channel() {
        let dir = tempfile::tempdir().unwrap();
        let smtp = start_smtp().await;
        let receiver = Receiver::default();
        *receiver.fail_first.lock().unwrap() = ("Ohio".to_string(), 1);
        let hook_addr = start_receiver(receiver.clone()).await;
        let syslog = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let syslog_addr = syslog.local_addr().unwrap();
        let syslog_lines = Arc::new(Mutex::new(Vec::<String>::new()));
        {
            let lines = syslog_lines.clone();
            tokio::spawn(async move {
                loop {
                    let (sock, _) = syslog.accept().await.unwrap();
                    let lines = lines.clone();
                    tokio::spawn(async move {
                        let mut rd = tokio::io::BufReader::new(sock).lines();
                        while let Ok(Some(l)) = rd.next_line().await {
                            lines.lock().unwrap().push(l);
                        }
                    });
                }
            });
        }

        let mut config = common::config(dir.path());
        config.notify.smtp_port = smtp.port;
        config.notify.phone = "+1 555 0100".into();
        config.public_url = "https://hub.example.org".into();
        // The receivers are on loopback, which the egress policy refuses unless listed.
        config.notify.allow_targets = vec!["127.0.0.1/32".parse().unwrap()];
        let hub = ward_hub::start(config).await.unwrap();
        let store = hub.state.store.clone();
        let now = now_ms();
        let phc = ward_hub::auth::hash_password(common::PASSWORD).unwrap();
        let juris = common::db(store.as_ref(), |s| {
            let mut juris = Vec::new();
            for (name, st) in [("Ohio", "OH"), ("Iowa", "IA"), ("Utah", "UT")] {
                let j = s.create_jurisdiction(&ward_hub::model::NewJurisdiction { name: name.into(), kind: ward_hub::model::JurisdictionKind::State, state: Some(st.into()), home_net: None }, now).unwrap().id;
                s.create_contact(j, &NewContact { channel: Channel::Webhook, target: format!("http://{hook_addr}/hook/{name}"), secret: Some(SECRET.into()) }, now).unwrap();
                juris.push(j);
            }
            s.create_contact(juris[0], &NewContact { channel: Channel::Email, target: "clerk@ohio.example.gov".into(), secret: None }, now).unwrap();
            s.create_contact(juris[1], &NewContact { channel: Channel::Syslog, target: syslog_addr.to_string(), secret: None }, now).unwrap();
            s.create_user("ana", &phc, Role::Analyst, None, now).unwrap();
            juris
        });

        // Sensors enroll and post over real HTTP.
        let http = reqwest::Client::new();
        let base = hub.url();
        let mut sensors = Vec::new();
        for &j in &juris {
            let token = ward_hub::auth::random_token("wet");
            common::db(store.as_ref(), |s| s.create_enrollment_token(j, &ward_hub::auth::hash_token(&token), now, now + 60_000)).unwrap();
            let v: Value = http.post(format!("{base}/api/v1/sensors/enroll")).json(&json!({"token": token})).send().await.unwrap().json().await.unwrap();
            sensors.push((v["sensor"]["id"].as_i64().unwrap(), v["credential"].as_str().unwrap().to_string()));
        }
        let post = |i: usize, seq: i64, line: String| {
            let (http, base, s) = (http.clone(), base.clone(), sensors[i].clone());
            async move {
                let r = http
                    .post(format!("{base}/api/v1/events"))
                    .bearer_auth(&s.1)
                    .header("idempotency-key", format!("{}:{seq}", s.0))
                    .body(line)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
        };
        post(0, 1, common::alert_line("185.220.101.7", "10.1.0.25", 2403300, "ET CINS Poor Reputation IP")).await;
        post(1, 1, common::alert_line("185.220.101.7", "10.2.0.9", 2403300, "ET CINS Poor Reputation IP")).await;

        // Ohio and Iowa are warned on every channel; Ohio's webhook first fails once, then succeeds.
        let got = until("webhooks for Ohio and Iowa", || {
            let g = receiver.got.lock().unwrap().clone();
            (g.len() >= 2).then_some(g)
        })
        .await;
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"Ohio") && names.contains(&"Iowa"), "{names:?}");
        let (_, ohio) = got.iter().find(|(n, _)| n == "Ohio").unwrap();
        assert_eq!(ohio["type"], "ward.campaign.targeted");
        assert!(ohio["id"].as_i64().is_some_and(|id| id > 0), "the notification id lets receivers drop a retried duplicate: {ohio}");
        assert_eq!(ohio["tlp"], "TLP:AMBER");
        assert_eq!(ohio["other_jurisdictions"], 1);
        assert_eq!(ohio["seen"]["remote_addresses"][0], "185.220.101.7");
        assert_eq!(ohio["seen"]["local_hosts"][0], "10.1.0.25");
        assert_eq!(ohio["actions"]["call"], "+1 555 0100");
        assert!(!ohio.to_string().contains("Iowa"), "ohio's message names iowa: {ohio}");
        let mail = until("email to Ohio", || read_maildir(smtp.maildir.path()).into_iter().next()).await;
        assert!(mail.contains("clerk@ohio.example.gov"), "{mail}");
        assert!(mail.contains("185.220.101.7") && mail.contains("1 other jurisdiction"), "{mail}");
        assert!(mail.contains("TLP:AMBER") && mail.contains("Block these addresses"), "{mail}");
        let line = until("syslog line for Iowa", || syslog_lines.lock().unwrap().first().cloned()).await;
        assert!(line.contains("CEF:0|ward|ward-hub|") && line.contains("src=185.220.101.7") && line.contains("cnt=1"), "{line}");

        // Utah joins: it is targeted; Ohio and Iowa get one digest each, not one per event.
        post(2, 1, format!("{}\n{}", common::alert_line("185.220.101.7", "10.3.0.1", 1, "x"), common::alert_line("185.220.101.7", "10.3.0.2", 1, "x"))).await;
        until("Utah's webhook", || receiver.got.lock().unwrap().iter().any(|(n, _)| n == "Utah").then_some(())).await;

        // The notification log (API, analyst) shows every attempt, including the failed one.
        let login: Value = http.post(format!("{base}/api/v1/login")).json(&json!({"username": "ana", "password": common::PASSWORD})).send().await.unwrap().json().await.unwrap();
        let token = login["token"].as_str().unwrap();
        let list: Value = http.get(format!("{base}/api/v1/notifications")).bearer_auth(token).send().await.unwrap().json().await.unwrap();
        let list = list.as_array().unwrap();
        let ohio_hook = list.iter().find(|n| n["target"].as_str().unwrap().ends_with("/hook/Ohio") && n["event_kind"] == "targeted").unwrap();
        let attempts: Value = http.get(format!("{base}/api/v1/notifications/{}/attempts", ohio_hook["id"])).bearer_auth(token).send().await.unwrap().json().await.unwrap();
        let oks: Vec<bool> = attempts.as_array().unwrap().iter().map(|a| a["ok"].as_bool().unwrap()).collect();
        assert_eq!(oks, vec![false, true], "{attempts}");
        let per_contact_campaign_kind = list.iter().filter(|n| n["event_kind"] == "targeted").count();
        assert_eq!(per_contact_campaign_kind, 5, "one targeted notification per contact: {list:?}");
        let grew = list.iter().filter(|n| n["event_kind"] == "grew").count();
        assert!(grew <= 4, "digests, not floods: {grew}");
        hub.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_with_a_certificate_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = ward_hub::server::self_signed_pem().unwrap();
    std::fs::write(dir.path().join("hub.crt"), &cert).unwrap();
    std::fs::write(dir.path().join("hub.key"), &key).unwrap();
    let mut config = common::config(dir.path());
    config.tls.cert = Some(dir.path().join("hub.crt"));
    config.tls.key = Some(dir.path().join("hub.key"));
    let hub = ward_hub::start(config).await.unwrap();
    assert_eq!(hub.scheme, "https");
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(cert.as_bytes()).unwrap()])
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/healthz", hub.addr.port());
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["strict-transport-security"].to_str().unwrap().contains("max-age"));
    // Plain HTTP is refused off loopback.
    let mut bad = common::config(dir.path());
    bad.listen = "0.0.0.0:0".parse().unwrap();
    let err = ward_hub::start(bad).await.err().unwrap().to_string();
    assert!(err.contains("refusing plain HTTP"), "{err}");
    hub.shutdown().await;
}
