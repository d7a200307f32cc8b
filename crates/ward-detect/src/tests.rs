//! Engine tests: hand-written rules against hand-built inputs, and the ET Open coverage check.

use std::net::IpAddr;
use std::path::PathBuf;

use ward_model::Timestamp;

use super::*;

const ET_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/et-open/");

#[test]
fn et_open_loads_at_least_95_percent() {
    let files = [PathBuf::from(format!("{ET_DIR}emerging-all.rules"))];
    let report = check(&files, &Vars::default(), false);
    let r = &report.report;
    eprintln!("{report}");
    assert!(r.file_errors.is_empty());
    assert_eq!(r.total, 25_803, "enabled rules in the ET file");
    assert!(r.loaded_percent() >= 95.0, "only {:.2}% loaded", r.loaded_percent());
    // Every skip names a keyword and, for these rules, a sid.
    assert!(r.skipped.iter().all(|s| !s.keyword.is_empty() && s.sid.is_some()));
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn rules(text: &str) -> RuleSet {
    let (set, report) = load_str(text, "test.rules", &Vars::default(), &Classification::default());
    assert!(report.skipped.is_empty(), "skipped: {:?}", report.skipped);
    set
}

/// A TCP packet from a home client to an external server, established, to_server.
fn pkt(payload: &[u8]) -> PacketInput<'_> {
    let mut p = PacketInput::new(Timestamp::from_secs_micros(1_700_000_000, 0), ip("10.0.0.2"), 40000, ip("93.184.216.34"), 80, 6);
    p.payload = payload;
    p.flow_established = true;
    p.to_server = true;
    p.tcp = Some(TcpHeader { flags: 0x18, seq: 1, ack: 1, window: 512 });
    p
}

fn sids(set: &RuleSet, p: &PacketInput<'_>) -> Vec<u64> {
    let mut flow = FlowDetect::new();
    let mut scratch = DetectScratch::new();
    let mut out = vec![];
    set.inspect_packet(p, &mut flow, &mut scratch, &mut out);
    let mut v: Vec<u64> = out.iter().map(|m| m.info.sid).collect();
    v.sort();
    v
}

fn one(rule_opts: &str, payload: &[u8]) -> bool {
    let set = rules(&format!("alert tcp any any -> any any ({rule_opts} sid:1;)"));
    !sids(&set, &pkt(payload)).is_empty()
}

