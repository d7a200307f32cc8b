//! The relay against a real hub (in-process, on 127.0.0.1, SQLite in a temporary directory):
//! every spooled event arrives exactly once, through a hub outage, a relay killed mid-flight,
//! and over HTTPS with a private CA. And the spool's writer killed with SIGKILL mid-append keeps
//! every record `append` had returned for.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ward_hub::model::{now_ms, JurisdictionKind, NewJurisdiction};
use ward_hub::store::Store;
use ward_hub::{HubConfig, RunningHub};
use ward_sensor::relay::{self, HubClient, Relay, RelayConfig, RelayError, Reply, SensorCredential};
use ward_sensor::spool::{FsyncPolicy, ReadLimit, Spool, SpoolConfig};

fn hub_config(data_dir: &Path, listen: SocketAddr) -> HubConfig {
    let mut c = HubConfig { data_dir: data_dir.to_path_buf(), listen, ..HubConfig::default() };
    c.limits.sensor_batches_per_sec = 100_000.0;
    c.limits.user_requests_per_sec = 100_000.0;
    c
}

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

async fn start_hub(data_dir: &Path, listen: SocketAddr) -> RunningHub {
    ward_hub::start(hub_config(data_dir, listen)).await.expect("hub starts")
}

/// A jurisdiction and a one-time sensor token, made through the hub's store.
fn sensor_token(store: &Arc<dyn Store>) -> String {
    let j = store
        .create_jurisdiction(
            &NewJurisdiction { name: format!("Franklin County {}", fastrand::u32(..)), kind: JurisdictionKind::County, state: Some("OH".into()), home_net: None },
            now_ms(),
        )
        .unwrap();
    let token = ward_hub::auth::random_token("wet");
    let now = now_ms();
    store.create_enrollment_token(j.id, &ward_hub::auth::hash_token(&token), now, now + 60_000).unwrap();
    token
}

async fn enroll(hub: &RunningHub) -> SensorCredential {
    let token = sensor_token(&hub.state.store);
    relay::enroll(&hub.url(), &token, None, "county-fw-1").await.expect("enrolls")
}

fn spool_config() -> SpoolConfig {
    SpoolConfig { segment_bytes: 64 * 1024, max_record_bytes: 16 * 1024, fsync: FsyncPolicy::Never, ..SpoolConfig::default() }
}

fn relay_config(cred: &SensorCredential) -> RelayConfig {
    let mut c = RelayConfig::new(cred.clone());
    c.max_batch_records = 250;
    c.max_batch_wait = Duration::from_millis(20);
    c.backoff_initial = Duration::from_millis(20);
    c.backoff_max = Duration::from_millis(200);
    c.request_timeout = Duration::from_secs(10);
    c
}

/// An EVE alert line with a unique `n`.
fn event(n: usize) -> Vec<u8> {
    serde_json::json!({
        "event_type": "alert", "flow_id": n, "n": n,
        "src_ip": "10.1.0.25", "src_port": 51515, "dest_ip": "10.1.0.1", "dest_port": 443, "proto": "TCP",
        "alert": {"action": "allowed", "gid": 1, "signature_id": 2_000_001, "rev": 1, "signature": "ET TEST relay", "severity": 2}
    })
    .to_string()
    .into_bytes()
}

fn spool_events(spool: &Spool, range: std::ops::Range<usize>) {
    for n in range {
        spool.append(&event(n)).unwrap();
    }
}

/// How many times each `n` is stored at the hub for this sensor.
fn stored_counts(store: &Arc<dyn Store>, sensor_id: i64) -> BTreeMap<u64, usize> {
    let mut counts = BTreeMap::new();
    for e in store.events(None, None, 10_000_000).unwrap() {
        if e.sensor_id != sensor_id {
            continue;
        }
        let n = e.body.get("n").and_then(|v| v.as_u64()).expect("event has n");
        *counts.entry(n).or_insert(0) += 1;
    }
    counts
}

