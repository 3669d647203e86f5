//! The wire side, as pure functions over byte slices: fixed BOOTREQUEST templates the send path
//! only stamps (xid, chaddr, requested address, server id), and a minimal reply parser that reads
//! just what the exchange needs. Hand-built rather than dhcproto: a load tool sends the same two
//! packets hundreds of thousands of times, and decoding every reply into a BTreeMap of options
//! would cost more than the server's own work per packet.

use std::net::Ipv4Addr;

use crate::exchange::{Kind, Reply};

/// Length of every request we send: the 300-byte BOOTP minimum (RFC 1542 section 2.1).
pub(crate) const REQ_LEN: usize = 300;
const OFF_XID: usize = 4;
const OFF_YIADDR: usize = 16;
const OFF_GIADDR: usize = 24;
const OFF_CHADDR: usize = 28;
const OFF_COOKIE: usize = 236;
const OFF_OPTIONS: usize = 240;
const COOKIE: [u8; 4] = [99, 130, 83, 99];

/// DHCP message types (option 53).
pub(crate) const DISCOVER: u8 = 1;
pub(crate) const OFFER: u8 = 2;
pub(crate) const REQUEST: u8 = 3;
pub(crate) const ACK: u8 = 5;
pub(crate) const NAK: u8 = 6;

/// Parameter request list (55): mask, routers, DNS, domain name; what perfdhcp and most clients ask.
const PRL: [u8; 6] = [55, 4, 1, 3, 6, 15];
/// In the REQUEST template: option 50 (requested address) value, then option 54 (server id) value.
const OFF_REQUESTED: usize = OFF_OPTIONS + 3 + 2;
const OFF_SERVER_ID: usize = OFF_REQUESTED + 4 + 2;

/// A request as a relay agent forwards it: op 1, Ethernet, hops 1, giaddr = the relay.
fn header(giaddr: Ipv4Addr) -> [u8; REQ_LEN] {
    let mut b = [0u8; REQ_LEN];
    b[0] = 1; // BOOTREQUEST
    b[1] = 1; // htype Ethernet
    b[2] = 6; // hlen
    b[3] = 1; // hops: one relay
    b[OFF_GIADDR..OFF_GIADDR + 4].copy_from_slice(&giaddr.octets());
    b[OFF_COOKIE..OFF_OPTIONS].copy_from_slice(&COOKIE);
    b
}

/// DISCOVER: options 53 = 1, 55, end.
pub(crate) fn discover_template(giaddr: Ipv4Addr) -> [u8; REQ_LEN] {
    let mut b = header(giaddr);
    let opts = [53, 1, DISCOVER];
    b[OFF_OPTIONS..OFF_OPTIONS + 3].copy_from_slice(&opts);
    b[OFF_OPTIONS + 3..OFF_OPTIONS + 3 + PRL.len()].copy_from_slice(&PRL);
    b[OFF_OPTIONS + 3 + PRL.len()] = 255;
    b
}

/// REQUEST in SELECTING state: options 53 = 3, 50 = offered address, 54 = server id, 55, end.
pub(crate) fn request_template(giaddr: Ipv4Addr) -> [u8; REQ_LEN] {
    let mut b = header(giaddr);
    let mut o = OFF_OPTIONS;
    for chunk in [
        &[53, 1, REQUEST][..],
        &[50, 4, 0, 0, 0, 0],
        &[54, 4, 0, 0, 0, 0],
        &PRL,
    ] {
        b[o..o + chunk.len()].copy_from_slice(chunk);
        o += chunk.len();
    }
    b[o] = 255;
    b
}

/// Writes the per-exchange fields into a DISCOVER (or REQUEST) template copy.
pub(crate) fn stamp(b: &mut [u8; REQ_LEN], xid: u32, mac: [u8; 6]) {
    b[OFF_XID..OFF_XID + 4].copy_from_slice(&xid.to_be_bytes());
    b[OFF_CHADDR..OFF_CHADDR + 6].copy_from_slice(&mac);
}

/// Writes the per-exchange fields into a REQUEST template copy: `addr` is the OFFER's yiaddr as
/// [`Reply`] carries it (::ffff:a.b.c.d), `sid` option 54's 4 octets (the parser takes no other).
pub(crate) fn stamp_request(
    b: &mut [u8; REQ_LEN],
    xid: u32,
    mac: [u8; 6],
    addr: &[u8; 16],
    sid: &[u8],
) {
    stamp(b, xid, mac);
    b[OFF_REQUESTED..OFF_REQUESTED + 4].copy_from_slice(&addr[12..]);
    b[OFF_SERVER_ID..OFF_SERVER_ID + 4].copy_from_slice(&sid[..4]);
}

