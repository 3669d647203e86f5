//! lbd's status page, served at `/` of the `metrics` address (issue 18): per service and backend
//! the health with the last check's result and time, weight, drained or not, active connections
//! and traffic over the last hour; the VRRP role with its last transitions; the data plane in
//! effect (the nftables table lbd rendered last, or the proxy's figures).
//!
//! The page is built from the same document as `lbd status` (the control socket's handler, see
//! [`crate::status::document`]): one rule in one place. What that document does not hold is kept
//! here in [`Recent`] (held beside the daemon's metrics, fed where the daemon records it): the
//! last check of each backend, a bounded ring of VRRP instances' state changes (followed from
//! what the instances publish), the ruleset last rendered.
//!
//! The plots come from a [`History`] sampled every [`runtime::page::STEP`] from the status
//! document (the counters the proxy and the kernel already keep, read once per sample: nothing
//! on the packet path). `LBD_PAGE_SAMPLE_MS`, read once at start, samples more often: a test
//! knob (the slots stay ten seconds wide), not a setting.

mod render;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use hostfile::LbView;
use runtime::page::{History, Kind, PageFn, PageRequest};
use serde_json::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::desired::Desired;

pub use render::{page, utc};

/// VRRP transitions kept for the page.
pub const TRANSITIONS: usize = 16;
/// Series the history keeps at most (three per backend).
const MAX_SERIES: usize = 512;
/// The test knob: the sampler's period in milliseconds.
pub const SAMPLE_ENV: &str = "LBD_PAGE_SAMPLE_MS";

/// The status source: the control socket's handler, set once the daemon has built it.
pub type StatusCell = Arc<OnceLock<runtime::control::Handler>>;

/// One VRRP state change of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// When.
    pub at: SystemTime,
    /// The instance: `vrrp` (`[lb.vrrp]`) or the `[lb.vrrp-instance.NAME]`.
    pub instance: String,
    /// The state entered: `MASTER`, `BACKUP` or `FAULT`.
    pub to: String,
}

/// A backend's last health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastCheck {
    /// When its result came in.
    pub at: SystemTime,
    /// `None`: passed; the error otherwise.
    pub error: Option<String>,
}

/// What the page shows beyond the status document, recorded where it happens.
#[derive(Debug, Default)]
pub struct Recent {
    transitions: Mutex<VecDeque<Transition>>,
    checks: Mutex<BTreeMap<(String, SocketAddr), LastCheck>>,
    ruleset: Mutex<Option<String>>,
}

impl Recent {
    /// Records that VRRP `instance` entered `to` (the oldest beyond [`TRANSITIONS`] is dropped).
    pub fn transition(&self, instance: &str, to: &str) {
        let mut t = self.transitions.lock().unwrap_or_else(|e| e.into_inner());
        if t.len() == TRANSITIONS {
            t.pop_front();
        }
        t.push_back(Transition {
            at: SystemTime::now(),
            instance: instance.to_owned(),
            to: to.to_owned(),
        });
    }

    /// The recorded transitions, oldest first.
    pub fn transitions(&self) -> Vec<Transition> {
        let t = self.transitions.lock().unwrap_or_else(|e| e.into_inner());
        t.iter().cloned().collect()
    }

    /// Records the result of one check of `backend` in `service`.
    pub fn check<E: std::fmt::Display>(
        &self,
        service: &str,
        backend: SocketAddr,
        result: &Result<(), E>,
    ) {
        let mut c = self.checks.lock().unwrap_or_else(|e| e.into_inner());
        let last = LastCheck {
            at: SystemTime::now(),
            error: result.as_ref().err().map(|e| e.to_string()),
        };
        c.insert((service.to_owned(), backend), last);
    }

    /// The last check of `backend` in `service`, if any.
    pub fn last_check(&self, service: &str, backend: SocketAddr) -> Option<LastCheck> {
        let c = self.checks.lock().unwrap_or_else(|e| e.into_inner());
        c.get(&(service.to_owned(), backend)).cloned()
    }

