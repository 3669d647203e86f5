//! Binding the listen addresses: per address, one SO_REUSEPORT UDP socket per worker and the
//! TCP listener.

use std::net::SocketAddr;

use tokio::net::TcpListener;

/// Sockets of one listen address: `workers` UDP sockets sharing the port (SO_REUSEPORT) and
/// the TCP listener.
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
        let mut udp = Vec::new();
        for _ in 0..workers.max(1) {
            udp.push(crate::udp::bind_one(*a).map_err(explain("udp"))?);
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
