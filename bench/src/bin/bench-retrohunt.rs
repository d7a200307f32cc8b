//! `bench-retrohunt`: how long the hub's retro-hunt takes over millions of contact records, and
//! how fast contact records are stored.
//!
//! ```text
//! cargo run --release -p ward-bench --bin bench-retrohunt -- [--records 10000000] [--jurisdictions 100]
//!     [--batch 5000] [--runs 3] [--dir DIR] [--reuse]
//! ```
//!
//! The store is the hub's real SQLite store (WAL, `synchronous=FULL`) in `--dir` (a temporary
//! directory by default). It is filled through [`Store::ingest`] — the same group-commit path
//! sensor batches take after HTTP — with NDJSON `contact` lines exactly as ward-sensor's hubsink
//! writes them (each line parsed and validated by `ingest::parse_line`), `--batch` records per
//! batch and one transaction per batch, sorted by hour and remote address within a batch as a
//! sensor flushes them. Insert throughput is records/s over the whole fill.
//!
//! The traffic: `--jurisdictions` jurisdictions with 64 local hosts each and one e-mail contact;
//! contact times spread over the 30 days before now; remote addresses
//! * 80 % background: uniform over 64 public /16 networks (≈ 4 M addresses),
//! * 10 % popular: 1,000 addresses (CDNs, resolvers), ≈ 1,000 records each at 10 M,
//! * 0.2 % the actor: one /24 (45.77.10.0/24) seen by 30 jurisdictions, a quarter of it from
//!   one address (45.77.10.66),
//! * the rest a second background over 4 more /16s.
//!
//! Then three analyst indicators are hunted (`Store::retro_hunt_next`: the search on a reader,
//! then hits, one notification per hit and the cursor in one transaction): the actor's /24, the
//! actor's address, and a background /24. Each hunt runs `--runs` times (the hits, notifications
//! and cursor are reset in between) and the median is printed with the [min – max] spread.
//! With `--reuse` and an existing `--dir`, the fill is skipped.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use ward_bench::measure::Spread;
use ward_hub::ingest::parse_line;
use ward_hub::model::{now_ms, Channel, JurisdictionKind, Millis, NewContact, NewJurisdiction};
use ward_hub::retro::{validate_indicator, HuntWindow, IndicatorRequest};
use ward_hub::store::sqlite::SqliteStore;
use ward_hub::store::{CorrelationPolicy, IngestBatch, Store};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Debug, Parser)]
#[command(name = "bench-retrohunt", about = "retro-hunt time over millions of contact records, and contact insert throughput")]
struct Args {
    #[arg(long, default_value_t = 10_000_000)]
    records: u64,
    #[arg(long, default_value_t = 100)]
    jurisdictions: u32,
    #[arg(long, default_value_t = 5_000)]
    batch: usize,
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Where the store lives (kept); a temporary directory when left out.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Skip the fill when `--dir` already holds a filled store.
    #[arg(long)]
    reuse: bool,
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

fn eve_time(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%dT%H:%M:%S%.6f+0000").to_string()).unwrap_or_default()
}

/// One contact record: (jurisdiction index, remote, local, port, inbound, first, last).
struct Rec {
    j: u32,
    remote: [u8; 4],
    local: [u8; 4],
    port: u16,
    inbound: bool,
    first: Millis,
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

fn gen(rng: &mut Rng, jurisdictions: u32, bg: &[[u8; 2]], bg2: &[[u8; 2]], popular: &[[u8; 4]], now: Millis) -> Rec {
    let j = rng.below(jurisdictions as u64) as u32;
    let roll = rng.below(10_000);
    let remote = if roll < 20 {
        // The actor: 30 jurisdictions only; a quarter of its records from one address.
        let host = if rng.below(4) == 0 { ACTOR_IP[3] } else { rng.below(256) as u8 };
        [ACTOR_NET[0], ACTOR_NET[1], ACTOR_NET[2], host]
    } else if roll < 1_020 {
        popular[rng.below(popular.len() as u64) as usize]
    } else if roll < 9_020 {
        let n = bg[rng.below(bg.len() as u64) as usize];
        [n[0], n[1], rng.below(256) as u8, rng.below(256) as u8]
    } else {
        let n = bg2[rng.below(bg2.len() as u64) as usize];
        [n[0], n[1], rng.below(256) as u8, rng.below(256) as u8]
    };
    let j = if remote[..3] == ACTOR_NET { j % 30 } else { j };
    let local = [10, (j / 256) as u8, (j % 256) as u8, rng.below(64) as u8 + 1];
    let ports = [443u16, 80, 53, 22, 3389, 25, 123, 8443];
    let first = now - 24 * HOUR - rng.below(30 * 24 * HOUR as u64) as Millis;
    Rec { j, remote, local, port: ports[rng.below(ports.len() as u64) as usize], inbound: rng.below(3) == 0, first }
}

fn line(r: &Rec) -> String {
    let remote = std::net::Ipv4Addr::from(r.remote).to_string();
    let local = std::net::Ipv4Addr::from(r.local).to_string();
    let (src, dst) = if r.inbound { (&remote, &local) } else { (&local, &remote) };
    let proto = if r.port == 53 || r.port == 123 { "UDP" } else { "TCP" };
    let (first, last) = (eve_time(r.first), eve_time(r.first + 30_000));
    format!(
        r#"{{"event_type":"contact","timestamp":"{first}","src_ip":"{src}","dest_ip":"{dst}","dest_port":{port},"proto":"{proto}","contact":{{"remote_ip":"{remote}","local_ip":"{local}","port":{port},"proto":"{proto}","direction":"{dir}","first_seen":"{first}","last_seen":"{last}","flows":3,"pkts":42,"bytes":9000}}}}"#,
        port = r.port,
        dir = if r.inbound { "inbound" } else { "outbound" },
    )
}

fn fill(store: &SqliteStore, args: &Args, jurisdiction_ids: &[i64], now: Millis) -> Result<(f64, u64)> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let bg = background_16s(&mut rng, 64);
    let bg2 = background_16s(&mut rng, 4);
    let popular: Vec<[u8; 4]> = (0..1000)
        .map(|_| {
            let n = bg[rng.below(bg.len() as u64) as usize];
            [n[0], n[1], rng.below(256) as u8, rng.below(256) as u8]
        })
        .collect();
    let policy = CorrelationPolicy::default();
    let started = Instant::now();
    let mut done = 0u64;
    let mut seq = 0i64;
    let mut last_report = Instant::now();
    while done < args.records {
        let n = (args.records - done).min(args.batch as u64) as usize;
        let mut recs: Vec<Rec> = (0..n).map(|_| gen(&mut rng, args.jurisdictions, &bg, &bg2, &popular, now)).collect();
        // A sensor flushes a finished hour in (hour, remote, …) order; a batch here mixes sensors,
        // so sort by remote only.
        recs.sort_by_key(|r| (r.remote, r.j));
        // One batch per jurisdiction present, all committed in one group (as the hub's writer does).
        let mut by_j: std::collections::BTreeMap<u32, Vec<ward_hub::ingest::ParsedEvent>> = Default::default();
        for r in &recs {
            let ev = parse_line(line(r).as_bytes(), now).map_err(|e| format!("generated line rejected: {e}"))?;
            by_j.entry(r.j).or_default().push(ev);
        }
        seq += 1;
        let batches: Vec<IngestBatch> = by_j
            .into_iter()
            .map(|(j, events)| IngestBatch {
                sensor_id: j as i64 + 1,
                jurisdiction_id: jurisdiction_ids[j as usize],
                seq,
                events,
                rejected: vec![],
                rejected_total: 0,
            })
            .collect();
        store.ingest(&batches, &policy, now)?;
        done += n as u64;
        if last_report.elapsed().as_secs() >= 30 {
            last_report = Instant::now();
            eprintln!("  filled {done} / {} ({:.0} records/s)", args.records, done as f64 / started.elapsed().as_secs_f64());
        }
    }
    Ok((started.elapsed().as_secs_f64(), done))
}

fn main() -> Result<()> {
    let args = Args::parse();
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
    let now = now_ms();
    if !reuse {
        let mut ids = Vec::new();
        for j in 0..args.jurisdictions {
            let new = NewJurisdiction { name: format!("County {j}"), kind: JurisdictionKind::County, state: Some("OH".into()), home_net: None };
            let id = store.create_jurisdiction(&new, now)?.id;
            store.create_contact(id, &NewContact { channel: Channel::Email, target: format!("it{j}@county{j}.example.gov"), secret: None }, now)?;
            ids.push(id);
        }
        eprintln!("filling {} contact records across {} jurisdictions into {} …", args.records, args.jurisdictions, db.display());
        let (secs, n) = fill(&store, &args, &ids, now)?;
        println!("insert: {n} contact records in {secs:.1} s = {:.0} records/s (parse + validate + store, {} records per transaction, synchronous=FULL)", n as f64 / secs, args.batch);
    }
    let conn = rusqlite::Connection::open(&db)?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    let file = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    // Per-table size when SQLite was built with the dbstat table.
    let table: Option<i64> = conn
        .query_row("SELECT sum(pgsize) FROM dbstat WHERE name IN ('contact_records', 'contact_records_hour')", [], |r| r.get(0))
        .ok()
        .flatten();
    let rows: i64 = conn.query_row("SELECT count(*) FROM contact_records", [], |r| r.get(0))?;
    println!("contact records stored: {rows}; database file {:.0} MB", file as f64 / 1e6);
    if let Some(t) = table {
        println!("contact table + index: {:.0} MB = {:.1} bytes per record", t as f64 / 1e6, t as f64 / rows.max(1) as f64);
    }

    let cases = [
        ("actor /24", "45.77.10.0/24"),
        ("actor address", "45.77.10.66"),
        ("background /24", "0.0.0.0/24"), // replaced below by a real background network
    ];
    // A background /24 that exists: the network of some stored record outside the actor's.
    let bg_net: String = conn.query_row(
        "SELECT remote FROM contact_records WHERE remote > x'30000000' AND length(remote) = 4 LIMIT 1",
        [],
        |r| {
            let b: Vec<u8> = r.get(0)?;
            Ok(format!("{}.{}.{}.0/24", b[0], b[1], b[2]))
        },
    )?;
    let window = HuntWindow::all();
    for (name, value) in cases {
        let value = if name == "background /24" { bg_net.as_str() } else { value };
        let req = IndicatorRequest { value: value.into(), kind: None, description: format!("bench {name}"), severity: None, expires: None };
        let new = validate_indicator(&req, now_ms())?;
        // Reuse: the indicator may exist from an earlier run of this binary.
        let existing: Option<i64> = conn
            .query_row("SELECT add_seq FROM analyst_indicators WHERE kind = ?1 AND value = ?2", rusqlite::params![new.kind, new.value], |r| r.get(0))
            .ok();
        let seq = match existing {
            Some(s) => s,
            None => store.add_analyst_indicator(&new, 0, now_ms())?.seq,
        };
        let mut times = Vec::new();
        let mut searches = Vec::new();
        let mut last = None;
        for _ in 0..args.runs {
            conn.execute_batch("DELETE FROM retro_hits; DELETE FROM notifications;")?;
            conn.execute("UPDATE retro_cursor SET seq = ?1", [seq - 1])?;
            let t = Instant::now();
            let out = store.retro_hunt_next(&window, now_ms())?.ok_or("nothing to hunt")?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            searches.push(out.search_ms);
            last = Some(out);
        }
        let (Some(s), Some(search), Some(out)) = (Spread::of(&times), Spread::of(&searches), last) else { continue };
        println!(
            "retro-hunt {name} ({value}): median {:.1} ms [{:.1} – {:.1}] over {} runs (search {:.1} ms, commit {:.1} ms); {} contact records matched, {} jurisdictions hit, {} notifications",
            s.median, s.min, s.max, args.runs, search.median, (s.median - search.median).max(0.0), out.rows_scanned, out.hits, out.notifications
        );
    }
    Ok(())
}
