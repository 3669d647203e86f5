//! The v6 half of `dhcpd leases` (a second table after the v4 one, or more rows of the one JSON
//! array) and what `dhcpd release` accepts (an IPv4 address, an IPv6 address or a prefix).

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;
use std::str::FromStr;

use hostfile::Reservation6;
use ipnet::Ipv6Net;

use super::admin::{Row6, Target6};
use super::lease::{IaKind, Lease6, Leases6, State6, Store6Error};

/// What `dhcpd release` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A v4 lease.
    V4(Ipv4Addr),
    /// A v6 address or delegated prefix.
    V6(Target6),
}

/// Not an address or prefix `dhcpd release` takes.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not an IPv4 address, an IPv6 address or an IPv6 prefix (fd00:1000::/56)")]
pub struct BadTarget(String);

impl FromStr for Target {
    type Err = BadTarget;
    fn from_str(s: &str) -> Result<Self, BadTarget> {
        if let Ok(a) = s.parse() {
            return Ok(Target::V4(a));
        }
        if let Ok(a) = s.parse() {
            return Ok(Target::V6(Target6::Addr(a)));
        }
        match s.parse::<Ipv6Net>() {
            Ok(n) if n.addr() == n.network() => Ok(Target::V6(Target6::Prefix(n))),
            _ => Err(BadTarget(s.to_owned())),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::V4(a) => a.fmt(f),
            Target::V6(t) => t.fmt(f),
        }
    }
}

/// The rows of the v6 lease file at `path` read without the daemon (none when there is no file).
pub fn read_rows(path: &Path, reservations: &[Reservation6]) -> Result<Vec<Row6>, Store6Error> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let all = super::lease::read_only(path)?;
    Ok(super::admin::rows(&table(all), reservations))
}

/// The rows of the v6 bindings in the shared PostgreSQL database at `url` (every server's),
/// read without the daemon.
pub fn read_shared_rows(
    url: &str,
    reservations: &[Reservation6],
) -> Result<Vec<Row6>, Store6Error> {
    let mut pg = super::pg::PgStore6::open(url)?;
    let all = super::store::BindingStore::list(&mut pg)?.unwrap_or_default();
    Ok(super::admin::rows(&table(all), reservations))
}

/// Bindings as a table (one per IA and per address or prefix, as the core keeps them).
pub fn table(all: Vec<Lease6>) -> Leases6 {
    let mut t = Leases6::new();
    for l in all {
        t.apply(&super::lease::Change6::Put(l));
    }
    t
}

fn kind(l: &Lease6) -> &'static str {
    match l.key.kind {
        IaKind::Na => "IA_NA",
        IaKind::Pd => "IA_PD",
    }
}

fn state(l: &Lease6) -> &'static str {
    match l.state {
        State6::Bound => "bound",
        State6::Declined => "declined",
    }
}

/// The address, or the prefix with its length.
pub fn shown(l: &Lease6) -> String {
    match l.key.kind {
        IaKind::Na => l.addr.to_string(),
        IaKind::Pd => format!("{}/{}", l.addr, l.prefix_len),
    }
}

/// The v6 table: one line per binding, after a header.
pub fn text(rows: &[Row6]) -> String {
    let mut s = format!(
        "{:<40} {:<6} {:<10} {:<40} {:<24} {:<21} {}\n",
        "ADDRESS/PREFIX", "TYPE", "IAID", "DUID", "HOSTNAME", "EXPIRES", "STATE"
    );
    for r in rows {
        let l = &r.lease;
        let _ = writeln!(
            s,
            "{:<40} {:<6} {:<10} {:<40} {:<24} {:<21} {}",
            shown(l),
            kind(l),
            l.key.iaid,
            crate::lease::hex_colon(&l.key.duid),
            r.hostname.as_deref().unwrap_or("-"),
            crate::leases::show_time(l.expires),
            state(l)
        );
    }
    s
}

/// The v6 rows of `dhcpd leases --json`: `ip` holds the address or the prefix's first address.
pub fn json(rows: &[Row6]) -> Vec<serde_json::Value> {
    rows.iter()
        .map(|r| {
            let l = &r.lease;
            serde_json::json!({
                "family": "ipv6",
                "ip": l.addr,
                "prefix_len": l.prefix_len,
                "type": kind(l),
                "iaid": l.key.iaid,
                "duid": crate::lease::hex_colon(&l.key.duid),
                "hostname": r.hostname,
                "starts": l.starts,
                "expires": l.expires,
                "state": state(l),
            })
        })
        .collect()
}
