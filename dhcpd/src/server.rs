//! The packet loop: receive tasks (one per interface) decode and queue requests; one core task
//! owns the lease table and decides; a writer thread commits lease changes in groups and sends
//! each ACK only after the commit that holds its lease.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dhcproto::v4::Message;
use hostfile::DhcpView;
use ipnet::Ipv4Net;
use runtime::metrics::{Counter, Family, Gauge, Histogram, Registry, exponential_buckets};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::decide::{self, Dns, Reply, Rx};
use crate::lease::{Change, LeaseState, LeaseTable};
use crate::store::LeaseStore;
use crate::{io, ping};

/// REQUEST, DECLINE, RELEASE, INFORM waiting for the core task (they finish exchanges already
/// under way); beyond this the receive tasks drop (and count).
const QUEUE: usize = 4096;
/// DISCOVER and BOOTP requests waiting for the core task. Admission (below) bounds the OFFERs
/// nobody takes up; this queue only has to ride out the core task waiting on the lease writer (a
/// slow fsync): 2,048 is ~70 ms at 30,000 DISCOVERs/s (512 overflowed there: 0.14% of DISCOVERs
/// lost, counted in `dhcpd_overload_drops`, with the admission limit never reached).
const NEW_QUEUE: usize = 2048;
/// Most commits grouped in one transaction.
const GROUP: usize = 4096;
/// Least time between the starts of two lease transactions (group commit pacing).
const COMMIT_INTERVAL: Duration = Duration::from_millis(10);
/// Concurrent ping checks; beyond this addresses are offered unchecked.
const PINGS: usize = 64;

/// Counters (exported as Prometheus metrics when `[dhcp] metrics` is set).
#[derive(Debug)]
pub struct Stats {
    /// Datagrams received.
    pub received: Counter,
    /// Malformed datagrams dropped.
    pub bad: Counter,
    /// Requests dropped because the server was saturated.
    pub overload: Counter,
    /// Replies sent.
    pub sent: Counter,
    /// Requests answered with silence.
    pub silent: Counter,
    /// Transactions committed.
    pub commits: Counter,
    /// Failed commits (their replies were not sent).
    pub commit_errors: Counter,
    /// Leases bound now.
    pub bound: Gauge,
    /// Requests received, by DHCP message type.
    pub requests: Family<Vec<(String, String)>, Counter>,
    /// DECLINEs received.
    pub declines: Counter,
    /// Addresses that answered the ping check (put on probation).
    pub conflicts: Counter,
    /// Lease store commit latency.
    pub commit_seconds: Histogram,
    /// How long the oldest change of the last commit waited, from reaching the writer to being
    /// durable (pacing, queueing and the transaction).
    pub commit_wait_last: Gauge<f64, AtomicU64>,
    /// The longest such wait since the start.
    pub commit_wait_max: Gauge<f64, AtomicU64>,
    /// Leases in the table, by state.
    pub leases: Family<Vec<(String, String)>, Gauge>,
    /// Bound leases per dynamic range.
    pub pool_used: Family<Vec<(String, String)>, Gauge>,
    /// Addresses per dynamic range.
    pub pool_size: Family<Vec<(String, String)>, Gauge>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            received: Counter::default(),
            bad: Counter::default(),
            overload: Counter::default(),
            sent: Counter::default(),
            silent: Counter::default(),
            commits: Counter::default(),
            commit_errors: Counter::default(),
            bound: Gauge::default(),
            requests: Family::default(),
            declines: Counter::default(),
            conflicts: Counter::default(),
            commit_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            commit_wait_last: Gauge::default(),
            commit_wait_max: Gauge::default(),
            leases: Family::default(),
            pool_used: Family::default(),
            pool_size: Family::default(),
        }
    }
}

impl Stats {
    /// Refreshes the gauges that describe the lease table (every few seconds, off the packet path).
    fn census(&self, table: &LeaseTable, view: &DhcpView, t: u64) {
        // Every state, so a state that emptied reads 0 rather than its last count.
        let mut by_state: BTreeMap<&'static str, i64> = [
            LeaseState::Offered,
            LeaseState::Bound,
            LeaseState::Released,
            LeaseState::Expired,
            LeaseState::Declined,
        ]
        .into_iter()
        .map(|s| (s.as_str(), 0))
        .collect();
        let mut bound = Vec::new();
        for l in table.iter() {
            *by_state.entry(l.state.as_str()).or_default() += 1;
            if l.state == LeaseState::Bound && l.expires > t {
                bound.push(l.ip);
            }
        }
        for (state, n) in by_state {
            self.leases
                .get_or_create(&vec![("state".into(), state.into())])
                .set(n);
        }
        self.bound.set(bound.len() as i64);
        for sn in &view.subnets {
            for p in &sn.pools {
                let label = vec![("range".to_owned(), p.range.to_string())];
                let used = bound.iter().filter(|ip| p.range.contains(**ip)).count();
                self.pool_used.get_or_create(&label).set(used as i64);
                self.pool_size
                    .get_or_create(&label)
                    .set(p.range.len() as i64);
            }
        }
    }
}

