//! The multi-pattern prefilter: finds which rules' fast patterns occur in a buffer, so that only
//! those rules are verified. Like ripgrep's `Matcher`, the engine depends only on the
//! [`Prefilter`] trait; [`FoldPrefilter`] is the engine [`build`] returns, and another (e.g.
//! Hyperscan/Vectorscan) can be added behind a Cargo feature by implementing the trait and
//! changing [`build`]. The tests check the fold filter against Aho-Corasick (the
//! `aho-corasick` crate), which the engine used before.
//!
//! Contract: `for_each_candidate` reports every pattern that occurs (case-insensitively, ASCII)
//! at least once; reporting extra patterns is allowed (verification rejects them), missing one
//! is not, except occurrences that end after a pattern's [`Pattern::max_end`]. Case-insensitive
//! search for all patterns keeps one filter per buffer; the verification step applies `nocase`
//! exactly.

/// A multi-pattern matcher over one buffer's fast patterns.
pub trait Prefilter: Send + Sync + std::fmt::Debug {
    /// Calls `hit` with the index of each pattern occurring in `haystack` (maybe repeatedly).
    fn for_each_candidate(&self, haystack: &[u8], hit: &mut dyn FnMut(usize));
    /// Heap bytes used, for the load report.
    fn memory_usage(&self) -> usize;
}

/// A fast pattern and where it can occur.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    pub bytes: Vec<u8>,
    /// Occurrences ending after this offset cannot make any of the pattern's rules match
    /// (`offset`/`depth`/`startswith`): a prefilter may leave them unreported.
    pub max_end: Option<u32>,
}

impl Pattern {
    /// A pattern that may occur anywhere.
    pub fn anywhere(bytes: &[u8]) -> Pattern {
        Pattern { bytes: bytes.to_vec(), max_end: None }
    }
}

/// Builds the default prefilter over `patterns`: the fold filter for every set (measured
/// faster than an Aho-Corasick DFA even for a handful of patterns, and cheaper to build, which
/// matters for the port groups built while traffic flows). `None` when no prefilter can be
/// built; the caller then verifies the rules without one.
pub fn build(patterns: &[Pattern]) -> Option<Box<dyn Prefilter>> {
    Some(Box::new(FoldPrefilter::new(patterns)))
}

/// A multiplicative hasher for small integer keys (SipHash showed in profiles).
#[derive(Default)]
pub struct MulHasher(u64);

