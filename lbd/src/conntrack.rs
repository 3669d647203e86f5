//! Active connections of the kernel data plane, counted from the conntrack table (ESTABLISHED
//! TCP and all UDP entries DNATed by lbd), for `lbd status` and the metrics.
//!
//! The table is dumped over ctnetlink ([`active`]), which needs only CAP_NET_ADMIN, the
//! capability lbd keeps: `/proc/net/nf_conntrack` is hidden by the unit's `ProcSubset=pid`,
//! and even as `/proc/self/net/nf_conntrack` it is readable by root only. The text file stays
//! the fallback (a kernel without ctnetlink).

use std::collections::HashMap;
use std::io::Read as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hostfile::Protocol;

/// Key of a kernel-carried connection: (protocol, VIP, port, backend).
pub type ConnKey = (u8, IpAddr, u16, SocketAddr);

/// IP protocol number of `p` (the first element of a [`ConnKey`]).
pub fn proto_num(p: Protocol) -> u8 {
    match p {
        Protocol::Tcp => 6,
        Protocol::Udp => 17,
    }
}

/// Counts connections per (protocol, VIP, port, backend) in `/proc/net/nf_conntrack` text:
/// TCP entries in ESTABLISHED (IPVS's ActiveConn) and every UDP entry, whose original
/// destination is the VIP and whose reply source is the backend (i.e. DNATed by lbd).
pub fn conntrack_active(text: &str) -> HashMap<ConnKey, u64> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        if !matches!(it.next(), Some("ipv4" | "ipv6")) {
            continue;
        }
        let proto = match line.split_whitespace().nth(2) {
            Some("tcp") => Protocol::Tcp,
            Some("udp") => Protocol::Udp,
            _ => continue,
        };
        if proto == Protocol::Tcp && !line.contains(" ESTABLISHED ") {
            continue;
        }
        let field = |key: &str, nth: usize| {
            line.split_whitespace()
                .filter_map(|t| t.strip_prefix(key))
                .nth(nth)
        };
        let (Some(dst), Some(dport), Some(rsrc), Some(rsport)) = (
            field("dst=", 0).and_then(|v| v.parse::<IpAddr>().ok()),
            field("dport=", 0).and_then(|v| v.parse::<u16>().ok()),
            field("src=", 1).and_then(|v| v.parse::<IpAddr>().ok()),
            field("sport=", 1).and_then(|v| v.parse::<u16>().ok()),
        ) else {
            continue;
        };
        *out.entry((proto_num(proto), dst, dport, SocketAddr::new(rsrc, rsport)))
            .or_insert(0) += 1;
    }
    out
}

/// Active connections per (protocol, VIP, port, backend) in this namespace's conntrack table:
/// a ctnetlink dump, else `/proc/net/nf_conntrack`; `None` when neither can be read.
pub fn active() -> Option<HashMap<ConnKey, u64>> {
    match dump() {
        Ok(entries) => Some(count(&entries)),
        Err(e) => {
            tracing::debug!(error = %e, "conntrack dump over netlink failed; reading /proc/net/nf_conntrack");
            read_conntrack().map(|t| conntrack_active(&t))
        }
    }
}

/// One conntrack entry, as far as the counting needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// IP protocol number.
    pub proto: u8,
    /// Original direction's destination (the VIP) and port.
    pub dst: SocketAddr,
    /// Reply direction's source (the backend, when DNATed) and port.
    pub reply_src: SocketAddr,
    /// The TCP state (`TCP_CONNTRACK_*`), for TCP entries.
    pub tcp_state: Option<u8>,
}

/// `TCP_CONNTRACK_ESTABLISHED`.
const TCP_ESTABLISHED: u8 = 3;

/// Counts `entries` as [`conntrack_active`] counts the text: TCP in ESTABLISHED and every UDP
/// entry, by (protocol, original destination, reply source) (pure).
pub fn count(entries: &[Entry]) -> HashMap<ConnKey, u64> {
    let mut out = HashMap::new();
    for e in entries {
        match e.proto {
            6 if e.tcp_state == Some(TCP_ESTABLISHED) => {}
            17 => {}
            _ => continue,
        }
        *out.entry((e.proto, e.dst.ip(), e.dst.port(), e.reply_src))
            .or_insert(0) += 1;
    }
    out
}

