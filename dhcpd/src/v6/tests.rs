use std::net::Ipv6Addr;
use std::time::Duration;

use dhcproto::v6::{
    DhcpOption, DhcpOptions, IAAddr, IANA, IAPD, IAPrefix, Message, MessageType, OptionCode, Status,
};
use hostfile::{Dhcp6Subnet, Ipv6Range, Mac, PdPool, Pool6, Reservation6};

use super::decide::{Ctx, Outcome, decide, duid_mac};
use super::lease::{Change6, IaKind, Key6, Leases6, State6, Store6};

const NOW: u64 = 1_000_000;
const SERVER: &[u8] = &[0, 4, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
const CLIENT: &[u8] = &[0, 3, 0, 1, 2, 0, 0, 0, 0, 1];
const OTHER: &[u8] = &[0, 3, 0, 1, 2, 0, 0, 0, 0, 2];

fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn subnet(pool: (&str, &str)) -> Dhcp6Subnet {
    Dhcp6Subnet {
        name: "lan6".into(),
        network: "fd00:10::/64".parse().unwrap(),
        interface: None,
        dns: vec![a("fd00:10::53")],
        domain: "lan".into(),
        search: vec!["lan".into()],
        ntp: vec![a("fd00:10::123")],
        mtu: None,
        preferred: Duration::from_secs(3000),
        valid: Duration::from_secs(4000),
        t1: Duration::from_secs(1500),
        t2: Duration::from_secs(2400),
        pools: vec![Pool6 {
            range: Ipv6Range {
                start: a(pool.0),
                end: a(pool.1),
            },
        }],
        pd_pools: vec![PdPool {
            prefix: "fd00:100::/48".parse().unwrap(),
            delegated_len: 56,
        }],
        ra: false,
        slaac: false,
        rapid_commit: false,
    }
}

struct World {
    subnets: Vec<Dhcp6Subnet>,
    res: Vec<Reservation6>,
    leases: Leases6,
    relay_mac: Option<[u8; 6]>,
}

impl World {
    fn new() -> Self {
        World {
            subnets: vec![subnet(("fd00:10::100", "fd00:10::1ff"))],
            res: Vec::new(),
            leases: Leases6::new(),
            relay_mac: None,
        }
    }
    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            subnets: &self.subnets,
            reservations: &self.res,
            server_duid: SERVER,
            decline_probation: 3600,
            client_mac: self.relay_mac,
        }
    }
    /// Decides and applies the changes (as the server does after writing them).
    fn send(&mut self, m: &Message, now: u64) -> Outcome {
        let o = decide(&self.ctx(), Some(0), &self.leases, m, now);
        o.changes.iter().for_each(|c| self.leases.apply(c));
        o
    }
}

fn msg(t: MessageType, client: &[u8], server: bool, ias: Vec<DhcpOption>) -> Message {
    let mut m = Message::new_with_id(t, [1, 2, 3]);
    let o = m.opts_mut();
    o.insert(DhcpOption::ClientId(client.to_vec()));
    if server {
        o.insert(DhcpOption::ServerId(SERVER.to_vec()));
    }
    ias.into_iter().for_each(|i| o.insert(i));
    m
}

fn na(id: u32, addrs: &[Ipv6Addr]) -> DhcpOption {
    let mut opts = DhcpOptions::new();
    for &addr in addrs {
        opts.insert(DhcpOption::IAAddr(IAAddr {
            addr,
            preferred_life: 0,
            valid_life: 0,
            opts: DhcpOptions::new(),
        }));
    }
    DhcpOption::IANA(IANA {
        id,
        t1: 0,
        t2: 0,
        opts,
    })
}

fn pd(id: u32, prefix: Option<(Ipv6Addr, u8)>) -> DhcpOption {
    let mut opts = DhcpOptions::new();
    if let Some((prefix_ip, prefix_len)) = prefix {
        opts.insert(DhcpOption::IAPrefix(IAPrefix {
            preferred_lifetime: 0,
            valid_lifetime: 0,
            prefix_len,
            prefix_ip,
            opts: DhcpOptions::new(),
        }));
    }
    DhcpOption::IAPD(IAPD {
        id,
        t1: 0,
        t2: 0,
        opts,
    })
}

