//! `bench-retrohunt`: how fast the hub stores contact records, and how long a retro-hunt for one
//! address and for a /24 takes over millions of them — on the SQLite store, the PostgreSQL
//! store, or both side by side in one run.
//!
//! ```text
//! cargo run --release -p ward-bench --bin bench-retrohunt -- [--store sqlite|postgres|both]
//!     [--records 1000000] [--jurisdictions 100] [--days 30] [--batch 500] [--group 10]
//!     [--hunts 30] [--pg-server postgres://root@127.0.0.1:5432] [--database postgres://…]
//!     [--dir DIR] [--reuse] [--keep] [--compare-gist]
//! ```
//!
//! **Stores.** SQLite: the hub's real store (WAL, `synchronous=FULL`) in `--dir` (a temporary
//! directory by default). PostgreSQL: the hub's real store on a database this run creates on
//! `--pg-server` (`ward_bench_retrohunt_<random>`) and drops at the end (`--keep` keeps it), or
//! on an existing `--database` (never dropped). Nothing but loopback is contacted.
//!
//! **The fill** goes through [`Store::ingest`] — the group-commit path sensor batches take after
//! HTTP — with NDJSON `contact` lines exactly as ward-sensor's hubsink writes them, each parsed
//! and validated by `ingest::parse_line`. Records arrive in time order as they would: the
//! `--days` before now are walked hour by hour, and each sensor batch holds `--batch` records of
//! one jurisdiction and one hour; `--group` batches make one transaction. Lines are generated
//! and parsed on a second thread, so the store is measured, not the generator: the insert rate
//! is records / time spent inside `ingest` (the end-to-end rate with generation is printed too).
//! The same records (one seed) go to each store.
//!
//! **The traffic**: `--jurisdictions` jurisdictions with 64 local hosts and one e-mail contact
//! each; remote addresses 80 % uniform over 64 public /16 networks (≈ 4 M addresses), 10 % from
//! 1,000 popular addresses (CDNs, resolvers), 0.2 % the actor's /24 (45.77.10.0/24) seen by 30
//! jurisdictions, a quarter of it from one address (45.77.10.66), the rest over 4 more /16s.
//!
//! **The hunts**: `--hunts` analyst indicators of each kind — one address (half popular, half
//! random background addresses) and one /24 (random background /24s) — each added through the
//! store and hunted with `Store::retro_hunt_next` (the search over every partition of the
//! window, then hits, one notification per hit and the cursor in one transaction). p50/p99 of
//! the whole hunt and of its search are printed; with 30 hunts p99 is close to the maximum.
//! On PostgreSQL the plan of the /24 search is printed (`EXPLAIN`) and checked to go through an
//! index on every partition it reads.
//!
//! `--compare-gist` (PostgreSQL): afterwards builds a GiST `inet_ops` index on `remote`, drops
//! the btree primary key, and times the same /24 and address searches (`remote <<= network`)
//! through GiST alone, on the throwaway bench database.
//!
//! Peak memory: this process's peak RSS (`VmHWM`); the database server's memory is its own
//! (PostgreSQL's shared_buffers is whatever the server is configured with; printed).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use ward_hub::ingest::{parse_line, ParsedEvent};
use ward_hub::model::{now_ms, Channel, JurisdictionKind, Millis, NewContact, NewJurisdiction};
use ward_hub::retro::{validate_indicator, HuntWindow, IndicatorRequest};
use ward_hub::store::postgres::PgStore;
use ward_hub::store::sqlite::SqliteStore;
use ward_hub::store::{CorrelationPolicy, IngestBatch, Store};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StoreKind {
    Sqlite,
    Postgres,
    Both,
}

