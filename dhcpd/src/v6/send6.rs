//! The DHCPv6 sender thread: it sends the replies the core hands over once their changes are
//! durable (one `sendmmsg` per interface for as many as it takes, through the interface's task
//! what the socket cannot take at once), then queues their DNS events. On its own thread the
//! send path (on a veth, the kernel delivers to the receiver inside the sending call) costs the
//! core nothing: the core only decides and commits.

use std::net::{SocketAddr, SocketAddrV6};
use std::sync::mpsc as smpsc;

use dhcproto::v6::{Message, MessageType};
use hostfile::DhcpView;
use tokio::sync::{mpsc, watch};

use super::fqdn;
use super::lease::Change6;
use super::links::Link;
use super::metrics::Stats6;
use crate::ddns::v6::Event6;

/// What the core hands the sender, in its order: replies whose changes are durable, and the
/// DNS events of changes made without a reply (ended bindings, admin releases), so that the
/// events keep the order of the changes.
pub(super) enum Handoff {
    Replies(Vec<Held>),
    Dns(Option<Message>, Vec<Change6>),
}

/// A reply for one interface's task: destination and bytes.
pub(super) type Out = (SocketAddrV6, Vec<u8>);
/// Batches of durable replies waiting for the sender; beyond this the core waits for it.
pub(super) const HANDOFF: usize = 1024;

/// Where one interface's replies go.
pub(super) struct Out6 {
    pub(super) link: Link,
    /// The interface task (replies the socket could not take at once).
    pub(super) queue: mpsc::UnboundedSender<Out>,
    /// The interface's socket.
    pub(super) direct: Option<std::net::UdpSocket>,
}

/// A decided reply on its way out (held in the batch until its changes are durable).
pub(super) struct Held {
    pub(super) link: usize,
    pub(super) dst: SocketAddrV6,
    pub(super) bytes: Vec<u8>,
    pub(super) kind: MessageType,
    /// The message and the changes it made, for its DNS events.
    pub(super) msg: Message,
    pub(super) changes: Vec<Change6>,
}

/// Queues dynamic DNS events without waiting: a full queue loses them (as v4 does), never a
/// reply.
pub(super) fn publish(tx: &mpsc::Sender<Event6>, events: Vec<Event6>) {
    for e in events {
        if tx.try_send(e).is_err() {
            tracing::warn!("dynamic DNS queue full: DHCPv6 update dropped");
        }
    }
}

/// The DNS events of durable binding changes.
pub(super) fn dns(
    ddns: Option<&mpsc::Sender<Event6>>,
    view: &watch::Receiver<std::sync::Arc<DhcpView>>,
    msg: Option<&Message>,
    changes: &[Change6],
) {
    if let Some(tx) = ddns {
        publish(tx, fqdn::events(msg, changes, &view.borrow().reservations6));
    }
}

/// The sender thread's state.
pub(super) struct Sender6 {
    pub(super) outs: Vec<Out6>,
    pub(super) stats: std::sync::Arc<Stats6>,
    pub(super) ddns: Option<mpsc::Sender<Event6>>,
    pub(super) view: watch::Receiver<std::sync::Arc<DhcpView>>,
}

impl Sender6 {
    /// Sends what the core hands over, taking what has piled up meanwhile in one go, until the
    /// core is gone.
    pub(super) fn run(self, rx: &smpsc::Receiver<Handoff>) {
        while let Ok(first) = rx.recv() {
            let mut replies = Vec::new();
            let mut next = Some(first);
            while let Some(h) = next {
                match h {
                    Handoff::Replies(r) => replies.extend(r),
                    Handoff::Dns(msg, changes) => {
                        self.send(std::mem::take(&mut replies));
                        dns(self.ddns.as_ref(), &self.view, msg.as_ref(), &changes);
                    }
                }
                next = rx.try_recv().ok();
            }
            self.send(replies);
        }
    }

    fn send(&self, mut out: Vec<Held>) {
        if out.is_empty() {
            return;
        }
        out.sort_by_key(|h| h.link);
        for group in out.chunk_by(|a, b| a.link == b.link) {
            let Some(o) = self.outs.get(group[0].link) else {
                continue;
            };
            let sent: Vec<std::io::Result<()>> = match &o.direct {
                Some(sock) => {
                    let items: Vec<(SocketAddr, &[u8])> = group
                        .iter()
                        .map(|h| (SocketAddr::V6(h.dst), h.bytes.as_slice()))
                        .collect();
                    crate::io::send_many(sock, &items)
                }
                None => group
                    .iter()
                    .map(|_| Err(std::io::ErrorKind::WouldBlock.into()))
                    .collect(),
            };
            for (h, r) in group.iter().zip(sent) {
                let ok = match r {
                    Ok(()) => true,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        o.queue.send((h.dst, h.bytes.clone())).is_ok()
                    }
                    Err(e) => {
                        tracing::warn!(dst = %h.dst, error = %e, "DHCPv6 reply not sent");
                        false
                    }
                };
                if ok {
                    self.stats.sent(h.kind);
                }
            }
        }
        // After the replies left: the updates never hold them up.
        for h in &out {
            dns(self.ddns.as_ref(), &self.view, Some(&h.msg), &h.changes);
        }
    }
}
