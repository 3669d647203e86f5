//! The socket side of router advertisements: one raw ICMPv6 socket per interface that serves an
//! IPv6 subnet with `ra` on (bound to the device, in ff02::2, hop limit 255, only router
//! solicitations let in), one task per interface driving its [`Schedule`]. The advertisement is
//! built from the current view each time, so a reload changes what the next one says.

use std::io::{IoSlice, IoSliceMut};
use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Instant;

use hostfile::DhcpView;
use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, SockaddrIn6, recvmsg, sendmsg, setsockopt,
    sockopt,
};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::build::{Kind, RaParams, build};
use super::sched::{Dest, Schedule};
use super::{ND_HOP_LIMIT, ROUTER_SOLICITATION, rs};
use crate::v6::server::{Link, choose_links, subnet_of};

/// All routers on the link: where solicitations go.
pub const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
/// All nodes on the link: where unsolicited advertisements go.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// `ICMP6_FILTER` of `<netinet/icmp6.h>` (not in the libc crate).
const ICMP6_FILTER: libc::c_int = 1;

/// One advertising interface.
#[derive(Debug)]
pub struct RaLink {
    /// The interface.
    pub link: Link,
    /// Its link-layer address (the source link-layer address option).
    pub mac: Vec<u8>,
    sock: AsyncFd<Socket>,
}

/// The advertising interfaces.
#[derive(Debug)]
pub struct RaSetup {
    /// One per interface.
    pub links: Vec<RaLink>,
}

/// Errors opening the advertisement sockets.
#[derive(Debug, thiserror::Error)]
pub enum RaSetupError {
    /// No interface list.
    #[error("router advertisements: cannot list interfaces: {0}")]
    Interfaces(std::io::Error),
    /// A socket could not be opened or set up.
    #[error("router advertisements: cannot open an ICMPv6 socket on {iface}: {err}")]
    Socket {
        /// The interface.
        iface: String,
        /// What failed.
        err: std::io::Error,
    },
}

/// The subnet `l` advertises in `view`, when it has `ra` on.
fn params(view: &DhcpView, l: &Link) -> Option<RaParams> {
    let s = &view.subnets6[subnet_of(view, l)?];
    s.ra.then(|| RaParams::of(s))
}

/// Opens a socket on each interface that serves an IPv6 subnet with `ra` on; `None` when there
/// is none.
pub fn setup(view: &DhcpView) -> Result<Option<RaSetup>, RaSetupError> {
    if !view.subnets6.iter().any(|s| s.ra) {
        return Ok(None);
    }
    let mut links = Vec::new();
    for l in choose_links(view).map_err(RaSetupError::Interfaces)? {
        let Some(p) = params(view, &l) else {
            continue;
        };
        let sock = open(&l).map_err(|err| RaSetupError::Socket {
            iface: l.name.clone(),
            err,
        })?;
        let mac = link_mac(&l.name);
        tracing::info!(
            iface = %l.name,
            prefix = %p.prefix,
            managed = p.managed,
            other = p.other,
            autonomous = p.autonomous,
            "router advertisements on {} for {}",
            l.name,
            p.prefix
        );
        links.push(RaLink { link: l, mac, sock });
    }
    Ok((!links.is_empty()).then_some(RaSetup { links }))
}

fn open(l: &Link) -> std::io::Result<AsyncFd<Socket>> {
    let s = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
    s.bind_device(Some(l.name.as_bytes()))?;
    s.set_multicast_hops_v6(u32::from(ND_HOP_LIMIT))?;
    s.set_unicast_hops_v6(u32::from(ND_HOP_LIMIT))?;
    s.set_multicast_loop_v6(false)?;
    s.set_multicast_if_v6(l.index)?;
    s.join_multicast_v6(&ALL_ROUTERS, l.index)?;
    setsockopt(&s, sockopt::Ipv6RecvHopLimit, &true)?;
    // Let in router solicitations only (a set bit blocks that type).
    let mut filter = [u32::MAX; 8];
    filter[usize::from(ROUTER_SOLICITATION >> 5)] &= !(1 << (ROUTER_SOLICITATION & 31));
    // SAFETY: a valid fd and a pointer to an initialised array of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_ICMPV6,
            ICMP6_FILTER,
            filter.as_ptr().cast(),
            std::mem::size_of_val(&filter) as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    s.set_nonblocking(true)?;
    // SAFETY: the socket owns its descriptor, and the AsyncFd owns the socket from here on.
    Ok(unsafe { AsyncFd::register_with_interest(s, tokio::io::Interest::READABLE) }?)
}

/// The interface's link-layer address, empty when it has none (or it cannot be read).
fn link_mac(name: &str) -> Vec<u8> {
    nix::ifaddrs::getifaddrs()
        .ok()
        .and_then(|mut it| {
            it.find_map(|ifa| {
                let a = ifa.address?;
                let ll = a.as_link_addr()?;
                (ifa.interface_name == name).then(|| ll.addr())?
            })
        })
        .map(|m| m.to_vec())
        .filter(|m| m.iter().any(|b| *b != 0))
        .unwrap_or_default()
}

