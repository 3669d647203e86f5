//! Moving bytes of a carried connection: a pooled buffer per direction, splice(2) through a
//! pipe once a direction carries a large transfer, half-close, and the idle watchdog.

use std::cell::RefCell;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use runtime::metrics::Counter;
use tokio::io::Interest;
use tokio::net::TcpStream;

use super::stats::BackendStats;

/// Buffer per direction of a carried connection (HAProxy's default buffer size). A read that
/// fills it moves the direction to splice(2).
pub(super) const BUF: usize = 16 * 1024;
/// Buffers kept for reuse per thread.
pub(super) const POOL: usize = 256;

pub(super) type Buffers = Box<[u8; 2 * BUF]>;

thread_local! {
    static BUFFERS: RefCell<Vec<Buffers>> = const { RefCell::new(Vec::new()) };
}

/// A pair of buffers from this thread's pool (or newly made), returned to it on drop.
pub(super) struct PooledBuffers(pub(super) Option<Buffers>);

impl PooledBuffers {
    pub(super) fn take() -> PooledBuffers {
        let b = BUFFERS
            .with(|p| p.borrow_mut().pop())
            .unwrap_or_else(|| Box::new([0u8; 2 * BUF]));
        PooledBuffers(Some(b))
    }
}

impl Drop for PooledBuffers {
    fn drop(&mut self) {
        if let Some(b) = self.0.take() {
            BUFFERS.with(|p| {
                let mut p = p.borrow_mut();
                if p.len() < POOL {
                    p.push(b);
                }
            });
        }
    }
}

/// A pipe for splice(2); both ends closed on drop.
pub(super) struct Pipe {
    r: OwnedFd,
    w: OwnedFd,
}

impl Pipe {
    pub(super) fn new() -> std::io::Result<Pipe> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded: both descriptors are fresh and ours.
        Ok(unsafe {
            Pipe {
                r: OwnedFd::from_raw_fd(fds[0]),
                w: OwnedFd::from_raw_fd(fds[1]),
            }
        })
    }
}

/// Moves up to `len` bytes from `from` to `to` (one of them a pipe) without blocking.
pub(super) fn splice(from: RawFd, to: RawFd, len: usize) -> std::io::Result<usize> {
    // SAFETY: plain splice(2) between two descriptors we hold open; no offsets.
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Bytes asked of one splice into the pipe (the default pipe holds 64 KiB).
pub(super) const SPLICE_CHUNK: usize = 64 * 1024;

/// Activity of a carried connection: how many times bytes moved, which the idle watchdog
/// compares between its checks (no clock is read per transfer). Both directions run in one
/// task, never at once, so a plain load and store suffice.
#[derive(Default)]
pub(super) struct Activity {
    moved: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        let n = self.moved.load(Ordering::Relaxed);
        self.moved.store(n.wrapping_add(1), Ordering::Relaxed);
    }
}

/// Copies one direction; half-closes the writer at EOF. Starts with `buf`; a read that fills
/// it (and `splice`) moves the rest of the direction to splice(2) through a pipe.
///
/// `ended` is shared by the two directions of a connection: the first to reach EOF
/// half-closes its writer (shutdown(SHUT_WR), so the other side may still answer); the
/// second skips it, since both sockets are closed right after and close(2) sends that FIN
/// itself (its socket has nothing left unread, so close does not turn into a reset). That
/// saves one call per connection.
pub(super) async fn pump(
    mut r: tokio::net::tcp::ReadHalf<'_>,
    mut w: tokio::net::tcp::WriteHalf<'_>,
    buf: &mut [u8],
    act: &Activity,
    bytes: &Counter,
    splice: bool,
    ended: &AtomicBool,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Short reads left on which to look for a FIN right behind the bytes (below): the first
    // few only, where a one-answer connection (`Connection: close`, HTTP/1.0) ends; looking
    // costs a lock when there is no FIN, which a long keep-alive flow need not pay per read.
    let mut fin_probes = 4u8;
    loop {
        let mut n = r.read(buf).await?;
        if n == 0 {
            return half_close(&mut w, ended).await;
        }
        // The sender's FIN has already arrived behind these bytes (a response and then the
        // backend closing, as with `Connection: close`): take the EOF now, so the bytes and
        // the FIN that passes it on leave in one segment (MSG_MORE holds the bytes until the
        // FIN is added) instead of two, one packet fewer for both ends to handle.
        if n < buf.len() && fin_probes > 0 && {
            fin_probes -= 1;
            fin_seen(r.as_ref())
        } {
            let more = r.read(&mut buf[n..]).await?;
            if more == 0 {
                write_before_fin(&mut w, &buf[..n]).await?;
                bytes.inc_by(n as u64);
                act.touch();
                return half_close(&mut w, ended).await;
            }
            n += more;
        }
        w.write_all(&buf[..n]).await?;
        bytes.inc_by(n as u64);
        act.touch();
        if n == buf.len()
            && splice
            && let Ok(pipe) = Pipe::new()
        {
            splice_pump(r.as_ref(), w.as_ref(), &pipe, act, bytes).await?;
            return half_close(&mut w, ended).await;
        }
    }
}

