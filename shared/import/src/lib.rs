//! Migration: turn an ISC `dhcpd.conf`, BIND zone files and a `keepalived.conf` into a host file.
//!
//! Each importer is a real parser for its format (a tokenizer and a recursive-descent parser, with
//! includes), not a line matcher. It collects *facts* ([`Raw`]); [`resolve`] then turns the facts of
//! one or several inputs into one consistent host file, naming every guess in a TOML comment and
//! listing everything the host file cannot express in [`Imported::unsupported`], with its line.
//!
//! ```no_run
//! use std::path::Path;
//! use import::{self, Format};
//! let dhcp = import::import_file(Format::IscDhcpd, Path::new("/etc/dhcp/dhcpd.conf"), None)?;
//! let zone = import::import_file(Format::Zone, Path::new("/var/lib/samba/db.it-ishin.com"), Some("it-ishin.com"))?;
//! let all = import::merge(vec![dhcp, zone]);
//! for u in &all.unsupported { eprintln!("{u}"); }
//! std::fs::write("hosts.toml", all.to_toml())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod command;
mod emit;
mod isc;
mod keepalived;
mod resolve;
mod zone;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ipnet::Ipv4Net;

use hostfile::{ConfigError, HostTable};

/// Includes nested deeper than this are refused (a loop, or a configuration nobody can read).
const MAX_INCLUDE_DEPTH: usize = 16;

/// Why an input could not be imported. Every variant names the file and, for syntax, the line.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The input is malformed at this line.
    #[error("{}:{line}: {message}", file.display())]
    Syntax {
        /// The file (an included file when the problem is there).
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong and, where it helps, how to fix it.
        message: String,
    },
    /// A file (the input or one it includes) could not be read.
    #[error("{}:{line}: cannot read `{}`: {source}", file.display(), path.display())]
    Read {
        /// The file holding the include (or the input itself, line 0).
        file: PathBuf,
        /// The line of the include statement (0 for the input itself).
        line: usize,
        /// The path that could not be read.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl ImportError {
    /// The line the error is about.
    pub fn line(&self) -> usize {
        match self {
            ImportError::Syntax { line, .. } | ImportError::Read { line, .. } => *line,
        }
    }
    /// The file the error is about.
    pub fn file(&self) -> &Path {
        match self {
            ImportError::Syntax { file, .. } | ImportError::Read { file, .. } => file,
        }
    }
}

/// Something in the input the host file cannot express (or that the suite derives by itself and
/// that disagreed with the input). Never dropped silently: the importer lists each one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// The file it is in.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// The construct, as written (abridged).
    pub construct: String,
    /// Why it was not imported, and what to do instead.
    pub reason: String,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: not imported: {}: {}",
            self.file.display(),
            self.line,
            self.construct,
            self.reason
        )
    }
}

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

/// Reads an included file. The default reads the file system; tests and tools may supply their own.
pub type ReadFn<'a> = &'a dyn Fn(&Path) -> std::io::Result<String>;

fn read_fs(p: &Path) -> std::io::Result<String> {
    std::fs::read_to_string(p)
}

/// The result of importing one or several inputs: the host file, and what could not go into it.
#[derive(Debug, Clone)]
pub struct Imported {
    /// Everything not imported, in input order, each with its file and line.
    pub unsupported: Vec<Unsupported>,
    /// Every value that was guessed rather than read (also written as comments in the TOML).
    pub guesses: Vec<String>,
    raw: Raw,
    doc: emit::Doc,
}

