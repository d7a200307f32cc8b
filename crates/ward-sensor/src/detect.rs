//! Detection in the sensor: rules, indicator lists and the scan detector of [`ward_detect`],
//! fed from each worker's flows, streams and app-layer transactions, with live reload.
//!
//! * [`DetectConfig`] names the files and thresholds; [`Engines::load`] builds the rule set and
//!   indicator set once and shares them behind [`SharedRuleSet`] / [`SharedIndicatorSet`].
//! * Each worker keeps a [`WorkerDetect`]: it takes the current sets once per batch (an `Arc`
//!   clone, no lock) and owns its scratch space, so inspection never waits on another thread.
//! * Reload: SIGHUP ([`request_reload`], called by [`crate::signals`]) or a changed file (polled
//!   by mtime every [`DetectConfig::watch_interval`]) makes the reloader thread build new sets
//!   beside the old ones and swap them atomically; workers pick them up at their next batch.
//!   Packets keep flowing during the build.
//! * A reload is checked before its rules are swapped in ([`Engines::reload_with`]): it is
//!   refused, and the running rules stay, when a rules file cannot be read, when a rule did not
//!   parse completely (a missing `;` that swallowed the next option) and was not already broken
//!   in the running set, or when the new set has lost more than [`DetectConfig::max_rule_loss`]
//!   of the running rules (an emptied or half-written file). A forced reload
//!   ([`request_forced_reload`], SIGUSR1) skips the loss check only. Every reload outcome is
//!   logged (a refusal at ERROR), counted ([`Engines::failed_reload_count`]) and written as an
//!   EVE `engine` record (module [`RELOAD_MODULE`]), which the hub relay always forwards: the
//!   hub shows the newest refusal as the sensor's health.
//! * The scan detector is shared by the workers behind a mutex: it is fed once per ended flow
//!   (not per packet), and a sweep's flows are spread over workers by the address-pair hash, so a
//!   per-worker detector would undercount horizontal and block scans.
//!
//! Alerts are written as EVE `alert` records through the same [`EveBuffer`] as every other record
//! (so any sink that takes EVE lines — file, stdout, a spool — gets them).
//!
//! A pcre search stopped by the PCRE limits ([`DetectConfig::pcre_limits`]) makes its rule not
//! match; the worker counts it (the run summary's `pcre limit hits`) and reports the rule as an
//! EVE `anomaly` (type `detect`, event `pcre_limit_exceeded`, `code` = the sid) with a warning,
//! at most once per rule per [`PCRE_LIMIT_REPORT_INTERVAL_SECS`] of packet time per worker.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use ward_detect::scan::ScanAlert;
use ward_detect::{
    Classification, DetectScratch, DnsInput, HttpInput, IndicatorHit, IndicatorSet, LoadReport, Match, PacketInput,
    PcreLimits, RuleSet, ScanConfig, ScanDetector, ScanEvent, ScanOutcome, SharedIndicatorSet, SharedRuleSet, TlsInput,
    Vars,
};
use ward_model::eve::{self, Alert, AlertFlow, Anomaly, EngineLog, Event, EventBody};

use crate::config::AlertOutput;
use crate::eve_out::{EveBuffer, EveSink};
use ward_model::Timestamp;
use ward_proto::dns::DnsMessage;
use ward_proto::http::HttpTransaction;
use ward_proto::tls::TlsInfo;

/// Bytes of a direction's already-inspected stream kept and inspected again with the next
/// segment. 0: each stream byte is inspected once, with the segment that made it available
/// (as Suricata counts alerts: one per matching packet). Raising it finds patterns split across
/// segments but alerts again on bytes already inspected.
pub const STREAM_OVERLAP: usize = 0;
/// Largest stream window inspected at once (a burst of reassembled data is inspected in its
/// last part only beyond this; Suricata's raw stream chunks are of this order).
pub const MAX_STREAM_WINDOW: usize = 64 * 1024;

/// Default share of the running rules a reload may lose before it is refused (10 %): an ET Open
/// update removes well under 1 % of its rules, while an emptied, truncated or half-copied file
/// loses most of them.
pub const DEFAULT_MAX_RULE_LOSS: f64 = 0.10;
/// EVE `engine.module` of the records a reload writes (Suricata names its engine log modules
/// the same way).
pub const RELOAD_MODULE: &str = "detect-reload";
/// Rules listed by name in a refusal message; the rest are counted.
const MAX_LISTED_BROKEN: usize = 3;

/// What to detect with.
#[derive(Debug, Clone)]
pub struct DetectConfig {
    /// Suricata rule files. `classification.config` / `reference.config` beside the first one
    /// are used when present.
    pub rule_files: Vec<PathBuf>,
    /// `VAR=VALUE` rule variable assignments (HOME_NET, EXTERNAL_NET, HTTP_PORTS, ...).
    pub vars: Vec<String>,
    /// Indicator lists (one value a line, or CSV id,type,value,severity,description,expiry).
    pub indicator_files: Vec<PathBuf>,
    /// The scan detector's thresholds; `None` turns it off.
    pub scan: Option<ScanConfig>,
    /// Poll the rule and indicator files' modification times this often and reload on change;
    /// `None`: reload on SIGHUP only.
    pub watch_interval: Option<Duration>,
    /// The work one pcre search may do (`--pcre-match-limit`, `--pcre-depth-limit`); a search
    /// that reaches a limit does not match and is reported ([`PCRE_LIMIT_REPORT_INTERVAL_SECS`]).
    pub pcre_limits: PcreLimits,
    /// Largest share (0 to 1) of the running rules a reload may lose; a reload that would lose
    /// more keeps the running rules (see the module notes). 1 turns the check off.
    pub max_rule_loss: f64,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            rule_files: Vec::new(),
            vars: Vec::new(),
            indicator_files: Vec::new(),
            scan: None,
            watch_interval: None,
            pcre_limits: PcreLimits::default(),
            max_rule_loss: DEFAULT_MAX_RULE_LOSS,
        }
    }
}

/// What [`Engines::load`] (or a reload) loaded.
#[derive(Debug, Clone, Default)]
pub struct LoadSummary {
    pub rules: LoadReport,
    pub indicators: usize,
    pub indicators_expired: usize,
    pub indicator_errors: Vec<String>,
    pub indicator_seconds: f64,
}

impl LoadSummary {
    /// One line for the operator.
    pub fn text(&self) -> String {
        let r = &self.rules;
        let mut s = format!(
            "rules: {} of {} loaded ({:.2}%), {} skipped, in {:.2} s",
            r.loaded,
            r.total,
            r.loaded_percent(),
            r.skipped.len(),
            r.duration.as_secs_f64()
        );
        if !r.skipped.is_empty() {
            let kw: Vec<String> = r.skipped_by_keyword().iter().take(5).map(|(k, n)| format!("{k} {n}")).collect();
            s.push_str(&format!(" (skipped by keyword: {}; see `ward rules check`)", kw.join(", ")));
        }
        s.push_str(&format!(
            "; indicators: {} loaded, {} expired, {} bad lines, in {:.2} s",
            self.indicators,
            self.indicators_expired,
            self.indicator_errors.len(),
            self.indicator_seconds
        ));
        s
    }
}

/// Why detection could not start.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("--set {0}")]
    Var(String),
    #[error("{0}")]
    RulesFile(String),
    #[error("{0}")]
    IndicatorFile(String),
}

