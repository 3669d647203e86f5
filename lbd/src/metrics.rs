//! Prometheus metrics (`[lb] metrics = "ADDR:PORT"`): VRRP role and transitions, backend
//! health and its transitions, health-check outcomes, connections and bytes per backend, applies
//! and failed applies.
//!
//! Connections and bytes (`backend_connections_total`, `backend_bytes_total{direction}`): the
//! proxy counts what it carries (payload bytes); the kernel data plane counts in lbd's nftables
//! table (named counters, IP bytes; see [`crate::nft`]), read with `nft -j` at scrape time and
//! folded into the same families by [`KernelTotals`], which carries the totals of counters that
//! a ruleset replacement deleted or recreated, so the exported counters never go backwards.
//! `backend_active_connections` is read at scrape time: the proxy's open connections, or the
//! conntrack entries DNATed to the backend (ESTABLISHED TCP and all UDP), like `lbd status`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use crate::nft::{CounterKey, CounterKind, CounterValue};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use runtime::metrics::{Counter, Family, Gauge, Registry};

pub use crate::proxy::{Labels, ProxyMetrics};

/// A backend the active-connection gauge reports on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carried {
    /// Service name.
    pub service: String,
    /// Kernel or proxy.
    pub dataplane: hostfile::Dataplane,
    /// IP protocol number (6 or 17).
    pub proto: u8,
    /// Virtual address and port.
    pub vip: IpAddr,
    /// Port.
    pub port: u16,
    /// Backends (configured, whatever their health).
    pub backends: Vec<SocketAddr>,
}

/// Totals of the kernel data plane's counters, carried across ruleset replacements.
///
/// lbd reads its table's counters (`nft -j list counters`) at scrape time, at `lbd status` and
/// just before an apply that deletes counters. A counter that vanished (a backend left the
/// configuration, the node became backup) or came back smaller (the table was recreated)
/// has its last reading moved into `carried`, so `carried + last reading` never decreases.
#[derive(Debug, Default)]
pub struct KernelTotals {
    /// The `nft` to read with; `None` without a kernel data plane.
    pub nft: Option<String>,
    /// Counters the applied table holds: name -> what it counts.
    known: BTreeMap<String, CounterKey>,
    /// Last reading of each counter present in the kernel.
    seen: BTreeMap<String, (CounterKey, u64)>,
    /// Totals of counters deleted or recreated.
    carried: BTreeMap<CounterKey, u64>,
    /// What has been added to the Prometheus families so far.
    exported: BTreeMap<CounterKey, u64>,
    /// Failed readings logged: at most a few per minute.
    log: Option<runtime::ratelimit::LogLimiter>,
}

/// [`KernelTotals`] shared by the applier, the scrape and `lbd status`.
pub type SharedKernelTotals = Arc<Mutex<KernelTotals>>;

impl KernelTotals {
    /// The counters the table holds after an apply (from [`crate::nft::Ruleset::counters`]).
    pub fn set_known(&mut self, known: BTreeMap<String, CounterKey>) {
        self.known = known;
    }

    /// Folds one complete reading of the table's counters (pure).
    pub fn fold(&mut self, read: &BTreeMap<String, CounterValue>) {
        let carried = &mut self.carried;
        self.seen.retain(|name, (key, last)| match read.get(name) {
            Some(v) => {
                let v = v.of(key.kind);
                if v < *last {
                    // Recreated since the last reading: what it had counted is kept.
                    *carried.entry(key.clone()).or_insert(0) += *last;
                }
                *last = v;
                true
            }
            None => {
                *carried.entry(key.clone()).or_insert(0) += *last;
                false
            }
        });
        for (name, v) in read {
            if !self.seen.contains_key(name)
                && let Some(key) = self.known.get(name)
            {
                self.seen
                    .insert(name.clone(), (key.clone(), v.of(key.kind)));
            }
        }
    }

    /// Counters an apply deleted: what they had counted (at the last reading) is carried now,
    /// so a counter of the same name created later starts a new reading.
    pub fn deleted(&mut self, names: &[String]) {
        for n in names {
            if let Some((key, last)) = self.seen.remove(n) {
                *self.carried.entry(key).or_insert(0) += last;
            }
        }
    }

    /// Folds what an apply's replacement of the table did (from
    /// [`crate::apply::Applied::replaced`]): the reading taken just before it, the counters it
    /// deleted, the counters the table holds now.
    pub fn replaced(&mut self, r: &crate::nft::Replacement) {
        self.nft = Some(r.nft.clone());
        if let Some(before) = &r.before {
            self.fold(before);
        }
        self.deleted(&r.gone);
        self.set_known(r.counters.clone());
    }

