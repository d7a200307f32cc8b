//! `bench-taxii`: the hub's TAXII 2.1 server over a large collection, on the SQLite store, the
//! PostgreSQL store, or both in one run; and OASIS's `medallion` (memory backend) as the peer.
//!
//! ```text
//! cargo run --release -p ward-bench --bin bench-taxii -- [--store sqlite|postgres|both]
//!     [--objects 1000000] [--pages 200] [--runs 3] [--post-objects 200000] [--post-batch 1000]
//!     [--post-clients 4] [--skip-client] [--medallion-objects 1100]
//!     [--pg-server postgres://root@127.0.0.1:5432]
//! ```
//!
//! **Fill.** `--objects` distinct, valid STIX 2.1 indicators (TLP:GREEN, built with the hub's
//! own `share::stix` builders) go into the community collection through `Store::taxii_add` in
//! transactions of 10,000 (the rate is printed); on PostgreSQL `ANALYZE` follows, as
//! autovacuum would after a bulk load. The SQLite store is the hub's real one (WAL,
//! `synchronous=FULL`) in a temporary directory; PostgreSQL gets a database of its own
//! (`ward_bench_taxii_<hex>`) on `--pg-server`, dropped at the end.
//!
//! **A real hub** (`ward_hub::start_with_store`, plain HTTP on 127.0.0.1) serves the store; the
//! client is a partner's API key (taxii-read, taxii-write, ceiling TLP:AMBER), so every query
//! runs with its access rules applied, as in production.
//!
//! * **Page latency**: `--pages` requests `GET …/objects/?limit=1000&added_after=T` with T drawn
//!   uniformly over the collection (each answer is checked to hold 1,000 objects), one at a time
//!   over one keep-alive connection; p50 and p99 per run, `--runs` runs, medians [min – max]
//!   printed. Target p99 < 100 ms.
//! * **Page-through with taxii2-client** (Python, `as_pages(get_objects, per_request=1000)`):
//!   the time to read the whole collection, checked to return every object once. Target < 2 min
//!   for 1,000,000.
//! * **POST ingest**: `--post-clients` clients each POST envelopes of `--post-batch` new objects
//!   (`--post-objects` in all) to the inbox; every object is validated by the hub
//!   (`StixObject::from_value`), stored, and reported in a complete status resource (checked).
//!   Objects/s = objects / wall time. Target ≥ 20,000/s.
//!
//! **medallion** (`--medallion-objects`, 0 to skip): `python3 -m medallion.scripts.run` with its
//! memory backend and `max_page_size` 1000 on a free loopback port, filled through its own POST;
//! then the same page request (`limit=1000`, `added_after` before the first object) timed
//! `min(--pages, 5)` times. Its memory backend copies and filters the whole collection for every
//! first page, quadratically: a page of 1000 over 1,100 objects already takes seconds and over
//! 2,000 did not answer within a minute here, so it holds 1,100 by default; the ratio printed is
//! medallion's p50 over ward's p50 at their respective sizes.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use serde_json::{json, Value};
use ward_bench::hub_scale::{machine, median, quantile, spread};
use ward_hub::share::objects::{NewApiKey, NewObject, COLLECTION_COMMUNITY};
use ward_hub::share::stix::{self, Common, IdSpace, Observable};
use ward_hub::share::taxii::{parse_timestamp_us, timestamp_us, MEDIA_TAXII};
use ward_hub::store::Store;
use ward_model::tlp::Tlp;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StoreChoice {
    Sqlite,
    Postgres,
    Both,
}

#[derive(Debug, Parser)]
#[command(about = "TAXII 2.1 server: page latency, taxii2-client page-through and POST ingest over a large collection")]
struct Args {
    #[arg(long, value_enum, default_value = "both")]
    store: StoreChoice,
    /// Objects in the collection.
    #[arg(long, default_value_t = 1_000_000)]
    objects: usize,
    /// Page requests per run.
    #[arg(long, default_value_t = 200)]
    pages: usize,
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Objects POSTed in the ingest measurement.
    #[arg(long, default_value_t = 200_000)]
    post_objects: usize,
    /// Objects per POSTed envelope.
    #[arg(long, default_value_t = 1000)]
    post_batch: usize,
    /// Concurrent POSTing clients.
    #[arg(long, default_value_t = 4)]
    post_clients: usize,
    /// Skip the taxii2-client page-through.
    #[arg(long)]
    skip_client: bool,
    /// Objects in medallion's collection (0: no medallion).
    #[arg(long, default_value_t = 1_100)]
    medallion_objects: usize,
    /// PostgreSQL server (loopback only): a database is created and dropped on it.
    #[arg(long, default_value = "postgres://root@127.0.0.1:5432")]
    pg_server: String,
}

