//! UDP workers: one SO_REUSEPORT socket per core and address, steered by the receiving CPU
//! ([`steer_by_cpu`]) where [`crate::steering::choose`] says so, each served by its own thread with batched receive and send
//! (recvmmsg/sendmmsg). The fast path answers inline; the
//! general path runs inline too, and forwarding and updates go to the tokio runtime.

use std::io;
use std::mem::MaybeUninit;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio_util::sync::CancellationToken;

use crate::clock::unix_now;
use crate::handler::{Decision, Transport, handle};
use crate::rrl::Verdict;
use crate::state::Shared;

/// Datagrams per recvmmsg/sendmmsg.
const BATCH: usize = 32;
/// Receive buffer per datagram (EDNS payloads above it are truncated by the kernel and then
/// fail to decode: FORMERR).
const BUF: usize = 4096;

/// Binds one SO_REUSEPORT UDP socket on `addr`.
pub fn bind_one(addr: SocketAddr) -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    let _ = s.set_recv_buffer_size(4 << 20);
    s.bind(&addr.into())?;
    // Blocking with a timeout, so the worker sees the stop token.
    s.set_read_timeout(Some(Duration::from_millis(200)))?;
    Ok(s.into())
}

/// Makes the SO_REUSEPORT group of `first` (its `n` sockets, in bind order) hand each datagram
/// to socket `cpu % n`, `cpu` being the CPU that received it, instead of a hash of the client's
/// address and port (a classic BPF program: `ld #cpu; mod #n; ret a`).
///
/// Why (bench/dns/README.md, "Why the top was lower"): with the hash, dnsperf's 8 client sockets
/// often landed 80/20 or 100/0 on two workers, so one worker was the ceiling while the other
/// idled; and a worker fed from its own CPU sees fuller batches: at 40k qps half the wake-ups
/// per query of the hash (about 0.25 against 0.45). Only where datagrams are received on more
/// than one CPU ([`crate::steering::choose`]): on a single-queue NIC without RPS it would hand
/// them all to one worker.
pub fn steer_by_cpu(first: &UdpSocket, n: usize) -> io::Result<()> {
    const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const ALU_MOD_K: u16 = (libc::BPF_ALU | libc::BPF_MOD | libc::BPF_K) as u16;
    const RET_A: u16 = (libc::BPF_RET | libc::BPF_A) as u16;
    let ins = |code, k| libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    let mut prog = [
        ins(LD_W_ABS, (libc::SKF_AD_OFF + libc::SKF_AD_CPU) as u32),
        ins(ALU_MOD_K, n.max(1) as u32),
        ins(RET_A, 0),
    ];
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: fprog points at prog, which outlives the call; the kernel copies the program.
    let r = unsafe {
        libc::setsockopt(
            first.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_REUSEPORT_CBPF,
            (&raw const fprog).cast(),
            size_of::<libc::sock_fprog>() as u32,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Serves `sock` on the current thread until `stop`.
pub fn worker(
    shared: Arc<Shared>,
    sock: Arc<UdpSocket>,
    rt: tokio::runtime::Handle,
    stop: CancellationToken,
) {
    let fd = sock.as_raw_fd();
    let slots = shared.metrics.slots();
    let mut bufs = vec![[0u8; BUF]; BATCH];
    let mut outs: Vec<Vec<u8>> = (0..BATCH).map(|_| Vec::with_capacity(1232)).collect();
    let mut names: Vec<libc::sockaddr_storage> =
        vec![unsafe { MaybeUninit::zeroed().assume_init() }; BATCH];
    let mut srcs: Vec<Option<SocketAddr>> = vec![None; BATCH];
    let mut ready: Vec<usize> = Vec::with_capacity(BATCH);
    // The receive headers point into bufs and names, which never move: built once, not per
    // batch (under light load a batch is one datagram, so per-batch allocations were per query).
    let mut iov: Vec<libc::iovec> = bufs
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: BUF,
        })
        .collect();
    let mut hdrs: Vec<libc::mmsghdr> = (0..BATCH)
        .map(|i| {
            let mut h: libc::mmsghdr = unsafe { MaybeUninit::zeroed().assume_init() };
            h.msg_hdr.msg_name = (&raw mut names[i]).cast();
            h.msg_hdr.msg_iov = &raw mut iov[i];
            h.msg_hdr.msg_iovlen = 1;
            h
        })
        .collect();
    let mut send = SendBatch::new();
    while !stop.is_cancelled() {
        for h in hdrs.iter_mut() {
            // The kernel writes the sender's address length and flags back: reset them.
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as u32;
            h.msg_hdr.msg_flags = 0;
        }
        // SAFETY: hdrs, iov, names and bufs outlive the call and have BATCH entries.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n <= 0 {
            continue; // timeout (EAGAIN) or EINTR: check the stop token
        }
        let t0 = std::time::Instant::now();
        let n = n as usize;
        let pol = shared.policy.load();
        let rrl_on = !shared.rrl_off();
        ready.clear();
        let mut fast = 0u64;
        for i in 0..n {
            let len = hdrs[i].msg_len as usize;
            let Some(src) = from_storage(&names[i]) else {
                continue;
            };
            srcs[i] = Some(src);
            let data = &bufs[i][..len.min(BUF)];
            let out = &mut outs[i];
            if crate::fast::answer(&pol.fast, data, out, || pol.may_recurse(src.ip())) {
                ready.push(i);
                fast += 1;
                continue;
            }
            match handle(
                &pol,
                data,
                src.ip(),
                Transport::Udp,
                unix_now(),
                &shared.stats,
            ) {
                Decision::Reply(b) => {
                    *out = b;
                    ready.push(i);
                }
                Decision::Drop | Decision::Transfer(..) => {}
                Decision::Forward(req) => shared.spawn_forward(&rt, sock.clone(), *req, src),
                Decision::Update(req, t) => shared.spawn_update(&rt, sock.clone(), *req, t, src),
            }
        }
        // The general path counts its own.
        shared.stats.queries.inc_by(fast);
        for &i in &ready {
            slots.answer(&outs[i]);
        }
        if rrl_on {
            let now = unix_now();
            ready.retain(|&i| {
                let Some(src) = srcs[i] else { return false };
                match shared.rrl_check(src.ip(), now) {
                    Verdict::Send => true,
                    Verdict::Drop => false,
                    Verdict::Slip => {
                        crate::message::slip(&mut outs[i]);
                        true
                    }
                }
            });
        }
        send.send(fd, &mut outs, &names, &hdrs, &ready);
        slots.latency(t0.elapsed(), ready.len() as u64);
    }
}

