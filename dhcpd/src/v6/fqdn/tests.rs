use super::*;
use crate::v6::lease::Key6;
use dhcproto::v6::{DhcpOptions, IAAddr, IANA};
use dhcproto::{Decodable, Decoder, Encodable};

const DUID: &[u8] = &[0, 3, 0, 1, 2, 0, 0, 0, 0, 1];

fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn with_fqdn(t: MessageType, data: Option<Vec<u8>>) -> Message {
    let mut m = Message::new_with_id(t, [1, 2, 3]);
    m.opts_mut().insert(DhcpOption::ClientId(DUID.to_vec()));
    if let Some(d) = data {
        m.opts_mut().insert(DhcpOption::Unknown(UnknownOption::new(
            OptionCode::ClientFqdn,
            d,
        )));
    }
    // Through the wire, as the server sees it.
    let b = m.to_vec().unwrap();
    Message::decode(&mut Decoder::new(&b)).unwrap()
}

fn reply_with(addr: Ipv6Addr, valid: u32) -> Message {
    let mut r = Message::new_with_id(MessageType::Reply, [1, 2, 3]);
    let mut ia = DhcpOptions::new();
    ia.insert(DhcpOption::IAAddr(IAAddr {
        addr,
        preferred_life: valid,
        valid_life: valid,
        opts: DhcpOptions::new(),
    }));
    r.opts_mut().insert(DhcpOption::IANA(IANA {
        id: 1,
        t1: 0,
        t2: 0,
        opts: ia,
    }));
    r
}

fn reservation(name: &str, ip: &str) -> Reservation6 {
    Reservation6 {
        hostname: name.into(),
        duid: Some(DUID.to_vec()),
        mac: None,
        ip: a(ip),
        subnet: 0,
    }
}

#[test]
fn parses_full_and_partial_names_and_rejects_broken_ones() {
    // What dhclient sends for `send fqdn.fqdn "laptop6.";` with server-update on.
    let full = parse(b"\x01\x07laptop6\x00").unwrap();
    assert_eq!(
        full,
        ClientFqdn {
            flags: FLAG_S,
            labels: vec!["laptop6".into()],
            full: true,
        }
    );
    let partial = parse(b"\x00\x05Phone\x03lan").unwrap();
    assert_eq!(partial.labels, ["Phone", "lan"]);
    assert!(!partial.full);
    // Empty name: the client leaves the name to the server.
    assert_eq!(parse(b"\x04").unwrap().labels, Vec::<String>::new());
    assert_eq!(parse(b""), None);
    assert_eq!(parse(b"\x01\x09short"), None);
    assert_eq!(parse(b"\x01\x01a\x00\x01b"), None);
    assert_eq!(parse(&[1, 64]), None);
    // encode writes what parse reads.
    let e = encode(FLAG_S | FLAG_O, "laptop6.example.com.");
    assert_eq!(e, b"\x03\x07laptop6\x07example\x03com\x00");
    assert_eq!(parse(&e).unwrap().labels, ["laptop6", "example", "com"]);
}

#[test]
fn the_label_is_the_first_one_made_dns_safe() {
    let m = with_fqdn(
        MessageType::Request,
        Some(b"\x01\x09Laptop_6!\x07example\x00".to_vec()),
    );
    assert_eq!(client_label(&m).as_deref(), Some("laptop6"));
    assert_eq!(client_label(&with_fqdn(MessageType::Request, None)), None);
    assert_eq!(
        client_label(&with_fqdn(MessageType::Request, Some(vec![0]))),
        None
    );
}

