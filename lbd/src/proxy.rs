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

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use hostfile::{Dataplane, Scheduler};
use runtime::metrics::Counter;
use tokio::io::Interest;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::desired::{Desired, Mode, ServicePlan};
use crate::metrics::{Metrics, ProxyMetrics};
use crate::sched;

/// Connections carried at once, per service.
pub const MAX_CONNS: usize = 16_384;
/// Time allowed to connect to a backend.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A carried connection with no byte either way for this long is closed (IPVS's TCP
/// established timeout).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(900);
/// Persistence entries kept per service, at most.
const MAX_AFFINITY: usize = 65_536;
/// Listen backlog per listening socket.
const BACKLOG: i32 = 4096;

/// Active connection counters, by service name and backend address (shared with status and
/// metrics).
pub type Counters = Arc<Mutex<HashMap<(String, SocketAddrV4), Arc<AtomicU64>>>>;

/// Per-connection handles on one backend's metrics (looked up when a plan is installed, not
/// per connection).
#[derive(Debug, Clone, Default)]
struct BackendStats {
    active: Arc<AtomicU64>,
    connections: Counter,
    to_backend: Counter,
    from_backend: Counter,
}

/// Picks a target for a new connection (pure apart from the round-robin cursor).
#[derive(Debug)]
struct Picker {
    plan: ServicePlan,
    wrr: Vec<usize>,
    maglev: Vec<usize>,
    /// Metrics handles, one per target (same order as `plan.targets`).
    stats: Vec<BackendStats>,
}

impl Picker {
    fn new(plan: ServicePlan, stats: impl Fn(SocketAddrV4) -> BackendStats) -> Picker {
        let w: Vec<u32> = plan.targets.iter().map(|t| t.weight).collect();
        let wrr = sched::wrr_sequence(&w);
        let maglev = if plan.scheduler == Scheduler::Sh {
            plan.sh_table()
        } else {
            Vec::new()
        };
        let stats = plan.targets.iter().map(|t| stats(t.addr)).collect();
        Picker {
            plan,
            wrr,
            maglev,
            stats,
        }
    }

    /// Index into `plan.targets`; `active(i)` is target i's open connection count.
    fn pick(&self, src: Ipv4Addr, cursor: usize, active: &dyn Fn(usize) -> u64) -> Option<usize> {
        let n = self.plan.targets.len();
        if n == 0 {
            return None;
        }
        Some(match self.plan.scheduler {
            Scheduler::Rr => cursor % n,
            Scheduler::Wrr => self
                .wrr
                .get(cursor % self.wrr.len().max(1))
                .copied()
                .unwrap_or(0),
            Scheduler::Sh => {
                let h = sched::fnv(0, &src.octets()) as usize;
                self.maglev
                    .get(h % self.maglev.len().max(1))
                    .copied()
                    .unwrap_or(0)
            }
            Scheduler::Lc => {
                // Least (active + 1) / weight, compared without division.
                let mut best = 0;
                for i in 1..n {
                    let a = (active(i) + 1) * u64::from(self.plan.targets[best].weight);
                    let b = (active(best) + 1) * u64::from(self.plan.targets[i].weight);
                    if a < b {
                        best = i;
                    }
                }
                best
            }
        })
    }
}

#[derive(Debug)]
struct Shared {
    service: String,
    picker: RwLock<Arc<Picker>>,
    cursor: AtomicUsize,
    affinity: Mutex<HashMap<Ipv4Addr, (SocketAddrV4, Instant)>>,
    counters: Counters,
    metrics: ProxyMetrics,
    stats: Mutex<HashMap<SocketAddrV4, BackendStats>>,
    conns: Semaphore,
    /// Large transfers move to splice(2).
    splice: bool,
}

impl Shared {
    /// The metrics handles of backend `a` (made on first use).
    fn stats(&self, a: SocketAddrV4) -> BackendStats {
        let mut m = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(a)
            .or_insert_with(|| {
                let l = Metrics::labels(&self.service, a);
                let dir = |d: &str| {
                    let mut l = l.clone();
                    l.push(("direction".into(), d.into()));
                    self.metrics.bytes.get_or_create(&l).clone()
                };
                let active = {
                    let mut c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
                    c.entry((self.service.clone(), a)).or_default().clone()
                };
                BackendStats {
                    active,
                    connections: self.metrics.connections.get_or_create(&l).clone(),
                    to_backend: dir("to_backend"),
                    from_backend: dir("from_backend"),
                }
            })
            .clone()
    }

    fn picker(&self, plan: ServicePlan) -> Arc<Picker> {
        Arc::new(Picker::new(plan, |a| self.stats(a)))
    }

    /// The backend for a new connection from `src`, with its metrics handles.
    fn choose(&self, src: Ipv4Addr) -> Option<(SocketAddrV4, BackendStats)> {
        let picker = self
            .picker
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if picker.plan.mode == Mode::Withdrawn {
            return None;
        }
        let at = |i: usize| (picker.plan.targets[i].addr, picker.stats[i].clone());
        let now = Instant::now();
        if let Some(t) = picker.plan.persistence {
            let mut aff = self.affinity.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(i) = sticky(&mut aff, src, now, t, |a| {
                picker.plan.targets.iter().position(|x| x.addr == a)
            }) {
                return Some(at(i));
            }
        }
        let cursor = self.cursor.fetch_add(1, Ordering::Relaxed);
        let i = picker.pick(src, cursor, &|i| {
            picker.stats[i].active.load(Ordering::Relaxed)
        })?;
        let chosen = at(i);
        if let Some(t) = picker.plan.persistence {
            let mut aff = self.affinity.lock().unwrap_or_else(|e| e.into_inner());
            if aff.len() >= MAX_AFFINITY {
                aff.retain(|_, (_, when)| now.duration_since(*when) < t);
            }
            if aff.len() < MAX_AFFINITY {
                aff.insert(src, (chosen.0, now));
            }
        }
        Some(chosen)
    }
}

