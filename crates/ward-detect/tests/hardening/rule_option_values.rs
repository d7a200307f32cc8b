//! Low: the rule parser refuses negative sids, negative offsets and a zero depth.
//!
//! Every numeric rule option is read into the range Suricata accepts for it (its documentation
//! and parser): a value outside it is a per-rule error naming the keyword and the range — the
//! rule is skipped and counted, the load goes on — never a silent wrap, truncation or clamp.

use std::net::IpAddr;

use ward_detect::{load_str, Classification, DetectScratch, FlowDetect, LoadReport, PacketInput, RuleSet, Vars};
use ward_model::Timestamp;

fn load(text: &str) -> (RuleSet, LoadReport) {
    load_str(text, "values.rules", &Vars::default(), &Classification::default())
}

/// A rule with these options (and a sid unless the options give one).
fn rule(opts: &str) -> String {
    if opts.contains("sid:") {
        format!("alert tcp any any -> any any (msg:\"v\"; {opts})")
    } else {
        format!("alert tcp any any -> any any (msg:\"v\"; {opts} sid:100;)")
    }
}

/// Loads `opts` as one rule between two good ones; asserts it is skipped under `keyword` with
/// a message naming the problem, and that the good rules still load.
fn refused(opts: &str, keyword: &str, reason: &str) {
    let text = format!(
        "alert tcp any any -> any any (msg:\"before\"; content:\"x\"; sid:1;)\n{}\nalert tcp any any -> any any (msg:\"after\"; content:\"y\"; sid:2;)\n",
        rule(opts)
    );
    let (set, report) = load(&text);
    assert_eq!(report.total, 3, "{opts}");
    assert_eq!(report.skipped.len(), 1, "`{opts}` was not refused: {:?}", report.skipped);
    let s = &report.skipped[0];
    assert_eq!(s.line, 2, "{opts}");
    assert_eq!(s.keyword, keyword, "`{opts}`: {}", s.message);
    assert!(s.message.contains(reason), "`{opts}`: message {:?} does not say {reason:?}", s.message);
    assert!(s.message.chars().next().is_some_and(|c| !c.is_uppercase()) && !s.message.ends_with('.'), "{:?}", s.message);
    assert_eq!(report.loaded, 2, "one bad rule stops nothing: {opts}");
    assert!(set.rule_by_sid(1).is_some() && set.rule_by_sid(2).is_some());
}

fn accepted(opts: &str) -> RuleSet {
    let (set, report) = load(&rule(opts));
    assert!(report.skipped.is_empty(), "`{opts}` refused: {:?}", report.skipped);
    assert_eq!(report.loaded, 1);
    set
}

#[test]
fn the_reported_values_are_refused_with_a_per_rule_error() {
    refused("content:\"abc\"; sid:-5;", "sid", "1..=4294967295");
    refused("content:\"abc\"; offset:-1;", "offset", "0..=65535");
    refused("content:\"abc\"; depth:0;", "depth", "1..=65535");
}

#[test]
fn metadata_numbers_stay_in_suricatas_ranges() {
    refused("sid:0;", "sid", "1..=4294967295");
    refused("sid:4294967296;", "sid", "1..=4294967295");
    refused("rev:0;", "rev", "1..=4294967295");
    refused("rev:-1;", "rev", "1..=4294967295");
    // 2^32 + 1 used to wrap to rev 1.
    refused("rev:4294967297;", "rev", "1..=4294967295");
    refused("gid:4294967297;", "gid", "0..=4294967295");
    refused("priority:0;", "priority", "1..=255");
    refused("priority:256;", "priority", "1..=255");
    refused("priority:-1;", "priority", "1..=255");
    let set = accepted("sid:4294967295; rev:4294967295; gid:4294967295; priority:255;");
    let r = set.rule_by_sid(4_294_967_295).expect("largest sid loads");
    assert_eq!((r.info.gid, r.info.rev, r.info.priority), (4_294_967_295, 4_294_967_295, 255));
}

#[test]
fn content_modifiers_stay_in_suricatas_ranges() {
    refused("content:\"abc\"; offset:65536;", "offset", "0..=65535");
    refused("content:\"abc\"; depth:-3;", "depth", "1..=65535");
    refused("content:\"abc\"; depth:65536;", "depth", "1..=65535");
    // A depth shorter than the content can never match.
    refused("content:\"abcdef\"; depth:3;", "depth", "shorter than the content");
    refused("content:\"a\"; content:\"b\"; distance:1048577;", "distance", "-1048576..=1048576");
    refused("content:\"a\"; content:\"b\"; distance:-1048577;", "distance", "-1048576..=1048576");
    refused("content:\"a\"; content:\"bcd\"; within:0;", "within", "1..=1048576");
    refused("content:\"a\"; content:\"bcd\"; within:-4;", "within", "1..=1048576");
    refused("content:\"a\"; content:\"bcd\"; within:2;", "within", "shorter than the content");
    refused("content:\"abc\"; fast_pattern:70000,1;", "fast_pattern", "0..=65535");
    refused("content:\"abc\"; fast_pattern:1,5;", "fast_pattern", "past the end of the content");
    refused("content:\"abc\"; isdataat:-1;", "isdataat", "0..=65535");
    refused("content:\"abc\"; isdataat:65536,relative;", "isdataat", "0..=65535");
    accepted("content:\"abc\"; offset:0; depth:3;");
    accepted("content:\"abc\"; offset:65535; depth:65535;");
    accepted("content:\"a\"; content:\"bcd\"; distance:-1048576; within:3;");
    accepted("content:\"abc\"; fast_pattern:1,2; isdataat:!65535,relative;");
    // A byte_extract variable is checked when it is read, not when the rule loads.
    accepted("content:\"abc\"; byte_extract:1,0,n; content:\"d\"; distance:0; within:n;");
}

