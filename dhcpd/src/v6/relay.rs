//! Relay framing (RFC 8415 section 9): RELAY-FORW unwrapped down to the client's message, and
//! the answer wrapped back in one RELAY-REPL per relay, each echoing its Interface-Id. Done on
//! raw bytes: dhcproto decodes a Relay Message option as a relay message only, while the
//! innermost one holds a client message. Pure.

use std::net::Ipv6Addr;

/// RELAY-FORW.
pub const RELAY_FORW: u8 = 12;
/// RELAY-REPL.
pub const RELAY_REPL: u8 = 13;
const OPT_RELAY_MSG: u16 = 9;
const OPT_INTERFACE_ID: u16 = 18;
const OPT_CLIENT_LINKLAYER_ADDR: u16 = 79;
/// Relays in front of a client at most (RFC 8415 HOP_COUNT_LIMIT).
const MAX_HOPS: usize = 8;

/// One relay's header as received, outermost first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// Hop count field.
    pub hop_count: u8,
    /// Link address: identifies the client's link (unspecified when the relay did not set it).
    pub link: Ipv6Addr,
    /// Peer address: where that relay got the message from.
    pub peer: Ipv6Addr,
    /// Interface-Id option, echoed in the reply.
    pub interface_id: Option<Vec<u8>>,
    /// Client link-layer address option (RFC 6939), when Ethernet.
    pub client_mac: Option<[u8; 6]>,
}

/// Why a relayed datagram was dropped.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// Header or option shorter than it says.
    #[error("relay message truncated")]
    Truncated,
    /// No Relay Message option.
    #[error("relay message without a Relay Message option")]
    NoRelayMsg,
    /// More relays than RFC 8415 allows.
    #[error("more than {MAX_HOPS} relays")]
    TooManyHops,
}

/// Splits a datagram into its relays (outermost first, empty when it came from the client
/// directly) and the client's message.
pub fn unwrap(mut bytes: &[u8]) -> Result<(Vec<Hop>, &[u8]), RelayError> {
    let mut hops = Vec::new();
    while bytes.first() == Some(&RELAY_FORW) {
        if hops.len() == MAX_HOPS {
            return Err(RelayError::TooManyHops);
        }
        let head = bytes.get(..34).ok_or(RelayError::Truncated)?;
        let addr = |at: usize| {
            let mut b = [0u8; 16];
            b.copy_from_slice(&head[at..at + 16]);
            Ipv6Addr::from(b)
        };
        let (mut inner, mut interface_id, mut client_mac) = (None, None, None);
        let mut opts = &bytes[34..];
        while !opts.is_empty() {
            let h = opts.get(..4).ok_or(RelayError::Truncated)?;
            let code = u16::from_be_bytes([h[0], h[1]]);
            let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
            let body = opts.get(4..4 + len).ok_or(RelayError::Truncated)?;
            match code {
                OPT_RELAY_MSG => inner = Some(body),
                OPT_INTERFACE_ID => interface_id = Some(body.to_vec()),
                // Link-layer type 1 (Ethernet) and a 6-octet address.
                OPT_CLIENT_LINKLAYER_ADDR if body.len() == 8 && body[..2] == [0, 1] => {
                    client_mac = body[2..].try_into().ok();
                }
                _ => {}
            }
            opts = &opts[4 + len..];
        }
        hops.push(Hop {
            hop_count: head[1],
            link: addr(2),
            peer: addr(18),
            interface_id,
            client_mac,
        });
        bytes = inner.ok_or(RelayError::NoRelayMsg)?;
    }
    Ok((hops, bytes))
}

/// Wraps a reply to the client in one RELAY-REPL per relay (innermost first inside).
pub fn wrap(hops: &[Hop], reply: Vec<u8>) -> Vec<u8> {
    let mut msg = reply;
    for h in hops.iter().rev() {
        let mut out = Vec::with_capacity(msg.len() + 60);
        out.push(RELAY_REPL);
        out.push(h.hop_count);
        out.extend_from_slice(&h.link.octets());
        out.extend_from_slice(&h.peer.octets());
        if let Some(id) = &h.interface_id {
            push_opt(&mut out, OPT_INTERFACE_ID, id);
        }
        push_opt(&mut out, OPT_RELAY_MSG, &msg);
        msg = out;
    }
    msg
}

