use super::*;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use tokio::time::Instant;

fn params(priority: u8, preempt: bool) -> Params {
    Params {
        vrid: 51,
        priority,
        preempt,
        interval_cs: 100,
        local: Ipv4Addr::new(192, 168, 1, 2).into(),
        addrs: vec![IpAddr::from([192, 168, 1, 120])],
        peers: Vec::new(),
    }
}

fn adv(priority: u8) -> Advert {
    Advert {
        vrid: 51,
        priority,
        interval_cs: 100,
        addrs: vec![IpAddr::from([192, 168, 1, 120])],
    }
}

const PEER: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 3);

#[test]
fn codec_round_trip_and_checksum() {
    let a = adv(150);
    let src = Ipv4Addr::new(192, 168, 1, 2);
    let pkt = ip_packet(&encode(&a, src, GROUP), src, GROUP);
    assert_eq!(decode(&pkt), Ok((src, a)));
    let mut bad = pkt.clone();
    bad[22] ^= 1;
    assert_eq!(decode(&bad), Err(DecodeError::Checksum));
    let mut ttl = pkt.clone();
    ttl[8] = 64;
    assert_eq!(decode(&ttl), Err(DecodeError::Ttl(64)));
    let mut v2 = pkt.clone();
    v2[20] = 0x21;
    assert_eq!(decode(&v2), Err(DecodeError::Version(0x21)));
    assert_eq!(decode(&pkt[..25]), Err(DecodeError::Truncated));
    assert_eq!(decode(&[]), Err(DecodeError::Truncated));
}

#[test]
fn known_checksum() {
    // Hand-checked: sum of pseudo header and message folds to the stored value.
    let v = encode(&adv(100), Ipv4Addr::new(10, 0, 0, 1), GROUP);
    assert_eq!(checksum(Ipv4Addr::new(10, 0, 0, 1), GROUP, &v), 0);
    assert_eq!(&v[..6], &[0x31, 51, 100, 1, 0, 100]);
}

#[test]
fn timers_follow_the_rfc() {
    let now = Instant::now();
    let (m, acts) = Machine::start(params(150, true), now);
    assert!(acts.is_empty());
    assert_eq!(m.state(), State::Backup);
    // skew = (256-150)*1s/256 = 414.0625 ms; master down = 3 s + skew.
    assert_eq!(m.skew(), Duration::from_nanos(414_062_500));
    assert_eq!(m.deadline(), now + Duration::from_nanos(3_414_062_500));
}

#[test]
fn owner_starts_as_master() {
    let (m, acts) = Machine::start(params(255, true), Instant::now());
    assert_eq!(m.state(), State::Master);
    assert_eq!(acts, vec![Action::Send(255), Action::BecomeMaster]);
}

#[test]
fn backup_takes_over_when_the_master_goes_quiet() {
    let now = Instant::now();
    let (mut m, _) = Machine::start(params(100, true), now);
    let t1 = now + Duration::from_secs(1);
    assert!(m.on_advert(&adv(200), PEER, t1).is_empty());
    assert!(m.on_timer(t1 + Duration::from_secs(3)).is_empty());
    let acts = m.on_timer(m.deadline());
    assert_eq!(acts, vec![Action::Send(100), Action::BecomeMaster]);
    assert_eq!(m.state(), State::Master);
    // Then it advertises every interval.
    let d = m.deadline();
    assert_eq!(m.on_timer(d), vec![Action::Send(100)]);
}

