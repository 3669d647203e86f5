//! Building answers on the wire: the response skeleton, the UDP size limit, encoding with
//! truncation (and TSIG), RRL's slip, FORMERR from a bare header.

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};

use crate::stats::Stats;
use crate::tsig::{TsigCtx, sign_encode};

/// Largest UDP answer we send whatever the client advertises (DNS flag day 2020).
pub const MAX_UDP: u16 = 1232;

/// Response skeleton for `req`.
pub fn response_to(req: &Message, rcode: ResponseCode) -> Message {
    let mut m = Message::new(req.id, MessageType::Response, req.op_code);
    m.metadata.recursion_desired = req.recursion_desired;
    m.metadata.checking_disabled = req.checking_disabled;
    m.metadata.response_code = rcode;
    m.add_queries(req.queries.iter().cloned());
    if req.edns.is_some() {
        let mut e = Edns::new();
        e.set_max_payload(MAX_UDP);
        e.set_version(0);
        m.set_edns(e);
    }
    m
}

/// The size limit of a UDP answer to `req`.
pub fn udp_limit(req: &Message) -> usize {
    match &req.edns {
        Some(e) => usize::from(e.max_payload().clamp(512, MAX_UDP)),
        None => 512,
    }
}

/// Encodes (and signs) `resp`; over UDP an answer that does not fit is sent with TC and no
/// records so the client retries over TCP.
pub fn encode(
    mut resp: Message,
    tsig: Option<&TsigCtx>,
    limit: usize,
    stats: &Stats,
) -> Option<Vec<u8>> {
    let bytes = sign_encode(&mut resp, tsig)?;
    if bytes.len() <= limit {
        return Some(bytes);
    }
    stats.truncated.inc();
    let mut t = resp.truncate();
    t.metadata.truncation = true;
    sign_encode(&mut t, tsig)
}

/// Turns an encoded reply into its truncated form (TC, question only): RRL's "slip".
pub fn slip(b: &mut Vec<u8>) {
    if let Ok(m) = Message::from_vec(b) {
        let mut t = m.truncate();
        t.metadata.truncation = true;
        if let Ok(tb) = t.to_vec() {
            *b = tb;
        }
    }
}

/// True when `b` decodes as a DNS message.
pub fn decodes(b: &[u8]) -> bool {
    Message::from_vec(b).is_ok()
}

/// FORMERR from the bare header of an undecodable message, when the header is readable.
pub fn formerr(bytes: &[u8]) -> Option<Vec<u8>> {
    if bytes.len() < 12 || bytes[2] & 0x80 != 0 {
        return None;
    }
    let id = u16::from_be_bytes([bytes[0], bytes[1]]);
    let op = OpCode::from_u8((bytes[2] >> 3) & 0x0f);
    let mut m = Message::new(id, MessageType::Response, op);
    m.metadata.response_code = ResponseCode::FormErr;
    m.metadata.recursion_desired = bytes[2] & 1 != 0;
    m.to_vec().ok()
}