    /// Reads the kernel and folds the reading; without `nft` there is nothing to read.
    pub fn refresh(&mut self) -> Result<(), crate::nft::NftError> {
        let Some(nft) = self.nft.clone() else {
            return Ok(());
        };
        if self.known.is_empty() && self.seen.is_empty() {
            return Ok(());
        }
        let read = crate::nft::read_counters(&nft)?;
        self.fold(&read);
        Ok(())
    }

    /// Totals by (service, backend, kind): carried plus the last reading.
    pub fn totals(&self) -> BTreeMap<CounterKey, u64> {
        let mut t = self.carried.clone();
        for (key, v) in self.seen.values() {
            *t.entry(key.clone()).or_insert(0) += v;
        }
        t
    }

    /// Adds what the totals gained since the last call to `families` (the proxy's
    /// `backend_connections` and `backend_bytes`, so both planes share the metric names).
    pub fn export(&mut self, families: &ProxyMetrics) {
        for (key, total) in self.totals() {
            let done = self.exported.entry(key.clone()).or_insert(0);
            let delta = total.saturating_sub(*done);
            *done = total.max(*done);
            let mut l = Metrics::labels(&key.service, key.backend);
            let c = match key.kind {
                CounterKind::Connections => families.connections.get_or_create(&l).clone(),
                CounterKind::ToBackend | CounterKind::FromBackend => {
                    let d = if key.kind == CounterKind::ToBackend {
                        "to_backend"
                    } else {
                        "from_backend"
                    };
                    l.push(("direction".into(), d.into()));
                    families.bytes.get_or_create(&l).clone()
                }
            };
            c.inc_by(delta);
        }
    }
}

/// Reads the kernel counters (when there are any) into the shared families; a failed read is
/// logged and leaves the previous figures.
pub fn sync_kernel(kernel: &SharedKernelTotals, families: &ProxyMetrics) {
    let mut k = kernel.lock().unwrap_or_else(|e| e.into_inner());
    if let Err(e) = k.refresh() {
        let limiter = k.log.get_or_insert_with(|| {
            runtime::ratelimit::LogLimiter::new(std::time::Duration::from_secs(60), 3)
        });
        if let Some(suppressed) = limiter.allow("read", std::time::Instant::now()) {
            tracing::warn!(
                suppressed,
                "reading the nftables counters (the figures stay as last read): {e}"
            );
        }
    }
    k.export(families);
}

/// Connections and bytes of one backend (both data planes), for `lbd status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Connections carried (kernel: DNATed) to the backend.
    pub connections: u64,
    /// Bytes towards the backend.
    pub to_backend: u64,
    /// Bytes from the backend.
    pub from_backend: u64,
}

/// `backend_connections` and `backend_bytes` of both planes: the kernel's counters are read
/// first, so a scrape shows them as of now.
#[derive(Debug)]
struct TrafficCollector {
    families: ProxyMetrics,
    kernel: SharedKernelTotals,
}

impl Collector for TrafficCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        sync_kernel(&self.kernel, &self.families);
        let m = encoder.encode_descriptor(
            "backend_connections",
            "Connections carried to the backend (kernel data plane: new connections DNATed to it)",
            None,
            self.families.connections.metric_type(),
        )?;
        self.families.connections.encode(m)?;
        let m = encoder.encode_descriptor(
            "backend_bytes",
            "Bytes carried to and from the backend (proxy: payload; kernel: IP packets)",
            None,
            self.families.bytes.metric_type(),
        )?;
        self.families.bytes.encode(m)
    }
}

/// `backend_active_connections`, computed at scrape time.
#[derive(Debug, Default)]
pub struct ActiveCollector {
    /// What the services carry now (updated by the daemon loop).
    pub carried: Mutex<Vec<Carried>>,
    /// The proxy's live counters.
    pub proxy: crate::proxy::Counters,
}

impl Collector for ActiveCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let carried = self
            .carried
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let ct = if carried
            .iter()
            .any(|c| c.dataplane == hostfile::Dataplane::Kernel)
        {
            crate::conntrack::active()
        } else {
            None
        };
        let fam = Family::<Labels, Gauge>::default();
        for c in &carried {
            for b in &c.backends {
                let n = match c.dataplane {
                    hostfile::Dataplane::Proxy => {
                        let m = self.proxy.lock().unwrap_or_else(|e| e.into_inner());
                        m.get(&(c.service.clone(), *b))
                            .map_or(0, |x| x.load(std::sync::atomic::Ordering::Relaxed))
                    }
                    hostfile::Dataplane::Kernel => match &ct {
                        Some(m) => m.get(&(c.proto, c.vip, c.port, *b)).copied().unwrap_or(0),
                        None => continue,
                    },
                };
                fam.get_or_create(&Metrics::labels(&c.service, *b))
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
        let m = encoder.encode_descriptor(
            "backend_active_connections",
            "Connections open to the backend now (proxy: carried; kernel: conntrack)",
            None,
            fam.metric_type(),
        )?;
        fam.encode(m)
    }
}

