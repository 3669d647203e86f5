//! Host names of DHCPv6 clients: the Client FQDN option (RFC 4704, code 39; dhcproto has no
//! type for it, so it is read and written here), the name each binding keeps in the lease
//! store, and the dynamic DNS events of a decision's binding changes. Pure: the core calls
//! these between deciding and sending.
//!
//! The flags (RFC 4704 section 4.1): with dynamic DNS on, the server does the AAAA and PTR
//! updates whether the client set S or not (O tells when that overrides it, as Kea's
//! `ddns-override-client-update` and the v4 server do); a client that sets N ("no updates")
//! gets none, neither AAAA nor PTR, and N back with S clear, as Kea does by default
//! (`ddns-override-no-update = false`: its answer to N=1 is N=1, S=0, O=0). Kea drops a message
//! with the forbidden N=1, S=1; this server honours the N and answers S=0 with O set (its S
//! differs from the client's).

use std::net::Ipv6Addr;

use dhcproto::v6::{DhcpOption, Message, MessageType, OptionCode, UnknownOption};
use hostfile::Reservation6;

use super::lease::{Change6, IaKind, Lease6, Leases6, State6};
use crate::ddns::v6::Event6;
use crate::decode::sanitize_label;

/// Flag S: the server performs the AAAA update (RFC 4704 section 4.1).
pub const FLAG_S: u8 = 0x01;
/// Flag O: the server overrode the client's S.
pub const FLAG_O: u8 = 0x02;
/// Flag N: the server performs no update.
pub const FLAG_N: u8 = 0x04;

/// A Client FQDN option's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFqdn {
    /// The flags octet (N, O, S).
    pub flags: u8,
    /// The labels of the name.
    pub labels: Vec<String>,
    /// True for a full name (ends with the root label), false for a partial one.
    pub full: bool,
}

/// Reads the option's data: the flags, then the name in DNS wire form, uncompressed, full or
/// partial (no root label at the end). `None` for a malformed option.
pub fn parse(data: &[u8]) -> Option<ClientFqdn> {
    let (&flags, mut rest) = data.split_first()?;
    let mut labels = Vec::new();
    let mut full = false;
    while let Some((&len, tail)) = rest.split_first() {
        if len == 0 {
            full = true;
            if !tail.is_empty() {
                return None;
            }
            break;
        }
        if len > 63 || tail.len() < usize::from(len) {
            return None;
        }
        let (label, tail) = tail.split_at(usize::from(len));
        labels.push(String::from_utf8_lossy(label).into_owned());
        rest = tail;
    }
    Some(ClientFqdn {
        flags,
        labels,
        full,
    })
}

/// The option's data for a full name (`a.b.c`, trailing dot or not).
pub fn encode(flags: u8, name: &str) -> Vec<u8> {
    let mut v = vec![flags];
    for l in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        let l = &l.as_bytes()[..l.len().min(63)];
        v.push(l.len() as u8);
        v.extend_from_slice(l);
    }
    v.push(0);
    v
}

/// The Client FQDN option a message carries.
pub fn of(msg: &Message) -> Option<ClientFqdn> {
    match msg.opts().get(OptionCode::ClientFqdn)? {
        DhcpOption::Unknown(u) => parse(u.data()),
        _ => None,
    }
}

/// The host label the client asks for: the first label of its Client FQDN, made DNS-safe (the
/// rest of the name is the server's: the forward zone).
pub fn client_label(msg: &Message) -> Option<String> {
    of(msg)?.labels.first().and_then(|l| sanitize_label(l))
}

/// True when the client's Client FQDN option sets N: it asks that the server make no DNS
/// updates at all.
pub fn no_update(msg: &Message) -> bool {
    of(msg).is_some_and(|f| f.flags & FLAG_N != 0)
}

/// The flags of the server's Client FQDN option, for the client's `asked` flags, when the
/// server has dynamic DNS (`ddns`): S when it updates (dynamic DNS on and N clear), N exactly
/// when it does not (N=1 requires S=0), O when its S differs from the client's.
pub fn reply_flags(asked: u8, ddns: bool) -> u8 {
    let updates = ddns && asked & FLAG_N == 0;
    let s = if updates { FLAG_S } else { 0 };
    let n = if updates { 0 } else { FLAG_N };
    let o = if (asked & FLAG_S != 0) != updates {
        FLAG_O
    } else {
        0
    };
    n | s | o
}

