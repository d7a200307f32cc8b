//! `bench-feeds`: how fast the hub imports feeds, and how long a feed's new indicator takes to
//! reach a sensor — on the SQLite store, the PostgreSQL store, or both in one run.
//!
//! ```text
//! cargo run --release -p ward-bench --bin bench-feeds -- [--store sqlite|postgres|both]
//!     [--csv 100000] [--taxii 10000] [--taxii-page 1000] [--trials 30] [--runs 3]
//!     [--pg-server postgres://root@127.0.0.1:5432]
//! ```
//!
//! * **CSV import**: a list of `--csv` distinct public addresses (one a line, abuse.ch style)
//!   served by an HTTP server on loopback; a fresh store per run; one poll of a CSV feed
//!   through `share::feeds::poll_feed` (fetch, parse, filter, then one store transaction that
//!   writes every feed indicator and every log `add`). Rate = indicators added / poll time.
//! * **TAXII import**: OASIS medallion (memory backend, `--taxii-page` objects a page) holding
//!   `--taxii` indicator objects (written into its data file, as a `POST` of 10,000 objects
//!   costs medallion minutes); one poll pages through all of them. Rate as above; pages
//!   reported.
//! * **Feed to sensor**: a hub serving HTTP on loopback with a sensor long-polling
//!   `GET /api/v1/indicators?since=…&wait=25`; each trial adds one line to a list and asks the
//!   hub to poll it now (`POST /api/v1/feeds/{id}/poll`); the time from the poll request to the
//!   long-poll answer holding the new value (the feed's interval aside). p50/p99 over
//!   `--trials`.
//!
//! Medians and [min – max] over `--runs` for the rates. Only loopback is contacted.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use serde_json::{json, Value};
use ward_bench::hub_scale::{machine, quantile, spread};
use ward_hub::model::{now_ms, Role};
use ward_hub::share::feeds::{self, poll::Poller, FeedRequest};
use ward_hub::store::Store;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StoreKind {
    Sqlite,
    Postgres,
    Both,
}

#[derive(Debug, Parser)]
#[command(name = "bench-feeds", about = "feed import rate (CSV, TAXII in medallion) and feed-to-sensor latency on the SQLite and PostgreSQL stores")]
struct Args {
    #[arg(long, value_enum, default_value_t = StoreKind::Both)]
    store: StoreKind,
    /// Lines of the CSV list.
    #[arg(long, default_value_t = 100_000)]
    csv: usize,
    /// Indicator objects in the TAXII collection.
    #[arg(long, default_value_t = 10_000)]
    taxii: usize,
    /// medallion's max_page_size.
    #[arg(long, default_value_t = 1000)]
    taxii_page: usize,
    /// Feed-to-sensor trials.
    #[arg(long, default_value_t = 30)]
    trials: usize,
    /// Import runs per store (a fresh store each).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    #[arg(long, default_value = "postgres://root@127.0.0.1:5432")]
    pg_server: String,
}

fn address(n: usize) -> String {
    format!("{}.{}.{}.{}", 45 + n / (250 * 250 * 250) % 100, 1 + n / (250 * 250) % 250, 1 + n / 250 % 250, 1 + n % 250)
}

// ---------------------------------------------------------------------------------------------
// stores

struct BenchStore {
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
    _db: Option<BenchDb>,
}

struct BenchDb {
    server: String,
    name: String,
}

impl BenchDb {
    fn admin(server: &str) -> Result<postgres::Client> {
        Ok(postgres::Client::connect(&format!("{server}/test"), postgres::NoTls).or_else(|_| postgres::Client::connect(&format!("{server}/postgres"), postgres::NoTls))?)
    }
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            if let Err(e) = Self::admin(&server).and_then(|mut c| Ok(c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?)) {
                eprintln!("cannot drop the bench database {name}: {e}");
            }
        })
        .join();
    }
}

