//! The validator's state and the value checks every section uses: addresses, networks, durations,
//! numbers, names, ranges and paths. Each check records a problem (value, span, fix) and returns
//! something usable so that validation goes on and reports every problem at once.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::{IpNet, Ipv6Net};

use crate::error::Diags;
use crate::model::Ipv4Range;
use crate::model6::Ipv6Range;
use crate::names::{is_dns_name, is_label};
use crate::wire::S;

/// Collects the problems of one host file while its sections are checked.
pub(crate) struct Validator {
    pub(crate) d: Diags,
    /// What is valid but unsafe (the published example secret): shown by `--check`.
    pub(crate) warnings: Diags,
    /// The host file's folder: relative paths are resolved against it.
    pub(crate) base: Option<PathBuf>,
}

/// The byte span of a value, for a problem pointing at it.
pub(crate) fn span<T>(s: &S<T>) -> Range<usize> {
    s.span()
}

impl Validator {
    /// A subnet's `network` as written against the network it names: host bits clear and a
    /// prefix length in `lens` (both families). False, after reporting, when the length is out
    /// of range.
    pub(crate) fn network_shape<N>(
        &mut self,
        s: &S<String>,
        net: N,
        prefix: u8,
        lens: std::ops::RangeInclusive<u8>,
        fix: &str,
    ) -> bool
    where
        N: std::fmt::Display + PartialEq + std::str::FromStr,
    {
        let written: Option<N> = s.get_ref().trim().parse().ok();
        if written.is_some_and(|w| w != net) {
            self.d.push(
                span(s),
                format!("network `{}` has host bits set", s.get_ref()),
                format!("write the network address: \"{net}\""),
            );
        }
        if !lens.contains(&prefix) {
            self.d.push(
                span(s),
                format!(
                    "network `{net}` has a prefix outside /{}-/{}",
                    lens.start(),
                    lens.end()
                ),
                fix,
            );
            return false;
        }
        true
    }

