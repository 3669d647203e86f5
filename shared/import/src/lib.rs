//! Migration: turn an ISC `dhcpd.conf`, BIND zone files and a `keepalived.conf` into a host file.
//!
//! Each importer is a real parser for its format, not a line matcher: `block` reads the brace-block
//! configurations (dhcpd.conf and keepalived.conf, one lexer with a dialect each) and
//! [`zonefile`] reads zone files (the reader dnsd's `[[dns.zone-file]]` uses too). The parsers
//! collect *facts* (`facts::Raw`); `resolve` turns the facts of one or several inputs into one
//! host file, naming every guess in a TOML comment; `verify` runs the host file's own validator on
//! it. Everything the host file cannot express or refuses is listed in
//! [`Imported::unsupported`], with its file and line.
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

mod block;
pub mod command;
mod emit;
mod emit_vrrp;
mod facts;
mod imported;
mod isc;
mod keepalived;
mod keepalived_vrrp;
mod resolve;
mod source;
mod verify;
mod zone;
pub mod zonefile;

pub use crate::imported::{
    Format, Imported, import_file, import_isc_dhcpd, import_isc_dhcpd_with, import_keepalived,
    import_keepalived_with, import_zone, import_zone_with, merge,
};
pub use crate::source::{ImportError, ReadFn, Unsupported};
