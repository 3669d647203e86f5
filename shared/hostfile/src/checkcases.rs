//! Host files that break one validation rule each, with the line the error must name.
//!
//! Used by this crate's unit tests and by every daemon's `--check` integration test, so each rule
//! is proven both in the library and at the command line (exit 64, `file:line:`).

/// One broken host file.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// Which rule it breaks.
    pub rule: &'static str,
    /// The file.
    pub text: &'static str,
    /// The line the first error must point at.
    pub line: usize,
    /// A substring the error must contain.
    pub needle: &'static str,
}

const BASE: &str = r#"domain = "lan.test"
[[subnet]]
network = "10.1.0.0/24"
[[subnet.pool]]
range = "10.1.0.100-10.1.0.200"
"#;

macro_rules! case {
    ($rule:expr, $extra:expr, $line:expr, $needle:expr) => {
        Case {
            rule: $rule,
            text: concat!(
                r#"domain = "lan.test"
[[subnet]]
network = "10.1.0.0/24"
[[subnet.pool]]
range = "10.1.0.100-10.1.0.200"
"#,
                $extra
            ),
            line: $line,
            needle: $needle,
        }
    };
}

/// The valid base all cases extend (5 lines).
pub fn base() -> &'static str {
    BASE
}

/// Every rule, one case each.
pub const CASES: &[Case] = &[
    case!(
        "unknown key",
        "[host.a]\nip = \"10.1.0.5\"\nmacc = \"02:00:00:00:00:01\"\n",
        8,
        "unknown field `macc`"
    ),
    case!(
        "unknown key in a subnet",
        "authoritativ = true\n",
        6,
        "unknown field `authoritativ`"
    ),
    case!(
        "duplicate host name",
        "[host.a]\nip = \"10.1.0.5\"\n[host.a]\nip = \"10.1.0.6\"\n",
        8,
        "duplicate key"
    ),
    case!(
        "duplicate address",
        "[host.a]\nip = \"10.1.0.5\"\n[host.b]\nip = \"10.1.0.5\"\n",
        9,
        "already used by host a"
    ),
    case!(
        "duplicate MAC",
        "[host.a]\nip = \"10.1.0.5\"\nmac = \"02:00:00:00:00:01\"\n[host.b]\nip = \"10.1.0.6\"\nmac = \"02:00:00:00:00:01\"\n",
        11,
        "MAC `02:00:00:00:00:01` is already used"
    ),
    case!(
        "reservation inside a dynamic range",
        "[host.a]\nip = \"10.1.0.150\"\nmac = \"02:00:00:00:00:01\"\n",
        7,
        "inside the dynamic range 10.1.0.100-10.1.0.200"
    ),
    case!(
        "address outside every subnet",
        "[host.a]\nip = \"10.9.0.5\"\n",
        7,
        "outside every subnet"
    ),
    case!(
        "range outside its subnet",
        "[[subnet.pool]]\nrange = \"10.1.0.250-10.1.1.10\"\n",
        7,
        "is not inside subnet 10.1.0.0/24"
    ),
    case!(
        "overlapping ranges",
        "[[subnet.pool]]\nrange = \"10.1.0.200-10.1.0.210\"\n",
        7,
        "overlaps range `10.1.0.100-10.1.0.200`"
    ),
    case!(
        "overlapping subnets",
        "[[subnet]]\nnetwork = \"10.1.0.0/16\"\n",
        7,
        "overlaps subnet `10.1.0.0/24`"
    ),
    case!(
        "backend naming an unknown host",
        "[host.web1]\nip = \"10.1.0.10\"\n[service.www]\nvip = \"10.1.0.80\"\nport = 80\nbackends = [\"web1\", \"web9\"]\n",
        11,
        "backend `web9` is not a host"
    ),
    case!(
        "VIP on no subnet",
        "[host.web1]\nip = \"10.1.0.10\"\n[service.www]\nvip = \"10.7.0.80\"\nport = 80\nbackends = [\"web1\"]\n",
        9,
        "vip `10.7.0.80` is not on any subnet"
    ),
    case!(
        "invalid DNS label",
        "[host.\"web_1\"]\nip = \"10.1.0.10\"\n",
        6,
        "`web_1` is not a valid DNS label"
    ),
    case!(
        "invalid alias",
        "[host.web1]\nip = \"10.1.0.10\"\naliases = [\"-bad\"]\n",
        8,
        "`-bad` is not a valid DNS label"
    ),
    case!(
        "zero duration",
        "[dhcp]\ndecline-probation = \"0s\"\n",
        7,
        "decline-probation `0s` is out of range"
    ),
    case!(
        "absurd duration",
        "[dhcp]\nping-timeout = \"3days\"\n",
        7,
        "ping-timeout `3days` is out of range"
    ),
    case!(
        "not a duration",
        "[dns]\nrefresh = \"soon\"\n",
        7,
        "refresh `soon` is not a duration"
    ),
    case!(
        "network with host bits",
        "[[subnet]]\nnetwork = \"10.2.0.7/24\"\n",
        7,
        "has host bits set"
    ),
    case!(
        "bad MAC",
        "[host.a]\nip = \"10.1.0.5\"\nmac = \"02:00:00:00:00\"\n",
        8,
        "is not a hardware address"
    ),
    case!(
        "unknown key reference",
        "[dns]\nupdate-keys = [\"nope\"]\n",
        7,
        "key `nope` is not defined"
    ),
    case!(
        "alias clashing with a host",
        "[host.a]\nip = \"10.1.0.5\"\n[host.b]\nip = \"10.1.0.6\"\naliases = [\"a\"]\n",
        10,
        "alias `a` is already used by host a"
    ),
    case!(
        "IPv6 range outside its subnet",
        "[[subnet]]\nnetwork = \"fd00:10::/64\"\n[[subnet.pool]]\nrange = \"fd00:10::1000-fd00:10::1fff\"\n[[subnet.pool]]\nrange = \"fd00:11::1-fd00:11::9\"\n",
        11,
        "is not inside subnet fd00:10::/64"
    ),
    case!(
        "overlapping IPv6 ranges",
        "[[subnet]]\nnetwork = \"fd00:10::/64\"\n[[subnet.pool]]\nrange = \"fd00:10::1000-fd00:10::1fff\"\n[[subnet.pool]]\nrange = \"fd00:10::1fff-fd00:10::2fff\"\n",
        11,
        "overlaps range `fd00:10::1000-fd00:10::1fff`"
    ),
    case!(
        "delegated length not longer than the pd-pool prefix",
        "[[subnet]]\nnetwork = \"fd00:10::/64\"\n[[subnet.pd-pool]]\nprefix = \"fd00:1000::/48\"\ndelegated-length = 48\n",
        10,
        "delegated-length `48` is not longer than the pd-pool prefix fd00:1000::/48"
    ),
    case!(
        "T1 longer than T2",
        "[[subnet]]\nnetwork = \"fd00:10::/64\"\nt1 = \"50m\"\nt2 = \"40m\"\n",
        8,
        "t1 `50m` is longer than t2 (40m)"
    ),
    case!(
        "preferred lifetime longer than valid",
        "[[subnet]]\nnetwork = \"fd00:10::/64\"\npreferred-lifetime = \"2h\"\nvalid-lifetime = \"1h\"\n",
        8,
        "preferred-lifetime `2h` is longer than valid-lifetime (1h)"
    ),
    case!(
        "IPv6 reservation inside a dynamic range",
        "[[subnet]]\nnetwork = \"fd00:10::/64\"\n[[subnet.pool]]\nrange = \"fd00:10::1000-fd00:10::1fff\"\n[host.a]\nip = \"10.1.0.5\"\nipv6 = \"fd00:10::1010\"\nduid = \"00:03:00:01:02:00:00:00:00:01\"\n",
        12,
        "reserved address `fd00:10::1010` of host `a` is inside the dynamic range"
    ),
    case!(
        "duplicate DUID",
        "[[subnet]]\nnetwork = \"fd00:10::/64\"\n[host.a]\nip = \"10.1.0.5\"\nipv6 = \"fd00:10::5\"\nduid = \"00:03:00:01:02:00:00:00:00:01\"\n[host.b]\nip = \"10.1.0.6\"\nipv6 = \"fd00:10::6\"\nduid = \"00:03:00:01:02:00:00:00:00:01\"\n",
        15,
        "DUID `00:03:00:01:02:00:00:00:00:01` is already used by host a"
    ),
    case!(
        "bad DUID",
        "[[subnet]]\nnetwork = \"fd00:10::/64\"\n[host.a]\nip = \"10.1.0.5\"\nipv6 = \"fd00:10::5\"\nduid = \"0:3:0:1\"\n",
        11,
        "duid `0:3:0:1` is not a DUID"
    ),
    case!(
        "IPv4 key on an IPv6 subnet",
        "[[subnet]]\nnetwork = \"fd00:10::/64\"\nrouters = [\"fd00:10::1\"]\n",
        8,
        "`routers` is a DHCPv4 key but subnet fd00:10::/64 is IPv6"
    ),
    case!(
        "IPv6 key on an IPv4 subnet",
        "[[subnet]]\nnetwork = \"10.2.0.0/24\"\nt1 = \"10m\"\n",
        8,
        "`t1` is a DHCPv6 key but subnet 10.2.0.0/24 is IPv4"
    ),
    case!(
        "[lb.vrrp] peer of the other family than its service VIPs",
        "[[subnet]]\nnetwork = \"fd00:1::/64\"\nra = false\n[host.web1]\nip = \"10.1.0.10\"\nipv6 = \"fd00:1::10\"\n[service.www6]\nvip = \"fd00:1::120\"\nport = 80\nbackends = [\"web1\"]\n[lb.vrrp]\nvrid = 51\npeers = [\"10.1.0.3\"]\n",
        18,
        "VRRP peer `10.1.0.3` is IPv4, but [lb.vrrp] runs VRRP over IPv6"
    ),
];

