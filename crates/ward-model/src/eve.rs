//! Suricata EVE JSON records, as Suricata 8 writes them.
//!
//! One [`Event`] is one NDJSON line. The common envelope (timestamp, flow id, addresses, ports,
//! protocol) is flattened next to an [`EventBody`] whose variant is written as `event_type`.
//! Optional fields are omitted when absent, as Suricata omits them. IPv6 addresses are written
//! in Suricata's fully expanded form (see [`format_ip`]); the hub parses both forms.
//!
//! Every record the sensor writes must validate against Suricata's EVE schema; the sensor's
//! tests check that against `../shared/data/suricata/eve-schema.json`.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// One EVE record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub timestamp: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_iface: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcap_cnt: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcap_filename: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_v: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp_type: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp_code: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_icmp_type: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_icmp_code: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<Vec<u16>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkt_src: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_proto: Option<String>,
    #[serde(flatten)]
    pub body: EventBody,
}

impl Event {
    /// A record with only a timestamp and a body; callers fill in the envelope they know.
    pub fn new(timestamp: Timestamp, body: EventBody) -> Self {
        Event {
            timestamp,
            flow_id: None,
            in_iface: None,
            pcap_cnt: None,
            pcap_filename: None,
            src_ip: None,
            src_port: None,
            dest_ip: None,
            dest_port: None,
            ip_v: None,
            proto: None,
            icmp_type: None,
            icmp_code: None,
            response_icmp_type: None,
            response_icmp_code: None,
            vlan: None,
            pkt_src: None,
            tx_id: None,
            app_proto: None,
            body,
        }
    }

    /// The value of `event_type` for this record.
    pub fn event_type(&self) -> &'static str {
        self.body.event_type()
    }
}

/// The typed part of a record; the variant name is written as `event_type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event_type", rename_all = "snake_case")]
pub enum EventBody {
    Alert {
        alert: Alert,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        direction: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        http: Option<Http>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dns: Option<Dns>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tls: Option<Tls>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        flow: Option<AlertFlow>,
        /// Suricata's optional alert output (`payload`, `payload-printable`, `packet`,
        /// `verdict`), written at the top level of the record.
        #[serde(flatten)]
        extra: Box<AlertExtra>,
    },
    Anomaly {
        anomaly: Anomaly,
    },
    Flow {
        flow: Flow,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tcp: Option<TcpSummary>,
    },
    Dns {
        dns: Dns,
    },
    Http {
        http: Http,
    },
    Tls {
        tls: Tls,
    },
    Stats {
        stats: serde_json::Value,
    },
    /// A message of the engine itself (Suricata's engine log as EVE), e.g. a refused rule
    /// reload: `log_level` (`Error`, `Warning`, `Info`, ...) and the `engine` object.
    Engine {
        log_level: String,
        engine: EngineLog,
    },
}

impl EventBody {
    pub fn event_type(&self) -> &'static str {
        match self {
            EventBody::Alert { .. } => "alert",
            EventBody::Anomaly { .. } => "anomaly",
            EventBody::Flow { .. } => "flow",
            EventBody::Dns { .. } => "dns",
            EventBody::Http { .. } => "http",
            EventBody::Tls { .. } => "tls",
            EventBody::Stats { .. } => "stats",
            EventBody::Engine { .. } => "engine",
        }
    }
}

/// Writes an address the way Suricata does: IPv4 dotted, IPv6 as eight zero-padded groups.
pub fn format_ip(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!(
                "{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}",
                s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]
            )
        }
    }
}

/// The EVE name of an IP protocol number, as Suricata 8 writes it (`TCP`, `UDP`, `ICMP`, `IPv6-ICMP`,
/// `ESP`, `IP-in-IP`, `IPv6`, ...), else the number.
pub fn proto_name(proto: u8) -> String {
    match proto {
        1 => "ICMP".into(),
        4 => "IP-in-IP".into(),
        6 => "TCP".into(),
        17 => "UDP".into(),
        41 => "IPv6".into(),
        47 => "GRE".into(),
        50 => "ESP".into(),
        58 => "IPv6-ICMP".into(),
        132 => "SCTP".into(),
        other => other.to_string(),
    }
}

