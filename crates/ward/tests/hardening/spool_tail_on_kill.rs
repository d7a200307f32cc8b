//! Medium 4: what reached the spool before a kill -9 reaches the hub.
//!
//! The real `ward sensor` runs on a generated capture (one UDP alert per packet, so every run
//! writes thousands of alerts) and relays to a hub (`ward_hub::start` in this process, on
//! 127.0.0.1) that is down during some runs and up during others. Each run is killed with
//! SIGKILL at a different point and the next one resumes the same spool; a final run on an
//! empty capture drains it. Then, counting alerts by (signature id, packet number):
//! * every alert any run wrote to its EVE file is at the hub (the EVE file never gets ahead of
//!   the spool);
//! * every alert that was in the spool after a kill is at the hub;
//! * no alert is stored twice (the hub's idempotency key across resends);
//! * alerts at the hub but in no EVE file (the spool may be ahead of the EVE file by one
//!   hand-over when the kill falls between the two writes) are few.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ward_hub::model::{now_ms, JurisdictionKind, NewJurisdiction};
use ward_hub::store::Store;
use ward_hub::{HubConfig, RunningHub};
use ward_sensor::relay::{self, SensorCredential};
use ward_sensor::spool::{ReadLimit, Spool, SpoolConfig};

pub(crate) const WARD: &str = env!("CARGO_BIN_EXE_ward");

/// An alert's identity across runs: (signature id, packet number in the capture).
pub(crate) type AlertKey = (u64, u64);

/// Writes a pcap of `packets` UDP packets from 10.0.0.1 (ports cycling over `flows`) to
/// 198.51.100.7:9999, one millisecond apart, each with a distinct payload.
pub(crate) fn write_udp_pcap(path: &Path, packets: usize, flows: usize) {
    let mut out = Vec::with_capacity(24 + packets * 110);
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65_535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes()); // Ethernet
    let start = 1_762_000_000u64 * 1_000_000;
    for i in 0..packets {
        let payload = format!("ward spool test packet {i:08}");
        let udp_len = 8 + payload.len();
        let ip_len = 20 + udp_len;
        let mut frame = Vec::with_capacity(14 + ip_len);
        frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00]);
        let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 198, 51, 100, 7];
        ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&(i as u16).to_be_bytes());
        let sum = ip.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum::<u32>();
        let sum = (sum & 0xffff) + (sum >> 16);
        let sum = (sum & 0xffff) + (sum >> 16);
        ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&(10_000 + (i % flows.max(1)) as u16).to_be_bytes());
        frame.extend_from_slice(&9999u16.to_be_bytes());
        frame.extend_from_slice(&(udp_len as u16).to_be_bytes());
        frame.extend_from_slice(&[0, 0]);
        frame.extend_from_slice(payload.as_bytes());
        let ts = start + i as u64 * 1000;
        out.extend_from_slice(&((ts / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((ts % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&frame);
    }
    std::fs::write(path, out).unwrap();
}

/// A rules file with one rule that alerts on every UDP packet, under signature id `sid`.
pub(crate) fn write_every_packet_rule(path: &Path, sid: u64) {
    std::fs::write(path, format!("alert udp any any -> any any (msg:\"spool test, every packet\"; sid:{sid}; rev:1;)\n")).unwrap();
}

/// A hub in this process that can be stopped and started again on the same address and data.
pub(crate) struct TestHub {
    pub rt: tokio::runtime::Runtime,
    data: PathBuf,
    pub addr: SocketAddr,
    hub: Option<RunningHub>,
    store: Arc<dyn Store>,
}

impl TestHub {
    pub fn start(data: &Path) -> TestHub {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let hub = rt.block_on(ward_hub::start(Self::config(data, "127.0.0.1:0".parse().unwrap()))).expect("hub starts");
        let store = hub.state.store.clone();
        TestHub { rt, data: data.to_path_buf(), addr: hub.addr, hub: Some(hub), store }
    }

    fn config(data: &Path, listen: SocketAddr) -> HubConfig {
        let mut c = HubConfig { data_dir: data.to_path_buf(), listen, ..HubConfig::default() };
        c.limits.sensor_batches_per_sec = 100_000.0;
        c.limits.user_requests_per_sec = 100_000.0;
        c
    }

    pub fn up(&mut self) {
        if self.hub.is_none() {
            let hub = self.rt.block_on(ward_hub::start(Self::config(&self.data, self.addr))).expect("hub restarts");
            self.store = hub.state.store.clone();
            self.hub = Some(hub);
        }
    }

    pub fn down(&mut self) {
        if let Some(hub) = self.hub.take() {
            self.rt.block_on(hub.shutdown());
        }
    }

    /// Enrolls a sensor and writes its credential file.
    pub fn enroll(&self, path: &Path) -> SensorCredential {
        let j = self
            .store
            .create_jurisdiction(
                &NewJurisdiction { name: "Adams County".into(), kind: JurisdictionKind::County, state: Some("CO".into()), home_net: None },
                now_ms(),
            )
            .unwrap();
        let token = ward_hub::auth::random_token("wet");
        let now = now_ms();
        self.store.create_enrollment_token(j.id, &ward_hub::auth::hash_token(&token), now, now + 60_000).unwrap();
        let url = format!("http://{}", self.addr);
        let cred = self.rt.block_on(relay::enroll(&url, &token, None, "adams-1")).expect("enrolls");
        cred.save(path).unwrap();
        cred
    }

    /// How many times the hub stores each alert of this sensor.
    pub fn alert_counts(&self, sensor_id: i64) -> BTreeMap<AlertKey, usize> {
        let mut counts = BTreeMap::new();
        for e in self.store.events(None, Some("alert"), 100_000_000).unwrap() {
            if e.sensor_id != sensor_id {
                continue;
            }
            if let Some(key) = alert_key(&e.body) {
                *counts.entry(key).or_insert(0) += 1;
            }
        }
        counts
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        self.down();
    }
}

pub(crate) fn alert_key(v: &serde_json::Value) -> Option<AlertKey> {
    if v.get("event_type")?.as_str()? != "alert" {
        return None;
    }
    Some((v.get("alert")?.get("signature_id")?.as_u64()?, v.get("pcap_cnt")?.as_u64()?))
}

/// The alerts of an EVE file (a line cut by a kill is not a record and is skipped).
pub(crate) fn eve_alert_keys(path: &Path) -> Vec<AlertKey> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()).filter_map(|v| alert_key(&v)).collect()
}

