//! The hub at national scale (`bench-hub national | agreement | failover | scale`): real
//! `ward hub serve` processes on either store, 1–3 replicas behind HAProxy
//! ([`crate::hub_deploy`]), many sensors multiplexed over a few connections, and a webhook
//! receiver on loopback that verifies every signature and records every delivery.
//!
//! # The load a sensor sends
//! A ward sensor relays alerts, anomalies and hourly contact records (one record per hour per
//! remote address, local address, port and protocol). The mix of a batch is the Zeek oracle
//! traces' (`../shared/data/oracle/zeek`, 5 016 EVE records: 2 858 flows, 94 alerts, 229
//! anomalies), counting every flow as one contact record (hourly folding only makes contacts
//! fewer): per 100 lines **86 contact records, 3 alerts, 7 anomalies** (rounded; the remainder
//! are contacts). Anomaly lines are the traces' own. Each sensor's alerts come from 4 actors of
//! its own, each in a /24 no other sensor sees (`20.x.y.0/24`), so background alerts are
//! sightings but open no campaign; contact records name public services and change with each
//! batch. Sensors post in a closed loop (the next batch when the previous is acknowledged,
//! retried with the same idempotency key after an error, as the forwarder does): the figure is
//! the capacity of the deployment, far above the national average (10 000 offices × 2 000
//! contact records an hour ≈ 6 000 events/s).
//!
//! # The burst and time to warn
//! During each national-load run one actor (a fresh /24 per run) is sighted by `--burst`
//! jurisdictions (300), one after another, evenly over `--burst-secs`, each as a one-alert
//! batch from that jurisdiction's sensor. Every jurisdiction has a webhook contact. With K = 2
//! the second sighting opens the campaign; each jurisdiction's clock starts when the sighting
//! that makes it a member is sent (its own, or the opening one for the first) and stops when
//! its verified `ward.campaign.targeted` webhook arrives. Checks: all those warnings name one
//! campaign, every burst jurisdiction gets exactly one, no notification id arrives twice, and no
//! other jurisdiction is warned.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use ward_hub::model::{now_ms, Channel, JurisdictionKind, NewContact, NewJurisdiction, Role};
use ward_hub::store::Store;

use crate::hub_deploy::{Deployment, HubSettings, Result, StoreKind};

pub const SECRET: &str = "bench-webhook-secret-0123456789";
const STATES: [&str; 50] = [
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ",
    "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY",
];
/// Actors per sensor for background alerts.
const ACTORS_PER_SENSOR: usize = 4;

// ---------------------------------------------------------------------------------------------
// statistics

/// The value at quantile `q` of sorted samples (nearest rank).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    }
}

/// "median [min – max]".
pub fn spread(values: &[f64], digits: usize) -> String {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return "-".into();
    }
    format!("{:.digits$} [{:.digits$} – {:.digits$}]", median(&v), v[0], v[v.len() - 1])
}

pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| t.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split_once(':')).map(|(_, m)| m.trim().to_string()))
        .unwrap_or_else(|| "unknown cpu".into());
    let load = std::fs::read_to_string("/proc/loadavg").ok().and_then(|l| l.split_whitespace().next().map(str::to_string)).unwrap_or_default();
    format!("{cores} cores, {model}, load average {load}")
}

/// The client's runtime; also installs the TLS crypto provider reqwest needs.
fn client_runtime() -> Result<tokio::runtime::Runtime> {
    ward_hub::server::install_crypto_provider();
    Ok(tokio::runtime::Builder::new_multi_thread().thread_name("client").enable_all().build()?)
}

// ---------------------------------------------------------------------------------------------
// the webhook receiver

/// One verified delivery.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub at: Instant,
    pub notification: i64,
    pub kind: String,
    pub campaign: i64,
    pub jurisdiction: usize,
    pub remotes: Vec<String>,
}

/// Every verified webhook delivery, in arrival order; unsigned or badly signed ones counted.
#[derive(Clone, Default)]
pub struct Receiver {
    pub got: Arc<Mutex<Vec<Delivery>>>,
    pub bad: Arc<AtomicU64>,
    /// Milliseconds each delivery is held before the answer (a slow receiver keeps deliveries
    /// in flight, so a killed replica holds leases).
    pub delay_ms: Arc<AtomicU64>,
}

impl Receiver {
    pub fn snapshot(&self) -> Vec<Delivery> {
        self.got.lock().map(|g| g.clone()).unwrap_or_default()
    }
}

async fn hook(State(r): State<Receiver>, Path(j): Path<usize>, headers: HeaderMap, body: axum::body::Bytes) -> StatusCode {
    let at = Instant::now();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let now_secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    if !ward_hub::notify::webhook::verify(SECRET, header("x-ward-timestamp"), &body, header("x-ward-signature"), now_secs) {
        r.bad.fetch_add(1, Ordering::Relaxed);
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) else {
        r.bad.fetch_add(1, Ordering::Relaxed);
        return StatusCode::BAD_REQUEST;
    };
    let delay = r.delay_ms.load(Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let remotes = v["seen"]["remote_addresses"].as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect()).unwrap_or_default();
    let d = Delivery {
        at,
        notification: v["id"].as_i64().unwrap_or(-1),
        kind: v["type"].as_str().unwrap_or("").to_string(),
        campaign: v["campaign"]["id"].as_i64().unwrap_or(-1),
        jurisdiction: j,
        remotes,
    };
    if let Ok(mut g) = r.got.lock() {
        g.push(d);
    }
    StatusCode::NO_CONTENT
}

