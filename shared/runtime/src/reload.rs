//! Reload: SIGHUP or a change of the host file re-reads it; a valid table replaces the old one
//! atomically, an invalid one is logged in full and the old table stays in force.
//!
//! The file's folder is watched rather than the file, so editors that save by writing a new file
//! and renaming it over the old one (vim, sed -i, ansible) are seen too.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ::notify::{RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::notify;
use hostfile::{ConfigError, HostTable};

/// How long to wait for a burst of file events to settle before reading (an editor's write,
/// rename and chmod arrive as several events).
const SETTLE: Duration = Duration::from_millis(150);

/// What caused a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// SIGHUP (systemctl reload).
    Signal,
    /// The file changed on disk.
    FileChanged,
}

/// The outcome of the reloads so far (for status, metrics and tests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadStatus {
    /// Reloads attempted.
    pub attempts: u64,
    /// Tables published after the first (0 = still the one loaded at start).
    pub generation: u64,
    /// The last rejected file's errors, cleared by the next good load.
    pub last_error: Option<String>,
}

/// What [`spawn`] hands back.
#[derive(Debug)]
pub struct Reloading<V> {
    /// Always holds the view in force.
    pub view: watch::Receiver<Arc<V>>,
    /// The outcome of the latest reload.
    pub status: watch::Receiver<ReloadStatus>,
}

/// Runs until `shutdown`: on SIGHUP or a change of `path`, loads the file, and when it is valid and
/// differs from the current table, derives the daemon's view with `derive` and publishes it.
pub fn spawn<V, F>(
    path: PathBuf,
    initial: HostTable,
    derive: F,
    shutdown: CancellationToken,
) -> Reloading<V>
where
    V: Send + Sync + 'static,
    F: Fn(&HostTable) -> V + Send + 'static,
{
    let (tx, view) = watch::channel(Arc::new(derive(&initial)));
    let (st_tx, status) = watch::channel(ReloadStatus::default());
    let (ev_tx, ev_rx) = mpsc::channel::<Trigger>(8);
    let watcher = start_watcher(&path, ev_tx);
    tokio::spawn(async move {
        // Keep the watcher alive for as long as the task runs.
        let _watcher = watcher;
        run(path, initial, derive, tx, st_tx, ev_rx, shutdown).await;
    });
    Reloading { view, status }
}

fn start_watcher(
    path: &Path,
    ev_tx: mpsc::Sender<Trigger>,
) -> Option<::notify::RecommendedWatcher> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_owned();
    let name = path.file_name().map(|n| n.to_owned());
    let handler = move |res: ::notify::Result<::notify::Event>| {
        let Ok(ev) = res else { return };
        if ev.kind.is_access() {
            return;
        }
        if ev.paths.iter().any(|p| p.file_name() == name.as_deref()) {
            // A full queue already holds a pending reload: dropping this event loses nothing.
            let _ = ev_tx.try_send(Trigger::FileChanged);
        }
    };
    match ::notify::recommended_watcher(handler) {
        Ok(mut w) => match w.watch(&dir, RecursiveMode::NonRecursive) {
            Ok(()) => Some(w),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot watch the host file's folder; reload on SIGHUP only");
                None
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch files; reload on SIGHUP only");
            None
        }
    }
}

async fn run<V, F>(
    path: PathBuf,
    mut current: HostTable,
    derive: F,
    tx: watch::Sender<Arc<V>>,
    st_tx: watch::Sender<ReloadStatus>,
    mut ev_rx: mpsc::Receiver<Trigger>,
    shutdown: CancellationToken,
) where
    F: Fn(&HostTable) -> V,
{
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP");
            None
        }
    };
    let mut generation = 0u64;
    loop {
        let trigger = tokio::select! {
            _ = shutdown.cancelled() => return,
            Some(t) = ev_rx.recv() => t,
            Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => Trigger::Signal,
        };
        if trigger == Trigger::FileChanged {
            // Let the burst settle, then drain what arrived meanwhile.
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(SETTLE) => {}
            }
        }
        while ev_rx.try_recv().is_ok() {}
        notify::reloading();
        let p = path.clone();
        let loaded = tokio::task::spawn_blocking(move || HostTable::load(&p))
            .await
            .unwrap_or_else(|e| {
                Err(ConfigError::Io {
                    path: path.clone(),
                    source: std::io::Error::other(e),
                })
            });
        let mut error = None;
        match loaded {
            Ok(t) if t == current => {
                tracing::info!(?trigger, file = %path.display(), "host file unchanged");
            }
            Ok(t) => {
                generation += 1;
                tx.send_replace(Arc::new(derive(&t)));
                current = t;
                tracing::info!(?trigger, generation, file = %path.display(), "host file reloaded");
            }
            Err(e) => {
                for line in e.to_string().lines() {
                    tracing::error!("{line}");
                }
                tracing::error!(?trigger, file = %path.display(), "host file rejected; the previous configuration stays in force");
                error = Some(e.to_string());
            }
        }
        st_tx.send_modify(|s| {
            s.attempts += 1;
            s.generation = generation;
            s.last_error = error;
        });
        notify::ready();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str =
        "domain = \"a.test\"\n[[subnet]]\nnetwork = \"10.0.0.0/24\"\n[host.x]\nip = \"10.0.0.5\"\n";

    #[tokio::test]
    async fn file_replaced_by_rename_is_reloaded_and_bad_file_keeps_old() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts.toml");
        std::fs::write(&path, GOOD).unwrap();
        let t = HostTable::load(&path).unwrap();
        let stop = CancellationToken::new();
        let Reloading {
            view: mut rx,
            mut status,
        } = spawn(path.clone(), t, |t| t.hosts.len(), stop.clone());
        assert_eq!(**rx.borrow(), 1);

        // Editor-style save: write a temp file, rename it over the original.
        let tmp = dir.path().join(".hosts.toml.swp");
        std::fs::write(&tmp, format!("{GOOD}[host.y]\nip = \"10.0.0.6\"\n")).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        tokio::time::timeout(Duration::from_secs(10), rx.changed())
            .await
            .expect("reload seen")
            .unwrap();
        assert_eq!(**rx.borrow_and_update(), 2);

        // A bad file is rejected: the view does not change.
        status.borrow_and_update();
        std::fs::write(&path, "domain = \"a.test\"\nbogus = 1\n").unwrap();
        let st = tokio::time::timeout(
            Duration::from_secs(10),
            status.wait_for(|s| s.last_error.is_some()),
        )
        .await
        .expect("rejection seen")
        .unwrap()
        .clone();
        assert!(
            st.last_error
                .unwrap()
                .contains(":2:1: unknown field `bogus`")
        );
        assert_eq!(st.generation, 1);
        assert!(
            !rx.has_changed().unwrap(),
            "a bad file must not replace the table"
        );
        assert_eq!(**rx.borrow(), 2);
        stop.cancel();
    }
}