#[test]
fn byte_keywords_stay_in_suricatas_ranges() {
    // 2^32 + 1 bytes used to be truncated to a 1-byte read.
    refused("byte_test:4294967297,=,1,0;", "byte_test", "1..=8");
    refused("byte_test:4,=,-1,0;", "byte_test", "0..=18446744073709551615");
    refused("byte_test:4,=,1,2147483648;", "byte_test", "-2147483648..=2147483647");
    refused("byte_test:4,&,1,0,bitmask 0x1ffffffff;", "byte_test", "0..=4294967295");
    refused("byte_jump:4,70000;", "byte_jump", "-65535..=65535");
    refused("byte_jump:4,0,multiplier 0;", "byte_jump", "1..=65535");
    refused("byte_jump:4,0,multiplier 65536;", "byte_jump", "1..=65535");
    refused("byte_jump:4,0,post_offset 65536;", "byte_jump", "-65535..=65535");
    refused("byte_extract:2,32768,n;", "byte_extract", "-32768..=32767");
    refused("byte_extract:2,0,n,multiplier 0;", "byte_extract", "1..=65535");
    refused("base64_decode:bytes 65536;", "base64_decode", "0..=65535");
    refused("base64_decode:offset 4294967296;", "base64_decode", "0..=4294967295");
    accepted("byte_test:8,=,18446744073709551615,-2147483648;");
    accepted("byte_jump:2,-65535,multiplier 65535,post_offset -65535;");
    accepted("byte_extract:2,-32768,n,multiplier 65535;");
}

#[test]
fn header_comparisons_stay_in_the_width_of_their_field() {
    refused("dsize:65536;", "dsize", "0..=65535");
    refused("dsize:-5;", "dsize", "expected");
    refused("dsize:<0;", "dsize", "never true");
    refused("dsize:3<>4;", "dsize", "never true");
    refused("ttl:256;", "ttl", "0..=255");
    refused("itype:300;", "itype", "0..=255");
    refused("icode:>255;", "icode", "never true");
    refused("id:65536;", "id", "0..=65535");
    refused("ip_proto:256;", "ip_proto", "0..=255");
    refused("urilen:65536;", "urilen", "0..=65535");
    refused("stream_size:server,<,4294967296;", "stream_size", "0..=4294967295");
    refused("seq:4294967296;", "seq", "0..=4294967295");
    refused("ack:-1;", "ack", "0..=4294967295");
    refused("window:65536;", "window", "0..=65535");
    refused("window:!65536;", "window", "0..=65535");
    refused("icmp_id:65536;", "icmp_id", "0..=65535");
    refused("icmp_seq:70000;", "icmp_seq", "0..=65535");
    accepted("dsize:65535; ttl:255; id:65535; ip_proto:255; seq:4294967295; ack:0; window:!65535;");
}

#[test]
fn rate_and_state_numbers_stay_in_suricatas_ranges() {
    refused("threshold:type limit, track by_src, count 4294967297, seconds 60;", "threshold", "0..=4294967295");
    refused("threshold:type limit, track by_src, count 1, seconds -1;", "threshold", "0..=4294967295");
    refused("detection_filter:track by_src, count 0, seconds 60;", "detection_filter", "1..=4294967295");
    refused("detection_filter:track by_src, count 5, seconds 0;", "detection_filter", "1..=4294967295");
    refused("xbits:set,x,track ip_src,expire 0;", "xbits", "1..=4294967295");
    refused("dns.opcode:256;", "dns.opcode", "0..=255");
    accepted("threshold:type limit, track by_src, count 4294967295, seconds 4294967295;");
    accepted("xbits:set,x,track ip_src,expire 4294967295;");
}

fn alerts(set: &RuleSet, payload_len: usize) -> usize {
    let ip: IpAddr = "10.0.0.1".parse().unwrap();
    let payload = vec![b'x'; payload_len];
    let mut p = PacketInput::new(Timestamp::from_secs_micros(1_700_000_000, 0), ip, 1000, ip, 80, 6);
    p.payload = &payload;
    let mut out = Vec::new();
    set.inspect_packet(&p, &mut FlowDetect::new(), &mut DetectScratch::new(), &mut out);
    out.len()
}

#[test]
fn a_dash_range_is_exclusive_as_in_suricata() {
    // Suricata reads `a-b` as `a<>b`: strictly between the bounds.
    let set = accepted("dsize:1-4;");
    let matched: Vec<usize> = (0..6).filter(|&n| alerts(&set, n) > 0).collect();
    assert_eq!(matched, [2, 3]);
    let set = accepted("dsize:1<>4;");
    let matched: Vec<usize> = (0..6).filter(|&n| alerts(&set, n) > 0).collect();
    assert_eq!(matched, [2, 3]);
}
