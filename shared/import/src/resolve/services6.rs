//! keepalived's IPv6 virtual servers. Every host of the host file has an IPv4 address, so an
//! IPv6 real server is matched to a host: the one whose `ipv6` holds it (from a zone's AAAA
//! record or dhcpd6.conf), else the host of the real server at the same place in the IPv4
//! virtual server of the same port and protocol (keepalived setups mirror one block per family;
//! a guess, said so). When that IPv4 service balances over the same backends with the same
//! settings, the two become one dual-stack service (`vip = ["IPv4", "IPv6"]`); otherwise the
//! IPv6 one is a service of its own. A VIP outside every IPv6 subnet gets its /64.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use ipnet::Ipv6Net;

use crate::emit::{DBackend, DService, DSubnet, Doc};
use crate::facts::RawService;

use super::state::R;

/// (host, port, weight) of each backend of `d`, sorted.
fn effective(d: &DService) -> Vec<(String, u16, u32)> {
    let mut v: Vec<(String, u16, u32)> = d
        .backends
        .iter()
        .map(|b| {
            (
                b.host.clone(),
                b.port.or(d.backend_port).unwrap_or(d.port),
                b.weight.unwrap_or(1),
            )
        })
        .collect();
    v.sort();
    v
}

impl R<'_> {
    /// The IPv6 virtual servers, joined to `out` (the IPv4 services): a dual-stack VIP on one
    /// of them, or a service of their own. `vips`: every virtual server's address.
    pub(super) fn services6(
        &mut self,
        out: &mut Vec<(DService, Option<u8>)>,
        vips: &HashSet<IpAddr>,
        doc: &mut Doc,
    ) {
        let raw = self.raw;
        let mut taken: HashSet<(Ipv6Addr, u16, bool)> = HashSet::new();
        for s in &raw.services {
            let SocketAddr::V6(vsa) = s.vip else {
                continue;
            };
            let vip = *vsa.ip();
            let port = s.vip.port();
            let construct = format!("virtual_server {vip} {port}");
            if !taken.insert((vip, port, s.udp)) {
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
            // The IPv4 twin: the one IPv4 virtual server of this port and protocol.
            let twins: Vec<usize> = (0..out.len())
                .filter(|&i| out[i].0.port == port && out[i].0.udp == s.udp)
                .filter(|&i| out[i].0.vip6.is_none())
                .collect();
            let twin = (twins.len() == 1).then(|| twins[0]);
            let twin_raw: Option<&RawService> = twin.and_then(|i| {
                let src = out[i].0.src.as_ref()?.to_string();
                raw.services.iter().find(|r| r.src.to_string() == src)
            });
            let mut notes = vec![format!("from {}", s.src)];
            let mut backends: Vec<(String, u16, u32)> = Vec::new();
            for (k, rs) in s.reals.iter().enumerate() {
                let IpAddr::V6(ip) = rs.addr.ip() else {
                    continue;
                };
                let what = format!("real_server {ip} {}", rs.addr.port());
                if vips.contains(&rs.addr.ip()) {
                    self.un.push(rs.src.unsupported(
                        what,
                        "its address is a VIP: a backend must be a host of its own",
                    ));
                    continue;
                }
                let known = self.hosts.iter().position(|h| {
                    !h.removed && h.ipv6.iter().any(|a| a.parse::<Ipv6Addr>() == Ok(ip))
                });
                let paired = twin_raw
                    .filter(|t| t.reals.len() == s.reals.len())
                    .and_then(|t| match t.reals[k].addr.ip() {
                        IpAddr::V4(a) => self.ip_owner.get(&a).copied(),
                        IpAddr::V6(_) => None,
                    })
                    .filter(|&i| !self.hosts[i].removed);
                let i = match (known, paired) {
                    (Some(i), _) => i,
                    (None, Some(i)) => {
                        let name = self.hosts[i].name.clone();
                        let note = self.guess(format!(
                            "guessed: ipv6 {ip} is {name}'s: real server {} of the IPv6 virtual_server {vip} {port} ({}) stands where {name} stands in the IPv4 one",
                            k + 1,
                            rs.src
                        ));
                        let h = &mut self.hosts[i];
                        h.ipv6.push(ip.to_string());
                        h.notes.push(note);
                        i
                    }
                    (None, None) => {
                        self.un.push(rs.src.unsupported(
                            what,
                            format!("no host has the IPv6 address {ip} and no IPv4 virtual_server on port {port} pairs it with one: add ipv6 = \"{ip}\" to its host and the backend by hand"),
                        ));
                        continue;
                    }
                };
                let hn = self.hosts[i].name.clone();
                if backends.iter().any(|b| b.0 == hn && b.1 == rs.addr.port()) {
                    self.un.push(rs.src.unsupported(what, "listed twice"));
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
            if backends.is_empty() {
                self.un.push(s.src.unsupported(
                    construct,
                    "no usable real server is left for this IPv6 virtual_server",
                ));
                continue;
            }
            self.subnet_for6(vip, s, doc);
            let ports: HashSet<u16> = backends.iter().map(|b| b.1).collect();
            let backend_port = (ports.len() == 1).then(|| backends[0].1);
            let mut ds = DService {
                vip: vip.to_string(),
                port,
                udp: s.udp,
                backend_port: backend_port.filter(|p| *p != port),
                backends: backends
                    .iter()
                    .map(|(h, p, w)| DBackend {
                        host: h.clone(),
                        port: backend_port.is_none().then_some(*p),
                        weight: (*w != 1).then_some(*w),
                    })
                    .collect(),
                ..DService::default()
            };
            self.settings(s, &mut ds, &mut notes);
            if let Some(t) = twin {
                let d4 = &mut out[t].0;
                let same = effective(d4) == effective(&ds)
                    && d4.scheduler == ds.scheduler
                    && d4.dataplane == ds.dataplane
                    && d4.persistence == ds.persistence
                    && d4.quorum == ds.quorum
                    && d4.check == ds.check
                    && d4.sorry.is_none()
                    && ds.sorry.is_none();
                if same {
                    d4.vip6 = Some(vip.to_string());
                    d4.notes.push(format!(
                        "dual-stack: the IPv6 VIP {vip} is the virtual_server at {}, over the same backends",
                        s.src
                    ));
                    continue;
                }
            }
            let base = match twin {
                Some(t) => format!("{}-v6", out[t].0.name),
                None => {
                    let g: Vec<String> = vip.segments().iter().map(|g| format!("{g:x}")).collect();
                    format!("vs6-{}-{port}", g.join("-"))
                }
            };
            let mut name = base;
            while self.names.contains(&name) {
                name.push('x');
            }
            self.add_name(&name);
            notes.push(self.guess(format!(
                "guessed: name `{name}` for the IPv6 virtual_server {vip} {port}; not published in DNS"
            )));
            ds.name = name;
            ds.dns = Some(false);
            ds.notes = notes;
            ds.src = Some(s.src.clone());
            out.push((ds, None));
        }
    }

    /// An IPv6 [[subnet]] for `vip`: one of dhcpd6.conf's, one made already, or its /64.
    fn subnet_for6(&mut self, vip: Ipv6Addr, s: &RawService, doc: &mut Doc) {
        let holds = |n: &str| n.parse::<Ipv6Net>().is_ok_and(|n| n.contains(&vip));
        if self.raw.subnets6.iter().any(|n| n.net.contains(&vip))
            || doc.subnets.iter().any(|d| holds(&d.network))
        {
            return;
        }
        let net = Ipv6Net::new(vip, 64).map_or(Ipv6Net::from(vip), |n| n.trunc());
        let note = self.guess(format!(
            "guessed: the /64 holding the IPv6 VIP {vip} ({}); no router advertisements (ra = false)",
            s.src
        ));
        doc.subnets.push(DSubnet {
            src: Some(s.src.clone()),
            notes: vec![note],
            network: net.to_string(),
            ra: Some(false),
            ..DSubnet::default()
        });
    }
}
