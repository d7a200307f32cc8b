//! One packet worker: decode → filter → flow → reassembly → app-layer → EVE.
//!
//! A worker owns everything its packets touch (decoder with its defrag buffers, flow table with
//! streams and per-flow app-layer state, EVE line buffer, counters), so nothing on this path is
//! shared or locked. Time is packet time: flows expire when the packets (or the reader's clock
//! ticks) say so, which makes pcap runs reproducible whatever the machine's speed.

use std::net::IpAddr;

use ward_model::eve::{self, Anomaly, Event, EventBody};
use ward_model::Timestamp;
use ward_packet::capture::RawPacket;
use ward_packet::decode::{DecodeAnomaly, Decoder};
use ward_packet::filter::Filter;
use ward_packet::flow::{Direction, EndReason, Flow, FlowConfig, FlowTable, TcpPolicy};
use ward_packet::packet::{Packet, IPPROTO_TCP, IPPROTO_UDP};
use ward_packet::stream::{StreamChunk, StreamConfig, StreamEvents};
use ward_proto::{AppEvent, AppState};

use crate::config::{EveTypes, SensorConfig};
use crate::detect::{scan_outcome, CtxPacket, FlowDetectState, FlowFacts, FlushedStream, RecordCtx, WorkerDetect};
use crate::eve_out::{EveBuffer, EveSink};
use crate::pipeline::FrameMeta;
use crate::stats::Counters;

/// Expire idle flows at most this often (packet time): a timing-wheel pass is cheap but not free.
const EXPIRE_EVERY_MICROS: i64= 1_000_000;

/// What the sensor keeps per flow, beside the flow table's own counters and streams.
#[derive(Default)]
pub(crate) struct FlowState {
    /// Created on the flow's first packet, when its client and server ports are known.
    app: Option<AppState>,
    /// Transactions logged (EVE `flow.tx_cnt`).
    tx_count: u64,
    /// Stream anomalies already reported for this flow (bit set of [`StreamEvents`]): each
    /// kind is reported once per flow, not once per packet.
    stream_reported: u16,
    /// Detection state (flowbits, alert dedup, stream tails, alerted flag).
    det: FlowDetectState,
}

pub(crate) struct Worker {
    decoder: Decoder,
    filter: Option<Filter>,
    flows: FlowTable<FlowState>,
    eve: EveBuffer,
    types: EveTypes,
    counters: Counters,
    app_events: Vec<AppEvent>,
    clock: Timestamp,
    last_expire: Timestamp,
    pkt_src: &'static str,
    detect: Option<WorkerDetect>,
}

impl Worker {
    pub(crate) fn new(_index: usize, config: &SensorConfig, filter: Option<Filter>, sink: EveSink, detect: Option<WorkerDetect>) -> Worker {
        Worker {
            decoder: Decoder::new(),
            filter,
            flows: FlowTable::new(flow_config(config)),
            eve: EveBuffer::new(sink),
            types: config.eve_types.clone(),
            counters: Counters::default(),
            app_events: Vec::with_capacity(16),
            clock: Timestamp::ZERO,
            last_expire: Timestamp::ZERO,
            pkt_src: "wire/pcap",
            detect,
        }
    }

    /// A batch starts: detection takes the current (possibly reloaded) rule and indicator sets.
    pub(crate) fn begin_batch(&mut self) {
        if let Some(d) = self.detect.as_mut() {
            d.refresh();
        }
    }

