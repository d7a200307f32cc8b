//! Ingest benchmark: many sensors post NDJSON batches concurrently to a hub on loopback with the
//! SQLite store; prints sustained events/s and p50/p99 acknowledgement latency.
//!
//! `cargo run --release -p ward-hub --example bench_ingest -- [SENSORS] [BATCH] [SECONDS]`
//! (defaults 32 sensors, 2000 events per batch, 15 s). Events are real Suricata EVE lines from
//! `../shared/data/oracle/zeek` (all types, alerts included), cycled.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ward_hub::model::{now_ms, JurisdictionKind, NewJurisdiction};

fn eve_lines() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/oracle/zeek");
    let mut lines = Vec::new();
    let mut stack = vec![std::path::PathBuf::from(dir)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("oracle data present").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".eve.json") {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                lines.extend(text.lines().filter(|l| !l.is_empty() && !l.contains("\"stats\"")).map(str::to_owned));
            }
        }
    }
    lines
}

fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sensors = *args.first().unwrap_or(&32);
    let batch = *args.get(1).unwrap_or(&2000);
    let seconds = *args.get(2).unwrap_or(&15) as u64;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let dir = tempfile::tempdir()?;
        let mut config = ward_hub::HubConfig::default();
        config.data_dir = dir.path().to_path_buf();
        config.listen = "127.0.0.1:0".parse()?;
        config.limits.sensor_batches_per_sec = 1e6;
        let hub = ward_hub::start(config).await?;
        let store = hub.state.store.clone();
        let lines = eve_lines();
        println!("eve lines available: {}", lines.len());
        // Pre-built bodies so the client spends little CPU.
        let bodies: Vec<Arc<Vec<u8>>> = (0..8)
            .map(|k| {
                let mut body = Vec::new();
                for i in 0..batch {
                    body.extend_from_slice(lines[(k * batch + i) % lines.len()].as_bytes());
                    body.push(b'\n');
                }
                Arc::new(body)
            })
            .collect();
        let http = reqwest::Client::builder().pool_max_idle_per_host(sensors).build()?;
        let mut creds = Vec::new();
        for i in 0..sensors {
            let now = now_ms();
            let j = store.create_jurisdiction(&NewJurisdiction { name: format!("County {i}"), kind: JurisdictionKind::County, state: Some("OH".into()), home_net: None }, now)?.id;
            let token = ward_hub::auth::random_token("wet");
            store.create_enrollment_token(j, &ward_hub::auth::hash_token(&token), now, now + 60_000)?;
            let v: serde_json::Value = http.post(format!("{}/api/v1/sensors/enroll", hub.url())).json(&serde_json::json!({"token": token})).send().await?.json().await?;
            creds.push((v["sensor"]["id"].as_i64().unwrap(), v["credential"].as_str().unwrap().to_string()));
        }
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for (idx, (sid, cred)) in creds.into_iter().enumerate() {
            let (http, url, bodies) = (http.clone(), format!("{}/api/v1/events", hub.url()), bodies.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut events = 0usize;
                let mut seq = 0i64;
                while Instant::now() < deadline {
                    seq += 1;
                    let body = bodies[(idx + seq as usize) % bodies.len()].as_ref().clone();
                    let t = Instant::now();
                    let r = http.post(&url).bearer_auth(&cred).header("idempotency-key", format!("{sid}:{seq}")).body(body).send().await.expect("post");
                    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
                    let v: serde_json::Value = r.json().await.expect("json");
                    lat.push(t.elapsed());
                    events += v["accepted"].as_u64().unwrap_or(0) as usize;
                }
                (events, lat)
            }));
        }
        let mut total = 0usize;
        let mut lat = Vec::new();
        for t in tasks {
            let (e, l) = t.await?;
            total += e;
            lat.extend(l);
        }
        let elapsed = started.elapsed().as_secs_f64();
        lat.sort();
        let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1000.0;
        println!("sensors={sensors} batch={batch} seconds={elapsed:.1} batches={} events={total}", lat.len());
        println!("ingest_events_per_sec={:.0}", total as f64 / elapsed);
        println!("ack_latency_ms p50={:.1} p99={:.1} max={:.1}", pct(0.50), pct(0.99), pct(1.0));
        let stored = store.events(None, None, 1)?.first().map(|e| e.id).unwrap_or(0);
        println!("stored_rows={stored}");
        hub.shutdown().await;
        Ok(())
    })
}
