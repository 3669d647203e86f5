//! The proxy's counters: active connections per backend (read by `lbd status` and the metrics)
//! and the Prometheus families of connections and bytes it updates.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use runtime::metrics::{Counter, Family};

/// Metric labels.
pub type Labels = Vec<(String, String)>;

/// The labels of one backend of one service.
pub fn labels(service: &str, backend: SocketAddr) -> Labels {
    vec![
        ("service".into(), service.to_owned()),
        ("backend".into(), backend.to_string()),
    ]
}

/// Per-backend counters the proxy updates.
#[derive(Debug, Default, Clone)]
pub struct ProxyMetrics {
    /// Connections carried to a backend, by service and backend.
    pub connections: Family<Labels, Counter>,
    /// Bytes carried, by service, backend and direction (`to_backend`, `from_backend`).
    pub bytes: Family<Labels, Counter>,
}

/// Active connection counters, by service name and backend address (shared with status and
/// metrics).
pub type Counters = Arc<Mutex<HashMap<(String, SocketAddr), Arc<AtomicU64>>>>;

/// Per-connection handles on one backend's metrics (looked up when a plan is installed, not
/// per connection).
#[derive(Debug, Clone, Default)]
pub(super) struct BackendStats {
    pub(super) active: Arc<AtomicU64>,
    pub(super) connections: Counter,
    pub(super) to_backend: Counter,
    pub(super) from_backend: Counter,
}
