//! Rendering lbd's table from the desired state (pure): the verdict map, per-service and
//! per-backend chains, persistence sets, accounting, and the one-transaction update script.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use hostfile::{Dataplane, Protocol, Scheduler};
use std::net::{IpAddr, SocketAddr};

use super::counters::{CounterKey, CounterKind, counter_name};
use super::family::Family;
pub use super::family::Part;
use crate::desired::{Desired, Mode, ServicePlan, Target};
use crate::sched;

/// The table's family and name.
pub const TABLE: &str = "ip lbd";

/// The IPv6 table, beside the IPv4 one rather than one `inet` table for both: the IPv4 table
/// keeps exactly the shape (names, rules, counters) it had before IPv6 services existed, and
/// each family's rules stay plain `ip`/`ip6` matches. Both are written in the same `nft -f`
/// transaction, so an apply is still atomic; the IPv6 table exists only while IPv6 kernel
/// services do.
pub const TABLE6: &str = "ip6 lbd";

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
    /// Named counters and what each counts (both tables: a counter is in the table of its
    /// backend's family).
    pub counters: BTreeMap<String, CounterKey>,
    /// The IPv6 table (`ip6 lbd`); empty without IPv6 kernel services.
    pub v6: Part,
}

/// Services whose traffic is counted, by protocol: every kernel service the desired state
/// lists (live, sorry or withdrawn: a withdrawn service's established connections still flow),
/// over its live targets, its pool and every address it counts while configured
/// ([`ServicePlan::counted`]: drained backends and the sorry server, whose established
/// connections keep flowing after they stop getting new ones).
fn accounting(d: &Desired, f: Family, r: &mut Ruleset) {
    let mut conn_rules = Vec::new();
    let mut byte_rules = Vec::new();
    for p in [Protocol::Tcp, Protocol::Udp] {
        let mut conns = Vec::new();
        let mut bytes = Vec::new();
        for s in d
            .services
            .iter()
            .filter(|s| s.dataplane == Dataplane::Kernel && s.protocol == p)
            .filter(|s| Family::of(s.vip) == f)
        {
            let mut backends: Vec<SocketAddr> = s
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
        let (ip, ty) = (f.ip(), f.addr_type());
        let key = format!(
            "ct original {ip} daddr . ct original proto-dst . ct reply {ip} saddr . ct reply proto-src"
        );
        let _ = writeln!(
            r.body,
            "  map conns_{p} {{ type {ty} . inet_service . {ty} . inet_service : counter; elements = {{ {} }} }}",
            conns.join(", ")
        );
        r.maps.insert(format!("conns_{p}"));
        conn_rules.push(format!(
            "    meta l4proto {p} ct status dnat counter name {key} map @conns_{p}"
        ));
        if !bytes.is_empty() {
            let _ = writeln!(
                r.body,
                "  map bytes_{p} {{ type {ty} . inet_service . {ty} . inet_service . ct_dir : counter; elements = {{ {} }} }}",
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
    let addr = match t.addr.ip() {
        IpAddr::V4(a) => {
            let o = a.octets();
            format!("{}_{}_{}_{}", o[0], o[1], o[2], o[3])
        }
        IpAddr::V6(a) => a
            .segments()
            .iter()
            .map(|g| format!("{g:x}"))
            .collect::<Vec<_>>()
            .join("_"),
    };
    format!("aff_{name}_{addr}_{}_{timeout}", t.addr.port())
}

fn render_service(s: &ServicePlan, r: &mut Ruleset) {
    let f = Family::of(s.vip);
    let (ip, ty) = (f.ip(), f.addr_type());
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
                "  set {name} {{ type {ty}; flags dynamic,timeout; timeout {t}s; size 65535; }}"
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
                    "jhash {ip} saddr mod {} seed 0x{:x} map {{ {} }}",
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
                // `ADDR:PORT`, `[ADDR]:PORT` for IPv6.
                let _ = writeln!(
                    out,
                    "    meta l4proto {} dnat to {}",
                    proto(s.protocol),
                    t.addr
                );
            }
            Some(p) if same_port => {
                let _ = writeln!(out, "    dnat {ip} to {p}");
            }
            Some(p) => {
                let _ = writeln!(
                    out,
                    "    meta l4proto {} dnat {ip} to {p}",
                    proto(s.protocol)
                );
            }
        }
        let _ = writeln!(out, "  }}");
        return;
    }
    let _ = writeln!(out, "  chain {svc} {{");
    for j in 0..s.targets.len() {
        if let Some(name) = aff(j) {
            let _ = writeln!(out, "    {ip} saddr @{name} goto {}", ep(j));
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
                    "    jhash {ip} saddr mod {} seed 0x{:x} vmap {{ {} }}",
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
            let _ = writeln!(out, "    update @{name} {{ {ip} saddr }}");
        }
        let _ = writeln!(
            out,
            "    meta l4proto {} dnat to {}",
            proto(s.protocol),
            t.addr
        );
        let _ = writeln!(out, "  }}");
    }
}

/// The tables for `d` (kernel services that carry traffic): IPv4 services in `ip lbd`, IPv6
/// ones in `ip6 lbd` ([`Ruleset::v6`]).
pub fn build(d: &Desired) -> Ruleset {
    let mut r = build_family(d, Family::V4);
    let r6 = build_family(d, Family::V6);
    r.counters.extend(r6.counters);
    r.v6 = Part {
        body: r6.body,
        chains: r6.chains,
        sets: r6.sets,
        maps: r6.maps,
    };
    r
}

fn build_family(d: &Desired, f: Family) -> Ruleset {
    let mut r = Ruleset::default();
    let carried: Vec<&ServicePlan> = d
        .services
        .iter()
        .filter(|s| s.dataplane == Dataplane::Kernel && s.mode != Mode::Withdrawn)
        .filter(|s| !s.targets.is_empty() && Family::of(s.vip) == f)
        .collect();
    for s in &carried {
        render_service(s, &mut r);
    }
    accounting(d, f, &mut r);
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
                "  chain {hook} {{\n    type nat hook {hook} priority {prio}; policy accept;\n    {} daddr . meta l4proto . th dport vmap {{ {dispatch} }}\n  }}",
                f.ip()
            );
        }
    }
    r
}

