//! The daemons' sections: [dns] from the SOA and NS records, [lb.vrrp] (keys and [dhcp] ddns: `ddns`).

use crate::emit::{DDns, DService, DVrrp, Doc, dur_ms};
use hostfile::is_dns_name;

use super::state::{R, clamp_note};

impl R<'_> {
    pub(super) fn dns(&mut self, doc: &mut Doc) {
        let raw = self.raw;
        let mut d = DDns::default();
        let fwd_soa = raw
            .soa
            .iter()
            .find(|s| s.owner == self.dom_abs)
            .or_else(|| raw.soa.iter().find(|s| !s.owner.ends_with(".arpa.")));
        if let Some(s) = fwd_soa {
            d.notes.push(format!("from the SOA at {}", s.src));
            d.src = Some(s.src.clone());
            let r = s.rname.trim_end_matches('.');
            let mut local = String::new();
            let mut rest = None;
            let mut chars = r.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => local.extend(chars.next()),
                    '.' => {
                        rest = Some(chars.as_str().to_owned());
                        break;
                    }
                    c => local.push(c),
                }
            }
            match rest {
                Some(dom) if is_dns_name(&format!("{local}.{dom}")) => {
                    d.contact = Some(format!("{local}@{dom}"))
                }
                _ => self.un.push(s.src.unsupported(
                    format!("SOA rname {}", s.rname),
                    "not a mailbox name; the default hostmaster@DOMAIN is used",
                )),
            }
            let mut notes = Vec::new();
            d.refresh = Some(clamp_note(
                u64::from(s.refresh),
                60,
                30 * 86400,
                "refresh",
                &mut notes,
            ));
            d.retry = Some(clamp_note(
                u64::from(s.retry),
                10,
                7 * 86400,
                "retry",
                &mut notes,
            ));
            d.expire = Some(clamp_note(
                u64::from(s.expire),
                3600,
                365 * 86400,
                "expire",
                &mut notes,
            ));
            d.negative_ttl = Some(clamp_note(
                u64::from(s.minimum),
                0,
                86400,
                "negative-ttl",
                &mut notes,
            ));
            for n in notes {
                self.un.push(s.src.unsupported("SOA timers", n));
            }
            // The server running the daemons: the SOA's primary, when it is a host here.
            if let Some(l) = self.label(&s.mname) {
                let owner = self
                    .hosts
                    .iter()
                    .find(|h| !h.removed && (h.name == l || h.aliases.contains(&l)))
                    .map(|h| h.name.clone());
                if let Some(h) = owner {
                    let note = self.guess(format!(
                        "guessed: the server is {h} (the SOA's primary name server)"
                    ));
                    doc.server = Some((h, note));
                }
            }
            for o in raw.soa.iter().filter(|o| !std::ptr::eq(*o, s)) {
                if (o.refresh, o.retry, o.expire, o.minimum)
                    != (s.refresh, s.retry, s.expire, s.minimum)
                {
                    self.un.push(o.src.unsupported(
                        format!("SOA of {}", o.owner),
                        "its timers differ: dnsd uses one SOA for all its zones",
                    ));
                }
            }
        }
        for n in &raw.ns {
            let construct = format!("{} NS {}", n.owner, n.target);
            if n.owner == self.dom_abs {
                let v = match self.label(&n.target).and_then(|l| self.host_by_label(&l)) {
                    Some(i) => self.hosts[i].name.clone(),
                    None => n.target.trim_end_matches('.').to_owned(),
                };
                // Checked here, not left to the validator: its problem would point at the SOA
                // ([dns] comes from there), not at this NS record's line.
                if !is_dns_name(&v) {
                    self.un
                        .push(n.src.unsupported(construct, "not a valid name server name"));
                } else if !d.ns.contains(&v) {
                    d.ns.push(v);
                }
            } else if n.owner.ends_with(".in-addr.arpa.") || n.owner.ends_with(".ip6.arpa.") {
                let in_fwd = raw
                    .ns
                    .iter()
                    .any(|f| f.owner == self.dom_abs && f.target == n.target);
                if !in_fwd {
                    self.un.push(n.src.unsupported(
                        construct,
                        "reverse zones get the forward zone's name servers",
                    ));
                }
            } else {
                self.un.push(n.src.unsupported(
                    construct,
                    "delegations have no host-file equivalent: serve them from a zone-file",
                ));
            }
        }
        doc.dns = d;
    }

    pub(super) fn vrrp(&mut self, doc: &mut Doc, services: &[(DService, Option<u8>)]) {
        let raw = self.raw;
        for v in &raw.vips {
            if !services.iter().any(|(s, _)| s.vip == v.ip.to_string()) {
                self.un.push(v.src.unsupported(
                    v.ip.to_string(),
                    "a VIP without a virtual_server: lbd holds the VIPs of its services only",
                ));
            }
        }
        let Some(v) = &raw.vrrp else { return };
        // A VRID of 0 is written as read: the validator refuses it (1-255) and it is listed.
        let vrid = v.vrid.unwrap_or(0);
        let mut notes = vec![format!("from vrrp_instance at {}", v.src)];
        let interval_ms = v.interval_ms.map(|i| {
            let c = (i.clamp(10, 40_950)).div_ceil(10) * 10;
            if c != i {
                notes.push(format!(
                    "advert_int {} adjusted to {}",
                    dur_ms(i),
                    dur_ms(c)
                ));
            }
            c
        });
        doc.vrrp = Some(DVrrp {
            src: Some(v.src.clone()),
            notes,
            vrid,
            priority: v.priority.filter(|p| *p > 0),
            preempt: v.preempt,
            interval_ms,
            interface: v.interface.clone(),
            peers: v.peers.iter().map(ToString::to_string).collect(),
            source: v.source.map(|s| s.to_string()),
            extras: Default::default(),
        });
    }
}