#[test]
fn the_reply_names_what_the_server_publishes_with_s_o_and_n() {
    let res = [reservation("desk", "fd00:10::5")];
    let answer_of = |req: &Message, reply: &mut Message, ddns| {
        answer(req, reply, &res, "example.com", ddns);
        match reply.opts().get(OptionCode::ClientFqdn) {
            Some(DhcpOption::Unknown(u)) => Some(parse(u.data()).unwrap()),
            _ => None,
        }
    };
    // The client asks the server to update (S): S back, no override.
    let req = with_fqdn(MessageType::Request, Some(b"\x01\x07laptop6\x00".to_vec()));
    let got = answer_of(&req, &mut reply_with(a("fd00:10::1001"), 4000), true).unwrap();
    assert_eq!(got.flags, FLAG_S);
    assert_eq!(got.labels, ["laptop6", "example", "com"]);
    assert!(got.full);
    // It wanted to update AAAA itself (S clear): the server does it anyway and says so (O).
    let req0 = with_fqdn(MessageType::Renew, Some(b"\x00\x07laptop6\x00".to_vec()));
    let got = answer_of(&req0, &mut reply_with(a("fd00:10::1001"), 4000), true).unwrap();
    assert_eq!(got.flags, FLAG_S | FLAG_O);
    // No dynamic DNS configured: N, and O since the client's S is not granted.
    let got = answer_of(&req, &mut reply_with(a("fd00:10::1001"), 4000), false).unwrap();
    assert_eq!(got.flags, FLAG_N | FLAG_O);
    let got = answer_of(&req0, &mut reply_with(a("fd00:10::1001"), 4000), false).unwrap();
    assert_eq!(got.flags, FLAG_N);
    // The client asks for no updates at all (N, S clear): N back, S and O clear.
    let req_n = with_fqdn(MessageType::Request, Some(b"\x04\x07laptop6\x00".to_vec()));
    let got = answer_of(&req_n, &mut reply_with(a("fd00:10::1001"), 4000), true).unwrap();
    assert_eq!(got.flags, FLAG_N);
    assert_eq!(got.labels, ["laptop6", "example", "com"]);
    // A reserved address goes by the reservation's name.
    let got = answer_of(&req, &mut reply_with(a("fd00:10::5"), 4000), true).unwrap();
    assert_eq!(got.labels[0], "desk");
    // No option from the client, or a RELEASE: none back.
    let none = with_fqdn(MessageType::Request, None);
    assert!(answer_of(&none, &mut reply_with(a("fd00:10::1001"), 4000), true).is_none());
    let rel = with_fqdn(MessageType::Release, Some(b"\x01\x07laptop6\x00".to_vec()));
    assert!(answer_of(&rel, &mut reply_with(a("fd00:10::1001"), 4000), true).is_none());
    // The option survives encoding.
    let mut r = reply_with(a("fd00:10::1001"), 4000);
    answer(&req, &mut r, &res, "example.com", true);
    let back = Message::decode(&mut Decoder::new(&r.to_vec().unwrap())).unwrap();
    assert_eq!(
        back.opts().get(OptionCode::ClientFqdn),
        r.opts().get(OptionCode::ClientFqdn)
    );
}

fn lease(iaid: u32, kind: IaKind, addr: &str, len: u8, state: State6) -> Lease6 {
    Lease6 {
        key: Key6 {
            duid: DUID.to_vec(),
            iaid,
            kind,
        },
        addr: a(addr),
        prefix_len: len,
        starts: 1,
        expires: 2,
        state,
        hostname: None,
    }
}

