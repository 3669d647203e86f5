//! Dropping root after binding: a daemon started as root by hand becomes the unprivileged user
//! of the systemd units (`lansuite`) and keeps only the capabilities it names.
//!
//! Under systemd the units already start the daemons unprivileged, so [`drop_privileges`] does
//! nothing when the process is not root. As root: `PR_SET_KEEPCAPS`, then supplementary groups,
//! gid and uid (real, effective and saved), then the capability sets are cut down to the kept
//! ones (permitted, effective, inheritable and ambient, so a helper the daemon runs, such as
//! `nft` for lbd, inherits them), the bounding set loses everything else and `no_new_privs` is
//! set. Finally the result is verified for every thread from `/proc/self/task/*/status` and a
//! `setuid(0)` must fail; any doubt is an error, never a silent half-drop. A user that does not
//! exist is an error too, never a reason to stay root (as `named -u` and ISC `dhcpd -user`):
//! root only when asked for by name, `--user root`.
//!
//! Capabilities are per thread on Linux while glibc applies uid changes to all threads. So:
//! with nothing to keep, the drop may happen once threads exist (the other threads lose all their
//! capabilities with the uid change); to keep capabilities, call it while the process has one
//! thread (before building the tokio runtime), so every later thread inherits the kept set.
//!
//! Raw `capset(2)`/`prctl(2)` through `libc` rather than the `caps` crate: the four calls needed
//! are a few lines each, `libc` is already in the workspace, and the verification reads the
//! kernel's own view (`/proc`) rather than trusting either wrapper.

use std::fmt;
use std::path::PathBuf;

use nix::unistd::{Gid, Uid, User};

mod handover;
#[cfg(test)]
mod tests;

pub use handover::{hand_over, shared_folder};

/// The user the systemd units run the daemons as.
pub const DEFAULT_USER: &str = "lansuite";

/// A capability a daemon may keep after dropping root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Bind ports below 1024 (a listen address added on reload).
    NetBindService,
    /// Raw and packet sockets (ICMP probes, DHCP to clients without an address, VRRP).
    NetRaw,
    /// Interfaces, addresses, routes and nftables (lbd, and the `nft` it runs).
    NetAdmin,
}

impl Capability {
    /// The kernel's number (linux/capability.h).
    pub fn number(self) -> u32 {
        match self {
            Capability::NetBindService => 10,
            Capability::NetAdmin => 12,
            Capability::NetRaw => 13,
        }
    }

    /// The name systemd and capsh use.
    pub fn name(self) -> &'static str {
        match self {
            Capability::NetBindService => "CAP_NET_BIND_SERVICE",
            Capability::NetAdmin => "CAP_NET_ADMIN",
            Capability::NetRaw => "CAP_NET_RAW",
        }
    }
}

/// The capability bit mask of `caps` (the form `/proc/PID/status` prints in `CapEff:`).
pub fn mask(caps: &[Capability]) -> u64 {
    caps.iter().fold(0, |m, c| m | (1u64 << c.number()))
}

/// What [`drop_privileges`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dropped {
    /// The process was not root (the systemd case): nothing to do.
    NotRoot,
    /// Asked to stay root (`user` is `root`, or another name for uid 0).
    StayedRoot,
    /// Now running as this user with only the kept capabilities.
    Dropped {
        /// The user name.
        user: String,
        /// Its uid.
        uid: u32,
        /// Its primary gid.
        gid: u32,
        /// The kept capabilities (mask).
        caps: u64,
    },
}

/// Why the drop failed. The process must not go on serving: its privileges are in an unknown
/// state.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A step of the drop itself failed.
    #[error("dropping root privileges failed at {step}: {detail}")]
    Step {
        /// The call that failed (`setresuid`, `capset`, `verify`, ...).
        step: &'static str,
        /// What it said.
        detail: String,
    },
    /// Root was asked to become a user that does not exist: starting as root instead would hand
    /// every capability to the network-facing code, so the daemon does not start.
    #[error(
        "the user `{user}` does not exist: refusing to run as root; create it (adduser --system --group {user}), name another user with --user, or pass --user root to run as root"
    )]
    NoSuchUser {
        /// The name given.
        user: String,
    },
    /// Started as root with an empty `--user`.
    #[error(
        "no user given: refusing to run as root; pass --user NAME, or --user root to run as root"
    )]
    NoUser,
    /// A folder the daemon would be given belongs to a third user.
    #[error(
        "{} belongs to {owner} (uid {uid}), neither root nor {user}: refusing to hand it to {user}; fix: give the daemon a folder of its own (chown root {} or chown {user} it, or pass --state-dir/--runtime-dir)",
        path.display(),
        path.display()
    )]
    ForeignFolder {
        /// The folder.
        path: PathBuf,
        /// Its owner's name (or `uid N`).
        owner: String,
        /// Its owner's uid.
        uid: u32,
        /// The daemon user.
        user: String,
    },
    /// A symbolic link where a daemon file goes: root does not follow it.
    #[error(
        "{} is a symbolic link: refusing to follow it as root; fix: remove it (the daemon creates its own files)",
        path.display()
    )]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// A daemon file with more than one name: handing it over would hand over the other names.
    #[error(
        "{} has {links} hard links: refusing to hand it over; fix: remove it (the daemon creates its own files)",
        path.display()
    )]
    HardLinked {
        /// The file.
        path: PathBuf,
        /// How many names it has.
        links: u64,
    },
    /// A folder or file cannot be looked at or handed over.
    #[error("cannot hand {} over to {user}: {source}", path.display())]
    HandOver {
        /// The folder or file.
        path: PathBuf,
        /// The daemon user.
        user: String,
        /// What the system said.
        source: nix::errno::Errno,
    },
    /// A folder the daemon writes in cannot be created.
    #[error("cannot create {}: {source}", path.display())]
    Folder {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

fn err(step: &'static str, detail: impl fmt::Display) -> Error {
    Error::Step {
        step,
        detail: detail.to_string(),
    }
}

/// The plan for one call, decided without touching the process (tested without root).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Plan {
    Skip(Dropped),
    Drop { user: String, uid: u32, gid: u32 },
}

