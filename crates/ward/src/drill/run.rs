//! Running a drill: set the participants up in a hub, play the injects through real sensor
//! pipelines and simulated relays, play the people who acknowledge, then collect what the hub
//! did and measure every path ([`super::measure`]).
//!
//! Everything goes through the hub's public HTTPS API as an analyst would drive it
//! (jurisdictions, contacts, sensor tokens, enrolment, indicators, notifications, campaigns),
//! so the same runner works against the embedded hub and an existing one (`--hub`).
//!
//! * **Real sensors** (at most [`super::scenario::MAX_REAL_SENSORS`]): each enrols, follows the
//!   hub's indicator list live, and for every inject that targets it writes a capture (ordinary
//!   office traffic with the attack laid over it, timestamped now) and runs the full sensor
//!   pipeline over it with ward-sim's rules, the indicators and the scan detector, relaying
//!   through its own on-disk spool, as in production.
//! * **Simulated relays** (every other participant): enrol like a sensor and POST, through the
//!   same relay client and idempotency keys, the alert a real sensor would have written
//!   ([`ward_sim::attack::expected_signature`]); every one also sends one batch of ordinary
//!   records at the start, so the hub carries the whole population's load.
//! * **People**: every participant has a webhook contact of priority 1 and one of priority 2
//!   (the escalation path), on this process's receiver. A warning that arrives is acknowledged
//!   (or not) after a delay drawn from the scenario's `[people]`, through the signed link the
//!   message carries. A participant with `broken_contact` has a priority-1 contact on a closed
//!   port.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use ward_hub::model::now_ms;
use ward_sensor::relay::{self, HubClient, Relay, RelayConfig, RelayHandle, Reply, SensorCredential};
use ward_sensor::spool::{Record, Spool, SpoolConfig};
use ward_sim::attack::{self, Attack, AttackKind, Detection, OfficeNet};
use ward_sim::mix::{self, MixWeights, Rng};

use super::scenario::{Inject, InjectKind, Plan};
use crate::receivers::{self, Inbox};

/// How the drill reaches its hub.
pub struct HubTarget {
    /// Base URL (`https://host:port`).
    pub url: String,
    /// CA file of the hub's certificate, when not a public one.
    pub ca: Option<PathBuf>,
    /// An analyst's user name and password.
    pub user: String,
    pub password: String,
    /// Shown in the report.
    pub label: String,
    /// Jurisdiction names get this prefix (an existing hub: `DRILL name: `).
    pub name_prefix: String,
    /// Register the drill's states under codes no real state has (`XA`, `XB`, …), so the drill
    /// never collides with, or reports to, a hub's real state offices (an existing hub).
    pub drill_state_codes: bool,
}

/// The code a drill registers a state under on an existing hub: `XA`…`XZ`, then `YA`…, `QA`…
/// (no US state or territory code starts with X, Y or Q).
pub fn drill_state_code(states: &[String], code: &str) -> String {
    let i = states.iter().position(|s| s == code).unwrap_or(0);
    let first = ['X', 'Y', 'Q'][(i / 26).min(2)];
    format!("{first}{}", (b'A' + (i % 26) as u8) as char)
}

/// Options of one run.
pub struct RunOptions {
    pub speed: f64,
    /// Working directory (sensor spools, captures).
    pub work: PathBuf,
    /// Longest wait for warnings and acknowledgements after the last inject, real seconds.
    pub settle_secs: f64,
    /// Requests in flight while setting the participants up.
    pub setup_concurrency: usize,
    pub progress: bool,
}

/// One participant once set up.
pub struct Office {
    pub idx: usize,
    pub jid: i64,
    pub name: String,
    pub net: OfficeNet,
    pub cred: SensorCredential,
    /// Contact ids by priority (1 and 2).
    pub contacts: Vec<(i64, i64)>,
    pub real: Option<RealSensor>,
}

/// A real sensor pipeline's moving parts.
pub struct RealSensor {
    pub dir: PathBuf,
    pub spool: Spool,
    pub relay: RelayHandle,
    /// Held for the drill's length: the sensor follows the hub's indicators while it lives.
    pub _sync: ward_sensor::indicator_sync::SyncHandle,
    pub indicators: PathBuf,
}

