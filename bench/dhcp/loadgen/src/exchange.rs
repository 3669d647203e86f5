//! The exchanges under way, as a pure state machine: every DISCOVER (SOLICIT) opens slot `idx`
//! (its xid is `base + idx`, cut to the family's xid width), every reply is matched back by xid
//! and client (chaddr, or the DUID-LL's link-layer address) and moves its slot on. No sockets and
//! no clock here: the caller passes the time in microseconds since the start. The same machine
//! serves both families: the parsers (`packet`, `packet6`) reduce a reply to a [`Reply`].

use crate::packet::Clients;

/// What a reply means to its exchange, in either family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// OFFER, ADVERTISE
    Offer,
    /// ACK, or a REPLY that assigns an address
    Ack,
    /// NAK, or a REPLY without an address (a status code such as NoAddrsAvail)
    Nak,
    /// any other message type
    Other,
}

/// The fields of a reply the exchange needs, borrowed from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reply<'a> {
    pub(crate) xid: u32,
    pub(crate) kind: Kind,
    /// the client it is for: chaddr (v4), the DUID-LL's link-layer address (v6)
    pub(crate) client: [u8; 6],
    /// the address offered or assigned (v4 as ::ffff:a.b.c.d); None when it carries none
    pub(crate) addr: Option<[u8; 16]>,
    /// server identifier: option 54's 4 octets (v4), the server's DUID (v6)
    pub(crate) server_id: Option<&'a [u8]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    DiscoverSent,
    /// OFFER in, REQUEST queued but not yet sent
    Offered,
    RequestSent,
    Acked,
    Naked,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    state: State,
    /// microseconds since the start: when the DISCOVER, then the REQUEST, left
    t_discover: u32,
    t_request: u32,
}

/// What the caller must do after a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action<'a> {
    /// An OFFER (ADVERTISE) for an open exchange: send its REQUEST.
    Request {
        idx: u64,
        xid: u32,
        mac: [u8; 6],
        addr: [u8; 16],
        server_id: &'a [u8],
    },
    /// An ACK (or NAK; a REPLY) closed its exchange.
    Done,
    /// Nothing to send: the reply was counted as an orphan, a duplicate or unusable.
    None,
}

/// Delay histogram in buckets of 100 us up to 10 s (the last bucket holds everything beyond).
#[derive(Debug, Clone)]
pub(crate) struct Delays {
    buckets: Vec<u32>,
    pub(crate) n: u64,
    sum_us: u64,
    pub(crate) min_us: u32,
    pub(crate) max_us: u32,
    /// replies later than the drop time (perfdhcp would have counted these as drops, -d 1 s)
    pub(crate) late: u64,
}

const BUCKET_US: u32 = 100;
const BUCKETS: usize = 100_001;
/// perfdhcp's default drop time (-d): a reply later than this it no longer matches.
pub(crate) const LATE_US: u32 = 1_000_000;

impl Delays {
    fn new() -> Self {
        Self {
            buckets: vec![0; BUCKETS],
            n: 0,
            sum_us: 0,
            min_us: u32::MAX,
            max_us: 0,
            late: 0,
        }
    }

    fn add(&mut self, us: u32) {
        self.buckets[((us / BUCKET_US) as usize).min(BUCKETS - 1)] += 1;
        self.n += 1;
        self.sum_us += u64::from(us);
        self.min_us = self.min_us.min(us);
        self.max_us = self.max_us.max(us);
        if us > LATE_US {
            self.late += 1;
        }
    }