impl Stats {
    /// A registry holding these metrics.
    pub fn registry(&self) -> Registry {
        let mut r = Registry::with_prefix("dhcpd");
        r.register(
            "received_packets",
            "Datagrams received",
            self.received.clone(),
        );
        r.register(
            "bad_packets",
            "Malformed requests dropped",
            self.bad.clone(),
        );
        r.register(
            "overload_drops",
            "Requests dropped while saturated",
            self.overload.clone(),
        );
        r.register("sent_replies", "Replies sent", self.sent.clone());
        r.register(
            "silent_requests",
            "Requests not answered",
            self.silent.clone(),
        );
        r.register(
            "lease_commits",
            "Lease store transactions",
            self.commits.clone(),
        );
        r.register(
            "lease_commit_errors",
            "Failed lease store transactions",
            self.commit_errors.clone(),
        );
        r.register("bound_leases", "Leases bound", self.bound.clone());
        r.register(
            "requests",
            "Requests received by DHCP message type",
            self.requests.clone(),
        );
        r.register("declines", "DECLINEs received", self.declines.clone());
        r.register(
            "conflicts",
            "Addresses that answered the ping check",
            self.conflicts.clone(),
        );
        r.register(
            "commit_seconds",
            "Lease store commit latency",
            self.commit_seconds.clone(),
        );
        r.register(
            "lease_commit_wait_last_seconds",
            "Wait of the oldest change of the last commit, from reaching the writer to durable",
            self.commit_wait_last.clone(),
        );
        r.register(
            "lease_commit_wait_max_seconds",
            "Longest wait of a change from reaching the writer to durable, since the start",
            self.commit_wait_max.clone(),
        );
        r.register(
            "leases",
            "Leases in the table by state",
            self.leases.clone(),
        );
        r.register(
            "pool_used_addresses",
            "Bound leases per dynamic range",
            self.pool_used.clone(),
        );
        r.register(
            "pool_size_addresses",
            "Addresses per dynamic range",
            self.pool_size.clone(),
        );
        r
    }
}

/// A served interface.
#[derive(Debug)]
pub struct Iface {
    /// Name.
    pub name: String,
    /// Its IPv4 addresses.
    pub addrs: Vec<Ipv4Net>,
    /// The socket, for sending from the writer thread.
    pub sock: UdpSocket,
}

enum Event {
    Packet {
        iface: usize,
        msg: Box<Message>,
    },
    Probed {
        iface: usize,
        ip: Ipv4Addr,
        alive: bool,
        reply: Reply,
        /// With a shared store: the offer to record before the reply leaves.
        commit: Option<Box<Commit>>,
    },
}

/// What a commit does, for when the shared database is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Hands an address to a client that does not hold it: refused while offline.
    Alloc,
    /// Extends a lease the client holds: answered and queued while offline.
    Renewal,
    /// Anything else (release, decline, expiry): queued while offline.
    Other,
}

/// The request behind an allocation, to decide again when the database refuses it.
struct Retry {
    iface: usize,
    msg: Box<Message>,
    tries: u8,
}

struct Commit {
    changes: Vec<Change>,
    reply: Option<(usize, Reply)>,
    dns: Vec<Dns>,
    kind: Kind,
    /// The table's records before `changes`, to put back when the commit is refused.
    undo: Vec<Change>,
    retry: Option<Retry>,
    /// When it was handed to the writer.
    queued: Instant,
}

impl Commit {
    fn plain(changes: Vec<Change>, dns: Vec<Dns>) -> Self {
        Commit {
            changes,
            reply: None,
            dns,
            kind: Kind::Other,
            undo: Vec::new(),
            retry: None,
            queued: Instant::now(),
        }
    }
}

enum ToWriter {
    Commit(Box<Commit>),
    /// Fetch what other servers changed (shared store), reconnecting when offline.
    Refresh,
}

/// From the writer thread to the core task.
enum Back {
    /// The database refused an allocation (or could not be reached): these are the records to
    /// believe; decide again when `retry` is set.
    Refused {
        current: Vec<Change>,
        retry: Option<Retry>,
    },
    /// Records other servers changed.
    Changed(Vec<crate::lease::Lease>),
}

/// Commits waiting for a shared store beyond which new exchanges are dropped.
const SHARED_BACKLOG: usize = 128;

/// Tries to decide again after the database refused an address.
const RETRIES: u8 = 4;

/// Unix seconds now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Logs at most one warning a second, with a count of those suppressed.
#[derive(Debug)]
struct RateLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLog {
    fn warn(&mut self, f: impl FnOnce(u64)) {
        let t = Instant::now();
        if self
            .last
            .is_none_or(|l| t.duration_since(l) >= Duration::from_secs(1))
        {
            f(self.suppressed);
            self.suppressed = 0;
            self.last = Some(t);
        } else {
            self.suppressed += 1;
        }
    }
}

/// Which interfaces to serve: those named in the file, else each holding an address in a subnet
/// (and every IPv4 interface when some subnet is only reachable through relays).
pub fn choose_ifaces(view: &DhcpView) -> anyhow::Result<Vec<(String, Vec<Ipv4Net>)>> {
    let all = runtime::netif::local_ipv4()?;
    let mut by_name: BTreeMap<String, Vec<Ipv4Net>> = BTreeMap::new();
    for a in &all {
        by_name.entry(a.name.clone()).or_default().push(a.net);
    }
    let mut names: Vec<String> = view.interfaces.clone();
    if names.is_empty() {
        let mut remote = false;
        for s in &view.subnets {
            match (&s.interface, runtime::netif::find_in(&all, s.network)) {
                (Some(n), _) => names.push(n.clone()),
                (None, Some(a)) => names.push(a.name.clone()),
                (None, None) => remote = true,
            }
        }
        if remote {
            names.extend(by_name.keys().filter(|n| *n != "lo").cloned());
        }
    }
    names.sort();
    names.dedup();
    if names.is_empty() {
        anyhow::bail!(
            "no interface to serve: no local address lies in any subnet; name them with [dhcp] interfaces = [..]"
        );
    }
    Ok(names
        .into_iter()
        .map(|n| {
            let a = by_name.get(&n).cloned().unwrap_or_default();
            (n, a)
        })
        .collect())
}

