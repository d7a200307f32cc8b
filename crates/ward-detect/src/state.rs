//! Mutable detection state: per flow ([`FlowDetect`]: flowbits, app-layer alert dedup) and per
//! worker ([`DetectScratch`]: reusable buffers, candidate marks, threshold counters, the PCRE
//! matcher with its limits and the rules whose pcre reached them).
//!
//! Flowbit ids belong to one [`crate::RuleSet`]: a `FlowDetect` remembers the generation of the
//! set that wrote it and starts afresh when a reloaded set inspects it. Thresholds are per worker
//! (flows are sharded by hash, so a source's packets may be split over workers; this is the same
//! trade-off as Suricata's per-thread tables). The threshold table is bounded by
//! [`MAX_THRESHOLD_ENTRIES`]; when full, expired entries are dropped, and if none expired the
//! table is cleared (thresholds then restart, erring on the side of alerting).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use ward_model::Timestamp;

use crate::pcre::{BoundedMatcher, PcreLimits};
use crate::rule::{RuleInfo, Threshold, ThresholdKind, Track, XbitCmd, XbitOp, XbitTrack};

/// Threshold/detection_filter entries kept per worker (≈ 64 B each: 16 MB at most).
pub const MAX_THRESHOLD_ENTRIES: usize = 256 * 1024;
/// App-layer (rule, transaction) alerts remembered per flow, to alert once per transaction.
pub const MAX_TX_ALERTS_REMEMBERED: usize = 64;
/// xbits (per host / host pair) kept per worker; when full, expired bits are dropped first.
pub const MAX_XBITS_ENTRIES: usize = 256 * 1024;
/// Flowbits set per flow; more is a hostile or broken rule set, further sets are ignored.
pub const MAX_FLOWBITS_PER_FLOW: usize = 256;
/// Rules kept for [`DetectScratch::drain_pcre_limited`] between two drains; a caller that never
/// drains costs no more than this (further rules are still counted in the hit counter).
pub const MAX_PCRE_LIMITED_PENDING: usize = 256;

/// Detection state the sensor keeps in each flow.
#[derive(Debug, Clone, Default)]
pub struct FlowDetect {
    generation: u64,
    bits: Vec<u32>,
    tx_alerts: Vec<(u8, u64, u32)>,
}

impl FlowDetect {
    pub fn new() -> Self {
        FlowDetect::default()
    }

    pub(crate) fn sync(&mut self, generation: u64) {
        if self.generation != generation {
            self.generation = generation;
            self.bits.clear();
            self.tx_alerts.clear();
        }
    }

    pub(crate) fn isset(&self, bit: u32) -> bool {
        self.bits.binary_search(&bit).is_ok()
    }

    pub(crate) fn set(&mut self, bit: u32) {
        if let Err(pos) = self.bits.binary_search(&bit) {
            if self.bits.len() < MAX_FLOWBITS_PER_FLOW {
                self.bits.insert(pos, bit);
            }
        }
    }

    pub(crate) fn unset(&mut self, bit: u32) {
        if let Ok(pos) = self.bits.binary_search(&bit) {
            self.bits.remove(pos);
        }
    }

    /// Number of flowbits currently set (for tests and metrics).
    pub fn flowbit_count(&self) -> usize {
        self.bits.len()
    }

    /// Records that `rule` matched transaction `tx` of stage `stage`; false if already recorded.
    pub(crate) fn first_tx_alert(&mut self, stage: u8, tx: u64, rule: u32) -> bool {
        if self.tx_alerts.contains(&(stage, tx, rule)) {
            return false;
        }
        if self.tx_alerts.len() >= MAX_TX_ALERTS_REMEMBERED {
            self.tx_alerts.remove(0);
        }
        self.tx_alerts.push((stage, tx, rule));
        true
    }
}

#[derive(Debug, Clone, Copy)]
struct ThresholdEntry {
    first: Timestamp,
    count: u32,
    /// For `both`: alerted in this window already.
    alerted: bool,
}

/// Per-worker reusable state. Create one per worker thread and pass it to every inspection.
#[derive(Debug, Default)]
pub struct DetectScratch {
    /// Per-rule stamp: rule `i` is a candidate of the current inspection when `marks[i] == stamp`.
    pub(crate) marks: Vec<u32>,
    pub(crate) stamp: u32,
    pub(crate) candidates: Vec<u32>,
    pub(crate) transform_a: Vec<u8>,
    pub(crate) transform_b: Vec<u8>,
    pub(crate) base64: Vec<u8>,
    pub(crate) lower: Vec<u8>,
    thresholds: HashMap<(u32, u64, IpAddr, IpAddr), ThresholdEntry>,
    /// xbits: (generation, bit, host a, host b) → expiry.
    xbits: HashMap<(u64, u32, IpAddr, IpAddr), Timestamp>,
    /// Runs pcre searches under this worker's limits and counts the ones they stopped.
    pub(crate) pcre: BoundedMatcher,
    /// Rules whose pcre reached a limit since the last drain, each once.
    pcre_limited: Vec<Arc<RuleInfo>>,
}

