//! `[key.NAME]`: TSIG keys, their secrets (inline or from a `secret-file`), and the references to
//! them from `[dhcp]` and `[dns]`.

use std::collections::BTreeMap;
use std::io::Read as _;

use base64::Engine as _;

use super::values::{Validator, span};
use crate::model::TsigKey;
use crate::wire::{self, S};

/// The secret of `[key.dhcp-update]` in the example host file (`etc/hosts.toml`), published with
/// lansuite: a key holding it is a warning (anyone who read the example can sign with it).
pub(crate) const EXAMPLE_SECRET: &str = "bGFuc3VpdGUtZXhhbXBsZS1rZXktY2hhbmdlLW1lLW5vdw==";

/// A secret file larger than this is not one (and `/dev/zero` must not hang the check).
const SECRET_FILE_MAX: u64 = 4096;

const FIX_GENERATE: &str = "generate one with `tsig-keygen` or `openssl rand -base64 32`";

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
            let (secret, at) = match (&k.secret, &k.secret_file) {
                (Some(s), None) => (self.inline_secret(s), s),
                (None, Some(f)) => (self.secret_file(f), f),
                (Some(_), Some(f)) => {
                    self.d.push(
                        span(f),
                        format!("key `{n}` has both secret and secret-file"),
                        "keep one: secret-file = \"PATH\" (a file holding the base64 secret) or secret = \"BASE64\"",
                    );
                    (Vec::new(), f)
                }
                (None, None) => {
                    self.d.push(
                        span(name),
                        format!("key `{n}` has no secret"),
                        "add secret-file = \"PATH\" (a file holding the base64 secret, e.g. from `openssl rand -base64 32`) or secret = \"BASE64\"",
                    );
                    (Vec::new(), name)
                }
            };
            if is_example_secret(&secret) {
                self.warnings.push(
                    span(at),
                    format!(
                        "key `{n}` holds the example secret published with lansuite: anyone who read \
                         the example can sign DNS updates and zone transfers with it"
                    ),
                    "make a secret of your own, `(umask 027; openssl rand -base64 32 > \
                     /etc/lansuite/tsig.key); chgrp lansuite /etc/lansuite/tsig.key`, and write \
                     secret-file = \"tsig.key\" (the .deb does this at install)",
                );
            }
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

    /// `secret = "BASE64"`.
    fn inline_secret(&mut self, s: &S<String>) -> Vec<u8> {
        match base64::engine::general_purpose::STANDARD.decode(s.get_ref().trim()) {
            Ok(v) if v.len() >= 16 => v,
            Ok(_) => {
                self.d
                    .push(span(s), "key secret is shorter than 16 bytes", FIX_GENERATE);
                Vec::new()
            }
            Err(_) => {
                self.d
                    .push(span(s), "key secret is not base64", FIX_GENERATE);
                Vec::new()
            }
        }
    }

    /// `secret-file = "PATH"`: read now (every load and reload), relative to the host file.
    fn secret_file(&mut self, f: &S<String>) -> Vec<u8> {
        let written = f.get_ref().trim();
        let path = self.path(Some(written), "");
        let shown = if path.as_os_str() == written {
            format!("`{written}`")
        } else {
            format!("`{written}` ({})", path.display())
        };
        let mut bytes = Vec::new();
        let read = std::fs::File::open(&path)
            .and_then(|file| file.take(SECRET_FILE_MAX + 1).read_to_end(&mut bytes));
        if let Err(e) = read {
            self.d.push(
                span(f),
                format!("secret-file {shown} cannot be read: {e}"),
                format!(
                    "write the base64 secret into it, readable by root and the daemons only \
                     (`(umask 027; openssl rand -base64 32 > {0}); chgrp lansuite {0}`), or \
                     correct the path",
                    path.display()
                ),
            );
            return Vec::new();
        }
        let text = String::from_utf8_lossy(&bytes);
        match base64::engine::general_purpose::STANDARD.decode(text.trim()) {
            _ if bytes.len() as u64 > SECRET_FILE_MAX => {
                self.d.push(
                    span(f),
                    format!("secret-file {shown} is longer than {SECRET_FILE_MAX} bytes"),
                    "put only the base64 secret in it, e.g. from `openssl rand -base64 32`",
                );
                Vec::new()
            }
            Ok(v) if v.len() >= 16 => v,
            Ok(_) => {
                self.d.push(
                    span(f),
                    format!("secret-file {shown} holds a secret shorter than 16 bytes"),
                    FIX_GENERATE,
                );
                Vec::new()
            }
            Err(_) => {
                self.d.push(
                    span(f),
                    format!("secret-file {shown} does not hold a base64 secret"),
                    "put only the base64 secret in it, e.g. from `openssl rand -base64 32`",
                );
                Vec::new()
            }
        }
    }

    /// `admin-key-file = "PATH"` (`[dhcp]`, `[lb]`): the status page's admin key, read now (every
    /// load and reload), relative to the host file. At least 16 printable characters, no spaces:
    /// it is typed or pasted into the page's login form.
    pub(crate) fn admin_key_file(&mut self, f: &S<String>) -> Option<crate::model::AdminKey> {
        let written = f.get_ref().trim();
        let path = self.path(Some(written), "");
        let fix_make = format!(
            "make one readable by root and the daemons only: `(umask 027; openssl rand -base64 24 \
             > {0}); chgrp lansuite {0}`",
            path.display()
        );
        let mut bytes = Vec::new();
        let read = std::fs::File::open(&path)
            .and_then(|file| file.take(SECRET_FILE_MAX + 1).read_to_end(&mut bytes));
        let problem = match read {
            Err(e) => Some(format!("admin-key-file `{written}` cannot be read: {e}")),
            Ok(_) if bytes.len() as u64 > SECRET_FILE_MAX => Some(format!(
                "admin-key-file `{written}` is longer than {SECRET_FILE_MAX} bytes"
            )),
            Ok(_) => {
                let key = String::from_utf8_lossy(&bytes).trim().to_owned();
                if key.len() < 16 {
                    Some(format!(
                        "admin-key-file `{written}` holds a key shorter than 16 characters"
                    ))
                } else if !key.bytes().all(|b| b.is_ascii_graphic()) {
                    Some(format!(
                        "admin-key-file `{written}` holds spaces or characters that are not \
                         printable ASCII"
                    ))
                } else {
                    return Some(crate::model::AdminKey {
                        file: path,
                        secret: key.into_bytes(),
                    });
                }
            }
        };
        if let Some(p) = problem {
            self.d.push(span(f), p, fix_make);
        }
        None
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

/// True when `secret` is the example host file's published secret.
fn is_example_secret(secret: &[u8]) -> bool {
    base64::engine::general_purpose::STANDARD
        .decode(EXAMPLE_SECRET)
        .is_ok_and(|e| e == secret)
}
