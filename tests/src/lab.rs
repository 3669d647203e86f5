//! A lab is one test's set of hosts (network namespaces) and a temp dir.
//!
//! Names: every namespace is `e2e-<prefix>-<pid>-<n>-<host>`, unique per test
//! (prefix), per process (pid) and per lab in the process (n). Interface names only
//! need to be unique inside one namespace (each has its own), so they stay short
//! and meaningful (`eth0`, `br0`, `p10p1`); both ends of a veth pair are created
//! directly inside their namespaces, never in the root namespace.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, setns};

use crate::exec::{DEFAULT_RUN_TIMEOUT, RunError, check, command, describe, run_bounded};
use crate::ports::{Proto, bound_in_current_netns};
use crate::registry;

static NEXT_LAB: AtomicU64 = AtomicU64::new(0);

/// One test's hosts. Dropping the last handle (the lab, its hosts, their
/// processes) kills what runs in its namespaces and deletes them.
#[derive(Debug)]
pub struct Lab {
    inner: Arc<LabInner>,
}

pub(crate) struct LabInner {
    id: u64,
    /// `e2e-<prefix>-<pid>-<n>`; namespaces are `<name>-<host>`.
    name: String,
    dir: Option<tempfile::TempDir>,
    dir_path: PathBuf,
    hosts: Mutex<BTreeSet<String>>,
    seq: AtomicUsize,
}

impl fmt::Debug for LabInner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LabInner")
            .field("name", &self.name)
            .field("dir", &self.dir_path)
            .finish()
    }
}

impl LabInner {
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir_path
    }

    pub(crate) fn next_seq(&self) -> usize {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }
}

impl Drop for LabInner {
    fn drop(&mut self) {
        registry::teardown(self.id);
        if std::env::var_os("E2E_KEEP_DIR").is_some()
            && let Some(dir) = self.dir.take()
        {
            eprintln!("e2e: keeping {}", dir.keep().display());
        }
    }
}

impl Lab {
    /// A new, empty lab for the test `prefix` (lowercase letters, digits, `-`),
    /// with the default watchdog deadline ([`crate::DEFAULT_TEST_TIMEOUT`], or
    /// `E2E_TEST_TIMEOUT_SECS`).
    pub fn new(prefix: &str) -> Lab {
        Lab::with_timeout(
            prefix,
            registry::test_timeout(registry::DEFAULT_TEST_TIMEOUT),
        )
    }

    /// A new lab whose test the watchdog aborts (after tearing everything down)
    /// if it still exists `timeout` from now.
    pub fn with_timeout(prefix: &str, timeout: Duration) -> Lab {
        assert!(
            !prefix.is_empty()
                && prefix.len() <= 24
                && prefix
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "lab prefix {prefix:?}: use 1-24 of [a-z0-9-]"
        );
        let id = NEXT_LAB.fetch_add(1, Ordering::Relaxed);
        let name = format!("e2e-{prefix}-{}-{id}", std::process::id());
        let dir = tempfile::Builder::new()
            .prefix(&format!("{name}-"))
            .tempdir()
            .expect("create lab temp dir");
        // Daemons that drop privileges still need to reach files and the notify
        // socket in here.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod lab temp dir");
        registry::register_lab(id, &name, dir.path(), timeout);
        Lab {
            inner: Arc::new(LabInner {
                id,
                dir_path: dir.path().to_owned(),
                dir: Some(dir),
                name,
                hosts: Mutex::new(BTreeSet::new()),
                seq: AtomicUsize::new(0),
            }),
        }
    }

    /// The lab's name; every namespace it creates starts with `<name>-`.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The per-test temp dir (logs, configs, sockets); removed on drop unless
    /// `E2E_KEEP_DIR` is set.
    pub fn dir(&self) -> &Path {
        self.inner.dir()
    }

    /// The host `name` (`[a-z0-9]`), creating its namespace (with `lo` up) on
    /// first use.
    pub fn host(&self, name: &str) -> Host {
        // No '-': the namespace name is parsed from the right by the stale sweep.
        assert!(
            !name.is_empty()
                && name.len() <= 16
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
            "host name {name:?}: use 1-16 of [a-z0-9]"
        );
        let netns = format!("{}-{name}", self.inner.name);
        let host = Host {
            name: name.to_owned(),
            netns: netns.clone(),
            lab: Arc::clone(&self.inner),
        };
        let mut hosts = self.inner.hosts.lock().unwrap();
        if hosts.insert(name.to_owned()) {
            // Register before creating, so a half-made namespace is still deleted.
            registry::add_netns(self.inner.id, &netns);
            ip(&["netns", "add", &netns]);
            host.ip(&["link", "set", "lo", "up"]);
        }
        host
    }

