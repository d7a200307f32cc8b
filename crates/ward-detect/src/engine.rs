//! The compiled rule set and its inspection entry points.
//!
//! Rules are grouped by [`Stage`]. Within a stage each rule is reached in exactly one of four
//! ways, chosen at build time:
//! * **domain sets**: a rule whose fast pattern is a whole domain or a domain suffix on
//!   `dns.query`, `tls.sni` or `http.host` (content + `endswith`, optionally after `dotprefix`,
//!   or content with `bsize` equal to its length) is found by hash lookups of the buffer's
//!   suffixes (one lookup per suffix length present in the set), not by the automaton;
//! * **prefilter**: other rules with a fast pattern are candidates when the pattern occurs in
//!   the buffer ([`crate::prefilter`], one per stage and buffer); large raw-payload sets are
//!   split into port groups (`groups.rs`), so a packet is searched only for the patterns of
//!   rules whose direction, app protocol and ports admit it;
//! * **IP index**: packet rules without a pattern whose source or destination is a narrow
//!   address set (IP reputation lists) are found by a binary search over address intervals;
//! * **group list**: everything else is checked on every inspection of its stage, cheapest
//!   conditions (protocol, ports, addresses) first.
//!
//! Candidates are then fully verified (header, flow, flowbits, every buffer's keywords), in
//! rule order; rules that only set flowbits are ordered before rules that test them, so a bit
//! set and tested by the same packet behaves as in Suricata. A rule whose pcre search was
//! stopped by the PCRE limits does not match; it is recorded in the scratch space
//! ([`DetectScratch::drain_pcre_limited`]) for the caller to report, and inspection goes on.
//!
//! A `RuleSet` is immutable once built and shared by all workers behind an `Arc`; per-flow and
//! per-worker state live in [`FlowDetect`] and [`DetectScratch`].

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::buffer::{Buffer, Stage};
use crate::groups::{PayloadGroups, GROUP_MIN_PATTERNS};
use crate::elements::{match_elements, Element, MatchCtx, Val, MAX_BYTE_VARS};
use crate::input::{DnsInput, HttpInput, PacketInput, TlsInput};
use crate::prefilter::{self, Prefilter};
use crate::rule::*;
use crate::state::{DetectScratch, FlowDetect};

/// An address set of at most this many addresses is "narrow" and goes into the IP index
/// (a /12 holds 2^20); wider ones ($HOME_NET, any) would make the index useless.
pub const IP_INDEX_MAX_SPAN: u128 = 1 << 20;
/// Longest domain pattern the domain sets index; longer ones use the prefilter.
pub const MAX_DOMAIN_PATTERN: usize = 1024;

static GENERATION: AtomicU64 = AtomicU64::new(1);


/// Address ranges (v4, v6) tagged with a rule index, before [`IpIndex::build`].
type RangeEntries = (Vec<(u32, u32, u32)>, Vec<(u128, u128, u32)>);
/// One buffer key's fast patterns while the set is built.
#[derive(Default)]
struct PatternBuild {
    /// Pattern -> index.
    index: HashMap<Vec<u8>, usize>,
    patterns: Vec<prefilter::Pattern>,
    /// Rules of each pattern.
    rules: Vec<Vec<u32>>,
}

impl PatternBuild {
    fn add(&mut self, bytes: &[u8], max_end: Option<u32>, rule: u32) {
        let pi = match self.index.get(bytes) {
            Some(&pi) => {
                // One pattern, several rules: it may end anywhere any of them allows.
                let p = &mut self.patterns[pi];
                p.max_end = p.max_end.zip(max_end).map(|(a, b)| a.max(b));
                pi
            }
            None => {
                self.patterns.push(prefilter::Pattern { bytes: bytes.to_vec(), max_end });
                self.rules.push(vec![]);
                self.index.insert(bytes.to_vec(), self.patterns.len() - 1);
                self.patterns.len() - 1
            }
        };
        self.rules[pi].push(rule);
    }
}

/// Where a rule's fast pattern must end for the rule to match, when its content is anchored
/// (`offset`/`depth` or `startswith` with literal values, not relative): the prefilter may
/// ignore occurrences ending later.
fn fast_pattern_end(rule: &Rule) -> Option<u32> {
    let fp = rule.fast.as_ref()?;
    let Element::Content(c) = rule.buffers.get(fp.buffer_idx)?.elements.get(fp.element_idx)? else { return None };
    if c.negated || c.distance.is_some() || c.within.is_some() {
        return None;
    }
    let offset = match c.offset {
        None => 0,
        Some(Val::Lit(o)) => o.max(0),
        Some(Val::Var(_)) => return None,
    };
    let mut end: Option<i64> = match c.depth {
        Some(Val::Lit(d)) => Some(offset.saturating_add(d.max(0))),
        Some(Val::Var(_)) => return None,
        None => None,
    };
    if c.startswith {
        let e = offset.saturating_add(c.pattern.len() as i64);
        end = Some(end.map_or(e, |x| x.min(e)));
    }
    end.map(|e| e.clamp(0, u32::MAX as i64) as u32)
}

