//! The command-line head every daemon shares: the host file, `--check`, logging, the state and
//! runtime folders, and the user to become when started as root.

use std::fmt;
use std::path::{Path, PathBuf};

use hostfile::DEFAULT_CONFIG;

use crate::privdrop::DEFAULT_USER;

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

/// `--user`: whom a daemon started as root becomes (flattened into each daemon's `Cli`; it reads
/// as the user name).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct UserArg {
    /// Started as root, become this user before serving (the systemd units' user), keeping only
    /// the capabilities this daemon needs. A user that does not exist stops the start; `root`
    /// keeps root, and only when asked for by name.
    #[arg(long = "user", value_name = "USER", default_value = DEFAULT_USER)]
    pub name: String,
}

impl std::ops::Deref for UserArg {
    type Target = str;
    fn deref(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for UserArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}