    /// Forgets the checks of backends no longer in `view` (after a reload).
    pub fn retain(&self, view: &LbView) {
        let mut c = self.checks.lock().unwrap_or_else(|e| e.into_inner());
        c.retain(|(s, a), _| {
            view.services
                .iter()
                .any(|v| &v.name == s && v.backends.iter().any(|b| b.addr == *a))
        });
    }

    /// Records the state just applied: the nftables table's text when a service uses the
    /// kernel data plane, none otherwise.
    pub fn applied(&self, d: &Desired) {
        let kernel = d
            .services
            .iter()
            .any(|s| s.dataplane == hostfile::Dataplane::Kernel);
        // The table as rendered, without the "create if missing, then delete" preamble.
        let text = kernel.then(|| {
            let script = crate::nft::render(d);
            script.splitn(3, '\n').nth(2).unwrap_or(&script).to_owned()
        });
        *self.ruleset.lock().unwrap_or_else(|e| e.into_inner()) = text;
    }

    /// The nftables script last applied, if the kernel data plane is in use.
    pub fn ruleset(&self) -> Option<String> {
        self.ruleset
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The state changes between the instances' `last` states and `now`, given as (instance, state)
/// (pure); `last` is updated. An instance seen for the first time is not a change (it starts
/// as BACKUP).
pub fn changes(
    last: &mut BTreeMap<String, &'static str>,
    now: &[(String, &'static str)],
) -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    for (name, state) in now {
        match last.insert(name.clone(), state) {
            Some(was) if was != *state => out.push((name.clone(), *state)),
            _ => {}
        }
    }
    last.retain(|name, _| now.iter().any(|(n, _)| n == name));
    out
}

/// Records every VRRP instance's state changes, as the instances publish them on `rx`, until
/// `stop`; `key` gives an instance's name and state (`float::InstanceStatus`' `name`, `state`).
pub fn follow_instances<T, F>(
    mut rx: watch::Receiver<Vec<T>>,
    key: F,
    recent: Arc<Recent>,
    stop: CancellationToken,
) where
    T: Send + Sync + 'static,
    F: Fn(&T) -> (String, &'static str) + Send + 'static,
{
    // The states at start are the baseline, taken now: a change published before the task
    // first runs is still a change.
    let mut last = BTreeMap::new();
    let states = |rx: &mut watch::Receiver<Vec<T>>| -> Vec<(String, &'static str)> {
        rx.borrow_and_update().iter().map(&key).collect()
    };
    changes(&mut last, &states(&mut rx));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                r = rx.changed() => if r.is_err() { return },
            }
            let now: Vec<(String, &'static str)> =
                rx.borrow_and_update().iter().map(&key).collect();
            for (instance, to) in changes(&mut last, &now) {
                recent.transition(&instance, to);
            }
        }
    });
}

/// The history's series name for one backend's figure (`active`, `conns`, `bytes`) in the
/// service entry `service` on `vip`. A dual-stack service is two entries of one name, one per
/// VIP, each with its own figures (as keepalived's two virtual servers): the VIP is part of the
/// key, so the two entries never share a series, not even for a backend both reach at one
/// address (a proxy service's backend without an address of the VIP's family, a sorry server).
pub fn series(service: &str, vip: &str, address: &str, figure: &str) -> String {
    format!("{service}\u{1f}{vip}\u{1f}{address}\u{1f}{figure}")
}

/// Samples the status document `doc` into `h` at `now`: per service entry (name and VIP) and
/// backend the active connections (gauge), connections and bytes both ways (counters, stored
/// as rates).
pub fn sample(h: &mut History, doc: &Value, now: std::time::Instant) {
    for svc in doc["services"].as_array().into_iter().flatten() {
        let name = svc["name"].as_str().unwrap_or("");
        let vip = svc["vip"].as_str().unwrap_or("");
        let mut rows: Vec<&Value> = svc["backends"].as_array().into_iter().flatten().collect();
        rows.extend(svc.get("sorry_server").filter(|s| s.is_object()));
        for b in rows {
            let addr = b["address"].as_str().unwrap_or("");
            let key = |figure: &str| series(name, vip, addr, figure);
            if let Some(a) = b["active"].as_u64() {
                h.sample(&key("active"), Kind::Gauge, now, a as f64);
            }
            let conns = b["connections"].as_u64().unwrap_or(0) as f64;
            h.sample(&key("conns"), Kind::Counter, now, conns);
            let bytes = b["bytes_to_backend"].as_u64().unwrap_or(0)
                + b["bytes_from_backend"].as_u64().unwrap_or(0);
            h.sample(&key("bytes"), Kind::Counter, now, bytes as f64);
        }
    }
}

/// The admin key in force in the view `rx` follows (`[lb] admin-key-file`, read at each reload).
pub fn admin_key(rx: watch::Receiver<Arc<LbView>>) -> runtime::page::admin::KeyFn {
    Arc::new(move || rx.borrow().admin_key.as_ref().map(|k| k.secret.clone()))
}

/// The commands of the control socket the page's admin may run (`[lb] admin-key-file`).
pub const ACTIONS: &[&str] = &["drain", "undrain"];

/// Serves the metrics and the page on `addr` until `shutdown` (the page answers once `status`
/// is set) and starts the sampler; returns the bound address. With an admin key in force
/// (`admin_key`, following reloads) the page offers drain and undrain per backend, run by the
/// control socket's handler as `lbd drain` is.
pub async fn serve(
    addr: SocketAddr,
    registry: Arc<runtime::metrics::Registry>,
    recent: Arc<Recent>,
    config: &std::path::Path,
    status: StatusCell,
    admin_key: runtime::page::admin::KeyFn,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let history = Arc::new(Mutex::new(History::new(MAX_SERIES)));
    spawn_sampler(history.clone(), status.clone(), shutdown.clone());
    // The header's links: the three daemons' addresses from the host file at start (lbd's own
    // only, should the file not read back).
    let addrs = match hostfile::HostTable::load(config) {
        Ok(t) => runtime::page::daemon_addrs(&t).to_vec(),
        Err(_) => vec![("lbd", Some(addr))],
    };
    let cell = status.clone();
    let page_fn: PageFn = Arc::new(move |req: &PageRequest| {
        let doc = cell.get().map(|h| h(&["status"]));
        let h = history.lock().unwrap_or_else(|e| e.into_inner());
        page(&render::Inputs {
            doc: doc.as_ref(),
            recent: &recent,
            history: &h,
            now: std::time::Instant::now(),
            wall: SystemTime::now(),
            addrs: &addrs,
            host: req.host.as_deref(),
            req,
        })
    });
    let handler: runtime::control::Handler = Arc::new(move |args: &[&str]| match status.get() {
        Some(h) => h(args),
        None => serde_json::json!({ "error": "lbd is starting; try again" }),
    });
    let admin = runtime::page::Admin::new("lbd", admin_key, ACTIONS, handler);
    runtime::metrics::serve_with_admin(addr, registry, Some(page_fn), Some(admin), shutdown).await
}

fn spawn_sampler(history: Arc<Mutex<History>>, status: StatusCell, shutdown: CancellationToken) {
    let period = runtime::page::sample_interval_from_env(SAMPLE_ENV);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let Some(handler) = status.get().cloned() else {
                continue;
            };
            // The document reads the kernel's counters and conntrack: off the async threads.
            let Ok(doc) = tokio::task::spawn_blocking(move || handler(&["status"])).await else {
                continue;
            };
            let now = tokio::time::Instant::now().into_std();
            let mut h = history.lock().unwrap_or_else(|e| e.into_inner());
            sample(&mut h, &doc, now);
            h.prune(now);
        }
    });
}

#[cfg(test)]
mod tests;
