//! The only place with system calls: a non-blocking UDP socket with batched send and receive
//! (sendmmsg/recvmmsg), a monotonic clock, an absolute sleep and the process's CPU time.

use std::io;
use std::mem::MaybeUninit;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

/// Datagrams per sendmmsg/recvmmsg call.
pub(crate) const BATCH: usize = 64;
/// Room for the longest datagram sent: a 300-octet BOOTP request, a DHCPv6 REQUEST with the
/// longest server DUID (`packet6::REQUEST_MAX`, 208 octets).
pub(crate) const PKT_MAX: usize = 320;
const _: () = assert!(crate::packet6::REQUEST_MAX <= PKT_MAX && crate::packet::REQ_LEN <= PKT_MAX);

/// One datagram to send: `buf[..len]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pkt {
    pub(crate) buf: [u8; PKT_MAX],
    pub(crate) len: usize,
}

impl Pkt {
    pub(crate) const EMPTY: Self = Self {
        buf: [0; PKT_MAX],
        len: 0,
    };

    /// A copy of `b` (at most PKT_MAX octets: callers pass their fixed templates).
    pub(crate) fn of(b: &[u8]) -> Self {
        let mut p = Self::EMPTY;
        p.buf[..b.len()].copy_from_slice(b);
        p.len = b.len();
        p
    }
}
/// Receive buffer per datagram: a DHCP reply to a 300-byte request fits easily; anything longer
/// is flagged truncated and counted as malformed.
pub(crate) const RECV_LEN: usize = 1536;

#[derive(Debug)]
pub(crate) struct Udp {
    sock: UdpSocket,
    dst: libc::sockaddr_storage,
    dst_len: libc::socklen_t,
    /// receive side, reused: the buffers, then what the last recv_batch filled in
    bufs: Box<[[u8; RECV_LEN]; BATCH]>,
    lens: [usize; BATCH],
    trunc: [bool; BATCH],
}

/// `a` as the kernel takes it (a v6 address keeps its scope id: the interface of ff02::1:2).
fn sockaddr(a: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut st: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match a {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            let s = unsafe { &mut *(&raw mut st).cast::<libc::sockaddr_in>() };
            s.sin_family = libc::AF_INET as libc::sa_family_t;
            s.sin_port = a.port().to_be();
            s.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            let s = unsafe { &mut *(&raw mut st).cast::<libc::sockaddr_in6>() };
            s.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            s.sin6_port = a.port().to_be();
            s.sin6_addr.s6_addr = a.ip().octets();
            s.sin6_scope_id = a.scope_id();
            size_of::<libc::sockaddr_in6>()
        }
    };
    (st, len as libc::socklen_t)
}

/// The index of network interface `name` (0 when there is none of that name).
pub(crate) fn if_index(name: &str) -> io::Result<u32> {
    let c = std::ffi::CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface name with a NUL"))?;
    // SAFETY: c is a NUL-terminated string that lives across the call.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface {name:?} here: {}", io::Error::last_os_error()),
        )),
        i => Ok(i),
    }
}

fn setsockopt_int(fd: i32, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: fd is an open socket; the option value is a c_int of the given size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&raw const value).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn getsockopt_int(fd: i32, level: i32, name: i32) -> io::Result<i32> {
    let mut v: i32 = 0;
    let mut len = size_of::<i32>() as libc::socklen_t;
    // SAFETY: fd is an open socket; v and len are valid for writes of their sizes.
    let r = unsafe { libc::getsockopt(fd, level, name, (&raw mut v).cast(), &raw mut len) };
    if r == 0 {
        Ok(v)
    } else {
        Err(io::Error::last_os_error())
    }
}

