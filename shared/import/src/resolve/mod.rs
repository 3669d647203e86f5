//! From the facts of one or several inputs to one host file: the import-specific decisions.
//!
//! The host file's rules are not restated here: `verify` runs the host file's own validator on
//! the result and lists what it refuses at the input's line (a router outside its subnet, an MTU
//! below 68, an overlapping range, a quorum above the total weight, VRID 0, a bad search
//! domain, ...). What stays here is what a validator cannot do, because it can only refuse:
//! choosing a host's name (one DNS label, made unique), joining the records of one machine (an A
//! record, a reservation, a real server) by address and MAC, splitting a dynamic range around a
//! reservation, guessing a subnet for addresses no `subnet` holds, taking the nearest allowed
//! value for timers, and deciding which of two conflicting inputs wins.
//!
//! A few checks still run before the validator, each because a later decision depends on it:
//! - a subnet's prefix (/8-/30) and overlap, because every address is then placed by its subnet
//!   and an address whose subnet goes gets a guessed one instead of being lost with it;
//! - a host address outside every subnet (or a network/broadcast address), because the host's
//!   aliases are released before CNAMEs and services pick their targets;
//! - a TSIG key's algorithm and secret, because `[dhcp] ddns` and `[dns] update-keys` name the key
//!   only when it is kept (and say so when updates would go unsigned);
//! - an NS target's name, because the validator's problem would point at the SOA that `[dns]`
//!   comes from rather than at the NS record.

mod daemons;
mod ddns;
mod float;
mod hosts;
mod services;
mod services6;
mod state;
mod subnets;
mod v6;

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use crate::emit::{DHost, Doc};
use crate::facts::Raw;
use crate::source::{Src, Unsupported};
use hostfile::is_dns_name;

use state::{R, clamp_note, mac_str};

pub(crate) fn resolve(input: &Raw) -> (Doc, Vec<Unsupported>, Vec<String>) {
    // keepalived's instances: the one with service VIPs is [lb.vrrp], the others float.
    let split = float::split(input);
    let raw = &split.raw;
    let mut doc = Doc::default();
    let mut guesses = Vec::new();
    // Domain: a forward zone's name wins over dhcpd's domain-name.
    let mut cands: Vec<&(String, Src, u8, &str)> = raw.domains.iter().collect();
    cands.sort_by_key(|c| std::cmp::Reverse(c.2));
    let mut un = Vec::new();
    let dom = match cands.iter().find(|c| is_dns_name(&c.0)) {
        Some(c) => {
            doc.domain_note = Some(format!("from {} ({})", c.3, c.1));
            // dhcpd.conf's update domain, when another wins: updates go to the host file's.
            for o in cands
                .iter()
                .filter(|o| o.3 == "ddns-domainname" && o.0 != c.0)
            {
                un.push(o.1.unsupported(
                    format!("ddns-domainname \"{}\"", o.0),
                    format!("dynamic DNS updates go to the host file's domain, {}", c.0),
                ));
            }
            c.0.clone()
        }
        None if !raw.ptrs.is_empty() => {
            // Only reverse data: the domain most PTR records point into.
            let mut count: HashMap<String, usize> = HashMap::new();
            for p in &raw.ptrs {
                if let Some((_, parent)) = p.target.trim_end_matches('.').split_once('.')
                    && is_dns_name(parent)
                {
                    *count.entry(parent.to_owned()).or_default() += 1;
                }
            }
            let best = count
                .into_iter()
                .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)));
            let (d, note) = match best {
                Some((d, _)) => {
                    let g = format!("guessed: {d}, the domain the PTR records point into");
                    (d, g)
                }
                None => (
                    "lan".to_owned(),
                    "guessed: no input names a domain; replace \"lan\" with yours".to_owned(),
                ),
            };
            guesses.push(note.clone());
            doc.domain_note = Some(note);
            d
        }
        None => {
            let g = "guessed: no input names a domain; replace \"lan\" with yours".to_owned();
            guesses.push(g.clone());
            doc.domain_note = Some(g);
            "lan".to_owned()
        }
    };
    let mut r = R {
        raw,
        dom_abs: format!("{dom}."),
        dom,
        un,
        guesses,
        subnets: Vec::new(),
        hosts: Vec::new(),
        names: HashSet::new(),
        ip_owner: HashMap::new(),
    };
    r.declared_subnets();
    r.zone_hosts();
    r.dhcp_hosts();
    r.hosts6();
    let services = r.services(&mut doc);
    r.guess_subnets(&services);
    r.check_hosts();
    let services = r.prune_services(services);
    r.cnames();
    r.ptrs(&services);
    r.dns(&mut doc);
    r.keys_and_ddns(&mut doc);
    r.vrrp(&mut doc, &services);
    r.floats(&mut doc, &split);
    r.finish_subnets(&mut doc);
    r.subnets6(&mut doc);
    for h in r
        .hosts
        .iter()
        .filter(|h| !h.removed && (!h.ips.is_empty() || !h.ipv6.is_empty()))
    {
        doc.hosts.push(DHost {
            src: h.src.clone(),
            notes: h.notes.clone(),
            name: h.name.clone(),
            ips: h.ips.iter().map(Ipv4Addr::to_string).collect(),
            ipv6: h.ipv6.clone(),
            mac: h.mac.map(mac_str),
            duid: h.duid.clone(),
            client_id: h.client_id.clone(),
            aliases: h.aliases.clone(),
            dns: h.dns,
            boot_file: h.boot_file.clone(),
            options: h.options.clone(),
        });
    }
    doc.services = services.into_iter().map(|(s, _)| s).collect();
    doc.ping_check = raw.ping_check;
    if let Some((t, src)) = &raw.ttl {
        let mut notes = Vec::new();
        let t = clamp_note(u64::from(*t), 1, 7 * 86400, "ttl", &mut notes);
        doc.ttl = Some(t as u32);
        for n in notes {
            r.un.push(src.unsupported("$TTL", n));
        }
    }
    doc.domain = r.dom.clone();
    (doc, r.un, r.guesses)
}