fn push_opt(out: &mut Vec<u8>, code: u16, body: &[u8]) {
    out.extend_from_slice(&code.to_be_bytes());
    // A datagram is under 64 KiB, so every option body fits a u16 length.
    out.extend_from_slice(&u16::try_from(body.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(body);
}

/// The client's hardware address as the relay next to it tells (RFC 6939).
pub fn client_mac(hops: &[Hop]) -> Option<[u8; 6]> {
    hops.last().and_then(|h| h.client_mac)
}

/// The link the client is on, as the relays tell: the innermost relay's link address that is
/// set (not unspecified, not link-local).
pub fn client_link(hops: &[Hop]) -> Option<Ipv6Addr> {
    hops.iter()
        .rev()
        .map(|h| h.link)
        .find(|a| !a.is_unspecified() && !a.is_unicast_link_local())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forw(hop: u8, link: &str, id: Option<&[u8]>, inner: &[u8]) -> Vec<u8> {
        let h = Hop {
            hop_count: hop,
            link: link.parse().unwrap(),
            peer: "fe80::1".parse().unwrap(),
            interface_id: id.map(<[u8]>::to_vec),
            client_mac: None,
        };
        let mut b = wrap(&[h], inner.to_vec());
        b[0] = RELAY_FORW;
        b
    }

    #[test]
    fn nested_relays_unwrap_and_the_reply_wraps_with_interface_ids() {
        let client = [1u8, 0xaa, 0xbb, 0xcc];
        let inner = forw(0, "fd00:98::1", Some(b"eth7"), &client);
        let outer = forw(1, "::", None, &inner);
        let (hops, msg) = unwrap(&outer).unwrap();
        assert_eq!(msg, client);
        assert_eq!(hops.len(), 2);
        assert_eq!(hops[1].interface_id.as_deref(), Some(&b"eth7"[..]));
        assert_eq!(client_link(&hops), Some("fd00:98::1".parse().unwrap()));
        assert_eq!(client_mac(&hops), None);
        let reply = wrap(&hops, vec![7, 0xaa, 0xbb, 0xcc]);
        assert_eq!(reply[0], RELAY_REPL);
        // Read back with the same parser (types aside, the framing is the same): the inner
        // relay message starts after the outer header (34) and its option header (4).
        let mut again = reply.clone();
        again[0] = RELAY_FORW;
        assert_eq!(again[38], RELAY_REPL);
        again[38] = RELAY_FORW;
        let (h2, m2) = unwrap(&again).unwrap();
        assert_eq!(h2, hops);
        assert_eq!(m2, [7, 0xaa, 0xbb, 0xcc]);
    }

    #[test]
    fn the_client_link_layer_address_of_the_innermost_relay() {
        let mut b = forw(0, "fd00:98::1", None, &[1, 0, 0, 0]);
        b.truncate(34);
        b.extend_from_slice(&[0, 79, 0, 8, 0, 1, 2, 0, 0, 0, 0, 7]);
        b.extend_from_slice(&[0, 9, 0, 4, 1, 0, 0, 0]);
        let (hops, _) = unwrap(&b).unwrap();
        assert_eq!(client_mac(&hops), Some([2, 0, 0, 0, 0, 7]));
        // Not Ethernet: ignored.
        b[38..40].copy_from_slice(&[0, 6]);
        assert_eq!(client_mac(&unwrap(&b).unwrap().0), None);
    }

    #[test]
    fn truncated_missing_and_too_deep_are_errors() {
        assert_eq!(unwrap(&[12, 0, 1]), Err(RelayError::Truncated));
        let mut no_msg = forw(0, "::", None, &[1]);
        no_msg.truncate(34);
        assert_eq!(unwrap(&no_msg), Err(RelayError::NoRelayMsg));
        let mut cut = forw(0, "::", None, &[1, 2, 3]);
        cut.pop();
        assert_eq!(unwrap(&cut), Err(RelayError::Truncated));
        let mut m = vec![1u8, 0, 0, 0];
        for _ in 0..9 {
            m = forw(0, "::", None, &m);
        }
        assert_eq!(unwrap(&m), Err(RelayError::TooManyHops));
        assert_eq!(
            unwrap(&[1, 2, 3, 4]).unwrap(),
            (vec![], &[1u8, 2, 3, 4][..])
        );
    }
}
