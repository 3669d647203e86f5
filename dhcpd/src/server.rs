//! The packet loop: receive tasks (one per interface) decode and queue requests; one core task
//! owns the lease table and decides; a writer thread commits lease changes in groups and sends
//! each ACK only after the commit that holds its lease.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dhcproto::v4::Message;
use ipnet::Ipv4Net;
use shared::DhcpView;
use shared::metrics::{Counter, Gauge, Registry};
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
/// DISCOVER and BOOTP requests waiting: short, so that under overload the server spends its time
/// completing exchanges rather than answering DISCOVERs too late to matter.
const NEW_QUEUE: usize = 512;
/// Most commits grouped in one transaction.
const GROUP: usize = 4096;
/// Concurrent ping checks; beyond this addresses are offered unchecked.
const PINGS: usize = 64;

/// Counters (exported as Prometheus metrics when `[dhcp] metrics` is set).
#[derive(Debug, Default)]
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
    },
}

struct Commit {
    changes: Vec<Change>,
    reply: Option<(usize, Reply)>,
    dns: Vec<Dns>,
}

fn now() -> u64 {
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
    let all = shared::netif::local_ipv4()?;
    let mut by_name: BTreeMap<String, Vec<Ipv4Net>> = BTreeMap::new();
    for a in &all {
        by_name.entry(a.name.clone()).or_default().push(a.net);
    }
    let mut names: Vec<String> = view.interfaces.clone();
    if names.is_empty() {
        let mut remote = false;
        for s in &view.subnets {
            match (&s.interface, shared::netif::find_in(&all, s.network)) {
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
}

impl std::fmt::Debug for dyn LeaseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LeaseStore")
    }
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
    } = setup;
    let leases = store.load()?;
    tracing::info!(count = leases.len(), "leases loaded");
    let mut table = LeaseTable::from_leases(leases);
    let ifaces = Arc::new(ifaces);
    let (ev_tx, mut ev_rx) = mpsc::channel::<Event>(QUEUE);
    let (new_tx, mut new_rx) = mpsc::channel::<Event>(NEW_QUEUE);
    let (wr_tx, wr_rx) = mpsc::channel::<Commit>(GROUP);

    // Receive tasks.
    let mut tasks = tokio::task::JoinSet::new();
    for (i, ifc) in ifaces.iter().enumerate() {
        let sock = tokio::net::UdpSocket::from_std(ifc.sock.try_clone()?)?;
        let tx = ev_tx.clone();
        let new_tx = new_tx.clone();
        let stats = stats.clone();
        let name = ifc.name.clone();
        tasks.spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut log = RateLog {
                last: None,
                suppressed: 0,
            };
            loop {
                let (n, src) = match sock.recv_from(&mut buf).await {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(iface = %name, error = %e, "receive failed");
                        continue;
                    }
                };
                stats.received.inc();
                // New exchanges queue apart; when their queue is full they are dropped before
                // the cost of decoding.
                let starts_exchange = matches!(decide::peek_type(&buf[..n]), None | Some(1));
                let queue = if starts_exchange { &new_tx } else { &tx };
                let Ok(permit) = queue.try_reserve() else {
                    stats.overload.inc();
                    continue;
                };
                match decide::parse(&buf[..n]) {
                    Err(e) => {
                        stats.bad.inc();
                        log.warn(|sup| {
                            tracing::warn!(iface = %name, %src, len = n, suppressed = sup, "dropped bad packet: {e}")
                        });
                    }
                    Ok(msg) => permit.send(Event::Packet {
                        iface: i,
                        msg: Box::new(msg),
                    }),
                }
            }
        });
    }

    // Writer thread: group commit, then send.
    let writer = {
        let ifaces = ifaces.clone();
        let stats = stats.clone();
        std::thread::Builder::new()
            .name("dhcpd-store".into())
            .spawn(move || writer(store, wr_rx, &ifaces, port, &stats, dns_tx))?
    };

    let mut cfg = Config::new(view.borrow_and_update().clone());
    let pings = Arc::new(tokio::sync::Semaphore::new(PINGS));
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let mut log = RateLog {
        last: None,
        suppressed: 0,
    };
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            r = view.changed() => {
                if r.is_err() { break; }
                cfg = Config::new(view.borrow_and_update().clone());
                tracing::info!(leases = table.len(), "host table reloaded; leases kept");
            }
            _ = tick.tick() => {
                let t = now();
                stats.bound.set(table.iter().filter(|l| l.state == LeaseState::Bound && l.expires > t).count() as i64);
                let d = decide::expire(&table, t, 10_000);
                if !d.changes.is_empty() {
                    for c in &d.changes { table.apply(c); }
                    tracing::debug!(count = d.changes.len(), "leases expired");
                    if wr_tx.send(Commit { changes: d.changes, reply: None, dns: d.dns }).await.is_err() { break; }
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
                        let ifc = &ifaces[iface];
                        let rx = Rx { iface: &ifc.name, addrs: &ifc.addrs, now: now() };
                        let d = decide::handle(&cfg, &table, &msg, &rx);
                        if d.bad {
                            stats.bad.inc();
                        }
                        if let Some(why) = d.silent {
                            if d.reply.is_none() { stats.silent.inc(); }
                            let mac = crate::lease::hex_colon(msg.chaddr());
                            if d.bad {
                                log.warn(|sup| tracing::warn!(iface = %ifc.name, %mac, suppressed = sup, "dropped request: {why}"));
                            } else {
                                tracing::debug!(iface = %ifc.name, %mac, "{why}");
                            }
                        }
                        for c in &d.changes { table.apply(c); }
                        let persistent: Vec<Change> = d.changes.into_iter().filter(Change::persistent).collect();
                        match (d.reply, d.probe) {
                            (Some(reply), Some(ip)) => match pings.clone().try_acquire_owned() {
                                Ok(permit) => {
                                    let tx = ev_tx.clone();
                                    let timeout = cfg.view.ping_timeout;
                                    tokio::task::spawn_blocking(move || {
                                        let alive = ping::probe(ip, timeout).unwrap_or_else(|e| {
                                            tracing::debug!(%ip, error = %e, "ping check failed");
                                            false
                                        });
                                        drop(permit);
                                        let _ = tx.blocking_send(Event::Probed { iface, ip, alive, reply });
                                    });
                                }
                                Err(_) => send_now(&ifaces[iface], &reply, port, &stats),
                            },
                            (reply, _) => {
                                if persistent.is_empty() && d.dns.is_empty() {
                                    if let Some(r) = reply { send_now(&ifaces[iface], &r, port, &stats); }
                                } else if wr_tx.send(Commit { changes: persistent, reply: reply.map(|r| (iface, r)), dns: d.dns }).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    Event::Probed { iface, ip, alive, reply } => {
                        if alive {
                            tracing::warn!(%ip, "address answers ping: on probation, not offered");
                            let c = Change::Put(decide::probation(ip, now(), cfg.view.decline_probation.as_secs()));
                            table.apply(&c);
                            if wr_tx.send(Commit { changes: vec![c], reply: None, dns: Vec::new() }).await.is_err() { break; }
                        } else {
                            send_now(&ifaces[iface], &reply, port, &stats);
                        }
                    }
                }
            }
        }
    }
    tasks.abort_all();
    drop(wr_tx);
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

