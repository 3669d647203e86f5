//! VRRP version 3 (RFC 5798) for IPv4: the pure state machine ([`Machine`]), the packet codec
//! ([`encode`], [`decode`]) and the socket task ([`spawn`]) that feeds it. The master holds the
//! VIPs and programs the data plane; a backup holds neither. Adverts go to 224.0.0.18 with
//! TTL 255 (or to unicast peers); a clean shutdown sends priority 0 for a fast handover.
//! Interoperates with keepalived (`vrrp_version 3`): the checksum covers the IPv4 pseudo-header.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use hostfile::{LbView, VrrpConfig};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::desired::Role;

/// IP protocol number of VRRP.
pub const PROTO: u8 = 112;
/// The VRRP multicast group.
pub const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

/// A decoded advertisement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert {
    /// Virtual router id.
    pub vrid: u8,
    /// Sender's priority (0 = leaving).
    pub priority: u8,
    /// Max advertisement interval, centiseconds.
    pub interval_cs: u16,
    /// Addresses.
    pub addrs: Vec<Ipv4Addr>,
}

/// Why a packet was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than its headers say.
    #[error("truncated")]
    Truncated,
    /// Not IPv4 or not protocol 112.
    #[error("not a VRRP packet")]
    NotVrrp,
    /// TTL not 255 (RFC 5798 7.1: the packet may have crossed a router).
    #[error("TTL {0} is not 255")]
    Ttl(u8),
    /// Not version 3 or not an advertisement.
    #[error("version/type {0:#04x} is not VRRPv3 advertisement")]
    Version(u8),
    /// Bad checksum.
    #[error("bad checksum")]
    Checksum,
}

fn sum16(data: &[u8], mut acc: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        acc += u32::from(*b) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// The VRRPv3 checksum over the IPv4 pseudo-header and `vrrp` (checksum field zero).
pub fn checksum(src: Ipv4Addr, dst: Ipv4Addr, vrrp: &[u8]) -> u16 {
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&src.octets());
    pseudo[4..8].copy_from_slice(&dst.octets());
    pseudo[9] = PROTO;
    pseudo[10..12].copy_from_slice(&(vrrp.len() as u16).to_be_bytes());
    fold(sum16(vrrp, sum16(&pseudo, 0)))
}

/// The VRRP part of an advertisement from `src` to `dst`.
pub fn encode(a: &Advert, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + 4 * a.addrs.len());
    v.push(0x31);
    v.push(a.vrid);
    v.push(a.priority);
    v.push(a.addrs.len().min(255) as u8);
    v.extend_from_slice(&(a.interval_cs & 0x0fff).to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    for ip in a.addrs.iter().take(255) {
        v.extend_from_slice(&ip.octets());
    }
    let c = checksum(src, dst, &v);
    v[6..8].copy_from_slice(&c.to_be_bytes());
    v
}

/// A whole IPv4 packet carrying `vrrp` (for IP_HDRINCL; the kernel fills id and checksum).
pub fn ip_packet(vrrp: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let mut p = Vec::with_capacity(20 + vrrp.len());
    p.push(0x45);
    p.push(0xc0); // DSCP CS6, network control
    p.extend_from_slice(&((20 + vrrp.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0]);
    p.push(255);
    p.push(PROTO);
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(vrrp);
    p
}

/// Decodes a packet as read from a raw socket (IPv4 header included): (source, advert).
pub fn decode(pkt: &[u8]) -> Result<(Ipv4Addr, Advert), DecodeError> {
    if pkt.len() < 20 {
        return Err(DecodeError::Truncated);
    }
    if pkt[0] >> 4 != 4 || pkt[9] != PROTO {
        return Err(DecodeError::NotVrrp);
    }
    let ihl = usize::from(pkt[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
    if ihl < 20 || pkt.len() < ihl + 8 || total > pkt.len() || total < ihl + 8 {
        return Err(DecodeError::Truncated);
    }
    if pkt[8] != 255 {
        return Err(DecodeError::Ttl(pkt[8]));
    }
    let src = Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]);
    let dst = Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]);
    let v = &pkt[ihl..total];
    if v[0] != 0x31 {
        return Err(DecodeError::Version(v[0]));
    }
    let count = usize::from(v[3]);
    if v.len() < 8 + 4 * count {
        return Err(DecodeError::Truncated);
    }
    let v = &v[..8 + 4 * count];
    if checksum(src, dst, v) != 0 {
        return Err(DecodeError::Checksum);
    }
    let addrs = v[8..]
        .chunks_exact(4)
        .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
        .collect();
    Ok((
        src,
        Advert {
            vrid: v[1],
            priority: v[2],
            interval_cs: u16::from_be_bytes([v[4], v[5]]) & 0x0fff,
            addrs,
        },
    ))
}