#[test]
fn events_follow_the_address_bindings_only() {
    let req = with_fqdn(MessageType::Request, Some(b"\x01\x07laptop6\x00".to_vec()));
    let res = [reservation("desk", "fd00:10::5")];
    let na = lease(1, IaKind::Na, "fd00:10::1001", 128, State6::Bound);
    let changes = vec![
        Change6::Put(na.clone()),
        Change6::Put(lease(2, IaKind::Pd, "fd00:100::", 56, State6::Bound)),
        Change6::Put(lease(3, IaKind::Na, "fd00:10::5", 128, State6::Bound)),
        Change6::Put(lease(0, IaKind::Na, "fd00:10::7", 128, State6::Declined)),
        Change6::Delete(na.key.clone()),
        Change6::Delete(lease(2, IaKind::Pd, "fd00:100::", 56, State6::Bound).key),
    ];
    assert_eq!(
        events(Some(&req), &changes, &res),
        vec![
            // Two addresses, one name: the reserved address takes it.
            Event6::Bound {
                duid: DUID.to_vec(),
                iaid: 1,
                addr: a("fd00:10::1001"),
                name: None,
            },
            Event6::Bound {
                duid: DUID.to_vec(),
                iaid: 3,
                addr: a("fd00:10::5"),
                name: Some("desk".into()),
            },
            Event6::Unbound {
                duid: DUID.to_vec(),
                iaid: 1,
            },
        ]
    );
    // Without a reserved address: the lowest IAID.
    let two = [
        Change6::Put(lease(7, IaKind::Na, "fd00:10::1007", 128, State6::Bound)),
        Change6::Put(na.clone()),
    ];
    let names: Vec<_> = events(Some(&req), &two, &res)
        .into_iter()
        .map(|e| match e {
            Event6::Bound { iaid, name, .. } => (iaid, name),
            e => panic!("{e:?}"),
        })
        .collect();
    assert_eq!(names, [(7, None), (1, Some("laptop6".into()))]);
    // A renewal without the option: no name (the published one is kept).
    let renew = with_fqdn(MessageType::Renew, None);
    assert_eq!(
        events(Some(&renew), &changes[..1], &res),
        vec![Event6::Bound {
            duid: DUID.to_vec(),
            iaid: 1,
            addr: a("fd00:10::1001"),
            name: None,
        }]
    );
}

/// The decision core, then the two hooks as the server calls them: a SOLICIT with Rapid
/// Commit and a Client FQDN is answered by a REPLY that names the client, and its binding is
/// published; a reserved client is published under its reservation's name without the option.
#[test]
fn rapid_commit_and_request_replies_publish_what_they_bind() {
    use crate::v6::decide::{Ctx, decide};
    use crate::v6::lease::Leases6;
    let t = hostfile::HostTable::from_toml(
        r#"domain = "example.com"
[[subnet]]
network = "192.168.10.0/24"
[[subnet]]
name = "lan6"
network = "fd00:10::/64"
rapid-commit = true
[[subnet.pool]]
range = "fd00:10::1000-fd00:10::10ff"
[host.desk]
ip = "192.168.10.5"
ipv6 = "fd00:10::5"
duid = "00:03:00:01:02:00:00:00:00:05"
"#,
    )
    .expect("host file");
    let v = t.dhcp_view();
    let server = [0, 4, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9];
    let ctx = Ctx {
        subnets: &v.subnets6,
        reservations: &v.reservations6,
        server_duid: &server,
        decline_probation: 3600,
        client_mac: None,
    };
    let solicit = |duid: &[u8], fqdn: Option<&[u8]>| {
        let mut m = with_fqdn(MessageType::Solicit, fqdn.map(<[u8]>::to_vec));
        let o = m.opts_mut();
        o.remove(OptionCode::ClientId);
        o.insert(DhcpOption::ClientId(duid.to_vec()));
        o.insert(DhcpOption::RapidCommit);
        o.insert(DhcpOption::IANA(IANA {
            id: 1,
            t1: 0,
            t2: 0,
            opts: DhcpOptions::new(),
        }));
        m
    };
    let serve = |m: &Message| {
        let mut o = decide(&ctx, Some(0), &Leases6::new(), m, 1_000);
        name_bindings(m, &mut o.changes, &v.reservations6, &Leases6::new());
        let reply = o.reply.as_mut().expect("a reply");
        answer(m, reply, &v.reservations6, "example.com", true);
        let kept: Vec<_> = o
            .changes
            .iter()
            .filter_map(|c| match c {
                Change6::Put(l) => Some(l.hostname.clone()),
                Change6::Delete(_) => None,
            })
            .collect();
        (
            o.reply.unwrap(),
            events(Some(m), &o.changes, &v.reservations6),
            kept,
        )
    };

    let (reply, ev, kept) = serve(&solicit(DUID, Some(b"\x01\x07laptop6\x00")));
    assert_eq!(reply.msg_type(), MessageType::Reply);
    assert_eq!(kept, [Some("laptop6".to_owned())]);
    let Some(DhcpOption::Unknown(f)) = reply.opts().get(OptionCode::ClientFqdn) else {
        panic!("no Client FQDN in {reply:?}");
    };
    let f = parse(f.data()).unwrap();
    assert_eq!(
        (f.flags, f.labels.join(".")),
        (FLAG_S, "laptop6.example.com".into())
    );
    let [Event6::Bound { addr, name, .. }] = &ev[..] else {
        panic!("{ev:?}");
    };
    assert!((a("fd00:10::1000")..=a("fd00:10::10ff")).contains(addr));
    assert_eq!(name.as_deref(), Some("laptop6"));

    // N: the binding keeps the name, the REPLY says no update (N, S clear), nothing is
    // published.
    let (reply, ev, kept) = serve(&solicit(DUID, Some(b"\x04\x07laptop6\x00")));
    let Some(DhcpOption::Unknown(f)) = reply.opts().get(OptionCode::ClientFqdn) else {
        panic!("no Client FQDN in {reply:?}");
    };
    assert_eq!(parse(f.data()).unwrap().flags, FLAG_N);
    assert!(ev.is_empty(), "{ev:?}");
    assert_eq!(kept, [Some("laptop6".to_owned())]);

    let desk = [0, 3, 0, 1, 2, 0, 0, 0, 0, 5];
    let (reply, ev, kept) = serve(&solicit(&desk, None));
    assert!(reply.opts().get(OptionCode::ClientFqdn).is_none());
    assert_eq!(kept, [Some("desk".to_owned())]);
    assert_eq!(
        ev,
        [Event6::Bound {
            duid: desk.to_vec(),
            iaid: 1,
            addr: a("fd00:10::5"),
            name: Some("desk".into()),
        }]
    );
}