/// Everything [`serve`] needs.
#[derive(Debug)]
pub struct Setup {
    /// Bound interfaces.
    pub ifaces: Vec<Iface>,
    /// The lease store.
    pub store: Box<dyn LeaseStore>,
    /// The server port (67).
    pub port: u16,
    /// Counters.
    pub stats: Arc<Stats>,
    /// With a shared store: where changes acknowledged during an outage wait (local disk).
    pub spool: Option<crate::store::Spool>,
}

impl std::fmt::Debug for dyn LeaseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LeaseStore")
    }
}

/// Runs the server until `shutdown`. `view` carries reloads; leases survive them.
fn now() -> u64 {
    unix_now()
}

/// Runs the server until `shutdown`. `view` carries reloads; leases survive them.
pub async fn serve(
    setup: Setup,
    mut view: watch::Receiver<Arc<DhcpView>>,
    shutdown: CancellationToken,
    dns_tx: Option<mpsc::Sender<Dns>>,
) -> anyhow::Result<()> {
    let Setup {
        ifaces,
        store,
        port,
        stats,
        spool,
    } = setup;
    let shared = store.shared();
    // A PostgreSQL client runs its own runtime: use it off this one.
    let (store, leases) = tokio::task::spawn_blocking(move || {
        let mut store = store;
        let l = store.load();
        (store, l)
    })
    .await?;
    let leases = leases?;
    tracing::info!(count = leases.len(), "leases loaded");
    let table = LeaseTable::from_leases(leases);
    let ifaces = Arc::new(ifaces);
    let (ev_tx, mut ev_rx) = mpsc::channel::<Event>(QUEUE);
    let (new_tx, mut new_rx) = mpsc::channel::<Event>(NEW_QUEUE);
    let (wr_tx, wr_rx) = mpsc::channel::<ToWriter>(GROUP);
    let (back_tx, mut back_rx) = mpsc::unbounded_channel::<Back>();
    let offline = Arc::new(AtomicBool::new(false));
    let admit_limit = Arc::new(AtomicU32::new(view.borrow().discover_backlog));

    // One receive task for every socket: it drains each socket to the end per wake-up, and under
    // load rests a moment between rounds so that one wake-up brings in a batch (interrupt
    // moderation: the thread is not woken per datagram). An idle server blocks in epoll as usual.
    let mut tasks = tokio::task::JoinSet::new();
    {
        let mut socks = Vec::new();
        for ifc in ifaces.iter() {
            socks.push((
                tokio::net::UdpSocket::from_std(ifc.sock.try_clone()?)?,
                ifc.name.clone(),
            ));
        }
        let rx = Receiver {
            socks,
            tx: ev_tx.clone(),
            new_tx: new_tx.clone(),
            stats: stats.clone(),
            log: RateLog {
                last: None,
                suppressed: 0,
            },
            admission: Admission::new(std::time::Instant::now()),
            admit_limit: admit_limit.clone(),
        };
        tasks.spawn(rx.run());
    }

    // Writer thread: group commit, then send.
    let writer = {
        let w = Writer {
            ifaces: ifaces.clone(),
            port,
            stats: stats.clone(),
            dns_tx,
            back: back_tx,
            offline: offline.clone(),
            backlog: Vec::new(),
            spool,
            last_try: None,
            refused_log: RateLog {
                last: None,
                suppressed: 0,
            },
            out: Vec::new(),
        };
        std::thread::Builder::new()
            .name("dhcpd-store".into())
            .spawn(move || w.run(store, wr_rx))?
    };

    let mut core = Core {
        cfg: Config::new(view.borrow_and_update().clone()),
        table,
        ifaces,
        port,
        stats: stats.clone(),
        wr_tx,
        ev_tx: ev_tx.clone(),
        pings: Arc::new(tokio::sync::Semaphore::new(PINGS)),
        log: RateLog {
            last: None,
            suppressed: 0,
        },
        offline_log: RateLog {
            last: None,
            suppressed: 0,
        },
        shared,
        offline,
        out: Vec::new(),
    };
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let mut refresh = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            r = view.changed() => {
                if r.is_err() { break; }
                core.cfg = Config::new(view.borrow_and_update().clone());
                admit_limit.store(core.cfg.view.discover_backlog, Ordering::Relaxed);
                tracing::info!(leases = core.table.len(), discover_backlog = core.cfg.view.discover_backlog, "host table reloaded; leases kept");
            }
            _ = tick.tick() => {
                let t = now();
                stats.census(&core.table, &core.cfg.view, t);
                let d = decide::expire(&core.table, t, 10_000);
                if !d.changes.is_empty() {
                    for c in &d.changes { core.table.apply(c); }
                    tracing::debug!(count = d.changes.len(), "leases expired");
                    if core.wr_tx.send(ToWriter::Commit(Box::new(Commit::plain(d.changes, d.dns)))).await.is_err() { break; }
                }
            }
            _ = refresh.tick(), if shared => {
                // Never wait for the writer: a refresh can be skipped.
                let _ = core.wr_tx.try_send(ToWriter::Refresh);
            }
            b = back_rx.recv() => {
                let Some(b) = b else { break };
                match b {
                    Back::Changed(rows) => {
                        for l in rows { core.table.apply(&Change::Put(l)); }
                    }
                    Back::Refused { current, retry } => {
                        for c in &current { core.table.apply(c); }
                        if let Some(r) = retry && r.tries < RETRIES {
                            tracing::debug!(tries = r.tries, "address taken by another server: choosing again");
                            if !core.packet(r.iface, r.msg, r.tries + 1).await { break; }
                            core.flush();
                        }
                    }
                }
            }
            // Exchanges under way first.
            ev = async {
                tokio::select! {
                    biased;
                    e = ev_rx.recv() => e,
                    e = new_rx.recv() => e,
                }
            } => {
                let Some(ev) = ev else { break };
                match ev {
                    Event::Packet { iface, msg } => {
                        if !core.packet(iface, msg, 0).await { break; }
                        if core.out.len() >= BURST || (ev_rx.is_empty() && new_rx.is_empty()) {
                            core.flush();
                        }
                    }
                    Event::Probed { iface, ip, alive, reply, commit } => {
                        if alive {
                            tracing::warn!(%ip, "address answers ping: on probation, not offered");
                            core.stats.conflicts.inc();
                            let c = Change::Put(decide::probation(ip, now(), core.cfg.view.decline_probation.as_secs()));
                            core.table.apply(&c);
                            if core.wr_tx.send(ToWriter::Commit(Box::new(Commit::plain(vec![c], Vec::new())))).await.is_err() { break; }
                        } else if let Some(c) = commit {
                            if core.wr_tx.send(ToWriter::Commit(c)).await.is_err() { break; }
                        } else {
                            send_now(&core.ifaces[iface], &reply, port, &stats);
                        }
                    }
                }
            }
        }
    }
    tasks.abort_all();
    drop(core);
    let _ = tokio::task::spawn_blocking(move || writer.join()).await;
    tracing::info!(
        received = stats.received.get(),
        sent = stats.sent.get(),
        bad = stats.bad.get(),
        overload = stats.overload.get(),
        commits = stats.commits.get(),
        "packet loop stopped"
    );
    Ok(())
}

