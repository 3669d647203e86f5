//! The DHCPv6 decision core (RFC 8415): one client message in, the reply (if any) and the binding
//! changes out. Pure: the bindings are read, never written (the caller persists the changes, then
//! applies them, then sends); time comes in as Unix seconds.

use std::collections::HashSet;
use std::net::Ipv6Addr;

use dhcproto::v6::{
    DhcpOption, DhcpOptions, IAAddr, IANA, IAPD, IAPrefix, Message, MessageType, NtpSuboption,
    OptionCode, Status, StatusCode,
};
use hostfile::{Dhcp6Subnet, Reservation6};

use super::lease::{Change6, IaKind, Key6, Lease6, Leases6, State6};

/// What the core needs besides the message and the bindings.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// IPv6 subnets of the host file.
    pub subnets: &'a [Dhcp6Subnet],
    /// IPv6 reservations of the host file.
    pub reservations: &'a [Reservation6],
    /// This server's DUID.
    pub server_duid: &'a [u8],
    /// Seconds a declined address stays out of use.
    pub decline_probation: u64,
    /// The client's hardware address as its relay tells (RFC 6939), for MAC reservations of
    /// clients whose DUID holds none.
    pub client_mac: Option<[u8; 6]>,
}

/// The core's answer.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The message to send back, or `None` to stay silent.
    pub reply: Option<Message>,
    /// Binding changes to make durable before the reply is sent.
    pub changes: Vec<Change6>,
}

impl Outcome {
    fn silent() -> Self {
        Outcome::default()
    }
}

/// Decides the answer to `msg`, received on the link of subnet `link` (an index into
/// `ctx.subnets`; `None` when the link has no IPv6 subnet).
pub fn decide(
    ctx: &Ctx<'_>,
    link: Option<usize>,
    leases: &Leases6,
    msg: &Message,
    now: u64,
) -> Outcome {
    let opts = msg.opts();
    let client = match opts.get(OptionCode::ClientId) {
        Some(DhcpOption::ClientId(d)) if !d.is_empty() => Some(d.clone()),
        _ => None,
    };
    let server = match opts.get(OptionCode::ServerId) {
        Some(DhcpOption::ServerId(d)) => Some(d.as_slice()),
        _ => None,
    };
    let ours = server == Some(ctx.server_duid);
    use MessageType as T;
    // RFC 8415 section 16: which messages a server must discard.
    let acceptable = match msg.msg_type() {
        T::Solicit | T::Rebind | T::Confirm => client.is_some() && server.is_none(),
        T::Request | T::Renew | T::Release | T::Decline => client.is_some() && ours,
        T::InformationRequest => server.is_none() || ours,
        _ => false,
    };
    if !acceptable {
        return Outcome::silent();
    }
    let mut d = Decider {
        ctx,
        link: link.and_then(|i| ctx.subnets.get(i).map(|s| (i, s))),
        leases,
        now,
        duid: client.clone().unwrap_or_default(),
        taken: HashSet::new(),
        changes: Vec::new(),
    };
    // RFC 8415 18.3.1: a SOLICIT with Rapid Commit gets a REPLY (and binds) when its link's
    // subnet allows it (`rapid-commit`, off by default as in Kea).
    let rapid = msg.msg_type() == T::Solicit
        && d.link.is_some_and(|(_, s)| s.rapid_commit)
        && opts.get(OptionCode::RapidCommit).is_some();
    let (ty, mut out) = match msg.msg_type() {
        T::Solicit if rapid => (T::Reply, d.assign(msg, true)),
        T::Solicit => (T::Advertise, d.assign(msg, false)),
        T::Request => (T::Reply, d.assign(msg, true)),
        T::Renew => (T::Reply, d.extend(msg, false)),
        T::Rebind => (T::Reply, d.extend(msg, true)),
        T::Release => (T::Reply, d.release(msg)),
        T::Decline => (T::Reply, d.decline(msg)),
        T::Confirm => match d.confirm(msg) {
            Some(o) => (T::Reply, o),
            None => return Outcome::silent(),
        },
        _ => (T::Reply, DhcpOptions::new()),
    };
    if rapid {
        out.insert(DhcpOption::RapidCommit);
    }
    let mut reply = Message::new_with_id(ty, msg.xid());
    let ro = reply.opts_mut();
    ro.insert(DhcpOption::ServerId(ctx.server_duid.to_vec()));
    if let Some(c) = client {
        ro.insert(DhcpOption::ClientId(c));
    }
    for o in out {
        ro.insert(o);
    }
    if let Some(s) = d.link.map(|(_, s)| s).or(ctx.subnets.first()) {
        config_options(s, ro);
    }
    Outcome {
        reply: Some(reply),
        changes: d.changes,
    }
}