/// When each step of one (inject, target) happened, as the runner saw it.
#[derive(Debug, Clone, Default)]
pub struct Injected {
    pub inject: usize,
    pub office: usize,
    pub injected_ms: i64,
    pub detected_ms: Option<i64>,
    pub received_ms: Option<i64>,
    /// A disinformation inject's case at the hub.
    pub case_id: Option<i64>,
    pub error: Option<String>,
}

/// An acknowledgement the simulated people gave.
#[derive(Debug, Clone)]
pub struct AckDone {
    pub office: usize,
    pub campaign_id: i64,
    pub at_ms: i64,
    pub action: String,
}

/// Everything the run saw, for [`super::measure`].
pub struct Observed {
    pub started_ms: i64,
    pub finished_ms: i64,
    pub hub_label: String,
    pub offices: Vec<OfficeInfo>,
    pub injected: Vec<Injected>,
    pub acks: Vec<AckDone>,
    /// Campaigns of the drill's actors.
    pub campaigns: Vec<Value>,
    /// Their notifications.
    pub notifications: Vec<Value>,
}

/// What measurement needs of an office.
#[derive(Debug, Clone)]
pub struct OfficeInfo {
    pub jid: i64,
    pub name: String,
    pub real_sensor: bool,
    /// Contact id → priority.
    pub contacts: HashMap<i64, i64>,
}

fn say(progress: bool, line: impl AsRef<str>) {
    if progress {
        eprintln!("drill: {}", line.as_ref());
    }
}

/// The analyst's session at the hub.
#[derive(Clone)]
pub struct Api {
    pub client: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl Api {
    pub async fn login(target: &HubTarget) -> anyhow::Result<Api> {
        ward_hub::server::install_crypto_provider();
        let mut b = reqwest::Client::builder().timeout(Duration::from_secs(60)).pool_max_idle_per_host(64);
        if let Some(ca) = &target.ca {
            let pem = std::fs::read(ca).with_context(|| format!("cannot read the hub's CA file {}", ca.display()))?;
            b = b.tls_certs_only([reqwest::Certificate::from_pem(&pem)?]);
        }
        let client = b.build()?;
        let base = target.url.trim_end_matches('/').to_string();
        let token = crate::demo::login(&client, &base, &target.user, &target.password).await?;
        Ok(Api { client, base, token })
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let mut attempt = 0;
        loop {
            let mut req = self.client.request(method.clone(), format!("{}{path}", self.base)).bearer_auth(&self.token);
            if let Some(b) = &body {
                req = req.json(b);
            }
            let r = req.send().await.with_context(|| format!("{method} {path}"))?;
            let status = r.status();
            if status.as_u16() == 429 && attempt < 50 {
                // The hub's per-user rate limit: wait as it says and go on.
                attempt += 1;
                let after = r.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.2);
                tokio::time::sleep(Duration::from_secs_f64(after.clamp(0.05, 5.0))).await;
                continue;
            }
            let text = r.text().await.unwrap_or_default();
            if !status.is_success() {
                bail!("the hub answered {status} to {method} {path}: {}", text.chars().take(300).collect::<String>());
            }
            return Ok(serde_json::from_str(&text).unwrap_or(Value::Null));
        }
    }

    pub async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(reqwest::Method::GET, path, None).await
    }
}

/// A port nothing listens on (bound, then released): a contact there is refused.
fn closed_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn hook_name(idx: usize, priority: i64) -> String {
    format!("j{idx}p{priority}")
}

fn parse_hook(name: &str) -> Option<(usize, i64)> {
    let rest = name.strip_prefix('j')?;
    let (i, p) = rest.split_once('p')?;
    Some((i.parse().ok()?, p.parse().ok()?))
}

