//! Dynamic DNS for DHCPv6 end to end: ISC `dhclient -6 -N` sending a Client FQDN option (RFC
//! 4704) gets an address, and dhcpd publishes its AAAA, the ip6.arpa PTR and a DHCID of type 2
//! over the client's DUID (RFC 4701) in the primary, dnsd or BIND 9 `named`, signed with the host
//! file's TSIG key; `dhclient -6 -r` removes them. A reservation's name is published without any
//! option from the client, and removed when the binding expires, also while dhcpd was down. A
//! client that sets the option's N flag (no updates) is not published.

mod common;

use std::net::{Ipv6Addr, SocketAddrV6, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use common::ddns::{dig, wait_for};
use dhcpd::v6::fqdn;
use dhcproto::v6::{
    DhcpOption, DhcpOptions, IANA, Message, MessageType, OptionCode, UnknownOption,
};
use dhcproto::{Decodable, Encodable};
use e2e::{Host, Lab, Proc, Ready};
use socket2::{Domain, Protocol, Socket, Type};

const SECRET: &str = "bGFuc3VpdGUtZXhhbXBsZS1rZXktY2hhbmdlLW1lLW5vdw==";

/// One IPv4 and one IPv6 subnet, a host reserved by DUID, dynamic DNS to 127.0.0.1 with the
/// key, and dnsd (when it is the primary) listening there and taking updates with that key.
fn hosts(valid: &str) -> String {
    format!(
        r#"domain = "lan.test"
[[subnet]]
network = "10.99.0.0/24"
[[subnet.pool]]
range = "10.99.0.100-10.99.0.200"
[[subnet]]
name = "lan6"
network = "fd00:99::/64"
preferred-lifetime = "{valid}"
valid-lifetime = "{valid}"
ra = false
[[subnet.pool]]
range = "fd00:99::1000-fd00:99::10ff"
[host.desk]
ip = "10.99.0.5"
ipv6 = "fd00:99::5"
duid = "00:03:00:01:02:00:00:00:99:05"
[key.dhcp-update]
algorithm = "hmac-sha256"
secret = "{SECRET}"
[dhcp]
ping-check = false
lease-db = "leases.redb"
ddns = {{ server = "127.0.0.1", key = "dhcp-update" }}
[dns]
listen = ["127.0.0.1"]
update-keys = ["dhcp-update"]
"#
    )
}

/// The DUID of the reserved host `desk` (DUID-LL).
const DESK_DUID: &[u8] = &[0, 3, 0, 1, 2, 0, 0, 0, 0x99, 5];

/// The ip6.arpa zone of fd00:99::/64, as dnsd names it.
fn zone6() -> String {
    let z = hostfile::reverse_origin6("fd00:99::/64".parse().unwrap());
    z.trim_end_matches('.').to_owned()
}

/// A server host `srv` (dhcpd and the DNS primary) and a client host `cl` on one link, without
/// duplicate address detection.
struct Net {
    lab: Lab,
    srv: Host,
    cl: Host,
    conf: PathBuf,
    state: PathBuf,
}

impl Net {
    fn build(prefix: &str, valid: &str) -> Net {
        let lab = Lab::new(prefix);
        let (srv, cl) = common::v6link::server_and_client(&lab, "10.99.0.1/24", "fd00:99::1/64");
        let conf = lab.dir().join("hosts.toml");
        std::fs::write(&conf, hosts(valid)).unwrap();
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

    fn dhcpd(&self) -> Proc {
        common::start(&self.srv, &self.conf, &self.state)
    }

    /// dnsd from the same host file, serving lan.test and the ip6.arpa zone.
    fn dnsd(&self) -> Proc {
        let state = self.lab.dir().join("dnsd");
        std::fs::create_dir_all(&state).unwrap();
        let bin = match e2e::try_bin_path("dnsd") {
            Ok(b) => b,
            Err(e) => panic!("{e} (cargo build -p dnsd first)"),
        };
        let p = self
            .srv
            .process(bin)
            .args(["--config", self.conf.to_str().unwrap()])
            .arg("--state-dir")
            .arg(&state)
            .arg("--runtime-dir")
            .arg(&state)
            .ready(Ready::Notify)
            .timeout(Duration::from_secs(15))
            .spawn();
        self.wait_zones();
        p
    }

    /// named, primary for lan.test and the ip6.arpa zone, updates allowed with the key.
    fn named(&self) -> Proc {
        let z = self.lab.dir().join("named");
        std::fs::create_dir_all(&z).unwrap();
        let soa = "$TTL 300\n@ IN SOA ns.lan.test. admin.lan.test. 1 3600 600 86400 300\n@ IN NS ns.lan.test.\n";
        std::fs::write(z.join("fwd.zone"), format!("{soa}ns IN A 10.99.0.1\n")).unwrap();
        std::fs::write(z.join("rev6.zone"), soa).unwrap();
        let (zd, rz) = (z.display(), zone6());
        std::fs::write(
            z.join("named.conf"),
            format!(
                r#"options {{ directory "{zd}"; pid-file "{zd}/named.pid"; listen-on port 53 {{ 127.0.0.1; }};
  listen-on-v6 {{ none; }}; recursion no; dnssec-validation no; allow-query {{ any; }}; }};
key "dhcp-update" {{ algorithm hmac-sha256; secret "{SECRET}"; }};
zone "lan.test" {{ type primary; file "{zd}/fwd.zone"; allow-update {{ key "dhcp-update"; }}; }};
zone "{rz}" {{ type primary; file "{zd}/rev6.zone"; allow-update {{ key "dhcp-update"; }}; }};
"#
            ),
        )
        .unwrap();
        let conf = z.join("named.conf");
        let p = self
            .srv
            .process("named")
            .args(["-g", "-4", "-u", "root", "-c", conf.to_str().unwrap()])
            .ready(Ready::Log("all zones loaded".into()))
            .timeout(Duration::from_secs(15))
            .spawn();
        self.wait_zones();
        p
    }

    /// Until the primary answers for both zones.
    fn wait_zones(&self) {
        wait_for("the DNS primary to serve its zones", || {
            !dig(&self.srv, &["lan.test", "SOA"]).is_empty()
                && !dig(&self.srv, &[zone6().as_str(), "SOA"]).is_empty()
        });
    }
}

