//! The DHCPv6 socket side: one UDP socket on port 547 per interface that holds an address in an
//! IPv6 subnet (bound to the device, joined to ff02::1:2 there), and one core thread that owns
//! the bindings: it decodes and decides; the changes are made durable (by the writer thread with
//! the embedded store), and only then does the sender thread send the reply to the client's
//! link-local address and port (or, for a relayed message, to the relay, wrapped in RELAY-REPL).

use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::AsFd;
use std::sync::mpsc as smpsc;

use hostfile::DhcpView;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::admin::{Admin6, Input};
use super::batch::Batch;
use super::core6::Core;
use super::lease::{IaKind, Leases6, Store6, Store6Error};
pub use super::links::{Link, choose_links, subnet_of};
use super::metrics::Stats6;
use super::send6::{HANDOFF, Out, Out6, Sender6, publish};
use super::store::BindingStore;
use super::writer::Writer;
use crate::ddns::v6::Event6;

/// All DHCP relay agents and servers (RFC 8415 section 7.1).
pub const ALL_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);
/// The server port.
pub const SERVER_PORT: u16 = 547;
/// Client messages waiting for the core; beyond this the interface tasks drop. Deep enough for
/// what arrives during a group commit's fsync at tens of thousands of messages a second.
const QUEUE: usize = 4096;
/// Most datagrams one interface task reads in a row before it lets the others run.
const BURST: usize = 256;
/// Rest between receive rounds while datagrams keep coming (bounds the wake-ups per second).
const COALESCE: std::time::Duration = std::time::Duration::from_millis(1);

/// A UDP socket on `[::]:port` bound to the link's device and joined to ff02::1:2 on it.
pub fn bind_link(l: &Link, port: u16) -> std::io::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_only_v6(true)?;
    s.bind_device(Some(l.name.as_bytes()))?;
    s.join_multicast_v6(&ALL_SERVERS, l.index)?;
    s.set_multicast_loop_v6(false)?;
    // Room for what arrives while the receiving task waits for a core (as the v4 sockets).
    crate::io::force_buffer(&s, libc::SO_RCVBUFFORCE, libc::SO_RCVBUF, crate::io::RCVBUF);
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
        // The sender thread sends on a second handle of the socket itself (no hop through the
        // task); a reply the socket cannot take at once goes through the task, which waits for
        // room.
        let direct = sock
            .as_fd()
            .try_clone_to_owned()
            .map(std::net::UdpSocket::from)
            .map_err(
                |e| tracing::warn!(error = %e, "DHCPv6: replies go through the interface task"),
            )
            .ok();
        outs.push(Out6 {
            link: link.clone(),
            queue: out_tx,
            direct,
        });
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
    let (send_tx, send_rx) = smpsc::sync_channel(HANDOFF);
    let writer = store
        .writer()
        .map(|w| Writer::start(w, send_tx.clone(), stats.clone()))
        .transpose()
        .map_err(Serve6Error::Thread)?;
    let core = Core {
        writer,
        store,
        leases,
        view: view.clone(),
        links: outs.iter().map(|o| o.link.clone()).collect(),
        sender: send_tx,
        server_duid,
        stats: stats.clone(),
        ddns: ddns.clone(),
        batch: Batch::default(),
        outbox: Vec::new(),
    };
    let sender = Sender6 {
        outs,
        stats,
        ddns,
        view,
    };
    let send_thread = std::thread::Builder::new()
        .name("dhcpv6-send".into())
        .spawn(move || sender.run(&send_rx))
        .map_err(Serve6Error::Thread)?;
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
        // The core's end closes the sender's queue: it ends once the last replies are out.
        let _ = thread.join();
        send_thread.join()
    })
    .await;
    Ok(())
}

/// Receives an interface's datagrams for the core, and sends the replies its socket could not
/// take at once. Under load it drains the socket, then rests [`COALESCE`] before reading again
/// (datagrams arriving meanwhile wait in the socket), so one wake-up carries many datagrams
/// instead of one each; idle, it waits for the socket.
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
        let mut got = 0;
        while got < BURST {
            match sock.try_recv_from(&mut buf) {
                Ok((n, SocketAddr::V6(src))) => {
                    got += 1;
                    let input = Input::Packet {
                        link: i,
                        src,
                        bytes: buf[..n].to_vec(),
                    };
                    if to_core.try_send(input).is_err() {
                        stats.overload.inc();
                        tracing::debug!(%src, "DHCPv6 queue full: message dropped");
                    }
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::debug!(error = %e, "DHCPv6 receive failed");
                    break;
                }
            }
        }
        while let Ok((dst, bytes)) = replies.try_recv() {
            if let Err(e) = sock.send_to(&bytes, dst).await {
                tracing::warn!(%dst, error = %e, "DHCPv6 reply not sent");
            }
        }
        if got > 0 {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(COALESCE) => {}
            }
            continue;
        }
        tokio::select! {
            () = stop.cancelled() => return,
            r = sock.readable() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "DHCPv6 socket not readable");
                }
            }
            Some((dst, bytes)) = replies.recv() => {
                if let Err(e) = sock.send_to(&bytes, dst).await {
                    tracing::warn!(%dst, error = %e, "DHCPv6 reply not sent");
                }
            }
        }
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
