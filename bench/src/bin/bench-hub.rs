//! `bench-hub`: the two figures of the hub — ingest throughput and time to warn.
//!
//! ```text
//! cargo run --release -p ward-bench --bin bench-hub -- ingest [--sensors 32] [--batch 2000] [--seconds 10] [--runs 3] [--gzip]
//! cargo run --release -p ward-bench --bin bench-hub -- warn [--jurisdictions 50] [--campaigns 30] [--runs 3] [--load 16]
//! cargo run --release -p ward-bench --bin bench-hub -- all        # both, defaults
//!
//! # at scale: real `ward hub serve` processes, either store, 1–3 replicas behind HAProxy
//! bench-hub national  --database sqlite|postgres://root@127.0.0.1:5432/test [--replicas 1..3]
//!                     [--jurisdictions 8800] [--sensors 10000] [--seconds 60] [--runs 3] [--burst 300]
//! bench-hub agreement --database postgres://… [--replicas 3] [--spray 12] [--trials 20]   # --trials 1000 for the figure
//! bench-hub failover  --database postgres://… [--replicas 3] [--seconds 40] [--kill-at 10]
//! bench-hub scale     --postgres postgres://… [national options]   # SQLite × 1, PostgreSQL × 1 and × 3 side by side
//! ```
//!
//! The scale scenarios (national load with a 300-jurisdiction burst, replica agreement,
//! failover) are described in `ward_bench::hub_scale`; the deployment (processes, HAProxy,
//! fresh databases) in `ward_bench::hub_deploy`. They need the `ward` binary next to this one
//! (`cargo build -p ward`, same profile) or `--ward PATH`, and `haproxy` on the PATH for more
//! than one replica.
//!
//! Everything is real and on loopback: a `ward hub` (the library's `start`, the same code as
//! `ward hub serve`) with the SQLite store (WAL, `synchronous=FULL`) in a temporary directory,
//! on its own tokio runtime; sensors are HTTP clients on another runtime; webhook receivers are
//! an HTTP server that verifies every HMAC signature.
//!
//! * **ingest**: `--sensors` concurrent sensors, each posting NDJSON batches of `--batch` real
//!   Suricata EVE lines (the oracle set in `../shared/data/oracle/zeek`, every event type,
//!   alerts included) one after another with idempotency keys, as the forwarder does, for
//!   `--seconds`. Reports events/s acknowledged (= durable) and p50/p99 acknowledgement latency.
//! * **warn**: `--jurisdictions` jurisdictions, each with a webhook contact, and a campaign
//!   threshold K equal to that number. Per campaign a fresh actor address is reported by K−1
//!   jurisdictions; the clock starts when the K-th jurisdiction's sensor sends the sighting that
//!   opens the campaign, and each receiver notes when its verified `targeted` notification
//!   arrives. Reports the per-notification latency and the time until *every* jurisdiction was
//!   warned, p50/p99 over `--campaigns` campaigns. With `--load N`, N more sensors post bulk
//!   EVE batches without pause during the whole measurement (the hub saturated by ingest).
//!
//! Each run starts a fresh hub on a fresh store. The summary is the **median** over `--runs`
//! runs with the [min – max] spread.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use clap::{Parser, Subcommand};
use ward_bench::{hub_deploy, hub_scale};
use ward_hub::model::{now_ms, Channel, JurisdictionKind, NewContact, NewJurisdiction};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, BoxError>;

#[derive(Debug, Parser)]
#[command(name = "bench-hub", version, about = "ward hub: ingest throughput, time to warn, and national scale on either store with 1-3 replicas")]
struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, Subcommand)]
enum What {
    /// Events/s and acknowledgement latency with many concurrent sensors.
    Ingest(IngestArgs),
    /// Time from the sighting that opens a campaign to every jurisdiction's webhook.
    Warn(WarnArgs),
    /// Both, with their defaults.
    All,
    /// National load on real `ward hub serve` processes: 8,800 jurisdictions, 10,000 sensors,
    /// sustained events/s, ack p50/p99, and time to warn for a 300-jurisdiction burst.
    National(NationalCli),
    /// Replicas agreeing: sightings of one actor sprayed across replicas at once, per trial
    /// exactly one campaign and one warning per contact.
    Agreement(AgreementCli),
    /// kill -9 of one replica under load: nothing acknowledged lost, no warning lost or doubled.
    Failover(FailoverCli),
    /// National load on SQLite × 1, PostgreSQL × 1 and PostgreSQL × 3 in one run, side by side.
    Scale(ScaleCli),
}

