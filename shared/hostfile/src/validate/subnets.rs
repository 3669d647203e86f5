//! `[[subnet]]` with its pools and DHCP options (options are shared with `[host.NAME]`).

use std::net::Ipv4Addr;
use std::ops::Range;
use std::time::Duration;

use ipnet::IpNet;

use super::subnets6::Seen6;
use super::values::{Validator, span};
use crate::model::*;
use crate::model6::Dhcp6Subnet;
use crate::wire;

/// The index of the subnet holding `ip`.
pub(crate) fn subnet_of(subnets: &[DhcpSubnet], ip: Ipv4Addr) -> Option<usize> {
    subnets.iter().position(|s| s.network.contains(&ip))
}

impl Validator {
    /// The IPv4 and the IPv6 subnets, each in file order; `domain` is their default DHCP domain.
    pub(crate) fn subnets(
        &mut self,
        subnet: &[wire::Subnet],
        domain: &str,
    ) -> (Vec<DhcpSubnet>, Vec<Dhcp6Subnet>) {
        let mut subnets: Vec<DhcpSubnet> = Vec::new();
        let mut subnets6: Vec<Dhcp6Subnet> = Vec::new();
        let mut seen6 = Seen6::default();
        let mut all_pools: Vec<(Ipv4Range, Range<usize>)> = Vec::new();
        for s in subnet {
            let Some(net) = self.net(&s.network, "network") else {
                continue;
            };
            let net4 = match net {
                IpNet::V4(n) => n,
                IpNet::V6(n) => {
                    if let Some(s6) = self.subnet6(s, n, domain, &subnets6, &mut seen6) {
                        subnets6.push(s6);
                    }
                    continue;
                }
            };
            self.no_v6_keys(s, net);
            let (len, fix) = (net4.prefix_len(), "use a prefix length from 8 to 30");
            if !self.network_shape(&s.network, net4, len, 8..=30, fix) {
                continue;
            }
            for other in &subnets {
                if other.network.contains(&net4.network())
                    || net4.contains(&other.network.network())
                {
                    self.d.push(
                        span(&s.network),
                        format!("network `{net4}` overlaps subnet `{}`", other.network),
                        "subnets must not overlap: fix the prefix or merge them",
                    );
                }
            }
            let name = s
                .name
                .as_ref()
                .map_or_else(|| net4.to_string(), |n| self.label(n, "subnet name"));
            let routers = self.ips(&s.routers, "router");
            for (r, rs) in routers.iter().zip(&s.routers) {
                if !net4.contains(r) {
                    self.d.push(
                        span(rs),
                        format!("router `{r}` is not in subnet {net4}"),
                        "a router must be on the subnet it serves",
                    );
                }
            }
            let lease = self.duration(
                &s.lease,
                Duration::from_secs(12 * 3600),
                Duration::from_secs(60),
                Duration::from_secs(366 * 86400),
                "lease",
            );
            let max_lease = self.duration(
                &s.max_lease,
                lease.max(Duration::from_secs(86400)),
                Duration::from_secs(60),
                Duration::from_secs(366 * 86400),
                "max-lease",
            );
            if max_lease < lease
                && let Some(ml) = &s.max_lease
            {
                self.d.push(
                    span(ml),
                    format!("max-lease `{}` is shorter than lease", ml.get_ref()),
                    "make max-lease at least as long as lease",
                );
            }
            let mut pools = Vec::new();
            for p in &s.pool {
                let Some(r) = self.range(&p.range) else {
                    continue;
                };
                if !net4.contains(&r.start) || !net4.contains(&r.end) {
                    self.d.push(
                        span(&p.range),
                        format!("range `{r}` is not inside subnet {net4}"),
                        format!(
                            "use addresses between {} and {}",
                            net4.network(),
                            net4.broadcast()
                        ),
                    );
                } else if r.contains(net4.network()) || r.contains(net4.broadcast()) {
                    self.d.push(
                        span(&p.range),
                        format!("range `{r}` includes the network or broadcast address"),
                        format!(
                            "keep the range inside {}-{}",
                            Ipv4Addr::from(u32::from(net4.network()) + 1),
                            Ipv4Addr::from(u32::from(net4.broadcast()) - 1)
                        ),
                    );
                }
                for (o, _) in &all_pools {
                    if o.overlaps(&r) {
                        self.d.push(
                            span(&p.range),
                            format!("range `{r}` overlaps range `{o}`"),
                            "ranges must not share addresses: shorten one of them",
                        );
                    }
                }
                all_pools.push((r, span(&p.range)));
                pools.push(Pool {
                    range: r,
                    bootp: p.bootp.as_ref().is_some_and(|b| *b.get_ref()),
                });
            }
            let mtu = s
                .mtu
                .as_ref()
                .map(|m| self.int(&Some(m.clone()), 1500, 68, 65535, "mtu") as u16);
            let broadcast = match &s.broadcast {
                Some(b) => self.ip(b, "broadcast").unwrap_or(net4.broadcast()),
                None => net4.broadcast(),
            };
            let dns = self.ips(&s.dns, "DNS server");
            let ntp = self.ips(&s.ntp, "NTP server");
            let sdomain = s
                .domain
                .as_ref()
                .map_or_else(|| domain.to_owned(), |d| self.dns_name(d, "domain"));
            let search = s
                .search
                .iter()
                .map(|d| self.dns_name(d, "search domain"))
                .collect();
            let next_server = s
                .next_server
                .as_ref()
                .and_then(|n| self.ip(n, "next-server"));
            let options = self.options(&s.option);
            subnets.push(DhcpSubnet {
                name,
                network: net4,
                interface: s.interface.as_ref().map(|i| i.get_ref().clone()),
                routers,
                dns,
                domain: sdomain,
                search,
                ntp,
                broadcast,
                mtu,
                lease,
                max_lease,
                authoritative: s.authoritative.as_ref().is_some_and(|a| *a.get_ref()),
                next_server,
                boot_file: s.boot_file.as_ref().map(|b| b.get_ref().clone()),
                pools,
                options,
            });
        }
        self.pd_off_link(&subnets6, &seen6);
        (subnets, subnets6)
    }

