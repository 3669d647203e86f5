//! `[lb.vrrp-instance.*]`, `[lb.vrrp-script.*]`, `[lb.sync-group.*]` and the tracking and notify
//! keys of every VRRP instance: floating addresses as keepalived's `vrrp_instance`,
//! `vrrp_script`, `vrrp_sync_group`, `track_*` and `notify_*` describe them.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use crate::model::*;
use crate::wire::{self, S};

use super::values::{Validator, span};

/// Shortest and longest advertisement interval (the 12-bit centisecond field of VRRPv3).
const MIN_INTERVAL: Duration = Duration::from_millis(10);
const MAX_INTERVAL: Duration = Duration::from_millis(40950);

/// Rounds an advertisement interval up to whole centiseconds.
pub(super) fn centis(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis().div_ceil(10) as u64 * 10)
}

/// The tracking and notify keys, as `[lb.vrrp]` and every instance carry them.
pub(super) struct Extras<'a> {
    pub(super) track_script: &'a [S<wire::TrackRef>],
    pub(super) track_interface: &'a [S<wire::TrackRef>],
    pub(super) notify_master: &'a Option<S<Vec<String>>>,
    pub(super) notify_backup: &'a Option<S<Vec<String>>>,
    pub(super) notify_fault: &'a Option<S<Vec<String>>>,
}

fn track_parts(r: &wire::TrackRef) -> (&str, Option<i64>) {
    match r {
        wire::TrackRef::Name(n) => (n, None),
        wire::TrackRef::Full(f) => (&f.name, f.weight),
    }
}

impl Validator {
    /// `[lb.vrrp-script.*]`.
    pub(super) fn track_scripts(
        &mut self,
        w: &BTreeMap<S<String>, wire::VrrpScript>,
    ) -> Vec<TrackScript> {
        let mut out = Vec::new();
        for (name, s) in w {
            let interval = self.duration(
                &s.interval,
                Duration::from_secs(1),
                Duration::from_millis(100),
                Duration::from_secs(3600),
                "vrrp-script interval",
            );
            let timeout = self.duration(
                &s.timeout,
                interval,
                Duration::from_millis(10),
                Duration::from_secs(3600),
                "vrrp-script timeout",
            );
            if timeout > interval
                && let Some(t) = &s.timeout
            {
                self.d.push(
                    span(t),
                    format!(
                        "vrrp-script `{}` timeout `{}` is longer than its interval",
                        name.get_ref(),
                        t.get_ref()
                    ),
                    "make `timeout` at most `interval` (a run must end before the next starts)",
                );
            }
            let cmd = s.command.get_ref();
            let shell = s.shell.unwrap_or(false);
            let argv = if shell {
                if cmd.len() != 1 {
                    self.d.push(
                        span(&s.command),
                        format!(
                            "vrrp-script `{}` with `shell = true` has {} command strings",
                            name.get_ref(),
                            cmd.len()
                        ),
                        "give the shell one string, e.g. command = [\"pidof haproxy || exit 1\"]",
                    );
                }
                vec!["/bin/sh".into(), "-c".into(), cmd.join(" ")]
            } else {
                self.argv(&s.command, "vrrp-script command");
                cmd.clone()
            };
            out.push(TrackScript {
                name: name.get_ref().clone(),
                argv,
                interval,
                timeout: timeout.min(interval),
                weight: self.int(&s.weight, 0, -254, 254, "vrrp-script weight") as i32,
                rise: self.int(&s.rise, 1, 1, 100, "vrrp-script rise") as u32,
                fall: self.int(&s.fall, 1, 1, 100, "vrrp-script fall") as u32,
            });
        }
        out
    }

    /// A command given as an argv list: not empty, the program an absolute path.
    fn argv(&mut self, c: &S<Vec<String>>, what: &str) -> Option<Vec<String>> {
        let v = c.get_ref();
        match v.first() {
            None => {
                self.d.push(
                    span(c),
                    format!("{what} is empty"),
                    "give the program and its arguments, e.g. [\"/usr/bin/pidof\", \"haproxy\"]",
                );
                None
            }
            Some(p) if !p.starts_with('/') => {
                self.d.push(
                    span(c),
                    format!("{what} program `{p}` is not an absolute path"),
                    format!(
                        "write the full path, e.g. \"/usr/bin/{}\" (commands run without PATH or a shell)",
                        p.rsplit('/').next().unwrap_or(p)
                    ),
                );
                None
            }
            Some(_) => Some(v.clone()),
        }
    }

