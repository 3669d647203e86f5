//! The IPv6 half of the DHCP view: subnets with address and prefix-delegation pools, their
//! options, lifetimes and router advertisement settings. Plain data, already validated.

use std::fmt;
use std::net::Ipv6Addr;
use std::time::Duration;

use ipnet::Ipv6Net;
use serde::Serialize;

/// An inclusive IPv6 address range, `fd00:10::1000-fd00:10::1fff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ipv6Range {
    /// First address.
    pub start: Ipv6Addr,
    /// Last address (inclusive).
    pub end: Ipv6Addr,
}

impl Ipv6Range {
    /// True when `ip` lies in the range.
    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        (self.start..=self.end).contains(&ip)
    }
    /// Number of addresses in the range (saturating at `u128::MAX` for the whole space).
    pub fn len(&self) -> u128 {
        (u128::from(self.end) - u128::from(self.start)).saturating_add(1)
    }
    /// Never true: a range holds at least one address.
    pub fn is_empty(&self) -> bool {
        false
    }
    /// True when the two ranges share an address.
    pub fn overlaps(&self, o: &Ipv6Range) -> bool {
        self.start <= o.end && o.start <= self.end
    }
}

impl From<Ipv6Net> for Ipv6Range {
    fn from(n: Ipv6Net) -> Self {
        Ipv6Range {
            start: n.network(),
            end: n.broadcast(),
        }
    }
}

impl fmt::Display for Ipv6Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

/// A dynamic address range (IA_NA) inside an IPv6 subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Pool6 {
    /// The addresses.
    pub range: Ipv6Range,
}

/// A prefix-delegation pool (IA_PD): `prefix` cut into prefixes of `delegated_len` bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PdPool {
    /// The prefix delegated prefixes are taken from, host bits zero.
    pub prefix: Ipv6Net,
    /// Length of each delegated prefix; always longer than `prefix`'s.
    pub delegated_len: u8,
}

impl PdPool {
    /// How many prefixes the pool can delegate (saturating).
    pub fn count(&self) -> u128 {
        let bits = u32::from(self.delegated_len - self.prefix.prefix_len());
        1u128.checked_shl(bits).unwrap_or(u128::MAX)
    }
}

/// An IPv6 subnet as the DHCPv6 server and the router advertiser see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dhcp6Subnet {
    /// Name given in the file, or the network in text form.
    pub name: String,
    /// The network (the on-link prefix), host bits zero.
    pub network: Ipv6Net,
    /// Interface to serve it on; `None` = whichever interface holds an address in it.
    pub interface: Option<String>,
    /// OPTION_DNS_SERVERS (23) and the RDNSS of router advertisements.
    pub dns: Vec<Ipv6Addr>,
    /// The domain of the subnet's clients (dynamic DNS), defaulting to the file's domain.
    pub domain: String,
    /// OPTION_DOMAIN_LIST (24) and the DNSSL of router advertisements.
    pub search: Vec<String>,
    /// OPTION_NTP_SERVER (56), server addresses.
    pub ntp: Vec<Ipv6Addr>,
    /// MTU option of router advertisements.
    pub mtu: Option<u16>,
    /// Preferred lifetime of addresses and delegated prefixes.
    pub preferred: Duration,
    /// Valid lifetime of addresses and delegated prefixes.
    pub valid: Duration,
    /// T1: when the client renews with this server.
    pub t1: Duration,
    /// T2: when the client rebinds with any server.
    pub t2: Duration,
    /// Address pools (IA_NA).
    pub pools: Vec<Pool6>,
    /// Prefix-delegation pools (IA_PD).
    pub pd_pools: Vec<PdPool>,
    /// Send router advertisements for it (on a local interface).
    pub ra: bool,
    /// Autonomous flag in the prefix information: hosts may configure addresses themselves.
    pub slaac: bool,
    /// Answer a SOLICIT carrying Rapid Commit with a REPLY (RFC 8415 section 18.3.1); off by
    /// default, as Kea's `rapid-commit`.
    pub rapid_commit: bool,
}

impl Dhcp6Subnet {
    /// One line for a daemon's `--check` summary: pools, delegable prefixes, lifetimes and RA.
    pub fn summary(&self) -> String {
        self.summary_on(
            self.interface
                .as_deref()
                .unwrap_or("the interface with an address in it"),
        )
    }

    /// [`Self::summary`] naming the interface that serves the subnet (`iface`), as a daemon
    /// that looked at the local interfaces knows it.
    pub fn summary_on(&self, iface: &str) -> String {
        let addrs = self
            .pools
            .iter()
            .fold(0u128, |a, p| a.saturating_add(p.range.len()));
        let prefixes = self
            .pd_pools
            .iter()
            .fold(0u128, |a, p| a.saturating_add(p.count()));
        let d = |d: Duration| humantime::format_duration(d).to_string();
        format!(
            "subnet {} ({}) on {}: {} pool(s), {addrs} dynamic addresses, {} pd-pool(s), {prefixes} prefixes to delegate, preferred {}, valid {}, T1 {}, T2 {}, router advertisements {}{}{}",
            self.network,
            self.name,
            iface,
            self.pools.len(),
            self.pd_pools.len(),
            d(self.preferred),
            d(self.valid),
            d(self.t1),
            d(self.t2),
            if self.ra { "on" } else { "off" },
            if self.slaac { " (SLAAC)" } else { "" },
            if self.rapid_commit {
                ", rapid commit"
            } else {
                ""
            },
        )
    }
}