/// RFC 4704 section 4.1, every combination of the client's N and S with dynamic DNS on and off:
/// the server's S says it updates, N that it does not (never both), O that its S is not the
/// client's. With N from the client and dynamic DNS on, the answer is Kea's default 1-0-0.
#[test]
fn reply_flags_follow_rfc_4704_and_honour_n() {
    let (n, s, o) = (FLAG_N, FLAG_S, FLAG_O);
    let table = [
        // (client flags, ddns, server flags)
        (0, true, s | o),
        (s, true, s),
        (n, true, n),
        // Forbidden (N with S): N is honoured, S refused, O says so.
        (n | s, true, n | o),
        (0, false, n),
        (s, false, n | o),
        (n, false, n),
        (n | s, false, n | o),
        // A client's O (it must send 0) and unknown bits change nothing.
        (o | 0xf0, true, s | o),
    ];
    for (asked, ddns, want) in table {
        let got = reply_flags(asked, ddns);
        assert_eq!(got, want, "client {asked:#04x}, ddns {ddns}");
        assert!(got & (n | s) != (n | s), "N and S together");
    }
}

/// A client that sets N gets no DNS additions (neither AAAA nor PTR: no `Bound` event at
/// all), while the ends of its bindings still remove what was published for them earlier.
#[test]
fn n_from_the_client_means_no_update_but_ends_still_clean_up() {
    let res = [reservation("desk", "fd00:10::5")];
    let na = lease(1, IaKind::Na, "fd00:10::1001", 128, State6::Bound);
    let reserved = lease(3, IaKind::Na, "fd00:10::5", 128, State6::Bound);
    let changes = vec![
        Change6::Put(na.clone()),
        Change6::Put(reserved),
        Change6::Delete(lease(9, IaKind::Na, "fd00:10::1009", 128, State6::Bound).key),
    ];
    for flags in [FLAG_N, FLAG_N | FLAG_S] {
        let mut data = vec![flags];
        data.extend_from_slice(b"\x07laptop6\x00");
        let req = with_fqdn(MessageType::Request, Some(data));
        assert!(no_update(&req));
        assert_eq!(
            events(Some(&req), &changes, &res),
            vec![Event6::Unbound {
                duid: DUID.to_vec(),
                iaid: 9,
            }],
            "flags {flags:#04x}"
        );
    }
    // Without N the same changes publish (the reserved name on the reserved address).
    let req = with_fqdn(MessageType::Request, Some(b"\x01\x07laptop6\x00".to_vec()));
    assert!(!no_update(&req));
    assert!(!no_update(&with_fqdn(MessageType::Request, None)));
    assert_eq!(events(Some(&req), &changes, &res).len(), 3);
}