/// Starts the receiver on the current runtime: `http://ADDR/hook/{jurisdiction index}`.
pub async fn start_receiver(r: Receiver) -> Result<std::net::SocketAddr> {
    let app = axum::Router::new().route("/hook/{j}", axum::routing::post(hook)).with_state(r);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

// ---------------------------------------------------------------------------------------------
// set-up: jurisdictions, contacts, tokens (store), sensors (API)

/// An enrolled sensor: (sensor id, credential, jurisdiction index).
pub type EnrolledSensor = (i64, String, usize);
/// A burst sighting: jurisdiction index, when it was sent, its post.
type BurstSend = (usize, Instant, tokio::task::JoinHandle<std::result::Result<Ack, String>>);
/// An acknowledged failover campaign: actor, its two jurisdiction indexes, when acknowledged.
type AckedCampaign = (String, usize, usize, Instant);

pub struct Fleet {
    /// Per sensor: (sensor id, credential, jurisdiction index).
    pub sensors: Vec<(i64, String, usize)>,
    /// Jurisdiction ids by index.
    pub jurisdictions: Vec<i64>,
    /// Next sequence number per sensor.
    pub seqs: Vec<AtomicI64>,
    pub analyst: String,
}

/// Creates `jurisdictions` jurisdictions with a webhook contact each and one enrollment token
/// per sensor (sensor `s` in jurisdiction `s % jurisdictions`), through the store; returns the
/// jurisdiction ids and the tokens. Also an analyst `bench` (password [`SECRET`]).
pub fn provision(store: &dyn Store, jurisdictions: usize, sensors: usize, hook: std::net::SocketAddr) -> Result<(Vec<i64>, Vec<String>)> {
    let now = now_ms();
    let mut ids = Vec::with_capacity(jurisdictions);
    for i in 0..jurisdictions {
        let st = STATES[i % STATES.len()];
        let new = NewJurisdiction { name: format!("County {i} {st}"), kind: JurisdictionKind::County, state: Some(st.into()), home_net: None };
        let j = store.create_jurisdiction(&new, now)?.id;
        store.create_contact(j, &NewContact { channel: Channel::Webhook, target: format!("http://{hook}/hook/{i}"), secret: Some(SECRET.into()) }, now)?;
        ids.push(j);
    }
    let mut tokens = Vec::with_capacity(sensors);
    for s in 0..sensors {
        let token = ward_hub::auth::random_token("wet");
        store.create_enrollment_token(ids[s % jurisdictions], &ward_hub::auth::hash_token(&token), now, now + 6 * 3_600_000)?;
        tokens.push(token);
    }
    let phc = ward_hub::auth::hash_password(SECRET).map_err(|e| format!("{e}"))?;
    store.create_user("bench", &phc, Role::Analyst, None, now)?;
    Ok((ids, tokens))
}

/// Enrolls every sensor through the API (`concurrency` requests at a time).
pub async fn enroll(http: &reqwest::Client, url: &str, tokens: Vec<String>, jurisdictions: usize, concurrency: usize) -> Result<Vec<(i64, String, usize)>> {
    let tokens = Arc::new(tokens);
    let next = Arc::new(AtomicU64::new(0));
    let out: Arc<Mutex<Vec<Option<EnrolledSensor>>>> = Arc::new(Mutex::new(vec![None; tokens.len()]));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (http, url, tokens, next, out) = (http.clone(), format!("{url}/api/v1/sensors/enroll"), tokens.clone(), next.clone(), out.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let s = next.fetch_add(1, Ordering::Relaxed) as usize;
                if s >= tokens.len() {
                    return Ok::<_, String>(());
                }
                let mut attempt = 0;
                let v: serde_json::Value = loop {
                    attempt += 1;
                    let sent = http.post(&url).json(&serde_json::json!({"token": tokens[s], "name": format!("sensor-{s}")})).send().await;
                    match sent {
                        Ok(r) if r.status() == StatusCode::CREATED => break r.json().await.map_err(|e| e.to_string())?,
                        Ok(r) if attempt < 5 && (r.status().is_server_error() || r.status() == StatusCode::TOO_MANY_REQUESTS) => {}
                        Ok(r) => return Err(format!("enrollment of sensor {s} answered {}: {}", r.status(), r.text().await.unwrap_or_default())),
                        Err(e) if attempt < 5 => {
                            let _ = e;
                        }
                        Err(e) => return Err(format!("enrollment of sensor {s}: {e}")),
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                };
                let id = v["sensor"]["id"].as_i64().ok_or("enrollment reply without sensor id")?;
                let cred = v["credential"].as_str().ok_or("enrollment reply without credential")?.to_string();
                if let Ok(mut o) = out.lock() {
                    o[s] = Some((id, cred, s % jurisdictions));
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let out = out.lock().map_err(|_| "lock")?.clone();
    Ok(out.into_iter().map(|o| o.expect("every sensor enrolled")).collect())
}

pub async fn login(http: &reqwest::Client, url: &str) -> Result<String> {
    let v: serde_json::Value = http.post(format!("{url}/api/v1/login")).json(&serde_json::json!({"username": "bench", "password": SECRET})).send().await?.json().await?;
    Ok(v["token"].as_str().ok_or_else(|| format!("login failed: {v}"))?.to_string())
}

// ---------------------------------------------------------------------------------------------
// batches

fn eve_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().format("%Y-%m-%dT%H:%M:%S%.6f+0000").to_string()
}

/// The lines every batch is made of: contact-record chunks (prebuilt, cycled) and the traces'
/// anomaly lines.
pub struct Mix {
    pub contact_chunks: Vec<Vec<u8>>,
    pub anomalies: Vec<u8>,
    pub alerts_per_batch: usize,
    pub lines_per_batch: usize,
}

impl Mix {
    /// `batch` lines: 86 % contacts, 3 % alerts, 7 % anomalies (at least one alert and one anomaly).
    pub fn new(batch: usize, eve_dir: &std::path::Path) -> Result<Mix> {
        let alerts = (batch * 3 / 100).max(1);
        let anomalies_n = (batch * 7 / 100).max(1);
        let contacts = batch.saturating_sub(alerts + anomalies_n).max(1);
        let anomaly_lines: Vec<String> = crate::hub_scale::eve_lines(eve_dir)?.into_iter().filter(|l| l.contains("\"event_type\":\"anomaly\"")).collect();
        if anomaly_lines.is_empty() {
            return Err(format!("no anomaly lines under {}", eve_dir.display()).into());
        }
        let mut anomalies = Vec::new();
        for i in 0..anomalies_n {
            anomalies.extend_from_slice(anomaly_lines[i % anomaly_lines.len()].as_bytes());
            anomalies.push(b'\n');
        }
        // Contacts of the previous hour (a record is sent when its hour is over).
        let hour = 3_600_000;
        let start = (now_ms() / hour - 1) * hour;
        let mut chunks = Vec::new();
        for c in 0..64usize {
            let mut body = Vec::new();
            for i in 0..contacts {
                let n = c * contacts + i;
                let remote = format!("{}.{}.{}.{}", [52, 13, 104, 142, 151, 172][n % 6], (n / 6) % 250 + 1, (n / 1500) % 250 + 1, n % 200 + 1);
                let local = format!("10.{}.{}.{}", c, (i / 250) % 250, i % 250 + 1);
                let port = [443u16, 80, 53, 123, 25, 993][n % 6];
                let first = start + (n as i64 * 997) % 3_000_000;
                let line = serde_json::json!({
                    "event_type": "contact", "timestamp": eve_time(first),
                    "src_ip": local, "dest_ip": remote, "dest_port": port, "proto": "TCP",
                    "contact": {"remote_ip": remote, "local_ip": local, "port": port, "proto": "TCP", "direction": "outbound",
                                "first_seen": eve_time(first), "last_seen": eve_time(first + 30_000), "flows": 1 + n % 7, "pkts": 10 + n % 90, "bytes": 1200 + n % 50_000}
                });
                body.extend_from_slice(line.to_string().as_bytes());
                body.push(b'\n');
            }
            chunks.push(body);
        }
        Ok(Mix { contact_chunks: chunks, anomalies, alerts_per_batch: alerts, lines_per_batch: contacts + alerts + anomalies_n })
    }

    /// A batch of sensor `s` (its own actors in the alerts).
    pub fn batch(&self, s: usize, seq: i64) -> Vec<u8> {
        let chunk = &self.contact_chunks[(s + seq as usize) % self.contact_chunks.len()];
        let mut body = Vec::with_capacity(chunk.len() + self.anomalies.len() + self.alerts_per_batch * 400);
        body.extend_from_slice(chunk);
        body.extend_from_slice(&self.anomalies);
        for a in 0..self.alerts_per_batch {
            let n = s * ACTORS_PER_SENSOR + a % ACTORS_PER_SENSOR;
            let actor = format!("20.{}.{}.{}", (n / 256) % 256, n % 256, 1 + (seq as usize + a) % 200);
            body.extend_from_slice(alert(&actor, &format!("10.0.{}.{}", a % 250, 1 + s % 250), 2_010_935).as_bytes());
            body.push(b'\n');
        }
        body
    }
}

pub fn alert(actor: &str, local: &str, sid: u32) -> String {
    serde_json::json!({"timestamp": eve_time(now_ms()), "flow_id": 1, "event_type": "alert",
        "src_ip": actor, "src_port": 40000, "dest_ip": local, "dest_port": 443, "proto": "TCP",
        "alert": {"action": "allowed", "gid": 1, "signature_id": sid, "rev": 2, "signature": "ET SCAN Suspicious inbound to MSSQL port 1433",
                  "category": "Attempted Information Leak", "severity": 2}})
    .to_string()
}

pub fn eve_lines(dir: &std::path::Path) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| format!("cannot read EVE directory {}: {e}", d.display()))?;
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".eve.json") {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                lines.extend(text.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned));
            }
        }
    }
    if lines.is_empty() {
        return Err(format!("no *.eve.json lines under {}", dir.display()).into());
    }
    Ok(lines)
}

