//! From the wire structs to a validated [`HostTable`], collecting every problem on the way.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use ipnet::{IpNet, Ipv4Net};
use serde::Serialize;

use crate::error::{ConfigError, Diags, to_problems};
use crate::model::*;
use crate::wire::{self, S};

/// Default location of the host file.
pub const DEFAULT_CONFIG: &str = "/etc/lansuite/hosts.toml";

const FIX_SYNTAX: &str =
    "correct the TOML at this point (see the host file reference in README.md)";

/// A host from the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Host {
    /// One DNS label, lower case.
    pub name: String,
    /// IPv4 addresses.
    pub ips: Vec<Ipv4Addr>,
    /// IPv6 addresses (AAAA only).
    pub ipv6: Vec<Ipv6Addr>,
    /// Hardware address for the DHCP reservation.
    pub mac: Option<Mac>,
    /// Extra names (CNAMEs).
    pub aliases: Vec<String>,
    /// Published in DNS.
    pub dns: bool,
}

/// The whole LAN, validated. Each daemon takes only its own view.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTable {
    /// The file it came from, if any.
    pub source: Option<PathBuf>,
    /// The domain, lower case, no trailing dot.
    pub domain: String,
    /// Hosts in file order.
    pub hosts: Vec<Host>,
    dhcp: DhcpView,
    dns: DnsView,
    lb: LbView,
}

impl HostTable {
    /// Reads and validates a host file.
    pub fn load(path: &Path) -> Result<HostTable, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        let mut t = Self::parse(&text, &path.display().to_string(), path.parent())?;
        t.source = Some(path.to_owned());
        Ok(t)
    }

    /// Validates host-file text; `file` names it in errors.
    pub fn from_toml(text: &str) -> Result<HostTable, ConfigError> {
        Self::parse(text, "<string>", None)
    }

    fn parse(text: &str, file: &str, base: Option<&Path>) -> Result<HostTable, ConfigError> {
        let invalid = |diags: Diags| ConfigError::Invalid {
            file: file.to_owned(),
            problems: to_problems(text, diags.0),
        };
        let mut d = Diags::default();
        let wire = parse_wire(text, &mut d);
        let Some(wire) = wire else {
            return Err(invalid(d));
        };
        let mut v = Validator {
            d,
            base: base.map(Path::to_owned),
        };
        let t = v.table(wire);
        if v.d.0.is_empty() {
            Ok(t)
        } else {
            Err(invalid(v.d))
        }
    }

    /// The DHCP server's view.
    pub fn dhcp_view(&self) -> DhcpView {
        self.dhcp.clone()
    }
    /// The DNS server's view.
    pub fn dns_view(&self) -> DnsView {
        self.dns.clone()
    }
    /// The load balancer's view.
    pub fn lb_view(&self) -> LbView {
        self.lb.clone()
    }
}

/// Deserializes the wire structs. Unknown keys are all reported: each one found is recorded, cut
/// from the parsed document and the document tried again, so a file with three misspelt keys gets
/// three errors in one run (and the semantic checks after them), not one per edit.
fn parse_wire(text: &str, d: &mut Diags) -> Option<wire::File> {
    use serde::Deserialize as _;
    let mut doc = match toml::de::DeTable::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            d.push(
                e.span().unwrap_or(0..0),
                e.message().trim(),
                fix_for(e.message()),
            );
            return None;
        }
    };
    for _ in 0..200 {
        let e = match wire::File::deserialize(toml::de::Deserializer::from(doc.clone())) {
            Ok(w) => return Some(w),
            Err(e) => e,
        };
        let msg = e.message().trim().to_owned();
        let span = e.span().unwrap_or(0..0);
        d.push(span.clone(), &msg, fix_for(&msg));
        if !msg.starts_with("unknown field") || !cut_key(doc.get_mut(), &span) {
            return None;
        }
    }
    None
}

fn fix_for(msg: &str) -> &'static str {
    if msg.starts_with("unknown field") {
        "remove the key or correct its spelling (keys are listed in README.md)"
    } else if msg.contains("BackendRef") {
        "write a backend as a host name, \"web1\", or as { host = \"web1\", port = 8080, weight = 2 }"
    } else if msg.contains("StrList") {
        "write one address as a string or several as a list of strings"
    } else if msg.starts_with("duplicate key") {
        "each name may appear only once: rename or merge the two entries"
    } else {
        FIX_SYNTAX
    }
}

