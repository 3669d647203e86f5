//! `host` and `key` blocks: reservations and TSIG keys.

use crate::block::Stmt;
use crate::facts::{RawHost, RawKey, parse_mac};
use crate::source::ImportError;

use super::options::{IP_OPTIONS, host_option, ip, numeric};
use super::{Interp, Scope};

impl Interp<'_> {
    pub(super) fn host(&mut self, st: &Stmt, scope: &Scope) -> Result<(), ImportError> {
        let s = &st.src;
        let decl = st.word(1).ok_or_else(|| s.error("host needs a name"))?;
        let mut h = RawHost {
            decl,
            host_name: None,
            ips: Vec::new(),
            fixed_names: Vec::new(),
            options: Vec::new(),
            mac: None,
            client_id: None,
            ipv6: Vec::new(),
            duid: None,
            boot_file: None,
            src: s.clone(),
        };
        let _ = scope;
        for b in st.block.as_deref().unwrap_or_default() {
            let v = b.values();
            let bs = &b.src;
            match b.keyword().as_str() {
                "hardware" => {
                    let kind = v.get(1).map(|k| k.to_ascii_lowercase()).unwrap_or_default();
                    let m = v
                        .get(2)
                        .ok_or_else(|| bs.error("hardware needs a type and an address"))?;
                    if kind != "ethernet" {
                        self.unsupported(b, "only ethernet hardware addresses are reserved");
                        continue;
                    }
                    h.mac = Some(parse_mac(m).ok_or_else(|| {
                        bs.error(format!(
                            "`{m}` is not an ethernet address (six hex bytes separated by colons)"
                        ))
                    })?);
                }
                "fixed-address" => {
                    if v.len() < 2 {
                        return Err(bs.error("fixed-address needs an address"));
                    }
                    for a in &v[1..] {
                        if numeric(a) {
                            h.ips.push(ip(bs, a, "fixed-address")?);
                        } else if hostfile::is_dns_name(a) {
                            h.fixed_names
                                .push(a.trim_end_matches('.').to_ascii_lowercase());
                        } else {
                            return Err(bs.error(format!(
                                "fixed-address `{a}` is neither an address nor a host name"
                            )));
                        }
                    }
                }
                "option" => match v.get(1).map(|n| n.to_ascii_lowercase()).as_deref() {
                    Some("host-name") => {
                        h.host_name = Some(
                            v.get(2)
                                .cloned()
                                .ok_or_else(|| bs.error("option host-name needs a name"))?,
                        )
                    }
                    Some("dhcp-client-identifier") => h.client_id = v.get(2).cloned(),
                    Some(name) => {
                        let args: Vec<String> = v.iter().skip(2).cloned().collect();
                        if IP_OPTIONS.contains(&name) && args.iter().any(|a| !numeric(a)) {
                            self.unsupported(
                                b,
                                "host names are not resolved on import: write the addresses",
                            );
                        } else {
                            match host_option(name, &args, bs)? {
                                Some(o) => {
                                    h.options.retain(|x| x.code != o.code);
                                    h.options.push(o)
                                }
                                None => self.unsupported(b, "an option the importer does not know: add it as [[host.NAME.option]] with its code"),
                            }
                        }
                    }
                    None => return Err(bs.error("option needs a name")),
                },
                "filename" => h.boot_file = v.get(1).cloned(),
                "fixed-address6" => {
                    for a in v.iter().skip(1) {
                        h.ipv6.push(a.parse().map_err(|_| {
                            bs.error(format!("fixed-address6 `{a}` is not an IPv6 address"))
                        })?);
                    }
                }
                "host-identifier"
                    if v.get(1).is_some_and(|w| w.eq_ignore_ascii_case("option"))
                        && v.get(2)
                            .is_some_and(|w| w.eq_ignore_ascii_case("dhcp6.client-id")) =>
                {
                    let d = v
                        .get(3)
                        .ok_or_else(|| bs.error("dhcp6.client-id needs the DUID"))?;
                    let ok = d.split(':').all(|b| {
                        !b.is_empty() && b.len() <= 2 && b.chars().all(|c| c.is_ascii_hexdigit())
                    });
                    if !ok {
                        return Err(bs.error(format!(
                            "dhcp6.client-id `{d}` is not colon-separated hex bytes"
                        )));
                    }
                    h.duid = Some(
                        d.split(':')
                            .map(|b| format!("{:0>2}", b.to_ascii_lowercase()))
                            .collect::<Vec<_>>()
                            .join(":"),
                    );
                }
                "fixed-prefix6" => self.unsupported(
                    b,
                    "the host file reserves addresses, not delegated prefixes, for a host",
                ),
                "ddns-hostname" => {
                    if h.host_name.is_none() {
                        h.host_name = v.get(1).cloned();
                    }
                }
                _ => self.unsupported(b, "no host-file equivalent for a host"),
            }
        }
        if h.ips.is_empty() && h.fixed_names.is_empty() && h.ipv6.is_empty() {
            self.raw.unsupported.push(s.unsupported(
                st.text(),
                "host without fixed-address: the host file reserves addresses only (the client gets a dynamic one)",
            ));
            return Ok(());
        }
        self.raw.hosts.push(h);
        Ok(())
    }

    pub(super) fn key(&mut self, st: &Stmt) -> Result<(), ImportError> {
        let s = &st.src;
        let name = st
            .word(1)
            .ok_or_else(|| s.error("key needs a name"))?
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let mut algorithm = None;
        let mut secret = None;
        for b in st.block.as_deref().unwrap_or_default() {
            match b.keyword().as_str() {
                "algorithm" => {
                    algorithm = b
                        .word(1)
                        .map(|a| a.trim_end_matches('.').to_ascii_lowercase())
                }
                "secret" => secret = b.word(1),
                _ => self.unsupported(b, "not part of a TSIG key"),
            }
        }
        let secret = secret.ok_or_else(|| s.error(format!("key {name} has no secret")))?;
        self.raw.keys.push(RawKey {
            name,
            algorithm: algorithm.unwrap_or_else(|| "hmac-md5".into()),
            secret,
            src: s.clone(),
        });
        Ok(())
    }
}
