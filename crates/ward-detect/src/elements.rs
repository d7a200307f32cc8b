//! Payload keywords of one buffer and how they match: content (with its modifiers), pcre,
//! isdataat, byte_test, byte_jump, byte_extract, base64_decode.
//!
//! Matching follows Suricata's content inspection: every keyword is checked in rule order
//! against one buffer, relative keywords (`distance`, `within`, `isdataat:..,relative`, pcre `R`,
//! `byte_*` `relative`) count from the end of the previous match, and when a later keyword fails
//! the engine retries an earlier positive content or pcre at its next occurrence (backtracking),
//! bounded by [`MAX_BACKTRACK_STEPS`] per buffer so a hostile payload cannot make a rule cost
//! more than that. Each pcre search is bounded as well, by the worker's PCRE match and depth
//! limits ([`crate::pcre`]).

use memchr::memmem;

use crate::pcre::{BoundedMatcher, Search};

/// Total content/pcre attempts per buffer inspection; Suricata uses the same bound (3000) for
/// its recursion limit.
pub const MAX_BACKTRACK_STEPS: u32 = 3000;
/// byte_test/byte_jump/byte_extract read at most this many bytes as binary, more as a string.
pub const MAX_BYTES_BINARY: u32 = 8;
/// ... and at most this many characters as a string number.
pub const MAX_BYTES_STRING: u32 = 23;
/// Most byte_extract variables in one rule (Suricata's limit as well).
pub const MAX_BYTE_VARS: usize = 16;

/// A number written literally or the name of a byte_extract variable (resolved to a slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Val {
    Lit(i64),
    Var(u8),
}

impl Val {
    #[inline]
    pub(crate) fn get(self, vars: &[u64]) -> i64 {
        match self {
            Val::Lit(v) => v,
            Val::Var(slot) => vars.get(slot as usize).copied().unwrap_or(0) as i64,
        }
    }
}

/// One `content` with its modifiers.
#[derive(Debug, Clone)]
pub struct Content {
    pub pattern: Vec<u8>,
    pub negated: bool,
    pub nocase: bool,
    pub offset: Option<Val>,
    pub depth: Option<Val>,
    pub distance: Option<Val>,
    pub within: Option<Val>,
    pub startswith: bool,
    pub endswith: bool,
    pub fast_pattern: bool,
    pub fast_pattern_only: bool,
    pub fast_pattern_chop: Option<(u16, u16)>,
    pub(crate) finder: Option<memmem::Finder<'static>>,
}

impl Content {
    pub fn new(pattern: Vec<u8>, negated: bool) -> Self {
        Content {
            pattern,
            negated,
            nocase: false,
            offset: None,
            depth: None,
            distance: None,
            within: None,
            startswith: false,
            endswith: false,
            fast_pattern: false,
            fast_pattern_only: false,
            fast_pattern_chop: None,
            finder: None,
        }
    }

    pub fn is_relative(&self) -> bool {
        self.distance.is_some() || self.within.is_some()
    }

    /// Builds the search structure; call once modifiers are final.
    pub(crate) fn finish(&mut self) {
        if !self.nocase && !self.pattern.is_empty() {
            self.finder = Some(memmem::Finder::new(&self.pattern).into_owned());
        }
    }

    /// The window `[start, end)` this content may occupy, or `None` when it cannot fit.
    fn window(&self, len: usize, prev_end: usize, vars: &[u64]) -> Option<(usize, usize)> {
        let len_i = len as i64;
        let (mut start, mut end);
        if self.is_relative() {
            let base = prev_end as i64;
            let d = self.distance.map_or(0, |v| v.get(vars));
            start = base.saturating_add(d);
            end = match self.within {
                Some(w) => start.saturating_add(w.get(vars)).min(len_i),
                None => len_i,
            };
            // Suricata also honours offset/depth written next to distance/within.
            if let Some(dep) = self.depth {
                end = end.min(start.saturating_add(self.offset.map_or(0, |o| o.get(vars))).saturating_add(dep.get(vars)));
            }
        } else {
            start = self.offset.map_or(0, |v| v.get(vars));
            end = match self.depth {
                Some(dep) => start.saturating_add(dep.get(vars)).min(len_i),
                None => len_i,
            };
        }
        if start < 0 {
            start = 0;
        }
        if self.startswith {
            end = end.min(start.saturating_add(self.pattern.len() as i64));
        }
        if start > len_i || end < start {
            return None;
        }
        Some((start as usize, end as usize))
    }

    /// The first occurrence at or after `from` inside `[from, end)`: start offset.
    fn find_in(&self, buf: &[u8], from: usize, end: usize) -> Option<usize> {
        let plen = self.pattern.len();
        if end > buf.len() || from > end || end - from < plen {
            return None;
        }
        let hay = &buf[from..end];
        if plen == 0 {
            return Some(from);
        }
        if let Some(f) = &self.finder {
            return f.find(hay).map(|p| p + from);
        }
        let first = self.pattern[0];
        let (a, b) = (first.to_ascii_lowercase(), first.to_ascii_uppercase());
        let mut pos = 0;
        let last_start = hay.len() - plen;
        while pos <= last_start {
            let idx = memchr::memchr2(a, b, &hay[pos..=last_start])? + pos;
            if hay[idx..idx + plen].eq_ignore_ascii_case(&self.pattern) {
                return Some(idx + from);
            }
            pos = idx + 1;
        }
        None
    }
}

