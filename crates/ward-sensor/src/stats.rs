//! Counters of a sensor run: summed over workers, printed at exit, written as an EVE `stats`
//! record with the key names of Suricata's schema.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde_json::json;
use ward_model::eve::{Event, EventBody};
use ward_model::Timestamp;

/// Every counter of a run. Workers keep their own and the pipeline sums them at the end.
#[derive(Debug, Default, Clone)]
pub struct Counters {
    pub capture_packets: u64,
    pub capture_bytes: u64,
    pub kernel_packets: u64,
    pub kernel_drops: u64,
    /// Frames dropped because a worker's queue was full (live capture only).
    pub queue_drops: u64,

    pub decoded_packets: u64,
    pub decoded_bytes: u64,
    pub max_pkt_size: u64,
    pub decode_errors: u64,
    pub non_ip: u64,
    pub filtered_out: u64,
    pub ethernet: u64,
    pub vlan: u64,
    pub vlan_qinq: u64,
    pub ipv4: u64,
    pub ipv6: u64,
    pub tcp: u64,
    pub udp: u64,
    pub icmpv4: u64,
    pub icmpv6: u64,
    pub fragments: u64,
    pub reassembled: u64,
    pub tunnels: u64,

    pub flows_total: u64,
    pub flows_tcp: u64,
    pub flows_udp: u64,
    pub flows_icmpv4: u64,
    pub flows_icmpv6: u64,
    pub flows_timeout: u64,
    pub flows_evicted: u64,
    /// Largest flow-table memory estimate any worker reached, summed over workers.
    pub flow_memuse_peak: u64,

    pub tcp_sessions: u64,
    pub tcp_syn: u64,
    pub tcp_synack: u64,
    pub tcp_rst: u64,
    pub tcp_midstream: u64,
    pub tcp_gaps: u64,
    pub tcp_overlaps: u64,
    pub tcp_overlap_diff: u64,
    pub tcp_depth_reached: u64,

    /// Flows per detected app-layer protocol, keyed as Suricata's schema (`http`, `tls`,
    /// `dns_udp`, `failed_tcp`, ...): fill through [`Counters::count_app_flow`].
    pub app_flows: BTreeMap<String, u64>,
    /// Transactions per app-layer protocol, keyed the same way: see [`Counters::count_tx`].
    pub app_tx: BTreeMap<String, u64>,
    /// EVE records written per `event_type`.
    pub eve: BTreeMap<&'static str, u64>,
    /// pcre searches stopped by the PCRE match/depth limits (their rules did not match). In the
    /// exit summary and `--summary-json`, not in the EVE `stats` record: Suricata's schema
    /// closes `stats.detect` to other keys, and that record must stay valid against it.
    pub pcre_limit_hits: u64,

    /// Rule engine counters (`None`: the run had no detection).
    pub detect: Option<DetectCounters>,

    pub uptime_secs: u64,
    pub peak_rss_bytes: u64,
}

/// The rule engine at the end of a run: the running set and what reloads did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct DetectCounters {
    /// When the running rules were loaded (start or the last accepted reload).
    pub last_reload: Timestamp,
    pub rules_loaded: u64,
    /// Rules of the running set's files that did not load (syntax, unsupported keyword, ...).
    pub rules_failed: u64,
    /// Reloads attempted (by signal or file change).
    pub reloads: u64,
    /// Reloads refused: the running rules stayed (see [`crate::detect`]).
    pub reloads_refused: u64,
}

impl DetectCounters {
    pub fn of(engines: &crate::detect::Engines) -> DetectCounters {
        let running = engines.last_summary();
        DetectCounters {
            last_reload: engines.loaded_at(),
            rules_loaded: engines.rules.load().len() as u64,
            rules_failed: running.rules.skipped.len() as u64,
            reloads: engines.reload_count(),
            reloads_refused: engines.failed_reload_count(),
        }
    }
}

