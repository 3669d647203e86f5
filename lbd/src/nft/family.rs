//! The address family of each of lbd's tables (`ip lbd`, `ip6 lbd`) and the IPv6 table's rules.

use std::collections::BTreeSet;
use std::net::IpAddr;

/// The address family a table is rendered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Family {
    V4,
    V6,
}

impl Family {
    pub(super) fn of(ip: IpAddr) -> Family {
        if ip.is_ipv4() { Family::V4 } else { Family::V6 }
    }

    /// The payload protocol keyword: `ip saddr`, `dnat ip to`.
    pub(super) fn ip(self) -> &'static str {
        match self {
            Family::V4 => "ip",
            Family::V6 => "ip6",
        }
    }

    /// The set and map key type of an address.
    pub(super) fn addr_type(self) -> &'static str {
        match self {
            Family::V4 => "ipv4_addr",
            Family::V6 => "ipv6_addr",
        }
    }
}

/// The rules of the IPv6 table (`ip6 lbd`): the same shapes as the IPv4 table's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Part {
    /// `set ...` and `chain ...` definitions, without the table wrapper.
    pub body: String,
    /// Chain names.
    pub chains: BTreeSet<String>,
    /// Set names.
    pub sets: BTreeSet<String>,
    /// Map names.
    pub maps: BTreeSet<String>,
}
