//! The receive side: one task drains every interface's socket, admits new exchanges, decodes,
//! and queues requests for the core task by kind.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::decode;
use crate::metrics::Stats;

use super::admission::Admission;
use super::msg::{BURST, Event};
use super::ratelog::RateLog;

/// Rest between receive rounds while datagrams keep coming (bounds the wake-ups per second).
const COALESCE: Duration = Duration::from_millis(1);

/// The receive side: decodes datagrams and queues them for the core task.
pub(super) struct Receiver {
    pub(super) socks: Vec<(tokio::net::UdpSocket, String)>,
    pub(super) tx: mpsc::Sender<Event>,
    pub(super) new_tx: mpsc::Sender<Event>,
    pub(super) stats: Arc<Stats>,
    pub(super) log: RateLog,
    pub(super) admission: Admission,
    /// `[dhcp] discover-backlog`, as the core task last saw it (reloads change it).
    pub(super) admit_limit: Arc<AtomicU32>,
}

impl Receiver {
    pub(super) async fn run(mut self) {
        let mut buf = vec![0u8; 4096];
        loop {
            let mut got = 0;
            for i in 0..self.socks.len() {
                for _ in 0..BURST {
                    match self.socks[i].0.try_recv_from(&mut buf) {
                        Ok((n, src)) => {
                            got += 1;
                            self.datagram(i, &buf[..n], src);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            tracing::warn!(iface = %self.socks[i].1, error = %e, "receive failed");
                            break;
                        }
                    }
                }
            }
            if got > 0 {
                // Let the core task answer this batch. When it has caught up, rest briefly
                // (blocking this thread: datagrams arriving meanwhile wait in the socket instead
                // of waking it); while a backlog remains, go straight back to reading, so that
                // the socket never overflows and overload is shed here, by type.
                tokio::task::yield_now().await;
                if self.tx.capacity() == self.tx.max_capacity()
                    && self.new_tx.capacity() == self.new_tx.max_capacity()
                {
                    std::thread::sleep(COALESCE);
                }
                continue;
            }
            std::future::poll_fn(|cx| {
                for (s, _) in &self.socks {
                    if s.poll_recv_ready(cx).is_ready() {
                        return std::task::Poll::Ready(());
                    }
                }
                std::task::Poll::Pending
            })
            .await;
        }
    }

    fn datagram(&mut self, i: usize, b: &[u8], src: std::net::SocketAddr) {
        self.stats.received.inc();
        // New exchanges queue apart: when their queue is full they are dropped before the cost
        // of decoding.
        let starts_exchange = matches!(decode::peek_type(b), None | Some(1));
        let queue = if starts_exchange {
            &self.new_tx
        } else {
            &self.tx
        };
        let Ok(permit) = queue.try_reserve() else {
            self.stats.overload.inc();
            return;
        };
        let msg = match decode::parse(b) {
            Ok(msg) => msg,
            Err(e) => {
                self.stats.bad.inc();
                let name = &self.socks[i].1;
                self.log.warn(|sup| {
                    tracing::warn!(iface = %name, %src, len = b.len(), suppressed = sup, "dropped bad packet: {e}")
                });
                return;
            }
        };
        // Admission counts decoded requests only: junk sent to the port uses up neither the
        // allowance of new exchanges nor, as REQUESTs, makes room for more.
        if starts_exchange {
            let limit = self.admit_limit.load(Ordering::Relaxed);
            if !self.admission.admit(std::time::Instant::now(), limit) {
                self.stats.overload.inc();
                self.stats.admission.inc();
                return;
            }
        } else if msg.opts().msg_type() == Some(dhcproto::v4::MessageType::Request) {
            self.admission.request(std::time::Instant::now());
        }
        permit.send(Event::Packet {
            iface: i,
            msg: Box::new(msg),
        });
    }
}

#[cfg(test)]
mod tests;
