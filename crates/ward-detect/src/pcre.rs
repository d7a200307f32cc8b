//! PCRE2 with bounded work: the `pcre` keyword's regexes ([`Regex`]) and the per-worker state
//! that runs them under match limits ([`BoundedMatcher`]).
//!
//! A nested quantifier such as `(a+)+$` backtracks exponentially on a payload that almost
//! matches; PCRE2's own default limit (ten million steps) lets one such rule cost tens of
//! milliseconds per packet. Every match here runs under Suricata's limits instead
//! ([`DEFAULT_MATCH_LIMIT`], [`DEFAULT_DEPTH_LIMIT`], configurable per sensor): a match that
//! reaches one stops, is counted, and is treated as no match (neither "found" nor "not found",
//! so a negated pcre does not match either), as Suricata does. The caller reports it; the
//! inspection goes on with the next keyword or rule.
//!
//! The `pcre2` crate does not expose match limits, so this module calls `pcre2-sys` directly.
//! The unsafe code is confined here: a compiled pattern ([`Regex`]) is immutable after
//! compilation (and JIT compilation) and shared by all workers; each worker owns one match
//! context (holding the limits) and one match data block, used by one match at a time.
//!
//! Limits and JIT: the match limit bounds JIT-compiled and interpreted matching alike (PCRE2
//! counts it over the whole search under JIT, per start position in the interpreter); the depth
//! limit bounds the interpreter's backtracking depth (patterns the JIT cannot compile). The JIT
//! runs on PCRE2's default 32 KiB machine stack; running out of it is counted as a limit hit too.

use std::ffi::c_int;
use std::ptr::NonNull;
use std::sync::Arc;

use pcre2_sys::*;

/// Steps one pcre match may take (Suricata's `pcre.match-limit` default). PCRE2's own default
/// is 10,000,000, which lets one catastrophic pattern cost ~30 ms per 1,400-byte packet.
pub const DEFAULT_MATCH_LIMIT: u32 = 3500;
/// Backtracking depth one interpreted pcre match may reach (Suricata's
/// `pcre.match-limit-recursion` default).
pub const DEFAULT_DEPTH_LIMIT: u32 = 1500;
/// Longest PCRE2 error message kept (PCRE2's longest is about 120 bytes).
const MAX_ERROR_MESSAGE: usize = 256;

/// The work one pcre match may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcreLimits {
    /// PCRE2 match limit: backtracking steps per match.
    pub match_limit: u32,
    /// PCRE2 depth limit: backtracking depth per match (interpreter only).
    pub depth_limit: u32,
}

impl Default for PcreLimits {
    fn default() -> Self {
        PcreLimits { match_limit: DEFAULT_MATCH_LIMIT, depth_limit: DEFAULT_DEPTH_LIMIT }
    }
}

/// Compile options of a regex (the pcre keyword's flags).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RegexFlags {
    /// `i`
    pub caseless: bool,
    /// `s`
    pub dotall: bool,
    /// `m`
    pub multi_line: bool,
    /// `x`
    pub extended: bool,
    /// `A`: the match must start where the search starts.
    pub anchored: bool,
    /// `E`: `$` matches only at the very end.
    pub dollar_end_only: bool,
    /// `G`: quantifiers are lazy unless followed by `?`.
    pub ungreedy: bool,
}

impl RegexFlags {
    fn options(self) -> u32 {
        let mut o = 0;
        for (on, bit) in [
            (self.caseless, PCRE2_CASELESS),
            (self.dotall, PCRE2_DOTALL),
            (self.multi_line, PCRE2_MULTILINE),
            (self.extended, PCRE2_EXTENDED),
            (self.anchored, PCRE2_ANCHORED),
            (self.dollar_end_only, PCRE2_DOLLAR_ENDONLY),
            (self.ungreedy, PCRE2_UNGREEDY),
        ] {
            if on {
                o |= bit;
            }
        }
        o
    }
}

/// Why a pattern did not compile: PCRE2's message and where in the pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at offset {offset}")]
pub struct RegexError {
    pub message: String,
    pub offset: usize,
}