#[derive(Debug, Parser)]
#[command(name = "bench-retrohunt", about = "contact record insert rate and retro-hunt latency on the SQLite and PostgreSQL stores")]
struct Args {
    /// Which store(s) to run; `both` runs SQLite then PostgreSQL on the same records.
    #[arg(long, value_enum, default_value_t = StoreKind::Both)]
    store: StoreKind,
    /// Contact records to store (the issue's national month: 100000000 ≈ 8,800 jurisdictions × 30 days).
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    #[arg(long, default_value_t = 100)]
    jurisdictions: u32,
    /// Days of history the records spread over (ending an hour ago).
    #[arg(long, default_value_t = 30)]
    days: i64,
    /// Records per sensor batch (one jurisdiction, one hour).
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Sensor batches per group commit (one transaction).
    #[arg(long, default_value_t = 10)]
    group: usize,
    /// Hunts of each kind (one address, one /24).
    #[arg(long, default_value_t = 30)]
    hunts: usize,
    /// PostgreSQL server on which a bench database is created and dropped.
    #[arg(long, default_value = "postgres://root@127.0.0.1:5432")]
    pg_server: String,
    /// An existing PostgreSQL database to use instead (never dropped).
    #[arg(long)]
    database: Option<String>,
    /// Where the SQLite store lives (kept); a temporary directory when left out.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Skip the fill when the store (`--dir`, `--database`) already holds records.
    #[arg(long)]
    reuse: bool,
    /// Keep the PostgreSQL bench database.
    #[arg(long)]
    keep: bool,
    /// Also time the searches through a GiST inet_ops index alone (PostgreSQL).
    #[arg(long)]
    compare_gist: bool,
}

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const HOUR: Millis = 3_600_000;
const ACTOR_NET: [u8; 3] = [45, 77, 10];
const ACTOR_IP: [u8; 4] = [45, 77, 10, 66];
const SEED: u64 = 0x9E37_79B9_7F4A_7C15;

fn eve_time(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%dT%H:%M:%S%.6f+0000").to_string()).unwrap_or_default()
}

/// The address space of the generated traffic (same seed, same space in every run).
struct Space {
    bg: Vec<[u8; 2]>,
    bg2: Vec<[u8; 2]>,
    popular: Vec<[u8; 4]>,
}

fn background_16s(rng: &mut Rng, n: usize) -> Vec<[u8; 2]> {
    let mut v = Vec::new();
    while v.len() < n {
        let a = (rng.below(200) + 11) as u8; // 11..=210: public unicast, away from 10/8 and 45/8
        if a == 45 || a == 100 || a == 127 || a == 169 || a == 172 || a == 192 || a == 198 || a == 203 {
            continue;
        }
        v.push([a, rng.below(256) as u8]);
    }
    v
}

impl Space {
    fn new(rng: &mut Rng) -> Space {
        let bg = background_16s(rng, 64);
        let bg2 = background_16s(rng, 4);
        let popular = (0..1000)
            .map(|_| {
                let n = bg[rng.below(bg.len() as u64) as usize];
                [n[0], n[1], rng.below(256) as u8, rng.below(256) as u8]
            })
            .collect();
        Space { bg, bg2, popular }
    }

    fn remote(&self, rng: &mut Rng, j: u32) -> [u8; 4] {
        let roll = rng.below(10_000);
        if roll < 20 && j < 30 {
            // The actor: 30 jurisdictions only; a quarter of its records from one address.
            let host = if rng.below(4) == 0 { ACTOR_IP[3] } else { rng.below(256) as u8 };
            [ACTOR_NET[0], ACTOR_NET[1], ACTOR_NET[2], host]
        } else if roll < 1_020 {
            self.popular[rng.below(self.popular.len() as u64) as usize]
        } else if roll < 9_020 {
            let n = self.bg[rng.below(self.bg.len() as u64) as usize];
            [n[0], n[1], rng.below(256) as u8, rng.below(256) as u8]
        } else {
            let n = self.bg2[rng.below(self.bg2.len() as u64) as usize];
            [n[0], n[1], rng.below(256) as u8, rng.below(256) as u8]
        }
    }
}

fn line(remote: [u8; 4], local: [u8; 4], port: u16, inbound: bool, first: Millis) -> String {
    let remote = Ipv4Addr::from(remote).to_string();
    let local = Ipv4Addr::from(local).to_string();
    let (src, dst) = if inbound { (&remote, &local) } else { (&local, &remote) };
    let proto = if port == 53 || port == 123 { "UDP" } else { "TCP" };
    let (first_s, last_s) = (eve_time(first), eve_time(first + 30_000));
    format!(
        r#"{{"event_type":"contact","timestamp":"{first_s}","src_ip":"{src}","dest_ip":"{dst}","dest_port":{port},"proto":"{proto}","contact":{{"remote_ip":"{remote}","local_ip":"{local}","port":{port},"proto":"{proto}","direction":"{dir}","first_seen":"{first_s}","last_seen":"{last_s}","flows":3,"pkts":42,"bytes":9000}}}}"#,
        dir = if inbound { "inbound" } else { "outbound" },
    )
}