fn writer(
    mut store: Box<dyn LeaseStore>,
    mut rx: mpsc::Receiver<Commit>,
    ifaces: &[Iface],
    port: u16,
    stats: &Stats,
    dns_tx: Option<mpsc::Sender<Dns>>,
) {
    let mut batch: Vec<Commit> = Vec::new();
    let mut changes: Vec<Change> = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < GROUP {
            match rx.try_recv() {
                Ok(c) => batch.push(c),
                Err(_) => break,
            }
        }
        changes.clear();
        for c in &mut batch {
            changes.append(&mut c.changes);
        }
        match store.commit(&changes) {
            Ok(()) => {
                if !changes.is_empty() {
                    stats.commits.inc();
                }
                for c in batch.drain(..) {
                    if let Some((i, r)) = &c.reply {
                        send_now(&ifaces[*i], r, port, stats);
                    }
                    if let Some(tx) = &dns_tx {
                        for d in c.dns {
                            if tx.try_send(d).is_err() {
                                tracing::warn!("dynamic DNS queue full: update dropped");
                            }
                        }
                    }
                }
            }
            Err(e) => {
                stats.commit_errors.inc();
                tracing::error!(error = %e, replies = batch.len(), "lease commit failed: replies withheld");
                batch.clear();
            }
        }
    }
}