/// A rule that matched and should be alerted.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    pub info: Arc<RuleInfo>,
    /// The app-layer transaction the match belongs to (HTTP/DNS), if any.
    pub tx_id: Option<u64>,
}

/// Counts describing how the rules were indexed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RuleSetStats {
    pub rules: usize,
    pub packet: usize,
    pub http_request: usize,
    pub http_response: usize,
    pub dns: usize,
    pub tls: usize,
    pub prefiltered: usize,
    pub domain_set: usize,
    pub ip_index: usize,
    pub group_list: usize,
    pub prefilter_bytes: usize,
    pub flowbits: usize,
}

/// Which concrete input field a (stage, buffer) pair reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct BufKey {
    buffer: Buffer,
    /// For direction-dependent HTTP buffers: read the response side.
    response: bool,
    /// Packet-stage payload automata are split by transport ([`l4_group`]); 0 elsewhere.
    l4: u8,
}

/// Transport group of a packet for the packet-stage automata: 1 TCP, 2 UDP, 3 anything else.
/// A UDP packet then never scans the (much larger) TCP pattern set.
fn l4_group(ip_proto: u8) -> u8 {
    match ip_proto {
        6 => 1,
        17 => 2,
        _ => 3,
    }
}

#[derive(Debug)]
struct BufferPrefilter {
    key: BufKey,
    prefilter: Box<dyn Prefilter>,
    /// Rules of each pattern (patterns are deduplicated).
    pattern_rules: Vec<Vec<u32>>,
}

#[derive(Debug, Default)]
struct DomainIndex {
    key: Option<BufKey>,
    dotprefix: bool,
    map: HashMap<Box<[u8]>, Vec<u32>>,
    lengths: Vec<bool>,
}

/// Non-overlapping address intervals, each with the rules whose narrow side covers it.
#[derive(Debug, Default)]
struct IpIndex {
    v4: Vec<(u32, u32, u32, u32)>,
    v6: Vec<(u128, u128, u32, u32)>,
    ids: Vec<u32>,
}

impl IpIndex {
    fn build(v4: Vec<(u32, u32, u32)>, v6: Vec<(u128, u128, u32)>) -> IpIndex {
        let mut idx = IpIndex::default();
        idx.v4 = sweep(v4, &mut idx.ids);
        idx.v6 = sweep(v6, &mut idx.ids);
        idx
    }

    fn lookup(&self, ip: IpAddr, out: &mut dyn FnMut(u32)) {
        let (start, end) = match ip {
            IpAddr::V4(v4) => find(&self.v4, u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => find(&self.v4, u32::from(v4)),
                None => find(&self.v6, u128::from(v6)),
            },
        };
        for &id in &self.ids[start as usize..end as usize] {
            out(id);
        }
    }
}

fn find<T: Ord + Copy>(v: &[(T, T, u32, u32)], x: T) -> (u32, u32) {
    let i = v.partition_point(|e| e.0 <= x);
    if i == 0 || v[i - 1].1 < x {
        return (0, 0);
    }
    (v[i - 1].2, v[i - 1].3)
}

trait Bound: Ord + Copy {
    fn succ(self) -> Option<Self>;
    fn pred(self) -> Self;
}
impl Bound for u32 {
    fn succ(self) -> Option<Self> {
        self.checked_add(1)
    }
    fn pred(self) -> Self {
        self - 1
    }
}
impl Bound for u128 {
    fn succ(self) -> Option<Self> {
        self.checked_add(1)
    }
    fn pred(self) -> Self {
        self - 1
    }
}

/// Turns possibly-overlapping (lo, hi, rule) entries into disjoint intervals with rule lists.
fn sweep<T: Bound>(entries: Vec<(T, T, u32)>, ids: &mut Vec<u32>) -> Vec<(T, T, u32, u32)> {
    // Events: at `lo` a rule starts, after `hi` it ends (None = past the maximum).
    let mut starts: BTreeMap<T, Vec<u32>> = BTreeMap::new();
    let mut ends: BTreeMap<T, Vec<u32>> = BTreeMap::new();
    for &(lo, hi, r) in &entries {
        starts.entry(lo).or_default().push(r);
        if let Some(after) = hi.succ() {
            ends.entry(after).or_default().push(r);
        }
    }
    let mut points: Vec<T> = starts.keys().chain(ends.keys()).copied().collect();
    points.sort();
    points.dedup();
    let mut active: BTreeMap<u32, u32> = BTreeMap::new();
    let mut out = Vec::new();
    for (i, &p) in points.iter().enumerate() {
        if let Some(rs) = ends.get(&p) {
            for r in rs {
                if let Some(c) = active.get_mut(r) {
                    *c -= 1;
                    if *c == 0 {
                        active.remove(r);
                    }
                }
            }
        }
        if let Some(rs) = starts.get(&p) {
            for r in rs {
                *active.entry(*r).or_insert(0) += 1;
            }
        }
        if active.is_empty() {
            continue;
        }
        let hi = match points.get(i + 1) {
            Some(&next) => next.pred(),
            None => entries.iter().map(|e| e.1).max().unwrap_or(p),
        };
        let s = ids.len() as u32;
        ids.extend(active.keys().copied());
        out.push((p, hi, s, ids.len() as u32));
    }
    out
}

