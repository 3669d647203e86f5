//! The DHCPv6 socket side: one UDP socket on port 547 per interface that holds an address in an
//! IPv6 subnet (bound to the device, joined to ff02::1:2 there), and one core thread that owns
//! the bindings: it decodes, decides, makes the changes durable, and only then hands the reply to
//! the interface's task, which sends it to the client's link-local address and port (or, for a
//! relayed message, to the relay, wrapped in RELAY-REPL).

use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::mpsc as smpsc;
use std::time::Duration;

use dhcproto::Encodable;
use dhcproto::v6::Message;
use hostfile::DhcpView;
use ipnet::Ipv6Net;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::admin::{self, Admin6, Input};
use super::decide::{Ctx, decide};
use super::lease::{Change6, IaKind, Leases6, Store6, Store6Error};
use super::metrics::Stats6;
use super::store::{BindingStore, settle};
use super::{fqdn, relay};
use crate::ddns::v6::Event6;

/// All DHCP relay agents and servers (RFC 8415 section 7.1).
pub const ALL_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);
/// The server port.
pub const SERVER_PORT: u16 = 547;
/// Client messages waiting for the core; beyond this the interface tasks drop.
const QUEUE: usize = 1024;
/// A reply for one interface's task: destination and bytes.
type Out = (SocketAddrV6, Vec<u8>);
/// How often the core drops ended bindings and refreshes the gauges when idle.
const EXPIRE_EVERY: Duration = Duration::from_secs(2);

/// An interface to serve DHCPv6 on.
#[derive(Debug, Clone)]
pub struct Link {
    /// Interface name.
    pub name: String,
    /// Interface index.
    pub index: u32,
    /// Its IPv6 addresses with their prefixes.
    pub nets: Vec<Ipv6Net>,
}

/// Interfaces holding an address in some IPv6 subnet of the view (or named by one).
pub fn choose_links(view: &DhcpView) -> std::io::Result<Vec<Link>> {
    let mut links: Vec<Link> = Vec::new();
    for ifa in nix::ifaddrs::getifaddrs().map_err(std::io::Error::from)? {
        let (Some(a), Some(m)) = (ifa.address, ifa.netmask) else {
            continue;
        };
        let (Some(a), Some(m)) = (a.as_sockaddr_in6(), m.as_sockaddr_in6()) else {
            continue;
        };
        let len = u128::from(m.ip()).count_ones() as u8;
        let Ok(net) = Ipv6Net::new(a.ip(), len) else {
            continue;
        };
        let index = nix::net::if_::if_nametoindex(ifa.interface_name.as_str()).unwrap_or(0);
        match links.iter_mut().find(|l| l.name == ifa.interface_name) {
            Some(l) => l.nets.push(net),
            None => links.push(Link {
                name: ifa.interface_name,
                index,
                nets: vec![net],
            }),
        }
    }
    links.retain(|l| subnet_of(view, l).is_some());
    Ok(links)
}

/// The IPv6 subnet a link serves: the one naming its interface, else the one holding one of its
/// addresses.
pub fn subnet_of(view: &DhcpView, l: &Link) -> Option<usize> {
    let s = &view.subnets6;
    s.iter()
        .position(|s| s.interface.as_deref() == Some(l.name.as_str()))
        .or_else(|| {
            s.iter().position(|s| {
                s.interface.is_none() && l.nets.iter().any(|n| s.network.contains(&n.addr()))
            })
        })
}

/// A UDP socket on `[::]:port` bound to the link's device and joined to ff02::1:2 on it.
pub fn bind_link(l: &Link, port: u16) -> std::io::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_only_v6(true)?;
    s.bind_device(Some(l.name.as_bytes()))?;
    s.join_multicast_v6(&ALL_SERVERS, l.index)?;
    s.set_multicast_loop_v6(false)?;
    s.bind(&SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0).into())?;
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s.into())
}

/// Everything the v6 server starts with.
#[derive(Debug)]
pub struct Setup6 {
    /// Interfaces with their sockets.
    pub links: Vec<(Link, UdpSocket)>,
    /// The durable bindings: `leases6.redb`, or the shared PostgreSQL database.
    pub store: Box<dyn BindingStore>,
    /// The bindings loaded from it (ended ones already dropped).
    pub leases: Leases6,
    /// This server's DUID.
    pub server_duid: Vec<u8>,
    /// The core's queue: client messages and control requests.
    pub queue: (smpsc::SyncSender<Input>, smpsc::Receiver<Input>),
    /// Where dynamic DNS events go (when the host file has `ddns`).
    pub ddns: Option<mpsc::Sender<Event6>>,
}

