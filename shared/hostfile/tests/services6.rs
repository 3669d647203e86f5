//! IPv6 and dual-stack services: the VIP forms, the backends' address family per VIP, the DNS
//! records, and every rule (with its line and fix).

use std::net::{IpAddr, SocketAddr};

use hostfile::checkcases::base;
use hostfile::{Dataplane, HostTable, Problem, RecordData};

/// Hosts with both families (`web1`, `web2`), one IPv4-only (`old`; every host has an IPv4
/// address), and an IPv6 subnet for the VIPs. `base()` is 5 lines: this starts at line 6.
const HOSTS: &str = r#"[[subnet]]
network = "fd00:1::/64"
[host.web1]
ip = "10.1.0.10"
ipv6 = "fd00:1::10"
[host.web2]
ip = "10.1.0.11"
ipv6 = "fd00:1::11"
[host.old]
ip = "10.1.0.12"
"#;

fn table(service: &str) -> HostTable {
    let text = format!("{}{HOSTS}{service}", base());
    HostTable::from_toml(&text).unwrap_or_else(|e| panic!("{e}"))
}

/// The one problem holding `needle`: its line; every problem has a fix.
fn problem_line(service: &str, needle: &str) -> (usize, Problem) {
    let text = format!("{}{HOSTS}{service}", base());
    let err = HostTable::from_toml(&text).expect_err("invalid");
    let p = err.problems().to_vec();
    assert!(p.iter().all(|p| !p.fix.is_empty()), "{p:?}");
    let hit: Vec<&Problem> = p.iter().filter(|p| p.message.contains(needle)).collect();
    assert_eq!(hit.len(), 1, "{needle:?} in {p:?}");
    (hit[0].line, hit[0].clone())
}

fn addrs(t: &HostTable, i: usize) -> Vec<String> {
    t.lb_view().services[i]
        .backends
        .iter()
        .map(|b| b.addr.to_string())
        .collect()
}

#[test]
fn an_ipv6_vip_balances_over_the_backends_ipv6_addresses() {
    let t =
        table("[service.www]\nvip = \"fd00:1::80\"\nport = 80\nbackends = [\"web1\", \"web2\"]\n");
    let v = t.lb_view();
    assert_eq!(v.services.len(), 1);
    let s = &v.services[0];
    assert_eq!(s.vip, "fd00:1::80".parse::<IpAddr>().unwrap());
    assert_eq!(s.vip_prefix, 64);
    assert_eq!(addrs(&t, 0), ["[fd00:1::10]:80", "[fd00:1::11]:80"]);
}

#[test]
fn a_dual_stack_service_is_one_name_with_an_entry_per_family() {
    let t = table(
        "[service.www]\nvip = [\"10.1.0.80\", \"fd00:1::80\"]\nport = 80\nbackend-port = 8080\nbackends = [\"web1\", { host = \"web2\", weight = 3 }]\nsorry = \"[fd00:1::99]:80\"\n",
    );
    let v = t.lb_view();
    let names: Vec<&str> = v.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["www", "www"]);
    assert!(v.services[0].vip.is_ipv4() && v.services[1].vip.is_ipv6());
    assert_eq!(v.services[0].vip_prefix, 24);
    assert_eq!(addrs(&t, 0), ["10.1.0.10:8080", "10.1.0.11:8080"]);
    assert_eq!(addrs(&t, 1), ["[fd00:1::10]:8080", "[fd00:1::11]:8080"]);
    assert_eq!(v.services[1].backends[1].weight, 3);
    // The sorry server serves the entry of its own family only (kernel plane).
    assert_eq!(v.services[0].sorry, None);
    assert_eq!(
        v.services[1].sorry,
        Some("[fd00:1::99]:80".parse::<SocketAddr>().unwrap())
    );
    // DNS: one name, an A and an AAAA record.
    let dns = t.dns_view();
    let recs: Vec<&RecordData> = dns.zones[0]
        .records
        .iter()
        .filter(|r| r.name == "www.lan.test.")
        .map(|r| &r.data)
        .collect();
    assert_eq!(
        recs,
        [
            &RecordData::A("10.1.0.80".parse().unwrap()),
            &RecordData::Aaaa("fd00:1::80".parse().unwrap())
        ]
    );
}

#[test]
fn the_proxy_reaches_a_backend_over_its_other_family() {
    let t = table(
        "[service.www]\nvip = \"fd00:1::80\"\nport = 80\ndataplane = \"proxy\"\nbackends = [\"web1\", \"old\"]\n",
    );
    assert_eq!(addrs(&t, 0), ["[fd00:1::10]:80", "10.1.0.12:80"]);
    assert_eq!(t.lb_view().services[0].dataplane, Dataplane::Proxy);
}

#[test]
fn the_kernel_plane_refuses_a_backend_without_the_vips_family() {
    let (line, p) = problem_line(
        "[service.www]\nvip = \"fd00:1::80\"\nport = 80\nbackends = [\"web1\",\n  \"old\"]\n",
        "backend `old` has no IPv6 address for the IPv6 vip `fd00:1::80`",
    );
    assert_eq!(line, 20);
    assert!(p.fix.contains("NAT64 is not supported"), "{}", p.fix);
    assert!(p.fix.contains("dataplane = \"proxy\""), "{}", p.fix);
    // A dual-stack service: only its IPv6 entry lacks the backend.
    let (line, _) = problem_line(
        "[service.www]\nvip = [\"10.1.0.80\", \"fd00:1::80\"]\nport = 80\nbackends = [\"old\"]\n",
        "backend `old` has no IPv6 address for the IPv6 vip `fd00:1::80`",
    );
    assert_eq!(line, 19);
    let (line, p) = problem_line(
        "[service.www]\nvip = \"fd00:1::80\"\nport = 80\nbackends = [\"web1\"]\nsorry = \"10.1.0.99:80\"\n",
        "sorry server `10.1.0.99:80` is not of the VIP's address family",
    );
    assert_eq!(line, 20);
    assert!(p.fix.contains("NAT64"), "{}", p.fix);
}

#[test]
fn vip_forms_that_cannot_work_are_reported_at_their_line() {
    let svc = |vip: &str| format!("[service.www]\nvip = {vip}\nport = 80\nbackends = [\"web1\"]\n");
    for (vip, needle) in [
        (
            "[\"10.1.0.80\", \"10.1.0.81\"]",
            "vip lists two IPv4 addresses",
        ),
        (
            "[\"fd00:1::80\", \"fd00:1::81\"]",
            "vip lists two IPv6 addresses",
        ),
        (
            "[\"10.1.0.80\", \"fd00:1::80\", \"fd00:1::81\"]",
            "vip lists 3 addresses",
        ),
        ("[]", "vip lists 0 addresses"),
        (
            "\"fd00:9::80\"",
            "vip `fd00:9::80` is not on any IPv6 subnet",
        ),
        (
            "\"fd00:1::10\"",
            "vip `fd00:1::10` is already the address of host web1",
        ),
        (
            "\"www.lan.test\"",
            "vip `www.lan.test` is not an IP address",
        ),
    ] {
        let (line, _) = problem_line(&svc(vip), needle);
        assert_eq!(line, 17, "{vip}");
    }
}
