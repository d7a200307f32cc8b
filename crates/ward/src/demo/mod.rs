//! `ward demo`: the whole system on one machine, in about a minute.
//!
//! It starts the embedded hub (SQLite in the demo directory, HTTPS with a self-signed
//! certificate), registers a state and four counties with a webhook and an email contact each
//! (served by [`receivers`] on loopback), enrolls one real sensor per jurisdiction, writes each
//! jurisdiction's traffic ([`scenario`]) and runs the sensor over it with the demo rules, the
//! hub's indicators and the scan detector. Every sensor relays through its own on-disk spool and
//! the HTTPS path, exactly as in production. Then it shows what each office would have seen and
//! measures how fast: the campaign, the warnings with their latencies, the indicator reaching
//! the offices the actor has not touched yet, the retro-hunt finding the early contact, and the
//! campaign exported as STIX 2.1 for sharing, a second hub (a neighbouring state's) that
//! this hub pushes what it publishes to, putting the actor on its sensors' list too, and a
//! disinformation report: a false claim about polling hours reported by one county reaches the
//! other county it names and the state, and a second county's report of it joins the same case.
//!
//! `--once` prints the summary and exits 0 only if every expected warning arrived.

mod scenario;

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Value};

use ward_hub::model::{now_ms, Channel, JurisdictionKind, NewContact, NewJurisdiction, Role as UserRole};
use ward_hub::HubConfig;
use ward_sensor::config::{EveOutput, Input, SensorConfig};
use ward_sensor::detect::{DetectConfig, Engines};
use ward_sensor::eve_out::EveSink;
use ward_sensor::hubsink::{HomeNet, HubSelection, HubWriter, SharedHubWriter};
use ward_sensor::indicator_sync::{self, SyncConfig};
use ward_sensor::relay::{Relay, RelayConfig, SensorCredential};
use ward_sensor::spool::{Spool, SpoolConfig};

use crate::receivers::{self, Inbox};
use scenario::{Role, Site, ACTOR, BAD_DOMAIN};

/// The demo's own rules: what a state would add to ET Open for its election systems.
const DEMO_RULES: &str = include_str!("demo.rules");

/// Options of `ward demo`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    ward demo                     # run the scenario, then keep the hub and dashboard up (Ctrl-C stops)\n  \
    ward demo --once              # run the scenario, print the summary, exit 0 if every warning arrived\n  \
    ward demo --dir /tmp/wd --listen 127.0.0.1:9443")]
pub struct DemoArgs {
    /// Directory for everything the demo writes (hub store, certificates, captures, spools, EVE
    /// files). Created if missing; a directory from an earlier demo is wiped first, any other
    /// non-empty directory is refused.
    #[arg(long, value_name = "DIR", default_value = "ward-demo")]
    dir: PathBuf,

    /// Address of the hub (HTTPS, self-signed) and its dashboard. Loopback only.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8443")]
    listen: SocketAddr,

    /// Run the scenario, print the summary and exit: 0 when every expected warning arrived, 1
    /// when one did not.
    #[arg(long)]
    once: bool,

    /// Ordinary traffic per jurisdiction, in KiB (the attack is laid over it).
    #[arg(long, value_name = "KIB", default_value_t = 1536)]
    traffic_kib: u64,

    /// How long to wait for the warnings, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    timeout: u64,
}

/// Marker file that makes a directory safe to wipe on the next run.
const MARKER: &str = ".ward-demo";

struct Office {
    site: Site,
    kind: JurisdictionKind,
    slug: &'static str,
    home_net: &'static str,
    jurisdiction_id: i64,
    credential: Option<SensorCredential>,
}

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    if !args.listen.ip().is_loopback() {
        bail!("the demo listens on loopback only; give --listen 127.0.0.1:PORT");
    }
    // Held until the demo ends: a second `ward demo` on the same directory is refused instead
    // of wiping the running one's store under its hub.
    let _lock = prepare_dir(&args.dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    let ok = rt.block_on(demo(args))?;
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The lock file inside the demo directory; the running demo holds an exclusive lock on it.
const LOCK: &str = ".ward-demo.lock";

/// Wipes an earlier demo's directory (never a foreign one, never a running demo's) and takes
/// the lock that says a demo runs in it.
fn prepare_dir(dir: &Path) -> anyhow::Result<fs::File> {
    if let Ok(f) = fs::File::open(dir.join(LOCK)) {
        if let Err(fs::TryLockError::WouldBlock) = f.try_lock() {
            bail!("another `ward demo` is running in {}: stop it (Ctrl-C) first, or give this one another --dir", dir.display());
        }
    }
    if dir.exists() {
        let empty = fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?.next().is_none();
        if !empty {
            if !dir.join(MARKER).exists() {
                bail!("{} exists and is not from an earlier demo; give another --dir or empty it", dir.display());
            }
            fs::remove_dir_all(dir).with_context(|| format!("cannot clear the earlier demo in {}", dir.display()))?;
        }
    }
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    fs::write(dir.join(MARKER), "ward demo directory: `ward demo` wipes and rewrites it\n")?;
    let lock = fs::File::create(dir.join(LOCK)).with_context(|| format!("cannot create {}", dir.join(LOCK).display()))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(fs::TryLockError::WouldBlock) => bail!("another `ward demo` started in {} at the same moment; stop it first", dir.display()),
        Err(fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("cannot lock {}", dir.join(LOCK).display())),
    }
}

