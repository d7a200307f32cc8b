//! Port groups for the packet-payload prefilters: Suricata's "signature group heads".
//!
//! A packet's raw payload only needs the fast patterns of the rules whose header can match it:
//! the right direction (`flow:to_server` / `to_client`), flow state (`flow:established`: most
//! rules do not apply to a session whose handshake was not seen), app-layer protocol
//! (`alert http ...`) and ports. In ET Open, of the 2,086 TCP payload patterns only 428 apply to
//! an HTTP response from port 80 and about 110 to an SMB, SSH or unclassified stream; a smaller
//! set means a cache-resident filter, fewer chance hits on short patterns, and fewer candidates
//! to verify.
//!
//! The ports are split into classes: the ranges of every rule's port sets cut 0..=65535 at
//! their boundaries, and two ports in one class are in exactly the same port sets. A packet's
//! group key is (direction, established or not, which rule app protocols match the flow's,
//! source and destination address classes (IPv4 in or outside RFC 1918, IPv6), source port
//! class, destination port class). Groups are built lazily, the first time a key is
//! seen (the key space is too large to enumerate, the keys traffic produces are few), and keys
//! with the same set of applicable rules share one filter. Each worker thread keeps its own map
//! from key to group, so the shared map's lock is taken only when a worker meets a key for the
//! first time.
//!
//! The group is a superset filter: every rule it returns is still verified in full, so a group
//! never changes what matches, only how many rules are looked at.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::input::PacketInput;
use crate::prefilter::{self, Pattern, Prefilter, MulHasher};
use crate::rule::Rule;

/// Packet-payload pattern sets with at least this many patterns are split into port groups;
/// smaller ones keep one automaton (the grouping costs a lookup per packet).
pub const GROUP_MIN_PATTERNS: usize = 64;
/// App-layer protocol names the key distinguishes; rules naming further protocols are put in
/// every group (still exact: verification checks the protocol).
const MAX_APPS: usize = 16;
/// A worker's key cache is cleared beyond this many entries (bounds memory on odd traffic).
const THREAD_CACHE_MAX: usize = 8192;
/// At most this many distinct groups are built (each costs tens of KB); a key that would need
/// another uses one group over the whole set instead (still exact: candidates are verified),
/// so traffic spraying port combinations cannot grow memory without bound.
pub(crate) const MAX_GROUPS: usize = 512;
/// Where the flow's established state sits in a group key (after the app mask's bits).
const ESTABLISHED_BIT: u32 = 20;
/// Where the source and destination address classes sit in a group key (2 bits each).
const SRC_ADDR_BITS: u32 = 21;
const DST_ADDR_BITS: u32 = 23;

/// RFC 1918 networks (Suricata's default `HOME_NET`), inclusive ranges.
const PRIVATE_V4: [(u32, u32); 3] = [(0x0a00_0000, 0x0aff_ffff), (0xac10_0000, 0xac1f_ffff), (0xc0a8_0000, 0xc0a8_ffff)];

/// An address's class for the group key: 0 an IPv4 address outside RFC 1918, 1 inside it,
/// 2 any IPv6 address. Rules over `$HOME_NET` / `$EXTERNAL_NET` (with the default networks)
/// then fall out of groups whose addresses they cannot match.
fn addr_class(ip: std::net::IpAddr) -> usize {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let a = u32::from(v4);
            PRIVATE_V4.iter().any(|&(lo, hi)| (lo..=hi).contains(&a)) as usize
        }
        std::net::IpAddr::V6(_) => 2,
    }
}

/// Whether an address set may contain an address of `class` ([`addr_class`]); never false
/// when it does (an IPv6 packet address, v4-mapped ones included, counts as any set that is
/// not empty).
fn admits_class(set: &crate::addr::IpSet, class: usize) -> bool {
    let v4 = set.v4_ranges();
    match class {
        0 => v4.iter().any(|&(lo, hi)| !PRIVATE_V4.iter().any(|&(plo, phi)| plo <= lo && hi <= phi)),
        1 => v4.iter().any(|&(lo, hi)| PRIVATE_V4.iter().any(|&(plo, phi)| lo <= phi && plo <= hi)),
        _ => !v4.is_empty() || !set.v6_ranges().is_empty(),
    }
}

