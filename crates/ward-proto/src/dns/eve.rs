//! Renders a parsed [`DnsMessage`] as Suricata's EVE `dns` version 3 object: one record per
//! request and one per response, `flags` as lowercase hex, flag booleans only when set, rrtype and
//! rcode names as Suricata writes them (unknown types as their number), AAAA addresses fully
//! expanded, and `rdata` only for the types Suricata renders (A, AAAA, CNAME, NS, PTR, MX, TXT),
//! with SOA and SRV as objects.
//!
//! `ward_model::eve::Dns` has no field yet for `grouped` and the OPT `opt` lists; [`to_eve_json`]
//! renders the full Suricata object, those included, as JSON.

use serde_json::json;
use ward_model::eve::{format_ip, Dns, DnsAnswer, DnsQuery};

use crate::dns::parser::{
    self, DnsMessage, DnsRData, DnsRecord, FLAG_AA, FLAG_QR, FLAG_RA, FLAG_RD, FLAG_TC, FLAG_Z,
};

/// The EVE `dns` object of one message, for the transaction `tx_id` of its flow.
pub fn to_eve(message: &DnsMessage, tx_id: u64) -> Dns {
    let flags = message.header.flags;
    Dns {
        version: 3,
        kind: if flags & FLAG_QR != 0 {
            "response"
        } else {
            "request"
        }
        .into(),
        tx_id: Some(tx_id),
        id: message.header.id,
        flags: format!("{flags:x}"),
        qr: flags & FLAG_QR != 0,
        aa: flags & FLAG_AA != 0,
        tc: flags & FLAG_TC != 0,
        rd: flags & FLAG_RD != 0,
        ra: flags & FLAG_RA != 0,
        z: flags & FLAG_Z != 0,
        opcode: message.header.opcode(),
        rcode: parser::rcode_name(u16::from(message.header.rcode())),
        queries: message
            .queries
            .iter()
            .map(|q| DnsQuery {
                rrname: q.name.to_text(),
                rrtype: parser::rrtype_name(q.rrtype),
            })
            .collect(),
        answers: answers(&message.answers),
        authorities: answers(&message.authorities),
        additionals: answers(&message.additionals),
    }
}

/// The EVE entries of one record: one, except a TXT record with several strings, which Suricata
/// writes as one entry per string.
fn answers(records: &[DnsRecord]) -> Vec<DnsAnswer> {
    let mut out = Vec::with_capacity(records.len());
    for record in records {
        match &record.rdata {
            // Suricata leaves out OPT pseudo-records that carry no option.
            DnsRData::Opt(opts) if opts.is_empty() => {}
            DnsRData::Txt(strings) if record.rrtype == parser::TYPE_TXT && strings.len() > 1 => {
                for s in strings {
                    let mut entry = answer(record);
                    let mut text = String::new();
                    crate::push_printable(&mut text, s);
                    entry.rdata = Some(text);
                    out.push(entry);
                }
            }
            _ => out.push(answer(record)),
        }
    }
    out
}

/// The full Suricata `dns` object as JSON: [`to_eve`] plus `grouped` (answer data by type) and
/// the `opt` option lists of OPT records.
pub fn to_eve_json(message: &DnsMessage, tx_id: u64) -> serde_json::Value {
    let dns = to_eve(message, tx_id);
    let mut value = serde_json::to_value(&dns).unwrap_or(serde_json::Value::Null);
    let Some(obj) = value.as_object_mut() else {
        return value;
    };
    if !dns.answers.is_empty() {
        // Every answer with data, by type: text rdata, or the SOA/SRV object.
        let mut grouped = serde_json::Map::new();
        for a in &dns.answers {
            let data = match (&a.rdata, &a.soa, &a.srv) {
                (Some(text), _, _) => json!(text),
                (None, Some(soa), _) => soa.clone(),
                (None, None, Some(srv)) => srv.clone(),
                _ => continue,
            };
            let entry = grouped.entry(a.rrtype.clone()).or_insert_with(|| json!([]));
            if let Some(list) = entry.as_array_mut() {
                list.push(data);
            }
        }
        obj.insert("grouped".into(), serde_json::Value::Object(grouped));
    }
    // OPT option lists, in the order the OPT records appear among the additionals.
    let opts: Vec<&Vec<(u16, Vec<u8>)>> = message
        .additionals
        .iter()
        .filter_map(|r| match &r.rdata {
            DnsRData::Opt(o) if !o.is_empty() => Some(o),
            _ => None,
        })
        .collect();
    if let Some(adds) = obj.get_mut("additionals").and_then(|a| a.as_array_mut()) {
        let mut opts = opts.into_iter();
        for a in adds.iter_mut().filter(|a| a["rrtype"] == "OPT") {
            if let Some(list) = opts.next() {
                let entries: Vec<_> = list
                    .iter()
                    .map(|(code, data)| json!({ "code": code, "data": data.iter().map(|b| format!("{b:02x}")).collect::<String>() }))
                    .collect();
                a["opt"] = json!(entries);
            }
        }
    }
    value
}

