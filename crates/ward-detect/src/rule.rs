//! Compiling a raw rule into a [`Rule`]: header sets, flow and packet conditions, per-buffer
//! keyword lists, flowbits, thresholds and the alert metadata ([`RuleInfo`]).
//!
//! Every keyword the engine knows is handled in [`compile`]; any other keyword makes the rule
//! fail with [`CompileError::UnsupportedKeyword`] so it is skipped and reported, never silently
//! half-matched. Keywords accepted without effect (`tag`, `filestore`, `rawbytes`, ...) are
//! listed in docs/rules.md.

use std::collections::HashMap;
use std::sync::Arc;

use crate::addr::{AddrError, IpSet, PortSet, Vars};
use crate::buffer::{Buffer, BufferStage, Stage};
use crate::classify::{Classification, DEFAULT_PRIORITY};
use crate::elements::*;
use crate::parse::{unquote, RawOption, RawRule, SyntaxError};
use crate::pcre::{Regex, RegexFlags};

/// Longest content pattern accepted; Suricata's limit is the same order (64 KB rules).
pub const MAX_CONTENT_LEN: usize = 65_535;
/// Most flowbit names in one RuleSet; a flow's bits are a small sorted vector of their ids.
pub const MAX_FLOWBITS: usize = 1 << 20;

/// Why a rule was not loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompileError {
    #[error("syntax error: {0}")]
    Syntax(#[from] SyntaxError),
    #[error("unsupported keyword {0:?}")]
    UnsupportedKeyword(String),
    #[error("unsupported protocol {0:?}")]
    UnsupportedProtocol(String),
    #[error("unsupported action {0:?}: expected alert, drop, reject or pass")]
    UnsupportedAction(String),
    #[error("bad value for {keyword}: {reason}")]
    BadValue { keyword: String, reason: String },
    #[error("header: {0}")]
    Address(#[from] AddrError),
    #[error("rule has no sid")]
    NoSid,
    #[error("{keyword}: {reason}")]
    Unsupported { keyword: String, reason: String },
}

impl CompileError {
    /// The keyword (or `syntax`, `header`, `protocol`, `sid`) to group this error under.
    pub fn keyword(&self) -> String {
        match self {
            CompileError::Syntax(_) => "syntax".into(),
            CompileError::UnsupportedKeyword(k) => k.clone(),
            CompileError::UnsupportedProtocol(p) => format!("protocol {p}"),
            CompileError::UnsupportedAction(a) => format!("action {a}"),
            CompileError::BadValue { keyword, .. } => keyword.clone(),
            CompileError::Address(_) => "header".into(),
            CompileError::NoSid => "sid".into(),
            CompileError::Unsupported { keyword, .. } => keyword.clone(),
        }
    }
}

fn bad(keyword: &str, reason: impl Into<String>) -> CompileError {
    CompileError::BadValue { keyword: keyword.to_string(), reason: reason.into() }
}

/// What a rule does when it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Alert,
    Drop,
    Reject,
    /// A matching pass rule suppresses the alerts of the same inspection.
    Pass,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Alert => "alert",
            Action::Drop => "drop",
            Action::Reject => "reject",
            Action::Pass => "pass",
        }
    }
}

/// Which endpoint a rule's `target` keyword names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    SrcIp,
    DestIp,
}

/// What is written in the alert: everything but the matching logic.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleInfo {
    pub gid: u32,
    pub sid: u64,
    pub rev: u32,
    pub msg: String,
    pub action: Action,
    pub classtype: Option<String>,
    /// Classtype description (or the classtype name when unknown, or empty).
    pub category: String,
    /// `priority` keyword, else the classtype's priority, else 3. Written as EVE `severity`.
    pub priority: u8,
    /// `metadata` pairs in rule order.
    pub metadata: Vec<(String, String)>,
    /// References as URLs (prefix from reference.config) or `type,value`.
    pub references: Vec<String>,
    pub target: Option<Target>,
    /// The rule's payload keywords inspect only the reassembled stream (`tcp-stream`,
    /// `flow:only_stream`): its alerts report stream data (EVE `stream: 1`).
    pub stream_payload: bool,
    /// The rule has payload keywords (it inspects the packet or stream payload).
    pub inspects_payload: bool,
}

/// A numeric comparison (`dsize`, `bsize`, `urilen`, `ttl`, `itype`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumCmp {
    Eq(u64),
    Ne(u64),
    Lt(u64),
    Gt(u64),
    Le(u64),
    Ge(u64),
    /// Exclusive range `a<>b`.
    Range(u64, u64),
}

impl NumCmp {
    /// Parses a comparison on a field whose largest value is `max` (255 for `ttl`, 65535 for
    /// `dsize`, ...), as Suricata's integer keywords read it: `N`, `=N`, `!N`, `<N`, `>N`,
    /// `<=N`, `>=N`, and the exclusive range `A<>B` (also written `A-B`). A number above `max`,
    /// and a comparison no value can satisfy (`<0`, `>max`, a range with nothing strictly
    /// inside), is an error naming why.
    pub fn parse(text: &str, max: u64) -> Result<NumCmp, String> {
        let t = text.trim();
        let num = |s: &str| -> Result<u64, String> {
            let s = s.trim();
            let v = if let Some(h) = s.strip_prefix("0x") {
                u64::from_str_radix(h, 16)
            } else {
                s.parse()
            };
            match v {
                Ok(v) if v <= max => Ok(v),
                Ok(_) => Err(format!("{s} is out of range: values are in 0..={max}")),
                Err(e) if matches!(e.kind(), std::num::IntErrorKind::PosOverflow) => {
                    Err(format!("{s} is out of range: values are in 0..={max}"))
                }
                Err(_) => Err(format!("expected N, <N, >N, <=N, >=N, !N or A<>B, got {t:?}")),
            }
        };
        let never = || Err(format!("{t:?} is never true for values in 0..={max}"));
        // `A-B` is Suricata's other spelling of the range `A<>B` (bounds excluded).
        if let Some((a, b)) = t.split_once("<>").or_else(|| t.split_once('-')) {
            let (a, b) = (num(a)?, num(b)?);
            if b <= a.saturating_add(1) {
                return never();
            }
            return Ok(NumCmp::Range(a, b));
        }
        if let Some(r) = t.strip_prefix("<=") {
            return Ok(NumCmp::Le(num(r)?));
        }
        if let Some(r) = t.strip_prefix(">=") {
            return Ok(NumCmp::Ge(num(r)?));
        }
        if let Some(r) = t.strip_prefix('<') {
            let v = num(r)?;
            return if v == 0 { never() } else { Ok(NumCmp::Lt(v)) };
        }
        if let Some(r) = t.strip_prefix('>') {
            let v = num(r)?;
            return if v == max { never() } else { Ok(NumCmp::Gt(v)) };
        }
        if let Some(r) = t.strip_prefix('!') {
            return Ok(NumCmp::Ne(num(r)?));
        }
        if let Some(r) = t.strip_prefix('=') {
            return Ok(NumCmp::Eq(num(r)?));
        }
        Ok(NumCmp::Eq(num(t)?))
    }

    #[inline]
    pub fn test(self, v: u64) -> bool {
        match self {
            NumCmp::Eq(a) => v == a,
            NumCmp::Ne(a) => v != a,
            NumCmp::Lt(a) => v < a,
            NumCmp::Gt(a) => v > a,
            NumCmp::Le(a) => v <= a,
            NumCmp::Ge(a) => v >= a,
            NumCmp::Range(a, b) => v > a && v < b,
        }
    }
}