fn from_storage(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(s.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let a: &libc::sockaddr_in = unsafe { &*(s as *const libc::sockaddr_storage).cast() };
            let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::from((ip, u16::from_be(a.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let a: &libc::sockaddr_in6 = unsafe { &*(s as *const libc::sockaddr_storage).cast() };
            let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            // The scope id is kept: a reply to a link-local sender needs its interface.
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                u32::from_be(a.sin6_flowinfo),
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// The send side's headers, kept across batches so that sending allocates nothing.
struct SendBatch {
    iov: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

impl SendBatch {
    fn new() -> Self {
        SendBatch {
            iov: Vec::with_capacity(BATCH),
            hdrs: Vec::with_capacity(BATCH),
        }
    }

    /// Sends `outs[i]` for each `i` in `ready` to the address it came from (`names[i]`, of the
    /// length the receive header `recv[i]` holds).
    fn send(
        &mut self,
        fd: i32,
        outs: &mut [Vec<u8>],
        names: &[libc::sockaddr_storage],
        recv: &[libc::mmsghdr],
        ready: &[usize],
    ) {
        if ready.is_empty() {
            return;
        }
        self.iov.clear();
        self.hdrs.clear();
        // Filled in full before any header points into it, and never past BATCH: no move.
        self.iov.extend(ready.iter().map(|&i| libc::iovec {
            iov_base: outs[i].as_mut_ptr().cast(),
            iov_len: outs[i].len(),
        }));
        for (k, &i) in ready.iter().enumerate() {
            let mut h: libc::mmsghdr = unsafe { MaybeUninit::zeroed().assume_init() };
            h.msg_hdr.msg_name = (&raw const names[i]).cast_mut().cast();
            h.msg_hdr.msg_namelen = recv[i].msg_hdr.msg_namelen;
            h.msg_hdr.msg_iov = &raw mut self.iov[k];
            h.msg_hdr.msg_iovlen = 1;
            self.hdrs.push(h);
        }
        let hdrs = &mut self.hdrs;
        let mut sent = 0;
        while sent < hdrs.len() {
            // SAFETY: hdrs, iov, names and outs outlive the call.
            let r = unsafe {
                libc::sendmmsg(fd, hdrs[sent..].as_mut_ptr(), (hdrs.len() - sent) as u32, 0)
            };
            if r <= 0 {
                // A failing destination (e.g. unreachable): skip it, keep the rest.
                sent += 1;
            } else {
                sent += r as usize;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::from_storage;
    use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};

    #[test]
    fn a_link_local_sender_keeps_its_scope() {
        let sent = SocketAddrV6::new(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 7), 5353, 0, 3);
        let s = socket2::SockAddr::from(SocketAddr::V6(sent));
        // SAFETY: SockAddr holds a sockaddr_storage-sized buffer.
        let st: libc::sockaddr_storage = unsafe { std::ptr::read(s.as_ptr().cast()) };
        assert_eq!(from_storage(&st), Some(SocketAddr::V6(sent)));
    }
}