fn answer(record: &DnsRecord) -> DnsAnswer {
    let mut out = DnsAnswer {
        rrname: record.name.to_text(),
        rrtype: parser::rrtype_name(record.rrtype),
        ttl: record.ttl,
        rdata: None,
        soa: None,
        srv: None,
    };
    match &record.rdata {
        DnsRData::A(ip) => out.rdata = Some(ip.to_string()),
        DnsRData::Aaaa(ip) => out.rdata = Some(format_ip((*ip).into())),
        DnsRData::Name(name) => out.rdata = Some(name.to_text()),
        DnsRData::Mx { exchange, .. } => out.rdata = Some(exchange.to_text()),
        DnsRData::Txt(strings) if record.rrtype == parser::TYPE_TXT => {
            let mut text = String::new();
            for s in strings {
                crate::push_printable(&mut text, s);
            }
            out.rdata = Some(text);
        }
        DnsRData::Soa(soa) => {
            out.soa = Some(json!({
                "mname": soa.mname.to_text(),
                "rname": soa.rname.to_text(),
                "serial": soa.serial,
                "refresh": soa.refresh,
                "retry": soa.retry,
                "expire": soa.expire,
                "minimum": soa.minimum,
            }))
        }
        // Records without data still show an empty `rdata` for the types Suricata renders.
        DnsRData::Other(raw)
            if raw.is_empty()
                && matches!(
                    record.rrtype,
                    parser::TYPE_A
                        | parser::TYPE_AAAA
                        | parser::TYPE_CNAME
                        | parser::TYPE_NS
                        | parser::TYPE_PTR
                        | parser::TYPE_MX
                        | parser::TYPE_TXT
                ) =>
        {
            out.rdata = Some(String::new())
        }
        DnsRData::Srv(srv) => {
            out.srv = Some(json!({
                "priority": srv.priority,
                "weight": srv.weight,
                "port": srv.port,
                "name": srv.target.to_text(),
            }))
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The response of `dns/dns-corrupt.pcap` packet 2 as Suricata logged it, rebuilt from the
    /// message bytes.
    #[test]
    fn renders_a_response_like_suricata() {
        let mut m = vec![0xb8, 0x23, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0];
        m.extend_from_slice(b"\x04zeek\x03org\x00\x00\x01\x00\x01");
        m.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 78, 212]);
        m.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 78, 150]);
        let msg = parser::parse_message(&m).unwrap();
        let got = serde_json::to_string(&to_eve(&msg, 1)).unwrap();
        assert_eq!(
            got,
            r#"{"version":3,"type":"response","tx_id":1,"id":47139,"flags":"8180","qr":true,"rd":true,"ra":true,"opcode":0,"rcode":"NOERROR","queries":[{"rrname":"zeek.org","rrtype":"A"}],"answers":[{"rrname":"zeek.org","rrtype":"A","ttl":60,"rdata":"192.0.78.212"},{"rrname":"zeek.org","rrtype":"A","ttl":60,"rdata":"192.0.78.150"}]}"#
        );
    }
}
