use super::*;
use crate::alloc;
use crate::decode::{BadPacket, FILE, MAGIC, SNAME, parse, peek_type};
use crate::lease::{KeySource, NEVER};
use crate::testutil::config;
use dhcproto::v4::relay::{RelayAgentInformation, RelayInfo};
use dhcproto::v4::{DhcpOption, Flags};
use dhcproto::{Decodable, Encodable};
use ipnet::Ipv4Net;

const NOW: u64 = 1_000_000;
const MAC: [u8; 6] = [2, 0, 0, 0, 0x10, 0x99];

fn inner() -> Vec<Ipv4Net> {
    vec!["192.168.10.1/24".parse().unwrap()]
}

fn rx(addrs: &[Ipv4Net]) -> Rx<'_> {
    Rx {
        iface: "p10p1",
        addrs,
        now: NOW,
        offline: false,
    }
}

fn msg(kind: Option<MessageType>, mac: [u8; 6]) -> Message {
    let mut m = Message::default();
    m.set_chaddr(&mac).set_xid(42);
    if let Some(k) = kind {
        m.opts_mut().insert(DhcpOption::MessageType(k));
    }
    m
}

fn decode(r: &Reply) -> Message {
    Message::from_bytes(&r.bytes).unwrap()
}

fn apply(t: &mut LeaseTable, d: &Decision) {
    for c in &d.changes {
        t.apply(c);
    }
}

/// The test client's DHCID identity: type 0, htype 1 and its MAC.
fn mac_id() -> ClientId {
    ClientId {
        kind: 0,
        data: [&[1][..], &MAC[..]].concat(),
    }
}

/// DISCOVER then REQUEST (SELECTING); returns the table and the ACKed address.
fn lease(cfg: &ViewIndex, mac: [u8; 6]) -> (LeaseTable, Ipv4Addr) {
    let addrs = inner();
    let mut t = LeaseTable::new();
    let d = handle(cfg, &t, &msg(Some(MessageType::Discover), mac), &rx(&addrs));
    apply(&mut t, &d);
    let ip = d.reply.unwrap().yiaddr;
    let mut req = msg(Some(MessageType::Request), mac);
    req.opts_mut().insert(DhcpOption::RequestedIpAddress(ip));
    req.opts_mut().insert(DhcpOption::ServerIdentifier(
        "192.168.10.1".parse().unwrap(),
    ));
    req.opts_mut().insert(DhcpOption::Hostname("Laptop".into()));
    let d = handle(cfg, &t, &req, &rx(&addrs));
    assert_eq!(d.reply.as_ref().unwrap().kind, "ACK");
    apply(&mut t, &d);
    (t, ip)
}

#[test]
fn discover_gets_an_offer_from_the_pool_with_options() {
    let cfg = config();
    let addrs = inner();
    let d = handle(
        &cfg,
        &LeaseTable::new(),
        &msg(Some(MessageType::Discover), MAC),
        &rx(&addrs),
    );
    let r = d.reply.unwrap();
    assert_eq!(r.kind, "OFFER");
    assert!(alloc::in_pool(cfg.subnet(1), r.yiaddr, false));
    assert_eq!(
        r.dest,
        Dest::Hw {
            ip: r.yiaddr,
            mac: MAC
        }
    );
    let m = decode(&r);
    assert_eq!(m.opcode(), Opcode::BootReply);
    assert_eq!(m.xid(), 42);
    assert_eq!(m.opts().msg_type(), Some(MessageType::Offer));
    assert_eq!(
        m.opts().get(OptionCode::Router),
        Some(&DhcpOption::Router(vec!["192.168.10.1".parse().unwrap()]))
    );
    assert_eq!(
        m.opts().get(OptionCode::AddressLeaseTime),
        Some(&DhcpOption::AddressLeaseTime(43200))
    );
    assert!(matches!(&d.changes[..], [Change::Put(l)] if l.state == LeaseState::Offered));
    assert_eq!(d.probe, Some(r.yiaddr), "example file has ping-check on");
}

#[test]
fn broadcast_flag_means_broadcast() {
    let cfg = config();
    let addrs = inner();
    let mut m = msg(Some(MessageType::Discover), MAC);
    m.set_flags(Flags::default().set_broadcast());
    let d = handle(&cfg, &LeaseTable::new(), &m, &rx(&addrs));
    assert_eq!(d.reply.unwrap().dest, Dest::Broadcast);
}

#[test]
fn request_in_selecting_state_is_acked_and_bound() {
    let cfg = config();
    let (t, ip) = lease(&cfg, MAC);
    let l = t.get(ip).unwrap();
    assert_eq!(l.state, LeaseState::Bound);
    assert_eq!(l.expires, NOW + 43200);
    assert_eq!(l.hostname.as_deref(), Some("laptop"));
}