/// Why a datagram was not a usable reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Malformed {
    Short,
    NotReply,
    BadCookie,
    /// An option runs past the end of the datagram.
    BadOption,
    NoMessageType,
    /// DHCPv6: no client identifier, or one that is not a DUID-LL (none of the generator's).
    NoClientId,
}

/// Reads op, xid, yiaddr, chaddr and options 53/54 from the options field (no overload: a server
/// answering a 300-byte request needs no sname/file space for options).
pub(crate) fn parse_reply(b: &[u8]) -> Result<Reply<'_>, Malformed> {
    if b.len() < OFF_OPTIONS {
        return Err(Malformed::Short);
    }
    if b[0] != 2 || b[1] != 1 || b[2] != 6 {
        return Err(Malformed::NotReply);
    }
    if b[OFF_COOKIE..OFF_OPTIONS] != COOKIE {
        return Err(Malformed::BadCookie);
    }
    let mut msg_type = None;
    let mut server_id = None;
    let mut i = OFF_OPTIONS;
    while i < b.len() {
        match b[i] {
            0 => i += 1,
            255 => break,
            code => {
                let len = *b.get(i + 1).ok_or(Malformed::BadOption)? as usize;
                let val = b.get(i + 2..i + 2 + len).ok_or(Malformed::BadOption)?;
                match (code, len) {
                    (53, 1) => msg_type = Some(val[0]),
                    (54, 4) => server_id = Some(val),
                    _ => {}
                }
                i += 2 + len;
            }
        }
    }
    let four = |o: usize| [b[o], b[o + 1], b[o + 2], b[o + 3]];
    let kind = match msg_type.ok_or(Malformed::NoMessageType)? {
        OFFER => Kind::Offer,
        ACK => Kind::Ack,
        NAK => Kind::Nak,
        _ => Kind::Other,
    };
    Ok(Reply {
        xid: u32::from_be_bytes(four(OFF_XID)),
        kind,
        client: [b[28], b[29], b[30], b[31], b[32], b[33]],
        addr: Some(Ipv4Addr::from(four(OFF_YIADDR)).to_ipv6_mapped().octets()),
        server_id,
    })
}

/// Simulated clients: exchange `idx` uses client `(idx mod clients) * mult mod clients`, a
/// permutation of `0..clients` (mult is coprime to clients), so the first `clients` exchanges all
/// have distinct chaddrs, spread over the range like perfdhcp's random ones, and no table is needed
/// to map a reply back to its client.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clients {
    n: u64,
    mult: u64,
}

impl Clients {
    pub(crate) fn new(n: u32) -> Self {
        let n = u64::from(n.max(1));
        // a prime near 2^32 / golden ratio; falls back to 1 (sequential) when it divides n
        let mult = [2_654_435_761u64, 40_503, 1]
            .into_iter()
            .find(|m| gcd(*m, n) == 1)
            .unwrap_or(1);
        Self { n, mult: mult % n }
    }

    pub(crate) fn client(&self, idx: u64) -> u32 {
        ((idx % self.n) * self.mult % self.n) as u32
    }

