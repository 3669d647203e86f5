//! Glue every daemon binary shares: common CLI flags, logging, `--check`, readiness and shutdown.

use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use hostfile::{ConfigError, DEFAULT_CONFIG, EXIT_CONFIG, HostTable};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Flags every daemon takes.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// The host file.
    #[arg(long, short = 'c', value_name = "PATH", default_value = DEFAULT_CONFIG, global = true)]
    pub config: PathBuf,
    /// Validate the host file, print a summary of this daemon's view and exit (64 when invalid).
    #[arg(long)]
    pub check: bool,
    /// Log format.
    #[arg(long, value_enum, default_value = "text", global = true)]
    pub log_format: LogFormat,
    /// Log filter (tracing `EnvFilter` syntax); RUST_LOG is used when this is not given.
    #[arg(long, value_name = "FILTER", global = true)]
    pub log: Option<String>,
    /// Keep persistent state (lease and update stores) in this folder instead of the paths in the
    /// host file; systemd's StateDirectory= sets it.
    #[arg(long, value_name = "DIR", env = "STATE_DIRECTORY", global = true)]
    pub state_dir: Option<PathBuf>,
    /// Put the control socket in this folder; systemd's RuntimeDirectory= sets it.
    #[arg(long, value_name = "DIR", env = "RUNTIME_DIRECTORY", global = true)]
    pub runtime_dir: Option<PathBuf>,
}

impl CommonArgs {
    /// `path` moved into the state folder when one is given.
    pub fn state_path(&self, path: &Path) -> PathBuf {
        relocate(path, self.state_dir.as_deref())
    }
    /// `path` moved into the runtime folder when one is given, else into the state folder when
    /// that is given (so `--state-dir DIR` alone keeps everything of one instance in DIR, and the
    /// commands that ask a running daemon find its socket there).
    pub fn runtime_path(&self, path: &Path) -> PathBuf {
        relocate(
            path,
            self.runtime_dir.as_deref().or(self.state_dir.as_deref()),
        )
    }
}

fn relocate(path: &Path, dir: Option<&Path>) -> PathBuf {
    match (dir, path.file_name()) {
        // systemd may pass several folders separated by ':'; the first is ours.
        (Some(d), Some(name)) => {
            let first = d
                .to_str()
                .and_then(|s| s.split(':').next())
                .map_or(d.to_owned(), PathBuf::from);
            first.join(name)
        }
        _ => path.to_owned(),
    }
}

/// Sets up `tracing` to stderr (journald takes stderr under systemd).
pub fn init_tracing(args: &CommonArgs) {
    use tracing_subscriber::EnvFilter;
    let filter = match &args.log {
        Some(f) => EnvFilter::try_new(f).unwrap_or_else(|_| EnvFilter::new("info")),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match args.log_format {
        LogFormat::Json => b.json().flatten_event(true).try_init(),
        LogFormat::Text => b.with_ansi(false).try_init(),
    };
}

/// Loads the host file or prints every problem and exits with [`EXIT_CONFIG`].
pub fn load_or_exit(path: &Path) -> HostTable {
    match HostTable::load(path) {
        Ok(t) => t,
        Err(e) => exit_config(&e),
    }
}

/// Prints a config error to stderr and exits 64 (66 when the file cannot be read at all, as
/// sysexits' EX_NOINPUT).
pub fn exit_config(e: &ConfigError) -> ! {
    eprintln!("{e}");
    match e {
        ConfigError::Io { .. } => {
            eprintln!("fix: pass the host file with --config PATH");
            std::process::exit(66)
        }
        ConfigError::Invalid { problems, .. } => {
            eprintln!("{} problem(s); nothing was started", problems.len());
            std::process::exit(EXIT_CONFIG)
        }
    }
}

/// `--check`: load, print its warnings (stderr) and `summary` of the table, exit 0; or print all
/// errors and exit 64.
pub fn check_and_exit(path: &Path, summary: impl FnOnce(&HostTable) -> String) -> ! {
    let t = load_or_exit(path);
    for w in t.warnings() {
        eprintln!("{w}");
    }
    println!("{}: OK", path.display());
    print!("{}", summary(&t));
    std::process::exit(0)
}

/// A token cancelled on the first SIGTERM or SIGINT. A second signal exits at once.
pub fn shutdown_token() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot install signal handlers");
            return;
        };
        for round in 0..2 {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            if round == 0 {
                tracing::info!(signal = name, "shutting down");
                notify::stopping();
                t.cancel();
            } else {
                tracing::warn!(signal = name, "second signal: exiting now");
                std::process::exit(1);
            }
        }
    });
    token
}

/// systemd notifications; each is a no-op without `NOTIFY_SOCKET`. They are sent without
/// blocking: when nobody drains the socket (a test harness, a busy systemd) and its queue is full,
/// a message is dropped rather than stalling reload or shutdown.
pub mod notify {
    use std::os::linux::net::SocketAddrExt as _;
    use std::os::unix::ffi::OsStrExt as _;
    use std::os::unix::net::{SocketAddr, UnixDatagram};

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
}

/// Sends WATCHDOG=1 at half the interval systemd asked for, until `shutdown`.
pub fn spawn_watchdog(shutdown: CancellationToken) {
    let Some(every) = notify::watchdog_interval() else {
        return;
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every / 2);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => notify::watchdog(),
            }
        }
    });
}

/// What a daemon gets once its host file is loaded and watched.
#[derive(Debug)]
pub struct Started<V> {
    /// The view in force and reload outcomes.
    pub reload: crate::reload::Reloading<V>,
    /// Cancelled on SIGTERM/SIGINT.
    pub shutdown: CancellationToken,
}

/// Loads the host file (exiting 64 on errors), installs signal handling, starts the reloader that
/// derives this daemon's view with `derive`, and logs `summary` of the view. Call inside a tokio
/// runtime; send [`notify::ready`] once sockets are bound.
pub fn start<V, F>(
    args: &CommonArgs,
    daemon: &str,
    derive: F,
    summary: impl Fn(&V) -> String,
) -> Started<V>
where
    V: Send + Sync + 'static,
    F: Fn(&HostTable) -> V + Send + 'static,
{
    let table = load_or_exit(&args.config);
    let shutdown = shutdown_token();
    let reload = crate::reload::spawn(args.config.clone(), table, derive, shutdown.clone());
    let view = reload.view.borrow().clone();
    for line in summary(&view).lines() {
        tracing::info!(daemon, config = %args.config.display(), "{line}");
    }
    spawn_watchdog(shutdown.clone());
    Started { reload, shutdown }
}