#[test]
fn renewing_by_ciaddr_is_acked_by_unicast_and_keeps_the_address() {
    let cfg = config();
    let (t, ip) = lease(&cfg, MAC);
    let mut req = msg(Some(MessageType::Request), MAC);
    req.set_ciaddr(ip);
    let d = handle(&cfg, &t, &req, &rx(&inner()));
    let r = d.reply.unwrap();
    assert_eq!((r.kind, r.yiaddr, r.dest), ("ACK", ip, Dest::Unicast(ip)));
    assert!(d.dns.is_empty(), "renewal does not repeat the DNS update");
}

#[test]
fn reserved_mac_gets_its_address_and_name() {
    let cfg = config();
    let (t, ip) = lease(&cfg, [2, 0, 0, 0, 0x10, 0x10]);
    assert_eq!(ip, Ipv4Addr::new(192, 168, 10, 10));
    assert_eq!(t.get(ip).unwrap().hostname.as_deref(), Some("web1"));
}

#[test]
fn init_reboot_on_the_wrong_network_is_naked_when_authoritative() {
    let cfg = config();
    let mut req = msg(Some(MessageType::Request), MAC);
    req.opts_mut()
        .insert(DhcpOption::RequestedIpAddress("10.9.9.9".parse().unwrap()));
    let d = handle(&cfg, &LeaseTable::new(), &req, &rx(&inner()));
    let r = d.reply.unwrap();
    assert_eq!((r.kind, r.dest), ("NAK", Dest::Broadcast));
    assert_eq!(decode(&r).opts().msg_type(), Some(MessageType::Nak));
    // the outer subnet is not authoritative: silence
    let outer: Vec<Ipv4Net> = vec!["192.168.1.2/24".parse().unwrap()];
    let d = handle(
        &cfg,
        &LeaseTable::new(),
        &req,
        &Rx {
            iface: "br0",
            addrs: &outer,
            now: NOW,
            offline: false,
        },
    );
    assert!(d.reply.is_none());
}

#[test]
fn init_reboot_for_another_clients_address_is_naked() {
    let cfg = config();
    let (t, ip) = lease(&cfg, MAC);
    let mut req = msg(Some(MessageType::Request), [2, 0, 0, 0, 0, 1]);
    req.opts_mut().insert(DhcpOption::RequestedIpAddress(ip));
    let d = handle(&cfg, &t, &req, &rx(&inner()));
    assert_eq!(d.reply.unwrap().kind, "NAK");
}

#[test]
fn request_for_another_server_drops_our_offer() {
    let cfg = config();
    let addrs = inner();
    let mut t = LeaseTable::new();
    let d = handle(
        &cfg,
        &t,
        &msg(Some(MessageType::Discover), MAC),
        &rx(&addrs),
    );
    apply(&mut t, &d);
    let ip = d.reply.unwrap().yiaddr;
    let mut req = msg(Some(MessageType::Request), MAC);
    req.opts_mut().insert(DhcpOption::RequestedIpAddress(ip));
    req.opts_mut().insert(DhcpOption::ServerIdentifier(
        "192.168.10.77".parse().unwrap(),
    ));
    let d = handle(&cfg, &t, &req, &rx(&addrs));
    assert!(d.reply.is_none());
    assert_eq!(
        d.changes,
        vec![Change::Withdraw {
            ip,
            client: client_key(&req)
        }]
    );
    apply(&mut t, &d);
    assert!(t.get(ip).is_none());
}

#[test]
fn decline_puts_the_address_on_probation_and_it_is_not_offered_again() {
    let cfg = config();
    let (mut t, ip) = lease(&cfg, MAC);
    let mut req = msg(Some(MessageType::Decline), MAC);
    req.opts_mut().insert(DhcpOption::RequestedIpAddress(ip));
    req.opts_mut().insert(DhcpOption::ServerIdentifier(
        "192.168.10.1".parse().unwrap(),
    ));
    let d = handle(&cfg, &t, &req, &rx(&inner()));
    assert!(d.reply.is_none());
    apply(&mut t, &d);
    let l = t.get(ip).unwrap();
    assert_eq!(l.state, LeaseState::Declined);
    assert_eq!(l.expires, NOW + 3600);
    let d = handle(
        &cfg,
        &t,
        &msg(Some(MessageType::Discover), MAC),
        &rx(&inner()),
    );
    assert_ne!(d.reply.unwrap().yiaddr, ip);
}

#[test]
fn release_frees_the_address_and_removes_dns() {
    let cfg = config();
    let (mut t, ip) = lease(&cfg, MAC);
    let mut req = msg(Some(MessageType::Release), MAC);
    req.set_ciaddr(ip);
    let d = handle(&cfg, &t, &req, &rx(&inner()));
    assert_eq!(
        d.dns,
        vec![Dns::Remove {
            name: "laptop".into(),
            ip,
            id: mac_id()
        }]
    );
    apply(&mut t, &d);
    assert_eq!(t.get(ip).unwrap().state, LeaseState::Released);
    assert!(t.free_for(ip, b"someone else", NOW));
}

