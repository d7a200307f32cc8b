//! Command-line surface for the `ward` binary: `ward scan TARGET...` and `ward report ...`.
//! The binary wires [`ScanArgs`] and [`ReportCommand`] into its clap tree and calls
//! [`run_scan`] / [`run_report`], which build their own tokio runtime and return an exit code
//! (0 clean, 1 findings of high severity or worse, 2 usage or run error reported by anyhow).

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use chrono::{NaiveDate, Utc};

use crate::engine::{self, Phase, ScanOptions};
use crate::finding::{ScanResult, Severity};
use crate::hub::{HubClient, HubTargets};
use crate::history::Store;
use crate::portscan::{ScanLimits, ScanProgress};
use crate::probe::ProbeTimeouts;
use crate::vulns::VulnDb;

/// Exit code when the scan found something of high severity or worse.
pub const EXIT_FINDINGS: i32 = 1;
/// How often the progress line is redrawn.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(200);

/// `ward scan TARGET...`, or one of its subcommands (`ward scan update-kev`).
#[derive(Debug, Clone, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ScanCli {
    #[command(subcommand)]
    pub command: Option<ScanSubcommand>,
    #[command(flatten)]
    pub args: ScanArgs,
}

/// Subcommands of `ward scan`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ScanSubcommand {
    /// Refresh the local copy of CISA's Known Exploited Vulnerabilities catalog (every scan uses
    /// the newer of it and the copy built into ward; reports name the version used)
    #[command(after_help = "Examples:\n  \
        ward scan update-kev                      # from CISA's feed\n  \
        ward scan update-kev --file known_exploited_vulnerabilities.json\n  \
        ward scan update-kev --url https://mirror.example.gov/kev.json")]
    UpdateKev(UpdateKevArgs),
    /// The vulnerability list: import NIST's NVD CVE JSON 2.0 files (and a KEV catalog) into
    /// the local list every scan uses instead of the built-in one
    #[command(subcommand)]
    Vulndb(VulndbCommand),
}

/// `ward scan vulndb …`
#[derive(Debug, Clone, clap::Subcommand)]
pub enum VulndbCommand {
    /// Read NVD CVE JSON 2.0 files (NIST's yearly/modified feeds, or CVE API 2.0 answers) and
    /// merge the CVEs of products ward identifies into the local list (STATE/vulnerabilities.json)
    #[command(after_help = "Examples:\n  \
        ward scan vulndb import nvdcve-2.0-2024.json nvdcve-2.0-modified.json\n  \
        ward scan vulndb import nvdcve-2.0-2025.json --kev known_exploited_vulnerabilities.json\n\n\
Products mapped from CPE names: OpenSSH, Apache httpd, nginx, Redis, Exim, ProFTPD, vsftpd; CVEs \
of other products are counted and skipped. The list starts from the existing local list (or the \
built-in one); an imported CVE replaces the same CVE for the same product. A version match stays \
firm, never confirmed: distributions back-port fixes without changing the version.")]
    Import(VulndbImportArgs),
}

/// `ward scan vulndb import`
#[derive(Debug, Clone, clap::Args)]
pub struct VulndbImportArgs {
    /// NVD CVE JSON 2.0 files
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Also keep this KEV catalog as the local copy (as `ward scan update-kev --file`)
    #[arg(long, value_name = "FILE")]
    pub kev: Option<PathBuf>,
    /// Directory of the findings history, where the local list is kept
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Start from the built-in list instead of the existing local one
    #[arg(long)]
    pub fresh: bool,
}

/// `ward scan update-kev`
#[derive(Debug, Clone, clap::Args)]
pub struct UpdateKevArgs {
    /// Download the catalog from this URL (CISA's JSON feed format)
    #[arg(long, value_name = "URL", default_value = CISA_KEV_URL, conflicts_with = "file")]
    pub url: String,
    /// Read the catalog from a file instead of downloading it
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Directory of the findings history, where the local copy is kept
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Replace the local copy even when the new catalog is older than it
    #[arg(long)]
    pub force: bool,
}