/// A fresh store (opened on a thread of its own: the PostgreSQL client must not run on the
/// runtime's threads).
fn fresh_store(kind: StoreKind, pg_server: &str) -> Result<BenchStore> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().to_path_buf();
    let server = pg_server.to_string();
    let (store, db) = std::thread::spawn(move || -> Result<(Arc<dyn Store>, Option<BenchDb>)> {
        match kind {
            StoreKind::Postgres => {
                let name = format!("ward_bench_feeds_{:016x}", rand_u64());
                // An identifier cannot be a parameter; the name is ours (a prefix and hex digits).
                BenchDb::admin(&server)?.batch_execute(&format!("CREATE DATABASE {name}"))?;
                let db = BenchDb { server: server.clone(), name: name.clone() };
                let store: Arc<dyn Store> = Arc::new(ward_hub::store::postgres::PgStore::connect(&format!("{server}/{name}"))?);
                Ok((store, Some(db)))
            }
            _ => Ok((Arc::new(ward_hub::store::sqlite::SqliteStore::open_dir(&path)?), None)),
        }
    })
    .join()
    .map_err(|_| "store thread panicked")??;
    Ok(BenchStore { store, _dir: dir, _db: db })
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(now_ms() as u64);
    h.finish()
}

fn on_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f).join().expect("store call panicked")
}

// ---------------------------------------------------------------------------------------------
// servers

