//! The systemd units in etc/: valid for `systemd-analyze verify`, and rated well by
//! `systemd-analyze security`. The daemons' paths are swapped for /bin/true, since the units name
//! the installed binaries (/usr/sbin) that a build machine does not have.

use std::path::PathBuf;
use std::process::Command;

fn have_systemd_analyze() -> bool {
    let ok = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "systemd-analyze is missing in CI: scripts/install-test-deps installs it"
        );
        eprintln!("SKIPPED: systemd-analyze not installed");
    }
    ok
}

fn units() -> (tempfile::TempDir, Vec<PathBuf>) {
    let etc = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../etc");
    let dir = tempfile::tempdir().unwrap();
    let mut out = Vec::new();
    for d in ["dhcpd", "dnsd", "lbd"] {
        let text = std::fs::read_to_string(etc.join(format!("{d}.service"))).unwrap();
        assert!(text.contains("Type=notify"), "{d}: not Type=notify");
        assert!(
            text.contains("ExecReload=/bin/kill -HUP $MAINPID"),
            "{d}: reload is not SIGHUP"
        );
        assert!(
            text.contains(&format!("StateDirectory={d}")),
            "{d}: no StateDirectory"
        );
        assert!(
            text.contains("User=lansuite"),
            "{d}: not an unprivileged user"
        );
        let p = dir.path().join(format!("{d}.service"));
        std::fs::write(&p, text.replace(&format!("/usr/sbin/{d} "), "/bin/true ")).unwrap();
        out.push(p);
    }
    (dir, out)
}

#[test]
fn units_verify() {
    if !have_systemd_analyze() {
        return;
    }
    let (_dir, units) = units();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&units)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.trim().is_empty(),
        "systemd-analyze verify: {err}"
    );
}

#[test]
fn units_are_hardened() {
    if !have_systemd_analyze() {
        return;
    }
    let (_dir, units) = units();
    for u in units {
        let out = Command::new("systemd-analyze")
            .args(["security", "--offline=true"])
            .arg(&u)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let level = text
            .lines()
            .find_map(|l| l.split("Overall exposure level for ").nth(1))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse::<f32>().ok())
            .unwrap_or_else(|| panic!("no exposure level in: {text}"));
        assert!(level <= 3.0, "{}: exposure {level} > 3.0", u.display());
    }
}
