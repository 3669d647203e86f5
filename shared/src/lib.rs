//! The host table shared by `dhcpd`, `dnsd` and `lbd`.
//!
//! One TOML file describes the LAN. [`HostTable::load`] parses and validates it (every problem at
//! once, with file, line, column and a fix); each daemon then takes only its own view
//! ([`DhcpView`], [`DnsView`], [`LbView`]). [`reload`] re-reads the file on SIGHUP and on change and
//! swaps the view atomically; [`daemon`] holds the glue every binary shares (CLI, logging,
//! readiness, shutdown).

#[doc(hidden)]
pub mod checkcases;
pub mod control;
pub mod daemon;
mod error;
pub mod import;
pub mod metrics;
pub mod model;
pub mod netif;
pub mod privdrop;
pub mod ratelimit;
pub mod reload;
mod table;
mod wire;

pub use error::{ConfigError, EXIT_CONFIG, Problem};
pub use model::*;
pub use table::{
    DEFAULT_CONFIG, Host, HostTable, is_dns_name, is_label, ptr_name, reverse_origin, reverse_zones,
};
