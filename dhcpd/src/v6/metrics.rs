//! DHCPv6 counters and gauges, exported beside the v4 ones with a `v6_` in their names
//! (`dhcpd_v6_requests_total{type="solicit"}`, `dhcpd_v6_pool_used_addresses{range=...}`).

use dhcproto::v6::MessageType;
use hostfile::DhcpView;
use runtime::metrics::{Counter, Family, Gauge, Registry};

use super::lease::{IaKind, Leases6, State6};
use crate::pool_index::PoolIndex;

type Labels = Vec<(String, String)>;

/// The v6 server's metrics.
#[derive(Debug, Default)]
pub struct Stats6 {
    /// Client messages received, by type (`solicit`, `request`, ...).
    pub requests: Family<Labels, Counter>,
    /// Replies sent, by type (`advertise`, `reply`).
    pub replies: Family<Labels, Counter>,
    /// Malformed datagrams (or relay messages) dropped.
    pub bad: Counter,
    /// Datagrams dropped because the core's queue was full.
    pub overload: Counter,
    /// Messages not answered (RFC 8415 section 16 discards, no subnet to judge by, ...).
    pub silent: Counter,
    /// Failed lease writes (their replies were not sent).
    pub commit_errors: Counter,
    /// Bindings by IA type and state.
    pub leases: Family<Labels, Gauge>,
    /// Bound addresses per address pool.
    pub pool_used: Family<Labels, Gauge>,
    /// Declined addresses on probation per address pool.
    pub pool_declined: Family<Labels, Gauge>,
    /// Addresses neither bound nor declined per address pool (saturating).
    pub pool_free: Family<Labels, Gauge>,
    /// Addresses per address pool (saturating).
    pub pool_size: Family<Labels, Gauge>,
    /// Delegated prefixes bound per prefix-delegation pool.
    pub pd_used: Family<Labels, Gauge>,
    /// Prefixes still free per prefix-delegation pool (saturating).
    pub pd_free: Family<Labels, Gauge>,
    /// Prefixes per prefix-delegation pool (saturating).
    pub pd_size: Family<Labels, Gauge>,
}

/// The label value of a message type.
pub fn type_name(t: MessageType) -> &'static str {
    use MessageType as T;
    match t {
        T::Solicit => "solicit",
        T::Advertise => "advertise",
        T::Request => "request",
        T::Confirm => "confirm",
        T::Renew => "renew",
        T::Rebind => "rebind",
        T::Reply => "reply",
        T::Release => "release",
        T::Decline => "decline",
        T::Reconfigure => "reconfigure",
        T::InformationRequest => "information-request",
        T::RelayForw => "relay-forw",
        T::RelayRepl => "relay-repl",
        _ => "other",
    }
}

fn label(k: &str, v: String) -> Labels {
    vec![(k.to_owned(), v)]
}

