//! The validated host table: load a host file, check it, and hand each daemon its view.

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::error::{ConfigError, Diags, Problem, to_problems};
use crate::model::*;
use crate::validate::validate;
use crate::wire;

/// Default location of the host file.
pub const DEFAULT_CONFIG: &str = "/etc/lansuite/hosts.toml";

const FIX_SYNTAX: &str =
    "correct the TOML at this point (see the host file reference in README.md)";

/// The whole LAN, validated. Each daemon takes only its own view.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTable {
    /// The file it came from, if any.
    pub source: Option<PathBuf>,
    /// The domain, lower case, no trailing dot.
    pub domain: String,
    /// Hosts in file order.
    pub hosts: Vec<Host>,
    dhcp: DhcpView,
    dns: DnsView,
    lb: LbView,
    warnings: Vec<String>,
}

impl HostTable {
    /// Reads and validates a host file.
    pub fn load(path: &Path) -> Result<HostTable, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        let mut t = Self::parse(&text, &path.display().to_string(), path.parent())?;
        t.source = Some(path.to_owned());
        Ok(t)
    }

    /// Validates host-file text (named `<string>` in errors); a relative `secret-file` is read
    /// from the current folder.
    pub fn from_toml(text: &str) -> Result<HostTable, ConfigError> {
        Self::parse(text, "<string>", None)
    }

    fn parse(text: &str, file: &str, base: Option<&Path>) -> Result<HostTable, ConfigError> {
        let invalid = |diags: Diags| ConfigError::Invalid {
            file: file.to_owned(),
            problems: to_problems(text, diags.0),
        };
        let mut d = Diags::default();
        let wire = parse_wire(text, &mut d);
        let Some(wire) = wire else {
            return Err(invalid(d));
        };
        let (parts, d) = validate(wire, d, base.map(Path::to_owned));
        if !d.0.is_empty() {
            return Err(invalid(d));
        }
        Ok(HostTable {
            source: None,
            domain: parts.domain,
            hosts: parts.hosts,
            dhcp: parts.dhcp,
            dns: parts.dns,
            lb: parts.lb,
            warnings: to_problems(text, parts.warnings.0)
                .iter()
                .map(|p| render_warning(file, p))
                .collect(),
        })
    }

    /// The DHCP server's view.
    pub fn dhcp_view(&self) -> DhcpView {
        self.dhcp.clone()
    }
    /// The DNS server's view.
    pub fn dns_view(&self) -> DnsView {
        self.dns.clone()
    }
    /// The load balancer's view.
    pub fn lb_view(&self) -> LbView {
        self.lb.clone()
    }

    /// What is valid but unsafe, one `FILE:LINE:COLUMN: WARNING: ...` text (with its fix) each:
    /// today a TSIG key holding the secret published in the example host file. Every daemon's
    /// `--check` prints them; they do not stop a daemon.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

/// A warning as `--check` prints it: like a problem, marked WARNING.
fn render_warning(file: &str, p: &Problem) -> String {
    format!(
        "{file}:{}:{}: WARNING: {}\n    fix: {}",
        p.line, p.column, p.message, p.fix
    )
}

/// Deserializes the wire structs. Unknown keys are all reported: each one found is recorded, cut
/// from the parsed document and the document tried again, so a file with three misspelt keys gets
/// three errors in one run (and the semantic checks after them), not one per edit.
fn parse_wire(text: &str, d: &mut Diags) -> Option<wire::File> {
    use serde::Deserialize as _;
    let mut doc = match toml::de::DeTable::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            d.push(
                e.span().unwrap_or(0..0),
                e.message().trim(),
                fix_for(e.message()),
            );
            return None;
        }
    };
    for _ in 0..200 {
        let e = match wire::File::deserialize(toml::de::Deserializer::from(doc.clone())) {
            Ok(w) => return Some(w),
            Err(e) => e,
        };
        let msg = e.message().trim().to_owned();
        let span = e.span().unwrap_or(0..0);
        d.push(span.clone(), &msg, fix_for(&msg));
        if !msg.starts_with("unknown field") || !cut_key(doc.get_mut(), &span) {
            return None;
        }
    }
    None
}

fn fix_for(msg: &str) -> &'static str {
    if msg.starts_with("unknown field") {
        "remove the key or correct its spelling (keys are listed in README.md)"
    } else if msg.contains("BackendRef") {
        "write a backend as a host name, \"web1\", or as { host = \"web1\", port = 8080, weight = 2 }"
    } else if msg.contains("StrList") {
        "write one address as a string or several as a list of strings"
    } else if msg.starts_with("duplicate key") {
        "each name may appear only once: rename or merge the two entries"
    } else {
        FIX_SYNTAX
    }
}

/// Removes the key whose span is `span` from anywhere in the document.
fn cut_key(t: &mut toml::de::DeTable<'_>, span: &Range<usize>) -> bool {
    let hit = t
        .iter()
        .find(|(k, _)| k.span() == *span)
        .map(|(k, _)| k.clone());
    if let Some(k) = hit {
        t.remove(&k);
        return true;
    }
    t.iter_mut().any(|(_, v)| cut_in_value(v.get_mut(), span))
}

fn cut_in_value(v: &mut toml::de::DeValue<'_>, span: &Range<usize>) -> bool {
    match v {
        toml::de::DeValue::Table(t) => cut_key(t, span),
        toml::de::DeValue::Array(a) => a.iter_mut().any(|x| cut_in_value(x.get_mut(), span)),
        _ => false,
    }
}