    pub(crate) fn process(&mut self, meta: &FrameMeta, frame: &[u8]) {
        if meta.ts > self.clock {
            self.clock = meta.ts;
        }
        let raw = RawPacket { ts: meta.ts, linktype: meta.link, data: frame, orig_len: meta.orig_len };
        // The decode result borrows the decoder; copy out what outlives it.
        let decoded = self.decoder.decode(&raw);
        // A frame's anomalies obey --filter as its packets do: one that did not decode (cut
        // short by the snap length, say) is judged by the header fields its bytes hold.
        for anomaly in decoded.anomalies {
            if self.filter.as_ref().is_none_or(|f| f.matches_headers(&anomaly.headers)) {
                write_decode_anomaly(&mut self.eve, &mut self.counters, anomaly, meta);
            }
        }
        if decoded.packet().is_none() {
            if let (Some(d), Some((op, sender, target))) = (self.detect.as_mut(), crate::detect::parse_arp(meta.link, frame)) {
                let mut alerts = Vec::new();
                d.on_arp(&mut alerts, meta.ts, op, sender, target);
                write_alerts(&mut self.eve, &mut self.counters, alerts);
            }
        }
        // Tunnel layers Suricata gives flows of their own (IP-in-IP, 6in4, the UDP around VXLAN,
        // Geneve, Teredo) are counted in those flows; only the innermost packet goes further.
        // Detection sees them too, without their payload (the next layer), as Suricata runs
        // header checks on a tunnel's outer packets.
        let mut outer_src = self.pkt_src;
        for (outer, kind) in decoded.layers().take(decoded.len().saturating_sub(1)) {
            if let Some(kind) = kind {
                outer_src = kind.pkt_src();
            }
            if !self.filter.as_ref().is_none_or(|f| f.matches(outer)) {
                continue;
            }
            let Some((flow, dir)) = self.flows.lookup(outer) else { continue };
            if let Some(d) = self.detect.as_mut() {
                let header_only = Packet { payload: &[], ..outer.clone() };
                let datalink = if outer.tunnel_depth > 0 { DLT_RAW } else { meta.link.datalink() };
                let packet = Some(CtxPacket { frame: outer.frame, payload: &[], datalink, tunnel: None });
                let rctx = RecordCtx { pcap_cnt: meta.pcap_cnt, pkt_src: outer_src, packet };
                let facts = flow_facts(flow);
                let mut alerts = Vec::new();
                d.on_packet(&mut alerts, &mut flow.user.det, &facts, &header_only, dir == Direction::ToServer, false, false, &rctx);
                write_alerts(&mut self.eve, &mut self.counters, alerts);
            }
        }
        if let Some(pkt) = decoded.packet() {
            let pkt = pkt.clone();
            // Suricata's tunnel packets are raw IP; a rebuilt datagram keeps its frame's type.
            let datalink = if pkt.tunnel_depth > 0 { DLT_RAW } else { meta.link.datalink() };
            // A tunnelled or rebuilt packet is a pseudo packet of its own source, whose alerts
            // name the frame's outermost packet.
            let (pkt_src, tunnel) = match (decoded.tunnel(), pkt.reassembled) {
                (None, false) => (self.pkt_src, None),
                (kind, _) => {
                    let src = kind.map_or("defrag", |k| k.pkt_src());
                    let root = decoded.packets().next().filter(|_| pkt.tunnel_depth > 0).unwrap_or(&pkt);
                    let ports = has_ports(root.proto) && !root.reassembled;
                    let tunnel = eve::Tunnel {
                        src_ip: eve::format_ip(root.src),
                        src_port: if ports { root.src_port } else { 0 },
                        dest_ip: eve::format_ip(root.dst),
                        dest_port: if ports { root.dst_port } else { 0 },
                        proto: eve::proto_name(root.proto),
                        depth: pkt.tunnel_depth,
                        pcap_cnt: Some(meta.pcap_cnt).filter(|&n| n > 0),
                        pkt_src: self.pkt_src.to_string(),
                    };
                    (src, Some(tunnel))
                }
            };
            handle_packet(
                &mut self.flows,
                &self.filter,
                &mut self.eve,
                &self.types,
                &mut self.counters,
                &mut self.app_events,
                &pkt,
                meta.pcap_cnt,
                datalink,
                tunnel.as_ref(),
                pkt_src,
                &mut self.detect,
            );
        }
        if self.clock.as_micros() - self.last_expire.as_micros() >= EXPIRE_EVERY_MICROS {
            self.expire();
        }
    }

    /// The reader's clock moved (a batch boundary or an idle tick).
    pub(crate) fn advance_clock(&mut self, ts: Timestamp) {
        if ts > self.clock {
            self.clock = ts;
        }
        if self.clock.as_micros() - self.last_expire.as_micros() >= EXPIRE_EVERY_MICROS {
            self.expire();
        }
        self.eve.flush();
    }

    fn expire(&mut self) {
        self.last_expire = self.clock;
        let memory = self.flows.stats().memory as u64;
        self.counters.flow_memuse_peak = self.counters.flow_memuse_peak.max(memory);
        self.decoder.expire(self.clock);
        let clock = self.clock;
        let Worker { flows, eve, types, counters, app_events, detect, .. } = self;
        flows.expire(clock, &mut |flow, reason| end_flow(eve, types, counters, app_events, detect, flow, reason, clock));
    }