    pub(crate) fn avg_us(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.sum_us as f64 / self.n as f64
        }
    }

    /// Upper edge of the bucket holding the q-quantile (0 < q <= 1), in microseconds.
    pub(crate) fn quantile_us(&self, q: f64) -> u32 {
        let want = ((self.n as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        for (i, c) in self.buckets.iter().enumerate() {
            seen += u64::from(*c);
            if seen >= want {
                return (i as u32 + 1) * BUCKET_US;
            }
        }
        0
    }
}

/// Counters for the report.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counts {
    pub(crate) discovers: u64,
    pub(crate) offers: u64,
    pub(crate) requests: u64,
    pub(crate) acks: u64,
    pub(crate) naks: u64,
    /// replies whose xid or chaddr matches no exchange we opened
    pub(crate) orphans: u64,
    /// a second OFFER or ACK for the same exchange, or a reply in the wrong state
    pub(crate) duplicates: u64,
    /// OFFERs without a server identifier or address (no REQUEST can be built), other types
    pub(crate) unusable: u64,
}

#[derive(Debug)]
pub(crate) struct Exchanges {
    base: u32,
    /// u32::MAX for DHCPv4's 32-bit xid, 0xff_ffff for DHCPv6's 24-bit transaction id
    xid_mask: u32,
    clients: Clients,
    slots: Vec<Slot>,
    pub(crate) counts: Counts,
    pub(crate) offer_delay: Delays,
    pub(crate) ack_delay: Delays,
    /// (address, client) for every ACK: the uniqueness check at the end
    acked: Vec<([u8; 16], u32)>,
}

impl Exchanges {
    /// `xid_mask`: the family's transaction id width (see the field); a run must not open more
    /// than `xid_mask + 1` exchanges (the caller bounds it).
    pub(crate) fn new(base: u32, xid_mask: u32, clients: Clients, capacity: usize) -> Self {
        Self {
            base: base & xid_mask,
            xid_mask,
            clients,
            slots: Vec::with_capacity(capacity),
            counts: Counts::default(),
            offer_delay: Delays::new(),
            ack_delay: Delays::new(),
            acked: Vec::with_capacity(capacity),
        }
    }

    /// Opens the next exchange: its xid and chaddr for the DISCOVER that is about to leave.
    pub(crate) fn open(&mut self, now_us: u32) -> (u32, [u8; 6]) {
        let idx = self.slots.len() as u64;
        self.slots.push(Slot {
            state: State::DiscoverSent,
            t_discover: now_us,
            t_request: 0,
        });
        self.counts.discovers += 1;
        (
            self.base.wrapping_add(idx as u32) & self.xid_mask,
            self.clients.mac(idx),
        )
    }

    /// Takes back the last `n` exchanges opened (their DISCOVERs could not be sent).
    pub(crate) fn unopen(&mut self, n: u64) {
        let keep = self.slots.len() - n as usize;
        self.slots.truncate(keep);
        self.counts.discovers -= n;
    }

    /// The REQUEST of exchange `idx` left.
    pub(crate) fn request_sent(&mut self, idx: u64, now_us: u32) {
        let slot = &mut self.slots[idx as usize];
        debug_assert_eq!(slot.state, State::Offered);
        slot.state = State::RequestSent;
        slot.t_request = now_us;
        self.counts.requests += 1;
    }

