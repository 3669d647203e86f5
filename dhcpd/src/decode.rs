//! Decoding: from a datagram to a DHCP message, checked beyond what the decoder takes on trust
//! (option lengths, option overload), and the facts about the request the decisions read.

use std::net::Ipv4Addr;

use dhcproto::Decodable;
use dhcproto::v4::{DhcpOption, HType, Message, MessageType, OptionCode};

/// Why a datagram was not even a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadPacket {
    /// Shorter than the fixed BOOTP header.
    #[error("truncated ({0} bytes)")]
    Short(usize),
    /// Not op 1.
    #[error("not a BOOTREQUEST")]
    NotRequest,
    /// hlen beyond 16.
    #[error("hardware address length {0}")]
    Hlen(u8),
    /// An option overruns the packet or has an impossible length.
    #[error("malformed option {0}")]
    Option(u8),
    /// Option overload (option 52, RFC 2132 section 9.3) that cannot be followed: a bad value,
    /// option 52 outside the options field, or an option overrunning `file` or `sname`.
    #[error("bad option overload: {0}")]
    Overload(&'static str),
    /// The decoder failed.
    #[error("undecodable")]
    Decode,
}

pub(crate) const MAGIC: [u8; 4] = [99, 130, 83, 99];

/// Checks option lengths of a run of same-code options (RFC 3396 concatenation) that the decoder
/// would otherwise take on trust.
fn length_ok(code: u8, len: usize) -> bool {
    match code {
        80 => len == 0,
        81 => len >= 3,
        94 => len == 3,
        151 => len >= 1,
        152..=155 => len == 4,
        _ => true,
    }
}

/// Walks the options area; returns the codes present (bit set) or the first malformed code.
fn scan_options(buf: &[u8]) -> Result<[u64; 4], BadPacket> {
    let mut seen = [0u64; 4];
    let mut i = 0;
    let mut run: Option<(u8, usize)> = None;
    let close = |run: Option<(u8, usize)>, seen: &mut [u64; 4]| -> Result<(), BadPacket> {
        if let Some((c, l)) = run {
            if !length_ok(c, l) {
                return Err(BadPacket::Option(c));
            }
            seen[usize::from(c / 64)] |= 1 << (c % 64);
        }
        Ok(())
    };
    while i < buf.len() {
        let code = buf[i];
        match code {
            0 => {
                i += 1;
                close(run.take(), &mut seen)?;
            }
            255 => break,
            _ => {
                let Some(&len) = buf.get(i + 1) else {
                    return Err(BadPacket::Option(code));
                };
                let len = usize::from(len);
                if i + 2 + len > buf.len() {
                    return Err(BadPacket::Option(code));
                }
                run = match run {
                    Some((c, l)) if c == code => Some((c, l + len)),
                    other => {
                        close(other, &mut seen)?;
                        Some((code, len))
                    }
                };
                i += 2 + len;
            }
        }
    }
    close(run, &mut seen)?;
    Ok(seen)
}

/// The DHCP message type (option 53) of a raw datagram, without decoding it; `None` when absent
/// (BOOTP) or unreadable.
pub fn peek_type(buf: &[u8]) -> Option<u8> {
    if buf.len() < 240 || buf[236..240] != MAGIC {
        return None;
    }
    let mut overload = 0;
    let mut i = 240;
    while i + 1 < buf.len() {
        match buf[i] {
            0 => i += 1,
            255 => break,
            53 => return buf.get(i + 2).copied(),
            52 => {
                overload = buf.get(i + 2).copied().unwrap_or(0);
                i += 2 + usize::from(buf[i + 1]);
            }
            _ => i += 2 + usize::from(buf[i + 1]),
        }
    }
    // RFC 2131 section 4.1: then `file`, then `sname`, when option 52 says they hold options.
    [(1, FILE), (2, SNAME)]
        .into_iter()
        .filter(|(bit, _)| overload & bit != 0)
        .find_map(|(_, field)| {
            let f = &buf[field];
            let mut i = 0;
            while i + 1 < f.len() {
                match f[i] {
                    0 => i += 1,
                    255 => return None,
                    53 => return f.get(i + 2).copied(),
                    _ => i += 2 + usize::from(f[i + 1]),
                }
            }
            None
        })
}