/// One sensor batch of generated, parsed records: (jurisdiction index, events).
type Batch = (u32, Vec<ParsedEvent>);

/// Generates the whole fill in time order on this thread and sends groups of batches.
fn generate(args: &Args, now: Millis, tx: std::sync::mpsc::SyncSender<Vec<Batch>>) -> Result<()> {
    let mut rng = Rng(SEED);
    let space = Space::new(&mut rng);
    let batches = args.records.div_ceil(args.batch as u64).max(1);
    let hours = (args.days * 24).max(1) as u64;
    let start = now - args.days * 24 * HOUR - HOUR;
    let ports = [443u16, 80, 53, 22, 3389, 25, 123, 8443];
    let mut left = args.records;
    let mut group = Vec::with_capacity(args.group);
    for b in 0..batches {
        let hour_start = start + (b * hours / batches) as Millis * HOUR;
        let j = rng.below(args.jurisdictions as u64) as u32;
        let n = left.min(args.batch as u64) as usize;
        left -= n as u64;
        let mut events = Vec::with_capacity(n);
        for _ in 0..n {
            let remote = space.remote(&mut rng, j);
            let local = [10, (j / 256) as u8, (j % 256) as u8, rng.below(64) as u8 + 1];
            let first = hour_start + rng.below(HOUR as u64 - 60_000) as Millis;
            let text = line(remote, local, ports[rng.below(ports.len() as u64) as usize], rng.below(3) == 0, first);
            events.push(parse_line(text.as_bytes(), now).map_err(|e| format!("generated line rejected: {e}"))?);
        }
        group.push((j, events));
        if group.len() == args.group {
            if tx.send(std::mem::take(&mut group)).is_err() {
                return Ok(());
            }
        }
    }
    if !group.is_empty() {
        let _ = tx.send(group);
    }
    Ok(())
}

/// What a fill measured.
struct Filled {
    /// Wall-clock seconds inside `Store::ingest`.
    in_store: f64,
    /// Wall-clock seconds end to end (with generation).
    wall: f64,
    records: u64,
    /// CPU seconds of the thread calling `ingest` while inside it (the store's client side).
    client_cpu: f64,
}

/// Fills `store`.
fn fill(store: &dyn Store, args: &Args, jurisdiction_ids: &[i64], now: Millis) -> Result<Filled> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Batch>>(4);
    let started = Instant::now();
    let gen_args = Args { database: None, dir: None, ..clone_args(args) };
    let generator = std::thread::spawn(move || generate(&gen_args, now, tx));
    let policy = CorrelationPolicy::default();
    let mut in_store = 0.0;
    let mut client_cpu = 0.0;
    let mut done = 0u64;
    let mut seqs = vec![0i64; jurisdiction_ids.len()];
    let mut last_report = Instant::now();
    for group in rx {
        let batches: Vec<IngestBatch> = group
            .into_iter()
            .map(|(j, events)| {
                seqs[j as usize] += 1;
                IngestBatch { sensor_id: j as i64 + 1, jurisdiction_id: jurisdiction_ids[j as usize], seq: seqs[j as usize], events, rejected: vec![], rejected_total: 0 }
            })
            .collect();
        let n: usize = batches.iter().map(|b| b.events.len()).sum();
        let (t, cpu) = (Instant::now(), ward_bench::cpu::thread_cpu_secs());
        store.ingest(&batches, &policy, now)?;
        in_store += t.elapsed().as_secs_f64();
        client_cpu += ward_bench::cpu::thread_cpu_secs() - cpu;
        done += n as u64;
        if last_report.elapsed().as_secs() >= 30 {
            last_report = Instant::now();
            eprintln!("  filled {done} / {} ({:.0} records/s in the store, {:.0} end to end)", args.records, done as f64 / in_store, done as f64 / started.elapsed().as_secs_f64());
        }
    }
    generator.join().map_err(|_| "the generator thread panicked")??;
    Ok(Filled { in_store, wall: started.elapsed().as_secs_f64(), records: done, client_cpu })
}

