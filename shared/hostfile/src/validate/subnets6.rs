//! IPv6 `[[subnet]]`s: address pools, prefix-delegation pools, options, lifetimes and router
//! advertisement settings; and the keys that belong to one family only.

use std::ops::Range;
use std::time::Duration;

use ipnet::{IpNet, Ipv6Net};

use super::values::{Validator, span};
use crate::model6::*;
use crate::wire::{self, S};

/// Kea's defaults: preferred 3000 s, valid 4000 s, T1 = 0.5 and T2 = 0.8 of preferred.
const PREFERRED: Duration = Duration::from_secs(3000);
const VALID: Duration = Duration::from_secs(4000);
const LIFE_MIN: Duration = Duration::from_secs(60);
const LIFE_MAX: Duration = Duration::from_secs(366 * 86400);

/// Pools and prefixes already seen in earlier IPv6 subnets, for the overlap checks.
#[derive(Default)]
pub(crate) struct Seen6 {
    pools: Vec<Ipv6Range>,
    pd: Vec<(Ipv6Net, Range<usize>)>,
}

/// The span of the first present value, else `fallback`.
fn first_span(spans: &[Option<Range<usize>>], fallback: Range<usize>) -> Range<usize> {
    spans.iter().flatten().next().cloned().unwrap_or(fallback)
}

impl Validator {
    /// One IPv6 subnet (`net` is its parsed network); `None` when it cannot be used at all.
    pub(crate) fn subnet6(
        &mut self,
        s: &wire::Subnet,
        net: Ipv6Net,
        domain: &str,
        earlier: &[Dhcp6Subnet],
        seen: &mut Seen6,
    ) -> Option<Dhcp6Subnet> {
        let fix = "use a prefix length from 8 to 126 (/64 for a LAN)";
        if !self.network_shape(&s.network, net, net.prefix_len(), 8..=126, fix) {
            return None;
        }
        for other in earlier {
            if other.network.contains(&net.network()) || net.contains(&other.network.network()) {
                self.d.push(
                    span(&s.network),
                    format!("network `{net}` overlaps subnet `{}`", other.network),
                    "subnets must not overlap: fix the prefix or merge them",
                );
            }
        }
        self.no_v4_keys(s, net);
        let name = s
            .name
            .as_ref()
            .map_or_else(|| net.to_string(), |n| self.label(n, "subnet name"));
        let pools = self.pools6(s, net, seen);
        let pd_pools = self.pd_pools(&s.pd_pool, seen);
        let (preferred, valid, t1, t2) = self.lifetimes(s);
        let slaac = match &s.slaac {
            Some(v) if *v.get_ref() && net.prefix_len() != 64 => {
                self.d.push(
                    span(v),
                    format!("slaac on subnet {net}: SLAAC needs a /64 prefix"),
                    "make the network a /64, or set slaac = false and give an address pool",
                );
                false
            }
            Some(v) => *v.get_ref(),
            None => pools.is_empty() && net.prefix_len() == 64,
        };
        let mtu = s
            .mtu
            .as_ref()
            .map(|m| self.int(&Some(m.clone()), 1500, 1280, 65535, "IPv6 mtu") as u16);
        let sdomain = s
            .domain
            .as_ref()
            .map_or_else(|| domain.to_owned(), |d| self.dns_name(d, "domain"));
        let search = s
            .search
            .iter()
            .map(|d| self.dns_name(d, "search domain"))
            .collect();
        Some(Dhcp6Subnet {
            name,
            network: net,
            interface: s.interface.as_ref().map(|i| i.get_ref().clone()),
            dns: self.ips6(&s.dns, "DNS server"),
            domain: sdomain,
            search,
            ntp: self.ips6(&s.ntp, "NTP server"),
            mtu,
            preferred,
            valid,
            t1,
            t2,
            pools,
            pd_pools,
            ra: s.ra.as_ref().is_none_or(|r| *r.get_ref()),
            slaac,
            rapid_commit: s.rapid_commit.as_ref().is_some_and(|r| *r.get_ref()),
        })
    }

