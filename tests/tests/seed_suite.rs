//! The whole job of the seed LAN's main server, end to end, with `etc/hosts.toml` as shipped:
//! DHCP with dynamic DNS, authoritative and forwarded DNS, the balanced www3 service with
//! failover, a host-file edit picked up by all three daemons, and kill -9 of each daemon.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use e2e::addrs::{HOST_IF, INNER_BRIDGE, MAIN_INNER, VIP, WEB1};
use e2e::suite::{OUTSIDE_ADDR, OUTSIDE_NAME, Suite, dhclient_on, http_server};

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../etc/hosts.toml")
}

fn in_pool(a: Ipv4Addr) -> bool {
    (Ipv4Addr::new(192, 168, 10, 200)..=Ipv4Addr::new(192, 168, 10, 254)).contains(&a)
}

#[test]
fn the_suite_does_the_main_servers_job() {
    e2e::require_netns!("dig", "dhclient", "curl", "busybox", "nft");
    let mut s = Suite::start("suite", &example());

    // DHCP: an address from the dynamic range with router, DNS and domain from the host file.
    let lease = s.dhclient("laptop");
    let addr = lease
        .address
        .unwrap_or_else(|| panic!("no lease: {}", lease.raw));
    assert!(in_pool(addr), "{addr} not in .200-.254");
    assert_eq!(lease.routers, "192.168.10.1");
    assert_eq!(lease.dns, "192.168.10.1");
    assert_eq!(lease.domain, "it-ishin.com");

    // dhcpd's dynamic update made the client's name resolve both ways through dnsd.
    let web1 = s.lan.web1.clone();
    let wait_dns = |s: &Suite, name: &str, want: &str| {
        s.wait_dig(&web1, MAIN_INNER, name, want, Duration::from_secs(5))
            .unwrap();
    };
    wait_dns(&s, "laptop.it-ishin.com", &addr.to_string());
    assert_eq!(
        s.dig(&web1, MAIN_INNER, &["-x", &addr.to_string()]),
        "laptop.it-ishin.com."
    );

    // Authoritative and forwarded answers.
    assert_eq!(
        s.dig(&web1, MAIN_INNER, &["www3.it-ishin.com"]),
        VIP.to_string()
    );
    assert_eq!(
        s.dig(&web1, MAIN_INNER, &["web1.it-ishin.com"]),
        WEB1.to_string()
    );
    assert_eq!(
        s.dig(&web1, MAIN_INNER, &["-x", &WEB1.to_string()]),
        "web1.it-ishin.com."
    );
    assert_eq!(
        s.dig(&web1, MAIN_INNER, &[OUTSIDE_NAME]),
        OUTSIDE_ADDR.to_string()
    );

    // The outside client reaches www3 through the VIP, balanced over web1 and web2.
    let (ok, seen) = s.fetch_until(1, Duration::from_secs(20), |r| r.is_ok());
    assert!(ok, "www3 never answered: {seen:?}");
    let bodies: Vec<String> = (0..6)
        .map(|_| s.fetch_www3().expect("www3 answers"))
        .collect();
    assert!(
        bodies.iter().any(|b| b == "web1") && bodies.iter().any(|b| b == "web2"),
        "not balanced: {bodies:?}"
    );

    // web1 stops: after detection every request goes to web2, none fails.
    let mut web1_http = s.web.remove(0);
    web1_http.stop();
    let (ok, seen) = s.fetch_until(3, Duration::from_secs(20), |r| r.as_deref() == Ok("web2"));
    assert!(ok, "web2 never took all requests: {seen:?}");
    for _ in 0..10 {
        assert_eq!(s.fetch_www3().as_deref(), Ok("web2"));
    }

    // Edit the host file: web3 with a MAC, added to the www3 pool. Nothing is restarted.
    let lab = &s.lan.lab;
    let web3 = lab.host("web3");
    lab.veth(&s.lan.switch, "p-web3", &web3, HOST_IF);
    s.lan.switch.enslave("p-web3", INNER_BRIDGE);
    web3.set_mac(HOST_IF, "02:00:00:00:10:13");
    web3.wait_link_up(HOST_IF, Duration::from_secs(10));
    let text = std::fs::read_to_string(&s.conf).unwrap();
    let text = text
        .replace(
            "backends = [\"web1\", \"web2\"]",
            "backends = [\"web1\", \"web2\", \"web3\"]",
        )
        .replace(
            "[host.db]",
            "[host.web3]\nip = \"192.168.10.13\"\nmac = \"02:00:00:00:10:13\"\n\n[host.db]",
        );
    let tmp = s.conf.with_extension("new");
    std::fs::write(&tmp, text).unwrap();
    let cursors = [
        s.dhcpd.log_cursor(),
        s.dnsd.log_cursor(),
        s.lbd.log_cursor(),
    ];
    std::fs::rename(&tmp, &s.conf).unwrap();
    for (p, c) in [&mut s.dhcpd, &mut s.dnsd, &mut s.lbd]
        .into_iter()
        .zip(cursors)
    {
        p.wait_for_log_after(c, "host file reloaded", Duration::from_secs(10))
            .unwrap();
    }
    wait_dns(&s, "web3.it-ishin.com", "192.168.10.13");
    assert_eq!(
        s.dig(&web1, MAIN_INNER, &["-x", "192.168.10.13"]),
        "web3.it-ishin.com."
    );
    let l3 = dhclient_on(&web3, "web3");
    assert_eq!(
        l3.address,
        Some(Ipv4Addr::new(192, 168, 10, 13)),
        "reservation: {}",
        l3.raw
    );
    web3.add_addr(HOST_IF, "192.168.10.13/24");
    web3.add_route("default", MAIN_INNER);
    let _web3_http = http_server(&web3, "web3", lab.dir());
    let (ok, seen) = s.fetch_until(1, Duration::from_secs(20), |r| r.as_deref() == Ok("web3"));
    assert!(ok, "web3 never joined the pool: {seen:?}");

    // kill -9 and restart: no lease lost, same answers.
    s.kill9_and_restart("dhcpd");
    let again = s.dhclient("laptop");
    assert_eq!(
        again.address,
        Some(addr),
        "lease lost after kill -9: {}",
        again.raw
    );
    s.kill9_and_restart("dnsd");
    assert_eq!(
        s.dig(&web1, MAIN_INNER, &["laptop.it-ishin.com"]),
        addr.to_string()
    );
    assert_eq!(
        s.dig(&web1, MAIN_INNER, &["web3.it-ishin.com"]),
        "192.168.10.13"
    );
    s.kill9_and_restart("lbd");
    let (ok, seen) = s.fetch_until(3, Duration::from_secs(20), |r| r.is_ok());
    assert!(ok, "www3 not served after lbd restart: {seen:?}");
}
