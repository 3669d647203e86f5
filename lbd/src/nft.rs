//! The kernel data plane: one nftables table (`table ip lbd`) owned by lbd, rendered from the
//! desired state and replaced in a single `nft -f -` transaction (add, delete, recreate: atomic,
//! so a failed apply leaves the previous table in force). The shape is kube-proxy's nftables mode:
//! a verdict map keyed `daddr . l4proto . dport` jumps to a per-service chain; that chain picks a
//! per-backend chain (numgen for rr/wrr, jhash over a Maglev table for sh); the backend chain
//! DNATs. Source persistence is a per-backend set of client addresses with a timeout. No
//! masquerade: backends route back through the balancer (NAT style).
//!
//! Accounting: named counters per (service, backend): new connections, and with the service's
//! `byte-counters` bytes to the backend and bytes from it. Connections are counted in a `nat` chain at postrouting (and input,
//! for a backend on this host), which the kernel runs once per new conntrack entry only, so
//! they cost nothing on established flows and a retransmitted SYN is not counted twice. Bytes
//! are counted by one rule per protocol in a filter chain at postrouting (and input) that sees
//! every packet: `ct status dnat` first (one bit test for the host's other traffic), then one
//! hash lookup keyed by the connection's original VIP and port, its reply source (the backend)
//! and the direction, straight to the counter. The keys come from the conntrack tuples, so the
//! rules hold whatever NAT has already done to the packet. Counters are objects named after the
//! service and backend: they survive `flush table` (health changes, reloads), and lbd carries
//! the totals of the counters it deletes ([`read_counters`], `metrics::KernelTotals`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::SocketAddrV4;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use hostfile::{Dataplane, Protocol, Scheduler};

use crate::desired::{Desired, Mode, ServicePlan, Target};
use crate::sched;

/// The table's family and name.
pub const TABLE: &str = "ip lbd";
/// How long one run of `nft` may take before it is killed and the run counts as failed.
pub const NFT_DEADLINE: Duration = Duration::from_secs(5);

/// Why the ruleset could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// The `nft` program is not installed.
    #[error(
        "`nft` was not found ({0}): install the Debian package nftables, or set dataplane = \"proxy\" on the services"
    )]
    Missing(String),
    /// `nft` refused the ruleset.
    #[error("nft refused the ruleset (the previous one stays in force): {0}")]
    Refused(String),
    /// Talking to `nft` failed.
    #[error("running nft: {0}")]
    Io(#[from] std::io::Error),
    /// `nft` did not finish in time; it was killed and reaped.
    #[error("nft did not finish within {0:?} and was killed (the previous ruleset stays in force)")]
    TimedOut(Duration),
}

fn proto(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    }
}

/// Collapses `slots` (slot -> endpoint index) into `a-b : goto chain` vmap elements.
fn vmap_elements(slots: &[usize], chain: impl Fn(usize) -> String) -> String {
    elements(slots, |j| format!("goto {}", chain(j)))
}

/// Collapses `slots` (slot -> endpoint index) into `a-b : ADDRESS . PORT` map elements.
fn map_elements(slots: &[usize], target: impl Fn(usize) -> String) -> String {
    elements(slots, target)
}

/// Collapses `slots` into `a-b : VALUE` elements, runs of the same endpoint as ranges.
fn elements(slots: &[usize], value: impl Fn(usize) -> String) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    while i < slots.len() {
        let mut j = i;
        while j + 1 < slots.len() && slots[j + 1] == slots[i] {
            j += 1;
        }
        let key = if i == j {
            i.to_string()
        } else {
            format!("{i}-{j}")
        };
        out.push(format!("{key} : {}", value(slots[i])));
        i = j + 1;
    }
    out.join(", ")
}

/// A rendered table: its body plus the names of its chains and sets, so the next apply can
/// delete exactly what vanished.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ruleset {
    /// `set ...` and `chain ...` definitions, one per line group, without the table wrapper.
    pub body: String,
    /// Chain names.
    pub chains: BTreeSet<String>,
    /// Set names.
    pub sets: BTreeSet<String>,
    /// Map names (their elements are flushed and re-added on every update).
    pub maps: BTreeSet<String>,
    /// Named counters and what each counts.
    pub counters: BTreeMap<String, CounterKey>,
}

/// What a kernel counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CounterKind {
    /// New connections DNATed to the backend (the counter's packets).
    Connections,
    /// Bytes (IP packets) of those connections towards the backend.
    ToBackend,
    /// Bytes (IP packets) of those connections from the backend.
    FromBackend,
}

impl CounterKind {
    /// Every kind.
    pub const ALL: [CounterKind; 3] = [
        CounterKind::Connections,
        CounterKind::ToBackend,
        CounterKind::FromBackend,
    ];

    fn suffix(self) -> &'static str {
        match self {
            CounterKind::Connections => "conns",
            CounterKind::ToBackend => "to",
            CounterKind::FromBackend => "from",
        }
    }
}

/// The (service, backend, kind) a kernel counter counts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CounterKey {
    /// Service name.
    pub service: String,
    /// Backend address.
    pub backend: SocketAddrV4,
    /// What is counted.
    pub kind: CounterKind,
}

