//! Counters (Prometheus counters: shared atomics), read by the status line, `dnsd status` and
//! `/metrics`.

use runtime::metrics::{Counter, Registry};

/// Counters (Prometheus counters: shared atomics), read by the status line and `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Requests received.
    pub queries: Counter,
    /// Undecodable requests (FORMERR sent or dropped).
    pub malformed: Counter,
    /// NOTIMP answers.
    pub notimp: Counter,
    /// REFUSED answers.
    pub refused: Counter,
    /// Truncated UDP answers.
    pub truncated: Counter,
    /// Queries sent to the upstream resolvers.
    pub forwarded: Counter,
    /// Forwarded queries answered from the cache.
    pub cache_hits: Counter,
    /// Forwarded queries the cache could not answer (sent upstream).
    pub cache_misses: Counter,
    /// Dynamic updates applied.
    pub updates: Counter,
    /// Dynamic updates that changed nothing (already true, or prerequisites only).
    pub updates_unchanged: Counter,
    /// Dynamic updates refused (key, zone, prerequisites, protected names).
    pub updates_refused: Counter,
    /// Dynamic updates not stored (store error: SERVFAIL).
    pub updates_failed: Counter,
    /// Zone transfers served.
    pub transfers: Counter,
    /// Transfers sent as the whole zone (AXFR, or IXFR beyond the journal).
    pub axfr_out: Counter,
    /// Transfers sent from the journal (IXFR).
    pub ixfr_out: Counter,
    /// NOTIFY messages sent (every try).
    pub notify_sent: Counter,
    /// NOTIFY rounds a secondary acknowledged.
    pub notify_acked: Counter,
    /// NOTIFY rounds left unanswered after every try.
    pub notify_failed: Counter,
    /// Requests with a bad TSIG.
    pub tsig_failures: Counter,
    /// Responses dropped by RRL.
    pub rrl_dropped: Counter,
    /// Responses sent truncated by RRL.
    pub rrl_slipped: Counter,
    /// The last NOTIFY/transfer per secondary, upstream health (for the status page).
    pub peers: crate::peers::Peers,
}

impl Stats {
    /// A one-line summary.
    pub fn line(&self) -> String {
        format!(
            "queries={} malformed={} notimp={} refused={} truncated={} forwarded={} cache_hits={} updates={} transfers={} tsig_failures={} rrl_dropped={} rrl_slipped={}",
            self.queries.get(),
            self.malformed.get(),
            self.notimp.get(),
            self.refused.get(),
            self.truncated.get(),
            self.forwarded.get(),
            self.cache_hits.get(),
            self.updates.get(),
            self.transfers.get(),
            self.tsig_failures.get(),
            self.rrl_dropped.get(),
            self.rrl_slipped.get(),
        )
    }

    /// Registers every counter as `dnsd_NAME` in `r`.
    pub fn register(&self, r: &mut Registry) {
        r.register("dnsd_queries", "Requests received", self.queries.clone());
        r.register(
            "dnsd_malformed",
            "Undecodable requests (FORMERR sent or dropped)",
            self.malformed.clone(),
        );
        r.register("dnsd_notimp", "NOTIMP answers", self.notimp.clone());
        r.register("dnsd_refused", "REFUSED answers", self.refused.clone());
        r.register(
            "dnsd_truncated",
            "Truncated UDP answers",
            self.truncated.clone(),
        );
        r.register(
            "dnsd_forwarded",
            "Queries sent to the upstream resolvers",
            self.forwarded.clone(),
        );
        r.register(
            "dnsd_cache_hits",
            "Forwarded queries answered from the cache",
            self.cache_hits.clone(),
        );
        r.register(
            "dnsd_cache_misses",
            "Forwarded queries the cache could not answer",
            self.cache_misses.clone(),
        );
        r.register(
            "dnsd_notify_sent",
            "NOTIFY messages sent (every try)",
            self.notify_sent.clone(),
        );
        r.register(
            "dnsd_tsig_failures",
            "Requests with a bad TSIG",
            self.tsig_failures.clone(),
        );
        r.register(
            "dnsd_rrl_dropped",
            "Responses dropped by RRL",
            self.rrl_dropped.clone(),
        );
        r.register(
            "dnsd_rrl_slipped",
            "Responses sent truncated by RRL",
            self.rrl_slipped.clone(),
        );
    }
}
