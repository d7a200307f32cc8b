//! `ward hub …`: serve, and the administrative commands that work directly on the store (so a
//! fresh install can be set up before the server runs; SQLite's WAL lets both run at once, and
//! PostgreSQL serves any number of clients). Everything here is also in the HTTP API.
//!
//! The store: `--data DIR` (the embedded SQLite store) or `--database` (`postgres://…`,
//! `sqlite:DIR` or a directory; see [`crate::store::open`]), which wins when both are given.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::auth;
use crate::config::HubConfig;
use crate::model::{now_ms, redacted_target, Channel, JurisdictionKind, NewContact, NewJurisdiction, Role};
use crate::store::open::Database;
use crate::store::Store;

/// Where the embedded store lives when neither --data nor the config says.
pub const DEFAULT_DATA_DIR: &str = "ward-hub-data";

#[derive(Debug, Subcommand)]
pub enum HubCommand {
    /// Run the hub: API, dashboard, correlation and notification delivery.
    Serve {
        /// TOML configuration file (see docs/hub.md).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Directory of the embedded store (overrides the config's data_dir and database).
        #[arg(long)]
        data: Option<PathBuf>,
        /// The store instead of --data: postgres://USER@HOST/DB, sqlite:DIR or a directory
        /// (overrides the config's database and data_dir). Several `serve` processes on one
        /// PostgreSQL database act as one hub behind a load balancer (docs/hub.md "Replicas").
        #[arg(long, env = "WARD_HUB_DATABASE", hide_env_values = true)]
        database: Option<String>,
        /// Address to listen on (overrides the config; plain HTTP only on loopback).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Create the store and print a first analyst login.
    Init {
        #[command(flatten)]
        data: DataArg,
        /// User name of the first analyst.
        #[arg(long, default_value = "analyst")]
        username: String,
    },
    /// Jurisdictions: states, counties, cities.
    #[command(subcommand)]
    Jurisdiction(JurisdictionCommand),
    /// Drill jurisdictions (`ward drill`; docs/hub.md "Drill jurisdictions").
    #[command(subcommand)]
    Drill(DrillCommand),
    /// Sensors: enrollment tokens, the list, and (analysts) contributions, revoke and release.
    #[command(subcommand)]
    Sensor(SensorCommand),
    /// Notification contacts of a jurisdiction.
    #[command(subcommand)]
    Contact(ContactCommand),
    /// People who log in to the dashboard and API.
    #[command(subcommand)]
    User(UserCommand),
    /// The never-block allow-list: addresses that are never sightings and never blocked.
    #[command(subcommand)]
    Allow(AllowCommand),
    /// API keys for the TAXII server: partners, peer hubs, SIEMs and jurisdictions.
    #[command(subcommand, name = "api-key")]
    ApiKey(ApiKeyCommand),
    /// Feeds the hub polls: TAXII 2.1 collections, MISP feeds and CSV/text lists, whose
    /// indicators go to every sensor (docs/sharing.md "Feeds").
    #[command(subcommand)]
    Feed(FeedCommand),
    /// Peer hubs (`[[federation.peer]]` in the config; docs/sharing.md "Federation").
    #[command(subcommand)]
    Federation(FederationCommand),
    /// Write the hub's campaigns as one STIX 2.1 bundle (TLP-marked) for MISP, OpenCTI or a SIEM.
    ///
    /// Campaigns, their keys as indicators, sightings and a report per campaign, every object
    /// TLP-marked. Jurisdictions are anonymised ("a county in OH") unless --name-jurisdictions.
    /// Ids are deterministic: importing a later export updates objects instead of duplicating
    /// them; closed and merged campaigns come out revoked.
    Export {
        #[command(flatten)]
        data: DataArg,
        /// The marking of every object: TLP:CLEAR, TLP:GREEN, TLP:AMBER or TLP:AMBER+STRICT
        /// (TLP:RED never leaves the hub).
        #[arg(long, default_value = "TLP:AMBER")]
        tlp: ward_model::tlp::Tlp,
        /// The hub's name: its STIX identity and the namespace of its ids (keep it stable).
        #[arg(long, default_value = "ward hub")]
        hub_name: String,
        /// Name the jurisdictions that saw each campaign.
        #[arg(long)]
        name_jurisdictions: bool,
        /// Include campaigns that have not met the publication bar (docs/hub.md "Trust").
        #[arg(long)]
        include_unpublished: bool,
        /// Write the bundle here instead of standard output.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Copy a SQLite store into a new, empty PostgreSQL database.
    #[command(long_about = "Copy a SQLite store into a new, empty PostgreSQL database, so a hub that started \
on the embedded store moves to PostgreSQL (and several replicas) without losing its history: \
jurisdictions, users (password hashes), sensors (credential hashes), enrollment tokens, sessions, \
contacts, events, campaigns with their keys, members and log, the indicator log (sequence numbers \
kept, so sensors' cursors stay valid), the notification outbox and attempts, contact records, \
retro-hunt state and hits, the trust tables and the scanner's tables. Ids are kept.\n\n\
Webhook signing secrets, sealed in SQLite with the store's secret key file, are opened with it \
and stored as the PostgreSQL store keeps them (in the database, not sealed).\n\n\
The copy is one PostgreSQL transaction: it is refused when the target holds rows, and an \
interrupted copy leaves the target empty, so it can be run again. The source is read as one \
snapshot; stop the hub on SQLite before the final copy, then start `ward hub serve --database \
postgres://…`. See docs/hub.md, \"Moving from SQLite to PostgreSQL\".")]
    Migrate {
        /// The SQLite store to copy: sqlite:DIR (the hub's data directory), sqlite:FILE or DIR.
        #[arg(long, value_name = "SQLITE")]
        from: String,
        /// The PostgreSQL database to fill (it must exist and be empty): postgres://USER@HOST/DB.
        #[arg(long, value_name = "POSTGRES_URL")]
        to: String,
    },
}

#[derive(Debug, Args)]
pub struct DataArg {
    /// Directory of the embedded store.
    #[arg(long, env = "WARD_HUB_DATA", default_value = DEFAULT_DATA_DIR)]
    pub data: PathBuf,
    /// The store instead of --data: postgres://USER@HOST/DB, sqlite:DIR or a directory.
    #[arg(long, env = "WARD_HUB_DATABASE", hide_env_values = true)]
    pub database: Option<String>,
}

impl DataArg {
    /// `--database` when given, else the SQLite store in `--data`.
    pub fn database(&self) -> anyhow::Result<Database> {
        match &self.database {
            Some(d) => Ok(Database::parse(d)?),
            None => Ok(Database::sqlite_dir(&self.data)),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum JurisdictionCommand {
    /// Register a jurisdiction.
    Add {
        name: String,
        #[arg(long, value_enum)]
        kind: JurisdictionKind,
        /// Two-letter state code (required for a county or city).
        #[arg(long)]
        state: Option<String>,
        /// The jurisdiction's own address space, comma-separated CIDRs (decides "remote").
        #[arg(long)]
        home_net: Option<String>,
        /// A drill jurisdiction: its messages are marked as a drill, it never counts towards
        /// publication, and `ward hub drill purge` deletes it (docs/hub.md "Drill jurisdictions").
        #[arg(long)]
        drill: bool,
        #[command(flatten)]
        data: DataArg,
    },
    /// List jurisdictions.
    List {
        #[command(flatten)]
        data: DataArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum DrillCommand {
    /// Delete every drill jurisdiction with everything it owns (events, sightings, contact
    /// records, notifications, contacts, sensors, users, scan rows, API keys bound to it) and the
    /// campaigns left with no jurisdiction. Prints what it will delete and asks first.
    Purge {
        /// Do not ask.
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        data: DataArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum SensorCommand {
    /// Print a one-time enrollment token for a new sensor of JURISDICTION (name or id).
    Token {
        jurisdiction: String,
        #[command(flatten)]
        data: DataArg,
    },
    /// List sensors with last-seen times.
    List {
        #[command(flatten)]
        data: DataArg,
    },
    /// Show what one sensor contributed to correlation: keys, campaigns, published indicators,
    /// trust anomalies and its hold.
    Contributions {
        /// Sensor id (see `ward hub sensor list`).
        id: i64,
        #[command(flatten)]
        data: DataArg,
    },
    /// Revoke everything one sensor contributed (its sightings and what they caused) and put it
    /// on hold.
    Revoke {
        id: i64,
        #[command(flatten)]
        policy: PolicyArg,
        #[command(flatten)]
        data: DataArg,
    },
    /// End a sensor's hold (its events stored meanwhile stay uncorrelated).
    Release {
        id: i64,
        #[command(flatten)]
        policy: PolicyArg,
        #[command(flatten)]
        data: DataArg,
    },
}

#[derive(Debug, Args)]
pub struct PolicyArg {
    /// The hub's configuration, for `[correlation]` and `[trust]` (K, the publication bar, the
    /// hold); the built-in defaults when left out.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum AllowCommand {
    /// Add an address or CIDR network (no wider than /16, IPv6 /32) that is never a sighting
    /// and never blocked; its keys leave open campaigns and the indicator feed at once.
    Add {
        /// An address (`192.0.2.53`) or network (`192.0.2.0/28`).
        network: String,
        /// What it is: "county resolver", "election-results vendor".
        #[arg(long)]
        note: String,
        /// The jurisdiction (name or id) whose resolver or vendor it is; hub-wide when left out.
        #[arg(long)]
        jurisdiction: Option<String>,
        #[command(flatten)]
        data: DataArg,
    },
    /// List the registered entries (the built-in resolvers and `[trust] never_block` are in
    /// the configuration).
    List {
        #[command(flatten)]
        data: DataArg,
    },
    /// Remove an entry by id; keys it covered are not restored.
    Remove {
        id: i64,
        #[command(flatten)]
        data: DataArg,
    },
}

// `add` carries every setting of a feed; the enum is built once per command line.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum FeedCommand {
    /// Add a feed; the running hub polls it within seconds, then every --interval-secs.
    #[command(long_about = "Add a feed; the running hub polls it within seconds, then every --interval-secs.\n\n\
Kinds: taxii (--url is the API root, --collection the collection id; polled with added_after and \
every page), misp (--url is the directory holding manifest.json; only events whose timestamp \
changed are fetched; attributes ip-dst, ip-src, domain, hostname, url with to_ids), csv (one \
indicator a line, # comments; --column N reads field N of a CSV record).\n\n\
What a feed adds: addresses, networks (no wider than /16, IPv6 /32) and domains that are public; \
never an allow-listed address; at most --max-indicators at once (past the cap it adds nothing \
more and says so in `feed list`). TLP:CLEAR, GREEN and AMBER indicators go to the sensors; \
AMBER+STRICT and RED ones stay on the hub. Fetches follow the egress rules: a server on an \
internal address must be listed in the hub config's [feeds] allow_targets.")]
    Add {
        name: String,
        /// taxii, misp or csv.
        #[arg(long)]
        kind: String,
        /// TAXII: the API root; MISP: the feed directory; CSV: the list.
        #[arg(long)]
        url: String,
        /// TAXII: the collection id.
        #[arg(long)]
        collection: Option<String>,
        /// CSV: the 0-based column holding the indicator (default: the first field of a line).
        #[arg(long)]
        column: Option<i64>,
        /// HTTP Basic user name (with --password or WARD_FEED_PASSWORD).
        #[arg(long)]
        username: Option<String>,
        #[arg(long, env = "WARD_FEED_PASSWORD", hide_env_values = true, requires = "username")]
        password: Option<String>,
        /// A bearer token instead of Basic credentials (or WARD_FEED_TOKEN).
        #[arg(long, env = "WARD_FEED_TOKEN", hide_env_values = true, conflicts_with = "username")]
        token: Option<String>,
        /// Allowed indicator types, comma-separated: ip, net, domain, url (url: a URL's host;
        /// default ip,net,domain).
        #[arg(long, value_delimiter = ',')]
        types: Option<Vec<String>>,
        /// Skip indicators below this confidence (0-100; default 0).
        #[arg(long)]
        min_confidence: Option<i64>,
        /// The confidence of indicators that carry none (MISP, CSV; default 50).
        #[arg(long)]
        default_confidence: Option<i64>,
        /// The cap on indicators the feed holds at once (default 50000).
        #[arg(long)]
        max_indicators: Option<i64>,
        /// The TLP of indicators that carry none (default TLP:AMBER).
        #[arg(long)]
        tlp: Option<String>,
        /// Indicators that carry no expiry expire this many days after they were added.
        #[arg(long)]
        expire_days: Option<i64>,
        /// Seconds between polls (default 3600, at least 60).
        #[arg(long)]
        interval_secs: Option<i64>,
        /// Add it without polling it.
        #[arg(long)]
        disabled: bool,
        #[command(flatten)]
        data: DataArg,
    },
    /// List feeds: kind, status, indicators held, last poll and last error.
    List {
        #[command(flatten)]
        data: DataArg,
    },
    /// Remove a feed: its indicators leave the sensors (unless another source holds them).
    Remove {
        id: i64,
        #[command(flatten)]
        data: DataArg,
    },
    /// Poll a feed now and print what changed (progress on stderr).
    Poll {
        id: i64,
        /// The hub's configuration, for [feeds] (allow_targets, timeouts) and [trust]
        /// never_block; the built-in defaults when left out.
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        data: DataArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum ContactCommand {
    /// Add a contact: exactly one of --email, --webhook, --syslog. Webhook and syslog targets on
    /// internal addresses (loopback, private, link-local, …) are delivered to only when the
    /// hub config's [notify] allow_targets lists them. Targets are printed with URL query
    /// values hidden.
    Add {
        jurisdiction: String,
        #[arg(long, group = "channel")]
        email: Option<String>,
        #[arg(long, group = "channel")]
        webhook: Option<String>,
        /// HMAC-SHA256 key for the webhook signature (at least 16 characters); one is generated
        /// and printed once when left out.
        #[arg(long, requires = "webhook")]
        secret: Option<String>,
        #[arg(long, group = "channel")]
        syslog: Option<String>,
        /// 1 (the default): warned at once. 2 to 9: told, in this order, only when a warning
        /// stays unacknowledged for [notify] escalate_after_mins (a deputy, an on-call line).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i64).range(1..=crate::ack::MAX_PRIORITY))]
        priority: i64,
        #[command(flatten)]
        data: DataArg,
    },
    /// List contacts.
    List {
        #[command(flatten)]
        data: DataArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum FederationCommand {
    /// What was pushed to and received from each peer hub, and each peer's feed on this hub.
    #[command(long_about = "What was pushed to and received from each peer hub: objects sent and \
received, the last push the peer took, the last error and the failures in a row (the pusher backs \
off), and the indicators each trusted peer has on this hub's sensors (its feed `federation: NAME`). \
Peers are configured in the hub's file ([[federation.peer]]); a peer appears here once it has been \
pushed to or has posted.")]
    Status {
        #[command(flatten)]
        data: DataArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create a key; it is printed once (only its hash is stored).
    #[command(long_about = "Create an API key for the TAXII server (docs/sharing.md \"Collections and permissions\"). \
The key is printed once; the store keeps only its SHA-256. Clients send it as `Authorization: Bearer KEY` \
or as HTTP Basic with the key id as the user name and the key as the password.\n\n\
A key with --jurisdiction reads the community collection and its jurisdiction's view, never another \
jurisdiction's objects. A key with --name-jurisdictions (a peer hub) also reads the named hub collection. \
Every key reads up to --max-tlp; TLP:RED is never served, AMBER+STRICT only to the jurisdiction it concerns.\n\n\
With --client-cert the key is bound to a partner's TLS client certificate (mutual TLS, as CISA AIS uses): \
over a connection presenting that certificate (verified against [tls] client_ca) the partner is this key \
without sending the key at all (docs/sharing.md \"Mutual TLS\").")]
    Create {
        /// A name for the key (who holds it), unique.
        #[arg(long)]
        name: String,
        /// What the key may do: taxii-read, taxii-write (comma-separated or repeated).
        #[arg(long = "scope", value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        /// The narrowest TLP the key reads: TLP:CLEAR, TLP:GREEN, TLP:AMBER or TLP:AMBER+STRICT.
        #[arg(long, default_value = "TLP:AMBER")]
        max_tlp: ward_model::tlp::Tlp,
        /// The jurisdiction (name or id) the key belongs to.
        #[arg(long)]
        jurisdiction: Option<String>,
        /// Let the key read the hub collection, where jurisdictions are named (peer hubs).
        #[arg(long)]
        name_jurisdictions: bool,
        /// Bind the key to this client certificate (PEM; the first certificate of the file).
        #[arg(long, value_name = "FILE.pem")]
        client_cert: Option<PathBuf>,
        #[command(flatten)]
        data: DataArg,
    },
    /// Bind a key to a (renewed) client certificate, or unbind it with --unbind.
    BindCert {
        /// The key's number (from `list`).
        id: i64,
        /// The certificate (PEM; the first certificate of the file).
        #[arg(long, value_name = "FILE.pem", required_unless_present = "unbind", conflicts_with = "unbind")]
        client_cert: Option<PathBuf>,
        /// Remove the key's certificate binding.
        #[arg(long)]
        unbind: bool,
        #[command(flatten)]
        data: DataArg,
    },
    /// List keys (never their secrets).
    List {
        #[command(flatten)]
        data: DataArg,
    },
    /// Revoke a key by its number (from `list`); it stops working at once on every replica.
    Revoke {
        id: i64,
        #[command(flatten)]
        data: DataArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; a random password is printed unless --password is given.
    Add {
        username: String,
        #[arg(long, value_enum)]
        role: Role,
        /// Jurisdiction (name or id) of an admin or viewer.
        #[arg(long)]
        jurisdiction: Option<String>,
        #[arg(long, env = "WARD_HUB_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        #[command(flatten)]
        data: DataArg,
    },
    /// List users.
    List {
        #[command(flatten)]
        data: DataArg,
    },
}

/// Runs one `ward hub` subcommand on its own tokio runtime.
pub fn run(cmd: HubCommand) -> anyhow::Result<()> {
    match cmd {
        HubCommand::Serve { config, data, database, listen } => serve(config, data, database, listen),
        HubCommand::Init { data, username } => {
            let database = data.database()?;
            let store = open(&data)?;
            let password = random_password();
            let phc = auth::hash_password(&password).map_err(|e| anyhow::anyhow!("{e}"))?;
            store.create_user(&username, &phc, Role::Analyst, None, now_ms()).with_context(|| {
                format!("cannot create analyst {username:?} (run init once per store, or use `ward hub user add`)")
            })?;
            println!("store ready in {database}");
            if let Database::Sqlite(dir) = &database {
                println!(
                    "secret key {} seals webhook secrets in the store: back it up, apart from the database",
                    crate::store::secrets::SecretKeys::default_path(dir).display()
                );
            }
            println!("first analyst login: user {username} password {password}");
            println!("change it after logging in; it is not shown again");
            Ok(())
        }
        HubCommand::Jurisdiction(JurisdictionCommand::Add { name, kind, state, home_net, drill, data }) => {
            let store = open(&data)?;
            let mut j = store.create_jurisdiction(&NewJurisdiction { name, kind, state, home_net }, now_ms())?;
            if drill {
                j = store.set_jurisdiction_drill(j.id, true)?;
            }
            println!(
                "jurisdiction {} {:?} ({}{}){}",
                j.id,
                j.name,
                j.kind.as_str(),
                j.state.map(|s| format!(", {s}")).unwrap_or_default(),
                if j.drill { " DRILL" } else { "" }
            );
            Ok(())
        }
        HubCommand::Jurisdiction(JurisdictionCommand::List { data }) => {
            for j in open(&data)?.jurisdictions()? {
                let drill = if j.drill { "\tDRILL" } else { "" };
                println!("{}\t{}\t{}\t{}{drill}", j.id, j.kind.as_str(), j.state.unwrap_or_default(), j.name);
            }
            Ok(())
        }
        HubCommand::Drill(DrillCommand::Purge { yes, data }) => drill_purge(&data, yes),
        HubCommand::Sensor(SensorCommand::Token { jurisdiction, data }) => {
            let store = open(&data)?;
            let j = find_jurisdiction(store.as_ref(), &jurisdiction)?;
            let token = auth::random_token("wet");
            let now = now_ms();
            store.create_enrollment_token(j, &auth::hash_token(&token), now, now + auth::ENROLLMENT_TOKEN_TTL_MS)?;
            println!("{token}");
            eprintln!("one-time enrollment token for jurisdiction {j}, valid 7 days; the sensor sends it to POST /api/v1/sensors/enroll");
            Ok(())
        }
        HubCommand::Sensor(SensorCommand::List { data }) => {
            for s in open(&data)?.sensors(None)? {
                let seen = s.last_seen_ms.map(crate::model::fmt_ms).unwrap_or_else(|| "never".into());
                println!("{}\tjurisdiction {}\t{}\tlast seen {}\t{} events", s.id, s.jurisdiction_id, s.name, seen, s.events_total);
            }
            Ok(())
        }
        HubCommand::Sensor(SensorCommand::Contributions { id, data }) => {
            let c = open(&data)?.sensor_contributions(id, now_ms())?.with_context(|| format!("no sensor {id}: list them with `ward hub sensor list`"))?;
            println!("{}", serde_json::to_string_pretty(&c)?);
            Ok(())
        }
        HubCommand::Sensor(SensorCommand::Revoke { id, policy, data }) => {
            let policy = load_policy(&policy)?;
            let out = open(&data)?.revoke_sensor(id, &policy, now_ms()).with_context(|| format!("cannot revoke sensor {id}"))?;
            println!(
                "sensor {id}: {} sightings deleted, jurisdiction left {} campaigns, {} closed, {} unpublished, {} indicators withdrawn; on hold until {}",
                out.sightings_deleted,
                out.campaigns_left.len(),
                out.campaigns_closed.len(),
                out.campaigns_unpublished.len(),
                out.indicators_withdrawn,
                crate::model::fmt_ms(out.hold_until_ms)
            );
            Ok(())
        }
        HubCommand::Sensor(SensorCommand::Release { id, policy, data }) => {
            let policy = load_policy(&policy)?;
            open(&data)?.release_sensor(id, &policy, now_ms()).with_context(|| format!("cannot release sensor {id}"))?;
            println!("sensor {id} released: its next batches correlate again");
            Ok(())
        }
        HubCommand::Allow(AllowCommand::Add { network, note, jurisdiction, data }) => {
            let store = open(&data)?;
            let j = jurisdiction.map(|name| find_jurisdiction(store.as_ref(), &name)).transpose()?;
            let new = crate::trust::validate_entry(&network, &note, j, crate::trust::EntryAuthor::Analyst, "cli").map_err(|e| anyhow::anyhow!(e))?;
            let out = store.add_allow_entry(&new, now_ms())?;
            println!(
                "allow-list entry {} {} ({}): {} campaign keys removed, {} indicators withdrawn, {} campaigns closed",
                out.entry.id,
                out.entry.network,
                out.entry.jurisdiction_id.map(|j| format!("jurisdiction {j}")).unwrap_or_else(|| "hub-wide".into()),
                out.keys_removed,
                out.indicators_withdrawn,
                out.campaigns_closed
            );
            Ok(())
        }
        HubCommand::Allow(AllowCommand::List { data }) => {
            for e in open(&data)?.allow_entries(None)? {
                let scope = e.jurisdiction_id.map(|j| format!("jurisdiction {j}")).unwrap_or_else(|| "hub-wide".into());
                println!("{}\t{}\t{}\t{}\tby {}", e.id, e.network, scope, e.note, e.created_by);
            }
            Ok(())
        }
        HubCommand::Allow(AllowCommand::Remove { id, data }) => {
            let e = open(&data)?.remove_allow_entry(id, now_ms()).with_context(|| format!("cannot remove allow-list entry {id} (list them with `ward hub allow list`)"))?;
            println!("allow-list entry {} {} removed", e.id, e.network);
            Ok(())
        }
        HubCommand::Contact(ContactCommand::Add { jurisdiction, email, webhook, secret, syslog, priority, data }) => {
            let store = open(&data)?;
            let j = find_jurisdiction(store.as_ref(), &jurisdiction)?;
            let (channel, target) = match (email, webhook, syslog) {
                (Some(e), None, None) => (Channel::Email, e),
                (None, Some(w), None) => (Channel::Webhook, w),
                (None, None, Some(s)) => (Channel::Syslog, s),
                _ => anyhow::bail!("give exactly one of --email, --webhook, --syslog"),
            };
            let mut new = NewContact { channel, target, secret };
            let generated = crate::notify::fill_webhook_secret(&mut new);
            let mut c = store.create_contact(j, &new, now_ms())?;
            if priority != 1 {
                c = store.set_contact_priority(c.id, priority)?;
            }
            println!("contact {} ({} {}, priority {}) for jurisdiction {j}", c.id, c.channel.as_str(), redacted_target(&c.target), c.priority);
            // The operator may add an internal target here; the hub delivers to it only if listed.
            if let Err(e) = crate::notify::egress::EgressPolicy::default().check_target(c.channel, &c.target) {
                eprintln!("warning: {e}: deliveries are refused unless [notify] allow_targets in the hub config lists this address");
            }
            if let Some(secret) = generated {
                println!("webhook signing secret {secret}");
                eprintln!("give this secret to the receiver (it verifies X-Ward-Signature); it is not shown again");
            }
            Ok(())
        }
        HubCommand::Contact(ContactCommand::List { data }) => {
            for c in open(&data)?.contacts(None)? {
                println!("{}\tjurisdiction {}\t{}\t{}\tpriority {}", c.id, c.jurisdiction_id, c.channel.as_str(), redacted_target(&c.target), c.priority);
            }
            Ok(())
        }
        HubCommand::User(UserCommand::Add { username, role, jurisdiction, password, data }) => {
            let store = open(&data)?;
            let j = jurisdiction.map(|name| find_jurisdiction(store.as_ref(), &name)).transpose()?;
            let shown = password.is_none();
            let password = password.unwrap_or_else(random_password);
            let phc = auth::hash_password(&password).map_err(|e| anyhow::anyhow!("{e}"))?;
            let u = store.create_user(&username, &phc, role, j, now_ms())?;
            println!("user {} {:?} ({})", u.id, u.username, u.role.as_str());
            if shown {
                println!("password {password}");
            }
            Ok(())
        }
        HubCommand::ApiKey(ApiKeyCommand::Create { name, scopes, max_tlp, jurisdiction, name_jurisdictions, client_cert, data }) => {
            let cert = client_cert.as_deref().map(read_cert_fingerprint).transpose()?;
            let store = open(&data)?;
            let jurisdiction_id = jurisdiction.map(|j| find_jurisdiction(store.as_ref(), &j)).transpose()?;
            let req = crate::api::ApiKeyRequest { name, scopes, max_tlp: Some(max_tlp), jurisdiction_id, name_jurisdictions, client_cert: None };
            let (new, secret) = req.into_new("cli");
            let key = crate::api::create_api_key_with_cert(store.as_ref(), &new, cert.as_deref(), now_ms())?;
            println!("api key {} {} {:?} scopes {} max {}", key.id, key.key_id, key.name, key.scopes.join(","), key.max_tlp);
            if let Some(fp) = &key.client_cert_sha256 {
                println!("bound to client certificate sha256 {fp}");
            }
            println!("{secret}");
            eprintln!("shown once: send it as `Authorization: Bearer KEY`, or HTTP Basic {}:KEY", key.key_id);
            Ok(())
        }
        HubCommand::ApiKey(ApiKeyCommand::List { data }) => {
            for k in open(&data)?.api_keys()? {
                let status = if k.revoked_ms.is_some() { "revoked" } else { "active" };
                let j = k.jurisdiction_id.map(|j| j.to_string()).unwrap_or_default();
                let cert = k.client_cert_sha256.as_deref().map(|fp| format!("cert:{}", fp.chars().take(16).collect::<String>())).unwrap_or_default();
                println!("{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}", k.id, k.key_id, status, k.scopes.join(","), k.max_tlp, j, if k.name_jurisdictions { "named" } else { "" }, cert, k.name);
            }
            Ok(())
        }
        HubCommand::ApiKey(ApiKeyCommand::BindCert { id, client_cert, unbind: _, data }) => {
            let cert = client_cert.as_deref().map(read_cert_fingerprint).transpose()?;
            let k = open(&data)?.bind_api_key_cert(id, cert.as_deref())?;
            match &k.client_cert_sha256 {
                Some(fp) => println!("api key {} {} {:?} bound to client certificate sha256 {fp}", k.id, k.key_id, k.name),
                None => println!("api key {} {} {:?} bound to no client certificate", k.id, k.key_id, k.name),
            }
            Ok(())
        }
        HubCommand::ApiKey(ApiKeyCommand::Revoke { id, data }) => {
            let k = open(&data)?.revoke_api_key(id, now_ms())?;
            println!("api key {} {} {:?} revoked", k.id, k.key_id, k.name);
            Ok(())
        }
        HubCommand::Export { data, tlp, hub_name, name_jurisdictions, include_unpublished, out } => {
            let policy = crate::share::export::ExportPolicy { hub_name, tlp, name_jurisdictions, include_unpublished, confidence: 70 };
            let bundle = crate::share::export::export_bundle(open(&data)?.as_ref(), &policy, now_ms())?;
            let text = serde_json::to_string_pretty(&bundle)?;
            let count = bundle["objects"].as_array().map_or(0, Vec::len);
            match out {
                Some(path) => {
                    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
                    eprintln!("wrote {count} STIX objects to {}", path.display());
                }
                None => println!("{text}"),
            }
            Ok(())
        }
        HubCommand::User(UserCommand::List { data }) => {
            for u in open(&data)?.users(None)? {
                println!("{}\t{}\t{}\t{}", u.id, u.role.as_str(), u.jurisdiction_id.map(|j| j.to_string()).unwrap_or_default(), u.username);
            }
            Ok(())
        }
        HubCommand::Migrate { from, to } => migrate(&from, &to),
        HubCommand::Feed(cmd) => feed(cmd),
        HubCommand::Federation(FederationCommand::Status { data }) => {
            let store = open(&data)?;
            let feeds = store.feeds()?;
            let peers = store.federation_peers()?;
            if peers.is_empty() {
                println!("no peer hub has been pushed to or has posted yet (peers are configured in [[federation.peer]])");
            }
            let when = |ms: Option<i64>| ms.map(crate::model::fmt_ms).unwrap_or_else(|| "never".into());
            for p in peers {
                let feed = feeds.iter().find(|f| f.name == format!("{}{}", crate::share::federation::FEED_PREFIX, p.name));
                println!(
                    "{}\tsent {} (last taken {})\treceived {} (last {})\t{}\t{}",
                    p.name,
                    p.sent_total,
                    when(p.last_ok_ms),
                    p.received_total,
                    when(p.last_received_ms),
                    feed.map(|f| format!("feed {}: {} on sensors", f.id, f.on_sensors)).unwrap_or_else(|| "indicators not accepted".into()),
                    p.last_error.as_deref().map(|e| format!("error ({} in a row): {e}", p.failures)).unwrap_or_else(|| "ok".into())
                );
            }
            Ok(())
        }
    }
}

/// `ward hub feed …`.
fn feed(cmd: FeedCommand) -> anyhow::Result<()> {
    use crate::share::feeds::{self, FeedRequest};
    match cmd {
        FeedCommand::Add {
            name,
            kind,
            url,
            collection,
            column,
            username,
            password,
            token,
            types,
            min_confidence,
            default_confidence,
            max_indicators,
            tlp,
            expire_days,
            interval_secs,
            disabled,
            data,
        } => {
            let req = FeedRequest {
                name,
                kind,
                url,
                collection,
                column,
                username,
                password,
                token,
                types,
                min_confidence,
                default_confidence,
                max_indicators,
                tlp,
                expire_days,
                interval_secs,
                enabled: Some(!disabled),
            };
            let new = feeds::validate(&req, "cli").map_err(|e| anyhow::anyhow!(e))?;
            let f = open(&data)?.add_feed(&new, now_ms())?;
            println!(
                "feed {} {:?} ({} {}{}): types {}, confidence floor {}, cap {}, default {}, every {} s{}",
                f.id,
                f.name,
                f.kind.as_str(),
                redacted_target(&f.url),
                f.collection.as_deref().map(|c| format!(" collection {c}")).unwrap_or_default(),
                f.types.join(","),
                f.min_confidence,
                f.max_indicators,
                f.default_tlp,
                f.interval_secs,
                if f.enabled { "" } else { " (disabled)" }
            );
            Ok(())
        }
        FeedCommand::List { data } => {
            for f in open(&data)?.feeds()? {
                println!(
                    "{}\t{}\t{}\t{}\t{} on sensors, {} on the hub (cap {})\tlast poll {}\t{}",
                    f.id,
                    f.kind.as_str(),
                    f.name,
                    feeds::api::status(&f),
                    f.on_sensors,
                    f.held_on_hub,
                    f.max_indicators,
                    f.last_poll_ms.map(crate::model::fmt_ms).unwrap_or_else(|| "never".into()),
                    f.last_error.as_deref().map(|e| format!("error: {e}")).unwrap_or_else(|| redacted_target(&f.url))
                );
            }
            Ok(())
        }
        FeedCommand::Remove { id, data } => {
            let out = open(&data)?.remove_feed(id, now_ms()).with_context(|| format!("cannot remove feed {id} (list them with `ward hub feed list`)"))?;
            println!("feed {id} removed: {} indicators withdrawn, {} removed from the sensors' list (the rest another source holds)", out.removed, out.log_removes);
            Ok(())
        }
        FeedCommand::Poll { id, config, data } => {
            let cfg = match &config {
                Some(path) => HubConfig::load(path)?,
                None => HubConfig::default(),
            };
            let policy = cfg.correlation_policy(|_| None).map_err(|e| anyhow::anyhow!("invalid [trust] configuration: {e}"))?;
            let http = cfg.feeds.client().map_err(|e| anyhow::anyhow!(e))?;
            let store = open(&data)?;
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let report = rt.block_on(async move {
                let poller = feeds::poll::Poller { store, http, allow: policy.trust.allow.clone() };
                feeds::poll_feed(&poller, id, &|line| eprintln!("{line}")).await
            })?;
            println!("{}", report.summary());
            if !report.skipped.0.is_empty() {
                let reasons: Vec<String> = report.skipped.0.iter().map(|(k, v)| format!("{} {v}", serde_json::to_value(k).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default())).collect();
                println!("skipped: {}", reasons.join(", "));
            }
            match report.error {
                Some(e) => anyhow::bail!("feed {id} poll failed: {e}"),
                None => Ok(()),
            }
        }
    }
}

/// `ward hub migrate`: progress per table on stderr, the summary on stdout.
fn migrate(from: &str, to: &str) -> anyhow::Result<()> {
    let (from, to) = (Database::parse(from)?, Database::parse(to)?);
    eprintln!("copying {from} into {to} (one transaction: nothing is kept unless every table is copied)");
    let started = std::time::Instant::now();
    let mut progress = |p: &crate::store::migrate::Progress| match p {
        crate::store::migrate::Progress::Table { table, rows } => eprintln!("  {table}: {rows} rows …"),
        crate::store::migrate::Progress::Copied { table, rows } => eprintln!("  {table}: {rows} copied"),
    };
    let copied = crate::store::migrate::run(&from, &to, &mut progress).with_context(|| format!("cannot migrate {from} into {to}"))?;
    let total: u64 = copied.iter().map(|t| t.rows).sum();
    println!("migrated {total} rows in {} tables into {to} in {:.1} s", copied.len(), started.elapsed().as_secs_f64());
    println!("next: ward hub serve --database {to} (keep the sqlite store and its secret key as a backup)");
    Ok(())
}

/// The correlation policy of `--config` (or the defaults), as the running hub would use it.
fn load_policy(arg: &PolicyArg) -> anyhow::Result<crate::store::CorrelationPolicy> {
    let cfg = match &arg.config {
        Some(path) => HubConfig::load(path)?,
        None => HubConfig::default(),
    };
    cfg.correlation_policy(|_| None).map_err(|e| anyhow::anyhow!("invalid [trust] configuration: {e}"))
}

/// `ward hub drill purge`: shows what goes (the purge run and rolled back), asks, purges.
fn drill_purge(data: &DataArg, yes: bool) -> anyhow::Result<()> {
    let store = open(data)?;
    let drills: Vec<_> = store.jurisdictions()?.into_iter().filter(|j| j.drill).collect();
    if drills.is_empty() {
        println!("no drill jurisdictions: nothing to purge");
        return Ok(());
    }
    let preview = store.purge_drill(now_ms(), false)?;
    println!("drill jurisdictions to delete:");
    for j in drills.iter().take(50) {
        println!("  {}\t{}", j.id, j.name);
    }
    if drills.len() > 50 {
        println!("  … and {} more", drills.len() - 50);
    }
    println!("rows to delete:");
    for line in preview.lines() {
        println!("{line}");
    }
    if !yes {
        use std::io::{BufRead, Write};
        print!("delete them? type yes: ");
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if answer.trim() != "yes" {
            println!("nothing deleted");
            return Ok(());
        }
    }
    let done = store.purge_drill(now_ms(), true)?;
    println!("deleted {} drill jurisdictions and {} campaigns:", done.jurisdictions, done.campaigns);
    for line in done.lines() {
        println!("{line}");
    }
    Ok(())
}

fn open(data: &DataArg) -> anyhow::Result<Arc<dyn Store>> {
    let database = data.database()?;
    database.open().with_context(|| format!("cannot open the hub store {database}"))
}

fn find_jurisdiction(store: &dyn Store, name_or_id: &str) -> anyhow::Result<i64> {
    if let Some(j) = store.jurisdiction_by_name(name_or_id)? {
        return Ok(j.id);
    }
    if let Ok(id) = name_or_id.parse::<i64>() {
        if store.jurisdiction(id)?.is_some() {
            return Ok(id);
        }
    }
    anyhow::bail!("no jurisdiction named {name_or_id:?}: list them with `ward hub jurisdiction list`")
}

fn random_password() -> String {
    auth::random_token("pw")[3..27].to_string()
}

fn serve(config: Option<PathBuf>, data: Option<PathBuf>, database: Option<String>, listen: Option<std::net::SocketAddr>) -> anyhow::Result<()> {
    // Colour codes only for a terminal: a journal or a log file gets plain text.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .try_init();
    let mut cfg = match &config {
        Some(path) => HubConfig::load(path)?,
        None => HubConfig::default(),
    };
    if let Some(d) = data {
        cfg.data_dir = d;
        cfg.database = None;
    }
    if let Some(d) = database {
        cfg.database = Some(d);
    }
    if let Some(l) = listen {
        cfg.listen = l;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let database = cfg.store_database()?;
        let shown = database.to_string();
        let store = tokio::task::spawn_blocking(move || database.open())
            .await?
            .with_context(|| format!("cannot open the hub store {shown}"))?;
        tracing::info!(store = %shown, "store open");
        let hub = crate::server::start_with_store(store, cfg).await?;
        println!("ward hub listening on {}", hub.url());
        // Ctrl-C and SIGTERM (systemd's stop) both stop cleanly: in-flight requests finish and
        // the replica's job leases are released for the others.
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => { r?; hub.shutdown().await; }
            _ = terminate.recv() => { hub.shutdown().await; }
        }
        Ok(())
    })
}

/// The SHA-256 of the first certificate in a PEM file (`--client-cert`).
fn read_cert_fingerprint(path: &std::path::Path) -> anyhow::Result<String> {
    let pem = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    crate::tls::cert_fingerprint(&pem).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}