/// At most this many keys are remembered; new keys beyond it use the whole-set group.
const MAX_KEYS: usize = 1 << 16;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The prefilter of one group: the patterns of the rules that apply to its packets.
#[derive(Debug)]
pub(crate) struct Group {
    pub prefilter: Option<Box<dyn Prefilter>>,
    /// Rules of each prefilter pattern.
    pub pattern_rules: Vec<Vec<u32>>,
    /// Rules to verify on every packet of the group (when the automaton could not be built).
    pub always: Vec<u32>,
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<MulHasher>>;

/// One packet-payload pattern set (one transport), split into port groups on demand.
#[derive(Debug)]
pub(crate) struct PayloadGroups {
    /// (rule index, fast pattern) of every rule of the set, in rule order.
    entries: Vec<(u32, Pattern)>,
    /// Sorted port boundaries: the class of port `p` is the number of boundaries `<= p`.
    bounds: Vec<u16>,
    /// Distinct app-layer protocol names of the set's rules (the first [`MAX_APPS`] get a bit).
    apps: Vec<String>,
    /// Unique id (per build), for the per-thread caches.
    id: u64,
    /// Bit sets over `entries` (one bit per entry), from which a key's rules are computed:
    /// entries admitting to-client / to-server packets,
    direction: [Vec<u64>; 2],
    /// entries admitting packets of flows not established / established,
    established: [Vec<u64>; 2],
    /// entries without an app protocol (or one beyond [`MAX_APPS`]), entries requiring app `i`,
    app_free: Vec<u64>,
    app: Vec<Vec<u64>>,
    /// entries of `<>` rules,
    bidirectional: Vec<u64>,
    /// entries whose source / destination address set admits an address of each class
    /// ([`addr_class`]),
    src_addr: [Vec<u64>; 3],
    dst_addr: [Vec<u64>; 3],
    /// and, per port class (built on first use), entries whose source / destination ports
    /// contain it.
    port_sets: Mutex<FastMap<(bool, u16), Arc<BitSet>>>,
    by_key: Mutex<FastMap<u64, Arc<Group>>>,
    by_rules: Mutex<HashMap<Vec<u32>, Arc<Group>>>,
    /// The group over every entry, for keys beyond [`MAX_GROUPS`] / [`MAX_KEYS`].
    whole: std::sync::OnceLock<Arc<Group>>,
}

/// One bit per entry.
type BitSet = Vec<u64>;

fn bitset(n: usize) -> BitSet {
    vec![0; n.div_ceil(64)]
}

fn set_bit(v: &mut [u64], i: usize) {
    v[i >> 6] |= 1 << (i & 63);
}

/// Per worker thread: (set id, key) -> group, and a memo of app-protocol masks, for the rule
/// set generation the thread last inspected with (a reload clears it, releasing old groups).
#[derive(Default)]
struct ThreadCache {
    generation: u64,
    groups: FastMap<(u64, u64), Arc<Group>>,
    apps: Vec<(u64, String, u32)>,
}

thread_local! {
    static CACHE: RefCell<ThreadCache> = RefCell::new(ThreadCache::default());
}

impl PayloadGroups {
    /// `entries`: (rule index, fast pattern) of the set's rules; `rules`: the rule table.
    pub(crate) fn new(mut entries: Vec<(u32, Pattern)>, rules: &[Rule]) -> PayloadGroups {
        entries.sort_by_key(|e| e.0);
        let mut bounds = Vec::new();
        let mut apps: Vec<String> = Vec::new();
        for &(r, _) in &entries {
            let rule = &rules[r as usize];
            for set in [&rule.sport, &rule.dport] {
                for &(lo, hi) in set.ranges() {
                    if lo > 0 {
                        bounds.push(lo);
                    }
                    if hi < u16::MAX {
                        bounds.push(hi + 1);
                    }
                }
            }
            if let Some(a) = &rule.proto.app {
                if !apps.contains(a) {
                    apps.push(a.clone());
                }
            }
        }
        bounds.sort_unstable();
        bounds.dedup();
        let n = entries.len();
        let (mut direction, mut app_free, mut bidirectional) = ([bitset(n), bitset(n)], bitset(n), bitset(n));
        let mut established = [bitset(n), bitset(n)];
        let mut src_addr = [bitset(n), bitset(n), bitset(n)];
        let mut dst_addr = [bitset(n), bitset(n), bitset(n)];
        let mut app = vec![bitset(n); apps.len().min(MAX_APPS)];
        for (i, &(r, _)) in entries.iter().enumerate() {
            let rule = &rules[r as usize];
            for (sets, ips) in [(&mut src_addr, &rule.src), (&mut dst_addr, &rule.dst)] {
                for (class, set) in sets.iter_mut().enumerate() {
                    if admits_class(ips, class) {
                        set_bit(set, i);
                    }
                }
            }
            for (e, set) in established.iter_mut().enumerate() {
                if rule.flow.established.is_none_or(|want| want == (e == 1)) {
                    set_bit(set, i);
                }
            }
            for (d, set) in direction.iter_mut().enumerate() {
                if rule.flow.to_server.is_none_or(|t| t == (d == 1)) {
                    set_bit(set, i);
                }
            }
            match rule.proto.app.as_ref().and_then(|a| apps.iter().position(|x| x == a)).filter(|&a| a < MAX_APPS) {
                Some(a) => set_bit(&mut app[a], i),
                None => set_bit(&mut app_free, i),
            }
            if rule.bidirectional {
                set_bit(&mut bidirectional, i);
            }
        }
        PayloadGroups {
            entries,
            bounds,
            apps,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            direction,
            established,
            src_addr,
            dst_addr,
            app_free,
            app,
            bidirectional,
            port_sets: Mutex::new(FastMap::default()),
            by_key: Mutex::new(FastMap::default()),
            by_rules: Mutex::new(HashMap::new()),
            whole: std::sync::OnceLock::new(),
        }
    }

