//! `[dns]`: the zones built from the hosts, services and subnets, and the DNS server's settings.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use ipnet::{IpNet, Ipv6Net};

use super::values::{Validator, span};
use crate::model::*;
use crate::model6::Dhcp6Subnet;
use crate::names::{
    fqdn, is_dns_name, ptr_name, ptr_name6, reverse_origin, reverse_origin6, reverse_zone6,
    reverse_zones,
};
use crate::wire::{self, S};

impl Validator {
    /// The DNS server's view: SOA and NS from `[dns]`, A/AAAA/CNAME/PTR from hosts and services.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn dns(
        &mut self,
        nw: Option<&wire::Dns>,
        domain: &str,
        ttl: u32,
        hosts: &[Host],
        services: &[VirtualService],
        service_dns: &[bool],
        subnets: &[DhcpSubnet],
        subnets6: &[Dhcp6Subnet],
        server: &Option<String>,
        server_ips: &[Ipv4Addr],
        keys: &BTreeMap<String, TsigKey>,
    ) -> DnsView {
        let host_names: HashMap<&str, &Host> = hosts.iter().map(|h| (h.name.as_str(), h)).collect();
        let mut ns_names = Vec::new();
        for n in nw.map(|n| n.ns.as_slice()).unwrap_or_default() {
            let t = n.get_ref().trim().to_ascii_lowercase();
            if t.contains('.') {
                if !is_dns_name(&t) {
                    self.d.push(
                        span(n),
                        format!("ns `{t}` is not a valid domain name"),
                        "name a host of this file or a full domain name",
                    );
                }
                ns_names.push(format!("{}.", t.trim_end_matches('.')));
            } else if host_names
                .get(t.as_str())
                .is_some_and(|h| !h.ips.is_empty())
            {
                ns_names.push(fqdn(&t, domain));
            } else {
                self.d.push(
                    span(n),
                    format!("ns `{t}` is not a host with an IPv4 address"),
                    "name a [host.NAME] of this file (so the zone has its glue)",
                );
            }
        }
        if ns_names.is_empty() {
            ns_names.push(match server {
                Some(s) => fqdn(s, domain),
                None => fqdn("ns", domain),
            });
        }
        let contact = nw.and_then(|n| n.contact.as_ref()).map_or_else(
            || format!("hostmaster.{domain}."),
            |c| {
                let t = c.get_ref().replacen('@', ".", 1);
                if !is_dns_name(&t) {
                    self.d.push(
                        span(c),
                        format!("contact `{}` is not a mailbox", c.get_ref()),
                        "write e.g. \"hostmaster@example.com\"",
                    );
                }
                format!("{}.", t.trim_end_matches('.').to_ascii_lowercase())
            },
        );
        let secs =
            |v: &mut Validator, s: Option<&S<String>>, d: u64, min: u64, max: u64, what: &str| {
                v.duration(
                    &s.cloned(),
                    Duration::from_secs(d),
                    Duration::from_secs(min),
                    Duration::from_secs(max),
                    what,
                )
                .as_secs() as u32
            };
        let soa = Soa {
            mname: ns_names[0].clone(),
            rname: contact,
            refresh: secs(
                self,
                nw.and_then(|n| n.refresh.as_ref()),
                3600,
                60,
                30 * 86400,
                "refresh",
            ),
            retry: secs(
                self,
                nw.and_then(|n| n.retry.as_ref()),
                900,
                10,
                7 * 86400,
                "retry",
            ),
            expire: secs(
                self,
                nw.and_then(|n| n.expire.as_ref()),
                14 * 86400,
                3600,
                365 * 86400,
                "expire",
            ),
            minimum: secs(
                self,
                nw.and_then(|n| n.negative_ttl.as_ref()),
                300,
                0,
                86400,
                "negative-ttl",
            ),
            ttl,
        };
        let apex = format!("{domain}.");
        let mut fwd = Vec::new();
        for ns in &ns_names {
            fwd.push(Record {
                name: apex.clone(),
                ttl,
                data: RecordData::Ns(ns.clone()),
            });
        }
        let mut ptrs: Vec<(Ipv4Addr, String)> = Vec::new();
        let mut ptrs6: Vec<(Ipv6Addr, String)> = Vec::new();
        for h in hosts.iter().filter(|h| h.dns) {
            let name = fqdn(&h.name, domain);
            for ip in &h.ips {
                fwd.push(Record {
                    name: name.clone(),
                    ttl,
                    data: RecordData::A(*ip),
                });
                ptrs.push((*ip, name.clone()));
            }
            for ip in &h.ipv6 {
                fwd.push(Record {
                    name: name.clone(),
                    ttl,
                    data: RecordData::Aaaa(*ip),
                });
                ptrs6.push((*ip, name.clone()));
            }
            for a in &h.aliases {
                fwd.push(Record {
                    name: fqdn(a, domain),
                    ttl,
                    data: RecordData::Cname(name.clone()),
                });
            }
        }
        for (s, publish) in services.iter().zip(service_dns) {
            if *publish && !s.vip.is_unspecified() {
                let name = fqdn(&s.name, domain);
                // A dual-stack service is two entries: an A and an AAAA record.
                let data = match s.vip {
                    IpAddr::V4(a) => RecordData::A(a),
                    IpAddr::V6(a) => RecordData::Aaaa(a),
                };
                let same = |r: &Record| {
                    r.name == name
                        && std::mem::discriminant(&r.data) == std::mem::discriminant(&data)
                };
                if !fwd.iter().any(same) {
                    fwd.push(Record {
                        name: name.clone(),
                        ttl,
                        data,
                    });
                    match s.vip {
                        IpAddr::V4(a) => ptrs.push((a, name)),
                        IpAddr::V6(a) => ptrs6.push((a, name)),
                    }
                }
            }
        }
        fwd.sort_by(|a, b| a.name.cmp(&b.name));
        let mut zones = vec![Zone {
            origin: apex,
            kind: ZoneKind::Forward,
            soa: soa.clone(),
            records: fwd,
        }];
        for s in subnets {
            for rz in reverse_zones(s.network) {
                let origin = reverse_origin(rz);
                if zones.iter().any(|z| z.origin == origin) {
                    continue;
                }
                let mut recs: Vec<Record> = ns_names
                    .iter()
                    .map(|ns| Record {
                        name: origin.clone(),
                        ttl,
                        data: RecordData::Ns(ns.clone()),
                    })
                    .collect();
                for (ip, name) in &ptrs {
                    if rz.contains(ip) {
                        recs.push(Record {
                            name: ptr_name(*ip),
                            ttl,
                            data: RecordData::Ptr(name.clone()),
                        });
                    }
                }
                recs.sort_by(|a, b| a.name.cmp(&b.name));
                zones.push(Zone {
                    origin,
                    kind: ZoneKind::Reverse(rz),
                    soa: soa.clone(),
                    records: recs,
                });
            }
        }
        zones.extend(reverse6(subnets6, &ns_names, &ptrs6, &soa, ttl));

        let listen: Vec<SocketAddr> = match nw.map(|n| n.listen.as_slice()).unwrap_or_default() {
            [] => {
                let mut l: Vec<SocketAddr> = server_ips
                    .iter()
                    .map(|ip| SocketAddr::from((*ip, 53)))
                    .collect();
                l.push(SocketAddr::from(([127, 0, 0, 1], 53)));
                // The server host's IPv6 addresses and ::1 as well.
                let server6 = server
                    .as_deref()
                    .and_then(|s| host_names.get(s))
                    .map(|h| h.ipv6.as_slice())
                    .unwrap_or_default();
                l.extend(server6.iter().map(|ip| SocketAddr::from((*ip, 53))));
                l.push(SocketAddr::from((Ipv6Addr::LOCALHOST, 53)));
                l
            }
            ls => ls
                .iter()
                .filter_map(|s| self.sockaddr(s, 53, "listen address"))
                .collect(),
        };
        let upstream = nw
            .map(|n| n.upstream.as_slice())
            .unwrap_or_default()
            .iter()
            .filter_map(|s| self.sockaddr(s, 53, "upstream"))
            .collect();
        let allow_recursion = match nw.and_then(|n| n.allow_recursion.as_ref()) {
            Some(v) => v
                .iter()
                .filter_map(|s| self.net(s, "allow-recursion network"))
                .collect(),
            None => {
                let mut v: Vec<IpNet> = subnets.iter().map(|s| IpNet::V4(s.network)).collect();
                v.extend(subnets6.iter().map(|s| IpNet::V6(s.network)));
                v.push("127.0.0.0/8".parse().expect("literal"));
                v.push("::1/128".parse().expect("literal"));
                v
            }
        };
        let update_keys = nw
            .map(|n| n.update_keys.as_slice())
            .unwrap_or_default()
            .iter()
            .filter_map(|k| self.key_ref(k, keys))
            .collect();
        let secondaries = nw
            .map(|n| n.secondary.as_slice())
            .unwrap_or_default()
            .iter()
            .filter_map(|s| {
                let address = self.sockaddr(&s.address, 53, "secondary")?;
                let key = s.key.as_ref().and_then(|k| self.key_ref(k, keys));
                Some(Secondary {
                    address,
                    key,
                    notify: s.notify.unwrap_or(true),
                })
            })
            .collect();
        let zone_files = nw
            .map(|n| n.zone_file.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|z| ZoneFileRef {
                path: self.path(Some(z.path.get_ref()), ""),
                origin: z.origin.as_ref().map_or_else(
                    || format!("{domain}."),
                    |o| format!("{}.", self.dns_name(o, "zone origin")),
                ),
            })
            .collect();
        let rw = nw.and_then(|n| n.rrl.as_ref());
        let rrl = RrlSettings {
            rate: self.int(
                &rw.and_then(|r| r.rate.clone()),
                0,
                0,
                1_000_000,
                "rrl rate",
            ) as u32,
            slip: self.int(&rw.and_then(|r| r.slip.clone()), 2, 0, 10, "rrl slip") as u32,
            window: self.duration(
                &rw.and_then(|r| r.window.clone()),
                Duration::from_secs(15),
                Duration::from_secs(1),
                Duration::from_secs(3600),
                "rrl window",
            ),
            ipv4_prefix: self.int(
                &rw.and_then(|r| r.ipv4_prefix.clone()),
                24,
                8,
                32,
                "rrl ipv4-prefix",
            ) as u8,
            ipv6_prefix: self.int(
                &rw.and_then(|r| r.ipv6_prefix.clone()),
                56,
                1,
                128,
                "rrl ipv6-prefix",
            ) as u8,
            exempt: rw
                .map(|r| r.exempt.as_slice())
                .unwrap_or_default()
                .iter()
                .filter_map(|s| self.net(s, "rrl exempt network"))
                .collect(),
        };
        DnsView {
            domain: format!("{domain}."),
            zones,
            listen,
            upstream,
            allow_recursion,
            update_keys,
            secondaries,
            zone_files,
            rrl,
            store: self.path(
                nw.and_then(|n| n.store.as_deref()),
                "/var/lib/dnsd/dnsd.redb",
            ),
            metrics: nw
                .and_then(|n| n.metrics.as_ref())
                .and_then(|m| self.sockaddr(m, 9168, "metrics")),
            control_socket: self.path(
                nw.and_then(|n| n.control_socket.as_deref()),
                "/run/dnsd/control.sock",
            ),
        }
    }
}