    /// DHCP options of a subnet or host: exactly one typed value each, at most 255 bytes.
    pub(crate) fn options(&mut self, opts: &[wire::DhcpOption]) -> Vec<RawOption> {
        let mut out = Vec::new();
        for o in opts {
            let code = self.int(&Some(o.code.clone()), 0, 1, 254, "DHCP option code");
            let mut kinds = 0;
            let mut data = Vec::new();
            if let Some(t) = &o.text {
                kinds += 1;
                data = t.as_bytes().to_vec();
            }
            if o.ip.is_some() {
                kinds += 1;
                let ips = wire::items(&o.ip);
                data = self
                    .ips(&ips, "option address")
                    .iter()
                    .flat_map(|i| i.octets())
                    .collect();
            }
            if let Some(h) = &o.hex {
                kinds += 1;
                let clean: String = h
                    .get_ref()
                    .chars()
                    .filter(|c| c.is_ascii_hexdigit())
                    .collect();
                let ok = clean.len().is_multiple_of(2)
                    && h.get_ref()
                        .chars()
                        .all(|c| c.is_ascii_hexdigit() || c == ':' || c == ' ');
                if ok {
                    data = (0..clean.len())
                        .step_by(2)
                        .map(|i| u8::from_str_radix(&clean[i..i + 2], 16).unwrap_or(0))
                        .collect();
                } else {
                    self.d.push(
                        span(h),
                        format!("hex value `{}` is not whole bytes in hex", h.get_ref()),
                        "write bytes as pairs of hex digits, optionally separated by ':', e.g. \"01:0a:ff\"",
                    );
                }
            }
            if o.u8.is_some() {
                kinds += 1;
                data = vec![self.int(&o.u8, 0, 0, 255, "u8 option value") as u8];
            }
            if o.u16.is_some() {
                kinds += 1;
                data = (self.int(&o.u16, 0, 0, 65535, "u16 option value") as u16)
                    .to_be_bytes()
                    .to_vec();
            }
            if o.u32.is_some() {
                kinds += 1;
                data = (self.int(&o.u32, 0, 0, u32::MAX.into(), "u32 option value") as u32)
                    .to_be_bytes()
                    .to_vec();
            }
            if let Some(b) = o.bool {
                kinds += 1;
                data = vec![u8::from(b)];
            }
            if kinds != 1 {
                self.d.push(
                    span(&o.code),
                    format!(
                        "DHCP option {} needs exactly one value, found {kinds}",
                        o.code.get_ref()
                    ),
                    "give one of text, ip, hex, u8, u16, u32 or bool",
                );
            } else if data.len() > 255 {
                self.d.push(
                    span(&o.code),
                    format!(
                        "DHCP option {} is {} bytes long",
                        o.code.get_ref(),
                        data.len()
                    ),
                    "an option value holds at most 255 bytes",
                );
            }
            out.push(RawOption {
                code: code as u8,
                data,
            });
        }
        out
    }
}
