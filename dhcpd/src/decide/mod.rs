//! Protocol decisions (RFC 2131 section 4.3): a pure function of the configuration, the lease
//! table, one request and the clock. The socket layer decodes, calls [`handle`], applies the
//! changes, makes the persistent ones durable, then sends the reply to [`Dest`].

mod decision;
mod exchange;

use std::net::Ipv4Addr;

use dhcproto::v4::{Message, MessageType, Opcode, OptionCode};

use crate::decode::{client_key, msg_type, opt_ip};
use crate::index::ViewIndex;
use crate::lease::{Change, LeaseState, LeaseTable};

pub use self::decision::{
    ClientId, Decision, Dest, Dns, OFFER_HOLD, OFFLINE, Reply, Rx, probation,
};
use self::exchange::Ctx;

/// Picks the subnet: by option 118 or giaddr when relayed, else by the receiving interface.
fn select_subnet(cfg: &ViewIndex, m: &Message, rx: &Rx<'_>) -> Option<usize> {
    let relayed = !m.giaddr().is_unspecified();
    if relayed {
        let ip = opt_ip(m, OptionCode::SubnetSelection).unwrap_or(m.giaddr());
        return cfg.subnet_of(ip);
    }
    let subnets = &cfg.view.subnets;
    subnets
        .iter()
        .position(|s| s.interface.as_deref() == Some(rx.iface))
        .or_else(|| {
            subnets.iter().position(|s| {
                s.interface.is_none() && rx.addrs.iter().any(|a| s.network.contains(&a.addr()))
            })
        })
}

fn server_id(cfg: &ViewIndex, subnet: usize, rx: &Rx<'_>) -> Option<Ipv4Addr> {
    let net = cfg.subnet(subnet).network;
    rx.addrs
        .iter()
        .map(|a| a.addr())
        .find(|a| net.contains(a))
        .or_else(|| rx.addrs.first().map(|a| a.addr()))
}

/// Leases whose time is up (at most `limit`): bound ones expire and lose their DNS records, stale
/// offers and finished probation are forgotten.
pub fn expire(t: &LeaseTable, now: u64, limit: usize) -> Decision {
    let mut d = Decision::default();
    for e in expire_each(t, now, limit) {
        d.changes.extend(e.changes);
        d.dns.extend(e.dns);
    }
    d
}

/// [`expire`], one decision per lease: each is committed on its own, so a shared database that
/// refuses one (another server of the pair renewed it) keeps that lease's name in DNS and
/// leaves the others' removals alone.
pub fn expire_each(t: &LeaseTable, now: u64, limit: usize) -> Vec<Decision> {
    t.expiries(now, limit)
        .into_iter()
        .map(|c| {
            let dns = match &c {
                Change::Put(l) if l.state == LeaseState::Expired => {
                    l.hostname.as_ref().map(|h| Dns::Remove {
                        name: h.clone(),
                        ip: l.ip,
                        id: ClientId::of_lease(l),
                    })
                }
                _ => None,
            };
            Decision {
                changes: vec![c],
                dns: dns.into_iter().collect(),
                ..Default::default()
            }
        })
        .collect()
}

/// A bound lease given back at `now`, as a DHCPRELEASE from its client does it: the record
/// becomes `released`, its name (if any) is withdrawn.
fn released(l: &crate::lease::Lease, now: u64) -> Decision {
    let mut d = Decision::silent("RELEASE");
    if let Some(h) = &l.hostname {
        d.dns.push(Dns::Remove {
            name: h.clone(),
            ip: l.ip,
            id: ClientId::of_lease(l),
        });
    }
    d.changes.push(Change::Put(crate::lease::Lease {
        state: LeaseState::Released,
        expires: now,
        ..l.clone()
    }));
    d
}

/// `dhcpd release IP` (the administrator, not the client): the same as the client's
/// DHCPRELEASE; `None` when no lease is bound on `ip`.
pub fn admin_release(t: &LeaseTable, ip: Ipv4Addr, now: u64) -> Option<Decision> {
    t.get(ip)
        .filter(|l| l.state == LeaseState::Bound)
        .map(|l| released(l, now))
}

/// Decides what to do about `req`, received on `rx`.
pub fn handle(cfg: &ViewIndex, t: &LeaseTable, req: &Message, rx: &Rx<'_>) -> Decision {
    if req.opcode() != Opcode::BootRequest {
        return Decision::bad("not a BOOTREQUEST");
    }
    if req.hops() > 16 {
        return Decision::bad("too many relay hops");
    }
    let Some(subnet) = select_subnet(cfg, req, rx) else {
        return Decision::silent("no subnet for this client");
    };
    let Some(server_id) = server_id(cfg, subnet, rx) else {
        return Decision::silent("no local address on the interface");
    };
    let ctx = Ctx {
        cfg,
        t,
        req,
        now: rx.now,
        subnet,
        server_id,
        key: client_key(req),
        offline: rx.offline,
    };
    match msg_type(req) {
        None => ctx.bootp(),
        Some(MessageType::Discover) => ctx.discover(),
        Some(MessageType::Request) => ctx.request(),
        Some(MessageType::Decline) => ctx.decline(),
        Some(MessageType::Release) => ctx.release(),
        Some(MessageType::Inform) => ctx.inform(),
        Some(_) => Decision::bad("not a client message type"),
    }
}

#[cfg(test)]
mod tests;
