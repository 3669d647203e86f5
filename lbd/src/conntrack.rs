//! Active connections of the kernel data plane, counted from the conntrack table (ESTABLISHED
//! TCP and all UDP entries DNATed by lbd), for `lbd status` and the metrics.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};

use hostfile::Protocol;

/// Key of a kernel-carried connection: (protocol, VIP, port, backend).
pub type ConnKey = (u8, Ipv4Addr, u16, SocketAddrV4);

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
        if it.next() != Some("ipv4") {
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
            field("dst=", 0).and_then(|v| v.parse::<Ipv4Addr>().ok()),
            field("dport=", 0).and_then(|v| v.parse::<u16>().ok()),
            field("src=", 1).and_then(|v| v.parse::<Ipv4Addr>().ok()),
            field("sport=", 1).and_then(|v| v.parse::<u16>().ok()),
        ) else {
            continue;
        };
        *out.entry((
            proto_num(proto),
            dst,
            dport,
            SocketAddrV4::new(rsrc, rsport),
        ))
        .or_insert(0) += 1;
    }
    out
}

/// `/proc/net/nf_conntrack` of this namespace, at most 64 MiB; `None` when unavailable.
pub fn read_conntrack() -> Option<String> {
    use std::io::Read as _;
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
        let vip: Ipv4Addr = "192.168.1.120".parse().unwrap();
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
}
