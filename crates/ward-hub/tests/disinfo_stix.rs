//! Disinformation cases as STIX 2.1 over TAXII and between federated hubs
//! (crates/ward-hub/src/disinfo/stix.rs; docs/disinformation.md "STIX mapping"). Two real hubs on
//! loopback: an analyst of state A files a report for a county (with a screenshot); A's
//! publisher puts the case into its TAXII collections, where a partner reads it with TAXII GET
//! (checked by OASIS's stix2-validator and the stix2 parser), a partner whose ceiling is below
//! the hub's TLP does not, and nothing names the county, the reporter or the screenshot. A
//! status change is a new version of the same report. A pushes it to the national hub, which
//! stores every object and shows the case in `GET /api/v1/federation` as from state A. Both
//! stores.

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};
use ward_hub::model::{now_ms, JurisdictionKind, NewJurisdiction, Role};
use ward_hub::server::RunningHub;
use ward_hub::share::accounts::Collection;
use ward_hub::store::Store;
use ward_hub::HubConfig;
use ward_model::tlp::Tlp;

use common::smtp::free_port;

const CLAIM: &str = "Polling places close at 5pm on November 5 because of a staffing shortage";
const TRUTH: &str = "Polls are open from 6am to 7pm on November 5.";
const CITATION: &str = "A.R.S. § 16-565";

struct Planned {
    dir: tempfile::TempDir,
    config: HubConfig,
    port: u16,
}

fn plan(hub_name: &str) -> Planned {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut config = common::config(dir.path());
    config.listen = format!("127.0.0.1:{port}").parse().unwrap();
    config.taxii.hub_name = hub_name.into();
    config.taxii.tlp = Tlp::Green;
    config.taxii.publish_interval_secs = 1;
    config.federation.allow_targets = vec!["127.0.0.1/32".parse().unwrap()];
    config.federation.push_interval_ms = 300;
    config.feeds.poll = false;
    Planned { dir, config, port }
}

/// An API key in `store`: (key id, secret).
fn key_for(store: &dyn Store, name: &str, max_tlp: Option<Tlp>) -> (String, String) {
    let req = ward_hub::api::ApiKeyRequest { name: name.into(), scopes: vec!["taxii-read".into(), "taxii-write".into()], max_tlp, jurisdiction_id: None, name_jurisdictions: false, client_cert: None };
    let (new, secret) = req.into_new("test");
    let key = common::db(store, |s| s.create_api_key(&new, now_ms())).unwrap();
    (key.key_id, secret)
}

fn peer_toml(dir: &std::path::Path, peer: &str, port: u16, secret: &str, key_id: &str) -> ward_hub::share::federation::PeerConfig {
    let file = dir.join(format!("{peer}.key"));
    std::fs::write(&file, secret).unwrap();
    toml::from_str(&format!("name = \"{peer}\"\nurl = \"http://127.0.0.1:{port}/taxii2/api/\"\napi_key_file = \"{}\"\nkey_id = \"{key_id}\"\nhub_name = \"{peer}\"", file.display())).unwrap()
}