fn plan(
    euid: u32,
    user: &str,
    lookup: impl FnOnce(&str) -> Option<(u32, u32)>,
) -> Result<Plan, Error> {
    if euid != 0 {
        return Ok(Plan::Skip(Dropped::NotRoot));
    }
    if user == "root" {
        return Ok(Plan::Skip(Dropped::StayedRoot));
    }
    if user.is_empty() {
        return Err(Error::NoUser);
    }
    match lookup(user) {
        None => Err(Error::NoSuchUser {
            user: user.to_owned(),
        }),
        Some((0, _)) => Ok(Plan::Skip(Dropped::StayedRoot)),
        Some((uid, gid)) => Ok(Plan::Drop {
            user: user.to_owned(),
            uid,
            gid,
        }),
    }
}

/// `user`'s uid and primary gid from the user database.
fn lookup(name: &str) -> Option<(u32, u32)> {
    User::from_name(name)
        .ok()
        .flatten()
        .map(|u| (u.uid.as_raw(), u.gid.as_raw()))
}

/// Becomes `user` keeping only `keep` when running as root; see the module documentation.
pub fn drop_privileges(user: &str, keep: &[Capability]) -> Result<Dropped, Error> {
    let (user, uid, gid) = match plan(Uid::effective().as_raw(), user, lookup)? {
        Plan::Skip(d) => {
            match &d {
                Dropped::NotRoot => {
                    tracing::debug!("not running as root; privileges left as they are")
                }
                Dropped::StayedRoot => {
                    tracing::warn!("running as root: asked not to drop privileges")
                }
                Dropped::Dropped { .. } => {}
            }
            return Ok(d);
        }
        Plan::Drop { user, uid, gid } => (user, uid, gid),
    };
    let threads = thread_count();
    if !keep.is_empty() && threads > 1 {
        return Err(err(
            "start",
            format!(
                "{threads} threads exist: capabilities are per thread, so a drop that keeps {} must happen before any thread starts",
                names(keep)
            ),
        ));
    }
    let want = mask(keep);
    // Bounding set and no_new_privs first, while CAP_SETPCAP is still ours.
    drop_bounding(want)?;
    if !keep.is_empty() {
        nix::sys::prctl::set_keepcaps(true).map_err(|e| err("PR_SET_KEEPCAPS", e))?;
    }
    nix::unistd::setgroups(&[Gid::from_raw(gid)]).map_err(|e| err("setgroups", e))?;
    let g = Gid::from_raw(gid);
    nix::unistd::setresgid(g, g, g).map_err(|e| err("setresgid", e))?;
    let u = Uid::from_raw(uid);
    nix::unistd::setresuid(u, u, u).map_err(|e| err("setresuid", e))?;
    if !keep.is_empty() {
        nix::sys::prctl::set_keepcaps(false).map_err(|e| err("PR_SET_KEEPCAPS", e))?;
    }
    capset(want)?;
    for c in keep {
        // SAFETY: prctl with integer arguments only.
        let r = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                libc::c_ulong::from(c.number()),
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            )
        };
        if r != 0 {
            return Err(err("PR_CAP_AMBIENT_RAISE", std::io::Error::last_os_error()));
        }
    }
    nix::sys::prctl::set_no_new_privs().map_err(|e| err("PR_SET_NO_NEW_PRIVS", e))?;
    verify(uid, want)?;
    tracing::info!(
        user = %user,
        uid,
        gid,
        caps = %names(keep),
        "dropped root privileges"
    );
    Ok(Dropped::Dropped {
        user,
        uid,
        gid,
        caps: want,
    })
}