/// A compiled pattern, shared by every worker (cloning shares it).
#[derive(Clone)]
pub struct Regex {
    code: Arc<Code>,
}

struct Code {
    ptr: NonNull<pcre2_code_8>,
    jit: bool,
}

// SAFETY: a compiled PCRE2 pattern is immutable once `Regex::new` returns (JIT compilation,
// the only later write, happens inside `new`), and PCRE2 documents compiled patterns, JIT code
// included, as safe to use from several threads at once.
unsafe impl Send for Code {}
// SAFETY: as above; no method mutates the pattern.
unsafe impl Sync for Code {}

impl Drop for Code {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from pcre2_compile_8 and is freed once, here.
        unsafe { pcre2_code_free_8(self.ptr.as_ptr()) }
    }
}

impl std::fmt::Debug for Regex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Regex").field("jit", &self.code.jit).finish()
    }
}

fn error_message(code: c_int) -> String {
    let mut buf = [0u8; MAX_ERROR_MESSAGE];
    // SAFETY: the buffer is valid for `buf.len()` bytes; PCRE2 writes at most that many,
    // NUL-terminated, and returns the length written (negative on error).
    let n = unsafe { pcre2_get_error_message_8(code, buf.as_mut_ptr(), buf.len()) };
    match usize::try_from(n) {
        Ok(n) => String::from_utf8_lossy(&buf[..n.min(buf.len())]).into_owned(),
        Err(_) => format!("pcre2 error {code}"),
    }
}

fn compile(pattern: &str, options: u32) -> Result<NonNull<pcre2_code_8>, (c_int, usize)> {
    let (mut code, mut offset): (c_int, usize) = (0, 0);
    // SAFETY: the pattern pointer and length describe a live byte slice (PCRE2 does not need
    // a terminating NUL when given the length); the error outputs are valid locals; a null
    // compile context selects the defaults.
    let ptr = unsafe { pcre2_compile_8(pattern.as_ptr(), pattern.len(), options, &mut code, &mut offset, std::ptr::null_mut()) };
    NonNull::new(ptr).ok_or((code, offset))
}

impl Regex {
    /// Compiles `pattern`, JIT-compiled when the platform allows (else interpreted).
    /// Parentheses do not capture unless the pattern refers back to a group, as in Suricata:
    /// the engine only needs where the whole match ends, and non-capturing groups are faster.
    pub fn new(pattern: &str, flags: RegexFlags) -> Result<Regex, RegexError> {
        let options = flags.options();
        let ptr = match compile(pattern, options | PCRE2_NO_AUTO_CAPTURE) {
            Ok(p) => Ok(p),
            // A back reference to a numbered group needs the groups to capture.
            Err((code, _)) if code as u32 == PCRE2_ERROR_BAD_SUBPATTERN_REFERENCE => compile(pattern, options),
            Err(e) => Err(e),
        }
        .map_err(|(code, offset)| RegexError { message: error_message(code), offset })?;
        // SAFETY: `ptr` is a freshly compiled pattern not yet shared with anyone.
        let jit = unsafe { pcre2_jit_compile_8(ptr.as_ptr(), PCRE2_JIT_COMPLETE) } == 0;
        Ok(Regex { code: Arc::new(Code { ptr, jit }) })
    }

    /// Whether the pattern runs JIT-compiled.
    pub fn is_jit(&self) -> bool {
        self.code.jit
    }
}

/// The outcome of one bounded search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Search {
    /// The first match: byte offsets of its start and end in the subject.
    Match { start: usize, end: usize },
    NoMatch,
    /// The search reached the match or depth limit (or the JIT stack) before an answer.
    LimitExceeded,
}

/// One worker's match context (limits) and match data block.
struct MatchState {
    context: NonNull<pcre2_match_context_8>,
    data: NonNull<pcre2_match_data_8>,
}

// SAFETY: the context and the data block are owned by this value alone and used through
// `&mut self` only, so moving them to another thread is sound.
unsafe impl Send for MatchState {}
// SAFETY: `&MatchState` gives access to nothing.
unsafe impl Sync for MatchState {}