/// The alerts waiting in a spool directory (opened and read as the next run would).
pub(crate) fn spool_alert_keys(dir: &Path) -> Vec<AlertKey> {
    let spool = Spool::open(dir, SpoolConfig::default()).expect("the spool opens after a kill");
    let records = spool.read(ReadLimit::records(usize::MAX)).unwrap();
    records.iter().filter_map(|r| serde_json::from_slice::<serde_json::Value>(&r.payload).ok()).filter_map(|v| alert_key(&v)).collect()
}

fn wait_for_output(child: &mut Child, eve: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::metadata(eve).map_or(0, |m| m.len()) == 0 {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        assert!(Instant::now() < deadline, "the sensor wrote nothing within a minute");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn every_alert_spooled_before_a_kill_reaches_the_hub_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let mut hub = TestHub::start(&tmp.path().join("hub"));
    let cred_path = tmp.path().join("credential.json");
    let cred = hub.enroll(&cred_path);
    let pcap = tmp.path().join("every-packet.pcap");
    write_udp_pcap(&pcap, 60_000, 50);
    let spool = tmp.path().join("spool");

    // Kill points, in milliseconds after the run's first EVE output.
    let delays = [0u64, 15, 40, 80, 130, 200, 280, 370, 480, 600, 750, 900, 1100, 1300];
    let mut in_spool: BTreeSet<AlertKey> = BTreeSet::new();
    let mut in_eve: BTreeSet<AlertKey> = BTreeSet::new();
    let mut finished_before_kill = 0;
    for (round, delay) in delays.iter().enumerate() {
        // The hub is down in even rounds (records pile up) and up in odd ones (batches are in
        // flight when the kill comes).
        if round % 2 == 0 {
            hub.down();
        } else {
            hub.up();
        }
        let sid = 1_000 + round as u64;
        let rules = tmp.path().join(format!("run-{round}.rules"));
        write_every_packet_rule(&rules, sid);
        let eve = tmp.path().join(format!("eve-{round}.json"));
        let mut cmd = Command::new(WARD);
        cmd.args(["sensor", "--quiet", "--workers", "1", "--no-scan-detect", "--reload-interval", "0", "--pcap"])
            .arg(&pcap)
            .arg("--rules")
            .arg(&rules)
            .arg("--hub-credential")
            .arg(&cred_path)
            .arg("--spool")
            .arg(&spool)
            .arg("--eve")
            .arg(&eve)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Every third run fsyncs each hand-over; the others keep the default interval (a kill
        // -9 must lose nothing under either).
        if round % 3 == 2 {
            cmd.args(["--spool-fsync", "always"]);
        }
        let mut child = cmd.spawn().expect("start the sensor");
        wait_for_output(&mut child, &eve);
        std::thread::sleep(Duration::from_millis(*delay));
        if child.try_wait().unwrap().is_some() {
            finished_before_kill += 1;
        }
        child.kill().unwrap(); // SIGKILL
        let _ = child.wait();
        let eve_keys = eve_alert_keys(&eve);
        assert!(eve_keys.iter().all(|k| k.0 == sid));
        in_eve.extend(eve_keys);
        in_spool.extend(spool_alert_keys(&spool));
    }

    // The hub was up in every other round: those runs delivered while they were killed.
    let delivered_between_kills = hub.alert_counts(cred.sensor_id).len();
    assert!(delivered_between_kills > 0, "no run delivered anything before its kill");

    // The hub is up: a run on an empty capture drains the spool.
    hub.up();
    let empty = tmp.path().join("empty.pcap");
    write_udp_pcap(&empty, 0, 1);
    let mut drained = false;
    for _ in 0..6 {
        let out = Command::new(WARD)
            .args(["sensor", "--quiet", "--workers", "1", "--reload-interval", "0", "--pcap"])
            .arg(&empty)
            .arg("--hub-credential")
            .arg(&cred_path)
            .arg("--spool")
            .arg(&spool)
            .arg("--eve")
            .arg(tmp.path().join("eve-drain.json"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "the drain run failed: {stderr}");
        if !stderr.contains("wait in the spool") {
            drained = true;
            break;
        }
    }
    assert!(drained, "the spool did not drain");

    let at_hub = hub.alert_counts(cred.sensor_id);
    let duplicates: Vec<_> = at_hub.iter().filter(|(_, n)| **n > 1).map(|(k, n)| (*k, *n)).collect();
    let lost_from_eve: Vec<&AlertKey> = in_eve.iter().filter(|k| !at_hub.contains_key(k)).collect();
    let lost_from_spool: Vec<&AlertKey> = in_spool.iter().filter(|k| !at_hub.contains_key(k)).collect();
    let ahead_of_eve = at_hub.keys().filter(|k| !in_eve.contains(k)).count();
    eprintln!(
        "{} kills ({finished_before_kill} runs had finished first, {delivered_between_kills} alerts delivered between kills): \
         {} alerts in the EVE files, {} in the spool after a kill, {} at the hub; lost: {} of the EVE file's, {} of the spool's; \
         {} stored twice; {} at the hub but in no EVE file",
        delays.len(),
        in_eve.len(),
        in_spool.len(),
        at_hub.len(),
        lost_from_eve.len(),
        lost_from_spool.len(),
        duplicates.len(),
        ahead_of_eve
    );
    assert!(in_eve.len() > 10_000, "the runs must have written many alerts before the kills ({})", in_eve.len());
    assert!(lost_from_eve.is_empty(), "{} alerts in the EVE files never reached the hub (first: {:?})", lost_from_eve.len(), &lost_from_eve[..lost_from_eve.len().min(3)]);
    assert!(lost_from_spool.is_empty(), "{} spooled alerts never reached the hub", lost_from_spool.len());
    assert!(duplicates.is_empty(), "alerts stored twice: {:?}", &duplicates[..duplicates.len().min(3)]);
    // One hand-over per kill at most: a worker hands over at most 512 packets' records.
    assert!(ahead_of_eve <= delays.len() * 1024, "the spool ran ahead of the EVE file by {ahead_of_eve} alerts");
}
