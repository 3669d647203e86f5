//! The host file shared by `dhcpd`, `dnsd` and `lbd`: the LAN's one source of truth.
//!
//! One TOML file describes the LAN. [`HostTable::load`] parses and validates it (every problem at
//! once, with file, line, column and a fix); each daemon then takes only its own view
//! ([`DhcpView`], [`DnsView`], [`LbView`]). This crate is pure data: no sockets, no runtime; the
//! only files it reads are the host file and the TSIG `secret-file`s it names. The
//! `runtime` crate re-reads the file on SIGHUP and on change; the `import` crate turns other
//! tools' configurations into a document this crate validates.

#[doc(hidden)]
pub mod checkcases;
mod error;
pub mod model;
pub mod model6;
mod names;
mod table;
mod validate;
mod wire;

pub use error::{ConfigError, EXIT_CONFIG, Problem};
pub use model::*;
pub use model6::*;
pub use names::{
    is_dns_name, is_label, ptr_name, ptr_name6, reverse_origin, reverse_origin6, reverse_zone6,
    reverse_zones,
};
pub use table::{DEFAULT_CONFIG, HostTable};