fn clone_args(a: &Args) -> Args {
    Args {
        store: a.store,
        records: a.records,
        jurisdictions: a.jurisdictions,
        days: a.days,
        batch: a.batch,
        group: a.group,
        hunts: a.hunts,
        pg_server: a.pg_server.clone(),
        database: a.database.clone(),
        dir: a.dir.clone(),
        reuse: a.reuse,
        keep: a.keep,
        compare_gist: a.compare_gist,
    }
}

/// p-th percentile (nearest rank) of unsorted values.
fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<f64>().ok()))
        .map(|kib| kib / 1024.0)
        .unwrap_or(f64::NAN)
}

/// What one store measured, for the side-by-side summary.
#[derive(Default, Clone)]
struct Figures {
    name: String,
    insert_rate: f64,
    insert_per_cpu_s: f64,
    end_to_end_rate: f64,
    fill_s: f64,
    bytes_per_record: f64,
    ip_p50: f64,
    ip_p99: f64,
    net_p50: f64,
    net_p99: f64,
    ip_search_p50: f64,
    net_search_p50: f64,
    actor_net_ms: f64,
    actor_hits: usize,
}

/// The hunts: returns (kind, total ms, search ms, rows matched) per hunt.
fn hunts(store: &dyn Store, args: &Args, figures: &mut Figures) -> Result<()> {
    let mut rng = Rng(SEED);
    let space = Space::new(&mut rng);
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let window = HuntWindow::all();
    let mut used = BTreeSet::new();
    let mut hunt = |value: String| -> Result<Option<(f64, f64, usize, usize)>> {
        if !used.insert(value.clone()) {
            return Ok(None);
        }
        let req = IndicatorRequest { value: value.clone(), kind: None, description: "bench".into(), severity: None, expires: None };
        let new = validate_indicator(&req, now_ms())?;
        match store.add_analyst_indicator(&new, 0, now_ms()) {
            Ok(_) => {}
            Err(ward_hub::error::StoreError::Conflict(_)) => return Ok(None), // from an earlier --reuse run
            Err(e) => return Err(e.into()),
        }
        let t = Instant::now();
        let out = store.retro_hunt_next(&window, now_ms())?.ok_or("nothing to hunt")?;
        Ok(Some((t.elapsed().as_secs_f64() * 1000.0, out.search_ms, out.rows_scanned, out.hits)))
    };
    // The actor's /24 once (30 jurisdictions hit).
    if let Some((ms, _, rows, hits)) = hunt("45.77.10.0/24".into())? {
        figures.actor_net_ms = ms;
        figures.actor_hits = hits;
        println!("  hunt actor /24 45.77.10.0/24: {ms:.1} ms, {rows} records matched, {hits} jurisdictions hit");
    }
    for kind in ["address", "/24"] {
        let (mut total, mut search, mut rows) = (Vec::new(), Vec::new(), Vec::new());
        while total.len() < args.hunts {
            let value = if kind == "address" {
                let ip = if rng.below(2) == 0 {
                    space.popular[rng.below(space.popular.len() as u64) as usize]
                } else {
                    let n = space.bg[rng.below(space.bg.len() as u64) as usize];
                    [n[0], n[1], rng.below(256) as u8, rng.below(256) as u8]
                };
                Ipv4Addr::from(ip).to_string()
            } else {
                let n = space.bg[rng.below(space.bg.len() as u64) as usize];
                format!("{}.{}.{}.0/24", n[0], n[1], rng.below(256))
            };
            if let Some((ms, s, r, _)) = hunt(value)? {
                total.push(ms);
                search.push(s);
                rows.push(r as f64);
            }
        }
        let (p50, p99) = (percentile(&total, 50.0), percentile(&total, 99.0));
        println!(
            "  hunt one {kind}: p50 {p50:.1} ms, p99 {p99:.1} ms over {} random targets (search p50 {:.1} ms); records matched p50 {:.0}, max {:.0}",
            total.len(),
            percentile(&search, 50.0),
            percentile(&rows, 50.0),
            percentile(&rows, 100.0)
        );
        if kind == "address" {
            (figures.ip_p50, figures.ip_p99, figures.ip_search_p50) = (p50, p99, percentile(&search, 50.0));
        } else {
            (figures.net_p50, figures.net_p99, figures.net_search_p50) = (p50, p99, percentile(&search, 50.0));
        }
    }
    Ok(())
}

