//! IPv4 and IPv6 fragment reassembly.
//!
//! The decoder hands every fragment to [`Defragmenter::push`]; when a datagram is complete, its
//! bytes (a rebuilt IP header followed by the whole payload) are in [`Defragmenter::output`] and
//! the decoder decodes them like a normal packet, marked `reassembled`.
//!
//! Trains are keyed by (IP version, source, destination, identification, protocol for IPv4,
//! VLAN tags). The rebuilt header is the first-offset fragment's: for IPv4 its header with
//! options, total length set and fragment fields cleared; for IPv6 its fixed 40-byte header with
//! the fragment header's next-header and the payload length set (extension headers in front of
//! the fragment header are dropped).
//!
//! Overlap policy: **first arrival wins**, byte by byte (Suricata's `first` policy). Bytes that a
//! later fragment carries for a range already received are discarded, and the overlap raises a
//! `frag_overlap` anomaly. A fragment reaching past the end of the last fragment extends the
//! datagram (as Suricata does).
//!
//! Limits (all named below): fragments per datagram, datagram size, concurrent trains, bytes held
//! and a timeout. A fragment refused for a limit is counted and raises an anomaly; it is never
//! an error.

use std::collections::HashMap;
use std::net::IpAddr;

use ward_model::Timestamp;

/// An incomplete datagram is discarded when no fragment of it arrived for this long (Suricata's
/// `defrag.timeout` default).
pub const DEFRAG_TIMEOUT_SECS: i64 = 60;
/// Largest reassembled datagram: the IPv4 total length and IPv6 payload length are 16 bits.
pub const MAX_DATAGRAM_LEN: usize = 65_535;
/// Most fragments kept for one datagram. A 64 KiB datagram over a 1500-byte MTU needs 45;
/// 1024 allows 64-byte fragments while bounding the work an attacker can cause per datagram.
pub const MAX_FRAGMENTS_PER_DATAGRAM: usize = 1024;
/// Most datagrams reassembled at once (Suricata's `defrag.trackers` default).
pub const MAX_TRAINS: usize = 65_535;
/// Most fragment bytes held in all trains together (Suricata's `defrag.memcap` default, 32 MiB).
pub const MAX_DEFRAG_MEMORY: usize = 32 * 1024 * 1024;
/// Bookkeeping charged per train against [`MAX_DEFRAG_MEMORY`], beside the fragment bytes.
const TRAIN_OVERHEAD: usize = 256;
/// Longest link header kept for the reassembled packet's frame (a longer one is not kept: the
/// frame then starts at the IP header).
const MAX_LINK_HEADER: usize = 256;

/// Identifies the datagram a fragment belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4: the 16-bit identification; IPv6: the fragment header's 32-bit identification.
    pub id: u32,
    /// IPv4: the protocol (part of the RFC 791 key); IPv6: 0.
    pub proto: u8,
    pub vlan: [u16; 2],
}

/// One fragment as the decoder found it.
#[derive(Debug, Clone, Copy)]
pub struct Fragment<'a> {
    pub key: FragKey,
    /// Byte offset of `data` in the datagram's payload.
    pub offset: u32,
    /// The "more fragments" flag.
    pub more: bool,
    /// The fragment's payload.
    pub data: &'a [u8],
    /// IPv4: the whole IP header with options. IPv6: the unfragmentable part (the 40-byte
    /// fixed header and the extension headers before the fragment header); only the fixed
    /// header is kept, the rest counts against [`MAX_DATAGRAM_LEN`].
    pub header: &'a [u8],
    /// IPv6: the fragment header's next header; IPv4: the protocol.
    pub next_header: u8,
    /// Frame bytes around the IP packet (link headers, tunnels, trailer): the reassembled
    /// packet's wire length is this plus the datagram's length.
    pub wire_overhead: u32,
    /// The frame bytes in front of the IP header (link layer headers; empty inside a tunnel).
    /// The first-offset fragment's are kept: Suricata's reassembled packet is that fragment's
    /// link header followed by the datagram (see [`Defragmenter::output_frame`]).
    pub link: &'a [u8],
}

/// What became of a pushed fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefragOutcome {
    /// Kept, waiting for more.
    Held,
    /// The datagram is complete: it is in [`Defragmenter::output`].
    Complete { wire_overhead: u32 },
    /// Refused (a limit, or an invalid fragment); an anomaly was raised.
    Dropped,
}

