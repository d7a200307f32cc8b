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

/// Builds the default prefilter over `patterns`; `None` if the automaton cannot be built
/// (too large), in which case the caller verifies the rules without prefilter.
pub fn build(patterns: &[Vec<u8>]) -> Option<Box<dyn Prefilter>> {
    let ac = AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard)
        .kind(if patterns.len() <= DFA_MAX_PATTERNS { Some(AhoCorasickKind::DFA) } else { None })
        .build(patterns)
        .map_err(|e| tracing::warn!(error = %e, "prefilter automaton could not be built"))
        .ok()?;
    Some(Box::new(AhoCorasickPrefilter { ac }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_overlapping_and_case_insensitive() {
        let p = build(&[b"abc".to_vec(), b"BCD".to_vec(), b"zzz".to_vec()]).unwrap();
        let mut hits = vec![];
        p.for_each_candidate(b"xxABCDxx", &mut |i| hits.push(i));
        hits.sort();
        assert_eq!(hits, [0, 1]);
        assert!(p.memory_usage() > 0);
    }
}
