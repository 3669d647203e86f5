//! Background processes inside a host: spawn, wait for readiness, stop by PID.
//!
//! Readiness is observed, never assumed from elapsed time: an sd_notify `READY=1`
//! datagram, a log line, or a bound port. A process that exits before it is ready
//! fails the wait with everything it printed.
//!
//! The suite's daemons started without `--user` get `--user root` (see [`Spawn::try_spawn`]).
//!
//! Output goes to `<lab dir>/<name>.stdout` / `.stderr` and to memory (for
//! [`Proc::wait_for_log`]); a [`Proc`] dropped while the test panics prints the
//! tail of both, so a failing test shows the daemon's side of the story.

mod capture;
mod running;

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::exec::describe;
use crate::lab::Host;
use crate::notify::NotifySocket;
use crate::registry;

use capture::Capture;
pub use running::{LogCursor, Proc};

/// Grace between SIGTERM and SIGKILL when a [`Proc`] is dropped.
const DROP_GRACE: Duration = Duration::from_secs(5);

/// The suite's daemons, which refuse to start as root when their user does not exist.
const DAEMONS: [&str; 3] = ["dhcpd", "dnsd", "lbd"];

/// `--user root` for one of [`DAEMONS`] started without `--user`: the tests run as root on
/// machines without the package's `lansuite` user, so they ask for root by name; a test about
/// the privilege drop passes its own `--user`.
fn daemon_user(program: &Path, args: &[OsString]) -> &'static [&'static str] {
    let daemon = program
        .file_name()
        .and_then(OsStr::to_str)
        .is_some_and(|n| DAEMONS.contains(&n));
    let named = args.iter().any(|a| {
        a.to_str()
            .is_some_and(|a| a == "--user" || a.starts_with("--user="))
    });
    if daemon && !named {
        &["--user", "root"]
    } else {
        &[]
    }
}

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
    /// holds its output (so a test can assert that a bad config is refused). `dhcpd`,
    /// `dnsd` and `lbd` without a `--user` argument are started with `--user root` first.
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
            .args(daemon_user(&self.program, &self.args))
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

/// Processes in a host (here rather than in `lab`, so that `lab` does not depend on `process`).
impl Host {
    /// A builder for a background process in this host (environment, readiness,
    /// timeout, name).
    pub fn process(&self, program: impl AsRef<Path>) -> Spawn<'_> {
        let program = program.as_ref();
        // Bare names are looked up on the PATH, also in sbin.
        let resolved = if program.components().count() == 1 {
            crate::skip::which(&program.to_string_lossy()).unwrap_or_else(|| program.to_owned())
        } else {
            program.to_owned()
        };
        Spawn::new(self, &resolved)
    }

    /// Start `args` in the background in this host (ready as soon as started).
    pub fn spawn<S: AsRef<OsStr>>(&self, args: &[S]) -> Proc {
        let (prog, rest) = args.split_first().expect("empty command");
        self.process(Path::new(prog.as_ref())).args(rest).spawn()
    }

    /// Start a daemon binary in this host and wait (at most `timeout`) until it is
    /// `ready`; panics with its output if it exits or times out first.
    ///
    /// `bin` is [`crate::bin_path`]`("dhcpd")` or `env!("CARGO_BIN_EXE_dhcpd")`.
    pub fn spawn_daemon<S: AsRef<OsStr>>(
        &self,
        bin: impl AsRef<Path>,
        args: &[S],
        ready: Ready,
        timeout: Duration,
    ) -> Proc {
        self.process(bin)
            .args(args)
            .ready(ready)
            .timeout(timeout)
            .spawn()
    }
}
