//! Running a short-lived command to completion with a bounded time.
//!
//! The child is never handed to another thread: only this thread reaps it, so the
//! kill on timeout (`Child::kill`) can never hit a recycled PID. Output is read by
//! two threads into shared buffers, so a grandchild that keeps a pipe open (a
//! daemonising client) cannot block us past the deadline.

use std::ffi::OsStr;
use std::fmt;
use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Time allowed to a command run with [`crate::Host::run`] and friends.
pub const DEFAULT_RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// How long to wait for a pipe to close after the command exited.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Why a command did not produce a successful [`Output`].
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The program could not be started (or waited for).
    #[error("could not run `{cmd}`: {source}")]
    Spawn {
        /// The command line.
        cmd: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// It ran past its deadline and was killed; `output` holds what it printed.
    #[error(
        "`{cmd}` did not finish within {timeout:?} and was killed\n{}",
        show(output)
    )]
    Timeout {
        /// The command line.
        cmd: String,
        /// The deadline it missed.
        timeout: Duration,
        /// What it printed before it was killed.
        output: Output,
    },
    /// It exited unsuccessfully.
    #[error("`{cmd}` failed: {}\n{}", output.status, show(output))]
    Failed {
        /// The command line.
        cmd: String,
        /// Its status and output.
        output: Output,
    },
}

/// Render an output's streams for an error message.
pub(crate) fn show(output: &Output) -> String {
    format!(
        "--- stdout ---\n{}--- stderr ---\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A command line as text, for messages.
pub(crate) fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Run `cmd` to completion within `timeout`, feeding it `stdin` (or /dev/null).
/// Returns the output whatever the exit status; see [`check`].
pub(crate) fn run_bounded(
    mut cmd: Command,
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> Result<Output, RunError> {
    let desc = describe(&cmd);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| RunError::Spawn {
        cmd: desc.clone(),
        source,
    })?;
    if let (Some(data), Some(mut w)) = (stdin, child.stdin.take()) {
        let data = data.to_vec();
        // Dropping `w` at the end closes the child's stdin.
        thread::spawn(move || {
            let _ = w.write_all(&data);
        });
    }
    let out = Collector::start(&mut child);
    let deadline = Instant::now() + timeout;
    let status = match wait_until(&mut child, deadline) {
        Ok(Some(status)) => status,
        Ok(None) => {
            let _ = child.kill();
            let status = child.wait().map_err(|source| RunError::Spawn {
                cmd: desc.clone(),
                source,
            })?;
            return Err(RunError::Timeout {
                cmd: desc,
                timeout,
                output: out.finish(status),
            });
        }
        Err(source) => return Err(RunError::Spawn { cmd: desc, source }),
    };
    Ok(out.finish(status))
}

/// Turn a non-zero exit into [`RunError::Failed`].
pub(crate) fn check(cmd: &str, output: Output) -> Result<Output, RunError> {
    if output.status.success() {
        Ok(output)
    } else {
        Err(RunError::Failed {
            cmd: cmd.to_owned(),
            output,
        })
    }
}

/// Wait for `child` to exit until `deadline`; `Ok(None)` when it is still running.
///
/// Polls `try_wait` with a short, growing interval (1 ms up to 20 ms): exit is a
/// condition checked with a bounded total time, not a sleep standing in for it.
pub(crate) fn wait_until(
    child: &mut Child,
    deadline: Instant,
) -> std::io::Result<Option<ExitStatus>> {
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Two threads copying the child's stdout and stderr into shared buffers.
struct Collector {
    bufs: [Arc<Mutex<Vec<u8>>>; 2],
    done: std::sync::mpsc::Receiver<()>,
}

impl fmt::Debug for Collector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Collector")
    }
}

impl Collector {
    fn start(child: &mut Child) -> Self {
        let (tx, done) = std::sync::mpsc::channel();
        let bufs = [Arc::default(), Arc::default()];
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
        for (reader, buf) in readers.into_iter().zip(bufs.iter()) {
            let buf: Arc<Mutex<Vec<u8>>> = Arc::clone(buf);
            let tx = tx.clone();
            thread::spawn(move || {
                if let Some(mut r) = reader {
                    let mut chunk = [0u8; 8192];
                    while let Ok(n @ 1..) = r.read(&mut chunk) {
                        buf.lock().unwrap().extend_from_slice(&chunk[..n]);
                    }
                }
                let _ = tx.send(());
            });
        }
        Collector { bufs, done }
    }

    /// Wait (bounded) for both pipes to close, then take what was read.
    fn finish(self, status: ExitStatus) -> Output {
        let deadline = Instant::now() + DRAIN_GRACE;
        for _ in 0..2 {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.done.recv_timeout(left).is_err() {
                break;
            }
        }
        let take = |b: &Arc<Mutex<Vec<u8>>>| std::mem::take(&mut *b.lock().unwrap());
        Output {
            status,
            stdout: take(&self.bufs[0]),
            stderr: take(&self.bufs[1]),
        }
    }
}

/// A `Command` for `prog args...`.
pub(crate) fn command<S: AsRef<OsStr>>(prog: &str, args: &[S]) -> Command {
    let mut c = Command::new(prog);
    c.args(args);
    c
}
