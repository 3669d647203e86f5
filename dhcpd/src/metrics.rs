//! dhcpd's counters and gauges, exported as Prometheus metrics when `[dhcp] metrics` is set.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;

use hostfile::DhcpView;
use runtime::metrics::{Counter, Family, Gauge, Histogram, Registry, exponential_buckets};

use crate::lease::{LeaseState, LeaseTable};
pub use crate::recent::{Recent, RecentEvent, RecentKind};

/// Counters (exported as Prometheus metrics when `[dhcp] metrics` is set).
#[derive(Debug)]
pub struct Stats {
    /// Datagrams received.
    pub received: Counter,
    /// Malformed datagrams dropped.
    pub bad: Counter,
    /// Requests dropped because the server was saturated.
    pub overload: Counter,
    /// Of those, new exchanges refused by admission (`[dhcp] discover-backlog`: OFFERs nobody
    /// took up); the rest found their queue to the core task full.
    pub admission: Counter,
    /// Replies sent.
    pub sent: Counter,
    /// Requests answered with silence.
    pub silent: Counter,
    /// Transactions committed.
    pub commits: Counter,
    /// Failed commits (their replies were not sent).
    pub commit_errors: Counter,
    /// Leases bound now.
    pub bound: Gauge,
    /// Requests received, by DHCP message type.
    pub requests: Family<Vec<(String, String)>, Counter>,
    /// DECLINEs received.
    pub declines: Counter,
    /// Addresses that answered the ping check (put on probation).
    pub conflicts: Counter,
    /// Lease store commit latency.
    pub commit_seconds: Histogram,
    /// How long the oldest change of the last commit waited, from reaching the writer to being
    /// durable (pacing, queueing and the transaction).
    pub commit_wait_last: Gauge<f64, AtomicU64>,
    /// The longest such wait since the start.
    pub commit_wait_max: Gauge<f64, AtomicU64>,
    /// Leases in the table, by state.
    pub leases: Family<Vec<(String, String)>, Gauge>,
    /// Bound leases per dynamic range.
    pub pool_used: Family<Vec<(String, String)>, Gauge>,
    /// Addresses per dynamic range.
    pub pool_size: Family<Vec<(String, String)>, Gauge>,
    /// Live offers per dynamic range.
    pub pool_offered: Family<Vec<(String, String)>, Gauge>,
    /// Declined (or conflicting) addresses on probation per dynamic range.
    pub pool_declined: Family<Vec<(String, String)>, Gauge>,
    /// OFFERs sent.
    pub offers: Counter,
    /// ACKs sent (to REQUESTs).
    pub acks: Counter,
    /// NAKs sent.
    pub naks: Counter,
    /// The last declines and ping conflicts, for the status page (touched only when one happens).
    pub recent: std::sync::Mutex<Recent>,
    /// The DHCPv6 server's metrics (`dhcpd_v6_*`).
    pub v6: std::sync::Arc<crate::v6::metrics::Stats6>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            received: Counter::default(),
            bad: Counter::default(),
            overload: Counter::default(),
            admission: Counter::default(),
            sent: Counter::default(),
            silent: Counter::default(),
            commits: Counter::default(),
            commit_errors: Counter::default(),
            bound: Gauge::default(),
            requests: Family::default(),
            declines: Counter::default(),
            conflicts: Counter::default(),
            commit_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            commit_wait_last: Gauge::default(),
            commit_wait_max: Gauge::default(),
            leases: Family::default(),
            pool_used: Family::default(),
            pool_size: Family::default(),
            pool_offered: Family::default(),
            pool_declined: Family::default(),
            offers: Counter::default(),
            acks: Counter::default(),
            naks: Counter::default(),
            recent: std::sync::Mutex::new(Recent::default()),
            v6: std::sync::Arc::default(),
        }
    }
}

impl Stats {
    /// Counts a reply that left (by its kind: OFFER, ACK, NAK, ...).
    pub fn sent_reply(&self, kind: &str) {
        self.sent.inc();
        match kind {
            "OFFER" => {
                self.offers.inc();
            }
            "ACK" => {
                self.acks.inc();
            }
            "NAK" => {
                self.naks.inc();
            }
            _ => {}
        }
    }

    /// Remembers a decline or ping conflict for the status page.
    pub fn remember(&self, e: RecentEvent) {
        self.recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(e);
    }

