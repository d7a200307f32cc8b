//! Prometheus metrics: counters and one latency histogram, rendered in the text exposition
//! format at `/metrics`. Names follow Prometheus conventions (`ward_hub_…_total`).

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Upper bounds (seconds) of the acknowledgement latency histogram.
pub const ACK_BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; ACK_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, secs: f64) {
        for (i, bound) in ACK_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add((secs * 1e6) as u64, Ordering::Relaxed);
    }
}

#[derive(Default)]
pub struct Metrics {
    pub events_ingested: Counter,
    pub batches_ingested: Counter,
    pub batches_duplicate: Counter,
    pub lines_rejected: Counter,
    pub group_commits: Counter,
    pub campaigns_opened: Counter,
    pub notifications_enqueued: Counter,
    pub deliveries_ok: Counter,
    pub deliveries_failed: Counter,
    pub rate_limited: Counter,
    pub bodies_timed_out: Counter,
    pub ingest_busy: Counter,
    /// Batches stored without correlation (sensor on hold or budget breached).
    pub batches_held: Counter,
    /// Contribution-budget breaches (each puts a sensor on hold).
    pub trust_anomalies: Counter,
    pub ingest_ack_seconds: Histogram,
}

impl Metrics {
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counters: [(&str, &str, &Counter); 14] = [
            ("ward_hub_events_ingested_total", "EVE events stored", &self.events_ingested),
            ("ward_hub_batches_ingested_total", "sensor batches stored", &self.batches_ingested),
            ("ward_hub_batches_duplicate_total", "batches acknowledged again for a repeated idempotency key", &self.batches_duplicate),
            ("ward_hub_lines_rejected_total", "batch lines rejected as malformed", &self.lines_rejected),
            ("ward_hub_group_commits_total", "ingest transactions committed", &self.group_commits),
            ("ward_hub_campaigns_opened_total", "campaigns opened by correlation", &self.campaigns_opened),
            ("ward_hub_notifications_enqueued_total", "notifications put in the outbox", &self.notifications_enqueued),
            ("ward_hub_deliveries_ok_total", "delivery attempts that succeeded", &self.deliveries_ok),
            ("ward_hub_deliveries_failed_total", "delivery attempts that failed", &self.deliveries_failed),
            ("ward_hub_rate_limited_total", "requests refused by a rate limit", &self.rate_limited),
            ("ward_hub_bodies_timed_out_total", "requests cut with 408 because their body came too slowly", &self.bodies_timed_out),
            ("ward_hub_ingest_busy_total", "ingest requests refused with 429 because their sensor had too many in flight", &self.ingest_busy),
            ("ward_hub_batches_held_total", "batches stored without correlation (sensor on hold or over its budget)", &self.batches_held),
            ("ward_hub_trust_anomalies_total", "contribution-budget breaches that put a sensor on hold", &self.trust_anomalies),
        ];
        for (name, help, c) in counters {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n", c.get()));
        }
        let h = &self.ingest_ack_seconds;
        let name = "ward_hub_ingest_ack_seconds";
        out.push_str(&format!("# HELP {name} time from a batch's arrival to its acknowledgement\n# TYPE {name} histogram\n"));
        for (i, bound) in ACK_BUCKETS.iter().enumerate() {
            out.push_str(&format!("{name}_bucket{{le=\"{bound}\"}} {}\n", h.buckets[i].load(Ordering::Relaxed)));
        }
        let count = h.count.load(Ordering::Relaxed);
        out.push_str(&format!("{name}_bucket{{le=\"+Inf\"}} {count}\n"));
        out.push_str(&format!("{name}_sum {}\n", h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6));
        out.push_str(&format!("{name}_count {count}\n"));
        out
    }
}