const T0: i64 = 1_793_710_800_000; // 2026-11-03T13:00:00Z

/// The `i`-th object of a set (`prefix` keeps sets apart): a valid TLP:GREEN indicator.
fn object(prefix: &str, i: usize) -> Value {
    let ids = IdSpace::for_hub("bench-taxii");
    let c = Common { created_ms: T0, modified_ms: T0, tlp: Tlp::Green, created_by_ref: None, revoked: false, confidence: Some(60) };
    let ip = std::net::Ipv4Addr::from(0x2d00_0000u32.wrapping_add(i as u32));
    let ob = Observable::Ip(ip.into());
    stix::indicator(&ids.id("indicator", &format!("{prefix}|{i}")), &ob, "bench object: an address seen scanning election offices", T0, None, &["bench"], &c)
}

fn new_object(v: &Value) -> NewObject {
    let modified = v["modified"].as_str().unwrap_or_default().to_string();
    NewObject {
        object_id: v["id"].as_str().unwrap_or_default().to_string(),
        object_type: "indicator".into(),
        spec_version: "2.1".into(),
        version_us: parse_timestamp_us(&modified).unwrap_or(0),
        version: modified,
        tlp: Tlp::Green,
        jurisdiction_id: None,
        content_hash: ward_hub::share::publish::content_hash(v),
        body: v.to_string(),
    }
}

/// A small deterministic generator (xorshift), so runs draw the same pages.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// What one store measured.
#[derive(Debug, Default)]
struct Figures {
    name: String,
    fill_per_sec: f64,
    p50_ms: Vec<f64>,
    p99_ms: Vec<f64>,
    client_secs: Option<f64>,
    post_per_sec: f64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    ward_hub::server::install_crypto_provider();
    println!("machine: {}", machine());
    println!("collection: {} objects; pages of 1000: {} per run × {} runs; POST: {} objects in envelopes of {} by {} clients", args.objects, args.pages, args.runs, args.post_objects, args.post_batch, args.post_clients);
    let mut all = Vec::new();
    if matches!(args.store, StoreChoice::Sqlite | StoreChoice::Both) {
        let dir = tempfile::tempdir()?;
        let store: Arc<dyn Store> = Arc::new(ward_hub::store::sqlite::SqliteStore::open_dir(dir.path())?);
        all.push(run_store("sqlite", store, dir.path(), None, &args)?);
    }
    if matches!(args.store, StoreChoice::Postgres | StoreChoice::Both) {
        let db = BenchDb::create(&args.pg_server)?;
        let dir = tempfile::tempdir()?;
        let url = db.url();
        let store: Arc<dyn Store> = Arc::new(ward_hub::store::postgres::PgStore::connect(&url)?);
        all.push(run_store("postgresql", store, dir.path(), Some(url), &args)?);
    }
    let medallion = if args.medallion_objects > 0 { Some(run_medallion(&args)?) } else { None };

    println!();
    println!("| store | fill objects/s | page of 1000 p50 ms | p99 ms | taxii2-client page-through s | POST objects/s |");
    println!("|---|---|---|---|---|---|");
    for f in &all {
        println!(
            "| {} | {:.0} | {} | {} | {} | {:.0} |",
            f.name,
            f.fill_per_sec,
            spread(&f.p50_ms, 1),
            spread(&f.p99_ms, 1),
            f.client_secs.map_or("-".into(), |s| format!("{s:.1}")),
            f.post_per_sec
        );
    }
    if let Some((n, p50, p99)) = medallion {
        println!("| medallion 3.0 memory ({n} objects) | - | {p50:.1} | {p99:.1} | - | - |");
        for f in &all {
            println!("ratio medallion/ward ({}) page p50 = {:.1} (medallion holds {n}, ward {})", f.name, p50 / median(&f.p50_ms), args.objects);
        }
    }
    let ok = all.iter().all(|f| median(&f.p99_ms) < 100.0 && f.post_per_sec >= 20_000.0 && f.client_secs.is_none_or(|s| s < 120.0));
    println!("targets (p99 < 100 ms, page-through < 120 s, POST ≥ 20,000/s): {}", if ok { "met" } else { "NOT met" });
    Ok(())
}

