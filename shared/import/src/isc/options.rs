//! ISC option names to host-file options: which take addresses, and the code and type of those
//! the host file has no named key for.

use std::net::Ipv4Addr;

use crate::facts::{OptVal, RawOpt};
use crate::source::{ImportError, Src};

/// Options whose value is a list of addresses (a host name there is not resolved).
pub(super) const IP_OPTIONS: &[&str] = &[
    "routers",
    "domain-name-servers",
    "ntp-servers",
    "broadcast-address",
    "subnet-mask",
    "time-servers",
    "log-servers",
    "lpr-servers",
    "netbios-name-servers",
    "nis-servers",
    "smtp-server",
    "pop-server",
    "www-server",
];

/// `192.168.1.1` (or a mistyped `192.168.1.300`) rather than a host name.
pub(super) fn numeric(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || c == '.')
}

#[derive(Clone, Copy)]
enum Kind {
    Ip,
    Text,
    U8,
    U16,
    U32,
    Flag,
    Hex,
}

/// ISC option names the host file has no named key for, with their code and type (RFC 2132).
const EXTRA: &[(&str, u8, Kind)] = &[
    ("time-servers", 4, Kind::Ip),
    ("log-servers", 7, Kind::Ip),
    ("lpr-servers", 9, Kind::Ip),
    ("host-name", 12, Kind::Text),
    ("root-path", 17, Kind::Text),
    ("ip-forwarding", 19, Kind::Flag),
    ("default-ip-ttl", 23, Kind::U8),
    ("nis-domain", 40, Kind::Text),
    ("nis-servers", 41, Kind::Ip),
    ("vendor-encapsulated-options", 43, Kind::Hex),
    ("netbios-name-servers", 44, Kind::Ip),
    ("netbios-node-type", 46, Kind::U8),
    ("netbios-scope", 47, Kind::Text),
    ("dhcp-renewal-time", 58, Kind::U32),
    ("dhcp-rebinding-time", 59, Kind::U32),
    ("tftp-server-name", 66, Kind::Text),
    ("bootfile-name", 67, Kind::Text),
    ("smtp-server", 69, Kind::Ip),
    ("pop-server", 70, Kind::Ip),
    ("www-server", 72, Kind::Ip),
];

/// Options with a named subnet key, as raw options for a host (the host file has no per-host keys).
const HOST_NAMED: &[(&str, u8, Kind)] = &[
    ("subnet-mask", 1, Kind::Ip),
    ("routers", 3, Kind::Ip),
    ("domain-name-servers", 6, Kind::Ip),
    ("domain-name", 15, Kind::Text),
    ("interface-mtu", 26, Kind::U16),
    ("broadcast-address", 28, Kind::Ip),
    ("ntp-servers", 42, Kind::Ip),
];

fn typed(
    name: &str,
    code: u8,
    kind: Kind,
    args: &[String],
    s: &Src,
) -> Result<RawOpt, ImportError> {
    let first = || {
        args.first()
            .cloned()
            .ok_or_else(|| s.error(format!("option {name} needs a value")))
    };
    let num = |max: u64| -> Result<u64, ImportError> {
        let f = first()?;
        f.parse::<u64>()
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| s.error(format!("option {name}: `{f}` is not a number up to {max}")))
    };
    let value = match kind {
        Kind::Ip => {
            if args.is_empty() {
                return Err(s.error(format!("option {name} needs at least one address")));
            }
            OptVal::Ips(
                args.iter()
                    .map(|a| ip(s, a, name))
                    .collect::<Result<_, _>>()?,
            )
        }
        Kind::Text => OptVal::Text(first()?),
        Kind::U8 => OptVal::U8(num(255)? as u8),
        Kind::U16 => OptVal::U16(num(65535)? as u16),
        Kind::U32 => OptVal::U32(num(u64::from(u32::MAX))? as u32),
        Kind::Flag => {
            let f = first()?.to_ascii_lowercase();
            OptVal::Bool(match f.as_str() {
                "on" | "true" | "1" => true,
                "off" | "false" | "0" => false,
                _ => return Err(s.error(format!("option {name}: `{f}` is not on/off"))),
            })
        }
        Kind::Hex => {
            let h = first()?;
            let ok = h
                .split(':')
                .all(|b| !b.is_empty() && b.len() <= 2 && b.chars().all(|c| c.is_ascii_hexdigit()));
            if !ok {
                return Err(s.error(format!(
                    "option {name}: `{h}` is not colon-separated hex bytes"
                )));
            }
            OptVal::Hex(
                h.split(':')
                    .map(|b| format!("{:0>2}", b.to_ascii_lowercase()))
                    .collect::<Vec<_>>()
                    .join(":"),
            )
        }
    };
    Ok(RawOpt {
        name: name.to_owned(),
        code,
        value,
        src: s.clone(),
    })
}

pub(super) fn extra_option(
    name: &str,
    args: &[String],
    s: &Src,
) -> Result<Option<RawOpt>, ImportError> {
    match EXTRA.iter().find(|e| e.0 == name) {
        Some(&(n, code, kind)) => typed(n, code, kind, args, s).map(Some),
        None => Ok(None),
    }
}

pub(super) fn host_option(
    name: &str,
    args: &[String],
    s: &Src,
) -> Result<Option<RawOpt>, ImportError> {
    if name == "domain-search" {
        // RFC 3397 wire form, uncompressed, as hex.
        let mut bytes = Vec::new();
        for d in args {
            for l in d.trim_end_matches('.').split('.') {
                if l.is_empty() || l.len() > 63 {
                    return Err(s.error(format!("domain-search `{d}` is not a domain name")));
                }
                bytes.push(l.len() as u8);
                bytes.extend(l.as_bytes());
            }
            bytes.push(0);
        }
        if args.is_empty() || bytes.len() > 255 {
            return Err(s.error("domain-search needs 1 to 255 bytes of names"));
        }
        return Ok(Some(RawOpt {
            name: name.to_owned(),
            code: 119,
            value: OptVal::Hex(
                bytes
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(":"),
            ),
            src: s.clone(),
        }));
    }
    match HOST_NAMED.iter().find(|e| e.0 == name) {
        Some(&(n, code, kind)) => typed(n, code, kind, args, s).map(Some),
        None => extra_option(name, args, s),
    }
}

/// An IPv4 address, or a message saying host names are not resolved.
pub(super) fn ip(s: &Src, v: &str, what: &str) -> Result<Ipv4Addr, ImportError> {
    v.parse::<Ipv4Addr>().map_err(|_| {
        s.error(format!(
            "{what} `{v}` is not an IPv4 address (host names are not resolved on import: write the address)"
        ))
    })
}
