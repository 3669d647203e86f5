//! The manager task (IO shell around [`super::decide`]): instance tasks, script runners, the
//! link poll, floating addresses and notify commands.

use std::collections::BTreeMap;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use hostfile::{LbView, Notify, TrackScript, Tracking};
use ipnet::IpNet;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::decide::{self, Effective, Member, Tracked};
use super::hold::{remove_present, take};
use super::{FloatError, locate};
use crate::desired::Role;
use crate::health::Tracker;
use crate::metrics::Metrics;
use crate::vip::Placement;
use crate::vrrp::{self, Control, State};

/// How long a notify command may run before it is killed.
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);
/// How often tracked interfaces' links are read.
pub const LINK_POLL: Duration = Duration::from_millis(200);

/// The running instances: the manager task, and the `[lb.vrrp]` instance's role (always
/// master without `[lb.vrrp]`).
#[derive(Debug)]
pub struct Float {
    /// Ends once `stop` is cancelled and everything is given up.
    pub task: JoinHandle<()>,
    /// The role of the instance holding the service VIPs.
    pub role: watch::Receiver<Role>,
    /// Every instance as `lbd status` shows it.
    pub status: watch::Receiver<Vec<InstanceStatus>>,
}

/// One instance as `lbd status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InstanceStatus {
    /// `vrrp` or the `[lb.vrrp-instance.NAME]`.
    pub name: String,
    /// Virtual router id.
    pub vrid: u8,
    /// Interface.
    pub interface: String,
    /// `MASTER`, `BACKUP` or `FAULT`.
    pub state: &'static str,
    /// Priority advertised now (tracking included).
    pub priority: u8,
    /// Priority configured.
    pub configured_priority: u8,
    /// The addresses it floats (the service VIPs for `vrrp`).
    pub addresses: Vec<String>,
}

fn word(s: State) -> &'static str {
    match s {
        State::Master => "MASTER",
        State::Backup => "BACKUP",
        State::Fault => "FAULT",
    }
}

/// keepalived-exporter's numbering of states.
fn state_number(s: State) -> i64 {
    match s {
        State::Backup => 1,
        State::Master => 2,
        State::Fault => 3,
    }
}

struct Slot {
    name: String,
    vrid: u8,
    iface: String,
    addresses: Vec<String>,
    base: u8,
    tracking: Tracking,
    /// Floating addresses and where they go (`None` for `[lb.vrrp]`).
    float: Option<(Vec<IpNet>, Placement)>,
    ctl: mpsc::UnboundedSender<Control>,
    notify: mpsc::UnboundedSender<State>,
    task: JoinHandle<()>,
    state: State,
    sent: Effective,
    held: bool,
}

/// Runs `argv` (no shell, stdin/stdout/stderr to /dev/null) with `env` added; killed after
/// `timeout` (a timeout is an error).
async fn run_bounded(
    argv: &[String],
    timeout: Duration,
    env: &[(&str, &str)],
) -> std::io::Result<ExitStatus> {
    let Some((prog, args)) = argv.split_first() else {
        return Err(std::io::Error::other("empty command"));
    };
    let mut child = tokio::process::Command::new(prog)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(r) => r,
        Err(_) => {
            let _ = child.kill().await;
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("still running after {timeout:?}, killed"),
            ))
        }
    }
}

/// Runs script `s` every interval until `stop`, reporting each outcome.
async fn script_runner(s: TrackScript, tx: mpsc::Sender<(String, bool)>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(s.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let ok = tokio::select! {
            _ = stop.cancelled() => return,
            r = run_bounded(&s.argv, s.timeout, &[]) => match r {
                Ok(st) => st.success(),
                Err(e) => {
                    tracing::debug!(script = %s.name, error = %e, "vrrp-script failed to run");
                    false
                }
            },
        };
        if tx.send((s.name.clone(), ok)).await.is_err() {
            return;
        }
    }
}