/// The example host file shipped in `etc/`.
pub fn example_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../etc/hosts.toml")
}

/// `BIN --check` on the example host file: exit 0 and a summary.
pub fn assert_example_passes(bin: &str) {
    let out = std::process::Command::new(bin)
        .arg("--check")
        .arg("--config")
        .arg(example_path())
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

/// `BIN --check` on every case: exit 64, an error line `FILE:LINE:` holding the case's needle, and
/// a fix; and a missing file is exit 66 naming the path.
pub fn assert_every_case_rejected(bin: &str) {
    let dir = std::env::temp_dir().join(format!(
        "checkcases-{}-{}",
        std::process::id(),
        bin.replace('/', "_")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    for (i, c) in CASES.iter().enumerate() {
        let path = dir.join(format!("case{i}.toml"));
        std::fs::write(&path, c.text).unwrap();
        let out = std::process::Command::new(bin)
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
    let _ = std::fs::remove_dir_all(&dir);
    let out = std::process::Command::new(bin)
        .args(["--check", "-c", "/nonexistent/hosts.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(66));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("/nonexistent/hosts.toml: cannot read the host file")
    );
}

/// Writes `dir/hosts.toml`: the example host file with its `[SECTION]` table (up to the next
/// table header) replaced by `replacement`; for tests that need their own daemon settings.
pub fn example_with_section(
    dir: &std::path::Path,
    section: &str,
    replacement: &str,
) -> std::path::PathBuf {
    let example = std::fs::read_to_string(example_path()).unwrap();
    let header = format!("\n[{section}]");
    let start = example
        .find(&header)
        .unwrap_or_else(|| panic!("example has no {header}"));
    let end = example[start + 1..]
        .find("\n[")
        .map_or(example.len(), |i| start + 1 + i);
    let text = format!("{}\n{replacement}\n{}", &example[..start], &example[end..]);
    let p = dir.join("hosts.toml");
    std::fs::write(&p, text).unwrap();
    p
}