#[test]
fn admin_release_is_a_release_from_the_client_and_needs_a_bound_lease() {
    let cfg = config();
    let (mut t, ip) = lease(&cfg, MAC);
    let mut req = msg(Some(MessageType::Release), MAC);
    req.set_ciaddr(ip);
    let by_client = handle(&cfg, &t, &req, &rx(&inner()));
    let by_admin = super::admin_release(&t, ip, NOW).unwrap();
    assert_eq!(by_admin.changes, by_client.changes);
    assert_eq!(by_admin.dns, by_client.dns);
    assert!(by_admin.reply.is_none());
    apply(&mut t, &by_admin);
    assert_eq!(t.get(ip).unwrap().state, LeaseState::Released);
    assert!(super::admin_release(&t, ip, NOW).is_none());
    assert!(super::admin_release(&t, "192.168.10.250".parse().unwrap(), NOW).is_none());
}

#[test]
fn bootp_gets_a_bootreply_with_a_permanent_lease() {
    let cfg = config();
    let m = msg(None, MAC);
    let d = handle(&cfg, &LeaseTable::new(), &m, &rx(&inner()));
    let r = d.reply.unwrap();
    assert_eq!(r.kind, "BOOTREPLY");
    let back = decode(&r);
    assert_eq!(back.opts().msg_type(), None);
    assert!(back.opts().get(OptionCode::SubnetMask).is_some());
    assert!(r.bytes.len() >= 300);
    assert!(matches!(&d.changes[..], [Change::Put(l)] if l.expires == NEVER));
}

#[test]
fn relayed_discover_goes_to_the_relay_with_option_82() {
    let cfg = config();
    let mut m = msg(Some(MessageType::Discover), MAC);
    m.set_giaddr(Ipv4Addr::new(192, 168, 10, 2)).set_hops(1);
    let mut ri = RelayAgentInformation::default();
    ri.insert(RelayInfo::AgentCircuitId(b"port7".to_vec()));
    m.opts_mut()
        .insert(DhcpOption::RelayAgentInformation(ri.clone()));
    // received on the outer interface: the subnet still comes from giaddr
    let outer: Vec<Ipv4Net> = vec!["192.168.1.2/24".parse().unwrap()];
    let d = handle(
        &cfg,
        &LeaseTable::new(),
        &m,
        &Rx {
            iface: "br0",
            addrs: &outer,
            now: NOW,
            offline: false,
        },
    );
    let r = d.reply.unwrap();
    assert_eq!(r.dest, Dest::Relay(Ipv4Addr::new(192, 168, 10, 2)));
    assert!(alloc::in_pool(cfg.subnet(1), r.yiaddr, false));
    let back = decode(&r);
    assert_eq!(
        back.opts().get(OptionCode::RelayAgentInformation),
        Some(&DhcpOption::RelayAgentInformation(ri))
    );
    assert_eq!(back.giaddr(), Ipv4Addr::new(192, 168, 10, 2));
}

#[test]
fn inform_gets_options_without_a_lease() {
    let cfg = config();
    let mut m = msg(Some(MessageType::Inform), MAC);
    m.set_ciaddr(Ipv4Addr::new(192, 168, 10, 50));
    let d = handle(&cfg, &LeaseTable::new(), &m, &rx(&inner()));
    let r = d.reply.unwrap();
    assert_eq!(r.dest, Dest::Unicast(Ipv4Addr::new(192, 168, 10, 50)));
    let back = decode(&r);
    assert!(back.opts().get(OptionCode::AddressLeaseTime).is_none());
    assert!(back.opts().get(OptionCode::DomainNameServer).is_some());
    assert!(d.changes.is_empty());
}

#[test]
fn parse_refuses_bad_datagrams() {
    let good = msg(Some(MessageType::Discover), MAC).to_vec().unwrap();
    assert!(parse(&good).is_ok());
    assert_eq!(parse(&good[..100]), Err(BadPacket::Short(100)));
    let mut reply = good.clone();
    reply[0] = 2;
    assert_eq!(parse(&reply), Err(BadPacket::NotRequest));
    let mut hlen = good.clone();
    hlen[2] = 200;
    assert_eq!(parse(&hlen), Err(BadPacket::Hlen(200)));
    // an option running past the end
    let mut over = good[..240].to_vec();
    over.extend_from_slice(&[53, 1, 1, 12, 200, b'a']);
    assert_eq!(parse(&over), Err(BadPacket::Option(12)));
    // client FQDN shorter than its fixed part (the decoder would underflow)
    let mut fqdn = good[..240].to_vec();
    fqdn.extend_from_slice(&[53, 1, 1, 81, 1, 0, 255]);
    assert_eq!(parse(&fqdn), Err(BadPacket::Option(81)));
    // a requested address of the wrong length: the decoder stops, we notice
    let mut req = good[..240].to_vec();
    req.extend_from_slice(&[53, 1, 1, 50, 3, 1, 2, 3, 255]);
    assert_eq!(parse(&req), Err(BadPacket::Option(50)));
    // no magic cookie: plain BOOTP
    let mut bootp = good[..236].to_vec();
    bootp.extend_from_slice(&[0; 64]);
    assert_eq!(parse(&bootp).unwrap().opts().msg_type(), None);
}

