//! What this process created, so it can always be torn down: by each lab's `Drop`,
//! and by the watchdog thread when a test overruns its deadline (it tears down
//! every lab of the process, then aborts it, so a hung test fails loudly instead of
//! hanging CI and leaves no namespace or daemon behind).
//!
//! Teardown of a namespace kills the processes still inside it one PID at a time
//! (the namespace is ours, so they are too: daemons' forked children, a `dhclient`
//! that went to the background) and then deletes it. No process is ever addressed
//! by name.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::sync::{Condvar, Mutex, MutexGuard, Once};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::exec::{command, run_bounded};

/// Time a lab may live before the watchdog declares the test hung (override with
/// `E2E_TEST_TIMEOUT_SECS` or [`crate::Lab::with_timeout`]).
pub const DEFAULT_TEST_TIMEOUT: Duration = Duration::from_secs(300);

/// How long teardown keeps killing processes in one namespace.
const KILL_BUDGET: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct LabRecord {
    name: String,
    /// The lab's temp dir: the watchdog reports and removes it (a lab's `Drop`
    /// removes it the normal way).
    dir: std::path::PathBuf,
    deadline: Instant,
    netns: Vec<String>,
    /// Children spawned through the harness and not yet reaped.
    pids: BTreeSet<u32>,
}

static LABS: Mutex<BTreeMap<u64, LabRecord>> = Mutex::new(BTreeMap::new());
static CHANGED: Condvar = Condvar::new();
static WATCHDOG: Once = Once::new();

fn labs() -> MutexGuard<'static, BTreeMap<u64, LabRecord>> {
    // A panic while holding the lock leaves consistent data: keep going.
    LABS.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn register_lab(id: u64, name: &str, dir: &std::path::Path, timeout: Duration) {
    WATCHDOG.call_once(|| {
        sweep_stale_namespaces();
        thread::Builder::new()
            .name("e2e-watchdog".into())
            .spawn(watchdog)
            .expect("spawn watchdog thread");
    });
    labs().insert(
        id,
        LabRecord {
            name: name.to_owned(),
            dir: dir.to_owned(),
            deadline: Instant::now() + timeout,
            netns: Vec::new(),
            pids: BTreeSet::new(),
        },
    );
    CHANGED.notify_all();
}

pub(crate) fn add_netns(id: u64, ns: &str) {
    if let Some(r) = labs().get_mut(&id) {
        r.netns.push(ns.to_owned());
    }
}

pub(crate) fn add_pid(id: u64, pid: u32) {
    if let Some(r) = labs().get_mut(&id) {
        r.pids.insert(pid);
    }
}

pub(crate) fn remove_pid(id: u64, pid: u32) {
    if let Some(r) = labs().get_mut(&id) {
        r.pids.remove(&pid);
    }
}

/// Tear down lab `id` (if still registered). Never panics: it runs in `Drop`.
pub(crate) fn teardown(id: u64) {
    let rec = labs().remove(&id);
    if let Some(rec) = rec {
        teardown_record(rec);
    }
}

fn teardown_record(rec: LabRecord) {
    for pid in &rec.pids {
        // Our own unreaped children: the PID cannot have been recycled.
        let _ = kill(Pid::from_raw(*pid as i32), Signal::SIGKILL);
    }
    // Reverse creation order: hosts before the switches they hang off (any order
    // works, veth peers vanish with either end).
    for ns in rec.netns.iter().rev() {
        kill_netns_pids(ns);
        delete_netns(ns);
    }
}