/// Datagrams one receive round takes from one socket before moving on.
const BURST: usize = 256;
/// Rest between receive rounds while datagrams keep coming (bounds the wake-ups per second).
const COALESCE: Duration = Duration::from_millis(1);

/// The receive side: decodes datagrams and queues them for the core task.
struct Receiver {
    socks: Vec<(tokio::net::UdpSocket, String)>,
    tx: mpsc::Sender<Event>,
    new_tx: mpsc::Sender<Event>,
    stats: Arc<Stats>,
    log: RateLog,
    admission: Admission,
    /// `[dhcp] discover-backlog`, as the core task last saw it (reloads change it).
    admit_limit: Arc<AtomicU32>,
}

/// How long an OFFER counts as waiting for its REQUEST, in `ADMIT_SLOTS` slots.
const ADMIT_SPAN: Duration = Duration::from_secs(1);
const ADMIT_SLOTS: usize = 10;
/// The limit grows with the REQUEST rate: outstanding OFFERs worth 1/`ADMIT_RTT_SHARE` of the
/// last `ADMIT_SPAN`'s REQUESTs (50 ms of round trip) are always allowed, so a busy relay whose
/// DISCOVER-to-REQUEST round trip stretches to tens of milliseconds is not throttled at a rate it
/// keeps up with (30,000 exchanges/s with 20 ms round trips keep ~600 OFFERs outstanding).
const ADMIT_RTT_SHARE: u32 = 20;

/// Admission of new exchanges (DISCOVER, BOOTP) under overload. Answering a DISCOVER is cheap for
/// dhcpd, so when new exchanges come faster than the clients (or the relay in front of them) can
/// follow up, its OFFERs themselves become the overload: they crowd the relay's socket, and the
/// ACKs of exchanges already under way are lost beside them. The signal is the REQUESTs: over the
/// last `ADMIT_SPAN`, new exchanges admitted minus REQUESTs received stays below the limit
/// (`[dhcp] discover-backlog`, default 256: OFFERs the clients did not take up, plus those still
/// on their way, ~60 at 6,000/s with 10 ms round trips), or 50 ms worth of the REQUEST rate if
/// that is more; beyond that DISCOVERs are dropped before decoding (clients retry). At any rate the clients keep up with, nothing is refused and there is
/// no ramp-up. A limit of 0 admits everything.
#[derive(Debug)]
struct Admission {
    /// Start of the current slot.
    start: std::time::Instant,
    cur: usize,
    admitted: [u32; ADMIT_SLOTS],
    requests: [u32; ADMIT_SLOTS],
}

impl Admission {
    fn new(now: std::time::Instant) -> Self {
        Admission {
            start: now,
            cur: 0,
            admitted: [0; ADMIT_SLOTS],
            requests: [0; ADMIT_SLOTS],
        }
    }

    fn advance(&mut self, now: std::time::Instant) {
        let slot = ADMIT_SPAN / ADMIT_SLOTS as u32;
        let mut since = now.saturating_duration_since(self.start);
        let mut n = 0;
        while since >= slot && n < ADMIT_SLOTS {
            self.cur = (self.cur + 1) % ADMIT_SLOTS;
            self.admitted[self.cur] = 0;
            self.requests[self.cur] = 0;
            since -= slot;
            n += 1;
        }
        if n == ADMIT_SLOTS {
            self.start = now;
        } else {
            self.start = now - since;
        }
    }

    /// A REQUEST came in at `now`.
    fn request(&mut self, now: std::time::Instant) {
        self.advance(now);
        self.requests[self.cur] = self.requests[self.cur].saturating_add(1);
    }

