//! VIP ownership: add and remove addresses with rtnetlink (RTM_NEWADDR / RTM_DELADDR on a
//! NETLINK_ROUTE socket, acknowledged) and announce them with gratuitous ARP on an AF_PACKET
//! socket (ARP request, sender = target = VIP, to the broadcast address), since the kernel sends
//! none for a secondary address.

use std::io;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;

use crate::desired::VipPlan;

/// How long the kernel may take to acknowledge an address change.
pub const NETLINK_DEADLINE: Duration = Duration::from_secs(3);

/// Why a VIP could not be placed.
#[derive(Debug, thiserror::Error)]
pub enum VipError {
    /// The configured interface does not exist.
    #[error("interface `{0}` for VIP {1} does not exist: fix `interface` in the host file")]
    NoInterface(String, Ipv4Addr),
    /// No interface holds an address in the VIP's subnet.
    #[error(
        "no interface holds an address in {1} for VIP {0}: add one, or set `interface` on the service or in [lb]"
    )]
    NoSubnet(Ipv4Addr, Ipv4Net),
    /// The kernel refused.
    #[error("{op} {addr}/{prefix} on {iface}: {err}")]
    Netlink {
        /// add or remove.
        op: &'static str,
        /// The VIP.
        addr: Ipv4Addr,
        /// Prefix.
        prefix: u8,
        /// Interface name.
        iface: String,
        /// The error.
        err: io::Error,
    },
    /// Listing addresses failed.
    #[error("listing local addresses: {0}")]
    List(io::Error),
}

/// Where a VIP goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Interface name.
    pub iface: String,
    /// Interface index.
    pub index: u32,
}

/// Resolves the interface of `vip`: the configured one, or the one holding another address in
/// the VIP's subnet.
pub fn place(vip: &VipPlan) -> Result<Placement, VipError> {
    if let Some(name) = &vip.interface {
        let index = if_index(name).ok_or_else(|| VipError::NoInterface(name.clone(), vip.addr))?;
        return Ok(Placement {
            iface: name.clone(),
            index,
        });
    }
    let net = Ipv4Net::new(vip.addr, vip.prefix)
        .map(|n| n.trunc())
        .unwrap_or_else(|_| Ipv4Net::from(vip.addr));
    let addrs = runtime::netif::local_ipv4().map_err(VipError::List)?;
    addrs
        .iter()
        .find(|a| a.addr != vip.addr && net.contains(&a.addr))
        .or_else(|| addrs.iter().find(|a| a.addr == vip.addr))
        .map(|a| Placement {
            iface: a.name.clone(),
            index: a.index,
        })
        .ok_or(VipError::NoSubnet(vip.addr, net))
}

