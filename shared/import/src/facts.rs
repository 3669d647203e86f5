//! The facts the parsers gather ([`Raw`]), before anything is decided, and small parsing helpers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::{Ipv4Net, Ipv6Net};

use crate::source::{Src, Unsupported};

#[derive(Debug, Clone, Default)]
pub(crate) struct RawSubnet {
    /// Where each named host-file key was set (`routers` -> `option routers ...;`).
    pub(crate) key_srcs: std::collections::BTreeMap<&'static str, Src>,
    pub(crate) net: Option<Ipv4Net>,
    pub(crate) src: Option<Src>,
    pub(crate) routers: Vec<Ipv4Addr>,
    pub(crate) dns: Vec<Ipv4Addr>,
    pub(crate) domain: Option<String>,
    pub(crate) search: Vec<String>,
    pub(crate) ntp: Vec<Ipv4Addr>,
    pub(crate) broadcast: Option<Ipv4Addr>,
    pub(crate) mtu: Option<u16>,
    pub(crate) lease: Option<u64>,
    pub(crate) max_lease: Option<u64>,
    pub(crate) authoritative: bool,
    pub(crate) next_server: Option<Ipv4Addr>,
    pub(crate) boot_file: Option<String>,
    pub(crate) pools: Vec<RawPool>,
    pub(crate) options: Vec<RawOpt>,
    pub(crate) notes: Vec<String>,
}

/// A `subnet6` of dhcpd6.conf, its settings inherited from the global scope already.
#[derive(Debug, Clone)]
pub(crate) struct RawSubnet6 {
    pub(crate) net: Ipv6Net,
    pub(crate) src: Src,
    /// `range6 A B` as ("A-B", where), `range6 P/len` as ("P/len", where).
    pub(crate) pools: Vec<(String, Src)>,
    /// `prefix6 START END /LEN`: the prefix holding START..END, the delegated length, and a
    /// note when that prefix is wider than START..END.
    pub(crate) pd: Vec<(Ipv6Net, u8, Option<String>, Src)>,
    pub(crate) dns: Vec<Ipv6Addr>,
    pub(crate) search: Vec<String>,
    pub(crate) preferred: Option<u64>,
    pub(crate) valid: Option<u64>,
    pub(crate) t1: Option<u64>,
    pub(crate) t2: Option<u64>,
}

#[derive(Debug, Clone)]
pub(crate) struct RawPool {
    pub(crate) start: Ipv4Addr,
    pub(crate) end: Ipv4Addr,
    pub(crate) bootp: bool,
    pub(crate) src: Src,
}

/// A DHCP option the host file carries as `{ code = N, <kind> = value }`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OptVal {
    Text(String),
    Ips(Vec<Ipv4Addr>),
    Hex(String),
    U8(u8),
    U16(u16),
    U32(u32),
    Bool(bool),
}

#[derive(Debug, Clone)]
pub(crate) struct RawOpt {
    pub(crate) name: String,
    pub(crate) code: u8,
    pub(crate) value: OptVal,
    pub(crate) src: Src,
}

#[derive(Debug, Clone)]
pub(crate) struct RawHost {
    /// The name of the `host` declaration.
    pub(crate) decl: String,
    /// `option host-name`, when given.
    pub(crate) host_name: Option<String>,
    pub(crate) ips: Vec<Ipv4Addr>,
    /// `fixed-address web1.example.com;`: resolved against the imported zones.
    pub(crate) fixed_names: Vec<String>,
    pub(crate) mac: Option<[u8; 6]>,
    pub(crate) client_id: Option<String>,
    /// dhcpd6.conf: `fixed-address6`.
    pub(crate) ipv6: Vec<Ipv6Addr>,
    /// dhcpd6.conf: `host-identifier option dhcp6.client-id DUID;`, as hex pairs.
    pub(crate) duid: Option<String>,
    pub(crate) boot_file: Option<String>,
    pub(crate) options: Vec<RawOpt>,
    pub(crate) src: Src,
}

/// An A or AAAA record.
#[derive(Debug, Clone)]
pub(crate) struct RawAddr {
    pub(crate) name: String,
    pub(crate) ip: IpAddr,
    pub(crate) ttl: Option<u32>,
    pub(crate) src: Src,
}

/// A CNAME, PTR or NS record: owner and target, both absolute, lower case.
#[derive(Debug, Clone)]
pub(crate) struct RawLink {
    pub(crate) owner: String,
    pub(crate) target: String,
    pub(crate) src: Src,
}

