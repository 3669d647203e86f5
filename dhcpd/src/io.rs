//! Sockets: one UDP socket per served interface (SO_BINDTODEVICE, SO_BROADCAST), and delivery of
//! replies per RFC 2131 section 4.1 (relay, ciaddr, broadcast, or ARP entry + unicast).

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};

use ipnet::Ipv4Net;
use socket2::{Domain, Protocol, Socket, Type};

use crate::decide::Dest;

/// A served interface.
#[derive(Debug)]
pub struct Iface {
    /// Name.
    pub name: String,
    /// Its IPv4 addresses.
    pub addrs: Vec<Ipv4Net>,
    /// The socket, for sending from the writer thread.
    pub sock: UdpSocket,
}

/// The receive buffer of the DHCP sockets (v4 and v6): room for the datagrams that arrive while
/// the receiving thread waits for a core (the default ~200 KB holds ~150 requests; at 30,000
/// exchanges/s 1 MiB still overflowed a few hundred times in 10 s, 4 MiB never: bench/dhcp/README),
/// yet ~80 ms at that rate, far below the seconds a client waits before it sends again.
pub const RCVBUF: libc::c_int = 4 << 20;

/// Binds the DHCP server port on one interface.
pub fn bind_iface(name: &str, port: u16) -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    // No SO_REUSEADDR: sockets bound to different devices do not clash, and a second server on
    // the same interface is refused (EADDRINUSE) instead of silently sharing the port.
    s.set_broadcast(true)?;
    s.bind_device(Some(name.as_bytes()))?;
    force_buffer(&s, libc::SO_RCVBUFFORCE, libc::SO_RCVBUF, RCVBUF);
    // A group commit sends its ACKs in one burst.
    force_buffer(&s, libc::SO_SNDBUFFORCE, libc::SO_SNDBUF, 4 << 20);
    s.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port).into())?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// Sets a socket buffer size past net.core.*mem_max when allowed (root), else as far as it goes.
pub fn force_buffer(s: &Socket, force: libc::c_int, plain: libc::c_int, bytes: libc::c_int) {
    use std::os::fd::AsRawFd;
    for opt in [force, plain] {
        // SAFETY: valid fd; the value is a c_int of the size given.
        let rc = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&raw const bytes).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            break;
        }
    }
}

