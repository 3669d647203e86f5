//! keepalived's virtual servers as balanced services: names, backends, scheduler, check.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::emit::{DBackend, DCheck, DService, Doc, dur_ms};
use crate::facts::{CheckType, RawService};
use crate::source::{LOUD, Src};

use super::state::{R, clamp_note, dashed};

impl R<'_> {
    pub(super) fn services(&mut self, doc: &mut Doc) -> Vec<(DService, Option<u8>)> {
        let raw = self.raw;
        let mut out: Vec<(DService, Option<u8>)> = Vec::new();
        let mut taken: HashSet<(Ipv4Addr, u16, bool)> = HashSet::new();
        let vips: HashSet<IpAddr> = raw.services.iter().map(|s| s.vip.ip()).collect();
        for s in &raw.services {
            // IPv6 virtual servers: after the IPv4 ones, which they may join (services6.rs).
            let SocketAddr::V4(vip_sa) = s.vip else {
                continue;
            };
            let vip = *vip_sa.ip();
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
                if vips.contains(&rs.addr.ip()) {
                    self.un.push(rs.src.unsupported(
                        format!("real_server {}", rs.addr),
                        "its address is a VIP: a backend must be a host of its own",
                    ));
                    continue;
                }
                let IpAddr::V4(rip) = rs.addr.ip() else {
                    continue;
                };
                let i = self.host_for(rip, &rs.src);
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
            self.settings(s, &mut ds, &mut notes);
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
        self.services6(&mut out, &vips, doc);
        out
    }

    /// The settings a service takes from its virtual server whatever its family: scheduler,
    /// persistence, sorry server, quorum and the check.
    pub(super) fn settings(&mut self, s: &RawService, ds: &mut DService, notes: &mut Vec<String>) {
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
            ds.persistence = Some(clamp_note(p.max(1), 1, 86400, "persistence", notes));
        }
        ds.sorry = s.sorry.map(|a| a.to_string());
        ds.quorum = s.quorum;
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
                    d.expect = c.status.map(|(a, b)| {
                        if a == b {
                            a.to_string()
                        } else {
                            format!("{a}-{b}")
                        }
                    });
                    d.host_header = c.host.clone().or_else(|| s.virtualhost.clone());
                } else if let Some(h) = &s.virtualhost {
                    self.un.push(s.src.unsupported(
                        format!("virtualhost {h}"),
                        "the check is a TCP connect: a Host header has nothing to go with",
                    ));
                }
                if c.tls {
                    notes.push(format!(
                        "{LOUD}keepalived checked these backends with SSL_GET; the host file has no TLS check, so this is a TCP connect check on the same port: the TLS handshake and the HTTP status are NOT checked"
                    ));
                }
                d
            }
        });
    }

    /// Services whose VIP found no subnet, and backends whose host could not be kept, go.
    pub(super) fn prune_services(
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
            // An IPv6-only service's VIP got its subnet in `services6`.
            let in_subnet = match s.vip.parse::<IpAddr>() {
                Ok(IpAddr::V4(ip)) => self.subnet_of(ip).is_some(),
                Ok(IpAddr::V6(_)) => true,
                Err(_) => false,
            };
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
            out.push((s, p));
        }
        out
    }
}
