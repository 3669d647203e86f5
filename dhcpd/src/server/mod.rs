//! The packet loop: receive tasks (one per interface) decode and queue requests (`receive.rs`,
//! with `admission.rs` for new exchanges); one core task owns the lease table and decides
//! (`core_task.rs`); a writer thread commits lease changes in groups and sends each ACK only after
//! the commit that holds its lease (`writer.rs`).

mod admission;
mod core_task;
mod inflight;
mod msg;
mod ratelog;
mod receive;
mod send;
mod writer;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32};

use hostfile::DhcpView;
use ipnet::Ipv4Net;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::decide::Dns;
use crate::index::ViewIndex;
use crate::io::Iface;
use crate::lease::LeaseTable;
use crate::metrics::Stats;
use crate::store::{LeaseStore, Spool};

use self::admission::Admission;
use self::core_task::{Core, Inputs};
use self::msg::{Back, Event, GROUP, ToWriter};
pub use self::msg::{Release, ReleaseError};
use self::ratelog::RateLog;
use self::receive::Receiver;
use self::writer::Writer;

/// REQUEST, DECLINE, RELEASE, INFORM waiting for the core task (they finish exchanges already
/// under way); beyond this the receive tasks drop (and count).
const QUEUE: usize = 4096;
/// DISCOVER and BOOTP requests waiting for the core task. Admission bounds the OFFERs nobody
/// takes up; this queue only has to ride out the core task waiting on the lease writer (a slow
/// fsync): 2,048 is ~70 ms at 30,000 DISCOVERs/s (512 overflowed there: 0.14% of DISCOVERs lost,
/// counted in `dhcpd_overload_drops`, with the admission limit never reached).
const NEW_QUEUE: usize = 2048;
/// Concurrent ping checks; beyond this addresses are offered unchecked.
const PINGS: usize = 64;

/// Which interfaces to serve DHCPv4 on: those named in the file, else each holding an address in
/// a subnet (and every IPv4 interface when some subnet is only reachable through relays). Empty
/// when there is none (no IPv4 subnet, say): the caller decides whether DHCPv6 is enough.
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
    pub spool: Option<Spool>,
    /// Where `dhcpd release` requests come from (the control socket), if anywhere.
    pub admin: Option<mpsc::Receiver<Release>>,
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
        admin,
    } = setup;
    // Without a control socket the channel stays empty (and open).
    let (_admin_tx, spare_rx) = mpsc::channel::<Release>(1);
    let admin_rx = admin.unwrap_or(spare_rx);
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
    let (ev_tx, ev_rx) = mpsc::channel::<Event>(QUEUE);
    let (new_tx, new_rx) = mpsc::channel::<Event>(NEW_QUEUE);
    let (wr_tx, wr_rx) = mpsc::channel::<ToWriter>(GROUP);
    let (back_tx, back_rx) = mpsc::unbounded_channel::<Back>();
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
            log: RateLog::default(),
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
            refused_log: RateLog::default(),
            out: Vec::new(),
            settled: 0,
        };
        std::thread::Builder::new()
            .name("dhcpd-store".into())
            .spawn(move || w.run(store, wr_rx))?
    };

    let core = Core {
        cfg: ViewIndex::new(view.borrow_and_update().clone()),
        table,
        ifaces,
        port,
        stats: stats.clone(),
        wr_tx,
        ev_tx: ev_tx.clone(),
        pings: Arc::new(tokio::sync::Semaphore::new(PINGS)),
        log: RateLog::default(),
        offline_log: RateLog::default(),
        shared,
        offline,
        out: Vec::new(),
        inflight: Default::default(),
    };
    core.run(Inputs {
        view,
        shutdown,
        ev_rx,
        new_rx,
        back_rx,
        admit_limit,
        admin_rx,
    })
    .await;
    tasks.abort_all();
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