/// The DHCID (base64, as dig prints it) of a DHCPv6 client: type 2 over its DUID.
fn dhcid6(duid: &[u8], label: &str) -> String {
    let fqdn = hickory_proto::rr::Name::from_ascii(format!("{label}.lan.test.")).unwrap();
    let id = dhcpd::ddns::v6::client_id(duid);
    base64::engine::general_purpose::STANDARD.encode(dhcpd::ddns::dhcid_rdata(&id, &fqdn))
}

/// The client's MAC (its DUID-LL with `dhclient -D LL` is 00:03:00:01 and the MAC).
fn mac_of(h: &Host) -> [u8; 6] {
    let out = h.ip(&["-o", "link", "show", "dev", "eth0"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mac = text
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap_or_else(|| panic!("no MAC in {text}"));
    let b: Vec<u8> = mac
        .split(':')
        .map(|x| u8::from_str_radix(x, 16).unwrap())
        .collect();
    b.try_into().unwrap()
}

/// Runs `dhclient -6 -N -D LL` with `extra` (`-1` to get a lease, `-r` to release it), the
/// configuration `cf` and the lease file `lf`; stops the daemon it leaves behind.
fn dhclient(net: &Net, extra: &str, cf: &Path, lf: &Path) -> std::process::Output {
    let pf = lf.with_extension("pid");
    let out = net.cl.run_unchecked(&[
        "timeout",
        "30",
        "dhclient",
        "-6",
        "-N",
        "-D",
        "LL",
        extra,
        "-v",
        "-sf",
        "/bin/true",
        "-cf",
        cf.to_str().unwrap(),
        "-lf",
        lf.to_str().unwrap(),
        "-pf",
        pf.to_str().unwrap(),
        "eth0",
    ]);
    common::dhclient6::stop_one_shot(&net.cl, &pf, extra == "-1" && out.status.success());
    out
}

const ALL_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);

/// A crafted DHCPv6 client on `cl`'s eth0, port 546.
struct Crafted {
    sock: UdpSocket,
    idx: u32,
}

impl Crafted {
    fn new(net: &Net) -> Crafted {
        net.cl.enter(|| {
            let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).unwrap();
            s.set_only_v6(true).unwrap();
            s.bind_device(Some(b"eth0")).unwrap();
            s.bind(&SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 546, 0, 0).into())
                .unwrap();
            s.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let idx = nix::net::if_::if_nametoindex("eth0").unwrap();
            Crafted {
                sock: s.into(),
                idx,
            }
        })
    }

    /// Sends `m` to ff02::1:2 every 200 ms until the answer with its xid (or 5 s pass).
    fn exchange(&self, m: &Message) -> Option<Message> {
        let to = SocketAddrV6::new(ALL_SERVERS, 547, 0, self.idx);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            self.sock.send_to(&m.to_vec().unwrap(), to).unwrap();
            while let Ok((n, _)) = self.sock.recv_from(&mut buf) {
                if let Ok(r) = Message::decode(&mut dhcproto::Decoder::new(&buf[..n]))
                    && r.xid() == m.xid()
                {
                    return Some(r);
                }
            }
        }
        None
    }

    /// SOLICIT and REQUEST for one IA_NA from `duid`, with a Client FQDN for `name` (S set)
    /// when given; the bound address.
    fn bind(&self, duid: &[u8], name: Option<&str>, xid: u8) -> Ipv6Addr {
        self.bind_with(duid, name.map(|n| (fqdn::FLAG_S, n)), xid).0
    }

    /// As [`Crafted::bind`] with the Client FQDN's flags given; the address and the REPLY.
    fn bind_with(&self, duid: &[u8], name: Option<(u8, &str)>, xid: u8) -> (Ipv6Addr, Message) {
        let msg = |t, xid, server: Option<&[u8]>, ia: DhcpOptions| {
            let mut m = Message::new_with_id(t, [6, 6, xid]);
            let o = m.opts_mut();
            o.insert(DhcpOption::ClientId(duid.to_vec()));
            if let Some(s) = server {
                o.insert(DhcpOption::ServerId(s.to_vec()));
            }
            o.insert(DhcpOption::IANA(IANA {
                id: 1,
                t1: 0,
                t2: 0,
                opts: ia,
            }));
            if let Some((flags, n)) = name {
                o.insert(DhcpOption::Unknown(UnknownOption::new(
                    OptionCode::ClientFqdn,
                    fqdn::encode(flags, n),
                )));
            }
            m
        };
        let adv = self
            .exchange(&msg(MessageType::Solicit, xid, None, DhcpOptions::new()))
            .expect("ADVERTISE");
        let Some(DhcpOption::ServerId(sid)) = adv.opts().get(OptionCode::ServerId) else {
            panic!("no server id in {adv:?}");
        };
        let Some(DhcpOption::IANA(ia)) = adv.opts().get(OptionCode::IANA) else {
            panic!("no IA_NA in {adv:?}");
        };
        let req = msg(MessageType::Request, xid + 1, Some(sid), ia.opts.clone());
        let rep = self.exchange(&req).expect("REPLY");
        let Some(DhcpOption::IANA(ia)) = rep.opts().get(OptionCode::IANA) else {
            panic!("no IA_NA in {rep:?}");
        };
        match ia.opts.get(OptionCode::IAAddr) {
            Some(DhcpOption::IAAddr(a)) => (a.addr, rep.clone()),
            o => panic!("no address in {rep:?}: {o:?}"),
        }
    }

    /// An INFORMATION-REQUEST: any message makes the server's core look for ended bindings.
    fn poke(&self, xid: u8) {
        let mut m = Message::new_with_id(MessageType::InformationRequest, [5, 5, xid]);
        m.opts_mut().insert(DhcpOption::ClientId(vec![
            0, 3, 0, 1, 2, 0, 0, 0, 0x99, 0xee,
        ]));
        self.exchange(&m).expect("REPLY to INFORMATION-REQUEST");
    }
}

