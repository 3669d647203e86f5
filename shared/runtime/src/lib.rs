//! The daemon runtime `dhcpd`, `dnsd` and `lbd` share: everything between the host file and a
//! daemon's own protocol code.
//!
//! [`daemon`] holds the common command-line head, logging, `--check`, readiness and watchdog;
//! [`reload`] re-reads the host file on SIGHUP and on change and swaps the view atomically;
//! [`control`] is the read-only control socket; [`metrics`] the Prometheus endpoint;
//! [`privdrop`] the hand-over from root to the daemon user; [`netif`] and [`ratelimit`] are small
//! helpers for interfaces and log rate limits.

pub mod control;
pub mod daemon;
pub mod metrics;
pub mod netif;
pub mod privdrop;
pub mod ratelimit;
pub mod reload;