    /// The capture ended: log every flow and start afresh for the next one.
    pub(crate) fn end_of_capture(&mut self, _name: &str) {
        let clock = self.clock;
        let Worker { flows, eve, types, counters, app_events, detect, .. } = self;
        flows.drain(&mut |flow, reason| end_flow(eve, types, counters, app_events, detect, flow, reason, clock));
        if let Some(d) = self.detect.as_mut() {
            let mut alerts = Vec::new();
            d.end_capture(&mut alerts);
            write_alerts(&mut self.eve, &mut self.counters, alerts);
        }
        self.collect_table_counters();
        let config = *self.flows.config();
        self.flows = FlowTable::new(config);
        self.decoder_counters_into_run();
        self.decoder = Decoder::new();
        self.clock = Timestamp::ZERO;
        self.last_expire = Timestamp::ZERO;
        self.eve.flush();
    }

    pub(crate) fn finish(&mut self) -> Counters {
        let clock = self.clock;
        let Worker { flows, eve, types, counters, app_events, detect, .. } = self;
        flows.drain(&mut |flow, reason| end_flow(eve, types, counters, app_events, detect, flow, reason, clock));
        if let Some(d) = self.detect.as_mut() {
            self.counters.pcre_limit_hits += d.take_pcre_limit_hits();
        }
        self.collect_table_counters();
        self.decoder_counters_into_run();
        self.decoder = Decoder::new();
        self.eve.flush();
        std::mem::take(&mut self.counters)
    }

    fn collect_table_counters(&mut self) {
        let stats = self.flows.stats();
        self.counters.flow_memuse_peak = self.counters.flow_memuse_peak.max(stats.memory as u64);
        self.counters.flows_evicted += stats.evicted;
        self.counters.flows_timeout += stats.timed_out;
    }

    /// Adds the decoder's counters to the run's (the decoder is replaced per capture).
    fn decoder_counters_into_run(&mut self) {
        let d = &self.decoder.stats;
        let c = &mut self.counters;
        c.decoded_packets += d.pkts;
        c.decoded_bytes += d.bytes;
        c.decode_errors += d.invalid;
        c.non_ip += d.non_ip;
        c.ethernet += d.ethernet;
        c.vlan += d.vlan;
        c.vlan_qinq += d.vlan_qinq;
        c.ipv4 += d.ipv4;
        c.ipv6 += d.ipv6;
        c.tcp += d.tcp;
        c.udp += d.udp;
        c.icmpv4 += d.icmpv4;
        c.icmpv6 += d.icmpv6;
        c.fragments += d.fragments;
        c.reassembled += d.reassembled;
        c.tunnels += d.gre + d.vxlan + d.geneve + d.teredo + d.ipv4_in_ipv4 + d.ipv6_in_ipv4 + d.ipv4_in_ipv6 + d.ipv6_in_ipv6;
    }
}

fn flow_config(config: &SensorConfig) -> FlowConfig {
    let mut flow = FlowConfig { memcap: config.flow_memcap, ..FlowConfig::default() };
    flow.stream = StreamConfig { depth: config.reassembly_depth, ..StreamConfig::default() };
    flow.tcp = TcpPolicy { midstream: config.midstream, async_oneside: config.async_oneside };
    flow.vlan_tracking = config.vlan_tracking;
    flow
}

