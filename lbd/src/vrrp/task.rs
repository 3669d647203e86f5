//! The socket task of one VRRP instance: raw socket in, [`Machine`] decisions out, commands
//! from the tracking layer (`crate::float`) applied.

use std::net::IpAddr;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::codec::Advert;
use super::machine::{Action, Ignored, MAX_LEARNED_FACTOR, Machine, State};
use super::sock::Sock;
use super::{Instance, VrrpError};

/// What the tracking layer tells an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// The priority tracking gives it now.
    Priority(u8),
    /// Tracking says FAULT (or that it cleared).
    Fault(bool),
    /// Another member of its sync group left MASTER.
    ForceBackup,
}

/// Starts one instance's task: it reports each state it enters on `states` (with `id`), obeys
/// `ctl` (tracking and sync groups), and once `stop` is cancelled sends priority 0 (when master)
/// and ends.
pub fn spawn(
    inst: Instance,
    id: usize,
    states: mpsc::UnboundedSender<(usize, State)>,
    mut ctl: mpsc::UnboundedReceiver<Control>,
    stop: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, VrrpError> {
    let Instance {
        name,
        iface,
        index,
        params: p,
    } = inst;
    let local = p.local;
    let multicast = p.peers.is_empty();
    let sock = Sock::open(&iface, index, local, multicast).map_err(|error| VrrpError::Socket {
        iface: iface.clone(),
        error,
    })?;
    let sock = Sock::register(sock, local, index).map_err(VrrpError::Register)?;
    let addrs = p.addrs.clone();
    // Strangers' adverts are logged at most a few per minute (a flood must not flood the log).
    let strangers = runtime::ratelimit::LogLimiter::new(Duration::from_secs(60), 5);
    let dests: Vec<IpAddr> = if multicast {
        vec![sock.group()]
    } else {
        p.peers.clone()
    };
    tracing::info!(instance = %name, interface = %iface, source = %local, vrid = p.vrid, priority = p.priority, interval_cs = p.interval_cs, "VRRP starting as backup");
    Ok(tokio::spawn(async move {
        let send = |prio: u8| {
            let p = &p;
            let a = Advert {
                vrid: p.vrid,
                priority: prio,
                interval_cs: p.interval_cs,
                addrs: addrs.clone(),
            };
            for d in &dests {
                if let Err(e) = sock.send(&a, *d) {
                    tracing::warn!(dest = %d, error = %e, "VRRP advert not sent");
                }
            }
        };
        let handle = |acts: Vec<Action>| {
            for a in acts {
                match a {
                    Action::Send(prio) => send(prio),
                    Action::BecomeMaster => {
                        tracing::info!(instance = %name, vrid = p.vrid, "VRRP: entering MASTER");
                        let _ = states.send((id, State::Master));
                    }
                    Action::BecomeBackup => {
                        tracing::info!(instance = %name, vrid = p.vrid, "VRRP: entering BACKUP");
                        let _ = states.send((id, State::Backup));
                    }
                    Action::BecomeFault => {
                        tracing::warn!(instance = %name, vrid = p.vrid, "VRRP: entering FAULT");
                        let _ = states.send((id, State::Fault));
                    }
                }
            }
        };
        let (mut m, acts) = Machine::start(p.clone(), Instant::now());
        handle(acts);
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 2048];
        let mut bad: u64 = 0;
        let mut ctl_open = true;
        loop {
            tokio::select! {
                _ = stop.cancelled() => {
                    handle(m.shutdown());
                    return;
                }
                c = ctl.recv(), if ctl_open => {
                    let now = Instant::now();
                    match c {
                        None => ctl_open = false,
                        Some(Control::Priority(prio)) => {
                            if prio != m.priority() {
                                tracing::info!(instance = %name, vrid = p.vrid, priority = prio, "VRRP: priority changed by tracking");
                            }
                            handle(m.set_priority(prio, now));
                        }
                        Some(Control::Fault(f)) => handle(m.set_fault(f, now)),
                        Some(Control::ForceBackup) => {
                            let acts = m.force_backup(now);
                            if !acts.is_empty() {
                                tracing::info!(instance = %name, vrid = p.vrid, "VRRP: following its sync group to BACKUP");
                            }
                            handle(acts);
                        }
                    }
                }
                _ = tokio::time::sleep_until(m.deadline()) => {
                    handle(m.on_timer(Instant::now()));
                }
                r = sock.fd().readable() => {
                    let Ok(mut guard) = r else { return };
                    match guard.try_io(|_| sock.recv(&mut buf)) {
                        Ok(Ok(got)) => {
                            match got {
                                Ok((src, adv)) if adv.vrid == p.vrid => {
                                    if let Err(why) = m.screen(&adv, src) {
                                        if !matches!(why, Ignored::Own)
                                            && let Some(suppressed) = strangers.allow("ignored", std::time::Instant::now())
                                        {
                                            tracing::warn!(from = %src, priority = adv.priority, suppressed, "VRRP advert ignored: {why}");
                                        }
                                        continue;
                                    }
                                    if adv.interval_cs > m.max_learned_cs()
                                        && let Some(suppressed) = strangers.allow("interval", std::time::Instant::now())
                                    {
                                        tracing::warn!(from = %src, interval_ms = u64::from(adv.interval_cs) * 10, bound_ms = u64::from(m.max_learned_cs()) * 10, suppressed, "VRRP: the master's advertisement interval is beyond {MAX_LEARNED_FACTOR}x ours; followed at the bound (set the same interval on every node)");
                                    }
                                    let learned = m.master_adver_interval();
                                    handle(m.on_advert(&adv, src, Instant::now()));
                                    if m.master_adver_interval() != learned {
                                        tracing::info!(from = %src, master_adver_interval_ms = m.master_adver_interval().as_millis() as u64, own_interval_ms = u64::from(p.interval_cs) * 10, "VRRP: following the master's advertisement interval");
                                    }
                                }
                                Ok(_) => {}
                                Err(e) => {
                                    bad += 1;
                                    if bad.is_power_of_two() {
                                        tracing::warn!(error = %e, dropped = bad, "VRRP packet dropped");
                                    }
                                }
                            }
                        }
                        Ok(Err(e)) => tracing::warn!(error = %e, "VRRP receive failed"),
                        Err(_would_block) => {}
                    }
                }
            }
        }
    }))
}