#[derive(Debug, Default)]
struct StageIndex {
    prefilters: Vec<BufferPrefilter>,
    /// Large packet-payload pattern sets, per transport group ([`l4_group`]), split by port.
    payload_groups: Vec<(u8, PayloadGroups)>,
    domains: Vec<DomainIndex>,
    group: Vec<u32>,
    ip_src: IpIndex,
    ip_dst: IpIndex,
}

/// A compiled, immutable rule set.
#[derive(Debug)]
pub struct RuleSet {
    rules: Vec<Rule>,
    generation: u64,
    stages: Vec<StageIndex>,
    stats: RuleSetStats,
}

fn stage_index(s: Stage) -> usize {
    match s {
        Stage::Packet => 0,
        Stage::HttpRequest => 1,
        Stage::HttpResponse => 2,
        Stage::Dns => 3,
        Stage::Tls => 4,
    }
}

/// The app-layer unit under inspection.
#[derive(Clone, Copy)]
enum App<'i, 'a> {
    None,
    Http(&'i HttpInput<'a>),
    Dns(&'i DnsInput<'a>),
    Tls(&'i TlsInput<'a>),
}

fn rule_key(rule: &Rule, buffer: Buffer) -> BufKey {
    let response = match rule.stage {
        Stage::HttpResponse => rule.flow.to_server != Some(true),
        _ => false,
    };
    BufKey { buffer, response, l4: 0 }
}

/// The prefilter keys of a rule's fast pattern: one per transport group it can match for
/// packet-stage payload rules, else the plain key (with `file_data` folded into the body buffer
/// it reads).
fn prefilter_keys(rule: &Rule, buffer: Buffer) -> Vec<BufKey> {
    let mut key = rule_key(rule, buffer);
    // `file_data` reads the same body as `http.request_body` / `http.response_body`
    // ([`buffer_instance`]): one automaton and one pass over the body for both.
    if buffer == Buffer::FileData {
        key.buffer = if key.response { Buffer::HttpResponseBody } else { Buffer::HttpRequestBody };
    }
    if rule.stage != Stage::Packet || buffer != Buffer::Packet {
        return vec![key];
    }
    let mut groups: Vec<u8> = if rule.proto.ip_protos.is_empty() {
        vec![1, 2, 3]
    } else {
        rule.proto.ip_protos.iter().map(|&p| l4_group(p)).collect()
    };
    groups.sort_unstable();
    groups.dedup();
    groups.into_iter().map(|l4| BufKey { l4, ..key }).collect()
}