/// Counters, as Suricata's `defrag` stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DefragStats {
    pub ipv4_fragments: u64,
    pub ipv4_reassembled: u64,
    pub ipv4_timeouts: u64,
    pub ipv6_fragments: u64,
    pub ipv6_reassembled: u64,
    pub ipv6_timeouts: u64,
    pub overlaps: u64,
    pub too_large: u64,
    /// Fragments refused because their datagram had [`MAX_FRAGMENTS_PER_DATAGRAM`].
    pub max_frags_reached: u64,
    /// Fragments refused because [`MAX_TRAINS`] or [`MAX_DEFRAG_MEMORY`] was reached.
    pub max_trackers_reached: u64,
    /// Bytes held now.
    pub memuse: u64,
}

#[derive(Debug)]
struct Piece {
    offset: u32,
    data: Vec<u8>,
}

#[derive(Debug)]
struct Train {
    last_seen: Timestamp,
    pieces: Vec<Piece>,
    /// Set by the first-offset fragment.
    header: Option<Vec<u8>>,
    next_header: u8,
    /// End of the last fragment (the one without "more fragments"), once it arrived.
    total: Option<u32>,
    /// Largest end of any fragment: the datagram's length once complete (as Suricata, a
    /// fragment reaching past the last one extends the datagram).
    max_end: u32,
    wire_overhead: u32,
    /// The first-offset fragment's link header.
    link: Vec<u8>,
    memory: usize,
}

/// The reassembler. One per decoder (per worker thread).
#[derive(Debug, Default)]
pub struct Defragmenter {
    trains: HashMap<FragKey, Train>,
    memory: usize,
    last_expiry_secs: i64,
    /// The last completed datagram, behind its first fragment's link header.
    output: Vec<u8>,
    /// Length of that link header at the front of `output`.
    output_link: usize,
    pub stats: DefragStats,
}

/// Anomaly event names for one IP version.
struct Events {
    overlap: &'static str,
    too_large: &'static str,
    ignored: &'static str,
}

const EVENTS_V4: Events = Events {
    overlap: "decoder.ipv4.frag_overlap",
    too_large: "decoder.ipv4.frag_pkt_too_large",
    ignored: "decoder.ipv4.frag_ignored",
};
const EVENTS_V6: Events = Events {
    overlap: "decoder.ipv6.frag_overlap",
    too_large: "decoder.ipv6.frag_pkt_too_large",
    ignored: "decoder.ipv6.frag_ignored",
};

impl Defragmenter {
    pub fn new() -> Self {
        Self::default()
    }

    /// The last completed datagram (valid after [`DefragOutcome::Complete`]).
    pub fn output(&self) -> &[u8] {
        self.output.get(self.output_link..).unwrap_or_default()
    }

    /// The last completed datagram behind its first fragment's link header: the bytes of
    /// Suricata's reassembled packet.
    pub fn output_frame(&self) -> &[u8] {
        &self.output
    }

    /// Length of the link header in front of the datagram in [`Defragmenter::output_frame`]
    /// (and in the buffer [`Defragmenter::take_output`] hands out).
    pub fn output_link_len(&self) -> usize {
        self.output_link
    }

    /// Moves the output buffer out (the decoder decodes from it, then gives it back with
    /// [`Defragmenter::restore_output`] so its allocation is reused).
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    pub fn restore_output(&mut self, buf: Vec<u8>) {
        self.output = buf;
    }

    /// Datagrams being reassembled now.
    pub fn trains(&self) -> usize {
        self.trains.len()
    }

    /// Drops the trains idle for [`DEFRAG_TIMEOUT_SECS`] at `now`.
    pub fn expire(&mut self, now: Timestamp) {
        self.last_expiry_secs = now.secs();
        let mut freed = 0usize;
        let mut timeouts_v4 = 0;
        let mut timeouts_v6 = 0;
        self.trains.retain(|key, train| {
            let keep = now.whole_secs_since(train.last_seen) < DEFRAG_TIMEOUT_SECS;
            if !keep {
                freed += train.memory;
                if key.src.is_ipv4() {
                    timeouts_v4 += 1;
                } else {
                    timeouts_v6 += 1;
                }
            }
            keep
        });
        self.memory -= freed;
        self.stats.ipv4_timeouts += timeouts_v4;
        self.stats.ipv6_timeouts += timeouts_v6;
        self.stats.memuse = self.memory as u64;
    }