/// Source persistence: the backend index `src` keeps at `now`, if its entry was last used less
/// than `t` ago and names a backend `live` still has. A hit refreshes the entry, so persistence
/// times out from the client's LAST connection, as LVS's `persistence_timeout` and the kernel
/// plane's `update @set` do (a client that keeps connecting never moves).
fn sticky(
    aff: &mut HashMap<Ipv4Addr, (SocketAddrV4, Instant)>,
    src: Ipv4Addr,
    now: Instant,
    t: Duration,
    live: impl Fn(SocketAddrV4) -> Option<usize>,
) -> Option<usize> {
    let (a, when) = aff.get_mut(&src)?;
    if now.saturating_duration_since(*when) >= t {
        return None;
    }
    let i = live(*a)?;
    *when = now;
    Some(i)
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
    running: BTreeMap<(Ipv4Addr, u16), Running>,
    workers: Option<Workers>,
    /// Active connections per backend (all services).
    pub counters: Counters,
    /// Connection and byte counters (registered by the daemon when metrics are on).
    pub metrics: ProxyMetrics,
}

impl Proxies {
    /// Makes the listeners match `d`: new services get listeners, changed ones a new plan,
    /// vanished ones are stopped (their open connections finish on their own).
    pub fn apply(&mut self, d: &Desired) -> Result<(), String> {
        let want: BTreeMap<(Ipv4Addr, u16), &ServicePlan> = d
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
                        errors.push(format!("proxy threads: {e}"));
                        break;
                    }
                }
            }
            let Some(workers) = &self.workers else { break };
            let addr = SocketAddrV4::new(k.0, k.1);
            let listeners: std::io::Result<Vec<std::net::TcpListener>> =
                probe(addr).and_then(|()| workers.handles.iter().map(|_| bind(addr)).collect());
            let listeners = match listeners {
                Ok(l) => l,
                Err(e) => {
                    errors.push(format!("proxy {addr}: {e}"));
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
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
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
    pub fn active(&self, addr: SocketAddrV4) -> u64 {
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

/// Fails with EADDRINUSE when something already listens on `addr`, SO_REUSEPORT or not: the
/// listeners below share the port among themselves, and would otherwise silently share it with
/// another process of the same user (a second lbd, say).
fn probe(addr: SocketAddrV4) -> std::io::Result<()> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.set_freebind_v4(true)?;
    s.bind(&SocketAddr::V4(addr).into())
}

/// One listening socket of a service (SO_REUSEPORT: one per proxy thread). Accepted sockets
/// inherit TCP_NODELAY from it.
fn bind(addr: SocketAddrV4) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.set_freebind_v4(true)?;
    s.set_tcp_nodelay(true)?;
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::V4(addr).into())?;
    s.listen(BACKLOG)?;
    Ok(s.into())
}

async fn serve(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        let permit = tokio::select! {
            _ = stop.cancelled() => return,
            p = shared.conns.acquire() => match p { Ok(p) => p, Err(_) => return },
        };
        let (client, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    // EMFILE and friends: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        permit.forget();
        let shared = shared.clone();
        tokio::spawn(async move {
            carry(client, peer, &shared).await;
            shared.conns.add_permits(1);
        });
    }
}

/// Closes with RST (SO_LINGER 0) so a refused client learns at once.
fn reset(s: &TcpStream) {
    let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
}

/// Starts a connection to a backend: a non-blocking socket with TCP_NODELAY set before the
/// SYN (one call fewer per connection than setting it after), the SYN sent, the socket
/// registered with this thread's reactor. [`established`] waits for the outcome.
fn start_connect(addr: SocketAddrV4) -> std::io::Result<TcpStream> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(
        Domain::IPV4,
        Type::STREAM.nonblocking(),
        Some(socket2::Protocol::TCP),
    )?;
    s.set_tcp_nodelay(true)?;
    match s.connect(&SocketAddr::V4(addr).into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    TcpStream::from_std(s.into())
}

/// Connects to `addr` (for tests and the plain path: waits, then checks SO_ERROR).
#[cfg(test)]
async fn connect(addr: SocketAddrV4) -> std::io::Result<TcpStream> {
    let s = start_connect(addr)?;
    s.writable().await?;
    match s.take_error()? {
        Some(e) => Err(e),
        None => Ok(s),
    }
}

/// Reads what `s` has already received, without waiting: `WouldBlock` when the reactor has
/// not seen it readable (then no call is made). Unlike `try_read`, a short read tells the
/// reactor the socket is drained, so the next read waits for an event instead of costing a
/// call that returns EAGAIN.
async fn read_ready(s: &mut TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::pin::Pin;
    use std::task::Poll;
    use tokio::io::{AsyncRead, ReadBuf};
    std::future::poll_fn(|cx| {
        let mut rb = ReadBuf::new(buf);
        Poll::Ready(match Pin::new(&mut *s).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) => Ok(rb.filled().len()),
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Err(std::io::ErrorKind::WouldBlock.into()),
        })
    })
    .await
}