    /// Whether a new exchange arriving at `now` is served under `limit` (0: no limit).
    fn admit(&mut self, now: std::time::Instant, limit: u32) -> bool {
        self.advance(now);
        if limit > 0 {
            let admitted: u32 = self.admitted.iter().sum();
            let requests: u32 = self.requests.iter().sum();
            if admitted.saturating_sub(requests) >= limit.max(requests / ADMIT_RTT_SHARE) {
                return false;
            }
        }
        self.admitted[self.cur] = self.admitted[self.cur].saturating_add(1);
        true
    }
}

impl Receiver {
    async fn run(mut self) {
        let mut buf = vec![0u8; 4096];
        loop {
            let mut got = 0;
            for i in 0..self.socks.len() {
                for _ in 0..BURST {
                    match self.socks[i].0.try_recv_from(&mut buf) {
                        Ok((n, src)) => {
                            got += 1;
                            self.datagram(i, &buf[..n], src);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            tracing::warn!(iface = %self.socks[i].1, error = %e, "receive failed");
                            break;
                        }
                    }
                }
            }
            if got > 0 {
                // Let the core task answer this batch. When it has caught up, rest briefly
                // (blocking this thread: datagrams arriving meanwhile wait in the socket instead
                // of waking it); while a backlog remains, go straight back to reading, so that
                // the socket never overflows and overload is shed here, by type.
                tokio::task::yield_now().await;
                if self.tx.capacity() == self.tx.max_capacity()
                    && self.new_tx.capacity() == self.new_tx.max_capacity()
                {
                    std::thread::sleep(COALESCE);
                }
                continue;
            }
            std::future::poll_fn(|cx| {
                for (s, _) in &self.socks {
                    if s.poll_recv_ready(cx).is_ready() {
                        return std::task::Poll::Ready(());
                    }
                }
                std::task::Poll::Pending
            })
            .await;
        }
    }

    fn datagram(&mut self, i: usize, b: &[u8], src: std::net::SocketAddr) {
        self.stats.received.inc();
        // New exchanges queue apart; when their queue is full they are dropped before the cost
        // of decoding.
        let starts_exchange = matches!(decide::peek_type(b), None | Some(1));
        let queue = if starts_exchange {
            &self.new_tx
        } else {
            &self.tx
        };
        if starts_exchange {
            let limit = self.admit_limit.load(Ordering::Relaxed);
            if !self.admission.admit(std::time::Instant::now(), limit) {
                self.stats.overload.inc();
                return;
            }
        } else if decide::peek_type(b) == Some(3) {
            self.admission.request(std::time::Instant::now());
        }
        let Ok(permit) = queue.try_reserve() else {
            self.stats.overload.inc();
            return;
        };
        match decide::parse(b) {
            Err(e) => {
                self.stats.bad.inc();
                let name = &self.socks[i].1;
                self.log.warn(|sup| {
                    tracing::warn!(iface = %name, %src, len = b.len(), suppressed = sup, "dropped bad packet: {e}")
                });
            }
            Ok(msg) => permit.send(Event::Packet {
                iface: i,
                msg: Box::new(msg),
            }),
        }
    }
}

/// The core task's state: configuration, lease table, and the way to the writer.
struct Core {
    cfg: Config,
    table: LeaseTable,
    ifaces: Arc<Vec<Iface>>,
    port: u16,
    stats: Arc<Stats>,
    wr_tx: mpsc::Sender<ToWriter>,
    ev_tx: mpsc::Sender<Event>,
    pings: Arc<tokio::sync::Semaphore>,
    log: RateLog,
    offline_log: RateLog,
    shared: bool,
    offline: Arc<AtomicBool>,
    /// Replies that need no commit (OFFERs), sent together once the queues are empty.
    out: Vec<(usize, Reply)>,
}

impl Core {
    fn flush(&mut self) {
        send_batch(&self.ifaces, &mut self.out, self.port, &self.stats);
    }