/// The shared detection state of a sensor: current rule and indicator sets and how to rebuild
/// them. Cheap to clone (handles only).
#[derive(Clone)]
pub struct Engines {
    pub config: Arc<DetectConfig>,
    pub rules: Arc<SharedRuleSet>,
    pub indicators: Arc<SharedIndicatorSet>,
    reloads: Arc<AtomicU64>,
    failed_reloads: Arc<AtomicU64>,
    last: Arc<Mutex<LoadSummary>>,
    /// Rules that did not parse completely in the running set's load (they were skipped then):
    /// a reload is refused only for rules broken anew.
    broken: Arc<Mutex<HashSet<BrokenRule>>>,
    /// When the running rules were loaded (start or the last accepted reload).
    loaded_at: Arc<Mutex<Timestamp>>,
    last_refusal: Arc<Mutex<Option<Refusal>>>,
    /// The reload request counters up to which requests were handled, from the start of the
    /// load: a request made while the files load, or before a run starts its reloader, is not
    /// lost.
    requests_seen: Arc<AtomicU64>,
    forced_requests_seen: Arc<AtomicU64>,
}

/// A rule that did not parse completely, as a refusal check tells one from another: its file,
/// sid and what was wrong (line numbers move when lines are added above it).
type BrokenRule = (PathBuf, Option<u64>, String);

fn broken_rules(report: &LoadReport) -> HashSet<BrokenRule> {
    report.skipped.iter().filter(|s| s.is_syntax_error()).map(|s| (s.file.clone(), s.sid, s.message.clone())).collect()
}

/// A reload that kept the running rules: when, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub at: Timestamp,
    pub reason: String,
}

/// What a reload did with the rules.
#[derive(Debug, Clone, PartialEq)]
pub enum ReloadOutcome {
    /// The new rules run.
    Swapped,
    /// The running rules stay.
    Refused(Refusal),
}

impl ReloadOutcome {
    /// The EVE `engine` record that tells the hub and the SIEM what happened.
    pub fn to_eve(&self, summary: &LoadSummary) -> Event {
        let (at, log_level, message) = match self {
            ReloadOutcome::Swapped => (
                Timestamp::now(),
                "Info",
                format!("rules reloaded: {} of {} rules loaded, {} skipped", summary.rules.loaded, summary.rules.total, summary.rules.skipped.len()),
            ),
            ReloadOutcome::Refused(r) => (r.at, "Error", format!("rules reload refused: {}", r.reason)),
        };
        Event::new(
            at,
            EventBody::Engine { log_level: log_level.into(), engine: EngineLog { module: RELOAD_MODULE.into(), message } },
        )
    }
}

impl std::fmt::Debug for Engines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engines").field("config", &self.config).field("rules", &self.rules.load().len()).finish()
    }
}

fn build_vars(assignments: &[String]) -> Result<Vars, DetectError> {
    let mut vars = Vars::default();
    for a in assignments {
        vars.set_assignment(a).map_err(|e| DetectError::Var(format!("{a}: {e}")))?;
    }
    Ok(vars)
}

fn load_sets(cfg: &DetectConfig, vars: &Vars) -> (RuleSet, IndicatorSet, LoadSummary) {
    let cls = cfg.rule_files.first().map(|p| Classification::beside(p)).unwrap_or_default();
    let (rules, report) = ward_detect::load(&cfg.rule_files, vars, &cls);
    let started = Instant::now();
    let indicators = IndicatorSet::load(&cfg.indicator_files, Timestamp::now());
    let summary = LoadSummary {
        rules: report,
        indicators: indicators.len(),
        indicators_expired: indicators.expired,
        indicator_errors: indicators.errors.iter().map(|e| e.to_string()).collect(),
        indicator_seconds: started.elapsed().as_secs_f64(),
    };
    (rules, indicators, summary)
}

fn file_errors(s: &LoadSummary) -> (Option<String>, Option<String>) {
    let rules = (!s.rules.file_errors.is_empty()).then(|| s.rules.file_errors.join("; "));
    let ind: Vec<&String> = s.indicator_errors.iter().filter(|e| e.starts_with("cannot read")).collect();
    let ind = (!ind.is_empty()).then(|| ind.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("; "));
    (rules, ind)
}

impl Engines {
    /// Loads the rules and indicators. An unreadable file or a bad `--set` is an error; bad
    /// rules and bad indicator lines are skipped and reported in the summary.
    pub fn load(cfg: DetectConfig) -> Result<(Engines, LoadSummary), DetectError> {
        let requests_seen = Arc::new(AtomicU64::new(RELOAD_REQUESTS.load(Ordering::SeqCst)));
        let forced_requests_seen = Arc::new(AtomicU64::new(FORCED_RELOAD_REQUESTS.load(Ordering::SeqCst)));
        let vars = build_vars(&cfg.vars)?;
        let (rules, indicators, summary) = load_sets(&cfg, &vars);
        match file_errors(&summary) {
            (Some(e), _) => return Err(DetectError::RulesFile(e)),
            (_, Some(e)) => return Err(DetectError::IndicatorFile(e)),
            _ => {}
        }
        let engines = Engines {
            config: Arc::new(cfg),
            rules: Arc::new(SharedRuleSet::new(rules)),
            indicators: Arc::new(SharedIndicatorSet::new(indicators)),
            reloads: Arc::default(),
            failed_reloads: Arc::default(),
            last: Arc::new(Mutex::new(summary.clone())),
            broken: Arc::new(Mutex::new(broken_rules(&summary.rules))),
            loaded_at: Arc::new(Mutex::new(Timestamp::now())),
            last_refusal: Arc::default(),
            requests_seen,
            forced_requests_seen,
        };
        Ok((engines, summary))
    }

    /// Rebuilds both sets from the files beside the current ones and swaps them in, unless the
    /// rules fail the checks of the module notes (then the running rules stay; indicators are
    /// swapped whenever their files could be read).
    pub fn reload(&self) -> LoadSummary {
        self.reload_with(false).0
    }

    /// As [`Engines::reload`]; `force` accepts a new rule set however many rules it lost (an
    /// intentional big change), and says what happened to the rules.
    pub fn reload_with(&self, force: bool) -> (LoadSummary, ReloadOutcome) {
        let vars = match build_vars(&self.config.vars) {
            Ok(v) => v,
            Err(e) => {
                let outcome = self.refuse(e.to_string());
                return (LoadSummary::default(), outcome);
            }
        };
        let (rules, indicators, summary) = load_sets(&self.config, &vars);
        let (rule_err, ind_err) = file_errors(&summary);
        match &ind_err {
            Some(e) => tracing::error!(error = %e, "reload: keeping the current indicators"),
            None => self.indicators.store(indicators),
        }
        let running = self.rules.load().len();
        let refusal = match rule_err {
            Some(e) => Some(e),
            None => self.check_rules(&summary.rules, running, force),
        };
        self.reloads.fetch_add(1, Ordering::Relaxed);
        let outcome = match refusal {
            Some(reason) => self.refuse(reason),
            None => {
                self.rules.store(rules);
                if let Ok(mut last) = self.last.lock() {
                    *last = summary.clone();
                }
                if let Ok(mut broken) = self.broken.lock() {
                    *broken = broken_rules(&summary.rules);
                }
                if let Ok(mut at) = self.loaded_at.lock() {
                    *at = Timestamp::now();
                }
                tracing::warn!(forced = force, "reloaded: {}", summary.text());
                ReloadOutcome::Swapped
            }
        };
        (summary, outcome)
    }

    /// Why the rules of a reload must not replace the `running` ones, if they must not.
    fn check_rules(&self, report: &LoadReport, running: usize, force: bool) -> Option<String> {
        let known = self.broken.lock().map(|b| b.clone()).unwrap_or_default();
        let broken: Vec<&ward_detect::SkippedRule> = report
            .skipped
            .iter()
            .filter(|s| s.is_syntax_error() && !known.contains(&(s.file.clone(), s.sid, s.message.clone())))
            .collect();
        if !broken.is_empty() {
            let named: Vec<String> = broken
                .iter()
                .take(MAX_LISTED_BROKEN)
                .map(|s| format!("{}:{} sid {}: {}", s.file.display(), s.line, s.sid.map_or_else(|| "?".into(), |v| v.to_string()), s.message))
                .collect();
            let more = broken.len().saturating_sub(MAX_LISTED_BROKEN);
            return Some(format!(
                "{} did not parse completely ({}{}); fix them (`ward rules check` lists them)",
                if broken.len() == 1 { "1 rule".to_string() } else { format!("{} rules", broken.len()) },
                named.join("; "),
                if more > 0 { format!("; and {more} more") } else { String::new() }
            ));
        }
        let lost = running.saturating_sub(report.loaded);
        let max_loss = self.config.max_rule_loss.clamp(0.0, 1.0);
        if !force && lost as f64 > running as f64 * max_loss {
            return Some(format!(
                "the new rule set has {} rules, {lost} fewer than the {running} running ({:.1}% lost, more than the {:.1}% --reload-max-rule-loss allows); \
                 send SIGUSR1 to load it anyway",
                report.loaded,
                lost as f64 * 100.0 / running as f64,
                max_loss * 100.0
            ));
        }
        None
    }

