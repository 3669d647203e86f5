//! `keepalived.conf`: the statement tree from [`crate::block`] (keepalived dialect: a statement is
//! a line, `#` and `!` comments, `include` with a glob spliced in), interpreted for
//! `vrrp_instance` and `virtual_server`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use crate::block::{self, Stmt as Node};
use crate::facts::{CheckType, Raw, RawCheck, RawReal, RawService};
use crate::keepalived_vrrp;
use crate::source::{ImportError, LOUD, ReadFn};

/// Why a real server of the other family than its virtual server is listed, not imported.
const CROSS: &str = "a real server of the other address family than its virtual_server: lbd does not translate between IPv4 and IPv6 (NAT64 is not supported); kept here as a comment";

/// `2001:db8::1` (or keepalived's `[2001:db8::1]`, or with a `/prefix`).
fn is_v6(s: &str) -> bool {
    let s = s.split('/').next().unwrap_or(s);
    s.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<Ipv6Addr>()
        .is_ok()
}

/// An IPv4 address, or an IPv6 one (bare or in keepalived's brackets).
fn ip_any(n: &Node, s: &str, what: &str) -> Result<IpAddr, ImportError> {
    if is_v6(s) {
        let t = s.trim_start_matches('[').trim_end_matches(']');
        return t
            .parse::<Ipv6Addr>()
            .map(IpAddr::V6)
            .map_err(|_| n.src.error(format!("{what} `{s}` is not an IP address")));
    }
    ipv4(n, s, what).map(IpAddr::V4)
}

pub(crate) fn import(
    text: &str,
    file: &Path,
    read: ReadFn<'_>,
    raw: &mut Raw,
) -> Result<(), ImportError> {
    let nodes = block::parse(text, file, read, &block::KEEPALIVED)?;
    block::not_utf8(&nodes, true, &mut raw.unsupported);
    for n in &nodes {
        match n.keyword().as_str() {
            "vrrp_instance" => keepalived_vrrp::instance(n, raw)?,
            "vrrp_script" => keepalived_vrrp::script(n, raw)?,
            "vrrp_sync_group" => keepalived_vrrp::sync_group(n, raw)?,
            "virtual_server" => virtual_server(n, raw)?,
            "global_defs" => {
                for c in n.children() {
                    raw.unsupported.push(c.src.unsupported(
                        c.plain_text(),
                        "global_defs have no host-file equivalent (notification mail, router id, scripts)",
                    ));
                }
            }
            _ => raw
                .unsupported
                .push(n.src.unsupported(n.plain_text(), "no host-file equivalent")),
        }
    }
    Ok(())
}

fn int<T: std::str::FromStr>(n: &Node, what: &str) -> Result<T, ImportError> {
    n.arg(1).and_then(|a| a.parse::<T>().ok()).ok_or_else(|| {
        n.src.error(format!(
            "{what} needs a number in range, found `{}`",
            n.arg(1).unwrap_or("")
        ))
    })
}

/// Seconds, possibly fractional (`advert_int 0.5`), to milliseconds.
fn secs_ms(n: &Node, what: &str) -> Result<u64, ImportError> {
    let v: f64 = int(n, what)?;
    if !(0.0..=1e9).contains(&v) {
        return Err(n.src.error(format!("{what} `{v}` is out of range")));
    }
    Ok((v * 1000.0).round() as u64)
}

fn ipv4(n: &Node, s: &str, what: &str) -> Result<Ipv4Addr, ImportError> {
    s.parse()
        .map_err(|_| n.src.error(format!("{what} `{s}` is not an IPv4 address")))
}

