//! `ward`: the one binary. Each subcommand parses its options here and calls the crate that owns
//! the work (sensor, detect, hub, scan). What lives here besides: the sensor's service glue
//! ([`sensor_service`]: enroll, `run --config`, spool/relay/sync around the pipeline) and
//! `ward demo` ([`demo`]), which joins every crate into one scenario, and `ward drill`
//! ([`drill`]), the scored exercise; [`receivers`] are the offices' inboxes both use.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod rules_cmd;
pub(crate) mod demo;
mod drill;
mod receivers;
mod sensor_cmd;
mod sensor_service;

#[derive(Parser)]
#[command(
    name = "ward",
    version,
    about = "Protects election infrastructure: network sensor, information-sharing hub, scanner",
    long_about = "ward protects election offices' networks.\n\n\
        `ward sensor` watches traffic (pcap files or a live interface), decodes it, follows flows and \
        TCP streams, parses DNS/HTTP/TLS and writes Suricata-compatible EVE JSON.\n\n\
        `ward hub` is the information-sharing centre: it ingests every sensor's events, correlates \
        them across jurisdictions and warns every targeted office.\n\n\
        `ward scan` checks a jurisdiction's internet-facing systems; `ward report weekly` turns \
        the findings into a report a non-expert can act on.\n\n\
        `ward drill` runs a scored exercise through real sensors and a real hub and writes an \
        after-action report; `ward demo` shows the whole system on one machine.",
    propagate_version = true
)]
struct Cli {
    /// Log verbosity for diagnostics on stderr: error, warn, info, debug, trace.
    #[arg(long, global = true, default_value = "warn", env = "WARD_LOG")]
    log: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Watch a network: read pcap files or capture live, detect with rules, indicator lists and
    /// the scan detector, write EVE JSON.
    Sensor(SensorArgs),
    /// Work with Suricata rule files without traffic (`ward rules check`).
    #[command(subcommand)]
    Rules(rules_cmd::RulesCommand),
    /// The information-sharing hub: serve the API and dashboard, administer jurisdictions,
    /// sensors, contacts and users.
    #[command(subcommand)]
    Hub(ward_hub::cli::HubCommand),
    /// Scan internet-facing systems: open ports, services, TLS/HTTP/email hygiene, default
    /// passwords and known-exploited vulnerabilities.
    Scan(ward_scan::cli::ScanCli),
    /// Reports from the scanner's findings history (weekly HTML/PDF report, false positives).
    #[command(subcommand)]
    Report(ward_scan::cli::ReportCommand),
    /// The whole system on this machine: a hub, five jurisdictions with a sensor each, an
    /// attack campaign, and the warnings it causes.
    Demo(demo::DemoArgs),
    /// An automated, scored election-security exercise: scripted attacks through real sensors
    /// and simulated relays into a real hub, every warning and acknowledgement measured, and an
    /// after-action report (HSEEP structure) in HTML, PDF, JSON and CSV.
    #[command(subcommand)]
    Drill(drill::DrillCommand),
}

/// Options of `ward sensor`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    ward sensor --pcap samples/office-mix.pcap --eve eve.json\n  \
    ward sensor --pcap captures/ --workers 2 --eve -\n  \
    ward sensor --interface eth1 --filter 'not port 22' --eve /var/log/ward/eve.json\n  \
    ward sensor --pcap office.pcap --rules emerging-all.rules --set HOME_NET=[10.20.0.0/16] \\\n      \
    --indicators bad-ips.csv --eve eve.json\n\n\
