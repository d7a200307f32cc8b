//! Shared set-up for the integration tests: a hub state on the running test's store (SQLite
//! in a temporary directory, or a fresh PostgreSQL database under [`on_each_backend!`]; see
//! [`backends`]), and helpers that go through the real router (`oneshot`).
#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use ward_hub::model::{now_ms, JurisdictionKind, NewJurisdiction, Role};
use ward_hub::store::Store;
use ward_hub::{HubConfig, HubState};

pub const PASSWORD: &str = "correct horse battery staple";

pub struct Hub {
    pub dir: tempfile::TempDir,
    pub state: HubState,
    pub store: Arc<dyn Store>,
}

/// A hub configuration for the running test's backend: the data directory `dir`, and for
/// PostgreSQL a fresh database (`database`), kept until the test ends.
pub fn config(dir: &std::path::Path) -> HubConfig {
    let mut c = HubConfig { data_dir: dir.to_path_buf(), listen: "127.0.0.1:0".parse().unwrap(), ..Default::default() };
    c.database = backends::database_for_test();
    c.limits.sensor_batches_per_sec = 10_000.0;
    c.limits.user_requests_per_sec = 10_000.0;
    c
}

/// Opens the store a configuration names, off the async runtime's thread.
pub fn open_store(config: &HubConfig) -> Arc<dyn Store> {
    let database = config.store_database().unwrap();
    std::thread::scope(|s| s.spawn(|| database.open().unwrap()).join().unwrap())
}

/// Runs `f` with the store on a thread of its own: the PostgreSQL store's synchronous client
/// cannot run on an async runtime's thread, and tests call the store from async bodies.
pub fn db<S: ?Sized + Sync, T: Send>(store: &S, f: impl FnOnce(&S) -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(|| f(store)).join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
}

pub fn hub_with(f: impl FnOnce(&mut HubConfig)) -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    f(&mut c);
    let store = open_store(&c);
    let state = HubState::new(store.clone(), c).unwrap();
    Hub { dir, state, store }
}

pub fn hub() -> Hub {
    hub_with(|_| {})
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| panic!("not json: {}", self.text()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Hub {
    /// Runs `f` with this hub's store (see [`db`]).
    pub fn db<T: Send>(&self, f: impl FnOnce(&dyn Store) -> T + Send) -> T {
        let store = self.store.as_ref();
        db(store, f)
    }

    /// Whether this hub runs on PostgreSQL.
    pub fn on_postgres(&self) -> bool {
        self.state.config.database.is_some()
    }

    pub async fn send(&self, req: Request<Body>) -> Resp {
        let resp = ward_hub::app(self.state.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes().to_vec();
        Resp { status, headers, body }
    }

    pub async fn get(&self, path: &str, bearer: Option<&str>) -> Resp {
        let mut b = Request::get(path);
        if let Some(t) = bearer {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        self.send(b.body(Body::empty()).unwrap()).await
    }

    pub async fn post_json(&self, path: &str, bearer: Option<&str>, body: Value) -> Resp {
        let mut b = Request::post(path).header("content-type", "application/json");
        if let Some(t) = bearer {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        self.send(b.body(Body::from(body.to_string())).unwrap()).await
    }

    pub fn jurisdiction(&self, name: &str, state: &str) -> i64 {
        let kind = if name.contains("County") { JurisdictionKind::County } else { JurisdictionKind::State };
        self.db(|s| s.create_jurisdiction(&NewJurisdiction { name: name.into(), kind, state: Some(state.into()), home_net: None }, now_ms()))
            .unwrap()
            .id
    }

    pub fn user(&self, name: &str, role: Role, jurisdiction: Option<i64>) {
        let phc = ward_hub::auth::hash_password(PASSWORD).unwrap();
        self.db(|s| s.create_user(name, &phc, role, jurisdiction, now_ms())).unwrap();
    }

    /// Logs in through the API and returns the bearer token.
    pub async fn login(&self, name: &str) -> String {
        let r = self.post_json("/api/v1/login", None, json!({"username": name, "password": PASSWORD})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.json()["token"].as_str().unwrap().to_string()
    }

    /// Issues a token through the store and enrolls a sensor through the API.
    pub async fn sensor(&self, jurisdiction: i64) -> (i64, String) {
        let token = ward_hub::auth::random_token("wet");
        let now = now_ms();
        self.db(|s| s.create_enrollment_token(jurisdiction, &ward_hub::auth::hash_token(&token), now, now + 60_000)).unwrap();
        let r = self.post_json("/api/v1/sensors/enroll", None, json!({"token": token, "name": "s1"})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let v = r.json();
        (v["sensor"]["id"].as_i64().unwrap(), v["credential"].as_str().unwrap().to_string())
    }

    pub async fn post_events(&self, sensor: (i64, &str), seq: i64, body: impl Into<Body>, gzip: bool) -> Resp {
        let mut b = Request::post("/api/v1/events")
            .header("authorization", format!("Bearer {}", sensor.1))
            .header("idempotency-key", format!("{}:{seq}", sensor.0))
            .header("content-type", "application/x-ndjson");
        if gzip {
            b = b.header("content-encoding", "gzip");
        }
        self.send(b.body(body.into()).unwrap()).await
    }
}

/// An EVE alert line as Suricata writes it.
pub fn alert_line(src: &str, dst: &str, sid: u32, msg: &str) -> String {
    json!({
        "timestamp": "2026-11-22T01:02:03.456789+0000",
        "flow_id": 1234567,
        "event_type": "alert",
        "src_ip": src, "src_port": 51515, "dest_ip": dst, "dest_port": 443, "proto": "TCP",
        "alert": {"action": "allowed", "gid": 1, "signature_id": sid, "rev": 1, "signature": msg, "category": "Attempted Information Leak", "severity": 2}
    })
    .to_string()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}
pub mod backends;
pub mod hubproc;
pub mod oasis;
pub mod smtp;
pub mod webhooks;

/// Mutation fuzzing inside the ordinary test run (the cargo-fuzz targets in `fuzz/` run the same
/// entry points for longer): `rounds` inputs, each a random seed with one to four edits — a cut,
/// a piece of `alphabet` spliced in, a random byte — at or after `keep` (the bytes before it stay,
/// e.g. a parser selector), each handed to `check`. Deterministic for one `rng_seed`.
pub fn mutate_each(seeds: &[Vec<u8>], alphabet: &[&[u8]], rng_seed: u64, keep: usize, rounds: usize, mut check: impl FnMut(&[u8])) {
    use rand::{Rng, SeedableRng};
    assert!(!seeds.is_empty() && !alphabet.is_empty());
    let mut rng = rand::rngs::StdRng::seed_from_u64(rng_seed);
    for _ in 0..rounds {
        let mut data = seeds[rng.gen_range(0..seeds.len())].clone();
        for _ in 0..rng.gen_range(1..5) {
            let at = rng.gen_range(keep.min(data.len())..=data.len());
            match rng.gen_range(0..3) {
                0 if data.len() > keep => {
                    let end = (at + rng.gen_range(1..8)).min(data.len());
                    data.drain(at.min(end)..end);
                }
                1 => {
                    let piece = alphabet[rng.gen_range(0..alphabet.len())];
                    data.splice(at..at, piece.iter().copied());
                }
                _ => {
                    if at < data.len() {
                        data[at] = rng.gen();
                    }
                }
            }
        }
        check(&data);
    }
}