    fn class(&self, port: u16) -> u16 {
        self.bounds.partition_point(|&b| b <= port) as u16
    }

    /// The smallest port of a class (every port of the class is in the same port sets).
    fn representative(&self, class: u16) -> u16 {
        if class == 0 {
            0
        } else {
            self.bounds[class as usize - 1]
        }
    }

    fn app_mask(&self, app: Option<&str>) -> u32 {
        let mut mask = 0;
        for (i, a) in self.apps.iter().take(MAX_APPS).enumerate() {
            if crate::engine::app_matches(a, app) {
                mask |= 1 << i;
            }
        }
        mask
    }

    /// The group for this packet; `generation` is the rule set's.
    pub(crate) fn select(&self, rules: &[Rule], generation: u64, pkt: &PacketInput<'_>) -> Arc<Group> {
        CACHE.with(|c| {
            let mut c = c.borrow_mut();
            if c.generation != generation {
                c.groups.clear();
                c.apps.clear();
                c.generation = generation;
            }
            let mask = match pkt.app_proto {
                None => 0,
                Some(app) => match c.apps.iter().find(|(id, a, _)| *id == self.id && a == app) {
                    Some(&(_, _, m)) => m,
                    None => {
                        let m = self.app_mask(Some(app));
                        if c.apps.len() >= 64 {
                            c.apps.clear();
                        }
                        c.apps.push((self.id, app.to_string(), m));
                        m
                    }
                },
            };
            let key = (pkt.to_server as u64)
                | (mask as u64) << 1
                | (pkt.flow_established as u64) << ESTABLISHED_BIT
                | (addr_class(pkt.src_ip) as u64) << SRC_ADDR_BITS
                | (addr_class(pkt.dst_ip) as u64) << DST_ADDR_BITS
                | (self.class(pkt.src_port) as u64) << 32
                | (self.class(pkt.dst_port) as u64) << 48;
            if let Some(g) = c.groups.get(&(self.id, key)) {
                return g.clone();
            }
            let g = self.shared(rules, key, pkt.to_server, mask);
            if c.groups.len() >= THREAD_CACHE_MAX {
                c.groups.clear();
            }
            c.groups.insert((self.id, key), g.clone());
            g
        })
    }

