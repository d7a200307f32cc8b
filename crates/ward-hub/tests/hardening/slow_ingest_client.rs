//! High 3: a slow client on one credential must not stall other sensors' ingest.
//!
//! A real hub on a loopback port. One sensor's credential opens 34 connections to
//! `POST /api/v1/events` that announce a batch and then send one byte a second (the attack of
//! the finding: 34 connections held the 32 ingest slots). While they dribble, another sensor's
//! batch must be acknowledged at once; the dribblers beyond the sensor's in-flight limit are
//! refused with 429 at once, and the others are cut with 408 when their body deadline passes.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use ward_hub::model::{now_ms, JurisdictionKind, NewJurisdiction};

const SLOW_CONNECTIONS: usize = 34;
/// The body deadline configured for this hub: long enough that the fast batch below has
/// plenty of margin on a loaded machine, short enough to keep the test quick.
const BODY_TIMEOUT_SECS: u64 = 8;

/// Sends one request on a fresh connection and returns (status, body).
async fn request(addr: std::net::SocketAddr, head: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    parse_response(&out)
}

fn parse_response(raw: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(raw).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

fn ingest_head(addr: std::net::SocketAddr, sensor: (i64, &str), seq: i64, len: usize) -> String {
    format!(
        "POST /api/v1/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nIdempotency-Key: {}:{seq}\r\nContent-Type: application/x-ndjson\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n",
        sensor.1, sensor.0
    )
}

/// Opens a connection that sends the headers of a 1000-byte batch, then one byte a second until
/// the hub answers. Returns (status, seconds from start to the answer, body).
async fn dribble(addr: std::net::SocketAddr, sensor: (i64, String), seq: i64) -> (u16, f64, String) {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(ingest_head(addr, (sensor.0, &sensor.1), seq, 1000).as_bytes()).await.unwrap();
    let (mut rd, mut wr) = s.into_split();
    let writer = tokio::spawn(async move {
        loop {
            if wr.write_all(b"{").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let mut out = Vec::new();
    let _ = rd.read_to_end(&mut out).await;
    writer.abort();
    let (status, body) = parse_response(&out);
    (status, started.elapsed().as_secs_f64(), body)
}

crate::on_each_backend! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn one_slow_sensor_does_not_delay_another() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::common::config(dir.path());
        config.limits.body_timeout_secs = BODY_TIMEOUT_SECS;
        let hub = ward_hub::start(config).await.unwrap();
        let addr = hub.addr;
        let store = hub.state.store.clone();
        let mut sensors = Vec::new();
        for (name, st) in [("Ohio", "OH"), ("Iowa", "IA")] {
            let token = ward_hub::auth::random_token("wet");
            let j = crate::common::db(store.as_ref(), |s| {
                let j = s.create_jurisdiction(&NewJurisdiction { name: name.into(), kind: JurisdictionKind::State, state: Some(st.into()), home_net: None }, now_ms()).unwrap().id;
                s.create_enrollment_token(j, &ward_hub::auth::hash_token(&token), now_ms(), now_ms() + 60_000).unwrap();
                j
            });
            let body = json!({ "token": token }).to_string();
            let head = format!("POST /api/v1/sensors/enroll HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let (status, reply) = request(addr, &head, body.as_bytes()).await;
            assert_eq!(status, 201, "{reply}");
            let v: serde_json::Value = serde_json::from_str(&reply).unwrap();
            sensors.push((j, v["sensor"]["id"].as_i64().unwrap(), v["credential"].as_str().unwrap().to_string()));
        }
        let (slow_j, slow_id, slow_cred) = sensors[0].clone();
        let (_, fast_id, fast_cred) = sensors[1].clone();

        // The slow sensor opens its connections and dribbles.
        let started = Instant::now();
        let slow: Vec<_> = (0..SLOW_CONNECTIONS).map(|i| tokio::spawn(dribble(addr, (slow_id, slow_cred.clone()), i as i64))).collect();
        tokio::time::sleep(Duration::from_millis(1500)).await;

        // Another sensor's batch goes through while they are still dribbling.
        let batch = crate::common::alert_line("45.33.32.156", "10.1.1.10", 2010935, "ET SCAN Suspicious inbound to MSSQL") + "\n";
        let fast_started = Instant::now();
        let fast = tokio::time::timeout(
            Duration::from_secs(4 * BODY_TIMEOUT_SECS),
            request(addr, &ingest_head(addr, (fast_id, &fast_cred), 1, batch.len()), batch.as_bytes()),
        )
        .await;
        let fast_secs = fast_started.elapsed().as_secs_f64();
        let (status, reply) = fast.expect("the other sensor's batch was stalled by the slow sensor");
        assert_eq!(status, 200, "{reply}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&reply).unwrap()["accepted"], 1);
        // Acknowledged well before the slow bodies' deadline, while they are all still open.
        assert!(fast_secs < (BODY_TIMEOUT_SECS / 2) as f64, "the other sensor waited {fast_secs:.1} s");
        assert!(started.elapsed() < Duration::from_secs(BODY_TIMEOUT_SECS), "slow clients already cut when the fast batch finished");

        // The slow connections: the sensor's first few are read until their deadline and cut
        // with 408; the rest were refused at once with 429.
        let mut answers = Vec::new();
        for t in slow {
            answers.push(tokio::time::timeout(Duration::from_secs(60), t).await.expect("a slow client was never cut").unwrap());
        }
        let timed_out: Vec<_> = answers.iter().filter(|a| a.0 == 408).collect();
        let busy: Vec<_> = answers.iter().filter(|a| a.0 == 429).collect();
        assert_eq!(timed_out.len() + busy.len(), SLOW_CONNECTIONS, "{answers:?}");
        assert_eq!(timed_out.len(), ward_hub::state::MAX_INGEST_PER_SENSOR, "{answers:?}");
        for (_, secs, body) in &timed_out {
            assert!(*secs >= BODY_TIMEOUT_SECS as f64 - 1.0 && *secs < BODY_TIMEOUT_SECS as f64 + 15.0, "cut after {secs:.1} s");
            assert!(body.contains("request body too slow"), "{body}");
        }
        for (_, secs, body) in &busy {
            assert!(*secs < BODY_TIMEOUT_SECS as f64, "429 came after {secs:.1} s");
            assert!(body.contains("in flight"), "{body}");
        }
        // Nothing of the slow sensor was stored, and its places are free again.
        assert!(crate::common::db(store.as_ref(), |s| s.events(Some(slow_j), None, 10)).unwrap().is_empty());
        assert_eq!(hub.state.sensor_ingest.held(slow_id), 0);
        let m = hub.state.metrics.render();
        assert!(m.contains(&format!("ward_hub_bodies_timed_out_total {}", ward_hub::state::MAX_INGEST_PER_SENSOR)), "{m}");
        hub.shutdown().await;
    }
}