fn run_store(name: &str, store: Arc<dyn Store>, dir: &std::path::Path, database: Option<String>, args: &Args) -> Result<Figures> {
    let mut f = Figures { name: name.into(), ..Default::default() };
    // Fill.
    let started = Instant::now();
    let mut dates = Vec::with_capacity(args.objects);
    let mut i = 0;
    while i < args.objects {
        let n = 10_000.min(args.objects - i);
        let chunk: Vec<NewObject> = (i..i + n).map(|k| new_object(&object("fill", k))).collect();
        let added = store.taxii_add(COLLECTION_COMMUNITY, "bench", &chunk, ward_hub::model::now_us())?;
        dates.extend(added.into_iter().flatten());
        i += n;
    }
    f.fill_per_sec = args.objects as f64 / started.elapsed().as_secs_f64();
    println!("{name}: filled {} objects in {:.1} s ({:.0}/s)", dates.len(), started.elapsed().as_secs_f64(), f.fill_per_sec);
    if let Some(url) = &database {
        // What autovacuum does after a bulk load, done now so the planner knows the table.
        postgres::Client::connect(url, postgres::NoTls)?.batch_execute("ANALYZE taxii_objects")?;
        println!("{name}: ANALYZE taxii_objects");
    }

    let (key_id, secret, hash) = ward_hub::share::accounts::new_key();
    store.create_api_key(
        &NewApiKey { key_id: key_id.clone(), name: "bench partner".into(), secret_hash: hash, scopes: vec!["taxii-read".into(), "taxii-write".into()], max_tlp: Tlp::Amber, jurisdiction_id: None, name_jurisdictions: false, created_by: "bench".into() },
        ward_hub::model::now_ms(),
    )?;
    let mut config = ward_hub::HubConfig { data_dir: dir.to_path_buf(), listen: "127.0.0.1:0".parse()?, database, ..Default::default() };
    config.limits.user_requests_per_sec = 1_000_000.0;
    config.taxii.publish_interval_secs = 3600;
    config.taxii.max_post_bytes = 64 * 1024 * 1024;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let hub = rt.block_on(ward_hub::start_with_store(store.clone(), config))?;
    let base = format!("{}/taxii2/api/collections/", hub.url());
    let community = format!("{base}{}/objects/", ward_hub::share::accounts::Collection::Community.id());
    let inbox = format!("{base}{}/objects/", ward_hub::share::accounts::Collection::Inbox.id());
    let client = reqwest::Client::builder().pool_max_idle_per_host(16).build()?;

    // Page latency.
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for run in 0..args.runs {
        let mut ms = Vec::with_capacity(args.pages);
        for _ in 0..args.pages {
            let at = dates[rng.below(dates.len().saturating_sub(1000).max(1))];
            let url = format!("{community}?limit=1000&added_after={}", timestamp_us(at));
            let t = Instant::now();
            let body = rt.block_on(async {
                let r = client.get(&url).header("accept", MEDIA_TAXII).bearer_auth(&secret).send().await?;
                let status = r.status();
                let text = r.text().await?;
                if !status.is_success() {
                    return Err(format!("GET {url}: {status} {text}").into());
                }
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(text)
            })?;
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
            let v: Value = serde_json::from_str(&body)?;
            let n = v["objects"].as_array().map_or(0, Vec::len);
            if n != 1000 {
                return Err(format!("a page held {n} objects, not 1000").into());
            }
        }
        ms.sort_by(|a, b| a.total_cmp(b));
        let (p50, p99) = (quantile(&ms, 0.5), quantile(&ms, 0.99));
        println!("{name}: run {}: page of 1000 p50 {p50:.1} ms p99 {p99:.1} ms", run + 1);
        f.p50_ms.push(p50);
        f.p99_ms.push(p99);
    }

    // taxii2-client page-through.
    if !args.skip_client {
        let script = r#"
import sys, time
from taxii2client.v21 import Collection, as_pages
url, user, password = sys.argv[1:4]
col = Collection(url, user=user, password=password)
t = time.monotonic()
n, ids = 0, set()
for envelope in as_pages(col.get_objects, per_request=1000):
    objs = envelope.get("objects", [])
    n += len(objs)
    ids.update(o["id"] for o in objs)
print(n, len(ids), time.monotonic() - t)
"#;
        let collection_url = community.trim_end_matches("objects/").to_string();
        let out = Command::new("python3").arg("-c").arg(script).args([&collection_url, &key_id, &secret]).output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!("taxii2-client failed: {text}{}", String::from_utf8_lossy(&out.stderr)).into());
        }
        let parts: Vec<&str> = text.split_whitespace().collect();
        let (n, unique, secs): (usize, usize, f64) = (parts[0].parse()?, parts[1].parse()?, parts[2].parse()?);
        // The hub's own identity and TLP marking (the publisher's first run) are in the collection too.
        if unique != n || n < args.objects {
            return Err(format!("taxii2-client read {n} objects, {unique} distinct, of {}", args.objects).into());
        }
        println!("{name}: taxii2-client paged through {n} objects in {secs:.1} s");
        f.client_secs = Some(secs);
    }

    // POST ingest.
    let bodies: Vec<String> = (0..args.post_objects.div_ceil(args.post_batch))
        .map(|b| {
            let objects: Vec<Value> = (b * args.post_batch..((b + 1) * args.post_batch).min(args.post_objects)).map(|k| object("post", k)).collect();
            json!({ "objects": objects }).to_string()
        })
        .collect();
    let bodies = Arc::new(bodies);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..args.post_clients.max(1) {
            let (client, bodies, next, inbox, secret) = (client.clone(), bodies.clone(), next.clone(), inbox.clone(), secret.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let b = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(body) = bodies.get(b) else { return Ok::<_, String>(()) };
                    let r = client.post(&inbox).header("content-type", MEDIA_TAXII).header("accept", MEDIA_TAXII).bearer_auth(&secret).body(body.clone()).send().await.map_err(|e| e.to_string())?;
                    let status = r.status();
                    let v: Value = r.json().await.map_err(|e| e.to_string())?;
                    if status.as_u16() != 202 || v["failure_count"] != 0 {
                        return Err(format!("POST: {status} {v}"));
                    }
                }
            }));
        }
        for t in tasks {
            t.await.map_err(|e| e.to_string())??;
        }
        Ok::<_, String>(())
    })?;
    f.post_per_sec = args.post_objects as f64 / started.elapsed().as_secs_f64();
    println!("{name}: POSTed {} objects in {:.1} s ({:.0}/s, validated and stored)", args.post_objects, started.elapsed().as_secs_f64(), f.post_per_sec);
    rt.block_on(hub.shutdown());
    drop(store);
    Ok(f)
}