/// DNS servers (23), domain search list (24) and NTP servers (56) of the subnet.
fn config_options(s: &Dhcp6Subnet, o: &mut DhcpOptions) {
    if !s.dns.is_empty() {
        o.insert(DhcpOption::DomainNameServers(s.dns.clone()));
    }
    let names: Vec<_> = s
        .search
        .iter()
        .filter_map(|n| dhcproto::Name::from_ascii(format!("{}.", n.trim_end_matches('.'))).ok())
        .collect();
    if !names.is_empty() {
        o.insert(DhcpOption::DomainSearchList(names));
    }
    if !s.ntp.is_empty() {
        let subs = s.ntp.iter().map(|a| NtpSuboption::ServerAddress(*a));
        o.insert(DhcpOption::NtpServer(subs.collect()));
    }
}

fn status(status: Status, msg: &str) -> DhcpOption {
    DhcpOption::StatusCode(StatusCode {
        status,
        msg: msg.into(),
    })
}

fn secs(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

/// The IA_NA and IA_PD options of a message.
fn ias(msg: &Message) -> impl Iterator<Item = &DhcpOption> {
    msg.opts()
        .iter()
        .filter(|o| matches!(o, DhcpOption::IANA(_) | DhcpOption::IAPD(_)))
}

/// The addresses or prefixes a client put in an IA (hints, or what it holds).
fn ia_items(ia_opts: &DhcpOptions) -> Vec<(Ipv6Addr, u8)> {
    ia_opts
        .iter()
        .filter_map(|o| match o {
            DhcpOption::IAAddr(a) => Some((a.addr, 128)),
            DhcpOption::IAPrefix(p) => Some((p.prefix_ip, p.prefix_len)),
            _ => None,
        })
        .collect()
}

/// The hardware address inside a DUID-LLT (type 1) or DUID-LL (type 3) of Ethernet.
pub fn duid_mac(duid: &[u8]) -> Option<[u8; 6]> {
    let at = match duid.get(..4)? {
        [0, 1, 0, 1] => 8,
        [0, 3, 0, 1] => 4,
        _ => return None,
    };
    duid.get(at..)?.try_into().ok()
}

struct Decider<'a> {
    ctx: &'a Ctx<'a>,
    link: Option<(usize, &'a Dhcp6Subnet)>,
    leases: &'a Leases6,
    now: u64,
    duid: Vec<u8>,
    /// Addresses and prefixes given to other IAs of this same message.
    taken: HashSet<(Ipv6Addr, u8)>,
    changes: Vec<Change6>,
}

impl Decider<'_> {
    fn key(&self, iaid: u32, kind: IaKind) -> Key6 {
        Key6 {
            duid: self.duid.clone(),
            iaid,
            kind,
        }
    }

    /// The client's live binding for an IA, on this link: an address in the subnet, or a
    /// prefix from one of its pd-pools (delegated prefixes lie outside the subnet's network).
    fn binding(&self, k: &Key6) -> Option<&Lease6> {
        let (_, s) = self.link?;
        self.leases.get(k).filter(|l| {
            l.state == State6::Bound
                && l.expires > self.now
                && match k.kind {
                    IaKind::Na => l.prefix_len == 128 && s.network.contains(&l.addr),
                    IaKind::Pd => s
                        .pd_pools
                        .iter()
                        .any(|p| p.delegated_len == l.prefix_len && p.prefix.contains(&l.addr)),
                }
        })
    }

    /// Free for `k`: nobody else holds it (live), not given to another IA here, not reserved
    /// for another client.
    fn usable(&self, addr: Ipv6Addr, len: u8, k: &Key6) -> bool {
        if self.taken.contains(&(addr, len)) {
            return false;
        }
        if let Some(l) = self.leases.holder(addr, len)
            && l.expires > self.now
            && l.key != *k
        {
            return false;
        }
        len != 128 || self.reserved_for(addr).is_none_or(|r| self.is_mine(r))
    }

    fn reserved_for(&self, addr: Ipv6Addr) -> Option<&Reservation6> {
        self.ctx.reservations.iter().find(|r| r.ip == addr)
    }

    fn is_mine(&self, r: &Reservation6) -> bool {
        match (&r.duid, r.mac) {
            (Some(d), _) => *d == self.duid,
            (None, Some(m)) => duid_mac(&self.duid).or(self.ctx.client_mac) == Some(m.0),
            (None, None) => false,
        }
    }

    /// An address for IA_NA `k`: its binding, its reservation, its hint, or the first free one.
    fn pick_addr(&self, k: &Key6, hints: &[(Ipv6Addr, u8)]) -> Option<Ipv6Addr> {
        let (si, s) = self.link?;
        if let Some(l) = self.binding(k)
            && !self.taken.contains(&(l.addr, 128))
        {
            return Some(l.addr);
        }
        let res = self.ctx.reservations.iter();
        if let Some(r) = res
            .filter(|r| r.subnet == si && self.is_mine(r))
            .find(|r| self.usable(r.ip, 128, k))
        {
            return Some(r.ip);
        }
        let in_pool = |a: Ipv6Addr| s.pools.iter().any(|p| p.range.contains(a));
        if let Some((a, _)) = hints
            .iter()
            .find(|(a, l)| *l == 128 && in_pool(*a) && self.usable(*a, 128, k))
        {
            return Some(*a);
        }
        // An address no binding holds: each miss is a reservation or an address taken by this
        // message, so the search ends after at most (reserved + taken + 1) steps per pool.
        for p in &s.pools {
            let mut from = Some(p.range.start);
            while let Some(a) = from.and_then(|f| self.leases.first_unheld(f, p.range.end)) {
                if self.usable(a, 128, k) {
                    return Some(a);
                }
                from = u128::from(a).checked_add(1).map(Ipv6Addr::from);
            }
        }
        // Every address is held: one whose binding has ended may go again. Among the first
        // (held + reserved + taken + 1) addresses of a pool one is free.
        let bound =
            (self.leases.len() + self.ctx.reservations.len() + self.taken.len() + 1) as u128;
        for p in &s.pools {
            let start = u128::from(p.range.start);
            for i in 0..p.range.len().min(bound) {
                let a = Ipv6Addr::from(start + i);
                if self.usable(a, 128, k) {
                    return Some(a);
                }
            }
        }
        None
    }

    /// A prefix for IA_PD `k`: its binding, its hint, or the first free one.
    fn pick_prefix(&self, k: &Key6, hints: &[(Ipv6Addr, u8)]) -> Option<(Ipv6Addr, u8)> {
        let (_, s) = self.link?;
        if let Some(l) = self.binding(k)
            && !self.taken.contains(&(l.addr, l.prefix_len))
        {
            return Some((l.addr, l.prefix_len));
        }
        let fits = |a: Ipv6Addr, len: u8| {
            s.pd_pools.iter().any(|p| {
                p.delegated_len == len
                    && p.prefix.contains(&a)
                    && u128::from(a).trailing_zeros() >= 128 - u32::from(len)
            })
        };
        if let Some(h) = hints
            .iter()
            .find(|(a, l)| fits(*a, *l) && self.usable(*a, *l, k))
        {
            return Some(*h);
        }
        let bound = (self.leases.len() + self.taken.len() + 1) as u128;
        for p in &s.pd_pools {
            let base = u128::from(p.prefix.network());
            let step = 1u128 << (128 - u32::from(p.delegated_len));
            for i in 0..p.count().min(bound) {
                let a = Ipv6Addr::from(base + i * step);
                if self.usable(a, p.delegated_len, k) {
                    return Some((a, p.delegated_len));
                }
            }
        }
        None
    }

    /// The IA option carrying `addr/len` with the subnet's lifetimes (or zero lifetimes).
    fn ia_with(&self, kind: IaKind, iaid: u32, items: &[(Ipv6Addr, u8, bool)]) -> DhcpOption {
        let s = self.link.map(|(_, s)| s);
        let (t1, t2, pref, valid) = s.map_or((0, 0, 0, 0), |s| {
            (secs(s.t1), secs(s.t2), secs(s.preferred), secs(s.valid))
        });
        let mut opts = DhcpOptions::new();
        for &(a, len, live) in items {
            let (p, v) = if live { (pref, valid) } else { (0, 0) };
            opts.insert(match kind {
                IaKind::Na => DhcpOption::IAAddr(IAAddr {
                    addr: a,
                    preferred_life: p,
                    valid_life: v,
                    opts: DhcpOptions::new(),
                }),
                IaKind::Pd => DhcpOption::IAPrefix(IAPrefix {
                    preferred_lifetime: p,
                    valid_lifetime: v,
                    prefix_len: len,
                    prefix_ip: a,
                    opts: DhcpOptions::new(),
                }),
            });
        }
        ia_option(kind, iaid, t1, t2, opts)
    }

    fn put(&mut self, k: Key6, addr: Ipv6Addr, len: u8) {
        let valid = self.link.map_or(0, |(_, s)| s.valid.as_secs());
        self.taken.insert((addr, len));
        // An ended binding of someone else on the same address or prefix goes with it.
        if let Some(old) = self.leases.holder(addr, len).filter(|l| l.key != k) {
            self.changes.push(Change6::Delete(old.key.clone()));
        }
        self.changes.push(Change6::Put(Lease6 {
            key: k,
            addr,
            prefix_len: len,
            starts: self.now,
            expires: self.now.saturating_add(valid),
            state: State6::Bound,
            hostname: None,
        }));
    }

    /// SOLICIT (offer only, or commit under Rapid Commit) and REQUEST (commit).
    fn assign(&mut self, msg: &Message, commit: bool) -> DhcpOptions {
        let mut out = DhcpOptions::new();
        for ia in ias(msg) {
            let (kind, iaid, hints) = ia_parts(ia);
            let k = self.key(iaid, kind);
            let got = match kind {
                IaKind::Na => self.pick_addr(&k, &hints).map(|a| (a, 128)),
                IaKind::Pd => self.pick_prefix(&k, &hints),
            };
            match got {
                Some((a, len)) => {
                    if commit {
                        self.put(k, a, len);
                    } else {
                        self.taken.insert((a, len));
                    }
                    out.insert(self.ia_with(kind, iaid, &[(a, len, true)]));
                }
                None => out.insert(ia_status(kind, iaid, none_avail(kind))),
            }
        }
        out
    }

    /// RENEW and REBIND: extend what the client holds; what it holds but may not keep goes back
    /// with zero lifetimes. A REBIND whose binding is gone gets a new one when it can.
    fn extend(&mut self, msg: &Message, rebind: bool) -> DhcpOptions {
        let mut out = DhcpOptions::new();
        for ia in ias(msg) {
            let (kind, iaid, held) = ia_parts(ia);
            let k = self.key(iaid, kind);
            let now_bound = self.binding(&k).map(|l| (l.addr, l.prefix_len));
            let got = match (now_bound, rebind) {
                (Some(b), _) => Some(b),
                (None, true) => match kind {
                    IaKind::Na => self.pick_addr(&k, &held).map(|a| (a, 128)),
                    IaKind::Pd => self.pick_prefix(&k, &held),
                },
                (None, false) => None,
            };
            let Some((a, len)) = got else {
                if rebind {
                    // Not appropriate here and nothing to give: the held items end now.
                    let zero: Vec<_> = held.iter().map(|&(a, l)| (a, l, false)).collect();
                    out.insert(self.ia_with(kind, iaid, &zero));
                } else {
                    out.insert(ia_status(kind, iaid, (Status::NoBinding, "no binding")));
                }
                continue;
            };
            self.put(k, a, len);
            let mut items = vec![(a, len, true)];
            items.extend(
                held.iter()
                    .filter(|h| **h != (a, len))
                    .map(|&(x, l)| (x, l, false)),
            );
            out.insert(self.ia_with(kind, iaid, &items));
        }
        out
    }

    fn release(&mut self, msg: &Message) -> DhcpOptions {
        let mut out = DhcpOptions::new();
        for ia in ias(msg) {
            let (kind, iaid, held) = ia_parts(ia);
            let k = self.key(iaid, kind);
            match self.leases.get(&k) {
                Some(l) if held.contains(&(l.addr, l.prefix_len)) => {
                    self.changes.push(Change6::Delete(k));
                }
                _ => out.insert(ia_status(kind, iaid, (Status::NoBinding, "no binding"))),
            }
        }
        out.insert(status(Status::Success, "released"));
        out
    }

    /// DECLINE: the address is in use elsewhere; it leaves the client and stays out of use for
    /// the probation period under a key of its own (DUID type 0xffff, which no client has).
    fn decline(&mut self, msg: &Message) -> DhcpOptions {
        let mut out = DhcpOptions::new();
        for ia in ias(msg) {
            let (kind, iaid, held) = ia_parts(ia);
            let k = self.key(iaid, kind);
            match self.leases.get(&k) {
                Some(l) if kind == IaKind::Na && held.contains(&(l.addr, 128)) => {
                    let mut duid = vec![0xff, 0xff];
                    duid.extend_from_slice(&l.addr.octets());
                    // The client's record goes (else a reload would find two for the address).
                    self.changes.push(Change6::Delete(k));
                    self.changes.push(Change6::Put(Lease6 {
                        key: Key6 {
                            duid,
                            iaid: 0,
                            kind: IaKind::Na,
                        },
                        addr: l.addr,
                        prefix_len: 128,
                        starts: self.now,
                        expires: self.now.saturating_add(self.ctx.decline_probation),
                        state: State6::Declined,
                        hostname: None,
                    }));
                }
                _ => out.insert(ia_status(kind, iaid, (Status::NoBinding, "no binding"))),
            }
        }
        out.insert(status(Status::Success, "declined"));
        out
    }

    /// CONFIRM: are the client's addresses on this link? Silent when it sent none, or when this
    /// link has no subnet to judge by.
    fn confirm(&self, msg: &Message) -> Option<DhcpOptions> {
        let (_, s) = self.link?;
        let addrs: Vec<Ipv6Addr> = ias(msg)
            .filter(|o| matches!(o, DhcpOption::IANA(_)))
            .flat_map(|ia| ia_parts(ia).2)
            .map(|(a, _)| a)
            .collect();
        if addrs.is_empty() {
            return None;
        }
        let mut out = DhcpOptions::new();
        out.insert(if addrs.iter().all(|a| s.network.contains(a)) {
            status(Status::Success, "all addresses on link")
        } else {
            status(Status::NotOnLink, "not on link")
        });
        Some(out)
    }
}