    fn refuse(&self, reason: String) -> ReloadOutcome {
        tracing::error!(reason = %reason, rules = self.rules.load().len(), "rules reload refused: the running rules stay");
        self.failed_reloads.fetch_add(1, Ordering::Relaxed);
        let refusal = Refusal { at: Timestamp::now(), reason };
        if let Ok(mut last) = self.last_refusal.lock() {
            *last = Some(refusal.clone());
        }
        ReloadOutcome::Refused(refusal)
    }

    /// The newest refused reload, if any.
    pub fn last_refusal(&self) -> Option<Refusal> {
        self.last_refusal.lock().ok().and_then(|r| r.clone())
    }

    /// When the running rules were loaded (start, or the last accepted reload).
    pub fn loaded_at(&self) -> Timestamp {
        self.loaded_at.lock().map(|t| *t).unwrap_or(Timestamp::ZERO)
    }

    /// Completed reloads so far.
    pub fn reload_count(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// Reloads that kept the running rules (a file could not be read, broken rules, too many
    /// rules lost).
    pub fn failed_reload_count(&self) -> u64 {
        self.failed_reloads.load(Ordering::Relaxed)
    }

    /// The summary of the load the running rules came from (start or the last accepted reload).
    pub fn last_summary(&self) -> LoadSummary {
        self.last.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Every file whose change triggers a reload.
    fn watched_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = self.config.rule_files.clone();
        if let Some(dir) = self.config.rule_files.first().and_then(|p| p.parent()) {
            files.push(dir.join("classification.config"));
            files.push(dir.join("reference.config"));
        }
        files.extend(self.config.indicator_files.iter().cloned());
        files
    }
}

// --- reload triggers ------------------------------------------------------------------------

/// Reload requests (SIGHUP): a counter, so every reloader in the process (tests run several)
/// sees each.
static RELOAD_REQUESTS: AtomicU64 = AtomicU64::new(0);
/// Forced reload requests (SIGUSR1), counted the same way.
static FORCED_RELOAD_REQUESTS: AtomicU64 = AtomicU64::new(0);

/// Requests a reload, as SIGHUP does ([`crate::signals`] calls it; so may an operator API or a
/// test). Only bumps a counter that the reloader thread polls.
pub fn request_reload() {
    RELOAD_REQUESTS.fetch_add(1, Ordering::SeqCst);
}

/// Requests a reload that accepts however many rules the new set lost (SIGUSR1).
pub fn request_forced_reload() {
    FORCED_RELOAD_REQUESTS.fetch_add(1, Ordering::SeqCst);
}

fn mtimes(files: &[PathBuf]) -> Vec<Option<(SystemTime, u64)>> {
    files.iter().map(|p| std::fs::metadata(p).ok().and_then(|m| Some((m.modified().ok()?, m.len())))).collect()
}

/// Runs the reloader until `done` is set (then unpark the thread to end it at once): reloads on
/// a request ([`request_reload`], [`request_forced_reload`]) and, with a watch interval, when a
/// watched file's mtime or size changes. Each outcome is written to `eve` as an `engine` record.
pub fn spawn_reloader(engines: Engines, done: Arc<AtomicBool>, eve: Option<EveSink>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("ward-reload".into()).spawn(move || {
        let files = engines.watched_files();
        let mut seen = mtimes(&files);
        let mut last_poll = Instant::now();
        while !done.load(Ordering::Relaxed) {
            std::thread::park_timeout(Duration::from_millis(100));
            let now_requests = RELOAD_REQUESTS.load(Ordering::SeqCst);
            let now_forced = FORCED_RELOAD_REQUESTS.load(Ordering::SeqCst);
            let force = engines.forced_requests_seen.swap(now_forced, Ordering::SeqCst) != now_forced;
            let mut reload = engines.requests_seen.swap(now_requests, Ordering::SeqCst) != now_requests || force;
            if let Some(every) = engines.config.watch_interval {
                if last_poll.elapsed() >= every {
                    last_poll = Instant::now();
                    let now = mtimes(&files);
                    if now != seen {
                        seen = now;
                        reload = true;
                    }
                }
            }
            if reload {
                let (summary, outcome) = engines.reload_with(force);
                if let Some(sink) = &eve {
                    let mut out = EveBuffer::new(sink.clone());
                    out.write(&outcome.to_eve(&summary));
                    out.flush();
                }
                seen = mtimes(&files);
            }
        }
    })
}

// --- scan detector shared by the workers ------------------------------------------------------

/// The run's scan detector, shared by the workers; reset when every worker has finished a
/// capture file (each file is its own capture), not before: the flows a worker drains at the
/// end of a file still count.
pub(crate) struct SharedScan {
    /// (detector, workers that finished the current capture).
    inner: Mutex<(ScanDetector, usize)>,
    config: ScanConfig,
    workers: usize,
}

impl SharedScan {
    pub(crate) fn new(config: ScanConfig, workers: usize) -> Arc<SharedScan> {
        Arc::new(SharedScan { inner: Mutex::new((ScanDetector::new(config), 0)), config, workers: workers.max(1) })
    }

    fn observe(&self, ev: &ScanEvent) -> Option<ScanAlert> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.0.observe(ev)
    }

    /// A worker finished the current capture; the last one resets the detector.
    fn end_capture(&self) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.1 += 1;
        if g.1 >= self.workers {
            *g = (ScanDetector::new(self.config), 0);
        }
    }
}

// --- per worker --------------------------------------------------------------------------------

/// Flow facts the worker hands detection (copied out of the flow table's flow).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FlowFacts {
    pub flow_id: u64,
    pub client: IpAddr,
    pub client_port: u16,
    pub server: IpAddr,
    pub server_port: u16,
    pub proto: u8,
    pub start: Timestamp,
    pub pkts: [u64; 2],
    pub bytes: [u64; 2],
    pub established: bool,
    pub app_proto: Option<&'static str>,
    pub vlan: [u16; 2],
}

impl FlowFacts {
    fn alert_flow(&self) -> AlertFlow {
        let ports = matches!(self.proto, 6 | 17 | 132);
        AlertFlow {
            pkts_toserver: self.pkts[0],
            pkts_toclient: self.pkts[1],
            bytes_toserver: self.bytes[0],
            bytes_toclient: self.bytes[1],
            start: self.start,
            src_ip: Some(eve::format_ip(self.client)),
            dest_ip: Some(eve::format_ip(self.server)),
            src_port: ports.then_some(self.client_port),
            dest_port: ports.then_some(self.server_port),
        }
    }

    /// A packet input oriented client → server (`to_server`) or back, without payload.
    fn oriented(&self, ts: Timestamp, to_server: bool) -> PacketInput<'static> {
        let mut p = if to_server {
            PacketInput::new(ts, self.client, self.client_port, self.server, self.server_port, self.proto)
        } else {
            PacketInput::new(ts, self.server, self.server_port, self.client, self.client_port, self.proto)
        };
        p.to_server = to_server;
        p.flow_established = self.established;
        p.flow_id = self.flow_id;
        p.app_proto = self.app_proto;
        p.bytes_toserver = self.bytes[0];
        p.bytes_toclient = self.bytes[1];
        p
    }
}