    /// Address pools: inside the subnet, not overlapping any other IPv6 pool.
    fn pools6(&mut self, s: &wire::Subnet, net: Ipv6Net, seen: &mut Seen6) -> Vec<Pool6> {
        let mut pools = Vec::new();
        for p in &s.pool {
            let Some(r) = self.range6(&p.range) else {
                continue;
            };
            if !net.contains(&r.start) || !net.contains(&r.end) {
                self.d.push(
                    span(&p.range),
                    format!("range `{r}` is not inside subnet {net}"),
                    format!(
                        "use addresses between {} and {}",
                        net.network(),
                        net.broadcast()
                    ),
                );
            }
            for o in &seen.pools {
                if o.overlaps(&r) {
                    self.d.push(
                        span(&p.range),
                        format!("range `{r}` overlaps range `{o}`"),
                        "ranges must not share addresses: shorten one of them",
                    );
                }
            }
            seen.pools.push(r);
            pools.push(Pool6 { range: r });
        }
        pools
    }

    /// Prefix-delegation pools: a prefix with host bits zero, a delegated length longer than it,
    /// no two pools sharing a prefix.
    fn pd_pools(&mut self, pd: &[wire::PdPool], seen: &mut Seen6) -> Vec<PdPool> {
        let mut out = Vec::new();
        for p in pd {
            let t = p.prefix.get_ref().trim();
            let Ok(written) = t.parse::<Ipv6Net>() else {
                self.d.push(
                    span(&p.prefix),
                    format!("pd-pool prefix `{t}` is not an IPv6 prefix"),
                    "write it as ADDRESS/LENGTH, e.g. \"fd00:1000::/48\"",
                );
                continue;
            };
            let prefix = written.trunc();
            if prefix != written {
                self.d.push(
                    span(&p.prefix),
                    format!("pd-pool prefix `{t}` has host bits set"),
                    format!("write the prefix itself: \"{prefix}\""),
                );
            }
            let len = *p.delegated_length.get_ref();
            if len <= i64::from(prefix.prefix_len()) || len > 128 {
                self.d.push(
                    span(&p.delegated_length),
                    format!(
                        "delegated-length `{len}` is not longer than the pd-pool prefix {prefix}"
                    ),
                    format!(
                        "use a length from {} to 128 (e.g. 56 or 64 from a /48)",
                        prefix.prefix_len() + 1
                    ),
                );
                continue;
            }
            for (o, _) in &seen.pd {
                if o.contains(&prefix.network()) || prefix.contains(&o.network()) {
                    self.d.push(
                        span(&p.prefix),
                        format!("pd-pool prefix `{prefix}` overlaps pd-pool prefix `{o}`"),
                        "delegated prefixes must not share addresses: pick another prefix",
                    );
                }
            }
            seen.pd.push((prefix, span(&p.prefix)));
            out.push(PdPool {
                prefix,
                delegated_len: len as u8,
            });
        }
        out
    }

    /// A pd-pool prefix must not overlap an IPv6 subnet (delegated prefixes are routed to the
    /// client, not on-link); checked once every subnet is known.
    pub(crate) fn pd_off_link(&mut self, subnets6: &[Dhcp6Subnet], seen: &Seen6) {
        for (p, sp) in &seen.pd {
            for s in subnets6 {
                if s.network.contains(&p.network()) || p.contains(&s.network.network()) {
                    self.d.push(
                        sp.clone(),
                        format!("pd-pool prefix `{p}` overlaps subnet `{}`", s.network),
                        "delegate prefixes from outside every subnet (they are routed to the client, not on-link)",
                    );
                }
            }
        }
    }