/// The index of interface `name`.
pub fn if_index(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

/// True when `addr` is configured on interface `index`.
pub fn is_present(addr: Ipv4Addr, index: u32) -> Result<bool, VipError> {
    let addrs = runtime::netif::local_ipv4().map_err(VipError::List)?;
    Ok(addrs.iter().any(|a| a.addr == addr && a.index == index))
}

/// Adds `addr/prefix` to interface `index` (already present = success).
pub fn add(addr: Ipv4Addr, prefix: u8, p: &Placement) -> Result<(), VipError> {
    nl_addr(libc::RTM_NEWADDR, addr, prefix, p.index).map_err(|err| VipError::Netlink {
        op: "add",
        addr,
        prefix,
        iface: p.iface.clone(),
        err,
    })
}

/// Removes `addr/prefix` from interface `index` (already absent = success).
pub fn remove(addr: Ipv4Addr, prefix: u8, p: &Placement) -> Result<(), VipError> {
    nl_addr(libc::RTM_DELADDR, addr, prefix, p.index).map_err(|err| VipError::Netlink {
        op: "remove",
        addr,
        prefix,
        iface: p.iface.clone(),
        err,
    })
}

/// Builds the RTM_NEWADDR / RTM_DELADDR request (pure, for tests).
fn addr_request(cmd: u16, addr: Ipv4Addr, prefix: u8, index: u32, seq: u32) -> Vec<u8> {
    let mut flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
    if cmd == libc::RTM_NEWADDR {
        flags |= (libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16;
    }
    let mut m = Vec::with_capacity(40);
    m.extend_from_slice(&0u32.to_ne_bytes()); // length, patched below
    m.extend_from_slice(&cmd.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    // struct ifaddrmsg
    m.push(libc::AF_INET as u8);
    m.push(prefix);
    m.push(0); // flags
    m.push(0); // scope universe
    m.extend_from_slice(&index.to_ne_bytes());
    for kind in [libc::IFA_LOCAL, libc::IFA_ADDRESS] {
        m.extend_from_slice(&8u16.to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&addr.octets());
    }
    let len = m.len() as u32;
    m[0..4].copy_from_slice(&len.to_ne_bytes());
    m
}

/// The errno of the NLMSG_ERROR answer to `seq` (0 = acknowledged), if `buf` holds it.
fn ack_errno(buf: &[u8], seq: u32) -> Option<i32> {
    let mut off = 0;
    while off + 16 <= buf.len() {
        let len = u32::from_ne_bytes(buf[off..off + 4].try_into().ok()?) as usize;
        let ty = u16::from_ne_bytes(buf[off + 4..off + 6].try_into().ok()?);
        let s = u32::from_ne_bytes(buf[off + 8..off + 12].try_into().ok()?);
        if len < 16 || off + len > buf.len() {
            return None;
        }
        if ty == libc::NLMSG_ERROR as u16 && s == seq && len >= 20 {
            let e = i32::from_ne_bytes(buf[off + 16..off + 20].try_into().ok()?);
            return Some(-e);
        }
        off += (len + 3) & !3;
    }
    None
}

fn nl_addr(cmd: u16, addr: Ipv4Addr, prefix: u8, index: u32) -> io::Result<()> {
    nl_request(cmd, &addr_request(cmd, addr, prefix, index, 1), 1)
}

/// Sends one rtnetlink request `msg` (command `cmd`, sequence `seq`) and waits for its
/// acknowledgement (also used for IPv6 VIPs, [`crate::vip6`]).
pub(crate) fn nl_request(cmd: u16, msg: &[u8], seq: u32) -> io::Result<()> {
    // SAFETY: plain socket(2) call; the descriptor is owned below.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor we own.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    use std::os::fd::AsRawFd;
    // SAFETY: zeroed sockaddr_nl is valid (pid 0 = the kernel).
    let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    sa.nl_family = libc::AF_NETLINK as u16;
    // SAFETY: buffer and address are valid for the given lengths.
    let r = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            msg.as_ptr().cast(),
            msg.len(),
            0,
            (&raw const sa).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    await_ack(&fd, cmd, seq, Instant::now() + NETLINK_DEADLINE)
}

/// Waits, until `end`, for the kernel's answer to request `seq` (`cmd`) on netlink socket `fd`.
/// No answer in time is an error, not a hang (it stays out of the path to READY and out of
/// every apply, which then fails and is retried).
fn await_ack(fd: &impl std::os::fd::AsFd, cmd: u16, seq: u32, end: Instant) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = fd.as_fd();
    let mut buf = [0u8; 4096];
    for _ in 0..8 {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let tv = libc::timeval {
            tv_sec: left.as_secs() as libc::time_t,
            // At least 1 us: a zero timeval would mean no timeout at all.
            tv_usec: left.subsec_micros().max(1) as libc::suseconds_t,
        };
        // SAFETY: `tv` is a valid timeval for its length.
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const tv).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `buf` is valid for its length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => continue,
                _ => return Err(e),
            }
        }
        if let Some(e) = ack_errno(&buf[..n as usize], seq) {
            return match e {
                0 => Ok(()),
                libc::EEXIST if cmd == libc::RTM_NEWADDR => Ok(()),
                libc::EADDRNOTAVAIL if cmd == libc::RTM_DELADDR => Ok(()),
                e => Err(io::Error::from_raw_os_error(e)),
            };
        }
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        format!("no netlink acknowledgement within {NETLINK_DEADLINE:?}"),
    ))
}

/// The gratuitous ARP request announcing `vip` from `mac` (pure, for tests).
pub fn garp_frame(mac: [u8; 6], vip: Ipv4Addr) -> [u8; 28] {
    let mut f = [0u8; 28];
    f[0..2].copy_from_slice(&1u16.to_be_bytes()); // Ethernet
    f[2..4].copy_from_slice(&0x0800u16.to_be_bytes()); // IPv4
    f[4] = 6;
    f[5] = 4;
    f[6..8].copy_from_slice(&1u16.to_be_bytes()); // request
    f[8..14].copy_from_slice(&mac);
    f[14..18].copy_from_slice(&vip.octets());
    f[18..24].copy_from_slice(&[0xff; 6]);
    f[24..28].copy_from_slice(&vip.octets());
    f
}

/// The hardware address of interface `name`.
pub fn hw_addr(name: &str) -> io::Result<[u8; 6]> {
    // SAFETY: socket(2); owned below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh descriptor we own.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    use std::os::fd::AsRawFd;
    // SAFETY: zeroed ifreq is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    let bytes = name.as_bytes();
    if bytes.len() >= req.ifr_name.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "interface name too long",
        ));
    }
    for (d, s) in req.ifr_name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFHWADDR fills `req`, which is valid.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFHWADDR, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel filled the hwaddr member.
    let sa = unsafe { req.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (d, s) in mac.iter_mut().zip(sa.sa_data.iter()) {
        *d = *s as u8;
    }
    Ok(mac)
}