/// The counter object's name for `key`: the service name with every byte outside `[A-Za-z0-9]`
/// written `_xx` (so distinct services never share a name), the backend, the kind.
pub fn counter_name(key: &CounterKey) -> String {
    let mut name = String::from("c_");
    for b in key.service.bytes() {
        if b.is_ascii_alphanumeric() {
            name.push(char::from(b));
        } else {
            let _ = write!(name, "_{b:02x}");
        }
    }
    let o = key.backend.ip().octets();
    let _ = write!(
        name,
        "__{}_{}_{}_{}_{}_{}",
        o[0],
        o[1],
        o[2],
        o[3],
        key.backend.port(),
        key.kind.suffix()
    );
    name
}

/// Value of a kernel counter as lbd reads it: packets for [`CounterKind::Connections`], bytes
/// otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CounterValue {
    /// Packets counted.
    pub packets: u64,
    /// Bytes counted.
    pub bytes: u64,
}

impl CounterValue {
    /// The figure that matters for `kind`.
    pub fn of(self, kind: CounterKind) -> u64 {
        match kind {
            CounterKind::Connections => self.packets,
            CounterKind::ToBackend | CounterKind::FromBackend => self.bytes,
        }
    }
}

/// Parses `nft -j list counters table ip lbd`: counter name -> value (other tables' counters
/// and other objects are skipped).
pub fn parse_counters(json: &str) -> Result<BTreeMap<String, CounterValue>, String> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("nft -j output is not JSON: {e}"))?;
    let items = v
        .get("nftables")
        .and_then(|x| x.as_array())
        .ok_or_else(|| "nft -j output has no `nftables` array".to_owned())?;
    let mut out = BTreeMap::new();
    for c in items.iter().filter_map(|i| i.get("counter")) {
        if c.get("table").and_then(|t| t.as_str()) != Some("lbd")
            || c.get("family").and_then(|t| t.as_str()) != Some("ip")
        {
            continue;
        }
        let (Some(name), Some(packets), Some(bytes)) = (
            c.get("name").and_then(|x| x.as_str()),
            c.get("packets").and_then(serde_json::Value::as_u64),
            c.get("bytes").and_then(serde_json::Value::as_u64),
        ) else {
            return Err(format!("nft -j counter without name/packets/bytes: {c}"));
        };
        out.insert(name.to_owned(), CounterValue { packets, bytes });
    }
    Ok(out)
}

