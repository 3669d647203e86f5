//! The DHCPv6 wire side (RFC 8415), as pure functions over byte slices, in the spirit of
//! `packet.rs`: a fixed SOLICIT template stamped per exchange (transaction id, the client's
//! DUID-LL), a REQUEST built from a fixed front (client id, elapsed time, option request, IA_NA
//! with the advertised address) plus the ADVERTISE's server identifier, and a reply parser that
//! reads only what the exchange needs (message type, transaction id, client id, server id, the
//! first IA_NA's address and status codes), with bounds checks. The unit tests check both
//! directions against dhcproto's v6 types.

use crate::exchange::{Kind, Reply};
use crate::packet::Malformed;

/// Message types (RFC 8415 section 7.3).
pub(crate) const SOLICIT: u8 = 1;
pub(crate) const ADVERTISE: u8 = 2;
pub(crate) const REQUEST: u8 = 3;
pub(crate) const REPLY: u8 = 7;

/// Option codes (RFC 8415 section 21).
const OPT_CLIENTID: u16 = 1;
const OPT_SERVERID: u16 = 2;
const OPT_IA_NA: u16 = 3;
const OPT_IAADDR: u16 = 5;
const OPT_ORO: u16 = 6;
const OPT_ELAPSED_TIME: u16 = 8;
const OPT_STATUS_CODE: u16 = 13;
/// DNS recursive name servers (RFC 3646), what perfdhcp -6 and most clients ask for.
const OPT_DNS_SERVERS: u16 = 23;

/// DUID-LL (type 3) over Ethernet (hardware type 1): the 6-octet address follows.
const DUID_LL_ETHER: [u8; 4] = [0, 3, 0, 1];
const DUID_LEN: usize = 10;
/// Every simulated client's one IA_NA.
pub(crate) const IAID: u32 = 1;
/// Longest server DUID a REQUEST carries (RFC 8415 section 11.1: at most 128 octets + type).
pub(crate) const MAX_SERVER_ID: usize = 130;

const OFF_XID: usize = 1;
/// The client's link-layer address inside the client identifier (header, option header, DUID-LL
/// type and hardware type before it).
const OFF_MAC: usize = 4 + 4 + 4;
/// SOLICIT: header, client id, elapsed time, option request, IA_NA without addresses.
pub(crate) const SOLICIT_LEN: usize = 4 + (4 + DUID_LEN) + (4 + 2) + (4 + 2) + (4 + 12);
/// REQUEST up to and with the IA Address; the server identifier option follows.
pub(crate) const REQ_FRONT: usize = SOLICIT_LEN + (4 + 24);
const OFF_REQ_ADDR: usize = SOLICIT_LEN + 4;
/// Longest REQUEST.
pub(crate) const REQUEST_MAX: usize = REQ_FRONT + 4 + MAX_SERVER_ID;

fn put_opt(b: &mut [u8], at: usize, code: u16, len: usize) -> usize {
    b[at..at + 2].copy_from_slice(&code.to_be_bytes());
    b[at + 2..at + 4].copy_from_slice(&(len as u16).to_be_bytes());
    at + 4
}

/// Header and the options SOLICIT and REQUEST share; `ia_len` is the IA_NA option's length.
fn front(b: &mut [u8], msg_type: u8, ia_len: usize) {
    b[0] = msg_type;
    let o = put_opt(b, 4, OPT_CLIENTID, DUID_LEN);
    b[o..o + 4].copy_from_slice(&DUID_LL_ETHER);
    let o = put_opt(b, o + DUID_LEN, OPT_ELAPSED_TIME, 2); // 0: the first try
    let o = put_opt(b, o + 2, OPT_ORO, 2);
    b[o..o + 2].copy_from_slice(&OPT_DNS_SERVERS.to_be_bytes());
    let o = put_opt(b, o + 2, OPT_IA_NA, ia_len);
    b[o..o + 4].copy_from_slice(&IAID.to_be_bytes()); // T1 = T2 = 0: the server's choice
}

/// SOLICIT: client id (DUID-LL, stamped), elapsed time 0, ORO (DNS servers), an empty IA_NA.
pub(crate) fn solicit_template() -> [u8; SOLICIT_LEN] {
    let mut b = [0u8; SOLICIT_LEN];
    front(&mut b, SOLICIT, 12);
    b
}

