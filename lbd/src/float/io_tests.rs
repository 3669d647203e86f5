//! The pure parts of the IPv6 address and neighbour-discovery IO.

use std::net::Ipv6Addr;

use super::addr6::{If6, parse_if_inet6, request};
use super::ndisc::na_message;

#[test]
fn if_inet6_lines_parse() {
    let text = "fe80000000000000000000fffe00000a 02 40 20 80    veth0\n\
                fd000006000000000000000000000100 02 40 00 c2    veth0\n\
                00000000000000000000000000000001 01 80 10 80       lo\n\
                garbage\n";
    let v = parse_if_inet6(text);
    assert_eq!(v.len(), 3);
    assert_eq!(
        v[0],
        If6 {
            addr: "fe80::ff:fe00:a".parse().unwrap(),
            index: 2,
            prefix: 64,
            scope: 0x20,
            flags: 0x80,
            name: "veth0".into(),
        }
    );
    assert_eq!(v[1].addr, "fd00:6::100".parse::<Ipv6Addr>().unwrap());
    assert_eq!(v[1].flags, 0xc2);
    assert_eq!(v[2].index, 1);
}

#[test]
fn address_requests_carry_nodad_and_the_address() {
    let net = "fd00:6::100/64".parse().unwrap();
    let m = request(libc::RTM_NEWADDR, net, 7, 1);
    assert_eq!(m.len(), 16 + 8 + 20);
    assert_eq!(u32::from_ne_bytes(m[0..4].try_into().unwrap()), 44);
    assert_eq!(
        u16::from_ne_bytes(m[4..6].try_into().unwrap()),
        libc::RTM_NEWADDR
    );
    assert_eq!(m[16], libc::AF_INET6 as u8);
    assert_eq!(m[17], 64);
    assert_eq!(m[18], 0x02, "IFA_F_NODAD");
    assert_eq!(u32::from_ne_bytes(m[20..24].try_into().unwrap()), 7);
    assert_eq!(
        u16::from_ne_bytes(m[26..28].try_into().unwrap()),
        libc::IFA_ADDRESS
    );
    assert_eq!(
        &m[28..44],
        &"fd00:6::100".parse::<Ipv6Addr>().unwrap().octets()
    );
    let d = request(libc::RTM_DELADDR, net, 7, 1);
    let flags = u16::from_ne_bytes(d[6..8].try_into().unwrap());
    assert_eq!(flags & libc::NLM_F_CREATE as u16, 0);
}

#[test]
fn unsolicited_neighbour_advertisement_layout() {
    let mac = [0x02, 0, 0, 0, 0, 0x0a];
    let t: Ipv6Addr = "fd00:6::100".parse().unwrap();
    let m = na_message(mac, t, false);
    assert_eq!(m[0], 136);
    assert_eq!(m[1], 0);
    assert_eq!(&m[2..4], &[0, 0], "the kernel fills the checksum");
    assert_eq!(m[4], 0x20, "override set, solicited and router clear");
    assert_eq!(&m[8..24], &t.octets());
    assert_eq!(&m[24..26], &[2, 1], "target link-layer address, 8 bytes");
    assert_eq!(&m[26..32], &mac);
    assert_eq!(na_message(mac, t, true)[4], 0xa0);
}

/// keepalived 2.2.7's unsolicited neighbour advertisement for fd00:6::100 from 02:00:00:00:00:0a
/// (captured in a namespace: from fd00:6::100 to ff02::1, hop limit 255); ours is the same but
/// for the checksum, which the kernel fills.
#[test]
fn our_neighbour_advertisement_is_keepalived_s() {
    let ka = "8800588820000000fd000006000000000000000000000100020102000000000a";
    let ka: Vec<u8> = (0..ka.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&ka[i..i + 2], 16).unwrap())
        .collect();
    let mut ours = na_message(
        [0x02, 0, 0, 0, 0, 0x0a],
        "fd00:6::100".parse().unwrap(),
        false,
    )
    .to_vec();
    ours[2..4].copy_from_slice(&ka[2..4]);
    assert_eq!(ours, ka);
}