fn setup_jurisdictions(store: &dyn Store, n: u32, now: Millis) -> Result<Vec<i64>> {
    let mut ids = Vec::new();
    for j in 0..n {
        let new = NewJurisdiction { name: format!("County {j}"), kind: JurisdictionKind::County, state: Some("OH".into()), home_net: None };
        let id = store.create_jurisdiction(&new, now)?.id;
        store.create_contact(id, &NewContact { channel: Channel::Email, target: format!("it{j}@county{j}.example.gov"), secret: None }, now)?;
        ids.push(id);
    }
    Ok(ids)
}

/// Fills the store and reports the insert rate. `pg_database`: the PostgreSQL database, whose
/// backends' CPU time is read too (see `ward_bench::cpu`).
fn fill_and_report(store: &dyn Store, args: &Args, now: Millis, figures: &mut Figures, pg_database: Option<&str>) -> Result<()> {
    let ids = setup_jurisdictions(store, args.jurisdictions, now)?;
    eprintln!("{}: filling {} contact records across {} jurisdictions and {} days …", figures.name, args.records, args.jurisdictions, args.days);
    let pg_before = pg_database.map(ward_bench::cpu::PgCpu::snapshot);
    let f = fill(store, args, &ids, now)?;
    let pg_used = pg_database.zip(pg_before).map(|(db, before)| ward_bench::cpu::PgCpu::snapshot(db).since(&before));
    let (n, in_store, wall) = (f.records, f.in_store, f.wall);
    figures.insert_rate = n as f64 / in_store;
    figures.end_to_end_rate = n as f64 / wall;
    figures.fill_s = wall;
    println!(
        "  insert: {n} records, {:.0} records/s in the store ({in_store:.1} s inside ingest; {} records per batch, {} batches per transaction); {:.0} records/s end to end with generation and parsing ({wall:.1} s); machine: {}",
        figures.insert_rate, args.batch, args.group, figures.end_to_end_rate, ward_bench::hub_scale::machine()
    );
    // Per CPU-second: what the store costs, whatever else shares the machine.
    let cpu = f.client_cpu + pg_used.map_or(0.0, |u| u.total());
    figures.insert_per_cpu_s = n as f64 / cpu.max(1e-9);
    match pg_used {
        Some(u) => println!(
            "  cpu: store client {:.1} s + postgresql {:.1} s (backends {:.1} s, wal writer/checkpointer/bgwriter {:.1} s) = {:.0} records per cpu-second",
            f.client_cpu,
            u.total(),
            u.backends,
            u.background,
            figures.insert_per_cpu_s
        ),
        None => println!("  cpu: {:.1} s in the ingest thread (SQLite runs in it) = {:.0} records per cpu-second", f.client_cpu, figures.insert_per_cpu_s),
    }
    Ok(())
}

fn run_sqlite(args: &Args, now: Millis) -> Result<Figures> {
    let mut figures = Figures { name: "sqlite".into(), ..Default::default() };
    let tmp;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let db = dir.join("ward-hub.sqlite3");
    let reuse = args.reuse && db.exists();
    let store = Arc::new(SqliteStore::open_dir(&dir)?);
    println!("sqlite store {}", db.display());
    if !reuse {
        fill_and_report(store.as_ref(), args, now, &mut figures, None)?;
    }
    let conn = rusqlite::Connection::open(&db)?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    let file = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    let rows: i64 = conn.query_row("SELECT count(*) FROM contact_records", [], |r| r.get(0))?;
    let table: Option<i64> = conn
        .query_row("SELECT sum(pgsize) FROM dbstat WHERE name IN ('contact_records', 'contact_records_hour')", [], |r| r.get(0))
        .ok()
        .flatten();
    figures.bytes_per_record = table.unwrap_or(file as i64) as f64 / rows.max(1) as f64;
    println!(
        "  stored: {rows} contact records; database file {:.0} MB; contact table + index {:.1} bytes per record",
        file as f64 / 1e6,
        figures.bytes_per_record
    );
    hunts(store.as_ref(), args, &mut figures)?;
    println!("  peak RSS of this process so far: {:.0} MB", peak_rss_mb());
    Ok(figures)
}

/// A database created for this run and dropped at its end (unless kept).
struct BenchDb {
    server: String,
    name: String,
    keep: bool,
}

impl BenchDb {
    fn admin(server: &str) -> Result<postgres::Client> {
        Ok(postgres::Client::connect(&format!("{server}/test"), postgres::NoTls).or_else(|_| postgres::Client::connect(&format!("{server}/postgres"), postgres::NoTls))?)
    }