    /// Decides about one request and acts on it; false when the writer is gone.
    async fn packet(&mut self, iface: usize, msg: Box<Message>, tries: u8) -> bool {
        // A shared store records offers: when its commits fall behind, new exchanges wait so
        // long that clients give up on them anyway. Drop DISCOVERs then, so that exchanges
        // under way (REQUESTs) complete.
        if self.shared
            && tries == 0
            && GROUP - self.wr_tx.capacity() > SHARED_BACKLOG
            && matches!(
                msg.opts().msg_type(),
                None | Some(dhcproto::v4::MessageType::Discover)
            )
        {
            self.stats.overload.inc();
            return true;
        }
        if tries == 0 {
            let kind = msg.opts().msg_type().map_or_else(
                || "bootp".to_owned(),
                |t| format!("{t:?}").to_ascii_lowercase(),
            );
            if kind == "decline" {
                self.stats.declines.inc();
            }
            self.stats
                .requests
                .get_or_create(&vec![("type".to_owned(), kind)])
                .inc();
        }
        let ifc = &self.ifaces[iface];
        let offline = self.shared && self.offline.load(Ordering::Relaxed);
        let rx = Rx {
            iface: &ifc.name,
            addrs: &ifc.addrs,
            now: now(),
            offline,
        };
        let d = decide::handle(&self.cfg, &self.table, &msg, &rx);
        if d.bad {
            self.stats.bad.inc();
        }
        if let Some(why) = d.silent {
            if d.reply.is_none() {
                self.stats.silent.inc();
            }
            let mac = crate::lease::hex_colon(msg.chaddr());
            if d.bad {
                self.log.warn(|sup| tracing::warn!(iface = %ifc.name, %mac, suppressed = sup, "dropped request: {why}"));
            } else if why == decide::OFFLINE {
                self.offline_log
                    .warn(|sup| tracing::warn!(%mac, suppressed = sup, "{why}"));
            } else {
                tracing::debug!(iface = %ifc.name, %mac, "{why}");
            }
        }
        // What the commit does, and what to put back if it is refused.
        let mut kind = Kind::Other;
        let mut undo = Vec::new();
        for c in &d.changes {
            let ip = c.ip();
            let prev = self.table.get(ip);
            if let Change::Put(l) = c
                && matches!(l.state, LeaseState::Bound | LeaseState::Offered)
            {
                let renewal = l.state == LeaseState::Bound
                    && prev.is_some_and(|p| {
                        p.client == l.client && p.state == LeaseState::Bound && p.holds(rx.now)
                    });
                kind = if renewal { Kind::Renewal } else { Kind::Alloc };
            }
            if self.shared {
                undo.push(prev.map_or(Change::Del(ip), |p| Change::Put(p.clone())));
            }
        }
        for c in &d.changes {
            self.table.apply(c);
        }
        let shared = self.shared;
        let persistent: Vec<Change> = d
            .changes
            .into_iter()
            .filter(|c| shared || c.persistent())
            .collect();
        let nothing = persistent.is_empty() && d.dns.is_empty();
        let retry = (shared && kind == Kind::Alloc).then_some(Retry { iface, msg, tries });
        let commit = |reply: Option<Reply>| Commit {
            changes: persistent,
            reply: reply.map(|r| (iface, r)),
            dns: d.dns,
            kind,
            undo,
            retry,
            queued: Instant::now(),
        };
        match (d.reply, d.probe) {
            (Some(reply), Some(ip)) => match self.pings.clone().try_acquire_owned() {
                Ok(permit) => {
                    let tx = self.ev_tx.clone();
                    let timeout = self.cfg.view.ping_timeout;
                    let commit = shared.then(|| Box::new(commit(Some(reply.clone()))));
                    tokio::task::spawn_blocking(move || {
                        let alive = ping::probe(ip, timeout).unwrap_or_else(|e| {
                            tracing::debug!(%ip, error = %e, "ping check failed");
                            false
                        });
                        drop(permit);
                        let _ = tx.blocking_send(Event::Probed {
                            iface,
                            ip,
                            alive,
                            reply,
                            commit,
                        });
                    });
                    true
                }
                Err(_) if shared => self
                    .wr_tx
                    .send(ToWriter::Commit(Box::new(commit(Some(reply)))))
                    .await
                    .is_ok(),
                Err(_) => {
                    self.out.push((iface, reply));
                    true
                }
            },
            (reply, _) => {
                if nothing {
                    if let Some(r) = reply {
                        self.out.push((iface, r));
                    }
                    true
                } else {
                    if self.wr_tx.capacity() == 0 {
                        // About to wait for the writer: what is answered leaves first.
                        self.flush();
                    }
                    self.wr_tx
                        .send(ToWriter::Commit(Box::new(commit(reply))))
                        .await
                        .is_ok()
                }
            }
        }
    }
}

/// Sends (and empties) `out`, a `sendmmsg` per interface.
fn send_batch(ifaces: &[Iface], out: &mut Vec<(usize, Reply)>, port: u16, stats: &Stats) {
    if out.is_empty() {
        return;
    }
    out.sort_by_key(|(i, _)| *i);
    for group in out.chunk_by(|a, b| a.0 == b.0) {
        let ifc = &ifaces[group[0].0];
        let items: Vec<(decide::Dest, &[u8])> = group
            .iter()
            .map(|(_, r)| (r.dest, r.bytes.as_slice()))
            .collect();
        let sent = io::deliver_many(&ifc.sock, &ifc.name, &items, port);
        for ((_, r), res) in group.iter().zip(sent) {
            match res {
                Ok(to) => {
                    stats.sent.inc();
                    tracing::debug!(iface = %ifc.name, %to, yiaddr = %r.yiaddr, "sent {}", r.kind);
                }
                Err(e) => {
                    tracing::warn!(iface = %ifc.name, dest = ?r.dest, error = %e, "cannot send {}", r.kind)
                }
            }
        }
    }
    out.clear();
}

fn send_now(ifc: &Iface, r: &Reply, port: u16, stats: &Stats) {
    match io::deliver(&ifc.sock, &ifc.name, r.dest, &r.bytes, port) {
        Ok(to) => {
            stats.sent.inc();
            tracing::debug!(iface = %ifc.name, %to, yiaddr = %r.yiaddr, "sent {}", r.kind);
        }
        Err(e) => {
            tracing::warn!(iface = %ifc.name, dest = ?r.dest, error = %e, "cannot send {}", r.kind)
        }
    }
}

struct Writer {
    ifaces: Arc<Vec<Iface>>,
    port: u16,
    stats: Arc<Stats>,
    dns_tx: Option<mpsc::Sender<Dns>>,
    back: mpsc::UnboundedSender<Back>,
    offline: Arc<AtomicBool>,
    /// Changes acknowledged while the shared database was unreachable, oldest first.
    backlog: Vec<Vec<Change>>,
    /// The backlog on disk.
    spool: Option<crate::store::Spool>,
    last_try: Option<Instant>,
    refused_log: RateLog,
    /// Replies of the changes just committed, to send together.
    out: Vec<(usize, Reply)>,
}