#[derive(Debug, Clone, clap::Args)]
struct NationalCli {
    /// `sqlite` (a temporary data directory) or `postgres://USER@HOST[:PORT]/DB`: a server and a
    /// database to connect to for creating a fresh `ward_bench_*` database (dropped after).
    #[arg(long, default_value = "sqlite")]
    database: String,
    /// `ward hub serve` processes (PostgreSQL only for more than one), behind HAProxy.
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    #[command(flatten)]
    load: LoadCli,
}

#[derive(Debug, Clone, clap::Args)]
struct LoadCli {
    #[arg(long, default_value_t = 8800)]
    jurisdictions: usize,
    /// Sensors (sensor s belongs to jurisdiction s mod --jurisdictions); enrolled through the API.
    #[arg(long, default_value_t = 10_000)]
    sensors: usize,
    /// Lines per batch (86 % contact records, 3 % alerts, 7 % anomalies).
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Requests in flight (the multiplexed client: sensors take turns on these).
    #[arg(long, default_value_t = 48)]
    connections: usize,
    /// Seconds of load per run.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Jurisdictions the burst's actor touches.
    #[arg(long, default_value_t = 300)]
    burst: usize,
    /// Seconds the burst is spread over.
    #[arg(long, default_value_t = 50.0)]
    burst_secs: f64,
    /// The `ward` binary (default: next to this one).
    #[arg(long)]
    ward: Option<PathBuf>,
    /// Directory of EVE files the anomaly lines come from.
    #[arg(long)]
    eve: Option<PathBuf>,
}

#[derive(Debug, Clone, clap::Args)]
struct AgreementCli {
    #[arg(long)]
    database: String,
    #[arg(long, default_value_t = 3)]
    replicas: usize,
    /// Jurisdictions sighting the actor at once in each trial.
    #[arg(long, default_value_t = 12)]
    spray: usize,
    #[arg(long, default_value_t = 20)]
    trials: usize,
    #[arg(long)]
    ward: Option<PathBuf>,
}

#[derive(Debug, Clone, clap::Args)]
struct FailoverCli {
    #[arg(long)]
    database: String,
    #[arg(long, default_value_t = 3)]
    replicas: usize,
    /// Jurisdictions, one sensor each.
    #[arg(long, default_value_t = 200)]
    jurisdictions: usize,
    #[arg(long, default_value_t = 500)]
    batch: usize,
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 40)]
    seconds: u64,
    /// Second at which replica 0 is killed with SIGKILL.
    #[arg(long, default_value_t = 10)]
    kill_at: u64,
    /// The webhook receiver answers after this long, so deliveries are in flight at the kill.
    #[arg(long, default_value_t = 200)]
    hook_delay_ms: u64,
    #[arg(long)]
    ward: Option<PathBuf>,
    #[arg(long)]
    eve: Option<PathBuf>,
}

#[derive(Debug, Clone, clap::Args)]
struct ScaleCli {
    /// The PostgreSQL server (as `national --database`).
    #[arg(long)]
    postgres: String,
    /// Replica counts on PostgreSQL.
    #[arg(long, value_delimiter = ',', default_value = "1,3")]
    replicas: Vec<usize>,
    #[command(flatten)]
    load: LoadCli,
}