fn virtual_server(n: &Node, raw: &mut Raw) -> Result<(), ImportError> {
    let (Some(a), Some(p)) = (n.arg(1), n.arg(2)) else {
        if n.arg(1).is_some_and(|a| a == "fwmark" || a == "group") {
            raw.unsupported.push(n.src.unsupported(
                n.plain_text(),
                "firewall-mark and group virtual servers have no host-file equivalent: one service per VIP and port",
            ));
            return Ok(());
        }
        return Err(n.src.error("write `virtual_server ADDRESS PORT { ... }`"));
    };
    if a == "fwmark" || a == "group" {
        raw.unsupported.push(n.src.unsupported(
            n.plain_text(),
            "firewall-mark and group virtual servers have no host-file equivalent: one service per VIP and port",
        ));
        return Ok(());
    }
    let vip = ip_any(n, a, "virtual_server address")?;
    let port: u16 = p.parse().ok().filter(|p| *p > 0).ok_or_else(|| {
        n.src
            .error(format!("virtual_server port `{p}` is not 1-65535"))
    })?;
    let mut s = RawService {
        vip: SocketAddr::new(vip, port),
        udp: false,
        scheduler: None,
        persistence: None,
        sorry: None,
        quorum: None,
        interval_ms: None,
        virtualhost: None,
        reals: Vec::new(),
        src: n.src.clone(),
    };
    for c in n.children() {
        match c.keyword().as_str() {
            "delay_loop" => s.interval_ms = Some(secs_ms(c, "delay_loop")?),
            "lb_algo" | "lvs_sched" => s.scheduler = c.arg(1).map(|a| a.to_ascii_lowercase()),
            "lb_kind" | "lvs_method" => {
                let k = c.arg(1).unwrap_or("").to_ascii_uppercase();
                if k != "NAT" {
                    raw.unsupported.push(c.src.unsupported(
                        c.plain_text(),
                        "only NAT forwarding exists (nftables DNAT): backends must route replies through this host",
                    ));
                }
            }
            "persistence_timeout" => s.persistence = Some(int(c, "persistence_timeout")?),
            "protocol" => match c.arg(1).unwrap_or("").to_ascii_uppercase().as_str() {
                "TCP" => {}
                "UDP" => s.udp = true,
                other => {
                    return Err(c.src.error(format!("protocol `{other}` is not TCP or UDP")));
                }
            },
            "sorry_server" => {
                let ip = ip_any(c, c.arg(1).unwrap_or(""), "sorry_server")?;
                let port = c.arg(2).map_or(Ok(port), |p| {
                    p.parse::<u16>().map_err(|_| {
                        c.src
                            .error(format!("sorry_server port `{p}` is not 1-65535"))
                    })
                })?;
                if ip.is_ipv4() != vip.is_ipv4() {
                    raw.unsupported
                        .push(c.src.unsupported(c.plain_text(), CROSS));
                    continue;
                }
                s.sorry = Some(SocketAddr::new(ip, port));
            }
            "quorum" => s.quorum = Some(int(c, "quorum")?),
            "virtualhost" => s.virtualhost = c.arg(1).map(str::to_owned),
            "real_server" => {
                if let Some(r) = real_server(c, vip, port, raw)? {
                    s.reals.push(r);
                }
            }
            _ => raw.unsupported.push(c.src.unsupported(
                c.plain_text(),
                "no host-file equivalent for this virtual_server setting",
            )),
        }
    }
    raw.services.push(s);
    Ok(())
}

fn real_server(
    n: &Node,
    vip: IpAddr,
    vport: u16,
    raw: &mut Raw,
) -> Result<Option<RawReal>, ImportError> {
    let ip = ip_any(n, n.arg(1).unwrap_or(""), "real_server address")?;
    if ip.is_ipv4() != vip.is_ipv4() {
        raw.unsupported
            .push(n.src.unsupported(n.plain_text(), CROSS));
        return Ok(None);
    }
    let port = match n.arg(2) {
        Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
            n.src
                .error(format!("real_server port `{p}` is not 1-65535"))
        })?,
        None => vport,
    };
    let mut r = RawReal {
        addr: SocketAddr::new(ip, port),
        weight: None,
        check: None,
        src: n.src.clone(),
    };
    for c in n.children() {
        match c.keyword().as_str() {
            "weight" => r.weight = Some(int(c, "weight")?),
            "tcp_check" | "http_get" | "ssl_get" => {
                let tls = c.keyword() == "ssl_get";
                let kind = if c.keyword() == "http_get" {
                    CheckType::Http
                } else {
                    CheckType::Tcp
                };
                if tls {
                    // A plain HTTP check against a TLS port would fail on every backend; a TCP
                    // connect on the same port can pass, and checks less: say so loudly.
                    raw.unsupported.push(c.src.unsupported(
                        c.plain_text(),
                        format!("{LOUD}the host file has no TLS check: imported as a TCP connect check on the same port; the TLS handshake, url paths and status codes are NOT checked any more"),
                    ));
                }
                if r.check.is_some() {
                    raw.unsupported.push(c.src.unsupported(
                        c.plain_text(),
                        "a second check for one real server: the host file has one check per service",
                    ));
                    continue;
                }
                r.check = Some(check(c, kind, tls, raw)?);
            }
            "misc_check" | "smtp_check" | "dns_check" | "bfd_check" | "udp_check" => {
                raw.unsupported.push(c.src.unsupported(
                    c.plain_text(),
                    "only TCP and HTTP checks exist in the host file",
                ))
            }
            _ => raw.unsupported.push(c.src.unsupported(
                c.plain_text(),
                "no host-file equivalent for this real_server setting",
            )),
        }
    }
    Ok(Some(r))
}