impl std::hash::Hasher for MulHasher {
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

/// A pattern anchored near the start (at most this many possible start offsets, from its
/// `max_end`) is compared at those offsets only, outside the filter.
const ANCHORED_MAX_STARTS: u32 = 16;

/// The default prefilter, built for branch prediction and the L1
/// cache. At each haystack position the 4 bytes there, case-folded by OR-ing 0x20 into each byte
/// (a many-to-one map under which case-insensitively equal bytes stay equal), are hashed into a
/// bit filter of about 128 bits per pattern (8 KiB for ET Open's port groups); a set bit (under
/// 1 position in 100 on random data) is confirmed by an exact table and a full
/// case-insensitive comparison. Each pattern is keyed on its rarest 4-byte window
/// ([`rarest_window`]), not its prefix, so common text does not keep hitting the filter. Two kinds of pattern stay out of the filter:
/// * anchored ones ([`Pattern::max_end`] within [`ANCHORED_MAX_STARTS`] of the pattern's
///   length, as `content:"MZ"; depth:2;`) are compared at their few possible offsets;
/// * 2- and 3-byte patterns go through a second filter over folded 2-byte prefixes (8 KiB),
///   tested in the same pass; 1-byte patterns are searched with `memchr` (SIMD) per case
///   variant, stopping at the first occurrence (the contract only asks whether a pattern occurs).
///
/// Randomised tests check it reports exactly the set of patterns Aho-Corasick does.
#[derive(Debug)]
pub struct FoldPrefilter {
    /// Lowercased patterns.
    patterns: Vec<Box<[u8]>>,
    bits: Vec<u64>,
    shift: u32,
    /// Folded 4-byte key -> (pattern, offset of the key in it) for patterns of 4 bytes or more.
    keys: std::collections::HashMap<u32, Vec<(u32, u32)>, std::hash::BuildHasherDefault<MulHasher>>,
    /// (pattern, last possible start offset).
    anchored: Vec<(u32, u32)>,
    /// Bit set over folded 2-byte prefixes of the 2- and 3-byte patterns (empty when none).
    pairs: Vec<u64>,
    /// Folded 2-byte prefix -> 2- and 3-byte patterns with that prefix.
    pair_patterns: std::collections::HashMap<u16, Vec<u32>, std::hash::BuildHasherDefault<MulHasher>>,
    /// 1-byte patterns: (pattern, a finder per case variant).
    singles: Vec<(u32, Vec<memchr::memmem::Finder<'static>>)>,
    empty: Vec<u32>,
}

#[inline(always)]
fn fold4(w: u32) -> u32 {
    w | 0x2020_2020
}

/// How common a (lowercased) byte is in network payloads, 0 (rare) to 3: letters, digits,
/// whitespace, URL and markup punctuation, NUL and 0xff padding are common.
const fn commonness(b: u8) -> u8 {
    match b {
        b'e' | b't' | b'a' | b'o' | b'i' | b'n' | b's' | b'r' | b'h' | b'l' | b' ' | b'/' | b'.' | 0 => 3,
        b'a'..=b'z' | b'0'..=b'9' | b'\r' | b'\n' | b'=' | b'&' | b'-' | b'_' | b':' | b'"' | b',' | b';' | 0xff => 2,
        b'!'..=b'~' | b'\t' | 1 => 1,
        _ => 0,
    }
}

/// The offset of the 4-byte window of `p` (at least 4 bytes) least likely to occur by chance
/// in traffic: the filter is keyed on it, so that common prefixes ("http", "GET ", "user")
/// do not send every text position to the exact check. The earliest of equal windows.
fn rarest_window(p: &[u8]) -> usize {
    (0..=p.len() - 4)
        .min_by_key(|&o| p[o..o + 4].iter().map(|&b| commonness(b) as u32).sum::<u32>())
        .unwrap_or(0)
}

/// The folded 2-byte prefix as the low half of a folded window holds it.
fn fold2(a: u8, b: u8) -> u16 {
    u16::from_le_bytes([a | 0x20, b | 0x20])
}

/// Every ASCII case variant of `pat` (at most 8 for a 3-byte pattern).
fn case_variants(pat: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![Vec::with_capacity(pat.len())];
    for &b in pat {
        let (lo, up) = (b.to_ascii_lowercase(), b.to_ascii_uppercase());
        if lo == up {
            out.iter_mut().for_each(|v| v.push(lo));
        } else {
            let mut more = out.clone();
            out.iter_mut().for_each(|v| v.push(lo));
            more.iter_mut().for_each(|v| v.push(up));
            out.extend(more);
        }
    }
    out
}

impl FoldPrefilter {
    pub fn new(patterns: &[Pattern]) -> FoldPrefilter {
        let lower: Vec<Box<[u8]>> = patterns.iter().map(|p| p.bytes.to_ascii_lowercase().into_boxed_slice()).collect();
        let mut anchored = Vec::new();
        let mut short: Vec<u32> = Vec::new();
        let mut long: Vec<u32> = Vec::new();
        let mut empty = Vec::new();
        for (i, (p, spec)) in lower.iter().zip(patterns).enumerate() {
            let i = i as u32;
            let len = p.len() as u32;
            match spec.max_end {
                // It cannot end in time: no occurrence needs reporting.
                Some(end) if end < len => continue,
                Some(end) if len > 0 && end - len < ANCHORED_MAX_STARTS => anchored.push((i, end - len)),
                _ => match len {
                    0 => empty.push(i),
                    1..=3 => short.push(i),
                    _ => long.push(i),
                },
            }
        }
        // About 128 filter bits per pattern (a chance hit at under 1 % of positions), between
        // 8 KiB and 128 KiB.
        let log2 = ((long.len().max(1) * 128).next_power_of_two().trailing_zeros()).clamp(16, 20);
        let mut f = FoldPrefilter {
            patterns: Vec::new(),
            bits: vec![0u64; 1 << (log2 - 6)],
            shift: 32 - log2,
            keys: Default::default(),
            anchored,
            pairs: vec![],
            pair_patterns: Default::default(),
            singles: vec![],
            empty,
        };
        for &i in &long {
            let p = &lower[i as usize];
            let off = rarest_window(p);
            let w = fold4(u32::from_le_bytes([p[off], p[off + 1], p[off + 2], p[off + 3]]));
            let h = f.hash(w);
            f.bits[h >> 6] |= 1 << (h & 63);
            f.keys.entry(w).or_default().push((i, off as u32));
        }
        for &i in &short {
            let p = &lower[i as usize];
            if p.len() == 1 {
                let variants = case_variants(p).iter().map(|v| memchr::memmem::Finder::new(v).into_owned()).collect();
                f.singles.push((i, variants));
                continue;
            }
            if f.pairs.is_empty() {
                f.pairs = vec![0u64; 1 << 10];
            }
            let pair = fold2(p[0], p[1]);
            f.pairs[pair as usize >> 6] |= 1 << (pair & 63);
            f.pair_patterns.entry(pair).or_default().push(i);
        }
        f.patterns = lower;
        f
    }