/// What a daemon started as root by hand does before it binds or opens anything: creates the
/// `folders` it writes in and hands them and the `files` in them that it writes to `user`, never
/// following a link inside them (see [`hand_over`]'s module). Fails when `user` does not exist
/// (see [`Error::NoSuchUser`]), when a folder belongs to a third user, or when a link or a second
/// hard link stands where a daemon file goes.
pub fn prepare(user: &str, folders: &[PathBuf], files: &[PathBuf]) -> Result<(), Error> {
    for dir in folders {
        std::fs::create_dir_all(dir).map_err(|source| Error::Folder {
            path: dir.clone(),
            source,
        })?;
    }
    match plan(Uid::effective().as_raw(), user, lookup)? {
        Plan::Drop { user, uid, gid } => handover::hand_over_to(
            &handover::Recipient {
                name: user,
                uid,
                gid,
            },
            folders,
            files,
        ),
        Plan::Skip(_) => Ok(()),
    }
}

/// [`prepare`], then becomes `user` keeping only `keep` (see [`drop_privileges`]; with
/// capabilities to keep, call it before any thread exists).
pub fn become_user(
    user: &str,
    folders: &[PathBuf],
    files: &[PathBuf],
    keep: &[Capability],
) -> Result<Dropped, Error> {
    prepare(user, folders, files)?;
    drop_privileges(user, keep)
}

fn names(caps: &[Capability]) -> String {
    if caps.is_empty() {
        return "no capabilities".to_owned();
    }
    caps.iter().map(|c| c.name()).collect::<Vec<_>>().join(",")
}

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(1, |d| d.count())
}

fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

fn drop_bounding(want: u64) -> Result<(), Error> {
    for cap in 0..=last_cap().min(63) {
        if want & (1 << cap) != 0 {
            continue;
        }
        // SAFETY: prctl with integer arguments only.
        let r = unsafe {
            libc::prctl(
                libc::PR_CAPBSET_DROP,
                libc::c_ulong::from(cap),
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            )
        };
        if r != 0 {
            let e = std::io::Error::last_os_error();
            // EINVAL: a capability this kernel does not know.
            if e.raw_os_error() != Some(libc::EINVAL) {
                return Err(err("PR_CAPBSET_DROP", e));
            }
        }
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Sets permitted = effective = inheritable = `want` for the calling thread.
fn capset(want: u64) -> Result<(), Error> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let half = |shift: u32| {
        let v = (want >> shift) as u32;
        CapData {
            effective: v,
            permitted: v,
            inheritable: v,
        }
    };
    let data = [half(0), half(32)];
    // SAFETY: header and two data structs as capset(2) with version 3 expects; both outlive the call.
    let r = unsafe { libc::syscall(libc::SYS_capset, &raw mut hdr, data.as_ptr()) };
    if r != 0 {
        return Err(err("capset", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// The `Uid:` ids and the `CapPrm`/`CapEff`/`CapAmb` masks of one `/proc/.../status` text.
fn parse_status(text: &str) -> Option<([u32; 4], [u64; 3])> {
    let mut ids = None;
    let mut caps = [None; 3];
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let hex = || u64::from_str_radix(v.trim(), 16).ok();
        match k {
            "Uid" => {
                let n: Vec<u32> = v
                    .split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect();
                ids = <[u32; 4]>::try_from(n).ok();
            }
            "CapPrm" => caps[0] = hex(),
            "CapEff" => caps[1] = hex(),
            "CapAmb" => caps[2] = hex(),
            _ => {}
        }
    }
    Some((ids?, [caps[0]?, caps[1]?, caps[2]?]))
}

/// Every thread runs as `uid` (real, effective, saved, fs) with no capability beyond `want`, and
/// root cannot be regained.
fn verify(uid: u32, want: u64) -> Result<(), Error> {
    let tasks = std::fs::read_dir("/proc/self/task").map_err(|e| err("verify", e))?;
    for t in tasks.flatten() {
        let Ok(text) = std::fs::read_to_string(t.path().join("status")) else {
            continue; // the thread ended meanwhile
        };
        let (ids, caps) = parse_status(&text)
            .ok_or_else(|| err("verify", format!("unreadable {}", t.path().display())))?;
        if ids.iter().any(|&i| i != uid) {
            return Err(err(
                "verify",
                format!("thread {:?} still has uids {ids:?}", t.file_name()),
            ));
        }
        if caps.iter().any(|&c| c & !want != 0) {
            return Err(err(
                "verify",
                format!(
                    "thread {:?} still has capabilities {caps:x?}",
                    t.file_name()
                ),
            ));
        }
    }
    if nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        return Err(err("verify", "setuid(0) succeeded after the drop"));
    }
    Ok(())
}
