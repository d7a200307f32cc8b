//! Packet filter expressions for `--filter`, in a subset of tcpdump's syntax, evaluated in user
//! space on decoded [`Packet`]s.
//!
//! Grammar (keywords are case-insensitive):
//!
//! ```text
//! expr      := and ( ("or" | "||") and )*
//! and       := unary ( ("and" | "&&") unary )*
//! unary     := ("not" | "!") unary | "(" expr ")" | primitive
//! primitive := [proto] [dir] kind value        e.g. `tcp dst port 443`
//!            | proto                           tcp udp icmp icmp6 sctp ip ip6
//!            | ("ip" | "ip6")? "proto" N       an IP protocol number (or tcp/udp/icmp/...)
//!            | "vlan" [N]
//!            | [dir] ADDRESS                   shorthand for `host ADDRESS`
//! dir       := "src" | "dst"                   absent: either direction
//! kind      := "host" ADDRESS | "net" CIDR | "port" N | "portrange" N-M
//! ```
//!
//! Semantics follow tcpdump where they overlap: `port`/`portrange` match TCP, UDP and SCTP only;
//! `net` takes a CIDR (`10.0.0.0/8`, `2001:db8::/32`) or a plain address (a /32 or /128);
//! `vlan N` matches either of the two tags the packet keeps; `ip` and `ip6` match the IP version.
//! A filter sees one packet: for tunnelled traffic the caller chooses the layer (usually the
//! innermost). A frame that does not decode (truncated, malformed) is judged by the header fields
//! its bytes hold ([`Filter::matches_headers`]), so its anomalies obey the filter too. Limits: [`MAX_FILTER_LEN`] characters and [`MAX_FILTER_DEPTH`] nested operators.

use std::fmt;
use std::net::IpAddr;

use crate::packet::{FrameHeaders, Packet, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP};

/// Longest filter accepted: far above any hand-written expression, bounds parse work.
pub const MAX_FILTER_LEN: usize = 4096;
/// Deepest nesting of `not`/parentheses/operators accepted: bounds the parser's recursion.
pub const MAX_FILTER_DEPTH: usize = 64;

const IPPROTO_SCTP: u8 = 132;

/// A parse error: where (1-based column) and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad filter at column {column}: {message}")]
pub struct FilterError {
    pub column: usize,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Src,
    Dst,
    Either,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Prim {
    Host(Dir, IpAddr),
    Net(Dir, IpAddr, u8),
    Port(Dir, u16, u16),
    Proto(u8),
    Version(u8),
    Vlan(Option<u16>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Prim(Prim),
}

/// A compiled filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    text: String,
    expr: Expr,
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Filter {
    type Err = FilterError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Filter::parse(s)
    }
}

impl Filter {
    /// Parses a filter expression.
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        if text.len() > MAX_FILTER_LEN {
            return Err(FilterError {
                column: MAX_FILTER_LEN + 1,
                message: format!(
                    "the filter is longer than {MAX_FILTER_LEN} characters (MAX_FILTER_LEN)"
                ),
            });
        }
        let tokens = tokenize(text)?;
        let mut p = Parser {
            tokens,
            pos: 0,
            end_column: text.chars().count() + 1,
        };
        if p.tokens.is_empty() {
            return Err(FilterError {
                column: 1,
                message: "the filter is empty".into(),
            });
        }
        let expr = p.or(0)?;
        if let Some(t) = p.peek() {
            return Err(FilterError {
                column: t.column,
                message: format!("unexpected `{}`: expected `and`, `or` or the end", t.text),
            });
        }
        Ok(Filter {
            text: text.to_string(),
            expr,
        })
    }

    /// True when the packet matches.
    pub fn matches(&self, pkt: &Packet<'_>) -> bool {
        eval(&self.expr, pkt)
    }

