//! What differs between the DHCPv4 and DHCPv6 runs, in one place: the packets (the templates
//! of `packet` and `packet6`), the parser, the transaction id width and the report's names. The
//! run loop in `main.rs` and the exchange machine are the same for both.

use crate::exchange::Reply;
use crate::io::Pkt;
use crate::packet::{self, Malformed, REQ_LEN};
use crate::packet6;

/// Names in the report: perfdhcp's for each family (scripts that read perfdhcp -4 or -6 read
/// these too), and the summary line's keys.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Names {
    /// the first message, e.g. "DISCOVER"
    pub(crate) first_msg: &'static str,
    /// the first exchange, e.g. "DISCOVER-OFFER"
    pub(crate) first: &'static str,
    /// the second, e.g. "REQUEST-ACK"
    pub(crate) second: &'static str,
    /// what a refusal is called in the report
    pub(crate) refused: &'static str,
    /// summary keys: completed exchanges per second, first-message drops, refusals
    pub(crate) done_key: &'static str,
    pub(crate) first_drop_key: &'static str,
    pub(crate) refused_key: &'static str,
}

#[derive(Debug, Clone, Copy)]
#[expect(
    clippy::large_enum_variant,
    reason = "one value per run, copied never: boxing would only add an indirection"
)]
pub(crate) enum Family {
    V4 {
        discover: [u8; REQ_LEN],
        request: [u8; REQ_LEN],
    },
    V6 {
        solicit: [u8; packet6::SOLICIT_LEN],
        request: [u8; packet6::REQ_FRONT],
    },
}

impl Family {
    /// DHCPv4 as a relay agent with address `giaddr`.
    pub(crate) fn v4(giaddr: std::net::Ipv4Addr) -> Self {
        Self::V4 {
            discover: packet::discover_template(giaddr),
            request: packet::request_template(giaddr),
        }
    }

    pub(crate) fn v6() -> Self {
        Self::V6 {
            solicit: packet6::solicit_template(),
            request: packet6::request_template(),
        }
    }

    /// Transaction ids: 32 bits in DHCPv4, 24 in DHCPv6.
    pub(crate) fn xid_mask(&self) -> u32 {
        match self {
            Self::V4 { .. } => u32::MAX,
            Self::V6 { .. } => 0xff_ffff,
        }
    }

    /// The first message's template (DISCOVER, SOLICIT), to stamp with [`Family::stamp`].
    pub(crate) fn first(&self) -> Pkt {
        match self {
            Self::V4 { discover, .. } => Pkt::of(discover),
            Self::V6 { solicit, .. } => Pkt::of(solicit),
        }
    }

    /// Writes an exchange's xid and client into a copy of [`Family::first`].
    pub(crate) fn stamp(&self, p: &mut Pkt, xid: u32, mac: [u8; 6]) {
        match self {
            Self::V4 { .. } => {
                let b: &mut [u8; REQ_LEN] = (&mut p.buf[..REQ_LEN]).try_into().expect("300");
                packet::stamp(b, xid, mac);
            }
            Self::V6 { .. } => packet6::stamp(&mut p.buf, xid, mac),
        }
    }

    /// The REQUEST answering an OFFER (ADVERTISE) of address `addr` from server `sid`.
    pub(crate) fn request(&self, xid: u32, mac: [u8; 6], addr: &[u8; 16], sid: &[u8]) -> Pkt {
        let mut p = Pkt::EMPTY;
        match self {
            Self::V4 { request, .. } => {
                let mut b = *request;
                packet::stamp_request(&mut b, xid, mac, addr, sid);
                p.buf[..REQ_LEN].copy_from_slice(&b);
                p.len = REQ_LEN;
            }
            Self::V6 { request, .. } => {
                p.len = packet6::build_request(&mut p.buf, request, xid, mac, addr, sid);
            }
        }
        p
    }

    pub(crate) fn parse<'a>(&self, b: &'a [u8]) -> Result<Reply<'a>, Malformed> {
        match self {
            Self::V4 { .. } => packet::parse_reply(b),
            Self::V6 { .. } => packet6::parse_reply(b),
        }
    }

    pub(crate) fn names(&self) -> Names {
        match self {
            Self::V4 { .. } => Names {
                first_msg: "DISCOVER",
                first: "DISCOVER-OFFER",
                second: "REQUEST-ACK",
                refused: "naks",
                done_key: "acks_per_s",
                first_drop_key: "discover_drop",
                refused_key: "naks",
            },
            Self::V6 { .. } => Names {
                first_msg: "SOLICIT",
                first: "SOLICIT-ADVERTISE",
                second: "REQUEST-REPLY",
                refused: "replies without an address (status code)",
                done_key: "replies_per_s",
                first_drop_key: "solicit_drop",
                refused_key: "no_address",
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::Kind;

    #[test]
    fn both_families_build_requests_the_parsers_accept_as_their_peers_would() {
        // v6: the REQUEST has the SOLICIT's xid and client; v4: the DISCOVER's
        let a6: std::net::Ipv6Addr = "fd00:20::1:2".parse().unwrap();
        let f = Family::v6();
        let mut s = f.first();
        f.stamp(&mut s, 0x0a0b0c, [0, 0x0c, 9, 9, 9, 9]);
        assert_eq!((s.len, &s.buf[..4]), (46, &[1, 0x0a, 0x0b, 0x0c][..]));
        let r = f.request(
            0x0a0b0c,
            [0, 0x0c, 9, 9, 9, 9],
            &a6.octets(),
            &[0, 3, 0, 1, 1, 2],
        );
        assert_eq!(r.len, 74 + 4 + 6);
        assert_eq!(&r.buf[..4], &[3, 0x0a, 0x0b, 0x0c]);
        assert_eq!(&r.buf[8..18], &s.buf[8..18]); // the same DUID-LL
        assert_eq!(f.xid_mask(), 0xff_ffff);

        let f = Family::v4("10.20.0.2".parse().unwrap());
        let mut d = f.first();
        f.stamp(&mut d, 7, [0, 0x0c, 1, 1, 1, 1]);
        assert_eq!((d.len, &d.buf[4..8]), (300, &[0, 0, 0, 7][..]));
        let a4 = std::net::Ipv4Addr::new(10, 20, 1, 5)
            .to_ipv6_mapped()
            .octets();
        let r = f.request(7, [0, 0x0c, 1, 1, 1, 1], &a4, &[10, 20, 0, 1]);
        assert_eq!(r.len, 300);
        assert_eq!(
            &r.buf[240..255],
            &[53, 1, 3, 50, 4, 10, 20, 1, 5, 54, 4, 10, 20, 0, 1]
        );
        // a v4 reply read by the v6 parser is not taken for one of ours
        let mut ack = r.buf[..300].to_vec();
        ack[0] = 2;
        ack[242] = 5;
        assert_eq!(f.parse(&ack).map(|r| r.kind), Ok(Kind::Ack));
        assert!(Family::v6().parse(&ack).is_err());
    }
}
