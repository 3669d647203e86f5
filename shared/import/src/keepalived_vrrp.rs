//! keepalived's VRRP side: `vrrp_instance` (with `track_script`, `track_interface`,
//! `notify_master`/`notify_backup`/`notify_fault`/`notify`, `nopreempt`), `vrrp_script` and
//! `vrrp_sync_group`, read from the statement tree of [`crate::block`] into [`Raw`] facts.
//! Which instance holds the service VIPs (`[lb.vrrp]`) and which float
//! (`[lb.vrrp-instance.NAME]`) is decided later, in `resolve`, once every `virtual_server` is known.

use std::net::{IpAddr, Ipv4Addr};

use crate::block::Stmt as Node;
use crate::facts::{
    Raw, RawCommand, RawGroup, RawInstance, RawScript, RawTrack, RawVip, RawVip6, RawVrrp,
};
use crate::source::ImportError;

fn num<T: std::str::FromStr>(n: &Node, what: &str) -> Result<T, ImportError> {
    n.arg(1).and_then(|a| a.parse::<T>().ok()).ok_or_else(|| {
        n.src.error(format!(
            "{what} needs a number in range, found `{}`",
            n.arg(1).unwrap_or("")
        ))
    })
}

/// Seconds, possibly fractional (`advert_int 0.5`), to milliseconds.
fn secs_ms(n: &Node, what: &str) -> Result<u64, ImportError> {
    let v: f64 = num(n, what)?;
    if !(0.0..=1e9).contains(&v) {
        return Err(n.src.error(format!("{what} `{v}` is out of range")));
    }
    Ok((v * 1000.0).round() as u64)
}

/// Why an address of the other family than the instance's is listed rather than imported.
const FAMILY: &str = "address family must match the VRRP instance (keepalived ignores it too): float it with a vrrp_instance of its own";

/// `2001:db8::1` (or keepalived's `[2001:db8::1]`, or with a `/prefix`).
fn is_v6(s: &str) -> bool {
    let s = s.split('/').next().unwrap_or(s);
    bare(s).parse::<std::net::Ipv6Addr>().is_ok()
}

/// `[2001:db8::1]` -> `2001:db8::1`.
fn bare(s: &str) -> &str {
    s.trim_start_matches('[').trim_end_matches(']')
}

fn ipv4(n: &Node, s: &str, what: &str) -> Result<Ipv4Addr, ImportError> {
    s.parse()
        .map_err(|_| n.src.error(format!("{what} `{s}` is not an IPv4 address")))
}

fn ip(n: &Node, s: &str, what: &str) -> Result<IpAddr, ImportError> {
    bare(s)
        .parse()
        .map_err(|_| n.src.error(format!("{what} `{s}` is not an IP address")))
}

/// Characters that make a command line need `/bin/sh -c`.
const SHELL_CHARS: &[char] = &[
    '|', '&', ';', '<', '>', '(', ')', '$', '`', '*', '?', '[', ']', '~', '\\', '\n', '{', '}',
];

/// A command as keepalived takes it (`script "killall -0 haproxy"`, `notify_master
/// "/etc/keepalived/notify.sh MASTER"`, or unquoted words): an argv list when it is a plain
/// program with arguments, else the whole line for a shell, saying why.
pub(crate) fn command(n: &Node) -> Result<RawCommand, ImportError> {
    let vals = n.values();
    let line = vals.get(1..).unwrap_or_default().join(" ");
    let line = line.trim().to_owned();
    if line.is_empty() {
        return Err(n.src.error(format!("`{}` needs a command", n.keyword())));
    }
    let shell = |why: String| RawCommand {
        argv: vec![line.clone()],
        shell: true,
        why: Some(why),
        src: n.src.clone(),
    };
    if line.contains(SHELL_CHARS) {
        return Ok(shell("it uses shell syntax".into()));
    }
    let Some(words) = split_words(&line) else {
        return Ok(shell("its quotes do not pair up".into()));
    };
    match words.first() {
        Some(p) if p.starts_with('/') => Ok(RawCommand {
            argv: words,
            shell: false,
            why: None,
            src: n.src.clone(),
        }),
        Some(p) => Ok(shell(format!(
            "`{p}` is not an absolute path (lbd runs programs without PATH; the shell searches its default one)"
        ))),
        None => Err(n.src.error(format!("`{}` needs a command", n.keyword()))),
    }
}

