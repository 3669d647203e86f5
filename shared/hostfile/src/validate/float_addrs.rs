//! The addresses, peers and source of one `[lb.vrrp-instance.NAME]`: IPv4 or IPv6, one family
//! per instance. RFC 5798 runs a virtual router per family, and keepalived (since 1.2.20)
//! refuses addresses of the other family in `virtual_ipaddress`; an instance of IPv6 addresses
//! advertises to ff02::12 from the interface's link-local address.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::model::VirtualService;
use crate::wire::{self, S};

use super::values::{Validator, span};

fn family(v6: bool) -> &'static str {
    if v6 { "IPv6" } else { "IPv4" }
}

impl Validator {
    /// The instance's floating addresses, and whether they are IPv6 (the family of the first
    /// one; an address of the other family is a problem).
    pub(super) fn float_addresses(
        &mut self,
        n: &str,
        vrid: u8,
        i: &wire::VrrpInstance,
        services: &[VirtualService],
        seen_addr: &mut BTreeMap<IpAddr, String>,
    ) -> (Vec<IpNet>, bool) {
        let mut addresses: Vec<IpNet> = Vec::new();
        if i.addresses.get_ref().is_empty() {
            self.d.push(
                span(&i.addresses),
                format!("vrrp-instance `{n}` has no addresses"),
                "list the addresses that float, e.g. addresses = [\"192.168.10.1/24\"] or [\"fd00:10::1/64\"]",
            );
        }
        let mut v6: Option<bool> = None;
        for a in i.addresses.get_ref() {
            let t = a.get_ref().trim();
            let net = t
                .parse::<IpNet>()
                .or_else(|_| t.parse::<IpAddr>().map(IpNet::from));
            let Ok(net) = net else {
                let (fam, eg) = if t.contains(':') {
                    ("IPv6", "\"fd00:10::1/64\"")
                } else {
                    ("IPv4", "\"192.168.10.1/24\"")
                };
                self.d.push(
                    span(a),
                    format!("address `{t}` is not an {fam} address with a prefix"),
                    format!("write ADDRESS/PREFIX, e.g. {eg}"),
                );
                continue;
            };
            let ip = net.addr();
            let is6 = ip.is_ipv6();
            let want = *v6.get_or_insert(is6);
            if is6 != want {
                self.d.push(
                    span(a),
                    format!(
                        "vrrp-instance `{n}` mixes address families: `{ip}` is {} but its first address is {}",
                        family(is6),
                        family(want)
                    ),
                    format!(
                        "a VRRP instance floats one family (RFC 5798; keepalived ignores the others): move the {} addresses to an instance of their own, e.g. [lb.vrrp-instance.{n}{}] (it may use vrid {vrid} too)",
                        family(is6),
                        if is6 { "6" } else { "4" }
                    ),
                );
                continue;
            }
            if let IpAddr::V6(v) = ip
                && (v.is_unicast_link_local() || v.is_multicast() || v.is_unspecified())
            {
                self.d.push(
                    span(a),
                    format!(
                        "address `{ip}` cannot float: it is link-local, multicast or unspecified"
                    ),
                    "float a global or unique-local address, e.g. \"fd00:10::1/64\"",
                );
                continue;
            }
            if let Some(s) = services.iter().find(|s| s.vip == ip) {
                self.d.push(
                    span(a),
                    format!("address `{ip}` is the VIP of service `{}`", s.name),
                    "a service VIP floats with [lb.vrrp]; put it in a sync group with this instance instead",
                );
            } else if let Some(o) = seen_addr.insert(ip, n.to_owned()) {
                self.d.push(
                    span(a),
                    format!("address `{ip}` is already held by vrrp-instance `{o}`"),
                    "list each floating address in one instance only",
                );
            }
            addresses.push(net);
        }
        (addresses, v6.unwrap_or(false))
    }

    /// `peers` and `source` of an instance of the family `v6` says. `service` is set for
    /// `[lb.vrrp]`, whose family comes from the service VIPs: an address of the other family is
    /// then reported with that reason.
    pub(super) fn float_peers(
        &mut self,
        peers: &[S<String>],
        source: Option<&S<String>>,
        v6: bool,
        service: bool,
    ) -> (Vec<IpAddr>, Option<IpAddr>) {
        let one = |this: &mut Self, s: &S<String>, what: &str| -> Option<IpAddr> {
            let other = s
                .get_ref()
                .trim()
                .parse::<IpAddr>()
                .is_ok_and(|a| a.is_ipv6() != v6);
            if service && other {
                let (why, fix) = if v6 {
                    (
                        "runs VRRP over IPv6: its service VIPs are all IPv6",
                        "give the other node's IPv6 address (e.g. \"fd00:10::3\", or its fe80:: address), or leave `peers`/`source` out for multicast to ff02::12 from the link-local address",
                    )
                } else {
                    (
                        "runs VRRP over IPv4: its service VIPs are IPv4 (or of both families)",
                        "give the other node's IPv4 address (e.g. \"192.168.1.3\"); [lb.vrrp] runs over IPv6 only when every service VIP is IPv6",
                    )
                };
                this.d.push(
                    span(s),
                    format!(
                        "{what} `{}` is {}, but [lb.vrrp] {why}",
                        s.get_ref().trim(),
                        family(!v6)
                    ),
                    fix,
                );
                return None;
            }
            if v6 {
                this.ip6(s, what).map(IpAddr::V6)
            } else {
                this.ip(s, what).map(IpAddr::V4)
            }
        };
        let peers: Vec<IpAddr> = peers
            .iter()
            .filter_map(|p| one(self, p, "VRRP peer"))
            .collect();
        let src = source.and_then(|s| one(self, s, "VRRP source"));
        if let (Some(IpAddr::V6(a)), Some(s)) = (src, source)
            && peers.is_empty()
            && !a.is_unicast_link_local()
        {
            self.d.push(
                span(s),
                format!("VRRP source `{a}` is not a link-local address"),
                "IPv6 adverts to ff02::12 are sent from the interface's link-local address (RFC 5798 5.1.2.1): leave `source` out (lbd takes the fe80:: address of the interface) or give that address",
            );
        }
        (peers, src)
    }
}