/// Per-flow detection state kept in the worker's flow table.
#[derive(Debug, Default)]
pub(crate) struct FlowDetectState {
    pub detect: ward_detect::FlowDetect,
    /// The tail of each direction's inspected stream ([`STREAM_OVERLAP`] bytes at most).
    stream_tail: [Vec<u8>; 2],
    pub alerted: bool,
    indicators_checked: bool,
    /// The TLS handshake finished: what follows is encrypted records, whose payload is not
    /// inspected (Suricata's default `encryption-handling`).
    encrypted: bool,
    /// HTTP transactions with a lower id had their request half inspected (each request is
    /// inspected once, as soon as it is complete; see [`WorkerDetect::on_http_request`]).
    pub http_requests_inspected: u64,
}

/// Envelope facts of the record being written.
pub(crate) struct RecordCtx<'a> {
    pub pcap_cnt: u64,
    pub pkt_src: &'static str,
    /// The packet being processed, for the optional alert output ([`AlertOutput`]); `None` for
    /// records written at flow end.
    pub packet: Option<CtxPacket<'a>>,
}

/// The packet an alert was raised on.
#[derive(Clone, Copy)]
pub(crate) struct CtxPacket<'a> {
    /// The bytes logged as EVE `packet` ([`ward_packet::packet::Packet::frame`]).
    pub frame: &'a [u8],
    pub payload: &'a [u8],
    /// The datalink value of `frame` (EVE `packet_info.linktype`).
    pub datalink: u32,
    /// The frame's outermost packet, when this one was tunnelled or rebuilt (EVE `tunnel`).
    pub tunnel: Option<&'a eve::Tunnel>,
}

/// The stream bytes closing one direction of a flow flushed, for [`WorkerDetect::on_stream_end`].
#[derive(Default)]
pub(crate) struct FlushedStream {
    /// Runs of contiguous bytes, in stream order.
    blocks: Vec<Vec<u8>>,
    /// The bytes as Suricata dumps a stream in an alert's `payload`: the data, each gap as the
    /// text `[N bytes missing]` (at most [`PAYLOAD_BUFFER_SIZE`] bytes).
    rendered: Vec<u8>,
    /// The last chunk was data (the next data continues its block).
    open: bool,
}

impl FlushedStream {
    pub(crate) fn push(&mut self, chunk: &ward_packet::stream::StreamChunk<'_>) {
        use ward_packet::stream::StreamChunk;
        match chunk {
            StreamChunk::Data(data) => {
                match self.blocks.last_mut() {
                    Some(block) if self.open => block.extend_from_slice(data),
                    _ => self.blocks.push(data.to_vec()),
                }
                self.open = true;
                let room = PAYLOAD_BUFFER_SIZE.saturating_sub(self.rendered.len());
                self.rendered.extend_from_slice(&data[..data.len().min(room)]);
            }
            StreamChunk::Gap(n) => {
                self.open = false;
                let text = format!("[{n} bytes missing]");
                let room = PAYLOAD_BUFFER_SIZE.saturating_sub(self.rendered.len());
                self.rendered.extend_from_slice(&text.as_bytes()[..text.len().min(room)]);
            }
            StreamChunk::DepthReached => self.open = false,
        }
    }

    /// No data was flushed.
    pub(crate) fn is_empty(&self) -> bool {
        self.blocks.iter().all(|b| b.is_empty())
    }
}

/// Most stream bytes written as an alert's `payload` (Suricata's default
/// `payload-buffer-size: 4kb`).
pub const PAYLOAD_BUFFER_SIZE: usize = 4096;

/// The optional parts of an alert record: `payload`/`payload_printable`/`stream` from `data`
/// (stream data when `stream`, else the packet payload), `packet` and `packet_info` from the
/// packet, `verdict`.
fn alert_extra(output: AlertOutput, ctx: &RecordCtx<'_>, stream: bool, data: &[u8]) -> eve::AlertExtra {
    let mut extra = eve::AlertExtra { tunnel: ctx.packet.and_then(|p| p.tunnel.cloned()), ..Default::default() };
    if output.payload || output.payload_printable {
        let data = if stream { &data[..data.len().min(PAYLOAD_BUFFER_SIZE)] } else { data };
        if output.payload {
            extra.payload = Some(base64(data));
        }
        if output.payload_printable {
            extra.payload_printable = Some(printable(data));
        }
        extra.stream = Some(stream as u8);
    }
    if output.packet {
        if let Some(p) = &ctx.packet {
            extra.packet = Some(base64(p.frame));
            extra.packet_info = Some(eve::PacketInfo {
                linktype: p.datalink,
                linktype_name: Some(
                    ward_packet::capture::LinkType::datalink_name(p.datalink).unwrap_or("n/a").to_string(),
                ),
            });
        }
    }
    if output.verdict {
        extra.verdict = Some(eve::Verdict { action: "alert".into() });
    }
    extra
}

/// Standard base64 with padding (EVE `payload`, `packet`).
pub(crate) fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Suricata's printable form of a payload: printable ASCII, CR and LF kept, anything else `.`.
pub(crate) fn printable(data: &[u8]) -> String {
    data.iter().map(|&b| if (0x20..0x7f).contains(&b) || b == b'\n' || b == b'\r' { b as char } else { '.' }).collect()
}

/// A rule whose pcre keeps reaching the PCRE limits is reported once per this many seconds of
/// packet time (per worker): often enough to be seen, never once per packet.
pub const PCRE_LIMIT_REPORT_INTERVAL_SECS: i64 = 60;
/// Rules whose last report time each worker remembers; when full, entries older than the
/// interval are dropped (all of them if none is), so a rule may be reported early, never lost.
pub const MAX_PCRE_LIMIT_REPORTED_RULES: usize = 4096;

/// One worker's detection: current sets, scratch space, output vectors.
pub(crate) struct WorkerDetect {
    engines: Engines,
    pub rules: Arc<RuleSet>,
    indicators: Arc<IndicatorSet>,
    scratch: DetectScratch,
    matches: Vec<Match>,
    hits: Vec<IndicatorHit>,
    scan: Option<Arc<SharedScan>>,
    /// New in-order stream bytes of the packet being processed.
    pub stream_new: Vec<u8>,
    window: Vec<u8>,
    pub alerts: u64,
    /// ARP requests waiting for their reply: (requester, target) → time of the request.
    arp_pending: std::collections::HashMap<(std::net::Ipv4Addr, std::net::Ipv4Addr), Timestamp>,
    /// What alert records carry beyond the default.
    output: AlertOutput,
    /// (gid, sid) → packet time of the last pcre-limit report of that rule.
    pcre_reported: std::collections::HashMap<(u32, u64), Timestamp>,
    /// pcre limit hits already handed to the worker's counters.
    pcre_hits_counted: u64,
}

/// An ARP request unanswered this long (packet time) counts as a probe of a missing host.
pub const ARP_REPLY_TIMEOUT_MICROS: i64 = 3_000_000;
/// ARP requests remembered per worker (a flood beyond this is itself reported as probes).
pub const MAX_ARP_PENDING: usize = 16 * 1024;

/// An ARP request or reply in an Ethernet frame: (opcode, sender IPv4, target IPv4).
pub(crate) fn parse_arp(link: ward_packet::capture::LinkType, frame: &[u8]) -> Option<(u16, std::net::Ipv4Addr, std::net::Ipv4Addr)> {
    if link != ward_packet::capture::LinkType::Ethernet {
        return None;
    }
    let mut off = 12;
    let mut et = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
    while matches!(et, 0x8100 | 0x88a8) && off < 24 {
        off += 4;
        et = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
    }
    if et != 0x0806 {
        return None;
    }
    let a = frame.get(off + 2..off + 2 + 28)?;
    // Ethernet/IPv4 ARP only: htype 1, ptype 0x0800, hlen 6, plen 4.
    if a[0..6] != [0, 1, 8, 0, 6, 4] {
        return None;
    }
    let op = u16::from_be_bytes([a[6], a[7]]);
    let sender = std::net::Ipv4Addr::new(a[14], a[15], a[16], a[17]);
    let target = std::net::Ipv4Addr::new(a[24], a[25], a[26], a[27]);
    Some((op, sender, target))
}