/// Gives the bindings a message makes or extends (its changes, before they are written) the
/// client's host name, which the lease store keeps with them: a reserved address its
/// reservation's name; any other binding of the message the reserved name of this client, else
/// the first label of its Client FQDN (made DNS-safe), else the name the binding had in
/// `before` (a renewal without the option keeps it). Declined addresses carry none. The name
/// is kept whatever the client's N flag says: N is about DNS updates, not about the lease.
pub fn name_bindings(
    msg: &Message,
    changes: &mut [Change6],
    reservations: &[Reservation6],
    before: &Leases6,
) {
    let reserved = |a: Ipv6Addr| {
        reservations
            .iter()
            .find(|r| r.ip == a)
            .map(|r| r.hostname.clone())
    };
    let client = changes
        .iter()
        .find_map(|c| match c {
            Change6::Put(l) if is_address(l) => reserved(l.addr),
            _ => None,
        })
        .or_else(|| client_label(msg));
    for c in changes {
        if let Change6::Put(l) = c
            && l.state == State6::Bound
        {
            l.hostname = (l.prefix_len == 128)
                .then(|| reserved(l.addr))
                .flatten()
                .or_else(|| client.clone())
                .or_else(|| before.get(&l.key).and_then(|o| o.hostname.clone()));
        }
    }
}

/// The name of a binding of `addr`: its reservation's host name, else the client's label.
pub fn name_for(
    addr: Ipv6Addr,
    reservations: &[Reservation6],
    msg: Option<&Message>,
) -> Option<String> {
    reservations
        .iter()
        .find(|r| r.ip == addr)
        .map(|r| r.hostname.clone())
        .or_else(|| msg.and_then(client_label))
}

/// The dynamic DNS events of binding changes that are durable now: for the IA_NA bindings made
/// or extended, the name (from `msg`, the client's message, or its reservation) goes with one of
/// them, the reserved address else the lowest IAID (one AAAA per name, as Kea publishes one
/// address; the others keep what they had); an end for each IA_NA binding removed. Without
/// `msg` (expiry) only ends. A client that set N (no updates) gets no additions: only the ends
/// of what was published before.
pub fn events(
    msg: Option<&Message>,
    changes: &[Change6],
    reservations: &[Reservation6],
) -> Vec<Event6> {
    let update = !msg.is_some_and(no_update);
    let reserved = |a: Ipv6Addr| reservations.iter().any(|r| r.ip == a);
    let named = changes
        .iter()
        .filter_map(|c| match c {
            Change6::Put(l) if is_address(l) => Some(l),
            _ => None,
        })
        .min_by_key(|l| (!reserved(l.addr), l.key.iaid))
        .map(|l| l.key.clone());
    changes
        .iter()
        .filter_map(|c| match c {
            Change6::Put(l) if update && is_address(l) => Some(Event6::Bound {
                duid: l.key.duid.clone(),
                iaid: l.key.iaid,
                addr: l.addr,
                name: (named.as_ref() == Some(&l.key))
                    .then(|| name_for(l.addr, reservations, msg))
                    .flatten(),
            }),
            Change6::Delete(k) if k.kind == IaKind::Na => Some(Event6::Unbound {
                duid: k.duid.clone(),
                iaid: k.iaid,
            }),
            _ => None,
        })
        .collect()
}

/// A bound IA_NA address (not a prefix, not a declined address).
fn is_address(l: &Lease6) -> bool {
    l.key.kind == IaKind::Na && l.prefix_len == 128 && l.state == State6::Bound
}

/// Puts the Client FQDN option in an ADVERTISE or REPLY to SOLICIT, REQUEST, RENEW or REBIND
/// whose client sent one (RFC 4704 section 6): the name the server uses (the reservation's or
/// the client's label under `zone`) with the flags of [`reply_flags`] (`ddns`: dynamic DNS is
/// on).
pub fn answer(
    msg: &Message,
    reply: &mut Message,
    reservations: &[Reservation6],
    zone: &str,
    ddns: bool,
) {
    use MessageType as T;
    if !matches!(
        msg.msg_type(),
        T::Solicit | T::Request | T::Renew | T::Rebind
    ) {
        return;
    }
    let Some(asked) = of(msg) else {
        return;
    };
    let addr = reply.opts().iter().find_map(|o| match o {
        DhcpOption::IANA(ia) => ia.opts.iter().find_map(|a| match a {
            DhcpOption::IAAddr(a) if a.valid_life > 0 => Some(a.addr),
            _ => None,
        }),
        _ => None,
    });
    let name = match addr {
        Some(a) => name_for(a, reservations, Some(msg)),
        None => client_label(msg),
    };
    let Some(name) = name else {
        return;
    };
    let data = encode(
        reply_flags(asked.flags, ddns),
        &format!("{name}.{}", zone.trim_end_matches('.')),
    );
    reply
        .opts_mut()
        .insert(DhcpOption::Unknown(UnknownOption::new(
            OptionCode::ClientFqdn,
            data,
        )));
}

#[cfg(test)]
mod tests;