impl RuleSet {
    /// Builds the indexes over compiled rules. Never fails: a rule that cannot be indexed is
    /// verified on every inspection of its stage instead.
    pub fn build(mut rules: Vec<Rule>, flowbit_names: usize) -> RuleSet {
        // Setters of flowbits before testers.
        rules.sort_by_key(|r| {
            let sets = r.flowbits.iter().any(|f| !f.is_condition()) || r.xbits.iter().any(|x| !matches!(x.cmd, XbitCmd::IsSet | XbitCmd::IsNotSet));
            let tests = r.flowbits.iter().any(|f| f.is_condition()) || r.xbits.iter().any(|x| matches!(x.cmd, XbitCmd::IsSet | XbitCmd::IsNotSet));
            match (sets, tests) {
                (true, false) => 0u8,
                (false, false) => 1,
                _ => 2,
            }
        });
        let mut stats = RuleSetStats { rules: rules.len(), flowbits: flowbit_names, ..Default::default() };
        let mut stages: Vec<StageIndex> = (0..5).map(|_| StageIndex::default()).collect();
        // Per stage: key -> (pattern -> pattern index), patterns, rules per pattern.
        let mut pf_build: Vec<HashMap<BufKey, PatternBuild>> = (0..5).map(|_| HashMap::new()).collect();
        let mut ip_src: RangeEntries = (vec![], vec![]);
        let mut ip_dst: RangeEntries = (vec![], vec![]);

        for (i, rule) in rules.iter().enumerate() {
            let id = i as u32;
            let si = stage_index(rule.stage);
            match rule.stage {
                Stage::Packet => stats.packet += 1,
                Stage::HttpRequest => stats.http_request += 1,
                Stage::HttpResponse => stats.http_response += 1,
                Stage::Dns => stats.dns += 1,
                Stage::Tls => stats.tls += 1,
            }
            if let Some(fp) = &rule.fast {
                let m = &rule.buffers[fp.buffer_idx];
                let key = rule_key(rule, m.buffer);
                if let Some(dotprefix) = domain_eligible(rule, fp) {
                    let stage = &mut stages[si];
                    let di = match stage.domains.iter().position(|d| d.key == Some(key) && d.dotprefix == dotprefix) {
                        Some(di) => di,
                        None => {
                            stage.domains.push(DomainIndex { key: Some(key), dotprefix, map: HashMap::new(), lengths: vec![false; MAX_DOMAIN_PATTERN + 1] });
                            stage.domains.len() - 1
                        }
                    };
                    let d = &mut stage.domains[di];
                    let lower: Box<[u8]> = fp.bytes.to_ascii_lowercase().into_boxed_slice();
                    d.lengths[lower.len()] = true;
                    d.map.entry(lower).or_default().push(id);
                    stats.domain_set += 1;
                    continue;
                }
                if m.transforms.is_empty() && m.buffer != Buffer::Base64 {
                    let end = fast_pattern_end(rule);
                    for key in prefilter_keys(rule, m.buffer) {
                        pf_build[si].entry(key).or_default().add(&fp.bytes, end, id);
                    }
                    stats.prefiltered += 1;
                    continue;
                }
            }
            if rule.stage == Stage::Packet && rule.buffers.is_empty() {
                let (s, d) = (rule.src.size_hint(), rule.dst.size_hint());
                let narrow_src = s <= IP_INDEX_MAX_SPAN && (s <= d || d > IP_INDEX_MAX_SPAN);
                let narrow_dst = d <= IP_INDEX_MAX_SPAN && !narrow_src;
                if narrow_src || narrow_dst {
                    let set = if narrow_src { &rule.src } else { &rule.dst };
                    let add = |target: &mut RangeEntries| {
                        target.0.extend(set.v4_ranges().iter().map(|&(a, b)| (a, b, id)));
                        target.1.extend(set.v6_ranges().iter().map(|&(a, b)| (a, b, id)));
                    };
                    if narrow_src {
                        add(&mut ip_src);
                        if rule.bidirectional {
                            add(&mut ip_dst);
                        }
                    } else {
                        add(&mut ip_dst);
                        if rule.bidirectional {
                            add(&mut ip_src);
                        }
                    }
                    stats.ip_index += 1;
                    continue;
                }
            }
            stages[si].group.push(id);
            stats.group_list += 1;
        }
        for (si, builds) in pf_build.into_iter().enumerate() {
            let mut keys: Vec<_> = builds.into_iter().collect();
            keys.sort_by_key(|(k, _)| (k.buffer, k.response, k.l4));
            for (key, PatternBuild { patterns, rules: pattern_rules, .. }) in keys {
                if key.buffer == Buffer::Packet && key.l4 != 0 && patterns.len() >= GROUP_MIN_PATTERNS {
                    let mut entries = Vec::new();
                    for (pat, rs) in patterns.iter().zip(&pattern_rules) {
                        entries.extend(rs.iter().map(|&r| (r, pat.clone())));
                    }
                    stages[si].payload_groups.push((key.l4, PayloadGroups::new(entries, &rules)));
                    continue;
                }
                match prefilter::build(&patterns) {
                    Some(pf) => {
                        stats.prefilter_bytes += pf.memory_usage();
                        stages[si].prefilters.push(BufferPrefilter { key, prefilter: pf, pattern_rules });
                    }
                    None => {
                        for rs in pattern_rules {
                            stages[si].group.extend(rs);
                        }
                    }
                }
            }
            stages[si].group.sort_unstable();
        }
        stages[0].ip_src = IpIndex::build(ip_src.0, ip_src.1);
        stages[0].ip_dst = IpIndex::build(ip_dst.0, ip_dst.1);
        RuleSet { rules, generation: GENERATION.fetch_add(1, Ordering::Relaxed), stages, stats }
    }

