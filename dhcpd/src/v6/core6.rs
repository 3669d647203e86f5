//! The DHCPv6 core thread: it owns the bindings; it decodes and decides. With the embedded store
//! it hands the changes of many messages to the writer thread ([`super::writer`]) for one group
//! commit and goes on deciding; the replies leave (from [`super::send6`]) only once durable, to
//! the client's link-local address and port or, for a relayed message, to the relay, wrapped in
//! RELAY-REPL.

use std::net::SocketAddrV6;
use std::sync::mpsc as smpsc;
use std::time::{Duration, Instant};

use dhcproto::Encodable;
use dhcproto::v6::Message;
use hostfile::DhcpView;
use tokio::sync::{mpsc, watch};

use super::admin::{self, Input};
use super::batch::Batch;
use super::decide::{Ctx, Outcome, decide};
use super::lease::{Change6, Leases6};
use super::links::{Link, subnet_of};
use super::metrics::Stats6;
use super::send6::{Handoff, Held};
use super::store::{BindingStore, Commit6, Settle6Error, settle};
use super::writer::{Job, Writer};
use super::{fqdn, relay};
use crate::ddns::v6::Event6;

/// How often the core looks for ended bindings and learns what other servers wrote (and at
/// least as often when idle).
const EXPIRE_EVERY: Duration = Duration::from_secs(2);
/// How often the gauges describing the bindings are refreshed (as the v4 core does): a walk
/// over the whole table, about 20 ms at 500,000 bindings, so not at every sweep.
const CENSUS_EVERY: Duration = Duration::from_secs(5);
/// Ready replies that are handed to the sender without waiting for the queue to empty.
const SEND_BATCH: usize = 64;

pub(super) struct Core {
    pub(super) store: Box<dyn BindingStore>,
    pub(super) leases: Leases6,
    pub(super) view: watch::Receiver<std::sync::Arc<DhcpView>>,
    /// The interfaces, by index (as the sender's).
    pub(super) links: Vec<Link>,
    /// The sender thread ([`super::send6`]): replies whose changes are durable.
    pub(super) sender: smpsc::SyncSender<Handoff>,
    pub(super) server_duid: Vec<u8>,
    pub(super) stats: std::sync::Arc<Stats6>,
    pub(super) ddns: Option<mpsc::Sender<Event6>>,
    /// The writer thread that makes the batches durable (embedded store), or none: the core
    /// commits itself.
    pub(super) writer: Option<Writer>,
    /// Replies waiting for the group commit of their changes (embedded store only).
    pub(super) batch: Batch<Held>,
    /// Replies ready to leave, handed to the sender together when the queue is empty.
    pub(super) outbox: Vec<Held>,
}

impl Core {
    /// The DNS events of durable binding changes.
    fn dns(&self, msg: Option<&Message>, changes: &[Change6]) {
        // Through the sender, after the replies handed to it before (the events keep the
        // changes' order).
        if self.ddns.is_some() && !changes.is_empty() {
            let h = Handoff::Dns(msg.cloned(), changes.to_vec());
            match &self.writer {
                Some(w) => {
                    if !w.send(Job::Forward(h)) {
                        tracing::warn!("DHCPv6 writer gone: DNS events not sent");
                    }
                }
                None => self.handoff(h),
            }
        }
    }

    /// Serves the queue. With the embedded store, the messages that arrive while one group
    /// commit runs are decided (each on the table with the changes before it applied) and their
    /// replies held; once the queue is empty (or the batch is due) one transaction makes all
    /// their changes durable, then the replies leave. The ended bindings are swept every
    /// [`EXPIRE_EVERY`] (the store touched only when one may have ended), the gauges refreshed
    /// every [`CENSUS_EVERY`].
    pub(super) fn run(mut self, rx: &smpsc::Receiver<Input>) {
        self.serve(rx);
        if let Some(w) = self.writer.take() {
            w.close();
        }
    }

