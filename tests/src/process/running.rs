//! A running process: its output, readiness waits, signals and the stop by PID.

use std::fmt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::capture::Capture;
use super::{DROP_GRACE, Ready};
use crate::exec::wait_until;
use crate::lab::Host;
use crate::notify::NotifySocket;
use crate::ports::Proto;
use crate::registry;

/// Longest single wait between checks of "has the child exited?".
const SLICE: Duration = Duration::from_millis(50);
/// Lines of each stream printed when a test panics.
const TAIL_LINES: usize = 60;

/// A position in a process's output, to wait for lines printed after it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogCursor {
    pub(super) stdout: usize,
    pub(super) stderr: usize,
}

/// A running background process in a host. Dropping it stops it: SIGTERM to its
/// PID, a bounded wait, then SIGKILL.
pub struct Proc {
    pub(super) name: String,
    pub(super) cmd: String,
    pub(super) pid: u32,
    pub(super) child: Child,
    pub(super) status: Option<ExitStatus>,
    pub(super) capture: Arc<Capture>,
    pub(super) notify: Option<NotifySocket>,
    pub(super) stdout_path: PathBuf,
    pub(super) stderr_path: PathBuf,
    /// Keeps the lab (and its namespaces) alive while the process runs.
    pub(super) host: Host,
}

impl fmt::Debug for Proc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proc")
            .field("name", &self.name)
            .field("pid", &self.pid)
            .field("host", &self.host.name())
            .field("status", &self.status)
            .finish()
    }
}

impl Proc {
    /// Its PID (in the root PID namespace: `ip netns exec` only switches network).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Its name in the lab (also the stem of its log files).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// File holding its stdout.
    pub fn stdout_path(&self) -> &Path {
        &self.stdout_path
    }

    /// File holding its stderr.
    pub fn stderr_path(&self) -> &Path {
        &self.stderr_path
    }

    /// Its stdout so far (lossy UTF-8).
    pub fn stdout(&self) -> String {
        self.capture.text(0)
    }

    /// Its stderr so far (lossy UTF-8).
    pub fn stderr(&self) -> String {
        self.capture.text(1)
    }

    /// The sd_notify messages received so far (empty unless spawned with
    /// [`Ready::Notify`]).
    pub fn notify_messages(&self) -> Vec<String> {
        self.notify
            .as_ref()
            .map(|n| n.messages().to_vec())
            .unwrap_or_default()
    }

    /// The current end of its output: pass to [`Proc::wait_for_log_after`] to wait
    /// only for lines printed from now on (e.g. after a SIGHUP).
    pub fn log_cursor(&self) -> LogCursor {
        let s = self.capture.lock();
        LogCursor {
            stdout: s.bufs[0].len(),
            stderr: s.bufs[1].len(),
        }
    }

    /// Send `sig` to its PID (e.g. `Signal::SIGHUP` to reload).
    pub fn signal(&mut self, sig: Signal) {
        if self.try_status().is_none() {
            // Not yet reaped by us, so the PID is still this child's.
            kill(Pid::from_raw(self.pid as i32), sig)
                .unwrap_or_else(|e| panic!("{}: kill -{sig}: {e}", self.name));
        }
    }