/// Why opening the way to a backend stopped.
#[derive(Debug)]
enum OpenError {
    /// The backend could not be reached: another one may be tried with the same bytes.
    Backend(std::io::Error),
    /// The client failed (reset): nothing to retry.
    Client(std::io::Error),
}

/// Waits until the connection `up` is established and relays the client's first bytes to
/// it: `*held` bytes of `buf` already read from the client (an earlier backend failed), or,
/// when none are held, whatever the client has already sent (read only if the reactor has
/// seen the client readable, so no call is made in vain; `*held` then says how much was
/// read, so a failed backend's successor gets the same bytes). The first write is the connect's
/// outcome: a refused or unreachable backend fails it with that error, so the usual
/// getsockopt(SO_ERROR) is only needed when the client has sent nothing yet (protocols where
/// the server speaks first). Returns the bytes of `buf` relayed.
async fn established(
    up: &TcpStream,
    client: &mut TcpStream,
    buf: &mut [u8],
    held: &mut usize,
) -> Result<usize, OpenError> {
    up.writable().await.map_err(OpenError::Backend)?;
    if *held == 0 {
        *held = match read_ready(client, buf).await {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
            Err(e) => return Err(OpenError::Client(e)),
        };
    }
    let n = *held;
    if n == 0 {
        // Nothing to send (or the client already half-closed): ask the socket.
        return match up.take_error() {
            Ok(None) => Ok(0),
            Ok(Some(e)) | Err(e) => Err(OpenError::Backend(e)),
        };
    }
    let mut sent = 0;
    while sent < n {
        match up.try_write(&buf[sent..n]) {
            Ok(k) => sent += k,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                up.writable().await.map_err(OpenError::Backend)?
            }
            Err(e) => return Err(OpenError::Backend(e)),
        }
    }
    Ok(n)
}

async fn carry(mut client: TcpStream, peer: SocketAddr, shared: &Shared) {
    let src = match peer {
        SocketAddr::V4(a) => *a.ip(),
        SocketAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
    };
    let mut bufs = PooledBuffers::take();
    let Some(b) = bufs.0.as_mut() else { return };
    let (b1, b2) = b.split_at_mut(BUF);
    // Bytes read from the client and not yet relayed (a backend failed after they were read).
    let mut held = 0;
    // Two tries: a backend that just died is skipped once before the checker notices.
    let mut tried = None;
    for _ in 0..2 {
        let Some((addr, stats)) = shared.choose(src) else {
            reset(&client);
            return;
        };
        if tried == Some(addr) {
            continue;
        }
        tried = Some(addr);
        let open = async {
            let up = start_connect(addr).map_err(OpenError::Backend)?;
            let n = established(&up, &mut client, b1, &mut held).await?;
            Ok::<_, OpenError>((up, n))
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, open).await {
            Ok(Ok((upstream, first))) => {
                stats.active.fetch_add(1, Ordering::Relaxed);
                stats.connections.inc();
                stats.to_backend.inc_by(first as u64);
                splice_idle(
                    client,
                    upstream,
                    (b1, b2),
                    IDLE_TIMEOUT,
                    &stats,
                    shared.splice,
                )
                .await;
                stats.active.fetch_sub(1, Ordering::Relaxed);
                return;
            }
            Ok(Err(OpenError::Backend(e))) => {
                tracing::debug!(backend = %addr, error = %e, "backend connect failed")
            }
            Ok(Err(OpenError::Client(e))) => {
                tracing::debug!(client = %peer, error = %e, "client failed before the backend answered");
                return;
            }
            Err(_) => tracing::debug!(backend = %addr, "backend connect timed out"),
        }
    }
    reset(&client);
}

/// Buffer per direction of a carried connection (HAProxy's default buffer size). A read that
/// fills it moves the direction to splice(2).
const BUF: usize = 16 * 1024;
/// Buffers kept for reuse per thread.
const POOL: usize = 256;

type Buffers = Box<[u8; 2 * BUF]>;

thread_local! {
    static BUFFERS: RefCell<Vec<Buffers>> = const { RefCell::new(Vec::new()) };
}

/// A pair of buffers from this thread's pool (or newly made), returned to it on drop.
struct PooledBuffers(Option<Buffers>);

impl PooledBuffers {
    fn take() -> PooledBuffers {
        let b = BUFFERS
            .with(|p| p.borrow_mut().pop())
            .unwrap_or_else(|| Box::new([0u8; 2 * BUF]));
        PooledBuffers(Some(b))
    }
}

impl Drop for PooledBuffers {
    fn drop(&mut self) {
        if let Some(b) = self.0.take() {
            BUFFERS.with(|p| {
                let mut p = p.borrow_mut();
                if p.len() < POOL {
                    p.push(b);
                }
            });
        }
    }
}

/// A pipe for splice(2); both ends closed on drop.
struct Pipe {
    r: OwnedFd,
    w: OwnedFd,
}

impl Pipe {
    fn new() -> std::io::Result<Pipe> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded: both descriptors are fresh and ours.
        Ok(unsafe {
            Pipe {
                r: OwnedFd::from_raw_fd(fds[0]),
                w: OwnedFd::from_raw_fd(fds[1]),
            }
        })
    }
}

