//! The leanest TCP relay this machine can run, as a yardstick for `bench/lb/run.sh`
//! (`PAIRS=ceiling`): no runtime, no timers, no accounting, no health checks, no limits.
//! One thread per CPU, each with its own SO_REUSEPORT listener and its own edge-triggered
//! epoll; per connection one accept4, one socket + connect (TCP_NODELAY before the SYN), both
//! registered once for reads and writes, bytes copied through a 16 KiB buffer per direction,
//! a half-close passed on with shutdown(SHUT_WR), both closed when both directions ended
//! (close drops the registrations; no EPOLL_CTL_DEL). Backends taken round robin.
//!
//! usage: lb-ceiling VIP:PORT BACKEND:PORT [BACKEND:PORT...]   (IPv4 or IPv6)
//! (`LB_CEILING_THREADS=N` sets the thread count; each thread keeps its own turn.)
//!
//! Not a product: a peer row. A connect that fails resets the client; nothing is retried.

use std::net::SocketAddr;
use std::os::fd::RawFd;

const BUF: usize = 16 * 1024;

fn check(r: libc::c_int, what: &str) -> libc::c_int {
    if r < 0 {
        eprintln!("{what}: {}", std::io::Error::last_os_error());
        std::process::exit(1);
    }
    r
}

fn sockaddr(a: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is valid; the family's struct is written into it.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match a {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as _,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in and suitably aligned.
            unsafe { std::ptr::write((&raw mut ss).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as _,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { std::ptr::write((&raw mut ss).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

fn family(a: &SocketAddr) -> libc::c_int {
    if a.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    }
}

fn setint(fd: RawFd, level: libc::c_int, opt: libc::c_int, v: libc::c_int) -> libc::c_int {
    // SAFETY: setsockopt reading one c_int from a live local.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (&raw const v).cast(),
            size_of::<libc::c_int>() as _,
        )
    }
}

/// One direction: bytes read from `from` and not yet written to `to`.
struct Dir {
    buf: Box<[u8; BUF]>,
    start: usize,
    end: usize,
    eof: bool,
    /// The reading socket reported its peer's FIN (EPOLLRDHUP): read on to the EOF after a
    /// short read, since edge-triggered epoll will not report it again.
    rdhup: bool,
}

struct Conn {
    client: RawFd,
    backend: RawFd,
    up: Dir,   // client -> backend
    down: Dir, // backend -> client
}

/// Moves what it can of one direction; returns false when the connection failed.
fn pump(d: &mut Dir, from: RawFd, to: RawFd) -> bool {
    // A short read drained the socket: once its bytes are written, wait for the next edge.
    let mut drained = false;
    loop {
        while d.start < d.end {
            // SAFETY: send from the live buffer's pending range.
            let n = unsafe {
                libc::send(
                    to,
                    d.buf[d.start..].as_ptr().cast(),
                    d.end - d.start,
                    libc::MSG_NOSIGNAL,
                )
            };
            if n < 0 {
                return would_block();
            }
            d.start += n as usize;
        }
        if d.eof || drained {
            return true;
        }
        d.start = 0;
        d.end = 0;
        // SAFETY: recv into the live buffer.
        let n = unsafe { libc::recv(from, d.buf.as_mut_ptr().cast(), BUF, 0) };
        if n < 0 {
            return would_block();
        }
        if n == 0 {
            d.eof = true;
            // SAFETY: half-close of a socket we hold.
            unsafe { libc::shutdown(to, libc::SHUT_WR) };
            return true;
        }
        d.end = n as usize;
        drained = d.end < BUF && !d.rdhup;
    }
}

/// Whether the call that just failed only found nothing to do (EAGAIN): the connection is fine.
fn would_block() -> bool {
    std::io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN)
}

fn worker(vip: SocketAddr, backends: Vec<SocketAddr>) {
    // SAFETY: plain system calls on descriptors this thread creates and owns.
    unsafe {
        let l = check(
            libc::socket(
                family(&vip),
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            ),
            "socket",
        );
        setint(l, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1);
        setint(l, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1);
        setint(l, libc::IPPROTO_IP, libc::IP_FREEBIND, 1);
        let (ss, len) = sockaddr(&vip);
        check(libc::bind(l, (&raw const ss).cast(), len), "bind");
        check(libc::listen(l, 4096), "listen");
        let ep = check(libc::epoll_create1(libc::EPOLL_CLOEXEC), "epoll_create1");
        // Token 0 is the listener; a connection's token is its slab index + 1, times 2, plus
        // 0 for its client socket and 1 for its backend socket.
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: 0,
        };
        check(
            libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, l, &mut ev),
            "epoll_ctl",
        );
        let mut slab: Vec<Option<Box<Conn>>> = Vec::new();
        let mut free: Vec<usize> = Vec::new();
        let mut rr = 0usize;
        let baddrs: Vec<_> = backends.iter().map(sockaddr).collect();
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
        loop {
            let n = libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as _, -1);
            if n < 0 {
                continue;
            }
            for e in &events[..n as usize] {
                let tok = e.u64;
                if tok == 0 {
                    loop {
                        let c = libc::accept4(
                            l,
                            std::ptr::null_mut(),
                            std::ptr::null_mut(),
                            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                        );
                        if c < 0 {
                            break;
                        }
                        setint(c, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1);
                        let b = rr % backends.len();
                        rr += 1;
                        let s = libc::socket(
                            family(&backends[b]),
                            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                            0,
                        );
                        if s < 0 {
                            libc::close(c);
                            continue;
                        }
                        setint(s, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1);
                        let (ss, len) = &baddrs[b];
                        let r = libc::connect(s, (&raw const *ss).cast(), *len);
                        if r < 0
                            && std::io::Error::last_os_error().raw_os_error()
                                != Some(libc::EINPROGRESS)
                        {
                            libc::close(s);
                            libc::close(c);
                            continue;
                        }
                        let idx = free.pop().unwrap_or_else(|| {
                            slab.push(None);
                            slab.len() - 1
                        });
                        let dir = || Dir {
                            buf: Box::new([0; BUF]),
                            start: 0,
                            end: 0,
                            eof: false,
                            rdhup: false,
                        };
                        slab[idx] = Some(Box::new(Conn {
                            client: c,
                            backend: s,
                            up: dir(),
                            down: dir(),
                        }));
                        let flags =
                            (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET)
                                as u32;
                        let mut ev = libc::epoll_event {
                            events: flags,
                            u64: ((idx as u64 + 1) << 1),
                        };
                        libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, c, &mut ev);
                        let mut ev = libc::epoll_event {
                            events: flags,
                            u64: ((idx as u64 + 1) << 1) | 1,
                        };
                        libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, s, &mut ev);
                    }
                    continue;
                }
                let idx = (tok >> 1) as usize - 1;
                let Some(conn) = slab[idx].as_mut() else {
                    continue;
                };
                if e.events & libc::EPOLLRDHUP as u32 != 0 {
                    if tok & 1 == 0 {
                        conn.up.rdhup = true
                    } else {
                        conn.down.rdhup = true
                    }
                }
                let ok = pump(&mut conn.up, conn.client, conn.backend)
                    && pump(&mut conn.down, conn.backend, conn.client);
                let done = conn.up.eof
                    && conn.down.eof
                    && conn.up.start == conn.up.end
                    && conn.down.start == conn.down.end;
                if !ok || done || (e.events & libc::EPOLLERR as u32) != 0 {
                    libc::close(conn.client);
                    libc::close(conn.backend);
                    slab[idx] = None;
                    free.push(idx);
                }
            }
        }
    }
}

fn main() {
    let args: Vec<SocketAddr> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap_or_else(|e| panic!("{a}: {e}")))
        .collect();
    if args.len() < 2 {
        eprintln!("usage: lb-ceiling VIP:PORT BACKEND:PORT [BACKEND:PORT...]");
        std::process::exit(2);
    }
    // One thread per CPU; LB_CEILING_THREADS overrides (the test takes one, for a strict turn).
    let threads = std::env::var("LB_CEILING_THREADS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let hs: Vec<_> = (0..threads)
        .map(|_| {
            let (vip, b) = (args[0], args[1..].to_vec());
            std::thread::spawn(move || worker(vip, b))
        })
        .collect();
    for h in hs {
        let _ = h.join();
    }
}
