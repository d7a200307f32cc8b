//! `ward hub …` administrative commands, parsed by clap exactly as the binary will, run on a
//! temporary store — SQLite (`--data DIR`) and PostgreSQL (`--database URL`, where it answers;
//! see `common/backends.rs`); then the results are checked through the store.

mod common;

use clap::Parser;
use ward_hub::cli::{run, HubCommand};
use ward_hub::store::Store;

use common::backends::PgDatabase;

#[derive(Parser)]
struct Ward {
    #[command(subcommand)]
    hub: HubCommand,
}

fn hub(args: &[&str]) -> anyhow::Result<()> {
    let mut argv = vec!["ward"];
    argv.extend_from_slice(args);
    run(Ward::try_parse_from(argv)?.hub)
}

/// Where the commands keep their store: `--data DIR` or `--database URL`.
struct Place {
    flag: &'static str,
    value: String,
    dir: tempfile::TempDir,
    _db: Option<PgDatabase>,
}

impl Place {
    fn sqlite() -> Place {
        let dir = tempfile::tempdir().unwrap();
        Place { flag: "--data", value: dir.path().to_str().unwrap().to_string(), dir, _db: None }
    }

    /// `None` (skipped) when PostgreSQL does not answer, outside CI.
    fn postgres() -> Option<Place> {
        let db = PgDatabase::create()?;
        Some(Place { flag: "--database", value: db.url(), dir: tempfile::tempdir().unwrap(), _db: Some(db) })
    }

    fn open(&self) -> std::sync::Arc<dyn Store> {
        ward_hub::store::open::open(&self.value).unwrap()
    }
}

/// `mod name { fn sqlite(); fn postgres(); }` calling `name(&Place)`.
macro_rules! on_each_place {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn sqlite() {
                    super::$name(&super::Place::sqlite());
                }

                #[test]
                fn postgres() {
                    if let Some(p) = super::Place::postgres() {
                        super::$name(&p);
                    }
                }
            }
        )*
    };
}

on_each_place!(init_and_administration, allow_list_and_sensor_trust_commands, drill_jurisdictions_and_their_purge);

#[test]
fn clap_definition_is_consistent() {
    use clap::CommandFactory;
    Ward::command().debug_assert();
}

fn init_and_administration(p: &Place) {
    let (f, d) = (p.flag, p.value.as_str());
    hub(&["init", f, d]).unwrap();
    hub(&["jurisdiction", "add", "Ohio", "--kind", "state", "--state", "OH", f, d]).unwrap();
    hub(&["jurisdiction", "add", "Franklin County", "--kind", "county", "--state", "oh", f, d]).unwrap();
    let err = hub(&["jurisdiction", "add", "Nowhere County", "--kind", "county", f, d]).unwrap_err();
    assert!(err.to_string().contains("--state"), "{err}");
    hub(&["contact", "add", "Franklin County", "--email", "it@franklin.example.gov", f, d]).unwrap();
    hub(&["contact", "add", "Franklin County", "--webhook", "https://soc.example/hook", "--secret", "0123456789abcdef", f, d]).unwrap();
    hub(&["contact", "add", "Ohio", "--syslog", "127.0.0.1:6514", f, d]).unwrap();
    hub(&["contact", "add", "Ohio", "--webhook", "https://x.example/h", f, d]).unwrap();
    assert!(hub(&["contact", "add", "Ohio", "--webhook", "https://x.example/h", "--secret", "short", f, d]).is_err(), "short webhook secret");
    assert!(hub(&["contact", "add", "Atlantis", "--email", "a@b.example", f, d]).is_err());
    // An escalation contact (crate::ack): told only when a warning stays unacknowledged.
    hub(&["contact", "add", "Franklin County", "--email", "deputy@franklin.example.gov", "--priority", "2", f, d]).unwrap();
    assert!(hub(&["contact", "add", "Franklin County", "--email", "x@franklin.example.gov", "--priority", "10", f, d]).is_err(), "priority out of range");
    hub(&["user", "add", "clerk", "--role", "viewer", "--jurisdiction", "Franklin County", "--password", "a long enough password", f, d]).unwrap();
    assert!(hub(&["user", "add", "clerk2", "--role", "viewer", f, d]).is_err(), "viewer without jurisdiction");
    hub(&["sensor", "token", "Franklin County", f, d]).unwrap();
    hub(&["jurisdiction", "list", f, d]).unwrap();

    let store = p.open();
    let js = store.jurisdictions().unwrap();
    let ohio = js.iter().find(|j| j.name == "Ohio").unwrap();
    let franklin = js.iter().find(|j| j.name == "Franklin County").unwrap();
    assert_eq!(franklin.parent_id, Some(ohio.id), "a county belongs to its state");
    assert_eq!(franklin.state.as_deref(), Some("OH"));
    let priorities: Vec<i64> = store.contacts(Some(franklin.id)).unwrap().iter().map(|c| c.priority).collect();
    assert_eq!(priorities, [1, 1, 2]);
    let generated = store.contacts(Some(ohio.id)).unwrap().into_iter().find(|c| c.target == "https://x.example/h").unwrap();
    assert!(generated.secret.as_deref().is_some_and(|s| s.starts_with("whsec_") && s.len() > 32), "a webhook without --secret gets a generated one");
    let users = store.users(None).unwrap();
    assert_eq!(users.len(), 2);
    assert!(users.iter().any(|u| u.username == "analyst" && u.jurisdiction_id.is_none()));
    assert!(store.user_credentials("clerk").unwrap().unwrap().1.starts_with("$argon2id$"));
}

