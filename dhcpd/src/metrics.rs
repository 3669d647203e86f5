//! dhcpd's counters and gauges, exported as Prometheus metrics when `[dhcp] metrics` is set.

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

    /// Refreshes the gauges that describe the lease table (every few seconds, off the packet path,
    /// right after the expiry check). The table keeps its counts per change, so this walks the
    /// pools' bitmaps, not the leases: a lease counts until the expiry check reclaims it.
    pub fn census(&self, table: &LeaseTable, view: &DhcpView) {
        // Every state, so a state that emptied reads 0 rather than its last count.
        for (state, n) in table.state_counts() {
            self.leases
                .get_or_create(&vec![("state".into(), state.as_str().into())])
                .set(n);
            if state == LeaseState::Bound {
                self.bound.set(n);
            }
        }
        let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        for p in view.subnets.iter().flat_map(|s| &s.pools) {
            let label = vec![("range".to_owned(), p.range.to_string())];
            let c = table.pool_counts(p.range.start, p.range.end);
            self.pool_used.get_or_create(&label).set(gauge(c.bound));
            self.pool_offered
                .get_or_create(&label)
                .set(gauge(c.offered));
            self.pool_declined
                .get_or_create(&label)
                .set(gauge(c.declined));
            self.pool_size
                .get_or_create(&label)
                .set(p.range.len() as i64);
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
    use crate::lease::{KeySource, Lease, LeaseState, LeaseTable};

    /// The census counts each lease in its own pool among several, listed out of address order
    /// and in two subnets; a lease the expiry check reclaimed and addresses outside every pool
    /// count in none.
    #[test]
    fn the_census_counts_each_live_lease_in_its_own_pool() {
        let t = hostfile::HostTable::from_toml(
            "domain = \"lan.test\"\n\
             [[subnet]]\nnetwork = \"10.1.0.0/24\"\n\
             [[subnet.pool]]\nrange = \"10.1.0.200-10.1.0.250\"\n\
             [[subnet.pool]]\nrange = \"10.1.0.100-10.1.0.150\"\n\
             [[subnet]]\nnetwork = \"10.2.0.0/24\"\n\
             [[subnet.pool]]\nrange = \"10.2.0.10-10.2.0.19\"\n",
        )
        .unwrap();
        let view = t.dhcp_view();
        let now = 1_000;
        let lease = |ip: [u8; 4], state, expires| Lease {
            ip: ip.into(),
            client: ip.to_vec(),
            key_source: KeySource::Hardware,
            hwaddr: ip.to_vec(),
            hostname: None,
            starts: 0,
            expires,
            state,
        };
        let mut table = LeaseTable::from_leases([
            lease([10, 1, 0, 100], LeaseState::Bound, now + 1),
            lease([10, 1, 0, 150], LeaseState::Bound, now + 1),
            lease([10, 1, 0, 120], LeaseState::Bound, now), // ended
            lease([10, 1, 0, 130], LeaseState::Offered, now + 1),
            lease([10, 1, 0, 200], LeaseState::Declined, now + 1),
            lease([10, 1, 0, 210], LeaseState::Released, now + 1),
            lease([10, 1, 0, 160], LeaseState::Bound, now + 1), // between pools
            lease([10, 2, 0, 19], LeaseState::Bound, now + 1),
        ]);
        // As the core does every 5 s: the expiry check, then the census.
        for c in table.expiries(now, 100) {
            table.apply(&c);
        }
        let s = super::Stats::default();
        s.census(&table, &view);
        let text = runtime::metrics::render(&s.registry());
        crate::testutil::assert_pool_gauges(
            &text,
            "dhcpd_pool_",
            &[
                ("used", "10.1.0.100-10.1.0.150", 2),
                ("offered", "10.1.0.100-10.1.0.150", 1),
                ("declined", "10.1.0.100-10.1.0.150", 0),
                ("used", "10.1.0.200-10.1.0.250", 0),
                ("declined", "10.1.0.200-10.1.0.250", 1),
                ("used", "10.2.0.10-10.2.0.19", 1),
                ("size", "10.2.0.10-10.2.0.19", 10),
            ],
        );
        for line in [
            "dhcpd_leases{state=\"bound\"} 4",
            "dhcpd_leases{state=\"expired\"} 1",
            "dhcpd_leases{state=\"released\"} 1",
            "dhcpd_bound_leases 4",
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
    }

    #[test]
    fn the_daemon_registry_carries_v6_beside_v4() {
        let all = runtime::metrics::render(&super::Stats::default().registry());
        assert!(all.contains("dhcpd_v6_bad_packets_total 0"), "{all}");
        assert!(all.contains("dhcpd_bad_packets_total 0"), "{all}");
    }
}