/// Sets one participant up: jurisdiction, two webhook contacts, a sensor credential.
#[allow(clippy::too_many_arguments)]
async fn set_up_office(api: Api, plan: Arc<Plan>, idx: usize, prefix: String, drill_codes: bool, hook: SocketAddr, broken_port: u16, inbox: Inbox, ca: Option<PathBuf>) -> anyhow::Result<Office> {
    let p = &plan.participants[idx];
    let net = OfficeNet::in_24(p.net.0, p.net.1);
    let name = format!("{prefix}{}", p.name);
    let state = if drill_codes { drill_state_code(&plan.states(), &p.state) } else { p.state.clone() };
    let j = api
        .post(
            "/api/v1/jurisdictions",
            json!({"name": name, "kind": if p.is_state { "state" } else { "county" }, "state": state, "home_net": net.home_net(), "drill": true}),
        )
        .await
        .with_context(|| format!("cannot create the jurisdiction {name}"))?;
    let jid = j["id"].as_i64().context("the hub's jurisdiction has no id")?;
    let mut contacts = Vec::new();
    for priority in [1i64, 2] {
        let secret = ward_hub::auth::random_token("whs");
        let hook_name = hook_name(idx, priority);
        inbox.set_secret(&hook_name, &secret);
        let addr = if priority == 1 && p.broken_contact { SocketAddr::from(([127, 0, 0, 1], broken_port)) } else { hook };
        let c = api
            .post(
                &format!("/api/v1/jurisdictions/{jid}/contacts"),
                json!({"channel": "webhook", "target": format!("http://{addr}/hook/{hook_name}"), "secret": secret, "priority": priority}),
            )
            .await
            .with_context(|| format!("cannot add a contact to {name}"))?;
        contacts.push((c["id"].as_i64().unwrap_or_default(), priority));
    }
    let t = api.post(&format!("/api/v1/jurisdictions/{jid}/sensor-tokens"), json!({})).await?;
    let token = t["token"].as_str().context("the hub gave no sensor token")?.to_string();
    let cred = relay::enroll(&api.base, &token, ca.as_deref(), &format!("drill-sensor-{idx}")).await.with_context(|| format!("the sensor of {name} could not enrol"))?;
    Ok(Office { idx, jid, name, net, cred, contacts, real: None })
}

/// Starts a real sensor's spool, relay and indicator sync, and waits until it has the hub's
/// indicators up to `latest`.
fn start_real_sensor(office: &Office, work: &Path, latest: i64) -> anyhow::Result<RealSensor> {
    let dir = work.join(format!("sensor-{}", office.idx));
    std::fs::create_dir_all(&dir)?;
    let spool = Spool::open(dir.join("spool"), SpoolConfig::default())?;
    let relay = Relay::spawn(spool.clone(), RelayConfig::new(office.cred.clone()))?;
    let indicators = dir.join("hub-indicators.csv");
    // The sync writes the file when the hub's list has something; a drill without domains
    // starts with an empty list.
    if !indicators.exists() {
        std::fs::write(&indicators, "")?;
    }
    let mut cfg = ward_sensor::indicator_sync::SyncConfig::new(office.cred.clone(), indicators.clone());
    cfg.wait_secs = 5;
    let sync = ward_sensor::indicator_sync::spawn(cfg, None)?;
    if !sync.wait_for(latest, Duration::from_secs(60)) {
        bail!("the sensor of {} did not get the hub's indicators in 60 s", office.name);
    }
    Ok(RealSensor { dir, spool, relay, _sync: sync, indicators })
}

fn ip(a: [u8; 4]) -> String {
    format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3])
}

/// An EVE timestamp (Suricata's format, as the sensor writes it).
fn eve_time(ms: i64) -> String {
    ward_model::time::Timestamp::from_micros(ms.saturating_mul(1000)).to_string()
}