fn assert_exactly_once(store: &Arc<dyn Store>, sensor_id: i64, n: usize) {
    let counts = stored_counts(store, sensor_id);
    let dups: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).take(5).collect();
    assert!(dups.is_empty(), "duplicates at the hub: {dups:?}");
    let missing: Vec<usize> = (0..n).filter(|i| !counts.contains_key(&(*i as u64))).take(5).collect();
    assert!(missing.is_empty(), "missing at the hub (first few): {missing:?}");
    assert_eq!(counts.len(), n);
}

async fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn segment_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).unwrap().filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "seg")).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_spooled_event_arrives_exactly_once() {
    let data = tempfile::tempdir().unwrap();
    let hub = start_hub(data.path(), any_port()).await;
    let cred = enroll(&hub).await;
    let spool_dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(spool_dir.path(), spool_config()).unwrap();
    let n = 5000;
    spool_events(&spool, 0..n);
    let relay = Relay::spawn(spool.clone(), relay_config(&cred)).unwrap();
    wait_until("the spool to drain", Duration::from_secs(60), || relay.stats().spool.pending_records == 0).await;
    let stats = relay.stats();
    assert_eq!(stats.events_acked, n as u64);
    assert_eq!(stats.duplicate_batches, 0);
    assert_eq!((stats.rejected_lines, stats.dead_letter_batches, stats.malformed_records), (0, 0, 0));
    assert!(stats.batches_acked >= (n / 250) as u64);
    assert!(stats.bytes_acked < (n * event(n).len() / 3) as u64, "batches are compressed: {}", stats.bytes_acked);
    assert_exactly_once(&hub.state.store, cred.sensor_id, n);
    let sensor = hub.state.store.sensors(None).unwrap().into_iter().find(|s| s.id == cred.sensor_id).unwrap();
    assert_eq!(sensor.events_total, n as i64);
    // Events spooled while the relay runs follow within the batch wait.
    spool_events(&spool, n..n + 10);
    wait_until("live events", Duration::from_secs(10), || relay.stats().spool.pending_records == 0).await;
    relay.shutdown();
    assert_exactly_once(&hub.state.store, cred.sensor_id, n + 10);
    assert_eq!(segment_files(spool_dir.path()), 0, "acknowledged segments are deleted");
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_down_then_restarted_on_the_same_data_dir() {
    let data = tempfile::tempdir().unwrap();
    let hub = start_hub(data.path(), any_port()).await;
    let addr = hub.addr;
    let cred = enroll(&hub).await;
    let spool_dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(spool_dir.path(), spool_config()).unwrap();
    let relay = Relay::spawn(spool.clone(), relay_config(&cred)).unwrap();
    spool_events(&spool, 0..1000);
    wait_until("first events", Duration::from_secs(30), || relay.stats().spool.pending_records == 0).await;

    hub.shutdown().await;
    // The sensor keeps detecting while the hub is down.
    spool_events(&spool, 1000..3000);
    wait_until("retries against the stopped hub", Duration::from_secs(30), || relay.stats().retries >= 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(relay.stats().spool.pending_records >= 2000, "nothing is acknowledged while the hub is down");

    let hub = start_hub(data.path(), addr).await;
    spool_events(&spool, 3000..3500);
    wait_until("the spool to drain after the restart", Duration::from_secs(60), || relay.stats().spool.pending_records == 0).await;
    let stats = relay.stats();
    relay.shutdown();
    assert_eq!(stats.events_acked, 3500);
    assert_exactly_once(&hub.state.store, cred.sensor_id, 3500);
    hub.shutdown().await;
}

/// The relay crashed after the hub stored a batch but before the acknowledgement reached the
/// spool: the next relay resends the same range under the same key, and the hub stores it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_between_post_and_ack_resends_under_the_same_key() {
    let data = tempfile::tempdir().unwrap();
    let hub = start_hub(data.path(), any_port()).await;
    let cred = enroll(&hub).await;
    let spool_dir = tempfile::tempdir().unwrap();
    {
        let spool = Spool::open(spool_dir.path(), spool_config()).unwrap();
        spool_events(&spool, 0..300);
        // Exactly what the relay does up to the POST, then "crash" (drop without ack).
        let batch = spool.read(ReadLimit::records(100)).unwrap();
        let (first, last) = (batch[0].seq, batch[99].seq);
        spool.begin_batch(first, last).unwrap();
        let client = HubClient::new(&cred.hub_url, None, Duration::from_secs(10)).unwrap();
        let body = relay::encode_batch(&batch).gzip_body;
        let reply = client.post_batch(&cred.credential, &relay::idempotency_key(cred.sensor_id, first), body).await;
        match reply {
            Reply::Acked(r) => assert_eq!((r.accepted, r.duplicate), (100, false)),
            other => panic!("hub did not take the batch: {other:?}"),
        }
        assert_eq!(stored_counts(&hub.state.store, cred.sensor_id).len(), 100);
    }
    let spool = Spool::open(spool_dir.path(), spool_config()).unwrap();
    assert!(spool.pending_batch().is_some(), "the batch in flight survived the crash");
    let relay = Relay::spawn(spool.clone(), relay_config(&cred)).unwrap();
    wait_until("the spool to drain", Duration::from_secs(30), || relay.stats().spool.pending_records == 0).await;
    let stats = relay.stats();
    relay.shutdown();
    assert_eq!(stats.duplicate_batches, 1, "the resent batch was recognised by its key");
    assert_exactly_once(&hub.state.store, cred.sensor_id, 300);
    hub.shutdown().await;
}

const CHILD_SPOOL: &str = "WARD_RELAY_CHILD_SPOOL";
const CHILD_CRED: &str = "WARD_RELAY_CHILD_CREDENTIAL";

/// The relay process of `relay_killed_with_sigkill_mid_flight` (runs only when started by it).
#[test]
#[ignore = "started as a child process by relay_killed_with_sigkill_mid_flight"]
fn relay_child_process() {
    let (Ok(spool_dir), Ok(cred_path)) = (std::env::var(CHILD_SPOOL), std::env::var(CHILD_CRED)) else {
        return;
    };
    let cred = SensorCredential::load(Path::new(&cred_path)).unwrap();
    let spool = Spool::open(&spool_dir, spool_config()).unwrap();
    let mut config = relay_config(&cred);
    config.max_batch_records = 20;
    let _relay = Relay::spawn(spool, config).unwrap();
    std::thread::sleep(Duration::from_secs(120));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_killed_with_sigkill_mid_flight() {
    let data = tempfile::tempdir().unwrap();
    let hub = start_hub(data.path(), any_port()).await;
    let cred = enroll(&hub).await;
    let work = tempfile::tempdir().unwrap();
    let spool_dir = work.path().join("spool");
    let cred_path = work.path().join("sensor.json");
    cred.save(&cred_path).unwrap();
    let n = 10_000;
    {
        let spool = Spool::open(&spool_dir, spool_config()).unwrap();
        spool_events(&spool, 0..n);
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "relay_child_process", "--ignored", "--nocapture", "--test-threads", "1"])
        .env(CHILD_SPOOL, &spool_dir)
        .env(CHILD_CRED, &cred_path)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let store = hub.state.store.clone();
    let sid = cred.sensor_id;
    wait_until("the child to deliver some events", Duration::from_secs(60), || stored_counts(&store, sid).len() >= 2000).await;
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    let delivered = stored_counts(&store, sid).len();
    assert!(delivered < n, "the child was killed mid-flight ({delivered} of {n} delivered)");

    let spool = Spool::open(&spool_dir, spool_config()).unwrap();
    let relay = Relay::spawn(spool, relay_config(&cred)).unwrap();
    wait_until("the restarted relay to drain the spool", Duration::from_secs(60), || relay.stats().spool.pending_records == 0).await;
    relay.shutdown();
    assert_exactly_once(&store, sid, n);
    hub.shutdown().await;
}

const CHILD_WRITER_SPOOL: &str = "WARD_SPOOL_WRITER_CHILD_SPOOL";

/// The writer process of `spool_writer_killed_keeps_every_acknowledged_record` (runs only when
/// started by it): appends records as fast as it can and prints `acked SEQ N` once `append`
/// returned for record `N`.
#[test]
#[ignore = "started as a child process by spool_writer_killed_keeps_every_acknowledged_record"]
fn spool_writer_child_process() {
    let Ok(dir) = std::env::var(CHILD_WRITER_SPOOL) else { return };
    let first: usize = std::env::var("WARD_SPOOL_WRITER_FIRST").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    // The longest interval between fsyncs: a kill -9 keeps only what `append` handed to the kernel.
    let config = SpoolConfig { fsync: FsyncPolicy::Interval(ward_sensor::spool::MAX_FSYNC_INTERVAL), ..spool_config() };
    let spool = Spool::open(&dir, config).unwrap();
    let mut out = std::io::stdout().lock();
    for n in first.. {
        let seq = spool.append(&event(n)).unwrap();
        writeln!(out, "acked {seq} {n}").unwrap();
        if n % 16 == 0 {
            out.flush().unwrap();
        }
    }
}

/// kill -9 of the process writing the spool, at many points: every record whose `append`
/// returned is in the spool afterwards (with its payload), whatever the fsync policy, and a
/// restart appends after the last good record without skipping any.
#[test]
fn spool_writer_killed_keeps_every_acknowledged_record() {
    let work = tempfile::tempdir().unwrap();
    let spool_dir = work.path().join("spool");
    let mut acked: Vec<(u64, usize)> = Vec::new();
    let mut next_n = 0usize;
    let rounds = 12;
    for round in 0..rounds {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "spool_writer_child_process", "--ignored", "--nocapture", "--test-threads", "1"])
            .env(CHILD_WRITER_SPOOL, &spool_dir)
            .env("WARD_SPOOL_WRITER_FIRST", next_n.to_string())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut f = line.strip_prefix("acked ").unwrap_or("").split(' ');
                if let (Some(Ok(seq)), Some(Ok(n))) = (f.next().map(str::parse::<u64>), f.next().map(str::parse::<usize>)) {
                    got.push((seq, n));
                }
            }
            got
        });
        // Kill at a different point each round, once the writer is under way.
        std::thread::sleep(Duration::from_millis(150 + 37 * round as u64));
        child.kill().unwrap(); // SIGKILL
        let _ = child.wait();
        let got = reader.join().unwrap();
        assert!(!got.is_empty(), "round {round}: the writer acknowledged nothing before the kill");
        next_n = got.last().unwrap().1 + 1_000_000;
        acked.extend(got);
    }
    let spool = Spool::open(&spool_dir, spool_config()).unwrap();
    let stored: BTreeMap<u64, Vec<u8>> = spool.read(ReadLimit::records(usize::MAX)).unwrap().into_iter().map(|r| (r.seq, r.payload)).collect();
    let stats = spool.stats();
    let lost: Vec<&(u64, usize)> = acked.iter().filter(|(seq, n)| stored.get(seq) != Some(&event(*n))).collect();
    eprintln!(
        "spool writer killed {rounds} times: {} records acknowledged, {} stored, {} acknowledged but lost, {} torn tails",
        acked.len(),
        stored.len(),
        lost.len(),
        stats.torn_records
    );
    assert!(lost.is_empty(), "{} of {} acknowledged records lost after kill -9 (first: {:?})", lost.len(), acked.len(), &lost[..lost.len().min(3)]);
    assert_eq!(stats.corrupt_records, 0, "a kill leaves at most a torn tail, never damage in the middle");
}

