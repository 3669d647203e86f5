//! Subnets: the declared ones (with their pools), guessed ones for addresses no subnet holds,
//! reservations kept out of dynamic ranges, and the subnets' DHCP settings.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::emit::{DOption, DPool, DService, DSubnet, Doc, dur};
use crate::facts::vip_net;
use crate::source::Src;

use super::state::{DPoolB, R, SubnetB, clamp_note};

impl R<'_> {
    pub(super) fn declared_subnets(&mut self) {
        let raw = self.raw;
        for s in &raw.subnets {
            let (Some(net), Some(src)) = (s.net, s.src.as_ref()) else {
                continue;
            };
            if !(8..=30).contains(&net.prefix_len()) {
                self.un.push(src.unsupported(
                    format!("subnet {net}"),
                    "the host file takes subnets from /8 to /30",
                ));
                continue;
            }
            if self.overlaps(net) {
                self.un
                    .push(src.unsupported(format!("subnet {net}"), "overlaps an earlier subnet"));
                continue;
            }
            let mut notes = vec![format!("from {src}")];
            notes.extend(s.notes.iter().cloned());
            let mut pools: Vec<DPoolB> = Vec::new();
            for p in &s.pools {
                let construct = format!("range {} {}", p.start, p.end);
                let (mut start, mut end) = (p.start, p.end);
                let mut note = format!(
                    "was: range{} {} {} ({})",
                    if p.bootp { " dynamic-bootp" } else { "" },
                    p.start,
                    p.end,
                    p.src
                );
                if start == net.network() {
                    start = Ipv4Addr::from(u32::from(start) + 1);
                    note.push_str("; the network address is left out");
                }
                if end == net.broadcast() {
                    end = Ipv4Addr::from(u32::from(end) - 1);
                    note.push_str("; the broadcast address is left out");
                }
                if start > end {
                    self.un.push(
                        p.src
                            .unsupported(construct, "holds only the network or broadcast address"),
                    );
                    continue;
                }
                pools.push(DPoolB {
                    start,
                    end,
                    bootp: p.bootp,
                    note,
                    src: p.src.clone(),
                });
            }
            self.subnets.push(SubnetB {
                net,
                raw: Some(s),
                notes,
                pools,
            });
        }
    }

    pub(super) fn guess_subnets(&mut self, services: &[(DService, Option<u8>)]) {
        let raw = self.raw;
        let mut addrs: Vec<(Ipv4Addr, Option<Src>)> = Vec::new();
        for h in self.hosts.iter().filter(|h| !h.removed) {
            for ip in &h.ips {
                addrs.push((*ip, h.src.clone()));
            }
        }
        for (s, _) in services {
            if let Ok(ip) = s.vip.parse() {
                addrs.push((ip, None));
            }
        }
        let mut hints: Vec<(Ipv4Net, String)> = raw
            .vips
            .iter()
            .filter_map(|v| {
                vip_net(v).map(|n| {
                    (
                        n,
                        format!("the VIP prefix in virtual_ipaddress ({})", v.src),
                    )
                })
            })
            .collect();
        hints.extend(
            raw.net_hints
                .iter()
                .filter(|h| (8..=30).contains(&h.0.prefix_len()))
                .map(|h| (h.0, format!("{} ({})", h.2, h.1))),
        );
        for (ip, _) in addrs {
            if self.subnet_of(ip).is_some() {
                continue;
            }
            let hint = hints
                .iter()
                .find(|(n, _)| n.contains(&ip) && !self.overlaps(*n))
                .cloned();
            let (net, why) = match hint {
                Some((n, why)) => (n, format!("guessed: network {n} from {why}")),
                None => {
                    let net = (8..=30u8)
                        .rev()
                        .filter_map(|p| Ipv4Net::new(ip, p).ok().map(|n| n.trunc()))
                        .filter(|n| n.network() != ip && n.broadcast() != ip && !self.overlaps(*n))
                        .min_by_key(|n| n.prefix_len().abs_diff(24));
                    let Some(net) = net else { continue };
                    (
                        net,
                        format!(
                            "guessed: network {net} around {ip} (no dhcpd.conf subnet covers it)"
                        ),
                    )
                }
            };
            let note = self.guess(why);
            self.subnets.push(SubnetB {
                net,
                raw: None,
                notes: vec![
                    note,
                    "no DHCP pool: add one if this network should get dynamic addresses".into(),
                ],
                pools: Vec::new(),
            });
        }
    }

    /// Addresses valid in their subnets; reservations kept out of dynamic ranges.
    pub(super) fn check_hosts(&mut self) {
        for hi in 0..self.hosts.len() {
            if self.hosts[hi].removed {
                continue;
            }
            let ips = std::mem::take(&mut self.hosts[hi].ips);
            let mut keep = Vec::new();
            for ip in ips {
                let Some(si) = self.subnet_of(ip) else {
                    self.drop_ip(hi, ip, "no subnet could be found for it");
                    continue;
                };
                let net = self.subnets[si].net;
                if ip == net.network() || ip == net.broadcast() {
                    self.drop_ip(
                        hi,
                        ip,
                        &format!("the network or broadcast address of {net}"),
                    );
                    continue;
                }
                let reserved = self.hosts[hi].mac.is_some() || self.hosts[hi].client_id.is_some();
                if reserved {
                    let name = self.hosts[hi].name.clone();
                    let pools = std::mem::take(&mut self.subnets[si].pools);
                    let mut out = Vec::new();
                    for p in pools {
                        if p.start <= ip && ip <= p.end {
                            let note =
                                format!("{}; split around {ip}, reserved for {name}", p.note);
                            if p.start < ip {
                                out.push(DPoolB {
                                    end: Ipv4Addr::from(u32::from(ip) - 1),
                                    note: note.clone(),
                                    ..p.clone()
                                });
                            }
                            if ip < p.end {
                                out.push(DPoolB {
                                    start: Ipv4Addr::from(u32::from(ip) + 1),
                                    note,
                                    ..p
                                });
                            }
                        } else {
                            out.push(p);
                        }
                    }
                    self.subnets[si].pools = out;
                }
                keep.push(ip);
            }
            // A host left with no address at all is dropped (IPv6-only hosts stay).
            if keep.is_empty() && self.hosts[hi].ipv6.is_empty() {
                self.hosts[hi].removed = true;
                for a in std::mem::take(&mut self.hosts[hi].aliases) {
                    self.names.remove(&a);
                }
            }
            self.hosts[hi].ips = keep;
        }
    }

    pub(super) fn drop_ip(&mut self, hi: usize, ip: Ipv4Addr, why: &str) {
        let h = &self.hosts[hi];
        let src = h
            .src
            .clone()
            .unwrap_or_else(|| Src::new(&std::sync::Arc::from(std::path::Path::new("-")), 0));
        self.un
            .push(src.unsupported(format!("{} {ip}", h.name), why.to_owned()));
        self.ip_owner.remove(&ip);
    }

    pub(super) fn finish_subnets(&mut self, doc: &mut Doc) {
        let subnets = std::mem::take(&mut self.subnets);
        for s in subnets {
            let mut d = DSubnet {
                src: s.raw.and_then(|r| r.src.clone()),
                notes: s.notes,
                network: s.net.to_string(),
                pools: s
                    .pools
                    .into_iter()
                    .map(|p| DPool {
                        src: p.src,
                        note: p.note,
                        start: p.start.to_string(),
                        end: p.end.to_string(),
                        bootp: p.bootp,
                    })
                    .collect(),
                ..DSubnet::default()
            };
            if let Some(r) = s.raw {
                d.key_srcs.clone_from(&r.key_srcs);
                d.routers = r.routers.iter().map(Ipv4Addr::to_string).collect();
                d.dns = r.dns.iter().map(Ipv4Addr::to_string).collect();
                d.ntp = r.ntp.iter().map(Ipv4Addr::to_string).collect();
                d.domain = r.domain.clone().filter(|x| *x != self.dom);
                d.search.clone_from(&r.search);
                d.broadcast = r
                    .broadcast
                    .filter(|b| *b != s.net.broadcast())
                    .map(|b| b.to_string());
                d.mtu = r.mtu;
                let lease = r.lease.map(|l| {
                    let mut n = Vec::new();
                    let c = clamp_note(l, 60, 366 * 86400, "lease", &mut n);
                    (
                        c,
                        if n.is_empty() {
                            format!("ISC default-lease-time {l}")
                        } else {
                            n.join("; ")
                        },
                    )
                });
                let max = r.max_lease.map(|l| {
                    let mut n = Vec::new();
                    let mut c = clamp_note(l, 60, 366 * 86400, "max-lease", &mut n);
                    if let Some((le, _)) = lease
                        && c < le
                    {
                        n.push(format!(
                            "max-lease-time {l} was shorter than the lease: set to {}",
                            dur(le)
                        ));
                        c = le;
                    }
                    (
                        c,
                        if n.is_empty() {
                            format!("ISC max-lease-time {l}")
                        } else {
                            n.join("; ")
                        },
                    )
                });
                // Without max-lease the host file's default is max(lease, 1d): keep ISC's ordering.
                d.lease = lease;
                d.max_lease = max;
                d.authoritative = r.authoritative;
                d.next_server = r.next_server.map(|n| n.to_string());
                d.boot_file.clone_from(&r.boot_file);
                d.options = r.options.iter().map(DOption::from_raw).collect();
            }
            doc.subnets.push(d);
        }
    }
}
