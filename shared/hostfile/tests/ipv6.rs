//! IPv6 subnets and DHCPv6 reservations: the derived view, the defaults, and every rule.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use hostfile::checkcases::base;
use hostfile::{HostTable, Mac, Problem};

fn ip6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// The problems of `base()` + `extra`, which must be invalid.
fn problems(extra: &str) -> Vec<Problem> {
    let text = format!("{}{extra}", base());
    let err = HostTable::from_toml(&text).expect_err("invalid");
    err.problems().to_vec()
}

/// The one problem holding `needle`, with its line; every problem has a fix.
fn problem_at(extra: &str, needle: &str) -> (usize, usize) {
    let p = problems(extra);
    assert!(p.iter().all(|p| !p.fix.is_empty()), "{p:?}");
    let hit: Vec<&Problem> = p.iter().filter(|p| p.message.contains(needle)).collect();
    assert_eq!(hit.len(), 1, "{needle:?} in {p:?}");
    (hit[0].line, hit[0].column)
}

const LAN6: &str = r#"[[subnet]]
name = "inner6"
network = "fd00:10::/64"
dns = ["fd00:10::1"]
search = ["lan.test", "corp.test"]
ntp = ["fd00:10::2"]
[[subnet.pool]]
range = "fd00:10::1000-fd00:10::1fff"
[[subnet.pool]]
range = "fd00:10::2:0/112"
[[subnet.pd-pool]]
prefix = "fd00:1000::/48"
delegated-length = 56
[[subnet]]
network = "fd00:20::/64"
ra = false
preferred-lifetime = "1h"
valid-lifetime = "2h"
t1 = "20m"
t2 = "40m"
mtu = 1400
[host.a]
ip = "10.1.0.5"
ipv6 = ["fd00:10::5", "2001:db8::5"]
duid = "00:03:00:01:02:00:00:00:00:01"
[host.b]
ip = "10.1.0.6"
mac = "02:00:00:00:00:06"
ipv6 = "fd00:20::6"
[host.c]
ip = "10.1.0.7"
ipv6 = "fd00:10::7"
"#;

#[test]
fn ipv6_subnets_and_reservations_reach_the_dhcp_view() {
    let t = HostTable::from_toml(&format!("{}{LAN6}", base())).unwrap();
    let v = t.dhcp_view();
    // IPv4 untouched: one subnet, the MAC reservation of b only.
    assert_eq!(v.subnets.len(), 1);
    assert_eq!(v.reservations.len(), 1);
    assert_eq!(v.reservations[0].ip, Ipv4Addr::new(10, 1, 0, 6));
    assert_eq!(v.subnets6.len(), 2);
    let s = &v.subnets6[0];
    assert_eq!(s.name, "inner6");
    assert_eq!(s.network.to_string(), "fd00:10::/64");
    assert_eq!(s.dns, vec![ip6("fd00:10::1")]);
    assert_eq!(s.search, vec!["lan.test", "corp.test"]);
    assert_eq!(s.ntp, vec![ip6("fd00:10::2")]);
    assert_eq!(s.domain, "lan.test");
    assert_eq!(s.pools.len(), 2);
    assert_eq!(s.pools[0].range.len(), 0x1000);
    assert_eq!(s.pools[1].range.start, ip6("fd00:10::2:0"));
    assert_eq!(s.pools[1].range.end, ip6("fd00:10::2:ffff"));
    assert_eq!(s.pd_pools.len(), 1);
    assert_eq!(s.pd_pools[0].prefix.to_string(), "fd00:1000::/48");
    assert_eq!(s.pd_pools[0].delegated_len, 56);
    assert_eq!(s.pd_pools[0].count(), 256);
    // Kea's defaults.
    assert_eq!(s.preferred, Duration::from_secs(3000));
    assert_eq!(s.valid, Duration::from_secs(4000));
    assert_eq!(s.t1, Duration::from_secs(1500));
    assert_eq!(s.t2, Duration::from_secs(2400));
    assert!(s.ra, "ra is on by default");
    assert!(
        !s.slaac,
        "a subnet with an address pool is stateful by default"
    );
    assert_eq!(s.mtu, None);
    let s = &v.subnets6[1];
    assert_eq!(s.name, "fd00:20::/64");
    assert!(!s.ra);
    assert!(s.slaac, "a /64 without an address pool is SLAAC by default");
    assert_eq!(
        (s.preferred, s.valid, s.t1, s.t2),
        (
            Duration::from_secs(3600),
            Duration::from_secs(7200),
            Duration::from_secs(1200),
            Duration::from_secs(2400)
        )
    );
    assert_eq!(s.mtu, Some(1400));
    // a by DUID (its 2001:db8:: address is AAAA only), b by MAC, c has neither: none.
    let r = &v.reservations6;
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(r[0].hostname, "a");
    assert_eq!(r[0].ip, ip6("fd00:10::5"));
    assert_eq!(r[0].subnet, 0);
    assert_eq!(
        r[0].duid.as_deref(),
        Some(&[0, 3, 0, 1, 2, 0, 0, 0, 0, 1][..])
    );
    assert_eq!(r[0].mac, None);
    assert_eq!(r[1].hostname, "b");
    assert_eq!(r[1].ip, ip6("fd00:20::6"));
    assert_eq!(r[1].subnet, 1);
    assert_eq!(r[1].duid, None);
    assert_eq!(r[1].mac, Some("02:00:00:00:00:06".parse::<Mac>().unwrap()));
    // AAAA records still come from every ipv6 address.
    let a = t.hosts.iter().find(|h| h.name == "a").unwrap();
    assert_eq!(a.ipv6, vec![ip6("fd00:10::5"), ip6("2001:db8::5")]);
}

