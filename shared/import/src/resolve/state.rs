//! The resolver's working state: subnets, pools and hosts being built, names and addresses taken.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::emit::{DOption, dur};
use crate::facts::{Raw, RawSubnet};
use crate::source::{Src, Unsupported};
use hostfile::is_label;

pub(super) struct SubnetB<'a> {
    pub(super) net: Ipv4Net,
    pub(super) raw: Option<&'a RawSubnet>,
    pub(super) notes: Vec<String>,
    pub(super) pools: Vec<DPoolB>,
}

#[derive(Clone)]
pub(super) struct DPoolB {
    pub(super) start: Ipv4Addr,
    pub(super) end: Ipv4Addr,
    pub(super) bootp: bool,
    pub(super) note: String,
    pub(super) src: Src,
}

#[derive(Default)]
pub(super) struct HostB {
    pub(super) name: String,
    pub(super) notes: Vec<String>,
    pub(super) ips: Vec<Ipv4Addr>,
    pub(super) ipv6: Vec<String>,
    pub(super) mac: Option<[u8; 6]>,
    pub(super) duid: Option<String>,
    pub(super) client_id: Option<String>,
    pub(super) aliases: Vec<String>,
    pub(super) dns: Option<bool>,
    pub(super) boot_file: Option<String>,
    pub(super) options: Vec<DOption>,
    pub(super) from_zone: bool,
    pub(super) removed: bool,
    pub(super) src: Option<Src>,
}

pub(super) struct R<'a> {
    pub(super) raw: &'a Raw,
    pub(super) dom: String,
    pub(super) dom_abs: String,
    pub(super) un: Vec<Unsupported>,
    pub(super) guesses: Vec<String>,
    pub(super) subnets: Vec<SubnetB<'a>>,
    pub(super) hosts: Vec<HostB>,
    /// Every name in use (host names, aliases, service names).
    pub(super) names: HashSet<String>,
    pub(super) ip_owner: HashMap<Ipv4Addr, usize>,
}

pub(super) fn mac_str(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub(super) fn dashed(ip: Ipv4Addr) -> String {
    ip.to_string().replace('.', "-")
}

/// A DNS label from whatever a config called the host (`Web_1.example.com` -> `web-1`).
pub(super) fn to_label(s: &str) -> String {
    let first = s.split('.').next().unwrap_or("").to_ascii_lowercase();
    let mut l: String = first
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    l = l.trim_matches('-').to_owned();
    l.truncate(63);
    l.trim_matches('-').to_owned()
}

pub(super) fn clamp_note(v: u64, min: u64, max: u64, what: &str, notes: &mut Vec<String>) -> u64 {
    let c = v.clamp(min, max);
    if c != v {
        notes.push(format!(
            "{what} {} was outside {}..{}: set to {}",
            dur(v),
            dur(min),
            dur(max),
            dur(c)
        ));
    }
    c
}

impl R<'_> {
    pub(super) fn guess(&mut self, text: String) -> String {
        self.guesses.push(text.clone());
        text
    }

    pub(super) fn subnet_of(&self, ip: Ipv4Addr) -> Option<usize> {
        self.subnets.iter().position(|s| s.net.contains(&ip))
    }

    pub(super) fn overlaps(&self, net: Ipv4Net) -> bool {
        self.subnets
            .iter()
            .any(|s| s.net.contains(&net.network()) || net.contains(&s.net.network()))
    }

    /// The single label of `fqdn` under the domain, if it is one.
    pub(super) fn label(&self, fqdn: &str) -> Option<String> {
        let l = fqdn.strip_suffix(&format!(".{}", self.dom_abs))?;
        is_label(l).then(|| l.to_owned())
    }

    pub(super) fn add_name(&mut self, n: &str) -> bool {
        self.names.insert(n.to_owned())
    }

    pub(super) fn host_by_label(&self, l: &str) -> Option<usize> {
        self.hosts.iter().position(|h| !h.removed && h.name == l)
    }
}
