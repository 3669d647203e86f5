//! Router advertisements end to end: `rdisc6` (ndisc6) reads the flags, prefix, RDNSS and DNSSL
//! of the host file; the client kernel's own SLAAC takes an address in the prefix and a default
//! route, which the final advertisement (router lifetime 0) takes away on SIGTERM; `ra = false`
//! sends nothing; garbage ICMPv6 does not stop the advertiser.

mod common;

use std::net::{Ipv6Addr, SocketAddrV6};
use std::time::{Duration, Instant};

use e2e::{Host, Lab};
use nix::sys::signal::Signal;
use socket2::{Domain, Protocol, Socket, Type};

fn hosts(ra: bool) -> String {
    format!(
        r#"domain = "lan.test"
[[subnet]]
network = "10.97.0.0/24"
[[subnet.pool]]
range = "10.97.0.100-10.97.0.200"
[[subnet]]
name = "ra6"
network = "fd00:97::/64"
dns = ["fd00:97::1", "fd00:97::53"]
search = ["lan.test", "example.org"]
mtu = 1400
preferred-lifetime = "3000s"
valid-lifetime = "4000s"
slaac = true
ra = {ra}
[[subnet.pool]]
range = "fd00:97::1000-fd00:97::10ff"
[dhcp]
lease-db = "leases.redb"
"#
    )
}

/// A server `srv` running dhcpd and a client `cl` on one link; the client's kernel takes router
/// advertisements (SLAAC on, no duplicate address detection, not a router).
struct Net {
    _lab: Lab,
    srv: Host,
    cl: Host,
    conf: std::path::PathBuf,
    state: std::path::PathBuf,
}