/// One `pcre` keyword. Matched under the worker's PCRE limits ([`crate::pcre`]): a search the
/// limits stop makes the keyword fail, whether negated or not.
#[derive(Debug, Clone)]
pub struct Pcre {
    pub regex: crate::pcre::Regex,
    pub negated: bool,
    pub relative: bool,
    pub source: String,
}

/// Comparison operators of byte_test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteOp {
    Lt,
    Gt,
    Eq,
    Le,
    Ge,
    And,
    Xor,
}

/// How byte_* keywords read a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRead {
    pub bytes: u32,
    pub offset: Val,
    pub relative: bool,
    pub little_endian: bool,
    /// `string,dec|hex|oct`: the radix of an ASCII number, else binary.
    pub string_radix: Option<u32>,
    pub bitmask: Option<u64>,
}

impl ByteRead {
    /// Reads the number; returns it and the position just after the bytes read.
    fn read(&self, buf: &[u8], prev_end: usize, vars: &[u64]) -> Option<(u64, usize)> {
        let base = if self.relative { prev_end as i64 } else { 0 };
        let start = base.saturating_add(self.offset.get(vars));
        if start < 0 {
            return None;
        }
        let start = start as usize;
        let end = start.checked_add(self.bytes as usize)?;
        let raw = buf.get(start..end)?;
        let mut value = match self.string_radix {
            None => {
                let mut v: u64 = 0;
                if self.little_endian {
                    for &b in raw.iter().rev() {
                        v = (v << 8) | b as u64;
                    }
                } else {
                    for &b in raw {
                        v = (v << 8) | b as u64;
                    }
                }
                v
            }
            Some(radix) => {
                let text = std::str::from_utf8(raw).ok()?;
                let text = text.trim_start();
                let digits: &str = {
                    let n = text.chars().take_while(|c| c.is_digit(radix)).count();
                    &text[..n]
                };
                if digits.is_empty() {
                    return None;
                }
                u64::from_str_radix(digits, radix).ok()?
            }
        };
        if let Some(mask) = self.bitmask {
            value &= mask;
            if mask != 0 {
                value >>= mask.trailing_zeros();
            }
        }
        Some((value, end))
    }
}

/// `byte_test`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteTest {
    pub read: ByteRead,
    pub op: ByteOp,
    pub negated: bool,
    pub value: Val,
}

/// `byte_jump`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteJump {
    pub read: ByteRead,
    pub multiplier: u64,
    pub align: bool,
    pub from_beginning: bool,
    pub from_end: bool,
    pub post_offset: i64,
}

/// `byte_extract`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteExtract {
    pub read: ByteRead,
    pub multiplier: u64,
    pub align: bool,
    pub slot: u8,
}

/// One payload keyword in a buffer's list. Contents are most elements, so they are kept inline
/// (no pointer chase in the matching loop) and the rarer pcre is boxed.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum Element {
    Content(Content),
    Pcre(Box<Pcre>),
    IsDataAt { pos: Val, relative: bool, negated: bool },
    ByteTest(ByteTest),
    ByteJump(ByteJump),
    ByteExtract(ByteExtract),
    /// Decodes base64 into the scratch `base64_data` buffer; never fails by itself.
    Base64Decode { bytes: Option<u32>, offset: u32, relative: bool },
}

impl Element {
    pub(crate) fn is_relative(&self) -> bool {
        match self {
            Element::Content(c) => c.is_relative(),
            Element::Pcre(p) => p.relative,
            Element::IsDataAt { relative, .. } => *relative,
            Element::ByteTest(b) => b.read.relative,
            Element::ByteJump(b) => b.read.relative,
            Element::ByteExtract(b) => b.read.relative,
            Element::Base64Decode { relative, .. } => *relative,
        }
    }
}

/// Mutable state of one buffer inspection.
pub(crate) struct MatchCtx<'s> {
    pub vars: [u64; MAX_BYTE_VARS],
    pub steps: u32,
    pub base64: &'s mut Vec<u8>,
    pub pcre: &'s mut BoundedMatcher,
}