/// Sends one gratuitous ARP for `vip` out of interface `p`.
pub fn send_garp(vip: Ipv4Addr, p: &Placement) -> io::Result<()> {
    let mac = hw_addr(&p.iface)?;
    let proto = (libc::ETH_P_ARP as u16).to_be();
    // SAFETY: socket(2); owned below.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            i32::from(proto),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh descriptor we own.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    use std::os::fd::AsRawFd;
    // SAFETY: zeroed sockaddr_ll is valid.
    let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sa.sll_family = libc::AF_PACKET as u16;
    sa.sll_protocol = proto;
    sa.sll_ifindex = p.index as i32;
    sa.sll_halen = 6;
    sa.sll_addr[..6].copy_from_slice(&[0xff; 6]);
    let frame = garp_frame(mac, vip);
    // SAFETY: buffer and address valid for their lengths.
    let r = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            frame.as_ptr().cast(),
            frame.len(),
            0,
            (&raw const sa).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garp_is_sender_equals_target() {
        let f = garp_frame([2, 0, 0, 0, 1, 2], Ipv4Addr::new(192, 168, 1, 120));
        assert_eq!(&f[0..8], &[0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(&f[8..14], &[2, 0, 0, 0, 1, 2]);
        assert_eq!(&f[14..18], &[192, 168, 1, 120]);
        assert_eq!(&f[24..28], &[192, 168, 1, 120]);
    }

    #[test]
    fn netlink_request_layout() {
        let m = addr_request(libc::RTM_NEWADDR, Ipv4Addr::new(10, 0, 0, 1), 24, 7, 9);
        assert_eq!(m.len(), 16 + 8 + 16);
        assert_eq!(u32::from_ne_bytes(m[0..4].try_into().unwrap()), 40);
        assert_eq!(m[16], libc::AF_INET as u8);
        assert_eq!(m[17], 24);
        assert_eq!(u32::from_ne_bytes(m[20..24].try_into().unwrap()), 7);
        assert_eq!(&m[28..32], &[10, 0, 0, 1]);
    }

    #[test]
    fn ack_parsing() {
        let mut b = vec![0u8; 36];
        b[0..4].copy_from_slice(&36u32.to_ne_bytes());
        b[4..6].copy_from_slice(&(libc::NLMSG_ERROR as u16).to_ne_bytes());
        b[8..12].copy_from_slice(&5u32.to_ne_bytes());
        b[16..20].copy_from_slice(&(-libc::EEXIST).to_ne_bytes());
        assert_eq!(ack_errno(&b, 5), Some(libc::EEXIST));
        assert_eq!(ack_errno(&b, 6), None);
        assert_eq!(ack_errno(&b[..10], 5), None);
    }

    /// An NLMSG_ERROR answer to `seq` carrying `errno` (0 = acknowledged).
    fn ack(seq: u32, errno: i32) -> [u8; 36] {
        let mut b = [0u8; 36];
        b[0..4].copy_from_slice(&36u32.to_ne_bytes());
        b[4..6].copy_from_slice(&(libc::NLMSG_ERROR as u16).to_ne_bytes());
        b[8..12].copy_from_slice(&seq.to_ne_bytes());
        b[16..20].copy_from_slice(&(-errno).to_ne_bytes());
        b
    }

    #[test]
    fn a_silent_kernel_is_a_timeout_not_a_hang() {
        // A datagram socket pair stands in for the netlink socket.
        let (ours, kernel) = std::os::unix::net::UnixDatagram::pair().unwrap();
        let t = Instant::now();
        let e = await_ack(&ours, libc::RTM_NEWADDR, 1, t + Duration::from_millis(200)).unwrap_err();
        let took = t.elapsed();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert!(e.to_string().contains("no netlink acknowledgement"), "{e}");
        assert!(took >= Duration::from_millis(200), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
        // Answers to other requests do not extend the wait.
        for _ in 0..3 {
            kernel.send(&ack(9, 0)).unwrap();
        }
        let t = Instant::now();
        let e = await_ack(&ours, libc::RTM_NEWADDR, 1, t + Duration::from_millis(200)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert!(t.elapsed() < Duration::from_secs(2));
        // An answer in time is taken, with its meaning.
        kernel.send(&ack(2, 0)).unwrap();
        await_ack(
            &ours,
            libc::RTM_NEWADDR,
            2,
            Instant::now() + Duration::from_secs(2),
        )
        .unwrap();
        kernel.send(&ack(3, libc::EEXIST)).unwrap();
        await_ack(
            &ours,
            libc::RTM_NEWADDR,
            3,
            Instant::now() + Duration::from_secs(2),
        )
        .unwrap();
        kernel.send(&ack(4, libc::EPERM)).unwrap();
        let e = await_ack(
            &ours,
            libc::RTM_NEWADDR,
            4,
            Instant::now() + Duration::from_secs(2),
        )
        .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));
    }

    #[test]
    fn missing_interface_is_named() {
        let e = place(&VipPlan {
            addr: Ipv4Addr::new(192, 0, 2, 1),
            prefix: 24,
            interface: Some("nosuchif0".into()),
        })
        .unwrap_err();
        assert!(e.to_string().contains("nosuchif0"), "{e}");
    }
}