    #[inline(always)]
    fn hash(&self, w: u32) -> usize {
        (w.wrapping_mul(0x9E37_79B1) >> self.shift) as usize
    }

    #[cold]
    fn confirm_pair(&self, haystack: &[u8], at: usize, pair: u16, hit: &mut dyn FnMut(usize)) {
        let Some(ps) = self.pair_patterns.get(&pair) else { return };
        let rest = &haystack[at..];
        for &pi in ps {
            let pat = &self.patterns[pi as usize];
            if rest.len() >= pat.len() && rest[..pat.len()].eq_ignore_ascii_case(pat) {
                hit(pi as usize);
            }
        }
    }

    #[inline(always)]
    fn pair_hit(&self, pair: u16) -> bool {
        self.pairs[pair as usize >> 6] & (1 << (pair & 63)) != 0
    }

    #[inline(always)]
    fn filter_hit(&self, w: u32) -> bool {
        let h = self.hash(w);
        // The mask keeps the index in bounds (the length is a power of two), which lets the
        // compiler drop the bounds check from the per-byte loop.
        self.bits[(h >> 6) & (self.bits.len() - 1)] & (1 << (h & 63)) != 0
    }

    #[cold]
    fn confirm(&self, haystack: &[u8], at: usize, w: u32, hit: &mut dyn FnMut(usize)) {
        let Some(ps) = self.keys.get(&w) else { return };
        for &(pi, off) in ps {
            let Some(start) = at.checked_sub(off as usize) else { continue };
            let pat = &self.patterns[pi as usize];
            if haystack.len() - start >= pat.len() && haystack[start..start + pat.len()].eq_ignore_ascii_case(pat) {
                hit(pi as usize);
            }
        }
    }
}

impl Prefilter for FoldPrefilter {
    fn for_each_candidate(&self, haystack: &[u8], hit: &mut dyn FnMut(usize)) {
        for &i in &self.empty {
            hit(i as usize);
        }
        for &(pi, last_start) in &self.anchored {
            let pat = &self.patterns[pi as usize];
            let starts = haystack.len().saturating_sub(pat.len()).min(last_start as usize);
            if haystack.len() >= pat.len() && (0..=starts).any(|s| haystack[s..s + pat.len()].eq_ignore_ascii_case(pat)) {
                hit(pi as usize);
            }
        }
        for (pi, variants) in &self.singles {
            if variants.iter().any(|f| f.find(haystack).is_some()) {
                hit(*pi as usize);
            }
        }
        let n = haystack.len();
        let with_pairs = !self.pairs.is_empty();
        if self.keys.is_empty() && !with_pairs {
            return;
        }
        // Two copies of the loop so that the common one (no short patterns) tests one filter.
        // (Blocks of several positions per load, with the branch per block, measured slower.)
        if with_pairs {
            for (at, win) in haystack.windows(4).enumerate() {
                let w = fold4(u32::from_le_bytes([win[0], win[1], win[2], win[3]]));
                if self.filter_hit(w) {
                    self.confirm(haystack, at, w, hit);
                }
                if self.pair_hit(w as u16) {
                    self.confirm_pair(haystack, at, w as u16, hit);
                }
            }
            // The last positions, where fewer than 4 bytes remain, for the short patterns.
            for at in n.saturating_sub(3)..n.saturating_sub(1) {
                let pair = fold2(haystack[at], haystack[at + 1]);
                if self.pair_hit(pair) {
                    self.confirm_pair(haystack, at, pair, hit);
                }
            }
        } else {
            let bits: &[u64] = &self.bits;
            let mask = bits.len() - 1;
            let shift = self.shift;
            for (at, win) in haystack.windows(4).enumerate() {
                let w = fold4(u32::from_le_bytes([win[0], win[1], win[2], win[3]]));
                let h = (w.wrapping_mul(0x9E37_79B1) >> shift) as usize;
                if bits[(h >> 6) & mask] & (1 << (h & 63)) != 0 {
                    self.confirm(haystack, at, w, hit);
                }
            }
        }
    }

