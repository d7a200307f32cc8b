//! `ward sensor enroll`, `ward sensor run --config FILE`, and the hub side of a sensor run: the
//! spool, the relay and the live indicator sync around the packet pipeline.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Subcommand;
use serde::Deserialize;

use ward_sensor::config::EveOutput;
use ward_sensor::eve_out::EveSink;
use ward_sensor::hubsink::{HomeNet, HubSelection, HubWriter, SharedHubWriter};
use ward_sensor::indicator_sync::{self, SyncConfig, SyncHandle};
use ward_sensor::relay::{Relay, RelayConfig, RelayHandle, SensorCredential};
use ward_sensor::spool::{FsyncPolicy, Spool, SpoolConfig, DEFAULT_SEGMENT_BYTES, MIN_MAX_BYTES};

use crate::SensorArgs;

/// Default credential file written by `ward sensor enroll`.
pub const DEFAULT_CREDENTIAL: &str = "ward-sensor/credential.json";

const MIB: u64 = 1024 * 1024;

/// Checks `--spool-max-mib` / `spool_max_mib`: the spool needs two segments (see
/// [`MIN_MAX_BYTES`]); a smaller cap is refused rather than raised behind the operator's back.
pub fn parse_spool_max_mib(text: &str) -> Result<u64, String> {
    let mib: u64 = text.trim().parse().map_err(|_| format!("{text:?} is not a number of MiB"))?;
    check_spool_max_mib(mib)
}

fn check_spool_max_mib(mib: u64) -> Result<u64, String> {
    if mib.saturating_mul(MIB) < MIN_MAX_BYTES {
        return Err(format!(
            "the spool needs at least {} MiB: two {} MiB segments, one being written while the size cap makes room in the other",
            MIN_MAX_BYTES / MIB,
            DEFAULT_SEGMENT_BYTES / MIB
        ));
    }
    Ok(mib)
}