impl Drop for MatchState {
    fn drop(&mut self) {
        // SAFETY: both were created by `MatchState::new` and are freed once, here.
        unsafe {
            pcre2_match_data_free_8(self.data.as_ptr());
            pcre2_match_context_free_8(self.context.as_ptr());
        }
    }
}

impl MatchState {
    /// `None` when PCRE2 cannot allocate the context or the data block.
    fn new(limits: PcreLimits) -> Option<MatchState> {
        // SAFETY: a null general context selects malloc/free.
        let context = NonNull::new(unsafe { pcre2_match_context_create_8(std::ptr::null_mut()) })?;
        // One ovector pair: the engine only uses where the whole match starts and ends.
        // SAFETY: as above.
        let data = match NonNull::new(unsafe { pcre2_match_data_create_8(1, std::ptr::null_mut()) }) {
            Some(d) => d,
            None => {
                // SAFETY: freeing the context just created.
                unsafe { pcre2_match_context_free_8(context.as_ptr()) };
                return None;
            }
        };
        // SAFETY: `context` is a valid match context; setting limits cannot fail.
        unsafe {
            pcre2_set_match_limit_8(context.as_ptr(), limits.match_limit);
            pcre2_set_depth_limit_8(context.as_ptr(), limits.depth_limit);
        }
        Some(MatchState { context, data })
    }

    fn find_at(&mut self, re: &Regex, subject: &[u8], start: usize) -> Result<Search, c_int> {
        // PCRE2 never reads an empty subject, but is given a dereferenceable pointer anyway.
        static EMPTY: [u8; 1] = [0];
        let ptr = if subject.is_empty() { EMPTY.as_ptr() } else { subject.as_ptr() };
        // SAFETY: `ptr`/`subject.len()` describe live bytes (or zero bytes at a valid pointer),
        // `start <= subject.len()` (checked by the caller), the pattern is alive for the call,
        // and the match data and context belong to this worker alone.
        let rc = unsafe {
            pcre2_match_8(re.code.ptr.as_ptr(), ptr, subject.len(), start, 0, self.data.as_ptr(), self.context.as_ptr())
        };
        if rc == PCRE2_ERROR_NOMATCH {
            return Ok(Search::NoMatch);
        }
        if rc < 0 {
            return Err(rc);
        }
        // rc == 0 only says the ovector is too small for the groups; pair 0 is always set.
        // SAFETY: the data block has one pair, so the ovector holds two offsets.
        let (s, e) = unsafe {
            let ov = pcre2_get_ovector_pointer_8(self.data.as_ptr());
            (*ov, *ov.add(1))
        };
        // `\K` may report a start after the end; keep both inside the subject, start <= end.
        let end = e.min(subject.len());
        Ok(Search::Match { start: s.min(end), end })
    }
}

/// Runs regexes under one set of limits and counts the searches the limits stopped. One per
/// worker (inside [`crate::DetectScratch`]); the PCRE2 state is allocated on first use.
#[derive(Default)]
pub struct BoundedMatcher {
    limits: PcreLimits,
    state: Option<MatchState>,
    limit_hits: u64,
}

impl std::fmt::Debug for BoundedMatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundedMatcher").field("limits", &self.limits).field("limit_hits", &self.limit_hits).finish()
    }
}

impl BoundedMatcher {
    pub fn new(limits: PcreLimits) -> Self {
        BoundedMatcher { limits, state: None, limit_hits: 0 }
    }

    pub fn limits(&self) -> PcreLimits {
        self.limits
    }

    /// Searches stopped by a limit so far.
    pub fn limit_hits(&self) -> u64 {
        self.limit_hits
    }

