//! `ward hub migrate --from sqlite:DIR --to postgres://…` end to end: a hub on a SQLite store is
//! filled through its real API and ingest (sensors enrolled, a campaign opened and its webhooks
//! delivered to a receiver on loopback, contact records and an analyst indicator hunted, a trust
//! anomaly, scanner assets, an allow-list entry), the store is migrated by the CLI command into a
//! fresh PostgreSQL database, every table is counted on both sides, rows are compared through
//! the store interface, and a hub on the PostgreSQL store then serves the same campaign, accepts
//! the same logins and sensor credentials, and extends the migrated campaign with a new
//! jurisdiction's sighting instead of opening another.
//!
//! Needs PostgreSQL on 127.0.0.1:5432 (skipped without it, failed in CI: see common/backends.rs).

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use clap::Parser;
use serde_json::{json, Value};

use common::backends::PgDatabase;
use common::*;
use ward_hub::model::{now_ms, Channel, Millis, NewContact, Role};
use ward_hub::store::{NotificationFilter, Store};

#[derive(Parser)]
struct Ward {
    #[command(subcommand)]
    hub: ward_hub::cli::HubCommand,
}

fn hub_cli(args: &[&str]) -> anyhow::Result<()> {
    let mut argv = vec!["ward"];
    argv.extend_from_slice(args);
    ward_hub::cli::run(Ward::try_parse_from(argv)?.hub)
}

const SECRET: &str = "whsec_migrate_0123456789abcdef";
const ACTOR: &str = "45.33.32.156";

fn eve_time(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap().format("%Y-%m-%dT%H:%M:%S%.6f+0000").to_string()
}

fn contact_line(remote: &str, local: &str, port: u16, first: Millis) -> String {
    json!({
        "event_type": "contact", "timestamp": eve_time(first),
        "src_ip": remote, "dest_ip": local, "dest_port": port, "proto": "TCP",
        "contact": {"remote_ip": remote, "local_ip": local, "port": port, "proto": "TCP", "direction": "inbound",
                    "first_seen": eve_time(first), "last_seen": eve_time(first + 5_000), "flows": 2, "pkts": 10, "bytes": 1000}
    })
    .to_string()
}

type Received = Arc<Mutex<Vec<Value>>>;

/// A webhook receiver on loopback that checks the signature with [`SECRET`].
async fn receiver() -> (std::net::SocketAddr, Received) {
    use axum::routing::post;
    let got: Received = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                let ts = headers["x-ward-timestamp"].to_str().unwrap_or("");
                let sig = headers["x-ward-signature"].to_str().unwrap_or("");
                if !ward_hub::notify::webhook::verify(SECRET, ts, &body, sig, chrono::Utc::now().timestamp()) {
                    return StatusCode::UNAUTHORIZED;
                }
                sink.lock().unwrap().push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, got)
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn hub_config(dir: &std::path::Path) -> ward_hub::HubConfig {
    let mut c = config(dir);
    c.notify.allow_targets = vec!["127.0.0.1/32".parse().unwrap()];
    // A small spray limit, so one batch below records a trust anomaly.
    c.trust.max_remotes_per_batch = 8;
    c
}

/// Every table `ward hub migrate` copies, with its row count on SQLite.
fn sqlite_counts(db: &std::path::Path) -> Vec<(String, i64)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    ward_hub::store::migrate::TABLES
        .iter()
        .map(|t| (t.name.to_string(), conn.query_row(&format!("SELECT count(*) FROM {}", t.name), [], |r| r.get(0)).unwrap()))
        .collect()
}

fn postgres_counts(url: &str) -> Vec<(String, i64)> {
    let url = url.to_string();
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        ward_hub::store::migrate::TABLES
            .iter()
            .map(|t| (t.name.to_string(), c.query_one(&format!("SELECT count(*) FROM {}", t.name), &[]).unwrap().get::<_, i64>(0)))
            .collect()
    })
    .join()
    .unwrap()
}