/// The `sname` and `file` header fields.
pub(crate) const SNAME: std::ops::Range<usize> = 44..108;
pub(crate) const FILE: std::ops::Range<usize> = 108..236;

/// Walks one options region (RFC 2132 section 2) up to its End option, appending each option to
/// `out` as (code, data); an option that overruns the region is an error.
fn walk<'a>(
    region: &'a [u8],
    out: &mut Vec<(u8, &'a [u8])>,
    what: &'static str,
) -> Result<(), BadPacket> {
    let mut i = 0;
    while i < region.len() {
        match region[i] {
            0 => i += 1,
            255 => return Ok(()),
            code => {
                let Some(&len) = region.get(i + 1) else {
                    return Err(BadPacket::Overload(what));
                };
                let end = i + 2 + usize::from(len);
                let Some(data) = region.get(i + 2..end) else {
                    return Err(BadPacket::Overload(what));
                };
                out.push((code, data));
                i = end;
            }
        }
    }
    Ok(())
}

/// Decodes a request whose options continue in `file` and/or `sname` (option 52): the options
/// field, then `file`, then `sname` (RFC 2131 section 4.1), every instance of an option
/// concatenated in that order (RFC 3396). The result is the same request with all its options in
/// the options field and the overloaded fields cleared.
fn parse_overloaded(buf: &[u8]) -> Result<Message, BadPacket> {
    let mut items = Vec::new();
    walk(&buf[240..], &mut items, "options field")?;
    let overload = match items.iter().filter(|(c, _)| *c == 52).collect::<Vec<_>>()[..] {
        [(_, [v @ 1..=3])] => *v,
        [(_, [_])] => return Err(BadPacket::Overload("value not 1, 2 or 3")),
        [_] => return Err(BadPacket::Overload("option 52 not one octet")),
        _ => return Err(BadPacket::Overload("option 52 more than once")),
    };
    let main = items.len();
    let mut header = buf[..236].to_vec();
    if overload & 1 != 0 {
        walk(&buf[FILE], &mut items, "option overruns the file field")?;
        header[FILE].fill(0);
    }
    if overload & 2 != 0 {
        walk(&buf[SNAME], &mut items, "option overruns the sname field")?;
        header[SNAME].fill(0);
    }
    if items[main..].iter().any(|(c, _)| *c == 52) {
        return Err(BadPacket::Overload("option 52 inside file or sname"));
    }
    // Concatenate every instance of a code, in order of first appearance.
    let mut merged: Vec<(u8, Vec<u8>)> = Vec::new();
    for (code, data) in items.into_iter().filter(|(c, _)| *c != 52) {
        match merged.iter_mut().find(|(c, _)| *c == code) {
            Some((_, v)) => v.extend_from_slice(data),
            None => merged.push((code, data.to_vec())),
        }
    }
    let mut flat = header;
    flat.extend_from_slice(&MAGIC);
    for (code, data) in &merged {
        if !length_ok(*code, data.len()) {
            return Err(BadPacket::Option(*code));
        }
        if data.is_empty() {
            flat.extend_from_slice(&[*code, 0]);
        }
        for chunk in data.chunks(255) {
            flat.push(*code);
            flat.push(chunk.len() as u8);
            flat.extend_from_slice(chunk);
        }
    }
    flat.push(255);
    let msg = decode_checked(&flat)?;
    if let Some((c, _)) = merged
        .iter()
        .find(|(c, _)| *c != 37 && msg.opts().get((*c).into()).is_none())
    {
        return Err(BadPacket::Option(*c));
    }
    Ok(msg)
}