#[test]
fn server_replies_are_not_requests() {
    let cfg = config();
    let m = msg(Some(MessageType::Offer), MAC);
    let d = handle(&cfg, &LeaseTable::new(), &m, &rx(&inner()));
    assert!(d.reply.is_none() && d.bad);
}

#[test]
fn peek_type_finds_option_53_without_decoding() {
    let mut m = msg(Some(MessageType::Request), MAC);
    m.opts_mut().insert(DhcpOption::Hostname("x".into()));
    let v = m.to_vec().unwrap();
    assert_eq!(peek_type(&v), Some(3));
    assert_eq!(peek_type(&msg(None, MAC).to_vec().unwrap()), None);
    assert_eq!(peek_type(&v[..241]), None);
}

#[test]
fn expiry_frees_the_address_and_removes_its_dns_records() {
    let cfg = config();
    let (mut t, ip) = lease(&cfg, MAC);
    assert!(expire(&t, NOW + 100, 100).changes.is_empty());
    let d = expire(&t, NOW + 43200, 100);
    assert_eq!(
        d.dns,
        vec![Dns::Remove {
            name: "laptop".into(),
            ip,
            id: mac_id()
        }]
    );
    apply(&mut t, &d);
    assert_eq!(t.get(ip).unwrap().state, LeaseState::Expired);
    assert!(t.free_for(ip, b"another", NOW + 43200));
    // the client comes back later and gets its old address again
    let d = handle(
        &cfg,
        &t,
        &msg(Some(MessageType::Discover), MAC),
        &Rx {
            iface: "p10p1",
            addrs: &inner(),
            now: NOW + 50000,
            offline: false,
        },
    );
    assert_eq!(d.reply.unwrap().yiaddr, ip);
}

#[test]
fn offline_renews_a_held_lease_for_its_remaining_time_only_and_allocates_nothing() {
    let cfg = config();
    let addrs = inner();
    let (t, ip) = lease(&cfg, MAC);
    let held_until = t.get(ip).unwrap().expires;
    let off = Rx {
        now: NOW + 100,
        offline: true,
        ..rx(&addrs)
    };
    // renewal (ciaddr) of the lease it holds: ACK, expiry unchanged
    let mut req = msg(Some(MessageType::Request), MAC);
    req.set_ciaddr(ip);
    let d = handle(&cfg, &t, &req, &off);
    let r = d.reply.expect("renewal answered while offline");
    assert_eq!(r.kind, "ACK");
    let m = decode(&r);
    assert_eq!(
        m.opts().get(OptionCode::AddressLeaseTime),
        Some(&DhcpOption::AddressLeaseTime(
            (held_until - NOW - 100) as u32
        ))
    );
    assert!(
        matches!(&d.changes[..], [Change::Put(l)] if l.ip == ip && l.expires == held_until && l.state == LeaseState::Bound)
    );
    // a new client: neither OFFER nor ACK
    let other = [2, 0, 0, 0, 0x77, 0x77];
    let d = handle(&cfg, &t, &msg(Some(MessageType::Discover), other), &off);
    assert!(d.reply.is_none() && d.changes.is_empty());
    assert_eq!(d.silent, Some(OFFLINE));
    let mut req = msg(Some(MessageType::Request), other);
    req.opts_mut().insert(DhcpOption::RequestedIpAddress(
        "192.168.10.222".parse().unwrap(),
    ));
    let d = handle(&cfg, &t, &req, &off);
    assert!(d.reply.is_none() && d.changes.is_empty());
    // the holder's DISCOVER is still answered with its own address
    let d = handle(&cfg, &t, &msg(Some(MessageType::Discover), MAC), &off);
    assert_eq!(d.reply.unwrap().yiaddr, ip);
}

/// A raw request: `main` in the options field (End appended), `file` and `sname` as given.
fn raw(main: &[u8], file: &[u8], sname: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 236];
    b[0] = 1;
    b[1] = 1;
    b[2] = 6;
    b[4..8].copy_from_slice(&42u32.to_be_bytes());
    b[28..34].copy_from_slice(&MAC);
    b[FILE][..file.len()].copy_from_slice(file);
    b[SNAME][..sname.len()].copy_from_slice(sname);
    b.extend_from_slice(&MAGIC);
    b.extend_from_slice(main);
    b.push(255);
    b
}

