//! The core task: owns the lease table, decides about each request (the pure [`decide`]
//! functions), and hands lease changes to the writer or replies straight to the send path.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use dhcproto::v4::Message;
use hostfile::DhcpView;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::decide::{self, Reply, Rx};
use crate::index::ViewIndex;
use crate::io::Iface;
use crate::lease::{Change, LeaseState, LeaseTable, unix_now};
use crate::metrics::{RecentEvent, RecentKind, Stats};
use crate::ping;

use super::inflight::InFlight;
use super::msg::{BURST, Back, Commit, Event, GROUP, Kind, Release, ReleaseError, Retry, ToWriter};
use super::ratelog::RateLog;
use super::send::{send_batch, send_now};

/// Commits waiting for a shared store beyond which new exchanges are dropped.
const SHARED_BACKLOG: usize = 128;

/// Tries to decide again after the database refused an address.
const RETRIES: u8 = 4;

/// What the core task listens to.
pub(super) struct Inputs {
    /// Reloads of the host table.
    pub(super) view: watch::Receiver<Arc<DhcpView>>,
    /// Stops the loop.
    pub(super) shutdown: CancellationToken,
    /// Exchanges under way (and ping results), served first.
    pub(super) ev_rx: mpsc::Receiver<Event>,
    /// New exchanges (DISCOVER, BOOTP).
    pub(super) new_rx: mpsc::Receiver<Event>,
    /// From the lease writer.
    pub(super) back_rx: mpsc::UnboundedReceiver<Back>,
    /// `[dhcp] discover-backlog` for the receive tasks, updated on reloads.
    pub(super) admit_limit: Arc<AtomicU32>,
    /// `dhcpd release IP` from the control socket.
    pub(super) admin_rx: mpsc::Receiver<Release>,
}

/// The core task's state: configuration, lease table, and the way to the writer.
pub(super) struct Core {
    pub(super) cfg: ViewIndex,
    pub(super) table: LeaseTable,
    pub(super) ifaces: Arc<Vec<Iface>>,
    pub(super) port: u16,
    pub(super) stats: Arc<Stats>,
    pub(super) wr_tx: mpsc::Sender<ToWriter>,
    pub(super) ev_tx: mpsc::Sender<Event>,
    pub(super) pings: Arc<tokio::sync::Semaphore>,
    pub(super) log: RateLog,
    pub(super) offline_log: RateLog,
    pub(super) shared: bool,
    pub(super) offline: Arc<AtomicBool>,
    /// Replies that need no commit (OFFERs), sent together once the queues are empty.
    pub(super) out: Vec<(usize, Reply)>,
    /// Addresses changed since the writer last read the shared database.
    pub(super) inflight: InFlight,
}

