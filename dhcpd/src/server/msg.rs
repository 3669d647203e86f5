//! What the tasks of the packet loop hand each other: receive tasks and ping checks to the core
//! task ([`Event`]), the core task to the lease writer ([`ToWriter`]), the writer back ([`Back`]).

use std::net::Ipv4Addr;
use std::time::Instant;

use dhcproto::v4::Message;

use crate::decide::{Dns, Reply};
use crate::lease::{Change, Lease};

/// Most commits grouped in one transaction (and the writer's queue).
pub(super) const GROUP: usize = 4096;
/// Datagrams one receive round takes from one socket before moving on (and replies the core
/// task gathers before sending).
pub(super) const BURST: usize = 256;

/// To the core task.
pub(super) enum Event {
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
pub(super) enum Kind {
    /// Hands an address to a client that does not hold it: refused while offline.
    Alloc,
    /// Extends a lease the client holds: answered and queued while offline.
    Renewal,
    /// Anything else (release, decline, expiry): queued while offline.
    Other,
}

/// The request behind an allocation, to decide again when the database refuses it.
pub(super) struct Retry {
    pub(super) iface: usize,
    pub(super) msg: Box<Message>,
    pub(super) tries: u8,
}

/// Lease changes to make durable, with what to send once they are.
pub(super) struct Commit {
    pub(super) changes: Vec<Change>,
    pub(super) reply: Option<(usize, Reply)>,
    pub(super) dns: Vec<Dns>,
    pub(super) kind: Kind,
    /// The table's records before `changes`, to put back when the commit is refused.
    pub(super) undo: Vec<Change>,
    pub(super) retry: Option<Retry>,
    /// When it was handed to the writer.
    pub(super) queued: Instant,
    /// Told once the changes are durable (`dhcpd release`); dropped unanswered otherwise.
    pub(super) done: Option<std::sync::mpsc::Sender<Result<(), ReleaseError>>>,
    /// Its number in the order the core task sent it (shared store; see [`super::inflight`]).
    pub(super) seq: u64,
}

impl Commit {
    pub(super) fn plain(changes: Vec<Change>, dns: Vec<Dns>) -> Self {
        Commit {
            changes,
            reply: None,
            dns,
            kind: Kind::Other,
            undo: Vec::new(),
            retry: None,
            queued: Instant::now(),
            done: None,
            seq: 0,
        }
    }
}

/// To the lease writer.
pub(super) enum ToWriter {
    Commit(Box<Commit>),
    /// Fetch what other servers changed (shared store), reconnecting when offline.
    Refresh,
}

/// From the writer thread to the core task.
pub(super) enum Back {
    /// The database refused an allocation (or could not be reached): these are the records to
    /// believe; decide again when `retry` is set.
    Refused {
        current: Vec<Change>,
        retry: Option<Retry>,
    },
    /// Records other servers changed, read once every commit numbered up to `upto` was settled.
    Changed { rows: Vec<Lease>, upto: u64 },
}

/// `dhcpd release IP`, for the core task: the lease on `ip` is released as by its client's
/// DHCPRELEASE; `done` hears back once that is durable (or why not).
#[derive(Debug)]
pub struct Release {
    /// The address.
    pub ip: std::net::Ipv4Addr,
    /// The answer.
    pub done: std::sync::mpsc::Sender<Result<(), ReleaseError>>,
}

/// Why `dhcpd release` did nothing.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReleaseError {
    /// No lease is bound on the address.
    #[error("no lease is bound on {0}")]
    NotBound(std::net::Ipv4Addr),
}