/// Writes the transaction id (its low 24 bits) and the client's DUID-LL address into a SOLICIT
/// template copy or a REQUEST.
pub(crate) fn stamp(b: &mut [u8], xid: u32, mac: [u8; 6]) {
    b[OFF_XID..OFF_XID + 3].copy_from_slice(&xid.to_be_bytes()[1..]);
    b[OFF_MAC..OFF_MAC + 6].copy_from_slice(&mac);
}

/// REQUEST's fixed front: as SOLICIT, with an IA Address (lifetimes 0) in the IA_NA.
pub(crate) fn request_template() -> [u8; REQ_FRONT] {
    let mut b = [0u8; REQ_FRONT];
    front(&mut b, REQUEST, 12 + 4 + 24);
    put_opt(&mut b, SOLICIT_LEN, OPT_IAADDR, 24);
    b
}

/// Builds the REQUEST for an ADVERTISE into `out` and returns its length: the template, the
/// exchange's xid and client, the advertised address and the server's DUID (at most
/// [`MAX_SERVER_ID`] octets: the parser passes no longer one).
pub(crate) fn build_request(
    out: &mut [u8],
    tmpl: &[u8; REQ_FRONT],
    xid: u32,
    mac: [u8; 6],
    addr: &[u8; 16],
    sid: &[u8],
) -> usize {
    out[..REQ_FRONT].copy_from_slice(tmpl);
    stamp(out, xid, mac);
    out[OFF_REQ_ADDR..OFF_REQ_ADDR + 16].copy_from_slice(addr);
    let o = put_opt(out, REQ_FRONT, OPT_SERVERID, sid.len());
    out[o..o + sid.len()].copy_from_slice(sid);
    o + sid.len()
}

/// Options in `b` as (code, value), stopping with an error at one that runs past the end.
fn options(mut b: &[u8]) -> impl Iterator<Item = Result<(u16, &[u8]), Malformed>> {
    std::iter::from_fn(move || {
        if b.is_empty() {
            return None;
        }
        let Some(h) = b.get(..4) else {
            b = &[];
            return Some(Err(Malformed::BadOption));
        };
        let code = u16::from_be_bytes([h[0], h[1]]);
        let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
        let Some(val) = b.get(4..4 + len) else {
            b = &[];
            return Some(Err(Malformed::BadOption));
        };
        b = &b[4 + len..];
        Some(Ok((code, val)))
    })
}

/// A status code option's code (0 = Success); a too short one counts as a failure.
fn status(val: &[u8]) -> u16 {
    val.get(..2)
        .map_or(u16::MAX, |c| u16::from_be_bytes([c[0], c[1]]))
}

/// The first IA_NA's first address with a valid lifetime, unless the IA carries a failure status.
fn ia_address(ia: &[u8]) -> Result<Option<[u8; 16]>, Malformed> {
    let Some(inner) = ia.get(12..) else {
        return Err(Malformed::BadOption);
    };
    let mut addr = None;
    for o in options(inner) {
        match o? {
            (OPT_IAADDR, v) if v.len() >= 24 => {
                let valid = u32::from_be_bytes([v[20], v[21], v[22], v[23]]);
                if addr.is_none() && valid > 0 {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(&v[..16]);
                    addr = Some(a);
                }
            }
            (OPT_STATUS_CODE, v) if status(v) != 0 => return Ok(None),
            _ => {}
        }
    }
    Ok(addr)
}

