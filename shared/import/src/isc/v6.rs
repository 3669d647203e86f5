//! dhcpd6.conf (ISC DHCP with `-6`): `subnet6` with `range6`, `prefix6` and `pool6`, the
//! DHCPv6 options and lifetimes, inherited from the global scope as ISC does.

use std::net::Ipv6Addr;

use ipnet::Ipv6Net;

use crate::block::Stmt;
use crate::facts::{OptVal, RawSubnet6};
use crate::source::{ImportError, Src};

use super::{Interp, Scope};

/// What the global scope of dhcpd6.conf sets for every `subnet6`.
#[derive(Debug, Clone, Default)]
pub(super) struct Global6 {
    pub(super) dns: Option<Vec<Ipv6Addr>>,
    pub(super) search: Option<Vec<String>>,
    pub(super) preferred: Option<u64>,
}

fn v6(s: &Src, a: &str, what: &str) -> Result<Ipv6Addr, ImportError> {
    a.parse()
        .map_err(|_| s.error(format!("{what} `{a}` is not an IPv6 address")))
}

fn net6(s: &Src, a: &str, what: &str) -> Result<Ipv6Net, ImportError> {
    a.parse::<Ipv6Net>().map_err(|_| {
        s.error(format!(
            "{what} `{a}` is not an IPv6 prefix (ADDRESS/LENGTH)"
        ))
    })
}

fn number(s: &Src, v: Option<&String>, what: &str) -> Result<u64, ImportError> {
    v.and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| s.error(format!("{what} needs a whole number")))
}

/// The shortest prefix holding both `a` and `b`.
fn covering(a: Ipv6Addr, b: Ipv6Addr) -> Ipv6Net {
    let len = (u128::from(a) ^ u128::from(b)).leading_zeros() as u8;
    Ipv6Net::new(a, len).expect("0-128").trunc()
}

