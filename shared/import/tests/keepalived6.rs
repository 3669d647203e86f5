//! keepalived's IPv6 virtual servers imported: a mirror of an IPv4 one becomes the IPv6 VIP of a
//! dual-stack service, its real servers paired with the IPv4 ones' hosts (a guess, said so);
//! one that differs becomes a service of its own; a real server of the other family and one no
//! host can hold are listed with their lines. The result validates and lbd balances over the
//! hosts' IPv6 addresses.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use import::Imported;

fn sample(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/import-samples")
        .join(name)
}

fn import() -> Imported {
    let p = sample("keepalived-ipv6.conf");
    let text = std::fs::read_to_string(&p).unwrap();
    import::import_keepalived(&text, &p).unwrap_or_else(|e| panic!("{e}"))
}

fn listed(i: &Imported, line: usize, construct: &str, reason: &str) -> bool {
    i.unsupported
        .iter()
        .any(|u| u.line == line && u.construct.starts_with(construct) && u.reason.contains(reason))
}

#[test]
fn a_mirrored_ipv6_virtual_server_becomes_the_dual_stack_vip() {
    let i = import();
    let toml = i.to_toml();
    let t = i
        .check()
        .unwrap_or_else(|e| panic!("does not validate:\n{e}\n---\n{toml}"));
    assert!(
        toml.contains("vip = [\"192.168.1.120\", \"fd00:1::120\"]"),
        "{toml}"
    );
    let lb = t.lb_view();
    let www: Vec<_> = lb
        .services
        .iter()
        .filter(|s| s.port == 80 && s.vip.is_ipv6())
        .collect();
    assert_eq!(www.len(), 1, "{toml}");
    let v4 = lb
        .services
        .iter()
        .find(|s| s.port == 80 && s.vip.is_ipv4())
        .unwrap();
    assert_eq!(www[0].name, v4.name, "one name for both families");
    assert_eq!(www[0].vip, "fd00:1::120".parse::<IpAddr>().unwrap());
    let addrs: Vec<SocketAddr> = www[0].backends.iter().map(|b| b.addr).collect();
    assert_eq!(
        addrs,
        [
            "[fd00:10::10]:80".parse().unwrap(),
            "[fd00:10::11]:80".parse().unwrap()
        ]
    );
    // The pairing is a guess, and said to be one; the VIP's /64 too.
    assert!(
        i.guesses
            .iter()
            .any(|g| g.contains("ipv6 fd00:10::10 is rs-192-168-10-10's")),
        "{:?}",
        i.guesses
    );
    assert!(
        i.guesses
            .iter()
            .any(|g| g.contains("the /64 holding the IPv6 VIP fd00:1::120")),
        "{:?}",
        i.guesses
    );
    assert!(toml.contains("network = \"fd00:1::/64\""), "{toml}");
}

#[test]
fn an_ipv6_virtual_server_that_differs_is_a_service_of_its_own() {
    let i = import();
    let t = i.check().unwrap_or_else(|e| panic!("{e}\n{}", i.to_toml()));
    let lb = t.lb_view();
    let dns6 = lb
        .services
        .iter()
        .find(|s| s.port == 53 && s.vip.is_ipv6())
        .expect("the IPv6 UDP service");
    let dns4 = lb
        .services
        .iter()
        .find(|s| s.port == 53 && s.vip.is_ipv4())
        .expect("the IPv4 UDP service");
    // sh here, rr there: not one service.
    assert_eq!(dns6.name, format!("{}-v6", dns4.name));
    assert_eq!(dns6.vip, "fd00:1::121".parse::<IpAddr>().unwrap());
    let addrs: Vec<String> = dns6.backends.iter().map(|b| b.addr.to_string()).collect();
    assert_eq!(addrs, ["[fd00:10::12]:53"]);
    // Its IPv4 real server: no NAT64.
    assert!(
        listed(
            &i,
            63,
            "real_server 192.168.10.13 53",
            "NAT64 is not supported"
        ),
        "{:#?}",
        i.unsupported
    );
}

#[test]
fn an_ipv6_real_server_no_host_can_hold_is_listed() {
    let i = import();
    assert!(
        listed(
            &i,
            74,
            "real_server fd00:10::99 8443",
            "no host has the IPv6 address"
        ),
        "{:#?}",
        i.unsupported
    );
    assert!(
        listed(
            &i,
            68,
            "virtual_server fd00:2::80 8443",
            "no usable real server"
        ),
        "{:#?}",
        i.unsupported
    );
    let toml = i.to_toml();
    assert!(!toml.contains("fd00:2::80\""), "{toml}");
}