fn offices() -> Vec<Office> {
    let o = |name, kind, slug, net: &'static str, third: u8, role| Office {
        site: Site {
            name,
            web_server: [10, third, 0, 80],
            workstation: [10, third, 1, 23],
            resolver: [10, third, 0, 53],
            role,
        },
        kind,
        slug,
        home_net: net,
        jurisdiction_id: 0,
        credential: None,
    };
    vec![
        o("Dover County", JurisdictionKind::County, "dover", "10.4.0.0/16", 4, Role::EarlyContact),
        o("Adams County", JurisdictionKind::County, "adams", "10.1.0.0/16", 1, Role::ScannedAndInjected),
        o("Baker County", JurisdictionKind::County, "baker", "10.2.0.0/16", 2, Role::ScannedAndBadLookup),
        o("Clark County", JurisdictionKind::County, "clark", "10.3.0.0/16", 3, Role::Scanned),
        o("State of Franklin", JurisdictionKind::State, "franklin", "10.0.0.0/16", 0, Role::Quiet),
    ]
}

/// The state's first roll-up webhook (when it arrived, the counties it names), if it came.
fn received_rollup(received: &[receivers::Received], state_slug: &str) -> Option<(SystemTime, Vec<String>)> {
    received.iter().filter(|m| m.channel == "webhook" && m.to == state_slug).find_map(|m| {
        let v: serde_json::Value = serde_json::from_str(&m.body).ok()?;
        (v["type"] == "ward.campaign.state_targeted").then(|| {
            let names = v["counties"].as_array().map(|a| a.iter().filter_map(|c| c["name"].as_str().map(String::from)).collect()).unwrap_or_default();
            (m.at, names)
        })
    })
}

fn say(line: impl AsRef<str>) {
    println!("{}", line.as_ref());
    let _ = std::io::stdout().flush();
}

