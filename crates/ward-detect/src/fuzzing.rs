//! Entry points for the fuzz targets (fuzz/fuzz_targets/rule_parser.rs and rule_options.rs),
//! kept here so the targets stay five lines and the same code runs in the unit tests.

use std::net::{IpAddr, Ipv4Addr};

use ward_model::Timestamp;

use crate::{load_str, Classification, DetectScratch, DnsInput, FlowDetect, HttpInput, PacketInput, TlsInput, Vars};

/// Parses and compiles arbitrary text as a rules file.
pub fn rule_parser(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = load_str(&text, "fuzz", &Vars::default(), &Classification::default());
}

/// Compiles `data` up to the first NUL as the options of one rule and runs the rule against
/// the rest as packet payload and as every app-layer buffer.
pub fn rule_options(data: &[u8]) {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let opts = String::from_utf8_lossy(&data[..split]);
    let payload = data.get(split + 1..).unwrap_or_default();
    let (set, _) = load_str(&format!("alert tcp any any -> any any ({opts} sid:1;)\nalert http any any -> any any ({opts} sid:2;)\nalert dns any any -> any any ({opts} sid:3;)\nalert tls any any -> any any ({opts} sid:4;)"), "fuzz", &Vars::default(), &Classification::default());
    let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let mut p = PacketInput::new(Timestamp::ZERO, ip, 1, ip, 80, 6);
    p.payload = payload;
    p.flow_established = true;
    p.app_proto = Some("http");
    let (mut flow, mut scratch, mut out) = (FlowDetect::new(), DetectScratch::new(), Vec::new());
    set.inspect_packet(&p, &mut flow, &mut scratch, &mut out);
    let s = Some(payload);
    let tx = HttpInput { method: s, uri: s, uri_raw: s, host: s, user_agent: s, request_header: s, request_body: s, response_body: s, stat_code: s, ..Default::default() };
    set.inspect_http(&p, &tx, &mut flow, &mut scratch, &mut out);
    p.to_server = false;
    set.inspect_http(&p, &tx, &mut flow, &mut scratch, &mut out);
    set.inspect_dns(&p, &DnsInput { queries: &[payload], ..Default::default() }, &mut flow, &mut scratch, &mut out);
    set.inspect_tls(&p, &TlsInput { sni: s, certs: &[payload], ..Default::default() }, &mut flow, &mut scratch, &mut out);
}

#[cfg(test)]
mod tests {
    proptest::proptest! {
        #[test]
        fn rule_options_never_panic(opts in r#"(content:"[a-z|0-9 ]{0,6}"; |nocase; |depth:[0-9]; |offset:[0-9]; |distance:-?[0-9]; |within:[0-9]; |isdataat:!?[0-9],relative; |byte_test:[1-4],[<>=&],[0-9],[0-9],relative; |byte_jump:[1-4],[0-9],relative; |pcre:"/[a-z.*]{1,4}/[iRsm]{0,2}"; |http.uri; |dns.query; |dotprefix; |bsize:[<>]?[0-9]; |endswith; |startswith; ){0,8}"#, payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let mut data = opts.into_bytes();
            data.push(0);
            data.extend(payload);
            super::rule_options(&data);
            super::rule_parser(&data);
        }
    }
}