/// The one-transaction script taking the tables from `prev` (what lbd applied last; `None` when
/// unknown, e.g. at start) to `next`. With `prev` known a table is flushed (rules go, set
/// contents stay: persistence survives health changes) and vanished chains and sets deleted;
/// otherwise it is deleted and recreated. The IPv6 table is written only while it has rules
/// (and deleted when it loses them; at start the applier deletes any, [`render_delete6`]).
pub fn script(prev: Option<&Ruleset>, next: &Ruleset) -> String {
    let mut out = String::new();
    let v4 = |r: &Ruleset| Part {
        body: r.body.clone(),
        chains: r.chains.clone(),
        sets: r.sets.clone(),
        maps: r.maps.clone(),
    };
    let is_v6 = |c: &CounterKey| !c.backend.is_ipv4();
    let gone = |six: bool| -> Vec<&String> {
        prev.map(|p| {
            p.counters
                .iter()
                .filter(|(c, k)| !next.counters.contains_key(*c) && is_v6(k) == six)
                .map(|(c, _)| c)
                .collect()
        })
        .unwrap_or_default()
    };
    table_script(
        &mut out,
        TABLE,
        prev.map(v4).as_ref(),
        &v4(next),
        &gone(false),
    );
    let prev6 = prev.map(|p| &p.v6).filter(|p| !p.body.is_empty());
    if next.v6.body.is_empty() {
        if prev6.is_some() {
            out.push_str(&render_delete6());
        }
    } else {
        table_script(&mut out, TABLE6, prev6, &next.v6, &gone(true));
    }
    out
}

/// The commands taking one table from `prev` to `next` (see [`script`]); `gone` are the
/// counters of `prev` in this table that `next` lacks.
fn table_script(out: &mut String, table: &str, prev: Option<&Part>, next: &Part, gone: &[&String]) {
    match prev {
        None => {
            let _ = write!(
                out,
                "table {table}\ndelete table {table}\ntable {table} {{\n"
            );
            out.push_str(&next.body);
            out.push_str("}\n");
        }
        Some(p) => {
            let _ = writeln!(out, "flush table {table}");
            // `flush table` keeps set and map elements: the counter maps are emptied and
            // refilled (a counter cannot be deleted while an element refers to it).
            for m in p.maps.intersection(&next.maps) {
                let _ = writeln!(out, "flush map {table} {m}");
            }
            let _ = writeln!(out, "table {table} {{");
            out.push_str(&next.body);
            out.push_str("}\n");
            for c in p.chains.difference(&next.chains) {
                let _ = writeln!(out, "delete chain {table} {c}");
            }
            for s in p.sets.difference(&next.sets) {
                let _ = writeln!(out, "delete set {table} {s}");
            }
            for m in p.maps.difference(&next.maps) {
                let _ = writeln!(out, "delete map {table} {m}");
            }
            for c in gone {
                let _ = writeln!(out, "delete counter {table} {c}");
            }
        }
    }
}

/// The whole nft script for `d` from an unknown state: creates the table if missing, deletes
/// it, and recreates it, all in one transaction.
pub fn render(d: &Desired) -> String {
    script(None, &build(d))
}

/// The script that removes the IPv6 table if it exists (the applier's first apply starts with
/// it: a table left by an earlier run whose IPv6 services are gone).
pub fn render_delete6() -> String {
    format!("table {TABLE6}\ndelete table {TABLE6}\n")
}

/// The script that removes the tables (used on exit).
pub fn render_delete() -> String {
    format!("table {TABLE}\ndelete table {TABLE}\ntable {TABLE6}\ndelete table {TABLE6}\n")
}