/// The ip6.arpa zones of the IPv6 subnets (one per nibble-aligned enclosing prefix, shared by
/// subnets in the same one), with NS records and the PTRs of the host table's `ipv6` addresses,
/// each PTR in the most specific zone holding it (a /64 zone nested in a /60 one takes its own).
fn reverse6(
    subnets6: &[Dhcp6Subnet],
    ns_names: &[String],
    ptrs6: &[(Ipv6Addr, String)],
    soa: &Soa,
    ttl: u32,
) -> Vec<Zone> {
    let mut nets: Vec<Ipv6Net> = subnets6.iter().map(|s| reverse_zone6(s.network)).collect();
    let mut seen = Vec::new();
    nets.retain(|n| {
        let fresh = !seen.contains(n);
        seen.push(*n);
        fresh
    });
    let mut zones = Vec::new();
    for rz in &nets {
        let origin = reverse_origin6(*rz);
        let mut recs: Vec<Record> = ns_names
            .iter()
            .map(|ns| Record {
                name: origin.clone(),
                ttl,
                data: RecordData::Ns(ns.clone()),
            })
            .collect();
        for (ip, name) in ptrs6 {
            let best = nets
                .iter()
                .filter(|n| n.contains(ip))
                .max_by_key(|n| n.prefix_len());
            if best == Some(rz) {
                recs.push(Record {
                    name: ptr_name6(*ip),
                    ttl,
                    data: RecordData::Ptr(name.clone()),
                });
            }
        }
        recs.sort_by(|a, b| a.name.cmp(&b.name));
        zones.push(Zone {
            origin,
            kind: ZoneKind::Reverse6(*rz),
            soa: soa.clone(),
            records: recs,
        });
    }
    zones
}
