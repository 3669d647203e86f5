//! The VRRPv3 packet codec (RFC 5798 section 5) for IPv4 and IPv6, with the pseudo-header
//! checksum keepalived uses (pure). An IPv4 advert is read with its IP header (raw socket); an
//! IPv6 one without (the kernel keeps the header; source, destination and hop limit come as
//! ancillary data).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IP protocol number of VRRP.
pub const PROTO: u8 = 112;
/// The VRRP multicast group.
pub const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The VRRP multicast group for IPv6 (link-local scope).
pub const GROUP6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

/// A decoded advertisement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert {
    /// Virtual router id.
    pub vrid: u8,
    /// Sender's priority (0 = leaving).
    pub priority: u8,
    /// Max advertisement interval, centiseconds.
    pub interval_cs: u16,
    /// Addresses (all of one family: IPv4 in an IPv4 advert, IPv6 in an IPv6 one).
    pub addrs: Vec<IpAddr>,
}

/// Why a packet was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than its headers say.
    #[error("truncated")]
    Truncated,
    /// Not IPv4 or not protocol 112.
    #[error("not a VRRP packet")]
    NotVrrp,
    /// TTL (IPv6: hop limit) not 255 (RFC 5798 7.1: the packet may have crossed a router).
    #[error("TTL {0} is not 255")]
    Ttl(u8),
    /// An IPv6 advert whose hop limit the kernel did not report.
    #[error("no hop limit reported")]
    NoHopLimit,
    /// Not version 3 or not an advertisement.
    #[error("version/type {0:#04x} is not VRRPv3 advertisement")]
    Version(u8),
    /// Bad checksum.
    #[error("bad checksum")]
    Checksum,
}

fn sum16(data: &[u8], mut acc: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        acc += u32::from(*b) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// The VRRPv3 checksum over the IPv4 pseudo-header and `vrrp` (checksum field zero).
pub fn checksum(src: Ipv4Addr, dst: Ipv4Addr, vrrp: &[u8]) -> u16 {
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&src.octets());
    pseudo[4..8].copy_from_slice(&dst.octets());
    pseudo[9] = PROTO;
    pseudo[10..12].copy_from_slice(&(vrrp.len() as u16).to_be_bytes());
    fold(sum16(vrrp, sum16(&pseudo, 0)))
}

/// The VRRPv3 checksum over the IPv6 pseudo-header (RFC 5798 5.2.8, RFC 8200 8.1) and `vrrp`
/// (checksum field zero): source, destination, upper-layer length (32 bits), next header 112.
pub fn checksum6(src: Ipv6Addr, dst: Ipv6Addr, vrrp: &[u8]) -> u16 {
    let mut pseudo = [0u8; 40];
    pseudo[0..16].copy_from_slice(&src.octets());
    pseudo[16..32].copy_from_slice(&dst.octets());
    pseudo[32..36].copy_from_slice(&(vrrp.len() as u32).to_be_bytes());
    pseudo[39] = PROTO;
    fold(sum16(vrrp, sum16(&pseudo, 0)))
}