/// dhclient gets an address with its name; AAAA, PTR and DHCID appear; the REPLY carried the
/// Client FQDN option back; dhclient's release removes all of them.
fn dhclient_publishes_and_releases(net: &Net, d: &mut Proc) {
    let dir = net.lab.dir();
    let cf = dir.join("dhclient6.conf");
    std::fs::write(
        &cf,
        "send fqdn.fqdn \"laptop6.\";\nsend fqdn.server-update on;\nalso request dhcp6.fqdn;\n",
    )
    .unwrap();
    let lf = dir.join("dhclient6.leases");
    let out = dhclient(net, "-1", &cf, &lf);
    let text = std::fs::read_to_string(&lf).unwrap_or_default();
    assert!(
        out.status.success(),
        "dhclient: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let addr: Ipv6Addr = text
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("iaaddr "))
        .map(|v| v.trim_end_matches('{').trim().to_owned())
        .expect("an address in the lease file")
        .parse()
        .unwrap();
    let a = addr.to_string();
    wait_for("the AAAA record", || {
        dig(&net.srv, &["laptop6.lan.test", "AAAA"]) == a
    });
    wait_for("the PTR record", || {
        dig(&net.srv, &["-x", &a]) == "laptop6.lan.test."
    });
    let duid = [&[0, 3, 0, 1][..], &mac_of(&net.cl)[..]].concat();
    let want = dhcid6(&duid, "laptop6");
    assert_eq!(dig(&net.srv, &["laptop6.lan.test", "DHCID"]), want);
    let rev = hostfile::ptr_name6(addr);
    assert_eq!(dig(&net.srv, &[rev.as_str(), "DHCID"]), want);
    // The REPLY named the server's choice back with S set (dhclient keeps the option).
    for line in [
        "option fqdn.fqdn \"laptop6.lan.test\";",
        "option fqdn.server-update true;",
    ] {
        assert!(text.contains(line), "no {line:?} in the lease:\n{text}");
    }
    d.wait_for_log("dynamic DNS update done", Duration::from_secs(1))
        .unwrap();

    // Another client (another DUID) asking for the same name neither takes it over nor gets a
    // PTR for it (RFC 4703: its DHCID differs).
    let at = d.log_cursor();
    let other = Crafted::new(net).bind(&[0, 3, 0, 1, 2, 0, 0, 0, 0x99, 0x77], Some("laptop6."), 10);
    assert_ne!(other, addr);
    d.wait_for_log_after(at, "held by another client", Duration::from_secs(10))
        .unwrap();
    assert_eq!(dig(&net.srv, &["laptop6.lan.test", "AAAA"]), a);
    assert_eq!(dig(&net.srv, &["laptop6.lan.test", "DHCID"]), want);
    assert_eq!(dig(&net.srv, &["-x", &other.to_string()]), "");

    // Released: the records go, and the DHCID prerequisite matched (nothing left alone).
    let out = dhclient(net, "-r", &cf, &lf);
    assert!(
        out.status.success(),
        "dhclient -r: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for("the AAAA record to go", || {
        dig(&net.srv, &["laptop6.lan.test", "AAAA"]).is_empty()
    });
    wait_for("the PTR record to go", || {
        dig(&net.srv, &["-x", &a]).is_empty()
    });
    wait_for("the DHCID record to go", || {
        dig(&net.srv, &["laptop6.lan.test", "DHCID"]).is_empty()
    });
    assert!(
        !d.stderr().contains("no longer this client's"),
        "the release's DHCID did not match the one added"
    );
}

