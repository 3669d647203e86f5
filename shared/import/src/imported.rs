//! The importers' entry points: one input to an [`Imported`] host file, several merged into one.

use std::path::{Path, PathBuf};

use hostfile::{ConfigError, HostTable};

use crate::facts::Raw;
use crate::source::{ImportError, LOUD, ReadFn, Unsupported, read_lossy};
use crate::{emit, isc, keepalived, resolve, verify, zone};

/// The input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// ISC DHCP `dhcpd.conf`.
    IscDhcpd,
    /// An RFC 1035 / BIND master (zone) file.
    Zone,
    /// `keepalived.conf` (VRRP and LVS virtual servers).
    Keepalived,
}

impl Format {
    /// Guesses the format from a file's name and text (for an `import` that takes any file).
    pub fn detect(path: &Path, text: &str) -> Option<Format> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if name.contains("dhcpd") {
            return Some(Format::IscDhcpd);
        }
        if name.contains("keepalived") {
            return Some(Format::Keepalived);
        }
        if name.starts_with("db.") || name.ends_with(".zone") || name.ends_with(".db") {
            return Some(Format::Zone);
        }
        let t = text.to_ascii_lowercase();
        if t.contains("vrrp_instance") || t.contains("virtual_server") {
            Some(Format::Keepalived)
        } else if t.contains(" soa ") || t.contains("\tsoa") || t.contains("$origin") {
            Some(Format::Zone)
        } else if t.contains("subnet ") && t.contains("netmask") {
            Some(Format::IscDhcpd)
        } else {
            None
        }
    }
}

fn read_fs(p: &Path) -> std::io::Result<String> {
    read_lossy(p)
}

/// The result of importing one or several inputs: the host file, and what could not go into it.
#[derive(Debug, Clone)]
pub struct Imported {
    /// Everything not imported, in input order, each with its file and line.
    pub unsupported: Vec<Unsupported>,
    /// Every value that was guessed rather than read (also written as comments in the TOML).
    pub guesses: Vec<String>,
    raw: Raw,
    /// The host file as validated, without the "not imported" list.
    body: String,
    domain: String,
}

impl Imported {
    fn new(raw: Raw) -> Imported {
        let (doc, mut unsupported, guesses) = resolve::resolve(&raw);
        // The host file's validator has the last word: what it refuses is left out and listed.
        let (body, mut refused) = verify::verify(&doc, &emit::render(&doc));
        let mut all = raw.unsupported.clone();
        all.append(&mut unsupported);
        all.append(&mut refused);
        // Grouped by file (in the order the files were read), then by line.
        let mut files: Vec<PathBuf> = Vec::new();
        for u in &all {
            if !files.contains(&u.file) {
                files.push(u.file.clone());
            }
        }
        all.sort_by_key(|u| (files.iter().position(|f| *f == u.file), u.line));
        Imported {
            unsupported: all,
            guesses,
            raw,
            body,
            domain: doc.domain,
        }
    }

    /// The host file, with comments where a value was guessed and a list of what was not imported.
    pub fn to_toml(&self) -> String {
        format!("{}{}", self.body, emit::footer(&self.unsupported))
    }

    /// Validates the generated host file exactly as the daemons' `--check` would.
    pub fn check(&self) -> Result<HostTable, ConfigError> {
        HostTable::from_toml(&self.to_toml())
    }

    /// The entries of [`Imported::unsupported`] where a security property of the old
    /// configuration is weaker or switched off in the host file (an SSL_GET checked by a TCP
    /// connect, updates whose key must be replaced): their reason starts with `WARNING: `.
    pub fn warnings(&self) -> impl Iterator<Item = &Unsupported> {
        self.unsupported
            .iter()
            .filter(|u| u.reason.starts_with(LOUD))
    }

    /// The domain the host file was written for.
    pub fn domain(&self) -> &str {
        &self.domain
    }
}

