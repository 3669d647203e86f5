//! Handing the state and runtime folders to the daemon user before the drop, so they stay
//! writable after it and on the next start.
//!
//! A folder is opened by the path the administrator named (following it, as `--state-dir` or
//! systemd's `StateDirectory=` may be a link) and changed through that descriptor (`fchown`);
//! nothing inside it is followed: a daemon file is looked at and changed relative to its
//! folder's descriptor with `AT_SYMLINK_NOFOLLOW`, and a symbolic link (or a second hard link)
//! where a daemon file goes stops the start: root must not act on whatever the previous,
//! unprivileged run of the daemon planted there. A folder that belongs to anyone but root or
//! the daemon user is not taken from its owner.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};
use nix::unistd::{Gid, Uid, User};

use super::Error;

/// The user the folders go to.
#[derive(Debug, Clone)]
pub(super) struct Recipient {
    pub(super) name: String,
    pub(super) uid: u32,
    pub(super) gid: u32,
}

/// Gives `folders` and the `files` in them to `to`; see the module documentation. Files that do
/// not exist (yet) are skipped; anything doubtful is an error.
pub(super) fn hand_over_to(
    to: &Recipient,
    folders: &[PathBuf],
    files: &[PathBuf],
) -> Result<(), Error> {
    for dir in folders {
        hand_over_folder(to, dir)?;
    }
    for file in files {
        hand_over_file(to, file)?;
    }
    Ok(())
}

fn hand_over_folder(to: &Recipient, dir: &Path) -> Result<(), Error> {
    let (fd, st) = match open_folder(to, dir) {
        Err(Error::HandOver {
            source: Errno::ENOENT,
            ..
        }) => return Ok(()),
        r => r?,
    };
    if let Some(why) = shared(dir, st.st_mode) {
        tracing::warn!(path = %dir.display(), user = %to.name, "not handed over to {}: {why}; give the daemon a folder of its own", to.name);
        return Ok(());
    }
    nix::unistd::fchown(
        &fd,
        Some(Uid::from_raw(to.uid)),
        Some(Gid::from_raw(to.gid)),
    )
    .map_err(|source| handover_err(to, dir, source))?;
    tracing::debug!(path = %dir.display(), user = %to.name, "handed over");
    Ok(())
}

fn hand_over_file(to: &Recipient, file: &Path) -> Result<(), Error> {
    let Some(name) = file.file_name() else {
        return Ok(()); // `/` or `..`: no file of the daemon's
    };
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let (fd, _) = match open_folder(to, dir) {
        Err(Error::HandOver {
            source: Errno::ENOENT,
            ..
        }) => return Ok(()),
        r => r?,
    };
    let st = match nix::sys::stat::fstatat(&fd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Err(Errno::ENOENT) => return Ok(()),
        Err(source) => return Err(handover_err(to, file, source)),
        Ok(st) => st,
    };
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    if kind == SFlag::S_IFLNK {
        return Err(Error::Symlink {
            path: file.to_owned(),
        });
    }
    if kind == SFlag::S_IFREG && st.st_nlink > 1 {
        return Err(Error::HardLinked {
            path: file.to_owned(),
            links: st.st_nlink as u64,
        });
    }
    nix::unistd::fchownat(
        &fd,
        name,
        Some(Uid::from_raw(to.uid)),
        Some(Gid::from_raw(to.gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|source| handover_err(to, file, source))?;
    tracing::debug!(path = %file.display(), user = %to.name, "handed over");
    Ok(())
}

/// Opens `dir` as a folder and checks that it is root's or `to`'s.
fn open_folder(to: &Recipient, dir: &Path) -> Result<(OwnedFd, FileStat), Error> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let fd = nix::fcntl::open(dir, flags, Mode::empty())
        .map_err(|source| handover_err(to, dir, source))?;
    let st = nix::sys::stat::fstat(&fd).map_err(|source| handover_err(to, dir, source))?;
    if st.st_uid != 0 && st.st_uid != to.uid {
        let owner = User::from_uid(Uid::from_raw(st.st_uid))
            .ok()
            .flatten()
            .map_or_else(|| format!("uid {}", st.st_uid), |u| u.name);
        return Err(Error::ForeignFolder {
            path: dir.to_owned(),
            owner,
            uid: st.st_uid,
            user: to.name.clone(),
        });
    }
    Ok((fd, st))
}

fn handover_err(to: &Recipient, path: &Path, source: Errno) -> Error {
    Error::HandOver {
        path: path.to_owned(),
        user: to.name.clone(),
        source,
    }
}

/// Gives `paths` (those that exist) to `user` when running as root and about to drop to it, so
/// the files a daemon creates as root (its control socket) stay usable after the drop. A path
/// that is a folder (not a link to one) is handed over as a folder, anything else as a file in
/// its folder, with the same care as [`super::prepare`]; problems are logged, not returned.
pub fn hand_over(user: &str, paths: &[PathBuf]) {
    if !Uid::effective().is_root() || user.is_empty() || user == "root" {
        return;
    }
    let Ok(Some(u)) = User::from_name(user) else {
        return; // drop_privileges says why it does not start
    };
    let to = Recipient {
        name: u.name,
        uid: u.uid.as_raw(),
        gid: u.gid.as_raw(),
    };
    for p in paths {
        let folder = std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir());
        let done = if folder {
            hand_over_folder(&to, p)
        } else {
            hand_over_file(&to, p)
        };
        if let Err(e) = done {
            tracing::warn!(path = %p.display(), user, "not handed over: {e}");
        }
    }
}

/// Why `p` must not be given away: a folder others write to (like /tmp) or the root folder.
pub fn shared_folder(p: &Path) -> Option<&'static str> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(p).ok()?;
    if !meta.is_dir() {
        return None;
    }
    shared(p, meta.permissions().mode())
}

fn shared(p: &Path, mode: u32) -> Option<&'static str> {
    if p.parent().is_none() {
        Some("it is the root folder")
    } else if mode & 0o1000 != 0 || mode & 0o002 != 0 {
        Some("others write to it (sticky or world-writable)")
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