impl DetectScratch {
    /// Scratch space with Suricata's PCRE limits ([`PcreLimits::default`]).
    pub fn new() -> Self {
        DetectScratch::default()
    }

    /// Scratch space whose pcre searches run under `limits`.
    pub fn with_pcre_limits(limits: PcreLimits) -> Self {
        DetectScratch { pcre: BoundedMatcher::new(limits), ..DetectScratch::default() }
    }

    pub fn pcre_limits(&self) -> PcreLimits {
        self.pcre.limits()
    }

    /// pcre searches stopped by a limit (and so treated as not matching) since this scratch
    /// space was made.
    pub fn pcre_limit_hits(&self) -> u64 {
        self.pcre.limit_hits()
    }

    /// The rules whose pcre reached a limit since the last call, each once, in the order they
    /// were met (at most [`MAX_PCRE_LIMITED_PENDING`]).
    pub fn drain_pcre_limited(&mut self) -> std::vec::Drain<'_, Arc<RuleInfo>> {
        self.pcre_limited.drain(..)
    }

    pub(crate) fn note_pcre_limited(&mut self, rule: &Arc<RuleInfo>) {
        if self.pcre_limited.len() < MAX_PCRE_LIMITED_PENDING && !self.pcre_limited.iter().any(|r| Arc::ptr_eq(r, rule)) {
            self.pcre_limited.push(rule.clone());
        }
    }

    /// Starts a new inspection over `rules` rules: clears the candidate list.
    pub(crate) fn begin(&mut self, rules: usize) {
        if self.marks.len() != rules {
            self.marks = vec![0; rules];
            self.stamp = 0;
        }
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.marks.iter_mut().for_each(|m| *m = 0);
            self.stamp = 1;
        }
        self.candidates.clear();
    }

    #[inline]
    pub(crate) fn mark(&mut self, rule: u32) {
        if let Some(m) = self.marks.get_mut(rule as usize) {
            if *m != self.stamp {
                *m = self.stamp;
                self.candidates.push(rule);
            }
        }
    }

    fn xbit_key(generation: u64, op: &XbitOp, src: IpAddr, dst: IpAddr) -> (u64, u32, IpAddr, IpAddr) {
        let none = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        match op.track {
            XbitTrack::IpSrc => (generation, op.id, src, none),
            XbitTrack::IpDst => (generation, op.id, dst, none),
            XbitTrack::IpPair => {
                let (a, b) = if src <= dst { (src, dst) } else { (dst, src) };
                (generation, op.id, a, b)
            }
        }
    }

    pub(crate) fn xbit_isset(&self, generation: u64, op: &XbitOp, src: IpAddr, dst: IpAddr, now: Timestamp) -> bool {
        self.xbits.get(&Self::xbit_key(generation, op, src, dst)).is_some_and(|&exp| exp > now)
    }

    pub(crate) fn xbit_apply(&mut self, generation: u64, op: &XbitOp, src: IpAddr, dst: IpAddr, now: Timestamp) {
        let key = Self::xbit_key(generation, op, src, dst);
        let set = match op.cmd {
            XbitCmd::Set => true,
            XbitCmd::Unset => false,
            XbitCmd::Toggle => !self.xbit_isset(generation, op, src, dst, now),
            XbitCmd::IsSet | XbitCmd::IsNotSet => return,
        };
        if !set {
            self.xbits.remove(&key);
            return;
        }
        if self.xbits.len() >= MAX_XBITS_ENTRIES && !self.xbits.contains_key(&key) {
            self.xbits.retain(|k, exp| *exp > now && k.0 == generation);
            if self.xbits.len() >= MAX_XBITS_ENTRIES {
                tracing::warn!(entries = self.xbits.len(), "xbits table full, clearing it");
                self.xbits.clear();
            }
        }
        self.xbits.insert(key, now.saturating_add_micros(op.expire as i64 * 1_000_000));
    }

    /// Number of threshold entries held (for tests and metrics).
    pub fn threshold_entries(&self) -> usize {
        self.thresholds.len()
    }

    /// Applies a threshold or detection_filter to a match; true when the alert should be written.
    pub(crate) fn threshold_allows(&mut self, gid: u32, sid: u64, t: &Threshold, src: IpAddr, dst: IpAddr, now: Timestamp) -> bool {
        let unspecified = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let (a, b) = match t.track {
            Track::BySrc => (src, unspecified),
            Track::ByDst => (dst, unspecified),
            Track::ByRule => (unspecified, unspecified),
            Track::ByBoth => (src, dst),
        };
        let kind_tag = match t.kind {
            ThresholdKind::DetectionFilter => 1u32 << 31,
            _ => 0,
        };
        let key = (gid | kind_tag, sid, a, b);
        let window = t.seconds as i64 * 1_000_000;
        if self.thresholds.len() >= MAX_THRESHOLD_ENTRIES && !self.thresholds.contains_key(&key) {
            self.thresholds.retain(|_, e| now.as_micros() - e.first.as_micros() <= window.max(0));
            if self.thresholds.len() >= MAX_THRESHOLD_ENTRIES {
                tracing::warn!(entries = self.thresholds.len(), "threshold table full, clearing it");
                self.thresholds.clear();
            }
        }
        let e = self.thresholds.entry(key).or_insert(ThresholdEntry { first: now, count: 0, alerted: false });
        if now.as_micros() - e.first.as_micros() > window {
            *e = ThresholdEntry { first: now, count: 0, alerted: false };
        }
        e.count = e.count.saturating_add(1);
        match t.kind {
            ThresholdKind::Limit => e.count <= t.count,
            ThresholdKind::Threshold => {
                if e.count >= t.count {
                    // Alert every `count`-th match; the window restarts with it.
                    *e = ThresholdEntry { first: now, count: 0, alerted: false };
                    true
                } else {
                    false
                }
            }
            ThresholdKind::Both => {
                if e.count >= t.count && !e.alerted {
                    e.alerted = true;
                    true
                } else {
                    false
                }
            }
            ThresholdKind::DetectionFilter => e.count > t.count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(kind: ThresholdKind, count: u32, seconds: u32) -> Threshold {
        Threshold { kind, track: Track::BySrc, count, seconds }
    }

    fn run(th: &Threshold, times: &[i64]) -> Vec<bool> {
        let mut s = DetectScratch::new();
        let src: IpAddr = "1.2.3.4".parse().unwrap();
        let dst: IpAddr = "5.6.7.8".parse().unwrap();
        times.iter().map(|&sec| s.threshold_allows(1, 7, th, src, dst, Timestamp::from_secs_micros(sec, 0))).collect()
    }

    #[test]
    fn limit_threshold_both_detection_filter() {
        assert_eq!(run(&t(ThresholdKind::Limit, 2, 60), &[0, 1, 2, 3, 61, 62, 63]), [true, true, false, false, true, true, false]);
        assert_eq!(run(&t(ThresholdKind::Threshold, 3, 60), &[0, 1, 2, 3, 4, 5]), [false, false, true, false, false, true]);
        assert_eq!(run(&t(ThresholdKind::Both, 3, 60), &[0, 1, 2, 3, 4, 61, 62, 63]), [false, false, true, false, false, false, false, true]);
        assert_eq!(run(&t(ThresholdKind::DetectionFilter, 2, 60), &[0, 1, 2, 3, 70]), [false, false, true, true, false]);
    }

    #[test]
    fn tracks_are_separate() {
        let mut s = DetectScratch::new();
        let th = t(ThresholdKind::Limit, 1, 60);
        let a: IpAddr = "1.1.1.1".parse().unwrap();
        let b: IpAddr = "2.2.2.2".parse().unwrap();
        let now = Timestamp::from_secs_micros(10, 0);
        assert!(s.threshold_allows(1, 1, &th, a, b, now));
        assert!(!s.threshold_allows(1, 1, &th, a, b, now));
        assert!(s.threshold_allows(1, 1, &th, b, a, now));
        assert!(s.threshold_allows(1, 2, &th, a, b, now));
        assert_eq!(s.threshold_entries(), 3);
    }

    #[test]
    fn flowbits_and_generation() {
        let mut f = FlowDetect::new();
        f.sync(1);
        f.set(5);
        f.set(2);
        f.set(5);
        assert!(f.isset(5) && f.isset(2) && !f.isset(3));
        assert_eq!(f.flowbit_count(), 2);
        f.unset(5);
        assert!(!f.isset(5));
        f.sync(2);
        assert_eq!(f.flowbit_count(), 0);
        assert!(f.first_tx_alert(1, 0, 9));
        assert!(!f.first_tx_alert(1, 0, 9));
        assert!(f.first_tx_alert(1, 1, 9));
    }
}
