//! The receiving end of sd_notify: a unix datagram socket whose path the child gets
//! in `NOTIFY_SOCKET`, as systemd does for `Type=notify` units. A path socket (not
//! an abstract one) is reachable from every network namespace.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A bound notify socket and every message received on it so far.
#[derive(Debug)]
pub(crate) struct NotifySocket {
    sock: UnixDatagram,
    path: PathBuf,
    /// Messages in arrival order (each may hold several `KEY=VALUE` lines).
    messages: Vec<String>,
}

impl NotifySocket {
    pub(crate) fn bind(path: &Path) -> io::Result<Self> {
        let sock = UnixDatagram::bind(path)?;
        // Daemons that drop privileges must still be able to send to it.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
        Ok(NotifySocket {
            sock,
            path: path.to_owned(),
            messages: Vec::new(),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn messages(&self) -> &[String] {
        &self.messages
    }

    /// Index of the first message at or after `from` with a line starting with
    /// `needle` (e.g. `READY=1`).
    pub(crate) fn find(&self, from: usize, needle: &str) -> Option<usize> {
        self.messages
            .iter()
            .enumerate()
            .skip(from)
            .find(|(_, m)| m.lines().any(|l| l.starts_with(needle)))
            .map(|(i, _)| i)
    }

    /// Receive at most one datagram, waiting up to `wait`. Returns whether one came.
    pub(crate) fn recv_for(&mut self, wait: Duration) -> io::Result<bool> {
        self.sock
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
        let mut buf = vec![0u8; 4096];
        match self.sock.recv(&mut buf) {
            Ok(n) => {
                self.messages
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}