#[test]
fn a_file_without_ipv6_subnets_has_an_empty_v6_view() {
    let t = HostTable::from_toml(&format!(
        "{}[host.a]\nip = \"10.1.0.5\"\nipv6 = \"2001:db8::5\"\nmac = \"02:00:00:00:00:05\"\n",
        base()
    ))
    .unwrap();
    let v = t.dhcp_view();
    assert!(v.subnets6.is_empty());
    assert!(v.reservations6.is_empty());
    assert_eq!(v.reservations.len(), 1);
}

#[test]
fn lifetimes_default_from_what_is_given() {
    let t = HostTable::from_toml(&format!(
        "{}[[subnet]]\nnetwork = \"fd00:10::/64\"\nvalid-lifetime = \"30m\"\n[[subnet]]\nnetwork = \"fd00:11::/64\"\npreferred-lifetime = \"2h\"\n",
        base()
    ))
    .unwrap();
    let v = t.dhcp_view();
    let s = &v.subnets6[0];
    assert_eq!(
        (s.preferred, s.valid),
        (Duration::from_secs(1800), Duration::from_secs(1800))
    );
    assert_eq!(
        (s.t1, s.t2),
        (Duration::from_secs(900), Duration::from_secs(1440))
    );
    let s = &v.subnets6[1];
    assert_eq!(
        (s.preferred, s.valid),
        (Duration::from_secs(7200), Duration::from_secs(7200))
    );
}

const NET6: &str = "[[subnet]]\nnetwork = \"fd00:10::/64\"\n";
const POOL6: &str = "[[subnet]]\nnetwork = \"fd00:10::/64\"\n[[subnet.pool]]\nrange = \"fd00:10::1000-fd00:10::1fff\"\n";

#[test]
fn pool_outside_the_subnet() {
    let at = problem_at(
        &format!("{POOL6}[[subnet.pool]]\nrange = \"fd00:11::1-fd00:11::9\"\n"),
        "range `fd00:11::1-fd00:11::9` is not inside subnet fd00:10::/64",
    );
    assert_eq!(at, (11, 9));
}

#[test]
fn overlapping_pools_and_subnets() {
    let at = problem_at(
        &format!("{POOL6}[[subnet.pool]]\nrange = \"fd00:10::1800/120\"\n"),
        "overlaps range `fd00:10::1000-fd00:10::1fff`",
    );
    assert_eq!(at.0, 11);
    let p = problems(&format!("{POOL6}[[subnet]]\nnetwork = \"fd00:10::/48\"\n"));
    assert!(
        p.iter()
            .any(|p| p.line == 11 && p.message.contains("overlaps subnet `fd00:10::/64`")),
        "{p:?}"
    );
}

#[test]
fn bad_pool_text() {
    problem_at(
        &format!("{POOL6}[[subnet.pool]]\nrange = \"fd00:10::9-fd00:10::1\"\n"),
        "ends before it starts",
    );
    problem_at(
        &format!("{POOL6}[[subnet.pool]]\nrange = \"10.1.0.1-10.1.0.2\"\n"),
        "is not FIRST-LAST or a prefix",
    );
}

