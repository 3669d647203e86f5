//! Handing over as root never follows a symbolic link inside the daemon's folders and never takes
//! a folder from a third user. The tests that chown need root (they skip otherwise) and only
//! change files in their own temporary folders, in this process, without dropping anything.

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

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use nix::unistd::{Uid, User};

use crate::privdrop::prepare;

/// `nobody`'s uid, when this test runs as root (the hand-over only happens as root).
fn as_root() -> Option<u32> {
    if !Uid::effective().is_root() {
        return None;
    }
    Some(User::from_name("nobody").unwrap().unwrap().uid.as_raw())
}

fn uid(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().uid()
}

/// A 0750 folder owned by root inside a fresh temporary folder.
fn folder(tmp: &tempfile::TempDir) -> PathBuf {
    let d = tmp.path().join("state");
    std::fs::create_dir(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o750)).unwrap();
    d
}

#[test]
fn the_folder_and_its_files_are_handed_over() {
    let Some(nobody) = as_root() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let d = folder(&tmp);
    let db = d.join("leases.redb");
    std::fs::write(&db, b"").unwrap();
    prepare(
        "nobody",
        std::slice::from_ref(&d),
        &[db.clone(), d.join("absent.sock")],
    )
    .unwrap();
    assert_eq!(uid(&d), nobody);
    assert_eq!(uid(&db), nobody);
}

#[test]
fn a_symlink_to_a_root_file_is_not_followed() {
    let Some(_) = as_root() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let d = folder(&tmp);
    // A root-owned 0600 secret outside the folder, and the daemon user's planted link to it.
    let secret = tmp.path().join("secret");
    std::fs::write(&secret, b"root only").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let sock = d.join("control.sock");
    std::os::unix::fs::symlink(&secret, &sock).unwrap();
    let e = prepare(
        "nobody",
        std::slice::from_ref(&d),
        std::slice::from_ref(&sock),
    )
    .expect_err("a symlink where the daemon's file goes stops the start");
    assert_eq!(uid(&secret), 0, "the link's target stays root's");
    let text = e.to_string();
    assert!(
        text.contains(&*sock.to_string_lossy()) && text.contains("symbolic link"),
        "{text}"
    );
}

#[test]
fn a_dangling_symlink_creates_nothing() {
    let Some(_) = as_root() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let d = folder(&tmp);
    let target = tmp.path().join("planted");
    let store = d.join("dnsd.redb");
    std::os::unix::fs::symlink(&target, &store).unwrap();
    assert!(
        prepare(
            "nobody",
            std::slice::from_ref(&d),
            std::slice::from_ref(&store)
        )
        .is_err()
    );
    assert!(!target.exists(), "nothing created where the link points");
}

#[test]
fn a_folder_of_a_third_user_is_refused() {
    let Some(nobody) = as_root() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let d = folder(&tmp);
    let other = nobody - 1;
    nix::unistd::chown(&d, Some(Uid::from_raw(other)), None).unwrap();
    let e = prepare("nobody", std::slice::from_ref(&d), &[d.join("leases.redb")])
        .expect_err("a folder someone else owns is not taken from them");
    assert_eq!(uid(&d), other, "left as it was");
    let text = e.to_string();
    assert!(text.contains(&*d.to_string_lossy()), "{text}");
    assert!(
        text.contains(&format!("uid {other}")) && text.contains("fix:"),
        "{text}"
    );
}

#[test]
fn a_file_in_a_folder_of_a_third_user_is_refused() {
    let Some(nobody) = as_root() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let d = folder(&tmp);
    let db = d.join("leases.redb");
    std::fs::write(&db, b"").unwrap();
    nix::unistd::chown(&d, Some(Uid::from_raw(nobody - 1)), None).unwrap();
    assert!(prepare("nobody", &[], std::slice::from_ref(&db)).is_err());
    assert_eq!(uid(&db), 0);
}