/// Words of a command line, with '…' and "…" quoting; `None` when a quote is left open.
fn split_words(s: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return None;
    }
    if in_word {
        out.push(cur);
    }
    Some(out)
}

/// `name [weight W]` lines of a `track_script` / `track_interface` block.
fn tracks(n: &Node, raw: &mut Raw) -> Result<Vec<RawTrack>, ImportError> {
    let mut out = Vec::new();
    for t in n.children() {
        let Some(name) = t.arg(0) else { continue };
        let weight = match (t.arg(1), t.arg(2)) {
            (None, _) => None,
            (Some(w), Some(v)) if w.eq_ignore_ascii_case("weight") => {
                if t.values().len() > 3 {
                    raw.unsupported.push(t.src.unsupported(
                        t.plain_text(),
                        "`reverse` is not supported: the weight applies as written",
                    ));
                }
                Some(
                    v.parse::<i64>()
                        .map_err(|_| t.src.error(format!("weight `{v}` is not a whole number")))?,
                )
            }
            _ => {
                raw.unsupported.push(t.src.unsupported(
                    t.plain_text(),
                    "only `NAME` and `NAME weight W` are kept (reverse and other options are not)",
                ));
                None
            }
        };
        out.push(RawTrack {
            name: name.to_owned(),
            weight,
        });
    }
    Ok(out)
}

/// `vrrp_instance NAME { ... }`.
pub(crate) fn instance(n: &Node, raw: &mut Raw) -> Result<(), ImportError> {
    let mut v = RawVrrp {
        vrid: None,
        priority: None,
        preempt: true,
        interval_ms: None,
        interface: None,
        peers: Vec::new(),
        source: None,
        src: n.src.clone(),
    };
    let name = n.arg(1).unwrap_or("").to_owned();
    let mut i = RawInstance {
        name: name.clone(),
        vrrp: v.clone(),
        vips: Vec::new(),
        vips6: Vec::new(),
        track_scripts: Vec::new(),
        track_ifaces: Vec::new(),
        notify: [None, None, None],
    };
    let mut generic: Option<RawCommand> = None;
    // The `unicast_src_ip` line and the `unicast_peer` lines (as `v.peers`), for messages.
    let mut source_line: Option<&Node> = None;
    let mut peer_lines: Vec<&Node> = Vec::new();
    for c in n.children() {
        match c.keyword().as_str() {
            "interface" => v.interface = c.arg(1).map(str::to_owned),
            "virtual_router_id" => v.vrid = Some(num(c, "virtual_router_id")?),
            "priority" => v.priority = Some(num(c, "priority")?),
            "advert_int" => v.interval_ms = Some(secs_ms(c, "advert_int")?),
            "nopreempt" => v.preempt = false,
            "state" => raw.unsupported.push(c.src.unsupported(
                c.plain_text(),
                "the starting state follows from the priority (the highest becomes master)",
            )),
            "unicast_src_ip" => {
                v.source = Some(ip(c, c.arg(1).unwrap_or(""), "unicast_src_ip")?);
                source_line = Some(c);
            }
            "unicast_peer" => {
                for p in c.children() {
                    v.peers.push(ip(p, p.arg(0).unwrap_or(""), "unicast_peer")?);
                    peer_lines.push(p);
                }
            }
            "virtual_ipaddress" => {
                for a in c.children() {
                    vip(a, raw, &mut i)?;
                }
            }
            "track_script" => i.track_scripts.extend(tracks(c, raw)?),
            "track_interface" => i.track_ifaces.extend(tracks(c, raw)?),
            "notify_master" => i.notify[0] = Some(command(c)?),
            "notify_backup" => i.notify[1] = Some(command(c)?),
            "notify_fault" => i.notify[2] = Some(command(c)?),
            "notify" => generic = Some(command(c)?),
            "virtual_ipaddress_excluded"
            | "virtual_routes"
            | "authentication"
            | "notify_stop"
            | "smtp_alert"
            | "preempt_delay"
            | "garp_master_delay"
            | "dont_track_primary"
            | "track_process"
            | "track_file"
            | "track_bfd"
            | "mcast_src_ip"
            | "version" => raw.unsupported.push(c.src.unsupported(
                c.plain_text(),
                "no host-file equivalent for this VRRP setting",
            )),
            _ => raw.unsupported.push(
                c.src
                    .unsupported(c.plain_text(), "not a known vrrp_instance setting"),
            ),
        }
    }
    // keepalived runs `notify SCRIPT` as `SCRIPT INSTANCE NAME STATE PRIORITY` on every
    // transition: one command per state, where no notify_STATE is given.
    if let Some(g) = generic {
        for (slot, state) in i.notify.iter_mut().zip(["MASTER", "BACKUP", "FAULT"]) {
            if slot.is_some() {
                continue;
            }
            let mut c = g.clone();
            if c.shell {
                c.argv[0] = format!("{} INSTANCE {name} {state}", c.argv[0]);
            } else {
                c.argv
                    .extend(["INSTANCE".to_owned(), name.clone(), state.to_owned()]);
            }
            *slot = Some(c);
        }
        raw.unsupported.push(g.src.unsupported(
            "notify",
            "imported as notify-master/backup/fault with the arguments INSTANCE NAME STATE; the priority argument is not passed",
        ));
    }
    if v.vrid.is_none() {
        return Err(n.src.error("vrrp_instance without virtual_router_id"));
    }
    one_family(&mut i, &mut v, (source_line, &peer_lines), raw);
    i.vrrp = v;
    raw.instances.push(i);
    Ok(())
}