impl Setup6 {
    /// A handle for the control socket on the core's queue.
    pub fn admin(&self) -> Admin6 {
        Admin6::new(self.queue.0.clone())
    }
}

/// Errors of the v6 server.
#[derive(Debug, thiserror::Error)]
pub enum Serve6Error {
    /// The lease file failed.
    #[error(transparent)]
    Store(#[from] Store6Error),
    /// The core thread could not start.
    #[error("DHCPv6 core thread: {0}")]
    Thread(std::io::Error),
}

/// Loads the bindings (dropping ended ones) and serves until `stop`.
pub async fn serve(
    setup: Setup6,
    view: watch::Receiver<std::sync::Arc<DhcpView>>,
    stop: CancellationToken,
    stats: std::sync::Arc<Stats6>,
) -> Result<(), Serve6Error> {
    let Setup6 {
        links,
        store,
        leases,
        server_duid,
        queue: (in_tx, in_rx),
        ddns,
    } = setup;
    if let Some(tx) = &ddns {
        let live = leases.iter().filter(|l| l.key.kind == IaKind::Na);
        let keys = live.map(|l| (l.key.duid.clone(), l.key.iaid)).collect();
        publish(tx, vec![Event6::Live(keys)]);
    }
    let mut outs = Vec::new();
    let mut tasks = Vec::new();
    for (i, (link, sock)) in links.into_iter().enumerate() {
        let (out_tx, out_rx) = mpsc::unbounded_channel::<Out>();
        outs.push((link.clone(), out_tx));
        tasks.push(tokio::spawn(link_task(
            i,
            sock,
            in_tx.clone(),
            out_rx,
            stop.clone(),
            stats.clone(),
        )));
    }
    // Control handles hold senders too: the core is told to end once the interface tasks are.
    let wake = in_tx;
    let core = Core {
        store,
        leases,
        view,
        outs,
        server_duid,
        stats,
        ddns,
    };
    let thread = std::thread::Builder::new()
        .name("dhcpv6-core".into())
        .spawn(move || core.run(&in_rx))
        .map_err(Serve6Error::Thread)?;
    for t in tasks {
        let _ = t.await;
    }
    // The interface tasks are gone: the core ends after what its queue holds.
    let _ = tokio::task::spawn_blocking(move || {
        let _ = wake.send(Input::Stop);
        thread.join()
    })
    .await;
    Ok(())
}

async fn link_task(
    i: usize,
    sock: UdpSocket,
    to_core: smpsc::SyncSender<Input>,
    mut replies: mpsc::UnboundedReceiver<Out>,
    stop: CancellationToken,
    stats: std::sync::Arc<Stats6>,
) {
    let mut buf = vec![0u8; 65536];
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            r = sock.recv_from(&mut buf) => match r {
                Ok((n, SocketAddr::V6(src))) => {
                    let input = Input::Packet { link: i, src, bytes: buf[..n].to_vec() };
                    if to_core.try_send(input).is_err() {
                        stats.overload.inc();
                        tracing::debug!(%src, "DHCPv6 queue full: message dropped");
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "DHCPv6 receive failed"),
            },
            Some((dst, bytes)) = replies.recv() => {
                if let Err(e) = sock.send_to(&bytes, dst).await {
                    tracing::warn!(%dst, error = %e, "DHCPv6 reply not sent");
                }
            }
        }
    }
}

struct Core {
    store: Box<dyn BindingStore>,
    leases: Leases6,
    view: watch::Receiver<std::sync::Arc<DhcpView>>,
    outs: Vec<(Link, mpsc::UnboundedSender<Out>)>,
    server_duid: Vec<u8>,
    stats: std::sync::Arc<Stats6>,
    ddns: Option<mpsc::Sender<Event6>>,
}

