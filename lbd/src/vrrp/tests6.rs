//! The IPv6 codec: checksum over the IPv6 pseudo-header, 16-byte addresses, hop limit 255,
//! and an advert keepalived 2.2.7 sent (captured in a namespace with a raw socket).

use super::*;
use std::net::{IpAddr, Ipv6Addr};

const LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 0x0a);

fn vip6() -> IpAddr {
    "fd00:6::100".parse().unwrap()
}

/// keepalived 2.2.7, `vrrp_instance` with `virtual_router_id 61`, `priority 150`,
/// `advert_int 1`, `virtual_ipaddress { fd00:6::100/64 }`, from fe80::ff:fe00:a to ff02::12
/// (hop limit 255), as read from a raw IPv6 socket.
const KEEPALIVED: &str = "313d960100643d2efd000006000000000000000000000100";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn adv() -> Advert {
    Advert {
        vrid: 61,
        priority: 150,
        interval_cs: 100,
        addrs: vec![vip6()],
    }
}

#[test]
fn keepalived_advert_decodes_and_ours_is_byte_identical() {
    let pkt = unhex(KEEPALIVED);
    assert_eq!(decode6(&pkt, LL, GROUP6, Some(255)), Ok(adv()));
    assert_eq!(encode6(&adv(), LL, GROUP6), pkt);
    assert_eq!(checksum6(LL, GROUP6, &pkt), 0);
}

#[test]
fn ipv6_checks_hop_limit_checksum_version_and_length() {
    let pkt = encode6(&adv(), LL, GROUP6);
    assert_eq!(pkt.len(), 8 + 16);
    assert_eq!(
        decode6(&pkt, LL, GROUP6, Some(64)),
        Err(DecodeError::Ttl(64))
    );
    assert_eq!(
        decode6(&pkt, LL, GROUP6, None),
        Err(DecodeError::NoHopLimit)
    );
    // The pseudo-header counts: another source or destination breaks the checksum.
    let other = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x0b);
    assert_eq!(
        decode6(&pkt, other, GROUP6, Some(255)),
        Err(DecodeError::Checksum)
    );
    assert_eq!(
        decode6(&pkt, LL, other, Some(255)),
        Err(DecodeError::Checksum)
    );
    let mut bad = pkt.clone();
    bad[23] ^= 1;
    assert_eq!(
        decode6(&bad, LL, GROUP6, Some(255)),
        Err(DecodeError::Checksum)
    );
    let mut v2 = pkt.clone();
    v2[0] = 0x21;
    assert_eq!(
        decode6(&v2, LL, GROUP6, Some(255)),
        Err(DecodeError::Version(0x21))
    );
    assert_eq!(
        decode6(&pkt[..20], LL, GROUP6, Some(255)),
        Err(DecodeError::Truncated)
    );
    assert_eq!(
        decode6(&[], LL, GROUP6, Some(255)),
        Err(DecodeError::Truncated)
    );
}

#[test]
fn several_ipv6_addresses_round_trip_and_ipv4_ones_stay_out() {
    let mut a = adv();
    a.addrs = vec![
        vip6(),
        "2001:db8::1".parse().unwrap(),
        "192.168.1.1".parse().unwrap(),
    ];
    let pkt = encode6(&a, LL, GROUP6);
    assert_eq!(pkt[3], 2);
    assert_eq!(pkt.len(), 8 + 32);
    let got = decode6(&pkt, LL, GROUP6, Some(255)).unwrap();
    assert_eq!(got.addrs, a.addrs[..2]);
    // And the IPv4 encoder leaves the IPv6 ones out.
    let src = std::net::Ipv4Addr::new(10, 0, 0, 1);
    let v4 = encode(&a, src, GROUP);
    assert_eq!(v4[3], 1);
    assert_eq!(v4.len(), 12);
}

#[test]
fn equal_priorities_tie_break_on_the_higher_link_local_address() {
    use tokio::time::Instant;
    let now = Instant::now();
    let p = Params {
        vrid: 61,
        priority: 150,
        preempt: true,
        interval_cs: 100,
        local: IpAddr::V6(LL),
        addrs: vec![vip6()],
        peers: Vec::new(),
    };
    let (mut m, _) = Machine::start(p, now);
    m.on_timer(m.deadline());
    assert_eq!(m.state(), State::Master);
    let lower = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 0x09);
    assert!(m.on_advert(&adv(), lower, now).is_empty());
    assert_eq!(m.state(), State::Master);
    let higher = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 0x0b);
    assert_eq!(m.on_advert(&adv(), higher, now), vec![Action::BecomeBackup]);
    // An advert listing IPv4 addresses is another router's.
    let mut v4 = adv();
    v4.addrs = vec!["192.168.1.120".parse().unwrap()];
    assert!(matches!(
        m.screen(&v4, higher),
        Err(Ignored::Addresses { .. })
    ));
}

#[test]
fn no_truncation_or_single_byte_change_panics() {
    let mut a = adv();
    a.addrs.push("2001:db8::1".parse().unwrap());
    let pkt = encode6(&a, LL, GROUP6);
    for n in 0..=pkt.len() {
        let _ = decode6(&pkt[..n], LL, GROUP6, Some(255));
    }
    for i in 0..pkt.len() {
        for b in [0u8, 1, 0x7f, 0x80, 0xff] {
            let mut p = pkt.clone();
            p[i] = b;
            if let Ok(got) = decode6(&p, LL, GROUP6, Some(255)) {
                // Whatever passes the checksum is a well-formed advert.
                assert_eq!(got.addrs.len(), usize::from(p[3]));
            }
        }
    }
}
