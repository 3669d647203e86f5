use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use hostfile::{Dhcp6Subnet, Ipv6Range, PdPool, Pool6};

use super::build::{DNS_LIFETIME, Kind, MAX_LEN, ROUTER_LIFETIME, RaParams, build};
use super::rs::{RsError, Solicitation, parse};
use super::sched::*;

fn subnet() -> Dhcp6Subnet {
    Dhcp6Subnet {
        name: "lan6".into(),
        network: "fd00:99::/64".parse().unwrap(),
        interface: None,
        dns: vec!["fd00:99::1".parse().unwrap(), "fd00:99::2".parse().unwrap()],
        domain: "lan.test".into(),
        search: vec!["lan.test".into(), "example.org".into()],
        ntp: vec![],
        mtu: Some(1400),
        preferred: Duration::from_secs(3000),
        valid: Duration::from_secs(4000),
        t1: Duration::from_secs(1500),
        t2: Duration::from_secs(2400),
        pools: vec![],
        pd_pools: vec![],
        ra: true,
        slaac: true,
        rapid_commit: false,
    }
}

/// The options of an advertisement as (type, body after the two-octet header).
fn options(ra: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 16;
    while at < ra.len() {
        let len = usize::from(ra[at + 1]) * 8;
        assert!(len > 0 && at + len <= ra.len(), "option at {at}: {ra:?}");
        out.push((ra[at], ra[at + 2..at + len].to_vec()));
        at += len;
    }
    out
}

fn opt(ra: &[u8], kind: u8) -> Option<Vec<u8>> {
    options(ra)
        .into_iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, b)| b)
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[..4].try_into().unwrap())
}

const MAC: [u8; 6] = [2, 0, 0, 0, 0x99, 1];

#[test]
fn slaac_subnet_advertises_an_autonomous_prefix_dns_search_mtu_and_its_mac() {
    let ra = build(&RaParams::of(&subnet()), &MAC, Kind::Regular);
    assert_eq!(ra[0], 134);
    assert_eq!(ra[4], 64, "cur hop limit");
    assert_eq!(ra[5], 0x40, "O (DNS and search), no M: no address pool");
    assert_eq!(u16::from_be_bytes([ra[6], ra[7]]), ROUTER_LIFETIME);
    assert_eq!(ra.len() % 8, 0);
    assert_eq!(opt(&ra, 1).unwrap(), MAC.to_vec());
    assert_eq!(be32(&opt(&ra, 5).unwrap()[2..]), 1400);
    let p = opt(&ra, 3).unwrap();
    assert_eq!(p[0], 64);
    assert_eq!(p[1], 0xc0, "on-link and autonomous");
    assert_eq!(be32(&p[2..]), 4000);
    assert_eq!(be32(&p[6..]), 3000);
    assert_eq!(
        &p[14..30],
        &"fd00:99::".parse::<Ipv6Addr>().unwrap().octets()
    );
    let r = opt(&ra, 25).unwrap();
    assert_eq!(be32(&r[2..]), DNS_LIFETIME);
    assert_eq!(r.len(), 6 + 32);
    assert_eq!(
        &r[6..22],
        &"fd00:99::1".parse::<Ipv6Addr>().unwrap().octets()
    );
    let d = opt(&ra, 31).unwrap();
    assert_eq!(be32(&d[2..]), DNS_LIFETIME);
    let names = b"\x03lan\x04test\x00\x07example\x03org\x00";
    assert_eq!(&d[6..6 + names.len()], names);
    assert!(d[6 + names.len()..].iter().all(|b| *b == 0), "zero padding");
}

#[test]
fn flags_follow_pools_and_options() {
    let mut s = subnet();
    s.pools.push(Pool6 {
        range: Ipv6Range {
            start: "fd00:99::1000".parse().unwrap(),
            end: "fd00:99::10ff".parse().unwrap(),
        },
    });
    s.slaac = false;
    s.dns.clear();
    s.search.clear();
    s.mtu = None;
    let ra = build(&RaParams::of(&s), &[], Kind::Regular);
    assert_eq!(ra[5], 0x80, "M only");
    assert_eq!(opt(&ra, 3).unwrap()[1], 0x80, "on-link, not autonomous");
    for k in [1, 5, 25, 31] {
        assert!(opt(&ra, k).is_none(), "option {k} without a value");
    }
    s.pd_pools.push(PdPool {
        prefix: "fd00:1000::/48".parse().unwrap(),
        delegated_len: 56,
    });
    assert_eq!(build(&RaParams::of(&s), &[], Kind::Regular)[5], 0xc0);
    s.pools.clear();
    assert_eq!(build(&RaParams::of(&s), &[], Kind::Regular)[5], 0x40);
    s.pd_pools.clear();
    s.ntp.push("fd00:99::7".parse().unwrap());
    assert_eq!(build(&RaParams::of(&s), &[], Kind::Regular)[5], 0x40);
}