/// Imports an ISC `dhcpd.conf`; `file` names it in messages and anchors relative includes.
pub fn import_isc_dhcpd(text: &str, file: &Path) -> Result<Imported, ImportError> {
    import_isc_dhcpd_with(text, file, &read_fs)
}

/// [`import_isc_dhcpd`] with a custom reader for `include` statements.
pub fn import_isc_dhcpd_with(
    text: &str,
    file: &Path,
    read: ReadFn<'_>,
) -> Result<Imported, ImportError> {
    let mut raw = Raw::default();
    isc::import(text, file, read, &mut raw)?;
    Ok(Imported::new(raw))
}

/// Imports a zone file. `origin` is the zone's name as `named.conf` gives it (the file may set its
/// own with `$ORIGIN`); without either it is guessed from the file name (`db.example.com`).
pub fn import_zone(text: &str, origin: Option<&str>, file: &Path) -> Result<Imported, ImportError> {
    import_zone_with(text, origin, file, &read_fs)
}

/// [`import_zone`] with a custom reader for `$INCLUDE`.
pub fn import_zone_with(
    text: &str,
    origin: Option<&str>,
    file: &Path,
    read: ReadFn<'_>,
) -> Result<Imported, ImportError> {
    let mut raw = Raw::default();
    zone::import(text, origin, file, read, &mut raw)?;
    Ok(Imported::new(raw))
}

/// Imports a `keepalived.conf`.
pub fn import_keepalived(text: &str, file: &Path) -> Result<Imported, ImportError> {
    import_keepalived_with(text, file, &read_fs)
}

/// [`import_keepalived`] with a custom reader for `include`.
pub fn import_keepalived_with(
    text: &str,
    file: &Path,
    read: ReadFn<'_>,
) -> Result<Imported, ImportError> {
    let mut raw = Raw::default();
    keepalived::import(text, file, read, &mut raw)?;
    Ok(Imported::new(raw))
}

/// Reads `path` and imports it as `format` (`origin` is used for zone files only).
pub fn import_file(
    format: Format,
    path: &Path,
    origin: Option<&str>,
) -> Result<Imported, ImportError> {
    let text = read_lossy(path).map_err(|source| ImportError::Read {
        file: path.to_owned(),
        line: 0,
        path: path.to_owned(),
        source,
    })?;
    match format {
        Format::IscDhcpd => import_isc_dhcpd(&text, path),
        Format::Zone => import_zone(&text, origin, path),
        Format::Keepalived => import_keepalived(&text, path),
    }
}

/// Merges several imports into one host file: hosts are joined by address (a DHCP reservation and
/// the zone's A record become one host), keepalived's real servers take their names from the
/// zone or the DHCP hosts, and the zone's PTR records are checked against the result.
pub fn merge(parts: Vec<Imported>) -> Imported {
    let mut raw = Raw::default();
    for p in parts {
        raw.absorb(p.raw);
    }
    Imported::new(raw)
}

// ------------------------------------------------------------------ facts gathered by the parsers

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_detected() {
        let d = |p: &str, t: &str| Format::detect(Path::new(p), t);
        assert_eq!(d("/etc/dhcp/dhcpd.conf", ""), Some(Format::IscDhcpd));
        assert_eq!(
            d("/etc/keepalived/keepalived.conf", ""),
            Some(Format::Keepalived)
        );
        assert_eq!(d("db.it-ishin.com", ""), Some(Format::Zone));
        assert_eq!(d("x", "@ IN SOA ns h 1 2 3 4 5\n"), Some(Format::Zone));
        assert_eq!(
            d("x", "virtual_server 1.2.3.4 80 {\n}\n"),
            Some(Format::Keepalived)
        );
        assert_eq!(
            d("x", "subnet 10.0.0.0 netmask 255.0.0.0 { }"),
            Some(Format::IscDhcpd)
        );
        assert_eq!(d("x", "hello"), None);
    }
}