async fn demo(args: DemoArgs) -> anyhow::Result<bool> {
    let dir = fs::canonicalize(&args.dir)?;
    let started = Instant::now();
    say(format!("ward demo: everything goes to {}", dir.display()));

    // The offices' inboxes.
    let inbox = Inbox::default();
    let hook_addr = receivers::start_webhook(inbox.clone()).await?;
    let smtp_addr = receivers::start_smtp(inbox.clone()).await?;

    // The hub, over HTTPS with a certificate made for this run.
    let (cert, key) = ward_hub::server::self_signed_pem()?;
    let (cert_path, key_path) = (dir.join("hub.crt"), dir.join("hub.key"));
    fs::write(&cert_path, cert)?;
    fs::write(&key_path, key)?;
    let mut config = HubConfig::default();
    // A port of 0 becomes a real one now: the links in the messages (public_url) must name it.
    let mut listen = args.listen;
    if listen.port() == 0 {
        listen.set_port(std::net::TcpListener::bind(listen).with_context(|| format!("cannot listen on {listen}"))?.local_addr()?.port());
    }
    config.listen = listen;
    config.data_dir = dir.join("hub");
    config.tls.cert = Some(cert_path.clone());
    config.tls.key = Some(key_path);
    config.notify.smtp_host = "127.0.0.1".into();
    config.notify.smtp_port = smtp_addr.port();
    config.notify.smtp_tls = ward_hub::config::SmtpTls::None;
    // The offices' webhook receiver is on loopback: deliveries there are refused unless allowed.
    config.notify.allow_targets = vec![ward_hub::notify::egress::AllowedNet(std::net::IpAddr::from([127, 0, 0, 1]).into())];
    config.public_url = format!("https://{listen}");
    config.limits.sensor_batches_per_sec = 1000.0;
    config.limits.user_requests_per_sec = 1000.0;
    fs::create_dir_all(&config.data_dir)?;
    // A neighbouring state's hub in the federation: this hub pushes what it publishes to it.
    let neighbour = start_neighbour(&dir, &mut config).await?;
    let hub = ward_hub::start(config).await.with_context(|| format!("cannot start the hub on {listen}"))?;
    let hub_url = format!("https://localhost:{}", hub.addr.port());
    let store = hub.state.store.clone();
    say(format!("hub: {hub_url} (self-signed certificate {})", cert_path.display()));

    // People and places.
    let password: String = ward_hub::auth::random_token("demo").chars().take(21).collect();
    let phc = ward_hub::auth::hash_password(&password).map_err(|e| anyhow::anyhow!("{e}"))?;
    store.create_user("analyst", &phc, UserRole::Analyst, None, now_ms())?;
    let mut offices = offices();
    for office in &mut offices {
        let j = store.create_jurisdiction(
            &NewJurisdiction {
                name: office.site.name.to_string(),
                kind: office.kind,
                state: Some("FR".into()),
                home_net: Some(office.home_net.into()),
            },
            now_ms(),
        )?;
        office.jurisdiction_id = j.id;
        let secret = ward_hub::auth::random_token("whs");
        inbox.set_secret(office.slug, &secret);
        store.create_contact(
            j.id,
            &NewContact { channel: Channel::Webhook, target: format!("http://{hook_addr}/hook/{}", office.slug), secret: Some(secret) },
            now_ms(),
        )?;
        store.create_contact(
            j.id,
            &NewContact { channel: Channel::Email, target: format!("elections-it@{}.example", office.slug), secret: None },
            now_ms(),
        )?;
    }
    say(format!(
        "jurisdictions: {} (each with a signed webhook on {hook_addr} and email via SMTP on {smtp_addr})",
        offices.iter().map(|o| o.site.name).collect::<Vec<_>>().join(", ")
    ));

    // The known-bad domain on the hub's feed, as an analyst would add it.
    let client = hub_client(&cert_path)?;
    let token = login(&client, &hub_url, "analyst", &password).await?;
    add_indicator(&client, &hub_url, &token, "domain", BAD_DOMAIN, "Phishing domain imitating voter-roll updates").await?;
    say(format!("hub indicator feed: {BAD_DOMAIN} (added by an analyst)"));

    // One real sensor per jurisdiction: enroll, sync indicators, generate traffic, run, relay.
    let rules_path = dir.join("demo.rules");
    fs::write(&rules_path, DEMO_RULES)?;
    let now_us = SystemTime::now().duration_since(UNIX_EPOCH)?.as_micros() as u64;
    let capture_start = now_us - 10 * 60 * 1_000_000;
    let mut relays = Vec::new();
    let mut syncs = Vec::new();
    let mut sensor_totals = (0u64, 0u64);
    for (i, office) in offices.iter_mut().enumerate() {
        let sdir = dir.join(office.slug);
        fs::create_dir_all(&sdir)?;
        let token = ward_hub::auth::random_token("wet");
        let now = now_ms();
        store.create_enrollment_token(office.jurisdiction_id, &ward_hub::auth::hash_token(&token), now, now + 3_600_000)?;
        let cred = ward_sensor::relay::enroll(&hub_url, &token, Some(&cert_path), &format!("{}-sensor-1", office.slug))
            .await
            .with_context(|| format!("sensor of {} could not enroll", office.site.name))?;
        cred.save(&sdir.join("credential.json"))?;
        let indicators = sdir.join("hub-indicators.csv");
        // The sensor follows the hub's indicator feed live (long-poll); it starts once it has
        // the whole feed as it stands.
        let mut sync_cfg = SyncConfig::new(cred.clone(), indicators.clone());
        sync_cfg.wait_secs = 5;
        let sync = indicator_sync::spawn(sync_cfg, None)?;
        let latest = store.indicators_since(0, 100_000)?.last().map_or(0, |i| i.seq);
        let synced = tokio::task::block_in_place(|| sync.wait_for(latest, Duration::from_secs(args.timeout)));
        if !synced {
            bail!("the sensor of {} did not get the hub's indicators in {} s", office.site.name, args.timeout);
        }
        let n = sync.stats().indicators;
        syncs.push((office.jurisdiction_id, sync));

        // Earlier contact happened days before the others in the story, but the capture is
        // replayed now: its time is what the hub compares with the indicator's.
        let start = if office.site.role == Role::EarlyContact { capture_start - 3 * 86_400_000_000 } else { capture_start };
        let pcap = sdir.join("traffic.pcap");
        let site = office.site.clone();
        let kib = args.traffic_kib;
        let packets = tokio::task::spawn_blocking({
            let pcap = pcap.clone();
            move || scenario::write_capture(&pcap, &site, 1000 + i as u64, start, kib * 1024)
        })
        .await??;

        let spool = Spool::open(sdir.join("spool"), SpoolConfig::default())?;
        let relay = Relay::spawn(spool.clone(), RelayConfig::new(cred.clone()))?;
        let summary = run_sensor(&sdir, &pcap, &rules_path, &indicators, office.home_net, spool).await?;
        sensor_totals.0 += packets;
        sensor_totals.1 += summary.0;
        say(format!(
            "sensor {:<18} {packets:>6} packets → {:>3} alerts/anomalies and {:>3} contact records spooled for the hub ({n} hub indicators loaded)",
            office.site.name, summary.0, summary.1
        ));
        office.credential = Some(cred);
        relays.push(relay);
    }
    for relay in &relays {
        if !relay.wait_drained(Duration::from_secs(args.timeout)) {
            say("warning: a sensor's spool did not drain in time (is the hub up?)");
        }
    }
    say(format!("relayed: every spooled event acknowledged by the hub ({:.1} s since start)", started.elapsed().as_secs_f64()));

    // What the offices see.
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let expect_warned: Vec<&Office> = offices.iter().filter(|o| matches!(o.site.role, Role::Scanned | Role::ScannedAndInjected | Role::ScannedAndBadLookup)).collect();
    let dover = offices.iter().find(|o| o.site.role == Role::EarlyContact).expect("dover in the scenario");
    let untouched: Vec<&Office> = offices.iter().filter(|o| matches!(o.site.role, Role::Quiet | Role::EarlyContact)).collect();
    let mut report = String::new();
    let mut all_ok = true;

    // 1. The campaign.
    let actor_prefix = format!("{}.{}.{}.", ACTOR[0], ACTOR[1], ACTOR[2]);
    let campaign = loop {
        let open = store.campaigns(false)?;
        if let Some(c) = open.into_iter().find(|c| c.keys.iter().any(|k| k.contains(&actor_prefix))) {
            break Some(c);
        }
        if Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let Some(campaign) = campaign else {
        say("FAILED: no campaign opened for the actor");
        return Ok(false);
    };
    let _ = writeln!(report, "\ncampaign #{} \"{}\": {} jurisdictions, {} sightings, keys {}", campaign.id, campaign.name, campaign.jurisdictions, campaign.sightings, campaign.keys.join(" "));

    // 2. Every targeted office warned on every channel, with the latency from the campaign's
    //    opening (the sighting that made it cross-jurisdictional) to delivery.
    let mut latencies = Vec::new();
    loop {
        let notes = store.notifications(&ward_hub::store::NotificationFilter { limit: 10_000, ..Default::default() })?;
        let mut missing = Vec::new();
        for office in &expect_warned {
            for channel in [Channel::Webhook, Channel::Email] {
                let delivered = notes.iter().any(|n| n.jurisdiction_id == office.jurisdiction_id && n.channel == channel && n.delivered_ms.is_some());
                if !delivered {
                    missing.push(format!("{} by {}", office.site.name, channel.as_str()));
                }
            }
        }
        if missing.is_empty() {
            for n in notes.iter().filter(|n| n.campaign_id == campaign.id) {
                if let Some(d) = n.delivered_ms {
                    latencies.push((n.jurisdiction_id, n.channel, n.event_kind.clone(), d - campaign.opened_ms));
                }
            }
            break;
        }
        if Instant::now() > deadline {
            say(format!("FAILED: not warned in {} s: {}", args.timeout, missing.join(", ")));
            all_ok = false;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let name_of = |id: i64| offices.iter().find(|o| o.jurisdiction_id == id).map_or("?", |o| o.site.name);
    let _ = writeln!(report, "warnings (latency from the campaign opening to delivery):");
    latencies.sort_by(|a, b| (a.0, a.1.as_str(), a.3).cmp(&(b.0, b.1.as_str(), b.3)));
    for (jid, channel, kind, from_open_ms) in &latencies {
        let _ = writeln!(report, "  {:<18} {:<8} {:<10} delivered {:>5} ms after the campaign opened", name_of(*jid), channel.as_str(), kind, from_open_ms);
    }
    if let Some(worst) = latencies.iter().map(|l| l.3).max() {
        let _ = writeln!(report, "  slowest delivery: {worst} ms (target: every targeted office within 1000 ms)");
    }
    let received = inbox.messages();
    let _ = writeln!(
        report,
        "inboxes: {} webhook posts (signatures valid: {}), {} emails",
        received.iter().filter(|m| m.channel == "webhook").count(),
        received.iter().filter(|m| m.channel == "webhook").all(|m| m.signature_ok),
        received.iter().filter(|m| m.channel == "email").count()
    );
    if let Some(first) = received.iter().map(|m| m.at).min() {
        let at_ms = first.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        let _ = writeln!(report, "  the first warning reached an inbox {} ms after the campaign opened", at_ms - campaign.opened_ms);
    }
    if let Some(m) = received.iter().find(|m| m.channel == "email") {
        let subject = m.body.lines().find(|l| l.starts_with("Subject:")).unwrap_or("Subject: ?");
        let _ = writeln!(report, "  e.g. to {}: {}", m.to, subject);
    }

    // 2a. An acknowledgement: Adams County's official clicks the signed link its warning carried.
    let adams = offices.iter().find(|o| o.slug == "adams").map(|o| o.site.name).unwrap_or("Adams County");
    let warning = received.iter().filter(|m| m.channel == "webhook" && m.to == "adams").find_map(|m| {
        let v: Value = serde_json::from_str(&m.body).ok()?;
        Some((v["ack_url"].as_str()?.to_string(), m.at))
    });
    match warning {
        Some((url, at)) => match client.post(&url).header("content-type", "application/x-www-form-urlencoded").body("action=blocked").send().await {
            Ok(r) if r.status().is_success() => {
                let after = SystemTime::now().duration_since(at).map_or(0, |d| d.as_millis());
                let _ = writeln!(report, "acknowledgement: {adams} acknowledged its warning with one click (the signed link in the message; action: blocked), {after} ms after it arrived; unacknowledged warnings escalate after 15 min");
            }
            Ok(r) => {
                let _ = writeln!(report, "acknowledgement: FAILED: the hub answered {} to {adams}'s link", r.status());
                all_ok = false;
            }
            Err(e) => {
                let _ = writeln!(report, "acknowledgement: FAILED: {adams}'s link: {e}");
                all_ok = false;
            }
        },
        None => {
            let _ = writeln!(report, "acknowledgement: FAILED: {adams}'s warning carried no acknowledgement link");
            all_ok = false;
        }
    }

    // 2b. The state: one roll-up naming its counties that were hit, not one message per county.
    if let Some(st) = offices.iter().find(|o| o.kind == JurisdictionKind::State) {
        let rollup = loop {
            let found = received_rollup(&inbox.messages(), st.slug);
            if found.is_some() || Instant::now() > deadline {
                break found;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        match rollup {
            Some((at, counties)) => {
                let at_ms = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
                let _ = writeln!(
                    report,
                    "state roll-up: {} told once, {} ms after the campaign opened, that {} of its counties were hit: {}",
                    st.site.name,
                    at_ms - campaign.opened_ms,
                    counties.len(),
                    counties.join(", ")
                );
            }
            None => {
                let _ = writeln!(report, "state roll-up: FAILED: {} was not told that its counties were hit", st.site.name);
                all_ok = false;
            }
        }
    }

    // 3. The actor's indicator reaches every sensor, above all those it has not touched yet.
    let actor_ip = format!("{}.{}.{}.{}", ACTOR[0], ACTOR[1], ACTOR[2], ACTOR[3]);
    let published = store.indicators_since(0, 100_000)?.into_iter().find(|i| i.value == actor_ip && i.action == "add");
    match &published {
        None => {
            let _ = writeln!(report, "indicator push: FAILED: the hub published no indicator for {actor_ip}");
            all_ok = false;
        }
        Some(ind) => {
            for office in &untouched {
                let Some((_, sync)) = syncs.iter().find(|(j, _)| *j == office.jurisdiction_id) else { continue };
                let arrived = sync.wait_for(ind.seq, Duration::from_secs(args.timeout));
                let text = fs::read_to_string(dir.join(office.slug).join("hub-indicators.csv")).unwrap_or_default();
                let ok = arrived && text.contains(&actor_ip);
                all_ok &= ok;
                let after = sync.applied_at(ind.seq).and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_millis() as i64 - ind.ts_ms);
                match (ok, after) {
                    (true, Some(ms)) => {
                        let _ = writeln!(report, "indicator push: {:<18} has {actor_ip} {ms} ms after the hub published it", office.site.name);
                    }
                    _ => {
                        let _ = writeln!(report, "indicator push: {:<18} did NOT receive {actor_ip}", office.site.name);
                    }
                }
            }
        }
    }

    // 3b. The federation: the neighbouring state's hub puts the actor on its own sensors' list.
    if let Some(ind) = &published {
        let theirs = neighbour.state.store.clone();
        let seen = loop {
            let list = theirs.indicators_since(0, 100_000)?;
            if let Some(i) = list.iter().find(|i| i.value == actor_ip && i.action == "add") {
                break Some(i.ts_ms);
            }
            if Instant::now() > deadline {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        match seen {
            Some(at) => {
                let _ = writeln!(
                    report,
                    "federation: {NEIGHBOUR} (a second hub) put {actor_ip} on its own sensors' list {} ms after this hub published it (pushed over TAXII 2.1, jurisdictions anonymised)",
                    at - ind.ts_ms
                );
            }
            None => {
                let _ = writeln!(report, "federation: FAILED: {NEIGHBOUR} did not receive {actor_ip}");
                all_ok = false;
            }
        }
    }

    // 4. The retro-hunt: Dover's early contact with the actor, found when the indicator appeared.
    let hit = loop {
        let notes = store.notifications(&ward_hub::store::NotificationFilter { limit: 10_000, ..Default::default() })?;
        let dover_notes: Vec<_> = notes.iter().filter(|n| n.jurisdiction_id == dover.jurisdiction_id && n.delivered_ms.is_some()).collect();
        if !dover_notes.is_empty() {
            break Some(dover_notes.len());
        }
        if Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    match hit {
        Some(n) => {
            let _ = writeln!(report, "retro-hunt: {} had contact with the actor 3 days before the campaign; warned ({n} deliveries)", dover.site.name);
        }
        None => {
            let _ = writeln!(report, "retro-hunt: FAILED: {} was not warned about its earlier contact", dover.site.name);
            all_ok = false;
        }
    }
    let baker_alert = store.events(Some(offices[2].jurisdiction_id), Some("alert"), 1000)?.iter().any(|e| e.body.to_string().contains(BAD_DOMAIN));
    all_ok &= baker_alert;
    let _ = writeln!(
        report,
        "hub indicator hit: Baker County looked up {BAD_DOMAIN}: {}",
        if baker_alert { "alert raised by the sensor and reported to the hub" } else { "NOT reported" }
    );

    // 4b. Disinformation: Adams County reports a false claim about its polling hours that names
    //     Baker County too; Baker reports the same claim in its own words. One case; Baker and
    //     the state are told, and the state hears that the claim spreads.
    match disinformation(&client, &hub_url, &token, &offices, &inbox, deadline).await {
        Ok(lines) => {
            for l in lines {
                let _ = writeln!(report, "{l}");
            }
        }
        Err(e) => {
            let _ = writeln!(report, "disinformation: FAILED: {e:#}");
            all_ok = false;
        }
    }

    // 5. Sharing: what the hub knows as STIX 2.1 (TLP:AMBER, offices anonymised), for an ISAC,
    // MISP or OpenCTI; the same export as `ward hub export`.
    let export_store = store.clone();
    let policy = ward_hub::share::export::ExportPolicy {
        hub_name: "ward demo hub".into(),
        tlp: ward_model::tlp::Tlp::Amber,
        name_jurisdictions: false,
        include_unpublished: false,
        confidence: 70,
    };
    let bundle = tokio::task::spawn_blocking(move || ward_hub::share::export::export_bundle(export_store.as_ref(), &policy, ward_hub::model::now_ms())).await??;
    let objects = bundle["objects"].as_array().map(Vec::as_slice).unwrap_or_default();
    let count = |t: &str| objects.iter().filter(|o| o["type"] == t).count();
    let stix_file = dir.join("campaigns.stix.json");
    fs::write(&stix_file, serde_json::to_vec_pretty(&bundle)?)?;
    let shared = count("campaign") > 0 && count("indicator") > 0;
    all_ok &= shared;
    let _ = writeln!(
        report,
        "STIX 2.1 export (TLP:AMBER, offices anonymised): {} campaign(s), {} indicators, {} sightings -> {}",
        count("campaign"),
        count("indicator"),
        count("sighting"),
        stix_file.display()
    );

    let _ = writeln!(report, "\n{} packets inspected, {} alerts and anomalies relayed, {:.1} s in all", sensor_totals.0, sensor_totals.1, started.elapsed().as_secs_f64());
    say(report);
    for relay in relays {
        relay.shutdown();
    }
    for (_, sync) in syncs {
        sync.shutdown();
    }

    say(format!("dashboard: https://localhost:{}/  (self-signed certificate; user analyst, password {password})", hub.addr.port()));
    if args.once {
        say(if all_ok { "demo: every expected warning arrived" } else { "demo: some expected warnings did NOT arrive" });
        hub.shutdown().await;
        neighbour.shutdown().await;
        return Ok(all_ok);
    }
    say("the hub keeps running; Ctrl-C (or SIGTERM) stops it");
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = terminate.recv() => {}
    }
    hub.shutdown().await;
    neighbour.shutdown().await;
    Ok(all_ok)
}

/// Files the demo's two disinformation reports (as the hub analyst, on behalf of the counties)
/// and waits for the messages: Baker County told of Adams's report, the state told, and the
/// state told that the claim spreads once Baker reports it too. Returns the summary lines.
async fn disinformation(client: &reqwest::Client, hub: &str, token: &str, offices: &[Office], inbox: &Inbox, deadline: Instant) -> anyhow::Result<Vec<String>> {
    let by = |slug: &str| offices.iter().find(|o| o.slug == slug).context("demo office");
    let (adams, baker, state) = (by("adams")?, by("baker")?, by("franklin")?);
    let file = |jid: i64, url: &str, claim: &str| {
        let body = json!({
            "jurisdiction_id": jid,
            "urls": [url],
            "platform": "x",
            "category": "voting-logistics",
            "claim": claim,
            "truth": "Polling places in Adams and Baker counties are open 6:30 am to 7:30 pm on Election Day, and anyone in line at 7:30 pm votes.",
            "citation": "Franklin Election Code § 3501.32; https://adams-county.example/elections/hours",
            "concerns": [adams.jurisdiction_id, baker.jurisdiction_id],
            "views": 48000,
        });
        client.post(format!("{hub}/api/v1/disinfo/reports")).bearer_auth(token).json(&body).send()
    };
    let filed_at = SystemTime::now();
    let r = file(adams.jurisdiction_id, "https://x.com/franklin_vote_news/status/1853000000000000001?s=20", "Polls in Adams and Baker counties close at 5 pm on Election Day because of staff shortages").await?;
    anyhow::ensure!(r.status().is_success(), "the hub refused the report: {} {}", r.status(), r.text().await.unwrap_or_default());
    let first: Value = r.json().await?;
    let case = first["case"]["id"].as_i64().unwrap_or_default();
    let wait_for = |to: &'static str, kind: &'static str| async move {
        loop {
            if let Some(m) = inbox.messages().into_iter().find(|m| m.channel == "webhook" && m.to == to && serde_json::from_str::<Value>(&m.body).is_ok_and(|v| v["type"] == kind)) {
                return Some(m.at);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let ms = |at: SystemTime, from: SystemTime| at.duration_since(from).map_or(0, |d| d.as_millis());
    let baker_told = wait_for("baker", "ward.disinfo.report").await.context("Baker County was not told of the report")?;
    let state_told = wait_for("franklin", "ward.disinfo.report").await.context("the state was not told of the report")?;
    // Baker reports the same post (shared with other tracking parameters) in its own words.
    let second_at = SystemTime::now();
    let r = file(baker.jurisdiction_id, "https://mobile.twitter.com/franklin_vote_news/status/1853000000000000001?utm_source=share", "People are saying Baker County polling places shut at 5pm on election day, staff shortage").await?;
    anyhow::ensure!(r.status().is_success(), "the hub refused the second report: {}", r.status());
    let second: Value = r.json().await?;
    let spreading = wait_for("franklin", "ward.disinfo.spreading").await.context("the state was not told that the claim spreads")?;
    Ok(vec![
        format!(
            "disinformation: {} reported a false claim about polling hours (case #{case}); {} (also named) told {} ms later, {} told {} ms later, each with the facts and the citation",
            adams.site.name,
            baker.site.name,
            ms(baker_told, filed_at),
            state.site.name,
            ms(state_told, filed_at)
        ),
        format!(
            "disinformation: {}'s report of the same post in its own words joined case #{} (by {}); {} told \"the same false claim is being reported in 2 jurisdictions\" {} ms later",
            baker.site.name,
            second["case"]["id"],
            second["case"]["joined_by"].as_str().unwrap_or("?"),
            state.site.name,
            ms(spreading, second_at)
        ),
    ])
}

/// The neighbouring state's hub of the demo.
const NEIGHBOUR: &str = "the State of Lincoln's hub";

/// Starts a second hub (plain HTTP on a loopback port of its own, its store in `dir/neighbour-hub`)
/// that takes this hub's indicators, and names it in `config` as a peer to push to: the key
/// this hub posts with is made in the neighbour's store, as its analyst would.
async fn start_neighbour(dir: &Path, config: &mut HubConfig) -> anyhow::Result<ward_hub::server::RunningHub> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut theirs = HubConfig { listen: SocketAddr::from(([127, 0, 0, 1], port)), data_dir: dir.join("neighbour-hub"), ..Default::default() };
    theirs.taxii.hub_name = "State of Lincoln hub".into();
    theirs.feeds.poll = false;
    fs::create_dir_all(&theirs.data_dir)?;
    let store = ward_hub::store::sqlite::SqliteStore::open_dir(&theirs.data_dir)?;
    let req = ward_hub::api::ApiKeyRequest { name: "State of Franklin hub".into(), scopes: vec!["taxii-write".into()], max_tlp: None, jurisdiction_id: None, name_jurisdictions: false, client_cert: None };
    let (new, secret) = req.into_new("demo");
    let key = ward_hub::store::Store::create_api_key(&store, &new, now_ms())?;
    drop(store);
    let key_file = dir.join("neighbour-hub.key");
    fs::write(&key_file, secret)?;
    theirs.federation.peers = vec![serde_json::from_value(json!({
        "name": "franklin", "key_id": key.key_id, "hub_name": "State of Franklin hub", "accept_indicators": true,
    }))?];
    config.taxii.hub_name = "State of Franklin hub".into();
    config.federation.allow_targets = vec![ward_hub::notify::egress::AllowedNet(std::net::IpAddr::from([127, 0, 0, 1]).into())];
    config.federation.peers = vec![serde_json::from_value(json!({
        "name": "lincoln", "url": format!("http://127.0.0.1:{port}/taxii2/api/"), "api_key_file": key_file, "hub_name": "State of Lincoln hub",
    }))?];
    let hub = ward_hub::start(theirs).await.context("cannot start the neighbouring hub")?;
    say(format!("federation: {NEIGHBOUR} on http://127.0.0.1:{port} takes what this hub publishes"));
    Ok(hub)
}

/// Runs one sensor over `pcap` with the demo rules and the hub's indicators, writing EVE to
/// `sdir/eve.json` and relaying through `spool`. Returns (alerts, contact records).
pub(crate) async fn run_sensor(sdir: &Path, pcap: &Path, rules: &Path, indicators: &Path, home_net: &str, spool: Spool) -> anyhow::Result<(u64, u64)> {
    let detect = DetectConfig {
        rule_files: vec![rules.to_path_buf()],
        vars: vec![format!("HOME_NET=[{home_net}]")],
        indicator_files: vec![indicators.to_path_buf()],
        scan: Some(Default::default()),
        watch_interval: None,
        ..Default::default()
    };
    let (engines, _summary) = Engines::load(detect).map_err(|e| anyhow::anyhow!("{e}"))?;
    let eve_file = fs::File::create(sdir.join("eve.json"))?;
    let writer = HubWriter::new(spool, HubSelection::default(), HomeNet::parse(home_net).map_err(anyhow::Error::msg)?, Some(Box::new(std::io::BufWriter::new(eve_file))));
    let shared = SharedHubWriter::new(writer);
    let config = SensorConfig {
        inputs: vec![Input::File(pcap.to_path_buf())],
        workers: 1,
        eve: EveOutput::Null,
        progress: false,
        detect: Some(engines),
        ..SensorConfig::default()
    };
    let sink = EveSink::to_writer(Box::new(shared.clone()));
    tokio::task::spawn_blocking(move || ward_sensor::run_with_sink(&config, sink, Arc::new(AtomicBool::new(false))))
        .await?
        .map_err(|e| anyhow::anyhow!("sensor: {e}"))?;
    let mut w = shared.lock();
    w.finish()?;
    let s = w.stats();
    Ok((s.forwarded, s.contacts))
}

pub(crate) fn hub_client(ca: &Path) -> anyhow::Result<reqwest::Client> {
    ward_hub::server::install_crypto_provider();
    let pem = fs::read(ca)?;
    let cert = reqwest::Certificate::from_pem(&pem)?;
    Ok(reqwest::Client::builder().tls_certs_only([cert]).timeout(Duration::from_secs(30)).build()?)
}

pub(crate) async fn login(client: &reqwest::Client, hub: &str, user: &str, password: &str) -> anyhow::Result<String> {
    let r = client.post(format!("{hub}/api/v1/login")).json(&json!({"username": user, "password": password})).send().await?;
    let status = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("login at the hub failed: {status} {body}");
    }
    body.get("token").and_then(Value::as_str).map(str::to_string).context("the hub's login reply has no token")
}

pub(crate) async fn add_indicator(client: &reqwest::Client, hub: &str, token: &str, kind: &str, value: &str, description: &str) -> anyhow::Result<()> {
    let r = client
        .post(format!("{hub}/api/v1/indicators"))
        .bearer_auth(token)
        .json(&json!({"kind": kind, "value": value, "description": description, "severity": "high"}))
        .send()
        .await?;
    if !r.status().is_success() {
        let status = r.status();
        bail!("the hub refused the indicator {value}: {status} {}", r.text().await.unwrap_or_default());
    }
    Ok(())
}