/// The interface's link-local address now (the source of every advertisement).
fn link_local(name: &str) -> Option<Ipv6Addr> {
    nix::ifaddrs::getifaddrs().ok()?.find_map(|ifa| {
        let a = ifa.address?.as_sockaddr_in6()?.ip();
        (ifa.interface_name == name && a.is_unicast_link_local()).then_some(a)
    })
}

/// Advertises on every interface until `stop`, then sends each its final advertisement.
pub async fn serve(setup: RaSetup, view: watch::Receiver<Arc<DhcpView>>, stop: CancellationToken) {
    let mut tasks = tokio::task::JoinSet::new();
    for l in setup.links {
        tasks.spawn(link_task(l, view.clone(), stop.clone()));
    }
    while tasks.join_next().await.is_some() {}
}

fn seed() -> u64 {
    let mut b = [0u8; 8];
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        return u64::from(t.subsec_nanos()) ^ u64::from(std::process::id());
    }
    u64::from_le_bytes(b)
}

async fn link_task(l: RaLink, view: watch::Receiver<Arc<DhcpView>>, stop: CancellationToken) {
    let mut sched = Schedule::new(Instant::now(), seed());
    let mut buf = vec![0u8; 2048];
    loop {
        let wake = tokio::time::Instant::from_std(sched.next_wake());
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep_until(wake) => {
                for d in sched.due(Instant::now()) {
                    send(&l, &view, d, Kind::Regular);
                }
            }
            r = l.sock.readable() => {
                let Ok(mut guard) = r else { break };
                loop {
                    match guard.try_io(|s| recv(s.get_ref(), &mut buf)) {
                        Ok(Ok((n, src, hops))) => {
                            let msg = buf.get(..n).unwrap_or_default();
                            match rs::parse(msg, src, hops) {
                                Ok(s) => {
                                    tracing::debug!(iface = %l.link.name, src = %s.src, "router solicitation");
                                    sched.solicited(Instant::now(), s.src);
                                }
                                Err(e) => tracing::debug!(iface = %l.link.name, %src, error = %e, "ICMPv6 message ignored"),
                            }
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(iface = %l.link.name, error = %e, "ICMPv6 receive failed");
                            break;
                        }
                        Err(_would_block) => break,
                    }
                }
            }
        }
    }
    send(&l, &view, Dest::AllNodes, Kind::Final);
    tracing::info!(iface = %l.link.name, "final router advertisement sent (router lifetime 0)");
}

/// One received datagram: its length, source and hop limit.
fn recv(s: &Socket, buf: &mut [u8]) -> std::io::Result<(usize, Ipv6Addr, Option<u8>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!(libc::c_int);
    let msg = recvmsg::<SockaddrIn6>(s.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::empty())?;
    let hops = msg.cmsgs().ok().and_then(|mut c| {
        c.find_map(|m| match m {
            ControlMessageOwned::Ipv6HopLimit(h) => u8::try_from(h).ok(),
            _ => None,
        })
    });
    let src = msg.address.map_or(Ipv6Addr::UNSPECIFIED, |a| a.ip());
    // A truncated datagram is no solicitation: report no length.
    let n = if msg.flags.contains(MsgFlags::MSG_TRUNC) {
        0
    } else {
        msg.bytes
    };
    Ok((n, src, hops))
}

/// Builds and sends one advertisement from the link-local address; failures are logged (the
/// next one is due soon enough).
fn send(l: &RaLink, view: &watch::Receiver<Arc<DhcpView>>, dest: Dest, kind: Kind) {
    let Some(p) = params(&view.borrow(), &l.link) else {
        return;
    };
    let Some(src) = link_local(&l.link.name) else {
        tracing::debug!(iface = %l.link.name, "no link-local address yet: advertisement not sent");
        return;
    };
    let bytes = build(&p, &l.mac, kind);
    let dst = match dest {
        Dest::AllNodes => ALL_NODES,
        Dest::Host(a) => a,
    };
    let info = libc::in6_pktinfo {
        ipi6_addr: libc::in6_addr {
            s6_addr: src.octets(),
        },
        ipi6_ifindex: l.link.index,
    };
    let to = SockaddrIn6::from(SocketAddrV6::new(dst, 0, 0, l.link.index));
    let r = sendmsg(
        l.sock.get_ref().as_raw_fd(),
        &[IoSlice::new(&bytes)],
        &[ControlMessage::Ipv6PacketInfo(&info)],
        MsgFlags::empty(),
        Some(&to),
    );
    match r {
        Ok(_) => tracing::debug!(iface = %l.link.name, %dst, ?kind, "router advertisement sent"),
        Err(e) => {
            tracing::warn!(iface = %l.link.name, %dst, error = %e, "router advertisement not sent")
        }
    }
}
