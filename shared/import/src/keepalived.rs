//! `keepalived.conf`: the statement tree from [`crate::block`] (keepalived dialect: a statement is
//! a line, `#` and `!` comments, `include` with a glob spliced in), interpreted for
//! `vrrp_instance` and `virtual_server`.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;

use crate::block::{self, Stmt as Node};
use crate::facts::{CheckType, Raw, RawCheck, RawReal, RawService};
use crate::keepalived_vrrp;
use crate::source::{ImportError, ReadFn};

pub(crate) fn import(
    text: &str,
    file: &Path,
    read: ReadFn<'_>,
    raw: &mut Raw,
) -> Result<(), ImportError> {
    let nodes = block::parse(text, file, read, &block::KEEPALIVED)?;
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
    let vip = ipv4(n, a, "virtual_server address")?;
    let port: u16 = p.parse().ok().filter(|p| *p > 0).ok_or_else(|| {
        n.src
            .error(format!("virtual_server port `{p}` is not 1-65535"))
    })?;
    let mut s = RawService {
        vip: SocketAddrV4::new(vip, port),
        udp: false,
        scheduler: None,
        persistence: None,
        sorry: None,
        quorum: None,
        interval_ms: None,
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
                let ip = ipv4(c, c.arg(1).unwrap_or(""), "sorry_server")?;
                let port = c.arg(2).map_or(Ok(port), |p| {
                    p.parse::<u16>().map_err(|_| {
                        c.src
                            .error(format!("sorry_server port `{p}` is not 1-65535"))
                    })
                })?;
                s.sorry = Some(SocketAddrV4::new(ip, port));
            }
            "quorum" => s.quorum = Some(int(c, "quorum")?),
            "real_server" => {
                if let Some(r) = real_server(c, port, raw)? {
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

fn real_server(n: &Node, vport: u16, raw: &mut Raw) -> Result<Option<RawReal>, ImportError> {
    let ip = ipv4(n, n.arg(1).unwrap_or(""), "real_server address")?;
    let port = match n.arg(2) {
        Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
            n.src
                .error(format!("real_server port `{p}` is not 1-65535"))
        })?,
        None => vport,
    };
    let mut r = RawReal {
        addr: SocketAddrV4::new(ip, port),
        weight: None,
        check: None,
        src: n.src.clone(),
    };
    for c in n.children() {
        match c.keyword().as_str() {
            "weight" => r.weight = Some(int(c, "weight")?),
            "tcp_check" | "http_get" | "ssl_get" => {
                let kind = if c.keyword() == "tcp_check" {
                    CheckType::Tcp
                } else {
                    CheckType::Http
                };
                if c.keyword() == "ssl_get" {
                    raw.unsupported.push(c.src.unsupported(
                        c.plain_text(),
                        "HTTPS checks are not supported: imported as a plain HTTP check, change the path or port if needed",
                    ));
                }
                if r.check.is_some() {
                    raw.unsupported.push(c.src.unsupported(
                        c.plain_text(),
                        "a second check for one real server: the host file has one check per service",
                    ));
                    continue;
                }
                r.check = Some(check(c, kind, raw)?);
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

fn check(n: &Node, kind: CheckType, raw: &mut Raw) -> Result<RawCheck, ImportError> {
    let mut c = RawCheck {
        kind,
        path: None,
        status: None,
        timeout_ms: None,
        port: None,
        retry: None,
    };
    for x in n.children() {
        match x.keyword().as_str() {
            "connect_timeout" => c.timeout_ms = Some(secs_ms(x, "connect_timeout")?),
            "connect_port" => c.port = Some(int(x, "connect_port")?),
            "nb_get_retry" | "retry" => c.retry = Some(int(x, "retry")?),
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
                        "status_code" => {
                            let code: u16 = int(u, "status_code")?;
                            if (100..=599).contains(&code) {
                                c.status = Some(code);
                            } else {
                                raw.unsupported.push(u.src.unsupported(
                                    u.plain_text(),
                                    "not an HTTP status: the check accepts 200-399",
                                ));
                            }
                        }
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
