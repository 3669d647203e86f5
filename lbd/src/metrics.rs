//! Prometheus metrics (`[lb] metrics = "ADDR:PORT"`): VRRP role, backend health, health-check
//! outcomes, applies and failed applies.

use std::sync::Arc;

use shared::metrics::{Counter, Family, Gauge, Registry};

type Labels = Vec<(String, String)>;

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
        Arc::new(r)
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
