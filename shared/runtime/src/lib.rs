//! The daemon runtime `dhcpd`, `dnsd` and `lbd` share: everything between the host file and a
//! daemon's own protocol code.
//!
//! [`cli`] is the command-line head every daemon flattens into its own; [`daemon`] holds logging,
//! `--check`, shutdown, the start of the serving loop and the common `main`; [`notify`] is
//! readiness and the watchdog for systemd; [`reload`] re-reads the host file on SIGHUP and on
//! change and swaps the view atomically; [`control`] is the read-only control socket; [`metrics`]
//! the Prometheus endpoint, which also serves the status [`page`]; [`privdrop`] the hand-over
//! from root to the daemon user; [`netif`] and [`ratelimit`] are small helpers for interfaces and
//! log rate limits.
//!
//! Modules depend downwards only: `daemon` uses `cli`, `notify`, `reload` and `privdrop`;
//! `reload` uses `notify`; `metrics` uses `page`; `cli` uses `privdrop`'s default user.

pub mod cli;
pub mod control;
pub mod daemon;
pub mod metrics;
pub mod netif;
pub mod notify;
pub mod page;
pub mod privdrop;
pub mod ratelimit;
pub mod reload;
