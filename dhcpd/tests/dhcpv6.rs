//! DHCPv6 end to end: a crafted client (SOLICIT/REQUEST/RENEW, bad input) and ISC `dhclient -6`
//! for an address (`-N`) and a prefix (`-P`), against dhcpd in a namespace, across `kill -9`;
//! a crafted relay for a subnet on no local interface.

mod common;

use std::net::{Ipv6Addr, SocketAddrV6, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use common::dhclient6::last_item;
use dhcproto::v6::{DhcpOption, DhcpOptions, IANA, IAPD, Message, MessageType, OptionCode};
use dhcproto::{Decodable, Encodable};
use e2e::{Host, Lab};
use nix::sys::signal::Signal;
use socket2::{Domain, Protocol, Socket, Type};

const HOSTS: &str = r#"domain = "lan.test"
[[subnet]]
network = "10.99.0.0/24"
[[subnet.pool]]
range = "10.99.0.100-10.99.0.200"
[[subnet]]
name = "lan6"
network = "fd00:99::/64"
dns = ["fd00:99::1"]
search = ["lan.test"]
preferred-lifetime = "3000s"
valid-lifetime = "4000s"
ra = false
[[subnet.pool]]
range = "fd00:99::1000-fd00:99::10ff"
[[subnet.pd-pool]]
prefix = "fd00:1000::/48"
delegated-length = 56
[[subnet]]
name = "remote6"
network = "fd00:98::/64"
[[subnet.pool]]
range = "fd00:98::100-fd00:98::1ff"
[dhcp]
lease-db = "leases.redb"
"#;

const ALL_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);

/// A server host `srv` and a client host `cl` on one link, without duplicate address detection
/// (addresses usable at once), dhcpd running on `srv`.
struct Net {
    lab: Lab,
    srv: Host,
    cl: Host,
    conf: std::path::PathBuf,
    state: std::path::PathBuf,
}

impl Net {
    fn build(prefix: &str) -> Net {
        let lab = Lab::new(prefix);
        let (srv, cl) = common::v6link::server_and_client(&lab, "10.99.0.1/24", "fd00:99::1/64");
        let conf = lab.dir().join("hosts.toml");
        std::fs::write(&conf, HOSTS).unwrap();
        let state = lab.dir().join("state");
        std::fs::create_dir_all(&state).unwrap();
        Net {
            lab,
            srv,
            cl,
            conf,
            state,
        }
    }
    fn start(&self) -> e2e::Proc {
        common::start(&self.srv, &self.conf, &self.state)
    }
}

/// A crafted client socket on `cl`'s eth0, port 546.
fn client_socket(net: &Net) -> (UdpSocket, u32) {
    net.cl.enter(|| {
        let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).unwrap();
        s.set_only_v6(true).unwrap();
        s.bind_device(Some(b"eth0")).unwrap();
        s.bind(&SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 546, 0, 0).into())
            .unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let idx = nix::net::if_::if_nametoindex("eth0").unwrap();
        (s.into(), idx)
    })
}

fn exchange(sock: &UdpSocket, idx: u32, m: &Message, timeout: Duration) -> Option<Message> {
    let to = SocketAddrV6::new(ALL_SERVERS, 547, 0, idx);
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    // Resend each 200 ms (as a client retransmits) until an answer with our xid or the deadline.
    while Instant::now() < deadline {
        sock.send_to(&m.to_vec().unwrap(), to).unwrap();
        while let Ok((n, _)) = sock.recv_from(&mut buf) {
            if let Ok(r) = Message::decode(&mut dhcproto::Decoder::new(&buf[..n]))
                && r.xid() == m.xid()
            {
                return Some(r);
            }
        }
    }
    None
}

const DUID: &[u8] = &[0, 3, 0, 1, 2, 0, 0, 0, 0x99, 1];

fn client_msg(t: MessageType, xid: u8, server: Option<&[u8]>, ia: DhcpOptions) -> Message {
    let mut m = Message::new_with_id(t, [7, 7, xid]);
    let o = m.opts_mut();
    o.insert(DhcpOption::ClientId(DUID.to_vec()));
    if let Some(s) = server {
        o.insert(DhcpOption::ServerId(s.to_vec()));
    }
    o.insert(DhcpOption::IANA(IANA {
        id: 1,
        t1: 0,
        t2: 0,
        opts: ia,
    }));
    o.insert(DhcpOption::IAPD(IAPD {
        id: 2,
        t1: 0,
        t2: 0,
        opts: DhcpOptions::new(),
    }));
    m
}

