//! Conflict detection: one ICMP echo to an address before it is offered (as ISC dhcpd's
//! ping-check); any echo reply from it within the timeout means someone already uses it.

use std::io;
use std::mem::MaybeUninit;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

fn checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in b.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from(c[0]) << 8
        };
        sum += u32::from(w);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An ICMP echo request with this id and sequence.
pub fn echo_request(id: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![8, 0, 0, 0];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(b"dhcpd ping-check");
    let c = checksum(&p);
    p[2..4].copy_from_slice(&c.to_be_bytes());
    p
}

/// True when `pkt` (an IPv4 packet from a raw socket) is an echo reply from `from` with `id`.
pub fn is_reply(pkt: &[u8], from: Ipv4Addr, id: u16) -> bool {
    if pkt.len() < 20 || pkt[0] >> 4 != 4 {
        return false;
    }
    let ihl = usize::from(pkt[0] & 0x0f) * 4;
    let src = Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]);
    let icmp = &pkt[ihl.min(pkt.len())..];
    src == from && icmp.len() >= 8 && icmp[0] == 0 && icmp[4..6] == id.to_be_bytes()
}

/// Pings `ip` once; true when it answered within `timeout` (blocking: run off the async loop).
pub fn probe(ip: Ipv4Addr, timeout: Duration) -> io::Result<bool> {
    let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))?;
    let id = (std::process::id() as u16) ^ (u32::from(ip) as u16);
    s.send_to(&echo_request(id, 1), &SocketAddrV4::new(ip, 0).into())?;
    let deadline = Instant::now() + timeout;
    let mut buf = [MaybeUninit::<u8>::uninit(); 1500];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        s.set_read_timeout(Some(left))?;
        match s.recv(&mut buf) {
            Ok(n) => {
                // SAFETY: recv initialised the first n bytes.
                let pkt: &[u8] = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast(), n) };
                if is_reply(pkt, ip, id) {
                    return Ok(true);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(false);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_request_checksum_verifies() {
        let p = echo_request(0x1234, 1);
        assert_eq!(checksum(&p), 0);
    }

    #[test]
    fn reply_matching_checks_source_type_and_id() {
        let mut pkt = vec![
            0x45, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 5, 10, 0, 0, 1,
        ];
        pkt.extend_from_slice(&[0, 0, 0, 0, 0x12, 0x34, 0, 1]);
        let ip = Ipv4Addr::new(10, 0, 0, 5);
        assert!(is_reply(&pkt, ip, 0x1234));
        assert!(!is_reply(&pkt, Ipv4Addr::new(10, 0, 0, 6), 0x1234));
        assert!(!is_reply(&pkt, ip, 0x9999));
        pkt[20] = 8; // an echo request, not a reply
        assert!(!is_reply(&pkt, ip, 0x1234));
    }
}
