//! Binding the listen addresses: per address, one UDP socket shared by the workers and the TCP
//! listener.

use std::net::SocketAddr;

use tokio::net::TcpListener;

/// Sockets of one listen address: `workers` handles of one UDP socket (each worker thread reads
/// the same receive queue) and the TCP listener.
///
/// One queue rather than one SO_REUSEPORT socket per worker: the kernel spreads REUSEPORT
/// traffic by a hash of the client's address and port, so a few busy clients (dnsperf's 8
/// sockets in the bench) often land mostly on one worker while the other idles (measured splits
/// of 20/80 and 0/100 on 2 cores, bench/dns/README.md "Why the top was lower"). With one queue
/// whichever worker is free takes the next batch, as NSD's default (`reuseport: no`) does.
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
        let mut udp = Vec::with_capacity(workers.max(1));
        for _ in 1..workers.max(1) {
            // A duplicate descriptor of the same socket: the same receive queue.
            udp.push(first.try_clone().map_err(explain("udp"))?);
        }
        udp.insert(0, first);
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

#[cfg(test)]
mod tests {
    use super::bind;
    use std::net::{SocketAddr, UdpSocket};

    /// Two datagrams from one client socket (one address and port, which SO_REUSEPORT's hash
    /// would send to one socket of several) can be taken by either worker: the workers read one
    /// queue.
    #[tokio::test]
    async fn the_workers_share_one_receive_queue() {
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("address");
        let mut bound = bind(&[addr], 2).expect("bind on loopback");
        let (udp, _tcp) = bound.remove(0);
        assert_eq!(udp.len(), 2);
        let at = udp[0].local_addr().expect("bound");
        assert_eq!(udp[1].local_addr().expect("bound"), at);
        let client = UdpSocket::bind("127.0.0.1:0").expect("client");
        client.send_to(b"one", at).expect("send");
        client.send_to(b"two", at).expect("send");
        let mut buf = [0u8; 8];
        // Each worker's handle has the 200 ms read timeout of udp::bind_one: a bounded wait.
        let (n0, from0) = udp[0].recv_from(&mut buf).expect("first worker receives");
        assert_eq!(
            (&buf[..n0], from0),
            (&b"one"[..], client.local_addr().expect("client"))
        );
        let (n1, _) = udp[1].recv_from(&mut buf).expect("second worker receives");
        assert_eq!(&buf[..n1], b"two");
    }
}