    /// True when a frame that did not decode into a packet matches, judged by the header
    /// fields its bytes hold ([`FrameHeaders`]): the frame's anomalies are kept only then. As a
    /// BPF filter rejects a frame when it must read past the captured bytes, a filter that
    /// needs a field the frame lacks (evaluated left to right, as written) rejects it, `not`
    /// included: `not port 22` cannot keep a TCP frame cut before its ports.
    pub fn matches_headers(&self, headers: &FrameHeaders) -> bool {
        eval_headers(&self.expr, headers) == Some(true)
    }
}

/// [`eval`] over header fields that may be missing: `None` when the answer needs one.
fn eval_headers(e: &Expr, h: &FrameHeaders) -> Option<bool> {
    Some(match e {
        Expr::And(a, b) => eval_headers(a, h)? && eval_headers(b, h)?,
        Expr::Or(a, b) => eval_headers(a, h)? || eval_headers(b, h)?,
        Expr::Not(a) => !eval_headers(a, h)?,
        Expr::Prim(prim) => match *prim {
            Prim::Host(dir, addr) => either(dir, h.src? == addr, h.dst? == addr),
            Prim::Net(dir, net, len) => {
                either(dir, in_net(h.src?, net, len), in_net(h.dst?, net, len))
            }
            Prim::Port(dir, lo, hi) => {
                if !matches!(h.proto?, IPPROTO_TCP | IPPROTO_UDP | IPPROTO_SCTP) {
                    return Some(false);
                }
                let (src, dst) = h.ports?;
                either(dir, (lo..=hi).contains(&src), (lo..=hi).contains(&dst))
            }
            Prim::Proto(n) => h.proto? == n,
            Prim::Version(v) => (if h.src?.is_ipv4() { 4 } else { 6 }) == v,
            Prim::Vlan(None) => h.vlan[0] != 0,
            Prim::Vlan(Some(id)) => h.vlan[0] == id || h.vlan[1] == id,
        },
    })
}

fn eval(e: &Expr, p: &Packet<'_>) -> bool {
    match e {
        Expr::And(a, b) => eval(a, p) && eval(b, p),
        Expr::Or(a, b) => eval(a, p) || eval(b, p),
        Expr::Not(a) => !eval(a, p),
        Expr::Prim(prim) => match *prim {
            Prim::Host(dir, addr) => either(dir, p.src == addr, p.dst == addr),
            Prim::Net(dir, net, len) => {
                either(dir, in_net(p.src, net, len), in_net(p.dst, net, len))
            }
            Prim::Port(dir, lo, hi) => {
                matches!(p.proto, IPPROTO_TCP | IPPROTO_UDP | IPPROTO_SCTP)
                    && either(
                        dir,
                        (lo..=hi).contains(&p.src_port),
                        (lo..=hi).contains(&p.dst_port),
                    )
            }
            Prim::Proto(n) => p.proto == n,
            Prim::Version(v) => p.ip_version() == v,
            Prim::Vlan(None) => p.vlan[0] != 0,
            Prim::Vlan(Some(id)) => p.vlan[0] == id || p.vlan[1] == id,
        },
    }
}

fn either(dir: Dir, src: bool, dst: bool) -> bool {
    match dir {
        Dir::Src => src,
        Dir::Dst => dst,
        Dir::Either => src || dst,
    }
}

fn in_net(addr: IpAddr, net: IpAddr, len: u8) -> bool {
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if len == 0 {
                0
            } else {
                u32::MAX << (32 - len as u32)
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len as u32)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[derive(Debug, Clone)]
struct Token {
    text: String,
    column: usize,
}

fn tokenize(text: &str) -> Result<Vec<Token>, FilterError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' || c == ')' {
            tokens.push(Token {
                text: c.to_string(),
                column,
            });
            i += 1;
        } else if c == '!' {
            tokens.push(Token {
                text: "!".into(),
                column,
            });
            i += 1;
        } else if (c == '&' || c == '|') && chars.get(i + 1) == Some(&c) {
            tokens.push(Token {
                text: format!("{c}{c}"),
                column,
            });
            i += 2;
        } else if c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '/' | '-' | '_') {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric()
                    || matches!(chars[i], '.' | ':' | '/' | '-' | '_'))
            {
                i += 1;
            }
            tokens.push(Token {
                text: chars[start..i].iter().collect(),
                column,
            });
        } else {
            return Err(FilterError {
                column,
                message: format!("unexpected character `{c}`"),
            });
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    end_column: usize,
}