    /// The tracking and notify keys of one instance.
    pub(super) fn extras(&mut self, e: &Extras<'_>, scripts: &[TrackScript]) -> (Tracking, Notify) {
        let mut t = Tracking::default();
        for r in e.track_script {
            let (name, weight) = track_parts(r.get_ref());
            match scripts.iter().find(|s| s.name == name) {
                Some(s) => {
                    let weight = match weight {
                        Some(w) if !(-254..=254).contains(&w) => {
                            self.d.push(
                                span(r),
                                format!("track-script weight `{w}` is out of range"),
                                "use a whole number from -254 to 254 (0 = fault while it fails)",
                            );
                            0
                        }
                        Some(w) => w as i32,
                        None => s.weight,
                    };
                    t.scripts.push(Track {
                        name: name.to_owned(),
                        weight,
                    });
                }
                None => self.d.push(
                    span(r),
                    format!("track-script `{name}` is not defined"),
                    format!("add [lb.vrrp-script.{name}] with `command`, or fix the name"),
                ),
            }
        }
        for r in e.track_interface {
            let (name, weight) = track_parts(r.get_ref());
            if name.is_empty() || name.len() > 15 || name.contains(['/', ' ']) {
                self.d.push(
                    span(r),
                    format!("track-interface `{name}` is not an interface name"),
                    "give the interface's name, e.g. \"eth0\" (1-15 characters)",
                );
                continue;
            }
            let weight = weight.unwrap_or(0);
            if !(-254..=254).contains(&weight) {
                self.d.push(
                    span(r),
                    format!("track-interface weight `{weight}` is out of range"),
                    "use a whole number from -254 to 254 (0 = fault while the link is down)",
                );
            }
            t.interfaces.push(Track {
                name: name.to_owned(),
                weight: weight.clamp(-254, 254) as i32,
            });
        }
        let mut cmd =
            |c: &Option<S<Vec<String>>>, what: &str| c.as_ref().and_then(|c| self.argv(c, what));
        let n = Notify {
            master: cmd(e.notify_master, "notify-master"),
            backup: cmd(e.notify_backup, "notify-backup"),
            fault: cmd(e.notify_fault, "notify-fault"),
        };
        (t, n)
    }

    /// `[lb.vrrp-instance.*]`; `default` is the `[lb.vrrp]` instance (vrid, interface, IPv6) and
    /// `services` the balanced services (their VIPs may not float elsewhere).
    pub(super) fn float_instances(
        &mut self,
        w: &BTreeMap<S<String>, wire::VrrpInstance>,
        scripts: &[TrackScript],
        default: Option<(u8, Option<String>, bool)>,
        services: &[VirtualService],
    ) -> Vec<FloatInstance> {
        let mut out: Vec<FloatInstance> = Vec::new();
        let mut seen_addr: BTreeMap<IpAddr, String> = BTreeMap::new();
        for (name, i) in w {
            let n = self.label(name, "vrrp-instance name");
            if n == SERVICE_INSTANCE {
                self.d.push(
                    span(name),
                    format!("vrrp-instance `{n}` has the name of the [lb.vrrp] instance"),
                    "choose another name (sync groups call [lb.vrrp] `vrrp`)",
                );
            }
            let vrid = self.int(&Some(i.vrid.clone()), 1, 1, 255, "vrid") as u8;
            let iface = i.interface.get_ref().trim().to_owned();
            let (addresses, v6) = self.float_addresses(&n, vrid, i, services, &mut seen_addr);
            let clash = out
                .iter()
                .find(|o| o.vrid == vrid && o.interface == iface && o.is_ipv6() == v6)
                .map(|o| format!("vrrp-instance `{}`", o.name))
                .or_else(|| {
                    default.as_ref().and_then(|(v, di, d6)| {
                        (v6 == *d6 && *v == vrid && di.as_deref().is_none_or(|d| d == iface))
                            .then(|| "[lb.vrrp]".to_owned())
                    })
                });
            if let Some(other) = clash {
                self.d.push(
                    span(&i.vrid),
                    format!("vrid `{vrid}` on `{iface}` is already used by {other}"),
                    "give each VRRP instance of one address family on one interface its own vrid (1-255); [lb.vrrp] without `interface` (there or in [lb]) counts as on every interface",
                );
            }
            let (peers, source) = self.float_peers(&i.peers, i.source.as_ref(), v6, false);
            let interval = self.duration(
                &i.interval,
                Duration::from_secs(1),
                MIN_INTERVAL,
                MAX_INTERVAL,
                "vrrp interval",
            );
            let (tracking, notify) = self.extras(
                &Extras {
                    track_script: &i.track_script,
                    track_interface: &i.track_interface,
                    notify_master: &i.notify_master,
                    notify_backup: &i.notify_backup,
                    notify_fault: &i.notify_fault,
                },
                scripts,
            );
            out.push(FloatInstance {
                name: n,
                vrid,
                priority: self.int(&i.priority, 100, 1, 255, "priority") as u8,
                preempt: i.preempt.unwrap_or(true),
                interval: centis(interval),
                interface: iface,
                addresses,
                peers,
                source,
                tracking,
                notify,
            });
        }
        out
    }

