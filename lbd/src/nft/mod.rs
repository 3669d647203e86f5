//! The kernel data plane: one nftables table (`table ip lbd`) owned by lbd, rendered from the
//! desired state and replaced in a single `nft -f -` transaction (add, delete, recreate: atomic,
//! so a failed apply leaves the previous table in force). The shape is kube-proxy's nftables mode:
//! a verdict map keyed `daddr . l4proto . dport` jumps to a per-service chain; that chain picks a
//! per-backend chain (numgen for rr/wrr, jhash over a Maglev table for sh); the backend chain
//! DNATs. Source persistence is a per-backend set of client addresses with a timeout. No
//! masquerade: backends route back through the balancer (NAT style).
//!
//! IPv6 services get the same shapes in a second table, `table ip6 lbd` (`dnat ip6 to`, `ip6
//! saddr` sets, `ipv6_addr` maps), written in the same transaction and present only while IPv6
//! kernel services are (see `render::TABLE6` for why two tables rather than one `inet` table).
//!
//! Accounting: named counters per (service, backend): new connections, and with the service's
//! `byte-counters` bytes to the backend and bytes from it. Connections are counted in a `nat` chain at postrouting (and input,
//! for a backend on this host), which the kernel runs once per new conntrack entry only, so
//! they cost nothing on established flows and a retransmitted SYN is not counted twice. Bytes
//! are counted by one rule per protocol in a filter chain at postrouting (and input) that sees
//! every packet: `ct status dnat` first (one bit test for the host's other traffic), then one
//! hash lookup keyed by the connection's original VIP and port, its reply source (the backend)
//! and the direction, straight to the counter. The keys come from the conntrack tuples, so the
//! rules hold whatever NAT has already done to the packet. Counters are objects named after the
//! service and backend: they survive `flush table` (health changes, reloads), and lbd carries
//! the totals of the counters it deletes ([`read_counters`], `metrics::KernelTotals`).

mod counters;
mod family;
mod render;
mod run;
#[cfg(test)]
mod tests;

pub use counters::{
    CounterKey, CounterKind, CounterParseError, CounterValue, Replacement, counter_name,
    parse_counters,
};
pub use render::{
    Part, Ruleset, TABLE, TABLE6, build, render, render_delete, render_delete6, script,
};
pub use run::{NFT_DEADLINE, NftError, apply, find_nft, read_counters};
