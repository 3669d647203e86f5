//! TSIG keys and `[dhcp] ddns`. Updates are never made unsigned by the import: when the old
//! configuration's key cannot be kept (an algorithm the host file does not take, a secret that is
//! not usable, no key at all), the key and the `ddns` setting are written commented out, with a
//! loud warning saying what to do.

use base64::Engine as _;
use std::net::IpAddr;

use crate::emit::{DDdns, DKey, Doc};
use crate::facts::{Primary, RawKey};
use crate::source::LOUD;
use hostfile::is_dns_name;

use super::state::R;

/// The algorithms the host file's `[key.NAME]` takes.
const ALGORITHMS: [&str; 3] = ["hmac-sha256", "hmac-sha384", "hmac-sha512"];

/// BIND's long names (`HMAC-MD5.SIG-ALG.REG.INT`) to the short ones.
fn algorithm(a: &str) -> String {
    let a = a.trim_end_matches('.').to_ascii_lowercase();
    a.strip_suffix(".sig-alg.reg.int").unwrap_or(&a).to_owned()
}

impl R<'_> {
    pub(super) fn keys_and_ddns(&mut self, doc: &mut Doc) {
        let raw = self.raw;
        let used = raw.ddns.as_ref().and_then(|d| d.key.clone());
        for k in &raw.keys {
            let construct = format!("key {}", k.name);
            let alg = algorithm(&k.algorithm);
            if !ALGORITHMS.contains(&alg.as_str()) {
                let why = if used.as_deref() == Some(k.name.as_str()) {
                    format!(
                        "{LOUD}algorithm {alg} is not taken by the host file: the key is kept commented out and dynamic DNS updates are NOT sent until it is replaced: make a new key (tsig-keygen -a hmac-sha256 {}), put its secret in [key.{}] here and on the DNS server, then uncomment [dhcp] ddns",
                        k.name, k.name
                    )
                } else {
                    format!(
                        "algorithm {alg} is not taken by the host file (hmac-sha256, -sha384, -sha512): kept commented out; replace it with a new key (tsig-keygen -a hmac-sha256 {})",
                        k.name
                    )
                };
                self.un.push(k.src.unsupported(construct, why));
                doc.old_keys.push(old_key(k, &alg));
                continue;
            }
            let ok = base64::engine::general_purpose::STANDARD
                .decode(k.secret.trim())
                .is_ok_and(|s| s.len() >= 16);
            if !ok || !is_dns_name(&k.name) || doc.keys.iter().any(|x| x.name == k.name) {
                self.un.push(k.src.unsupported(construct, "its name or secret is not usable (base64, at least 16 bytes), or it is defined twice"));
                continue;
            }
            doc.keys.push(DKey {
                src: k.src.clone(),
                note: format!("from {}", k.src),
                name: k.name.clone(),
                algorithm: alg,
                secret: k.secret.trim().to_owned(),
            });
        }
        let Some(dd) = &raw.ddns else { return };
        let mut note = format!("from the zone's primary at {}", dd.src);
        let mut disabled = None;
        let server = match &dd.server {
            Primary::Ip(ip) => ip.to_string(),
            Primary::Name(n) => match self.address_of(n) {
                Some((ip, host)) => {
                    note = format!(
                        "from the zone's primary at {}: {n} is {ip} (host {host})",
                        dd.src
                    );
                    ip.to_string()
                }
                None => {
                    self.un.push(dd.src.unsupported(
                        format!("primary {n}"),
                        "no imported zone or host gives this name an address: [dhcp] ddns is kept commented out; write the server's address there",
                    ));
                    disabled = Some(format!(
                        "the zone's primary {n} has no address in the imported files: write it and uncomment"
                    ));
                    n.clone()
                }
            },
        };
        let key = match &dd.key {
            Some(k) if doc.keys.iter().any(|x| &x.name == k) => Some(k.clone()),
            Some(k) => {
                if !doc.old_keys.iter().any(|x| &x.name == k) {
                    self.un.push(dd.src.unsupported(
                        format!("key {k}"),
                        format!("{LOUD}the zone's key was not imported (not defined, or its secret is not usable): [dhcp] ddns is kept commented out rather than sending unsigned updates; define [key.{k}] (hmac-sha256) and uncomment it"),
                    ));
                }
                disabled.get_or_insert_with(|| {
                    format!("WARNING: key {k} must be replaced (see [key.{k}] above): until then no updates are sent, rather than unsigned ones")
                });
                Some(k.clone())
            }
            None => {
                self.un.push(dd.src.unsupported(
                    "zone { primary ...; } without a key",
                    format!("{LOUD}dhcpd.conf sent unsigned updates: the import does not turn on unsigned updates, so [dhcp] ddns is kept commented out; add a key (tsig-keygen -a hmac-sha256 dhcp-update) as [key.dhcp-update], name it in ddns and in [dns] update-keys (dnsd takes signed updates only), then uncomment it"),
                ));
                disabled.get_or_insert_with(|| {
                    "WARNING: unsigned in dhcpd.conf: add a key before uncommenting (dnsd takes signed updates only)".to_owned()
                });
                None
            }
        };
        if disabled.is_none()
            && let Some(k) = &key
        {
            doc.dns.update_keys.push(k.clone());
            doc.dns.notes.push(self.guess(format!(
                "guessed: dnsd accepts dynamic updates signed with {k} (the key dhcpd used)"
            )));
        }
        doc.ddns = Some(DDdns {
            src: dd.src.clone(),
            note,
            server,
            key,
            ttl: dd.ttl.map(|t| t.clamp(1, 86400)),
            disabled,
        });
    }

    /// A name's IPv4 address among the imported hosts (`ns1.example.com`, or `ns1` under the
    /// domain), and the host it belongs to.
    fn address_of(&self, name: &str) -> Option<(IpAddr, String)> {
        let fq = if name.contains('.') {
            format!("{name}.")
        } else {
            format!("{name}.{}", self.dom_abs)
        };
        let label = self.label(&fq)?;
        self.hosts
            .iter()
            .find(|h| !h.removed && (h.name == label || h.aliases.contains(&label)))
            .and_then(|h| Some((IpAddr::V4(*h.ips.first()?), h.name.clone())))
    }
}

fn old_key(k: &RawKey, alg: &str) -> DKey {
    DKey {
        src: k.src.clone(),
        note: format!(
            "from {}: {alg} is not taken by the host file; replace this key (tsig-keygen -a hmac-sha256 {}) and uncomment",
            k.src, k.name
        ),
        name: k.name.clone(),
        algorithm: alg.to_owned(),
        secret: k.secret.trim().to_owned(),
    }
}
