//! `[service.NAME]`: virtual services, their backends and health checks. The VIPs and the
//! backends' address families are in [`super::services_family`].

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use super::values::{Validator, span};
use crate::model::*;
use crate::model6::Dhcp6Subnet;
use crate::wire::{self, S};

impl Validator {
    /// The services in file order. Their names join `names` and their VIPs `addr_owner` (both from
    /// the hosts), so a clash with a host is reported; `lbw` gives the default interface.
    pub(crate) fn services(
        &mut self,
        service: &BTreeMap<S<String>, wire::Service>,
        lbw: Option<&wire::Lb>,
        subnets: (&[DhcpSubnet], &[Dhcp6Subnet]),
        hosts: &[Host],
        names: &mut HashMap<String, String>,
        addr_owner: &mut HashMap<Ipv4Addr, String>,
    ) -> (Vec<VirtualService>, Vec<bool>) {
        let host_by_name: HashMap<&str, &Host> =
            hosts.iter().map(|h| (h.name.as_str(), h)).collect();
        let mut services = Vec::new();
        let mut dns = Vec::new();
        for (sname, s) in service {
            let name = self.label(sname, "service name");
            if let Some(prev) = names.insert(name.clone(), format!("service {name}")) {
                self.d.push(
                    span(sname),
                    format!("service name `{name}` is already used by {prev}"),
                    "names, aliases and service names must all differ",
                );
            }
            let vips = self.vips(&s.vip, &name, subnets, hosts, addr_owner);
            let port = self.int(&Some(s.port.clone()), 80, 1, 65535, "port") as u16;
            let bport = self.int(&s.backend_port, i64::from(port), 1, 65535, "backend-port") as u16;
            let protocol = match s
                .protocol
                .as_ref()
                .map(|p| p.get_ref().to_ascii_lowercase())
            {
                None => Protocol::Tcp,
                Some(p) if p == "tcp" => Protocol::Tcp,
                Some(p) if p == "udp" => Protocol::Udp,
                Some(p) => {
                    self.d.push(
                        s.protocol.as_ref().map_or(span(&s.vip), span),
                        format!("protocol `{p}` is not supported"),
                        "use \"tcp\" or \"udp\"",
                    );
                    Protocol::Tcp
                }
            };
            let scheduler = match s
                .scheduler
                .as_ref()
                .map(|p| p.get_ref().to_ascii_lowercase())
            {
                None => Scheduler::Rr,
                Some(p) => match p.as_str() {
                    "rr" => Scheduler::Rr,
                    "wrr" => Scheduler::Wrr,
                    "lc" | "wlc" => Scheduler::Lc,
                    "sh" | "mh" | "maglev" => Scheduler::Sh,
                    _ => {
                        self.d.push(
                            s.scheduler.as_ref().map_or(span(&s.vip), span),
                            format!("scheduler `{p}` is not known"),
                            "use rr, wrr, lc or sh",
                        );
                        Scheduler::Rr
                    }
                },
            };
            let dataplane = match s
                .dataplane
                .as_ref()
                .map(|p| p.get_ref().to_ascii_lowercase())
            {
                None => {
                    if scheduler == Scheduler::Lc {
                        Dataplane::Proxy
                    } else {
                        Dataplane::Kernel
                    }
                }
                Some(p) if p == "kernel" || p == "nftables" => Dataplane::Kernel,
                Some(p) if p == "proxy" || p == "user" => Dataplane::Proxy,
                Some(p) => {
                    self.d.push(
                        s.dataplane.as_ref().map_or(span(&s.vip), span),
                        format!("dataplane `{p}` is not known"),
                        "use \"kernel\" (nftables) or \"proxy\" (user space)",
                    );
                    Dataplane::Kernel
                }
            };
            if scheduler == Scheduler::Lc
                && dataplane == Dataplane::Kernel
                && let Some(sp) = &s.scheduler
            {
                self.d.push(
                    span(sp),
                    "scheduler `lc` needs connection counts the kernel data plane does not keep",
                    "set dataplane = \"proxy\", or use rr, wrr or sh",
                );
            }
            if protocol == Protocol::Udp && dataplane == Dataplane::Proxy {
                self.d.push(
                    span(&s.vip),
                    "the user-space data plane carries TCP only",
                    "use dataplane = \"kernel\" for UDP services",
                );
            }
            if s.backends.is_empty() {
                self.d.push(
                    span(sname),
                    format!("service `{name}` has no backends"),
                    "list at least one host in backends = [...]",
                );
            }
            let refs = self.backend_refs(&s.backends, bport, hosts, &host_by_name);
            let persistence = s.persistence.as_ref().map(|_| {
                self.duration(
                    &s.persistence,
                    Duration::from_secs(300),
                    Duration::from_secs(1),
                    Duration::from_secs(86400),
                    "persistence",
                )
            });
            let sorry = s
                .sorry
                .as_ref()
                .and_then(|x| Some((self.sockaddr(x, port, "sorry server")?, span(x))));
            let quorum = self.int(&s.quorum, 0, 0, 1_000_000, "quorum") as u32;
            let total: u32 = refs.iter().map(|b| b.weight).sum();
            if quorum > total
                && let Some(q) = &s.quorum
            {
                self.d.push(
                    span(q),
                    format!("quorum `{quorum}` exceeds the total backend weight {total}"),
                    "the service could never come up: lower the quorum",
                );
            }
            let check = self.check(s.check.as_ref(), dataplane);
            let proxy = dataplane == Dataplane::Proxy;
            if let Some((a, sp)) = &sorry
                && !proxy
                && !vips.iter().any(|(v, _)| v.is_ipv4() == a.is_ipv4())
            {
                self.d.push(
                    sp.clone(),
                    format!("sorry server `{a}` is not of the VIP's address family"),
                    "the kernel data plane does not translate between IPv4 and IPv6 (NAT64 is not supported): give a sorry server of the VIP's family, or set dataplane = \"proxy\"",
                );
            }
            let vips = if vips.is_empty() {
                vec![(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 32)]
            } else {
                vips
            };
            for (vip, vip_prefix) in vips {
                let backends = self.family_backends(&refs, vip, proxy);
                services.push(VirtualService {
                    name: name.clone(),
                    vip,
                    vip_prefix,
                    port,
                    protocol,
                    scheduler,
                    dataplane,
                    persistence,
                    sorry: sorry
                        .as_ref()
                        .map(|(a, _)| *a)
                        .filter(|a| proxy || a.is_ipv4() == vip.is_ipv4()),
                    quorum,
                    byte_counters: s.byte_counters.unwrap_or(false),
                    interface: s
                        .interface
                        .as_ref()
                        .or(lbw.and_then(|l| l.interface.as_ref()))
                        .map(|i| i.get_ref().clone()),
                    backends,
                    check: check.clone(),
                });
                dns.push(s.dns.unwrap_or(true));
            }
        }
        (services, dns)
    }