#[allow(clippy::too_many_arguments)]
fn handle_packet(
    flows: &mut FlowTable<FlowState>,
    filter: &Option<Filter>,
    eve: &mut EveBuffer,
    types: &EveTypes,
    counters: &mut Counters,
    app_events: &mut Vec<AppEvent>,
    pkt: &Packet<'_>,
    pcap_cnt: u64,
    datalink: u32,
    tunnel: Option<&eve::Tunnel>,
    pkt_src: &'static str,
    detect: &mut Option<WorkerDetect>,
) {
    counters.max_pkt_size = counters.max_pkt_size.max(pkt.wire_len as u64);
    if let Some(filter) = filter {
        if !filter.matches(pkt) {
            counters.filtered_out += 1;
            return;
        }
    }
    let clock = pkt.ts;
    if let Some((flow, mut dir)) = flows.lookup(pkt) {
        let packet = Some(CtxPacket { frame: pkt.frame, payload: pkt.payload, datalink, tunnel });
        let ctx = PacketCtx { pcap_cnt, pkt_src, ts: pkt.ts, packet };
        if flow.user.app.is_none() && matches!(pkt.proto, IPPROTO_TCP | IPPROTO_UDP) {
            flow.user.app = Some(AppState::new(flow.proto, flow.client_port, flow.server_port));
        }
        let mut stream_new = detect.as_mut().filter(|d| d.wants_stream()).map(|d| std::mem::take(&mut d.stream_new));
        match pkt.proto {
            IPPROTO_TCP => {
                if flow.tcp.midstream && reverses_midstream(flow, dir, pkt.payload) {
                    // The first data of a session picked up mid-stream came from the server:
                    // Suricata reverses such a flow when the protocol is recognised only in the
                    // other direction.
                    flow.swap_direction();
                    dir = dir.reverse();
                    flow.user.app = Some(AppState::new(flow.proto, flow.client_port, flow.server_port));
                }
                let events = flow.reassemble(dir, pkt, &mut |state, d, chunk| {
                    if let (Some(buf), StreamChunk::Data(data)) = (stream_new.as_mut(), &chunk) {
                        buf.extend_from_slice(data);
                    }
                    feed_stream(state, d, chunk, app_events)
                });
                if !events.is_empty() {
                    report_stream_events(eve, counters, flow, events, &ctx);
                }
            }
            IPPROTO_UDP if !pkt.payload.is_empty() => {
                if let Some(app) = flow.user.app.as_mut() {
                    app.on_data(to_proto_dir(dir), pkt.payload, app_events);
                    if app.take_reversed() {
                        // The first datagram was a response: Suricata reverses such a flow.
                        flow.swap_direction();
                        dir = dir.reverse();
                    }
                }
            }
            _ => {}
        }
        if !app_events.is_empty() {
            write_app_events(eve, types, counters, flow, app_events, &ctx, detect);
        }
        inspect_http_requests(eve, counters, flow, &ctx, detect);
        if let Some(d) = detect.as_mut() {
            if let Some(buf) = stream_new.take() {
                d.stream_new = buf;
            }
            let facts = flow_facts(flow);
            let tcp_session = flow.is_tcp() && flow.tcp.state != ward_packet::flow::TcpState::None;
            let past_depth = tcp_session && flow.streams[dir.index()].depth_reached();
            let mut alerts = Vec::new();
            let rctx = RecordCtx { pcap_cnt, pkt_src, packet };
            d.on_packet(&mut alerts, &mut flow.user.det, &facts, pkt, dir == Direction::ToServer, tcp_session, past_depth, &rctx);
            write_alerts(eve, counters, alerts);
        }
    }
    flows.take_ended(&mut |flow, reason| end_flow(eve, types, counters, app_events, detect, flow, reason, clock));
}

/// Whether the first data of a mid-stream session, `payload` sent in direction `dir`, names
/// its protocol only when read as sent the other way (an HTTP response sent "to the server"):
/// Suricata's protocol detection then reverses the flow (`reverse_flow` on midstream sessions).
fn reverses_midstream(flow: &Flow<FlowState>, dir: Direction, payload: &[u8]) -> bool {
    use ward_proto::Detection;
    if payload.is_empty()
        || flow.streams[0].offset() != 0
        || flow.streams[1].offset() != 0
        || flow.user.app.as_ref().is_some_and(|a| a.app_proto().is_some())
    {
        return false;
    }
    let to_server = dir == Direction::ToServer;
    let as_sent = ward_proto::detect(payload, to_server, flow.server_port, flow.client_port, flow.proto);
    // Reversed, the client is the server.
    let reversed = ward_proto::detect(payload, !to_server, flow.client_port, flow.server_port, flow.proto);
    !matches!(as_sent, Detection::Proto(_)) && matches!(reversed, Detection::Proto(_))
}

/// The flow facts detection needs, copied out of the flow.
fn flow_facts(flow: &Flow<FlowState>) -> FlowFacts {
    FlowFacts {
        flow_id: flow.flow_id,
        client: flow.client,
        client_port: flow.client_port,
        server: flow.server,
        server_port: flow.server_port,
        proto: flow.proto,
        start: flow.start,
        pkts: flow.pkts,
        bytes: flow.bytes,
        established: flow.state() != ward_packet::flow::FlowState::New,
        app_proto: flow.user.app.as_ref().and_then(|a| a.app_proto()).map(|p| p.name()),
        vlan: flow.vlan,
    }
}

