//! One carried connection: accepting it, connecting to the picked backend (a failed backend is
//! skipped once, with the client's bytes already read), then handing both sockets to the pump.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::pick::Shared;
use super::pump::{BUF, PooledBuffers, splice_idle};

/// Time allowed to connect to a backend.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A carried connection with no byte either way for this long is closed (IPVS's TCP
/// established timeout).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(900);

pub(super) async fn serve(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        let permit = tokio::select! {
            _ = stop.cancelled() => return,
            p = shared.conns.acquire() => match p { Ok(p) => p, Err(_) => return },
        };
        let (client, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    // EMFILE and friends: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        permit.forget();
        delay_acks(&client);
        let shared = shared.clone();
        tokio::spawn(async move {
            carry(client, peer, &shared).await;
            shared.conns.add_permits(1);
        });
    }
}

/// Closes with RST (SO_LINGER 0) so a refused client learns at once.
pub(super) fn reset(s: &TcpStream) {
    let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
}

/// Puts an accepted client connection in delayed-ACK ("ping-pong") mode from its start
/// (TCP_QUICKACK off): the kernel otherwise answers the first bytes of a new connection with a
/// bare ACK at once, while here the ACK can ride on the backend's answer a moment later (or
/// goes out on the delayed-ACK timer, 40 ms, if that answer is slow). One packet fewer each way
/// on the client's link when the request arrives after the accept, as it does for about half
/// of `Connection: close` requests in `bench/lb/run.sh`. The setting is not inherited from
/// the listener, hence one call per connection; a failure only costs that packet.
pub(super) fn delay_acks(s: &TcpStream) {
    let _ = socket2::SockRef::from(s).set_tcp_quickack(false);
}

/// Sets the integer TCP option `opt` of `fd` to `val`.
fn set_tcp_int(fd: std::os::fd::RawFd, opt: libc::c_int, val: libc::c_int) -> std::io::Result<()> {
    // SAFETY: setsockopt(2) on a descriptor we own, reading one c_int from a live local.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            opt,
            (&raw const val).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Starts a connection to a backend: a non-blocking socket with TCP_NODELAY set before the
/// SYN (one call fewer per connection than setting it after), the SYN sent, the socket
/// registered with this thread's reactor. [`established`] waits for the outcome.
///
/// TCP_DEFER_ACCEPT on a connecting socket (Linux honours it there too: the SYN-SENT state
/// checks it) holds back the ACK that completes the handshake, so it leaves with the client's
/// first bytes that [`established`] writes at once: the backend gets its connection and the
/// request in one segment (one packet and one wake-up fewer for it), and the answer's ACK
/// also rides on later segments. When the client has sent nothing yet, [`established`] sends
/// that ACK itself ([`push_ack`]), so a backend that speaks first is not kept waiting for
/// the kernel's 200 ms fallback.
pub(super) fn start_connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    use socket2::{Domain, Socket, Type};
    use std::os::fd::AsRawFd;
    let s = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking(),
        Some(socket2::Protocol::TCP),
    )?;
    s.set_tcp_nodelay(true)?;
    set_tcp_int(s.as_raw_fd(), libc::TCP_DEFER_ACCEPT, 1)?;
    match s.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    TcpStream::from_std(s.into())
}

/// Connects to `addr` (for tests and the plain path: waits, then checks SO_ERROR).
#[cfg(test)]
pub(super) async fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let s = start_connect(addr)?;
    s.writable().await?;
    match s.take_error()? {
        Some(e) => Err(e),
        None => {
            push_ack(&s);
            Ok(s)
        }
    }
}

/// Reads what `s` has already received, without waiting: `WouldBlock` when the reactor has
/// not seen it readable (then no call is made). Unlike `try_read`, a short read tells the
/// reactor the socket is drained, so the next read waits for an event instead of costing a
/// call that returns EAGAIN.
pub(super) async fn read_ready(s: &mut TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::pin::Pin;
    use std::task::Poll;
    use tokio::io::{AsyncRead, ReadBuf};
    std::future::poll_fn(|cx| {
        let mut rb = ReadBuf::new(buf);
        Poll::Ready(match Pin::new(&mut *s).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) => Ok(rb.filled().len()),
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Err(std::io::ErrorKind::WouldBlock.into()),
        })
    })
    .await
}