#[test]
fn backup_learns_the_masters_advertisement_interval() {
    // RFC 5798 6.4.2: a backup takes Master_Adver_Interval from the master's adverts and
    // recomputes Skew_Time and Master_Down_Interval from it, whatever its own interval.
    let now = Instant::now();
    let (mut m, _) = Machine::start(params(100, true), now);
    assert_eq!(m.master_adver_interval(), Duration::from_secs(1));
    let mut fast = adv(200);
    fast.interval_cs = 10;
    let t1 = now + Duration::from_millis(50);
    assert!(m.on_advert(&fast, PEER, t1).is_empty());
    assert_eq!(m.master_adver_interval(), Duration::from_millis(100));
    // skew = (256-100) * 100 ms / 256 = 60.9375 ms; master down = 300 ms + skew.
    assert_eq!(m.skew(), Duration::from_nanos(60_937_500));
    assert_eq!(m.deadline(), t1 + Duration::from_nanos(360_937_500));
    // So the backup takes over 0.36 s after the fast master's last advert, not 3.6 s.
    assert!(m.on_timer(t1 + Duration::from_millis(360)).is_empty());
    assert_eq!(
        m.on_timer(t1 + Duration::from_nanos(360_937_500)),
        vec![Action::Send(100), Action::BecomeMaster]
    );
    // As master it keeps sending at its own configured interval.
    assert_eq!(
        m.deadline(),
        t1 + Duration::from_nanos(360_937_500) + Duration::from_secs(1)
    );

    // A slower master (3 s) stretches the wait the other way; a lower-priority advert a
    // preempting backup discards teaches nothing.
    let (mut m, _) = Machine::start(params(100, true), now);
    let mut slow = adv(200);
    slow.interval_cs = 300;
    m.on_advert(&slow, PEER, now);
    assert_eq!(m.master_adver_interval(), Duration::from_secs(3));
    assert_eq!(m.deadline(), now + m.master_down());
    assert!(m.master_down() > Duration::from_secs(9));
    let mut low = adv(50);
    low.interval_cs = 20;
    m.on_advert(&low, PEER, now);
    assert_eq!(m.master_adver_interval(), Duration::from_secs(3));

    // A master that yields to a better one takes that one's interval.
    let (mut m, _) = Machine::start(params(100, true), now);
    m.on_timer(m.deadline());
    assert_eq!(m.state(), State::Master);
    m.on_advert(&fast, PEER, now);
    assert_eq!(m.state(), State::Backup);
    assert_eq!(m.master_adver_interval(), Duration::from_millis(100));
}

#[test]
fn priority_zero_shortens_the_wait_to_skew() {
    let now = Instant::now();
    let (mut m, _) = Machine::start(params(100, true), now);
    m.on_advert(&adv(0), PEER, now);
    assert_eq!(m.deadline(), now + m.skew());
}

#[test]
fn preempt_and_nopreempt() {
    let now = Instant::now();
    // Preempt: a lower master's adverts are ignored, so our timer runs out.
    let (mut m, _) = Machine::start(params(200, true), now);
    let before = m.deadline();
    m.on_advert(&adv(100), PEER, now + Duration::from_secs(1));
    assert_eq!(m.deadline(), before);
    // No preempt: any master's adverts reset the timer.
    let (mut m, _) = Machine::start(params(200, false), now);
    m.on_advert(&adv(100), PEER, now + Duration::from_secs(1));
    assert!(m.deadline() > before);
}

#[test]
fn master_yields_to_higher_or_equal_with_higher_address() {
    let now = Instant::now();
    let (mut m, _) = Machine::start(params(150, true), now);
    m.on_timer(m.deadline());
    assert_eq!(m.state(), State::Master);
    assert!(m.on_advert(&adv(100), PEER, now).is_empty());
    assert_eq!(m.state(), State::Master);
    // Equal priority, peer address higher (.3 > .2): yield.
    assert_eq!(
        m.on_advert(&adv(150), PEER, now),
        vec![Action::BecomeBackup]
    );
    assert_eq!(m.state(), State::Backup);
}

#[test]
fn master_answers_priority_zero_and_sends_zero_on_shutdown() {
    let now = Instant::now();
    let (mut m, _) = Machine::start(params(150, true), now);
    m.on_timer(m.deadline());
    assert_eq!(m.on_advert(&adv(0), PEER, now), vec![Action::Send(150)]);
    assert_eq!(m.shutdown(), vec![Action::Send(0), Action::BecomeBackup]);
    assert!(m.shutdown().is_empty());
}