/// CISA's KEV feed.
pub const CISA_KEV_URL: &str = "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json";
/// How long a KEV download may take.
const KEV_DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// `ward scan TARGET...` options.
#[derive(Debug, Clone, clap::Args)]
pub struct ScanArgs {
    /// IPv4 or IPv6 addresses, CIDR networks (192.0.2.0/24) or hostnames
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Ports: default (nmap's top 1000 plus every port a ward check exists for: Redis, MongoDB,
    /// memcached, WinRM, Docker, appliance admin ports…), top1000, checks, all, a list such as
    /// 22,80,443,8000-8100, or a mix: top1000,6379,27017
    #[arg(long, default_value = "default")]
    pub ports: String,
    /// Write the full scan result (hosts, services, findings) as JSON to FILE
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also write the weekly report (HTML, PDF, CSV, JSON) to DIR after the scan
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Allow more than 65,536 addresses
    #[arg(long)]
    pub allow_large: bool,
    /// Jurisdiction the targets belong to (kept in the history and the report)
    #[arg(long, value_name = "NAME")]
    pub jurisdiction: Option<String>,
    /// Mail domain to check (SPF, DMARC, MX STARTTLS); repeat for several
    #[arg(long = "domain", value_name = "DOMAIN")]
    pub domains: Vec<String>,
    /// DNS server to use instead of the system resolver, e.g. 127.0.0.1:5353
    #[arg(long, value_name = "ADDR:PORT")]
    pub dns: Option<SocketAddr>,
    /// Directory of the findings history
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Do not record this scan in the history
    #[arg(long)]
    pub no_history: bool,
    /// Do not try default passwords
    #[arg(long)]
    pub no_credentials: bool,
    /// Do not send the SNMP probe over UDP
    #[arg(long)]
    pub no_udp: bool,
    /// Extra trusted CA certificates (PEM), e.g. the office's private CA
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Vulnerability list (ward's JSON format) instead of the built-in one
    #[arg(long, value_name = "FILE")]
    pub vulns: Option<PathBuf>,
    /// CISA KEV catalog JSON (known_exploited_vulnerabilities.json) to use instead of the newer
    /// of the built-in copy and the local one `ward scan update-kev` keeps
    #[arg(long, value_name = "FILE", env = "WARD_KEV")]
    pub kev: Option<PathBuf>,
    /// Connects in flight across all hosts
    #[arg(long, default_value_t = 2048)]
    pub concurrency: usize,
    /// Connects in flight to one host
    #[arg(long, default_value_t = 1024)]
    pub host_concurrency: usize,
    /// Connect attempts per second across all hosts (0: unlimited)
    #[arg(long, default_value_t = 0)]
    pub max_rate: u32,
    /// Connect attempts per second to one host (0: unlimited)
    #[arg(long, default_value_t = 0)]
    pub host_rate: u32,
    /// Initial (and largest) connect timeout in milliseconds
    #[arg(long, default_value_t = 1500)]
    pub timeout_ms: u64,
    /// SMTP port of mail servers (25; for tests)
    #[arg(long, default_value_t = 25, hide = true)]
    pub smtp_port: u16,
    /// No progress output
    #[arg(long, short)]
    pub quiet: bool,
    /// Scan what the hub has registered for --jurisdiction and upload the findings there.
    /// `ward scan worker --hub URL` takes scan jobs (due jurisdictions) from the hub instead.
    #[arg(long, value_name = "URL")]
    pub hub: Option<String>,
    /// Hub session token (from POST /api/v1/login)
    #[arg(long, value_name = "TOKEN", env = "WARD_HUB_TOKEN", hide_env_values = true)]
    pub hub_token: Option<String>,
    /// CA certificate (PEM) of a hub whose certificate is not from a public authority
    #[arg(long, value_name = "FILE")]
    pub hub_ca: Option<PathBuf>,
    /// Worker: name shown in the hub's job leases (default: host name and process id)
    #[arg(long, value_name = "NAME")]
    pub worker_name: Option<String>,
    /// Worker: stop when no scan job is due instead of waiting for the next one
    #[arg(long)]
    pub exit_when_idle: bool,
}

/// How long an idle worker waits before asking the hub again.
const WORKER_IDLE_WAIT: Duration = Duration::from_secs(60);

/// `ward report ...`
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ReportCommand {
    /// The weekly report: HTML, PDF, findings.csv, findings.json and SVG charts
    Weekly {
        /// Jurisdiction to report on (all in the history when omitted)
        #[arg(long, value_name = "NAME")]
        jurisdiction: Option<String>,
        /// Output directory
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Directory of the findings history
        #[arg(long, value_name = "DIR")]
        state: Option<PathBuf>,
        /// Build the report from the hub's results for --jurisdiction (and put it on the hub's dashboard)
        #[arg(long, value_name = "URL")]
        hub: Option<String>,
        /// Hub session token (from POST /api/v1/login)
        #[arg(long, value_name = "TOKEN", env = "WARD_HUB_TOKEN", hide_env_values = true)]
        hub_token: Option<String>,
        /// CA certificate (PEM) of the hub
        #[arg(long, value_name = "FILE")]
        hub_ca: Option<PathBuf>,
    },
    /// Mark a finding as a false positive until a date (key from findings.json)
    FalsePositive {
        /// The finding's key
        #[arg(long)]
        key: String,
        /// Last day it stays hidden (YYYY-MM-DD)
        #[arg(long, value_name = "YYYY-MM-DD")]
        until: NaiveDate,
        /// Why it is not a real weakness
        #[arg(long)]
        reason: String,
        #[arg(long, value_name = "DIR")]
        state: Option<PathBuf>,
    },
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}

/// Build scan options from the command line.
pub fn options_from_args(args: &ScanArgs) -> anyhow::Result<ScanOptions> {
    let ports = crate::ports::parse_ports(&args.ports)?;
    let state = args.state.clone().unwrap_or_else(Store::default_dir);
    let local_list = state.join(crate::vulns::LOCAL_LIST_FILE);
    let list = match &args.vulns {
        Some(path) => VulnDb::load_list(path)?,
        // What `ward scan vulndb import` made, else the built-in list.
        None if local_list.exists() => VulnDb::load_list(&local_list)?,
        None => VulnDb::builtin_list(),
    };
    let vulns = list.with_best_kev(args.kev.as_deref(), Some(&state))?;
    let extra_roots = match &args.ca_file {
        Some(path) => {
            let pem = std::fs::read(path).with_context(|| format!("cannot read --ca-file {}", path.display()))?;
            let roots = crate::tls::TlsClient::read_pem_bundle(&pem);
            anyhow::ensure!(!roots.is_empty(), "--ca-file {} holds no PEM certificate", path.display());
            roots
        }
        None => Vec::new(),
    };
    let rate = |r: u32| (r > 0).then_some(r);
    Ok(ScanOptions {
        targets: args.targets.clone(),
        ports,
        limits: ScanLimits {
            global_concurrency: args.concurrency.max(1),
            host_concurrency: args.host_concurrency.max(1),
            connect_timeout: Duration::from_millis(args.timeout_ms.max(1)),
            global_rate: rate(args.max_rate),
            host_rate: rate(args.host_rate),
        },
        timeouts: ProbeTimeouts::default(),
        dns: args.dns,
        allow_large: args.allow_large,
        domains: args.domains.clone(),
        smtp_port: args.smtp_port,
        extra_roots,
        vulns,
        credentials: !args.no_credentials,
        snmp: !args.no_udp,
        snmp_port: 161,
        probe_concurrency: 128,
        jurisdiction: args.jurisdiction.clone(),
    })
}

/// Run one scan with the progress display on a terminal.
async fn scan_with_progress(options: &ScanOptions, quiet: bool) -> Result<ScanResult, engine::ScanError> {
    let interactive = !quiet && std::io::stderr().is_terminal();
    let current: Arc<Mutex<Option<Arc<ScanProgress>>>> = Arc::new(Mutex::new(None));
    let drawer = {
        let current = current.clone();
        tokio::spawn(async move {
            if !interactive {
                return;
            }
            loop {
                tokio::time::sleep(PROGRESS_INTERVAL).await;
                let progress = current.lock().ok().and_then(|c| c.clone());
                if let Some(p) = progress {
                    let (done, total, open) = (p.done.load(Ordering::Relaxed), p.total.load(Ordering::Relaxed), p.open.load(Ordering::Relaxed));
                    eprint!("\r\x1b[2Kports: {done}/{total} probed, {open} open");
                    let _ = std::io::stderr().flush();
                }
            }
        })
    };
    let on_phase = |phase: Phase| {
        if quiet {
            return;
        }
        match phase {
            Phase::Resolved { addresses } => eprintln!("scan: {addresses} addresses"),
            Phase::PortScan { progress } => {
                if let Ok(mut c) = current.lock() {
                    *c = Some(progress);
                }
            }
            Phase::Probing { ports } => {
                if let Ok(mut c) = current.lock() {
                    *c = None;
                }
                eprintln!("{}services: identifying {ports} open ports", if interactive { "\r\x1b[2K" } else { "" });
            }
            Phase::Probed { done, total } if interactive => eprint!("\r\x1b[2Kservices: {done}/{total} identified and checked"),
            Phase::Probed { .. } => {}
            Phase::Email { domain } => eprintln!("{}email: checking {domain}", if interactive { "\r\x1b[2K" } else { "" }),
            Phase::Done => {
                if interactive {
                    eprintln!();
                }
            }
        }
    };
    let result = engine::run(options, &on_phase).await;
    drawer.abort();
    result
}

/// Print the findings (stdout) and a summary line (stderr); returns the count of high or worse.
fn print_result(result: &ScanResult, quiet: bool) -> usize {
    let high = result.findings.iter().filter(|f| f.severity >= Severity::High).count();
    if !quiet {
        for f in &result.findings {
            let place = match f.port {
                Some(p) => format!("{}:{}/{}", f.asset, p, f.protocol),
                None => f.asset.clone(),
            };
            println!("{:8} {:28} {}{}", f.severity.as_str(), place, f.name, f.cve.as_ref().map(|c| format!(" ({c})")).unwrap_or_default());
        }
        let services: usize = result.hosts.iter().map(|h| h.services.len()).sum();
        eprintln!(
            "done: {} hosts with open ports, {services} services, {} findings ({high} high or critical) in {:.2} s",
            result.hosts.len(),
            result.findings.len(),
            (result.finished - result.started).num_milliseconds() as f64 / 1000.0
        );
    }
    high
}

fn write_json(path: &std::path::Path, result: &ScanResult) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(result)?;
    std::fs::write(path, text).with_context(|| format!("cannot write --json {}", path.display()))
}

/// `ward scan …`: a subcommand, or a scan.
pub fn run(cli: ScanCli) -> anyhow::Result<i32> {
    match cli.command {
        Some(ScanSubcommand::UpdateKev(args)) => update_kev(&args),
        Some(ScanSubcommand::Vulndb(VulndbCommand::Import(args))) => vulndb_import(&args),
        None => run_scan(cli.args),
    }
}

/// `ward scan vulndb import`: NVD files into the local list (written to a temporary file and
/// renamed, so a failed import leaves the old list).
pub fn vulndb_import(args: &VulndbImportArgs) -> anyhow::Result<i32> {
    let state = args.state.clone().unwrap_or_else(Store::default_dir);
    std::fs::create_dir_all(&state).with_context(|| format!("cannot create {}", state.display()))?;
    let local = state.join(crate::vulns::LOCAL_LIST_FILE);
    let base = if !args.fresh && local.exists() { VulnDb::load_list(&local)? } else { VulnDb::builtin_list() };
    let before = base.entries().len();
    let mut imported = Vec::new();
    for file in &args.files {
        let meta = std::fs::metadata(file).with_context(|| format!("cannot read {}", file.display()))?;
        if meta.len() as usize > crate::nvd::MAX_NVD_BYTES {
            anyhow::bail!(crate::nvd::NvdError::TooLarge { path: file.display().to_string(), max: crate::nvd::MAX_NVD_BYTES >> 20 });
        }
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
        let (entries, stats) = crate::nvd::import(&text, &file.display().to_string())?;
        eprintln!(
            "vulndb: {}: {} CVEs, {} entries for products ward identifies, {} CVEs of other products skipped, {} rejected{}",
            file.display(),
            stats.cves,
            stats.entries,
            stats.unmapped,
            stats.rejected,
            if stats.bad_criteria > 0 { format!(", {} unreadable CPE criteria", stats.bad_criteria) } else { String::new() }
        );
        imported.extend(entries);
    }
    let merged = crate::nvd::merge(base.entries().to_vec(), imported);
    let text = VulnDb::list_json(&merged, "ward's vulnerability list, imported by `ward scan vulndb import` from NVD CVE JSON 2.0 over the built-in list. See docs/scan.md.");
    // Check it reads back before it replaces anything.
    VulnDb::from_list_json(&text, "the imported list")?;
    let tmp = local.with_extension("json.tmp");
    std::fs::write(&tmp, &text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &local).with_context(|| format!("cannot replace {}", local.display()))?;
    println!("vulndb: {} entries in {} ({} before); every scan with --state {} uses it", merged.len(), local.display(), before, state.display());
    if let Some(kev) = &args.kev {
        return update_kev(&UpdateKevArgs { url: CISA_KEV_URL.into(), file: Some(kev.clone()), state: Some(state), force: false });
    }
    Ok(0)
}

/// `ward scan update-kev`: fetches or reads a catalog, checks it, and keeps it as the local
/// copy (written to a temporary file and renamed, so a failed update leaves the old copy).
pub fn update_kev(args: &UpdateKevArgs) -> anyhow::Result<i32> {
    use crate::vulns::{kev_info_of, read_kev_text, KevCatalogInfo, BUILTIN_KEV, LOCAL_KEV_FILE, MAX_KEV_BYTES};
    let (text, source) = match &args.file {
        Some(path) => (read_kev_text(path)?, path.display().to_string()),
        None => {
            eprintln!("update-kev: downloading {}", args.url);
            (runtime()?.block_on(download_kev(&args.url, MAX_KEV_BYTES))?, args.url.clone())
        }
    };
    let new = kev_info_of(&text, &source)?;
    let dir = args.state.clone().unwrap_or_else(Store::default_dir);
    let local = dir.join(LOCAL_KEV_FILE);
    let current: Option<KevCatalogInfo> = std::fs::read_to_string(&local).ok().and_then(|t| kev_info_of(&t, "local copy").ok());
    let builtin = kev_info_of(BUILTIN_KEV, "built-in")?;
    if let Some(cur) = &current {
        if !args.force && cur.newer_than(&new) {
            anyhow::bail!(
                "the catalog from {source} ({}, released {}) is older than the local copy ({}, released {}); nothing changed (--force replaces it anyway)",
                new.version, new.released, cur.version, cur.released
            );
        }
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = local.with_extension("json.tmp");
    std::fs::write(&tmp, &text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &local).with_context(|| format!("cannot replace {}", local.display()))?;
    let was = current.map_or_else(|| "no local copy".to_string(), |c| format!("was {} ({} entries)", c.version, c.entries));
    println!("KEV catalog {} (released {}, {} entries) saved to {}; {was}", new.version, new.released, new.entries, local.display());
    if !new.newer_than(&builtin) {
        println!("note: the copy built into ward ({}) is as new or newer; scans keep using it", builtin.version);
    }
    Ok(0)
}

/// Downloads a KEV catalog: http(s) only, at most `max` bytes, within [`KEV_DOWNLOAD_TIMEOUT`].
async fn download_kev(url: &str, max: usize) -> anyhow::Result<String> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("--url {url:?} is not a URL"))?;
    anyhow::ensure!(matches!(parsed.scheme(), "https" | "http"), "--url {url}: only http(s) URLs are fetched");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(KEV_DOWNLOAD_TIMEOUT)
        .redirect(reqwest::redirect::Policy::limited(5))
        .user_agent(concat!("ward-scan/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot build the HTTP client")?;
    let mut resp = client.get(parsed).send().await.with_context(|| format!("cannot fetch {url}"))?;
    anyhow::ensure!(resp.status().is_success(), "{url} answered {}", resp.status());
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.with_context(|| format!("reading {url} failed"))? {
        anyhow::ensure!(body.len() + chunk.len() <= max, "{url} sent more than {max} bytes: not a KEV catalog");
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).with_context(|| format!("{url} did not send UTF-8 text"))
}

/// `ward scan`: returns 1 when a finding of high severity or worse is open, else 0.
pub fn run_scan(args: ScanArgs) -> anyhow::Result<i32> {
    if args.hub.is_some() {
        return run_hub_scan(args);
    }
    let options = options_from_args(&args)?;
    let rt = runtime()?;
    let result = rt.block_on(scan_with_progress(&options, args.quiet))?;
    let high = print_result(&result, args.quiet);
    if let Some(path) = &args.json {
        write_json(path, &result)?;
    }
    if !args.no_history || args.report.is_some() {
        let store = Store::open(&args.state.clone().unwrap_or_else(Store::default_dir))?;
        let delta = store.record(&result)?;
        if !args.quiet {
            eprintln!("history: {} new, {} still open, {} fixed, {} re-detected ({})", delta.new.len(), delta.still_open.len(), delta.fixed.len(), delta.redetected.len(), store.dir().display());
        }
        if let Some(out) = &args.report {
            let history = store.load()?;
            let report = crate::report::build_weekly(&history, args.jurisdiction.as_deref(), Utc::now(), store.dir())?;
            let written = crate::report::write_weekly(&report, out)?;
            if !args.quiet {
                eprintln!("report: {} and {}", written.html.display(), written.pdf.display());
            }
        }
    }
    Ok(if high > 0 { EXIT_FINDINGS } else { 0 })
}

/// `ward scan --hub URL --jurisdiction NAME [TARGET...]` and `ward scan worker --hub URL`.
fn run_hub_scan(args: ScanArgs) -> anyhow::Result<i32> {
    let url = args.hub.clone().unwrap_or_default();
    let client = HubClient::new(&url, args.hub_token.clone(), args.hub_ca.as_deref())?;
    let worker = args.targets.len() == 1 && args.targets[0] == "worker";
    let rt = runtime()?;
    rt.block_on(async {
        if worker {
            let name = args.worker_name.clone().unwrap_or_else(|| format!("{}:{}", std::env::var("HOSTNAME").unwrap_or_else(|_| "ward".into()), std::process::id()));
            let mut worst = 0;
            loop {
                match client.claim(&name).await? {
                    Some(job) => {
                        if !args.quiet {
                            eprintln!("worker {name}: scanning {} ({} targets, {} mail domains)", job.jurisdiction, job.targets.len(), job.domains.len());
                        }
                        worst = worst.max(hub_scan_one(&args, &client, job).await?);
                    }
                    None if args.exit_when_idle => {
                        if !args.quiet {
                            eprintln!("worker {name}: no scan job is due; exiting (--exit-when-idle)");
                        }
                        return Ok(worst);
                    }
                    None => tokio::time::sleep(WORKER_IDLE_WAIT).await,
                }
            }
        }
        let Some(jurisdiction) = args.jurisdiction.as_deref() else {
            anyhow::bail!("--hub needs --jurisdiction NAME (or `ward scan worker --hub URL` to take scan jobs)");
        };
        let job = client.targets(jurisdiction, &args.targets).await?;
        hub_scan_one(&args, &client, job).await
    })
}

/// Scan what the hub handed out, upload the result, rebuild and upload the weekly report.
async fn hub_scan_one(args: &ScanArgs, client: &HubClient, job: HubTargets) -> anyhow::Result<i32> {
    let mut options = options_from_args(args)?;
    options.targets = job.targets.clone();
    options.domains = job.domains.clone();
    options.jurisdiction = Some(job.jurisdiction.clone());
    let result = scan_with_progress(&options, args.quiet).await?;
    let high = print_result(&result, args.quiet);
    if let Some(path) = &args.json {
        write_json(path, &result)?;
    }
    let receipt = client.upload(&job.jurisdiction, &result).await?;
    let results = client.results(&job.jurisdiction).await?;
    let history = crate::hub::history_from(&results);
    let report = crate::report::build_weekly(&history, Some(&job.jurisdiction), Utc::now(), std::path::Path::new(&client_label(args)))?;
    let (html, pdf) = crate::report::render_weekly(&report)?;
    client.put_report(&job.jurisdiction, &html, &pdf).await?;
    if let Some(out) = &args.report {
        crate::report::write_weekly(&report, out)?;
    }
    if !args.quiet {
        eprintln!(
            "hub: uploaded result {} for {}; {} scans on record; weekly report at {}/scan/{}/report.html",
            receipt.get("id").and_then(|v| v.as_i64()).unwrap_or_default(),
            job.jurisdiction,
            results.len(),
            client_label(args),
            job.jurisdiction_id
        );
    }
    Ok(if high > 0 { EXIT_FINDINGS } else { 0 })
}

fn client_label(args: &ScanArgs) -> String {
    args.hub.clone().unwrap_or_default().trim_end_matches('/').to_string()
}

/// `ward report ...`
pub fn run_report(cmd: ReportCommand) -> anyhow::Result<i32> {
    match cmd {
        ReportCommand::Weekly { jurisdiction, out, hub: Some(url), hub_token, hub_ca, .. } => {
            let Some(jurisdiction) = jurisdiction else { anyhow::bail!("--hub needs --jurisdiction NAME") };
            let client = HubClient::new(&url, hub_token, hub_ca.as_deref())?;
            let rt = runtime()?;
            let report = rt.block_on(async {
                let results = client.results(&jurisdiction).await?;
                let history = crate::hub::history_from(&results);
                let report = crate::report::build_weekly(&history, Some(&jurisdiction), Utc::now(), std::path::Path::new(&url))?;
                let (html, pdf) = crate::report::render_weekly(&report)?;
                client.put_report(&jurisdiction, &html, &pdf).await?;
                anyhow::Ok(report)
            })?;
            let written = crate::report::write_weekly(&report, &out)?;
            println!("{}", written.html.display());
            println!("{}", written.pdf.display());
            println!("{}", written.csv.display());
            println!("{}", written.json.display());
            Ok(0)
        }
        ReportCommand::Weekly { jurisdiction, out, state, .. } => {
            let store = Store::open(&state.unwrap_or_else(Store::default_dir))?;
            let history = store.load()?;
            let report = crate::report::build_weekly(&history, jurisdiction.as_deref(), Utc::now(), store.dir())?;
            let written = crate::report::write_weekly(&report, &out)?;
            println!("{}", written.html.display());
            println!("{}", written.pdf.display());
            println!("{}", written.csv.display());
            println!("{}", written.json.display());
            Ok(0)
        }
        ReportCommand::FalsePositive { key, until, reason, state } => {
            let store = Store::open(&state.unwrap_or_else(Store::default_dir))?;
            let mut history = store.load()?;
            history.mark_false_positive(&key, until, &reason, Utc::now())?;
            store.save(&history)?;
            println!("{key} hidden until {until}");
            Ok(0)
        }
    }
}
