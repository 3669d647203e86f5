//! Protocol decisions (RFC 2131 section 4.3): a pure function of the configuration, the lease
//! table, one request and the clock. The socket layer decodes, calls [`handle`], applies the
//! changes, makes the persistent ones durable, then sends the reply to [`Dest`].

use std::net::Ipv4Addr;

use dhcproto::Decodable;
use dhcproto::v4::{DhcpOption, Flags, HType, Message, MessageType, Opcode, OptionCode};
use ipnet::Ipv4Net;

use crate::alloc::{self, Client};
use crate::config::Config;
use crate::lease::{Change, KeySource, Lease, LeaseState, LeaseTable, NEVER};
use crate::options::{self, ReplyOpts};

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
    fn silent(why: &'static str) -> Self {
        Decision {
            silent: Some(why),
            ..Default::default()
        }
    }
    fn bad(why: &'static str) -> Self {
        Decision {
            silent: Some(why),
            bad: true,
            ..Default::default()
        }
    }
}

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

const MAGIC: [u8; 4] = [99, 130, 83, 99];

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
const SNAME: std::ops::Range<usize> = 44..108;
const FILE: std::ops::Range<usize> = 108..236;

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

fn msg_type(m: &Message) -> Option<MessageType> {
    m.opts().msg_type()
}

fn opt_ip(m: &Message, code: OptionCode) -> Option<Ipv4Addr> {
    match m.opts().get(code)? {
        DhcpOption::RequestedIpAddress(ip)
        | DhcpOption::ServerIdentifier(ip)
        | DhcpOption::SubnetSelection(ip) => Some(*ip),
        _ => None,
    }
}