/// Writes what detection produced: alerts, and the anomalies of rules whose pcre reached a limit.
fn write_alerts(eve: &mut EveBuffer, counters: &mut Counters, alerts: Vec<Event>) {
    for record in &alerts {
        *counters.eve.entry(record.event_type()).or_default() += 1;
        eve.write(record);
    }
}

/// Envelope facts of the packet that produced an event.
struct PacketCtx<'a> {
    pcap_cnt: u64,
    pkt_src: &'static str,
    ts: Timestamp,
    /// The packet itself (`None` at flow end).
    packet: Option<CtxPacket<'a>>,
}

/// libpcap's DLT_RAW: the datalink of Suricata's tunnel packets.
const DLT_RAW: u32 = 12;

fn to_proto_dir(dir: Direction) -> ward_proto::Direction {
    match dir {
        Direction::ToServer => ward_proto::Direction::ToServer,
        Direction::ToClient => ward_proto::Direction::ToClient,
    }
}

fn feed_stream(state: &mut FlowState, dir: Direction, chunk: StreamChunk<'_>, out: &mut Vec<AppEvent>) {
    let Some(app) = state.app.as_mut() else { return };
    match chunk {
        StreamChunk::Data(data) => app.on_data(to_proto_dir(dir), data, out),
        StreamChunk::Gap(len) => app.on_gap(to_proto_dir(dir), len as u64, out),
        StreamChunk::DepthReached => {}
    }
}

/// The EVE envelope of a flow, oriented client → server (or the reverse for to-client events).
fn envelope(flow: &Flow<FlowState>, ts: Timestamp, dir: Direction, body: EventBody) -> Event {
    let mut event = Event::new(ts, body);
    let (src, sport, dst, dport) = match dir {
        Direction::ToServer => (flow.client, flow.client_port, flow.server, flow.server_port),
        Direction::ToClient => (flow.server, flow.server_port, flow.client, flow.client_port),
    };
    event.flow_id = Some(flow.flow_id);
    fill_addresses(&mut event, src, dst, flow.proto);
    if has_ports(flow.proto) {
        event.src_port = Some(sport);
        event.dest_port = Some(dport);
    }
    if flow.vlan[0] != 0 {
        event.vlan = Some(flow.vlan.iter().copied().filter(|&v| v != 0).collect());
    }
    event
}

fn fill_addresses(event: &mut Event, src: IpAddr, dst: IpAddr, proto: u8) {
    event.src_ip = Some(eve::format_ip(src));
    event.dest_ip = Some(eve::format_ip(dst));
    event.ip_v = Some(if src.is_ipv4() { 4 } else { 6 });
    event.proto = Some(eve::proto_name(proto));
}

fn has_ports(proto: u8) -> bool {
    matches!(proto, 6 | 17 | 132)
}

fn write_app_events(
    eve: &mut EveBuffer,
    types: &EveTypes,
    counters: &mut Counters,
    flow: &mut Flow<FlowState>,
    events: &mut Vec<AppEvent>,
    ctx: &PacketCtx,
    detect: &mut Option<WorkerDetect>,
) {
    for event in events.drain(..) {
        let body = event.to_event_body();
        if let Some(d) = detect.as_mut() {
            let facts = flow_facts(flow);
            let rctx = RecordCtx { pcap_cnt: ctx.pcap_cnt, pkt_src: ctx.pkt_src, packet: ctx.packet };
            let mut alerts = Vec::new();
            let state = &mut flow.user.det;
            match (&event, &body) {
                (AppEvent::Http(tx), EventBody::Http { http }) => d.on_http(&mut alerts, state, &facts, ctx.ts, tx, http, &rctx),
                (AppEvent::Dns { tx_id, message }, EventBody::Dns { dns }) => {
                    d.on_dns(&mut alerts, state, &facts, ctx.ts, *tx_id, message, dns, &rctx)
                }
                (AppEvent::Tls(info), EventBody::Tls { tls }) => d.on_tls(&mut alerts, state, &facts, ctx.ts, info, tls, &rctx),
                _ => {}
            }
            write_alerts(eve, counters, alerts);
        }
        let (wanted, dir) = match &body {
            EventBody::Dns { dns } => {
                let dir = if dns.kind == "response" { Direction::ToClient } else { Direction::ToServer };
                (types.dns, dir)
            }
            EventBody::Http { .. } => (types.http, Direction::ToServer),
            EventBody::Tls { .. } => (types.tls, Direction::ToServer),
            _ => (true, Direction::ToServer),
        };
        if !matches!(body, EventBody::Anomaly { .. }) {
            flow.user.tx_count += 1;
            counters.count_tx(body.event_type(), flow.proto);
        }
        if !wanted {
            continue;
        }
        let mut record = envelope(flow, ctx.ts, dir, body);
        record.tx_id = event.tx_id();
        record.pcap_cnt = Some(ctx.pcap_cnt).filter(|&n| n > 0);
        record.pkt_src = Some(ctx.pkt_src.into());
        *counters.eve.entry(record.event_type()).or_default() += 1;
        eve.write(&record);
    }
}