fn reply(o: &Outcome) -> &Message {
    o.reply.as_ref().expect("a reply")
}

/// The addresses (with valid lifetimes) and status of the IA_NA `id` in a reply.
fn na_of(m: &Message, id: u32) -> (Vec<(Ipv6Addr, u32)>, Option<Status>) {
    let ia = m
        .opts()
        .iter()
        .find_map(|o| match o {
            DhcpOption::IANA(n) if n.id == id => Some(n),
            _ => None,
        })
        .expect("the IA_NA");
    let addrs = ia.opts.iter().filter_map(|o| match o {
        DhcpOption::IAAddr(x) => Some((x.addr, x.valid_life)),
        _ => None,
    });
    (addrs.collect(), status_in(&ia.opts))
}

fn pd_of(m: &Message, id: u32) -> (Vec<(Ipv6Addr, u8)>, Option<Status>) {
    let ia = m
        .opts()
        .iter()
        .find_map(|o| match o {
            DhcpOption::IAPD(n) if n.id == id => Some(n),
            _ => None,
        })
        .expect("the IA_PD");
    let p = ia.opts.iter().filter_map(|o| match o {
        DhcpOption::IAPrefix(x) => Some((x.prefix_ip, x.prefix_len)),
        _ => None,
    });
    (p.collect(), status_in(&ia.opts))
}

fn status_in(o: &DhcpOptions) -> Option<Status> {
    match o.get(OptionCode::StatusCode) {
        Some(DhcpOption::StatusCode(s)) => Some(s.status),
        _ => None,
    }
}

#[test]
fn solicit_advertises_a_pool_address_and_a_prefix_without_binding() {
    let mut w = World::new();
    let o = w.send(
        &msg(
            MessageType::Solicit,
            CLIENT,
            false,
            vec![na(1, &[]), pd(2, None)],
        ),
        NOW,
    );
    let r = reply(&o);
    assert_eq!(r.msg_type(), MessageType::Advertise);
    assert_eq!(r.xid(), [1, 2, 3]);
    assert_eq!(na_of(r, 1).0, vec![(a("fd00:10::100"), 4000)]);
    assert_eq!(pd_of(r, 2).0, vec![(a("fd00:100::"), 56)]);
    assert!(
        matches!(r.opts().get(OptionCode::ServerId), Some(DhcpOption::ServerId(s)) if s == SERVER)
    );
    assert!(
        matches!(r.opts().get(OptionCode::ClientId), Some(DhcpOption::ClientId(c)) if c == CLIENT)
    );
    assert!(r.opts().get(OptionCode::DomainNameServers).is_some());
    assert!(r.opts().get(OptionCode::DomainSearchList).is_some());
    assert!(r.opts().get(OptionCode::NtpServer).is_some());
    assert!(o.changes.is_empty(), "an ADVERTISE binds nothing");
}

#[test]
fn solicit_with_rapid_commit_binds_only_when_allowed() {
    let mut w = World::new();
    let mut m = msg(MessageType::Solicit, CLIENT, false, vec![na(1, &[])]);
    m.opts_mut().insert(DhcpOption::RapidCommit);
    let o = w.send(&m, NOW);
    assert_eq!(reply(&o).msg_type(), MessageType::Advertise);
    assert!(o.changes.is_empty());
    w.subnets[0].rapid_commit = true;
    // Allowed, but this client did not ask: the four-message exchange.
    let plain = msg(MessageType::Solicit, CLIENT, false, vec![na(1, &[])]);
    let o = w.send(&plain, NOW);
    assert_eq!(reply(&o).msg_type(), MessageType::Advertise);
    assert!(reply(&o).opts().get(OptionCode::RapidCommit).is_none());
    assert!(o.changes.is_empty());
    let o = w.send(&m, NOW);
    let r = reply(&o);
    assert_eq!(r.msg_type(), MessageType::Reply);
    assert!(r.opts().get(OptionCode::RapidCommit).is_some());
    assert_eq!(o.changes.len(), 1);
    let got = na_of(r, 1).0;
    assert_eq!(got, vec![(a("fd00:10::100"), 4000)]);
    // The binding is made: a RENEW finds it, and it carries no Rapid Commit even if asked.
    let key = Key6 {
        duid: CLIENT.to_vec(),
        iaid: 1,
        kind: IaKind::Na,
    };
    assert_eq!(w.leases.get(&key).map(|l| l.addr), Some(a("fd00:10::100")));
    let mut renew = msg(MessageType::Renew, CLIENT, true, vec![na(1, &[got[0].0])]);
    renew.opts_mut().insert(DhcpOption::RapidCommit);
    let o = w.send(&renew, NOW + 10);
    assert_eq!(na_of(reply(&o), 1).0, got);
    assert!(reply(&o).opts().get(OptionCode::RapidCommit).is_none());
}

