//! The lease writer (a thread of its own): commits lease changes in groups, at most one
//! transaction per [`COMMIT_INTERVAL`], then sends the replies those commits allow; with a shared
//! database, queues what is acknowledged during an outage and writes it once the database is back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::decide::{self, Dns, Reply};
use crate::io::Iface;
use crate::lease::{Change, unix_now};
use crate::metrics::Stats;
use crate::store::{LeaseStore, Spool, StoreError};

use super::msg::{Back, Commit, GROUP, Kind, ToWriter};
use super::ratelog::RateLog;
use super::send::send_batch;

/// Least time between the starts of two lease transactions (group commit pacing).
const COMMIT_INTERVAL: Duration = Duration::from_millis(10);

pub(super) struct Writer {
    pub(super) ifaces: Arc<Vec<Iface>>,
    pub(super) port: u16,
    pub(super) stats: Arc<Stats>,
    pub(super) dns_tx: Option<mpsc::Sender<Dns>>,
    pub(super) back: mpsc::UnboundedSender<Back>,
    pub(super) offline: Arc<AtomicBool>,
    /// Changes acknowledged while the shared database was unreachable, oldest first.
    pub(super) backlog: Vec<Vec<Change>>,
    /// The backlog on disk.
    pub(super) spool: Option<Spool>,
    pub(super) last_try: Option<Instant>,
    pub(super) refused_log: RateLog,
    /// Replies of the changes just committed, to send together.
    pub(super) out: Vec<(usize, Reply)>,
    /// Highest number of a commit written, queued in the backlog or refused.
    pub(super) settled: u64,
}

/// How often an unreachable database is tried again.
const RECONNECT: Duration = Duration::from_secs(1);

impl Writer {
    pub(super) fn run(mut self, mut store: Box<dyn LeaseStore>, mut rx: mpsc::Receiver<ToWriter>) {
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
                    // Sent even when empty: the core then forgets the addresses it covers.
                    Ok(rows) => {
                        let _ = self.back.send(Back::Changed {
                            rows,
                            upto: self.settled,
                        });
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

    fn go_offline(&mut self, e: &StoreError) {
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
        match store.commit_groups(&groups, unix_now()) {
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
                    let _ = self.back.send(Back::Changed {
                        rows,
                        upto: self.settled,
                    });
                }
            }
            Err(e) => tracing::debug!(error = %e, "lease database still unreachable"),
        }
    }

    fn commit(&mut self, store: &mut dyn LeaseStore, batch: &mut Vec<Commit>, shared: bool) {
        if let Some(s) = batch.iter().map(|c| c.seq).max() {
            self.settled = self.settled.max(s);
        }
        if !self.offline.load(Ordering::Relaxed) {
            let groups: Vec<&[Change]> = batch.iter().map(|c| c.changes.as_slice()).collect();
            let any = groups.iter().any(|g| !g.is_empty());
            let started = Instant::now();
            let result = store.commit_groups(&groups, unix_now());
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
        if let Some(done) = c.done {
            let _ = done.send(Ok(()));
        }
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
