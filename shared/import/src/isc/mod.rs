//! ISC DHCP `dhcpd.conf`: the statement tree from [`crate::block`] (ISC dialect: statements end
//! in `;` or carry a `{ }` block, `include "file";` spliced in), interpreted with ISC's scope
//! inheritance (global -> shared-network/group -> subnet -> pool/host).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;

use ipnet::Ipv4Net;

use crate::block::{self, Stmt};
use crate::facts::{Raw, RawOpt, RawPool, RawSubnet, mask_prefix};
use crate::source::{ImportError, ReadFn, Src};

mod ddns;
mod hosts;
mod options;
mod v6;

use options::{IP_OPTIONS, extra_option, ip, numeric};

/// Parameters that ISC inherits from enclosing scopes.
#[derive(Debug, Clone, Default)]
struct Scope {
    routers: Option<Vec<Ipv4Addr>>,
    dns: Option<Vec<Ipv4Addr>>,
    domain: Option<String>,
    search: Option<Vec<String>>,
    ntp: Option<Vec<Ipv4Addr>>,
    broadcast: Option<Ipv4Addr>,
    mask: Option<(Ipv4Addr, Src)>,
    mtu: Option<u16>,
    lease: Option<u64>,
    max_lease: Option<u64>,
    authoritative: Option<bool>,
    next_server: Option<Ipv4Addr>,
    filename: Option<String>,
    /// Options without a named host-file key, by code (an inner scope replaces an outer one).
    extra: Vec<RawOpt>,
    /// Where each named host-file key of the scope was set.
    srcs: BTreeMap<&'static str, Src>,
}

/// The host-file key an ISC parameter or option sets.
fn host_file_key(isc: &str) -> Option<&'static str> {
    Some(match isc {
        "routers" => "routers",
        "domain-name-servers" => "dns",
        "ntp-servers" => "ntp",
        "broadcast-address" => "broadcast",
        "domain-name" => "domain",
        "domain-search" => "search",
        "interface-mtu" => "mtu",
        "default-lease-time" => "lease",
        "max-lease-time" => "max-lease",
        "next-server" => "next-server",
        "filename" => "boot-file",
        "authoritative" | "not" => "authoritative",
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Ctx {
    Global,
    Shared,
    Group,
    Subnet(usize),
    Pool(Option<usize>),
}

/// A range waiting for its subnet (a range in a shared-network pool names no subnet).
struct PendingRange {
    pool: RawPool,
    subnet: Option<usize>,
}

struct Interp<'r> {
    raw: &'r mut Raw,
    subnets: Vec<(RawSubnet, Scope)>,
    ranges: Vec<PendingRange>,
    ddns_style: Option<(String, Src)>,
    ddns_ttl: Option<u64>,
    zones: Vec<ddns::Zone>,
    ddns_domain: Option<(String, Src)>,
    global6: v6::Global6,
}

pub(crate) fn import(
    text: &str,
    file: &Path,
    read: ReadFn<'_>,
    raw: &mut Raw,
) -> Result<(), ImportError> {
    let stmts = block::parse(text, file, read, &block::ISC)?;
    block::not_utf8(&stmts, false, &mut raw.unsupported);
    let mut it = Interp {
        raw,
        subnets: Vec::new(),
        ranges: Vec::new(),
        ddns_style: None,
        ddns_ttl: None,
        zones: Vec::new(),
        ddns_domain: None,
        global6: v6::Global6::default(),
    };
    let mut global = Scope::default();
    it.block(&stmts, &mut global, Ctx::Global)?;
    it.finish(&global)
}

fn number(s: &Src, v: Option<&String>, what: &str) -> Result<u64, ImportError> {
    v.and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| s.error(format!("{what} needs a whole number")))
}