#[test]
fn request_binds_and_a_second_client_gets_another_address() {
    let mut w = World::new();
    let o = w.send(
        &msg(
            MessageType::Request,
            CLIENT,
            true,
            vec![na(1, &[]), pd(2, None)],
        ),
        NOW,
    );
    assert_eq!(reply(&o).msg_type(), MessageType::Reply);
    let key = Key6 {
        duid: CLIENT.to_vec(),
        iaid: 1,
        kind: IaKind::Na,
    };
    let l = w.leases.get(&key).unwrap();
    assert_eq!(
        (l.addr, l.expires, l.state),
        (a("fd00:10::100"), NOW + 4000, State6::Bound)
    );
    let o = w.send(
        &msg(
            MessageType::Request,
            OTHER,
            true,
            vec![na(1, &[]), pd(2, None)],
        ),
        NOW,
    );
    assert_eq!(na_of(reply(&o), 1).0, vec![(a("fd00:10::101"), 4000)]);
    assert_eq!(pd_of(reply(&o), 2).0, vec![(a("fd00:100:0:100::"), 56)]);
}

#[test]
fn request_without_our_server_id_is_dropped_and_solicit_with_one_too() {
    let mut w = World::new();
    assert!(
        w.send(
            &msg(MessageType::Request, CLIENT, false, vec![na(1, &[])]),
            NOW
        )
        .reply
        .is_none()
    );
    assert!(
        w.send(
            &msg(MessageType::Solicit, CLIENT, true, vec![na(1, &[])]),
            NOW
        )
        .reply
        .is_none()
    );
    let mut m = msg(MessageType::Request, CLIENT, false, vec![na(1, &[])]);
    m.opts_mut().insert(DhcpOption::ServerId(vec![0, 4, 9]));
    assert!(w.send(&m, NOW).reply.is_none());
}

#[test]
fn full_pool_says_no_addrs_avail() {
    let mut w = World::new();
    w.subnets = vec![subnet(("fd00:10::100", "fd00:10::100"))];
    w.send(
        &msg(MessageType::Request, CLIENT, true, vec![na(1, &[])]),
        NOW,
    );
    let o = w.send(
        &msg(MessageType::Solicit, OTHER, false, vec![na(1, &[])]),
        NOW,
    );
    assert_eq!(na_of(reply(&o), 1), (vec![], Some(Status::NoAddrsAvail)));
    // Once the first binding has ended the address is free again.
    let o = w.send(
        &msg(MessageType::Request, OTHER, true, vec![na(1, &[])]),
        NOW + 4001,
    );
    assert_eq!(na_of(reply(&o), 1).0, vec![(a("fd00:10::100"), 4000)]);
    assert_eq!(
        w.leases.len(),
        1,
        "the ended binding is replaced, not kept beside"
    );
}

