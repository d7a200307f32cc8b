//! Time-to-warn benchmark: 50 jurisdictions, a campaign threshold of 50, each jurisdiction with
//! a webhook contact on a local receiver. 49 jurisdictions report an actor; the clock starts
//! when the 50th jurisdiction's sensor sends the event that completes the campaign and stops
//! when the receiver holds a verified "targeted" notification for every one of the 50.
//!
//! `cargo run --release -p ward-hub --example bench_warn -- [TRIALS]` (default 20).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use ward_hub::model::{now_ms, Channel, JurisdictionKind, NewContact, NewJurisdiction};

const JURISDICTIONS: usize = 50;
const SECRET: &str = "bench-webhook-secret-0123456789";

type Seen = Arc<Mutex<HashMap<i64, (usize, Option<Instant>)>>>;

async fn hook(State(seen): State<Seen>, Path(_j): Path<usize>, headers: HeaderMap, body: axum::body::Bytes) -> StatusCode {
    let ok = ward_hub::notify::webhook::verify(
        SECRET,
        headers["x-ward-timestamp"].to_str().unwrap_or(""),
        &body,
        headers["x-ward-signature"].to_str().unwrap_or(""),
        chrono::Utc::now().timestamp(),
    );
    if !ok {
        return StatusCode::UNAUTHORIZED;
    }
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    if v["type"] == "ward.campaign.targeted" {
        let id = v["campaign"]["id"].as_i64().unwrap_or(-1);
        let mut s = seen.lock().unwrap();
        let e = s.entry(id).or_insert((0, None));
        e.0 += 1;
        if e.0 == JURISDICTIONS {
            e.1 = Some(Instant::now());
        }
    }
    StatusCode::NO_CONTENT
}

fn line(actor: &str, local: &str) -> String {
    serde_json::json!({"timestamp": "2026-11-22T01:02:03.000000+0000", "event_type": "alert", "src_ip": actor, "src_port": 40000,
        "dest_ip": local, "dest_port": 443, "proto": "TCP",
        "alert": {"action": "allowed", "gid": 1, "signature_id": 2010935, "rev": 2, "signature": "ET SCAN Suspicious inbound", "category": "Attempted Information Leak", "severity": 2}}).to_string()
}

fn main() -> anyhow::Result<()> {
    let trials: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let seen: Seen = Arc::default();
        let app = axum::Router::new().route("/hook/{j}", axum::routing::post(hook)).with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let hook_addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await });

        let dir = tempfile::tempdir()?;
        let mut config = ward_hub::HubConfig::default();
        config.data_dir = dir.path().to_path_buf();
        config.listen = "127.0.0.1:0".parse()?;
        config.correlation.min_jurisdictions = JURISDICTIONS as i64;
        config.limits.sensor_batches_per_sec = 1e6;
        let hub = ward_hub::start(config).await?;
        let store = hub.state.store.clone();
        let http = reqwest::Client::new();
        let mut sensors = Vec::new();
        for i in 0..JURISDICTIONS {
            let now = now_ms();
            let j = store.create_jurisdiction(&NewJurisdiction { name: format!("County {i}"), kind: JurisdictionKind::County, state: Some("WI".into()), home_net: None }, now)?.id;
            store.create_contact(j, &NewContact { channel: Channel::Webhook, target: format!("http://{hook_addr}/hook/{i}"), secret: Some(SECRET.into()) }, now)?;
            let token = ward_hub::auth::random_token("wet");
            store.create_enrollment_token(j, &ward_hub::auth::hash_token(&token), now, now + 60_000)?;
            let v: serde_json::Value = http.post(format!("{}/api/v1/sensors/enroll", hub.url())).json(&serde_json::json!({"token": token})).send().await?.json().await?;
            sensors.push((v["sensor"]["id"].as_i64().unwrap(), v["credential"].as_str().unwrap().to_string()));
        }
        let url = format!("{}/api/v1/events", hub.url());
        let mut results = Vec::new();
        for trial in 0..trials {
            let actor = format!("45.{}.{}.7", 10 + trial / 200, trial % 200);
            let seq = trial as i64 + 1;
            for (i, (sid, cred)) in sensors.iter().enumerate().take(JURISDICTIONS - 1) {
                let r = http.post(&url).bearer_auth(cred).header("idempotency-key", format!("{sid}:{seq}")).body(line(&actor, &format!("10.0.{i}.5"))).send().await?;
                anyhow::ensure!(r.status() == 200, "ingest failed: {}", r.status());
            }
            let campaigns_before = store.campaigns(false)?.len();
            let (sid, cred) = &sensors[JURISDICTIONS - 1];
            let t0 = Instant::now();
            let r = http.post(&url).bearer_auth(cred).header("idempotency-key", format!("{sid}:{seq}")).body(line(&actor, "10.9.9.9")).send().await?;
            anyhow::ensure!(r.status() == 200, "ingest failed: {}", r.status());
            let ack = t0.elapsed();
            let deadline = Instant::now() + Duration::from_secs(30);
            let done = loop {
                let hit = seen.lock().unwrap().values().filter_map(|(_, at)| *at).filter(|at| *at >= t0).min();
                if let Some(at) = hit {
                    break at;
                }
                anyhow::ensure!(Instant::now() < deadline, "trial {trial}: not all {JURISDICTIONS} warned within 30 s");
                tokio::time::sleep(Duration::from_millis(1)).await;
            };
            anyhow::ensure!(store.campaigns(false)?.len() == campaigns_before + 1, "no campaign opened");
            let warn = done.duration_since(t0);
            println!("trial {trial}: ack {:.1} ms, all {JURISDICTIONS} warned after {:.1} ms", ack.as_secs_f64() * 1e3, warn.as_secs_f64() * 1e3);
            results.push(warn);
            // Let the escalation notifications drain before the next trial.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        results.sort();
        let pct = |p: f64| results[((results.len() as f64 * p) as usize).min(results.len() - 1)].as_secs_f64() * 1e3;
        println!("time_to_warn_ms jurisdictions={JURISDICTIONS} trials={trials} p50={:.1} p99={:.1} max={:.1}", pct(0.5), pct(0.99), pct(1.0));
        hub.shutdown().await;
        Ok(())
    })
}