    /// Its exit status if it has exited (reaps it).
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none()
            && let Ok(Some(st)) = self.child.try_wait()
        {
            self.status = Some(st);
            registry::remove_pid(self.host.lab_inner().id(), self.pid);
        }
        self.status
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        self.try_status().is_none()
    }

    /// Wait up to `timeout` for it to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.try_status().is_none()
            && let Ok(Some(st)) = wait_until(&mut self.child, Instant::now() + timeout)
        {
            self.status = Some(st);
            registry::remove_pid(self.host.lab_inner().id(), self.pid);
        }
        self.status
    }

    /// SIGTERM, wait up to 5 s, then SIGKILL; returns the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        self.stop_with(DROP_GRACE)
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL; returns the exit status.
    pub fn stop_with(&mut self, grace: Duration) -> ExitStatus {
        if let Some(st) = self.try_status() {
            return st;
        }
        let _ = kill(Pid::from_raw(self.pid as i32), Signal::SIGTERM);
        if let Some(st) = self.wait_exit(grace) {
            return st;
        }
        eprintln!(
            "e2e: {} (pid {}) ignored SIGTERM for {grace:?}; SIGKILL",
            self.name, self.pid
        );
        let _ = self.child.kill();
        // Runs in Drop: never panic. After SIGKILL, wait only fails if already reaped.
        match self.child.wait() {
            Ok(st) => {
                self.status = Some(st);
                registry::remove_pid(self.host.lab_inner().id(), self.pid);
                st
            }
            Err(e) => {
                eprintln!("e2e: wait for {} (pid {}): {e}", self.name, self.pid);
                ExitStatus::from_raw(libc::SIGKILL)
            }
        }
    }

    /// Wait up to `timeout` for a line containing `needle` anywhere in its output;
    /// returns that line. Fails if it exits first.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> Result<String, String> {
        self.wait_for_log_after(LogCursor::default(), needle, timeout)
    }

    /// Like [`Proc::wait_for_log`], only looking at output after `cursor`.
    pub fn wait_for_log_after(
        &mut self,
        cursor: LogCursor,
        needle: &str,
        timeout: Duration,
    ) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.capture.find(cursor, needle) {
                return Ok(line);
            }
            if let Some(st) = self.try_status() {
                // Let the pipes drain, then look one last time.
                self.capture.wait_closed(Duration::from_secs(1));
                return self
                    .capture
                    .find(cursor, needle)
                    .ok_or_else(|| format!("exited with {st} before logging {needle:?}"));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!("no log line with {needle:?} within {timeout:?}"));
            }
            self.capture.wait_change(SLICE.min(deadline - now));
        }
    }

    /// Wait up to `timeout` for an sd_notify message with a line starting with
    /// `needle` (e.g. `"READY=1"`, `"STATUS="`), counting messages from index
    /// `from` (see [`Proc::notify_messages`]). Returns the index of the message.
    pub fn wait_notify(
        &mut self,
        from: usize,
        needle: &str,
        timeout: Duration,
    ) -> Result<usize, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let Some(sock) = self.notify.as_mut() else {
                return Err("spawned without Ready::Notify: no NOTIFY_SOCKET".into());
            };
            if let Some(i) = sock.find(from, needle) {
                return Ok(i);
            }
            if let Some(st) = self.try_status() {
                // Datagrams sent just before exiting may still be queued.
                let sock = self.notify.as_mut().expect("checked above");
                for _ in 0..1024 {
                    if !matches!(sock.recv_for(Duration::from_millis(1)), Ok(true)) {
                        break;
                    }
                }
                return sock
                    .find(from, needle)
                    .ok_or_else(|| format!("exited with {st} before notifying {needle:?}"));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!("no {needle:?} notification within {timeout:?}"));
            }
            let sock = self.notify.as_mut().expect("checked above");
            sock.recv_for(SLICE.min(deadline - now))
                .map_err(|e| format!("notify socket: {e}"))?;
        }
    }

    /// Wait up to `timeout` until a `proto` socket is bound to `port` in its host.
    pub fn wait_port(&mut self, proto: Proto, port: u16, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(5);
        loop {
            if self.host.port_bound(proto, port) {
                return Ok(());
            }
            if let Some(st) = self.try_status() {
                return Err(format!(
                    "exited with {st} before binding {proto:?} port {port}"
                ));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!(
                    "{proto:?} port {port} not bound within {timeout:?}"
                ));
            }
            thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    pub(super) fn wait_ready(&mut self, ready: &Ready, timeout: Duration) -> Result<(), String> {
        match ready {
            Ready::Started => Ok(()),
            Ready::Notify => self.wait_notify(0, "READY=1", timeout).map(drop),
            Ready::Log(needle) => self.wait_for_log(needle, timeout).map(drop),
            Ready::Tcp(port) => self.wait_port(Proto::Tcp, *port, timeout),
            Ready::Udp(port) => self.wait_port(Proto::Udp, *port, timeout),
        }
    }

    /// Print the last lines of its stdout and stderr to the test's stderr.
    pub fn dump_logs(&self) {
        eprintln!(
            "===== {} (pid {}): `{}`\n----- stdout tail ({}) -----\n{}----- stderr tail ({}) -----\n{}===== \
             (set E2E_KEEP_DIR=1 to keep the lab dir)",
            self.name,
            self.pid,
            self.cmd,
            self.stdout_path.display(),
            tail(&self.stdout(), TAIL_LINES),
            self.stderr_path.display(),
            tail(&self.stderr(), TAIL_LINES),
        );
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop_with(DROP_GRACE);
        if thread::panicking() {
            self.capture.wait_closed(Duration::from_millis(500));
            self.dump_logs();
        }
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = lines[lines.len().saturating_sub(n)..].join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    out
}
