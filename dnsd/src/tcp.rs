//! DNS over TCP: the accept loop with its connection slots, and one connection's requests
//! (queries, updates, forwarding, zone transfers) answered in order.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::admission::TCP_IDLE;
use crate::clock::unix_now;
use crate::handler::{Decision, Transport, handle};
use crate::state::Shared;
use crate::transfer::serve_transfer;

/// Requests served on one TCP connection before it is closed.
pub const TCP_MAX_REQUESTS: u32 = 10_000;

/// Accepts TCP connections until `stop`.
pub async fn serve_tcp(shared: Arc<Shared>, l: TcpListener, stop: CancellationToken) {
    loop {
        let (s, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            r = l.accept() => match r {
                Ok(x) => x,
                Err(e) => { tracing::debug!("tcp accept: {e}"); continue; }
            },
        };
        let secondary = shared
            .policy
            .load()
            .secondaries
            .iter()
            .any(|s| s.ip == peer.ip());
        let permit = match shared.tcp.admit(peer.ip(), secondary) {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(%peer, "{e}; closing");
                continue;
            }
        };
        let (sh, st) = (shared.clone(), stop.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = st.cancelled() => {}
                _ = connection(sh, s, peer.ip()) => {}
            }
            drop(permit);
        });
    }
}

async fn write_frame(s: &mut TcpStream, b: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(b.len()).unwrap_or(u16::MAX);
    let mut f = Vec::with_capacity(b.len() + 2);
    f.extend_from_slice(&len.to_be_bytes());
    f.extend_from_slice(&b[..usize::from(len)]);
    tokio::time::timeout(TCP_IDLE, s.write_all(&f))
        .await
        .map_err(|_| std::io::ErrorKind::TimedOut)?
}

/// Waits until the client sends something (true) or has been idle longer than the idle limit,
/// which shortens while slots run short (false). The limit is looked at again every second,
/// so connections already waiting are closed sooner too, until enough are closed that slots
/// no longer run short.
async fn wait_request(shared: &Shared, s: &TcpStream) -> bool {
    let since = Instant::now();
    loop {
        let Some(left) = shared.tcp.idle_limit().checked_sub(since.elapsed()) else {
            return false;
        };
        if left.is_zero() {
            return false;
        }
        // A peek consumes nothing, so giving up on it to look at the limit again loses no
        // bytes (and unlike `readable()` it sees through readiness left from the last read).
        let mut one = [0u8; 1];
        match tokio::time::timeout(left.min(Duration::from_secs(1)), s.peek(&mut one)).await {
            Ok(Ok(n)) => return n > 0,
            Ok(Err(_)) => return false,
            Err(_) => continue,
        }
    }
}

async fn connection(shared: Arc<Shared>, mut s: TcpStream, peer: IpAddr) {
    let _ = s.set_nodelay(true);
    let mut buf = vec![0u8; 65535];
    for _ in 0..TCP_MAX_REQUESTS {
        if !wait_request(&shared, &s).await {
            return;
        }
        let len = match tokio::time::timeout(TCP_IDLE, s.read_u16()).await {
            Ok(Ok(l)) => usize::from(l),
            _ => return,
        };
        if len < 12 {
            shared.stats.malformed.inc();
            return; // garbage framing: close
        }
        match tokio::time::timeout(TCP_IDLE, s.read_exact(&mut buf[..len])).await {
            Ok(Ok(_)) => {}
            _ => {
                shared.stats.malformed.inc();
                return; // truncated frame
            }
        }
        let t0 = Instant::now();
        let pol = shared.policy.load_full();
        let mut xfr = false;
        let out = match handle(
            &pol,
            &buf[..len],
            peer,
            Transport::Tcp,
            unix_now(),
            &shared.stats,
        ) {
            Decision::Reply(b) => vec![b],
            Decision::Drop => continue,
            Decision::Forward(req) => shared
                .forward(*req, Transport::Tcp)
                .await
                .into_iter()
                .collect(),
            Decision::Update(req, t) => shared.update(*req, t).await.into_iter().collect(),
            Decision::Transfer(z, req, t) => {
                xfr = true;
                serve_transfer(&shared, z, &req, t.as_ref(), peer).await
            }
        };
        // A transfer counts once (its first message), as one answer.
        for b in out.iter().take(if xfr { 1 } else { out.len() }) {
            shared.metrics.tasks.answer(b);
        }
        if !out.is_empty() {
            shared.metrics.tasks.latency(t0.elapsed(), 1);
        }
        for b in out {
            if write_frame(&mut s, &b).await.is_err() {
                return;
            }
        }
    }
}