#[test]
fn overloaded_file_field_carries_the_requested_address_and_request_list() {
    let cfg = config();
    // option 52 = 1 (file); the requested address and a request list of mask and routers
    // only sit in `file`.
    let buf = raw(
        &[53, 1, 1, 52, 1, 1],
        &[50, 4, 192, 168, 10, 230, 55, 2, 1, 3, 255],
        b"boothost\0",
    );
    let m = parse(&buf).unwrap();
    assert_eq!(
        m.opts().get(OptionCode::RequestedIpAddress),
        Some(&DhcpOption::RequestedIpAddress(Ipv4Addr::new(
            192, 168, 10, 230
        )))
    );
    assert!(m.opts().get(OptionCode::OptionOverload).is_none());
    assert_eq!(m.fname(), None);
    // sname was not overloaded: it keeps its string.
    assert_eq!(m.sname(), Some(&b"boothost\0"[..]));
    let d = handle(&cfg, &LeaseTable::new(), &m, &rx(&inner()));
    let r = d.reply.unwrap();
    assert_eq!(
        (r.kind, r.yiaddr),
        ("OFFER", Ipv4Addr::new(192, 168, 10, 230))
    );
    let back = decode(&r);
    assert!(back.opts().get(OptionCode::Router).is_some());
    // not in the request list (and not always sent): left out
    assert!(back.opts().get(OptionCode::BroadcastAddr).is_none());
    assert!(back.opts().get(OptionCode::Hostname).is_none());
}

#[test]
fn overloaded_fields_are_read_options_then_file_then_sname_and_concatenated() {
    let cfg = config();
    // option 52 = 3: message type only in sname; the host name split across the three areas
    // (RFC 3396): options "la", file "pt", sname "op".
    let buf = raw(
        &[52, 1, 3, 12, 2, b'l', b'a'],
        &[12, 2, b'p', b't', 50, 4, 192, 168, 10, 231, 255],
        &[12, 2, b'o', b'p', 0, 0, 53, 1, 1, 255],
    );
    assert_eq!(peek_type(&buf), Some(1));
    let m = parse(&buf).unwrap();
    assert_eq!(m.opts().msg_type(), Some(MessageType::Discover));
    assert_eq!(
        m.opts().get(OptionCode::Hostname),
        Some(&DhcpOption::Hostname("laptop".into()))
    );
    assert_eq!((m.sname(), m.fname()), (None, None));
    let d = handle(&cfg, &LeaseTable::new(), &m, &rx(&inner()));
    let r = d.reply.as_ref().unwrap();
    assert_eq!(
        (r.kind, r.yiaddr),
        ("OFFER", Ipv4Addr::new(192, 168, 10, 231))
    );
    assert!(matches!(
        &d.changes[..],
        [Change::Put(l)] if l.hostname.as_deref() == Some("laptop")
    ));
    // A REQUEST whose server identifier and address sit in `file` is ACKed.
    let mut t = LeaseTable::new();
    apply(&mut t, &d);
    let req = raw(
        &[53, 1, 3, 52, 1, 1],
        &[54, 4, 192, 168, 10, 1, 50, 4, 192, 168, 10, 231, 255],
        &[],
    );
    let d = handle(&cfg, &t, &parse(&req).unwrap(), &rx(&inner()));
    let r = d.reply.unwrap();
    assert_eq!(
        (r.kind, r.yiaddr),
        ("ACK", Ipv4Addr::new(192, 168, 10, 231))
    );
}

#[test]
fn malformed_overload_is_refused() {
    let bad = |main: &[u8], file: &[u8], sname: &[u8]| parse(&raw(main, file, sname));
    let req = [50, 4, 192, 168, 10, 230, 255];
    for v in [0u8, 4, 255] {
        assert_eq!(
            bad(&[53, 1, 1, 52, 1, v], &req, &[]),
            Err(BadPacket::Overload("value not 1, 2 or 3")),
            "value {v}"
        );
    }
    assert_eq!(
        bad(&[53, 1, 1, 52, 2, 1, 1], &req, &[]),
        Err(BadPacket::Overload("option 52 not one octet"))
    );
    assert_eq!(
        bad(&[53, 1, 1, 52, 1, 1, 12, 1, b'x', 52, 1, 1], &req, &[]),
        Err(BadPacket::Overload("option 52 more than once"))
    );
    // an option running past the end of `file` (its length says 200)
    let mut file = vec![0u8; 128];
    file[126] = 12;
    file[127] = 200;
    assert_eq!(
        bad(&[53, 1, 1, 52, 1, 1], &file, &[]),
        Err(BadPacket::Overload("option overruns the file field"))
    );
    // a code as the last octet of sname, without its length
    let mut sname = vec![0u8; 64];
    sname[63] = 12;
    assert_eq!(
        bad(&[53, 1, 1, 52, 1, 2], &[], &sname),
        Err(BadPacket::Overload("option overruns the sname field"))
    );
    assert_eq!(
        bad(&[53, 1, 1, 52, 1, 1], &[52, 1, 2, 255], &[]),
        Err(BadPacket::Overload("option 52 inside file or sname"))
    );
    // a bad option inside `file` is still caught by the length checks
    assert_eq!(
        bad(&[53, 1, 1, 52, 1, 1], &[50, 3, 1, 2, 3, 255], &[]),
        Err(BadPacket::Option(50))
    );
    assert_eq!(
        bad(&[53, 1, 1, 52, 1, 1], &[81, 1, 0, 255], &[]),
        Err(BadPacket::Option(81))
    );
    // `file` without an End option but with whole options is accepted
    let mut full = vec![0u8; 128];
    full[..6].copy_from_slice(&[50, 4, 192, 168, 10, 230]);
    assert!(bad(&[53, 1, 1, 52, 1, 1], &full, &[]).is_ok());
}