/// HTTP requests completed by this packet are inspected now, before their responses arrive (the
/// transaction itself is handed out, and its response half inspected, once the response is
/// complete): request-side alerts carry this packet, as Suricata's do.
fn inspect_http_requests(
    eve: &mut EveBuffer,
    counters: &mut Counters,
    flow: &mut Flow<FlowState>,
    ctx: &PacketCtx,
    detect: &mut Option<WorkerDetect>,
) {
    let Some(d) = detect.as_mut() else { return };
    let next = flow.user.det.http_requests_inspected;
    let ready = match flow.user.app.as_ref().map(|a| a.parser()) {
        Some(ward_proto::app::AppParser::Http(http)) => http.pending().any(|t| t.tx_id >= next && t.request_complete),
        _ => false,
    };
    if !ready {
        return;
    }
    let facts = flow_facts(flow);
    let user = &mut flow.user;
    let Some(ward_proto::app::AppParser::Http(http)) = user.app.as_ref().map(|a| a.parser()) else {
        return;
    };
    let rctx = RecordCtx { pcap_cnt: ctx.pcap_cnt, pkt_src: ctx.pkt_src, packet: ctx.packet };
    let mut alerts = Vec::new();
    for tx in http.pending() {
        if tx.tx_id < user.det.http_requests_inspected {
            continue;
        }
        if !tx.request_complete {
            break;
        }
        d.on_http_request(&mut alerts, &mut user.det, &facts, ctx.ts, tx, &rctx);
    }
    write_alerts(eve, counters, alerts);
}

fn report_stream_events(
    eve: &mut EveBuffer,
    counters: &mut Counters,
    flow: &mut Flow<FlowState>,
    events: StreamEvents,
    ctx: &PacketCtx,
) {
    const REPORTED: [(u16, &str); 3] = [
        (StreamEvents::OVERLAP_DIFFERENT_DATA, "stream.reassembly_overlap_different_data"),
        (StreamEvents::OUT_OF_WINDOW, "stream.pkt_invalid_window"),
        (StreamEvents::DATA_AFTER_FIN, "stream.fin_but_no_session"),
    ];
    for (bit, name) in REPORTED {
        if events.contains(bit) && flow.user.stream_reported & bit == 0 {
            flow.user.stream_reported |= bit;
            let mut record = envelope(
                flow,
                ctx.ts,
                Direction::ToServer,
                EventBody::Anomaly {
                    anomaly: Anomaly { kind: "stream".into(), event: name.into(), app_proto: None, layer: None, code: None },
                },
            );
            record.pcap_cnt = Some(ctx.pcap_cnt).filter(|&n| n > 0);
            record.pkt_src = Some(ctx.pkt_src.into());
            *counters.eve.entry("anomaly").or_default() += 1;
            eve.write(&record);
        }
    }
}

fn write_decode_anomaly(eve: &mut EveBuffer, counters: &mut Counters, anomaly: &DecodeAnomaly, meta: &FrameMeta) {
    let mut record = Event::new(
        meta.ts,
        EventBody::Anomaly {
            anomaly: Anomaly { kind: "decode".into(), event: anomaly.event.into(), app_proto: None, layer: None, code: None },
        },
    );
    if let (Some(src), Some(dst)) = (anomaly.src, anomaly.dst) {
        fill_addresses(&mut record, src, dst, anomaly.proto);
        if has_ports(anomaly.proto) && (anomaly.src_port != 0 || anomaly.dst_port != 0) {
            record.src_port = Some(anomaly.src_port);
            record.dest_port = Some(anomaly.dst_port);
        }
    }
    record.pcap_cnt = Some(meta.pcap_cnt).filter(|&n| n > 0);
    record.pkt_src = Some("wire/pcap".into());
    *counters.eve.entry("anomaly").or_default() += 1;
    eve.write(&record);
}