/// The names the lease store keeps: the reservation's on a reserved address, the client's label
/// on its other bindings (prefixes too), the binding's earlier name on a renewal without the
/// option, none on a declined address; N changes nothing here.
#[test]
fn bindings_get_the_clients_name_to_keep() {
    use crate::v6::lease::Leases6;
    let res = [reservation("desk", "fd00:10::5")];
    let named = |msg: &Message, changes: &[Change6], before: &Leases6| {
        let mut c = changes.to_vec();
        name_bindings(msg, &mut c, &res, before);
        c.into_iter()
            .map(|c| match c {
                Change6::Put(l) => (l.key.iaid, l.hostname),
                Change6::Delete(k) => (k.iaid, Some("deleted".into())),
            })
            .collect::<Vec<_>>()
    };
    let none = Leases6::new();
    let na = lease(1, IaKind::Na, "fd00:10::1001", 128, State6::Bound);
    let pd = lease(2, IaKind::Pd, "fd00:100::", 56, State6::Bound);
    let declined = lease(0, IaKind::Na, "fd00:10::7", 128, State6::Declined);
    let changes = [
        Change6::Put(na.clone()),
        Change6::Put(pd.clone()),
        Change6::Put(declined),
        Change6::Delete(na.key.clone()),
    ];
    let laptop = Some("laptop6".to_owned());
    for flags in [b'\x01', b'\x04'] {
        let mut data = vec![flags];
        data.extend_from_slice(b"\x09Laptop_6!\x00");
        let req = with_fqdn(MessageType::Request, Some(data));
        assert_eq!(
            named(&req, &changes, &none),
            [
                (1, laptop.clone()),
                (2, laptop.clone()),
                (0, None),
                (1, Some("deleted".into()))
            ]
        );
    }
    // The reserved host: its reservation's name on the address and on its prefix, even when
    // it sends another name.
    let desk = lease(3, IaKind::Na, "fd00:10::5", 128, State6::Bound);
    let req = with_fqdn(MessageType::Request, Some(b"\x01\x07laptop6\x00".to_vec()));
    let desk_name = Some("desk".to_owned());
    assert_eq!(
        named(&req, &[Change6::Put(desk), Change6::Put(pd.clone())], &none),
        [(3, desk_name.clone()), (2, desk_name)]
    );
    // A renewal without the option keeps the name the binding had; without one, none.
    let mut before = Leases6::new();
    before.apply(&Change6::Put(Lease6 {
        hostname: laptop.clone(),
        ..na.clone()
    }));
    let renew = with_fqdn(MessageType::Renew, None);
    let both = [Change6::Put(na.clone()), Change6::Put(pd.clone())];
    assert_eq!(
        named(&renew, &both, &before),
        [(1, laptop.clone()), (2, None)]
    );
    // A renewal with another name takes it.
    let other = with_fqdn(MessageType::Renew, Some(b"\x01\x05other\x00".to_vec()));
    assert_eq!(
        named(&other, &both, &before),
        [(1, Some("other".into())), (2, Some("other".into()))]
    );
}