/// Moves up to `len` bytes from `from` to `to` (one of them a pipe) without blocking.
fn splice(from: RawFd, to: RawFd, len: usize) -> std::io::Result<usize> {
    // SAFETY: plain splice(2) between two descriptors we hold open; no offsets.
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Bytes asked of one splice into the pipe (the default pipe holds 64 KiB).
const SPLICE_CHUNK: usize = 64 * 1024;

/// Activity of a carried connection: how many times bytes moved, which the idle watchdog
/// compares between its checks (no clock is read per transfer). Both directions run in one
/// task, never at once, so a plain load and store suffice.
#[derive(Default)]
struct Activity {
    moved: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        let n = self.moved.load(Ordering::Relaxed);
        self.moved.store(n.wrapping_add(1), Ordering::Relaxed);
    }
}

/// Copies one direction; half-closes the writer at EOF. Starts with `buf`; a read that fills
/// it (and `splice`) moves the rest of the direction to splice(2) through a pipe.
///
/// `ended` is shared by the two directions of a connection: the first to reach EOF
/// half-closes its writer (shutdown(SHUT_WR), so the other side may still answer); the
/// second skips it, since both sockets are closed right after and close(2) sends that FIN
/// itself (its socket has nothing left unread, so close does not turn into a reset). That
/// saves one call per connection.
async fn pump(
    mut r: tokio::net::tcp::ReadHalf<'_>,
    mut w: tokio::net::tcp::WriteHalf<'_>,
    buf: &mut [u8],
    act: &Activity,
    bytes: &Counter,
    splice: bool,
    ended: &AtomicBool,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Short reads left on which to look for a FIN right behind the bytes (below): the first
    // few only, where a one-answer connection (`Connection: close`, HTTP/1.0) ends; looking
    // costs a lock when there is no FIN, which a long keep-alive flow need not pay per read.
    let mut fin_probes = 4u8;
    loop {
        let mut n = r.read(buf).await?;
        if n == 0 {
            return half_close(&mut w, ended).await;
        }
        // The sender's FIN has already arrived behind these bytes (a response and then the
        // backend closing, as with `Connection: close`): take the EOF now, so the bytes and
        // the FIN that passes it on leave in one segment (MSG_MORE holds the bytes until the
        // FIN is added) instead of two, one packet fewer for both ends to handle.
        if n < buf.len() && fin_probes > 0 && {
            fin_probes -= 1;
            fin_seen(r.as_ref())
        } {
            let more = r.read(&mut buf[n..]).await?;
            if more == 0 {
                write_before_fin(&mut w, &buf[..n]).await?;
                bytes.inc_by(n as u64);
                act.touch();
                return half_close(&mut w, ended).await;
            }
            n += more;
        }
        w.write_all(&buf[..n]).await?;
        bytes.inc_by(n as u64);
        act.touch();
        if n == buf.len()
            && splice
            && let Ok(pipe) = Pipe::new()
        {
            splice_pump(r.as_ref(), w.as_ref(), &pipe, act, bytes).await?;
            return half_close(&mut w, ended).await;
        }
    }
}

/// Whether the reactor has seen the peer's FIN on `s` (its read side closed), without waiting.
fn fin_seen(s: &TcpStream) -> bool {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let ready = std::pin::pin!(s.ready(Interest::READABLE));
    let mut cx = Context::from_waker(Waker::noop());
    matches!(ready.poll(&mut cx), Poll::Ready(Ok(r)) if r.is_read_closed())
}

/// Writes `data`, the last bytes before `w` is half-closed or closed, with MSG_MORE, so the
/// kernel holds them until the FIN that follows joins them in one segment.
async fn write_before_fin(
    w: &mut tokio::net::tcp::WriteHalf<'_>,
    data: &[u8],
) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let s: &TcpStream = w.as_ref();
    let fd = s.as_raw_fd();
    let sent = match s.try_io(Interest::WRITABLE, || {
        // SAFETY: send(2) from a live buffer of `data.len()` bytes on a socket we hold.
        let n = unsafe {
            libc::send(
                fd,
                data.as_ptr().cast(),
                data.len(),
                libc::MSG_MORE | libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }) {
        Ok(k) => k,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
        Err(e) => return Err(e),
    };
    w.write_all(&data[sent..]).await
}

/// Half-closes `w` at the end of its direction unless the other direction has already ended
/// (see [`pump`]).
async fn half_close(
    w: &mut tokio::net::tcp::WriteHalf<'_>,
    ended: &AtomicBool,
) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    if ended.swap(true, Ordering::AcqRel) {
        return Ok(());
    }
    w.shutdown().await
}

