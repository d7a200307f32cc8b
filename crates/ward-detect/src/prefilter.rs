//! The multi-pattern prefilter: finds which rules' fast patterns occur in a buffer, so that only
//! those rules are verified. Like ripgrep's `Matcher`, the engine depends only on the
//! [`Prefilter`] trait; [`AhoCorasickPrefilter`] is the default engine and another (e.g.
//! Hyperscan/Vectorscan) can be added behind a Cargo feature by implementing the trait and
//! changing [`build`].
//!
//! Contract: `for_each_candidate` reports every pattern that occurs (case-insensitively, ASCII)
//! at least once; reporting extra patterns is allowed (verification rejects them), missing one
//! is not. Case-insensitive search for all patterns keeps one automaton per buffer; the
//! verification step applies `nocase` exactly.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};

/// Automata over at most this many patterns are built as DFAs (fastest search, more memory:
/// ET Open's largest buffer set fits in a few MB); larger ones let the crate choose.
pub const DFA_MAX_PATTERNS: usize = 20_000;

/// A multi-pattern matcher over one buffer's fast patterns.
pub trait Prefilter: Send + Sync + std::fmt::Debug {
    /// Calls `hit` with the index of each pattern occurring in `haystack` (maybe repeatedly).
    fn for_each_candidate(&self, haystack: &[u8], hit: &mut dyn FnMut(usize));
    /// Heap bytes used, for the load report.
    fn memory_usage(&self) -> usize;
}

/// Aho-Corasick (the `aho-corasick` crate), ASCII case-insensitive, overlapping matches.
#[derive(Debug)]
pub struct AhoCorasickPrefilter {
    ac: AhoCorasick,
}

impl Prefilter for AhoCorasickPrefilter {
    fn for_each_candidate(&self, haystack: &[u8], hit: &mut dyn FnMut(usize)) {
        for m in self.ac.find_overlapping_iter(haystack) {
            hit(m.pattern().as_usize());
        }
    }

    fn memory_usage(&self) -> usize {
        self.ac.memory_usage()
    }
}

/// Payload pattern sets of at least this many patterns use [`WindowPrefilter`]: their DFAs run
/// to tens of MB, and on binary payloads an automaton step misses the cache on most bytes
/// (ET Open's TCP payload set: 2,086 patterns, 27 MB DFA, ~6 ns/byte; the window filter ~3.8).
/// On text (HTTP bodies) the DFA stays faster, so app-layer buffers keep it.
pub const WINDOW_MIN_PATTERNS: usize = 512;

/// Builds the default prefilter over `patterns`; `None` if the automaton cannot be built
/// (too large), in which case the caller verifies the rules without prefilter. `payload`:
/// the patterns are searched in raw packet/stream payloads (mostly binary data).
pub fn build(patterns: &[Vec<u8>], payload: bool) -> Option<Box<dyn Prefilter>> {
    if payload && patterns.len() >= WINDOW_MIN_PATTERNS {
        return Some(Box::new(WindowPrefilter::new(patterns)));
    }
    build_aho_corasick(patterns)
}

/// Builds the Aho-Corasick prefilter over `patterns`.
pub fn build_aho_corasick(patterns: &[Vec<u8>]) -> Option<Box<dyn Prefilter>> {
    let ac = AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard)
        .kind(if patterns.len() <= DFA_MAX_PATTERNS { Some(AhoCorasickKind::DFA) } else { None })
        .build(patterns)
        .map_err(|e| tracing::warn!(error = %e, "prefilter automaton could not be built"))
        .ok()?;
    Some(Box::new(AhoCorasickPrefilter { ac }))
}

/// log2 of the bits in [`WindowPrefilter`]'s filter (2^20 bits = 128 KiB, fits in L2).
const WINDOW_BITS: u32 = 20;

