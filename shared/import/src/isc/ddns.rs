//! Dynamic DNS in dhcpd.conf: `zone` blocks (primary by address or by name, key), the update
//! style, and the names dhcpd.conf gives the domain (`option domain-name`, `ddns-domainname`, a
//! forward `zone`).

use std::net::IpAddr;

use crate::block::Stmt;
use crate::facts::{Primary, RawDdns};
use crate::source::{ImportError, Src};

use super::Interp;

/// One `zone NAME { primary ...; key ...; }` block.
#[derive(Debug, Clone)]
pub(super) struct Zone {
    /// The zone's name, without the trailing dot, lower case.
    name: String,
    primary: Primary,
    key: Option<String>,
    src: Src,
}

impl Interp<'_> {
    pub(super) fn zone(&mut self, st: &Stmt) -> Result<(), ImportError> {
        let mut primary = None;
        let mut key = None;
        for z in st.children() {
            let zv = z.values();
            match z.keyword().as_str() {
                "primary" | "primary6" => {
                    let Some(a) = zv.get(1) else {
                        return Err(z.src.error("primary needs an address or a host name"));
                    };
                    let a = a.trim_end_matches('.');
                    primary = Some(match a.parse::<IpAddr>() {
                        Ok(ip) => Primary::Ip(ip),
                        Err(_) if hostfile::is_dns_name(a) => Primary::Name(a.to_ascii_lowercase()),
                        Err(_) => {
                            return Err(z.src.error(format!(
                                "zone primary `{a}` is neither an address nor a host name"
                            )));
                        }
                    });
                }
                "key" => {
                    key = zv
                        .get(1)
                        .map(|k| k.trim_end_matches('.').to_ascii_lowercase())
                }
                _ => self.unsupported(z, "not part of a zone's update settings"),
            }
        }
        let name = st
            .word(1)
            .unwrap_or_default()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        match primary {
            Some(primary) => self.zones.push(Zone {
                name,
                primary,
                key,
                src: st.src.clone(),
            }),
            None => self.unsupported(st, "zone without a primary address"),
        }
        Ok(())
    }

    /// The names dhcpd.conf gives the domain, strongest first (a zone file's SOA beats them all).
    pub(super) fn domain_candidates(&mut self, global: Option<(String, Src)>) {
        let mut cands: Vec<(String, Src, &'static str)> = Vec::new();
        if let Some((d, src)) = global {
            cands.push((d, src, "option domain-name"));
        }
        // The subnets' own domain-name, when they all agree (the usual one-subnet file).
        let sub: Vec<(String, Src)> = self
            .subnets
            .iter()
            .filter_map(|(_, sc)| Some((sc.domain.clone()?, sc.srcs.get("domain")?.clone())))
            .collect();
        if let Some((d, src)) = sub.first()
            && sub.iter().all(|(x, _)| x == d)
        {
            cands.push((d.clone(), src.clone(), "the subnet's option domain-name"));
        }
        if let Some((d, src)) = self.ddns_domain.clone() {
            cands.push((d, src, "ddns-domainname"));
        }
        for z in &self.zones {
            if !z.name.ends_with(".arpa") && !z.name.is_empty() {
                cands.push((z.name.clone(), z.src.clone(), "the dynamic DNS zone"));
            }
        }
        for (d, src, why) in cands {
            self.raw.domains.push((d, src, 1, why));
        }
    }

    /// ISC sends updates only with a style other than none and a zone naming its primary.
    pub(super) fn finish_ddns(&mut self) {
        match &self.ddns_style {
            Some((style, src)) if style != "none" => {
                let fwd = self
                    .zones
                    .iter()
                    .find(|z| !z.name.ends_with(".arpa"))
                    .or(self.zones.first());
                if let Some(z) = fwd.cloned() {
                    // One server and one key for every update, forward and reverse.
                    for o in self
                        .zones
                        .iter()
                        .filter(|o| o.src.line != z.src.line || o.src.file != z.src.file)
                    {
                        if o.primary != z.primary || o.key != z.key {
                            self.raw.unsupported.push(o.src.unsupported(
                                format!("zone {} {{ ... }}", o.name),
                                format!("its primary or key differs from zone {}'s ({}): [dhcp] ddns sends all updates, forward and reverse, to that one server with that one key", z.name, z.src),
                            ));
                        }
                    }
                    self.raw.ddns = Some(RawDdns {
                        server: z.primary,
                        key: z.key,
                        ttl: self.ddns_ttl,
                        src: z.src,
                    });
                } else {
                    self.raw.unsupported.push(src.unsupported(
                        format!("ddns-update-style {style}"),
                        "no zone block names a primary server; set [dhcp] ddns = { server = \"ADDRESS\" } by hand",
                    ));
                }
            }
            _ => {
                for z in &self.zones {
                    self.raw.unsupported.push(z.src.unsupported(
                        format!("zone {} {{ primary ... }}", z.name),
                        "dynamic DNS updates are off (ddns-update-style none)",
                    ));
                }
            }
        }
    }
}
