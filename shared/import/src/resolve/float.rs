//! keepalived's VRRP instances, scripts and sync groups to `[lb.vrrp]` and the floating tables:
//! the instance holding a `virtual_server`'s address is `[lb.vrrp]` (as one instance always
//! was); an instance whose addresses serve no `virtual_server` is a `[lb.vrrp-instance.NAME]`.
//! An instance of IPv6 addresses holding IPv6 virtual servers' addresses is `[lb.vrrp]` too when
//! no IPv4 instance holds service VIPs: lbd then runs it over IPv6 (its family follows the
//! service VIPs, `hostfile::service_vrrp_ipv6`), as keepalived ran it.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::emit::Doc;
use crate::emit_vrrp::{DExtras, DGroup, DInstance, DScript};
use crate::facts::{Raw, RawCommand, RawInstance, RawTrack};
use crate::source::Unsupported;

use super::state::R;

/// The facts with `[lb.vrrp]` chosen among the instances.
pub(crate) struct Split {
    /// `raw` with `vrrp` and `vips` set from the service instance.
    pub(crate) raw: Raw,
    /// The `[lb.vrrp]` instance.
    pub(crate) service: Option<RawInstance>,
    /// The floating ones.
    pub(crate) floats: Vec<RawInstance>,
    /// Instances neither: listed as not imported.
    pub(crate) dropped: Vec<Unsupported>,
}

/// Picks `[lb.vrrp]`: the first instance holding an IPv4 service VIP, else the first holding an
/// IPv6 one (the host file then has IPv6 service VIPs only, and `[lb.vrrp]` runs over IPv6),
/// else the first with no addresses at all (a VRRP instance for services to come); the ones
/// with addresses and no service VIP float.
pub(crate) fn split(raw: &Raw) -> Split {
    let mut out = Raw {
        instances: Vec::new(),
        ..raw.clone()
    };
    let vips: Vec<Ipv4Addr> = raw
        .services
        .iter()
        .filter_map(|s| match s.vip.ip() {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        })
        .collect();
    let vips6: Vec<Ipv6Addr> = raw
        .services
        .iter()
        .filter_map(|s| match s.vip.ip() {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        })
        .collect();
    let serves4 = |i: &RawInstance| i.vips.iter().any(|v| vips.contains(&v.ip));
    let serves6 = |i: &RawInstance| i.vips6.iter().any(|v| vips6.contains(&v.ip));
    let serves = |i: &RawInstance| serves4(i) || serves6(i);
    // Addresses of either family (an instance of IPv6 addresses floats them over IPv6).
    let has = |i: &RawInstance| !i.vips.is_empty() || !i.vips6.is_empty();
    let chosen = raw
        .instances
        .iter()
        .position(serves4)
        .or_else(|| raw.instances.iter().position(serves6))
        .or_else(|| raw.instances.iter().position(|i| !has(i)));
    // The IPv4 instance is [lb.vrrp] whenever one holds service VIPs (lbd's rule for service VIPs
    // of both families): an IPv6 instance holding service VIPs beside it is not imported.
    let v4_chosen = chosen.is_some_and(|n| serves4(&raw.instances[n]));
    let mut service = None;
    let mut floats = Vec::new();
    let mut dropped = Vec::new();
    for (n, i) in raw.instances.iter().enumerate() {
        if Some(n) == chosen {
            if out.vrrp.is_none() {
                out.vrrp = Some(i.vrrp.clone());
                out.vips.extend(i.vips.iter().cloned());
                service = Some(i.clone());
            } else {
                dropped.push(i.vrrp.src.unsupported(
                    format!("vrrp_instance {}", i.name),
                    "a second VRRP instance for services from another input: the host file has one ([lb.vrrp])",
                ));
            }
        } else if has(i) && !serves(i) {
            floats.push(i.clone());
        } else if !has(i) {
            dropped.push(i.vrrp.src.unsupported(
                format!("vrrp_instance {}", i.name),
                "a vrrp_instance without virtual_ipaddress besides [lb.vrrp]: nothing to float",
            ));
        } else if v4_chosen && serves6(i) && !serves4(i) {
            dropped.push(i.vrrp.src.unsupported(
                format!("vrrp_instance {}", i.name),
                "an IPv6 vrrp_instance holding service VIPs beside the IPv4 one: with service VIPs of both families [lb.vrrp] runs over IPv4 and the IPv6 VIPs follow its state (a keepalived peer must move them with its IPv4 instance)",
            ));
        } else {
            dropped.push(i.vrrp.src.unsupported(
                format!("vrrp_instance {}", i.name),
                "a second vrrp_instance holding service VIPs: the services float with one instance ([lb.vrrp]); put them in one instance",
            ));
        }
    }
    Split {
        raw: out,
        service,
        floats,
        dropped,
    }
}

