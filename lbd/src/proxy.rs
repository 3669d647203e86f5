//! The user-space data plane: a tokio TCP proxy per service on VIP:port, for hosts without
//! nftables and for least-connection scheduling. Listeners bind with IP_FREEBIND so they can
//! start before the VIP is on the interface. Connections are bounded (a semaphore), backend
//! connects time out, and the plan (targets, mode) is swapped without touching open connections.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use shared::metrics::Counter;
use shared::{Dataplane, Scheduler};
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

/// Active connection counters, by service name and backend address (shared with status and
/// metrics).
pub type Counters = Arc<Mutex<HashMap<(String, SocketAddrV4), Arc<AtomicU64>>>>;

/// Per-connection handles on one backend's metrics (looked up once per backend, not per
/// connection).
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
}

impl Picker {
    fn new(plan: ServicePlan) -> Picker {
        let w: Vec<u32> = plan.targets.iter().map(|t| t.weight).collect();
        let wrr = sched::wrr_sequence(&w);
        let maglev = if plan.scheduler == Scheduler::Sh {
            plan.sh_table()
        } else {
            Vec::new()
        };
        Picker { plan, wrr, maglev }
    }

    /// Index into `plan.targets`.
    fn pick(
        &self,
        src: Ipv4Addr,
        cursor: usize,
        active: &dyn Fn(SocketAddrV4) -> u64,
    ) -> Option<usize> {
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
                    let a = (active(self.plan.targets[i].addr) + 1)
                        * u64::from(self.plan.targets[best].weight);
                    let b = (active(self.plan.targets[best].addr) + 1)
                        * u64::from(self.plan.targets[i].weight);
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
}

impl Shared {
    fn active(&self, a: SocketAddrV4) -> u64 {
        let m = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        m.get(&a).map_or(0, |s| s.active.load(Ordering::Relaxed))
    }

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

    fn choose(&self, src: Ipv4Addr) -> Option<SocketAddrV4> {
        let picker = self
            .picker
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if picker.plan.mode == Mode::Withdrawn {
            return None;
        }
        let now = Instant::now();
        if let Some(t) = picker.plan.persistence {
            let aff = self.affinity.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((a, at)) = aff.get(&src)
                && now.duration_since(*at) < t
                && picker.plan.targets.iter().any(|x| x.addr == *a)
            {
                return Some(*a);
            }
        }
        let cursor = self.cursor.fetch_add(1, Ordering::Relaxed);
        let i = picker.pick(src, cursor, &|a| self.active(a))?;
        let addr = picker.plan.targets[i].addr;
        if let Some(t) = picker.plan.persistence {
            let mut aff = self.affinity.lock().unwrap_or_else(|e| e.into_inner());
            if aff.len() >= MAX_AFFINITY {
                aff.retain(|_, (_, at)| now.duration_since(*at) < t);
            }
            if aff.len() < MAX_AFFINITY {
                aff.insert(src, (addr, now));
            }
        }
        Some(addr)
    }
}

#[derive(Debug)]
struct Running {
    shared: Arc<Shared>,
    stop: CancellationToken,
}

/// The proxy listeners, one per proxied service, reconciled from the desired state.
#[derive(Debug, Default)]
pub struct Proxies {
    running: BTreeMap<(Ipv4Addr, u16), Running>,
    /// Active connections per backend (all services).
    pub counters: Counters,
    /// Connection and byte counters (registered by the daemon when metrics are on).
    pub metrics: ProxyMetrics,
}

impl Proxies {
    /// Makes the listeners match `d`: new services get a listener, changed ones a new plan,
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
            let picker = Arc::new(Picker::new(plan.clone()));
            if let Some(r) = self.running.get(&k) {
                *r.shared.picker.write().unwrap_or_else(|e| e.into_inner()) = picker;
                continue;
            }
            let listener = match bind(SocketAddrV4::new(k.0, k.1)) {
                Ok(l) => l,
                Err(e) => {
                    errors.push(format!("proxy {}:{}: {e}", k.0, k.1));
                    continue;
                }
            };
            tracing::info!(service = %plan.name, listen = %SocketAddrV4::new(k.0, k.1), "proxy listening");
            let shared = Arc::new(Shared {
                service: plan.name.clone(),
                picker: RwLock::new(picker),
                cursor: AtomicUsize::new(0),
                affinity: Mutex::new(HashMap::new()),
                counters: self.counters.clone(),
                metrics: self.metrics.clone(),
                stats: Mutex::new(HashMap::new()),
                conns: Semaphore::new(MAX_CONNS),
            });
            let stop = CancellationToken::new();
            tokio::spawn(serve(listener, shared.clone(), stop.clone()));
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

fn bind(addr: SocketAddrV4) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.set_freebind_v4(true)?;
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::V4(addr).into())?;
    s.listen(1024)?;
    TcpListener::from_std(s.into())
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

async fn carry(client: TcpStream, peer: SocketAddr, shared: &Shared) {
    let src = match peer {
        SocketAddr::V4(a) => *a.ip(),
        SocketAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
    };
    let _ = client.set_nodelay(true);
    // Two tries: a backend that just died is skipped once before the checker notices.
    let mut tried = None;
    for _ in 0..2 {
        let Some(addr) = shared.choose(src) else {
            reset(&client);
            return;
        };
        if tried == Some(addr) {
            continue;
        }
        tried = Some(addr);
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(upstream)) => {
                let _ = upstream.set_nodelay(true);
                let stats = shared.stats(addr);
                stats.active.fetch_add(1, Ordering::Relaxed);
                stats.connections.inc();
                splice_idle(client, upstream, IDLE_TIMEOUT, stats.clone()).await;
                stats.active.fetch_sub(1, Ordering::Relaxed);
                return;
            }
            Ok(Err(e)) => tracing::debug!(backend = %addr, error = %e, "backend connect failed"),
            Err(_) => tracing::debug!(backend = %addr, "backend connect timed out"),
        }
    }
    reset(&client);
}