impl Interp<'_> {
    fn unsupported(&mut self, st: &Stmt, reason: &str) {
        self.raw
            .unsupported
            .push(st.src.unsupported(st.text(), reason));
    }

    /// Parameters first (ISC applies a scope's parameters to the whole scope), then declarations.
    fn block(&mut self, stmts: &[Stmt], scope: &mut Scope, ctx: Ctx) -> Result<(), ImportError> {
        for st in stmts.iter().filter(|s| s.block.is_none()) {
            self.param(st, scope, ctx)?;
        }
        for st in stmts.iter().filter(|s| s.block.is_some()) {
            self.declaration(st, scope, ctx)?;
        }
        Ok(())
    }

    fn param(&mut self, st: &Stmt, scope: &mut Scope, ctx: Ctx) -> Result<(), ImportError> {
        let v = st.values();
        let s = &st.src;
        if let Some(k) = host_file_key(&st.keyword()) {
            scope.srcs.insert(k, s.clone());
        }
        match st.keyword().as_str() {
            "option" => self.option(st, scope)?,
            "default-lease-time" => scope.lease = Some(number(s, v.get(1), "default-lease-time")?),
            "max-lease-time" => scope.max_lease = Some(number(s, v.get(1), "max-lease-time")?),
            "authoritative" => scope.authoritative = Some(true),
            "not" if v.get(1).is_some_and(|w| w.eq_ignore_ascii_case("authoritative")) => {
                scope.authoritative = Some(false)
            }
            "next-server" => {
                let a = v.get(1).ok_or_else(|| s.error("next-server needs an address"))?;
                if numeric(a) {
                    scope.next_server = Some(ip(s, a, "next-server")?);
                } else {
                    self.unsupported(st, "host names are not resolved on import: write the address");
                }
            }
            "filename" => {
                scope.filename = Some(v.get(1).cloned().ok_or_else(|| s.error("filename needs a file name"))?)
            }
            "range" => self.range(st, ctx)?,
            "ddns-update-style" if ctx == Ctx::Global => {
                let style = v.get(1).map(|w| w.to_ascii_lowercase()).unwrap_or_default();
                if !["none", "interim", "standard", "ad-hoc"].contains(&style.as_str()) {
                    return Err(s.error(format!(
                        "ddns-update-style `{style}` is not none, interim or standard"
                    )));
                }
                self.ddns_style = Some((style, s.clone()));
            }
            "ddns-updates" if ctx == Ctx::Global => {
                if v.get(1).is_some_and(|w| w.eq_ignore_ascii_case("off") || w == "false") {
                    self.ddns_style = Some(("none".into(), s.clone()));
                }
            }
            "ddns-domainname" => {
                let d = v
                    .get(1)
                    .ok_or_else(|| s.error("ddns-domainname needs a domain in quotes"))?;
                if self.ddns_domain.is_none() {
                    self.ddns_domain = Some((d.trim_end_matches('.').to_ascii_lowercase(), s.clone()));
                }
            }
            "ddns-ttl" if ctx == Ctx::Global => {
                self.ddns_ttl = Some(number(s, v.get(1), "ddns-ttl")?);
            }
            "ping-check" if ctx == Ctx::Global => {
                self.raw.ping_check = Some(v.get(1).is_some_and(|w| {
                    ["true", "on", "yes"].contains(&w.to_ascii_lowercase().as_str())
                }));
            }
            "hardware" | "fixed-address" => self.unsupported(
                st,
                "only meaningful inside a `host` block",
            ),
            "preferred-lifetime" if ctx == Ctx::Global => {
                self.global6.preferred = Some(number(s, v.get(1), "preferred-lifetime")?);
            }
            "range6" | "prefix6" | "fixed-address6" | "fixed-prefix6" => self.unsupported(
                st,
                "only meaningful inside a `subnet6` (range6, prefix6) or a `host` (fixed-address6)",
            ),
            "log-facility" => self.unsupported(
                st,
                "the suite logs to the journal (stderr); choose the facility in the systemd unit",
            ),
            "lease-file-name" | "pid-file-name" | "leases-file-name" => self.unsupported(
                st,
                "leases live in [dhcp] lease-db (a crash-safe store); old leases are not migrated",
            ),
            k if k.starts_with("ddns") => self.unsupported(
                st,
                "dynamic DNS is configured by [dhcp] ddns (server, key, ttl) and always updates forward and reverse zones of the host file's domain",
            ),
            "allow" | "deny" | "ignore" => self.unsupported(
                st,
                "client classes and allow/deny rules have no host-file equivalent (every client on a subnet is served)",
            ),
            _ => self.unsupported(st, "no host-file equivalent"),
        }
        Ok(())
    }

    fn option(&mut self, st: &Stmt, scope: &mut Scope) -> Result<(), ImportError> {
        let mut g = std::mem::take(&mut self.global6);
        let was6 = self.option6(st, &mut g);
        self.global6 = g;
        if was6? {
            return Ok(());
        }
        let v = st.values();
        let s = &st.src;
        let name = v.get(1).map(|n| n.to_ascii_lowercase()).unwrap_or_default();
        if let Some(k) = host_file_key(&name) {
            scope.srcs.insert(k, s.clone());
        }
        if v.get(2).is_some_and(|w| w.eq_ignore_ascii_case("code")) {
            self.unsupported(st, "option definitions have no host-file equivalent; give the value as [[subnet.option]] with code = N");
            return Ok(());
        }
        let args: Vec<String> = v.iter().skip(2).cloned().collect();
        if IP_OPTIONS.contains(&name.as_str()) && args.iter().any(|a| !numeric(a)) {
            self.unsupported(
                st,
                "host names are not resolved on import: write the addresses",
            );
            return Ok(());
        }
        let ips = |what: &str| -> Result<Vec<Ipv4Addr>, ImportError> {
            if args.is_empty() {
                return Err(s.error(format!("option {what} needs at least one address")));
            }
            args.iter().map(|a| ip(s, a, what)).collect()
        };
        match name.as_str() {
            "routers" => scope.routers = Some(ips("routers")?),
            "domain-name-servers" => scope.dns = Some(ips("domain-name-servers")?),
            "ntp-servers" => scope.ntp = Some(ips("ntp-servers")?),
            "subnet-mask" => {
                let m = ips("subnet-mask")?[0];
                if mask_prefix(m).is_none() {
                    return Err(s.error(format!("subnet-mask `{m}` is not a contiguous netmask")));
                }
                scope.mask = Some((m, s.clone()));
            }
            "broadcast-address" => scope.broadcast = Some(ips("broadcast-address")?[0]),
            "domain-name" => {
                let d = args
                    .first()
                    .ok_or_else(|| s.error("option domain-name needs a name in quotes"))?;
                scope.domain = Some(d.trim_end_matches('.').to_ascii_lowercase());
            }
            "domain-search" => {
                if args.is_empty() {
                    return Err(s.error("option domain-search needs at least one name"));
                }
                scope.search = Some(
                    args.iter()
                        .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
                        .collect(),
                );
            }
            "interface-mtu" => {
                let m = number(s, args.first(), "option interface-mtu")?;
                scope.mtu = Some(u16::try_from(m).map_err(|_| s.error(format!("interface-mtu `{m}` is too large")))?);
            }
            _ => match extra_option(&name, &args, s)? {
                Some(o) => {
                    scope.extra.retain(|x| x.code != o.code);
                    scope.extra.push(o);
                }
                None => self.unsupported(
                    st,
                    "an option the importer does not know: give it as [[subnet.option]] with its code and value",
                ),
            },
        }
        Ok(())
    }

    fn declaration(&mut self, st: &Stmt, scope: &Scope, ctx: Ctx) -> Result<(), ImportError> {
        let v = st.values();
        let s = &st.src;
        let block = st.block.as_deref().unwrap_or_default();
        match st.keyword().as_str() {
            "subnet" => {
                let (Some(a), Some(kw), Some(m)) = (v.get(1), v.get(2), v.get(3)) else {
                    return Err(s.error("write `subnet ADDRESS netmask MASK { ... }`"));
                };
                if !kw.eq_ignore_ascii_case("netmask") {
                    return Err(s.error(format!(
                        "expected `netmask` after the subnet address, found `{kw}`"
                    )));
                }
                let addr = ip(s, a, "subnet")?;
                let mask = ip(s, m, "netmask")?;
                let p = mask_prefix(mask)
                    .ok_or_else(|| s.error(format!("netmask `{mask}` is not contiguous")))?;
                let net = Ipv4Net::new(addr, p).map_err(|_| s.error("bad netmask"))?;
                if net.network() != addr {
                    return Err(s.error(format!(
                        "subnet {addr} netmask {mask}: the address has host bits set (the network is {})",
                        net.network()
                    )));
                }
                let mut inner = scope.clone();
                inner.mask = None;
                let idx = self.subnets.len();
                self.subnets.push((
                    RawSubnet {
                        net: Some(net),
                        src: Some(s.clone()),
                        ..RawSubnet::default()
                    },
                    Scope::default(),
                ));
                if ctx == Ctx::Shared {
                    self.subnets[idx].0.notes.push(
                        "was part of a shared-network: its subnets are imported as separate subnets".into(),
                    );
                }
                self.block(block, &mut inner, Ctx::Subnet(idx))?;
                self.subnets[idx].1 = inner;
            }
            "shared-network" => {
                self.unsupported(st, "shared networks (several subnets on one wire) are imported as separate subnets; give them the same interface");
                let mut inner = scope.clone();
                self.block(block, &mut inner, Ctx::Shared)?;
            }
            "group" => {
                let mut inner = scope.clone();
                let c = if let Ctx::Subnet(_) = ctx {
                    ctx
                } else {
                    Ctx::Group
                };
                self.block(block, &mut inner, c)?;
            }
            "pool" => {
                let subnet = match ctx {
                    Ctx::Subnet(i) => Some(i),
                    _ => None,
                };
                let inner = scope.clone();
                // A pool's own options cannot differ from its subnet's in the host file.
                for p in block.iter().filter(|p| p.block.is_none()) {
                    match p.keyword().as_str() {
                        "range" => self.range(p, Ctx::Pool(subnet))?,
                        _ => self.unsupported(
                            p,
                            "pools carry only ranges in the host file (settings are per subnet)",
                        ),
                    }
                }
                for p in block.iter().filter(|p| p.block.is_some()) {
                    self.declaration(p, &inner, Ctx::Pool(subnet))?;
                }
            }
            "host" => self.host(st, scope)?,
            "key" => self.key(st)?,
            "zone" => self.zone(st)?,
            "subnet6" => self.subnet6(st, scope)?,
            "class" | "subclass" => {
                self.unsupported(st, "client classes have no host-file equivalent")
            }
            "failover" => self.unsupported(
                st,
                "DHCP failover is not supported (run one dhcpd; a shared lease store is planned)",
            ),
            "if" | "elsif" | "else" => {
                self.unsupported(st, "conditional configuration has no host-file equivalent")
            }
            _ => self.unsupported(st, "no host-file equivalent"),
        }
        Ok(())
    }

    fn range(&mut self, st: &Stmt, ctx: Ctx) -> Result<(), ImportError> {
        let mut v = st.values().into_iter().skip(1).peekable();
        let s = &st.src;
        let bootp = v
            .peek()
            .is_some_and(|w| w.eq_ignore_ascii_case("dynamic-bootp"));
        if bootp {
            v.next();
        }
        let a = v.next().ok_or_else(|| s.error("range needs an address"))?;
        let start = ip(s, &a, "range start")?;
        let end = match v.next() {
            Some(b) => ip(s, &b, "range end")?,
            None => start,
        };
        if end < start {
            return Err(s.error(format!("range {start} {end} ends before it starts")));
        }
        let subnet = match ctx {
            Ctx::Subnet(i) => Some(i),
            Ctx::Pool(i) => i,
            _ => None,
        };
        self.ranges.push(PendingRange {
            pool: RawPool {
                start,
                end,
                bootp,
                src: s.clone(),
            },
            subnet,
        });
        Ok(())
    }

    fn finish(mut self, global: &Scope) -> Result<(), ImportError> {
        let global_domain = global.domain.clone().map(|d| {
            let src = global.srcs.get("domain").cloned().unwrap_or_else(|| {
                self.subnets
                    .first()
                    .and_then(|s| s.0.src.clone())
                    .unwrap_or_else(|| Src::new(&Arc::from(Path::new("dhcpd.conf")), 0))
            });
            (d, src)
        });
        self.domain_candidates(global_domain);
        for r in std::mem::take(&mut self.ranges) {
            let idx = r.subnet.or_else(|| {
                self.subnets
                    .iter()
                    .position(|(s, _)| s.net.is_some_and(|n| n.contains(&r.pool.start)))
            });
            match idx {
                Some(i) => self.subnets[i].0.pools.push(r.pool),
                None => self.raw.unsupported.push(r.pool.src.unsupported(
                    format!("range {} {}", r.pool.start, r.pool.end),
                    "range outside every subnet declaration",
                )),
            }
        }
        for (mut sub, sc) in std::mem::take(&mut self.subnets) {
            let net = sub.net.expect("set on creation");
            if let Some((m, src)) = &sc.mask
                && mask_prefix(*m) != Some(net.prefix_len())
            {
                self.raw.unsupported.push(src.unsupported(
                    format!("option subnet-mask {m}"),
                    format!("differs from the subnet's netmask; the host file always sends the netmask of {net}"),
                ));
            }
            sub.routers = sc.routers.unwrap_or_default();
            sub.dns = sc.dns.unwrap_or_default();
            sub.domain = sc.domain;
            sub.search = sc.search.unwrap_or_default();
            sub.ntp = sc.ntp.unwrap_or_default();
            sub.broadcast = sc.broadcast;
            sub.mtu = sc.mtu;
            sub.lease = sc.lease;
            sub.max_lease = sc.max_lease;
            sub.authoritative = sc.authoritative.unwrap_or(false);
            sub.next_server = sc.next_server;
            sub.boot_file = sc.filename;
            sub.options = sc.extra;
            sub.key_srcs = sc.srcs;
            self.raw.subnets.push(sub);
        }
        self.finish_ddns();
        Ok(())
    }
}