    fn serve(&mut self, rx: &smpsc::Receiver<Input>) {
        let mut tick = Instant::now();
        let mut census = Instant::now();
        self.stats
            .census(&self.leases, &self.view.borrow(), crate::lease::unix_now());
        self.sweep();
        loop {
            let input = match rx.try_recv() {
                Ok(i) => Some(i),
                Err(smpsc::TryRecvError::Disconnected) => {
                    self.settle_writes();
                    return;
                }
                // Nothing waiting: send what is ready; commit now, or wait (bounded) for more
                // to commit with it while the last commit is recent.
                Err(smpsc::TryRecvError::Empty) => {
                    self.send_out();
                    let wait = if self.batch.is_empty() {
                        Some(EXPIRE_EVERY)
                    } else {
                        self.batch.idle_wait(Instant::now())
                    };
                    let Some(wait) = wait else {
                        self.flush();
                        continue;
                    };
                    match rx.recv_timeout(wait) {
                        Ok(i) => Some(i),
                        Err(smpsc::RecvTimeoutError::Timeout) => None,
                        Err(smpsc::RecvTimeoutError::Disconnected) => {
                            self.settle_writes();
                            return;
                        }
                    }
                }
            };
            match input {
                Some(Input::Packet { link, src, bytes }) => self.handle(link, src, &bytes),
                Some(Input::Admin(r)) => {
                    self.settle_writes();
                    let v = self.view.borrow().clone();
                    let released =
                        admin::answer(r, &mut self.leases, &mut *self.store, &v.reservations6);
                    self.dns(None, &released);
                }
                Some(Input::Stop) => {
                    self.settle_writes();
                    return;
                }
                None => {
                    if self.batch.idle_wait(Instant::now()).is_none() {
                        self.flush();
                    }
                }
            }
            if self.writer.as_ref().is_some_and(Writer::failed) {
                self.settle_writes();
            }
            if self.batch.due(Instant::now()) {
                self.flush();
            }
            if self.outbox.len() >= SEND_BATCH {
                self.send_out();
            }
            if tick.elapsed() >= EXPIRE_EVERY {
                tick = Instant::now();
                let now = crate::lease::unix_now();
                // A store without a writer thread is a shared one: other servers' rows are
                // learnt each time. The embedded file is touched only to remove ended bindings.
                let sweep = self.leases.may_have_ended(now);
                if sweep || self.writer.is_none() {
                    self.settle_writes();
                    super::store::refresh(&mut *self.store, &mut self.leases);
                }
                if census.elapsed() >= CENSUS_EVERY {
                    census = Instant::now();
                    self.stats.census(&self.leases, &self.view.borrow(), now);
                }
                if sweep {
                    self.sweep();
                }
            }
        }
    }

    /// Drops the bindings that have ended (durably first).
    fn sweep(&mut self) {
        let now = crate::lease::unix_now();
        let ended = self.leases.expired(now);
        if !ended.is_empty() {
            match self.store.commit(&ended, &self.leases, now) {
                Ok(_) => {
                    // A pair's other server may have renewed one meanwhile: learn that first.
                    super::store::refresh(&mut *self.store, &mut self.leases);
                    let ended = super::store::still_ended(ended, &self.leases, now);
                    self.dns(None, &ended);
                    ended.iter().for_each(|c| self.leases.apply(c));
                }
                Err(e) => tracing::warn!(error = %e, "DHCPv6: ended bindings not removed"),
            }
        }
    }