#[test]
fn dhclient6_name_gets_aaaa_ptr_and_dhcid_in_dnsd_and_loses_them_on_release() {
    e2e::require_netns!("dhclient", "dig");
    let net = Net::build("dd6dn", "3000s");
    let _dnsd = net.dnsd();
    let mut d = net.dhcpd();
    dhclient_publishes_and_releases(&net, &mut d);
}

#[test]
fn dhclient6_name_gets_aaaa_ptr_and_dhcid_in_bind_and_loses_them_on_release() {
    e2e::require_netns!("dhclient", "dig", "named");
    let net = Net::build("dd6bn", "3000s");
    let _named = net.named();
    let mut d = net.dhcpd();
    dhclient_publishes_and_releases(&net, &mut d);
}

/// `desk` is reserved by DUID: its name is published without a Client FQDN option. It goes
/// when the binding ends (the shortest valid lifetime, 60 s) while dhcpd runs; a binding that
/// ends while dhcpd is down loses its name when dhcpd starts again. Against BIND: dnsd serves
/// the host file's names itself and refuses updates to them.
#[test]
fn a_reserved_name_is_published_and_goes_when_the_binding_ends_even_while_dhcpd_is_down() {
    e2e::require_netns!("dig", "named");
    let net = Net::build("dd6ex", "60s");
    let _named = net.named();
    let mut d = net.dhcpd();
    let c = Crafted::new(&net);
    let t0 = Instant::now();
    let desk = c.bind(DESK_DUID, None, 20);
    assert_eq!(desk, "fd00:99::5".parse::<Ipv6Addr>().unwrap());
    wait_for("desk's AAAA", || {
        dig(&net.srv, &["desk.lan.test", "AAAA"]) == "fd00:99::5"
    });
    wait_for("desk's PTR", || {
        dig(&net.srv, &["-x", "fd00:99::5"]) == "desk.lan.test."
    });
    assert_eq!(
        dig(&net.srv, &["desk.lan.test", "DHCID"]),
        dhcid6(DESK_DUID, "desk")
    );
    // A client with a name of its own, bound 20 s later (it ends 20 s after desk).
    let duid = [0, 3, 0, 1, 2, 0, 0, 0, 0x99, 0x42];
    let wait_until = |t: Instant| {
        // Waiting for time itself (a lifetime to run out), not for another process.
        std::thread::sleep(t.saturating_duration_since(Instant::now()));
    };
    wait_until(t0 + Duration::from_secs(20));
    let t1 = Instant::now();
    let tablet = c.bind(&duid, Some("tablet"), 30).to_string();
    wait_for("tablet's AAAA", || {
        dig(&net.srv, &["tablet.lan.test", "AAAA"]) == tablet
    });

    // desk's binding ends with dhcpd running: its records go.
    wait_until(t0 + Duration::from_secs(61));
    let deadline = Instant::now() + Duration::from_secs(45);
    let mut xid = 40;
    while !dig(&net.srv, &["desk.lan.test", "AAAA"]).is_empty() {
        assert!(
            Instant::now() < deadline,
            "desk's AAAA outlived its binding"
        );
        c.poke(xid);
        xid = xid.wrapping_add(1);
    }
    wait_for("desk's PTR to go", || {
        dig(&net.srv, &["-x", "fd00:99::5"]).is_empty()
    });
    wait_for("desk's DHCID to go", || {
        dig(&net.srv, &["desk.lan.test", "DHCID"]).is_empty()
    });
    assert_eq!(dig(&net.srv, &["tablet.lan.test", "AAAA"]), tablet);

    // tablet's binding ends while dhcpd is down (kill -9): its records go when dhcpd starts.
    d.signal(nix::sys::signal::Signal::SIGKILL);
    d.wait_exit(Duration::from_secs(5));
    wait_until(t1 + Duration::from_secs(61));
    assert_eq!(dig(&net.srv, &["tablet.lan.test", "AAAA"]), tablet);
    let _d = net.dhcpd();
    wait_for("tablet's AAAA to go", || {
        dig(&net.srv, &["tablet.lan.test", "AAAA"]).is_empty()
    });
    wait_for("tablet's PTR to go", || {
        dig(&net.srv, &["-x", &tablet]).is_empty()
    });
    wait_for("tablet's DHCID to go", || {
        dig(&net.srv, &["tablet.lan.test", "DHCID"]).is_empty()
    });
}