/// The advert's bytes with a zero checksum; addresses of `a` not of the family `v6` says are
/// left out.
fn body(a: &Advert, v6: bool) -> Vec<u8> {
    let addrs: Vec<&IpAddr> = a
        .addrs
        .iter()
        .filter(|ip| ip.is_ipv6() == v6)
        .take(255)
        .collect();
    let mut v = Vec::with_capacity(8 + 16 * addrs.len());
    v.push(0x31);
    v.push(a.vrid);
    v.push(a.priority);
    v.push(addrs.len() as u8);
    v.extend_from_slice(&(a.interval_cs & 0x0fff).to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    for ip in addrs {
        match ip {
            IpAddr::V4(ip) => v.extend_from_slice(&ip.octets()),
            IpAddr::V6(ip) => v.extend_from_slice(&ip.octets()),
        }
    }
    v
}

/// The VRRP part of an IPv4 advertisement from `src` to `dst` (its IPv4 addresses).
pub fn encode(a: &Advert, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let mut v = body(a, false);
    let c = checksum(src, dst, &v);
    v[6..8].copy_from_slice(&c.to_be_bytes());
    v
}

/// The VRRP part of an IPv6 advertisement from `src` to `dst` (its IPv6 addresses, 16 bytes
/// each); the kernel adds the IPv6 header.
pub fn encode6(a: &Advert, src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
    let mut v = body(a, true);
    let c = checksum6(src, dst, &v);
    v[6..8].copy_from_slice(&c.to_be_bytes());
    v
}

/// Decodes an IPv6 advert's payload `v` received from `src` for `dst` with `hop_limit`
/// (RFC 5798 7.1: hop limit 255, version 3 advertisement, checksum, address count).
pub fn decode6(
    v: &[u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: Option<u8>,
) -> Result<Advert, DecodeError> {
    match hop_limit {
        None => return Err(DecodeError::NoHopLimit),
        Some(255) => {}
        Some(h) => return Err(DecodeError::Ttl(h)),
    }
    if v.len() < 8 {
        return Err(DecodeError::Truncated);
    }
    if v[0] != 0x31 {
        return Err(DecodeError::Version(v[0]));
    }
    let count = usize::from(v[3]);
    if v.len() < 8 + 16 * count {
        return Err(DecodeError::Truncated);
    }
    let v = &v[..8 + 16 * count];
    if checksum6(src, dst, v) != 0 {
        return Err(DecodeError::Checksum);
    }
    let addrs = v[8..]
        .chunks_exact(16)
        .map(|c| {
            let o: [u8; 16] = c.try_into().expect("16 bytes");
            IpAddr::V6(Ipv6Addr::from(o))
        })
        .collect();
    Ok(Advert {
        vrid: v[1],
        priority: v[2],
        interval_cs: u16::from_be_bytes([v[4], v[5]]) & 0x0fff,
        addrs,
    })
}

/// A whole IPv4 packet carrying `vrrp` (for IP_HDRINCL; the kernel fills id and checksum).
pub fn ip_packet(vrrp: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let mut p = Vec::with_capacity(20 + vrrp.len());
    p.push(0x45);
    p.push(0xc0); // DSCP CS6, network control
    p.extend_from_slice(&((20 + vrrp.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0]);
    p.push(255);
    p.push(PROTO);
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(vrrp);
    p
}

/// Decodes a packet as read from a raw socket (IPv4 header included): (source, advert).
pub fn decode(pkt: &[u8]) -> Result<(Ipv4Addr, Advert), DecodeError> {
    if pkt.len() < 20 {
        return Err(DecodeError::Truncated);
    }
    if pkt[0] >> 4 != 4 || pkt[9] != PROTO {
        return Err(DecodeError::NotVrrp);
    }
    let ihl = usize::from(pkt[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
    if ihl < 20 || pkt.len() < ihl + 8 || total > pkt.len() || total < ihl + 8 {
        return Err(DecodeError::Truncated);
    }
    if pkt[8] != 255 {
        return Err(DecodeError::Ttl(pkt[8]));
    }
    let src = Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]);
    let dst = Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]);
    let v = &pkt[ihl..total];
    if v[0] != 0x31 {
        return Err(DecodeError::Version(v[0]));
    }
    let count = usize::from(v[3]);
    if v.len() < 8 + 4 * count {
        return Err(DecodeError::Truncated);
    }
    let v = &v[..8 + 4 * count];
    if checksum(src, dst, v) != 0 {
        return Err(DecodeError::Checksum);
    }
    let addrs = v[8..]
        .chunks_exact(4)
        .map(|c| IpAddr::V4(Ipv4Addr::new(c[0], c[1], c[2], c[3])))
        .collect();
    Ok((
        src,
        Advert {
            vrid: v[1],
            priority: v[2],
            interval_cs: u16::from_be_bytes([v[4], v[5]]) & 0x0fff,
            addrs,
        },
    ))
}
