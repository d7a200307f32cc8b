//! Hub-to-hub federation (crates/ward-hub/src/share/federation.rs; docs/sharing.md
//! "Federation"): three real hubs on loopback — a national hub and two state hubs — pushing
//! TAXII 2.1 envelopes to each other. An actor scans two counties of state A: A warns them,
//! publishes, pushes anonymised objects to the national hub, which takes the indicator (A is a
//! trusted peer), shows it in its cross-hub view and relays it to state B, whose sensors then
//! hold the address before the actor reaches B. Withdrawal travels the same way. What a
//! partner that is not a trusted peer posts changes no sensor and is relayed nowhere. Both stores.

mod common;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use ward_hub::model::{now_ms, JurisdictionKind, NewJurisdiction, Role};
use ward_hub::server::RunningHub;
use ward_hub::store::Store;
use ward_hub::HubConfig;

use common::smtp::free_port;

const ACTOR: &str = "185.220.101.33";
const PARTNER_VALUE: &str = "198.18.7.7";
/// Batch sequence numbers for the idempotency keys (unique per test process).
static SEQ: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1);

/// One hub of the federation before it starts: its directory, config and the keys made in its
/// store for the peers that post to it.
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
    config.trust.publish_min_jurisdictions = 2;
    config.notify.allow_targets = vec!["127.0.0.1/32".parse().unwrap()];
    config.federation.allow_targets = vec!["127.0.0.1/32".parse().unwrap()];
    config.federation.push_interval_ms = 500;
    config.feeds.poll = false;
    Planned { dir, config, port }
}

/// Makes an API key in `on`'s store for a peer: (key id, secret).
fn key_for(store: &dyn Store, name: &str) -> (String, String) {
    let req = ward_hub::api::ApiKeyRequest { name: name.into(), scopes: vec!["taxii-read".into(), "taxii-write".into()], max_tlp: None, jurisdiction_id: None, name_jurisdictions: false, client_cert: None };
    let (new, secret) = req.into_new("test");
    let key = common::db(store, |s| s.create_api_key(&new, now_ms())).unwrap();
    (key.key_id, secret)
}

/// `[[federation.peer]]` of `peer` (listening on `port`) as seen by `me`: this hub posts with
/// `secret` (a key made on the peer), the peer posts here with `key_id`.
fn peer_toml(dir: &std::path::Path, peer: &str, port: u16, secret: &str, key_id: &str, accept: bool) -> ward_hub::share::federation::PeerConfig {
    let file = dir.join(format!("{peer}.key"));
    std::fs::write(&file, secret).unwrap();
    toml::from_str(&format!(
        "name = \"{peer}\"\nurl = \"http://127.0.0.1:{port}/taxii2/api/\"\napi_key_file = \"{}\"\nkey_id = \"{key_id}\"\nhub_name = \"{peer}\"\naccept_indicators = {accept}",
        file.display()
    ))
    .unwrap()
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

    fn jurisdiction(&self, name: &str, state: &str) -> i64 {
        let j = NewJurisdiction { name: name.into(), kind: JurisdictionKind::County, state: Some(state.into()), home_net: None };
        common::db(self.store.as_ref(), |s| s.create_jurisdiction(&j, now_ms())).unwrap().id
    }

    async fn sensor(&self, jurisdiction: i64) -> (i64, String) {
        let token = ward_hub::auth::random_token("wet");
        let now = now_ms();
        common::db(self.store.as_ref(), |s| s.create_enrollment_token(jurisdiction, &ward_hub::auth::hash_token(&token), now, now + 60_000)).unwrap();
        let v: Value = self.http.post(format!("{}/api/v1/sensors/enroll", self.url())).json(&json!({"token": token})).send().await.unwrap().json().await.unwrap();
        (v["sensor"]["id"].as_i64().unwrap(), v["credential"].as_str().unwrap().to_string())
    }

    async fn alert(&self, sensor: &(i64, String), actor: &str, local: &str) {
        let line = common::alert_line(actor, local, 2403300, "ET CINS Poor Reputation IP");
        let r = self.http.post(format!("{}/api/v1/events", self.url())).bearer_auth(&sensor.1).header("idempotency-key", format!("{}:{}", sensor.0, SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed))).body(line).send().await.unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }

    /// Whether `value` is live on the sensors' list (what a sensor's long-poll reads).
    async fn on_sensors(&self, sensor: &(i64, String), value: &str) -> bool {
        let v: Value = self.http.get(format!("{}/api/v1/indicators?since=0", self.url())).bearer_auth(&sensor.1).send().await.unwrap().json().await.unwrap();
        let mut live = false;
        for i in v["indicators"].as_array().unwrap() {
            if i["value"] == value {
                live = i["action"] == "add";
            }
        }
        live
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

    /// Every object body in a stored collection.
    fn bodies(&self, collection: &str) -> Vec<Value> {
        use ward_hub::share::objects::{ObjectQuery, ReadScope, VersionFilter};
        let q = ObjectQuery {
            scope: ReadScope { collections: vec![collection.into()], own_only: None, jurisdiction: None, max_tlp: ward_model::tlp::Tlp::AmberStrict, strict_any: true },
            after: (0, 0),
            ids: vec![],
            types: vec![],
            spec_versions: vec![],
            versions: VersionFilter { all: true, ..Default::default() },
            limit: 10_000,
            with_body: true,
        };
        common::db(self.store.as_ref(), |s| s.taxii_objects(&q)).unwrap().into_iter().map(|o| serde_json::from_str(&o.body.unwrap()).unwrap()).collect()
    }
}