#[test]
fn dhcid_identity_follows_rfc4701_types() {
    let mac = [1, 2, 3, 4, 5, 6];
    let id = |kind, data: &[u8]| ClientId {
        kind,
        data: data.to_vec(),
    };
    // No option 61: htype + chaddr, type 0.
    let key = [&[1][..], &mac[..]].concat();
    assert_eq!(ClientId::of(&key, &mac, KeySource::Hardware), id(0, &key));
    // Option 61, even when it holds htype + chaddr: its data, type 1.
    assert_eq!(ClientId::of(&key, &mac, KeySource::ClientId), id(1, &key));
    let cid = [0, b'p', b'c'];
    assert_eq!(ClientId::of(&cid, &mac, KeySource::ClientId), id(1, &cid));
    // RFC 4361 (type 255, IAID, DUID): the DUID, type 2.
    let duid = [0, 1, 0, 6, 0x41, 0x2d, 0xf1, 0x66, 1, 2, 3, 4, 5, 6];
    let rfc4361 = [&[255, 0, 0, 0, 9][..], &duid[..]].concat();
    assert_eq!(
        ClientId::of(&rfc4361, &mac, KeySource::ClientId),
        id(2, &duid)
    );
    // Type 255 without a DUID is an ordinary identifier.
    assert_eq!(
        ClientId::of(&[255, 0, 0, 0, 9], &mac, KeySource::ClientId),
        id(1, &[255, 0, 0, 0, 9])
    );
    // Records of earlier versions: what they published (type 0 whenever the key is htype +
    // chaddr).
    assert_eq!(ClientId::of(&key, &mac, KeySource::Legacy), id(0, &key));
    assert_eq!(ClientId::of(&cid, &mac, KeySource::Legacy), id(1, &cid));
    assert_eq!(
        ClientId::of(&rfc4361, &mac, KeySource::Legacy),
        id(2, &duid)
    );
}

/// DISCOVER and REQUEST (SELECTING) with option 61 = htype + MAC and host name "laptop".
fn lease_with_cid(cfg: &ViewIndex) -> (LeaseTable, Ipv4Addr, Decision) {
    let addrs = inner();
    let cid = [&[1][..], &MAC[..]].concat();
    let mut t = LeaseTable::new();
    let mut disc = msg(Some(MessageType::Discover), MAC);
    disc.opts_mut()
        .insert(DhcpOption::ClientIdentifier(cid.clone()));
    let d = handle(cfg, &t, &disc, &rx(&addrs));
    apply(&mut t, &d);
    let ip = d.reply.unwrap().yiaddr;
    let mut req = msg(Some(MessageType::Request), MAC);
    req.opts_mut().insert(DhcpOption::ClientIdentifier(cid));
    req.opts_mut().insert(DhcpOption::RequestedIpAddress(ip));
    req.opts_mut().insert(DhcpOption::ServerIdentifier(
        "192.168.10.1".parse().unwrap(),
    ));
    req.opts_mut().insert(DhcpOption::Hostname("laptop".into()));
    let d = handle(cfg, &t, &req, &rx(&addrs));
    assert_eq!(d.reply.as_ref().unwrap().kind, "ACK");
    apply(&mut t, &d);
    (t, ip, d)
}

#[test]
fn option_61_equal_to_the_mac_is_type_1_from_ack_to_release_and_expiry() {
    let cfg = config();
    let (t, ip, ack) = lease_with_cid(&cfg);
    let cid_id = ClientId {
        kind: 1,
        data: [&[1][..], &MAC[..]].concat(),
    };
    assert_eq!(
        ack.dns,
        vec![Dns::Add {
            name: "laptop".into(),
            ip,
            id: cid_id.clone()
        }]
    );
    assert_eq!(t.get(ip).unwrap().key_source, KeySource::ClientId);
    // The lease survives a store round trip with its source (see store tests); release and
    // expiry remove under the identity that was added.
    let mut rel = msg(Some(MessageType::Release), MAC);
    rel.set_ciaddr(ip);
    rel.opts_mut()
        .insert(DhcpOption::ClientIdentifier([&[1][..], &MAC[..]].concat()));
    let d = handle(&cfg, &t, &rel, &rx(&inner()));
    assert_eq!(
        d.dns,
        vec![Dns::Remove {
            name: "laptop".into(),
            ip,
            id: cid_id.clone()
        }]
    );
    let d = expire(&t, NOW + 43200 + 1, 100);
    assert_eq!(
        d.dns,
        vec![Dns::Remove {
            name: "laptop".into(),
            ip,
            id: cid_id.clone()
        }]
    );
    // A renewal with option 61 again updates nothing.
    let mut renew = msg(Some(MessageType::Request), MAC);
    renew.set_ciaddr(ip);
    renew
        .opts_mut()
        .insert(DhcpOption::ClientIdentifier([&[1][..], &MAC[..]].concat()));
    assert!(handle(&cfg, &t, &renew, &rx(&inner())).dns.is_empty());
}

