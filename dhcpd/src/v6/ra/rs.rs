//! Reading a router solicitation (RFC 4861 4.1 and the validity checks of 6.1.1) from whatever
//! arrives on the ICMPv6 socket: never panics, whatever the bytes.

use std::net::Ipv6Addr;

use super::{ND_HOP_LIMIT, ROUTER_SOLICITATION};

const OPT_SLLA: u8 = 1;

/// Why a message is not a valid router solicitation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RsError {
    /// Shorter than the 8-octet solicitation header.
    #[error("{0} octets: too short for a router solicitation")]
    Short(usize),
    /// Another ICMPv6 message.
    #[error("ICMPv6 type {0}, not a router solicitation")]
    NotRs(u8),
    /// Code other than 0.
    #[error("router solicitation with code {0}")]
    Code(u8),
    /// Hop limit other than 255: it crossed a router, or the kernel did not say.
    #[error("hop limit {0:?}, not 255")]
    HopLimit(Option<u8>),
    /// An option of length 0 or running past the end.
    #[error("malformed option at offset {0}")]
    Option(usize),
    /// A source link-layer address option with the unspecified source address.
    #[error("source link-layer address option from the unspecified address")]
    SllaFromUnspecified,
}

/// A valid router solicitation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Solicitation {
    /// Its source address (`::` when the host has no address yet).
    pub src: Ipv6Addr,
    /// The source link-layer address option's body, if any.
    pub slla: Option<Vec<u8>>,
}

/// `msg` (the ICMPv6 message, from its type octet) as a solicitation from `src` that arrived
/// with hop limit `hops`. The checksum is the kernel's job on ICMPv6 sockets.
pub fn parse(msg: &[u8], src: Ipv6Addr, hops: Option<u8>) -> Result<Solicitation, RsError> {
    let Some(head) = msg.get(..8) else {
        return Err(RsError::Short(msg.len()));
    };
    if head[0] != ROUTER_SOLICITATION {
        return Err(RsError::NotRs(head[0]));
    }
    if head[1] != 0 {
        return Err(RsError::Code(head[1]));
    }
    if hops != Some(ND_HOP_LIMIT) {
        return Err(RsError::HopLimit(hops));
    }
    let mut slla = None;
    let mut at = 8;
    while at < msg.len() {
        let (Some(&kind), Some(&units)) = (msg.get(at), msg.get(at + 1)) else {
            return Err(RsError::Option(at));
        };
        let len = usize::from(units) * 8;
        let Some(body) = msg.get(at + 2..at + len).filter(|_| len > 0) else {
            return Err(RsError::Option(at));
        };
        if kind == OPT_SLLA && slla.is_none() {
            slla = Some(body.to_vec());
        }
        at += len;
    }
    if slla.is_some() && src.is_unspecified() {
        return Err(RsError::SllaFromUnspecified);
    }
    Ok(Solicitation { src, slla })
}