    fn create(server: &str, keep: bool) -> Result<BenchDb> {
        let name = format!("ward_bench_retrohunt_{:08x}", std::process::id() ^ (now_ms() as u32));
        // An identifier cannot be a parameter; the name is ours (a fixed prefix and hex digits).
        Self::admin(server)?.batch_execute(&format!("CREATE DATABASE {name}"))?;
        Ok(BenchDb { server: server.to_string(), name, keep })
    }

    fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("kept the bench database {}", self.url());
            return;
        }
        match Self::admin(&self.server).and_then(|mut c| Ok(c.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))?)) {
            Ok(()) => eprintln!("dropped the bench database {}", self.name),
            Err(e) => eprintln!("cannot drop the bench database {}: {e}", self.name),
        }
    }
}

fn run_postgres(args: &Args, now: Millis) -> Result<Figures> {
    let mut figures = Figures { name: "postgresql".into(), ..Default::default() };
    let (_db, url) = match &args.database {
        Some(url) => (None, url.clone()),
        None => {
            let db = BenchDb::create(&args.pg_server, args.keep)?;
            let url = db.url();
            (Some(db), url)
        }
    };
    let store = PgStore::connect(&url)?;
    let mut client = postgres::Client::connect(&url, postgres::NoTls)?;
    let shared_buffers: String = client.query_one("SHOW shared_buffers", &[])?.get(0);
    let version: String = client.query_one("SHOW server_version", &[])?.get(0);
    println!("postgresql {version} store (shared_buffers {shared_buffers}), database {}", url.rsplit('/').next().unwrap_or(""));
    let rows: i64 = client.query_one("SELECT count(*) FROM contact_records", &[])?.get(0);
    if !(args.reuse && rows > 0) {
        fill_and_report(&store, args, now, &mut figures, url.rsplit('/').next())?;
    }
    client.batch_execute("ANALYZE contact_records")?;
    let rows: i64 = client.query_one("SELECT count(*) FROM contact_records", &[])?.get(0);
    let size: i64 = client
        .query_one(
            "SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0)::bigint FROM pg_inherits WHERE inhparent = 'contact_records'::regclass",
            &[],
        )?
        .get(0);
    let partitions = store.contact_partition_days()?.len();
    figures.bytes_per_record = size as f64 / rows.max(1) as f64;
    println!(
        "  stored: {rows} contact records in {partitions} daily partitions; table + primary key {:.0} MB = {:.1} bytes per record",
        size as f64 / 1e6,
        figures.bytes_per_record
    );
    let to_hour = now.div_euclid(HOUR) + 1;
    let plan = store.explain_contact_search(IpAddr::V4(Ipv4Addr::new(45, 77, 10, 0)), 24, 0, to_hour)?;
    println!("  plan of the /24 search:\n{}", plan.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n"));
    // One line per partition read (a bitmap heap scan's own index scan line is not counted).
    let reads: Vec<&str> = plan.lines().filter(|l| l.contains(" on contact_records_") && !l.contains("Bitmap Index Scan")).collect();
    let scans = reads.len();
    let indexed = reads.iter().filter(|l| l.contains("Index Scan") || l.contains("Index Only Scan") || l.contains("Bitmap Heap")).count();
    println!("  {indexed} of {scans} partitions in the plan are read through their primary key index{}", if indexed == scans { "" } else { " (NOT ALL: check the plan)" });
    hunts(&store, args, &mut figures)?;
    if args.compare_gist {
        compare_gist(&mut client)?;
    }
    println!("  peak RSS of this process so far: {:.0} MB", peak_rss_mb());
    drop(store);
    Ok(figures)
}

/// Times the address and /24 searches through a GiST inet_ops index alone (the btree primary
/// key is dropped first: this ruins the bench database for the store, which is dropped next).
fn compare_gist(client: &mut postgres::Client) -> Result<()> {
    let search = "SELECT count(*), coalesce(sum(bytes), 0)::bigint FROM contact_records WHERE remote <<= $1::text::inet";
    let mut rng = Rng(SEED);
    let space = Space::new(&mut rng);
    let mut rng = Rng(0x5EED_0F_61_57);
    let targets = |rng: &mut Rng, net: bool| -> Vec<String> {
        (0..30)
            .map(|_| {
                let n = space.bg[rng.below(space.bg.len() as u64) as usize];
                if net {
                    format!("{}.{}.{}.0/24", n[0], n[1], rng.below(256))
                } else {
                    format!("{}.{}.{}.{}", n[0], n[1], rng.below(256), rng.below(256))
                }
            })
            .collect()
    };
    let time = |client: &mut postgres::Client, label: &str, values: &[String]| -> Result<()> {
        let st = client.prepare(search)?;
        let mut ms = Vec::new();
        for v in values {
            let t = Instant::now();
            client.query_one(&st, &[v])?;
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        println!("  {label}: p50 {:.1} ms, p99 {:.1} ms over {} searches", percentile(&ms, 50.0), percentile(&ms, 99.0), ms.len());
        Ok(())
    };
    let (ips, nets) = (targets(&mut rng, false), targets(&mut rng, true));
    time(client, "btree (primary key), remote <<= address", &ips)?;
    time(client, "btree (primary key), remote <<= /24", &nets)?;
    let t = Instant::now();
    client.batch_execute("CREATE INDEX contact_records_remote_gist ON contact_records USING gist (remote inet_ops)")?;
    let build = t.elapsed().as_secs_f64();
    let size: i64 = client
        .query_one(
            "SELECT coalesce(sum(pg_relation_size(i.indexrelid)), 0)::bigint FROM pg_index i JOIN pg_inherits h ON h.inhrelid = i.indrelid \
             WHERE h.inhparent = 'contact_records'::regclass AND i.indexrelid::regclass::text LIKE '%remote%'",
            &[],
        )?
        .get(0);
    println!("  gist inet_ops index built in {build:.1} s, {:.0} MB", size as f64 / 1e6);
    client.batch_execute("ALTER TABLE contact_records DROP CONSTRAINT contact_records_pkey; ANALYZE contact_records")?;
    time(client, "gist inet_ops alone, remote <<= address", &ips)?;
    time(client, "gist inet_ops alone, remote <<= /24", &nets)?;
    let plan: Vec<String> = client.query(&format!("EXPLAIN {search}"), &[&nets[0]])?.iter().map(|r| r.get(0)).collect();
    let gist_used = plan.iter().any(|l| l.contains("remote_idx") || l.contains("remote_gist"));
    println!("  the /24 search plan without the btree uses the gist index: {gist_used}");
    for l in plan.iter().take(6) {
        println!("    {l}");
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.batch == 0 || args.group == 0 || args.jurisdictions == 0 {
        return Err("--batch, --group and --jurisdictions must be at least 1".into());
    }
    let now = now_ms();
    let mut all = Vec::new();
    if matches!(args.store, StoreKind::Sqlite | StoreKind::Both) {
        all.push(run_sqlite(&args, now)?);
    }
    if matches!(args.store, StoreKind::Postgres | StoreKind::Both) {
        all.push(run_postgres(&args, now)?);
    }
    println!("\nsummary ({} records, {} jurisdictions, {} days; hunts over all of them):", args.records, args.jurisdictions, args.days);
    println!(
        "  {:<11} {:>12} {:>13} {:>10} {:>12} {:>12} {:>12} {:>12} {:>10}",
        "store", "insert rec/s", "rec/cpu-s", "bytes/rec", "ip p50 ms", "ip p99 ms", "/24 p50 ms", "/24 p99 ms", "actor /24"
    );
    for f in &all {
        println!(
            "  {:<11} {:>12.0} {:>13.0} {:>10.1} {:>12.1} {:>12.1} {:>12.1} {:>12.1} {:>7.1} ms",
            f.name, f.insert_rate, f.insert_per_cpu_s, f.bytes_per_record, f.ip_p50, f.ip_p99, f.net_p50, f.net_p99, f.actor_net_ms
        );
    }
    println!("  machine: {}", ward_bench::hub_scale::machine());
    if let [s, p] = all.as_slice() {
        println!(
            "  postgresql / sqlite: insert {:.2}×, ip p50 {:.2}×, /24 p50 {:.2}× (above 1: postgresql takes longer / inserts faster)",
            p.insert_rate / s.insert_rate,
            p.ip_p50 / s.ip_p50,
            p.net_p50 / s.net_p50
        );
    }
    println!("peak RSS of this process: {:.0} MB", peak_rss_mb());
    Ok(())
}