fn server_id(m: &Message) -> Vec<u8> {
    match m.opts().get(OptionCode::ServerId) {
        Some(DhcpOption::ServerId(s)) => s.clone(),
        o => panic!("no server id: {o:?}"),
    }
}

/// The IA_NA of a reply with its address option list, and the address.
fn na(m: &Message) -> (DhcpOptions, Ipv6Addr) {
    let Some(DhcpOption::IANA(ia)) = m.opts().get(OptionCode::IANA) else {
        panic!("no IA_NA in {m:?}");
    };
    let Some(DhcpOption::IAAddr(a)) = ia.opts.get(OptionCode::IAAddr) else {
        panic!("no address in {m:?}");
    };
    (ia.opts.clone(), a.addr)
}

fn in_pool(a: Ipv6Addr) -> bool {
    (Ipv6Addr::new(0xfd00, 0x99, 0, 0, 0, 0, 0, 0x1000)
        ..=Ipv6Addr::new(0xfd00, 0x99, 0, 0, 0, 0, 0, 0x10ff))
        .contains(&a)
}

#[test]
fn crafted_client_binds_renews_after_kill_9_and_bad_input_is_ignored() {
    e2e::require_netns!();
    let net = Net::build("dhcp6c");
    let mut d = net.start();
    let (sock, idx) = client_socket(&net);
    let t = Duration::from_secs(5);
    // Garbage and a truncated message first: the server must keep answering.
    let to = SocketAddrV6::new(ALL_SERVERS, 547, 0, idx);
    sock.send_to(&[1, 2], to).unwrap();
    sock.send_to(&[3, 1, 2, 3, 0, 3, 0, 40, 0], to).unwrap();
    let adv = exchange(
        &sock,
        idx,
        &client_msg(MessageType::Solicit, 1, None, DhcpOptions::new()),
        t,
    )
    .expect("ADVERTISE");
    assert_eq!(adv.msg_type(), MessageType::Advertise);
    let sid = server_id(&adv);
    let (hint, offered) = na(&adv);
    assert!(in_pool(offered), "{offered}");
    let rep = exchange(
        &sock,
        idx,
        &client_msg(MessageType::Request, 2, Some(&sid), hint.clone()),
        t,
    )
    .expect("REPLY");
    assert_eq!(rep.msg_type(), MessageType::Reply);
    let (held, bound) = na(&rep);
    assert_eq!(bound, offered);
    match rep.opts().get(OptionCode::IAPD) {
        Some(DhcpOption::IAPD(pd)) => match pd.opts.get(OptionCode::IAPrefix) {
            Some(DhcpOption::IAPrefix(p)) => assert_eq!(p.prefix_len, 56),
            o => panic!("no prefix: {o:?}"),
        },
        o => panic!("no IA_PD: {o:?}"),
    }
    d.signal(Signal::SIGKILL);
    let _ = d.wait_exit(Duration::from_secs(5));
    let _d = net.start();
    let ren = exchange(
        &sock,
        idx,
        &client_msg(MessageType::Renew, 3, Some(&sid), held),
        t,
    )
    .expect("REPLY to RENEW");
    assert_eq!(
        server_id(&ren),
        sid,
        "the server DUID is kept across restarts"
    );
    assert_eq!(na(&ren).1, bound, "the binding survived kill -9");
    // Another client does not get the bound address.
    let mut other = client_msg(MessageType::Solicit, 4, None, DhcpOptions::new());
    other.opts_mut().remove(OptionCode::ClientId);
    other
        .opts_mut()
        .insert(DhcpOption::ClientId(vec![0, 3, 0, 1, 2, 0, 0, 0, 0x99, 2]));
    let adv2 = exchange(&sock, idx, &other, t).expect("ADVERTISE");
    assert_ne!(na(&adv2).1, bound);
}

fn dhclient(net: &Net, mode: &str, lf: &Path) -> std::process::Output {
    common::dhclient6::one_shot(&net.cl, mode, "", lf)
}