fn decode_checked(buf: &[u8]) -> Result<Message, BadPacket> {
    std::panic::catch_unwind(|| Message::from_bytes(buf))
        .map_err(|_| BadPacket::Decode)?
        .map_err(|_| BadPacket::Decode)
}

/// Decodes a datagram into a request, refusing what the decoder would misread or trip over.
pub fn parse(buf: &[u8]) -> Result<Message, BadPacket> {
    if buf.len() < 236 {
        return Err(BadPacket::Short(buf.len()));
    }
    if buf[0] != 1 {
        return Err(BadPacket::NotRequest);
    }
    if buf[2] > 16 {
        return Err(BadPacket::Hlen(buf[2]));
    }
    // Plain BOOTP (RFC 951) may carry no magic cookie: decode the header alone.
    let has_magic = buf.len() >= 240 && buf[236..240] == MAGIC;
    if !has_magic {
        let mut v = buf[..236].to_vec();
        v.extend_from_slice(&MAGIC);
        v.push(255);
        return Message::from_bytes(&v).map_err(|_| BadPacket::Decode);
    }
    let seen = scan_options(&buf[240..])?;
    if seen[0] & (1 << 52) != 0 {
        return parse_overloaded(buf);
    }
    let msg = decode_checked(buf)?;
    // Every option present must have decoded: the decoder stops silently at the first bad one.
    // (dhcproto files option 37 under 23, so 37 is not looked up.)
    let missing = (1..=254u8).find(|c| {
        *c != 37
            && seen[usize::from(c / 64)] & (1 << (c % 64)) != 0
            && msg.opts().get((*c).into()).is_none()
    });
    if let Some(c) = missing {
        return Err(BadPacket::Option(c));
    }
    Ok(msg)
}

pub(crate) fn msg_type(m: &Message) -> Option<MessageType> {
    m.opts().msg_type()
}

pub(crate) fn opt_ip(m: &Message, code: OptionCode) -> Option<Ipv4Addr> {
    match m.opts().get(code)? {
        DhcpOption::RequestedIpAddress(ip)
        | DhcpOption::ServerIdentifier(ip)
        | DhcpOption::SubnetSelection(ip) => Some(*ip),
        _ => None,
    }
}

pub(crate) fn client_id(m: &Message) -> Option<&[u8]> {
    match m.opts().get(OptionCode::ClientIdentifier)? {
        DhcpOption::ClientIdentifier(v) if !v.is_empty() => Some(v),
        _ => None,
    }
}

/// The lease-table key of the client: option 61, else hardware type and chaddr.
pub fn client_key(m: &Message) -> Vec<u8> {
    match client_id(m) {
        Some(c) => c.to_vec(),
        None => {
            let mut k = Vec::with_capacity(1 + m.chaddr().len());
            k.push(u8::from(m.htype()));
            k.extend_from_slice(m.chaddr());
            k
        }
    }
}

pub(crate) fn mac(m: &Message) -> Option<[u8; 6]> {
    (m.htype() == HType::Eth && m.hlen() == 6).then(|| {
        let mut a = [0u8; 6];
        a.copy_from_slice(m.chaddr());
        a
    })
}

/// A DNS-safe host label from what the client sent.
pub fn sanitize_label(s: &str) -> Option<String> {
    let first = s.split('.').next()?;
    let l: String = first
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(63)
        .collect();
    let l = l.trim_matches('-').to_owned();
    (!l.is_empty()).then_some(l)
}

pub(crate) fn client_hostname(m: &Message) -> Option<String> {
    if let Some(DhcpOption::ClientFQDN(f)) = m.opts().get(OptionCode::ClientFQDN)
        && let Some(l) = sanitize_label(&f.domain().to_ascii())
    {
        return Some(l);
    }
    match m.opts().get(OptionCode::Hostname) {
        Some(DhcpOption::Hostname(h)) => sanitize_label(h),
        _ => None,
    }
}