fn national_args(database: &str, replicas: usize, l: &LoadCli) -> Result<hub_scale::NationalArgs> {
    Ok(hub_scale::NationalArgs {
        database: hub_deploy::StoreKind::parse(database)?,
        replicas,
        jurisdictions: l.jurisdictions,
        sensors: l.sensors.max(l.jurisdictions),
        batch: l.batch,
        connections: l.connections,
        seconds: l.seconds,
        runs: l.runs.max(1),
        burst: l.burst,
        burst_secs: l.burst_secs,
        ward: l.ward.clone().unwrap_or_else(hub_deploy::default_ward),
        eve: l.eve.clone().unwrap_or_else(hub_scale::default_eve_dir),
    })
}

fn national_header(l: &LoadCli) {
    println!(
        "national: {} jurisdictions (webhook contact each), {} sensors enrolled through the API, batches of {} lines (86 % contact records, 3 % alerts, 7 % anomalies), {} requests in flight, {} s per run, {} runs; burst: one actor, {} jurisdictions over {} s; {}",
        l.jurisdictions, l.sensors.max(l.jurisdictions), l.batch, l.connections, l.seconds, l.runs, l.burst, l.burst_secs, hub_scale::machine()
    );
}

fn national(c: &NationalCli) -> Result<()> {
    national_header(&c.load);
    let a = national_args(&c.database, c.replicas, &c.load)?;
    let n = hub_scale::national(&a)?;
    hub_scale::print_national(&n);
    if !hub_scale::national_ok(&n, a.burst) {
        return Err("notifications were not exact (see above)".into());
    }
    Ok(())
}

fn scale(c: &ScaleCli) -> Result<()> {
    national_header(&c.load);
    let mut all = vec![hub_scale::national(&national_args("sqlite", 1, &c.load)?)?];
    for &r in &c.replicas {
        all.push(hub_scale::national(&national_args(&c.postgres, r, &c.load)?)?);
    }
    println!("side by side (medians over {} runs; ratios against SQLite × 1):", c.load.runs);
    println!("| deployment | events/s | events per cpu-s (replicas + db) | ack p50 / p99 ms | time to warn p50 / p99 ms | notifications | set-up: provision / enroll s |");
    println!("|---|---|---|---|---|---|---|");
    let base = hub_scale::median(&all[0].runs.iter().map(|r| r.events_per_sec).collect::<Vec<_>>());
    let mut exact = true;
    for n in &all {
        let m = |g: &dyn Fn(&hub_scale::NationalRun) -> f64| hub_scale::median(&n.runs.iter().map(g).collect::<Vec<_>>());
        let ok = hub_scale::national_ok(n, c.load.burst);
        exact &= ok;
        println!(
            "| {} | {:.0} ({:.2}×) | {:.0} | {:.0} / {:.0} | {:.0} / {:.0} | {} | {:.0} / {:.0} |",
            n.label,
            m(&|r| r.events_per_sec),
            m(&|r| r.events_per_sec) / base,
            m(&|r| r.events_per_cpu_sec()),
            m(&|r| r.ack_p50),
            m(&|r| r.ack_p99),
            m(&|r| r.warn_p50),
            m(&|r| r.warn_p99),
            if ok { "exact" } else { "WRONG" },
            n.provision_secs,
            n.enroll_secs
        );
    }
    println!("machine: {}", hub_scale::machine());
    for n in &all {
        hub_scale::print_national(n);
    }
    if !exact {
        return Err("notifications were not exact (see above)".into());
    }
    Ok(())
}

#[derive(Debug, Clone, clap::Args)]
struct IngestArgs {
    #[arg(long, default_value_t = 32)]
    sensors: usize,
    /// Events per batch.
    #[arg(long, default_value_t = 2000)]
    batch: usize,
    /// Seconds each run posts for.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Send batches gzip-compressed (Content-Encoding: gzip), as ward sensors do.
    #[arg(long)]
    gzip: bool,
    /// Directory of EVE files (*.eve.json, searched recursively).
    #[arg(long)]
    eve: Option<PathBuf>,
}

