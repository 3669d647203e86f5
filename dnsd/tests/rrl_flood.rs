//! Issue 19.1: a flood of spoofed sources from distinct prefixes neither grows the RRL table
//! nor makes a legitimate client's check cost more; the limiter keeps limiting through it.
//! Pure: the RRL API with time passed in, no sockets.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use dnsd::rrl::{Rrl, Verdict, WAYS};
use hostfile::RrlSettings;

const FLOOD: u32 = 200_000;

fn settings() -> RrlSettings {
    RrlSettings {
        rate: 5,
        slip: 2,
        window: Duration::from_secs(15),
        ipv4_prefix: 24,
        ipv6_prefix: 56,
        exempt: vec!["192.168.10.0/24".parse().unwrap()],
    }
}

/// The `i`-th spoofed source: one address in each of `FLOOD` distinct /24s.
fn spoofed(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from((16u32 << 24) + (i << 8) + 7))
}

#[test]
fn spoofed_flood_keeps_table_bounded_and_checks_cheap() {
    let r = Rrl::new(settings());
    let cap = r.capacity();
    assert!(cap > 0 && cap < FLOOD as usize, "capacity {cap}");
    let legit: IpAddr = "203.0.113.9".parse().unwrap();
    let t = 1_000_000u64;

    // Before the flood: what one legitimate check costs.
    let before = r.account(legit, t);
    assert_eq!(before.verdict, Verdict::Send);

    // 200,000 spoofed /24s, all inside one window (two seconds of it).
    for i in 0..FLOOD {
        let p = r.account(spoofed(i), t + u64::from(i % 2));
        assert_eq!(
            p.verdict,
            Verdict::Send,
            "a first response is never limited"
        );
        assert!(
            p.visited <= WAYS,
            "spoofed check {i} looked at {} table entries",
            p.visited
        );
    }
    let held = r.len();
    assert!(
        held <= cap,
        "table holds {held} prefixes, more than its {cap} slots"
    );
    assert!(
        held > cap / 2,
        "the flood should have filled most of the table ({held} of {cap})"
    );

    // After the flood: a legitimate check costs no more than before (both bounded by WAYS).
    let after = r.account(legit, t + 2);
    assert!(
        after.visited <= WAYS && before.visited <= WAYS,
        "{before:?} {after:?}"
    );
    assert!(r.len() <= cap);

    // And the limiter still limits that client within one second: `rate` sent, then limited.
    let v: Vec<Verdict> = (0..8).map(|_| r.check(legit, t + 3)).collect();
    assert_eq!(&v[..5], &[Verdict::Send; 5]);
    assert!(v[5..].iter().all(|v| *v != Verdict::Send), "{v:?}");
    // Exempt networks stay exempt and cost no table work.
    let ex = r.account("192.168.10.50".parse().unwrap(), t + 3);
    assert_eq!((ex.verdict, ex.visited), (Verdict::Send, 0));
}

#[test]
fn a_limited_source_survives_a_flood_of_one_shot_prefixes() {
    // The reflection victim (spoofed at high rate) must stay limited while a flood of other
    // prefixes churns the table: the flood replaces quieter entries first.
    let r = Rrl::new(settings());
    let victim: IpAddr = "198.51.100.1".parse().unwrap();
    let t = 5_000u64;
    let mut sent = 0;
    for i in 0..FLOOD {
        if i % 10 == 0 && r.check(victim, t) == Verdict::Send {
            sent += 1;
        }
        r.check(spoofed(i), t);
    }
    assert_eq!(
        sent, 5,
        "the victim got {sent} full answers in one second (rate 5)"
    );
}