#[test]
fn reservation_by_duid_and_by_mac_from_a_duid_ll() {
    let mut w = World::new();
    w.res = vec![
        Reservation6 {
            hostname: "pc".into(),
            duid: Some(CLIENT.to_vec()),
            mac: None,
            ip: a("fd00:10::10"),
            subnet: 0,
        },
        Reservation6 {
            hostname: "nas".into(),
            duid: None,
            mac: Some(Mac([2, 0, 0, 0, 0, 2])),
            ip: a("fd00:10::20"),
            subnet: 0,
        },
    ];
    assert_eq!(duid_mac(OTHER), Some([2, 0, 0, 0, 0, 2]));
    let o = w.send(
        &msg(MessageType::Request, CLIENT, true, vec![na(1, &[])]),
        NOW,
    );
    assert_eq!(na_of(reply(&o), 1).0, vec![(a("fd00:10::10"), 4000)]);
    let o = w.send(
        &msg(MessageType::Request, OTHER, true, vec![na(1, &[])]),
        NOW,
    );
    assert_eq!(na_of(reply(&o), 1).0, vec![(a("fd00:10::20"), 4000)]);
    // A reserved address is not handed to a hinting stranger.
    let o = w.send(
        &msg(
            MessageType::Solicit,
            &[0, 4, 7],
            false,
            vec![na(1, &[a("fd00:10::10")])],
        ),
        NOW,
    );
    assert_eq!(na_of(reply(&o), 1).0, vec![(a("fd00:10::100"), 4000)]);
}

#[test]
fn renew_extends_the_binding_and_unknown_ia_gets_no_binding() {
    let mut w = World::new();
    w.send(
        &msg(MessageType::Request, CLIENT, true, vec![na(1, &[])]),
        NOW,
    );
    let m = msg(
        MessageType::Renew,
        CLIENT,
        true,
        vec![na(1, &[a("fd00:10::100")]), na(9, &[])],
    );
    let o = w.send(&m, NOW + 100);
    let r = reply(&o);
    assert_eq!(na_of(r, 1).0, vec![(a("fd00:10::100"), 4000)]);
    assert_eq!(na_of(r, 9), (vec![], Some(Status::NoBinding)));
    let key = Key6 {
        duid: CLIENT.to_vec(),
        iaid: 1,
        kind: IaKind::Na,
    };
    assert_eq!(w.leases.get(&key).unwrap().expires, NOW + 100 + 4000);
}

#[test]
fn renew_and_rebind_extend_a_delegated_prefix_and_request_keeps_it() {
    let mut w = World::new();
    let o = w.send(
        &msg(MessageType::Request, CLIENT, true, vec![pd(2, None)]),
        NOW,
    );
    let (got, _) = pd_of(reply(&o), 2);
    assert_eq!(got, vec![(a("fd00:100::"), 56)]);
    let key = Key6 {
        duid: CLIENT.to_vec(),
        iaid: 2,
        kind: IaKind::Pd,
    };
    // The prefix lies outside the subnet's /64: still this link's binding.
    for (t, server, at) in [
        (MessageType::Renew, true, NOW + 100),
        (MessageType::Rebind, false, NOW + 200),
    ] {
        let m = msg(t, CLIENT, server, vec![pd(2, Some(got[0]))]);
        let o = w.send(&m, at);
        assert_eq!(pd_of(reply(&o), 2), (got.clone(), None), "{t:?}");
        assert_eq!(w.leases.get(&key).unwrap().expires, at + 4000, "{t:?}");
    }
    // A new REQUEST of the same IA keeps its prefix rather than taking the next.
    let o = w.send(
        &msg(MessageType::Request, CLIENT, true, vec![pd(2, None)]),
        NOW + 300,
    );
    assert_eq!(pd_of(reply(&o), 2).0, got);
    assert_eq!(w.leases.len(), 1);
}

#[test]
fn renew_of_a_foreign_address_returns_it_with_zero_lifetimes() {
    let mut w = World::new();
    w.send(
        &msg(MessageType::Request, CLIENT, true, vec![na(1, &[])]),
        NOW,
    );
    let m = msg(
        MessageType::Renew,
        CLIENT,
        true,
        vec![na(1, &[a("fd00:10::100"), a("2001:db8::1")])],
    );
    let (addrs, _) = na_of(reply(&w.send(&m, NOW)), 1);
    // Options of one code keep no order in dhcproto's list: compare sorted.
    let mut addrs = addrs;
    addrs.sort();
    assert_eq!(
        addrs,
        vec![(a("2001:db8::1"), 0), (a("fd00:10::100"), 4000)]
    );
}