pub fn default_eve_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/oracle/zeek"))
}

/// The outcome of one acknowledged post.
pub struct Ack {
    pub accepted: u64,
    pub duplicate: bool,
    pub latency_ms: f64,
    pub attempts: u32,
}

/// Posts a batch with its idempotency key until it is acknowledged (200), retrying after
/// connection errors and 5xx/429 answers (a replica gone, the load balancer without a
/// healthy server), like the forwarder; gives up after `give_up`.
pub async fn post_batch(http: &reqwest::Client, url: &str, sensor: (i64, &str), seq: i64, body: Vec<u8>, give_up: Duration) -> std::result::Result<Ack, String> {
    let started = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let sent = http
            .post(url)
            .bearer_auth(sensor.1)
            .header("idempotency-key", format!("{}:{seq}", sensor.0))
            .header("content-type", "application/x-ndjson")
            .body(body.clone())
            .send()
            .await;
        let retry = match sent {
            Ok(r) if r.status() == StatusCode::OK => {
                let v: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
                return Ok(Ack {
                    accepted: v["accepted"].as_u64().unwrap_or(0),
                    duplicate: v["duplicate"].as_bool().unwrap_or(false),
                    latency_ms: started.elapsed().as_secs_f64() * 1e3,
                    attempts,
                });
            }
            Ok(r) if r.status().is_server_error() || r.status() == StatusCode::TOO_MANY_REQUESTS => format!("{}", r.status()),
            Ok(r) => return Err(format!("ingest answered {}: {}", r.status(), r.text().await.unwrap_or_default())),
            Err(e) => e.to_string(),
        };
        if started.elapsed() > give_up {
            return Err(format!("batch {}:{seq} not acknowledged after {attempts} attempts: {retry}", sensor.0));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// national load

#[derive(Debug, Clone)]
pub struct NationalArgs {
    pub database: StoreKind,
    pub replicas: usize,
    pub jurisdictions: usize,
    pub sensors: usize,
    pub batch: usize,
    pub connections: usize,
    pub seconds: u64,
    pub runs: usize,
    pub burst: usize,
    pub burst_secs: f64,
    pub ward: PathBuf,
    pub eve: PathBuf,
}

/// One run's figures.
#[derive(Debug, Clone, Default)]
pub struct NationalRun {
    pub events_per_sec: f64,
    pub batches: usize,
    pub ack_p50: f64,
    pub ack_p99: f64,
    pub warn_p50: f64,
    pub warn_p99: f64,
    pub warn_max: f64,
    pub warned: usize,
    pub campaigns: usize,
    pub duplicates: usize,
    pub missing: usize,
    pub strays: usize,
    pub retries: u64,
    /// Events acknowledged in the run.
    pub events: u64,
    /// CPU seconds over the run (load and the burst's wait): the replicas together, PostgreSQL
    /// (this database's backends and the server's writers, see `crate::cpu`), the load
    /// balancer, and this client.
    pub cpu_hub: f64,
    pub cpu_db: f64,
    pub cpu_lb: f64,
    pub cpu_client: f64,
}

impl NationalRun {
    /// Events per CPU-second of the deployment itself (replicas and database, not the client
    /// or the load balancer): what the code costs, whatever else shares the machine.
    pub fn events_per_cpu_sec(&self) -> f64 {
        self.events as f64 / (self.cpu_hub + self.cpu_db).max(1e-9)
    }
}

/// What `national` measured: set-up times and the runs.
pub struct National {
    pub label: String,
    pub provision_secs: f64,
    pub enroll_secs: f64,
    pub runs: Vec<NationalRun>,
}

pub fn national(a: &NationalArgs) -> Result<National> {
    let label = format!("{} × {}", a.database.label(), a.replicas);
    if a.burst > a.jurisdictions || a.burst < 2 {
        return Err("--burst must be between 2 and --jurisdictions".into());
    }
    let rt = client_runtime()?;
    let receiver = Receiver::default();
    let hook = rt.block_on(start_receiver(receiver.clone()))?;
    let mut deployment = Deployment::create(&a.database)?;
    let t = Instant::now();
    let (ids, tokens) = {
        let store = deployment.setup_store()?;
        provision(store.as_ref(), a.jurisdictions, a.sensors, hook)?
    };
    let provision_secs = t.elapsed().as_secs_f64();
    deployment.serve(&a.ward, a.replicas, &HubSettings::default())?;
    let mix = Arc::new(Mix::new(a.batch, &a.eve)?);
    println!(
        "  [{label}] provisioned {} jurisdictions + webhook contacts + {} tokens through the store in {provision_secs:.1} s; {} lines per batch ({} alerts)",
        a.jurisdictions, a.sensors, mix.lines_per_batch, mix.alerts_per_batch
    );
    let http = reqwest::Client::builder().pool_max_idle_per_host(a.connections.max(32)).timeout(Duration::from_secs(120)).build()?;
    let url = deployment.url.clone();
    let t = Instant::now();
    let sensors = rt.block_on(enroll(&http, &url, tokens, a.jurisdictions, 32))?;
    let enroll_secs = t.elapsed().as_secs_f64();
    println!("  [{label}] enrolled {} sensors through the API in {enroll_secs:.1} s ({:.0}/s)", sensors.len(), sensors.len() as f64 / enroll_secs);
    let fleet = Arc::new(Fleet { seqs: (0..sensors.len()).map(|_| AtomicI64::new(0)).collect(), sensors, jurisdictions: ids, analyst: String::new() });
    let mut runs = Vec::new();
    for run in 1..=a.runs {
        let (hub0, lb0) = deployment.process_cpu();
        let db0 = deployment.pg_database().map(crate::cpu::PgCpu::snapshot);
        let client0 = crate::cpu::process_cpu_secs(std::process::id()).unwrap_or(0.0);
        let r = rt.block_on(national_run(a, run, &http, &url, fleet.clone(), mix.clone(), &receiver));
        let mut r = match r {
            Ok(r) => r,
            Err(e) => return Err(format!("{e}\n{}", deployment.logs()).into()),
        };
        let (hub1, lb1) = deployment.process_cpu();
        r.cpu_hub = hub1 - hub0;
        r.cpu_lb = lb1 - lb0;
        r.cpu_client = crate::cpu::process_cpu_secs(std::process::id()).unwrap_or(0.0) - client0;
        r.cpu_db = deployment.pg_database().zip(db0).map_or(0.0, |(db, before)| crate::cpu::PgCpu::snapshot(db).since(&before).total());
        println!(
            "  [{label}] run {run} cpu: replicas {:.1} s, postgresql {:.1} s, load balancer {:.1} s, client {:.1} s; {:.0} events per cpu-second of replicas + database; {}",
            r.cpu_hub,
            r.cpu_db,
            r.cpu_lb,
            r.cpu_client,
            r.events_per_cpu_sec(),
            machine()
        );
        println!(
            "  [{label}] run {run}: {:.0} events/s ({} batches, {} retried), ack p50 {:.0} ms p99 {:.0} ms; burst: {} of {} warned, time to warn p50 {:.0} ms p99 {:.0} ms max {:.0} ms; campaigns {}, duplicates {}, missing {}, other jurisdictions warned {}",
            r.events_per_sec, r.batches, r.retries, r.ack_p50, r.ack_p99, r.warned, a.burst, r.warn_p50, r.warn_p99, r.warn_max, r.campaigns, r.duplicates, r.missing, r.strays
        );
        runs.push(r);
    }
    drop(deployment);
    drop(rt);
    Ok(National { label, provision_secs, enroll_secs, runs })
}

async fn national_run(a: &NationalArgs, run: usize, http: &reqwest::Client, url: &str, fleet: Arc<Fleet>, mix: Arc<Mix>, receiver: &Receiver) -> Result<NationalRun> {
    let events_url = format!("{url}/api/v1/events");
    let before = receiver.snapshot().len();
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new((run as u64) * 7919));
    let retries = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    // Burst jurisdictions: sensor j is in jurisdiction j (j < jurisdictions); they post only
    // their sighting during the run so their sequence numbers stay theirs.
    let burst: Vec<usize> = (0..a.burst).collect();
    let skip = a.burst;
    for _ in 0..a.connections {
        let (http, url, fleet, mix, stop, next, retries) = (http.clone(), events_url.clone(), fleet.clone(), mix.clone(), stop.clone(), next.clone(), retries.clone());
        let n = fleet.sensors.len();
        workers.push(tokio::spawn(async move {
            let mut events = 0u64;
            let mut lat = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let s = skip + (next.fetch_add(1, Ordering::Relaxed) as usize) % (n - skip).max(1);
                if s >= n {
                    break;
                }
                let seq = fleet.seqs[s].fetch_add(1, Ordering::Relaxed) + 1;
                let (id, cred, _) = &fleet.sensors[s];
                let ack = post_batch(&http, &url, (*id, cred), seq, mix.batch(s, seq), Duration::from_secs(60)).await?;
                retries.fetch_add(u64::from(ack.attempts - 1), Ordering::Relaxed);
                events += ack.accepted;
                lat.push(ack.latency_ms);
            }
            Ok::<_, String>((events, lat))
        }));
    }
    // The burst: one actor, `burst` jurisdictions, evenly over burst_secs, starting after 2 s.
    let actor = format!("45.{}.{}.9", 60 + run / 250, run % 250);
    let spacing = Duration::from_secs_f64(a.burst_secs / a.burst as f64);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut sends: Vec<BurstSend> = Vec::new();
    for &j in &burst {
        let (id, cred, _) = fleet.sensors[j].clone();
        let seq = fleet.seqs[j].fetch_add(1, Ordering::Relaxed) + 1;
        let body = alert(&actor, &format!("10.9.{}.{}", j / 250, 1 + j % 250), 2_010_935).into_bytes();
        let (http, url) = (http.clone(), events_url.clone());
        let at = Instant::now();
        sends.push((j, at, tokio::spawn(async move { post_batch(&http, &url, (id, &cred), seq, body, Duration::from_secs(60)).await })));
        tokio::time::sleep(spacing).await;
    }
    let remaining = Duration::from_secs(a.seconds).saturating_sub(started.elapsed());
    tokio::time::sleep(remaining).await;
    stop.store(true, Ordering::Relaxed);
    let mut events = 0u64;
    let mut lat = Vec::new();
    for w in workers {
        let (e, l) = w.await??;
        events += e;
        lat.extend(l);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut sent_at = HashMap::new();
    for (j, at, t) in sends {
        t.await??;
        sent_at.insert(j, at);
    }
    // Wait for every burst jurisdiction's warning (30 s at most), then 2 s for duplicates.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = receiver.snapshot();
        let warned: HashSet<usize> =
            got[before..].iter().filter(|d| d.kind == "ward.campaign.targeted" && d.remotes.iter().any(|r| r == &actor)).map(|d| d.jurisdiction).collect();
        if warned.len() >= a.burst || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = receiver.snapshot();
    // The actor's campaign(s): those of the deliveries naming it; everything else is a stray.
    let campaigns: HashSet<i64> = got[before..].iter().filter(|d| d.remotes.iter().any(|r| r == &actor)).map(|d| d.campaign).collect();
    let mine: Vec<&Delivery> = got[before..].iter().filter(|d| campaigns.contains(&d.campaign)).collect();
    let mut ids: HashMap<i64, usize> = HashMap::new();
    for d in &got[before..] {
        *ids.entry(d.notification).or_default() += 1;
    }
    let duplicates: usize = ids.values().filter(|&&n| n > 1).map(|n| n - 1).sum();
    let targeted: Vec<&&Delivery> = mine.iter().filter(|d| d.kind == "ward.campaign.targeted").collect();
    let mut per_j: HashMap<usize, Vec<Instant>> = HashMap::new();
    for d in &targeted {
        per_j.entry(d.jurisdiction).or_default().push(d.at);
    }
    let missing = burst.iter().filter(|j| !per_j.contains_key(j)).count();
    let strays = got[before..].iter().filter(|d| !campaigns.contains(&d.campaign)).count();
    // The campaign opens with the K-th (2nd) sighting sent.
    let mut order: Vec<(Instant, usize)> = sent_at.iter().map(|(j, t)| (*t, *j)).collect();
    order.sort();
    let opening = order.get(1).map(|(t, _)| *t).ok_or("no burst")?;
    let mut warn: Vec<f64> = per_j
        .iter()
        .filter_map(|(j, arrivals)| {
            let clock = sent_at.get(j).map(|t| (*t).max(opening))?;
            let first = arrivals.iter().min()?;
            Some(first.saturating_duration_since(clock).as_secs_f64() * 1e3)
        })
        .collect();
    warn.sort_by(|a, b| a.total_cmp(b));
    lat.sort_by(|a, b| a.total_cmp(b));
    let dup_targeted: usize = per_j.values().filter(|v| v.len() > 1).map(|v| v.len() - 1).sum();
    Ok(NationalRun {
        events,
        events_per_sec: events as f64 / elapsed,
        batches: lat.len(),
        ack_p50: quantile(&lat, 0.5),
        ack_p99: quantile(&lat, 0.99),
        warn_p50: quantile(&warn, 0.5),
        warn_p99: quantile(&warn, 0.99),
        warn_max: warn.last().copied().unwrap_or(f64::NAN),
        warned: per_j.len(),
        campaigns: campaigns.len(),
        duplicates: duplicates.max(dup_targeted),
        missing,
        strays,
        retries: retries.load(Ordering::Relaxed),
        ..Default::default()
    })
}

pub fn print_national(n: &National) {
    let f = |g: &dyn Fn(&NationalRun) -> f64| n.runs.iter().map(g).collect::<Vec<_>>();
    println!("  [{}] events_per_sec median {}", n.label, spread(&f(&|r| r.events_per_sec), 0));
    println!("  [{}] events_per_cpu_sec (replicas + database) median {}", n.label, spread(&f(&|r| r.events_per_cpu_sec()), 0));
    println!("  [{}] ack_p50_ms median {}  ack_p99_ms median {}", n.label, spread(&f(&|r| r.ack_p50), 0), spread(&f(&|r| r.ack_p99), 0));
    println!("  [{}] time_to_warn_p50_ms median {}  p99 median {}", n.label, spread(&f(&|r| r.warn_p50), 0), spread(&f(&|r| r.warn_p99), 0));
    let bad: usize = n.runs.iter().map(|r| r.duplicates + r.missing + r.strays + r.campaigns.saturating_sub(1)).sum();
    println!("  [{}] notifications: {} (duplicates + missing + strays + extra campaigns over all runs)", n.label, if bad == 0 { "all exact".to_string() } else { format!("{bad} WRONG") });
}

pub fn national_ok(n: &National, burst: usize) -> bool {
    n.runs.iter().all(|r| r.duplicates == 0 && r.missing == 0 && r.strays == 0 && r.campaigns == 1 && r.warned == burst)
}

// ---------------------------------------------------------------------------------------------
// replica agreement

#[derive(Debug, Clone)]
pub struct AgreementArgs {
    pub database: StoreKind,
    pub replicas: usize,
    pub spray: usize,
    pub trials: usize,
    pub ward: PathBuf,
}

pub fn agreement(a: &AgreementArgs) -> Result<bool> {
    let rt = client_runtime()?;
    let receiver = Receiver::default();
    let hook = rt.block_on(start_receiver(receiver.clone()))?;
    let mut deployment = Deployment::create(&a.database)?;
    let tokens = {
        let store = deployment.setup_store()?;
        provision(store.as_ref(), a.spray, a.spray, hook)?.1
    };
    deployment.serve(&a.ward, a.replicas, &HubSettings::default())?;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
    let sensors = rt.block_on(enroll(&http, &deployment.url, tokens, a.spray, 8))?;
    let replica_urls: Vec<String> = deployment.replicas.iter().map(|r| format!("{}/api/v1/events", r.url)).collect();
    println!("agreement: {} replicas on {}, {} jurisdictions sighting one fresh actor at once per trial, each sighting sent straight to replica (i mod {}), K = 2, {} trials; {}",
        a.replicas, a.database.label(), a.spray, a.replicas, a.trials, machine());
    let mut failures = Vec::new();
    let mut actors = Vec::new();
    let mut warn_all = Vec::new();
    let started = Instant::now();
    for trial in 0..a.trials {
        let actor = format!("45.{}.{}.7", 100 + trial / 250, trial % 250);
        let before = receiver.snapshot().len();
        let t0 = Instant::now();
        let posts: Vec<_> = sensors
            .iter()
            .enumerate()
            .map(|(i, (id, cred, _))| {
                let (http, url, id, cred) = (http.clone(), replica_urls[i % replica_urls.len()].clone(), *id, cred.clone());
                let body = alert(&actor, &format!("10.{i}.0.5"), 2_010_935).into_bytes();
                rt.spawn(async move { post_batch(&http, &url, (id, &cred), trial as i64 + 1, body, Duration::from_secs(30)).await })
            })
            .collect();
        let outcome: std::result::Result<(), String> = rt.block_on(async {
            for p in posts {
                p.await.map_err(|e| e.to_string())??;
            }
            Ok(())
        });
        outcome?;
        // Every contact warned once: wait for all, then a moment for a duplicate.
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut last = t0;
        loop {
            let got = receiver.snapshot();
            let warned: Vec<&Delivery> = got[before..].iter().filter(|d| d.kind == "ward.campaign.targeted" && d.remotes.iter().any(|r| r == &actor)).collect();
            let distinct: HashSet<usize> = warned.iter().map(|d| d.jurisdiction).collect();
            if distinct.len() >= a.spray || Instant::now() > deadline {
                last = warned.iter().map(|d| d.at).max().unwrap_or(last);
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        warn_all.push(last.saturating_duration_since(t0).as_secs_f64() * 1e3);
        actors.push((trial, actor));
        if (trial + 1) % 100 == 0 {
            println!("  {} trials, {:.0} s", trial + 1, started.elapsed().as_secs_f64());
        }
    }
    // A moment for a late duplicate, then every trial is judged on everything received.
    std::thread::sleep(Duration::from_secs(3));
    let got = receiver.snapshot();
    let mut per_id: HashMap<i64, usize> = HashMap::new();
    for d in &got {
        *per_id.entry(d.notification).or_default() += 1;
    }
    let redelivered: usize = per_id.values().filter(|&&n| n > 1).map(|n| n - 1).sum();
    for (trial, actor) in &actors {
        let mine: Vec<&Delivery> = got.iter().filter(|d| d.remotes.iter().any(|r| r == actor)).collect();
        let campaigns: HashSet<i64> = mine.iter().map(|d| d.campaign).collect();
        let mut per_j: HashMap<usize, usize> = HashMap::new();
        for d in mine.iter().filter(|d| d.kind == "ward.campaign.targeted") {
            *per_j.entry(d.jurisdiction).or_default() += 1;
        }
        let exact = campaigns.len() == 1 && per_j.len() == a.spray && per_j.values().all(|&n| n == 1) && mine.iter().all(|d| per_id.get(&d.notification) == Some(&1));
        if !exact {
            failures.push(format!("trial {trial} ({actor}): campaigns {campaigns:?}, targeted warnings per jurisdiction {per_j:?}"));
        }
    }
    if redelivered > 0 {
        failures.push(format!("{redelivered} deliveries repeated a notification id"));
    }
    // The store's view: one campaign per trial. Its listing holds the newest 500 campaigns, so
    // those are checked there (each names exactly one trial's actor, no actor twice), and all
    // of them through the campaign ids the warnings carry.
    let store = deployment.store()?;
    let listed = store.campaigns(false)?;
    let mut listed_actors = HashSet::new();
    let mut store_ok = listed.len() == a.trials.min(500);
    for c in &listed {
        let ours: Vec<&String> = c.keys.iter().filter(|k| k.starts_with("ip:45.")).collect();
        store_ok &= ours.len() == 1 && listed_actors.insert(ours[0].clone());
    }
    let warned_campaigns: HashSet<i64> = got.iter().map(|d| d.campaign).collect();
    store_ok &= warned_campaigns.len() == a.trials;
    warn_all.sort_by(|a, b| a.total_cmp(b));
    println!(
        "agreement: {} of {} trials exact (one campaign, one targeted warning per contact, no notification delivered twice); distinct campaigns warned about {} (expected {}); the store's newest {} campaigns each hold one trial's actor: {}; every contact warned p50 {:.0} ms p99 {:.0} ms after the spray",
        a.trials.saturating_sub(failures.len()),
        a.trials,
        warned_campaigns.len(),
        a.trials,
        listed.len(),
        if store_ok { "yes" } else { "NO" },
        quantile(&warn_all, 0.5),
        quantile(&warn_all, 0.99)
    );
    for f in failures.iter().take(10) {
        println!("  FAILED {f}");
    }
    drop(store);
    drop(deployment);
    Ok(failures.is_empty() && store_ok)
}

// ---------------------------------------------------------------------------------------------
// failover

#[derive(Debug, Clone)]
pub struct FailoverArgs {
    pub database: StoreKind,
    pub replicas: usize,
    pub jurisdictions: usize,
    pub batch: usize,
    pub connections: usize,
    pub seconds: u64,
    pub kill_at: u64,
    pub hook_delay_ms: u64,
    pub ward: PathBuf,
    pub eve: PathBuf,
}

pub fn failover(a: &FailoverArgs) -> Result<bool> {
    if a.replicas < 2 {
        return Err("failover needs --replicas ≥ 2".into());
    }
    let rt = client_runtime()?;
    let receiver = Receiver::default();
    receiver.delay_ms.store(a.hook_delay_ms, Ordering::Relaxed);
    let hook = rt.block_on(start_receiver(receiver.clone()))?;
    let mut deployment = Deployment::create(&a.database)?;
    let tokens = {
        let store = deployment.setup_store()?;
        provision(store.as_ref(), a.jurisdictions, a.jurisdictions, hook)?.1
    };
    deployment.serve(&a.ward, a.replicas, &HubSettings::default())?;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
    let url = deployment.url.clone();
    let sensors = rt.block_on(enroll(&http, &url, tokens, a.jurisdictions, 16))?;
    let fleet = Arc::new(Fleet { seqs: (0..sensors.len()).map(|_| AtomicI64::new(0)).collect(), sensors, jurisdictions: Vec::new(), analyst: String::new() });
    let mix = Arc::new(Mix::new(a.batch, &a.eve)?);
    println!(
        "failover: {} replicas on {} behind HAProxy, {} sensors × {}-line batches over {} connections for {} s, a new campaign (2 jurisdictions) every 250 ms, webhook receiver answering after {} ms; replica 0 killed with SIGKILL at {} s; {}",
        a.replicas, a.database.label(), a.jurisdictions, mix.lines_per_batch, a.connections, a.seconds, a.hook_delay_ms, a.kill_at, machine()
    );
    let events_url = format!("{url}/api/v1/events");
    let stop = Arc::new(AtomicBool::new(false));
    // Every acknowledged batch: (sensor index, seq, accepted).
    let acked: Arc<Mutex<Vec<(usize, i64, u64)>>> = Arc::default();
    let retries = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let n = fleet.sensors.len();
    let mut workers = Vec::new();
    for _ in 0..a.connections {
        let (http, url, fleet, mix, stop, next, acked, retries) = (http.clone(), events_url.clone(), fleet.clone(), mix.clone(), stop.clone(), next.clone(), acked.clone(), retries.clone());
        workers.push(rt.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let s = (next.fetch_add(1, Ordering::Relaxed) as usize) % n;
                let seq = fleet.seqs[s].fetch_add(1, Ordering::Relaxed) + 1;
                let (id, cred, _) = &fleet.sensors[s];
                let ack = post_batch(&http, &url, (*id, cred), seq, mix.batch(s, seq), Duration::from_secs(120)).await?;
                retries.fetch_add(u64::from(ack.attempts - 1), Ordering::Relaxed);
                if let Ok(mut v) = acked.lock() {
                    v.push((s, seq, ack.accepted));
                }
            }
            Ok::<_, String>(())
        }));
    }
    // Campaigns: actor t sighted by jurisdictions 2t and 2t+1 (mod n); acknowledged when both are.
    let campaigns: Arc<Mutex<Vec<AckedCampaign>>> = Arc::default();
    let campaigner = {
        let (http, url, fleet, stop, campaigns) = (http.clone(), events_url.clone(), fleet.clone(), stop.clone(), campaigns.clone());
        rt.spawn(async move {
            let mut t = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let actor = format!("45.{}.{}.3", 150 + t / 250, t % 250);
                let (ja, jb) = ((2 * t) % n, (2 * t + 1) % n);
                let mut posts = Vec::new();
                for j in [ja, jb] {
                    let (id, cred, _) = fleet.sensors[j].clone();
                    let seq = fleet.seqs[j].fetch_add(1, Ordering::Relaxed) + 1;
                    let (http, url, body) = (http.clone(), url.clone(), alert(&actor, "10.0.0.7", 2_010_935).into_bytes());
                    posts.push(tokio::spawn(async move { post_batch(&http, &url, (id, &cred), seq, body, Duration::from_secs(120)).await }));
                }
                for p in posts {
                    p.await.map_err(|e| e.to_string())??;
                }
                if let Ok(mut c) = campaigns.lock() {
                    c.push((actor, ja, jb, Instant::now()));
                }
                t += 1;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Ok::<_, String>(())
        })
    };
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(a.kill_at));
    let killed_at = deployment.kill(0)?;
    let acked_before_kill = acked.lock().map(|v| v.len()).unwrap_or(0);
    println!("  killed replica 0 at {:.1} s ({acked_before_kill} batches acknowledged so far)", started.elapsed().as_secs_f64());
    std::thread::sleep(Duration::from_secs(a.seconds.saturating_sub(a.kill_at)));
    stop.store(true, Ordering::Relaxed);
    rt.block_on(async {
        for w in workers {
            w.await.map_err(|e| e.to_string())??;
        }
        campaigner.await.map_err(|e| e.to_string())??;
        Ok::<_, String>(())
    })?;
    let acked = acked.lock().map_err(|_| "lock")?.clone();
    let campaigns = campaigns.lock().map_err(|_| "lock")?.clone();
    println!("  load stopped at {:.1} s: {} batches acknowledged ({} retried attempts), {} campaigns acknowledged", started.elapsed().as_secs_f64(), acked.len(), retries.load(Ordering::Relaxed), campaigns.len());
    // Deliveries leased by the killed replica come back when their lease (notify::CLAIM_LEASE_MS) ends.
    let expected: HashSet<(String, usize)> = campaigns.iter().flat_map(|(actor, ja, jb, _)| [(actor.clone(), *ja), (actor.clone(), *jb)]).collect();
    let wait_until = Instant::now() + Duration::from_millis(ward_hub::notify::CLAIM_LEASE_MS as u64) + Duration::from_secs(60);
    loop {
        let got = receiver.snapshot();
        let warned: HashSet<(String, usize)> =
            got.iter().filter(|d| d.kind == "ward.campaign.targeted").flat_map(|d| d.remotes.iter().map(move |r| (r.clone(), d.jurisdiction))).collect();
        let missing = expected.iter().filter(|e| !warned.contains(e)).count();
        if missing == 0 || Instant::now() > wait_until {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(3));
    let got = receiver.snapshot();
    // Notifications: each expected (actor, jurisdiction) targeted once; ids delivered twice.
    let mut per: HashMap<(String, usize), HashSet<i64>> = HashMap::new();
    let mut first_at: HashMap<(String, usize), Instant> = HashMap::new();
    let mut per_id: HashMap<i64, usize> = HashMap::new();
    for d in &got {
        *per_id.entry(d.notification).or_default() += 1;
        if d.kind != "ward.campaign.targeted" {
            continue;
        }
        for r in &d.remotes {
            per.entry((r.clone(), d.jurisdiction)).or_default().insert(d.notification);
            first_at.entry((r.clone(), d.jurisdiction)).and_modify(|t| *t = (*t).min(d.at)).or_insert(d.at);
        }
    }
    let missing = expected.iter().filter(|e| !per.contains_key(*e)).count();
    let two_notifications = per.values().filter(|ids| ids.len() > 1).count();
    let redelivered: usize = per_id.values().filter(|&&n| n > 1).map(|n| n - 1).sum();
    // How long deliveries waited: time from a campaign's acknowledgement to its warnings.
    let mut waits: Vec<(f64, bool)> = Vec::new();
    for (actor, ja, jb, acked_at) in &campaigns {
        for j in [ja, jb] {
            if let Some(at) = first_at.get(&(actor.clone(), *j)) {
                waits.push((at.saturating_duration_since(*acked_at).as_secs_f64(), *acked_at < killed_at));
            }
        }
    }
    let mut all: Vec<f64> = waits.iter().map(|w| w.0).collect();
    all.sort_by(|a, b| a.total_cmp(b));
    let mut late: Vec<f64> = waits.iter().filter(|w| w.0 > 10.0).map(|w| w.0).collect();
    late.sort_by(|a, b| a.total_cmp(b));
    // Acknowledged batches: each is stored (its key answers "duplicate" with the same count).
    let (lost, wrong) = rt.block_on(verify_acked(&http, &events_url, &fleet, &acked))?;
    println!(
        "failover: acknowledged batches lost {lost} of {} (stored with another count: {wrong}); warnings expected {}, missing {missing}, a second notification for one contact and campaign {two_notifications}, notification ids delivered more than once {redelivered}",
        acked.len(),
        expected.len()
    );
    println!(
        "failover: warning delay after the campaign was acknowledged p50 {:.2} s p99 {:.2} s max {:.2} s; {} warnings waited > 10 s (leased by the killed replica): {}",
        quantile(&all, 0.5),
        quantile(&all, 0.99),
        all.last().copied().unwrap_or(f64::NAN),
        late.len(),
        if late.is_empty() { "-".to_string() } else { format!("waited {:.1} – {:.1} s (lease {} s)", late[0], late[late.len() - 1], ward_hub::notify::CLAIM_LEASE_MS / 1000) }
    );
    drop(deployment);
    Ok(lost == 0 && wrong == 0 && missing == 0 && two_notifications == 0)
}

/// Re-posts every acknowledged batch's key with a one-line body: a stored batch answers
/// `duplicate` with its original count; a lost one would be stored now (duplicate = false).
async fn verify_acked(http: &reqwest::Client, url: &str, fleet: &Fleet, acked: &[(usize, i64, u64)]) -> Result<(usize, usize)> {
    let mut lost = 0;
    let mut wrong = 0;
    for chunk in acked.chunks(64) {
        let handles: Vec<_> = chunk
            .iter()
            .map(|(s, seq, accepted)| {
                let (http, url, (id, cred, _)) = (http.clone(), url.to_string(), fleet.sensors[*s].clone());
                let (seq, accepted) = (*seq, *accepted);
                tokio::spawn(async move {
                    let ack = post_batch(&http, &url, (id, &cred), seq, b"{\"event_type\":\"dns\"}\n".to_vec(), Duration::from_secs(30)).await?;
                    Ok::<_, String>((ack.duplicate, ack.accepted == accepted))
                })
            })
            .collect();
        for h in handles {
            let (duplicate, same) = h.await??;
            if !duplicate {
                lost += 1;
            } else if !same {
                wrong += 1;
            }
        }
    }
    Ok((lost, wrong))
}