    /// A floating address that is also a host's `ip` (the seed LAN's main owns 192.168.10.1):
    /// valid (the name keeps resolving to it), but lbd adds and removes it, so it must leave
    /// that machine's own interface configuration. Said as a warning.
    pub(super) fn floating_host_addresses(
        &mut self,
        w: &BTreeMap<S<String>, wire::VrrpInstance>,
        hosts: &[Host],
    ) {
        for i in w.values() {
            for a in i.addresses.get_ref() {
                let ip = a.get_ref().split('/').next().unwrap_or("").trim();
                let Ok(ip) = ip.parse::<IpAddr>() else {
                    continue;
                };
                let owns = |h: &&Host| match ip {
                    IpAddr::V4(v4) => h.ips.contains(&v4),
                    IpAddr::V6(v6) => h.ipv6.contains(&v6),
                };
                if let Some(h) = hosts.iter().find(owns) {
                    self.warnings.push(
                        span(a),
                        format!(
                            "floating address `{ip}` is also host `{}`'s address: lbd adds it on the VRRP master and removes it everywhere else",
                            h.name
                        ),
                        format!(
                            "take {ip} out of {}'s own interface configuration and give each node an address of its own there to send VRRP from",
                            h.name
                        ),
                    );
                }
            }
        }
    }

    /// `[lb.sync-group.*]`: every member exists and is in one group only.
    pub(super) fn sync_groups(
        &mut self,
        w: &BTreeMap<S<String>, wire::SyncGroup>,
        instances: &[FloatInstance],
        has_default: bool,
    ) -> Vec<SyncGroup> {
        let mut member_of: BTreeMap<String, String> = BTreeMap::new();
        let mut out = Vec::new();
        for (name, g) in w {
            let mut members = Vec::new();
            if g.instances.get_ref().is_empty() {
                self.d.push(
                    span(&g.instances),
                    format!("sync-group `{}` has no instances", name.get_ref()),
                    "list the instances that move together, e.g. instances = [\"vrrp\", \"gateway\"]",
                );
            }
            for m in g.instances.get_ref() {
                let m_name = m.get_ref().trim().to_ascii_lowercase();
                let known = instances.iter().any(|i| i.name == m_name)
                    || (has_default && m_name == SERVICE_INSTANCE);
                if !known {
                    self.d.push(
                        span(m),
                        format!("sync-group member `{m_name}` is not a VRRP instance"),
                        "name a [lb.vrrp-instance.NAME], or `vrrp` for the [lb.vrrp] instance",
                    );
                    continue;
                }
                if let Some(o) = member_of.insert(m_name.clone(), name.get_ref().clone()) {
                    self.d.push(
                        span(m),
                        format!("instance `{m_name}` is already in sync-group `{o}`"),
                        "put each instance in one sync group only",
                    );
                    continue;
                }
                members.push(m_name);
            }
            out.push(SyncGroup {
                name: name.get_ref().clone(),
                instances: members,
            });
        }
        out
    }
}
