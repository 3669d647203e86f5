//! The raw sockets of a VRRP instance (IO): IPv4 (protocol 112, our own IP header, TTL 255 to
//! 224.0.0.18) and IPv6 (protocol 112, the kernel's header, hop limit 255 to ff02::12 from the
//! interface's link-local address; the hop limit and destination of what arrives come as
//! ancillary data and are checked).

use std::io;
use std::mem::{MaybeUninit, size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4};
use std::os::fd::AsRawFd;

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;

use super::codec::{
    Advert, DecodeError, GROUP, GROUP6, PROTO, decode, decode6, encode, encode6, ip_packet,
};

/// One instance's socket, registered with the runtime.
#[derive(Debug)]
pub(super) struct Sock {
    fd: AsyncFd<Socket>,
    local: IpAddr,
    index: u32,
}

/// What one read gave: the sender and its advert, or why the packet was dropped.
pub(super) type Received = Result<(IpAddr, Advert), DecodeError>;

fn open4(iface: &str, index: u32, local: Ipv4Addr, multicast: bool) -> io::Result<Socket> {
    let s = Socket::new(
        Domain::IPV4,
        Type::RAW,
        Some(Protocol::from(i32::from(PROTO))),
    )?;
    s.bind_device(Some(iface.as_bytes()))?;
    s.set_header_included_v4(true)?;
    if multicast {
        s.join_multicast_v4_n(&GROUP, &InterfaceIndexOrAddress::Index(index))?;
        s.set_multicast_if_v4(&local)?;
        s.set_multicast_loop_v4(false)?;
        s.set_multicast_ttl_v4(255)?;
    }
    s.set_nonblocking(true)?;
    Ok(s)
}

