//! The family of `[lb.vrrp]`: IPv6 (VRRP over IPv6) when every service VIP is IPv6, as
//! keepalived takes an instance's family from its addresses; IPv4 otherwise. Its `peers` and
//! `source` are of that family, and a vrid it uses is taken for floating instances of the same
//! family on its interface; broken one rule at a time (file:line, value, fix).

use std::net::IpAddr;

use hostfile::HostTable;
use hostfile::checkcases::base;

/// After the 5-line base: line 6 on.
const V6: &str = r#"[[subnet]]
network = "fd00:1::/64"
ra = false
[host.web1]
ip = "10.1.0.10"
ipv6 = "fd00:1::10"
[service.www6]
vip = "fd00:1::120"
port = 80
backends = ["web1"]
[lb.vrrp]
vrid = 51
interface = "eth0"
peers = ["fd00:1::3"]
source = "fd00:1::2"
"#;

fn with(extra: &str) -> String {
    format!("{}{extra}", base())
}

#[test]
fn ipv6_service_vips_only_make_lb_vrrp_an_ipv6_instance_with_ipv6_peers() {
    let v = HostTable::from_toml(&with(V6)).expect("valid").lb_view();
    let c = v.vrrp.expect("[lb.vrrp]");
    assert!(c.ipv6);
    assert_eq!(c.peers, ["fd00:1::3".parse::<IpAddr>().unwrap()]);
    assert_eq!(c.source, Some("fd00:1::2".parse().unwrap()));
    // An IPv4 service beside it: the instance is IPv4 (the IPv6 VIP follows it).
    let dual = V6.replace(
        "vip = \"fd00:1::120\"",
        "vip = [\"10.1.0.120\", \"fd00:1::120\"]",
    );
    let dual = dual.replace("[\"fd00:1::3\"]", "[\"10.1.0.3\"]");
    let dual = dual.replace("\"fd00:1::2\"", "\"10.1.0.2\"");
    let c = HostTable::from_toml(&with(&dual))
        .expect("valid")
        .lb_view()
        .vrrp
        .unwrap();
    assert!(!c.ipv6);
    assert_eq!(c.peers, ["10.1.0.3".parse::<IpAddr>().unwrap()]);
}

/// `V6` with `from` replaced by `to`: the error names `line`, contains `needle`, and its fix
/// contains `fix`.
fn broken(rule: &str, text: &str, from: &str, to: &str, line: usize, needle: &str, fix: &str) {
    assert!(text.contains(from), "{rule}: `{from}` not in the file");
    let err = HostTable::from_toml(&with(&text.replacen(from, to, 1))).expect_err(rule);
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
fn peers_source_and_vrid_follow_the_family_of_the_service_vips() {
    broken(
        "an IPv4 peer of an IPv6 [lb.vrrp]",
        V6,
        "peers = [\"fd00:1::3\"]",
        "peers = [\"10.1.0.3\"]",
        19,
        "VRRP peer `10.1.0.3` is IPv4, but [lb.vrrp] runs VRRP over IPv6: its service VIPs are all IPv6",
        "give the other node's IPv6 address",
    );
    broken(
        "an IPv4 source of an IPv6 [lb.vrrp]",
        V6,
        "source = \"fd00:1::2\"",
        "source = \"10.1.0.2\"",
        20,
        "VRRP source `10.1.0.2` is IPv4, but [lb.vrrp] runs VRRP over IPv6",
        "IPv6 address",
    );
    broken(
        "a multicast IPv6 [lb.vrrp] sends from the link-local address",
        V6,
        "peers = [\"fd00:1::3\"]\n",
        "",
        19,
        "VRRP source `fd00:1::2` is not a link-local address",
        "RFC 5798",
    );
    let v4 = V6.replace("vip = \"fd00:1::120\"", "vip = \"10.1.0.120\"");
    broken(
        "an IPv6 peer of an IPv4 [lb.vrrp]",
        &v4,
        "peers = [\"fd00:1::3\"]",
        "peers = [\"fd00:1::3\"]",
        19,
        "VRRP peer `fd00:1::3` is IPv6, but [lb.vrrp] runs VRRP over IPv4: its service VIPs are IPv4",
        "every service VIP is IPv6",
    );
    broken(
        "a floating IPv6 instance with the vrid of an IPv6 [lb.vrrp] on its interface",
        V6,
        "source = \"fd00:1::2\"\n",
        "source = \"fd00:1::2\"\n[lb.vrrp-instance.gw6]\nvrid = 51\ninterface = \"eth0\"\naddresses = [\"fd00:1::1/64\"]\n",
        22,
        "vrid `51` on `eth0` is already used by [lb.vrrp]",
        "own vrid",
    );
    // ... while an IPv4 instance may share it (another virtual router).
    let text = with(&V6.replace(
        "source = \"fd00:1::2\"\n",
        "source = \"fd00:1::2\"\n[lb.vrrp-instance.gw4]\nvrid = 51\ninterface = \"eth0\"\naddresses = [\"10.1.0.1/24\"]\n",
    ));
    HostTable::from_toml(&text).unwrap_or_else(|e| panic!("{e}"));
}
