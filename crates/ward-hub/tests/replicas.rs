//! Several hub replicas on one PostgreSQL database behave as one hub (issue #11, "Replicas that
//! agree"; docs/hub.md "Replicas"). Each replica is a real process (see `common::hubproc`):
//! its own store pool, change listener, workers and HTTP port; the tests talk to them over
//! loopback HTTP and kill them with SIGKILL.
//!
//! PostgreSQL on 127.0.0.1:5432 is required when `CI` is set (see `common::backends`); without
//! it (and without `CI`) the PostgreSQL tests are skipped with a note.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use ward_hub::model::{now_ms, Channel, JurisdictionKind, NewContact, NewJurisdiction, NotificationRecord, Role};
use ward_hub::store::postgres::PgStore;
use ward_hub::store::{NotificationFilter, Store};

use common::backends::PgDatabase;
use common::hubproc::{serve_replica_from_env, HubProc};

const PASSWORD: &str = "correct horse battery staple";
/// The entry point of replica processes (below).
const ENTRY: &str = "replica_process";

/// Not a test: the body of a replica process started by `HubProc::spawn` (does nothing when run
/// by hand).
#[test]
#[ignore = "entry point of replica processes started by the tests in this file"]
fn replica_process() {
    serve_replica_from_env();
}

/// Replica configuration: generous request limits (the tests send bursts from one address),
/// the feed's bar at two jurisdictions, and webhooks to loopback allowed.
fn replica_config(extra: &str) -> String {
    format!(
        "[limits]\nsensor_batches_per_sec = 10000.0\nuser_requests_per_sec = 10000.0\n\
         [trust]\npublish_min_jurisdictions = 2\n\
         [notify]\nallow_targets = [\"127.0.0.1/32\"]\n{extra}"
    )
}

/// The fresh database of one test and a store on it for set-up and checks (the test's own
/// pool, as a third party would see the data).
struct Cluster {
    /// Dropped before the database (fields drop in order).
    store: Arc<PgStore>,
    db: PgDatabase,
}

impl Cluster {
    /// `None` when PostgreSQL is not there (a panic in CI).
    async fn new() -> Option<Cluster> {
        let db = PgDatabase::create()?;
        let url = db.url();
        let store = tokio::task::spawn_blocking(move || PgStore::connect_with(&url, 4).unwrap()).await.unwrap();
        Some(Cluster { store: Arc::new(store), db })
    }

    /// Runs `f` on the test's store off the async threads (the synchronous client must not run
    /// on them).
    async fn with<T: Send + 'static>(&self, f: impl FnOnce(&PgStore) -> T + Send + 'static) -> T {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store)).await.unwrap()
    }

    /// Whether a live holder other than `test-probe` holds job `name`'s lease now: read from the
    /// lease row, so looking never takes the lease from a replica that is about to claim it.
    async fn held(&self, name: &'static str) -> bool {
        let url = self.db.url();
        tokio::task::spawn_blocking(move || {
            let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            let row = client
                .query_opt("SELECT 1 FROM job_leases WHERE name = $1 AND holder <> 'test-probe' AND expires_ms > $2", &[&name, &now_ms()])
                .unwrap();
            row.is_some()
        })
        .await
        .unwrap()
    }

    fn replica(&self, config: &str) -> HubProc {
        HubProc::spawn(ENTRY, &self.db.url(), config)
    }

    /// Replicas started in parallel (each takes a moment to start).
    async fn replicas(&self, n: usize, config: &str) -> Vec<HubProc> {
        let mut started = Vec::new();
        for _ in 0..n {
            let (url, config) = (self.db.url(), config.to_string());
            started.push(tokio::task::spawn_blocking(move || HubProc::spawn(ENTRY, &url, &config)));
        }
        let mut out = Vec::new();
        for s in started {
            out.push(s.await.unwrap());
        }
        out
    }

    async fn jurisdiction(&self, name: &str) -> i64 {
        let name = name.to_string();
        self.with(move |s| {
            s.create_jurisdiction(&NewJurisdiction { name, kind: JurisdictionKind::County, state: Some("OH".into()), home_net: None }, now_ms()).unwrap().id
        })
        .await
    }

    /// A sensor of `jurisdiction` and its bearer credential.
    async fn sensor(&self, jurisdiction: i64) -> (i64, String) {
        let credential = ward_hub::auth::random_token("wsc");
        let token = ward_hub::auth::random_token("wet");
        let (cred_hash, token_hash) = (ward_hub::auth::hash_token(&credential), ward_hub::auth::hash_token(&token));
        let id = self
            .with(move |s| {
                let now = now_ms();
                s.create_enrollment_token(jurisdiction, &token_hash, now, now + 60_000).unwrap();
                s.enroll_sensor(&token_hash, "replica-test", &cred_hash, now).unwrap().id
            })
            .await;
        (id, credential)
    }

    async fn user(&self, name: &str, role: Role, jurisdiction: Option<i64>) {
        let name = name.to_string();
        self.with(move |s| {
            let phc = ward_hub::auth::hash_password(PASSWORD).unwrap();
            s.create_user(&name, &phc, role, jurisdiction, now_ms()).unwrap();
        })
        .await
    }

    async fn webhook_contact(&self, jurisdiction: i64, url: String) -> i64 {
        self.with(move |s| {
            s.create_contact(jurisdiction, &NewContact { channel: Channel::Webhook, target: url, secret: Some("a-webhook-secret-of-some-length".into()) }, now_ms())
                .unwrap()
                .id
        })
        .await
    }
}

