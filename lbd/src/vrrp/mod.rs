//! VRRP version 3 (RFC 5798) for IPv4: the pure state machine ([`Machine`]), the packet codec
//! ([`encode`], [`decode`]) and the socket task ([`spawn`]) that feeds it. The master holds the
//! VIPs and programs the data plane; a backup holds neither. Adverts go to 224.0.0.18 with
//! TTL 255 (or to unicast peers); a clean shutdown sends priority 0 for a fast handover.
//! Interoperates with keepalived (`vrrp_version 3`): the checksum covers the IPv4 pseudo-header.

mod codec;
mod machine;
#[cfg(test)]
mod tests;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use hostfile::{LbView, VrrpConfig};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::desired::Role;

pub use codec::{Advert, DecodeError, GROUP, PROTO, checksum, decode, encode, ip_packet};
pub use machine::{Action, Ignored, MAX_LEARNED_FACTOR, Machine, Params, State};

/// Why VRRP cannot start.
#[derive(Debug, thiserror::Error)]
pub enum VrrpError {
    /// No interface configured and no service VIP to find one from.
    #[error("VRRP needs `interface` in [lb.vrrp] when there is no service")]
    NoInterface,
    /// The first VIP cannot be placed (its interface is what VRRP would use).
    #[error(transparent)]
    Place(#[from] crate::vip::VipError),
    /// The configured interface does not exist.
    #[error("VRRP interface `{0}` does not exist: fix `interface` in [lb.vrrp]")]
    MissingInterface(String),
    /// The interface's addresses cannot be listed.
    #[error(transparent)]
    Addresses(#[from] std::io::Error),
    /// The interface has no address of its own to send from.
    #[error("interface `{0}` has no IPv4 address to send VRRP from")]
    NoAddress(String),
    /// The raw socket cannot be opened.
    #[error("VRRP socket on {iface}: {error} (needs root/CAP_NET_RAW)")]
    Socket {
        /// The interface.
        iface: String,
        /// What failed.
        error: std::io::Error,
    },
    /// The socket cannot be registered with the runtime.
    #[error("registering the VRRP socket: {0}")]
    Register(std::io::Error),
}

/// Where VRRP runs for `cfg`: interface name, index and our source address on it.
pub fn locate(cfg: &VrrpConfig, view: &LbView) -> Result<(String, u32, Ipv4Addr), VrrpError> {
    let iface = match cfg.interface.clone().or_else(|| view.interface.clone()) {
        Some(i) => i,
        None => {
            let vips = crate::desired::managed_vips(view);
            let first = vips.first().ok_or(VrrpError::NoInterface)?;
            crate::vip::place(first)?.iface
        }
    };
    let Some(index) = crate::vip::if_index(&iface) else {
        return Err(VrrpError::MissingInterface(iface));
    };
    let vips: Vec<Ipv4Addr> = crate::desired::managed_vips(view)
        .iter()
        .map(|v| v.addr)
        .collect();
    let local = match cfg.source {
        Some(s) => s,
        None => runtime::netif::local_ipv4()?
            .into_iter()
            .find(|a| a.index == index && !vips.contains(&a.addr))
            .map(|a| a.addr)
            .ok_or_else(|| VrrpError::NoAddress(iface.clone()))?,
    };
    Ok((iface, index, local))
}

fn open_socket(
    iface: &str,
    index: u32,
    local: Ipv4Addr,
    multicast: bool,
) -> std::io::Result<socket2::Socket> {
    use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
    let s = Socket::new(
        Domain::IPV4,
        Type::RAW,
        Some(Protocol::from(i32::from(PROTO))),
    )?;
    s.bind_device(Some(iface.as_bytes()))?;
    s.set_header_included_v4(true)?;
    if multicast {
        s.join_multicast_v4_n(&GROUP, &InterfaceIndexOrAddress::Index(index))?;
        s.set_multicast_if_v4(&local)?;
        s.set_multicast_loop_v4(false)?;
        s.set_multicast_ttl_v4(255)?;
    }
    s.set_nonblocking(true)?;
    Ok(s)
}

/// Starts the VRRP task: it publishes the role on `role` and, once `stop` is cancelled, sends
/// priority 0 (when master) and ends.
pub fn spawn(
    cfg: VrrpConfig,
    view: &LbView,
    role: watch::Sender<Role>,
    stop: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, VrrpError> {
    let (iface, index, local) = locate(&cfg, view)?;
    let multicast = cfg.peers.is_empty();
    let sock = open_socket(&iface, index, local, multicast).map_err(|error| VrrpError::Socket {
        iface: iface.clone(),
        error,
    })?;
    // SAFETY: the socket2 `Socket` owns its descriptor and is moved into the AsyncFd, which
    // keeps it open for as long as it is registered.
    let sock = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(sock, tokio::io::Interest::READABLE)
    }
    .map_err(|e| VrrpError::Register(std::io::Error::from(e)))?;
    let addrs: Vec<Ipv4Addr> = crate::desired::managed_vips(view)
        .iter()
        .map(|v| v.addr)
        .collect();
    let p = Params {
        vrid: cfg.vrid,
        priority: cfg.priority,
        preempt: cfg.preempt,
        interval_cs: (cfg.interval.as_millis() / 10).clamp(1, 4095) as u16,
        local,
        addrs: addrs.clone(),
        peers: cfg.peers.clone(),
    };
    // Strangers' adverts are logged at most a few per minute (a flood must not flood the log).
    let strangers = runtime::ratelimit::LogLimiter::new(Duration::from_secs(60), 5);
    let dests: Vec<Ipv4Addr> = if multicast {
        vec![GROUP]
    } else {
        cfg.peers.clone()
    };
    tracing::info!(interface = %iface, source = %local, vrid = p.vrid, priority = p.priority, interval_cs = p.interval_cs, "VRRP starting as backup");
    Ok(tokio::spawn(async move {
        let send = |prio: u8| {
            let a = Advert {
                vrid: p.vrid,
                priority: prio,
                interval_cs: p.interval_cs,
                addrs: addrs.clone(),
            };
            for d in &dests {
                let pkt = ip_packet(&encode(&a, local, *d), local, *d);
                let to = socket2::SockAddr::from(SocketAddrV4::new(*d, 0));
                if let Err(e) = sock.get_ref().send_to(&pkt, &to) {
                    tracing::warn!(dest = %d, error = %e, "VRRP advert not sent");
                }
            }
        };
        let handle = |acts: Vec<Action>| {
            for a in acts {
                match a {
                    Action::Send(prio) => send(prio),
                    Action::BecomeMaster => {
                        tracing::info!(vrid = p.vrid, "VRRP: entering MASTER");
                        let _ = role.send(Role::Master);
                    }
                    Action::BecomeBackup => {
                        tracing::info!(vrid = p.vrid, "VRRP: entering BACKUP");
                        let _ = role.send(Role::Backup);
                    }
                }
            }
        };
        let (mut m, acts) = Machine::start(p.clone(), Instant::now());
        handle(acts);
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 2048];
        let mut bad: u64 = 0;
        loop {
            tokio::select! {
                _ = stop.cancelled() => {
                    handle(m.shutdown());
                    return;
                }
                _ = tokio::time::sleep_until(m.deadline()) => {
                    handle(m.on_timer(Instant::now()));
                }
                r = sock.readable() => {
                    let Ok(mut guard) = r else { return };
                    match guard.try_io(|s| s.get_ref().recv(&mut buf)) {
                        Ok(Ok(n)) => {
                            // SAFETY: recv initialised the first n bytes.
                            let pkt: &[u8] = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast(), n) };
                            match decode(pkt) {
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