/// A loopback port nobody listens on (medallion binds it itself).
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

struct Medallion(Child);

impl Drop for Medallion {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// medallion with its memory backend: (objects, p50 ms, p99 ms) of a page of 1000.
fn run_medallion(args: &Args) -> Result<(usize, f64, f64)> {
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let root = format!("http://127.0.0.1:{port}/api1/");
    let collection = "91a7b528-80eb-42ed-a74d-c6fbd5a26116";
    let data = json!({
        "/discovery": { "title": "medallion", "default": root, "api_roots": [root] },
        "api1": {
            "information": { "title": "bench", "versions": [MEDIA_TAXII], "max_content_length": 104_857_600 },
            "status": [],
            "collections": [{ "id": collection, "title": "bench", "can_read": true, "can_write": true, "media_types": ["application/stix+json;version=2.1"], "objects": [], "manifest": [] }]
        }
    });
    std::fs::write(dir.path().join("data.json"), data.to_string())?;
    let config = json!({
        "backend": { "module": "medallion.backends.memory_backend", "module_class": "MemoryBackend", "filename": dir.path().join("data.json") },
        "users": { "bench": "bench-password" },
        "taxii": { "max_page_size": 1000 }
    });
    std::fs::write(dir.path().join("config.json"), config.to_string())?;
    let child = Command::new("python3")
        .args(["-m", "medallion.scripts.run", "--host", "127.0.0.1", "--port", &port.to_string(), "--log-level", "ERROR"])
        .arg(dir.path().join("config.json"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let _medallion = Medallion(child);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    // A new connection per request (the development server medallion runs on does not keep
    // connections reliably), and a bound on each request.
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).timeout(Duration::from_secs(300)).build()?;
    let objects_url = format!("{root}collections/{collection}/objects/");
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = client.get(format!("http://127.0.0.1:{port}/taxii2/")).header("accept", MEDIA_TAXII).basic_auth("bench", Some("bench-password")).send().await;
            if r.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err::<(), Box<dyn std::error::Error + Send + Sync>>("medallion did not start (pip install medallion)".into());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })?;
    let started = Instant::now();
    let mut dates = Vec::new();
    for b in 0..args.medallion_objects.div_ceil(1000) {
        let objects: Vec<Value> = (b * 1000..((b + 1) * 1000).min(args.medallion_objects)).map(|k| object("medallion", k)).collect();
        // medallion dates what it is given by its own clock (the same machine's): objects
        // added after this instant are this batch and the ones after it.
        dates.push(timestamp_us(ward_hub::model::now_us()));
        rt.block_on(async {
            let r = client.post(&objects_url).header("content-type", MEDIA_TAXII).header("accept", MEDIA_TAXII).basic_auth("bench", Some("bench-password")).body(json!({ "objects": objects }).to_string()).send().await?;
            let status = r.status();
            let v: Value = r.json().await?;
            if !status.is_success() || v["failure_count"] != 0 {
                return Err::<(), Box<dyn std::error::Error + Send + Sync>>(format!("medallion POST: {status} {v}").into());
            }
            Ok(())
        })?;
    }
    println!("medallion: filled {} objects in {:.1} s", args.medallion_objects, started.elapsed().as_secs_f64());
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut ms = Vec::new();
    for _ in 0..args.pages.min(5) {
        // added_after = the date one batch was added: the page after it holds 1000 objects.
        let at = &dates[rng.below(dates.len().saturating_sub(1).max(1))];
        let url = format!("{objects_url}?limit=1000&added_after={at}");
        let t = Instant::now();
        let v: Value = rt.block_on(async { Ok::<_, Box<dyn std::error::Error + Send + Sync>>(client.get(&url).header("accept", MEDIA_TAXII).basic_auth("bench", Some("bench-password")).send().await?.json::<Value>().await?) })?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        if v["objects"].as_array().map_or(0, Vec::len) == 0 {
            return Err(format!("medallion returned an empty page: {v}").into());
        }
    }
    ms.sort_by(|a, b| a.total_cmp(b));
    let (p50, p99) = (quantile(&ms, 0.5), quantile(&ms, 0.99));
    println!("medallion: page of 1000 over {} objects p50 {p50:.1} ms p99 {p99:.1} ms", args.medallion_objects);
    Ok((args.medallion_objects, p50, p99))
}

/// A database created for this run and dropped at its end.
struct BenchDb {
    server: String,
    name: String,
}

impl BenchDb {
    fn admin(server: &str) -> Result<postgres::Client> {
        Ok(postgres::Client::connect(&format!("{server}/test"), postgres::NoTls).or_else(|_| postgres::Client::connect(&format!("{server}/postgres"), postgres::NoTls))?)
    }

    fn create(server: &str) -> Result<BenchDb> {
        let name = format!("ward_bench_taxii_{:08x}", std::process::id() ^ (ward_hub::model::now_ms() as u32));
        // An identifier cannot be a parameter; the name is ours (a fixed prefix and hex digits).
        Self::admin(server)?.batch_execute(&format!("CREATE DATABASE {name}"))?;
        Ok(BenchDb { server: server.to_string(), name })
    }

    fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        match Self::admin(&self.server).and_then(|mut c| Ok(c.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))?)) {
            Ok(()) => eprintln!("dropped the bench database {}", self.name),
            Err(e) => eprintln!("cannot drop the bench database {}: {e}", self.name),
        }
    }
}