    /// Adds one fragment; `anomaly(event, reason)` is called for each anomaly it raises.
    pub fn push(
        &mut self,
        now: Timestamp,
        frag: &Fragment<'_>,
        anomaly: &mut dyn FnMut(&'static str, &'static str),
    ) -> DefragOutcome {
        let v4 = frag.key.src.is_ipv4();
        let events = if v4 { &EVENTS_V4 } else { &EVENTS_V6 };
        if v4 {
            self.stats.ipv4_fragments += 1;
        } else {
            self.stats.ipv6_fragments += 1;
        }
        if now.secs() != self.last_expiry_secs {
            self.expire(now);
        }

        let header_len = if v4 { frag.header.len() } else { 40 };
        let end = frag.offset as usize + frag.data.len();
        // IPv4 total length counts the header; IPv6 payload length the extension headers.
        let counted_header = if v4 {
            header_len
        } else {
            frag.header.len().saturating_sub(40)
        };
        if end + counted_header > MAX_DATAGRAM_LEN {
            self.stats.too_large += 1;
            anomaly(
                events.too_large,
                "fragment ends past the largest possible datagram",
            );
            return DefragOutcome::Dropped;
        }

        if !self.trains.contains_key(&frag.key) {
            if self.trains.len() >= MAX_TRAINS || self.memory + TRAIN_OVERHEAD > MAX_DEFRAG_MEMORY {
                self.stats.max_trackers_reached += 1;
                anomaly(
                    events.ignored,
                    "too many datagrams in reassembly (MAX_TRAINS or MAX_DEFRAG_MEMORY)",
                );
                return DefragOutcome::Dropped;
            }
            self.trains.insert(
                frag.key,
                Train {
                    last_seen: now,
                    pieces: Vec::new(),
                    header: None,
                    next_header: frag.next_header,
                    total: None,
                    max_end: 0,
                    wire_overhead: frag.wire_overhead,
                    link: Vec::new(),
                    memory: TRAIN_OVERHEAD,
                },
            );
            self.memory += TRAIN_OVERHEAD;
        }
        let Some(train) = self.trains.get_mut(&frag.key) else {
            return DefragOutcome::Dropped;
        };
        train.last_seen = now;
        if train.pieces.len() >= MAX_FRAGMENTS_PER_DATAGRAM {
            self.stats.max_frags_reached += 1;
            anomaly(
                events.ignored,
                "datagram has too many fragments (MAX_FRAGMENTS_PER_DATAGRAM)",
            );
            return DefragOutcome::Dropped;
        }
        let link = if frag.link.len() <= MAX_LINK_HEADER { frag.link } else { &[] };
        let cost = frag.data.len()
            + if frag.offset == 0 {
                header_len.min(frag.header.len()) + link.len()
            } else {
                0
            };
        if self.memory + cost > MAX_DEFRAG_MEMORY {
            self.stats.max_trackers_reached += 1;
            anomaly(
                events.ignored,
                "fragment memory is full (MAX_DEFRAG_MEMORY)",
            );
            return DefragOutcome::Dropped;
        }

        let start = frag.offset;
        let end = end as u32;
        if train
            .pieces
            .iter()
            .any(|p| p.offset < end && start < p.offset + p.data.len() as u32)
        {
            self.stats.overlaps += 1;
            anomaly(events.overlap, "fragment overlaps one already received");
        }
        if !frag.more {
            match train.total {
                None => train.total = Some(end),
                Some(total) if total != end => {
                    anomaly(
                        events.overlap,
                        "two last fragments give different datagram lengths",
                    );
                }
                Some(_) => {}
            }
        }
        if frag.offset == 0 && train.header.is_none() {
            let mut header = frag.header.to_vec();
            header.truncate(header_len);
            train.header = Some(header);
            train.next_header = frag.next_header;
            train.wire_overhead = frag.wire_overhead;
            train.link = link.to_vec();
        }
        train.max_end = train.max_end.max(end);
        train.pieces.push(Piece {
            offset: start,
            data: frag.data.to_vec(),
        });
        train.memory += cost;
        self.memory += cost;
        self.stats.memuse = self.memory as u64;

        if !Self::is_complete(train) {
            return DefragOutcome::Held;
        }
        let Some(train) = self.trains.remove(&frag.key) else {
            return DefragOutcome::Dropped;
        };
        self.memory -= train.memory;
        self.stats.memuse = self.memory as u64;
        if v4 {
            self.stats.ipv4_reassembled += 1;
        } else {
            self.stats.ipv6_reassembled += 1;
        }
        self.assemble(&train, v4);
        DefragOutcome::Complete {
            wire_overhead: train.wire_overhead,
        }
    }

