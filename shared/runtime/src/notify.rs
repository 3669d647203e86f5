//! Readiness for systemd: sd_notify messages and the watchdog. Each message is a no-op without
//! `NOTIFY_SOCKET`. They are sent without blocking: when nobody drains the socket (a test harness,
//! a busy systemd) and its queue is full, a message is dropped rather than stalling reload or
//! shutdown.

use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use tokio_util::sync::CancellationToken;

fn send(msg: &str) {
    if let Some(path) = std::env::var_os("NOTIFY_SOCKET") {
        send_to(&path, msg);
    }
}

fn send_to(path: &std::ffi::OsStr, msg: &str) {
    let bytes = path.as_bytes();
    let addr = match bytes.strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name),
        None => SocketAddr::from_pathname(path),
    };
    let result = addr.and_then(|addr| {
        let sock = UnixDatagram::unbound()?;
        sock.set_nonblocking(true)?;
        sock.send_to_addr(msg.as_bytes(), &addr)
    });
    match result {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            tracing::debug!(msg, "sd_notify queue full; message dropped");
        }
        Err(e) => tracing::warn!(error = %e, msg, "sd_notify failed"),
    }
}

/// READY=1.
pub fn ready() {
    send("READY=1");
}

/// RELOADING=1 (followed by [`ready`] when done).
pub fn reloading() {
    send("RELOADING=1");
}

/// STOPPING=1.
pub fn stopping() {
    send("STOPPING=1");
}

/// STATUS=... shown by `systemctl status`.
pub fn status(s: &str) {
    send(&format!("STATUS={}", s.replace('\n', " ")));
}

/// WATCHDOG=1.
pub fn watchdog() {
    send("WATCHDOG=1");
}

/// The watchdog interval systemd asked for, if any.
pub fn watchdog_interval() -> Option<std::time::Duration> {
    sd_notify::watchdog_enabled()
}

/// Sends WATCHDOG=1 at half the interval systemd asked for, until `shutdown`.
pub fn spawn_watchdog(shutdown: CancellationToken) {
    let Some(every) = watchdog_interval() else {
        return;
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every / 2);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => watchdog(),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_messages_instead_of_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        // Far more than any datagram queue holds (net.unix.max_dgram_qlen, 10 here); nobody reads.
        for _ in 0..1000 {
            send_to(path.as_os_str(), "RELOADING=1");
        }
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"RELOADING=1");
    }
}
