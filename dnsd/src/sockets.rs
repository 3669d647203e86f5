//! Binding the listen addresses: per address, one SO_REUSEPORT UDP socket per worker (the
//! group steered by CPU, [`crate::udp::steer_by_cpu`], or by the kernel's hash, as
//! [`crate::steering::choose`] decides) and the TCP listener.

use std::net::SocketAddr;

use tokio::net::TcpListener;

/// Sockets of one listen address: `workers` UDP sockets sharing the port (SO_REUSEPORT), a
/// datagram going to the socket of the CPU that received it or as the kernel's hash of the
/// client says ([`crate::steering`]), and the TCP listener.
pub type Bound = (Vec<std::net::UdpSocket>, TcpListener);

/// A listen address that cannot be bound.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// The address is not configured on this host.
    #[error(
        "cannot listen on {addr} ({proto}): {} is not an address of this host; add it to an interface or change [dns] listen",
        addr.ip()
    )]
    NotLocal {
        /// The listen address.
        addr: SocketAddr,
        /// `udp` or `tcp`.
        proto: &'static str,
    },
    /// Any other failure.
    #[error("cannot listen on {addr} ({proto}): {source}")]
    Io {
        /// The listen address.
        addr: SocketAddr,
        /// `udp` or `tcp`.
        proto: &'static str,
        /// What the system said.
        source: std::io::Error,
    },
}

/// Binds UDP and TCP on every listen address; a missing address is a clear error.
pub fn bind(listen: &[SocketAddr], workers: usize) -> Result<Vec<Bound>, BindError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let mut out = Vec::new();
    for a in listen {
        let explain = |proto: &'static str| {
            move |e: std::io::Error| {
                if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) {
                    BindError::NotLocal { addr: *a, proto }
                } else {
                    BindError::Io {
                        addr: *a,
                        proto,
                        source: e,
                    }
                }
            }
        };
        let first = crate::udp::bind_one(*a).map_err(explain("udp"))?;
        // Port 0 (tests): the others join the port the first one got.
        let at = first.local_addr().map_err(explain("udp"))?;
        let mut udp = vec![first];
        for _ in 1..workers.max(1) {
            udp.push(crate::udp::bind_one(at).map_err(explain("udp"))?);
        }
        if udp.len() > 1 {
            steer(&udp, at);
        }
        let dom = Domain::for_address(*a);
        let t = Socket::new(dom, Type::STREAM, Some(Protocol::TCP)).map_err(explain("tcp"))?;
        t.set_reuse_address(true).map_err(explain("tcp"))?;
        t.set_nonblocking(true).map_err(explain("tcp"))?;
        t.bind(&(*a).into()).map_err(explain("tcp"))?;
        t.listen(1024).map_err(explain("tcp"))?;
        let t = TcpListener::from_std(std::net::TcpListener::from(t)).map_err(explain("tcp"))?;
        out.push((udp, t));
    }
    Ok(out)
}

/// Steers the group `udp` bound on `at` as [`crate::steering::choose`] says for the facts the
/// kernel shows ([`crate::links::facts`]), logging which steering and why.
fn steer(udp: &[std::net::UdpSocket], at: SocketAddr) {
    use crate::steering::{Steering, choose};
    let choice = choose(&crate::links::facts(at));
    if choice.steering == Steering::Cpu
        && let Err(e) = crate::udp::steer_by_cpu(&udp[0], udp.len())
    {
        // The kernel's hash of the client's address and port still spreads the load.
        tracing::warn!(
            "udp {at}: cannot steer by CPU ({e}); kernel hash steering instead of {choice}"
        );
        return;
    }
    tracing::info!("udp {at}: {choice}");
}

#[cfg(test)]
mod tests {
    use super::bind;
    use std::net::{SocketAddr, UdpSocket};

    /// Pins the calling thread to `cpu`.
    fn pin(cpu: usize) {
        // SAFETY: a zeroed cpu_set_t is empty; CPU_SET stays within it for cpu < CPU_SETSIZE.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            assert_eq!(
                libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set),
                0
            );
        }
    }

    /// A datagram sent over loopback from CPU k (received there too) reaches worker k's socket,
    /// whatever the client's port: the group is steered by CPU, not by the client hash, which
    /// left one of two workers with most of dnsperf's 8 flows (bench/dns/README.md, "Why the
    /// top was lower").
    #[tokio::test(flavor = "current_thread")]
    async fn a_datagram_goes_to_the_receiving_cpus_worker() {
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("address");
        let mut bound = bind(&[addr], 2).expect("bind on loopback");
        let (udp, _tcp) = bound.remove(0);
        assert_eq!(udp.len(), 2);
        let at = udp[0].local_addr().expect("bound");
        assert_eq!(udp[1].local_addr().expect("bound"), at);
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut buf = [0u8; 8];
        for round in 0..4 {
            for cpu in 0..cpus.min(4) {
                let sent = std::thread::spawn(move || {
                    pin(cpu);
                    // A new client (a new port) each time: the hash would move it around.
                    let c = UdpSocket::bind("127.0.0.1:0").expect("client");
                    c.send_to(&[round, cpu as u8], at).expect("send");
                });
                sent.join().expect("sender");
                // The socket has udp::bind_one's 200 ms read timeout: a bounded wait.
                let (n, _) = udp[cpu % 2]
                    .recv_from(&mut buf)
                    .expect("the CPU's worker receives");
                assert_eq!(&buf[..n], &[round, cpu as u8]);
            }
        }
    }
}
