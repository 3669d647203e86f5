//! Drained at run time: `lbd drain BACKEND` / `lbd undrain BACKEND` (or `SERVICE/BACKEND` for
//! one service), over the control socket and from the status page's admin actions.
//!
//! A drained backend is carried with weight 0 (the host file's own way to drain): no new
//! connections or flows go to it, established ones finish (the nftables plane keeps their
//! conntrack entries, the proxy its open connections). The set survives a reload of the host
//! file (it is not part of it) and a restart: it is kept in a small file in the state folder
//! (`drained`, one entry per line), written atomically (temporary file, fsync, rename, fsync of
//! the folder). Entries naming a backend the host file no longer has are kept (harmless, shown
//! by `lbd status`) until undrained.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hostfile::LbView;
use serde_json::{Value, json};
use tokio::sync::watch;

/// The file's name in the state folder.
pub const FILE: &str = "/var/lib/lbd/drained";
/// How long a command waits for the daemon to apply the change.
const APPLY_WAIT: Duration = Duration::from_secs(3);
/// Entries kept at most (a file is not a database).
const MAX_ENTRIES: usize = 4096;

/// Why the drained set could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    /// Reading or writing the file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

/// The backends drained at run time: `NAME` (in every service) or `SERVICE/NAME`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drains {
    entries: BTreeSet<String>,
    /// Bumped by every change, so a command can wait until the daemon applied it.
    pub generation: u64,
}

impl Drains {
    /// The entries, sorted.
    pub fn entries(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(String::as_str)
    }

    /// `self` with `entry` added (for tests and callers building a set by hand).
    pub fn with(mut self, entry: &str) -> Self {
        self.entries.insert(entry.to_owned());
        self
    }

    /// The entry draining `backend` in `service`, if one does.
    pub fn entry_for(&self, service: &str, backend: &str) -> Option<&str> {
        [format!("{service}/{backend}"), backend.to_owned()]
            .into_iter()
            .find_map(|e| self.entries.get(&e).map(String::as_str))
    }

    /// `view` with every drained backend's weight set to 0 (what the daemon carries).
    pub fn apply(&self, view: &LbView) -> LbView {
        let mut v = view.clone();
        if self.entries.is_empty() {
            return v;
        }
        for s in &mut v.services {
            for b in &mut s.backends {
                if self.entry_for(&s.name, &b.name).is_some() {
                    b.weight = 0;
                }
            }
        }
        v
    }

    /// Reads the file at `path`; none there means nothing drained.
    pub fn load(path: &Path) -> Result<Drains, DrainError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(DrainError::Io {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let entries = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#') && well_formed(l))
            .take(MAX_ENTRIES)
            .map(str::to_owned)
            .collect();
        Ok(Drains {
            entries,
            generation: 0,
        })
    }

    /// Writes the set to `path` atomically: a temporary file beside it, fsync, rename, fsync of
    /// the folder (created when missing).
    pub fn save(&self, path: &Path) -> Result<(), DrainError> {
        let io = |source| DrainError::Io {
            path: path.to_owned(),
            source,
        };
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        let mut text = String::from(
            "# Backends drained by `lbd drain` (weight 0 in effect); `lbd undrain NAME` undoes.\n",
        );
        for e in &self.entries {
            text.push_str(e);
            text.push('\n');
        }
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(io)?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)
    }
}

