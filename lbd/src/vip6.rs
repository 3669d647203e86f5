//! IPv6 VIPs on an interface: added with `IFA_F_NODAD` (as keepalived adds its IPv6 virtual
//! addresses: an address that moves between nodes must answer at once, not after duplicate
//! address detection) and removed with the prefix length they were added with.

use std::io;
use std::net::Ipv6Addr;

use ipnet::Ipv6Net;

use crate::desired::Vip6Plan;
use crate::vip::{Placement, if_index, nl_request};

/// An IPv6 address configured on a local interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfAddr6 {
    /// Interface name.
    pub name: String,
    /// Interface index.
    pub index: u32,
    /// The address with its prefix.
    pub net: Ipv6Net,
}

/// Why an IPv6 VIP cannot be placed or changed.
#[derive(Debug, thiserror::Error)]
pub enum Vip6Error {
    /// The configured interface does not exist.
    #[error("interface `{0}` for VIP {1} does not exist")]
    NoInterface(String, Ipv6Addr),
    /// No interface holds an address in the VIP's subnet.
    #[error(
        "no interface has an address in {1}, the subnet of VIP {0}: add one, or set `interface`"
    )]
    NoSubnet(Ipv6Addr, Ipv6Net),
    /// The kernel refused.
    #[error("{op} {addr}/{prefix} on {iface}: {err}")]
    Netlink {
        /// add or remove.
        op: &'static str,
        /// The VIP.
        addr: Ipv6Addr,
        /// Prefix.
        prefix: u8,
        /// Interface name.
        iface: String,
        /// The error.
        err: io::Error,
    },
    /// Listing addresses failed.
    #[error("listing local IPv6 addresses: {0}")]
    List(io::Error),
}

/// All IPv6 addresses on local interfaces (in the current network namespace).
pub fn local_ipv6() -> Result<Vec<IfAddr6>, Vip6Error> {
    let mut out = Vec::new();
    let all = nix::ifaddrs::getifaddrs().map_err(|e| Vip6Error::List(e.into()))?;
    for ifa in all {
        let (Some(addr), Some(mask)) = (ifa.address, ifa.netmask) else {
            continue;
        };
        let (Some(a), Some(m)) = (addr.as_sockaddr_in6(), mask.as_sockaddr_in6()) else {
            continue;
        };
        let prefix = u128::from(m.ip()).count_ones() as u8;
        let Ok(net) = Ipv6Net::new(a.ip(), prefix) else {
            continue;
        };
        let index = nix::net::if_::if_nametoindex(ifa.interface_name.as_str()).unwrap_or(0);
        out.push(IfAddr6 {
            name: ifa.interface_name,
            index,
            net,
        });
    }
    Ok(out)
}

/// The interface of `vip`: the configured one, or the one holding another address in the
/// VIP's subnet.
pub fn place(vip: &Vip6Plan) -> Result<Placement, Vip6Error> {
    if let Some(name) = &vip.interface {
        let index = if_index(name).ok_or_else(|| Vip6Error::NoInterface(name.clone(), vip.addr))?;
        return Ok(Placement {
            iface: name.clone(),
            index,
        });
    }
    let net = Ipv6Net::new(vip.addr, vip.prefix)
        .map(|n| n.trunc())
        .unwrap_or_else(|_| Ipv6Net::from(vip.addr));
    let addrs = local_ipv6()?;
    addrs
        .iter()
        .find(|a| a.net.addr() != vip.addr && net.contains(&a.net.addr()))
        .or_else(|| addrs.iter().find(|a| a.net.addr() == vip.addr))
        .map(|a| Placement {
            iface: a.name.clone(),
            index: a.index,
        })
        .ok_or(Vip6Error::NoSubnet(vip.addr, net))
}

/// True when `addr` is configured on interface `index`.
pub fn is_present(addr: Ipv6Addr, index: u32) -> Result<bool, Vip6Error> {
    Ok(local_ipv6()?
        .iter()
        .any(|a| a.net.addr() == addr && a.index == index))
}

/// Adds `addr/prefix` to interface `p` without duplicate address detection (already present =
/// success).
pub fn add(addr: Ipv6Addr, prefix: u8, p: &Placement) -> Result<(), Vip6Error> {
    let cmd = libc::RTM_NEWADDR;
    nl_request(cmd, &addr_request(cmd, addr, prefix, p.index, 1), 1).map_err(|err| {
        Vip6Error::Netlink {
            op: "add",
            addr,
            prefix,
            iface: p.iface.clone(),
            err,
        }
    })
}

/// Removes `addr/prefix` from interface `p` (already absent = success).
pub fn remove(addr: Ipv6Addr, prefix: u8, p: &Placement) -> Result<(), Vip6Error> {
    let cmd = libc::RTM_DELADDR;
    nl_request(cmd, &addr_request(cmd, addr, prefix, p.index, 1), 1).map_err(|err| {
        Vip6Error::Netlink {
            op: "remove",
            addr,
            prefix,
            iface: p.iface.clone(),
            err,
        }
    })
}

/// `IFA_F_NODAD` (linux/if_addr.h).
const IFA_F_NODAD: u8 = 0x02;

/// Builds the RTM_NEWADDR / RTM_DELADDR request for an IPv6 address (pure, for tests).
pub fn addr_request(cmd: u16, addr: Ipv6Addr, prefix: u8, index: u32, seq: u32) -> Vec<u8> {
    let mut flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
    if cmd == libc::RTM_NEWADDR {
        flags |= (libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16;
    }
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(&0u32.to_ne_bytes()); // length, patched below
    m.extend_from_slice(&cmd.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    // struct ifaddrmsg
    m.push(libc::AF_INET6 as u8);
    m.push(prefix);
    m.push(IFA_F_NODAD);
    m.push(0); // scope universe
    m.extend_from_slice(&index.to_ne_bytes());
    m.extend_from_slice(&20u16.to_ne_bytes());
    m.extend_from_slice(&libc::IFA_ADDRESS.to_ne_bytes());
    m.extend_from_slice(&addr.octets());
    let len = m.len() as u32;
    m[0..4].copy_from_slice(&len.to_ne_bytes());
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_an_ipv6_nodad_address() {
        let a: Ipv6Addr = "fd00:1::10".parse().unwrap();
        let m = addr_request(libc::RTM_NEWADDR, a, 64, 7, 9);
        assert_eq!(m.len(), 16 + 8 + 20);
        assert_eq!(
            u32::from_ne_bytes(m[0..4].try_into().unwrap()) as usize,
            m.len()
        );
        assert_eq!(m[16], libc::AF_INET6 as u8);
        assert_eq!(m[17], 64);
        assert_eq!(m[18], IFA_F_NODAD);
        assert_eq!(u32::from_ne_bytes(m[20..24].try_into().unwrap()), 7);
        assert_eq!(&m[28..44], &a.octets());
    }
}