    /// Commits the held replies' changes in one transaction, then sends the replies. A failed
    /// commit sends none of them and reloads the table from the store, which holds the truth.
    fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        if let Some(w) = &self.writer {
            let (changes, held) = self.batch.take(Instant::now());
            if !w.send(Job::Commit(changes, held)) {
                tracing::warn!("DHCPv6 writer gone: replies not sent");
            }
            self.send_out();
            return;
        }
        let store = &mut *self.store;
        let (leases, now) = (&self.leases, crate::lease::unix_now());
        let done = self
            .batch
            .flush(Instant::now(), |c| match store.commit(c, leases, now)? {
                Commit6::Done => Ok(()),
                Commit6::Refused(_) => Err(Settle6Error::Contended),
            });
        match done {
            Ok(replies) => {
                self.outbox.extend(replies);
                self.send_out();
            }
            Err((e, n)) => {
                self.stats.commit_errors.inc();
                tracing::warn!(error = %e, replies = n, "DHCPv6 bindings not written: no reply");
                self.reload(now);
            }
        }
    }

    /// Hands the held replies to the writer and waits until all it holds is durable (before the
    /// core touches the store itself); reloads the table when a commit failed meanwhile.
    fn settle_writes(&mut self) {
        self.flush();
        if self.writer.as_ref().is_some_and(Writer::settle) {
            self.reload(crate::lease::unix_now());
        }
    }

    /// The table as the store holds it (after a failed group commit).
    fn reload(&mut self, now: u64) {
        match self.store.load() {
            Ok(rows) => {
                let mut t = Leases6::new();
                rows.into_iter()
                    .filter(|l| l.expires > now)
                    .for_each(|l| t.apply(&Change6::Put(l)));
                self.leases = t;
            }
            Err(e) => {
                tracing::warn!(error = %e, "DHCPv6: bindings not reloaded after a failed commit")
            }
        }
    }

    /// Hands the replies that are ready (their changes durable) to the sender thread.
    fn send_out(&mut self) {
        if self.outbox.is_empty() {
            return;
        }
        let out = std::mem::replace(&mut self.outbox, Vec::with_capacity(SEND_BATCH));
        self.handoff(Handoff::Replies(out));
    }

    fn handoff(&self, h: Handoff) {
        if self.sender.send(h).is_err() {
            tracing::warn!("DHCPv6 sender gone: replies or DNS events not sent");
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
        let Some(link) = self.links.get(i) else {
            return;
        };
        let now = crate::lease::unix_now();
        let v = self.view.borrow().clone();
        let decide_on = |leases: &Leases6| {
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
        };
        // The embedded store: decided on the table with the batch's changes applied, the reply
        // held until the batch is durable. A shared database: decided, made durable (decided
        // again if it gave the address to another server's client), applied, sent; a failed
        // write sends nothing.
        let grouped = self.store.groups();
        let outcome = if grouped {
            let mut o: Outcome = decide_on(&self.leases);
            if o.reply.is_none() {
                o.changes.clear();
            }
            o.changes.iter().for_each(|c| self.leases.apply(c));
            Ok(o)
        } else {
            settle(&mut *self.store, &mut self.leases, now, decide_on)
        };
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
        let bytes = match reply.to_vec() {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "DHCPv6 reply not encoded");
                // The changes stand: made durable here when grouped (nothing else holds them).
                if grouped {
                    self.settle_writes();
                    if let Err(e) = self.store.commit(&outcome.changes, &self.leases, now) {
                        tracing::warn!(error = %e, "DHCPv6 bindings not written");
                        self.reload(now);
                        return;
                    }
                }
                self.dns(Some(&msg), &outcome.changes);
                return;
            }
        };
        tracing::debug!(%src, asked = ?msg.msg_type(), kind = ?reply.msg_type(), relays = hops.len(), "DHCPv6 reply");
        // To the client, or to the relay it came through (its address and port).
        let held = Held {
            link: i,
            dst: src,
            bytes: relay::wrap(&hops, bytes),
            kind: reply.msg_type(),
            msg,
            changes: outcome.changes,
        };
        if !grouped {
            self.outbox.push(held);
        } else {
            let changes = held.changes.clone();
            if let Some(h) = self.batch.add(held, &changes, Instant::now()) {
                self.outbox.push(h);
            }
        }
    }
}