/// The alert a real sensor would have written for `attack` on `net`.
fn simulated_alert(inject: &Inject, attack: &Attack, net: &OfficeNet, at_ms: i64) -> Option<Value> {
    let signature = attack::expected_signature(attack, net)?;
    let (gid, sid) = match attack.kind.detection() {
        Detection::ScanDetector => (9001, if attack.kind == AttackKind::PortScan { 1 } else { 2 }),
        Detection::Rule(sid) => (1, sid),
        Detection::Indicator => (9000, 3),
        Detection::Nothing => return None,
    };
    let actor = ip(attack.actor);
    let (src, dst, dport) = match attack.kind {
        AttackKind::PhishingLink => (ip(net.workstation), actor, 80),
        AttackKind::Beacon => (ip(net.workstation), actor, 443),
        AttackKind::SmbLateral => (ip(net.workstation), format!("10.{}.{}.150", net.web_server[1], net.web_server[2]), 445),
        AttackKind::Ddos => (actor, ip(net.results_server), 443),
        AttackKind::Sweep => (actor, ip(net.web_server), 443),
        _ => (actor, ip(net.web_server), 80),
    };
    let mut v = json!({
        "timestamp": eve_time(at_ms),
        "event_type": "alert",
        "src_ip": src, "src_port": 40_000, "dest_ip": dst, "dest_port": dport, "proto": "TCP",
        "alert": {"action": "allowed", "gid": gid, "signature_id": sid, "rev": 1, "signature": signature, "category": "", "severity": 2},
        "ward_drill": {"inject": inject.id},
    });
    if attack.kind == AttackKind::PhishingLink {
        v["http"] = json!({"hostname": attack.domain, "url": "/voter-roll/verify?id=48213", "http_method": "GET"});
    }
    Some(v)
}

/// Writes a capture for a real sensor — `traffic_kib` of ordinary office traffic ending now,
/// with `attack` laid over its end when there is one — runs the sensor pipeline over it, and
/// waits until its relay has the hub's acknowledgement. Returns the EVE alerts it wrote, when
/// the pipeline had read the capture, and when the relay drained.
async fn run_capture(office: &Office, real: &RealSensor, tag: &str, traffic_kib: u64, rules: &Path, seed: u64, attack: Option<Attack>) -> anyhow::Result<(Vec<Value>, i64, Option<i64>)> {
    let dir = real.dir.join(tag);
    std::fs::create_dir_all(&dir)?;
    let pcap = dir.join("traffic.pcap");
    let net = office.net;
    let now_us = now_ms() as u64 * 1000;
    let opts = mix::Options {
        target_bytes: traffic_kib * 1024,
        seed: seed ^ office.idx as u64,
        hosts: 30,
        concurrency: 30,
        weights: MixWeights::parse("http=30,dns=40,tls=28,icmp=2")?,
        ipv6_share: 0.0,
        vlan_share: 0.0,
        start_us: now_us.saturating_sub(2_000_000),
    };
    let p = pcap.clone();
    tokio::task::spawn_blocking(move || {
        attack::write_capture(&p, &opts, |_, end| match attack {
            Some(a) => attack::frames(&Attack { start_us: end + 1_000, ..a }, &net, &mut Rng::new(seed)),
            None => Ok(Vec::new()),
        })
    })
    .await??;
    crate::demo::run_sensor(&dir, &pcap, rules, &real.indicators, &net.home_net(), real.spool.clone()).await?;
    let ran_ms = now_ms();
    let eve = std::fs::read_to_string(dir.join("eve.json")).unwrap_or_default();
    let alerts = eve.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).filter(|v| v["event_type"] == "alert").collect();
    let relay_handle = &real.relay;
    let drained = tokio::task::block_in_place(|| relay_handle.wait_drained(Duration::from_secs(30)));
    Ok((alerts, ran_ms, drained.then(now_ms)))
}

/// Files a disinformation inject's report for `office` (as the analyst, on its behalf), naming
/// every target of the inject. Returns the case it joined.
async fn file_report(api: &Api, inject: &Inject, office: &Office, concerns: &[i64]) -> anyhow::Result<i64> {
    let claim = inject.claim.as_ref().context("a disinformation inject has a claim")?;
    let body = json!({
        "jurisdiction_id": office.jid,
        "urls": [claim.url],
        "platform": claim.platform,
        "category": claim.category,
        "claim": claim.claim,
        "truth": claim.truth,
        "citation": claim.citation,
        "concerns": concerns,
    });
    let r = api.post("/api/v1/disinfo/reports", body).await.context("the hub did not take the disinformation report (a hub without the disinformation path cannot run this inject)")?;
    r["case"]["id"].as_i64().context("the hub's answer names no case")
}

