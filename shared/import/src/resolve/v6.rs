//! dhcpd6.conf: IPv6 subnets (pools, prefix delegation, lifetimes) and the IPv6 reservations of
//! hosts (`fixed-address6`, `dhcp6.client-id`), joined to the host the IPv4 files made.

use std::net::Ipv6Addr;

use crate::emit::{DPdPool, DPool, DSubnet, Doc};
use crate::facts::ptr_addr6;

use super::state::{HostB, R, to_label};

impl R<'_> {
    /// Hosts of dhcpd6.conf with no IPv4 address: joined to the host of the same MAC or name,
    /// else a host of their own with IPv6 addresses only.
    pub(super) fn hosts6(&mut self) {
        let raw = self.raw;
        for h in raw
            .hosts
            .iter()
            .filter(|h| h.ips.is_empty() && h.fixed_names.is_empty() && !h.ipv6.is_empty())
        {
            let label = to_label(h.host_name.as_deref().unwrap_or(&h.decl));
            let target = h
                .mac
                .and_then(|m| {
                    self.hosts
                        .iter()
                        .position(|x| !x.removed && x.mac == Some(m))
                })
                .or_else(|| self.host_by_label(&label));
            let i = match target {
                Some(i) => i,
                None => {
                    let base = if label.is_empty() {
                        "host6".to_owned()
                    } else {
                        label.clone()
                    };
                    let mut name = base.clone();
                    let mut n = 2;
                    while !self.add_name(&name) {
                        name = format!("{base}-{n}");
                        n += 1;
                    }
                    self.hosts.push(HostB {
                        name,
                        notes: vec![format!(
                            "from {}: IPv6 only (no IPv4 reservation in the imported files)",
                            h.src
                        )],
                        mac: h.mac,
                        src: Some(h.src.clone()),
                        ..HostB::default()
                    });
                    self.hosts.len() - 1
                }
            };
            let t = &mut self.hosts[i];
            if h.duid.is_some() && t.duid.is_some() && t.duid != h.duid {
                self.un.push(h.src.unsupported(
                    format!("host {}", h.decl),
                    format!("host {} already has another DUID", t.name),
                ));
                continue;
            }
            t.notes
                .push(format!("IPv6 reservation from host {} ({})", h.decl, h.src));
            for a in &h.ipv6 {
                if !t.ipv6.contains(&a.to_string()) {
                    t.ipv6.push(a.to_string());
                }
            }
            if t.duid.is_none() {
                t.duid.clone_from(&h.duid);
            }
        }
    }

    pub(super) fn subnets6(&mut self, doc: &mut Doc) {
        for s in &self.raw.subnets6 {
            let mut lifetimes6 = Vec::new();
            for (k, v) in [
                ("preferred-lifetime", s.preferred),
                ("valid-lifetime", s.valid),
                ("t1", s.t1),
                ("t2", s.t2),
            ] {
                if let Some(v) = v {
                    lifetimes6.push((k, v));
                }
            }
            doc.subnets.push(DSubnet {
                src: Some(s.src.clone()),
                notes: vec![
                    format!("from {}", s.src),
                    "ISC dhcpd sent no router advertisements (radvd or the router did): ra = false; set it to true when lansuite should send them instead".into(),
                ],
                network: s.net.to_string(),
                dns: s.dns.iter().map(Ipv6Addr::to_string).collect(),
                search: s.search.clone(),
                pools: s
                    .pools
                    .iter()
                    .map(|(r, src)| DPool {
                        src: src.clone(),
                        note: format!("was: range6 ({src})"),
                        start: r.clone(),
                        end: String::new(),
                        bootp: false,
                    })
                    .collect(),
                pd_pools: s
                    .pd
                    .iter()
                    .map(|(p, len, note, src)| DPdPool {
                        src: src.clone(),
                        note: note
                            .clone()
                            .unwrap_or_else(|| format!("was: prefix6 ({src})")),
                        prefix: p.to_string(),
                        delegated_length: *len,
                    })
                    .collect(),
                lifetimes6,
                ra: Some(false),
                ..DSubnet::default()
            });
        }
    }

    /// A PTR record in an ip6.arpa zone, compared with the hosts' `ipv6` addresses.
    pub(super) fn ptr6(&mut self, p: &crate::facts::RawLink) -> bool {
        let Some(ip) = ptr_addr6(&p.owner) else {
            return false;
        };
        let construct = format!("{} PTR {}", p.owner, p.target);
        let owner = self.hosts.iter().find(|h| {
            !h.removed
                && h.ipv6
                    .iter()
                    .any(|a| a.parse::<Ipv6Addr>().is_ok_and(|a| a == ip))
        });
        let why = match owner {
            Some(h) if format!("{}.{}", h.name, self.dom_abs) == p.target => format!(
                "{ip} is host {}'s ipv6 address, as the PTR says: dnsd publishes this PTR itself once the address lies in an IPv6 [[subnet]]",
                h.name
            ),
            Some(h) => format!(
                "{ip} is host {}'s ipv6 address, but the PTR names {}: the host file would publish {}.{}",
                h.name, p.target, h.name, self.dom_abs
            ),
            None => format!("no host has the ipv6 address {ip}: add it to the host's ipv6 list"),
        };
        self.un.push(p.src.unsupported(construct, why));
        true
    }
}
