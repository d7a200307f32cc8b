//! `bench-federation`: the time from a county's sighting at state hub A to the actor's address
//! being live on a sensor of state B, through the national hub — three real hubs on loopback
//! with the default push settings, on the SQLite store, the PostgreSQL store, or both.
//!
//! ```text
//! cargo run --release -p ward-bench --bin bench-federation -- [--store sqlite|postgres|both]
//!     [--trials 100] [--pg-server postgres://root@127.0.0.1:5432]
//! ```
//!
//! The federation (docs/sharing.md "Federation"): A and B each peer with the national hub
//! (`accept_indicators = true` both ways); the national hub relays A's objects to B. Each trial
//! is a new actor address in a /24 of its own: county 1 of A reports it (a campaign of one jurisdiction, not
//! published: `publish_min_jurisdictions = 2`), then — the clock starts — county 2 reports it;
//! A's correlation publishes the campaign, A's publisher stores the STIX objects and wakes the
//! pusher, which POSTs them to the national hub, which applies the indicator through A's peer
//! feed and relays the objects to B, which applies them through the national hub's feed; the
//! clock stops when B's sensor's long-poll (`GET /api/v1/indicators?since=…&wait=25`, waiting
//! before the sighting) answers with the address. p50/p99/max over `--trials`. Only loopback is
//! contacted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use serde_json::{json, Value};
use ward_bench::hub_scale::{machine, quantile};
use ward_hub::model::{now_ms, JurisdictionKind, NewJurisdiction};
use ward_hub::share::federation::PeerConfig;
use ward_hub::store::Store;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StoreKind {
    Sqlite,
    Postgres,
    Both,
}

#[derive(Debug, Parser)]
#[command(name = "bench-federation", about = "county sighting at hub A → address live on a sensor of state B, through a national hub (three hubs on loopback)")]
struct Args {
    #[arg(long, value_enum, default_value_t = StoreKind::Both)]
    store: StoreKind,
    #[arg(long, default_value_t = 100)]
    trials: usize,
    #[arg(long, default_value = "postgres://root@127.0.0.1:5432")]
    pg_server: String,
}

fn on_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f).join().expect("store call panicked")
}

/// A bench database: (server URL, database name).
type PgName = (String, String);

/// A store of one hub, and what to drop after it.
struct Db {
    store: Arc<dyn Store>,
    dir: tempfile::TempDir,
    pg: Option<PgName>,
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some((server, name)) = self.pg.take() {
            let _ = std::thread::spawn(move || {
                if let Ok(mut c) = postgres::Client::connect(&format!("{server}/test"), postgres::NoTls) {
                    let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
                }
            })
            .join();
        }
    }
}

fn fresh(kind: StoreKind, server: &str, tag: &str) -> Result<Db> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().to_path_buf();
    let (server, tag) = (server.to_string(), tag.to_string());
    let (store, pg) = on_thread(move || -> Result<(Arc<dyn Store>, Option<PgName>)> {
        if kind == StoreKind::Postgres {
            let name = format!("ward_bench_fed_{tag}_{}", now_ms());
            // An identifier cannot be a parameter; the name is ours (a prefix, a tag, digits).
            postgres::Client::connect(&format!("{server}/test"), postgres::NoTls)?.batch_execute(&format!("CREATE DATABASE {name}"))?;
            let store: Arc<dyn Store> = Arc::new(ward_hub::store::postgres::PgStore::connect(&format!("{server}/{name}"))?);
            Ok((store, Some((server, name))))
        } else {
            Ok((Arc::new(ward_hub::store::sqlite::SqliteStore::open_dir(&path)?), None))
        }
    })?;
    Ok(Db { store, dir, pg })
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A key made on `store` for a peer: (key id, secret).
fn key(store: &Arc<dyn Store>, name: &str) -> Result<(String, String)> {
    let req = ward_hub::api::ApiKeyRequest { name: name.into(), scopes: vec!["taxii-read".into(), "taxii-write".into()], max_tlp: None, jurisdiction_id: None, name_jurisdictions: false, client_cert: None };
    let (new, secret) = req.into_new("bench");
    let s = store.clone();
    let k = on_thread(move || s.create_api_key(&new, now_ms()))?;
    Ok((k.key_id, secret))
}

