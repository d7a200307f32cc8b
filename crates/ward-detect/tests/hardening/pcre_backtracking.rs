//! Medium 8: pcre match and recursion limits; hits are counted and the sensor keeps going.
//!
//! `pcre:"/(a+)+$/"` against 1,400 bytes of `a` and one other byte backtracks exponentially: it
//! used to run to PCRE2's own limit (ten million steps) on every packet. The engine now runs
//! every pcre under Suricata's limits (match limit 3500, depth limit 1500, configurable): a
//! match that reaches one is treated as no match, counted, and the rule named once for the
//! caller's report; every other rule is still evaluated.

use std::net::IpAddr;

use ward_detect::pcre::{PcreLimits, DEFAULT_DEPTH_LIMIT, DEFAULT_MATCH_LIMIT};
use ward_detect::{load_str, Classification, DetectScratch, FlowDetect, Match, PacketInput, RuleSet, Vars};
use ward_model::Timestamp;

/// Payloads inspected in the catastrophic case: enough that unbounded matching would take
/// minutes, so the test only finishes because each match is bounded.
const PACKETS: usize = 2_000;

fn rules(text: &str) -> RuleSet {
    let (set, report) = load_str(text, "pcre.rules", &Vars::default(), &Classification::default());
    assert!(report.skipped.is_empty(), "skipped: {:?}", report.skipped);
    set
}

fn udp(payload: &[u8]) -> PacketInput<'_> {
    let a: IpAddr = "10.0.0.1".parse().unwrap();
    let b: IpAddr = "10.0.0.2".parse().unwrap();
    let mut p = PacketInput::new(Timestamp::from_secs_micros(1_700_000_000, 0), a, 5000, b, 5001, 17);
    p.payload = payload;
    p
}

fn inspect(set: &RuleSet, payload: &[u8], scratch: &mut DetectScratch) -> Vec<u64> {
    let mut out: Vec<Match> = Vec::new();
    set.inspect_packet(&udp(payload), &mut FlowDetect::new(), scratch, &mut out);
    let mut sids: Vec<u64> = out.iter().map(|m| m.info.sid).collect();
    sids.sort();
    sids
}

/// 1,400 bytes: `a` repeated, then a byte that makes `(a+)+$` fail only after trying every split.
fn catastrophic() -> Vec<u8> {
    let mut p = vec![b'a'; 1399];
    p.push(b'!');
    p
}

#[test]
fn defaults_are_suricatas() {
    assert_eq!((DEFAULT_MATCH_LIMIT, DEFAULT_DEPTH_LIMIT), (3500, 1500));
    let limits = PcreLimits::default();
    assert_eq!((limits.match_limit, limits.depth_limit), (3500, 1500));
    assert_eq!(DetectScratch::new().pcre_limits(), limits);
}

#[test]
fn catastrophic_pattern_stops_at_the_limit_on_every_payload_and_is_counted() {
    let set = rules(
        "alert udp any any -> any any (msg:\"nested quantifier\"; pcre:\"/(a+)+$/\"; sid:1; rev:2;)\n\
         alert udp any any -> any any (msg:\"negated nested quantifier\"; pcre:!\"/(a+)+$/\"; sid:2;)\n\
         alert udp any any -> any any (msg:\"plain content\"; content:\"aaaa\"; sid:3;)\n",
    );
    let payload = catastrophic();
    let mut scratch = DetectScratch::new();
    for n in 1..=PACKETS {
        // The bounded pcre rules do not match (not even the negated one: a match cut short is
        // no answer, as in Suricata), the other rule of the set still does.
        assert_eq!(inspect(&set, &payload, &mut scratch), [3], "packet {n}");
        // Both pcre rules reached the limit on this packet, and each is named once.
        assert_eq!(scratch.pcre_limit_hits(), 2 * n as u64, "packet {n}");
        let mut limited: Vec<(u32, u64, u32)> = scratch.drain_pcre_limited().map(|r| (r.gid, r.sid, r.rev)).collect();
        limited.sort();
        assert_eq!(limited, [(1, 1, 2), (1, 2, 0)], "packet {n}");
    }
    // Nothing left to report once drained, and a harmless payload adds nothing.
    assert_eq!(scratch.drain_pcre_limited().count(), 0);
    assert_eq!(inspect(&set, b"aaaa", &mut scratch), [1, 3]);
    assert_eq!(scratch.pcre_limit_hits(), 2 * PACKETS as u64);
    assert_eq!(scratch.drain_pcre_limited().count(), 0);
}