    /// An empty rule set (no alerts).
    pub fn empty() -> RuleSet {
        RuleSet::build(vec![], 0)
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn stats(&self) -> &RuleSetStats {
        &self.stats
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// A rule by `sid` (gid 1), for tests and tools.
    /// Port groups built so far, over all payload sets (tests).
    #[cfg(test)]
    pub(crate) fn groups_built(&self) -> usize {
        self.stages.iter().flat_map(|s| &s.payload_groups).map(|(_, g)| g.built()).sum()
    }

    pub fn rule_by_sid(&self, sid: u64) -> Option<&Rule> {
        self.rules.iter().find(|r| r.info.sid == sid)
    }

    /// Inspects one packet: header-only rules, IP reputation rules and payload/stream rules.
    /// Matches are appended to `out`.
    pub fn inspect_packet(&self, pkt: &PacketInput<'_>, flow: &mut FlowDetect, scratch: &mut DetectScratch, out: &mut Vec<Match>) {
        self.inspect(Stage::Packet, pkt, App::None, None, flow, scratch, out);
    }

    /// Inspects an HTTP transaction: call with `pkt.to_server == true` when the request is
    /// complete (headers and body) and with `false` when the response is complete.
    pub fn inspect_http(&self, pkt: &PacketInput<'_>, tx: &HttpInput<'_>, flow: &mut FlowDetect, scratch: &mut DetectScratch, out: &mut Vec<Match>) {
        let stage = if pkt.to_server { Stage::HttpRequest } else { Stage::HttpResponse };
        self.inspect(stage, pkt, App::Http(tx), Some(tx.tx_id), flow, scratch, out);
    }

    /// Inspects a DNS message (query or response).
    pub fn inspect_dns(&self, pkt: &PacketInput<'_>, dns: &DnsInput<'_>, flow: &mut FlowDetect, scratch: &mut DetectScratch, out: &mut Vec<Match>) {
        self.inspect(Stage::Dns, pkt, App::Dns(dns), Some(dns.tx_id), flow, scratch, out);
    }

    /// Inspects a TLS handshake as seen so far (call after the client hello and again after the
    /// server's hello/certificates); each rule alerts at most once per flow.
    pub fn inspect_tls(&self, pkt: &PacketInput<'_>, tls: &TlsInput<'_>, flow: &mut FlowDetect, scratch: &mut DetectScratch, out: &mut Vec<Match>) {
        self.inspect(Stage::Tls, pkt, App::Tls(tls), Some(0), flow, scratch, out);
    }

    #[allow(clippy::too_many_arguments)]
    fn inspect(&self, stage: Stage, pkt: &PacketInput<'_>, app: App<'_, '_>, tx: Option<u64>, flow: &mut FlowDetect, scratch: &mut DetectScratch, out: &mut Vec<Match>) {
        if self.rules.is_empty() {
            return;
        }
        flow.sync(self.generation);
        scratch.begin(self.rules.len());
        let index = &self.stages[stage_index(stage)];

        // Candidates from the prefilters.
        for bp in &index.prefilters {
            let run = |hay: &[u8], scratch: &mut DetectScratch| {
                if hay.is_empty() {
                    return;
                }
                bp.prefilter.for_each_candidate(hay, &mut |p| {
                    if let Some(rs) = bp.pattern_rules.get(p) {
                        for &r in rs {
                            scratch.mark(r);
                        }
                    }
                });
            };
            if bp.key.l4 != 0 && bp.key.l4 != l4_group(pkt.ip_proto) {
                continue;
            }
            if bp.key.buffer == Buffer::Packet {
                run(pkt.payload, scratch);
                // In-order segments make the stream window equal to the payload: scan once.
                if let Some(s) = pkt.stream.filter(|s| *s != pkt.payload) {
                    run(s, scratch);
                }
                continue;
            }
            let mut i = 0;
            while let Some(v) = buffer_instance(bp.key, pkt, app, i) {
                run(v, scratch);
                i += 1;
                if !bp.key.buffer.is_multi() {
                    break;
                }
            }
        }
        // Candidates from the port-grouped payload sets.
        for (l4, groups) in &index.payload_groups {
            if *l4 != l4_group(pkt.ip_proto) {
                continue;
            }
            let stream = pkt.stream.filter(|s| !s.is_empty() && *s != pkt.payload);
            if pkt.payload.is_empty() && stream.is_none() {
                continue;
            }
            let group = groups.select(&self.rules, self.generation, pkt);
            for &r in &group.always {
                scratch.mark(r);
            }
            if let Some(pf) = &group.prefilter {
                for hay in [Some(pkt.payload), stream].into_iter().flatten().filter(|h| !h.is_empty()) {
                    pf.for_each_candidate(hay, &mut |p| {
                        if let Some(rs) = group.pattern_rules.get(p) {
                            for &r in rs {
                                scratch.mark(r);
                            }
                        }
                    });
                }
            }
        }
        // Candidates from the domain sets.
        for d in &index.domains {
            let Some(key) = d.key else { continue };
            let mut i = 0;
            while let Some(v) = buffer_instance(key, pkt, app, i) {
                let mut lower = std::mem::take(&mut scratch.lower);
                lower.clear();
                if d.dotprefix {
                    lower.push(b'.');
                }
                lower.extend(v.iter().map(|b| b.to_ascii_lowercase()));
                for start in 0..lower.len() {
                    let len = lower.len() - start;
                    if len < d.lengths.len() && d.lengths[len] {
                        if let Some(rs) = d.map.get(&lower[start..]) {
                            for &r in rs {
                                scratch.mark(r);
                            }
                        }
                    }
                }
                scratch.lower = lower;
                i += 1;
                if !key.buffer.is_multi() {
                    break;
                }
            }
        }
        if stage == Stage::Packet {
            index.ip_src.lookup(pkt.src_ip, &mut |r| scratch.mark(r));
            index.ip_dst.lookup(pkt.dst_ip, &mut |r| scratch.mark(r));
        }
        for &r in &index.group {
            scratch.mark(r);
        }
        let mut candidates = std::mem::take(&mut scratch.candidates);
        candidates.sort_unstable();

        let first_out = out.len();
        let mut pass = false;
        for &ri in &candidates {
            let rule = &self.rules[ri as usize];
            let limit_hits = scratch.pcre.limit_hits();
            let matched = self.verify(rule, stage, pkt, app, flow, scratch);
            if scratch.pcre.limit_hits() != limit_hits {
                scratch.note_pcre_limited(&rule.info);
            }
            if !matched {
                continue;
            }
            for op in &rule.flowbits {
                match op {
                    FlowbitOp::Set(ids) => ids.iter().for_each(|&b| flow.set(b)),
                    FlowbitOp::Unset(ids) => ids.iter().for_each(|&b| flow.unset(b)),
                    FlowbitOp::Toggle(ids) => ids.iter().for_each(|&b| {
                        if flow.isset(b) {
                            flow.unset(b)
                        } else {
                            flow.set(b)
                        }
                    }),
                    _ => {}
                }
            }
            for x in &rule.xbits {
                scratch.xbit_apply(self.generation, x, pkt.src_ip, pkt.dst_ip, pkt.ts);
            }
            if rule.info.action == Action::Pass {
                pass = true;
                continue;
            }
            if rule.noalert {
                continue;
            }
            if let Some(t) = tx {
                if !flow.first_tx_alert(stage_index(stage) as u8, t, ri) {
                    continue;
                }
            }
            if let Some(df) = &rule.detection_filter {
                if !scratch.threshold_allows(rule.info.gid, rule.info.sid, df, pkt.src_ip, pkt.dst_ip, pkt.ts) {
                    continue;
                }
            }
            if let Some(th) = &rule.threshold {
                if !scratch.threshold_allows(rule.info.gid, rule.info.sid, th, pkt.src_ip, pkt.dst_ip, pkt.ts) {
                    continue;
                }
            }
            out.push(Match { info: rule.info.clone(), tx_id: tx });
        }
        if pass {
            out.truncate(first_out);
        }
        candidates.clear();
        scratch.candidates = candidates;
    }

    fn verify(&self, rule: &Rule, stage: Stage, pkt: &PacketInput<'_>, app: App<'_, '_>, flow: &FlowDetect, scratch: &mut DetectScratch) -> bool {
        if !header_matches(rule, stage, pkt, app) {
            return false;
        }
        for op in &rule.flowbits {
            let ok = match op {
                FlowbitOp::IsSetAll(ids) => ids.iter().all(|&b| flow.isset(b)),
                FlowbitOp::IsSetAny(ids) => ids.iter().any(|&b| flow.isset(b)),
                FlowbitOp::IsNotSetAll(ids) => ids.iter().all(|&b| !flow.isset(b)),
                FlowbitOp::IsNotSetAny(ids) => ids.iter().any(|&b| !flow.isset(b)),
                _ => true,
            };
            if !ok {
                return false;
            }
        }
        for x in &rule.xbits {
            let ok = match x.cmd {
                XbitCmd::IsSet => scratch.xbit_isset(self.generation, x, pkt.src_ip, pkt.dst_ip, pkt.ts),
                XbitCmd::IsNotSet => !scratch.xbit_isset(self.generation, x, pkt.src_ip, pkt.dst_ip, pkt.ts),
                _ => true,
            };
            if !ok {
                return false;
            }
        }
        let mut vars = [0u64; MAX_BYTE_VARS];
        for m in &rule.buffers {
            if m.buffer == Buffer::Base64 {
                let data = std::mem::take(&mut scratch.base64);
                let ok = match_buffer(m, &data, &mut vars, scratch);
                scratch.base64 = data;
                if !ok {
                    return false;
                }
                continue;
            }
            if m.buffer == Buffer::Packet {
                match packet_data(rule, pkt) {
                    Some(v) if match_buffer(m, v, &mut vars, scratch) => continue,
                    // The stream window starts wherever the previous inspection left off, so a
                    // rule anchored at the start of a segment (depth/offset) is also tried on
                    // the packet itself, as Suricata inspects both packet and stream payloads.
                    Some(v) if !std::ptr::eq(v, pkt.payload)
                        && !pkt.payload.is_empty()
                        && rule.proto.stream != Some(true)
                        && rule.flow.stream != Some(true)
                        && match_buffer(m, pkt.payload, &mut vars, scratch) =>
                    {
                        continue
                    }
                    _ => return false,
                }
            }
            let key = rule_key(rule, m.buffer);
            let mut matched = false;
            let mut i = 0;
            while let Some(value) = buffer_instance(key, pkt, app, i) {
                if match_buffer(m, value, &mut vars, scratch) {
                    matched = true;
                    break;
                }
                i += 1;
                if !m.buffer.is_multi() {
                    break;
                }
            }
            if !matched {
                return false;
            }
        }
        true
    }
}

/// Checks size, transforms and keywords of one buffer value.
fn match_buffer(m: &BufferMatch, value: &[u8], vars: &mut [u64; MAX_BYTE_VARS], scratch: &mut DetectScratch) -> bool {
    let mut a = std::mem::take(&mut scratch.transform_a);
    let mut b = std::mem::take(&mut scratch.transform_b);
    // None: the value itself; Some(true): last written to `a`; Some(false): to `b`.
    let mut cur: Option<bool> = None;
    for t in &m.transforms {
        cur = match cur {
            None => {
                t.apply(value, &mut a);
                Some(true)
            }
            Some(true) => {
                t.apply(&a, &mut b);
                Some(false)
            }
            Some(false) => {
                t.apply(&b, &mut a);
                Some(true)
            }
        };
    }
    let data: &[u8] = match cur {
        None => value,
        Some(true) => &a,
        Some(false) => &b,
    };
    let ok = m.size.is_none_or(|s| s.test(data.len() as u64)) && {
        let mut ctx = MatchCtx { vars: *vars, steps: 0, base64: &mut scratch.base64, pcre: &mut scratch.pcre };
        let r = match_elements(data, &m.elements, 0, &mut ctx);
        if r {
            *vars = ctx.vars;
        }
        r
    };
    scratch.transform_a = a;
    scratch.transform_b = b;
    ok
}

/// The payload a packet rule inspects: the stream when available and allowed, else the packet.
fn packet_data<'a>(rule: &Rule, pkt: &PacketInput<'a>) -> Option<&'a [u8]> {
    let wants_stream = rule.proto.stream == Some(true) || rule.flow.stream == Some(true);
    let no_stream = rule.proto.stream == Some(false) || rule.flow.stream == Some(false);
    match pkt.stream {
        Some(s) if !no_stream && pkt.ip_proto == 6 => Some(s),
        _ if wants_stream => None,
        _ => Some(pkt.payload),
    }
}