/// The metrics lbd keeps.
#[derive(Debug, Default, Clone)]
pub struct Metrics {
    /// 1 while this node holds the VIPs (always 1 without VRRP).
    pub master: Gauge,
    /// 1 when a backend is healthy, by service and backend.
    pub backend_up: Family<Labels, Gauge>,
    /// Health checks run, by service, backend and result.
    pub checks: Family<Labels, Counter>,
    /// Desired states applied.
    pub applies: Counter,
    /// Applies that failed (the previous state stayed in force).
    pub apply_failures: Counter,
    /// VRRP role changes, by the state entered (`master`, `backup`).
    pub vrrp_transitions: Family<Labels, Counter>,
    /// Backend health changes, by service, backend and the state entered (`up`, `down`).
    pub backend_transitions: Family<Labels, Counter>,
    /// Each VRRP instance's state, as keepalived-exporter's `keepalived_vrrp_state`:
    /// 1 BACKUP, 2 MASTER, 3 FAULT (by `instance`).
    pub vrrp_state: Family<Labels, Gauge>,
    /// Each VRRP instance's priority now (tracking included), by `instance`.
    pub vrrp_priority: Family<Labels, Gauge>,
    /// What the proxy counts.
    pub proxy: ProxyMetrics,
    /// Active connections per backend, read at scrape time.
    pub active: Arc<ActiveCollector>,
    /// The kernel data plane's counters (shared with the applier).
    pub kernel: SharedKernelTotals,
    /// What the status page shows beyond `lbd status` (last checks, VRRP transitions, ruleset).
    pub recent: Arc<crate::page::Recent>,
}

impl Metrics {
    /// The registry exposing these metrics.
    pub fn registry(&self) -> Arc<Registry> {
        let mut r = Registry::with_prefix("lbd");
        r.register(
            "vrrp_master",
            "1 while this node holds the VIPs",
            self.master.clone(),
        );
        r.register(
            "backend_up",
            "1 when the backend passes its health check",
            self.backend_up.clone(),
        );
        r.register("checks", "Health checks run", self.checks.clone());
        r.register(
            "applies",
            "Desired states applied to the kernel and proxy",
            self.applies.clone(),
        );
        r.register(
            "apply_failures",
            "Applies that failed; the previous state stayed in force",
            self.apply_failures.clone(),
        );
        r.register(
            "vrrp_transitions",
            "VRRP role changes, by the state entered",
            self.vrrp_transitions.clone(),
        );
        r.register(
            "vrrp_state",
            "VRRP instance state: 1 BACKUP, 2 MASTER, 3 FAULT",
            self.vrrp_state.clone(),
        );
        r.register(
            "vrrp_priority",
            "VRRP instance priority now, tracking included",
            self.vrrp_priority.clone(),
        );
        r.register(
            "backend_transitions",
            "Backend health changes, by the state entered",
            self.backend_transitions.clone(),
        );
        r.register_collector(Box::new(TrafficCollector {
            families: self.proxy.clone(),
            kernel: self.kernel.clone(),
        }));
        r.register_collector(Box::new(self.active.clone()));
        Arc::new(r)
    }

    /// Records what `view` carries, for the active-connection gauge.
    pub fn set_carried(&self, view: &hostfile::LbView) {
        let c = view
            .services
            .iter()
            .map(|s| Carried {
                service: s.name.clone(),
                dataplane: s.dataplane,
                proto: crate::conntrack::proto_num(s.protocol),
                vip: s.vip,
                port: s.port,
                backends: s.backends.iter().map(|b| b.addr).collect(),
            })
            .collect();
        *self
            .active
            .carried
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = c;
    }

    /// Connections and bytes per (service, backend) of the backends `view` lists, both planes
    /// (the kernel's counters read now).
    pub fn traffic(&self, view: &hostfile::LbView) -> BTreeMap<(String, SocketAddr), Traffic> {
        sync_kernel(&self.kernel, &self.proxy);
        let mut out = BTreeMap::new();
        for s in &view.services {
            let mut addrs: Vec<SocketAddr> = s.backends.iter().map(|b| b.addr).collect();
            addrs.extend(s.sorry);
            for a in addrs {
                let l = Metrics::labels(&s.name, a);
                let dir = |d: &str| {
                    let mut l = l.clone();
                    l.push(("direction".into(), d.into()));
                    self.proxy.bytes.get_or_create(&l).get()
                };
                out.insert(
                    (s.name.clone(), a),
                    Traffic {
                        connections: self.proxy.connections.get_or_create(&l).get(),
                        to_backend: dir("to_backend"),
                        from_backend: dir("from_backend"),
                    },
                );
            }
        }
        out
    }