fn client_id(m: &Message) -> Option<&[u8]> {
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

fn mac(m: &Message) -> Option<[u8; 6]> {
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

fn client_hostname(m: &Message) -> Option<String> {
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

/// Picks the subnet: by option 118 or giaddr when relayed, else by the receiving interface.
fn select_subnet(cfg: &Config, m: &Message, rx: &Rx<'_>) -> Option<usize> {
    let relayed = !m.giaddr().is_unspecified();
    if relayed {
        let ip = opt_ip(m, OptionCode::SubnetSelection).unwrap_or(m.giaddr());
        return cfg.subnet_of(ip);
    }
    let subnets = &cfg.view.subnets;
    subnets
        .iter()
        .position(|s| s.interface.as_deref() == Some(rx.iface))
        .or_else(|| {
            subnets.iter().position(|s| {
                s.interface.is_none() && rx.addrs.iter().any(|a| s.network.contains(&a.addr()))
            })
        })
}

fn server_id(cfg: &Config, subnet: usize, rx: &Rx<'_>) -> Option<Ipv4Addr> {
    let net = cfg.subnet(subnet).network;
    rx.addrs
        .iter()
        .map(|a| a.addr())
        .find(|a| net.contains(a))
        .or_else(|| rx.addrs.first().map(|a| a.addr()))
}

/// RFC 2131 section 4.1 delivery for OFFER/ACK/BOOTREPLY.
fn dest(req: &Message, yiaddr: Ipv4Addr, nak: bool) -> Dest {
    if !req.giaddr().is_unspecified() {
        Dest::Relay(req.giaddr())
    } else if nak {
        Dest::Broadcast
    } else if !req.ciaddr().is_unspecified() {
        Dest::Unicast(req.ciaddr())
    } else if req.flags().broadcast() || yiaddr.is_unspecified() {
        Dest::Broadcast
    } else if let Some(mac) = mac(req) {
        Dest::Hw { ip: yiaddr, mac }
    } else {
        Dest::Broadcast
    }
}

fn base_reply(req: &Message) -> Message {
    let mut r = Message::default();
    r.set_opcode(Opcode::BootReply)
        .set_htype(req.htype())
        .set_chaddr(req.chaddr())
        .set_xid(req.xid())
        .set_flags(req.flags())
        .set_giaddr(req.giaddr());
    r
}

struct Ctx<'a> {
    cfg: &'a Config,
    t: &'a LeaseTable,
    req: &'a Message,
    now: u64,
    subnet: usize,
    server_id: Ipv4Addr,
    key: Vec<u8>,
    offline: bool,
}

impl Ctx<'_> {
    /// Where the client key came from.
    fn source(&self) -> KeySource {
        if client_id(self.req).is_some() {
            KeySource::ClientId
        } else {
            KeySource::Hardware
        }
    }

    /// The identity this request's DNS records carry.
    fn dhcid_id(&self) -> ClientId {
        ClientId::of(&self.key, self.req.chaddr(), self.source())
    }

    fn client(&self) -> Client<'_> {
        Client {
            key: &self.key,
            cid: client_id(self.req),
            mac: mac(self.req),
            bootp: msg_type(self.req).is_none(),
        }
    }

    fn lease_secs(&self) -> u32 {
        let s = self.cfg.subnet(self.subnet);
        let secs = match self.req.opts().get(OptionCode::AddressLeaseTime) {
            Some(DhcpOption::AddressLeaseTime(t)) => u64::from(*t).min(s.max_lease.as_secs()),
            _ => s.lease.as_secs(),
        };
        secs.clamp(1, u64::from(u32::MAX - 1)) as u32
    }

    fn hostname(&self) -> Option<String> {
        let c = self.client();
        self.cfg
            .reservation(c.cid, c.mac, self.subnet)
            .map(|r| r.hostname.clone())
            .or_else(|| client_hostname(self.req))
    }

    fn reply(
        &self,
        kind: Option<MessageType>,
        yiaddr: Ipv4Addr,
        lease: Option<u32>,
        hostname: Option<&str>,
    ) -> Option<Reply> {
        let c = self.client();
        let s = self.cfg.subnet(self.subnet);
        let host = self.cfg.reservation(c.cid, c.mac, self.subnet);
        let mut r = base_reply(self.req);
        r.set_yiaddr(yiaddr);
        if matches!(kind, Some(MessageType::Ack)) || kind.is_none() {
            r.set_ciaddr(self.req.ciaddr());
        }
        if let Some(ns) = s.next_server {
            r.set_siaddr(ns);
        }
        if let Some(f) = host
            .and_then(|h| h.boot_file.as_ref())
            .or(s.boot_file.as_ref())
        {
            r.set_fname_str(f);
        }
        options::fill(
            self.req,
            &mut r,
            &ReplyOpts {
                kind,
                server_id: self.server_id,
                lease,
                subnet: s,
                host,
                hostname,
                domain: &self.cfg.view.domain,
                ddns: self.cfg.view.ddns.is_some(),
            },
        );
        let bytes = options::encode(r, options::max_size(self.req))?;
        Some(Reply {
            bytes,
            dest: dest(self.req, yiaddr, false),
            kind: match kind {
                Some(MessageType::Offer) => "OFFER",
                Some(MessageType::Ack) => "ACK",
                _ => "BOOTREPLY",
            },
            yiaddr,
        })
    }

    fn nak(&self, why: &'static str) -> Decision {
        let mut r = base_reply(self.req);
        if !self.req.giaddr().is_unspecified() {
            r.set_flags(Flags::default().set_broadcast());
        }
        let o = r.opts_mut();
        o.insert(DhcpOption::MessageType(MessageType::Nak));
        o.insert(DhcpOption::ServerIdentifier(self.server_id));
        o.insert(DhcpOption::Message(why.to_owned()));
        if let Some(ri) = self.req.opts().get(OptionCode::RelayAgentInformation) {
            o.insert(ri.clone());
        }
        let Some(bytes) = options::encode(r, options::max_size(self.req)) else {
            return Decision::silent("cannot encode NAK");
        };
        Decision {
            reply: Some(Reply {
                bytes,
                dest: dest(self.req, Ipv4Addr::UNSPECIFIED, true),
                kind: "NAK",
                yiaddr: Ipv4Addr::UNSPECIFIED,
            }),
            silent: Some(why),
            ..Default::default()
        }
    }

    /// Binds `ip` to the client and answers with ACK (or a BOOTP reply).
    fn bind(&self, ip: Ipv4Addr, kind: Option<MessageType>) -> Decision {
        let prev = self.t.get(ip);
        // A renewal that names no host keeps the name the lease has (and its DNS records).
        let hostname = self.hostname().or_else(|| {
            prev.filter(|p| p.client == self.key && p.state == LeaseState::Bound)
                .and_then(|p| p.hostname.clone())
        });
        let renewal = prev.is_some_and(|p| {
            p.client == self.key && p.state == LeaseState::Bound && p.holds(self.now)
        });
        if self.offline && !renewal {
            return Decision::silent(OFFLINE);
        }
        let (lease, expires) = if kind.is_none() {
            (None, NEVER)
        } else if self.offline {
            // Only what the database already holds: another server may give the address away
            // once that time is up.
            let end = prev.map_or(self.now, |p| p.expires);
            let s = end
                .saturating_sub(self.now)
                .clamp(1, u64::from(u32::MAX - 1)) as u32;
            (Some(s), end)
        } else {
            let s = self.lease_secs();
            (Some(s), self.now.saturating_add(u64::from(s)))
        };
        let Some(reply) = self.reply(kind, ip, lease, hostname.as_deref()) else {
            return Decision::silent("cannot encode reply");
        };
        let mut d = Decision {
            reply: Some(reply),
            ..Default::default()
        };
        let me = self.dhcid_id();
        let was_published = prev.is_some_and(|p| {
            p.client == self.key
                && p.state == LeaseState::Bound
                && p.hostname == hostname
                && p.holds(self.now)
                && ClientId::of_lease(p) == me
        });
        // The client's older lease elsewhere ends now.
        if let Some(old) = self.t.of_client(&self.key)
            && old.ip != ip
            && old.state == LeaseState::Bound
        {
            d.changes.push(Change::Put(Lease {
                state: LeaseState::Released,
                expires: self.now,
                ..old.clone()
            }));
            if let Some(h) = &old.hostname {
                d.dns.push(Dns::Remove {
                    name: h.clone(),
                    ip: old.ip,
                    id: ClientId::of_lease(old),
                });
            }
        }
        // Another client's stale record of this address loses its DNS name, and so does this
        // client's own record when it now goes by another name or identity (it started or
        // stopped sending option 61, or the record predates the key source): the name is then
        // published again under the identity the lease now keeps.
        if let Some(p) = prev
            && (p.client != self.key || p.hostname != hostname || ClientId::of_lease(p) != me)
            && let Some(h) = &p.hostname
            && p.state == LeaseState::Bound
        {
            d.dns.push(Dns::Remove {
                name: h.clone(),
                ip,
                id: ClientId::of_lease(p),
            });
        }
        d.changes.push(Change::Put(Lease {
            ip,
            client: self.key.clone(),
            key_source: self.source(),
            hwaddr: self.req.chaddr().to_vec(),
            hostname: hostname.clone(),
            starts: self.now,
            expires,
            state: LeaseState::Bound,
        }));
        if let Some(h) = hostname
            && !was_published
        {
            d.dns.push(Dns::Add {
                name: h,
                ip,
                id: me,
            });
        }
        d
    }

    fn discover(&self) -> Decision {
        let c = self.client();
        if self.offline {
            // A client that holds a live lease may still be offered it: its REQUEST renews.
            let held = self
                .t
                .of_client(&self.key)
                .is_some_and(|l| l.state == LeaseState::Bound && l.holds(self.now));
            if !held {
                return Decision::silent(OFFLINE);
            }
        }
        let requested = opt_ip(self.req, OptionCode::RequestedIpAddress);
        let Some(pick) = alloc::choose(self.cfg, self.t, self.subnet, &c, requested, self.now)
        else {
            return Decision::silent("no free address in the pool");
        };
        let hostname = self.hostname();
        let Some(reply) = self.reply(
            Some(MessageType::Offer),
            pick.ip,
            Some(self.lease_secs()),
            hostname.as_deref(),
        ) else {
            return Decision::silent("cannot encode OFFER");
        };
        let mut d = Decision {
            reply: Some(reply),
            ..Default::default()
        };
        let live = self.t.get(pick.ip).is_some_and(|l| {
            l.client == self.key && l.state == LeaseState::Bound && l.holds(self.now)
        });
        if !live {
            d.changes.push(Change::Put(Lease {
                ip: pick.ip,
                client: self.key.clone(),
                key_source: self.source(),
                hwaddr: self.req.chaddr().to_vec(),
                hostname,
                starts: self.now,
                expires: self.now.saturating_add(OFFER_HOLD),
                state: LeaseState::Offered,
            }));
        }
        if pick.fresh && self.cfg.view.ping_check {
            d.probe = Some(pick.ip);
        }
        d
    }

    fn request(&self) -> Decision {
        let sid = opt_ip(self.req, OptionCode::ServerIdentifier);
        let requested = opt_ip(self.req, OptionCode::RequestedIpAddress);
        let ciaddr = self.req.ciaddr();
        let selecting = sid.is_some();
        if let Some(sid) = sid
            && sid != self.server_id
        {
            // The client took another server's offer: drop ours.
            let mut d = Decision::silent("client chose another server");
            if let Some(l) = self.t.of_client(&self.key)
                && l.state == LeaseState::Offered
            {
                d.changes.push(Change::Withdraw {
                    ip: l.ip,
                    client: self.key.clone(),
                });
            }
            return d;
        }
        let ip = match (requested, ciaddr.is_unspecified()) {
            (Some(ip), _) => ip,
            (None, false) => ciaddr,
            (None, true) => return Decision::bad("REQUEST without an address"),
        };
        let authoritative = self.cfg.subnet(self.subnet).authoritative;
        let refuse = |why| {
            if selecting || authoritative {
                self.nak(why)
            } else {
                Decision::silent(why)
            }
        };
        let s = self.cfg.subnet(self.subnet);
        if !s.network.contains(&ip) {
            return refuse("address not on this network");
        }
        let c = self.client();
        if let Some(r) = self.cfg.reservation(c.cid, c.mac, self.subnet) {
            return if r.ip == ip {
                self.bind(ip, Some(MessageType::Ack))
            } else {
                refuse("this client has a reserved address")
            };
        }
        if self.cfg.is_reserved(ip) {
            return refuse("address reserved for another host");
        }
        let mine = self
            .t
            .get(ip)
            .is_some_and(|l| l.client == self.key && l.state != LeaseState::Declined);
        if mine
            && (alloc::in_pool(s, ip, false) || self.t.get(ip).is_some_and(|l| l.holds(self.now)))
        {
            return self.bind(ip, Some(MessageType::Ack));
        }
        if alloc::available(self.cfg, self.t, self.subnet, &c, ip, self.now) {
            return self.bind(ip, Some(MessageType::Ack));
        }
        refuse("address not available")
    }

    fn decline(&self) -> Decision {
        if opt_ip(self.req, OptionCode::ServerIdentifier).is_some_and(|s| s != self.server_id) {
            return Decision::silent("DECLINE for another server");
        }
        let Some(ip) = opt_ip(self.req, OptionCode::RequestedIpAddress) else {
            return Decision::bad("DECLINE without an address");
        };
        match self.t.get(ip) {
            Some(l) if l.client == self.key && l.state != LeaseState::Declined => {
                let mut d = Decision::silent("DECLINE: address on probation");
                if let Some(h) = &l.hostname {
                    d.dns.push(Dns::Remove {
                        name: h.clone(),
                        ip,
                        id: ClientId::of_lease(l),
                    });
                }
                d.changes.push(Change::Put(probation(
                    ip,
                    self.now,
                    self.cfg.view.decline_probation.as_secs(),
                )));
                d
            }
            _ => Decision::silent("DECLINE for an address the client does not hold"),
        }
    }

    fn release(&self) -> Decision {
        let ip = self.req.ciaddr();
        match self.t.get(ip) {
            Some(l) if l.client == self.key && l.state == LeaseState::Bound => {
                let mut d = Decision::silent("RELEASE");
                if let Some(h) = &l.hostname {
                    d.dns.push(Dns::Remove {
                        name: h.clone(),
                        ip,
                        id: ClientId::of_lease(l),
                    });
                }
                d.changes.push(Change::Put(Lease {
                    state: LeaseState::Released,
                    expires: self.now,
                    ..l.clone()
                }));
                d
            }
            _ => Decision::silent("RELEASE for an address the client does not hold"),
        }
    }

    fn inform(&self) -> Decision {
        let mut r = base_reply(self.req);
        r.set_ciaddr(self.req.ciaddr());
        let s = self.cfg.subnet(self.subnet);
        options::fill(
            self.req,
            &mut r,
            &ReplyOpts {
                kind: Some(MessageType::Ack),
                server_id: self.server_id,
                lease: None,
                subnet: s,
                host: None,
                hostname: None,
                domain: &self.cfg.view.domain,
                ddns: false,
            },
        );
        let Some(bytes) = options::encode(r, options::max_size(self.req)) else {
            return Decision::silent("cannot encode ACK");
        };
        Decision {
            reply: Some(Reply {
                bytes,
                dest: dest(self.req, Ipv4Addr::UNSPECIFIED, false),
                kind: "ACK(INFORM)",
                yiaddr: Ipv4Addr::UNSPECIFIED,
            }),
            ..Default::default()
        }
    }

    fn bootp(&self) -> Decision {
        let c = self.client();
        let Some(pick) = alloc::choose(self.cfg, self.t, self.subnet, &c, None, self.now) else {
            return Decision::silent("no free BOOTP address");
        };
        self.bind(pick.ip, None)
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

/// Leases whose time is up (at most `limit`): bound ones expire and lose their DNS records, stale
/// offers and finished probation are forgotten.
pub fn expire(t: &LeaseTable, now: u64, limit: usize) -> Decision {
    let changes = t.expiries(now, limit);
    let dns = changes
        .iter()
        .filter_map(|c| match c {
            Change::Put(l) if l.state == LeaseState::Expired => {
                l.hostname.as_ref().map(|h| Dns::Remove {
                    name: h.clone(),
                    ip: l.ip,
                    id: ClientId::of_lease(l),
                })
            }
            _ => None,
        })
        .collect();
    Decision {
        changes,
        dns,
        ..Default::default()
    }
}

/// Decides what to do about `req`, received on `rx`.
pub fn handle(cfg: &Config, t: &LeaseTable, req: &Message, rx: &Rx<'_>) -> Decision {
    if req.opcode() != Opcode::BootRequest {
        return Decision::bad("not a BOOTREQUEST");
    }
    if req.hops() > 16 {
        return Decision::bad("too many relay hops");
    }
    let Some(subnet) = select_subnet(cfg, req, rx) else {
        return Decision::silent("no subnet for this client");
    };
    let Some(server_id) = server_id(cfg, subnet, rx) else {
        return Decision::silent("no local address on the interface");
    };
    let ctx = Ctx {
        cfg,
        t,
        req,
        now: rx.now,
        subnet,
        server_id,
        key: client_key(req),
        offline: rx.offline,
    };
    match msg_type(req) {
        None => ctx.bootp(),
        Some(MessageType::Discover) => ctx.discover(),
        Some(MessageType::Request) => ctx.request(),
        Some(MessageType::Decline) => ctx.decline(),
        Some(MessageType::Release) => ctx.release(),
        Some(MessageType::Inform) => ctx.inform(),
        Some(_) => Decision::bad("not a client message type"),
    }
}

#[cfg(test)]
mod tests;