fn peer(dir: &std::path::Path, name: &str, port: u16, secret: &str, key_id: &str) -> Result<PeerConfig> {
    let file = dir.join(format!("{name}.key"));
    std::fs::write(&file, secret)?;
    Ok(serde_json::from_value(json!({
        "name": name, "url": format!("http://127.0.0.1:{port}/taxii2/api/"), "api_key_file": file,
        "key_id": key_id, "hub_name": name, "accept_indicators": true,
    }))?)
}

fn config(hub_name: &str, port: u16) -> Result<ward_hub::HubConfig> {
    let mut c = ward_hub::HubConfig { listen: format!("127.0.0.1:{port}").parse()?, ..Default::default() };
    c.taxii.hub_name = hub_name.into();
    c.trust.publish_min_jurisdictions = 2;
    // Each trial brings a new address from the same sensors.
    c.trust.max_new_keys_per_sensor = 1_000_000;
    c.limits.sensor_batches_per_sec = 10_000.0;
    c.limits.user_requests_per_sec = 10_000.0;
    c.feeds.poll = false;
    c.federation.allow_targets = vec!["127.0.0.1/32".parse()?];
    Ok(c)
}

/// Trial `t`'s actor: a /24 of its own, so it joins no earlier trial's campaign (the hub keys
/// campaigns by address and by /24 network too).
fn actor(t: usize) -> String {
    format!("185.{}.{}.7", 100 + t / 250 % 100, t % 250)
}

async fn enroll(client: &reqwest::Client, base: &str, store: &Arc<dyn Store>, county: &str, state: &str) -> Result<(i64, String)> {
    let s = store.clone();
    let (county, state) = (county.to_string(), state.to_string());
    let token = ward_hub::auth::random_token("wet");
    let hash = ward_hub::auth::hash_token(&token);
    on_thread(move || -> Result<()> {
        let j = s.create_jurisdiction(&NewJurisdiction { name: county, kind: JurisdictionKind::County, state: Some(state), home_net: None }, now_ms())?;
        s.create_enrollment_token(j.id, &hash, now_ms(), now_ms() + 60_000)?;
        Ok(())
    })?;
    let v: Value = client.post(format!("{base}/api/v1/sensors/enroll")).json(&json!({"token": token})).send().await?.json().await?;
    Ok((v["sensor"]["id"].as_i64().ok_or("enroll failed")?, v["credential"].as_str().ok_or("enroll failed")?.to_string()))
}

async fn alert(client: &reqwest::Client, base: &str, sensor: &(i64, String), actor: &str, local: &str, seq: usize) -> Result<()> {
    let line = json!({
        "timestamp": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f+0000").to_string(), "event_type": "alert",
        "src_ip": actor, "src_port": 40000, "dest_ip": local, "dest_port": 443, "proto": "TCP",
        "alert": {"action": "allowed", "gid": 1, "signature_id": 2403300, "rev": 1, "signature": "ET CINS Poor Reputation IP", "category": "Misc Attack", "severity": 2}
    })
    .to_string();
    let r = client.post(format!("{base}/api/v1/events")).bearer_auth(&sensor.1).header("idempotency-key", format!("{}:{seq}", sensor.0)).body(line).send().await?;
    if !r.status().is_success() {
        return Err(format!("ingest answered {}", r.status()).into());
    }
    Ok(())
}