/// Copies one direction through `pipe` until EOF.
async fn splice_pump(
    r: &TcpStream,
    w: &TcpStream,
    pipe: &Pipe,
    act: &Activity,
    bytes: &Counter,
) -> std::io::Result<()> {
    let (rfd, wfd) = (r.as_raw_fd(), w.as_raw_fd());
    loop {
        r.readable().await?;
        let mut held = match r.try_io(Interest::READABLE, || {
            splice(rfd, pipe.w.as_raw_fd(), SPLICE_CHUNK)
        }) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        while held > 0 {
            w.writable().await?;
            match w.try_io(Interest::WRITABLE, || splice(pipe.r.as_raw_fd(), wfd, held)) {
                Ok(n) => {
                    held -= n;
                    bytes.inc_by(n as u64);
                    act.touch();
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Carries bytes both ways until both sides close, either side fails, or nothing moves for
/// `idle`. Both directions run in this one task on borrowed halves, with the two buffers of
/// `bufs` (from the thread's pool).
async fn splice_idle(
    mut client: TcpStream,
    mut upstream: TcpStream,
    bufs: (&mut [u8], &mut [u8]),
    idle: Duration,
    stats: &BackendStats,
    splice: bool,
) {
    let act = Activity::default();
    let (b1, b2) = bufs;
    let ended = AtomicBool::new(false);
    let (cr, cw) = client.split();
    let (ur, uw) = upstream.split();
    let both = async {
        let _ = tokio::try_join!(
            pump(cr, uw, b1, &act, &stats.to_backend, splice, &ended),
            pump(ur, cw, b2, &act, &stats.from_backend, splice, &ended)
        );
    };
    // Checks every idle/4; four checks in a row that see nothing moved mean at least `idle`
    // (at most 1.25 x idle) of silence.
    let watchdog = async {
        let (mut seen, mut quiet) = (act.moved.load(Ordering::Relaxed), 0);
        loop {
            tokio::time::sleep(idle / 4).await;
            let now = act.moved.load(Ordering::Relaxed);
            if now != seen {
                (seen, quiet) = (now, 0);
                continue;
            }
            quiet += 1;
            if quiet >= 4 {
                return;
            }
        }
    };
    tokio::select! {
        _ = both => {}
        _ = watchdog => tracing::debug!("proxied connection idle: closed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::Target;
    use hostfile::Protocol;

    fn no_stats(_: SocketAddrV4) -> BackendStats {
        BackendStats::default()
    }

    fn plan(s: Scheduler, weights: &[u32]) -> ServicePlan {
        ServicePlan {
            index: 0,
            name: "t".into(),
            vip: Ipv4Addr::LOCALHOST,
            port: 1,
            protocol: Protocol::Tcp,
            scheduler: s,
            dataplane: Dataplane::Proxy,
            byte_counters: false,
            persistence: None,
            mode: Mode::Live,
            targets: weights
                .iter()
                .enumerate()
                .map(|(i, w)| Target {
                    name: format!("b{i}"),
                    addr: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, i as u8), 80),
                    weight: *w,
                })
                .collect(),
            pool: Vec::new(),
            counted: Vec::new(),
        }
    }

    #[test]
    fn rr_and_wrr() {
        let p = Picker::new(plan(Scheduler::Rr, &[1, 5]), no_stats);
        let none = |_| 0;
        let v: Vec<usize> = (0..4)
            .map(|c| p.pick(Ipv4Addr::LOCALHOST, c, &none).unwrap())
            .collect();
        assert_eq!(v, vec![0, 1, 0, 1]);
        let p = Picker::new(plan(Scheduler::Wrr, &[2, 1]), no_stats);
        let v: Vec<usize> = (0..6)
            .map(|c| p.pick(Ipv4Addr::LOCALHOST, c, &none).unwrap())
            .collect();
        assert_eq!(v.iter().filter(|x| **x == 0).count(), 4);
    }

    #[test]
    fn lc_prefers_the_least_loaded_per_weight() {
        let p = Picker::new(plan(Scheduler::Lc, &[1, 1, 2]), no_stats);
        let load = |i: usize| match i {
            0 => 3,
            1 => 1,
            _ => 4,
        };
        // (3+1)/1=4, (1+1)/1=2, (4+1)/2=2.5 -> backend 1.
        assert_eq!(p.pick(Ipv4Addr::LOCALHOST, 0, &load), Some(1));
    }

    #[test]
    fn sh_is_sticky_per_source() {
        let p = Picker::new(plan(Scheduler::Sh, &[1, 1]), no_stats);
        let none = |_| 0;
        let a = Ipv4Addr::new(192, 168, 1, 50);
        let first = p.pick(a, 0, &none);
        for c in 1..10 {
            assert_eq!(p.pick(a, c, &none), first);
        }
    }

    #[test]
    fn sh_moves_only_the_sources_of_a_backend_that_leaves() {
        let mut full = plan(Scheduler::Sh, &[1, 2, 1]);
        full.pool = full.targets.clone();
        let all = Picker::new(full.clone(), no_stats);
        let none = |_| 0;
        let srcs: Vec<Ipv4Addr> = (0..3000u32)
            .map(|i| Ipv4Addr::from(0x0a00_0000 + i * 7919))
            .collect();
        let at = |p: &Picker, s: Ipv4Addr| p.plan.targets[p.pick(s, 0, &none).unwrap()].addr;
        for gone in 0..3 {
            let mut p = full.clone();
            p.targets.remove(gone);
            let less = Picker::new(p, no_stats);
            let gone_addr = full.targets[gone].addr;
            let mut spread = std::collections::HashSet::new();
            for &s in &srcs {
                let (before, after) = (at(&all, s), at(&less, s));
                if before == gone_addr {
                    spread.insert(after);
                } else {
                    assert_eq!(before, after, "{s} moved though {before} stayed");
                }
            }
            // The leaving backend's sources are shared by both that remain.
            assert_eq!(spread.len(), 2, "backend {gone}");
        }
    }

    #[test]
    fn proxy_env_knobs() {
        assert_eq!(threads_from(None, 2), (2, None));
        assert_eq!(threads_from(Some("1"), 2), (1, None));
        assert_eq!(threads_from(Some("256"), 2), (256, None));
        for bad in ["0", "257", "four", ""] {
            let (n, w) = threads_from(Some(bad), 2);
            assert_eq!(n, 2, "{bad}");
            assert!(w.unwrap().contains("LBD_PROXY_THREADS"), "{bad}");
        }
        assert_eq!(splice_from(None), (true, None));
        assert_eq!(splice_from(Some("1")), (true, None));
        assert_eq!(splice_from(Some("0")), (false, None));
        let (on, w) = splice_from(Some("off"));
        assert!(on);
        assert!(w.unwrap().contains("LBD_PROXY_SPLICE=\"off\""));
    }

    #[test]
    fn persistence_times_out_from_the_last_use() {
        let t = Duration::from_secs(2);
        let (src, other) = (
            Ipv4Addr::new(192, 168, 1, 50),
            Ipv4Addr::new(192, 168, 1, 51),
        );
        let b = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 80);
        let live = |a: SocketAddrV4| (a == b).then_some(1);
        let t0 = Instant::now();
        let mut aff = HashMap::from([(src, (b, t0))]);
        assert_eq!(sticky(&mut aff, other, t0, t, live), None, "no entry");
        // Uses every 1.5 s keep the client on its backend for 6 s, three times the timeout.
        for k in 1..=4u32 {
            let now = t0 + Duration::from_millis(1500) * k;
            assert_eq!(sticky(&mut aff, src, now, t, live), Some(1), "use {k}");
            assert_eq!(aff[&src].1, now, "refreshed at use {k}");
        }
        let last = t0 + Duration::from_secs(6);
        // A silence of the timeout from the last use ends it (and does not refresh it).
        assert_eq!(sticky(&mut aff, src, last + t, t, live), None);
        assert_eq!(aff[&src].1, last);
        // An entry naming a backend that left is not used, nor refreshed.
        let gone = |_: SocketAddrV4| None;
        assert_eq!(sticky(&mut aff, src, last + t / 2, t, gone), None);
        assert_eq!(aff[&src].1, last);
    }

    #[tokio::test]
    async fn idle_connections_are_closed() {
        use tokio::io::AsyncReadExt;
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = l.local_addr().unwrap();
        let c1 = TcpStream::connect(a).await.unwrap();
        let (s1, _) = l.accept().await.unwrap();
        let mut c2 = TcpStream::connect(a).await.unwrap();
        let (s2, _) = l.accept().await.unwrap();
        let t = tokio::spawn(async move {
            let mut b = PooledBuffers::take();
            let (b1, b2) = b.0.as_mut().unwrap().split_at_mut(BUF);
            splice_idle(
                s1,
                s2,
                (b1, b2),
                Duration::from_millis(200),
                &BackendStats::default(),
                true,
            )
            .await;
        });
        tokio::time::timeout(Duration::from_secs(5), t)
            .await
            .unwrap()
            .unwrap();
        // Both sides were closed: the peers read EOF.
        let mut b = [0u8; 1];
        assert_eq!(c2.read(&mut b).await.unwrap(), 0);
        drop(c1);
    }

    #[tokio::test]
    async fn a_connection_in_use_outlives_the_idle_time() {
        // idle 200 ms: bytes every 60 ms for 600 ms keep it open; then it is closed.
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let baddr = echo_backend(1).await;
        let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let faddr = front.local_addr().unwrap();
        let carried = tokio::spawn(async move {
            let (c, _) = front.accept().await.unwrap();
            let u = connect(baddr).await.unwrap();
            let mut b = PooledBuffers::take();
            let (b1, b2) = b.0.as_mut().unwrap().split_at_mut(BUF);
            let idle = Duration::from_millis(200);
            splice_idle(c, u, (b1, b2), idle, &BackendStats::default(), true).await;
        });
        let mut c = TcpStream::connect(faddr).await.unwrap();
        let mut b = [0u8; 1];
        for i in 0..10u8 {
            tokio::time::sleep(Duration::from_millis(60)).await;
            c.write_all(&[i]).await.unwrap();
            c.read_exact(&mut b).await.unwrap();
            assert_eq!(
                b[0],
                i,
                "still carried after {} ms",
                60 * (u32::from(i) + 1)
            );
        }
        tokio::time::timeout(Duration::from_secs(5), carried)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.read(&mut b).await.unwrap(), 0, "closed once idle");
    }

    #[tokio::test]
    async fn proxies_to_a_local_backend_and_counts() {
        let backend = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let SocketAddr::V4(baddr) = backend.local_addr().unwrap() else {
            panic!()
        };
        tokio::spawn(async move {
            let (mut s, _) = backend.accept().await.unwrap();
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut b = [0u8; 5];
            s.read_exact(&mut b).await.unwrap();
            s.write_all(&b).await.unwrap();
        });
        // Pick a free port for the front.
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let front = probe.local_addr().unwrap().port();
        drop(probe);
        let mut p = plan(Scheduler::Lc, &[1]);
        p.port = front;
        p.targets[0].addr = baddr;
        let d = Desired {
            vips: vec![],
            services: vec![p],
        };
        let mut proxies = Proxies::default();
        proxies.apply(&d).unwrap();
        let mut c = TcpStream::connect(("127.0.0.1", front)).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        c.write_all(b"hello").await.unwrap();
        let mut b = [0u8; 5];
        c.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"hello");
        assert_eq!(proxies.active(baddr), 1);
        proxies.stop_all();
    }

    /// An echo server on loopback that answers every byte it reads, for `conns` connections.
    async fn echo_backend(conns: usize) -> SocketAddrV4 {
        let backend = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let SocketAddr::V4(baddr) = backend.local_addr().unwrap() else {
            panic!()
        };
        tokio::spawn(async move {
            for _ in 0..conns {
                let (mut s, _) = backend.accept().await.unwrap();
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        baddr
    }

    /// Sends `len` patterned bytes through a carried connection and reads them back; both
    /// byte counters see every byte. 1 MiB takes the splice(2) path (reads fill the buffer),
    /// 100 bytes the buffered one.
    async fn round_trip(len: usize, splice: bool) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let baddr = echo_backend(1).await;
        let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let faddr = front.local_addr().unwrap();
        let stats = BackendStats::default();
        let st = stats.clone();
        let carried = tokio::spawn(async move {
            let (c, _) = front.accept().await.unwrap();
            let u = connect(baddr).await.unwrap();
            let mut b = PooledBuffers::take();
            let (b1, b2) = b.0.as_mut().unwrap().split_at_mut(BUF);
            splice_idle(c, u, (b1, b2), Duration::from_secs(10), &st, splice).await;
        });
        let mut c = TcpStream::connect(faddr).await.unwrap();
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let (mut r, mut w) = c.split();
        let send = async {
            w.write_all(&data).await.unwrap();
            w.shutdown().await.unwrap();
        };
        let mut back = Vec::new();
        let recv = async {
            r.read_to_end(&mut back).await.unwrap();
        };
        tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(send, recv) })
            .await
            .unwrap();
        assert_eq!(back.len(), len);
        assert!(back == data, "bytes changed on the way");
        tokio::time::timeout(Duration::from_secs(5), carried)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stats.to_backend.get(), len as u64);
        assert_eq!(stats.from_backend.get(), len as u64);
    }

    #[tokio::test]
    async fn large_transfers_are_spliced_intact() {
        round_trip(1 << 20, true).await;
        round_trip(3 * BUF + 17, true).await;
    }

    #[tokio::test]
    async fn small_and_unspliced_transfers_are_intact() {
        round_trip(100, true).await;
        round_trip(1 << 20, false).await;
    }

    #[test]
    fn buffers_are_reused_per_thread() {
        let first = {
            let b = PooledBuffers::take();
            b.0.as_ref().unwrap().as_ptr()
        };
        let again = PooledBuffers::take();
        assert_eq!(again.0.as_ref().unwrap().as_ptr(), first);
    }

    #[tokio::test]
    async fn every_proxy_thread_accepts() {
        // Three listeners share the port (SO_REUSEPORT), one per thread; the kernel spreads
        // connections over them by source port and every one is carried and counted.
        let n = 40;
        let baddr = echo_backend(n).await;
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let front = probe.local_addr().unwrap().port();
        drop(probe);
        let mut p = plan(Scheduler::Rr, &[1]);
        p.port = front;
        p.targets[0].addr = baddr;
        let d = Desired {
            vips: vec![],
            services: vec![p],
        };
        let mut proxies = Proxies {
            workers: Some(Workers::start(3).unwrap()),
            ..Proxies::default()
        };
        proxies.apply(&d).unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut open = Vec::new();
        for i in 0..n {
            let mut c = TcpStream::connect(("127.0.0.1", front)).await.unwrap();
            c.write_all(&[i as u8]).await.unwrap();
            let mut b = [0u8; 1];
            c.read_exact(&mut b).await.unwrap();
            assert_eq!(b[0], i as u8);
            open.push(c);
        }
        assert_eq!(proxies.active(baddr), n as u64);
        proxies.stop_all();
    }

    /// A proxy on a free loopback port over `targets` (rr), and that port.
    fn front(targets: &[SocketAddrV4]) -> (Proxies, u16) {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let front = probe.local_addr().unwrap().port();
        drop(probe);
        let mut p = plan(Scheduler::Rr, &vec![1; targets.len()]);
        p.port = front;
        for (t, a) in p.targets.iter_mut().zip(targets) {
            t.addr = *a;
        }
        let d = Desired {
            vips: vec![],
            services: vec![p],
        };
        let mut proxies = Proxies::default();
        proxies.apply(&d).unwrap();
        (proxies, front)
    }

    /// A loopback address nothing listens on (connects are refused).
    fn refused() -> SocketAddrV4 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let SocketAddr::V4(a) = l.local_addr().unwrap() else {
            panic!()
        };
        a
    }

    #[tokio::test]
    async fn a_refused_backend_is_skipped_with_the_bytes_already_read() {
        // rr starts at the refusing backend: the client's first bytes, read while that
        // connect was failing, reach the second backend intact, and only it is counted.
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let dead = refused();
        let live = echo_backend(1).await;
        let (proxies, port) = front(&[dead, live]);
        let mut c = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        c.write_all(b"first bytes").await.unwrap();
        let mut b = [0u8; 11];
        tokio::time::timeout(Duration::from_secs(5), c.read_exact(&mut b))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&b, b"first bytes");
        assert_eq!(proxies.active(live), 1);
        assert_eq!(proxies.active(dead), 0);
        let mut p = proxies;
        p.stop_all();
    }

    #[tokio::test]
    async fn a_failed_connect_keeps_the_client_bytes_it_read() {
        use tokio::io::AsyncWriteExt;
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (mut s, _) = l.accept().await.unwrap();
        c.write_all(b"request").await.unwrap();
        // Let the reactor see the client readable first.
        s.readable().await.unwrap();
        let mut buf = [0u8; 64];
        let mut held = 0;
        let up = start_connect(refused()).unwrap();
        match established(&up, &mut s, &mut buf, &mut held).await {
            Err(OpenError::Backend(e)) => {
                assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused)
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(&buf[..held], b"request", "held for the next backend");
        // The next backend gets the held bytes without another read.
        let live = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let SocketAddr::V4(a) = live.local_addr().unwrap() else {
            panic!()
        };
        let up = start_connect(a).unwrap();
        let (mut b, _) = live.accept().await.unwrap();
        assert_eq!(
            established(&up, &mut s, &mut buf, &mut held).await.unwrap(),
            7
        );
        let mut got = [0u8; 7];
        tokio::io::AsyncReadExt::read_exact(&mut b, &mut got)
            .await
            .unwrap();
        assert_eq!(&got, b"request");
    }

    #[tokio::test]
    async fn fin_seen_only_after_the_peer_closed() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (mut s, _) = l.accept().await.unwrap();
        c.write_all(b"data").await.unwrap();
        let mut b = [0u8; 16];
        assert_eq!(s.read(&mut b).await.unwrap(), 4);
        assert!(!fin_seen(&s), "the peer is still open");
        c.shutdown().await.unwrap();
        s.readable().await.unwrap();
        assert!(fin_seen(&s));
        assert_eq!(s.read(&mut b).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn responses_followed_by_the_backend_closing_arrive_whole() {
        // The backend answers and closes at once (HTTP with `Connection: close`): the answer
        // and the FIN reach the proxy together, which passes them on as one (MSG_MORE then
        // FIN); the client gets every byte and then EOF, 40 times over.
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let n = 40;
        let backend = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let SocketAddr::V4(baddr) = backend.local_addr().unwrap() else {
            panic!()
        };
        let answer: Vec<u8> = (0..300u32).map(|i| (i % 251) as u8).collect();
        let a = answer.clone();
        tokio::spawn(async move {
            for _ in 0..n {
                let (mut s, _) = backend.accept().await.unwrap();
                let mut req = [0u8; 4];
                s.read_exact(&mut req).await.unwrap();
                s.write_all(&a).await.unwrap();
                // Dropped: close(2) right after the answer.
            }
        });
        let (mut proxies, port) = front(&[baddr]);
        for i in 0..n {
            let mut c = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            c.write_all(b"GET ").await.unwrap();
            let mut got = Vec::new();
            tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut got))
                .await
                .unwrap()
                .unwrap();
            assert!(got == answer, "connection {i}: {} bytes", got.len());
        }
        proxies.stop_all();
    }

    #[tokio::test]
    async fn a_backend_that_speaks_first_is_carried() {
        // The client sends nothing until the backend greets it (SMTP, MySQL): the connect's
        // outcome comes from SO_ERROR, and the greeting, the answer and both half-closes
        // go through.
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let backend = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let SocketAddr::V4(baddr) = backend.local_addr().unwrap() else {
            panic!()
        };
        let served = tokio::spawn(async move {
            let (mut s, _) = backend.accept().await.unwrap();
            s.write_all(b"220 hello\r\n").await.unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            s.write_all(b"221 bye\r\n").await.unwrap();
            got
        });
        let (mut proxies, port) = front(&[baddr]);
        let mut c = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut greet = [0u8; 11];
        tokio::time::timeout(Duration::from_secs(5), c.read_exact(&mut greet))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&greet, b"220 hello\r\n");
        c.write_all(b"QUIT\r\n").await.unwrap();
        c.shutdown().await.unwrap();
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut rest))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rest, b"221 bye\r\n");
        assert_eq!(served.await.unwrap(), b"QUIT\r\n");
        proxies.stop_all();
    }

    #[tokio::test]
    async fn no_backend_answers_the_client_is_reset() {
        use tokio::io::AsyncReadExt;
        let (mut proxies, port) = front(&[refused(), refused()]);
        let mut c = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut b = [0u8; 1];
        let r = tokio::time::timeout(Duration::from_secs(5), c.read(&mut b))
            .await
            .unwrap();
        assert_eq!(
            r.unwrap_err().kind(),
            std::io::ErrorKind::ConnectionReset,
            "a reset, not a clean close"
        );
        proxies.stop_all();
    }

    #[tokio::test]
    async fn a_port_already_served_is_an_error_not_shared() {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let front = probe.local_addr().unwrap().port();
        drop(probe);
        let mut p = plan(Scheduler::Rr, &[1]);
        p.port = front;
        let d = Desired {
            vips: vec![],
            services: vec![p],
        };
        let mut first = Proxies::default();
        first.apply(&d).unwrap();
        let mut second = Proxies::default();
        let e = second.apply(&d).unwrap_err();
        assert!(e.contains(&format!("127.0.0.1:{front}")), "{e}");
        assert!(e.to_lowercase().contains("in use"), "{e}");
        // Something else (not lbd) on the port: the same.
        first.stop_all();
        drop(first);
        let other = std::net::TcpListener::bind(("127.0.0.1", front)).unwrap();
        assert!(Proxies::default().apply(&d).is_err());
        drop(other);
    }
}
