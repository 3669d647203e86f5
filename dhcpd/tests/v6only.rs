//! An IPv6-only LAN (what Kea's kea-dhcp6 serves alone): a host file with IPv6 subnets and no
//! IPv4 one, on a server with no IPv4 address. `dhcpd --check` summarises the v6 pools; dhcpd
//! starts, advertises the prefix (`rdisc6`), ISC `dhclient -6 -N` sending a Client FQDN gets an
//! address, and `dhcpd leases` lists the binding with the client's name, also after `kill -9`.
//! A host file none of whose subnets a local interface serves stops dhcpd with an error that
//! names the file.

mod common;

use std::net::Ipv6Addr;
use std::time::Duration;

use common::dhclient6::{last_item, one_shot};
use e2e::Lab;
use nix::sys::signal::Signal;

const HOSTS: &str = r#"domain = "lan.test"
[[subnet]]
name = "lan6"
network = "fd00:77::/64"
dns = ["fd00:77::1"]
[[subnet.pool]]
range = "fd00:77::1000-fd00:77::10ff"
[[subnet.pd-pool]]
prefix = "fd00:7700::/48"
delegated-length = 56
[dhcp]
lease-db = "leases.redb"
"#;

fn in_pool(a: Ipv6Addr) -> bool {
    (Ipv6Addr::new(0xfd00, 0x77, 0, 0, 0, 0, 0, 0x1000)
        ..=Ipv6Addr::new(0xfd00, 0x77, 0, 0, 0, 0, 0, 0x10ff))
        .contains(&a)
}

#[test]
fn a_v6_only_host_file_serves_dhcpv6_and_router_advertisements_and_keeps_client_names() {
    e2e::require_netns!("dhclient", "rdisc6");
    let lab = Lab::new("dh6only");
    let (srv, cl) = common::v6link::server_and_client6(&lab, "fd00:77::1/64");
    let conf = lab.dir().join("hosts.toml");
    std::fs::write(&conf, HOSTS).unwrap();
    let state = lab.dir().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let c = conf.to_str().unwrap();

    // --check: the v6 subnet and its pools, nothing to complain about.
    let out = srv.run_unchecked(&[common::BIN, "--check", "-c", c]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "subnet fd00:77::/64 (lan6) on eth0: 1 pool(s), 256 dynamic addresses, 1 pd-pool(s), 256 prefixes to delegate"
        ),
        "{stdout}"
    );
    assert_eq!(stdout.matches("subnet ").count(), 1, "{stdout}");
    assert!(
        !stderr.contains("WARN") && !stderr.contains("ERROR"),
        "{stderr}"
    );

    let mut d = common::start(&srv, &conf, &state);
    d.wait_for_log("serving IPv6 only", Duration::from_secs(5))
        .expect("dhcpd says it serves IPv6 only");
    let ra = common::v6link::rdisc6(&cl);
    let text = String::from_utf8_lossy(&ra.stdout).into_owned();
    assert!(ra.status.success(), "rdisc6 got no advertisement:\n{text}");
    assert!(
        text.lines()
            .any(|l| l.trim().starts_with("Prefix") && l.contains("fd00:77::/64")),
        "{text}"
    );

    let lf = lab.dir().join("dhclient6.leases");
    let out = one_shot(&cl, "-N", "send fqdn.fqdn \"laptop6.\";\n", &lf);
    let leases = std::fs::read_to_string(&lf).unwrap_or_default();
    assert!(
        out.status.success(),
        "{}\n{leases}",
        String::from_utf8_lossy(&out.stderr)
    );
    let addr: Ipv6Addr = last_item(&leases, "iaaddr")
        .expect("iaaddr")
        .parse()
        .unwrap();
    assert!(in_pool(addr), "{addr}\n{leases}");

    let named = |rows: &[serde_json::Value]| {
        rows.iter()
            .find(|r| r["family"] == "ipv6" && r["ip"] == addr.to_string())
            .unwrap_or_else(|| panic!("no binding of {addr} in {rows:?}"))["hostname"]
            .clone()
    };
    assert_eq!(named(&common::leases(&srv, &conf, &state)), "laptop6");
    let table = srv.run(&[
        common::BIN,
        "leases",
        "-c",
        c,
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&addr.to_string()) && l.contains(" laptop6 ")),
        "{table}"
    );

    // The name is durable with the binding: after kill -9 the restarted daemon lists it.
    d.signal(Signal::SIGKILL);
    let _ = d.wait_exit(Duration::from_secs(5));
    let _d = common::start(&srv, &conf, &state);
    assert_eq!(named(&common::leases(&srv, &conf, &state)), "laptop6");
}

#[test]
fn a_host_file_with_nothing_to_serve_stops_dhcpd_naming_the_file() {
    e2e::require_netns!();
    let lab = Lab::new("dh6none");
    // The server's only IPv6 network is not the host file's, and it has no IPv4 address.
    let (srv, _cl) = common::v6link::server_and_client6(&lab, "fd00:78::1/64");
    let conf = lab.dir().join("hosts.toml");
    std::fs::write(&conf, HOSTS).unwrap();
    let state = lab.dir().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let out = srv
        .run_timeout(
            &[
                common::BIN,
                "--user",
                "root",
                "--config",
                conf.to_str().unwrap(),
                "--state-dir",
                state.to_str().unwrap(),
            ],
            None,
            Duration::from_secs(20),
        )
        .expect("dhcpd ends by itself");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let want = format!(
        "nothing to serve: {} has 0 IPv4 and 1 IPv6 subnet(s), and no local interface holds an address in any of them",
        conf.display()
    );
    assert!(stderr.contains(&want), "{stderr}");
    assert!(stderr.contains("name it with `interface`"), "{stderr}");
}