    /// Preferred and valid lifetimes, T1 and T2 with Kea's defaults, in the order
    /// T1 <= T2 <= preferred <= valid.
    fn lifetimes(&mut self, s: &wire::Subnet) -> (Duration, Duration, Duration, Duration) {
        let given_valid = s.valid_lifetime.as_ref().and_then(|v| {
            humantime::parse_duration(v.get_ref().trim())
                .ok()
                .filter(|d| (LIFE_MIN..=LIFE_MAX).contains(d))
        });
        let preferred = self.duration(
            &s.preferred_lifetime,
            given_valid.map_or(PREFERRED, |v| v.min(PREFERRED)),
            LIFE_MIN,
            LIFE_MAX,
            "preferred-lifetime",
        );
        let valid = self.duration(
            &s.valid_lifetime,
            preferred.max(VALID),
            LIFE_MIN,
            LIFE_MAX,
            "valid-lifetime",
        );
        let t2_default = preferred * 4 / 5;
        let t2 = self.duration(&s.t2, t2_default, Duration::ZERO, LIFE_MAX, "t2");
        let t1 = self.duration(
            &s.t1,
            (preferred / 2).min(t2),
            Duration::ZERO,
            LIFE_MAX,
            "t1",
        );
        let show = |d: Duration| humantime::format_duration(d).to_string();
        let order = [
            ("t1", &s.t1, t1),
            ("t2", &s.t2, t2),
            ("preferred-lifetime", &s.preferred_lifetime, preferred),
            ("valid-lifetime", &s.valid_lifetime, valid),
        ];
        for pair in order.windows(2) {
            let [(an, aw, a), (bn, bw, b)] = pair else {
                continue;
            };
            if a > b {
                let at = first_span(
                    &[aw.as_ref().map(span), bw.as_ref().map(span)],
                    span(&s.network),
                );
                self.d.push(
                    at,
                    format!("{an} `{}` is longer than {bn} ({})", show(*a), show(*b)),
                    "keep t1 <= t2 <= preferred-lifetime <= valid-lifetime",
                );
            }
        }
        (preferred, valid, t1, t2)
    }

    /// DHCPv4 keys written on an IPv6 subnet.
    fn no_v4_keys(&mut self, s: &wire::Subnet, net: Ipv6Net) {
        let first = |v: &[S<String>]| v.first().map(span);
        let found: [(&str, Option<Range<usize>>, &str); 9] = [
            (
                "routers",
                first(&s.routers),
                "IPv6 hosts learn their router from router advertisements (`ra`): remove it",
            ),
            (
                "broadcast",
                s.broadcast.as_ref().map(span),
                "IPv6 has no broadcast: remove it",
            ),
            (
                "lease",
                s.lease.as_ref().map(span),
                "use preferred-lifetime and valid-lifetime",
            ),
            (
                "max-lease",
                s.max_lease.as_ref().map(span),
                "use preferred-lifetime and valid-lifetime",
            ),
            (
                "authoritative",
                s.authoritative.as_ref().map(span),
                "remove it (DHCPv6 has no NAK)",
            ),
            (
                "next-server",
                s.next_server.as_ref().map(span),
                "remove it (BOOTP/PXE over IPv4 only)",
            ),
            (
                "boot-file",
                s.boot_file.as_ref().map(span),
                "remove it (BOOTP/PXE over IPv4 only)",
            ),
            (
                "bootp",
                s.pool.iter().find_map(|p| p.bootp.as_ref().map(span)),
                "remove it (BOOTP is IPv4 only)",
            ),
            (
                "option",
                s.option.first().map(|o| span(&o.code)),
                "remove it: options by code are DHCPv4 codes",
            ),
        ];
        for (key, at, fix) in found {
            if let Some(at) = at {
                self.d.push(
                    at,
                    format!("`{key}` is a DHCPv4 key but subnet {net} is IPv6"),
                    fix,
                );
            }
        }
    }

    /// DHCPv6 keys written on an IPv4 subnet.
    pub(crate) fn no_v6_keys(&mut self, s: &wire::Subnet, net: IpNet) {
        let found: [(&str, Option<Range<usize>>); 8] = [
            ("pd-pool", s.pd_pool.first().map(|p| span(&p.prefix))),
            (
                "preferred-lifetime",
                s.preferred_lifetime.as_ref().map(span),
            ),
            ("valid-lifetime", s.valid_lifetime.as_ref().map(span)),
            ("t1", s.t1.as_ref().map(span)),
            ("t2", s.t2.as_ref().map(span)),
            ("ra", s.ra.as_ref().map(span)),
            ("slaac", s.slaac.as_ref().map(span)),
            ("rapid-commit", s.rapid_commit.as_ref().map(span)),
        ];
        for (key, at) in found {
            if let Some(at) = at {
                self.d.push(
                    at,
                    format!("`{key}` is a DHCPv6 key but subnet {net} is IPv4"),
                    "remove it, or move it to an IPv6 [[subnet]] (an IPv4 subnet's lease time is `lease`)",
                );
            }
        }
    }
}