#[test]
fn dhclient_gets_an_address_and_a_prefix_and_keeps_them_across_kill_9() {
    e2e::require_netns!("dhclient");
    let net = Net::build("dhcp6dcl");
    let mut d = net.start();
    let lf = net.lab.dir().join("dhclient6.leases");
    let out = dhclient(&net, "-N", &lf);
    let text = std::fs::read_to_string(&lf).unwrap_or_default();
    assert!(
        out.status.success(),
        "{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let addr: Ipv6Addr = last_item(&text, "iaaddr").expect("iaaddr").parse().unwrap();
    assert!(in_pool(addr), "{addr}\n{text}");

    let lfp = net.lab.dir().join("dhclient6-pd.leases");
    let out = dhclient(&net, "-P", &lfp);
    let text = std::fs::read_to_string(&lfp).unwrap_or_default();
    assert!(
        out.status.success(),
        "{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let prefix: ipnet::Ipv6Net = last_item(&text, "iaprefix")
        .expect("iaprefix")
        .parse()
        .unwrap();
    assert_eq!(prefix.prefix_len(), 56, "{text}");
    assert!(
        "fd00:1000::/48"
            .parse::<ipnet::Ipv6Net>()
            .unwrap()
            .contains(&prefix)
    );

    // After kill -9 the server still knows the binding: another client is not offered it.
    d.signal(Signal::SIGKILL);
    let _ = d.wait_exit(Duration::from_secs(5));
    let _d = net.start();
    let (sock, idx) = client_socket(&net);
    let adv = exchange(
        &sock,
        idx,
        &client_msg(MessageType::Solicit, 9, None, DhcpOptions::new()),
        Duration::from_secs(5),
    )
    .expect("ADVERTISE");
    let offered = na(&adv).1;
    assert!(
        in_pool(offered) && offered != addr,
        "{offered} (dhclient holds {addr})"
    );
}

/// The options of a relay message (after its 34-octet header) as (code, body).
fn relay_opts(b: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    let mut o = &b[34..];
    while o.len() >= 4 {
        let code = u16::from_be_bytes([o[0], o[1]]);
        let len = usize::from(u16::from_be_bytes([o[2], o[3]]));
        out.push((code, o[4..4 + len].to_vec()));
        o = &o[4 + len..];
    }
    out
}

#[test]
fn a_relayed_solicit_gets_an_address_of_the_relays_link_and_its_interface_id_back() {
    e2e::require_netns!();
    let net = Net::build("dhcp6rl");
    let _d = net.start();
    net.cl
        .ip(&["addr", "add", "fd00:99::2/64", "dev", "eth0", "nodad"]);
    let sock: UdpSocket = net.cl.enter(|| {
        let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).unwrap();
        s.set_only_v6(true).unwrap();
        s.bind(&SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 547, 0, 0).into())
            .unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        s.into()
    });
    let client = client_msg(MessageType::Solicit, 5, None, DhcpOptions::new())
        .to_vec()
        .unwrap();
    let link: Ipv6Addr = "fd00:98::1".parse().unwrap();
    let peer: Ipv6Addr = "fe80::99".parse().unwrap();
    let mut forw = vec![12u8, 0];
    forw.extend_from_slice(&link.octets());
    forw.extend_from_slice(&peer.octets());
    forw.extend_from_slice(&[0, 18, 0, 4]);
    forw.extend_from_slice(b"ge-1");
    forw.extend_from_slice(&[0, 9]);
    forw.extend_from_slice(&u16::try_from(client.len()).unwrap().to_be_bytes());
    forw.extend_from_slice(&client);
    let to = SocketAddrV6::new("fd00:99::1".parse().unwrap(), 547, 0, 0);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 4096];
    let repl = 'got: loop {
        assert!(Instant::now() < deadline, "no RELAY-REPL");
        sock.send_to(&forw, to).unwrap();
        while let Ok((n, _)) = sock.recv_from(&mut buf) {
            if buf[0] == 13 {
                break 'got buf[..n].to_vec();
            }
        }
    };
    assert_eq!(&repl[2..18], &link.octets());
    assert_eq!(&repl[18..34], &peer.octets());
    let opts = relay_opts(&repl);
    assert!(
        opts.contains(&(18, b"ge-1".to_vec())),
        "interface-id echoed: {opts:?}"
    );
    let inner = &opts.iter().find(|(c, _)| *c == 9).expect("relay message").1;
    let adv = Message::decode(&mut dhcproto::Decoder::new(inner)).unwrap();
    assert_eq!(adv.msg_type(), MessageType::Advertise);
    let a = na(&adv).1;
    let remote = Ipv6Addr::new(0xfd00, 0x98, 0, 0, 0, 0, 0, 0x100)
        ..=Ipv6Addr::new(0xfd00, 0x98, 0, 0, 0, 0, 0, 0x1ff);
    assert!(remote.contains(&a), "{a} is not from the relay's subnet");
}