    fn is_complete(train: &Train) -> bool {
        let (Some(_), Some(_)) = (train.total, &train.header) else {
            return false;
        };
        let total = train.max_end;
        let mut ranges: Vec<(u32, u32)> = train
            .pieces
            .iter()
            .map(|p| (p.offset, p.offset + p.data.len() as u32))
            .collect();
        ranges.sort_unstable();
        let mut covered = 0u32;
        for (start, end) in ranges {
            if start > covered {
                return false;
            }
            covered = covered.max(end);
            if covered >= total {
                return true;
            }
        }
        covered >= total
    }

    /// Writes the rebuilt datagram into `self.output`: later pieces first, so the first
    /// arrival's bytes are written last and win.
    fn assemble(&mut self, train: &Train, v4: bool) {
        let total = train.max_end as usize;
        let header = train.header.as_deref().unwrap_or(&[]);
        let hlen = header.len();
        let link = train.link.len();
        self.output.clear();
        self.output.extend_from_slice(&train.link);
        self.output.extend_from_slice(header);
        self.output.resize(link + hlen + total, 0);
        self.output_link = link;
        let ip = &mut self.output[link..];
        for piece in train.pieces.iter().rev() {
            let start = piece.offset as usize;
            if start >= total {
                continue;
            }
            let len = piece.data.len().min(total - start);
            ip[hlen + start..hlen + start + len].copy_from_slice(&piece.data[..len]);
        }
        if v4 && hlen >= 20 {
            let total_len = ((hlen + total) as u16).to_be_bytes();
            ip[2..4].copy_from_slice(&total_len);
            ip[6] = 0;
            ip[7] = 0;
        } else if !v4 && hlen >= 40 {
            let plen = (total as u16).to_be_bytes();
            ip[4..6].copy_from_slice(&plen);
            ip[6] = train.next_header;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    fn v4_header(proto: u8) -> Vec<u8> {
        let mut h = vec![
            0x45, 0, 0, 0, 0x12, 0x34, 0, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        h[2..4].copy_from_slice(&20u16.to_be_bytes());
        h
    }

    fn key() -> FragKey {
        FragKey {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            id: 0x1234,
            proto: 17,
            vlan: [0, 0],
        }
    }

    fn push_all(
        d: &mut Defragmenter,
        payload: &[u8],
        cuts: &[(usize, usize)],
        header: &[u8],
    ) -> Vec<DefragOutcome> {
        let mut out = Vec::new();
        for &(s, e) in cuts {
            // Each fragment's link header differs: the first-offset one's must be kept.
            let link = [s as u8; 14];
            let f = Fragment {
                key: key(),
                offset: s as u32,
                more: e < payload.len(),
                data: &payload[s..e],
                header,
                next_header: 17,
                wire_overhead: 14,
                link: &link,
            };
            out.push(d.push(Timestamp::from_secs_micros(1000, 0), &f, &mut |_, _| {}));
        }
        out
    }

    #[test]
    fn in_order_and_reverse_reassemble() {
        let payload: Vec<u8> = (0..100u8).collect();
        let header = v4_header(17);
        for cuts in [
            vec![(0, 48), (48, 96), (96, 100)],
            vec![(96, 100), (48, 96), (0, 48)],
        ] {
            let mut d = Defragmenter::new();
            let out = push_all(&mut d, &payload, &cuts, &header);
            assert_eq!(out[..2], [DefragOutcome::Held, DefragOutcome::Held]);
            assert_eq!(out[2], DefragOutcome::Complete { wire_overhead: 14 });
            assert_eq!(&d.output()[20..], &payload[..]);
            assert_eq!(u16::from_be_bytes([d.output()[2], d.output()[3]]), 120);
            assert_eq!(d.output_link_len(), 14);
            assert_eq!(&d.output_frame()[..14], &[0u8; 14], "the first fragment's link header");
            assert_eq!(&d.output_frame()[14..], d.output());
            assert_eq!(d.trains(), 0);
            assert_eq!(d.stats.memuse, 0);
        }
    }

    #[test]
    fn overlap_first_arrival_wins() {
        let header = v4_header(17);
        let mut d = Defragmenter::new();
        let mut events = Vec::new();
        let a = [1u8; 16];
        let b = [2u8; 16];
        let frags = [(0u32, &a[..], true), (8, &b[..], false)];
        let mut last = DefragOutcome::Held;
        for (off, data, more) in frags {
            let f = Fragment {
                key: key(),
                offset: off,
                more,
                data,
                header: &header,
                next_header: 17,
                wire_overhead: 0,
                link: &[],
            };
            last = d.push(Timestamp::from_secs_micros(1, 0), &f, &mut |e, _| {
                events.push(e)
            });
        }
        assert_eq!(last, DefragOutcome::Complete { wire_overhead: 0 });
        assert_eq!(events, vec!["decoder.ipv4.frag_overlap"]);
        let body = &d.output()[20..];
        assert_eq!(body.len(), 24);
        assert!(body[..16].iter().all(|&x| x == 1));
        assert!(body[16..].iter().all(|&x| x == 2));
    }

    #[test]
    fn timeout_drops_train() {
        let header = v4_header(17);
        let mut d = Defragmenter::new();
        let data = [0u8; 8];
        let f = Fragment {
            key: key(),
            offset: 0,
            more: true,
            data: &data,
            header: &header,
            next_header: 17,
            wire_overhead: 0,
            link: &[],
        };
        assert_eq!(
            d.push(Timestamp::from_secs_micros(1, 0), &f, &mut |_, _| {}),
            DefragOutcome::Held
        );
        d.expire(Timestamp::from_secs_micros(1 + DEFRAG_TIMEOUT_SECS - 1, 0));
        assert_eq!(d.trains(), 1);
        d.expire(Timestamp::from_secs_micros(1 + DEFRAG_TIMEOUT_SECS, 0));
        assert_eq!(d.trains(), 0);
        assert_eq!(d.stats.ipv4_timeouts, 1);
        assert_eq!(d.stats.memuse, 0);
    }

    #[test]
    fn too_large_and_too_many() {
        let header = v4_header(17);
        let mut d = Defragmenter::new();
        let data = [0u8; 8];
        let mut events = Vec::new();
        let f = Fragment {
            key: key(),
            offset: 65528,
            more: false,
            data: &data,
            header: &header,
            next_header: 17,
            wire_overhead: 0,
            link: &[],
        };
        assert_eq!(
            d.push(Timestamp::ZERO, &f, &mut |e, _| events.push(e)),
            DefragOutcome::Dropped
        );
        assert_eq!(events, vec!["decoder.ipv4.frag_pkt_too_large"]);
        for i in 0..MAX_FRAGMENTS_PER_DATAGRAM as u32 + 5 {
            let f = Fragment {
                key: key(),
                offset: 16 + i * 8,
                more: true,
                data: &data,
                header: &header,
                next_header: 17,
                wire_overhead: 0,
                link: &[],
            };
            d.push(Timestamp::ZERO, &f, &mut |_, _| {});
        }
        assert_eq!(d.stats.max_frags_reached, 5);
    }

    proptest! {
        #[test]
        fn shuffled_fragments_rebuild_the_datagram(
            payload in proptest::collection::vec(any::<u8>(), 1..3000),
            frag_units in 1usize..40,
            seed in any::<u64>(),
        ) {
            let size = frag_units * 8;
            let mut cuts: Vec<(usize, usize)> = (0..payload.len()).step_by(size).map(|s| (s, (s + size).min(payload.len()))).collect();
            // Fisher-Yates with a small LCG, driven by the seed.
            let mut state = seed;
            for i in (1..cuts.len()).rev() {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let j = (state >> 33) as usize % (i + 1);
                cuts.swap(i, j);
            }
            let header = v4_header(17);
            let mut d = Defragmenter::new();
            let out = push_all(&mut d, &payload, &cuts, &header);
            let n = out.len();
            prop_assert!(out[..n - 1].iter().all(|o| *o == DefragOutcome::Held));
            prop_assert_eq!(out[n - 1], DefragOutcome::Complete { wire_overhead: 14 });
            prop_assert_eq!(&d.output()[20..], &payload[..]);
        }
    }
}