#[test]
fn delegated_length_must_be_longer_than_the_prefix() {
    for len in ["48", "40", "129"] {
        let (line, _) = problem_at(
            &format!(
                "{NET6}[[subnet.pd-pool]]\nprefix = \"fd00:1000::/48\"\ndelegated-length = {len}\n"
            ),
            &format!(
                "delegated-length `{len}` is not longer than the pd-pool prefix fd00:1000::/48"
            ),
        );
        assert_eq!(line, 10);
    }
}

#[test]
fn pd_pool_prefix_rules() {
    problem_at(
        &format!("{NET6}[[subnet.pd-pool]]\nprefix = \"fd00:1000::1/48\"\ndelegated-length = 56\n"),
        "pd-pool prefix `fd00:1000::1/48` has host bits set",
    );
    problem_at(
        &format!("{NET6}[[subnet.pd-pool]]\nprefix = \"fd00:1000::\"\ndelegated-length = 56\n"),
        "is not an IPv6 prefix",
    );
    let (line, _) = problem_at(
        &format!(
            "{NET6}[[subnet.pd-pool]]\nprefix = \"fd00:1000::/48\"\ndelegated-length = 56\n[[subnet.pd-pool]]\nprefix = \"fd00:1000:0:8000::/52\"\ndelegated-length = 60\n"
        ),
        "pd-pool prefix `fd00:1000:0:8000::/52` overlaps pd-pool prefix `fd00:1000::/48`",
    );
    assert_eq!(line, 12);
    let (line, _) = problem_at(
        &format!("{NET6}[[subnet.pd-pool]]\nprefix = \"fd00::/16\"\ndelegated-length = 56\n"),
        "pd-pool prefix `fd00::/16` overlaps subnet `fd00:10::/64`",
    );
    assert_eq!(line, 9);
}

#[test]
fn lifetimes_in_order() {
    let (line, col) = problem_at(
        &format!("{NET6}t1 = \"50m\"\nt2 = \"40m\"\n"),
        "t1 `50m` is longer than t2 (40m)",
    );
    assert_eq!((line, col), (8, 6));
    problem_at(
        &format!("{NET6}t2 = \"1h\"\n"),
        "t2 `1h` is longer than preferred-lifetime (50m)",
    );
    let (line, _) = problem_at(
        &format!("{NET6}preferred-lifetime = \"2h\"\nvalid-lifetime = \"1h\"\n"),
        "preferred-lifetime `2h` is longer than valid-lifetime (1h)",
    );
    assert_eq!(line, 8);
    problem_at(
        &format!("{NET6}valid-lifetime = \"10s\"\n"),
        "valid-lifetime `10s` is out of range",
    );
    // Equal is fine; zero T1/T2 (the client chooses) too.
    HostTable::from_toml(&format!(
        "{}{NET6}t1 = \"0s\"\nt2 = \"0s\"\npreferred-lifetime = \"1h\"\nvalid-lifetime = \"1h\"\n",
        base()
    ))
    .unwrap();
}

#[test]
fn slaac_needs_a_64() {
    problem_at(
        "[[subnet]]\nnetwork = \"fd00:10::/56\"\nslaac = true\n",
        "SLAAC needs a /64 prefix",
    );
    let t = HostTable::from_toml(&format!(
        "{}[[subnet]]\nnetwork = \"fd00:10::/56\"\n",
        base()
    ))
    .unwrap();
    assert!(!t.dhcp_view().subnets6[0].slaac);
}

#[test]
fn network_rules_as_for_ipv4() {
    problem_at(
        "[[subnet]]\nnetwork = \"fd00:10::1/64\"\n",
        "has host bits set",
    );
    problem_at(
        "[[subnet]]\nnetwork = \"fd00::/127\"\n",
        "has a prefix outside /8-/126",
    );
    problem_at(
        &format!("{NET6}dns = [\"10.1.0.1\"]\n"),
        "DNS server `10.1.0.1` is not an IPv6 address",
    );
    problem_at(
        &format!("{NET6}mtu = 1000\n"),
        "IPv6 mtu `1000` is out of range",
    );
}