#[derive(Debug, Clone, clap::Args)]
struct WarnArgs {
    /// Jurisdictions in each campaign (also the threshold K).
    #[arg(long, default_value_t = 50)]
    jurisdictions: usize,
    /// Campaigns measured per run.
    #[arg(long, default_value_t = 30)]
    campaigns: usize,
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Background sensors posting bulk EVE batches (2000 lines each, no pause) during the
    /// measurement: time to warn under ingest load. 0 measures an idle hub.
    #[arg(long, default_value_t = 0)]
    load: usize,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let result = match args.what {
        What::Ingest(a) => ingest(&a),
        What::Warn(a) => warn(&a),
        What::All => ingest(&IngestArgs { sensors: 32, batch: 2000, seconds: 10, runs: 3, gzip: false, eve: None })
            .and_then(|()| warn(&WarnArgs { jurisdictions: 50, campaigns: 30, runs: 3, load: 0 }))
            .and_then(|()| warn(&WarnArgs { jurisdictions: 50, campaigns: 30, runs: 3, load: 16 })),
        What::National(c) => national(&c),
        What::Scale(c) => scale(&c),
        What::Agreement(c) => hub_deploy::StoreKind::parse(&c.database).and_then(|database| {
            let ok = hub_scale::agreement(&hub_scale::AgreementArgs {
                database,
                replicas: c.replicas,
                spray: c.spray,
                trials: c.trials,
                ward: c.ward.clone().unwrap_or_else(hub_deploy::default_ward),
            })?;
            if ok { Ok(()) } else { Err("replicas did not agree (see above)".into()) }
        }),
        What::Failover(c) => hub_deploy::StoreKind::parse(&c.database).and_then(|database| {
            let ok = hub_scale::failover(&hub_scale::FailoverArgs {
                database,
                replicas: c.replicas,
                jurisdictions: c.jurisdictions,
                batch: c.batch,
                connections: c.connections,
                seconds: c.seconds,
                kill_at: c.kill_at,
                hook_delay_ms: c.hook_delay_ms,
                ward: c.ward.clone().unwrap_or_else(hub_deploy::default_ward),
                eve: c.eve.clone().unwrap_or_else(hub_scale::default_eve_dir),
            })?;
            if ok { Ok(()) } else { Err("failover lost or doubled something (see above)".into()) }
        }),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-hub: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A hub on its own runtime (so client and server do not share a scheduler), on a temporary
/// store that lives as long as this value.
struct Hub {
    running: Option<ward_hub::RunningHub>,
    runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl Hub {
    fn start(configure: impl FnOnce(&mut ward_hub::HubConfig)) -> Result<Hub> {
        let dir = tempfile::tempdir()?;
        let mut config = ward_hub::HubConfig { data_dir: dir.path().to_path_buf(), listen: "127.0.0.1:0".parse()?, ..Default::default() };
        config.limits.sensor_batches_per_sec = 1e6;
        configure(&mut config);
        let runtime = tokio::runtime::Builder::new_multi_thread().thread_name("hub").enable_all().build()?;
        let running = runtime.block_on(ward_hub::start(config)).map_err(|e| format!("hub did not start: {e}"))?;
        Ok(Hub { running: Some(running), runtime, _dir: dir })
    }

    fn running(&self) -> &ward_hub::RunningHub {
        self.running.as_ref().expect("running until dropped")
    }

    fn store(&self) -> Arc<dyn ward_hub::store::Store> {
        self.running().state.store.clone()
    }

    fn url(&self) -> String {
        self.running().url()
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Some(hub) = self.running.take() {
            self.runtime.block_on(hub.shutdown());
        }
    }
}

fn client_runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().thread_name("client").enable_all().build()?)
}

/// Registers `n` jurisdictions (through the store) and enrolls one sensor each (through the API).
async fn enroll(hub_url: &str, store: &Arc<dyn ward_hub::store::Store>, http: &reqwest::Client, prefix: &str, n: usize, contact: impl Fn(usize) -> Option<NewContact>) -> Result<Vec<(i64, String)>> {
    let mut sensors = Vec::with_capacity(n);
    for i in 0..n {
        let now = now_ms();
        let new = NewJurisdiction { name: format!("{prefix} {i}"), kind: JurisdictionKind::County, state: Some("OH".into()), home_net: None };
        let j = store.create_jurisdiction(&new, now)?.id;
        if let Some(c) = contact(i) {
            store.create_contact(j, &c, now)?;
        }
        let token = ward_hub::auth::random_token("wet");
        store.create_enrollment_token(j, &ward_hub::auth::hash_token(&token), now, now + 600_000)?;
        let r = http.post(format!("{hub_url}/api/v1/sensors/enroll")).json(&serde_json::json!({"token": token})).send().await?;
        if r.status() != StatusCode::CREATED {
            return Err(format!("enrollment failed: {} {}", r.status(), r.text().await.unwrap_or_default()).into());
        }
        let v: serde_json::Value = r.json().await?;
        let id = v["sensor"]["id"].as_i64().ok_or("enrollment reply without sensor id")?;
        let credential = v["credential"].as_str().ok_or("enrollment reply without credential")?.to_string();
        sensors.push((id, credential));
    }
    Ok(sensors)
}

// ---------------------------------------------------------------------------------------------
// ingest

struct IngestRun {
    events_per_sec: f64,
    batches: usize,
    ack_p50_ms: f64,
    ack_p99_ms: f64,
}

/// Eight different batch bodies of real EVE lines, cycled so batches differ; built once so the
/// clients spend their CPU on HTTP, not on building bodies. Also returns the lines.
/// Prebuilt request bodies, shared by the sensor tasks.
type Bodies = Vec<Arc<Vec<u8>>>;

fn bulk_bodies(eve: Option<&std::path::Path>, batch: usize, gzip: bool) -> Result<(Vec<String>, Bodies)> {
    let dir = eve.map(PathBuf::from).unwrap_or_else(hub_scale::default_eve_dir);
    let lines = hub_scale::eve_lines(&dir)?;
    let bodies = (0..8)
        .map(|k| {
            let mut body = Vec::new();
            for i in 0..batch {
                body.extend_from_slice(lines[(k * batch + i) % lines.len()].as_bytes());
                body.push(b'\n');
            }
            if gzip {
                use std::io::Write;
                let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                let _ = enc.write_all(&body);
                body = enc.finish().unwrap_or_default();
            }
            Arc::new(body)
        })
        .collect();
    Ok((lines, bodies))
}

fn ingest(args: &IngestArgs) -> Result<()> {
    let dir = args.eve.clone().unwrap_or_else(hub_scale::default_eve_dir);
    let (lines, bodies) = bulk_bodies(Some(&dir), args.batch, args.gzip)?;
    let alerts = lines.iter().filter(|l| l.contains("\"event_type\":\"alert\"")).count();
    println!(
        "ingest: {} sensors, batches of {} EVE lines{} ({} distinct lines, {alerts} alerts, from {}), {} s per run, {} runs; {}",
        args.sensors,
        args.batch,
        if args.gzip { " gzip" } else { "" },
        lines.len(),
        dir.display(),
        args.seconds,
        args.runs,
        hub_scale::machine()
    );
    let mut runs = Vec::new();
    for run in 1..=args.runs {
        let r = ingest_run(args, &bodies)?;
        println!(
            "  run {run}: {:.0} events/s, {} batches, ack latency p50 {:.1} ms p99 {:.1} ms",
            r.events_per_sec, r.batches, r.ack_p50_ms, r.ack_p99_ms
        );
        runs.push(r);
    }
    println!("ingest_events_per_sec median {}", hub_scale::spread(&runs.iter().map(|r| r.events_per_sec).collect::<Vec<_>>(), 0));
    println!("ingest_ack_p50_ms median {}", hub_scale::spread(&runs.iter().map(|r| r.ack_p50_ms).collect::<Vec<_>>(), 1));
    println!("ingest_ack_p99_ms median {}", hub_scale::spread(&runs.iter().map(|r| r.ack_p99_ms).collect::<Vec<_>>(), 1));
    Ok(())
}

fn ingest_run(args: &IngestArgs, bodies: &[Arc<Vec<u8>>]) -> Result<IngestRun> {
    let hub = Hub::start(|_| {})?;
    let (url, store) = (hub.url(), hub.store());
    let rt = client_runtime()?;
    let gzip = args.gzip;
    let (sensors, seconds) = (args.sensors, args.seconds);
    let bodies = bodies.to_vec();
    let result = rt.block_on(async move {
        let http = reqwest::Client::builder().pool_max_idle_per_host(sensors).build()?;
        let creds = enroll(&url, &store, &http, "County", sensors, |_| None).await?;
        let started = Instant::now();
        let deadline = started + Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        for (idx, (sid, cred)) in creds.into_iter().enumerate() {
            let (http, url, bodies) = (http.clone(), format!("{url}/api/v1/events"), bodies.clone());
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut events = 0u64;
                let mut seq = 0i64;
                while Instant::now() < deadline {
                    seq += 1;
                    let body = bodies[(idx + seq as usize) % bodies.len()].as_ref().clone();
                    let t = Instant::now();
                    let mut req = http.post(&url).bearer_auth(&cred).header("idempotency-key", format!("{sid}:{seq}")).header("content-type", "application/x-ndjson");
                    if gzip {
                        req = req.header("content-encoding", "gzip");
                    }
                    let r = req.body(body).send().await.map_err(|e| e.to_string())?;
                    let status = r.status();
                    let v: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
                    if status != StatusCode::OK {
                        return Err(format!("ingest answered {status}: {v}"));
                    }
                    latencies.push(t.elapsed().as_secs_f64() * 1e3);
                    events += v["accepted"].as_u64().unwrap_or(0);
                }
                Ok::<_, String>((events, latencies))
            }));
        }
        let mut events = 0u64;
        let mut latencies = Vec::new();
        for t in tasks {
            let (e, l) = t.await??;
            events += e;
            latencies.extend(l);
        }
        let elapsed = started.elapsed().as_secs_f64();
        latencies.sort_by(|a, b| a.total_cmp(b));
        Ok::<_, BoxError>(IngestRun {
            events_per_sec: events as f64 / elapsed,
            batches: latencies.len(),
            ack_p50_ms: hub_scale::quantile(&latencies, 0.50),
            ack_p99_ms: hub_scale::quantile(&latencies, 0.99),
        })
    })?;
    drop(rt);
    drop(hub);
    Ok(result)
}