/// A name or `SERVICE/NAME` of letters, digits, `-`, `_`, `.`.
fn well_formed(e: &str) -> bool {
    let ok = |p: &str| {
        !p.is_empty()
            && p.len() <= 253
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    match e.split_once('/') {
        Some((s, b)) => ok(s) && ok(b),
        None => ok(e),
    }
}

/// What `drain TARGET` would drain in `view` (the services carrying it), or why not.
fn carried(view: &LbView, target: &str) -> Result<Vec<String>, String> {
    let (svc, name) = match target.split_once('/') {
        Some((s, b)) => (Some(s), b),
        None => (None, target),
    };
    let hits: Vec<String> = view
        .services
        .iter()
        .filter(|s| svc.is_none_or(|want| s.name == want))
        .filter(|s| s.backends.iter().any(|b| b.name == name))
        .map(|s| s.name.clone())
        .collect();
    if hits.is_empty() {
        let known: BTreeSet<String> = view
            .services
            .iter()
            .flat_map(|s| {
                s.backends
                    .iter()
                    .map(move |b| format!("{}/{}", s.name, b.name))
            })
            .collect();
        let known: Vec<String> = known.into_iter().collect();
        return Err(format!(
            "no backend `{target}` in the host file; backends: {}",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ));
    }
    Ok(hits)
}

/// The control socket's side of the drained set: shared by the handler and the daemon loop.
#[derive(Debug, Clone)]
pub struct Control {
    tx: Arc<watch::Sender<Drains>>,
    applied: watch::Receiver<u64>,
    file: Option<PathBuf>,
    lock: Arc<Mutex<()>>,
}

impl Control {
    /// The control for `drains` (persisted at `file`, when given); returns it, the receiver the
    /// daemon loop follows, and the sender the loop reports each applied generation on.
    pub fn new(
        drains: Drains,
        file: Option<PathBuf>,
    ) -> (Control, watch::Receiver<Drains>, watch::Sender<u64>) {
        let (tx, rx) = watch::channel(drains);
        let (applied_tx, applied) = watch::channel(0);
        let c = Control {
            tx: Arc::new(tx),
            applied,
            file,
            lock: Arc::default(),
        };
        (c, rx, applied_tx)
    }

    /// [`Control::new`] with the set read from `file` (none drained when it cannot be read,
    /// after saying why), logging what it holds.
    pub fn start(file: Option<PathBuf>) -> (Control, watch::Receiver<Drains>, watch::Sender<u64>) {
        let drains = match &file {
            Some(f) => Drains::load(f).unwrap_or_else(|e| {
                tracing::error!(error = %e, "drained backends not read: none drained");
                Drains::default()
            }),
            None => Drains::default(),
        };
        if drains.entries().next().is_some() {
            let d: Vec<&str> = drains.entries().collect();
            tracing::info!(drained = %d.join(","), "backends drained by lbd drain (kept from before)");
        }
        Control::new(drains, file)
    }

    /// The set in force.
    pub fn current(&self) -> Drains {
        self.tx.borrow().clone()
    }

    /// `drain TARGET` / `undrain TARGET` against `view` (on a blocking thread: it writes the
    /// file and waits, bounded, until the daemon applied the change). Answers as the control
    /// socket does: `{"text": …}` or `{"error": …}`.
    pub fn command(&self, view: &LbView, args: &[&str]) -> Value {
        let (Some(&cmd), Some(&target), None) = (args.first(), args.get(1), args.get(2)) else {
            return json!({ "error": "usage: drain|undrain BACKEND (or SERVICE/BACKEND)" });
        };
        if !well_formed(target) {
            return json!({ "error": format!("`{target}` is not a backend name or SERVICE/BACKEND") });
        }
        let _one = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = self.current();
        let text = match cmd {
            "drain" => {
                let services = match carried(view, target) {
                    Ok(s) => s,
                    Err(e) => return json!({ "error": e }),
                };
                if next.entries.len() >= MAX_ENTRIES {
                    return json!({ "error": "too many drained entries; undrain some first" });
                }
                if !next.entries.insert(target.to_owned()) {
                    return json!({ "text": format!("{target} was already drained") });
                }
                format!(
                    "drained {target} (in {}): no new connections, established ones finish",
                    services.join(", ")
                )
            }
            "undrain" => {
                if !next.entries.remove(target) {
                    let listed: Vec<&str> = next.entries().collect();
                    return json!({ "error": format!(
                        "{target} is not drained by lbd drain (drained: {})",
                        if listed.is_empty() { "none".to_owned() } else { listed.join(", ") }
                    ) });
                }
                format!("undrained {target}")
            }
            other => return json!({ "error": format!("unknown command `{other}`") }),
        };
        next.generation += 1;
        let generation = next.generation;
        let kept = match &self.file {
            Some(f) => next.save(f).err(),
            None => None,
        };
        self.tx.send_replace(next);
        let mut applied = self.applied.clone();
        let waited = tokio::runtime::Handle::try_current().map(|h| {
            h.block_on(async {
                tokio::time::timeout(APPLY_WAIT, applied.wait_for(|g| *g >= generation)).await
            })
        });
        let mut text = text;
        if !matches!(waited, Ok(Ok(Ok(_)))) {
            text.push_str(" (not yet applied: see lbd status)");
        }
        match kept {
            None => json!({ "text": text }),
            Some(e) => {
                tracing::error!(error = %e, "drained set not saved: it will not survive a restart");
                json!({ "text": format!("{text}; NOT kept across a restart: {e}") })
            }
        }
    }
}

#[cfg(test)]
mod tests;
