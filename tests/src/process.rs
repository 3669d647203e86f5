//! Background processes inside a host: spawn, wait for readiness, stop by PID.
//!
//! Readiness is observed, never assumed from elapsed time: an sd_notify `READY=1`
//! datagram, a log line, or a bound port. A process that exits before it is ready
//! fails the wait with everything it printed.
//!
//! Output goes to `<lab dir>/<name>.stdout` / `.stderr` and to memory (for
//! [`Proc::wait_for_log`]); a [`Proc`] dropped while the test panics prints the
//! tail of both, so a failing test shows the daemon's side of the story.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::exec::{describe, wait_until};
use crate::lab::Host;
use crate::notify::NotifySocket;
use crate::ports::Proto;
use crate::registry;

/// Grace between SIGTERM and SIGKILL when a [`Proc`] is dropped.
const DROP_GRACE: Duration = Duration::from_secs(5);
/// Cap on output kept in memory per stream (the files keep everything).
const MEM_CAP: usize = 16 << 20;
/// Longest single wait between checks of "has the child exited?".
const SLICE: Duration = Duration::from_millis(50);
/// Lines of each stream printed when a test panics.
const TAIL_LINES: usize = 60;

/// When a spawned process counts as ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ready {
    /// As soon as it is started.
    Started,
    /// It sends `READY=1` to the `NOTIFY_SOCKET` it was given (sd_notify).
    Notify,
    /// A line containing this text appears on its stdout or stderr.
    Log(String),
    /// A TCP socket listens on this port in the host (any address).
    Tcp(u16),
    /// A UDP socket is bound to this port in the host (any address).
    Udp(u16),
}

/// Why a process did not become ready; carries its output.
#[derive(Debug, thiserror::Error)]
#[error(
    "{name} (`{cmd}`): {reason}\n--- stdout ({stdout_path}) ---\n{stdout}--- stderr ({stderr_path}) ---\n{stderr}"
)]
pub struct SpawnError {
    /// The process's name in the lab.
    pub name: String,
    /// The command line.
    pub cmd: String,
    /// What went wrong ("exited with ... before ready", "not ready within ...").
    pub reason: String,
    /// Its exit status if it exited.
    pub status: Option<ExitStatus>,
    /// Everything it printed on stdout.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
    /// Where stdout was captured.
    pub stdout_path: String,
    /// Where stderr was captured.
    pub stderr_path: String,
}

/// Builder for a background process in a host; see [`Host::process`].
#[derive(Debug)]
pub struct Spawn<'h> {
    host: &'h Host,
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    dir: Option<PathBuf>,
    name: Option<String>,
    ready: Ready,
    timeout: Duration,
}

impl<'h> Spawn<'h> {
    pub(crate) fn new(host: &'h Host, program: &Path) -> Self {
        Spawn {
            host,
            program: program.to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            dir: None,
            name: None,
            ready: Ready::Started,
            timeout: Duration::from_secs(10),
        }
    }

    /// Append one argument.
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_owned());
        self
    }

    /// Append arguments.
    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Set an environment variable for the child (the test process's own
    /// environment is never changed).
    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Self {
        self.env
            .push((k.as_ref().to_owned(), v.as_ref().to_owned()));
        self
    }

    /// Working directory of the child (default: the lab's temp dir).
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.dir = Some(dir.as_ref().to_owned());
        self
    }

    /// Name used for the log files and messages (default: program file name).
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// Readiness condition (default [`Ready::Started`]).
    pub fn ready(mut self, ready: Ready) -> Self {
        self.ready = ready;
        self
    }

    /// Bound on the wait for readiness (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Start it and wait until ready; panics with its output if it is not.
    pub fn spawn(self) -> Proc {
        self.try_spawn().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Start it and wait until ready; on failure the process is gone and the error
    /// holds its output (so a test can assert that a bad config is refused).
    pub fn try_spawn(self) -> Result<Proc, Box<SpawnError>> {
        let host = self.host;
        let base = self
            .name
            .clone()
            .or_else(|| {
                self.program
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "proc".to_owned());
        let name = format!("{}-{}-{}", host.name(), base, host.lab_inner().next_seq());
        let dir = host.lab_inner().dir().to_owned();
        let stdout_path = dir.join(format!("{name}.stdout"));
        let stderr_path = dir.join(format!("{name}.stderr"));

        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", host.netns()])
            .arg(&self.program)
            .args(&self.args)
            .current_dir(self.dir.as_deref().unwrap_or(&dir))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut notify = None;
        if self.ready == Ready::Notify {
            let sock = NotifySocket::bind(&dir.join(format!("{name}.notify")));
            let sock = sock.unwrap_or_else(|e| panic!("{name}: bind notify socket: {e}"));
            cmd.env("NOTIFY_SOCKET", sock.path());
            notify = Some(sock);
        }
        let desc = describe(&cmd);
        let fail_early = |reason: String| {
            Box::new(SpawnError {
                name: name.clone(),
                cmd: desc.clone(),
                reason,
                status: None,
                stdout: String::new(),
                stderr: String::new(),
                stdout_path: stdout_path.display().to_string(),
                stderr_path: stderr_path.display().to_string(),
            })
        };
        if !self.program.is_file() && self.program.components().count() > 1 {
            return Err(fail_early(format!(
                "program {} does not exist",
                self.program.display()
            )));
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| fail_early(format!("spawn failed: {e}")))?;
        let pid = child.id();
        registry::add_pid(host.lab_inner().id(), pid);
        let capture = Capture::start(&mut child, &stdout_path, &stderr_path);
        let mut proc = Proc {
            name,
            cmd: desc,
            pid,
            child,
            status: None,
            capture,
            notify,
            stdout_path,
            stderr_path,
            host: host.clone(),
        };
        match proc.wait_ready(&self.ready, self.timeout) {
            Ok(()) => Ok(proc),
            Err(reason) => {
                let status = proc.stop_with(DROP_GRACE);
                let err = SpawnError {
                    name: proc.name.clone(),
                    cmd: proc.cmd.clone(),
                    reason,
                    status: Some(status),
                    stdout: proc.stdout(),
                    stderr: proc.stderr(),
                    stdout_path: proc.stdout_path.display().to_string(),
                    stderr_path: proc.stderr_path.display().to_string(),
                };
                Err(Box::new(err))
            }
        }
    }
}

/// A position in a process's output, to wait for lines printed after it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogCursor {
    stdout: usize,
    stderr: usize,
}