/// Queues dynamic DNS events without waiting: a full queue loses them (as v4 does), never a
/// reply.
fn publish(tx: &mpsc::Sender<Event6>, events: Vec<Event6>) {
    for e in events {
        if tx.try_send(e).is_err() {
            tracing::warn!("dynamic DNS queue full: DHCPv6 update dropped");
        }
    }
}

impl Core {
    /// The DNS events of durable binding changes.
    fn dns(&self, msg: Option<&Message>, changes: &[Change6]) {
        if let Some(tx) = &self.ddns {
            publish(
                tx,
                fqdn::events(msg, changes, &self.view.borrow().reservations6),
            );
        }
    }

    fn run(mut self, rx: &smpsc::Receiver<Input>) {
        let mut census = std::time::Instant::now();
        self.stats
            .census(&self.leases, &self.view.borrow(), crate::lease::unix_now());
        loop {
            match rx.recv_timeout(EXPIRE_EVERY) {
                Ok(Input::Packet { link, src, bytes }) => self.handle(link, src, &bytes),
                Ok(Input::Admin(r)) => {
                    let v = self.view.borrow().clone();
                    let released =
                        admin::answer(r, &mut self.leases, &mut *self.store, &v.reservations6);
                    self.dns(None, &released);
                }
                Ok(Input::Stop) | Err(smpsc::RecvTimeoutError::Disconnected) => return,
                Err(smpsc::RecvTimeoutError::Timeout) => {}
            }
            let now = crate::lease::unix_now();
            if census.elapsed() >= EXPIRE_EVERY {
                census = std::time::Instant::now();
                super::store::refresh(&mut *self.store, &mut self.leases);
                self.stats.census(&self.leases, &self.view.borrow(), now);
            }
            let ended = self.leases.expired(now);
            if !ended.is_empty() {
                match self.store.commit(&ended, &self.leases, now) {
                    Ok(_) => {
                        self.dns(None, &ended);
                        ended.iter().for_each(|c| self.leases.apply(c));
                    }
                    Err(e) => tracing::warn!(error = %e, "DHCPv6: ended bindings not removed"),
                }
            }
        }
    }

    fn handle(&mut self, i: usize, src: SocketAddrV6, bytes: &[u8]) {
        let (hops, inner) = match relay::unwrap(bytes) {
            Ok(x) => x,
            Err(e) => {
                self.stats.bad.inc();
                tracing::debug!(%src, error = %e, "DHCPv6 relay message dropped");
                return;
            }
        };
        let msg = match super::decode::parse_guarded(inner) {
            Ok(m) => m,
            Err(e) => {
                self.stats.bad.inc();
                tracing::debug!(%src, error = %e, "malformed DHCPv6 message dropped");
                return;
            }
        };
        self.stats.received(msg.msg_type());
        let Some((link, out)) = self.outs.get(i) else {
            return;
        };
        let now = crate::lease::unix_now();
        let v = self.view.borrow().clone();
        // Decided, made durable (decided again if a shared database gave the address to another
        // server's client), applied; a failed write sends nothing.
        let outcome = settle(&mut *self.store, &mut self.leases, now, |leases| {
            let ctx = Ctx {
                subnets: &v.subnets6,
                reservations: &v.reservations6,
                server_duid: &self.server_duid,
                decline_probation: v.decline_probation.as_secs(),
                client_mac: relay::client_mac(&hops),
            };
            // Relayed: the subnet holding the relay's link address; else this interface's.
            let subnet = if hops.is_empty() {
                subnet_of(&v, link)
            } else {
                relay::client_link(&hops)
                    .and_then(|a| v.subnets6.iter().position(|s| s.network.contains(&a)))
            };
            let mut o = decide(&ctx, subnet, leases, &msg, now);
            fqdn::name_bindings(&msg, &mut o.changes, &v.reservations6, leases);
            if let Some(r) = o.reply.as_mut() {
                let zone = v.ddns.as_ref().map_or(&v.domain, |d| &d.forward_zone);
                fqdn::answer(&msg, r, &v.reservations6, zone, v.ddns.is_some());
            }
            o
        });
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                self.stats.commit_errors.inc();
                tracing::warn!(error = %e, "DHCPv6 bindings not written: no reply");
                return;
            }
        };
        let Some(reply) = outcome.reply else {
            self.stats.silent.inc();
            tracing::debug!(%src, kind = ?msg.msg_type(), "DHCPv6 message not answered");
            return;
        };
        match reply.to_vec() {
            Ok(b) => {
                tracing::debug!(%src, asked = ?msg.msg_type(), kind = ?reply.msg_type(), relays = hops.len(), "DHCPv6 reply");
                // To the client, or to the relay it came through (its address and port).
                if out.send((src, relay::wrap(&hops, b))).is_ok() {
                    self.stats.sent(reply.msg_type());
                }
            }
            Err(e) => tracing::warn!(error = %e, "DHCPv6 reply not encoded"),
        }
        // After the reply is queued: the updates never hold it up.
        self.dns(Some(&msg), &outcome.changes);
    }
}