    /// Labels for a backend of a service.
    pub fn labels(service: &str, backend: std::net::SocketAddr) -> Labels {
        crate::proxy::labels(service, backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kind: CounterKind) -> CounterKey {
        CounterKey {
            service: "www3".into(),
            backend: "192.168.10.10:80".parse().unwrap(),
            kind,
        }
    }

    fn reading(pairs: &[(&str, u64, u64)]) -> BTreeMap<String, CounterValue> {
        pairs
            .iter()
            .map(|(n, p, b)| {
                (
                    (*n).to_owned(),
                    CounterValue {
                        packets: *p,
                        bytes: *b,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn kernel_totals_never_go_backwards() {
        let conns = key(CounterKind::Connections);
        let to = key(CounterKind::ToBackend);
        let mut k = KernelTotals::default();
        k.set_known(BTreeMap::from([
            ("n".to_owned(), conns.clone()),
            ("t".to_owned(), to.clone()),
        ]));
        // Connections are the packets of their counter, bytes the bytes of theirs.
        k.fold(&reading(&[
            ("n", 3, 180),
            ("t", 30, 2000),
            ("stranger", 1, 1),
        ]));
        assert_eq!(k.totals()[&conns], 3);
        assert_eq!(k.totals()[&to], 2000);
        assert_eq!(k.totals().len(), 2);
        k.fold(&reading(&[("n", 5, 300), ("t", 50, 3000)]));
        assert_eq!(k.totals()[&conns], 5);
        // The table was recreated: the counters restarted from zero.
        k.fold(&reading(&[("n", 1, 60), ("t", 10, 500)]));
        assert_eq!(k.totals()[&conns], 6);
        assert_eq!(k.totals()[&to], 3500);
        // The backend left (counters deleted), then came back (new counters).
        k.fold(&reading(&[]));
        assert_eq!(k.totals()[&conns], 6);
        k.fold(&reading(&[("n", 2, 120), ("t", 0, 0)]));
        assert_eq!(k.totals()[&conns], 8);
        assert_eq!(k.totals()[&to], 3500);
        // Deleted by an apply and recreated under the same name before any reading, with more
        // traffic than before by then: still added, not mistaken for the old counter.
        k.deleted(&["n".to_owned()]);
        assert_eq!(k.totals()[&conns], 8);
        k.fold(&reading(&[("n", 20, 1200), ("t", 0, 0)]));
        assert_eq!(k.totals()[&conns], 28);
        k.fold(&reading(&[("n", 0, 0), ("t", 0, 0)]));
        k.fold(&reading(&[("n", 2, 120), ("t", 0, 0)]));
        assert_eq!(k.totals()[&conns], 30);
        // Exported to the families: only the gains are added, so the series follow the totals.
        let fam = ProxyMetrics::default();
        k.export(&fam);
        k.export(&fam);
        let l = Metrics::labels("www3", "192.168.10.10:80".parse().unwrap());
        assert_eq!(fam.connections.get_or_create(&l).get(), 30);
        let mut lb = l.clone();
        lb.push(("direction".into(), "to_backend".into()));
        assert_eq!(fam.bytes.get_or_create(&lb).get(), 3500);
        k.fold(&reading(&[("n", 4, 240), ("t", 5, 400)]));
        k.export(&fam);
        assert_eq!(fam.connections.get_or_create(&l).get(), 32);
        assert_eq!(fam.bytes.get_or_create(&lb).get(), 3900);
    }

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        let reg = m.registry();
        m.master.set(1);
        let l = Metrics::labels("www3", "192.168.10.10:80".parse().unwrap());
        m.backend_up.get_or_create(&l).set(1);
        let mut lc = l.clone();
        lc.push(("result".into(), "fail".into()));
        m.checks.get_or_create(&lc).inc();
        m.applies.inc();
        let text = runtime::metrics::render(&reg);
        assert!(text.contains("lbd_vrrp_master 1"), "{text}");
        assert!(
            text.contains("lbd_backend_up{service=\"www3\",backend=\"192.168.10.10:80\"} 1"),
            "{text}"
        );
        assert!(text.contains("lbd_checks_total{"), "{text}");
        assert!(text.contains("lbd_applies_total 1"), "{text}");
    }
}
