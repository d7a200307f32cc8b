//! Contact records on PostgreSQL (migration 0410): one partition per UTC day, created as records
//! of a new day arrive, dropped whole by retention, pruned from a hunt's plan outside its window;
//! and the conversion of an older store's unpartitioned table. Real PostgreSQL on 127.0.0.1:5432
//! (skipped without it, failed in CI: see common/backends.rs).

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::backends::PgDatabase;
use ward_hub::ingest::parse_line;
use ward_hub::model::{now_ms, Channel, JurisdictionKind, Millis, NewContact, NewJurisdiction};
use ward_hub::retro::{validate_indicator, HuntWindow, IndicatorRequest};
use ward_hub::store::postgres::PgStore;
use ward_hub::store::{CorrelationPolicy, IngestBatch, Store};

const HOUR: Millis = 3_600_000;
const DAY: Millis = 24 * HOUR;

fn eve_time(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap().format("%Y-%m-%dT%H:%M:%S%.6f+0000").to_string()
}

fn contact(remote: &str, local: &str, first: Millis, now: Millis) -> ward_hub::ingest::ParsedEvent {
    let line = serde_json::json!({
        "event_type": "contact", "timestamp": eve_time(first), "src_ip": remote, "dest_ip": local, "dest_port": 443, "proto": "TCP",
        "contact": {"remote_ip": remote, "local_ip": local, "port": 443, "proto": "TCP", "direction": "inbound",
                    "first_seen": eve_time(first), "last_seen": eve_time(first + 1_000), "flows": 1, "pkts": 2, "bytes": 300}
    })
    .to_string();
    parse_line(line.as_bytes(), now).unwrap()
}

fn store_with_jurisdiction(url: &str) -> (PgStore, i64) {
    let store = PgStore::connect(url).unwrap();
    let j = store
        .create_jurisdiction(&NewJurisdiction { name: "Franklin County".into(), kind: JurisdictionKind::County, state: Some("OH".into()), home_net: None }, now_ms())
        .unwrap()
        .id;
    store.create_contact(j, &NewContact { channel: Channel::Email, target: "it@franklin.example.gov".into(), secret: None }, now_ms()).unwrap();
    (store, j)
}

fn ingest(store: &PgStore, j: i64, seq: i64, events: Vec<ward_hub::ingest::ParsedEvent>, now: Millis) {
    let batch = IngestBatch { sensor_id: 1, jurisdiction_id: j, seq, events, rejected: vec![], rejected_total: 0 };
    store.ingest(&[batch], &CorrelationPolicy::default(), now).unwrap();
}

/// Runs `f` on a thread of its own (the synchronous client must not block a test runtime).
fn on_pg(f: impl FnOnce(&str) + Send + 'static) {
    let Some(db) = PgDatabase::create() else { return };
    let url = db.url();
    std::thread::spawn(move || f(&url)).join().unwrap();
    drop(db);
}

#[test]
fn days_get_partitions_retention_drops_them_and_hunts_read_only_their_window() {
    on_pg(|url| {
        let (store, j) = store_with_jurisdiction(url);
        let now = now_ms();
        let today = now.div_euclid(DAY);
        // Records of 40, 10 and 0 days ago (two on the oldest day, for the count).
        let old = (today - 40) * DAY + 5 * HOUR;
        let mid = (today - 10) * DAY + 7 * HOUR;
        let recent = now - HOUR;
        ingest(
            &store,
            j,
            1,
            vec![contact("198.51.100.7", "10.1.0.5", old, now), contact("198.51.100.8", "10.1.0.5", old + HOUR, now), contact("198.51.100.7", "10.1.0.6", mid, now)],
            now,
        );
        ingest(&store, j, 2, vec![contact("198.51.100.9", "10.1.0.7", recent, now)], now);
        let days = store.contact_partition_days().unwrap();
        for d in [today - 40, today - 10, recent.div_euclid(DAY)] {
            assert!(days.contains(&d), "day {d} has a partition: {days:?}");
        }
        assert_eq!(days.len(), 3, "only days with records so far: {days:?}");

        // A hunt whose window starts 20 days ago reads only the partitions from then on.
        let from_hour = (now - 20 * DAY).div_euclid(HOUR);
        let plan = store.explain_contact_search(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 0)), 24, from_hour, now.div_euclid(HOUR)).unwrap();
        let name = |day: i64| format!("contact_records_{}", chrono::DateTime::from_timestamp_millis(day * DAY).unwrap().format("%Y%m%d"));
        assert!(!plan.contains(&name(today - 40)), "the day outside the window is pruned:\n{plan}");
        assert!(plan.contains(&name(today - 10)), "{plan}");

        // And the hunt itself finds all three days' records with an unbounded window.
        let req = IndicatorRequest { value: "198.51.100.0/24".into(), kind: None, description: "t".into(), severity: None, expires: None };
        store.add_analyst_indicator(&validate_indicator(&req, now_ms()).unwrap(), 0, now_ms()).unwrap();
        let out = store.retro_hunt_next(&HuntWindow::all(), now_ms()).unwrap().unwrap();
        assert_eq!(out.rows_scanned, 4);
        assert_eq!(out.hits, 1);

        // Retention 30 days (cut mid-day): the oldest day goes as a whole partition with its two
        // rows; the days ahead are created.
        let cut = (today - 30) * DAY + 12 * HOUR;
        assert_eq!(store.prune_contacts(cut).unwrap(), 2);
        let days = store.contact_partition_days().unwrap();
        assert!(!days.contains(&(today - 40)), "{days:?}");
        assert!(days.contains(&(today + 3)), "partitions are made ahead: {days:?}");
        assert_eq!(store.prune_contacts(cut).unwrap(), 0);
        // A cut inside the day of the middle record deletes rows before it only.
        let cut = (today - 10) * DAY + 7 * HOUR;
        assert_eq!(store.prune_contacts(cut).unwrap(), 0, "the record of hour 7 is not before hour 7");
        assert_eq!(store.prune_contacts(cut + HOUR).unwrap(), 1);
        assert!(store.contact_partition_days().unwrap().contains(&(today - 10)), "the boundary day's partition stays");

        // A late record for a dropped day: its partition is made again and the record stored.
        ingest(&store, j, 3, vec![contact("198.51.100.10", "10.1.0.8", old, now)], now);
        assert!(store.contact_partition_days().unwrap().contains(&(today - 40)));
    });
}