/// Runs an instance's notify commands one after the other, in transition order.
async fn notifier(name: String, n: Notify, mut rx: mpsc::UnboundedReceiver<State>) {
    while let Some(st) = rx.recv().await {
        let cmd = match st {
            State::Master => &n.master,
            State::Backup => &n.backup,
            State::Fault => &n.fault,
        };
        let word = word(st);
        let Some(argv) = cmd else { continue };
        let env = [("LBD_INSTANCE", name.as_str()), ("LBD_STATE", word)];
        match run_bounded(argv, NOTIFY_TIMEOUT, &env).await {
            Ok(s) if s.success() => {}
            Ok(s) => {
                tracing::warn!(instance = %name, state = word, status = %s, "notify command failed")
            }
            Err(e) => {
                tracing::warn!(instance = %name, state = word, error = %e, "notify command failed")
            }
        }
    }
}

/// True when interface `name` has its link (carrier) up.
fn link_up(name: &str) -> bool {
    std::fs::read_to_string(format!("/sys/class/net/{name}/carrier")).is_ok_and(|c| c.trim() == "1")
}

/// Starts every VRRP instance of `view` with its tracking; `None` when there is none (the
/// node always holds the service VIPs). Nothing is started when one instance cannot be.
pub fn start(
    view: &LbView,
    stop: CancellationToken,
    metrics: &Metrics,
) -> Result<Option<Float>, FloatError> {
    if view.vrrp.is_none() && view.instances.is_empty() {
        return Ok(None);
    }
    // A crashed run's floating addresses go first: the instances start as backup, and none of
    // them may be taken for an advert's source address.
    for f in &view.instances {
        remove_present(&f.addresses);
    }
    let mut planned = Vec::new();
    if let Some(cfg) = &view.vrrp {
        let inst = super::service::service_instance(cfg, view)?;
        planned.push((inst, cfg.tracking.clone(), cfg.notify.clone(), None));
    }
    for f in &view.instances {
        let (inst, place) = locate(f, view)?;
        planned.push((
            inst,
            f.tracking.clone(),
            f.notify.clone(),
            Some((f.addresses.clone(), place)),
        ));
    }
    let inst_stop = CancellationToken::new();
    let (state_tx, mut state_rx) = mpsc::unbounded_channel();
    let mut slots = Vec::new();
    for (id, (inst, tracking, notify, float)) in planned.into_iter().enumerate() {
        let (ctl, ctl_rx) = mpsc::unbounded_channel();
        let name = inst.name.clone();
        let base = inst.params.priority;
        let (vrid, iface) = (inst.params.vrid, inst.iface.clone());
        let addresses = inst.params.addrs.iter().map(ToString::to_string).collect();
        let task = match vrrp::spawn(inst, id, state_tx.clone(), ctl_rx, inst_stop.clone()) {
            Ok(t) => t,
            Err(e) => {
                inst_stop.cancel();
                return Err(e.into());
            }
        };
        let (ntx, nrx) = mpsc::unbounded_channel();
        tokio::spawn(notifier(name.clone(), notify, nrx));
        slots.push(Slot {
            name,
            vrid,
            iface,
            addresses,
            base,
            tracking,
            float,
            ctl,
            notify: ntx,
            task,
            state: State::Backup,
            sent: Effective {
                priority: base,
                fault: false,
            },
            held: false,
        });
    }
    drop(state_tx);
    // Script runners for the scripts tracked by some instance.
    let (script_tx, mut script_rx) = mpsc::channel(64);
    let used = |n: &str| {
        slots
            .iter()
            .any(|s| s.tracking.scripts.iter().any(|t| t.name == n))
    };
    for s in view.scripts.iter().filter(|s| used(&s.name)) {
        tokio::spawn(script_runner(
            s.clone(),
            script_tx.clone(),
            inst_stop.clone(),
        ));
    }
    drop(script_tx);
    let mut links: Vec<String> = slots
        .iter()
        .flat_map(|s| s.tracking.interfaces.iter().map(|t| t.name.clone()))
        .collect();
    links.sort();
    links.dedup();
    let scripts: BTreeMap<String, (u32, u32)> = view
        .scripts
        .iter()
        .map(|s| (s.name.clone(), (s.rise, s.fall)))
        .collect();
    let groups = view.sync_groups.clone();
    let (role_tx, role) = watch::channel(if view.vrrp.is_some() {
        Role::Backup
    } else {
        Role::Master
    });
    let (status_tx, status) = watch::channel(Vec::new());
    let (state_g, prio_g) = (metrics.vrrp_state.clone(), metrics.vrrp_priority.clone());
    let publish = move |slots: &Vec<Slot>| {
        for s in slots {
            let l = vec![("instance".to_owned(), s.name.clone())];
            state_g.get_or_create(&l).set(state_number(s.state));
            prio_g.get_or_create(&l).set(i64::from(s.sent.priority));
        }
        let _ = status_tx.send(
            slots
                .iter()
                .map(|s| InstanceStatus {
                    name: s.name.clone(),
                    vrid: s.vrid,
                    interface: s.iface.clone(),
                    state: word(s.state),
                    priority: s.sent.priority,
                    configured_priority: s.base,
                    addresses: s.addresses.clone(),
                })
                .collect(),
        );
    };
    publish(&slots);
    let task = tokio::spawn(async move {
        let mut tracked = Tracked::default();
        let mut trackers: BTreeMap<String, Tracker> = BTreeMap::new();
        let mut poll = tokio::time::interval(LINK_POLL);
        let retrack = |slots: &mut Vec<Slot>, tracked: &Tracked| {
            let members: Vec<Member<'_>> = slots
                .iter()
                .map(|s| Member {
                    name: &s.name,
                    priority: s.base,
                    tracking: &s.tracking,
                })
                .collect();
            let e = decide::effective(&members, &groups, tracked);
            for s in slots.iter_mut() {
                let want = e[&s.name];
                if want != s.sent {
                    let _ = s.ctl.send(Control::Fault(want.fault));
                    let _ = s.ctl.send(Control::Priority(want.priority));
                    s.sent = want;
                }
            }
        };
        let mut script_open = true;
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                r = state_rx.recv() => {
                    let Some((id, st)) = r else { break };
                    let slot: &mut Slot = &mut slots[id];
                    let was = std::mem::replace(&mut slot.state, st);
                    if let Some((addrs, p)) = &slot.float {
                        if st == State::Master && !slot.held {
                            take(addrs, p);
                            slot.held = true;
                        } else if st != State::Master && slot.held {
                            remove_present(addrs);
                            slot.held = false;
                        }
                    } else {
                        let _ = role_tx.send(if st == State::Master { Role::Master } else { Role::Backup });
                    }
                    let _ = slot.notify.send(st);
                    let name = slot.name.clone();
                    let states: BTreeMap<String, State> =
                        slots.iter().map(|s| (s.name.clone(), s.state)).collect();
                    for f in decide::followers(&name, was, st, &groups, &states) {
                        if let Some(s) = slots.iter().find(|s| s.name == f) {
                            let _ = s.ctl.send(Control::ForceBackup);
                        }
                    }
                    publish(&slots);
                }
                r = script_rx.recv(), if script_open => {
                    let Some((name, ok)) = r else { script_open = false; continue };
                    let (rise, fall) = scripts.get(&name).copied().unwrap_or((1, 1));
                    if let Some(up) = trackers.entry(name.clone()).or_default().record(ok, rise, fall) {
                        if up {
                            tracing::info!(script = %name, "vrrp-script up");
                        } else {
                            tracing::warn!(script = %name, "vrrp-script down");
                        }
                        tracked.scripts.insert(name, up);
                        retrack(&mut slots, &tracked);
                        publish(&slots);
                    }
                }
                _ = poll.tick(), if !links.is_empty() => {
                    let mut changed = false;
                    for l in &links {
                        let up = link_up(l);
                        if tracked.links.get(l) != Some(&up) {
                            if up {
                                tracing::info!(interface = %l, "tracked interface up");
                            } else {
                                tracing::warn!(interface = %l, "tracked interface down");
                            }
                            tracked.links.insert(l.clone(), up);
                            changed = true;
                        }
                    }
                    if changed {
                        retrack(&mut slots, &tracked);
                        publish(&slots);
                    }
                }
            }
        }
        // Leave: every instance sends priority 0 when master, then the addresses go.
        inst_stop.cancel();
        for s in &mut slots {
            let _ = tokio::time::timeout(Duration::from_secs(2), &mut s.task).await;
            if let Some((addrs, _)) = &s.float
                && s.held
            {
                remove_present(addrs);
            }
        }
    });
    Ok(Some(Float { task, role, status }))
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
