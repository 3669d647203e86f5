//! The DHCPv6 writer thread (embedded store): it makes the core's batches of changes durable,
//! several queued batches in one transaction, and only then hands their replies to the sender.
//! The core goes on deciding meanwhile (on its table, where the changes already stand) instead
//! of waiting for each fsync. A failed commit sends none of its replies, nor those of the
//! batches after it, until the core has reloaded its table from the store ([`Writer::settle`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as smpsc;

use super::lease::Change6;
use super::metrics::Stats6;
use super::send6::{Handoff, Held};
use super::store::WriteFn;

/// Batches waiting for the writer; beyond this the core waits for it.
const PENDING: usize = 64;

/// What the core asks of the writer, in order.
pub(super) enum Job {
    /// Make these durable, then send these replies.
    Commit(Vec<Change6>, Vec<Held>),
    /// Pass on to the sender after what came before.
    Forward(Handoff),
    /// Answer once everything before is durable (or failed).
    Barrier(smpsc::SyncSender<()>),
}

/// The core's handle on its writer thread.
pub(super) struct Writer {
    tx: smpsc::SyncSender<Job>,
    failed: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Writer {
    /// Starts the thread.
    pub(super) fn start(
        write: WriteFn,
        sender: smpsc::SyncSender<Handoff>,
        stats: Arc<Stats6>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = smpsc::sync_channel(PENDING);
        let failed = Arc::new(AtomicBool::new(false));
        let f = failed.clone();
        let thread = std::thread::Builder::new()
            .name("dhcpv6-write".into())
            .spawn(move || run(write, &rx, &sender, &stats, &f))?;
        Ok(Writer { tx, failed, thread })
    }

    /// Ends the thread once what it holds is durable and handed to the sender.
    pub(super) fn close(self) {
        drop(self.tx);
        let _ = self.thread.join();
    }

    /// Queues a job (false when the thread is gone).
    pub(super) fn send(&self, job: Job) -> bool {
        self.tx.send(job).is_ok()
    }

    /// Waits until everything queued is durable (or failed). True when a commit failed since
    /// the last call: the store holds the truth, the core reloads its table from it.
    pub(super) fn settle(&self) -> bool {
        let (ack, done) = smpsc::sync_channel(1);
        if self.send(Job::Barrier(ack)) {
            let _ = done.recv();
        }
        self.failed.swap(false, Ordering::AcqRel)
    }

    /// True when a commit failed (the core settles and reloads).
    pub(super) fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }
}

fn run(
    mut write: WriteFn,
    rx: &smpsc::Receiver<Job>,
    sender: &smpsc::SyncSender<Handoff>,
    stats: &Stats6,
    failed: &AtomicBool,
) {
    let mut next = rx.recv().ok();
    while let Some(job) = next.take() {
        match job {
            Job::Forward(h) => {
                let _ = sender.send(h);
            }
            Job::Barrier(ack) => {
                let _ = ack.send(());
            }
            Job::Commit(mut changes, mut held) => {
                // The batches queued meanwhile go in the same transaction.
                loop {
                    match rx.try_recv() {
                        Ok(Job::Commit(c, h)) => {
                            changes.extend(c);
                            held.extend(h);
                        }
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                if failed.load(Ordering::Acquire) {
                    // Decided on changes that did not become durable: no reply.
                } else if let Err(e) = write(&changes) {
                    failed.store(true, Ordering::Release);
                    stats.commit_errors.inc();
                    let n = held.len();
                    tracing::warn!(error = %e, replies = n, "DHCPv6 bindings not written: no reply");
                } else {
                    let _ = sender.send(Handoff::Replies(held));
                }
            }
        }
        if next.is_none() {
            next = rx.recv().ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv6Addr, SocketAddrV6};
    use std::sync::Mutex;

    use dhcproto::v6::{Message, MessageType};

    use super::*;
    use crate::v6::lease::{IaKind, Key6, Store6Error};

    fn change(i: u8) -> Vec<Change6> {
        vec![Change6::Delete(Key6 {
            duid: vec![0, 3, 0, 1, i],
            iaid: 1,
            kind: IaKind::Na,
        })]
    }

    fn reply(i: u8) -> Vec<Held> {
        vec![Held {
            link: 0,
            dst: SocketAddrV6::new(Ipv6Addr::LOCALHOST, 546, 0, 0),
            bytes: vec![i],
            kind: MessageType::Reply,
            msg: Message::new(MessageType::Request),
            changes: change(i),
        }]
    }

    fn sent(rx: &smpsc::Receiver<Handoff>) -> Vec<u8> {
        let mut out = Vec::new();
        while let Ok(h) = rx.try_recv() {
            if let Handoff::Replies(r) = h {
                out.extend(r.iter().map(|h| h.bytes[0]));
            }
        }
        out
    }

    /// A writer whose store fails the commits whose first change is for client `fail`.
    fn writer(fail: u8) -> (Writer, smpsc::Receiver<Handoff>, Arc<Mutex<Vec<u8>>>) {
        let written = Arc::new(Mutex::new(Vec::new()));
        let w = written.clone();
        let write: WriteFn = Box::new(move |c: &[Change6]| {
            let ids: Vec<u8> = c
                .iter()
                .map(|c| match c {
                    Change6::Delete(k) => k.duid[4],
                    Change6::Put(l) => l.key.duid[4],
                })
                .collect();
            if ids.first() == Some(&fail) {
                return Err(Store6Error::Corrupt(0));
            }
            w.lock().unwrap().extend(ids);
            Ok(())
        });
        let (tx, rx) = smpsc::sync_channel(16);
        let stats = Arc::new(Stats6::default());
        (Writer::start(write, tx, stats).unwrap(), rx, written)
    }

    #[test]
    fn replies_leave_only_after_their_changes_are_written() {
        let (w, rx, written) = writer(0);
        assert!(w.send(Job::Commit(change(1), reply(1))));
        assert!(w.send(Job::Commit(change(2), reply(2))));
        assert!(!w.settle(), "no commit failed");
        assert_eq!(*written.lock().unwrap(), vec![1, 2]);
        assert_eq!(sent(&rx), vec![1, 2]);
        w.close();
    }

    #[test]
    fn a_failed_commit_holds_back_every_reply_until_the_core_settles() {
        let (w, rx, written) = writer(1);
        assert!(w.send(Job::Commit(change(1), reply(1))));
        assert!(w.send(Job::Commit(change(2), reply(2))));
        assert!(w.settle(), "the failure is reported once");
        assert!(sent(&rx).is_empty(), "a reply left without its write");
        assert!(written.lock().unwrap().is_empty());
        assert!(w.send(Job::Commit(change(3), reply(3))));
        assert!(!w.settle());
        assert_eq!(sent(&rx), vec![3]);
        assert_eq!(*written.lock().unwrap(), vec![3]);
        w.close();
    }
}