/// Buffer transforms (applied in order before the buffer's keywords).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    DotPrefix,
    ToLowercase,
    ToUppercase,
    StripWhitespace,
    CompressWhitespace,
    UrlDecode,
}

impl Transform {
    fn from_keyword(k: &str) -> Option<Transform> {
        Some(match k {
            "dotprefix" => Transform::DotPrefix,
            "to_lowercase" => Transform::ToLowercase,
            "to_uppercase" => Transform::ToUppercase,
            "strip_whitespace" => Transform::StripWhitespace,
            "compress_whitespace" => Transform::CompressWhitespace,
            "url_decode" => Transform::UrlDecode,
            _ => return None,
        })
    }

    /// Applies the transform from `src` into `out` (cleared first).
    pub fn apply(self, src: &[u8], out: &mut Vec<u8>) {
        out.clear();
        match self {
            Transform::DotPrefix => {
                out.push(b'.');
                out.extend_from_slice(src);
            }
            Transform::ToLowercase => out.extend(src.iter().map(|b| b.to_ascii_lowercase())),
            Transform::ToUppercase => out.extend(src.iter().map(|b| b.to_ascii_uppercase())),
            Transform::StripWhitespace => out.extend(src.iter().copied().filter(|b| !b.is_ascii_whitespace())),
            Transform::CompressWhitespace => {
                let mut last_ws = false;
                for &b in src {
                    let ws = b.is_ascii_whitespace();
                    if ws && last_ws {
                        continue;
                    }
                    out.push(b);
                    last_ws = ws;
                }
            }
            Transform::UrlDecode => {
                let mut i = 0;
                while i < src.len() {
                    let b = src[i];
                    if b == b'%' && i + 2 < src.len() {
                        let hex = |c: u8| (c as char).to_digit(16);
                        if let (Some(h), Some(l)) = (hex(src[i + 1]), hex(src[i + 2])) {
                            out.push((h * 16 + l) as u8);
                            i += 3;
                            continue;
                        }
                    }
                    out.push(if b == b'+' { b' ' } else { b });
                    i += 1;
                }
            }
        }
    }
}

/// The keywords of one buffer.
#[derive(Debug, Clone)]
pub struct BufferMatch {
    pub buffer: Buffer,
    pub transforms: Vec<Transform>,
    /// `bsize` / `urilen` / `dsize`-like length condition on the (transformed) buffer.
    pub size: Option<NumCmp>,
    pub elements: Vec<Element>,
}