// ---------------------------------------------------------------------------------------------
// time to warn

const SECRET: &str = "bench-webhook-secret-0123456789";

/// Arrival times of verified `targeted` notifications: campaign id → jurisdiction path → time.
#[derive(Clone, Default)]
struct Arrivals(Arc<Mutex<HashMap<i64, HashMap<usize, Instant>>>>);

async fn hook(State(arrivals): State<Arrivals>, Path(j): Path<usize>, headers: HeaderMap, body: axum::body::Bytes) -> StatusCode {
    let at = Instant::now();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let now_secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    if !ward_hub::notify::webhook::verify(SECRET, header("x-ward-timestamp"), &body, header("x-ward-signature"), now_secs) {
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) else { return StatusCode::BAD_REQUEST };
    if v["type"] == "ward.campaign.targeted" {
        if let Some(campaign) = v["campaign"]["id"].as_i64() {
            if let Ok(mut a) = arrivals.0.lock() {
                a.entry(campaign).or_default().entry(j).or_insert(at);
            }
        }
    }
    StatusCode::NO_CONTENT
}

fn alert(actor: &str, local: &str) -> String {
    serde_json::json!({"timestamp": "2026-11-03T14:02:03.000000+0000", "flow_id": 1, "event_type": "alert",
        "src_ip": actor, "src_port": 40000, "dest_ip": local, "dest_port": 443, "proto": "TCP",
        "alert": {"action": "allowed", "gid": 1, "signature_id": 2010935, "rev": 2, "signature": "ET SCAN Suspicious inbound to MSSQL port 1433",
                  "category": "Attempted Information Leak", "severity": 2}})
    .to_string()
}