fn lower(t: &Token) -> String {
    t.text.to_ascii_lowercase()
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn peek_word(&self) -> Option<String> {
        self.peek().map(lower)
    }

    fn next(&mut self, expected: &str) -> Result<Token, FilterError> {
        match self.tokens.get(self.pos) {
            Some(t) => {
                self.pos += 1;
                Ok(t.clone())
            }
            None => Err(FilterError {
                column: self.end_column,
                message: format!("the filter ends where {expected} was expected"),
            }),
        }
    }

    fn depth_check(&self, depth: usize) -> Result<(), FilterError> {
        if depth > MAX_FILTER_DEPTH {
            let column = self.peek().map(|t| t.column).unwrap_or(self.end_column);
            return Err(FilterError {
                column,
                message: format!(
                    "the filter nests deeper than {MAX_FILTER_DEPTH} (MAX_FILTER_DEPTH)"
                ),
            });
        }
        Ok(())
    }

    fn or(&mut self, depth: usize) -> Result<Expr, FilterError> {
        self.depth_check(depth)?;
        let mut left = self.and(depth + 1)?;
        while matches!(self.peek_word().as_deref(), Some("or" | "||")) {
            self.pos += 1;
            let right = self.and(depth + 1)?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self, depth: usize) -> Result<Expr, FilterError> {
        self.depth_check(depth)?;
        let mut left = self.unary(depth + 1)?;
        while matches!(self.peek_word().as_deref(), Some("and" | "&&")) {
            self.pos += 1;
            let right = self.unary(depth + 1)?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self, depth: usize) -> Result<Expr, FilterError> {
        self.depth_check(depth)?;
        let t = self.next("a primitive such as `host`, `port` or `tcp`")?;
        match lower(&t).as_str() {
            "not" | "!" => Ok(Expr::Not(Box::new(self.unary(depth + 1)?))),
            "(" => {
                let e = self.or(depth + 1)?;
                let close = self.next("`)`")?;
                if close.text != ")" {
                    return Err(FilterError {
                        column: close.column,
                        message: format!("expected `)`, found `{}`", close.text),
                    });
                }
                Ok(e)
            }
            _ => {
                self.pos -= 1;
                self.primitive()
            }
        }
    }

    fn primitive(&mut self) -> Result<Expr, FilterError> {
        let t = self.next("a primitive")?;
        let word = lower(&t);
        let proto = match word.as_str() {
            "tcp" => Some(Prim::Proto(IPPROTO_TCP)),
            "udp" => Some(Prim::Proto(IPPROTO_UDP)),
            "icmp" => Some(Prim::Proto(IPPROTO_ICMP)),
            "icmp6" => Some(Prim::Proto(IPPROTO_ICMPV6)),
            "sctp" => Some(Prim::Proto(IPPROTO_SCTP)),
            "ip" => Some(Prim::Version(4)),
            "ip6" => Some(Prim::Version(6)),
            _ => None,
        };
        if let Some(proto) = proto {
            // `tcp port 80`, `udp src port 53`, `ip proto 47`, `ip host 10.0.0.1`.
            return match self.peek_word().as_deref() {
                Some("src" | "dst" | "host" | "net" | "port" | "portrange" | "proto") => {
                    let rest = self.primitive()?;
                    Ok(Expr::And(Box::new(Expr::Prim(proto)), Box::new(rest)))
                }
                _ => Ok(Expr::Prim(proto)),
            };
        }
        match word.as_str() {
            "proto" => {
                let v = self.next("a protocol number or name")?;
                let n = match lower(&v).as_str() {
                    "tcp" => IPPROTO_TCP,
                    "udp" => IPPROTO_UDP,
                    "icmp" => IPPROTO_ICMP,
                    "icmp6" => IPPROTO_ICMPV6,
                    "sctp" => IPPROTO_SCTP,
                    other => other.parse::<u8>().map_err(|_| FilterError {
                        column: v.column,
                        message: format!(
                            "`{}` is not an ip protocol number (0-255) or name",
                            v.text
                        ),
                    })?,
                };
                Ok(Expr::Prim(Prim::Proto(n)))
            }
            "vlan" => {
                if let Some(next) = self.peek() {
                    if next.text.chars().all(|c| c.is_ascii_digit()) {
                        let next = self.next("a vlan id")?;
                        let id = next
                            .text
                            .parse::<u16>()
                            .ok()
                            .filter(|id| *id < 4096)
                            .ok_or_else(|| FilterError {
                                column: next.column,
                                message: format!("`{}` is not a vlan id (0-4095)", next.text),
                            })?;
                        return Ok(Expr::Prim(Prim::Vlan(Some(id))));
                    }
                }
                Ok(Expr::Prim(Prim::Vlan(None)))
            }
            "src" | "dst" => {
                let dir = if word == "src" { Dir::Src } else { Dir::Dst };
                self.directed(dir)
            }
            _ => {
                self.pos -= 1;
                self.directed(Dir::Either)
            }
        }
    }

    fn directed(&mut self, dir: Dir) -> Result<Expr, FilterError> {
        let t = self.next("`host`, `net`, `port`, `portrange` or an address")?;
        let prim = match lower(&t).as_str() {
            "host" => {
                let v = self.next("an ip address")?;
                Prim::Host(dir, parse_addr(&v)?)
            }
            "net" => {
                let v = self.next("a network such as 10.0.0.0/8")?;
                let (addr, len) = parse_net(&v)?;
                Prim::Net(dir, addr, len)
            }
            "port" => {
                let v = self.next("a port number")?;
                let port = parse_port(&v)?;
                Prim::Port(dir, port, port)
            }
            "portrange" => {
                let v = self.next("a port range such as 1000-2000")?;
                let bad = || FilterError { column: v.column, message: format!("`{}` is not a port range such as 1000-2000", v.text) };
                let (a, b) = v.text.split_once('-').ok_or_else(bad)?;
                let lo = a.parse::<u16>().map_err(|_| bad())?;
                let hi = b.parse::<u16>().map_err(|_| bad())?;
                if lo > hi {
                    return Err(FilterError { column: v.column, message: format!("port range `{}` runs backwards", v.text) });
                }
                Prim::Port(dir, lo, hi)
            }
            _ => match t.text.parse::<IpAddr>() {
                Ok(addr) => Prim::Host(dir, addr),
                Err(_) => {
                    return Err(FilterError {
                        column: t.column,
                        message: format!(
                            "unknown primitive `{}`: use host, net, port, portrange, tcp, udp, icmp, icmp6, ip, ip6, vlan, proto",
                            t.text
                        ),
                    })
                }
            },
        };
        Ok(Expr::Prim(prim))
    }
}

fn parse_addr(t: &Token) -> Result<IpAddr, FilterError> {
    t.text.parse::<IpAddr>().map_err(|_| FilterError {
        column: t.column,
        message: format!("`{}` is not an ip address", t.text),
    })
}

fn parse_net(t: &Token) -> Result<(IpAddr, u8), FilterError> {
    let (addr, len) = match t.text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (t.text.as_str(), None),
    };
    let addr = addr.parse::<IpAddr>().map_err(|_| FilterError {
        column: t.column,
        message: format!("`{}` is not a network such as 10.0.0.0/8", t.text),
    })?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        None => max,
        Some(l) => l
            .parse::<u8>()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| FilterError {
                column: t.column,
                message: format!("`{}` has a prefix length over {max}", t.text),
            })?,
    };
    Ok((addr, len))
}

