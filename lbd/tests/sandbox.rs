//! lbd under the sandbox of `etc/lbd.service` (issue 19.9): `ProcSubset=pid` and
//! `ProtectProc=invisible` (a procfs mounted `subset=pid,hidepid=invisible`, which hides
//! `/proc/net`), run as an unprivileged user with only the unit's ambient capabilities. The
//! kernel data plane's active connections (conntrack) must still show in `lbd status` and the
//! metrics.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::*;
use e2e::Ready;

/// The unprivileged user lbd runs as (`nobody`: the unit's `lansuite` may not exist here).
const UID: &str = "65534";

/// What systemd does for the unit, by hand: a mount namespace with a procfs of the pid subset,
/// then the user with the unit's ambient capabilities.
const SANDBOX: &str = r#"mount -t proc -o subset=pid,hidepid=invisible proc /proc && test ! -e /proc/net && exec setpriv --reuid "$1" --regid "$1" --clear-groups --inh-caps +net_admin,+net_raw,+net_bind_service --ambient-caps +net_admin,+net_raw,+net_bind_service "$2" --config "$3" --runtime-dir "$4""#;

#[test]
fn conntrack_is_read_under_the_units_sandbox() {
    e2e::require_netns!("nft", "curl", "busybox", "setpriv", "unshare");
    let lan = e2e::SeedLan::build("lbsandbox");
    let _web1 = web(&lan.web1, "web1");
    let _web2 = web(&lan.web2, "web2");
    let conf = host_file(&lan, "");
    // The unprivileged user reads the host file and owns its runtime folder.
    let dir = lan.lab.dir();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).unwrap();
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o644)).unwrap();
    let rt = dir.join("run-sandbox");
    std::fs::create_dir(&rt).unwrap();
    let uid: u32 = UID.parse().unwrap();
    std::os::unix::fs::chown(&rt, Some(uid), Some(uid)).unwrap();

    let mut lbd = lan
        .main
        .process("unshare")
        .args([
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            SANDBOX,
            "sh",
            UID,
            BIN,
            conf.to_str().unwrap(),
            rt.to_str().unwrap(),
        ])
        .name("lbd-sandboxed")
        .ready(Ready::Log("lbd ready".into()))
        .timeout(Duration::from_secs(15))
        .spawn();
    // Both backends serve before the test holds a connection.
    assert!(get(&lan).is_ok(), "{}", lbd.stderr());

    // One connection held open (an unfinished request: busybox httpd waits for the rest).
    let mut held = lan.outside.enter(|| {
        TcpStream::connect_timeout(&"192.168.1.120:80".parse().unwrap(), Duration::from_secs(2))
            .unwrap()
    });
    held.write_all(b"GET / HTTP/1.0\r\n").unwrap();

    let args = [
        BIN,
        "--config",
        conf.to_str().unwrap(),
        "--runtime-dir",
        rt.to_str().unwrap(),
        "status",
        "--json",
    ];
    let t0 = Instant::now();
    loop {
        let out = lan.main.run(&args);
        let st: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status is JSON");
        let backends = st["services"][0]["backends"].as_array().unwrap().clone();
        let active: Vec<Option<u64>> = backends.iter().map(|b| b["active"].as_u64()).collect();
        if active.iter().flatten().sum::<u64>() == 1 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the held connection never showed as active (null: conntrack unreadable): {active:?}\n{st}\n{}",
            lbd.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let m = scrape(&lan.main);
    let total: f64 = m
        .lines()
        .filter(|l| l.starts_with("lbd_backend_active_connections{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(total, 1.0, "{m}");
    drop(held);
    assert!(
        lbd.stop_with(Duration::from_secs(5)).success(),
        "{}",
        lbd.stderr()
    );
}