    fn memory_usage(&self) -> usize {
        (self.bits.len() + self.pairs.len()) * 8
            + self.patterns.iter().map(|p| p.len() + 16).sum::<usize>()
            + self.keys.values().map(|v| v.len() * 8 + 48).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

    /// The reference: Aho-Corasick, ASCII case-insensitive, overlapping matches.
    #[derive(Debug)]
    struct AhoCorasickPrefilter {
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

    fn build_aho_corasick(patterns: &[Vec<u8>]) -> Option<Box<dyn Prefilter>> {
        let ac = AhoCorasickBuilder::new().ascii_case_insensitive(true).match_kind(MatchKind::Standard).build(patterns).ok()?;
        Some(Box::new(AhoCorasickPrefilter { ac }))
    }

    fn anywhere(pats: &[Vec<u8>]) -> Vec<Pattern> {
        pats.iter().map(|p| Pattern::anywhere(p)).collect()
    }

    #[test]
    fn reports_overlapping_and_case_insensitive() {
        let p = build(&anywhere(&[b"abc".to_vec(), b"BCD".to_vec(), b"zzz".to_vec()])).unwrap();
        let mut hits = vec![];
        p.for_each_candidate(b"xxABCDxx", &mut |i| hits.push(i));
        hits.sort();
        assert_eq!(hits, [0, 1]);
        assert!(p.memory_usage() > 0);
    }

    fn xorshift(mut seed: u64) -> impl FnMut(u64) -> u64 {
        move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        }
    }

    /// The fold prefilter reports exactly the set of patterns Aho-Corasick does, for patterns
    /// anywhere and, for anchored ones, the occurrences that end in time.
    #[test]
    fn fold_prefilter_equals_aho_corasick() {
        let mut rnd = xorshift(0x1234_5678_9abc_def0);
        // A small alphabet (with case variants and bytes that fold together: @ and `) so that
        // patterns overlap, nest and repeat.
        let alphabet = b"aAbB\x00\xffc@`";
        for round in 0..600 {
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
            // Half the rounds anchor some patterns.
            let specs: Vec<Pattern> = pats
                .iter()
                .map(|p| Pattern { bytes: p.clone(), max_end: (round % 2 == 1 && rnd(3) == 0).then(|| rnd(24) as u32) })
                .collect();
            let ac = build_aho_corasick(&pats).unwrap();
            let fold = FoldPrefilter::new(&specs);
            for _ in 0..20 {
                let hay: Vec<u8> = (0..rnd(60)).map(|_| alphabet[rnd(alphabet.len() as u64) as usize]).collect();
                // What must be reported: patterns with an occurrence that ends in time.
                let mut want: Vec<usize> = (0..pats.len())
                    .filter(|&i| {
                        let p = &pats[i];
                        (0..=hay.len().saturating_sub(p.len())).any(|s| {
                            hay.len() >= p.len()
                                && hay[s..s + p.len()].eq_ignore_ascii_case(p)
                                && specs[i].max_end.is_none_or(|e| s + p.len() <= e as usize)
                        })
                    })
                    .collect();
                let (mut a, mut c) = (vec![], vec![]);
                ac.for_each_candidate(&hay, &mut |i| a.push(i));
                fold.for_each_candidate(&hay, &mut |i| c.push(i));
                a.sort();
                a.dedup();
                c.sort();
                c.dedup();
                if round % 2 == 0 {
                    assert_eq!(a, want, "aho-corasick: round {round} patterns {pats:?} haystack {hay:?}");
                }
                // Anything reported occurs (Aho-Corasick found it) and everything required is.
                assert!(c.iter().all(|i| a.contains(i)), "fold reported a pattern that does not occur: round {round} {specs:?} {hay:?}");
                want.retain(|i| !c.contains(i));
                assert!(want.is_empty(), "fold missed {want:?}: round {round} patterns {specs:?} haystack {hay:?}");
            }
        }
    }

    #[test]
    fn fold_prefilter_handles_many_short_patterns_and_large_sets() {
        // Many 2-byte patterns (the pair filter) beside a large set of long ones.
        let mut pats: Vec<Vec<u8>> = (0..20u8).map(|i| vec![b'a' + i, b'0' + (i % 10)]).collect();
        pats.extend((0..2000).map(|i| format!("pat{i}x").into_bytes()));
        let p = build(&anywhere(&pats)).unwrap();
        let mut hits = vec![];
        p.for_each_candidate(b"..PAT17X..pat1x..c2..", &mut |i| hits.push(i));
        hits.sort();
        hits.dedup();
        assert_eq!(hits, [2, 20 + 1, 20 + 17]);
    }
}
