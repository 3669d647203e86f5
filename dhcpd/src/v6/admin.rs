//! The control socket's way into the DHCPv6 core: the core thread owns the bindings, so
//! `dhcpd leases` and `dhcpd release` ask it over its own queue (beside the client messages)
//! and wait, bounded, for its answer. A release is answered once it is durable.

use std::net::{Ipv6Addr, SocketAddrV6};
use std::sync::mpsc;
use std::time::Duration;

use hostfile::Reservation6;
use ipnet::Ipv6Net;

use super::lease::{Change6, IaKind, Lease6, Leases6, State6, Store6Error};
use super::store::BindingStore;

/// What the core thread's queue carries.
#[derive(Debug)]
pub enum Input {
    /// A datagram from interface `link` (an index into the server's links).
    Packet {
        /// The interface.
        link: usize,
        /// Who sent it.
        src: SocketAddrV6,
        /// The datagram.
        bytes: Vec<u8>,
    },
    /// A control request.
    Admin(Request6),
    /// The interface tasks ended: stop after what came before.
    Stop,
}

/// A control request for the core.
#[derive(Debug)]
pub enum Request6 {
    /// Every binding, with its host name.
    List(mpsc::Sender<Vec<Row6>>),
    /// End the binding of an address or prefix now, as the client's RELEASE would.
    Release {
        /// The address or prefix.
        target: Target6,
        /// The released binding once durable, or why not.
        done: mpsc::Sender<Result<Lease6, AdminError>>,
    },
}

/// What `dhcpd release` names on the v6 side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target6 {
    /// A leased address (or any address inside a delegated prefix).
    Addr(Ipv6Addr),
    /// A delegated prefix.
    Prefix(Ipv6Net),
}

impl std::fmt::Display for Target6 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target6::Addr(a) => a.fmt(f),
            Target6::Prefix(p) => p.fmt(f),
        }
    }
}

/// One binding as `dhcpd leases` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row6 {
    /// The binding.
    pub lease: Lease6,
    /// The host name kept with it, else (a binding written before names were kept) the name
    /// of the reservation of its address, if any.
    pub hostname: Option<String>,
}

/// Why a control request on the v6 side failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The core thread is gone.
    #[error("the DHCPv6 server is stopping")]
    Stopping,
    /// No answer in time.
    #[error("the DHCPv6 server did not answer in time")]
    Timeout,
    /// Nothing bound there.
    #[error("{0} is not bound to a DHCPv6 client")]
    NotBound(Target6),
    /// The release could not be made durable (the binding stays).
    #[error("the release of {0} was not written: {1}")]
    Store(Target6, Store6Error),
}

/// A handle on the core's queue for the control socket.
#[derive(Debug, Clone)]
pub struct Admin6 {
    tx: mpsc::SyncSender<Input>,
}

impl Admin6 {
    /// A handle sending on `tx`.
    pub fn new(tx: mpsc::SyncSender<Input>) -> Self {
        Admin6 { tx }
    }

    /// Every binding, waiting at most `wait` for the core.
    pub fn leases(&self, wait: Duration) -> Result<Vec<Row6>, AdminError> {
        let (tx, rx) = mpsc::channel();
        self.ask(Request6::List(tx))?;
        rx.recv_timeout(wait).map_err(waited)
    }

    /// Releases `target`; returns the binding that ended once that is durable.
    pub fn release(&self, target: Target6, wait: Duration) -> Result<Lease6, AdminError> {
        let (done, rx) = mpsc::channel();
        self.ask(Request6::Release { target, done })?;
        rx.recv_timeout(wait).map_err(waited)?
    }

    fn ask(&self, r: Request6) -> Result<(), AdminError> {
        self.tx
            .send(Input::Admin(r))
            .map_err(|_| AdminError::Stopping)
    }
}

fn waited(e: mpsc::RecvTimeoutError) -> AdminError {
    match e {
        mpsc::RecvTimeoutError::Timeout => AdminError::Timeout,
        mpsc::RecvTimeoutError::Disconnected => AdminError::Stopping,
    }
}

/// The rows of `leases`: the host name kept with each binding, else its reservation's.
pub fn rows(leases: &Leases6, reservations: &[Reservation6]) -> Vec<Row6> {
    leases
        .iter()
        .map(|l| Row6 {
            lease: l.clone(),
            hostname: l.hostname.clone().or_else(|| {
                (l.prefix_len == 128)
                    .then(|| reservations.iter().find(|r| r.ip == l.addr))
                    .flatten()
                    .map(|r| r.hostname.clone())
            }),
        })
        .collect()
}

/// The bound binding `target` names: an address of an IA_NA, a delegated prefix, or an address
/// inside one.
pub fn find(leases: &Leases6, target: Target6) -> Option<&Lease6> {
    let bound = |l: &&Lease6| l.state == State6::Bound;
    match target {
        Target6::Addr(a) => leases.holder(a, 128).filter(bound).or_else(|| {
            leases.iter().find(|l| {
                l.key.kind == IaKind::Pd
                    && l.state == State6::Bound
                    && Ipv6Net::new(l.addr, l.prefix_len).is_ok_and(|n| n.contains(&a))
            })
        }),
        Target6::Prefix(p) => leases
            .holder(p.network(), p.prefix_len())
            .filter(|l| l.key.kind == IaKind::Pd)
            .filter(bound),
    }
}

/// Answers one control request on the core thread (which owns `leases` and `store`). A shared
/// database lists the bindings of every server on it. Returns the binding changes made durable
/// (a release), for the dynamic DNS side.
pub fn answer(
    req: Request6,
    leases: &mut Leases6,
    store: &mut dyn BindingStore,
    reservations: &[Reservation6],
) -> Vec<Change6> {
    match req {
        Request6::List(tx) => {
            let all = match store.list() {
                Ok(Some(all)) => Some(super::listing::table(all)),
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!(error = %e, "DHCPv6: shared bindings not read; listing this server's");
                    None
                }
            };
            let _ = tx.send(rows(all.as_ref().unwrap_or(leases), reservations));
            Vec::new()
        }
        Request6::Release { target, done } => {
            let mut made = Vec::new();
            let r = match find(leases, target).cloned() {
                None => Err(AdminError::NotBound(target)),
                Some(l) => {
                    let c = [Change6::Delete(l.key.clone())];
                    match store.commit(&c, leases, crate::lease::unix_now()) {
                        Ok(_) => {
                            made.extend(c.iter().cloned());
                            leases.apply(&c[0]);
                            tracing::info!(%target, "DHCPv6 binding released by the operator");
                            Ok(l)
                        }
                        Err(e) => Err(AdminError::Store(target, e)),
                    }
                }
            };
            let _ = done.send(r);
            made
        }
    }
}