    pub(crate) fn ip(&mut self, s: &S<String>, what: &str) -> Option<Ipv4Addr> {
        match s.get_ref().trim().parse::<Ipv4Addr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                self.d.push(
                    span(s),
                    format!("{what} `{}` is not an IPv4 address", s.get_ref()),
                    "write it as four numbers, e.g. \"192.168.10.1\"",
                );
                None
            }
        }
    }

    pub(crate) fn ips(&mut self, v: &[S<String>], what: &str) -> Vec<Ipv4Addr> {
        v.iter().filter_map(|s| self.ip(s, what)).collect()
    }

    pub(crate) fn ip6(&mut self, s: &S<String>, what: &str) -> Option<Ipv6Addr> {
        match s.get_ref().trim().parse::<Ipv6Addr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                self.d.push(
                    span(s),
                    format!("{what} `{}` is not an IPv6 address", s.get_ref()),
                    "write it like \"fd00:10::1\"",
                );
                None
            }
        }
    }

    pub(crate) fn ips6(&mut self, v: &[S<String>], what: &str) -> Vec<Ipv6Addr> {
        v.iter().filter_map(|s| self.ip6(s, what)).collect()
    }

    /// An IPv6 pool: `FIRST-LAST` or a prefix, `fd00:10::/112`.
    pub(crate) fn range6(&mut self, s: &S<String>) -> Option<Ipv6Range> {
        let t = s.get_ref().trim();
        if let Ok(n) = t.parse::<Ipv6Net>() {
            return Some(n.trunc().into());
        }
        let parsed = t.split_once('-').and_then(|(a, b)| {
            Some((
                a.trim().parse::<Ipv6Addr>().ok()?,
                b.trim().parse::<Ipv6Addr>().ok()?,
            ))
        });
        match parsed {
            Some((start, end)) if start <= end => Some(Ipv6Range { start, end }),
            Some(_) => {
                self.d.push(
                    span(s),
                    format!("range `{t}` ends before it starts"),
                    "write the lower address first, e.g. \"fd00:10::1000-fd00:10::1fff\"",
                );
                None
            }
            None => {
                self.d.push(
                    span(s),
                    format!("range `{t}` is not FIRST-LAST or a prefix"),
                    "write two IPv6 addresses joined by a hyphen, e.g. \"fd00:10::1000-fd00:10::1fff\", or a prefix inside the subnet, e.g. \"fd00:10::/112\"",
                );
                None
            }
        }
    }

    pub(crate) fn sockaddr(
        &mut self,
        s: &S<String>,
        default_port: u16,
        what: &str,
    ) -> Option<SocketAddr> {
        let t = s.get_ref().trim();
        if let Ok(a) = t.parse::<SocketAddr>() {
            return Some(a);
        }
        if let Ok(ip) = t.parse::<IpAddr>() {
            return Some(SocketAddr::new(ip, default_port));
        }
        self.d.push(
            span(s),
            format!("{what} `{t}` is not an address"),
            format!("write \"ADDRESS\" or \"ADDRESS:PORT\" (default port {default_port})"),
        );
        None
    }

    pub(crate) fn net(&mut self, s: &S<String>, what: &str) -> Option<IpNet> {
        let t = s.get_ref().trim();
        match t
            .parse::<IpNet>()
            .or_else(|_| t.parse::<IpAddr>().map(IpNet::from))
        {
            Ok(n) => Some(n.trunc()),
            Err(_) => {
                self.d.push(
                    span(s),
                    format!("{what} `{t}` is not a network"),
                    "write it as ADDRESS/PREFIX, e.g. \"192.168.10.0/24\"",
                );
                None
            }
        }
    }

    pub(crate) fn duration(
        &mut self,
        s: &Option<S<String>>,
        default: Duration,
        min: Duration,
        max: Duration,
        what: &str,
    ) -> Duration {
        let Some(s) = s else { return default };
        let t = s.get_ref().trim();
        match humantime::parse_duration(t) {
            Ok(d) if d >= min && d <= max => d,
            Ok(_) => {
                self.d.push(
                    span(s),
                    format!("{what} `{t}` is out of range"),
                    format!(
                        "use a duration from {} to {}",
                        humantime::format_duration(min),
                        humantime::format_duration(max)
                    ),
                );
                default
            }
            Err(_) => {
                self.d.push(
                    span(s),
                    format!("{what} `{t}` is not a duration"),
                    "write a number and a unit, e.g. \"90s\", \"10m\", \"12h\", \"1d\"",
                );
                default
            }
        }
    }

    pub(crate) fn int(
        &mut self,
        s: &Option<S<i64>>,
        default: i64,
        min: i64,
        max: i64,
        what: &str,
    ) -> i64 {
        let Some(s) = s else { return default };
        let v = *s.get_ref();
        if (min..=max).contains(&v) {
            v
        } else {
            self.d.push(
                span(s),
                format!("{what} `{v}` is out of range"),
                format!("use a whole number from {min} to {max}"),
            );
            default
        }
    }

    pub(crate) fn label(&mut self, s: &S<String>, what: &str) -> String {
        let t = s.get_ref().trim().to_ascii_lowercase();
        if !is_label(&t) {
            self.d.push(
                span(s),
                format!("{what} `{}` is not a valid DNS label", s.get_ref()),
                "use letters, digits and hyphens only (1-63 characters, not starting or ending with a hyphen)",
            );
        }
        t
    }

    pub(crate) fn dns_name(&mut self, s: &S<String>, what: &str) -> String {
        let t = s.get_ref().trim().to_ascii_lowercase();
        if !is_dns_name(&t) {
            self.d.push(
                span(s),
                format!("{what} `{}` is not a valid domain name", s.get_ref()),
                "use dot-separated labels of letters, digits and hyphens, e.g. \"example.com\"",
            );
        }
        t.trim_end_matches('.').to_owned()
    }

    pub(crate) fn range(&mut self, s: &S<String>) -> Option<Ipv4Range> {
        let t = s.get_ref().trim();
        let parsed = t.split_once('-').and_then(|(a, b)| {
            Some((
                a.trim().parse::<Ipv4Addr>().ok()?,
                b.trim().parse::<Ipv4Addr>().ok()?,
            ))
        });
        match parsed {
            Some((start, end)) if start <= end => Some(Ipv4Range { start, end }),
            Some(_) => {
                self.d.push(
                    span(s),
                    format!("range `{t}` ends before it starts"),
                    "write the lower address first, e.g. \"192.168.10.200-192.168.10.254\"",
                );
                None
            }
            None => {
                self.d.push(
                    span(s),
                    format!("range `{t}` is not FIRST-LAST"),
                    "write two addresses joined by a hyphen, e.g. \"192.168.10.200-192.168.10.254\"",
                );
                None
            }
        }
    }

    pub(crate) fn path(&self, p: Option<&str>, default: &str) -> PathBuf {
        let p = PathBuf::from(p.unwrap_or(default));
        match &self.base {
            Some(b) if p.is_relative() => b.join(p),
            _ => p,
        }
    }

    /// An optional metrics listen address, `port` when the value gives none.
    pub(crate) fn metrics(&mut self, m: Option<&S<String>>, port: u16) -> Option<SocketAddr> {
        m.and_then(|m| self.sockaddr(m, port, "metrics"))
    }
}
