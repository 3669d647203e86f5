//! IPv6 addresses of the interfaces (IO): which are configured (`/proc/net/if_inet6`), the
//! link-local address VRRP sends from, and adding (without duplicate address detection, as
//! keepalived does: the address must answer at once) and removing a floating one with
//! rtnetlink. Kept here rather than in `crate::vip`, which places the services' VIPs.

use std::io;
use std::net::Ipv6Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use ipnet::Ipv6Net;

/// How long the kernel may take to acknowledge an address change.
const DEADLINE: Duration = Duration::from_secs(3);

/// `IFA_F_NODAD`: no duplicate address detection (the address is usable at once).
const IFA_F_NODAD: u8 = 0x02;
/// `IFA_F_TENTATIVE` in `/proc/net/if_inet6`: still under duplicate address detection.
const IFA_F_TENTATIVE: u32 = 0x40;
/// Link-local scope in `/proc/net/if_inet6`.
const SCOPE_LINK: u32 = 0x20;

/// One line of `/proc/net/if_inet6`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct If6 {
    /// The address.
    pub addr: Ipv6Addr,
    /// Interface index.
    pub index: u32,
    /// Prefix length.
    pub prefix: u8,
    /// Scope (0x20 link-local).
    pub scope: u32,
    /// IFA_F_* flags.
    pub flags: u32,
    /// Interface name.
    pub name: String,
}

/// Parses `/proc/net/if_inet6` (pure, for tests).
pub fn parse_if_inet6(text: &str) -> Vec<If6> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let [hex, index, prefix, scope, flags, name] = f[..] else {
                return None;
            };
            let addr = u128::from_str_radix(hex, 16).ok()?;
            Some(If6 {
                addr: Ipv6Addr::from(addr),
                index: u32::from_str_radix(index, 16).ok()?,
                prefix: u8::from_str_radix(prefix, 16).ok()?,
                scope: u32::from_str_radix(scope, 16).ok()?,
                flags: u32::from_str_radix(flags, 16).ok()?,
                name: name.to_owned(),
            })
        })
        .collect()
}

/// Every IPv6 address of this network namespace.
pub fn list() -> io::Result<Vec<If6>> {
    match std::fs::read_to_string("/proc/net/if_inet6") {
        Ok(t) => Ok(parse_if_inet6(&t)),
        // IPv6 disabled: no address at all.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The link-local address of interface `index` (one past duplicate address detection first).
pub fn link_local(index: u32) -> io::Result<Option<Ipv6Addr>> {
    let mut ll: Vec<If6> = list()?
        .into_iter()
        .filter(|a| a.index == index && a.scope == SCOPE_LINK)
        .collect();
    ll.sort_by_key(|a| a.flags & IFA_F_TENTATIVE);
    Ok(ll.first().map(|a| a.addr))
}

/// The address IPv6 adverts of interface `index` go out from: its link-local address, except
/// towards unicast `peers` none of which is link-local, where it is one of its own other
/// addresses (not one of `floating`), so that the peers, which screen senders by the addresses
/// they list, recognise it; the link-local address when there is no such address.
pub fn advert_source(
    index: u32,
    peers: &[std::net::IpAddr],
    floating: &[Ipv6Addr],
) -> io::Result<Option<Ipv6Addr>> {
    let global_peers = !peers.is_empty()
        && peers.iter().all(|p| match p {
            std::net::IpAddr::V6(p) => !p.is_unicast_link_local(),
            std::net::IpAddr::V4(_) => true,
        });
    if global_peers {
        let mut own: Vec<If6> = list()?
            .into_iter()
            .filter(|a| {
                a.index == index
                    && a.scope != SCOPE_LINK
                    && !a.addr.is_loopback()
                    && !floating.contains(&a.addr)
            })
            .collect();
        own.sort_by_key(|a| a.flags & IFA_F_TENTATIVE);
        if let Some(a) = own.first() {
            return Ok(Some(a.addr));
        }
    }
    link_local(index)
}

/// The RTM_NEWADDR / RTM_DELADDR request for `net` on `index` (pure, for tests).
pub fn request(cmd: u16, net: Ipv6Net, index: u32, seq: u32) -> Vec<u8> {
    let mut flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
    if cmd == libc::RTM_NEWADDR {
        flags |= (libc::NLM_F_CREATE | libc::NLM_F_REPLACE) as u16;
    }
    let mut m = Vec::with_capacity(44);
    m.extend_from_slice(&0u32.to_ne_bytes()); // length, patched below
    m.extend_from_slice(&cmd.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    // struct ifaddrmsg
    m.push(libc::AF_INET6 as u8);
    m.push(net.prefix_len());
    m.push(IFA_F_NODAD);
    m.push(0); // scope universe
    m.extend_from_slice(&index.to_ne_bytes());
    m.extend_from_slice(&20u16.to_ne_bytes());
    m.extend_from_slice(&libc::IFA_ADDRESS.to_ne_bytes());
    m.extend_from_slice(&net.addr().octets());
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

fn netlink(cmd: u16, net: Ipv6Net, index: u32) -> io::Result<()> {
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
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let tv = libc::timeval {
        tv_sec: DEADLINE.as_secs() as libc::time_t,
        tv_usec: 0,
    };
    // SAFETY: `tv` is a valid timeval for its length.
    if unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const tv).cast(),
            std::mem::size_of::<libc::timeval>() as u32,
        )
    } < 0
    {
        return Err(io::Error::last_os_error());
    }
    let seq = 1;
    let msg = request(cmd, net, index, seq);
    // SAFETY: zeroed sockaddr_nl is valid (pid 0 = the kernel).
    let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    sa.nl_family = libc::AF_NETLINK as u16;
    // SAFETY: buffer and address are valid for the given lengths.
    if unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            msg.as_ptr().cast(),
            msg.len(),
            0,
            (&raw const sa).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    } < 0
    {
        return Err(io::Error::last_os_error());
    }
    let mut buf = [0u8; 4096];
    for _ in 0..8 {
        // SAFETY: `buf` is valid for its length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
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
        "no netlink acknowledgement",
    ))
}

/// Adds `net` to interface `index`, usable at once (no duplicate address detection).
pub fn add(net: Ipv6Net, index: u32) -> io::Result<()> {
    netlink(libc::RTM_NEWADDR, net, index)
}

/// Removes `net` from interface `index` (absent is fine).
pub fn remove(net: Ipv6Net, index: u32) -> io::Result<()> {
    netlink(libc::RTM_DELADDR, net, index)
}