    /// Refreshes the gauges that describe the lease table (every few seconds, off the packet path).
    pub fn census(&self, table: &LeaseTable, view: &DhcpView, t: u64) {
        // Every state, so a state that emptied reads 0 rather than its last count.
        let mut by_state: BTreeMap<&'static str, i64> = [
            LeaseState::Offered,
            LeaseState::Bound,
            LeaseState::Released,
            LeaseState::Expired,
            LeaseState::Declined,
        ]
        .into_iter()
        .map(|s| (s.as_str(), 0))
        .collect();
        let (mut bound, mut offered, mut declined) = (Vec::new(), Vec::new(), Vec::new());
        for l in table.iter() {
            *by_state.entry(l.state.as_str()).or_default() += 1;
            if l.expires > t {
                match l.state {
                    LeaseState::Bound => bound.push(l.ip),
                    LeaseState::Offered => offered.push(l.ip),
                    LeaseState::Declined => declined.push(l.ip),
                    _ => {}
                }
            }
        }
        for (state, n) in by_state {
            self.leases
                .get_or_create(&vec![("state".into(), state.into())])
                .set(n);
        }
        self.bound.set(bound.len() as i64);
        for sn in &view.subnets {
            for p in &sn.pools {
                let label = vec![("range".to_owned(), p.range.to_string())];
                let count = |ips: &[std::net::Ipv4Addr]| {
                    ips.iter().filter(|ip| p.range.contains(**ip)).count() as i64
                };
                self.pool_used.get_or_create(&label).set(count(&bound));
                self.pool_offered.get_or_create(&label).set(count(&offered));
                self.pool_declined
                    .get_or_create(&label)
                    .set(count(&declined));
                self.pool_size
                    .get_or_create(&label)
                    .set(p.range.len() as i64);
            }
        }
    }
}

impl Stats {
    /// A registry holding these metrics.
    pub fn registry(&self) -> Registry {
        let mut r = Registry::with_prefix("dhcpd");
        r.register(
            "received_packets",
            "Datagrams received",
            self.received.clone(),
        );
        r.register(
            "bad_packets",
            "Malformed requests dropped",
            self.bad.clone(),
        );
        r.register(
            "overload_drops",
            "Requests dropped while saturated",
            self.overload.clone(),
        );
        r.register(
            "admission_drops",
            "New exchanges refused by admission (discover-backlog), also in overload_drops",
            self.admission.clone(),
        );
        r.register("sent_replies", "Replies sent", self.sent.clone());
        r.register(
            "silent_requests",
            "Requests not answered",
            self.silent.clone(),
        );
        r.register(
            "lease_commits",
            "Lease store transactions",
            self.commits.clone(),
        );
        r.register(
            "lease_commit_errors",
            "Failed lease store transactions",
            self.commit_errors.clone(),
        );
        r.register("bound_leases", "Leases bound", self.bound.clone());
        r.register(
            "requests",
            "Requests received by DHCP message type",
            self.requests.clone(),
        );
        r.register("declines", "DECLINEs received", self.declines.clone());
        r.register(
            "conflicts",
            "Addresses that answered the ping check",
            self.conflicts.clone(),
        );
        r.register(
            "commit_seconds",
            "Lease store commit latency",
            self.commit_seconds.clone(),
        );
        r.register(
            "lease_commit_wait_last_seconds",
            "Wait of the oldest change of the last commit, from reaching the writer to durable",
            self.commit_wait_last.clone(),
        );
        r.register(
            "lease_commit_wait_max_seconds",
            "Longest wait of a change from reaching the writer to durable, since the start",
            self.commit_wait_max.clone(),
        );
        r.register(
            "leases",
            "Leases in the table by state",
            self.leases.clone(),
        );
        r.register(
            "pool_used_addresses",
            "Bound leases per dynamic range",
            self.pool_used.clone(),
        );
        r.register(
            "pool_offered_addresses",
            "Live offers per dynamic range",
            self.pool_offered.clone(),
        );
        r.register(
            "pool_declined_addresses",
            "Declined or conflicting addresses on probation per dynamic range",
            self.pool_declined.clone(),
        );
        r.register("offers", "OFFERs sent", self.offers.clone());
        r.register("acks", "ACKs sent", self.acks.clone());
        r.register("naks", "NAKs sent", self.naks.clone());
        r.register(
            "pool_size_addresses",
            "Addresses per dynamic range",
            self.pool_size.clone(),
        );
        self.v6.register(&mut r);
        r
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_daemon_registry_carries_v6_beside_v4() {
        let all = runtime::metrics::render(&super::Stats::default().registry());
        assert!(all.contains("dhcpd_v6_bad_packets_total 0"), "{all}");
        assert!(all.contains("dhcpd_bad_packets_total 0"), "{all}");
    }
}