fn setsockopt_int(s: &Socket, level: i32, name: i32, v: i32) -> io::Result<()> {
    // SAFETY: a valid descriptor and a c_int option of the size given.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            level,
            name,
            (&v as *const i32).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn open6(iface: &str, index: u32, multicast: bool) -> io::Result<Socket> {
    let s = Socket::new(
        Domain::IPV6,
        Type::RAW,
        Some(Protocol::from(i32::from(PROTO))),
    )?;
    s.bind_device(Some(iface.as_bytes()))?;
    s.set_unicast_hops_v6(255)?;
    s.set_multicast_hops_v6(255)?;
    s.set_multicast_if_v6(index)?;
    s.set_multicast_loop_v6(false)?;
    s.set_recv_hoplimit_v6(true)?;
    setsockopt_int(&s, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)?;
    if multicast {
        s.join_multicast_v6(&GROUP6, index)?;
    }
    s.set_nonblocking(true)?;
    Ok(s)
}

fn sockaddr6(ip: Ipv6Addr, scope: u32) -> libc::sockaddr_in6 {
    // SAFETY: all-zero is a valid sockaddr_in6.
    let mut sa: libc::sockaddr_in6 = unsafe { zeroed() };
    sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
    sa.sin6_addr.s6_addr = ip.octets();
    sa.sin6_scope_id = scope;
    sa
}

/// Room for the ancillary data of one read (hop limit and packet info) or one send.
#[repr(C, align(8))]
struct Control([u8; 128]);

impl Sock {
    /// Opens the socket for `local`'s family on `iface` (joining the group when `multicast`).
    pub(super) fn open(
        iface: &str,
        index: u32,
        local: IpAddr,
        multicast: bool,
    ) -> io::Result<Socket> {
        match local {
            IpAddr::V4(l) => open4(iface, index, l, multicast),
            IpAddr::V6(_) => open6(iface, index, multicast),
        }
    }

    /// Registers `s` (from [`Sock::open`]) with the runtime.
    pub(super) fn register(s: Socket, local: IpAddr, index: u32) -> io::Result<Sock> {
        // SAFETY: the socket2 `Socket` owns its descriptor and is moved into the AsyncFd, which
        // keeps it open for as long as it is registered.
        let fd = unsafe { AsyncFd::register_with_interest(s, tokio::io::Interest::READABLE) }
            .map_err(io::Error::from)?;
        Ok(Sock { fd, local, index })
    }

    /// The registered socket (to wait for readability on).
    pub(super) fn fd(&self) -> &AsyncFd<Socket> {
        &self.fd
    }

    /// The multicast group of our family.
    pub(super) fn group(&self) -> IpAddr {
        match self.local {
            IpAddr::V4(_) => GROUP.into(),
            IpAddr::V6(_) => GROUP6.into(),
        }
    }

    /// Sends `a` to `dst` (the group or a unicast peer of our family).
    pub(super) fn send(&self, a: &Advert, dst: IpAddr) -> io::Result<()> {
        match (self.local, dst) {
            (IpAddr::V4(l), IpAddr::V4(d)) => {
                let pkt = ip_packet(&encode(a, l, d), l, d);
                let to = socket2::SockAddr::from(SocketAddrV4::new(d, 0));
                self.fd.get_ref().send_to(&pkt, &to).map(drop)
            }
            (IpAddr::V6(l), IpAddr::V6(d)) => self.send6(&encode6(a, l, d), l, d),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "peer of the other address family",
            )),
        }
    }

    /// sendmsg with IPV6_PKTINFO: from our link-local address, out of our interface.
    fn send6(&self, payload: &[u8], src: Ipv6Addr, dst: Ipv6Addr) -> io::Result<()> {
        let mut to = sockaddr6(dst, self.index);
        let mut iov = libc::iovec {
            iov_base: payload.as_ptr() as *mut libc::c_void,
            iov_len: payload.len(),
        };
        let mut ctl = Control([0; 128]);
        // SAFETY: an all-zero msghdr is valid; every pointer set below outlives the call, and
        // the control buffer is aligned and large enough for one in6_pktinfo.
        unsafe {
            let mut msg: libc::msghdr = zeroed();
            msg.msg_name = (&mut to as *mut libc::sockaddr_in6).cast();
            msg.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = ctl.0.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(size_of::<libc::in6_pktinfo>() as u32) as _;
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::IPPROTO_IPV6;
            (*c).cmsg_type = libc::IPV6_PKTINFO;
            (*c).cmsg_len = libc::CMSG_LEN(size_of::<libc::in6_pktinfo>() as u32) as _;
            let info = libc::in6_pktinfo {
                ipi6_addr: libc::in6_addr {
                    s6_addr: src.octets(),
                },
                ipi6_ifindex: self.index,
            };
            std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<libc::in6_pktinfo>(), info);
            if libc::sendmsg(self.fd.get_ref().as_raw_fd(), &msg, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// Reads one packet (call when readable; `WouldBlock` when there is none).
    pub(super) fn recv(&self, buf: &mut [MaybeUninit<u8>]) -> io::Result<Received> {
        match self.local {
            IpAddr::V4(_) => {
                let n = self.fd.get_ref().recv(buf)?;
                // SAFETY: recv initialised the first n bytes.
                let pkt: &[u8] = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast(), n) };
                Ok(decode(pkt).map(|(src, a)| (IpAddr::V4(src), a)))
            }
            IpAddr::V6(_) => self.recv6(buf),
        }
    }

    fn recv6(&self, buf: &mut [MaybeUninit<u8>]) -> io::Result<Received> {
        // SAFETY: all-zero is a valid sockaddr_in6.
        let mut from: libc::sockaddr_in6 = unsafe { zeroed() };
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut ctl = Control([0; 128]);
        let (mut hop_limit, mut dst) = (None, None);
        // SAFETY: as in send6; recvmsg fills at most the lengths given, and the control
        // messages are walked with the kernel's own CMSG macros within msg_controllen.
        let n = unsafe {
            let mut msg: libc::msghdr = zeroed();
            msg.msg_name = (&mut from as *mut libc::sockaddr_in6).cast();
            msg.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = ctl.0.as_mut_ptr().cast();
            msg.msg_controllen = ctl.0.len() as _;
            let n = libc::recvmsg(self.fd.get_ref().as_raw_fd(), &mut msg, 0);
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::IPPROTO_IPV6 {
                    let data = libc::CMSG_DATA(c);
                    if (*c).cmsg_type == libc::IPV6_HOPLIMIT {
                        let h = std::ptr::read_unaligned(data.cast::<i32>());
                        hop_limit = u8::try_from(h).ok();
                    } else if (*c).cmsg_type == libc::IPV6_PKTINFO {
                        let i = std::ptr::read_unaligned(data.cast::<libc::in6_pktinfo>());
                        dst = Some(Ipv6Addr::from(i.ipi6_addr.s6_addr));
                    }
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
            n as usize
        };
        // SAFETY: recvmsg initialised the first n bytes.
        let pkt: &[u8] = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast(), n) };
        let src = Ipv6Addr::from(from.sin6_addr.s6_addr);
        let dst = dst.unwrap_or(GROUP6);
        Ok(decode6(pkt, src, dst, hop_limit).map(|a| (IpAddr::V6(src), a)))
    }
}
