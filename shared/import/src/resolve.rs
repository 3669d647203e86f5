//! From the facts of one or several inputs to one consistent host file.
//!
//! Every rule of `table.rs` is anticipated here (addresses inside subnets, unique names, addresses
//! and MACs, reservations outside dynamic ranges, value ranges), so an import always yields a file
//! that passes `--check`: what cannot be made to fit is listed as unsupported, and what had to be
//! chosen is commented as a guess.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

use base64::Engine as _;
use ipnet::Ipv4Net;

use crate::emit::{
    DBackend, DCheck, DDdns, DDns, DHost, DKey, DOption, DPool, DService, DSubnet, DVrrp, Doc, dur,
    dur_ms,
};
use crate::facts::{CheckType, Raw, RawSubnet, ptr_addr, vip_net};
use crate::source::{Src, Unsupported};
use hostfile::{is_dns_name, is_label};

struct SubnetB<'a> {
    net: Ipv4Net,
    raw: Option<&'a RawSubnet>,
    notes: Vec<String>,
    pools: Vec<DPoolB>,
}

#[derive(Clone)]
struct DPoolB {
    start: Ipv4Addr,
    end: Ipv4Addr,
    bootp: bool,
    note: String,
}

#[derive(Default)]
struct HostB {
    name: String,
    notes: Vec<String>,
    ips: Vec<Ipv4Addr>,
    ipv6: Vec<String>,
    mac: Option<[u8; 6]>,
    client_id: Option<String>,
    aliases: Vec<String>,
    dns: Option<bool>,
    boot_file: Option<String>,
    options: Vec<DOption>,
    from_zone: bool,
    removed: bool,
    src: Option<Src>,
}

struct R<'a> {
    raw: &'a Raw,
    dom: String,
    dom_abs: String,
    un: Vec<Unsupported>,
    guesses: Vec<String>,
    subnets: Vec<SubnetB<'a>>,
    hosts: Vec<HostB>,
    /// Every name in use (host names, aliases, service names).
    names: HashSet<String>,
    ip_owner: HashMap<Ipv4Addr, usize>,
}

fn mac_str(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn dashed(ip: Ipv4Addr) -> String {
    ip.to_string().replace('.', "-")
}

/// A DNS label from whatever a config called the host (`Web_1.example.com` -> `web-1`).
fn to_label(s: &str) -> String {
    let first = s.split('.').next().unwrap_or("").to_ascii_lowercase();
    let mut l: String = first
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    l = l.trim_matches('-').to_owned();
    l.truncate(63);
    l.trim_matches('-').to_owned()
}

fn clamp_note(v: u64, min: u64, max: u64, what: &str, notes: &mut Vec<String>) -> u64 {
    let c = v.clamp(min, max);
    if c != v {
        notes.push(format!(
            "{what} {} was outside {}..{}: set to {}",
            dur(v),
            dur(min),
            dur(max),
            dur(c)
        ));
    }
    c
}

pub(crate) fn resolve(raw: &Raw) -> (Doc, Vec<Unsupported>, Vec<String>) {
    let mut doc = Doc::default();
    let mut guesses = Vec::new();
    // Domain: a forward zone's name wins over dhcpd's domain-name.
    let mut cands: Vec<&(String, Src, u8)> = raw.domains.iter().collect();
    cands.sort_by_key(|c| std::cmp::Reverse(c.2));
    let dom = match cands.iter().find(|c| is_dns_name(&c.0)) {
        Some(c) => {
            doc.domain_note = Some(format!(
                "from {} ({})",
                if c.2 == 2 {
                    "the zone's SOA"
                } else {
                    "option domain-name"
                },
                c.1
            ));
            c.0.clone()
        }
        None if !raw.ptrs.is_empty() => {
            // Only reverse data: the domain most PTR records point into.
            let mut count: HashMap<String, usize> = HashMap::new();
            for p in &raw.ptrs {
                if let Some((_, parent)) = p.target.trim_end_matches('.').split_once('.')
                    && is_dns_name(parent)
                {
                    *count.entry(parent.to_owned()).or_default() += 1;
                }
            }
            let best = count
                .into_iter()
                .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)));
            let (d, note) = match best {
                Some((d, _)) => {
                    let g = format!("guessed: {d}, the domain the PTR records point into");
                    (d, g)
                }
                None => (
                    "lan".to_owned(),
                    "guessed: no input names a domain; replace \"lan\" with yours".to_owned(),
                ),
            };
            guesses.push(note.clone());
            doc.domain_note = Some(note);
            d
        }
        None => {
            let g = "guessed: no input names a domain; replace \"lan\" with yours".to_owned();
            guesses.push(g.clone());
            doc.domain_note = Some(g);
            "lan".to_owned()
        }
    };
    let mut r = R {
        raw,
        dom_abs: format!("{dom}."),
        dom,
        un: Vec::new(),
        guesses,
        subnets: Vec::new(),
        hosts: Vec::new(),
        names: HashSet::new(),
        ip_owner: HashMap::new(),
    };
    r.declared_subnets();
    r.zone_hosts();
    r.dhcp_hosts();
    let services = r.services(&mut doc);
    r.guess_subnets(&services);
    r.check_hosts();
    let services = r.prune_services(services);
    r.cnames();
    r.ptrs(&services);
    r.dns(&mut doc);
    r.keys_and_ddns(&mut doc);
    r.vrrp(&mut doc, &services);
    r.finish_subnets(&mut doc);
    for h in r.hosts.iter().filter(|h| !h.removed && !h.ips.is_empty()) {
        doc.hosts.push(DHost {
            notes: h.notes.clone(),
            name: h.name.clone(),
            ips: h.ips.iter().map(Ipv4Addr::to_string).collect(),
            ipv6: h.ipv6.clone(),
            mac: h.mac.map(mac_str),
            client_id: h.client_id.clone(),
            aliases: h.aliases.clone(),
            dns: h.dns,
            boot_file: h.boot_file.clone(),
            options: h.options.clone(),
        });
    }
    doc.services = services.into_iter().map(|(s, _)| s).collect();
    doc.ping_check = raw.ping_check;
    if let Some((t, src)) = &raw.ttl {
        let mut notes = Vec::new();
        let t = clamp_note(u64::from(*t), 1, 7 * 86400, "ttl", &mut notes);
        doc.ttl = Some(t as u32);
        for n in notes {
            r.un.push(src.unsupported("$TTL", n));
        }
    }
    doc.domain = r.dom.clone();
    (doc, r.un, r.guesses)
}

