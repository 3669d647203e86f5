//! NOTIFY (RFC 1996) to a secondary after a zone changed, retried until it answers.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::RecordType;
use tokio::net::UdpSocket;

use crate::clock::unix_now;
use crate::stats::Stats;
use crate::zone::ZoneData;

/// Sends NOTIFY for `z` to `addr` (signed with `key` when given), up to 5 tries 2 s apart.
pub async fn notify_one(
    addr: SocketAddr,
    z: &ZoneData,
    key: Option<hickory_proto::rr::TSigner>,
    stats: &Stats,
) {
    let id = (unix_now() as u16) ^ (z.serial() as u16);
    let mut m = Message::new(id, MessageType::Query, OpCode::Notify);
    m.metadata.authoritative = true;
    m.add_query(Query::query(z.origin.clone(), RecordType::SOA));
    m.add_answer(z.soa.clone());
    let bytes = match &key {
        Some(k) => match k.sign_message(&m, unix_now()) {
            Ok((rec, _)) => {
                m.set_signature(rec);
                m.to_vec()
            }
            Err(e) => Err(e),
        },
        None => m.to_vec(),
    };
    let Ok(bytes) = bytes else { return };
    let bind: SocketAddr = if addr.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let Ok(sock) = UdpSocket::bind(bind).await else {
        return;
    };
    if sock.connect(addr).await.is_err() {
        return;
    }
    for attempt in 1..=5 {
        if sock.send(&bytes).await.is_ok() {
            stats.notify_sent.inc();
        }
        let mut buf = [0u8; 1024];
        let wait = async {
            loop {
                let n = sock.recv(&mut buf).await.ok()?;
                if let Ok(r) = Message::from_vec(&buf[..n])
                    && r.id == id
                {
                    return Some(r.response_code);
                }
            }
        };
        if let Ok(Some(rc)) = tokio::time::timeout(Duration::from_secs(2), wait).await {
            tracing::info!(secondary = %addr, zone = %z.origin, serial = z.serial(), rcode = %rc, "NOTIFY acknowledged");
            stats.notify_acked.inc();
            stats.peers.notified(
                addr.ip(),
                &z.origin.to_ascii(),
                z.serial(),
                true,
                unix_now(),
            );
            return;
        }
        tracing::debug!(secondary = %addr, attempt, "no NOTIFY answer yet");
    }
    stats.notify_failed.inc();
    stats.peers.notified(
        addr.ip(),
        &z.origin.to_ascii(),
        z.serial(),
        false,
        unix_now(),
    );
    tracing::warn!(secondary = %addr, zone = %z.origin, "NOTIFY not acknowledged after 5 tries");
}