/// Latencies (ms) over the trials.
fn run(rt: &tokio::runtime::Runtime, kind: StoreKind, args: &Args) -> Result<Vec<f64>> {
    let (dn, da, db) = (fresh(kind, &args.pg_server, "n")?, fresh(kind, &args.pg_server, "a")?, fresh(kind, &args.pg_server, "b")?);
    let (pn, pa, pb) = (free_port()?, free_port()?, free_port()?);
    let (n_for_a, n_for_a_secret) = key(&dn.store, "state-a")?;
    let (n_for_b, n_for_b_secret) = key(&dn.store, "state-b")?;
    let (a_for_n, a_for_n_secret) = key(&da.store, "national")?;
    let (b_for_n, b_for_n_secret) = key(&db.store, "national")?;
    let mut cn = config("national", pn)?;
    cn.federation.peers = vec![peer(dn.dir.path(), "state-a", pa, &a_for_n_secret, &n_for_a)?, peer(dn.dir.path(), "state-b", pb, &b_for_n_secret, &n_for_b)?];
    let mut ca = config("state-a", pa)?;
    ca.federation.peers = vec![peer(da.dir.path(), "national", pn, &n_for_a_secret, &a_for_n)?];
    let mut cb = config("state-b", pb)?;
    cb.federation.peers = vec![peer(db.dir.path(), "national", pn, &n_for_b_secret, &b_for_n)?];
    let out = rt.block_on(async {
        let n = ward_hub::start_with_store(dn.store.clone(), cn).await?;
        let a = ward_hub::start_with_store(da.store.clone(), ca).await?;
        let b = ward_hub::start_with_store(db.store.clone(), cb).await?;
        let client = reqwest::Client::new();
        let (abase, bbase) = (a.url(), b.url());
        let c1 = enroll(&client, &abase, &da.store, "County One", "AA").await?;
        let c2 = enroll(&client, &abase, &da.store, "County Two", "AA").await?;
        let cb_sensor = enroll(&client, &bbase, &db.store, "County Three", "BB").await?;
        let first: Value = client.get(format!("{bbase}/api/v1/indicators?since=0")).bearer_auth(&cb_sensor.1).send().await?.json().await?;
        let mut cursor = first["cursor"].as_i64().unwrap_or(0);
        let mut out = Vec::new();
        for t in 0..args.trials {
            let value = actor(t);
            alert(&client, &abase, &c1, &value, "10.1.0.5", 2 * t).await?;
            // B's sensor is waiting before the sighting that publishes.
            let waiter = {
                let (client, bbase, cred, value) = (client.clone(), bbase.clone(), cb_sensor.1.clone(), value.clone());
                tokio::spawn(async move {
                    let mut since = cursor;
                    loop {
                        let r: Value = client.get(format!("{bbase}/api/v1/indicators?since={since}&wait=25")).bearer_auth(&cred).send().await?.json().await?;
                        since = r["cursor"].as_i64().unwrap_or(since);
                        if r["indicators"].as_array().is_some_and(|l| l.iter().any(|i| i["value"] == value.as_str() && i["action"] == "add")) {
                            return Ok::<_, reqwest::Error>((since, Instant::now()));
                        }
                    }
                })
            };
            tokio::time::sleep(Duration::from_millis(50)).await;
            let started = Instant::now();
            alert(&client, &abase, &c2, &value, "10.2.0.9", 2 * t + 1).await?;
            let (since, at) = tokio::time::timeout(Duration::from_secs(60), waiter).await.map_err(|_| format!("trial {t}: {value} did not reach B within 60 s"))???;
            cursor = since;
            let ms = at.duration_since(started).as_secs_f64() * 1000.0;
            if (t + 1) % 10 == 0 {
                eprintln!("  trial {}: {ms:.0} ms", t + 1);
            }
            out.push(ms);
        }
        b.shutdown().await;
        a.shutdown().await;
        n.shutdown().await;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(out)
    })?;
    Ok(out)
}

fn main() -> Result<()> {
    let args = Args::parse();
    ward_hub::server::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    println!("bench-federation on {}", machine());
    println!("{} trials; three hubs on loopback (national, state A, state B); default push settings", args.trials);
    let kinds = match args.store {
        StoreKind::Both => vec![StoreKind::Sqlite, StoreKind::Postgres],
        k => vec![k],
    };
    for kind in kinds {
        let name = if kind == StoreKind::Postgres { "postgresql" } else { "sqlite" };
        let mut lat = run(&rt, kind, &args)?;
        lat.sort_by(|a, b| a.total_cmp(b));
        println!(
            "{name}: county sighting at A → live on B's sensor: p50 {:.0} ms p99 {:.0} ms max {:.0} ms over {} trials",
            quantile(&lat, 0.5),
            quantile(&lat, 0.99),
            lat.last().copied().unwrap_or(f64::NAN),
            lat.len()
        );
    }
    Ok(())
}