/// Buffer per direction of a carried connection (HAProxy's default buffer size).
const BUF: usize = 16 * 1024;

/// Copies one direction; half-closes the writer at EOF; notes activity in `last` (ms since
/// `start`).
async fn pump<R, W>(
    mut r: R,
    mut w: W,
    buf: &mut [u8],
    last: &AtomicU64,
    start: Instant,
    bytes: &Counter,
) -> std::io::Result<()>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let n = r.read(buf).await?;
        if n == 0 {
            return w.shutdown().await;
        }
        w.write_all(&buf[..n]).await?;
        bytes.inc_by(n as u64);
        last.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

/// Carries bytes both ways until both sides close, either side fails, or nothing moves for
/// `idle`. Both directions run in this one task on borrowed halves, with one allocation for
/// both buffers.
async fn splice_idle(
    mut client: TcpStream,
    mut upstream: TcpStream,
    idle: Duration,
    stats: BackendStats,
) {
    let start = Instant::now();
    let last = AtomicU64::new(0);
    let mut bufs = vec![0u8; 2 * BUF];
    let (b1, b2) = bufs.split_at_mut(BUF);
    let (cr, cw) = client.split();
    let (ur, uw) = upstream.split();
    let both = async {
        let _ = tokio::try_join!(
            pump(cr, uw, b1, &last, start, &stats.to_backend),
            pump(ur, cw, b2, &last, start, &stats.from_backend)
        );
    };
    let watchdog = async {
        loop {
            tokio::time::sleep(idle / 4).await;
            let quiet = start
                .elapsed()
                .saturating_sub(Duration::from_millis(last.load(Ordering::Relaxed)));
            if quiet >= idle {
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
    use shared::Protocol;

    fn plan(s: Scheduler, weights: &[u32]) -> ServicePlan {
        ServicePlan {
            index: 0,
            name: "t".into(),
            vip: Ipv4Addr::LOCALHOST,
            port: 1,
            protocol: Protocol::Tcp,
            scheduler: s,
            dataplane: Dataplane::Proxy,
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
        }
    }

    #[test]
    fn rr_and_wrr() {
        let p = Picker::new(plan(Scheduler::Rr, &[1, 5]));
        let none = |_| 0;
        let v: Vec<usize> = (0..4)
            .map(|c| p.pick(Ipv4Addr::LOCALHOST, c, &none).unwrap())
            .collect();
        assert_eq!(v, vec![0, 1, 0, 1]);
        let p = Picker::new(plan(Scheduler::Wrr, &[2, 1]));
        let v: Vec<usize> = (0..6)
            .map(|c| p.pick(Ipv4Addr::LOCALHOST, c, &none).unwrap())
            .collect();
        assert_eq!(v.iter().filter(|x| **x == 0).count(), 4);
    }

    #[test]
    fn lc_prefers_the_least_loaded_per_weight() {
        let p = Picker::new(plan(Scheduler::Lc, &[1, 1, 2]));
        let load = |a: SocketAddrV4| match a.ip().octets()[3] {
            0 => 3,
            1 => 1,
            _ => 4,
        };
        // (3+1)/1=4, (1+1)/1=2, (4+1)/2=2.5 -> backend 1.
        assert_eq!(p.pick(Ipv4Addr::LOCALHOST, 0, &load), Some(1));
    }

    #[test]
    fn sh_is_sticky_per_source() {
        let p = Picker::new(plan(Scheduler::Sh, &[1, 1]));
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
        let all = Picker::new(full.clone());
        let none = |_| 0;
        let srcs: Vec<Ipv4Addr> = (0..3000u32)
            .map(|i| Ipv4Addr::from(0x0a00_0000 + i * 7919))
            .collect();
        let at = |p: &Picker, s: Ipv4Addr| p.plan.targets[p.pick(s, 0, &none).unwrap()].addr;
        for gone in 0..3 {
            let mut p = full.clone();
            p.targets.remove(gone);
            let less = Picker::new(p);
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

    #[tokio::test]
    async fn idle_connections_are_closed() {
        use tokio::io::AsyncReadExt;
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = l.local_addr().unwrap();
        let c1 = TcpStream::connect(a).await.unwrap();
        let (s1, _) = l.accept().await.unwrap();
        let mut c2 = TcpStream::connect(a).await.unwrap();
        let (s2, _) = l.accept().await.unwrap();
        let t = tokio::spawn(splice_idle(
            s1,
            s2,
            Duration::from_millis(200),
            BackendStats::default(),
        ));
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
}
