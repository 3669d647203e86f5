//! `dnsd --check`: exit 0 and a summary for the example host file, exit 64 naming file:line for
//! every validation rule.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_dnsd");

#[test]
fn example_host_file_passes_check() {
    hostfile::checkcases::assert_example_passes(BIN);
}

#[test]
fn every_rule_exits_64_with_its_line_and_a_missing_file_66() {
    hostfile::checkcases::assert_every_case_rejected(BIN);
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