/// A flow ended: flush its streams into the app layer, log what that produced, then the flow.
fn end_flow(
    eve: &mut EveBuffer,
    types: &EveTypes,
    counters: &mut Counters,
    app_events: &mut Vec<AppEvent>,
    detect: &mut Option<WorkerDetect>,
    mut flow: Flow<FlowState>,
    reason: EndReason,
    clock: Timestamp,
) {
    let ts = clock.max(flow.last);
    // What closing the streams flushes (data held behind gaps) is inspected once more.
    let keep_flushed = detect.as_ref().is_some_and(|d| d.wants_stream());
    let mut flushed: [FlushedStream; 2] = Default::default();
    if flow.is_tcp() {
        flow.close_streams(&mut |state, d, chunk| {
            if keep_flushed {
                flushed[d.index()].push(&chunk);
            }
            feed_stream(state, d, chunk, app_events)
        });
    }
    if let Some(app) = flow.user.app.as_mut() {
        app.on_close(app_events);
    }
    let ctx = PacketCtx { pcap_cnt: 0, pkt_src: "stream (flow timeout)", ts, packet: None };
    if !app_events.is_empty() {
        write_app_events(eve, types, counters, &mut flow, app_events, &ctx, detect);
    }
    if let Some(d) = detect.as_mut() {
        let mut alerts = Vec::new();
        let facts = flow_facts(&flow);
        let rctx = RecordCtx { pcap_cnt: 0, pkt_src: ctx.pkt_src, packet: None };
        for dir in [Direction::ToServer, Direction::ToClient] {
            let stream = &flushed[dir.index()];
            if !stream.is_empty() {
                d.on_stream_end(&mut alerts, &mut flow.user.det, &facts, ts, dir == Direction::ToServer, stream, &rctx);
            }
        }
        d.on_flow_end(&mut alerts, &facts, scan_outcome(&flow));
        write_alerts(eve, counters, alerts);
    }

    if !flow.tracked {
        // A protocol Suricata keeps no flow for (IGMP, GRE, ...): inspected, not logged.
        return;
    }
    counters.flows_total += 1;
    match flow.proto {
        6 => counters.flows_tcp += 1,
        17 => counters.flows_udp += 1,
        1 => counters.flows_icmpv4 += 1,
        58 => counters.flows_icmpv6 += 1,
        _ => {}
    }
    if flow.is_tcp() {
        counters.tcp_sessions += 1;
        let flags = flow.tcp.flags_all();
        if flags & 0x02 != 0 {
            counters.tcp_syn += 1;
        }
        if flow.tcp.flags[1] & 0x12 == 0x12 {
            counters.tcp_synack += 1;
        }
        if flags & 0x04 != 0 {
            counters.tcp_rst += 1;
        }
        for stream in &flow.streams {
            let s = stream.stats();
            counters.tcp_gaps += s.gaps;
            counters.tcp_overlaps += s.overlaps;
            counters.tcp_overlap_diff += s.overlaps_different_data;
            counters.tcp_depth_reached += stream.depth_reached() as u64;
        }
    }
    let app_name = flow.user.app.as_ref().and_then(|app| app.app_proto()).map(|p| p.name().to_string());
    if let Some(name) = &app_name {
        counters.count_app_flow(name, flow.proto);
    }
    if !types.flow {
        return;
    }
    let mut body = flow.eve_flow(reason, flow.user.det.alerted);
    if flow.user.tx_count > 0 {
        body.tx_cnt = Some(flow.user.tx_count);
    }
    let tcp = flow.eve_tcp();
    let mut record = envelope(&flow, ts, Direction::ToServer, EventBody::Flow { flow: body, tcp });
    record.app_proto = app_name;
    if matches!(flow.proto, 1 | 58) {
        if let Some((t, c)) = flow.icmp[0] {
            record.icmp_type = Some(t);
            record.icmp_code = Some(c);
        }
        if let Some((t, c)) = flow.icmp[1] {
            record.response_icmp_type = Some(t);
            record.response_icmp_code = Some(c);
        }
    }
    *counters.eve.entry("flow").or_default() += 1;
    eve.write(&record);
}
