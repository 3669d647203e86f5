//! Handing the state and runtime folders to the daemon user before the drop, so they stay
//! writable after it and on the next start.

/// Gives `paths` (those that exist) to `user` when running as root and about to drop to it, so
/// the state and runtime folders stay writable after the drop and on the next start.
pub fn hand_over(user: &str, paths: &[std::path::PathBuf]) {
    if !nix::unistd::Uid::effective().is_root() || user.is_empty() || user == "root" {
        return;
    }
    let Ok(Some(u)) = nix::unistd::User::from_name(user) else {
        return; // drop_privileges says why it keeps root
    };
    for p in paths {
        if let Some(why) = shared_folder(p) {
            tracing::warn!(path = %p.display(), user, "not handed over to {user}: {why}; give the daemon a folder of its own");
            continue;
        }
        match nix::unistd::chown(p, Some(u.uid), Some(u.gid)) {
            Ok(()) => tracing::debug!(path = %p.display(), user, "handed over"),
            Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => {
                tracing::warn!(path = %p.display(), user, error = %e, "cannot hand over to {user}")
            }
        }
    }
}

/// Why `p` must not be given away: a folder others write to (like /tmp) or the root folder.
pub fn shared_folder(p: &std::path::Path) -> Option<&'static str> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(p).ok()?;
    if !meta.is_dir() {
        return None;
    }
    let mode = meta.permissions().mode();
    if p.parent().is_none() {
        Some("it is the root folder")
    } else if mode & 0o1000 != 0 || mode & 0o002 != 0 {
        Some("others write to it (sticky or world-writable)")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn shared_folders_are_never_given_away() {
        let d = tempfile::tempdir().unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o750)).unwrap();
        assert_eq!(shared_folder(d.path()), None);
        let f = d.path().join("store.redb");
        std::fs::write(&f, b"").unwrap();
        assert_eq!(shared_folder(&f), None);
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(shared_folder(d.path()).is_some());
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o757)).unwrap();
        assert!(shared_folder(d.path()).is_some());
        assert!(shared_folder(std::path::Path::new("/")).is_some());
        assert!(shared_folder(std::path::Path::new("/tmp")).is_some());
    }
}
