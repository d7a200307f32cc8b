//! `bench-spool`: the sensor's on-disk spool and its relay to a hub.
//!
//! ```text
//! cargo run --release -p ward-bench --bin bench-spool -- [--records 200000] [--fsync-records 3000]
//!     [--relay-events 100000] [--runs 3] [--dir DIR] [--skip-relay]
//! ```
//!
//! * **append**: EVE alert lines (about 600 bytes, varied) appended one by one to a fresh spool
//!   in `--dir` (default: the system temp directory; it must be a real disk for fsync figures to
//!   mean anything), for each fsync policy: every record (`--fsync-records` records, fsync is
//!   slow), every 500 ms (the default) and never. The clock stops after a final flush.
//!   Reports records/s and MB/s of payload.
//! * **relay**: a real `ward hub` (the library's `start`, SQLite with `synchronous=FULL`) on
//!   127.0.0.1 in this process, a sensor enrolled through the API, `--relay-events` events
//!   spooled first, then the relay with its default batching (2000 events, gzip) started; the
//!   clock runs until the hub has acknowledged every event. Reports events/s. The hub's
//!   per-sensor rate limit is raised so the figure is the relay's and the hub's, not the limit.
//!
//! Each figure is the median of `--runs` runs (fresh spool, fresh hub) with [min – max].

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use ward_bench::measure::Spread;
use ward_sensor::relay::{self, Relay, RelayConfig};
use ward_sensor::spool::{FsyncPolicy, Spool, SpoolConfig};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Parser)]
#[command(name = "bench-spool", about = "spool append throughput per fsync policy, and relay throughput to a local hub")]
struct Args {
    /// Records appended per run for the interval and never policies.
    #[arg(long, default_value_t = 200_000)]
    records: usize,
    /// Records appended per run with fsync after every record.
    #[arg(long, default_value_t = 3_000)]
    fsync_records: usize,
    /// Events relayed per run.
    #[arg(long, default_value_t = 100_000)]
    relay_events: usize,
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Where the spools are created (a temporary directory inside it).
    #[arg(long)]
    dir: Option<PathBuf>,
    #[arg(long)]
    skip_relay: bool,
}

/// Realistic EVE alert lines of varying content and length.
fn eve_line(i: usize) -> Vec<u8> {
    let dest_port = [80, 443, 53, 22][i % 4];
    serde_json::json!({
        "timestamp": format!("2026-11-22T01:{:02}:{:02}.{:06}+0000", (i / 60) % 60, i % 60, i % 1_000_000),
        "flow_id": 1_000_000_000_000u64 + i as u64 * 7919,
        "in_iface": "eth1",
        "event_type": "alert",
        "src_ip": format!("45.33.{}.{}", (i / 251) % 256, i % 251),
        "src_port": 40000 + (i % 20000),
        "dest_ip": format!("10.1.{}.{}", (i / 97) % 8, i % 97),
        "dest_port": dest_port,
        "proto": "TCP",
        "community_id": format!("1:{:016x}{:012x}=", i.wrapping_mul(2654435761), i),
        "alert": {
            "action": "allowed", "gid": 1, "signature_id": 2_010_000 + (i % 300), "rev": 3,
            "signature": format!("ET SCAN Suspicious inbound to voter registration portal {}", i % 300),
            "category": "Attempted Information Leak", "severity": 2
        },
        "http": {"hostname": "vote.county.example.gov", "url": format!("/register?id={}&q={}", i, "x".repeat(i % 120)), "http_method": "POST", "status": 200},
        "app_proto": "http",
        "flow": {"pkts_toserver": 5 + i % 9, "pkts_toclient": 4 + i % 7, "bytes_toserver": 600 + i % 900, "bytes_toclient": 1200 + i % 3000, "start": "2026-11-22T01:02:03.000000+0000"}
    })
    .to_string()
    .into_bytes()
}

fn bench_append(base: &Path, policy: FsyncPolicy, lines: &[Vec<u8>]) -> Result<(f64, f64), BoxError> {
    let dir = tempfile::tempdir_in(base)?;
    let config = SpoolConfig { fsync: policy, max_bytes: 16 << 30, ..SpoolConfig::default() };
    let spool = Spool::open(dir.path(), config)?;
    let bytes: usize = lines.iter().map(Vec::len).sum();
    let start = Instant::now();
    for line in lines {
        spool.append(line)?;
    }
    spool.flush()?;
    let secs = start.elapsed().as_secs_f64();
    Ok((lines.len() as f64 / secs, bytes as f64 / secs / 1e6))
}