    /// The names of the namespaces created so far.
    pub fn namespaces(&self) -> Vec<String> {
        let hosts = self.inner.hosts.lock().unwrap();
        hosts
            .iter()
            .map(|h| format!("{}-{h}", self.inner.name))
            .collect()
    }

    /// A veth pair: `a_if` in host `a`, `b_if` in host `b`, both up.
    pub fn veth(&self, a: &Host, a_if: &str, b: &Host, b_if: &str) {
        check_ifname(a_if);
        check_ifname(b_if);
        a.ip(&[
            "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", &b.netns,
        ]);
        a.link_up(a_if);
        b.link_up(b_if);
    }
}

fn check_ifname(name: &str) {
    assert!(
        !name.is_empty() && name.len() <= 15 && !name.contains(['/', ' ', ':']),
        "interface name {name:?}: 1-15 characters, no '/', ' ' or ':'"
    );
}

/// Run `ip args...` in the root namespace (only for `ip netns ...` and `ip -n`).
fn ip(args: &[&str]) -> Output {
    let cmd = command("ip", args);
    let desc = describe(&cmd);
    run_bounded(cmd, None, DEFAULT_RUN_TIMEOUT)
        .and_then(|out| check(&desc, out))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The names in `ip netns list` (all of the machine's, not just ours).
pub fn list_netns() -> Vec<String> {
    let out = ip(&["netns", "list"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The namespaces whose names start with `prefix` (a lab's name and a dash: its hosts).
pub fn netns_with_prefix(prefix: &str) -> Vec<String> {
    list_netns()
        .into_iter()
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// A host: one network namespace of a lab. Cheap to clone; keeps the lab alive.
#[derive(Clone)]
pub struct Host {
    name: String,
    netns: String,
    lab: Arc<LabInner>,
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("name", &self.name)
            .field("netns", &self.netns)
            .finish()
    }
}

impl Host {
    /// Its short name in the lab (`main`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its namespace name, for `ip netns exec` by hand.
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// The lab's temp dir.
    pub fn dir(&self) -> &Path {
        self.lab.dir()
    }

    pub(crate) fn lab_inner(&self) -> &LabInner {
        &self.lab
    }

    fn exec_cmd<S: AsRef<OsStr>>(&self, args: &[S]) -> std::process::Command {
        assert!(!args.is_empty(), "empty command");
        let mut c = command("ip", &["netns", "exec", &self.netns]);
        c.args(args);
        c
    }

    /// Run a command in this host within `timeout`, feeding `stdin` if given.
    /// Returns its output whatever its exit status; errors only if it could not
    /// start or timed out.
    pub fn run_timeout<S: AsRef<OsStr>>(
        &self,
        args: &[S],
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Output, RunError> {
        run_bounded(self.exec_cmd(args), stdin, timeout)
    }

    /// Run a command in this host (30 s bound) and panic, showing its output, if
    /// it fails.
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        self.try_run(args)
            .unwrap_or_else(|e| panic!("[{}] {e}", self.name))
    }

    /// Run a command in this host (30 s bound); `Err` if it fails or times out.
    pub fn try_run<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<Output, RunError> {
        let desc = describe(&self.exec_cmd(args));
        self.run_timeout(args, None, DEFAULT_RUN_TIMEOUT)
            .and_then(|out| check(&desc, out))
    }

    /// Run a command in this host (30 s bound) and return its output whatever its
    /// exit status; panics only if it cannot start or times out.
    pub fn run_unchecked<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        self.run_timeout(args, None, DEFAULT_RUN_TIMEOUT)
            .unwrap_or_else(|e| panic!("[{}] {e}", self.name))
    }

    /// Like [`Host::run`] with `input` on the command's stdin (`nsupdate`).
    pub fn run_stdin<S: AsRef<OsStr>>(&self, args: &[S], input: &[u8]) -> Output {
        let desc = describe(&self.exec_cmd(args));
        self.run_timeout(args, Some(input), DEFAULT_RUN_TIMEOUT)
            .and_then(|out| check(&desc, out))
            .unwrap_or_else(|e| panic!("[{}] {e}", self.name))
    }

    /// `ip args...` in this host (`ip -n NS ...`), checked.
    pub fn ip(&self, args: &[&str]) -> Output {
        let mut full = vec!["-n", &self.netns];
        full.extend_from_slice(args);
        ip(&full)
    }

    /// Set `key` (e.g. `net.ipv4.ip_forward`) in this host's namespace.
    pub fn sysctl(&self, key: &str, value: &str) {
        self.run(&["sysctl", "-q", "-w", &format!("{key}={value}")]);
    }

    /// Bring `iface` up.
    pub fn link_up(&self, iface: &str) {
        self.ip(&["link", "set", iface, "up"]);
    }

    /// Set the MAC address of `iface`.
    pub fn set_mac(&self, iface: &str, mac: &str) {
        self.ip(&["link", "set", iface, "address", mac]);
    }

    /// Create bridge `name` (STP off, so ports forward at once) and bring it up.
    pub fn add_bridge(&self, name: &str) {
        check_ifname(name);
        self.ip(&[
            "link",
            "add",
            name,
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
        ]);
        self.link_up(name);
    }

    /// Make `iface` a port of `bridge` (both in this host).
    pub fn enslave(&self, iface: &str, bridge: &str) {
        self.ip(&["link", "set", iface, "master", bridge]);
    }

    /// Add `cidr` (`192.168.1.2/24`) to `iface`.
    pub fn add_addr(&self, iface: &str, cidr: &str) {
        self.ip(&["addr", "add", cidr, "dev", iface]);
    }

    /// Remove `cidr` from `iface`.
    pub fn del_addr(&self, iface: &str, cidr: &str) {
        self.ip(&["addr", "del", cidr, "dev", iface]);
    }

    /// Route `dest` (`192.168.10.0/24` or `default`) via `gateway`.
    pub fn add_route(&self, dest: &str, gateway: Ipv4Addr) {
        self.ip(&["route", "add", dest, "via", &gateway.to_string()]);
    }

    /// The IPv4 addresses on `iface`, as `addr/prefix` strings.
    pub fn ipv4_addrs(&self, iface: &str) -> Vec<String> {
        let out = self.ip(&["-j", "-4", "addr", "show", "dev", iface]);
        let json: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("ip -j addr: JSON");
        json.as_array()
            .into_iter()
            .flatten()
            .filter_map(|link| link.get("addr_info")?.as_array())
            .flatten()
            .filter_map(|a| {
                Some(format!(
                    "{}/{}",
                    a.get("local")?.as_str()?,
                    a.get("prefixlen")?.as_u64()?
                ))
            })
            .collect()
    }

    /// The operational state of `iface` (`UP`, `DOWN`, `UNKNOWN`, ...).
    pub fn operstate(&self, iface: &str) -> String {
        let out = self.ip(&["-j", "link", "show", "dev", iface]);
        let json: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("ip -j link: JSON");
        json.get(0)
            .and_then(|l| l.get("operstate"))
            .and_then(|s| s.as_str())
            .unwrap_or("")
            .to_owned()
    }

    /// Wait (bounded) until `iface` is operationally up: carrier on a veth needs
    /// both ends up, and a bridge is up once a port is.
    pub fn wait_link_up(&self, iface: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(2);
        loop {
            let state = self.operstate(iface);
            if state == "UP" {
                return;
            }
            let now = Instant::now();
            assert!(
                now < deadline,
                "[{}] {iface} not UP within {timeout:?} (state {state})",
                self.name
            );
            thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Run `f` on a fresh thread that joined this host's network namespace:
    /// sockets it creates belong to the host, and stay so when used elsewhere.
    pub fn enter<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        let path = format!("/run/netns/{}", self.netns);
        thread::scope(|s| {
            s.spawn(|| {
                let ns = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
                setns(&ns, CloneFlags::CLONE_NEWNET)
                    .unwrap_or_else(|e| panic!("setns {path}: {e}"));
                f()
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// Whether a `proto` socket is bound to `port` in this host (TCP: listening).
    /// Passive: reads the kernel's socket table, sends nothing.
    pub fn port_bound(&self, proto: Proto, port: u16) -> bool {
        self.enter(|| bound_in_current_netns(proto, port))
    }

    /// Wait (bounded) until [`Host::port_bound`]; prefer [`Proc::wait_port`],
    /// which also notices the process exiting.
    pub fn wait_port(&self, proto: Proto, port: u16, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(5);
        loop {
            if self.port_bound(proto, port) {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!(
                    "[{}] {proto:?} port {port} not bound within {timeout:?}",
                    self.name
                ));
            }
            thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}
