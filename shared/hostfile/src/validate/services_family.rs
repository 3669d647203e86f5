//! A service's address families: its VIPs (`vip = "ADDR"` or `vip = ["IPv4", "IPv6"]` for a
//! dual-stack service) and, per VIP, its backends' addresses of the VIP's family.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;

use super::subnets::subnet_of;
use super::values::{Validator, span};
use crate::model::*;
use crate::model6::Dhcp6Subnet;
use crate::wire::{self, S, StrList};

/// A backend as listed, resolved to its host (both families kept: each VIP picks its own).
pub(super) struct BackendRef {
    name: String,
    v4: Option<Ipv4Addr>,
    v6: Option<std::net::Ipv6Addr>,
    port: u16,
    pub(super) weight: u32,
    span: Range<usize>,
}

fn family(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
}

impl Validator {
    /// The VIPs of service `name` with the prefix length of the subnet each lies in: one
    /// address, or one of each family. Each joins `addr_owner` (IPv4) or is checked against the
    /// hosts' `ipv6` addresses, so a VIP that is a host's address is reported.
    pub(super) fn vips(
        &mut self,
        v: &S<StrList>,
        name: &str,
        (subnets, subnets6): (&[DhcpSubnet], &[Dhcp6Subnet]),
        hosts: &[Host],
        addr_owner: &mut HashMap<Ipv4Addr, String>,
    ) -> Vec<(IpAddr, u8)> {
        let sp = span(v);
        let items: Vec<String> = match v.get_ref() {
            StrList::One(s) => vec![s.clone()],
            StrList::Many(l) => l.clone(),
        };
        if items.is_empty() || items.len() > 2 {
            self.d.push(
                sp.clone(),
                format!("vip lists {} addresses", items.len()),
                "write one address, or one IPv4 and one IPv6 address for a dual-stack service: vip = [\"192.168.1.120\", \"fd00:1::120\"]",
            );
        }
        let mut out: Vec<(IpAddr, u8)> = Vec::new();
        for t in items.iter().take(2) {
            let t = t.trim();
            let Ok(ip) = t.parse::<IpAddr>() else {
                self.d.push(
                    sp.clone(),
                    format!("vip `{t}` is not an IP address"),
                    "write an IPv4 address such as \"192.168.1.120\" or an IPv6 address such as \"fd00:1::120\"",
                );
                continue;
            };
            if out.iter().any(|(o, _)| o.is_ipv4() == ip.is_ipv4()) {
                self.d.push(
                    sp.clone(),
                    format!("vip lists two {} addresses", family(ip)),
                    "a service has at most one IPv4 and one IPv6 VIP: declare a second service for another address",
                );
                continue;
            }
            let prefix = match ip {
                IpAddr::V4(a) => subnet_of(subnets, a).map(|i| subnets[i].network.prefix_len()),
                IpAddr::V6(a) => subnets6
                    .iter()
                    .find(|n| n.network.contains(&a))
                    .map(|n| n.network.prefix_len()),
            };
            let prefix = match prefix {
                Some(p) => p,
                None if ip.is_ipv4() => {
                    self.d.push(
                        sp.clone(),
                        format!("vip `{ip}` is not on any subnet"),
                        "a VIP must lie in a [[subnet]] on an interface of this host",
                    );
                    32
                }
                None => {
                    self.d.push(
                        sp.clone(),
                        format!("vip `{ip}` is not on any IPv6 subnet"),
                        "an IPv6 VIP must lie in a [[subnet]] with an IPv6 network (e.g. network = \"fd00:1::/64\") on an interface of this host",
                    );
                    128
                }
            };
            match ip {
                IpAddr::V4(a) => {
                    if let Some(owner) = addr_owner.get(&a)
                        && !owner.starts_with("service")
                    {
                        self.d.push(
                            sp.clone(),
                            format!("vip `{a}` is already the address of {owner}"),
                            "a VIP must be an address no host uses",
                        );
                    }
                    addr_owner
                        .entry(a)
                        .or_insert_with(|| format!("service {name}"));
                }
                IpAddr::V6(a) => {
                    if let Some(h) = hosts.iter().find(|h| h.ipv6.contains(&a)) {
                        self.d.push(
                            sp.clone(),
                            format!("vip `{a}` is already the address of host {}", h.name),
                            "a VIP must be an address no host uses",
                        );
                    }
                }
            }
            out.push((ip, prefix));
        }
        out
    }