/// Whether the reactor has seen the peer's FIN on `s` (its read side closed), without waiting.
pub(super) fn fin_seen(s: &TcpStream) -> bool {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let ready = std::pin::pin!(s.ready(Interest::READABLE));
    let mut cx = Context::from_waker(Waker::noop());
    matches!(ready.poll(&mut cx), Poll::Ready(Ok(r)) if r.is_read_closed())
}

/// Writes `data`, the last bytes before `w` is half-closed or closed, with MSG_MORE, so the
/// kernel holds them until the FIN that follows joins them in one segment.
pub(super) async fn write_before_fin(
    w: &mut tokio::net::tcp::WriteHalf<'_>,
    data: &[u8],
) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let s: &TcpStream = w.as_ref();
    let fd = s.as_raw_fd();
    let sent = match s.try_io(Interest::WRITABLE, || {
        // SAFETY: send(2) from a live buffer of `data.len()` bytes on a socket we hold.
        let n = unsafe {
            libc::send(
                fd,
                data.as_ptr().cast(),
                data.len(),
                libc::MSG_MORE | libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }) {
        Ok(k) => k,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
        Err(e) => return Err(e),
    };
    w.write_all(&data[sent..]).await
}

/// Half-closes `w` at the end of its direction unless the other direction has already ended
/// (see [`pump`]).
pub(super) async fn half_close(
    w: &mut tokio::net::tcp::WriteHalf<'_>,
    ended: &AtomicBool,
) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    if ended.swap(true, Ordering::AcqRel) {
        return Ok(());
    }
    w.shutdown().await
}

/// Copies one direction through `pipe` until EOF.
pub(super) async fn splice_pump(
    r: &TcpStream,
    w: &TcpStream,
    pipe: &Pipe,
    act: &Activity,
    bytes: &Counter,
) -> std::io::Result<()> {
    let (rfd, wfd) = (r.as_raw_fd(), w.as_raw_fd());
    loop {
        r.readable().await?;
        let mut held = match r.try_io(Interest::READABLE, || {
            splice(rfd, pipe.w.as_raw_fd(), SPLICE_CHUNK)
        }) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        while held > 0 {
            w.writable().await?;
            match w.try_io(Interest::WRITABLE, || splice(pipe.r.as_raw_fd(), wfd, held)) {
                Ok(n) => {
                    held -= n;
                    bytes.inc_by(n as u64);
                    act.touch();
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Carries bytes both ways until both sides close, either side fails, or nothing moves for
/// `idle`. Both directions run in this one task on borrowed halves, with the two buffers of
/// `bufs` (from the thread's pool).
pub(super) async fn splice_idle(
    mut client: TcpStream,
    mut upstream: TcpStream,
    bufs: (&mut [u8], &mut [u8]),
    idle: Duration,
    stats: &BackendStats,
    splice: bool,
) {
    let act = Activity::default();
    let (b1, b2) = bufs;
    let ended = AtomicBool::new(false);
    let (cr, cw) = client.split();
    let (ur, uw) = upstream.split();
    let both = async {
        let _ = tokio::try_join!(
            pump(cr, uw, b1, &act, &stats.to_backend, splice, &ended),
            pump(ur, cw, b2, &act, &stats.from_backend, splice, &ended)
        );
    };
    // Checks every idle/4; four checks in a row that see nothing moved mean at least `idle`
    // (at most 1.25 x idle) of silence.
    let watchdog = async {
        let (mut seen, mut quiet) = (act.moved.load(Ordering::Relaxed), 0);
        loop {
            tokio::time::sleep(idle / 4).await;
            let now = act.moved.load(Ordering::Relaxed);
            if now != seen {
                (seen, quiet) = (now, 0);
                continue;
            }
            quiet += 1;
            if quiet >= 4 {
                return;
            }
        }
    };
    tokio::select! {
        _ = both => {}
        _ = watchdog => tracing::debug!("proxied connection idle: closed"),
    }
}