#[test]
fn ipv4_keys_on_an_ipv6_subnet() {
    for (key, line) in [
        ("routers = [\"fd00:10::1\"]", "routers"),
        ("broadcast = \"fd00:10::ffff\"", "broadcast"),
        ("lease = \"1h\"", "lease"),
        ("max-lease = \"1d\"", "max-lease"),
        ("authoritative = true", "authoritative"),
        ("next-server = \"10.1.0.1\"", "next-server"),
        ("boot-file = \"pxelinux.0\"", "boot-file"),
        ("[[subnet.option]]\ncode = 66\ntext = \"tftp\"", "option"),
        (
            "[[subnet.pool]]\nrange = \"fd00:10::1-fd00:10::9\"\nbootp = true",
            "bootp",
        ),
    ] {
        let (l, _) = problem_at(
            &format!("{NET6}{key}\n"),
            &format!("`{line}` is a DHCPv4 key but subnet fd00:10::/64 is IPv6"),
        );
        assert!(l >= 8, "{key}: line {l}");
    }
}

#[test]
fn ipv6_keys_on_an_ipv4_subnet() {
    let v4 = "[[subnet]]\nnetwork = \"10.2.0.0/24\"\n";
    for (key, name) in [
        ("preferred-lifetime = \"1h\"", "preferred-lifetime"),
        ("valid-lifetime = \"2h\"", "valid-lifetime"),
        ("t1 = \"10m\"", "t1"),
        ("t2 = \"20m\"", "t2"),
        ("ra = false", "ra"),
        ("slaac = true", "slaac"),
        ("rapid-commit = true", "rapid-commit"),
        (
            "[[subnet.pd-pool]]\nprefix = \"fd00:1000::/48\"\ndelegated-length = 56",
            "pd-pool",
        ),
    ] {
        let (l, _) = problem_at(
            &format!("{v4}{key}\n"),
            &format!("`{name}` is a DHCPv6 key but subnet 10.2.0.0/24 is IPv4"),
        );
        assert!(l >= 8, "{key}: line {l}");
    }
}

const DUID1: &str = "00:03:00:01:02:00:00:00:00:01";

#[test]
fn reservation_inside_a_pool() {
    let (line, _) = problem_at(
        &format!(
            "{POOL6}[host.a]\nip = \"10.1.0.5\"\nipv6 = \"fd00:10::1010\"\nduid = \"{DUID1}\"\n"
        ),
        "reserved address `fd00:10::1010` of host `a` is inside the dynamic range fd00:10::1000-fd00:10::1fff",
    );
    assert_eq!(line, 12);
    // By MAC too.
    problem_at(
        &format!(
            "{POOL6}[host.a]\nip = \"10.1.0.5\"\nipv6 = \"fd00:10::1010\"\nmac = \"02:00:00:00:00:05\"\n"
        ),
        "is inside the dynamic range",
    );
}

#[test]
fn duplicate_duids_and_reserved_addresses() {
    let (line, _) = problem_at(
        &format!(
            "{NET6}[host.a]\nip = \"10.1.0.5\"\nipv6 = \"fd00:10::5\"\nduid = \"{DUID1}\"\n[host.b]\nip = \"10.1.0.6\"\nipv6 = \"fd00:10::6\"\nduid = \"00:03:00:01:02:00:00:00:00:01\"\n"
        ),
        "DUID `00:03:00:01:02:00:00:00:00:01` is already used by host a",
    );
    assert_eq!(line, 15);
    let (line, _) = problem_at(
        &format!(
            "{NET6}[host.a]\nip = \"10.1.0.5\"\nipv6 = \"fd00:10::5\"\nduid = \"{DUID1}\"\n[host.b]\nip = \"10.1.0.6\"\nipv6 = \"fd00:10::5\"\nmac = \"02:00:00:00:00:06\"\n"
        ),
        "address `fd00:10::5` is already reserved for host a",
    );
    assert_eq!(line, 14);
}

#[test]
fn duid_syntax() {
    for bad in [
        "0:3:0:1",
        "00:03",
        "00-03-00-01",
        "zz:03:00:01",
        "00:03:00:01:",
    ] {
        problem_at(
            &format!(
                "{NET6}[host.a]\nip = \"10.1.0.5\"\nipv6 = \"fd00:10::5\"\nduid = \"{bad}\"\n"
            ),
            &format!("duid `{bad}` is not a DUID"),
        );
    }
    let long = vec!["ab"; 131].join(":");
    problem_at(
        &format!("{NET6}[host.a]\nip = \"10.1.0.5\"\nipv6 = \"fd00:10::5\"\nduid = \"{long}\"\n"),
        "is not a DUID",
    );
    // Upper case is fine.
    let t = HostTable::from_toml(&format!(
        "{}{NET6}[host.a]\nip = \"10.1.0.5\"\nipv6 = \"fd00:10::5\"\nduid = \"00:02:00:00:AB:CD\"\n",
        base()
    ))
    .unwrap();
    assert_eq!(
        t.dhcp_view().reservations6[0].duid.as_deref(),
        Some(&[0, 2, 0, 0, 0xab, 0xcd][..])
    );
}

