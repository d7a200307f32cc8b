//! Which worker gets a frame: a symmetric hash of the frame's address pair (and VLAN).
//!
//! The reader thread must decide before decoding, so this peeks at the link and IP headers only.
//! It hashes addresses, not ports, on purpose: every fragment of a datagram (only the first
//! carries ports) and both directions of a flow land on the same worker, so fragment reassembly
//! and flow state never need to cross threads. The cost is that one busy host pair cannot be
//! spread over several workers; office traffic has many pairs.
//!
//! Frames that cannot be peeked (non-IP, truncated) go to worker 0, which decodes them and
//! reports the anomaly.

use ward_packet::capture::LinkType;

/// Bytes of 802.1Q/802.1ad tags we look through (QinQ plus one more).
const MAX_VLAN_TAGS: usize = 3;

/// Returns the worker index in `0..workers` for a frame.
pub fn worker_for(link: LinkType, frame: &[u8], workers: usize) -> usize {
    if workers <= 1 {
        return 0;
    }
    match peek_hash(link, frame) {
        Some(hash) => (hash % workers as u64) as usize,
        None => 0,
    }
}

fn peek_hash(link: LinkType, frame: &[u8]) -> Option<u64> {
    let (ethertype, ip) = match link {
        LinkType::Ethernet => ethernet_payload(frame)?,
        LinkType::LinuxSll => (u16::from_be_bytes([*frame.get(14)?, *frame.get(15)?]), frame.get(16..)?),
        LinkType::LinuxSll2 => (u16::from_be_bytes([*frame.first()?, *frame.get(1)?]), frame.get(20..)?),
        LinkType::Null => (0, frame.get(4..)?),
        LinkType::Raw | LinkType::Ipv4 | LinkType::Ipv6 => (0, frame),
        _ => return None,
    };
    let _ = ethertype;
    ip_pair_hash(ip)
}

fn ethernet_payload(frame: &[u8]) -> Option<(u16, &[u8])> {
    let mut ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    let mut offset = 14;
    for _ in 0..MAX_VLAN_TAGS {
        if ethertype == 0x8100 || ethertype == 0x88a8 || ethertype == 0x9100 {
            ethertype = u16::from_be_bytes([*frame.get(offset + 2)?, *frame.get(offset + 3)?]);
            offset += 4;
        } else {
            break;
        }
    }
    Some((ethertype, frame.get(offset..)?))
}

/// A symmetric hash of the IP source and destination: the same for both directions.
fn ip_pair_hash(ip: &[u8]) -> Option<u64> {
    let version = ip.first()? >> 4;
    let (a, b): (&[u8], &[u8]) = match version {
        4 => (ip.get(12..16)?, ip.get(16..20)?),
        6 => (ip.get(8..24)?, ip.get(24..40)?),
        _ => return None,
    };
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    Some(fnv1a(hi, fnv1a(lo, 0xcbf2_9ce4_8422_2325)))
}

fn fnv1a(bytes: &[u8], mut hash: u64) -> u64 {
    for &byte in bytes {
        hash ^= byte as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // Final avalanche so that `% workers` uses well-mixed low bits.
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^ (hash >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4_frame(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        let mut frame = vec![0u8; 14];
        frame[12] = 0x08;
        let mut ip = vec![0x45, 0, 0, 20, 0, 0, 0, 0, 64, 6, 0, 0];
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
        frame.extend_from_slice(&ip);
        frame
    }

    #[test]
    fn both_directions_share_a_worker() {
        for i in 0..200u8 {
            let a = [10, 0, 0, i];
            let b = [192, 168, i, 1];
            let one = worker_for(LinkType::Ethernet, &ipv4_frame(a, b), 7);
            let two = worker_for(LinkType::Ethernet, &ipv4_frame(b, a), 7);
            assert_eq!(one, two);
        }
    }

    #[test]
    fn spreads_pairs_over_workers() {
        let mut seen = [0usize; 4];
        for i in 0..=255u8 {
            seen[worker_for(LinkType::Ethernet, &ipv4_frame([10, 0, 0, i], [10, 0, 1, 1]), 4)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 30), "unbalanced: {seen:?}");
    }

    #[test]
    fn garbage_goes_to_worker_zero() {
        assert_eq!(worker_for(LinkType::Ethernet, &[1, 2, 3], 4), 0);
        assert_eq!(worker_for(LinkType::Raw, &[], 4), 0);
    }
}
