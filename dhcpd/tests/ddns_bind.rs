//! Dynamic DNS against a real BIND 9 `named` in the server's namespace: A and PTR appear on ACK
//! (signed with the host file's TSIG key) and go away on RELEASE.

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::*;
use dhcproto::v4::{DhcpOption, MessageType};
use e2e::{Ready, SeedLan};

const DHCP: &str = r#"[dhcp]
ping-check = false
lease-db = "leases.redb"
ddns = { server = "127.0.0.1", key = "dhcp-update" }
"#;

const SECRET: &str = "bGFuc3VpdGUtZXhhbXBsZS1rZXktY2hhbmdlLW1lLW5vdw==";

fn dig(host: &e2e::Host, args: &[&str]) -> String {
    let mut a = vec!["dig", "@127.0.0.1", "+short", "+time=1", "+tries=1"];
    a.extend_from_slice(args);
    String::from_utf8_lossy(&host.run(&a).stdout)
        .trim()
        .to_owned()
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_and_ptr_appear_in_bind_on_ack_and_go_on_release() {
    e2e::require_netns!("named", "dig");
    let lan = SeedLan::build("dhcddns");
    let dir = lan.lab.dir();
    let z = dir.join("named");
    std::fs::create_dir_all(&z).unwrap();
    let soa = "$TTL 300\n@ IN SOA ns.it-ishin.com. admin.it-ishin.com. 1 3600 600 86400 300\n@ IN NS ns.it-ishin.com.\n";
    std::fs::write(z.join("fwd.zone"), format!("{soa}ns IN A 192.168.10.1\n")).unwrap();
    std::fs::write(z.join("rev.zone"), soa).unwrap();
    let zd = z.display();
    std::fs::write(
        z.join("named.conf"),
        format!(
            r#"options {{ directory "{zd}"; pid-file "{zd}/named.pid"; listen-on port 53 {{ 127.0.0.1; }};
  listen-on-v6 {{ none; }}; recursion no; dnssec-validation no; allow-query {{ any; }}; }};
key "dhcp-update" {{ algorithm hmac-sha256; secret "{SECRET}"; }};
zone "it-ishin.com" {{ type primary; file "{zd}/fwd.zone"; allow-update {{ key "dhcp-update"; }}; }};
zone "10.168.192.in-addr.arpa" {{ type primary; file "{zd}/rev.zone"; allow-update {{ key "dhcp-update"; }}; }};
"#
        ),
    )
    .unwrap();
    let conf_named = z.join("named.conf");
    let _named = lan
        .main
        .process("named")
        .args(["-g", "-4", "-u", "root", "-c", conf_named.to_str().unwrap()])
        .ready(Ready::Log("all zones loaded".into()))
        .timeout(Duration::from_secs(15))
        .spawn();
    // named logs "running" early in its start-up too: wait until it answers for the zone.
    wait_for("named to serve the zone", || {
        dig(&lan.main, &["it-ishin.com", "SOA"]).starts_with("ns.it-ishin.com.")
    });
    let conf = write_config(dir, DHCP, "");
    let mut d = start(&lan.main, &conf, dir);

    let mac = [2, 0, 0, 0, 0x10, 0x99];
    let ip = lan.client.enter(|| {
        let c = Crafted::client("eth0", mac);
        let mut m = c.msg(Some(MessageType::Discover), mac, 100);
        m.opts_mut().insert(DhcpOption::Hostname("laptop".into()));
        c.send(&m, BCAST67);
        let offer = c.recv(100, Duration::from_secs(5)).expect("OFFER");
        let mut r = c.msg(Some(MessageType::Request), mac, 101);
        r.opts_mut().insert(DhcpOption::Hostname("laptop".into()));
        r.opts_mut()
            .insert(DhcpOption::RequestedIpAddress(offer.yiaddr()));
        r.opts_mut()
            .insert(DhcpOption::ServerIdentifier(server_id(&offer).unwrap()));
        c.send(&r, BCAST67);
        let ack = c.recv(101, Duration::from_secs(5)).expect("ACK");
        assert_eq!(ack.opts().msg_type(), Some(MessageType::Ack));
        ack.yiaddr()
    });
    let ip_s = ip.to_string();
    wait_for("the A record", || {
        dig(&lan.main, &["laptop.it-ishin.com", "A"]) == ip_s
    });
    wait_for("the PTR record", || {
        dig(&lan.main, &["-x", &ip_s]) == "laptop.it-ishin.com."
    });

    // RELEASE (unicast from the client's address in real life; the server only needs ciaddr).
    lan.client.enter(|| {
        let c = Crafted::client("eth0", mac);
        let mut m = c.msg(Some(MessageType::Release), mac, 102);
        m.set_ciaddr(ip);
        m.opts_mut()
            .insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(192, 168, 10, 1)));
        c.send(&m, BCAST67);
    });
    wait_for("the A record to go", || {
        dig(&lan.main, &["laptop.it-ishin.com", "A"]).is_empty()
    });
    wait_for("the PTR record to go", || {
        dig(&lan.main, &["-x", &ip_s]).is_empty()
    });
    d.wait_for_log("dynamic DNS update done", Duration::from_secs(1))
        .unwrap();
}
