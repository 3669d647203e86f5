//! `[service.NAME]`: virtual services, their backends and health checks.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use super::subnets::subnet_of;
use super::values::{Validator, span};
use crate::model::*;
use crate::wire::{self, S};

impl Validator {
    /// The services in file order. Their names join `names` and their VIPs `addr_owner` (both from
    /// the hosts), so a clash with a host is reported; `lbw` gives the default interface.
    pub(crate) fn services(
        &mut self,
        service: &BTreeMap<S<String>, wire::Service>,
        lbw: Option<&wire::Lb>,
        subnets: &[DhcpSubnet],
        hosts: &[Host],
        names: &mut HashMap<String, String>,
        addr_owner: &mut HashMap<Ipv4Addr, String>,
    ) -> Vec<VirtualService> {
        let subnet_of = |ip: Ipv4Addr| subnet_of(subnets, ip);
        let host_by_name: HashMap<&str, &Host> =
            hosts.iter().map(|h| (h.name.as_str(), h)).collect();
        let mut services = Vec::new();
        for (sname, s) in service {
            let name = self.label(sname, "service name");
            if let Some(prev) = names.insert(name.clone(), format!("service {name}")) {
                self.d.push(
                    span(sname),
                    format!("service name `{name}` is already used by {prev}"),
                    "names, aliases and service names must all differ",
                );
            }
            let vip = self.ip(&s.vip, "vip");
            let mut vip_prefix = 32;
            if let Some(v) = vip {
                match subnet_of(v) {
                    None => self.d.push(
                        span(&s.vip),
                        format!("vip `{v}` is not on any subnet"),
                        "a VIP must lie in a [[subnet]] on an interface of this host",
                    ),
                    Some(i) => vip_prefix = subnets[i].network.prefix_len(),
                }
                if let Some(owner) = addr_owner.get(&v)
                    && !owner.starts_with("service")
                {
                    self.d.push(
                        span(&s.vip),
                        format!("vip `{v}` is already the address of {owner}"),
                        "a VIP must be an address no host uses",
                    );
                }
                addr_owner
                    .entry(v)
                    .or_insert_with(|| format!("service {name}"));
            }
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
                        span(s.protocol.as_ref().unwrap_or(&s.vip)),
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
                            span(s.scheduler.as_ref().unwrap_or(&s.vip)),
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
                        span(s.dataplane.as_ref().unwrap_or(&s.vip)),
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
            let mut backends = Vec::new();
            if s.backends.is_empty() {
                self.d.push(
                    span(sname),
                    format!("service `{name}` has no backends"),
                    "list at least one host in backends = [...]",
                );
            }
            for b in &s.backends {
                let sp = b.span();
                let (hs, port_o, weight) = match b.get_ref() {
                    wire::BackendRef::Name(n) => (S::new(sp.clone(), n.clone()), None, None),
                    wire::BackendRef::Full(f) => (
                        S::new(sp.clone(), f.host.clone()),
                        f.port.map(|p| S::new(sp.clone(), p)),
                        f.weight.map(|w| S::new(sp.clone(), w)),
                    ),
                };
                let hs = &hs;
                let hn = hs.get_ref().trim().to_ascii_lowercase();
                let bport = self.int(&port_o, i64::from(bport), 1, 65535, "backend port") as u16;
                let weight = self.int(&weight, 1, 0, 1000, "weight") as u32;
                match host_by_name.get(hn.as_str()) {
                    None => {
                        let known: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
                        self.d.push(
                            span(hs),
                            format!("backend `{hn}` is not a host in this file"),
                            format!("use one of: {}", known.join(", ")),
                        );
                    }
                    Some(h) if h.ips.is_empty() => {
                        self.d.push(
                            span(hs),
                            format!("backend `{hn}` has no IPv4 address"),
                            "give the host an ip",
                        );
                    }
                    Some(h) => {
                        if backends
                            .iter()
                            .any(|x: &Backend| x.name == hn && x.addr.port() == bport)
                        {
                            self.d.push(
                                span(hs),
                                format!("backend `{hn}` is listed twice"),
                                "list each backend once (use weight for more traffic)",
                            );
                        }
                        backends.push(Backend {
                            name: hn,
                            addr: SocketAddrV4::new(h.ips[0], bport),
                            weight,
                        });
                    }
                }
            }
            let persistence = s.persistence.as_ref().map(|_| {
                self.duration(
                    &s.persistence,
                    Duration::from_secs(300),
                    Duration::from_secs(1),
                    Duration::from_secs(86400),
                    "persistence",
                )
            });
            let sorry =
                s.sorry
                    .as_ref()
                    .and_then(|x| match self.sockaddr(x, port, "sorry server")? {
                        SocketAddr::V4(a) => Some(a),
                        SocketAddr::V6(_) => None,
                    });
            let quorum = self.int(&s.quorum, 0, 0, 1_000_000, "quorum") as u32;
            let total: u32 = backends.iter().map(|b| b.weight).sum();
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
            services.push(VirtualService {
                name,
                vip: vip.unwrap_or(Ipv4Addr::UNSPECIFIED),
                vip_prefix,
                port,
                protocol,
                scheduler,
                dataplane,
                persistence,
                sorry,
                quorum,
                byte_counters: s.byte_counters.unwrap_or(false),
                interface: s
                    .interface
                    .as_ref()
                    .or(lbw.and_then(|l| l.interface.as_ref()))
                    .map(|i| i.get_ref().clone()),
                backends,
                check,
            });
        }
        services
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