    /// The first match of `re` in `subject` starting at or after `start` (look-behinds may see
    /// the bytes before `start`). Any PCRE2 failure other than "no match" (a limit, the JIT
    /// stack, memory) is [`Search::LimitExceeded`] and counted: the answer is unknown, never
    /// guessed, and the work done is bounded either way.
    pub fn find_at(&mut self, re: &Regex, subject: &[u8], start: usize) -> Search {
        if start > subject.len() {
            return Search::NoMatch;
        }
        if self.state.is_none() {
            self.state = MatchState::new(self.limits);
        }
        let outcome = match self.state.as_mut() {
            Some(state) => state.find_at(re, subject, start),
            None => Err(PCRE2_ERROR_NOMEMORY),
        };
        match outcome {
            Ok(s) => s,
            Err(code) => {
                tracing::trace!(code, reason = %error_message(code), "pcre search stopped");
                self.limit_hits += 1;
                Search::LimitExceeded
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(p: &str) -> Regex {
        Regex::new(p, RegexFlags::default()).unwrap()
    }

    #[test]
    fn finds_with_offsets_and_flags() {
        let mut m = BoundedMatcher::default();
        assert_eq!(m.find_at(&re("b+"), b"aabbbc", 0), Search::Match { start: 2, end: 5 });
        assert_eq!(m.find_at(&re("b+"), b"aabbbc", 4), Search::Match { start: 4, end: 5 });
        assert_eq!(m.find_at(&re("b+"), b"aabbbc", 5), Search::NoMatch);
        assert_eq!(m.find_at(&re("b+"), b"aabbbc", 7), Search::NoMatch);
        assert_eq!(m.find_at(&re("x*"), b"", 0), Search::Match { start: 0, end: 0 });
        let caseless = Regex::new("abc", RegexFlags { caseless: true, ..Default::default() }).unwrap();
        assert_eq!(m.find_at(&caseless, b"xxABC", 0), Search::Match { start: 2, end: 5 });
        let anchored = Regex::new("abc", RegexFlags { anchored: true, ..Default::default() }).unwrap();
        assert_eq!(m.find_at(&anchored, b"xabc", 0), Search::NoMatch);
        assert_eq!(m.find_at(&anchored, b"xabc", 1), Search::Match { start: 1, end: 4 });
        let lazy = Regex::new("a+", RegexFlags { ungreedy: true, ..Default::default() }).unwrap();
        assert_eq!(m.find_at(&lazy, b"aaa", 0), Search::Match { start: 0, end: 1 });
        let end_only = Regex::new("a$", RegexFlags { dollar_end_only: true, ..Default::default() }).unwrap();
        assert_eq!(m.find_at(&end_only, b"a\n", 0), Search::NoMatch);
        assert_eq!(m.find_at(&re("a$"), b"a\n", 0), Search::Match { start: 0, end: 1 });
        // Back references still work (the groups capture when referred to).
        assert_eq!(m.find_at(&re(r"(\w)\1"), b"abccd", 0), Search::Match { start: 2, end: 4 });
        assert_eq!(m.limit_hits(), 0);
    }

    #[test]
    fn bad_patterns_are_errors_with_a_message() {
        let e = Regex::new("(a", RegexFlags::default()).unwrap_err();
        assert!(e.message.contains("missing closing parenthesis"), "{e}");
        assert_eq!(e.offset, 2);
    }

    #[test]
    fn limits_stop_catastrophic_backtracking_in_the_jit_and_the_interpreter() {
        let r = re("(a+)+$");
        let mut subject = vec![b'a'; 1399];
        subject.push(b'!');
        let mut m = BoundedMatcher::default();
        assert_eq!(m.find_at(&r, &subject, 0), Search::LimitExceeded);
        assert_eq!(m.limit_hits(), 1);
        // The depth limit bounds the interpreter (a pattern the JIT does not take is rare, so
        // the test drives the interpreter through a tiny depth limit on the interpreted path).
        let mut interp = BoundedMatcher::new(PcreLimits { match_limit: u32::MAX, depth_limit: 10 });
        let state = MatchState::new(interp.limits).unwrap();
        // SAFETY: `state.data`/`state.context` are valid; PCRE2_NO_JIT forces the interpreter.
        let rc = unsafe {
            pcre2_match_8(r.code.ptr.as_ptr(), subject.as_ptr(), subject.len(), 0, PCRE2_NO_JIT, state.data.as_ptr(), state.context.as_ptr())
        };
        assert_eq!(rc, PCRE2_ERROR_DEPTHLIMIT);
        assert_eq!(interp.find_at(&re("a+"), b"baa", 0), Search::Match { start: 1, end: 3 });
    }
}