#[test]
fn rebind_after_a_lost_binding_gets_the_held_address_back() {
    let mut w = World::new();
    let m = msg(
        MessageType::Rebind,
        CLIENT,
        false,
        vec![
            na(1, &[a("fd00:10::105")]),
            pd(2, Some((a("fd00:100:0:200::"), 56))),
        ],
    );
    let o = w.send(&m, NOW);
    assert_eq!(na_of(reply(&o), 1).0, vec![(a("fd00:10::105"), 4000)]);
    assert_eq!(pd_of(reply(&o), 2).0, vec![(a("fd00:100:0:200::"), 56)]);
    assert_eq!(w.leases.len(), 2);
    // Off link: nothing to give, the held address ends.
    let m = msg(
        MessageType::Rebind,
        OTHER,
        false,
        vec![na(1, &[a("2001:db8::5")])],
    );
    let mut w2 = World::new();
    w2.subnets[0].pools.clear();
    assert_eq!(
        na_of(reply(&w2.send(&m, NOW)), 1).0,
        vec![(a("2001:db8::5"), 0)]
    );
}

#[test]
fn release_frees_and_unknown_release_says_no_binding() {
    let mut w = World::new();
    w.send(
        &msg(
            MessageType::Request,
            CLIENT,
            true,
            vec![na(1, &[]), pd(2, None)],
        ),
        NOW,
    );
    let m = msg(
        MessageType::Release,
        CLIENT,
        true,
        vec![
            na(1, &[a("fd00:10::100")]),
            pd(2, Some((a("fd00:100::"), 56))),
            na(3, &[a("fd00:10::1")]),
        ],
    );
    let o = w.send(&m, NOW);
    let r = reply(&o);
    assert_eq!(status_in(r.opts()), Some(Status::Success));
    assert_eq!(na_of(r, 3), (vec![], Some(Status::NoBinding)));
    assert!(w.leases.is_empty());
}

#[test]
fn decline_keeps_the_address_out_and_the_client_gets_another() {
    let mut w = World::new();
    w.send(
        &msg(MessageType::Request, CLIENT, true, vec![na(1, &[])]),
        NOW,
    );
    let o = w.send(
        &msg(
            MessageType::Decline,
            CLIENT,
            true,
            vec![na(1, &[a("fd00:10::100")])],
        ),
        NOW,
    );
    assert_eq!(status_in(reply(&o).opts()), Some(Status::Success));
    assert_eq!(
        w.leases.holder(a("fd00:10::100"), 128).unwrap().state,
        State6::Declined
    );
    // The stored client record goes too, else a reload would find two records for the address.
    let key = Key6 {
        duid: CLIENT.to_vec(),
        iaid: 1,
        kind: IaKind::Na,
    };
    assert!(o.changes.contains(&Change6::Delete(key)), "{:?}", o.changes);
    assert_eq!(w.leases.len(), 1);
    let o = w.send(
        &msg(MessageType::Request, CLIENT, true, vec![na(1, &[])]),
        NOW,
    );
    assert_eq!(na_of(reply(&o), 1).0, vec![(a("fd00:10::101"), 4000)]);
    // Asked for by another client: refused during the probation, given once it is over.
    let ask = msg(
        MessageType::Request,
        OTHER,
        true,
        vec![na(1, &[a("fd00:10::100")])],
    );
    let during = decide(&w.ctx(), Some(0), &w.leases, &ask, NOW + 3599);
    assert_eq!(na_of(reply(&during), 1).0, vec![(a("fd00:10::102"), 4000)]);
    let o = w.send(&ask, NOW + 3601);
    assert_eq!(
        na_of(reply(&o), 1).0,
        vec![(a("fd00:10::100"), 4000)],
        "probation over"
    );
}

