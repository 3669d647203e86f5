//! The interfaces the DHCPv6 server serves: those holding an address in an IPv6 subnet of the
//! host file (or named by one), and which subnet each serves.

use hostfile::DhcpView;
use ipnet::Ipv6Net;

/// An interface to serve DHCPv6 on.
#[derive(Debug, Clone)]
pub struct Link {
    /// Interface name.
    pub name: String,
    /// Interface index.
    pub index: u32,
    /// Its IPv6 addresses with their prefixes.
    pub nets: Vec<Ipv6Net>,
}

/// Interfaces holding an address in some IPv6 subnet of the view (or named by one).
pub fn choose_links(view: &DhcpView) -> std::io::Result<Vec<Link>> {
    let mut links: Vec<Link> = Vec::new();
    for ifa in nix::ifaddrs::getifaddrs().map_err(std::io::Error::from)? {
        let (Some(a), Some(m)) = (ifa.address, ifa.netmask) else {
            continue;
        };
        let (Some(a), Some(m)) = (a.as_sockaddr_in6(), m.as_sockaddr_in6()) else {
            continue;
        };
        let len = u128::from(m.ip()).count_ones() as u8;
        let Ok(net) = Ipv6Net::new(a.ip(), len) else {
            continue;
        };
        let index = nix::net::if_::if_nametoindex(ifa.interface_name.as_str()).unwrap_or(0);
        match links.iter_mut().find(|l| l.name == ifa.interface_name) {
            Some(l) => l.nets.push(net),
            None => links.push(Link {
                name: ifa.interface_name,
                index,
                nets: vec![net],
            }),
        }
    }
    links.retain(|l| subnet_of(view, l).is_some());
    Ok(links)
}

/// The IPv6 subnet a link serves: the one naming its interface, else the one holding one of its
/// addresses.
pub fn subnet_of(view: &DhcpView, l: &Link) -> Option<usize> {
    let s = &view.subnets6;
    s.iter()
        .position(|s| s.interface.as_deref() == Some(l.name.as_str()))
        .or_else(|| {
            s.iter().position(|s| {
                s.interface.is_none() && l.nets.iter().any(|n| s.network.contains(&n.addr()))
            })
        })
}