/// `ward sensor enroll` / `ward sensor run`.
#[derive(Subcommand, Debug)]
pub enum SensorAction {
    /// Enroll this sensor at a hub with a one-time token (from `ward hub sensor token
    /// JURISDICTION`) and store the long-lived credential (file mode 0600).
    Enroll {
        /// The hub's URL, e.g. https://hub.example.org:8443 (plain http only to loopback).
        #[arg(long, value_name = "URL")]
        hub: String,
        /// The one-time enrollment token.
        #[arg(long, value_name = "TOKEN", env = "WARD_ENROLL_TOKEN")]
        token: String,
        /// PEM file of the CA that signed the hub's certificate (when not a public CA).
        #[arg(long, value_name = "FILE")]
        ca: Option<PathBuf>,
        /// This sensor's name at the hub (default: the host name).
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Where to store the credential.
        #[arg(long, value_name = "FILE", default_value = DEFAULT_CREDENTIAL)]
        credential: PathBuf,
    },
    /// Run capture, detection and the relay to the hub as a service, from a TOML file whose
    /// keys are the long options of `ward sensor` (see docs/sensor.md).
    Run {
        /// The TOML configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

pub fn enroll(hub: &str, token: &str, ca: Option<&Path>, name: Option<String>, credential: &Path) -> anyhow::Result<ExitCode> {
    let name = name.unwrap_or_else(|| fs::read_to_string("/etc/hostname").map(|s| s.trim().to_string()).unwrap_or_else(|_| "sensor".into()));
    if let Some(dir) = credential.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let cred = ward_sensor::relay::enroll_to_file(hub, token, ca, &name, credential)?;
    println!(
        "enrolled as sensor {} of jurisdiction {} at {}; credential in {}",
        cred.sensor_id,
        cred.jurisdiction_id.map_or("?".into(), |j| j.to_string()),
        cred.hub_url,
        credential.display()
    );
    println!("next: ward sensor --interface IFACE --hub-credential {} ...  (or ward sensor run --config FILE)", credential.display());
    Ok(ExitCode::SUCCESS)
}

/// The TOML form of `ward sensor`'s options: every key is a long option, with `-` or `_`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ServiceFile {
    #[serde(default)]
    pcap: Vec<PathBuf>,
    interface: Option<String>,
    filter: Option<String>,
    workers: Option<usize>,
    eve: Option<String>,
    #[serde(alias = "eve_exclude")]
    #[serde(default)]
    eve_exclude: Vec<String>,
    #[serde(alias = "reassembly_depth")]
    reassembly_depth: Option<u32>,
    #[serde(alias = "flow_memcap")]
    flow_memcap: Option<usize>,
    #[serde(default)]
    rules: Vec<PathBuf>,
    #[serde(default)]
    set: Vec<String>,
    #[serde(default)]
    indicators: Vec<PathBuf>,
    #[serde(alias = "no_scan_detect")]
    #[serde(default)]
    no_scan_detect: bool,
    #[serde(alias = "scan_window")]
    scan_window: Option<u32>,
    #[serde(alias = "scan_ports")]
    scan_ports: Option<u32>,
    #[serde(alias = "scan_hosts")]
    scan_hosts: Option<u32>,
    #[serde(alias = "scan_pairs")]
    scan_pairs: Option<u32>,
    #[serde(alias = "reload_interval")]
    reload_interval: Option<u64>,
    #[serde(alias = "pcre_match_limit")]
    pcre_match_limit: Option<u32>,
    #[serde(alias = "pcre_depth_limit")]
    pcre_depth_limit: Option<u32>,
    #[serde(alias = "reload_max_rule_loss")]
    reload_max_rule_loss: Option<f64>,
    #[serde(alias = "hub_credential")]
    hub_credential: Option<PathBuf>,
    spool: Option<PathBuf>,
    #[serde(alias = "spool_max_mib")]
    spool_max_mib: Option<u64>,
    #[serde(alias = "spool_fsync")]
    spool_fsync: Option<String>,
    relay: Option<String>,
    #[serde(alias = "home_net")]
    home_net: Option<String>,
    #[serde(default)]
    midstream: bool,
    #[serde(alias = "async_oneside")]
    #[serde(default)]
    async_oneside: bool,
    #[serde(alias = "no_vlan_tracking")]
    #[serde(default)]
    no_vlan_tracking: bool,
    #[serde(alias = "alert_fields")]
    #[serde(default)]
    alert_fields: Vec<String>,
}

/// Reads the service file into the same options the command line gives.
pub fn args_from_file(path: &Path) -> anyhow::Result<SensorArgs> {
    let text = fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let f: ServiceFile = toml::from_str(&text).with_context(|| format!("{} is not a valid sensor configuration", path.display()))?;
    if f.pcap.is_empty() && f.interface.is_none() {
        bail!("{}: give `interface = \"IFACE\"` (or `pcap = [\"FILE\"]`)", path.display());
    }
    let mut args = crate::sensor_defaults();
    args.pcap = f.pcap;
    args.interface = f.interface;
    args.filter = f.filter;
    args.workers = f.workers;
    args.eve = f.eve.unwrap_or_else(|| "eve.json".into());
    args.eve_exclude = f.eve_exclude;
    args.midstream = f.midstream;
    args.async_oneside = f.async_oneside;
    args.no_vlan_tracking = f.no_vlan_tracking;
    args.alert_fields = f.alert_fields;
    if let Some(v) = f.reassembly_depth {
        args.reassembly_depth = v;
    }
    if let Some(v) = f.flow_memcap {
        args.flow_memcap = v;
    }
    args.rules = f.rules;
    args.set = f.set;
    args.indicators = f.indicators;
    args.no_scan_detect = f.no_scan_detect;
    macro_rules! opt {
        ($($name:ident),*) => { $( if let Some(v) = f.$name { args.$name = v; } )* };
    }
    opt!(scan_window, scan_ports, scan_hosts, scan_pairs, reload_interval, pcre_match_limit, pcre_depth_limit, reload_max_rule_loss, spool_max_mib);
    check_spool_max_mib(args.spool_max_mib).map_err(|e| anyhow::anyhow!("{}: spool_max_mib = {}: {e}", path.display(), args.spool_max_mib))?;
    if let Some(policy) = &f.spool_fsync {
        args.spool_fsync = FsyncPolicy::parse(policy).map_err(|e| anyhow::anyhow!("{}: spool_fsync: {e}", path.display()))?;
    }
    args.hub_credential = f.hub_credential;
    args.spool = f.spool;
    if let Some(r) = f.relay {
        args.relay = r;
    }
    args.home_net = f.home_net;
    args.quiet = true;
    Ok(args)
}

/// The hub side of a running sensor.
pub struct HubLink {
    writer: SharedHubWriter,
    relay: RelayHandle,
    sync: SyncHandle,
}

/// The hub's indicators file beside the spool; add it to the detection's indicator files.
pub fn hub_indicator_file(args: &SensorArgs) -> Option<PathBuf> {
    args.hub_credential.as_ref().map(|_| spool_dir(args).with_extension("indicators.csv"))
}

fn spool_dir(args: &SensorArgs) -> PathBuf {
    args.spool.clone().unwrap_or_else(|| {
        args.hub_credential.as_deref().and_then(Path::parent).map_or_else(|| PathBuf::from("spool"), |d| d.join("spool"))
    })
}

/// Opens the spool, starts the relay and the indicator sync, and returns the EVE sink that
/// writes the local EVE output and feeds the spool.
pub fn start_hub_link(args: &SensorArgs, eve: &EveOutput, engines: Option<ward_sensor::detect::Engines>) -> anyhow::Result<Option<(HubLink, EveSink)>> {
    let Some(cred_path) = &args.hub_credential else { return Ok(None) };
    let cred = SensorCredential::load(cred_path)?;
    let selection = HubSelection::parse(&args.relay).map_err(|e| anyhow::anyhow!("--relay: {e}"))?;
    let home = match &args.home_net {
        Some(h) => HomeNet::parse(h).map_err(|e| anyhow::anyhow!("--home-net: {e}"))?,
        None => HomeNet::default(),
    };
    let dir = spool_dir(args);
    let config = SpoolConfig { max_bytes: args.spool_max_mib.saturating_mul(MIB), fsync: args.spool_fsync, ..SpoolConfig::default() };
    let spool = Spool::open(&dir, config).with_context(|| format!("cannot open the spool in {}", dir.display()))?;
    let relay = Relay::spawn(spool.clone(), RelayConfig::new(cred.clone()))?;
    let file = hub_indicator_file(args).expect("a hub credential is configured");
    let sync = indicator_sync::spawn(SyncConfig::new(cred, file), engines)?;
    let tee: Option<Box<dyn Write + Send>> = match eve {
        EveOutput::Stdout => Some(Box::new(std::io::BufWriter::new(std::io::stdout()))),
        EveOutput::File(path) => Some(Box::new(std::io::BufWriter::new(
            fs::OpenOptions::new().create(true).append(true).open(path).with_context(|| format!("cannot open eve output {}", path.display()))?,
        ))),
        EveOutput::Null => None,
    };
    let writer = SharedHubWriter::new(HubWriter::new(spool, selection, home, tee));
    let sink = EveSink::to_writer(Box::new(writer.clone()));
    Ok(Some((HubLink { writer, relay, sync }, sink)))
}

impl HubLink {
    /// After the pipeline ended: flush contact records, give the relay `drain` to deliver
    /// what is spooled (the rest stays in the spool for the next run), report, stop.
    pub fn finish(self, drain: Duration) -> anyhow::Result<()> {
        let (stats, spool) = {
            let mut w = self.writer.lock();
            w.finish()?;
            (w.stats(), w.spool_stats())
        };
        let drained = self.relay.wait_drained(drain);
        let r = self.relay.stats();
        eprintln!(
            "hub: {} alerts/anomalies and {} contact records spooled; {} events acknowledged by the hub in {} batches ({} retries){}",
            stats.forwarded,
            stats.contacts,
            r.events_acked,
            r.batches_acked,
            r.retries,
            if drained { String::new() } else { format!("; {} records wait in the spool for the next run", r.spool.pending_records) }
        );
        eprintln!("{}", ward_sensor::hubsink::spool_dropped_text(&spool, &stats));
        let s = self.sync.stats();
        eprintln!("hub: {} hub indicators in force (cursor {}, {} sync errors)", s.indicators, s.cursor, s.errors);
        self.relay.shutdown();
        self.sync.shutdown();
        // Nothing is lost (the spool keeps it), but a run whose events could not be delivered
        // because the hub refuses this sensor must not look like a success.
        if let (false, Some(status)) = (drained, r.credential_refused) {
            anyhow::bail!(
                "the hub refused this sensor's credential (HTTP {status}: revoked, or from another hub): {} records are kept in the spool and are sent by the next run once the sensor is enrolled again (`ward sensor enroll --hub URL --token TOKEN`)",
                r.spool.pending_records
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_file_takes_long_option_names_with_either_separator() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sensor.toml");
        fs::write(
            &path,
            "interface = \"eth1\"\nrules = [\"/etc/ward/emerging_all.rules\"]\nset = [\"HOME_NET=[10.0.0.0/8]\"]\n\
             hub_credential = \"/var/lib/ward/credential.json\"\nhome-net = \"10.0.0.0/8\"\nscan-ports = 40\nrelay = \"alert,contact\"\n",
        )
        .unwrap();
        let args = args_from_file(&path).unwrap();
        assert_eq!(args.interface.as_deref(), Some("eth1"));
        assert_eq!(args.rules, [PathBuf::from("/etc/ward/emerging_all.rules")]);
        assert_eq!(args.scan_ports, 40);
        assert_eq!(args.relay, "alert,contact");
        assert_eq!(args.home_net.as_deref(), Some("10.0.0.0/8"));
        fs::write(&path, "interface = \"eth1\"\nbogus = 1\n").unwrap();
        assert!(format!("{:#}", args_from_file(&path).unwrap_err()).contains("bogus"));
        fs::write(&path, "workers = 2\n").unwrap();
        assert!(args_from_file(&path).unwrap_err().to_string().contains("interface"));
    }

    #[test]
    fn service_file_sets_the_pcre_limits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sensor.toml");
        fs::write(&path, "interface = \"eth1\"\n").unwrap();
        let args = args_from_file(&path).unwrap();
        assert_eq!((args.pcre_match_limit, args.pcre_depth_limit), (3500, 1500), "Suricata's defaults");
        fs::write(&path, "interface = \"eth1\"\npcre-match-limit = 10000\npcre_depth_limit = 2000\n").unwrap();
        let args = args_from_file(&path).unwrap();
        assert_eq!((args.pcre_match_limit, args.pcre_depth_limit), (10000, 2000));
    }
}
