//! The receiving end of sd_notify: a unix datagram socket whose path the child gets
//! in `NOTIFY_SOCKET`, as systemd does for `Type=notify` units. A path socket (not
//! an abstract one) is reachable from every network namespace.
//!
//! A thread drains the socket all the time, as systemd does: a daemon that reloads
//! many times must never find the queue full (its sends would block or be dropped).

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the drain thread looks at its stop flag.
const POLL: Duration = Duration::from_millis(100);

#[derive(Debug, Default)]
struct Inbox {
    messages: Mutex<Vec<String>>,
    arrived: Condvar,
}

/// A bound notify socket and every message received on it so far.
#[derive(Debug)]
pub(crate) struct NotifySocket {
    path: PathBuf,
    inbox: Arc<Inbox>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Messages already handed to the caller (a snapshot, for `messages`).
    seen: Vec<String>,
}

impl NotifySocket {
    pub(crate) fn bind(path: &Path) -> io::Result<Self> {
        let sock = UnixDatagram::bind(path)?;
        // Daemons that drop privileges must still be able to send to it.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
        sock.set_read_timeout(Some(POLL))?;
        let inbox = Arc::new(Inbox::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (i, s) = (inbox.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("e2e-notify".into())
            .spawn(move || drain(&sock, &i, &s))?;
        Ok(NotifySocket {
            path: path.to_owned(),
            inbox,
            stop,
            thread: Some(thread),
            seen: Vec::new(),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn messages(&self) -> &[String] {
        &self.seen
    }

    /// Index of the first message at or after `from` with a line starting with
    /// `needle` (e.g. `READY=1`).
    pub(crate) fn find(&self, from: usize, needle: &str) -> Option<usize> {
        self.seen
            .iter()
            .enumerate()
            .skip(from)
            .find(|(_, m)| m.lines().any(|l| l.starts_with(needle)))
            .map(|(i, _)| i)
    }

    /// Wait up to `wait` for a message not seen yet. Returns whether one came.
    pub(crate) fn recv_for(&mut self, wait: Duration) -> io::Result<bool> {
        let guard = self
            .inbox
            .messages
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let have = self.seen.len();
        let (guard, _) = self
            .inbox
            .arrived
            .wait_timeout_while(guard, wait, |m| m.len() <= have)
            .unwrap_or_else(|p| p.into_inner());
        let new = guard.len() > have;
        self.seen = guard.clone();
        Ok(new)
    }
}

fn drain(sock: &UnixDatagram, inbox: &Inbox, stop: &AtomicBool) {
    let mut buf = vec![0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        match sock.recv(&mut buf) {
            Ok(n) => {
                let mut m = inbox.messages.lock().unwrap_or_else(|p| p.into_inner());
                m.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                inbox.arrived.notify_all();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_messages_are_all_received_without_the_reader_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n");
        let mut n = NotifySocket::bind(&path).unwrap();
        let tx = UnixDatagram::unbound().unwrap();
        for i in 0..200 {
            // Blocking sends: they would hang past the queue limit if nobody drained.
            tx.send_to(format!("STATUS={i}").as_bytes(), &path).unwrap();
        }
        while n.messages().len() < 200 {
            assert!(
                n.recv_for(Duration::from_secs(5)).unwrap(),
                "stalled at {}",
                n.messages().len()
            );
        }
        assert_eq!(n.find(0, "STATUS=199"), Some(199));
    }
}