impl WorkerDetect {
    pub(crate) fn new(engines: Engines, scan: Option<Arc<SharedScan>>, output: AlertOutput) -> WorkerDetect {
        let scratch = DetectScratch::with_pcre_limits(engines.config.pcre_limits);
        WorkerDetect {
            rules: engines.rules.load(),
            indicators: engines.indicators.load(),
            engines,
            scratch,
            matches: Vec::new(),
            hits: Vec::new(),
            scan,
            stream_new: Vec::new(),
            window: Vec::new(),
            alerts: 0,
            arp_pending: Default::default(),
            output,
            pcre_reported: Default::default(),
            pcre_hits_counted: 0,
        }
    }

    /// pcre searches stopped by a limit since the last call (for the run's counters).
    pub(crate) fn take_pcre_limit_hits(&mut self) -> u64 {
        let total = self.scratch.pcre_limit_hits();
        let new = total - self.pcre_hits_counted;
        self.pcre_hits_counted = total;
        new
    }

    /// Reports the rules whose pcre reached a limit in the inspection just done (of `pkt`):
    /// an EVE anomaly and a warning per rule, unless that rule was reported less than
    /// [`PCRE_LIMIT_REPORT_INTERVAL_SECS`] ago. Takes the two fields it uses (not `self`), so
    /// callers may hold the stream window meanwhile.
    fn report_pcre_limits(
        scratch: &mut DetectScratch,
        reported: &mut std::collections::HashMap<(u32, u64), Timestamp>,
        out: &mut Vec<Event>,
        facts: &FlowFacts,
        pkt: &PacketInput<'_>,
        ctx: &RecordCtx,
    ) {
        let interval = (PCRE_LIMIT_REPORT_INTERVAL_SECS * 1_000_000) as u64;
        let limited: Vec<_> = scratch.drain_pcre_limited().collect();
        for info in limited {
            let key = (info.gid, info.sid);
            let now = pkt.ts.as_micros();
            if reported.get(&key).is_some_and(|last| now.abs_diff(last.as_micros()) < interval) {
                continue;
            }
            if reported.len() >= MAX_PCRE_LIMIT_REPORTED_RULES && !reported.contains_key(&key) {
                reported.retain(|_, t| now.abs_diff(t.as_micros()) < interval);
                if reported.len() >= MAX_PCRE_LIMIT_REPORTED_RULES {
                    reported.clear();
                }
            }
            reported.insert(key, pkt.ts);
            let limits = scratch.pcre_limits();
            tracing::warn!(
                gid = info.gid,
                sid = info.sid,
                rev = info.rev,
                msg = %info.msg,
                match_limit = limits.match_limit,
                depth_limit = limits.depth_limit,
                hits = scratch.pcre_limit_hits(),
                "pcre search reached its limit: the rule was treated as not matching"
            );
            out.push(pcre_limit_record(info.sid, facts, pkt, ctx));
        }
    }

    /// Takes the current sets (call once per batch).
    pub(crate) fn refresh(&mut self) {
        self.rules = self.engines.rules.load();
        self.indicators = self.engines.indicators.load();
    }

    /// True when packet payloads need to be collected for stream inspection.
    pub(crate) fn wants_stream(&self) -> bool {
        !self.rules.is_empty()
    }

    pub(crate) fn end_capture(&mut self, out: &mut Vec<Event>) {
        self.expire_arp(out, Timestamp::from_secs_micros(i64::MAX / 2_000_000, 0));
        if let Some(s) = &self.scan {
            s.end_capture();
        }
    }