    /// The listed backends resolved to hosts (unknown hosts, hosts without any address and
    /// backends listed twice are reported here).
    pub(super) fn backend_refs(
        &mut self,
        list: &[S<wire::BackendRef>],
        bport: u16,
        hosts: &[Host],
        host_by_name: &HashMap<&str, &Host>,
    ) -> Vec<BackendRef> {
        let mut out: Vec<BackendRef> = Vec::new();
        for b in list {
            let sp = b.span();
            let (hs, port_o, weight) = match b.get_ref() {
                wire::BackendRef::Name(n) => (S::new(sp.clone(), n.clone()), None, None),
                wire::BackendRef::Full(f) => (
                    S::new(sp.clone(), f.host.clone()),
                    f.port.map(|p| S::new(sp.clone(), p)),
                    f.weight.map(|w| S::new(sp.clone(), w)),
                ),
            };
            let hn = hs.get_ref().trim().to_ascii_lowercase();
            let port = self.int(&port_o, i64::from(bport), 1, 65535, "backend port") as u16;
            let weight = self.int(&weight, 1, 0, 1000, "weight") as u32;
            match host_by_name.get(hn.as_str()) {
                None => {
                    let known: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
                    self.d.push(
                        span(&hs),
                        format!("backend `{hn}` is not a host in this file"),
                        format!("use one of: {}", known.join(", ")),
                    );
                }
                Some(h) if h.ips.is_empty() && h.ipv6.is_empty() => {
                    self.d.push(
                        span(&hs),
                        format!("backend `{hn}` has no address"),
                        "give the host an ip (or an ipv6 address for an IPv6 VIP)",
                    );
                }
                Some(h) => {
                    if out.iter().any(|x| x.name == hn && x.port == port) {
                        self.d.push(
                            span(&hs),
                            format!("backend `{hn}` is listed twice"),
                            "list each backend once (use weight for more traffic)",
                        );
                    }
                    out.push(BackendRef {
                        name: hn,
                        v4: h.ips.first().copied(),
                        v6: h.ipv6.first().copied(),
                        port,
                        weight,
                        span: span(&hs),
                    });
                }
            }
        }
        out
    }

    /// The backends of the service's entry for `vip`: each host's first address of the VIP's
    /// family. A host without one is an error in the kernel plane (it does not translate
    /// between IPv4 and IPv6); the proxy reaches it over its other family.
    pub(super) fn family_backends(
        &mut self,
        refs: &[BackendRef],
        vip: IpAddr,
        proxy: bool,
    ) -> Vec<Backend> {
        let mut out = Vec::new();
        for r in refs {
            let (same, other) = match vip {
                IpAddr::V4(_) => (r.v4.map(IpAddr::V4), r.v6.map(IpAddr::V6)),
                IpAddr::V6(_) => (r.v6.map(IpAddr::V6), r.v4.map(IpAddr::V4)),
            };
            let ip = match (same, other) {
                (Some(ip), _) => ip,
                (None, Some(ip)) if proxy => ip,
                (None, _) => {
                    let (fam, key) = if vip.is_ipv4() {
                        ("IPv4", "ip")
                    } else {
                        ("IPv6", "ipv6")
                    };
                    self.d.push(
                        r.span.clone(),
                        format!("backend `{}` has no {fam} address for the {fam} vip `{vip}`", r.name),
                        format!(
                            "give host {} an {key} address, or set dataplane = \"proxy\": the kernel data plane does not translate between IPv4 and IPv6 (NAT64 is not supported)",
                            r.name
                        ),
                    );
                    continue;
                }
            };
            out.push(Backend {
                name: r.name.clone(),
                addr: SocketAddr::new(ip, r.port),
                weight: r.weight,
            });
        }
        out
    }
}