    pub(crate) fn check(&mut self, c: Option<&wire::Check>, dataplane: Dataplane) -> HealthCheck {
        let _ = dataplane;
        let interval = self.duration(
            &c.and_then(|c| c.interval.clone()),
            Duration::from_secs(2),
            Duration::from_millis(100),
            Duration::from_secs(3600),
            "check interval",
        );
        let timeout = self.duration(
            &c.and_then(|c| c.timeout.clone()),
            Duration::from_secs(1).min(interval),
            Duration::from_millis(10),
            Duration::from_secs(600),
            "check timeout",
        );
        let kind_s = c.and_then(|c| c.kind.as_ref());
        let kind_name = kind_s
            .map(|k| k.get_ref().to_ascii_lowercase())
            .unwrap_or_else(|| {
                if c.is_some_and(|c| c.path.is_some() || c.expect.is_some()) {
                    "http".into()
                } else {
                    "tcp".into()
                }
            });
        let kind = match kind_name.as_str() {
            "none" => CheckKind::None,
            "tcp" => CheckKind::Tcp,
            "http" => {
                let path = c
                    .and_then(|c| c.path.as_ref())
                    .map_or("/".to_owned(), |p| p.get_ref().clone());
                if !path.starts_with('/') {
                    let sp = c.and_then(|c| c.path.as_ref()).map(span).unwrap_or(0..0);
                    self.d.push(
                        sp,
                        format!("check path `{path}` does not start with /"),
                        "write an absolute path such as \"/\" or \"/health\"",
                    );
                }
                let expect = match c.and_then(|c| c.expect.as_ref()) {
                    None => (200, 399),
                    Some(e) => {
                        let t = e.get_ref().trim();
                        let parsed = match t.split_once('-') {
                            Some((a, b)) => a
                                .trim()
                                .parse::<u16>()
                                .ok()
                                .zip(b.trim().parse::<u16>().ok()),
                            None => t.parse::<u16>().ok().map(|x| (x, x)),
                        };
                        match parsed {
                            Some((a, b)) if (100..=599).contains(&a) && (a..=599).contains(&b) => {
                                (a, b)
                            }
                            _ => {
                                self.d.push(
                                    span(e),
                                    format!("expect `{t}` is not a status or status range"),
                                    "write e.g. \"200\" or \"200-399\"",
                                );
                                (200, 399)
                            }
                        }
                    }
                };
                CheckKind::Http {
                    path,
                    expect,
                    body: c.and_then(|c| c.body.clone()),
                    host: c.and_then(|c| c.host_header.clone()),
                }
            }
            other => {
                self.d.push(
                    kind_s.map(span).unwrap_or(0..0),
                    format!("check type `{other}` is not known"),
                    "use \"http\", \"tcp\" or \"none\"",
                );
                CheckKind::Tcp
            }
        };
        HealthCheck {
            kind,
            port: c
                .and_then(|c| c.port.as_ref())
                .map(|p| self.int(&Some(p.clone()), 80, 1, 65535, "check port") as u16),
            interval,
            timeout,
            rise: self.int(&c.and_then(|c| c.rise.clone()), 2, 1, 100, "rise") as u32,
            fall: self.int(&c.and_then(|c| c.fall.clone()), 2, 1, 100, "fall") as u32,
        }
    }
}