fn buffer_instance<'a>(key: BufKey, pkt: &PacketInput<'a>, app: App<'_, 'a>, i: usize) -> Option<&'a [u8]> {
    use Buffer::*;
    match app {
        App::None => match key.buffer {
            Packet if i == 0 => Some(pkt.payload),
            _ => None,
        },
        App::Http(tx) => {
            if i > 0 {
                return None;
            }
            let r = key.response;
            match key.buffer {
                Packet => Some(pkt.payload),
                HttpUri => tx.uri,
                HttpUriRaw => tx.uri_raw,
                HttpMethod => tx.method,
                HttpHost => tx.host,
                HttpHostRaw => tx.host_raw,
                HttpUserAgent => tx.user_agent,
                HttpCookie => tx.cookie,
                HttpReferer => tx.referer,
                HttpAccept => tx.accept,
                HttpAcceptEnc => tx.accept_enc,
                HttpAcceptLang => tx.accept_lang,
                HttpRequestLine => tx.request_line,
                HttpRequestBody => tx.request_body,
                HttpStatCode => tx.stat_code,
                HttpStatMsg => tx.stat_msg,
                HttpResponseLine => tx.response_line,
                HttpResponseBody => tx.response_body,
                HttpServer => tx.server,
                HttpLocation => tx.location,
                HttpHeader => if r { tx.response_header } else { tx.request_header },
                HttpHeaderRaw => if r { tx.response_header_raw } else { tx.request_header_raw },
                HttpHeaderNames => if r { tx.response_header_names } else { tx.request_header_names },
                HttpContentType => if r { tx.response_content_type } else { tx.request_content_type },
                HttpContentLen => if r { tx.response_content_len } else { tx.request_content_len },
                HttpProtocol => if r { tx.response_protocol } else { tx.request_protocol },
                HttpStart => if r { tx.response_start } else { tx.request_start },
                HttpConnection => if r { tx.response_connection } else { tx.request_connection },
                FileData => if r { tx.response_body } else { tx.request_body },
                _ => None,
            }
        }
        App::Dns(d) => match key.buffer {
            DnsQuery => d.queries.get(i).copied(),
            Packet if i == 0 => Some(pkt.payload),
            _ => None,
        },
        App::Tls(t) => {
            if key.buffer == TlsCerts {
                return t.certs.get(i).copied();
            }
            if i > 0 {
                return None;
            }
            match key.buffer {
                Packet => Some(pkt.payload),
                TlsSni => t.sni,
                TlsCertSubject => t.cert_subject,
                TlsCertIssuer => t.cert_issuer,
                TlsCertSerial => t.cert_serial,
                TlsCertFingerprint => t.cert_fingerprint,
                Ja3Hash => t.ja3_hash,
                Ja3String => t.ja3_string,
                Ja3sHash => t.ja3s_hash,
                Ja3sString => t.ja3s_string,
                Ja4Hash => t.ja4_hash,
                _ => None,
            }
        }
    }
}

