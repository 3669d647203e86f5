//! DNS name rules and the reverse-zone arithmetic the validator and the daemons share.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

/// True for a valid DNS label (letters, digits, hyphens; no leading/trailing hyphen; 1-63).
pub fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// True for a valid host name made of labels (`a.b.c`), at most 253 characters, trailing dot allowed.
pub fn is_dns_name(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_label)
}

/// `NAME.DOMAIN.`: a host name of the table as an absolute domain name.
pub(crate) fn fqdn(name: &str, domain: &str) -> String {
    format!("{name}.{domain}.")
}

/// The reverse zones covering `net`: octet-aligned, at most /24, at least the network itself.
pub fn reverse_zones(net: Ipv4Net) -> Vec<Ipv4Net> {
    let p = net.prefix_len();
    let q = p.div_ceil(8).clamp(1, 3) * 8;
    if q >= p {
        net.subnets(q).map(|s| s.collect()).unwrap_or_default()
    } else {
        vec![
            Ipv4Net::new(net.network(), q)
                .map(|n| n.trunc())
                .unwrap_or(net),
        ]
    }
}

/// `10.168.192.in-addr.arpa.` for 192.168.10.0/24.
pub fn reverse_origin(net: Ipv4Net) -> String {
    let o = net.network().octets();
    let n = usize::from(net.prefix_len() / 8);
    let mut s: Vec<String> = o[..n].iter().rev().map(|b| b.to_string()).collect();
    s.push("in-addr.arpa.".into());
    s.join(".")
}

/// `10.10.168.192.in-addr.arpa.` for 192.168.10.10.
pub fn ptr_name(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("{}.{}.{}.{}.in-addr.arpa.", o[3], o[2], o[1], o[0])
}

/// The ip6.arpa zone covering `net`: the enclosing nibble boundary (a /64 gives a zone of 16
/// nibbles, a /62 the /60 around it), at least one nibble.
pub fn reverse_zone6(net: Ipv6Net) -> Ipv6Net {
    let q = (net.prefix_len() / 4 * 4).max(4);
    Ipv6Net::new(net.network(), q)
        .map(|n| n.trunc())
        .unwrap_or(net)
}

/// The nibbles of `ip`, most significant first.
fn nibbles(ip: Ipv6Addr) -> impl DoubleEndedIterator<Item = char> {
    let v = u128::from(ip);
    (0..32).map(move |i| {
        let n = ((v >> (124 - 4 * i)) & 0xf) as u32;
        char::from_digit(n, 16).unwrap_or('0')
    })
}

/// `0.1.0.0.0.0.d.f.ip6.arpa.` for fd00:10::/32 (prefix lengths not on a nibble boundary are
/// cut to the nibble above, see [`reverse_zone6`] for the zone itself).
pub fn reverse_origin6(net: Ipv6Net) -> String {
    let n = usize::from(net.prefix_len() / 4);
    let mut s: String = nibbles(net.network())
        .take(n)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .flat_map(|c| [c, '.'])
        .collect();
    s.push_str("ip6.arpa.");
    s
}

/// The 32-nibble ip6.arpa name of `ip` (RFC 3596 2.5).
pub fn ptr_name6(ip: Ipv6Addr) -> String {
    let mut s: String = nibbles(ip).rev().flat_map(|c| [c, '.']).collect();
    s.push_str("ip6.arpa.");
    s
}