    /// Matches a reply to its exchange and moves it on.
    pub(crate) fn on_reply<'a>(&mut self, r: &Reply<'a>, now_us: u32) -> Action<'a> {
        let idx = u64::from(r.xid.wrapping_sub(self.base) & self.xid_mask);
        let Some(slot) = self.slots.get_mut(idx as usize) else {
            self.counts.orphans += 1;
            return Action::None;
        };
        let mac = self.clients.mac(idx);
        if r.client != mac {
            self.counts.orphans += 1;
            return Action::None;
        }
        match (r.kind, slot.state) {
            (Kind::Offer, State::DiscoverSent) => {
                let (Some(server_id), Some(addr)) = (r.server_id, r.addr) else {
                    self.counts.unusable += 1;
                    return Action::None;
                };
                slot.state = State::Offered;
                self.counts.offers += 1;
                self.offer_delay.add(now_us.saturating_sub(slot.t_discover));
                Action::Request {
                    idx,
                    xid: r.xid,
                    mac,
                    addr,
                    server_id,
                }
            }
            (Kind::Ack | Kind::Nak, State::RequestSent) => {
                self.ack_delay.add(now_us.saturating_sub(slot.t_request));
                if let (Kind::Ack, Some(addr)) = (r.kind, r.addr) {
                    slot.state = State::Acked;
                    self.counts.acks += 1;
                    self.acked.push((addr, self.clients.client(idx)));
                } else {
                    slot.state = State::Naked;
                    self.counts.naks += 1;
                }
                Action::Done
            }
            (Kind::Offer | Kind::Ack | Kind::Nak, _) => {
                self.counts.duplicates += 1;
                Action::None
            }
            _ => {
                self.counts.unusable += 1;
                Action::None
            }
        }
    }

    pub(crate) fn opened(&self) -> u64 {
        self.slots.len() as u64
    }

    /// Exchanges still waiting for an OFFER or an ACK.
    pub(crate) fn outstanding(&self) -> u64 {
        (self.counts.discovers - self.counts.offers)
            + (self.counts.offers - self.counts.acks - self.counts.naks)
    }

    /// Addresses ACKed to more than one client (the server's uniqueness, checked at the end).
    pub(crate) fn non_unique_addresses(&mut self) -> u64 {
        self.acked.sort_unstable();
        self.acked.dedup();
        self.acked.windows(2).filter(|w| w[0].0 == w[1].0).count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID: &[u8] = &[10, 20, 0, 1];

    fn v4(a: [u8; 4]) -> [u8; 16] {
        std::net::Ipv4Addr::from(a).to_ipv6_mapped().octets()
    }

    fn offer(xid: u32, mac: [u8; 6], addr: [u8; 4]) -> Reply<'static> {
        Reply {
            xid,
            kind: Kind::Offer,
            client: mac,
            addr: Some(v4(addr)),
            server_id: Some(SID),
        }
    }

    #[test]
    fn a_four_way_exchange() {
        let mut x = Exchanges::new(1000, u32::MAX, Clients::new(100), 10);
        let (xid, mac) = x.open(10);
        assert_eq!(xid, 1000);
        let a = x.on_reply(&offer(xid, mac, [10, 17, 0, 1]), 250);
        assert_eq!(
            a,
            Action::Request {
                idx: 0,
                xid,
                mac,
                addr: v4([10, 17, 0, 1]),
                server_id: SID
            }
        );
        assert_eq!(x.outstanding(), 1);
        // an ACK before its REQUEST left is out of order
        let early = Reply {
            kind: Kind::Ack,
            ..offer(xid, mac, [10, 17, 0, 1])
        };
        assert_eq!(x.on_reply(&early, 260), Action::None);
        assert_eq!(x.counts.duplicates, 1);
        x.request_sent(0, 300);
        let ack = Reply {
            kind: Kind::Ack,
            ..offer(xid, mac, [10, 17, 0, 1])
        };
        assert_eq!(x.on_reply(&ack, 1300), Action::Done);
        assert_eq!(x.outstanding(), 0);
        assert_eq!(
            (
                x.counts.discovers,
                x.counts.offers,
                x.counts.requests,
                x.counts.acks
            ),
            (1, 1, 1, 1)
        );
        assert_eq!((x.offer_delay.min_us, x.ack_delay.max_us), (240, 1000));
        // a second ACK is a duplicate, not a second completion
        assert_eq!(x.on_reply(&ack, 1400), Action::None);
        assert_eq!((x.counts.acks, x.counts.duplicates), (1, 2));
    }

    #[test]
    fn replies_that_match_nothing_are_orphans() {
        let mut x = Exchanges::new(u32::MAX - 1, u32::MAX, Clients::new(100), 10);
        let (xid0, mac0) = x.open(0);
        let (xid1, _) = x.open(0);
        assert_eq!(xid1, xid0.wrapping_add(1)); // xids wrap around u32
        // unknown xid
        assert_eq!(
            x.on_reply(&offer(xid0.wrapping_add(5), mac0, [1; 4]), 1),
            Action::None
        );
        // right xid, wrong chaddr
        assert_eq!(x.on_reply(&offer(xid1, mac0, [1; 4]), 1), Action::None);
        assert_eq!(x.counts.orphans, 2);
        // an ACK before any OFFER is out of order
        let ack = Reply {
            kind: Kind::Ack,
            ..offer(xid0, mac0, [1; 4])
        };
        assert_eq!(x.on_reply(&ack, 1), Action::None);
        assert_eq!(x.counts.duplicates, 1);
        // an OFFER without server id cannot be requested
        let no_sid = Reply {
            server_id: None,
            ..offer(xid0, mac0, [1; 4])
        };
        assert_eq!(x.on_reply(&no_sid, 1), Action::None);
        // nor an ADVERTISE without an address
        let no_addr = Reply {
            addr: None,
            ..offer(xid0, mac0, [1; 4])
        };
        assert_eq!(x.on_reply(&no_addr, 1), Action::None);
        assert_eq!(x.counts.unusable, 2);
        assert_eq!(x.outstanding(), 2);
    }

    #[test]
    fn nak_closes_without_completing() {
        let mut x = Exchanges::new(0, u32::MAX, Clients::new(10), 1);
        let (xid, mac) = x.open(0);
        x.on_reply(&offer(xid, mac, [1; 4]), 1);
        x.request_sent(0, 2);
        let nak = Reply {
            kind: Kind::Nak,
            ..offer(xid, mac, [0; 4])
        };
        assert_eq!(x.on_reply(&nak, 3), Action::Done);
        assert_eq!((x.counts.acks, x.counts.naks, x.outstanding()), (0, 1, 0));
    }

    #[test]
    fn v6_transaction_ids_wrap_at_24_bits() {
        let mut x = Exchanges::new(0xffff_fffe, 0xff_ffff, Clients::new(10), 4);
        let (a, mac_a) = x.open(0);
        let (b, mac_b) = x.open(0);
        let (c, _) = x.open(0);
        assert_eq!((a, b, c), (0xff_fffe, 0xff_ffff, 0));
        // the third exchange's reply (xid 0) is slot 2
        let mac_c = Clients::new(10).mac(2);
        assert!(matches!(
            x.on_reply(&offer(0, mac_c, [1; 4]), 5),
            Action::Request { idx: 2, xid: 0, .. }
        ));
        assert!(matches!(
            x.on_reply(&offer(a, mac_a, [2; 4]), 6),
            Action::Request { idx: 0, .. }
        ));
        // the second exchange's xid with the first one's client matches nothing
        assert_eq!(x.on_reply(&offer(b, mac_a, [3; 4]), 7), Action::None);
        assert_eq!(x.counts.orphans, 1);
        assert_ne!(mac_a, mac_b);
    }

    #[test]
    fn uniqueness_counts_addresses_given_to_two_clients() {
        let mut x = Exchanges::new(0, u32::MAX, Clients::new(1000), 4);
        let ack = |x: &mut Exchanges, addr: [u8; 4]| {
            let (xid, mac) = x.open(0);
            let idx = u64::from(xid);
            x.on_reply(&offer(xid, mac, addr), 1);
            x.request_sent(idx, 1);
            let a = Reply {
                kind: Kind::Ack,
                ..offer(xid, mac, addr)
            };
            assert_eq!(x.on_reply(&a, 2), Action::Done);
        };
        ack(&mut x, [10, 0, 0, 1]);
        ack(&mut x, [10, 0, 0, 2]);
        ack(&mut x, [10, 0, 0, 1]);
        assert_eq!(x.non_unique_addresses(), 1);
    }

    #[test]
    fn delay_quantiles() {
        let mut d = Delays::new();
        for us in [50, 150, 150, 250, 2_000_000] {
            d.add(us);
        }
        assert_eq!(d.quantile_us(0.5), 200);
        assert_eq!(d.quantile_us(0.8), 300);
        assert_eq!(d.quantile_us(1.0), 2_000_100);
        assert_eq!((d.min_us, d.max_us, d.late), (50, 2_000_000, 1));
        assert_eq!(d.avg_us(), 400_120.0);
    }
}