fn clamp(n: u128) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Stats6 {
    /// Counts a client message.
    pub fn received(&self, t: MessageType) {
        self.requests
            .get_or_create(&label("type", type_name(t).to_owned()))
            .inc();
    }

    /// Counts a reply that left.
    pub fn sent(&self, t: MessageType) {
        self.replies
            .get_or_create(&label("type", type_name(t).to_owned()))
            .inc();
    }

    /// Refreshes the gauges describing the bindings (off the packet path, every few seconds).
    /// One pass over the table: an address finds its pool by binary search (the host file's
    /// IPv6 pools never overlap), so 500,000 bindings cost one walk, not one per pool.
    pub fn census(&self, leases: &Leases6, view: &DhcpView, now: u64) {
        let c = Census::of(leases, view, now);
        for (k, kind) in ["IA_NA", "IA_PD"].into_iter().enumerate() {
            for (j, state) in ["bound", "declined"].into_iter().enumerate() {
                let l = vec![
                    ("type".to_owned(), kind.to_owned()),
                    ("state".to_owned(), state.to_owned()),
                ];
                self.leases.get_or_create(&l).set(c.by[k][j]);
            }
        }
        let pools = view.subnets6.iter().flat_map(|s| &s.pools);
        for (p, &[used, declined]) in pools.zip(&c.pools) {
            let l = label("range", p.range.to_string());
            let size = p.range.len();
            self.pool_used.get_or_create(&l).set(clamp(used));
            self.pool_declined.get_or_create(&l).set(clamp(declined));
            self.pool_free
                .get_or_create(&l)
                .set(clamp(size.saturating_sub(used + declined)));
            self.pool_size.get_or_create(&l).set(clamp(size));
        }
        let pds = view.subnets6.iter().flat_map(|s| &s.pd_pools);
        for (p, &used) in pds.zip(&c.pd) {
            let l = vec![
                ("prefix".to_owned(), p.prefix.to_string()),
                ("delegated_length".to_owned(), p.delegated_len.to_string()),
            ];
            self.pd_used.get_or_create(&l).set(clamp(used));
            self.pd_free
                .get_or_create(&l)
                .set(clamp(p.count().saturating_sub(used)));
            self.pd_size.get_or_create(&l).set(clamp(p.count()));
        }
    }

    /// Adds these metrics to `r` (the daemon's registry, prefix `dhcpd`).
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "v6_requests",
            "DHCPv6 client messages received by type",
            self.requests.clone(),
        );
        r.register(
            "v6_replies",
            "DHCPv6 replies sent by type",
            self.replies.clone(),
        );
        r.register(
            "v6_bad_packets",
            "Malformed DHCPv6 messages dropped",
            self.bad.clone(),
        );
        r.register(
            "v6_overload_drops",
            "DHCPv6 messages dropped while saturated",
            self.overload.clone(),
        );
        r.register(
            "v6_silent_requests",
            "DHCPv6 messages not answered",
            self.silent.clone(),
        );
        r.register(
            "v6_lease_commit_errors",
            "Failed DHCPv6 lease writes",
            self.commit_errors.clone(),
        );
        r.register(
            "v6_leases",
            "DHCPv6 bindings by IA type and state",
            self.leases.clone(),
        );
        r.register(
            "v6_pool_used_addresses",
            "Bound addresses per DHCPv6 address pool",
            self.pool_used.clone(),
        );
        r.register(
            "v6_pool_declined_addresses",
            "Declined addresses on probation per DHCPv6 address pool",
            self.pool_declined.clone(),
        );
        r.register(
            "v6_pool_free_addresses",
            "Free addresses per DHCPv6 address pool",
            self.pool_free.clone(),
        );
        r.register(
            "v6_pool_size_addresses",
            "Addresses per DHCPv6 address pool",
            self.pool_size.clone(),
        );
        r.register(
            "v6_pd_pool_used_prefixes",
            "Delegated prefixes per prefix-delegation pool",
            self.pd_used.clone(),
        );
        r.register(
            "v6_pd_pool_free_prefixes",
            "Prefixes still free per prefix-delegation pool",
            self.pd_free.clone(),
        );
        r.register(
            "v6_pd_pool_size_prefixes",
            "Prefixes per prefix-delegation pool",
            self.pd_size.clone(),
        );
    }
}

/// Live bindings counted: by IA type and state, per address pool (bound, declined) and per
/// prefix-delegation pool, pools in the host file's order.
struct Census {
    by: [[i64; 2]; 2],
    pools: Vec<[u128; 2]>,
    pd: Vec<u128>,
}

impl Census {
    fn of(leases: &Leases6, view: &DhcpView, now: u64) -> Census {
        let pools = PoolIndex::new(
            view.subnets6
                .iter()
                .flat_map(|s| &s.pools)
                .map(|p| (p.range.start, p.range.end)),
        );
        let pds: Vec<_> = view.subnets6.iter().flat_map(|s| &s.pd_pools).collect();
        let mut c = Census {
            by: [[0; 2]; 2],
            pools: vec![[0; 2]; pools.len()],
            pd: vec![0; pds.len()],
        };
        for l in leases.iter().filter(|l| l.expires > now) {
            let st = match l.state {
                State6::Bound => 0,
                State6::Declined => 1,
            };
            let kind = match l.key.kind {
                IaKind::Na => 0,
                IaKind::Pd => 1,
            };
            c.by[kind][st] += 1;
            if l.prefix_len == 128
                && let Some(i) = pools.find(l.addr)
            {
                c.pools[i][st] += 1;
            }
            if l.key.kind == IaKind::Pd {
                for (j, p) in pds.iter().enumerate() {
                    if l.prefix_len == p.delegated_len && p.prefix.contains(&l.addr) {
                        c.pd[j] += 1;
                    }
                }
            }
        }
        c
    }
}