    /// Inspects one packet of a flow (after its app-layer events were handled). `tcp_session`:
    /// the flow has a TCP session whose stream is reassembled (then payload rules see the stream).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_packet(
        &mut self,
        out: &mut Vec<Event>,
        state: &mut FlowDetectState,
        facts: &FlowFacts,
        pkt: &ward_packet::packet::Packet<'_>,
        to_server: bool,
        tcp_session: bool,
        past_depth: bool,
        ctx: &RecordCtx,
    ) {
        use ward_packet::packet::Transport;
        // Indicators: the flow's endpoints, once per flow.
        if !state.indicators_checked {
            state.indicators_checked = true;
            if !self.indicators.is_empty() {
                let input = facts.oriented(pkt.ts, true);
                self.hits.clear();
                self.indicators.check_flow(&input, &mut self.hits);
                self.write_hits(out, state, facts, pkt.ts, true, None, ctx);
            }
        }
        let d = if to_server { 0 } else { 1 };
        let rules = self.rules.clone();
        // Payload past the reassembly depth is not inspected (as in Suricata), nor encrypted
        // TLS records; header rules still see the packets without payload.
        if rules.is_empty() || ((state.encrypted || (past_depth && self.stream_new.is_empty())) && !pkt.payload.is_empty()) {
            self.stream_new.clear();
            return;
        }
        let stream: Option<&[u8]> = if tcp_session && pkt.proto == 6 {
            self.window.clear();
            if !self.stream_new.is_empty() {
                // The window is the new data (its last MAX_STREAM_WINDOW bytes), taken over
                // without a copy (the spare buffer goes back empty for the next packet), after
                // what is kept of the tail carried over from the last inspection.
                let mut tail = std::mem::take(&mut state.stream_tail[d]);
                std::mem::swap(&mut self.window, &mut self.stream_new);
                if self.window.len() > MAX_STREAM_WINDOW {
                    let cut = self.window.len() - MAX_STREAM_WINDOW;
                    self.window.drain(..cut);
                }
                let keep = tail.len().min(MAX_STREAM_WINDOW - self.window.len());
                if keep > 0 {
                    self.window.splice(0..0, tail[tail.len() - keep..].iter().copied());
                }
                tail.clear();
                tail.extend_from_slice(&self.window[self.window.len().saturating_sub(STREAM_OVERLAP)..]);
                state.stream_tail[d] = tail;
            }
            Some(&self.window)
        } else {
            None
        };
        let mut input = facts.oriented(pkt.ts, to_server);
        input.src_ip = pkt.src;
        input.dst_ip = pkt.dst;
        input.src_port = pkt.src_port;
        input.dst_port = pkt.dst_port;
        input.ip_proto = pkt.proto;
        input.ttl = pkt.ttl;
        input.payload = pkt.payload;
        input.stream = stream;
        match &pkt.transport {
            Transport::Tcp(h) => {
                input.tcp = Some(ward_detect::TcpHeader { flags: h.flags, seq: h.seq, ack: h.ack, window: h.window })
            }
            Transport::Icmp { icmp_type, icmp_code } => {
                input.icmp = Some(ward_detect::IcmpHeader { itype: *icmp_type, icode: *icmp_code, id: 0, seq: 0 })
            }
            _ => {}
        }
        self.matches.clear();
        rules.inspect_packet(&input, &mut state.detect, &mut self.scratch, &mut self.matches);
        Self::report_pcre_limits(&mut self.scratch, &mut self.pcre_reported, out, facts, &input, ctx);
        if self.matches.is_empty() {
            self.stream_new.clear();
            return;
        }
        let alerts: Vec<(Alert, bool)> = self
            .matches
            .iter()
            .map(|m| (m.to_eve_alert(&input), m.info.stream_payload && stream.is_some_and(|s| !s.is_empty())))
            .collect();
        let any_output = self.output != AlertOutput::default();
        for (alert, from_stream) in alerts {
            let mut record = self.alert_record(state, facts, pkt.ts, to_server, alert, None, None, ctx);
            if !matches!(pkt.proto, 1 | 6 | 17 | 58 | 132) {
                // Other protocols' packets all count as to-server (Suricata's flow direction),
                // but an alert names the packet's own addresses.
                let (src, dst) = (eve::format_ip(pkt.src), eve::format_ip(pkt.dst));
                if let EventBody::Alert { flow: Some(f), .. } = &mut record.body {
                    f.src_ip = Some(src.clone());
                    f.dest_ip = Some(dst.clone());
                }
                record.src_ip = Some(src);
                record.dest_ip = Some(dst);
            }
            if any_output {
                // A packet match: its payload, or the stream window it matched in.
                let data = if from_stream { self.window.as_slice() } else { pkt.payload };
                if let EventBody::Alert { extra, .. } = &mut record.body {
                    **extra = alert_extra(self.output, ctx, from_stream, data);
                }
            }
            out.push(record);
        }
        self.stream_new.clear();
    }

    /// Inspects an HTTP transaction handed out by the parser (response complete, or flow end):
    /// its request half first unless [`WorkerDetect::on_http_request`] already did, then its
    /// response half when present.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_http(
        &mut self,
        out: &mut Vec<Event>,
        state: &mut FlowDetectState,
        facts: &FlowFacts,
        ts: Timestamp,
        tx: &HttpTransaction,
        obj: &eve::Http,
        ctx: &RecordCtx,
    ) {
        let request = tx.tx_id >= state.http_requests_inspected;
        if request {
            state.http_requests_inspected = tx.tx_id + 1;
        }
        self.inspect_http(out, state, facts, ts, tx, obj, ctx, request, true);
    }

    /// Inspects the request half of an HTTP transaction whose request is complete while its
    /// response is still to come (as Suricata does: request-side alerts carry the packet that
    /// completed the request). Each transaction's request is inspected once: [`on_http`] skips
    /// the request half of transactions seen here.
    ///
    /// [`on_http`]: WorkerDetect::on_http
    pub(crate) fn on_http_request(
        &mut self,
        out: &mut Vec<Event>,
        state: &mut FlowDetectState,
        facts: &FlowFacts,
        ts: Timestamp,
        tx: &HttpTransaction,
        ctx: &RecordCtx,
    ) {
        if tx.tx_id < state.http_requests_inspected || !tx.request_complete {
            return;
        }
        state.http_requests_inspected = tx.tx_id + 1;
        if tx.request.is_none() || (self.rules.is_empty() && self.indicators.is_empty()) {
            return;
        }
        let obj = ward_proto::http::eve::to_eve(tx);
        self.inspect_http(out, state, facts, ts, tx, &obj, ctx, true, false);
    }

    /// Runs indicators (request half only) and the HTTP rules of the chosen halves.
    #[allow(clippy::too_many_arguments)]
    fn inspect_http(
        &mut self,
        out: &mut Vec<Event>,
        state: &mut FlowDetectState,
        facts: &FlowFacts,
        ts: Timestamp,
        tx: &HttpTransaction,
        obj: &eve::Http,
        ctx: &RecordCtx,
        request: bool,
        response: bool,
    ) {
        let bufs = HttpBufs::of(tx);
        let input = bufs.input(tx);
        let app = AppObj::Http(obj);
        let req_pkt = facts.oriented(ts, true);
        if request && !self.indicators.is_empty() {
            self.hits.clear();
            self.indicators.check_http(&req_pkt, &input, &mut self.hits);
            self.write_hits(out, state, facts, ts, true, Some(app), ctx);
        }
        let rules = self.rules.clone();
        if rules.is_empty() {
            return;
        }
        let stages = [
            (req_pkt, request && tx.request.is_some()),
            (facts.oriented(ts, false), response && tx.response.is_some()),
        ];
        for (pkt, present) in stages {
            if !present {
                continue;
            }
            self.matches.clear();
            rules.inspect_http(&pkt, &input, &mut state.detect, &mut self.scratch, &mut self.matches);
            Self::report_pcre_limits(&mut self.scratch, &mut self.pcre_reported, out, facts, &pkt, ctx);
            let matches = std::mem::take(&mut self.matches);
            for m in &matches {
                let alert = m.to_eve_alert(&pkt);
                out.push(self.alert_record(state, facts, ts, pkt.to_server, alert, Some(app), m.tx_id, ctx));
            }
            self.matches = matches;
        }
    }

    /// Inspects a DNS message.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_dns(
        &mut self,
        out: &mut Vec<Event>,
        state: &mut FlowDetectState,
        facts: &FlowFacts,
        ts: Timestamp,
        tx_id: u64,
        msg: &DnsMessage,
        obj: &eve::Dns,
        ctx: &RecordCtx,
    ) {
        use ward_proto::dns::parser::DnsRData;
        let queries: Vec<&[u8]> = msg.queries.iter().map(|q| q.name.value.as_slice()).collect();
        let mut answers: Vec<&[u8]> = Vec::new();
        let mut answer_ips: Vec<IpAddr> = Vec::new();
        for a in &msg.answers {
            answers.push(a.name.value.as_slice());
            match &a.rdata {
                DnsRData::A(v4) => answer_ips.push(IpAddr::V4(*v4)),
                DnsRData::Aaaa(v6) => answer_ips.push(IpAddr::V6(*v6)),
                DnsRData::Name(n) => answers.push(n.value.as_slice()),
                DnsRData::Mx { exchange, .. } => answers.push(exchange.value.as_slice()),
                _ => {}
            }
        }
        let input = DnsInput {
            tx_id,
            queries: &queries,
            answers: &answers,
            answer_ips: &answer_ips,
            opcode: ((msg.header.flags >> 11) & 0xf) as u8,
        };
        let to_server = msg.header.flags & 0x8000 == 0;
        let pkt = facts.oriented(ts, to_server);
        let app = AppObj::Dns(obj);
        if !self.indicators.is_empty() {
            self.hits.clear();
            self.indicators.check_dns(&pkt, &input, &mut self.hits);
            self.write_hits(out, state, facts, ts, to_server, Some(app), ctx);
        }
        let rules = self.rules.clone();
        // Rules inspect DNS requests (dns.query is a request buffer in Suricata's counting);
        // responses are matched by indicators only.
        if rules.is_empty() || !to_server {
            return;
        }
        self.matches.clear();
        rules.inspect_dns(&pkt, &input, &mut state.detect, &mut self.scratch, &mut self.matches);
        Self::report_pcre_limits(&mut self.scratch, &mut self.pcre_reported, out, facts, &pkt, ctx);
        let matches = std::mem::take(&mut self.matches);
        for m in &matches {
            let alert = m.to_eve_alert(&pkt);
            out.push(self.alert_record(state, facts, ts, to_server, alert, Some(app), m.tx_id, ctx));
        }
        self.matches = matches;
    }

    /// Inspects a TLS handshake summary (both directions' rules).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_tls(
        &mut self,
        out: &mut Vec<Event>,
        state: &mut FlowDetectState,
        facts: &FlowFacts,
        ts: Timestamp,
        info: &TlsInfo,
        obj: &eve::Tls,
        ctx: &RecordCtx,
    ) {
        state.encrypted = info.handshake_done || info.encrypted_records[0] > 0 || info.encrypted_records[1] > 0;
        let certs: Vec<&[u8]> = info.certs.iter().map(|c| c.as_slice()).collect();
        let version = info.version();
        let input = TlsInput {
            sni: info.sni.as_deref(),
            certs: &certs,
            cert_subject: info.cert.as_ref().map(|c| c.subject.as_bytes()),
            cert_issuer: info.cert.as_ref().map(|c| c.issuer.as_bytes()),
            cert_serial: info.cert.as_ref().map(|c| c.serial.as_bytes()),
            cert_fingerprint: info.cert.as_ref().map(|c| c.fingerprint.as_bytes()),
            ja3_hash: info.ja3.as_ref().map(|f| f.hash.as_bytes()),
            ja3_string: info.ja3.as_ref().map(|f| f.string.as_bytes()),
            ja3s_hash: info.ja3s.as_ref().map(|f| f.hash.as_bytes()),
            ja3s_string: info.ja3s.as_ref().map(|f| f.string.as_bytes()),
            ja4_hash: None,
            version: (version != 0).then_some(version),
        };
        let app = AppObj::Tls(obj);
        if !self.indicators.is_empty() {
            let pkt = facts.oriented(ts, true);
            self.hits.clear();
            self.indicators.check_tls(&pkt, &input, &mut self.hits);
            self.write_hits(out, state, facts, ts, true, Some(app), ctx);
        }
        let rules = self.rules.clone();
        if rules.is_empty() {
            return;
        }
        for to_server in [true, false] {
            let pkt = facts.oriented(ts, to_server);
            self.matches.clear();
            rules.inspect_tls(&pkt, &input, &mut state.detect, &mut self.scratch, &mut self.matches);
            Self::report_pcre_limits(&mut self.scratch, &mut self.pcre_reported, out, facts, &pkt, ctx);
            let matches = std::mem::take(&mut self.matches);
            for m in &matches {
                let alert = m.to_eve_alert(&pkt);
                out.push(self.alert_record(state, facts, ts, to_server, alert, Some(app), None, ctx));
            }
            self.matches = matches;
        }
    }

    /// An ARP frame: requests wait for their reply; unanswered ones are host-discovery probes.
    pub(crate) fn on_arp(&mut self, out: &mut Vec<Event>, ts: Timestamp, op: u16, sender: std::net::Ipv4Addr, target: std::net::Ipv4Addr) {
        if self.scan.is_none() || sender.is_unspecified() || sender == target {
            return;
        }
        match op {
            1 => {
                if self.arp_pending.len() >= MAX_ARP_PENDING {
                    self.expire_arp(out, Timestamp::from_secs_micros(i64::MAX / 2_000_000, 0));
                }
                self.arp_pending.entry((sender, target)).or_insert(ts);
            }
            2 => {
                self.arp_pending.remove(&(target, sender));
            }
            _ => {}
        }
        self.expire_arp(out, ts);
    }

    /// Reports ARP requests unanswered for [`ARP_REPLY_TIMEOUT_MICROS`] by `now`.
    pub(crate) fn expire_arp(&mut self, out: &mut Vec<Event>, now: Timestamp) {
        if self.arp_pending.is_empty() {
            return;
        }
        let mut due: Vec<((std::net::Ipv4Addr, std::net::Ipv4Addr), Timestamp)> = self
            .arp_pending
            .iter()
            .filter(|(_, t)| now.as_micros() - t.as_micros() >= ARP_REPLY_TIMEOUT_MICROS)
            .map(|(k, t)| (*k, *t))
            .collect();
        due.sort_by_key(|(_, t)| *t);
        for ((src, dst), t) in due {
            self.arp_pending.remove(&(src, dst));
            let ev = ScanEvent { ts: t, src: IpAddr::V4(src), dst: IpAddr::V4(dst), dport: 0, proto: 0, outcome: ScanOutcome::ArpNoReply };
            self.scan_event(out, &ev);
        }
    }

    /// A flow ended and closing its stream in one direction flushed `stream` (data that waited
    /// behind a gap): it is inspected as Suricata inspects the rest of a stream at flow end, on
    /// a pseudo packet without payload (`pkt_src` from `ctx`), by the rules with payload
    /// keywords. Each block of contiguous bytes is inspected on its own; a rule alerts once.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_stream_end(
        &mut self,
        out: &mut Vec<Event>,
        state: &mut FlowDetectState,
        facts: &FlowFacts,
        ts: Timestamp,
        to_server: bool,
        stream: &FlushedStream,
        ctx: &RecordCtx,
    ) {
        let rules = self.rules.clone();
        if rules.is_empty() || state.encrypted || facts.proto != 6 {
            return;
        }
        let mut alerted: Vec<(u32, u64)> = Vec::new();
        for block in stream.blocks.iter().filter(|b| !b.is_empty()) {
            let mut input = facts.oriented(ts, to_server);
            input.stream = Some(block);
            self.matches.clear();
            rules.inspect_packet(&input, &mut state.detect, &mut self.scratch, &mut self.matches);
            Self::report_pcre_limits(&mut self.scratch, &mut self.pcre_reported, out, facts, &input, ctx);
            let matches = std::mem::take(&mut self.matches);
            for m in matches.iter().filter(|m| m.info.inspects_payload) {
                if alerted.contains(&(m.info.gid, m.info.sid)) {
                    continue;
                }
                alerted.push((m.info.gid, m.info.sid));
                let alert = m.to_eve_alert(&input);
                let extra = alert_extra(self.output, ctx, true, &stream.rendered);
                let mut record = self.alert_record(state, facts, ts, to_server, alert, None, None, ctx);
                if let EventBody::Alert { extra: e, .. } = &mut record.body {
                    **e = extra;
                }
                out.push(record);
            }
            self.matches = matches;
        }
    }

    /// A flow ended: feed its connection attempt to the scan detector.
    pub(crate) fn on_flow_end(&mut self, out: &mut Vec<Event>, facts: &FlowFacts, outcome: Option<ScanOutcome>) {
        let (Some(_), Some(outcome)) = (&self.scan, outcome) else { return };
        let ev = ScanEvent { ts: facts.start, src: facts.client, dst: facts.server, dport: facts.server_port, proto: facts.proto, outcome };
        self.scan_event(out, &ev);
    }

    fn scan_event(&mut self, out: &mut Vec<Event>, ev: &ScanEvent) {
        let Some(scan) = &self.scan else { return };
        if let Some(alert) = scan.observe(ev) {
            let mut record = Event::new(
                alert.last_seen,
                EventBody::Alert {
                    alert: alert.to_eve_alert(),
                    direction: None,
                    http: None,
                    dns: None,
                    tls: None,
                    flow: None,
                    extra: Default::default(),
                },
            );
            record.src_ip = Some(eve::format_ip(alert.src));
            record.dest_ip = Some(eve::format_ip(alert.dst));
            record.ip_v = Some(if alert.src.is_ipv4() { 4 } else { 6 });
            record.proto = Some(if alert.proto == 0 { "ARP".to_string() } else { eve::proto_name(alert.proto) });
            if matches!(alert.proto, 6 | 17) {
                record.dest_port = Some(alert.dport);
            }
            record.pkt_src = Some("scan detector".into());
            self.alerts += 1;
            out.push(record);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn write_hits(
        &mut self,
        out: &mut Vec<Event>,
        state: &mut FlowDetectState,
        facts: &FlowFacts,
        ts: Timestamp,
        to_server: bool,
        app: Option<AppObj<'_>>,
        ctx: &RecordCtx,
    ) {
        let hits = std::mem::take(&mut self.hits);
        for h in &hits {
            let record = self.alert_record(state, facts, ts, to_server, h.to_eve_alert(), app, None, ctx);
            out.push(record);
        }
        self.hits = hits;
    }

    #[allow(clippy::too_many_arguments)]
    fn alert_record(
        &mut self,
        state: &mut FlowDetectState,
        facts: &FlowFacts,
        ts: Timestamp,
        to_server: bool,
        alert: Alert,
        app: Option<AppObj<'_>>,
        tx_id: Option<u64>,
        ctx: &RecordCtx,
    ) -> Event {
        state.alerted = true;
        self.alerts += 1;
        let (http, dns, tls) = match app {
            Some(AppObj::Http(h)) => (Some(h.clone()), None, None),
            Some(AppObj::Dns(d)) => (None, Some(d.clone()), None),
            Some(AppObj::Tls(t)) => (None, None, Some(t.clone())),
            None => (None, None, None),
        };
        let body = EventBody::Alert {
            alert,
            direction: Some(if to_server { "to_server" } else { "to_client" }.into()),
            http,
            dns,
            tls,
            flow: Some(facts.alert_flow()),
            extra: Box::new(if self.output == AlertOutput::default() {
                eve::AlertExtra { tunnel: ctx.packet.and_then(|p| p.tunnel.cloned()), ..Default::default() }
            } else {
                // An app-layer match on TCP is a stream match (Suricata's STATE_MATCH): the
                // stream is not kept, so the packet's payload stands for it.
                let payload = ctx.packet.map(|p| p.payload).unwrap_or_default();
                alert_extra(self.output, ctx, facts.proto == 6 && app.is_some(), payload)
            }),
        };
        let mut record = Event::new(ts, body);
        let (src, sport, dst, dport) = if to_server {
            (facts.client, facts.client_port, facts.server, facts.server_port)
        } else {
            (facts.server, facts.server_port, facts.client, facts.client_port)
        };
        record.flow_id = Some(facts.flow_id);
        record.src_ip = Some(eve::format_ip(src));
        record.dest_ip = Some(eve::format_ip(dst));
        record.ip_v = Some(if src.is_ipv4() { 4 } else { 6 });
        record.proto = Some(eve::proto_name(facts.proto));
        if matches!(facts.proto, 6 | 17 | 132) {
            record.src_port = Some(sport);
            record.dest_port = Some(dport);
        }
        if facts.vlan[0] != 0 {
            record.vlan = Some(facts.vlan.iter().copied().filter(|&v| v != 0).collect());
        }
        record.app_proto = facts.app_proto.map(str::to_string);
        record.tx_id = tx_id;
        record.pcap_cnt = Some(ctx.pcap_cnt).filter(|&n| n > 0);
        record.pkt_src = Some(ctx.pkt_src.into());
        record
    }
}

/// The EVE anomaly of a rule whose pcre reached a limit on the packet `pkt` of a flow. The
/// schema's anomaly object has no sid field: `code` carries it.
fn pcre_limit_record(sid: u64, facts: &FlowFacts, pkt: &PacketInput<'_>, ctx: &RecordCtx) -> Event {
    let anomaly = Anomaly {
        kind: "detect".into(),
        event: "pcre_limit_exceeded".into(),
        app_proto: facts.app_proto.map(str::to_string),
        layer: None,
        code: u32::try_from(sid).ok(),
    };
    let mut record = Event::new(pkt.ts, EventBody::Anomaly { anomaly });
    record.flow_id = Some(facts.flow_id);
    record.src_ip = Some(eve::format_ip(pkt.src_ip));
    record.dest_ip = Some(eve::format_ip(pkt.dst_ip));
    record.ip_v = Some(if pkt.src_ip.is_ipv4() { 4 } else { 6 });
    record.proto = Some(eve::proto_name(pkt.ip_proto));
    if matches!(pkt.ip_proto, 6 | 17 | 132) {
        record.src_port = Some(pkt.src_port);
        record.dest_port = Some(pkt.dst_port);
    }
    record.pcap_cnt = Some(ctx.pcap_cnt).filter(|&n| n > 0);
    record.pkt_src = Some(ctx.pkt_src.into());
    record
}

/// The app-layer object an alert carries.
#[derive(Clone, Copy)]
pub(crate) enum AppObj<'a> {
    Http(&'a eve::Http),
    Dns(&'a eve::Dns),
    Tls(&'a eve::Tls),
}

/// The derived HTTP buffers (built once per transaction).
#[derive(Default)]
struct HttpBufs {
    host: Vec<u8>,
    req_header: Vec<u8>,
    req_names: Vec<u8>,
    req_start: Vec<u8>,
    resp_header: Vec<u8>,
    resp_names: Vec<u8>,
    resp_start: Vec<u8>,
}

fn start_line(line: &[u8], raw_headers: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(line.len() + raw_headers.len() + 4);
    v.extend_from_slice(line);
    v.extend_from_slice(b"\r\n");
    v.extend_from_slice(raw_headers);
    if !raw_headers.ends_with(b"\r\n\r\n") {
        v.extend_from_slice(b"\r\n");
    }
    v
}

impl HttpBufs {
    fn of(tx: &HttpTransaction) -> HttpBufs {
        let mut b = HttpBufs::default();
        if let Some(r) = &tx.request {
            b.host = r.host().map(String::into_bytes).unwrap_or_default();
            b.req_header = r.header_block();
            b.req_names = r.header_names();
            b.req_start = start_line(&r.line, &r.raw_headers);
        }
        if let Some(r) = &tx.response {
            b.resp_header = r.header_block();
            b.resp_names = r.header_names();
            b.resp_start = start_line(&r.line, &r.raw_headers);
        }
        b
    }

    fn input<'a>(&'a self, tx: &'a HttpTransaction) -> HttpInput<'a> {
        let mut i = HttpInput { tx_id: tx.tx_id, ..Default::default() };
        if let Some(r) = &tx.request {
            i.method = Some(&r.method);
            i.uri = Some(&r.uri_normalized);
            i.uri_raw = Some(&r.uri_raw);
            i.host = r.host_raw().map(|_| self.host.as_slice()).or_else(|| (!self.host.is_empty()).then_some(self.host.as_slice()));
            i.host_raw = r.host_raw();
            i.user_agent = r.user_agent();
            i.cookie = r.cookie();
            i.referer = r.referer();
            i.accept = r.header("accept");
            i.accept_enc = r.header("accept-encoding");
            i.accept_lang = r.header("accept-language");
            i.request_line = Some(&r.line);
            i.request_body = (!r.body.is_empty()).then_some(r.body.as_slice());
            i.request_header = Some(&self.req_header);
            i.request_header_raw = Some(&r.raw_headers);
            i.request_header_names = Some(&self.req_names);
            i.request_content_type = r.content_type();
            i.request_content_len = r.content_length();
            i.request_connection = r.header("connection");
            i.request_protocol = r.protocol.as_deref();
            i.request_start = Some(&self.req_start);
        }
        if let Some(r) = &tx.response {
            i.stat_code = (!r.status_raw.is_empty()).then_some(r.status_raw.as_slice());
            i.stat_msg = Some(&r.reason);
            i.response_line = Some(&r.line);
            i.response_body = (!r.body.is_empty()).then_some(r.body.as_slice());
            i.server = r.header("server");
            i.location = r.location();
            i.response_header = Some(&self.resp_header);
            i.response_header_raw = Some(&r.raw_headers);
            i.response_header_names = Some(&self.resp_names);
            i.response_content_type = r.content_type();
            i.response_content_len = r.content_length();
            i.response_connection = r.header("connection");
            i.response_protocol = (!r.protocol.is_empty()).then_some(r.protocol.as_slice());
            i.response_start = Some(&self.resp_start);
        }
        i
    }
}

/// How a flow ended, as a connection attempt for the scan detector (`None`: not an attempt,
/// e.g. ICMP or a flow whose start was not seen).
pub(crate) fn scan_outcome<S>(flow: &ward_packet::flow::Flow<S>) -> Option<ScanOutcome> {
    const SYN: u8 = 0x02;
    const RST: u8 = 0x04;
    const ACK: u8 = 0x10;
    match flow.proto {
        6 => {
            let (c, s) = (flow.tcp.flags[0], flow.tcp.flags[1]);
            if c & SYN == 0 {
                // No SYN from the client: a flow whose start was not seen.
                return None;
            }
            if flow.streams[0].offset() > 0 || flow.streams[1].offset() > 0 {
                return Some(ScanOutcome::Established);
            }
            if s & SYN == 0 {
                return Some(if s & RST != 0 { ScanOutcome::Rejected } else { ScanOutcome::SynNoReply });
            }
            // The SYN-ACK came back: a SYN scan resets without completing, a connect scan
            // completes and closes without data.
            Some(if c & ACK == 0 { ScanOutcome::HalfOpen } else { ScanOutcome::ConnectNoData })
        }
        17 => Some(if flow.pkts[1] == 0 { ScanOutcome::UdpNoReply } else { ScanOutcome::UdpReplied }),
        _ => None,
    }
}