/// A running background process in a host. Dropping it stops it: SIGTERM to its
/// PID, a bounded wait, then SIGKILL.
pub struct Proc {
    name: String,
    cmd: String,
    pid: u32,
    child: Child,
    status: Option<ExitStatus>,
    capture: Arc<Capture>,
    notify: Option<NotifySocket>,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    /// Keeps the lab (and its namespaces) alive while the process runs.
    host: Host,
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

    fn wait_ready(&mut self, ready: &Ready, timeout: Duration) -> Result<(), String> {
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

/// Output of a child: two reader threads append to files and to memory and wake
/// waiters on every chunk.
#[derive(Debug)]
struct Capture {
    state: Mutex<CaptureState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct CaptureState {
    bufs: [Vec<u8>; 2],
    closed: usize,
}

impl Capture {
    fn start(child: &mut Child, out: &Path, err: &Path) -> Arc<Self> {
        let cap = Arc::new(Capture {
            state: Mutex::new(CaptureState::default()),
            changed: Condvar::new(),
        });
        let readers: [Option<Box<dyn Read + Send>>; 2] = [
            child
                .stdout
                .take()
                .map(|r| Box::new(r) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|r| Box::new(r) as Box<dyn Read + Send>),
        ];
        for (i, (reader, path)) in readers.into_iter().zip([out, err]).enumerate() {
            let mut file =
                File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
            let cap = Arc::clone(&cap);
            // Detached: a grandchild holding the pipe must not block the test; the
            // namespace teardown ends such grandchildren and so these threads.
            thread::spawn(move || {
                if let Some(mut r) = reader {
                    let mut chunk = [0u8; 8192];
                    while let Ok(n @ 1..) = r.read(&mut chunk) {
                        let _ = file.write_all(&chunk[..n]);
                        let mut s = cap.lock();
                        if s.bufs[i].len() < MEM_CAP {
                            s.bufs[i].extend_from_slice(&chunk[..n]);
                        }
                        cap.changed.notify_all();
                    }
                }
                cap.lock().closed += 1;
                cap.changed.notify_all();
            });
        }
        cap
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CaptureState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn text(&self, i: usize) -> String {
        String::from_utf8_lossy(&self.lock().bufs[i]).into_owned()
    }

    /// The first complete or partial line after `cursor` containing `needle`.
    fn find(&self, cursor: LogCursor, needle: &str) -> Option<String> {
        let s = self.lock();
        [(0, cursor.stdout), (1, cursor.stderr)]
            .into_iter()
            .find_map(|(i, from)| {
                let text = String::from_utf8_lossy(s.bufs[i].get(from..).unwrap_or_default());
                text.lines().find(|l| l.contains(needle)).map(str::to_owned)
            })
    }

    /// Block until new output arrives or `wait` passes.
    fn wait_change(&self, wait: Duration) {
        let s = self.lock();
        let _ = self.changed.wait_timeout(s, wait);
    }

    /// Block (bounded) until both pipes are closed.
    fn wait_closed(&self, wait: Duration) {
        let s = self.lock();
        let _ = self.changed.wait_timeout_while(s, wait, |s| s.closed < 2);
    }
}