#[test]
fn a_duid_must_reserve_something() {
    let (line, _) = problem_at(
        &format!("{NET6}[host.a]\nip = \"10.1.0.5\"\nipv6 = \"2001:db8::5\"\nduid = \"{DUID1}\"\n"),
        "duid of host `a` reserves nothing",
    );
    assert_eq!(line, 11);
}

#[test]
fn errors_name_file_line_column_value_and_fix() {
    let text = format!("{}{NET6}t1 = \"50m\"\nt2 = \"40m\"\n", base());
    let shown = HostTable::from_toml(&text).unwrap_err().to_string();
    assert!(
        shown.starts_with("<string>:8:6: t1 `50m` is longer than t2 (40m)\n    fix: keep t1 <= t2"),
        "{shown}"
    );
}

#[test]
fn summary_line_for_check() {
    let t = HostTable::from_toml(&format!("{}{LAN6}", base())).unwrap();
    let v = t.dhcp_view();
    assert_eq!(
        v.subnets6[0].summary(),
        "subnet fd00:10::/64 (inner6) on the interface with an address in it: 2 pool(s), 69632 dynamic addresses, 1 pd-pool(s), 256 prefixes to delegate, preferred 50m, valid 1h 6m 40s, T1 25m, T2 40m, router advertisements on"
    );
    assert!(
        v.subnets6[1]
            .summary()
            .ends_with("router advertisements off (SLAAC)")
    );
}

/// The commented IPv6 example in etc/hosts.toml, uncommented, is valid and derives its subnet.
#[test]
fn the_commented_example_is_valid_when_uncommented() {
    let text = std::fs::read_to_string(hostfile::checkcases::example_path()).unwrap();
    let start = text
        .find("# [[subnet]]\n# name = \"inner6\"")
        .expect("example present");
    let end = start + text[start..].find("\n\n").unwrap_or(text.len() - start);
    let block: String = text[start..end]
        .lines()
        .map(|l| format!("{}\n", l.strip_prefix("# ").unwrap_or(l)))
        .collect();
    let t = HostTable::from_toml(&format!("{}{block}{}", &text[..start], &text[end..])).unwrap();
    let v = t.dhcp_view();
    assert_eq!(v.subnets6.len(), 1);
    let s = &v.subnets6[0];
    assert_eq!(s.network.to_string(), "fd00:10::/64");
    assert_eq!((s.pools.len(), s.pd_pools.len()), (1, 1));
    assert_eq!(
        (s.t1, s.t2),
        (Duration::from_secs(1500), Duration::from_secs(2400))
    );
    assert!(s.ra);
}