#[test]
fn own_and_foreign_vrid_ignored() {
    let now = Instant::now();
    let (mut m, _) = Machine::start(params(150, true), now);
    m.on_timer(m.deadline());
    let mut other = adv(250);
    other.vrid = 52;
    assert!(m.on_advert(&other, PEER, now).is_empty());
    assert!(
        m.on_advert(&adv(250), Ipv4Addr::new(192, 168, 1, 2), now)
            .is_empty()
    );
    assert_eq!(m.state(), State::Master);
}

/// Issue 19.5: the forged advert (vrid 51, priority 255, no addresses, 4095 cs).
fn forged(addrs: Vec<IpAddr>) -> Advert {
    Advert {
        vrid: 51,
        priority: 255,
        interval_cs: 4095,
        addrs,
    }
}

const STRANGER: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 66);

#[test]
fn an_advert_with_another_address_list_is_ignored() {
    let now = Instant::now();
    let (mut m, _) = Machine::start(params(150, true), now);
    m.on_timer(m.deadline());
    assert_eq!(m.state(), State::Master);
    let deadline = m.deadline();
    for addrs in [
        vec![],
        vec![IpAddr::from([192, 168, 1, 121])],
        vec![
            IpAddr::from([192, 168, 1, 120]),
            IpAddr::from([192, 168, 1, 121]),
        ],
    ] {
        let a = forged(addrs.clone());
        assert!(
            matches!(m.screen(&a, STRANGER), Err(Ignored::Addresses { .. })),
            "{addrs:?}"
        );
        assert!(m.on_advert(&a, STRANGER, now).is_empty(), "{addrs:?}");
        assert_eq!(m.state(), State::Master);
        assert_eq!(m.deadline(), deadline);
    }
    // The same list in another order (and repeated) is ours.
    let mut p = params(150, true);
    p.addrs = vec![
        IpAddr::from([192, 168, 1, 121]),
        IpAddr::from([192, 168, 1, 120]),
    ];
    let (m, _) = Machine::start(p, now);
    let a = Advert {
        addrs: vec![
            IpAddr::from([192, 168, 1, 120]),
            IpAddr::from([192, 168, 1, 121]),
            IpAddr::from([192, 168, 1, 120]),
        ],
        ..adv(100)
    };
    assert_eq!(m.screen(&a, PEER), Ok(()));
}

#[test]
fn with_peers_only_the_peers_are_heard() {
    let now = Instant::now();
    let mut p = params(150, true);
    p.peers = vec![PEER.into()];
    let (mut m, _) = Machine::start(p, now);
    m.on_timer(m.deadline());
    assert_eq!(m.state(), State::Master);
    let a = forged(vec![IpAddr::from([192, 168, 1, 120])]);
    assert_eq!(m.screen(&a, STRANGER), Err(Ignored::NotPeer));
    assert!(m.on_advert(&a, STRANGER, now).is_empty());
    assert_eq!(m.state(), State::Master);
    // The peer itself is heard.
    assert_eq!(m.on_advert(&a, PEER, now), vec![Action::BecomeBackup]);
}

#[test]
fn the_learned_interval_is_bounded() {
    let now = Instant::now();
    let (mut m, _) = Machine::start(params(150, true), now);
    m.on_timer(m.deadline());
    assert_eq!(m.state(), State::Master);
    // Our own list, so the master yields (VRRPv3 has no authentication), but it follows the
    // 40.95 s interval only up to 4 x its own 1 s: back after 12 s + skew, not 123 s + skew.
    let a = forged(vec![IpAddr::from([192, 168, 1, 120])]);
    assert_eq!(m.on_advert(&a, STRANGER, now), vec![Action::BecomeBackup]);
    assert_eq!(m.max_learned_cs(), 400);
    assert_eq!(m.master_adver_interval(), Duration::from_secs(4));
    // Master_Down_Interval = 3 x 4 s + skew, skew = (256-150) x 4 s / 256 = 1.65625 s.
    assert_eq!(m.master_down(), Duration::from_micros(13_656_250));
    assert_eq!(
        m.on_timer(now + m.master_down()),
        vec![Action::Send(150), Action::BecomeMaster]
    );
}