fn none_avail(kind: IaKind) -> (Status, &'static str) {
    match kind {
        IaKind::Na => (Status::NoAddrsAvail, "no addresses available"),
        IaKind::Pd => (Status::NoPrefixAvail, "no prefixes available"),
    }
}

fn ia_parts(ia: &DhcpOption) -> (IaKind, u32, Vec<(Ipv6Addr, u8)>) {
    match ia {
        DhcpOption::IAPD(p) => (IaKind::Pd, p.id, ia_items(&p.opts)),
        DhcpOption::IANA(n) => (IaKind::Na, n.id, ia_items(&n.opts)),
        _ => (IaKind::Na, 0, Vec::new()),
    }
}

fn ia_option(kind: IaKind, id: u32, t1: u32, t2: u32, opts: DhcpOptions) -> DhcpOption {
    match kind {
        IaKind::Na => DhcpOption::IANA(IANA { id, t1, t2, opts }),
        IaKind::Pd => DhcpOption::IAPD(IAPD { id, t1, t2, opts }),
    }
}

fn ia_status(kind: IaKind, iaid: u32, (st, text): (Status, &str)) -> DhcpOption {
    let mut o = DhcpOptions::new();
    o.insert(status(st, text));
    ia_option(kind, iaid, 0, 0, o)
}
