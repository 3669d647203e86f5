//! The user-space data plane: a TCP proxy per service on VIP:port, for hosts without nftables
//! and for least-connection scheduling.
//!
//! The proxy runs on its own threads, one single-threaded tokio runtime per CPU lbd may use
//! (`LBD_PROXY_THREADS` overrides the count), each with its own listening socket per service
//! (SO_REUSEPORT: the kernel spreads new connections over the threads, and a connection stays
//! on the thread that accepted it, so nothing is handed between threads per request).
//! Listeners bind with IP_FREEBIND so they can start before the VIP is on the interface.
//! Connections are bounded (a semaphore), backend connects time out, and the plan (targets,
//! mode) is swapped without touching open connections.
//!
//! Bytes are copied through a 16 KiB buffer per direction; once a read fills the whole buffer
//! (a large transfer, not a small request or response) that direction moves to splice(2)
//! through a pipe, so the payload no longer crosses into user space (`LBD_PROXY_SPLICE=0`
//! turns this off).
//!
//! A new connection is made to cost as few system calls and packets as the kernel allows
//! (measured with `bench/lb/syscalls.sh`): the backend's socket gets TCP_NODELAY before its
//! SYN; the client's first bytes go out as soon as that socket turns writable, and that write
//! is the connect's outcome (SO_ERROR is read only when the client has sent nothing yet); the
//! direction that ends first is half-closed, the other just closed; and a response whose FIN
//! has already arrived is passed on with that FIN in one segment (MSG_MORE, then the FIN).
//! No bare ACKs where data follows at once: the ACK completing the backend's handshake is held
//! back to ride on the client's first bytes (pushed at once when the client has sent nothing),
//! and the client's first bytes are acknowledged by the answer (see `conn.rs`).

mod conn;
mod pick;
mod pump;
mod stats;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use hostfile::Dataplane;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::desired::{Desired, ServicePlan};
use conn::serve;
use pick::{Picker, Shared};
use stats::BackendStats;

pub use conn::{CONNECT_TIMEOUT, IDLE_TIMEOUT};
pub use stats::{Counters, Labels, ProxyMetrics, labels};

/// Connections carried at once, per service.
pub const MAX_CONNS: usize = 16_384;
/// Listen backlog per listening socket.
const BACKLOG: i32 = 4096;

/// Why a proxy listener set could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The proxy's threads could not be started.
    #[error("proxy threads: {0}")]
    Threads(std::io::Error),
    /// A service's listeners could not be opened.
    #[error("proxy {addr}: {error}")]
    Listen {
        /// The service's VIP and port.
        addr: SocketAddr,
        /// What failed.
        error: std::io::Error,
    },
    /// Several of the above, in order.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Several(Vec<ProxyError>),
}

/// The proxy's threads: one single-threaded runtime each, running until dropped.
#[derive(Debug)]
struct Workers {
    handles: Vec<tokio::runtime::Handle>,
    stop: CancellationToken,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Workers {
    fn start(n: usize) -> std::io::Result<Workers> {
        let stop = CancellationToken::new();
        let mut w = Workers {
            handles: Vec::new(),
            stop: stop.clone(),
            threads: Vec::new(),
        };
        for i in 0..n.max(1) {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            w.handles.push(rt.handle().clone());
            let stop = stop.clone();
            w.threads.push(
                std::thread::Builder::new()
                    .name(format!("lbd-proxy-{i}"))
                    .spawn(move || rt.block_on(tick_until(stop)))?,
            );
        }
        Ok(w)
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop.cancel();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Period of every proxy thread's tick.
const TICK: Duration = Duration::from_secs(1);

/// A proxy thread's own task: a timer due every [`TICK`] until `stop`. Its only job is to be
/// the earliest deadline on the thread: tokio wakes its timer driver (an eventfd write, then
/// an extra epoll event) whenever a new timer is due before every other one, which without
/// this tick is what each new connection's connect timeout ([`CONNECT_TIMEOUT`]) would be on
/// a thread between bursts: about half a system call per new connection, measured.
async fn tick_until(stop: CancellationToken) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
    }
}

/// Proxy threads to start: `LBD_PROXY_THREADS`, else the CPUs this process may run on.
fn thread_count() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (n, warning) = threads_from(std::env::var("LBD_PROXY_THREADS").ok().as_deref(), cpus);
    if let Some(w) = warning {
        tracing::warn!("{w}");
    }
    n
}

/// Proxy threads for the value `var` of `LBD_PROXY_THREADS` (1 to 256), else `cpus`; an
/// unusable value is ignored and named.
fn threads_from(var: Option<&str>, cpus: usize) -> (usize, Option<String>) {
    match var.map(|v| (v, v.trim().parse::<usize>())) {
        None => (cpus, None),
        Some((_, Ok(n))) if (1..=256).contains(&n) => (n, None),
        Some((v, _)) => (
            cpus,
            Some(format!(
                "LBD_PROXY_THREADS={v:?} ignored (a number from 1 to 256): {cpus} proxy threads, one per CPU"
            )),
        ),
    }
}

#[derive(Debug)]
struct Running {
    shared: Arc<Shared>,
    stop: CancellationToken,
}

/// The proxy listeners, one set per proxied service, reconciled from the desired state.
#[derive(Debug, Default)]
pub struct Proxies {
    running: BTreeMap<(IpAddr, u16), Running>,
    workers: Option<Workers>,
    /// Active connections per backend (all services).
    pub counters: Counters,
    /// Connection and byte counters (registered by the daemon when metrics are on).
    pub metrics: ProxyMetrics,
}