/// Sends the handshake's last ACK that [`start_connect`] held back (TCP_QUICKACK on sends a
/// pending ACK now), for a connection with no bytes to carry it yet. On failure the kernel
/// still sends it on its delayed-ACK timer.
pub(super) fn push_ack(s: &TcpStream) {
    let _ = socket2::SockRef::from(s).set_tcp_quickack(true);
}

/// Why opening the way to a backend stopped.
#[derive(Debug)]
pub(super) enum OpenError {
    /// The backend could not be reached: another one may be tried with the same bytes.
    Backend(std::io::Error),
    /// The client failed (reset): nothing to retry.
    Client(std::io::Error),
}

/// Waits until the connection `up` is established and relays the client's first bytes to
/// it: `*held` bytes of `buf` already read from the client (an earlier backend failed), or,
/// when none are held, whatever the client has already sent (read only if the reactor has
/// seen the client readable, so no call is made in vain; `*held` then says how much was
/// read, so a failed backend's successor gets the same bytes). The first write is the connect's
/// outcome: a refused or unreachable backend fails it with that error, so the usual
/// getsockopt(SO_ERROR) is only needed when the client has sent nothing yet (protocols where
/// the server speaks first). Returns the bytes of `buf` relayed.
pub(super) async fn established(
    up: &TcpStream,
    client: &mut TcpStream,
    buf: &mut [u8],
    held: &mut usize,
) -> Result<usize, OpenError> {
    up.writable().await.map_err(OpenError::Backend)?;
    if *held == 0 {
        *held = match read_ready(client, buf).await {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
            Err(e) => return Err(OpenError::Client(e)),
        };
    }
    let n = *held;
    if n == 0 {
        // Nothing to send (or the client already half-closed): ask the socket.
        return match up.take_error() {
            Ok(None) => {
                push_ack(up);
                Ok(0)
            }
            Ok(Some(e)) | Err(e) => Err(OpenError::Backend(e)),
        };
    }
    let mut sent = 0;
    while sent < n {
        match up.try_write(&buf[sent..n]) {
            Ok(k) => sent += k,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                up.writable().await.map_err(OpenError::Backend)?
            }
            Err(e) => return Err(OpenError::Backend(e)),
        }
    }
    Ok(n)
}

pub(super) async fn carry(mut client: TcpStream, peer: SocketAddr, shared: &Shared) {
    let src = peer.ip().to_canonical();
    let mut bufs = PooledBuffers::take();
    let Some(b) = bufs.0.as_mut() else { return };
    let (b1, b2) = b.split_at_mut(BUF);
    // Bytes read from the client and not yet relayed (a backend failed after they were read).
    let mut held = 0;
    // Two tries: a backend that just died is skipped once before the checker notices.
    let mut tried = None;
    for _ in 0..2 {
        let Some((addr, stats)) = shared.choose(src) else {
            reset(&client);
            return;
        };
        if tried == Some(addr) {
            continue;
        }
        tried = Some(addr);
        let open = async {
            let up = start_connect(addr).map_err(OpenError::Backend)?;
            let n = established(&up, &mut client, b1, &mut held).await?;
            Ok::<_, OpenError>((up, n))
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, open).await {
            Ok(Ok((upstream, first))) => {
                stats.active.fetch_add(1, Ordering::Relaxed);
                stats.connections.inc();
                stats.to_backend.inc_by(first as u64);
                splice_idle(
                    client,
                    upstream,
                    (b1, b2),
                    IDLE_TIMEOUT,
                    &stats,
                    shared.splice,
                )
                .await;
                stats.active.fetch_sub(1, Ordering::Relaxed);
                return;
            }
            Ok(Err(OpenError::Backend(e))) => {
                tracing::debug!(backend = %addr, error = %e, "backend connect failed")
            }
            Ok(Err(OpenError::Client(e))) => {
                tracing::debug!(client = %peer, error = %e, "client failed before the backend answered");
                return;
            }
            Err(_) => tracing::debug!(backend = %addr, "backend connect timed out"),
        }
    }
    reset(&client);
}
