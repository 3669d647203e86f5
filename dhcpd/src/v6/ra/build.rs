//! The bytes of a router advertisement (the ICMPv6 message; the kernel adds the IPv6 header and
//! the checksum) for one subnet on one link.

use std::net::Ipv6Addr;

use hostfile::Dhcp6Subnet;
use ipnet::Ipv6Net;

use super::ROUTER_ADVERTISEMENT;

/// radvd's AdvDefaultLifetime: 3 x MaxRtrAdvInterval (600 s).
pub const ROUTER_LIFETIME: u16 = 1800;
/// radvd's AdvCurHopLimit.
pub const CUR_HOP_LIMIT: u8 = 64;
/// Lifetime of RDNSS and DNSSL entries: 3 x MaxRtrAdvInterval (RFC 8106 5.1 asks for at least
/// that much, so one lost advertisement does not drop them).
pub const DNS_LIFETIME: u32 = 1800;
/// Largest advertisement: the IPv6 minimum MTU less the IPv6 header, so it is never fragmented.
pub const MAX_LEN: usize = 1280 - 40;

const OPT_SLLA: u8 = 1;
const OPT_PREFIX: u8 = 3;
const OPT_MTU: u8 = 5;
const OPT_RDNSS: u8 = 25;
const OPT_DNSSL: u8 = 31;

/// What an advertisement for a subnet says; derived from the host file's subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaParams {
    /// M: addresses from DHCPv6 (the subnet has an address pool).
    pub managed: bool,
    /// O: other configuration from DHCPv6 (DNS, search, NTP, or prefixes to delegate).
    pub other: bool,
    /// The on-link prefix.
    pub prefix: Ipv6Net,
    /// A flag of the prefix information: hosts may form addresses in it (SLAAC).
    pub autonomous: bool,
    /// Valid lifetime of the prefix, seconds.
    pub valid: u32,
    /// Preferred lifetime of the prefix, seconds.
    pub preferred: u32,
    /// Recursive DNS servers (RDNSS).
    pub dns: Vec<Ipv6Addr>,
    /// Search domains (DNSSL).
    pub search: Vec<String>,
    /// Link MTU, when the file sets one.
    pub mtu: Option<u16>,
}

fn secs(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

impl RaParams {
    /// The advertisement of `s`: M when it has address pools, O when it has DHCPv6 options or
    /// prefix-delegation pools, the autonomous flag as the subnet's `slaac` (which defaults to on
    /// for a /64 without address pools).
    pub fn of(s: &Dhcp6Subnet) -> RaParams {
        let valid = secs(s.valid);
        RaParams {
            managed: !s.pools.is_empty(),
            other: !s.dns.is_empty()
                || !s.search.is_empty()
                || !s.ntp.is_empty()
                || !s.pd_pools.is_empty(),
            prefix: s.network,
            autonomous: s.slaac,
            valid,
            preferred: secs(s.preferred).min(valid),
            dns: s.dns.clone(),
            search: s.search.clone(),
            mtu: s.mtu,
        }
    }
}

/// Which advertisement: a regular one, or the final one of a stopping router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Router lifetime [`ROUTER_LIFETIME`].
    Regular,
    /// Router lifetime 0, and RDNSS/DNSSL lifetimes 0 (radvd's FlushRDNSS/FlushDNSSL); the
    /// prefix keeps its lifetimes (radvd's DeprecatePrefix is off by default).
    Final,
}

/// The ICMPv6 router advertisement for `p` sent from an interface with link-layer address
/// `mac` (empty: no source link-layer option). Never longer than [`MAX_LEN`]: DNS servers and
/// search domains that would not fit are left out.
pub fn build(p: &RaParams, mac: &[u8], kind: Kind) -> Vec<u8> {
    let (router_life, dns_life) = match kind {
        Kind::Regular => (ROUTER_LIFETIME, DNS_LIFETIME),
        Kind::Final => (0, 0),
    };
    let flags = if p.managed { 0x80 } else { 0 } | if p.other { 0x40 } else { 0 };
    let mut b = vec![ROUTER_ADVERTISEMENT, 0, 0, 0, CUR_HOP_LIMIT, flags];
    b.extend_from_slice(&router_life.to_be_bytes());
    b.extend_from_slice(&[0; 8]); // reachable time, retrans timer: unspecified
    if !mac.is_empty() && mac.len() <= 14 {
        let len = (2 + mac.len()).div_ceil(8);
        b.extend_from_slice(&[OPT_SLLA, len as u8]);
        b.extend_from_slice(mac);
        b.resize(b.len() + len * 8 - 2 - mac.len(), 0);
    }
    if let Some(mtu) = p.mtu {
        b.extend_from_slice(&[OPT_MTU, 1, 0, 0]);
        b.extend_from_slice(&u32::from(mtu).to_be_bytes());
    }
    let pflags = 0x80 | if p.autonomous { 0x40 } else { 0 };
    b.extend_from_slice(&[OPT_PREFIX, 4, p.prefix.prefix_len(), pflags]);
    b.extend_from_slice(&p.valid.to_be_bytes());
    b.extend_from_slice(&p.preferred.to_be_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&p.prefix.network().octets());
    // RDNSS: as many servers as fit, keeping room for nothing else (DNSSL comes after).
    let room = (MAX_LEN.saturating_sub(b.len() + 8)) / 16;
    let dns = &p.dns[..p.dns.len().min(room).min(127)];
    if !dns.is_empty() {
        b.extend_from_slice(&[OPT_RDNSS, (1 + 2 * dns.len()) as u8, 0, 0]);
        b.extend_from_slice(&dns_life.to_be_bytes());
        dns.iter().for_each(|a| b.extend_from_slice(&a.octets()));
    }
    let mut names = Vec::new();
    for d in &p.search {
        let Some(wire) = dns_name(d) else { continue };
        if b.len() + (8 + names.len() + wire.len()).div_ceil(8) * 8 > MAX_LEN {
            break;
        }
        names.extend_from_slice(&wire);
    }
    if !names.is_empty() {
        let len = (8 + names.len()).div_ceil(8);
        b.extend_from_slice(&[OPT_DNSSL, len as u8, 0, 0]);
        b.extend_from_slice(&dns_life.to_be_bytes());
        b.extend_from_slice(&names);
        b.resize(b.len() + len * 8 - 8 - names.len(), 0);
    }
    b
}

/// A domain name in DNS wire form (labels, then the zero root label); `None` when a label is
/// empty or longer than 63 octets or the name longer than 255.
fn dns_name(name: &str) -> Option<Vec<u8>> {
    let mut w = Vec::new();
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return None;
        }
        w.push(label.len() as u8);
        w.extend_from_slice(label.as_bytes());
    }
    w.push(0);
    (w.len() <= 255).then_some(w)
}