impl Udp {
    /// Binds `local` (v4: the relay's address, port 67; v6: [::]:546 on `device`), sends to
    /// `server` (v6: ff02::1:2 with the interface as scope, or a unicast address). `device`
    /// (SO_BINDTODEVICE) keeps the socket to one link. `buf_bytes` sizes both socket buffers
    /// (SO_RCVBUFFORCE when root, else SO_RCVBUF capped by rmem_max); returns the receive buffer
    /// the kernel granted, for the report.
    pub(crate) fn bind(
        local: SocketAddr,
        device: Option<&str>,
        server: SocketAddr,
        buf_bytes: i32,
    ) -> io::Result<(Self, i32)> {
        let sock = UdpSocket::bind(local)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot bind {local}: {e}")))?;
        sock.set_nonblocking(true)?;
        let fd = sock.as_raw_fd();
        if let Some(dev) = device {
            // SAFETY: fd is an open socket; the value is dev's bytes, of the given length.
            let r = unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_BINDTODEVICE,
                    dev.as_ptr().cast(),
                    dev.len() as libc::socklen_t,
                )
            };
            if r != 0 {
                let e = io::Error::last_os_error();
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot bind to {dev}: {e}"),
                ));
            }
        }
        for (force, plain) in [
            (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
            (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
        ] {
            if setsockopt_int(fd, libc::SOL_SOCKET, force, buf_bytes).is_err() {
                setsockopt_int(fd, libc::SOL_SOCKET, plain, buf_bytes)?;
            }
        }
        let granted = getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF)?;
        let (dst, dst_len) = sockaddr(server);
        let udp = Self {
            sock,
            dst,
            dst_len,
            bufs: Box::new([[0; RECV_LEN]; BATCH]),
            lens: [0; BATCH],
            trunc: [false; BATCH],
        };
        Ok((udp, granted))
    }

    /// Sends up to BATCH datagrams to the server in one sendmmsg; returns how many left (0 when
    /// the socket buffer is full: the caller keeps the rest for the next tick).
    pub(crate) fn send_batch(&self, pkts: &[Pkt]) -> io::Result<usize> {
        let n = pkts.len().min(BATCH);
        if n == 0 {
            return Ok(0);
        }
        // SAFETY: iovec and mmsghdr are plain old data; all-zero is valid.
        let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for i in 0..n {
            iov[i].iov_base = pkts[i].buf.as_ptr() as *mut libc::c_void;
            iov[i].iov_len = pkts[i].len;
            msgs[i].msg_hdr.msg_name = (&raw const self.dst) as *mut libc::c_void;
            msgs[i].msg_hdr.msg_namelen = self.dst_len;
            msgs[i].msg_hdr.msg_iov = &raw mut iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: msgs[..n] point at live iovecs over live buffers and at self.dst; the kernel
        // only reads them (and writes msg_len).
        let r = unsafe {
            libc::sendmmsg(
                self.sock.as_raw_fd(),
                msgs.as_mut_ptr(),
                n as u32,
                libc::MSG_DONTWAIT,
            )
        };
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::WouldBlock {
            Ok(0)
        } else {
            Err(e)
        }
    }

    /// Receives up to BATCH datagrams without waiting; returns how many (0: none queued). Read
    /// them with `datagram(i)`.
    pub(crate) fn recv_batch(&mut self) -> io::Result<usize> {
        // SAFETY: as in send_batch.
        let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for i in 0..BATCH {
            iov[i].iov_base = self.bufs[i].as_mut_ptr().cast();
            iov[i].iov_len = RECV_LEN;
            msgs[i].msg_hdr.msg_iov = &raw mut iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: every msg points at its own RECV_LEN-byte buffer owned by self; no timeout.
        let r = unsafe {
            libc::recvmmsg(
                self.sock.as_raw_fd(),
                msgs.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::WouldBlock {
                Ok(0)
            } else {
                Err(e)
            };
        }
        let n = r as usize;
        for (i, m) in msgs.iter().enumerate().take(n) {
            self.lens[i] = m.msg_len as usize;
            self.trunc[i] = m.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        }
        Ok(n)
    }

    /// Datagram i of the last recv_batch, or None when it was truncated.
    pub(crate) fn datagram(&self, i: usize) -> Option<&[u8]> {
        if self.trunc[i] {
            None
        } else {
            Some(&self.bufs[i][..self.lens[i]])
        }
    }
}

/// CLOCK_MONOTONIC in nanoseconds.
pub(crate) fn mono_ns() -> u64 {
    let mut ts = MaybeUninit::<libc::timespec>::uninit();
    // SAFETY: ts is valid for writes; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, ts.as_mut_ptr()) };
    // SAFETY: clock_gettime filled it in.
    let ts = unsafe { ts.assume_init() };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Sleeps until CLOCK_MONOTONIC reaches `deadline_ns` (restarted after signals).
pub(crate) fn sleep_until(deadline_ns: u64) {
    let ts = libc::timespec {
        tv_sec: (deadline_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (deadline_ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: ts is a valid absolute time; no remaining-time output with TIMER_ABSTIME.
    while unsafe {
        libc::clock_nanosleep(
            libc::CLOCK_MONOTONIC,
            libc::TIMER_ABSTIME,
            &ts,
            std::ptr::null_mut(),
        )
    } == libc::EINTR
    {}
}

/// This process's user and system CPU time, in microseconds (getrusage).
pub(crate) fn cpu_us() -> (u64, u64) {
    let mut ru = MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: ru is valid for writes; RUSAGE_SELF always succeeds.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr()) };
    // SAFETY: getrusage filled it in.
    let ru = unsafe { ru.assume_init() };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    (us(ru.ru_utime), us(ru.ru_stime))
}