/// The state of the virtual router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Listening for a master.
    Backup,
    /// Holding the addresses.
    Master,
}

/// What the I/O layer must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send an advertisement with this priority.
    Send(u8),
    /// Take the addresses (and announce them).
    BecomeMaster,
    /// Give the addresses up.
    BecomeBackup,
}

/// Configuration of the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// Virtual router id.
    pub vrid: u8,
    /// Our priority (255 = address owner).
    pub priority: u8,
    /// Take over from a lower-priority master.
    pub preempt: bool,
    /// Our advertisement interval, centiseconds.
    pub interval_cs: u16,
    /// Our primary address (tie-break between equal priorities).
    pub local: Ipv4Addr,
}

fn cs(c: u16) -> Duration {
    Duration::from_millis(u64::from(c) * 10)
}

/// The RFC 5798 state machine (section 6.4), clock injected.
#[derive(Debug, Clone)]
pub struct Machine {
    p: Params,
    state: State,
    master_adver_cs: u16,
    deadline: Instant,
}

impl Machine {
    /// Initialize (6.4.1): an address owner becomes master at once, anyone else backup with
    /// the Master_Down_Timer running.
    pub fn start(p: Params, now: Instant) -> (Machine, Vec<Action>) {
        let mut m = Machine {
            master_adver_cs: p.interval_cs,
            state: State::Backup,
            deadline: now,
            p,
        };
        if m.p.priority == 255 {
            let a = m.become_master(now);
            (m, a)
        } else {
            m.deadline = now + m.master_down();
            (m, Vec::new())
        }
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// When [`Machine::on_timer`] is due.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Master_Adver_Interval: the interval the current master advertises (learned from its
    /// adverts, RFC 5798 6.4.2; our own interval until one is heard).
    pub fn master_adver_interval(&self) -> Duration {
        cs(self.master_adver_cs)
    }

    /// Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256.
    pub fn skew(&self) -> Duration {
        cs(self.master_adver_cs) * (256 - u32::from(self.p.priority)) / 256
    }

    /// Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time.
    pub fn master_down(&self) -> Duration {
        cs(self.master_adver_cs) * 3 + self.skew()
    }

    fn become_master(&mut self, now: Instant) -> Vec<Action> {
        self.state = State::Master;
        self.deadline = now + cs(self.p.interval_cs);
        vec![Action::Send(self.p.priority), Action::BecomeMaster]
    }

    /// The timer fired (call when `now >= deadline()`).
    pub fn on_timer(&mut self, now: Instant) -> Vec<Action> {
        if now < self.deadline {
            return Vec::new();
        }
        match self.state {
            State::Backup => self.become_master(now),
            State::Master => {
                self.deadline = now + cs(self.p.interval_cs);
                vec![Action::Send(self.p.priority)]
            }
        }
    }

    /// An advertisement for our VRID arrived from `src`.
    pub fn on_advert(&mut self, a: &Advert, src: Ipv4Addr, now: Instant) -> Vec<Action> {
        if a.vrid != self.p.vrid || src == self.p.local {
            return Vec::new();
        }
        match self.state {
            State::Backup => {
                if a.priority == 0 {
                    self.deadline = now + self.skew();
                } else if !self.p.preempt || a.priority >= self.p.priority {
                    self.master_adver_cs = a.interval_cs.max(1);
                    self.deadline = now + self.master_down();
                }
                Vec::new()
            }
            State::Master => {
                if a.priority == 0 {
                    self.deadline = now + cs(self.p.interval_cs);
                    vec![Action::Send(self.p.priority)]
                } else if a.priority > self.p.priority
                    || (a.priority == self.p.priority && u32::from(src) > u32::from(self.p.local))
                {
                    self.state = State::Backup;
                    self.master_adver_cs = a.interval_cs.max(1);
                    self.deadline = now + self.master_down();
                    vec![Action::BecomeBackup]
                } else {
                    Vec::new()
                }
            }
        }
    }

    /// Shutdown (6.4.3): a master sends priority 0 so a backup takes over after Skew_Time.
    pub fn shutdown(&mut self) -> Vec<Action> {
        let was = self.state;
        self.state = State::Backup;
        if was == State::Master {
            vec![Action::Send(0), Action::BecomeBackup]
        } else {
            Vec::new()
        }
    }
}

/// Where VRRP runs for `cfg`: interface name, index and our source address on it.
pub fn locate(cfg: &VrrpConfig, view: &LbView) -> anyhow::Result<(String, u32, Ipv4Addr)> {
    let iface = match cfg.interface.clone().or_else(|| view.interface.clone()) {
        Some(i) => i,
        None => {
            let vips = crate::desired::managed_vips(view);
            let first = vips.first().ok_or_else(|| {
                anyhow::anyhow!("VRRP needs `interface` in [lb.vrrp] when there is no service")
            })?;
            crate::vip::place(first)?.iface
        }
    };
    let index = crate::vip::if_index(&iface).ok_or_else(|| {
        anyhow::anyhow!("VRRP interface `{iface}` does not exist: fix `interface` in [lb.vrrp]")
    })?;
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
            .ok_or_else(|| {
                anyhow::anyhow!("interface `{iface}` has no IPv4 address to send VRRP from")
            })?,
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
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let (iface, index, local) = locate(&cfg, view)?;
    let multicast = cfg.peers.is_empty();
    let sock = open_socket(&iface, index, local, multicast)
        .map_err(|e| anyhow::anyhow!("VRRP socket on {iface}: {e} (needs root/CAP_NET_RAW)"))?;
    // SAFETY: the socket2 `Socket` owns its descriptor and is moved into the AsyncFd, which
    // keeps it open for as long as it is registered.
    let sock = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(sock, tokio::io::Interest::READABLE)
    }
    .map_err(|e| anyhow::anyhow!("registering the VRRP socket: {e}"))?;
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
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn params(priority: u8, preempt: bool) -> Params {
        Params {
            vrid: 51,
            priority,
            preempt,
            interval_cs: 100,
            local: Ipv4Addr::new(192, 168, 1, 2),
        }
    }

