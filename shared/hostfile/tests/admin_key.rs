//! `admin-key-file` in `[dhcp]` and `[lb]`: the status page's admin key, read from a file beside
//! the host file at every load, its errors with file:line, and a key that never shows in `Debug`.

use std::path::{Path, PathBuf};

use hostfile::HostTable;

const KEY: &str = "Zm9yLXRoZS1zdGF0dXMtcGFnZQ";

fn host_file(dir: &Path, dhcp: &str, lb: &str) -> PathBuf {
    let text = format!("domain = \"lan.test\"\n[dhcp]\n{dhcp}\n[lb]\n{lb}\n");
    let p = dir.join("hosts.toml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn the_key_is_read_relative_to_the_host_file_and_kept_out_of_debug() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("admin.key"), format!("{KEY}\n")).unwrap();
    let p = host_file(
        dir.path(),
        "admin-key-file = \"admin.key\"",
        "admin-key-file = \"admin.key\"",
    );
    let t = HostTable::load(&p).unwrap();
    let k = t.lb_view().admin_key.unwrap();
    assert_eq!(k.secret, KEY.as_bytes());
    assert_eq!(k.file, dir.path().join("admin.key"));
    assert!(!format!("{:?}", t.lb_view()).contains(KEY));
    assert!(!serde_json::to_string(&t.lb_view()).unwrap().contains(KEY));
    assert_eq!(t.dhcp_view().admin_key.unwrap().secret, KEY.as_bytes());
    // Not set: no key, the page stays read-only.
    let p = host_file(dir.path(), "", "");
    assert_eq!(HostTable::load(&p).unwrap().lb_view().admin_key, None);
    // Read again on every load.
    std::fs::write(dir.path().join("admin.key"), "a-second-key-of-the-admin").unwrap();
    let p = host_file(dir.path(), "", "admin-key-file = \"admin.key\"");
    assert_eq!(
        HostTable::load(&p)
            .unwrap()
            .lb_view()
            .admin_key
            .unwrap()
            .secret,
        b"a-second-key-of-the-admin"
    );
}

#[test]
fn bad_key_files_are_named_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("short.key"), "short\n").unwrap();
    std::fs::write(dir.path().join("spaces.key"), "a key with spaces in it\n").unwrap();
    let p = host_file(
        dir.path(),
        "admin-key-file = \"short.key\"",
        "admin-key-file = \"nope.key\"",
    );
    let err = HostTable::load(&p).expect_err("must be rejected");
    let shown = err.to_string();
    let problems = err.problems();
    assert_eq!(problems.len(), 2, "{shown}");
    assert_eq!((problems[0].line, problems[0].column), (3, 18), "{shown}");
    assert!(
        problems[0]
            .message
            .contains("admin-key-file `short.key` holds a key shorter than 16 characters"),
        "{shown}"
    );
    assert_eq!(problems[1].line, 5, "{shown}");
    assert!(
        problems[1]
            .message
            .starts_with("admin-key-file `nope.key` cannot be read"),
        "{shown}"
    );
    assert!(problems[1].fix.contains("openssl rand"), "{shown}");
    let p = host_file(dir.path(), "admin-key-file = \"spaces.key\"", "");
    let err = HostTable::load(&p).expect_err("must be rejected");
    assert!(err.to_string().contains("holds spaces"), "{err}");
    // A misspelled key is an unknown key, as every other.
    let p = host_file(dir.path(), "admin-key = \"x\"", "");
    assert!(HostTable::load(&p).is_err());
}