/// An HTTP server on loopback serving one mutable text file at `/list.txt`.
async fn list_server(body: Arc<std::sync::Mutex<String>>) -> Result<std::net::SocketAddr> {
    let app = axum::Router::new().route(
        "/list.txt",
        axum::routing::get(move || {
            let body = body.clone();
            async move { ([("content-type", "text/plain")], body.lock().map(|b| b.clone()).unwrap_or_default()) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

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

const COLLECTION: &str = "91a7b528-80eb-42ed-a74d-c6fbd5a26116";

async fn medallion(objects: usize, page: usize) -> Result<Medallion> {
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let added = "2026-01-01T00:00:00.000000Z";
    let mut objs = Vec::with_capacity(objects);
    let mut manifest = Vec::with_capacity(objects);
    for n in 0..objects {
        let id = format!("indicator--00000000-0000-4000-8000-{n:012x}");
        objs.push(json!({"type": "indicator", "spec_version": "2.1", "id": id, "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
            "pattern": format!("[ipv4-addr:value = '{}']", address(n)), "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z", "confidence": 80}));
        manifest.push(json!({"id": id, "date_added": added, "version": "2026-01-01T00:00:00.000Z", "media_type": "application/stix+json;version=2.1"}));
    }
    let data = json!({
        "/discovery": {"title": "bench", "description": "", "contact": "", "default": format!("http://127.0.0.1:{port}/api1/"), "api_roots": [format!("http://127.0.0.1:{port}/api1/")]},
        "api1": {"information": {"title": "bench", "description": "", "versions": ["application/taxii+json;version=2.1"], "max_content_length": 104857600}, "status": [],
                 "collections": [{"id": COLLECTION, "title": "bench", "description": "", "can_read": true, "can_write": true, "media_types": ["application/stix+json;version=2.1"], "objects": objs, "manifest": manifest}]}
    });
    std::fs::write(dir.path().join("data.json"), data.to_string())?;
    let config = json!({"backend": {"module": "medallion.backends.memory_backend", "module_class": "MemoryBackend", "filename": dir.path().join("data.json")}, "users": {"bench": "bench-password"}, "taxii": {"max_page_size": page}});
    std::fs::write(dir.path().join("config.json"), config.to_string())?;
    let child = Command::new("python3")
        .args(["-m", "medallion.scripts.run", "--host", "127.0.0.1", "--port", &port.to_string(), "--log-level", "ERROR"])
        .arg(dir.path().join("config.json"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let m = Medallion { child, port, _dir: dir };
    let client = reqwest::Client::new();
    for _ in 0..300 {
        let r = client.get(format!("http://127.0.0.1:{port}/taxii2/")).basic_auth("bench", Some("bench-password")).header("accept", "application/taxii+json;version=2.1").send().await;
        if r.is_ok_and(|r| r.status().is_success()) {
            return Ok(m);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("medallion did not start (is it installed? scripts/setup-test-env.sh)".into())
}

fn poller(store: Arc<dyn Store>) -> Result<Poller> {
    let cfg = ward_hub::config::FeedsConfig { allow_targets: vec!["127.0.0.1".parse()?], max_response_mib: 256, timeout_secs: 600, ..Default::default() };
    Ok(Poller { store, http: cfg.client()?, allow: Arc::new(ward_hub::trust::AllowList::builtin()) })
}

fn add_feed(store: &Arc<dyn Store>, req: FeedRequest) -> Result<i64> {
    let new = feeds::validate(&req, "bench")?;
    let s = store.clone();
    Ok(on_thread(move || s.add_feed(&new, now_ms()))?.id)
}

// ---------------------------------------------------------------------------------------------
// the three measurements

/// indicators/s of one CSV poll (end to end, and without the time spent waiting on the server),
/// and the added count.
fn csv_import(rt: &tokio::runtime::Runtime, kind: StoreKind, args: &Args) -> Result<(f64, f64, usize)> {
    let b = fresh_store(kind, &args.pg_server)?;
    let body: String = (0..args.csv).map(|n| address(n) + "\n").collect();
    let addr = rt.block_on(list_server(Arc::new(std::sync::Mutex::new(body))))?;
    let id = add_feed(&b.store, FeedRequest { name: "csv".into(), kind: "csv".into(), url: format!("http://{addr}/list.txt"), max_indicators: Some(1_000_000), ..Default::default() })?;
    let p = poller(b.store.clone())?;
    let started = Instant::now();
    let report = rt.block_on(feeds::poll_feed(&p, id, &|_| {}))?;
    let secs = started.elapsed().as_secs_f64();
    if let Some(e) = report.error {
        return Err(format!("csv poll failed: {e}").into());
    }
    let hub_secs = secs - report.fetch_ms / 1000.0;
    Ok((report.applied.added as f64 / secs, report.applied.added as f64 / hub_secs, report.applied.added))
}

/// indicators/s of one TAXII poll through every page (end to end, and without the time spent
/// waiting on medallion), the added count, the pages and medallion's seconds.
fn taxii_import(rt: &tokio::runtime::Runtime, kind: StoreKind, args: &Args, m: &Medallion) -> Result<(f64, f64, usize, usize, f64)> {
    let b = fresh_store(kind, &args.pg_server)?;
    let id = add_feed(
        &b.store,
        FeedRequest {
            name: "taxii".into(),
            kind: "taxii".into(),
            url: format!("http://127.0.0.1:{}/api1/", m.port),
            collection: Some(COLLECTION.into()),
            username: Some("bench".into()),
            password: Some("bench-password".into()),
            max_indicators: Some(1_000_000),
            ..Default::default()
        },
    )?;
    let p = poller(b.store.clone())?;
    let started = Instant::now();
    let report = rt.block_on(feeds::poll_feed(&p, id, &|_| {}))?;
    let secs = started.elapsed().as_secs_f64();
    if let Some(e) = report.error {
        return Err(format!("taxii poll failed: {e}").into());
    }
    let hub_secs = secs - report.fetch_ms / 1000.0;
    Ok((report.applied.added as f64 / secs, report.applied.added as f64 / hub_secs, report.applied.added, report.requests, report.fetch_ms / 1000.0))
}

/// Feed-to-sensor latencies (ms), one per trial.
fn feed_to_sensor(rt: &tokio::runtime::Runtime, kind: StoreKind, args: &Args) -> Result<Vec<f64>> {
    let b = fresh_store(kind, &args.pg_server)?;
    let store = b.store.clone();
    let phc = ward_hub::auth::hash_password("bench password 1").map_err(|e| e.to_string())?;
    let s = store.clone();
    on_thread(move || s.create_user("analyst", &phc, Role::Analyst, None, now_ms()))?;
    let body = Arc::new(std::sync::Mutex::new(String::from("45.1.1.1\n")));
    let mut cfg = ward_hub::HubConfig { listen: "127.0.0.1:0".parse()?, ..Default::default() };
    cfg.feeds.allow_targets = vec!["127.0.0.1".parse()?];
    cfg.feeds.poll = false;
    cfg.limits.user_requests_per_sec = 10_000.0;
    let latencies = rt.block_on(async {
        let addr = list_server(body.clone()).await?;
        let hub = ward_hub::start_with_store(store.clone(), cfg).await?;
        let base = hub.url();
        let client = reqwest::Client::new();
        let login: Value = client.post(format!("{base}/api/v1/login")).json(&json!({"username": "analyst", "password": "bench password 1"})).send().await?.json().await?;
        let token = login["token"].as_str().ok_or("login failed")?.to_string();
        let feed: Value = client
            .post(format!("{base}/api/v1/feeds"))
            .bearer_auth(&token)
            .json(&json!({"name": "latency", "kind": "csv", "url": format!("http://{addr}/list.txt")}))
            .send()
            .await?
            .json()
            .await?;
        let id = feed["id"].as_i64().ok_or("feed not added")?;
        let first: Value = client.post(format!("{base}/api/v1/feeds/{id}/poll")).bearer_auth(&token).send().await?.json().await?;
        if !first["error"].is_null() {
            return Err(format!("first poll failed: {first}").into());
        }
        let log: Value = client.get(format!("{base}/api/v1/indicators?since=0")).bearer_auth(&token).send().await?.json().await?;
        let mut cursor = log["cursor"].as_i64().unwrap_or(0);
        let mut out = Vec::new();
        for t in 0..args.trials {
            let value = address(1_000 + t);
            body.lock().map_err(|_| "lock")?.push_str(&format!("{value}\n"));
            // The sensor is waiting before the poll starts.
            let waiter = {
                let (client, base, token) = (client.clone(), base.clone(), token.clone());
                tokio::spawn(async move {
                    let r: Value = client.get(format!("{base}/api/v1/indicators?since={cursor}&wait=25")).bearer_auth(&token).send().await?.json().await?;
                    Ok::<_, reqwest::Error>((r, Instant::now()))
                })
            };
            tokio::time::sleep(Duration::from_millis(50)).await;
            let started = Instant::now();
            let polled = tokio::spawn(client.post(format!("{base}/api/v1/feeds/{id}/poll")).bearer_auth(&token).send());
            let (answer, at) = waiter.await??;
            polled.await??;
            let got = answer["indicators"].as_array().is_some_and(|l| l.iter().any(|i| i["value"] == value.as_str()));
            if !got {
                return Err(format!("trial {t}: the sensor's answer lacks {value}: {answer}").into());
            }
            cursor = answer["cursor"].as_i64().unwrap_or(cursor);
            out.push(at.duration_since(started).as_secs_f64() * 1000.0);
        }
        hub.shutdown().await;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(out)
    })?;
    drop(b);
    Ok(latencies)
}

fn main() -> Result<()> {
    let args = Args::parse();
    ward_hub::server::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    println!("bench-feeds on {}", machine());
    println!("csv list {} lines; taxii collection {} objects ({} a page); {} feed-to-sensor trials; {} runs", args.csv, args.taxii, args.taxii_page, args.trials, args.runs);
    let kinds: Vec<StoreKind> = match args.store {
        StoreKind::Both => vec![StoreKind::Sqlite, StoreKind::Postgres],
        k => vec![k],
    };
    let m = rt.block_on(medallion(args.taxii, args.taxii_page))?;
    for kind in kinds {
        let name = if kind == StoreKind::Postgres { "postgresql" } else { "sqlite" };
        let (mut csv_rates, mut csv_hub) = (Vec::new(), Vec::new());
        let (mut taxii_rates, mut taxii_hub, mut server_secs) = (Vec::new(), Vec::new(), Vec::new());
        let mut pages = 0;
        for run in 0..args.runs {
            let (rate, hub, added) = csv_import(&rt, kind, &args)?;
            eprintln!("  {name} run {}: csv {added} indicators at {rate:.0}/s ({hub:.0}/s without the fetch)", run + 1);
            csv_rates.push(rate);
            csv_hub.push(hub);
            if args.taxii > 0 {
                let (rate, hub, added, requests, server) = taxii_import(&rt, kind, &args, &m)?;
                eprintln!("  {name} run {}: taxii {added} indicators in {requests} pages at {rate:.0}/s ({hub:.0}/s without medallion's {server:.1} s)", run + 1);
                taxii_rates.push(rate);
                taxii_hub.push(hub);
                server_secs.push(server);
                pages = requests;
            }
        }
        let mut lat = feed_to_sensor(&rt, kind, &args)?;
        lat.sort_by(|a, b| a.total_cmp(b));
        println!("{name}: csv import {} indicators/s end to end, {} without the fetch", spread(&csv_rates, 0), spread(&csv_hub, 0));
        if args.taxii > 0 {
            println!("{name}: taxii import {} indicators/s end to end ({pages} pages; medallion answered in {} s), {} without medallion", spread(&taxii_rates, 0), spread(&server_secs, 1), spread(&taxii_hub, 0));
        }
        println!("{name}: feed to sensor (poll start to the long-poll answer) p50 {:.1} ms p99 {:.1} ms max {:.1} ms over {} trials",
            quantile(&lat, 0.5), quantile(&lat, 0.99), lat.last().copied().unwrap_or(f64::NAN), lat.len());
    }
    Ok(())
}
