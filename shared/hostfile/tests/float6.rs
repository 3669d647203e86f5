//! Floating IPv6 addresses: a `[lb.vrrp-instance.*]` of IPv6 addresses (VRRP over IPv6), one
//! family per instance, its peers and source of that family; broken one rule at a time
//! (file:line, value, fix).

use std::net::IpAddr;

use hostfile::HostTable;
use hostfile::checkcases::base;

const LB: &str = r#"[lb.vrrp-instance.gw4]
vrid = 52
interface = "eth1"
addresses = ["10.1.0.1/24"]
[lb.vrrp-instance.gw6]
vrid = 52
interface = "eth1"
priority = 150
interval = "100ms"
addresses = ["fd00:10::1/64", "fd00:10::2"]
[lb.vrrp-instance.uni6]
vrid = 53
interface = "eth1"
addresses = ["2001:db8:10::1/64"]
peers = ["2001:db8:10::3"]
source = "2001:db8:10::2"
"#;

fn with(extra: &str) -> String {
    format!("{}{extra}", base())
}

#[test]
fn an_instance_of_ipv6_addresses_is_read_and_may_share_the_vrid_of_an_ipv4_one() {
    let v = HostTable::from_toml(&with(LB)).expect("valid").lb_view();
    let by = |n: &str| v.instances.iter().find(|i| i.name == n).unwrap();
    assert!(!by("gw4").is_ipv6());
    let gw6 = by("gw6");
    assert!(gw6.is_ipv6());
    assert_eq!(gw6.vrid, 52);
    let a: Vec<String> = gw6.addresses.iter().map(ToString::to_string).collect();
    assert_eq!(a, ["fd00:10::1/64", "fd00:10::2/128"]);
    assert!(gw6.peers.is_empty() && gw6.source.is_none());
    let u = by("uni6");
    assert_eq!(u.peers, ["2001:db8:10::3".parse::<IpAddr>().unwrap()]);
    assert_eq!(u.source, Some("2001:db8:10::2".parse().unwrap()));
}

/// `LB` with `from` replaced by `to`: the error names `line` and contains `needle`, with a fix
/// containing `fix`.
fn broken(rule: &str, from: &str, to: &str, line: usize, needle: &str, fix: &str) {
    assert!(LB.contains(from), "{rule}: `{from}` not in the file");
    let text = with(&LB.replacen(from, to, 1));
    let err = HostTable::from_toml(&text).expect_err(rule);
    let hit = err
        .problems()
        .iter()
        .find(|p| p.message.contains(needle))
        .unwrap_or_else(|| panic!("{rule}: no problem mentions {needle:?}: {err}"));
    assert_eq!(hit.line, line, "{rule}: wrong line in {err}");
    assert!(
        hit.fix.contains(fix),
        "{rule}: fix {:?} lacks {fix:?}",
        hit.fix
    );
}

#[test]
fn every_ipv6_floating_rule_is_enforced_with_its_line() {
    // The base is 5 lines, LB starts at line 6.
    broken(
        "one family per instance",
        "[\"fd00:10::1/64\", \"fd00:10::2\"]",
        "[\"fd00:10::1/64\", \"10.1.0.9/24\"]",
        15,
        "vrrp-instance `gw6` mixes address families: `10.1.0.9` is IPv4 but its first address is IPv6",
        "move the IPv4 addresses to an instance of their own, e.g. [lb.vrrp-instance.gw64]",
    );
    broken(
        "vrid unique per family and interface",
        "vrid = 53",
        "vrid = 52",
        17,
        "vrid `52` on `eth1` is already used by vrrp-instance `gw6`",
        "own vrid",
    );
    broken(
        "peers of the instance's family",
        "peers = [\"2001:db8:10::3\"]",
        "peers = [\"10.1.0.3\"]",
        20,
        "VRRP peer `10.1.0.3` is not an IPv6 address",
        "fd00:10::1",
    );
    broken(
        "a multicast instance sends from the link-local address",
        "priority = 150",
        "priority = 150\nsource = \"fd00:10::7\"",
        14,
        "VRRP source `fd00:10::7` is not a link-local address",
        "RFC 5798",
    );
    broken(
        "no link-local floating address",
        "\"fd00:10::2\"]",
        "\"fe80::1\"]",
        15,
        "address `fe80::1` cannot float",
        "fd00:10::1/64",
    );
    broken(
        "address syntax",
        "\"fd00:10::2\"]",
        "\"fd00:10::zz/64\"]",
        15,
        "address `fd00:10::zz/64` is not an IPv6 address with a prefix",
        "fd00:10::1/64",
    );
    broken(
        "address twice",
        "[\"2001:db8:10::1/64\"]",
        "[\"fd00:10::2/64\"]",
        19,
        "address `fd00:10::2` is already held by vrrp-instance `gw6`",
        "one instance only",
    );
}

#[test]
fn the_link_local_source_of_a_multicast_instance_is_accepted() {
    let text = with(&LB.replacen("priority = 150", "priority = 150\nsource = \"fe80::2\"", 1));
    let v = HostTable::from_toml(&text).expect("valid").lb_view();
    let gw6 = v.instances.iter().find(|i| i.name == "gw6").unwrap();
    assert_eq!(gw6.source, Some("fe80::2".parse().unwrap()));
}

#[test]
fn a_floating_ipv6_address_owned_by_a_host_is_a_warning() {
    let text = with(&format!(
        "[host.main]\nip = \"10.1.0.5\"\nipv6 = [\"fd00:10::2\"]\n{LB}"
    ));
    let t = match HostTable::from_toml(&text) {
        Ok(t) => t,
        Err(e) => panic!("valid, with a warning: {e}"),
    };
    assert!(
        t.warnings()
            .iter()
            .any(|w| w.contains("floating address `fd00:10::2` is also host `main`'s address")),
        "{:?}",
        t.warnings()
    );
}