/// Removes the key whose span is `span` from anywhere in the document.
fn cut_key(t: &mut toml::de::DeTable<'_>, span: &Range<usize>) -> bool {
    let hit = t
        .iter()
        .find(|(k, _)| k.span() == *span)
        .map(|(k, _)| k.clone());
    if let Some(k) = hit {
        t.remove(&k);
        return true;
    }
    t.iter_mut().any(|(_, v)| cut_in_value(v.get_mut(), span))
}

fn cut_in_value(v: &mut toml::de::DeValue<'_>, span: &Range<usize>) -> bool {
    match v {
        toml::de::DeValue::Table(t) => cut_key(t, span),
        toml::de::DeValue::Array(a) => a.iter_mut().any(|x| cut_in_value(x.get_mut(), span)),
        _ => false,
    }
}

struct Validator {
    d: Diags,
    base: Option<PathBuf>,
}

/// True for a valid DNS label (letters, digits, hyphens; no leading/trailing hyphen; 1-63).
pub fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// True for a valid host name made of labels (`a.b.c`), at most 253 characters, trailing dot allowed.
pub fn is_dns_name(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_label)
}

fn span<T>(s: &S<T>) -> Range<usize> {
    s.span()
}

fn fqdn(name: &str, domain: &str) -> String {
    format!("{name}.{domain}.")
}

/// The reverse zones covering `net`: octet-aligned, at most /24, at least the network itself.
pub fn reverse_zones(net: Ipv4Net) -> Vec<Ipv4Net> {
    let p = net.prefix_len();
    let q = p.div_ceil(8).clamp(1, 3) * 8;
    if q >= p {
        net.subnets(q).map(|s| s.collect()).unwrap_or_default()
    } else {
        vec![
            Ipv4Net::new(net.network(), q)
                .map(|n| n.trunc())
                .unwrap_or(net),
        ]
    }
}

/// `10.168.192.in-addr.arpa.` for 192.168.10.0/24.
pub fn reverse_origin(net: Ipv4Net) -> String {
    let o = net.network().octets();
    let n = usize::from(net.prefix_len() / 8);
    let mut s: Vec<String> = o[..n].iter().rev().map(|b| b.to_string()).collect();
    s.push("in-addr.arpa.".into());
    s.join(".")
}

/// `10.10.168.192.in-addr.arpa.` for 192.168.10.10.
pub fn ptr_name(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("{}.{}.{}.{}.in-addr.arpa.", o[3], o[2], o[1], o[0])
}

