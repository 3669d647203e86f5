//! Prometheus metrics (`[lb] metrics = "ADDR:PORT"`): VRRP role and transitions, backend
//! health and its transitions, health-check outcomes, connections and bytes per backend, applies
//! and failed applies.
//!
//! Connections and bytes: the proxy counts what it carries (`backend_connections_total`,
//! `backend_bytes_total{direction}`). The kernel data plane keeps no per-backend counters of its
//! own; its `backend_active_connections` is read from conntrack at scrape time (ESTABLISHED TCP
//! and all UDP entries DNATed to the backend), like `lbd status`. Kernel bytes are not reported:
//! they would need `nf_conntrack_acct` (a per-packet cost on every flow of the host).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use shared::metrics::{Counter, Family, Gauge, Registry};

/// Metric labels.
pub type Labels = Vec<(String, String)>;

/// A backend the active-connection gauge reports on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carried {
    /// Service name.
    pub service: String,
    /// Kernel or proxy.
    pub dataplane: shared::Dataplane,
    /// IP protocol number (6 or 17).
    pub proto: u8,
    /// Virtual address and port.
    pub vip: Ipv4Addr,
    /// Port.
    pub port: u16,
    /// Backends (configured, whatever their health).
    pub backends: Vec<SocketAddrV4>,
}

/// Per-backend counters the proxy updates.
#[derive(Debug, Default, Clone)]
pub struct ProxyMetrics {
    /// Connections carried to a backend, by service and backend.
    pub connections: Family<Labels, Counter>,
    /// Bytes carried, by service, backend and direction (`to_backend`, `from_backend`).
    pub bytes: Family<Labels, Counter>,
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
            .any(|c| c.dataplane == shared::Dataplane::Kernel)
        {
            crate::read_conntrack().map(|t| crate::status::conntrack_active(&t))
        } else {
            None
        };
        let fam = Family::<Labels, Gauge>::default();
        for c in &carried {
            for b in &c.backends {
                let n = match c.dataplane {
                    shared::Dataplane::Proxy => {
                        let m = self.proxy.lock().unwrap_or_else(|e| e.into_inner());
                        m.get(&(c.service.clone(), *b))
                            .map_or(0, |x| x.load(std::sync::atomic::Ordering::Relaxed))
                    }
                    shared::Dataplane::Kernel => match &ct {
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
    /// What the proxy counts.
    pub proxy: ProxyMetrics,
    /// Active connections per backend, read at scrape time.
    pub active: Arc<ActiveCollector>,
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
            "backend_transitions",
            "Backend health changes, by the state entered",
            self.backend_transitions.clone(),
        );
        r.register(
            "backend_connections",
            "Connections carried to the backend (proxy data plane)",
            self.proxy.connections.clone(),
        );
        r.register(
            "backend_bytes",
            "Bytes carried to and from the backend (proxy data plane)",
            self.proxy.bytes.clone(),
        );
        r.register_collector(Box::new(self.active.clone()));
        Arc::new(r)
    }

    /// Records what `view` carries, for the active-connection gauge.
    pub fn set_carried(&self, view: &shared::LbView) {
        let c = view
            .services
            .iter()
            .map(|s| Carried {
                service: s.name.clone(),
                dataplane: s.dataplane,
                proto: crate::status::proto_num(s.protocol),
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

    /// Labels for a backend of a service.
    pub fn labels(service: &str, backend: std::net::SocketAddrV4) -> Labels {
        vec![
            ("service".into(), service.to_owned()),
            ("backend".into(), backend.to_string()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let text = shared::metrics::render(&reg);
        assert!(text.contains("lbd_vrrp_master 1"), "{text}");
        assert!(
            text.contains("lbd_backend_up{service=\"www3\",backend=\"192.168.10.10:80\"} 1"),
            "{text}"
        );
        assert!(text.contains("lbd_checks_total{"), "{text}");
        assert!(text.contains("lbd_applies_total 1"), "{text}");
    }
}