/// Reports exactly the patterns Aho-Corasick (ASCII case-insensitive, overlapping) would, from a
/// rolling window of the last 4 (lowercased) bytes: at each haystack position, each window
/// length present among the patterns (1, 2, 3, or 4 for patterns of 4 bytes or more) is hashed
/// into a 128 KiB bit filter; on a hit the exact window is looked up and each pattern under it
/// is compared in full. A cache-resident filter instead of a multi-MB automaton.
#[derive(Debug)]
pub struct WindowPrefilter {
    /// Lowercased patterns.
    patterns: Vec<Box<[u8]>>,
    bits: Vec<u64>,
    /// (window length 1..=4, window value) -> patterns with that (lowercased) prefix.
    windows: std::collections::HashMap<(u8, u32), Vec<u32>, std::hash::BuildHasherDefault<WindowHasher>>,
    /// The 1-byte patterns, by (lowercased) byte.
    single_patterns: Vec<Vec<u32>>,
    /// Which window lengths occur (index 1..=4).
    lengths: [bool; 5],
    /// Empty patterns occur everywhere.
    empty: Vec<u32>,
    /// First bytes of the patterns; 1-byte patterns; first two bytes of longer ones (bit sets).
    firsts: [u64; 4],
    singles: [u64; 4],
    pairs: Vec<u64>,
}

/// A multiplicative hasher for the (length, window) keys (SipHash showed in profiles).
#[derive(Default)]
pub struct WindowHasher(u64);

impl std::hash::Hasher for WindowHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(i as u64);
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(i as u64);
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

const fn lower_table() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = (i as u8).to_ascii_lowercase();
        i += 1;
    }
    t
}
static LOWER: [u8; 256] = lower_table();