#[test]
fn content_basics_hex_escape_negation_nocase() {
    assert!(one(r#"content:"GET /";"#, b"GET / HTTP/1.1"));
    assert!(!one(r#"content:"get /";"#, b"GET / HTTP/1.1"));
    assert!(one(r#"content:"get /"; nocase;"#, b"GET / HTTP/1.1"));
    assert!(one(r#"content:"|47 45|T";"#, b"GET"));
    assert!(one(r#"content:"a\;b\"c";"#, b"xa;b\"cx"));
    assert!(one(r#"content:"abc"; content:!"xyz";"#, b"abc"));
    assert!(!one(r#"content:"abc"; content:!"xyz";"#, b"abc xyz"));
}

#[test]
fn content_offset_depth_distance_within() {
    assert!(one(r#"content:"B"; offset:1; depth:1;"#, b"AB"));
    assert!(!one(r#"content:"B"; offset:2;"#, b"ABC"));
    assert!(!one(r#"content:"C"; depth:2;"#, b"ABC"));
    assert!(one(r#"content:"A"; content:"C"; distance:1; within:1;"#, b"ABC"));
    assert!(!one(r#"content:"A"; content:"C"; distance:0; within:1;"#, b"ABC"));
    // Backtracking: the first "A" is followed by no "C" within 2, the second one is.
    assert!(one(r#"content:"A"; content:"C"; within:2;"#, b"AxxxxAC"));
    // Negative distance.
    assert!(one(r#"content:"BC"; content:"AB"; distance:-3; within:2;"#, b"ABC"));
    assert!(one(r#"content:"X"; startswith; content:"Z"; endswith;"#, b"XyZ"));
    assert!(!one(r#"content:"y"; startswith;"#, b"XyZ"));
    assert!(!one(r#"content:"y"; endswith;"#, b"XyZ"));
}

#[test]
fn pcre_flags_and_relative() {
    assert!(one(r#"pcre:"/^GET\s+\/a/";"#, b"GET /a"));
    assert!(!one(r#"pcre:"/^get/";"#, b"GET /a"));
    assert!(one(r#"pcre:"/^get/i";"#, b"GET /a"));
    assert!(one(r#"content:"id="; pcre:"/^\d{3}&/R";"#, b"x?id=123&y"));
    assert!(!one(r#"content:"id="; pcre:"/^\d{3}&/R";"#, b"x?id=12a&y"));
    assert!(one(r#"pcre:!"/evil/";"#, b"good"));
    assert!(one(r#"pcre:"/a.b/s";"#, b"a\nb"));
    assert!(!one(r#"pcre:"/a.b/";"#, b"a\nb"));
}

#[test]
fn isdataat_byte_test_jump_extract() {
    assert!(one(r#"content:"AB"; isdataat:2,relative;"#, b"ABxyz"));
    assert!(!one(r#"content:"AB"; isdataat:3,relative;"#, b"ABxyz"));
    assert!(one(r#"content:"AB"; isdataat:!3,relative;"#, b"ABxyz"));
    assert!(one(r#"byte_test:2,>,0x0100,0;"#, b"\x01\x02"));
    assert!(one(r#"byte_test:2,=,0x0201,0,little;"#, b"\x01\x02"));
    assert!(one(r#"byte_test:3,=,123,1,string,dec;"#, b"x123"));
    assert!(one(r#"byte_test:1,&,0x80,0;"#, b"\x81"));
    assert!(one(r#"byte_test:1,!=,5,0;"#, b"\x06"));
    // byte_jump: length 3 at 0, skip 3 bytes, then "Z".
    assert!(one(r#"byte_jump:1,0; content:"Z"; within:1;"#, b"\x03abcZ"));
    assert!(!one(r#"byte_jump:1,0; content:"Z"; within:1;"#, b"\x02abcZ"));
    // byte_extract used as a later distance.
    assert!(one(r#"byte_extract:1,0,skip; content:"Q"; distance:skip; within:1;"#, b"\x02abQ"));
    assert!(!one(r#"byte_extract:1,0,skip; content:"Q"; distance:skip; within:1;"#, b"\x01abQ"));
}

#[test]
fn header_addresses_ports_negation_and_bidirectional() {
    let set = rules(
        "alert tcp $HOME_NET any -> $EXTERNAL_NET $HTTP_PORTS (content:\"x\"; sid:1;)\n\
         alert tcp $EXTERNAL_NET any -> $HOME_NET any (content:\"x\"; sid:2;)\n\
         alert tcp [93.184.216.0/24,!93.184.216.35] any <> 10.0.0.2 !80 (content:\"x\"; sid:3;)\n\
         alert tcp 10.0.0.2 any <> 93.184.216.34 80 (content:\"x\"; sid:4;)\n\
         alert udp any any -> any any (content:\"x\"; sid:5;)\n",
    );
    // sid 3 matches in its reverse orientation: 10.0.0.2 uses port 40000, not 80.
    assert_eq!(sids(&set, &pkt(b"x")), [1, 3, 4]);
    let mut rev = pkt(b"x");
    std::mem::swap(&mut rev.src_ip, &mut rev.dst_ip);
    std::mem::swap(&mut rev.src_port, &mut rev.dst_port);
    assert_eq!(sids(&set, &rev), [2, 3, 4]);
    // The negated member is excluded; port 80 on the 10.0.0.2 side is excluded.
    rev.src_ip = ip("93.184.216.35");
    assert_eq!(sids(&set, &rev), [2]);
    let mut other = pkt(b"x");
    other.src_port = 80;
    other.dst_port = 8080;
    assert_eq!(sids(&set, &other), Vec::<u64>::new());
}

#[test]
fn flow_flags_dsize_and_ip_only() {
    let set = rules(
        "alert tcp any any -> any any (flow:established,to_server; dsize:>3; sid:1;)\n\
         alert tcp any any -> any any (flow:to_client; sid:2;)\n\
         alert tcp any any -> any any (flags:S,12; sid:3;)\n\
         alert tcp any any -> any any (flags:PA; sid:4;)\n\
         alert ip [93.184.216.34,1.2.3.4] any -> any any (msg:\"bad ip\"; sid:5;)\n\
         alert ip any any -> [5.6.7.8] any (sid:6;)\n\
         alert tcp any any -> any any (ttl:<10; sid:7;)\n",
    );
    assert_eq!(sids(&set, &pkt(b"abcd")), [1, 4]);
    let mut syn = pkt(b"");
    syn.tcp = Some(TcpHeader { flags: 0x02 | 0x80, ..Default::default() });
    syn.flow_established = false;
    assert_eq!(sids(&set, &syn), [3]);
    let mut back = pkt(b"ab");
    back.src_ip = ip("93.184.216.34");
    back.dst_ip = ip("10.0.0.2");
    back.to_server = false;
    assert_eq!(sids(&set, &back), [2, 4, 5]);
    back.ttl = 5;
    assert_eq!(sids(&set, &back), [2, 4, 5, 7]);
    let stats = set.stats();
    assert_eq!(stats.ip_index, 2);
}

#[test]
fn flowbits_set_isset_noalert_and_groups() {
    let set = rules(
        "alert tcp any any -> any any (content:\"login\"; flowbits:set,seen.login; flowbits:noalert; sid:1;)\n\
         alert tcp any any -> any any (content:\"secret\"; flowbits:isset,seen.login; sid:2;)\n\
         alert tcp any any -> any any (content:\"secret\"; flowbits:isnotset,seen.login; sid:3;)\n\
         alert tcp any any -> any any (content:\"other\"; flowbits:isset,a|seen.login; sid:4;)\n\
         alert tcp any any -> any any (content:\"other\"; flowbits:isset,a&seen.login; sid:5;)\n\
         alert tcp any any -> any any (content:\"logout\"; flowbits:unset,seen.login; sid:6;)\n",
    );
    let mut flow = FlowDetect::new();
    let mut scratch = DetectScratch::new();
    let mut run = |payload: &[u8], flow: &mut FlowDetect| {
        let mut out = vec![];
        set.inspect_packet(&pkt(payload), flow, &mut scratch, &mut out);
        let mut v: Vec<u64> = out.iter().map(|m| m.info.sid).collect();
        v.sort();
        v
    };
    assert_eq!(run(b"secret", &mut flow), [3]);
    assert_eq!(run(b"login", &mut flow), Vec::<u64>::new(), "noalert");
    assert_eq!(run(b"secret other", &mut flow), [2, 4]);
    assert_eq!(run(b"logout", &mut flow), [6]);
    assert_eq!(run(b"secret", &mut flow), [3]);
    // Set and test in the same packet: the setter runs first.
    let mut fresh = FlowDetect::new();
    assert_eq!(run(b"login secret", &mut fresh), [2]);
}

#[test]
fn threshold_limit_per_source() {
    let set = rules("alert tcp any any -> any any (content:\"x\"; threshold: type limit, track by_src, seconds 60, count 2; sid:1;)");
    let mut flow = FlowDetect::new();
    let mut scratch = DetectScratch::new();
    let mut n = 0;
    for _ in 0..5 {
        let mut out = vec![];
        set.inspect_packet(&pkt(b"x"), &mut flow, &mut scratch, &mut out);
        n += out.len();
    }
    assert_eq!(n, 2);
}

fn http_sids(set: &RuleSet, to_server: bool, tx: &HttpInput<'_>) -> Vec<u64> {
    let mut p = pkt(b"");
    p.to_server = to_server;
    p.app_proto = Some("http");
    if !to_server {
        std::mem::swap(&mut p.src_ip, &mut p.dst_ip);
        std::mem::swap(&mut p.src_port, &mut p.dst_port);
    }
    let mut out = vec![];
    set.inspect_http(&p, tx, &mut FlowDetect::new(), &mut DetectScratch::new(), &mut out);
    let mut v: Vec<u64> = out.iter().map(|m| m.info.sid).collect();
    v.sort();
    v
}

#[test]
fn http_sticky_buffers_and_legacy_modifiers() {
    let set = rules(
        "alert http $HOME_NET any -> $EXTERNAL_NET any (flow:established,to_server; http.method; content:\"POST\"; http.uri; content:\"/gate.php\"; fast_pattern; endswith; sid:1;)\n\
         alert http $HOME_NET any -> $EXTERNAL_NET any (flow:established,to_server; content:\"POST\"; http_method; content:\"gate\"; http_uri; sid:2;)\n\
         alert http $HOME_NET any -> $EXTERNAL_NET any (flow:established,to_server; http.user_agent; content:\"curl/\"; startswith; sid:3;)\n\
         alert http $HOME_NET any -> $EXTERNAL_NET any (flow:established,to_server; http.header; content:\"X-Evil|3a 20|1\"; sid:4;)\n\
         alert http $EXTERNAL_NET any -> $HOME_NET any (flow:established,to_client; http.stat_code; content:\"200\"; file.data; content:\"MZ\"; startswith; sid:5;)\n\
         alert http $HOME_NET any -> $EXTERNAL_NET any (flow:established,to_server; urilen:>5; http.uri; content:\"/\"; sid:6;)\n\
         alert http $HOME_NET any -> $EXTERNAL_NET any (flow:established,to_server; pcre:\"/gate\\.php$/U\"; sid:7;)\n\
         alert http $HOME_NET any -> $EXTERNAL_NET any (flow:established,to_server; http.request_body; content:\"pw=\"; sid:8;)\n",
    );
    let req = HttpInput {
        method: Some(b"POST"),
        uri: Some(b"/x/gate.php"),
        user_agent: Some(b"curl/8.0"),
        request_header: Some(b"Host: a\r\nX-Evil: 1\r\n"),
        ..Default::default()
    };
    assert_eq!(http_sids(&set, true, &req), [1, 2, 3, 4, 6, 7]);
    let resp = HttpInput { stat_code: Some(b"200"), response_body: Some(b"MZ\x90\x00"), request_body: Some(b"pw=1"), ..req };
    assert_eq!(http_sids(&set, false, &resp), [5]);
    let short = HttpInput { method: Some(b"GET"), uri: Some(b"/a"), ..Default::default() };
    assert!(http_sids(&set, true, &short).is_empty());
}

#[test]
fn domain_sets_dns_tls_host_with_dotprefix_and_bsize() {
    let set = rules(
        "alert dns $HOME_NET any -> any any (dns.query; content:\"evil.example\"; nocase; endswith; sid:1;)\n\
         alert dns $HOME_NET any -> any any (dns.query; dotprefix; content:\".bad.example\"; nocase; endswith; sid:2;)\n\
         alert tls $HOME_NET any -> any any (flow:established,to_server; tls.sni; bsize:11; content:\"taktlat.xyz\"; fast_pattern; sid:3;)\n\
         alert http $HOME_NET any -> any any (flow:established,to_server; http.host; content:\"c2.example\"; endswith; sid:4;)\n\
         alert dns $HOME_NET any -> any any (dns.query; content:\"substr\"; sid:5;)\n",
    );
    assert_eq!(set.stats().domain_set, 4);
    let dns = |names: &[&[u8]]| {
        let mut p = pkt(b"");
        p.ip_proto = 17;
        p.dst_port = 53;
        let mut out = vec![];
        set.inspect_dns(&p, &DnsInput { queries: names, ..Default::default() }, &mut FlowDetect::new(), &mut DetectScratch::new(), &mut out);
        let mut v: Vec<u64> = out.iter().map(|m| m.info.sid).collect();
        v.sort();
        v
    };
    assert_eq!(dns(&[b"www.EVIL.example"]), [1]);
    assert_eq!(dns(&[b"notevil.example"]), [1], "endswith is not label-bounded, as in Suricata");
    assert_eq!(dns(&[b"bad.example"]), [2], "dotprefix matches the domain itself");
    assert_eq!(dns(&[b"a.b.bad.example", b"x"]), [2]);
    assert!(dns(&[b"notbad.example"]).is_empty());
    assert_eq!(dns(&[b"has-substr-in.it"]), [5]);
    let tls = |sni: &'static [u8]| {
        let mut out = vec![];
        let mut p = pkt(b"");
        p.dst_port = 443;
        set.inspect_tls(&p, &TlsInput { sni: Some(sni), ..Default::default() }, &mut FlowDetect::new(), &mut DetectScratch::new(), &mut out);
        out.len()
    };
    assert_eq!(tls(b"taktlat.xyz"), 1);
    assert_eq!(tls(b"ataktlat.xyz"), 0, "bsize pins the whole name");
    assert_eq!(http_sids(&set, true, &HttpInput { host: Some(b"www.c2.example"), ..Default::default() }), [4]);
}

#[test]
fn tls_and_dns_other_keywords() {
    let set = rules(
        "alert tls any any -> any any (ja3.hash; content:\"e7d705a3286e19ea42f587b344ee6865\"; sid:1;)\n\
         alert tls any any -> any any (tls.cert_subject; content:\"CN=evil\"; sid:2;)\n\
         alert tls any any -> any any (tls.version:1.0; sid:3;)\n\
         alert tls any any -> any any (tls.certs; content:\"|de ad|\"; sid:4;)\n\
         alert dns any any -> any any (dns.opcode:4; sid:5;)\n",
    );
    let mut out = vec![];
    let tls = TlsInput {
        ja3_hash: Some(b"e7d705a3286e19ea42f587b344ee6865"),
        cert_subject: Some(b"C=US, CN=evil"),
        version: Some(0x0301),
        certs: &[b"\x30\x01", b"\x30\xde\xad"],
        ..Default::default()
    };
    let mut flow = FlowDetect::new();
    let mut scratch = DetectScratch::new();
    set.inspect_tls(&pkt(b""), &tls, &mut flow, &mut scratch, &mut out);
    assert_eq!(out.len(), 4);
    // Each rule alerts once per flow's handshake.
    set.inspect_tls(&pkt(b""), &tls, &mut flow, &mut scratch, &mut out);
    assert_eq!(out.len(), 4);
    let mut out = vec![];
    set.inspect_dns(&pkt(b""), &DnsInput { opcode: 4, ..Default::default() }, &mut flow, &mut scratch, &mut out);
    assert_eq!(out.len(), 1);
}

#[test]
fn base64_and_transforms() {
    assert!(one(r#"content:"b64="; base64_decode:relative; base64_data; content:"secret";"#, b"x b64=c2VjcmV0IQ== y"));
    assert!(!one(r#"content:"b64="; base64_decode:relative; base64_data; content:"public";"#, b"x b64=c2VjcmV0IQ== y"));
    let set = rules("alert http any any -> any any (http.uri; url_decode; to_lowercase; content:\"/admin panel\"; sid:1;)");
    assert_eq!(http_sids(&set, true, &HttpInput { uri: Some(b"/ADMIN%20Panel"), ..Default::default() }), [1]);
}

#[test]
fn stream_is_inspected_for_tcp_unless_tcp_pkt() {
    let set = rules(
        "alert tcp any any -> any any (content:\"split\"; sid:1;)\n\
         alert tcp-pkt any any -> any any (content:\"split\"; sid:2;)\n",
    );
    let mut p = pkt(b"lit");
    p.stream = Some(b"spl" as &[u8]);
    assert!(sids(&set, &p).is_empty());
    p.stream = Some(b"split");
    assert_eq!(sids(&set, &p), [1]);
    p.payload = b"split";
    p.stream = None;
    assert_eq!(sids(&set, &p), [1, 2]);
}

#[test]
fn alert_carries_metadata_classtype_reference_target() {
    let cls = Classification::load(
        std::path::Path::new(&format!("{ET_DIR}classification.config")),
        Some(std::path::Path::new(&format!("{ET_DIR}reference.config"))),
    )
    .unwrap();
    let (set, rep) = load_str(
        "alert tcp any any -> any any (msg:\"ET TEST x\"; content:\"x\"; reference:url,example.org/a; reference:cve,2021-44228; classtype:trojan-activity; target:dest_ip; sid:2000001; rev:3; metadata:created_at 2020_01_01, tag A, tag B;)",
        "t",
        &Vars::default(),
        &cls,
    );
    assert!(rep.skipped.is_empty());
    let p = pkt(b"x");
    let mut out = vec![];
    set.inspect_packet(&p, &mut FlowDetect::new(), &mut DetectScratch::new(), &mut out);
    let a = out[0].to_eve_alert(&p);
    assert_eq!(a.signature_id, 2000001);
    assert_eq!(a.rev, 3);
    assert_eq!(a.gid, 1);
    assert_eq!(a.signature, "ET TEST x");
    assert_eq!(a.category, "A Network Trojan was detected");
    assert_eq!(a.severity, 1);
    assert_eq!(a.references, ["https://example.org/a", "https://cve.mitre.org/cgi-bin/cvename.cgi?name=2021-44228"]);
    let md = a.metadata.unwrap();
    assert_eq!(md["tag"], serde_json::json!(["A", "B"]));
    assert_eq!(a.target.unwrap().ip, "93.184.216.34");
    assert_eq!(a.source.unwrap().port, Some(40000));
}

#[test]
fn bad_rules_are_skipped_with_sid_line_and_keyword() {
    let text = "alert tcp any any -> any any (content:\"ok\"; sid:1;)\n\
                alert tcp any any -> any any (content:\"x\"; frobnicate:3; sid:2;)\n\
                # alert tcp any any -> any any (sid:99;)\n\
                alert tcp any any -> any any (content:\"x\"; sid:3\n\
                alert tcp $NOPE any -> any any (content:\"x\"; sid:4;)\n\
                alert tcp any any -> any any (content:\"ok\"; sid:1;)\n\
                alert tcp any any -> any any (pcre:\"/(unclosed/\"; sid:5;)\n";
    let (set, r) = load_str(text, "t.rules", &Vars::default(), &Classification::default());
    assert_eq!(set.len(), 1);
    assert_eq!(r.total, 6);
    let got: Vec<(Option<u64>, usize, &str)> = r.skipped.iter().map(|s| (s.sid, s.line, s.keyword.as_str())).collect();
    assert_eq!(got, [(Some(2), 2, "frobnicate"), (Some(3), 4, "syntax"), (Some(4), 5, "header"), (Some(1), 6, "duplicate sid"), (Some(5), 7, "pcre")]);
    let text_report = CheckReport { report: r.clone(), json: false }.to_string();
    assert!(text_report.contains("1 of 6 rules loaded"), "{text_report}");
    assert!(text_report.contains("t.rules:2 sid 2: unsupported keyword \"frobnicate\""), "{text_report}");
    let json = CheckReport { report: r, json: true }.to_json();
    assert_eq!(json["loaded"], 1);
    assert_eq!(json["skipped_rules"].as_array().unwrap().len(), 5);
}

#[test]
fn shared_rule_set_swaps_atomically() {
    let shared = SharedRuleSet::default();
    let old = shared.load();
    assert!(old.is_empty());
    shared.store(rules("alert tcp any any -> any any (content:\"x\"; sid:1;)"));
    assert_eq!(shared.load().len(), 1);
    assert!(old.is_empty(), "holders of the old set keep it");
    // Flow state written by the old set is reset for the new one.
    let mut flow = FlowDetect::new();
    let a = rules("alert tcp any any -> any any (content:\"x\"; flowbits:set,b; sid:1;)");
    a.inspect_packet(&pkt(b"x"), &mut flow, &mut DetectScratch::new(), &mut vec![]);
    assert_eq!(flow.flowbit_count(), 1);
    let b = rules("alert tcp any any -> any any (content:\"y\"; sid:1;)");
    b.inspect_packet(&pkt(b"x"), &mut flow, &mut DetectScratch::new(), &mut vec![]);
    assert_eq!(flow.flowbit_count(), 0);
}

#[test]
fn pass_rule_suppresses_alerts() {
    let set = rules(
        "alert tcp any any -> any any (content:\"x\"; sid:1;)\n\
         pass tcp any any -> any any (content:\"trusted\"; sid:2;)\n",
    );
    assert_eq!(sids(&set, &pkt(b"x")), [1]);
    assert!(sids(&set, &pkt(b"x trusted")).is_empty());
}

#[test]
fn payload_automata_are_split_by_transport() {
    let set = rules(
        "alert udp any any -> any any (content:\"probe\"; sid:1;)\n\
         alert ip any any -> any any (content:\"probe\"; sid:2;)\n\
         alert tcp any any -> any any (content:\"probe\"; sid:3;)\n\
         alert icmp any any -> any any (content:\"probe\"; sid:4;)\n",
    );
    let mut p = pkt(b"a probe");
    assert_eq!(sids(&set, &p), [2, 3]);
    p.ip_proto = 17;
    p.tcp = None;
    assert_eq!(sids(&set, &p), [1, 2]);
    p.ip_proto = 1;
    p.icmp = Some(IcmpHeader { itype: 8, ..Default::default() });
    assert_eq!(sids(&set, &p), [2, 4]);
}

#[test]
fn xbits_track_hosts_across_flows_and_expire() {
    let set = rules(
        "alert tcp any any -> any any (content:\"stage1\"; xbits:set,ET.x,track ip_src,expire 10; noalert; sid:1;)\n\
         alert tcp any any -> any any (content:\"stage2\"; xbits:isset,ET.x,track ip_src; sid:2;)\n",
    );
    let mut scratch = DetectScratch::new();
    let mut run = |payload: &[u8], secs: i64| {
        let mut p = pkt(payload);
        p.ts = Timestamp::from_secs_micros(1_700_000_000 + secs, 0);
        let mut out = vec![];
        // A new flow each time: xbits are per host, not per flow.
        set.inspect_packet(&p, &mut FlowDetect::new(), &mut scratch, &mut out);
        out.len()
    };
    assert_eq!(run(b"stage2", 0), 0);
    assert_eq!(run(b"stage1", 1), 0);
    assert_eq!(run(b"stage2", 5), 1);
    assert_eq!(run(b"stage2", 20), 0, "expired after 10 s");
}

#[test]
fn sets_are_shareable_across_workers() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RuleSet>();
    assert_send_sync::<IndicatorSet>();
    assert_send_sync::<SharedRuleSet>();
    assert_send_sync::<SharedIndicatorSet>();
    fn assert_send<T: Send>() {}
    assert_send::<FlowDetect>();
    assert_send::<DetectScratch>();
    assert_send::<ScanDetector>();
    // Two workers inspect the same set concurrently.
    let set = std::sync::Arc::new(rules("alert tcp any any -> any any (content:\"x\"; sid:1;)"));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let set = set.clone();
            std::thread::spawn(move || {
                let (mut f, mut s, mut out) = (FlowDetect::new(), DetectScratch::new(), vec![]);
                for _ in 0..100 {
                    set.inspect_packet(&pkt(b"x"), &mut f, &mut s, &mut out);
                }
                out.len()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 100);
    }
}

/// The real ET Open rules fire on inputs built to match a few of them, and stay quiet on benign
/// inputs of the same kinds.
#[test]
fn et_open_rules_fire_on_matching_inputs() {
    let files = [PathBuf::from(format!("{ET_DIR}emerging-all.rules"))];
    let (set, _) = load(&files, &Vars::default(), &Classification::beside(&files[0]));
    let client = ip("192.168.1.20");
    let mut base = PacketInput::new(Timestamp::from_secs_micros(1_700_000_000, 0), client, 50000, ip("203.0.113.80"), 80, 6);
    base.flow_established = true;
    base.to_server = true;
    let all = |f: &mut dyn FnMut(&mut FlowDetect, &mut DetectScratch, &mut Vec<Match>)| {
        let mut out = vec![];
        f(&mut FlowDetect::new(), &mut DetectScratch::new(), &mut out);
        out.iter().map(|m| m.info.sid).collect::<Vec<_>>()
    };

    // IP reputation (Feodo tracker list): any packet to the listed address.
    let mut p = base;
    p.dst_ip = ip("162.243.103.246");
    assert!(all(&mut |f, s, o| set.inspect_packet(&p, f, s, o)).contains(&2404300));
    assert!(!all(&mut |f, s, o| set.inspect_packet(&base, f, s, o)).contains(&2404300));

    // DNS domain set.
    let mut d = base;
    d.ip_proto = 17;
    d.dst_port = 53;
    let q: [&[u8]; 1] = [b"appsdown.urbanvillager.xyz"];
    let dns = DnsInput { queries: &q, ..Default::default() };
    assert!(all(&mut |f, s, o| set.inspect_dns(&d, &dns, f, s, o)).contains(&2029107));
    let benign: [&[u8]; 1] = [b"www.example.com"];
    assert!(all(&mut |f, s, o| set.inspect_dns(&d, &DnsInput { queries: &benign, ..Default::default() }, f, s, o)).is_empty());

    // TLS SNI with bsize.
    let mut t = base;
    t.dst_port = 443;
    let tls = TlsInput { sni: Some(b"selmanc.com"), ..Default::default() };
    assert!(all(&mut |f, s, o| set.inspect_tls(&t, &tls, f, s, o)).contains(&2058344));

    // HTTP user agent.
    let tx = HttpInput { method: Some(b"GET"), uri: Some(b"/"), user_agent: Some(b"SRRemove/1.0"), host: Some(b"example.net"), ..Default::default() };
    assert!(all(&mut |f, s, o| set.inspect_http(&base, &tx, f, s, o)).contains(&2013394));
    let ok = HttpInput { user_agent: Some(b"Mozilla/5.0"), ..tx };
    assert!(!all(&mut |f, s, o| set.inspect_http(&base, &ok, f, s, o)).contains(&2013394));
}

/// Port groups (large payload sets are split by direction, app protocol and ports) never change
/// what matches: over every combination of rule header and packet, a rule alerts exactly when
/// its header admits the packet and its content occurs, as a brute-force check computes.
#[test]
fn payload_port_groups_match_exactly_what_the_headers_admit() {
    let ports = ["any", "80", "!80", "[80,443]", "1024:", "445", "[1:79,81:1023]", "$HTTP_PORTS"];
    let flows = ["", "flow:to_server;", "flow:to_client;", "flow:established,to_server;", "flow:not_established;"];
    let addrs = ["any", "$HOME_NET", "$EXTERNAL_NET", "[10.0.0.0/8,2001:db8::/32]", "!192.168.0.0/16", "93.184.216.0/24"];
    let protos = ["tcp", "http", "tls", "ip"];
    let mut text = String::new();
    let mut sid = 0;
    let mut specs = vec![];
    for (pi, proto) in protos.iter().enumerate() {
        for (fi, flow) in flows.iter().enumerate() {
            for (si, sp) in ports.iter().enumerate() {
                for (di, dp) in ports.iter().enumerate() {
                    if (si + di + fi + pi) % 3 != 0 {
                        continue;
                    }
                    sid += 1;
                    let arrow = if sid % 7 == 0 { "<>" } else { "->" };
                    let (sa, da) = (addrs[sid % addrs.len()], addrs[(sid / addrs.len()) % addrs.len()]);
                    text.push_str(&format!("alert {proto} {sa} {sp} {arrow} {da} {dp} (content:\"pat{sid:04}\"; {flow} sid:{sid};)\n"));
                    specs.push((sid, *proto, fi, ports_of(sp), ports_of(dp), arrow == "<>", sa, da));
                }
            }
        }
    }
    assert!(specs.len() > 64, "enough patterns to be grouped");
    let set = rules(&text);
    fn ports_of(spec: &str) -> Vec<u16> {
        // The probe ports below, filtered by the spec as Suricata reads it.
        let v = Vars::default();
        let set = v.port_set(spec).unwrap();
        [22u16, 80, 443, 445, 1000, 8080, 50000].into_iter().filter(|&p| set.contains(p)).collect()
    }
    let payload: String = specs.iter().map(|s| format!("pat{:04} ", s.0)).collect();
    let ips = ["10.0.0.2", "93.184.216.34", "192.168.1.1", "2001:db8::1", "::ffff:10.0.0.2"];
    let admits = |spec: &str, a: IpAddr| Vars::default().ip_set(spec).unwrap().contains(a);
    for (k, &(sp, dp)) in [(50000u16, 80u16), (80, 50000), (443, 50000), (50000, 445), (22, 1000), (8080, 50000)].iter().enumerate() {
      for (si, di) in [(0, 1), (1, 0), (0, 2), (3, 3), (4, 1), (k % 5, (k + 2) % 5)] {
        let (src, dst) = (ip(ips[si]), ip(ips[di]));
        for (to_server, established) in [(true, true), (false, true), (true, false), (false, false)] {
            for app in [None, Some("http"), Some("tls"), Some("smb")] {
                let mut p = pkt(payload.as_bytes());
                p.src_port = sp;
                p.dst_port = dp;
                p.to_server = to_server;
                p.flow_established = established;
                p.app_proto = app;
                p.src_ip = src;
                p.dst_ip = dst;
                let got = sids(&set, &p);
                let want: Vec<u64> = specs
                    .iter()
                    .filter(|(_, proto, fi, s, d, bi, sa, da)| {
                        let app_ok = match *proto {
                            "http" => app == Some("http"),
                            "tls" => app == Some("tls"),
                            _ => true,
                        };
                        let dir_ok = match fi {
                            1 => to_server,
                            2 => !to_server,
                            3 => to_server && established,
                            4 => !established,
                            _ => true,
                        };
                        let ports_ok = (s.contains(&sp) && d.contains(&dp) && admits(sa, src) && admits(da, dst))
                            || (*bi && s.contains(&dp) && d.contains(&sp) && admits(sa, dst) && admits(da, src));
                        app_ok && dir_ok && ports_ok
                    })
                    .map(|s| s.0 as u64)
                    .collect();
                assert_eq!(got, want, "{src}:{sp} -> {dst}:{dp} to_server {to_server} established {established} app {app:?}");
            }
        }
      }
    }
}

/// Traffic that meets more port combinations than [`crate::groups::MAX_GROUPS`] cannot grow the
/// groups without bound: beyond the cap, packets use one group over the whole set, and matches
/// stay exact.
#[test]
fn port_groups_are_capped_and_stay_exact_beyond_the_cap() {
    let n = crate::groups::MAX_GROUPS + 100;
    let text: String = (0..n).map(|i| format!("alert tcp any any -> any {} (content:\"pat{i:05}\"; sid:{};)\n", 2000 + i, i + 1)).collect();
    let set = rules(&text);
    for i in 0..n {
        // This port's rule, and another port's pattern that must not match here.
        let payload = format!("xx pat{i:05} pat{:05} xx", (i + 1) % n);
        let mut p = pkt(payload.as_bytes());
        p.dst_port = (2000 + i) as u16;
        assert_eq!(sids(&set, &p), [i as u64 + 1], "port {}", 2000 + i);
    }
    assert!(set.groups_built() <= crate::groups::MAX_GROUPS, "{} groups", set.groups_built());
}
