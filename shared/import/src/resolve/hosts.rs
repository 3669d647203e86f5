//! Hosts: from A records, from dhcpd.conf reservations, for unnamed real servers; CNAMEs become
//! aliases; PTR records are compared with what the host file will publish.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use crate::emit::{DOption, DService};
use crate::facts::ptr_addr;
use crate::source::Src;

use super::state::{HostB, R, dashed, mac_str, to_label};

impl R<'_> {
    pub(super) fn zone_hosts(&mut self) {
        let raw = self.raw;
        // A records first, those a PTR confirms ahead of the others: they name the host.
        let confirmed = |name: &str, ip: IpAddr| {
            raw.ptrs.iter().any(|p| {
                p.target == name
                    && IpAddr::V4(ptr_addr(&p.owner).unwrap_or(Ipv4Addr::UNSPECIFIED)) == ip
            })
        };
        // File order, except that a name sharing its address with the name the PTR confirms
        // waits until that one has made the host (it then becomes an alias).
        let v4: Vec<_> = raw.addrs.iter().filter(|x| x.ip.is_ipv4()).collect();
        let has_confirmed = |ip: IpAddr| v4.iter().any(|y| y.ip == ip && confirmed(&y.name, y.ip));
        let (first, later): (Vec<_>, Vec<_>) = v4
            .iter()
            .partition(|x| confirmed(&x.name, x.ip) || !has_confirmed(x.ip));
        let a: Vec<_> = first.into_iter().chain(later).copied().collect();
        let default_ttl = raw.ttl.as_ref().map(|t| t.0);
        for rec in a
            .into_iter()
            .chain(raw.addrs.iter().filter(|x| x.ip.is_ipv6()))
        {
            let construct = format!(
                "{} {} {}",
                rec.name,
                if rec.ip.is_ipv4() { "A" } else { "AAAA" },
                rec.ip
            );
            if rec.ttl.is_some() && rec.ttl != default_ttl {
                self.un.push(rec.src.unsupported(
                    construct.clone(),
                    format!(
                        "its TTL {} differs from the default: the host file has one TTL for all records",
                        rec.ttl.unwrap_or(0)
                    ),
                ));
            }
            if rec.ip.is_loopback() || rec.ip.is_unspecified() {
                self.un.push(rec.src.unsupported(
                    construct,
                    "skipped: a loopback (or unspecified) address is no host of the LAN; as a host it would make a DHCP subnet on lo",
                ));
                continue;
            }
            let Some(label) = self.label(&rec.name) else {
                let why = if rec.name == self.dom_abs {
                    "an address at the zone apex cannot be a host (serve it from a zone-file)"
                        .to_owned()
                } else {
                    format!(
                        "`{}` is not a single label under {}",
                        rec.name, self.dom_abs
                    )
                };
                self.un.push(rec.src.unsupported(construct, why));
                continue;
            };
            let existing = self
                .hosts
                .iter()
                .position(|h| !h.removed && h.name == label);
            match rec.ip {
                IpAddr::V6(ip6) => {
                    match existing {
                        Some(i) => self.hosts[i].ipv6.push(ip6.to_string()),
                        // An AAAA before (or without) an A: a host with IPv6 addresses only, which
                        // an A record later in the zone completes.
                        None if self.add_name(&label) => self.hosts.push(HostB {
                            name: label,
                            notes: vec![format!("from {}", rec.src)],
                            ipv6: vec![ip6.to_string()],
                            from_zone: true,
                            src: Some(rec.src.clone()),
                            ..HostB::default()
                        }),
                        None => self.un.push(rec.src.unsupported(
                            construct,
                            format!("`{label}` is already used as an alias"),
                        )),
                    }
                }
                IpAddr::V4(ip) => {
                    if let Some(&j) = self.ip_owner.get(&ip) {
                        if self.hosts[j].name == label {
                            continue; // the same record twice
                        }
                        if existing.is_none() && self.add_name(&label) {
                            let owner = self.hosts[j].name.clone();
                            self.hosts[j].aliases.push(label.clone());
                            self.hosts[j].notes.push(format!(
                                "alias {label} was an A record for the same address ({}): it becomes a CNAME to {owner}",
                                rec.src
                            ));
                        } else {
                            self.un.push(rec.src.unsupported(
                                construct,
                                format!(
                                    "{ip} already belongs to host {}: one address, one host",
                                    self.hosts[j].name
                                ),
                            ));
                        }
                        continue;
                    }
                    match existing {
                        Some(i) => {
                            self.hosts[i].ips.push(ip);
                            self.ip_owner.insert(ip, i);
                        }
                        None => {
                            if !self.add_name(&label) {
                                self.un.push(rec.src.unsupported(
                                    construct,
                                    format!("`{label}` is already used as an alias"),
                                ));
                                continue;
                            }
                            self.ip_owner.insert(ip, self.hosts.len());
                            self.hosts.push(HostB {
                                name: label,
                                notes: vec![format!("from {}", rec.src)],
                                ips: vec![ip],
                                from_zone: true,
                                src: Some(rec.src.clone()),
                                ..HostB::default()
                            });
                        }
                    }
                }
            }
        }
    }

    pub(super) fn dhcp_hosts(&mut self) {
        let raw = self.raw;
        let zone_loaded = raw.domains.iter().any(|d| d.2 == 2);
        // Where each MAC was first reserved: a second `host` with it is listed, never merged.
        let mut macs: HashMap<[u8; 6], (String, Src)> = HashMap::new();
        for h0 in &raw.hosts {
            let construct = format!("host {}", h0.decl);
            let mut h = h0.clone();
            for n in &h0.fixed_names {
                let fq = if n.ends_with(&self.dom) && n.contains('.') {
                    format!("{n}.")
                } else {
                    format!("{n}.{}", self.dom_abs)
                };
                let found: Vec<Ipv4Addr> = raw
                    .addrs
                    .iter()
                    .filter(|a| a.name == fq || a.name == format!("{n}."))
                    .filter_map(|a| match a.ip {
                        IpAddr::V4(v) => Some(v),
                        IpAddr::V6(_) => None,
                    })
                    .collect();
                if found.is_empty() {
                    self.un.push(h0.src.unsupported(
                        format!("fixed-address {n}"),
                        "no imported zone gives this name an address: import the zone too, or write the address",
                    ));
                }
                for ip in found {
                    if !h.ips.contains(&ip) {
                        h.ips.push(ip);
                    }
                }
            }
            if h.ips.is_empty() {
                continue;
            }
            let h = &h;
            let wanted = h.host_name.clone().unwrap_or_else(|| h.decl.clone());
            let mut label = to_label(&wanted);
            if label.is_empty() {
                label = format!("host-{}", dashed(h.ips[0]));
            }
            // A second `host` with a MAC already reserved (ISC allows one per subnet): merging
            // would give one name the other's address and lose the other name, so the first
            // stays and this one is listed.
            if let Some((first, fsrc)) = h.mac.and_then(|m| macs.get(&m)) {
                let ips: Vec<String> = h.ips.iter().map(Ipv4Addr::to_string).collect();
                self.un.push(h.src.unsupported(
                    construct,
                    format!(
                        "hardware ethernet {} is already reserved for host `{first}` ({fsrc}); the host file reserves one host per MAC, so the first is kept and this one is not merged into it; if it is the same machine on another subnet, add {} to `{first}`'s ip list by hand",
                        mac_str(h.mac.unwrap_or_default()),
                        ips.join(", ")
                    ),
                ));
                continue;
            }
            let by_ip = h.ips.iter().find_map(|ip| self.ip_owner.get(ip).copied());
            let target = by_ip;
            let i = match target {
                Some(i) => {
                    let t = &self.hosts[i];
                    if t.mac.is_some() && h.mac.is_some() && t.mac != h.mac {
                        self.un.push(h.src.unsupported(
                            construct,
                            format!("its address is reserved for {} with another MAC", t.name),
                        ));
                        continue;
                    }
                    if t.name != label {
                        self.hosts[i]
                            .notes
                            .push(format!("dhcpd.conf calls it `{}` ({})", h.decl, h.src));
                    } else {
                        self.hosts[i]
                            .notes
                            .push(format!("reservation from {}", h.src));
                    }
                    i
                }
                None => {
                    let mut name = label.clone();
                    let mut n = 2;
                    while self.names.contains(&name) {
                        name = format!("{label}-{n}");
                        n += 1;
                    }
                    let mut notes = vec![format!("from {}", h.src)];
                    if name != wanted.to_ascii_lowercase() {
                        notes.push(self.guess(format!(
                            "guessed: name `{name}` made from `{wanted}` (a host name must be one DNS label, unique)"
                        )));
                    }
                    let dns = if zone_loaded {
                        notes.push("not in the zone file: set dns = true to publish it".into());
                        Some(false)
                    } else {
                        None
                    };
                    self.add_name(&name);
                    self.hosts.push(HostB {
                        name,
                        notes,
                        dns,
                        src: Some(h.src.clone()),
                        ..HostB::default()
                    });
                    self.hosts.len() - 1
                }
            };
            for ip in &h.ips {
                match self.ip_owner.get(ip) {
                    Some(&o) if o != i => self.un.push(h.src.unsupported(
                        format!("fixed-address {ip}"),
                        format!("already the address of {}", self.hosts[o].name),
                    )),
                    Some(_) => {}
                    None => {
                        self.ip_owner.insert(*ip, i);
                        self.hosts[i].ips.push(*ip);
                    }
                }
            }
            if let Some(m) = h.mac {
                macs.insert(m, (h.decl.clone(), h.src.clone()));
            }
            let t = &mut self.hosts[i];
            if t.mac.is_none() {
                t.mac = h.mac;
            }
            if t.client_id.is_none() {
                t.client_id.clone_from(&h.client_id);
            }
            for a in &h.ipv6 {
                if !t.ipv6.contains(&a.to_string()) {
                    t.ipv6.push(a.to_string());
                }
            }
            if t.duid.is_none() {
                t.duid.clone_from(&h.duid);
            }
            if t.boot_file.is_none() {
                t.boot_file.clone_from(&h.boot_file);
            }
            for o in &h.options {
                t.options.retain(|x| x.code != o.code);
                t.options.push(DOption::from_raw(o));
            }
        }
    }

    /// A host for a bare address (a real server nobody named).
    pub(super) fn host_for(&mut self, ip: Ipv4Addr, src: &Src) -> usize {
        if let Some(&i) = self.ip_owner.get(&ip)
            && !self.hosts[i].removed
        {
            return i;
        }
        // A reverse lookup in the imported data: the PTR record for the address.
        let by_ptr = self.raw.ptrs.iter().find_map(|p| {
            let l = self.label(&p.target)?;
            (ptr_addr(&p.owner) == Some(ip) && !self.names.contains(&l)).then(|| (l, p.src.clone()))
        });
        if let Some((name, psrc)) = by_ptr {
            self.add_name(&name);
            let note = self.guess(format!(
                "guessed: name `{name}` for real server {ip} from its PTR record ({psrc}); it gets an A record now"
            ));
            self.ip_owner.insert(ip, self.hosts.len());
            self.hosts.push(HostB {
                name,
                notes: vec![note],
                ips: vec![ip],
                src: Some(src.clone()),
                ..HostB::default()
            });
            return self.hosts.len() - 1;
        }
        let mut name = format!("rs-{}", dashed(ip));
        while self.names.contains(&name) {
            name.push('x');
        }
        self.add_name(&name);
        let note = self.guess(format!(
            "guessed: name `{name}` for real server {ip} ({src}): no zone or dhcpd.conf names this address"
        ));
        self.ip_owner.insert(ip, self.hosts.len());
        self.hosts.push(HostB {
            name,
            notes: vec![note, "not published in DNS (it was not in any zone)".into()],
            ips: vec![ip],
            dns: Some(false),
            src: Some(src.clone()),
            ..HostB::default()
        });
        self.hosts.len() - 1
    }

    pub(super) fn cnames(&mut self) {
        let raw = self.raw;
        for c in &raw.cnames {
            let construct = format!("{} CNAME {}", c.owner, c.target);
            let Some(alias) = self.label(&c.owner) else {
                self.un.push(c.src.unsupported(
                    construct,
                    format!("`{}` is not a single label under {}", c.owner, self.dom_abs),
                ));
                continue;
            };
            // Follow a chain of CNAMEs inside the zone to the host at its end.
            let mut t = c.target.clone();
            let mut hops = 0;
            while hops < 8
                && let Some(next) = raw.cnames.iter().find(|x| x.owner == t)
            {
                t.clone_from(&next.target);
                hops += 1;
            }
            let target = self.label(&t).and_then(|t| self.host_by_label(&t));
            match target {
                Some(i) if self.add_name(&alias) => {
                    if hops > 0 {
                        let n = format!(
                            "alias {alias} was a CNAME to {} ({}), itself an alias of {}: it now points at the host directly",
                            c.target, c.src, self.hosts[i].name
                        );
                        self.hosts[i].notes.push(n);
                    }
                    self.hosts[i].aliases.push(alias);
                    if self.hosts[i].dns == Some(false) {
                        self.hosts[i].dns = None;
                        self.hosts[i].notes.retain(|n| !n.starts_with("not in the zone"));
                    }
                }
                Some(_) => self.un.push(c.src.unsupported(construct, format!("`{alias}` is already a name in the host file"))),
                None => self.un.push(c.src.unsupported(
                    construct,
                    "the target is not a host of this domain (aliases point at hosts): serve it from a zone-file",
                )),
            }
        }
    }

    pub(super) fn ptrs(&mut self, services: &[(DService, Option<u8>)]) {
        let raw = self.raw;
        for p in &raw.ptrs {
            if self.ptr6(p) {
                continue;
            }
            let construct = format!("{} PTR {}", p.owner, p.target);
            let Some(ip) = ptr_addr(&p.owner) else {
                self.un.push(p.src.unsupported(
                    construct,
                    "not an IPv4 address's PTR name: reverse zones are generated from the hosts",
                ));
                continue;
            };
            let published = match self.ip_owner.get(&ip) {
                Some(&i) if !self.hosts[i].removed && self.hosts[i].dns != Some(false) => {
                    Some(format!("{}.{}", self.hosts[i].name, self.dom_abs))
                }
                _ => services
                    .iter()
                    .find(|(s, _)| s.vip == ip.to_string() && s.dns != Some(false))
                    .map(|(s, _)| format!("{}.{}", s.name, self.dom_abs)),
            };
            match published {
                Some(n) if n == p.target => {} // the host file generates exactly this PTR
                Some(n) => self.un.push(p.src.unsupported(
                    construct,
                    format!("disagrees with the A records: the host file will answer {n}"),
                )),
                None => self.un.push(p.src.unsupported(
                    construct,
                    "no published host has this address: reverse records are generated from the hosts",
                )),
            }
        }
    }
}
