//! The seed LAN fixture comes up, routes across main, and leaves nothing behind.

use std::time::Duration;

use e2e::addrs::{
    CLIENT_MAC, DB_MAC, HOST_IF, MAIN_INNER_IF, MAIN_OUTER_IF, OUTSIDE, ROUTER, WEB1, WEB1_MAC,
    WEB2, WEB2_MAC,
};
use e2e::{Ready, SeedLan};

fn ping(from: &e2e::Host, to: std::net::Ipv4Addr) {
    // -W bounds the wait for the reply (ARP included); the command itself is bounded too.
    from.run(&["ping", "-n", "-c", "1", "-W", "5", &to.to_string()]);
}

#[test]
fn seed_lan_routes_across_main_and_is_torn_down() {
    e2e::require_netns!("ping", "sysctl");
    let lan = SeedLan::build("seed");
    let prefix = format!("{}-", lan.lab.name());
    assert_eq!(
        e2e::netns_with_prefix(&prefix).len(),
        8,
        "{:?}",
        lan.lab.namespaces()
    );

    // Addresses and MACs as the example host table expects them.
    assert_eq!(lan.main.ipv4_addrs(MAIN_OUTER_IF), ["192.168.1.2/24"]);
    assert_eq!(lan.main.ipv4_addrs(MAIN_INNER_IF), ["192.168.10.1/24"]);
    assert_eq!(lan.web1.ipv4_addrs(HOST_IF), ["192.168.10.10/24"]);
    assert!(lan.client.ipv4_addrs(HOST_IF).is_empty());
    for (host, mac) in [
        (&lan.web1, WEB1_MAC),
        (&lan.web2, WEB2_MAC),
        (&lan.db, DB_MAC),
        (&lan.client, CLIENT_MAC),
    ] {
        let out = host.ip(&["link", "show", "dev", HOST_IF]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(&format!("link/ether {mac}")), "{text}");
    }
    let fwd = lan.main.run(&["sysctl", "-n", "net.ipv4.ip_forward"]);
    assert_eq!(String::from_utf8_lossy(&fwd.stdout).trim(), "1");

    // Across main, both ways, and on each segment.
    ping(&lan.web1, OUTSIDE);
    ping(&lan.db, ROUTER);
    ping(&lan.outside, WEB2);
    ping(&lan.router, WEB1);
    ping(&lan.web2, WEB1);

    drop(lan);
    assert_eq!(
        e2e::netns_with_prefix(&prefix),
        Vec::<String>::new(),
        "namespaces left behind"
    );
}

/// A real service on web1, reached from the outside client through main, with
/// readiness taken from the listening socket.
#[test]
fn http_from_outside_to_web1_across_main() {
    e2e::require_netns!("busybox", "curl");
    let lan = SeedLan::build("seedhttp");
    let root = lan.lab.dir().join("www");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("index.html"), "hello from web1\n").unwrap();
    let _httpd = lan
        .web1
        .process("busybox")
        .args(["httpd", "-f", "-p", "8080", "-h"])
        .arg(&root)
        .ready(Ready::Tcp(8080))
        .timeout(Duration::from_secs(10))
        .spawn();
    let out = lan.outside.run(&[
        "curl",
        "-sS",
        "--max-time",
        "10",
        &format!("http://{WEB1}:8080/index.html"),
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from web1\n");
}

/// DHCP broadcasts from the address-less client cross the inner bridge to main,
/// with the real dhclient (busybox udhcpd standing in for the suite's dhcpd).
#[test]
fn dhcp_broadcast_from_client_reaches_main() {
    e2e::require_netns!("busybox", "dhclient");
    let lan = SeedLan::build("seeddhcp");
    let dir = lan.lab.dir();
    let conf = dir.join("udhcpd.conf");
    std::fs::write(
        &conf,
        format!(
            "start 192.168.10.200\nend 192.168.10.254\ninterface {MAIN_INNER_IF}\n\
             lease_file {}\npidfile {}\noption subnet 255.255.255.0\noption router 192.168.10.1\n",
            dir.join("udhcpd.leases").display(),
            dir.join("udhcpd.pid").display(),
        ),
    )
    .unwrap();
    std::fs::write(dir.join("udhcpd.leases"), "").unwrap();
    let _server = lan
        .main
        .process("busybox")
        .args(["udhcpd", "-f"])
        .arg(&conf)
        .ready(Ready::Udp(67))
        .spawn();
    let lease = dir.join("client.lease");
    let mut client = lan
        .client
        .process("dhclient")
        .args([
            "-4",
            "-d",
            "-1",
            "-v",
            "-sf",
            "/bin/true",
            "-cf",
            "/dev/null",
        ])
        .arg("-lf")
        .arg(&lease)
        .arg("-pf")
        .arg(dir.join("dhclient.pid"))
        .arg(HOST_IF)
        .ready(Ready::Log("bound to 192.168.10.".into()))
        .timeout(Duration::from_secs(30))
        .spawn();
    let text = std::fs::read_to_string(&lease).unwrap();
    assert!(text.contains("fixed-address 192.168.10.2"), "{text}");
    assert!(text.contains("option routers 192.168.10.1"), "{text}");
    client.stop();
}