impl<'a> R<'a> {
    fn guess(&mut self, text: String) -> String {
        self.guesses.push(text.clone());
        text
    }

    fn subnet_of(&self, ip: Ipv4Addr) -> Option<usize> {
        self.subnets.iter().position(|s| s.net.contains(&ip))
    }

    fn overlaps(&self, net: Ipv4Net) -> bool {
        self.subnets
            .iter()
            .any(|s| s.net.contains(&net.network()) || net.contains(&s.net.network()))
    }

    /// The single label of `fqdn` under the domain, if it is one.
    fn label(&self, fqdn: &str) -> Option<String> {
        let l = fqdn.strip_suffix(&format!(".{}", self.dom_abs))?;
        is_label(l).then(|| l.to_owned())
    }

    fn declared_subnets(&mut self) {
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
                if !net.contains(&p.start) || !net.contains(&p.end) {
                    self.un.push(
                        p.src
                            .unsupported(construct, format!("not inside subnet {net}")),
                    );
                    continue;
                }
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
                let clash = self
                    .subnets
                    .iter()
                    .flat_map(|s| s.pools.iter())
                    .chain(pools.iter())
                    .any(|o| o.start <= end && start <= o.end);
                if clash {
                    self.un
                        .push(p.src.unsupported(construct, "overlaps another range"));
                    continue;
                }
                pools.push(DPoolB {
                    start,
                    end,
                    bootp: p.bootp,
                    note,
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

    fn add_name(&mut self, n: &str) -> bool {
        self.names.insert(n.to_owned())
    }

    fn zone_hosts(&mut self) {
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
                IpAddr::V6(ip6) => match existing {
                    Some(i) => self.hosts[i].ipv6.push(ip6.to_string()),
                    None => self.un.push(rec.src.unsupported(
                        construct,
                        "an IPv6-only name: every host in the host file needs an IPv4 address",
                    )),
                },
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

    fn dhcp_hosts(&mut self) {
        let raw = self.raw;
        let zone_loaded = raw.domains.iter().any(|d| d.2 == 2);
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
            // Same machine declared again (ISC allows one MAC per subnet): join it.
            let by_mac = h.mac.and_then(|m| {
                self.hosts
                    .iter()
                    .position(|x| !x.removed && x.mac == Some(m))
            });
            let by_ip = h.ips.iter().find_map(|ip| self.ip_owner.get(ip).copied());
            let target = match (by_ip, by_mac) {
                (Some(a), Some(b)) if a != b => {
                    self.un.push(h.src.unsupported(
                        construct,
                        format!(
                            "its address belongs to {} but its MAC to {}",
                            self.hosts[a].name, self.hosts[b].name
                        ),
                    ));
                    continue;
                }
                (Some(a), _) | (None, Some(a)) => Some(a),
                (None, None) => None,
            };
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
            let t = &mut self.hosts[i];
            if t.mac.is_none() {
                t.mac = h.mac;
            }
            if t.client_id.is_none() {
                t.client_id.clone_from(&h.client_id);
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
    fn host_for(&mut self, ip: Ipv4Addr, src: &Src) -> usize {
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

    fn services(&mut self, doc: &mut Doc) -> Vec<(DService, Option<u8>)> {
        let _ = doc;
        let raw = self.raw;
        let mut out: Vec<(DService, Option<u8>)> = Vec::new();
        let mut taken: HashSet<(Ipv4Addr, u16, bool)> = HashSet::new();
        let vips: HashSet<Ipv4Addr> = raw.services.iter().map(|s| *s.vip.ip()).collect();
        for s in &raw.services {
            let vip = *s.vip.ip();
            let construct = format!("virtual_server {} {}", vip, s.vip.port());
            if !taken.insert((vip, s.vip.port(), s.udp)) {
                self.un.push(s.src.unsupported(
                    construct,
                    "a second virtual_server for the same address and port",
                ));
                continue;
            }
            if s.reals.is_empty() {
                self.un.push(s.src.unsupported(
                    construct,
                    "no real_server: a service needs at least one backend",
                ));
                continue;
            }
            let mut notes = vec![format!("from {}", s.src)];
            let mut dns = None;
            // The name: the zone's A record for the VIP, else a guess.
            let name = match self.ip_owner.get(&vip).copied() {
                Some(i) if self.hosts[i].mac.is_some() || !self.hosts[i].from_zone => {
                    self.un.push(s.src.unsupported(
                        construct,
                        format!(
                            "the VIP {vip} is the address of host {}",
                            self.hosts[i].name
                        ),
                    ));
                    continue;
                }
                Some(i) => {
                    let h = &mut self.hosts[i];
                    if h.ips.len() > 1 {
                        self.un.push(s.src.unsupported(
                            construct,
                            format!(
                                "the VIP {vip} is one of several addresses of host {}",
                                h.name
                            ),
                        ));
                        continue;
                    }
                    h.removed = true;
                    let base = h.name.clone();
                    for a in std::mem::take(&mut h.aliases) {
                        self.names.remove(&a);
                        self.un.push(h.src.clone().map_or_else(
                            || s.src.unsupported(a.clone(), "an alias of a VIP name"),
                            |src| {
                                src.unsupported(
                                    format!("{a} (alias of {base})"),
                                    "services have no aliases: add a CNAME in a zone-file",
                                )
                            },
                        ));
                    }
                    notes.push(format!("named after the zone's A record for {vip}"));
                    let mut name = base.clone();
                    if out.iter().any(|(o, _)| o.name == name) {
                        name = format!("{base}-{}", s.vip.port());
                        while self.names.contains(&name) {
                            name.push('x');
                        }
                        self.add_name(&name);
                        dns = Some(false);
                    }
                    name
                }
                None => {
                    let mut name = format!("vs-{}-{}", dashed(vip), s.vip.port());
                    while self.names.contains(&name) {
                        name.push('x');
                    }
                    self.add_name(&name);
                    notes.push(self.guess(format!(
                        "guessed: name `{name}` (no zone names {vip}); not published in DNS"
                    )));
                    dns = Some(false);
                    name
                }
            };
            let mut backends: Vec<(String, u16, u32)> = Vec::new();
            for rs in &s.reals {
                if vips.contains(rs.addr.ip()) {
                    self.un.push(rs.src.unsupported(
                        format!("real_server {}", rs.addr),
                        "its address is a VIP: a backend must be a host of its own",
                    ));
                    continue;
                }
                let i = self.host_for(*rs.addr.ip(), &rs.src);
                let hn = self.hosts[i].name.clone();
                if backends.iter().any(|b| b.0 == hn && b.1 == rs.addr.port()) {
                    self.un.push(
                        rs.src
                            .unsupported(format!("real_server {}", rs.addr), "listed twice"),
                    );
                    continue;
                }
                let w = rs.weight.unwrap_or(1);
                if w > 1000 {
                    notes.push(format!(
                        "weight {w} of {} lowered to 1000 (the maximum)",
                        rs.addr
                    ));
                }
                backends.push((hn, rs.addr.port(), w.min(1000)));
            }
            let ports: HashSet<u16> = backends.iter().map(|b| b.1).collect();
            let backend_port = (ports.len() == 1).then(|| backends[0].1);
            let total: u32 = backends.iter().map(|b| b.2).sum();
            let mut ds = DService {
                name,
                vip: vip.to_string(),
                port: s.vip.port(),
                udp: s.udp,
                backend_port: backend_port.filter(|p| *p != s.vip.port()),
                backends: backends
                    .iter()
                    .map(|(h, p, w)| DBackend {
                        host: h.clone(),
                        port: if backend_port.is_some() {
                            None
                        } else {
                            Some(*p)
                        },
                        weight: (*w != 1).then_some(*w),
                    })
                    .collect(),
                dns,
                ..DService::default()
            };
            // Scheduler.
            let sched = s.scheduler.clone().unwrap_or_else(|| "rr".into());
            let mapped = match sched.as_str() {
                "rr" | "wrr" | "sh" => Some(sched.clone()),
                "lc" | "wlc" => Some("lc".into()),
                "mh" => Some("sh".into()),
                _ => None,
            };
            match mapped {
                Some(m) if m == "lc" && s.udp => {
                    self.un.push(s.src.unsupported(
                        format!("lb_algo {sched}"),
                        "least-connection needs the TCP proxy data plane; this UDP service uses rr",
                    ));
                    ds.scheduler = Some("rr".into());
                }
                Some(m) if m == "lc" => {
                    notes.push(format!(
                        "lb_algo {sched}: least-connection runs in the user-space proxy data plane"
                    ));
                    ds.scheduler = Some(m);
                    ds.dataplane = Some("proxy");
                }
                Some(m) => ds.scheduler = Some(m),
                None => {
                    self.un.push(s.src.unsupported(
                        format!("lb_algo {sched}"),
                        "not available (rr, wrr, lc, sh): using rr",
                    ));
                    ds.scheduler = Some("rr".into());
                }
            }
            if let Some(p) = s.persistence {
                ds.persistence = Some(clamp_note(p.max(1), 1, 86400, "persistence", &mut notes));
            }
            ds.sorry = s.sorry.map(|a| a.to_string());
            if let Some(q) = s.quorum {
                if q > total {
                    self.un.push(s.src.unsupported(
                        format!("quorum {q}"),
                        format!(
                            "exceeds the total weight {total}: the service could never come up"
                        ),
                    ));
                } else {
                    ds.quorum = Some(q);
                }
            }
            // One check per service: the first real server's.
            let first = s.reals.iter().find_map(|r| r.check.as_ref());
            for rs in &s.reals {
                if rs.check.as_ref() != first {
                    self.un.push(rs.src.unsupported(
                        format!("real_server {} check", rs.addr),
                        "differs from the first real server's: the host file has one check per service",
                    ));
                }
            }
            let interval = s.interval_ms.map(|i| {
                let c = i.clamp(100, 3_600_000);
                if c != i {
                    notes.push(format!("delay_loop {} clamped to {}", dur_ms(i), dur_ms(c)));
                }
                c
            });
            ds.check = Some(match first {
                None => {
                    notes.push(
                        "keepalived had no check for these real servers: none here either".into(),
                    );
                    DCheck {
                        kind: "none",
                        ..DCheck::default()
                    }
                }
                Some(c) => {
                    let mut d = DCheck {
                        kind: if c.kind == CheckType::Http {
                            "http"
                        } else {
                            "tcp"
                        },
                        port: c.port.filter(|p| *p > 0),
                        interval_ms: interval,
                        timeout_ms: c.timeout_ms.map(|t| t.clamp(10, 600_000)),
                        fall: c.retry.map(|r| r.clamp(1, 100)),
                        ..DCheck::default()
                    };
                    if interval.is_none() {
                        d.interval_ms = Some(60_000);
                        notes.push("no delay_loop: keepalived's default of 60s is kept".into());
                    }
                    if c.retry.is_some() {
                        notes.push(
                            self.guess("guessed: check fall from keepalived's retry count".into()),
                        );
                    }
                    if c.kind == CheckType::Http {
                        d.path = Some(match &c.path {
                            Some(p) if p.starts_with('/') => p.clone(),
                            Some(p) => format!("/{p}"),
                            None => "/".into(),
                        });
                        d.expect = c
                            .status
                            .filter(|s| (100..=599).contains(s))
                            .map(|s| s.to_string());
                    }
                    d
                }
            });
            // The VIP's interface and prefix from vrrp_instance's virtual_ipaddress.
            let vipinfo = raw.vips.iter().find(|v| v.ip == vip);
            ds.interface = vipinfo.and_then(|v| v.dev.clone());
            ds.notes = notes;
            ds.src = Some(s.src.clone());
            if !self.names.contains(&ds.name) {
                self.add_name(&ds.name);
            }
            out.push((ds, vipinfo.and_then(|v| v.prefix)));
        }
        out
    }

    /// Services whose VIP found no subnet, and backends whose host could not be kept, go.
    fn prune_services(
        &mut self,
        services: Vec<(DService, Option<u8>)>,
    ) -> Vec<(DService, Option<u8>)> {
        let mut out = Vec::new();
        for (mut s, p) in services {
            let src = s
                .src
                .clone()
                .unwrap_or_else(|| Src::new(&std::sync::Arc::from(std::path::Path::new("-")), 0));
            let construct = format!("virtual_server {} {}", s.vip, s.port);
            let in_subnet = s
                .vip
                .parse()
                .ok()
                .and_then(|ip| self.subnet_of(ip))
                .is_some();
            if !in_subnet {
                self.un.push(src.unsupported(
                    construct,
                    "no subnet can hold this VIP (a network or broadcast address?)",
                ));
                continue;
            }
            let alive: HashSet<String> = self
                .hosts
                .iter()
                .filter(|h| !h.removed && !h.ips.is_empty())
                .map(|h| h.name.clone())
                .collect();
            let before = s.backends.len();
            s.backends.retain(|b| alive.contains(&b.host));
            if s.backends.len() != before {
                self.un.push(src.unsupported(
                    construct.clone(),
                    "some real servers have no usable address and were left out",
                ));
            }
            if s.backends.is_empty() {
                self.un
                    .push(src.unsupported(construct, "no usable real server is left"));
                continue;
            }
            let total: u32 = s.backends.iter().map(|b| b.weight.unwrap_or(1)).sum();
            if s.quorum.is_some_and(|q| q > total) {
                s.quorum = None;
                self.un.push(src.unsupported(
                    construct,
                    format!("quorum exceeds the remaining weight {total}: dropped"),
                ));
            }
            out.push((s, p));
        }
        out
    }

    fn guess_subnets(&mut self, services: &[(DService, Option<u8>)]) {
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
    fn check_hosts(&mut self) {
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
            if keep.is_empty() {
                self.hosts[hi].removed = true;
                for a in std::mem::take(&mut self.hosts[hi].aliases) {
                    self.names.remove(&a);
                }
            }
            self.hosts[hi].ips = keep;
        }
    }

    fn drop_ip(&mut self, hi: usize, ip: Ipv4Addr, why: &str) {
        let h = &self.hosts[hi];
        let src = h
            .src
            .clone()
            .unwrap_or_else(|| Src::new(&std::sync::Arc::from(std::path::Path::new("-")), 0));
        self.un
            .push(src.unsupported(format!("{} {ip}", h.name), why.to_owned()));
        self.ip_owner.remove(&ip);
    }

    fn host_by_label(&self, l: &str) -> Option<usize> {
        self.hosts.iter().position(|h| !h.removed && h.name == l)
    }

    fn cnames(&mut self) {
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

    fn ptrs(&mut self, services: &[(DService, Option<u8>)]) {
        let raw = self.raw;
        for p in &raw.ptrs {
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

    fn dns(&mut self, doc: &mut Doc) {
        let raw = self.raw;
        let mut d = DDns::default();
        let fwd_soa = raw
            .soa
            .iter()
            .find(|s| s.owner == self.dom_abs)
            .or_else(|| raw.soa.iter().find(|s| !s.owner.ends_with(".arpa.")));
        if let Some(s) = fwd_soa {
            d.notes.push(format!("from the SOA at {}", s.src));
            let r = s.rname.trim_end_matches('.');
            let mut local = String::new();
            let mut rest = None;
            let mut chars = r.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => local.extend(chars.next()),
                    '.' => {
                        rest = Some(chars.as_str().to_owned());
                        break;
                    }
                    c => local.push(c),
                }
            }
            match rest {
                Some(dom) if is_dns_name(&format!("{local}.{dom}")) => {
                    d.contact = Some(format!("{local}@{dom}"))
                }
                _ => self.un.push(s.src.unsupported(
                    format!("SOA rname {}", s.rname),
                    "not a mailbox name; the default hostmaster@DOMAIN is used",
                )),
            }
            let mut notes = Vec::new();
            d.refresh = Some(clamp_note(
                u64::from(s.refresh),
                60,
                30 * 86400,
                "refresh",
                &mut notes,
            ));
            d.retry = Some(clamp_note(
                u64::from(s.retry),
                10,
                7 * 86400,
                "retry",
                &mut notes,
            ));
            d.expire = Some(clamp_note(
                u64::from(s.expire),
                3600,
                365 * 86400,
                "expire",
                &mut notes,
            ));
            d.negative_ttl = Some(clamp_note(
                u64::from(s.minimum),
                0,
                86400,
                "negative-ttl",
                &mut notes,
            ));
            for n in notes {
                self.un.push(s.src.unsupported("SOA timers", n));
            }
            // The server running the daemons: the SOA's primary, when it is a host here.
            if let Some(l) = self.label(&s.mname) {
                let owner = self
                    .hosts
                    .iter()
                    .find(|h| !h.removed && (h.name == l || h.aliases.contains(&l)))
                    .map(|h| h.name.clone());
                if let Some(h) = owner {
                    let note = self.guess(format!(
                        "guessed: the server is {h} (the SOA's primary name server)"
                    ));
                    doc.server = Some((h, note));
                }
            }
            for o in raw.soa.iter().filter(|o| !std::ptr::eq(*o, s)) {
                if (o.refresh, o.retry, o.expire, o.minimum)
                    != (s.refresh, s.retry, s.expire, s.minimum)
                {
                    self.un.push(o.src.unsupported(
                        format!("SOA of {}", o.owner),
                        "its timers differ: dnsd uses one SOA for all its zones",
                    ));
                }
            }
        }
        for n in &raw.ns {
            let construct = format!("{} NS {}", n.owner, n.target);
            if n.owner == self.dom_abs {
                let v = match self.label(&n.target).and_then(|l| self.host_by_label(&l)) {
                    Some(i) => self.hosts[i].name.clone(),
                    None => n.target.trim_end_matches('.').to_owned(),
                };
                if !is_dns_name(&v) {
                    self.un
                        .push(n.src.unsupported(construct, "not a valid name server name"));
                } else if !d.ns.contains(&v) {
                    d.ns.push(v);
                }
            } else if n.owner.ends_with(".in-addr.arpa.") {
                let in_fwd = raw
                    .ns
                    .iter()
                    .any(|f| f.owner == self.dom_abs && f.target == n.target);
                if !in_fwd {
                    self.un.push(n.src.unsupported(
                        construct,
                        "reverse zones get the forward zone's name servers",
                    ));
                }
            } else {
                self.un.push(n.src.unsupported(
                    construct,
                    "delegations have no host-file equivalent: serve them from a zone-file",
                ));
            }
        }
        doc.dns = d;
    }

    fn keys_and_ddns(&mut self, doc: &mut Doc) {
        let raw = self.raw;
        for k in &raw.keys {
            let construct = format!("key {}", k.name);
            if !["hmac-sha256", "hmac-sha384", "hmac-sha512"].contains(&k.algorithm.as_str()) {
                self.un.push(k.src.unsupported(construct, format!("algorithm {} is not supported: generate an hmac-sha256 key (tsig-keygen) for both sides", k.algorithm)));
                continue;
            }
            let ok = base64::engine::general_purpose::STANDARD
                .decode(k.secret.trim())
                .is_ok_and(|s| s.len() >= 16);
            if !ok || !is_dns_name(&k.name) || doc.keys.iter().any(|x| x.name == k.name) {
                self.un.push(k.src.unsupported(construct, "its name or secret is not usable (base64, at least 16 bytes), or it is defined twice"));
                continue;
            }
            doc.keys.push(DKey {
                note: format!("from {}", k.src),
                name: k.name.clone(),
                algorithm: k.algorithm.clone(),
                secret: k.secret.trim().to_owned(),
            });
        }
        if let Some(dd) = &raw.ddns {
            let key = dd.key.clone().filter(|k| {
                let known = doc.keys.iter().any(|x| &x.name == k);
                if !known {
                    self.un.push(dd.src.unsupported(
                        format!("key {k}"),
                        "the zone's key was not imported: updates are sent unsigned",
                    ));
                }
                known
            });
            if let Some(k) = &key {
                doc.dns.update_keys.push(k.clone());
                doc.dns.notes.push(self.guess(format!(
                    "guessed: dnsd accepts dynamic updates signed with {k} (the key dhcpd used)"
                )));
            }
            doc.ddns = Some(DDdns {
                note: format!("from the zone's primary at {}", dd.src),
                server: dd.server.to_string(),
                key,
                ttl: dd.ttl.map(|t| t.clamp(1, 86400)),
            });
        }
    }

    fn vrrp(&mut self, doc: &mut Doc, services: &[(DService, Option<u8>)]) {
        let raw = self.raw;
        for v in &raw.vips {
            if !services.iter().any(|(s, _)| s.vip == v.ip.to_string()) {
                self.un.push(v.src.unsupported(
                    v.ip.to_string(),
                    "a VIP without a virtual_server: lbd holds the VIPs of its services only",
                ));
            }
        }
        let Some(v) = &raw.vrrp else { return };
        let vrid = v.vrid.unwrap_or(0);
        if vrid == 0 {
            self.un.push(
                v.src
                    .unsupported("virtual_router_id 0", "the VRID must be 1-255"),
            );
            return;
        }
        let mut notes = vec![format!("from vrrp_instance at {}", v.src)];
        let interval_ms = v.interval_ms.map(|i| {
            let c = (i.clamp(10, 40_950)).div_ceil(10) * 10;
            if c != i {
                notes.push(format!(
                    "advert_int {} adjusted to {}",
                    dur_ms(i),
                    dur_ms(c)
                ));
            }
            c
        });
        doc.vrrp = Some(DVrrp {
            notes,
            vrid,
            priority: v.priority.filter(|p| *p > 0),
            preempt: v.preempt,
            interval_ms,
            interface: v.interface.clone(),
            peers: v.peers.iter().map(Ipv4Addr::to_string).collect(),
            source: v.source.map(|s| s.to_string()),
        });
    }

    fn finish_subnets(&mut self, doc: &mut Doc) {
        let subnets = std::mem::take(&mut self.subnets);
        for s in subnets {
            let mut d = DSubnet {
                notes: s.notes,
                network: s.net.to_string(),
                pools: s
                    .pools
                    .into_iter()
                    .map(|p| DPool {
                        note: p.note,
                        start: p.start.to_string(),
                        end: p.end.to_string(),
                        bootp: p.bootp,
                    })
                    .collect(),
                ..DSubnet::default()
            };
            if let Some(r) = s.raw {
                let src = r.src.clone().expect("declared subnets have a source");
                for rt in &r.routers {
                    if s.net.contains(rt) {
                        d.routers.push(rt.to_string());
                    } else {
                        self.un.push(src.unsupported(
                            format!("option routers {rt}"),
                            format!("not inside {}", s.net),
                        ));
                    }
                }
                d.dns = r.dns.iter().map(Ipv4Addr::to_string).collect();
                d.ntp = r.ntp.iter().map(Ipv4Addr::to_string).collect();
                d.domain = r
                    .domain
                    .clone()
                    .filter(|x| *x != self.dom && is_dns_name(x));
                for sd in &r.search {
                    if is_dns_name(sd) {
                        d.search.push(sd.clone());
                    } else {
                        self.un.push(
                            src.unsupported(format!("domain-search {sd}"), "not a domain name"),
                        );
                    }
                }
                d.broadcast = r
                    .broadcast
                    .filter(|b| *b != s.net.broadcast())
                    .map(|b| b.to_string());
                d.mtu =
                    r.mtu.filter(|m| {
                        let ok = *m >= 68;
                        if !ok {
                            self.un.push(src.unsupported(
                                format!("interface-mtu {m}"),
                                "below the minimum of 68",
                            ));
                        }
                        ok
                    });
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