struct WarnRun {
    each_p50: f64,
    each_p99: f64,
    all_p50: f64,
    all_p99: f64,
    all_max: f64,
    ack_p50: f64,
    load_events_per_sec: f64,
}

fn warn(args: &WarnArgs) -> Result<()> {
    if args.jurisdictions < 2 || args.campaigns == 0 {
        return Err("warn needs --jurisdictions ≥ 2 and --campaigns ≥ 1".into());
    }
    println!(
        "warn: {} jurisdictions per campaign (K = {}), one webhook contact each, {} campaigns per run, {} runs, {}; {}",
        args.jurisdictions,
        args.jurisdictions,
        args.campaigns,
        args.runs,
        if args.load > 0 { format!("{} background sensors posting 2000-line batches", args.load) } else { "idle hub".to_string() },
        hub_scale::machine()
    );
    let mut runs = Vec::new();
    for run in 1..=args.runs {
        let r = warn_run(args)?;
        println!(
            "  run {run}: each notification p50 {:.1} ms p99 {:.1} ms; all {} warned p50 {:.1} ms p99 {:.1} ms max {:.1} ms; opening sighting acknowledged p50 {:.1} ms{}",
            r.each_p50,
            r.each_p99,
            args.jurisdictions,
            r.all_p50,
            r.all_p99,
            r.all_max,
            r.ack_p50,
            if args.load > 0 { format!("; background ingest {:.0} events/s", r.load_events_per_sec) } else { String::new() }
        );
        runs.push(r);
    }
    println!("warn_each_p50_ms median {}", hub_scale::spread(&runs.iter().map(|r| r.each_p50).collect::<Vec<_>>(), 1));
    println!("warn_each_p99_ms median {}", hub_scale::spread(&runs.iter().map(|r| r.each_p99).collect::<Vec<_>>(), 1));
    println!("warn_all_p50_ms median {}", hub_scale::spread(&runs.iter().map(|r| r.all_p50).collect::<Vec<_>>(), 1));
    println!("warn_all_p99_ms median {}", hub_scale::spread(&runs.iter().map(|r| r.all_p99).collect::<Vec<_>>(), 1));
    Ok(())
}

