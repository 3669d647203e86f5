//! IPv6 addresses of the interfaces (IO): which are configured (`/proc/net/if_inet6`), the
//! link-local address VRRP sends from, and adding (without duplicate address detection, as
//! keepalived does: the address must answer at once) and removing a floating one with
//! rtnetlink. Kept here rather than in `crate::vip`, which places the services' VIPs.

use std::io;
use std::net::Ipv6Addr;

use ipnet::Ipv6Net;

/// `IFA_F_TENTATIVE` in `/proc/net/if_inet6`: still under duplicate address detection.
const IFA_F_TENTATIVE: u32 = 0x40;
/// Link-local scope in `/proc/net/if_inet6`.
const SCOPE_LINK: u32 = 0x20;

/// One line of `/proc/net/if_inet6`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct If6 {
    /// The address.
    pub addr: Ipv6Addr,
    /// Interface index.
    pub index: u32,
    /// Prefix length.
    pub prefix: u8,
    /// Scope (0x20 link-local).
    pub scope: u32,
    /// IFA_F_* flags.
    pub flags: u32,
    /// Interface name.
    pub name: String,
}

/// Parses `/proc/net/if_inet6` (pure, for tests).
pub fn parse_if_inet6(text: &str) -> Vec<If6> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let [hex, index, prefix, scope, flags, name] = f[..] else {
                return None;
            };
            let addr = u128::from_str_radix(hex, 16).ok()?;
            Some(If6 {
                addr: Ipv6Addr::from(addr),
                index: u32::from_str_radix(index, 16).ok()?,
                prefix: u8::from_str_radix(prefix, 16).ok()?,
                scope: u32::from_str_radix(scope, 16).ok()?,
                flags: u32::from_str_radix(flags, 16).ok()?,
                name: name.to_owned(),
            })
        })
        .collect()
}

/// Every IPv6 address of this network namespace.
pub fn list() -> io::Result<Vec<If6>> {
    match std::fs::read_to_string("/proc/net/if_inet6") {
        Ok(t) => Ok(parse_if_inet6(&t)),
        // IPv6 disabled: no address at all.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The link-local address of interface `index` (one past duplicate address detection first).
pub fn link_local(index: u32) -> io::Result<Option<Ipv6Addr>> {
    let mut ll: Vec<If6> = list()?
        .into_iter()
        .filter(|a| a.index == index && a.scope == SCOPE_LINK)
        .collect();
    ll.sort_by_key(|a| a.flags & IFA_F_TENTATIVE);
    Ok(ll.first().map(|a| a.addr))
}

/// The address IPv6 adverts of interface `index` go out from: its link-local address, except
/// towards unicast `peers` none of which is link-local, where it is one of its own other
/// addresses (not one of `floating`), so that the peers, which screen senders by the addresses
/// they list, recognise it; the link-local address when there is no such address.
pub fn advert_source(
    index: u32,
    peers: &[std::net::IpAddr],
    floating: &[Ipv6Addr],
) -> io::Result<Option<Ipv6Addr>> {
    let global_peers = !peers.is_empty()
        && peers.iter().all(|p| match p {
            std::net::IpAddr::V6(p) => !p.is_unicast_link_local(),
            std::net::IpAddr::V4(_) => true,
        });
    if global_peers {
        let mut own: Vec<If6> = list()?
            .into_iter()
            .filter(|a| {
                a.index == index
                    && a.scope != SCOPE_LINK
                    && !a.addr.is_loopback()
                    && !floating.contains(&a.addr)
            })
            .collect();
        own.sort_by_key(|a| a.flags & IFA_F_TENTATIVE);
        if let Some(a) = own.first() {
            return Ok(Some(a.addr));
        }
    }
    link_local(index)
}

/// Adds `net` to interface `index`, usable at once (no duplicate address detection).
pub fn add(net: Ipv6Net, index: u32) -> io::Result<()> {
    netlink(libc::RTM_NEWADDR, net, index)
}

/// One address request, built and acknowledged as the services' IPv6 VIPs are
/// ([`crate::vip6::addr_request`], [`crate::vip::nl_request`]).
fn netlink(cmd: u16, net: Ipv6Net, index: u32) -> io::Result<()> {
    let msg = crate::vip6::addr_request(cmd, net.addr(), net.prefix_len(), index, 1);
    crate::vip::nl_request(cmd, &msg, 1)
}

/// Removes `net` from interface `index` (absent is fine).
pub fn remove(net: Ipv6Net, index: u32) -> io::Result<()> {
    netlink(libc::RTM_DELADDR, net, index)
}