/// The `engine` object of an engine record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineLog {
    /// The part of the engine that speaks, e.g. `detect-reload`.
    pub module: String,
    pub message: String,
}

/// The `alert` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Alert {
    pub action: String,
    pub gid: u32,
    pub signature_id: u64,
    pub rev: u32,
    pub signature: String,
    pub category: String,
    pub severity: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<AlertEndpoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<AlertEndpoint>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
    /// Extra detail (scan counts, indicator ids and descriptions). Suricata's schema leaves
    /// `alert.context` open for keyword-generated data, so ward's own fields live here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<serde_json::Value>,
}

/// The optional parts of an alert record, each written only when its output option is on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct AlertExtra {
    /// The matched packet's payload, or for a stream match the stream's bytes, in base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// The same bytes as text, non-printable bytes as `.`, missing stream bytes as
    /// `[N bytes missing]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_printable: Option<String>,
    /// 1 when `payload` is stream data, else 0 (written with `payload`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<u8>,
    /// The whole packet in base64, from its link header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packet: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packet_info: Option<PacketInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// For a packet found in a tunnel or rebuilt from fragments: the frame's outermost packet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<Tunnel>,
}

/// The outermost packet of the frame an alert's (tunnelled or rebuilt) packet came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Tunnel {
    pub src_ip: String,
    pub src_port: u16,
    pub dest_ip: String,
    pub dest_port: u16,
    /// The outer packet's protocol name (`IP-in-IP`, `IPv6`, `GRE`, `UDP`, ...).
    pub proto: String,
    /// How many tunnels deep the alert's packet is (0 for a rebuilt datagram).
    pub depth: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcap_cnt: Option<u64>,
    pub pkt_src: String,
}

/// The link type of an alert's `packet`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct PacketInfo {
    /// The datalink (DLT) value, e.g. 1 for Ethernet.
    pub linktype: u32,
    /// Its name as Suricata writes it (`EN10MB`, `LINUX_SLL`, `RAW`, ...), `n/a` when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linktype_name: Option<String>,
}

/// What was done with the packet (`alert` or `pass` for a passive sensor).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Verdict {
    pub action: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct AlertEndpoint {
    pub ip: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

/// The `flow` object inside an alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct AlertFlow {
    pub pkts_toserver: u64,
    pub pkts_toclient: u64,
    pub bytes_toserver: u64,
    pub bytes_toclient: u64,
    pub start: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest_port: Option<u16>,
}

/// The `anomaly` object. `type` is `decode`, `stream` or `applayer`; `event` names what was
/// wrong (e.g. `decoder.ipv4.trunc_pkt`). The schema admits no other fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Anomaly {
    #[serde(rename = "type")]
    pub kind: String,
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_proto: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u32>,
}

/// The `flow` object of a flow record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Flow {
    pub pkts_toserver: u64,
    pub pkts_toclient: u64,
    pub bytes_toserver: u64,
    pub bytes_toclient: u64,
    pub start: Timestamp,
    pub end: Timestamp,
    pub age: i64,
    /// `new`, `established`, `closed` or `bypassed`.
    pub state: String,
    /// `timeout`, `forced` or `shutdown`.
    pub reason: String,
    pub alerted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_cnt: Option<u64>,
}

/// The `tcp` object of a flow record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TcpSummary {
    pub tcp_flags: String,
    pub tcp_flags_ts: String,
    pub tcp_flags_tc: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub syn: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fin: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rst: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub psh: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ack: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub urg: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// The `dns` object, Suricata's version 3 format: requests and responses are separate records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Dns {
    pub version: u8,
    /// `request` or `response`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_id: Option<u64>,
    pub id: u16,
    /// The header flags as lowercase hex without leading zeros, e.g. `8180`.
    pub flags: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub qr: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub aa: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tc: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rd: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ra: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub z: bool,
    pub opcode: u8,
    pub rcode: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queries: Vec<DnsQuery>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<DnsAnswer>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorities: Vec<DnsAnswer>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additionals: Vec<DnsAnswer>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DnsQuery {
    pub rrname: String,
    pub rrtype: String,
}