impl Interp<'_> {
    /// A DHCPv6 option (`option dhcp6.name-servers ...;`): `true` when it was one.
    pub(super) fn option6(&mut self, st: &Stmt, g: &mut Global6) -> Result<bool, ImportError> {
        let v = st.values();
        let name = v.get(1).map(|n| n.to_ascii_lowercase()).unwrap_or_default();
        let Some(opt) = name.strip_prefix("dhcp6.") else {
            return Ok(false);
        };
        let args: Vec<&String> = v.iter().skip(2).collect();
        match opt {
            "name-servers" => {
                g.dns = Some(
                    args.iter()
                        .map(|a| v6(&st.src, a, "dhcp6.name-servers"))
                        .collect::<Result<_, _>>()?,
                )
            }
            "domain-search" => {
                g.search = Some(
                    args.iter()
                        .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
                        .collect(),
                )
            }
            _ => self.unsupported(st, "a DHCPv6 option the host file has no key for"),
        }
        Ok(true)
    }

    pub(super) fn subnet6(&mut self, st: &Stmt, scope: &Scope) -> Result<(), ImportError> {
        let s = &st.src;
        let a = st
            .word(1)
            .ok_or_else(|| s.error("write `subnet6 PREFIX/LENGTH { ... }`"))?;
        let net = net6(s, &a, "subnet6")?;
        if net.trunc() != net {
            return Err(s.error(format!(
                "subnet6 {net}: the address has host bits set (the network is {})",
                net.trunc()
            )));
        }
        let mut g = self.global6.clone();
        let mut sub = RawSubnet6 {
            net,
            src: s.clone(),
            pools: Vec::new(),
            pd: Vec::new(),
            dns: Vec::new(),
            search: Vec::new(),
            preferred: None,
            valid: scope.lease,
            t1: None,
            t2: None,
        };
        for (code, t) in [(58, &mut sub.t1), (59, &mut sub.t2)] {
            if let Some(o) = scope.extra.iter().find(|o| o.code == code)
                && let OptVal::U32(n) = o.value
            {
                *t = Some(u64::from(n));
            }
        }
        self.block6(st.children(), &mut sub, &mut g, scope)?;
        sub.dns = g.dns.unwrap_or_default();
        sub.search = g.search.unwrap_or_default();
        sub.preferred = sub.preferred.or(g.preferred);
        self.raw.subnets6.push(sub);
        Ok(())
    }

    fn block6(
        &mut self,
        stmts: &[Stmt],
        sub: &mut RawSubnet6,
        g: &mut Global6,
        scope: &Scope,
    ) -> Result<(), ImportError> {
        for c in stmts {
            let v = c.values();
            let s = &c.src;
            match c.keyword().as_str() {
                "range6" => {
                    let a = v.get(1).ok_or_else(|| s.error("range6 needs an address"))?;
                    if v.iter().any(|w| w.eq_ignore_ascii_case("temporary")) {
                        self.unsupported(
                            c,
                            "temporary addresses (IA_TA, RFC 4941) are not handed out: left out",
                        );
                        continue;
                    }
                    let range = if a.contains('/') {
                        net6(s, a, "range6")?.to_string()
                    } else {
                        let start = v6(s, a, "range6 start")?;
                        let end = match v.get(2) {
                            Some(b) => v6(s, b, "range6 end")?,
                            None => start,
                        };
                        if end < start {
                            return Err(
                                s.error(format!("range6 {start} {end} ends before it starts"))
                            );
                        }
                        format!("{start}-{end}")
                    };
                    sub.pools.push((range, s.clone()));
                }
                "prefix6" => {
                    let (Some(a), Some(b), Some(l)) = (v.get(1), v.get(2), v.get(3)) else {
                        return Err(s.error("write `prefix6 START END /LENGTH;`"));
                    };
                    let (start, end) = (v6(s, a, "prefix6 start")?, v6(s, b, "prefix6 end")?);
                    let len: u8 = l
                        .trim_start_matches('/')
                        .parse()
                        .ok()
                        .filter(|n| *n <= 128)
                        .ok_or_else(|| s.error(format!("prefix6 length `{l}` is not /0-/128")))?;
                    if end < start {
                        return Err(s.error(format!("prefix6 {start} {end} ends before it starts")));
                    }
                    let mut p = covering(start, end);
                    if p.prefix_len() >= len {
                        // One delegated prefix: the pool must be shorter than what it hands out.
                        p = Ipv6Net::new(start, len.saturating_sub(1))
                            .expect("0-128")
                            .trunc();
                    }
                    let last = Ipv6Net::new(end, len).expect("0-128").trunc();
                    let exact = p.network() == start && last.broadcast() == p.broadcast();
                    let note = (!exact).then(|| {
                        format!(
                            "was: prefix6 {start} {end} /{len} ({s}); widened to {p}, the prefix holding them"
                        )
                    });
                    sub.pd.push((p, len, note, s.clone()));
                }
                "option" => {
                    if !self.option6(c, g)? {
                        match v.get(1).map(|n| n.to_ascii_lowercase()).as_deref() {
                            Some("dhcp-renewal-time") => {
                                sub.t1 = Some(number(s, v.get(2), "dhcp-renewal-time")?)
                            }
                            Some("dhcp-rebinding-time") => {
                                sub.t2 = Some(number(s, v.get(2), "dhcp-rebinding-time")?)
                            }
                            _ => self.unsupported(
                                c,
                                "an option the importer does not know for an IPv6 subnet",
                            ),
                        }
                    }
                }
                "preferred-lifetime" => {
                    sub.preferred = Some(number(s, v.get(1), "preferred-lifetime")?)
                }
                "default-lease-time" => {
                    sub.valid = Some(number(s, v.get(1), "default-lease-time")?)
                }
                "pool6" => self.block6(c.children(), sub, g, scope)?,
                "host" => self.host(c, scope)?,
                _ => self.unsupported(c, "no host-file equivalent in an IPv6 subnet"),
            }
        }
        Ok(())
    }
}