/// Conditions on the packet headers and flow, checked before any buffer.
#[derive(Debug, Clone, PartialEq)]
pub enum HeaderCheck {
    Dsize(NumCmp),
    Ttl(NumCmp),
    IpId(NumCmp),
    Seq(u32),
    Ack(u32),
    Window { negated: bool, value: u16 },
    Itype(NumCmp),
    Icode(NumCmp),
    IcmpId(u16),
    IcmpSeq(u16),
    IpProto(NumCmp),
    /// TCP flags: `(flags & !ignore)` tested against `want` by `mode`.
    Flags { mode: FlagMode, want: u8, ignore: u8 },
    /// IP fragment bits (bit 0 MF, bit 1 DF, bit 2 reserved).
    Fragbits { mode: FlagMode, want: u8 },
    SameIp,
    StreamSize { side: StreamSide, cmp: NumCmp },
    AppProto { negated: bool, name: String },
    TlsVersion(u16),
    /// ssl_version: any of these TLS versions (wire values).
    SslVersion { negated: bool, versions: Vec<u16> },
    DnsOpcode { negated: bool, value: u8 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagMode {
    /// Exactly these bits (of the ones not ignored).
    Exact,
    /// These bits and possibly others (`+`).
    All,
    /// Any of these bits (`*`).
    Any,
    /// None of these bits (`!`).
    Not,
}

impl FlagMode {
    pub(crate) fn test(self, have: u8, want: u8) -> bool {
        match self {
            FlagMode::Exact => have == want,
            FlagMode::All => have & want == want,
            FlagMode::Any => have & want != 0 || want == 0 && have == 0,
            FlagMode::Not => have & want == 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamSide {
    Server,
    Client,
    Both,
    Either,
}

/// flow keyword conditions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowCond {
    pub established: Option<bool>,
    /// `Some(true)` to_server/from_client, `Some(false)` to_client/from_server.
    pub to_server: Option<bool>,
    /// `Some(true)` only_stream, `Some(false)` no_stream.
    pub stream: Option<bool>,
}

/// A flowbits operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowbitOp {
    Set(Vec<u32>),
    Unset(Vec<u32>),
    Toggle(Vec<u32>),
    /// All of the bits set (`a&b`) — a single bit is a one-element group.
    IsSetAll(Vec<u32>),
    /// Any of the bits set (`a|b`).
    IsSetAny(Vec<u32>),
    /// None of the bits set.
    IsNotSetAll(Vec<u32>),
    /// At least one of the bits not set (`a|b` with isnotset).
    IsNotSetAny(Vec<u32>),
}

impl FlowbitOp {
    pub(crate) fn is_condition(&self) -> bool {
        matches!(self, FlowbitOp::IsSetAll(_) | FlowbitOp::IsSetAny(_) | FlowbitOp::IsNotSetAll(_) | FlowbitOp::IsNotSetAny(_))
    }
}

/// xbits: a bit kept per host or host pair (not per flow), with an expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XbitOp {
    pub cmd: XbitCmd,
    pub id: u32,
    pub track: XbitTrack,
    /// Seconds a set bit lives.
    pub expire: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XbitCmd {
    Set,
    Unset,
    Toggle,
    IsSet,
    IsNotSet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XbitTrack {
    IpSrc,
    IpDst,
    IpPair,
}

/// xbits without `expire` live this long (seconds); Suricata's default is effectively unbounded,
/// a bound keeps the per-worker table from filling with stale bits.
pub const XBITS_DEFAULT_EXPIRE: u32 = 3600;

/// threshold / detection_filter tracking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    BySrc,
    ByDst,
    ByRule,
    ByBoth,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThresholdKind {
    Limit,
    Threshold,
    Both,
    /// detection_filter: alert on every match once the rate is exceeded.
    DetectionFilter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    pub kind: ThresholdKind,
    pub track: Track,
    pub count: u32,
    pub seconds: u32,
}

/// Which packets a rule's protocol field selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtoMatch {
    /// IP protocol numbers; empty = any.
    pub ip_protos: Vec<u8>,
    /// App-layer protocol required (`http`, `dns`, `smb`, ...).
    pub app: Option<String>,
    /// `tcp-pkt`: payload only; `tcp-stream`: stream only.
    pub stream: Option<bool>,
}

/// The fast pattern chosen for a rule: index into `buffers`, the content's index in that
/// buffer's elements, and the bytes (after any `fast_pattern:offset,len` chop).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastPattern {
    pub buffer_idx: usize,
    pub element_idx: usize,
    pub bytes: Vec<u8>,
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub info: Arc<RuleInfo>,
    pub proto: ProtoMatch,
    pub src: IpSet,
    pub sport: PortSet,
    pub dst: IpSet,
    pub dport: PortSet,
    pub bidirectional: bool,
    pub flow: FlowCond,
    pub header: Vec<HeaderCheck>,
    pub buffers: Vec<BufferMatch>,
    pub flowbits: Vec<FlowbitOp>,
    pub xbits: Vec<XbitOp>,
    pub noalert: bool,
    pub threshold: Option<Threshold>,
    pub detection_filter: Option<Threshold>,
    pub stage: Stage,
    pub fast: Option<FastPattern>,
    /// Notes on accepted keywords without effect (`tag`, `filestore`, ...), for the check report.
    pub notes: Vec<String>,
}

/// State shared by the compilation of one rule set: flowbit names and byte_extract variables.
#[derive(Debug, Default)]
pub struct CompileCtx {
    /// Rules compile on several threads ([`crate::load`]): the names are behind a lock, taken
    /// only by rules with flowbits.
    flowbits: std::sync::Mutex<HashMap<String, u32>>,
}

impl CompileCtx {
    fn flowbit(&self, name: &str) -> Result<u32, CompileError> {
        let mut flowbits = self.flowbits.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&id) = flowbits.get(name) {
            return Ok(id);
        }
        if flowbits.len() >= MAX_FLOWBITS {
            return Err(bad("flowbits", "too many distinct flowbit names"));
        }
        let id = flowbits.len() as u32;
        flowbits.insert(name.to_string(), id);
        Ok(id)
    }

    /// Number of distinct flowbit names seen.
    pub fn flowbit_count(&self) -> usize {
        self.flowbits.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

fn proto_match(proto: &str) -> Result<ProtoMatch, CompileError> {
    let p = proto.to_ascii_lowercase();
    let ip = |v: &[u8]| ProtoMatch { ip_protos: v.to_vec(), app: None, stream: None };
    Ok(match p.as_str() {
        "ip" | "pkthdr" => ip(&[]),
        "tcp" => ip(&[6]),
        "tcp-pkt" => ProtoMatch { stream: Some(false), ..ip(&[6]) },
        "tcp-stream" => ProtoMatch { stream: Some(true), ..ip(&[6]) },
        "udp" => ip(&[17]),
        "icmp" => ip(&[1, 58]),
        "icmpv4" => ip(&[1]),
        "icmpv6" => ip(&[58]),
        "sctp" => ip(&[132]),
        "http" | "http1" | "http2" | "dns" | "tls" | "smtp" | "ftp" | "ftp-data" | "ssh" | "smb" | "dcerpc"
        | "dhcp" | "krb5" | "nfs" | "ntp" | "snmp" | "sip" | "rdp" | "mqtt" | "quic" | "modbus" | "dnp3"
        | "enip" | "ikev2" | "tftp" | "imap" | "pop3" | "rfb" | "telnet" | "irc" | "ldap" | "pgsql"
        | "bittorrent-dht" | "websocket" => ProtoMatch { ip_protos: vec![], app: Some(p.clone()), stream: None },
        _ => return Err(CompileError::UnsupportedProtocol(proto.to_string())),
    })
}

/// Parses a content value: quotes, `|hex|` blocks, escapes; `!` negation.
pub fn parse_content(value: &str) -> Result<(Vec<u8>, bool), CompileError> {
    let mut v = value.trim();
    let negated = v.starts_with('!');
    if negated {
        v = v[1..].trim_start();
    }
    if !(v.len() >= 2 && v.starts_with('"') && v.ends_with('"')) {
        return Err(bad("content", "value must be quoted"));
    }
    let inner = &v.as_bytes()[1..v.len() - 1];
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    let mut hex = false;
    let mut nibble: Option<u8> = None;
    while i < inner.len() {
        let b = inner[i];
        if b == b'|' {
            if nibble.is_some() {
                return Err(bad("content", "odd number of hex digits"));
            }
            hex = !hex;
            i += 1;
            continue;
        }
        if hex {
            if b == b' ' || b == b'\t' {
                i += 1;
                continue;
            }
            let d = (b as char).to_digit(16).ok_or_else(|| bad("content", format!("bad hex digit {:?}", b as char)))? as u8;
            match nibble.take() {
                None => nibble = Some(d),
                Some(h) => out.push(h << 4 | d),
            }
            i += 1;
            continue;
        }
        if b == b'\\' {
            match inner.get(i + 1) {
                Some(&n) => {
                    out.push(n);
                    i += 2;
                    continue;
                }
                None => return Err(bad("content", "trailing backslash")),
            }
        }
        out.push(b);
        i += 1;
    }
    if hex {
        return Err(bad("content", "unterminated |hex| block"));
    }
    if out.is_empty() {
        return Err(bad("content", "empty pattern"));
    }
    if out.len() > MAX_CONTENT_LEN {
        return Err(bad("content", "pattern too long"));
    }
    Ok((out, negated))
}

fn parse_u64(keyword: &str, s: &str) -> Result<u64, CompileError> {
    int_in(keyword, s, 0, u64::MAX)
}

/// A decimal or `0x` hexadecimal integer, optionally negative. Too many digits reads as
/// `i128::MAX` (then out of any range).
fn parse_int(keyword: &str, s: &str) -> Result<i128, CompileError> {
    let t = s.trim();
    let (negative, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let parsed = match digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        Some(h) => u128::from_str_radix(h, 16),
        None => digits.parse::<u128>(),
    };
    let v = match parsed {
        Ok(v) => i128::try_from(v).unwrap_or(i128::MAX),
        Err(e) if matches!(e.kind(), std::num::IntErrorKind::PosOverflow) => i128::MAX,
        Err(_) => return Err(bad(keyword, format!("expected a number, got {t:?}"))),
    };
    Ok(if negative { -v } else { v })
}

/// An integer that must lie in `lo..=hi`: the range Suricata accepts for the keyword (the
/// width of the field it is compared with, or the bounds its parser sets). A value outside is
/// an error, never a wrap, a truncation or a clamp.
fn int_in<T>(keyword: &str, s: &str, lo: T, hi: T) -> Result<T, CompileError>
where
    T: Copy + Into<i128> + TryFrom<i128> + std::fmt::Display,
{
    let v = parse_int(keyword, s)?;
    let out_of_range = || bad(keyword, format!("must be in {lo}..={hi}, got {}", s.trim()));
    if v < lo.into() || v > hi.into() {
        return Err(out_of_range());
    }
    T::try_from(v).map_err(|_| out_of_range())
}

/// Suricata's bounds for content positions: `offset` and `depth` are 16-bit, `distance` and
/// `within` at most 1 MiB either way (its DETECT_CONTENT_VALUE_MAX).
const CONTENT_POSITION_MAX: i64 = 65_535;
const CONTENT_RELATIVE_MAX: i64 = 1024 * 1024;
/// byte_jump's offset and post_offset, and the multiplier of byte_jump and byte_extract,
/// are limited to 16 bits by Suricata's parser.
const BYTE_JUMP_OFFSET_MAX: i64 = 65_535;
const BYTE_MULTIPLIER_MAX: u64 = 65_535;
/// byte_test's literal offset is a signed 32-bit number in Suricata.
const BYTE_TEST_OFFSET: (i64, i64) = (i32::MIN as i64, i32::MAX as i64);

/// A literal `depth` or `within` shorter than its content leaves no room for it: Suricata
/// refuses the rule, which could never match.
fn check_fits(keyword: &str, v: Val, c: &Content) -> Result<(), CompileError> {
    match v {
        Val::Lit(n) if (n as u64) < c.pattern.len() as u64 => {
            Err(bad(keyword, format!("{n} is shorter than the content ({} bytes): the rule could never match", c.pattern.len())))
        }
        _ => Ok(()),
    }
}

struct VarTable {
    names: Vec<String>,
}

impl VarTable {
    /// A byte_extract variable, or a literal in `lo..=hi` (a variable's value is checked when
    /// it is read, against the buffer).
    fn val(&self, keyword: &str, s: &str, lo: i64, hi: i64) -> Result<Val, CompileError> {
        let s = s.trim();
        if let Some(i) = self.names.iter().position(|n| n == s) {
            return Ok(Val::Var(i as u8));
        }
        Ok(Val::Lit(int_in(keyword, s, lo, hi)?))
    }

    /// byte_test's value: a variable or any unsigned 64-bit number (kept in the `i64` slot
    /// bit for bit; byte_test compares it as `u64`).
    fn val_u64(&self, keyword: &str, s: &str) -> Result<Val, CompileError> {
        let s = s.trim();
        if let Some(i) = self.names.iter().position(|n| n == s) {
            return Ok(Val::Var(i as u8));
        }
        Ok(Val::Lit(int_in(keyword, s, 0u64, u64::MAX)? as i64))
    }
}

/// Where compilation of payload keywords currently stands.
struct Builder {
    buffers: Vec<BufferMatch>,
    current: Buffer,
    /// (buffer index, element index) of the last content, for modifiers.
    last_content: Option<(usize, usize)>,
    /// Buffer index of the last sticky-buffer keyword, for transforms and bsize.
    last_sticky: Option<usize>,
}

impl Builder {
    fn buffer_index(&mut self, b: Buffer) -> usize {
        if let Some(i) = self.buffers.iter().position(|m| m.buffer == b) {
            return i;
        }
        self.buffers.push(BufferMatch { buffer: b, transforms: vec![], size: None, elements: vec![] });
        self.buffers.len() - 1
    }

    fn push(&mut self, e: Element) -> (usize, usize) {
        let bi = self.buffer_index(self.current);
        self.buffers[bi].elements.push(e);
        (bi, self.buffers[bi].elements.len() - 1)
    }

    fn last_content_mut(&mut self, keyword: &str) -> Result<&mut Content, CompileError> {
        let (bi, ei) = self.last_content.ok_or_else(|| bad(keyword, "no preceding content"))?;
        match self.buffers.get_mut(bi).and_then(|b| b.elements.get_mut(ei)) {
            Some(Element::Content(c)) => Ok(c),
            _ => Err(bad(keyword, "no preceding content")),
        }
    }

    /// Moves the last content (and nothing else) to another buffer (legacy modifiers).
    fn move_last_content(&mut self, keyword: &str, to: Buffer) -> Result<(), CompileError> {
        let (bi, ei) = self.last_content.ok_or_else(|| bad(keyword, "no preceding content"))?;
        if self.buffers[bi].buffer == to {
            return Ok(());
        }
        let el = self.buffers[bi].elements.remove(ei);
        let ti = self.buffer_index(to);
        self.buffers[ti].elements.push(el);
        self.last_content = Some((ti, self.buffers[ti].elements.len() - 1));
        Ok(())
    }
}

fn args(value: &Option<String>) -> Vec<String> {
    value.as_deref().unwrap_or("").split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

fn need(o: &RawOption) -> Result<&str, CompileError> {
    o.value.as_deref().ok_or_else(|| bad(&o.keyword, "missing value"))
}

/// The read shared by byte_test, byte_jump and byte_extract; `offset_range` is the keyword's
/// bounds for a literal offset.
fn parse_byte_read(
    keyword: &str,
    a: &[String],
    vars: &VarTable,
    off_idx: usize,
    extra_start: usize,
    offset_range: (i64, i64),
) -> Result<(ByteRead, Vec<String>), CompileError> {
    let bytes = parse_u64(keyword, a.first().map(String::as_str).unwrap_or(""))?;
    let offset = a.get(off_idx).map(String::as_str).ok_or_else(|| bad(keyword, "missing offset"))?;
    let offset = vars.val(keyword, offset, offset_range.0, offset_range.1)?;
    let mut read = ByteRead { bytes: 0, offset, relative: false, little_endian: false, string_radix: None, bitmask: None };
    let mut rest = Vec::new();
    let mut i = extra_start;
    while i < a.len() {
        let opt = a[i].as_str();
        match opt {
            "relative" => read.relative = true,
            "little" => read.little_endian = true,
            "big" => read.little_endian = false,
            // DCE/RPC data is little-endian in practice; without a DCE parser we assume it.
            "dce" => read.little_endian = true,
            "string" => read.string_radix = Some(10),
            "hex" => read.string_radix = Some(16),
            "dec" => read.string_radix = Some(10),
            "oct" => read.string_radix = Some(8),
            _ if opt.starts_with("bitmask") => {
                let m = opt["bitmask".len()..].trim();
                read.bitmask = Some(int_in(keyword, m, 0u64, u32::MAX as u64)?);
            }
            _ => rest.push(opt.to_string()),
        }
        i += 1;
    }
    let max = if read.string_radix.is_some() { MAX_BYTES_STRING } else { MAX_BYTES_BINARY };
    if bytes == 0 || bytes > max as u64 {
        return Err(bad(keyword, format!("byte count must be 1..={max}, got {bytes}")));
    }
    read.bytes = bytes as u32;
    Ok((read, rest))
}

fn parse_flags(keyword: &str, s: &str) -> Result<(FlagMode, u8), CompileError> {
    let mut mode = FlagMode::Exact;
    let mut want = 0u8;
    for c in s.trim().chars() {
        match c {
            '+' => mode = FlagMode::All,
            '*' => mode = FlagMode::Any,
            '!' => mode = FlagMode::Not,
            'F' | 'f' => want |= 0x01,
            'S' | 's' => want |= 0x02,
            'R' | 'r' => want |= 0x04,
            'P' | 'p' => want |= 0x08,
            'A' | 'a' => want |= 0x10,
            'U' | 'u' => want |= 0x20,
            'E' | 'e' | '2' => want |= 0x40,
            'C' | 'c' | '1' => want |= 0x80,
            '0' => {}
            ' ' => {}
            _ => return Err(bad(keyword, format!("unknown flag {c:?}"))),
        }
    }
    Ok((mode, want))
}

fn tls_version_value(s: &str) -> Option<u16> {
    Some(match s.trim().to_ascii_lowercase().as_str() {
        "sslv2" => 0x0200,
        "sslv3" => 0x0300,
        "tls1.0" | "1.0" => 0x0301,
        "tls1.1" | "1.1" => 0x0302,
        "tls1.2" | "1.2" => 0x0303,
        "tls1.3" | "1.3" => 0x0304,
        other => {
            let h = other.strip_prefix("0x")?;
            u16::from_str_radix(h, 16).ok()?
        }
    })
}

/// Compiles one raw rule.
pub fn compile(raw: &RawRule, vars: &Vars, cls: &Classification, ctx: &CompileCtx) -> Result<Rule, CompileError> {
    let action = match raw.action.as_str() {
        "alert" => Action::Alert,
        "drop" => Action::Drop,
        "reject" | "rejectsrc" | "rejectdst" | "rejectboth" => Action::Reject,
        "pass" => Action::Pass,
        other => return Err(CompileError::UnsupportedAction(other.to_string())),
    };
    let proto = proto_match(&raw.proto)?;
    let src = vars.ip_set(&raw.src)?;
    let sport = vars.port_set(&raw.sport)?;
    let dst = vars.ip_set(&raw.dst)?;
    let dport = vars.port_set(&raw.dport)?;

    let mut sid: Option<u64> = None;
    let mut gid: u32 = 1;
    let mut rev: u32 = 0;
    let mut msg = String::new();
    let mut classtype: Option<String> = None;
    let mut priority: Option<u8> = None;
    let mut metadata = Vec::new();
    let mut references = Vec::new();
    let mut target = None;
    let mut flow = FlowCond::default();
    let mut header = Vec::new();
    let mut flowbits = Vec::new();
    let mut xbits = Vec::new();
    let mut noalert = false;
    let mut threshold = None;
    let mut detection_filter = None;
    let mut notes = Vec::new();
    let mut var_table = VarTable { names: vec![] };
    let mut b = Builder { buffers: vec![], current: Buffer::Packet, last_content: None, last_sticky: None };

    for o in &raw.options {
        let k = o.keyword.as_str();
        // Legacy content modifiers first: `http_uri` etc. move the previous content.
        if let Some(to) = Buffer::from_modifier(k) {
            if o.value.is_none() {
                b.move_last_content(k, to)?;
                continue;
            }
        }
        if let Some(buf) = Buffer::from_sticky(k) {
            if o.value.is_some() {
                return Err(bad(k, "takes no value"));
            }
            b.current = buf;
            let bi = b.buffer_index(buf);
            b.last_sticky = Some(bi);
            continue;
        }
        if let Some(t) = Transform::from_keyword(k) {
            let bi = b.last_sticky.ok_or_else(|| bad(k, "transform without a preceding sticky buffer"))?;
            b.buffers[bi].transforms.push(t);
            continue;
        }
        match k {
            "msg" => msg = unquote(need(o)?),
            // Suricata's sid and rev are 32-bit and never 0.
            "sid" => sid = Some(u64::from(int_in(k, need(o)?, 1u32, u32::MAX)?)),
            "rev" => rev = int_in(k, need(o)?, 1u32, u32::MAX)?,
            "gid" => gid = int_in(k, need(o)?, 0u32, u32::MAX)?,
            "classtype" => classtype = Some(need(o)?.trim().to_string()),
            "priority" => priority = Some(int_in(k, need(o)?, 1u8, 255)?),
            "metadata" => {
                for item in need(o)?.split(',') {
                    let item = item.trim();
                    if item.is_empty() {
                        continue;
                    }
                    let (key, val) = item.split_once(' ').unwrap_or((item, ""));
                    metadata.push((key.trim().to_string(), val.trim().to_string()));
                }
            }
            "reference" => {
                let v = need(o)?;
                let (kind, val) = v.split_once(',').ok_or_else(|| bad(k, "expected type,value"))?;
                references.push(cls.reference_url(kind.trim(), val.trim()));
            }
            "target" => {
                target = Some(match need(o)?.trim() {
                    "src_ip" => Target::SrcIp,
                    "dest_ip" => Target::DestIp,
                    other => return Err(bad(k, format!("expected src_ip or dest_ip, got {other:?}"))),
                })
            }
            "content" | "uricontent" => {
                let (pattern, negated) = parse_content(need(o)?)?;
                if k == "uricontent" {
                    b.current = Buffer::HttpUri;
                }
                let pos = b.push(Element::Content(Content::new(pattern, negated)));
                b.last_content = Some(pos);
            }
            "nocase" => b.last_content_mut(k)?.nocase = true,
            "rawbytes" => {}
            "depth" => {
                let v = var_table.val(k, need(o)?, 1, CONTENT_POSITION_MAX)?;
                let c = b.last_content_mut(k)?;
                check_fits(k, v, c)?;
                c.depth = Some(v)
            }
            "offset" => {
                let v = var_table.val(k, need(o)?, 0, CONTENT_POSITION_MAX)?;
                b.last_content_mut(k)?.offset = Some(v)
            }
            "distance" => {
                let v = var_table.val(k, need(o)?, -CONTENT_RELATIVE_MAX, CONTENT_RELATIVE_MAX)?;
                b.last_content_mut(k)?.distance = Some(v)
            }
            "within" => {
                let v = var_table.val(k, need(o)?, 1, CONTENT_RELATIVE_MAX)?;
                let c = b.last_content_mut(k)?;
                check_fits(k, v, c)?;
                c.within = Some(v)
            }
            "startswith" => b.last_content_mut(k)?.startswith = true,
            "endswith" => b.last_content_mut(k)?.endswith = true,
            "fast_pattern" => {
                let c = b.last_content_mut(k)?;
                c.fast_pattern = true;
                match o.value.as_deref().map(str::trim) {
                    None => {}
                    Some("only") => c.fast_pattern_only = true,
                    Some(v) => {
                        let (a, l) = v.split_once(',').ok_or_else(|| bad(k, "expected only or offset,length"))?;
                        let a = int_in(k, a, 0u16, u16::MAX)?;
                        let l = int_in(k, l, 0u16, u16::MAX)?;
                        if a as usize + l as usize > c.pattern.len() {
                            return Err(bad(k, format!("{a},{l} reaches past the end of the content ({} bytes)", c.pattern.len())));
                        }
                        c.fast_pattern_chop = Some((a, l));
                    }
                }
            }
            "pcre" => {
                let (pcre, buf) = compile_pcre(need(o)?)?;
                if let Some(buf) = buf {
                    b.current = buf;
                }
                b.push(Element::Pcre(Box::new(pcre)));
            }
            "isdataat" => {
                let a = args(&o.value);
                let first = a.first().ok_or_else(|| bad(k, "missing value"))?;
                let (negated, n) = match first.strip_prefix('!') {
                    Some(r) => (true, r),
                    None => (false, first.as_str()),
                };
                let pos = var_table.val(k, n, 0, CONTENT_POSITION_MAX)?;
                let mut relative = false;
                for extra in &a[1..] {
                    match extra.as_str() {
                        "relative" => relative = true,
                        "rawbytes" => {}
                        other => return Err(bad(k, format!("unknown option {other:?}"))),
                    }
                }
                b.push(Element::IsDataAt { pos, relative, negated });
            }
            "byte_test" => {
                let a = args(&o.value);
                if a.len() < 4 {
                    return Err(bad(k, "expected bytes, operator, value, offset"));
                }
                let (negated, op) = match a[1].strip_prefix('!') {
                    Some(r) => (true, r.trim()),
                    None => (false, a[1].as_str()),
                };
                let op = match op {
                    "<" => ByteOp::Lt,
                    ">" => ByteOp::Gt,
                    "=" => ByteOp::Eq,
                    "<=" => ByteOp::Le,
                    ">=" => ByteOp::Ge,
                    "&" => ByteOp::And,
                    "^" => ByteOp::Xor,
                    "!=" => {
                        let value = var_table.val_u64(k, &a[2])?;
                        let (read, rest) = parse_byte_read(k, &a, &var_table, 3, 4, BYTE_TEST_OFFSET)?;
                        if !rest.is_empty() {
                            return Err(bad(k, format!("unknown option {:?}", rest[0])));
                        }
                        b.push(Element::ByteTest(ByteTest { read, op: ByteOp::Eq, negated: !negated, value }));
                        continue;
                    }
                    other => return Err(bad(k, format!("unknown operator {other:?}"))),
                };
                let value = var_table.val_u64(k, &a[2])?;
                let (read, rest) = parse_byte_read(k, &a, &var_table, 3, 4, BYTE_TEST_OFFSET)?;
                if !rest.is_empty() {
                    return Err(bad(k, format!("unknown option {:?}", rest[0])));
                }
                b.push(Element::ByteTest(ByteTest { read, op, negated, value }));
            }
            "byte_jump" => {
                let a = args(&o.value);
                if a.len() < 2 {
                    return Err(bad(k, "expected bytes, offset"));
                }
                let (read, rest) = parse_byte_read(k, &a, &var_table, 1, 2, (-BYTE_JUMP_OFFSET_MAX, BYTE_JUMP_OFFSET_MAX))?;
                let mut j = ByteJump { read, multiplier: 1, align: false, from_beginning: false, from_end: false, post_offset: 0 };
                for opt in rest {
                    if opt == "align" {
                        j.align = true;
                    } else if opt == "from_beginning" {
                        j.from_beginning = true;
                    } else if opt == "from_end" {
                        j.from_end = true;
                    } else if let Some(m) = opt.strip_prefix("multiplier") {
                        j.multiplier = int_in(k, m, 1, BYTE_MULTIPLIER_MAX)?;
                    } else if let Some(p) = opt.strip_prefix("post_offset") {
                        j.post_offset = int_in(k, p, -BYTE_JUMP_OFFSET_MAX, BYTE_JUMP_OFFSET_MAX)?;
                    } else {
                        return Err(bad(k, format!("unknown option {opt:?}")));
                    }
                }
                b.push(Element::ByteJump(j));
            }
            "byte_extract" => {
                let a = args(&o.value);
                if a.len() < 3 {
                    return Err(bad(k, "expected bytes, offset, name"));
                }
                let name = a[2].clone();
                if var_table.names.len() >= MAX_BYTE_VARS {
                    return Err(bad(k, "too many byte_extract variables"));
                }
                let mut full = vec![a[0].clone(), a[1].clone()];
                full.extend(a[3..].iter().cloned());
                let (read, rest) = parse_byte_read(k, &full, &var_table, 1, 2, (i16::MIN.into(), i16::MAX.into()))?;
                let mut x = ByteExtract { read, multiplier: 1, align: false, slot: var_table.names.len() as u8 };
                for opt in rest {
                    if opt == "align" {
                        x.align = true;
                    } else if let Some(m) = opt.strip_prefix("multiplier") {
                        x.multiplier = int_in(k, m, 1, BYTE_MULTIPLIER_MAX)?;
                    } else {
                        return Err(bad(k, format!("unknown option {opt:?}")));
                    }
                }
                var_table.names.push(name);
                b.push(Element::ByteExtract(x));
            }
            "base64_decode" => {
                let mut bytes = None;
                let mut offset = 0;
                let mut relative = false;
                for opt in args(&o.value) {
                    if opt == "relative" {
                        relative = true;
                    } else if let Some(v) = opt.strip_prefix("bytes") {
                        bytes = Some(u32::from(int_in(k, v, 0u16, u16::MAX)?));
                    } else if let Some(v) = opt.strip_prefix("offset") {
                        offset = int_in(k, v, 0u32, u32::MAX)?;
                    } else {
                        return Err(bad(k, format!("unknown option {opt:?}")));
                    }
                }
                b.push(Element::Base64Decode { bytes, offset, relative });
            }
            "bsize" => {
                let bi = b.last_sticky.ok_or_else(|| bad(k, "bsize without a preceding sticky buffer"))?;
                b.buffers[bi].size = Some(NumCmp::parse(need(o)?, u64::MAX).map_err(|e| bad(k, e))?);
            }
            "urilen" => {
                let a = args(&o.value);
                let cmp = NumCmp::parse(a.first().map(String::as_str).unwrap_or(""), u16::MAX.into()).map_err(|e| bad(k, e))?;
                let buf = if a.get(1).map(String::as_str) == Some("raw") { Buffer::HttpUriRaw } else { Buffer::HttpUri };
                let bi = b.buffer_index(buf);
                b.buffers[bi].size = Some(cmp);
            }
            // Each comparison is bounded by the width of its field (Suricata's u8/u16/u32 parsers).
            "dsize" => header.push(HeaderCheck::Dsize(NumCmp::parse(need(o)?, u16::MAX.into()).map_err(|e| bad(k, e))?)),
            "ttl" => header.push(HeaderCheck::Ttl(NumCmp::parse(need(o)?, u8::MAX.into()).map_err(|e| bad(k, e))?)),
            "id" => header.push(HeaderCheck::IpId(NumCmp::parse(need(o)?, u16::MAX.into()).map_err(|e| bad(k, e))?)),
            "seq" => header.push(HeaderCheck::Seq(int_in(k, need(o)?, 0u32, u32::MAX)?)),
            "ack" => header.push(HeaderCheck::Ack(int_in(k, need(o)?, 0u32, u32::MAX)?)),
            "window" => {
                let v = need(o)?.trim();
                let (negated, n) = match v.strip_prefix('!') {
                    Some(r) => (true, r),
                    None => (false, v),
                };
                header.push(HeaderCheck::Window { negated, value: int_in(k, n, 0u16, u16::MAX)? });
            }
            "itype" => header.push(HeaderCheck::Itype(NumCmp::parse(need(o)?, u8::MAX.into()).map_err(|e| bad(k, e))?)),
            "icode" => header.push(HeaderCheck::Icode(NumCmp::parse(need(o)?, u8::MAX.into()).map_err(|e| bad(k, e))?)),
            "icmp_id" => header.push(HeaderCheck::IcmpId(int_in(k, need(o)?, 0u16, u16::MAX)?)),
            "icmp_seq" => header.push(HeaderCheck::IcmpSeq(int_in(k, need(o)?, 0u16, u16::MAX)?)),
            "ip_proto" => {
                let v = need(o)?.trim();
                let named = match v.trim_start_matches(['!', '<', '>']).to_ascii_lowercase().as_str() {
                    "tcp" => Some(6),
                    "udp" => Some(17),
                    "icmp" => Some(1),
                    "igmp" => Some(2),
                    "gre" => Some(47),
                    "esp" => Some(50),
                    "ah" => Some(51),
                    "ipv6-icmp" | "icmpv6" => Some(58),
                    "sctp" => Some(132),
                    _ => None,
                };
                let cmp = match named {
                    Some(n) if v.starts_with('!') => NumCmp::Ne(n),
                    Some(n) => NumCmp::Eq(n),
                    None => NumCmp::parse(v, u8::MAX.into()).map_err(|e| bad(k, format!("expected a protocol number or name: {e}")))?,
                };
                header.push(HeaderCheck::IpProto(cmp));
            }
            "flags" => {
                let v = need(o)?;
                let (f, ignore) = match v.split_once(',') {
                    Some((f, m)) => (f, parse_flags(k, m)?.1),
                    None => (v, 0),
                };
                let (mode, want) = parse_flags(k, f)?;
                header.push(HeaderCheck::Flags { mode, want, ignore });
            }
            "fragbits" => {
                let mut mode = FlagMode::Exact;
                let mut want = 0u8;
                for c in need(o)?.trim().chars() {
                    match c {
                        '+' => mode = FlagMode::All,
                        '*' => mode = FlagMode::Any,
                        '!' => mode = FlagMode::Not,
                        'M' => want |= 1,
                        'D' => want |= 2,
                        'R' => want |= 4,
                        _ => return Err(bad(k, format!("unknown fragment bit {c:?}"))),
                    }
                }
                header.push(HeaderCheck::Fragbits { mode, want });
            }
            "sameip" => header.push(HeaderCheck::SameIp),
            "stream_size" => {
                let a = args(&o.value);
                if a.len() != 3 {
                    return Err(bad(k, "expected side, operator, value"));
                }
                let side = match a[0].as_str() {
                    "server" => StreamSide::Server,
                    "client" => StreamSide::Client,
                    "both" => StreamSide::Both,
                    "either" => StreamSide::Either,
                    other => return Err(bad(k, format!("unknown side {other:?}"))),
                };
                let cmp = NumCmp::parse(&format!("{}{}", if a[1] == "=" { "" } else { &a[1] }, a[2]), u32::MAX.into())
                    .map_err(|e| bad(k, e))?;
                header.push(HeaderCheck::StreamSize { side, cmp });
            }
            "app-layer-protocol" => {
                let v = need(o)?.trim();
                let (negated, name) = match v.strip_prefix('!') {
                    Some(r) => (true, r),
                    None => (false, v),
                };
                header.push(HeaderCheck::AppProto { negated, name: name.to_ascii_lowercase() });
            }
            "tls.version" => {
                let v = tls_version_value(need(o)?).ok_or_else(|| bad(k, "expected 1.0, 1.1, 1.2, 1.3 or 0xNNNN"))?;
                header.push(HeaderCheck::TlsVersion(v));
            }
            "ssl_version" => {
                let mut versions = Vec::new();
                let mut negated = false;
                for item in args(&o.value) {
                    let (n, name) = match item.strip_prefix('!') {
                        Some(r) => (true, r.to_string()),
                        None => (false, item),
                    };
                    negated |= n;
                    versions.push(tls_version_value(&name).ok_or_else(|| bad(k, format!("unknown version {name:?}")))?);
                }
                header.push(HeaderCheck::SslVersion { negated, versions });
            }
            "dns.opcode" => {
                let v = need(o)?.trim();
                let (negated, n) = match v.strip_prefix('!') {
                    Some(r) => (true, r),
                    None => (false, v),
                };
                header.push(HeaderCheck::DnsOpcode { negated, value: int_in(k, n, 0u8, u8::MAX)? });
            }
            "flow" => {
                for item in args(&o.value) {
                    match item.as_str() {
                        "established" => flow.established = Some(true),
                        "not_established" => flow.established = Some(false),
                        "stateless" => {}
                        "to_server" | "from_client" => flow.to_server = Some(true),
                        "to_client" | "from_server" => flow.to_server = Some(false),
                        "only_stream" => flow.stream = Some(true),
                        "no_stream" => flow.stream = Some(false),
                        "no_frag" | "only_frag" => {}
                        other => return Err(bad(k, format!("unknown option {other:?}"))),
                    }
                }
            }
            "flowbits" => {
                let a = args(&o.value);
                let cmd = a.first().ok_or_else(|| bad(k, "missing command"))?.as_str();
                if cmd == "noalert" {
                    noalert = true;
                    continue;
                }
                let names = a.get(1).ok_or_else(|| bad(k, "missing flowbit name"))?;
                let any = names.contains('|');
                let mut ids = Vec::new();
                for n in names.split(['|', '&']) {
                    let n = n.trim();
                    if n.is_empty() {
                        return Err(bad(k, "empty flowbit name"));
                    }
                    ids.push(ctx.flowbit(n)?);
                }
                flowbits.push(match cmd {
                    "set" => FlowbitOp::Set(ids),
                    "unset" => FlowbitOp::Unset(ids),
                    "toggle" => FlowbitOp::Toggle(ids),
                    "isset" if any => FlowbitOp::IsSetAny(ids),
                    "isset" => FlowbitOp::IsSetAll(ids),
                    "isnotset" if any => FlowbitOp::IsNotSetAny(ids),
                    "isnotset" => FlowbitOp::IsNotSetAll(ids),
                    other => return Err(bad(k, format!("unknown command {other:?}"))),
                });
            }
            "noalert" => noalert = true,
            "xbits" => {
                let a = args(&o.value);
                if a.len() < 3 {
                    return Err(bad(k, "expected command, name, track ip_src|ip_dst|ip_pair[, expire N]"));
                }
                let cmd = match a[0].as_str() {
                    "set" => XbitCmd::Set,
                    "unset" => XbitCmd::Unset,
                    "toggle" => XbitCmd::Toggle,
                    "isset" => XbitCmd::IsSet,
                    "isnotset" => XbitCmd::IsNotSet,
                    other => return Err(bad(k, format!("unknown command {other:?}"))),
                };
                let id = ctx.flowbit(&format!("xbits:{}", a[1]))?;
                let mut track = None;
                let mut expire = XBITS_DEFAULT_EXPIRE;
                for item in &a[2..] {
                    let (key, val) = item.split_once(char::is_whitespace).ok_or_else(|| bad(k, format!("bad item {item:?}")))?;
                    match (key, val.trim()) {
                        ("track", "ip_src") => track = Some(XbitTrack::IpSrc),
                        ("track", "ip_dst") => track = Some(XbitTrack::IpDst),
                        ("track", "ip_pair") => track = Some(XbitTrack::IpPair),
                        ("expire", v) => expire = int_in(k, v, 1u32, u32::MAX)?,
                        _ => return Err(bad(k, format!("unknown item {item:?}"))),
                    }
                }
                let track = track.ok_or_else(|| bad(k, "missing track ip_src|ip_dst|ip_pair"))?;
                xbits.push(XbitOp { cmd, id, track, expire });
            }
            "threshold" | "detection_filter" => {
                let mut kind = if k == "detection_filter" { Some(ThresholdKind::DetectionFilter) } else { None };
                let mut track = None;
                let mut count = None;
                let mut seconds = None;
                for item in args(&o.value) {
                    let (key, val) = item.split_once(char::is_whitespace).ok_or_else(|| bad(k, format!("bad item {item:?}")))?;
                    let val = val.trim();
                    match key {
                        "type" => {
                            kind = Some(match val {
                                "limit" => ThresholdKind::Limit,
                                "threshold" => ThresholdKind::Threshold,
                                "both" => ThresholdKind::Both,
                                other => return Err(bad(k, format!("unknown type {other:?}"))),
                            })
                        }
                        "track" => {
                            track = Some(match val {
                                "by_src" => Track::BySrc,
                                "by_dst" => Track::ByDst,
                                "by_rule" => Track::ByRule,
                                "by_both" => Track::ByBoth,
                                other => return Err(bad(k, format!("unknown track {other:?}"))),
                            })
                        }
                        // detection_filter needs both above 0 (Suricata refuses 0).
                        "count" => count = Some(int_in(k, val, (k == "detection_filter") as u32, u32::MAX)?),
                        "seconds" => seconds = Some(int_in(k, val, (k == "detection_filter") as u32, u32::MAX)?),
                        other => return Err(bad(k, format!("unknown item {other:?}"))),
                    }
                }
                let t = Threshold {
                    kind: kind.ok_or_else(|| bad(k, "missing type"))?,
                    track: track.ok_or_else(|| bad(k, "missing track"))?,
                    count: count.ok_or_else(|| bad(k, "missing count"))?.max(1),
                    seconds: seconds.ok_or_else(|| bad(k, "missing seconds"))?,
                };
                if k == "detection_filter" {
                    detection_filter = Some(t);
                } else {
                    threshold = Some(t);
                }
            }
            "tag" | "filestore" | "tls.store" | "tls_store" => notes.push(format!("{k} accepted without effect")),
            other => return Err(CompileError::UnsupportedKeyword(other.to_string())),
        }
    }

    let sid = sid.ok_or(CompileError::NoSid)?;
    for buf in &mut b.buffers {
        for e in &mut buf.elements {
            if let Element::Content(c) = e {
                c.finish();
            }
        }
    }
    // Empty buffers (a sticky keyword with nothing after it) only require the buffer's presence;
    // keep them, except a bare pkt_data which means nothing.
    b.buffers.retain(|m| !(m.buffer == Buffer::Packet && m.elements.is_empty() && m.size.is_none() && m.transforms.is_empty()));

    let stage = rule_stage(&b.buffers, &header, &proto, flow)?;
    let fast = choose_fast_pattern(&b.buffers);
    let (category, class_prio) = match classtype.as_deref().map(|c| (c, cls.class(c))) {
        Some((_, Some(ct))) => (ct.description.clone(), Some(ct.priority)),
        Some((name, None)) => (name.to_string(), None),
        None => (String::new(), None),
    };
    let inspects_payload = b.buffers.iter().any(|m| m.buffer == Buffer::Packet);
    let stream_payload = (proto.stream == Some(true) || flow.stream == Some(true)) && inspects_payload;
    let info = RuleInfo {
        stream_payload,
        inspects_payload,
        gid,
        sid,
        rev,
        msg,
        action,
        classtype,
        category,
        priority: priority.or(class_prio).unwrap_or(DEFAULT_PRIORITY),
        metadata,
        references,
        target,
    };
    Ok(Rule {
        info: Arc::new(info),
        proto,
        src,
        sport,
        dst,
        dport,
        bidirectional: raw.bidirectional,
        flow,
        header,
        buffers: b.buffers,
        flowbits,
        xbits,
        noalert,
        threshold,
        detection_filter,
        stage,
        fast,
        notes,
    })
}

/// `pcre:"/re/flags"`: the compiled regex and the buffer selected by legacy flags.
fn compile_pcre(value: &str) -> Result<(Pcre, Option<Buffer>), CompileError> {
    let k = "pcre";
    let mut v = value.trim();
    let negated = v.starts_with('!');
    if negated {
        v = v[1..].trim_start();
    }
    // Suricata also takes the value unquoted (`pcre:/one/U;`).
    let v = match v.strip_prefix('"') {
        Some(inner) => inner.strip_suffix('"').ok_or_else(|| bad(k, "missing closing quote"))?,
        None => v,
    };
    let v = v.strip_prefix('/').ok_or_else(|| bad(k, "expected /regex/flags"))?;
    let close = v.rfind('/').ok_or_else(|| bad(k, "missing closing /"))?;
    let (pattern, flags) = (&v[..close], &v[close + 1..]);
    // The rule parser keeps `\;` and `\"` escapes; PCRE reads them as the literal characters.
    let mut re_flags = RegexFlags::default();
    let mut relative = false;
    let mut buffer = None;
    for f in flags.chars() {
        match f {
            'i' => re_flags.caseless = true,
            's' => re_flags.dotall = true,
            'm' => re_flags.multi_line = true,
            'x' => re_flags.extended = true,
            'A' => re_flags.anchored = true,
            'E' => re_flags.dollar_end_only = true,
            'G' => re_flags.ungreedy = true,
            // `O` (use the configured limits) is what every pcre does here; `B` (raw bytes)
            // is the only kind of buffer there is.
            'O' | 'B' => {}
            'R' => relative = true,
            'U' => buffer = Some(Buffer::HttpUri),
            'I' => buffer = Some(Buffer::HttpUriRaw),
            'P' => buffer = Some(Buffer::HttpRequestBody),
            'Q' => buffer = Some(Buffer::HttpResponseBody),
            'H' => buffer = Some(Buffer::HttpHeader),
            'D' => buffer = Some(Buffer::HttpHeaderRaw),
            'M' => buffer = Some(Buffer::HttpMethod),
            'C' => buffer = Some(Buffer::HttpCookie),
            'S' => buffer = Some(Buffer::HttpStatCode),
            'Y' => buffer = Some(Buffer::HttpStatMsg),
            'V' => buffer = Some(Buffer::HttpUserAgent),
            'W' => buffer = Some(Buffer::HttpHost),
            'Z' => buffer = Some(Buffer::HttpHostRaw),
            other => return Err(bad(k, format!("unknown flag {other:?}"))),
        }
    }
    let regex = Regex::new(pattern, re_flags).map_err(|e| bad(k, format!("regex does not compile: {e}")))?;
    Ok((Pcre { regex, negated, relative, source: pattern.to_string() }, buffer))
}

fn rule_stage(buffers: &[BufferMatch], header: &[HeaderCheck], proto: &ProtoMatch, flow: FlowCond) -> Result<Stage, CompileError> {
    let mut http: Option<Option<bool>> = None; // Some(side) once an http buffer is seen
    let mut http_req = false;
    let mut http_resp = false;
    let mut dns = false;
    let mut tls = false;
    for m in buffers {
        match m.buffer.stage() {
            BufferStage::Neutral => {}
            BufferStage::Http(side) => {
                http = Some(side);
                match side {
                    Some(true) => http_req = true,
                    Some(false) => http_resp = true,
                    None => {}
                }
            }
            BufferStage::Dns => dns = true,
            BufferStage::Tls => tls = true,
        }
    }
    for h in header {
        match h {
            HeaderCheck::TlsVersion(_) | HeaderCheck::SslVersion { .. } => tls = true,
            HeaderCheck::DnsOpcode { .. } => dns = true,
            _ => {}
        }
    }
    let kinds = http.is_some() as u8 + dns as u8 + tls as u8;
    if kinds > 1 {
        return Err(CompileError::Unsupported { keyword: "sticky buffers".into(), reason: "rule mixes buffers of different app-layer protocols".into() });
    }
    if http.is_some() {
        if let Some(app) = &proto.app {
            if !app.starts_with("http") {
                if buffers.iter().all(|m| m.buffer == Buffer::FileData || m.buffer.stage() != BufferStage::Http(None) && !matches!(m.buffer.stage(), BufferStage::Http(_))) {
                    return Err(CompileError::Unsupported {
                        keyword: "file.data".into(),
                        reason: format!("file.data on {app} rules needs {app} file extraction, which ward does not do"),
                    });
                }
                return Err(CompileError::Unsupported { keyword: "sticky buffers".into(), reason: format!("http buffers on a {app} rule") });
            }
        }
        // file.data without a direction inspects the response body (where files come from).
        let file_data = buffers.iter().any(|m| m.buffer == Buffer::FileData);
        let response = http_resp || (!http_req && (flow.to_server == Some(false) || (flow.to_server.is_none() && file_data)));
        return Ok(if response { Stage::HttpResponse } else { Stage::HttpRequest });
    }
    if dns {
        return Ok(Stage::Dns);
    }
    if tls {
        return Ok(Stage::Tls);
    }
    if buffers.iter().any(|m| m.buffer == Buffer::FileData) {
        // file.data outside HTTP (smtp, smb, ftp-data): handled as HTTP body when the app is http.
        return Ok(Stage::HttpResponse);
    }
    Ok(Stage::Packet)
}

/// Suricata's choice: an explicit `fast_pattern`, else the longest positive content, avoiding
/// buffers whose values are tiny and common (method, status code, protocol, content length),
/// where any pattern would make the rule a candidate for most transactions.
fn choose_fast_pattern(buffers: &[BufferMatch]) -> Option<FastPattern> {
    // (bi, ei, explicit, rank, len)
    let mut best: Option<(usize, usize, bool, u8, usize)> = None;
    for (bi, m) in buffers.iter().enumerate() {
        if m.buffer == Buffer::Base64 {
            continue;
        }
        let rank = match m.buffer {
            Buffer::HttpMethod | Buffer::HttpStatCode | Buffer::HttpStatMsg | Buffer::HttpProtocol | Buffer::HttpContentLen => 0u8,
            _ => 1,
        };
        for (ei, e) in m.elements.iter().enumerate() {
            let Element::Content(c) = e else { continue };
            if c.negated {
                continue;
            }
            let cand = (bi, ei, c.fast_pattern, rank, c.pattern.len());
            let better = match best {
                None => true,
                Some(b) => (cand.2, cand.3, cand.4) > (b.2, b.3, b.4),
            };
            if better {
                best = Some(cand);
            }
        }
    }
    let (bi, ei, _, _, _) = best?;
    let Element::Content(c) = &buffers[bi].elements[ei] else { return None };
    let bytes = match c.fast_pattern_chop {
        Some((off, len)) => {
            let s = (off as usize).min(c.pattern.len());
            let e = (s + len as usize).min(c.pattern.len());
            if e > s {
                c.pattern[s..e].to_vec()
            } else {
                c.pattern.clone()
            }
        }
        None => c.pattern.clone(),
    };
    Some(FastPattern { buffer_idx: bi, element_idx: ei, bytes })
}