fn client() -> reqwest::Client {
    ward_hub::server::install_crypto_provider();
    reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap()
}

/// An EVE alert from `src` to `dst` (one of them public: the actor).
fn alert(src: &str, dst: &str) -> String {
    json!({
        "timestamp": "2026-11-22T01:02:03.456789+0000",
        "event_type": "alert",
        "src_ip": src, "src_port": 51515, "dest_ip": dst, "dest_port": 443, "proto": "TCP",
        "alert": {"action": "allowed", "gid": 1, "signature_id": 2010935, "rev": 1, "signature": "ET SCAN Suspicious inbound to MSSQL", "category": "Attempted Information Leak", "severity": 2}
    })
    .to_string()
}

/// Posts one batch; returns (status, body).
async fn post_events(http: &reqwest::Client, base: &str, sensor: &(i64, String), seq: i64, body: String) -> (u16, Value) {
    let r = http
        .post(format!("{base}/api/v1/events"))
        .bearer_auth(&sensor.1)
        .header("idempotency-key", format!("{}:{seq}", sensor.0))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn login(http: &reqwest::Client, base: &str, name: &str, password: &str) -> (u16, Value) {
    let r = http.post(format!("{base}/api/v1/login")).json(&json!({"username": name, "password": password})).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// A sensor long-polling replica B gets an indicator published through replica A about as fast
/// as one long-polling A: B's change listener hears A's commit (NOTIFY), not its own once-a-
/// second re-check.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn long_poll_on_one_replica_wakes_when_another_publishes() {
    let Some(c) = Cluster::new().await else { return };
    let j1 = c.jurisdiction("Adams County").await;
    let j2 = c.jurisdiction("Brown County").await;
    let (s1, s2) = (c.sensor(j1).await, c.sensor(j2).await);
    let reader = c.sensor(j2).await;
    let hubs = c.replicas(2, &replica_config("")).await;
    let (a, b) = (hubs[0].url.clone(), hubs[1].url.clone());
    let http = client();
    let mut cursor = 0i64;
    let (mut on_b, mut on_a) = (Vec::new(), Vec::new());
    const TRIALS: i64 = 15;
    for trial in 0..TRIALS {
        let actor = format!("45.77.{trial}.9");
        // The first jurisdiction alone opens nothing.
        let (status, _) = post_events(&http, &a, &s1, 2 * trial + 1, alert(&actor, "10.0.0.5")).await;
        assert_eq!(status, 200);
        let poll = |base: String| {
            let (http, cred) = (http.clone(), reader.1.clone());
            tokio::spawn(async move {
                let r = http.get(format!("{base}/api/v1/indicators?since={cursor}&wait=20")).bearer_auth(cred).send().await.unwrap();
                assert_eq!(r.status().as_u16(), 200);
                let v: Value = r.json().await.unwrap();
                (Instant::now(), v)
            })
        };
        let (poll_b, poll_a) = (poll(b.clone()), poll(a.clone()));
        // Both polls are waiting (they re-check once a second on their own; 300 ms is inside it).
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (status, _) = post_events(&http, &a, &s2, 2 * trial + 2, alert("10.0.0.6", &actor)).await;
        let acked = Instant::now();
        assert_eq!(status, 200);
        let (at_b, vb) = poll_b.await.unwrap();
        let (at_a, va) = poll_a.await.unwrap();
        for v in [&vb, &va] {
            let values: Vec<&str> = v["indicators"].as_array().unwrap().iter().map(|i| i["value"].as_str().unwrap()).collect();
            assert!(values.contains(&actor.as_str()), "trial {trial}: the new indicator {actor} is delivered: {v}");
        }
        cursor = vb["cursor"].as_i64().unwrap();
        assert_eq!(cursor, va["cursor"].as_i64().unwrap(), "both replicas serve the same log");
        let ms = |t: Instant| if t > acked { (t - acked).as_secs_f64() * 1000.0 } else { -((acked - t).as_secs_f64() * 1000.0) };
        on_b.push(ms(at_b));
        on_a.push(ms(at_a));
    }
    let (max_b, max_a) = (on_b.iter().cloned().fold(f64::MIN, f64::max), on_a.iter().cloned().fold(f64::MIN, f64::max));
    let (mb, ma) = (median(&mut on_b), median(&mut on_a));
    println!(
        "indicator long-poll wake after the publishing ack ({TRIALS} trials; negative: the poll answered before the ack reached the client): \
         other replica p50 {mb:.1} ms max {max_b:.1} ms; same replica p50 {ma:.1} ms max {max_a:.1} ms"
    );
    // Without the listener the other replica answers at its next once-a-second re-check:
    // uniformly 0–1000 ms after the commit, a median near 500 ms.
    assert!(mb < 250.0, "the other replica's long-poll wakes on the change notice (p50 {mb:.1} ms)");
    assert!(max_b < 1000.0, "no wake waits for the fallback re-check (max {max_b:.1} ms)");
}

/// Failed logins count across replicas (the per-account backoff starts after five failures in
/// total, wherever they were sent), failed enrollments spend one budget, and a session opened
/// on one replica works (and ends) on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_throttle_enrollment_budget_and_sessions_are_shared() {
    let Some(c) = Cluster::new().await else { return };
    c.user("ana", Role::Analyst, None).await;
    c.user("bob", Role::Analyst, None).await;
    let hubs = c.replicas(2, &replica_config("")).await;
    let urls = [hubs[0].url.clone(), hubs[1].url.clone()];
    let http = client();

    // A session opened on A works on B, and a logout on B ends it on A.
    let (status, v) = login(&http, &urls[0], "bob", PASSWORD).await;
    assert_eq!(status, 200, "{v}");
    let token = v["token"].as_str().unwrap().to_string();
    let me = http.get(format!("{}/api/v1/me", urls[1])).bearer_auth(&token).send().await.unwrap();
    assert_eq!(me.status().as_u16(), 200);
    assert_eq!(me.json::<Value>().await.unwrap()["user"]["username"], "bob");
    let out = http.post(format!("{}/api/v1/logout", urls[1])).bearer_auth(&token).send().await.unwrap();
    assert!(out.status().is_success(), "logout: {}", out.status());
    let me = http.get(format!("{}/api/v1/me", urls[0])).bearer_auth(&token).send().await.unwrap();
    assert_eq!(me.status().as_u16(), 401, "the session ended everywhere");

    // Wrong passwords for ana, alternating replicas, until one is throttled. The backoff starts
    // after five failures in total (one more may slip through if a slow password check outlasts
    // the first one-second backoff); a limit per replica would allow five on each, ten in all.
    let free = ward_hub::auth::LOGIN_FREE_FAILURES_PER_ACCOUNT as usize;
    let mut wrong = 0;
    let throttled_on = loop {
        let url = &urls[wrong % 2];
        let (status, v) = login(&http, url, "ana", "not the password at all").await;
        match status {
            403 => wrong += 1,
            429 => break wrong % 2,
            other => panic!("unexpected {other}: {v}"),
        }
        assert!(wrong <= free + 1, "still not throttled after {wrong} failures spread over two replicas");
    };
    assert!(wrong >= free, "the first {free} failures are free ({wrong})");
    println!("login throttle: throttled after {wrong} failures spread over 2 replicas (free: {free})");
    // The other replica refuses too, even the right password, right away.
    let r = http.post(format!("{}/api/v1/login", urls[1 - throttled_on])).json(&json!({"username": "ana", "password": PASSWORD})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 429, "throttled on the other replica as well");
    assert!(r.headers().contains_key("retry-after"));

    // Failed enrollments: one budget of LOGIN_BURST for the whole hub (refilling one per five
    // seconds, so allow one more for a slow run); per replica it would be twice that.
    let burst = ward_hub::auth::LOGIN_BURST as usize;
    let mut failed = 0;
    let refused_on = loop {
        let url = &urls[failed % 2];
        let r = http.post(format!("{url}/api/v1/sensors/enroll")).json(&json!({"token": format!("wet_bogus{failed}")})).send().await.unwrap();
        match r.status().as_u16() {
            403 => failed += 1,
            429 => break failed % 2,
            other => panic!("unexpected {other} for a bad enrollment"),
        }
        assert!(failed <= burst + 1, "the enrollment budget is not spent after {failed} failures over two replicas");
    };
    assert!(failed >= burst, "the budget allows {burst} failures ({failed})");
    let r = http.post(format!("{}/api/v1/sensors/enroll", urls[1 - refused_on])).json(&json!({"token": "wet_bogus_more"})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 429, "the shared enrollment budget is spent on the other replica too");
}