/// Why the conntrack table could not be dumped.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// The netlink socket failed (no ctnetlink, no CAP_NET_ADMIN, a timeout).
    #[error("netlink: {0}")]
    Io(#[from] std::io::Error),
    /// The kernel answered with an error.
    #[error("the kernel refused the conntrack dump: {0}")]
    Kernel(std::io::Error),
    /// A message did not parse.
    #[error("malformed netlink message")]
    Malformed,
    /// The dump is larger than lbd reads.
    #[error("conntrack dump larger than {} MiB", MAX_DUMP >> 20)]
    TooLarge,
}

/// Bytes of dump read at most (as the text file was read up to 64 MiB).
const MAX_DUMP: usize = 64 << 20;
/// No answer from the kernel for this long ends the dump.
const DUMP_TIMEOUT: Duration = Duration::from_secs(2);

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
/// `NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_GET`.
const CT_GET: u16 = 1 << 8 | 1;
/// `NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_NEW`: each entry of the dump.
const CT_NEW: u16 = 1 << 8;
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
const CTA_PROTOINFO: u16 = 4;
const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_SRC_PORT: u16 = 2;
const CTA_PROTO_DST_PORT: u16 = 3;
const CTA_PROTOINFO_TCP: u16 = 1;
const CTA_PROTOINFO_TCP_STATE: u16 = 1;

/// The dump request: IPv4 entries only (`nfgenmsg.family = AF_INET`).
pub fn dump_request(seq: u32) -> Vec<u8> {
    dump_request_family(seq, libc::AF_INET as u8)
}

/// The dump request for one address family (`AF_INET` or `AF_INET6`).
pub fn dump_request_family(seq: u32, family: u8) -> Vec<u8> {
    let len = (NLMSG_HDRLEN + 4) as u32;
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
    let mut m = Vec::with_capacity(len as usize);
    m.extend_from_slice(&len.to_ne_bytes());
    m.extend_from_slice(&CT_GET.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    // nfgenmsg: family, version (NFNETLINK_V0), resource id (big endian).
    m.extend_from_slice(&[family, 0, 0, 0]);
    m
}

/// Dumps this namespace's IPv4 and IPv6 conntrack entries over ctnetlink.
pub fn dump() -> Result<Vec<Entry>, DumpError> {
    let mut entries = dump_family(libc::AF_INET as u8)?;
    entries.extend(dump_family(libc::AF_INET6 as u8)?);
    Ok(entries)
}

fn dump_family(family: u8) -> Result<Vec<Entry>, DumpError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(
        Domain::from(libc::AF_NETLINK),
        Type::RAW.cloexec(),
        Some(Protocol::from(libc::NETLINK_NETFILTER)),
    )?;
    s.set_read_timeout(Some(DUMP_TIMEOUT))?;
    // Unaddressed, a netlink message goes to the kernel.
    s.send(&dump_request_family(1, family))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut entries = Vec::new();
    let mut total = 0;
    loop {
        let n = (&s).read(&mut buf)?;
        if n == 0 {
            return Err(DumpError::Malformed);
        }
        total += n;
        if total > MAX_DUMP {
            return Err(DumpError::TooLarge);
        }
        if parse_messages(&buf[..n], &mut entries)? {
            return Ok(entries);
        }
    }
}

/// Parses one datagram of a ctnetlink dump into `entries`; true once the dump is done (pure).
pub fn parse_messages(mut buf: &[u8], entries: &mut Vec<Entry>) -> Result<bool, DumpError> {
    while buf.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        let ty = u16::from_ne_bytes([buf[4], buf[5]]);
        if len < NLMSG_HDRLEN || len > buf.len() {
            return Err(DumpError::Malformed);
        }
        let body = &buf[NLMSG_HDRLEN..len];
        match ty {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let code = body
                    .get(..4)
                    .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                    .ok_or(DumpError::Malformed)?;
                if code != 0 {
                    return Err(DumpError::Kernel(std::io::Error::from_raw_os_error(-code)));
                }
            }
            CT_NEW => {
                // After the 4-byte nfgenmsg, the entry's attributes.
                if let Some(e) = body.get(4..).and_then(entry) {
                    entries.push(e);
                }
            }
            _ => {}
        }
        buf = &buf[align(len).min(buf.len())..];
    }
    Ok(false)
}

fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// The attributes in `b`: (type without the nested/byte-order flags, payload).
fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([b[0], b[1]]));
        let ty = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            return None;
        }
        let payload = &b[4..len];
        b = &b[align(len).min(b.len())..];
        Some((ty, payload))
    })
}

fn attr(b: &[u8], want: u16) -> Option<&[u8]> {
    attrs(b).find(|(t, _)| *t == want).map(|(_, v)| v)
}

/// (protocol, source, destination) of a `CTA_TUPLE_*`, IPv4 or IPv6.
fn tuple(b: &[u8]) -> Option<(u8, SocketAddr, SocketAddr)> {
    let ip = attr(b, CTA_TUPLE_IP)?;
    let addr = |t: u16| -> Option<IpAddr> {
        if let Some(v) = attr(ip, t) {
            return Some(Ipv4Addr::from(<[u8; 4]>::try_from(v).ok()?).into());
        }
        // CTA_IP_V6_SRC / CTA_IP_V6_DST follow the IPv4 pair.
        Some(Ipv6Addr::from(<[u8; 16]>::try_from(attr(ip, t + 2)?).ok()?).into())
    };
    let proto = attr(b, CTA_TUPLE_PROTO)?;
    let num = *attr(proto, CTA_PROTO_NUM)?.first()?;
    // Ports are big endian; protocols without ports (ICMP) get 0.
    let port = |t| {
        attr(proto, t)
            .and_then(|v| <[u8; 2]>::try_from(v).ok())
            .map_or(0, u16::from_be_bytes)
    };
    Some((
        num,
        SocketAddr::new(addr(CTA_IP_V4_SRC)?, port(CTA_PROTO_SRC_PORT)),
        SocketAddr::new(addr(CTA_IP_V4_DST)?, port(CTA_PROTO_DST_PORT)),
    ))
}

fn entry(b: &[u8]) -> Option<Entry> {
    let (proto, _, dst) = tuple(attr(b, CTA_TUPLE_ORIG)?)?;
    let (_, reply_src, _) = tuple(attr(b, CTA_TUPLE_REPLY)?)?;
    let tcp_state = attr(b, CTA_PROTOINFO)
        .and_then(|p| attr(p, CTA_PROTOINFO_TCP))
        .and_then(|t| attr(t, CTA_PROTOINFO_TCP_STATE))
        .and_then(|s| s.first().copied());
    Some(Entry {
        proto,
        dst,
        reply_src,
        tcp_state,
    })
}