Detection: every --rules file is loaded at start (rules with unsupported keywords are skipped and \
counted; `ward rules check FILE` lists them). Alerts are EVE `alert` records with Suricata's \
fields plus the flow's http/dns/tls object. Indicator matches have gid 9000, scan detector \
alerts gid 9001. Send SIGHUP, or change a rules/indicator file, to reload them without \
stopping: the new set is built beside the old one and swapped in atomically. A reload with a \
rule that did not parse completely, or that loses more than --reload-max-rule-loss of the \
running rules, is refused: the running rules stay, and the refusal is logged, counted and \
written as an EVE `engine` record (relayed to the hub). SIGUSR1 reloads accepting any loss. \
SIGINT and SIGTERM stop cleanly: open flows and the stats are logged, the output flushed, \
exit status 0.")]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct SensorArgs {
    #[command(subcommand)]
    action: Option<sensor_service::SensorAction>,

    /// A pcap or pcapng file (optionally .gz) or a directory of them, read in name order, each
    /// as its own capture. Repeat for several.
    #[arg(long, value_name = "PATH", required_unless_present = "interface")]
    pcap: Vec<PathBuf>,

    /// Capture live from this interface (AF_PACKET; needs root or CAP_NET_RAW).
    #[arg(long, value_name = "IFACE", conflicts_with = "pcap")]
    interface: Option<String>,

    /// Only process packets matching this tcpdump-style filter, e.g. 'tcp and port 80',
    /// 'not net 10.0.0.0/8', 'host 192.0.2.1 or udp'.
    #[arg(long, value_name = "EXPR")]
    filter: Option<String>,

    /// Packet worker threads (default: number of cores). Both directions of a flow always
    /// reach the same worker.
    #[arg(long, value_name = "N")]
    workers: Option<usize>,

    /// Where to write EVE JSON records: a file (appended) or - for stdout.
    #[arg(long, value_name = "FILE", default_value = "-")]
    eve: String,

    /// Record types to leave out of the EVE output (alert and anomaly are always written):
    /// flow, dns, http, tls, stats. Comma-separated.
    #[arg(long, value_name = "TYPES", value_delimiter = ',')]
    eve_exclude: Vec<String>,

    /// Per-direction TCP reassembly depth in bytes; data past it is not inspected
    /// (as Suricata's stream.reassembly.depth).
    #[arg(long, value_name = "BYTES", default_value_t = 1024 * 1024)]
    reassembly_depth: u32,

    /// Memory cap of each worker's flow table in MiB; the least recently seen flows are
    /// evicted (and logged with reason "forced") beyond it.
    #[arg(long, value_name = "MIB", default_value_t = 128)]
    flow_memcap: usize,

    /// Pick up TCP sessions whose handshake was not seen (Suricata's stream.midstream), e.g.
    /// when capture starts while connections are open.
    #[arg(long)]
    midstream: bool,

    /// Only one direction of TCP sessions is visible (Suricata's stream.async-oneside), e.g.
    /// with asymmetric routing.
    #[arg(long)]
    async_oneside: bool,

    /// Leave VLAN ids out of the flow key (Suricata's vlan.use-for-tracking: false), for
    /// networks where the two directions of a flow carry different VLAN tags.
    #[arg(long)]
    no_vlan_tracking: bool,

    /// Extra fields in alert records, as Suricata's eve-log alert options: payload (base64,
    /// with "stream"), payload-printable, packet (base64, with packet_info), verdict.
    /// Comma-separated.
    #[arg(long, value_name = "FIELDS", value_delimiter = ',')]
    alert_fields: Vec<String>,

    /// Do not draw the progress line on the terminal.
    #[arg(long, short)]
    quiet: bool,

    /// At the end, print the run's summary as one JSON object on stdout (packets, bytes,
    /// seconds spent loading rules and indicators, seconds processing, peak memory), for
    /// scripts and benchmarks. Needs --eve to name a file, as stdout then carries only this.
    #[arg(long)]
    summary_json: bool,

    /// A Suricata rules file (e.g. ET Open's emerging-all.rules). Repeat for several. Categories
    /// and priorities come from classification.config beside the first file when present.
    #[arg(long, value_name = "FILE")]
    rules: Vec<PathBuf>,

    /// Set a rule variable, e.g. HOME_NET=[10.0.0.0/8,192.168.0.0/16], EXTERNAL_NET=any,
    /// HTTP_PORTS=[80,8080]. Repeat for several. Unset variables have Suricata's defaults.
    #[arg(long = "set", value_name = "VAR=VALUE")]
    set: Vec<String>,

    /// An indicator list: one IP, CIDR or domain a line, or CSV with columns
    /// id,type,value,severity,description,expiry. Matched against every flow endpoint, DNS query
    /// and answer, TLS SNI and HTTP host (domains cover their subdomains). Repeat for several.
    #[arg(long, value_name = "FILE")]
    indicators: Vec<PathBuf>,

    /// Turn the scan detector off (it reports vertical, horizontal and block scans per source).
    #[arg(long)]
    no_scan_detect: bool,

    /// Scan detector window in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    scan_window: u32,

    /// Scan detector: distinct ports on one host within the window that make a vertical scan.
    #[arg(long, value_name = "N", default_value_t = 25)]
    scan_ports: u32,

    /// Scan detector: distinct hosts on one port within the window that make a horizontal sweep.
    #[arg(long, value_name = "N", default_value_t = 25)]
    scan_hosts: u32,

    /// Scan detector: distinct host:port pairs within the window that make a block scan.
    #[arg(long, value_name = "N", default_value_t = 100)]
    scan_pairs: u32,

    /// Most backtracking steps one pcre search may take (Suricata's pcre.match-limit). A search
    /// that reaches it counts as no match, is counted ("pcre limit hits") and reported as an
    /// EVE anomaly (type detect, event pcre_limit_exceeded, code = sid) once a minute per rule.
    #[arg(long, value_name = "N", default_value_t = ward_sensor::ward_detect::pcre::DEFAULT_MATCH_LIMIT)]
    pcre_match_limit: u32,

    /// Deepest backtracking one pcre search may reach when it runs without the JIT (Suricata's
    /// pcre.match-limit-recursion); reaching it is handled as --pcre-match-limit.
    #[arg(long, value_name = "N", default_value_t = ward_sensor::ward_detect::pcre::DEFAULT_DEPTH_LIMIT)]
    pcre_depth_limit: u32,

    /// Check the rules and indicator files' modification time this often (seconds) and reload
    /// when one changed; 0 turns the file watch off (SIGHUP still reloads).
    #[arg(long, value_name = "SECS", default_value_t = 2)]
    reload_interval: u64,

    /// A reload whose rule set has lost more than this share (0 to 1) of the running rules is
    /// refused and the running rules stay (an emptied or half-copied file); so is one with a
    /// rule that did not parse completely. SIGUSR1 reloads accepting any loss.
    #[arg(long, value_name = "SHARE", default_value_t = ward_sensor::detect::DEFAULT_MAX_RULE_LOSS)]
    reload_max_rule_loss: f64,

    /// Relay to the hub with this credential (written by `ward sensor enroll`): alerts,
    /// anomalies and contact records go through an on-disk spool, and the hub's indicators are
    /// followed live (written beside the spool and matched like --indicators).
    #[arg(long, value_name = "FILE", help_heading = "Hub")]
    hub_credential: Option<PathBuf>,

    /// The spool directory (default: `spool` beside the credential file). Events wait here
    /// until the hub acknowledges them, across restarts and hub outages.
    #[arg(long, value_name = "DIR", help_heading = "Hub")]
    spool: Option<PathBuf>,

    /// Spool size cap in MiB, at least 16 (two 8 MiB segments: the cap makes room in a closed
    /// one while the other is written). Beyond it events are dropped by value: flow, dns, http,
    /// tls, stats and contact records first, then anomalies, alerts last; counted, logged, and
    /// reported in the summary and the stats record.
    #[arg(long, value_name = "MIB", default_value_t = 1024, value_parser = sensor_service::parse_spool_max_mib, help_heading = "Hub")]
    spool_max_mib: u64,

    /// When spooled events are fsynced: `always` (before their EVE lines are written, so a
    /// power cut loses nothing spooled), an interval in milliseconds (a power cut loses at most
    /// the events of that interval), or `never` (the OS decides). A killed or crashed sensor
    /// loses no spooled event under any policy.
    #[arg(long, value_name = "POLICY", default_value = "500", value_parser = ward_sensor::spool::FsyncPolicy::parse, help_heading = "Hub")]
    spool_fsync: ward_sensor::spool::FsyncPolicy,

    /// What to relay, comma-separated: EVE record types (alert, anomaly, flow, dns, http, tls,
    /// stats) and `contact` (hourly contact records: remote address, local address, port,
    /// protocol, first/last seen, packets, bytes; the hub's retro-hunt searches them). The
    /// sensor's own `engine` records (a refused rule reload) are always relayed.
    #[arg(long, value_name = "TYPES", default_value = "alert,anomaly,contact", help_heading = "Hub")]
    relay: String,

    /// The networks that are this office's own (for contact records), e.g. 10.20.0.0/16.
    /// Default: RFC 1918 and IPv6 ULA.
    #[arg(long, value_name = "CIDRS", help_heading = "Hub")]
    home_net: Option<String>,
}