fn warn_run(args: &WarnArgs) -> Result<WarnRun> {
    let k = args.jurisdictions;
    let rt = client_runtime()?;
    let arrivals = Arrivals::default();
    let hook_addr = {
        let app = axum::Router::new().route("/hook/{j}", axum::routing::post(hook)).with_state(arrivals.clone());
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        rt.spawn(async move { axum::serve(listener, app).await });
        addr
    };
    let hub = Hub::start(|c| {
        c.correlation.min_jurisdictions = k as i64;
        c.notify.concurrency = 64;
        // The receivers are on loopback, which the egress policy refuses unless listed.
        c.notify.allow_targets = vec![ward_hub::notify::egress::AllowedNet(std::net::IpAddr::from([127, 0, 0, 1]).into())];
    })?;
    let (url, store) = (hub.url(), hub.store());
    let (campaigns, load) = (args.campaigns, args.load);
    let load_bodies = if load > 0 { bulk_bodies(None, 2000, false)?.1 } else { Vec::new() };
    let events_url = format!("{url}/api/v1/events");
    let result = rt.block_on(async move {
        let http = reqwest::Client::builder().pool_max_idle_per_host(k).build()?;
        let contact = |i: usize| Some(NewContact { channel: Channel::Webhook, target: format!("http://{hook_addr}/hook/{i}"), secret: Some(SECRET.into()) });
        let sensors = enroll(&url, &store, &http, "County", k, contact).await?;
        // Bulk traffic from other jurisdictions, running through the whole measurement.
        let load_sensors = enroll(&url, &store, &http, "Loaded County", load, |_| None).await?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let load_events = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let load_started = Instant::now();
        let mut load_tasks = Vec::new();
        for (idx, (sid, cred)) in load_sensors.into_iter().enumerate() {
            let (http, url, bodies, stop, counter) = (http.clone(), events_url.clone(), load_bodies.clone(), stop.clone(), load_events.clone());
            load_tasks.push(tokio::spawn(async move {
                let mut seq = 0i64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    seq += 1;
                    let body = bodies[(idx + seq as usize) % bodies.len()].as_ref().clone();
                    let sent = http.post(&url).bearer_auth(&cred).header("idempotency-key", format!("{sid}:{seq}")).body(body).send().await;
                    if let Ok(r) = sent {
                        if let Ok(v) = r.json::<serde_json::Value>().await {
                            counter.fetch_add(v["accepted"].as_u64().unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
        let post = |i: usize, seq: i64, body: String| {
            let (http, url, (sid, cred)) = (http.clone(), events_url.clone(), sensors[i].clone());
            async move {
                let r = http.post(&url).bearer_auth(&cred).header("idempotency-key", format!("{sid}:{seq}")).body(body).send().await.map_err(|e| e.to_string())?;
                if r.status() != StatusCode::OK {
                    return Err(format!("ingest answered {}", r.status()));
                }
                Ok::<_, String>(())
            }
        };
        let mut each = Vec::new();
        let mut all = Vec::new();
        let mut acks = Vec::new();
        for trial in 0..campaigns {
            let actor = format!("45.{}.{}.{}", 10 + trial / 250, trial % 250, 7);
            let seq = trial as i64 + 1;
            // K−1 jurisdictions see the actor (concurrently, as it scans them): no campaign yet.
            let before: Vec<_> = (0..k - 1).map(|i| tokio::spawn(post(i, seq, alert(&actor, &format!("10.{}.0.5", i % 250))))).collect();
            for t in before {
                t.await??;
            }
            let opened_before = store.campaigns(false)?.len();
            if opened_before != trial {
                return Err(format!("campaign {trial}: {opened_before} campaigns before the K-th sighting").into());
            }
            // The K-th jurisdiction's sighting opens the campaign: the clock starts as it is sent.
            let t0 = Instant::now();
            post(k - 1, seq, alert(&actor, "10.250.0.5")).await?;
            acks.push(t0.elapsed().as_secs_f64() * 1e3);
            let campaign = store.campaigns(false)?.into_iter().map(|c| c.id).max().ok_or("no campaign opened")?;
            let deadline = Instant::now() + Duration::from_secs(30);
            let times: Vec<Instant> = loop {
                let got = arrivals.0.lock().map_err(|_| "lock")?.get(&campaign).map(|m| m.values().copied().collect::<Vec<_>>()).unwrap_or_default();
                if got.len() == k {
                    break got;
                }
                if Instant::now() > deadline {
                    return Err(format!("campaign {campaign}: only {} of {k} jurisdictions warned within 30 s", got.len()).into());
                }
                tokio::time::sleep(Duration::from_micros(500)).await;
            };
            let lat: Vec<f64> = times.iter().map(|t| t.saturating_duration_since(t0).as_secs_f64() * 1e3).collect();
            all.push(lat.iter().copied().fold(0.0, f64::max));
            each.extend(lat);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let load_rate = load_events.load(std::sync::atomic::Ordering::Relaxed) as f64 / load_started.elapsed().as_secs_f64();
        for t in load_tasks {
            let _ = t.await;
        }
        each.sort_by(|a, b| a.total_cmp(b));
        all.sort_by(|a, b| a.total_cmp(b));
        acks.sort_by(|a, b| a.total_cmp(b));
        Ok::<_, BoxError>(WarnRun {
            each_p50: hub_scale::quantile(&each, 0.50),
            each_p99: hub_scale::quantile(&each, 0.99),
            all_p50: hub_scale::quantile(&all, 0.50),
            all_p99: hub_scale::quantile(&all, 0.99),
            all_max: all.last().copied().unwrap_or(f64::NAN),
            ack_p50: hub_scale::quantile(&acks, 0.50),
            load_events_per_sec: load_rate,
        })
    });
    drop(hub);
    drop(rt);
    result
}