/// Errors starting the v6 server.
#[derive(Debug, thiserror::Error)]
pub enum Setup6Error {
    /// No interface list.
    #[error("DHCPv6: cannot list interfaces: {0}")]
    Interfaces(std::io::Error),
    /// A socket could not be bound.
    #[error("DHCPv6: cannot bind UDP port {port} on {iface}: {err}")]
    Bind {
        /// The interface.
        iface: String,
        /// The port.
        port: u16,
        /// What failed.
        err: std::io::Error,
    },
    /// The server DUID.
    #[error(transparent)]
    Duid(#[from] super::DuidError),
    /// The lease file.
    #[error(transparent)]
    Store(#[from] Store6Error),
}

/// Binds port 547 on each interface with an IPv6 subnet, opens the server DUID (`server-duid`
/// beside the v4 lease database `db`) and the bindings: the shared PostgreSQL database when the
/// host file names one, else `leases6.redb` beside `db`. `None` when the view has no IPv6 subnet
/// or no local interface serves one.
pub fn setup(view: &DhcpView, db: &std::path::Path) -> Result<Option<Setup6>, Setup6Error> {
    if view.subnets6.is_empty() {
        return Ok(None);
    }
    let mut links = Vec::new();
    for l in choose_links(view).map_err(Setup6Error::Interfaces)? {
        let sock = bind_link(&l, SERVER_PORT).map_err(|err| Setup6Error::Bind {
            iface: l.name.clone(),
            port: SERVER_PORT,
            err,
        })?;
        tracing::info!(iface = %l.name, "DHCPv6 listening on {} port {SERVER_PORT}", l.name);
        links.push((l, sock));
    }
    if links.is_empty() {
        tracing::warn!(
            "DHCPv6: no local interface has an address in an IPv6 subnet; not serving v6"
        );
        return Ok(None);
    }
    let server_duid = super::server_duid(&db.with_file_name("server-duid"))?;
    let (store, leases) = open_store(view.lease_db_url.as_deref(), db)?;
    tracing::info!(duid = %super::hex(&server_duid), "DHCPv6 server DUID");
    Ok(Some(Setup6 {
        links,
        store,
        leases,
        server_duid,
        queue: smpsc::sync_channel(QUEUE),
        ddns: None,
    }))
}

/// Opens the bindings' store and loads what still runs. PostgreSQL's client blocks on a runtime
/// of its own, which it cannot do on a thread driving tokio: it connects and loads on a thread
/// of its own.
fn open_store(
    url: Option<&str>,
    db: &std::path::Path,
) -> Result<(Box<dyn BindingStore>, Leases6), Store6Error> {
    let now = crate::lease::unix_now();
    let (store, (leases, dropped)) = match url {
        Some(url) => std::thread::scope(|s| {
            s.spawn(|| {
                let mut pg = super::pg::PgStore6::open(url)?;
                let loaded = super::store::load_live(&mut pg, now)?;
                tracing::info!(url = %pg.shown(), "DHCPv6 bindings in the shared lease database");
                Ok::<_, Store6Error>((Box::new(pg) as Box<dyn BindingStore>, loaded))
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })?,
        None => {
            let path = db.with_file_name("leases6.redb");
            let mut redb = Store6::open(&path)?;
            let loaded = super::store::load_live(&mut redb, now)?;
            tracing::info!(path = %path.display(), "DHCPv6 lease database open");
            (Box::new(redb) as Box<dyn BindingStore>, loaded)
        }
    };
    tracing::info!(bindings = leases.len(), dropped, "DHCPv6 bindings loaded");
    Ok((store, leases))
}