/// One resource record. `rdata` is the text form (address, name, or text); records whose data
/// Suricata writes as an object (SOA, SRV, ...) carry it in the named field instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DnsAnswer {
    pub rrname: String,
    pub rrtype: String,
    pub ttl: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdata: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soa: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub srv: Option<serde_json::Value>,
}

/// The `http` object: one request/response transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Http {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_refer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<String>,
    /// Response body length as seen (after de-chunking, before decompression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
}

/// The `tls` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Tls {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuerdn: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subjectaltname: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notbefore: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notafter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ja3: Option<Ja3>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ja3s: Option<Ja3>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Ja3 {
    pub hash: String,
    pub string: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_a_suricata_dns_record() {
        let line = r#"{"timestamp":"2011-09-27T18:07:22.906413+0000","flow_id":784153851240059,"pcap_cnt":542,"event_type":"dns","src_ip":"192.168.1.1","src_port":53,"dest_ip":"192.168.1.71","dest_port":64480,"proto":"UDP","ip_v":4,"pkt_src":"wire/pcap","dns":{"version":3,"type":"response","tx_id":6,"id":4543,"flags":"8583","qr":true,"aa":true,"rd":true,"ra":true,"opcode":0,"rcode":"NXDOMAIN","queries":[{"rrname":"1.1.168.192.in-addr.arpa","rrtype":"PTR"}]}}"#;
        let event: Event = serde_json::from_str(line).unwrap();
        assert_eq!(event.event_type(), "dns");
        let back: serde_json::Value = serde_json::to_value(&event).unwrap();
        let orig: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(back, orig);
    }

    #[test]
    fn alert_payload_and_packet_fields_are_top_level_and_optional() {
        // Trimmed from a Suricata 8 alert with payload, payload-printable, packet and verdict on.
        let line = r#"{"timestamp":"2023-11-20T10:21:36.537853+0000","flow_id":1,"pcap_cnt":5,"event_type":"alert","src_ip":"1.1.1.1","src_port":12345,"dest_ip":"2.2.2.2","dest_port":8080,"proto":"TCP","pkt_src":"wire/pcap","alert":{"action":"allowed","gid":1,"signature_id":4,"rev":0,"signature":"","category":"","severity":3},"direction":"to_server","payload":"VkVSWQ==","payload_printable":"VERY","stream":0,"packet":"BQQDAgEAAAECAwQFgQAABggARQAALAABAABABnTGAQEBAQICAgIwOR+QAAAAAgAAA+lQEAQAqXgAAFZFUlk=","packet_info":{"linktype":1,"linktype_name":"EN10MB"},"verdict":{"action":"alert"}}"#;
        let event: Event = serde_json::from_str(line).unwrap();
        let EventBody::Alert { extra, .. } = &event.body else { panic!("an alert") };
        assert_eq!(extra.payload_printable.as_deref(), Some("VERY"));
        assert_eq!(extra.stream, Some(0));
        assert_eq!(extra.packet_info.as_ref().map(|i| i.linktype), Some(1));
        let back: serde_json::Value = serde_json::to_value(&event).unwrap();
        let orig: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(back, orig);
        // Off by default: none of the keys is written.
        let plain = Event::new(
            event.timestamp,
            EventBody::Alert {
                alert: Alert::default(),
                direction: None,
                http: None,
                dns: None,
                tls: None,
                flow: None,
                extra: Box::default(),
            },
        );
        let v = serde_json::to_value(&plain).unwrap();
        for key in ["payload", "payload_printable", "stream", "packet", "packet_info", "verdict"] {
            assert!(v.get(key).is_none(), "{key}");
        }
    }

    #[test]
    fn expands_ipv6_like_suricata() {
        let addr: IpAddr = "2a00:1450:400c:c00::106".parse().unwrap();
        assert_eq!(format_ip(addr), "2a00:1450:400c:0c00:0000:0000:0000:0106");
    }
}
