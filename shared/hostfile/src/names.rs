//! DNS name rules and the reverse-zone arithmetic the validator and the daemons share.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

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