impl Core {
    /// Runs until shutdown, a closed input or a gone writer.
    pub(super) async fn run(mut self, mut i: Inputs) {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        let mut refresh = tokio::time::interval(Duration::from_secs(1));
        let mut admin_open = true;
        loop {
            tokio::select! {
                biased;
                _ = i.shutdown.cancelled() => break,
                r = i.view.changed() => {
                    if r.is_err() { break; }
                    self.cfg = ViewIndex::new(i.view.borrow_and_update().clone());
                    i.admit_limit.store(self.cfg.view.discover_backlog, Ordering::Relaxed);
                    tracing::info!(leases = self.table.len(), discover_backlog = self.cfg.view.discover_backlog, "host table reloaded; leases kept");
                }
                _ = tick.tick() => {
                    let t = unix_now();
                    let ended = decide::expire_each(&self.table, t, 10_000);
                    if !ended.is_empty() {
                        tracing::debug!(count = ended.len(), "leases expired");
                    }
                    // One commit each: a shared database refusing one (the other server renewed
                    // it) sends back its row, and only that lease keeps its name.
                    let mut gone = false;
                    for d in ended {
                        for c in &d.changes { self.table.apply(c); }
                        if !self.submit(Commit::plain(d.changes, d.dns)).await { gone = true; break; }
                    }
                    if gone { break; }
                    // After the expiry check, so the counts leave out what it reclaimed.
                    self.stats.census(&self.table, &self.cfg.view);
                }
                _ = refresh.tick(), if self.shared => {
                    // Never wait for the writer: a refresh can be skipped.
                    let _ = self.wr_tx.try_send(ToWriter::Refresh);
                }
                r = i.admin_rx.recv(), if admin_open => {
                    let Some(r) = r else { admin_open = false; continue };
                    match decide::admin_release(&self.table, r.ip, unix_now()) {
                        None => {
                            let _ = r.done.send(Err(ReleaseError::NotBound(r.ip)));
                        }
                        Some(d) => {
                            tracing::info!(ip = %r.ip, "lease released by the administrator");
                            for c in &d.changes { self.table.apply(c); }
                            let mut c = Commit::plain(d.changes, d.dns);
                            // Answered by the writer once the change is durable.
                            c.done = Some(r.done);
                            if !self.submit(c).await { break; }
                        }
                    }
                }
                b = i.back_rx.recv() => {
                    let Some(b) = b else { break };
                    match b {
                        Back::Changed { rows, upto } => {
                            for l in self.inflight.current(rows, upto) { self.table.apply(&Change::Put(l)); }
                        }
                        Back::Refused { current, retry } => {
                            for c in &current { self.table.apply(c); }
                            if let Some(r) = retry && r.tries < RETRIES {
                                tracing::debug!(tries = r.tries, "address taken by another server: choosing again");
                                if !self.packet(r.iface, r.msg, r.tries + 1).await { break; }
                                self.flush();
                            }
                        }
                    }
                }
                // Exchanges under way first.
                ev = async {
                    tokio::select! {
                        biased;
                        e = i.ev_rx.recv() => e,
                        e = i.new_rx.recv() => e,
                    }
                } => {
                    let Some(ev) = ev else { break };
                    match ev {
                        Event::Packet { iface, msg } => {
                            if !self.packet(iface, msg, 0).await { break; }
                            if self.out.len() >= BURST || (i.ev_rx.is_empty() && i.new_rx.is_empty()) {
                                self.flush();
                            }
                        }
                        Event::Probed { iface, ip, alive, reply, commit } => {
                            if alive {
                                tracing::warn!(%ip, "address answers ping: on probation, not offered");
                                self.stats.conflicts.inc();
                                self.stats.remember(RecentEvent { at: unix_now(), kind: RecentKind::Conflict, ip, mac: None });
                                let c = Change::Put(decide::probation(ip, unix_now(), self.cfg.view.decline_probation.as_secs()));
                                self.table.apply(&c);
                                let mut changes = commit.map(|o| o.changes).unwrap_or_default();
                                changes.retain(|o| o.ip() != ip);
                                // The offer's other changes (a withdrawn offer) stand; its address goes on probation.
                                changes.push(c);
                                if !self.submit(Commit::plain(changes, Vec::new())).await { break; }
                            } else if let Some(c) = commit {
                                if !self.submit(*c).await { break; }
                            } else {
                                send_now(&self.ifaces[iface], &reply, self.port, &self.stats);
                            }
                        }
                    }
                }
            }
        }
    }

    fn flush(&mut self) {
        send_batch(&self.ifaces, &mut self.out, self.port, &self.stats);
    }

    /// Hands a commit to the writer, numbered when the store is shared; false when it is gone.
    async fn submit(&mut self, mut c: Commit) -> bool {
        if self.shared {
            c.seq = self.inflight.stamp(c.changes.iter().map(Change::ip));
        }
        self.wr_tx.send(ToWriter::Commit(Box::new(c))).await.is_ok()
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
                if let Some(ip) =
                    crate::decode::opt_ip(&msg, dhcproto::v4::OptionCode::RequestedIpAddress)
                {
                    self.stats.remember(RecentEvent {
                        at: unix_now(),
                        kind: RecentKind::Decline,
                        ip,
                        mac: Some(crate::lease::hex_colon(msg.chaddr())),
                    });
                }
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
            now: unix_now(),
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
            done: None,
            seq: 0,
        };
        match (d.reply, d.probe) {
            (Some(reply), Some(ip)) => match self.pings.clone().try_acquire_owned() {
                Ok(permit) => {
                    let tx = self.ev_tx.clone();
                    let timeout = self.cfg.view.ping_timeout;
                    let commit = shared.then(|| Box::new(commit(Some(reply.clone()))));
                    if let Some(c) = &commit {
                        // Changed in the table now, sent to the writer after the check.
                        self.inflight.hold(c.changes.iter().map(Change::ip));
                    }
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
                Err(_) if shared => self.submit(commit(Some(reply))).await,
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
                    self.submit(commit(reply)).await
                }
            }
        }
    }
}
