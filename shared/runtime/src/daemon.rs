//! Glue every daemon binary shares: logging, `--check`, shutdown, the start of the serving loop,
//! and [`main`], the common tail of the three `main` functions.

use std::fmt;
use std::future::Future;
use std::path::Path;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use hostfile::{ConfigError, EXIT_CONFIG, HostTable};

pub use crate::cli::{CommonArgs, LogFormat, UserArg};
pub use crate::notify;
use crate::privdrop;

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
    notify::spawn_watchdog(shutdown.clone());
    Started { reload, shutdown }
}

/// The tokio runtime a daemon's async code runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// One thread (no cross-thread wake-ups per packet).
    CurrentThread,
    /// A worker per core.
    MultiThread,
}

/// Why `--check` fails beyond the host file's own rules (dnsd: a zone file it cannot merge).
#[derive(Debug, thiserror::Error)]
#[error("{problem}{}", fix_line(fix))]
pub struct CheckFailed {
    /// What is wrong.
    pub problem: Box<dyn std::error::Error + Send + Sync>,
    /// What to do about it; `None` when `problem` carries its own fix line.
    pub fix: Option<&'static str>,
}

/// `\nfix: ...`, or nothing when the problem carries its own fix line.
fn fix_line(fix: &Option<&str>) -> String {
    fix.map(|f| format!("\nfix: {f}")).unwrap_or_default()
}

/// The pieces of one daemon [`main`] puts together; `C` is its parsed command line.
#[derive(Debug)]
pub struct Daemon<C, K, D, R> {
    /// The program name, for messages.
    pub name: &'static str,
    /// The runtime [`Daemon::run`] runs on.
    pub flavour: Flavour,
    /// The flags every daemon takes.
    pub common: fn(&C) -> &CommonArgs,
    /// `--user`.
    pub user: fn(&C) -> &str,
    /// A subcommand that runs instead of the daemon (`import`, `status`, ...): its exit code, or
    /// `None` to go on.
    pub command: K,
    /// What `--check` prints for a valid host file.
    pub check: fn(&HostTable) -> Result<String, CheckFailed>,
    /// Started as root: hand over the folders and drop privileges, before the runtime's threads
    /// exist (capabilities are per thread).
    pub drop_privileges: D,
    /// The daemon itself, until it stops.
    pub run: R,
}

/// The common `main`: logging, the subcommand, `--check`, the privilege drop, the runtime, then
/// [`Daemon::run`] until it ends. Returns the process's exit code.
pub fn main<C, K, D, R, Fut, E>(cli: C, d: Daemon<C, K, D, R>) -> ExitCode
where
    K: FnOnce(&C) -> Option<ExitCode>,
    D: FnOnce(&C) -> Result<(), privdrop::Error>,
    R: FnOnce(C) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: fmt::Display,
{
    let common = (d.common)(&cli);
    init_tracing(common);
    if let Some(code) = (d.command)(&cli) {
        return code;
    }
    if common.check {
        let t = load_or_exit(&common.config);
        match (d.check)(&t) {
            Ok(summary) => {
                println!("{}: OK", common.config.display());
                print!("{summary}");
                return ExitCode::SUCCESS;
            }
            Err(e) => {
                eprintln!("{}: {e}", common.config.display());
                return ExitCode::from(EXIT_CONFIG as u8);
            }
        }
    }
    if let Err(e) = (d.drop_privileges)(&cli) {
        eprintln!(
            "{}: cannot drop privileges to {}: {e:#}",
            d.name,
            (d.user)(&cli)
        );
        return ExitCode::FAILURE;
    }
    let built = match d.flavour {
        Flavour::CurrentThread => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Flavour::MultiThread => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    };
    let rt = match built {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{}: cannot start the runtime: {e}", d.name);
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on((d.run)(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// An exit code from a command's `i32` status (as the importers and `status` return it).
pub fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(code as u8)
}