fn check(n: &Node, kind: CheckType, tls: bool, raw: &mut Raw) -> Result<RawCheck, ImportError> {
    let mut c = RawCheck {
        kind,
        tls,
        path: None,
        status: None,
        host: None,
        timeout_ms: None,
        port: None,
        retry: None,
    };
    for x in n.children() {
        match x.keyword().as_str() {
            "connect_timeout" => c.timeout_ms = Some(secs_ms(x, "connect_timeout")?),
            "connect_port" => c.port = Some(int(x, "connect_port")?),
            "nb_get_retry" | "retry" => c.retry = Some(int(x, "retry")?),
            "virtualhost" if kind == CheckType::Http => c.host = x.arg(1).map(str::to_owned),
            "url" | "virtualhost" if tls => raw.unsupported.push(x.src.unsupported(
                x.plain_text(),
                "not checked: SSL_GET is imported as a TCP connect check",
            )),
            "url" if kind == CheckType::Http => {
                if c.path.is_some() {
                    raw.unsupported.push(x.src.unsupported(
                        x.plain_text(),
                        "a second url: the host file checks one path",
                    ));
                    continue;
                }
                for u in x.children() {
                    match u.keyword().as_str() {
                        "path" => c.path = u.arg(1).map(str::to_owned),
                        "status_code" => c.status = status_codes(u, raw)?,
                        "virtualhost" => c.host = u.arg(1).map(str::to_owned),
                        "digest" => raw.unsupported.push(u.src.unsupported(
                            u.plain_text(),
                            "body digests are not checked; the status code is (a body substring can be set with check.body)",
                        )),
                        _ => raw.unsupported.push(u.src.unsupported(u.plain_text(), "not a known url setting")),
                    }
                }
            }
            _ => raw.unsupported.push(x.src.unsupported(
                x.plain_text(),
                "no host-file equivalent for this check setting",
            )),
        }
    }
    Ok(c)
}

/// keepalived 2.x `status_code 200 204 300-399`: codes and ranges. The host file's `expect` is one
/// range: codes that join up become it; codes with gaps between them become the smallest range
/// holding them all (the check still passes where keepalived's did), and that is said loudly.
fn status_codes(u: &Node, raw: &mut Raw) -> Result<Option<(u16, u16)>, ImportError> {
    let mut ranges: Vec<(u16, u16)> = Vec::new();
    for w in u.values().iter().skip(1) {
        let bad = || {
            u.src.error(format!(
                "status_code `{w}` is not a status (200) or a range of them (200-299)"
            ))
        };
        let (a, b) = match w.split_once('-') {
            Some((a, b)) => (
                a.parse::<u16>().map_err(|_| bad())?,
                b.parse::<u16>().map_err(|_| bad())?,
            ),
            None => {
                let c = w.parse::<u16>().map_err(|_| bad())?;
                (c, c)
            }
        };
        if !(100..=599).contains(&a) || !(a..=599).contains(&b) {
            raw.unsupported.push(u.src.unsupported(
                u.plain_text(),
                format!("`{w}` is not an HTTP status or range: left out"),
            ));
            continue;
        }
        ranges.push((a, b));
    }
    if ranges.is_empty() {
        if u.values().len() < 2 {
            return Err(u
                .src
                .error("status_code needs a status (200) or a range (200-299)"));
        }
        raw.unsupported.push(u.src.unsupported(
            u.plain_text(),
            "no usable status: the check accepts 200-399",
        ));
        return Ok(None);
    }
    ranges.sort_unstable();
    let mut joined: Vec<(u16, u16)> = Vec::new();
    for (a, b) in ranges {
        match joined.last_mut() {
            Some(l) if a <= l.1.saturating_add(1) => l.1 = l.1.max(b),
            _ => joined.push((a, b)),
        }
    }
    let hull = (joined[0].0, joined[joined.len() - 1].1);
    if joined.len() > 1 {
        let gaps: Vec<String> = joined
            .windows(2)
            .map(|w| {
                if w[0].1 + 1 == w[1].0 - 1 {
                    (w[0].1 + 1).to_string()
                } else {
                    format!("{}-{}", w[0].1 + 1, w[1].0 - 1)
                }
            })
            .collect();
        raw.unsupported.push(u.src.unsupported(
            u.plain_text(),
            format!(
                "{LOUD}the host file's expect is one range: imported as {}-{}, which also accepts {} (keepalived did not)",
                hull.0,
                hull.1,
                gaps.join(", ")
            ),
        ));
    }
    Ok(Some(hull))
}
