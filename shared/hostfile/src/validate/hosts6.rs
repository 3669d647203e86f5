//! `[host.NAME]` on IPv6: `duid`, and the `ipv6` addresses inside an IPv6 subnet that become
//! DHCPv6 reservations (by DUID, or by the host's MAC).

use std::collections::HashMap;
use std::net::Ipv6Addr;

use super::values::{Validator, span};
use crate::model::{Mac, Reservation6};
use crate::model6::Dhcp6Subnet;
use crate::wire::{self, S};

/// What the IPv6 reservations of earlier hosts hold, for the duplicate checks.
#[derive(Default)]
pub(crate) struct Seen6Hosts {
    duid_owner: HashMap<Vec<u8>, String>,
    addr_owner: HashMap<Ipv6Addr, String>,
}

/// DUID bytes from `00:03:00:01:02:00:00:00:10:10`: pairs of hex digits joined by colons, a
/// 2-byte type and 1-128 further bytes (RFC 8415, section 11).
pub(crate) fn parse_duid(s: &str) -> Option<Vec<u8>> {
    let bytes: Option<Vec<u8>> = s
        .split(':')
        .map(|p| {
            (p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
                .then(|| u8::from_str_radix(p, 16).ok())
                .flatten()
        })
        .collect();
    bytes.filter(|b| (3..=130).contains(&b.len()))
}

fn show_duid(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl Validator {
    fn duid(&mut self, s: &S<String>) -> Option<Vec<u8>> {
        let d = parse_duid(&s.get_ref().trim().to_ascii_lowercase());
        if d.is_none() {
            self.d.push(
                span(s),
                format!("duid `{}` is not a DUID", s.get_ref()),
                "write its bytes as hex pairs joined by colons, 3 to 130 bytes with the type first, e.g. \"00:03:00:01:02:00:00:00:10:10\" (DUID-LL)",
            );
        }
        d
    }

    /// The host's IPv6 reservations: each `ipv6` address inside an IPv6 subnet, when the host
    /// has a `duid` or a `mac`; outside every pool, each address and DUID reserved once.
    pub(crate) fn reservations6(
        &mut self,
        name: &str,
        h: &wire::Host,
        mac: Option<Mac>,
        subnets6: &[Dhcp6Subnet],
        seen: &mut Seen6Hosts,
    ) -> Vec<Reservation6> {
        let duid = h.duid.as_ref().and_then(|s| {
            let d = self.duid(s)?;
            if let Some(prev) = seen.duid_owner.insert(d.clone(), format!("host {name}")) {
                self.d.push(
                    span(s),
                    format!("DUID `{}` is already used by {prev}", show_duid(&d)),
                    "a DUID identifies one client: reserve it for one host only",
                );
            }
            Some(d)
        });
        let mut out = Vec::new();
        for s in wire::items(&h.ipv6) {
            let Ok(ip) = s.get_ref().trim().parse::<Ipv6Addr>() else {
                continue; // reported with the host's addresses
            };
            let Some(si) = subnets6.iter().position(|n| n.network.contains(&ip)) else {
                continue; // AAAA only
            };
            if duid.is_none() && mac.is_none() {
                continue;
            }
            if let Some(p) = subnets6[si].pools.iter().find(|p| p.range.contains(ip)) {
                self.d.push(
                    span(&s),
                    format!(
                        "reserved address `{ip}` of host `{name}` is inside the dynamic range {}",
                        p.range
                    ),
                    "choose an address outside every range, or shrink the range",
                );
            }
            if let Some(prev) = seen.addr_owner.insert(ip, format!("host {name}")) {
                self.d.push(
                    span(&s),
                    format!("address `{ip}` is already reserved for {prev}"),
                    "give every host its own address",
                );
            }
            out.push(Reservation6 {
                hostname: name.to_owned(),
                duid: duid.clone(),
                mac,
                ip,
                subnet: si,
            });
        }
        if let (Some(s), Some(_), true) = (&h.duid, &duid, out.is_empty()) {
            self.d.push(
                span(s),
                format!("duid of host `{name}` reserves nothing: none of its ipv6 addresses is in an IPv6 subnet"),
                "add an ipv6 address inside an IPv6 [[subnet]], or remove duid",
            );
        }
        out
    }
}