/// Whether `elems` all match `buf` starting with the previous-match end `prev_end`.
pub(crate) fn match_elements(buf: &[u8], elems: &[Element], prev_end: usize, ctx: &mut MatchCtx<'_>) -> bool {
    let Some((first, rest)) = elems.split_first() else {
        return true;
    };
    ctx.steps += 1;
    if ctx.steps > MAX_BACKTRACK_STEPS {
        return false;
    }
    // Backtracking only pays when a later keyword depends on where this one matched.
    let retry = rest.first().is_some_and(|e| e.is_relative());
    match first {
        Element::Content(c) => {
            let Some((start, end)) = c.window(buf.len(), prev_end, &ctx.vars) else {
                return c.negated && match_elements(buf, rest, prev_end, ctx);
            };
            if c.negated {
                let found = if c.endswith {
                    ends_with_in(c, buf, start, end)
                } else {
                    c.find_in(buf, start, end).is_some()
                };
                return !found && match_elements(buf, rest, prev_end, ctx);
            }
            if c.endswith {
                if !ends_with_in(c, buf, start, end) {
                    return false;
                }
                return match_elements(buf, rest, buf.len(), ctx);
            }
            let mut from = start;
            while let Some(pos) = c.find_in(buf, from, end) {
                let saved = ctx.vars;
                if match_elements(buf, rest, pos + c.pattern.len(), ctx) {
                    return true;
                }
                ctx.vars = saved;
                if !retry || c.startswith || ctx.steps > MAX_BACKTRACK_STEPS {
                    return false;
                }
                ctx.steps += 1;
                from = pos + 1;
            }
            false
        }
        Element::Pcre(p) => {
            let start = if p.relative { prev_end.min(buf.len()) } else { 0 };
            let subject = &buf[start..];
            if p.negated {
                return match ctx.pcre.find_at(&p.regex, subject, 0) {
                    Search::NoMatch => match_elements(buf, rest, prev_end, ctx),
                    Search::Match { .. } | Search::LimitExceeded => false,
                };
            }
            let mut at = 0;
            loop {
                let Search::Match { start: m_start, end: m_end } = ctx.pcre.find_at(&p.regex, subject, at) else {
                    return false;
                };
                let saved = ctx.vars;
                if match_elements(buf, rest, start + m_end, ctx) {
                    return true;
                }
                ctx.vars = saved;
                if !retry || ctx.steps > MAX_BACKTRACK_STEPS || m_start >= subject.len() {
                    return false;
                }
                ctx.steps += 1;
                at = m_start + 1;
            }
        }
        Element::IsDataAt { pos, relative, negated } => {
            let base = if *relative { prev_end as i64 } else { 0 };
            let at = base.saturating_add(pos.get(&ctx.vars));
            // Data exists at offset `at` when the buffer extends past it.
            let present = at >= 0 && (at as usize) < buf.len();
            present != *negated && match_elements(buf, rest, prev_end, ctx)
        }
        Element::ByteTest(t) => {
            let Some((v, _)) = t.read.read(buf, prev_end, &ctx.vars) else {
                return false;
            };
            let want = t.value.get(&ctx.vars) as u64;
            let ok = match t.op {
                ByteOp::Lt => v < want,
                ByteOp::Gt => v > want,
                ByteOp::Eq => v == want,
                ByteOp::Le => v <= want,
                ByteOp::Ge => v >= want,
                ByteOp::And => v & want != 0,
                ByteOp::Xor => v ^ want != 0,
            };
            ok != t.negated && match_elements(buf, rest, prev_end, ctx)
        }
        Element::ByteJump(j) => {
            let Some((v, after)) = j.read.read(buf, prev_end, &ctx.vars) else {
                return false;
            };
            let jump = (v as i64).saturating_mul(j.multiplier as i64);
            let base: i64 = if j.from_end {
                buf.len() as i64
            } else if j.from_beginning {
                0
            } else {
                after as i64
            };
            let mut pos = base.saturating_add(jump);
            if j.align && pos % 4 != 0 {
                pos = pos.saturating_add(4 - pos.rem_euclid(4));
            }
            pos = pos.saturating_add(j.post_offset);
            if pos < 0 || pos as usize > buf.len() {
                return false;
            }
            match_elements(buf, rest, pos as usize, ctx)
        }
        Element::ByteExtract(x) => {
            let Some((v, after)) = x.read.read(buf, prev_end, &ctx.vars) else {
                return false;
            };
            let mut v = v.saturating_mul(x.multiplier);
            if x.align && v % 4 != 0 {
                v = v.saturating_add(4 - v % 4);
            }
            if let Some(slot) = ctx.vars.get_mut(x.slot as usize) {
                *slot = v;
            }
            match_elements(buf, rest, after, ctx)
        }
        Element::Base64Decode { bytes, offset, relative } => {
            let start = if *relative { prev_end } else { 0 }.saturating_add(*offset as usize);
            ctx.base64.clear();
            if let Some(src) = buf.get(start..) {
                let src = match bytes {
                    Some(n) => &src[..src.len().min(*n as usize)],
                    None => src,
                };
                decode_base64_lenient(src, ctx.base64);
            }
            match_elements(buf, rest, prev_end, ctx)
        }
    }
}

fn ends_with_in(c: &Content, buf: &[u8], start: usize, end: usize) -> bool {
    let plen = c.pattern.len();
    if end != buf.len() || buf.len() < plen || buf.len() - plen < start {
        return false;
    }
    let tail = &buf[buf.len() - plen..];
    if c.nocase {
        tail.eq_ignore_ascii_case(&c.pattern)
    } else {
        tail == c.pattern.as_slice()
    }
}

/// Base64 decoding as Suricata's `base64_decode` does it: stops at the first byte outside the
/// alphabet, tolerates missing padding.
pub(crate) fn decode_base64_lenient(src: &[u8], out: &mut Vec<u8>) {
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &b in src {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => break,
        } as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
}
