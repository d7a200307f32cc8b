//! Feeds the hub polls, end to end, on both stores: OASIS medallion (the TAXII 2.1 reference
//! server, memory backend, started as a real process on a loopback port) as the TAXII server;
//! MISP feeds and CSV lists served by a real HTTP server on loopback (an axum server in the
//! test, so each test can also serve what a broken feed serves). Indicators are checked where
//! a sensor sees them: the indicator log read through `GET /api/v1/indicators` and folded the
//! way ward-sensor folds it (`add` inserts, `remove` deletes).

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{json, Value};

use common::*;
use ward_hub::model::{now_ms, Role};
use ward_model::tlp::Tlp;

// ------------------------------------------------------------------------------------------
// medallion
// ------------------------------------------------------------------------------------------

const API_ROOT: &str = "api1";
const COLLECTION: &str = "91a7b528-80eb-42ed-a74d-c6fbd5a26116";
const TAXII_USER: &str = "ward";
const TAXII_PASSWORD: &str = "feed-password-0";
const TAXII_TYPE: &str = "application/taxii+json;version=2.1";

/// A medallion process on a free loopback port, killed when dropped.
struct Medallion {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Medallion {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Medallion {
    /// Starts medallion with an empty collection and `page_size` objects per page at most.
    async fn start(page_size: usize) -> Medallion {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let data = json!({
            "/discovery": {"title": "ward test", "description": "feeds test", "contact": "nobody", "default": format!("http://127.0.0.1:{port}/{API_ROOT}/"), "api_roots": [format!("http://127.0.0.1:{port}/{API_ROOT}/")]},
            API_ROOT: {
                "information": {"title": "test root", "description": "", "versions": [TAXII_TYPE], "max_content_length": 104857600},
                "status": [],
                "collections": [{"id": COLLECTION, "title": "indicators", "description": "", "can_read": true, "can_write": true, "media_types": ["application/stix+json;version=2.1"], "objects": [], "manifest": []}]
            }
        });
        std::fs::write(dir.path().join("data.json"), data.to_string()).unwrap();
        let config = json!({
            "backend": {"module": "medallion.backends.memory_backend", "module_class": "MemoryBackend", "filename": dir.path().join("data.json")},
            "users": {TAXII_USER: TAXII_PASSWORD},
            "taxii": {"max_page_size": page_size}
        });
        std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
        let child = Command::new("python3")
            .args(["-m", "medallion.scripts.run", "--host", "127.0.0.1", "--port", &port.to_string(), "--log-level", "ERROR"])
            .arg(dir.path().join("config.json"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 with medallion (scripts/setup-test-env.sh installs it)");
        let m = Medallion { child, port, _dir: dir };
        let client = reqwest::Client::new();
        for _ in 0..200 {
            let r = client.get(format!("http://127.0.0.1:{port}/taxii2/")).basic_auth(TAXII_USER, Some(TAXII_PASSWORD)).header("accept", TAXII_TYPE).send().await;
            if r.is_ok_and(|r| r.status().is_success()) {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("medallion did not answer on port {port}");
    }

    fn api_root(&self) -> String {
        format!("http://127.0.0.1:{}/{API_ROOT}/", self.port)
    }

    /// POSTs objects to the collection (as a TAXII client would) and waits for success.
    async fn add(&self, objects: Vec<Value>) {
        let r = reqwest::Client::new()
            .post(format!("{}collections/{COLLECTION}/objects/", self.api_root()))
            .basic_auth(TAXII_USER, Some(TAXII_PASSWORD))
            .header("accept", TAXII_TYPE)
            .header("content-type", TAXII_TYPE)
            .body(json!({ "objects": objects }).to_string())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "medallion refused the objects: {}", r.status());
        let status: Value = r.json().await.unwrap();
        assert_eq!(status["failure_count"], 0, "{status}");
    }
}

fn indicator_id(n: usize) -> String {
    format!("indicator--00000000-0000-4000-8000-{n:012x}")
}

fn address(n: usize) -> String {
    format!("185.220.{}.{}", n / 250, 1 + n % 250)
}

fn indicator(n: usize, pattern: &str, modified: &str, extra: Value) -> Value {
    let mut v = json!({
        "type": "indicator", "spec_version": "2.1", "id": indicator_id(n),
        "created": "2026-01-01T00:00:00.000Z", "modified": modified,
        "pattern": pattern, "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z",
        "confidence": 80, "object_marking_refs": [Tlp::Green.stix_id()],
    });
    for (k, val) in extra.as_object().unwrap() {
        v[k] = val.clone();
    }
    v
}

fn ip_indicator(n: usize) -> Value {
    indicator(n, &format!("[ipv4-addr:value = '{}']", address(n)), "2026-01-01T00:00:00.000Z", json!({}))
}

// ------------------------------------------------------------------------------------------
// A real HTTP server on loopback for MISP feeds, lists and broken feeds
// ------------------------------------------------------------------------------------------

#[derive(Clone)]
struct Served {
    status: u16,
    content_type: String,
    body: Vec<u8>,
    etag: Option<String>,
    delay: Duration,
}

impl Served {
    fn ok(content_type: &str, body: impl Into<Vec<u8>>) -> Served {
        Served { status: 200, content_type: content_type.into(), body: body.into(), etag: None, delay: Duration::ZERO }
    }
}

#[derive(Default)]
struct Site {
    files: HashMap<String, Served>,
    requests: BTreeMap<String, usize>,
}

struct FileServer {
    addr: SocketAddr,
    site: Arc<Mutex<Site>>,
}

impl FileServer {
    async fn start() -> FileServer {
        let site: Arc<Mutex<Site>> = Arc::default();
        let s = site.clone();
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri, headers: axum::http::HeaderMap| {
            let site = s.clone();
            async move {
                let path = uri.path().to_string();
                let served = {
                    let mut site = site.lock().unwrap();
                    *site.requests.entry(path.clone()).or_default() += 1;
                    site.files.get(&path).cloned()
                };
                let Some(f) = served else { return axum::response::Response::builder().status(404).body(axum::body::Body::empty()).unwrap() };
                tokio::time::sleep(f.delay).await;
                let inm = headers.get("if-none-match").and_then(|v| v.to_str().ok());
                if f.etag.is_some() && inm == f.etag.as_deref() {
                    return axum::response::Response::builder().status(304).body(axum::body::Body::empty()).unwrap();
                }
                let mut b = axum::response::Response::builder().status(f.status).header("content-type", f.content_type);
                if let Some(e) = &f.etag {
                    b = b.header("etag", e);
                }
                b.body(axum::body::Body::from(f.body)).unwrap()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        FileServer { addr, site }
    }

    fn put(&self, path: &str, served: Served) {
        self.site.lock().unwrap().files.insert(path.to_string(), served);
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self, path: &str) -> usize {
        self.site.lock().unwrap().requests.get(path).copied().unwrap_or(0)
    }
}

// ------------------------------------------------------------------------------------------
// The hub side
// ------------------------------------------------------------------------------------------

/// A hub whose feeds may be fetched from loopback, with an analyst and a county admin.
async fn feed_hub(f: impl FnOnce(&mut ward_hub::HubConfig)) -> (Hub, String) {
    let h = hub_with(|c| {
        c.feeds.allow_targets = vec!["127.0.0.1".parse().unwrap()];
        c.feeds.poll = false;
        f(c)
    });
    h.user("analyst", Role::Analyst, None);
    let token = h.login("analyst").await;
    (h, token)
}

async fn add_feed(h: &Hub, token: &str, body: Value) -> i64 {
    let r = h.post_json("/api/v1/feeds", Some(token), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let v = r.json();
    assert!(v.get("credential").is_none() && v.get("password").is_none(), "a credential came back: {v}");
    v["id"].as_i64().unwrap()
}

async fn poll(h: &Hub, token: &str, id: i64) -> Value {
    let r = h.post_json(&format!("/api/v1/feeds/{id}/poll"), Some(token), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

async fn feed(h: &Hub, token: &str, id: i64) -> Value {
    let r = h.get(&format!("/api/v1/feeds/{id}"), Some(token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

/// What a sensor holds after reading the whole log from the start, folded as ward-sensor does.
async fn sensor_list(h: &Hub, token: &str) -> BTreeSet<String> {
    let mut list = BTreeSet::new();
    let mut since = 0;
    loop {
        let r = h.get(&format!("/api/v1/indicators?since={since}"), Some(token)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let v = r.json();
        let items = v["indicators"].as_array().unwrap();
        if items.is_empty() {
            return list;
        }
        for i in items {
            let key = format!("{}:{}", i["kind"].as_str().unwrap(), i["value"].as_str().unwrap());
            match i["action"].as_str().unwrap() {
                "remove" => list.remove(&key),
                _ => list.insert(key),
            };
        }
        since = v["cursor"].as_i64().unwrap();
    }
}

/// The log entries for one value, in order (`add`/`remove`).
async fn log_of(h: &Hub, value: &str) -> Vec<String> {
    let list = h.db(|s| s.indicators_since(0, 1_000_000)).unwrap();
    list.into_iter().filter(|i| i.value == value).map(|i| i.action).collect()
}

fn ip(v: &str) -> String {
    format!("ip:{v}")
}

// ------------------------------------------------------------------------------------------
// Tests
// ------------------------------------------------------------------------------------------

on_each_backend! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn taxii_collection_in_medallion_pages_resumes_revokes_and_expires() {
        let m = Medallion::start(100).await;
        m.add((0..250).map(ip_indicator).collect()).await;
        let (h, token) = feed_hub(|_| {}).await;
        let id = add_feed(&h, &token, json!({
            "name": "isac", "kind": "taxii", "url": m.api_root(), "collection": COLLECTION,
            "username": TAXII_USER, "password": TAXII_PASSWORD, "min_confidence": 50,
        })).await;

        // 250 objects, 100 a page: three pages, every one taken.
        let r = poll(&h, &token, id).await;
        assert_eq!((r["requests"].as_u64(), r["entries"].as_u64(), r["added"].as_u64(), r["log_adds"].as_u64()), (Some(3), Some(250), Some(250), Some(250)), "{r}");
        assert!(r["error"].is_null(), "{r}");
        let list = sensor_list(&h, &token).await;
        assert_eq!(list.len(), 250);
        assert!(list.contains(&ip(&address(0))) && list.contains(&ip(&address(249))));
        let f = feed(&h, &token, id).await;
        assert_eq!((f["status"].as_str(), f["on_sensors"].as_i64(), f["has_credential"].as_bool()), (Some("ok"), Some(250), Some(true)), "{f}");
        assert!(f.get("password").is_none() && !f.to_string().contains(TAXII_PASSWORD));

        // Only what was added since is fetched: one page of 20 new objects, two of them below
        // the confidence floor and one with a pattern the hub does not read.
        let mut new: Vec<Value> = (250..270).map(ip_indicator).collect();
        new[0]["confidence"] = json!(20);
        new[1]["confidence"] = json!(40);
        new[2] = indicator(252, "[file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e']", "2026-01-01T00:00:00.000Z", json!({}));
        // A new version of one in the collection, marked TLP:RED: it leaves the sensors.
        new.push(indicator(5, &format!("[ipv4-addr:value = '{}']", address(5)), "2026-03-01T00:00:00.000Z", json!({"object_marking_refs": [Tlp::Red.stix_id()]})));
        // One that expires in two seconds.
        let soon = ward_hub::share::stix::timestamp(now_ms() + 2_000);
        new.push(indicator(300, &format!("[ipv4-addr:value = '{}']", address(300)), "2026-01-01T00:00:00.000Z", json!({"valid_until": soon})));
        m.add(new).await;
        let r = poll(&h, &token, id).await;
        assert_eq!((r["requests"].as_u64(), r["entries"].as_u64()), (Some(1), Some(22)), "only the new objects: {r}");
        assert_eq!((r["added"].as_u64(), r["log_adds"].as_u64(), r["log_removes"].as_u64()), (Some(18), Some(18), Some(1)), "{r}");
        assert_eq!((r["skipped"]["confidence"].as_u64(), r["skipped"]["pattern"].as_u64()), (Some(2), Some(1)), "{r}");
        let list = sensor_list(&h, &token).await;
        assert!(!list.contains(&ip(&address(5))), "TLP:RED stays on the hub");
        assert!(!list.contains(&ip(&address(250))) && list.contains(&ip(&address(253))) && list.contains(&ip(&address(300))));
        let f = feed(&h, &token, id).await;
        assert_eq!((f["on_sensors"].as_i64(), f["held_on_hub"].as_i64()), (Some(250 - 1 + 18), Some(1)), "{f}");

        // An analyst indicator on a value the feed holds; then the feed revokes it: the value
        // stays on the sensors, because the analyst still holds it.
        let shared = address(7);
        let r = h.post_json("/api/v1/indicators", Some(&token), json!({"value": shared, "description": "seen in our own traffic"})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let revoked = |n: usize| indicator(n, &format!("[ipv4-addr:value = '{}']", address(n)), "2026-04-01T00:00:00.000Z", json!({"revoked": true}));
        m.add(vec![revoked(7), revoked(8)]).await;
        let r = poll(&h, &token, id).await;
        assert_eq!((r["removed"].as_u64(), r["log_removes"].as_u64()), (Some(2), Some(1)), "{r}");
        let list = sensor_list(&h, &token).await;
        assert!(list.contains(&ip(&shared)), "the analyst's indicator is not withdrawn with the feed's");
        assert!(!list.contains(&ip(&address(8))), "a revoked version is withdrawn");
        assert_eq!(log_of(&h, &address(8)).await, ["add", "remove"]);

        // Expiry: valid_until passes; the expiry pass withdraws it.
        tokio::time::sleep(Duration::from_millis(2_200)).await;
        let expired = h.db(|s| s.expire_feed_indicators(now_ms())).unwrap();
        assert_eq!((expired.removed, expired.log_removes), (1, 1));
        assert!(!sensor_list(&h, &token).await.contains(&ip(&address(300))));

        // A poll with nothing new changes nothing and moves no cursor backwards.
        let r = poll(&h, &token, id).await;
        assert_eq!((r["entries"].as_u64(), r["added"].as_u64(), r["removed"].as_u64()), (Some(0), Some(0), Some(0)), "{r}");
        let f = feed(&h, &token, id).await;
        assert!(f["last_error"].is_null(), "{f}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn taxii_credentials_are_checked_and_a_401_is_an_error_that_keeps_indicators() {
        let m = Medallion::start(100).await;
        m.add((0..3).map(ip_indicator).collect()).await;
        let (h, token) = feed_hub(|_| {}).await;
        let good = add_feed(&h, &token, json!({"name": "good", "kind": "taxii", "url": m.api_root(), "collection": COLLECTION, "username": TAXII_USER, "password": TAXII_PASSWORD})).await;
        assert_eq!(poll(&h, &token, good).await["added"], 3);
        let bad = add_feed(&h, &token, json!({"name": "bad", "kind": "taxii", "url": m.api_root(), "collection": COLLECTION, "username": TAXII_USER, "password": "wrong"})).await;
        let r = poll(&h, &token, bad).await;
        assert!(r["error"].as_str().unwrap().contains("refused the credentials (http 401)"), "{r}");
        let f = feed(&h, &token, bad).await;
        assert_eq!((f["status"].as_str(), f["failures"].as_i64()), (Some("failing"), Some(1)));
        assert!(f["next_poll"].as_str().unwrap() > f["last_poll"].as_str().unwrap());
        assert_eq!(sensor_list(&h, &token).await.len(), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn csv_lists_replace_withdraw_cap_and_respect_the_allow_list() {
        let srv = FileServer::start().await;
        let list = |lines: &[&str]| Served { etag: Some(format!("\"{}\"", lines.len())), ..Served::ok("text/plain", lines.join("\n")) };
        srv.put("/drop.txt", list(&["# blocklist", "185.220.101.7", "45.155.205.0/24 ; SBL1", "bad-c2.example", "10.1.2.3", "8.8.8.8", "not a thing at all"]));
        let (h, token) = feed_hub(|_| {}).await;
        let id = add_feed(&h, &token, json!({"name": "drop", "kind": "csv", "url": srv.url("/drop.txt"), "tlp": "TLP:GREEN"})).await;
        let r = poll(&h, &token, id).await;
        assert_eq!((r["entries"].as_u64(), r["added"].as_u64(), r["skipped_allow"].as_u64()), (Some(6), Some(3), Some(1)), "{r}");
        assert_eq!((r["skipped"]["not_blockable"].as_u64(), r["skipped"]["unreadable"].as_u64()), (Some(1), Some(1)), "{r}");
        let got = sensor_list(&h, &token).await;
        assert_eq!(got, BTreeSet::from(["ip:185.220.101.7".to_string(), "net:45.155.205.0/24".into(), "domain:bad-c2.example".into()]));

        // Unchanged: the server says 304 and nothing is touched.
        let r = poll(&h, &token, id).await;
        assert_eq!(r["not_modified"], true, "{r}");

        // A line gone is withdrawn, a new line added.
        srv.put("/drop.txt", list(&["185.220.101.7", "bad-c2.example", "185.220.101.99"]));
        let r = poll(&h, &token, id).await;
        assert_eq!((r["added"].as_u64(), r["removed"].as_u64(), r["log_removes"].as_u64()), (Some(1), Some(1), Some(1)), "{r}");
        assert!(!sensor_list(&h, &token).await.contains("net:45.155.205.0/24"));

        // A second feed holding the same value; removing it leaves the value with the first.
        srv.put("/other.txt", Served::ok("text/plain", "185.220.101.7\n185.220.101.8\n"));
        let other = add_feed(&h, &token, json!({"name": "other", "kind": "csv", "url": srv.url("/other.txt")})).await;
        let r = poll(&h, &token, other).await;
        assert_eq!((r["added"].as_u64(), r["log_adds"].as_u64()), (Some(2), Some(1)), "a live value is not logged again: {r}");
        let r = h.post_json(&format!("/api/v1/feeds/{other}/remove"), Some(&token), json!({})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!((r.json()["removed"].as_u64(), r.json()["log_removes"].as_u64()), (Some(2), Some(1)));
        let got = sensor_list(&h, &token).await;
        assert!(got.contains("ip:185.220.101.7") && !got.contains("ip:185.220.101.8"));
        assert_eq!(log_of(&h, "185.220.101.7").await, ["add"]);

        // An allow-list entry withdraws what it covers, and the next poll does not take it back.
        let r = h.post_json("/api/v1/allowlist", Some(&token), json!({"network": "185.220.101.0/24", "note": "the state's election-results vendor"})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        assert_eq!(r.json()["indicators_withdrawn"], 2);
        srv.put("/drop.txt", list(&["185.220.101.7", "bad-c2.example", "185.220.101.99", "185.220.102.1"]));
        let r = poll(&h, &token, id).await;
        assert_eq!((r["added"].as_u64(), r["skipped_allow"].as_u64()), (Some(1), Some(2)), "{r}");
        let got = sensor_list(&h, &token).await;
        assert_eq!(got, BTreeSet::from(["domain:bad-c2.example".to_string(), "ip:185.220.102.1".into()]));

        // The cap: a broken list of 100 addresses on a feed capped at 10.
        let many: Vec<String> = (0..100).map(|n| format!("185.221.0.{}", n + 1)).collect();
        srv.put("/flood.txt", Served::ok("text/plain", many.join("\n")));
        let flood = add_feed(&h, &token, json!({"name": "flood", "kind": "csv", "url": srv.url("/flood.txt"), "max_indicators": 10, "types": ["ip"]})).await;
        let r = poll(&h, &token, flood).await;
        assert_eq!((r["added"].as_u64(), r["skipped_cap"].as_u64(), r["capped"].as_bool()), (Some(10), Some(90), Some(true)), "{r}");
        assert!(r["error"].as_str().unwrap().contains("over its cap of 10"), "{r}");
        let listed = h.get("/api/v1/feeds", Some(&token)).await.json();
        let f = listed.as_array().unwrap().iter().find(|f| f["id"] == flood).unwrap();
        assert_eq!(f["status"], "capped");
        assert_eq!(sensor_list(&h, &token).await.iter().filter(|v| v.starts_with("ip:185.221.")).count(), 10);

        // Type filter and confidence floor.
        srv.put("/mixed.txt", Served::ok("text/csv", "185.222.0.1\nmixed.example\n185.222.0.0/24\n"));
        let ips = add_feed(&h, &token, json!({"name": "ips only", "kind": "csv", "url": srv.url("/mixed.txt"), "types": ["ip"]})).await;
        let r = poll(&h, &token, ips).await;
        assert_eq!((r["added"].as_u64(), r["skipped"]["type"].as_u64()), (Some(1), Some(2)), "{r}");
        let low = add_feed(&h, &token, json!({"name": "low", "kind": "csv", "url": srv.url("/mixed.txt"), "default_confidence": 30, "min_confidence": 50})).await;
        let r = poll(&h, &token, low).await;
        assert_eq!((r["added"].as_u64(), r["skipped"]["confidence"].as_u64()), (Some(0), Some(3)), "{r}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn misp_feed_fetches_only_changed_events_and_honours_to_ids() {
        const E1: &str = "5f3c1a2b-0000-4000-8000-0000000000e1";
        const E2: &str = "5f3c1a2b-0000-4000-8000-0000000000e2";
        let srv = FileServer::start().await;
        let attr = |n: u32, ty: &str, value: &str, to_ids: bool| json!({"uuid": format!("5f3c1a2b-0000-4000-8000-{n:012x}"), "type": ty, "value": value, "to_ids": to_ids, "category": "Network activity"});
        let event = |uuid: &str, attrs: Vec<Value>| Served::ok("application/json", json!({"Event": {"uuid": uuid, "info": "test", "Tag": [{"name": "tlp:green"}], "Attribute": attrs}}).to_string());
        let manifest = |entries: &[(&str, i64)]| {
            let m: serde_json::Map<String, Value> = entries.iter().map(|(u, ts)| (u.to_string(), json!({"info": "test", "timestamp": ts.to_string()}))).collect();
            Served::ok("application/json", Value::Object(m).to_string())
        };
        srv.put("/misp/manifest.json", manifest(&[(E1, 100), (E2, 100)]));
        srv.put(&format!("/misp/{E1}.json"), event(E1, vec![attr(1, "ip-dst", "185.220.110.1", true), attr(2, "domain", "misp-c2.example", true), attr(3, "md5", "d41d8cd98f00b204e9800998ecf8427e", true)]));
        srv.put(&format!("/misp/{E2}.json"), event(E2, vec![attr(4, "ip-src", "185.220.110.2", true), attr(5, "hostname", "quiet.example", false)]));
        let (h, token) = feed_hub(|_| {}).await;
        let id = add_feed(&h, &token, json!({"name": "misp", "kind": "misp", "url": srv.url("/misp/")})).await;
        let r = poll(&h, &token, id).await;
        assert_eq!((r["requests"].as_u64(), r["added"].as_u64(), r["skipped"]["not_for_ids"].as_u64()), (Some(3), Some(3), Some(1)), "{r}");
        assert_eq!(sensor_list(&h, &token).await, BTreeSet::from(["ip:185.220.110.1".to_string(), "domain:misp-c2.example".into(), "ip:185.220.110.2".into()]));

        // E1 changes (its domain is no longer for IDS); E2 does not: only E1 is fetched again.
        srv.put("/misp/manifest.json", manifest(&[(E1, 200), (E2, 100)]));
        srv.put(&format!("/misp/{E1}.json"), event(E1, vec![attr(1, "ip-dst", "185.220.110.1", true), attr(2, "domain", "misp-c2.example", false)]));
        let r = poll(&h, &token, id).await;
        assert_eq!((r["requests"].as_u64(), r["removed"].as_u64()), (Some(2), Some(1)), "{r}");
        assert_eq!((srv.requests(&format!("/misp/{E1}.json")), srv.requests(&format!("/misp/{E2}.json"))), (2, 1));
        assert!(!sensor_list(&h, &token).await.contains("domain:misp-c2.example"));

        // E2 leaves the manifest: its attributes are withdrawn.
        srv.put("/misp/manifest.json", manifest(&[(E1, 200)]));
        let r = poll(&h, &token, id).await;
        assert_eq!((r["requests"].as_u64(), r["removed"].as_u64()), (Some(1), Some(1)), "{r}");
        assert_eq!(sensor_list(&h, &token).await, BTreeSet::from(["ip:185.220.110.1".to_string()]));

        // A manifest naming a path outside the feed is refused whole; nothing changes.
        srv.put("/misp/manifest.json", Served::ok("application/json", json!({"../../secret": {"timestamp": 1}}).to_string()));
        let r = poll(&h, &token, id).await;
        assert!(r["error"].as_str().unwrap().contains("not an event uuid"), "{r}");
        assert_eq!(sensor_list(&h, &token).await.len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn broken_feeds_fail_clearly_and_lose_nothing() {
        let srv = FileServer::start().await;
        srv.put("/list.txt", Served::ok("text/plain", "185.220.120.1\n185.220.120.2\n"));
        let (h, token) = feed_hub(|c| {
            c.feeds.timeout_secs = 1;
            c.feeds.max_response_mib = 1;
        })
        .await;
        let id = add_feed(&h, &token, json!({"name": "list", "kind": "csv", "url": srv.url("/list.txt")})).await;
        assert_eq!(poll(&h, &token, id).await["added"], 2);
        let before = sensor_list(&h, &token).await;

        let cases: Vec<(Served, &str)> = vec![
            (Served::ok("text/html", "<html>please log in</html>"), "web page"),
            (Served::ok("text/plain", "<html>\n<body>\nerror\n</body>\n"), "no line of the list could be read"),
            (Served::ok("text/plain", ""), "no line of the list could be read"),
            (Served { status: 401, ..Served::ok("text/plain", "no") }, "refused the credentials (http 401)"),
            (Served { status: 500, ..Served::ok("text/plain", "oops") }, "http 500"),
            (Served::ok("text/plain", vec![b'1'; 2 * 1024 * 1024]), "larger than 1048576 bytes"),
            (Served { delay: Duration::from_secs(3), ..Served::ok("text/plain", "185.220.120.9\n") }, "timed out"),
        ];
        for (n, (served, expected)) in cases.into_iter().enumerate() {
            srv.put("/list.txt", served);
            let r = poll(&h, &token, id).await;
            let error = r["error"].as_str().unwrap_or_else(|| panic!("case {n}: no error: {r}"));
            assert!(error.contains(expected), "case {n}: {error:?} should say {expected:?}");
            assert_eq!(sensor_list(&h, &token).await, before, "case {n}: nothing lost");
            let f = feed(&h, &token, id).await;
            assert_eq!((f["status"].as_str(), f["failures"].as_i64()), (Some("failing"), Some(n as i64 + 1)), "case {n}: {f}");
        }

        // TAXII: malformed JSON, and a web page where the envelope should be.
        srv.put("/taxii/collections/c1/objects/", Served::ok(TAXII_TYPE, "{\"objects\": [ {\"type\": "));
        let t = add_feed(&h, &token, json!({"name": "taxii", "kind": "taxii", "url": srv.url("/taxii/"), "collection": "c1"})).await;
        assert!(poll(&h, &token, t).await["error"].as_str().unwrap().contains("not a TAXII envelope"));
        srv.put("/taxii/collections/c1/objects/", Served::ok("text/html", "<html></html>"));
        assert!(poll(&h, &token, t).await["error"].as_str().unwrap().contains("instead of application/taxii+json"));
        // MISP: an event that is not JSON is kept as it was, and said.
        srv.put("/m/manifest.json", Served::ok("application/json", json!({"5f3c1a2b-0000-4000-8000-0000000000e9": {"timestamp": 1}}).to_string()));
        srv.put("/m/5f3c1a2b-0000-4000-8000-0000000000e9.json", Served::ok("application/json", "{]"));
        let mi = add_feed(&h, &token, json!({"name": "misp", "kind": "misp", "url": srv.url("/m/")})).await;
        assert!(poll(&h, &token, mi).await["error"].as_str().unwrap().contains("1 events could not be read"));

        // Without [feeds] allow_targets, loopback is refused by the egress rules.
        let (h2, token2) = feed_hub(|c| c.feeds.allow_targets.clear()).await;
        let id2 = add_feed(&h2, &token2, json!({"name": "list", "kind": "csv", "url": srv.url("/list.txt")})).await;
        assert!(poll(&h2, &token2, id2).await["error"].as_str().unwrap().contains("refused by egress policy: loopback"));
        assert_eq!(sensor_list(&h, &token).await, before);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sources_share_values_and_analyst_expiry_respects_feeds() {
        let srv = FileServer::start().await;
        srv.put("/a.txt", Served::ok("text/plain", "185.220.130.1\n"));
        let (h, token) = feed_hub(|_| {}).await;
        let id = add_feed(&h, &token, json!({"name": "a", "kind": "csv", "url": srv.url("/a.txt")})).await;
        poll(&h, &token, id).await;
        // An analyst indicator that expires on a value the feed holds: its expiry logs nothing.
        let expires = ward_hub::share::stix::timestamp(now_ms() + 1_500);
        let r = h.post_json("/api/v1/indicators", Some(&token), json!({"value": "185.220.130.1", "description": "also ours", "expires": expires})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        tokio::time::sleep(Duration::from_millis(1_700)).await;
        assert_eq!(h.db(|s| s.expire_analyst_indicators(now_ms())).unwrap(), 1);
        assert!(sensor_list(&h, &token).await.contains("ip:185.220.130.1"), "the feed still holds it");
        // The feed lets go: now it leaves.
        srv.put("/a.txt", Served::ok("text/plain", "185.220.130.2\n"));
        poll(&h, &token, id).await;
        assert_eq!(sensor_list(&h, &token).await, BTreeSet::from(["ip:185.220.130.2".to_string()]));
        assert_eq!(log_of(&h, "185.220.130.1").await, ["add", "add", "remove"]);
    }

    #[tokio::test]
    async fn feeds_are_for_analysts_only() {
        let (h, token) = feed_hub(|_| {}).await;
        let county = h.jurisdiction("Franklin County", "OH");
        h.user("clerk", Role::Admin, Some(county));
        let clerk = h.login("clerk").await;
        let id = add_feed(&h, &token, json!({"name": "x", "kind": "csv", "url": "https://lists.example/x.txt"})).await;
        for (path, post) in [("/api/v1/feeds".to_string(), false), ("/api/v1/feeds".into(), true), (format!("/api/v1/feeds/{id}"), false), (format!("/api/v1/feeds/{id}/poll"), true), (format!("/api/v1/feeds/{id}/remove"), true)] {
            let r = if post { h.post_json(&path, Some(&clerk), json!({"name": "y", "kind": "csv", "url": "https://a.example/"})).await } else { h.get(&path, Some(&clerk)).await };
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
            let r = if post { h.post_json(&path, None, json!({})).await } else { h.get(&path, None).await };
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
        }
        assert_eq!(h.get("/api/v1/feeds/999", Some(&token)).await.status, StatusCode::NOT_FOUND);
        let r = h.post_json("/api/v1/feeds", Some(&token), json!({"name": "x", "kind": "csv", "url": "https://lists.example/y.txt"})).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
        let r = h.post_json("/api/v1/feeds", Some(&token), json!({"name": "z", "kind": "csv", "url": "http://lists.example/", "token": "t"})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "credentials only over https: {}", r.text());
        let r = h.post_json("/api/v1/feeds", Some(&token), json!({"name": "z", "kind": "csv", "url": "https://lists.example/", "surprise": 1})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
    }
}

/// The credential is sealed in the SQLite store: it is not in the database file in clear.
#[tokio::test]
async fn feed_credentials_are_sealed_at_rest_in_sqlite() {
    let (h, token) = feed_hub(|_| {}).await;
    add_feed(&h, &token, json!({"name": "sealed", "kind": "taxii", "url": "https://taxii.example/api1/", "collection": "c1", "username": "u", "password": "very-secret-feed-password"})).await;
    let id = h.db(|s| s.feeds()).unwrap()[0].id;
    assert_eq!(h.db(|s| s.feed_credential(id)).unwrap().as_deref(), Some("very-secret-feed-password"));
    drop(h.state);
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(h.dir.path()).unwrap() {
        let p = entry.unwrap().path();
        if p.to_string_lossy().contains("ward-hub.sqlite3") {
            bytes.extend(std::fs::read(p).unwrap());
        }
    }
    assert!(!bytes.is_empty());
    assert!(!bytes.windows(25).any(|w| w == b"very-secret-feed-password"));
}

// ------------------------------------------------------------------------------------------
// The command line
// ------------------------------------------------------------------------------------------

#[derive(clap::Parser)]
struct Ward {
    #[command(subcommand)]
    hub: ward_hub::cli::HubCommand,
}

fn cli(args: Vec<String>) -> anyhow::Result<()> {
    use clap::Parser;
    let mut argv = vec!["ward".to_string()];
    argv.extend(args);
    ward_hub::cli::run(Ward::try_parse_from(argv)?.hub)
}

on_each_backend! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn feed_add_list_poll_remove_on_the_command_line() {
        let srv = FileServer::start().await;
        srv.put("/l.txt", Served::ok("text/plain", "185.220.140.1\n185.220.140.2\n"));
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("hub.toml");
        std::fs::write(&config, "[feeds]\nallow_targets = [\"127.0.0.1\"]\n").unwrap();
        let place = match common::backends::database_for_test() {
            Some(url) => vec!["--database".to_string(), url],
            None => vec!["--data".to_string(), dir.path().join("store").to_string_lossy().into_owned()],
        };
        let run = |args: &[&str]| {
            let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            a.extend(place.clone());
            std::thread::spawn(move || cli(a)).join().unwrap()
        };
        let url = srv.url("/l.txt");
        run(&["feed", "add", "list", "--kind", "csv", "--url", &url, "--max-indicators", "100", "--types", "ip,net"]).unwrap();
        let err = run(&["feed", "add", "list", "--kind", "csv", "--url", &url]).unwrap_err();
        assert!(format!("{err:#}").contains("exists already"), "{err:#}");
        assert!(run(&["feed", "add", "bad", "--kind", "rss", "--url", &url]).is_err());
        let c = config.to_string_lossy().into_owned();
        run(&["feed", "poll", "1", "--config", &c]).unwrap();
        let err = run(&["feed", "poll", "1"]).unwrap_err();
        assert!(format!("{err:#}").contains("egress policy"), "without the config loopback is refused: {err:#}");
        run(&["feed", "list"]).unwrap();
        let store = {
            let database = match place[0].as_str() {
                "--database" => ward_hub::store::open::Database::parse(&place[1]).unwrap(),
                _ => ward_hub::store::open::Database::sqlite_dir(std::path::Path::new(&place[1])),
            };
            std::thread::spawn(move || database.open().unwrap()).join().unwrap()
        };
        let feeds = db(store.as_ref(), |s| s.feeds()).unwrap();
        assert_eq!((feeds.len(), feeds[0].on_sensors, feeds[0].failures), (1, 2, 1));
        run(&["feed", "remove", "1"]).unwrap();
        assert!(db(store.as_ref(), |s| s.feeds()).unwrap().is_empty());
        let log = db(store.as_ref(), |s| s.indicators_since(0, 100)).unwrap();
        assert_eq!(log.iter().filter(|i| i.action == "remove").count(), 2);
    }
}

/// The fuzz target's invariants (`fuzz/fuzz_targets/feeds.rs`) over 30,000 mutations of its
/// seeds, so a regression shows in the ordinary test run and not only under cargo-fuzz.
#[test]
fn mutated_feed_responses_never_panic_and_items_normalise_to_themselves() {
    let seeds_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/feeds");
    let seeds: Vec<Vec<u8>> = std::fs::read_dir(&seeds_dir).unwrap().map(|e| std::fs::read(e.unwrap().path()).unwrap()).collect();
    assert!(seeds.len() >= 5);
    let alphabet: &[&[u8]] = &[b"\n", b",", b"\"", b"#", b"/", b"/24", b".", b":", b"::", b"185.220.", b"{", b"}", b"[", b"]", b"\"to_ids\":true", b"\"Attribute\":[", b" OR ", b"'", b"\xff", b"http://", b"|"];
    mutate_each(&seeds, alphabet, 12, 1, 30_000, ward_hub::fuzz::feeds);
}

/// `ward hub migrate` carries feeds over: settings, poll state, the indicators held, and the
/// credential (opened with the SQLite store's key file on the way).
#[test]
fn feeds_move_from_sqlite_to_postgresql() {
    use ward_hub::share::feeds::{validate, FeedItem, FeedUpdate, GroupUpdate};
    use ward_hub::store::open::Database;
    use ward_hub::store::Store;
    let Some(pg) = common::backends::PgDatabase::create() else { return };
    let dir = tempfile::tempdir().unwrap();
    {
        let sqlite = ward_hub::store::sqlite::SqliteStore::open_dir(dir.path()).unwrap();
        let req = ward_hub::share::feeds::FeedRequest { name: "isac".into(), kind: "taxii".into(), url: "https://taxii.example/api1/".into(), collection: Some("c1".into()), username: Some("u".into()), password: Some("moving-secret".into()), ..Default::default() };
        let f = sqlite.add_feed(&validate(&req, "cli").unwrap(), now_ms()).unwrap();
        let item = |v: &str, tlp| FeedItem { source_ref: "indicator--00000000-0000-4000-8000-000000000001".into(), kind: "ip", value: v.into(), confidence: 80, tlp, valid_until_ms: None };
        let mut update = FeedUpdate { groups: vec![GroupUpdate { group: "g".into(), items: vec![item("185.220.150.1", Tlp::Green), item("185.220.150.2", Tlp::Red)] }], state: Some(Default::default()) };
        update.state.as_mut().unwrap().added_after = Some("2026-01-01T00:00:00.000000Z".into());
        let applied = sqlite.apply_feed_update(f.id, &update, &ward_hub::trust::AllowList::builtin(), now_ms()).unwrap();
        assert_eq!((applied.added, applied.held_on_hub, applied.log_adds), (2, 1, 1));
    }
    let url = pg.url();
    let to = Database::parse(&url).unwrap();
    let from = Database::sqlite_dir(dir.path());
    std::thread::spawn(move || ward_hub::store::migrate::run(&from, &to, &mut |_| {}).unwrap()).join().unwrap();
    let store = std::thread::spawn(move || ward_hub::store::postgres::PgStore::connect(&url).unwrap()).join().unwrap();
    let (feeds, credential, held) = db(&store, |s| {
        let feeds = s.feeds().unwrap();
        let id = feeds[0].id;
        (feeds, s.feed_credential(id).unwrap(), s.feed_indicators(id, 10).unwrap())
    });
    assert_eq!((feeds.len(), feeds[0].on_sensors, feeds[0].held_on_hub), (1, 1, 1));
    assert_eq!(feeds[0].state.added_after.as_deref(), Some("2026-01-01T00:00:00.000000Z"));
    assert_eq!(credential.as_deref(), Some("moving-secret"));
    assert_eq!(held.iter().filter(|i| i.on_sensors).count(), 1);
    // The next feed added on PostgreSQL gets a fresh id (the identity moved past the copied ones).
    let req = ward_hub::share::feeds::FeedRequest { name: "next".into(), kind: "csv".into(), url: "https://lists.example/x.txt".into(), ..Default::default() };
    let next = db(&store, |s| s.add_feed(&ward_hub::share::feeds::validate(&req, "cli").unwrap(), now_ms())).unwrap();
    assert!(next.id > feeds[0].id);
    std::thread::spawn(move || drop(store)).join().unwrap();
}
