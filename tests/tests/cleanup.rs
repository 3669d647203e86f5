//! Teardown when a test panics, and the watchdog for a test that hangs.

use std::os::unix::process::ExitStatusExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use e2e::{Lab, Ready, list_netns};

#[test]
fn panicking_test_leaves_nothing_behind() {
    e2e::require_netns!("sh", "sleep");
    let seen = Mutex::new(None);
    let result = catch_unwind(AssertUnwindSafe(|| {
        let lab = Lab::new("panic");
        let host = lab.host("a");
        let _peer = lab.host("b");
        lab.veth(&host, "eth0", &_peer, "eth0");
        let p = host
            .process("sh")
            .args(["-c", "echo about to be killed; exec sleep 300"])
            .ready(Ready::Log("about to be killed".into()))
            .spawn();
        // A process started outside any guard, found only by the namespace sweep.
        let stray = host.run(&["sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $!"]);
        let stray: u32 = String::from_utf8_lossy(&stray.stdout)
            .trim()
            .parse()
            .unwrap();
        *seen.lock().unwrap() = Some((format!("{}-", lab.name()), p.pid(), stray));
        panic!("deliberate panic with a daemon running");
    }));
    assert!(result.is_err());
    let (prefix, pid, stray) = seen.lock().unwrap().take().unwrap();
    assert!(
        e2e::procstatus::is_gone(pid),
        "guarded pid {pid} survived the panic"
    );
    assert!(
        e2e::procstatus::is_gone(stray),
        "stray pid {stray} survived the panic"
    );
    assert_eq!(e2e::netns_with_prefix(&prefix), Vec::<String>::new());
}

/// Run by `watchdog_aborts_hung_test_and_cleans_up` in a child process.
#[test]
#[ignore = "a deliberately hung test, run in a child process by the watchdog test"]
fn hung_child() {
    if std::env::var_os("E2E_WATCHDOG_CHILD").is_none() {
        return;
    }
    let lab = Lab::with_timeout("hung", Duration::from_secs(1));
    let host = lab.host("a");
    let mut p = host.spawn(&["sleep", "300"]);
    println!(
        "LAB={}- PID={} DIR={}",
        lab.name(),
        p.pid(),
        lab.dir().display()
    );
    // "Hang" (bounded all the same) well past the deadline.
    p.wait_exit(Duration::from_secs(60));
    panic!("the watchdog did not fire");
}

#[test]
fn watchdog_aborts_hung_test_and_cleans_up() {
    e2e::require_netns!("sleep");
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "hung_child", "--nocapture"])
        .env("E2E_WATCHDOG_CHILD", "1")
        .env_remove("E2E_KEEP_DIR")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "{}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stderr.contains("e2e watchdog: lab"), "{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("LAB="))
        .unwrap_or_else(|| panic!("{stdout}"));
    let fields: Vec<&str> = line.split(' ').collect();
    let prefix = fields[0].trim_start_matches("LAB=");
    let pid: u32 = fields[1].trim_start_matches("PID=").parse().unwrap();
    let dir = fields[2].trim_start_matches("DIR=");
    assert!(
        e2e::procstatus::is_gone(pid),
        "pid {pid} survived the watchdog"
    );
    assert_eq!(e2e::netns_with_prefix(prefix), Vec::<String>::new());
    assert!(!std::path::Path::new(dir).exists(), "{dir} left behind");
}

#[test]
fn stale_namespaces_of_dead_runs_are_swept() {
    e2e::require_netns!("true");
    // A pid that certainly belonged to a process that is gone now.
    let mut child = Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    let ns = format!("e2e-stale-{dead_pid}-0-main");
    let live = format!("e2e-stale-{}-0-main", std::process::id());
    for n in [&ns, &live] {
        assert!(
            Command::new("ip")
                .args(["netns", "add", n])
                .status()
                .unwrap()
                .success()
        );
    }
    e2e::sweep_stale_namespaces();
    let left = list_netns();
    // Clean up ours first so a failed assertion leaves nothing behind.
    for n in [&ns, &live] {
        let _ = Command::new("ip").args(["netns", "del", n]).status();
    }
    assert!(!left.contains(&ns), "stale {ns} not swept");
    assert!(
        left.contains(&live),
        "a live run's namespace {live} was swept"
    );
}