#[inline(always)]
fn window_hash(len: u8, w: u32) -> usize {
    let x = (w as u64 | ((len as u64) << 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (x >> (64 - WINDOW_BITS)) as usize
}

impl WindowPrefilter {
    pub fn new(patterns: &[Vec<u8>]) -> WindowPrefilter {
        let mut p = WindowPrefilter {
            patterns: Vec::with_capacity(patterns.len()),
            bits: vec![0u64; 1 << (WINDOW_BITS - 6)],
            windows: Default::default(),
            single_patterns: vec![vec![]; 256],
            lengths: [false; 5],
            empty: vec![],
            firsts: [0; 4],
            singles: [0; 4],
            pairs: vec![0u64; 1 << 10],
        };
        for (i, pat) in patterns.iter().enumerate() {
            let lower: Box<[u8]> = pat.to_ascii_lowercase().into_boxed_slice();
            if lower.is_empty() {
                p.empty.push(i as u32);
            } else {
                let len = lower.len().min(4) as u8;
                // The window value as the rolling window holds it: last byte in the low bits.
                let w = lower[..len as usize].iter().fold(0u32, |w, &b| (w << 8) | b as u32);
                p.lengths[len as usize] = true;
                let h = window_hash(len, w);
                p.bits[h >> 6] |= 1 << (h & 63);
                let b0 = lower[0] as usize;
                p.firsts[b0 >> 6] |= 1 << (b0 & 63);
                if lower.len() == 1 {
                    p.singles[b0 >> 6] |= 1 << (b0 & 63);
                    p.single_patterns[b0].push(i as u32);
                } else {
                    let pair = (b0 << 8) | lower[1] as usize;
                    p.pairs[pair >> 6] |= 1 << (pair & 63);
                }
                p.windows.entry((len, w)).or_default().push(i as u32);
            }
            p.patterns.push(lower);
        }
        p
    }
}

impl Prefilter for WindowPrefilter {
    fn for_each_candidate(&self, haystack: &[u8], hit: &mut dyn FnMut(usize)) {
        for &i in &self.empty {
            hit(i as usize);
        }
        let n = haystack.len();
        let at = |i: usize| if i < n { LOWER[haystack[i] as usize] as u32 } else { 0 };
        // The 4 bytes from `start` (zeros past the end), first byte in the high bits.
        let mut w = (at(0) << 16) | (at(1) << 8) | at(2);
        for start in 0..n {
            w = (w << 8) | at(start + 3);
            let b0 = w >> 24;
            if self.firsts[(b0 >> 6) as usize] & (1 << (b0 & 63)) == 0 {
                continue;
            }
            if self.singles[(b0 >> 6) as usize] & (1 << (b0 & 63)) != 0 {
                for &pi in &self.single_patterns[b0 as usize] {
                    hit(pi as usize);
                }
            }
            let mut check = |len: u8, v: u32| {
                let h = window_hash(len, v);
                if self.bits[h >> 6] & (1 << (h & 63)) == 0 {
                    return;
                }
                let Some(ps) = self.windows.get(&(len, v)) else { return };
                for &pi in ps {
                    let pat = &self.patterns[pi as usize];
                    if n - start >= pat.len() && haystack[start..start + pat.len()].eq_ignore_ascii_case(pat) {
                        hit(pi as usize);
                    }
                }
            };
            let pair = w >> 16;
            let avail = n - start;
            if avail < 2 || self.pairs[(pair >> 6) as usize] & (1 << (pair & 63)) == 0 {
                continue;
            }
            if self.lengths[2] {
                check(2, pair);
            }
            if avail >= 3 && self.lengths[3] {
                check(3, w >> 8);
            }
            if avail >= 4 && self.lengths[4] {
                check(4, w);
            }
        }
    }

    fn memory_usage(&self) -> usize {
        (self.bits.len() + self.pairs.len()) * 8
            + self.patterns.iter().map(|p| p.len() + 16).sum::<usize>()
            + self.windows.values().map(|v| v.len() * 4 + 48).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_overlapping_and_case_insensitive() {
        let p = build(&[b"abc".to_vec(), b"BCD".to_vec(), b"zzz".to_vec()], false).unwrap();
        let mut hits = vec![];
        p.for_each_candidate(b"xxABCDxx", &mut |i| hits.push(i));
        hits.sort();
        assert_eq!(hits, [0, 1]);
        assert!(p.memory_usage() > 0);
    }

    /// The window prefilter reports exactly the patterns (and counts) Aho-Corasick does.
    #[test]
    fn window_prefilter_equals_aho_corasick() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut rnd = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        // A small alphabet (with case variants) so that patterns overlap, nest and repeat.
        let alphabet = b"aAbB\x00\xffc";
        for round in 0..400 {
            let n = 1 + rnd(40) as usize;
            let mut pats: Vec<Vec<u8>> = (0..n)
                .map(|_| (0..rnd(9)).map(|_| alphabet[rnd(alphabet.len() as u64) as usize]).collect())
                .collect();
            pats.retain(|p| !p.is_empty());
            pats.sort();
            pats.dedup();
            if pats.is_empty() {
                continue;
            }
            let ac = build_aho_corasick(&pats).unwrap();
            let win = WindowPrefilter::new(&pats);
            for _ in 0..20 {
                let hay: Vec<u8> = (0..rnd(60)).map(|_| alphabet[rnd(alphabet.len() as u64) as usize]).collect();
                let (mut a, mut b) = (vec![], vec![]);
                ac.for_each_candidate(&hay, &mut |i| a.push(i));
                win.for_each_candidate(&hay, &mut |i| b.push(i));
                a.sort();
                b.sort();
                assert_eq!(a, b, "round {round} patterns {pats:?} haystack {hay:?}");
            }
        }
        let big: Vec<Vec<u8>> = (0..WINDOW_MIN_PATTERNS).map(|i| format!("pat{i}x").into_bytes()).collect();
        let p = build(&big, true).unwrap();
        let mut hits = vec![];
        p.for_each_candidate(b"..PAT17X..pat1x", &mut |i| hits.push(i));
        hits.sort();
        assert_eq!(hits, [1, 17]);
    }
}