impl Imported {
    fn new(raw: Raw) -> Imported {
        let (doc, mut unsupported, guesses) = resolve::resolve(&raw);
        let mut all = raw.unsupported.clone();
        all.append(&mut unsupported);
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
            doc,
        }
    }

    /// The host file, with comments where a value was guessed and a list of what was not imported.
    pub fn to_toml(&self) -> String {
        emit::render(&self.doc, &self.unsupported)
    }

    /// Validates the generated host file exactly as the daemons' `--check` would.
    pub fn check(&self) -> Result<HostTable, ConfigError> {
        HostTable::from_toml(&self.to_toml())
    }

    /// The domain the host file was written for.
    pub fn domain(&self) -> &str {
        &self.doc.domain
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
    let text = std::fs::read_to_string(path).map_err(|source| ImportError::Read {
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

/// Where a fact came from.
#[derive(Debug, Clone)]
pub(crate) struct Src {
    pub(crate) file: Arc<Path>,
    pub(crate) line: usize,
}

impl Src {
    pub(crate) fn new(file: &Arc<Path>, line: usize) -> Src {
        Src {
            file: file.clone(),
            line,
        }
    }
    pub(crate) fn unsupported(
        &self,
        construct: impl Into<String>,
        reason: impl Into<String>,
    ) -> Unsupported {
        Unsupported {
            file: self.file.to_path_buf(),
            line: self.line,
            construct: construct.into(),
            reason: reason.into(),
        }
    }
    pub(crate) fn error(&self, message: impl Into<String>) -> ImportError {
        ImportError::Syntax {
            file: self.file.to_path_buf(),
            line: self.line,
            message: message.into(),
        }
    }
}

impl fmt::Display for Src {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.file.file_name().map_or_else(
            || self.file.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        write!(f, "{name}:{}", self.line)
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct RawSubnet {
    pub(crate) net: Option<Ipv4Net>,
    pub(crate) src: Option<Src>,
    pub(crate) routers: Vec<Ipv4Addr>,
    pub(crate) dns: Vec<Ipv4Addr>,
    pub(crate) domain: Option<String>,
    pub(crate) search: Vec<String>,
    pub(crate) ntp: Vec<Ipv4Addr>,
    pub(crate) broadcast: Option<Ipv4Addr>,
    pub(crate) mtu: Option<u16>,
    pub(crate) lease: Option<u64>,
    pub(crate) max_lease: Option<u64>,
    pub(crate) authoritative: bool,
    pub(crate) next_server: Option<Ipv4Addr>,
    pub(crate) boot_file: Option<String>,
    pub(crate) pools: Vec<RawPool>,
    pub(crate) options: Vec<RawOpt>,
    pub(crate) notes: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct RawPool {
    pub(crate) start: Ipv4Addr,
    pub(crate) end: Ipv4Addr,
    pub(crate) bootp: bool,
    pub(crate) src: Src,
}

/// A DHCP option the host file carries as `{ code = N, <kind> = value }`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OptVal {
    Text(String),
    Ips(Vec<Ipv4Addr>),
    Hex(String),
    U8(u8),
    U16(u16),
    U32(u32),
    Bool(bool),
}

#[derive(Debug, Clone)]
pub(crate) struct RawOpt {
    pub(crate) name: String,
    pub(crate) code: u8,
    pub(crate) value: OptVal,
    pub(crate) src: Src,
}

#[derive(Debug, Clone)]
pub(crate) struct RawHost {
    /// The name of the `host` declaration.
    pub(crate) decl: String,
    /// `option host-name`, when given.
    pub(crate) host_name: Option<String>,
    pub(crate) ips: Vec<Ipv4Addr>,
    /// `fixed-address web1.example.com;`: resolved against the imported zones.
    pub(crate) fixed_names: Vec<String>,
    pub(crate) mac: Option<[u8; 6]>,
    pub(crate) client_id: Option<String>,
    pub(crate) boot_file: Option<String>,
    pub(crate) options: Vec<RawOpt>,
    pub(crate) src: Src,
}

/// An A or AAAA record.
#[derive(Debug, Clone)]
pub(crate) struct RawAddr {
    pub(crate) name: String,
    pub(crate) ip: IpAddr,
    pub(crate) ttl: Option<u32>,
    pub(crate) src: Src,
}

/// A CNAME, PTR or NS record: owner and target, both absolute, lower case.
#[derive(Debug, Clone)]
pub(crate) struct RawLink {
    pub(crate) owner: String,
    pub(crate) target: String,
    pub(crate) src: Src,
}

#[derive(Debug, Clone)]
pub(crate) struct RawSoa {
    pub(crate) owner: String,
    pub(crate) mname: String,
    pub(crate) rname: String,
    pub(crate) refresh: u32,
    pub(crate) retry: u32,
    pub(crate) expire: u32,
    pub(crate) minimum: u32,
    pub(crate) src: Src,
}

#[derive(Debug, Clone)]
pub(crate) struct RawKey {
    pub(crate) name: String,
    pub(crate) algorithm: String,
    pub(crate) secret: String,
    pub(crate) src: Src,
}

#[derive(Debug, Clone)]
pub(crate) struct RawDdns {
    pub(crate) server: Ipv4Addr,
    pub(crate) key: Option<String>,
    pub(crate) ttl: Option<u64>,
    pub(crate) src: Src,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CheckType {
    Tcp,
    Http,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawCheck {
    pub(crate) kind: CheckType,
    pub(crate) path: Option<String>,
    pub(crate) status: Option<u16>,
    pub(crate) timeout_ms: Option<u64>,
    pub(crate) port: Option<u16>,
    pub(crate) retry: Option<u32>,
}

#[derive(Debug, Clone)]
pub(crate) struct RawReal {
    pub(crate) addr: SocketAddrV4,
    pub(crate) weight: Option<u32>,
    pub(crate) check: Option<RawCheck>,
    pub(crate) src: Src,
}

#[derive(Debug, Clone)]
pub(crate) struct RawService {
    pub(crate) vip: SocketAddrV4,
    pub(crate) udp: bool,
    pub(crate) scheduler: Option<String>,
    pub(crate) persistence: Option<u64>,
    pub(crate) sorry: Option<SocketAddrV4>,
    pub(crate) quorum: Option<u32>,
    pub(crate) interval_ms: Option<u64>,
    pub(crate) reals: Vec<RawReal>,
    pub(crate) src: Src,
}

#[derive(Debug, Clone)]
pub(crate) struct RawVrrp {
    pub(crate) vrid: Option<u8>,
    pub(crate) priority: Option<u8>,
    pub(crate) preempt: bool,
    pub(crate) interval_ms: Option<u64>,
    pub(crate) interface: Option<String>,
    pub(crate) peers: Vec<Ipv4Addr>,
    pub(crate) source: Option<Ipv4Addr>,
    pub(crate) src: Src,
}

#[derive(Debug, Clone)]
pub(crate) struct RawVip {
    pub(crate) ip: Ipv4Addr,
    pub(crate) prefix: Option<u8>,
    pub(crate) dev: Option<String>,
    pub(crate) src: Src,
}

/// Everything the parsers learnt, before anything is decided.
#[derive(Debug, Clone, Default)]
pub(crate) struct Raw {
    /// Domain candidates: (name without trailing dot, where, strength: 2 = forward zone, 1 = DHCP).
    pub(crate) domains: Vec<(String, Src, u8)>,
    /// Default TTL ($TTL or the SOA's).
    pub(crate) ttl: Option<(u32, Src)>,
    pub(crate) subnets: Vec<RawSubnet>,
    /// Networks suggested by a reverse zone or a VIP's prefix: (net, where, why).
    pub(crate) net_hints: Vec<(Ipv4Net, Src, String)>,
    pub(crate) hosts: Vec<RawHost>,
    pub(crate) addrs: Vec<RawAddr>,
    pub(crate) cnames: Vec<RawLink>,
    pub(crate) ptrs: Vec<RawLink>,
    pub(crate) ns: Vec<RawLink>,
    pub(crate) soa: Vec<RawSoa>,
    pub(crate) keys: Vec<RawKey>,
    pub(crate) ddns: Option<RawDdns>,
    pub(crate) ping_check: Option<bool>,
    pub(crate) services: Vec<RawService>,
    pub(crate) vrrp: Option<RawVrrp>,
    pub(crate) vips: Vec<RawVip>,
    pub(crate) unsupported: Vec<Unsupported>,
}

impl Raw {
    fn absorb(&mut self, o: Raw) {
        self.domains.extend(o.domains);
        if self.ttl.is_none() {
            self.ttl = o.ttl;
        }
        self.subnets.extend(o.subnets);
        self.net_hints.extend(o.net_hints);
        self.hosts.extend(o.hosts);
        self.addrs.extend(o.addrs);
        self.cnames.extend(o.cnames);
        self.ptrs.extend(o.ptrs);
        self.ns.extend(o.ns);
        self.soa.extend(o.soa);
        self.keys.extend(o.keys);
        if self.ddns.is_none() {
            self.ddns = o.ddns;
        }
        if self.ping_check.is_none() {
            self.ping_check = o.ping_check;
        }
        self.services.extend(o.services);
        match (&self.vrrp, o.vrrp) {
            (None, v) => self.vrrp = v,
            (Some(_), Some(v)) => self.unsupported.push(v.src.unsupported(
                "vrrp_instance",
                "a second VRRP instance from another input: the host file has one ([lb.vrrp])",
            )),
            (Some(_), None) => {}
        }
        self.vips.extend(o.vips);
        self.unsupported.extend(o.unsupported);
    }
}

// ------------------------------------------------------------------ helpers shared by the parsers

/// Netmask to prefix length; `None` when the mask is not contiguous.
pub(crate) fn mask_prefix(mask: Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    let p = m.leading_ones();
    (m.checked_shl(p).unwrap_or(0) == 0).then_some(p as u8)
}

/// `00:1a:2b:3c:4d:5e`, also ISC's short form `0:1a:2b:3c:4d:5e` and `-` separators.
pub(crate) fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut out = [0u8; 6];
    for (o, p) in out.iter_mut().zip(parts) {
        if p.is_empty() || p.len() > 2 {
            return None;
        }
        *o = u8::from_str_radix(p, 16).ok()?;
    }
    Some(out)
}

/// Resolves an include path against the including file's directory.
pub(crate) fn include_path(from: &Path, target: &str) -> PathBuf {
    let p = PathBuf::from(target);
    if p.is_absolute() {
        p
    } else {
        from.parent().unwrap_or(Path::new("")).join(p)
    }
}

/// Reads an include, refusing loops and excessive depth.
pub(crate) fn read_include(
    read: ReadFn<'_>,
    stack: &[Arc<Path>],
    at: &Src,
    path: &Path,
) -> Result<String, ImportError> {
    if stack.len() >= MAX_INCLUDE_DEPTH {
        return Err(at.error(format!(
            "includes nested deeper than {MAX_INCLUDE_DEPTH} levels at `{}`",
            path.display()
        )));
    }
    if stack.iter().any(|p| **p == *path) {
        return Err(at.error(format!(
            "`{}` includes itself (directly or through other files)",
            path.display()
        )));
    }
    read(path).map_err(|source| ImportError::Read {
        file: at.file.to_path_buf(),
        line: at.line,
        path: path.to_owned(),
        source,
    })
}

/// Shortens a construct for messages.
pub(crate) fn abridge(s: &str) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() > 72 {
        let mut t: String = s.chars().take(69).collect();
        t.push_str("...");
        t
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netmasks_and_macs() {
        assert_eq!(mask_prefix(Ipv4Addr::new(255, 255, 255, 0)), Some(24));
        assert_eq!(mask_prefix(Ipv4Addr::new(255, 255, 255, 255)), Some(32));
        assert_eq!(mask_prefix(Ipv4Addr::new(0, 0, 0, 0)), Some(0));
        assert_eq!(mask_prefix(Ipv4Addr::new(255, 0, 255, 0)), None);
        assert_eq!(
            parse_mac("0:1b:a9:12:34:56"),
            Some([0, 0x1b, 0xa9, 0x12, 0x34, 0x56])
        );
        assert_eq!(
            parse_mac("00-11-22-33-44-55"),
            Some([0, 0x11, 0x22, 0x33, 0x44, 0x55])
        );
        assert_eq!(parse_mac("00:11:22:33:44"), None);
        assert_eq!(parse_mac("00:11:22:33:44:555"), None);
    }

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

    #[test]
    fn unsupported_reads_like_a_compiler_message() {
        let u = Unsupported {
            file: PathBuf::from("dhcpd.conf"),
            line: 6,
            construct: "log-facility local7;".into(),
            reason: "no host-file equivalent".into(),
        };
        assert_eq!(
            u.to_string(),
            "dhcpd.conf:6: not imported: log-facility local7;: no host-file equivalent"
        );
    }
}
