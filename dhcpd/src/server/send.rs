//! Sending replies: many at once (one `sendmmsg` per interface) or one alone.

use crate::decide::{self, Reply};
use crate::io::{self, Iface};
use crate::metrics::Stats;

/// Sends (and empties) `out`, a `sendmmsg` per interface.
pub(super) fn send_batch(
    ifaces: &[Iface],
    out: &mut Vec<(usize, Reply)>,
    port: u16,
    stats: &Stats,
) {
    if out.is_empty() {
        return;
    }
    out.sort_by_key(|(i, _)| *i);
    for group in out.chunk_by(|a, b| a.0 == b.0) {
        let ifc = &ifaces[group[0].0];
        let items: Vec<(decide::Dest, &[u8])> = group
            .iter()
            .map(|(_, r)| (r.dest, r.bytes.as_slice()))
            .collect();
        let sent = io::deliver_many(&ifc.sock, &ifc.name, &items, port);
        for ((_, r), res) in group.iter().zip(sent) {
            match res {
                Ok(to) => {
                    stats.sent_reply(r.kind);
                    tracing::debug!(iface = %ifc.name, %to, yiaddr = %r.yiaddr, "sent {}", r.kind);
                }
                Err(e) => {
                    tracing::warn!(iface = %ifc.name, dest = ?r.dest, error = %e, "cannot send {}", r.kind)
                }
            }
        }
    }
    out.clear();
}

pub(super) fn send_now(ifc: &Iface, r: &Reply, port: u16, stats: &Stats) {
    match io::deliver(&ifc.sock, &ifc.name, r.dest, &r.bytes, port) {
        Ok(to) => {
            stats.sent_reply(r.kind);
            tracing::debug!(iface = %ifc.name, %to, yiaddr = %r.yiaddr, "sent {}", r.kind);
        }
        Err(e) => {
            tracing::warn!(iface = %ifc.name, dest = ?r.dest, error = %e, "cannot send {}", r.kind)
        }
    }
}