/// How often an unreachable database is tried again.
const RECONNECT: Duration = Duration::from_secs(1);

impl Writer {
    fn run(mut self, mut store: Box<dyn LeaseStore>, mut rx: mpsc::Receiver<ToWriter>) {
        let shared = store.shared();
        let mut batch: Vec<Commit> = Vec::new();
        let mut last: Option<Instant> = None;
        while let Some(first) = rx.blocking_recv() {
            // At most one transaction per COMMIT_INTERVAL: under load one fsync then covers
            // every change that arrived meanwhile; an idle server commits at once.
            if let Some(t) = last {
                let due = t + COMMIT_INTERVAL;
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
            }
            last = Some(Instant::now());
            let mut refresh = false;
            let mut next = Some(first);
            while let Some(m) = next.take() {
                match m {
                    ToWriter::Commit(c) => batch.push(*c),
                    ToWriter::Refresh => refresh = true,
                }
                if batch.len() < GROUP {
                    next = rx.try_recv().ok();
                }
            }
            if shared && self.offline.load(Ordering::Relaxed) {
                self.catch_up(&mut *store);
            }
            if !batch.is_empty() {
                self.commit(&mut *store, &mut batch, shared);
                self.flush();
            }
            if refresh && shared && !self.offline.load(Ordering::Relaxed) {
                match store.changed() {
                    Ok(rows) if rows.is_empty() => {}
                    Ok(rows) => {
                        let _ = self.back.send(Back::Changed(rows));
                    }
                    Err(e) => self.go_offline(&e),
                }
            }
        }
        if !self.backlog.is_empty() {
            self.catch_up(&mut *store);
            if !self.backlog.is_empty() {
                let n: usize = self.backlog.iter().map(Vec::len).sum();
                tracing::error!(
                    changes = n,
                    "stopping with lease changes the database never received"
                );
            }
        }
    }

    /// Sends the queued replies.
    fn flush(&mut self) {
        send_batch(&self.ifaces, &mut self.out, self.port, &self.stats);
    }

    fn go_offline(&mut self, e: &crate::store::StoreError) {
        if !self.offline.swap(true, Ordering::Relaxed) {
            tracing::error!(error = %e, "lease database unreachable: renewing known leases for their remaining time, refusing new allocations, queueing changes");
        }
        self.last_try = Some(Instant::now());
    }

    /// Writes what was acknowledged while offline, once the database answers again.
    fn catch_up(&mut self, store: &mut dyn LeaseStore) {
        if self.last_try.is_some_and(|t| t.elapsed() < RECONNECT) {
            return;
        }
        self.last_try = Some(Instant::now());
        let groups: Vec<&[Change]> = self.backlog.iter().map(Vec::as_slice).collect();
        match store.commit_groups(&groups, now()) {
            Ok(refused) => {
                for r in refused {
                    tracing::warn!(changes = ?self.backlog[r.group], "a change made while the database was unreachable conflicts with another server's: the database's record stands");
                    let _ = self.back.send(Back::Refused {
                        current: r.current,
                        retry: None,
                    });
                }
                let n = self.backlog.len();
                self.backlog.clear();
                if let Some(s) = &mut self.spool
                    && let Err(e) = s.clear()
                {
                    tracing::error!(error = %e, "cannot clear the outage spool: its changes will be written again at start-up");
                }
                self.offline.store(false, Ordering::Relaxed);
                tracing::info!(
                    queued = n,
                    "lease database reachable again: queued changes written"
                );
                if let Ok(rows) = store.changed() {
                    let _ = self.back.send(Back::Changed(rows));
                }
            }
            Err(e) => tracing::debug!(error = %e, "lease database still unreachable"),
        }
    }

    fn commit(&mut self, store: &mut dyn LeaseStore, batch: &mut Vec<Commit>, shared: bool) {
        if !self.offline.load(Ordering::Relaxed) {
            let groups: Vec<&[Change]> = batch.iter().map(|c| c.changes.as_slice()).collect();
            let any = groups.iter().any(|g| !g.is_empty());
            let started = Instant::now();
            let result = store.commit_groups(&groups, now());
            self.stats
                .commit_seconds
                .observe(started.elapsed().as_secs_f64());
            match result {
                Ok(refused) => {
                    if any {
                        self.stats.commits.inc();
                        if let Some(q) = batch.iter().map(|c| c.queued).min() {
                            let w = q.elapsed().as_secs_f64();
                            self.stats.commit_wait_last.set(w);
                            if w > self.stats.commit_wait_max.get() {
                                self.stats.commit_wait_max.set(w);
                            }
                        }
                    }
                    let mut refused = refused.into_iter().peekable();
                    for (i, c) in batch.drain(..).enumerate() {
                        if refused.peek().is_some_and(|r| r.group == i) {
                            let r = refused.next().map(|r| r.current).unwrap_or_default();
                            let _ = self.back.send(Back::Refused {
                                current: r,
                                retry: c.retry,
                            });
                        } else {
                            self.deliver(c);
                        }
                    }
                    return;
                }
                Err(e) if shared => {
                    self.stats.commit_errors.inc();
                    self.go_offline(&e);
                }
                Err(e) => {
                    self.stats.commit_errors.inc();
                    tracing::error!(error = %e, replies = batch.len(), "lease commit failed: replies withheld");
                    batch.clear();
                    return;
                }
            }
        }
        // Shared database unreachable: renewals and the rest are answered and queued; new
        // allocations are refused.
        // What is acknowledged reaches local disk first.
        let queued: Vec<Vec<Change>> = batch
            .iter()
            .filter(|c| c.kind != Kind::Alloc && !c.changes.is_empty())
            .map(|c| c.changes.clone())
            .collect();
        let spooled = match &mut self.spool {
            Some(s) if !queued.is_empty() => match s.push(&queued) {
                Ok(()) => true,
                Err(e) => {
                    tracing::error!(error = %e, path = %s.path().display(), "cannot spool lease changes during the outage: replies withheld");
                    false
                }
            },
            _ => true,
        };
        for mut c in batch.drain(..) {
            if c.kind == Kind::Alloc {
                self.refused_log.warn(|sup| {
                    tracing::warn!(suppressed = sup, "{}", decide::OFFLINE);
                });
                let _ = self.back.send(Back::Refused {
                    current: std::mem::take(&mut c.undo),
                    retry: None,
                });
            } else {
                if !c.changes.is_empty() {
                    self.backlog.push(std::mem::take(&mut c.changes));
                }
                if spooled {
                    self.deliver(c);
                }
            }
        }
    }