/// Reads lbd's counters from the kernel (`nft -j list counters table ip lbd`).
pub fn read_counters(nft: &str) -> Result<BTreeMap<String, CounterValue>, NftError> {
    let out = run_bounded(
        nft,
        Command::new(nft).args(["-j", "list", "counters", "table", TABLE]),
        b"",
        NFT_DEADLINE,
    )?;
    if !out.status.success() {
        return Err(NftError::Refused(format!(
            "listing counters: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    parse_counters(&String::from_utf8_lossy(&out.stdout)).map_err(NftError::Refused)
}

/// Services whose traffic is counted, by protocol: every kernel service the desired state
/// lists (live, sorry or withdrawn: a withdrawn service's established connections still flow),
/// over its live targets, its pool and every address it counts while configured
/// ([`ServicePlan::counted`]: drained backends and the sorry server, whose established
/// connections keep flowing after they stop getting new ones).
fn accounting(d: &Desired, r: &mut Ruleset) {
    let mut conn_rules = Vec::new();
    let mut byte_rules = Vec::new();
    for p in [Protocol::Tcp, Protocol::Udp] {
        let mut conns = Vec::new();
        let mut bytes = Vec::new();
        for s in d
            .services
            .iter()
            .filter(|s| s.dataplane == Dataplane::Kernel && s.protocol == p)
        {
            let mut backends: Vec<SocketAddrV4> = s
                .targets
                .iter()
                .chain(&s.pool)
                .map(|t| t.addr)
                .chain(s.counted.iter().copied())
                .collect();
            backends.sort();
            backends.dedup();
            // Bytes only where asked for: their rule runs on every packet (~6% of the
            // kernel plane's requests/s in bench/lb); connections cost nothing per packet.
            let kinds: &[CounterKind] = if s.byte_counters {
                &CounterKind::ALL
            } else {
                &[CounterKind::Connections]
            };
            for b in backends {
                for &kind in kinds {
                    let key = CounterKey {
                        service: s.name.clone(),
                        backend: b,
                        kind,
                    };
                    let name = counter_name(&key);
                    let _ = writeln!(r.body, "  counter {name} {{ }}");
                    let k = format!("{} . {} . {} . {}", s.vip, s.port, b.ip(), b.port());
                    match kind {
                        CounterKind::Connections => conns.push(format!("{k} : \"{name}\"")),
                        CounterKind::ToBackend => {
                            bytes.push(format!("{k} . original : \"{name}\""));
                        }
                        CounterKind::FromBackend => {
                            bytes.push(format!("{k} . reply : \"{name}\""));
                        }
                    }
                    r.counters.insert(name, key);
                }
            }
        }
        if conns.is_empty() {
            continue;
        }
        let p = proto(p);
        let key =
            "ct original ip daddr . ct original proto-dst . ct reply ip saddr . ct reply proto-src";
        let _ = writeln!(
            r.body,
            "  map conns_{p} {{ type ipv4_addr . inet_service . ipv4_addr . inet_service : counter; elements = {{ {} }} }}",
            conns.join(", ")
        );
        r.maps.insert(format!("conns_{p}"));
        conn_rules.push(format!(
            "    meta l4proto {p} ct status dnat counter name {key} map @conns_{p}"
        ));
        if !bytes.is_empty() {
            let _ = writeln!(
                r.body,
                "  map bytes_{p} {{ type ipv4_addr . inet_service . ipv4_addr . inet_service . ct_dir : counter; elements = {{ {} }} }}",
                bytes.join(", ")
            );
            r.maps.insert(format!("bytes_{p}"));
            byte_rules.push(format!(
                "    meta l4proto {p} ct status dnat counter name {key} . ct direction map @bytes_{p}"
            ));
        }
    }
    if conn_rules.is_empty() {
        return;
    }
    // A packet looped back on this host (a client here to a backend here) was counted at
    // postrouting already.
    let byte_rules_in: Vec<String> = byte_rules
        .iter()
        .map(|r| r.replacen("ct status dnat", "iif != \"lo\" ct status dnat", 1))
        .collect();
    // New connections: nat chains run once per new conntrack entry (before any srcnat chain of
    // the admin's, which would end the walk for that connection). Bytes: every packet.
    for (chain, kind, hook, prio, rules) in [
        ("acct_conns", "nat", "postrouting", "99", &conn_rules),
        ("acct_conns_in", "nat", "input", "99", &conn_rules),
        ("acct_bytes", "filter", "postrouting", "0", &byte_rules),
        ("acct_bytes_in", "filter", "input", "0", &byte_rules_in),
    ] {
        if rules.is_empty() {
            continue;
        }
        let _ = writeln!(
            r.body,
            "  chain {chain} {{\n    type {kind} hook {hook} priority {prio}; policy accept;\n{}\n  }}",
            rules.join("\n")
        );
        r.chains.insert(chain.to_owned());
    }
}

/// The persistence set of one backend of one service: named after the service, the backend and
/// the timeout (never the position), so it survives table updates that keep that backend.
fn affinity_set(s: &ServicePlan, t: &Target, timeout: u64) -> String {
    let name: String = s
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let o = t.addr.ip().octets();
    format!(
        "aff_{name}_{}_{}_{}_{}_{}_{timeout}",
        o[0],
        o[1],
        o[2],
        o[3],
        t.addr.port()
    )
}

fn render_service(s: &ServicePlan, r: &mut Ruleset) {
    let out = &mut r.body;
    let svc = format!("svc{}", s.index);
    let ep = |j: usize| format!("svc{}_ep{j}", s.index);
    let timeout = s.persistence.map(|t| t.as_secs().max(1));
    let aff = |j: usize| timeout.map(|t| affinity_set(s, &s.targets[j], t));
    let _ = writeln!(out, "  # service {} {}:{}", s.name, s.vip, s.port);
    if let Some(t) = timeout {
        for j in 0..s.targets.len() {
            let name = aff(j).unwrap_or_default();
            let _ = writeln!(
                out,
                "  set {name} {{ type ipv4_addr; flags dynamic,timeout; timeout {t}s; size 65535; }}"
            );
            r.sets.insert(name);
        }
    }
    r.chains.insert(svc.clone());
    if timeout.is_none() {
        // No persistence: the service chain DNATs itself through a map of backend addresses
        // (one chain jump per new connection, as a hand-written rule).
        let _ = writeln!(out, "  chain {svc} {{");
        // Backends on the service's own port: map to addresses only (the port is left alone,
        // exactly as a hand-written `dnat to numgen ... map { 0 : ADDR, ... }`).
        let same_port = s.targets.iter().all(|t| t.addr.port() == s.port);
        let target = |j: usize| {
            let t = &s.targets[j];
            if same_port {
                t.addr.ip().to_string()
            } else {
                format!("{} . {}", t.addr.ip(), t.addr.port())
            }
        };
        let pick = match (s.targets.len(), s.scheduler) {
            (1, _) => None,
            (_, Scheduler::Sh) => {
                let table = s.sh_table();
                Some(format!(
                    "jhash ip saddr mod {} seed 0x{:x} map {{ {} }}",
                    table.len(),
                    0x6c62_6400u32 | s.index as u32,
                    map_elements(&table, target)
                ))
            }
            (_, Scheduler::Wrr) => {
                let w: Vec<u32> = s.targets.iter().map(|t| t.weight).collect();
                let seq = sched::wrr_sequence(&w);
                Some(format!(
                    "numgen inc mod {} map {{ {} }}",
                    seq.len(),
                    map_elements(&seq, target)
                ))
            }
            (n, Scheduler::Rr | Scheduler::Lc) => {
                let seq: Vec<usize> = (0..n).collect();
                Some(format!(
                    "numgen inc mod {n} map {{ {} }}",
                    map_elements(&seq, target)
                ))
            }
        };
        match pick {
            None => {
                let t = &s.targets[0];
                let _ = writeln!(
                    out,
                    "    meta l4proto {} dnat to {}:{}",
                    proto(s.protocol),
                    t.addr.ip(),
                    t.addr.port()
                );
            }
            Some(p) if same_port => {
                let _ = writeln!(out, "    dnat ip to {p}");
            }
            Some(p) => {
                let _ = writeln!(out, "    meta l4proto {} dnat ip to {p}", proto(s.protocol));
            }
        }
        let _ = writeln!(out, "  }}");
        return;
    }
    let _ = writeln!(out, "  chain {svc} {{");
    for j in 0..s.targets.len() {
        if let Some(name) = aff(j) {
            let _ = writeln!(out, "    ip saddr @{name} goto {}", ep(j));
        }
    }
    let n = s.targets.len();
    if n == 1 {
        let _ = writeln!(out, "    goto {}", ep(0));
    } else {
        match s.scheduler {
            Scheduler::Sh => {
                let table = s.sh_table();
                let _ = writeln!(
                    out,
                    "    jhash ip saddr mod {} seed 0x{:x} vmap {{ {} }}",
                    table.len(),
                    0x6c62_6400u32 | s.index as u32,
                    vmap_elements(&table, ep)
                );
            }
            Scheduler::Wrr => {
                let w: Vec<u32> = s.targets.iter().map(|t| t.weight).collect();
                let seq = sched::wrr_sequence(&w);
                let _ = writeln!(
                    out,
                    "    numgen inc mod {} vmap {{ {} }}",
                    seq.len(),
                    vmap_elements(&seq, ep)
                );
            }
            // rr (and lc, which the validator keeps out of the kernel) ignore weights.
            Scheduler::Rr | Scheduler::Lc => {
                let seq: Vec<usize> = (0..n).collect();
                let _ = writeln!(
                    out,
                    "    numgen inc mod {n} vmap {{ {} }}",
                    vmap_elements(&seq, ep)
                );
            }
        }
    }
    let _ = writeln!(out, "  }}");
    for (j, t) in s.targets.iter().enumerate() {
        r.chains.insert(ep(j));
        let _ = writeln!(out, "  chain {} {{", ep(j));
        if let Some(name) = aff(j) {
            let _ = writeln!(out, "    update @{name} {{ ip saddr }}");
        }
        let _ = writeln!(
            out,
            "    meta l4proto {} dnat to {}:{}",
            proto(s.protocol),
            t.addr.ip(),
            t.addr.port()
        );
        let _ = writeln!(out, "  }}");
    }
}

/// The table for `d` (kernel services that carry traffic).
pub fn build(d: &Desired) -> Ruleset {
    let mut r = Ruleset::default();
    let carried: Vec<&ServicePlan> = d
        .services
        .iter()
        .filter(|s| s.dataplane == Dataplane::Kernel && s.mode != Mode::Withdrawn)
        .filter(|s| !s.targets.is_empty())
        .collect();
    for s in &carried {
        render_service(s, &mut r);
    }
    accounting(d, &mut r);
    if !carried.is_empty() {
        let dispatch: Vec<String> = carried
            .iter()
            .map(|s| {
                format!(
                    "{} . {} . {} : goto svc{}",
                    s.vip,
                    proto(s.protocol),
                    s.port,
                    s.index
                )
            })
            .collect();
        let dispatch = dispatch.join(", ");
        // prerouting: clients on the network; output: clients on this host.
        for (hook, prio) in [("prerouting", "dstnat"), ("output", "-100")] {
            r.chains.insert(hook.to_owned());
            let _ = writeln!(
                r.body,
                "  chain {hook} {{\n    type nat hook {hook} priority {prio}; policy accept;\n    ip daddr . meta l4proto . th dport vmap {{ {dispatch} }}\n  }}"
            );
        }
    }
    r
}

/// The one-transaction script taking the table from `prev` (what lbd applied last; `None` when
/// unknown, e.g. at start) to `next`. With `prev` known the table is flushed (rules go, set
/// contents stay: persistence survives health changes) and vanished chains and sets deleted;
/// otherwise the table is deleted and recreated.
pub fn script(prev: Option<&Ruleset>, next: &Ruleset) -> String {
    let mut out = String::new();
    match prev {
        None => {
            let _ = write!(
                out,
                "table {TABLE}\ndelete table {TABLE}\ntable {TABLE} {{\n"
            );
            out.push_str(&next.body);
            out.push_str("}\n");
        }
        Some(p) => {
            let _ = writeln!(out, "flush table {TABLE}");
            // `flush table` keeps set and map elements: the counter maps are emptied and
            // refilled (a counter cannot be deleted while an element refers to it).
            for m in p.maps.intersection(&next.maps) {
                let _ = writeln!(out, "flush map {TABLE} {m}");
            }
            let _ = writeln!(out, "table {TABLE} {{");
            out.push_str(&next.body);
            out.push_str("}\n");
            for c in p.chains.difference(&next.chains) {
                let _ = writeln!(out, "delete chain {TABLE} {c}");
            }
            for s in p.sets.difference(&next.sets) {
                let _ = writeln!(out, "delete set {TABLE} {s}");
            }
            for m in p.maps.difference(&next.maps) {
                let _ = writeln!(out, "delete map {TABLE} {m}");
            }
            for c in p
                .counters
                .keys()
                .filter(|c| !next.counters.contains_key(*c))
            {
                let _ = writeln!(out, "delete counter {TABLE} {c}");
            }
        }
    }
    out
}

/// The whole nft script for `d` from an unknown state: creates the table if missing, deletes
/// it, and recreates it, all in one transaction.
pub fn render(d: &Desired) -> String {
    script(None, &build(d))
}

/// The script that removes the table (used on exit).
pub fn render_delete() -> String {
    format!("table {TABLE}\ndelete table {TABLE}\n")
}

/// Runs `nft -f -` with `script` on stdin, killed past [`NFT_DEADLINE`].
pub fn apply(nft: &str, script: &str) -> Result<(), NftError> {
    apply_within(nft, script, NFT_DEADLINE)
}

/// Runs `nft -f -` with `script` on stdin, killed past `deadline`. nft commits its netlink
/// batch as one transaction, so a run killed before it finished changed nothing.
fn apply_within(nft: &str, script: &str, deadline: Duration) -> Result<(), NftError> {
    let out = run_bounded(
        nft,
        Command::new(nft).args(["-f", "-"]),
        script.as_bytes(),
        deadline,
    )?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(NftError::Refused(format!("{}: {}", out.status, err.trim())))
    }
}

/// Runs `cmd` (the program `nft`) with `input` on its stdin and collects its output. Past
/// `deadline` the child is killed by its own PID (still unreaped, so not reused), reaped, and
/// the run fails with [`NftError::TimedOut`].
fn run_bounded(
    nft: &str,
    cmd: &mut Command,
    input: &[u8],
    deadline: Duration,
) -> Result<Output, NftError> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => NftError::Missing(format!("{nft}: {e}")),
            _ => NftError::Io(e),
        })?;
    // Feeding and draining run beside the wait, so a child that stops reading or fills a pipe
    // cannot stall lbd: the deadline covers all of it. A write error (nft exited early) shows
    // as nft's own exit status and message.
    let stdin = child.stdin.take();
    let input = input.to_vec();
    std::thread::spawn(move || {
        if let Some(mut w) = stdin {
            let _ = w.write_all(&input);
        }
    });
    let drain = |r: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut v);
            }
            v
        })
    };
    let stdout = drain(child.stdout.take().map(|r| Box::new(r) as _));
    let stderr = drain(child.stderr.take().map(|r| Box::new(r) as _));
    let Some(status) = wait_until(&mut child, Instant::now() + deadline)? else {
        // The drain threads end when the pipes close (the child is gone); not waited for.
        let _ = child.kill();
        child.wait()?;
        return Err(NftError::TimedOut(deadline));
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// Waits for `child` to exit, until `end`: its status, or None when `end` passed first (the
/// child is then still running, unreaped). Waits on a pidfd, which becomes readable on exit.
fn wait_until(child: &mut Child, end: Instant) -> std::io::Result<Option<ExitStatus>> {
    // SAFETY: plain pidfd_open(2) on our own unreaped child; the descriptor is owned below.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as libc::pid_t, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    loop {
        if let Some(s) = child.try_wait()? {
            return Ok(Some(s));
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut p, 1, ms) } < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

/// Finds `nft`: `$LBD_NFT` when set (a non-standard install), else on the PATH and in the sbin
/// folders, which a non-login PATH may lack.
pub fn find_nft() -> Result<String, NftError> {
    if let Some(p) = std::env::var_os("LBD_NFT") {
        let p = std::path::PathBuf::from(p);
        return if p.is_file() {
            Ok(p.to_string_lossy().into_owned())
        } else {
            Err(NftError::Missing(format!(
                "LBD_NFT={} does not exist",
                p.display()
            )))
        };
    }
    let path = std::env::var("PATH").unwrap_or_default();
    for dir in path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"])
    {
        if dir.is_empty() {
            continue;
        }
        let p = std::path::Path::new(dir).join("nft");
        if p.is_file() {
            return Ok(p.to_string_lossy().into_owned());
        }
    }
    Err(NftError::Missing(format!("not on PATH ({path})")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{Target, VipPlan};

    fn plan(scheduler: Scheduler, weights: &[u32], persistence: bool) -> Desired {
        Desired {
            vips: vec![VipPlan {
                addr: "192.168.1.120".parse().unwrap(),
                prefix: 24,
                interface: None,
            }],
            services: vec![ServicePlan {
                index: 0,
                name: "www3".into(),
                vip: "192.168.1.120".parse().unwrap(),
                port: 80,
                protocol: Protocol::Tcp,
                scheduler,
                dataplane: Dataplane::Kernel,
                byte_counters: true,
                persistence: persistence.then(|| std::time::Duration::from_secs(300)),
                mode: Mode::Live,
                targets: weights
                    .iter()
                    .enumerate()
                    .map(|(i, w)| Target {
                        name: format!("web{}", i + 1),
                        addr: format!("192.168.10.{}:80", 10 + i).parse().unwrap(),
                        weight: *w,
                    })
                    .collect(),
                pool: Vec::new(),
                counted: Vec::new(),
            }],
        }
    }

    #[test]
    fn rr_two_backends() {
        let s = render(&plan(Scheduler::Rr, &[1, 1], false));
        assert!(s.starts_with("table ip lbd\ndelete table ip lbd\ntable ip lbd {\n"));
        // No persistence: the service chain DNATs itself (one jump, as a hand-written rule).
        assert!(
            s.contains(
                "  chain svc0 {\n    dnat ip to numgen inc mod 2 map { 0 : 192.168.10.10, 1 : 192.168.10.11 }\n  }"
            ),
            "{s}"
        );
        assert!(!s.contains("_ep"), "{s}");
        // Backends on another port: the map gives address . port.
        let mut d = plan(Scheduler::Rr, &[1, 1], false);
        for t in &mut d.services[0].targets {
            t.addr.set_port(8080);
        }
        let o = render(&d);
        assert!(
            o.contains("meta l4proto tcp dnat ip to numgen inc mod 2 map { 0 : 192.168.10.10 . 8080, 1 : 192.168.10.11 . 8080 }"),
            "{o}"
        );
        // With persistence: per-backend chains (they update the client sets).
        let p = render(&plan(Scheduler::Rr, &[1, 1], true));
        assert!(p.contains("numgen inc mod 2 vmap { 0 : goto svc0_ep0, 1 : goto svc0_ep1 }"));
        assert!(p.contains("meta l4proto tcp dnat to 192.168.10.10:80"));
        assert!(p.contains("meta l4proto tcp dnat to 192.168.10.11:80"));
        assert!(s.contains("type nat hook prerouting priority dstnat"));
        assert!(s.contains("type nat hook output priority -100"));
        assert!(s.contains("192.168.1.120 . tcp . 80 : goto svc0"));
        assert!(!s.contains("masquerade"));
    }

    #[test]
    fn wrr_expands_interleaved_slots() {
        let s = render(&plan(Scheduler::Wrr, &[3, 1], false));
        assert!(
            s.contains(
                "numgen inc mod 4 map { 0-1 : 192.168.10.10, 2 : 192.168.10.11, 3 : 192.168.10.10 }"
            ),
            "{s}"
        );
    }

    #[test]
    fn sh_uses_jhash_over_a_maglev_table() {
        let s = render(&plan(Scheduler::Sh, &[1, 1], false));
        assert!(s.contains("dnat ip to jhash ip saddr mod 251 seed"), "{s}");
        let p = render(&plan(Scheduler::Sh, &[1, 1], true));
        assert!(p.contains("jhash ip saddr mod 251 seed"), "{p}");
        assert!(p.contains(": goto svc0_ep1"), "{p}");
    }

    #[test]
    fn persistence_sets_and_updates() {
        let s = render(&plan(Scheduler::Rr, &[1, 1], true));
        assert!(s.contains(
            "set aff_www3_192_168_10_10_80_300 { type ipv4_addr; flags dynamic,timeout; timeout 300s;"
        ));
        assert!(s.contains("ip saddr @aff_www3_192_168_10_11_80_300 goto svc0_ep1"));
        assert!(s.contains("update @aff_www3_192_168_10_10_80_300 { ip saddr }"));
    }

    #[test]
    fn withdrawn_and_proxy_services_get_no_rules() {
        let mut d = plan(Scheduler::Rr, &[1, 1], false);
        d.services[0].mode = Mode::Withdrawn;
        d.services[0].targets.clear();
        d.services[0].pool.clear();
        assert_eq!(
            render(&d),
            "table ip lbd\ndelete table ip lbd\ntable ip lbd {\n}\n"
        );
        // A withdrawn service with a pool: no DNAT, but its established connections are still
        // counted.
        let mut d = plan(Scheduler::Rr, &[1, 1], false);
        d.services[0].mode = Mode::Withdrawn;
        d.services[0].pool = std::mem::take(&mut d.services[0].targets);
        let w = render(&d);
        assert!(
            !w.contains("dnat ip to") && !w.contains("chain svc0"),
            "{w}"
        );
        assert!(w.contains("chain acct_bytes {"), "{w}");
        let mut d = plan(Scheduler::Rr, &[1, 1], false);
        d.services[0].dataplane = Dataplane::Proxy;
        assert!(!render(&d).contains("chain"));
    }

    #[test]
    fn update_flushes_keeps_sets_and_deletes_what_vanished() {
        let a = build(&plan(Scheduler::Rr, &[1, 1], true));
        let mut d = plan(Scheduler::Rr, &[1, 1], true);
        d.services[0].targets.remove(0);
        let b = build(&d);
        let s = script(Some(&a), &b);
        assert!(s.starts_with("flush table ip lbd\n"), "{s}");
        assert!(s.contains("\ntable ip lbd {\n"), "{s}");
        assert!(!s.contains("delete table"), "{s}");
        assert!(s.contains("delete chain ip lbd svc0_ep1\n"), "{s}");
        assert!(
            s.contains("delete set ip lbd aff_www3_192_168_10_10_80_300\n"),
            "{s}"
        );
        // The surviving backend keeps its set (same name).
        assert!(s.contains("set aff_www3_192_168_10_11_80_300 {"), "{s}");
    }

    #[test]
    fn one_backend_is_a_plain_goto() {
        let s = render(&plan(Scheduler::Rr, &[1], false));
        assert!(
            s.contains("  chain svc0 {\n    meta l4proto tcp dnat to 192.168.10.10:80\n  }"),
            "{s}"
        );
        let p = render(&plan(Scheduler::Rr, &[1], true));
        assert!(p.contains("    goto svc0_ep0\n"), "{p}");
    }

    #[test]
    fn without_byte_counters_no_rule_sees_every_packet() {
        let mut d = plan(Scheduler::Rr, &[1, 1], false);
        d.services[0].byte_counters = false;
        let r = build(&d);
        let s = &r.body;
        // Connections still counted (nat chains: first packet only) ...
        assert_eq!(r.counters.len(), 2, "{s}");
        assert!(
            r.counters
                .values()
                .all(|k| k.kind == CounterKind::Connections),
            "{s}"
        );
        assert!(s.contains("chain acct_conns {"), "{s}");
        // ... and no filter chain, map or counter for bytes.
        assert!(!s.contains("acct_bytes"), "{s}");
        assert!(!s.contains("map bytes_"), "{s}");
        assert!(!s.contains("type filter"), "{s}");
        assert!(!r.maps.contains("bytes_tcp"), "{s}");
    }

    #[test]
    fn counters_per_backend_and_the_chains_that_feed_them() {
        let r = build(&plan(Scheduler::Rr, &[1, 1], false));
        let s = &r.body;
        assert_eq!(r.counters.len(), 6, "{s}");
        let conns = CounterKey {
            service: "www3".into(),
            backend: "192.168.10.10:80".parse().unwrap(),
            kind: CounterKind::Connections,
        };
        assert_eq!(counter_name(&conns), "c_www3__192_168_10_10_80_conns");
        assert_eq!(r.counters["c_www3__192_168_10_10_80_conns"], conns);
        assert!(
            s.contains("  counter c_www3__192_168_10_11_80_from { }\n"),
            "{s}"
        );
        assert!(
            s.contains(
                "map conns_tcp { type ipv4_addr . inet_service . ipv4_addr . inet_service : counter; elements = { 192.168.1.120 . 80 . 192.168.10.10 . 80 : \"c_www3__192_168_10_10_80_conns\", 192.168.1.120 . 80 . 192.168.10.11 . 80 : \"c_www3__192_168_10_11_80_conns\" } }"
            ),
            "{s}"
        );
        assert!(
            s.contains("192.168.1.120 . 80 . 192.168.10.10 . 80 . original : \"c_www3__192_168_10_10_80_to\", 192.168.1.120 . 80 . 192.168.10.10 . 80 . reply : \"c_www3__192_168_10_10_80_from\""),
            "{s}"
        );
        // Connections: once per new conntrack entry (nat chains), before srcnat.
        assert!(
            s.contains("chain acct_conns {\n    type nat hook postrouting priority 99; policy accept;\n    meta l4proto tcp ct status dnat counter name ct original ip daddr . ct original proto-dst . ct reply ip saddr . ct reply proto-src map @conns_tcp\n  }"),
            "{s}"
        );
        assert!(s.contains("type nat hook input priority 99;"), "{s}");
        assert!(
            s.contains("chain acct_bytes_in {\n    type filter hook input priority 0; policy accept;\n    meta l4proto tcp iif != \"lo\" ct status dnat counter name"),
            "{s}"
        );
        // Bytes: every packet, one lookup, keyed with the direction.
        assert!(
            s.contains("chain acct_bytes {\n    type filter hook postrouting priority 0; policy accept;\n    meta l4proto tcp ct status dnat counter name ct original ip daddr . ct original proto-dst . ct reply ip saddr . ct reply proto-src . ct direction map @bytes_tcp\n  }"),
            "{s}"
        );
        assert!(!s.contains("udp"), "{s}");
        // Service names that differ only in punctuation get distinct counters.
        let a = CounterKey {
            service: "a-b".into(),
            ..conns.clone()
        };
        let b = CounterKey {
            service: "a_b".into(),
            ..conns
        };
        assert_eq!(counter_name(&a), "c_a_2db__192_168_10_10_80_conns");
        assert_ne!(counter_name(&a), counter_name(&b));
        // Pool members that are down keep their counters (their connections still flow).
        let mut d = plan(Scheduler::Rr, &[1, 1], false);
        d.services[0].pool = d.services[0].targets.clone();
        d.services[0].targets.remove(0);
        assert_eq!(build(&d).counters.len(), 6);
        // Drained (weight 0, so neither target nor pool) and the sorry server after the service
        // went live again: counter objects and byte-map elements stay while configured.
        let mut d = plan(Scheduler::Rr, &[1], false);
        d.services[0].counted = vec![
            "192.168.10.10:80".parse().unwrap(),
            "192.168.10.11:80".parse().unwrap(),
            "192.168.10.99:8080".parse().unwrap(),
        ];
        let r = build(&d);
        assert_eq!(r.counters.len(), 9, "{}", r.body);
        for (b, name) in [
            ("192.168.10.11 . 80", "192_168_10_11_80"),
            ("192.168.10.99 . 8080", "192_168_10_99_8080"),
        ] {
            assert!(
                r.body.contains(&format!(
                    "192.168.1.120 . 80 . {b} . original : \"c_www3__{name}_to\", 192.168.1.120 . 80 . {b} . reply : \"c_www3__{name}_from\""
                )),
                "{}",
                r.body
            );
            assert!(
                r.body.contains(&format!(
                    "192.168.1.120 . 80 . {b} : \"c_www3__{name}_conns\""
                )),
                "{}",
                r.body
            );
        }
        // ... but get no new connections.
        assert!(
            r.body
                .contains("  chain svc0 {\n    meta l4proto tcp dnat to 192.168.10.10:80\n  }"),
            "{}",
            r.body
        );
        // A drained backend that returns keeps its counters: nothing is deleted.
        let mut back = d.clone();
        back.services[0].targets.push(Target {
            name: "web2".into(),
            addr: "192.168.10.11:80".parse().unwrap(),
            weight: 1,
        });
        let s = script(Some(&r), &build(&back));
        assert!(!s.contains("delete counter"), "{s}");
        // Proxy services are not counted here.
        d.services[0].dataplane = Dataplane::Proxy;
        assert!(build(&d).counters.is_empty());
    }

    #[test]
    fn update_refills_counter_maps_and_deletes_vanished_counters_last() {
        let a = build(&plan(Scheduler::Rr, &[1, 1], false));
        let mut d = plan(Scheduler::Rr, &[1, 1], false);
        d.services[0].targets.remove(0);
        let b = build(&d);
        let s = script(Some(&a), &b);
        assert!(
            s.starts_with(
                "flush table ip lbd\nflush map ip lbd bytes_tcp\nflush map ip lbd conns_tcp\ntable ip lbd {\n"
            ),
            "{s}"
        );
        // Kept backend: its counters are redeclared (which leaves their values alone).
        assert!(s.contains("counter c_www3__192_168_10_11_80_to { }"), "{s}");
        let tail = s.split("\n}\n").nth(1).unwrap();
        assert_eq!(
            tail,
            "delete counter ip lbd c_www3__192_168_10_10_80_conns\n\
             delete counter ip lbd c_www3__192_168_10_10_80_from\n\
             delete counter ip lbd c_www3__192_168_10_10_80_to\n",
            "{s}"
        );
        // Everything gone (e.g. backup): maps deleted before their counters.
        let s = script(Some(&a), &build(&Desired::default()));
        let maps = s.find("delete map ip lbd conns_tcp").unwrap();
        let counters = s.find("delete counter").unwrap();
        assert!(maps < counters, "{s}");
    }

    #[test]
    fn counters_parsed_from_nft_json() {
        let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
            {"counter": {"family": "ip", "name": "c_www3__192_168_10_10_80_conns", "table": "lbd", "handle": 1, "packets": 4, "bytes": 240}},
            {"counter": {"family": "ip", "name": "other", "table": "filter", "handle": 2, "packets": 9, "bytes": 9}}]}"#;
        let m = parse_counters(json).unwrap();
        assert_eq!(m.len(), 1);
        let v = m["c_www3__192_168_10_10_80_conns"];
        assert_eq!(v.of(CounterKind::Connections), 4);
        assert_eq!(v.of(CounterKind::ToBackend), 240);
        assert!(parse_counters("nft: error").is_err());
        let bad = r#"{"nftables": [{"counter": {"family": "ip", "table": "lbd", "name": "x"}}]}"#;
        assert!(parse_counters(bad).unwrap_err().contains("without"));
    }

    // `sh` stands in for nft: `sh -f -` runs the script it is fed on stdin (no executable is
    // written at run time, so no ETXTBSY race with other tests' forks).

    #[test]
    fn a_hanging_nft_is_killed_at_the_deadline() {
        // `exec`: the shell becomes the sleeper, so killing the child ends the hang.
        let t = Instant::now();
        let e = apply_within("/bin/sh", "exec sleep 30\n", Duration::from_millis(300)).unwrap_err();
        let took = t.elapsed();
        assert!(matches!(e, NftError::TimedOut(_)), "{e}");
        assert!(e.to_string().contains("previous ruleset stays"), "{e}");
        assert!(took >= Duration::from_millis(300), "{took:?}");
        assert!(took < Duration::from_secs(5), "not killed: {took:?}");
        // The same with a script too large for a pipe, fed to a child that stops reading it.
        let big = format!("exec sleep 30\n{}", "#".repeat(1 << 20));
        let e = apply_within("/bin/sh", &big, Duration::from_millis(300)).unwrap_err();
        assert!(matches!(e, NftError::TimedOut(_)), "{e}");
    }

    #[test]
    fn nft_status_and_message_are_collected() {
        let script = "echo 'Error: no such table' >&2; exit 1\n";
        let e = apply_within("/bin/sh", script, Duration::from_secs(5)).unwrap_err();
        assert!(matches!(e, NftError::Refused(_)), "{e}");
        assert!(e.to_string().contains("Error: no such table"), "{e}");
        apply_within("/bin/sh", "exit 0\n", Duration::from_secs(5)).unwrap();
    }

    #[test]
    fn missing_nft_is_named() {
        let e = apply("/nonexistent/nft", "").unwrap_err();
        assert!(matches!(e, NftError::Missing(_)));
        assert!(e.to_string().contains("nftables"), "{e}");
    }
}