    fn adv(priority: u8) -> Advert {
        Advert {
            vrid: 51,
            priority,
            interval_cs: 100,
            addrs: vec![Ipv4Addr::new(192, 168, 1, 120)],
        }
    }

    const PEER: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 3);

    #[test]
    fn codec_round_trip_and_checksum() {
        let a = adv(150);
        let src = Ipv4Addr::new(192, 168, 1, 2);
        let pkt = ip_packet(&encode(&a, src, GROUP), src, GROUP);
        assert_eq!(decode(&pkt), Ok((src, a)));
        let mut bad = pkt.clone();
        bad[22] ^= 1;
        assert_eq!(decode(&bad), Err(DecodeError::Checksum));
        let mut ttl = pkt.clone();
        ttl[8] = 64;
        assert_eq!(decode(&ttl), Err(DecodeError::Ttl(64)));
        let mut v2 = pkt.clone();
        v2[20] = 0x21;
        assert_eq!(decode(&v2), Err(DecodeError::Version(0x21)));
        assert_eq!(decode(&pkt[..25]), Err(DecodeError::Truncated));
        assert_eq!(decode(&[]), Err(DecodeError::Truncated));
    }

    #[test]
    fn known_checksum() {
        // Hand-checked: sum of pseudo header and message folds to the stored value.
        let v = encode(&adv(100), Ipv4Addr::new(10, 0, 0, 1), GROUP);
        assert_eq!(checksum(Ipv4Addr::new(10, 0, 0, 1), GROUP, &v), 0);
        assert_eq!(&v[..6], &[0x31, 51, 100, 1, 0, 100]);
    }

    #[test]
    fn timers_follow_the_rfc() {
        let now = Instant::now();
        let (m, acts) = Machine::start(params(150, true), now);
        assert!(acts.is_empty());
        assert_eq!(m.state(), State::Backup);
        // skew = (256-150)*1s/256 = 414.0625 ms; master down = 3 s + skew.
        assert_eq!(m.skew(), Duration::from_nanos(414_062_500));
        assert_eq!(m.deadline(), now + Duration::from_nanos(3_414_062_500));
    }

    #[test]
    fn owner_starts_as_master() {
        let (m, acts) = Machine::start(params(255, true), Instant::now());
        assert_eq!(m.state(), State::Master);
        assert_eq!(acts, vec![Action::Send(255), Action::BecomeMaster]);
    }

    #[test]
    fn backup_takes_over_when_the_master_goes_quiet() {
        let now = Instant::now();
        let (mut m, _) = Machine::start(params(100, true), now);
        let t1 = now + Duration::from_secs(1);
        assert!(m.on_advert(&adv(200), PEER, t1).is_empty());
        assert!(m.on_timer(t1 + Duration::from_secs(3)).is_empty());
        let acts = m.on_timer(m.deadline());
        assert_eq!(acts, vec![Action::Send(100), Action::BecomeMaster]);
        assert_eq!(m.state(), State::Master);
        // Then it advertises every interval.
        let d = m.deadline();
        assert_eq!(m.on_timer(d), vec![Action::Send(100)]);
    }

    #[test]
    fn backup_learns_the_masters_advertisement_interval() {
        // RFC 5798 6.4.2: a backup takes Master_Adver_Interval from the master's adverts and
        // recomputes Skew_Time and Master_Down_Interval from it, whatever its own interval.
        let now = Instant::now();
        let (mut m, _) = Machine::start(params(100, true), now);
        assert_eq!(m.master_adver_interval(), Duration::from_secs(1));
        let mut fast = adv(200);
        fast.interval_cs = 10;
        let t1 = now + Duration::from_millis(50);
        assert!(m.on_advert(&fast, PEER, t1).is_empty());
        assert_eq!(m.master_adver_interval(), Duration::from_millis(100));
        // skew = (256-100) * 100 ms / 256 = 60.9375 ms; master down = 300 ms + skew.
        assert_eq!(m.skew(), Duration::from_nanos(60_937_500));
        assert_eq!(m.deadline(), t1 + Duration::from_nanos(360_937_500));
        // So the backup takes over 0.36 s after the fast master's last advert, not 3.6 s.
        assert!(m.on_timer(t1 + Duration::from_millis(360)).is_empty());
        assert_eq!(
            m.on_timer(t1 + Duration::from_nanos(360_937_500)),
            vec![Action::Send(100), Action::BecomeMaster]
        );
        // As master it keeps sending at its own configured interval.
        assert_eq!(
            m.deadline(),
            t1 + Duration::from_nanos(360_937_500) + Duration::from_secs(1)
        );

        // A slower master (3 s) stretches the wait the other way; a lower-priority advert a
        // preempting backup discards teaches nothing.
        let (mut m, _) = Machine::start(params(100, true), now);
        let mut slow = adv(200);
        slow.interval_cs = 300;
        m.on_advert(&slow, PEER, now);
        assert_eq!(m.master_adver_interval(), Duration::from_secs(3));
        assert_eq!(m.deadline(), now + m.master_down());
        assert!(m.master_down() > Duration::from_secs(9));
        let mut low = adv(50);
        low.interval_cs = 20;
        m.on_advert(&low, PEER, now);
        assert_eq!(m.master_adver_interval(), Duration::from_secs(3));

        // A master that yields to a better one takes that one's interval.
        let (mut m, _) = Machine::start(params(100, true), now);
        m.on_timer(m.deadline());
        assert_eq!(m.state(), State::Master);
        m.on_advert(&fast, PEER, now);
        assert_eq!(m.state(), State::Backup);
        assert_eq!(m.master_adver_interval(), Duration::from_millis(100));
    }

    #[test]
    fn priority_zero_shortens_the_wait_to_skew() {
        let now = Instant::now();
        let (mut m, _) = Machine::start(params(100, true), now);
        m.on_advert(&adv(0), PEER, now);
        assert_eq!(m.deadline(), now + m.skew());
    }

    #[test]
    fn preempt_and_nopreempt() {
        let now = Instant::now();
        // Preempt: a lower master's adverts are ignored, so our timer runs out.
        let (mut m, _) = Machine::start(params(200, true), now);
        let before = m.deadline();
        m.on_advert(&adv(100), PEER, now + Duration::from_secs(1));
        assert_eq!(m.deadline(), before);
        // No preempt: any master's adverts reset the timer.
        let (mut m, _) = Machine::start(params(200, false), now);
        m.on_advert(&adv(100), PEER, now + Duration::from_secs(1));
        assert!(m.deadline() > before);
    }

    #[test]
    fn master_yields_to_higher_or_equal_with_higher_address() {
        let now = Instant::now();
        let (mut m, _) = Machine::start(params(150, true), now);
        m.on_timer(m.deadline());
        assert_eq!(m.state(), State::Master);
        assert!(m.on_advert(&adv(100), PEER, now).is_empty());
        assert_eq!(m.state(), State::Master);
        // Equal priority, peer address higher (.3 > .2): yield.
        assert_eq!(
            m.on_advert(&adv(150), PEER, now),
            vec![Action::BecomeBackup]
        );
        assert_eq!(m.state(), State::Backup);
    }

    #[test]
    fn master_answers_priority_zero_and_sends_zero_on_shutdown() {
        let now = Instant::now();
        let (mut m, _) = Machine::start(params(150, true), now);
        m.on_timer(m.deadline());
        assert_eq!(m.on_advert(&adv(0), PEER, now), vec![Action::Send(150)]);
        assert_eq!(m.shutdown(), vec![Action::Send(0), Action::BecomeBackup]);
        assert!(m.shutdown().is_empty());
    }

    #[test]
    fn own_and_foreign_vrid_ignored() {
        let now = Instant::now();
        let (mut m, _) = Machine::start(params(150, true), now);
        m.on_timer(m.deadline());
        let mut other = adv(250);
        other.vrid = 52;
        assert!(m.on_advert(&other, PEER, now).is_empty());
        assert!(
            m.on_advert(&adv(250), Ipv4Addr::new(192, 168, 1, 2), now)
                .is_empty()
        );
        assert_eq!(m.state(), State::Master);
    }
}