/// Whether the rule's fast pattern can go in a domain set; `Some(dotprefix)` if so.
fn domain_eligible(rule: &Rule, fp: &FastPattern) -> Option<bool> {
    let m = &rule.buffers[fp.buffer_idx];
    if !m.buffer.is_domain() || fp.bytes.len() > MAX_DOMAIN_PATTERN {
        return None;
    }
    let dotprefix = match m.transforms.as_slice() {
        [] => false,
        [Transform::DotPrefix] => true,
        _ => return None,
    };
    let Element::Content(c) = &m.elements[fp.element_idx] else { return None };
    if c.negated || c.fast_pattern_chop.is_some() {
        return None;
    }
    let exact_size = m.size == Some(NumCmp::Eq(c.pattern.len() as u64)) && c.offset.is_none() && !c.is_relative();
    (c.endswith || exact_size).then_some(dotprefix)
}

pub(crate) fn app_matches(rule_app: &str, pkt_app: Option<&str>) -> bool {
    match pkt_app {
        None => false,
        Some(a) => {
            if rule_app.starts_with("http") {
                a == "http" || a == "http1" || a == "http2" || a == rule_app
            } else {
                a.eq_ignore_ascii_case(rule_app)
            }
        }
    }
}

fn header_matches(rule: &Rule, stage: Stage, pkt: &PacketInput<'_>, app: App<'_, '_>) -> bool {
    if !rule.proto.ip_protos.is_empty() && !rule.proto.ip_protos.contains(&pkt.ip_proto) {
        return false;
    }
    if let Some(a) = &rule.proto.app {
        let ok = match stage {
            Stage::Packet => app_matches(a, pkt.app_proto),
            Stage::HttpRequest | Stage::HttpResponse => a.starts_with("http"),
            Stage::Dns => a == "dns",
            Stage::Tls => a == "tls",
        };
        if !ok {
            return false;
        }
    }
    let fwd = rule.sport.contains(pkt.src_port) && rule.dport.contains(pkt.dst_port) && rule.src.contains(pkt.src_ip) && rule.dst.contains(pkt.dst_ip);
    if !fwd {
        let rev = rule.bidirectional
            && rule.sport.contains(pkt.dst_port)
            && rule.dport.contains(pkt.src_port)
            && rule.src.contains(pkt.dst_ip)
            && rule.dst.contains(pkt.src_ip);
        if !rev {
            return false;
        }
    }
    if let Some(e) = rule.flow.established {
        if e != pkt.flow_established {
            return false;
        }
    }
    if let Some(d) = rule.flow.to_server {
        if d != pkt.to_server {
            return false;
        }
    }
    for h in &rule.header {
        let ok = match h {
            HeaderCheck::Dsize(c) => c.test(pkt.payload.len() as u64),
            HeaderCheck::Ttl(c) => c.test(pkt.ttl as u64),
            HeaderCheck::IpId(c) => c.test(pkt.ip_id as u64),
            HeaderCheck::Seq(v) => pkt.tcp.is_some_and(|t| t.seq == *v),
            HeaderCheck::Ack(v) => pkt.tcp.is_some_and(|t| t.ack == *v),
            HeaderCheck::Window { negated, value } => pkt.tcp.is_some_and(|t| (t.window == *value) != *negated),
            HeaderCheck::Itype(c) => pkt.icmp.is_some_and(|i| c.test(i.itype as u64)),
            HeaderCheck::Icode(c) => pkt.icmp.is_some_and(|i| c.test(i.icode as u64)),
            HeaderCheck::IcmpId(v) => pkt.icmp.is_some_and(|i| i.id == *v),
            HeaderCheck::IcmpSeq(v) => pkt.icmp.is_some_and(|i| i.seq == *v),
            HeaderCheck::IpProto(c) => c.test(pkt.ip_proto as u64),
            HeaderCheck::Flags { mode, want, ignore } => pkt.tcp.is_some_and(|t| mode.test(t.flags & !ignore, *want)),
            HeaderCheck::Fragbits { mode, want } => mode.test(pkt.frag_bits & 7, *want),
            HeaderCheck::SameIp => pkt.src_ip == pkt.dst_ip,
            HeaderCheck::StreamSize { side, cmp } => {
                let (srv, cli) = (pkt.bytes_toserver, pkt.bytes_toclient);
                match side {
                    StreamSide::Server => cmp.test(srv),
                    StreamSide::Client => cmp.test(cli),
                    StreamSide::Both => cmp.test(srv) && cmp.test(cli),
                    StreamSide::Either => cmp.test(srv) || cmp.test(cli),
                }
            }
            HeaderCheck::AppProto { negated, name } => app_matches(name, pkt.app_proto) != *negated,
            HeaderCheck::TlsVersion(v) => matches!(app, App::Tls(t) if t.version == Some(*v)),
            HeaderCheck::SslVersion { negated, versions } => match app {
                App::Tls(t) => t.version.is_some_and(|v| versions.contains(&v) != *negated),
                _ => false,
            },
            HeaderCheck::DnsOpcode { negated, value } => matches!(app, App::Dns(d) if (d.opcode == *value) != *negated),
        };
        if !ok {
            return false;
        }
    }
    true
}