impl Validator {
    fn ip(&mut self, s: &S<String>, what: &str) -> Option<Ipv4Addr> {
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

    fn ips(&mut self, v: &[S<String>], what: &str) -> Vec<Ipv4Addr> {
        v.iter().filter_map(|s| self.ip(s, what)).collect()
    }

    fn sockaddr(&mut self, s: &S<String>, default_port: u16, what: &str) -> Option<SocketAddr> {
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

    fn net(&mut self, s: &S<String>, what: &str) -> Option<IpNet> {
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

    fn duration(
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

    fn int(&mut self, s: &Option<S<i64>>, default: i64, min: i64, max: i64, what: &str) -> i64 {
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

    fn label(&mut self, s: &S<String>, what: &str) -> String {
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

    fn dns_name(&mut self, s: &S<String>, what: &str) -> String {
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

    fn range(&mut self, s: &S<String>) -> Option<Ipv4Range> {
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

    fn options(&mut self, opts: &[wire::DhcpOption]) -> Vec<RawOption> {
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

    fn key_ref(&mut self, s: &S<String>, keys: &BTreeMap<String, TsigKey>) -> Option<TsigKey> {
        let name = s.get_ref().trim().to_ascii_lowercase();
        let k = keys.get(&name).cloned();
        if k.is_none() {
            let known: Vec<&str> = keys.keys().map(String::as_str).collect();
            self.d.push(
                span(s),
                format!("key `{}` is not defined", s.get_ref()),
                if known.is_empty() {
                    "define it in a [key.NAME] table with algorithm and secret".to_owned()
                } else {
                    format!(
                        "use one of: {}, or define it in a [key.NAME] table",
                        known.join(", ")
                    )
                },
            );
        }
        k
    }

    fn table(&mut self, w: wire::File) -> HostTable {
        let domain = self.dns_name(&w.domain, "domain");
        let ttl = self.duration(
            &w.ttl,
            Duration::from_secs(3600),
            Duration::from_secs(1),
            Duration::from_secs(7 * 86400),
            "ttl",
        );
        let ttl = ttl.as_secs() as u32;

        // Keys.
        let mut keys = BTreeMap::new();
        for (name, k) in &w.key {
            let n = self.dns_name(name, "key name");
            let algorithm = k.algorithm.as_ref().map_or("hmac-sha256".to_owned(), |a| {
                a.get_ref().to_ascii_lowercase()
            });
            if !["hmac-sha256", "hmac-sha384", "hmac-sha512"].contains(&algorithm.as_str()) {
                let s = k.algorithm.as_ref().map_or(span(name), span);
                self.d.push(
                    s,
                    format!("key algorithm `{algorithm}` is not supported"),
                    "use hmac-sha256 (or hmac-sha384, hmac-sha512)",
                );
            }
            let secret =
                match base64::engine::general_purpose::STANDARD.decode(k.secret.get_ref().trim()) {
                    Ok(s) if s.len() >= 16 => s,
                    Ok(_) => {
                        self.d.push(
                            span(&k.secret),
                            "key secret is shorter than 16 bytes",
                            "generate one with `tsig-keygen` or `openssl rand -base64 32`",
                        );
                        Vec::new()
                    }
                    Err(_) => {
                        self.d.push(
                            span(&k.secret),
                            "key secret is not base64",
                            "generate one with `tsig-keygen` or `openssl rand -base64 32`",
                        );
                        Vec::new()
                    }
                };
            keys.insert(
                n.clone(),
                TsigKey {
                    name: n,
                    algorithm,
                    secret,
                },
            );
        }

        // Subnets.
        let mut subnets: Vec<DhcpSubnet> = Vec::new();
        let mut all_pools: Vec<(Ipv4Range, Range<usize>)> = Vec::new();
        for s in &w.subnet {
            let Some(net) = self.net(&s.network, "network") else {
                continue;
            };
            let IpNet::V4(net4) = net else {
                self.d.push(
                    span(&s.network),
                    format!("network `{}` is not IPv4", s.network.get_ref()),
                    "DHCP subnets are IPv4: write e.g. \"192.168.10.0/24\"",
                );
                continue;
            };
            let written: Option<Ipv4Net> = s.network.get_ref().trim().parse().ok();
            if let Some(wn) = written
                && wn != net4
            {
                self.d.push(
                    span(&s.network),
                    format!("network `{}` has host bits set", s.network.get_ref()),
                    format!("write the network address: \"{net4}\""),
                );
            }
            if !(8..=30).contains(&net4.prefix_len()) {
                self.d.push(
                    span(&s.network),
                    format!("network `{net4}` has a prefix outside /8-/30"),
                    "use a prefix length from 8 to 30",
                );
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
                    bootp: p.bootp,
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
                .map_or_else(|| domain.clone(), |d| self.dns_name(d, "domain"));
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
                authoritative: s.authoritative.unwrap_or(false),
                next_server,
                boot_file: s.boot_file.as_ref().map(|b| b.get_ref().clone()),
                pools,
                options,
            });
        }
        let subnet_of = |ip: Ipv4Addr| subnets.iter().position(|s| s.network.contains(&ip));

        // Hosts.
        let mut hosts = Vec::new();
        let mut reservations = Vec::new();
        let mut names: HashMap<String, String> = HashMap::new(); // name -> what owns it
        let mut addr_owner: HashMap<Ipv4Addr, String> = HashMap::new();
        let mut mac_owner: HashMap<Mac, String> = HashMap::new();
        for (hname, h) in &w.host {
            let name = self.label(hname, "host name");
            if let Some(prev) = names.insert(name.clone(), format!("host {name}")) {
                self.d.push(
                    span(hname),
                    format!("host name `{name}` is already used by {prev}"),
                    "give every host a different name",
                );
            }
            let ip_list = wire::items(&h.ip);
            if ip_list.is_empty() {
                self.d.push(span(hname), format!("host `{name}` has no address"), "add ip = \"ADDRESS\" (a host without an address cannot be reserved or published)");
            }
            let mut ips = Vec::new();
            for s in &ip_list {
                let Some(ip) = self.ip(s, "host address") else {
                    continue;
                };
                if let Some(prev) = addr_owner.insert(ip, format!("host {name}")) {
                    self.d.push(
                        span(s),
                        format!("address `{ip}` is already used by {prev}"),
                        "give every host its own address",
                    );
                }
                match subnet_of(ip) {
                    None => self.d.push(
                        span(s),
                        format!("address `{ip}` of host `{name}` is outside every subnet"),
                        "add a [[subnet]] that contains it, or correct the address",
                    ),
                    Some(i) => {
                        let sn = &subnets[i];
                        if ip == sn.network.network() || ip == sn.network.broadcast() {
                            self.d.push(
                                span(s),
                                format!(
                                    "address `{ip}` is the network or broadcast address of {}",
                                    sn.network
                                ),
                                "use a host address inside the subnet",
                            );
                        }
                    }
                }
                ips.push(ip);
            }
            let ipv6: Vec<Ipv6Addr> = wire::items(&h.ipv6)
                .iter()
                .filter_map(|s| match s.get_ref().trim().parse::<Ipv6Addr>() {
                    Ok(a) => Some(a),
                    Err(_) => {
                        self.d.push(
                            span(s),
                            format!("ipv6 `{}` is not an IPv6 address", s.get_ref()),
                            "write it like \"2001:db8::10\"",
                        );
                        None
                    }
                })
                .collect();
            let mac = h
                .mac
                .as_ref()
                .and_then(|m| match m.get_ref().trim().parse::<Mac>() {
                    Ok(mac) => {
                        if let Some(prev) = mac_owner.insert(mac, format!("host {name}")) {
                            self.d.push(
                                span(m),
                                format!("MAC `{mac}` is already used by {prev}"),
                                "a MAC can be reserved for one host only",
                            );
                        }
                        Some(mac)
                    }
                    Err(()) => {
                        self.d.push(
                            span(m),
                            format!("MAC `{}` is not a hardware address", m.get_ref()),
                            "write six hex bytes separated by colons, e.g. \"02:00:00:00:10:10\"",
                        );
                        None
                    }
                });
            let client_id = h.client_id.as_ref().map(|c| {
                let t = c.get_ref().trim();
                let hex: String = t.chars().filter(|ch| *ch != ':').collect();
                if hex.len().is_multiple_of(2)
                    && !hex.is_empty()
                    && hex.chars().all(|ch| ch.is_ascii_hexdigit())
                {
                    (0..hex.len())
                        .step_by(2)
                        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0))
                        .collect()
                } else {
                    t.as_bytes().to_vec()
                }
            });
            let mut aliases = Vec::new();
            for a in &h.aliases {
                let al = self.label(a, "alias");
                if let Some(prev) = names.insert(al.clone(), format!("host {name}")) {
                    self.d.push(
                        span(a),
                        format!("alias `{al}` is already used by {prev}"),
                        "names, aliases and service names must all differ",
                    );
                }
                aliases.push(al);
            }
            let host_opts = self.options(&h.option);
            if mac.is_some() || client_id.is_some() {
                for (ip, s) in ips.iter().zip(&ip_list) {
                    let Some(si) = subnet_of(*ip) else { continue };
                    if let Some(p) = subnets[si].pools.iter().find(|p| p.range.contains(*ip)) {
                        self.d.push(span(s), format!("reserved address `{ip}` of host `{name}` is inside the dynamic range {}", p.range), "choose an address outside every range, or shrink the range");
                    }
                    reservations.push(Reservation {
                        hostname: name.clone(),
                        mac,
                        client_id: client_id.clone(),
                        ip: *ip,
                        subnet: si,
                        boot_file: h.boot_file.as_ref().map(|b| b.get_ref().clone()),
                        options: host_opts.clone(),
                    });
                }
            }
            hosts.push(Host {
                name,
                ips,
                ipv6,
                mac,
                aliases,
                dns: h.dns.unwrap_or(true),
            });
        }
        let host_by_name: HashMap<&str, &Host> =
            hosts.iter().map(|h| (h.name.as_str(), h)).collect();

        let server = w.server.as_ref().map(|s| {
            let n = self.label(s, "server");
            if !host_by_name.contains_key(n.as_str()) {
                self.d.push(
                    span(s),
                    format!("server `{n}` is not a host in this file"),
                    "name the [host.NAME] that runs the daemons",
                );
            }
            n
        });
        let server_ips: Vec<Ipv4Addr> = server
            .as_ref()
            .and_then(|s| host_by_name.get(s.as_str()))
            .map(|h| h.ips.clone())
            .unwrap_or_default();

        // Services.
        let lbw = w.lb.as_ref();
        let mut services = Vec::new();
        for (sname, s) in &w.service {
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
        let service_dns: Vec<bool> = w.service.values().map(|s| s.dns.unwrap_or(true)).collect();

        // DHCP settings.
        let dw = w.dhcp.as_ref();
        let ddns = dw.and_then(|d| d.ddns.as_ref()).map(|dd| {
            let server = self
                .sockaddr(&dd.server, 53, "ddns server")
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 53)));
            let key = dd.key.as_ref().and_then(|k| self.key_ref(k, &keys));
            let ttl = self.duration(
                &dd.ttl,
                Duration::from_secs(300),
                Duration::from_secs(1),
                Duration::from_secs(86400),
                "ddns ttl",
            );
            let mut reverse_zones: Vec<String> = subnets
                .iter()
                .flat_map(|s| reverse_zones(s.network))
                .map(|n| reverse_origin(n).trim_end_matches('.').to_owned())
                .collect();
            reverse_zones.dedup();
            DdnsConfig {
                server,
                key,
                ttl,
                forward_zone: domain.clone(),
                reverse_zones,
            }
        });
        let interfaces: Vec<String> = dw
            .map(|d| d.interfaces.iter().map(|i| i.get_ref().clone()).collect())
            .unwrap_or_default();
        let metrics_of = |v: &mut Validator, m: Option<&S<String>>, port: u16| {
            m.and_then(|m| v.sockaddr(m, port, "metrics"))
        };
        let dhcp = DhcpView {
            domain: domain.clone(),
            reservations,
            interfaces,
            port: self.int(&dw.and_then(|d| d.port.clone()), 67, 1, 65535, "dhcp port") as u16,
            lease_db: self.path(
                dw.and_then(|d| d.lease_db.as_deref())
                    .filter(|s| !is_db_url(s)),
                "/var/lib/dhcpd/leases.redb",
            ),
            lease_db_url: dw
                .and_then(|d| d.lease_db.as_deref())
                .filter(|s| is_db_url(s))
                .map(str::to_owned),
            decline_probation: self.duration(
                &dw.and_then(|d| d.decline_probation.clone()),
                Duration::from_secs(3600),
                Duration::from_secs(1),
                Duration::from_secs(30 * 86400),
                "decline-probation",
            ),
            ping_check: dw.and_then(|d| d.ping_check).unwrap_or(true),
            ping_timeout: self.duration(
                &dw.and_then(|d| d.ping_timeout.clone()),
                Duration::from_millis(300),
                Duration::from_millis(10),
                Duration::from_secs(5),
                "ping-timeout",
            ),
            discover_backlog: self.int(
                &dw.and_then(|d| d.discover_backlog.clone()),
                256,
                0,
                1_000_000,
                "discover-backlog",
            ) as u32,
            leases_per_mac: self.int(
                &dw.and_then(|d| d.leases_per_mac.clone()),
                4,
                0,
                65_535,
                "leases-per-mac",
            ) as u32,
            dynamic_bootp_lease_length: dw.and_then(|d| d.dynamic_bootp_lease_length.clone()).map(
                |s| {
                    self.duration(
                        &Some(s),
                        Duration::from_secs(86400),
                        Duration::from_secs(60),
                        Duration::from_secs(100 * 365 * 86400),
                        "dynamic-bootp-lease-length",
                    )
                },
            ),
            dynamic_bootp_lease_cutoff: dw
                .and_then(|d| d.dynamic_bootp_lease_cutoff.as_ref())
                .and_then(|s| {
                    let t = s.get_ref().trim();
                    match humantime::parse_rfc3339_weak(t)
                        .ok()
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    {
                        Some(d) => Some(d.as_secs()),
                        None => {
                            self.d.push(
                                span(s),
                                format!("dynamic-bootp-lease-cutoff `{t}` is not a date"),
                                "write a UTC date and time like \"2027-06-30 00:00:00\"",
                            );
                            None
                        }
                    }
                }),
            ddns,
            metrics: metrics_of(self, dw.and_then(|d| d.metrics.as_ref()), 9167),
            control_socket: self.path(
                dw.and_then(|d| d.control_socket.as_deref()),
                "/run/dhcpd/control.sock",
            ),
            subnets: subnets.clone(),
        };

        // DNS.
        let nw = w.dns.as_ref();
        let dns = self.dns(
            nw,
            &domain,
            ttl,
            &hosts,
            &services,
            &service_dns,
            &subnets,
            &server,
            &server_ips,
            &keys,
        );

        // LB.
        let vrrp = lbw.and_then(|l| l.vrrp.as_ref()).map(|v| VrrpConfig {
            vrid: self.int(&Some(v.vrid.clone()), 1, 1, 255, "vrid") as u8,
            priority: self.int(&v.priority, 100, 1, 255, "priority") as u8,
            preempt: v.preempt.unwrap_or(true),
            interval: {
                let d = self.duration(
                    &v.interval,
                    Duration::from_secs(1),
                    Duration::from_millis(10),
                    Duration::from_millis(40950),
                    "vrrp interval",
                );
                Duration::from_millis(d.as_millis().div_ceil(10) as u64 * 10)
            },
            interface: v.interface.as_ref().map(|i| i.get_ref().clone()),
            peers: self.ips(&v.peers, "VRRP peer"),
            source: v.source.as_ref().and_then(|s| self.ip(s, "VRRP source")),
        });
        let lb = LbView {
            services,
            interface: lbw
                .and_then(|l| l.interface.as_ref())
                .map(|i| i.get_ref().clone()),
            garp_refresh: lbw.and_then(|l| l.garp_refresh.as_ref()).map(|_| {
                self.duration(
                    &lbw.and_then(|l| l.garp_refresh.clone()),
                    Duration::from_secs(60),
                    Duration::from_secs(1),
                    Duration::from_secs(86400),
                    "garp-refresh",
                )
            }),
            vrrp,
            max_checks: self.int(
                &lbw.and_then(|l| l.max_checks.clone()),
                64,
                1,
                10_000,
                "max-checks",
            ) as u32,
            metrics: metrics_of(self, lbw.and_then(|l| l.metrics.as_ref()), 9169),
            control_socket: self.path(
                lbw.and_then(|l| l.control_socket.as_deref()),
                "/run/lbd/control.sock",
            ),
        };

        HostTable {
            source: None,
            domain,
            hosts,
            dhcp,
            dns,
            lb,
        }
    }

    fn path(&self, p: Option<&str>, default: &str) -> PathBuf {
        let p = PathBuf::from(p.unwrap_or(default));
        match &self.base {
            Some(b) if p.is_relative() => b.join(p),
            _ => p,
        }
    }

    fn check(&mut self, c: Option<&wire::Check>, dataplane: Dataplane) -> HealthCheck {
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

    #[allow(clippy::too_many_arguments)]
    fn dns(
        &mut self,
        nw: Option<&wire::Dns>,
        domain: &str,
        ttl: u32,
        hosts: &[Host],
        services: &[VirtualService],
        service_dns: &[bool],
        subnets: &[DhcpSubnet],
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
                    format!("ns `{t}` is not a host with an address"),
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
                if !fwd.iter().any(|r| r.name == name) {
                    fwd.push(Record {
                        name: name.clone(),
                        ttl,
                        data: RecordData::A(s.vip),
                    });
                    ptrs.push((s.vip, name));
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

        let listen: Vec<SocketAddr> = match nw.map(|n| n.listen.as_slice()).unwrap_or_default() {
            [] => {
                let mut l: Vec<SocketAddr> = server_ips
                    .iter()
                    .map(|ip| SocketAddr::from((*ip, 53)))
                    .collect();
                l.push(SocketAddr::from(([127, 0, 0, 1], 53)));
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

/// A lease-db value naming a PostgreSQL database rather than a file.
fn is_db_url(s: &str) -> bool {
    s.starts_with("postgresql://") || s.starts_with("postgres://")
}