/// SIGKILL every process in namespace `ns`, re-listing until it is empty (bounded).
fn kill_netns_pids(ns: &str) {
    let Ok(meta) = std::fs::metadata(format!("/run/netns/{ns}")) else {
        return;
    };
    let ino = meta.ino();
    let deadline = Instant::now() + KILL_BUDGET;
    loop {
        let pids = netns_pids(ns);
        if pids.is_empty() || Instant::now() >= deadline {
            if !pids.is_empty() {
                eprintln!("e2e: processes {pids:?} still alive in namespace {ns}");
            }
            return;
        }
        for pid in pids {
            // Re-check membership right before the kill so a PID that exited and
            // was reused since `ip netns pids` is left alone.
            let link = std::fs::read_link(format!("/proc/{pid}/ns/net"));
            if link.is_ok_and(|l| l.to_string_lossy() == format!("net:[{ino}]")) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        thread::sleep(Duration::from_millis(10));
    }
}

fn netns_pids(ns: &str) -> Vec<i32> {
    match run_bounded(
        command("ip", &["netns", "pids", ns]),
        None,
        Duration::from_secs(10),
    ) {
        Ok(out) => String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn delete_netns(ns: &str) {
    for _ in 0..3 {
        match run_bounded(
            command("ip", &["netns", "del", ns]),
            None,
            Duration::from_secs(10),
        ) {
            Ok(out) if out.status.success() => return,
            Ok(out) if !std::path::Path::new(&format!("/run/netns/{ns}")).exists() => {
                let _ = out;
                return;
            }
            Ok(out) => eprintln!(
                "e2e: ip netns del {ns}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(e) => eprintln!("e2e: ip netns del {ns}: {e}"),
        }
    }
}

/// Delete namespaces left by harness processes that died without tearing down
/// (SIGKILL, a CI timeout): `e2e-<prefix>-<pid>-<n>-<host>` whose `<pid>` is gone.
/// Only empty ones are deleted; one with processes still in it is reported, not
/// touched, since those processes are not this run's. Runs once per process
/// before its first lab.
pub fn sweep_stale_namespaces() {
    let Ok(out) = run_bounded(
        command("ip", &["netns", "list"]),
        None,
        Duration::from_secs(10),
    ) else {
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    for ns in text.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(pid) = stale_owner(ns) else { continue };
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let pids = netns_pids(ns);
        if pids.is_empty() {
            eprintln!("e2e: deleting stale namespace {ns} (owner pid {pid} is gone)");
            delete_netns(ns);
        } else {
            eprintln!("e2e: stale namespace {ns} still holds processes {pids:?}; left alone");
        }
    }
}

/// The owning pid encoded in a harness namespace name, if `ns` is one.
fn stale_owner(ns: &str) -> Option<u32> {
    let rest = ns.strip_prefix("e2e-")?;
    let mut parts = rest.rsplitn(4, '-');
    let _host = parts.next()?;
    let _lab: u64 = parts.next()?.parse().ok()?;
    let pid = parts.next()?.parse().ok()?;
    let _prefix = parts.next().filter(|p| !p.is_empty())?;
    Some(pid)
}

/// For a hung test: print the tail of every captured log in `dir`, then remove
/// it (unless `E2E_KEEP_DIR` is set), since no `Drop` will run.
fn report_and_remove_dir(dir: &std::path::Path) {
    let mut logs: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x == "stdout" || x == "stderr")
        })
        .collect();
    logs.sort();
    for log in logs {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        eprintln!(
            "----- {} (last 30 lines) -----\n{}",
            log.display(),
            lines[lines.len().saturating_sub(30)..].join("\n")
        );
    }
    if std::env::var_os("E2E_KEEP_DIR").is_some() {
        eprintln!("e2e: keeping {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn deadline_from_env() -> Option<Duration> {
    std::env::var("E2E_TEST_TIMEOUT_SECS")
        .ok()?
        .parse()
        .ok()
        .map(Duration::from_secs)
}

/// The timeout for a new lab: the environment's override or `default`.
pub(crate) fn test_timeout(default: Duration) -> Duration {
    deadline_from_env().unwrap_or(default)
}

/// Sleeps on a condition variable until the earliest lab deadline; when one
/// passes, tears down every lab of the process and aborts it.
fn watchdog() {
    let mut guard = labs();
    loop {
        let now = Instant::now();
        let earliest = guard.values().map(|r| (r.deadline, r.name.clone())).min();
        match earliest {
            None => {
                guard = CHANGED.wait(guard).unwrap_or_else(|p| p.into_inner());
            }
            Some((deadline, name)) if deadline <= now => {
                let all: Vec<LabRecord> = std::mem::take(&mut *guard).into_values().collect();
                drop(guard);
                eprintln!(
                    "e2e watchdog: lab {name} overran its deadline; tearing down {} lab(s) \
                     and aborting the test process",
                    all.len()
                );
                for rec in all {
                    let dir = rec.dir.clone();
                    teardown_record(rec);
                    report_and_remove_dir(&dir);
                }
                std::process::abort();
            }
            Some((deadline, _)) => {
                guard = CHANGED
                    .wait_timeout(guard, deadline - now)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::stale_owner;

    #[test]
    fn parses_owner_pid_from_namespace_names() {
        assert_eq!(stale_owner("e2e-seed-1234-0-main"), Some(1234));
        assert_eq!(stale_owner("e2e-dhcp-ddns-77-12-web1"), Some(77));
        assert_eq!(stale_owner("e2e-1234-0-main"), None);
        assert_eq!(stale_owner("someone-elses-1-2-ns"), None);
        assert_eq!(stale_owner("e2e-x-notapid-0-main"), None);
    }
}
