//! What dnsd's end-to-end tests share: starting dnsd in a host, dig and nsupdate from a host.

#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use e2e::{Host, Proc, Ready};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_dnsd");
/// The example host file's dhcp-update key, as nsupdate -y takes it.
pub(crate) const KEY: &str =
    "hmac-sha256:dhcp-update:bGFuc3VpdGUtZXhhbXBsZS1rZXktY2hhbmdlLW1lLW5vdw==";

/// The example host file with `dns` as its `[dns]` section, written into `dir`.
pub(crate) fn host_file(dir: &Path, dns: &str) -> PathBuf {
    hostfile::checkcases::example_with_section(dir, "dns", dns)
}

/// Starts dnsd in `host` with its state (and control socket) in `state`, plus `extra` flags.
pub(crate) fn spawn_dnsd(host: &Host, conf: &Path, state: &Path, extra: &[&str]) -> Proc {
    std::fs::create_dir_all(state).unwrap();
    let mut args = vec![
        "--config",
        conf.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "--runtime-dir",
        state.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    host.spawn_daemon(BIN, &args, Ready::Notify, Duration::from_secs(15))
}

/// dig's whole output (one try, 2 s).
pub(crate) fn dig(h: &Host, args: &[&str]) -> String {
    let mut a = vec!["dig", "+time=2", "+tries=1"];
    a.extend_from_slice(args);
    String::from_utf8_lossy(&h.run_unchecked(&a).stdout).into_owned()
}

/// `dig @SERVER +short ...`, lines sorted.
pub(crate) fn short(h: &Host, server: &str, args: &[&str]) -> Vec<String> {
    let mut a = vec![server, "+short"];
    a.extend_from_slice(args);
    let mut v: Vec<String> = dig(h, &a).lines().map(str::to_owned).collect();
    v.sort();
    v
}

/// The SOA serial of `zone` at `server`.
pub(crate) fn soa_serial(h: &Host, server: &str, zone: &str) -> u32 {
    let s = short(h, server, &[zone, "SOA"]);
    s.first()
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|x| x.parse().ok())
        .unwrap_or_else(|| panic!("no SOA from {server}: {s:?}"))
}

/// nsupdate in `h` signed with `key`; its failures are returned, not panicked on.
pub(crate) fn nsupdate(h: &Host, key: &str, script: &str) -> std::process::Output {
    h.run_timeout(
        &["nsupdate", "-y", key, "-t", "3"],
        Some(script.as_bytes()),
        Duration::from_secs(20),
    )
    .expect("nsupdate ran")
}

/// Polls `f` until it returns true or `limit` passes (a bounded wait on a condition).
pub(crate) fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// 50 queries for main.it-ishin.com (A) to `argv[1]`:53 at once, over IPv6 when the address
/// has a colon; prints the answers and how many of them were truncated.
const BURST: &str = r#"
import socket, struct, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
u = socket.socket(fam, socket.SOCK_DGRAM)
q = b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04main\x08it-ishin\x03com\x00\x00\x01\x00\x01"
for i in range(50):
    u.sendto(struct.pack("!H", i) + q, (sys.argv[1], 53))
u.settimeout(1.0)
n = tc = 0
while True:
    try:
        b = u.recv(4096)
    except socket.timeout:
        break
    n += 1
    tc += 1 if b[2] & 2 else 0
print(n, tc)
"#;

/// [`BURST`] from `h` to `server`: (answers, truncated answers).
pub(crate) fn burst(h: &Host, server: &str) -> (u32, u32) {
    let out = h.run(&["python3", "-c", BURST, server]);
    let s = String::from_utf8_lossy(&out.stdout);
    let mut it = s.split_whitespace().map(|x| x.parse::<u32>().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

/// Knot as a secondary in `host` (files under `dir/knot`): listening on `listen`, taking `zone`
/// from the primary `primary` and accepting its NOTIFY, both signed with the TSIG key `xfr`
/// (hmac-sha256, `secret`); ready once it listens on UDP 53.
pub(crate) fn knot_secondary(
    host: &Host,
    dir: &Path,
    listen: &str,
    primary: &str,
    zone: &str,
    secret: &str,
) -> Proc {
    let kd = dir.join("knot");
    std::fs::create_dir_all(&kd).unwrap();
    let k = kd.display();
    std::fs::write(
        kd.join("knot.conf"),
        format!(
            "server:\n  listen: {listen}@53\n  rundir: \"{k}\"\n  user: root\n\
             log:\n  - target: stderr\n    any: info\n\
             database:\n  storage: \"{k}\"\n\
             key:\n  - id: xfr\n    algorithm: hmac-sha256\n    secret: {secret}\n\
             remote:\n  - id: primary\n    address: {primary}@53\n    key: xfr\n\
             acl:\n  - id: from_primary\n    address: {primary}\n    key: xfr\n    action: notify\n\
             zone:\n  - domain: {zone}\n    storage: \"{k}\"\n    master: primary\n    acl: from_primary\n"
        ),
    )
    .unwrap();
    host.spawn_daemon(
        "knotd",
        &["-c", kd.join("knot.conf").to_str().unwrap()],
        Ready::Udp(53),
        Duration::from_secs(10),
    )
}

/// dnsd (`d`) served the secondary `knot` an incremental transfer (IXFR from its journal), not
/// a full one.
pub(crate) fn assert_ixfr(d: &mut Proc, knot: &Proc) {
    d.wait_for_log("incremental zone transfer", Duration::from_secs(5))
        .unwrap();
    assert!(
        knot.stderr().contains("IXFR, incoming"),
        "{}",
        knot.stderr()
    );
}