#[test]
fn ordinary_patterns_match_as_before_under_the_limits() {
    let set = rules(
        "alert udp any any -> any any (msg:\"php\"; content:\"GET \"; pcre:\"/^GET\\s+\\/[a-z0-9_\\/]+\\.php\\?id=\\d+/\"; sid:10;)\n\
         alert udp any any -> any any (msg:\"relative\"; content:\"user=\"; pcre:\"/^[a-z]{3,16}&/R\"; sid:11;)\n\
         alert udp any any -> any any (msg:\"anchored caseless\"; pcre:\"/get/Ai\"; sid:12;)\n\
         alert udp any any -> any any (msg:\"not there\"; pcre:!\"/evil\\.example/\"; sid:13;)\n",
    );
    let mut scratch = DetectScratch::new();
    let request = b"GET /app/view.php?id=42&user=alice&x=1 HTTP/1.1\r\n";
    assert_eq!(inspect(&set, request, &mut scratch), [10, 11, 12, 13]);
    // A realistic pattern scanned over a large buffer without a match stays under the limit.
    let mut big = b"POST ".to_vec();
    big.extend(b"lorem ipsum dolor sit amet, ".repeat(2300));
    assert!(big.len() > 64_000);
    assert_eq!(inspect(&set, &big, &mut scratch), [13]);
    assert_eq!(scratch.pcre_limit_hits(), 0);
    assert_eq!(scratch.drain_pcre_limited().count(), 0);
}

#[test]
fn the_limits_are_the_callers_to_choose() {
    // 18 `a`s and a `!`: too much work for Suricata's limits, little enough for generous ones.
    let set = rules("alert udp any any -> any any (msg:\"nested\"; pcre:\"/(a+)+$/\"; sid:1;)\n");
    let mut payload = vec![b'a'; 18];
    payload.push(b'!');
    let mut suricata = DetectScratch::new();
    assert!(inspect(&set, &payload, &mut suricata).is_empty());
    assert_eq!(suricata.pcre_limit_hits(), 1);

    let generous = PcreLimits { match_limit: 100_000_000, depth_limit: 100_000 };
    let mut scratch = DetectScratch::with_pcre_limits(generous);
    assert_eq!(scratch.pcre_limits(), generous);
    assert!(inspect(&set, &payload, &mut scratch).is_empty());
    assert_eq!(scratch.pcre_limit_hits(), 0, "the pattern ran to its real answer");
    // With the answer in reach, the same scratch finds the match.
    assert_eq!(inspect(&set, &payload[..18], &mut scratch), [1]);

    // A tiny limit stops even an ordinary match, which then does not alert.
    let mut tight = DetectScratch::with_pcre_limits(PcreLimits { match_limit: 1, depth_limit: 1 });
    let set = rules("alert udp any any -> any any (msg:\"words\"; pcre:\"/(?:\\w+\\s+){3}amet/\"; sid:5;)\n");
    assert_eq!(inspect(&set, b"lorem ipsum dolor sit amet", &mut DetectScratch::new()), [5]);
    assert!(inspect(&set, b"lorem ipsum dolor sit amet", &mut tight).is_empty());
    assert_eq!(tight.pcre_limit_hits(), 1);
    assert_eq!(tight.drain_pcre_limited().map(|r| r.sid).collect::<Vec<_>>(), [5]);
}