fn parse_port(t: &Token) -> Result<u16, FilterError> {
    let port = match t.text.to_ascii_lowercase().as_str() {
        "ftp" => 21,
        "ssh" => 22,
        "telnet" => 23,
        "smtp" => 25,
        "domain" | "dns" => 53,
        "http" => 80,
        "ntp" => 123,
        "https" => 443,
        other => other.parse::<u16>().map_err(|_| FilterError {
            column: t.column,
            message: format!("`{}` is not a port number (0-65535)", t.text),
        })?,
    };
    Ok(port)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{TcpHeader, Transport};
    use std::net::{Ipv4Addr, Ipv6Addr};
    use ward_model::Timestamp;

    fn pkt(
        src: &str,
        sport: u16,
        dst: &str,
        dport: u16,
        proto: u8,
        vlan: [u16; 2],
    ) -> Packet<'static> {
        Packet {
            ts: Timestamp::ZERO,
            wire_len: 60,
            vlan,
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            proto,
            src_port: sport,
            dst_port: dport,
            ttl: 64,
            transport: if proto == 6 {
                Transport::Tcp(TcpHeader::default())
            } else {
                Transport::Udp
            },
            payload: b"",
            reassembled: false,
            tunnel_depth: 0,
            frame: b"",
        }
    }

    fn m(filter: &str, p: &Packet<'_>) -> bool {
        Filter::parse(filter)
            .unwrap_or_else(|e| panic!("{filter}: {e}"))
            .matches(p)
    }

    fn headers(ip: &[u8]) -> FrameHeaders {
        FrameHeaders::read_ip(ip, [0, 0])
    }

    /// An IPv4 header from `src` to 192.0.2.1 of protocol `proto`, then `rest`.
    fn ipv4(src: [u8; 4], proto: u8, rest: &[u8]) -> Vec<u8> {
        let mut h = vec![0x45, 0, 0x03, 0xe8, 0, 1, 0, 0, 64, proto, 0, 0];
        h.extend_from_slice(&src);
        h.extend_from_slice(&[192, 0, 2, 1]);
        h.extend_from_slice(rest);
        h
    }

    #[test]
    fn frames_that_did_not_decode_are_judged_by_the_header_bytes_they_hold() {
        let f = |text: &str| Filter::parse(text).unwrap();
        // A truncated UDP datagram: addresses and ports are there.
        let udp = headers(&ipv4([10, 0, 0, 99], 17, &[0x13, 0x88, 0, 53]));
        assert_eq!(udp.ports, Some((5000, 53)));
        assert!(!f("not host 10.0.0.99").matches_headers(&udp));
        assert!(f("not host 10.0.0.77").matches_headers(&udp));
        assert!(f("udp and dst port 53").matches_headers(&udp) && !f("tcp").matches_headers(&udp));
        assert!(f("ip").matches_headers(&udp) && !f("ip6").matches_headers(&udp));
        // Cut before the ports: a filter that needs them drops the frame, `not` or not (as
        // BPF does when it would read past the captured bytes); one that does not, judges it.
        let cut = headers(&ipv4([10, 0, 0, 99], 6, &[0x13]));
        assert_eq!((cut.proto, cut.ports), (Some(6), None));
        assert!(!f("port 22").matches_headers(&cut) && !f("not port 22").matches_headers(&cut));
        assert!(f("tcp or port 22").matches_headers(&cut), "left to right: `tcp` decides first");
        assert!(!f("icmp").matches_headers(&headers(&ipv4([10, 0, 0, 1], 6, &[]))));
        assert!(!f("port 53").matches_headers(&headers(&ipv4([10, 0, 0, 1], 1, &[]))), "ICMP has no ports");
        // A non-first fragment has no transport header.
        let mut frag = ipv4([10, 0, 0, 1], 17, &[0, 53, 0, 53]);
        frag[7] = 8;
        assert_eq!(headers(&frag).ports, None);
        // Too short for an IP header: only the VLAN tags are known.
        let short = FrameHeaders::read_ip(&[0x45, 0, 0], [7, 0]);
        assert_eq!(short, FrameHeaders { vlan: [7, 0], ..Default::default() });
        assert!(f("vlan 7").matches_headers(&short) && !f("vlan 7 and host 10.0.0.1").matches_headers(&short));
        assert!(!f("not host 10.0.0.1").matches_headers(&short));
        // IPv6.
        let mut v6 = vec![0x60, 0, 0, 0, 0, 8, 17, 64];
        v6.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        v6.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
        v6.extend_from_slice(&[0, 53, 0x13, 0x88]);
        let v6 = headers(&v6);
        assert!(f("ip6 and src host 2001:db8::1 and src port 53").matches_headers(&v6));
    }

    #[test]
    fn primitives_and_combinations() {
        let web = pkt("10.1.2.3", 40000, "93.184.216.34", 443, 6, [0, 0]);
        let dns = pkt("2001:db8::1", 5353, "2001:db8::53", 53, 17, [100, 200]);
        assert!(m("host 10.1.2.3", &web));
        assert!(m("src host 10.1.2.3", &web));
        assert!(!m("dst host 10.1.2.3", &web));
        assert!(m("93.184.216.34", &web));
        assert!(
            m("net 10.0.0.0/8", &web)
                && !m("net 10.0.0.0/16", &web)
                && m("dst net 93.184.216.0/24", &web)
        );
        assert!(m("port 443", &web) && m("dst port https", &web) && !m("src port 443", &web));
        assert!(m("portrange 400-500", &web) && !m("src portrange 1-1024", &web));
        assert!(m("tcp", &web) && !m("udp", &web) && m("ip", &web) && !m("ip6", &web));
        assert!(m("tcp dst port 443", &web) && !m("udp port 443", &web));
        assert!(m("ip6 and udp and port 53", &dns));
        assert!(m("net 2001:db8::/32", &dns));
        assert!(m("vlan", &dns) && m("vlan 200", &dns) && !m("vlan 7", &dns) && !m("vlan", &web));
        assert!(m("not tcp", &dns) && m("! tcp", &dns));
        assert!(m("(tcp and port 80) or (udp and port 53)", &dns));
        assert!(!m("(tcp and port 80) || (udp && port 54)", &dns));
        assert!(
            m("tcp or udp and port 9", &web),
            "and binds tighter than or"
        );
        assert!(m("proto 17", &dns) && m("ip proto tcp", &web) && !m("ip6 proto 6", &web));
        assert!(m("HOST 10.1.2.3 AND Port 443", &web));
        let icmp = Packet {
            proto: 1,
            transport: Transport::Icmp {
                icmp_type: 8,
                icmp_code: 0,
            },
            src_port: 0,
            dst_port: 0,
            ..web.clone()
        };
        assert!(m("icmp", &icmp) && !m("port 0", &icmp) && !m("icmp6", &icmp));
        let _ = (Ipv4Addr::LOCALHOST, Ipv6Addr::LOCALHOST);
    }

    #[test]
    fn errors_say_where_and_what() {
        let cases = [
            ("", 1, "empty"),
            ("host", 5, "ends where an ip address"),
            ("host 10.0.0.300", 6, "not an ip address"),
            ("port 70000", 6, "not a port number"),
            ("tcp and", 8, "ends where"),
            ("(tcp", 5, "`)`"),
            ("tcp )", 5, "unexpected `)`"),
            ("frob 1", 1, "unknown primitive `frob`"),
            ("net 10.0.0.0/33", 5, "prefix length"),
            ("portrange 9-1", 11, "backwards"),
            ("tcp $", 5, "unexpected character"),
            ("vlan 5000", 6, "vlan id"),
        ];
        for (text, column, what) in cases {
            let e = Filter::parse(text).unwrap_err();
            assert_eq!(e.column, column, "{text}: {e}");
            assert!(e.to_string().contains(what), "{text}: {e}");
        }
        let deep = format!("{}tcp{}", "(".repeat(200), ")".repeat(200));
        assert!(Filter::parse(&deep)
            .unwrap_err()
            .to_string()
            .contains("MAX_FILTER_DEPTH"));
        assert!(Filter::parse(&"not ".repeat(2000)).is_err());
    }
}
