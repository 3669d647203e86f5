//! `dhcpd --check`: exit 0 and a summary for the example host file, exit 64 naming file:line for
//! every validation rule.

const BIN: &str = env!("CARGO_BIN_EXE_dhcpd");

#[test]
fn example_host_file_passes_check() {
    hostfile::checkcases::assert_example_passes(BIN);
}

#[test]
fn every_rule_exits_64_with_its_line_and_a_missing_file_66() {
    hostfile::checkcases::assert_every_case_rejected(BIN);
}

/// `discover-backlog` out of range: exit 64, `file:line:col`, the value and the fix; a valid
/// one (0 = no limit) passes.
#[test]
fn discover_backlog_out_of_range_names_its_place_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let check = |dhcp: &str| {
        let path = hostfile::checkcases::example_with_section(dir.path(), "dhcp", dhcp);
        let out = std::process::Command::new(BIN)
            .args(["--check", "-c"])
            .arg(&path)
            .output()
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        (out, path, text)
    };
    let (out, path, text) = check("[dhcp]\nping-check = false\ndiscover-backlog = -5\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    let line = text
        .lines()
        .position(|l| l.starts_with("discover-backlog"))
        .unwrap()
        + 1;
    let at = format!("{}:{line}:20:", path.display());
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with(&at) && l.contains("discover-backlog `-5` is out of range")),
        "expected {at} in:\n{stderr}"
    );
    assert!(
        stderr.contains("fix: use a whole number from 0 to 1000000"),
        "{stderr}"
    );
    for ok in ["0", "1000"] {
        let (out, _, _) = check(&format!("[dhcp]\ndiscover-backlog = {ok}\n"));
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The keys of per-MAC and BOOTP lease bounds: a date that is not one, a length out of range and
/// a negative bound exit 64 naming the key; valid values pass.
#[test]
fn lease_bound_keys_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let check = |dhcp: &str| {
        let path = hostfile::checkcases::example_with_section(dir.path(), "dhcp", dhcp);
        std::process::Command::new(BIN)
            .args(["--check", "-c"])
            .arg(&path)
            .output()
            .unwrap()
    };
    for (bad, says) in [
        (
            "dynamic-bootp-lease-cutoff = \"next tuesday\"",
            "dynamic-bootp-lease-cutoff `next tuesday` is not a date",
        ),
        (
            "dynamic-bootp-lease-length = \"5s\"",
            "dynamic-bootp-lease-length `5s` is out of range",
        ),
        ("leases-per-mac = -1", "leases-per-mac `-1` is out of range"),
    ] {
        let out = check(&format!("[dhcp]\n{bad}\n"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{bad}: {stderr}");
        assert!(stderr.contains(says), "{bad}: {stderr}");
    }
    let out = check(
        "[dhcp]\nleases-per-mac = 0\ndynamic-bootp-lease-length = \"30d\"\ndynamic-bootp-lease-cutoff = \"2027-06-30 00:00:00\"\n",
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