#[test]
fn a_change_of_identity_republishes_the_name_under_the_new_one() {
    let cfg = config();
    let (mut t, ip, _) = lease_with_cid(&cfg);
    // A record from an earlier dhcpd: same key, source unknown, published as type 0.
    let mut l = t.get(ip).unwrap().clone();
    l.key_source = KeySource::Legacy;
    t.apply(&Change::Put(l));
    // Renewed without option 61: type 0 is what it has, nothing to do.
    let mut plain = msg(Some(MessageType::Request), MAC);
    plain.set_ciaddr(ip);
    let d = handle(&cfg, &t, &plain, &rx(&inner()));
    assert!(d.dns.is_empty());
    assert!(matches!(&d.changes[..], [Change::Put(l)] if l.key_source == KeySource::Hardware));
    // Renewed with option 61: the type-0 records go and type-1 ones are added.
    let cid = [&[1][..], &MAC[..]].concat();
    let mut renew = msg(Some(MessageType::Request), MAC);
    renew.set_ciaddr(ip);
    renew
        .opts_mut()
        .insert(DhcpOption::ClientIdentifier(cid.clone()));
    let d = handle(&cfg, &t, &renew, &rx(&inner()));
    assert_eq!(
        d.dns,
        vec![
            Dns::Remove {
                name: "laptop".into(),
                ip,
                id: mac_id(),
            },
            Dns::Add {
                name: "laptop".into(),
                ip,
                id: ClientId { kind: 1, data: cid },
            },
        ]
    );
}

#[test]
fn dns_actions_carry_the_identity_of_the_record_owner() {
    let cfg = config();
    let (t, ip) = lease(&cfg, MAC);
    // Another client takes the address after the first one's lease ran out: the first one's
    // name goes, under the first one's identity; the new one publishes under its own.
    let other = [2, 0, 0, 0, 0x10, 0x55];
    let mut req = msg(Some(MessageType::Request), other);
    req.opts_mut().insert(DhcpOption::RequestedIpAddress(ip));
    req.opts_mut()
        .insert(DhcpOption::ClientIdentifier(b"\x00other".to_vec()));
    req.opts_mut().insert(DhcpOption::Hostname("phone".into()));
    let addrs = inner();
    let mut later = rx(&addrs);
    later.now = NOW + 43200 + 1;
    let d = handle(&cfg, &t, &req, &later);
    assert_eq!(d.reply.as_ref().unwrap().kind, "ACK");
    assert_eq!(
        d.dns,
        vec![
            Dns::Remove {
                name: "laptop".into(),
                ip,
                id: mac_id(),
            },
            Dns::Add {
                name: "phone".into(),
                ip,
                id: ClientId {
                    kind: 1,
                    data: b"\x00other".to_vec()
                },
            },
        ]
    );
}

#[test]
fn client_id_reads_well_in_logs() {
    let id = ClientId {
        kind: 0,
        data: vec![1, 2, 0, 0, 0, 0x10, 0x99],
    };
    assert_eq!(format!("{id:?}"), "0/01:02:00:00:00:10:99");
}

#[test]
fn a_renewal_under_a_new_name_withdraws_the_old_one() {
    let cfg = config();
    let (t, ip) = lease(&cfg, MAC);
    let mut req = msg(Some(MessageType::Request), MAC);
    req.set_ciaddr(ip);
    req.opts_mut().insert(DhcpOption::Hostname("desk".into()));
    let d = handle(&cfg, &t, &req, &rx(&inner()));
    assert_eq!(d.reply.as_ref().unwrap().kind, "ACK");
    let id = mac_id();
    assert_eq!(
        d.dns,
        vec![
            Dns::Remove {
                name: "laptop".into(),
                ip,
                id: id.clone(),
            },
            Dns::Add {
                name: "desk".into(),
                ip,
                id,
            },
        ]
    );
    // The same name again: nothing to update.
    let mut same = msg(Some(MessageType::Request), MAC);
    same.set_ciaddr(ip);
    same.opts_mut()
        .insert(DhcpOption::Hostname("Laptop".into()));
    assert!(handle(&cfg, &t, &same, &rx(&inner())).dns.is_empty());
    // No name at all: the lease keeps its name (so that expiry still removes the records).
    let mut none = msg(Some(MessageType::Request), MAC);
    none.set_ciaddr(ip);
    let d = handle(&cfg, &t, &none, &rx(&inner()));
    assert!(d.dns.is_empty());
    assert!(matches!(
        &d.changes[..],
        [Change::Put(l)] if l.hostname.as_deref() == Some("laptop")
    ));
}