fn json_of<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_office_store_moves_to_postgresql_and_correlation_goes_on() {
    let Some(pg) = PgDatabase::create() else { return };
    let (hook, received) = receiver().await;
    let hook_url = format!("http://{hook}/hook");

    // ---- an office on SQLite, filled through the real API and ingest ----
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Arc::new(ward_hub::store::sqlite::SqliteStore::open_dir(dir.path()).unwrap());
    let running = ward_hub::start_with_store(sqlite.clone(), hub_config(dir.path())).await.unwrap();
    let h = Hub { dir, state: running.state.clone(), store: sqlite.clone() };
    let ohio = h.jurisdiction("Ohio", "OH");
    let franklin = h.jurisdiction("Franklin County", "OH");
    let delaware = h.jurisdiction("Delaware County", "OH");
    let licking = h.jurisdiction("Licking County", "OH");
    // A drill jurisdiction (docs/hub.md "Drill jurisdictions"): its flag is copied
    // (same_rows compares the jurisdictions, `drill` included).
    let drill = h.jurisdiction("Drill County", "OH");
    assert!(h.store.set_jurisdiction_drill(drill, true).unwrap().drill);
    for j in [franklin, delaware, licking] {
        let c = NewContact { channel: Channel::Webhook, target: hook_url.clone(), secret: Some(SECRET.into()) };
        h.store.create_contact(j, &c, now_ms()).unwrap();
    }
    // The state hears of its counties (rollup.rs) on the same receiver, so every notification can be delivered.
    h.store.create_contact(ohio, &NewContact { channel: Channel::Webhook, target: format!("{hook_url}?state=ohio"), secret: Some(SECRET.into()) }, now_ms()).unwrap();
    h.user("ana", Role::Analyst, None);
    h.user("frank", Role::Viewer, Some(franklin));
    let ana = h.login("ana").await;
    let franklin_sensor = h.sensor(franklin).await;
    let delaware_sensor = h.sensor(delaware).await;
    // Licking's sensor enrolls only after the move, with a token issued before it.
    let licking_token = ward_hub::auth::random_token("wet");
    h.store.create_enrollment_token(licking, &ward_hub::auth::hash_token(&licking_token), now_ms(), now_ms() + 3_600_000).unwrap();

    // Two jurisdictions see the actor: a campaign opens and both are warned by webhook.
    let r = h.post_events((franklin_sensor.0, &franklin_sensor.1), 1, alert_line(ACTOR, "10.1.1.10", 2010935, "ET SCAN MSSQL"), false).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = h.post_events((delaware_sensor.0, &delaware_sensor.1), 1, alert_line(ACTOR, "10.2.2.20", 2010935, "ET SCAN MSSQL"), false).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let campaigns = h.get("/api/v1/campaigns", Some(&ana)).await.json();
    assert_eq!(campaigns.as_array().unwrap().len(), 1, "{campaigns}");
    let campaign_id = campaigns[0]["id"].as_i64().unwrap();
    wait_for("two campaign webhooks", || received.lock().unwrap().len() >= 2).await;

    // Contact records two hours and three days old, then an analyst indicator: a retro-hunt hit.
    let t = now_ms() - 2 * 3_600_000;
    let lines = [contact_line("198.51.100.7", "10.1.0.5", 3389, t), contact_line("198.51.100.9", "10.1.0.6", 443, t - 3 * 86_400_000)];
    let r = h.post_events((franklin_sensor.0, &franklin_sensor.1), 2, lines.join("\n"), false).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = h.post_json("/api/v1/indicators", Some(&ana), json!({"value": "198.51.100.0/24", "description": "RDP brute force"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    wait_for("the retro-hunt webhook", || received.lock().unwrap().iter().any(|m| m["type"] == "ward.retrohunt")).await;

    // A batch spraying many remotes: stored, not correlated, and a trust anomaly.
    let spray: Vec<String> = (1..=20).map(|i| alert_line(&format!("91.198.174.{i}"), "10.2.2.21", 2000001, "spray")).collect();
    let r = h.post_events((delaware_sensor.0, &delaware_sensor.1), 2, spray.join("\n"), false).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(h.store.trust_anomalies(None, 10).unwrap().len(), 1);

    // Scanner and allow-list rows.
    h.store.add_scan_asset(franklin, ward_hub::assets::AssetKind::Address, "192.0.2.10", now_ms()).unwrap();
    let entry = ward_hub::trust::validate_entry("192.0.2.53", "county resolver", Some(franklin), ward_hub::trust::EntryAuthor::Analyst, "ana").unwrap();
    h.store.add_allow_entry(&entry, now_ms()).unwrap();
    wait_for("every notification delivered", || {
        h.store.notifications(&NotificationFilter { limit: 1000, ..Default::default() }).unwrap().iter().all(|n| n.status == "delivered")
    })
    .await;
    let deliveries_before = received.lock().unwrap().len();
    running.shutdown().await;

    // ---- the move ----
    let from = format!("sqlite:{}", h.dir.path().display());
    // A source that is not there: refused before anything is written.
    let err = hub_cli(&["migrate", "--from", "sqlite:/nonexistent/ward", "--to", &pg.url()]).unwrap_err();
    assert!(format!("{err:#}").contains("no sqlite store"), "{err:#}");
    let to = pg.url();
    let args: Vec<String> = ["migrate", "--from", from.as_str(), "--to", to.as_str()].iter().map(|s| s.to_string()).collect();
    let run = move || hub_cli(&args.iter().map(String::as_str).collect::<Vec<_>>());
    tokio::task::spawn_blocking(run.clone()).await.unwrap().unwrap();

    // Every table: the same number of rows on both sides, and none left empty that had rows.
    let before = sqlite_counts(&h.dir.path().join("ward-hub.sqlite3"));
    let after = postgres_counts(&pg.url());
    assert_eq!(before, after);
    for table in ["jurisdictions", "users", "sessions", "sensors", "enrollment_tokens", "contacts", "events", "sightings", "campaigns", "campaign_keys",
        "campaign_jurisdictions", "campaign_log", "indicators", "notifications", "delivery_attempts", "contact_records", "analyst_indicators", "retro_hits",
        "trust_anomalies", "sensor_trust", "allow_entries", "scan_assets", "batches"]
    {
        let n = before.iter().find(|(t, _)| t == table).unwrap().1;
        assert!(n > 0, "the fill left {table} empty: the test would not show it is copied");
    }

    // A second run: refused, the target keeps its rows.
    let again = tokio::task::spawn_blocking(run).await.unwrap().unwrap_err();
    assert!(format!("{again:#}").contains("not empty"), "{again:#}");
    assert_eq!(postgres_counts(&pg.url()), before);

    // ---- deep equalities through the store interface ----
    let url = pg.url();
    let pg_store: Arc<dyn Store> = tokio::task::spawn_blocking(move || Arc::new(ward_hub::store::postgres::PgStore::connect(&url).unwrap()) as Arc<dyn Store>)
        .await
        .unwrap();
    let (s, p) = (sqlite.clone(), pg_store.clone());
    let last_seq = tokio::task::spawn_blocking(move || same_rows(s.as_ref(), p.as_ref(), campaign_id, franklin, franklin_sensor.0)).await.unwrap();
    drop(pg_store);

    // ---- a hub on PostgreSQL takes over ----
    let dir2 = tempfile::tempdir().unwrap();
    let url = pg.url();
    let pg_store = tokio::task::spawn_blocking(move || Arc::new(ward_hub::store::postgres::PgStore::connect(&url).unwrap())).await.unwrap();
    let running = ward_hub::start_with_store(pg_store.clone(), hub_config(dir2.path())).await.unwrap();
    let h2 = Hub { dir: dir2, state: running.state.clone(), store: sqlite.clone() };
    // The same login and the same campaign.
    let ana2 = h2.login("ana").await;
    let c = h2.get(&format!("/api/v1/campaigns/{campaign_id}"), Some(&ana2)).await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.text());
    assert_eq!(c.json()["campaign"]["jurisdictions"], 2, "{}", c.text());
    // A sensor's indicator cursor from before the move stays valid: nothing is handed out twice.
    let r = h2.get(&format!("/api/v1/indicators?since={last_seq}"), Some(&franklin_sensor.1)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["indicators"].as_array().unwrap().len(), 0, "{}", r.text());
    // Licking enrolls with its old token and sees the actor: the migrated campaign grows.
    let r = h2.post_json("/api/v1/sensors/enroll", None, json!({"token": licking_token, "name": "licking-1"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let licking_cred = r.json()["credential"].as_str().unwrap().to_string();
    let licking_id = r.json()["sensor"]["id"].as_i64().unwrap();
    assert!(licking_id > delaware_sensor.0, "new ids continue after the migrated ones");
    let r = h2.post_events((licking_id, &licking_cred), 1, alert_line(ACTOR, "10.3.3.30", 2010935, "ET SCAN MSSQL"), false).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // The Franklin sensor's credential works on the new hub, and its next batch is not a duplicate.
    let r = h2.post_events((franklin_sensor.0, &franklin_sensor.1), 3, alert_line(ACTOR, "10.1.1.11", 2010935, "ET SCAN MSSQL"), false).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["duplicate"], false, "{}", r.text());
    // A batch the old hub acknowledged, sent again: recognised, not stored twice.
    let r = h2.post_events((franklin_sensor.0, &franklin_sensor.1), 1, alert_line(ACTOR, "10.1.1.10", 2010935, "ET SCAN MSSQL"), false).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["duplicate"], true, "{}", r.text());

    let campaigns = h2.get("/api/v1/campaigns", Some(&ana2)).await.json();
    assert_eq!(campaigns.as_array().unwrap().len(), 1, "extended, not a second campaign: {campaigns}");
    assert_eq!(campaigns[0]["id"].as_i64().unwrap(), campaign_id);
    assert_eq!(campaigns[0]["jurisdictions"], 3, "{campaigns}");
    // Licking's contact is warned by the hub on PostgreSQL.
    wait_for("Licking's webhook", || received.lock().unwrap()[deliveries_before..].iter().any(|m| m["jurisdiction"]["id"] == licking)).await;
    let got = received.lock().unwrap().clone();
    assert!(got[deliveries_before..].iter().any(|m| m["jurisdiction"]["id"] == licking), "{got:?}");
    let migrated_max = notes_max_id(&notes_before(&sqlite));
    let p = pg_store.clone();
    let notes = tokio::task::spawn_blocking(move || p.notifications(&NotificationFilter { jurisdiction_id: Some(licking), limit: 100, ..Default::default() }).unwrap())
        .await
        .unwrap();
    assert!(!notes.is_empty());
    assert!(notes.iter().all(|n| n.id > migrated_max), "new outbox ids follow the migrated ones");
    running.shutdown().await;
}

/// Rows compared through the store interface on both stores (on a blocking thread: the
/// PostgreSQL store's client is synchronous); returns the last indicator `seq`.
fn same_rows(s: &dyn Store, p: &dyn Store, campaign_id: i64, franklin: i64, franklin_sensor: i64) -> i64 {
    assert_eq!(json_of(&s.jurisdictions().unwrap()), json_of(&p.jurisdictions().unwrap()));
    assert_eq!(json_of(&s.users(None).unwrap()), json_of(&p.users(None).unwrap()));
    assert_eq!(s.user_credentials("ana").unwrap().unwrap().1, p.user_credentials("ana").unwrap().unwrap().1, "the password hash moves");
    assert_eq!(json_of(&s.sensors(None).unwrap()), json_of(&p.sensors(None).unwrap()));
    let (sc, pc) = (s.contacts(None).unwrap(), p.contacts(None).unwrap());
    assert_eq!(sc, pc, "contacts, with their webhook secrets opened");
    assert!(pc.iter().filter(|c| c.channel == Channel::Webhook).all(|c| c.secret.as_deref() == Some(SECRET)));
    assert_eq!(json_of(&s.campaign(campaign_id).unwrap()), json_of(&p.campaign(campaign_id).unwrap()));
    assert_eq!(json_of(&s.indicators_since(0, 1000).unwrap()), json_of(&p.indicators_since(0, 1000).unwrap()));
    let all = NotificationFilter { limit: 1000, ..Default::default() };
    let notes = s.notifications(&all).unwrap();
    assert_eq!(json_of(&notes), json_of(&p.notifications(&all).unwrap()));
    for n in &notes {
        assert_eq!(json_of(&s.delivery_attempts(n.id).unwrap()), json_of(&p.delivery_attempts(n.id).unwrap()));
    }
    assert_eq!(json_of(&s.retro_hits(None, 100).unwrap()), json_of(&p.retro_hits(None, 100).unwrap()));
    assert_eq!(json_of(&s.trust_anomalies(None, 100).unwrap()), json_of(&p.trust_anomalies(None, 100).unwrap()));
    assert_eq!(json_of(&s.allow_entries(None).unwrap()), json_of(&p.allow_entries(None).unwrap()));
    assert_eq!(json_of(&s.scan_assets(franklin).unwrap()), json_of(&p.scan_assets(franklin).unwrap()));
    assert_eq!(
        json_of(&s.sensor_contributions(franklin_sensor, now_ms()).unwrap()),
        json_of(&p.sensor_contributions(franklin_sensor, now_ms()).unwrap())
    );
    s.indicators_since(0, 1000).unwrap().last().unwrap().seq
}

fn notes_before(s: &ward_hub::store::sqlite::SqliteStore) -> Vec<ward_hub::model::NotificationRecord> {
    s.notifications(&NotificationFilter { limit: 1000, ..Default::default() }).unwrap()
}

fn notes_max_id(notes: &[ward_hub::model::NotificationRecord]) -> i64 {
    notes.iter().map(|n| n.id).max().unwrap_or(0)
}