/// A job lease has one holder at a time, across stores (replicas) racing for it; it passes to
/// another holder only after it expires or is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn job_lease_is_taken_once_across_replicas() {
    let Some(c) = Cluster::new().await else { return };
    let url = c.db.url();
    let stores: Vec<Arc<PgStore>> = tokio::task::spawn_blocking(move || (0..3).map(|_| Arc::new(PgStore::connect_with(&url, 4).unwrap())).collect())
        .await
        .unwrap();
    for round in 0..20 {
        let name = format!("race-{round}");
        let now = now_ms();
        let barrier = Arc::new(std::sync::Barrier::new(12));
        let mut racers = Vec::new();
        for i in 0..12 {
            let (store, name, barrier) = (stores[i % 3].clone(), name.clone(), barrier.clone());
            racers.push(std::thread::spawn(move || {
                barrier.wait();
                store.claim_job(&name, &format!("holder-{i}"), now, 60_000).unwrap()
            }));
        }
        let winners: Vec<usize> = racers.into_iter().map(|t| t.join().unwrap()).enumerate().filter(|(_, won)| *won).map(|(i, _)| i).collect();
        assert_eq!(winners.len(), 1, "round {round}: exactly one holder, got {winners:?}");
    }
    let s = stores[0].clone();
    tokio::task::spawn_blocking(move || lease_rules(s.as_ref())).await.unwrap();

    // Real replicas: while three run, each background job is held by one of them.
    let hubs = c.replicas(3, &replica_config("")).await;
    let probe = |job: &'static str| c.with(move |s| s.claim_job(job, "test-probe", now_ms(), 1).unwrap());
    // The jobs start with the replicas; give the first claims a moment. Looking reads the lease
    // rows: a probing claim could take the lease at the instant a replica tries (retention
    // tries once a minute).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (retention, retro) = (c.held("retention").await, c.held("retro-hunt").await);
        if retention && retro {
            break;
        }
        assert!(Instant::now() < deadline, "a replica holds each job within 20 s (retention held: {retention}, retro-hunt held: {retro})");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Killed holders leave the retro-hunt lease to expire (30 s), after which it is free.
    drop(hubs);
    let killed = Instant::now();
    assert!(!probe("retro-hunt").await, "a killed holder's lease is not free before it expires");
    let lease = Duration::from_millis(ward_hub::state::RETRO_HUNT_LEASE_MS as u64);
    tokio::time::sleep(lease.saturating_sub(killed.elapsed()) + Duration::from_millis(500)).await;
    assert!(probe("retro-hunt").await, "free once the lease expired");
}

