//! What a decision is made of: the request's interface and clock ([`Rx`]), the reply and where
//! it goes, lease changes, dynamic DNS actions and the DHCID identity behind them.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::lease::{Change, KeySource, Lease, LeaseState};

/// How long an offered address is held for the client that was offered it.
pub const OFFER_HOLD: u64 = 30;

/// The interface a request came in on.
#[derive(Debug, Clone, Copy)]
pub struct Rx<'a> {
    /// Interface name.
    pub iface: &'a str,
    /// Its IPv4 addresses.
    pub addrs: &'a [Ipv4Net],
    /// Unix seconds.
    pub now: u64,
    /// The shared lease database is unreachable: renew only leases known to be held, for their
    /// remaining time; allocate nothing new.
    pub offline: bool,
}

/// Why a request got no answer while the shared lease database is unreachable.
pub const OFFLINE: &str = "lease database unreachable: new allocation refused";

/// Where a reply goes (RFC 2131 section 4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest {
    /// To the relay at giaddr, port 67.
    Relay(Ipv4Addr),
    /// To the client's configured address, port 68.
    Unicast(Ipv4Addr),
    /// 255.255.255.255:68 on the interface.
    Broadcast,
    /// To yiaddr at this MAC (ARP entry added first), port 68.
    Hw {
        /// yiaddr.
        ip: Ipv4Addr,
        /// chaddr.
        mac: [u8; 6],
    },
}

/// A reply ready to send.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Encoded message.
    pub bytes: Vec<u8>,
    /// Destination.
    pub dest: Dest,
    /// What it is, for logs and counters.
    pub kind: &'static str,
    /// yiaddr.
    pub yiaddr: Ipv4Addr,
}

/// A dynamic DNS action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dns {
    /// Publish `name -> ip` and the PTR, unless another client holds the name.
    Add {
        /// Host label.
        name: String,
        /// Address.
        ip: Ipv4Addr,
        /// Who asks: the DHCID record that marks the name as this client's.
        id: ClientId,
    },
    /// Remove them, if they are still this client's.
    Remove {
        /// Host label.
        name: String,
        /// Address.
        ip: Ipv4Addr,
        /// Whose records they are.
        id: ClientId,
    },
}

/// The client identity a DHCID record is computed from (RFC 4701 section 3.3): identifier type
/// and identifier bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientId {
    /// 0: htype and chaddr; 1: the client identifier option's data; 2: a DUID.
    pub kind: u16,
    /// The identifier.
    pub data: Vec<u8>,
}

/// `type/hex:bytes`, as in logs.
impl std::fmt::Debug for ClientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind, crate::lease::hex_colon(&self.data))
    }
}

impl ClientId {
    /// From a lease-table key (option 61's data, else htype + chaddr), where it came from, and
    /// chaddr. Option 61 gives type 1 over its data (also when it equals htype + chaddr), or
    /// type 2 over the DUID of an RFC 4361 identifier (type 255, IAID, DUID); no option 61
    /// gives type 0 over htype + chaddr. A lease written before the source was kept gets what
    /// that dhcpd published: type 0 whenever the key is htype + chaddr.
    pub fn of(key: &[u8], chaddr: &[u8], source: KeySource) -> ClientId {
        let hardware = match source {
            KeySource::Hardware => true,
            KeySource::ClientId => false,
            // As that dhcpd did: a DUID first, then htype + chaddr.
            KeySource::Legacy => {
                !matches!(key, [255, _, _, _, _, duid @ ..] if !duid.is_empty())
                    && matches!(key, [_, rest @ ..] if rest == chaddr)
            }
        };
        let (kind, data) = match key {
            _ if hardware => (0, key),
            [255, _, _, _, _, duid @ ..] if !duid.is_empty() => (2, duid),
            _ => (1, key),
        };
        ClientId {
            kind,
            data: data.to_vec(),
        }
    }

    /// The identity of the DNS records of a lease.
    pub fn of_lease(l: &Lease) -> ClientId {
        ClientId::of(&l.client, &l.hwaddr, l.key_source)
    }
}

/// What to do about one request.
#[derive(Debug, Default)]
pub struct Decision {
    /// The reply, if any.
    pub reply: Option<Reply>,
    /// Lease table changes (persistent ones are committed before the reply leaves).
    pub changes: Vec<Change>,
    /// Ping this address first; on an answer put it on probation and send nothing.
    pub probe: Option<Ipv4Addr>,
    /// DNS updates to send after the changes are durable.
    pub dns: Vec<Dns>,
    /// Why nothing was sent (for logs/counters) when `reply` is `None`.
    pub silent: Option<&'static str>,
    /// The request was malformed (counted as bad input).
    pub bad: bool,
}

impl Decision {
    pub(crate) fn silent(why: &'static str) -> Self {
        Decision {
            silent: Some(why),
            ..Default::default()
        }
    }
    pub(crate) fn bad(why: &'static str) -> Self {
        Decision {
            silent: Some(why),
            bad: true,
            ..Default::default()
        }
    }
}

/// A probation record for `ip` (DECLINE or a ping answer).
pub fn probation(ip: Ipv4Addr, now: u64, secs: u64) -> Lease {
    Lease {
        ip,
        client: Vec::new(),
        key_source: KeySource::Hardware,
        hwaddr: Vec::new(),
        hostname: None,
        starts: now,
        expires: now.saturating_add(secs),
        state: LeaseState::Declined,
    }
}