#[test]
fn final_advertisement_has_router_and_dns_lifetimes_zero_and_keeps_the_prefix() {
    let ra = build(&RaParams::of(&subnet()), &MAC, Kind::Final);
    assert_eq!(u16::from_be_bytes([ra[6], ra[7]]), 0);
    assert_eq!(be32(&opt(&ra, 25).unwrap()[2..]), 0);
    assert_eq!(be32(&opt(&ra, 31).unwrap()[2..]), 0);
    assert_eq!(be32(&opt(&ra, 3).unwrap()[2..]), 4000);
}

#[test]
fn preferred_never_exceeds_valid_and_huge_lists_stay_within_the_minimum_mtu() {
    let mut s = subnet();
    s.preferred = Duration::from_secs(9000);
    s.dns = (1..=200u16)
        .map(|i| Ipv6Addr::new(0xfd00, 0x99, 0, 0, 0, 0, 0, i))
        .collect();
    s.search = (0..100).map(|i| format!("domain{i}.example.org")).collect();
    let ra = build(&RaParams::of(&s), &MAC, Kind::Regular);
    assert!(ra.len() <= MAX_LEN, "{}", ra.len());
    let p = opt(&ra, 3).unwrap();
    assert_eq!(be32(&p[6..]), be32(&p[2..]));
    assert!(opt(&ra, 25).is_some());
    s.dns.truncate(3);
    let ra = build(&RaParams::of(&s), &MAC, Kind::Regular);
    assert!(ra.len() <= MAX_LEN);
    assert!(opt(&ra, 31).is_some(), "some search domains fit");
}

const LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 9);

#[test]
fn solicitations_parse_with_and_without_a_link_layer_option() {
    let rs = [133, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        parse(&rs, LL, Some(255)),
        Ok(Solicitation {
            src: LL,
            slla: None
        })
    );
    let mut with = rs.to_vec();
    with.extend_from_slice(&[1, 1, 2, 0, 0, 0, 0, 9]);
    let s = parse(&with, LL, Some(255)).unwrap();
    assert_eq!(s.slla, Some(vec![2, 0, 0, 0, 0, 9]));
    assert_eq!(
        parse(&with, Ipv6Addr::UNSPECIFIED, Some(255)),
        Err(RsError::SllaFromUnspecified)
    );
    assert!(parse(&rs, Ipv6Addr::UNSPECIFIED, Some(255)).is_ok());
    assert_eq!(parse(&rs, LL, Some(254)), Err(RsError::HopLimit(Some(254))));
    assert_eq!(parse(&rs, LL, None), Err(RsError::HopLimit(None)));
    assert_eq!(parse(&rs[..7], LL, Some(255)), Err(RsError::Short(7)));
    assert_eq!(
        parse(&[134, 0, 0, 0, 0, 0, 0, 0], LL, Some(255)),
        Err(RsError::NotRs(134))
    );
    assert_eq!(
        parse(&[133, 1, 0, 0, 0, 0, 0, 0], LL, Some(255)),
        Err(RsError::Code(1))
    );
}

#[test]
fn truncated_and_malformed_options_are_errors() {
    let mut zero_len = vec![133, 0, 0, 0, 0, 0, 0, 0];
    zero_len.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(parse(&zero_len, LL, Some(255)), Err(RsError::Option(8)));
    let mut past_end = vec![133, 0, 0, 0, 0, 0, 0, 0];
    past_end.extend_from_slice(&[1, 2, 0, 0, 0, 0, 0, 0]);
    assert_eq!(parse(&past_end, LL, Some(255)), Err(RsError::Option(8)));
    let lone = [133, 0, 0, 0, 0, 0, 0, 0, 1];
    assert_eq!(parse(&lone, LL, Some(255)), Err(RsError::Option(8)));
    // Every prefix of a valid solicitation either parses or is an error, never a panic.
    let mut good = vec![
        133, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 0, 0, 0, 0, 9, 14, 1, 0, 0, 0, 0, 0, 0,
    ];
    for n in 0..=good.len() {
        let _ = parse(&good[..n], LL, Some(255));
    }
    good.push(0);
    assert!(parse(&good, LL, Some(255)).is_err());
}

