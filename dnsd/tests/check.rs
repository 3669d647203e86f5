//! `dnsd --check`: exit 0 and a summary for the example host file, exit 64 naming file:line for
//! every validation rule.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_dnsd");

#[test]
fn example_host_file_passes_check() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../etc/hosts.toml");
    let out = Command::new(BIN)
        .args(["--check", "--config", path])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("OK"), "{stdout}");
}

#[test]
fn every_rule_exits_64_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    for (i, c) in shared::checkcases::CASES.iter().enumerate() {
        let path = dir.path().join(format!("case{i}.toml"));
        std::fs::write(&path, c.text).unwrap();
        let out = Command::new(BIN)
            .arg("--check")
            .arg("-c")
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{}: {stderr}", c.rule);
        let at = format!("{}:{}:", path.display(), c.line);
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(&at) && l.contains(c.needle)),
            "{}: expected {at} ... {} in:\n{stderr}",
            c.rule,
            c.needle
        );
        assert!(stderr.contains("fix: "), "{}: no fix in {stderr}", c.rule);
    }
}

#[test]
fn missing_file_is_a_clear_error() {
    let out = Command::new(BIN)
        .args(["--check", "-c", "/nonexistent/hosts.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(66));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("/nonexistent/hosts.toml: cannot read the host file")
    );
}

#[test]
fn zone_file_conflicting_with_the_host_table_fails_check() {
    let dir = tempfile::tempdir().unwrap();
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../etc/hosts.toml")).unwrap();
    let conf = dir.path().join("hosts.toml");
    std::fs::write(
        &conf,
        example.replace(
            "update-keys = [\"dhcp-update\"]",
            "update-keys = [\"dhcp-update\"]\nzone-file = [{ path = \"samba.zone\" }]",
        ),
    )
    .unwrap();
    let zone = dir.path().join("samba.zone");
    std::fs::write(
        &zone,
        "$ORIGIN it-ishin.com.\n$TTL 3600\ndb IN A 192.168.10.99\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("--check")
        .arg("-c")
        .arg(&conf)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains("samba.zone")
            && stderr.contains("db.it-ishin.com.")
            && stderr.contains("conflicts"),
        "{stderr}"
    );
    assert!(stderr.contains("fix: "), "{stderr}");
    // The same record as the host table's is fine, and so are extra names.
    std::fs::write(
        &zone,
        "$ORIGIN it-ishin.com.\n$TTL 3600\ndb IN A 192.168.10.12\n_kerberos._udp IN SRV 0 100 88 main\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("--check")
        .arg("-c")
        .arg(&conf)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