/// A revoked or wrong credential never costs events: they stay spooled until a good one is used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credential_keeps_the_events() {
    let data = tempfile::tempdir().unwrap();
    let hub = start_hub(data.path(), any_port()).await;
    let cred = enroll(&hub).await;
    let spool_dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(spool_dir.path(), spool_config()).unwrap();
    spool_events(&spool, 0..100);
    let wrong = SensorCredential { credential: "wsc_not_a_credential".into(), ..cred.clone() };
    let relay = Relay::spawn(spool.clone(), relay_config(&wrong)).unwrap();
    wait_until("retries with the wrong credential", Duration::from_secs(30), || relay.stats().retries >= 3).await;
    assert_eq!(relay.stats().spool.pending_records, 100);
    relay.shutdown();
    let relay = Relay::spawn(spool.clone(), relay_config(&cred)).unwrap();
    wait_until("delivery with the right credential", Duration::from_secs(30), || relay.stats().spool.pending_records == 0).await;
    relay.shutdown();
    assert_exactly_once(&hub.state.store, cred.sensor_id, 100);
    hub.shutdown().await;
}

/// Lines the hub rejects are counted and do not stop the relay; a batch over the hub's line
/// limit (413) is split and delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_lines_and_oversized_batches_do_not_wedge_the_relay() {
    let data = tempfile::tempdir().unwrap();
    let hub = start_hub(data.path(), any_port()).await;
    let cred = enroll(&hub).await;
    let spool_dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(spool_dir.path(), SpoolConfig { segment_bytes: 4 << 20, ..spool_config() }).unwrap();
    spool.append(b"not json at all").unwrap();
    spool.append(b"{\"no_event_type\":1}").unwrap();
    let n = ward_hub::ingest::MAX_BATCH_LINES + 10;
    for i in 0..n {
        spool.append(format!("{{\"event_type\":\"flow\",\"n\":{i}}}").as_bytes()).unwrap();
    }
    let mut config = relay_config(&cred);
    config.max_batch_records = n + 2;
    config.max_batch_bytes = 64 << 20;
    config.max_batch_wait = Duration::from_millis(500);
    let relay = Relay::spawn(spool.clone(), config).unwrap();
    wait_until("the spool to drain", Duration::from_secs(120), || relay.stats().spool.pending_records == 0).await;
    let stats = relay.stats();
    relay.shutdown();
    assert_eq!(stats.rejected_lines, 2);
    assert!(stats.splits >= 1, "{stats:?}");
    assert_eq!(stats.dead_letter_batches, 0);
    assert_exactly_once(&hub.state.store, cred.sensor_id, n);
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_private_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let (cert, key, ca) = (dir.path().join("hub.pem"), dir.path().join("hub.key"), dir.path().join("ca.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    std::fs::write(&ca, certified.cert.pem()).unwrap();
    let data = dir.path().join("hub");
    let mut config = hub_config(&data, any_port());
    config.tls.cert = Some(cert);
    config.tls.key = Some(key);
    let hub = ward_hub::start(config).await.unwrap();
    assert_eq!(hub.scheme, "https");

    let token = sensor_token(&hub.state.store);
    // Without the CA file the hub's certificate is not trusted.
    let err = relay::enroll(&hub.url(), &token, None, "s").await.unwrap_err();
    assert!(matches!(err, RelayError::Unreachable { .. }), "{err}");
    let cred = relay::enroll(&hub.url(), &token, Some(&ca), "s").await.expect("enrolls over https");
    assert_eq!(cred.ca_file.as_deref(), Some(ca.as_path()));
    // The token was used once.
    let again = relay::enroll(&hub.url(), &token, Some(&ca), "s").await.unwrap_err();
    assert!(matches!(again, RelayError::EnrollRefused { status: 403, .. }), "{again}");

    let cred_path = dir.path().join("sensor.json");
    cred.save(&cred_path).unwrap();
    let cred = SensorCredential::load(&cred_path).unwrap();
    let spool = Spool::open(dir.path().join("spool"), spool_config()).unwrap();
    spool_events(&spool, 0..500);
    let relay = Relay::spawn(spool, relay_config(&cred)).unwrap();
    wait_until("delivery over https", Duration::from_secs(30), || relay.stats().spool.pending_records == 0).await;
    relay.shutdown();
    assert_exactly_once(&hub.state.store, cred.sensor_id, 500);
    hub.shutdown().await;
}

#[test]
fn plain_http_only_to_loopback() {
    let cred = SensorCredential { hub_url: "http://192.0.2.1:8080".into(), sensor_id: 1, jurisdiction_id: None, credential: "x".into(), ca_file: None };
    let spool_dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(spool_dir.path(), spool_config()).unwrap();
    assert!(matches!(Relay::spawn(spool, RelayConfig::new(cred)), Err(RelayError::InsecureUrl { .. })));
}