#[test]
fn random_garbage_never_panics() {
    // xorshift: 20,000 messages of 0-64 octets, half of them starting like a solicitation.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut ok = 0;
    for i in 0..20_000 {
        let len = (next() % 65) as usize;
        let mut m: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if i % 2 == 0 && len >= 2 {
            m[0] = 133;
            m[1] = 0;
        }
        if let Some(b) = m.get_mut(9) {
            *b %= 4;
        }
        if parse(&m, LL, Some(255)).is_ok() {
            ok += 1;
        }
    }
    assert!(ok > 0, "some random solicitations are valid");
}

#[test]
fn first_advertisement_at_once_then_three_within_16_s_then_between_min_and_max() {
    let t0 = Instant::now();
    let mut s = Schedule::new(t0, 42);
    assert_eq!(s.next_wake(), t0);
    let mut now = t0;
    let mut gaps = Vec::new();
    for _ in 0..20 {
        now = s.next_wake();
        assert_eq!(s.due(now), vec![Dest::AllNodes]);
        gaps.push(s.next_wake() - now);
    }
    for g in &gaps[..3] {
        assert!(*g <= MAX_INITIAL_INTERVAL, "{g:?}");
    }
    for g in &gaps[3..] {
        assert!((MIN_INTERVAL..=MAX_INTERVAL).contains(g), "{g:?}");
    }
    assert!(
        gaps[3..].windows(2).any(|w| w[0] != w[1]),
        "random intervals"
    );
    assert!(s.due(now).is_empty(), "nothing twice");
}

#[test]
fn solicitation_from_an_address_is_answered_by_unicast_within_the_delay() {
    let t0 = Instant::now();
    let mut s = Schedule::new(t0, 7);
    s.due(t0);
    let t1 = t0 + Duration::from_secs(1);
    s.solicited(t1, LL);
    s.solicited(t1, LL); // a repeat before the answer adds nothing
    let wake = s.next_wake();
    assert!(wake >= t1 && wake <= t1 + MAX_RA_DELAY);
    assert_eq!(s.due(wake), vec![Dest::Host(LL)]);
    assert!(
        s.next_wake() > t0 + Duration::from_secs(10),
        "unsolicited plan kept"
    );
}

#[test]
fn solicitation_from_unspecified_is_a_multicast_no_sooner_than_3_s_after_the_last() {
    let t0 = Instant::now();
    let mut s = Schedule::new(t0, 7);
    s.due(t0);
    s.solicited(t0 + Duration::from_secs(1), Ipv6Addr::UNSPECIFIED);
    let wake = s.next_wake();
    assert_eq!(wake, t0 + MIN_DELAY_BETWEEN_RAS);
    assert_eq!(s.due(wake), vec![Dest::AllNodes]);
    // Long after: answered within MAX_RA_DELAY.
    let t2 = wake + Duration::from_secs(5);
    s.solicited(t2, Ipv6Addr::UNSPECIFIED);
    assert!(s.next_wake() <= t2 + MAX_RA_DELAY);
}

#[test]
fn a_flood_of_solicitations_costs_a_bounded_number_of_answers() {
    let t0 = Instant::now();
    let mut s = Schedule::new(t0, 3);
    s.due(t0);
    let mut sent = 0;
    let mut now = t0;
    // 10,000 solicitations from distinct addresses over 10 s.
    for i in 0..10_000u32 {
        now = t0 + Duration::from_millis(u64::from(i));
        s.solicited(
            now,
            Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, (i >> 16) as u16, i as u16),
        );
        sent += s.due(now).len();
    }
    sent += s.due(now + Duration::from_secs(1)).len();
    // Per 3 s window: 8 unicast answers and one multicast.
    assert!(sent <= 4 * 9, "{sent} answers");
    assert!(sent >= 8, "{sent} answers");
}