    /// Queues the reply of a committed change (sent by [`Writer::flush`]) and its DNS updates.
    fn deliver(&mut self, c: Commit) {
        if let Some(r) = c.reply {
            self.out.push(r);
        }
        if let Some(tx) = &self.dns_tx {
            for d in c.dns {
                if tx.try_send(d).is_err() {
                    tracing::warn!("dynamic DNS queue full: update dropped");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// The default of `[dhcp] discover-backlog`.
    const LIMIT: u32 = 256;

    #[test]
    fn the_default_limit_is_the_host_file_default() {
        let v = crate::testutil::config().view;
        assert_eq!(v.discover_backlog, LIMIT);
    }

    #[test]
    fn admission_follows_the_configured_limit_and_zero_means_none() {
        let t0 = Instant::now();
        let mut a = Admission::new(t0);
        // A limit of 10: ten OFFERs nobody takes up, then refusals.
        let served = (0..100).filter(|_| a.admit(t0, 10)).count();
        assert_eq!(served, 10);
        // Raised by a reload: room up to the new limit at once.
        let served = (0..100).filter(|_| a.admit(t0, 25)).count();
        assert_eq!(served, 15);
        // Lowered below what is outstanding: nothing until the span passes.
        assert!(!a.admit(t0, 5));
        // 0: no limit at all.
        let served = (0..100_000).filter(|_| a.admit(t0, 0)).count();
        assert_eq!(served, 100_000);
        // Counting went on meanwhile: a limit set again applies to what was admitted.
        assert!(!a.admit(t0, LIMIT));
        assert!(a.admit(t0 + ADMIT_SPAN + ADMIT_SPAN, LIMIT));
    }

    #[test]
    fn admission_never_refuses_exchanges_that_are_followed_up() {
        let t0 = Instant::now();
        let mut a = Admission::new(t0);
        // 20,000/s for 3 s, each OFFER followed by its REQUEST 10 ms later.
        for i in 0..60_000u64 {
            let t = t0 + Duration::from_micros(50 * i);
            assert!(a.admit(t, LIMIT), "refused exchange {i}");
            if i >= 200 {
                a.request(t);
            }
        }
    }

    #[test]
    fn admission_allows_longer_round_trips_at_high_request_rates() {
        let t0 = Instant::now();
        let mut a = Admission::new(t0);
        // 30,000 DISCOVERs/s for 3 s; each admitted one is followed by its REQUEST 25 ms later
        // (~750 outstanding: above the floor of 256, below 50 ms of the REQUEST rate).
        let mut admitted = vec![false; 90_000];
        let mut refused_late = 0;
        for i in 0..90_000usize {
            let t = t0 + Duration::from_nanos(33_333 * i as u64);
            if i >= 750 && admitted[i - 750] {
                a.request(t);
            }
            admitted[i] = a.admit(t, LIMIT);
            // The first second ramps up (few REQUESTs yet); after it nothing is refused.
            if !admitted[i] && i >= 30_000 {
                refused_late += 1;
            }
        }
        assert_eq!(refused_late, 0);
        // Without follow-ups, what more is admitted stays near 50 ms of the last second's
        // REQUESTs (at most 1,500 here), not unbounded.
        let t = t0 + Duration::from_millis(3000);
        let extra = (0..10_000).filter(|_| a.admit(t, LIMIT)).count() as u32;
        assert!(
            extra > LIMIT && extra <= 30_000 / ADMIT_RTT_SHARE,
            "{extra}"
        );
    }

    #[test]
    fn admission_bounds_offers_nobody_takes_up_and_recovers() {
        let t0 = Instant::now();
        let mut a = Admission::new(t0);
        let mut served = 0;
        for i in 0..10_000u64 {
            if a.admit(t0 + Duration::from_micros(10 * i), LIMIT) {
                served += 1;
            }
        }
        assert_eq!(served, LIMIT);
        // REQUESTs make room again, one each.
        let t = t0 + Duration::from_millis(200);
        for _ in 0..10 {
            a.request(t);
        }
        let again = (0..100).filter(|_| a.admit(t, LIMIT)).count();
        assert_eq!(again, 10);
        // Once the span has passed the unanswered OFFERs no longer count.
        let later = t0 + ADMIT_SPAN + Duration::from_millis(300);
        assert!(a.admit(later, LIMIT));
        // After a long idle gap, all room is back.
        let idle = later + Duration::from_secs(60);
        let n = (0..1000).filter(|_| a.admit(idle, LIMIT)).count();
        assert_eq!(n as u32, LIMIT);
    }
}
