//! bench-push: how fast a new hub indicator reaches every sensor.
//!
//! A real hub runs in process on 127.0.0.1 (SQLite in a temporary directory); `--sensors`
//! sensors enroll over HTTP, one jurisdiction each, and each runs the sensor's real indicator
//! sync ([`ward_sensor::indicator_sync`]: long-poll, atomic file write, swap). Then an analyst
//! publishes `--indicators` indicators one after another through the API; for each, the time from
//! just before the POST to the moment each sensor has applied it is one sample. The report gives
//! p50, p99 and max over all samples of a run, and the median of those over `--runs` runs.
//! (The target: all sensors of all jurisdictions within 5 s.)
//!
//! `cargo run --release -p ward-bench --bin bench-push -- --sensors 100 --indicators 20 --runs 3`

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use clap::Parser;
use serde_json::{json, Value};

use ward_hub::model::{now_ms, JurisdictionKind, NewJurisdiction, Role};
use ward_hub::HubConfig;
use ward_sensor::indicator_sync::{self, SyncConfig, SyncHandle};

#[derive(Parser)]
#[command(about = "Time from an indicator's publication at the hub to its application at every sensor")]
struct Args {
    /// Sensors (one jurisdiction each).
    #[arg(long, default_value_t = 100)]
    sensors: usize,
    /// Indicators published per run, one at a time.
    #[arg(long, default_value_t = 20)]
    indicators: usize,
    /// Runs; figures are medians over runs.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.sensors > 0 && args.indicators > 0 && args.runs > 0, "--sensors, --indicators and --runs must be at least 1");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut per_run = Vec::new();
    for run in 0..args.runs {
        let r = rt.block_on(one_run(&args, run))?;
        eprintln!("run {}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} samples", run + 1, r.0, r.1, r.2, r.3);
        per_run.push(r);
    }
    let med = |f: fn(&(f64, f64, f64, usize)) -> f64| {
        let mut v: Vec<f64> = per_run.iter().map(f).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (p50, p99, max) = (med(|r| r.0), med(|r| r.1), med(|r| r.2));
    if args.json {
        println!("{}", json!({"sensors": args.sensors, "indicators": args.indicators, "runs": args.runs, "p50_ms": p50, "p99_ms": p99, "max_ms": max}));
    } else {
        println!("indicator push to {} sensors, {} indicators x {} runs (medians over runs):", args.sensors, args.indicators, args.runs);
        println!("  p50 {p50:.1} ms   p99 {p99:.1} ms   max {max:.1} ms   (target: every sensor within 5000 ms)");
    }
    Ok(())
}

async fn one_run(args: &Args, run: usize) -> anyhow::Result<(f64, f64, f64, usize)> {
    let dir = tempfile::tempdir()?;
    let mut config = HubConfig::default();
    config.listen = "127.0.0.1:0".parse()?;
    config.data_dir = dir.path().join("hub");
    config.limits.sensor_batches_per_sec = 10_000.0;
    config.limits.user_requests_per_sec = 10_000.0;
    std::fs::create_dir_all(&config.data_dir)?;
    let hub = ward_hub::start(config).await?;
    let url = hub.url();
    let store = hub.state.store.clone();

    let password = "bench-push-password-1";
    let phc = ward_hub::auth::hash_password(password).map_err(|e| anyhow::anyhow!("{e}"))?;
    store.create_user("analyst", &phc, Role::Analyst, None, now_ms())?;

    let mut syncs: Vec<SyncHandle> = Vec::with_capacity(args.sensors);
    for i in 0..args.sensors {
        let j = store.create_jurisdiction(
            &NewJurisdiction { name: format!("County {i}"), kind: JurisdictionKind::County, state: Some("FR".into()), home_net: None },
            now_ms(),
        )?;
        let token = ward_hub::auth::random_token("wet");
        store.create_enrollment_token(j.id, &ward_hub::auth::hash_token(&token), now_ms(), now_ms() + 3_600_000)?;
        let cred = ward_sensor::relay::enroll(&url, &token, None, &format!("sensor-{i}")).await.context("enroll")?;
        let file = dir.path().join(format!("sensor-{i}.csv"));
        syncs.push(indicator_sync::spawn(SyncConfig::new(cred, file), None)?);
    }
    // Every sensor is parked in its long-poll before the first indicator.
    let ready = Instant::now() + Duration::from_secs(30);
    while syncs.iter().any(|s| s.stats().polls == 0) {
        anyhow::ensure!(Instant::now() < ready, "sensors did not start polling");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    let client = reqwest::Client::new();
    let login: Value = client.post(format!("{url}/api/v1/login")).json(&json!({"username": "analyst", "password": password})).send().await?.json().await?;
    let bearer = login["token"].as_str().context("login token")?.to_string();
    let syncs = Arc::new(syncs);
    let mut samples = Vec::new();
    for k in 0..args.indicators {
        let value = format!("198.18.{}.{}", run % 200, k % 250 + 1);
        let t0 = SystemTime::now();
        let r = client
            .post(format!("{url}/api/v1/indicators"))
            .bearer_auth(&bearer)
            .json(&json!({"kind": "ip", "value": value, "description": "bench", "severity": "high"}))
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "publishing failed: {} {}", r.status(), r.text().await.unwrap_or_default());
        let seq = latest_seq(store.as_ref(), &value)?;
        let waiter = syncs.clone();
        let all = tokio::task::spawn_blocking(move || waiter.iter().all(|s| s.wait_for(seq, Duration::from_secs(30)))).await?;
        anyhow::ensure!(all, "indicator {value} did not reach every sensor within 30 s");
        for s in syncs.iter() {
            let at = s.applied_at(seq).context("applied time")?;
            samples.push(at.duration_since(t0).unwrap_or_default().as_secs_f64() * 1000.0);
        }
    }
    if let Ok(syncs) = Arc::try_unwrap(syncs) {
        for s in syncs {
            s.shutdown();
        }
    }
    hub.shutdown().await;
    samples.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    Ok((pct(0.5), pct(0.99), *samples.last().unwrap_or(&0.0), samples.len()))
}

fn latest_seq(store: &dyn ward_hub::store::Store, value: &str) -> anyhow::Result<i64> {
    let list = store.indicators_since(0, 1_000_000)?;
    list.iter().rev().find(|i| i.value == value).map(|i| i.seq).context("the published indicator is not in the feed")
}