/// Adds (or replaces) the ARP entry `ip -> mac` on `iface`, so a unicast reply reaches a client
/// that cannot answer ARP yet.
pub fn set_arp(sock: &UdpSocket, iface: &str, ip: Ipv4Addr, mac: [u8; 6]) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: arpreq is plain old data; all-zero is a valid value.
    let mut req: libc::arpreq = unsafe { std::mem::zeroed() };
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in fits in sockaddr (both 16 bytes); copying plain bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(
            (&raw const sin).cast::<u8>(),
            (&raw mut req.arp_pa).cast::<u8>(),
            std::mem::size_of::<libc::sockaddr_in>(),
        );
    }
    req.arp_ha.sa_family = libc::ARPHRD_ETHER;
    for (d, s) in req.arp_ha.sa_data.iter_mut().zip(mac) {
        *d = s as libc::c_char;
    }
    req.arp_flags = libc::ATF_COM;
    let name = iface.as_bytes();
    if name.len() >= req.arp_dev.len() {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    for (d, s) in req.arp_dev.iter_mut().zip(name) {
        *d = *s as libc::c_char;
    }
    // SAFETY: valid fd, valid pointer to an initialised arpreq for SIOCSARP.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSARP, &raw mut req) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Where a reply to `dest` goes (adding the ARP entry a hardware-address delivery needs).
fn target(sock: &UdpSocket, iface: &str, dest: Dest, server_port: u16) -> SocketAddrV4 {
    let client_port = if server_port == 67 {
        68
    } else {
        server_port + 1
    };
    match dest {
        Dest::Relay(g) => SocketAddrV4::new(g, server_port),
        Dest::Unicast(ip) => SocketAddrV4::new(ip, client_port),
        Dest::Broadcast => SocketAddrV4::new(Ipv4Addr::BROADCAST, client_port),
        Dest::Hw { ip, mac } => match set_arp(sock, iface, ip, mac) {
            Ok(()) => SocketAddrV4::new(ip, client_port),
            Err(e) => {
                tracing::debug!(%ip, error = %e, "cannot add ARP entry; broadcasting");
                SocketAddrV4::new(Ipv4Addr::BROADCAST, client_port)
            }
        },
    }
}

/// Most datagrams handed to the kernel in one `sendmmsg`.
const MMSG: usize = 64;

/// Sends several replies with as few system calls as possible (`sendmmsg`); returns for each
/// where it went or why it could not be sent, in order.
pub fn deliver_many(
    sock: &UdpSocket,
    iface: &str,
    replies: &[(Dest, &[u8])],
    server_port: u16,
) -> Vec<io::Result<SocketAddrV4>> {
    let to: Vec<SocketAddrV4> = replies
        .iter()
        .map(|(d, _)| target(sock, iface, *d, server_port))
        .collect();
    let items: Vec<(std::net::SocketAddr, &[u8])> = to
        .iter()
        .zip(replies)
        .map(|(a, (_, b))| (std::net::SocketAddr::V4(*a), *b))
        .collect();
    send_many(sock, &items)
        .into_iter()
        .zip(&to)
        .map(|(r, a)| r.map(|()| *a))
        .collect()
}

/// Sends each datagram to its address (IPv4 or IPv6, as the socket) with as few `sendmmsg`
/// calls as possible; returns for each whether it left, in order.
pub fn send_many<S: std::os::fd::AsRawFd>(
    sock: &S,
    items: &[(std::net::SocketAddr, &[u8])],
) -> Vec<io::Result<()>> {
    let mut out: Vec<io::Result<()>> = Vec::with_capacity(items.len());
    let mut i = 0;
    while i < items.len() {
        let n = (items.len() - i).min(MMSG);
        let addrs: Vec<socket2::SockAddr> = items[i..i + n]
            .iter()
            .map(|(a, _)| socket2::SockAddr::from(*a))
            .collect();
        let mut iov: Vec<libc::iovec> = items[i..i + n]
            .iter()
            .map(|(_, b)| libc::iovec {
                iov_base: b.as_ptr().cast_mut().cast(),
                iov_len: b.len(),
            })
            .collect();
        // SAFETY: mmsghdr is plain old data; all-zero is a valid value.
        let mut msgs: Vec<libc::mmsghdr> = (0..n).map(|_| unsafe { std::mem::zeroed() }).collect();
        for (k, m) in msgs.iter_mut().enumerate() {
            m.msg_hdr.msg_name = addrs[k].as_ptr().cast_mut().cast();
            m.msg_hdr.msg_namelen = addrs[k].len();
            m.msg_hdr.msg_iov = &raw mut iov[k];
            m.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: valid fd; `msgs` points at `n` initialised headers whose names and buffers
        // outlive the call (`addrs`, `iov`, `items`); the kernel only reads the names.
        let rc =
            unsafe { libc::sendmmsg(sock.as_raw_fd(), msgs.as_mut_ptr(), n as libc::c_uint, 0) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            // The first datagram failed: report it and go on with the next.
            out.push(Err(e));
            i += 1;
        } else {
            let sent = rc as usize;
            out.extend((0..sent).map(|_| Ok(())));
            i += sent;
        }
    }
    out
}

/// Sends `bytes` to `dest`; returns where it went.
pub fn deliver(
    sock: &UdpSocket,
    iface: &str,
    dest: Dest,
    bytes: &[u8],
    server_port: u16,
) -> io::Result<SocketAddrV4> {
    let to = target(sock, iface, dest, server_port);
    sock.send_to(bytes, to)?;
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliver_many_sends_every_reply_in_order_to_its_destination() {
        // Unicast replies go to server_port + 1 (the client port) when the server port is not 67.
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client_port = rx.local_addr().unwrap().port();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let msgs: Vec<Vec<u8>> = (0..150u8).map(|i| vec![i; 300 + usize::from(i)]).collect();
        let replies: Vec<(Dest, &[u8])> = msgs
            .iter()
            .map(|m| (Dest::Unicast(Ipv4Addr::LOCALHOST), m.as_slice()))
            .collect();
        let sent = deliver_many(&tx, "lo", &replies, client_port - 1);
        assert_eq!(sent.len(), msgs.len());
        for s in &sent {
            assert_eq!(
                *s.as_ref().unwrap(),
                SocketAddrV4::new(Ipv4Addr::LOCALHOST, client_port)
            );
        }
        rx.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 1024];
        for m in &msgs {
            let n = rx.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], m.as_slice());
        }
    }
}