#[test]
fn new_clients_get_never_held_addresses_first_then_ended_ones_when_the_pool_is_full() {
    let mut w = World::new();
    w.subnets = vec![subnet(("fd00:10::100", "fd00:10::102"))];
    for (c, want) in [(CLIENT, "fd00:10::100"), (OTHER, "fd00:10::101")] {
        let o = w.send(&msg(MessageType::Request, c, true, vec![na(1, &[])]), NOW);
        assert_eq!(na_of(reply(&o), 1).0, vec![(a(want), 4000)]);
    }
    // Both bindings ended (not yet swept): the never-held ::102 goes first, then ::100.
    let later = NOW + 4001;
    let third = [0, 3, 0, 1, 2, 0, 0, 0, 0, 3];
    let fourth = [0, 3, 0, 1, 2, 0, 0, 0, 0, 4];
    let o = w.send(
        &msg(MessageType::Request, &third, true, vec![na(1, &[])]),
        later,
    );
    assert_eq!(na_of(reply(&o), 1).0, vec![(a("fd00:10::102"), 4000)]);
    let o = w.send(
        &msg(MessageType::Request, &fourth, true, vec![na(1, &[])]),
        later,
    );
    assert_eq!(na_of(reply(&o), 1).0, vec![(a("fd00:10::100"), 4000)]);
}

#[test]
fn confirm_on_link_success_off_link_not_on_link_nothing_silent() {
    let mut w = World::new();
    let on = msg(
        MessageType::Confirm,
        CLIENT,
        false,
        vec![na(1, &[a("fd00:10::7")])],
    );
    assert_eq!(
        status_in(reply(&w.send(&on, NOW)).opts()),
        Some(Status::Success)
    );
    let off = msg(
        MessageType::Confirm,
        CLIENT,
        false,
        vec![na(1, &[a("fd00:10::7"), a("2001:db8::7")])],
    );
    assert_eq!(
        status_in(reply(&w.send(&off, NOW)).opts()),
        Some(Status::NotOnLink)
    );
    let none = msg(MessageType::Confirm, CLIENT, false, vec![na(1, &[])]);
    assert!(w.send(&none, NOW).reply.is_none());
}

#[test]
fn information_request_gets_options_and_no_ia() {
    let mut w = World::new();
    let mut m = Message::new_with_id(MessageType::InformationRequest, [9, 9, 9]);
    m.opts_mut().insert(DhcpOption::ClientId(CLIENT.to_vec()));
    let o = w.send(&m, NOW);
    let r = reply(&o);
    assert_eq!(r.msg_type(), MessageType::Reply);
    match r.opts().get(OptionCode::DomainNameServers) {
        Some(DhcpOption::DomainNameServers(d)) => assert_eq!(d, &vec![a("fd00:10::53")]),
        o => panic!("no DNS servers: {o:?}"),
    }
    assert!(r.opts().get(OptionCode::IANA).is_none());
    assert!(o.changes.is_empty());
}

#[test]
fn no_subnet_on_the_link_no_addresses() {
    let w = World::new();
    let o = decide(
        &w.ctx(),
        None,
        &w.leases,
        &msg(
            MessageType::Solicit,
            CLIENT,
            false,
            vec![na(1, &[]), pd(2, None)],
        ),
        NOW,
    );
    let r = reply(&o);
    assert_eq!(na_of(r, 1), (vec![], Some(Status::NoAddrsAvail)));
    assert_eq!(pd_of(r, 2), (vec![], Some(Status::NoPrefixAvail)));
}

#[test]
fn two_ia_nas_in_one_message_get_two_addresses() {
    let mut w = World::new();
    let o = w.send(
        &msg(
            MessageType::Request,
            CLIENT,
            true,
            vec![na(1, &[]), na(2, &[])],
        ),
        NOW,
    );
    let r = reply(&o);
    let mut got = [na_of(r, 1).0, na_of(r, 2).0].concat();
    got.sort();
    assert_eq!(
        got,
        vec![(a("fd00:10::100"), 4000), (a("fd00:10::101"), 4000)]
    );
}