/// A host-file name (one DNS label) for a keepalived instance name: `VI_1` -> `vi-1`.
fn label(name: &str, n: usize) -> String {
    let s: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(63)
        .collect();
    let s = s.trim_matches('-');
    if s.is_empty() {
        format!("instance-{n}")
    } else {
        s.to_owned()
    }
}

/// `/bin/sh -c LINE` for a notify command that needs a shell.
fn notify_argv(c: &RawCommand) -> Vec<String> {
    if c.shell {
        vec!["/bin/sh".into(), "-c".into(), c.argv.join(" ")]
    } else {
        c.argv.clone()
    }
}

fn tracks(v: &[RawTrack]) -> Vec<(String, Option<i64>)> {
    v.iter().map(|t| (t.name.clone(), t.weight)).collect()
}

/// Tracking and notify keys, with a note for each command given to a shell.
fn extras(i: &RawInstance, notes: &mut Vec<String>) -> DExtras {
    let mut e = DExtras {
        scripts: tracks(&i.track_scripts),
        interfaces: tracks(&i.track_ifaces),
        notify: [None, None, None],
    };
    for ((slot, c), k) in
        e.notify
            .iter_mut()
            .zip(&i.notify)
            .zip(["notify_master", "notify_backup", "notify_fault"])
    {
        if let Some(c) = c {
            if let Some(why) = &c.why {
                notes.push(format!("{k} ({}) runs in /bin/sh -c: {why}", c.src));
            }
            *slot = Some(notify_argv(c));
        }
    }
    e
}

fn interval(ms: Option<u64>, notes: &mut Vec<String>) -> Option<u64> {
    ms.map(|i| {
        let c = i.clamp(10, 40_950).div_ceil(10) * 10;
        if c != i {
            notes.push(format!("advert_int {i} ms adjusted to {c} ms"));
        }
        c
    })
}