/// One `virtual_ipaddress` line: `ADDRESS[/PREFIX] [dev IF] [label L] ...`, IPv4 or IPv6.
fn vip(a: &Node, raw: &mut Raw, i: &mut RawInstance) -> Result<(), ImportError> {
    let w = a.arg(0).unwrap_or("");
    let (addr, prefix) = match w.split_once('/') {
        Some((a2, p)) => (a2, Some(p)),
        None => (w, None),
    };
    let v6 = is_v6(w);
    let max = if v6 { 128 } else { 32 };
    let prefix = match prefix {
        Some(p) => Some(p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| {
            a.src
                .error(format!("`{w}`: the prefix length is not 0-{max}"))
        })?),
        None => None,
    };
    let vals = a.values();
    let dev = vals
        .iter()
        .position(|k| k == "dev")
        .and_then(|i| vals.get(i + 1).cloned());
    if vals
        .iter()
        .any(|k| k == "label" || k == "scope" || k == "brd")
    {
        raw.unsupported.push(a.src.unsupported(
            a.plain_text(),
            "label, brd and scope are not kept: lbd adds the address to the interface itself",
        ));
    }
    if v6 {
        let ip = bare(addr)
            .parse()
            .map_err(|_| a.src.error(format!("`{w}` is not an IPv6 address")))?;
        i.vips6.push(RawVip6 {
            ip,
            prefix,
            dev,
            text: a.plain_text(),
            src: a.src.clone(),
        });
    } else {
        i.vips.push(RawVip {
            ip: ipv4(a, addr, "virtual_ipaddress")?,
            prefix,
            dev,
            src: a.src.clone(),
        });
    }
    Ok(())
}