impl Proxies {
    /// Makes the listeners match `d`: new services get listeners, changed ones a new plan,
    /// vanished ones are stopped (their open connections finish on their own).
    pub fn apply(&mut self, d: &Desired) -> Result<(), ProxyError> {
        let want: BTreeMap<(IpAddr, u16), &ServicePlan> = d
            .services
            .iter()
            .filter(|s| s.dataplane == Dataplane::Proxy)
            .map(|s| ((s.vip, s.port), s))
            .collect();
        self.running.retain(|k, r| {
            let keep = want.contains_key(k);
            if !keep {
                r.stop.cancel();
            }
            keep
        });
        let mut errors = Vec::new();
        for (k, plan) in want {
            if let Some(r) = self.running.get(&k) {
                let picker = r.shared.picker(plan.clone());
                *r.shared.picker.write().unwrap_or_else(|e| e.into_inner()) = picker;
                continue;
            }
            if self.workers.is_none() {
                match Workers::start(thread_count()) {
                    Ok(w) => self.workers = Some(w),
                    Err(e) => {
                        errors.push(ProxyError::Threads(e));
                        break;
                    }
                }
            }
            let Some(workers) = &self.workers else { break };
            let addr = SocketAddr::new(k.0, k.1);
            let listeners: std::io::Result<Vec<std::net::TcpListener>> =
                probe(addr).and_then(|()| workers.handles.iter().map(|_| bind(addr)).collect());
            let listeners = match listeners {
                Ok(l) => l,
                Err(e) => {
                    errors.push(ProxyError::Listen { addr, error: e });
                    continue;
                }
            };
            tracing::info!(service = %plan.name, listen = %addr, threads = listeners.len(), "proxy listening");
            let shared = Arc::new(Shared {
                service: plan.name.clone(),
                picker: RwLock::new(Arc::new(Picker::new(plan.clone(), |_| {
                    BackendStats::default()
                }))),
                cursor: AtomicUsize::new(0),
                affinity: Mutex::new(HashMap::new()),
                counters: self.counters.clone(),
                metrics: self.metrics.clone(),
                stats: Mutex::new(HashMap::new()),
                conns: Semaphore::new(MAX_CONNS),
                splice: splice_enabled(),
            });
            let picker = shared.picker(plan.clone());
            *shared.picker.write().unwrap_or_else(|e| e.into_inner()) = picker;
            let stop = CancellationToken::new();
            for (l, h) in listeners.into_iter().zip(&workers.handles) {
                let (shared, stop) = (shared.clone(), stop.clone());
                h.spawn(async move {
                    match TcpListener::from_std(l) {
                        Ok(l) => serve(l, shared, stop).await,
                        Err(e) => {
                            tracing::error!(listen = %addr, error = %e, "proxy listener lost")
                        }
                    }
                });
            }
            self.running.insert(k, Running { shared, stop });
        }
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(ProxyError::Several(errors)),
        }
    }

    /// Stops every listener.
    pub fn stop_all(&mut self) {
        for r in self.running.values() {
            r.stop.cancel();
        }
        self.running.clear();
    }

    /// Active connections to `addr` through the proxy, all services.
    pub fn active(&self, addr: SocketAddr) -> u64 {
        let m = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        m.iter()
            .filter(|((_, a), _)| *a == addr)
            .map(|(_, c)| c.load(Ordering::Relaxed))
            .sum()
    }
}

/// Whether large transfers use splice(2): on unless `LBD_PROXY_SPLICE=0`.
fn splice_enabled() -> bool {
    let (on, warning) = splice_from(std::env::var("LBD_PROXY_SPLICE").ok().as_deref());
    if let Some(w) = warning {
        tracing::warn!("{w}");
    }
    on
}

/// splice(2) for the value `var` of `LBD_PROXY_SPLICE`: `0` off, `1` or unset on; anything
/// else is named and leaves it on.
fn splice_from(var: Option<&str>) -> (bool, Option<String>) {
    match var.map(str::trim) {
        Some("0") => (false, None),
        None | Some("1") => (true, None),
        Some(v) => (
            true,
            Some(format!(
                "LBD_PROXY_SPLICE={v:?} not understood (0 = off, 1 = on): splice stays on"
            )),
        ),
    }
}

/// IP_FREEBIND / IPV6_FREEBIND: listen on a VIP before (or while) it is on an interface.
fn freebind(s: &socket2::Socket, addr: SocketAddr) -> std::io::Result<()> {
    if addr.is_ipv4() {
        s.set_freebind_v4(true)
    } else {
        s.set_only_v6(true)?;
        s.set_freebind_v6(true)
    }
}

/// Fails with EADDRINUSE when something already listens on `addr`, SO_REUSEPORT or not: the
/// listeners below share the port among themselves, and would otherwise silently share it with
/// another process of the same user (a second lbd, say).
fn probe(addr: SocketAddr) -> std::io::Result<()> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    freebind(&s, addr)?;
    s.bind(&addr.into())
}

/// One listening socket of a service (SO_REUSEPORT: one per proxy thread). Accepted sockets
/// inherit TCP_NODELAY from it.
fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    freebind(&s, addr)?;
    s.set_tcp_nodelay(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(BACKLOG)?;
    Ok(s.into())
}