#[test]
fn a_second_replica_recreates_a_day_the_first_dropped() {
    on_pg(|url| {
        let (a, j) = store_with_jurisdiction(url);
        let b = PgStore::connect(url).unwrap();
        let now = now_ms();
        let old = now - 40 * DAY;
        // Replica B caches the old day, replica A drops it.
        ingest(&b, j, 1, vec![contact("198.51.100.7", "10.1.0.5", old, now)], now);
        assert_eq!(a.prune_contacts(now - 30 * DAY).unwrap(), 1);
        // B's next record of that day is still stored (the day is made again).
        ingest(&b, j, 2, vec![contact("198.51.100.8", "10.1.0.5", old, now)], now);
        assert_eq!(a.prune_contacts(now - 30 * DAY).unwrap(), 1);
    });
}

#[test]
fn an_older_store_s_contact_records_are_converted() {
    on_pg(|url| {
        // The schema as ward wrote it before 0410, with two contact records in the old table.
        let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
        c.batch_execute("CREATE TABLE schema_migrations (version bigint PRIMARY KEY, applied_ms bigint NOT NULL)").unwrap();
        for (v, sql) in [
            (1i64, include_str!("../migrations/postgres/0001_init.sql")),
            (2, include_str!("../migrations/postgres/0002_retention_indexes.sql")),
            (100, include_str!("../migrations/postgres/0100_assets.sql")),
            (200, include_str!("../migrations/postgres/0200_contacts_retrohunt.sql")),
            (300, include_str!("../migrations/postgres/0300_trust.sql")),
        ] {
            c.batch_execute(sql).unwrap();
            c.execute("INSERT INTO schema_migrations VALUES ($1, 0)", &[&v]).unwrap();
        }
        let now = now_ms();
        let hours = [(now - 3 * DAY).div_euclid(HOUR), now.div_euclid(HOUR) - 1];
        for (i, h) in hours.iter().enumerate() {
            let remote: IpAddr = format!("198.51.100.{}", i + 1).parse().unwrap();
            let local: IpAddr = "10.1.0.5".parse().unwrap();
            c.execute(
                "INSERT INTO contact_records VALUES ($1, $2, 1, $3, 443, 6, true, $4, $4, 1, 2, 300, 1, $4)",
                &[&remote, h, &local, &(h * HOUR)],
            )
            .unwrap();
        }
        drop(c);
        let store = PgStore::connect(url).unwrap();
        assert!(store.applied_migrations().unwrap().contains(&410));
        let days = store.contact_partition_days().unwrap();
        assert_eq!(days, hours.iter().map(|h| h.div_euclid(24)).collect::<std::collections::BTreeSet<_>>().into_iter().collect::<Vec<_>>());
        let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
        let n: i64 = c.query_one("SELECT count(*) FROM contact_records", &[]).unwrap().get(0);
        assert_eq!(n, 2);
        let partitioned: bool = c.query_one("SELECT relkind = 'p' FROM pg_class WHERE relname = 'contact_records'", &[]).unwrap().get(0);
        assert!(partitioned);
        assert!(c.query_opt("SELECT 1 FROM pg_class WHERE relname = 'contact_records_unpartitioned'", &[]).unwrap().is_none());
    });
}