/// Renewal, expiry and release of one job lease.
fn lease_rules(s: &dyn Store) {
    let now = now_ms();
    assert!(s.claim_job("retention-test", "a", now, 1_000).unwrap());
    assert!(s.claim_job("retention-test", "a", now + 500, 1_000).unwrap(), "the holder renews");
    assert!(!s.claim_job("retention-test", "b", now + 1_400, 1_000).unwrap(), "renewed until now + 1500");
    assert!(s.claim_job("retention-test", "b", now + 1_500, 1_000).unwrap(), "expired: another holder takes it");
    assert!(!s.claim_job("retention-test", "a", now + 1_600, 1_000).unwrap());
    s.release_job("retention-test", "a").unwrap();
    assert!(!s.claim_job("retention-test", "a", now + 1_600, 1_000).unwrap(), "only the holder's own release counts");
    s.release_job("retention-test", "b").unwrap();
    assert!(s.claim_job("retention-test", "a", now + 1_600, 1_000).unwrap(), "released: taken at once");
    assert!(s.claim_job("other-job", "b", now + 1_600, 1_000).unwrap(), "leases are per job");
}

/// The embedded store keeps the same lease rules (one process, but the same background code).
#[test]
fn job_lease_rules_on_sqlite() {
    let s = common::backends::sqlite();
    lease_rules(s.store.as_ref());
    assert!(!s.store.shares_limits(), "the embedded store keeps limits in process memory");
}