#[test]
fn store_keeps_bindings_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leases6.redb");
    let mut w = World::new();
    let o = w.send(
        &msg(
            MessageType::Request,
            CLIENT,
            true,
            vec![na(1, &[]), pd(7, None)],
        ),
        NOW,
    );
    {
        let s = Store6::open(&path).unwrap();
        s.write(&o.changes).unwrap();
    }
    let s = Store6::open(&path).unwrap();
    let mut got = s.load().unwrap();
    got.sort_by_key(|l| l.key.clone());
    let mut want: Vec<_> = w.leases.iter().cloned().collect();
    want.sort_by_key(|l| l.key.clone());
    assert_eq!(got, want);
    s.write(&[Change6::Delete(want[0].key.clone())]).unwrap();
    assert_eq!(s.load().unwrap().len(), 1);
}

#[test]
fn server_duid_is_made_once_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server-duid");
    let d = super::server_duid(&path).unwrap();
    assert_eq!((d.len(), &d[..2]), (18, &[0u8, 4][..]));
    assert_eq!(super::server_duid(&path).unwrap(), d);
    assert_eq!(super::parse_hex(&super::hex(&d)), Some(d));
}

/// Malformed input never panics: random datagrams, and every truncation and single-byte change
/// of a valid SOLICIT (plain and relayed), through the server's path (relay unwrap, decode,
/// decide, encode, wrap). Deterministic (xorshift from a fixed seed).
#[test]
fn malformed_datagrams_never_panic_the_path() {
    use dhcproto::{Decodable, Decoder, Encodable};
    let w = World::new();
    // True when the input got an answer (so the mutations do reach the decision core).
    let run = |bytes: &[u8]| -> bool {
        let Ok((hops, inner)) = super::relay::unwrap(bytes) else {
            return false;
        };
        let Ok(m) = Message::decode(&mut Decoder::new(inner)) else {
            return false;
        };
        let Some(r) = decide(&w.ctx(), Some(0), &w.leases, &m, NOW).reply else {
            return false;
        };
        let b = r.to_vec().expect("a reply encodes");
        !super::relay::wrap(&hops, b).is_empty()
    };
    let mut answered = 0;
    let good = msg(
        MessageType::Solicit,
        CLIENT,
        false,
        vec![
            na(1, &[a("fd00:10::100")]),
            pd(2, Some((a("fd00:100::"), 56))),
        ],
    )
    .to_vec()
    .unwrap();
    let mut relayed = vec![12u8, 0];
    relayed.extend_from_slice(&[0u8; 32]);
    relayed.extend_from_slice(&[0, 9]);
    relayed.extend_from_slice(&u16::try_from(good.len()).unwrap().to_be_bytes());
    relayed.extend_from_slice(&good);
    assert!(run(&good) && run(&relayed));
    for base in [&good, &relayed] {
        for n in 0..base.len() {
            run(&base[..n]);
            for v in [0u8, 1, 0x7f, 0xff] {
                let mut b = base.clone();
                b[n] = v;
                answered += usize::from(run(&b));
            }
        }
    }
    assert!(
        answered > 100,
        "only {answered} mutated messages reached the core"
    );
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..3000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 200) as usize;
        let b: Vec<u8> = (0..len)
            .map(|i| (x.rotate_left(i as u32 % 64) >> 3) as u8)
            .collect();
        run(&b);
    }
}

#[test]
fn mac_reservation_from_the_relays_client_link_layer_address() {
    let mut w = World::new();
    w.res = vec![Reservation6 {
        hostname: "tv".into(),
        duid: None,
        mac: Some(Mac([2, 0, 0, 0, 0, 9])),
        ip: a("fd00:10::30"),
        subnet: 0,
    }];
    // A DUID-UUID holds no MAC: without the relay's option the pool answers.
    let uuid = [
        0u8, 4, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
    ];
    let m = msg(MessageType::Solicit, &uuid, false, vec![na(1, &[])]);
    assert_eq!(
        na_of(reply(&w.send(&m, NOW)), 1).0,
        vec![(a("fd00:10::100"), 4000)]
    );
    w.relay_mac = Some([2, 0, 0, 0, 0, 9]);
    assert_eq!(
        na_of(reply(&w.send(&m, NOW)), 1).0,
        vec![(a("fd00:10::30"), 4000)]
    );
}