    /// chaddr 00:0c:XX:XX:XX:XX (perfdhcp's default base is 00:0c:01:02:03:04).
    pub(crate) fn mac(&self, idx: u64) -> [u8; 6] {
        let c = self.client(idx).to_be_bytes();
        [0x00, 0x0c, c[0], c[1], c[2], c[3]]
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(msg_type: u8, xid: u32, yiaddr: [u8; 4], sid: Option<[u8; 4]>) -> Vec<u8> {
        let mut b = vec![0u8; OFF_OPTIONS];
        b[0] = 2;
        b[1] = 1;
        b[2] = 6;
        b[OFF_XID..OFF_XID + 4].copy_from_slice(&xid.to_be_bytes());
        b[OFF_YIADDR..OFF_YIADDR + 4].copy_from_slice(&yiaddr);
        b[OFF_CHADDR..OFF_CHADDR + 6].copy_from_slice(&[0, 0x0c, 0, 0, 0, 7]);
        b[OFF_COOKIE..OFF_OPTIONS].copy_from_slice(&COOKIE);
        b.extend_from_slice(&[0, 0]); // pads before the options
        b.extend_from_slice(&[53, 1, msg_type]);
        b.extend_from_slice(&[1, 4, 255, 255, 0, 0]);
        if let Some(s) = sid {
            b.extend_from_slice(&[54, 4]);
            b.extend_from_slice(&s);
        }
        b.push(255);
        b
    }

    #[test]
    fn discover_is_a_relayed_bootrequest() {
        let mut d = discover_template(Ipv4Addr::new(10, 20, 0, 2));
        stamp(&mut d, 0xdead_beef, [0, 0x0c, 1, 2, 3, 4]);
        assert_eq!(&d[..4], &[1, 1, 6, 1]);
        assert_eq!(&d[4..8], &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(&d[24..28], &[10, 20, 0, 2]);
        assert_eq!(&d[28..34], &[0, 0x0c, 1, 2, 3, 4]);
        assert_eq!(&d[236..240], &COOKIE);
        assert_eq!(&d[240..250], &[53, 1, 1, 55, 4, 1, 3, 6, 15, 255]);
        assert!(d[250..].iter().all(|&x| x == 0));
    }

    #[test]
    fn request_carries_requested_address_and_server_id() {
        let mut r = request_template(Ipv4Addr::new(10, 20, 0, 2));
        let addr = Ipv4Addr::new(10, 17, 0, 5).to_ipv6_mapped().octets();
        stamp_request(&mut r, 7, [0, 0x0c, 0, 0, 0, 9], &addr, &[10, 20, 0, 1]);
        assert_eq!(&r[..4], &[1, 1, 6, 1]);
        assert_eq!(&r[4..8], &[0, 0, 0, 7]);
        assert_eq!(
            &r[240..263],
            &[
                53, 1, 3, 50, 4, 10, 17, 0, 5, 54, 4, 10, 20, 0, 1, 55, 4, 1, 3, 6, 15, 255, 0
            ]
        );
        // ciaddr stays 0 in SELECTING (RFC 2131 table 5)
        assert_eq!(&r[12..16], &[0, 0, 0, 0]);
    }

    #[test]
    fn parses_offer_fields() {
        let b = reply(OFFER, 42, [10, 17, 0, 9], Some([10, 20, 0, 1]));
        let r = parse_reply(&b).unwrap();
        assert_eq!(
            r,
            Reply {
                xid: 42,
                kind: Kind::Offer,
                client: [0, 0x0c, 0, 0, 0, 7],
                addr: Some([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 17, 0, 9]),
                server_id: Some(&[10, 20, 0, 1][..]),
            }
        );
        let nak = reply(NAK, 43, [0; 4], None);
        assert_eq!(parse_reply(&nak).unwrap().kind, Kind::Nak);
    }

    #[test]
    fn rejects_bad_replies() {
        assert_eq!(parse_reply(&[2; 100]), Err(Malformed::Short));
        let mut b = reply(ACK, 1, [0; 4], None);
        b[0] = 1;
        assert_eq!(parse_reply(&b), Err(Malformed::NotReply));
        let mut b = reply(ACK, 1, [0; 4], None);
        b[237] = 0;
        assert_eq!(parse_reply(&b), Err(Malformed::BadCookie));
        // option 1 claims 40 bytes, the datagram ends first
        let mut b = reply(ACK, 1, [0; 4], None);
        b.truncate(OFF_OPTIONS + 5);
        b.extend_from_slice(&[1, 40, 0]);
        assert_eq!(parse_reply(&b), Err(Malformed::BadOption));
        // a length byte missing at the very end
        let mut b = reply(ACK, 1, [0; 4], None);
        b.pop();
        b.push(12);
        assert_eq!(parse_reply(&b), Err(Malformed::BadOption));
        let mut b = reply(ACK, 1, [0; 4], None);
        b.truncate(OFF_OPTIONS + 2);
        b.push(255);
        assert_eq!(parse_reply(&b), Err(Malformed::NoMessageType));
    }

    #[test]
    fn clients_are_a_permutation() {
        for n in [1u32, 2, 7, 1000, 1024, 65_536, 40_503 * 2] {
            let c = Clients::new(n);
            let mut seen = vec![false; n as usize];
            for i in 0..u64::from(n) {
                let k = c.client(i) as usize;
                assert!(!seen[k], "client {k} twice for n={n}");
                seen[k] = true;
            }
            // wraps after n exchanges
            assert_eq!(c.client(u64::from(n) + 3), c.client(3));
        }
    }

    #[test]
    fn mac_encodes_the_client() {
        let c = Clients::new(1_000_000);
        let m = c.mac(5);
        let k = c.client(5).to_be_bytes();
        assert_eq!(m, [0, 0x0c, k[0], k[1], k[2], k[3]]);
        assert_ne!(c.mac(5), c.mac(6));
    }
}