/// Plays one (inject, office): writes and runs the real capture, posts the simulated alert, or
/// files the disinformation report.
#[allow(clippy::too_many_arguments)]
async fn play(inject: Inject, inject_idx: usize, office: Arc<Office>, traffic_kib: u64, rules: PathBuf, seed: u64, client: HubClient, api: Api, concerns: Vec<i64>) -> Injected {
    let injected_ms = now_ms();
    let mut rec = Injected { inject: inject_idx, office: office.idx, injected_ms, ..Default::default() };
    let kind = match inject.kind {
        InjectKind::Attack(k) => k,
        InjectKind::Disinfo => {
            match file_report(&api, &inject, &office, &concerns).await {
                Ok(case) => {
                    let at = now_ms();
                    (rec.detected_ms, rec.received_ms, rec.case_id) = (Some(at), Some(at), Some(case));
                }
                Err(e) => rec.error = Some(format!("{e:#}")),
            }
            return rec;
        }
    };
    let attack = Attack { kind, actor: inject.actor.octets(), domain: inject.domain.clone(), start_us: 0 };
    let result: anyhow::Result<(Option<i64>, Option<i64>)> = async {
        match &office.real {
            Some(real) => {
                let (alerts, ran_ms, drained) = run_capture(&office, real, &format!("inject-{inject_idx}"), traffic_kib, &rules, seed ^ (inject_idx as u64) << 32, Some(attack.clone())).await?;
                let detected = alerts.iter().any(|v| match inject.kind.detection() {
                    Detection::ScanDetector => v["alert"]["gid"] == 9001,
                    Detection::Rule(sid) => v["alert"]["signature_id"] == sid,
                    Detection::Indicator => v["alert"]["gid"] == 9000,
                    Detection::Nothing => false,
                });
                Ok((detected.then_some(ran_ms), drained))
            }
            None => {
                let Some(alert) = simulated_alert(&inject, &attack, &office.net, injected_ms) else {
                    return Ok((None, None));
                };
                let detected = now_ms();
                let seq = (inject_idx as u64 + 1) << 20 | office.idx as u64;
                let batch = relay::encode_batch(&[Record { seq, payload: alert.to_string().into_bytes() }]);
                let key = relay::idempotency_key(office.cred.sensor_id, seq);
                for _ in 0..20 {
                    match client.post_batch(&office.cred.credential, &key, batch.gzip_body.clone()).await {
                        Reply::Acked(_) => return Ok((Some(detected), Some(now_ms()))),
                        Reply::Retry { after, .. } => tokio::time::sleep(after.unwrap_or(Duration::from_millis(200))).await,
                        Reply::TooLarge => bail!("the hub refused a one-alert batch as too large"),
                        Reply::Refused { status, message } => bail!("the hub refused the alert: {status} {message}"),
                    }
                }
                bail!("the hub did not take the alert after 20 tries")
            }
        }
    }
    .await;
    match result {
        Ok((d, r)) => {
            rec.detected_ms = d;
            rec.received_ms = r;
        }
        Err(e) => rec.error = Some(format!("{e:#}")),
    }
    rec
}