/// `/proc/net/nf_conntrack` of this namespace, at most 64 MiB; `None` when unavailable.
pub fn read_conntrack() -> Option<String> {
    let f = std::fs::File::open("/proc/net/nf_conntrack").ok()?;
    let mut s = String::new();
    f.take(64 << 20).read_to_string(&mut s).ok()?;
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conntrack_counts_established_dnat_entries() {
        let text = "\
ipv4     2 tcp      6 431999 ESTABLISHED src=192.168.1.50 dst=192.168.1.120 sport=40000 dport=80 src=192.168.10.10 dst=192.168.1.50 sport=80 dport=40000 [ASSURED] mark=0 zone=0 use=2
ipv4     2 tcp      6 431999 ESTABLISHED src=192.168.1.51 dst=192.168.1.120 sport=40001 dport=80 src=192.168.10.10 dst=192.168.1.51 sport=80 dport=40001 [ASSURED] mark=0 zone=0 use=2
ipv4     2 tcp      6 119 TIME_WAIT src=192.168.1.50 dst=192.168.1.120 sport=40002 dport=80 src=192.168.10.11 dst=192.168.1.50 sport=80 dport=40002 [ASSURED] mark=0 zone=0 use=2
ipv4     2 udp      17 29 src=192.168.1.50 dst=192.168.1.120 sport=5353 dport=53 src=192.168.10.12 dst=192.168.1.50 sport=53 dport=5353 mark=0 zone=0 use=2
ipv4     2 icmp     1 29 src=192.168.1.50 dst=192.168.1.120 type=8 code=0 id=1 src=192.168.1.120 dst=192.168.1.50 type=0 code=0 id=1 mark=0 zone=0 use=2
garbage
";
        let m = conntrack_active(text);
        let vip: IpAddr = "192.168.1.120".parse().unwrap();
        assert_eq!(
            m.get(&(6, vip, 80, "192.168.10.10:80".parse().unwrap())),
            Some(&2)
        );
        assert_eq!(
            m.get(&(6, vip, 80, "192.168.10.11:80".parse().unwrap())),
            None
        );
        assert_eq!(
            m.get(&(17, vip, 53, "192.168.10.12:53".parse().unwrap())),
            Some(&1)
        );
        assert_eq!(m.len(), 2);
    }

    /// A netlink attribute (`nested`: the payload is attributes).
    fn nla(ty: u16, nested: bool, payload: &[u8]) -> Vec<u8> {
        let len = 4 + payload.len();
        let mut v = (len as u16).to_ne_bytes().to_vec();
        v.extend_from_slice(&(ty | if nested { 0x8000 } else { 0 }).to_ne_bytes());
        v.extend_from_slice(payload);
        v.resize(align(len), 0);
        v
    }

    fn v6(a: IpAddr) -> [u8; 16] {
        match a {
            IpAddr::V6(ip) => ip.octets(),
            IpAddr::V4(_) => unreachable!("one family per tuple"),
        }
    }

    fn tuple_attr(ty: u16, proto: u8, src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
        // CTA_IP_V6_SRC / CTA_IP_V6_DST are 3 and 4.
        let ip = match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => [
                nla(CTA_IP_V4_SRC, false, &s.octets()),
                nla(CTA_IP_V4_DST, false, &d.octets()),
            ]
            .concat(),
            (s, d) => [nla(3, false, &v6(s)), nla(4, false, &v6(d))].concat(),
        };
        let ports = [
            nla(CTA_PROTO_NUM, false, &[proto]),
            nla(CTA_PROTO_SRC_PORT, false, &src.port().to_be_bytes()),
            nla(CTA_PROTO_DST_PORT, false, &dst.port().to_be_bytes()),
        ]
        .concat();
        nla(
            ty,
            true,
            &[
                nla(CTA_TUPLE_IP, true, &ip),
                nla(CTA_TUPLE_PROTO, true, &ports),
            ]
            .concat(),
        )
    }

    fn message(ty: u16, body: &[u8]) -> Vec<u8> {
        let len = NLMSG_HDRLEN + body.len();
        let mut m = (len as u32).to_ne_bytes().to_vec();
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&[0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
        m.extend_from_slice(body);
        m.resize(align(len), 0);
        m
    }

    /// One dump entry: client -> VIP, DNATed to `backend` (a TCP state for TCP).
    fn ct(proto: u8, client: &str, vip: &str, backend: &str, state: Option<u8>) -> Vec<u8> {
        let (c, v, b): (SocketAddr, SocketAddr, SocketAddr) = (
            client.parse().unwrap(),
            vip.parse().unwrap(),
            backend.parse().unwrap(),
        );
        let family = if v.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        let mut body = vec![family as u8, 0, 0, 0];
        body.extend(tuple_attr(CTA_TUPLE_ORIG, proto, c, v));
        body.extend(tuple_attr(CTA_TUPLE_REPLY, proto, b, c));
        body.extend(nla(3, false, &0x188u32.to_be_bytes()));
        if let Some(st) = state {
            let tcp = nla(CTA_PROTOINFO_TCP_STATE, false, &[st]);
            body.extend(nla(
                CTA_PROTOINFO,
                true,
                &nla(CTA_PROTOINFO_TCP, true, &tcp),
            ));
        }
        message(CT_NEW, &body)
    }

    #[test]
    fn netlink_dump_counts_like_the_text() {
        // The same five entries as in the text test above, over two datagrams.
        let first = [
            ct(
                6,
                "192.168.1.50:40000",
                "192.168.1.120:80",
                "192.168.10.10:80",
                Some(3),
            ),
            ct(
                6,
                "192.168.1.51:40001",
                "192.168.1.120:80",
                "192.168.10.10:80",
                Some(3),
            ),
            ct(
                6,
                "192.168.1.50:40002",
                "192.168.1.120:80",
                "192.168.10.11:80",
                Some(7),
            ),
        ]
        .concat();
        let second = [
            ct(
                17,
                "192.168.1.50:5353",
                "192.168.1.120:53",
                "192.168.10.12:53",
                None,
            ),
            ct(
                1,
                "192.168.1.50:0",
                "192.168.1.120:0",
                "192.168.1.120:0",
                None,
            ),
            message(NLMSG_DONE, &0i32.to_ne_bytes()),
        ]
        .concat();
        let mut entries = Vec::new();
        assert!(!parse_messages(&first, &mut entries).unwrap());
        assert!(parse_messages(&second, &mut entries).unwrap());
        assert_eq!(entries.len(), 5);
        assert_eq!(
            entries[0],
            Entry {
                proto: 6,
                dst: "192.168.1.120:80".parse().unwrap(),
                reply_src: "192.168.10.10:80".parse().unwrap(),
                tcp_state: Some(3),
            }
        );
        let text = "\
ipv4     2 tcp      6 431999 ESTABLISHED src=192.168.1.50 dst=192.168.1.120 sport=40000 dport=80 src=192.168.10.10 dst=192.168.1.50 sport=80 dport=40000 [ASSURED] mark=0 zone=0 use=2
ipv4     2 tcp      6 431999 ESTABLISHED src=192.168.1.51 dst=192.168.1.120 sport=40001 dport=80 src=192.168.10.10 dst=192.168.1.51 sport=80 dport=40001 [ASSURED] mark=0 zone=0 use=2
ipv4     2 tcp      6 119 TIME_WAIT src=192.168.1.50 dst=192.168.1.120 sport=40002 dport=80 src=192.168.10.11 dst=192.168.1.50 sport=80 dport=40002 [ASSURED] mark=0 zone=0 use=2
ipv4     2 udp      17 29 src=192.168.1.50 dst=192.168.1.120 sport=5353 dport=53 src=192.168.10.12 dst=192.168.1.50 sport=53 dport=5353 mark=0 zone=0 use=2
";
        assert_eq!(count(&entries), conntrack_active(text));
        assert_eq!(count(&entries).len(), 2);
    }

    #[test]
    fn netlink_errors_and_garbage_are_errors() {
        let mut entries = Vec::new();
        let eperm = message(NLMSG_ERROR, &(-libc::EPERM).to_ne_bytes());
        match parse_messages(&eperm, &mut entries) {
            Err(DumpError::Kernel(e)) => assert_eq!(e.raw_os_error(), Some(libc::EPERM)),
            other => panic!("{other:?}"),
        }
        let mut short = ct(6, "1.2.3.4:1", "5.6.7.8:2", "9.9.9.9:3", Some(3));
        short[0] = 200;
        assert!(matches!(
            parse_messages(&short, &mut entries),
            Err(DumpError::Malformed)
        ));
        // The request asks for a dump of IPv4 entries.
        let r = dump_request(7);
        assert_eq!(r.len(), 20);
        assert_eq!(u16::from_ne_bytes([r[4], r[5]]), 0x101);
        assert_eq!(u16::from_ne_bytes([r[6], r[7]]), 0x301);
        assert_eq!(r[16], libc::AF_INET as u8);
    }

    #[test]
    fn ipv6_entries_are_counted_from_netlink_and_text() {
        let dump = [
            ct(
                6,
                "[fd00:1::50]:40000",
                "[fd00:1::120]:80",
                "[fd00:10::10]:80",
                Some(3),
            ),
            message(libc::NLMSG_DONE as u16, &[0; 4]),
        ]
        .concat();
        let mut entries = Vec::new();
        assert!(parse_messages(&dump, &mut entries).unwrap());
        let m = count(&entries);
        let vip: IpAddr = "fd00:1::120".parse().unwrap();
        assert_eq!(
            m.get(&(6, vip, 80, "[fd00:10::10]:80".parse().unwrap())),
            Some(&1)
        );
        let text = "ipv6     10 tcp      6 431999 ESTABLISHED src=fd00:1::50 dst=fd00:1::120 sport=40000 dport=80 src=fd00:10::10 dst=fd00:1::50 sport=80 dport=40000 [ASSURED] mark=0 zone=0 use=2\n";
        let t = conntrack_active(text);
        assert_eq!(t, m);
        // The dump asks for each family in turn.
        assert_eq!(
            dump_request_family(1, libc::AF_INET6 as u8)[16],
            libc::AF_INET6 as u8
        );
    }
}
