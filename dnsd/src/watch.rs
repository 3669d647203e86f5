//! Watches the extra zone files (a Samba-generated flat file changes behind our back) and asks
//! for a reload when one changes. The host file itself is watched by `runtime::reload`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// True for the events after which the file is whole: closed after writing, renamed into place
/// (editors, `mv`), removed. A plain write is not: the file may be half written (`cp`, a
/// truncating `write`) and the close that follows is the signal to reload.
fn complete(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Modify(ModifyKind::Name(_))
            | EventKind::Remove(_)
    )
}

/// A watcher for a set of zone files; dropping it stops watching.
#[derive(Debug)]
pub struct ZoneFileWatcher {
    files: Vec<PathBuf>,
    _w: Option<notify::RecommendedWatcher>,
}

impl ZoneFileWatcher {
    /// Watches the folders of `files`; a change to one of them sends on `tx` (coalesced).
    pub fn new(files: Vec<PathBuf>, tx: mpsc::Sender<()>) -> ZoneFileWatcher {
        if files.is_empty() {
            return ZoneFileWatcher { files, _w: None };
        }
        let names: BTreeSet<PathBuf> = files.iter().cloned().collect();
        let dirs: BTreeSet<PathBuf> = files
            .iter()
            .map(|f| {
                f.parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .map_or_else(|| PathBuf::from("."), |d| d.to_owned())
            })
            .collect();
        let handler = move |res: notify::Result<notify::Event>| {
            let Ok(ev) = res else { return };
            if complete(&ev.kind) && ev.paths.iter().any(|p| names.contains(p)) {
                // A full channel already holds a pending reload.
                let _ = tx.try_send(());
            }
        };
        let w = match notify::recommended_watcher(handler) {
            Ok(mut w) => {
                for d in &dirs {
                    if let Err(e) = w.watch(d, RecursiveMode::NonRecursive) {
                        tracing::warn!(dir = %d.display(), error = %e, "cannot watch a zone file's folder; reload it with SIGHUP");
                    }
                }
                Some(w)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch zone files; reload them with SIGHUP");
                None
            }
        };
        ZoneFileWatcher { files, _w: w }
    }

    /// The files watched.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange, RemoveKind, RenameMode};

    #[test]
    fn only_whole_files_trigger_a_reload() {
        assert!(complete(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(complete(&EventKind::Modify(ModifyKind::Name(
            RenameMode::To
        ))));
        assert!(complete(&EventKind::Remove(RemoveKind::File)));
        assert!(!complete(&EventKind::Modify(ModifyKind::Data(
            DataChange::Any
        ))));
        assert!(!complete(&EventKind::Create(CreateKind::File)));
        assert!(!complete(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
    }
}