/// Plays the people: acknowledges warnings that reach them.
fn spawn_people(inbox: &Inbox, plan: Arc<Plan>, speed: f64, api: Api, acks: Arc<Mutex<Vec<AckDone>>>, pending: Arc<AtomicUsize>) -> tokio::task::JoinHandle<()> {
    let mut rx = inbox.follow();
    tokio::spawn(async move {
        let mut tasks = JoinSet::new();
        while let Some(m) = rx.recv().await {
            let Some((office, _priority)) = parse_hook(&m.to) else { continue };
            let Ok(v) = serde_json::from_str::<Value>(&m.body) else { continue };
            let kind = v["type"].as_str().unwrap_or("");
            if !matches!(kind, "ward.campaign.targeted" | "ward.campaign.unacked") {
                continue;
            }
            let (Some(url), Some(nid)) = (v["ack_url"].as_str(), v["id"].as_i64()) else { continue };
            let campaign_id = v["campaign"]["id"].as_i64().unwrap_or_default();
            let mut rng = Rng::new(plan.seed ^ (nid as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let Some((delay_secs, action)) = plan.people.draw(&mut rng) else { continue };
            let url = if url.starts_with('/') { format!("{}{url}", api.base) } else { url.to_string() };
            let (api, acks, pending) = (api.clone(), acks.clone(), pending.clone());
            pending.fetch_add(1, Ordering::SeqCst);
            tasks.spawn(async move {
                tokio::time::sleep(Duration::from_secs_f64((delay_secs / speed).min(3600.0))).await;
                let r = api.client.post(&url).header("content-type", "application/x-www-form-urlencoded").body(format!("action={action}")).send().await;
                if matches!(&r, Ok(r) if r.status().is_success()) {
                    acks.lock().unwrap_or_else(|p| p.into_inner()).push(AckDone { office, campaign_id, at_ms: now_ms(), action });
                }
                pending.fetch_sub(1, Ordering::SeqCst);
            });
        }
        while tasks.join_next().await.is_some() {}
    })
}

/// Runs the drill against `target` and returns what it saw.
pub async fn run(plan: Plan, target: &HubTarget, opts: &RunOptions) -> anyhow::Result<Observed> {
    let plan = Arc::new(plan);
    let started_ms = now_ms();
    let t0 = Instant::now();
    std::fs::create_dir_all(&opts.work)?;
    let inbox = Inbox::default();
    let hook = receivers::start_webhook(inbox.clone()).await?;
    let api = Api::login(target).await.context("cannot log in to the hub as the drill's analyst")?;
    let acks = Arc::new(Mutex::new(Vec::new()));
    let pending = Arc::new(AtomicUsize::new(0));
    let people = spawn_people(&inbox, plan.clone(), opts.speed, api.clone(), acks.clone(), pending.clone());

    // 1. The indicators an ISAC would already have: the injects' domains.
    let mut domains: Vec<&str> = plan.injects.iter().filter(|i| !i.domain.is_empty()).map(|i| i.domain.as_str()).collect();
    domains.sort_unstable();
    domains.dedup();
    for d in &domains {
        api.post("/api/v1/indicators", json!({"kind": "domain", "value": d, "description": format!("drill {}: known-bad domain", plan.name), "severity": "high"})).await?;
    }

    // 2. Participants, in parallel.
    say(opts.progress, format!("setting up {} jurisdictions ({} real sensors) at {}", plan.participants.len(), plan.participants.iter().filter(|p| p.real_sensor).count(), target.url));
    let broken = closed_port()?;
    let sem = Arc::new(Semaphore::new(opts.setup_concurrency.max(1)));
    let mut set = JoinSet::new();
    for idx in 0..plan.participants.len() {
        let (api, plan, sem, inbox, prefix, ca) = (api.clone(), plan.clone(), sem.clone(), inbox.clone(), target.name_prefix.clone(), target.ca.clone());
        let codes = target.drill_state_codes;
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            set_up_office(api, plan, idx, prefix, codes, hook, broken, inbox, ca).await
        });
    }
    let mut offices: Vec<Option<Office>> = (0..plan.participants.len()).map(|_| None).collect();
    let mut done = 0usize;
    while let Some(r) = set.join_next().await {
        let o = r??;
        let i = o.idx;
        offices[i] = Some(o);
        done += 1;
        if done.is_multiple_of(1000) {
            say(opts.progress, format!("{done} of {} jurisdictions set up ({:.0} s)", plan.participants.len(), t0.elapsed().as_secs_f64()));
        }
    }
    let mut offices: Vec<Office> = offices.into_iter().map(|o| o.expect("every office set up")).collect();
    say(opts.progress, format!("{} jurisdictions set up in {:.1} s", offices.len(), t0.elapsed().as_secs_f64()));

    // 3. Real sensors.
    let rules = opts.work.join("attacks.rules");
    std::fs::write(&rules, attack::RULES)?;
    let latest = api.get("/api/v1/indicators?since=0").await?;
    let latest = latest["cursor"].as_i64().unwrap_or(0);
    for o in offices.iter_mut().filter(|o| plan.participants[o.idx].real_sensor) {
        let work = opts.work.clone();
        let started = tokio::task::block_in_place(|| start_real_sensor(o, &work, latest))?;
        o.real = Some(started);
    }
    let offices: Vec<Arc<Office>> = offices.into_iter().map(Arc::new).collect();
    // Every real pipeline first reads a capture of its office's ordinary traffic: the sensors
    // work before the attack, and anything they raise on ordinary traffic would show here.
    let mut set = JoinSet::new();
    for o in offices.iter().filter(|o| o.real.is_some()) {
        let (o, rules, kib, seed) = (o.clone(), rules.clone(), plan.traffic_kib, plan.seed);
        set.spawn(async move {
            let real = o.real.as_ref().expect("filtered on real sensors");
            run_capture(&o, real, "ordinary", kib, &rules, seed, None).await.map(|(alerts, _, _)| alerts.len())
        });
    }
    let (mut ran, mut raised) = (0usize, 0usize);
    while let Some(r) = set.join_next().await {
        raised += r??;
        ran += 1;
    }
    if ran > 0 {
        say(opts.progress, format!("{ran} real sensor pipelines read their office's ordinary traffic ({} KiB each): {raised} alerts", plan.traffic_kib));
    }

    // 4. Every simulated relay reports one batch of ordinary records (the population's load).
    let client = HubClient::new(&target.url, target.ca.as_deref(), Duration::from_secs(30))?;
    let mut set = JoinSet::new();
    for o in offices.iter().filter(|o| o.real.is_none()) {
        let (o, client, sem) = (o.clone(), client.clone(), sem.clone());
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let at = now_ms();
            let records: Vec<Record> = (0..5u64)
                .map(|i| {
                    let line = json!({"timestamp": eve_time(at), "event_type": "dns", "src_ip": ip(o.net.workstation), "dest_ip": ip(o.net.resolver), "proto": "UDP",
                        "dns": {"type": "query", "rrname": format!("www{i}.county-services.example"), "rrtype": "A"}});
                    Record { seq: i, payload: line.to_string().into_bytes() }
                })
                .collect();
            let batch = relay::encode_batch(&records);
            client.post_batch(&o.cred.credential, &relay::idempotency_key(o.cred.sensor_id, 0), batch.gzip_body).await
        });
    }
    let mut refused = 0;
    while let Some(r) = set.join_next().await {
        if !matches!(r?, Reply::Acked(_)) {
            refused += 1;
        }
    }
    if refused > 0 {
        say(opts.progress, format!("{refused} simulated relays' first batch was not taken (the report counts only the injects)"));
    }

    // 5. The timeline.
    say(opts.progress, format!("playing {} injects over {:.0} s of scenario time at speed {} ({:.1} s)", plan.injects.len(), plan.last_inject_secs(), opts.speed, plan.last_inject_secs() / opts.speed));
    let clock = Instant::now();
    let mut schedule: Vec<(f64, usize, usize)> = Vec::new();
    for (ii, inj) in plan.injects.iter().enumerate() {
        let n = inj.targets.len();
        for (k, &t) in inj.targets.iter().enumerate() {
            let offset = inj.at_secs + if n > 1 { inj.spread_secs * k as f64 / (n - 1) as f64 } else { 0.0 };
            schedule.push((offset, ii, t));
        }
    }
    schedule.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut plays = JoinSet::new();
    for (offset, ii, t) in schedule {
        let due = Duration::from_secs_f64(offset / opts.speed);
        if let Some(wait) = due.checked_sub(clock.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        let inject = plan.injects[ii].clone();
        let (office, rules, client) = (offices[t].clone(), rules.clone(), client.clone());
        let concerns: Vec<i64> = plan.injects[ii].targets.iter().map(|&x| offices[x].jid).collect();
        plays.spawn(play(inject, ii, office, plan.traffic_kib, rules, plan.seed, client, api.clone(), concerns));
    }
    let mut injected = Vec::new();
    while let Some(r) = plays.join_next().await {
        injected.push(r?);
    }
    for i in injected.iter().filter(|i| i.error.is_some()) {
        say(opts.progress, format!("inject {} at {}: {}", plan.injects[i.inject].id, offices[i.office].name, i.error.as_deref().unwrap_or("")));
    }

    // 6. Wait for warnings, escalations and acknowledgements: until every expected warning
    //    is delivered and no acknowledgement is pending, or the settle time is over.
    let settle = Duration::from_secs_f64(opts.settle_secs);
    let mut cases: Vec<i64> = injected.iter().filter_map(|i| i.case_id).collect();
    cases.sort_unstable();
    cases.dedup();
    let waited = Instant::now();
    say(opts.progress, format!("waiting up to {:.0} s for warnings, escalations and acknowledgements", settle.as_secs_f64()));
    // Who must hear: every office an attack the hub correlates targeted, and its state.
    let mut must: Vec<i64> = Vec::new();
    for inj in plan.injects.iter().filter(|i| i.kind.sighting()) {
        for &t in &inj.targets {
            must.push(offices[t].jid);
            let st = &plan.participants[t].state;
            if let Some(s) = offices.iter().find(|o| plan.participants[o.idx].is_state && &plan.participants[o.idx].state == st) {
                must.push(s.jid);
            }
        }
    }
    must.sort_unstable();
    must.dedup();
    let (campaigns, notifications) = loop {
        let (campaigns, notifications) = collect(&api, &plan, &cases).await?;
        let heard = |jid: i64| notifications.iter().any(|n| n["jurisdiction_id"].as_i64() == Some(jid) && !n["delivered_ms"].is_null());
        let all_heard = must.iter().all(|&j| heard(j));
        // A moment for acknowledgements that are about to be drawn for the last deliveries.
        if (all_heard && pending.load(Ordering::SeqCst) == 0 && waited.elapsed() > Duration::from_secs(2)) || waited.elapsed() >= settle {
            break (campaigns, notifications);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    people.abort();
    let acks = acks.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let infos = offices
        .iter()
        .map(|o| OfficeInfo { jid: o.jid, name: o.name.clone(), real_sensor: o.real.is_some(), contacts: o.contacts.iter().copied().collect() })
        .collect();
    Ok(Observed { started_ms, finished_ms: now_ms(), hub_label: target.label.clone(), offices: infos, injected, acks, campaigns, notifications })
}

/// The campaigns of the drill's actors and their notifications, and the notifications of its
/// disinformation cases (their `campaign_id` is the case id negated).
async fn collect(api: &Api, plan: &Plan, cases: &[i64]) -> anyhow::Result<(Vec<Value>, Vec<Value>)> {
    let all = api.get("/api/v1/campaigns").await?;
    let actors: Vec<String> = plan.injects.iter().filter(|i| !i.kind.is_disinfo()).flat_map(|i| {
        let o = i.actor.octets();
        [format!("ip:{}", i.actor), format!("net:{}.{}.{}.0/24", o[0], o[1], o[2])]
    }).collect();
    let campaigns: Vec<Value> = all
        .as_array()
        .map(|a| a.iter().filter(|c| c["keys"].as_array().is_some_and(|k| k.iter().any(|k| actors.iter().any(|x| k.as_str() == Some(x))))).cloned().collect())
        .unwrap_or_default();
    let mut notifications = Vec::new();
    let mut seen = BTreeMap::new();
    let ids: Vec<i64> = campaigns.iter().map(|c| c["id"].as_i64().unwrap_or_default()).chain(cases.iter().map(|c| -c)).collect();
    for id in ids {
        let list = api.get(&format!("/api/v1/notifications?campaign_id={id}&limit=1000")).await?;
        for n in list.as_array().into_iter().flatten() {
            if seen.insert(n["id"].as_i64().unwrap_or_default(), ()).is_none() {
                notifications.push(n.clone());
            }
        }
    }
    Ok((campaigns, notifications))
}
