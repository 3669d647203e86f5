//! A client message from the wire. dhcproto 0.15 decodes options recursively and trusts some
//! lengths: a Status Code option shorter than 2 octets or a Vendor Class/Options option shorter
//! than 4 subtracts past zero (a panic where overflow is checked, as in debug builds and under
//! the fuzzer), and options nested thousands deep (an IA_NA inside an IA_NA inside ...; 16 octets
//! a level fit 4,000 levels in a datagram) recurse once per level: 4,000 levels overflowed a
//! 2 MiB thread stack in a debug build, which aborts the whole process. So the option tree is
//! walked first, without recursion, and such a message is dropped as malformed before dhcproto
//! sees it.

use dhcproto::v6::Message;
use dhcproto::{Decodable, Decoder};

/// Options inside options, at most: IA -> IA Address/Prefix -> Status Code is 3 (RFC 8415).
pub const MAX_DEPTH: usize = 4;

/// Why a datagram is not a client message.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Malformed6 {
    /// Shorter than the 4-octet header.
    #[error("shorter than a DHCPv6 header")]
    Short,
    /// An option whose fixed part is longer than the option.
    #[error("option {code} of {len} octets is too short for its fixed fields")]
    OptionTooShort {
        /// Option code.
        code: u16,
        /// Its length.
        len: usize,
    },
    /// Options nested deeper than any message needs.
    #[error("options nested more than {MAX_DEPTH} deep")]
    TooDeep,
    /// A Relay Message option inside a client message.
    #[error("a Relay Message option inside a client message")]
    RelayInside,
    /// dhcproto refused it.
    #[error("{0}")]
    Decode(String),
    /// dhcproto panicked on it (a last line of defence in the server; see [`parse_guarded`]).
    #[error("the decoder failed on it")]
    Panicked,
}

/// Octets before the encapsulated options of an option that carries options.
fn header_of(code: u16) -> Option<usize> {
    match code {
        3 | 25 => Some(12), // IA_NA, IA_PD: IAID, T1, T2
        4 => Some(4),       // IA_TA: IAID
        5 => Some(24),      // IA Address: address, lifetimes
        26 => Some(25),     // IA Prefix: lifetimes, length, prefix
        17 => Some(4),      // Vendor-specific Information: enterprise number
        _ => None,
    }
}

/// Walks the option tree of a client message (`bytes` after its 4-octet header) without
/// recursion, rejecting what dhcproto would mis-handle.
pub fn check(bytes: &[u8]) -> Result<(), Malformed6> {
    let body = bytes.get(4..).ok_or(Malformed6::Short)?;
    let mut stack: Vec<(&[u8], usize)> = vec![(body, 0)];
    while let Some((mut opts, depth)) = stack.pop() {
        // As dhcproto, a list ends at the first option that does not fit.
        while let Some(h) = opts.get(..4) {
            let code = u16::from_be_bytes([h[0], h[1]]);
            let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
            let Some(data) = opts.get(4..4 + len) else {
                break;
            };
            let too_short = Malformed6::OptionTooShort { code, len };
            match code {
                9 => return Err(Malformed6::RelayInside),
                13 if len < 2 => return Err(too_short),
                16 | 17 if len < 4 => return Err(too_short),
                _ => {}
            }
            if let Some(fixed) = header_of(code)
                && let Some(inner) = data.get(fixed..)
                && !inner.is_empty()
            {
                if depth + 1 >= MAX_DEPTH {
                    return Err(Malformed6::TooDeep);
                }
                stack.push((inner, depth + 1));
            }
            opts = &opts[4 + len..];
        }
    }
    Ok(())
}

/// The client message in `bytes`, checked ([`check`]) and then decoded by dhcproto.
pub fn parse(bytes: &[u8]) -> Result<Message, Malformed6> {
    check(bytes)?;
    Message::decode(&mut Decoder::new(bytes)).map_err(|e| Malformed6::Decode(e.to_string()))
}

/// [`parse`], and should dhcproto still panic on some input, that input is dropped rather than
/// the server's core thread.
pub fn parse_guarded(bytes: &[u8]) -> Result<Message, Malformed6> {
    std::panic::catch_unwind(|| parse(bytes)).unwrap_or(Err(Malformed6::Panicked))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opt(code: u16, body: &[u8]) -> Vec<u8> {
        let mut v = code.to_be_bytes().to_vec();
        v.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn msg(opts: &[u8]) -> Vec<u8> {
        let mut m = vec![1, 0, 0, 1];
        m.extend_from_slice(&opt(1, &[0, 3, 0, 1, 2, 0, 0, 0, 0, 1]));
        m.extend_from_slice(opts);
        m
    }

    #[test]
    fn short_fixed_fields_are_malformed_not_a_panic() {
        // Each followed by enough octets for dhcproto to read its fixed field from the next
        // option, then subtract past zero.
        for (code, len) in [(13u16, 0usize), (13, 1), (16, 3), (17, 0)] {
            let mut o = opt(code, &vec![0; len]);
            o.extend_from_slice(&opt(8, &[0, 0]));
            let m = msg(&o);
            assert_eq!(
                parse(&m).unwrap_err(),
                Malformed6::OptionTooShort { code, len }
            );
            assert!(parse_guarded(&m).is_err());
        }
        // Inside an IA Address inside an IA_NA, too.
        let mut ia = vec![0; 12];
        let mut addr = vec![0; 24];
        addr.extend_from_slice(&opt(13, &[0]));
        addr.extend_from_slice(&[0; 8]);
        ia.extend_from_slice(&opt(5, &addr));
        assert!(matches!(
            parse(&msg(&opt(3, &ia))),
            Err(Malformed6::OptionTooShort { code: 13, .. })
        ));
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        // 4,000 IA_NAs one inside the other: 16 octets a level, under 64 KiB.
        let mut o = Vec::new();
        for _ in 0..4000 {
            let mut body = vec![0; 12];
            body.extend_from_slice(&o);
            o = opt(3, &body);
        }
        assert!(o.len() < 65536);
        assert_eq!(parse(&msg(&o)).unwrap_err(), Malformed6::TooDeep);
        assert!(
            parse_guarded(&msg(&opt(9, &[12, 0]))).is_err_and(|e| e == Malformed6::RelayInside)
        );
    }

    #[test]
    fn ordinary_messages_pass() {
        let mut prefix = vec![0; 25];
        prefix.extend_from_slice(&opt(13, &[0, 0, b'o', b'k']));
        let mut pd = vec![0; 12];
        pd.extend_from_slice(&opt(26, &prefix));
        let mut all = opt(25, &pd);
        all.extend_from_slice(&opt(14, &[]));
        all.extend_from_slice(&opt(16, &[0, 0, 0, 9, 0, 1, b'x']));
        let m = parse(&msg(&all)).unwrap();
        assert_eq!(m.opts().iter().count(), 4);
        assert_eq!(parse(&[1, 2]).unwrap_err(), Malformed6::Short);
        // A truncated last option ends the list, as in dhcproto.
        let mut cut = msg(&opt(14, &[]));
        cut.extend_from_slice(&[0, 8, 0, 2, 0]);
        assert_eq!(parse(&cut).unwrap().opts().iter().count(), 2);
    }
}
