//! `[key.NAME]`: TSIG keys, and the references to them from `[dhcp]` and `[dns]`.

use std::collections::BTreeMap;

use base64::Engine as _;

use super::values::{Validator, span};
use crate::model::TsigKey;
use crate::wire::{self, S};

impl Validator {
    /// The keys by lower-case name.
    pub(crate) fn keys(
        &mut self,
        key: &BTreeMap<S<String>, wire::Key>,
    ) -> BTreeMap<String, TsigKey> {
        let mut keys = BTreeMap::new();
        for (name, k) in key {
            let n = self.dns_name(name, "key name");
            let algorithm = k.algorithm.as_ref().map_or("hmac-sha256".to_owned(), |a| {
                a.get_ref().to_ascii_lowercase()
            });
            if !["hmac-sha256", "hmac-sha384", "hmac-sha512"].contains(&algorithm.as_str()) {
                let s = k.algorithm.as_ref().map_or(span(name), span);
                self.d.push(
                    s,
                    format!("key algorithm `{algorithm}` is not supported"),
                    "use hmac-sha256 (or hmac-sha384, hmac-sha512)",
                );
            }
            let secret =
                match base64::engine::general_purpose::STANDARD.decode(k.secret.get_ref().trim()) {
                    Ok(s) if s.len() >= 16 => s,
                    Ok(_) => {
                        self.d.push(
                            span(&k.secret),
                            "key secret is shorter than 16 bytes",
                            "generate one with `tsig-keygen` or `openssl rand -base64 32`",
                        );
                        Vec::new()
                    }
                    Err(_) => {
                        self.d.push(
                            span(&k.secret),
                            "key secret is not base64",
                            "generate one with `tsig-keygen` or `openssl rand -base64 32`",
                        );
                        Vec::new()
                    }
                };
            keys.insert(
                n.clone(),
                TsigKey {
                    name: n,
                    algorithm,
                    secret,
                },
            );
        }
        keys
    }

    /// The key `s` names, or a problem listing the keys there are.
    pub(crate) fn key_ref(
        &mut self,
        s: &S<String>,
        keys: &BTreeMap<String, TsigKey>,
    ) -> Option<TsigKey> {
        let name = s.get_ref().trim().to_ascii_lowercase();
        let k = keys.get(&name).cloned();
        if k.is_none() {
            let known: Vec<&str> = keys.keys().map(String::as_str).collect();
            self.d.push(
                span(s),
                format!("key `{}` is not defined", s.get_ref()),
                if known.is_empty() {
                    "define it in a [key.NAME] table with algorithm and secret".to_owned()
                } else {
                    format!(
                        "use one of: {}, or define it in a [key.NAME] table",
                        known.join(", ")
                    )
                },
            );
        }
        k
    }
}