/// `ward sensor`'s options with their defaults (for `ward sensor run --config`).
pub(crate) fn sensor_defaults() -> SensorArgs {
    match Cli::try_parse_from(["ward", "sensor", "--interface", "unset"]) {
        Ok(Cli { command: Command::Sensor(mut args), .. }) => {
            args.interface = None;
            args
        }
        _ => unreachable!("the default sensor command line parses"),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log);
    let result = match cli.command {
        Command::Sensor(args) => match args.action {
            Some(sensor_service::SensorAction::Enroll { hub, token, ca, name, credential }) => {
                sensor_service::enroll(&hub, &token, ca.as_deref(), name, &credential)
            }
            Some(sensor_service::SensorAction::Run { config }) => {
                sensor_service::args_from_file(&config).and_then(sensor_cmd::run)
            }
            None => sensor_cmd::run(args),
        },
        Command::Rules(cmd) => rules_cmd::run(cmd),
        Command::Hub(cmd) => ward_hub::cli::run(cmd).map(|()| ExitCode::SUCCESS),
        Command::Scan(cli) => ward_scan::cli::run(cli).map(exit_code),
        Command::Report(cmd) => ward_scan::cli::run_report(cmd).map(exit_code),
        Command::Demo(args) => demo::run(args),
        Command::Drill(cmd) => drill::run_cmd(cmd),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("ward: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(2))
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Colour codes only for a terminal: a journal or a log file gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).with_ansi(ansi).init();
}