/// keepalived's rule: an instance is of the family of its first `virtual_ipaddress` (IPv6:
/// adverts to ff02::12); addresses, `unicast_peer`s and `unicast_src_ip` of the other family
/// are ignored with a message. Here they are listed as not imported.
fn one_family(
    i: &mut RawInstance,
    v: &mut RawVrrp,
    (source_line, peer_lines): (Option<&Node>, &[&Node]),
    raw: &mut Raw,
) {
    let first6 = match (i.vips.first(), i.vips6.first()) {
        (Some(a), Some(b)) => b.src.line < a.src.line,
        (None, Some(_)) => true,
        (Some(_), None) => false,
        (None, None) => v
            .source
            .or(v.peers.first().copied())
            .is_some_and(|a| a.is_ipv6()),
    };
    if first6 {
        for a in i.vips.drain(..) {
            let p = a.prefix.map(|p| format!("/{p}")).unwrap_or_default();
            raw.unsupported.push(a.src.unsupported(
                format!("{}{p} (an IPv4 address in an IPv6 instance)", a.ip),
                FAMILY,
            ));
        }
    } else {
        for a in i.vips6.drain(..) {
            raw.unsupported.push(a.src.unsupported(
                format!("{} (an IPv6 address in an IPv4 instance)", a.text),
                FAMILY,
            ));
        }
    }
    if let (Some(s), Some(n)) = (v.source, source_line)
        && s.is_ipv6() != first6
    {
        raw.unsupported
            .push(n.src.unsupported(n.plain_text(), FAMILY));
        v.source = None;
    }
    let peers = std::mem::take(&mut v.peers);
    for (p, n) in peers.into_iter().zip(peer_lines) {
        if p.is_ipv6() == first6 {
            v.peers.push(p);
        } else {
            raw.unsupported
                .push(n.src.unsupported(n.plain_text(), FAMILY));
        }
    }
}

/// `vrrp_script NAME { script ...; interval; timeout; weight; rise; fall }`.
pub(crate) fn script(n: &Node, raw: &mut Raw) -> Result<(), ImportError> {
    let mut s = RawScript {
        name: n.arg(1).unwrap_or("").to_owned(),
        command: None,
        interval_ms: None,
        timeout_ms: None,
        weight: None,
        rise: None,
        fall: None,
        src: n.src.clone(),
    };
    for c in n.children() {
        match c.keyword().as_str() {
            "script" => s.command = Some(command(c)?),
            "interval" => s.interval_ms = Some(secs_ms(c, "interval")?),
            "timeout" => s.timeout_ms = Some(secs_ms(c, "timeout")?),
            "weight" => {
                s.weight = Some(num(c, "weight")?);
                if c.arg(2).is_some() {
                    raw.unsupported.push(c.src.unsupported(
                        c.plain_text(),
                        "`reverse` is not supported: the weight applies as written",
                    ));
                }
            }
            "rise" => s.rise = Some(num(c, "rise")?),
            "fall" => s.fall = Some(num(c, "fall")?),
            _ => raw.unsupported.push(c.src.unsupported(
                c.plain_text(),
                "no host-file equivalent for this vrrp_script setting (user, init_fail)",
            )),
        }
    }
    if s.command.is_none() {
        raw.unsupported.push(n.src.unsupported(
            n.plain_text(),
            "a vrrp_script without `script`: nothing to run",
        ));
        return Ok(());
    }
    raw.scripts.push(s);
    Ok(())
}

/// `vrrp_sync_group NAME { group { A B } }`.
pub(crate) fn sync_group(n: &Node, raw: &mut Raw) -> Result<(), ImportError> {
    let mut g = RawGroup {
        name: n.arg(1).unwrap_or("").to_owned(),
        members: Vec::new(),
        src: n.src.clone(),
    };
    for c in n.children() {
        match c.keyword().as_str() {
            "group" => {
                for m in c.children() {
                    g.members.extend(m.values());
                }
            }
            _ => raw.unsupported.push(c.src.unsupported(
                c.plain_text(),
                "a sync group's own notify and tracking have no host-file equivalent: give them to its instances",
            )),
        }
    }
    raw.groups.push(g);
    Ok(())
}
