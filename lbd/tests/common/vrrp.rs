//! Helpers for the VRRP tests (vrrp.rs, float.rs, pair.rs): lbd and keepalived on namespace
//! nodes, which floating addresses a node holds, bounded polls, killing a node.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use e2e::{Host, Proc, Ready};
use nix::sys::signal::Signal;

pub const VIP: &str = "192.168.1.120";
pub const GATEWAY: &str = "192.168.10.1";
/// The advertisement interval the tests configure.
pub const ADVERT_MS: u64 = 100;
/// The step of every poll loop here.
pub const POLL: Duration = Duration::from_millis(20);

/// A node's two legs: the VIP floats on `outer`, the gateway on `inner`.
#[derive(Clone, Copy)]
pub struct Legs {
    pub outer: &'static str,
    pub inner: &'static str,
}

/// Polls (20 ms steps) until `done` holds; panics with `why()` after `bound`. Returns the time
/// it took.
pub fn poll_until(
    bound: Duration,
    mut done: impl FnMut() -> bool,
    why: impl Fn() -> String,
) -> Duration {
    let t0 = Instant::now();
    while !done() {
        assert!(t0.elapsed() < bound, "{}", why());
        std::thread::sleep(POLL);
    }
    t0.elapsed()
}

/// Asserts `ok` (20 ms steps) throughout `d`, panicking with `why()` when it fails.
pub fn holds_throughout(d: Duration, mut ok: impl FnMut() -> bool, why: impl Fn() -> String) {
    let t0 = Instant::now();
    while t0.elapsed() < d {
        assert!(ok(), "{}", why());
        std::thread::sleep(POLL);
    }
}

/// Master_Down_Interval for priority `p` at [`ADVERT_MS`], plus scheduling slack.
pub fn takeover_bound(p: u32) -> Duration {
    let i = Duration::from_millis(ADVERT_MS);
    i * 3 + i * (256 - p) / 256 + Duration::from_millis(700)
}

/// lbd on node `h` (runtime dir `run-NAME` in its dir), waited for READY=1.
pub fn lbd_node(h: &Host, conf: &Path) -> Proc {
    let rt = h.dir().join(format!("run-{}", h.name()));
    h.process(super::BIN)
        .args([
            "--config",
            conf.to_str().unwrap(),
            "--runtime-dir",
            rt.to_str().unwrap(),
        ])
        .name(&format!("lbd-{}", h.name()))
        .ready(Ready::Notify)
        .timeout(Duration::from_secs(15))
        .spawn()
}

/// Whether `h` holds `addr` on `leg`.
pub fn holds_on(h: &Host, leg: &str, addr: &str) -> bool {
    h.ipv4_addrs(leg)
        .iter()
        .any(|x| x.starts_with(&format!("{addr}/")))
}

/// Which of the two floating addresses `h` holds: (VIP on the outer leg, gateway on the inner).
pub fn holds(legs: Legs, h: &Host) -> (bool, bool) {
    (
        holds_on(h, legs.outer, VIP),
        holds_on(h, legs.inner, GATEWAY),
    )
}

/// Polls until `h` holds both addresses (`want`) or neither; panics after `bound`.
pub fn wait_holds(legs: Legs, h: &Host, want: bool, bound: Duration) -> Duration {
    poll_until(
        bound,
        || holds(legs, h) == (want, want),
        || {
            format!(
                "{}: after {bound:?} holds (VIP, gateway) = {:?}, want both {}",
                h.name(),
                holds(legs, h),
                if want { "held" } else { "released" }
            )
        },
    )
}

/// Asserts `h` holds neither address during `d`.
pub fn holds_nothing_for(legs: Legs, h: &Host, d: Duration) {
    holds_throughout(
        d,
        || holds(legs, h) == (false, false),
        || {
            format!(
                "{} took an address from a live master: holds (VIP, gateway) = {:?}",
                h.name(),
                holds(legs, h)
            )
        },
    )
}

/// Polls until `p` has logged `needle` `n` times; panics after `bound`.
pub fn wait_log_count(p: &Proc, needle: &str, n: usize, bound: Duration) {
    poll_until(
        bound,
        || p.stderr().matches(needle).count() >= n,
        || {
            format!(
                "{needle:?} not logged {n} times within {bound:?}:\n{}",
                p.stderr()
            )
        },
    );
}

/// The node dies as a machine does: its lbd killed with -9 and both its links down at once
/// (a killed lbd alone leaves its addresses and nftables table in the kernel).
pub fn kill_node(legs: Legs, h: &Host, lbd: &mut Proc) {
    lbd.signal(Signal::SIGKILL);
    for leg in [legs.outer, legs.inner] {
        h.run(&["ip", "link", "set", leg, "down"]);
    }
    let _ = lbd.wait_exit(Duration::from_secs(2));
}

/// A long-running process standing in for HAProxy, found by `pgrep -f MARKER`.
pub fn haproxy_like(h: &Host, marker: &str) -> Proc {
    h.process("/bin/sh")
        .args(["-c", "echo up; while :; do sleep 1; done", marker])
        .name(&format!("haproxy-like-{}", h.name()))
        .ready(Ready::Log("up".into()))
        .timeout(Duration::from_secs(5))
        .spawn()
}

/// keepalived (VRRP only, in the foreground) on `h` with the configuration `conf_text`, waited
/// for until it enters BACKUP; with its pid files (main, VRRP child) to kill it with.
pub fn keepalived(h: &Host, conf_text: &str) -> (Proc, PathBuf, PathBuf) {
    let dir = h.dir().join(format!("ka-{}", h.name()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("keepalived.conf");
    let pid = dir.join("keepalived.pid");
    let vpid = dir.join("vrrp.pid");
    std::fs::write(&conf, conf_text).unwrap();
    let proc = h
        .process("keepalived")
        .args([
            "--vrrp",
            "-n",
            "-l",
            "-D",
            "-f",
            conf.to_str().unwrap(),
            "-p",
            pid.to_str().unwrap(),
            "-r",
            vpid.to_str().unwrap(),
        ])
        .name(&format!("keepalived-{}", h.name()))
        .ready(Ready::Log("Entering BACKUP STATE".into()))
        .timeout(Duration::from_secs(10))
        .spawn();
    (proc, pid, vpid)
}

/// SIGKILL to the pid in `path`, which must hold one.
pub fn kill9_pidfile(path: &Path) {
    let pid: i32 = std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
}

/// SIGKILL to the pid in `path`, if it holds one.
pub fn try_kill9_pidfile(path: &Path) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    if let Ok(pid) = text.trim().parse::<i32>() {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
    }
}
