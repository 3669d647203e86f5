//! From the facts of one or several inputs to one consistent host file.
//!
//! Every rule of `table.rs` is anticipated here (addresses inside subnets, unique names, addresses
//! and MACs, reservations outside dynamic ranges, value ranges), so an import always yields a file
//! that passes `--check`: what cannot be made to fit is listed as unsupported, and what had to be
//! chosen is commented as a guess.

mod daemons;
mod hosts;
mod services;
mod state;
mod subnets;

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use crate::emit::{DHost, Doc};
use crate::facts::Raw;
use crate::source::{Src, Unsupported};
use hostfile::is_dns_name;

use state::{R, clamp_note, mac_str};

pub(crate) fn resolve(raw: &Raw) -> (Doc, Vec<Unsupported>, Vec<String>) {
    let mut doc = Doc::default();
    let mut guesses = Vec::new();
    // Domain: a forward zone's name wins over dhcpd's domain-name.
    let mut cands: Vec<&(String, Src, u8)> = raw.domains.iter().collect();
    cands.sort_by_key(|c| std::cmp::Reverse(c.2));
    let dom = match cands.iter().find(|c| is_dns_name(&c.0)) {
        Some(c) => {
            doc.domain_note = Some(format!(
                "from {} ({})",
                if c.2 == 2 {
                    "the zone's SOA"
                } else {
                    "option domain-name"
                },
                c.1
            ));
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
        un: Vec::new(),
        guesses,
        subnets: Vec::new(),
        hosts: Vec::new(),
        names: HashSet::new(),
        ip_owner: HashMap::new(),
    };
    r.declared_subnets();
    r.zone_hosts();
    r.dhcp_hosts();
    let services = r.services(&mut doc);
    r.guess_subnets(&services);
    r.check_hosts();
    let services = r.prune_services(services);
    r.cnames();
    r.ptrs(&services);
    r.dns(&mut doc);
    r.keys_and_ddns(&mut doc);
    r.vrrp(&mut doc, &services);
    r.finish_subnets(&mut doc);
    for h in r.hosts.iter().filter(|h| !h.removed && !h.ips.is_empty()) {
        doc.hosts.push(DHost {
            notes: h.notes.clone(),
            name: h.name.clone(),
            ips: h.ips.iter().map(Ipv4Addr::to_string).collect(),
            ipv6: h.ipv6.clone(),
            mac: h.mac.map(mac_str),
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