async fn until<T>(what: &str, secs: u64, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {secs} s waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Node {
    hub: RunningHub,
    store: std::sync::Arc<dyn Store>,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Node {
    fn url(&self) -> String {
        self.hub.url()
    }

    async fn analyst(&self) -> String {
        common::db(self.store.as_ref(), |s| s.create_user("analyst", &ward_hub::auth::hash_password(common::PASSWORD).unwrap(), Role::Analyst, None, now_ms())).unwrap();
        let v: Value = self.http.post(format!("{}/api/v1/login", self.url())).json(&json!({"username": "analyst", "password": common::PASSWORD})).send().await.unwrap().json().await.unwrap();
        v["token"].as_str().unwrap().to_string()
    }

    async fn get(&self, path: &str, token: &str) -> Value {
        let r = self.http.get(format!("{}{path}", self.url())).bearer_auth(token).send().await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap()
    }

    /// Every object of a TAXII collection (latest versions) as a key reads it.
    async fn taxii(&self, collection: Collection, secret: &str) -> Vec<Value> {
        let r = self
            .http
            .get(format!("{}/taxii2/api/collections/{}/objects/", self.url(), collection.id()))
            .bearer_auth(secret)
            .header("accept", "application/taxii+json;version=2.1")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        v["objects"].as_array().cloned().unwrap_or_default()
    }
}

async fn start(p: Planned, store: std::sync::Arc<dyn Store>) -> Node {
    drop(store);
    let hub = ward_hub::start(p.config).await.unwrap();
    let store = hub.state.store.clone();
    assert_eq!(hub.addr.port(), p.port);
    Node { hub, store, http: reqwest::Client::new(), _dir: p.dir }
}

fn case_report(objects: &[Value]) -> Option<Value> {
    objects.iter().find(|o| o["type"] == "report" && o["name"] == CLAIM).cloned()
}

on_each_backend! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_case_is_published_over_taxii_and_reaches_a_peer_hub() {
        let (mut n, mut a) = (plan("national"), plan("state-a"));
        let (ns, as_) = (common::open_store(&n.config), common::open_store(&a.config));
        let (n_for_a, n_for_a_secret) = key_for(ns.as_ref(), "state-a hub", None);
        let (a_for_n, a_for_n_secret) = key_for(as_.as_ref(), "national hub", None);
        let (_, partner) = key_for(as_.as_ref(), "a platform's trust and safety team", Some(Tlp::Green));
        let (_, clear_only) = key_for(as_.as_ref(), "the public", Some(Tlp::Clear));
        n.config.federation.peers = vec![peer_toml(n.dir.path(), "state-a", a.port, &a_for_n_secret, &n_for_a)];
        a.config.federation.peers = vec![peer_toml(a.dir.path(), "national", n.port, &n_for_a_secret, &a_for_n)];
        let (n, a) = (start(n, ns).await, start(a, as_).await);

        let j = NewJurisdiction { name: "Alpha County".into(), kind: JurisdictionKind::County, state: Some("AA".into()), home_net: None };
        let alpha = common::db(a.store.as_ref(), |s| s.create_jurisdiction(&j, now_ms())).unwrap().id;
        let token = a.analyst().await;
        let shot = base64::engine::general_purpose::STANDARD.encode(ward_hub::disinfo::images::samples::png(64, 48, "GPS 33.4,-112.0"));
        let filed_at = Instant::now();
        let r = a
            .http
            .post(format!("{}/api/v1/disinfo/reports", a.url()))
            .bearer_auth(&token)
            .json(&json!({
                "jurisdiction_id": alpha,
                "urls": ["https://mobile.twitter.com/someone/status/1789000111?s=20&t=sharer", "https://x.com/other/status/1789000111", "https://example.org/news/polls?id=9&fbclid=abc"],
                "platform": "x", "category": "voting-logistics", "claim": CLAIM, "truth": TRUTH, "citation": CITATION,
                "seen_at": "2026-11-03T07:30:00-07:00", "disarm": ["T0049"], "screenshots": [shot],
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        let filed: Value = r.json().await.unwrap();
        let case_id = filed["case"]["id"].as_i64().unwrap();
        let shot_sha = filed["report"]["screenshots"][0]["sha256"].as_str().expect("the screenshot is stored").to_string();

        // A partner reads the case with TAXII GET from the community collection.
        let objects = until("the case in state A's community collection", 30, async || {
            let o = a.taxii(Collection::Community, &partner).await;
            case_report(&o).map(|_| o)
        })
        .await;
        eprintln!("disinfo stix: report filed → case readable over TAXII in {:?} (publish_interval_secs = 1)", filed_at.elapsed());
        let report = case_report(&objects).unwrap();
        assert_eq!(report["report_types"], json!(["threat-report"]));
        assert!(report["description"].as_str().unwrap().contains(TRUTH) && report["description"].as_str().unwrap().contains(CITATION), "{report}");
        let hub_identity = ward_hub::share::stix::IdSpace::for_hub("state-a").id("identity", "hub");
        assert_eq!(report["created_by_ref"], json!(hub_identity));
        assert_eq!(report["object_marking_refs"], json!([Tlp::Green.stix_id()]));
        let refs: Vec<&str> = report["object_refs"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        let referred = |t: &str| refs.iter().filter(|r| r.starts_with(&format!("{t}--"))).count();
        assert_eq!((referred("observed-data"), referred("url"), referred("attack-pattern")), (2, 2, 1), "two posts (one under two URL forms) and one technique: {report}");
        for r in &refs {
            assert!(objects.iter().any(|o| o["id"] == *r), "{r} is referred to but not in the collection");
        }
        let ap = objects.iter().find(|o| o["type"] == "attack-pattern").unwrap();
        assert_eq!(ap["external_references"], json!([{"source_name": "DISARM", "external_id": "T0049"}]));
        let text = serde_json::to_string(&objects).unwrap();
        for secret in ["Alpha County", "analyst", "sharer", "s=20", "fbclid", shot_sha.as_str()] {
            assert!(!text.contains(secret), "{secret:?} left the hub: {text}");
        }
        // OASIS's tools accept the case as a bundle (with the hub identity and the markings).
        let mut bundle_objects: Vec<Value> = objects.iter().filter(|o| o["type"] == "marking-definition" || o["id"] == hub_identity.as_str()).cloned().collect();
        bundle_objects.push(report.clone());
        bundle_objects.extend(objects.iter().filter(|o| o["id"].as_str().is_some_and(|id| refs.contains(&id))).cloned());
        common::oasis::check(&ward_hub::share::stix::bundle(bundle_objects));
        // A reader whose ceiling is below the hub's TLP does not see it.
        assert!(case_report(&a.taxii(Collection::Community, &clear_only).await).is_none(), "a TLP:CLEAR reader read a TLP:GREEN case");

        // A status change is a new version of the same report.
        let r = a.http.post(format!("{}/api/v1/disinfo/cases/{case_id}/status", a.url())).bearer_auth(&token).json(&json!({"status": "triaged"})).send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        let triaged = until("the triaged version", 30, async || {
            case_report(&a.taxii(Collection::Community, &partner).await).filter(|r| r["labels"].as_array().unwrap().contains(&json!("status-triaged")))
        })
        .await;
        assert_eq!(triaged["id"], report["id"]);
        assert!(triaged["modified"].as_str() > report["modified"].as_str(), "{triaged}");

        // The national hub receives every object of the case and shows it as from state A.
        let triaged_at = Instant::now();
        let analyst = n.analyst().await;
        let view = until("the case in the national hub's federation view", 60, async || {
            let v = n.get("/api/v1/federation", &analyst).await;
            v["cases"].as_array().unwrap().iter().any(|c| c["claim"] == CLAIM && c["labels"].as_array().unwrap().contains(&json!("status-triaged"))).then_some(v)
        })
        .await;
        eprintln!("disinfo stix: triaged version at hub A → in the national hub's federation view in {:?}", triaged_at.elapsed());
        let case = view["cases"].as_array().unwrap().iter().find(|c| c["claim"] == CLAIM).unwrap();
        assert_eq!(case["from"], "state-a", "{case}");
        assert_eq!(case["disarm"], json!(["T0049"]));
        assert_eq!(case["urls"].as_array().unwrap().len(), 2, "{case}");
        assert!(case["description"].as_str().unwrap().contains(CITATION));
        let national_inbox = bodies(&n, "inbox");
        for t in ["report", "observed-data", "url", "attack-pattern"] {
            assert!(national_inbox.iter().any(|o| o["type"] == t), "no {t} reached the national hub");
        }
        assert!(!serde_json::to_string(&national_inbox).unwrap().contains("Alpha County"));
    }
}

/// Every object in a stored collection (latest versions), read from the store.
fn bodies(n: &Node, collection: &str) -> Vec<Value> {
    use ward_hub::share::objects::{ObjectQuery, ReadScope, VersionFilter};
    let q = ObjectQuery {
        scope: ReadScope { collections: vec![collection.into()], own_only: None, jurisdiction: None, max_tlp: Tlp::AmberStrict, strict_any: true },
        after: (0, 0),
        ids: vec![],
        types: vec![],
        spec_versions: vec![],
        versions: VersionFilter::last(),
        limit: 10_000,
        with_body: true,
    };
    common::db(n.store.as_ref(), |s| s.taxii_objects(&q)).unwrap().into_iter().map(|o| serde_json::from_str(&o.body.unwrap()).unwrap()).collect()
}