fn with_view(cfg: &ViewIndex, f: impl FnOnce(&mut hostfile::DhcpView)) -> ViewIndex {
    let mut v = (*cfg.view).clone();
    f(&mut v);
    ViewIndex::new(std::sync::Arc::new(v))
}

/// One MAC sending DISCOVERs under 43 client identifiers gets `leases-per-mac` OFFERs (4 by
/// default) instead of a pool's worth; another MAC is still served, and 0 lifts the bound.
#[test]
fn one_mac_with_many_client_ids_is_bounded_by_leases_per_mac() {
    let run = |cfg: &ViewIndex| {
        let mut t = LeaseTable::new();
        let mut offers = 0;
        for i in 0..43u8 {
            let mut m = msg(Some(MessageType::Discover), MAC);
            m.opts_mut()
                .insert(DhcpOption::ClientIdentifier(vec![0, 0x10, i]));
            let d = handle(cfg, &t, &m, &rx(&inner()));
            if d.reply.is_some() {
                offers += 1;
            }
            apply(&mut t, &d);
        }
        let other = handle(
            cfg,
            &t,
            &msg(Some(MessageType::Discover), [2, 0, 0, 0, 0x20, 1]),
            &rx(&inner()),
        );
        (offers, other.reply.is_some())
    };
    let cfg = config();
    assert_eq!(cfg.view.leases_per_mac, 4);
    assert_eq!(run(&cfg), (4, true));
    let unbounded = with_view(&cfg, |v| v.leases_per_mac = 0);
    assert_eq!(run(&unbounded), (43, true));
}

/// With `leases-per-mac = 1`, a REQUEST for a free address under a second client id of a MAC that
/// holds an offer is refused (a NAK on an authoritative subnet); with the bound lifted it is ACKed.
#[test]
fn a_request_under_one_client_id_too_many_is_refused() {
    let cfg = with_view(&config(), |v| v.leases_per_mac = 1);
    let mut t = LeaseTable::new();
    let mut first = msg(Some(MessageType::Discover), MAC);
    first
        .opts_mut()
        .insert(DhcpOption::ClientIdentifier(vec![0, 1]));
    let d = handle(&cfg, &t, &first, &rx(&inner()));
    assert!(d.reply.is_some());
    apply(&mut t, &d);
    // A free address: what another client would be offered now.
    let want = handle(
        &cfg,
        &t,
        &msg(Some(MessageType::Discover), [2, 0, 0, 0, 0x20, 2]),
        &rx(&inner()),
    )
    .reply
    .unwrap()
    .yiaddr;
    let mut req = msg(Some(MessageType::Request), MAC);
    req.opts_mut()
        .insert(DhcpOption::ClientIdentifier(vec![0, 2]));
    req.opts_mut().insert(DhcpOption::RequestedIpAddress(want));
    let d = handle(&cfg, &t, &req, &rx(&inner()));
    assert!(d.changes.is_empty(), "{d:?}");
    assert_eq!(
        d.reply.map(|r| r.kind),
        if cfg.subnet(1).authoritative {
            Some("NAK")
        } else {
            None
        }
    );
    let open = with_view(&cfg, |v| v.leases_per_mac = 0);
    let d = handle(&open, &t, &req, &rx(&inner()));
    assert_eq!(d.reply.map(|r| r.kind), Some("ACK"));
}

/// Dynamic BOOTP leases end after `dynamic-bootp-lease-length`, or at the cutoff when that comes
/// first, and then expire like any lease; without either they never end (ISC's default).
#[test]
fn dynamic_bootp_leases_end_at_the_configured_length_or_cutoff() {
    let bootp_expiry = |cfg: &ViewIndex| {
        let d = handle(cfg, &LeaseTable::new(), &msg(None, MAC), &rx(&inner()));
        assert_eq!(d.reply.as_ref().map(|r| r.kind), Some("BOOTREPLY"));
        match &d.changes[..] {
            [Change::Put(l)] => (l.expires, d),
            other => panic!("{other:?}"),
        }
    };
    let cfg = config();
    assert_eq!(bootp_expiry(&cfg).0, NEVER);
    let day = with_view(&cfg, |v| {
        v.dynamic_bootp_lease_length = Some(std::time::Duration::from_secs(86400));
    });
    assert_eq!(bootp_expiry(&day).0, NOW + 86400);
    let cut = with_view(&cfg, |v| {
        v.dynamic_bootp_lease_length = Some(std::time::Duration::from_secs(86400));
        v.dynamic_bootp_lease_cutoff = Some(NOW + 600);
    });
    let (end, d) = bootp_expiry(&cut);
    assert_eq!(end, NOW + 600);
    let mut t = LeaseTable::new();
    apply(&mut t, &d);
    let gone = expire(&t, NOW + 601, 100);
    assert!(
        matches!(&gone.changes[..], [Change::Put(l)] if l.state == LeaseState::Expired),
        "{gone:?}"
    );
}