fn allow_list_and_sensor_trust_commands(p: &Place) {
    let (f, d) = (p.flag, p.value.as_str());
    hub(&["init", f, d]).unwrap();
    hub(&["jurisdiction", "add", "Franklin County", "--kind", "county", "--state", "OH", f, d]).unwrap();
    hub(&["allow", "add", "198.51.100.53", "--jurisdiction", "Franklin County", "--note", "county resolver", f, d]).unwrap();
    hub(&["allow", "add", "203.0.113.0/24", "--note", "state portal CDN", f, d]).unwrap();
    assert!(hub(&["allow", "add", "45.0.0.0/8", "--note", "too wide", f, d]).is_err(), "wider than /16");
    assert!(hub(&["allow", "add", "not-an-address", "--note", "x", f, d]).is_err());
    assert!(hub(&["allow", "add", "198.51.100.53", "--jurisdiction", "Franklin County", "--note", "again", f, d]).is_err(), "a duplicate");
    assert!(hub(&["allow", "add", "198.51.100.54", "--jurisdiction", "Atlantis", "--note", "x", f, d]).is_err());
    hub(&["allow", "list", f, d]).unwrap();
    let store = p.open();
    let entries = store.allow_entries(None).unwrap();
    assert_eq!(entries.iter().map(|e| e.network.as_str()).collect::<Vec<_>>(), vec!["198.51.100.53", "203.0.113.0/24"]);
    assert!(entries.iter().all(|e| e.created_by == "cli"));
    hub(&["allow", "remove", &entries[1].id.to_string(), f, d]).unwrap();
    assert!(hub(&["allow", "remove", "999", f, d]).is_err());
    assert_eq!(store.allow_entries(None).unwrap().len(), 1);

    // A sensor's contributions, revoke and release, on a sensor enrolled in the store.
    let now = ward_hub::model::now_ms();
    let j = store.jurisdiction_by_name("Franklin County").unwrap().unwrap().id;
    store.create_enrollment_token(j, "token-hash", now, now + 60_000).unwrap();
    let sensor = store.enroll_sensor("token-hash", "fw-1", "credential-hash", now).unwrap();
    let sid = sensor.id.to_string();
    hub(&["sensor", "contributions", &sid, f, d]).unwrap();
    hub(&["sensor", "revoke", &sid, f, d]).unwrap();
    let c = store.sensor_contributions(sensor.id, ward_hub::model::now_ms()).unwrap().unwrap();
    assert!(c.trust.on_hold && c.trust.hold_reason.as_deref() == Some("revoked"), "{c:?}");
    let config = p.dir.path().join("hub.toml");
    std::fs::write(&config, "[trust]\npublish_min_jurisdictions = 4\n").unwrap();
    hub(&["sensor", "release", &sid, "--config", config.to_str().unwrap(), f, d]).unwrap();
    assert!(!store.sensor_contributions(sensor.id, ward_hub::model::now_ms()).unwrap().unwrap().trust.on_hold);
    assert!(hub(&["sensor", "revoke", "999", f, d]).is_err());
    assert!(hub(&["sensor", "contributions", "999", f, d]).is_err());
    std::fs::write(&config, "[trust]\nnever_block = [\"nope\"]\n").unwrap();
    assert!(hub(&["sensor", "release", &sid, "--config", config.to_str().unwrap(), f, d]).is_err(), "a bad config is refused");
}

/// `ward hub jurisdiction add --drill` and `ward hub drill purge --yes` (docs/hub.md "Drill
/// jurisdictions"): the drill county and what it owns go, the real county stays.
fn drill_jurisdictions_and_their_purge(p: &Place) {
    let (f, d) = (p.flag, p.value.as_str());
    hub(&["init", f, d]).unwrap();
    hub(&["drill", "purge", "--yes", f, d]).unwrap();
    hub(&["jurisdiction", "add", "Drill County", "--kind", "county", "--state", "OH", "--drill", f, d]).unwrap();
    hub(&["jurisdiction", "add", "Knox County", "--kind", "county", "--state", "OH", f, d]).unwrap();
    for name in ["Drill County", "Knox County"] {
        hub(&["contact", "add", name, "--email", "it@county.example.gov", f, d]).unwrap();
        hub(&["allow", "add", if name == "Knox County" { "198.51.100.7" } else { "198.51.100.8" }, "--jurisdiction", name, "--note", "resolver", f, d]).unwrap();
        hub(&["sensor", "token", name, f, d]).unwrap();
    }
    hub(&["user", "add", "drillclerk", "--role", "admin", "--jurisdiction", "Drill County", "--password", "a long enough password", f, d]).unwrap();
    let store = p.open();
    let drill = store.jurisdiction_by_name("Drill County").unwrap().unwrap();
    let knox = store.jurisdiction_by_name("Knox County").unwrap().unwrap();
    assert!(drill.drill && !knox.drill);
    hub(&["jurisdiction", "list", f, d]).unwrap();

    hub(&["drill", "purge", "--yes", f, d]).unwrap();
    let names: Vec<String> = store.jurisdictions().unwrap().into_iter().map(|j| j.name).collect();
    assert_eq!(names, ["Knox County"]);
    assert!(store.contacts(Some(drill.id)).unwrap().is_empty());
    assert_eq!(store.contacts(Some(knox.id)).unwrap().len(), 1);
    assert_eq!(store.allow_entries(None).unwrap().iter().map(|e| e.jurisdiction_id).collect::<Vec<_>>(), [Some(knox.id)]);
    assert!(store.user_credentials("drillclerk").unwrap().is_none());
    assert!(store.user_credentials("analyst").unwrap().is_some());
    assert!(store.purge_drill(ward_hub::model::now_ms(), true).unwrap().is_empty());
}