/// A replica stopped cleanly (Ctrl-C in `ward hub serve`, `RunningHub::shutdown`) gives its job
/// leases up at once instead of leaving them to expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_replica_releases_its_job_leases() {
    let Some(c) = Cluster::new().await else { return };
    let config: ward_hub::HubConfig =
        toml::from_str(&format!("database = \"{}\"\nlisten = \"127.0.0.1:0\"\n{}", c.db.url(), replica_config(""))).unwrap();
    let hub = ward_hub::start(config).await.unwrap();
    let probe = |job: &'static str| c.with(move |s| s.claim_job(job, "test-probe", now_ms(), 1).unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(c.held("retention").await && c.held("retro-hunt").await) {
        assert!(Instant::now() < deadline, "the replica takes both jobs");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    hub.shutdown().await;
    assert!(probe("retention").await, "retention released at shutdown");
    assert!(probe("retro-hunt").await, "retro-hunt released at shutdown");
}

/// Limit records updated from several stores (replicas) at once are updated one after the
/// other: no increment is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_limit_updates_from_many_replicas_are_serialised() {
    let Some(c) = Cluster::new().await else { return };
    let url = c.db.url();
    let total = tokio::task::spawn_blocking(move || {
        let stores: Vec<Arc<PgStore>> = (0..3).map(|_| Arc::new(PgStore::connect_with(&url, 4).unwrap())).collect();
        assert!(stores[0].shares_limits());
        let keys = vec!["test source".to_string(), "test account".to_string()];
        let threads: Vec<_> = (0..9)
            .map(|i| {
                let (store, keys) = (stores[i % 3].clone(), keys.clone());
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        let now = now_ms();
                        store
                            .update_limits(&keys, now, &mut |records: &mut [Option<ward_hub::store::LimitRecord>]| {
                                for r in records.iter_mut() {
                                    let value = r.map_or(0.0, |r| r.value) + 1.0;
                                    *r = Some(ward_hub::store::LimitRecord { value, at_ms: now, expires_ms: now + 60_000 });
                                }
                                true
                            })
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let mut seen = Vec::new();
        stores[1]
            .update_limits(&keys, now_ms(), &mut |records: &mut [Option<ward_hub::store::LimitRecord>]| {
                seen = records.iter().map(|r| r.map(|r| r.value)).collect();
                false
            })
            .unwrap();
        // Expired records read as absent and are pruned.
        let later = now_ms() + 120_000;
        stores[2]
            .update_limits(&keys, later, &mut |records: &mut [Option<ward_hub::store::LimitRecord>]| {
                assert!(records.iter().all(Option::is_none), "expired records read as none");
                false
            })
            .unwrap();
        assert_eq!(stores[2].prune_limits(later).unwrap(), 2);
        seen
    })
    .await
    .unwrap();
    assert_eq!(total, vec![Some(180.0), Some(180.0)], "9 threads on 3 stores × 20 increments");
}

/// A replica whose listening connection is killed reconnects and hears other replicas again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn change_listener_reconnects_after_its_connection_is_killed() {
    let Some(c) = Cluster::new().await else { return };
    let j1 = c.jurisdiction("Ashland County").await;
    let j2 = c.jurisdiction("Butler County").await;
    let (s1, s2, reader) = (c.sensor(j1).await, c.sensor(j2).await, c.sensor(j1).await);
    let hubs = c.replicas(2, &replica_config("")).await;
    let (a, b) = (hubs[0].url.clone(), hubs[1].url.clone());
    // Kill every listening connection of this database (as a database restart or a network cut
    // would), then wait until both replicas listen again.
    let name = c.db.name.clone();
    let listeners = move |kill: bool| {
        let name = name.clone();
        tokio::task::spawn_blocking(move || {
            let mut admin = postgres::Client::connect(&format!("{}/test", common::backends::PG_SERVER), postgres::NoTls).unwrap();
            let sql = if kill {
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'ward-hub listener'"
            } else {
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'ward-hub listener'"
            };
            admin.query_one(sql, &[&name]).unwrap().get::<_, i64>(0)
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while listeners(false).await.unwrap() < 2 {
        assert!(Instant::now() < deadline, "both replicas listen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(listeners(true).await.unwrap(), 2, "both listening connections killed");
    let deadline = Instant::now() + Duration::from_secs(10);
    while listeners(false).await.unwrap() < 2 {
        assert!(Instant::now() < deadline, "both replicas listen again within the first backoffs");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let http = client();
    let actor = "45.99.1.9";
    assert_eq!(post_events(&http, &a, &s1, 1, alert(actor, "10.0.0.5")).await.0, 200);
    let poll = {
        let (http, cred) = (http.clone(), reader.1.clone());
        tokio::spawn(async move {
            let r = http.get(format!("{b}/api/v1/indicators?since=0&wait=20")).bearer_auth(cred).send().await.unwrap();
            let v: Value = r.json().await.unwrap();
            (Instant::now(), v)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(post_events(&http, &a, &s2, 1, alert("10.0.0.6", actor)).await.0, 200);
    let acked = Instant::now();
    let (at, v) = poll.await.unwrap();
    assert!(v["indicators"].as_array().unwrap().iter().any(|i| i["value"] == actor), "{v}");
    let late = at.saturating_duration_since(acked);
    println!("after a reconnect the other replica's long-poll woke {:.1} ms after the ack", late.as_secs_f64() * 1000.0);
    assert!(late < Duration::from_millis(250), "woken by the change notice, not the once-a-second re-check ({late:?})");
}

/// A batch retried against another replica with the same idempotency key is stored once, also
/// when both copies arrive at the same moment.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idempotent_retry_across_replicas_is_stored_once() {
    let Some(c) = Cluster::new().await else { return };
    let j = c.jurisdiction("Clark County").await;
    let s = c.sensor(j).await;
    let hubs = c.replicas(2, &replica_config("")).await;
    let (a, b) = (hubs[0].url.clone(), hubs[1].url.clone());
    let http = client();
    let batch = |seq: i64| (0..5).map(|i| alert(&format!("10.1.{seq}.{i}"), "10.2.0.1")).collect::<Vec<_>>().join("\n");
    // A retry after the reply was lost: the second replica answers from the stored receipt.
    let (status, first) = post_events(&http, &a, &s, 1, batch(1)).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["duplicate"], false);
    let (status, again) = post_events(&http, &b, &s, 1, batch(1)).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["duplicate"], true, "{again}");
    assert_eq!(again["accepted"], first["accepted"]);
    // The same batch to both replicas at once, 20 times.
    for seq in 2..22 {
        let (ra, rb) = tokio::join!(post_events(&http, &a, &s, seq, batch(seq)), post_events(&http, &b, &s, seq, batch(seq)));
        assert_eq!((ra.0, rb.0), (200, 200), "{ra:?} {rb:?}");
        let dups = [&ra.1, &rb.1].iter().filter(|v| v["duplicate"] == true).count();
        assert_eq!(dups, 1, "seq {seq}: one copy stored, the other answered as a duplicate: {ra:?} {rb:?}");
    }
    let stored = c.with(move |st| st.events(Some(j), None, 10_000).unwrap().len()).await;
    assert_eq!(stored, 21 * 5, "every batch stored exactly once");
}

/// Sightings completing a campaign, sprayed over three replicas at the same moment: exactly one
/// campaign per actor and one notification per contact per campaign event, 50 times over.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn correlation_race_across_replicas_opens_one_campaign() {
    let Some(c) = Cluster::new().await else { return };
    let mut sensors = Vec::new();
    let mut contacts = HashMap::new();
    for name in ["Delaware County", "Erie County", "Fayette County"] {
        let j = c.jurisdiction(name).await;
        // Contacts on a port nothing listens on: delivery fails and retries, enqueueing is what
        // counts here.
        contacts.insert(c.webhook_contact(j, "http://127.0.0.1:9/hook".into()).await, j);
        sensors.push(c.sensor(j).await);
    }
    let hubs = c.replicas(3, &replica_config("")).await;
    let urls: Vec<String> = hubs.iter().map(|h| h.url.clone()).collect();
    let http = client();
    const TRIALS: usize = 50;
    for trial in 0..TRIALS {
        let actor = format!("45.{}.{}.7", 100 + trial / 200, trial % 200);
        let barrier = Arc::new(tokio::sync::Barrier::new(sensors.len()));
        let mut posts = Vec::new();
        for (i, s) in sensors.iter().enumerate() {
            // Each sensor talks to another replica, rotating per trial.
            let (http, url, s, actor, barrier) = (http.clone(), urls[(i + trial) % urls.len()].clone(), s.clone(), actor.clone(), barrier.clone());
            posts.push(tokio::spawn(async move {
                barrier.wait().await;
                post_events(&http, &url, &s, trial as i64 + 1, alert(&actor, &format!("10.3.{i}.1"))).await
            }));
        }
        for p in posts {
            let (status, v) = p.await.unwrap();
            assert_eq!(status, 200, "{v}");
        }
        let key = actor.clone();
        let (campaigns, notes) = c
            .with(move |s| {
                let found: Vec<_> = s.campaigns(false).unwrap().into_iter().filter(|c| c.keys.iter().any(|k| k == &key || k.ends_with(&format!(":{key}")))).collect();
                let notes: Vec<NotificationRecord> = found
                    .iter()
                    .flat_map(|c| s.notifications(&NotificationFilter { campaign_id: Some(c.id), limit: 1000, ..Default::default() }).unwrap())
                    .collect();
                (found, notes)
            })
            .await;
        assert_eq!(campaigns.len(), 1, "trial {trial}: one campaign for {actor}: {campaigns:?}");
        assert_eq!(campaigns[0].jurisdictions, 3, "trial {trial}");
        let mut targeted = HashSet::new();
        let mut per_kind: HashMap<(i64, String), usize> = HashMap::new();
        for n in &notes {
            *per_kind.entry((n.contact_id, n.event_kind.clone())).or_default() += 1;
            if n.event_kind == "targeted" {
                assert!(targeted.insert(n.contact_id), "trial {trial}: contact {} warned twice that it was targeted", n.contact_id);
            }
        }
        assert_eq!(targeted.len(), contacts.len(), "trial {trial}: every contact warned once: {notes:?}");
        for ((contact, kind), n) in per_kind {
            assert_eq!(n, 1, "trial {trial}: contact {contact} got {n} '{kind}' notifications");
        }
    }
    println!("correlation race: {TRIALS} trials, 3 sightings each sprayed over 3 replicas: one campaign and one notification per contact per event every time");
}

/// The webhook receiver of the outbox test: the first request is held open forever (the
/// replica delivering it is killed meanwhile); later ones are answered 204. Records arrivals.
#[derive(Clone, Default)]
struct SlowReceiver {
    arrivals: Arc<Mutex<Vec<Instant>>>,
}

async fn slow_hook(axum::extract::State(r): axum::extract::State<SlowReceiver>) -> axum::http::StatusCode {
    let first = {
        let mut a = r.arrivals.lock().unwrap();
        a.push(Instant::now());
        a.len() == 1
    };
    if first {
        std::future::pending::<()>().await;
    }
    axum::http::StatusCode::NO_CONTENT
}

/// A replica killed while delivering leaves its leased notification; another replica delivers
/// it once the lease has expired — not before, and exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outbox_lease_of_a_killed_replica_is_taken_over_after_expiry() {
    let Some(c) = Cluster::new().await else { return };
    let receiver = SlowReceiver::default();
    let app = axum::Router::new().route("/hook", axum::routing::post(slow_hook)).with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let j1 = c.jurisdiction("Geauga County").await;
    let j2 = c.jurisdiction("Hamilton County").await;
    let contact = c.webhook_contact(j1, format!("http://{hook}/hook")).await;
    let (s1, s2) = (c.sensor(j1).await, c.sensor(j2).await);
    // Short lease for the test: an attempt times out after 2 s, the lease lasts 4 s.
    let config = replica_config("timeout_secs = 2\nclaim_lease_secs = 4\n");
    let mut a = c.replica(&config);
    let http = client();
    let actor = "45.88.1.1";
    assert_eq!(post_events(&http, &a.url, &s1, 1, alert(actor, "10.4.0.1")).await.0, 200);
    assert_eq!(post_events(&http, &a.url, &s2, 1, alert("10.4.0.2", actor)).await.0, 200);
    // A delivers: the receiver holds the request open; A is killed mid-delivery.
    let deadline = Instant::now() + Duration::from_secs(20);
    while receiver.arrivals.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "replica A delivers the warning");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let claimed = receiver.arrivals.lock().unwrap()[0];
    a.kill();
    let killed = Instant::now();
    // Another replica (started now, so A was the only one that could have claimed it).
    let _b = c.replica(&config);
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.arrivals.lock().unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "replica B delivers the warning A left");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let taken = receiver.arrivals.lock().unwrap()[1];
    let waited = taken - claimed;
    println!(
        "outbox lease: A claimed and was killed {:.0} ms later; B delivered {:.0} ms after A's claim ({:.0} ms after the kill; lease 4000 ms)",
        (killed - claimed).as_secs_f64() * 1000.0,
        waited.as_secs_f64() * 1000.0,
        (taken - killed).as_secs_f64() * 1000.0
    );
    assert!(waited >= Duration::from_millis(3_500), "not taken over before A's lease expired ({waited:?})");
    // Delivered exactly once more; the record says delivered after one recorded attempt.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let notes = c.with(move |s| s.notifications(&NotificationFilter { jurisdiction_id: Some(j1), limit: 100, ..Default::default() }).unwrap()).await;
        let mine: Vec<_> = notes.iter().filter(|n| n.contact_id == contact).collect();
        assert_eq!(mine.len(), 1, "{notes:?}");
        if mine[0].status == "delivered" {
            assert_eq!(mine[0].attempts, 1, "A died before recording its attempt; B's is the only one");
            break;
        }
        assert!(Instant::now() < deadline, "B records the delivery: {mine:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.arrivals.lock().unwrap().len(), 2, "no third delivery");
}