impl Counters {
    pub fn merge(&mut self, other: &Counters) {
        macro_rules! add {
            ($($field:ident),*) => { $( self.$field += other.$field; )* };
        }
        add!(
            capture_packets, capture_bytes, kernel_packets, kernel_drops, queue_drops, decoded_packets,
            decoded_bytes, decode_errors, non_ip, filtered_out, ethernet, vlan, vlan_qinq, ipv4, ipv6, tcp,
            udp, icmpv4, icmpv6, fragments, reassembled, tunnels, flows_total, flows_tcp, flows_udp,
            flows_icmpv4, flows_icmpv6, flows_timeout, flows_evicted, flow_memuse_peak, tcp_sessions,
            tcp_syn, tcp_synack, tcp_rst, tcp_midstream, tcp_gaps, tcp_overlaps, tcp_overlap_diff,
            tcp_depth_reached, pcre_limit_hits
        );
        self.max_pkt_size = self.max_pkt_size.max(other.max_pkt_size);
        for (k, v) in &other.app_flows {
            *self.app_flows.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.app_tx {
            *self.app_tx.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.eve {
            *self.eve.entry(k).or_default() += v;
        }
        if self.detect.is_none() {
            self.detect.clone_from(&other.detect);
        }
    }

    /// Counts one transaction of app-layer protocol `app` (EVE name: `dns`, `http`, `tls`, ...)
    /// on a flow of IP protocol `ipproto`, under Suricata's key for it.
    pub fn count_tx(&mut self, app: &str, ipproto: u8) {
        if let Some(key) = app_layer_key(app, ipproto).filter(|k| !k.starts_with("failed")) {
            *self.app_tx.entry(key.to_string()).or_default() += 1;
        }
    }

    /// Counts one finished flow whose app-layer protocol was `app` (`failed` when detection
    /// gave up), under Suricata's key for it.
    pub fn count_app_flow(&mut self, app: &str, ipproto: u8) {
        if let Some(key) = app_layer_key(app, ipproto) {
            *self.app_flows.entry(key.to_string()).or_default() += 1;
        }
    }

    /// Total drops: kernel and queue.
    pub fn drops(&self) -> u64 {
        self.kernel_drops + self.queue_drops
    }

    /// The EVE `stats` record (keys as in Suricata's schema).
    pub fn to_eve(&self, ts: Timestamp) -> Event {
        let avg = if self.decoded_packets > 0 { self.decoded_bytes / self.decoded_packets } else { 0 };
        let mut stats = json!({
            "uptime": self.uptime_secs,
            "capture": {
                "kernel_packets": self.kernel_packets.max(self.capture_packets),
                "kernel_drops": self.drops(),
            },
            "decoder": {
                "pkts": self.decoded_packets,
                "bytes": self.decoded_bytes,
                "invalid": self.decode_errors,
                "ethernet": self.ethernet,
                "vlan": self.vlan,
                "vlan_qinq": self.vlan_qinq,
                "ipv4": self.ipv4,
                "ipv6": self.ipv6,
                "tcp": self.tcp,
                "udp": self.udp,
                "icmpv4": self.icmpv4,
                "icmpv6": self.icmpv6,
                "avg_pkt_size": avg,
                "max_pkt_size": self.max_pkt_size,
            },
            "defrag": {
                "ipv4": { "fragments": self.fragments, "reassembled": self.reassembled },
            },
            "flow": {
                "total": self.flows_total,
                "tcp": self.flows_tcp,
                "udp": self.flows_udp,
                "icmpv4": self.flows_icmpv4,
                "icmpv6": self.flows_icmpv6,
                "memuse": self.flow_memuse_peak,
            },
            "tcp": {
                "sessions": self.tcp_sessions,
                "syn": self.tcp_syn,
                "synack": self.tcp_synack,
                "rst": self.tcp_rst,
                "midstream_pickups": self.tcp_midstream,
                "reassembly_gap": self.tcp_gaps,
                "overlap": self.tcp_overlaps,
                "overlap_diff_data": self.tcp_overlap_diff,
                "stream_depth_reached": self.tcp_depth_reached,
            },
            "app_layer": {
                "flow": self.app_flows,
                "tx": self.app_tx,
            },
        });
        if let Some(d) = &self.detect {
            // Suricata's schema has no key for refused reloads: they are in the summary, the
            // log and the `engine` records (see crate::detect).
            stats["detect"] = json!({
                "engines": [{
                    "last_reload": d.last_reload,
                    "rules_loaded": d.rules_loaded,
                    "rules_failed": d.rules_failed,
                    "rules_skipped": 0,
                }],
            });
        }
        Event::new(ts, EventBody::Stats { stats })
    }

    /// The human summary printed at exit.
    pub fn text(&self, elapsed: Duration) -> String {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "packets {}  bytes {}  drops {}  decode errors {}  in {:.2}s ({:.0} pkt/s, {:.2} Gbit/s)",
            self.capture_packets,
            self.capture_bytes,
            self.drops(),
            self.decode_errors,
            secs,
            self.capture_packets as f64 / secs,
            self.capture_bytes as f64 * 8.0 / secs / 1e9
        );
        let _ = writeln!(
            out,
            "flows {} (tcp {}, udp {}, icmp {})  timed out {}  evicted {}  tcp gaps {}",
            self.flows_total,
            self.flows_tcp,
            self.flows_udp,
            self.flows_icmpv4 + self.flows_icmpv6,
            self.flows_timeout,
            self.flows_evicted,
            self.tcp_gaps
        );
        if self.pcre_limit_hits > 0 {
            let _ = writeln!(out, "pcre limit hits {} (those rules did not match; see the pcre_limit_exceeded anomalies)", self.pcre_limit_hits);
        }
        if let Some(d) = &self.detect {
            let _ = writeln!(
                out,
                "rules: {} running, {} failed to load  reloads {}, refused {}",
                d.rules_loaded, d.rules_failed, d.reloads, d.reloads_refused
            );
        }
        let eve: Vec<String> = self.eve.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = write!(
            out,
            "eve records: {}  memory: peak rss {:.1} MiB, flow tables {:.1} MiB",
            if eve.is_empty() { "none".to_string() } else { eve.join(", ") },
            self.peak_rss_bytes as f64 / 1048576.0,
            self.flow_memuse_peak as f64 / 1048576.0
        );
        out
    }
}

/// Suricata's key in `stats.app_layer.flow` / `stats.app_layer.tx` for app-layer protocol `app`
/// over IP protocol `ipproto`: protocols Suricata parses over both TCP and UDP carry the
/// transport in the key (`dns_tcp`, `dns_udp`, `failed_tcp`, ...), the others do not. `None` for
/// a protocol the schema has no key for.
pub fn app_layer_key(app: &str, ipproto: u8) -> Option<&'static str> {
    const TCP: u8 = 6;
    const UDP: u8 = 17;
    let key = match (app, ipproto) {
        ("dns", TCP) => "dns_tcp",
        ("dns", UDP) => "dns_udp",
        ("failed", TCP) => "failed_tcp",
        ("failed", UDP) => "failed_udp",
        ("http", TCP) => "http",
        ("tls", TCP) => "tls",
        ("ssh", TCP) => "ssh",
        ("smtp", TCP) => "smtp",
        ("ftp", TCP) => "ftp",
        ("pop3", TCP) => "pop3",
        ("imap", TCP) => "imap",
        _ => return None,
    };
    Some(key)
}

/// What a run did, for the caller to print and to choose an exit code.
#[derive(Debug)]
pub struct RunSummary {
    pub counters: Counters,
    /// Capture problems (bad magic, truncated file, interface gone): the run went on with the
    /// other inputs, but the exit code should say something was wrong.
    pub capture_errors: Vec<String>,
    pub elapsed: Duration,
    pub eve_records: u64,
}

impl RunSummary {
    pub fn counters_text(&self) -> String {
        self.counters.text(self.elapsed)
    }
}

/// The process's peak resident set size (Linux `VmHWM`), 0 where unknown.
pub fn peak_rss_bytes() -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return 0 };
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}