fn bench_relay(base: &Path, events: usize, rt: &tokio::runtime::Runtime) -> Result<f64, BoxError> {
    let hub_dir = tempfile::tempdir_in(base)?;
    let mut config =
        ward_hub::HubConfig { data_dir: hub_dir.path().to_path_buf(), listen: "127.0.0.1:0".parse()?, ..Default::default() };
    config.limits.sensor_batches_per_sec = 100_000.0;
    let hub = rt.block_on(ward_hub::start(config)).map_err(|e| e.to_string())?;
    let store = hub.state.store.clone();
    let j = store.create_jurisdiction(
        &ward_hub::model::NewJurisdiction {
            name: "Bench County".into(),
            kind: ward_hub::model::JurisdictionKind::County,
            state: Some("OH".into()),
            home_net: None,
        },
        ward_hub::model::now_ms(),
    )?;
    let token = ward_hub::auth::random_token("wet");
    let now = ward_hub::model::now_ms();
    store.create_enrollment_token(j.id, &ward_hub::auth::hash_token(&token), now, now + 60_000)?;
    let cred = rt.block_on(relay::enroll(&hub.url(), &token, None, "bench-sensor"))?;

    let spool_dir = tempfile::tempdir_in(base)?;
    let spool = Spool::open(spool_dir.path(), SpoolConfig::default())?;
    for i in 0..events {
        spool.append(&eve_line(i))?;
    }
    spool.flush()?;
    let start = Instant::now();
    let relay = Relay::spawn(spool, RelayConfig::new(cred))?;
    if !relay.wait_drained(Duration::from_secs(600)) {
        return Err("relay did not drain the spool within 600 s".into());
    }
    let secs = start.elapsed().as_secs_f64();
    let stats = relay.stats();
    relay.shutdown();
    rt.block_on(hub.shutdown());
    if stats.events_acked != events as u64 {
        return Err(format!("hub acknowledged {} of {events} events", stats.events_acked).into());
    }
    Ok(events as f64 / secs)
}

fn show(label: &str, unit: &str, values: &[f64]) {
    if let Some(s) = Spread::of(values) {
        println!("{label:<34} {:>12.0} {unit}  [{:.0} – {:.0}]", s.median, s.min, s.max);
    }
}

fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base)?;
    let runs = args.runs.max(1);
    println!("bench-spool: {runs} runs each, medians [min – max]; spool directory under {}", base.display());
    let lines: Vec<Vec<u8>> = (0..args.records.max(args.fsync_records)).map(eve_line).collect();
    let avg = lines.iter().map(Vec::len).sum::<usize>() as f64 / lines.len().max(1) as f64;
    println!("records: EVE alert lines, {avg:.0} bytes on average");
    let policies = [
        ("fsync every record", FsyncPolicy::EveryRecord, args.fsync_records),
        ("fsync every 500 ms", FsyncPolicy::Interval(Duration::from_millis(500)), args.records),
        ("fsync never", FsyncPolicy::Never, args.records),
    ];
    for (label, policy, n) in policies {
        let mut rps = Vec::new();
        let mut mbps = Vec::new();
        for _ in 0..runs {
            let (r, m) = bench_append(&base, policy, &lines[..n])?;
            rps.push(r);
            mbps.push(m);
        }
        println!("append, {label} ({n} records)");
        show("  records/s", "records/s", &rps);
        let s = Spread::of(&mbps).unwrap_or(Spread { median: 0.0, min: 0.0, max: 0.0 });
        println!("  {:<32} {:>12.1} MB/s       [{:.1} – {:.1}]", "payload", s.median, s.min, s.max);
    }
    if !args.skip_relay {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let mut eps = Vec::new();
        for _ in 0..runs {
            eps.push(bench_relay(&base, args.relay_events, &rt)?);
        }
        println!("relay to a local hub ({} events, batches of 2000, gzip, SQLite synchronous=FULL)", args.relay_events);
        show("  events/s acknowledged", "events/s", &eps);
    }
    Ok(())
}