#[derive(Debug, Clone)]
pub(crate) struct RawSoa {
    pub(crate) owner: String,
    pub(crate) mname: String,
    pub(crate) rname: String,
    pub(crate) refresh: u32,
    pub(crate) retry: u32,
    pub(crate) expire: u32,
    pub(crate) minimum: u32,
    pub(crate) src: Src,
}

#[derive(Debug, Clone)]
pub(crate) struct RawKey {
    pub(crate) name: String,
    pub(crate) algorithm: String,
    pub(crate) secret: String,
    pub(crate) src: Src,
}

/// A DDNS zone's primary: an address, or a host name to find among the imported hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Primary {
    Ip(IpAddr),
    Name(String),
}

#[derive(Debug, Clone)]
pub(crate) struct RawDdns {
    pub(crate) server: Primary,
    pub(crate) key: Option<String>,
    pub(crate) ttl: Option<u64>,
    pub(crate) src: Src,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CheckType {
    Tcp,
    Http,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawCheck {
    pub(crate) kind: CheckType,
    /// keepalived's SSL_GET, imported as a TCP connect check on the same port.
    pub(crate) tls: bool,
    pub(crate) path: Option<String>,
    /// The accepted statuses: one range (several `status_code` values are joined into one).
    pub(crate) status: Option<(u16, u16)>,
    /// `virtualhost` of the check (or of its url).
    pub(crate) host: Option<String>,
    pub(crate) timeout_ms: Option<u64>,
    pub(crate) port: Option<u16>,
    pub(crate) retry: Option<u32>,
}

#[derive(Debug, Clone)]
pub(crate) struct RawReal {
    /// Of the virtual server's family (keepalived.rs leaves out the others).
    pub(crate) addr: SocketAddr,
    pub(crate) weight: Option<u32>,
    pub(crate) check: Option<RawCheck>,
    pub(crate) src: Src,
}

#[derive(Debug, Clone)]
pub(crate) struct RawService {
    /// IPv4, or IPv6 (resolved by `resolve::services6`).
    pub(crate) vip: SocketAddr,
    pub(crate) udp: bool,
    pub(crate) scheduler: Option<String>,
    pub(crate) persistence: Option<u64>,
    pub(crate) sorry: Option<SocketAddr>,
    pub(crate) quorum: Option<u32>,
    pub(crate) interval_ms: Option<u64>,
    /// `virtualhost` of the virtual server: the Host header of its HTTP checks.
    pub(crate) virtualhost: Option<String>,
    pub(crate) reals: Vec<RawReal>,
    pub(crate) src: Src,
}

#[derive(Debug, Clone)]
pub(crate) struct RawVrrp {
    pub(crate) vrid: Option<u8>,
    pub(crate) priority: Option<u8>,
    pub(crate) preempt: bool,
    pub(crate) interval_ms: Option<u64>,
    pub(crate) interface: Option<String>,
    /// `unicast_peer`: of the instance's family (IPv6 for an instance of IPv6 addresses).
    pub(crate) peers: Vec<IpAddr>,
    /// `unicast_src_ip`.
    pub(crate) source: Option<IpAddr>,
    pub(crate) src: Src,
}

#[derive(Debug, Clone)]
pub(crate) struct RawVip {
    pub(crate) ip: Ipv4Addr,
    pub(crate) prefix: Option<u8>,
    pub(crate) dev: Option<String>,
    pub(crate) src: Src,
}

/// An IPv6 `virtual_ipaddress` of a `vrrp_instance` (an instance of IPv6 addresses floats
/// them with VRRP over IPv6).
#[derive(Debug, Clone)]
pub(crate) struct RawVip6 {
    pub(crate) ip: Ipv6Addr,
    pub(crate) prefix: Option<u8>,
    pub(crate) dev: Option<String>,
    /// The line as written (for the list of what was not imported).
    pub(crate) text: String,
    pub(crate) src: Src,
}

/// A tracked script or interface as an instance names it.
#[derive(Debug, Clone)]
pub(crate) struct RawTrack {
    pub(crate) name: String,
    pub(crate) weight: Option<i64>,
}

/// A command as the host file takes it: argv, or one string for `/bin/sh -c`.
#[derive(Debug, Clone)]
pub(crate) struct RawCommand {
    pub(crate) argv: Vec<String>,
    pub(crate) shell: bool,
    /// Why a shell is needed, when it is.
    pub(crate) why: Option<String>,
    pub(crate) src: Src,
}

/// keepalived's `vrrp_instance`.
#[derive(Debug, Clone)]
pub(crate) struct RawInstance {
    pub(crate) name: String,
    pub(crate) vrrp: RawVrrp,
    pub(crate) vips: Vec<RawVip>,
    /// Its IPv6 addresses: an instance has these or `vips`, never both (keepalived ignores
    /// the addresses of the other family than its first).
    pub(crate) vips6: Vec<RawVip6>,
    pub(crate) track_scripts: Vec<RawTrack>,
    pub(crate) track_ifaces: Vec<RawTrack>,
    /// notify_master, notify_backup, notify_fault.
    pub(crate) notify: [Option<RawCommand>; 3],
}

/// keepalived's `vrrp_script`.
#[derive(Debug, Clone)]
pub(crate) struct RawScript {
    pub(crate) name: String,
    pub(crate) command: Option<RawCommand>,
    pub(crate) interval_ms: Option<u64>,
    pub(crate) timeout_ms: Option<u64>,
    pub(crate) weight: Option<i64>,
    pub(crate) rise: Option<u32>,
    pub(crate) fall: Option<u32>,
    pub(crate) src: Src,
}

/// keepalived's `vrrp_sync_group`.
#[derive(Debug, Clone)]
pub(crate) struct RawGroup {
    pub(crate) name: String,
    pub(crate) members: Vec<String>,
    pub(crate) src: Src,
}

/// Everything the parsers learnt, before anything is decided.
#[derive(Debug, Clone, Default)]
pub(crate) struct Raw {
    /// Domain candidates: (name without trailing dot, where, strength: 2 = forward zone, 1 = DHCP,
    /// what named it). Of equal strength, the first wins.
    pub(crate) domains: Vec<(String, Src, u8, &'static str)>,
    /// Default TTL ($TTL or the SOA's).
    pub(crate) ttl: Option<(u32, Src)>,
    pub(crate) subnets: Vec<RawSubnet>,
    pub(crate) subnets6: Vec<RawSubnet6>,
    /// Networks suggested by a reverse zone or a VIP's prefix: (net, where, why).
    pub(crate) net_hints: Vec<(Ipv4Net, Src, String)>,
    pub(crate) hosts: Vec<RawHost>,
    pub(crate) addrs: Vec<RawAddr>,
    pub(crate) cnames: Vec<RawLink>,
    pub(crate) ptrs: Vec<RawLink>,
    pub(crate) ns: Vec<RawLink>,
    pub(crate) soa: Vec<RawSoa>,
    pub(crate) keys: Vec<RawKey>,
    pub(crate) ddns: Option<RawDdns>,
    pub(crate) ping_check: Option<bool>,
    pub(crate) services: Vec<RawService>,
    pub(crate) vrrp: Option<RawVrrp>,
    pub(crate) vips: Vec<RawVip>,
    /// keepalived's `vrrp_instance`s as read; `resolve` picks the one holding service VIPs as
    /// `[lb.vrrp]` (into `vrrp` and `vips`), the others float.
    pub(crate) instances: Vec<RawInstance>,
    pub(crate) scripts: Vec<RawScript>,
    pub(crate) groups: Vec<RawGroup>,
    pub(crate) unsupported: Vec<Unsupported>,
}

impl Raw {
    pub(crate) fn absorb(&mut self, o: Raw) {
        self.domains.extend(o.domains);
        if self.ttl.is_none() {
            self.ttl = o.ttl;
        }
        self.subnets.extend(o.subnets);
        self.subnets6.extend(o.subnets6);
        self.net_hints.extend(o.net_hints);
        self.hosts.extend(o.hosts);
        self.addrs.extend(o.addrs);
        self.cnames.extend(o.cnames);
        self.ptrs.extend(o.ptrs);
        self.ns.extend(o.ns);
        self.soa.extend(o.soa);
        self.keys.extend(o.keys);
        if self.ddns.is_none() {
            self.ddns = o.ddns;
        }
        if self.ping_check.is_none() {
            self.ping_check = o.ping_check;
        }
        self.services.extend(o.services);
        match (&self.vrrp, o.vrrp) {
            (None, v) => self.vrrp = v,
            (Some(_), Some(v)) => self.unsupported.push(v.src.unsupported(
                "vrrp_instance",
                "a second VRRP instance from another input: the host file has one ([lb.vrrp])",
            )),
            (Some(_), None) => {}
        }
        self.vips.extend(o.vips);
        self.instances.extend(o.instances);
        self.scripts.extend(o.scripts);
        self.groups.extend(o.groups);
        self.unsupported.extend(o.unsupported);
    }
}

// ------------------------------------------------------------------ helpers shared by the parsers

/// Netmask to prefix length; `None` when the mask is not contiguous.
pub(crate) fn mask_prefix(mask: Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    let p = m.leading_ones();
    (m.checked_shl(p).unwrap_or(0) == 0).then_some(p as u8)
}

/// `00:1a:2b:3c:4d:5e`, also ISC's short form `0:1a:2b:3c:4d:5e` and `-` separators.
pub(crate) fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut out = [0u8; 6];
    for (o, p) in out.iter_mut().zip(parts) {
        if p.is_empty() || p.len() > 2 {
            return None;
        }
        *o = u8::from_str_radix(p, 16).ok()?;
    }
    Some(out)
}

/// `10.168.192.in-addr.arpa.` -> 192.168.10.0/24.
pub(crate) fn reverse_net(owner: &str) -> Option<Ipv4Net> {
    let body = owner.strip_suffix(".in-addr.arpa.")?;
    let parts: Vec<u8> = body
        .split('.')
        .map(|p| p.parse::<u8>().ok())
        .collect::<Option<Vec<u8>>>()?;
    if parts.is_empty() || parts.len() > 3 {
        return None;
    }
    let mut o = [0u8; 4];
    for (i, p) in parts.iter().rev().enumerate() {
        o[i] = *p;
    }
    Ipv4Net::new(Ipv4Addr::from(o), (parts.len() * 8) as u8).ok()
}

/// `4.3.2.1.0.0...8.b.d.0.1.0.0.2.ip6.arpa.` (32 nibbles) -> 2001:db8::1234.
pub(crate) fn ptr_addr6(owner: &str) -> Option<Ipv6Addr> {
    let body = owner.strip_suffix(".ip6.arpa.")?;
    let nibbles: Vec<u32> = body
        .split('.')
        .map(|n| {
            (n.len() == 1)
                .then(|| n.chars().next()?.to_digit(16))
                .flatten()
        })
        .collect::<Option<Vec<u32>>>()?;
    if nibbles.len() != 32 {
        return None;
    }
    let v = nibbles
        .iter()
        .rev()
        .fold(0u128, |acc, n| (acc << 4) | u128::from(*n));
    Some(Ipv6Addr::from(v))
}

/// `10.10.168.192.in-addr.arpa.` -> 192.168.10.10.
pub(crate) fn ptr_addr(owner: &str) -> Option<Ipv4Addr> {
    let body = owner.strip_suffix(".in-addr.arpa.")?;
    let parts: Vec<u8> = body
        .split('.')
        .map(|p| p.parse::<u8>().ok())
        .collect::<Option<Vec<u8>>>()?;
    (parts.len() == 4).then(|| Ipv4Addr::new(parts[3], parts[2], parts[1], parts[0]))
}

/// The prefix a VIP was given in `virtual_ipaddress`, as a network hint.
pub(crate) fn vip_net(v: &RawVip) -> Option<Ipv4Net> {
    let p = v.prefix?;
    if !(8..=30).contains(&p) {
        return None;
    }
    Ipv4Net::new(v.ip, p).ok().map(|n| n.trunc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netmasks_and_macs() {
        assert_eq!(mask_prefix(Ipv4Addr::new(255, 255, 255, 0)), Some(24));
        assert_eq!(mask_prefix(Ipv4Addr::new(255, 255, 255, 255)), Some(32));
        assert_eq!(mask_prefix(Ipv4Addr::new(0, 0, 0, 0)), Some(0));
        assert_eq!(mask_prefix(Ipv4Addr::new(255, 0, 255, 0)), None);
        assert_eq!(
            parse_mac("0:1b:a9:12:34:56"),
            Some([0, 0x1b, 0xa9, 0x12, 0x34, 0x56])
        );
        assert_eq!(
            parse_mac("00-11-22-33-44-55"),
            Some([0, 0x11, 0x22, 0x33, 0x44, 0x55])
        );
        assert_eq!(parse_mac("00:11:22:33:44"), None);
        assert_eq!(parse_mac("00:11:22:33:44:555"), None);
    }

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_net("10.168.192.in-addr.arpa."),
            Some("192.168.10.0/24".parse().unwrap())
        );
        assert_eq!(
            ptr_addr("12.10.168.192.in-addr.arpa."),
            Some(Ipv4Addr::new(192, 168, 10, 12))
        );
        assert_eq!(ptr_addr("0/25.10.168.192.in-addr.arpa."), None);
        assert_eq!(
            ptr_addr6("4.3.2.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."),
            Some("2001:db8::1234".parse().unwrap())
        );
        assert_eq!(ptr_addr6("0.0.d.f.ip6.arpa."), None);
    }
}