    fn shared(&self, rules: &[Rule], key: u64, to_server: bool, mask: u32) -> Arc<Group> {
        {
            let by_key = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(g) = by_key.get(&key) {
                return g.clone();
            }
            if by_key.len() >= MAX_KEYS {
                drop(by_key);
                return self.whole();
            }
        }
        let (sc, dc) = ((key >> 32) as u16, (key >> 48) as u16);
        let established = (key >> ESTABLISHED_BIT) as usize & 1;
        let (sa, da) = ((key >> SRC_ADDR_BITS) as usize & 3, (key >> DST_ADDR_BITS) as usize & 3);
        let (s_sc, d_dc) = (self.ports(rules, true, sc), self.ports(rules, false, dc));
        let (s_dc, d_sc) = (self.ports(rules, true, dc), self.ports(rules, false, sc));
        let mut chosen: Vec<u32> = Vec::new();
        for w in 0..self.app_free.len() {
            let mut apps = self.app_free[w];
            for (i, a) in self.app.iter().enumerate() {
                if mask & (1 << i) != 0 {
                    apps |= a[w];
                }
            }
            let forward = s_sc[w] & d_dc[w] & self.src_addr[sa][w] & self.dst_addr[da][w];
            let reverse = self.bidirectional[w] & s_dc[w] & d_sc[w] & self.src_addr[da][w] & self.dst_addr[sa][w];
            let ports = forward | reverse;
            let mut bits = self.direction[to_server as usize][w] & self.established[established][w] & apps & ports;
            while bits != 0 {
                chosen.push((w * 64) as u32 + bits.trailing_zeros());
                bits &= bits - 1;
            }
        }
        let existing = {
            let by_rules = self.by_rules.lock().unwrap_or_else(|e| e.into_inner());
            by_rules.get(&chosen).cloned().ok_or(by_rules.len() >= MAX_GROUPS)
        };
        let group = match existing {
            Ok(g) => g,
            Err(true) => self.whole(),
            Err(false) => {
                // Built outside the lock; if another worker built it meanwhile, theirs is kept.
                let g = Arc::new(self.build_group(&chosen));
                self.by_rules.lock().unwrap_or_else(|e| e.into_inner()).entry(chosen).or_insert(g).clone()
            }
        };
        self.by_key.lock().unwrap_or_else(|e| e.into_inner()).insert(key, group.clone());
        group
    }

    fn whole(&self) -> Arc<Group> {
        self.whole.get_or_init(|| Arc::new(self.build_group(&(0..self.entries.len() as u32).collect::<Vec<_>>()))).clone()
    }

    /// Distinct groups built so far (tests).
    #[cfg(test)]
    pub(crate) fn built(&self) -> usize {
        self.by_rules.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Entries whose source (`source`) or destination port set contains the ports of `class`.
    fn ports(&self, rules: &[Rule], source: bool, class: u16) -> Arc<BitSet> {
        let mut cache = self.port_sets.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry((source, class))
            .or_insert_with(|| {
                let port = self.representative(class);
                let mut set = bitset(self.entries.len());
                for (i, &(r, _)) in self.entries.iter().enumerate() {
                    let rule = &rules[r as usize];
                    if if source { rule.sport.contains(port) } else { rule.dport.contains(port) } {
                        set_bit(&mut set, i);
                    }
                }
                Arc::new(set)
            })
            .clone()
    }

    fn build_group(&self, chosen: &[u32]) -> Group {
        let mut index: HashMap<&[u8], usize> = HashMap::new();
        let mut patterns: Vec<Pattern> = Vec::new();
        let mut pattern_rules: Vec<Vec<u32>> = Vec::new();
        for &e in chosen {
            let (rule, pat) = &self.entries[e as usize];
            let pi = *index.entry(&pat.bytes).or_insert_with(|| {
                patterns.push(Pattern { bytes: pat.bytes.clone(), max_end: pat.max_end });
                pattern_rules.push(vec![]);
                patterns.len() - 1
            });
            let p = &mut patterns[pi];
            p.max_end = p.max_end.zip(pat.max_end).map(|(a, b)| a.max(b));
            pattern_rules[pi].push(*rule);
        }
        if patterns.is_empty() {
            return Group { prefilter: None, pattern_rules, always: vec![] };
        }
        match prefilter::build(&patterns) {
            Some(pf) => Group { prefilter: Some(pf), pattern_rules, always: vec![] },
            None => Group { prefilter: None, always: pattern_rules.concat(), pattern_rules: vec![] },
        }
    }
}