impl Net {
    fn build(prefix: &str, ra: bool) -> Net {
        let lab = Lab::new(prefix);
        let (srv, cl) = (lab.host("srv"), lab.host("cl"));
        srv.sysctl("net.ipv6.conf.all.accept_dad", "0");
        srv.sysctl("net.ipv6.conf.default.accept_dad", "0");
        lab.veth(&srv, "eth0", &cl, "eth0");
        srv.sysctl("net.ipv6.conf.eth0.accept_dad", "0");
        srv.add_addr("eth0", "10.97.0.1/24");
        srv.ip(&["addr", "add", "fd00:97::1/64", "dev", "eth0", "nodad"]);
        // The client interface is already up: set it, then bounce it so the kernel solicits.
        cl.ip(&["link", "set", "eth0", "down"]);
        for (k, v) in [
            ("forwarding", "0"),
            ("accept_ra", "2"),
            ("autoconf", "1"),
            ("accept_dad", "0"),
        ] {
            cl.sysctl(&format!("net.ipv6.conf.eth0.{k}"), v);
        }
        cl.link_up("eth0");
        for h in [&srv, &cl] {
            wait_until(
                h,
                &["-6", "addr", "show", "dev", "eth0", "scope", "link"],
                |t| t.contains("fe80:") && !t.contains("tentative"),
            );
        }
        let conf = lab.dir().join("hosts.toml");
        std::fs::write(&conf, hosts(ra)).unwrap();
        let state = lab.dir().join("state");
        std::fs::create_dir_all(&state).unwrap();
        Net {
            _lab: lab,
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

/// Runs `ip args` on `h` until its output satisfies `ok` (bounded: 30 s); returns that output.
fn wait_until(h: &Host, args: &[&str], ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = String::from_utf8_lossy(&h.ip(args).stdout).into_owned();
        if ok(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "ip {args:?} never matched: {text}"
        );
        std::thread::yield_now();
    }
}

/// `rdisc6` on the client.
fn rdisc6(net: &Net) -> std::process::Output {
    common::v6link::rdisc6(&net.cl)
}

/// rdisc6's `Name : value` lines as (name, value) pairs.
fn fields(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn values(f: &[(String, String)], key: &str) -> Vec<String> {
    f.iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .collect()
}

/// Sends malformed and invalid ICMPv6 from the client to the all-routers group.
fn send_garbage(net: &Net) {
    net.cl.enter(|| {
        let s = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6)).unwrap();
        s.bind_device(Some(b"eth0")).unwrap();
        s.set_multicast_hops_v6(255).unwrap();
        let idx = nix::net::if_::if_nametoindex("eth0").unwrap();
        let to: socket2::SockAddr = SocketAddrV6::new("ff02::2".parse().unwrap(), 0, 0, idx).into();
        let mut msgs: Vec<Vec<u8>> = vec![
            vec![133, 0, 0, 0],
            vec![133, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
            vec![133, 0, 0, 0, 0, 0, 0, 0, 1, 9, 2, 0],
            vec![133, 7, 0, 0, 0, 0, 0, 0],
            vec![
                134, 0, 0, 0, 64, 0xc0, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 3, 4,
            ],
        ];
        let mut x: u32 = 0x1234_5678;
        for i in 0..200 {
            let len = 4 + (i % 60);
            let mut m: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            m[0] = 133;
            msgs.push(m);
        }
        for m in &msgs {
            // Some are refused by the kernel already; what reaches the server must not hurt it.
            let _ = s.send_to(m, &to);
        }
        // A well-formed solicitation with a hop limit other than 255: must be ignored.
        s.set_multicast_hops_v6(64).unwrap();
        let _ = s.send_to(&[133, 0, 0, 0, 0, 0, 0, 0], &to);
    });
}

#[test]
fn rdisc6_sees_the_flags_prefix_rdnss_and_dnssl_even_after_garbage() {
    e2e::require_netns!("rdisc6");
    let net = Net::build("ra6disc", true);
    let mut d = net.start();
    d.wait_for_log(
        "router advertisements on eth0 for fd00:97::/64",
        Duration::from_secs(5),
    )
    .expect("dhcpd logs the advertising interface");
    send_garbage(&net);
    let out = rdisc6(&net);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "rdisc6 got no advertisement:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f = fields(&text);
    let one = |k: &str| values(&f, k).first().cloned().unwrap_or_default();
    assert_eq!(one("Stateful address conf."), "Yes", "M flag\n{text}");
    assert_eq!(one("Stateful other conf."), "Yes", "O flag\n{text}");
    assert!(one("Router lifetime").starts_with("1800 "), "{text}");
    assert_eq!(one("Prefix"), "fd00:97::/64", "{text}");
    assert_eq!(one("On-link"), "Yes", "{text}");
    assert_eq!(one("Autonomous address conf."), "Yes", "{text}");
    assert!(one("Valid time").starts_with("4000 "), "{text}");
    assert!(one("Pref. time").starts_with("3000 "), "{text}");
    assert!(one("MTU").starts_with("1400 "), "{text}");
    assert_eq!(
        values(&f, "Recursive DNS server"),
        ["fd00:97::1", "fd00:97::53"],
        "{text}"
    );
    let search = values(&f, "DNS search list").join(" ");
    assert_eq!(
        search.split_whitespace().collect::<Vec<_>>(),
        ["lan.test", "example.org"],
        "{text}"
    );
    // From the server's interface: its link-layer address, its link-local address.
    let link = String::from_utf8_lossy(&net.srv.ip(&["link", "show", "dev", "eth0"]).stdout)
        .to_lowercase();
    let mac = one("Source link-layer address").to_lowercase();
    assert!(
        mac.len() == 17 && link.contains(&mac),
        "{mac} not in {link}"
    );
    let ll = String::from_utf8_lossy(
        &net.srv
            .ip(&["-6", "addr", "show", "dev", "eth0", "scope", "link"])
            .stdout,
    )
    .into_owned();
    let from = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("from "))
        .unwrap_or_default();
    assert!(
        from.starts_with("fe80:") && ll.contains(&format!("{from}/")),
        "{from} is not the server's link-local\n{ll}"
    );
    assert!(d.is_running(), "dhcpd still runs after the garbage");
}

#[test]
fn kernel_slaac_takes_the_prefix_and_the_final_advertisement_removes_the_router() {
    e2e::require_netns!();
    let net = Net::build("ra6slaac", true);
    let mut d = net.start();
    let show = ["-6", "addr", "show", "dev", "eth0", "scope", "global"];
    let text = wait_until(&net.cl, &show, |t| t.contains("inet6 fd00:97::"));
    let addr: Ipv6Addr = text
        .split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .and_then(|a| a.parse().ok())
        .expect("an address");
    let prefix: ipnet::Ipv6Net = "fd00:97::/64".parse().unwrap();
    assert!(prefix.contains(&addr), "{addr} from SLAAC\n{text}");
    assert!(
        text.contains("dynamic"),
        "a SLAAC address with lifetimes\n{text}"
    );
    let route = ["-6", "route", "show", "default", "dev", "eth0"];
    wait_until(&net.cl, &route, |t| t.contains("via fe80:"));
    d.signal(Signal::SIGTERM);
    d.wait_for_log("final router advertisement sent", Duration::from_secs(10))
        .expect("final advertisement on shutdown");
    assert!(
        d.wait_exit(Duration::from_secs(10)).is_some(),
        "dhcpd stops"
    );
    // The router lifetime 0 withdraws the default route at once (it would live 1800 s).
    wait_until(&net.cl, &route, |t| !t.contains("via fe80:"));
}

#[test]
fn ra_false_answers_no_solicitation() {
    e2e::require_netns!("rdisc6");
    let net = Net::build("ra6off", false);
    let mut d = net.start();
    let out = rdisc6(&net);
    assert!(
        !out.status.success(),
        "an advertisement with ra = false:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(d.is_running());
    assert!(
        !d.stderr().contains("router advertisements on"),
        "{}",
        d.stderr()
    );
    // The client's kernel took nothing from anyone either.
    let addrs = net
        .cl
        .ip(&["-6", "addr", "show", "dev", "eth0", "scope", "global"]);
    assert!(!String::from_utf8_lossy(&addrs.stdout).contains("fd00:97:"));
}