impl R<'_> {
    /// The floating tables, and `[lb.vrrp]`'s tracking and notify keys.
    pub(super) fn floats(&mut self, doc: &mut Doc, split: &Split) {
        self.un.extend(split.dropped.iter().cloned());
        // keepalived names -> host-file names (sync groups name `[lb.vrrp]` `vrrp`).
        let mut names: HashMap<&str, String> = HashMap::new();
        if let (Some(v), Some(s)) = (doc.vrrp.as_mut(), &split.service) {
            v.extras = extras(s, &mut v.notes);
            names.insert(s.name.as_str(), "vrrp".to_owned());
            if !s.vips6.is_empty() {
                v.notes.push("IPv6 virtual_ipaddress: VRRP over IPv6 (ff02::12 from the interface's link-local address), as lbd runs [lb.vrrp] when every service VIP is IPv6".to_owned());
            }
            let served: Vec<IpAddr> = self.raw.services.iter().map(|x| x.vip.ip()).collect();
            for a in s
                .vips6
                .iter()
                .filter(|a| !served.contains(&IpAddr::V6(a.ip)))
            {
                self.un.push(a.src.unsupported(
                    a.text.clone(),
                    "a VIP without a virtual_server: lbd holds the VIPs of its services only",
                ));
            }
        }
        for (n, i) in split.floats.iter().enumerate() {
            let mut name = label(&i.name, n + 1);
            let mut k = 2;
            while name == "vrrp" || names.values().any(|x| *x == name) {
                name = format!("{}-{k}", label(&i.name, n + 1));
                k += 1;
            }
            let mut notes = vec![format!("from vrrp_instance {} at {}", i.name, i.vrrp.src)];
            let mut addresses = Vec::new();
            for a in &i.vips {
                if let Some(d) = &a.dev
                    && i.vrrp.interface.as_ref() != Some(d)
                {
                    self.un.push(a.src.unsupported(
                        format!("{} dev {d}", a.ip),
                        "an address on another interface than the instance's: it goes on the instance's interface",
                    ));
                }
                let p = a.prefix.unwrap_or_else(|| {
                    notes.push(self.guess(format!(
                        "guessed: {} has no prefix: /32, as keepalived adds it",
                        a.ip
                    )));
                    32
                });
                addresses.push(format!("{}/{p}", a.ip));
            }
            for a in &i.vips6 {
                if let Some(d) = &a.dev
                    && i.vrrp.interface.as_ref() != Some(d)
                {
                    self.un.push(a.src.unsupported(
                        format!("{} dev {d}", a.ip),
                        "an address on another interface than the instance's: it goes on the instance's interface",
                    ));
                }
                let p = a.prefix.unwrap_or_else(|| {
                    notes.push(self.guess(format!(
                        "guessed: {} has no prefix: /128, as keepalived adds it",
                        a.ip
                    )));
                    128
                });
                addresses.push(format!("{}/{p}", a.ip));
            }
            if !i.vips6.is_empty() {
                notes.push("IPv6 addresses: VRRP over IPv6 (ff02::12 from the interface's link-local address)".to_owned());
            }
            let interval_ms = interval(i.vrrp.interval_ms, &mut notes);
            let extras = extras(i, &mut notes);
            doc.floats.instances.push(DInstance {
                src: Some(i.vrrp.src.clone()),
                notes,
                name: name.clone(),
                vrid: i.vrrp.vrid.unwrap_or(0),
                interface: i.vrrp.interface.clone(),
                addresses,
                priority: i.vrrp.priority.filter(|p| *p > 0),
                preempt: i.vrrp.preempt,
                interval_ms,
                peers: i.vrrp.peers.iter().map(ToString::to_string).collect(),
                source: i.vrrp.source.map(|s| s.to_string()),
                extras,
            });
            names.insert(i.name.as_str(), name);
        }
        for s in &self.raw.scripts {
            let Some(c) = &s.command else { continue };
            let mut notes = vec![format!("from vrrp_script {} at {}", s.name, s.src)];
            if let Some(why) = &c.why {
                notes.push(format!("run by /bin/sh -c: {why}"));
            }
            let timeout_ms = match (s.timeout_ms, s.interval_ms.unwrap_or(1000)) {
                (Some(t), i) if t > i => {
                    notes.push(format!(
                        "timeout {t} ms cut to the interval ({i} ms): a run ends before the next starts"
                    ));
                    Some(i)
                }
                (t, _) => t,
            };
            doc.floats.scripts.push(DScript {
                src: Some(s.src.clone()),
                notes,
                name: s.name.clone(),
                command: c.argv.clone(),
                shell: c.shell,
                interval_ms: s.interval_ms,
                timeout_ms,
                weight: s.weight,
                rise: s.rise,
                fall: s.fall,
            });
        }
        for g in &self.raw.groups {
            let mut instances = Vec::new();
            for m in &g.members {
                match names.get(m.as_str()) {
                    Some(n) => instances.push(n.clone()),
                    None => self.un.push(g.src.unsupported(
                        format!("vrrp_sync_group {} member {m}", g.name),
                        "not an imported vrrp_instance",
                    )),
                }
            }
            if instances.is_empty() {
                continue;
            }
            doc.floats.groups.push(DGroup {
                src: Some(g.src.clone()),
                notes: vec![format!("from vrrp_sync_group {} at {}", g.name, g.src)],
                name: g.name.clone(),
                instances,
            });
        }
    }
}