#[test]
fn ipv6_subnets_get_ip6_arpa_zones_with_the_hosts_ptrs() {
    let t = HostTable::from_toml(&format!("{}{LAN6}", base())).unwrap();
    let v = t.dns_view();
    let rev6: Vec<&hostfile::Zone> = v
        .zones
        .iter()
        .filter(|z| matches!(z.kind, hostfile::ZoneKind::Reverse6(_)))
        .collect();
    let origins: Vec<&str> = rev6.iter().map(|z| z.origin.as_str()).collect();
    assert_eq!(
        origins,
        [
            "0.0.0.0.0.0.0.0.0.1.0.0.0.0.d.f.ip6.arpa.",
            "0.0.0.0.0.0.0.0.0.2.0.0.0.0.d.f.ip6.arpa."
        ]
    );
    let ptrs = |z: &hostfile::Zone| -> Vec<(String, String)> {
        z.records
            .iter()
            .filter_map(|r| match &r.data {
                hostfile::RecordData::Ptr(p) => Some((r.name.clone(), p.clone())),
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        ptrs(rev6[0]),
        [
            (
                "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.d.f.ip6.arpa.".into(),
                "a.lan.test.".into()
            ),
            (
                "7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.d.f.ip6.arpa.".into(),
                "c.lan.test.".into()
            ),
        ]
    );
    assert_eq!(
        ptrs(rev6[1]),
        [(
            "6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.0.0.d.f.ip6.arpa.".into(),
            "b.lan.test.".into()
        )]
    );
    // SOA and NS as for the forward and in-addr.arpa zones.
    assert_eq!(rev6[0].soa, v.zones[0].soa);
    let ns = |z: &hostfile::Zone| -> Vec<hostfile::RecordData> {
        z.records
            .iter()
            .filter(|r| r.name == z.origin && matches!(r.data, hostfile::RecordData::Ns(_)))
            .map(|r| r.data.clone())
            .collect()
    };
    assert_eq!(ns(rev6[1]), ns(&v.zones[0]));
    assert!(!ns(rev6[1]).is_empty());
    // 2001:db8::5 lies in no IPv6 subnet: AAAA only, no PTR anywhere.
    assert!(
        v.zones
            .iter()
            .flat_map(|z| &z.records)
            .all(|r| !r.name.ends_with("8.b.d.0.1.0.0.2.ip6.arpa."))
    );
}

#[test]
fn ip6_arpa_zones_sit_on_nibble_boundaries() {
    let z = |s: &str| hostfile::reverse_origin6(hostfile::reverse_zone6(s.parse().unwrap()));
    assert_eq!(
        z("fd00:10::/64"),
        "0.0.0.0.0.0.0.0.0.1.0.0.0.0.d.f.ip6.arpa."
    );
    assert_eq!(z("2001:db8::/48"), "0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.");
    // Not on a nibble: the enclosing nibble zone (/62 -> /60, /50 -> /48).
    assert_eq!(
        z("2001:db8:0:4::/62"),
        "0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."
    );
    assert_eq!(
        z("2001:db8:0:4000::/50"),
        "0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."
    );
    assert_eq!(
        hostfile::ptr_name6(ip6("2001:db8::567:89ab")),
        "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."
    );
}

#[test]
fn subnets_in_one_nibble_zone_share_it_and_a_nested_zone_takes_its_ptrs() {
    let extra = r#"[[subnet]]
network = "fd00:30::/62"
[[subnet]]
network = "fd00:30:0:8::/62"
[[subnet]]
network = "fd00:30:0:4::/64"
[host.d]
ip = "10.1.0.8"
ipv6 = ["fd00:30::8", "fd00:30:0:4::9"]
"#;
    let t = HostTable::from_toml(&format!("{}{extra}", base())).unwrap();
    let v = t.dns_view();
    let rev6: Vec<&hostfile::Zone> = v
        .zones
        .iter()
        .filter(|z| matches!(z.kind, hostfile::ZoneKind::Reverse6(_)))
        .collect();
    let origins: Vec<&str> = rev6.iter().map(|z| z.origin.as_str()).collect();
    assert_eq!(
        origins,
        [
            "0.0.0.0.0.0.0.0.3.0.0.0.0.d.f.ip6.arpa.",
            "4.0.0.0.0.0.0.0.0.3.0.0.0.0.d.f.ip6.arpa."
        ]
    );
    let has = |z: &hostfile::Zone, ip: &str| {
        z.records
            .iter()
            .any(|r| r.name == hostfile::ptr_name6(ip6(ip)))
    };
    assert!(has(rev6[0], "fd00:30::8") && !has(rev6[0], "fd00:30:0:4::9"));
    assert!(has(rev6[1], "fd00:30:0:4::9") && !has(rev6[1], "fd00:30::8"));
}

#[test]
fn dns_listens_on_the_servers_ipv6_addresses_and_recurses_for_ipv6_subnets() {
    let t = HostTable::from_toml(&format!("server = \"a\"\n{}{LAN6}", base())).unwrap();
    let v = t.dns_view();
    let listen: Vec<String> = v.listen.iter().map(|a| a.to_string()).collect();
    assert_eq!(
        listen,
        [
            "10.1.0.5:53",
            "127.0.0.1:53",
            "[fd00:10::5]:53",
            "[2001:db8::5]:53",
            "[::1]:53"
        ]
    );
    let nets: Vec<String> = v.allow_recursion.iter().map(|n| n.to_string()).collect();
    assert_eq!(
        nets,
        [
            "10.1.0.0/24",
            "fd00:10::/64",
            "fd00:20::/64",
            "127.0.0.0/8",
            "::1/128"
        ]
    );
    // Given by hand, the lists are taken as they are.
    let t = HostTable::from_toml(&format!(
        "server = \"a\"\n{}{LAN6}[dns]\nlisten = [\"[fd00:10::5]:5353\"]\nallow-recursion = [\"fd00:10::/64\"]\n",
        base()
    ))
    .unwrap();
    let v = t.dns_view();
    assert_eq!(v.listen, ["[fd00:10::5]:5353".parse().unwrap()]);
    assert_eq!(v.allow_recursion, ["fd00:10::/64".parse().unwrap()]);
}

#[test]
fn rrl_ipv6_prefix_defaults_to_56_and_is_checked() {
    let t = HostTable::from_toml(base()).unwrap();
    assert_eq!(t.dns_view().rrl.ipv6_prefix, 56);
    assert_eq!(t.dns_view().rrl.ipv4_prefix, 24);
    let t = HostTable::from_toml(&format!(
        "{}[dns]\nrrl = {{ rate = 10, ipv6-prefix = 48 }}\n",
        base()
    ))
    .unwrap();
    assert_eq!(t.dns_view().rrl.ipv6_prefix, 48);
    for bad in ["0", "129"] {
        let (line, _) = problem_at(
            &format!("[dns]\nrrl = {{ rate = 10, ipv6-prefix = {bad} }}\n"),
            &format!("rrl ipv6-prefix `{bad}` is out of range"),
        );
        assert_eq!(line, 7);
        let p = problems(&format!("[dns]\nrrl = {{ ipv6-prefix = {bad} }}\n"));
        assert!(
            p.iter()
                .any(|p| p.fix == "use a whole number from 1 to 128"),
            "{p:?}"
        );
    }
}

#[test]
fn rapid_commit_is_off_by_default_and_set_per_subnet() {
    let t = HostTable::from_toml(&format!(
        "{}[[subnet]]\nnetwork = \"fd00:10::/64\"\n[[subnet]]\nnetwork = \"fd00:20::/64\"\nrapid-commit = true\n",
        base()
    ))
    .unwrap();
    let v = t.dhcp_view();
    assert!(!v.subnets6[0].rapid_commit, "off unless asked for (as Kea)");
    assert!(v.subnets6[1].rapid_commit);
    assert!(v.subnets6[1].summary().contains("rapid commit"));
    assert!(!v.subnets6[0].summary().contains("rapid commit"));
    // A misspelt value is an error with its place, not a silent default.
    let p = problems("[[subnet]]\nnetwork = \"fd00:10::/64\"\nrapid-commit = \"yes\"\n");
    assert!(p.iter().any(|p| p.line >= 8), "{p:?}");
}

#[test]
fn a_host_may_have_ipv6_addresses_only() {
    let extra = r#"[host.phone]
ipv6 = "fd00:10::99"
duid = "00:03:00:01:02:00:00:00:99:02"
"#;
    let t = HostTable::from_toml(&format!("{}{LAN6}{extra}", base())).unwrap();
    let h = t.hosts.iter().find(|h| h.name == "phone").unwrap();
    assert!(h.ips.is_empty());
    // Reserved by DUID for DHCPv6, nothing for DHCPv4.
    let v = t.dhcp_view();
    let r = v
        .reservations6
        .iter()
        .find(|r| r.hostname == "phone")
        .unwrap();
    assert_eq!(r.ip, ip6("fd00:10::99"));
    assert!(v.reservations.iter().all(|r| r.hostname != "phone"));
    // In DNS: an AAAA record and no A record.
    let d = t.dns_view();
    let recs: Vec<&hostfile::RecordData> = d
        .zones
        .iter()
        .flat_map(|z| &z.records)
        .filter(|r| r.name.starts_with("phone."))
        .map(|r| &r.data)
        .collect();
    assert!(
        recs.iter()
            .any(|r| matches!(r, hostfile::RecordData::Aaaa(a) if *a == ip6("fd00:10::99"))),
        "{recs:?}"
    );
    assert!(
        !recs.iter().any(|r| matches!(r, hostfile::RecordData::A(_))),
        "{recs:?}"
    );
}

#[test]
fn a_host_with_no_address_of_either_family_is_refused() {
    let (line, _) = problem_at(
        "[host.nothing]\nmac = \"02:00:00:00:00:99\"\n",
        "has no address",
    );
    assert!(line > 0);
    let p = problems("[host.nothing]\nmac = \"02:00:00:00:00:99\"\n");
    assert!(p.iter().any(|p| p.fix.contains("ipv6 = ")), "{p:?}");
}
