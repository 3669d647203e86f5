//! Which local interface holds an address in which subnet (ISC dhcpd's automatic interface choice).

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// An IPv4 address configured on a local interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfAddr {
    /// Interface name.
    pub name: String,
    /// Interface index.
    pub index: u32,
    /// The address.
    pub addr: Ipv4Addr,
    /// The address with its prefix.
    pub net: Ipv4Net,
}

/// All IPv4 addresses on local interfaces (in the current network namespace).
pub fn local_ipv4() -> std::io::Result<Vec<IfAddr>> {
    let mut out = Vec::new();
    for ifa in nix::ifaddrs::getifaddrs().map_err(std::io::Error::from)? {
        let (Some(addr), Some(mask)) = (ifa.address, ifa.netmask) else {
            continue;
        };
        let (Some(a), Some(m)) = (addr.as_sockaddr_in(), mask.as_sockaddr_in()) else {
            continue;
        };
        let ip = a.ip();
        let prefix = u32::from(m.ip()).count_ones() as u8;
        let Ok(net) = Ipv4Net::new(ip, prefix) else {
            continue;
        };
        let index = nix::net::if_::if_nametoindex(ifa.interface_name.as_str()).unwrap_or(0);
        out.push(IfAddr {
            name: ifa.interface_name,
            index,
            addr: ip,
            net,
        });
    }
    Ok(out)
}

/// The first local address inside `net` (the interface that serves that subnet).
pub fn find_in(addrs: &[IfAddr], net: Ipv4Net) -> Option<&IfAddr> {
    addrs.iter().find(|a| net.contains(&a.addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_listed_and_found() {
        let addrs = local_ipv4().expect("getifaddrs");
        let lo = find_in(&addrs, "127.0.0.0/8".parse().unwrap());
        assert_eq!(lo.map(|a| a.addr), Some(Ipv4Addr::LOCALHOST));
    }
}
