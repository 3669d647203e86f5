//! The kernel data plane: one nftables table (`table ip lbd`) owned by lbd, rendered from the
//! desired state and replaced in a single `nft -f -` transaction (add, delete, recreate: atomic,
//! so a failed apply leaves the previous table in force). The shape is kube-proxy's nftables mode:
//! a verdict map keyed `daddr . l4proto . dport` jumps to a per-service chain; that chain picks a
//! per-backend chain (numgen for rr/wrr, jhash over a Maglev table for sh); the backend chain
//! DNATs. Source persistence is a per-backend set of client addresses with a timeout. No
//! masquerade: backends route back through the balancer (NAT style).

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};

use shared::{Dataplane, Protocol, Scheduler};

use crate::desired::{Desired, Mode, ServicePlan};
use crate::sched;

/// The table's family and name.
pub const TABLE: &str = "ip lbd";

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
}

fn proto(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    }
}

/// Collapses `slots` (slot -> endpoint index) into `a-b : goto chain` vmap elements.
fn vmap_elements(slots: &[usize], chain: impl Fn(usize) -> String) -> String {
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
        out.push(format!("{key} : goto {}", chain(slots[i])));
        i = j + 1;
    }
    out.join(", ")
}

fn render_service(s: &ServicePlan, out: &mut String) {
    let svc = format!("svc{}", s.index);
    let ep = |j: usize| format!("svc{}_ep{j}", s.index);
    let _ = writeln!(out, "  # service {} {}:{}", s.name, s.vip, s.port);
    if let Some(t) = s.persistence {
        for j in 0..s.targets.len() {
            let _ = writeln!(
                out,
                "  set {svc}_aff{j} {{ type ipv4_addr; flags dynamic,timeout; timeout {}s; size 65535; }}",
                t.as_secs().max(1)
            );
        }
    }
    let _ = writeln!(out, "  chain {svc} {{");
    if s.persistence.is_some() {
        for j in 0..s.targets.len() {
            let _ = writeln!(out, "    ip saddr @{svc}_aff{j} goto {}", ep(j));
        }
    }
    let n = s.targets.len();
    if n == 1 {
        let _ = writeln!(out, "    goto {}", ep(0));
    } else {
        match s.scheduler {
            Scheduler::Sh => {
                let keys: Vec<String> = s.targets.iter().map(|t| t.addr.to_string()).collect();
                let w: Vec<u32> = s.targets.iter().map(|t| t.weight).collect();
                let table = sched::maglev(&keys, &w, sched::maglev_size(n));
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
        let _ = writeln!(out, "  chain {} {{", ep(j));
        if s.persistence.is_some() {
            let _ = writeln!(out, "    update @{svc}_aff{j} {{ ip saddr }}");
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

/// The whole nft script for `d` (kernel services only): creates the table if missing, deletes
/// it, and recreates it, all in one transaction.
pub fn render(d: &Desired) -> String {
    let mut out = format!("table {TABLE}\ndelete table {TABLE}\ntable {TABLE} {{\n");
    let carried: Vec<&ServicePlan> = d
        .services
        .iter()
        .filter(|s| s.dataplane == Dataplane::Kernel && s.mode != Mode::Withdrawn)
        .filter(|s| !s.targets.is_empty())
        .collect();
    for s in &carried {
        render_service(s, &mut out);
    }
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
            let _ = writeln!(
                out,
                "  chain {hook} {{\n    type nat hook {hook} priority {prio}; policy accept;\n    ip daddr . meta l4proto . th dport vmap {{ {dispatch} }}\n  }}"
            );
        }
    }
    out.push_str("}\n");
    out
}

/// The script that removes the table (used on exit).
pub fn render_delete() -> String {
    format!("table {TABLE}\ndelete table {TABLE}\n")
}

/// Runs `nft -f -` with `script` on stdin.
pub fn apply(nft: &str, script: &str) -> Result<(), NftError> {
    let mut child = match Command::new(nft)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(NftError::Missing(format!("{nft}: {e}")));
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(NftError::Refused(format!("{}: {}", out.status, err.trim())))
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
            }],
        }
    }

    #[test]
    fn rr_two_backends() {
        let s = render(&plan(Scheduler::Rr, &[1, 1], false));
        assert!(s.starts_with("table ip lbd\ndelete table ip lbd\ntable ip lbd {\n"));
        assert!(s.contains("numgen inc mod 2 vmap { 0 : goto svc0_ep0, 1 : goto svc0_ep1 }"));
        assert!(s.contains("meta l4proto tcp dnat to 192.168.10.10:80"));
        assert!(s.contains("meta l4proto tcp dnat to 192.168.10.11:80"));
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
                "numgen inc mod 4 vmap { 0-1 : goto svc0_ep0, 2 : goto svc0_ep1, 3 : goto svc0_ep0 }"
            ),
            "{s}"
        );
    }

    #[test]
    fn sh_uses_jhash_over_a_maglev_table() {
        let s = render(&plan(Scheduler::Sh, &[1, 1], false));
        assert!(s.contains("jhash ip saddr mod 251 seed"), "{s}");
    }

    #[test]
    fn persistence_sets_and_updates() {
        let s = render(&plan(Scheduler::Rr, &[1, 1], true));
        assert!(s.contains("set svc0_aff0 { type ipv4_addr; flags dynamic,timeout; timeout 300s;"));
        assert!(s.contains("ip saddr @svc0_aff1 goto svc0_ep1"));
        assert!(s.contains("update @svc0_aff0 { ip saddr }"));
    }

    #[test]
    fn withdrawn_and_proxy_services_get_no_rules() {
        let mut d = plan(Scheduler::Rr, &[1, 1], false);
        d.services[0].mode = Mode::Withdrawn;
        d.services[0].targets.clear();
        assert_eq!(
            render(&d),
            "table ip lbd\ndelete table ip lbd\ntable ip lbd {\n}\n"
        );
        let mut d = plan(Scheduler::Rr, &[1, 1], false);
        d.services[0].dataplane = Dataplane::Proxy;
        assert!(!render(&d).contains("chain"));
    }

    #[test]
    fn one_backend_is_a_plain_goto() {
        let s = render(&plan(Scheduler::Rr, &[1], false));
        assert!(s.contains("    goto svc0_ep0\n"));
    }

    #[test]
    fn missing_nft_is_named() {
        let e = apply("/nonexistent/nft", "").unwrap_err();
        assert!(matches!(e, NftError::Missing(_)));
        assert!(e.to_string().contains("nftables"), "{e}");
    }
}