/// RFC 4704 N ("no updates"): the REPLY says N=1, S=0, and neither AAAA nor PTR appears, while a
/// client after it (S) is published: its records, once there, show the queue went past the
/// first client's binding (the updates run in order), so the first one's absence is not a race.
#[test]
fn a_client_setting_n_is_not_published() {
    e2e::require_netns!("dig");
    let net = Net::build("dd6nn", "3000s");
    let _dnsd = net.dnsd();
    let _d = net.dhcpd();
    let c = Crafted::new(&net);
    let (quiet, rep) = c.bind_with(
        &[0, 3, 0, 1, 2, 0, 0, 0, 0x99, 0x41],
        Some((fqdn::FLAG_N, "quiet6.")),
        30,
    );
    let Some(DhcpOption::Unknown(f)) = rep.opts().get(OptionCode::ClientFqdn) else {
        panic!("no Client FQDN in {rep:?}");
    };
    let f = fqdn::parse(f.data()).unwrap();
    assert_eq!(f.flags, fqdn::FLAG_N, "N=1, S=0, O=0");
    assert_eq!(f.labels, ["quiet6", "lan", "test"]);
    let loud = c.bind(&[0, 3, 0, 1, 2, 0, 0, 0, 0x99, 0x42], Some("loud6."), 40);
    wait_for("the second client's AAAA", || {
        dig(&net.srv, &["loud6.lan.test", "AAAA"]) == loud.to_string()
    });
    wait_for("the second client's PTR", || {
        dig(&net.srv, &["-x", &loud.to_string()]) == "loud6.lan.test."
    });
    assert_eq!(dig(&net.srv, &["quiet6.lan.test", "AAAA"]), "");
    assert_eq!(dig(&net.srv, &["-x", &quiet.to_string()]), "");
}
