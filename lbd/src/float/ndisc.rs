//! Unsolicited neighbour advertisements (RFC 4861 4.4 and 7.2.6), IPv6's gratuitous ARP: a new
//! master tells the link that a floating address now lives at its hardware address. ICMPv6
//! type 136 with the override flag, target = the address, to all nodes (ff02::1) with hop
//! limit 255 and the target link-layer address option; the kernel fills the checksum.

use std::io;
use std::net::{Ipv6Addr, SocketAddrV6};

use socket2::{Domain, Protocol, Socket, Type};

/// All-nodes multicast.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// The neighbour advertisement for `target` at `mac` (ICMPv6, checksum left zero for the
/// kernel; `router` sets the R flag) (pure, for tests).
pub fn na_message(mac: [u8; 6], target: Ipv6Addr, router: bool) -> [u8; 32] {
    let mut m = [0u8; 32];
    m[0] = 136; // neighbour advertisement
    m[4] = 0x20 | if router { 0x80 } else { 0 }; // O (override), R; S clear: unsolicited
    m[8..24].copy_from_slice(&target.octets());
    m[24] = 2; // target link-layer address option
    m[25] = 1; // 8 bytes
    m[26..32].copy_from_slice(&mac);
    m
}

/// True when the node forwards IPv6 on `iface` (it then advertises as a router, as keepalived
/// does, so hosts using it as their gateway keep it in their router list).
fn forwarding(iface: &str) -> bool {
    std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{iface}/forwarding"))
        .is_ok_and(|v| v.trim() == "1")
}

fn socket(iface: &str, index: u32) -> io::Result<Socket> {
    let s = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
    s.bind_device(Some(iface.as_bytes()))?;
    s.set_multicast_if_v6(index)?;
    s.set_multicast_hops_v6(255)?;
    s.set_multicast_loop_v6(false)?;
    Ok(s)
}

/// Sends one unsolicited neighbour advertisement for each of `targets` out of `iface`, from
/// the target itself (or, should it not be bindable yet, the address the kernel picks).
pub fn send_na(targets: &[Ipv6Addr], iface: &str, index: u32) -> io::Result<()> {
    let mac = crate::vip::hw_addr(iface)?;
    let router = forwarding(iface);
    let to = socket2::SockAddr::from(SocketAddrV6::new(ALL_NODES, 0, 0, index));
    for t in targets {
        let s = socket(iface, index)?;
        let _ = s.bind(&SocketAddrV6::new(*t, 0, 0, 0).into());
        s.send_to(&na_message(mac, *t, router), &to)?;
    }
    Ok(())
}