/// Reads an ADVERTISE or REPLY. ADVERTISE becomes [`Kind::Offer`]; a REPLY with an address (no
/// failure status at the top or in the IA) [`Kind::Ack`], one without [`Kind::Nak`]. A reply
/// whose client identifier is not a DUID-LL over Ethernet is none of ours (malformed).
pub(crate) fn parse_reply(b: &[u8]) -> Result<Reply<'_>, Malformed> {
    if b.len() < 4 {
        return Err(Malformed::Short);
    }
    let xid = u32::from_be_bytes([0, b[1], b[2], b[3]]);
    let (mut client, mut server_id, mut addr, mut failed) = (None, None, None, false);
    for o in options(&b[4..]) {
        match o? {
            (OPT_CLIENTID, v) if v.len() == DUID_LEN && v[..4] == DUID_LL_ETHER => {
                let mut m = [0u8; 6];
                m.copy_from_slice(&v[4..]);
                client = Some(m);
            }
            (OPT_SERVERID, v) if !v.is_empty() && v.len() <= MAX_SERVER_ID => server_id = Some(v),
            (OPT_IA_NA, v) if addr.is_none() => addr = ia_address(v)?,
            (OPT_STATUS_CODE, v) if status(v) != 0 => failed = true,
            _ => {}
        }
    }
    let addr = if failed { None } else { addr };
    let kind = match b[0] {
        ADVERTISE => Kind::Offer,
        REPLY if addr.is_some() => Kind::Ack,
        REPLY => Kind::Nak,
        SOLICIT | REQUEST => return Err(Malformed::NotReply),
        _ => Kind::Other,
    };
    Ok(Reply {
        xid,
        kind,
        client: client.ok_or(Malformed::NoClientId)?,
        addr,
        server_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dhcproto::v6::{DhcpOption, IAAddr, IANA, Message, MessageType, OptionCode, Status};
    use dhcproto::{Decodable, Encodable};
    use std::net::Ipv6Addr;

    const MAC: [u8; 6] = [0, 0x0c, 0, 1, 2, 3];
    const SID: [u8; 14] = [0, 1, 0, 1, 0x2e, 0x10, 0x20, 0x30, 2, 0, 0, 0, 0, 1];

    fn duid_ll(mac: [u8; 6]) -> Vec<u8> {
        [&DUID_LL_ETHER[..], &mac].concat()
    }

    fn iana_t(t: u32, opts: Vec<DhcpOption>) -> DhcpOption {
        DhcpOption::IANA(IANA {
            id: IAID,
            t1: t,
            t2: 2 * t,
            opts: opts.into_iter().collect(),
        })
    }

    fn iana(opts: Vec<DhcpOption>) -> DhcpOption {
        iana_t(1000, opts)
    }

    fn iaaddr_l(a: Ipv6Addr, preferred: u32, valid: u32) -> DhcpOption {
        DhcpOption::IAAddr(IAAddr {
            addr: a,
            preferred_life: preferred,
            valid_life: valid,
            opts: Default::default(),
        })
    }

    fn iaaddr(a: Ipv6Addr, valid: u32) -> DhcpOption {
        iaaddr_l(a, 3000, valid)
    }

    /// A server's answer, built by dhcproto.
    fn answer(t: MessageType, xid: u32, extra: Vec<DhcpOption>) -> Vec<u8> {
        let mut m = Message::new_with_id(t, xid.to_be_bytes()[1..].try_into().unwrap());
        let o = m.opts_mut();
        o.insert(DhcpOption::ServerId(SID.to_vec()));
        o.insert(DhcpOption::ClientId(duid_ll(MAC)));
        for x in extra {
            o.insert(x);
        }
        m.to_vec().unwrap()
    }

    #[test]
    fn solicit_decodes_as_dhcproto_sees_it() {
        let mut b = solicit_template();
        stamp(&mut b, 0x12_abcdef, MAC);
        let m = Message::decode(&mut dhcproto::Decoder::new(&b)).unwrap();
        assert_eq!(m.msg_type(), MessageType::Solicit);
        assert_eq!(m.xid(), [0xab, 0xcd, 0xef]);
        let o = m.opts();
        assert_eq!(
            o.get(OptionCode::ClientId),
            Some(&DhcpOption::ClientId(duid_ll(MAC)))
        );
        assert_eq!(
            o.get(OptionCode::ElapsedTime),
            Some(&DhcpOption::ElapsedTime(0))
        );
        let oro = dhcproto::v6::ORO {
            opts: vec![OptionCode::DomainNameServers],
        };
        assert_eq!(o.get(OptionCode::ORO), Some(&DhcpOption::ORO(oro)));
        assert_eq!(o.get(OptionCode::IANA), Some(&iana_t(0, vec![])));
        assert_eq!(o.get(OptionCode::ServerId), None);
        assert_eq!(b.len(), 46);
    }

    #[test]
    fn request_carries_the_advertised_address_and_server_id() {
        let a: Ipv6Addr = "fd00:20::1:7".parse().unwrap();
        let mut out = [0u8; REQUEST_MAX];
        let n = build_request(
            &mut out,
            &request_template(),
            0x0077_0001,
            MAC,
            &a.octets(),
            &SID,
        );
        assert_eq!(n, REQ_FRONT + 4 + SID.len());
        let m = Message::decode(&mut dhcproto::Decoder::new(&out[..n])).unwrap();
        assert_eq!(m.msg_type(), MessageType::Request);
        assert_eq!(m.xid(), [0x77, 0, 1]);
        let o = m.opts();
        assert_eq!(
            o.get(OptionCode::ServerId),
            Some(&DhcpOption::ServerId(SID.to_vec()))
        );
        assert_eq!(
            o.get(OptionCode::ClientId),
            Some(&DhcpOption::ClientId(duid_ll(MAC)))
        );
        let Some(DhcpOption::IANA(ia)) = o.get(OptionCode::IANA) else {
            panic!("no IA_NA in {m:?}");
        };
        assert_eq!((ia.id, ia.t1, ia.t2), (IAID, 0, 0));
        assert_eq!(ia.opts.get(OptionCode::IAAddr), Some(&iaaddr_l(a, 0, 0)));
        // the longest server DUID still fits
        let long = [7u8; MAX_SERVER_ID];
        let n = build_request(&mut out, &request_template(), 1, MAC, &a.octets(), &long);
        assert_eq!(n, REQUEST_MAX);
    }

    #[test]
    fn parses_advertise_and_reply() {
        let a: Ipv6Addr = "fd00:20::1:9".parse().unwrap();
        let adv = answer(
            MessageType::Advertise,
            0x42,
            vec![iana(vec![iaaddr(a, 4000)])],
        );
        let r = parse_reply(&adv).unwrap();
        assert_eq!(
            r,
            Reply {
                xid: 0x42,
                kind: Kind::Offer,
                client: MAC,
                addr: Some(a.octets()),
                server_id: Some(&SID[..]),
            }
        );
        let rep = answer(
            MessageType::Reply,
            0xff_ffff,
            vec![iana(vec![iaaddr(a, 4000)])],
        );
        let r = parse_reply(&rep).unwrap();
        assert_eq!(
            (r.kind, r.xid, r.addr),
            (Kind::Ack, 0xff_ffff, Some(a.octets()))
        );
        // NoAddrsAvail in the IA: a REPLY without an address
        let none = iana(vec![DhcpOption::StatusCode(dhcproto::v6::StatusCode {
            status: Status::NoAddrsAvail,
            msg: "none left".into(),
        })]);
        let kind_addr = |b: Vec<u8>| parse_reply(&b).map(|r| (r.kind, r.addr));
        let r = kind_addr(answer(MessageType::Reply, 1, vec![none.clone()]));
        assert_eq!(r, Ok((Kind::Nak, None)));
        // an ADVERTISE with no address: parsed, but nothing to request
        let r = kind_addr(answer(MessageType::Advertise, 1, vec![none]));
        assert_eq!(r, Ok((Kind::Offer, None)));
        // a zero valid lifetime is no assignment
        let r = kind_addr(answer(
            MessageType::Reply,
            1,
            vec![iana(vec![iaaddr(a, 0)])],
        ));
        assert_eq!(r, Ok((Kind::Nak, None)));
        // nor is a REPLY with an address and a failure status at the top
        let fail = DhcpOption::StatusCode(dhcproto::v6::StatusCode {
            status: Status::UnspecFail,
            msg: String::new(),
        });
        let r = kind_addr(answer(
            MessageType::Reply,
            1,
            vec![iana(vec![iaaddr(a, 9)]), fail],
        ));
        assert_eq!(r, Ok((Kind::Nak, None)));
    }

    #[test]
    fn rejects_what_is_not_a_reply_for_us() {
        assert_eq!(parse_reply(&[7, 0, 0]), Err(Malformed::Short));
        let mut b = solicit_template();
        stamp(&mut b, 1, MAC);
        assert_eq!(parse_reply(&b), Err(Malformed::NotReply));
        // the last option claims more than is there
        let mut adv = answer(MessageType::Advertise, 1, vec![]);
        adv.extend_from_slice(&[0, 3, 0, 40, 0, 0]);
        assert_eq!(parse_reply(&adv), Err(Malformed::BadOption));
        // a DUID-LLT client id is none of the generator's
        let mut m = Message::new_with_id(MessageType::Reply, [0, 0, 1]);
        m.opts_mut().insert(DhcpOption::ClientId(SID.to_vec()));
        assert_eq!(
            parse_reply(&m.to_vec().unwrap()),
            Err(Malformed::NoClientId)
        );
    }
}