async fn start(p: Planned, store: std::sync::Arc<dyn Store>) -> Node {
    drop(store);
    let hub = ward_hub::start(p.config).await.unwrap();
    let store = hub.state.store.clone();
    assert_eq!(hub.addr.port(), p.port);
    Node { hub, store, http: reqwest::Client::new(), _dir: p.dir }
}

on_each_backend! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn an_actor_seen_in_state_a_is_on_state_b_sensors_through_the_national_hub() {
        let (mut n, mut a, mut b) = (plan("national"), plan("state-a"), plan("state-b"));
        let (ns, as_, bs) = (common::open_store(&n.config), common::open_store(&a.config), common::open_store(&b.config));
        // Keys each hub makes for the peers that post to it.
        let (n_for_a, n_for_a_secret) = key_for(ns.as_ref(), "state-a hub");
        let (n_for_b, n_for_b_secret) = key_for(ns.as_ref(), "state-b hub");
        let (a_for_n, a_for_n_secret) = key_for(as_.as_ref(), "national hub");
        let (b_for_n, b_for_n_secret) = key_for(bs.as_ref(), "national hub");
        // A partner of the national hub that is not a peer: it may post, but is trusted with nothing.
        let (_, partner_secret) = key_for(ns.as_ref(), "some partner");
        n.config.federation.peers = vec![
            peer_toml(n.dir.path(), "state-a", a.port, &a_for_n_secret, &n_for_a, true),
            peer_toml(n.dir.path(), "state-b", b.port, &b_for_n_secret, &n_for_b, true),
        ];
        a.config.federation.peers = vec![peer_toml(a.dir.path(), "national", n.port, &n_for_a_secret, &a_for_n, true)];
        b.config.federation.peers = vec![peer_toml(b.dir.path(), "national", n.port, &n_for_b_secret, &b_for_n, true)];
        let (n, a, b) = (start(n, ns).await, start(a, as_).await, start(b, bs).await);

        let (alpha, beta) = (a.jurisdiction("Alpha County", "AA"), a.jurisdiction("Beta County", "AA"));
        let gamma = b.jurisdiction("Gamma County", "BB");
        let nat = n.jurisdiction("Delta County", "DD");
        let (s_alpha, s_beta, s_gamma, s_nat) = (a.sensor(alpha).await, a.sensor(beta).await, b.sensor(gamma).await, n.sensor(nat).await);
        assert!(!b.on_sensors(&s_gamma, ACTOR).await);

        // The actor scans two counties of state A.
        a.alert(&s_alpha, ACTOR, "10.1.0.5").await;
        a.alert(&s_beta, ACTOR, "10.2.0.9").await;
        let second_sighting = Instant::now();
        until("state A's sensors to hold the actor", 30, async || a.on_sensors(&s_alpha, ACTOR).await.then_some(())).await;
        until("state B's sensor to hold the actor", 60, async || b.on_sensors(&s_gamma, ACTOR).await.then_some(())).await;
        eprintln!("federation: second county's sighting at hub A → live on a sensor of state B in {:?}", second_sighting.elapsed());
        assert!(n.on_sensors(&s_nat, ACTOR).await, "the national hub's own sensors hold it too");

        // The national hub's cross-hub view: the actor, from state A, with A's sightings.
        let token = n.analyst().await;
        let view = until("the national view to list the actor with its sightings", 30, async || {
            let v = n.get("/api/v1/federation", &token).await;
            v["shared"].as_array().unwrap().iter().find(|s| s["value"] == ACTOR && s["sightings"].as_i64() >= Some(2)).map(|_| v.clone())
        })
        .await;
        let shared = view["shared"].as_array().unwrap().iter().find(|s| s["value"] == ACTOR).unwrap();
        assert_eq!(shared["peers"], json!(["state-a"]), "{view}");
        let peer = |name: &str| view["peers"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap().clone();
        assert!(peer("state-a")["received_total"].as_i64().unwrap() > 0, "{view}");
        assert!(peer("state-b")["sent_total"].as_i64().unwrap() > 0, "relayed to B: {view}");
        assert_eq!(peer("state-a")["last_error"], Value::Null, "{view}");
        // B has no account to read it with; a non-analyst never sees it.
        let r = n.http.get(format!("{}/api/v1/federation", n.url())).send().await.unwrap();
        assert_eq!(r.status(), 401);

        // What left state A was anonymised: no county's name reached the national hub or B.
        for (hub, name) in [(&n, "national"), (&b, "state-b")] {
            let text = serde_json::to_string(&hub.bodies("inbox")).unwrap();
            for county in ["Alpha County", "Beta County", "10.1.0.5", "10.2.0.9"] {
                assert!(!text.contains(county), "{name}'s inbox holds {county:?}");
            }
            assert!(text.contains(ACTOR), "{name}'s inbox holds the indicator");
        }
        // Loops: nothing state A created came back to it, and B got A's objects once each.
        let a_identity = ward_hub::share::stix::IdSpace::for_hub("state-a").id("identity", "hub");
        assert!(a.bodies("inbox").iter().all(|o| o["created_by_ref"] != a_identity.as_str() && o["id"] != a_identity.as_str()), "state A's own objects came back to it");
        let b_inbox = b.bodies("inbox");
        let mut ids: Vec<(String, String)> = b_inbox.iter().map(|o| (o["id"].as_str().unwrap().to_string(), o["modified"].as_str().or(o["created"].as_str()).unwrap_or("").to_string())).collect();
        let total = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), total, "a version reached B twice");

        // A partner that is not a trusted peer posts an indicator to the national inbox: kept
        // there for analysts, on no sensor, relayed to nobody.
        let partner_indicator = json!({"objects": [{
            "type": "indicator", "spec_version": "2.1", "id": "indicator--0b6f7d5e-7c1a-4b5e-9d33-2f7a6c1e9a01",
            "created": "2026-11-01T00:00:00.000Z", "modified": "2026-11-01T00:00:00.000Z",
            "pattern": format!("[ipv4-addr:value = '{PARTNER_VALUE}']"), "pattern_type": "stix", "valid_from": "2026-11-01T00:00:00Z",
            "object_marking_refs": [ward_model::tlp::Tlp::Green.stix_id()]
        }]});
        let inbox = ward_hub::share::accounts::Collection::Inbox.id();
        let r = n
            .http
            .post(format!("{}/taxii2/api/collections/{inbox}/objects/", n.url()))
            .bearer_auth(&partner_secret)
            .header("content-type", "application/taxii+json;version=2.1")
            .header("accept", "application/taxii+json;version=2.1")
            .body(partner_indicator.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(!n.on_sensors(&s_nat, PARTNER_VALUE).await, "one partner's post changed what the sensors block");
        assert!(!serde_json::to_string(&b.bodies("inbox")).unwrap().contains(PARTNER_VALUE), "a partner's post was relayed");

        // Withdrawal: state A closes the campaign; the revoked indicator travels the same way
        // and leaves B's sensors.
        let a_token = a.analyst().await;
        let campaigns = a.get("/api/v1/campaigns", &a_token).await;
        let id = campaigns.as_array().or(campaigns["campaigns"].as_array()).unwrap()[0]["id"].as_i64().unwrap();
        let r = a.http.post(format!("{}/api/v1/campaigns/{id}", a.url())).bearer_auth(&a_token).json(&json!({"close": true})).send().await.unwrap();
        assert!(r.status().is_success(), "close: {}", r.status());
        until("state B's sensor to drop the actor", 60, async || (!b.on_sensors(&s_gamma, ACTOR).await).then_some(())).await;
        assert!(!n.on_sensors(&s_nat, ACTOR).await);

        // A peer that is down: B stops; the national hub records the failure and keeps the cursor.
        let b_url = b.url();
        b.hub.shutdown().await;
        a.alert(&s_alpha, "185.220.101.34", "10.1.0.6").await;
        a.alert(&s_beta, "185.220.101.34", "10.2.0.10").await;
        until("the national hub to record that B is down", 60, async || {
            let v = n.get("/api/v1/federation", &token).await;
            let p = v["peers"].as_array().unwrap().iter().find(|p| p["name"] == "state-b").cloned().unwrap();
            (p["failures"].as_i64() > Some(0) && p["last_error"].is_string()).then_some(())
        })
        .await;
        drop(b_url);
    }
}

/// A hub refuses to start on a federation config it cannot use, and says why.
#[tokio::test]
async fn bad_peer_configs_stop_the_hub_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.federation.peers = vec![toml::from_str("name = \"x\"\nurl = \"http://127.0.0.1:1/taxii2/api/\"\napi_key_file = \"/nonexistent/key\"").unwrap()];
    let e = ward_hub::start(config).await.err().expect("refused").to_string();
    assert!(e.contains("api_key_file") && e.contains("\"x\""), "{e}");
}
